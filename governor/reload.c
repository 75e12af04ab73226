/* reload.c -- the policy reload, on the governor thread, in three steps.
 *
 *   settle    read the file's bytes once it has stopped changing.  A file
 *             rewritten in place (truncate, then write) can be read half
 *             written, and half a policy may well be valid, so the file is
 *             read only when it has been left alone for POLICY_QUIET_USEC
 *             and used only when it did not change while it was read; else
 *             the reload runs again after the quiet period.  (The kubelet's
 *             atomic ..data swap never shows a partial file; editors and
 *             `echo >` do.)  A transient failure to read it -- out of
 *             descriptors (EMFILE, ENFILE), out of memory, EAGAIN, EINTR --
 *             says nothing about the file: the reload is retried with a
 *             backoff (RETRY_MIN_USEC doubling up to RETRY_MAX_USEC), never
 *             rejected.  A descriptor is kept in reserve (spare_fd) and given
 *             up for the one open of the policy file when the process has
 *             none left, so a valid update gets through even while the HTTP
 *             server holds every other descriptor.
 *   classify  parse the bytes: unchanged (the policy in force, or the file
 *             back to it), new and valid, new and invalid, or the invalid
 *             file already reported.
 *   apply or reject
 *             a valid policy is published under state_lock, put in force on
 *             the governor thread, the tick timer is re-armed for its
 *             interval, the host's sections get their new values (commit)
 *             and the shrinkers hear of it (the collector re-arms its own); an invalid one is counted and logged once, and the
 *             policy in force stays.
 *
 * The host hears of a reload through reload_begin and reload_end (governord:
 * sd_notify RELOADING=1 ... READY=1): always when `forced` (SIGHUP, which a
 * service manager may send and then wait for the pair), otherwise only when
 * the file really changed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

/* A policy file must have been left alone this long before it is read. */
#define POLICY_QUIET_USEC 250000
#define RETRY_MIN_USEC 100000
#define RETRY_MAX_USEC 5000000

void gov_reserve_fd(struct gov *g)
{
    if (g->spare_fd < 0)
        g->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* ---- settle ------------------------------------------------------------------ */

enum settle {
    SETTLED,     /* bytes read from a file that stood still */
    NOT_SETTLED, /* changed recently or while read: again after the quiet period */
    TRANSIENT,   /* the process could not read it just now: again after a backoff */
    UNREADABLE,  /* missing, a directory, too large...: the parser says why */
};

static bool transient_errno(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == EAGAIN || e == EINTR;
}

static bool policy_file_quiet(const char *path, struct stat *st)
{
    struct timespec now;
    int64_t age_us;
    if (stat(path, st) < 0) {
        memset(st, 0, sizeof(*st));
        return true; /* missing or unreadable: the parser reports it */
    }
    clock_gettime(CLOCK_REALTIME, &now);
    age_us = ((int64_t)now.tv_sec - (int64_t)st->st_mtim.tv_sec) * 1000000 +
             ((int64_t)now.tv_nsec - (int64_t)st->st_mtim.tv_nsec) / 1000;
    return age_us >= POLICY_QUIET_USEC || age_us < 0; /* a future mtime never settles */
}

static bool policy_file_changed(const char *path, const struct stat *before)
{
    struct stat now;
    if (stat(path, &now) < 0)
        return before->st_ino != 0;
    return now.st_ino != before->st_ino || now.st_dev != before->st_dev ||
           now.st_size != before->st_size || now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != before->st_mtim.tv_nsec;
}

/* open(2) of the policy file; out of descriptors, the reserve is given up
 * for it (and taken back by the caller once the file is closed). */
static int open_policy(struct gov *g, const char *path)
{
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = open(path, flags);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && g->spare_fd >= 0) {
        close(g->spare_fd);
        g->spare_fd = -1;
        fd = open(path, flags);
    }
    return fd;
}

