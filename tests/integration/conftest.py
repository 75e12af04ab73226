"""Shared helpers for governord's process-level tests.

Everything here is real: the governord binary built by `make` (path in the
GOVERNORD environment variable), a real HTTP client over a real TCP socket,
real signals, and directories laid out exactly as the kernel and the kubelet
lay them out:

- CgroupDir writes cgroup v2 files (memory.current, memory.max, memory.high,
  memory.stat with the full 6.1 key list, memory.events, memory.pressure) and
  replaces them by rename, like the test writer they are;
- ConfigMapDir reproduces the kubelet's AtomicWriter: a timestamped directory,
  the `..data` symlink swapped by an atomic rename, and per-key symlinks;
- Daemon starts governord on port 0, reads the bound port from its JSON
  "start" log line, and stops it with a signal.
"""
import datetime
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest

MIB = 1 << 20
GIB = 1 << 30

GOVERNORD = os.environ.get(
    "GOVERNORD",
    os.path.join(os.path.dirname(__file__), "..", "..", "build", "governord"))

# Every wait below is multiplied by this (make test-valgrind sets it: the
# daemon runs 20-50x slower under valgrind).
TIMEOUT_SCALE = float(os.environ.get("GOVERNORD_TIMEOUT_SCALE", "1"))


def scaled(seconds):
    return seconds * TIMEOUT_SCALE


# ---- cgroup v2 directory ---------------------------------------------------

V2_STAT_KEYS = [
    "anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu",
    "sock", "vmalloc", "shmem", "zswap", "zswapped", "file_mapped", "file_dirty",
    "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon",
    "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
    "slab_unreclaimable", "slab", "workingset_refault_anon", "workingset_refault_file",
    "workingset_activate_anon", "workingset_activate_file", "workingset_restore_anon",
    "workingset_restore_file", "workingset_nodereclaim", "pgscan", "pgsteal",
    "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pgfault",
    "pgmajfault", "pgrefill", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed",
    "zswpin", "zswpout", "thp_fault_alloc", "thp_collapse_alloc",
]


class CgroupDir:
    """A directory in the exact format of a cgroup v2 memory cgroup."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        self.events = {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0,
                       "oom_group_kill": 0}
        self.set(current=100 * MIB, max_=GIB, high="max", inactive_file=4 * MIB)
        self.write("memory.events", self._events())
        self.write("memory.pressure",
                   "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
        self.write("cgroup.controllers", "cpuset cpu io memory pids\n")

    def write(self, name, content):
        """Replaces a file by rename: readers never see half a file."""
        dst = os.path.join(self.path, name)
        tmp = os.path.join(self.path, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(content)
        os.rename(tmp, dst)

    def remove(self, name):
        os.unlink(os.path.join(self.path, name))

    def set(self, current=None, max_=None, high=None, inactive_file=None):
        if max_ is not None:
            self.write("memory.max", f"{max_}\n")
        if high is not None:
            self.write("memory.high", f"{high}\n")
        if inactive_file is not None:
            self.inactive_file = inactive_file
        if current is not None:
            self.current = current
        if current is not None or inactive_file is not None:
            self.write("memory.stat", self._stat())
            self.write("memory.current", f"{self.current}\n")

    def bump_event(self, key, n=1):
        self.events[key] += n
        self.write("memory.events", self._events())

    def _events(self):
        return "".join(f"{k} {v}\n" for k, v in self.events.items())

    def _stat(self):
        active_file = 2 * MIB
        anon = max(self.current - self.inactive_file - active_file, 0)
        values = dict.fromkeys(V2_STAT_KEYS, 0)
        values.update(anon=anon, file=self.inactive_file + active_file,
                      inactive_anon=anon, inactive_file=self.inactive_file,
                      active_file=active_file, pgfault=1234)
        return "".join(f"{k} {values[k]}\n" for k in V2_STAT_KEYS)


# ---- kubelet ConfigMap volume ----------------------------------------------

class ConfigMapDir:
    """A ConfigMap volume as the kubelet's AtomicWriter maintains it."""

    def __init__(self, path, files):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        self._n = 0
        self.update(files, first=True)

    def file(self, key):
        return os.path.join(self.path, key)

    def update(self, files, first=False):
        self._n += 1
        stamp = datetime.datetime.utcnow().strftime("..%Y_%m_%d_%H_%M_%S.") + f"{self._n:09d}"
        tsdir = os.path.join(self.path, stamp)
        os.mkdir(tsdir)
        for key, content in files.items():
            with open(os.path.join(tsdir, key), "w") as f:
                f.write(content)
        old = None
        data = os.path.join(self.path, "..data")
        if os.path.islink(data):
            old = os.readlink(data)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(stamp, tmp)
        os.rename(tmp, data)  # the atomic swap
        if first:
            for key in files:
                os.symlink(os.path.join("..data", key), os.path.join(self.path, key))
        if old:
            old_dir = os.path.join(self.path, old)
            for name in os.listdir(old_dir):
                os.unlink(os.path.join(old_dir, name))
            os.rmdir(old_dir)


