/* internal.h -- the governor object, shared by governor.c, loop.c and
 * reload.c only.
 *
 * Files: governor.c is everything callers run on their own threads
 * (creation, admission, status, probes) plus what the tick and admission
 * share (caches, record_decision); loop.c is the governor thread -- the tick
 * and the event sources; reload.c is the policy reload the loop calls
 * (settle, classify, apply or reject).
 *
 * Threads and what they touch:
 *   - the governor thread (loop.c, reload.c) owns cg, engine, policy, the
 *     sd-event loop and its sources, the reload state and spare_fd; nobody
 *     else reads them;
 *   - act_lock serializes every release of cache memory: the tick holds it
 *     from its sample to the end of its shrink, admission (gov_admit(), the
 *     collector thread) from its sample to the end of its eviction, so each
 *     decides on a reading taken after the other's release, and one
 *     overshoot is never released twice.  admit_cg is used under it only;
 *   - everything another thread may read -- the published status, the
 *     decision log, the memory history, the counters, the policy in force --
 *     lives behind the one state_lock, held only for copies;
 *   - level and the armed tick timer (due time and interval) are
 *     also mirrored in atomics so that the probes (/healthz, /readyz) never
 *     wait for a lock;
 *   - lock order: act_lock, then state_lock (gov_admit reads the policy
 *     under act_lock); shrinker callbacks are called with act_lock held (the
 *     tick's and admission's releases) or with no lock (counting), never
 *     with state_lock; they take only their own locks and never call back
 *     into the governor, so no lock-order cycle is possible;
 *   - shrinkers' policy_changed callbacks and host sections' commit
 *     callbacks run on the governor thread (commit also in gov_new()) with
 *     no governor lock held; shrinkers' floor callbacks run like count. */
#ifndef GOVERNOR_INTERNAL_H
#define GOVERNOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <systemd/sd-event.h>

#include "cgroup.h"
#include "decide.h"
#include "declog.h"
#include "governor.h"
#include "history.h"
#include "log.h"
#include "policy.h"

#define GOV_MAX_SHRINKERS 8

struct gov {
    /* configuration (immutable after gov_new) */
    char *policy_path;
    char *embedded_policy;
    struct gov_hooks hooks;
    struct gov_shrinker shrinkers[GOV_MAX_SHRINKERS];
    int nshrinkers;
    struct gov_policy_section sections[GOV_POLICY_MAX_SECTIONS]; /* the host's */
    struct gov_policy_hosts hosts; /* points at sections */

    /* governor thread only */
    struct gov_cgroup *cg;
    struct gov_engine_state engine;
    int spare_fd;              /* reserve descriptor, given up to read the policy */
    uint64_t reload_backoff_usec; /* next retry after a transient error; 0 = none */
    struct gov_policy policy;  /* in force; published copy in status.policy */
    char *policy_content;      /* bytes of the policy in force */
    size_t policy_content_len;
    char *rejected_content;    /* bytes of the last rejected file, to log it once */
    size_t rejected_content_len;
    sd_event *event;
    sd_event_source *timer, *wake, *events_src, *pressure_src, *policy_watch, *reload_timer;
    int events_fd, pressure_fd;

    /* releases of cache memory (tick and admission), serialized */
    pthread_mutex_t act_lock;
    struct gov_cgroup *admit_cg; /* admission's sample, under act_lock */

    /* shared: state_lock protects status (including status.policy and the
     * counters), declog and history */
    pthread_mutex_t state_lock;
    struct gov_status status;
    struct gov_declog declog;
    struct gov_history history;

    /* lock-free mirrors */
    atomic_int level;
    atomic_uint_fast64_t tick_due_ms;   /* when the armed tick timer fires; 0 = none */
    atomic_uint armed_interval_ms;      /* the interval it was armed with */
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

/* loop.c: re-arms the tick timer for the policy's interval from now (a
 * reload changed it).  Returns 0 or a negative errno (logged). */
int gov_loop_arm_tick(struct gov *g);

/* loop.c: runs the policy reload again in `usec` (a file not settled yet, a
 * transient error).  Returns 0 or a negative errno (logged). */
int gov_loop_retry_reload(struct gov *g, uint64_t usec);

/* reload.c: reloads the policy file on the governor thread.  The host hears
 * of it through reload_begin/reload_end always when `forced` (SIGHUP),
 * otherwise only when the file really changed. */
void gov_reload_policy(struct gov *g, const char *trigger, bool forced);

/* reload.c: takes the reserve descriptor if it is not held (idempotent). */
void gov_reserve_fd(struct gov *g);

/* governor.c: a copy of the policy in force (takes state_lock). */
void gov_policy(struct gov *g, struct gov_policy *out);

/* governor.c: puts host values in force: publishes them as strings in
 * status (under state_lock) and hands them to each section's commit
 * callback (without it).  Called by gov_new() and reload.c. */
void gov_commit_host_values(struct gov *g, const struct gov_policy_host_values *hv);

/* governor.c: shared helpers used by the loop. */
void gov_count_caches(struct gov *g, uint64_t *bytes, uint64_t *objects);
uint64_t gov_shrink_caches(struct gov *g, uint64_t bytes);
void gov_reading_from_sample(struct gov *g, const struct gov_policy *p,
                             const struct gov_cgroup_sample *s, struct gov_reading *r,
                             enum gov_limit_source *source);

/* governor.c: one decision of the tick (shrink, release, level or limit
 * change) or of admission (evict, refuse): counts it and adds it to the
 * decision log.  Called with state_lock held.  Returns true when the record
 * is fresh (not a repeat folded into the previous one) and worth logging. */
bool gov_record_decision(struct gov *g, const struct gov_decision *d);

/* governor.c: the log line of a decision gov_record_decision() found fresh
 * (called without state_lock).  event and msg name it; request is the
 * admission's request in bytes (ignored for the tick's decisions). */
void gov_log_decision(const struct gov_decision *d, const char *event, const char *msg,
                      uint64_t request, uint64_t generation);

#endif
