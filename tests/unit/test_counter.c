/* test_counter.c -- the counter store: URL parsing, the file format and the
 * lease arithmetic (pure), and the file store on real files in a temporary
 * directory (concurrent values unique, clean stop, every kind of bad file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"

static void parses_urls(void **state)
{
    struct counter_url u;
    char err[256];
    (void)state;

    assert_int_equal(counter_parse_url(NULL, &u, err, sizeof(err)), 0);
    assert_int_equal(u.kind, COUNTER_MEMORY);
    assert_int_equal(counter_parse_url("memory:", &u, err, sizeof(err)), 0);
    assert_int_equal(u.kind, COUNTER_MEMORY);

    assert_int_equal(counter_parse_url("file:/var/lib/c", &u, err, sizeof(err)), 0);
    assert_int_equal(u.kind, COUNTER_FILE);
    assert_string_equal(u.path, "/var/lib/c");

    assert_int_equal(counter_parse_url("redis://r:6379", &u, err, sizeof(err)), 0);
    assert_int_equal(u.kind, COUNTER_REDIS);
    assert_string_equal(u.host, "r");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_string_equal(u.key, "metrics-app:counter");

    assert_int_equal(counter_parse_url("redis://:p@ss@10.0.0.1:7000/3?key=a:b", &u, err,
                                       sizeof(err)), 0);
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.key, "a:b");

    assert_int_equal(counter_parse_url("redis://[::1]:6380/?key=k", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_string_equal(u.key, "k");

    static const char *bad[] = {
        "memory", "memory:x", "file:", "file:/dir/", "redis://", "redis://host",
        "redis://host:", "redis://host:0", "redis://host:65536", "redis://host:12x",
        "redis://:host:6379", "redis://user:pw@host:6379", "redis://:@host:6379",
        "redis://host:6379/x", "redis://host:6379/1?key=", "redis://host:6379?db=1",
        "redis://host:6379?key=a&x=1", "redis://[::1:6379", "redis://host:6379/1/2",
        "rediss://host:6379", "http://x", "file:/a\nb", "redis://ho\tst:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (counter_parse_url(bad[i], &u, err, sizeof(err)) == 0)
            fail_msg("accepted '%s'", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void file_format_round_trips(void **state)
{
    char line[COUNTER_FILE_MAX], err[200];
    uint64_t values[] = {0, 1, 1000, 123456789, UINT64_MAX};
    uint64_t h;
    (void)state;

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int n = counter_file_format(values[i], line, sizeof(line));
        assert_true(n > 0 && line[n - 1] == '\n');
        assert_int_equal(counter_file_parse(line, (size_t)n, &h, err, sizeof(err)), 0);
        assert_true(h == values[i]);
    }
    assert_int_equal(counter_file_format(1, line, 10), -1);
}

static void expect_parse_error(const char *text, size_t len, const char *what)
{
    char err[200] = "";
    uint64_t h = 42;
    if (counter_file_parse(text, len, &h, err, sizeof(err)) == 0)
        fail_msg("accepted %.*s", (int)len, text);
    if (!strstr(err, what))
        fail_msg("'%.*s': error '%s' does not say '%s'", (int)len, text, err, what);
    assert_true(h == 42);
}

static void bad_files_are_told_apart(void **state)
{
    char line[COUNTER_FILE_MAX], copy[COUNTER_FILE_MAX];
    int n;
    (void)state;

    n = counter_file_format(5000, line, sizeof(line));
    expect_parse_error("", 0, "empty");
    /* every torn prefix of a valid line is refused */
    for (int k = 1; k < n; k++)
        expect_parse_error(line, (size_t)k, "truncated");
    /* a changed digit fails the checksum */
    memcpy(copy, line, (size_t)n);
    copy[strlen("governord-counter 1 ")] = '6';
    expect_parse_error(copy, (size_t)n, "checksum");
    /* a changed checksum */
    memcpy(copy, line, (size_t)n);
    copy[n - 2] = copy[n - 2] == '0' ? '1' : '0';
    expect_parse_error(copy, (size_t)n, "checksum");
    expect_parse_error("hello\n", 6, "corrupt");
    expect_parse_error("governord-counter 1 12\n", 23, "corrupt");
    expect_parse_error("governord-counter 1 -1 0000000000000000\n", 40, "corrupt");
    expect_parse_error("governord-counter 1 012 0000000000000000\n", 41, "corrupt");
    expect_parse_error("governord-counter 1 99999999999999999999 0000000000000000\n", 58,
                       "corrupt");
    expect_parse_error("governord-counter 0 1 0000000000000000\n", 39, "corrupt");
    expect_parse_error("governord-counter 2 1 0000000000000000\n", 39, "from the future");
    expect_parse_error("governord-counter 1 5 0000000000000000\nx\n", 41, "corrupt");
    expect_parse_error("governord-counter 1 5 00000000\0\0\0\0\0\0\0\0\n", 39, "corrupt");
}

