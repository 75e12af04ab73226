#!/usr/bin/env bash
# overhead.sh -- what governord costs when it has nothing to do.
#
#   bench/overhead.sh [-s SECONDS] [-n STARTS]
#
# 1. CPU of the governor thread (named "governor") with interval_ms 100 and
#    10, over SECONDS seconds each, from /proc/<pid>/task/<tid>/schedstat
#    (nanoseconds on the CPU; /proc/<pid>/task/<tid>/stat ticks as a cross
#    check), on this machine's real cgroup (cgroup v1 here), collector off.
# 2. Memory of an idle daemon without buffer: VmRSS, and from smaps_rollup
#    the private (anonymous, dirty) and proportional (PSS) sizes -- shared
#    library pages count fully in VmRSS but are shared with every process.
# 3. Time from exec to the first 200 from /readyz, STARTS times (a client
#    polling a fixed free port every 0.2 ms), beside the time to exec and
#    reap /bin/true on the same machine as the floor.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_EACH=20
STARTS=20
while getopts s:n:h opt; do
    case $opt in
    s) SECONDS_EACH=$OPTARG ;;
    n) STARTS=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
bench_prepare
echo "machine: $(machine_line)"

# ---- 1. governor thread CPU ------------------------------------------------
for interval in 100 10; do
    printf '[governor]\ninterval_ms = %s\n[collector]\nenabled = false\n' "$interval" \
        >"$WORK/idle-$interval.ini"
    start_governord "$WORK/idle-$interval.log" --policy "$WORK/idle-$interval.ini"
    sleep 1
    /usr/bin/python3 - "$GOV_PID" "$SECONDS_EACH" "$interval" "$(getconf CLK_TCK)" <<'PY'
import os, sys, time
pid, seconds, interval, hz = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
tid = next(t for t in os.listdir(f"/proc/{pid}/task")
           if open(f"/proc/{pid}/task/{t}/comm").read().strip() == "governor")
base = f"/proc/{pid}/task/{tid}"
def ns():
    return int(open(f"{base}/schedstat").read().split()[0])
def ticks():
    f = open(f"{base}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
n0, k0, t0 = ns(), ticks(), time.monotonic()
time.sleep(seconds)
n1, k1, t1 = ns(), ticks(), time.monotonic()
wall = t1 - t0
print(f"governor thread, interval_ms {interval}: {100 * (n1 - n0) / 1e9 / wall:.3f}% of one core "
      f"({(n1 - n0) / 1e6:.1f} ms CPU in {wall:.1f} s, "
      f"{(n1 - n0) / 1e3 / (wall * 1000 / int(interval)):.1f} us per tick; "
      f"stat: {k1 - k0} ticks of {1000 // hz} ms)")
PY
    stop_pid "$GOV_PID"
done

# ---- 2. idle memory ------------------------------------------------------------
start_governord "$WORK/mem.log" --policy "$WORK/idle-100.ini"
sleep 2
/usr/bin/python3 - "$GOV_PID" <<'PY'
import sys
pid = sys.argv[1]
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
roll = dict(l.split(":", 1) for l in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
kib = lambda v: int(v.split()[0])
print(f"idle daemon, no buffer: VmRSS {kib(status['VmRSS']) / 1024:.1f} MiB "
      f"(RssAnon {kib(status['RssAnon']) / 1024:.1f}, RssFile {kib(status['RssFile']) / 1024:.1f}), "
      f"Pss {kib(roll['Pss']) / 1024:.1f} MiB, Private_Dirty {kib(roll['Private_Dirty']) / 1024:.1f} MiB, "
      f"{status['Threads'].strip()} threads")
PY
stop_pid "$GOV_PID"

# ---- 3. exec to ready --------------------------------------------------------------
/usr/bin/python3 - "$GOVERNORD" "$WORK/idle-100.ini" "$STARTS" <<'PY'
import http.client, os, socket, statistics, subprocess, sys, time
gov, policy, starts = sys.argv[1], sys.argv[2], int(sys.argv[3])

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

def ready(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/readyz")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False

times, floor = [], []
env = dict(os.environ, GOVERNOR_LOG_FORMAT="json")
for _ in range(starts):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([gov, "--listen", f"127.0.0.1:{port}", "--policy", policy], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    while not ready(port):
        if p.poll() is not None:
            sys.exit(f"governord exited {p.returncode}")
        if time.perf_counter() - t0 > 5:
            sys.exit("governord not ready within 5 s")
        time.sleep(0.0002)
    times.append((time.perf_counter() - t0) * 1000)
    p.terminate()
    p.wait()
    t0 = time.perf_counter()
    subprocess.run(["/bin/true"])
    floor.append((time.perf_counter() - t0) * 1000)
print(f"exec -> /readyz 200: {statistics.median(times):.1f} ms median, {min(times):.1f} min, "
      f"{max(times):.1f} max over {starts} starts (exec and reap of /bin/true: "
      f"{statistics.median(floor):.1f} ms median)")
PY
