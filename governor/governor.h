/* governor.h -- the public interface of the governor library.
 *
 * The governor keeps a process's in-memory caches below its container's
 * memory limit.  It reads the process's own cgroup, decides with the
 * thresholds of a policy, and shrinks the caches that registered with it
 * (shrinkers, like the kernel's: a count callback and a shrink callback)
 * before the kernel's OOM killer has to act.  Caches also ask it before they
 * allocate (admission control), so a burst faster than the poll interval
 * cannot reach the limit.
 *
 * Life cycle:
 *
 *   gov_new()             load the policy, locate the cgroup
 *   gov_register_shrinker()  any number of caches (before gov_start)
 *   gov_start()           start the governor thread (sd-event loop)
 *   ... gov_admit(), gov_status(), gov_request_reload() from any thread ...
 *   gov_stop(); gov_free()
 *
 * This header is the library's only public header: it includes the module
 * headers whose types appear in the interface (policy, cgroup, decision
 * engine, decision log, memory history, logging). */
#ifndef GOVERNOR_GOVERNOR_H
#define GOVERNOR_GOVERNOR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "decide.h"
#include "declog.h"
#include "history.h"
#include "log.h"
#include "policy.h"
#include "quantity.h"

#define GOVERNOR_VERSION "0.1.0"

/* A cache the governor may shrink.  Both callbacks may be called from the
 * governor thread and from whichever thread calls gov_admit(), so they must
 * be thread-safe; neither may call back into the governor.  The governor
 * never has two releases (shrink calls for the tick or for admission) in
 * progress at once. */
struct gov_shrinker {
    const char *name;
    /* Bytes currently held and number of objects (blocks, entries). */
    void (*count)(void *ctx, uint64_t *bytes, uint64_t *objects);
    /* Releases at least `bytes`, oldest first, and returns the memory to the
     * kernel; returns the bytes actually released (may be less if the cache
     * holds less, never more than it holds). */
    uint64_t (*shrink)(void *ctx, uint64_t bytes);
    /* Optional (may be NULL): a new policy is in force; called on the
     * governor thread with no governor lock held, so that a cache that paces
     * itself by the policy (the collector's interval) can re-arm at once.
     * Must not block, nor call back into the governor. */
    void (*policy_changed)(void *ctx);
    void *ctx;
};

/* Callbacks into the host application, all called on the governor thread
 * (used by governord for sd_notify).  Any may be NULL. */
struct gov_hooks {
    void (*level_changed)(void *ud, enum gov_level from, enum gov_level to, uint64_t usage,
                          uint64_t limit);
    void (*reload_begin)(void *ud);
    void (*reload_end)(void *ud, bool ok, uint64_t generation);
    void *ud;
};

struct gov_config {
    const char *cgroup_dir;      /* use this directory as the cgroup; NULL = discover */
    const char *policy_path;     /* policy file to load and watch; NULL = embedded */
    const char *embedded_policy; /* policy text used when policy_path is NULL */
    bool collector_off;          /* a policy that does not set [collector] enabled
                                  * gets enabled = false (governord -- CMD) */
    struct gov_hooks hooks;
};

/* Counters that only grow, for /metrics. */
struct gov_counters {
    uint64_t ticks;
    uint64_t actions[GOV_NLEVELS];        /* shrink/release actions by level */
    uint64_t released_bytes[GOV_NLEVELS]; /* bytes released by tick actions, by level */
    uint64_t evictions, evicted_bytes;    /* admission evictions */
    uint64_t refused;                     /* admission refusals */
    uint64_t reloads_ok, reloads_failed;
    uint64_t wake_timer, wake_events, wake_pressure, wake_policy;
    uint64_t sample_errors;
};

