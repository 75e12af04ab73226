/* governor.h -- the public interface of the governor library (libgovernor).
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
 *   gov_new()                load the policy, locate the cgroup
 *   gov_register_shrinker()  any number of caches, up to 8 (before gov_start)
 *   gov_start()              start the governor thread (sd-event loop)
 *   ... gov_admit(), gov_status(), gov_request_reload() from any thread ...
 *   gov_stop(); gov_free()
 *
 * This is the library's only installed header and it is self-contained: it
 * includes system headers only.  Build against the installed library with
 * `pkg-config --cflags --libs governor`.  Every symbol the shared library
 * exports starts with gov_; everything else is private.
 *
 * The policy file (INI) has the library's sections [governor], [memory] and
 * [thresholds].  A host may add sections of its own (governord's
 * [collector]): it describes them in gov_config.sections (struct
 * gov_policy_section) and the library parses, validates and prints them with
 * its own, and reloads them all-or-nothing together with its own part. */
#ifndef GOVERNOR_GOVERNOR_H
#define GOVERNOR_GOVERNOR_H

#include <limits.h>
#ifndef PATH_MAX /* strict ISO C: limits.h leaves it out; it is the kernel's */
#include <linux/limits.h>
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h> /* LOG_ERR ... LOG_DEBUG for gov_log() */

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what the shared library exports (built with -fvisibility=hidden). */
#ifndef GOV_EXPORT
#define GOV_EXPORT __attribute__((visibility("default")))
#endif

#define GOVERNOR_VERSION "0.1.0"

/* ---- levels, actions, modes ------------------------------------------------
 * Levels are entered when usage/limit reaches the policy's fraction and left
 * only when it falls below that fraction minus the hysteresis:
 *   normal    caches may grow
 *   soft      caches stop growing (new data replaces old)
 *   high      caches shrink so that usage returns to `target`
 *             (at most once per cooldown)
 *   critical  everything above the shrinkers' floors is released at once */
enum gov_level { GOV_LEVEL_NORMAL, GOV_LEVEL_SOFT, GOV_LEVEL_HIGH, GOV_LEVEL_CRITICAL };
#define GOV_NLEVELS 4

enum gov_action {
    GOV_ACT_NONE,    /* level or limit change only */
    GOV_ACT_HOLD,    /* entering soft: growth stops */
    GOV_ACT_SHRINK,  /* at high: release down to target */
    GOV_ACT_RELEASE, /* at critical: release everything above the floor */
    GOV_ACT_EVICT,   /* admission: old data evicted to make room */
    GOV_ACT_REFUSE,  /* admission: allocation refused */
};

/* Where the limit in force comes from. */
enum gov_limit_source { GOV_LIMIT_CGROUP, GOV_LIMIT_POLICY, GOV_LIMIT_HOST };

enum gov_mode { GOV_MODE_ENFORCE, GOV_MODE_OBSERVE };
enum gov_signal { GOV_SIGNAL_WORKING_SET, GOV_SIGNAL_CURRENT };

/* ---- the policy (the library's sections) ---------------------------------- */

struct gov_policy {
    /* [governor] */
    enum gov_mode mode;      /* observe: decide and record, never act */
    uint32_t interval_ms;    /* timer period of the control loop */
    uint32_t cooldown_ms;    /* minimum time between two shrinks at `high` */
    uint32_t client_timeout_ms; /* trim-protocol clients must answer a shrink
                                 * within this (governord's socket) */
    /* [memory] */
    uint64_t limit;          /* bytes used when no cgroup limit exists; 0 = auto */
    enum gov_signal signal;  /* which usage figure is compared to the limit */
    /* [thresholds], fractions of the effective limit */
    double target, soft, high, critical, hysteresis;
};

/* Length of a hex SHA-256 with its NUL. */
#define GOV_POLICY_SHA256_HEX 65

/* ---- host sections of the policy file --------------------------------------
 * A host application keeps its own settings in the policy file, in sections
 * of its own, and the library treats them like its own: unknown keys,
 * duplicates, bad values and out-of-range numbers are errors reported as
 * "file:line: section.key: what is wrong", a file with any error (in any
 * section) is refused as a whole, and a reload is all-or-nothing (an invalid
 * host key rejects the reload and the old policy, library and host parts,
 * stays in force).
 *
 * The host describes each section as a table of typed keys that live in a
 * struct of its own (`size` bytes, at most GOV_POLICY_SECTION_MAX): the
 * library fills a copy of `defaults` from the file, calls `finish` (host
 * rules), and when the whole policy is put in force hands the values to
 * `commit`.  The values also appear wherever the policy is printed
 * (gov_policy_check(), gov_status_policy_foreach()). */

