"""Helpers for the observability tests: metrics, sd_notify and logs.

Everything here is real: the governord binary `make` built (path in the
GOVERNORD environment variable), a real HTTP client over a real TCP socket,
real signals, a real AF_UNIX datagram socket for sd_notify (the test is the
service manager), and a directory in the exact formats of a cgroup v2 memory
cgroup (Linux 6.1) standing in for the cgroup, so that the tests decide the
usage the governor sees.

- FakeCgroup   writes memory.current, memory.max, memory.high, memory.stat,
               memory.events, memory.peak and memory.pressure; files are
               replaced by rename (readers never see half a file), except
               memory.events, which the kernel also rewrites in place and
               whose in-place change is what the governor's watch sees;
- Governord    runs the daemon on 127.0.0.1:0 and reads the port from the JSON
               "start" log line;
- NotifySocket the service manager's side of sd_notify, with the sender's
               credentials and the arrival time of every datagram;
- parse_exposition  a strict reader of the Prometheus text format 0.0.4;
- promtool_check    `promtool check metrics`; exit 3 (lint findings) fails.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1 << 20
GIB = 1 << 30

GOVERNORD = os.environ.get(
    "GOVERNORD",
    os.path.join(os.path.dirname(__file__), "..", "..", "build", "governord"))

# memory.stat of Linux 6.1 (Debian 12), in the kernel's order
V2_STAT_KEYS = [
    "anon", "file", "kernel", "kernel_stack", "pagetables", "percpu", "sock", "vmalloc",
    "shmem", "zswap", "zswapped", "file_mapped", "file_dirty", "file_writeback",
    "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon", "active_anon",
    "inactive_file", "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable",
    "slab", "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon",
    "workingset_activate_file", "workingset_restore_anon", "workingset_restore_file",
    "workingset_nodereclaim", "pgscan", "pgsteal", "pgscan_kswapd", "pgscan_direct",
    "pgsteal_kswapd", "pgsteal_direct", "pgfault", "pgmajfault", "pgrefill", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
]


def scratch_dir(tag):
    """A private temporary directory named after the test and this PID."""
    return tempfile.mkdtemp(prefix=f"governord-{tag}-{os.getpid()}-")


def remove_dir(path):
    shutil.rmtree(path, ignore_errors=True)


# ---- the cgroup directory ----------------------------------------------------

class FakeCgroup:
    """A directory in the exact formats of a cgroup v2 memory cgroup."""

    def __init__(self, path, limit=GIB, current=100 * MIB, inactive_file=4 * MIB):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.limit = limit
        self.current = current
        self.inactive_file = inactive_file
        self.peak = current
        self.events = {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0,
                       "oom_group_kill": 0}
        self.write("memory.max", f"{limit}\n")
        self.write("memory.high", "max\n")
        self.write("memory.events", self._events())
        self.write("memory.pressure",
                   "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
        self.set_usage(current)

    def file(self, name):
        return os.path.join(self.path, name)

    def write(self, name, content):
        """Replaces a file by rename: readers never see half a file."""
        tmp = self.file("." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(content)
        os.rename(tmp, self.file(name))

    def set_usage(self, current, inactive_file=None):
        """memory.current, and memory.stat consistent with it."""
        if inactive_file is not None:
            self.inactive_file = inactive_file
        self.current = current
        self.peak = max(self.peak, current)
        self.write("memory.stat", self._stat())
        self.write("memory.current", f"{current}\n")
        self.write("memory.peak", f"{self.peak}\n")

    def set_events(self, **counts):
        """Rewrites memory.events in place, as the kernel does (one write)."""
        self.events.update(counts)
        fd = os.open(self.file("memory.events"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, self._events().encode())
        finally:
            os.close(fd)

    def set_pressure(self, some_total_us, full_total_us):
        self.write("memory.pressure",
                   f"some avg10=1.50 avg60=0.40 avg300=0.10 total={some_total_us}\n"
                   f"full avg10=0.50 avg60=0.10 avg300=0.02 total={full_total_us}\n")

    def _events(self):
        return "".join(f"{k} {v}\n" for k, v in self.events.items())

    def _stat(self):
        active_file = 2 * MIB
        anon = max(self.current - self.inactive_file - active_file, 0)
        values = dict.fromkeys(V2_STAT_KEYS, 0)
        values.update(anon=anon, file=self.inactive_file + active_file, inactive_anon=anon,
                      inactive_file=self.inactive_file, active_file=active_file,
                      kernel=3 * MIB, slab=MIB, slab_reclaimable=MIB // 2,
                      slab_unreclaimable=MIB // 2, pgfault=4321, pgmajfault=12)
        return "".join(f"{k} {values[k]}\n" for k in V2_STAT_KEYS)


def policy_text(interval_ms=50, cooldown_ms=200, collector=False, block_size="1Mi",
                collector_interval_ms=100, mode="enforce"):
    return (f"[governor]\nmode = {mode}\ninterval_ms = {interval_ms}\n"
            f"cooldown_ms = {cooldown_ms}\n"
            f"[collector]\nenabled = {'true' if collector else 'false'}\n"
            f"block_size = {block_size}\ninterval_ms = {collector_interval_ms}\n")


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- the daemon ----------------------------------------------------------------

class Governord:
    """A running governord, its stderr in a file."""

    def __init__(self, args, log_path, env=None, wait_start=True):
        self.args = [GOVERNORD, "--listen", "127.0.0.1:0"] + list(args)
        self.env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
                  "GOVERNOR_LOG_FORMAT", "GOVERNOR_LISTEN", "GOVERNOR_POLICY"):
            self.env.pop(k, None)
        if env:
            self.env.update(env)
        self.log_path = log_path
        self.log = open(log_path, "w+b")
        self.spawned_at = time.time()
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        self.spawned_done = time.time()
        self.port = None
        if wait_start:
            self.port = self.wait_record("start")["port"]

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def records(self):
        """Every stderr line parsed as JSON; a line that is not JSON fails."""
        out = []
        for n, line in enumerate(self.log_text().splitlines(), 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise AssertionError(f"log line {n} is not JSON ({e}): {line!r}")
            assert isinstance(rec, dict), f"log line {n} is not an object: {line!r}"
            out.append(rec)
        return out

    def wait_record(self, event, pred=lambda r: True, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            # only complete lines
            for line in text[:text.rfind("\n") + 1].splitlines():
                rec = json.loads(line)
                if rec.get("event") == event and pred(rec):
                    return rec
            if self.proc.poll() is not None:
                raise AssertionError(f"governord exited {self.proc.returncode} before "
                                     f"'{event}':\n{text}")
            time.sleep(0.02)
        raise AssertionError(f"no '{event}' log line within {timeout}s:\n{self.log_text()}")

    def request(self, path, method="GET", timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def metrics_text(self):
        status, headers, body = self.request("/metrics")
        assert status == 200, body
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return body.decode("utf-8")

    def status(self):
        status, _, body = self.request("/governor")
        assert status == 200, body
        return json.loads(body)

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"governord did not stop within {timeout}s")
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        self.log.close()


def wait_until(pred, timeout=5.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- sd_notify -------------------------------------------------------------------

class NotifySocket:
    """The service manager's end of sd_notify: an AF_UNIX datagram socket.

    Every datagram is kept with its arrival time (CLOCK_MONOTONIC, the clock
    of MONOTONIC_USEC) and the sender's PID from SCM_CREDENTIALS."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.messages = []   # (monotonic seconds, pid, {key: value}, raw text)
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        creds_size = struct.calcsize("3i")
        while not self.stopping:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds_size))
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, _, _ = struct.unpack("3i", payload[:creds_size])
            text = data.decode()
            fields = {}
            for line in text.split("\n"):
                if line:
                    key, _, value = line.partition("=")
                    fields[key] = value
            with self.lock:
                self.messages.append((now, pid, fields, text))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_for(self, pred, timeout=5.0, what="a notification", after=0):
        """Waits for a message (index >= after) with pred(fields); returns its index."""
        def find():
            for i, (_, _, fields, _) in enumerate(self.snapshot()):
                if i >= after and pred(fields):
                    return i + 1
            return None
        found = wait_until(find, timeout, what)
        return found - 1

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


