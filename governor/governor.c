/* governor.c -- the governor object: creation, shrinkers, admission, status.
 *
 * This file is everything about the governor that does not run on its own
 * thread.  gov_new() loads the policy and locates the cgroup so that a bad
 * policy or an unusable --cgroup stops the daemon before it serves anything.
 * gov_admit() is the allocation-path check that keeps bursts below `high`
 * between two ticks; it samples memory itself (with its own file
 * descriptors) because the tick's sample may be up to one interval old.
 * gov_status() hands out copies, so renderers never see live state. */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>

#include "util.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct gov *gov_new(const struct gov_config *cfg, char *err, size_t errlen)
{
    struct gov *g = calloc(1, sizeof(*g));
    struct gov_policy_errors *perrs = NULL;
    struct gov_cgroup_loc loc;
    char *content = NULL;
    size_t content_len = 0;
    int r;

    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->wake_fd = g->events_fd = g->pressure_fd = -1;
    pthread_mutex_init(&g->state_lock, NULL);
    pthread_mutex_init(&g->admit_lock, NULL);
    pthread_mutex_init(&g->start_lock, NULL);
    pthread_cond_init(&g->start_cond, NULL);
    gov_declog_init(&g->declog);
    gov_history_init(&g->history);
    g->hooks = cfg->hooks;
    g->policy_path = dup_or_null(cfg->policy_path);
    g->embedded_policy = dup_or_null(cfg->embedded_policy);
    perrs = malloc(sizeof(*perrs));
    if ((cfg->policy_path && !g->policy_path) || (cfg->embedded_policy && !g->embedded_policy) ||
        !perrs) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    /* the policy */
    if (g->policy_path) {
        r = gov_policy_parse_file(g->policy_path, &g->policy, perrs, &content, &content_len);
    } else if (g->embedded_policy) {
        r = gov_policy_parse_string(g->embedded_policy, strlen(g->embedded_policy), "embedded",
                                    &g->policy, perrs);
        content = strdup(g->embedded_policy);
        content_len = strlen(g->embedded_policy);
    } else {
        gov_policy_defaults(&g->policy);
        r = 0;
    }
    if (r < 0) {
        gov_policy_errors_print(perrs, stderr);
        gov_policy_errors_summary(perrs, err, errlen);
        free(content);
        goto fail;
    }
    g->policy_content = content;
    g->policy_content_len = content_len;

    /* the memory source */
    if (cfg->cgroup_dir)
        r = gov_cgroup_locate_dir(cfg->cgroup_dir, &loc, err, errlen);
    else
        r = gov_cgroup_locate("/proc/self/cgroup", "/proc/self/mountinfo", "", &loc, err,
                              errlen);
    if (r < 0)
        goto fail;
    g->cg = gov_cgroup_open(&loc);
    g->admit_cg = gov_cgroup_open(&loc);
    g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!g->cg || !g->admit_cg || g->wake_fd < 0) {
        snprintf(err, errlen, "cannot set up the memory source: %s", strerror(errno));
        goto fail;
    }

    /* the first published status */
    g->status.cgroup = loc;
    g->status.policy = g->policy;
    gov_strlcpy(g->status.policy_source, g->policy_path ? g->policy_path : "embedded",
                sizeof(g->status.policy_source));
    g->status.policy_generation = 1;
    g->status.policy_loaded_wall_ms = gov_wall_ms();
    g->status.started_wall_ms = gov_wall_ms();
    gov_strlcpy(g->status.sample_error, "no sample yet", sizeof(g->status.sample_error));
    gov_strlcpy(g->status.events_watch, "not started", sizeof(g->status.events_watch));
    gov_strlcpy(g->status.pressure_trigger, "not started", sizeof(g->status.pressure_trigger));
    atomic_store(&g->level, GOV_LEVEL_NORMAL);
    atomic_store(&g->interval_ms, g->policy.interval_ms);
    free(perrs);
    return g;

fail:
    free(perrs);
    gov_free(g);
    return NULL;
}

int gov_register_shrinker(struct gov *g, const struct gov_shrinker *s)
{
    if (g->running || g->nshrinkers >= GOV_MAX_SHRINKERS || !s->count || !s->shrink)
        return -1;
    g->shrinkers[g->nshrinkers++] = *s;
    return 0;
}

