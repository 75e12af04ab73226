/* governor.c -- the governor object: creation, shrinkers, admission, status.
 *
 * This file is everything about the governor that does not run on its own
 * thread.  gov_new() loads the policy and locates the cgroup so that a bad
 * policy or an unusable --cgroup stops the daemon before it serves anything.
 * gov_admit() is the allocation-path check that keeps bursts below `high`
 * between two ticks; it samples memory itself (with its own file
 * descriptors) because the tick's sample may be up to one interval old, and
 * holds act_lock so that it and the tick never release for the same
 * overshoot.  Both record what they did through gov_record_decision().
 * gov_status() hands out copies, so renderers never see live state. */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "util.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct gov *gov_new(const struct gov_config *cfg, char *err, size_t errlen)
{
    struct gov *g = calloc(1, sizeof(*g));
    struct gov_policy_errors *perrs = NULL;
    struct gov_policy_host_values *hv = NULL;
    struct gov_cgroup_loc loc;
    char *content = NULL;
    size_t content_len = 0;
    int r;

    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->wake_fd = g->events_fd = g->pressure_fd = g->spare_fd = -1;
    pthread_mutex_init(&g->state_lock, NULL);
    pthread_mutex_init(&g->act_lock, NULL);
    pthread_mutex_init(&g->start_lock, NULL);
    pthread_cond_init(&g->start_cond, NULL);
    gov_declog_init(&g->declog);
    gov_history_init(&g->history);
    g->hooks = cfg->hooks;
    g->policy_path = dup_or_null(cfg->policy_path);
    g->embedded_policy = dup_or_null(cfg->embedded_policy);
    perrs = malloc(sizeof(*perrs));
    hv = calloc(1, sizeof(*hv));
    if ((cfg->policy_path && !g->policy_path) || (cfg->embedded_policy && !g->embedded_policy) ||
        !perrs || !hv) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* the host's sections of the policy file */
    if (cfg->nsections > GOV_POLICY_MAX_SECTIONS) {
        snprintf(err, errlen, "at most %d host policy sections", GOV_POLICY_MAX_SECTIONS);
        goto fail;
    }
    for (unsigned i = 0; i < cfg->nsections; i++)
        g->sections[i] = cfg->sections[i];
    g->hosts = (struct gov_policy_hosts){g->sections, cfg->nsections};
    if (gov_policy_hosts_check(&g->hosts, err, errlen) < 0)
        goto fail;

    /* the policy */
    if (g->policy_path) {
        r = gov_policy_parse_file(g->policy_path, &g->hosts, &g->policy, hv, perrs, &content,
                                  &content_len);
    } else if (g->embedded_policy) {
        r = gov_policy_parse_string_ext(g->embedded_policy, strlen(g->embedded_policy),
                                        "embedded", &g->hosts, &g->policy, hv, perrs);
        content = strdup(g->embedded_policy);
        content_len = strlen(g->embedded_policy);
    } else {
        /* the built-in defaults: the host's too */
        gov_policy_defaults(&g->policy);
        for (unsigned i = 0; i < g->hosts.n; i++)
            memcpy(hv->v[i], g->sections[i].defaults, g->sections[i].size);
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
    gov_policy_sha256_hex(content ? content : "", content_len, g->status.policy_sha256);
    g->status.policy_generation = 1;
    g->status.policy_loaded_wall_ms = gov_wall_ms();
    g->status.started_wall_ms = gov_wall_ms();
    gov_strlcpy(g->status.sample_error, "no sample yet", sizeof(g->status.sample_error));
    gov_strlcpy(g->status.events_watch, "not started", sizeof(g->status.events_watch));
    gov_strlcpy(g->status.pressure_trigger, "not started", sizeof(g->status.pressure_trigger));
    atomic_store(&g->level, GOV_LEVEL_NORMAL);
    gov_reserve_fd(g); /* before anything else can take the last descriptors */
    gov_commit_host_values(g, hv);
    free(perrs);
    free(hv);
    return g;

fail:
    free(perrs);
    free(hv);
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

bool gov_stop_within(struct gov *g, unsigned timeout_ms)
{
    struct timespec deadline;
    int r;

    if (!g || !g->running)
        return true;
    atomic_store(&g->stop_requested, true);
    wake_loop(g);
    if (timeout_ms == 0) {
        r = pthread_tryjoin_np(g->thread, NULL);
    } else {
        /* pthread_timedjoin_np wants CLOCK_REALTIME (and, unlike
         * pthread_clockjoin_np, is known to the thread sanitizer) */
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        do
            r = pthread_timedjoin_np(g->thread, NULL, &deadline);
        while (r == EINTR);
    }
    if (r != 0)
        return false; /* still running: g must stay allocated */
    g->running = false;
    return true;
}

bool gov_stop(struct gov *g)
{
    if (gov_stop_within(g, GOV_STOP_TIMEOUT_MS))
        return true;
    gov_log(LOG_ERR, "governor_stop",
            "governor thread did not stop in time; leaving it running and its memory allocated",
            "{s:I}", "timeout_ms", (json_int_t)GOV_STOP_TIMEOUT_MS);
    return false;
}

void gov_free(struct gov *g)
{
    if (!g)
        return;
    /* never free what a running governor thread uses: a thread that did not
     * stop keeps g (and everything it points to) for the rest of the
     * process, on purpose */
    if (!gov_stop(g))
        return;
    gov_cgroup_close(g->cg);
    gov_cgroup_close(g->admit_cg);
    if (g->wake_fd >= 0)
        close(g->wake_fd);
    if (g->spare_fd >= 0)
        close(g->spare_fd);
    free(g->policy_path);
    free(g->embedded_policy);
    free(g->policy_content);
    free(g->rejected_content);
    pthread_mutex_destroy(&g->state_lock);
    pthread_mutex_destroy(&g->act_lock);
    pthread_mutex_destroy(&g->start_lock);
    pthread_cond_destroy(&g->start_cond);
    free(g);
}

void gov_request_reload(struct gov *g)
{
    atomic_store(&g->reload_requested, true);
    wake_loop(g);
}

void gov_commit_host_values(struct gov *g, const struct gov_policy_host_values *hv)
{
    pthread_mutex_lock(&g->state_lock);
    g->status.npolicy_values = gov_policy_host_strings(&g->hosts, hv, g->status.policy_values,
                                                       ARRAY_SIZE(g->status.policy_values));
    pthread_mutex_unlock(&g->state_lock);
    for (unsigned i = 0; i < g->hosts.n; i++)
        if (g->sections[i].commit)
            g->sections[i].commit(g->sections[i].ctx, hv->v[i]);
}

void gov_status_policy_foreach(const struct gov_status *st,
                               void (*fn)(const char *section, const char *key,
                                          const char *value, void *ud),
                               void *ud)
{
    gov_policy_foreach(&st->policy, NULL, NULL, fn, ud);
    for (unsigned i = 0; i < st->npolicy_values && i < ARRAY_SIZE(st->policy_values); i++)
        fn(st->policy_values[i].section, st->policy_values[i].key, st->policy_values[i].value,
           ud);
}

/* ---- caches ---------------------------------------------------------------- */

/* What shrinker i holds above its floor. */
static uint64_t above_floor(const struct gov_shrinker *s, uint64_t bytes)
{
    uint64_t floor = s->floor ? s->floor(s->ctx) : 0;
    return bytes > floor ? bytes - floor : 0;
}

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

/* Bytes held and bytes held above the floors, over all shrinkers. */
static void count_reclaimable(struct gov *g, uint64_t *bytes, uint64_t *objects,
                              uint64_t *reclaimable)
{
    *bytes = *objects = *reclaimable = 0;
    for (int i = 0; i < g->nshrinkers; i++) {
        uint64_t b = 0, o = 0;
        g->shrinkers[i].count(g->shrinkers[i].ctx, &b, &o);
        *bytes += b;
        *objects += o;
        *reclaimable += above_floor(&g->shrinkers[i], b);
    }
}

/* Asks each shrinker, in registration order, for what is still missing,
 * but never for more than it holds above its floor. */
uint64_t gov_shrink_caches(struct gov *g, uint64_t bytes)
{
    uint64_t released = 0;
    for (int i = 0; i < g->nshrinkers && released < bytes; i++) {
        const struct gov_shrinker *s = &g->shrinkers[i];
        uint64_t held = 0, objects = 0, ask;
        s->count(s->ctx, &held, &objects);
        ask = MIN(bytes - released, above_floor(s, held));
        if (ask > 0)
            released += s->shrink(s->ctx, ask);
    }
    return released;
}

void gov_reading_from_sample(struct gov *g, const struct gov_policy *p,
                             const struct gov_cgroup_sample *s, struct gov_reading *r,
                             enum gov_limit_source *source)
{
    gov_effective_limit(s, p, &r->limit, source);
    r->usage = gov_signal_value(s, p);
    count_reclaimable(g, &r->buffer, &r->objects, &r->reclaimable);
}

/* ---- decisions: one record for the tick and admission ------------------------- */

bool gov_record_decision(struct gov *g, const struct gov_decision *d)
{
    struct gov_counters *c = &g->status.counters;
    if (!d->dry_run) {
        switch (d->action) {
        case GOV_ACT_SHRINK:
        case GOV_ACT_RELEASE:
            c->actions[d->level]++;
            c->released_bytes[d->level] += d->released;
            break;
        case GOV_ACT_EVICT:
            c->evictions++;
            c->evicted_bytes += d->released;
            break;
        case GOV_ACT_REFUSE:
            c->refused++;
            break;
        default:
            break;
        }
    }
    return gov_declog_push(&g->declog, d);
}

void gov_log_decision(const struct gov_decision *d, const char *event, const char *msg,
                      uint64_t request, uint64_t generation)
{
    /* "level" is the log line's severity: the governor's levels are
     * from_level and governor_level */
    if (d->action == GOV_ACT_EVICT || d->action == GOV_ACT_REFUSE)
        gov_log(d->action == GOV_ACT_REFUSE ? LOG_WARNING : LOG_INFO, event, msg,
                "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "governor_level",
                gov_level_name(d->level), "reason", d->reason, "action",
                gov_action_name(d->action), "request_bytes", (json_int_t)request, "usage_bytes",
                (json_int_t)d->usage, "limit_bytes", (json_int_t)d->limit, "released_bytes",
                (json_int_t)d->released, "buffer_bytes", (json_int_t)d->buffer_after, "dry_run",
                d->dry_run);
    else
        gov_log(d->level >= GOV_LEVEL_HIGH ? LOG_WARNING : LOG_INFO, event, msg,
                "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I}", "from_level",
                gov_level_name(d->from), "governor_level", gov_level_name(d->level), "action",
                gov_action_name(d->action), "reason", d->reason, "usage_bytes",
                (json_int_t)d->usage, "limit_bytes", (json_int_t)d->limit, "released_bytes",
                (json_int_t)d->released, "would_release_bytes", (json_int_t)d->would_release,
                "buffer_bytes", (json_int_t)d->buffer_after, "dry_run", d->dry_run,
                "policy_generation", (json_int_t)generation);
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
    enum gov_level level;
    uint64_t objects, generation;
    char err[320];
    bool fresh;

    /* sample, decide and evict under act_lock: a tick's shrink in progress
     * finishes first, and this reading sees what it released */
    pthread_mutex_lock(&g->act_lock);
    level = (enum gov_level)atomic_load(&g->level);
    gov_policy(g, &p);
    if (gov_cgroup_sample(g->admit_cg, &s, err, sizeof(err)) < 0) {
        /* memory cannot be measured: growing blind is what we exist to stop */
        a = (struct gov_admission){.action = GOV_ACT_REFUSE, .admit = false};
        snprintf(a.reason, sizeof(a.reason), "refused: memory source unreadable (%.150s)", err);
        memset(&r, 0, sizeof(r));
    } else {
        gov_reading_from_sample(g, &p, &s, &r, &source);
        gov_admit_decide(bytes, &r, &p, level, &a);
    }
    if (a.evict && !a.dry_run)
        d.released = gov_shrink_caches(g, a.evict);
    if (a.action != GOV_ACT_NONE)
        gov_count_caches(g, &d.buffer_after, &objects);
    pthread_mutex_unlock(&g->act_lock);

    if (a.action == GOV_ACT_NONE)
        return a.admit;
    d.wall_ms = gov_wall_ms();
    d.from = d.level = level;
    d.action = a.action;
    d.dry_run = a.dry_run;
    d.usage = r.usage;
    d.limit = r.limit;
    d.would_release = a.evict;
    gov_strlcpy(d.reason, a.reason, sizeof(d.reason));

    pthread_mutex_lock(&g->state_lock);
    fresh = gov_record_decision(g, &d);
    generation = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);
    if (fresh)
        gov_log_decision(&d, gov_action_name(d.action),
                         d.action == GOV_ACT_REFUSE ? "admission: allocation refused"
                                                    : "admission: old blocks evicted",
                         bytes, generation);
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

/* Judged against the tick timer really armed (its due time and interval),
 * not the policy's interval: a reload re-arms the timer and publishes both,
 * so a reload that changes the interval never makes a live loop look dead. */
bool gov_alive(struct gov *g)
{
    uint64_t due = atomic_load(&g->tick_due_ms);
    uint64_t grace = MAX(2ull * atomic_load(&g->armed_interval_ms), 2000ull);
    return due != 0 && gov_now_ms() <= due + grace;
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
