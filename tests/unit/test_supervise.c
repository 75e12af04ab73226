/* test_supervise.c -- supervisor mode's pure helpers, and one real spawn.
 *
 * The helpers decide governord's exit status and log lines from a wait
 * status, a failed exec's errno, the grace period's syntax and the child's
 * environment; the last tests start real processes through supervise_spawn()
 * and reap them with supervise_reap(), as main.c's signal loop does. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "supervise.h"

static void exit_code_is_the_childs_or_128_plus_signal(void **state)
{
    (void)state;
    assert_int_equal(supervise_exit_code(W_EXITCODE(0, 0)), 0);
    assert_int_equal(supervise_exit_code(W_EXITCODE(3, 0)), 3);
    assert_int_equal(supervise_exit_code(W_EXITCODE(255, 0)), 255);
    assert_int_equal(supervise_exit_code(W_EXITCODE(0, SIGKILL)), 137);
    assert_int_equal(supervise_exit_code(W_EXITCODE(0, SIGTERM)), 143);
    assert_int_equal(supervise_exit_code(W_EXITCODE(0, SIGSEGV) | 0x80), 139); /* core */
    assert_int_equal(supervise_exit_code(W_STOPCODE(SIGSTOP)), 1);
}

static void describes_a_wait_status(void **state)
{
    char buf[96];
    (void)state;
    supervise_describe(W_EXITCODE(3, 0), buf, sizeof(buf));
    assert_string_equal(buf, "exited with status 3");
    supervise_describe(W_EXITCODE(0, SIGKILL), buf, sizeof(buf));
    assert_string_equal(buf, "killed by signal 9 (SIGKILL)");
    supervise_describe(W_EXITCODE(0, SIGSEGV) | 0x80, buf, sizeof(buf));
    assert_string_equal(buf, "killed by signal 11 (SIGSEGV), core dumped");
    supervise_describe(W_EXITCODE(0, SIGTERM), buf, 10); /* truncated, terminated */
    assert_string_equal(buf, "killed by");
}

static void spawn_errors_map_to_shell_codes(void **state)
{
    (void)state;
    assert_int_equal(supervise_spawn_error_code(ENOENT), 127);
    assert_int_equal(supervise_spawn_error_code(ENOTDIR), 127);
    assert_int_equal(supervise_spawn_error_code(EACCES), 126);
    assert_int_equal(supervise_spawn_error_code(ENOEXEC), 126);
    assert_int_equal(supervise_spawn_error_code(EISDIR), 126);
}

static void forwards_exactly_the_five_signals(void **state)
{
    sigset_t set;
    (void)state;
    for (int sig = 1; sig < NSIG; sig++) {
        bool want = sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGUSR1 ||
                    sig == SIGUSR2;
        assert_int_equal(supervise_forwards(sig), want);
    }
    assert_false(supervise_forwards(SIGHUP));
    assert_false(supervise_forwards(SIGCHLD));
    sigemptyset(&set);
    supervise_add_signals(&set);
    assert_true(sigismember(&set, SIGCHLD) && sigismember(&set, SIGQUIT) &&
                sigismember(&set, SIGUSR1) && sigismember(&set, SIGUSR2));
    assert_false(sigismember(&set, SIGHUP) || sigismember(&set, SIGTERM));
}

