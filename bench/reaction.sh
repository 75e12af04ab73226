#!/usr/bin/env bash
# reaction.sh -- how governord keeps a real memory limit, enforce vs observe.
#
#   bench/reaction.sh [-l LIMIT_MIB] [-b BLOCK_MIB] [-r ROUNDS]
#
# Needs root and the cgroup v1 memory controller (this machine's kind).  For
# each mode a child memory cgroup gets a hard limit (512 MiB, no swap), and
# governord runs inside it with the seed's collector: back-to-back large
# blocks (128 MiB, interval 1 ms), default thresholds (target 60%, soft 70%,
# high 85%, critical 95%), a 100 ms tick.
#
# enforce: after the buffer settled, a second process in the same cgroup (a
#   "hog": the rest of the pod growing) touches as much memory as takes the
#   working set to 90% of the limit, past `high`; a monitor reading the cgroup
#   every ~1 ms measures the time from crossing `high` until the working set
#   is back under `target`.  The hog then exits and the buffer regrows.
#   Repeated ROUNDS times.
# observe: the same collector, the governor only records: how fast the
#   kernel's OOM killer ends it.
# Reported: the peak usage (memory.max_usage_in_bytes) as a fraction of the
# limit -- for the collector alone (10 s) and separately for the pushes, where
# a hog touching memory races a block the collector was already admitted --
# the reaction times, OOM kills (memory.oom_control) and how the daemon ended.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LIMIT_MIB=512
BLOCK_MIB=128
ROUNDS=5
while getopts l:b:r:h opt; do
    case $opt in
    l) LIMIT_MIB=$OPTARG ;;
    b) BLOCK_MIB=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
bench_prepare
have_v1_memory || die "needs root and a cgroup v1 memory controller at $V1_MEMORY"

run_mode() {
    local mode=$1 cg
    new_v1_cgroup "governord-bench-reaction-$mode-$$" $((LIMIT_MIB << 20))
    cg=$NEW_CGROUP
    cat >"$WORK/$mode.ini" <<INI
[governor]
mode = $mode
[collector]
block_size = ${BLOCK_MIB}Mi
interval_ms = 1
INI
    GOV_CGROUP_ENTER=$cg start_governord "$WORK/$mode.log" --policy "$WORK/$mode.ini"
    /usr/bin/python3 - "$mode" "$cg" "$GOV_PID" "$GOV_PORT" "$ROUNDS" <<'PY'
import json, os, signal, statistics, subprocess, sys, time, urllib.request

mode, cg, pid, port, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
limit = int(open(f"{cg}/memory.limit_in_bytes").read())
TARGET, HIGH, CRITICAL = 0.60, 0.85, 0.95
MIB = 1 << 20

def read(name):
    with open(f"{cg}/{name}") as f:
        return f.read()

def working_set():
    usage = int(read("memory.usage_in_bytes"))
    for line in read("memory.stat").splitlines():
        if line.startswith("total_inactive_file "):
            return usage - int(line.split()[1])
    return usage

def oom_kills():
    return int(dict(l.split() for l in read("memory.oom_control").splitlines())["oom_kill"])

def status():
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/governor", timeout=5) as r:
        return json.load(r)

def alive():
    try:
        os.kill(pid, 0)
        return not open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")
    except (ProcessLookupError, FileNotFoundError):
        return False

t0 = time.monotonic()
if mode == "observe":
    peak_ws, ended = 0, None
    while time.monotonic() - t0 < 20:
        if not alive():
            ended = time.monotonic() - t0
            break
        peak_ws = max(peak_ws, working_set())
        time.sleep(0.001)
    peak = int(read("memory.max_usage_in_bytes"))
    print(f"observe: peak {peak / limit:.3f} of the limit ({peak // MIB} MiB of {limit // MIB} MiB), "
          f"oom_kill {oom_kills()}, "
          + (f"governord OOM-killed {ended:.2f} s after start" if ended is not None
             else "governord still alive after 20 s"))
    sys.exit(0)

# enforce: let the buffer settle at `soft`, then push with a hog, `rounds` times
hog_code = ("import mmap, sys\n"
            "n = int(sys.argv[1])\n"
            "m = mmap.mmap(-1, n)\n"
            "for i in range(0, n, 4096):\n"
            "    m[i] = 1\n"
            "print('touched', flush=True)\n"
            "sys.stdin.read()\n")
reactions, crossed_rounds = [], 0
time.sleep(10)  # phase 1: the collector alone, back to back, for 10 s
peak_alone = int(read("memory.max_usage_in_bytes"))
print(f"enforce, collector alone for 10 s: peak {peak_alone / limit:.3f} of the limit "
      f"({peak_alone // MIB} MiB of {limit // MIB} MiB; critical is {CRITICAL}), "
      f"oom_kill {oom_kills()}, governord " + ("alive" if alive() else "DEAD"))
with open(f"{cg}/memory.max_usage_in_bytes", "w") as f:
    f.write("0")  # phase 2: the pushes, peak measured afresh
for r in range(rounds):
    if not alive():
        break
    # whatever takes the working set to 90% (between high and critical), from
    # its highest value over 150 ms: the collector's replacements make dips
    settled = 0
    for _ in range(150):
        settled = max(settled, working_set())
        time.sleep(0.001)
    push = max(int(0.90 * limit) - settled, 16 * MIB)
    hog = subprocess.Popen(["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh",
                            sys.executable, "-c", hog_code, str(push)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    t_cross = t_back = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ws = working_set()
        now = time.monotonic()
        if t_cross is None and ws >= HIGH * limit:
            t_cross = now
        elif t_cross is not None and ws < TARGET * limit:
            t_back = now
            break
        time.sleep(0.0005)
    if t_cross is not None:
        crossed_rounds += 1
        if t_back is not None:
            reactions.append((t_back - t_cross) * 1000)
    hog.stdin.close()
    hog.wait()
    time.sleep(1.5)  # the buffer regrows to `soft`
st = status() if alive() else None
peak = int(read("memory.max_usage_in_bytes"))
ok = alive()
print(f"enforce, with the pushes: peak {peak / limit:.3f} of the limit ({peak // MIB} MiB; "
      "the hog and the collector allocate independently), "
      f"oom_kill {oom_kills()}, governord " + ("alive" if ok else "DEAD"))
if reactions:
    print(f"enforce: high -> under target in {statistics.median(reactions):.0f} ms median, "
          f"{max(reactions):.0f} ms max over {len(reactions)} rounds "
          f"(crossed high in {crossed_rounds} of {rounds} rounds; "
          + ", ".join(f"{x:.0f}" for x in reactions) + " ms)")
else:
    print(f"enforce: working set never crossed high in {rounds} rounds")
if st:
    print(f"enforce: evictions {st['buffer']['evictions']}, refused {st['buffer']['refused']}, "
          f"shrinks {sum(1 for d in st['decisions'] if d['action'] in ('shrink', 'release'))} "
          f"(in the last {len(st['decisions'])} decisions), buffer {st['buffer']['bytes'] // MIB} MiB")
PY
    stop_pid "$GOV_PID"
}

echo "machine: $(machine_line)"
echo "limit ${LIMIT_MIB} MiB (cgroup v1, no swap), collector ${BLOCK_MIB} MiB blocks back to back"
run_mode enforce
run_mode observe
