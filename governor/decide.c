/* decide.c -- the decision engine (see decide.h for the rules).
 *
 * No function here reads a file, a clock or a global: the same inputs give
 * the same verdict, which is what tests/unit/test_decide.c relies on.  Byte
 * targets are computed in long double and truncated, which is exact for the
 * sizes that occur (limits are whole pages, below 2^62). */
#include "decide.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "quantity.h"
#include "util.h"

const char *gov_level_name(enum gov_level l)
{
    static const char *names[] = {"normal", "soft", "high", "critical"};
    return (unsigned)l < ARRAY_SIZE(names) ? names[l] : "unknown";
}

const char *gov_action_name(enum gov_action a)
{
    static const char *names[] = {"none", "hold", "shrink", "release", "evict", "refuse"};
    return (unsigned)a < ARRAY_SIZE(names) ? names[a] : "unknown";
}

const char *gov_limit_source_name(enum gov_limit_source s)
{
    static const char *names[] = {"cgroup", "policy", "host"};
    return (unsigned)s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

void gov_effective_limit(const struct gov_cgroup_sample *s, const struct gov_policy *p,
                         uint64_t *limit, enum gov_limit_source *source)
{
    if (s->has_limit) {
        *limit = s->limit;
        *source = GOV_LIMIT_CGROUP;
    } else if (p->limit) {
        *limit = p->limit;
        *source = GOV_LIMIT_POLICY;
    } else {
        /* what the host can still give us: the memory we have plus what is
         * available, never more than the RAM there is */
        *limit = s->host_memtotal;
        if (s->host_available && s->current + s->host_available < *limit)
            *limit = s->current + s->host_available;
        *source = GOV_LIMIT_HOST;
    }
}

uint64_t gov_signal_value(const struct gov_cgroup_sample *s, const struct gov_policy *p)
{
    return p->signal == GOV_SIGNAL_CURRENT ? s->current : s->working_set;
}

double gov_ratio(uint64_t usage, uint64_t limit)
{
    if (limit == 0)
        return usage ? INFINITY : 0.0;
    return (double)usage / (double)limit;
}

static double threshold(const struct gov_policy *p, enum gov_level l)
{
    switch (l) {
    case GOV_LEVEL_SOFT:
        return p->soft;
    case GOV_LEVEL_HIGH:
        return p->high;
    case GOV_LEVEL_CRITICAL:
        return p->critical;
    default:
        return 0.0;
    }
}

/* fraction * limit in bytes, saturating. */
static uint64_t bytes_at(double fraction, uint64_t limit)
{
    long double b = (long double)fraction * (long double)limit;
    return b >= (long double)UINT64_MAX ? UINT64_MAX : (uint64_t)b;
}

static const char *signal_label(const struct gov_policy *p)
{
    return p->signal == GOV_SIGNAL_CURRENT ? "usage" : "working set";
}

/* "working set 87% of 512Mi" */
static void describe_usage(const struct gov_reading *r, const struct gov_policy *p, char *buf,
                           size_t len)
{
    char lim[16];
    double ratio = gov_ratio(r->usage, r->limit);
    gov_quantity_format(r->limit, lim, sizeof(lim));
    if (isinf(ratio))
        snprintf(buf, len, "%s %s against a zero limit", signal_label(p),
                 gov_quantity_format(r->usage, (char[16]){0}, 16));
    else
        snprintf(buf, len, "%s %.0f%% of %s", signal_label(p), floor(ratio * 100.0), lim);
}

/* Whether a limit moved from `from` to `to` by 1% of `from` or more.
 * diff * 100 >= from would wrap for a difference above 2^64 / 100 (limits
 * above about 2^57); diff >= ceil(from / 100) is the same test for whole
 * numbers and cannot. */
static bool limit_moved(uint64_t from, uint64_t to)
{
    uint64_t diff = to > from ? to - from : from - to;
    return diff != 0 && diff >= from / 100 + (from % 100 != 0);
}

void gov_decide(const struct gov_reading *r, const struct gov_policy *p,
                const struct gov_engine_state *st, uint64_t now_ms, struct gov_verdict *v)
{
    double ratio = gov_ratio(r->usage, r->limit);
    enum gov_level raw = GOV_LEVEL_NORMAL, level;
    char usage[96], prefix[64] = "", action[96] = "";
    const char *cmp;

    memset(v, 0, sizeof(*v));

    /* 1. the level: up at once, down only past the hysteresis band */
    for (int l = GOV_LEVEL_CRITICAL; l > GOV_LEVEL_NORMAL; l--)
        if (ratio >= threshold(p, (enum gov_level)l)) {
            raw = (enum gov_level)l;
            break;
        }
    level = st->level;
    if (raw >= level)
        level = raw;
    else
        while (level > raw && ratio < threshold(p, level) - p->hysteresis)
            level--;
    v->level = level;

    /* 2. the action of that level */
    if (level == GOV_LEVEL_CRITICAL && r->reclaimable > 0) {
        v->action = GOV_ACT_RELEASE;
        v->release = r->reclaimable;
    } else if (level == GOV_LEVEL_HIGH) {
        uint64_t goal = bytes_at(p->target, r->limit);
        uint64_t want = r->usage > goal ? r->usage - goal : 0;
        bool cooled = !st->shrunk || now_ms - st->last_shrink_ms >= p->cooldown_ms;
        if (want > 0 && r->reclaimable > 0 && cooled) {
            v->action = GOV_ACT_SHRINK;
            v->release = MIN(want, r->reclaimable);
        }
    } else if (level == GOV_LEVEL_SOFT && st->level < GOV_LEVEL_SOFT) {
        v->action = GOV_ACT_HOLD;
    }

    /* 3. whether it is worth a record, and why */
    /* a resize is a change of the limit; drift under 1% (the host fallback
     * moves with MemAvailable) is not */
    v->limit_changed = st->have_limit && limit_moved(st->last_limit, r->limit);
    v->record = v->limit_changed || level != st->level || v->action == GOV_ACT_SHRINK ||
                v->action == GOV_ACT_RELEASE;
    if (!v->record)
        return;

    describe_usage(r, p, usage, sizeof(usage));
    if (v->limit_changed) {
        char a[16], b[16];
        snprintf(prefix, sizeof(prefix), "limit %s -> %s: ",
                 gov_quantity_format(st->last_limit, a, sizeof(a)),
                 gov_quantity_format(r->limit, b, sizeof(b)));
    }
    if (v->action == GOV_ACT_SHRINK || v->action == GOV_ACT_RELEASE) {
        char amount[16];
        gov_quantity_format(v->release, amount, sizeof(amount));
        if (v->action == GOV_ACT_SHRINK)
            snprintf(action, sizeof(action), "; release %s toward target %.0f%%", amount,
                     p->target * 100.0);
        else
            snprintf(action, sizeof(action), "; release all %s above the floor", amount);
    } else if (v->action == GOV_ACT_HOLD) {
        snprintf(action, sizeof(action), "; collector stops growing");
    }

    if (level > GOV_LEVEL_NORMAL && ratio >= threshold(p, level)) {
        cmp = ">=";
        snprintf(v->reason, sizeof(v->reason), "%s%s %s %s %.0f%%%s", prefix, usage, cmp,
                 gov_level_name(level), threshold(p, level) * 100.0, action);
    } else if (level < st->level) {
        /* left st->level: below its exit bound */
        snprintf(v->reason, sizeof(v->reason), "%s%s < %s exit %.0f%% (%s %.0f%% - hysteresis)%s",
                 prefix, usage, gov_level_name(st->level),
                 (threshold(p, st->level) - p->hysteresis) * 100.0, gov_level_name(st->level),
                 threshold(p, st->level) * 100.0, action);
    } else {
        /* staying at a level inside its hysteresis band, or at normal */
        snprintf(v->reason, sizeof(v->reason), "%s%s, level %s%s", prefix, usage,
                 gov_level_name(level), action);
    }
}

void gov_engine_commit(struct gov_engine_state *st, const struct gov_verdict *v,
                       const struct gov_reading *r, uint64_t now_ms)
{
    st->level = v->level;
    if (v->action == GOV_ACT_SHRINK || v->action == GOV_ACT_RELEASE) {
        st->shrunk = true;
        st->last_shrink_ms = now_ms;
    }
    if (!st->have_limit || v->limit_changed)
        st->last_limit = r->limit; /* drift accumulates until it is a change */
    st->have_limit = true;
}

void gov_admit_decide(uint64_t request, const struct gov_reading *r, const struct gov_policy *p,
                      enum gov_level level, struct gov_admission *a)
{
    uint64_t high = bytes_at(p->high, r->limit), soft = bytes_at(p->soft, r->limit);
    uint64_t after = r->usage + request, need = 0;
    char req[16], lim[16];
    bool grow_ok = level < GOV_LEVEL_SOFT && after < soft;

    memset(a, 0, sizeof(*a));
    gov_quantity_format(request, req, sizeof(req));
    gov_quantity_format(r->limit, lim, sizeof(lim));

    if (!grow_ok)
        need = request; /* no growth: a new block replaces old ones */
    if (after > high)
        need = MAX(need, after - high);

    if (need == 0) {
        a->admit = true;
        return;
    }
    /* only the buffer above the floor may be evicted (r->reclaimable) */
    if (request > high || need > r->reclaimable) {
        a->action = GOV_ACT_REFUSE;
        a->admit = false;
        if (request > high)
            snprintf(a->reason, sizeof(a->reason),
                     "refused a %s block: larger than high %.0f%% of %s", req, p->high * 100.0,
                     lim);
        else if (r->reclaimable == r->buffer)
            snprintf(a->reason, sizeof(a->reason),
                     "refused a %s block: %.0f%% of %s with it, and the buffer (%s) cannot make "
                     "room",
                     req, floor(gov_ratio(after, r->limit) * 100.0), lim,
                     gov_quantity_format(r->buffer, (char[16]){0}, 16));
        else
            snprintf(a->reason, sizeof(a->reason),
                     "refused a %s block: %.0f%% of %s with it, and the buffer above the floor "
                     "(%s) cannot make room",
                     req, floor(gov_ratio(after, r->limit) * 100.0), lim,
                     gov_quantity_format(r->reclaimable, (char[16]){0}, 16));
    } else {
        a->action = GOV_ACT_EVICT;
        a->admit = true;
        a->evict = need;
        char why[96];
        if (after > high)
            snprintf(why, sizeof(why), "with it %.0f%% of %s, past high %.0f%%",
                     floor(gov_ratio(after, r->limit) * 100.0), lim, p->high * 100.0);
        else if (level >= GOV_LEVEL_SOFT)
            snprintf(why, sizeof(why), "no growth at level %s", gov_level_name(level));
        else
            snprintf(why, sizeof(why), "with it %.0f%% of %s, at or past soft %.0f%%",
                     floor(gov_ratio(after, r->limit) * 100.0), lim, p->soft * 100.0);
        snprintf(a->reason, sizeof(a->reason), "evict %s before a %s block: %s",
                 gov_quantity_format(need, (char[16]){0}, 16), req, why);
    }
    if (p->mode == GOV_MODE_OBSERVE) {
        a->dry_run = true; /* evict keeps the amount enforce mode would evict */
        a->admit = true;
    }
}