int gov_start(struct gov *g, char *err, size_t errlen)
{
    int r;
    g->start_result = 1;
    r = pthread_create(&g->thread, NULL, gov_loop_thread, g);
    if (r != 0) {
        snprintf(err, errlen, "cannot start the governor thread: %s", strerror(r));
        return -1;
    }
    pthread_mutex_lock(&g->start_lock);
    while (g->start_result == 1)
        pthread_cond_wait(&g->start_cond, &g->start_lock);
    r = g->start_result;
    pthread_mutex_unlock(&g->start_lock);
    if (r < 0) {
        pthread_join(g->thread, NULL);
        snprintf(err, errlen, "%s", g->start_error);
        return -1;
    }
    g->running = true;
    return 0;
}

static void wake_loop(struct gov *g)
{
    uint64_t one = 1;
    /* a full eventfd counter still wakes the loop, so a failed write is fine */
    if (write(g->wake_fd, &one, sizeof(one)) < 0) {
    }
}

void gov_stop(struct gov *g)
{
    if (!g || !g->running)
        return;
    atomic_store(&g->stop_requested, true);
    wake_loop(g);
    pthread_join(g->thread, NULL);
    g->running = false;
}

void gov_free(struct gov *g)
{
    if (!g)
        return;
    gov_stop(g);
    gov_cgroup_close(g->cg);
    gov_cgroup_close(g->admit_cg);
    if (g->wake_fd >= 0)
        close(g->wake_fd);
    free(g->policy_path);
    free(g->embedded_policy);
    free(g->policy_content);
    free(g->rejected_content);
    pthread_mutex_destroy(&g->state_lock);
    pthread_mutex_destroy(&g->admit_lock);
    pthread_mutex_destroy(&g->start_lock);
    pthread_cond_destroy(&g->start_cond);
    free(g);
}

void gov_request_reload(struct gov *g)
{
    atomic_store(&g->reload_requested, true);
    wake_loop(g);
}

/* ---- caches ---------------------------------------------------------------- */

void gov_count_caches(struct gov *g, uint64_t *bytes, uint64_t *objects)
{
    *bytes = *objects = 0;
    for (int i = 0; i < g->nshrinkers; i++) {
        uint64_t b = 0, o = 0;
        g->shrinkers[i].count(g->shrinkers[i].ctx, &b, &o);
        *bytes += b;
        *objects += o;
    }
}

uint64_t gov_shrink_caches(struct gov *g, uint64_t bytes)
{
    uint64_t released = 0;
    for (int i = 0; i < g->nshrinkers && released < bytes; i++)
        released += g->shrinkers[i].shrink(g->shrinkers[i].ctx, bytes - released);
    return released;
}

void gov_reading_from_sample(struct gov *g, const struct gov_policy *p,
                             const struct gov_cgroup_sample *s, struct gov_reading *r,
                             enum gov_limit_source *source)
{
    gov_effective_limit(s, p, &r->limit, source);
    r->usage = gov_signal_value(s, p);
    gov_count_caches(g, &r->buffer, &r->objects);
    r->reclaimable = r->buffer > p->floor ? r->buffer - p->floor : 0;
}

/* ---- admission ------------------------------------------------------------- */

