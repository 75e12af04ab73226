/* policy.c -- parse, validate and print governor policies.
 *
 * The file is read into memory and handed to inih line by line through our
 * own reader.  The reader does three jobs inih cannot do for us: it counts
 * lines (Debian's inih is built without line numbers in handlers), it checks
 * the shape of each line so that syntax errors are reported with their line
 * instead of inih's single "first error" number, and it refuses binary data
 * and over-long lines.  inih then splits sections, keys and values and calls
 * policy_handler(), which looks the key up in the key table below and parses
 * the value with the key's type.  The key table is the single description of
 * the format: parsing, range checks, printing and JSON rendering all walk it.
 *
 * Cross-field rules (threshold order) run after all keys are read, so that a
 * file may list keys in any order.
 *
 * A host's own sections (struct gov_policy_section, governord's [collector])
 * go through the same table code: each host key is turned into a key_def
 * whose offset lies in the host's struct instead of struct gov_policy, so
 * its values are parsed, range-checked and printed exactly like the
 * library's.  The values of one parse live in fixed slots (struct
 * gov_policy_host_values) and reach the host only when the whole policy is
 * put in force (gov_new, reload.c).
 *
 * The SHA-256 of a policy's bytes comes from nettle (Debian's libnettle8):
 * a small library that libgnutls, and so the base image, already carries,
 * where OpenSSL's libcrypto would add megabytes for one hash. */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "quantity.h"
#include "utf8.h"
#include "util.h"

enum key_type { T_MODE, T_SIGNAL, T_MS, T_SIZE, T_LIMIT, T_FRACTION, T_BOOL };

struct key_def {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset;
    double min, max; /* inclusive range for numbers (bytes for sizes) */
};

#define OFF(field) offsetof(struct gov_policy, field)

static const struct key_def keys[] = {
    {"governor", "mode", T_MODE, OFF(mode), 0, 0},
    {"governor", "interval_ms", T_MS, OFF(interval_ms), 10, 60000},
    {"governor", "cooldown_ms", T_MS, OFF(cooldown_ms), 0, 3600000},
    {"memory", "limit", T_LIMIT, OFF(limit), 1048576.0, (double)GOV_QUANTITY_MAX},
    {"memory", "signal", T_SIGNAL, OFF(signal), 0, 0},
    {"thresholds", "target", T_FRACTION, OFF(target), 0.01, 0.99},
    {"thresholds", "soft", T_FRACTION, OFF(soft), 0.01, 1.0},
    {"thresholds", "high", T_FRACTION, OFF(high), 0.01, 1.0},
    {"thresholds", "critical", T_FRACTION, OFF(critical), 0.01, 1.0},
    {"thresholds", "hysteresis", T_FRACTION, OFF(hysteresis), 0.0, 0.2},
};
#define NKEYS ARRAY_SIZE(keys)

static const char *const lib_sections[] = {"governor", "memory", "thresholds"};

/* The key_def of a host section's key i. */
static struct key_def host_key(const struct gov_policy_section *sec, unsigned i)
{
    static const enum key_type types[] = {
        [GOV_KEY_BOOL] = T_BOOL, [GOV_KEY_MS] = T_MS, [GOV_KEY_SIZE] = T_SIZE,
        [GOV_KEY_FRACTION] = T_FRACTION};
    const struct gov_policy_key *k = &sec->keys[i];
    return (struct key_def){sec->name, k->name, types[k->type], k->offset, k->min, k->max};
}

/* Bytes a value of type t takes in the host's struct. */
static size_t type_size(enum gov_key_type t)
{
    switch (t) {
    case GOV_KEY_BOOL:
        return sizeof(bool);
    case GOV_KEY_MS:
        return sizeof(uint32_t);
    case GOV_KEY_SIZE:
        return sizeof(uint64_t);
    case GOV_KEY_FRACTION:
        return sizeof(double);
    }
    return 0;
}

