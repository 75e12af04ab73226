/* trimproto.c -- the trim protocol's pure parts (see trimproto.h).
 *
 * A client's line is parsed with jansson, which also refuses ill-formed
 * UTF-8, a "\u0000" escape, duplicate keys and integers that do not fit in
 * 64 bits; everything else a message must be is checked here: an object
 * with a known "op", exactly that op's fields, each a whole number from 0
 * to 2^53 - 1 (seq from 1), a name of 1 to 64 bytes without control
 * characters.  Unknown fields are errors too, so that a misspelt field is
 * reported at once rather than silently ignored.
 *
 * The shrink distribution is "largest holder first": the clients holding
 * the most are asked first, each for as much as is still wanted.  It asks
 * as few clients as possible (every message costs a round trip to another
 * process) and leaves small clients alone while big ones can give. */
#include "trimproto.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *const op_names[] = {
    [TRIM_OP_REGISTER] = "register",
    [TRIM_OP_COUNT] = "count",
    [TRIM_OP_ADMIT] = "admit",
    [TRIM_OP_RELEASED] = "released",
};

const char *trim_op_name(enum trim_op op)
{
    return (unsigned)op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : "?";
}

/* The fields each op has, besides "op"; all are required. */
#define F_NAME 1u
#define F_BYTES 2u
#define F_OBJECTS 4u
#define F_SEQ 8u
static const unsigned op_fields[] = {
    [TRIM_OP_REGISTER] = F_NAME | F_BYTES | F_OBJECTS,
    [TRIM_OP_COUNT] = F_BYTES | F_OBJECTS,
    [TRIM_OP_ADMIT] = F_BYTES,
    [TRIM_OP_RELEASED] = F_SEQ | F_BYTES,
};

static int number_field(json_t *v, const char *key, uint64_t min, uint64_t *out, char *err,
                        size_t errlen)
{
    json_int_t n;
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "%s: must be a whole number", key);
        return -1;
    }
    n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > TRIM_MAX_VALUE) {
        snprintf(err, errlen, "%s: must be from %llu to %llu", key, (unsigned long long)min,
                 (unsigned long long)TRIM_MAX_VALUE);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

static int name_field(json_t *v, char *out, char *err, size_t errlen)
{
    const char *s;
    size_t len;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "name: must be a string");
        return -1;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len > TRIM_MAX_NAME) {
        snprintf(err, errlen, "name: must be 1 to %d bytes", TRIM_MAX_NAME);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "name: control characters are not allowed");
            return -1;
        }
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int parse_object(json_t *root, struct trim_msg *m, char *err, size_t errlen)
{
    json_t *opv = json_object_get(root, "op"), *v;
    const char *key;
    unsigned have = 0, want;
    size_t i;

    if (!json_is_string(opv)) {
        snprintf(err, errlen, "op: missing or not a string");
        return -1;
    }
    for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (strcmp(json_string_value(opv), op_names[i]) == 0)
            break;
    if (i == sizeof(op_names) / sizeof(op_names[0])) {
        snprintf(err, errlen, "op: unknown (expected register, count, admit or released)");
        return -1;
    }
    m->op = (enum trim_op)i;
    want = op_fields[m->op];
    json_object_foreach(root, key, v) {
        int r;
        unsigned f;
        if (strcmp(key, "op") == 0)
            continue;
        if (strcmp(key, "name") == 0)
            f = F_NAME;
        else if (strcmp(key, "bytes") == 0)
            f = F_BYTES;
        else if (strcmp(key, "objects") == 0)
            f = F_OBJECTS;
        else if (strcmp(key, "seq") == 0)
            f = F_SEQ;
        else
            f = 0;
        if (!(want & f)) {
            /* the key is the client's text: not echoed back */
            snprintf(err, errlen, "%s: unexpected field", trim_op_name(m->op));
            return -1;
        }
        switch (f) {
        case F_NAME:
            r = name_field(v, m->name, err, errlen);
            break;
        case F_BYTES:
            r = number_field(v, "bytes", 0, &m->bytes, err, errlen);
            break;
        case F_OBJECTS:
            r = number_field(v, "objects", 0, &m->objects, err, errlen);
            break;
        default:
            r = number_field(v, "seq", 1, &m->seq, err, errlen);
            break;
        }
        if (r < 0)
            return -1;
        have |= f;
    }
    if (have != want) {
        unsigned missing = want & ~have;
        snprintf(err, errlen, "%s: missing field %s", trim_op_name(m->op),
                 missing & F_NAME      ? "name"
                 : missing & F_BYTES   ? "bytes"
                 : missing & F_OBJECTS ? "objects"
                                       : "seq");
        return -1;
    }
    return 0;
}

