/* counter.c -- the stores behind /counter (see counter.h).
 *
 * One vtable, three stores:
 *
 *   memory  an atomic increment.
 *
 *   file    a lease of K values.  The high-water mark HIGH on disk means "no
 *           value above HIGH was ever served".  Serving value v is one atomic
 *           increment while v <= HIGH; the request that finds v above HIGH
 *           takes the store's lock and writes a new mark (write a temporary
 *           file, fsync it, rename it over the file, fsync the directory)
 *           before v is served.  So that this rarely happens, a request in
 *           the second half of a lease wakes a renewer thread that writes
 *           mark = next + K ahead of need, while requests go on serving from
 *           the mark already on disk.  A crash at any moment therefore
 *           leaves a mark at or above every value served, and the next start
 *           serves from mark + 1: at most K values are skipped, none repeated.  A clean
 *           stop writes the last value served, so a restart skips nothing.
 *           A write that fails answers 503 (the value it was for is skipped);
 *           the next request that needs a lease tries again.  The file is
 *           flock'ed (PATH.lock) so two processes cannot share one mark.
 *
 *   redis   one INCR per value, on a connection from a small pool (one per
 *           HTTP worker thread: a hiredis context is not thread-safe, so each
 *           slot has its own lock).  Connect and every command have a timeout.
 *           The first failure marks the store down (logged once, with the
 *           reason); while it is down requests are answered 503 at once,
 *           without touching the network, and one reconnect thread tries
 *           connect + AUTH + SELECT + PING with exponential backoff (100 ms to
 *           5 s).  Its success marks the store up (logged once) and bumps an
 *           epoch, so every pooled connection of the old outage is replaced
 *           before its next use.
 *
 * Shared state: each store's counters are atomics; the error text is under
 * err_lock; the file store's mark is written under its lock (by a request
 * that found the lease spent, or by its renewer thread); the Redis
 * outage state (down, backoff, stopping) is under the redis store's mu. */
#include "counter.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "governor.h"
#include "common.h"

/* ---- names and URL ------------------------------------------------------------ */

const char *counter_kind_name(enum counter_kind kind)
{
    switch (kind) {
    case COUNTER_FILE:
        return "file";
    case COUNTER_REDIS:
        return "redis";
    default:
        return "memory";
    }
}

