/* loop.c -- the governor thread: an sd-event loop around governor_tick().
 *
 * The loop wakes up for five reasons and counts each:
 *   timer     every policy interval_ms (always);
 *   events    memory.events changed: POLLPRI on a read-only fd (cgroupfs),
 *             or inotify IN_MODIFY where epoll refuses the file (a directory
 *             standing in for a cgroup);
 *   pressure  a PSI trigger on memory.pressure fired (only when the file is
 *             writable cgroupfs; 1 s window, or 2 s where the kernel wants
 *             multiples of 2 s; none on a read-only cgroupfs);
 *   policy    the policy's directory changed (the kubelet swaps ..data by
 *             rename), debounced by 100 ms, or SIGHUP via gov_request_reload;
 *   wake      an eventfd other threads write to for stop and reload.
 * Every wake-up except policy runs a tick right away.
 *
 * A tick is: sample -> decide (pure, decide.c) -> act -> record -> publish.
 * Publishing also feeds the memory history (history.c: one sample per
 * second, the peak of its ticks) inside the same hold of state_lock.
 * Only the governor thread touches the engine state and the sd-event
 * objects; results reach other threads through state_lock (see internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "internal.h"
#include "util.h"

#define RELOAD_DEBOUNCE_USEC 100000
/* A policy file must have been left alone this long before it is read. */
#define POLICY_QUIET_USEC 250000

static void governor_tick(struct gov *g);
static void rewatch_cgroup(struct gov *g);

/* ---- publishing ------------------------------------------------------------ */

/* Adds the status just published to the history (one sample per second;
 * ticks within a second fold into it).  Called with state_lock held, so it
 * only copies a few numbers; the wall clock is read only for a new second. */
static void record_history(struct gov *g, uint64_t now_ms)
{
    struct gov_history_sample h = {
        .limit = g->status.limit,
        .level = (uint8_t)g->status.level,
        .ok = g->status.sample_ok,
    };
    if (h.ok) {
        h.usage = g->status.usage;
        h.working_set = g->status.sample.working_set;
        h.current = g->status.sample.current;
        h.buffer = g->status.buffer_bytes;
    }
    if (gov_history_opens(&g->history, now_ms))
        h.wall_ms = gov_wall_ms();
    gov_history_add(&g->history, now_ms, &h);
}

static void publish_error(struct gov *g, const char *err)
{
    bool was_ok = atomic_exchange(&g->sample_ok, false);
    pthread_mutex_lock(&g->state_lock);
    g->status.sample_ok = false;
    gov_strlcpy(g->status.sample_error, err, sizeof(g->status.sample_error));
    g->status.counters.sample_errors++;
    g->status.counters.ticks++;
    g->status.last_tick_ms = gov_now_ms();
    record_history(g, g->status.last_tick_ms);
    pthread_mutex_unlock(&g->state_lock);
    if (was_ok || g->status.counters.sample_errors == 1)
        gov_log(LOG_ERR, "sample_error", "cannot read the memory source; governor paused",
                "{s:s}", "error", err);
}

/* buffer and objects: the caches after the tick's action, counted by the
 * caller outside state_lock (shrinker callbacks never run under it). */
static void publish(struct gov *g, const struct gov_cgroup_sample *s, const struct gov_reading *r,
                    enum gov_limit_source source, uint64_t buffer, uint64_t objects,
                    uint64_t now_ms)
{
    bool was_ok = atomic_exchange(&g->sample_ok, true);

    pthread_mutex_lock(&g->state_lock);
    g->status.sample_ok = true;
    g->status.sample_error[0] = '\0';
    g->status.sample = *s;
    g->status.usage = r->usage;
    g->status.limit = r->limit;
    g->status.limit_source = source;
    g->status.ratio = gov_ratio(r->usage, r->limit);
    g->status.level = g->engine.level;
    g->status.buffer_bytes = buffer;
    g->status.buffer_objects = objects;
    g->status.counters.ticks++;
    g->status.last_tick_ms = now_ms;
    record_history(g, g->status.last_tick_ms);
    pthread_mutex_unlock(&g->state_lock);
    if (!was_ok && g->status.counters.sample_errors > 0)
        gov_log(LOG_INFO, "sample_recovered", "memory source readable again; governor resumed",
                NULL);
}