int trim_parse_line(const char *line, size_t len, struct trim_msg *m, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    int r;

    memset(m, 0, sizeof(*m));
    if (len > TRIM_MAX_LINE) {
        snprintf(err, errlen, "line too long (at most %d bytes)", TRIM_MAX_LINE);
        return -1;
    }
    if (len > 0 && memchr(line, '\0', len)) {
        snprintf(err, errlen, "NUL byte in line");
        return -1;
    }
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* jansson's text may quote the client's bytes: only its position */
        snprintf(err, errlen, "not valid JSON (UTF-8) at byte %d", jerr.position);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        json_decref(root);
        return -1;
    }
    r = parse_object(root, m, err, errlen);
    json_decref(root);
    return r;
}

/* ---- lines to a client ---------------------------------------------------------- */

/* Dumps j (consumed) compactly with a '\n' into buf. */
static size_t dump_line(json_t *j, char *buf, size_t len)
{
    size_t n;
    if (!j)
        return 0;
    n = json_dumpb(j, buf, len, JSON_COMPACT);
    json_decref(j);
    if (n == 0 || n + 1 > len)
        return 0;
    buf[n] = '\n';
    return n + 1;
}

size_t trim_fmt_registered(char *buf, size_t len, uint64_t id, const char *level,
                           uint64_t limit_bytes, uint64_t usage_bytes)
{
    return dump_line(json_pack("{s:s, s:I, s:s, s:I, s:I}", "op", "registered", "id",
                               (json_int_t)id, "level", level, "limit_bytes",
                               (json_int_t)limit_bytes, "usage_bytes", (json_int_t)usage_bytes),
                     buf, len);
}

size_t trim_fmt_admit(char *buf, size_t len, bool ok)
{
    return dump_line(json_pack("{s:s, s:b}", "op", "admit", "ok", ok), buf, len);
}

size_t trim_fmt_shrink(char *buf, size_t len, uint64_t seq, uint64_t bytes, const char *level,
                       const char *reason)
{
    return dump_line(json_pack("{s:s, s:I, s:I, s:s, s:s}", "op", "shrink", "seq",
                               (json_int_t)seq, "bytes", (json_int_t)bytes, "level", level,
                               "reason", reason),
                     buf, len);
}

size_t trim_fmt_level(char *buf, size_t len, const char *level)
{
    return dump_line(json_pack("{s:s, s:s}", "op", "level", "level", level), buf, len);
}

size_t trim_fmt_error(char *buf, size_t len, const char *error)
{
    return dump_line(json_pack("{s:s, s:s}", "op", "error", "error", error), buf, len);
}

/* ---- spreading a shrink --------------------------------------------------------- */

/* True when candidate a is asked before b. */
static bool before(const struct trim_candidate *a, const struct trim_candidate *b)
{
    return a->bytes > b->bytes || (a->bytes == b->bytes && a->id < b->id);
}

uint64_t trim_distribute(const struct trim_candidate *c, size_t n, uint64_t want, uint64_t *ask)
{
    uint64_t asked = 0;
    for (size_t i = 0; i < n; i++)
        ask[i] = 0;
    /* n is at most TRIM_MAX_CLIENTS: pick the next largest each round */
    while (asked < want) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (ask[i] == 0 && c[i].bytes > 0 && (best == n || before(&c[i], &c[best])))
                best = i;
        if (best == n)
            break;
        ask[best] = c[best].bytes < want - asked ? c[best].bytes : want - asked;
        asked += ask[best];
    }
    return asked;
}

/* ---- shrink round trips ------------------------------------------------------------ */

/* From 50 us (a client answering from a hot poll loop) to client_timeout_ms's
 * default and beyond; 5 ms, the C client's goal in bench/README.md, is a bound. */
const uint64_t trim_rtt_bounds_us[TRIM_RTT_BOUNDS] = {
    50,    100,    250,    500,    1000,   2000,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
};

unsigned trim_rtt_bucket(uint64_t us)
{
    unsigned i = 0;
    while (i < TRIM_RTT_BOUNDS && us > trim_rtt_bounds_us[i])
        i++;
    return i;
}
