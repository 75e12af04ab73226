/* cgroup.c -- sample the memory cgroup (see cgroup.h).
 *
 * cgroup_locate.c decides where the figures are; this file opens them once
 * and reads them on every tick and on every admission request of the
 * collector, so it only pread()s held file descriptors, parses in place and
 * never allocates.  Every open is non-blocking and refuses what is not a
 * regular file (util.c), so a FIFO standing in for a cgroup file is reported
 * as unreadable instead of blocking the governor thread.  The directory is
 * held as well and compared with its path on every sample, so a replaced
 * cgroup directory is followed at the next tick instead of serving the old
 * directory's figures until it is deleted.
 *
 * Traps handled here (see shared/notes/cgroups-and-kubernetes.md):
 *  - limits on ancestors: on v2 the effective ceiling is the minimum of
 *    memory.max and memory.high over the cgroup and every ancestor up to the
 *    mount root; on v1 hierarchical_memory_limit already folds ancestors in;
 *  - "max" (v2) and 9223372036854771712 (v1) mean no limit, 0 is a limit;
 *  - working set = usage - inactive_file, as the kubelet computes it. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define MAX_DEPTH 32
#define READ_BUF 16384

struct cg_file {
    char path[PATH_MAX];
    int fd;
    bool absent; /* did not exist when opened: optional file, never read */
};

struct level {
    struct cg_file max, high; /* v2 only */
};

struct gov_cgroup {
    struct gov_cgroup_loc loc;
    struct cg_file current, stat, events, pressure, peak; /* v2 */
    struct cg_file usage, limit, oom_control, max_usage;  /* v1 */
    struct cg_file meminfo;                               /* host */
    int nlevels;
    struct level levels[MAX_DEPTH];
    uint64_t memtotal;
    int dir_fd;    /* the cgroup's directory (O_PATH), -1 for host */
    bool replaced; /* a sample followed a replaced directory; not yet taken */
};

/* Reads MemTotal from a meminfo file (normally /proc/meminfo); 0 on error. */
static uint64_t read_memtotal(const char *meminfo_path)
{
    char err[PATH_MAX + 64];
    _cleanup_free_ char *buf = gov_read_file(meminfo_path, READ_BUF, NULL, err, sizeof(err));
    uint64_t bytes = 0;
    if (!buf || gov_parse_meminfo(buf, "MemTotal", &bytes) != 1)
        return 0;
    return bytes;
}

/* ---- files ----------------------------------------------------------------- */

/* Opens dir/name without blocking (a FIFO there must not hang the governor).
 * An optional file that does not exist is marked absent and never read; any
 * other failure leaves fd at -1, and the first read reports it. */
static void file_init(struct cg_file *f, const char *dir, const char *name, bool optional)
{
    char ignored[8];
    f->fd = -1;
    f->absent = false;
    if ((size_t)snprintf(f->path, sizeof(f->path), "%s/%s", dir, name) >= sizeof(f->path)) {
        f->absent = true;
        return;
    }
    f->fd = gov_open_regular(f->path, ignored, sizeof(ignored));
    if (f->fd < 0 && optional && errno == ENOENT)
        f->absent = true;
}

