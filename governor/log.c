/* log.c -- structured logging to stderr or the journal (see log.h).
 *
 * Fields are built once as a jansson object; each output form walks the same
 * object, so a field can never be in the JSON line and missing from the
 * journal.  A failure to build the fields (bad pack format, out of memory)
 * still produces a line, with the event and message, so nothing is lost
 * silently.
 *
 * Strings may carry foreign bytes (a path, a line of a rejected policy, a
 * cgroup file's contents), and jansson refuses a string that is not valid
 * UTF-8: json_pack would fail and the line would lose all its fields.  So
 * the string arguments are checked first (walk_fields() over a copy of the
 * arguments); when one is ill-formed, the same walker builds the object
 * itself with every string repaired (utf8.h), for the flat formats logging
 * uses ("{s:s, s:I, s:o ...}").  The message is repaired the same way. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "utf8.h"
#include "util.h"

/* Process-wide output settings.  Written once by gov_log_setup() before any
 * thread is started, read-only afterwards, hence no lock. */
static enum gov_log_format log_format = GOV_LOG_JSON;
static int log_max_priority = LOG_INFO;

void gov_log_setup(enum gov_log_format format, int max_priority)
{
    log_format = format;
    log_max_priority = max_priority;
}

/* True when the JOURNAL_STREAM environment variable matches stderr. */
static bool stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char *end;
    struct stat st;
    if (!e)
        return false;
    errno = 0;
    dev = strtoull(e, &end, 10); /* "DEV:INODE", both decimal */
    if (errno || end == e || *end != ':')
        return false;
    e = end + 1;
    ino = strtoull(e, &end, 10);
    if (errno || end == e || *end || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int gov_log_format_parse(const char *name, enum gov_log_format *out)
{
    if (strcmp(name, "json") == 0)
        *out = GOV_LOG_JSON;
    else if (strcmp(name, "text") == 0)
        *out = GOV_LOG_TEXT;
    else if (strcmp(name, "journal") == 0)
        *out = GOV_LOG_JOURNAL;
    else if (strcmp(name, "auto") == 0)
        *out = stderr_is_journal() ? GOV_LOG_JOURNAL : GOV_LOG_JSON;
    else
        return -1;
    return 0;
}

static const char *priority_name(int p)
{
    switch (p) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n <= 0)
            return; /* nowhere to report a failing stderr */
        buf += n;
        len -= (size_t)n;
    }
}

/* Renders a field value for text and journal output (strings unquoted). */
static char *value_text(json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(6));
}

static void emit_json(json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (!line)
        return;
    size_t n = strlen(line);
    char *with_nl = realloc(line, n + 2);
    if (!with_nl) {
        free(line);
        return;
    }
    with_nl[n] = '\n';
    with_nl[n + 1] = '\0';
    write_all(with_nl, n + 1);
    free(with_nl);
}

/* Writes s for a text line: control characters escaped, so that one event
 * stays one line. */
static void text_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else
            fputc(c, f);
    }
}

static void emit_text(const char *time, int priority, const char *event, const char *msg,
                      json_t *fields)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *key;
    json_t *v;

    if (!f)
        return;
    fprintf(f, "%s %-7s %s: ", time, priority_name(priority), event);
    text_escaped(f, msg);
    json_object_foreach(fields, key, v) {
        char *s = value_text(v);
        bool quote = !s || !*s || strpbrk(s, " \"=\\") || strpbrk(s, "\n\t\r");
        fprintf(f, " %s=%s", key, quote ? "\"" : "");
        text_escaped(f, s ? s : "?");
        fputs(quote ? "\"" : "", f);
        free(s);
    }
    fputc('\n', f);
    if (fclose(f) == 0)
        write_all(buf, len);
    free(buf);
}

/* Journal field name for a key: upper case, '_' for anything else than
 * letters and digits, prefixed GOVERNOR_ unless it already is. */
static char *journal_field(const char *key, const char *value)
{
    char *s, *p;
    bool prefixed = strncasecmp(key, "governor_", 9) == 0;
    if (asprintf(&s, "%s%s=%s", prefixed ? "" : "GOVERNOR_", key, value) < 0)
        return NULL;
    for (p = s; *p != '='; p++)
        *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    return s;
}

