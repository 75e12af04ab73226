/* supervise.h -- supervisor mode: governord runs a command as its child.
 *
 * `governord [OPTIONS] -- CMD [ARGS...]` starts CMD in governord's own
 * cgroup and stays its parent, so one governord governs the whole container
 * and is a correct PID 1 for it: it reaps every orphan, forwards signals to
 * the child, exits with the child's status, and stops the child (SIGTERM,
 * then SIGKILL after a grace period) when it must stop itself.
 *
 * The module has two halves: pure helpers (exit status from a wait status,
 * a wait status described in words, spawn errors as shell exit codes, the
 * child's environment, the grace period's syntax) that the unit tests call
 * directly, and the process side (spawn, reap, forward, stop) that main.c's
 * signal loop drives.  Every signal is taken by main's sigwaitinfo(): nothing
 * here runs in a signal handler. */
#ifndef APP_SUPERVISE_H
#define APP_SUPERVISE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SUPERVISE_DEFAULT_SOCKET "/run/governor/governor.sock"
#define SUPERVISE_DEFAULT_STOP_TIMEOUT_MS 10000u
#define SUPERVISE_MAX_STOP_TIMEOUT_MS 3600000u

/* The child and what governord knows about it.  Owned by the main thread. */
struct supervise {
    pid_t pid;                 /* the child; 0 before the spawn */
    bool exited;               /* reaped; wstatus is valid */
    int wstatus;               /* waitpid() status of the child */
    unsigned stop_timeout_ms;  /* grace between SIGTERM and SIGKILL */
    bool stopping;             /* governord asked the child to stop */
    uint64_t stop_deadline_ms; /* monotonic; SIGKILL when passed */
    bool killed;               /* SIGKILL sent after the grace */
    uint64_t orphans_reaped;   /* other processes reaped */
};

/* ---- pure helpers ---- */

/* governord's exit status for a child's wait status: its exit code, or
 * 128 + the signal that killed it (as a shell, tini and dumb-init do). */
int supervise_exit_code(int wstatus);

/* "exited with status 3", "killed by signal 9 (SIGKILL)" into buf. */
void supervise_describe(int wstatus, char *buf, size_t len);

/* Exit status for a command that could not be started: 127 when it was not
 * found, 126 when it was found but could not be run (as a shell does). */
int supervise_spawn_error_code(int err);

/* True for the signals forwarded to the child: SIGTERM, SIGINT, SIGQUIT,
 * SIGUSR1, SIGUSR2 (SIGHUP reloads the policy and is not forwarded). */
bool supervise_forwards(int sig);

/* Adds every signal supervisor mode takes besides SIGTERM, SIGINT and
 * SIGHUP (SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2) to set. */
void supervise_add_signals(sigset_t *set);

/* Parses a grace period: seconds with up to three decimals ("10", "2.5"),
 * or a number followed by "s" or "ms" ("10s", "500ms"); 0 to
 * SUPERVISE_MAX_STOP_TIMEOUT_MS.  Returns 0 with *ms, or -1. */
int supervise_parse_timeout(const char *s, unsigned *ms);

/* The child's environment: env without any GOVERNOR_SOCKET entry, plus
 * GOVERNOR_SOCKET=socket unless socket is NULL.  Returns a NULL-terminated
 * malloc'd array (the strings are env's, except the new entry, which is at
 * index 0 and is malloc'd too; free it with supervise_env_free), or NULL
 * when out of memory. */
char **supervise_child_env(char *const *env, const char *socket);
void supervise_env_free(char **env, const char *socket);

/* ---- the process side (main thread only) ---- */

/* Makes governord the reaper of its descendants' orphans when it is not
 * PID 1 (prctl PR_SET_CHILD_SUBREAPER).  Returns 0 or -1 with errno. */
int supervise_become_subreaper(void);

/* Starts argv[0] (searched in PATH) with a clean signal mask and default
 * dispositions, stdin/stdout/stderr inherited and every other descriptor
 * closed, and GOVERNOR_SOCKET=socket in its environment (socket NULL: none).
 * Returns 0 with s->pid set, or 126/127 (see supervise_spawn_error_code) or
 * 1 with a message in err. */
int supervise_spawn(struct supervise *s, char *const argv[], const char *socket, char *err,
                    size_t errlen);

/* Reaps every exited process without blocking (after a SIGCHLD): the child
 * sets s->exited and s->wstatus, orphans are counted and logged at debug.
 * Returns true when the child has exited. */
bool supervise_reap(struct supervise *s);

/* Forwards sig to the child.  stop: governord itself must stop, so the
 * grace period starts (once) and SIGKILL follows when it passes. */
void supervise_forward(struct supervise *s, int sig, bool stop);

/* Milliseconds until the grace period ends (0 when it has), or -1 when no
 * stop is under way. */
long supervise_timeout_ms(const struct supervise *s);

/* Called when the grace period has passed: SIGKILLs the child and logs that
 * it ignored the stop signal. */
void supervise_kill(struct supervise *s);

#endif
