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
 * Signals are blocked in every thread and taken with sigwaitinfo(), so no
 * handler runs in async-signal context. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "duration.h"
#include "embedded.h"
#include "governor.h"
#include "http.h"
#include "metrics.h"
#include "render.h"
#include "util.h"

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
    uint64_t shutdown_delay_ms; /* --shutdown-delay */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: governord [OPTIONS]\n"
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
            "      --shutdown-delay DURATION  after SIGTERM, fail /readyz and keep serving\n"
            "                           for DURATION (2s, 500ms) before stopping\n"
            "                           [GOVERNOR_SHUTDOWN_DELAY] (default 0)\n"
            "      --check-policy FILE  validate FILE ('-' for stdin); print the effective\n"
            "                           policy and exit 0, or the errors and exit 1\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "Signals: SIGHUP reloads the policy; SIGTERM/SIGINT stop gracefully.\n",
            DEFAULT_LISTEN, DEFAULT_POLICY);
}

static int parse_threads(const char *s, unsigned *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || *end || end == s || n < 1 || n > 256)
        return -1;
    *out = (unsigned)n;
    return 0;
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
    enum { OPT_LOG_FORMAT = 256, OPT_LOG_LEVEL, OPT_CHECK_POLICY, OPT_SHUTDOWN_DELAY };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"policy", required_argument, NULL, 'p'},
        {"cgroup", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"check-policy", required_argument, NULL, OPT_CHECK_POLICY},
        {"shutdown-delay", required_argument, NULL, OPT_SHUTDOWN_DELAY},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *threads = env_or("GOVERNOR_THREADS", NULL);
    const char *log_format = env_or("GOVERNOR_LOG_FORMAT", "auto");
    const char *shutdown_delay = env_or("GOVERNOR_SHUTDOWN_DELAY", NULL);
    int c;

    o->listen = env_or("GOVERNOR_LISTEN", DEFAULT_LISTEN);
    o->policy = env_or("GOVERNOR_POLICY", NULL);
    o->cgroup = env_or("GOVERNOR_CGROUP", NULL);
    o->log_level = LOG_INFO;

    while ((c = getopt_long(argc, argv, "l:p:c:t:Vh", longopts, NULL)) != -1) {
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
    if (optind < argc) {
        fprintf(stderr, "governord: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (threads && parse_threads(threads, &o->threads) < 0) {
        fprintf(stderr, "governord: --threads: '%s' is not a number from 1 to 256\n", threads);
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

/* --check-policy: errors on stderr and exit 1, or the effective policy. */
static int check_policy(const char *path)
{
    struct gov_policy_errors *errs = malloc(sizeof(*errs));
    struct gov_policy p;
    int r;

    if (!errs) {
        fprintf(stderr, "governord: out of memory\n");
        return 1;
    }
    if (strcmp(path, "-") == 0) {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                char *nb;
                if (cap > GOV_POLICY_MAX_FILE) {
                    fprintf(stderr, "<stdin>: larger than %u bytes\n", GOV_POLICY_MAX_FILE);
                    free(buf);
                    free(errs);
                    return 1;
                }
                cap = cap ? cap * 2 : 4096;
                nb = realloc(buf, cap);
                if (!nb) {
                    free(buf);
                    free(errs);
                    fprintf(stderr, "governord: out of memory\n");
                    return 1;
                }
                buf = nb;
            }
            size_t n = fread(buf + len, 1, cap - len, stdin);
            if (n == 0)
                break;
            len += n;
        }
        r = gov_policy_parse_string(buf ? buf : "", len, "<stdin>", &p, errs);
        free(buf);
    } else {
        r = gov_policy_parse_file(path, &p, errs, NULL, NULL);
    }
    if (r < 0) {
        gov_policy_errors_print(errs, stderr);
        free(errs);
        return 1;
    }
    printf("; effective policy of %s\n", path);
    gov_policy_write(&p, stdout);
    free(errs);
    return 0;
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
    uint64_t end = gov_now_ms() + delay_ms;
    char msg[96];

    if (delay_ms == 0)
        return;
    http_set_draining(http);
    snprintf(msg, sizeof(msg), "%s: /readyz fails, serving for %llu ms before stopping",
             first_sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)delay_ms);
    gov_log(LOG_INFO, "shutdown_delay", msg, "{s:i}", "delay_ms", (int)delay_ms);
    sd_notify(0, "STATUS=shutdown delay: /readyz fails, still serving");
    for (;;) {
        uint64_t now = gov_now_ms();
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
               (unsigned long long)gov_now_usec());
}

static void notify_reload_end(void *ud, bool ok, uint64_t generation)
{
    (void)ud;
    sd_notifyf(0, "READY=1\nSTATUS=policy generation %llu in force%s",
               (unsigned long long)generation,
               ok ? "" : "; the new policy was rejected");
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct gov_config gcfg = {0};
    struct http_config hcfg = {0};
    struct app_info app = {0};
    struct gov *g = NULL;
    struct collector *col = NULL;
    struct http_server *http = NULL;
    sigset_t sigs;
    char err[512] = "";
    int r, exit_code = 1;

    r = parse_args(argc, argv, &o);
    if (r != 0)
        return r < 0 ? 0 : r;
    if (o.check_policy)
        return check_policy(o.check_policy);
    gov_log_setup(o.log_format, o.log_level);

    /* block the signals we wait for before any thread exists */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    app.version = GOVERNOR_VERSION;
    app.pod_name = getenv("POD_NAME");
    app.pod_namespace = getenv("POD_NAMESPACE");
    app.node_name = getenv("NODE_NAME");
    app.start_wall_ms = gov_wall_ms();
    if (metrics_process_start_time(&app.process_start_s) < 0)
        app.process_start_s = 0; /* /metrics falls back to start_wall_ms */

    gcfg.cgroup_dir = o.cgroup;
    gcfg.policy_path = choose_policy(&o);
    gcfg.embedded_policy = governord_default_policy;
    gcfg.hooks = (struct gov_hooks){.level_changed = notify_level,
                                    .reload_begin = notify_reload_begin,
                                    .reload_end = notify_reload_end};
    g = gov_new(&gcfg, err, sizeof(err));
    if (!g) {
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    col = collector_new(g);
    if (!col) {
        snprintf(err, sizeof(err), "cannot create the collector");
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    if (gov_start(g, err, sizeof(err)) < 0) {
        gov_log(LOG_ERR, "start_failed", err, NULL);
        goto out;
    }
    hcfg.listen = o.listen;
    hcfg.threads = o.threads;
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

out:
    if (exit_code != 0)
        sd_notifyf(0, "STATUS=failed to start: %s", err);
    http_stop(http, SHUTDOWN_GRACE_MS);
    collector_stop(col);
    gov_stop(g);
    collector_free(col);
    gov_free(g);
    if (exit_code == 0)
        gov_log(LOG_INFO, "exit", "governord stopped", NULL);
    return exit_code;
}