const char *counter_error_name(enum counter_error e)
{
    static const char *const names[COUNTER_NERRORS] = {"persist", "connect", "timeout",
                                                       "reply", "io", "down"};
    return (unsigned)e < COUNTER_NERRORS ? names[e] : "other";
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Decimal digits only, within [min, max]. */
static int parse_uint(const char *s, size_t n, unsigned long min, unsigned long max,
                      unsigned long *out)
{
    unsigned long v = 0;
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static bool copy_n(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n >= dstlen)
        return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

static int parse_redis(const char *url, struct counter_url *out, char *err, size_t errlen)
{
    const char *p = url + strlen("redis://"), *at, *hostend, *portstart, *end, *q;
    unsigned long v;

    if (has_control(url)) {
        snprintf(err, errlen, "counter URL: control characters");
        return -1;
    }
    /* [:PASSWORD@] -- the last '@' ends it, so a password may contain '@' */
    q = strchr(p, '?');
    at = memrchr(p, '@', q ? (size_t)(q - p) : strlen(p));
    if (at) {
        if (*p != ':') {
            snprintf(err, errlen, "counter URL: the user part must be ':PASSWORD@' "
                                  "(redis://[:PASSWORD@]HOST:PORT[/DB][?key=NAME])");
            return -1;
        }
        if (at == p + 1 || !copy_n(out->password, sizeof(out->password), p + 1,
                                   (size_t)(at - p - 1))) {
            snprintf(err, errlen, "counter URL: empty or over-long password");
            return -1;
        }
        p = at + 1;
    }
    /* HOST:PORT or [IPV6]:PORT */
    if (*p == '[') {
        hostend = strchr(p, ']');
        if (!hostend || hostend[1] != ':' ||
            !copy_n(out->host, sizeof(out->host), p + 1, (size_t)(hostend - p - 1)) ||
            !out->host[0])
            goto bad;
        portstart = hostend + 2;
    } else {
        hostend = p + strcspn(p, ":/?");
        if (*hostend != ':' || hostend == p ||
            !copy_n(out->host, sizeof(out->host), p, (size_t)(hostend - p)))
            goto bad;
        portstart = hostend + 1;
    }
    end = portstart + strcspn(portstart, "/?");
    if (parse_uint(portstart, (size_t)(end - portstart), 1, 65535, &v) < 0) {
        snprintf(err, errlen, "counter URL: port must be a number from 1 to 65535");
        return -1;
    }
    out->port = (unsigned)v;
    p = end;
    if (*p == '/') {
        p++;
        end = p + strcspn(p, "?");
        if (end != p) {
            if (parse_uint(p, (size_t)(end - p), 0, INT_MAX, &v) < 0) {
                snprintf(err, errlen, "counter URL: database must be a number");
                return -1;
            }
            out->db = (unsigned)v;
        }
        p = end;
    }
    if (*p == '?') {
        p++;
        if (strncmp(p, "key=", 4) != 0 || strchr(p, '&') || !p[4] ||
            !copy_n(out->key, sizeof(out->key), p + 4, strlen(p + 4))) {
            snprintf(err, errlen, "counter URL: the only query is ?key=NAME (non-empty)");
            return -1;
        }
        p += strlen(p);
    }
    if (*p)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "counter URL: expected redis://[:PASSWORD@]HOST:PORT[/DB][?key=NAME]");
    return -1;
}

int counter_parse_url(const char *url, struct counter_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    app_strlcpy(out->key, COUNTER_DEFAULT_REDIS_KEY, sizeof(out->key));
    if (!url || !*url || strcmp(url, "memory:") == 0) {
        out->kind = COUNTER_MEMORY;
        return 0;
    }
    if (strncmp(url, "file:", 5) == 0) {
        out->kind = COUNTER_FILE;
        if (!url[5] || has_control(url + 5) ||
            !app_strlcpy(out->path, url + 5, sizeof(out->path))) {
            snprintf(err, errlen, "counter URL: file:PATH needs a path (no control characters)");
            return -1;
        }
        size_t n = strlen(out->path);
        if (out->path[n - 1] == '/') {
            snprintf(err, errlen, "counter URL: file:%s names a directory, not a file",
                     out->path);
            return -1;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        out->kind = COUNTER_REDIS;
        return parse_redis(url, out, err, errlen);
    }
    snprintf(err, errlen, "counter URL '%.200s': expected memory:, file:PATH or "
                          "redis://[:PASSWORD@]HOST:PORT[/DB][?key=NAME]", url);
    return -1;
}

/* ---- the file format and the lease (pure) --------------------------------------- */

#define FILE_MAGIC "governord-counter"
#define FILE_VERSION 1u

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int counter_file_format(uint64_t high, char *buf, size_t len)
{
    char head[64];
    int n = snprintf(head, sizeof(head), FILE_MAGIC " %u %" PRIu64, FILE_VERSION, high);
    int total;
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    total = snprintf(buf, len, "%s %016" PRIx64 "\n", head, fnv1a(head, (size_t)n));
    if (total < 0 || (size_t)total >= len)
        return -1;
    return total;
}

/* A decimal uint64 made of digits only, at most 20 of them. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int counter_file_parse(const char *buf, size_t len, uint64_t *high, char *err, size_t errlen)
{
    const size_t mlen = strlen(FILE_MAGIC);
    const char *p, *sp, *end;
    uint64_t version, h, check = 0;

    if (len == 0) {
        snprintf(err, errlen, "empty: truncated or never written by governord");
        return -1;
    }
    if (len > COUNTER_FILE_MAX || memchr(buf, '\0', len)) {
        snprintf(err, errlen, "corrupt: not a governord counter file");
        return -1;
    }
    if (len < mlen + 1 || memcmp(buf, FILE_MAGIC " ", mlen + 1) != 0) {
        if (buf[len - 1] != '\n' && memcmp(buf, FILE_MAGIC, MIN(len, mlen)) == 0) {
            snprintf(err, errlen, "truncated: the line ends early");
            return -1;
        }
        snprintf(err, errlen, "corrupt: not a governord counter file");
        return -1;
    }
    end = buf + len - 1;
    if (*end != '\n' || memchr(buf, '\n', len - 1)) {
        snprintf(err, errlen, *end != '\n' ? "truncated: the line ends early"
                                           : "corrupt: more than one line");
        return -1;
    }
    /* version */
    p = buf + mlen + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || parse_u64(p, (size_t)(sp - p), &version) < 0 || version == 0) {
        snprintf(err, errlen, "corrupt: bad format version");
        return -1;
    }
    if (version > FILE_VERSION) {
        snprintf(err, errlen, "from the future: format version %" PRIu64
                              ", this governord reads version %u", version, FILE_VERSION);
        return -1;
    }
    /* HIGH */
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || parse_u64(p, (size_t)(sp - p), &h) < 0) {
        snprintf(err, errlen, "corrupt: bad high-water mark");
        return -1;
    }
    /* CHECK: 16 lower-case hex digits */
    p = sp + 1;
    if (end - p != 16) {
        snprintf(err, errlen, "corrupt: bad checksum field");
        return -1;
    }
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else {
            snprintf(err, errlen, "corrupt: bad checksum field");
            return -1;
        }
        check = check << 4 | d;
    }
    if (check != fnv1a(buf, (size_t)(sp - buf))) {
        snprintf(err, errlen, "corrupt: checksum mismatch");
        return -1;
    }
    *high = h;
    return 0;
}

int counter_lease_want(const struct counter_lease *l, uint64_t v, uint64_t *want)
{
    uint64_t base = v > 0 && v - 1 > l->limit ? v - 1 : l->limit;
    if (base > UINT64_MAX - l->size)
        return -1;
    *want = base + l->size;
    return 0;
}

/* ---- the common part -------------------------------------------------------------- */

struct counter_ops {
    int (*next)(struct counter_store *s, uint64_t *value, char *why, size_t whylen);
    void (*status)(struct counter_store *s, struct counter_status *out);
    void (*close)(struct counter_store *s);
};

