"""governord as a process: HTTP, governing a cgroup directory the test
rewrites, live policy reloads the kubelet's way, signals, and the CLI."""
import http.client
import os
import signal
import socket
import subprocess
import time

from cgroupfs import GIB, MIB
from conftest import parallel
from daemon import GOVERNORD, scaled, settle, write_file
from kubelet import ConfigMapDir

FAST = "[governor]\ninterval_ms = 50\ncooldown_ms = 0\n"


def test_counter_is_the_seeds_and_http_is_strict(cgroup, daemons, tmp_path):
    d = daemons(["--cgroup", cgroup.path])
    status, headers, body = d.request("/counter")
    assert (status, body) == (200, b"Counter value: 1")
    assert headers["Content-Type"].startswith("text/plain")
    assert d.get("/counter") == (200, "Counter value: 2")

    status, headers, body = d.request("/counter", method="HEAD")
    assert status == 200 and body == b""
    assert d.get("/counter") == (200, "Counter value: 3")  # HEAD uses no value

    assert d.request("/nope")[0] == 404
    assert d.request("/counter/")[0] == 404
    status, headers, _ = d.request("/counter", method="POST", body=b"x=1")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert d.request("/governor", method="DELETE")[0] == 405
    # a body on a GET is drained and ignored
    status, _, body = d.request("/counter", body=b"a" * 100000,
                                headers={"Content-Type": "text/plain"})
    assert (status, body) == (200, b"Counter value: 4")

    assert d.get("/healthz") == (200, "ok\n")
    assert d.get("/readyz") == (200, "ready\n")
    code, body = d.get("/metrics")
    assert code == 200 and "governor_" in body


def test_counter_values_are_unique_under_concurrency(cgroup, daemons):
    d = daemons(["--cgroup", cgroup.path, "--threads", "4"])

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=scaled(10))
        seen = []
        for _ in range(50):
            conn.request("GET", "/counter")
            resp = conn.getresponse()
            body = resp.read().decode()
            assert resp.status == 200
            seen.append(int(body.rsplit(" ", 1)[1]))
        conn.close()
        return seen

    values = [v for chunk in parallel(16, client) for v in chunk]
    assert sorted(values) == list(range(1, 16 * 50 + 1))


def test_usage_climbs_governor_shrinks_the_buffer(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", FAST + "[collector]\nblock_size = 4Mi\n"
                          "interval_ms = 10\n")
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    st = d.wait_for(lambda s: s["buffer"]["blocks"] >= 10, what="the buffer to grow")
    assert st["level"] == "normal"
    assert st["memory"]["limit_source"] == "cgroup"
    assert st["memory"]["limit_bytes"] == GIB
    assert st["cgroup"]["version"] == "v2"

    cgroup.set(current=int(0.90 * GIB))  # something else in the pod grows
    st = d.wait_for(lambda s: s["level"] == "high" and
                    any(x["action"] == "shrink" for x in s["decisions"]),
                    what="a shrink at high")
    shrink = next(x for x in st["decisions"] if x["action"] == "shrink")
    assert shrink["level"] == "high" and not shrink["dry_run"]
    assert shrink["released_bytes"] > 0
    assert shrink["reason"].startswith("working set 89% of 1Gi >= high 85%; release")
    assert shrink["usage_bytes"] == int(0.90 * GIB) - 4 * MIB
    assert shrink["limit_bytes"] == GIB
    assert st["buffer"]["bytes"] == shrink["buffer_after_bytes"] or \
        st["buffer"]["bytes"] < shrink["buffer_after_bytes"] + 8 * MIB
    # the buffer does not grow again while usage stays high
    settle(0.3, "the collector would add a block every 10 ms")
    assert d.status()["buffer"]["bytes"] <= st["buffer"]["bytes"]

    # back down, through the hysteresis band, to normal: the buffer regrows
    cgroup.set(current=200 * MIB)
    d.wait_for(lambda s: s["level"] == "normal" and s["buffer"]["blocks"] >= 5,
               what="normal again, with a buffer")
    # critical: everything above the floor goes at once
    cgroup.set(current=int(0.97 * GIB))
    st = d.wait_for(lambda s: s["level"] == "critical", what="critical")
    release = next(x for x in st["decisions"] if x["action"] == "release")
    assert release["from"] == "normal" and release["level"] == "critical"
    assert release["released_bytes"] >= 5 * 4 * MIB
    # at most the one block the collector was granted before the release and
    # mapped while it ran (the collector allocates outside the governor's lock)
    assert release["buffer_after_bytes"] <= 4 * MIB
    assert d.stop() == 0


