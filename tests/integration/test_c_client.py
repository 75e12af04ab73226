"""The C client of the trim protocol (gov_client_* in libgovernor) against the
real governord: tests/clients/c_client_driver.c, a real program holding
real 1 MiB blocks, on the real Unix socket, driven from its own poll loop
and from the client's thread.  Usage is driven through a cgroup directory in
cgroupfs format.  It registers, is admitted and counted, is asked to shrink
when the level goes high (and releases its oldest blocks), hears the level,
is refused what cannot fit, and sees the governor go away."""
import os
import queue
import subprocess
import threading

import pytest

from daemon import scaled, wait_until
from trim_helpers import GIB, MIB, Setup

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(REPO, "build", "clients", "c_client_driver")


@pytest.fixture(scope="module")
def driver():
    """Builds the driver against build/libgovernor.a (make knows when it is
    up to date)."""
    subprocess.run(["make", "-s", "-C", REPO, "build/clients/c_client_driver"], check=True,
                   timeout=scaled(300))
    return DRIVER


class Driver:
    """The driver as a child process: lines on stdin, events from stdout."""

    def __init__(self, exe, path, name, thread):
        args = [exe] + (["--thread"] if thread else []) + [path, name]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.events.put(line.strip())
        self.events.put(None)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def expect(self, prefix, timeout=10):
        """The next event starting with prefix (earlier other events are kept
        in self.seen)."""
        while True:
            try:
                ev = self.events.get(timeout=scaled(timeout))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} event; saw {self.seen}") from None
            if ev is None:
                try:
                    rc = self.p.wait(timeout=scaled(5))
                except subprocess.TimeoutExpired:
                    rc = "still running"
                raise AssertionError(f"the driver ended (exit {rc}) before {prefix!r}; "
                                     f"saw {self.seen}")
            self.seen.append(ev)
            if ev.startswith(prefix):
                return dict(kv.split("=", 1) for kv in ev.split()[1:] if "=" in kv) | \
                    {"_": ev}

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


@pytest.fixture
def setup(daemons, tmp_path):
    made = []

    def make(**kw):
        s = Setup(daemons, tmp_path, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.cleanup()


@pytest.mark.parametrize("thread", [False, True], ids=["own-poll-loop", "client-thread"])
def test_c_client_registers_grows_shrinks_and_hears_the_level(setup, driver, thread):
    s = setup()
    d = Driver(driver, s.path, "c-cache", thread)
    try:
        reg = d.expect("registered")
        assert int(reg["id"]) >= 1 and reg["level"] == "normal"
        assert int(reg["limit"]) == GIB and int(reg["usage"]) > 0
        c = s.client(int(reg["id"]))
        assert c["name"] == "c-cache" and c["pid"] == d.p.pid and c["uid"] == os.getuid()

        d.send("grow 8")
        assert d.expect("admit")["_"] == "admit ok blocks=8"
        wait_until(lambda: s.client(int(reg["id"]))["bytes"] == 8 * MIB,
                   what="the governor counts the 8 MiB the client reported")

        # high: the only holder is asked for what it holds above target
        s.usage(0.90)
        shrink = d.expect("shrink")
        assert int(shrink["released"]) == 8 * MIB and shrink["blocks"] == "0"
        assert shrink["level"] in ("high", "critical")
        d.expect("level high")
        wait_until(lambda: s.client(int(reg["id"]))["released_bytes"] == 8 * MIB,
                   what="the release counted on /governor")
        wait_until(lambda: s.client(int(reg["id"]))["bytes"] == 0,
                   what="the count after the release")
        c = s.client(int(reg["id"]))
        assert c["shrinks"] >= 1 and not c["unresponsive"]

        # back to normal; a block larger than the limit is refused
        s.usage(0.20)
        d.expect("level normal")
        d.send(f"grow {2 * GIB // MIB}")
        assert d.expect("admit")["_"] == "admit refused blocks=0"

        # the governor goes away: the client says so and ends
        assert s.d.stop() == 0
        d.expect("broken")
        assert d.p.wait(timeout=scaled(10)) == 3
    finally:
        d.close()


def test_c_client_is_shrunk_while_its_own_admit_waits(setup, driver):
    """At soft, growth only replaces what clients hold: the governor asks this
    very client to shrink before it answers its admit, so the client must
    serve the shrink while it waits (its own poll loop is blocked in admit)."""
    s = setup()
    d = Driver(driver, s.path, "self-shrinker", thread=False)
    try:
        reg = d.expect("registered")
        d.send("grow 64")
        assert d.expect("admit")["_"] == "admit ok blocks=64"
        wait_until(lambda: s.client(int(reg["id"]))["bytes"] == 64 * MIB,
                   what="64 MiB counted")
        s.usage(0.75)
        d.expect("level soft")
        d.send("grow 16")
        shrink = d.expect("shrink")
        assert int(shrink["asked"]) == 16 * MIB and int(shrink["released"]) == 16 * MIB
        assert d.expect("admit")["_"] == "admit ok blocks=64"
        wait_until(lambda: s.client(int(reg["id"]))["bytes"] == 64 * MIB,
                   what="48 MiB kept and 16 MiB added")
        d.send("quit")
        assert d.p.wait(timeout=scaled(10)) == 0
    finally:
        d.close()
