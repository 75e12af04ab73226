#!/usr/bin/env bash
# protocol.sh -- what the trim protocol costs (docs/protocol.md).
#
#   bench/protocol.sh [-s SECONDS] [-c SECONDS] [-r ROUNDS]
#
# 1. Shrink round trip, to a C client (libgovernor's gov_client_*, from its
#    own poll loop: bench/proto_client.c) and to a Python client
#    (clients/python/governor_client.py, its reader thread), over SECONDS
#    (default 20) each: governord ticks every 10 ms with cooldown 0 against
#    a cgroup directory held at 90% of a 1 GiB limit (level high), so it asks
#    the client to shrink at every tick; the client releases what it is asked
#    and reports holding it again.  governord measures every round trip, from
#    the shrink line queued to its `released` handled
#    (governor_client_shrink_round_trip_seconds).  Reference in the same
#    run: one shrink line over a Unix stream socket to a peer (C, then
#    Python) that reads it, parses it (Python) and writes a line back, one
#    round trip every 10 ms like the shrinks (printed back to back too).
# 2. governord's CPU (all threads) with 0, 8 and 64 idle clients
#    (registered, 64 MiB each, never asked to shrink: usage 30%), interval
#    100 ms, over SECONDS (-c, default 20) each, ROUNDS (-r, default 2)
#    times alternating; the figure is the median, and the cost of the
#    clients the difference to the 0-client run.
#
# Goals (issue 10): round trip p99 under 5 ms to the C client; 64 idle
# clients cost under 0.3% of one core.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RTT_SECONDS=20
CPU_SECONDS=20
ROUNDS=2
while getopts s:c:r:h opt; do
    case $opt in
    s) RTT_SECONDS=$OPTARG ;;
    c) CPU_SECONDS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
[ -x "$GOVERNORD" ] || make -C "$ROOT" --no-print-directory >/dev/null || die "build failed"
make -C "$ROOT" --no-print-directory build/bench/proto_client >/dev/null || die "build failed"
CLIENT=$ROOT/build/bench/proto_client
MEASURE=(/usr/bin/python3 "$BENCH_DIR/proto_measure.py")
HOLD=$((64 << 20))
echo "machine: $(machine_line)"

# ---- 1. shrink round trip ------------------------------------------------------------
"${MEASURE[@]}" cgroup "$WORK/cg-high" 0.90
printf '[governor]\ninterval_ms = 10\ncooldown_ms = 0\nclient_timeout_ms = 1000\n[collector]\nenabled = false\n' \
    >"$WORK/rtt.ini"
for kind in c python; do
    start_governord "$WORK/rtt-$kind.log" --cgroup "$WORK/cg-high" --policy "$WORK/rtt.ini" \
        --socket "$WORK/rtt-$kind.sock"
    if [ "$kind" = c ]; then
        cmd=("$CLIENT" shrink "$WORK/rtt-$kind.sock" bench-c "$HOLD")
    else
        cmd=("${MEASURE[@]}" py-client "$WORK/rtt-$kind.sock" bench-python "$HOLD")
    fi
    "${MEASURE[@]}" rtt "$GOV_PORT" "$RTT_SECONDS" "shrink round trip, $kind client" -- "${cmd[@]}" |
        tee -a "$WORK/rtt.txt"
    stop_pid "$GOV_PID"
done
"$CLIENT" echo 20000 0 | sed 's/^/reference back to back, c peer: /'
"$CLIENT" echo 5000 0 "${MEASURE[@]}" py-peer | sed 's/^/reference back to back, python peer: /'
# the reference the ratio takes: one round trip per 10 ms, as the shrinks come
"$CLIENT" echo 1000 10000 | sed 's/^/reference, c peer: /' | tee -a "$WORK/rtt.txt"
"$CLIENT" echo 1000 10000 "${MEASURE[@]}" py-peer | sed 's/^/reference, python peer: /' |
    tee -a "$WORK/rtt.txt"

# ---- 2. CPU with idle clients ------------------------------------------------------------
"${MEASURE[@]}" cgroup "$WORK/cg-idle" 0.30
printf '[governor]\ninterval_ms = 100\n[collector]\nenabled = false\n' >"$WORK/idle.ini"
for round in $(seq "$ROUNDS"); do
    for n in 0 8 64; do
        start_governord "$WORK/idle-$n-$round.log" --cgroup "$WORK/cg-idle" \
            --policy "$WORK/idle.ini" --socket "$WORK/idle-$n.sock"
        if [ "$n" -gt 0 ]; then
            # the clients wait on a pipe that ends when this script closes it
            exec {hold_fd}> >(exec "$CLIENT" idle "$WORK/idle-$n.sock" "$n" "$HOLD" >"$WORK/idle-$n-$round.out")
            for _ in $(seq 500); do
                grep -q registered "$WORK/idle-$n-$round.out" 2>/dev/null && break
                sleep 0.02
            done
            grep -q registered "$WORK/idle-$n-$round.out" || die "the $n idle clients did not register"
        fi
        sleep 1 # registration and its log lines out of the way
        "${MEASURE[@]}" cpu "$GOV_PID" "$CPU_SECONDS" "cpu, $n idle clients, round $round" |
            tee -a "$WORK/cpu.txt"
        [ "$n" -gt 0 ] && exec {hold_fd}>&-
        stop_pid "$GOV_PID"
    done
done
echo "machine after: $(machine_line)"

# ---- summary ---------------------------------------------------------------------------
/usr/bin/python3 - "$WORK/cpu.txt" "$WORK/rtt.txt" <<'PY'
import re, statistics, sys
rtt, ref = {}, {}
for line in open(sys.argv[2]):
    m = re.match(r"shrink round trip, (\w+) client: n=\d+ rate=\S+ p50_ms=(\S+) p99_ms=(\S+)", line)
    if m:
        rtt[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    m = re.match(r"reference, (\w+) peer: echo n=\d+ p50_us=(\S+) p99_us=(\S+)", line)
    if m:
        ref[m.group(1)] = (float(m.group(2)) / 1e3, float(m.group(3)) / 1e3)
for k in ("c", "python"):
    (p50, p99), (r50, r99) = rtt[k], ref[k]
    print(f"summary: shrink round trip to the {k} client: p50 {p50:.3f} ms, p99 {p99:.3f} ms; "
          f"echo reference p50 {r50:.3f} ms, p99 {r99:.3f} ms; ratio p50 {p50 / r50:.1f}, "
          f"p99 {p99 / r99:.1f}")
print(f"summary: goal C client p99 < 5 ms: {'met' if rtt['c'][1] < 5 else 'MISSED'} "
      f"({rtt['c'][1]:.3f} ms)")
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"cpu, (\d+) idle clients, round \d+: cpu_pct=(\S+)", line)
    runs.setdefault(int(m.group(1)), []).append(float(m.group(2)))
base = statistics.median(runs[0])
for n in sorted(runs):
    med = statistics.median(runs[n])
    print(f"summary: {n:2d} idle clients: {med:.4f}% of one core (median of {len(runs[n])}), "
          f"{med - base:+.4f} points vs 0 clients, ratio {med / base if base else float('nan'):.2f}")
cost = statistics.median(runs[64]) - base
print(f"summary: goal 64 idle clients < 0.3% of a core more than 0: "
      f"{'met' if cost < 0.3 else 'MISSED'} ({cost:+.4f} points)")
PY