static void file_close(struct cg_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Reads the whole file into buf (NUL-terminated).  Returns the length, or -1
 * with err set.  Reopens by path after a failure or when the file was
 * unlinked (replaced), so a removed-and-recreated cgroup is picked up. */
static ssize_t file_read(struct cg_file *f, char *buf, size_t size, char *err, size_t errlen)
{
    struct stat st;
    ssize_t n;

    if (f->fd >= 0 && fstat(f->fd, &st) == 0 && st.st_nlink == 0)
        file_close(f);
    if (f->fd < 0) {
        f->fd = gov_open_regular(f->path, err, errlen);
        if (f->fd < 0)
            return -1;
    }
    n = gov_read_bounded(f->fd, buf, size);
    if (n < 0 && errno == EFBIG) {
        snprintf(err, errlen, "%s: larger than %zu bytes", f->path, size - 1);
        return -1;
    }
    if (n < 0) {
        snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
        file_close(f);
        return -1;
    }
    return n;
}

/* Reads a single-value file.  Returns 0 or -1 with err. */
static int read_value(struct cg_file *f, uint64_t *v, bool *unlimited, char *err, size_t errlen)
{
    char buf[128];
    ssize_t n = file_read(f, buf, sizeof(buf), err, errlen);
    if (n < 0)
        return -1;
    if (gov_parse_value(buf, v, unlimited) < 0) {
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(err, errlen, "%s: not a number or 'max': '%.40s'", f->path,
                 n ? buf : "(empty)");
        return -1;
    }
    return 0;
}

/* Looks up key in a keyed file's content; required keys must be present. */
static int keyed(const struct cg_file *f, const char *buf, const char *key, bool required,
                 uint64_t *v, char *err, size_t errlen)
{
    int r = gov_parse_keyed(buf, key, v);
    if (r < 0) {
        snprintf(err, errlen, "%s: malformed value for %s", f->path, key);
        return -1;
    }
    if (r == 0) {
        *v = 0;
        if (required) {
            snprintf(err, errlen, "%s: no %s", f->path, key);
            return -1;
        }
    }
    return 0;
}

/* Every file of the handle, for opening and closing them all alike. */
static size_t all_files(struct gov_cgroup *cg, struct cg_file **out)
{
    size_t n = 0;
    struct cg_file *fixed[] = {&cg->current, &cg->stat,      &cg->events,
                               &cg->pressure, &cg->peak,     &cg->usage,
                               &cg->limit,    &cg->oom_control, &cg->max_usage,
                               &cg->meminfo};
    for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
        out[n++] = fixed[i];
    for (int i = 0; i < cg->nlevels; i++) {
        out[n++] = &cg->levels[i].max;
        out[n++] = &cg->levels[i].high;
    }
    return n;
}

#define ALL_FILES (10 + 2 * MAX_DEPTH)

static void close_files(struct gov_cgroup *cg)
{
    struct cg_file *all[ALL_FILES];
    size_t n = all_files(cg, all);
    for (size_t i = 0; i < n; i++)
        file_close(all[i]);
    cg->nlevels = 0;
    if (cg->dir_fd >= 0)
        close(cg->dir_fd);
    cg->dir_fd = -1;
}

/* Opens the directory (held, to tell a replacement) and every file of loc. */
static void open_files(struct gov_cgroup *cg)
{
    const struct gov_cgroup_loc *loc = &cg->loc;
    const char *d = loc->dir;
    struct cg_file *all[ALL_FILES];
    char dir[PATH_MAX];
    size_t n;

    /* every fd starts closed so that close_files() is always safe */
    cg->nlevels = 0;
    n = all_files(cg, all);
    for (size_t i = 0; i < n; i++) {
        all[i]->fd = -1;
        all[i]->absent = true;
    }
    cg->dir_fd = loc->version == GOV_CG_HOST
                     ? -1
                     : open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);

    switch (loc->version) {
    case GOV_CG_V2:
        file_init(&cg->current, d, "memory.current", false);
        file_init(&cg->stat, d, "memory.stat", false);
        file_init(&cg->events, d, "memory.events", true);
        file_init(&cg->pressure, d, "memory.pressure", true);
        file_init(&cg->peak, d, "memory.peak", true);
        /* the limit walk: own cgroup, then parents up to the mount root */
        gov_strlcpy(dir, d, sizeof(dir));
        for (;;) {
            struct level *l = &cg->levels[cg->nlevels];
            char *slash;
            file_init(&l->max, dir, "memory.max", cg->nlevels > 0);
            file_init(&l->high, dir, "memory.high", true);
            cg->nlevels++;
            if (cg->nlevels == MAX_DEPTH || (loc->root[0] && strcmp(dir, loc->root) == 0))
                break;
            slash = strrchr(dir, '/');
            if (!slash || slash == dir)
                break;
            *slash = '\0';
            if (loc->root[0] ? strncmp(dir, loc->root, strlen(loc->root)) != 0
                             : !gov_cgroup_dir_has(dir, "memory.max"))
                break;
        }
        break;
    case GOV_CG_V1:
        file_init(&cg->usage, d, "memory.usage_in_bytes", false);
        file_init(&cg->limit, d, "memory.limit_in_bytes", false);
        file_init(&cg->stat, d, "memory.stat", false);
        file_init(&cg->oom_control, d, "memory.oom_control", true);
        file_init(&cg->max_usage, d, "memory.max_usage_in_bytes", true);
        break;
    case GOV_CG_HOST:
        break;
    }
    /* MemAvailable bounds the fallback limit when no cgroup limit exists */
    file_init(&cg->meminfo, "/proc", "meminfo", loc->version != GOV_CG_HOST);
}

