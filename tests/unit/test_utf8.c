/* test_utf8.c -- UTF-8 repair and boundary-aware truncation: a table of the
 * edge cases (overlongs, surrogates, truncated sequences, code points above
 * U+10FFFF, stray continuation bytes) and what each must become. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "log.h"
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
    /* "é€😀" is 2 + 3 + 4 bytes */
    static const char mixed[] = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    char buf[8];
    (void)state;
    assert_int_equal(gov_utf8_sanitize_into(buf, sizeof(buf), mixed, 9), 9);
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

static void trim_cut_drops_only_a_character_cut_at_the_end(void **state)
{
    static const struct {
        const char *in, *out;
    } trims[] = {
        {"", ""},
        {"abc", "abc"},
        {"ab\xC3\xA9", "ab\xC3\xA9"},
        {"ab\xC3", "ab"},
        {"ab\xE2\x82", "ab"},
        {"ab\xE2", "ab"},
        {"\xF0\x9F\x98", ""},
        {"ab\xFF", "ab\xFF"},          /* ill-formed, not cut: stays */
        {"ab\xE0\x80", "ab\xE0\x80"},  /* overlong start, not a cut */
        {"ab\xED\xA0", "ab\xED\xA0"},  /* surrogate start, not a cut */
        {"\xC3x\xC3", "\xC3x"},        /* only the end */
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(trims); i++) {
        char buf[16];
        gov_strlcpy(buf, trims[i].in, sizeof(buf));
        assert_int_equal(gov_utf8_trim_cut(buf), strlen(trims[i].out));
        assert_string_equal(buf, trims[i].out);
    }
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

/* Runs one gov_log() call with stderr in a temporary file; returns the line
 * parsed (jansson's parser refuses invalid UTF-8 as well). */
static json_t *logged_line(void (*call)(void))
{
    char path[] = "/tmp/test_utf8_log.XXXXXX", buf[4096];
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;
    json_error_t jerr;
    json_t *line;

    assert_true(fd >= 0 && saved >= 0);
    unlink(path);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    call();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_true(gov_utf8_valid(buf, (size_t)n));
    line = json_loads(buf, 0, &jerr);
    if (!line)
        print_error("%s: %s\n", jerr.text, buf);
    assert_non_null(line);
    return line;
}

static void log_with_bad_bytes(void)
{
    json_t *kept = json_string("kept");
    gov_log(LOG_ERR, "reload_failed", "msg \xff",
            "{s:s, s:I, s:i, s:b, s:f, s:o, s:O, s:s?, s:n, s:s}", "path", "/etc/p\xc3.ini",
            "big", (json_int_t)1 << 40, "small", -3, "flag", 1,
            "ratio", 0.5, "array", json_pack("[s]", "x"), "ref", kept, "missing", NULL,
            "nothing", "k\xe2y", "plain");
    json_decref(kept);
}

static void log_valid(void)
{
    gov_log(LOG_ERR, "reload", "msg", "{s:s, s:I}", "path", "/etc/p.ini", "n", (json_int_t)7);
}

static void log_lines_keep_their_fields(void **state)
{
    json_t *l;
    (void)state;
    gov_log_setup(GOV_LOG_JSON, LOG_DEBUG);
    l = logged_line(log_with_bad_bytes);
    assert_string_equal(json_string_value(json_object_get(l, "msg")), "msg " R);
    assert_string_equal(json_string_value(json_object_get(l, "path")), "/etc/p" R ".ini");
    assert_int_equal(json_integer_value(json_object_get(l, "big")), (json_int_t)1 << 40);
    assert_int_equal(json_integer_value(json_object_get(l, "small")), -3);
    assert_true(json_is_true(json_object_get(l, "flag")));
    assert_true(json_real_value(json_object_get(l, "ratio")) == 0.5);
    assert_string_equal(json_string_value(json_array_get(json_object_get(l, "array"), 0)), "x");
    assert_string_equal(json_string_value(json_object_get(l, "ref")), "kept");
    assert_true(json_is_null(json_object_get(l, "missing")));
    assert_true(json_is_null(json_object_get(l, "nothing")));
    /* a key with bad bytes is repaired too */
    assert_string_equal(json_string_value(json_object_get(l, "k" R "y")), "plain");
    assert_null(json_object_get(l, "log_error"));
    json_decref(l);
    l = logged_line(log_valid);
    assert_string_equal(json_string_value(json_object_get(l, "path")), "/etc/p.ini");
    assert_int_equal(json_integer_value(json_object_get(l, "n")), 7);
    json_decref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sanitizes_the_table),
        cmocka_unit_test(sanitize_into_reports_the_size_and_cuts_between_characters),
        cmocka_unit_test(cut_never_splits_a_character),
        cmocka_unit_test(trim_cut_drops_only_a_character_cut_at_the_end),
        cmocka_unit_test(strlcpy_cuts_between_characters),
        cmocka_unit_test(log_lines_keep_their_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
