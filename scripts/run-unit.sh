#!/bin/sh
# run-unit.sh -- run cmocka test binaries, report, and fail if any failed.
# Each binary prints cmocka's own summary; the last line sums them up.
set -u
passed=0
failed=0
for t in "$@"; do
    if "$t"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $t" >&2
    fi
done
echo "unit test programs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
