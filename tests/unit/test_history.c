/* test_history.c -- the memory history ring (governor/history.c), the
 * /governor/history renderer and query parser (app/render.c), and the
 * governor thread feeding the ring from a directory in cgroup v2 formats.
 *
 * The ring is pure, so most tests drive it with made-up monotonic times;
 * the last test runs a real governor (gov_new/gov_start) for two seconds and
 * checks what it recorded against the files it read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "governor.h"
#include "history.h"
#include "policy.h"
#include "render.h"

static struct gov_history_sample at(int64_t wall_ms, uint64_t usage)
{
    return (struct gov_history_sample){.wall_ms = wall_ms,
                                       .limit = 1000,
                                       .usage = usage,
                                       .working_set = usage,
                                       .current = usage + 10,
                                       .buffer = usage / 2,
                                       .level = GOV_LEVEL_NORMAL,
                                       .ok = true};
}

static struct gov_history *new_history(void)
{
    struct gov_history *h = malloc(sizeof(*h));
    assert_non_null(h);
    gov_history_init(h);
    return h;
}

static void test_empty(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample out[4];
    (void)state;
    assert_int_equal(gov_history_copy(h, 0, out, 4), 0);
    assert_true(gov_history_opens(h, 0));
    assert_true(gov_history_opens(h, 123456));
    free(h);
}

/* One sample per second of monotonic time, whatever the tick rate. */
static void test_one_sample_per_second(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample out[8], s;
    /* ticks every 100 ms from monotonic 5000 to 7900 ms: three seconds */
    (void)state;
    for (uint64_t t = 5000; t < 8000; t += 100) {
        s = at((int64_t)t + 1700000000000, 10);
        assert_int_equal(gov_history_opens(h, t), t % 1000 == 0);
        assert_int_equal(gov_history_add(h, t, &s), t % 1000 == 0);
    }
    assert_int_equal(h->count, 3);
    assert_int_equal(gov_history_copy(h, 0, out, 8), 3);
    /* each sample carries the time of its second's first tick */
    assert_int_equal(out[0].wall_ms, 1700000005000);
    assert_int_equal(out[1].wall_ms, 1700000006000);
    assert_int_equal(out[2].wall_ms, 1700000007000);
    free(h);
}

/* Ticks slower than a second: every tick is a sample. */
static void test_slow_ticks(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample s = at(1, 1);
    (void)state;
    assert_true(gov_history_add(h, 0, &s));
    assert_true(gov_history_add(h, 5000, &s));
    assert_true(gov_history_add(h, 10000, &s));
    assert_true(gov_history_add(h, 10999 + 1, &s)); /* 11000: a new second */
    assert_false(gov_history_add(h, 11999, &s));
    assert_int_equal(h->count, 4);
    free(h);
}

/* Ticks within a second keep the peak of the figures and the lowest limit,
 * so a spike that a shrink ends within the second still shows. */
static void test_fold_keeps_peaks(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample out[2];
    struct gov_history_sample a = {.wall_ms = 100, .limit = 1000, .usage = 300,
                                   .working_set = 280, .current = 320, .buffer = 200,
                                   .level = GOV_LEVEL_NORMAL, .ok = true};
    struct gov_history_sample b = {.wall_ms = 200, .limit = 800, .usage = 900,
                                   .working_set = 880, .current = 950, .buffer = 150,
                                   .level = GOV_LEVEL_HIGH, .ok = true};
    struct gov_history_sample c = {.wall_ms = 300, .limit = 900, .usage = 400,
                                   .working_set = 380, .current = 420, .buffer = 10,
                                   .level = GOV_LEVEL_SOFT, .ok = true};
    (void)state;
    assert_true(gov_history_add(h, 2000, &a));
    assert_false(gov_history_add(h, 2100, &b));
    assert_false(gov_history_add(h, 2200, &c));
    assert_int_equal(gov_history_copy(h, 0, out, 2), 1);
    assert_int_equal(out[0].wall_ms, 100);
    assert_int_equal(out[0].limit, 800);
    assert_int_equal(out[0].usage, 900);
    assert_int_equal(out[0].working_set, 880);
    assert_int_equal(out[0].current, 950);
    assert_int_equal(out[0].buffer, 200);
    assert_int_equal(out[0].level, GOV_LEVEL_HIGH);
    assert_true(out[0].ok);
    free(h);
}

