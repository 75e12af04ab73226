"""Supervisor mode: `governord [OPTIONS] -- CMD [ARGS...]`.

governord runs a real child (tests/integration/supervisor_child.py, or sh)
and the tests send real signals and read what happened from three places:
governord's exit status, its JSON log, and the child's own record of what it
got (one JSON line per fact).  Orphans are real processes whose parent
exited, looked at in /proc; PID 1 is real too, in a new PID namespace
(`unshare --pid --fork --mount-proc`, as root).  Every wait polls a condition
with a scaled deadline.  The child killed by the kernel's OOM killer needs a
real memory cgroup: it is in test_kernel_v1.py.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cgroupfs import CgroupDir
from daemon import GOVERNORD, Daemon, clean_env, scaled, wait_until, write_file

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor_child.py")
POLICY = "[governor]\ninterval_ms = 50\n"  # leaves [collector] enabled out


class Record:
    """The child's record file: the JSON lines it wrote."""

    def __init__(self, path):
        self.path = str(path)

    def lines(self):
        try:
            with open(self.path) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def ready(self):
        return wait_until(lambda: next((r for r in self.lines() if r.get("event") == "ready"),
                                       None), 15, "the child to be ready")

    def signals(self):
        return [r["signal"] for r in self.lines() if "signal" in r]


def start(tmp_path, command, opts=(), policy=POLICY, env=None, wrapper=(), name="governord"):
    cg = CgroupDir(tmp_path / f"cgroup-{name}")
    path = write_file(tmp_path / f"policy-{name}.ini", policy)
    args = ["--cgroup", cg.path, "--policy", path, "--listen", "127.0.0.1:0",
            "--log-level", "debug", *opts, "--", *command]
    d = Daemon(args, log_path=tmp_path / f"{name}.log", env=env, wrapper=wrapper)
    d.policy_path = path
    return d


def child(record, *args):
    return [sys.executable, CHILD, str(record), *args]


def wait_exit(d, timeout=15):
    """governord's exit status; it must exit by itself within the timeout."""
    try:
        return d.proc.wait(timeout=scaled(timeout))
    except subprocess.TimeoutExpired:
        d.close()
        raise AssertionError(f"governord did not exit within {scaled(timeout)}s:\n"
                             + d.log_text())
    finally:
        d.log.close()


def events(d):
    return [r["event"] for r in d.records()]


def record_of(d, event):
    recs = [r for r in d.records() if r["event"] == event]
    assert len(recs) == 1, f"{len(recs)} '{event}' lines:\n{d.log_text()}"
    return recs[0]


@pytest.mark.parametrize("command,code,how", [
    (["true"], 0, "exited with status 0"),
    (["sh", "-c", "exit 3"], 3, "exited with status 3"),
    (["sh", "-c", "kill -9 $$"], 137, "killed by signal 9 (SIGKILL)"),
    (["sh", "-c", "kill -USR1 $$"], 128 + signal.SIGUSR1, "killed by signal 10 (SIGUSR1)"),
])
def test_governord_exits_with_the_childs_status(tmp_path, command, code, how):
    d = start(tmp_path, command)
    assert wait_exit(d) == code, d.log_text()
    start_rec = record_of(d, "child_start")
    exit_rec = record_of(d, "child_exit")
    assert exit_rec["pid"] == start_rec["pid"]
    assert exit_rec["how"] == how and exit_rec["exit_code"] == code
    assert exit_rec["oom"] is False
    assert events(d)[-2:] == ["stop", "exit"]
    assert record_of(d, "exit")["exit_code"] == code


def test_a_command_that_cannot_start_exits_127_or_126(tmp_path):
    d = start(tmp_path, ["governord-test-no-such-command", "arg"], name="missing")
    assert wait_exit(d) == 127
    rec = record_of(d, "child_start_failed")
    assert rec["exit_code"] == 127 and rec["command"] == "governord-test-no-such-command"
    assert "not found" in rec["msg"], rec

    script = write_file(tmp_path / "not-executable.sh", "#!/bin/sh\nexit 0\n")
    d = start(tmp_path, [script], name="noexec")
    assert wait_exit(d) == 126
    rec = record_of(d, "child_start_failed")
    assert rec["exit_code"] == 126 and "not executable" in rec["msg"], rec