static void parses_a_grace_period(void **state)
{
    static const struct { const char *text; int ok; unsigned ms; } cases[] = {
        {"10", 1, 10000},    {"0", 1, 0},         {"2.5", 1, 2500},   {"0.001", 1, 1},
        {"10s", 1, 10000},   {"1.25s", 1, 1250},  {"500ms", 1, 500},  {"0ms", 1, 0},
        {"3600", 1, 3600000}, {"3600000ms", 1, 3600000},
        {"3601", 0, 0},      {"3600001ms", 0, 0}, {"", 0, 0},         {"s", 0, 0},
        {"-1", 0, 0},        {"1.", 0, 0},        {".5", 0, 0},       {"0.0001", 0, 0},
        {"1.5ms", 0, 0},     {"10m", 0, 0},       {"10 s", 0, 0},     {"1e3", 0, 0},
        {"99999999999999999999", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned ms = 4242;
        int r = supervise_parse_timeout(cases[i].text, &ms);
        if (cases[i].ok) {
            assert_int_equal(r, 0);
            assert_int_equal(ms, cases[i].ms);
        } else {
            if (r != -1)
                fail_msg("'%s' was accepted as %u ms", cases[i].text, ms);
            assert_int_equal(ms, 4242);
        }
    }
    assert_int_equal(supervise_parse_timeout(NULL, NULL), -1);
}

static void child_env_replaces_governor_socket(void **state)
{
    char *env[] = {"PATH=/bin", "GOVERNOR_SOCKET=/old", "GOVERNOR_SOCKETX=keep", "A=b", NULL};
    char **out;
    (void)state;

    out = supervise_child_env(env, "/run/governor/governor.sock");
    assert_non_null(out);
    assert_string_equal(out[0], "GOVERNOR_SOCKET=/run/governor/governor.sock");
    assert_string_equal(out[1], "PATH=/bin");
    assert_string_equal(out[2], "GOVERNOR_SOCKETX=keep");
    assert_string_equal(out[3], "A=b");
    assert_null(out[4]);
    supervise_env_free(out, "/run/governor/governor.sock");

    out = supervise_child_env(env, NULL); /* --socket none: no GOVERNOR_SOCKET at all */
    assert_non_null(out);
    assert_string_equal(out[0], "PATH=/bin");
    assert_string_equal(out[1], "GOVERNOR_SOCKETX=keep");
    assert_string_equal(out[2], "A=b");
    assert_null(out[3]);
    supervise_env_free(out, NULL);

    out = supervise_child_env(NULL, "/s");
    assert_non_null(out);
    assert_string_equal(out[0], "GOVERNOR_SOCKET=/s");
    assert_null(out[1]);
    supervise_env_free(out, "/s");
}

/* Waits for SIGCHLD (blocked) and reaps until the child is gone. */
static int run_to_end(struct supervise *sv)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    while (!supervise_reap(sv))
        assert_int_equal(sigwaitinfo(&chld, NULL), SIGCHLD);
    return supervise_exit_code(sv->wstatus);
}

static void spawns_and_reaps_a_real_child(void **state)
{
    char *exit3[] = {"sh", "-c", "test \"$GOVERNOR_SOCKET\" = /x/y.sock && exit 3", NULL};
    char *killed[] = {"sh", "-c", "kill -9 $$", NULL};
    char *missing[] = {"governord-test-no-such-command", NULL};
    char *notexec[] = {"/dev/null", NULL};
    char err[256];
    sigset_t chld;
    (void)state;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    struct supervise a = {0}, b = {0}, c = {0};
    assert_int_equal(supervise_spawn(&a, exit3, "/x/y.sock", err, sizeof(err)), 0);
    assert_true(a.pid > 0);
    assert_int_equal(run_to_end(&a), 3);

    assert_int_equal(supervise_spawn(&b, killed, NULL, err, sizeof(err)), 0);
    assert_int_equal(run_to_end(&b), 128 + SIGKILL);

    assert_int_equal(supervise_spawn(&c, missing, NULL, err, sizeof(err)), 127);
    assert_non_null(strstr(err, "command not found"));
    assert_int_equal(c.pid, 0);
    assert_int_equal(supervise_spawn(&c, notexec, NULL, err, sizeof(err)), 126);
    assert_non_null(strstr(err, "not executable"));
    assert_int_equal(c.pid, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_code_is_the_childs_or_128_plus_signal),
        cmocka_unit_test(describes_a_wait_status),
        cmocka_unit_test(spawn_errors_map_to_shell_codes),
        cmocka_unit_test(forwards_exactly_the_five_signals),
        cmocka_unit_test(parses_a_grace_period),
        cmocka_unit_test(child_env_replaces_governor_socket),
        cmocka_unit_test(spawns_and_reaps_a_real_child),
    };
    return cmocka_run_group_tests_name("supervise", tests, NULL, NULL);
}