/* Turns a verdict into a decision record and a log line. */
static void record(struct gov *g, enum gov_level from, const struct gov_verdict *v,
                   const struct gov_reading *r, uint64_t released, uint64_t buffer_after)
{
    struct gov_decision d = {0};
    uint64_t generation;
    bool acted = v->action == GOV_ACT_SHRINK || v->action == GOV_ACT_RELEASE;
    bool fresh;
    const char *event;
    char msg[160];

    d.wall_ms = gov_wall_ms();
    d.from = from;
    d.level = v->level;
    d.action = v->action;
    d.dry_run = acted && g->policy.mode == GOV_MODE_OBSERVE;
    d.usage = r->usage;
    d.limit = r->limit;
    d.released = released;
    d.would_release = v->release;
    d.buffer_after = buffer_after;
    gov_strlcpy(d.reason, v->reason, sizeof(d.reason));

    pthread_mutex_lock(&g->state_lock);
    if (acted && !d.dry_run) {
        g->status.counters.actions[v->level]++;
        g->status.counters.released_bytes[v->level] += released;
    }
    fresh = gov_declog_push(&g->declog, &d);
    generation = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);

    if (!fresh)
        return;
    if (from != v->level) {
        event = "level_change";
        snprintf(msg, sizeof(msg), "level %s -> %s", gov_level_name(from),
                 gov_level_name(v->level));
    } else if (v->action == GOV_ACT_NONE && v->limit_changed) {
        event = "limit_change";
        snprintf(msg, sizeof(msg), "limit changed, level %s", gov_level_name(v->level));
    } else {
        event = gov_action_name(v->action);
        snprintf(msg, sizeof(msg), "%s at level %s", gov_action_name(v->action),
                 gov_level_name(v->level));
    }
    if (acted) {
        size_t n = strlen(msg);
        char q[16];
        if (d.dry_run)
            snprintf(msg + n, sizeof(msg) - n, ", would release %s (observe mode)",
                     gov_quantity_format(d.would_release, q, sizeof(q)));
        else
            snprintf(msg + n, sizeof(msg) - n, ", released %s",
                     gov_quantity_format(released, q, sizeof(q)));
    }
    /* "level" is the log line's severity: the governor's levels are
     * from_level and governor_level */
    gov_log(v->level >= GOV_LEVEL_HIGH ? LOG_WARNING : LOG_INFO, event, msg,
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I}", "from_level",
            gov_level_name(from), "governor_level", gov_level_name(v->level), "action",
            gov_action_name(v->action), "reason", d.reason, "usage_bytes", (json_int_t)d.usage,
            "limit_bytes", (json_int_t)d.limit, "released_bytes", (json_int_t)released,
            "would_release_bytes", (json_int_t)d.would_release, "buffer_bytes",
            (json_int_t)d.buffer_after, "dry_run", d.dry_run, "policy_generation",
            (json_int_t)generation);
}

/* ---- the tick ---------------------------------------------------------------- */

/* One pass of the control loop: sample, decide, act, record, publish. */
static void governor_tick(struct gov *g)
{
    struct gov_cgroup_sample s;
    struct gov_reading r;
    struct gov_verdict v;
    enum gov_limit_source source;
    enum gov_level from = g->engine.level;
    uint64_t now = gov_now_ms(), released = 0, buffer, objects;
    char err[320];

    atomic_store(&g->heartbeat_ms, now);
    int rc = gov_cgroup_sample(g->cg, &s, err, sizeof(err));
    if (gov_cgroup_take_replaced(g->cg))
        rewatch_cgroup(g); /* the cgroup's directory was replaced */
    if (rc < 0) {
        publish_error(g, err);
        return;
    }
    gov_reading_from_sample(g, &g->policy, &s, &r, &source);
    gov_decide(&r, &g->policy, &g->engine, now, &v);

    if (v.release > 0 && g->policy.mode == GOV_MODE_ENFORCE)
        released = gov_shrink_caches(g, v.release);
    gov_engine_commit(&g->engine, &v, &r, now);
    atomic_store(&g->level, v.level);

    buffer = r.buffer; /* recounted only when the action changed it */
    objects = r.objects;
    if (released > 0)
        gov_count_caches(g, &buffer, &objects);

    if (v.record)
        record(g, from, &v, &r, released, buffer);
    publish(g, &s, &r, source, buffer, objects, now);
    if (from != v.level && g->hooks.level_changed)
        g->hooks.level_changed(g->hooks.ud, from, v.level, r.usage, r.limit);
}

