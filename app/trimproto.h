/* trimproto.h -- the trim protocol's pure parts: lines in, lines out, and
 * how a shrink is spread over the clients.  No I/O, no clocks, no locks.
 *
 * The wire format (docs/protocol.md) is one JSON object per line.  A line
 * from a client is checked completely here -- UTF-8, JSON, an object, a
 * known op, exactly the fields of that op with the right types and ranges
 * -- so that the socket thread (app/trimsock.c) only acts on messages that
 * are valid.  Lines to a client are built here too, so that their shapes
 * live in one place. */
#ifndef APP_TRIMPROTO_H
#define APP_TRIMPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of one line, not counting its '\n'. */
#define TRIM_MAX_LINE 4096
/* Clients served at once (registered or not); the next one gets an error. */
#define TRIM_MAX_CLIENTS 64
/* Bytes of a client's name (UTF-8, no control characters). */
#define TRIM_MAX_NAME 64
/* Largest byte or object count accepted: 2^53 - 1, the largest integer
 * every JSON parser reads exactly (a double's mantissa). */
#define TRIM_MAX_VALUE 9007199254740991ull

enum trim_op { TRIM_OP_REGISTER, TRIM_OP_COUNT, TRIM_OP_ADMIT, TRIM_OP_RELEASED };

/* A valid message from a client. */
struct trim_msg {
    enum trim_op op;
    char name[TRIM_MAX_NAME + 1]; /* register */
    uint64_t bytes;               /* register, count, admit, released */
    uint64_t objects;             /* register, count */
    uint64_t seq;                 /* released (>= 1) */
};

/* Parses one line of len bytes (without its '\n'; need not be
 * NUL-terminated).  Returns 0 with *m filled, or -1 with a one-line reason
 * in err (plain ASCII, safe to send back). */
int trim_parse_line(const char *line, size_t len, struct trim_msg *m, char *err, size_t errlen);

/* The name of an op as it is written on the wire. */
const char *trim_op_name(enum trim_op op);

/* ---- lines to a client: each writes one line with its '\n' into buf and
 * returns its length, or 0 when it does not fit (or out of memory) ---- */

size_t trim_fmt_registered(char *buf, size_t len, uint64_t id, const char *level,
                           uint64_t limit_bytes, uint64_t usage_bytes);
size_t trim_fmt_admit(char *buf, size_t len, bool ok);
size_t trim_fmt_shrink(char *buf, size_t len, uint64_t seq, uint64_t bytes, const char *level,
                       const char *reason);
size_t trim_fmt_level(char *buf, size_t len, const char *level);
size_t trim_fmt_error(char *buf, size_t len, const char *error);

/* ---- spreading a shrink ---- */

/* One client that may be asked: its id (for the tie-break) and the bytes
 * it may be asked for (what it reported holding). */
struct trim_candidate {
    uint64_t id;
    uint64_t bytes;
};

/* Spreads `want` bytes over n candidates, largest holder first: the client
 * holding the most is asked for min(its bytes, what is still wanted), then
 * the next largest, until `want` is covered or nobody is left; ties go to
 * the lower id (the older client).  ask[i] receives what candidate i is
 * asked for (0: nothing).  Returns the sum asked (less than want when the
 * candidates hold less). */
uint64_t trim_distribute(const struct trim_candidate *c, size_t n, uint64_t want, uint64_t *ask);

/* ---- shrink round trips ---- */

/* The histogram of shrink round trips (a shrink queued to its `released`):
 * upper bounds in microseconds, ascending; a last bucket (+Inf) follows. */
#define TRIM_RTT_BOUNDS 16
extern const uint64_t trim_rtt_bounds_us[TRIM_RTT_BOUNDS];

/* The bucket of a round trip of us microseconds: the first bound >= us, or
 * TRIM_RTT_BOUNDS (+Inf) above the last. */
unsigned trim_rtt_bucket(uint64_t us);

#endif
