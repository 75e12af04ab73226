/* trimsock.h -- the trim protocol's Unix socket: any process in the
 * container registers as a shrinker (docs/protocol.md).
 *
 * The socket is served by a thread of its own (epoll, non-blocking sockets,
 * a bounded output buffer per client), so no client can hold up the
 * governor thread, the HTTP server or another client.  The clients reach
 * the governor library as ONE shrinker, "clients": its count sums what the
 * clients report holding, its shrink queues shrink messages to chosen
 * clients (largest holder first) and returns at once, without waiting;
 * what they release is counted when their `released` lines arrive.  A
 * client's `admit` is answered by a worker thread that runs gov_admit()
 * (which may queue shrinks to other clients and to this one) and then
 * waits, at most the policy's client_timeout_ms, for those shrinks to be
 * answered. */
#ifndef APP_TRIMSOCK_H
#define APP_TRIMSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "governor.h"
#include "trimproto.h"

struct trimsock;

struct trimsock_config {
    const char *path;   /* NULL: no socket (--socket none) */
    bool path_explicit; /* --socket or GOVERNOR_SOCKET: a failure is an error */
    const char *group;  /* --socket-group: a group name or gid (mode 0660); NULL: 0600 */
};

/* One client as /governor and /metrics show it. */
struct trimsock_client_status {
    uint64_t id;
    char name[TRIM_MAX_NAME + 1];
    pid_t pid;
    uid_t uid;
    uint64_t bytes, objects;   /* as it last reported */
    uint64_t shrinks;          /* shrink messages sent to it */
    uint64_t released_bytes;   /* bytes its `released` answers gave back */
    int64_t connected_wall_ms;
    int64_t last_answer_wall_ms; /* its last `released`; 0: none yet */
    bool unresponsive;         /* a shrink went unanswered past client_timeout_ms */
    uint64_t pending_seq;      /* the shrink it has not answered yet; 0: none */
};

struct trimsock_status {
    bool listening;
    char path[108];            /* the socket's path ("" without one) */
    char reason[320];          /* why there is no socket ("" when listening) */
    unsigned mode;             /* 0600 or 0660 */
    long gid;                  /* --socket-group's gid, -1 without one */
    unsigned connections;      /* open connections (registered or not) */
    uint64_t connections_total, rejected_total, protocol_errors_total, timeouts_total,
        overflows_total;
    /* shrinks answered in time, by round trip (queued to `released` handled):
     * rtt_buckets[i] counts those within trim_rtt_bounds_us[i] (not
     * cumulative; the last is above every bound), rtt_sum_us their sum */
    uint64_t rtt_buckets[TRIM_RTT_BOUNDS + 1], rtt_count, rtt_sum_us;
    unsigned nclients;         /* registered clients, in clients[] by id */
    struct trimsock_client_status clients[TRIM_MAX_CLIENTS];
};

/* Creates the socket (a missing parent directory is made, mode 0755; a
 * stale socket nobody listens on is replaced).  Returns NULL with err when
 * an explicit path fails (a regular file or a directory at the path,
 * another process listening, a directory that cannot be written, an
 * unknown group) or out of memory.  When the default path fails, returns a
 * trimsock without a socket whose status says why. */
struct trimsock *trimsock_open(const struct trimsock_config *cfg, char *err, size_t errlen);

/* Registers the "clients" shrinker with g (before gov_start). Returns 0/-1. */
int trimsock_attach(struct trimsock *s, struct gov *g);

/* Starts the socket thread and the admission worker (after gov_start; a
 * trimsock without a socket starts nothing).  Returns 0 or -1 with err. */
int trimsock_start(struct trimsock *s, char *err, size_t errlen);

/* The socket's path while it listens, else NULL (GOVERNOR_SOCKET for a child). */
const char *trimsock_path(const struct trimsock *s);

/* The level changed: queues a `level` line to every registered client.
 * Never blocks (the governor thread calls it). */
void trimsock_level_changed(struct trimsock *s, enum gov_level level);

/* Copies the status.  s may be NULL (no socket support): an empty status. */
void trimsock_snapshot(struct trimsock *s, struct trimsock_status *out);

/* Stops both threads, closes every connection and the socket and removes
 * the socket file (if it is still the one created).  The shrinker stays
 * callable (it then has no clients). Idempotent. */
void trimsock_stop(struct trimsock *s);

/* Frees s (stops it first).  Only once the governor thread is gone. */
void trimsock_free(struct trimsock *s);

/* ---- pure helpers (unit tests) ---- */

/* Parses --socket-group: a gid number or a group name.  Returns 0 with *gid,
 * or -1 with err. */
int trimsock_parse_group(const char *group, gid_t *gid, char *err, size_t errlen);

#endif
