/* metrics.c -- the Prometheus exposition of /metrics (see metrics.h).
 *
 * Written by hand rather than with a client library: the document is one
 * pass over a status snapshot, and the format is small.  The rules it keeps
 * (text format 0.0.4 and the promtool linter):
 *   - every family: "# HELP name text" then "# TYPE name type", then its
 *     samples, each family once and contiguous;
 *   - names are governor_ + snake_case, counters end in _total, base units
 *     only (_bytes, _seconds, _ratio);
 *   - label values escape \ " and line feed; HELP text escapes \ and line
 *     feed;
 *   - integers are printed exactly, doubles so that they read back equal,
 *     infinities as +Inf/-Inf, every line ends with '\n'.
 * The body goes to an open_memstream; any write error yields NULL. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "routes.h"
#include "common.h"
#include "trimsock.h"

/* ---- format primitives -------------------------------------------------- */

void metrics_write_label_value(FILE *f, const char *s)
{
    if (!s)
        return; /* an unset value (an env var that is not there) is "" */
    for (; *s; s++) {
        switch (*s) {
        case '\\':
            fputs("\\\\", f);
            break;
        case '"':
            fputs("\\\"", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

void metrics_write_double(FILE *f, double v)
{
    char buf[40];
    if (isnan(v)) {
        fputs("NaN", f);
    } else if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    } else if (fabs(v) < 9007199254740992.0 && (double)(int64_t)v == v) {
        /* a whole number (tested without libm: the image links no libm) */
        fprintf(f, "%.0f", v);
    } else {
        snprintf(buf, sizeof(buf), "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof(buf), "%.17g", v);
        fputs(buf, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* name{k1="v1",k2="v2"} with k2 (or both) optional (NULL). */
static void series(FILE *f, const char *name, const char *k1, const char *v1, const char *k2,
                   const char *v2)
{
    fputs(name, f);
    if (k1) {
        fprintf(f, "{%s=\"", k1);
        metrics_write_label_value(f, v1);
        if (k2) {
            fprintf(f, "\",%s=\"", k2);
            metrics_write_label_value(f, v2);
        }
        fputs("\"}", f);
    }
    fputc(' ', f);
}

static void u64_sample(FILE *f, const char *name, const char *k, const char *v, uint64_t value)
{
    series(f, name, k, v, NULL, NULL);
    fprintf(f, "%llu\n", (unsigned long long)value);
}

static void double_sample(FILE *f, const char *name, const char *k, const char *v, double value)
{
    series(f, name, k, v, NULL, NULL);
    metrics_write_double(f, value);
    fputc('\n', f);
}

/* A family with one unlabelled sample. */
static void gauge_u64(FILE *f, const char *name, const char *help, uint64_t v)
{
    family(f, name, "gauge", help);
    u64_sample(f, name, NULL, NULL, v);
}

static void counter_u64(FILE *f, const char *name, const char *help, uint64_t v)
{
    family(f, name, "counter", help);
    u64_sample(f, name, NULL, NULL, v);
}

/* ---- the trim protocol's clients ------------------------------------------- */

/* One family with a sample per registered client, labelled id and name. */
static void client_family(FILE *f, const struct trimsock_status *ts, const char *name,
                          const char *type, const char *help, size_t offset)
{
    family(f, name, type, help);
    for (unsigned i = 0; i < ts->nclients; i++) {
        const struct trimsock_client_status *c = &ts->clients[i];
        char id[24];
        uint64_t v;
        if (offset == SIZE_MAX) /* the unresponsive flag */
            v = c->unresponsive;
        else
            memcpy(&v, (const char *)c + offset, sizeof(v));
        snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);
        series(f, name, "id", id, "name", c->name);
        fprintf(f, "%llu\n", (unsigned long long)v);
    }
}

/* governor_client_shrink_round_trip_seconds: one histogram over all clients. */
static void rtt_histogram(FILE *f, const struct trimsock_status *ts)
{
    const char *name = "governor_client_shrink_round_trip_seconds";
    uint64_t cum = 0;
    char le[32];
    family(f, name, "histogram",
           "Time from a shrink line queued to a client to its released answer, for the "
           "shrinks answered within client_timeout_ms.");
    for (unsigned i = 0; i <= TRIM_RTT_BOUNDS; i++) {
        cum += ts->rtt_buckets[i];
        if (i < TRIM_RTT_BOUNDS)
            snprintf(le, sizeof(le), "%g", (double)trim_rtt_bounds_us[i] / 1e6);
        else
            snprintf(le, sizeof(le), "+Inf");
        u64_sample(f, "governor_client_shrink_round_trip_seconds_bucket", "le", le, cum);
    }
    double_sample(f, "governor_client_shrink_round_trip_seconds_sum", NULL, NULL,
                  (double)ts->rtt_sum_us / 1e6);
    u64_sample(f, "governor_client_shrink_round_trip_seconds_count", NULL, NULL, ts->rtt_count);
}

static void client_families(FILE *f, struct trimsock *sock)
{
    struct trimsock_status *ts = malloc(sizeof(*ts));
    if (!ts) {
        fputs("# out of memory: the client families are missing\n", f);
        return;
    }
    trimsock_snapshot(sock, ts);
    gauge_u64(f, "governor_socket_listening",
              "1 while the trim protocol's Unix socket listens, 0 without one.", ts->listening);
    gauge_u64(f, "governor_clients", "Clients registered on the trim protocol's socket.",
              ts->nclients);
    counter_u64(f, "governor_client_connections_total",
                "Connections accepted on the trim protocol's socket.", ts->connections_total);
    counter_u64(f, "governor_client_rejected_total",
                "Connections turned away because 64 were open already.", ts->rejected_total);
    counter_u64(f, "governor_client_protocol_errors_total",
                "Connections closed for a bad line (malformed, too long, out of order).",
                ts->protocol_errors_total);
    counter_u64(f, "governor_client_timeouts_total",
                "Shrinks a client did not answer within client_timeout_ms.",
                ts->timeouts_total);
    rtt_histogram(f, ts);
    client_family(f, ts, "governor_client_bytes", "gauge",
                  "Bytes a registered client reports holding.",
                  offsetof(struct trimsock_client_status, bytes));
    client_family(f, ts, "governor_client_objects", "gauge",
                  "Objects a registered client reports holding.",
                  offsetof(struct trimsock_client_status, objects));
    client_family(f, ts, "governor_client_shrinks_total", "counter",
                  "Shrink messages sent to a client.",
                  offsetof(struct trimsock_client_status, shrinks));
    client_family(f, ts, "governor_client_released_bytes_total", "counter",
                  "Bytes a client released in its answers to shrinks.",
                  offsetof(struct trimsock_client_status, released_bytes));
    client_family(f, ts, "governor_client_unresponsive", "gauge",
                  "1 while a client is marked unresponsive (a shrink went unanswered).",
                  SIZE_MAX);
    free(ts);
}

/* ---- the document --------------------------------------------------------- */

static void memory_families(FILE *f, const struct gov_status *st)
{
    const struct gov_cgroup_sample *s = &st->sample;
    static const enum gov_limit_source sources[] = {GOV_LIMIT_CGROUP, GOV_LIMIT_POLICY,
                                                    GOV_LIMIT_HOST};

    gauge_u64(f, "governor_memory_readable",
              "1 when the last sample of the memory source succeeded, else 0 (the other "
              "memory figures are then those of the last good sample).",
              st->sample_ok ? 1 : 0);
    gauge_u64(f, "governor_memory_limit_bytes",
              "Effective memory limit the governor works against: the smallest memory.max or "
              "memory.high of the cgroup and its ancestors, else the policy's limit, else "
              "MemTotal.",
              st->limit);
    family(f, "governor_memory_limit_source", "gauge",
           "Where the effective limit comes from: 1 for the source in use, 0 for the others.");
    for (size_t i = 0; i < ARRAY_SIZE(sources); i++)
        u64_sample(f, "governor_memory_limit_source", "source",
                   gov_limit_source_name(sources[i]), st->limit_source == sources[i]);
    gauge_u64(f, "governor_memory_signal_bytes",
              "Memory usage as the policy's signal measures it (working set or current): "
              "the figure the thresholds are compared with.",
              st->usage);
    gauge_u64(f, "governor_memory_current_bytes",
              "Raw usage of the cgroup, page cache included (memory.current).", s->current);
    gauge_u64(f, "governor_memory_working_set_bytes",
              "Working set: memory.current minus inactive_file, as the kubelet computes it.",
              s->working_set);
    gauge_u64(f, "governor_memory_inactive_file_bytes",
              "Inactive page cache of the cgroup (memory.stat inactive_file).",
              s->inactive_file);
    if (s->peak)
        gauge_u64(f, "governor_memory_peak_bytes",
                  "Highest usage the kernel recorded for the cgroup (memory.peak).", s->peak);
    family(f, "governor_memory_signal_ratio", "gauge",
           "The signal divided by the effective limit (+Inf for any usage against a zero "
           "limit).");
    double_sample(f, "governor_memory_signal_ratio", NULL, NULL, st->ratio);

    family(f, "governor_memory_events_total", "counter",
           "Events of the cgroup by kind, from memory.events (hierarchical).");
    u64_sample(f, "governor_memory_events_total", "event", "low", s->events_low);
    u64_sample(f, "governor_memory_events_total", "event", "high", s->events_high);
    u64_sample(f, "governor_memory_events_total", "event", "max", s->events_max);
    u64_sample(f, "governor_memory_events_total", "event", "oom", s->events_oom);
    counter_u64(f, "governor_memory_oom_kills_total",
                "Processes of the cgroup killed by the OOM killer (memory.events oom_kill; "
                "memory.oom_control on cgroup v1).",
                s->oom_kills);
    if (s->has_psi) {
        family(f, "governor_memory_pressure_stall_seconds_total", "counter",
               "Time some or all tasks of the cgroup stalled on memory (memory.pressure "
               "total).");
        double_sample(f, "governor_memory_pressure_stall_seconds_total", "kind", "some",
                      (double)s->psi.some_total / 1e6);
        double_sample(f, "governor_memory_pressure_stall_seconds_total", "kind", "full",
                      (double)s->psi.full_total / 1e6);
    }
}

static void governor_families(FILE *f, const struct gov_status *st)
{
    const struct gov_policy *p = &st->policy;
    const struct gov_counters *c = &st->counters;
    static const enum gov_level acting[] = {GOV_LEVEL_HIGH, GOV_LEVEL_CRITICAL};
    static const enum gov_mode modes[] = {GOV_MODE_ENFORCE, GOV_MODE_OBSERVE};

    family(f, "governor_level", "gauge",
           "Governor level: 1 for the level in force, 0 for the others.");
    for (int l = 0; l < GOV_NLEVELS; l++)
        u64_sample(f, "governor_level", "level", gov_level_name((enum gov_level)l),
                   st->level == (enum gov_level)l);
    family(f, "governor_mode", "gauge",
           "Policy mode: 1 for the mode in force (enforce acts, observe only records).");
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
        u64_sample(f, "governor_mode", "mode", gov_mode_name(modes[i]), p->mode == modes[i]);
    family(f, "governor_threshold_ratio", "gauge",
           "Thresholds of the policy in force, as fractions of the limit.");
    double_sample(f, "governor_threshold_ratio", "threshold", "target", p->target);
    double_sample(f, "governor_threshold_ratio", "threshold", "soft", p->soft);
    double_sample(f, "governor_threshold_ratio", "threshold", "high", p->high);
    double_sample(f, "governor_threshold_ratio", "threshold", "critical", p->critical);

    gauge_u64(f, "governor_buffer_bytes", "Bytes held by the governed buffer.",
              st->buffer_bytes);
    gauge_u64(f, "governor_buffer_blocks", "Blocks held by the governed buffer.",
              st->buffer_objects);

    family(f, "governor_shrinks_total", "counter",
           "Shrink decisions carried out by the governor loop, by level (high: back to "
           "target, critical: down to the floor).");
    for (size_t i = 0; i < ARRAY_SIZE(acting); i++)
        u64_sample(f, "governor_shrinks_total", "level", gov_level_name(acting[i]),
                   c->actions[acting[i]]);
    family(f, "governor_released_bytes_total", "counter",
           "Bytes released by shrink decisions of the governor loop, by level.");
    for (size_t i = 0; i < ARRAY_SIZE(acting); i++)
        u64_sample(f, "governor_released_bytes_total", "level", gov_level_name(acting[i]),
                   c->released_bytes[acting[i]]);
    counter_u64(f, "governor_admission_evictions_total",
                "Allocations admitted only after evicting old blocks (admission control).",
                c->evictions);
    counter_u64(f, "governor_admission_evicted_bytes_total",
                "Bytes evicted by admission control to make room for new blocks.",
                c->evicted_bytes);
    counter_u64(f, "governor_refused_allocations_total",
                "Allocations refused by admission control.", c->refused);

    gauge_u64(f, "governor_policy_generation",
              "Generation of the policy in force: 1 at start, +1 per accepted reload.",
              st->policy_generation);
    family(f, "governor_policy_reloads_total", "counter",
           "Policy reloads by result (failure: the new policy was rejected and the previous "
           "one stays in force).");
    u64_sample(f, "governor_policy_reloads_total", "result", "success", c->reloads_ok);
    u64_sample(f, "governor_policy_reloads_total", "result", "failure", c->reloads_failed);
    family(f, "governor_policy_loaded_timestamp_seconds", "gauge",
           "When the policy in force was loaded, in seconds since the Unix epoch.");
    double_sample(f, "governor_policy_loaded_timestamp_seconds", NULL, NULL,
                  (double)st->policy_loaded_wall_ms / 1000.0);

    family(f, "governor_wakeups_total", "counter",
           "Wake-ups of the governor loop by source: timer, events (memory.events changed), "
           "pressure (PSI trigger), policy (policy directory changed).");
    u64_sample(f, "governor_wakeups_total", "source", "timer", c->wake_timer);
    u64_sample(f, "governor_wakeups_total", "source", "events", c->wake_events);
    u64_sample(f, "governor_wakeups_total", "source", "pressure", c->wake_pressure);
    u64_sample(f, "governor_wakeups_total", "source", "policy", c->wake_policy);
    counter_u64(f, "governor_ticks_total", "Samples taken by the governor loop.", c->ticks);
    counter_u64(f, "governor_sample_errors_total",
                "Samples of the memory source that failed.", c->sample_errors);
}

/* The counter store: which one, whether it can serve, and why not. */
static void counter_families(FILE *f, const struct counter_status *cs)
{
    static const enum counter_kind kinds[] = {COUNTER_MEMORY, COUNTER_FILE, COUNTER_REDIS};

    family(f, "governor_visits_store_info", "gauge",
           "The store /counter takes its values from: 1 for the store in use, 0 for the "
           "others.");
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
        u64_sample(f, "governor_visits_store_info", "store", counter_kind_name(kinds[i]),
                   cs->kind == kinds[i]);
    gauge_u64(f, "governor_visits_store_up",
              "1 when the counter store can serve values, 0 while /counter answers 503.",
              cs->up ? 1 : 0);
    family(f, "governor_visits_store_errors_total", "counter",
           "Requests to /counter the store could not serve, by reason: persist (file: the "
           "lease could not be written), connect, timeout, reply, io (redis), down (refused "
           "at once during an outage).");
    for (int i = 0; i < COUNTER_NERRORS; i++)
        u64_sample(f, "governor_visits_store_errors_total", "reason",
                   counter_error_name((enum counter_error)i), cs->errors[i]);
    if (cs->kind == COUNTER_FILE)
        gauge_u64(f, "governor_visits_lease_high_water_mark",
                  "File store: the high-water mark on disk; no value above it was served.",
                  cs->lease_limit);
    if (cs->kind == COUNTER_FILE) {
        counter_u64(f, "governor_visits_lease_writes_total",
                    "File store: high-water marks written (write, fsync, rename, fsync of the "
                    "directory).",
                    cs->lease_writes);
        counter_u64(f, "governor_visits_lease_waits_total",
                    "File store: /counter requests that found the lease spent and waited for "
                    "a mark write (the lease is too small for the request rate, or the disk "
                    "is slow).",
                    cs->lease_waits);
    }
}

static void http_families(FILE *f, const struct http_stats *h)
{
    char code[16];

    /* not governor_counter_*: promtool rejects type names in metric names, so the
     * counter store's families below are governor_visits_* too */
    counter_u64(f, "governor_visits_total",
                "Last value served by /counter: the visits it counted (GET; HEAD uses no value).",
                h->counter);
    family(f, "governor_http_requests_total", "counter",
           "HTTP responses by path and status code; path \"other\" counts unknown paths. "
           "Errors libmicrohttpd answers itself (400, 413, 414, 431) are not counted.");
    for (unsigned r = 0; r < ROUTE_COUNT; r++) {
        const char *path = r == ROUTE_NOT_FOUND ? "other" : route_path((enum route)r);
        for (unsigned i = 0; i < HTTP_NCODES; i++) {
            if (h->requests[r][i] == 0)
                continue;
            if (http_code_at(i))
                snprintf(code, sizeof(code), "%u", http_code_at(i));
            else
                app_strlcpy(code, "other", sizeof(code));
            series(f, "governor_http_requests_total", "path", path, "code", code);
            fprintf(f, "%llu\n", (unsigned long long)h->requests[r][i]);
        }
    }
}

/* ---- process metrics (the names every Prometheus client library exports) -- */

static void process_families(FILE *f, const struct app_info *app)
{
    struct metrics_process p;
    uint64_t n;

    if (metrics_process_read(&p) == 0) {
        family(f, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        double_sample(f, "process_cpu_seconds_total", NULL, NULL, p.cpu_seconds);
        gauge_u64(f, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  p.virtual_bytes);
        gauge_u64(f, "process_resident_memory_bytes", "Resident memory size in bytes.",
                  p.resident_bytes);
    }
    if (metrics_open_fds(&n) == 0)
        gauge_u64(f, "process_open_fds", "Number of open file descriptors.", n);
    if (metrics_max_fds(&n) == 0)
        gauge_u64(f, "process_max_fds", "Maximum number of open file descriptors.", n);
    family(f, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    double_sample(f, "process_start_time_seconds", NULL, NULL,
                  app->process_start_s > 0 ? app->process_start_s
                                           : (double)app->start_wall_ms / 1000.0);
}

/* ---- the policy's identity ---------------------------------------------- */

static void policy_info_family(FILE *f, const struct gov_status *st)
{
    family(f, "governor_policy_info", "gauge",
           "Always 1; the policy in force: sha256 is the hex SHA-256 of its bytes (of the "
           "embedded text when there is no file), source its path or \"embedded\".");
    series(f, "governor_policy_info", "sha256", st->policy_sha256, "source", st->policy_source);
    fputs("1\n", f);
}

/* ---- deprecated names, kept for one release (README, "Metrics") ------------ */

/* governor_memory_usage_bytes meant the policy's signal, which is not what
 * cAdvisor's container_memory_usage_bytes means (memory.current); the
 * series is governor_memory_signal_bytes now. */
static void deprecated_memory_families(FILE *f, const struct gov_status *st)
{
    gauge_u64(f, "governor_memory_usage_bytes",
              "Deprecated alias of governor_memory_signal_bytes (removed in the next release; "
              "for raw usage see governor_memory_current_bytes).",
              st->usage);
    family(f, "governor_memory_usage_ratio", "gauge",
           "Deprecated alias of governor_memory_signal_ratio (removed in the next release).");
    double_sample(f, "governor_memory_usage_ratio", NULL, NULL, st->ratio);
}

char *metrics_render(const struct gov_status *st, const struct app_info *app,
                     const struct http_stats *http, const struct counter_status *store,
                     size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    bool failed;

    if (!f)
        return NULL;
    family(f, "governor_build_info", "gauge",
           "Always 1; the version of governord in the version label.");
    u64_sample(f, "governor_build_info", "version", app->version, 1);
    family(f, "governor_process_start_time_seconds", "gauge",
           "Start time of the governord process in seconds since the Unix epoch.");
    double_sample(f, "governor_process_start_time_seconds", NULL, NULL,
                  app->process_start_s > 0 ? app->process_start_s
                                           : (double)app->start_wall_ms / 1000.0);
    process_families(f, app);
    memory_families(f, st);
    deprecated_memory_families(f, st);
    governor_families(f, st);
    counter_u64(f, "governor_collector_alloc_failures_total",
                "Blocks the collector was admitted to allocate but could not (mmap failed).",
                collector_alloc_failures(app->collector));
    policy_info_family(f, st);
    http_families(f, http);
    counter_families(f, store);
    client_families(f, app->sock);

    failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = size;
    return buf;
}

/* ---- process start time ----------------------------------------------------- */

int metrics_parse_starttime(const char *proc_stat, unsigned long long *ticks)
{
    const char *p = strrchr(proc_stat, ')');
    char *end;

    if (!p)
        return -1;
    p++;
    /* after "pid (comm)" come fields 3 (state) .. 22 (starttime) */
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        while (*p && *p != ' ')
            p++;
    }
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    *ticks = strtoull(p, &end, 10);
    if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
        return -1;
    return 0;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) < 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int metrics_process_start_time(double *out)
{
    char buf[1024];
    unsigned long long ticks;
    long hz = sysconf(_SC_CLK_TCK);
    double real, boot;
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    n = app_read_bounded(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0 || hz <= 0)
        return -1;
    if (metrics_parse_starttime(buf, &ticks) < 0)
        return -1;
    real = clock_s(CLOCK_REALTIME);
    boot = clock_s(CLOCK_BOOTTIME);
    if (real < 0 || boot < 0)
        return -1;
    *out = real - boot + (double)ticks / (double)hz;
    return 0;
}

/* ---- process figures from /proc/self (process_* families) ---------------- */

int metrics_parse_process_stat(const char *proc_stat, long hz, long page_size,
                               struct metrics_process *out)
{
    /* after "pid (comm)": utime 14, stime 15, vsize 23, rss 24 */
    unsigned long long v[25] = {0};
    const char *p = strrchr(proc_stat, ')');
    char *end;

    if (!p || hz <= 0 || page_size <= 0)
        return -1;
    p++;
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        if (field >= 14) {
            if (*p < '0' || *p > '9') {
                /* only the numeric fields we do not read may be signed */
                if (field == 14 || field == 15 || field == 23 || field == 24)
                    return -1;
                while (*p && *p != ' ')
                    p++;
                continue;
            }
            errno = 0;
            v[field] = strtoull(p, &end, 10);
            if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
                return -1;
            p = end;
        } else {
            while (*p && *p != ' ')
                p++;
        }
    }
    out->cpu_seconds = (double)(v[14] + v[15]) / (double)hz;
    out->virtual_bytes = v[23];
    out->resident_bytes = v[24] * (unsigned long long)page_size;
    return 0;
}

int metrics_process_read(struct metrics_process *out)
{
    char buf[1024];
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return metrics_parse_process_stat(buf, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), out);
}

int metrics_open_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    *out = n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
    return 0;
}

int metrics_max_fds(uint64_t *out)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    *out = (uint64_t)rl.rlim_cur;
    return 0;
}
