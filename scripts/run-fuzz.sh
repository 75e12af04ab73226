#!/bin/sh
# run-fuzz.sh -- run each libFuzzer target for a while, regressions first.
#
#   scripts/run-fuzz.sh SECONDS BINARY...
#
# For a target build/fuzz/fuzz_NAME: every file in tests/fuzz/regressions/NAME
# (inputs that once crashed) is replayed, then the fuzzer runs for SECONDS
# seconds on a working copy of the corpus (build/fuzz/corpus-NAME, seeded from
# tests/fuzz/corpus/NAME) with tests/fuzz/NAME.dict when there is one.  A
# crash leaves its input as build/fuzz/NAME-crash-* (copy it into the
# regressions directory when fixing it).  The last line sums up.
set -u
seconds=$1
shift
passed=0
failed=0
for bin in "$@"; do
    name=${bin##*/fuzz_}
    work=build/fuzz/corpus-$name
    mkdir -p "$work"
    ok=true
    if [ -d "tests/fuzz/regressions/$name" ]; then
        # shellcheck disable=SC2046
        "$bin" $(find "tests/fuzz/regressions/$name" -type f | sort) >"build/fuzz/$name-regressions.log" 2>&1 ||
            { ok=false; tail -30 "build/fuzz/$name-regressions.log"; }
    fi
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    if $ok; then
        # shellcheck disable=SC2086
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="build/fuzz/$name-" -print_final_stats=1 $dict \
            "$work" "tests/fuzz/corpus/$name" >"build/fuzz/$name.log" 2>&1 ||
            { ok=false; tail -40 "build/fuzz/$name.log"; }
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build/fuzz/$name.log" 2>/dev/null)
    cov=$(grep -o 'cov: [0-9]*' "build/fuzz/$name.log" 2>/dev/null | tail -1)
    if $ok; then
        passed=$((passed + 1))
        echo "PASS fuzz_$name: ${runs:-?} runs in ${seconds}s, $cov, corpus $(ls "$work" | wc -l) inputs"
    else
        failed=$((failed + 1))
        echo "FAIL fuzz_$name (log: build/fuzz/$name.log)"
    fi
done
echo "fuzz targets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