#define GOV_POLICY_MAX_SECTIONS 4      /* host sections per governor */
#define GOV_POLICY_MAX_SECTION_KEYS 16 /* keys per host section */
#define GOV_POLICY_SECTION_MAX 256     /* bytes of a host section's struct */

enum gov_key_type {
    GOV_KEY_BOOL,     /* bool: true/yes/on/1, false/no/off/0 */
    GOV_KEY_MS,       /* uint32_t: whole milliseconds, in [min, max] */
    GOV_KEY_SIZE,     /* uint64_t: bytes as a Kubernetes quantity (64Mi, 1G), in [min, max] */
    GOV_KEY_FRACTION, /* double: 0.85 or 85%, in [min, max] */
};

struct gov_policy_key {
    const char *name;       /* the key in the file */
    enum gov_key_type type;
    size_t offset;          /* offsetof() the field in the host's struct */
    double min, max;        /* inclusive range (ignored for GOV_KEY_BOOL) */
};

struct gov_policy_section {
    const char *name;                   /* "collector" for [collector] */
    const struct gov_policy_key *keys;  /* in the order they are printed */
    unsigned nkeys;
    size_t size;                        /* sizeof the host's struct */
    const void *defaults;               /* size bytes: values of keys left out */
    /* Optional (may be NULL): once every key of a file parsed without error;
     * set[i] tells whether the file set keys[i].  May adjust values (a
     * default that depends on the host's situation) and may reject them:
     * returns 0, or -1 with the offending key's index in *key and the reason
     * in what (reported at the line of that key).  No governor lock is held. */
    int (*finish)(void *ctx, void *values, const bool *set, unsigned *key, char *what,
                  size_t whatlen);
    /* Optional: the values are now in force -- called by gov_new() before it
     * returns, and on the governor thread for every reload applied (before
     * the shrinkers' policy_changed).  Must not block nor call back into the
     * governor. */
    void (*commit)(void *ctx, const void *values);
    void *ctx;
};

/* Validates a policy file ("-": standard input, named <stdin>) with the
 * given host sections, as the governor would load it.  Returns 0 and writes
 * the effective policy (every key, library and host sections) as INI to out,
 * or returns -1 and writes the errors, one "file:line: key: what" per line,
 * to errors.  Host sections' finish callbacks run; commit does not. */
GOV_EXPORT int gov_policy_check(const char *path, const struct gov_policy_section *sections,
                                unsigned nsections, FILE *out, FILE *errors);

/* ---- what the governor reads from the cgroup ------------------------------ */

enum gov_cg_version { GOV_CG_HOST = 0, GOV_CG_V1 = 1, GOV_CG_V2 = 2 };

/* Where the memory figures come from. */
struct gov_cgroup_loc {
    enum gov_cg_version version;
    char dir[PATH_MAX];   /* the own cgroup's directory ("" for host) */
    char root[PATH_MAX];  /* ancestors are walked up to and including this
                             directory; "" = while a parent has memory.max */
    char how[128];        /* how it was found, for status and logs */
};

/* Pressure stall information of one resource. */
struct gov_psi {
    double some_avg10, some_avg60, full_avg10, full_avg60;
    uint64_t some_total, full_total; /* microseconds */
};

/* One reading of the memory source.  All byte figures are exact kernel
 * values; `limit` is the smallest limit found over the cgroup and its
 * ancestors (memory.max and memory.high on v2), 0 with has_limit false when
 * none is set. */
struct gov_cgroup_sample {
    uint64_t current;        /* memory.current / memory.usage_in_bytes */
    uint64_t inactive_file;  /* memory.stat inactive_file / total_inactive_file */
    uint64_t working_set;    /* current - inactive_file, as the kubelet computes it */
    uint64_t anon, file;     /* memory.stat anon/file (v1: total_rss/total_cache) */
    bool has_limit;
    uint64_t limit;
    char limit_file[PATH_MAX]; /* the file that holds the effective limit */
    uint64_t peak;           /* memory.peak / max_usage_in_bytes, 0 if unknown */
    uint64_t events_low, events_high, events_max, events_oom, oom_kills;
    bool has_psi;
    struct gov_psi psi;
    uint64_t host_memtotal;  /* MemTotal of /proc/meminfo */
    uint64_t host_available; /* MemAvailable, read only when has_limit is false;
                                0 if unknown */
};

