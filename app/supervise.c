/* supervise.c -- supervisor mode: spawn, reap, forward, stop.
 *
 * governord runs `CMD [ARGS...]` as its child when given `-- CMD`.  The child
 * is started with posix_spawnp(): a clean signal mask and default dispositions
 * (governord blocks the signals it takes with sigwaitinfo() and ignores
 * SIGPIPE, and both would otherwise be inherited across exec), its own
 * stdin/stdout/stderr inherited and every other descriptor closed, and
 * GOVERNOR_SOCKET in its environment.  glibc's posix_spawn reports a failed
 * exec as an error of the call, so "not found" and "not executable" are told
 * apart here and become 127 and 126, as a shell would exit.
 *
 * Reaping is waitpid(-1, WNOHANG) in a loop after each SIGCHLD: the child's
 * status decides governord's exit status, any other process is an orphan
 * that was reparented to governord (PID 1 of a container, or a subreaper) and
 * is only reaped.  The child stays in governord's process group and signals
 * go to its PID alone, so a shell used as CMD should `exec` the app.
 *
 * All state lives in a struct supervise owned by the main thread: nothing
 * here runs in a signal handler, and no other thread touches it. */
#include "supervise.h"

#include <errno.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SOCKET_ENV "GOVERNOR_SOCKET"

extern char **environ;

/* ---- pure helpers ---------------------------------------------------------- */

int supervise_exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 1; /* stopped or continued: not an end, never passed here */
}

void supervise_describe(int wstatus, char *buf, size_t len)
{
    if (WIFEXITED(wstatus)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, len, "killed by signal %d (%s%s)%s", sig, abbrev ? "SIG" : "",
                 abbrev ? abbrev : "unknown", WCOREDUMP(wstatus) ? ", core dumped" : "");
    } else {
        snprintf(buf, len, "wait status 0x%x", (unsigned)wstatus);
    }
}

int supervise_spawn_error_code(int err)
{
    return err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP ? 127 : 126;
}

bool supervise_forwards(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGUSR1 ||
           sig == SIGUSR2;
}

void supervise_add_signals(sigset_t *set)
{
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

int supervise_parse_timeout(const char *s, unsigned *ms)
{
    uint64_t whole = 0, frac = 0, scale = 1000; /* ms per unit of whole */
    unsigned decimals = 0;
    const char *p = s;

    if (!s || *s < '0' || *s > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > SUPERVISE_MAX_STOP_TIMEOUT_MS)
            return -1;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++decimals > 3)
                return -1;
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        for (unsigned i = decimals; i < 3; i++)
            frac *= 10; /* "2.5" -> 500 ms */
    }
    if (strcmp(p, "ms") == 0) {
        if (decimals)
            return -1; /* milliseconds are whole */
        scale = 1;
    } else if (*p && strcmp(p, "s") != 0) {
        return -1;
    }
    whole = whole * scale + (scale == 1000 ? frac : 0);
    if (whole > SUPERVISE_MAX_STOP_TIMEOUT_MS)
        return -1;
    *ms = (unsigned)whole;
    return 0;
}

char **supervise_child_env(char *const *env, const char *socket)
{
    size_t n = 0, k = 0;
    char **out;

    while (env && env[n])
        n++;
    out = calloc(n + 2, sizeof(*out));
    if (!out)
        return NULL;
    if (socket) {
        size_t len = strlen(SOCKET_ENV) + 1 + strlen(socket) + 1;
        out[k] = malloc(len);
        if (!out[k]) {
            free(out);
            return NULL;
        }
        snprintf(out[k++], len, "%s=%s", SOCKET_ENV, socket);
    }
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], SOCKET_ENV "=", strlen(SOCKET_ENV) + 1) != 0)
            out[k++] = env[i];
    out[k] = NULL;
    return out;
}

void supervise_env_free(char **env, const char *socket)
{
    if (!env)
        return;
    if (socket)
        free(env[0]);
    free(env);
}

/* ---- the process side -------------------------------------------------------- */