/* Failed ticks: a second is ok if any tick in it was; figures come only
 * from good ticks. */
static void test_fold_failed_ticks(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample out[4];
    struct gov_history_sample bad = {.wall_ms = 10, .limit = 1000, .level = GOV_LEVEL_SOFT};
    struct gov_history_sample good = at(20, 600);
    (void)state;
    assert_true(gov_history_add(h, 0, &bad));
    assert_false(gov_history_add(h, 100, &good));
    bad.limit = 700;
    assert_false(gov_history_add(h, 200, &bad));
    assert_true(gov_history_add(h, 1000, &bad)); /* a second with no good tick */
    assert_int_equal(gov_history_copy(h, 0, out, 4), 2);
    assert_true(out[0].ok);
    assert_int_equal(out[0].wall_ms, 10);
    assert_int_equal(out[0].usage, 600);
    assert_int_equal(out[0].current, 610);
    assert_int_equal(out[0].limit, 700);
    assert_int_equal(out[0].level, GOV_LEVEL_SOFT);
    assert_false(out[1].ok);
    assert_int_equal(out[1].usage, 0);
    free(h);
}

/* The ring keeps the newest GOV_HISTORY_SIZE seconds, oldest first. */
static void test_wraps(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample *out = calloc(GOV_HISTORY_SIZE, sizeof(*out));
    const unsigned extra = 37;
    (void)state;
    assert_non_null(out);
    for (unsigned i = 0; i < GOV_HISTORY_SIZE + extra; i++) {
        struct gov_history_sample s = at(1000 * (int64_t)i + 1, i);
        assert_true(gov_history_add(h, 1000ull * i, &s));
    }
    assert_int_equal(h->count, GOV_HISTORY_SIZE);
    assert_int_equal(gov_history_copy(h, 0, out, GOV_HISTORY_SIZE), GOV_HISTORY_SIZE);
    for (unsigned i = 0; i < GOV_HISTORY_SIZE; i++)
        assert_int_equal(out[i].usage, extra + i);
    free(out);
    free(h);
}

/* since: only samples after it; max: the newest ones, oldest first. */
static void test_copy_since_and_max(void **state)
{
    struct gov_history *h = new_history();
    struct gov_history_sample out[16];
    (void)state;
    for (unsigned i = 0; i < 10; i++) {
        struct gov_history_sample s = at(5000 + 1000 * (int64_t)i, i);
        gov_history_add(h, 1000ull * i, &s);
    }
    assert_int_equal(gov_history_copy(h, 11000, out, 16), 3);
    assert_int_equal(out[0].usage, 7);
    assert_int_equal(out[2].usage, 9);
    assert_int_equal(gov_history_copy(h, 14000, out, 16), 0);
    assert_int_equal(gov_history_copy(h, 0, out, 4), 4);
    assert_int_equal(out[0].usage, 6);
    assert_int_equal(out[3].usage, 9);
    assert_int_equal(gov_history_copy(h, 11000, out, 2), 2);
    assert_int_equal(out[0].usage, 8);
    assert_int_equal(out[1].usage, 9);
    free(h);
}

/* The memory the ring costs is fixed and small (documented in history.h). */
static void test_fixed_size(void **state)
{
    (void)state;
    assert_true(GOV_HISTORY_SIZE * GOV_HISTORY_PERIOD_MS >= 10 * 60 * 1000);
    assert_true(sizeof(struct gov_history_sample) <= 56);
    assert_true(sizeof(struct gov_history) <= 56 * GOV_HISTORY_SIZE + 64);
    printf("history ring: %u samples x %zu bytes = %zu bytes (struct gov_history)\n",
           GOV_HISTORY_SIZE, sizeof(struct gov_history_sample), sizeof(struct gov_history));
}

/* ---- the renderer ------------------------------------------------------------ */