def test_in_place_resize_is_seen_within_one_interval(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", "[governor]\ninterval_ms = 300\n"
                          "[collector]\nblock_size = 8Mi\ninterval_ms = 5\n")
    cgroup.set(current=400 * MIB)
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    d.wait_for(lambda s: s["buffer"]["blocks"] >= 5, what="a buffer")
    before = d.status()["wakeups"]["timer"]
    cgroup.set(max_=384 * MIB)  # the kubelet lowers memory.max below usage
    st = d.wait_for(lambda s: s["memory"]["limit_bytes"] == 384 * MIB, what="the new limit")
    # seen by the first or second timer tick after the write, not later
    assert st["wakeups"]["timer"] - before <= 2
    d.wait_for(lambda s: any(x["reason"].startswith("limit 1Gi -> 384Mi:")
                             for x in s["decisions"]), what="a decision naming the limit")
    st = d.status()
    rec = next(x for x in st["decisions"] if x["reason"].startswith("limit 1Gi -> 384Mi:"))
    assert rec["level"] == "critical" and rec["action"] == "release"
    assert st["buffer"]["bytes"] == 0


def test_configmap_update_reloads_within_2s(cgroup, daemons, tmp_path):
    cm = ConfigMapDir(tmp_path / "config", {"policy.ini": FAST})
    d = daemons(["--cgroup", cgroup.path, "--policy", cm.file("policy.ini")])
    st = d.status()
    assert st["policy"]["generation"] == 1
    assert st["policy"]["source"] == cm.file("policy.ini")
    assert st["policy"]["values"]["thresholds"]["high"] == "0.85"

    t0 = time.monotonic()
    cm.update({"policy.ini": FAST + "[thresholds]\nhigh = 0.9\n"})
    st = d.wait_for(lambda s: s["policy"]["generation"] == 2, timeout=2.0,
                    what="generation 2 within 2 s")
    assert time.monotonic() - t0 < scaled(2.0)
    assert st["policy"]["values"]["thresholds"]["high"] == "0.9"
    assert st["policy"]["last_error"] is None

    # a broken update is rejected: the old policy stays, the error shows
    cm.update({"policy.ini": FAST + "[thresholds]\nhigh = 0.5\n"})
    st = d.wait_for(lambda s: s["policy"]["last_error"] is not None, timeout=2.0,
                    what="the rejection")
    assert st["policy"]["generation"] == 2
    assert st["policy"]["values"]["thresholds"]["high"] == "0.9"
    assert "policy.ini:5: thresholds.high: soft (0.7) must be below high (0.5)" in \
        st["policy"]["last_error"]
    failed = [r for r in d.records() if r["event"] == "reload_failed"]
    assert len(failed) == 1 and failed[0]["policy_generation"] == 2
    assert d.get("/readyz")[0] == 200  # still serving with the old policy

    # fixed: a new generation, the error cleared
    cm.update({"policy.ini": FAST.replace("[governor]\n", "[governor]\nmode = observe\n")})
    st = d.wait_for(lambda s: s["policy"]["generation"] == 3, timeout=2.0, what="generation 3")
    assert st["policy"]["last_error"] is None
    assert st["mode"] == "observe"