struct counter_store {
    const struct counter_ops *ops;
    enum counter_kind kind;
    char target[600];
    atomic_bool up;
    atomic_uint_fast64_t errors[COUNTER_NERRORS];
    pthread_mutex_t err_lock; /* guards error */
    char error[256];
};

static void base_init(struct counter_store *s, const struct counter_ops *ops,
                      enum counter_kind kind)
{
    s->ops = ops;
    s->kind = kind;
    atomic_init(&s->up, true);
    for (int i = 0; i < COUNTER_NERRORS; i++)
        atomic_init(&s->errors[i], 0);
    pthread_mutex_init(&s->err_lock, NULL);
}

/* Counts an error and keeps its text as the store's last error. */
static void note_error(struct counter_store *s, enum counter_error e, const char *msg)
{
    atomic_fetch_add_explicit(&s->errors[e], 1, memory_order_relaxed);
    pthread_mutex_lock(&s->err_lock);
    app_strlcpy(s->error, msg, sizeof(s->error));
    pthread_mutex_unlock(&s->err_lock);
}

static void copy_error(struct counter_store *s, char *buf, size_t len)
{
    pthread_mutex_lock(&s->err_lock);
    app_strlcpy(buf, s->error, len);
    pthread_mutex_unlock(&s->err_lock);
}

/* Logs the up -> down transition once (the caller already noted the error). */
static void mark_down(struct counter_store *s, const char *reason)
{
    bool was = true;
    if (atomic_compare_exchange_strong(&s->up, &was, false))
        gov_log(LOG_WARNING, "counter_down", "the counter store is unavailable: /counter answers 503",
                "{s:s, s:s, s:s}", "store", counter_kind_name(s->kind), "target", s->target,
                "error", reason);
}

static void mark_up(struct counter_store *s)
{
    bool was = false;
    if (atomic_compare_exchange_strong(&s->up, &was, true))
        gov_log(LOG_INFO, "counter_up", "the counter store is available again", "{s:s, s:s}",
                "store", counter_kind_name(s->kind), "target", s->target);
}

static void base_status(struct counter_store *s, struct counter_status *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = s->kind;
    out->up = atomic_load(&s->up);
    app_strlcpy(out->target, s->target, sizeof(out->target));
    copy_error(s, out->error, sizeof(out->error));
    for (int i = 0; i < COUNTER_NERRORS; i++)
        out->errors[i] = atomic_load_explicit(&s->errors[i], memory_order_relaxed);
}

/* ---- memory ------------------------------------------------------------------------- */

struct memory_store {
    struct counter_store base;
    atomic_uint_fast64_t next; /* the last value handed out */
};

static int memory_next(struct counter_store *s, uint64_t *value, char *why, size_t whylen)
{
    struct memory_store *m = (struct memory_store *)s;
    (void)why;
    (void)whylen;
    *value = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed) + 1;
    return 0;
}

static void memory_status(struct counter_store *s, struct counter_status *out)
{
    struct memory_store *m = (struct memory_store *)s;
    base_status(s, out);
    out->last = atomic_load_explicit(&m->next, memory_order_relaxed);
}

static void memory_close(struct counter_store *s)
{
    (void)s;
}

static const struct counter_ops memory_ops = {memory_next, memory_status, memory_close};

static struct counter_store *memory_open(char *err, size_t errlen)
{
    struct memory_store *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    base_init(&m->base, &memory_ops, COUNTER_MEMORY);
    app_strlcpy(m->base.target, "process memory", sizeof(m->base.target));
    atomic_init(&m->next, 0);
    return &m->base;
}

/* ---- file --------------------------------------------------------------------------- */

struct file_store {
    struct counter_store base;
    atomic_uint_fast64_t next;  /* the last value handed out */
    atomic_uint_fast64_t limit; /* the mark on disk: values up to it may be served */
    unsigned size;              /* K */
    pthread_mutex_t lock;       /* one writer of the mark at a time */
    /* The renewer thread writes the next lease ahead of need.  A request in
     * the second half of the lease sets `wanted` and, when it was not yet
     * set, wakes the thread (under renew_mu, held only to signal or wait). */
    atomic_uint_fast64_t writes, waits; /* counter_status.lease_writes, lease_waits */
    atomic_bool wanted;
    atomic_bool renew_failed;   /* the last early renewal failed: none until a
                                 * renewal on the request path succeeds */
    pthread_mutex_t renew_mu;
    pthread_cond_t renew_cond;
    bool stopping;              /* under renew_mu */
    bool thread_started;
    pthread_t renewer;
    int dirfd, lockfd;
    char name[256], tmpname[272];
};

/* Writes the mark: a temporary file, fsync, rename over the file, fsync of
 * the directory.  Returns 0, or -1 with err. */
