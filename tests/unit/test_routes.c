/* test_routes.c -- the routing table and method checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_match_exactly),
        cmocka_unit_test(only_get_and_head),
        cmocka_unit_test(status_code_slots),
    };
    return cmocka_run_group_tests_name("routes", tests, NULL, NULL);
}
