/* test_metrics.c -- the Prometheus exposition: escaping, numbers, structure.
 *
 * A synthetic status with awkward values (a version full of characters the
 * format must escape, a zero limit whose ratio is +Inf, counters in the
 * "other" slots) is rendered, checked line by line here, and handed to
 * `promtool check metrics`, the reference parser and linter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "policy.h"

/* The output of the two writers, as strings. */
static char *capture_label(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    metrics_write_label_value(f, s);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static char *capture_double(double v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    metrics_write_double(f, v);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void escapes_label_values(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"two\nlines", "two\\nlines"},
        {"\\\"\n", "\\\\\\\"\\n"},
        {"tab\tstays", "tab\tstays"},
        {"utf-8 \xc3\xa9", "utf-8 \xc3\xa9"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = capture_label(cases[i].in);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
}

static void formats_numbers(void **state)
{
    static const struct { double in; const char *out; } cases[] = {
        {0, "0"},          {1, "1"},         {1073741824.0, "1073741824"},
        {0.5, "0.5"},      {0.85, "0.85"},   {0.1, "0.1"},
        {1.5e-7, "1.5e-07"}, {-2, "-2"},     {1795693861.374, "1795693861.374"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = capture_double(cases[i].in);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
    char *s = capture_double(INFINITY);
    assert_string_equal(s, "+Inf");
    free(s);
    s = capture_double(-INFINITY);
    assert_string_equal(s, "-Inf");
    free(s);
    s = capture_double(NAN);
    assert_string_equal(s, "NaN");
    free(s);
    /* anything else reads back to the same double */
    double third = 1.0 / 3.0, ratio = 280.0 / 1024.0 / 3.0;
    s = capture_double(third);
    assert_true(strtod(s, NULL) == third);
    free(s);
    s = capture_double(ratio);
    assert_true(strtod(s, NULL) == ratio);
    free(s);
}

static void parses_proc_stat_starttime(void **state)
{
    unsigned long long t = 0;
    (void)state;
    assert_int_equal(metrics_parse_starttime("4242 (governord) S 1 4242 4242 0 -1 4194560 "
                                             "120 0 0 0 1 2 0 0 20 0 3 0 987654 1 2 3\n",
                                             &t),
                     0);
    assert_int_equal(t, 987654);
    /* comm may hold spaces and ')' -- the last ')' ends it */
    assert_int_equal(metrics_parse_starttime("7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 "
                                             "1 0 55 9\n",
                                             &t),
                     0);
    assert_int_equal(t, 55);
    assert_int_equal(metrics_parse_starttime("7 (x) R 1 2 3", &t), -1);
    assert_int_equal(metrics_parse_starttime("no parenthesis at all", &t), -1);
    assert_int_equal(metrics_parse_starttime("7 (x) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
                                             "5x5 9\n",
                                             &t),
                     -1);
}

static void parses_proc_stat_process_figures(void **state)
{
    struct metrics_process p;
    (void)state;
    /* utime 150, stime 50 (ticks of 100 Hz), priority -2 and nice -5 (signed),
     * vsize 123456789, rss 300 pages of 4096 */
    assert_int_equal(metrics_parse_process_stat("42 (gov ernor) d) S 1 42 42 0 -1 4194560 120 0 0 "
                                                "0 150 50 0 0 -2 -5 3 0 987654 123456789 300 "
                                                "18446744073709551615 1 2\n",
                                                100, 4096, &p),
                     0);
    assert_true(p.cpu_seconds == 2.0);
    assert_int_equal(p.virtual_bytes, 123456789);
    assert_int_equal(p.resident_bytes, 300 * 4096);
    /* cut short before rss, a sign where a count must be, no comm, bad clock */
    assert_int_equal(metrics_parse_process_stat("42 (x) S 1 42 42 0 -1 0 1 0 0 0 150 50 0 0 20 0 "
                                                "3 0 9 123\n", 100, 4096, &p), -1);
    assert_int_equal(metrics_parse_process_stat("42 (x) S 1 42 42 0 -1 0 1 0 0 0 -150 50 0 0 20 "
                                                "0 3 0 9 123 300\n", 100, 4096, &p), -1);
    assert_int_equal(metrics_parse_process_stat("no parenthesis", 100, 4096, &p), -1);
    assert_int_equal(metrics_parse_process_stat("42 (x) S 1 42 42 0 -1 0 1 0 0 0 150 50 0 0 20 0 "
                                                "3 0 9 123 300\n", 0, 4096, &p), -1);
}

static void reads_this_process(void **state)
{
    struct metrics_process p;
    uint64_t open_fds = 0, max_fds = 0, more = 0;
    int fd;
    (void)state;
    assert_int_equal(metrics_process_read(&p), 0);
    assert_true(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
    assert_true(p.cpu_seconds >= 0);
    assert_int_equal(metrics_open_fds(&open_fds), 0);
    assert_true(open_fds >= 3); /* stdin, stdout, stderr at least */
    fd = dup(0);
    assert_true(fd >= 0);
    assert_int_equal(metrics_open_fds(&more), 0);
    close(fd);
    assert_int_equal(more, open_fds + 1);
    assert_int_equal(metrics_max_fds(&max_fds), 0);
    assert_true(max_fds >= open_fds);
}

static void process_start_time_is_now_for_a_fresh_process(void **state)
{
    struct timespec now;
    double t = 0;
    (void)state;
    assert_int_equal(metrics_process_start_time(&t), 0);
    clock_gettime(CLOCK_REALTIME, &now);
    /* this test process started a moment ago (clock ticks: 10 ms) */
    assert_true(t <= (double)now.tv_sec + 1.0);
    assert_true(t >= (double)now.tv_sec - 120.0);
}

/* A status with awkward values. */
static void fill(struct gov_status *st, struct app_info *app, struct http_stats *hs)
{
    memset(st, 0, sizeof(*st));
    memset(app, 0, sizeof(*app));
    memset(hs, 0, sizeof(*hs));
    gov_policy_defaults(&st->policy);
    st->sample_ok = true;
    st->sample.current = 300u << 20;
    st->sample.inactive_file = 20u << 20;
    st->sample.working_set = 280u << 20;
    st->sample.oom_kills = 2;
    st->sample.events_max = 7;
    st->sample.has_psi = true;
    st->sample.psi.some_total = 1500000;
    st->sample.psi.full_total = 250000;
    st->usage = 280u << 20;
    st->limit = 0; /* memory.max = 0 is a real limit */
    st->ratio = INFINITY;
    st->level = GOV_LEVEL_CRITICAL;
    st->buffer_bytes = 3u << 20;
    st->buffer_objects = 3;
    st->policy_generation = 4;
    st->policy_loaded_wall_ms = 1795693861374;
    st->counters.actions[GOV_LEVEL_HIGH] = 5;
    st->counters.released_bytes[GOV_LEVEL_HIGH] = 40u << 20;
    st->counters.actions[GOV_LEVEL_CRITICAL] = 1;
    st->counters.refused = 9;
    st->counters.reloads_ok = 3;
    st->counters.reloads_failed = 1;
    st->counters.wake_timer = 1000;
    gov_policy_sha256_hex("", 0, st->policy_sha256);
    snprintf(st->policy_source, sizeof(st->policy_source), "/etc/g\"x");
    app->version = "0.1\"x\\y\nz";
    app->process_start_s = 1795693800.25;
    hs->counter = 12;
    hs->requests[ROUTE_COUNTER][0] = 12;           /* 200 */
    for (unsigned i = 0; i < HTTP_NCODES; i++)
        if (http_code_at(i) == 404)
            hs->requests[ROUTE_NOT_FOUND][i] = 3;
    hs->requests[ROUTE_COUNTER][HTTP_NCODES - 1] = 1; /* any other code */
}

static bool has_line(const char *doc, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = doc; (p = strstr(p, line)); p++)
        if ((p == doc || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void renders_a_valid_document(void **state)
{
    struct gov_status *st = malloc(sizeof(*st));
    struct app_info app;
    struct http_stats hs;
    struct counter_status cs = {.kind = COUNTER_MEMORY, .up = true};
    size_t len = 0;
    char *doc, *copy, *line, *save = NULL;
    char family[128] = "", helped[128] = "", seen[96][128];
    bool histogram = false;
    int families = 0;
    (void)state;

    assert_non_null(st);
    fill(st, &app, &hs);
    doc = metrics_render(st, &app, &hs, &cs, &len);
    assert_non_null(doc);
    assert_int_equal(len, strlen(doc));
    assert_true(len > 0 && doc[len - 1] == '\n');

    assert_true(has_line(doc, "governor_build_info{version=\"0.1\\\"x\\\\y\\nz\"} 1"));
    assert_true(has_line(doc, "governor_memory_signal_ratio +Inf"));
    assert_true(has_line(doc, "governor_memory_signal_bytes 293601280"));
    /* the old names, kept one release */
    assert_true(has_line(doc, "governor_memory_usage_ratio +Inf"));
    assert_true(has_line(doc, "governor_memory_usage_bytes 293601280"));
    assert_true(has_line(doc, "governor_policy_info{sha256=\"e3b0c44298fc1c149afbf4c8996fb92427ae"
                              "41e4649b934ca495991b7852b855\",source=\"/etc/g\\\"x\"} 1"));
    assert_true(has_line(doc, "process_start_time_seconds 1795693800.25"));
    assert_non_null(strstr(doc, "\nprocess_cpu_seconds_total "));
    assert_non_null(strstr(doc, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(doc, "\nprocess_virtual_memory_bytes "));
    assert_non_null(strstr(doc, "\nprocess_open_fds "));
    assert_non_null(strstr(doc, "\nprocess_max_fds "));
    assert_true(has_line(doc, "governor_memory_limit_bytes 0"));
    assert_true(has_line(doc, "governor_level{level=\"critical\"} 1"));
    assert_true(has_line(doc, "governor_level{level=\"normal\"} 0"));
    assert_true(has_line(doc, "governor_shrinks_total{level=\"high\"} 5"));
    assert_true(has_line(doc, "governor_released_bytes_total{level=\"high\"} 41943040"));
    assert_true(has_line(doc, "governor_refused_allocations_total 9"));
    assert_true(has_line(doc, "governor_policy_generation 4"));
    assert_true(has_line(doc, "governor_policy_reloads_total{result=\"failure\"} 1"));
    assert_true(has_line(doc, "governor_policy_loaded_timestamp_seconds 1795693861.374"));
    assert_true(has_line(doc, "governor_memory_pressure_stall_seconds_total{kind=\"some\"} 1.5"));
    assert_true(has_line(doc, "governor_memory_oom_kills_total 2"));
    assert_true(has_line(doc, "governor_memory_events_total{event=\"max\"} 7"));
    assert_true(has_line(doc, "governor_process_start_time_seconds 1795693800.25"));
    assert_true(has_line(doc, "governor_visits_total 12"));
    assert_true(has_line(doc, "governor_http_requests_total{path=\"/counter\",code=\"200\"} 12"));
    assert_true(has_line(doc, "governor_http_requests_total{path=\"other\",code=\"404\"} 3"));
    assert_true(has_line(doc, "governor_http_requests_total{path=\"/counter\",code=\"other\"} 1"));
    /* zero request counts are left out, the family is not */
    assert_null(strstr(doc, "path=\"/governor\""));
    /* the shrink round-trip histogram, empty without clients */
    assert_true(has_line(doc, "governor_client_shrink_round_trip_seconds_bucket{le=\"5e-05\"} 0"));
    assert_true(has_line(doc, "governor_client_shrink_round_trip_seconds_bucket{le=\"0.005\"} 0"));
    assert_true(has_line(doc, "governor_client_shrink_round_trip_seconds_bucket{le=\"+Inf\"} 0"));
    assert_true(has_line(doc, "governor_client_shrink_round_trip_seconds_count 0"));
    /* no peak: the kernel did not report one */
    assert_null(strstr(doc, "governor_memory_peak_bytes"));

    /* structure: HELP, then TYPE of the same name, then only its samples;
     * no family twice */
    copy = strdup(doc);
    assert_non_null(copy);
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (sscanf(line, "# HELP %127s", name) == 1) {
            for (int i = 0; i < families; i++)
                assert_string_not_equal(seen[i], name);
            assert_true(families < 96);
            strcpy(seen[families++], name);
            strcpy(helped, name);
        } else if (sscanf(line, "# TYPE %127s", name) == 1) {
            assert_string_equal(name, helped);
            strcpy(family, name);
            histogram = strstr(line, " histogram") != NULL;
        } else {
            assert_int_equal(strncmp(line, family, strlen(family)), 0);
            const char *rest = line + strlen(family);
            /* a histogram's samples are NAME_bucket{le=...}, NAME_sum, NAME_count */
            if (histogram) {
                if (strncmp(rest, "_bucket{le=", 11) == 0)
                    rest += 7;
                else if (strncmp(rest, "_sum", 4) == 0 || strncmp(rest, "_count", 6) == 0)
                    rest += rest[1] == 's' ? 4 : 6;
                else
                    fail_msg("histogram sample without its suffix: %s", line);
            }
            char c = *rest;
            assert_true(c == ' ' || c == '{');
        }
    }
    assert_true(families >= 30);
    free(copy);

    /* promtool: exit 0 only (1 = parse error, 3 = lint findings) */
    char path[] = "/tmp/governord-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, doc, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int status = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    free(doc);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_label_values),
        cmocka_unit_test(formats_numbers),
        cmocka_unit_test(parses_proc_stat_starttime),
        cmocka_unit_test(parses_proc_stat_process_figures),
        cmocka_unit_test(reads_this_process),
        cmocka_unit_test(process_start_time_is_now_for_a_fresh_process),
        cmocka_unit_test(renders_a_valid_document),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