/* ---- decisions and history -------------------------------------------------- */

#define GOV_DECLOG_SIZE 64

/* One decision: a level change or an action of the tick or of admission.
 * Repeats of the same admission action are folded into one (repeat). */
struct gov_decision {
    uint64_t seq;            /* 1, 2, 3 ... never reused */
    int64_t wall_ms;         /* wall-clock time of the (latest) event */
    enum gov_level from, level;
    enum gov_action action;
    bool dry_run;            /* observe mode: nothing was done */
    uint64_t usage, limit;   /* before the action */
    uint64_t released;       /* bytes released (0 in observe mode) */
    uint64_t would_release;  /* bytes the action asked for */
    uint64_t buffer_after;
    uint32_t repeat;         /* 1 + number of folded repeats */
    char reason[200];
};

#define GOV_HISTORY_SIZE 900
#define GOV_HISTORY_PERIOD_MS 1000

/* One second of memory history (the peak of its ticks).  When the memory
 * source could not be read in that whole second, ok is false and only
 * wall_ms, limit and level are meaningful. */
struct gov_history_sample {
    int64_t wall_ms;          /* wall-clock time of the second's first tick */
    uint64_t limit;           /* effective limit */
    uint64_t usage;           /* the policy's signal */
    uint64_t working_set;     /* memory.current - inactive_file */
    uint64_t current;         /* memory.current / usage_in_bytes */
    uint64_t buffer;          /* bytes held by the shrinkers after the tick */
    uint8_t level;            /* enum gov_level after the tick */
    bool ok;                  /* the sample succeeded */
};

/* ---- the governor ------------------------------------------------------------ */

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
    /* Optional (may be NULL): bytes of this cache the governor never takes
     * (its floor): only what it holds above the floor counts as
     * reclaimable, and no release asks it for more than that.  Called like
     * count; NULL means 0. */
    uint64_t (*floor)(void *ctx);
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
    const char *embedded_policy; /* policy text used when policy_path is NULL; with
                                  * neither, the built-in defaults */
    /* the host's own sections of the policy file (at most
     * GOV_POLICY_MAX_SECTIONS; copied, the keys and defaults they point to
     * must stay valid until gov_free) */
    const struct gov_policy_section *sections;
    unsigned nsections;
    struct gov_hooks hooks;
};

