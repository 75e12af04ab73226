"""Helpers of the trim protocol tests: a raw line client on the real Unix
socket, a daemon with a socket and a fake cgroup, and a watch on the
governor's health (ticks at the interval rate, /healthz, descriptors)."""
import json
import os
import shutil
import socket
import sys
import tempfile
import time

from cgroupfs import GIB, MIB, CgroupDir
from daemon import TIMEOUT_SCALE, scaled, wait_until, write_file

CLIENTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients",
                           "python")
INTERVAL_MS = 50


def client_timeout_ms(ms=300):
    """The policy's client_timeout_ms, scaled (a daemon under valgrind
    answers slower) and within the key's range."""
    return int(min(60000, ms * TIMEOUT_SCALE))


def short_dir():
    """A directory for sockets: sun_path holds 107 bytes, pytest's tmp_path
    can be longer."""
    return tempfile.mkdtemp(prefix="gs", dir="/tmp")


def policy(tmp_path, extra="", timeout_ms=None, cooldown_ms=60000, target=0.60, soft=0.70,
           high=0.85, critical=0.95):
    return write_file(tmp_path / "policy.ini",
                      f"[governor]\ninterval_ms = {INTERVAL_MS}\ncooldown_ms = {cooldown_ms}\n"
                      f"client_timeout_ms = {timeout_ms or client_timeout_ms()}\n"
                      f"[thresholds]\ntarget = {target}\nsoft = {soft}\nhigh = {high}\n"
                      f"critical = {critical}\nhysteresis = 0.01\n"
                      f"[collector]\nenabled = false\n{extra}")


class Setup:
    """A governord with a socket in a short directory and a fake cgroup."""

    def __init__(self, daemons, tmp_path, args=(), pol=None, current=100 * MIB, **pkw):
        self.dir = short_dir()
        self.path = os.path.join(self.dir, "g.sock")
        self.cg = CgroupDir(tmp_path / "cgroup", current=current, max_=GIB, inactive_file=0)
        self.d = daemons(["--cgroup", self.cg.path, "--policy", pol or policy(tmp_path, **pkw),
                          "--socket", self.path, *args])

    def clients(self):
        return self.d.status()["clients"]

    def client(self, cid):
        for c in self.clients():
            if c["id"] == cid:
                return c
        return None

    def usage(self, ratio):
        """Sets the working set to ratio of the 1 GiB limit."""
        self.cg.set(current=int(ratio * GIB))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Raw:
    """One connection on the real socket, speaking lines by hand."""

    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(scaled(timeout))
        self.s.connect(path)
        self.buf = b""

    def send(self, obj):
        self.sendraw((json.dumps(obj) + "\n").encode())

    def sendraw(self, data):
        self.s.sendall(data)

    def line(self, timeout=5.0):
        """The next line, parsed; None when the governor closed the connection."""
        self.s.settimeout(scaled(timeout))
        while b"\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def expect(self, op, timeout=5.0, skip=("level",)):
        """The next line of op, skipping lines of the ops in skip."""
        while True:
            msg = self.line(timeout)
            assert msg is not None, f"closed while waiting for {op!r}"
            if msg["op"] == op:
                return msg
            assert msg["op"] in skip, f"expected {op!r}, got {msg}"

    def register(self, name, nbytes=0, objects=0):
        self.send({"op": "register", "name": name, "bytes": nbytes, "objects": objects})
        return self.expect("registered")

    def closed(self, timeout=5.0):
        """True once the governor has closed the connection (lines before it
        are skipped); the error line, if any, is kept in self.error."""
        self.error = None
        try:
            while True:
                msg = self.line(timeout)
                if msg is None:
                    return True
                if msg["op"] == "error":
                    self.error = msg["error"]
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


class Health:
    """The governor's health across a hostile phase: its tick counter grows
    at about the interval rate, /healthz answers 200, and the daemon's
    descriptors come back to where they were."""

    def __init__(self, d):
        self.d = d
        wait_until(lambda: d.status()["ticks"] > 0, what="a first tick")
        self.fds = len(d.fds())
        self.t0 = time.monotonic()
        self.ticks0 = d.status()["ticks"]

    def check(self, what):
        # at least a second of ticks to judge; /healthz is probed meanwhile
        while time.monotonic() - self.t0 < 1.0:
            code, body = self.d.get("/healthz")
            assert code == 200, f"{what}: /healthz {code} {body}"
            time.sleep(0.05)
        st = self.d.status()
        elapsed = time.monotonic() - self.t0
        expected = elapsed * 1000 / INTERVAL_MS
        ticks = st["ticks"] - self.ticks0
        # the timer ticks every interval; a loaded 2-core machine (or
        # valgrind) loses some, a blocked governor thread loses nearly all
        assert ticks >= 0.3 * expected, \
            f"{what}: {ticks} ticks in {elapsed:.1f} s, expected about {expected:.0f}"
        code, body = self.d.get("/healthz")
        assert code == 200, f"{what}: /healthz {code} {body}"
        wait_until(lambda: len(self.d.fds()) <= self.fds, 10,
                   f"{what}: descriptors back to {self.fds} (now {self.d.fds()})")


def python_client(script, *args, env=None):
    """Runs a Python script with clients/python on its path (a subprocess,
    so the client is a process of its own)."""
    import subprocess
    e = dict(os.environ)
    e["PYTHONPATH"] = CLIENTS_DIR
    e.update(env or {})
    return subprocess.Popen([sys.executable, "-c", script, *args], env=e,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


__all__ = ["GIB", "MIB", "Setup", "Raw", "Health", "python_client", "policy", "short_dir",
           "client_timeout_ms", "INTERVAL_MS"]
