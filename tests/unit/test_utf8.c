/* test_utf8.c -- UTF-8 repair and boundary-aware truncation: a table of the
 * edge cases (overlongs, surrogates, truncated sequences, code points above
 * U+10FFFF, stray continuation bytes) and what each must become. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "utf8.h"
#include "util.h"

#define R GOV_UTF8_REPLACEMENT

static const struct {
    const char *what, *in, *out;
} cases[] = {
    {"empty", "", ""},
    {"ASCII", "plain text", "plain text"},
    {"2-byte", "caf\xC3\xA9", "caf\xC3\xA9"},
    {"3-byte", "\xE2\x82\xAC 5", "\xE2\x82\xAC 5"},
    {"4-byte", "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
    {"U+10FFFF, the last code point", "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},
    {"U+D7FF, before the surrogates", "\xED\x9F\xBF", "\xED\x9F\xBF"},
    {"U+E000, after the surrogates", "\xEE\x80\x80", "\xEE\x80\x80"},
    {"U+FFFD itself", R, R},
    {"lone 0xFF", "a\xFF" "b", "a" R "b"},
    {"0xFE", "\xFE", R},
    {"stray continuation byte", "\x80", R},
    {"two continuation bytes", "\x80\xBF", R R},
    {"overlong '/' (C0 AF)", "\xC0\xAF", R R},
    {"overlong NUL (C0 80)", "\xC0\x80", R R},
    {"C1 lead", "\xC1\xBF", R R},
    {"overlong 3-byte (E0 80 AF)", "\xE0\x80\xAF", R R R},
    {"overlong 4-byte (F0 80 80 AF)", "\xF0\x80\x80\xAF", R R R R},
    {"surrogate U+D800", "\xED\xA0\x80", R R R},
    {"surrogate U+DFFF", "\xED\xBF\xBF", R R R},
    {"surrogate pair", "\xED\xA0\xBD\xED\xB8\x80", R R R R R R},
    {"U+110000 (F4 90 80 80)", "\xF4\x90\x80\x80", R R R R},
    {"F5 lead (beyond U+10FFFF)", "\xF5\x80\x80\x80", R R R R},
    {"5-byte form", "\xF8\x88\x80\x80\x80", R R R R R},
    {"2-byte cut at the end", "ab\xC3", "ab" R},
    {"3-byte cut after 2 (one subpart)", "\xE2\x82", R},
    {"4-byte cut after 3 (one subpart)", "x\xF0\x9F\x98", "x" R},
    {"3-byte cut, then ASCII", "\xE2\x82" "z", R "z"},
    {"lead byte followed by a lead", "\xC3\xC3\xA9", R "\xC3\xA9"},
    {"valid, invalid, valid", "\xC3\xA9\xFF\xC3\xA9", "\xC3\xA9" R "\xC3\xA9"},
};

static void sanitizes_the_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *s = gov_utf8_sanitize(cases[i].in);
        assert_non_null(s);
        if (strcmp(s, cases[i].out) != 0)
            print_error("case '%s'\n", cases[i].what);
        assert_string_equal(s, cases[i].out);
        assert_true(gov_utf8_valid(s, strlen(s)));
        assert_int_equal(gov_utf8_valid(cases[i].in, strlen(cases[i].in)),
                         strcmp(cases[i].in, cases[i].out) == 0);
        free(s);
    }
}

static void sanitize_into_reports_the_size_and_cuts_between_characters(void **state)
{
    char buf[8];
    (void)state;
    /* "é€😀" is 2 + 3 + 4 bytes */
    assert_int_equal(gov_utf8_sanitize_into(buf, sizeof(buf), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80",
                                            9),
                     9);
    assert_string_equal(buf, "\xC3\xA9\xE2\x82\xAC"); /* the 4-byte one does not fit */
    /* a replacement takes 3 bytes, also when the bad byte is one */
    assert_int_equal(gov_utf8_sanitize_into(buf, sizeof(buf), "abcde\xFF", 6), 8);
    assert_string_equal(buf, "abcde");
    /* NUL inside a counted buffer becomes U+FFFD */
    assert_int_equal(gov_utf8_sanitize_into(buf, sizeof(buf), "a\0b", 3), 5);
    assert_string_equal(buf, "a" R "b");
    /* size only */
    assert_int_equal(gov_utf8_sanitize_into(NULL, 0, "\xFF\xFF", 2), 6);
    assert_int_equal(gov_utf8_sanitize_into(buf, 1, "abc", 3), 3);
    assert_string_equal(buf, "");
}

static void cut_never_splits_a_character(void **state)
{
    static const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"; /* a é € 😀 z */
    static const size_t expect[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11, 11, 11};
    (void)state;
    for (size_t max = 0; max < ARRAY_SIZE(expect); max++) {
        size_t n = gov_utf8_cut(s, strlen(s), max);
        if (n != expect[max])
            print_error("max %zu\n", max);
        assert_int_equal(n, expect[max]);
    }
    /* ill-formed bytes are boundaries on both sides */
    assert_int_equal(gov_utf8_cut("\xFF\xFF\xFF", 3, 2), 2);
}

static void strlcpy_cuts_between_characters(void **state)
{
    char buf[6];
    (void)state;
    /* "ééé" is 6 bytes: 5 fit, but only 4 without halving the third */
    assert_false(gov_strlcpy(buf, "\xC3\xA9\xC3\xA9\xC3\xA9", sizeof(buf)));
    assert_string_equal(buf, "\xC3\xA9\xC3\xA9");
    assert_false(gov_strlcpy(buf, "abcd\xE2\x82\xAC", sizeof(buf)));
    assert_string_equal(buf, "abcd");
    assert_true(gov_strlcpy(buf, "ab\xC3\xA9", sizeof(buf)));
    assert_string_equal(buf, "ab\xC3\xA9");
    assert_false(gov_strlcpy(buf, "abcdefgh", sizeof(buf)));
    assert_string_equal(buf, "abcde");
    /* invalid bytes are copied as they are (sanitized where they reach JSON) */
    assert_false(gov_strlcpy(buf, "\xFF\xFF\xFF\xFF\xFF\xFF", sizeof(buf)));
    assert_int_equal(strlen(buf), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sanitizes_the_table),
        cmocka_unit_test(sanitize_into_reports_the_size_and_cuts_between_characters),
        cmocka_unit_test(cut_never_splits_a_character),
        cmocka_unit_test(strlcpy_cuts_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