static int file_write_mark(struct file_store *f, uint64_t high, char *err, size_t errlen)
{
    char line[COUNTER_FILE_MAX];
    int len = counter_file_format(high, line, sizeof(line));
    int fd;
    ssize_t n;

    if (len < 0) {
        snprintf(err, errlen, "cannot format the mark");
        return -1;
    }
    fd = openat(f->dirfd, f->tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", f->tmpname, strerror(errno));
        return -1;
    }
    n = write(fd, line, (size_t)len);
    if (n != len || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: %s", f->tmpname, n < 0 || n == len ? strerror(errno)
                                                                       : "short write");
        close(fd);
        return -1;
    }
    if (close(fd) < 0) {
        snprintf(err, errlen, "%s: close: %s", f->tmpname, strerror(errno));
        return -1;
    }
    if (renameat(f->dirfd, f->tmpname, f->dirfd, f->name) < 0) {
        snprintf(err, errlen, "rename to %s: %s", f->name, strerror(errno));
        return -1;
    }
    if (fsync(f->dirfd) < 0) {
        snprintf(err, errlen, "fsync of the directory: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The renewer thread: whenever a request asks (the lease is in its second
 * half), writes mark = next + K under the store's lock, where next is the
 * newest value handed out.  The mark stays at or above every value served
 * and a crash skips at most K values, as with a renewal on the request path;
 * but no request waits for this write unless it spends the whole rest of
 * the lease before the write is done.  A failure is nobody's answer: the
 * values below the mark on disk are still served, and the request that
 * finds the lease spent writes (and answers 503 if that fails too). */
static void *file_renewer(void *arg)
{
    struct file_store *f = arg;
    char err[200];

    pthread_setname_np(pthread_self(), "counter-lease"); /* for top -H */
    pthread_mutex_lock(&f->renew_mu);
    for (;;) {
        while (!f->stopping && !atomic_load(&f->wanted))
            pthread_cond_wait(&f->renew_cond, &f->renew_mu);
        if (f->stopping)
            break;
        pthread_mutex_unlock(&f->renew_mu);

        pthread_mutex_lock(&f->lock);
        {
            uint64_t next = atomic_load_explicit(&f->next, memory_order_relaxed);
            uint64_t limit = atomic_load_explicit(&f->limit, memory_order_relaxed);
            /* `wanted` is cleared before the write reads `next`, so a
             * request that asks again after this point is not lost */
            atomic_store(&f->wanted, false);
            if (next <= limit && limit - next < f->size / 2 && next <= UINT64_MAX - f->size) {
                if (file_write_mark(f, next + f->size, err, sizeof(err)) == 0) {
                    atomic_store_explicit(&f->limit, next + f->size, memory_order_release);
                    atomic_fetch_add_explicit(&f->writes, 1, memory_order_relaxed);
                } else
                    atomic_store(&f->renew_failed, true);
            }
        }
        pthread_mutex_unlock(&f->lock);
        pthread_mutex_lock(&f->renew_mu);
    }
    pthread_mutex_unlock(&f->renew_mu);
    return NULL;
}

/* Asks the renewer for the next lease (v is in the second half of this one). */
static void file_want_renewal(struct file_store *f)
{
    /* a load first: only the first asker of a lease writes the shared line */
    if (atomic_load_explicit(&f->renew_failed, memory_order_relaxed) ||
        atomic_load_explicit(&f->wanted, memory_order_relaxed) ||
        atomic_exchange(&f->wanted, true))
        return;
    pthread_mutex_lock(&f->renew_mu);
    pthread_cond_signal(&f->renew_cond);
    pthread_mutex_unlock(&f->renew_mu);
}

static int file_next(struct counter_store *s, uint64_t *value, char *why, size_t whylen)
{
    struct file_store *f = (struct file_store *)s;
    uint64_t v = atomic_fetch_add_explicit(&f->next, 1, memory_order_relaxed) + 1;
    char err[200];
    int r = 0;

    uint64_t limit = atomic_load_explicit(&f->limit, memory_order_acquire);
    if (v <= limit) {
        if (limit - v < f->size / 2)
            file_want_renewal(f);
        *value = v;
        return 0;
    }
    atomic_fetch_add_explicit(&f->waits, 1, memory_order_relaxed);
    pthread_mutex_lock(&f->lock);
    while (v > atomic_load_explicit(&f->limit, memory_order_relaxed)) {
        struct counter_lease l = {.limit = atomic_load_explicit(&f->limit, memory_order_relaxed),
                                  .size = f->size};
        uint64_t want;
        if (counter_lease_want(&l, v, &want) < 0) {
            snprintf(err, sizeof(err), "the counter has reached its largest value");
            r = -1;
            break;
        }
        if (file_write_mark(f, want, err, sizeof(err)) < 0) {
            r = -1;
            break;
        }
        atomic_store_explicit(&f->limit, want, memory_order_release);
        atomic_fetch_add_explicit(&f->writes, 1, memory_order_relaxed);
        atomic_store(&f->renew_failed, false);
    }
    pthread_mutex_unlock(&f->lock);
    if (r < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot persist the counter: %s", err);
        note_error(s, COUNTER_ERR_PERSIST, msg);
        mark_down(s, msg);
        app_strlcpy(why, msg, whylen);
        return -1;
    }
    mark_up(s);
    *value = v;
    return 0;
}

static void file_status(struct counter_store *s, struct counter_status *out)
{
    struct file_store *f = (struct file_store *)s;
    uint64_t next = atomic_load(&f->next), limit = atomic_load(&f->limit);
    base_status(s, out);
    out->last = MIN(next, limit);
    out->lease_limit = limit;
    out->lease_size = f->size;
    out->lease_writes = atomic_load(&f->writes);
    out->lease_waits = atomic_load(&f->waits);
}

/* A clean stop: the last value handed out (not above the mark) becomes the
 * mark, so the next start continues right after it. */
static void file_close(struct counter_store *s)
{
    struct file_store *f = (struct file_store *)s;
    uint64_t next, limit;
    char err[200];
    if (f->thread_started) {
        pthread_mutex_lock(&f->renew_mu);
        f->stopping = true;
        pthread_cond_signal(&f->renew_cond);
        pthread_mutex_unlock(&f->renew_mu);
        pthread_join(f->renewer, NULL);
    }
    next = atomic_load(&f->next);
    limit = atomic_load(&f->limit);
    if (next < limit && file_write_mark(f, next, err, sizeof(err)) < 0)
        gov_log(LOG_WARNING, "counter_close", "cannot write the last value on exit; the next "
                "start skips the rest of the lease", "{s:s}", "error", err);
    if (f->dirfd >= 0)
        close(f->dirfd);
    if (f->lockfd >= 0)
        close(f->lockfd);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->renew_mu);
    pthread_cond_destroy(&f->renew_cond);
}

