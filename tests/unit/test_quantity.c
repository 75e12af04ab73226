/* test_quantity.c -- Kubernetes quantities: parsing and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "quantity.h"

static void parses_valid_quantities(void **state)
{
    static const struct { const char *text; uint64_t bytes; } cases[] = {
        {"0", 0},
        {"1", 1},
        {"256000000", 256000000},
        {"512Mi", 512ull << 20},
        {"1Gi", 1ull << 30},
        {"1.5Gi", 3ull << 29},
        {"0.5Ki", 512},
        {"1G", 1000000000},
        {"1k", 1000},
        {"2M", 2000000},
        {"3T", 3000000000000ull},
        {"1Ti", 1ull << 40},
        {"1Ei", 1ull << 60},
        {"4Ei", 1ull << 62},
        {"1e9", 1000000000},
        {"1E3", 1000},
        {"+5", 5},
        {".5Mi", 512ull << 10},
        {"5.", 5},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 7;
        const char *why = NULL;
        int r = gov_quantity_parse(cases[i].text, &v, &why);
        if (r != 0)
            print_error("'%s': %s\n", cases[i].text, why);
        assert_int_equal(r, 0);
        assert_int_equal(v, cases[i].bytes);
    }
}

static void rejects_invalid_quantities(void **state)
{
    static const struct { const char *text; const char *why; } cases[] = {
        {"", "empty size"},
        {"-1", "negative size"},
        {"-512Mi", "negative size"},
        {"abc", "not a number"},
        {"Mi", "not a number"},
        {"512MB", "unknown suffix (use Ki Mi Gi Ti or k M G T)"},
        {"512mi", "unknown suffix (use Ki Mi Gi Ti or k M G T)"},
        {"100m", "milli-bytes are not a size"},
        {"1.5", "not a whole number of bytes"},
        {"0.1Ki", "not a whole number of bytes"},
        {"5Ei", "overflow"},
        {"99999999999999999999", "overflow"},
        {"1e19", "overflow"},
        {"1e", "bad exponent"},
        {"12 Mi", "unknown suffix (use Ki Mi Gi Ti or k M G T)"},
        {"1Gi ", "unknown suffix (use Ki Mi Gi Ti or k M G T)"},
        {"1..5", "unknown suffix (use Ki Mi Gi Ti or k M G T)"},
        {"1234567890123456789012345678901", "too many digits"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 42;
        const char *why = NULL;
        int r = gov_quantity_parse(cases[i].text, &v, &why);
        if (r == 0)
            print_error("'%s' was accepted as %llu\n", cases[i].text, (unsigned long long)v);
        assert_int_equal(r, -1);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(v, 42); /* untouched on error */
    }
}

static void formats_compactly(void **state)
{
    static const struct { uint64_t bytes; const char *text; } cases[] = {
        {0, "0"},
        {1023, "1023"},
        {1024, "1Ki"},
        {1536, "1.5Ki"},
        {512ull << 20, "512Mi"},
        {(512ull << 20) + 1, "512Mi"},
        {3ull << 29, "1.5Gi"},
        {(1ull << 20) - 1, "1Mi"}, /* rounds up into the next unit */
        {1ull << 62, "4Ei"},
        {UINT64_MAX, "16Ei"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[16];
        assert_string_equal(gov_quantity_format(cases[i].bytes, buf, sizeof(buf)), cases[i].text);
    }
}

static void format_then_parse_round_trips_whole_units(void **state)
{
    (void)state;
    for (unsigned shift = 10; shift <= 60; shift += 10)
        for (uint64_t n = 1; n < 1024 && n <= (GOV_QUANTITY_MAX >> shift); n *= 3) {
            char buf[16];
            uint64_t v;
            gov_quantity_format(n << shift, buf, sizeof(buf));
            assert_int_equal(gov_quantity_parse(buf, &v, NULL), 0);
            assert_int_equal(v, n << shift);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_valid_quantities),
        cmocka_unit_test(rejects_invalid_quantities),
        cmocka_unit_test(formats_compactly),
        cmocka_unit_test(format_then_parse_round_trips_whole_units),
    };
    return cmocka_run_group_tests_name("quantity", tests, NULL, NULL);
}
