/* test_trimproto.c -- the trim protocol's pure parts: every line a client
 * may send, the lines that are refused (and why), the lines sent back, the
 * largest-holder-first spread of a shrink, and --socket-group's syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "trimproto.h"
#include "trimsock.h"

static int parse(const char *line, struct trim_msg *m, char *err, size_t errlen)
{
    return trim_parse_line(line, strlen(line), m, err, errlen);
}

static void parses_every_message(void **state)
{
    struct trim_msg m;
    char err[200] = "";
    (void)state;

    assert_int_equal(parse("{\"op\":\"register\",\"name\":\"cache\",\"bytes\":10,\"objects\":2}",
                           &m, err, sizeof(err)), 0);
    assert_int_equal(m.op, TRIM_OP_REGISTER);
    assert_string_equal(m.name, "cache");
    assert_int_equal(m.bytes, 10);
    assert_int_equal(m.objects, 2);

    assert_int_equal(parse(" { \"objects\" : 0 , \"bytes\" : 9007199254740991, \"op\":\"count\"} ",
                           &m, err, sizeof(err)), 0);
    assert_int_equal(m.op, TRIM_OP_COUNT);
    assert_int_equal(m.bytes, 9007199254740991ull);

    assert_int_equal(parse("{\"op\":\"admit\",\"bytes\":0}", &m, err, sizeof(err)), 0);
    assert_int_equal(m.op, TRIM_OP_ADMIT);

    assert_int_equal(parse("{\"op\":\"released\",\"seq\":7,\"bytes\":4096}", &m, err,
                           sizeof(err)), 0);
    assert_int_equal(m.op, TRIM_OP_RELEASED);
    assert_int_equal(m.seq, 7);
    assert_int_equal(m.bytes, 4096);

    /* UTF-8 names, up to 64 bytes */
    assert_int_equal(parse("{\"op\":\"register\",\"name\":\"caf\xc3\xa9 \xe2\x82\xac\","
                           "\"bytes\":1,\"objects\":1}", &m, err, sizeof(err)), 0);
    assert_string_equal(m.name, "caf\xc3\xa9 \xe2\x82\xac");
}

