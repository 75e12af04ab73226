#!/bin/sh
# valgrind-governord.sh -- governord under valgrind memcheck, for tests.
#
# `make test-valgrind` points the integration suite's GOVERNORD at this
# script; it execs valgrind in the same process (so the test's PID, signals
# and /proc/<pid>/fd are the daemon's), with
#   GOVERNORD_BIN     the real binary
#   VALGRIND_LOG_DIR  where each run writes governord-<pid>.log (empty when clean)
# Any memory error or a definite/indirect leak makes the exit status 99,
# which the suite's `daemons` fixture reports as a failure.
here=$(cd "$(dirname "$0")" && pwd)
exec valgrind --quiet --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
    --suppressions="$here/../tests/valgrind.supp" \
    --log-file="${VALGRIND_LOG_DIR:-/tmp}/governord-%p.log" \
    "${GOVERNORD_BIN:?GOVERNORD_BIN: the governord binary}" "$@"