bool gov_admit(struct gov *g, uint64_t bytes)
{
    struct gov_cgroup_sample s;
    struct gov_reading r;
    struct gov_admission a;
    struct gov_policy p;
    struct gov_decision d = {0};
    enum gov_limit_source source;
    enum gov_level level = (enum gov_level)atomic_load(&g->level);
    uint64_t released = 0, objects;
    char err[320];
    bool fresh;

    pthread_mutex_lock(&g->admit_lock);
    gov_policy(g, &p);
    if (gov_cgroup_sample(g->admit_cg, &s, err, sizeof(err)) < 0) {
        /* memory cannot be measured: growing blind is what we exist to stop */
        a = (struct gov_admission){.action = GOV_ACT_REFUSE, .admit = false};
        snprintf(a.reason, sizeof(a.reason), "refused: memory source unreadable (%.150s)", err);
        memset(&r, 0, sizeof(r));
        gov_count_caches(g, &r.buffer, &objects);
    } else {
        gov_reading_from_sample(g, &p, &s, &r, &source);
        gov_admit_decide(bytes, &r, &p, level, &a);
    }
    if (a.evict && !a.dry_run)
        released = gov_shrink_caches(g, a.evict);

    if (a.action != GOV_ACT_NONE) {
        d.wall_ms = gov_wall_ms();
        d.from = d.level = level;
        d.action = a.action;
        d.dry_run = a.dry_run;
        d.usage = r.usage;
        d.limit = r.limit;
        d.released = released;
        d.would_release = a.evict;
        gov_count_caches(g, &d.buffer_after, &objects);
        gov_strlcpy(d.reason, a.reason, sizeof(d.reason));

        pthread_mutex_lock(&g->state_lock);
        if (d.action == GOV_ACT_REFUSE && !d.dry_run) {
            g->status.counters.refused++;
        } else if (!d.dry_run) {
            g->status.counters.evictions++;
            g->status.counters.evicted_bytes += released;
        }
        fresh = gov_declog_push(&g->declog, &d);
        pthread_mutex_unlock(&g->state_lock);

        /* "level" is the log line's severity: the governor's is governor_level */
        if (fresh)
            gov_log(d.action == GOV_ACT_REFUSE ? LOG_WARNING : LOG_INFO, gov_action_name(d.action),
                    d.action == GOV_ACT_REFUSE ? "admission: allocation refused"
                                               : "admission: old blocks evicted",
                    "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "governor_level",
                    gov_level_name(level), "reason", d.reason, "action",
                    gov_action_name(d.action), "request_bytes", (json_int_t)bytes, "usage_bytes",
                    (json_int_t)d.usage, "limit_bytes", (json_int_t)d.limit, "released_bytes",
                    (json_int_t)released, "buffer_bytes", (json_int_t)d.buffer_after, "dry_run",
                    d.dry_run);
    }
    pthread_mutex_unlock(&g->admit_lock);
    return a.admit;
}

/* ---- status ---------------------------------------------------------------- */

void gov_status(struct gov *g, struct gov_status *out)
{
    pthread_mutex_lock(&g->state_lock);
    *out = g->status;
    out->ndecisions = gov_declog_copy(&g->declog, out->decisions, GOV_DECLOG_SIZE);
    pthread_mutex_unlock(&g->state_lock);
}

void gov_status_brief(struct gov *g, struct gov_status *out)
{
    pthread_mutex_lock(&g->state_lock);
    memcpy(out, &g->status, offsetof(struct gov_status, ndecisions));
    pthread_mutex_unlock(&g->state_lock);
    out->ndecisions = 0;
}

unsigned gov_history_snapshot(struct gov *g, int64_t since_ms, struct gov_history_sample *out,
                              unsigned max, struct gov_status *st)
{
    unsigned n;
    pthread_mutex_lock(&g->state_lock);
    n = gov_history_copy(&g->history, since_ms, out, max);
    if (st) {
        *st = g->status;
        st->ndecisions = gov_declog_copy(&g->declog, st->decisions, GOV_DECLOG_SIZE);
    }
    pthread_mutex_unlock(&g->state_lock);
    return n;
}

void gov_policy(struct gov *g, struct gov_policy *out)
{
    pthread_mutex_lock(&g->state_lock);
    *out = g->status.policy;
    pthread_mutex_unlock(&g->state_lock);
}

enum gov_level gov_level(struct gov *g)
{
    return (enum gov_level)atomic_load(&g->level);
}

bool gov_alive(struct gov *g)
{
    uint64_t beat = atomic_load(&g->heartbeat_ms);
    uint64_t allowed = MAX(3ull * atomic_load(&g->interval_ms), 2000ull);
    return beat != 0 && gov_now_ms() - beat <= allowed;
}

bool gov_ready(struct gov *g, char *why, size_t len)
{
    if (atomic_load(&g->sample_ok))
        return true;
    pthread_mutex_lock(&g->state_lock);
    snprintf(why, len, "memory source not readable: %s", g->status.sample_error);
    pthread_mutex_unlock(&g->state_lock);
    return false;
}
