/* test_policy.c -- policy parsing and validation: the presets, the built-in
 * defaults, and a table of bad files with the exact error each must give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector.h"
#include "policy.h"

/* The files of these tests are governord's: the library's sections and the
 * [collector] section, which app/collector.c registers as a host section.
 * parse_string() and parse_file() parse with it, their values land in hv. */
static struct gov_policy_section collector_section;
static struct gov_policy_hosts hosts_;
static struct gov_policy_host_values hv;

static const struct gov_policy_hosts *hosts(void)
{
    collector_policy_section(NULL, &collector_section);
    hosts_ = (struct gov_policy_hosts){&collector_section, 1};
    return &hosts_;
}

/* The [collector] values of the last successful parse. */
static const struct collector_settings *collector_values(void)
{
    return (const struct collector_settings *)hv.v[0];
}

static int parse_string(const char *text, size_t len, const char *name, struct gov_policy *p,
                        struct gov_policy_errors *errs)
{
    return gov_policy_parse_string_ext(text, len, name, hosts(), p, &hv, errs);
}

static int parse_file(const char *path, struct gov_policy *p, struct gov_policy_errors *errs,
                      char **content, size_t *len)
{
    return gov_policy_parse_file(path, hosts(), p, &hv, errs, content, len);
}

static char *policy_text(const struct gov_policy *p, const struct gov_policy_host_values *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    gov_policy_write(p, hosts(), v, f);
    fclose(f);
    return buf;
}

static void presets_are_valid(void **state)
{
    static const char *presets[] = {"default.ini", "conservative.ini", "aggressive.ini"};
    (void)state;
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        char path[512];
        struct gov_policy p;
        struct gov_policy_errors errs;
        snprintf(path, sizeof(path), "%s/policies/%s", SRCDIR, presets[i]);
        if (parse_file(path, &p, &errs, NULL, NULL) != 0)
            gov_policy_errors_print(&errs, stderr);
        assert_int_equal(errs.count, 0);
        assert_true(p.target < p.soft && p.soft < p.high && p.high < p.critical);
    }
}

/* The compiled-in defaults and policies/default.ini must say the same. */
static void default_ini_equals_builtin_defaults(void **state)
{
    char path[512];
    struct gov_policy file, builtin;
    struct gov_policy_errors errs;
    char *a, *b;
    (void)state;
    snprintf(path, sizeof(path), "%s/policies/default.ini", SRCDIR);
    struct gov_policy_host_values builtin_hv;
    assert_int_equal(parse_file(path, &file, &errs, NULL, NULL), 0);
    gov_policy_defaults(&builtin);
    memcpy(builtin_hv.v[0], collector_section.defaults, collector_section.size);
    a = policy_text(&file, &hv);
    b = policy_text(&builtin, &builtin_hv);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* governord -- CMD turns the collector off unless the file sets it: the
 * [collector] section's finish callback, with a collector made for a child. */
static void collector_default_applies_only_when_enabled_is_not_set(void **state)
{
    static const struct { const char *text; bool set, when_off; } cases[] = {
        {"[governor]\nmode = enforce\n", false, false},
        {"[collector]\nblock_size = 1Mi\n", false, false},
        {"[collector]\nenabled = true\n", true, true},
        {"[collector]\nenabled = yes\n", true, true},
        {"[collector]\nenabled = false\n", true, false},
    };
    char path[512];
    struct gov_policy p;
    struct gov_policy_errors errs;
    struct collector *child = collector_new(true);
    struct gov_policy_section child_section;
    struct gov_policy_hosts child_hosts = {&child_section, 1};
    (void)state;
    assert_non_null(child);
    collector_policy_section(child, &child_section);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* no child: the file's value, else the default (true) */
        assert_int_equal(parse_string(cases[i].text, strlen(cases[i].text), "t", &p, &errs), 0);
        assert_int_equal(collector_values()->enabled, cases[i].set ? cases[i].when_off : true);
        /* a child: off unless the file set it */
        assert_int_equal(gov_policy_parse_string_ext(cases[i].text, strlen(cases[i].text), "t",
                                                     &child_hosts, &p, &hv, &errs), 0);
        assert_int_equal(collector_values()->enabled, cases[i].when_off);
    }
    /* the built-in policy leaves the key out, so that a child turns it off */
    snprintf(path, sizeof(path), "%s/policies/default.ini", SRCDIR);
    assert_int_equal(parse_file(path, &p, &errs, NULL, NULL), 0);
    assert_true(collector_values()->enabled);
    assert_int_equal(gov_policy_parse_file(path, &child_hosts, &p, &hv, &errs, NULL, NULL), 0);
    assert_false(collector_values()->enabled);
    collector_free(child);
}

