/* test_collector.c -- the collector against a real governor: admission,
 * eviction and refusal decided on a cgroup directory the test writes, blocks
 * released oldest first, and the memory really returned to the kernel
 * (process RSS, and a real cgroup v1 memory controller when available). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collector.h"
#include "governor.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static char dir[64];

static void put(const char *name, uint64_t value)
{
    char path[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%llu\n", (unsigned long long)value);
    fclose(f);
}

static int setup(void **state)
{
    char cmd[PATH_MAX + 128];
    (void)state;
    gov_log_setup(GOV_LOG_TEXT, LOG_ERR);
    strcpy(dir, "/tmp/test_collector.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof(cmd), "cp -r %s/cgroup/v2-ns/sys/fs/cgroup/. %s/", FIXTURES, dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A governor on the test's cgroup directory with the given policy text,
 * and a collector governed by it (its [collector] section registered). */
static struct gov *governor_with(const char *policy, struct collector **c)
{
    struct gov_config cfg = {.cgroup_dir = dir, .embedded_policy = policy};
    struct gov_policy_section section;
    char err[256];
    struct gov *g;
    *c = collector_new(false);
    assert_non_null(*c);
    collector_policy_section(*c, &section);
    cfg.sections = &section;
    cfg.nsections = 1;
    g = gov_new(&cfg, err, sizeof(err));
    if (!g)
        print_error("gov_new: %s\n", err);
    assert_non_null(g);
    assert_int_equal(collector_attach(*c, g), 0);
    return g;
}

static void grows_rotates_and_refuses(void **state)
{
    struct gov *g;
    struct collector *c;
    struct gov_status *st = malloc(sizeof(*st));
    uint64_t bytes, blocks;
    (void)state;
    assert_non_null(st);
    put("memory.max", GIB);
    put("memory.current", 100 * MIB);
    g = governor_with("[collector]\nblock_size = 4Mi\n", &c);
    assert_non_null(c);

    /* room: blocks are added */
    for (int i = 0; i < 3; i++)
        assert_true(collector_grow(c, 4 * MIB));
    collector_count(c, &bytes, &blocks);
    assert_int_equal(bytes, 12 * MIB);
    assert_int_equal(blocks, 3);

    /* usage reaches soft with the next block: it replaces the oldest (the
     * fixture's memory.stat has 8Mi inactive_file, outside the working set) */
    put("memory.current", (uint64_t)(0.70 * (double)GIB) + 8 * MIB - 2 * MIB);
    assert_true(collector_grow(c, 4 * MIB));
    collector_count(c, &bytes, &blocks);
    assert_int_equal(blocks, 3);
    gov_status(g, st);
    assert_int_equal(st->counters.evictions, 1);
    assert_int_equal(st->counters.evicted_bytes, 4 * MIB);
    assert_int_equal(st->decisions[0].action, GOV_ACT_EVICT);

    /* past high with a buffer too small to make room: refused, nothing lost */
    put("memory.current", (uint64_t)(0.99 * (double)GIB));
    assert_false(collector_grow(c, 4 * MIB));
    collector_count(c, &bytes, &blocks);
    assert_int_equal(blocks, 3);
    gov_status(g, st);
    assert_int_equal(st->counters.refused, 1);
    assert_int_equal(st->decisions[0].action, GOV_ACT_REFUSE);
    assert_non_null(strstr(st->decisions[0].reason, "cannot make room"));

    /* the memory source breaks: growing blind is refused */
    put("memory.current", 100 * MIB);
    {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/memory.stat", dir);
        assert_int_equal(unlink(path), 0);
    }
    assert_false(collector_grow(c, 4 * MIB));
    gov_status(g, st);
    assert_int_equal(st->counters.refused, 2);
    assert_non_null(strstr(st->decisions[0].reason, "memory source unreadable"));

    collector_free(c);
    gov_free(g);
    free(st);
}

static void observe_mode_only_records(void **state)
{
    struct gov *g;
    struct collector *c;
    struct gov_status *st = malloc(sizeof(*st));
    uint64_t bytes, blocks;
    (void)state;
    assert_non_null(st);
    put("memory.max", GIB);
    put("memory.current", (uint64_t)(0.99 * (double)GIB));
    g = governor_with("[governor]\nmode = observe\n", &c);
    assert_true(collector_grow(c, 4 * MIB));
    assert_true(collector_grow(c, 4 * MIB));
    collector_count(c, &bytes, &blocks);
    assert_int_equal(blocks, 2);
    gov_status(g, st);
    assert_int_equal(st->counters.refused, 0);
    assert_int_equal(st->ndecisions, 1); /* folded */
    assert_true(st->decisions[0].dry_run);
    assert_int_equal(st->decisions[0].repeat, 2);
    collector_free(c);
    gov_free(g);
    free(st);
}

