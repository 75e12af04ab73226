"""proto_measure.py -- the measuring half of bench/protocol.sh (run by it).

    proto_measure.py cgroup DIR RATIO
        a directory in cgroup v2 format (tests/pylib/cgroupfs.py) with a
        1 GiB limit and a working set of RATIO of it, for governord --cgroup
    proto_measure.py rtt PORT SECONDS LABEL -- CLIENT-CMD...
        starts CLIENT-CMD (a shrink client: it prints "registered" and runs
        until its stdin ends), lets the governor shrink it for SECONDS, and
        prints the shrink round trips governord measured
        (governor_client_shrink_round_trip_seconds on /metrics): count, rate,
        p50 and p99 interpolated within the histogram's buckets, the share
        within 5 ms (exact: 5 ms is a bucket bound) and the mean (exact)
    proto_measure.py cpu PID SECONDS LABEL
        governord's CPU over SECONDS, every thread: the sum of
        /proc/PID/task/*/schedstat run times (ns) and utime+stime of
        /proc/PID/stat (clock ticks) as a cross-check, as % of one core
    proto_measure.py py-client SOCKET NAME HOLD_BYTES
        the Python shrink client (clients/python/governor_client.py): holds
        HOLD_BYTES, releases what it is asked for, then counts HOLD_BYTES
        again (nothing is really allocated)
    proto_measure.py py-peer
        the Python echo peer of `proto_client echo`: on the socket at fd 0,
        reads each line, parses it, answers a `released` line
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTT = "governor_client_shrink_round_trip_seconds"


def histogram(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    buckets = [(float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2)))
               for m in re.finditer(rf'^{RTT}_bucket{{le="([^"]+)"}} (\d+)$', text, re.M)]
    total = float(re.search(rf"^{RTT}_sum (\S+)$", text, re.M).group(1))
    count = int(re.search(rf"^{RTT}_count (\d+)$", text, re.M).group(1))
    return buckets, total, count


def quantile(buckets, count, q):
    """Linear interpolation within the bucket holding the q-th observation
    (what Prometheus' histogram_quantile does)."""
    want = q * count
    lower, below = 0.0, 0
    for bound, cum in buckets:
        if cum >= want:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (want - below) / max(cum - below, 1)
        lower, below = bound, cum
    return lower


def rtt(port, seconds, label, cmd):
    client = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = client.stdout.readline()
    if not line.startswith("registered"):
        sys.exit(f"{label}: the client did not register ({line!r})")
    b0, s0, c0 = histogram(port)
    t0 = time.monotonic()
    time.sleep(seconds)
    b1, s1, c1 = histogram(port)
    wall = time.monotonic() - t0
    client.stdin.close()
    client.wait(10)
    buckets = [(b, c - p) for (b, c), (_, p) in zip(b1, b0)]
    n = c1 - c0
    if n == 0:
        sys.exit(f"{label}: no shrink answered in {seconds} s")
    within5 = next(c for b, c in buckets if b == 0.005)
    print(f"{label}: n={n} rate={n / wall:.0f}/s p50_ms={quantile(buckets, n, 0.5) * 1e3:.3f} "
          f"p99_ms={quantile(buckets, n, 0.99) * 1e3:.3f} mean_ms={(s1 - s0) / n * 1e3:.3f} "
          f"within_5ms={100 * within5 / n:.2f}%")
    print(f"{label}: buckets " + " ".join(
        f"le{b * 1e3:g}ms={c}" for b, c in buckets if c and b != float('inf')) +
        f" inf={buckets[-1][1]}")


def cpu_now(pid):
    ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ns += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError):
            pass  # a thread that just ended
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return ns, int(f[11]) + int(f[12])


def cpu(pid, seconds, label):
    hz = os.sysconf("SC_CLK_TCK")
    n0, k0 = cpu_now(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    n1, k1 = cpu_now(pid)
    wall = time.monotonic() - t0
    print(f"{label}: cpu_pct={100 * (n1 - n0) / 1e9 / wall:.4f} cpu_ms={(n1 - n0) / 1e6:.1f} "
          f"wall_s={wall:.1f} stat_ticks={k1 - k0} stat_pct={100 * (k1 - k0) / hz / wall:.3f}")


def py_client(path, name, hold):
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
    from governor_client import GovernorClient
    c = GovernorClient(name, path=path, on_shrink=lambda n, level, reason: min(n, hold),
                       counter=lambda: (hold, 1))
    c.connect(bytes=hold, objects=1)
    print("registered 1", flush=True)
    sys.stdin.read()
    c.close()


def py_peer():
    s = socket.socket(fileno=0)
    for raw in s.makefile("rb"):
        msg = json.loads(raw)
        s.sendall((json.dumps({"op": "released", "seq": msg["seq"], "bytes": msg["bytes"]}) +
                   "\n").encode())


def main(argv):
    what = argv[1]
    if what == "cgroup":
        sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
        from cgroupfs import GIB, CgroupDir
        CgroupDir(argv[2], current=int(float(argv[3]) * GIB), max_=GIB, inactive_file=0)
    elif what == "rtt":
        rtt(int(argv[2]), float(argv[3]), argv[4], argv[argv.index("--") + 1:])
    elif what == "cpu":
        cpu(int(argv[2]), float(argv[3]), argv[4])
    elif what == "py-client":
        py_client(argv[2], argv[3], int(argv[4]))
    elif what == "py-peer":
        py_peer()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