/* Without host sections the library knows only its own three. */
static void library_alone_knows_three_sections(void **state)
{
    static const char text[] = "[collector]\nenabled = true\n";
    struct gov_policy p;
    struct gov_policy_errors errs;
    char line[256];
    (void)state;
    assert_int_equal(gov_policy_parse_string(text, sizeof(text) - 1, "l.ini", &p, &errs), -1);
    gov_policy_error_line(&errs, 0, line, sizeof(line));
    assert_string_equal(line,
                        "l.ini:1: [collector]: unknown section (expected governor, memory or "
                        "thresholds)");
}

static void parses_every_key_and_format(void **state)
{
    static const char text[] =
        "\xEF\xBB\xBF; a comment\n"
        "# another\n"
        "[governor]\n"
        "mode = observe\n"
        "  interval_ms = 250   \n"
        "cooldown_ms=0\n"
        "\n"
        "[ memory ]\n"
        "limit = 1.5Gi   ; inline comment\n"
        "signal = current # inline hash comment\n"
        "[thresholds]\n"
        "critical = 100%\n"
        "target = 0.5\n"
        "soft = 60%\n"
        "high = 0.8\n"
        "hysteresis = 0\n"
        "[collector]\n"
        "enabled = no\n"
        "block_size = 500M\n"
        "interval_ms = 1\n"
        "floor = 128Mi\r\n";
    struct gov_policy p;
    struct gov_policy_errors errs;
    (void)state;
    if (parse_string(text, sizeof(text) - 1, "t.ini", &p, &errs) != 0)
        gov_policy_errors_print(&errs, stderr);
    assert_int_equal(errs.count, 0);
    assert_int_equal(p.mode, GOV_MODE_OBSERVE);
    assert_int_equal(p.interval_ms, 250);
    assert_int_equal(p.cooldown_ms, 0);
    assert_int_equal(p.limit, 3ull << 29);
    assert_int_equal(p.signal, GOV_SIGNAL_CURRENT);
    assert_true(p.critical == 1.0 && p.target == 0.5 && p.soft == 0.6 && p.high == 0.8);
    assert_true(p.hysteresis == 0.0);
    assert_false(collector_values()->enabled);
    assert_int_equal(collector_values()->block_size, 500000000);
    assert_int_equal(collector_values()->interval_ms, 1);
    assert_int_equal(collector_values()->floor, 128ull << 20);
}