static const struct counter_ops file_ops = {file_next, file_status, file_close};

/* Reads the file (ENOENT: a first start, mark 0).  Returns 0 or -1 with err. */
static int file_read_mark(struct file_store *f, const char *path, uint64_t *high, char *err,
                          size_t errlen)
{
    char buf[COUNTER_FILE_MAX + 1], why[160];
    struct stat st;
    ssize_t n;
    int fd = openat(f->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0 && errno == ENOENT) {
        *high = 0;
        return 0;
    }
    if (fd < 0) {
        snprintf(err, errlen, "counter file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "counter file %s: not a regular file", path);
        close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "counter file %s: %s", path, strerror(errno));
        return -1;
    }
    if (counter_file_parse(buf, (size_t)n, high, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "counter file %s is %s; refusing to start (the counter would "
                              "repeat values). Restore it, or remove it to start again at 1",
                 path, why);
        return -1;
    }
    return 0;
}

static struct counter_store *file_open(const struct counter_url *u, unsigned lease, char *err,
                                       size_t errlen)
{
    struct file_store *f = calloc(1, sizeof(*f));
    const char *slash = strrchr(u->path, '/');
    char dir[4096], lockname[272], werr[200];
    uint64_t high, want;

    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    base_init(&f->base, &file_ops, COUNTER_FILE);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->renew_mu, NULL);
    pthread_cond_init(&f->renew_cond, NULL);
    atomic_init(&f->wanted, false);
    atomic_init(&f->renew_failed, false);
    f->dirfd = f->lockfd = -1;
    f->size = lease;
    app_strlcpy(f->base.target, u->path, sizeof(f->base.target));
    if (slash) {
        size_t dn = slash == u->path ? 1 : (size_t)(slash - u->path);
        copy_n(dir, sizeof(dir), u->path, dn);
    } else {
        app_strlcpy(dir, ".", sizeof(dir));
    }
    if (!app_strlcpy(f->name, slash ? slash + 1 : u->path, sizeof(f->name)) ||
        strcmp(f->name, ".") == 0 || strcmp(f->name, "..") == 0) {
        snprintf(err, errlen, "counter file %s: bad file name", u->path);
        goto fail;
    }
    snprintf(f->tmpname, sizeof(f->tmpname), "%s.tmp", f->name);
    snprintf(lockname, sizeof(lockname), "%s.lock", f->name);
    f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dirfd < 0) {
        snprintf(err, errlen, "counter file %s: directory %s: %s", u->path, dir,
                 strerror(errno));
        goto fail;
    }
    f->lockfd = openat(f->dirfd, lockname, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f->lockfd < 0) {
        snprintf(err, errlen, "counter file %s: cannot write in %s: %s", u->path, dir,
                 strerror(errno));
        goto fail;
    }
    if (flock(f->lockfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "counter file %s: %s", u->path,
                 errno == EWOULDBLOCK ? "in use by another governord (two processes on one "
                                        "file would repeat values)"
                                      : strerror(errno));
        goto fail;
    }
    if (file_read_mark(f, u->path, &high, err, errlen) < 0)
        goto fail;
    atomic_init(&f->next, high);
    atomic_init(&f->limit, high);
    /* the first lease now: an unwritable file fails the start, not a request */
    {
        struct counter_lease l = {.next = high, .limit = high, .size = lease};
        if (counter_lease_want(&l, high + (high < UINT64_MAX), &want) < 0) {
            snprintf(err, errlen, "counter file %s: the counter has reached its largest value",
                     u->path);
            goto fail;
        }
    }
    if (file_write_mark(f, want, werr, sizeof(werr)) < 0) {
        snprintf(err, errlen, "counter file %s is not writable: %s", u->path, werr);
        goto fail;
    }
    atomic_store(&f->limit, want);
    atomic_init(&f->writes, 1);
    atomic_init(&f->waits, 0);
    if (pthread_create(&f->renewer, NULL, file_renewer, f) != 0) {
        snprintf(err, errlen, "cannot start the counter's lease thread");
        goto fail;
    }
    f->thread_started = true;
    return &f->base;