def test_the_child_starts_clean(tmp_path):
    """A clean signal mask and default dispositions (governord blocks what it
    takes with sigwaitinfo and ignores SIGPIPE), only stdin/stdout/stderr,
    and GOVERNOR_SOCKET: the default path, --socket, GOVERNOR_SOCKET, none."""
    out = tmp_path / "sh-status"
    # sh does not change its dispositions; grep inherits them from it
    d = start(tmp_path, ["sh", "-c", f"grep -E '^Sig(Blk|Ign):' /proc/self/status > {out}"],
              name="sh")
    assert wait_exit(d) == 0, d.log_text()
    status = dict(line.split(":\t") for line in out.read_text().splitlines())
    assert int(status["SigBlk"], 16) == 0, status
    assert int(status["SigIgn"], 16) == 0, status

    # the default only where this test may take it: root, and no other
    # daemon listening there (the default path is best effort, see
    # test_trim_socket.py); the others in this test's own directory
    flag_sock, env_sock = str(tmp_path / "x" / "gov.sock"), str(tmp_path / "env.sock")
    cases = [(("--socket", flag_sock), None, flag_sock),
             ((), {"GOVERNOR_SOCKET": env_sock}, env_sock),
             (("--socket", "none"), None, None),
             ((), {"GOVERNOR_SOCKET": "none"}, None)]
    for i, (opts, env, want) in enumerate(cases):
        rec = Record(tmp_path / f"child-{i}.jsonl")
        d = start(tmp_path, child(rec.path), opts=opts, env=env, name=f"py-{i}")
        ready = rec.ready()
        assert ready["socket"] == want, (opts, env, ready)
        assert ready["ppid"] == d.pid
        assert int(ready["sigblk"], 16) == 0, ready
        assert sorted(ready["fds"]) == ["0", "1", "2"], ready["fds"]
        d.send_signal(signal.SIGTERM)
        assert wait_exit(d) == 0, d.log_text()


def test_signals_are_forwarded_and_sighup_reloads(tmp_path):
    rec = Record(tmp_path / "child.jsonl")
    d = start(tmp_path, child(rec.path))
    rec.ready()

    # SIGHUP: the policy is reloaded, and the child gets nothing
    write_file(d.policy_path, "[governor]\ninterval_ms = 60\n")
    d.send_signal(signal.SIGHUP)
    d.wait_record("reload", lambda r: r.get("policy_generation") == 2)

    sent = []
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
        d.send_signal(sig)
        sent.append(sig.name)
        if sig != signal.SIGTERM:  # SIGTERM ends the child: checked below
            wait_until(lambda: rec.signals() == sent, 10, f"the child to get {sent}")
    assert wait_exit(d) == 0, d.log_text()
    assert rec.signals() == sent, "SIGHUP must not be forwarded"
    forwarded = [r["signal"] for r in d.records() if r["event"] in ("child_signal", "child_stop")]
    assert forwarded == sent
    assert record_of(d, "child_stop")["signal"] == "SIGINT"  # the first stop signal
    assert record_of(d, "child_exit")["how"] == "exited with status 0"


def test_sigterm_ends_a_child_that_dies_of_it_with_143(tmp_path):
    d = start(tmp_path, ["sleep", "1000"])
    d.wait_record("child_start")
    d.send_signal(signal.SIGTERM)
    assert wait_exit(d) == 143, d.log_text()
    assert record_of(d, "child_exit")["how"] == "killed by signal 15 (SIGTERM)"


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    rec = Record(tmp_path / "child.jsonl")
    d = start(tmp_path, child(rec.path, "--on-term", "ignore"), opts=("--stop-timeout", "0.5"))
    rec.ready()
    sent = time.monotonic()
    d.send_signal(signal.SIGTERM)
    assert wait_exit(d) == 137, d.log_text()
    waited = time.monotonic() - sent
    assert rec.signals() == ["SIGTERM"]
    assert waited >= 0.5, f"SIGKILL after {waited:.3f}s, before the grace period ended"
    kill = record_of(d, "child_kill")
    assert kill["level"] == "warning" and "ignored" in kill["msg"]
    assert kill["stop_timeout_ms"] == 500
    ended = record_of(d, "child_exit")
    assert ended["how"] == "killed by signal 9 (SIGKILL)" and "grace period" in ended["msg"]
    assert ended["oom"] is False


def test_the_grace_period_comes_from_the_environment(tmp_path):
    rec = Record(tmp_path / "child.jsonl")
    d = start(tmp_path, child(rec.path, "--on-term", "ignore"),
              env={"GOVERNOR_STOP_TIMEOUT": "300ms"})
    rec.ready()
    assert record_of(d, "child_start")["stop_timeout_ms"] == 300
    d.send_signal(signal.SIGTERM)
    assert wait_exit(d) == 137
    assert record_of(d, "child_kill")["stop_timeout_ms"] == 300