static void a_file_without_settings_is_refused(void **state)
{
    static const char *texts[] = {"", "\n\n", "; only a comment\n# and another\n",
                                  "[governor]\n[memory]\n"};
    struct gov_policy p, d;
    struct gov_policy_errors errs;
    char *a, *b;
    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_int_equal(parse_string(texts[i], strlen(texts[i]), "e.ini", &p, &errs),
                         -1);
        assert_int_equal(errs.count, 1);
        assert_int_equal(errs.e[0].line, 0);
        assert_non_null(strstr(errs.e[0].what, "no settings (empty, or only comments)"));
    }
    /* one key is enough; the rest are the defaults */
    assert_int_equal(parse_string("[governor]\nmode = enforce\n", 26, "k.ini", &p,
                                             &errs), 0);
    gov_policy_defaults(&d);
    a = policy_text(&p, &hv);
    b = policy_text(&d, &hv); /* hv: the [collector] defaults, as the file left them */
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* Each bad policy and the first error it must produce ("file:line: key: what"). */
static const struct { const char *text; const char *error; } bad[] = {
    {"[governor]\nmode = enforcing\n",
     "b.ini:2: governor.mode: 'enforcing' is not a mode (use enforce or observe)"},
    {"[governor]\ninterval_ms = 5\n", "b.ini:2: governor.interval_ms: 5 ms is out of range (10..60000)"},
    {"[governor]\ninterval_ms = 100000\n",
     "b.ini:2: governor.interval_ms: 100000 ms is out of range (10..60000)"},
    {"[governor]\ninterval_ms = -1\n",
     "b.ini:2: governor.interval_ms: '-1' is not a whole number of milliseconds"},
    {"[governor]\ninterval_ms = 1.5\n",
     "b.ini:2: governor.interval_ms: '1.5' is not a whole number of milliseconds"},
    {"[governor]\ninterval_ms = 99999999999999999999999\n",
     "b.ini:2: governor.interval_ms: '99999999999999999999999' is not a whole number of milliseconds"},
    {"[governor]\ncooldown_ms = soon\n",
     "b.ini:2: governor.cooldown_ms: 'soon' is not a whole number of milliseconds"},
    {"[governor]\ncooldown_ms = 3600001\n",
     "b.ini:2: governor.cooldown_ms: 3600001 ms is out of range (0..3600000)"},
    {"[memory]\nlimit = 512MB\n",
     "b.ini:2: memory.limit: '512MB' is not a size: unknown suffix (use Ki Mi Gi Ti or k M G T)"},
    {"[memory]\nlimit = -1Gi\n", "b.ini:2: memory.limit: '-1Gi' is not a size: negative size"},
    {"[memory]\nlimit = 1Ki\n", "b.ini:2: memory.limit: 1Ki is out of range (1Mi..4Ei)"},
    {"[memory]\nlimit = 5Ei\n", "b.ini:2: memory.limit: '5Ei' is not a size: overflow"},
    {"[memory]\nsignal = rss\n",
     "b.ini:2: memory.signal: 'rss' is not a signal (use working_set or current)"},
    {"[thresholds]\nsoft = 1.5\n", "b.ini:2: thresholds.soft: 1.5 is out of range (0.01..1)"},
    {"[thresholds]\nhigh = 0\n", "b.ini:2: thresholds.high: 0 is out of range (0.01..1)"},
    {"[thresholds]\nhigh = -0.5\n",
     "b.ini:2: thresholds.high: '-0.5' is not a fraction (like 0.85 or 85%)"},
    {"[thresholds]\nhigh = nan\n",
     "b.ini:2: thresholds.high: 'nan' is not a fraction (like 0.85 or 85%)"},
    {"[thresholds]\nhigh = inf\n",
     "b.ini:2: thresholds.high: 'inf' is not a fraction (like 0.85 or 85%)"},
    {"[thresholds]\nhigh = 0x1p-1\n",
     "b.ini:2: thresholds.high: '0x1p-1' is not a fraction (like 0.85 or 85%)"},
    {"[thresholds]\nhigh = 85%%\n",
     "b.ini:2: thresholds.high: '85%%' is not a fraction (like 0.85 or 85%)"},
    {"[thresholds]\nhigh = 0.85 0.9\n",
     "b.ini:2: thresholds.high: '0.85 0.9' is not a fraction (like 0.85 or 85%)"},
    {"[thresholds]\ncritical = 1.01\n",
     "b.ini:2: thresholds.critical: 1.01 is out of range (0.01..1)"},
    {"[thresholds]\ntarget = 1\n", "b.ini:2: thresholds.target: 1 is out of range (0.01..0.99)"},
    {"[thresholds]\nhysteresis = 0.3\n",
     "b.ini:2: thresholds.hysteresis: 0.3 is out of range (0..0.2)"},
    {"[thresholds]\nsoft = 0.9\nhigh = 0.85\n",
     "b.ini:3: thresholds.high: soft (0.9) must be below high (0.85): need 0 < target < soft < "
     "high < critical <= 1"},
    {"[thresholds]\nhigh = 0.85\nsoft = 0.85\n",
     "b.ini:3: thresholds.soft: soft (0.85) must be below high (0.85): need 0 < target < soft < "
     "high < critical <= 1"},
    {"[thresholds]\ntarget = 0.75\n",
     "b.ini:2: thresholds.target: target (0.75) must be below soft (0.7): need 0 < target < soft "
     "< high < critical <= 1"},
    {"[thresholds]\ncritical = 0.8\n",
     "b.ini:2: thresholds.critical: high (0.85) must be below critical (0.8): need 0 < target < "
     "soft < high < critical <= 1"},
    {"[thresholds]\nsoft = 0.05\ntarget=0.01\nhysteresis = 0.1\n",
     "b.ini:4: thresholds.hysteresis: hysteresis (0.1) must be smaller than soft (0.05)"},
    {"[collector]\nenabled = maybe\n",
     "b.ini:2: collector.enabled: 'maybe' is not a boolean (use true or false)"},
    {"[collector]\nblock_size = 0\n", "b.ini:2: collector.block_size: 0 is out of range (4Ki..16Gi)"},
    {"[collector]\nblock_size = 17Gi\n",
     "b.ini:2: collector.block_size: 17Gi is out of range (4Ki..16Gi)"},
    {"[collector]\nblock_size = auto\n",
     "b.ini:2: collector.block_size: 'auto' is not a size: not a number"},
    {"[collector]\ninterval_ms = 0\n",
     "b.ini:2: collector.interval_ms: 0 ms is out of range (1..3600000)"},
    {"[collector]\nfloor = lots\n", "b.ini:2: collector.floor: 'lots' is not a size: not a number"},
    {"[governor]\nmode =\n", "b.ini:2: governor.mode: empty value"},
    {"[governor]\nmode = enforce\nmode = observe\n",
     "b.ini:3: governor.mode: duplicate key (first set on line 2)"},
    {"[governor]\nspeed = fast\n", "b.ini:2: governor.speed: unknown key in [governor]"},
    {"[memory]\nmode = enforce\n", "b.ini:2: memory.mode: unknown key in [memory]"},
    {"[govenor]\nmode = enforce\n",
     "b.ini:1: [govenor]: unknown section (expected governor, memory, thresholds or collector)"},
    {"[]\n", "b.ini:1: []: unknown section (expected governor, memory, thresholds or collector)"},
    {"mode = enforce\n", "b.ini:1: mode: key outside a section"},
    {"[governor\nmode = enforce\n", "b.ini:1: section header without closing ']'"},
    {"[governor]\nmode enforce\n", "b.ini:2: expected 'key = value', '[section]' or a comment"},
    {"[governor]\n= enforce\n", "b.ini:2: missing key before '='"},
    {"[governor]\nmode: enforce\n", "b.ini:2: expected 'key = value', '[section]' or a comment"},
    {"<html><body>not a policy</body></html>\n",
     "b.ini:1: expected 'key = value', '[section]' or a comment"},
    {"{\"governor\": {\"mode\": \"enforce\"}}\n",
     "b.ini:1: expected 'key = value', '[section]' or a comment"},
};

