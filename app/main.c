/* main.c -- governord: command line, wiring, signals.
 *
 * governord is one process with three jobs: the governor thread (governor
 * library) keeps memory below the cgroup limit, the collector thread grows a
 * buffer the way the seed application did, and the HTTP server answers
 * /counter and reports what the governor does.  This file parses the command
 * line, starts the three in order (governor, then HTTP, then collector, so
 * nothing allocates before it is governed), and then waits for signals on the
 * main thread:
 *
 *   SIGHUP            reload the policy
 *   SIGTERM, SIGINT   stop accepting, finish in-flight responses, exit 0;
 *                     with --shutdown-delay, first fail /readyz and keep
 *                     serving everything else for the delay (a second
 *                     SIGTERM/SIGINT ends the delay at once)
 *
 * With `-- CMD [ARGS...]` (supervisor mode, app/supervise.c) governord also
 * runs CMD as its child: SIGTERM, SIGINT, SIGQUIT, SIGUSR1 and SIGUSR2 go to
 * the child, SIGCHLD reaps, and governord stops when the child is gone,
 * with the child's exit status.
 *
 * Signals are blocked in every thread and taken with sigwaitinfo(), so no
 * handler runs in async-signal context. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "counter.h"
#include "duration.h"
#include "embedded.h"
#include "governor.h"
#include "http.h"
#include "metrics.h"
#include "render.h"
#include "supervise.h"
#include "common.h"

#define DEFAULT_LISTEN "0.0.0.0:8080"
#define DEFAULT_POLICY "/etc/governor/policy.ini"
#define SHUTDOWN_GRACE_MS 3000

struct options {
    const char *listen;
    const char *policy;     /* NULL: DEFAULT_POLICY if present, else embedded */
    const char *cgroup;
    const char *check_policy;
    unsigned threads;
    enum gov_log_format log_format;
    int log_level;
    /* /counter's store (app/counter.h) */
    const char *counter;           /* URL; NULL = memory: */
    const char *counter_password_file;
    unsigned counter_lease, counter_timeout_ms;
    /* supervisor mode */
    char **command;             /* CMD [ARGS...] after "--", NULL-terminated; NULL: none */
    const char *socket;         /* GOVERNOR_SOCKET for the child; NULL: "none" */
    unsigned stop_timeout_ms;   /* SIGTERM to SIGKILL */
    uint64_t shutdown_delay_ms; /* --shutdown-delay */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: governord [OPTIONS]\n"
            "       governord [OPTIONS] -- CMD [ARGS...]\n"
            "       governord --check-policy FILE\n"
            "\n"
            "Keeps a collector's buffer below the container's memory limit and serves\n"
            "/counter, /governor, /metrics, /healthz, /readyz and / over HTTP.\n"
            "\n"
            "Options (environment variable in brackets):\n"
            "  -l, --listen ADDR:PORT   listen address [GOVERNOR_LISTEN] (default %s)\n"
            "  -p, --policy FILE        policy file, watched and reloaded [GOVERNOR_POLICY]\n"
            "                           (default %s if it exists,\n"
            "                           else the built-in policies/default.ini)\n"
            "  -c, --cgroup DIR         use DIR as the memory cgroup instead of discovering\n"
            "                           it [GOVERNOR_CGROUP]\n"
            "  -t, --threads N          HTTP worker threads, 1-256 [GOVERNOR_THREADS]\n"
            "                           (default: number of CPUs, at least 8); each\n"
            "                           thread serves at most 125 connections\n"
            "      --log-format FMT     json, text, journal or auto [GOVERNOR_LOG_FORMAT]\n"
            "                           (default auto: journal under systemd, else json)\n"
            "      --log-level LEVEL    debug, info, warning or error (default info)\n"
            "      --counter URL        where /counter's N lives [GOVERNOR_COUNTER]: memory:\n"
            "                           (default), file:PATH (survives restarts) or\n"
            "                           redis://[:PASSWORD@]HOST:PORT[/DB][?key=NAME]\n"
            "                           (shared by replicas); the Redis password may come\n"
            "                           from GOVERNOR_COUNTER_PASSWORD_FILE\n"
            "      --counter-lease K    file: values reserved per write, 1-1000000\n"
            "                           [GOVERNOR_COUNTER_LEASE] (default 1000)\n"
            "      --counter-timeout MS redis: connect and command timeout, 1-60000\n"
            "                           [GOVERNOR_COUNTER_TIMEOUT_MS] (default 1000)\n"
            "      --shutdown-delay DURATION  after SIGTERM, fail /readyz and keep serving\n"
            "                           for DURATION (2s, 500ms) before stopping\n"
            "                           [GOVERNOR_SHUTDOWN_DELAY] (default 0)\n"
            "      --check-policy FILE  validate FILE ('-' for stdin); print the effective\n"
            "                           policy and exit 0, or the errors and exit 1\n"
            "  -- CMD [ARGS...]         supervisor mode: run CMD as a child in the same\n"
            "                           cgroup, forward signals to it, reap orphans, exit\n"
            "                           with its status; the collector is then off unless\n"
            "                           the policy sets [collector] enabled\n"
            "      --socket PATH        the child's GOVERNOR_SOCKET, reserved for the trim\n"
            "                           protocol [GOVERNOR_SOCKET] ('none': not set;\n"
            "                           default %s)\n"
            "      --stop-timeout T     grace between SIGTERM and SIGKILL when the child must\n"
            "                           stop: seconds, or 500ms [GOVERNOR_STOP_TIMEOUT]\n"
            "                           (default 10s)\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "Signals: SIGHUP reloads the policy; SIGTERM/SIGINT stop gracefully.  With a\n"
            "command, SIGTERM, SIGINT, SIGQUIT, SIGUSR1 and SIGUSR2 go to the child.\n",
            DEFAULT_LISTEN, DEFAULT_POLICY, SUPERVISE_DEFAULT_SOCKET);
}