def test_reload_keeps_the_buffer_and_the_server(cgroup, daemons, tmp_path):
    cm = ConfigMapDir(tmp_path / "config", {"policy.ini": FAST + "[collector]\n"
                                            "block_size = 2Mi\ninterval_ms = 5\n"})
    d = daemons(["--cgroup", cgroup.path, "--policy", cm.file("policy.ini")])
    d.wait_for(lambda s: s["buffer"]["blocks"] >= 20, what="a buffer")
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=scaled(5))
    conn.request("GET", "/counter")
    first = conn.getresponse().read()
    cm.update({"policy.ini": FAST + "[collector]\nenabled = false\n"})
    st = d.wait_for(lambda s: s["policy"]["generation"] == 2, what="the reload")
    assert st["buffer"]["blocks"] >= 20
    conn.request("GET", "/counter")  # same keep-alive connection
    second = conn.getresponse().read()
    conn.close()
    assert int(second.split()[-1]) == int(first.split()[-1]) + 1


def test_sighup_reloads_a_file_outside_the_watched_directory(cgroup, daemons, tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    target = write_file(real / "policy.ini", FAST)
    watched = tmp_path / "etc"
    watched.mkdir()
    os.symlink(target, watched / "policy.ini")
    d = daemons(["--cgroup", cgroup.path, "--policy", str(watched / "policy.ini")])
    write_file(target, FAST + "[collector]\nblock_size = 1Mi\n")
    settle(0.5, "a watched change would be read after 100 ms + 250 ms of quiet")
    assert d.status()["policy"]["generation"] == 1  # nothing watched changed
    d.send_signal(signal.SIGHUP)
    st = d.wait_for(lambda s: s["policy"]["generation"] == 2, what="SIGHUP reload")
    assert st["policy"]["values"]["collector"]["block_size"] == "1Mi"
    assert any(r["event"] == "reload" and r.get("trigger") == "SIGHUP" for r in d.records())


def test_observe_mode_records_but_never_acts(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", FAST.replace("[governor]\n", "[governor]\nmode = observe\n")
                          + "[collector]\nblock_size = 4Mi\ninterval_ms = 10\n")
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    d.wait_for(lambda s: s["buffer"]["blocks"] >= 5, what="a buffer")
    cgroup.set(current=int(0.90 * GIB))
    st = d.wait_for(lambda s: any(x["action"] == "shrink" for x in s["decisions"]),
                    what="a dry-run shrink")
    rec = next(x for x in st["decisions"] if x["action"] == "shrink")
    assert rec["dry_run"] is True and rec["released_bytes"] == 0
    assert rec["would_release_bytes"] > 0
    settle(0.3, "an enforcing governor would release within a tick")
    after = d.status()
    assert after["mode"] == "observe"
    assert after["buffer"]["bytes"] >= st["buffer"]["bytes"]  # nothing was released
    assert after["buffer"]["refused"] == 0


def test_readyz_follows_the_memory_source(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", FAST)
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    assert d.get("/readyz") == (200, "ready\n")
    cgroup.remove("memory.current")  # the cgroup went away
    deadline = time.monotonic() + scaled(3)
    while d.get("/readyz")[0] != 503 and time.monotonic() < deadline:
        time.sleep(0.02)
    code, body = d.get("/readyz")
    assert code == 503
    assert body.startswith("not ready: memory source not readable:")
    assert "memory.current: No such file or directory" in body
    st = d.status()
    assert st["memory"]["readable"] is False
    assert "memory.current" in st["memory"]["error"]
    assert d.get("/healthz")[0] == 200  # alive, just not ready
    assert d.get("/counter")[0] == 200
    cgroup.set(current=120 * MIB)  # back
    d.wait_for(lambda s: s["memory"]["readable"], what="recovery")
    assert d.get("/readyz") == (200, "ready\n")


def test_limit_sources(cgroup, daemons, tmp_path):
    cgroup.set(max_="max")
    d = daemons(["--cgroup", cgroup.path])
    st = d.status()
    assert st["memory"]["limit_source"] == "host"
    # what the host can give: min(MemTotal, current + MemAvailable)
    mem = st["memory"]
    assert 0 < mem["host_available_bytes"] < mem["host_memtotal_bytes"]
    assert mem["limit_bytes"] <= mem["host_memtotal_bytes"]
    assert abs(mem["limit_bytes"] - (mem["current_bytes"] + mem["host_available_bytes"])) \
        < 512 * MIB or mem["limit_bytes"] == mem["host_memtotal_bytes"]
    d.stop()
    policy = write_file(tmp_path / "p.ini", "[memory]\nlimit = 3Gi\n")
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    st = d.status()
    assert (st["memory"]["limit_source"], st["memory"]["limit_bytes"]) == ("policy", 3 * GIB)
    cgroup.set(high=512 * MIB)  # a cgroup limit always wins
    st = d.wait_for(lambda s: s["memory"]["limit_source"] == "cgroup", what="cgroup limit")
    assert st["memory"]["limit_bytes"] == 512 * MIB
    assert st["memory"]["limit_file"].endswith("/memory.high")


def test_status_document_shape(cgroup, daemons, tmp_path):
    env = {"POD_NAME": "metrics-app-7d9f", "POD_NAMESPACE": "default", "NODE_NAME": "kind-w1"}
    d = daemons(["--cgroup", cgroup.path], env=env)
    st = d.status()
    assert st["pod"] == {"name": "metrics-app-7d9f", "namespace": "default", "node": "kind-w1"}
    assert st["mode"] == "enforce"
    assert st["policy"]["source"] in ("embedded", "/etc/governor/policy.ini")
    mem = st["memory"]
    assert mem["current_bytes"] == 100 * MIB
    assert mem["working_set_bytes"] == 96 * MIB
    assert mem["usage_bytes"] == 96 * MIB and mem["signal"] == "working_set"
    assert abs(mem["ratio"] - 96 / 1024) < 1e-6
    assert mem["oom_kills"] == 0
    for key in ("timer", "events", "pressure", "policy", "events_watch", "pressure_trigger"):
        assert key in st["wakeups"]
    # a plain directory cannot POLLPRI: memory.events is watched with inotify
    assert st["wakeups"]["events_watch"] == "inotify"
    assert st["wakeups"]["pressure_trigger"] == "none: memory.pressure is not on cgroupfs"
    assert st["thresholds"]["high_bytes"] == int(0.85 * GIB)
    assert set(st["buffer"]) >= {"bytes", "blocks", "refused"}


def test_memory_events_wake_the_governor(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", "[governor]\ninterval_ms = 60000\n")
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    before = d.status()
    cgroup.set(current=int(0.96 * GIB))
    # the kernel notes a limit hit (the file replaced by rename: a new inode)
    cgroup.set_events(max=1, replace=True)
    st = d.wait_for(lambda s: s["level"] == "critical", timeout=3,
                    what="an event-driven tick (the timer is 60 s)")
    assert st["wakeups"]["events"] > before["wakeups"]["events"]
    assert st["wakeups"]["timer"] == before["wakeups"]["timer"]
    cgroup.set_events(oom_kill=1, replace=True)
    d.wait_for(lambda s: s["memory"]["oom_kills"] == 1, timeout=3, what="oom_kill seen")


def test_sigterm_finishes_and_exits_zero(cgroup, daemons):
    d = daemons(["--cgroup", cgroup.path])
    assert d.get("/counter")[0] == 200
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < scaled(5)
    events = [r["event"] for r in d.records()]
    assert events[-2:] == ["stop", "exit"]
    with socket.socket() as s:  # nothing listens any more
        assert s.connect_ex(("127.0.0.1", d.port)) != 0


def test_sigint_exits_zero_with_idle_keepalive_connections(cgroup, daemons):
    d = daemons(["--cgroup", cgroup.path])
    conns = []
    for _ in range(20):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=scaled(5))
        c.request("GET", "/counter")
        c.getresponse().read()
        conns.append(c)  # left open and idle
    t0 = time.monotonic()
    assert d.stop(signal.SIGINT) == 0
    assert time.monotonic() - t0 < scaled(5)
    for c in conns:
        c.close()


def test_slow_client_does_not_block_others(cgroup, daemons):
    d = daemons(["--cgroup", cgroup.path, "--threads", "1"])
    slow = socket.create_connection(("127.0.0.1", d.port))
    slow.sendall(b"GET /counter HTTP/1.1\r\nHost: x\r\n")  # never finishes
    t0 = time.monotonic()
    for _ in range(20):
        assert d.get("/counter")[0] == 200
    assert time.monotonic() - t0 < scaled(3)
    slow.close()


# ---- command line ----------------------------------------------------------

def run(*args, stdin=None, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([GOVERNORD, *args], input=stdin, capture_output=True, text=True,
                          timeout=scaled(10), env=e)


def test_check_policy_accepts_the_presets():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "policies")
    for name in ("default.ini", "conservative.ini", "aggressive.ini"):
        r = run("--check-policy", os.path.join(root, name))
        assert r.returncode == 0, r.stderr
        assert "[thresholds]" in r.stdout and r.stderr == ""
    r = run("--check-policy", "-", stdin="[governor]\nmode = observe\n")
    assert r.returncode == 0 and "mode = observe" in r.stdout


def test_check_policy_reports_errors(tmp_path):
    bad = write_file(tmp_path / "bad.ini", "[governor]\nmode = fast\n[thresholds]\n"
                       "soft = 0.9\nhigh = 0.85\n[extra]\n")
    r = run("--check-policy", bad)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"{bad}:2: governor.mode: 'fast' is not a mode (use enforce or observe)",
        f"{bad}:6: [extra]: unknown section (expected governor, memory, thresholds or "
        "collector)",
    ]
    r = run("--check-policy", str(tmp_path / "missing.ini"))
    assert r.returncode == 1 and "cannot open: No such file or directory" in r.stderr
    r = run("--check-policy", str(tmp_path))
    assert r.returncode == 1 and "is a directory" in r.stderr


def test_bad_flags_exit_2_with_usage():
    for args in (["--bogus"], ["--threads", "0"], ["--threads", "x"], ["--log-format", "xml"],
                 ["--log-level", "loud"], ["extra-arg"], ["--listen"]):
        r = run(*args)
        assert r.returncode == 2, args
        assert r.stderr
    r = run("--help")
    assert r.returncode == 0 and "--check-policy FILE" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("governord ")


def test_start_failures_exit_1(tmp_path, cgroup):
    bad = write_file(tmp_path / "bad.ini", "[governor]\ninterval_ms = 1\n")
    r = run("--policy", bad, "--cgroup", cgroup.path, "--listen", "127.0.0.1:0")
    assert r.returncode == 1
    assert f"{bad}:2: governor.interval_ms: 1 ms is out of range (10..60000)" in r.stderr
    r = run("--cgroup", str(tmp_path), "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "neither memory.current (v2) nor" in r.stderr
    r = run("--cgroup", cgroup.path, "--listen", "nonsense")
    assert r.returncode == 1 and "expected ADDR:PORT" in r.stderr
    with socket.socket() as s:  # a port in use
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = run("--cgroup", cgroup.path, "--listen", f"127.0.0.1:{s.getsockname()[1]}")
        assert r.returncode == 1 and "cannot listen" in r.stderr


def test_environment_equivalents(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", "[governor]\nmode = observe\n")
    d = daemons([], env={"GOVERNOR_LISTEN": "127.0.0.1:0", "GOVERNOR_POLICY": policy,
                         "GOVERNOR_CGROUP": cgroup.path})
    st = d.status()
    assert st["mode"] == "observe"
    assert st["policy"]["source"] == policy
    assert st["cgroup"]["path"] == os.path.realpath(cgroup.path)
    # flags win over the environment
    d2 = daemons(["--policy", write_file(tmp_path / "q.ini", "[governor]\nmode = enforce\n")],
                 env={"GOVERNOR_POLICY": policy, "GOVERNOR_CGROUP": cgroup.path})
    assert d2.status()["mode"] == "enforce"


def test_ipv6_listen(cgroup, daemons):
    if not socket.has_ipv6:
        return
    d = daemons(["--cgroup", cgroup.path, "--listen", "[::1]:0"])
    conn = http.client.HTTPConnection("::1", d.port, timeout=scaled(5))
    conn.request("GET", "/counter")
    assert conn.getresponse().read() == b"Counter value: 1"
    conn.close()