static void shrink_releases_oldest_whole_blocks(void **state)
{
    struct gov *g;
    struct collector *c;
    uint64_t bytes, blocks;
    (void)state;
    put("memory.max", GIB);
    put("memory.current", 10 * MIB);
    g = governor_with("[governor]\nmode = enforce\n", &c);
    for (int i = 0; i < 4; i++)
        assert_true(collector_grow(c, 2 * MIB));
    assert_int_equal(collector_shrink(c, 1), 2 * MIB);        /* one whole block */
    assert_int_equal(collector_shrink(c, 2 * MIB + 1), 4 * MIB); /* two */
    collector_count(c, &bytes, &blocks);
    assert_int_equal(blocks, 1);
    assert_int_equal(collector_shrink(c, UINT64_MAX), 2 * MIB);
    assert_int_equal(collector_shrink(c, 1), 0);
    collector_count(c, &bytes, &blocks);
    assert_int_equal(bytes, 0);
    collector_free(c);
    gov_free(g);
}

/* A block that is not a whole number of pages costs whole pages: the
 * buffer counts (and admission asks for) what the kernel maps. */
static void blocks_cost_whole_pages(void **state)
{
    struct gov *g;
    struct collector *c;
    uint64_t bytes, blocks, page = (uint64_t)sysconf(_SC_PAGESIZE);
    (void)state;
    put("memory.max", GIB);
    put("memory.current", 10 * MIB);
    g = governor_with("[collector]\nblock_size = 5000\n", &c);
    assert_non_null(c);
    for (int i = 0; i < 3; i++)
        assert_true(collector_grow(c, page + 1));   /* two pages each */
    assert_true(collector_grow(c, page));           /* one page exactly */
    assert_true(collector_grow(c, 5000));           /* the policy's size */
    collector_count(c, &bytes, &blocks);
    assert_int_equal(blocks, 5);
    assert_int_equal(bytes, 3 * 2 * page + page + (5000 + page - 1) / page * page);
    assert_int_equal(collector_shrink(c, 1), 2 * page); /* the oldest, whole */
    assert_false(collector_grow(c, UINT64_MAX));       /* no page count fits */
    collector_free(c);
    gov_free(g);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/* munmap really gives the pages back: the process's RSS falls. */
static void released_memory_returns_to_the_kernel(void **state)
{
    struct gov *g;
    struct collector *c;
    uint64_t before, grown, after;
    (void)state;
    put("memory.max", 16 * GIB);
    put("memory.current", 10 * MIB);
    g = governor_with("[governor]\nmode = enforce\n", &c);
    before = rss_bytes();
    for (int i = 0; i < 4; i++)
        assert_true(collector_grow(c, 16 * MIB));
    grown = rss_bytes();
    assert_true(grown >= before + 60 * MIB); /* every page was written */
    assert_int_equal(collector_shrink(c, UINT64_MAX), 64 * MIB);
    after = rss_bytes();
    assert_true(after <= grown - 60 * MIB);
    collector_free(c);
    gov_free(g);
}

/* The same on a real cgroup v1 memory controller: the kernel's usage of the
 * cgroup falls after a shrink.  Needs root and /sys/fs/cgroup/memory. */
static void cgroup_usage_falls_after_a_shrink(void **state)
{
    char cg[PATH_MAX], path[PATH_MAX];
    struct stat st;
    pid_t pid;
    int status;
    (void)state;
    if (geteuid() != 0 || stat("/sys/fs/cgroup/memory/memory.usage_in_bytes", &st) != 0) {
        print_message("no writable cgroup v1 memory controller here; skipped\n");
        skip();
    }
    snprintf(cg, sizeof(cg), "/sys/fs/cgroup/memory/test_collector_%d", (int)getpid());
    assert_int_equal(mkdir(cg, 0755), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* child: join the cgroup, grow, shrink, compare the kernel's figures */
        FILE *f;
        char err[256];
        unsigned long long u1 = 0, u2 = 0;
        snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
        f = fopen(path, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
            _exit(10);
        struct gov_config cfg = {.cgroup_dir = cg, .embedded_policy = "[governor]\nmode = enforce\n"};
        struct gov *g = gov_new(&cfg, err, sizeof(err));
        struct collector *c = g ? collector_new(false) : NULL;
        if (!c || collector_attach(c, g) < 0)
            _exit(11);
        for (int i = 0; i < 4; i++)
            if (!collector_grow(c, 32 * MIB))
                _exit(12);
        snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg);
        f = fopen(path, "r");
        if (!f || fscanf(f, "%llu", &u1) != 1)
            _exit(13);
        fclose(f);
        if (collector_shrink(c, UINT64_MAX) != 128 * MIB)
            _exit(14);
        f = fopen(path, "r");
        if (!f || fscanf(f, "%llu", &u2) != 1)
            _exit(15);
        fclose(f);
        printf("cgroup usage %llu -> %llu after releasing 128 MiB\n", u1, u2);
        fflush(stdout);
        _exit(u1 >= 128 * MIB && u2 + 120 * MIB <= u1 ? 0 : 16);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* the child is gone: its cgroup can be removed */
    for (int i = 0; i < 50 && rmdir(cg) != 0 && errno == EBUSY; i++)
        usleep(20000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_not_equal(stat(cg, &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(grows_rotates_and_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(observe_mode_only_records, setup, teardown),
        cmocka_unit_test_setup_teardown(blocks_cost_whole_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(shrink_releases_oldest_whole_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(released_memory_returns_to_the_kernel, setup, teardown),
        cmocka_unit_test(cgroup_usage_falls_after_a_shrink),
    };
    return cmocka_run_group_tests_name("collector", tests, NULL, NULL);
}