static void test_query(void **state)
{
    struct history_query q;
    char err[128];
    (void)state;
    assert_int_equal(render_history_query(NULL, NULL, &q, err, sizeof(err)), 0);
    assert_int_equal(q.since_ms, 0);
    assert_int_equal(q.after_seq, 0);
    assert_int_equal(render_history_query("1795694001411", "17", &q, err, sizeof(err)), 0);
    assert_int_equal(q.since_ms, 1795694001411);
    assert_int_equal(q.after_seq, 17);
    assert_int_equal(render_history_query("9223372036854775807", "18446744073709551615", &q,
                                          err, sizeof(err)), 0);
    assert_int_equal(q.since_ms, INT64_MAX);
    assert_int_equal(q.after_seq, UINT64_MAX);
    const char *bad[] = {"", "-1", "+1", "12a", " 1", "0x10", "1.5", "9223372036854775808",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(render_history_query(bad[i], NULL, &q, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "since"));
    }
    assert_int_equal(render_history_query("1", "18446744073709551616", &q, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "after_seq"));
}

static struct gov_status *status_with_decisions(void)
{
    struct gov_status *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    gov_policy_defaults(&st->policy);
    st->level = GOV_LEVEL_SOFT;
    st->sample_ok = true;
    st->limit = 512u << 20;
    st->usage = 400u << 20;
    st->limit_source = GOV_LIMIT_CGROUP;
    st->cgroup.version = GOV_CG_V2;
    strcpy(st->cgroup.how, "--cgroup /x");
    strcpy(st->policy_source, "embedded");
    st->policy_generation = 3;
    strcpy(st->policy_error, "p.ini:3: thresholds.high: \"quoted\" <b>");
    st->started_wall_ms = 1000;
    st->ndecisions = 3; /* newest first */
    for (unsigned i = 0; i < 3; i++) {
        struct gov_decision *d = &st->decisions[i];
        d->seq = 3 - i;
        d->wall_ms = 10000 - 1000 * (int64_t)i;
        d->from = GOV_LEVEL_NORMAL;
        d->level = GOV_LEVEL_HIGH;
        d->action = GOV_ACT_SHRINK;
        snprintf(d->reason, sizeof(d->reason), "reason %u", 3 - i);
    }
    return st;
}

static json_t *render(const struct gov_status *st, const struct gov_history_sample *s, unsigned n,
                      int64_t since, uint64_t after_seq)
{
    struct app_info app = {.version = "9.9.9", .pod_name = "pod-1"};
    struct history_query q = {.since_ms = since, .after_seq = after_seq};
    size_t len = 0;
    char *body = render_history_json(st, s, n, &q, 12345, &app, &len);
    json_error_t jerr;
    json_t *j;
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    j = json_loads(body, 0, &jerr);
    free(body);
    assert_non_null(j);
    return j;
}

static void test_render(void **state)
{
    struct gov_status *st = status_with_decisions();
    struct gov_history_sample s[2] = {at(9000, 100), {.wall_ms = 10000, .limit = 1000}};
    json_t *j, *x;
    (void)state;

    j = render(st, s, 2, 0, 0);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "soft");
    assert_int_equal(json_integer_value(json_object_get(j, "now_ms")), 12345);
    assert_int_equal(json_integer_value(json_object_get(j, "period_ms")), 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "capacity")), GOV_HISTORY_SIZE);
    x = json_object_get(j, "thresholds");
    assert_true(json_real_value(json_object_get(x, "high")) == 0.85);
    x = json_object_get(j, "policy");
    assert_int_equal(json_integer_value(json_object_get(x, "generation")), 3);
    assert_string_equal(json_string_value(json_object_get(x, "last_error")),
                        "p.ini:3: thresholds.high: \"quoted\" <b>");
    x = json_object_get(j, "memory");
    assert_string_equal(json_string_value(json_object_get(x, "limit_source")), "cgroup");
    assert_int_equal(json_integer_value(json_object_get(x, "limit_bytes")), 512 << 20);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "cgroup"),
                                                          "version")), "v2");
    /* samples: oldest first; an unreadable second has null figures */
    x = json_object_get(j, "samples");
    assert_int_equal(json_array_size(x), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(x, 0), "time_ms")), 9000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(x, 0), "current_bytes")),
                     110);
    assert_true(json_is_true(json_object_get(json_array_get(x, 0), "ok")));
    assert_true(json_is_null(json_object_get(json_array_get(x, 1), "usage_bytes")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(x, 1), "limit_bytes")),
                     1000);
    /* an empty query gets the whole decision log, newest first */
    x = json_object_get(j, "decisions");
    assert_int_equal(json_array_size(x), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(x, 0), "seq")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(x, 0), "time_ms")),
                     10000);
    json_decref(j);

    /* later polls: decisions after after_seq, or updated after since */
    j = render(st, s, 0, 9500, 2);
    x = json_object_get(j, "decisions");
    assert_int_equal(json_array_size(x), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(x, 0), "reason")),
                        "reason 3");
    json_decref(j);
    st->decisions[2].wall_ms = 11000; /* seq 1 folded a repeat: it changed */
    j = render(st, s, 0, 10500, 3);
    x = json_object_get(j, "decisions");
    assert_int_equal(json_array_size(x), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(x, 0), "seq")), 1);
    json_decref(j);
    free(st);
}