/* One key of a host section as it is written in a policy file. */
struct gov_policy_value {
    char section[32], key[32], value[48];
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
    /* policy: the library's part, and the host sections' values as printed */
    struct gov_policy policy;
    unsigned npolicy_values;
    struct gov_policy_value policy_values[GOV_POLICY_MAX_SECTIONS * GOV_POLICY_MAX_SECTION_KEYS];
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
GOV_EXPORT struct gov *gov_new(const struct gov_config *cfg, char *err, size_t errlen);

/* Registers a cache; at most 8, and only before gov_start().  Returns 0/-1. */
GOV_EXPORT int gov_register_shrinker(struct gov *g, const struct gov_shrinker *s);

/* Starts the governor thread and waits for its first sample (the status is
 * complete when it returns).  Returns 0, or -1 with err. */
GOV_EXPORT int gov_start(struct gov *g, char *err, size_t errlen);

/* How long gov_stop() waits for the governor thread. */
#define GOV_STOP_TIMEOUT_MS 5000

/* Asks the governor thread to stop and joins it, waiting at most timeout_ms
 * (0: only if it has ended already).  Returns true when the thread has
 * ended (or never ran), false when it is still running -- then nothing it
 * uses may be freed; calling again later may still join it. */
GOV_EXPORT bool gov_stop_within(struct gov *g, unsigned timeout_ms);

/* gov_stop_within(g, GOV_STOP_TIMEOUT_MS), and a log line when the thread
 * did not stop: a governor stuck in a system call must not hold up a
 * SIGTERM forever.  Returns whether it stopped. */
GOV_EXPORT bool gov_stop(struct gov *g);

/* Stops the thread (gov_stop) and frees the governor.  If the thread does
 * not stop, nothing is freed: the memory stays allocated until the process
 * exits rather than being freed under a running thread. */
GOV_EXPORT void gov_free(struct gov *g);

/* Asks the governor thread to reload the policy file.  Async-signal-safe. */
GOV_EXPORT void gov_request_reload(struct gov *g);

/* Admission control, called before allocating `bytes` for a cache: samples
 * memory now, evicts from the shrinkers if needed, and returns true when the
 * allocation may proceed.  Refusals and evictions are counted and recorded. */
GOV_EXPORT bool gov_admit(struct gov *g, uint64_t bytes);

/* Counts bytes a cache released after its shrink callback had returned (a
 * cache that answers asynchronously, such as governord's socket clients):
 * into the released bytes of `level` (high or critical: a shrink the tick
 * asked for) or, when admission is true or the level is below high, into
 * the admission's evicted bytes.  Any thread; takes state_lock briefly. */
GOV_EXPORT void gov_count_late_release(struct gov *g, enum gov_level level, bool admission,
                            uint64_t bytes);

/* A copy of the policy in force (the library's sections). */
GOV_EXPORT void gov_policy(struct gov *g, struct gov_policy *out);

/* Copies the current status (takes state_lock briefly). */
GOV_EXPORT void gov_status(struct gov *g, struct gov_status *out);

/* Like gov_status() without the decisions (ndecisions is 0, decisions[] is
 * left as it is): for readers that do not show them, such as /metrics, so
 * that state_lock is held only for the short part of the status. */
GOV_EXPORT void gov_status_brief(struct gov *g, struct gov_status *out);

/* Copies the memory history -- the samples taken after since_ms (0 = all),
 * oldest first, at most max (the newest ones) -- and, when st is not NULL,
 * the status, both under one hold of state_lock so that they agree.
 * Returns the number of samples copied. */
GOV_EXPORT unsigned gov_history_snapshot(struct gov *g, int64_t since_ms, struct gov_history_sample *out,
                              unsigned max, struct gov_status *st);

/* Current level (lock-free). */
GOV_EXPORT enum gov_level gov_level(struct gov *g);

/* Liveness: true while the tick timer really armed is at most max(2 of its
 * intervals, 2 s) overdue, i.e. the loop ticks (a reload that changes the
 * interval re-arms the timer at once). */
GOV_EXPORT bool gov_alive(struct gov *g);

/* Readiness: true when a policy is loaded and the last sample succeeded;
 * otherwise false with the reason in why. */
GOV_EXPORT bool gov_ready(struct gov *g, char *why, size_t len);

/* Calls fn(section, key, value) for every key of the policy in st, library
 * sections first, then the host's, with values written as in a policy file
 * (what /governor shows as policy.values). */
GOV_EXPORT void gov_status_policy_foreach(const struct gov_status *st,
                                          void (*fn)(const char *section, const char *key,
                                                     const char *value, void *ud),
                                          void *ud);

/* ---- names used in JSON, logs and metrics ------------------------------------ */

GOV_EXPORT const char *gov_level_name(enum gov_level l);
GOV_EXPORT const char *gov_action_name(enum gov_action a);
GOV_EXPORT const char *gov_limit_source_name(enum gov_limit_source s);
GOV_EXPORT const char *gov_mode_name(enum gov_mode m);
GOV_EXPORT const char *gov_signal_name(enum gov_signal s);
GOV_EXPORT const char *gov_cg_version_name(enum gov_cg_version v); /* "v1", "v2", "host" */

/* Formats bytes compactly with binary suffixes: 0, 512, 1Ki, 1.5Gi ... with
 * at most one decimal.  Returns buf.  16 bytes are always enough. */
GOV_EXPORT char *gov_quantity_format(uint64_t bytes, char *buf, size_t len);

/* ---- logging ---------------------------------------------------------------------
 * The library logs one structured line per event (start, level_change,
 * shrink, reload, ...) to stderr, as JSON by default; a host may use the
 * same logger for its own events so that its lines look alike. */

enum gov_log_format { GOV_LOG_JSON, GOV_LOG_TEXT, GOV_LOG_JOURNAL };

/* Sets the output format and the least important priority written
 * (LOG_DEBUG .. LOG_ERR).  Process-wide: call once before gov_start(). */
GOV_EXPORT void gov_log_setup(enum gov_log_format format, int max_priority);

/* Parses "json", "text", "journal" or "auto" (journal when JOURNAL_STREAM
 * names stderr, else json).  Returns 0 or -1. */
GOV_EXPORT int gov_log_format_parse(const char *name, enum gov_log_format *out);

/* Logs an event: priority (LOG_*), event name, human message, and optional
 * fields given as a jansson pack format for an object ("{s:s, s:I}")
 * followed by its arguments (NULL: none).  Thread-safe. */
GOV_EXPORT void gov_log(int priority, const char *event, const char *msg, const char *fields,
                        ...);

/* ---- text ------------------------------------------------------------------------
 * Every string in a gov_status is valid UTF-8 (foreign bytes repaired with
 * U+FFFD).  These let a host do the same with its own strings before it
 * puts them in JSON: each maximal ill-formed subpart becomes one U+FFFD. */

/* True when the len bytes at s are well-formed UTF-8. */
GOV_EXPORT bool gov_utf8_valid(const char *s, size_t len);

/* s made well-formed, as a malloc'd copy (NULL only when out of memory). */
GOV_EXPORT char *gov_utf8_sanitize(const char *s);

/* Where to cut the len bytes at s to fit max bytes without cutting a
 * character in two: the length of the longest such prefix. */
GOV_EXPORT size_t gov_utf8_cut(const char *s, size_t len, size_t max);

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
 * with that figure and then, when count is set, reports what count says the
 * cache holds now.  level is told every change (at soft: stop growing).
 * They may call gov_client_count(), but not gov_client_register() or
 * gov_client_admit(). */
struct gov_client_callbacks {
    void (*count)(void *ud, uint64_t *bytes, uint64_t *objects);
    uint64_t (*shrink)(void *ud, uint64_t bytes, enum gov_level level, const char *reason);
    void (*level)(void *ud, enum gov_level level);
    void *ud;
};

/* $GOVERNOR_SOCKET, or GOV_CLIENT_DEFAULT_SOCKET when it is unset or empty. */
GOV_EXPORT const char *gov_client_default_socket(void);

/* Connects to the socket at path (NULL: gov_client_default_socket(); "none"
 * is refused).  cb may be NULL (a client that never releases anything).
 * Returns NULL with err on failure. */
GOV_EXPORT struct gov_client *gov_client_connect(const char *path, const struct gov_client_callbacks *cb,
                                      char *err, size_t errlen);

/* How long register and admit wait for their answer (0: the default). */
GOV_EXPORT void gov_client_set_timeout(struct gov_client *c, unsigned timeout_ms);

/* Registers the cache named `name`, holding bytes in objects; waits for the
 * answer and fills info (may be NULL).  Returns 0, or -1 with err. */
GOV_EXPORT int gov_client_register(struct gov_client *c, const char *name, uint64_t bytes,
                        uint64_t objects, struct gov_client_info *info, char *err,
                        size_t errlen);

/* Reports what the cache holds now (no answer).  Returns 0 or -1 when the
 * connection is broken (gov_client_error() says why). */
GOV_EXPORT int gov_client_count(struct gov_client *c, uint64_t bytes, uint64_t objects);

/* Asks whether the cache may grow by bytes; *ok is the answer.  While it
 * waits, shrink requests that arrive are served (the governor may make room
 * by shrinking this very cache).  Returns 0, or -1 with err. */
GOV_EXPORT int gov_client_admit(struct gov_client *c, uint64_t bytes, bool *ok, char *err, size_t errlen);

/* The socket, to poll for POLLIN in your own loop. */
GOV_EXPORT int gov_client_fd(const struct gov_client *c);

/* Handles whatever the governor has sent (shrink, level), without blocking.
 * Returns 0, or -1 when the connection has ended. */
GOV_EXPORT int gov_client_process(struct gov_client *c);

/* Starts a thread that serves the governor's messages; then do not call
 * gov_client_process().  Returns 0, or -1 with err. */
GOV_EXPORT int gov_client_start_thread(struct gov_client *c, char *err, size_t errlen);

/* The level last told by the governor. */
GOV_EXPORT enum gov_level gov_client_level(struct gov_client *c);

/* True when the connection has ended, with the reason in err. */
GOV_EXPORT bool gov_client_error(struct gov_client *c, char *err, size_t errlen);

/* Stops the thread if any, closes the connection and frees the client. */
GOV_EXPORT void gov_client_close(struct gov_client *c);

#ifdef __cplusplus
}
#endif

#endif
