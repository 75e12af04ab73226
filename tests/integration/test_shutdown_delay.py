"""--shutdown-delay: after SIGTERM, /readyz fails at once, everything else is
served for the delay, then governord stops and exits 0.

This replaces the chart's old preStop `sleep`: the image has no shell, so
the wait that lets Kubernetes take the pod out of its Services happens in
governord itself.  The 2 s delay is the thing under test, so the test lets
real time pass while it polls, and checks the timing against the monotonic
clock taken before the signal was sent (governord's delay starts after that,
so it ends no earlier than 2 s after it)."""
import signal
import subprocess
import time

from daemon import GOVERNORD, clean_env, scaled

DELAY = 2.0
# /counter is polled until this long before the delay ends; a request sent
# later may legitimately meet the closing listener
MARGIN = 0.25


def test_sigterm_fails_readyz_at_once_serves_for_the_delay_then_exits_0(cgroup, daemons):
    d = daemons(["--cgroup", cgroup.path, "--shutdown-delay", "2s"])
    assert d.get("/readyz") == (200, "ready\n")
    assert d.get("/counter") == (200, "Counter value: 1")

    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    # "at once": the first answers after the signal may still race its
    # delivery to the main thread, so poll with a short deadline
    deadline = t0 + scaled(1.0)
    while True:
        code, body = d.get("/readyz")
        if code == 503:
            break
        assert code == 200 and time.monotonic() < deadline, \
            f"/readyz still {code} {time.monotonic() - t0:.3f} s after SIGTERM"
        time.sleep(0.01)
    t_ready_failed = time.monotonic() - t0
    assert body == "shutting down\n"
    rec = d.wait_record("shutdown_delay")
    assert rec["delay_ms"] == 2000

    n = 1
    answered_until = 0.0
    while time.monotonic() - t0 < DELAY - MARGIN:
        n += 1
        assert d.get("/counter") == (200, f"Counter value: {n}")
        assert d.get("/readyz") == (503, "shutting down\n")
        assert d.get("/healthz") == (200, "ok\n")
        assert d.proc.poll() is None, "exited during the delay"
        answered_until = time.monotonic() - t0
        time.sleep(0.05)
    assert n > 3

    rc = d.proc.wait(timeout=scaled(10))
    exited = time.monotonic() - t0
    print(f"\n/readyz 503 after {t_ready_failed * 1000:.0f} ms; /counter answered "
          f"{n - 1} times up to {answered_until:.2f} s; exit {rc} after {exited:.2f} s")
    assert rc == 0
    assert exited >= DELAY, f"exited {exited:.3f} s after SIGTERM, before the 2 s delay"
    assert exited < DELAY + scaled(5)
    events = [r["event"] for r in d.records()]
    assert events.index("shutdown_delay") < events.index("stop") < events.index("exit")


def test_a_second_signal_during_the_delay_stops_at_once(cgroup, daemons):
    for first, second in ((signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM),
                          (signal.SIGTERM, signal.SIGINT)):
        d = daemons(["--cgroup", cgroup.path, "--shutdown-delay", "10m"])
        d.send_signal(first)
        d.wait_record("shutdown_delay")
        assert d.get("/readyz") == (503, "shutting down\n")
        t0 = time.monotonic()
        d.send_signal(second)
        assert d.proc.wait(timeout=scaled(10)) == 0
        assert time.monotonic() - t0 < scaled(10)
        d.wait_record("exit")


def test_sighup_during_the_delay_still_reloads(cgroup, daemons, tmp_path):
    policy = tmp_path / "policy.ini"
    policy.write_text("[governor]\ninterval_ms = 100\n")
    d = daemons(["--cgroup", cgroup.path, "--policy", str(policy), "--shutdown-delay", "10m"])
    d.send_signal(signal.SIGTERM)
    d.wait_record("shutdown_delay")
    generation = d.status()["policy"]["generation"]
    policy.write_text("[governor]\ninterval_ms = 200\n")
    d.send_signal(signal.SIGHUP)
    d.wait_for(lambda s: s["policy"]["generation"] > generation, what="the reload")
    assert d.get("/readyz") == (503, "shutting down\n")
    d.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=scaled(10)) == 0


def test_the_environment_variable_and_zero(cgroup, daemons):
    d = daemons(["--cgroup", cgroup.path], env={"GOVERNOR_SHUTDOWN_DELAY": "500ms"})
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    assert d.wait_record("shutdown_delay")["delay_ms"] == 500
    assert d.proc.wait(timeout=scaled(10)) == 0
    assert time.monotonic() - t0 >= 0.5
    # the flag wins over the variable; 0 is the old behaviour: no delay
    d = daemons(["--cgroup", cgroup.path, "--shutdown-delay", "0"],
                env={"GOVERNOR_SHUTDOWN_DELAY": "10m"})
    d.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=scaled(10)) == 0
    assert "shutdown_delay" not in [r["event"] for r in d.records()]


def test_bad_durations_are_usage_errors(cgroup):
    for args, env in ((["--shutdown-delay", "2"], {}), (["--shutdown-delay", "2h"], {}),
                      (["--shutdown-delay", ""], {}), (["--shutdown-delay", "-1s"], {}),
                      (["--shutdown-delay", "1.5ms"], {}), ([], {"GOVERNOR_SHUTDOWN_DELAY": "5x"})):
        r = subprocess.run([GOVERNORD, "--cgroup", cgroup.path, *args], env=clean_env(env),
                           capture_output=True, text=True, timeout=scaled(10))
        assert r.returncode == 2, (args, env, r.stderr)
        assert "--shutdown-delay" in r.stderr, r.stderr