/* ---- the governor thread feeds the ring ----------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static const char *const cg_files[] = {"memory.current", "memory.max", "memory.stat"};

/* A directory in cgroup v2 formats: 300Mi current, 100Mi inactive_file,
 * 1Gi max (the memory.stat excerpt has the keys the governor reads). */
static int make_cgroup_dir(void **state)
{
    static char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/governord-test-history-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(dir))
        return -1;
    write_file(dir, cg_files[0], "314572800\n");
    write_file(dir, cg_files[1], "1073741824\n");
    write_file(dir, cg_files[2], "anon 209715200\nfile 104857600\nkernel 0\n"
                                 "inactive_anon 209715200\nactive_anon 0\n"
                                 "inactive_file 104857600\nactive_file 0\n");
    *state = dir;
    return 0;
}

static int remove_cgroup_dir(void **state)
{
    char path[128];
    for (size_t i = 0; i < sizeof(cg_files) / sizeof(cg_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", (char *)*state, cg_files[i]);
        unlink(path);
    }
    return rmdir(*state);
}

static void test_loop_records(void **state)
{
    /* no collector here: the library alone (its [collector] section is governord's) */
    static const char policy[] = "[governor]\ninterval_ms = 10\n";
    char err[256];
    struct gov_config cfg = {.embedded_policy = policy, .cgroup_dir = *state};
    struct gov_history_sample out[16];
    struct gov_status *st = malloc(sizeof(*st));
    struct timespec pause = {2, 300 * 1000000L};
    struct gov *g;
    unsigned n;

    assert_non_null(st);
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);
    nanosleep(&pause, NULL);
    n = gov_history_snapshot(g, 0, out, 16, st);
    gov_free(g);

    /* ~230 ticks in 2.3 s, folded into one sample per second: 2-4 of them
     * (a loaded machine may tick less, never more) */
    assert_true(st->counters.ticks >= n);
    assert_true(n >= 1 && n <= 4);
    for (unsigned i = 0; i < n; i++) {
        assert_true(out[i].ok);
        assert_int_equal(out[i].limit, 1073741824);
        assert_int_equal(out[i].current, 314572800);
        assert_int_equal(out[i].working_set, 209715200);
        assert_int_equal(out[i].usage, 209715200);
        assert_int_equal(out[i].level, GOV_LEVEL_NORMAL);
        assert_int_equal(out[i].buffer, 0);
        if (i)
            assert_true(out[i].wall_ms > out[i - 1].wall_ms);
    }
    /* the status copied with it is the same moment's */
    assert_int_equal(st->limit, 1073741824);
    assert_true(st->last_tick_ms > 0);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_sample_per_second),
        cmocka_unit_test(test_slow_ticks),
        cmocka_unit_test(test_fold_keeps_peaks),
        cmocka_unit_test(test_fold_failed_ticks),
        cmocka_unit_test(test_wraps),
        cmocka_unit_test(test_copy_since_and_max),
        cmocka_unit_test(test_fixed_size),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_render),
        cmocka_unit_test_setup_teardown(test_loop_records, make_cgroup_dir, remove_cgroup_dir),
    };
    gov_log_setup(GOV_LOG_JSON, LOG_WARNING);
    return cmocka_run_group_tests_name("history", tests, NULL, NULL);
}
