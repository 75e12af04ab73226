/* internal.h -- the governor object, shared by governor.c and loop.c only.
 *
 * Threads and what they touch:
 *   - the governor thread (loop.c) owns cg, engine, policy, the sd-event
 *     loop and its sources; nobody else reads them;
 *   - callers of gov_admit() (the collector thread) own admit_cg, serialized
 *     by admit_lock;
 *   - everything another thread may read -- the published status, the
 *     decision log, the memory history, the counters, the policy in force --
 *     lives behind the one state_lock, held only for copies;
 *   - level, heartbeat and interval are also mirrored in atomics so that the
 *     probes (/healthz, /readyz) and the collector never wait for the lock;
 *   - shrinker callbacks are never called with state_lock held (they take
 *     their own locks: no lock-order cycle is possible). */
#ifndef GOVERNOR_INTERNAL_H
#define GOVERNOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <systemd/sd-event.h>

#include "governor.h"

#define GOV_MAX_SHRINKERS 8

struct gov {
    /* configuration (immutable after gov_new) */
    char *policy_path;
    char *embedded_policy;
    bool collector_off;        /* gov_config.collector_off */
    struct gov_hooks hooks;
    struct gov_shrinker shrinkers[GOV_MAX_SHRINKERS];
    int nshrinkers;

    /* governor thread only */
    struct gov_cgroup *cg;
    struct gov_engine_state engine;
    struct gov_policy policy;  /* in force; published copy in status.policy */
    char *policy_content;      /* bytes of the policy in force */
    size_t policy_content_len;
    char *rejected_content;    /* bytes of the last rejected file, to log it once */
    size_t rejected_content_len;
    sd_event *event;
    sd_event_source *timer, *wake, *events_src, *pressure_src, *policy_watch, *reload_timer;
    int events_fd, pressure_fd;

    /* admission callers only, serialized by admit_lock */
    pthread_mutex_t admit_lock;
    struct gov_cgroup *admit_cg;

    /* shared: state_lock protects status (including status.policy and the
     * counters), declog and history */
    pthread_mutex_t state_lock;
    struct gov_status status;
    struct gov_declog declog;
    struct gov_history history;

    /* lock-free mirrors */
    atomic_int level;
    atomic_uint_fast64_t heartbeat_ms;
    atomic_uint interval_ms;
    atomic_bool sample_ok;

    /* thread control */
    pthread_t thread;
    bool running;
    int wake_fd;               /* eventfd: stop or reload requested */
    atomic_bool stop_requested, reload_requested;
    pthread_mutex_t start_lock; /* with start_cond: the thread reports set-up */
    pthread_cond_t start_cond;
    int start_result;           /* 1 = pending, 0 = ok, -1 = failed */
    char start_error[256];
};

/* loop.c: the governor thread's body. */
void *gov_loop_thread(void *arg);

/* governor.c: shared helpers used by the loop. */
void gov_count_caches(struct gov *g, uint64_t *bytes, uint64_t *objects);
uint64_t gov_shrink_caches(struct gov *g, uint64_t bytes);
void gov_reading_from_sample(struct gov *g, const struct gov_policy *p,
                             const struct gov_cgroup_sample *s, struct gov_reading *r,
                             enum gov_limit_source *source);

#endif