/* ---- policy reload ------------------------------------------------------------ */

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

/* A file rewritten in place (truncate, then write) can be read half
 * written, and half a policy -- even an empty file -- may well be valid.  So
 * a policy is read only when its file has not changed for POLICY_QUIET_USEC,
 * and used only when it did not change while it was read; otherwise the
 * reload is retried after the quiet period.  (The kubelet's atomic ..data
 * swap never shows a partial file; editors and `echo >` do.) */
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

static void retry_reload_later(struct gov *g)
{
    sd_event_source_set_time_relative(g->reload_timer, POLICY_QUIET_USEC);
    sd_event_source_set_enabled(g->reload_timer, SD_EVENT_ONESHOT);
}

/* The generation of the policy in force (only this thread changes it). */
static uint64_t current_generation(struct gov *g)
{
    uint64_t gen;
    pthread_mutex_lock(&g->state_lock);
    gen = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);
    return gen;
}

/* Reloads the policy file.  The host hears of it through reload_begin and
 * reload_end (governord: sd_notify RELOADING=1 ... READY=1): always when
 * `forced` (SIGHUP, which a service manager may send and then wait for the
 * pair), otherwise only when the file really changed. */
static void reload_policy(struct gov *g, const char *trigger, bool forced)
{
    struct gov_policy_errors *errs = NULL;
    struct stat before;
    struct gov_policy p;
    char *content = NULL, summary[512];
    size_t len = 0;
    bool begun = false, ok = true;
    uint64_t generation;
    int r;

    if (forced && g->hooks.reload_begin) {
        g->hooks.reload_begin(g->hooks.ud);
        begun = true;
    }
    if (!g->policy_path)
        goto out; /* the embedded policy cannot change */
    if (!policy_file_quiet(g->policy_path, &before)) {
        retry_reload_later(g); /* a SIGHUP's RELOADING=1 still gets its READY=1 */
        goto out;
    }
    errs = malloc(sizeof(*errs));
    if (!errs) {
        gov_log(LOG_ERR, "reload_failed", "policy reload skipped: out of memory", NULL);
        ok = false;
        goto out;
    }
    r = gov_policy_parse_file(g->policy_path, &p, errs, &content, &len);
    if (policy_file_changed(g->policy_path, &before)) {
        retry_reload_later(g); /* written while we read it */
        goto out;
    }
    if (same_bytes(content, len, g->policy_content, g->policy_content_len)) {
        /* unchanged (an unrelated file in the directory, or a revert) */
        pthread_mutex_lock(&g->state_lock);
        bool had_error = g->status.policy_error[0] != '\0';
        g->status.policy_error[0] = '\0';
        pthread_mutex_unlock(&g->state_lock);
        if (had_error)
            gov_log(LOG_INFO, "reload", "policy file is back to the policy in force", NULL);
        else if (strcmp(trigger, "SIGHUP") == 0)
            gov_log(LOG_INFO, "reload", "policy unchanged", "{s:s}", "trigger", trigger);
        free(g->rejected_content);
        g->rejected_content = NULL;
        goto out;
    }
    gov_policy_errors_summary(errs, summary, sizeof(summary));
    if (r < 0) {
        /* the same broken file, or the same unreadable path: reported already */
        bool seen;
        pthread_mutex_lock(&g->state_lock);
        seen = content ? same_bytes(content, len, g->rejected_content, g->rejected_content_len)
                       : strcmp(summary, g->status.policy_error) == 0;
        pthread_mutex_unlock(&g->state_lock);
        if (seen) {
            ok = false;
            goto out;
        }
    }

    if (!begun && g->hooks.reload_begin) {
        g->hooks.reload_begin(g->hooks.ud);
        begun = true;
    }
    pthread_mutex_lock(&g->state_lock);
    if (r == 0) {
        g->status.policy = p;
        g->status.policy_generation++;
        g->status.policy_loaded_wall_ms = gov_wall_ms();
        g->status.policy_error[0] = '\0';
        g->status.counters.reloads_ok++;
    } else {
        gov_strlcpy(g->status.policy_error, summary, sizeof(g->status.policy_error));
        g->status.counters.reloads_failed++;
    }
    generation = g->status.policy_generation;
    pthread_mutex_unlock(&g->state_lock);

    if (r == 0) {
        g->policy = p;
        atomic_store(&g->interval_ms, p.interval_ms);
        free(g->policy_content);
        g->policy_content = content;
        g->policy_content_len = len;
        content = NULL;
        free(g->rejected_content);
        g->rejected_content = NULL;
        gov_log(LOG_INFO, "reload", "new policy in force", "{s:s, s:I, s:s, s:s}", "trigger",
                trigger, "policy_generation", (json_int_t)generation, "path", g->policy_path,
                "mode", gov_mode_name(p.mode));
    } else {
        json_t *lines = json_array();
        ok = false;
        for (int i = 0; lines && i < errs->count; i++) {
            char one[512];
            gov_policy_error_line(errs, i, one, sizeof(one));
            json_array_append_new(lines, json_string(one));
        }
        gov_log(LOG_ERR, "reload_failed", "policy rejected; previous policy stays in force",
                "{s:s, s:I, s:s, s:o}", "trigger", trigger, "policy_generation",
                (json_int_t)generation, "error", summary, "errors",
                lines ? lines : json_array());
        free(g->rejected_content);
        g->rejected_content = content;
        g->rejected_content_len = len;
        content = NULL;
    }
out:
    if (begun && g->hooks.reload_end)
        g->hooks.reload_end(g->hooks.ud, ok, current_generation(g));
    free(content);
    free(errs);
}