# ---- the daemon ------------------------------------------------------------

class Daemon:
    """A running governord."""

    def __init__(self, args, env=None, log_path=None, wait_ready=True, wrapper=(),
                 preexec_fn=None):
        """wrapper: a command that execs its arguments (e.g. to enter a cgroup);
        preexec_fn: run in the child before exec (e.g. to lower a limit)."""
        self.args = list(wrapper) + [GOVERNORD] + list(args)
        if not any(a.startswith("--listen") for a in args) and \
                not (env and "GOVERNOR_LISTEN" in env):
            self.args += ["--listen", "127.0.0.1:0"]
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("JOURNAL_STREAM", None)
        self.env.setdefault("GOVERNOR_LOG_FORMAT", "json")
        if env:
            self.env.update(env)
        self.log_path = log_path
        self.log = open(log_path, "w+b")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=preexec_fn)
        self.port = None
        if wait_ready:
            self.port = self._wait_for_port()

    def _wait_for_port(self, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            for rec in self.records():
                if rec.get("event") == "start" and "port" in rec:
                    return rec["port"]
            if self.proc.poll() is not None:
                raise AssertionError(f"governord exited {self.proc.returncode}:\n"
                                     + self.log_text())
            time.sleep(0.02)
        raise AssertionError("governord did not start:\n" + self.log_text())

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def records(self):
        """Every log line, parsed as JSON (a line that is not JSON fails)."""
        out = []
        for line in self.log_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def request(self, path, method="GET", headers=None, body=None, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(timeout))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get(self, path):
        status, _, body = self.request(path)
        return status, body.decode()

    def status(self):
        code, body = self.get("/governor")
        assert code == 200, body
        return json.loads(body)

    def wait_for(self, pred, timeout=5.0, what="condition"):
        """Polls /governor until pred(status) is true; returns that status."""
        deadline = time.monotonic() + scaled(timeout)
        last = None
        while time.monotonic() < deadline:
            last = self.status()
            if pred(last):
                return last
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; last status:\n"
                             + json.dumps(last, indent=1)[:4000])

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def fds(self):
        """The daemon's open file descriptors, as {fd: target}."""
        out = {}
        base = f"/proc/{self.proc.pid}/fd"
        for name in os.listdir(base):
            try:
                out[int(name)] = os.readlink(os.path.join(base, name))
            except FileNotFoundError:  # closed while we looked
                pass
        return out

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("governord did not stop within %ss" % timeout)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def cgroup(tmp_path):
    return CgroupDir(tmp_path / "cgroup")


@pytest.fixture
def daemons(tmp_path):
    """Starts daemons on demand; every one is stopped at the end of the test."""
    started = []

    def start(args, env=None, wait_ready=True, preexec_fn=None):
        d = Daemon(args, env=env, log_path=str(tmp_path / f"governord-{len(started)}.log"),
                   wait_ready=wait_ready, preexec_fn=preexec_fn)
        started.append(d)
        return d

    yield start
    # every daemon must stop cleanly on SIGTERM; under ASan a leak or a memory
    # error makes that exit status non-zero, so this also checks the sanitizer
    problems = []
    for d in started:
        rc = d.stop() if d.proc.poll() is None else d.proc.returncode
        text = d.log_text()
        if rc != 0 or "Sanitizer" in text or "runtime error" in text:
            problems.append(f"{d.args}: exit {rc}\n{text[-3000:]}")
    assert not problems, "\n".join(problems)


def write_policy(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def complete_responses(raw):
    """Number of complete final (non-1xx) responses at the start of raw."""
    n, pos = 0, 0
    while True:
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = raw[pos:end].split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if end + 4 + length > len(raw):
            return n
        if not head[0].split(b" ")[1].startswith(b"1"):
            n += 1
        pos = end + 4 + length


def parallel(n, fn):
    """Runs fn(i) in n threads and returns the results in order."""
    results = [None] * n
    errors = []

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # reported after the join
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