/* Where libsystemd sends journal entries (fixed in its sources). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Sends one entry over the journal's native protocol.  Returns 0, or a
 * negative errno when the journal cannot be reached (the caller then writes
 * the line to stderr instead).  sd_journal_sendv() itself reports a missing
 * socket as success ("fail silently"), hence the check first; a socket
 * nobody listens on comes back as -ECONNREFUSED. */
static int emit_journal(int priority, const char *event, const char *msg, json_t *fields)
{
    size_t cap = json_object_size(fields) + 4, n = 0;
    struct iovec *iov = NULL;
    char **strs = NULL;
    const char *key;
    json_t *v;
    int r = -ENOMEM;

    if (access(JOURNAL_SOCKET, W_OK) < 0)
        return -errno;
    iov = calloc(cap, sizeof(*iov));
    strs = calloc(cap, sizeof(*strs));
    if (!iov || !strs)
        goto out;
    if (asprintf(&strs[n], "MESSAGE=%s", msg) < 0)
        goto out;
    n++;
    if (asprintf(&strs[n], "PRIORITY=%d", priority) < 0)
        goto out;
    n++;
    if (asprintf(&strs[n], "GOVERNOR_EVENT=%s", event) < 0)
        goto out;
    n++;
    if (asprintf(&strs[n], "SYSLOG_IDENTIFIER=governord") < 0)
        goto out;
    n++;
    json_object_foreach(fields, key, v) {
        char *s = value_text(v);
        if (!s || n >= cap || !(strs[n] = journal_field(key, s))) {
            free(s);
            goto out;
        }
        free(s);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = strs[i];
        iov[i].iov_len = strlen(strs[i]);
    }
    r = sd_journal_sendv(iov, (int)n);
out:
    for (size_t i = 0; strs && i < n; i++)
        free(strs[i]);
    free(strs);
    free(iov);
    return r;
}

/* ---- fields with foreign bytes ------------------------------------------- */

/* A string of foreign bytes as a JSON string, repaired when ill-formed. */
static json_t *text_json(const char *s)
{
    char *clean = gov_utf8_sanitize(s);
    json_t *j = clean ? json_string(clean) : NULL;
    free(clean);
    return j;
}

static bool is_valid(const char *s)
{
    return gov_utf8_valid(s, strlen(s));
}

/* Whitespace, ',' and ':' carry no meaning in a pack format. */
static const char *skip_separators(const char *f)
{
    while (*f && strchr(" \t\n,:", *f))
        f++;
    return f;
}

/* Walks a flat object pack format "{s:s, s:I, ...}" over its arguments.
 * Values may be s, s?, i, I, b, f, n, o, o?, O, O? (what logging uses);
 * anything else (nesting, s#, s%, '+') is not understood.
 *
 * With obj == NULL it only checks: returns 1 when a key or string argument
 * is not valid UTF-8, 0 when all are, -1 for a format it does not
 * understand.  With obj it adds every member to obj, strings repaired, and
 * takes the references of 'o' arguments like json_pack; returns 0, or -1
 * for a format it does not understand or out of memory (obj then holds
 * what was added so far). */
/* the analyzer does not follow a va_copy'd list through a pointer */
/* NOLINTBEGIN(clang-analyzer-valist.Uninitialized) */
static int walk_fields(const char *fmt, va_list *ap, json_t *obj)
{
    const char *f = fmt;
    int found = 0;
    bool failed = false;

    f = skip_separators(f);
    if (*f++ != '{')
        return -1;
    for (;;) {
        const char *key;
        json_t *v = NULL;
        char type;
        bool optional;

        f = skip_separators(f);
        if (*f == '}') {
            f++;
            f = skip_separators(f);
            if (*f)
                return -1;
            return obj ? (failed ? -1 : 0) : found;
        }
        if (*f++ != 's' || *f == '#' || *f == '%' || *f == '+' || *f == '?' || *f == '*')
            return -1;
        key = va_arg(*ap, const char *);
        if (!key)
            return -1;
        if (!is_valid(key))
            found = 1;
        f = skip_separators(f);
        type = *f;
        if (!type)
            return -1;
        f++;
        optional = *f == '?';
        if (optional)
            f++;
        if (*f == '#' || *f == '%' || *f == '+' || *f == '*')
            return -1;
        switch (type) {
        case 's': {
            const char *s = va_arg(*ap, const char *);
            if (!s && !optional)
                return -1;
            if (s && !is_valid(s))
                found = 1;
            if (obj)
                v = s ? text_json(s) : json_null();
            break;
        }
        case 'i':
        case 'b': {
            int i = va_arg(*ap, int);
            if (obj)
                v = type == 'b' ? json_boolean(i) : json_integer(i);
            break;
        }
        case 'I': {
            json_int_t i = va_arg(*ap, json_int_t);
            if (obj)
                v = json_integer(i);
            break;
        }
        case 'f': {
            double d = va_arg(*ap, double);
            if (obj)
                v = json_real(d);
            break;
        }
        case 'n':
            if (obj)
                v = json_null();
            break;
        case 'o':
        case 'O': {
            json_t *j = va_arg(*ap, json_t *);
            if (!j && !optional)
                return -1;
            if (obj)
                v = !j ? json_null() : type == 'O' ? json_incref(j) : j;
            break;
        }
        default:
            return -1;
        }
        if (obj && v && !failed) {
            char *clean = is_valid(key) ? NULL : gov_utf8_sanitize(key);
            failed = json_object_set_new(obj, clean ? clean : key, v) < 0;
            free(clean);
        } else if (obj) {
            /* out of memory: keep walking so that every 'o' is released */
            json_decref(v);
            failed = true;
        }
    }
}
/* NOLINTEND(clang-analyzer-valist.Uninitialized) */