def proc_state(pid):
    """The State letter of /proc/PID/status, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def ppid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def test_an_orphaned_grandchild_is_reaped(tmp_path):
    """governord is not PID 1 here: it is the subreaper of its descendants."""
    rec = Record(tmp_path / "child.jsonl")
    pidfile = tmp_path / "orphan.pid"
    d = start(tmp_path, child(rec.path, "--orphan", str(pidfile)))
    rec.ready()
    orphan = int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), 10, "the orphan"))
    assert ppid_of(orphan) == d.pid, "the orphan was reparented to governord"
    os.kill(orphan, signal.SIGKILL)
    wait_until(lambda: proc_state(orphan) is None, 10,
               f"the orphan {orphan} to be reaped (state {proc_state(orphan)})")
    reaped = d.wait_record("orphan_reaped", lambda r: r["pid"] == orphan)
    assert reaped["level"] == "debug" and reaped["how"] == "killed by signal 9 (SIGKILL)"
    d.send_signal(signal.SIGTERM)
    assert wait_exit(d) == 0, d.log_text()


def children_of(pid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if ppid_of(int(name)) == pid:
                    out.append(int(name))
            except (FileNotFoundError, ProcessLookupError, AssertionError):
                pass
    return out


def nspid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare --pid needs root")
def test_as_pid_1_of_a_pid_namespace_orphans_are_reaped(tmp_path):
    rec = Record(tmp_path / "child.jsonl")
    pidfile = tmp_path / "orphan.pid"
    d = start(tmp_path, child(rec.path, "--orphan", str(pidfile)),
              wrapper=["unshare", "--pid", "--fork", "--mount-proc"])
    ready = rec.ready()
    gov = wait_until(lambda: children_of(d.pid), 10, "governord under unshare")[0]
    assert nspid(gov)[-1] == 1, f"governord is PID 1 in its namespace: {nspid(gov)}"
    assert ready["ppid"] == 1
    # the orphan, reparented to PID 1 (governord), as seen from outside
    orphan = wait_until(lambda: [p for p in children_of(gov) if cmdline(p) == "sleep"], 10,
                        "the orphan under governord")[0]
    assert nspid(orphan)[-1] == int(pidfile.read_text())
    assert nspid(orphan)[0] == orphan
    os.kill(orphan, signal.SIGKILL)
    wait_until(lambda: proc_state(orphan) is None, 10,
               f"the orphan {orphan} to be reaped (state {proc_state(orphan)})")
    inner = int(pidfile.read_text())  # the orphan's PID inside the namespace
    d.wait_record("orphan_reaped", lambda r: r["pid"] == inner)
    os.kill(gov, signal.SIGTERM)  # from the parent namespace: PID 1 takes it (blocked)
    assert wait_exit(d) == 0, d.log_text()
    assert rec.signals() == ["SIGTERM"]


def test_counter_works_and_the_collector_is_off_with_a_child(tmp_path):
    rec = Record(tmp_path / "child.jsonl")
    d = start(tmp_path, child(rec.path), policy=POLICY + "[collector]\nblock_size = 1Mi\n"
              "interval_ms = 10\n")
    rec.ready()
    for n in (1, 2, 3):
        assert d.get("/counter") == (200, f"Counter value: {n}")
    st = d.status()
    assert st["policy"]["values"]["collector"]["enabled"] == "false"
    # a reload that still leaves the key out keeps it off
    write_file(d.policy_path, POLICY + "[collector]\nblock_size = 2Mi\ninterval_ms = 10\n")
    d.send_signal(signal.SIGHUP)
    st = d.wait_for(lambda s: s["policy"]["generation"] == 2, 10, "the reload")
    assert st["policy"]["values"]["collector"]["enabled"] == "false"
    assert st["buffer"]["blocks"] == 0
    d.send_signal(signal.SIGTERM)
    assert wait_exit(d) == 0


def test_the_policy_can_turn_the_collector_on_with_a_child(tmp_path):
    rec = Record(tmp_path / "child.jsonl")
    d = start(tmp_path, child(rec.path), policy=POLICY + "[collector]\nenabled = true\n"
              "block_size = 1Mi\ninterval_ms = 10\n")
    rec.ready()
    d.wait_for(lambda s: s["buffer"]["blocks"] > 0, 10, "the collector to grow")
    assert d.get("/counter") == (200, "Counter value: 1")
    d.send_signal(signal.SIGTERM)
    assert wait_exit(d) == 0


@pytest.mark.parametrize("args,message", [
    (["--"], "'--' must be followed by a command"),
    (["sleep", "1"], "unexpected argument 'sleep' (a command goes after '--')"),
    (["--stop-timeout", "10m", "--", "true"], "--stop-timeout: '10m'"),
    (["--socket", "", "--", "true"], "--socket: empty path"),
    (["--check-policy", "x.ini", "--", "true"], "--check-policy runs no command"),
])
def test_usage_errors(args, message):
    r = subprocess.run([GOVERNORD, *args], env=clean_env(), capture_output=True, text=True,
                       timeout=scaled(10))
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr


def test_the_childs_options_are_not_governords(tmp_path):
    """Everything after '--' belongs to CMD, options included."""
    out = tmp_path / "args"
    d = start(tmp_path, ["sh", "-c", f'printf "%s\\n" "$@" > {out}', "sh", "--listen", "-h",
                         "--", "x"])
    assert wait_exit(d) == 0, d.log_text()
    assert out.read_text().splitlines() == ["--listen", "-h", "--", "x"]
