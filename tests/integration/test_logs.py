"""Structured logs: JSON lines, text for people, and the journal.

The daemon is driven through a real scenario (growth, a shrink at high, a
policy reload, a rejected policy, SIGHUP, back to normal, SIGTERM) and every
line it wrote is parsed; the journal form is received on a real AF_UNIX
datagram socket bound at journald's path inside a private mount namespace."""
import datetime
import json
import os
import re
import signal
import time

import pytest

from cgroupfs import GIB, MIB, CgroupDir
from daemon import wait_until, write_file
from observe_helpers import JournalCapture, policy_text

SEVERITIES = {"debug", "info", "warning", "error"}
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def wait_blocks(g, n):
    wait_until(lambda: g.status()["buffer"]["blocks"] >= n, 10, f"{n} blocks")


def test_json_lines_carry_the_documented_fields(tmp_path, daemons):
    cg = CgroupDir(tmp_path / "cgroup", max_=GIB, current=100 * MIB)
    path = write_file(tmp_path / "policy.ini",
                      policy_text(collector=True, collector_interval_ms=100))
    t0 = time.time()
    g = daemons(["--cgroup", cg.path, "--policy", path], env={"GOVERNOR_LOG_FORMAT": "json"})
    wait_blocks(g, 3)

    cg.set(current=int(0.90 * GIB), inactive_file=0)
    g.wait_record("level_change", lambda r: r.get("governor_level") == "high")
    g.wait_record("refuse")
    write_file(path + ".new", policy_text(collector=True, collector_interval_ms=100,
                                          cooldown_ms=300))
    os.rename(path + ".new", path)
    g.wait_record("reload")
    write_file(path + ".new", "[thresholds]\nhigh = 2\n")
    os.rename(path + ".new", path)
    g.wait_record("reload_failed")
    g.send_signal(signal.SIGHUP)
    g.wait_record("signal")
    cg.set(current=100 * MIB)
    g.wait_record("level_change", lambda r: r.get("governor_level") == "normal")
    cg.write("memory.max", f"{2 * GIB}\n")  # an in-place pod resize
    g.wait_record("limit_change")
    assert g.stop() == 0
    t1 = time.time()

    recs = g.records()  # fails on any line that is not a JSON object
    for r in recs:
        assert list(r)[:4] == ["time", "level", "event", "msg"], r
        assert RFC3339_MS.match(r["time"]), r
        when = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        assert t0 - 1 <= when <= t1 + 1, r
        assert r["level"] in SEVERITIES, r  # never overwritten by a field
        assert isinstance(r["event"], str) and r["event"], r
        assert isinstance(r["msg"], str) and r["msg"], r
        assert "log_error" not in r, r

    def one(event, **match):
        found = [r for r in recs if r["event"] == event and
                 all(r.get(k) == v for k, v in match.items())]
        assert found, f"no {event} {match} in:\n" + "\n".join(map(json.dumps, recs))
        return found[0]

    s = one("start")
    assert s["port"] == g.port and s["version"] == "0.1.0" and s["policy"] == path
    assert s["cgroup_version"] == "v2" and s["listen"] == "127.0.0.1:0"

    up = one("level_change", governor_level="high")
    assert up["level"] == "warning"
    assert up["from_level"] == "normal" and up["action"] == "shrink"
    assert up["msg"].startswith("level normal -> high, released ")
    assert up["usage_bytes"] == int(0.90 * GIB) and up["limit_bytes"] == GIB
    assert up["released_bytes"] >= 3 * MIB and up["released_bytes"] % MIB == 0
    assert up["buffer_bytes"] == 0 and up["dry_run"] is False
    assert up["policy_generation"] == 1
    assert "high 85%" in up["reason"] and "toward target 60%" in up["reason"]

    refused = one("refuse")
    assert refused["level"] == "warning" and refused["governor_level"] == "high"
    assert refused["reason"].startswith("refused a 1Mi block") and refused["request_bytes"] == MIB

    ok = one("reload")
    assert ok["policy_generation"] == 2 and ok["trigger"] == "file change"
    assert ok["path"] == path and ok["mode"] == "enforce"

    bad = one("reload_failed")
    assert bad["level"] == "error" and bad["policy_generation"] == 2
    assert "thresholds.high" in bad["error"] and bad["errors"]
    assert all(e.startswith(path + ":") for e in bad["errors"])

    down = one("level_change", governor_level="normal")
    assert down["level"] == "info" and down["from_level"] == "high"
    assert down["policy_generation"] == 2 and "exit" in down["reason"]

    resized = one("limit_change")
    assert resized["level"] == "info" and resized["governor_level"] == "normal"
    assert resized["reason"].startswith("limit 1Gi -> 2Gi: ") and resized["limit_bytes"] == 2 * GIB

    one("signal")
    assert [r["event"] for r in recs][-2:] == ["stop", "exit"]


def test_text_format_for_people(tmp_path, daemons):
    cg = CgroupDir(tmp_path / "cgroup")
    path = write_file(tmp_path / "policy.ini", policy_text())
    g = daemons(["--cgroup", cg.path, "--policy", path, "--log-format", "text"],
                wait_ready=False)
    m = wait_until(lambda: re.search(r" start: governord listening .* port=(\d+)",
                                     g.log_text()), 10, "the start line")
    g.port = int(m.group(1))
    assert g.request("/counter")[0] == 200
    cg.set(current=int(0.90 * GIB), inactive_file=0)
    wait_until(lambda: "level_change:" in g.log_text(), 5, "a level change")
    assert g.stop() == 0

    line_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warning|error)"
                         r" +[a-z_]+: \S.*$")
    lines = g.log_text().splitlines()
    assert len(lines) >= 4
    for line in lines:
        assert line_re.match(line), line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    change = next(line for line in lines if " level_change: " in line)
    assert change.split()[1] == "warning"
    assert "from_level=normal governor_level=high" in change
    assert re.search(r' reason="working set \d+% of 1Gi >= high 85%"', change), change
    assert "dry_run=false" in change and "policy_generation=1" in change