/* A consistent copy of everything the governor knows, for renderers. */
struct gov_status {
    /* memory */
    bool sample_ok;
    char sample_error[320];
    struct gov_cgroup_sample sample;   /* the last good sample */
    uint64_t usage, limit;             /* signal and effective limit */
    enum gov_limit_source limit_source;
    double ratio;
    enum gov_level level;
    struct gov_cgroup_loc cgroup;
    /* buffer (sum over shrinkers) */
    uint64_t buffer_bytes, buffer_objects;
    /* policy */
    struct gov_policy policy;
    char policy_source[PATH_MAX];      /* file path, or "embedded" */
    char policy_sha256[GOV_POLICY_SHA256_HEX]; /* hex SHA-256 of its bytes */
    uint64_t policy_generation;        /* 1 for the policy loaded at start */
    int64_t policy_loaded_wall_ms;
    char policy_error[512];            /* last rejected reload, "" if none since */
    /* wake-up sources */
    char events_watch[48];             /* "pollpri", "inotify", "none: ..." */
    char pressure_trigger[96];         /* "some 150000 1000000", "none: ..." */
    struct gov_counters counters;
    /* times */
    int64_t started_wall_ms;
    uint64_t last_tick_ms;             /* monotonic, 0 before the first tick */
    /* decisions, newest first; last, so that gov_status_brief() can copy
     * everything before them in one piece */
    unsigned ndecisions;
    struct gov_decision decisions[GOV_DECLOG_SIZE];
};

struct gov;

/* Creates a governor: loads the policy (file or embedded text) and locates
 * the cgroup.  Returns NULL with a message in err on failure; a policy with
 * errors is printed to stderr line by line. */
struct gov *gov_new(const struct gov_config *cfg, char *err, size_t errlen);

/* Registers a cache; at most 8, and only before gov_start().  Returns 0/-1. */
int gov_register_shrinker(struct gov *g, const struct gov_shrinker *s);

/* Starts the governor thread and waits for its first sample (the status is
 * complete when it returns).  Returns 0, or -1 with err. */
int gov_start(struct gov *g, char *err, size_t errlen);

/* How long gov_stop() waits for the governor thread. */
#define GOV_STOP_TIMEOUT_MS 5000

/* Asks the governor thread to stop and joins it, waiting at most timeout_ms
 * (0: only if it has ended already).  Returns true when the thread has
 * ended (or never ran), false when it is still running -- then nothing it
 * uses may be freed; calling again later may still join it. */
bool gov_stop_within(struct gov *g, unsigned timeout_ms);

/* gov_stop_within(g, GOV_STOP_TIMEOUT_MS), and a log line when the thread
 * did not stop: a governor stuck in a system call must not hold up a
 * SIGTERM forever.  Returns whether it stopped. */
bool gov_stop(struct gov *g);

/* Stops the thread (gov_stop) and frees the governor.  If the thread does
 * not stop, nothing is freed: the memory stays allocated until the process
 * exits rather than being freed under a running thread. */
void gov_free(struct gov *g);

/* Asks the governor thread to reload the policy file.  Async-signal-safe. */
void gov_request_reload(struct gov *g);

/* Admission control, called before allocating `bytes` for a cache: samples
 * memory now, evicts from the shrinkers if needed, and returns true when the
 * allocation may proceed.  Refusals and evictions are counted and recorded. */
bool gov_admit(struct gov *g, uint64_t bytes);

/* Copies the current status (takes state_lock briefly). */
void gov_status(struct gov *g, struct gov_status *out);

/* Like gov_status() without the decisions (ndecisions is 0, decisions[] is
 * left as it is): for readers that do not show them, such as /metrics, so
 * that state_lock is held only for the short part of the status. */
void gov_status_brief(struct gov *g, struct gov_status *out);

/* Copies the memory history -- the samples taken after since_ms (0 = all),
 * oldest first, at most max (the newest ones) -- and, when st is not NULL,
 * the status, both under one hold of state_lock so that they agree.
 * Returns the number of samples copied. */
unsigned gov_history_snapshot(struct gov *g, int64_t since_ms, struct gov_history_sample *out,
                              unsigned max, struct gov_status *st);

/* A copy of the policy in force. */
void gov_policy(struct gov *g, struct gov_policy *out);

/* Current level (lock-free). */
enum gov_level gov_level(struct gov *g);

