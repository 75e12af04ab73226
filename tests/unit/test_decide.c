/* test_decide.c -- the decision engine as a table: levels, hysteresis,
 * cooldown, critical release, limit changes, and admission control.  The
 * engine is pure, so every row is (state, reading, time) -> verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "decide.h"
#include "policy.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
/* where the engine puts a fraction of the limit (truncated) */
#define AT(f, limit) ((uint64_t)((long double)(f) * (long double)(limit)))
/* a usage at least p% of limit */
#define PCT(p, limit) ((uint64_t)ceil((double)(limit) * (p) / 100.0))

enum { N = GOV_LEVEL_NORMAL, S = GOV_LEVEL_SOFT, H = GOV_LEVEL_HIGH, C = GOV_LEVEL_CRITICAL };

struct row {
    const char *name;
    /* state */
    int level;
    bool shrunk;
    uint64_t last_shrink_ms;
    uint64_t last_limit; /* 0: first tick */
    /* input */
    uint64_t now_ms, usage, limit, buffer, floor;
    /* expected */
    int want_level;
    enum gov_action want_action;
    uint64_t want_release;
    bool want_record;
    const char *want_reason; /* exact, or NULL when no record */
};

static const struct row rows[] = {
    {"normal stays normal", N, false, 0, GIB, 5000, PCT(50, GIB), GIB, 200 * MIB, 0,
     N, GOV_ACT_NONE, 0, false, NULL},
    {"enter soft: growth stops", N, false, 0, GIB, 5000, PCT(70, GIB), GIB, 200 * MIB, 0,
     S, GOV_ACT_HOLD, 0, true, "working set 70% of 1Gi >= soft 70%; collector stops growing"},
    {"soft holds inside the hysteresis band", S, false, 0, GIB, 5000, PCT(66, GIB), GIB,
     200 * MIB, 0, S, GOV_ACT_NONE, 0, false, NULL},
    {"soft left below its exit", S, false, 0, GIB, 5000, PCT(64, GIB), GIB, 200 * MIB, 0,
     N, GOV_ACT_NONE, 0, true, "working set 64% of 1Gi < soft exit 65% (soft 70% - hysteresis)"},
    {"enter high: shrink toward target", N, false, 0, GIB, 5000, PCT(86, GIB), GIB, 400 * MIB, 0,
     H, GOV_ACT_SHRINK, PCT(86, GIB) - AT(0.60, GIB), true,
     "working set 86% of 1Gi >= high 85%; release 266.2Mi toward target 60%"},
    {"high within cooldown does nothing", H, true, 4500, GIB, 5000, PCT(86, GIB), GIB, 400 * MIB,
     0, H, GOV_ACT_NONE, 0, false, NULL},
    {"high after cooldown shrinks again", H, true, 3999, GIB, 5000, PCT(86, GIB), GIB, 400 * MIB,
     0, H, GOV_ACT_SHRINK, PCT(86, GIB) - AT(0.60, GIB), true,
     "working set 86% of 1Gi >= high 85%; release 266.2Mi toward target 60%"},
    {"high exactly at cooldown shrinks", H, true, 4000, GIB, 5000, PCT(86, GIB), GIB, 400 * MIB, 0,
     H, GOV_ACT_SHRINK, PCT(86, GIB) - AT(0.60, GIB), true,
     "working set 86% of 1Gi >= high 85%; release 266.2Mi toward target 60%"},
    {"high inside its band keeps shrinking", H, true, 0, GIB, 5000, PCT(81, GIB), GIB, 400 * MIB,
     0, H, GOV_ACT_SHRINK, PCT(81, GIB) - AT(0.60, GIB), true,
     "working set 81% of 1Gi, level high; release 215Mi toward target 60%"},
    {"shrink limited by what is reclaimable", N, false, 0, GIB, 5000, PCT(90, GIB), GIB,
     164 * MIB, 64 * MIB, H, GOV_ACT_SHRINK, 100 * MIB, true,
     "working set 90% of 1Gi >= high 85%; release 100Mi toward target 60%"},
    {"high with nothing reclaimable: level only", N, false, 0, GIB, 5000, PCT(90, GIB), GIB,
     64 * MIB, 64 * MIB, H, GOV_ACT_NONE, 0, true, "working set 90% of 1Gi >= high 85%"},
    {"high down to soft", H, true, 0, GIB, 5000, PCT(79, GIB), GIB, 400 * MIB, 0,
     S, GOV_ACT_NONE, 0, true, "working set 79% of 1Gi >= soft 70%"},
    {"high straight down to normal", H, true, 0, GIB, 5000, PCT(60, GIB), GIB, 400 * MIB, 0,
     N, GOV_ACT_NONE, 0, true, "working set 60% of 1Gi < high exit 80% (high 85% - hysteresis)"},
    {"enter critical: release all above the floor", N, false, 0, GIB, 5000, PCT(96, GIB), GIB,
     300 * MIB, 64 * MIB, C, GOV_ACT_RELEASE, 236 * MIB, true,
     "working set 96% of 1Gi >= critical 95%; release all 236Mi above the floor"},
    {"critical ignores the cooldown", C, true, 4990, GIB, 5000, PCT(97, GIB), GIB, 128 * MIB, 0,
     C, GOV_ACT_RELEASE, 128 * MIB, true,
     "working set 97% of 1Gi >= critical 95%; release all 128Mi above the floor"},
    {"critical with nothing left: quiet", C, true, 4990, GIB, 5000, PCT(97, GIB), GIB, 0, 0,
     C, GOV_ACT_NONE, 0, false, NULL},
    {"critical inside its band", C, true, 0, GIB, 5000, PCT(91, GIB), GIB, 0, 0,
     C, GOV_ACT_NONE, 0, false, NULL},
    {"critical down to high", C, true, 0, GIB, 5000, PCT(89, GIB), GIB, 0, 0,
     H, GOV_ACT_NONE, 0, true, "working set 89% of 1Gi >= high 85%"},
    {"limit lowered below usage (resize)", N, false, 0, GIB, 5000, 600 * MIB, 512 * MIB,
     400 * MIB, 0, C, GOV_ACT_RELEASE, 400 * MIB, true,
     "limit 1Gi -> 512Mi: working set 117% of 512Mi >= critical 95%; release all 400Mi above "
     "the floor"},
    {"limit raised, level unchanged: recorded", N, false, 0, GIB, 5000, PCT(30, GIB), 2 * GIB,
     0, 0, N, GOV_ACT_NONE, 0, true, "limit 1Gi -> 2Gi: working set 15% of 2Gi, level normal"},
    {"drift under 1% is not a change", N, false, 0, GIB, 5000, PCT(30, GIB), GIB - 10 * MIB,
     0, 0, N, GOV_ACT_NONE, 0, false, NULL},
    {"first tick is not a limit change", N, false, 0, 0, 5000, PCT(30, GIB), GIB, 0, 0,
     N, GOV_ACT_NONE, 0, false, NULL},
    {"zero limit is critical", N, false, 0, 0, 5000, MIB, 0, 10 * MIB, 0,
     C, GOV_ACT_RELEASE, 10 * MIB, true,
     "working set 1Mi against a zero limit >= critical 95%; release all 10Mi above the floor"},
};