def test_log_level_filters(tmp_path, daemons):
    cg = CgroupDir(tmp_path / "cgroup")
    path = write_file(tmp_path / "policy.ini", policy_text())
    g = daemons(["--cgroup", cg.path, "--policy", path, "--log-level", "warning",
                 "--log-format", "json"], wait_ready=False)
    # the first sample may already see high: the engine starts at normal, so
    # that is a level change too
    cg.set(current=int(0.90 * GIB), inactive_file=0)
    g.wait_record("level_change")
    assert g.stop() == 0
    recs = g.records()
    assert recs and all(r["level"] in ("warning", "error") for r in recs), recs


def test_auto_ignores_a_journal_stream_that_is_not_stderr(tmp_path, daemons):
    """JOURNAL_STREAM naming another file (a child of a journal-logged
    service whose stderr was redirected) must not switch to the journal."""
    cg = CgroupDir(tmp_path / "cgroup")
    path = write_file(tmp_path / "policy.ini", policy_text())
    st = os.stat(path)
    g = daemons(["--cgroup", cg.path, "--policy", path],
                env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert g.stop() == 0
    assert [r["event"] for r in g.records()][-1] == "exit"


def test_journal_native_protocol(tmp_path):
    cg = CgroupDir(tmp_path / "cgroup", max_=GIB, current=100 * MIB)
    path = write_file(tmp_path / "policy.ini", policy_text())
    # no --log-format: auto sees JOURNAL_STREAM match stderr and uses the journal
    j = JournalCapture(["--cgroup", cg.path, "--policy", path])
    try:
        s = j.wait_entry(lambda f: f.get("GOVERNOR_EVENT") == "start", what="start entry")
        port = int(s["GOVERNOR_PORT"])
        assert port > 0 and s["PRIORITY"] == "6" and s["SYSLOG_IDENTIFIER"] == "governord"
        assert s["MESSAGE"] == "governord listening" and s["GOVERNOR_VERSION"] == "0.1.0"
        assert s["GOVERNOR_POLICY"] == path

        cg.set(current=int(0.90 * GIB), inactive_file=0)
        up = j.wait_entry(lambda f: f.get("GOVERNOR_EVENT") == "level_change",
                          what="level_change entry")
        assert up["PRIORITY"] == "4"  # warning
        assert up["GOVERNOR_LEVEL"] == "high" and up["GOVERNOR_FROM_LEVEL"] == "normal"
        assert up["GOVERNOR_USAGE_BYTES"] == str(int(0.90 * GIB))
        assert up["GOVERNOR_RELEASED_BYTES"] == "0"  # the collector is off
        assert up["GOVERNOR_POLICY_GENERATION"] == "1" and up["GOVERNOR_DRY_RUN"] == "false"
        assert "high 85%" in up["GOVERNOR_REASON"]
        assert up["MESSAGE"] == "level normal -> high"

        write_file(path + ".new", "[governor]\nmode = sideways\n")
        os.rename(path + ".new", path)
        bad = j.wait_entry(lambda f: f.get("GOVERNOR_EVENT") == "reload_failed",
                           what="reload_failed entry")
        assert bad["PRIORITY"] == "3" and "governor.mode" in bad["GOVERNOR_ERROR"]
        assert json.loads(bad["GOVERNOR_ERRORS"])[0].startswith(path + ":")
    finally:
        code, stderr = j.stop()
    assert code == 0
    entries = j.entries()
    assert all(e["pid"] == j.pid for e in entries), "entries come from governord itself"
    assert [e["fields"]["GOVERNOR_EVENT"] for e in entries][-2:] == ["stop", "exit"]
    for e in entries:
        f = e["fields"]
        assert {"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "GOVERNOR_EVENT"} <= set(f), f
        assert all(re.match(r"^[A-Z][A-Z0-9_]*$", k) for k in f), f
    assert stderr == "", "with the journal reachable nothing goes to stderr"


@pytest.mark.parametrize("socket_mode", ["none", "stale"])
def test_journal_unreachable_falls_back_to_json_on_stderr(tmp_path, socket_mode):
    """No journal socket, or one nobody listens on: the lines go to stderr as
    JSON instead of being lost."""
    cg = CgroupDir(tmp_path / "cgroup")
    path = write_file(tmp_path / "policy.ini", policy_text())
    j = JournalCapture(["--cgroup", cg.path, "--policy", path, "--log-format", "journal"],
                       socket_mode=socket_mode)
    try:
        # governord is up (it logged its start): only then is the SIGTERM
        # below the graceful stop under test, whatever the machine's speed
        j.wait_stderr_record("start")
    finally:
        code, stderr = j.stop()
    assert code == 0
    recs = [json.loads(line) for line in stderr.splitlines()]
    events = [r["event"] for r in recs]
    assert {"governor_start", "start", "stop"} <= set(events), stderr
    assert events[-1] == "exit", events
    assert all(r["level"] in SEVERITIES for r in recs)
    assert j.entries() == []
