/* test_governor.c -- the governor thread with its real sd-event loop, the
 * collector thread and readers running at once (this is the test TSan
 * watches): ticks, level changes and shrinks driven by a cgroup directory
 * the test rewrites, reloads through the policy directory watch and
 * through gov_request_reload(), and a clean stop.  Also: a tick's shrink and
 * an admission eviction never run at once (act_lock), and a policy that
 * cannot be read for want of descriptors is retried, not rejected.  A
 * governor thread that is stuck is stopped within a bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "governor.h"
#include "policy.h"

#define MIB (UINT64_C(1) << 20)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
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

/* Seconds, times GOVERNORD_TIMEOUT_SCALE (as the Python suites scale
 * theirs): a deadline for a condition to become true, never a fixed wait. */
static double scaled(double seconds)
{
    const char *s = getenv("GOVERNORD_TIMEOUT_SCALE");
    double f = s ? strtod(s, NULL) : 1.0;
    return seconds * (f >= 1.0 ? f : 1.0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls the status until pred holds or 5 s (scaled) pass. */
static bool wait_for(struct gov *g, struct gov_status *st,
                     bool (*pred)(const struct gov_status *, const void *), const void *arg)
{
    double deadline = now_s() + scaled(5);
    for (;;) {
        gov_status(g, st);
        if (pred(st, arg))
            return true;
        if (now_s() > deadline)
            return false;
        sleep_ms(10);
    }
}

/* Polls gov_ready() until it says `want` or 5 s (scaled) pass. */
static bool wait_ready(struct gov *g, bool want, char *err, size_t errlen)
{
    double deadline = now_s() + scaled(5);
    for (;;) {
        if (gov_ready(g, err, errlen) == want)
            return true;
        if (now_s() > deadline)
            return false;
        sleep_ms(10);
    }
}

/* Polls the collector until it holds more than `n` blocks or 5 s (scaled) pass. */
static bool wait_blocks(struct collector *c, uint64_t n)
{
    double deadline = now_s() + scaled(5);
    uint64_t bytes, blocks;
    for (;;) {
        collector_count(c, &bytes, &blocks);
        if (blocks > n)
            return true;
        if (now_s() > deadline)
            return false;
        sleep_ms(10);
    }
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

static bool has_error_with(const struct gov_status *st, const void *arg)
{
    return strstr(st->policy_error, arg) != NULL;
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

/* The value of section.key in the status's policy (library or host
 * section), as /governor shows it; "" when absent. */
struct lookup {
    const char *section, *key;
    char value[64];
};
static void find_value(const char *section, const char *key, const char *value, void *ud)
{
    struct lookup *l = ud;
    if (strcmp(section, l->section) == 0 && strcmp(key, l->key) == 0)
        snprintf(l->value, sizeof(l->value), "%s", value);
}
static const char *policy_value(const struct gov_status *st, const char *section,
                                const char *key, struct lookup *l)
{
    *l = (struct lookup){.section = section, .key = key};
    gov_status_policy_foreach(st, find_value, l);
    return l->value;
}

static void governs_while_threads_race(void **state)
{
    struct gov_config cfg = {.cgroup_dir = dir, .policy_path = policy_path};
    struct gov_status *st = malloc(sizeof(*st)), *brief;
    struct gov *g;
    struct collector *c;
    char err[256];
    enum gov_level want;
    uint64_t gen;
    (void)state;
    assert_non_null(st);
    put_bytes("memory.max", GIB);
    put_bytes("memory.current", 200 * MIB);
    static const char first[] = "[governor]\ninterval_ms = 10\ncooldown_ms = 0\n"
                                "[collector]\nblock_size = 1Mi\ninterval_ms = 1\n";
    static const char second[] =
        "[governor]\ninterval_ms = 20\ncooldown_ms = 0\n"
        "[collector]\nblock_size = 2Mi\ninterval_ms = 1\n[thresholds]\nhigh = 0.92\n";
    char sha[GOV_POLICY_SHA256_HEX];
    struct gov_policy_section section;
    struct collector_settings cs;
    struct lookup l;
    put(policy_dir, "policy.ini", first);
    /* the collector's [collector] section is the host's: registered with gov_new */
    c = collector_new(false);
    assert_non_null(c);
    collector_policy_section(c, &section);
    cfg.sections = &section;
    cfg.nsections = 1;
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    collector_get_settings(c, &cs); /* committed by gov_new */
    assert_int_equal(cs.block_size, MIB);
    assert_int_equal(cs.interval_ms, 1);
    /* the published hash is that of the file's bytes, and follows reloads */
    gov_status(g, st);
    gov_policy_sha256_hex(first, strlen(first), sha);
    assert_string_equal(st->policy_sha256, sha);
    assert_int_equal(collector_attach(c, g), 0);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);
    assert_int_equal(collector_start(c), 0);

    /* the collector grows (usage in the file is fixed: 200Mi of 1Gi) */
    assert_true(wait_blocks(c, 5));
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
    put(policy_dir, "policy.ini", second);
    gen = 2;
    assert_true(wait_for(g, st, at_generation, &gen));
    assert_string_equal(policy_value(st, "collector", "block_size", &l), "2Mi");
    collector_get_settings(c, &cs);
    assert_int_equal(cs.block_size, 2 * MIB);
    gov_policy_sha256_hex(second, strlen(second), sha);
    assert_string_equal(st->policy_sha256, sha);

    /* a broken update is rejected; the old policy stays */
    put(policy_dir, "policy.ini", "[governor]\ninterval_ms = fast\n");
    assert_true(wait_for(g, st, has_error, NULL));
    assert_int_equal(st->policy_generation, 2);
    assert_non_null(strstr(st->policy_error, "interval_ms: 'fast' is not a whole number"));
    assert_string_equal(policy_value(st, "collector", "block_size", &l), "2Mi");
    assert_string_equal(st->policy_sha256, sha); /* the rejected bytes are not in force */

    /* all or nothing: a bad host key rejects the library's part too */
    put(policy_dir, "policy.ini",
        "[governor]\ninterval_ms = 30\n[collector]\nblock_size = 8Mi\nfloor = lots\n");
    assert_true(wait_for(g, st, has_error_with, "collector.floor: 'lots' is not a size"));
    assert_int_equal(st->policy_generation, 2);
    assert_int_equal(st->policy.interval_ms, 20);
    assert_string_equal(policy_value(st, "collector", "block_size", &l), "2Mi");
    collector_get_settings(c, &cs);
    assert_int_equal(cs.block_size, 2 * MIB);

    /* SIGHUP's path: fixed file, explicit reload request */
    put(policy_dir, "policy.ini", "[governor]\ninterval_ms = 10\n[collector]\nenabled = false\n");
    gov_request_reload(g);
    gen = 3;
    assert_true(wait_for(g, st, at_generation, &gen));
    assert_string_equal(st->policy_error, "");
    assert_string_equal(policy_value(st, "collector", "enabled", &l), "false");
    collector_get_settings(c, &cs);
    assert_false(cs.enabled);

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
    assert_true(wait_ready(g, true, err, sizeof(err)));
    snprintf(path, sizeof(path), "%s/memory.current", dir);
    assert_int_equal(unlink(path), 0);
    assert_true(wait_ready(g, false, err, sizeof(err)));
    assert_non_null(strstr(err, "memory.current: No such file or directory"));
    assert_true(gov_alive(g)); /* still ticking */
    put_bytes("memory.current", 100 * MIB);
    assert_true(wait_ready(g, true, err, sizeof(err)));
    gov_free(g);
}

/* ---- a tick's shrink and an admission eviction never overlap ---------------- */

/* A cache that notices when it is counted or shrunk while a shrink is in
 * progress.  Its first shrink (the tick's) waits a while inside the call, so
 * that an admission arriving meanwhile would overlap it. */
struct watched_cache {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t bytes;
    int in_shrink;  /* shrink calls in progress */
    int shrinks;    /* shrink calls so far */
    bool overlap;   /* a call came in while a shrink was in progress */
};

static void watched_count(void *ctx, uint64_t *bytes, uint64_t *objects)
{
    struct watched_cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->in_shrink)
        c->overlap = true;
    *bytes = c->bytes;
    *objects = c->bytes / MIB;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static uint64_t watched_shrink(void *ctx, uint64_t bytes)
{
    struct watched_cache *c = ctx;
    uint64_t got;
    pthread_mutex_lock(&c->lock);
    if (c->in_shrink)
        c->overlap = true;
    c->in_shrink++;
    if (++c->shrinks == 1) {
        /* The first shrink (the tick's) lets time pass -- the thing under
         * test: an admission started meanwhile must wait for it, so nothing
         * may call in during these 300 ms. */
        struct timespec until;
        pthread_cond_broadcast(&c->cond);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 300 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!c->overlap && pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0) {
        }
    }
    got = bytes < c->bytes ? bytes : c->bytes;
    c->bytes -= got;
    c->in_shrink--;
    pthread_mutex_unlock(&c->lock);
    return got;
}

static void tick_and_admission_release_one_at_a_time(void **state)
{
    struct gov_config cfg = {.cgroup_dir = dir,
                             .embedded_policy = "[governor]\ninterval_ms = 10\ncooldown_ms = 0\n"};
    struct watched_cache cache = {.bytes = 500 * MIB};
    struct gov_shrinker sh = {.name = "watched", .count = watched_count,
                              .shrink = watched_shrink, .ctx = &cache};
    struct timespec deadline;
    struct gov *g;
    char err[256];
    (void)state;
    pthread_mutex_init(&cache.lock, NULL);
    pthread_cond_init(&cache.cond, NULL);
    put_bytes("memory.max", GIB);
    put_bytes("memory.current", 200 * MIB);
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(gov_register_shrinker(g, &sh), 0);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);

    /* past high: the tick shrinks toward target; while its shrink is in
     * progress, this thread asks for room past high too */
    put_bytes("memory.current", (uint64_t)(0.90 * (double)GIB));
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&cache.lock);
    while (cache.shrinks == 0 &&
           pthread_cond_timedwait(&cache.cond, &cache.lock, &deadline) == 0) {
    }
    assert_int_equal(cache.shrinks, 1);
    pthread_mutex_unlock(&cache.lock);
    gov_admit(g, MIB);

    gov_stop(g);
    assert_false(cache.overlap);
    gov_free(g);
    pthread_mutex_destroy(&cache.lock);
    pthread_cond_destroy(&cache.cond);
}

