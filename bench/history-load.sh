#!/bin/sh
# history-load.sh -- does the live page's polling slow /counter down?
#
#   bench/history-load.sh [GOVERNORD]      (default build/governord)
#
# Starts governord on a free loopback port against a directory in cgroup v2
# formats (static figures, collector off, so nothing else moves), then runs
# wrk against /counter three times for DURATION seconds each:
#
#   alone     nothing else
#   pages     plus PAGES full fetches of /governor/history per second (curl
#             --rate, one kept-alive connection): more than PAGES open pages,
#             which fetch the whole ring once and then only what is new
#   hammer    plus one connection fetching /governor/history back to back
#             (wrk -c1): the worst case, not a real use
#
# The three runs are repeated ROUNDS times, interleaved so that a change in
# the machine's load hits all cases alike; it prints the median rate of each
# case and its ratio to `alone`.  The history ring fills at one sample per
# second; FILL=900 waits until it is full (15 minutes) so the fetches are as
# large as they get.
#
# Environment: DURATION (10 s), CONNS (50), THREADS (2), PAGES (10),
# ROUNDS (3), FILL (seconds to wait before measuring, 0).  Needs wrk and
# curl (Debian packages wrk, curl).
set -eu

GOVERNORD=${1:-build/governord}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
PAGES=${PAGES:-10}
FILL=${FILL:-0}
ROUNDS=${ROUNDS:-3}

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "history-load: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$GOVERNORD" ] || { echo "history-load: $GOVERNORD not built (make)" >&2; exit 1; }

tmp=$(mktemp -d "/tmp/governord-history-load-$$-XXXXXX")
pid=""
poller=""
cleanup() {
    [ -n "$poller" ] && kill "$poller" 2>/dev/null || true
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir "$tmp/cg" "$tmp/policy"
printf '419430400\n' > "$tmp/cg/memory.current"     # 400Mi
printf '1073741824\n' > "$tmp/cg/memory.max"        # 1Gi
printf 'max\n' > "$tmp/cg/memory.high"
printf 'anon 314572800\nfile 104857600\nkernel 0\ninactive_anon 314572800\nactive_anon 0\ninactive_file 83886080\nactive_file 20971520\n' \
    > "$tmp/cg/memory.stat"
printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n' > "$tmp/cg/memory.events"
printf '[collector]\nenabled = false\n' > "$tmp/policy/policy.ini"

"$GOVERNORD" --listen 127.0.0.1:0 --cgroup "$tmp/cg" --policy "$tmp/policy/policy.ini" \
    --log-format json > "$tmp/log" 2>&1 &
pid=$!
port=""
for _ in $(seq 50); do
    port=$(sed -n 's/.*"event":"start".*"port":\([0-9]*\).*/\1/p' "$tmp/log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "history-load: governord did not start:" >&2; cat "$tmp/log" >&2; exit 1; }
base="http://127.0.0.1:$port"
[ "$FILL" -gt 0 ] && { echo "waiting ${FILL}s for the history to fill"; sleep "$FILL"; }

rate() { # wrk output -> requests/s
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'
}
counter() {
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$base/counter" | rate
}

median() { # numbers on stdin -> their median
    sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

: > "$tmp/alone"; : > "$tmp/pages"; : > "$tmp/hammer"; : > "$tmp/hrate"
for round in $(seq "$ROUNDS"); do
    counter >> "$tmp/alone"

    n=$((PAGES * (DURATION + 5)))
    curl -s -o /dev/null --rate "$PAGES/s" "$base/governor/history?since=[1-$n]" &
    poller=$!
    sleep 1
    counter >> "$tmp/pages"
    kill "$poller" 2>/dev/null || true
    wait "$poller" 2>/dev/null || true
    poller=""

    wrk -t1 -c1 -d"$((DURATION + 2))s" "$base/governor/history" > "$tmp/hammer.out" &
    poller=$!
    sleep 1
    counter >> "$tmp/hammer"
    wait "$poller" || true
    poller=""
    rate < "$tmp/hammer.out" >> "$tmp/hrate"
    echo "round $round: alone $(tail -1 "$tmp/alone"), pages $(tail -1 "$tmp/pages"), hammer $(tail -1 "$tmp/hammer") /counter/s"
done

bytes=$(curl -s "$base/governor/history" | wc -c)
samples=$(curl -s "$base/governor/history" | grep -o '"time_ms"' | wc -l)
echo "governord $("$GOVERNORD" --version | cut -d' ' -f2); wrk -t$THREADS -c$CONNS -d${DURATION}s /counter, median of $ROUNDS rounds"
echo "/governor/history at the end: $samples samples, $bytes bytes"
awk -v a="$(median < "$tmp/alone")" -v p="$(median < "$tmp/pages")" -v h="$(median < "$tmp/hammer")" \
    -v hr="$(median < "$tmp/hrate")" -v pg="$PAGES" 'BEGIN {
    printf "%-8s %12s %8s\n", "case", "/counter/s", "ratio"
    printf "%-8s %12.0f %8.3f\n", "alone", a, 1
    printf "%-8s %12.0f %8.3f   (%d full /governor/history fetches per second)\n", "pages", p, p / a, pg
    printf "%-8s %12.0f %8.3f   (/governor/history back to back: %.0f/s)\n", "hammer", h, h / a, hr
}'