fail:
    if (f->dirfd >= 0)
        close(f->dirfd);
    if (f->lockfd >= 0)
        close(f->lockfd);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->renew_mu);
    pthread_cond_destroy(&f->renew_cond);
    pthread_mutex_destroy(&f->base.err_lock);
    free(f);
    return NULL;
}

/* ---- redis -------------------------------------------------------------------------- */

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u

struct redis_slot {
    pthread_mutex_t lock; /* one user of c at a time */
    redisContext *c;
    uint64_t epoch;       /* the store's epoch when c was connected */
};

struct redis_store {
    struct counter_store base;
    struct counter_url url;
    struct timeval timeout;
    unsigned nslots;
    struct redis_slot *slots;
    atomic_uint rr;            /* round-robin start for picking a slot */
    atomic_uint_fast64_t last; /* the highest value served */
    atomic_uint_fast64_t epoch; /* +1 per recovery: older connections are replaced */
    pthread_mutex_t mu;        /* guards stopping and wakes the reconnect thread */
    pthread_cond_t cond;
    bool stopping, thread_started;
    pthread_t thread;
};

/* The error class of a failed hiredis call on c. */
static enum counter_error redis_err_class(const redisContext *c)
{
    if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT))
        return COUNTER_ERR_TIMEOUT;
    if (strstr(c->errstr, "timed out") || strstr(c->errstr, "temporarily unavailable"))
        return COUNTER_ERR_TIMEOUT;
    return COUNTER_ERR_IO;
}

