/* test_client.c -- the C trim-protocol client (governor/client.c) against
 * the real server of governord (app/trimsock.c) and a real governor with
 * its sd-event thread, in one process, so that ASan and TSan see every
 * thread at once: the client's own thread, the socket thread, the
 * admission worker and the governor thread.  The cgroup is a directory in
 * the kernel's format that the test rewrites.  The client registers, is
 * admitted, is counted, hears the level and is shrunk when usage passes
 * high; a second client drives itself from the test's loop
 * (gov_client_process) and is shrunk while its own admit waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "governor.h"
#include "trimsock.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static char dir[64], sock_path[128];

static void put_bytes(const char *name, uint64_t v)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%llu\n", (unsigned long long)v);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

/* Seconds, times GOVERNORD_TIMEOUT_SCALE (valgrind, sanitizers, a loaded
 * machine): deadlines for conditions, never fixed waits. */
static double scaled(double seconds)
{
    const char *e = getenv("GOVERNORD_TIMEOUT_SCALE");
    double f = e ? strtod(e, NULL) : 1.0;
    return seconds * (f >= 1.0 ? f : 1.0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A cache of counted bytes, touched by the client's thread (shrink) and
 * the test's thread: atomics. */
struct cache {
    atomic_uint_fast64_t bytes, released, shrinks;
    atomic_int level;
};

static void on_count(void *ud, uint64_t *bytes, uint64_t *objects)
{
    struct cache *c = ud;
    *bytes = atomic_load(&c->bytes);
    *objects = *bytes / MIB;
}

static uint64_t on_shrink(void *ud, uint64_t bytes, enum gov_level level, const char *reason)
{
    struct cache *c = ud;
    uint64_t have = atomic_load(&c->bytes), r = bytes < have ? bytes : have;
    (void)level;
    (void)reason;
    atomic_fetch_sub(&c->bytes, r);
    atomic_fetch_add(&c->released, r);
    atomic_fetch_add(&c->shrinks, 1);
    return r;
}

static void on_level(void *ud, enum gov_level level)
{
    struct cache *c = ud;
    atomic_store(&c->level, (int)level);
}

static void level_hook(void *ud, enum gov_level from, enum gov_level to, uint64_t usage,
                       uint64_t limit)
{
    (void)from;
    (void)usage;
    (void)limit;
    trimsock_level_changed(ud, to); /* as governord wires it */
}

static struct trimsock_client_status *find(struct trimsock_status *st, const char *name)
{
    for (unsigned i = 0; i < st->nclients; i++)
        if (strcmp(st->clients[i].name, name) == 0)
            return &st->clients[i];
    return NULL;
}

static int setup(void **state)
{
    char cmd[PATH_MAX + 128];
    (void)state;
    gov_log_setup(GOV_LOG_TEXT, LOG_ERR);
    strcpy(dir, "/tmp/test_client.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/g.sock", dir);
    snprintf(cmd, sizeof(cmd), "cp -r %s/cgroup/v2-ns/sys/fs/cgroup/. %s/", FIXTURES, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void clients_are_admitted_counted_and_shrunk(void **state)
{
    struct trimsock_config tcfg = {.path = sock_path, .path_explicit = true};
    struct gov_config cfg = {.cgroup_dir = dir,
                             .embedded_policy = "[governor]\ninterval_ms = 10\n"
                                                "cooldown_ms = 0\nclient_timeout_ms = 5000\n"};
    struct trimsock_status *st = malloc(sizeof(*st));
    struct cache threaded = {0}, polled = {0};
    struct gov_client_callbacks cb1 = {on_count, on_shrink, on_level, &threaded};
    struct gov_client_callbacks cb2 = {on_count, on_shrink, on_level, &polled};
    struct gov_client_info info;
    struct gov_client *c1, *c2;
    struct trimsock *s;
    struct gov *g;
    char err[256];
    bool ok = false;
    double deadline;
    (void)state;

    assert_non_null(st);
    put_bytes("memory.max", GIB);
    put_bytes("memory.current", 200 * MIB);
    s = trimsock_open(&tcfg, err, sizeof(err));
    assert_non_null(s);
    cfg.hooks = (struct gov_hooks){.level_changed = level_hook, .ud = s};
    g = gov_new(&cfg, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(trimsock_attach(s, g), 0);
    assert_int_equal(gov_start(g, err, sizeof(err)), 0);
    assert_int_equal(trimsock_start(s, err, sizeof(err)), 0);

    /* a client with its own thread: register, admit, count */
    c1 = gov_client_connect(sock_path, &cb1, err, sizeof(err));
    assert_non_null(c1);
    assert_int_equal(gov_client_register(c1, "threaded", 0, 0, &info, err, sizeof(err)), 0);
    assert_true(info.id >= 1);
    assert_int_equal(info.level, GOV_LEVEL_NORMAL);
    assert_true(info.limit_bytes == GIB);
    assert_int_equal(gov_client_start_thread(c1, err, sizeof(err)), 0);
    assert_int_equal(gov_client_admit(c1, 64 * MIB, &ok, err, sizeof(err)), 0);
    assert_true(ok);
    atomic_store(&threaded.bytes, 64 * MIB);
    assert_int_equal(gov_client_count(c1, 64 * MIB, 64), 0);
    deadline = now_s() + scaled(5);
    for (;;) {
        struct trimsock_client_status *cs;
        trimsock_snapshot(s, st);
        cs = find(st, "threaded");
        if (cs && cs->bytes == 64 * MIB)
            break;
        assert_true(now_s() < deadline);
        usleep(1000);
    }

    /* past high: the only holder is shrunk, and hears the level */
    put_bytes("memory.current", (uint64_t)(0.90 * (double)GIB));
    deadline = now_s() + scaled(5);
    while (atomic_load(&threaded.released) < 64 * MIB ||
           atomic_load(&threaded.level) < GOV_LEVEL_HIGH) {
        assert_true(now_s() < deadline);
        usleep(1000);
    }
    assert_int_equal(atomic_load(&threaded.bytes), 0);
    assert_true(gov_client_level(c1) >= GOV_LEVEL_HIGH);
    deadline = now_s() + scaled(5);
    for (;;) {
        struct trimsock_client_status *cs;
        trimsock_snapshot(s, st);
        cs = find(st, "threaded");
        assert_non_null(cs);
        if (cs->released_bytes == 64 * MIB && cs->bytes == 0)
            break;
        assert_true(now_s() < deadline);
        usleep(1000);
    }

    /* back to normal; a second client driven from this thread's own loop
     * holds 32 MiB; at soft its admit is answered only after it has been
     * shrunk, which it serves while it waits */
    put_bytes("memory.current", 200 * MIB);
    c2 = gov_client_connect(sock_path, &cb2, err, sizeof(err));
    assert_non_null(c2);
    assert_int_equal(gov_client_register(c2, "polled", 32 * MIB, 32, &info, err, sizeof(err)),
                     0);
    atomic_store(&polled.bytes, 32 * MIB);
    deadline = now_s() + scaled(5);
    while (gov_client_level(c2) != GOV_LEVEL_NORMAL || gov_level(g) != GOV_LEVEL_NORMAL) {
        struct pollfd p = {.fd = gov_client_fd(c2), .events = POLLIN};
        if (poll(&p, 1, 1) > 0)
            assert_int_equal(gov_client_process(c2), 0);
        assert_true(now_s() < deadline);
    }
    put_bytes("memory.current", (uint64_t)(0.75 * (double)GIB));
    deadline = now_s() + scaled(5);
    while (gov_client_level(c2) != GOV_LEVEL_SOFT) {
        struct pollfd p = {.fd = gov_client_fd(c2), .events = POLLIN};
        if (poll(&p, 1, 1) > 0)
            assert_int_equal(gov_client_process(c2), 0);
        assert_true(now_s() < deadline);
    }
    assert_int_equal(gov_client_admit(c2, 8 * MIB, &ok, err, sizeof(err)), 0);
    assert_true(ok);
    assert_true(atomic_load(&polled.shrinks) >= 1);
    assert_true(atomic_load(&polled.released) >= 8 * MIB);

    gov_client_close(c2);
    gov_client_close(c1);
    trimsock_stop(s);
    assert_true(gov_stop(g));
    gov_free(g);
    trimsock_free(s);
    free(st);
}

static void connect_errors_are_told(void **state)
{
    char err[256], path[160];
    (void)state;
    snprintf(path, sizeof(path), "%s/nobody.sock", dir);
    assert_null(gov_client_connect(path, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_null(gov_client_connect("none", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "disabled"));
    setenv("GOVERNOR_SOCKET", path, 1);
    assert_string_equal(gov_client_default_socket(), path);
    unsetenv("GOVERNOR_SOCKET");
    assert_string_equal(gov_client_default_socket(), GOV_CLIENT_DEFAULT_SOCKET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(clients_are_admitted_counted_and_shrunk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(connect_errors_are_told, setup, teardown),
    };
    return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