static void lease_arithmetic(void **state)
{
    struct counter_lease l = {.next = 0, .limit = 0, .size = 1000};
    uint64_t want;
    (void)state;

    assert_int_equal(counter_lease_want(&l, 1, &want), 0);
    assert_true(want == 1000);
    l.limit = 1000;
    assert_int_equal(counter_lease_want(&l, 1001, &want), 0);
    assert_true(want == 2000);
    /* values handed out past a failed write: the lease starts above them */
    assert_int_equal(counter_lease_want(&l, 5000, &want), 0);
    assert_true(want == 5999);
    l.limit = UINT64_MAX - 10;
    assert_int_equal(counter_lease_want(&l, UINT64_MAX - 9, &want), -1);
}

/* ---- the file store on real files ---------------------------------------------- */

struct tmp {
    char dir[64], path[128], url[140];
};

static void tmp_make(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/test_counter.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/counter", t->dir);
    snprintf(t->url, sizeof(t->url), "file:%s", t->path);
}

static void tmp_remove(struct tmp *t)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
}

static void write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint64_t read_mark(const char *path)
{
    char buf[COUNTER_FILE_MAX + 1], err[200];
    uint64_t h;
    FILE *f = fopen(path, "r");
    size_t n;
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_int_equal(counter_file_parse(buf, n, &h, err, sizeof(err)), 0);
    return h;
}

/* Seconds, times GOVERNORD_TIMEOUT_SCALE (valgrind, a loaded machine). */
static double scaled(double seconds)
{
    const char *e = getenv("GOVERNORD_TIMEOUT_SCALE");
    double f = e ? strtod(e, NULL) : 1.0;
    return seconds * (f >= 1.0 ? f : 1.0);
}

/* Waits until the renewer thread has written `want` as the mark: a deadline
 * of 5 s (scaled) for a condition, never a fixed wait. */
static void wait_mark(const char *path, uint64_t want)
{
    struct timespec t0, now, nap = {0, 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (read_mark(path) != want) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >
            scaled(5)) {
            fail_msg("the mark never became %llu (it is %llu)", (unsigned long long)want,
                     (unsigned long long)read_mark(path));
        }
        nanosleep(&nap, NULL);
    }
}

static uint64_t next_ok(struct counter_store *s)
{
    uint64_t v = 0;
    char why[256];
    assert_int_equal(counter_next(s, &v, why, sizeof(why)), 0);
    return v;
}

