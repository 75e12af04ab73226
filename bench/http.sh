#!/usr/bin/env bash
# http.sh -- governord's GET /counter against a reference nginx, with wrk.
#
#   bench/http.sh [-d SECONDS] [-r ROUNDS] [-c "64 256"] [-t THREADS] [-l "LEASE..."]
#                 [-o "NAME..."]
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
#                    memory; skipped otherwise);
#   governord+file   as governord, with --counter file:PATH (a file in the
#                    benchmark's directory under /tmp) and the default lease
#                    of 1000 values (the chart's too);
#   governord+file-N the same with --counter-lease N, for each N of -l
#                    (default 100000);
#   governord+redis  as governord, with --counter redis://127.0.0.1:PORT to
#                    a redis-server started here with AOF on and
#                    `appendfsync always` (every INCR on disk before the
#                    answer, as a deployment that promises "never repeats"
#                    across restarts runs it);
#   governord+redis-everysec  the same against a second redis-server with
#                    `appendfsync everysec` (the figure without the fsync).
# The redis rows' CPU/req adds redis-server's CPU time to governord's.
# Before the runs, the median write+fsync time under the benchmark's
# directory is measured, and redis-benchmark measures INCR against the `always`
# server at the same connection counts without and with pipelining (-P 16):
# what Redis alone can do on this machine, for the explanation.
# Each line gives requests/s, p50 and p99 latency, CPU time per request of
# the server (all its threads and workers; less sensitive to other load on
# the machine than req/s), non-2xx answers and socket errors; the summary
# gives the medians over the rounds and the ratios governord/nginx.
# -o "governord governord+file" measures only those rows (names as in the
# summary): more rounds of a comparison in the same time; the ratios to a
# row left out are shown as "-".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=10
ROUNDS=2
CONNS="64 256"
WRK_THREADS=$(nproc)
GOV_THREADS=${GOV_THREADS:-}
FILE_LEASES=100000
ONLY=""
while getopts d:r:c:t:l:o:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    t) GOV_THREADS=$OPTARG ;;
    l) FILE_LEASES=$OPTARG ;;
    o) ONLY=$OPTARG ;;
    *) sed -n '2,40p' "$0"; exit 2 ;;
    esac
done
bench_prepare
TICK=$(getconf CLK_TCK)
RESULTS=$WORK/results

# run_wrk NAME PID PORT CONNS ROUND [AUX_PID] -- one measurement, appended
# to RESULTS; AUX_PID (redis-server) has its CPU time added to the server's.
run_wrk() {
    local name=$1 pid=$2 port=$3 conns=$4 round=$5 aux=${6:-} before after line
    local aux_before=0 aux_after=0
    # -o: only the named rows (more rounds of the rows compared, in the same time)
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
    wrk -t "$WRK_THREADS" -c "$conns" -d 1s "http://127.0.0.1:$port/counter" >/dev/null # warm-up
    before=$(cpu_ticks "$pid")
    [ -n "$aux" ] && aux_before=$(cpu_ticks "$aux")
    line=$(wrk -t "$WRK_THREADS" -c "$conns" -d "${DURATION}s" --timeout 5s \
        -s "$BENCH_DIR/wrk-report.lua" "http://127.0.0.1:$port/counter" | grep '^RESULT')
    after=$(cpu_ticks "$pid")
    [ -n "$aux" ] && aux_after=$(cpu_ticks "$aux")
    line="$name conns=$conns round=$round cpu_ticks=$((after - before + aux_after - aux_before)) aux_ticks=$((aux_after - aux_before)) ${line#RESULT }"
    echo "$line" >>"$RESULTS"
    echo "$line" >&2
}