int gov_policy_hosts_check(const struct gov_policy_hosts *h, char *err, size_t errlen)
{
    if (!h || h->n == 0)
        return 0;
    if (h->n > GOV_POLICY_MAX_SECTIONS || !h->sections) {
        snprintf(err, errlen, "policy: at most %d host sections", GOV_POLICY_MAX_SECTIONS);
        return -1;
    }
    for (unsigned i = 0; i < h->n; i++) {
        const struct gov_policy_section *sec = &h->sections[i];
        if (!sec->name || !*sec->name || strlen(sec->name) >= 32 || strchr(sec->name, ']')) {
            snprintf(err, errlen, "policy: host section %u has no usable name", i);
            return -1;
        }
        for (size_t j = 0; j < ARRAY_SIZE(lib_sections); j++)
            if (strcmp(lib_sections[j], sec->name) == 0) {
                snprintf(err, errlen, "policy: [%s] is a section of the library", sec->name);
                return -1;
            }
        for (unsigned j = 0; j < i; j++)
            if (strcmp(h->sections[j].name, sec->name) == 0) {
                snprintf(err, errlen, "policy: [%s] registered twice", sec->name);
                return -1;
            }
        if (sec->size > GOV_POLICY_SECTION_MAX || !sec->defaults || !sec->keys ||
            sec->nkeys == 0 || sec->nkeys > GOV_POLICY_MAX_SECTION_KEYS) {
            snprintf(err, errlen,
                     "policy: [%s]: needs defaults and 1 to %d keys in at most %d bytes",
                     sec->name, GOV_POLICY_MAX_SECTION_KEYS, GOV_POLICY_SECTION_MAX);
            return -1;
        }
        for (unsigned j = 0; j < sec->nkeys; j++) {
            const struct gov_policy_key *k = &sec->keys[j];
            size_t sz = (unsigned)k->type <= GOV_KEY_FRACTION ? type_size(k->type) : 0;
            if (!k->name || !*k->name || strlen(k->name) >= 32 || sz == 0 ||
                k->offset + sz > sec->size || k->offset % sz != 0) {
                snprintf(err, errlen, "policy: [%s]: key %u is not usable", sec->name, j);
                return -1;
            }
        }
    }
    return 0;
}

const char *gov_mode_name(enum gov_mode m)
{
    return m == GOV_MODE_OBSERVE ? "observe" : "enforce";
}

const char *gov_signal_name(enum gov_signal s)
{
    return s == GOV_SIGNAL_CURRENT ? "current" : "working_set";
}

void gov_policy_defaults(struct gov_policy *p)
{
    *p = (struct gov_policy){
        .mode = GOV_MODE_ENFORCE,
        .interval_ms = 100,
        .cooldown_ms = 1000,
        .limit = 0,
        .signal = GOV_SIGNAL_WORKING_SET,
        .target = 0.60,
        .soft = 0.70,
        .high = 0.85,
        .critical = 0.95,
        .hysteresis = 0.05,
    };
}

/* ---- errors ------------------------------------------------------------ */

