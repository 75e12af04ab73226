"""redisproc -- a real redis-server (Debian's) for the counter tests.

RedisServer starts redis-server on a free port of 127.0.0.1 with its data in
a directory of the test (AOF on, `appendfsync always`, no RDB snapshots, the
DEBUG command enabled), waits until PING answers PONG (polled, never a fixed
sleep), and stops it with SIGTERM by pid.  start() again on the same
directory replays the AOF: an acknowledged INCR survives a restart.
prefix (a command line, e.g. `nsenter --target PID --net --`) runs
redis-server and redis-cli inside another network namespace, as a sidecar
of a sandboxed pod listens on the pod's 127.0.0.1.
"""
import os
import shutil
import signal
import socket
import subprocess

from daemon import scaled, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory, password=None, prefix=()):
        self.prefix = list(prefix)
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.password = password
        self.port = None
        self.proc = None
        self.log = None

    def start(self, port=None):
        """Starts (or restarts, on the same port if given) and waits for PONG."""
        self.port = port or self.port or free_port()
        args = self.prefix + [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--daemonize", "no",
                "--enable-debug-command", "yes", "--protected-mode", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._ping() or self._died(), timeout=scaled(10),
                   what="redis-server to answer PING")
        assert self.proc.poll() is None, open(os.path.join(self.dir, "redis.log")).read()
        return self

    def _died(self):
        return self.proc.poll() is not None

    def _ping(self):
        try:
            return self.cli("PING", timeout=2).strip() == "PONG"
        except (subprocess.SubprocessError, OSError):
            return False

    def cli(self, *args, timeout=10):
        """redis-cli ARGS against this server; its stdout."""
        cmd = self.prefix + [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        out = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                             timeout=timeout, env=env)
        return out.stdout

    def cli_background(self, *args):
        """redis-cli ARGS, not waited for (DEBUG SLEEP); returns the Popen."""
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return subprocess.Popen(self.prefix + [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)]
                                + [str(a) for a in args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)

    def url(self, db=None, key=None):
        u = f"redis://127.0.0.1:{self.port}"
        if db is not None:
            u += f"/{db}"
        if key is not None:
            u += f"?key={key}"
        return u

    def stop(self):
        """SIGTERM and wait (redis fsyncs the AOF on the way out)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def kill(self):
        """SIGKILL: a crash; acknowledged writes are in the AOF already."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None