static void refuses_bad_lines(void **state)
{
    static const struct { const char *line; const char *why; } cases[] = {
        {"", "not valid JSON"},
        {"hello", "not valid JSON"},
        {"{\"op\":\"count\",\"bytes\":1,\"objects\":1", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"\"register\"", "not valid JSON"},
        {"{}", "op: missing"},
        {"{\"op\":7}", "op: missing or not a string"},
        {"{\"op\":\"grow\"}", "op: unknown"},
        {"{\"op\":\"count\",\"bytes\":1}", "count: missing field objects"},
        {"{\"op\":\"admit\"}", "admit: missing field bytes"},
        {"{\"op\":\"released\",\"bytes\":1}", "released: missing field seq"},
        {"{\"op\":\"admit\",\"bytes\":-1}", "bytes: must be from 0"},
        {"{\"op\":\"admit\",\"bytes\":9007199254740992}", "bytes: must be from 0"},
        {"{\"op\":\"admit\",\"bytes\":18446744073709551616}", "not valid JSON"},
        {"{\"op\":\"admit\",\"bytes\":1e30}", "bytes: must be a whole number"},
        {"{\"op\":\"admit\",\"bytes\":1.5}", "bytes: must be a whole number"},
        {"{\"op\":\"admit\",\"bytes\":\"1\"}", "bytes: must be a whole number"},
        {"{\"op\":\"admit\",\"bytes\":true}", "bytes: must be a whole number"},
        {"{\"op\":\"admit\",\"bytes\":null}", "bytes: must be a whole number"},
        {"{\"op\":\"admit\",\"bytes\":1,\"name\":\"x\"}", "admit: unexpected field"},
        {"{\"op\":\"admit\",\"bytes\":1,\"extra\":1}", "admit: unexpected field"},
        {"{\"op\":\"admit\",\"bytes\":1,\"bytes\":2}", "not valid JSON"},
        {"{\"op\":\"released\",\"seq\":0,\"bytes\":1}", "seq: must be from 1"},
        {"{\"op\":\"register\",\"name\":\"\",\"bytes\":1,\"objects\":1}", "name: must be 1 to 64"},
        {"{\"op\":\"register\",\"name\":5,\"bytes\":1,\"objects\":1}", "name: must be a string"},
        {"{\"op\":\"register\",\"name\":\"a\\nb\",\"bytes\":1,\"objects\":1}",
         "name: control characters"},
        {"{\"op\":\"register\",\"name\":\"a\\u0000b\",\"bytes\":1,\"objects\":1}",
         "not valid JSON"},
        {"{\"op\":\"register\",\"name\":\"\xff\xfe\",\"bytes\":1,\"objects\":1}",
         "not valid JSON"},
        {"{\"op\":\"register\",\"name\":\"\xc3\",\"bytes\":1,\"objects\":1}", "not valid JSON"},
        {"{\"op\":\"register\",\"name\":"
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
         "\"bytes\":1,\"objects\":1}", "name: must be 1 to 64"},
        {"{\"op\":\"count\",\"bytes\":1,\"objects\":1} {}", "not valid JSON"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct trim_msg m;
        char err[200] = "";
        int r = parse(cases[i].line, &m, err, sizeof(err));
        if (r == 0 || !strstr(err, cases[i].why))
            print_error("'%s': %d '%s', expected '%s'\n", cases[i].line, r, err, cases[i].why);
        assert_int_equal(r, -1);
        assert_non_null(strstr(err, cases[i].why));
    }
}

static void refuses_nul_and_long_lines(void **state)
{
    static char big[TRIM_MAX_LINE + 2];
    struct trim_msg m;
    char err[200];
    (void)state;
    assert_int_equal(trim_parse_line("{\"op\":\0\"x\"}", 11, &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));
    memset(big, ' ', sizeof(big) - 1);
    memcpy(big, "{\"op\":\"admit\",\"bytes\":1}", 24);
    /* spaces after a valid object are fine up to the limit ... */
    assert_int_equal(trim_parse_line(big, TRIM_MAX_LINE, &m, err, sizeof(err)), 0);
    /* ... and not one byte past it */
    assert_int_equal(trim_parse_line(big, TRIM_MAX_LINE + 1, &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line too long"));
}

static void formats_lines(void **state)
{
    char buf[512];
    size_t n;
    (void)state;
    n = trim_fmt_registered(buf, sizeof(buf), 3, "soft", 1073741824, 5);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"op\":\"registered\",\"id\":3,\"level\":\"soft\","
                             "\"limit_bytes\":1073741824,\"usage_bytes\":5}\n");
    n = trim_fmt_admit(buf, sizeof(buf), false);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"op\":\"admit\",\"ok\":false}\n");
    n = trim_fmt_shrink(buf, sizeof(buf), 9, 4096, "high", "why \"so\"");
    buf[n] = '\0';
    assert_string_equal(buf, "{\"op\":\"shrink\",\"seq\":9,\"bytes\":4096,\"level\":\"high\","
                             "\"reason\":\"why \\\"so\\\"\"}\n");
    n = trim_fmt_level(buf, sizeof(buf), "critical");
    buf[n] = '\0';
    assert_string_equal(buf, "{\"op\":\"level\",\"level\":\"critical\"}\n");
    n = trim_fmt_error(buf, sizeof(buf), "too many clients");
    buf[n] = '\0';
    assert_string_equal(buf, "{\"op\":\"error\",\"error\":\"too many clients\"}\n");
    /* too small a buffer: nothing, never a cut line */
    assert_int_equal(trim_fmt_level(buf, 10, "critical"), 0);
}

static void spreads_largest_holder_first(void **state)
{
    struct trim_candidate c[] = {{1, 100}, {2, 300}, {3, 0}, {4, 300}, {5, 50}};
    uint64_t ask[5];
    (void)state;

    /* 250: the largest alone (ties: the lower id) */
    assert_int_equal(trim_distribute(c, 5, 250, ask), 250);
    assert_int_equal(ask[1], 250);
    assert_int_equal(ask[0] + ask[2] + ask[3] + ask[4], 0);

    /* 500: both 300s, the older first in full, then the rest */
    assert_int_equal(trim_distribute(c, 5, 500, ask), 500);
    assert_int_equal(ask[1], 300);
    assert_int_equal(ask[3], 200);
    assert_int_equal(ask[0] + ask[2] + ask[4], 0);

    /* 720: everybody but the empty one, down to 20 of the 50 */
    assert_int_equal(trim_distribute(c, 5, 720, ask), 720);
    assert_int_equal(ask[0], 100);
    assert_int_equal(ask[4], 20);
    assert_int_equal(ask[2], 0);

    /* more than all hold: each asked for all it holds */
    assert_int_equal(trim_distribute(c, 5, 10000, ask), 750);
    assert_int_equal(ask[1] + ask[3], 600);

    /* nothing wanted, nobody to ask */
    assert_int_equal(trim_distribute(c, 5, 0, ask), 0);
    assert_int_equal(ask[1], 0);
    assert_int_equal(trim_distribute(c, 0, 100, ask), 0);
}

static void parses_socket_groups(void **state)
{
    gid_t gid = 7;
    char err[200];
    (void)state;
    assert_int_equal(trimsock_parse_group("12345", &gid, err, sizeof(err)), 0);
    assert_int_equal(gid, 12345);
    assert_int_equal(trimsock_parse_group("0", &gid, err, sizeof(err)), 0);
    assert_int_equal(gid, 0);
    assert_int_equal(trimsock_parse_group("root", &gid, err, sizeof(err)), 0);
    assert_int_equal(gid, 0);
    assert_int_equal(trimsock_parse_group("no-such-group-xyz", &gid, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown group"));
    assert_int_equal(trimsock_parse_group("", &gid, err, sizeof(err)), -1);
    assert_int_equal(trimsock_parse_group("99999999999", &gid, err, sizeof(err)), -1);
}

static void buckets_round_trips(void **state)
{
    (void)state;
    for (unsigned i = 1; i < TRIM_RTT_BOUNDS; i++)
        assert_true(trim_rtt_bounds_us[i - 1] < trim_rtt_bounds_us[i]);
    assert_int_equal(trim_rtt_bucket(0), 0);
    assert_int_equal(trim_rtt_bucket(50), 0); /* le: the bound itself is inside */
    assert_int_equal(trim_rtt_bucket(51), 1);
    assert_int_equal(trim_rtt_bucket(4999), 6);
    assert_int_equal(trim_rtt_bucket(5000), 6);
    assert_int_equal(trim_rtt_bounds_us[6], 5000);
    assert_int_equal(trim_rtt_bucket(5001), 7);
    assert_int_equal(trim_rtt_bucket(10000000), TRIM_RTT_BOUNDS - 1);
    assert_int_equal(trim_rtt_bucket(10000001), TRIM_RTT_BOUNDS);
    assert_int_equal(trim_rtt_bucket(UINT64_MAX), TRIM_RTT_BOUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_every_message),
        cmocka_unit_test(refuses_bad_lines),
        cmocka_unit_test(refuses_nul_and_long_lines),
        cmocka_unit_test(formats_lines),
        cmocka_unit_test(spreads_largest_holder_first),
        cmocka_unit_test(parses_socket_groups),
        cmocka_unit_test(buckets_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
