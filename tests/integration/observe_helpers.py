"""Helpers of the observability tests: metrics, sd_notify and logs.

The daemon, the cgroup directory and the waits are the suites' shared ones
(tests/pylib: daemon.Daemon, cgroupfs.CgroupDir, daemon.wait_until); what is
here is particular to those three test files:

- policy_text   a policy with the few knobs they turn;
- metrics_text  GET /metrics, checked for status and content type;
- NotifySocket  the service manager's side of sd_notify: a real AF_UNIX
                datagram socket, with the sender's credentials and the
                arrival time of every datagram (the test is the service manager);
- parse_exposition  a strict reader of the Prometheus text format 0.0.4;
- promtool_check    `promtool check metrics`; exit 3 (lint findings) fails;
- JournalCapture    governord under journal_capture.py, which plays journald.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from daemon import GOVERNORD, clean_env, scaled, wait_until, write_file


def policy_text(interval_ms=50, cooldown_ms=200, collector=False, block_size="1Mi",
                collector_interval_ms=100, mode="enforce"):
    return (f"[governor]\nmode = {mode}\ninterval_ms = {interval_ms}\n"
            f"cooldown_ms = {cooldown_ms}\n"
            f"[collector]\nenabled = {'true' if collector else 'false'}\n"
            f"block_size = {block_size}\ninterval_ms = {collector_interval_ms}\n")


def metrics_text(d):
    """GET /metrics from Daemon d: status 200 and the 0.0.4 content type."""
    status, headers, body = d.request("/metrics")
    assert status == 200, body
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode("utf-8")


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
            suffix = None
            if current and families[current]["type"] == "histogram" and name != current:
                # a histogram's samples: NAME_bucket{le}, NAME_sum, NAME_count
                suffix = name[len(current):]
                assert name.startswith(current) and suffix in ("_bucket", "_sum", "_count"), \
                    f"line {n}: sample {name} outside its histogram {current}"
                name = current
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
            if families[name]["type"] == "histogram":
                assert suffix, f"line {n}: histogram sample {name} without a suffix"
                assert (suffix == "_bucket") == ("le" in labels), f"line {n}: le"
                labels["__suffix__"] = suffix  # value(f, NAME, __suffix__="_count", ...)
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
        self.env = clean_env(env)
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

    def stderr_so_far(self):
        """What governord wrote to stderr until now."""
        return "".join(i["data"] for i in self.snapshot() if i["kind"] == "stderr_chunk")

    def wait_stderr_record(self, event, timeout=10.0):
        """Waits for a JSON line of event on governord's stderr (the
        fallback when the journal is unreachable); returns it."""
        def find():
            text = self.stderr_so_far()
            for line in text[:text.rfind("\n") + 1].splitlines():
                rec = json.loads(line)
                if rec.get("event") == event:
                    return rec
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise AssertionError(f"journal_capture exited {self.proc.returncode} before "
                                     f"'{event}' on stderr: {text}")
            return None
        return wait_until(find, timeout, f"'{event}' on stderr")

    def stop(self, timeout=15):
        """SIGTERM to governord (through the helper); returns (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("journal_capture did not stop")
        self.reader.join(timeout=scaled(5))
        exit_ = self.wait_item(lambda i: i["kind"] == "exit", 1, "the exit code")
        stderr = self.wait_item(lambda i: i["kind"] == "stderr", 1, "stderr")
        return exit_["code"], stderr["data"]

    def kill(self):
        if self.proc.poll() is not None:
            return
        # the helper passes SIGTERM on to governord and exits after it
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=scaled(10))
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