static void decision_table(void **state)
{
    struct gov_policy p;
    (void)state;
    gov_policy_defaults(&p);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct gov_engine_state st = {
            .level = (enum gov_level)r->level,
            .shrunk = r->shrunk,
            .last_shrink_ms = r->last_shrink_ms,
            .last_limit = r->last_limit,
            .have_limit = r->last_limit != 0,
        };
        struct gov_reading in = {
            .usage = r->usage,
            .limit = r->limit,
            .buffer = r->buffer,
            .reclaimable = r->buffer > r->floor ? r->buffer - r->floor : 0,
        };
        struct gov_verdict v;
        gov_decide(&in, &p, &st, r->now_ms, &v);
        if ((int)v.level != r->want_level || v.action != r->want_action ||
            v.release != r->want_release || v.record != r->want_record ||
            (r->want_reason && strcmp(v.reason, r->want_reason) != 0))
            print_error("row '%s': level %s action %s release %llu record %d\n  reason '%s'\n",
                        r->name, gov_level_name(v.level), gov_action_name(v.action),
                        (unsigned long long)v.release, v.record, v.reason);
        assert_int_equal(v.level, r->want_level);
        assert_int_equal(v.action, r->want_action);
        assert_int_equal(v.release, r->want_release);
        assert_int_equal(v.record, r->want_record);
        if (r->want_reason)
            assert_string_equal(v.reason, r->want_reason);
    }
}