struct gov_cgroup *gov_cgroup_open(const struct gov_cgroup_loc *loc)
{
    struct gov_cgroup *cg = calloc(1, sizeof(*cg));

    if (!cg)
        return NULL;
    cg->loc = *loc;
    cg->memtotal = read_memtotal("/proc/meminfo");
    open_files(cg);
    return cg;
}

void gov_cgroup_close(struct gov_cgroup *cg)
{
    if (!cg)
        return;
    close_files(cg);
    free(cg);
}

/* Follows a replaced directory: when the cgroup's path names another
 * directory than the one held (renamed away and created anew, or removed
 * and created anew), the files are closed and the next reads reopen them by
 * path, in the new directory.  Which files there are (the optional ones
 * found at start, the ancestors of the limit walk) stays as found at start.
 * A new directory is taken once it holds the file that tells its version,
 * as --cgroup requires at start (a directory being filled file by file is
 * not yet a cgroup); a path that names nothing for now changes nothing: the
 * files report it.  One stat() per sample. */
static void follow_dir(struct gov_cgroup *cg)
{
    const char *key = cg->loc.version == GOV_CG_V2 ? "memory.current" : "memory.usage_in_bytes";
    struct cg_file *all[ALL_FILES];
    struct stat now, held;
    size_t n;

    if (cg->loc.version == GOV_CG_HOST || stat(cg->loc.dir, &now) < 0 || !S_ISDIR(now.st_mode))
        return;
    if (cg->dir_fd >= 0 && fstat(cg->dir_fd, &held) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino)
        return;
    if (!gov_cgroup_dir_has(cg->loc.dir, key))
        return;
    n = all_files(cg, all);
    for (size_t i = 0; i < n; i++)
        if (all[i] != &cg->meminfo)
            file_close(all[i]);
    if (cg->dir_fd >= 0)
        close(cg->dir_fd);
    cg->dir_fd = open(cg->loc.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cg->replaced = cg->dir_fd >= 0;
}

bool gov_cgroup_take_replaced(struct gov_cgroup *cg)
{
    bool r = cg->replaced;
    cg->replaced = false;
    return r;
}


const char *gov_cgroup_events_path(const struct gov_cgroup *cg)
{
    return (cg->loc.version == GOV_CG_V2 && !cg->events.absent) ? cg->events.path : "";
}

const char *gov_cgroup_pressure_path(const struct gov_cgroup *cg)
{
    return (cg->loc.version == GOV_CG_V2 && !cg->pressure.absent) ? cg->pressure.path : "";
}

/* Lowers s->limit to v if v is a real limit below the current one. */
static void consider_limit(struct gov_cgroup_sample *s, uint64_t v, bool unlimited,
                           const char *file)
{
    if (unlimited || (s->has_limit && v >= s->limit))
        return;
    s->has_limit = true;
    s->limit = v;
    gov_strlcpy(s->limit_file, file, sizeof(s->limit_file));
}

static int sample_v2(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *buf, char *err,
                     size_t errlen)
{
    bool unl;
    uint64_t v;

    if (read_value(&cg->current, &s->current, &unl, err, errlen) < 0)
        return -1;
    if (unl) {
        snprintf(err, errlen, "%s: 'max' is not a usage", cg->current.path);
        return -1;
    }
    if (file_read(&cg->stat, buf, READ_BUF, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "inactive_file", true, &s->inactive_file, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "anon", false, &s->anon, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "file", false, &s->file, err, errlen) < 0)
        return -1;
    for (int i = 0; i < cg->nlevels; i++) {
        struct level *l = &cg->levels[i];
        if (!l->max.absent) {
            if (read_value(&l->max, &v, &unl, err, errlen) < 0)
                return -1;
            consider_limit(s, v, unl, l->max.path);
        }
        if (!l->high.absent) {
            if (read_value(&l->high, &v, &unl, err, errlen) < 0)
                return -1;
            consider_limit(s, v, unl, l->high.path);
        }
    }
    if (!cg->events.absent) {
        if (file_read(&cg->events, buf, READ_BUF, err, errlen) < 0 ||
            keyed(&cg->events, buf, "low", false, &s->events_low, err, errlen) < 0 ||
            keyed(&cg->events, buf, "high", false, &s->events_high, err, errlen) < 0 ||
            keyed(&cg->events, buf, "max", false, &s->events_max, err, errlen) < 0 ||
            keyed(&cg->events, buf, "oom", false, &s->events_oom, err, errlen) < 0 ||
            keyed(&cg->events, buf, "oom_kill", false, &s->oom_kills, err, errlen) < 0)
            return -1;
    }
    if (!cg->peak.absent) {
        if (read_value(&cg->peak, &s->peak, &unl, err, errlen) < 0)
            return -1;
    }
    if (!cg->pressure.absent) {
        /* PSI is informative: a kernel without it (or a garbled file) must
         * not stop the governor. */
        char perr[64];
        if (file_read(&cg->pressure, buf, READ_BUF, perr, sizeof(perr)) >= 0 &&
            gov_parse_psi(buf, &s->psi) == 0)
            s->has_psi = true;
    }
    return 0;
}

static int sample_v1(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *buf, char *err,
                     size_t errlen)
{
    bool unl;
    uint64_t v, hier = 0;

    if (read_value(&cg->usage, &s->current, &unl, err, errlen) < 0)
        return -1;
    if (unl) {
        snprintf(err, errlen, "%s: 'max' is not a usage", cg->usage.path);
        return -1;
    }
    if (read_value(&cg->limit, &v, &unl, err, errlen) < 0)
        return -1;
    consider_limit(s, v, unl, cg->limit.path);
    if (file_read(&cg->stat, buf, READ_BUF, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "total_inactive_file", true, &s->inactive_file, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "total_rss", false, &s->anon, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "total_cache", false, &s->file, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "hierarchical_memory_limit", false, &hier, err, errlen) < 0)
        return -1;
    if (hier) {
        char where[PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:hierarchical_memory_limit", cg->stat.path);
        consider_limit(s, hier, hier >= GOV_UNLIMITED, where);
    }
    if (!cg->oom_control.absent) {
        if (file_read(&cg->oom_control, buf, READ_BUF, err, errlen) < 0 ||
            keyed(&cg->oom_control, buf, "oom_kill", false, &s->oom_kills, err, errlen) < 0)
            return -1;
    }
    if (!cg->max_usage.absent) {
        if (read_value(&cg->max_usage, &s->peak, &unl, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int sample_host(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *buf, char *err,
                       size_t errlen)
{
    uint64_t total = 0, avail = 0;
    if (file_read(&cg->meminfo, buf, READ_BUF, err, errlen) < 0)
        return -1;
    if (gov_parse_meminfo(buf, "MemTotal", &total) != 1 ||
        gov_parse_meminfo(buf, "MemAvailable", &avail) != 1) {
        snprintf(err, errlen, "%s: no valid MemTotal/MemAvailable", cg->meminfo.path);
        return -1;
    }
    s->host_available = avail;
    s->current = total > avail ? total - avail : 0;
    s->inactive_file = 0;
    return 0;
}

int gov_cgroup_sample(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *err,
                      size_t errlen)
{
    char buf[READ_BUF];
    int r;

    memset(s, 0, sizeof(*s));
    follow_dir(cg);
    s->host_memtotal = cg->memtotal;
    switch (cg->loc.version) {
    case GOV_CG_V2:
        r = sample_v2(cg, s, buf, err, errlen);
        break;
    case GOV_CG_V1:
        r = sample_v1(cg, s, buf, err, errlen);
        break;
    default:
        r = sample_host(cg, s, buf, err, errlen);
        break;
    }
    if (r < 0)
        return -1;
    s->working_set = s->current > s->inactive_file ? s->current - s->inactive_file : 0;
    if (!s->has_limit && cg->loc.version != GOV_CG_HOST && !cg->meminfo.absent) {
        /* informative: a failure leaves host_available at 0 (MemTotal rules) */
        char merr[64];
        if (file_read(&cg->meminfo, buf, READ_BUF, merr, sizeof(merr)) >= 0 &&
            gov_parse_meminfo(buf, "MemAvailable", &s->host_available) != 1)
            s->host_available = 0;
    }
    return 0;
}
