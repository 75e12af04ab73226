/* loop.c -- the governor thread: an sd-event loop around governor_tick().
 *
 * The loop wakes up for five reasons and counts each:
 *   timer     every policy interval_ms (always; a reload that changes the
 *             interval re-arms it at once, gov_loop_arm_tick);
 *   events    memory.events changed: POLLPRI on a read-only fd (cgroupfs),
 *             or inotify IN_MODIFY where epoll refuses the file (a directory
 *             standing in for a cgroup);
 *   pressure  a PSI trigger on memory.pressure fired (only when the file is
 *             writable cgroupfs; 1 s window, or 2 s where the kernel wants
 *             multiples of 2 s; none on a read-only cgroupfs);
 *   policy    the policy's directory changed (the kubelet swaps ..data by
 *             rename), debounced by 100 ms, or SIGHUP via gov_request_reload;
 *             the reload itself is reload.c;
 *   wake      an eventfd other threads write to for stop and reload.
 * Every wake-up except policy runs a tick right away.
 *
 * A tick is: sample -> decide (pure, decide.c) -> act, under act_lock (so
 * that admission never releases for the same overshoot), then record and
 * publish under one hold of state_lock.  Publishing also feeds the memory
 * history (history.c: one sample per second, the peak of its ticks).  Only
 * the governor thread touches the engine state and the sd-event objects;
 * results reach other threads through state_lock (see internal.h).  Every
 * sd_event_* call that can fail is checked: a timer that cannot be armed is
 * logged, and then the liveness probe (gov_alive) reports the stopped loop. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define RELOAD_DEBOUNCE_USEC 100000

enum wake { WAKE_START, WAKE_TIMER, WAKE_EVENTS, WAKE_PRESSURE };
static void rewatch_cgroup(struct gov *g);

/* What one tick saw and did. */
struct tick {
    enum wake why;
    uint64_t now;               /* monotonic ms */
    enum gov_level from;        /* the level before */
    bool ok;                    /* the sample was read */
    char err[320];              /* why not */
    struct gov_cgroup_sample s;
    struct gov_reading r;
    enum gov_limit_source source;
    struct gov_verdict v;
    uint64_t released, buffer, objects; /* the caches after the action */
};

/* ---- the tick ---------------------------------------------------------------- */

static void decide_and_act(struct gov *g, struct tick *t);
static void record_and_publish(struct gov *g, struct tick *t);

/* One pass of the control loop. */
static void governor_tick(struct gov *g, enum wake why)
{
    struct tick t = {.why = why, .now = gov_now_ms(), .from = g->engine.level};

    pthread_mutex_lock(&g->act_lock); /* admission's evictions wait (internal.h) */
    t.ok = gov_cgroup_sample(g->cg, &t.s, t.err, sizeof(t.err)) == 0;
    if (gov_cgroup_take_replaced(g->cg))
        rewatch_cgroup(g); /* the cgroup's directory was replaced: watch the new one */
    if (t.ok)
        decide_and_act(g, &t);
    pthread_mutex_unlock(&g->act_lock);
    record_and_publish(g, &t);
    if (t.ok && t.from != t.v.level && g->hooks.level_changed)
        g->hooks.level_changed(g->hooks.ud, t.from, t.v.level, t.r.usage, t.r.limit);
}

/* decide (pure), then carry out the verdict and count the caches after it. */
static void decide_and_act(struct gov *g, struct tick *t)
{
    gov_reading_from_sample(g, &g->policy, &t->s, &t->r, &t->source);
    gov_decide(&t->r, &g->policy, &g->engine, t->now, &t->v);
    /* the new level before the shrink: a shrinker that reads gov_level()
     * (governord's socket clients put it in their shrink message) sees the
     * level the shrink is for */
    atomic_store(&g->level, t->v.level);
    if (t->v.release > 0 && g->policy.mode == GOV_MODE_ENFORCE)
        t->released = gov_shrink_caches(g, t->v.release);
    gov_engine_commit(&g->engine, &t->v, &t->r, t->now);
    t->buffer = t->r.buffer; /* recounted only when the action changed it */
    t->objects = t->r.objects;
    if (t->released > 0)
        gov_count_caches(g, &t->buffer, &t->objects);
}

