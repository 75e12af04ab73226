/* test_duration.c -- --shutdown-delay's durations: accepted and refused forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "duration.h"

static void parses_valid_durations(void **state)
{
    static const struct { const char *text; uint64_t ms; } cases[] = {
        {"0", 0},        {"0s", 0},         {"0ms", 0},      {"2s", 2000},
        {"500ms", 500},  {"1.5s", 1500},    {"0.25s", 250},  {"1m", 60000},
        {"0.5m", 30000}, {"2000ms", 2000},  {"3600s", 3600000}, {"60m", 3600000},
        {".5s", 500},    {"1.000s", 1000},  {"007s", 7000},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 7;
        const char *why = NULL;
        int r = duration_parse_ms(cases[i].text, &v, &why);
        if (r != 0)
            print_error("'%s': %s\n", cases[i].text, why);
        assert_int_equal(r, 0);
        assert_int_equal(v, cases[i].ms);
    }
}

static void refuses_invalid_durations(void **state)
{
    static const char *const cases[] = {
        "", "2", "s", "ms", "-1s", "+1s", "2 s", " 2s", "2s ", "2h", "2S", "2sec",
        "1.5ms", "0.0001s", "3601s", "61m", "3600001ms", "99999999999999999999s",
        "1.2.3s", ".s", "0x10s", "2s500ms",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 7;
        const char *why = NULL;
        if (duration_parse_ms(cases[i], &v, &why) == 0)
            print_error("'%s' was accepted as %llu ms\n", cases[i], (unsigned long long)v);
        assert_int_equal(duration_parse_ms(cases[i], &v, &why), -1);
        assert_non_null(why);
        assert_int_equal(v, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_valid_durations),
        cmocka_unit_test(refuses_invalid_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