static void hysteresis_zero_leaves_just_below(void **state)
{
    struct gov_policy p;
    struct gov_engine_state st = {.level = GOV_LEVEL_SOFT};
    struct gov_reading in = {.usage = PCT(69.9, GIB), .limit = GIB};
    struct gov_verdict v;
    (void)state;
    gov_policy_defaults(&p);
    p.hysteresis = 0;
    gov_decide(&in, &p, &st, 0, &v);
    assert_int_equal(v.level, GOV_LEVEL_NORMAL);
}

static void signal_and_effective_limit(void **state)
{
    struct gov_policy p;
    struct gov_cgroup_sample s = {.current = 500 * MIB, .working_set = 300 * MIB,
                                  .host_memtotal = 16 * GIB};
    uint64_t limit;
    enum gov_limit_source src;
    (void)state;
    gov_policy_defaults(&p);
    assert_int_equal(gov_signal_value(&s, &p), 300 * MIB);
    p.signal = GOV_SIGNAL_CURRENT;
    assert_int_equal(gov_signal_value(&s, &p), 500 * MIB);

    gov_effective_limit(&s, &p, &limit, &src); /* nothing set: host's MemTotal */
    assert_int_equal(limit, 16 * GIB);
    assert_int_equal(src, GOV_LIMIT_HOST);
    s.host_available = 2 * GIB; /* others use the rest: what we have + available */
    gov_effective_limit(&s, &p, &limit, &src);
    assert_int_equal(limit, 500 * MIB + 2 * GIB);
    s.host_available = 0;
    p.limit = 2 * GIB; /* policy fallback */
    gov_effective_limit(&s, &p, &limit, &src);
    assert_int_equal(limit, 2 * GIB);
    assert_int_equal(src, GOV_LIMIT_POLICY);
    s.has_limit = true; /* a cgroup limit always wins */
    s.limit = 4 * GIB;
    gov_effective_limit(&s, &p, &limit, &src);
    assert_int_equal(limit, 4 * GIB);
    assert_int_equal(src, GOV_LIMIT_CGROUP);
    s.limit = 0; /* even zero */
    gov_effective_limit(&s, &p, &limit, &src);
    assert_int_equal(limit, 0);
    assert_true(isinf(gov_ratio(1, 0)));
    assert_true(gov_ratio(0, 0) == 0.0);
}

static void commit_updates_state(void **state)
{
    struct gov_engine_state st = {0};
    struct gov_reading in = {.usage = 10, .limit = 100};
    struct gov_verdict v = {.level = GOV_LEVEL_HIGH, .action = GOV_ACT_NONE};
    (void)state;
    gov_engine_commit(&st, &v, &in, 1000);
    assert_int_equal(st.level, GOV_LEVEL_HIGH);
    assert_false(st.shrunk);
    assert_true(st.have_limit);
    assert_int_equal(st.last_limit, 100);
    v.action = GOV_ACT_SHRINK;
    gov_engine_commit(&st, &v, &in, 2000);
    assert_true(st.shrunk);
    assert_int_equal(st.last_shrink_ms, 2000);
    v.action = GOV_ACT_HOLD;
    gov_engine_commit(&st, &v, &in, 3000);
    assert_int_equal(st.last_shrink_ms, 2000);
    /* small drift is not remembered, so it cannot creep past the 1% rule */
    in.limit = 101;
    v.limit_changed = false;
    gov_engine_commit(&st, &v, &in, 4000);
    assert_int_equal(st.last_limit, 100);
    in.limit = 150;
    v.limit_changed = true;
    gov_engine_commit(&st, &v, &in, 5000);
    assert_int_equal(st.last_limit, 150);
}

/* The 1% rule of limit_changed at the top of the range, where diff * 100
 * wraps: every row is a real resize (or none) whatever the magnitude. */