/* ---- record and publish -------------------------------------------------------- */

/* The tick's verdict as a decision record. */
static void make_decision(const struct gov *g, const struct tick *t, struct gov_decision *d)
{
    bool acted = t->v.action == GOV_ACT_SHRINK || t->v.action == GOV_ACT_RELEASE;
    memset(d, 0, sizeof(*d));
    d->wall_ms = gov_wall_ms();
    d->from = t->from;
    d->level = t->v.level;
    d->action = t->v.action;
    d->dry_run = acted && g->policy.mode == GOV_MODE_OBSERVE;
    d->usage = t->r.usage;
    d->limit = t->r.limit;
    d->released = t->released;
    d->would_release = t->v.release;
    d->buffer_after = t->buffer;
    gov_strlcpy(d->reason, t->v.reason, sizeof(d->reason));
}

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

/* The tick's results into the status.  Called with state_lock held. */
static void publish_locked(struct gov *g, const struct tick *t)
{
    struct gov_status *st = &g->status;
    uint64_t *wakes[] = {[WAKE_START] = NULL,
                         [WAKE_TIMER] = &st->counters.wake_timer,
                         [WAKE_EVENTS] = &st->counters.wake_events,
                         [WAKE_PRESSURE] = &st->counters.wake_pressure};
    if (wakes[t->why])
        (*wakes[t->why])++;
    st->sample_ok = t->ok;
    if (t->ok) {
        st->sample_error[0] = '\0';
        st->sample = t->s;
        st->usage = t->r.usage;
        st->limit = t->r.limit;
        st->limit_source = t->source;
        st->ratio = gov_ratio(t->r.usage, t->r.limit);
        st->level = t->v.level;
        st->buffer_bytes = t->buffer;
        st->buffer_objects = t->objects;
    } else {
        gov_strlcpy(st->sample_error, t->err, sizeof(st->sample_error));
        st->counters.sample_errors++;
    }
    st->counters.ticks++;
    st->last_tick_ms = t->now;
    record_history(g, t->now);
}

/* The log line of a fresh tick decision: its event names what changed. */
static void log_tick_decision(const struct gov_decision *d, const struct gov_verdict *v,
                              uint64_t generation)
{
    const char *event;
    char msg[160], q[16];
    size_t n;

    if (d->from != d->level) {
        event = "level_change";
        snprintf(msg, sizeof(msg), "level %s -> %s", gov_level_name(d->from),
                 gov_level_name(d->level));
    } else if (d->action == GOV_ACT_NONE && v->limit_changed) {
        event = "limit_change";
        snprintf(msg, sizeof(msg), "limit changed, level %s", gov_level_name(d->level));
    } else {
        event = gov_action_name(d->action);
        snprintf(msg, sizeof(msg), "%s at level %s", gov_action_name(d->action),
                 gov_level_name(d->level));
    }
    n = strlen(msg);
    if (d->dry_run)
        snprintf(msg + n, sizeof(msg) - n, ", would release %s (observe mode)",
                 gov_quantity_format(d->would_release, q, sizeof(q)));
    else if (d->action == GOV_ACT_SHRINK || d->action == GOV_ACT_RELEASE)
        snprintf(msg + n, sizeof(msg) - n, ", released %s",
                 gov_quantity_format(d->released, q, sizeof(q)));
    gov_log_decision(d, event, msg, 0, generation);
}

/* Records the decision (if any) and publishes the tick, under one hold of
 * state_lock; logs after it. */
static void record_and_publish(struct gov *g, struct tick *t)
{
    struct gov_decision d;
    bool recorded = t->ok && t->v.record, fresh = false;
    bool was_ok = atomic_exchange(&g->sample_ok, t->ok);
    uint64_t generation, errors;

    if (recorded)
        make_decision(g, t, &d);
    pthread_mutex_lock(&g->state_lock);
    if (recorded)
        fresh = gov_record_decision(g, &d);
    publish_locked(g, t);
    generation = g->status.policy_generation;
    errors = g->status.counters.sample_errors;
    pthread_mutex_unlock(&g->state_lock);

    if (fresh)
        log_tick_decision(&d, &t->v, generation);
    if (!t->ok && (was_ok || errors == 1))
        gov_log(LOG_ERR, "sample_error", "cannot read the memory source; governor paused",
                "{s:s}", "error", t->err);
    else if (t->ok && !was_ok && errors > 0)
        gov_log(LOG_INFO, "sample_recovered", "memory source readable again; governor resumed",
                NULL);
}

