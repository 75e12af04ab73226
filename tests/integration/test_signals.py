"""A SIGTERM at any moment of start-up is a graceful stop (exit 0).

Kubernetes may send SIGTERM right after it started the container (a
roll-out that is rolled back, a node drain).  governord blocks SIGTERM,
SIGINT and SIGHUP first thing in main(), so a signal that arrives while it
is still starting stays pending until the main thread takes it with
sigwaitinfo(): the daemon finishes starting, then stops as it would later.
The tests look at the process's own signal mask in /proc to know that main()
is running, and signal it at several moments from there on."""
import os
import signal
import time

import pytest

from cgroupfs import CgroupDir
from daemon import Daemon, scaled, wait_until, write_file
from observe_helpers import policy_text

UNDER_VALGRIND = bool(os.environ.get("VALGRIND_LOG_DIR"))


def sigterm_blocked(pid):
    """True once the process blocks SIGTERM (SigBlk in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def start(tmp_path, name, preexec_fn=None):
    cg = CgroupDir(tmp_path / f"cgroup-{name}")
    path = write_file(tmp_path / f"policy-{name}.ini", policy_text())
    return Daemon(["--cgroup", cg.path, "--policy", path], log_path=tmp_path / f"{name}.log",
                  wait_ready=False, preexec_fn=preexec_fn)


def assert_graceful(d):
    try:
        code = d.proc.wait(timeout=scaled(10))
    finally:
        d.close()
    assert code == 0, d.log_text()
    events = [r["event"] for r in d.records()]
    assert events[-2:] == ["stop", "exit"], events


def test_a_sigterm_pending_at_exec_is_a_graceful_stop(tmp_path):
    """The earliest moment there is: the signal is already pending (blocked
    by the parent, inherited across exec) when governord's main() begins."""
    def pending_sigterm():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        os.kill(os.getpid(), signal.SIGTERM)

    d = start(tmp_path, "pending", preexec_fn=pending_sigterm)
    assert_graceful(d)
    assert "start" in [r["event"] for r in d.records()], "it finished starting first"


@pytest.mark.skipif(UNDER_VALGRIND, reason="valgrind's own signal mask hides the guest's")
@pytest.mark.parametrize("delay_ms", [0, 1, 2, 5, 10, 20, 50])
def test_a_sigterm_at_any_moment_of_start_up_exits_zero(tmp_path, delay_ms):
    d = start(tmp_path, f"at-{delay_ms}")
    wait_until(lambda: d.proc.poll() is not None or sigterm_blocked(d.pid), 10,
               "main() blocking SIGTERM")
    time.sleep(delay_ms / 1000)  # the moment of start-up under test, not a wait
    d.send_signal(signal.SIGTERM)
    assert_graceful(d)