# ---- the exposition format ---------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def _unescape(v):
    return re.sub(r'\\([\\"n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_exposition(text):
    """Parses text format 0.0.4 strictly: HELP and TYPE before every family's
    samples, families contiguous and unique, every sample of a declared family.
    Returns {family: {"type", "help", "samples": {frozenset(labels): float}}}."""
    assert text.endswith("\n"), "the document must end with a line feed"
    families = {}
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert name not in families, f"line {n}: family {name} declared twice"
            families[name] = {"help": help_, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current, f"line {n}: TYPE {name} without its HELP first"
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
            families[name]["type"] = kind
        else:
            m = _SAMPLE.match(line)
            assert m, f"line {n}: not a sample: {line!r}"
            name, _, labels_text, value = m.groups()
            assert name == current, f"line {n}: sample of {name} outside its family"
            assert families[name]["type"], f"line {n}: sample before TYPE"
            labels = {}
            if labels_text:
                pos = 0
                while pos < len(labels_text):
                    lm = _LABEL.match(labels_text, pos)
                    assert lm, f"line {n}: bad labels {labels_text!r}"
                    labels[lm.group(1)] = _unescape(lm.group(2))
                    pos = lm.end()
            key = frozenset(labels.items())
            assert key not in families[name]["samples"], f"line {n}: duplicate series"
            families[name]["samples"][key] = float(value)
    return families


def value(families, name, **labels):
    """The value of one series; fails when it is absent."""
    fam = families.get(name)
    assert fam is not None, f"no family {name}"
    key = frozenset(labels.items())
    assert key in fam["samples"], f"{name}{labels} absent; have {list(fam['samples'])}"
    return fam["samples"][key]


def promtool_check(text, tmpdir):
    """`promtool check metrics`: exit 0 is clean; 1 (parse error) and 3 (lint
    findings) fail the test, with promtool's output."""
    path = os.path.join(tmpdir, "scrape.txt")
    write_file(path, text)
    with open(path, "rb") as f:
        r = subprocess.run(["promtool", "check", "metrics"], stdin=f, capture_output=True,
                           timeout=60)
    assert r.returncode == 0, (f"promtool check metrics exited {r.returncode}:\n"
                               f"{r.stdout.decode()}{r.stderr.decode()}")


# ---- the journal --------------------------------------------------------------------

JOURNAL_HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "journal_capture.py")


class JournalCapture:
    """governord under journal_capture.py in a private mount namespace: the
    test sees every native-protocol entry and what went to stderr."""

    def __init__(self, gov_args, socket_mode="listen", env=None):
        """socket_mode: listen (a journal), none (no socket file), stale (a
        socket file nobody listens on)."""
        mode_args = {"listen": [], "none": ["--no-socket"], "stale": ["--stale-socket"]}
        cmd = ["unshare", "--mount", "--propagation", "private", "--", sys.executable,
               JOURNAL_HELPER] + mode_args[socket_mode] + \
            ["--", GOVERNORD, "--listen", "127.0.0.1:0"] + list(gov_args)
        self.env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "GOVERNOR_LOG_FORMAT", "GOVERNOR_LISTEN"):
            self.env.pop(k, None)
        if env:
            self.env.update(env)
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.items = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.pid = self.wait_item(lambda i: i["kind"] == "spawned")["pid"]

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.items.append(json.loads(line))

    def snapshot(self):
        with self.lock:
            return list(self.items)

    def entries(self):
        return [i for i in self.snapshot() if i["kind"] == "entry"]

    def wait_item(self, pred, timeout=10.0, what="an item"):
        def find():
            for i in self.snapshot():
                if pred(i):
                    return i
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise AssertionError(f"journal_capture exited {self.proc.returncode}: "
                                     f"{self.proc.stderr.read().decode()}")
            return None
        return wait_until(find, timeout, what)

    def wait_entry(self, pred, timeout=10.0, what="a journal entry"):
        return self.wait_item(lambda i: i["kind"] == "entry" and pred(i["fields"]),
                              timeout, what)["fields"]

    def stop(self, timeout=15):
        """SIGTERM to governord (through the helper); returns (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("journal_capture did not stop")
        self.reader.join(timeout=5)
        exit_ = self.wait_item(lambda i: i["kind"] == "exit", 1, "the exit code")
        stderr = self.wait_item(lambda i: i["kind"] == "stderr", 1, "stderr")
        return exit_["code"], stderr["data"]

    def kill(self):
        if self.proc.poll() is not None:
            return
        # the helper passes SIGTERM on to governord and exits after it
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            pass
        # governord hangs: kill it -- only while it is still the helper's child
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                os.kill(self.pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        self.proc.kill()
        self.proc.wait()