/* ---- timers ---------------------------------------------------------------------- */

static int arm_timer(sd_event_source *s, uint64_t usec, const char *what)
{
    int r = sd_event_source_set_time_relative(s, usec);
    if (r >= 0)
        r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    if (r < 0)
        gov_log(LOG_ERR, "event_loop_error", "cannot arm a timer", "{s:s, s:s}", "timer", what,
                "error", strerror(-r));
    return r;
}

int gov_loop_arm_tick(struct gov *g)
{
    uint32_t ms = g->policy.interval_ms;
    int r = arm_timer(g->timer, (uint64_t)ms * 1000u, "tick");
    if (r < 0)
        return r;
    /* the probes judge liveness against this (gov_alive); the interval
     * first, so that a reader never pairs a new due time with a shorter
     * old interval */
    atomic_store(&g->armed_interval_ms, ms);
    atomic_store(&g->tick_due_ms, gov_now_ms() + ms);
    return 0;
}

int gov_loop_retry_reload(struct gov *g, uint64_t usec)
{
    return arm_timer(g->reload_timer, usec, "reload");
}

/* ---- event sources ------------------------------------------------------------ */

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    struct gov *g = ud;
    (void)s;
    (void)usec;
    governor_tick(g, WAKE_TIMER);
    gov_loop_arm_tick(g);
    return 0;
}

/* memory.events or memory.pressure: drain, count, tick. */
static int on_memory_event(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    struct gov *g = ud;
    char buf[512];
    (void)revents;
    /* kernfs re-arms POLLPRI only after the file is read again; a failed
     * read is seen by the tick's own sample */
    if (s == g->events_src && pread(fd, buf, sizeof(buf), 0) < 0) {
    }
    governor_tick(g, s == g->pressure_src ? WAKE_PRESSURE : WAKE_EVENTS);
    return 0;
}

/* The directory fallback: only changes of memory.events count. */
static int on_events_inotify(sd_event_source *s, const struct inotify_event *ev, void *ud)
{
    (void)s;
    if (ev->len == 0 || strcmp(ev->name, "memory.events") != 0)
        return 0;
    governor_tick(ud, WAKE_EVENTS);
    return 0;
}

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    gov_reload_policy(ud, "file change", false);
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
    /* debounce: the kubelet's swap and editors' save make several events;
     * a reload already pending (debounce, settle or retry) will see them */
    if (sd_event_source_get_enabled(g->reload_timer, &enabled) < 0 || enabled == SD_EVENT_OFF)
        gov_loop_retry_reload(g, RELOAD_DEBOUNCE_USEC);
    return 0;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    struct gov *g = ud;
    uint64_t n;
    (void)s;
    (void)revents;
    /* the eventfd is non-blocking: EAGAIN only means another wake-up drained it */
    if (read(fd, &n, sizeof(n)) < 0) {
    }
    if (atomic_load(&g->stop_requested))
        return sd_event_exit(g->event, 0);
    if (atomic_exchange(&g->reload_requested, false))
        gov_reload_policy(g, "SIGHUP", true);
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
    if ((r = sd_event_source_set_enabled(g->reload_timer, SD_EVENT_OFF)) < 0 ||
        (r = gov_loop_arm_tick(g)) < 0) {
        snprintf(err, errlen, "cannot set up the timers: %s", strerror(-r));
        return -1;
    }
    /* WATCHDOG=1 from this loop when the service manager asks for it */
    if ((r = sd_event_set_watchdog(g->event, 1)) < 0)
        gov_log(LOG_WARNING, "event_loop_error", "no watchdog pings (WATCHDOG_USEC unusable)",
                "{s:s}", "error", strerror(-r));
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
        governor_tick(g, WAKE_START);
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
