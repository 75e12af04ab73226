"""Faults of the --cgroup directory itself, under a running governord.

test_hostile_cgroup.py feeds the daemon bad *content*; here the files and
the directory are wrong in kind:

- a FIFO where a cgroup file belongs (at start, or swapped in while the
  daemon runs): opening it for reading would block until a writer comes, so
  governord must open without blocking, refuse what is not a regular file,
  say so in /readyz, keep /healthz answering, and stop on SIGTERM at once;
- the cgroup's directory replaced (renamed away and created anew, or removed
  and created anew): governord must read the new directory's figures within
  a few ticks -- not the old directory's until it is deleted -- and move its
  memory.events watch there, so that a change in the new directory wakes it.

Every wait polls with a deadline (daemon.py) and nothing sleeps a fixed time.
"""
import os
import shutil
import signal
import time

import pytest

from cgroupfs import GIB, MIB, CgroupDir
from daemon import scaled, wait_until, write_file

# 100 ms ticks: the replacement must be noticed "within a few ticks"
POLICY = "[governor]\ninterval_ms = 100\n[collector]\nenabled = false\n"
# the collector on: admission samples with its own descriptors, which must
# not block on a FIFO either
POLICY_COLLECTING = ("[governor]\ninterval_ms = 100\n"
                     "[collector]\nenabled = true\nblock_size = 64Ki\ninterval_ms = 20\n")


def readyz_reason(d):
    code, body = d.get("/readyz")
    return body if code == 503 else None


def stop_promptly(d):
    """SIGTERM, and the exit status 0 within a few seconds."""
    started = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=scaled(3))
    assert rc == 0, d.log_text()
    return time.monotonic() - started


def fifo_in_place_of(cg, name):
    path = cg.file(name)
    os.unlink(path)
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("name", ["memory.current", "memory.max", "memory.stat",
                                  "memory.events"])
def test_fifo_at_start_is_refused_not_waited_on(cgroup, daemons, tmp_path, name):
    policy = write_file(tmp_path / "p.ini", POLICY)
    fifo_in_place_of(cgroup, name)
    # before the fix, open() blocked in gov_new and no "start" line came
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    reason = wait_until(lambda: readyz_reason(d), timeout=scaled(5), what="/readyz 503")
    assert f"{name}: not a regular file" in reason, reason
    st = d.status()
    assert st["memory"]["readable"] is False
    assert f"{name}: not a regular file" in st["memory"]["error"]
    for _ in range(3):
        assert d.get("/healthz") == (200, "ok\n")
    # the governor keeps ticking (so /healthz stays honest) while unready
    ticks = st["ticks"]
    d.wait_for(lambda s: s["ticks"] > ticks + 2, what="ticks while unready")
    assert d.get("/healthz") == (200, "ok\n")
    stop_promptly(d)


def test_fifo_swapped_in_while_running(cgroup, daemons, tmp_path):
    policy = write_file(tmp_path / "p.ini", POLICY_COLLECTING)
    d = daemons(["--cgroup", cgroup.path, "--policy", policy])
    assert d.get("/readyz") == (200, "ready\n")
    d.wait_for(lambda s: s["buffer"]["blocks"] > 0, what="the collector growing")
    tmp = cgroup.file(".memory.current.fifo")
    os.mkfifo(tmp)
    os.rename(tmp, cgroup.file("memory.current"))  # the old file is unlinked: reopened
    reason = wait_until(lambda: readyz_reason(d), timeout=scaled(5), what="/readyz 503")
    assert "memory.current: not a regular file" in reason, reason
    # blind admission is refused, not blocked: the refusals keep counting
    refused = d.status()["buffer"]["refused"]
    d.wait_for(lambda s: s["buffer"]["refused"] > refused, what="admission refusals")
    assert d.get("/healthz") == (200, "ok\n")
    ticks = d.status()["ticks"]
    d.wait_for(lambda s: s["ticks"] > ticks + 2, what="ticks with a FIFO in place")
    assert d.get("/healthz") == (200, "ok\n")
    # and a regular file again is read again
    cgroup.set(current=200 * MIB)
    d.wait_for(lambda s: s["memory"]["readable"] and s["memory"]["current_bytes"] == 200 * MIB,
               what="recovery")
    stop_promptly(d)


@pytest.mark.parametrize("how", ["rename", "remove"])
def test_replaced_directory_is_followed(tmp_path, daemons, how):
    policy = write_file(tmp_path / "p.ini", POLICY_COLLECTING)
    path = tmp_path / "pod" / "ctr"
    old = CgroupDir(path, current=100 * MIB, max_=GIB)
    d = daemons(["--cgroup", old.path, "--policy", policy])
    st = d.status()
    assert st["memory"]["current_bytes"] == 100 * MIB
    watch = st["wakeups"]["events_watch"]
    assert watch in ("inotify", "pollpri"), watch

    if how == "rename":
        os.rename(path, tmp_path / "pod" / "ctr.old")  # the old one stays
        old.path = str(tmp_path / "pod" / "ctr.old")
    else:
        shutil.rmtree(path)
    new = CgroupDir(path, current=333 * MIB, max_=2 * GIB)
    new.set_events(high=7)

    # the next ticks read the new directory: its usage, its limit, its events
    st = d.wait_for(lambda s: s["memory"]["readable"] and
                    s["memory"]["current_bytes"] == 333 * MIB, timeout=5,
                    what="the new directory's figures")
    assert st["memory"]["limit_bytes"] == 2 * GIB
    d.wait_for(lambda s: s["memory"]["events"]["high"] == 7, what="the new memory.events")
    assert d.get("/readyz") == (200, "ready\n")

    # a change of memory.events in the new directory wakes the governor (the
    # timer is not what counts here: wakeups.events counts only the watch)
    before = d.status()["wakeups"]["events"]
    new.set_events(high=8, oom=1)
    st = d.wait_for(lambda s: s["wakeups"]["events"] > before, timeout=5,
                    what="a wake-up from the new memory.events")
    assert st["wakeups"]["events_watch"] == watch
    rec = d.wait_record("cgroup_replaced")
    assert rec["cgroup"] == str(path)

    if how == "rename":
        # the old directory changing wakes nobody and is read by nobody
        old.set(current=999 * MIB)
        old.set_events(high=99)
        ticks = d.status()["ticks"]
        st = d.wait_for(lambda s: s["ticks"] > ticks + 3, what="more ticks")
        assert st["memory"]["current_bytes"] == 333 * MIB
        assert st["memory"]["events"]["high"] == 8

    # both handles -- the tick's and admission's, which follows on its own
    # next sample -- let go of the old directory: reopened, not added to
    def old_files():  # (valgrind keeps deleted files of its own open: not ours)
        return [t for t in d.fds().values() if t.startswith(str(tmp_path / "pod")) and
                ("ctr.old" in t or "(deleted)" in t)]
    try:
        wait_until(lambda: not old_files(), timeout=scaled(5),
                   what="descriptors of the old directory closed")
    except AssertionError:
        raise AssertionError(f"still open: {old_files()}")
    stop_promptly(d)