/* ---- event sources ------------------------------------------------------------ */

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    struct gov *g = ud;
    (void)usec;
    pthread_mutex_lock(&g->state_lock);
    g->status.counters.wake_timer++;
    pthread_mutex_unlock(&g->state_lock);
    governor_tick(g);
    sd_event_source_set_time_relative(s, (uint64_t)g->policy.interval_ms * 1000u);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    return 0;
}

/* memory.events or memory.pressure: drain, count, tick. */
static int on_memory_event(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    struct gov *g = ud;
    char buf[512];
    (void)revents;
    if (s == g->events_src) {
        /* kernfs re-arms POLLPRI only after the file is read again */
        if (pread(fd, buf, sizeof(buf), 0) < 0) {
        }
    }
    pthread_mutex_lock(&g->state_lock);
    if (s == g->pressure_src)
        g->status.counters.wake_pressure++;
    else
        g->status.counters.wake_events++;
    pthread_mutex_unlock(&g->state_lock);
    governor_tick(g);
    return 0;
}

/* The directory fallback: only changes of memory.events count. */
static int on_events_inotify(sd_event_source *s, const struct inotify_event *ev, void *ud)
{
    struct gov *g = ud;
    (void)s;
    if (ev->len == 0 || strcmp(ev->name, "memory.events") != 0)
        return 0;
    pthread_mutex_lock(&g->state_lock);
    g->status.counters.wake_events++;
    pthread_mutex_unlock(&g->state_lock);
    governor_tick(g);
    return 0;
}

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    reload_policy(ud, "file change", false);
    return 0;
}

static int on_policy_dir(sd_event_source *s, const struct inotify_event *ev, void *ud)
{
    struct gov *g = ud;
    int enabled = SD_EVENT_OFF;
    (void)s;
    (void)ev;
    pthread_mutex_lock(&g->state_lock);
    g->status.counters.wake_policy++;
    pthread_mutex_unlock(&g->state_lock);
    /* debounce: the kubelet's swap and editors' save make several events */
    sd_event_source_get_enabled(g->reload_timer, &enabled);
    if (enabled == SD_EVENT_OFF) {
        sd_event_source_set_time_relative(g->reload_timer, RELOAD_DEBOUNCE_USEC);
        sd_event_source_set_enabled(g->reload_timer, SD_EVENT_ONESHOT);
    }
    return 0;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    struct gov *g = ud;
    uint64_t n;
    (void)s;
    (void)revents;
    if (read(fd, &n, sizeof(n)) < 0) {
    }
    if (atomic_load(&g->stop_requested))
        return sd_event_exit(g->event, 0);
    if (atomic_exchange(&g->reload_requested, false))
        reload_policy(g, "SIGHUP", true);
    return 0;
}

