#!/usr/bin/env bash
# demo.sh -- the seed's incident, replayed on this machine's real memory
# cgroup, with and without the governor (make demo).
#
# The seed app appended big blocks to a global list until the kernel
# OOM-killed the pod, and `for _ in $(seq 0 20); do curl .../counter; done`
# saw it die.  This script creates a memory-limited cgroup (cgroup v2 when
# the host's memory controller is on v2, else v1; it says which), starts
# governord in it with a seed-like collector (96 MiB blocks every 200 ms
# against a 256 MiB limit: three blocks pass it in 0.6 s), runs the seed's
# loop with timings, and prints each answer and a table of the governor's
# decisions.  Then the same run with `mode = observe` (the governor only
# records), which shows where the kernel kills the process.  It exits 0 when
# the governed run answered every request without an OOM kill and the
# observe run was OOM-killed, else 1.  The cgroup and the temporary files
# are removed on every exit path.
#
# The third part is the proof of any app (issue 10): the seed's own Flask
# app (examples/flask-seed: every /counter appends a 500 MiB block to a
# global list) in a 1 GiB cgroup, run as `governord -- python3 app.py`.
# Governed (app_governed.py: its list is the Python client's GovernedBuffer)
# it must answer the seed's loop of 20 requests 20/20 and go on answering
# for DEMO_APP_SECONDS with oom_kill 0; ungoverned (app.py) the kernel
# OOM-kills it and governord exits 137.  Both must hold for exit 0.
#
# Usage (as root): scripts/demo.sh [GOVERNORD_BINARY]   (default build/governord)
# Environment: DEMO_LIMIT (default 256M), DEMO_BLOCK (96Mi), DEMO_INTERVAL_MS (200),
#              DEMO_APP_SECONDS (60: how long the governed Flask app is requested)
set -euo pipefail

governord=${1:-build/governord}
LIMIT=${DEMO_LIMIT:-256M}
BLOCK=${DEMO_BLOCK:-96Mi}
INTERVAL_MS=${DEMO_INTERVAL_MS:-200}
APP_SECONDS=${DEMO_APP_SECONDS:-60}
APP_LIMIT=1Gi   # the seed's pod
here=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$governord" ] || die "$governord not found (run make first)"
[ "$(id -u)" -eq 0 ] || die "needs root to create a memory cgroup (try: sudo make demo)"
for t in curl jq; do
    command -v $t >/dev/null || die "needs $t (apt-get install $t, or scripts/deps.sh test)"
done
[[ "$APP_SECONDS" =~ ^[0-9]+$ ]] || die "DEMO_APP_SECONDS must be a whole number of seconds"
# the third part's Python: the first that has Flask (Debian's python3-flask)
py=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import flask' 2>/dev/null; then
        py=$(command -v "$p"); break
    fi
done
[ -n "$py" ] || die "needs Flask for python3 (apt-get install python3-flask, or scripts/deps.sh test)"