static void limit_change_near_uint64_max(void **state)
{
    static const struct {
        uint64_t last, now;
        bool changed;
    } cases[] = {
        /* 2^60 raised by 2^64/100 rounded up (16%): diff * 100 wraps to 84 */
        {UINT64_C(1) << 60, (UINT64_C(1) << 60) + UINT64_C(184467440737095517), true},
        {UINT64_C(1) << 60, (UINT64_C(1) << 61), true},
        {UINT64_C(1) << 60, (UINT64_C(1) << 59), true},
        {UINT64_C(1) << 60, (UINT64_C(1) << 60) + (UINT64_C(1) << 60) / 100 - 1, false},
        {UINT64_C(1) << 60, (UINT64_C(1) << 60) + (UINT64_C(1) << 60) / 100 + 1, true},
        /* near UINT64_MAX: halved, its diff * 100 wraps to 0 */
        {UINT64_MAX - 1, UINT64_MAX / 2, true},
        {UINT64_MAX, 1, true},
        /* 1% of UINT64_MAX is 184467440737095516.15 bytes */
        {UINT64_MAX, UINT64_MAX - UINT64_MAX / 100 - 1, true},
        {UINT64_MAX, UINT64_MAX - UINT64_MAX / 100, false},
        {UINT64_MAX - 4096, UINT64_MAX, false},
        {UINT64_MAX, UINT64_MAX, false},
        /* small limits keep the rule: 1% of 100 is 1, of 101 is 2 */
        {100, 101, true},
        {101, 102, false},
        {101, 103, true},
    };
    struct gov_policy p;
    (void)state;
    gov_policy_defaults(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gov_engine_state st = {.have_limit = true, .last_limit = cases[i].last};
        struct gov_reading r = {.usage = 0, .limit = cases[i].now};
        struct gov_verdict v;
        gov_decide(&r, &p, &st, 1000, &v);
        if (v.limit_changed != cases[i].changed)
            print_error("case %zu: %llu -> %llu\n", i, (unsigned long long)cases[i].last,
                        (unsigned long long)cases[i].now);
        assert_int_equal(v.limit_changed, cases[i].changed);
    }
}

/* ---- admission ------------------------------------------------------------- */

struct arow {
    const char *name;
    int level;
    uint64_t usage, buffer, request;
    bool observe;
    enum gov_action want_action;
    bool want_admit;
    uint64_t want_evict;
    const char *want_reason;
    uint64_t floor; /* [collector] floor; 0 where a row gives none */
};

static const struct arow arows[] = {
    {"room to grow", N, PCT(30, GIB), 0, 100 * MIB, false, GOV_ACT_NONE, true, 0, "", 0},
    {"reaching soft: replace old blocks", N, PCT(65, GIB), 200 * MIB, 100 * MIB, false,
     GOV_ACT_EVICT, true, 100 * MIB,
     "evict 100Mi before a 100Mi block: with it 74% of 1Gi, at or past soft 70%", 0},
    {"reaching soft with nothing to replace: refused", N, PCT(65, GIB), 0, 100 * MIB, false,
     GOV_ACT_REFUSE, false, 0,
     "refused a 100Mi block: 74% of 1Gi with it, and the buffer (0) cannot make room", 0},
    {"level soft: no growth even with room", S, PCT(40, GIB), 200 * MIB, 100 * MIB, false,
     GOV_ACT_EVICT, true, 100 * MIB, "evict 100Mi before a 100Mi block: no growth at level soft", 0},
    {"already past high: evict more than the block", N, PCT(90, GIB), 500 * MIB, 50 * MIB, false,
     GOV_ACT_EVICT, true, PCT(90, GIB) + 50 * MIB - (uint64_t)(0.85 * GIB),
     "evict 101.2Mi before a 50Mi block: with it 94% of 1Gi, past high 85%", 0},
    {"past high, buffer too small: refused, nothing evicted", N, PCT(84, GIB), 50 * MIB,
     300 * MIB, false, GOV_ACT_REFUSE, false, 0,
     "refused a 300Mi block: 113% of 1Gi with it, and the buffer (50Mi) cannot make room", 0},
    {"block larger than high: refused", N, 0, 0, GIB, false, GOV_ACT_REFUSE, false, 0,
     "refused a 1Gi block: larger than high 85% of 1Gi", 0},
    {"observe: admitted, what enforce would do recorded", N, PCT(90, GIB), 500 * MIB, 50 * MIB,
     true, GOV_ACT_EVICT, true, PCT(90, GIB) + 50 * MIB - (uint64_t)(0.85 * GIB),
     "evict 101.2Mi before a 50Mi block: with it 94% of 1Gi, past high 85%", 0},
    {"observe: a refusal is admitted too", N, PCT(84, GIB), 0, 300 * MIB, true, GOV_ACT_REFUSE,
     true, 0, "refused a 300Mi block: 113% of 1Gi with it, and the buffer (0) cannot make room", 0},
};