/* Reads the whole file into *content (malloc'd).  *err: errno of a failure. */
static enum settle read_policy(struct gov *g, const char *path, char **content, size_t *len,
                               int *err)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    enum settle out = SETTLED;
    int fd = open_policy(g, path);

    *content = NULL;
    *len = 0;
    *err = 0;
    if (fd < 0) {
        *err = errno;
        return transient_errno(*err) ? TRANSIENT : UNREADABLE;
    }
    if (fstat(fd, &st) < 0) {
        *err = errno;
        out = transient_errno(*err) ? TRANSIENT : UNREADABLE;
    } else if (!S_ISREG(st.st_mode)) {
        out = UNREADABLE;
    } else if (!(buf = malloc(GOV_POLICY_MAX_FILE + 1))) {
        *err = ENOMEM;
        out = TRANSIENT;
    }
    while (out == SETTLED) {
        ssize_t n = read(fd, buf + got, GOV_POLICY_MAX_FILE + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            out = transient_errno(*err) ? TRANSIENT : UNREADABLE;
        } else if (n == 0) {
            break;
        } else if ((got += (size_t)n) > GOV_POLICY_MAX_FILE) {
            out = UNREADABLE;
        }
    }
    close(fd);
    if (out != SETTLED) {
        free(buf);
        return out;
    }
    *content = buf;
    *len = got;
    return SETTLED;
}

/* Step 1: the file's bytes once it stands still. */
static enum settle settle(struct gov *g, char **content, size_t *len, int *err)
{
    struct stat before;
    enum settle s;
    if (!policy_file_quiet(g->policy_path, &before))
        return NOT_SETTLED;
    s = read_policy(g, g->policy_path, content, len, err);
    gov_reserve_fd(g); /* the policy file is closed: take the reserve back */
    if (s != TRANSIENT && policy_file_changed(g->policy_path, &before)) {
        free(*content);
        *content = NULL;
        return NOT_SETTLED; /* written while we read it */
    }
    return s;
}

/* ---- classify ---------------------------------------------------------------- */

enum verdict {
    UNCHANGED,     /* the bytes of the policy in force */
    ACCEPT,        /* new and valid */
    REJECT,        /* new and invalid */
    REJECTED_SEEN, /* the same invalid file (or unreadable path) as last time */
};

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

/* Step 2.  content may be NULL (an unreadable file): the parser then opens
 * the path itself, for its error message, and may hand back bytes after all. */
static enum verdict classify(struct gov *g, char **content, size_t *len, struct gov_policy *p,
                             struct gov_policy_host_values *hv, struct gov_policy_errors *errs,
                             char *summary, size_t summary_len)
{
    int r;
    bool seen;
    /* the host's sections too: one error anywhere rejects the whole file */
    if (*content)
        r = gov_policy_parse_string_ext(*content, *len, g->policy_path, &g->hosts, p, hv, errs);
    else
        r = gov_policy_parse_file(g->policy_path, &g->hosts, p, hv, errs, content, len);
    if (same_bytes(*content, *len, g->policy_content, g->policy_content_len))
        return UNCHANGED;
    gov_policy_errors_summary(errs, summary, summary_len);
    if (r == 0)
        return ACCEPT;
    pthread_mutex_lock(&g->state_lock);
    seen = *content ? same_bytes(*content, *len, g->rejected_content, g->rejected_content_len)
                    : strcmp(summary, g->status.policy_error) == 0;
    pthread_mutex_unlock(&g->state_lock);
    return seen ? REJECTED_SEEN : REJECT;
}

/* ---- apply or reject ----------------------------------------------------------- */

static void unchanged(struct gov *g, const char *trigger)
{
    bool had_error;
    pthread_mutex_lock(&g->state_lock);
    had_error = g->status.policy_error[0] != '\0';
    g->status.policy_error[0] = '\0';
    pthread_mutex_unlock(&g->state_lock);
    if (had_error)
        gov_log(LOG_INFO, "reload", "policy file is back to the policy in force", NULL);
    else if (strcmp(trigger, "SIGHUP") == 0)
        gov_log(LOG_INFO, "reload", "policy unchanged", "{s:s}", "trigger", trigger);
    free(g->rejected_content);
    g->rejected_content = NULL;
}

/* Step 3a.  Takes over content. */
static void apply(struct gov *g, const char *trigger, const struct gov_policy *p,
                  const struct gov_policy_host_values *hv, char *content, size_t len)
{
    uint64_t generation;
    bool new_interval = p->interval_ms != g->policy.interval_ms;

    pthread_mutex_lock(&g->state_lock);
    g->status.policy = *p;
    gov_policy_sha256_hex(content, len, g->status.policy_sha256);
    g->status.policy_generation++;
    g->status.policy_loaded_wall_ms = gov_wall_ms();
    g->status.policy_error[0] = '\0';
    g->status.counters.reloads_ok++;
    generation = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);

    g->policy = *p;
    free(g->policy_content);
    g->policy_content = content;
    g->policy_content_len = len;
    free(g->rejected_content);
    g->rejected_content = NULL;
    /* the timers follow at once: the tick's here, the collector's through
     * its shrinker callback (a lowered interval must not wait out the old) */
    if (new_interval)
        gov_loop_arm_tick(g);
    gov_commit_host_values(g, hv); /* the host's sections, then its shrinkers */
    for (int i = 0; i < g->nshrinkers; i++)
        if (g->shrinkers[i].policy_changed)
            g->shrinkers[i].policy_changed(g->shrinkers[i].ctx);
    gov_log(LOG_INFO, "reload", "new policy in force", "{s:s, s:I, s:s, s:s}", "trigger", trigger,
            "policy_generation", (json_int_t)generation, "path", g->policy_path, "mode",
            gov_mode_name(p->mode));
}