# ---- which memory controller ------------------------------------------------
# The mount of the memory controller from mountinfo: a cgroup2 mount whose
# cgroup.controllers lists memory, else a v1 cgroup mount with the memory option.
version="" mnt=""
while read -r _ _ _ _ mp _ rest; do
    fstype=${rest#*- }; fstype=${fstype%% *}
    opts=${rest##* }
    if [ "$fstype" = cgroup2 ] && grep -qw memory "$mp/cgroup.controllers" 2>/dev/null; then
        version=v2 mnt=$mp; break
    fi
    if [ "$fstype" = cgroup ] && [[ ",$opts," == *,memory,* ]] && [ -z "$version" ]; then
        version=v1 mnt=$mp
    fi
done < /proc/self/mountinfo
[ -n "$version" ] || die "no memory cgroup controller is mounted here (neither cgroup v2 nor v1)"

name=governord-demo-$$
cg=$mnt/$name
tmp=$(mktemp -d /tmp/governord-demo.XXXXXX)
pid="" job=""

# stops the daemon and removes the cgroup (after each run, and on exit)
stop_run() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    [ -n "$job" ] && { wait "$job" 2>/dev/null || true; }
    pid="" job=""
    if [ -d "$cg" ]; then
        # what is left in our cgroup (a child governord could not stop)
        while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < "$cg/cgroup.procs"
        for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
        [ -d "$cg" ] && echo "demo: could not remove $cg" >&2
    fi
    return 0
}
cleanup() {
    stop_run
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bytes() { numfmt --from=iec "${1%i}"; }
mi() { echo "$(( ($1 + 524288) / 1048576 ))Mi"; }

# cgroup files by version
if [ $version = v2 ]; then
    f_usage=memory.current f_limit=memory.max f_peak=memory.peak
    # the parent must hand the memory controller down
    grep -qw memory "$mnt/cgroup.subtree_control" ||
        echo +memory > "$mnt/cgroup.subtree_control" ||
        die "cannot enable the memory controller in $mnt/cgroup.subtree_control"
else
    f_usage=memory.usage_in_bytes f_limit=memory.limit_in_bytes f_peak=memory.max_usage_in_bytes
fi
oom_kills() {
    if [ $version = v2 ]; then awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events"
    else awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control"; fi
}

# run MODE: one run of the seed's loop against governord in a fresh cgroup;
# sets ANSWERS, OOMS, PEAK, STATUS (the daemon's exit status or "alive").
run() {
    local mode=$1 port="" t0 body t lat use maxuse
    mkdir "$cg"
    bytes "$LIMIT" > "$cg/$f_limit"
    # no swap to escape into: the limit must bite as it does in a pod
    if [ $version = v2 ] && [ -e "$cg/memory.swap.max" ]; then echo 0 > "$cg/memory.swap.max"; fi
    if [ $version = v1 ] && [ -e "$cg/memory.memsw.limit_in_bytes" ]; then
        bytes "$LIMIT" > "$cg/memory.memsw.limit_in_bytes"
    fi
    cat > "$tmp/policy.ini" <<EOF
[governor]
mode = $mode
[collector]
block_size = $BLOCK
interval_ms = $INTERVAL_MS
EOF
    : > "$tmp/log"
    rm -f "$tmp/pid" "$tmp/status"
    # the inner subshell moves itself into the cgroup and becomes governord;
    # the outer one keeps its exit status (and bash's "Killed" notice quiet)
    ( set +e
      (echo "$BASHPID" > "$cg/cgroup.procs" && echo "$BASHPID" > "$tmp/pid" &&
          exec "$governord" --listen 127.0.0.1:0 --policy "$tmp/policy.ini" 2> "$tmp/log")
      echo $? > "$tmp/status" ) 2>/dev/null &
    job=$!
    for _ in $(seq 100); do
        port=$(grep '"event":"start"' "$tmp/log" | jq -r .port 2>/dev/null || true)
        [ -n "$port" ] && break
        [ -e "$tmp/status" ] && { cat "$tmp/log" >&2; die "governord did not start"; }
        sleep 0.1
    done
    [ -n "$port" ] || die "governord did not log its port"
    pid=$(cat "$tmp/pid")

    ANSWERS=0 maxuse=0
    t0=$EPOCHREALTIME
    for _ in $(seq 0 20); do
        t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.1fs", b - a }')
        if body=$(curl -sS -m 5 -w ' (%{time_total}s)' "http://127.0.0.1:$port/counter" 2>&1); then
            ANSWERS=$((ANSWERS + 1))
            use=$(cat "$cg/$f_usage" 2>/dev/null || echo 0)
            [ "$use" -gt "$maxuse" ] && maxuse=$use
            lat=${body##* (}; body=${body% (*}
            printf '  %s  curl /counter  %-18s %6.1f ms   cgroup usage %6s of %s\n' "$t" "$body" \
                "$(awk -v s="${lat%s)}" 'BEGIN { print s * 1000 }')" "$(mi "$use")" "$LIMIT"
        else
            printf '  %s  curl /counter  FAILED: %s\n' "$t" "$(grep -m1 -o 'curl: .*' <<<"$body" | cut -c7-)"
            if ! kill -0 "$pid" 2>/dev/null; then
                printf '  %s  governord is gone\n' "$t"
                break
            fi
        fi
        sleep 0.5
    done

    curl -sS -m 5 "http://127.0.0.1:$port/governor" > "$tmp/governor.json" 2>/dev/null || true
    OOMS=$(oom_kills)
    # the kernel's high-water mark (memory.peak needs Linux 5.19), else the
    # largest usage seen after an answer
    PEAK=$(cat "$cg/$f_peak" 2>/dev/null || echo "$maxuse")
    if kill -0 "$pid" 2>/dev/null; then
        STATUS=alive
    else
        wait "$job" || true
        STATUS=$(cat "$tmp/status")
        pid="" job=""
    fi
}

# What the governor would have done (dry-run decisions in the daemon's log).
dry_runs() {
    jq -r 'select(.dry_run == true) |
        "    \(.time[11:19])  \(.level) \(.action // .event), not done: \(.msg)"' "$tmp/log" 2>/dev/null |
        tail -n 3
}

# The governor's decisions from the last /governor, oldest first.
decision_table() {
    [ -s "$tmp/governor.json" ] || { echo "  (no /governor answer: the process is gone)"; return; }
    jq -r '
        def mi: (. / 1048576 | floor | tostring) + "Mi";
        def pad($n): tostring | if length < $n then . + " " * ($n - length) else . end;
        def row: "    \(.[0] | pad(4))\(.[1] | pad(10))\(.[2] | pad(9))\(.[3] | pad(9))" +
                 "\(.[4] | pad(13))\(.[5] | pad(10))\(.[6] | pad(6))\(.[7])";
        if (.decisions | length) == 0 then "    (no decisions)" else
        (["#", "time", "level", "action", "usage/limit", "released", "times", "reason"] | row),
        (.decisions | reverse | .[-8:] | .[] |
            ["\(.seq)", .time[11:19], .level, .action, "\(.usage_bytes | mi)/\(.limit_bytes | mi)",
             (.released_bytes | mi), "x\(.repeat)", .reason] | row)
        end' "$tmp/governor.json"
}

# run_app APP: governord -- python3 examples/flask-seed/APP in a fresh 1 GiB
# cgroup, the seed's loop of 20 requests, then (GOVERNED=true) requests on
# until APP_SECONDS have passed; sets ANSWERS, INORDER, OOMS, PEAK, STATUS,
# ELAPSED.  The app's output (werkzeug's log) goes to $tmp/app.log.
run_app() {
    local app=$1 port="" aport="" t0 body lat t use i=0 next_note
    mkdir "$cg"
    bytes "$APP_LIMIT" > "$cg/$f_limit"
    if [ $version = v2 ] && [ -e "$cg/memory.swap.max" ]; then echo 0 > "$cg/memory.swap.max"; fi
    if [ $version = v1 ] && [ -e "$cg/memory.memsw.limit_in_bytes" ]; then
        bytes "$APP_LIMIT" > "$cg/memory.memsw.limit_in_bytes"
    fi
    : > "$tmp/log"; : > "$tmp/app.log"
    rm -f "$tmp/pid" "$tmp/status" "$tmp/governor.json"
    mkdir -p "$tmp/s"
    # the app's output (Flask's banner, werkzeug's request log) to a file of its own
    # shellcheck disable=SC2016
    ( set +e
      (echo "$BASHPID" > "$cg/cgroup.procs" && echo "$BASHPID" > "$tmp/pid" &&
          PYTHONPATH="$here/clients/python" exec "$governord" --listen 127.0.0.1:0 \
              --policy "$here/policies/default.ini" --socket "$tmp/s/g.sock" \
              -- sh -c 'exec "$@" > "$0" 2>&1' "$tmp/app.log" \
                 "$py" "$here/examples/flask-seed/$app" 0 2> "$tmp/log")
      echo $? > "$tmp/status" ) 2>/dev/null &
    job=$!
    for _ in $(seq 300); do
        port=$(grep '"event":"start"' "$tmp/log" | jq -r .port 2>/dev/null || true)
        aport=$(sed -n 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/app.log")
        [ -n "$port" ] && [ -n "$aport" ] && break
        [ -e "$tmp/status" ] && { cat "$tmp/log" "$tmp/app.log" >&2; die "governord or the app did not start"; }
        sleep 0.1
    done
    if [ -z "$port" ] || [ -z "$aport" ]; then die "no port from governord or the Flask app"; fi
    pid=$(cat "$tmp/pid")

    ANSWERS=0 INORDER=true
    t0=$EPOCHREALTIME next_note=10
    while :; do
        i=$((i + 1))
        t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.1f", b - a }')
        if body=$(curl -sS -m 60 -w '\t%{time_total}' "http://127.0.0.1:$aport/counter" 2>&1); then
            ANSWERS=$((ANSWERS + 1))
            lat=${body##*$'\t'} body=${body%%$'\n'*}
            [ "$body" = "Counter value: $i" ] || INORDER=false
            if [ $i -le 20 ]; then
                use=$(cat "$cg/$f_usage" 2>/dev/null || echo 0)
                printf '  %ss  curl /counter  %-18s %5.2f s   cgroup usage %6s of %s\n' "$t" \
                    "$body" "$lat" "$(mi "$use")" "$APP_LIMIT"
            fi
        else
            printf '  %ss  curl /counter  FAILED: %s\n' "$t" "$(grep -m1 -o 'curl: .*' <<<"$body" | cut -c7-)"
            break
        fi
        ELAPSED=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')
        if [ $i -eq 20 ]; then
            $GOVERNED || break
            echo "  ... 20/20; requesting on until ${APP_SECONDS} s have passed"
            next_note=$(( (ELAPSED / 10 + 1) * 10 ))
        fi
        if [ $i -gt 20 ] && [ "$ELAPSED" -ge "$next_note" ]; then
            printf '  %ss  %d answers, cgroup usage %s of %s, oom_kill %s\n' "$t" "$ANSWERS" \
                "$(mi "$(cat "$cg/$f_usage")")" "$APP_LIMIT" "$(oom_kills)"
            next_note=$((next_note + 10))
        fi
        [ $i -ge 20 ] && [ "$ELAPSED" -ge "$APP_SECONDS" ] && break
    done
    ELAPSED=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
    curl -sS -m 5 "http://127.0.0.1:$port/governor" > "$tmp/governor.json" 2>/dev/null || true
    if ! $GOVERNED; then
        # the kernel's kill ends the app; governord follows with its status
        for _ in $(seq 300); do [ -e "$tmp/status" ] && break; sleep 0.1; done
    fi
    OOMS=$(oom_kills)
    PEAK=$(cat "$cg/$f_peak" 2>/dev/null || echo 0)
    if kill -0 "$pid" 2>/dev/null; then
        STATUS=alive
    else
        wait "$job" || true
        STATUS=$(cat "$tmp/status")
        pid="" job=""
    fi
}

# The client's view from /governor: what the app registered and gave back.
client_view() {
    [ -s "$tmp/governor.json" ] || { echo "    (no /governor answer)"; return; }
    jq -r '.clients[] | "    client \(.id) \"\(.name)\" (pid \(.pid)): holds \(.bytes / 1048576 | floor)Mi in \(.objects) block(s); \(.shrinks) shrinks asked, \(.released_bytes / 1048576 | floor)Mi released, unresponsive \(.unresponsive)"' \
        "$tmp/governor.json"
    jq -r '"    admissions: \([.decisions[] | select(.action == "evict") | .repeat] | add // 0) made room by evicting, \([.decisions[] | select(.action == "refuse") | .repeat] | add // 0) refused"' \
        "$tmp/governor.json"
}

total_mem=$(( $(awk '/MemAvailable/ { print $2 }' /proc/meminfo) * 1024 ))
[ "$total_mem" -gt $(( $(bytes "$LIMIT") * 2 )) ] || die "less than 2 x $LIMIT of memory available"
[ "$total_mem" -gt $(( $(bytes "$APP_LIMIT") * 2 )) ] || die "less than 2 x $APP_LIMIT of memory available"

if [ $version = v2 ]; then
    echo "cgroup v2 (memory controller at $mnt): $name, memory.max = $LIMIT"
else
    echo "cgroup v1 (memory controller at $mnt): $name, memory.limit_in_bytes = $LIMIT"
fi
echo "collector: a $BLOCK block every $INTERVAL_MS ms (without a governor it passes $LIMIT in $(( ($(bytes "$LIMIT") / $(bytes "$BLOCK") + 1) * INTERVAL_MS )) ms)"
echo
echo "1) governord, mode = enforce -- the seed's loop: for i in \$(seq 0 20); do curl .../counter; sleep 0.5; done"
run enforce
e_answers=$ANSWERS e_ooms=$OOMS e_peak=$PEAK e_status=$STATUS
echo "  decisions (newest 8, as /governor shows them):"
decision_table
echo "  => $e_answers/21 answered, oom_kill $e_ooms, peak $(mi "$e_peak") of $LIMIT, governord $e_status"
stop_run

echo
echo "2) the same with mode = observe (the governor only records what it would do)"
run observe
o_answers=$ANSWERS o_ooms=$OOMS o_peak=$PEAK o_status=$STATUS
echo "  the governor's last dry-run decisions (from its log):"
dry_runs
if [ "$o_status" = 137 ]; then
    echo "  => killed by the kernel (SIGKILL, exit 137) after $o_answers answers: oom_kill $o_ooms, peak $(mi "$o_peak") of $LIMIT"
else
    echo "  => $o_answers/21 answered, oom_kill $o_ooms, peak $(mi "$o_peak"), governord $o_status"
fi
stop_run

echo
echo "3) any app: the seed's Flask app (examples/flask-seed, a 500 MiB block per /counter) in a $APP_LIMIT cgroup"
echo "   a) governord -- python3 app_governed.py   (its list is a GovernedBuffer: the one change)"
GOVERNED=true run_app app_governed.py
a_answers=$ANSWERS a_inorder=$INORDER a_ooms=$OOMS a_peak=$PEAK a_status=$STATUS a_elapsed=$ELAPSED
echo "  the governor's decisions (newest 8, as /governor shows them):"
decision_table
echo "  the client's view (/governor clients):"
client_view
echo "  => $a_answers answered in ${a_elapsed} s, in order $a_inorder, oom_kill $a_ooms, peak $(mi "$a_peak") of $APP_LIMIT, governord $a_status"
stop_run
echo "   b) governord -- python3 app.py   (the seed's app as it was)"
GOVERNED=false run_app app.py
b_answers=$ANSWERS b_ooms=$OOMS b_peak=$PEAK b_status=$STATUS
jq -r 'select(.event == "child_exit" or (.event == "exit")) | "    governord: \(.msg)\(if .how then " (" + .how + ")" else "" end), exit \(.exit_code)"' \
    "$tmp/log" 2>/dev/null || true
echo "  => $b_answers answered, then governord $b_status, oom_kill $b_ooms, peak $(mi "$b_peak") of $APP_LIMIT"
stop_run

echo
ok=true
if [ "$e_answers" -eq 21 ] && [ "$e_ooms" -eq 0 ] && [ "$e_status" = alive ]; then
    echo "demo: with the governor: 21/21 answers, no OOM kill (peak $(mi "$e_peak") of $LIMIT)"
else
    echo "demo: UNEXPECTED: with the governor $e_answers/21 answers, oom_kill $e_ooms, governord $e_status"
    ok=false
fi
if [ "${o_ooms:-0}" -ge 1 ]; then
    echo "demo: without it (observe): OOM-killed by the kernel after $o_answers answers"
else
    echo "demo: UNEXPECTED: in observe mode the kernel did not OOM-kill governord (oom_kill ${o_ooms:-?})"
    ok=false
fi
if [ "$a_answers" -ge 20 ] && $a_inorder && [ "$a_ooms" -eq 0 ] && [ "$a_status" = alive ] &&
        [ "$a_elapsed" -ge "$APP_SECONDS" ] && [ "$a_peak" -lt "$(bytes "$APP_LIMIT")" ]; then
    echo "demo: the Flask app governed: 20/20 (then $a_answers in all over ${a_elapsed} s), oom_kill 0, peak $(mi "$a_peak") of $APP_LIMIT"
else
    echo "demo: UNEXPECTED: the governed Flask app: $a_answers answers (in order: $a_inorder) in ${a_elapsed} s, oom_kill $a_ooms, peak $(mi "$a_peak"), governord $a_status"
    ok=false
fi
if [ "$b_status" = 137 ] && [ "${b_ooms:-0}" -ge 1 ]; then
    echo "demo: the Flask app ungoverned: OOM-killed after $b_answers answers, governord exit 137"
else
    echo "demo: UNEXPECTED: the ungoverned Flask app: governord $b_status, oom_kill ${b_ooms:-?}"
    ok=false
fi
$ok
