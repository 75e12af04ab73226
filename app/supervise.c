/* supervise.c -- supervisor mode: spawn, reap, forward, stop.
 *
 * governord runs `CMD [ARGS...]` as its child when given `-- CMD`.  The child
 * is started with fork() and execvpe(): a clean signal mask and default
 * dispositions for every signal (governord blocks the signals it takes with
 * sigwaitinfo() and ignores SIGPIPE, and both would otherwise be inherited
 * across exec; posix_spawn cannot reset glibc's internal signals, which it
 * leaves ignored), its own stdin/stdout/stderr inherited and every other
 * descriptor closed, and GOVERNOR_SOCKET in its environment.  A failed exec
 * sends its errno back through a close-on-exec pipe, so "not found" and "not
 * executable" are told apart and become 127 and 126, as a shell would exit.
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
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "governor.h"
#include "common.h"

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

/* The child between fork() and exec: only system calls (the parent has
 * threads, so no lock may be taken here).  Every disposition goes back to
 * SIG_DFL through the raw system call, because glibc's sigaction() refuses
 * its two internal signals (32 and 33); an all-zero kernel sigaction is
 * SIG_DFL with no flags and an empty mask on every architecture. */
static void child_exec(char *const argv[], char **env, int errfd) __attribute__((noreturn));
static void child_exec(char *const argv[], char **env, int errfd)
{
    static const unsigned long zero[8]; /* larger than any kernel sigaction */
    sigset_t none;
    int e;

    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, zero, NULL, (size_t)(NSIG / 8));
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* every descriptor but 0-2 and errfd (close-on-exec) */
    if (errfd > 3)
        close_range(3, (unsigned)errfd - 1, 0);
    close_range((unsigned)errfd + 1, ~0u, 0);
    execvpe(argv[0], argv, env);
    e = errno;
    if (write(errfd, &e, sizeof(e)) < 0) {
        /* the parent then sees no error and reports the exit status 127 */
    }
    _exit(127);
}

int supervise_spawn(struct supervise *s, char *const argv[], const char *socket, char *err,
                    size_t errlen)
{
    char **env = supervise_child_env(environ, socket);
    int pfd[2], child_errno = 0;
    ssize_t n;
    pid_t pid;

    if (!env) {
        snprintf(err, errlen, "cannot start %s: out of memory", argv[0]);
        return 1;
    }
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot start %s: pipe: %s", argv[0], strerror(errno));
        supervise_env_free(env, socket);
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child_exec(argv, env, pfd[1]);
    }
    child_errno = errno;
    close(pfd[1]);
    supervise_env_free(env, socket);
    if (pid < 0) {
        close(pfd[0]);
        snprintf(err, errlen, "cannot start %s: fork: %s", argv[0], strerror(child_errno));
        return 1;
    }
    /* the write end closes at exec: 0 bytes is success, an int is exec's errno */
    do
        n = read(pfd[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == (ssize_t)sizeof(child_errno)) {
        int code = supervise_spawn_error_code(child_errno);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        snprintf(err, errlen, "cannot start %s: %s%s", argv[0], strerror(child_errno),
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
        s->stop_deadline_ms = app_now_ms() + s->stop_timeout_ms;
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
    now = app_now_ms();
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
