#!/usr/bin/env bash
# http.sh -- governord's GET /counter against a reference nginx, with wrk.
#
#   bench/http.sh [-d SECONDS] [-r ROUNDS] [-c "64 256"] [-t THREADS]
#
# For each round and each connection count, three servers are measured one
# after the other for SECONDS each, on loopback:
#   nginx            Debian's nginx, worker_processes auto, `return 200
#                    "Counter value: 1\n"` (the reference);
#   governord        collector disabled, HTTP threads = CPUs (--threads);
#   governord+churn  inside a cgroup v1 memory cgroup with a 128 MiB limit,
#                    the collector adding 2 MiB blocks every 10 ms and the
#                    governor ticking every 10 ms, so blocks are evicted and
#                    re-allocated the whole time (needs root and cgroup v1
#                    memory; skipped otherwise).
# Each line gives requests/s, p50 and p99 latency, CPU time per request of
# the server (all its threads and workers; less sensitive to other load on
# the machine than req/s), non-2xx answers and socket errors; the summary
# gives the medians over the rounds and the ratios governord/nginx.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=10
ROUNDS=2
CONNS="64 256"
WRK_THREADS=$(nproc)
GOV_THREADS=${GOV_THREADS:-}
while getopts d:r:c:t:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    t) GOV_THREADS=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
    esac
done
bench_prepare
TICK=$(getconf CLK_TCK)
RESULTS=$WORK/results

# run_wrk NAME PID PORT CONNS ROUND -- one measurement, appended to RESULTS
run_wrk() {
    local name=$1 pid=$2 port=$3 conns=$4 round=$5 before after line
    wrk -t "$WRK_THREADS" -c "$conns" -d 1s "http://127.0.0.1:$port/counter" >/dev/null # warm-up
    before=$(cpu_ticks "$pid")
    line=$(wrk -t "$WRK_THREADS" -c "$conns" -d "${DURATION}s" --timeout 5s \
        -s "$BENCH_DIR/wrk-report.lua" "http://127.0.0.1:$port/counter" | grep '^RESULT')
    after=$(cpu_ticks "$pid")
    echo "$name conns=$conns round=$round cpu_ticks=$((after - before)) ${line#RESULT }" >>"$RESULTS"
    echo "$name conns=$conns round=$round cpu_ticks=$((after - before)) ${line#RESULT }" >&2
}

threads_args=()
[ -n "$GOV_THREADS" ] && threads_args=(--threads "$GOV_THREADS")

start_nginx
printf '[collector]\nenabled = false\n' >"$WORK/plain.ini"
start_governord "$WORK/plain.log" --policy "$WORK/plain.ini" "${threads_args[@]}"
PLAIN_PID=$GOV_PID PLAIN_PORT=$GOV_PORT

CHURN_PID=
if have_v1_memory; then
    cat >"$WORK/churn.ini" <<'INI'
[governor]
interval_ms = 10
cooldown_ms = 0
[collector]
block_size = 2Mi
interval_ms = 10
INI
    new_v1_cgroup "governord-bench-http-$$" $((128 << 20))
    GOV_CGROUP_ENTER=$NEW_CGROUP
    start_governord "$WORK/churn.log" --policy "$WORK/churn.ini" "${threads_args[@]}"
    CHURN_PID=$GOV_PID CHURN_PORT=$GOV_PORT CHURN_CG=$GOV_CGROUP_ENTER
    unset GOV_CGROUP_ENTER
    sleep 1 # let the buffer reach the limit's soft level
    churn_before=$(curl -s "http://127.0.0.1:$CHURN_PORT/governor")
else
    echo "governord+churn skipped: needs root and cgroup v1 memory at $V1_MEMORY" >&2
fi

echo "machine: $(machine_line)" >&2
for round in $(seq "$ROUNDS"); do
    for c in $CONNS; do
        run_wrk nginx "$NGINX_PID" "$NGINX_PORT" "$c" "$round"
        run_wrk governord "$PLAIN_PID" "$PLAIN_PORT" "$c" "$round"
        [ -n "$CHURN_PID" ] && run_wrk governord+churn "$CHURN_PID" "$CHURN_PORT" "$c" "$round"
    done
done

churn_summary=""
if [ -n "$CHURN_PID" ]; then
    churn_after=$(curl -s "http://127.0.0.1:$CHURN_PORT/governor")
    churn_summary=$(/usr/bin/python3 - "$churn_before" "$churn_after" "$CHURN_CG" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
oom = dict(line.split() for line in open(sys.argv[3] + "/memory.oom_control"))["oom_kill"]
print("governor during the churn runs: %d evictions, %d ticks, level %s, buffer %d MiB, "
      "limit %d MiB, oom_kill %s" % (
          b["buffer"]["evictions"] - a["buffer"]["evictions"],
          b["wakeups"]["timer"] - a["wakeups"]["timer"], b["level"],
          b["buffer"]["bytes"] >> 20, b["memory"]["limit_bytes"] >> 20, oom))
PY
)
fi
echo "churn: $churn_summary" >>"$RESULTS"

echo
echo "machine: $(machine_line)"
echo "wrk -t$WRK_THREADS, ${DURATION}s per run, $ROUNDS round(s), medians over rounds"
/usr/bin/python3 - "$RESULTS" "$TICK" <<'PY'
import statistics, sys
rows, churn = [], ""
for line in open(sys.argv[1]):
    if line.startswith("churn: "):
        churn = line[7:].strip()
        continue
    name, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    d = {k: int(v) for k, v in d.items()}
    d["name"] = name
    rows.append(d)
tick_us = 1e6 / int(sys.argv[2])
med = {}
print(f"{'conns':>5} {'server':<16} {'req/s':>8} {'p50':>8} {'p99':>8} {'cpu/req':>8} "
      f"{'non-2xx':>7} {'sockerr':>7} {'ratio':>6} {'p99 ratio':>9}")
for c in sorted({r["conns"] for r in rows}):
    for name in ("nginx", "governord", "governord+churn"):
        rs = [r for r in rows if r["conns"] == c and r["name"] == name]
        if not rs:
            continue
        m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us")}
        m["cpu"] = statistics.median(r["cpu_ticks"] * tick_us / r["requests"] for r in rs)
        m["non2xx"] = sum(r["non2xx"] for r in rs)
        m["sockerr"] = sum(r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rs)
        med[(c, name)] = m
        ref = med.get((c, "nginx"))
        ratio = f"{m['rps'] / ref['rps']:.2f}" if ref and name != "nginx" else "-"
        p99r = f"{m['p99_us'] / ref['p99_us']:.2f}" if ref and name != "nginx" else "-"
        print(f"{c:>5} {name:<16} {m['rps']:>8.0f} {m['p50_us'] / 1000:>6.2f}ms "
              f"{m['p99_us'] / 1000:>6.2f}ms {m['cpu']:>6.1f}us {m['non2xx']:>7} "
              f"{m['sockerr']:>7} {ratio:>6} {p99r:>9}")
if churn:
    print(churn)
print("ratio = req/s of governord / req/s of nginx; p99 ratio = p99 of governord / p99 of nginx "
      "(<= 1 is no worse); cpu/req = server CPU time per request")
PY