static void file_store_persists_ahead_and_continues(void **state)
{
    struct tmp t;
    struct counter_config cfg = {.lease = 10};
    struct counter_store *s;
    char err[512];
    (void)state;

    tmp_make(&t);
    cfg.url = t.url;
    s = counter_open(&cfg, err, sizeof(err));
    assert_non_null(s);
    /* the first lease is on disk before any value is served */
    assert_true(read_mark(t.path) == 10);
    /* the mark on disk is always at or above every value served and at
     * most K above the newest: the first half of a lease writes nothing,
     * a value in its second half has the renewer write newest + K ahead */
    for (uint64_t i = 1; i <= 12; i++) {
        uint64_t mark;
        assert_true(next_ok(s) == i);
        if (i == 6 || i == 12)
            wait_mark(t.path, i + 10);
        mark = read_mark(t.path);
        assert_true(mark >= i && mark - i <= 10);
        if (i <= 5)
            assert_true(mark == 10);
        else if (i <= 11)
            assert_true(mark == 16);
        else
            assert_true(mark == 22);
    }
    /* a second process on the same file is refused */
    assert_null(counter_open(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    /* a clean stop writes the last value served */
    counter_close(s);
    assert_true(read_mark(t.path) == 12);
    s = counter_open(&cfg, err, sizeof(err));
    assert_non_null(s);
    assert_true(next_ok(s) == 13);
    counter_close(s);
    /* a crash (the mark of a lease, not the last value): no repeat, a gap */
    unlink(t.path);
    {
        char line[COUNTER_FILE_MAX];
        int n = counter_file_format(30, line, sizeof(line));
        write_text(t.path, line, (size_t)n);
    }
    s = counter_open(&cfg, err, sizeof(err));
    assert_non_null(s);
    assert_true(next_ok(s) == 31);
    counter_close(s);
    tmp_remove(&t);
}

struct worker {
    struct counter_store *s;
    uint64_t *out;
    unsigned n;
};

static void *take_values(void *arg)
{
    struct worker *w = arg;
    char why[256];
    for (unsigned i = 0; i < w->n; i++)
        if (counter_next(w->s, &w->out[i], why, sizeof(why)) != 0)
            w->out[i] = 0;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void file_store_threads_get_exactly_one_to_n(void **state)
{
    enum { THREADS = 8, EACH = 500 };
    struct tmp t;
    struct counter_config cfg = {.lease = 7};
    struct counter_store *s;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    uint64_t *all = calloc(THREADS * EACH, sizeof(*all));
    char err[512];
    (void)state;

    assert_non_null(all);
    tmp_make(&t);
    cfg.url = t.url;
    s = counter_open(&cfg, err, sizeof(err));
    assert_non_null(s);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){s, all + i * EACH, EACH};
        assert_int_equal(pthread_create(&th[i], NULL, take_values, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    qsort(all, THREADS * EACH, sizeof(*all), cmp_u64);
    for (unsigned i = 0; i < THREADS * EACH; i++)
        assert_true(all[i] == i + 1);
    counter_close(s);
    free(all);
    tmp_remove(&t);
}

static void expect_open_error(struct tmp *t, const char *what)
{
    struct counter_config cfg = {.url = t->url, .lease = 10};
    char err[512] = "";
    struct counter_store *s = counter_open(&cfg, err, sizeof(err));
    if (s) {
        counter_close(s);
        fail_msg("a bad counter file was accepted (expected: %s)", what);
    }
    if (!strstr(err, what))
        fail_msg("error '%s' does not say '%s'", err, what);
}

static void bad_files_fail_the_start(void **state)
{
    struct tmp t;
    char line[COUNTER_FILE_MAX], tmpdir[160];
    int n;
    (void)state;

    tmp_make(&t);
    n = counter_file_format(77, line, sizeof(line));
    write_text(t.path, line, (size_t)n - 5);
    expect_open_error(&t, "truncated");
    write_text(t.path, "", 0);
    expect_open_error(&t, "empty");
    write_text(t.path, "garbage\n", 8);
    expect_open_error(&t, "corrupt");
    write_text(t.path, "governord-counter 9 1 0000000000000000\n", 39);
    expect_open_error(&t, "from the future");
    /* the file is left as it was: never silently reset */
    assert_int_equal(access(t.path, F_OK), 0);
    /* a file that cannot be replaced: its temporary name is a directory */
    write_text(t.path, line, (size_t)n);
    snprintf(tmpdir, sizeof(tmpdir), "%s.tmp", t.path);
    assert_int_equal(mkdir(tmpdir, 0700), 0);
    expect_open_error(&t, "not writable");
    assert_true(read_mark(t.path) == 77);
    rmdir(tmpdir);
    /* a directory that does not exist */
    snprintf(t.url, sizeof(t.url), "file:%s/missing/counter", t.dir);
    expect_open_error(&t, "directory");
    tmp_remove(&t);
}

static void file_store_write_failure_is_an_error_not_a_number(void **state)
{
    struct tmp t;
    struct counter_config cfg = {.lease = 3};
    struct counter_store *s;
    struct counter_status st;
    char err[512], why[256], tmpdir[160];
    uint64_t v = 0;
    (void)state;

    tmp_make(&t);
    cfg.url = t.url;
    s = counter_open(&cfg, err, sizeof(err));
    assert_non_null(s);
    assert_true(next_ok(s) == 1);
    snprintf(tmpdir, sizeof(tmpdir), "%s.tmp", t.path);
    assert_int_equal(mkdir(tmpdir, 0700), 0);
    /* 3 is still covered by the mark on disk: served, although its early
     * renewal fails */
    assert_true(next_ok(s) == 2);
    assert_true(next_ok(s) == 3);
    assert_true(read_mark(t.path) == 3);
    counter_get_status(s, &st);
    assert_true(st.up);
    assert_int_equal(counter_next(s, &v, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cannot persist"));
    assert_false(counter_ready(s, why, sizeof(why)));
    counter_get_status(s, &st);
    assert_false(st.up);
    assert_true(st.errors[COUNTER_ERR_PERSIST] == 1);
    assert_true(read_mark(t.path) == 3);
    rmdir(tmpdir);
    /* recovered: above every value served, the failed one skipped */
    v = next_ok(s);
    assert_true(v == 5);
    assert_true(counter_ready(s, why, sizeof(why)));
    counter_close(s);
    tmp_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_urls),
        cmocka_unit_test(file_format_round_trips),
        cmocka_unit_test(bad_files_are_told_apart),
        cmocka_unit_test(lease_arithmetic),
        cmocka_unit_test(file_store_persists_ahead_and_continues),
        cmocka_unit_test(file_store_threads_get_exactly_one_to_n),
        cmocka_unit_test(bad_files_fail_the_start),
        cmocka_unit_test(file_store_write_failure_is_an_error_not_a_number),
    };
    return cmocka_run_group_tests_name("counter", tests, NULL, NULL);
}