/* One command whose reply must be the status OK (AUTH, SELECT) or PONG. */
static int redis_simple(redisContext *c, const char *expect, enum counter_error *cls, char *err,
                        size_t errlen, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    int ok;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        *cls = redis_err_class(c);
        snprintf(err, errlen, "%s", c->errstr);
        return -1;
    }
    ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, expect) == 0;
    if (!ok) {
        *cls = COUNTER_ERR_CONNECT;
        snprintf(err, errlen, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* A new connection, authenticated and on the right database.  NULL with the
 * reason in err and its class in *cls. */
static redisContext *redis_connect(struct redis_store *s, enum counter_error *cls, char *err,
                                   size_t errlen)
{
    redisContext *c = redisConnectWithTimeout(s->url.host, (int)s->url.port, s->timeout);
    char why[200];

    if (!c) {
        *cls = COUNTER_ERR_CONNECT;
        snprintf(err, errlen, "connect to %s:%u: out of memory", s->url.host, s->url.port);
        return NULL;
    }
    if (c->err) {
        *cls = redis_err_class(c) == COUNTER_ERR_TIMEOUT ? COUNTER_ERR_TIMEOUT
                                                         : COUNTER_ERR_CONNECT;
        snprintf(err, errlen, "connect to %s:%u: %s", s->url.host, s->url.port, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, s->timeout) != REDIS_OK) {
        *cls = COUNTER_ERR_CONNECT;
        snprintf(err, errlen, "connect to %s:%u: cannot set the timeout", s->url.host,
                 s->url.port);
        redisFree(c);
        return NULL;
    }
    if (s->url.password[0] &&
        redis_simple(c, "OK", cls, why, sizeof(why), "AUTH %s", s->url.password) < 0) {
        snprintf(err, errlen, "AUTH at %s:%u: %s", s->url.host, s->url.port, why);
        redisFree(c);
        return NULL;
    }
    if (s->url.db && redis_simple(c, "OK", cls, why, sizeof(why), "SELECT %u", s->url.db) < 0) {
        snprintf(err, errlen, "SELECT %u at %s:%u: %s", s->url.db, s->url.host, s->url.port,
                 why);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Counts the failure, marks the store down (logged once) and wakes the
 * reconnect thread. */
static void redis_fail(struct redis_store *s, enum counter_error cls, const char *msg)
{
    note_error(&s->base, cls, msg);
    pthread_mutex_lock(&s->mu);
    mark_down(&s->base, msg);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static int redis_next(struct counter_store *base, uint64_t *value, char *why, size_t whylen)
{
    struct redis_store *s = (struct redis_store *)base;
    struct redis_slot *slot = NULL;
    enum counter_error cls = COUNTER_ERR_REPLY;
    char err[240];
    redisReply *r;
    uint64_t epoch, v = 0, prev;
    unsigned start;
    const unsigned nslots = s->nslots;

    if (!atomic_load(&base->up)) {
        char last[200];
        atomic_fetch_add_explicit(&base->errors[COUNTER_ERR_DOWN], 1, memory_order_relaxed);
        copy_error(base, last, sizeof(last));
        snprintf(why, whylen, "counter store unavailable: %s", last);
        return -1;
    }
    if (nslots == 0) { /* never: redis_open makes at least one */
        app_strlcpy(why, "counter store has no connections", whylen);
        return -1;
    }
    /* a free slot if there is one, else wait for the round-robin one */
    start = atomic_fetch_add_explicit(&s->rr, 1, memory_order_relaxed);
    for (unsigned i = 0; i < nslots && !slot; i++)
        if (pthread_mutex_trylock(&s->slots[(start + i) % nslots].lock) == 0)
            slot = &s->slots[(start + i) % nslots];
    if (!slot) {
        slot = &s->slots[start % nslots];
        pthread_mutex_lock(&slot->lock);
    }
    epoch = atomic_load(&s->epoch);
    if (slot->c && (slot->epoch != epoch || slot->c->err)) {
        redisFree(slot->c);
        slot->c = NULL;
    }
    if (!slot->c) {
        slot->c = redis_connect(s, &cls, err, sizeof(err));
        slot->epoch = epoch;
        if (!slot->c)
            goto fail;
    }
    r = redisCommand(slot->c, "INCR %b", s->url.key, strlen(s->url.key));
    if (!r) {
        cls = redis_err_class(slot->c);
        snprintf(err, sizeof(err), "INCR at %s:%u: %s", s->url.host, s->url.port,
                 cls == COUNTER_ERR_TIMEOUT ? "command timed out" : slot->c->errstr);
        goto fail;
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 1) {
        cls = COUNTER_ERR_REPLY;
        snprintf(err, sizeof(err), "INCR %s at %s:%u: %s", s->url.key, s->url.host, s->url.port,
                 r->type == REDIS_REPLY_ERROR ? r->str : "not a positive integer");
        freeReplyObject(r);
        pthread_mutex_unlock(&slot->lock);
        /* the store answers: this is not an outage, but no value either */
        note_error(base, cls, err);
        app_strlcpy(why, err, whylen);
        return -1;
    }
    v = (uint64_t)r->integer;
    freeReplyObject(r);
    pthread_mutex_unlock(&slot->lock);
    prev = atomic_load_explicit(&s->last, memory_order_relaxed);
    while (v > prev &&
           !atomic_compare_exchange_weak_explicit(&s->last, &prev, v, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    *value = v;
    return 0;
fail:
    if (slot->c) {
        redisFree(slot->c);
        slot->c = NULL;
    }
    pthread_mutex_unlock(&slot->lock);
    redis_fail(s, cls, err);
    snprintf(why, whylen, "counter store unavailable: %s", err);
    return -1;
}

/* Connect + PING on a private connection.  Returns 0 or -1 with err. */
static int redis_probe(struct redis_store *s, enum counter_error *cls, char *err, size_t errlen)
{
    char why[200];
    redisContext *c = redis_connect(s, cls, err, errlen);
    int r;
    if (!c)
        return -1;
    r = redis_simple(c, "PONG", cls, why, sizeof(why), "PING");
    if (r < 0)
        snprintf(err, errlen, "PING at %s:%u: %s", s->url.host, s->url.port, why);
    redisFree(c);
    return r;
}

/* The reconnect thread: sleeps until the store is down, then probes with
 * exponential backoff until it answers or the store closes. */
static void *redis_reconnect_thread(void *arg)
{
    struct redis_store *s = arg;
    unsigned backoff = BACKOFF_MIN_MS;
    char err[240];

    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec until;
        enum counter_error cls = COUNTER_ERR_CONNECT;
        if (atomic_load(&s->base.up)) {
            backoff = BACKOFF_MIN_MS;
            pthread_cond_wait(&s->cond, &s->mu);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += backoff / 1000;
        until.tv_nsec += (long)(backoff % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stopping && pthread_cond_timedwait(&s->cond, &s->mu, &until) != ETIMEDOUT)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        if (redis_probe(s, &cls, err, sizeof(err)) == 0) {
            atomic_fetch_add(&s->epoch, 1);
            mark_up(&s->base);
        } else {
            /* the reason may have changed (refused -> timing out): keep the latest */
            pthread_mutex_lock(&s->base.err_lock);
            app_strlcpy(s->base.error, err, sizeof(s->base.error));
            pthread_mutex_unlock(&s->base.err_lock);
            backoff = MIN(backoff * 2, BACKOFF_MAX_MS);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void redis_status(struct counter_store *base, struct counter_status *out)
{
    struct redis_store *s = (struct redis_store *)base;
    base_status(base, out);
    out->last = atomic_load_explicit(&s->last, memory_order_relaxed);
}

static void redis_close(struct counter_store *base)
{
    struct redis_store *s = (struct redis_store *)base;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (unsigned i = 0; s->slots && i < s->nslots; i++) {
        if (s->slots[i].c)
            redisFree(s->slots[i].c);
        pthread_mutex_destroy(&s->slots[i].lock);
    }
    free(s->slots);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    /* the password is not left in freed memory */
    explicit_bzero(s->url.password, sizeof(s->url.password));
}

static const struct counter_ops redis_ops = {redis_next, redis_status, redis_close};

/* The password from a file: its content without one final newline. */
static int read_password_file(const char *path, char *out, size_t outlen, char *err,
                              size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0) {
        snprintf(err, errlen, "GOVERNOR_COUNTER_PASSWORD_FILE %s: %s", path, strerror(errno));
        return -1;
    }
    n = read(fd, out, outlen);
    close(fd);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "GOVERNOR_COUNTER_PASSWORD_FILE %s: %s", path,
                 n < 0 ? strerror(errno) : "longer than 511 bytes");
        return -1;
    }
    out[n] = '\0';
    if (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '\r')
        out[--n] = '\0';
    if (n == 0 || memchr(out, '\0', (size_t)n) || has_control(out)) {
        snprintf(err, errlen, "GOVERNOR_COUNTER_PASSWORD_FILE %s: %s", path,
                 n == 0 ? "empty" : "control characters in the password");
        return -1;
    }
    return 0;
}

static struct counter_store *redis_open(const struct counter_url *u,
                                        const struct counter_config *cfg, char *err,
                                        size_t errlen)
{
    struct redis_store *s = calloc(1, sizeof(*s));
    unsigned ms = cfg->timeout_ms ? cfg->timeout_ms : COUNTER_DEFAULT_TIMEOUT_MS;
    enum counter_error cls = COUNTER_ERR_CONNECT;
    char perr[240];

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    base_init(&s->base, &redis_ops, COUNTER_REDIS);
    pthread_mutex_init(&s->mu, NULL);
    {
        /* the reconnect thread's backoff deadlines are CLOCK_MONOTONIC */
        pthread_condattr_t ca;
        if (pthread_condattr_init(&ca) != 0 ||
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&s->cond, &ca) != 0) {
            snprintf(err, errlen, "cannot set up the Redis store's condition variable");
            pthread_mutex_destroy(&s->mu);
            free(s);
            return NULL;
        }
        pthread_condattr_destroy(&ca);
    }
    s->url = *u;
    s->timeout.tv_sec = ms / 1000;
    s->timeout.tv_usec = (long)(ms % 1000) * 1000;
    if (u->host[0] && strchr(u->host, ':'))
        snprintf(s->base.target, sizeof(s->base.target), "[%s]:%u/%u key=%s", u->host, u->port,
                 u->db, u->key);
    else
        snprintf(s->base.target, sizeof(s->base.target), "%s:%u/%u key=%s", u->host, u->port,
                 u->db, u->key);
    if (cfg->password_file && *cfg->password_file) {
        if (u->password[0]) {
            snprintf(err, errlen, "the Redis password is given twice: in the counter URL and "
                                  "in GOVERNOR_COUNTER_PASSWORD_FILE");
            goto fail;
        }
        if (read_password_file(cfg->password_file, s->url.password, sizeof(s->url.password),
                               err, errlen) < 0)
            goto fail;
    }
    s->nslots = cfg->pool ? cfg->pool : 8;
    s->slots = calloc(s->nslots, sizeof(*s->slots));
    if (!s->slots) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < s->nslots; i++)
        pthread_mutex_init(&s->slots[i].lock, NULL);
    /* unreachable at start is an outage like any other: the pod starts
     * unready and becomes ready when Redis answers */
    if (redis_probe(s, &cls, perr, sizeof(perr)) < 0) {
        note_error(&s->base, cls, perr);
        mark_down(&s->base, perr);
    }
    if (pthread_create(&s->thread, NULL, redis_reconnect_thread, s) != 0) {
        snprintf(err, errlen, "cannot start the Redis reconnect thread");
        goto fail;
    }
    s->thread_started = true;
    return &s->base;
fail:
    redis_close(&s->base);
    pthread_mutex_destroy(&s->base.err_lock);
    free(s);
    return NULL;
}

/* ---- the interface ------------------------------------------------------------------ */

struct counter_store *counter_open(const struct counter_config *cfg, char *err, size_t errlen)
{
    struct counter_url *u = malloc(sizeof(*u));
    struct counter_store *s = NULL;
    unsigned lease = cfg->lease ? cfg->lease : COUNTER_DEFAULT_LEASE;

    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (counter_parse_url(cfg->url, u, err, errlen) == 0) {
        if (lease > COUNTER_MAX_LEASE)
            snprintf(err, errlen, "counter lease %u: at most %u", lease, COUNTER_MAX_LEASE);
        else if (u->kind == COUNTER_FILE)
            s = file_open(u, lease, err, errlen);
        else if (u->kind == COUNTER_REDIS)
            s = redis_open(u, cfg, err, errlen);
        else
            s = memory_open(err, errlen);
    }
    explicit_bzero(u->password, sizeof(u->password));
    free(u);
    return s;
}

int counter_next(struct counter_store *s, uint64_t *value, char *why, size_t whylen)
{
    return s->ops->next(s, value, why, whylen);
}

bool counter_ready(struct counter_store *s, char *why, size_t whylen)
{
    char last[256];
    if (atomic_load(&s->up))
        return true;
    copy_error(s, last, sizeof(last));
    snprintf(why, whylen, "counter store (%s %s) unavailable: %s", counter_kind_name(s->kind),
             s->target, last);
    return false;
}

void counter_get_status(struct counter_store *s, struct counter_status *out)
{
    s->ops->status(s, out);
}

void counter_close(struct counter_store *s)
{
    if (!s)
        return;
    s->ops->close(s);
    pthread_mutex_destroy(&s->err_lock);
    free(s);
}