# start_redis NAME FSYNC -- a redis-server on a free loopback port, AOF on
# with `appendfsync FSYNC`, no RDB snapshots, its data under WORK; sets
# REDIS_PID and REDIS_PORT.
start_redis() {
    local dir=$WORK/$1
    mkdir -p "$dir"
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" \
        --appendonly yes --appendfsync "$2" --daemonize no --protected-mode no \
        >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    BENCH_PIDS+=("$REDIS_PID")
    wait_port "$REDIS_PORT"
    for _ in $(seq 200); do # loading the (empty) AOF
        [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.02
    done
    die "redis-server ($1) does not answer PING"
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

start_governord "$WORK/file.log" --policy "$WORK/plain.ini" "${threads_args[@]}" \
    --counter "file:$WORK/counter"
FILE_PID=$GOV_PID FILE_PORT=$GOV_PORT
LEASE_PIDS=() LEASE_PORTS=()
for lease in $FILE_LEASES; do
    start_governord "$WORK/file-$lease.log" --policy "$WORK/plain.ini" "${threads_args[@]}" \
        --counter "file:$WORK/counter-$lease" --counter-lease "$lease"
    LEASE_PIDS+=("$GOV_PID") LEASE_PORTS+=("$GOV_PORT")
done

REDIS_PIDS=
if command -v redis-server >/dev/null; then
    start_redis redis-always always
    RA_REDIS_PID=$REDIS_PID RA_REDIS_PORT=$REDIS_PORT
    start_redis redis-everysec everysec
    RE_REDIS_PID=$REDIS_PID RE_REDIS_PORT=$REDIS_PORT
    start_governord "$WORK/redis-always.log" --policy "$WORK/plain.ini" "${threads_args[@]}" \
        --counter "redis://127.0.0.1:$RA_REDIS_PORT?key=bench"
    RA_PID=$GOV_PID RA_PORT=$GOV_PORT
    start_governord "$WORK/redis-everysec.log" --policy "$WORK/plain.ini" "${threads_args[@]}" \
        --counter "redis://127.0.0.1:$RE_REDIS_PORT?key=bench"
    RE_PID=$GOV_PID RE_PORT=$GOV_PORT
    REDIS_PIDS=yes
    # Redis alone: INCR from redis-benchmark, one command per round trip and 16
    for c in $CONNS; do
        for p in 1 16; do
            rps=$(redis-benchmark -p "$RA_REDIS_PORT" -c "$c" -n $((c * 400 * p)) -P "$p" \
                -t incr -q 2>/dev/null | tr '\r' '\n' | sed -n 's/^INCR: \([0-9.]*\) requests.*/\1/p' | tail -1)
            echo "redis-benchmark: conns=$c pipeline=$p appendfsync=always incr_per_s=${rps%.*}" >>"$RESULTS"
            echo "redis-benchmark: conns=$c pipeline=$p appendfsync=always incr_per_s=${rps%.*}" >&2
        done
    done
else
    echo "governord+redis skipped: no redis-server (scripts/deps.sh test installs it)" >&2
fi

# what one fsync costs where the file store and Redis's AOF write (both under
# WORK): the median of 200 write+fsync of 64 bytes
fsync_us=$(/usr/bin/python3 - "$WORK/fsync-probe" <<'PY'
import os, statistics, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
t = []
for _ in range(200):
    t0 = time.perf_counter()
    os.write(fd, b"x" * 64)
    os.fsync(fd)
    t.append(time.perf_counter() - t0)
print(int(statistics.median(t) * 1e6))
PY
)
echo "fsync: write+fsync of 64 bytes under $WORK: median ${fsync_us} us" >>"$RESULTS"
echo "fsync: median ${fsync_us} us" >&2

echo "machine: $(machine_line)" >&2
for round in $(seq "$ROUNDS"); do
    for c in $CONNS; do
        run_wrk nginx "$NGINX_PID" "$NGINX_PORT" "$c" "$round"
        run_wrk governord "$PLAIN_PID" "$PLAIN_PORT" "$c" "$round"
        [ -n "$CHURN_PID" ] && run_wrk governord+churn "$CHURN_PID" "$CHURN_PORT" "$c" "$round"
        run_wrk governord+file "$FILE_PID" "$FILE_PORT" "$c" "$round"
        i=0
        for lease in $FILE_LEASES; do
            run_wrk "governord+file-$lease" "${LEASE_PIDS[$i]}" "${LEASE_PORTS[$i]}" "$c" "$round"
            i=$((i + 1))
        done
        if [ -n "$REDIS_PIDS" ]; then
            run_wrk governord+redis "$RA_PID" "$RA_PORT" "$c" "$round" "$RA_REDIS_PID"
            run_wrk governord+redis-everysec "$RE_PID" "$RE_PORT" "$c" "$round" "$RE_REDIS_PID"
        fi
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

# The stores kept their promise: the file's high-water mark and the Redis
# keys are at least the values handed out (wrk's requests, warm-ups included).
store_summary="file high-water mark $(tr -d '\n' <"$WORK/counter" 2>/dev/null || echo '?')"
store_summary+=" ($(curl -s "http://127.0.0.1:$FILE_PORT/counter"))"
# how often the lease ran out before its renewal was on disk (requests that waited)
store_summary+=", lease $(curl -s "http://127.0.0.1:$FILE_PORT/metrics" |
    awk '$1 == "governor_visits_lease_writes_total" { w = $2 }
         $1 == "governor_visits_lease_waits_total" { x = $2 }
         END { printf "writes %d, waits %d", w, x }')"
if [ -n "$REDIS_PIDS" ]; then
    store_summary+="; redis always key $(redis-cli -p "$RA_REDIS_PORT" GET bench)"
    store_summary+=" ($(curl -s "http://127.0.0.1:$RA_PORT/counter"))"
    store_summary+=", everysec key $(redis-cli -p "$RE_REDIS_PORT" GET bench)"
    store_summary+=" ($(curl -s "http://127.0.0.1:$RE_PORT/counter"))"
fi
echo "stores: $store_summary" >>"$RESULTS"

echo
echo "machine: $(machine_line)"
echo "wrk -t$WRK_THREADS, ${DURATION}s per run, $ROUNDS round(s), medians over rounds"
/usr/bin/python3 - "$RESULTS" "$TICK" <<'PY'
import statistics, sys
rows, churn, stores, rbench = [], "", "", []
for line in open(sys.argv[1]):
    if line.startswith("churn: "):
        churn = line[7:].strip()
        continue
    if line.startswith("stores: "):
        stores = line[8:].strip()
        continue
    if line.startswith("fsync: "):
        rbench.append(line.strip())
        continue
    if line.startswith("redis-benchmark: "):
        rbench.append(line[17:].strip())
        continue
    name, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    d = {k: int(v) for k, v in d.items()}
    d["name"] = name
    rows.append(d)
tick_us = 1e6 / int(sys.argv[2])
med = {}
print(f"{'conns':>5} {'server':<24} {'req/s':>8} {'p50':>8} {'p99':>8} {'cpu/req':>8} "
      f"{'non-2xx':>7} {'sockerr':>7} {'ratio':>6} {'p99 ratio':>9} {'vs memory':>9}")
for c in sorted({r["conns"] for r in rows}):
    for name in dict.fromkeys(r["name"] for r in rows):  # in the order they ran
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
        mem = med.get((c, "governord"))
        vsmem = (f"{m['rps'] / mem['rps']:.2f}"
                 if mem and name not in ("nginx", "governord") else "-")
        print(f"{c:>5} {name:<24} {m['rps']:>8.0f} {m['p50_us'] / 1000:>6.2f}ms "
              f"{m['p99_us'] / 1000:>6.2f}ms {m['cpu']:>6.1f}us {m['non2xx']:>7} "
              f"{m['sockerr']:>7} {ratio:>6} {p99r:>9} {vsmem:>9}")
        if "redis" in name:
            aux = statistics.median(r["aux_ticks"] * tick_us / r["requests"] for r in rs)
            print(f"{'':>5} {'  of which redis-server':<24} {'':>8} {'':>8} {'':>8} {aux:>6.1f}us")
if churn:
    print(churn)
if stores:
    print("stores after the runs:", stores)
for b in rbench:
    print(b if b.startswith("fsync") else "redis-benchmark INCR: " + b)
print("ratio = req/s / req/s of nginx; vs memory = req/s / req/s of governord (memory: store); "
      "p99 ratio = p99 / p99 of nginx (<= 1 is no worse); cpu/req = server CPU time per "
      "request (redis rows: governord + redis-server)")
PY
