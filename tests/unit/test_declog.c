/* test_declog.c -- the decision ring: order, wrap-around, folding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "declog.h"

static struct gov_decision make(enum gov_level level, enum gov_action action, bool dry_run,
                                uint64_t released, int tag)
{
    struct gov_decision d = {.level = level, .from = level, .action = action,
                             .dry_run = dry_run, .released = released,
                             .would_release = released};
    snprintf(d.reason, sizeof(d.reason), "r%d", tag);
    return d;
}

static void keeps_order_newest_first(void **state)
{
    struct gov_declog log;
    struct gov_decision out[GOV_DECLOG_SIZE];
    (void)state;
    gov_declog_init(&log);
    assert_int_equal(gov_declog_copy(&log, out, GOV_DECLOG_SIZE), 0);
    for (int i = 0; i < 3; i++) {
        struct gov_decision d = make(GOV_LEVEL_HIGH, GOV_ACT_SHRINK, false, 10, i);
        assert_true(gov_declog_push(&log, &d)); /* enforce shrinks are never folded */
    }
    assert_int_equal(gov_declog_copy(&log, out, GOV_DECLOG_SIZE), 3);
    assert_int_equal(out[0].seq, 3);
    assert_string_equal(out[0].reason, "r2");
    assert_int_equal(out[2].seq, 1);
    assert_int_equal(gov_declog_copy(&log, out, 2), 2);
    assert_int_equal(out[1].seq, 2);
}

static void wraps_and_keeps_the_last_64(void **state)
{
    struct gov_declog log;
    struct gov_decision out[GOV_DECLOG_SIZE];
    (void)state;
    gov_declog_init(&log);
    for (int i = 0; i < 200; i++) {
        struct gov_decision d = make((enum gov_level)(i % 4), GOV_ACT_NONE, false, 0, i);
        d.from = (enum gov_level)((i + 1) % 4);
        gov_declog_push(&log, &d);
    }
    assert_int_equal(gov_declog_copy(&log, out, GOV_DECLOG_SIZE), GOV_DECLOG_SIZE);
    for (unsigned i = 0; i < GOV_DECLOG_SIZE; i++) {
        char want[16];
        assert_int_equal(out[i].seq, 200 - i);
        snprintf(want, sizeof(want), "r%u", 199 - i);
        assert_string_equal(out[i].reason, want);
    }
}

static void folds_repeated_admission_and_dry_runs(void **state)
{
    struct gov_declog log;
    struct gov_decision out[4];
    struct gov_decision d;
    (void)state;
    gov_declog_init(&log);
    d = make(GOV_LEVEL_NORMAL, GOV_ACT_EVICT, false, 100, 1);
    assert_true(gov_declog_push(&log, &d));
    d = make(GOV_LEVEL_NORMAL, GOV_ACT_EVICT, false, 100, 2);
    assert_false(gov_declog_push(&log, &d));
    d = make(GOV_LEVEL_NORMAL, GOV_ACT_EVICT, false, 50, 3);
    assert_false(gov_declog_push(&log, &d));
    assert_int_equal(gov_declog_copy(&log, out, 4), 1);
    assert_int_equal(out[0].seq, 1);
    assert_int_equal(out[0].repeat, 3);
    assert_int_equal(out[0].released, 250);
    assert_string_equal(out[0].reason, "r3"); /* the latest reason */

    /* another action, level or mode starts a new record */
    d = make(GOV_LEVEL_NORMAL, GOV_ACT_REFUSE, false, 0, 4);
    assert_true(gov_declog_push(&log, &d));
    d = make(GOV_LEVEL_SOFT, GOV_ACT_REFUSE, false, 0, 5);
    assert_true(gov_declog_push(&log, &d));
    d = make(GOV_LEVEL_SOFT, GOV_ACT_REFUSE, true, 0, 6);
    assert_true(gov_declog_push(&log, &d));
    d = make(GOV_LEVEL_HIGH, GOV_ACT_SHRINK, true, 7, 7); /* dry-run shrinks fold */
    assert_true(gov_declog_push(&log, &d));
    d = make(GOV_LEVEL_HIGH, GOV_ACT_SHRINK, true, 7, 8);
    assert_false(gov_declog_push(&log, &d));
    assert_int_equal(gov_declog_copy(&log, out, 4), 4);
    assert_int_equal(out[0].seq, 5);
    assert_int_equal(out[0].repeat, 2);
    assert_int_equal(out[0].would_release, 14);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_order_newest_first),
        cmocka_unit_test(wraps_and_keeps_the_last_64),
        cmocka_unit_test(folds_repeated_admission_and_dry_runs),
    };
    return cmocka_run_group_tests_name("declog", tests, NULL, NULL);
}