static bool on_cgroupfs(int fd)
{
    struct statfs sfs;
    return fstatfs(fd, &sfs) == 0 &&
           (sfs.f_type == CGROUP2_SUPER_MAGIC || sfs.f_type == CGROUP_SUPER_MAGIC);
}

/* memory.events: POLLPRI where the kernel supports it (cgroupfs); else an
 * inotify watch on the cgroup's directory filtered by name, which sees the
 * file changed in place as well as replaced by rename.
 *
 * kernfs reports POLLPRI while the file's change count differs from the one
 * this open file last read, and a freshly opened file has read none: without
 * a first read the loop would wake at once for a change that never happened
 * (seen on a real v2 kernel, 6.1: wakeups.events was 1 right after start). */
static void watch_events(struct gov *g)
{
    const char *path = gov_cgroup_events_path(g->cg);
    const char *how;
    char buf[512];
    int r;

    if (*path)
        g->events_fd = gov_open_regular(path, buf, sizeof(buf)); /* a FIFO must not block */
    if (!*path) {
        how = "none: no memory.events (cgroup v1 or host)";
    } else if (g->events_fd < 0) {
        how = "none: cannot open memory.events";
    } else if (pread(g->events_fd, buf, sizeof(buf), 0) >= 0 &&
               sd_event_add_io(g->event, &g->events_src, g->events_fd, EPOLLPRI,
                               on_memory_event, g) == 0) {
        how = "pollpri";
    } else {
        close(g->events_fd);
        g->events_fd = -1;
        r = sd_event_add_inotify(g->event, &g->events_src, g->status.cgroup.dir,
                                 IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE,
                                 on_events_inotify, g);
        how = r == 0 ? "inotify" : "none: neither POLLPRI nor inotify";
    }
    gov_strlcpy(g->status.events_watch, how, sizeof(g->status.events_watch));
}

/* memory.pressure: a PSI trigger where the file is writable cgroupfs. */
static void watch_pressure(struct gov *g)
{
    static const char *const triggers[] = {"some 150000 1000000", "some 150000 2000000"};
    const char *path = gov_cgroup_pressure_path(g->cg);
    char how[96] = "none: no memory.pressure (cgroup v1 or host)";
    int fd;

    if (*path) {
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            snprintf(how, sizeof(how), "none: memory.pressure not writable (%s)", strerror(errno));
        } else if (!on_cgroupfs(fd)) {
            snprintf(how, sizeof(how), "none: memory.pressure is not on cgroupfs");
            close(fd);
        } else {
            const char *trigger = NULL;
            int werr = 0;
            for (size_t i = 0; i < ARRAY_SIZE(triggers) && !trigger; i++) {
                if (write(fd, triggers[i], strlen(triggers[i]) + 1) >= 0)
                    trigger = triggers[i];
                else if ((werr = errno) != EINVAL)
                    break; /* EROFS, EACCES, EPERM: no trigger for us */
            }
            if (!trigger) {
                snprintf(how, sizeof(how), "none: trigger refused (%s)", strerror(werr));
                close(fd);
            } else if (sd_event_add_io(g->event, &g->pressure_src, fd, EPOLLPRI, on_memory_event,
                                       g) < 0) {
                snprintf(how, sizeof(how), "none: cannot poll memory.pressure");
                close(fd);
            } else {
                g->pressure_fd = fd;
                gov_strlcpy(how, trigger, sizeof(how));
            }
        }
    }
    gov_strlcpy(g->status.pressure_trigger, how, sizeof(g->status.pressure_trigger));
}

/* The cgroup's directory was replaced (cgroup.c followed it): the
 * memory.events watch and the PSI trigger still sit on the old directory,
 * so both are set up again on the new one. */
static void rewatch_cgroup(struct gov *g)
{
    g->events_src = sd_event_source_disable_unref(g->events_src);
    g->pressure_src = sd_event_source_disable_unref(g->pressure_src);
    if (g->events_fd >= 0)
        close(g->events_fd);
    if (g->pressure_fd >= 0)
        close(g->pressure_fd);
    g->events_fd = g->pressure_fd = -1;
    pthread_mutex_lock(&g->state_lock);
    watch_events(g);
    watch_pressure(g);
    pthread_mutex_unlock(&g->state_lock);
    gov_log(LOG_INFO, "cgroup_replaced",
            "cgroup directory replaced; files reopened and memory.events watch moved",
            "{s:s, s:s}", "cgroup", g->status.cgroup.dir, "events_watch", g->status.events_watch);
}