/* ---- a transient failure to read the policy is retried ------------------------ */

static bool reload_failed(const struct gov_status *st, const void *arg)
{
    (void)arg;
    return st->counters.reloads_failed > 0 || st->policy_generation != 1;
}

static bool saw_policy_change(const struct gov_status *st, const void *arg)
{
    (void)arg;
    return st->counters.wake_policy > 0;
}

#define CHILD_CHECK(cond)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: child check failed: %s\n", __FILE__, __LINE__, #cond);   \
            return 1;                                                                        \
        }                                                                                    \
    } while (0)

/* In a child process (RLIMIT_NOFILE is the process's): the governor runs,
 * then every descriptor below the limit is taken -- its reserve included,
 * which the child puts above the limit -- and a valid policy arrives. */
static int out_of_descriptors_child(void)
{
    struct gov_config cfg = {.cgroup_dir = dir, .policy_path = policy_path};
    static struct gov_status st;
    struct rlimit old, low;
    int holes[32], probe;
    char err[256], tmp[PATH_MAX];
    uint64_t gen = 2;
    struct gov *g;
    FILE *f;

    /* low descriptors taken for now, so that the governor's (and its
     * reserve) land above the limit set below */
    for (size_t i = 0; i < ARRAY_LEN(holes); i++)
        CHILD_CHECK((holes[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    g = gov_new(&cfg, err, sizeof(err));
    CHILD_CHECK(g != NULL);
    CHILD_CHECK(gov_start(g, err, sizeof(err)) == 0);
    for (size_t i = 0; i < ARRAY_LEN(holes); i++)
        close(holes[i]);

    /* the new policy, written while descriptors remain */
    snprintf(tmp, sizeof(tmp), "%s/.policy.ini.tmp", policy_dir);
    f = fopen(tmp, "w");
    CHILD_CHECK(f != NULL);
    fputs("[governor]\ninterval_ms = 20\n", f);
    CHILD_CHECK(fclose(f) == 0);

    /* the limit at the lowest free descriptor: every open fails EMFILE */
    CHILD_CHECK((probe = dup(0)) >= 0);
    close(probe);
    CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = (struct rlimit){.rlim_cur = (rlim_t)probe, .rlim_max = old.rlim_max};
    CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    CHILD_CHECK(rename(tmp, policy_path) == 0);

    CHILD_CHECK(wait_for(g, &st, saw_policy_change, NULL));
    /* Time passing is what is under test: for a second, while the file
     * cannot be opened, the reload is retried -- never rejected. */
    for (int i = 0; i < 100; i++) {
        gov_status(g, &st);
        CHILD_CHECK(!reload_failed(&st, NULL));
        CHILD_CHECK(st.policy_error[0] == '\0');
        sleep_ms(10);
    }
    /* descriptors again: the retry applies it */
    CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHILD_CHECK(wait_for(g, &st, at_generation, &gen));
    CHILD_CHECK(st.counters.reloads_failed == 0);
    CHILD_CHECK(st.policy.interval_ms == 20);
    gov_free(g);
    return 0;
}

static void out_of_descriptors_the_reload_is_retried(void **state)
{
    int status = -1;
    pid_t pid;
    (void)state;
    put_bytes("memory.max", GIB);
    put_bytes("memory.current", 200 * MIB);
    put(policy_dir, "policy.ini", "[governor]\ninterval_ms = 10\n");
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(out_of_descriptors_child());
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A cache whose count callback blocks, once armed, until released: a
 * governor thread stuck in a call that does not return. */
struct stuck {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool armed, inside, release;
};

static void stuck_count(void *ctx, uint64_t *bytes, uint64_t *objects)
{
    struct stuck *s = ctx;
    *bytes = *objects = 0;
    pthread_mutex_lock(&s->lock);
    if (s->armed) {
        s->inside = true;
        pthread_cond_broadcast(&s->cond);
        while (!s->release)
            pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

static uint64_t stuck_shrink(void *ctx, uint64_t bytes)
{
    (void)ctx;
    (void)bytes;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* gov_stop_within() returns after its bound when the thread is stuck, and
 * leaves the governor whole: it can still be stopped and freed later. */
static void stop_is_bounded(void **state)
{
    struct gov_config cfg = {.cgroup_dir = dir, .embedded_policy = "[governor]\ninterval_ms=10\n"};
    struct stuck s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    struct gov_shrinker sh = {.name = "stuck", .count = stuck_count, .shrink = stuck_shrink,
                              .ctx = &s};
    struct gov_status *st = malloc(sizeof(*st));
    struct gov *g;
    char err[400];
    uint64_t t0, waited;
    (void)state;
    assert_non_null(st);
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(gov_register_shrinker(g, &sh), 0);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);

    /* the next tick gets stuck counting the cache */
    pthread_mutex_lock(&s.lock);
    s.armed = true;
    while (!s.inside)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);

    t0 = now_ms();
    assert_false(gov_stop_within(g, 200));
    waited = now_ms() - t0;
    assert_true(waited >= 150); /* CLOCK_REALTIME vs MONOTONIC: a little slack */
    assert_true(waited < 5000);
    assert_false(gov_stop_within(g, 0));
    gov_status(g, st); /* still whole and usable */

    pthread_mutex_lock(&s.lock);
    s.release = true;
    pthread_cond_broadcast(&s.cond);
    pthread_mutex_unlock(&s.lock);
    assert_true(gov_stop_within(g, 5000));
    assert_true(gov_stop_within(g, 0)); /* idempotent */
    gov_free(g);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(governs_while_threads_race, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_source_makes_it_unready, setup, teardown),
        cmocka_unit_test_setup_teardown(tick_and_admission_release_one_at_a_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(out_of_descriptors_the_reload_is_retried, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("governor", tests, NULL, NULL);
}