static void rejects_bad_policies_with_exact_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gov_policy p;
        struct gov_policy_errors errs;
        char first[512];
        int r = parse_string(bad[i].text, strlen(bad[i].text), "b.ini", &p, &errs);
        if (r == 0)
            print_error("case %zu was accepted: %s\n", i, bad[i].text);
        assert_int_equal(r, -1);
        errs.count = 1; /* first error only, without the "(and N more)" */
        errs.dropped = 0;
        gov_policy_errors_summary(&errs, first, sizeof(first));
        if (strcmp(first, bad[i].error) != 0)
            print_error("case %zu: got      %s\n         expected %s\n", i, first, bad[i].error);
        assert_string_equal(first, bad[i].error);
    }
}

static void rejects_binary_data(void **state)
{
    static const char nul_in_value[] = "[governor]\nmode = enf\0rce\n";
    static const char elf[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
    struct gov_policy p;
    struct gov_policy_errors errs;
    (void)state;
    assert_int_equal(parse_string(nul_in_value, sizeof(nul_in_value) - 1, "b.ini", &p,
                                             &errs), -1);
    assert_int_equal(errs.e[0].line, 2);
    assert_string_equal(errs.e[0].what, "binary data (NUL byte) in line");
    assert_int_equal(parse_string(elf, sizeof(elf) - 1, "b.ini", &p, &errs), -1);
    assert_int_equal(errs.e[0].line, 1);
    assert_string_equal(errs.e[0].what, "binary data (NUL byte) in line");
}

static void reports_every_error_not_just_the_first(void **state)
{
    static const char text[] = "[governor]\nmode = x\ninterval_ms = y\n[memory]\nlimit = z\n"
                               "[nope]\nfoo = 1\n";
    struct gov_policy p;
    struct gov_policy_errors errs;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;
    assert_int_equal(parse_string(text, sizeof(text) - 1, "m.ini", &p, &errs), -1);
    assert_int_equal(errs.count, 4);
    f = open_memstream(&buf, &len);
    gov_policy_errors_print(&errs, f);
    fclose(f);
    assert_string_equal(buf,
                        "m.ini:2: governor.mode: 'x' is not a mode (use enforce or observe)\n"
                        "m.ini:3: governor.interval_ms: 'y' is not a whole number of milliseconds\n"
                        "m.ini:5: memory.limit: 'z' is not a size: not a number\n"
                        "m.ini:6: [nope]: unknown section (expected governor, memory, thresholds "
                        "or collector)\n");
    free(buf);
}

static void caps_the_number_of_errors(void **state)
{
    char *text = malloc(100 * 32);
    size_t n = 0;
    struct gov_policy p;
    struct gov_policy_errors errs;
    char summary[512];
    (void)state;
    assert_non_null(text);
    n += (size_t)sprintf(text + n, "[governor]\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(text + n, "bogus%d = 1\n", i);
    assert_int_equal(parse_string(text, n, "many.ini", &p, &errs), -1);
    assert_int_equal(errs.count, GOV_POLICY_MAX_ERRORS);
    assert_int_equal(errs.dropped, 100 - GOV_POLICY_MAX_ERRORS);
    gov_policy_errors_summary(&errs, summary, sizeof(summary));
    assert_string_equal(summary, "many.ini:2: governor.bogus0: unknown key in [governor] (and 99 more)");
    free(text);
}

static void rejects_over_long_lines(void **state)
{
    char text[512];
    struct gov_policy p;
    struct gov_policy_errors errs;
    (void)state;
    memset(text, 'x', sizeof(text));
    memcpy(text, "[governor]\nmode = ", 18);
    text[sizeof(text) - 1] = '\n';
    assert_int_equal(parse_string(text, sizeof(text), "long.ini", &p, &errs), -1);
    assert_int_equal(errs.e[0].line, 2);
    assert_string_equal(errs.e[0].what, "line too long (at most 198 characters)");
}

/* Files: the parser refuses what is not a readable regular file. */
/* Found by fuzz_policy: a tiny fraction was printed as "1e-29", which the
 * parser (plain decimals only) refuses; the effective policy must parse. */
static void printed_policy_parses_to_itself(void **state)
{
    static const char text[] = "[thresholds]\nhysteresis = 0.00000000000000000000000000001\n"
                               "target = 0.6000000000000001\n";
    struct gov_policy_errors errs;
    struct gov_policy p, q;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    (void)state;
    assert_int_equal(parse_string(text, sizeof(text) - 1, "t.ini", &p, &errs), 0);
    assert_non_null(f);
    gov_policy_write(&p, hosts(), &hv, f);
    fclose(f);
    assert_non_null(strstr(out, "target = 0.6000000000000001\n"));
    assert_int_equal(parse_string(out, len, "printed", &q, &errs), 0);
    assert_true(q.target == p.target && q.soft == p.soft && q.high == p.high);
    assert_true(q.hysteresis > 0 && q.hysteresis < 1e-28);
    free(out);
}

/* Found by fuzz_policy: a last line of blanks without a newline made the
 * reader look one byte past the buffer (ASan in `make test-asan`). */
static void blank_last_line_stays_in_the_buffer(void **state)
{
    static const char text[] = "[governor]\nmode = observe\n   \t";
    struct gov_policy_errors errs;
    struct gov_policy p;
    char *exact = malloc(sizeof(text) - 1);
    (void)state;
    assert_non_null(exact);
    memcpy(exact, text, sizeof(text) - 1); /* no NUL after it */
    assert_int_equal(parse_string(exact, sizeof(text) - 1, "t.ini", &p, &errs), 0);
    assert_int_equal(p.mode, GOV_MODE_OBSERVE);
    memcpy(exact, "[governor]\n   \t", 15); /* no key at all: refused, still in bounds */
    assert_int_equal(parse_string(exact, 15, "t.ini", &p, &errs), -1);
    assert_non_null(strstr(errs.e[0].what, "no settings"));
    free(exact);
}

static void rejects_bad_files(void **state)
{
    char dir[] = "/tmp/test_policy.XXXXXX", path[600], loop_a[600], loop_b[600];
    struct gov_policy p;
    struct gov_policy_errors errs;
    FILE *f;
    char *content = NULL;
    size_t len = 0;
    (void)state;
    assert_non_null(mkdtemp(dir));

    /* a directory */
    assert_int_equal(parse_file(dir, &p, &errs, NULL, NULL), -1);
    assert_string_equal(errs.e[0].what, "is a directory, not a policy file");
    /* missing */
    snprintf(path, sizeof(path), "%s/missing.ini", dir);
    assert_int_equal(parse_file(path, &p, &errs, NULL, NULL), -1);
    assert_string_equal(errs.e[0].what, "cannot open: No such file or directory");
    /* a symlink loop */
    snprintf(loop_a, sizeof(loop_a), "%s/a", dir);
    snprintf(loop_b, sizeof(loop_b), "%s/b", dir);
    assert_int_equal(symlink(loop_b, loop_a), 0);
    assert_int_equal(symlink(loop_a, loop_b), 0);
    assert_int_equal(parse_file(loop_a, &p, &errs, NULL, NULL), -1);
    assert_string_equal(errs.e[0].what, "cannot open: Too many levels of symbolic links");
    /* a FIFO is not a regular file (and must not block) */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(parse_file(path, &p, &errs, NULL, NULL), -1);
    assert_string_equal(errs.e[0].what, "is not a regular file");
    unlink(path);
    /* too large: 1 MiB + 1 of comments */
    snprintf(path, sizeof(path), "%s/huge.ini", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (unsigned i = 0; i <= GOV_POLICY_MAX_FILE / 8; i++)
        fputs("; 45678\n", f);
    fclose(f);
    assert_int_equal(parse_file(path, &p, &errs, NULL, NULL), -1);
    assert_string_equal(errs.e[0].what, "file larger than 1048576 bytes");
    unlink(path);
    /* a good file, with its content handed back */
    snprintf(path, sizeof(path), "%s/ok.ini", dir);
    f = fopen(path, "w");
    fputs("[governor]\nmode = observe\n", f);
    fclose(f);
    assert_int_equal(parse_file(path, &p, &errs, &content, &len), 0);
    assert_int_equal(p.mode, GOV_MODE_OBSERVE);
    assert_int_equal(len, 26);
    assert_memory_equal(content, "[governor]\nmode = observe\n", 26);
    free(content);
    unlink(path);
    unlink(loop_a);
    unlink(loop_b);
    rmdir(dir);
}

/* FIPS 180-2's test vectors, and the empty text (a policy of defaults). */
static void hashes_with_sha256(void **state)
{
    char hex[GOV_POLICY_SHA256_HEX];
    static const char two_blocks[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    (void)state;
    gov_policy_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    gov_policy_sha256_hex(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    gov_policy_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* bytes, not a C string: a NUL inside counts */
    gov_policy_sha256_hex("a\0b", 3, hex);
    assert_string_not_equal(hex, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(presets_are_valid),
        cmocka_unit_test(default_ini_equals_builtin_defaults),
        cmocka_unit_test(collector_default_applies_only_when_enabled_is_not_set),
        cmocka_unit_test(library_alone_knows_three_sections),
        cmocka_unit_test(parses_every_key_and_format),
        cmocka_unit_test(a_file_without_settings_is_refused),
        cmocka_unit_test(rejects_bad_policies_with_exact_errors),
        cmocka_unit_test(rejects_binary_data),
        cmocka_unit_test(reports_every_error_not_just_the_first),
        cmocka_unit_test(caps_the_number_of_errors),
        cmocka_unit_test(rejects_over_long_lines),
        cmocka_unit_test(rejects_bad_files),
        cmocka_unit_test(blank_last_line_stays_in_the_buffer),
        cmocka_unit_test(printed_policy_parses_to_itself),
        cmocka_unit_test(hashes_with_sha256),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
