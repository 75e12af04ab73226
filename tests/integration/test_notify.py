"""sd_notify against a real AF_UNIX datagram socket: the test is systemd.

The socket is bound by the test and passed in NOTIFY_SOCKET, exactly as the
service manager does; every datagram is checked for its content, its order,
its sender (SCM_CREDENTIALS) and, for WATCHDOG=1, its timing."""
import ctypes
import os
import signal
import time

import pytest

from cgroupfs import GIB, MIB, CgroupDir
from daemon import Daemon, scaled, settle, wait_until, write_file
from observe_helpers import NotifySocket, policy_text


@pytest.fixture
def manager(tmp_path):
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


def kinds(messages):
    """The protocol messages in order, watchdog pings left out."""
    out = []
    for _, _, fields, _ in messages:
        if fields.get("WATCHDOG") == "1" and len(fields) == 1:
            continue
        for key in ("READY", "RELOADING", "STOPPING"):
            if fields.get(key) == "1":
                out.append(key)
                break
        else:
            out.append("STATUS" if "STATUS" in fields else "?" + repr(fields))
    return out


def pings(messages):
    return [t for t, _, fields, _ in messages if fields.get("WATCHDOG") == "1"]


def test_lifecycle_order_and_content(tmp_path, manager, daemons):
    cg = CgroupDir(tmp_path / "cgroup", max_=GIB, current=100 * MIB)
    path = write_file(tmp_path / "policy.ini", policy_text())
    g = daemons(["--cgroup", cg.path, "--policy", path],
                env={"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "1000000"})

    ready = manager.wait_for(lambda f: f.get("READY") == "1", what="READY=1")
    t_ready, pid, fields, _ = manager.snapshot()[ready]
    assert pid == g.pid, "READY=1 must come from the main process"
    assert fields["MAINPID"] == str(g.pid)
    assert fields["STATUS"].startswith("level normal, usage ")
    # READY means serving: the socket answers
    assert g.request("/counter")[0] == 200

    # a level change: STATUS with the level and the usage
    cg.set(current=int(0.90 * GIB), inactive_file=0)
    i = manager.wait_for(lambda f: f.get("STATUS", "").startswith("level high"),
                         what="STATUS=level high")
    assert manager.snapshot()[i][2]["STATUS"] == "level high, usage 921.6Mi of 1Gi"

    # a policy change on disk: RELOADING=1 with MONOTONIC_USEC, then READY=1
    before = time.monotonic()
    write_file(path + ".new", policy_text(interval_ms=60))
    os.rename(path + ".new", path)
    r1 = manager.wait_for(lambda f: f.get("RELOADING") == "1", what="RELOADING=1")
    after = time.monotonic()
    usec = int(manager.snapshot()[r1][2]["MONOTONIC_USEC"])
    assert before * 1e6 <= usec <= after * 1e6, "MONOTONIC_USEC is CLOCK_MONOTONIC"
    d1 = manager.wait_for(lambda f: f.get("READY") == "1", after=r1 + 1, what="READY=1")
    assert manager.snapshot()[d1][2]["STATUS"] == "policy generation 2 in force"

    # SIGHUP with the file unchanged: still RELOADING=1 ... READY=1 (systemd
    # 253's Type=notify-reload sends SIGHUP and waits for exactly that)
    before = time.monotonic()
    g.send_signal(signal.SIGHUP)
    r2 = manager.wait_for(lambda f: f.get("RELOADING") == "1", after=d1 + 1,
                          what="RELOADING=1 after SIGHUP")
    assert before * 1e6 <= int(manager.snapshot()[r2][2]["MONOTONIC_USEC"]) <= \
        time.monotonic() * 1e6
    manager.wait_for(lambda f: f.get("READY") == "1", after=r2 + 1, what="READY=1 after SIGHUP")

    time.sleep(2.0)  # a few more watchdog periods
    assert g.stop() == 0
    stopping = manager.wait_for(lambda f: f.get("STOPPING") == "1", what="STOPPING=1")
    msgs = manager.snapshot()

    assert kinds(msgs) == ["READY", "STATUS", "RELOADING", "READY", "RELOADING", "READY",
                           "STOPPING"]
    assert all(pid == g.pid for _, pid, _, _ in msgs)

    # WATCHDOG=1 at WATCHDOG_USEC=1s.  sd-event pings from the loop at most
    # every 1/4 period (the loop wakes every 50 ms here) and arms a timer for
    # 1/2..3/4 of the period when idle; systemd restarts after a 1 s gap
    ts = [t for t in pings(msgs) if t_ready - 1 <= t <= msgs[stopping][0]]
    span = ts[-1] - ts[0]
    assert len(ts) >= 4, ts
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    assert max(gaps) < 1.0, gaps
    assert min(gaps) >= 0.24, gaps
    assert 1.0 / 0.8 <= (len(ts) - 1) / span <= 1.0 / 0.24, (len(ts), span)


def governor_tid(pid):
    """The thread id of the daemon's governor thread (named "governor")."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == "governor":
                    return int(tid)
        except FileNotFoundError:
            pass
    raise AssertionError("no governor thread")


PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
# x86_64 numbers of epoll_wait, epoll_pwait and epoll_pwait2, as
# /proc/PID/task/TID/syscall shows them while sd-event waits.
EPOLL_WAIT_CALLS = ("232", "281", "441")
WALL = 0x40000000  # __WALL: wait for a thread of another process we trace


def _ptrace(request, tid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request}, {tid}): {os.strerror(err)}")


def freeze_in_syscall(pid, tid, timeout):
    """Stops one thread of pid with ptrace while it waits in a system call,
    as if that call never returned (a read of a hung filesystem); the other
    threads run on.  Retried until the thread is caught waiting in the event
    loop's epoll_wait: under valgrind a thread stopped anywhere else may hold
    valgrind's lock (its own code, or the read() by which it takes that lock)
    and stop every thread; valgrind runs a guest's epoll_wait with the lock
    released."""
    deadline = time.monotonic() + timeout
    while True:
        _ptrace(PTRACE_SEIZE, tid)
        _ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            nr = f.read().split()[0]
        if nr in EPOLL_WAIT_CALLS:
            return
        _ptrace(PTRACE_DETACH, tid)
        assert time.monotonic() < deadline, "the governor thread never waited in a call"
        time.sleep(0.005)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="EPOLL_WAIT_CALLS are x86_64 numbers")
def test_watchdog_stops_when_the_governor_loop_is_stuck(tmp_path, manager, daemons):
    """The pings come from the governor loop itself: stop the loop's thread
    inside a system call (ptrace: as if the call never returned -- a FIFO no
    longer does that, governord opens without blocking) and they stop while
    HTTP still answers; let it go and they resume."""
    cg = CgroupDir(tmp_path / "cgroup")
    path = write_file(tmp_path / "policy.ini", policy_text(interval_ms=50))
    g = daemons(["--cgroup", cg.path, "--policy", path],
                env={"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "600000"})
    manager.wait_for(lambda f: f.get("READY") == "1", what="READY=1")
    wait_until(lambda: len(pings(manager.snapshot())) >= 2, 3, "two pings")

    tid = governor_tid(g.pid)
    freeze_in_syscall(g.pid, tid, scaled(5))
    stuck_at = time.monotonic()
    try:
        settle(2.5, "the time under test: no ping in it")
        recent = [t for t in pings(manager.snapshot()) if t > stuck_at + 0.6]
        assert recent == [], "WATCHDOG=1 went on while the governor loop was blocked"
        assert g.request("/counter")[0] == 200          # the HTTP server is not the loop
        assert g.request("/healthz")[0] == 503          # and it says the loop stalled
    finally:
        _ptrace(PTRACE_DETACH, tid)  # the call goes on
    unstuck_at = time.monotonic()
    wait_until(lambda: len([t for t in pings(manager.snapshot()) if t > unstuck_at]) >= 2,
               3, "pings after the loop recovered")
    wait_until(lambda: g.request("/healthz")[0] == 200, 3, "/healthz 200 again")
    assert g.stop() == 0


def test_no_watchdog_pings_for_another_pid(tmp_path, manager, daemons):
    """WATCHDOG_PID names the process the watchdog is meant for."""
    cg = CgroupDir(tmp_path / "cgroup")
    path = write_file(tmp_path / "policy.ini", policy_text())
    g = daemons(["--cgroup", cg.path, "--policy", path],
                env={"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    manager.wait_for(lambda f: f.get("READY") == "1", what="READY=1")
    settle(0.8, "pings would come every 100 ms (half of WATCHDOG_USEC)")
    assert pings(manager.snapshot()) == []
    assert g.stop() == 0


def test_abstract_socket_and_failed_start(tmp_path, daemons):
    """NOTIFY_SOCKET may name an abstract socket (@name); a start that fails
    reports why in STATUS= and never sends READY=1."""
    name = f"@governord-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = NotifySocket("\0" + name[1:])
    try:
        cg = CgroupDir(tmp_path / "cgroup")
        bad = write_file(tmp_path / "bad.ini", "[thresholds]\nsoft = 0.99\n")
        g = Daemon(["--cgroup", cg.path, "--policy", bad], log_path=tmp_path / "failed.log",
                   env={"NOTIFY_SOCKET": name}, wait_ready=False)
        assert g.proc.wait(timeout=scaled(10)) == 1
        g.close()
        i = sock.wait_for(lambda f: "STATUS" in f, what="STATUS after a failed start")
        assert sock.snapshot()[i][2]["STATUS"].startswith("failed to start: ")
        assert "soft" in sock.snapshot()[i][2]["STATUS"]
        assert not any(f.get("READY") for _, _, f, _ in sock.snapshot())

        path = write_file(tmp_path / "policy.ini", policy_text())
        g = daemons(["--cgroup", cg.path, "--policy", path], env={"NOTIFY_SOCKET": name})
        sock.wait_for(lambda f: f.get("READY") == "1", what="READY=1 on @socket")
        assert g.stop() == 0
        sock.wait_for(lambda f: f.get("STOPPING") == "1", what="STOPPING=1 on @socket")
    finally:
        sock.close()