/* Liveness: true while the tick timer really armed is at most max(2 of its
 * intervals, 2 s) overdue, i.e. the loop ticks (a reload that changes the
 * interval re-arms the timer at once). */
bool gov_alive(struct gov *g);

/* Readiness: true when a policy is loaded and the last sample succeeded;
 * otherwise false with the reason in why. */
bool gov_ready(struct gov *g, char *why, size_t len);

/* ---- the trim protocol's C client (docs/protocol.md) ------------------------------
 *
 * For a process other than governord: connect to governord's socket,
 * register a cache, report what it holds, ask before growing, and release
 * memory when asked.  Drive it from your own poll loop (gov_client_fd() and
 * gov_client_process()) or from a thread of its own
 * (gov_client_start_thread()). */

#define GOV_CLIENT_DEFAULT_SOCKET "/run/governor/governor.sock"
#define GOV_CLIENT_MAX_LINE 4096       /* bytes of one protocol line, '\n' included */
#define GOV_CLIENT_TIMEOUT_MS 5000     /* default wait for a register or admit answer */

struct gov_client;

/* What the governor said at registration, updated by level messages. */
struct gov_client_info {
    uint64_t id;
    enum gov_level level;
    uint64_t limit_bytes, usage_bytes; /* at registration */
};

/* Called on the thread that reads the socket (yours, or the client's own),
 * never with a client lock held.  shrink releases at least `bytes` (oldest
 * first) and returns the bytes it released; the client answers the governor
 * with that figure.  level is told every change (at soft: stop growing).
 * Either may call gov_client_count(), but not gov_client_register() or
 * gov_client_admit(). */
struct gov_client_callbacks {
    uint64_t (*shrink)(void *ud, uint64_t bytes, enum gov_level level, const char *reason);
    void (*level)(void *ud, enum gov_level level);
    void *ud;
};

/* $GOVERNOR_SOCKET, or GOV_CLIENT_DEFAULT_SOCKET when it is unset or empty. */
const char *gov_client_default_socket(void);

/* Connects to the socket at path (NULL: gov_client_default_socket(); "none"
 * is refused).  cb may be NULL (a client that never releases anything).
 * Returns NULL with err on failure. */
struct gov_client *gov_client_connect(const char *path, const struct gov_client_callbacks *cb,
                                      char *err, size_t errlen);

/* How long register and admit wait for their answer (0: the default). */
void gov_client_set_timeout(struct gov_client *c, unsigned timeout_ms);

/* Registers the cache named `name`, holding bytes in objects; waits for the
 * answer and fills info (may be NULL).  Returns 0, or -1 with err. */
int gov_client_register(struct gov_client *c, const char *name, uint64_t bytes,
                        uint64_t objects, struct gov_client_info *info, char *err,
                        size_t errlen);

/* Reports what the cache holds now (no answer).  Returns 0 or -1 when the
 * connection is broken (gov_client_error() says why). */
int gov_client_count(struct gov_client *c, uint64_t bytes, uint64_t objects);

/* Asks whether the cache may grow by bytes; *ok is the answer.  While it
 * waits, shrink requests that arrive are served (the governor may make room
 * by shrinking this very cache).  Returns 0, or -1 with err. */
int gov_client_admit(struct gov_client *c, uint64_t bytes, bool *ok, char *err, size_t errlen);

/* The socket, to poll for POLLIN in your own loop. */
int gov_client_fd(const struct gov_client *c);

/* Handles whatever the governor has sent (shrink, level), without blocking.
 * Returns 0, or -1 when the connection has ended. */
int gov_client_process(struct gov_client *c);

/* Starts a thread that serves the governor's messages; then do not call
 * gov_client_process().  Returns 0, or -1 with err. */
int gov_client_start_thread(struct gov_client *c, char *err, size_t errlen);

/* The level last told by the governor. */
enum gov_level gov_client_level(struct gov_client *c);

/* True when the connection has ended, with the reason in err. */
bool gov_client_error(struct gov_client *c, char *err, size_t errlen);

/* Stops the thread if any, closes the connection and frees the client. */
void gov_client_close(struct gov_client *c);

#endif
