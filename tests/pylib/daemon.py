"""daemon -- governord as a process the tests start, talk to and stop.

Everything is real: the governord binary `make` built (path in the GOVERNORD
environment variable), a real HTTP client over a real TCP socket, real
signals.  Daemon starts governord listening on 127.0.0.1:0 and reads the
port the kernel gave it from the JSON "start" log line; its stderr goes to a
file the test reads back line by line.

Every wait here is a poll of a condition with a deadline, and every
deadline is multiplied by GOVERNORD_TIMEOUT_SCALE (`make test-valgrind` sets
it: under valgrind the daemon runs 20-50x slower), wait_until()'s included.
A test never sleeps a fixed time in place of waiting for a condition.
"""
import http.client
import json
import os
import signal
import subprocess
import time

GOVERNORD = os.environ.get(
    "GOVERNORD",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "governord"))

TIMEOUT_SCALE = float(os.environ.get("GOVERNORD_TIMEOUT_SCALE", "1"))

# what governord reads from its environment besides GOVERNOR_*: the
# downward API, systemd's notify socket, watchdog and journal stream
DAEMON_ENV = ("POD_NAME", "POD_NAMESPACE", "NODE_NAME", "NOTIFY_SOCKET", "WATCHDOG_USEC",
              "WATCHDOG_PID", "JOURNAL_STREAM")


def scaled(seconds):
    return seconds * TIMEOUT_SCALE


def clean_env(env=None):
    """The test's environment without anything governord reads from it (so
    that the tests run the same under systemd or in a pod), plus env.

    GOVERNOR_SOCKET is "none" unless env sets it: daemons that run side by
    side must not share the default socket /run/governor/governor.sock.  An
    entry of env whose value is None is left out (GOVERNOR_SOCKET=None: the
    daemon's own default)."""
    out = {k: v for k, v in os.environ.items()
           if not k.startswith("GOVERNOR_") and k not in DAEMON_ENV}
    out["GOVERNOR_SOCKET"] = "none"
    for k, v in (env or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def write_file(path, text):
    """Writes text to path (a policy, say); returns the path as a string."""
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def wait_until(pred, timeout=5.0, what="condition", interval=0.02):
    """Polls pred() until it returns something true, and returns that.  The
    timeout is scaled by GOVERNORD_TIMEOUT_SCALE."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def settle(seconds, why):
    """Lets (scaled) time pass for a check that something does NOT happen
    (no growth, no reload, no ping): there is no event to wait for, only
    time in which a fault would show.  Never a stand-in for waiting for
    something that should happen: use wait_until for that."""
    assert why
    time.sleep(scaled(seconds))


class Daemon:
    """A running governord, its stderr in log_path."""

    def __init__(self, args, log_path, env=None, wait_ready=True, wrapper=(),
                 preexec_fn=None, http_timeout=5):
        """args: governord's arguments; --listen 127.0.0.1:0 is added unless
        args or env name an address.  env: added to a clean environment
        (clean_env).  wait_ready: wait for the "start" log line and take the
        port from it.  wrapper: a command that execs its arguments (e.g. to
        enter a cgroup).  preexec_fn: run in the child before exec (e.g. to
        lower a limit).  http_timeout: the socket timeout of request(),
        get() and status() (scaled) unless they are given one."""
        self.args = list(wrapper) + [GOVERNORD] + list(args)
        if not any(a.startswith("--listen") for a in args) and \
                "GOVERNOR_LISTEN" not in (env or {}):
            self.args += ["--listen", "127.0.0.1:0"]
        self.env = clean_env(env)
        self.log_path = str(log_path)
        self.log = open(self.log_path, "w+b")
        self.spawned_at = time.time()
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=preexec_fn)
        self.spawned_done = time.time()
        self.http_timeout = http_timeout
        self.port = None
        if wait_ready:
            try:
                self.port = self.wait_record("start", lambda r: "port" in r)["port"]
            except BaseException:
                self.close()
                raise

    @property
    def pid(self):
        return self.proc.pid

    # ---- the log ----

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def records(self):
        """Every log line parsed as JSON; a line that is not a JSON object
        fails.  While the daemon runs, a last line not yet ended is left out."""
        text = self.log_text()
        if self.proc.poll() is None:
            text = text[:text.rfind("\n") + 1]
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise AssertionError(f"log line {n} is not JSON ({e}): {line!r}")
            assert isinstance(rec, dict), f"log line {n} is not an object: {line!r}"
            out.append(rec)
        return out

    def wait_record(self, event, pred=lambda r: True, timeout=10.0):
        """Waits for a log line of event with pred(record); returns it."""
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            exited = self.proc.poll() is not None
            for rec in self.records():
                if rec.get("event") == event and pred(rec):
                    return rec
            if exited:
                raise AssertionError(f"governord exited {self.proc.returncode} before "
                                     f"'{event}':\n{self.log_text()}")
            time.sleep(0.02)
        raise AssertionError(f"no '{event}' log line within {scaled(timeout)}s:\n"
                             + self.log_text())

    # ---- HTTP ----

    def request(self, path, method="GET", headers=None, body=None, timeout=None):
        """One request on a new connection: (status, headers, body bytes);
        the headers are looked up case-insensitively, as HTTP names them."""
        if timeout is None:
            timeout = self.http_timeout
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(timeout))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def get(self, path, timeout=None):
        """GET path: (status, body text)."""
        status, _, body = self.request(path, timeout=timeout)
        return status, body.decode()

    def status(self, timeout=None):
        """GET /governor, parsed (it must answer 200)."""
        code, body = self.get("/governor", timeout=timeout)
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

    # ---- the process ----

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
        """Sends sig and waits for the exit; returns the exit status.  A
        daemon that does not stop within the timeout is killed, and fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.close()
                raise AssertionError(f"governord did not stop within {scaled(timeout)}s")
        self.log.close()
        return self.proc.returncode

    def close(self):
        """Kills the daemon if it still runs; closes the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
