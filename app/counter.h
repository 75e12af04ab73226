/* counter.h -- where /counter's N comes from: memory, a file or Redis.
 *
 * A store hands out the values 1, 2, 3 ... one per call of counter_next(),
 * never the same value twice:
 *
 *   memory:                  one atomic increment; exact within one process,
 *                            starts again at 1 with every process
 *   file:PATH                survives restarts and crashes: a high-water mark
 *                            (a lease of K values) is written and fsync'ed
 *                            before any value of the lease is served, so a
 *                            crash skips at most K values and never repeats one
 *   redis://[:PASSWORD@]HOST:PORT[/DB][?key=NAME]
 *                            one INCR per value on a shared Redis: exact across
 *                            every process that uses the same key
 *
 * The store is a small vtable (counter.c); the URL parser and the file
 * format and lease arithmetic are pure functions, unit-tested without I/O.
 * Every function is thread-safe: HTTP worker threads call counter_next()
 * concurrently. */
#ifndef APP_COUNTER_H
#define APP_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum counter_kind { COUNTER_MEMORY, COUNTER_FILE, COUNTER_REDIS };

/* Why a value could not be served, for governor_counter_errors_total. */
enum counter_error {
    COUNTER_ERR_PERSIST,  /* file: the lease could not be written */
    COUNTER_ERR_CONNECT,  /* redis: connecting (or AUTH/SELECT) failed */
    COUNTER_ERR_TIMEOUT,  /* redis: a command took longer than the timeout */
    COUNTER_ERR_REPLY,    /* redis: an error or unexpected reply */
    COUNTER_ERR_IO,       /* redis: the connection failed during a command */
    COUNTER_ERR_DOWN,     /* refused without trying: the store is known to be down */
    COUNTER_NERRORS
};

#define COUNTER_DEFAULT_LEASE 1000u
#define COUNTER_MAX_LEASE 1000000u
#define COUNTER_DEFAULT_TIMEOUT_MS 1000u
#define COUNTER_DEFAULT_REDIS_KEY "metrics-app:counter"
#define COUNTER_FILE_MAX 128 /* the file's size limit: one line */

/* A parsed --counter URL. */
struct counter_url {
    enum counter_kind kind;
    char path[4096];      /* file: the path */
    char host[256];       /* redis: host name or address (without brackets) */
    unsigned port;        /* redis: 1..65535 */
    unsigned db;          /* redis: database number (SELECT), default 0 */
    char password[512];   /* redis: from the URL, "" if none */
    char key[512];        /* redis: default COUNTER_DEFAULT_REDIS_KEY */
};

/* Parses "memory:", "file:PATH" or "redis://[:PASSWORD@]HOST:PORT[/DB][?key=NAME]"
 * (HOST may be [IPv6]).  Returns 0, or -1 with a message in err. */
int counter_parse_url(const char *url, struct counter_url *out, char *err, size_t errlen);

/* Name of a store kind: "memory", "file", "redis". */
const char *counter_kind_name(enum counter_kind kind);

/* Name of an error reason: "persist", "connect", "timeout", "reply", "io", "down". */
const char *counter_error_name(enum counter_error e);

/* ---- the file store's pure parts ---------------------------------------------
 * The file is one line, "governord-counter 1 HIGH CHECK\n": format version 1,
 * HIGH the high-water mark (no value above it was ever served), CHECK a
 * checksum of the version and HIGH (FNV-1a, 16 hex digits) so that a torn or
 * edited file is told apart from a valid one. */

/* Writes the line for high into buf.  Returns its length, or -1 if buf is
 * too small. */
int counter_file_format(uint64_t high, char *buf, size_t len);

/* Parses a file's whole content.  Returns 0 with *high, or -1 with err:
 * empty, truncated (no final newline), corrupt (bad magic, number or
 * checksum) or from the future (a format version above 1). */
int counter_file_parse(const char *buf, size_t len, uint64_t *high, char *err, size_t errlen);

/* The lease: values up to limit may be served without writing; next is the
 * last value handed out (0 before the first). */
struct counter_lease {
    uint64_t next, limit;
    unsigned size; /* K */
};

/* The high-water mark to write before serving value v when v > limit: a
 * lease of size values above max(limit, v - 1).  Returns 0 with *want, or
 * -1 when it would pass UINT64_MAX. */
int counter_lease_want(const struct counter_lease *l, uint64_t v, uint64_t *want);

/* ---- the store ---------------------------------------------------------------- */

struct counter_config {
    const char *url;            /* NULL or "" = "memory:" */
    const char *password_file;  /* redis: the password, from this file (NULL: none) */
    unsigned lease;             /* file: K (0 = COUNTER_DEFAULT_LEASE) */
    unsigned timeout_ms;        /* redis: connect and command timeout (0 = default) */
    unsigned pool;              /* redis: connections (0 = 8); one per HTTP thread */
};

/* What /governor and /metrics show. */
struct counter_status {
    enum counter_kind kind;
    bool up;                      /* can serve values now */
    char target[600];             /* path, or host:port/db key=NAME (never the password) */
    char error[256];              /* why it is down, or the last error; "" if none */
    uint64_t last;                /* the last value this process served (0: none) */
    uint64_t errors[COUNTER_NERRORS];
    uint64_t lease_limit;         /* file: the high-water mark on disk */
    unsigned lease_size;          /* file: K */
    uint64_t lease_writes;        /* file: marks written since start (the first included) */
    uint64_t lease_waits;         /* file: requests that found the lease spent and
                                   * waited for a mark write (K too small, or a slow disk) */
};

struct counter_store;

/* Opens the store: parses the URL, reads the password file, and for file:
 * takes the file's lock, reads it and writes the first lease (so a corrupt,
 * truncated, future or unwritable file fails here).  A Redis that cannot be
 * reached is not an error here: the store starts down and reconnects.
 * Returns NULL with err (the daemon exits 2). */
struct counter_store *counter_open(const struct counter_config *cfg, char *err, size_t errlen);

/* The next value.  Returns 0 with *value, or -1 with a one-line reason in
 * why (the caller answers 503 with Retry-After). */
int counter_next(struct counter_store *s, uint64_t *value, char *why, size_t whylen);

/* true when the store can serve; else false with the reason (for /readyz). */
bool counter_ready(struct counter_store *s, char *why, size_t whylen);

/* A copy of the store's state. */
void counter_get_status(struct counter_store *s, struct counter_status *out);

/* Closes the store (file: writes the last value served as the high-water
 * mark, so a clean restart skips nothing).  NULL is ignored. */
void counter_close(struct counter_store *s);

#endif