/* The fields of a line: json_pack when every string is valid UTF-8, else
 * built by walk_fields() with the strings repaired.  NULL with jerr when
 * the format is wrong or memory ran out. */
static json_t *pack_fields(json_error_t *jerr, const char *fmt, va_list ap)
{
    va_list args;
    json_t *obj;
    int r;

    /* walk_fields takes a va_list * ; a va_list parameter may be an array
     * that decayed to a pointer, so it walks local copies */
    va_copy(args, ap);
    r = walk_fields(fmt, &args, NULL);
    va_end(args);
    if (r != 1)
        return json_vpack_ex(jerr, 0, fmt, ap);
    obj = json_object();
    va_copy(args, ap);
    r = obj ? walk_fields(fmt, &args, obj) : -1;
    va_end(args);
    if (r == 0)
        return obj;
    json_decref(obj);
    snprintf(jerr->text, sizeof(jerr->text), "out of memory repairing the fields");
    return NULL;
}

/* The four keys every line has; a field with one of these names is renamed
 * field_<name> so that it cannot overwrite them. */
static bool reserved_key(const char *key)
{
    return strcmp(key, "time") == 0 || strcmp(key, "level") == 0 ||
           strcmp(key, "event") == 0 || strcmp(key, "msg") == 0;
}

void gov_log(int priority, const char *event, const char *msg, const char *fields, ...)
{
    char time[32];
    json_t *obj, *extra = NULL, *v;
    json_error_t jerr;
    const char *key;
    char *clean_msg = NULL;
    bool packed = true;

    if (priority > log_max_priority)
        return;
    if (fields) {
        va_list ap;
        va_start(ap, fields);
        extra = pack_fields(&jerr, fields, ap);
        va_end(ap);
        packed = extra != NULL;
    }
    if (!is_valid(msg) && (clean_msg = gov_utf8_sanitize(msg)))
        msg = clean_msg;
    if (!extra)
        extra = json_object();
    if (!extra) {
        write_all(msg, strlen(msg));
        write_all("\n", 1);
        return;
    }
    if (!packed) /* a programming error, but never lose the line */
        json_object_set_new(extra, "log_error", json_string(jerr.text));
    gov_format_rfc3339(gov_wall_ms(), time, sizeof(time));

    switch (log_format) {
    case GOV_LOG_TEXT:
        emit_text(time, priority, event, msg, extra);
        break;
    case GOV_LOG_JOURNAL:
        if (emit_journal(priority, event, msg, extra) >= 0)
            break;
        /* the journal is unreachable: stderr (often the journal's stream) */
        /* fall through */
    default:
        obj = json_pack("{s:s, s:s, s:s, s:s}", "time", time, "level", priority_name(priority),
                        "event", event, "msg", msg);
        if (!obj)
            break;
        json_object_foreach(extra, key, v) {
            char renamed[80];
            if (reserved_key(key)) {
                snprintf(renamed, sizeof(renamed), "field_%s", key);
                json_object_set(obj, renamed, v);
            } else {
                json_object_set(obj, key, v);
            }
        }
        emit_json(obj);
        json_decref(obj);
        break;
    }
    json_decref(extra);
    free(clean_msg);
}