static void add_error(struct gov_policy_errors *errs, int line, const char *key, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static void add_error(struct gov_policy_errors *errs, int line, const char *key, const char *fmt,
                      ...)
{
    va_list ap;
    struct gov_policy_error *e;
    char raw[sizeof(e->what)];

    if (errs->count >= GOV_POLICY_MAX_ERRORS) {
        errs->dropped++;
        return;
    }
    e = &errs->e[errs->count++];
    e->line = line;
    /* keys and messages quote the file's bytes: made valid UTF-8 here, once,
     * for /governor, the log and --check-policy alike */
    key = key ? key : "";
    gov_utf8_sanitize_into(e->key, sizeof(e->key), key, strlen(key));
    va_start(ap, fmt);
    /* the analyzer loses va_start across the early return above */
    vsnprintf(raw, sizeof(raw), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    gov_utf8_trim_cut(raw);
    gov_utf8_sanitize_into(e->what, sizeof(e->what), raw, strlen(raw));
}

static void format_error(const struct gov_policy_errors *errs, const struct gov_policy_error *e,
                         char *buf, size_t len)
{
    char where[300];
    if (e->line > 0)
        snprintf(where, sizeof(where), "%s:%d", errs->file, e->line);
    else
        snprintf(where, sizeof(where), "%s", errs->file);
    if (e->key[0])
        snprintf(buf, len, "%s: %s: %s", where, e->key, e->what);
    else
        snprintf(buf, len, "%s: %s", where, e->what);
    gov_utf8_trim_cut(buf);
}

void gov_policy_error_line(const struct gov_policy_errors *errs, int i, char *buf, size_t len)
{
    if (i < 0 || i >= errs->count) {
        gov_strlcpy(buf, "", len);
        return;
    }
    format_error(errs, &errs->e[i], buf, len);
}

void gov_policy_errors_print(const struct gov_policy_errors *errs, FILE *f)
{
    char line[512];
    for (int i = 0; i < errs->count; i++) {
        format_error(errs, &errs->e[i], line, sizeof(line));
        fprintf(f, "%s\n", line);
    }
    if (errs->dropped)
        fprintf(f, "%s: %d more errors not shown\n", errs->file, errs->dropped);
}

void gov_policy_errors_summary(const struct gov_policy_errors *errs, char *buf, size_t len)
{
    char first[512];
    int more = errs->count - 1 + errs->dropped;
    if (errs->count == 0) {
        gov_strlcpy(buf, "", len);
        return;
    }
    format_error(errs, &errs->e[0], first, sizeof(first));
    if (more > 0)
        snprintf(buf, len, "%s (and %d more)", first, more);
    else
        snprintf(buf, len, "%s", first);
    gov_utf8_trim_cut(buf);
}

/* ---- value parsers ------------------------------------------------------ */

static bool parse_uint(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return true;
}

static bool parse_fraction(const char *v, double *out)
{
    char *end;
    double d;
    size_t n = strlen(v);
    bool percent = n > 0 && v[n - 1] == '%';

    /* plain decimals only: strtod would also take "0x1p-1", "1e-1", "inf" */
    for (size_t i = 0; i < n - (percent ? 1 : 0); i++)
        if (!((v[i] >= '0' && v[i] <= '9') || v[i] == '.'))
            return false;
    if (!n || (percent && n == 1))
        return false;
    errno = 0;
    d = strtod(v, &end);
    if (errno || end == v || !isfinite(d))
        return false;
    if (percent ? (end != v + n - 1) : (*end != '\0'))
        return false;
    *out = percent ? d / 100.0 : d;
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Parses value v for key k into the struct at base (struct gov_policy, or a
 * host section's); on failure adds an error. */
static void parse_value(const struct key_def *k, const char *v, void *base, int line,
                        const char *qname, struct gov_policy_errors *errs)
{
    void *field = (char *)base + k->offset; /* the member of type k->type */
    const char *why = NULL;
    uint64_t u;
    double d;
    bool b;

    switch (k->type) {
    case T_MODE:
        if (strcmp(v, "enforce") == 0)
            *(enum gov_mode *)field = GOV_MODE_ENFORCE;
        else if (strcmp(v, "observe") == 0)
            *(enum gov_mode *)field = GOV_MODE_OBSERVE;
        else
            add_error(errs, line, qname, "'%s' is not a mode (use enforce or observe)", v);
        return;
    case T_SIGNAL:
        if (strcmp(v, "working_set") == 0)
            *(enum gov_signal *)field = GOV_SIGNAL_WORKING_SET;
        else if (strcmp(v, "current") == 0)
            *(enum gov_signal *)field = GOV_SIGNAL_CURRENT;
        else
            add_error(errs, line, qname, "'%s' is not a signal (use working_set or current)", v);
        return;
    case T_BOOL:
        if (parse_bool(v, &b))
            *(bool *)field = b;
        else
            add_error(errs, line, qname, "'%s' is not a boolean (use true or false)", v);
        return;
    case T_MS:
        if (!parse_uint(v, &u)) {
            add_error(errs, line, qname, "'%s' is not a whole number of milliseconds", v);
            return;
        }
        if ((double)u < k->min || (double)u > k->max) {
            add_error(errs, line, qname, "%s ms is out of range (%.0f..%.0f)", v, k->min, k->max);
            return;
        }
        *(uint32_t *)field = (uint32_t)u;
        return;
    case T_LIMIT:
        if (strcmp(v, "auto") == 0) {
            *(uint64_t *)field = 0;
            return;
        }
        /* fall through */
    case T_SIZE:
        if (gov_quantity_parse(v, &u, &why) < 0) {
            add_error(errs, line, qname, "'%s' is not a size: %s", v, why);
            return;
        }
        if ((double)u < k->min || (double)u > k->max) {
            char lo[16], hi[16];
            add_error(errs, line, qname, "%s is out of range (%s..%s)", v,
                      gov_quantity_format((uint64_t)k->min, lo, sizeof(lo)),
                      gov_quantity_format((uint64_t)k->max, hi, sizeof(hi)));
            return;
        }
        *(uint64_t *)field = u;
        return;
    case T_FRACTION:
        if (!parse_fraction(v, &d)) {
            add_error(errs, line, qname, "'%s' is not a fraction (like 0.85 or 85%%)", v);
            return;
        }
        if (d < k->min || d > k->max) {
            add_error(errs, line, qname, "%s is out of range (%g..%g)", v, k->min, k->max);
            return;
        }
        *(double *)field = d;
        return;
    }
}

/* ---- the inih reader and handler ---------------------------------------- */

struct parse_ctx {
    const char *p, *end;       /* remaining input */
    int line;                  /* number of the line last handed to inih */
    struct gov_policy policy;  /* being filled */
    struct gov_policy_errors *errs;
    int key_line[NKEYS];       /* where each key was set (0 = not set) */
    bool in_unknown_section;
    const struct gov_policy_hosts *hosts; /* NULL: none */
    struct gov_policy_host_values hv;     /* host values being filled */
    int host_line[GOV_POLICY_MAX_SECTIONS][GOV_POLICY_MAX_SECTION_KEYS];
};

static unsigned nhosts(const struct gov_policy_hosts *h)
{
    return h ? h->n : 0;
}

static bool known_section(const struct parse_ctx *c, const char *s, size_t n)
{
    for (size_t i = 0; i < ARRAY_SIZE(lib_sections); i++)
        if (strlen(lib_sections[i]) == n && strncmp(lib_sections[i], s, n) == 0)
            return true;
    for (unsigned i = 0; i < nhosts(c->hosts); i++)
        if (strlen(c->hosts->sections[i].name) == n &&
            strncmp(c->hosts->sections[i].name, s, n) == 0)
            return true;
    return false;
}

/* "governor, memory, thresholds or collector": every section name. */
static void section_list(const struct gov_policy_hosts *h, char *buf, size_t len)
{
    size_t total = ARRAY_SIZE(lib_sections) + nhosts(h), used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < total && used < len; i++) {
        const char *name = i < ARRAY_SIZE(lib_sections) ? lib_sections[i]
                                                    : h->sections[i - ARRAY_SIZE(lib_sections)].name;
        int n = snprintf(buf + used, len - used, "%s%s",
                         i == 0 ? "" : i + 1 == total ? " or " : ", ", name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Checks the shape of one stripped line; returns false (after reporting) for
 * lines inih must not see.  A section header is rewritten into out (with its
 * new length in *out_len); other lines are left for the caller to copy. */
static bool check_line(struct parse_ctx *c, const char *s, size_t n, char *out, size_t out_size,
                       size_t *out_len)
{
    if (n == 0 || *s == ';' || *s == '#')
        return true;
    if (*s == '[') {
        const char *close = memchr(s, ']', n);
        const char *name;
        char label[64];
        size_t len;
        if (!close) {
            add_error(c->errs, c->line, "", "section header without closing ']'");
            return false;
        }
        name = s + 1;
        len = (size_t)(close - name);
        while (len && (*name == ' ' || *name == '\t')) {
            name++;
            len--;
        }
        while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
            len--;
        c->in_unknown_section = !known_section(c, name, len);
        if (c->in_unknown_section) {
            char list[128];
            section_list(c->hosts, list, sizeof(list));
            snprintf(label, sizeof(label), "[%.*s]", (int)MIN(len, 40), name);
            add_error(c->errs, c->line, label, "unknown section (expected %s)", list);
        }
        /* hand inih the header without inner blanks: "[ memory ]" is [memory] */
        *out_len = (size_t)snprintf(out, out_size, "[%.*s]", (int)len, name);
        return true;
    }
    if (!memchr(s, '=', n)) {
        add_error(c->errs, c->line, "", "expected 'key = value', '[section]' or a comment");
        return false;
    }
    if (*s == '=') {
        add_error(c->errs, c->line, "", "missing key before '='");
        return false;
    }
    return true;
}

/* inih reader over an in-memory buffer: one line per call. */
static char *policy_reader(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    const char *nl, *s, *e;
    size_t n;

    if (c->p >= c->end)
        return NULL;
    nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    e = nl ? nl : c->end;
    s = c->p;
    c->p = nl ? nl + 1 : c->end;
    c->line++;

    if (c->line == 1 && e - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 byte order mark */
    if (memchr(s, '\0', (size_t)(e - s))) {
        add_error(c->errs, c->line, "", "binary data (NUL byte) in line");
        str[0] = '\0';
        return str;
    }
    while (s < e && (*s == ' ' || *s == '\t'))
        s++; /* no continuation lines: indentation is just indentation */
    while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    /* inline '#' comment (inih itself handles ' ;') */
    for (const char *h = s + 1; h < e; h++) {
        if (*h == '#' && (h[-1] == ' ' || h[-1] == '\t')) {
            e = h;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            break;
        }
    }
    n = (size_t)(e - s);
    if (n + 2 > (size_t)num) {
        add_error(c->errs, c->line, "", "line too long (at most %d characters)", num - 2);
        str[0] = '\0';
        return str;
    }
    if (n > 0 && *s == '[') { /* n == 0: s may be one past the end */
        size_t len = 0;
        if (!check_line(c, s, n, str, (size_t)num - 1, &len))
            str[0] = '\0';
        else
            str[len] = '\0';
        return str;
    }
    if (!check_line(c, s, n, NULL, 0, NULL)) {
        str[0] = '\0';
        return str;
    }
    memcpy(str, s, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

static int policy_handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    char qname[48];

    if (!*section) {
        add_error(c->errs, c->line, name, "key outside a section");
        return 1;
    }
    if (c->in_unknown_section)
        return 1; /* the section header was reported already */
    snprintf(qname, sizeof(qname), "%s.%s", section, name);
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
            continue;
        if (c->key_line[i]) {
            add_error(c->errs, c->line, qname, "duplicate key (first set on line %d)",
                      c->key_line[i]);
            return 1;
        }
        c->key_line[i] = c->line;
        if (!*value) {
            add_error(c->errs, c->line, qname, "empty value");
            return 1;
        }
        parse_value(&keys[i], value, &c->policy, c->line, qname, c->errs);
        return 1;
    }
    for (unsigned s = 0; s < nhosts(c->hosts); s++) {
        const struct gov_policy_section *sec = &c->hosts->sections[s];
        if (strcmp(sec->name, section) != 0)
            continue;
        for (unsigned i = 0; i < sec->nkeys; i++) {
            struct key_def k;
            if (strcmp(sec->keys[i].name, name) != 0)
                continue;
            if (c->host_line[s][i]) {
                add_error(c->errs, c->line, qname, "duplicate key (first set on line %d)",
                          c->host_line[s][i]);
                return 1;
            }
            c->host_line[s][i] = c->line;
            if (!*value) {
                add_error(c->errs, c->line, qname, "empty value");
                return 1;
            }
            k = host_key(sec, i);
            parse_value(&k, value, c->hv.v[s], c->line, qname, c->errs);
            return 1;
        }
    }
    add_error(c->errs, c->line, qname, "unknown key in [%s]", section);
    return 1;
}

static int line_of(const struct parse_ctx *c, const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return c ? c->key_line[i] : 0;
    return 0;
}

static int validate(const struct gov_policy *p, const struct parse_ctx *c,
                    struct gov_policy_errors *errs)
{
    int before = errs->count + errs->dropped;
    struct { const char *lo_name, *hi_name; double lo, hi; } order[] = {
        {"target", "soft", p->target, p->soft},
        {"soft", "high", p->soft, p->high},
        {"high", "critical", p->high, p->critical},
    };
    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        if (order[i].lo < order[i].hi)
            continue;
        char key[48];
        int l1 = line_of(c, "thresholds", order[i].lo_name);
        int l2 = line_of(c, "thresholds", order[i].hi_name);
        snprintf(key, sizeof(key), "thresholds.%s", l2 >= l1 ? order[i].hi_name : order[i].lo_name);
        add_error(errs, MAX(l1, l2), key,
                  "%s (%g) must be below %s (%g): need 0 < target < soft < high < critical <= 1",
                  order[i].lo_name, order[i].lo, order[i].hi_name, order[i].hi);
    }
    if (p->soft - p->hysteresis <= 0) {
        add_error(errs, line_of(c, "thresholds", "hysteresis"), "thresholds.hysteresis",
                  "hysteresis (%g) must be smaller than soft (%g)", p->hysteresis, p->soft);
    }
    return errs->count + errs->dropped - before;
}

/* The host sections' own rules (finish callbacks), once the file parsed
 * without error. */
static void finish_hosts(struct parse_ctx *c)
{
    for (unsigned s = 0; s < nhosts(c->hosts); s++) {
        const struct gov_policy_section *sec = &c->hosts->sections[s];
        bool set[GOV_POLICY_MAX_SECTION_KEYS];
        unsigned key = 0;
        char what[160] = "", qname[72];
        if (!sec->finish)
            continue;
        for (unsigned i = 0; i < sec->nkeys; i++)
            set[i] = c->host_line[s][i] != 0;
        if (sec->finish(sec->ctx, c->hv.v[s], set, &key, what, sizeof(what)) == 0)
            continue;
        if (key >= sec->nkeys)
            key = 0;
        snprintf(qname, sizeof(qname), "%s.%s", sec->name, sec->keys[key].name);
        add_error(c->errs, c->host_line[s][key], qname, "%s", what[0] ? what : "rejected");
    }
}

int gov_policy_validate(const struct gov_policy *p, struct gov_policy_errors *errs)
{
    return validate(p, NULL, errs);
}

int gov_policy_parse_string(const char *text, size_t len, const char *name, struct gov_policy *out,
                            struct gov_policy_errors *errs)
{
    return gov_policy_parse_string_ext(text, len, name, NULL, out, NULL, errs);
}

int gov_policy_parse_string_ext(const char *text, size_t len, const char *name,
                                const struct gov_policy_hosts *h, struct gov_policy *out,
                                struct gov_policy_host_values *hv,
                                struct gov_policy_errors *errs)
{
    /* the context holds the host values: on the heap, not the stack */
    _cleanup_free_ struct parse_ctx *cp = calloc(1, sizeof(*cp));
    int r;

    memset(errs, 0, sizeof(*errs));
    name = name ? name : "policy";
    gov_utf8_sanitize_into(errs->file, sizeof(errs->file), name, strlen(name));
    if (!cp) {
        add_error(errs, 0, "", "out of memory");
        return -1;
    }
    cp->p = text;
    cp->end = text + len;
    cp->errs = errs;
    cp->hosts = h && h->n ? h : NULL;
    gov_policy_defaults(&cp->policy);
    for (unsigned i = 0; i < nhosts(cp->hosts); i++)
        memcpy(cp->hv.v[i], cp->hosts->sections[i].defaults, cp->hosts->sections[i].size);

    r = ini_parse_stream(policy_reader, cp, policy_handler, cp);
    if (r != 0 && errs->count == 0)
        add_error(errs, r > 0 ? r : 0, "", "syntax error");
    if (errs->count + errs->dropped == 0) {
        bool any = false;
        for (size_t i = 0; i < NKEYS; i++)
            any = any || cp->key_line[i] != 0;
        for (unsigned s = 0; s < nhosts(cp->hosts); s++)
            for (unsigned i = 0; i < cp->hosts->sections[s].nkeys; i++)
                any = any || cp->host_line[s][i] != 0;
        /* a truncated or emptied ConfigMap must not reset every setting */
        if (!any) {
            add_error(errs, 0, "",
                      "no settings (empty, or only comments): refused, so that an emptied "
                      "file cannot silently reset the policy to the defaults");
        } else {
            validate(&cp->policy, cp, errs);
            if (errs->count + errs->dropped == 0)
                finish_hosts(cp);
        }
    }
    if (errs->count + errs->dropped > 0)
        return -1;
    *out = cp->policy;
    if (hv)
        *hv = cp->hv;
    return 0;
}

int gov_policy_parse_fd(int fd, const char *name, const struct gov_policy_hosts *h,
                        struct gov_policy *out, struct gov_policy_host_values *hv,
                        struct gov_policy_errors *errs, char **content, size_t *content_len)
{
    _cleanup_free_ char *buf = NULL;
    size_t got = 0;
    int r;

    if (content)
        *content = NULL;
    if (content_len)
        *content_len = 0;
    memset(errs, 0, sizeof(*errs));
    gov_utf8_sanitize_into(errs->file, sizeof(errs->file), name, strlen(name));
    /* Read up to the limit plus one byte: a size from fstat may be stale if
     * the file is being rewritten (and a pipe has none), so the read decides. */
    buf = malloc(GOV_POLICY_MAX_FILE + 1);
    if (!buf) {
        add_error(errs, 0, "", "out of memory");
        return -1;
    }
    {
        ssize_t n = gov_read_bounded(fd, buf, GOV_POLICY_MAX_FILE + 1);
        if (n < 0 && errno == EFBIG) {
            add_error(errs, 0, "", "file larger than %u bytes", GOV_POLICY_MAX_FILE);
            return -1;
        }
        if (n < 0) {
            add_error(errs, 0, "", "read failed: %s", strerror(errno));
            return -1;
        }
        got = (size_t)n;
    }
    r = gov_policy_parse_string_ext(buf, got, name, h, out, hv, errs);
    if (content) {
        char *copy = malloc(got + 1);
        if (copy) {
            memcpy(copy, buf, got);
            copy[got] = '\0';
            *content = copy;
            if (content_len)
                *content_len = got;
        }
    }
    return r;
}

int gov_policy_parse_file(const char *path, const struct gov_policy_hosts *h,
                          struct gov_policy *out, struct gov_policy_host_values *hv,
                          struct gov_policy_errors *errs, char **content, size_t *content_len)
{
    _cleanup_close_ int fd = -1;
    struct stat st;

    if (content)
        *content = NULL;
    if (content_len)
        *content_len = 0;
    memset(errs, 0, sizeof(*errs));
    gov_utf8_sanitize_into(errs->file, sizeof(errs->file), path, strlen(path));

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        add_error(errs, 0, "", "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        add_error(errs, 0, "", "cannot stat: %s", strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        add_error(errs, 0, "", "is a directory, not a policy file");
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        add_error(errs, 0, "", "is not a regular file");
        return -1;
    }
    return gov_policy_parse_fd(fd, path, h, out, hv, errs, content, content_len);
}

/* ---- printing ------------------------------------------------------------ */

/* The shortest plain decimal that reads back as the same double: what the
 * parser accepts (no exponent), so a printed policy parses to itself.  Tiny
 * values that would need an exponent are written out in full instead. */
static void format_fraction(double d, char *buf, size_t len)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strchr(buf, 'e')) {
        size_t n;
        snprintf(buf, len, "%.*f", (int)(len > 3 ? len - 3 : 1), d);
        n = strlen(buf);
        while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
            buf[--n] = '\0';
    }
}

static void format_value(const struct key_def *k, const void *base, char *buf, size_t len)
{
    const void *field = (const char *)base + k->offset; /* the member of type k->type */
    switch (k->type) {
    case T_MODE:
        snprintf(buf, len, "%s", gov_mode_name(*(const enum gov_mode *)field));
        break;
    case T_SIGNAL:
        snprintf(buf, len, "%s", gov_signal_name(*(const enum gov_signal *)field));
        break;
    case T_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    case T_MS:
        snprintf(buf, len, "%u", *(const uint32_t *)field);
        break;
    case T_LIMIT:
        if (*(const uint64_t *)field == 0) {
            snprintf(buf, len, "auto");
            break;
        }
        /* fall through */
    case T_SIZE: {
        uint64_t v = *(const uint64_t *)field;
        static const char *units[] = {"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"};
        int shift = 60;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++, shift -= 10) {
            if (v && v % (UINT64_C(1) << shift) == 0) {
                snprintf(buf, len, "%llu%s", (unsigned long long)(v >> shift), units[i]);
                return;
            }
        }
        snprintf(buf, len, "%llu", (unsigned long long)v);
        break;
    }
    case T_FRACTION:
        format_fraction(*(const double *)field, buf, len);
        break;
    }
}

void gov_policy_foreach(const struct gov_policy *p, const struct gov_policy_hosts *h,
                        const struct gov_policy_host_values *hv,
                        void (*fn)(const char *section, const char *key, const char *value,
                                   void *ud),
                        void *ud)
{
    char value[64];
    for (size_t i = 0; i < NKEYS; i++) {
        format_value(&keys[i], p, value, sizeof(value));
        fn(keys[i].section, keys[i].name, value, ud);
    }
    for (unsigned s = 0; hv && s < nhosts(h); s++) {
        const struct gov_policy_section *sec = &h->sections[s];
        for (unsigned i = 0; i < sec->nkeys; i++) {
            struct key_def k = host_key(sec, i);
            format_value(&k, hv->v[s], value, sizeof(value));
            fn(sec->name, sec->keys[i].name, value, ud);
        }
    }
}

unsigned gov_policy_host_strings(const struct gov_policy_hosts *h,
                                 const struct gov_policy_host_values *hv,
                                 struct gov_policy_value *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned s = 0; s < nhosts(h); s++) {
        const struct gov_policy_section *sec = &h->sections[s];
        for (unsigned i = 0; i < sec->nkeys && n < max; i++, n++) {
            struct key_def k = host_key(sec, i);
            gov_strlcpy(out[n].section, sec->name, sizeof(out[n].section));
            gov_strlcpy(out[n].key, sec->keys[i].name, sizeof(out[n].key));
            format_value(&k, hv->v[s], out[n].value, sizeof(out[n].value));
        }
    }
    return n;
}

static void write_key(const char *section, const char *key, const char *value, void *ud)
{
    struct { FILE *f; const char *section; } *w = ud;
    if (!w->section || strcmp(w->section, section) != 0) {
        fprintf(w->f, "%s[%s]\n", w->section ? "\n" : "", section);
        w->section = section;
    }
    fprintf(w->f, "%s = %s\n", key, value);
}

void gov_policy_write(const struct gov_policy *p, const struct gov_policy_hosts *h,
                      const struct gov_policy_host_values *hv, FILE *f)
{
    struct { FILE *f; const char *section; } w = {f, NULL};
    gov_policy_foreach(p, h, hv, write_key, &w);
}

int gov_policy_check(const char *path, const struct gov_policy_section *sections,
                     unsigned nsections, FILE *out, FILE *errors)
{
    struct gov_policy_errors *errs = malloc(sizeof(*errs));
    struct gov_policy_host_values *hv = malloc(sizeof(*hv));
    struct gov_policy_hosts h = {sections, nsections};
    struct gov_policy p;
    char err[256];
    int r = -1;

    if (!errs || !hv) {
        fprintf(errors, "%s: out of memory\n", path);
    } else if (gov_policy_hosts_check(&h, err, sizeof(err)) < 0) {
        fprintf(errors, "%s\n", err);
    } else {
        /* the daemon's reader: the same size limit, the same messages */
        if (strcmp(path, "-") == 0)
            r = gov_policy_parse_fd(STDIN_FILENO, "<stdin>", &h, &p, hv, errs, NULL, NULL);
        else
            r = gov_policy_parse_file(path, &h, &p, hv, errs, NULL, NULL);
        if (r < 0)
            gov_policy_errors_print(errs, errors);
        else
            gov_policy_write(&p, &h, hv, out);
    }
    free(errs);
    free(hv);
    return r < 0 ? -1 : 0;
}

void gov_policy_sha256_hex(const void *data, size_t len, char hex[GOV_POLICY_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    _Static_assert(GOV_POLICY_SHA256_HEX == 2 * SHA256_DIGEST_SIZE + 1, "hex size");
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];

    sha256_init(&ctx);
    if (len)
        sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof(digest), digest);
    for (size_t i = 0; i < sizeof(digest); i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
    hex[GOV_POLICY_SHA256_HEX - 1] = '\0';
}
