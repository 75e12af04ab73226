/* test_routes.c -- the routing table and method checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "routes.h"

static void routes_match_exactly(void **state)
{
    (void)state;
    assert_int_equal(route_lookup("/"), ROUTE_INDEX);
    assert_int_equal(route_lookup("/counter"), ROUTE_COUNTER);
    assert_int_equal(route_lookup("/governor"), ROUTE_GOVERNOR);
    assert_int_equal(route_lookup("/metrics"), ROUTE_METRICS);
    assert_int_equal(route_lookup("/healthz"), ROUTE_HEALTHZ);
    assert_int_equal(route_lookup("/readyz"), ROUTE_READYZ);
    static const char *unknown[] = {"", "/counter/", "/Counter", "//counter", "/counterx",
                                    "counter", "/governor/", "/../counter", "/metrics?x"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        assert_int_equal(route_lookup(unknown[i]), ROUTE_NOT_FOUND);
    assert_int_equal(route_lookup(NULL), ROUTE_NOT_FOUND);
    for (int r = ROUTE_INDEX; r < ROUTE_COUNT; r++)
        assert_int_equal(route_lookup(route_path((enum route)r)), r);
}

static void only_get_and_head(void **state)
{
    enum route r;
    (void)state;
    assert_int_equal(route_precheck("GET", "/counter", &r), 0);
    assert_int_equal(r, ROUTE_COUNTER);
    assert_int_equal(route_precheck("HEAD", "/governor", &r), 0);
    assert_int_equal(route_precheck("POST", "/counter", &r), 405);
    assert_int_equal(route_precheck("get", "/counter", &r), 405);
    assert_int_equal(route_precheck("DELETE", "/nope", &r), 404);
    assert_int_equal(route_precheck("GET", "/nope", &r), 404);
    assert_int_equal(route_precheck(NULL, "/counter", &r), 405);
}

/* Every counted code has its own slot and reads back; anything else lands
 * in the last ("other") slot. */
static void status_code_slots(void **state)
{
    (void)state;
    for (unsigned i = 0; i < HTTP_NCODES - 1; i++) {
        assert_int_not_equal(http_code_at(i), 0);
        assert_int_equal(http_code_slot(http_code_at(i)), i);
    }
    assert_int_equal(http_code_at(HTTP_NCODES - 1), 0);
    assert_int_equal(http_code_at(HTTP_NCODES), 0);
    assert_int_equal(http_code_slot(501), HTTP_NCODES - 1);
    assert_int_equal(http_code_slot(0), HTTP_NCODES - 1);
    assert_int_equal(http_code_slot(200), 0);
}

static int verdict_of(const char *const *fields, bool http11)
{
    struct request_fields f;
    const char *why = NULL;
    int status;
    memset(&f, 0, sizeof(f));
    for (; fields[0]; fields += 2)
        request_fields_add(&f, fields[0], fields[1]);
    status = request_verdict(&f, http11, &why);
    assert_non_null(why);
    assert_true(status == 0 ? why[0] == '\0' : why[0] != '\0');
    return status;
}

/* RFC 9112: field names are tokens, values hold no control characters but
 * HTAB, one Host (required in HTTP/1.1), one framing header, chunked only. */
static void request_checks(void **state)
{
    (void)state;
    assert_int_equal(verdict_of((const char *[]){"Host", "x", NULL}, true), 0);
    assert_int_equal(verdict_of((const char *[]){"host", "", "X-A", "b\tc", NULL}, true), 0);
    assert_int_equal(verdict_of((const char *[]){NULL}, false), 0);
    assert_int_equal(verdict_of((const char *[]){NULL}, true), 400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "HOST", "y", NULL}, false), 400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "Content-Length ", "5", NULL}, true),
                     400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "X(A)", "5", NULL}, true), 400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "", "5", NULL}, true), 400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "X-A", "a\rb", NULL}, true), 400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "X-A", "a\x7f", NULL}, true), 400);
    assert_int_equal(
        verdict_of((const char *[]){"Host", "x", "Content-Length", "1", "content-length", "1", NULL},
                   true),
        400);
    assert_int_equal(verdict_of((const char *[]){"Host", "x", "Content-Length", "1",
                                                 "Transfer-Encoding", "chunked", NULL},
                                true),
                     400);
    assert_int_equal(
        verdict_of((const char *[]){"Host", "x", "Transfer-Encoding", "Chunked", NULL}, true), 0);
    assert_int_equal(
        verdict_of((const char *[]){"Host", "x", "Transfer-Encoding", "gzip", NULL}, true), 501);
    assert_int_equal(
        verdict_of((const char *[]){"Host", "x", "Transfer-Encoding", "gzip, chunked", NULL}, true),
        501);

    assert_true(request_target_ok("/counter"));
    assert_true(request_target_ok("/governor/history?since=1&x=%41%20"));
    assert_false(request_target_ok(""));
    assert_false(request_target_ok(NULL));
    assert_false(request_target_ok("/a b"));
    assert_false(request_target_ok("/a\tb"));
    assert_false(request_target_ok("/a\x7f"));
    assert_false(request_target_ok("/counter%00/x"));
    assert_false(request_target_ok("/x?a=%00"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_match_exactly),
        cmocka_unit_test(only_get_and_head),
        cmocka_unit_test(status_code_slots),
        cmocka_unit_test(request_checks),
    };
    return cmocka_run_group_tests_name("routes", tests, NULL, NULL);
}