/* Step 3b.  Takes over content (NULL for an unreadable file). */
static void reject(struct gov *g, const char *trigger, const struct gov_policy_errors *errs,
                   const char *summary, char *content, size_t len)
{
    uint64_t generation;
    json_t *lines = json_array();

    pthread_mutex_lock(&g->state_lock);
    gov_strlcpy(g->status.policy_error, summary, sizeof(g->status.policy_error));
    g->status.counters.reloads_failed++;
    generation = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);

    for (int i = 0; lines && i < errs->count; i++) {
        char one[512];
        gov_policy_error_line(errs, i, one, sizeof(one));
        json_array_append_new(lines, json_string(one));
    }
    gov_log(LOG_ERR, "reload_failed", "policy rejected; previous policy stays in force",
            "{s:s, s:I, s:s, s:o}", "trigger", trigger, "policy_generation",
            (json_int_t)generation, "error", summary, "errors", lines ? lines : json_array());
    free(g->rejected_content);
    g->rejected_content = content;
    g->rejected_content_len = len;
}

/* A transient read error: the same reload again later, with a backoff. */
static void defer(struct gov *g, const char *trigger, int err)
{
    bool first = g->reload_backoff_usec == 0;
    g->reload_backoff_usec = first ? RETRY_MIN_USEC
                                   : MIN(2 * g->reload_backoff_usec, (uint64_t)RETRY_MAX_USEC);
    if (first)
        gov_log(LOG_WARNING, "reload_deferred",
                "cannot read the policy file just now; retrying (the policy in force stays)",
                "{s:s, s:s, s:s, s:I}", "trigger", trigger, "path", g->policy_path, "error",
                strerror(err), "retry_ms", (json_int_t)(g->reload_backoff_usec / 1000));
    gov_loop_retry_reload(g, g->reload_backoff_usec);
}

static uint64_t current_generation(struct gov *g)
{
    uint64_t gen;
    pthread_mutex_lock(&g->state_lock);
    gen = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);
    return gen;
}

void gov_reload_policy(struct gov *g, const char *trigger, bool forced)
{
    struct gov_policy_errors *errs = NULL;
    struct gov_policy_host_values *hv = NULL;
    struct gov_policy p;
    char *content = NULL, summary[512] = "";
    size_t len = 0;
    bool begun = false, ok = true;
    int err = 0;
    enum verdict v;

    if (forced && g->hooks.reload_begin) {
        g->hooks.reload_begin(g->hooks.ud);
        begun = true;
    }
    if (!g->policy_path)
        goto out; /* the embedded policy cannot change */
    errs = malloc(sizeof(*errs));
    hv = malloc(sizeof(*hv));
    switch (errs && hv ? settle(g, &content, &len, &err) : TRANSIENT) {
    case NOT_SETTLED:
        gov_loop_retry_reload(g, POLICY_QUIET_USEC); /* SIGHUP's RELOADING=1 still gets READY=1 */
        goto out;
    case TRANSIENT:
        defer(g, trigger, errs && hv ? err : ENOMEM);
        goto out;
    case SETTLED:
    case UNREADABLE:
        break;
    }
    g->reload_backoff_usec = 0;

    v = classify(g, &content, &len, &p, hv, errs, summary, sizeof(summary));
    if (v == UNCHANGED) {
        unchanged(g, trigger);
        goto out;
    }
    ok = v == ACCEPT;
    if (v == REJECTED_SEEN)
        goto out; /* reported already */
    if (!begun && g->hooks.reload_begin) {
        g->hooks.reload_begin(g->hooks.ud);
        begun = true;
    }
    if (v == ACCEPT)
        apply(g, trigger, &p, hv, content, len);
    else
        reject(g, trigger, errs, summary, content, len);
    content = NULL;
out:
    if (begun && g->hooks.reload_end)
        g->hooks.reload_end(g->hooks.ud, ok, current_generation(g));
    free(content);
    free(errs);
    free(hv);
}