/* Admission evicts only what lies above [collector] floor: a row's
 * reclaimable bytes are buffer - floor, as gov_reading_from_sample makes
 * them. */
static const struct arow floor_rows[] = {
    {"soft: evicting would cut into the floor: refused", N, PCT(65, GIB), 200 * MIB, 100 * MIB,
     false, GOV_ACT_REFUSE, false, 0,
     "refused a 100Mi block: 74% of 1Gi with it, and the buffer above the floor (50Mi) cannot "
     "make room", 150 * MIB},
    {"soft: enough above the floor: evict", N, PCT(65, GIB), 200 * MIB, 100 * MIB, false,
     GOV_ACT_EVICT, true, 100 * MIB,
     "evict 100Mi before a 100Mi block: with it 74% of 1Gi, at or past soft 70%", 100 * MIB},
    {"past high: the overshoot is more than sits above the floor: refused", N, PCT(90, GIB),
     500 * MIB, 50 * MIB, false, GOV_ACT_REFUSE, false, 0,
     "refused a 50Mi block: 94% of 1Gi with it, and the buffer above the floor (100Mi) cannot "
     "make room", 400 * MIB},
    {"level soft, the whole buffer is floor: refused", S, PCT(40, GIB), 64 * MIB, MIB, false,
     GOV_ACT_REFUSE, false, 0,
     "refused a 1Mi block: 40% of 1Gi with it, and the buffer above the floor (0) cannot make "
     "room", 64 * MIB},
    {"observe: the floor refusal is admitted, nothing evicted", S, PCT(40, GIB), 64 * MIB, MIB,
     true, GOV_ACT_REFUSE, true, 0,
     "refused a 1Mi block: 40% of 1Gi with it, and the buffer above the floor (0) cannot make "
     "room", 64 * MIB},
};

static void run_admission_rows(const struct arow *rows_, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct arow *r = &rows_[i];
        struct gov_policy p;
        struct gov_reading in = {.usage = r->usage, .limit = GIB, .buffer = r->buffer,
                                 .reclaimable = r->buffer > r->floor ? r->buffer - r->floor : 0};
        struct gov_admission a;
        gov_policy_defaults(&p);
        if (r->observe)
            p.mode = GOV_MODE_OBSERVE;
        gov_admit_decide(r->request, &in, &p, (enum gov_level)r->level, &a);
        if (a.action != r->want_action || a.admit != r->want_admit ||
            a.evict != r->want_evict || strcmp(a.reason, r->want_reason) != 0)
            print_error("row '%s': action %s admit %d evict %llu reason '%s'\n", r->name,
                        gov_action_name(a.action), a.admit, (unsigned long long)a.evict, a.reason);
        assert_int_equal(a.action, r->want_action);
        assert_int_equal(a.admit, r->want_admit);
        assert_int_equal(a.evict, r->want_evict);
        assert_int_equal(a.dry_run, r->observe && r->want_action != GOV_ACT_NONE);
        assert_string_equal(a.reason, r->want_reason);
        /* whatever is evicted comes from above the floor */
        assert_true(a.evict <= in.reclaimable);
    }
}

static void admission_respects_the_floor(void **state)
{
    (void)state;
    run_admission_rows(floor_rows, sizeof(floor_rows) / sizeof(floor_rows[0]));
}

static void admission_table(void **state)
{
    (void)state;
    run_admission_rows(arows, sizeof(arows) / sizeof(arows[0]));
}

static void zero_limit_refuses_everything(void **state)
{
    struct gov_policy p;
    struct gov_reading in = {.usage = 0, .limit = 0, .buffer = GIB};
    struct gov_admission a;
    (void)state;
    gov_policy_defaults(&p);
    gov_admit_decide(4096, &in, &p, GOV_LEVEL_NORMAL, &a);
    assert_false(a.admit);
    assert_int_equal(a.action, GOV_ACT_REFUSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decision_table),
        cmocka_unit_test(hysteresis_zero_leaves_just_below),
        cmocka_unit_test(signal_and_effective_limit),
        cmocka_unit_test(commit_updates_state),
        cmocka_unit_test(limit_change_near_uint64_max),
        cmocka_unit_test(admission_table),
        cmocka_unit_test(admission_respects_the_floor),
        cmocka_unit_test(zero_limit_refuses_everything),
    };
    return cmocka_run_group_tests_name("decide", tests, NULL, NULL);
}