/* The policy file's directory: the kubelet replaces ..data, not the file. */
static int watch_policy(struct gov *g, char *err, size_t errlen)
{
    char *copy;
    int r;
    if (!g->policy_path)
        return 0;
    copy = strdup(g->policy_path);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r = sd_event_add_inotify(g->event, &g->policy_watch, dirname(copy),
                             IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB,
                             on_policy_dir, g);
    if (r < 0)
        snprintf(err, errlen, "cannot watch %s: %s", copy, strerror(-r));
    free(copy);
    return r < 0 ? -1 : 0;
}

static int loop_setup(struct gov *g, char *err, size_t errlen)
{
    int r = sd_event_new(&g->event);
    if (r < 0) {
        snprintf(err, errlen, "sd_event_new: %s", strerror(-r));
        return -1;
    }
    if ((r = sd_event_add_time_relative(g->event, &g->timer, CLOCK_MONOTONIC,
                                        (uint64_t)g->policy.interval_ms * 1000u, 1000, on_timer,
                                        g)) < 0 ||
        (r = sd_event_add_time_relative(g->event, &g->reload_timer, CLOCK_MONOTONIC,
                                        RELOAD_DEBOUNCE_USEC, 1000, on_reload_timer, g)) < 0 ||
        (r = sd_event_add_io(g->event, &g->wake, g->wake_fd, EPOLLIN, on_wake, g)) < 0) {
        snprintf(err, errlen, "cannot set up the event loop: %s", strerror(-r));
        return -1;
    }
    sd_event_source_set_enabled(g->reload_timer, SD_EVENT_OFF);
    /* WATCHDOG=1 from this loop when the service manager asks for it */
    sd_event_set_watchdog(g->event, 1);
    if (watch_policy(g, err, errlen) < 0)
        return -1;
    pthread_mutex_lock(&g->state_lock);
    watch_events(g);
    watch_pressure(g);
    pthread_mutex_unlock(&g->state_lock);
    return 0;
}

static void loop_teardown(struct gov *g)
{
    sd_event_source **all[] = {&g->timer,        &g->wake,         &g->events_src,
                               &g->pressure_src, &g->policy_watch, &g->reload_timer};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        *all[i] = sd_event_source_disable_unref(*all[i]);
    if (g->events_fd >= 0)
        close(g->events_fd);
    if (g->pressure_fd >= 0)
        close(g->pressure_fd);
    g->events_fd = g->pressure_fd = -1;
    g->event = sd_event_unref(g->event);
}

void *gov_loop_thread(void *arg)
{
    struct gov *g = arg;
    char err[256] = "";
    int r;

    pthread_setname_np(pthread_self(), "governor"); /* for top -H and bench/overhead.sh */
    r = loop_setup(g, err, sizeof(err));

    if (r == 0) {
        gov_log(LOG_INFO, "governor_start", "governor loop running",
                "{s:s, s:s, s:s, s:s, s:I}", "cgroup_version",
                gov_cg_version_name(g->status.cgroup.version), "cgroup", g->status.cgroup.how,
                "events_watch", g->status.events_watch, "pressure_trigger",
                g->status.pressure_trigger, "interval_ms", (json_int_t)g->policy.interval_ms);
        /* the first sample is taken before gov_start() returns, so that the
         * status (sd_notify READY=1, /readyz) has a level and a usage */
        governor_tick(g);
    }

    pthread_mutex_lock(&g->start_lock);
    g->start_result = r < 0 ? -1 : 0;
    gov_strlcpy(g->start_error, err, sizeof(g->start_error));
    pthread_cond_signal(&g->start_cond);
    pthread_mutex_unlock(&g->start_lock);

    if (r == 0) {
        r = sd_event_loop(g->event);
        if (r < 0)
            gov_log(LOG_ERR, "governor_stop", "event loop failed", "{s:s}", "error",
                    strerror(-r));
    }
    loop_teardown(g);
    return NULL;
}
