"""Load against the real daemon while its governor works.

- Counter correctness: many concurrent clients (keep-alive, one connection
  per request, pipelined) while the collector churns and the governor
  shrinks; every answer is collected and the values are exactly 1..N.
- A wrk run (256 connections, 20 s) while the governor shrinks: no non-2xx
  answer, no socket error, and /healthz keeps answering within a generous
  bound (no timing claims: those are in bench/).
"""
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from cgroupfs import GIB
from conftest import complete_responses, parallel
from daemon import scaled, write_file

# the governor at `high` all the time: usage is pinned at 90% of the limit
# (a cgroup directory the test writes), so every tick shrinks the buffer and
# every collector block is refused or replaces old ones
CHURN = """[governor]
interval_ms = 10
cooldown_ms = 0
[collector]
block_size = 1Mi
interval_ms = 2
"""


def shrinking_daemon(cgroup, daemons, tmp_path, threads=None):
    policy = write_file(tmp_path / "churn.ini", CHURN)
    args = ["--cgroup", cgroup.path, "--policy", policy]
    if threads:
        args += ["--threads", str(threads)]
    d = daemons(args)
    d.wait_for(lambda s: s["buffer"]["blocks"] >= 5, what="a buffer")
    cgroup.set(current=int(0.90 * GIB))
    d.wait_for(lambda s: s["level"] == "high", what="level high")
    return d


def governor_work(st):
    return st["buffer"]["evictions"] + st["buffer"]["refused"] + sum(
        1 for x in st["decisions"] if x["action"] in ("shrink", "release"))


def test_counter_is_exact_under_concurrent_load(cgroup, daemons, tmp_path):
    d = shrinking_daemon(cgroup, daemons, tmp_path, threads=4)
    work_before = governor_work(d.status())
    per_client = 150

    def keepalive(i):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=scaled(10))
        out = []
        for _ in range(per_client):
            conn.request("GET", "/counter")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            out.append(int(body.split()[-1]))
        conn.close()
        return out

    def one_per_connection(i):
        out = []
        for _ in range(per_client // 3):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=scaled(10))
            s.sendall(b"GET /counter HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            assert data.startswith(b"HTTP/1.1 200 "), data[:100]
            out.append(int(data.rsplit(b" ", 1)[1]))
        return out

    def pipelined(i):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=scaled(10))
        s.sendall(b"GET /counter HTTP/1.1\r\nHost: x\r\n\r\n" * per_client)
        data = b""
        while complete_responses(data) < per_client:
            chunk = s.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
        s.close()
        return [int(x) for x in re.findall(rb"Counter value: (\d+)", data)]

    clients = [keepalive] * 24 + [one_per_connection] * 8 + [pipelined] * 8
    results = parallel(len(clients), lambda i: clients[i](i))
    values = sorted(v for chunk in results for v in chunk)
    n = len(clients) * per_client - 8 * (per_client - per_client // 3)
    assert len(values) == n
    # exactly 1..N: no value served twice, none skipped
    assert values == list(range(1, n + 1))
    assert d.get("/counter") == (200, f"Counter value: {n + 1}")
    assert governor_work(d.status()) > work_before, "the governor did not work meanwhile"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is in scripts/deps.sh test")
def test_wrk_256_connections_while_the_governor_shrinks(cgroup, daemons, tmp_path):
    d = shrinking_daemon(cgroup, daemons, tmp_path)
    before = d.status()
    fds_before = d.fds()
    report = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "wrk-report.lua")
    duration = int(os.environ.get("GOVERNORD_LOAD_SECONDS", "20"))
    wrk = subprocess.Popen(["wrk", "-t2", "-c256", f"-d{duration}s",
                            f"--timeout={int(scaled(10))}s", "-s", report,
                            f"http://127.0.0.1:{d.port}/counter"],
                           stdout=subprocess.PIPE, text=True)
    health = []
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                code, body = d.get("/healthz")
            except OSError as e:
                code, body = None, repr(e)
            health.append((code, body, time.monotonic() - t0))
            stop.wait(0.1)

    t = threading.Thread(target=probe)
    t.start()
    try:
        out, _ = wrk.communicate(timeout=duration + scaled(30))
    finally:
        stop.set()
        t.join()
    assert wrk.returncode == 0, out
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = dict(kv.split("=") for kv in line.split()[1:])
    print("\n" + line)
    assert int(r["requests"]) > 0
    assert r["non2xx"] == "0", line
    assert (r["connect"], r["read"], r["write"], r["timeout"]) == ("0", "0", "0", "0"), line
    # /healthz answered every time, each within a bound generous enough for a
    # machine whose CPUs are also busy with wrk itself (and, in CI's loaded
    # run, two busy loops): probes are 0.1 s apart, at least one a second came
    assert len(health) >= duration
    assert all(code == 200 for code, _, _ in health), [h for h in health if h[0] != 200][:5]
    slowest = max(dt for _, _, dt in health)
    print(f"/healthz: {len(health)} probes, slowest {slowest * 1000:.0f} ms")
    assert slowest < scaled(5)
    after = d.status()
    assert governor_work(after) > governor_work(before), "the governor did not shrink"
    assert after["level"] == "high"
    # every connection wrk opened is closed again
    deadline = time.monotonic() + scaled(5)
    while len(d.fds()) > len(fds_before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(d.fds()) <= len(fds_before)
