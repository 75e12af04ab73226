/* test_governor.c -- the governor thread with its real sd-event loop, the
 * collector thread and readers running at once (this is the test TSan
 * watches): ticks, level changes and shrinks driven by a cgroup directory
 * the test rewrites, reloads through the policy directory watch and
 * through gov_request_reload(), and a clean stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "governor.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static char dir[64], policy_dir[64], policy_path[PATH_MAX];

static void put(const char *d, const char *name, const char *content)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", d, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", d, name);
    f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static void put_bytes(const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)v);
    put(dir, name, buf);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls the status until pred holds or 5 s pass. */
static bool wait_for(struct gov *g, struct gov_status *st,
                     bool (*pred)(const struct gov_status *, const void *), const void *arg)
{
    for (int i = 0; i < 500; i++) {
        gov_status(g, st);
        if (pred(st, arg))
            return true;
        sleep_ms(10);
    }
    return false;
}

static bool at_level(const struct gov_status *st, const void *arg)
{
    return st->level == *(const enum gov_level *)arg;
}

static bool at_generation(const struct gov_status *st, const void *arg)
{
    return st->policy_generation == *(const uint64_t *)arg;
}

static bool has_error(const struct gov_status *st, const void *arg)
{
    (void)arg;
    return st->policy_error[0] != '\0';
}

static int setup(void **state)
{
    char cmd[PATH_MAX + 128];
    (void)state;
    gov_log_setup(GOV_LOG_TEXT, LOG_ERR);
    strcpy(dir, "/tmp/test_governor.XXXXXX");
    strcpy(policy_dir, "/tmp/test_governor_policy.XXXXXX");
    if (!mkdtemp(dir) || !mkdtemp(policy_dir))
        return -1;
    snprintf(cmd, sizeof(cmd), "cp -r %s/cgroup/v2-ns/sys/fs/cgroup/. %s/", FIXTURES, dir);
    snprintf(policy_path, sizeof(policy_path), "%s/policy.ini", policy_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, policy_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void governs_while_threads_race(void **state)
{
    struct gov_config cfg = {.cgroup_dir = dir, .policy_path = policy_path};
    struct gov_status *st = malloc(sizeof(*st)), *brief;
    struct gov *g;
    struct collector *c;
    char err[256];
    enum gov_level want;
    uint64_t gen, bytes, blocks;
    (void)state;
    assert_non_null(st);
    put_bytes("memory.max", GIB);
    put_bytes("memory.current", 200 * MIB);
    put(policy_dir, "policy.ini",
        "[governor]\ninterval_ms = 10\ncooldown_ms = 0\n"
        "[collector]\nblock_size = 1Mi\ninterval_ms = 1\n");
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    c = collector_new(g);
    assert_non_null(c);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);
    assert_int_equal(collector_start(c), 0);

    /* the collector grows (usage in the file is fixed: 200Mi of 1Gi) */
    sleep_ms(100);
    collector_count(c, &bytes, &blocks);
    assert_true(blocks > 5);
    assert_true(gov_alive(g));
    assert_true(gov_ready(g, err, sizeof(err)));

    /* usage past high: the governor shrinks the buffer (the collector stops
     * first, or its own admission control might empty the buffer before a
     * tick sees the level) */
    collector_stop(c);
    put_bytes("memory.current", (uint64_t)(0.90 * (double)GIB));
    want = GOV_LEVEL_HIGH;
    assert_true(wait_for(g, st, at_level, &want));
    assert_true(st->counters.actions[GOV_LEVEL_HIGH] >= 1);
    assert_true(st->counters.released_bytes[GOV_LEVEL_HIGH] >= MIB);

    /* the policy file changes: new generation through the directory watch */
    put(policy_dir, "policy.ini",
        "[governor]\ninterval_ms = 20\ncooldown_ms = 0\n"
        "[collector]\nblock_size = 2Mi\ninterval_ms = 1\n[thresholds]\nhigh = 0.92\n");
    gen = 2;
    assert_true(wait_for(g, st, at_generation, &gen));
    assert_int_equal(st->policy.block_size, 2 * MIB);

    /* a broken update is rejected; the old policy stays */
    put(policy_dir, "policy.ini", "[governor]\ninterval_ms = fast\n");
    assert_true(wait_for(g, st, has_error, NULL));
    assert_int_equal(st->policy_generation, 2);
    assert_non_null(strstr(st->policy_error, "interval_ms: 'fast' is not a whole number"));
    assert_int_equal(st->policy.block_size, 2 * MIB);

    /* SIGHUP's path: fixed file, explicit reload request */
    put(policy_dir, "policy.ini", "[governor]\ninterval_ms = 10\n[collector]\nenabled = false\n");
    gov_request_reload(g);
    gen = 3;
    assert_true(wait_for(g, st, at_generation, &gen));
    assert_string_equal(st->policy_error, "");
    assert_false(st->policy.collector_enabled);

    /* usage drops: back to normal */
    put_bytes("memory.current", 100 * MIB);
    want = GOV_LEVEL_NORMAL;
    assert_true(wait_for(g, st, at_level, &want));
    assert_true(st->ndecisions >= 2);
    assert_true(st->counters.ticks > 10);

    /* the brief status (/metrics) is the same without the decisions, which
     * it leaves untouched rather than copying them */
    brief = malloc(sizeof(*brief));
    assert_non_null(brief);
    memset(brief, 0xa5, sizeof(*brief));
    gov_status_brief(g, brief);
    assert_int_equal(brief->ndecisions, 0);
    assert_int_equal(brief->policy_generation, st->policy_generation);
    assert_int_equal(brief->started_wall_ms, st->started_wall_ms);
    assert_int_equal(brief->level, GOV_LEVEL_NORMAL);
    assert_true(brief->counters.ticks >= st->counters.ticks);
    assert_string_equal(brief->policy_source, st->policy_source);
    assert_int_equal(((const unsigned char *)brief->decisions)[0], 0xa5);
    assert_int_equal(((const unsigned char *)&brief->decisions[GOV_DECLOG_SIZE])[-1], 0xa5);
    free(brief);

    collector_stop(c);
    gov_stop(g);
    collector_free(c);
    gov_free(g);
    free(st);
}

static void unreadable_source_makes_it_unready(void **state)
{
    struct gov_config cfg = {.cgroup_dir = dir, .embedded_policy = "[governor]\ninterval_ms=10\n"};
    struct gov *g;
    char err[400], path[PATH_MAX];
    (void)state;
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);
    sleep_ms(50);
    assert_true(gov_ready(g, err, sizeof(err)));
    snprintf(path, sizeof(path), "%s/memory.current", dir);
    assert_int_equal(unlink(path), 0);
    sleep_ms(60);
    assert_false(gov_ready(g, err, sizeof(err)));
    assert_non_null(strstr(err, "memory.current: No such file or directory"));
    assert_true(gov_alive(g)); /* still ticking */
    put_bytes("memory.current", 100 * MIB);
    sleep_ms(60);
    assert_true(gov_ready(g, err, sizeof(err)));
    gov_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(governs_while_threads_race, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_source_makes_it_unready, setup, teardown),
    };
    return cmocka_run_group_tests_name("governor", tests, NULL, NULL);
}