static int parse_uint_range(const char *s, long min, long max, unsigned *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || *end || end == s || n < min || n > max)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int parse_threads(const char *s, unsigned *out)
{
    return parse_uint_range(s, 1, 256, out);
}

static int parse_log_level(const char *s, int *out)
{
    static const struct { const char *name; int level; } levels[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warning", LOG_WARNING}, {"error", LOG_ERR}};
    for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
        if (strcmp(s, levels[i].name) == 0) {
            *out = levels[i].level;
            return 0;
        }
    return -1;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Parses argv into o.  Returns -1 to exit with 0 (help, version), 0 to go
 * on, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
    enum { OPT_LOG_FORMAT = 256, OPT_LOG_LEVEL, OPT_CHECK_POLICY, OPT_COUNTER, OPT_COUNTER_LEASE,
           OPT_COUNTER_TIMEOUT, OPT_SOCKET, OPT_STOP_TIMEOUT, OPT_SHUTDOWN_DELAY };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"policy", required_argument, NULL, 'p'},
        {"cgroup", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"check-policy", required_argument, NULL, OPT_CHECK_POLICY},
        {"counter", required_argument, NULL, OPT_COUNTER},
        {"counter-lease", required_argument, NULL, OPT_COUNTER_LEASE},
        {"counter-timeout", required_argument, NULL, OPT_COUNTER_TIMEOUT},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
        {"shutdown-delay", required_argument, NULL, OPT_SHUTDOWN_DELAY},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *threads = env_or("GOVERNOR_THREADS", NULL);
    const char *log_format = env_or("GOVERNOR_LOG_FORMAT", "auto");
    const char *counter_lease = env_or("GOVERNOR_COUNTER_LEASE", NULL);
    const char *counter_timeout = env_or("GOVERNOR_COUNTER_TIMEOUT_MS", NULL);
    const char *stop_timeout = env_or("GOVERNOR_STOP_TIMEOUT", NULL);
    const char *last_optarg = NULL; /* to tell an option's "--" from the separator */
    const char *shutdown_delay = env_or("GOVERNOR_SHUTDOWN_DELAY", NULL);
    int c;

    o->listen = env_or("GOVERNOR_LISTEN", DEFAULT_LISTEN);
    o->policy = env_or("GOVERNOR_POLICY", NULL);
    o->cgroup = env_or("GOVERNOR_CGROUP", NULL);
    o->log_level = LOG_INFO;
    o->counter = env_or("GOVERNOR_COUNTER", NULL);
    o->counter_password_file = env_or("GOVERNOR_COUNTER_PASSWORD_FILE", NULL);
    o->socket = env_or("GOVERNOR_SOCKET", SUPERVISE_DEFAULT_SOCKET);
    o->stop_timeout_ms = SUPERVISE_DEFAULT_STOP_TIMEOUT_MS;

    /* "+": stop at the first non-option, so CMD's own options are never ours */
    while ((c = getopt_long(argc, argv, "+l:p:c:t:Vh", longopts, NULL)) != -1) {
        last_optarg = optarg;
        switch (c) {
        case 'l':
            o->listen = optarg;
            break;
        case 'p':
            o->policy = optarg;
            break;
        case 'c':
            o->cgroup = optarg;
            break;
        case 't':
            threads = optarg;
            break;
        case OPT_LOG_FORMAT:
            log_format = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (parse_log_level(optarg, &o->log_level) < 0) {
                fprintf(stderr, "governord: --log-level: '%s' is not debug, info, warning or "
                                "error\n", optarg);
                return 2;
            }
            break;
        case OPT_CHECK_POLICY:
            o->check_policy = optarg;
            break;
        /* the counter store */
        case OPT_COUNTER:
            o->counter = optarg;
            break;
        case OPT_COUNTER_LEASE:
            counter_lease = optarg;
            break;
        case OPT_COUNTER_TIMEOUT:
            counter_timeout = optarg;
            break;
        case OPT_SOCKET:
            o->socket = optarg;
            break;
        case OPT_STOP_TIMEOUT:
            stop_timeout = optarg;
            break;
        case OPT_SHUTDOWN_DELAY:
            shutdown_delay = optarg;
            break;
        case 'V':
            printf("governord %s\n", GOVERNOR_VERSION);
            return -1;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    /* ---- supervisor mode: "-- CMD [ARGS...]" ---- */
    if (optind > 1 && argv[optind - 1] != last_optarg && strcmp(argv[optind - 1], "--") == 0) {
        if (optind == argc) {
            fprintf(stderr, "governord: '--' must be followed by a command\n");
            return 2;
        }
        if (o->check_policy) {
            fprintf(stderr, "governord: --check-policy runs no command\n");
            return 2;
        }
        o->command = &argv[optind];
    } else if (optind < argc) {
        fprintf(stderr, "governord: unexpected argument '%s' (a command goes after '--')\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!*o->socket) {
        fprintf(stderr, "governord: --socket: empty path (use 'none' for no socket)\n");
        return 2;
    }
    if (strcmp(o->socket, "none") == 0)
        o->socket = NULL;
    if (stop_timeout && supervise_parse_timeout(stop_timeout, &o->stop_timeout_ms) < 0) {
        fprintf(stderr, "governord: --stop-timeout: '%s' is not a duration from 0 to 3600s "
                        "(like 10, 2.5, 10s or 500ms)\n", stop_timeout);
        return 2;
    }
    if (threads && parse_threads(threads, &o->threads) < 0) {
        fprintf(stderr, "governord: --threads: '%s' is not a number from 1 to 256\n", threads);
        return 2;
    }
    /* the counter store's numbers; its URL is checked by counter_open() */
    if (counter_lease && parse_uint_range(counter_lease, 1, COUNTER_MAX_LEASE,
                                          &o->counter_lease) < 0) {
        fprintf(stderr, "governord: --counter-lease: '%s' is not a number from 1 to %u\n",
                counter_lease, COUNTER_MAX_LEASE);
        return 2;
    }
    if (counter_timeout && parse_uint_range(counter_timeout, 1, 60000,
                                            &o->counter_timeout_ms) < 0) {
        fprintf(stderr, "governord: --counter-timeout: '%s' is not a number from 1 to 60000\n",
                counter_timeout);
        return 2;
    }
    if (shutdown_delay) {
        const char *why = "";
        if (duration_parse_ms(shutdown_delay, &o->shutdown_delay_ms, &why) < 0) {
            fprintf(stderr, "governord: --shutdown-delay: '%s': %s (e.g. 2s, 500ms, 0)\n",
                    shutdown_delay, why);
            return 2;
        }
    }
    if (gov_log_format_parse(log_format, &o->log_format) < 0) {
        fprintf(stderr, "governord: --log-format: '%s' is not json, text, journal or auto\n",
                log_format);
        return 2;
    }
    return 0;
}

/* --check-policy: errors on stderr and exit 1, or the effective policy
 * (the library's sections and governord's [collector]). */
static int check_policy(const char *path)
{
    struct gov_policy_section collector;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int r;

    if (!out) {
        fprintf(stderr, "governord: out of memory\n");
        return 1;
    }
    collector_policy_section(NULL, &collector);
    r = gov_policy_check(path, &collector, 1, out, stderr);
    if (fclose(out) != 0 || !text) {
        free(text);
        fprintf(stderr, "governord: out of memory\n");
        return 1;
    }
    if (r == 0) {
        printf("; effective policy of %s\n", path);
        fwrite(text, 1, len, stdout);
    }
    free(text);
    return r == 0 ? 0 : 1;
}

/* The policy file to use: explicit, or the default path when it exists. */
static const char *choose_policy(const struct options *o)
{
    struct stat st;
    if (o->policy)
        return o->policy;
    if (stat(DEFAULT_POLICY, &st) == 0)
        return DEFAULT_POLICY;
    return NULL;
}

/* --shutdown-delay: /readyz fails at once, everything else is served for
 * delay_ms (so that endpoints and load balancers stop sending traffic before
 * the listener closes), then the caller stops as usual.  SIGHUP still
 * reloads; a second SIGTERM or SIGINT ends the delay at once. */
static void shutdown_delay(const sigset_t *sigs, struct http_server *http, struct gov *g,
                           int first_sig, uint64_t delay_ms)
{
    uint64_t end = app_now_ms() + delay_ms;
    char msg[96];

    if (delay_ms == 0)
        return;
    http_set_draining(http);
    snprintf(msg, sizeof(msg), "%s: /readyz fails, serving for %llu ms before stopping",
             first_sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)delay_ms);
    gov_log(LOG_INFO, "shutdown_delay", msg, "{s:i}", "delay_ms", (int)delay_ms);
    sd_notify(0, "STATUS=shutdown delay: /readyz fails, still serving");
    for (;;) {
        uint64_t now = app_now_ms();
        struct timespec left;
        int sig;
        if (now >= end)
            return;
        left.tv_sec = (time_t)((end - now) / 1000);
        left.tv_nsec = (long)((end - now) % 1000) * 1000000L;
        sig = sigtimedwait(sigs, NULL, &left);
        if (sig < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue; /* EAGAIN: the time is up, checked above */
            gov_log(LOG_ERR, "signal", "sigtimedwait failed", NULL);
            return;
        }
        if (sig == SIGHUP) {
            gov_log(LOG_INFO, "signal", "SIGHUP: reloading the policy", NULL);
            gov_request_reload(g);
            continue;
        }
        gov_log(LOG_INFO, "signal", sig == SIGTERM ? "second SIGTERM: stopping now"
                                                   : "second SIGINT: stopping now", NULL);
        return;
    }
}

/* ---- sd_notify -------------------------------------------------------------
 * Every call is a no-op without NOTIFY_SOCKET (as in a pod).  The hooks run
 * on the governor thread; sd_notify() opens its own socket per call, so
 * calls from the main thread and the governor thread never share state. */

/* "level normal, usage 100Mi of 1Gi" */
static void level_text(enum gov_level level, uint64_t usage, uint64_t limit, char *buf,
                       size_t len)
{
    char u[16], l[16];
    snprintf(buf, len, "level %s, usage %s of %s", gov_level_name(level),
             gov_quantity_format(usage, u, sizeof(u)), gov_quantity_format(limit, l, sizeof(l)));
}

/* STATUS= on every level change. */
static void notify_level(void *ud, enum gov_level from, enum gov_level to, uint64_t usage,
                         uint64_t limit)
{
    char text[96];
    (void)ud;
    (void)from;
    level_text(to, usage, limit, text, sizeof(text));
    sd_notifyf(0, "STATUS=%s", text);
}

/* RELOADING=1 with the CLOCK_MONOTONIC time, which systemd 253+ uses to
 * match the reload to its SIGHUP (older versions ignore the field). */
static void notify_reload_begin(void *ud)
{
    (void)ud;
    sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the policy\nMONOTONIC_USEC=%llu",
               (unsigned long long)app_now_usec());
}

static void notify_reload_end(void *ud, bool ok, uint64_t generation)
{
    (void)ud;
    sd_notifyf(0, "READY=1\nSTATUS=policy generation %llu in force%s",
               (unsigned long long)generation,
               ok ? "" : "; the new policy was rejected");
}

/* ---- supervisor mode: the child's life -----------------------------------
 * main() spawns the child once everything else runs (so /counter answers and
 * the policy is in force before the app's first instruction) and then takes
 * signals here instead of in its own loop. */

/* The cgroup's OOM kill count as the governor last read it. */
static uint64_t oom_kills_now(struct gov *g, uint64_t *tick_ms, uint32_t *interval_ms)
{
    struct gov_status *st = malloc(sizeof(*st));
    uint64_t n = 0;
    if (!st)
        return 0;
    gov_status(g, st);
    n = st->sample.oom_kills;
    if (tick_ms)
        *tick_ms = st->sample_ok ? st->last_tick_ms : 0;
    if (interval_ms)
        *interval_ms = st->policy.interval_ms;
    free(st);
    return n;
}

/* The child died of SIGKILL: was it the kernel's OOM killer?  The cgroup's
 * oom_kill counter goes up when the kernel picks its victim, before the
 * victim can be reaped, so the first governor sample taken after the reap
 * tells.  Waits for one, at most max(2 s, 3 intervals); *after receives the
 * count seen. */
static bool child_oom_killed(struct gov *g, uint64_t before, uint64_t *after)
{
    uint64_t reaped = app_now_ms(), tick = 0;
    uint32_t interval = 0;
    uint64_t deadline;

    *after = oom_kills_now(g, &tick, &interval);
    deadline = reaped + MAX(2000u, 3u * interval);
    while (tick <= reaped && app_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        *after = oom_kills_now(g, &tick, NULL);
    }
    return *after > before;
}

/* Logs how the child ended and returns governord's exit status. */
static int child_ended(const struct supervise *sv, struct gov *g, uint64_t oom_before)
{
    char how[96];
    int code = supervise_exit_code(sv->wstatus);
    supervise_describe(sv->wstatus, how, sizeof(how));
    if (WIFSIGNALED(sv->wstatus) && WTERMSIG(sv->wstatus) == SIGKILL && !sv->killed) {
        uint64_t after;
        if (child_oom_killed(g, oom_before, &after)) {
            gov_log(LOG_ERR, "child_exit",
                    "the child was killed by the kernel's OOM killer (memory limit reached)",
                    "{s:i, s:s, s:i, s:b, s:I}", "pid", (int)sv->pid, "how", how, "exit_code",
                    code, "oom", 1, "oom_kills", (json_int_t)after);
            return code;
        }
    }
    gov_log(code == 0 ? LOG_INFO : LOG_WARNING, "child_exit",
            sv->killed ? "the child was SIGKILLed after the grace period" : "the child ended",
            "{s:i, s:s, s:i, s:b}", "pid", (int)sv->pid, "how", how, "exit_code", code, "oom", 0);
    return code;
}

/* Takes signals until the child is gone; returns governord's exit status.
 * From the first SIGTERM/SIGINT on, /readyz fails (the pod leaves the
 * endpoints while the child drains; --shutdown-delay is for governord's own
 * stop, the child decides how long its drain takes). */
static int supervise_loop(struct supervise *sv, const sigset_t *sigs, struct gov *g,
                          struct http_server *http, uint64_t oom_before)
{
    for (;;) {
        siginfo_t si;
        long wait_ms = supervise_timeout_ms(sv);
        int sig;
        if (wait_ms >= 0) {
            struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
            sig = sigtimedwait(sigs, &si, &ts);
        } else {
            sig = sigwaitinfo(sigs, &si);
        }
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* the grace period is over */
                supervise_kill(sv);
                continue;
            }
            gov_log(LOG_ERR, "signal", "sigwaitinfo failed: killing the child", "{s:s}",
                    "error", strerror(errno));
            supervise_kill(sv);
            while (waitpid(sv->pid, &sv->wstatus, 0) < 0 && errno == EINTR) {
            }
            sv->exited = true;
            return child_ended(sv, g, oom_before);
        }
        if (sig == SIGHUP) {
            gov_log(LOG_INFO, "signal", "SIGHUP: reloading the policy", NULL);
            gov_request_reload(g);
        } else if (sig == SIGCHLD) {
            if (supervise_reap(sv))
                return child_ended(sv, g, oom_before);
        } else if (supervise_forwards(sig)) {
            if (sig == SIGTERM || sig == SIGINT)
                http_set_draining(http);
            supervise_forward(sv, sig, sig == SIGTERM || sig == SIGINT);
        }
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct gov_config gcfg = {0};
    struct gov_policy_section collector_section;
    struct http_config hcfg = {0};
    struct app_info app = {0};
    struct gov *g = NULL;
    struct collector *col = NULL;
    struct http_server *http = NULL;
    struct counter_store *counter = NULL;
    sigset_t sigs;
    char err[512] = "";
    int r, exit_code = 1;
    struct supervise sv = {0};
    bool stopped = false; /* a clean stop, whatever the exit status */

    /* First thing: block the signals main waits for.  A SIGTERM that
     * arrives at any moment of start-up (Kubernetes may send one right after
     * the exec) then stays pending until sigwaitinfo() below takes it, and
     * the stop is graceful; every thread started later inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    supervise_add_signals(&sigs); /* until we know whether there is a child */
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "governord: cannot set up signals: %s\n", strerror(errno));
        return 1;
    }

    r = parse_args(argc, argv, &o);
    if (r != 0)
        return r < 0 ? 0 : r;
    /* ---- supervisor mode: signals ----
     * Without a child, SIGQUIT, SIGUSR1 and SIGUSR2 keep their default
     * actions: unblocked again before any thread starts.  With one, become
     * the reaper of its orphans before anything can be orphaned. */
    if (!o.command) {
        sigset_t extra;
        sigemptyset(&extra);
        supervise_add_signals(&extra);
        sigprocmask(SIG_UNBLOCK, &extra, NULL);
        for (int i = 1; i < NSIG; i++)
            if (sigismember(&extra, i) == 1)
                sigdelset(&sigs, i);
    } else if (supervise_become_subreaper() < 0) {
        fprintf(stderr, "governord: cannot become the reaper of orphans: %s\n",
                strerror(errno));
        return 1;
    }
    if (o.check_policy) {
        /* a one-shot command: Ctrl-C and SIGTERM end it as usual */
        sigprocmask(SIG_UNBLOCK, &sigs, NULL);
        return check_policy(o.check_policy);
    }
    gov_log_setup(o.log_format, o.log_level);

    app.version = GOVERNOR_VERSION;
    app.pod_name = getenv("POD_NAME");
    app.pod_namespace = getenv("POD_NAMESPACE");
    app.node_name = getenv("NODE_NAME");
    app.start_wall_ms = app_wall_ms();
    if (metrics_process_start_time(&app.process_start_s) < 0)
        app.process_start_s = 0; /* /metrics falls back to start_wall_ms */

    /* the counter store first: a bad URL, or a counter file that is corrupt,
     * truncated, from the future or not writable, is a usage error (exit 2)
     * before anything else starts */
    {
        struct counter_config ccfg = {.url = o.counter,
                                      .password_file = o.counter_password_file,
                                      .lease = o.counter_lease,
                                      .timeout_ms = o.counter_timeout_ms,
                                      .pool = o.threads};
        counter = counter_open(&ccfg, err, sizeof(err));
        if (!counter) {
            gov_log(LOG_ERR, "start_failed", err, NULL);
            sd_notifyf(0, "STATUS=failed to start: %s", err);
            return 2;
        }
    }

    /* the collector first: the policy's [collector] section is its own */
    col = collector_new(o.command != NULL); /* with a child: off unless the policy enables it */
    if (!col) {
        snprintf(err, sizeof(err), "cannot create the collector");
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    collector_policy_section(col, &collector_section);
    gcfg.cgroup_dir = o.cgroup;
    gcfg.policy_path = choose_policy(&o);
    gcfg.embedded_policy = governord_default_policy;
    gcfg.sections = &collector_section;
    gcfg.nsections = 1;
    gcfg.hooks = (struct gov_hooks){.level_changed = notify_level,
                                    .reload_begin = notify_reload_begin,
                                    .reload_end = notify_reload_end};
    g = gov_new(&gcfg, err, sizeof(err));
    if (!g) {
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    if (collector_attach(col, g) < 0) {
        snprintf(err, sizeof(err), "cannot register the collector");
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    app.collector = col; /* its failure count, for /governor and /metrics */
    if (gov_start(g, err, sizeof(err)) < 0) {
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    hcfg.listen = o.listen;
    hcfg.threads = o.threads;
    hcfg.counter = counter;
    http = http_start(&hcfg, g, &app, err, sizeof(err));
    if (!http) {
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    if (collector_start(col) < 0) {
        snprintf(err, sizeof(err), "cannot start the collector thread");
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    {
        struct gov_status *st = malloc(sizeof(*st));
        char text[96] = "governing";  /* without memory for a snapshot */
        if (st) {
            gov_status(g, st);
            gov_log(LOG_INFO, "start", "governord listening", "{s:s, s:s, s:i, s:s, s:s, s:s}",
                    "version", GOVERNOR_VERSION, "listen", o.listen, "port",
                    (int)http_port(http), "policy", st->policy_source, "cgroup_version",
                    gov_cg_version_name(st->cgroup.version), "cgroup", st->cgroup.how);
            if (st->sample_ok)
                level_text(st->level, st->usage, st->limit, text, sizeof(text));
            else
                snprintf(text, sizeof(text), "paused: %.80s", st->sample_error);
            free(st);
        }
        /* the socket listens and a policy is in force */
        sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%lu", text, (unsigned long)getpid());
    }

    /* ---- supervisor mode: run the child until it is gone ---- */
    if (o.command) {
        uint64_t oom_before = oom_kills_now(g, NULL, NULL);
        sv.stop_timeout_ms = o.stop_timeout_ms;
        r = supervise_spawn(&sv, o.command, o.socket, err, sizeof(err));
        if (r != 0) {
            gov_log(LOG_ERR, "child_start_failed", err, "{s:s, s:i}", "command", o.command[0],
                    "exit_code", r);
            exit_code = r;
            goto out;
        }
        gov_log(LOG_INFO, "child_start", "child started", "{s:i, s:s, s:s?, s:I}", "pid",
                (int)sv.pid, "command", o.command[0], "socket", o.socket, "stop_timeout_ms",
                (json_int_t)sv.stop_timeout_ms);
        exit_code = supervise_loop(&sv, &sigs, g, http, oom_before);
        gov_log(LOG_INFO, "stop", "the child is gone: stopping", "{s:i}", "exit_code",
                exit_code);
        sd_notify(0, "STOPPING=1\nSTATUS=stopping: the child is gone");
        stopped = true;
        goto out;
    }

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&sigs, &si);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            gov_log(LOG_ERR, "signal", "sigwaitinfo failed", NULL);
            break;
        }
        if (sig == SIGHUP) {
            gov_log(LOG_INFO, "signal", "SIGHUP: reloading the policy", NULL);
            gov_request_reload(g);
            continue;
        }
        shutdown_delay(&sigs, http, g, sig, o.shutdown_delay_ms);
        gov_log(LOG_INFO, "stop", sig == SIGTERM ? "SIGTERM: stopping" : "SIGINT: stopping",
                NULL);
        break;
    }
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    exit_code = 0;
    stopped = true;

out:
    if (!stopped)
        sd_notifyf(0, "STATUS=failed to start: %s", err);
    http_stop(http, SHUTDOWN_GRACE_MS);
    collector_stop(col);
    if (!g || gov_stop(g)) {
        collector_free(col);
        gov_free(g);
    } else if (exit_code == 0) {
        exit_code = 1; /* the governor thread may still call the collector: keep both */
    }
    counter_close(counter);
    if (stopped)
        gov_log(LOG_INFO, "exit", "governord stopped", "{s:i}", "exit_code", exit_code);
    return exit_code;
}