int supervise_become_subreaper(void)
{
    if (getpid() == 1)
        return 0; /* the kernel reparents orphans of the namespace to us anyway */
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int supervise_spawn(struct supervise *s, char *const argv[], const char *socket, char *err,
                    size_t errlen)
{
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    sigset_t none, all;
    char **env = NULL;
    pid_t pid;
    int r;

    if (posix_spawnattr_init(&attr) != 0) {
        snprintf(err, errlen, "cannot start %s: out of memory", argv[0]);
        return 1;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        posix_spawnattr_destroy(&attr);
        snprintf(err, errlen, "cannot start %s: out of memory", argv[0]);
        return 1;
    }
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL); /* cannot be caught: no disposition to reset */
    sigdelset(&all, SIGSTOP);
    r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (r == 0)
        r = posix_spawnattr_setsigmask(&attr, &none);
    if (r == 0)
        r = posix_spawnattr_setsigdefault(&attr, &all);
    if (r == 0)
        r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    env = r == 0 ? supervise_child_env(environ, socket) : NULL;
    if (r != 0 || !env) {
        snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(r ? r : ENOMEM));
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        return 1;
    }
    r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, env);
    supervise_env_free(env, socket);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0) {
        int code = supervise_spawn_error_code(r);
        snprintf(err, errlen, "cannot start %s: %s%s", argv[0], strerror(r),
                 code == 127 ? " (command not found)" : " (not executable)");
        return code;
    }
    s->pid = pid;
    s->exited = false;
    return 0;
}

bool supervise_reap(struct supervise *s)
{
    for (;;) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break; /* 0: others still run; ECHILD: none left */
        if (pid == s->pid) {
            s->exited = true;
            s->wstatus = wstatus;
        } else {
            char how[64];
            supervise_describe(wstatus, how, sizeof(how));
            s->orphans_reaped++;
            gov_log(LOG_DEBUG, "orphan_reaped", "reaped an orphaned process", "{s:i, s:s}",
                    "pid", (int)pid, "how", how);
        }
    }
    return s->exited;
}

void supervise_forward(struct supervise *s, int sig, bool stop)
{
    const char *abbrev = sigabbrev_np(sig);
    char name[16];

    if (s->pid <= 0 || s->exited)
        return;
    snprintf(name, sizeof(name), "SIG%s", abbrev ? abbrev : "?");
    if (kill(s->pid, sig) < 0 && errno != ESRCH) /* ESRCH: exited, not yet reaped */
        gov_log(LOG_WARNING, "child_signal", "cannot signal the child", "{s:i, s:s, s:s}",
                "pid", (int)s->pid, "signal", name, "error", strerror(errno));
    if (stop && !s->stopping) {
        s->stopping = true;
        s->stop_deadline_ms = gov_now_ms() + s->stop_timeout_ms;
        gov_log(LOG_INFO, "child_stop", "stopping the child", "{s:i, s:s, s:I}", "pid",
                (int)s->pid, "signal", name, "stop_timeout_ms", (json_int_t)s->stop_timeout_ms);
    } else {
        gov_log(LOG_INFO, "child_signal", "signal forwarded to the child", "{s:i, s:s}", "pid",
                (int)s->pid, "signal", name);
    }
}

long supervise_timeout_ms(const struct supervise *s)
{
    uint64_t now;
    if (!s->stopping || s->killed || s->exited)
        return -1;
    now = gov_now_ms();
    return now >= s->stop_deadline_ms ? 0 : (long)(s->stop_deadline_ms - now);
}

void supervise_kill(struct supervise *s)
{
    if (s->pid <= 0 || s->exited || s->killed)
        return;
    s->killed = true;
    gov_log(LOG_WARNING, "child_kill",
            "the child ignored the stop signal for the whole grace period: SIGKILL",
            "{s:i, s:I}", "pid", (int)s->pid, "stop_timeout_ms",
            (json_int_t)s->stop_timeout_ms);
    if (kill(s->pid, SIGKILL) < 0 && errno != ESRCH)
        gov_log(LOG_ERR, "child_kill", "cannot SIGKILL the child", "{s:i, s:s}", "pid",
                (int)s->pid, "error", strerror(errno));
}
