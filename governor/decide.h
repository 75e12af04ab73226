/* decide.h -- the decision engine: pure functions, no I/O, no clocks.
 *
 * Everything the governor decides goes through here, so that it can be
 * tested as a table without a kernel:
 *
 *   gov_effective_limit()  cgroup sample + policy            -> limit, source
 *   gov_decide()           reading + policy + state + time   -> verdict
 *   gov_engine_commit()    state + verdict + time            -> next state
 *   gov_admit_decide()     request + reading + policy + level -> admission
 *
 * Levels are entered when usage/limit reaches the policy's fraction and left
 * only when it falls below that fraction minus the hysteresis:
 *
 *   normal    the collector may grow
 *   soft      the collector stops growing (new blocks replace old ones)
 *   high      the buffer shrinks so that usage returns to `target`
 *             (at most once per cooldown)
 *   critical  everything above the floor is released at once (no cooldown)
 */
#ifndef GOVERNOR_DECIDE_H
#define GOVERNOR_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "governor.h" /* levels, actions, struct gov_policy, the sample */

/* What the engine looks at on one tick. */
struct gov_reading {
    uint64_t usage;       /* the policy's signal (working set or current) */
    uint64_t limit;       /* effective limit in bytes (0 is a real limit) */
    uint64_t buffer;      /* bytes held by all shrinkers */
    uint64_t objects;     /* objects (blocks) they hold; informative */
    uint64_t reclaimable; /* bytes held above the shrinkers' floors */
};

/* What the engine remembers between ticks. */
struct gov_engine_state {
    enum gov_level level;
    bool shrunk;              /* a shrink happened at least once */
    uint64_t last_shrink_ms;  /* monotonic time of the last shrink */
    uint64_t last_limit;      /* limit seen on the previous tick; 0 = none yet */
    bool have_limit;
};

struct gov_verdict {
    enum gov_level level;   /* the level after this tick */
    enum gov_action action;
    uint64_t release;       /* bytes to release (shrink/release) */
    bool limit_changed;
    bool record;            /* worth a decision record */
    char reason[200];       /* human explanation, e.g.
                               "working set 87% of 512Mi >= high 85%" */
};

/* Picks the limit to govern against: the cgroup's when it has one, else the
 * policy's `limit`, else what the host can give: min(MemTotal, current +
 * MemAvailable), so that other processes' memory counts too. */
void gov_effective_limit(const struct gov_cgroup_sample *s, const struct gov_policy *p,
                         uint64_t *limit, enum gov_limit_source *source);

/* The usage figure the policy asks for. */
uint64_t gov_signal_value(const struct gov_cgroup_sample *s, const struct gov_policy *p);

/* usage/limit; +infinity for any usage against a zero limit. */
double gov_ratio(uint64_t usage, uint64_t limit);

/* Decides one tick.  now_ms is monotonic time (for the cooldown). */
void gov_decide(const struct gov_reading *r, const struct gov_policy *p,
                const struct gov_engine_state *st, uint64_t now_ms, struct gov_verdict *v);

/* Advances the state after the verdict was carried out (or, in observe
 * mode, would have been). */
void gov_engine_commit(struct gov_engine_state *st, const struct gov_verdict *v,
                       const struct gov_reading *r, uint64_t now_ms);

/* An allocation request from a governed cache. */
struct gov_admission {
    enum gov_action action; /* NONE, EVICT or REFUSE (what enforce mode does) */
    bool admit;       /* the allocation may go ahead (after evicting) */
    uint64_t evict;   /* bytes to evict first (0 = none) */
    bool dry_run;     /* observe mode: admit is true and nothing may be
                         evicted; action and evict say what enforce would do */
    char reason[200];
};

/* Decides whether `request` more bytes may be allocated now, given a fresh
 * reading and the governor's current level.  In enforce mode an allocation
 * that would pass `high`, or grow the buffer at soft or above, must first
 * evict old data; if even evicting everything above the floor (the
 * reading's reclaimable bytes) cannot make room it is refused (and nothing
 * is evicted), so admission never takes the buffer below the floor.  In observe mode everything is admitted
 * and dry_run is set. */
void gov_admit_decide(uint64_t request, const struct gov_reading *r, const struct gov_policy *p,
                      enum gov_level level, struct gov_admission *a);

#endif
