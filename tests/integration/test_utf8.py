"""Bytes that are not valid UTF-8, on every road into JSON.

A policy path, a rejected policy line, a cgroup file's contents and a long
message of multi-byte characters cut by a fixed-size buffer each reach
/governor, /governor/history and the log.  jansson refuses invalid UTF-8, so
before the repair each of them turned the two documents into 500s and
stripped the fields of the log line.  Here every one must give 200 with
valid JSON (the raw bytes are decoded strictly, not with "replace"), the
foreign bytes must show up as U+FFFD, a cut must fall between characters,
and the log lines must keep their fields.
"""
import json
import os

from daemon import Daemon, scaled, write_file

GOOD = "[governor]\ninterval_ms = 50\n[collector]\nenabled = false\n"
REPLACEMENT = "\ufffd"


def strict_json(d, path):
    """GET path: must be 200 and strictly valid UTF-8 JSON; parsed."""
    code, _, body = d.request(path)
    assert code == 200, body[:2000]
    return json.loads(body.decode("utf-8"))  # no "replace": invalid bytes fail here


def strict_records(d):
    """The log, every byte valid UTF-8 and every line a JSON object."""
    with open(d.log_path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    text = text[:text.rfind("\n") + 1]
    return [json.loads(line) for line in text.splitlines()]


def wait_strict_record(d, event, pred):
    def find():
        return next((r for r in strict_records(d) if r.get("event") == event and pred(r)), None)
    d.wait_record(event, pred)  # waits (scaled); the strict read then checks the bytes
    rec = find()
    assert rec, f"'{event}' line not valid UTF-8 JSON:\n{d.log_text()}"
    return rec


def replace_bytes(path, data):
    tmp = path + (b".tmp" if isinstance(path, bytes) else ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def both_documents(d):
    st = strict_json(d, "/governor")
    strict_json(d, "/governor/history")
    strict_json(d, "/governor/history?since=1&after_seq=0")
    return st


def test_policy_path_with_invalid_bytes(cgroup, daemons, tmp_path):
    raw = os.path.join(os.fsencode(str(tmp_path)), b"policy-\xff\xfe-\xc3.ini")
    with open(raw, "wb") as f:
        f.write(GOOD.encode())
    path = os.fsdecode(raw)  # surrogate-escaped: the exact bytes reach argv
    d = daemons(["--cgroup", cgroup.path, "--policy", path])
    st = both_documents(d)
    assert st["policy"]["source"].endswith(f"policy-{REPLACEMENT}{REPLACEMENT}-{REPLACEMENT}.ini")
    start = wait_strict_record(d, "start", lambda r: "port" in r)
    assert start["policy"] == st["policy"]["source"] and start["cgroup"]
    # a reload names the path in its log line, with every field
    replace_bytes(raw, (GOOD + "[thresholds]\nhigh = 0.9\n").encode())
    rec = wait_strict_record(d, "reload", lambda r: r.get("policy_generation") == 2)
    assert rec["path"] == st["policy"]["source"] and rec["mode"] == "enforce"
    # a rejection: the path is in the error text of the documents and the log
    replace_bytes(raw, b"[governor]\nmode = sideways\n")
    rec = wait_strict_record(d, "reload_failed", lambda r: True)
    assert rec["error"].startswith(st["policy"]["source"]) and rec["errors"] and rec["trigger"]
    st = d.wait_for(lambda s: s["policy"]["last_error"], what="the rejection")
    assert "'sideways' is not a mode" in st["policy"]["last_error"]
    both_documents(d)


def test_rejected_policy_lines_with_invalid_bytes(cgroup, daemons, tmp_path):
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = daemons(["--cgroup", cgroup.path, "--policy", path])
    cases = [
        (b"[governor]\nmode = enf\xffrce\n", f"'enf{REPLACEMENT}rce' is not a mode"),
        (b"[memory]\nli\xc0\xafmit = 1Gi\n",
         f"memory.li{REPLACEMENT}{REPLACEMENT}mit: unknown key"),
        (b"[gov\xed\xa0\x80]\nmode = observe\n", "unknown section"),
        (b"[collector]\nblock_size = 64\xf4\x90\x80\x80Mi\n",
         f"'64{REPLACEMENT * 4}Mi' is not a size"),
    ]
    for n, (content, expect) in enumerate(cases, 1):
        replace_bytes(path, content)
        st = d.wait_for(lambda s: s["policy"]["last_error"] and expect in s["policy"]["last_error"],
                        what=f"the rejection of {content!r}")
        both_documents(d)
        failed = wait_strict_record(d, "reload_failed", lambda r: expect in r.get("error", ""))
        # every field is there: nothing was stripped
        assert failed["trigger"] and failed["policy_generation"] == n  # still in force
        assert any(expect in line for line in failed["errors"])
        assert "log_error" not in failed
        replace_bytes(path, (GOOD + f"; good again {n}\n").encode())
        d.wait_for(lambda s: s["policy"]["last_error"] is None, what="the error cleared")


def test_cgroup_file_with_invalid_bytes(cgroup, daemons, tmp_path):
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = daemons(["--cgroup", cgroup.path, "--policy", path])
    replace_bytes(cgroup.file("memory.max"), b"\xff\xfe12\xe2\x82\n")
    st = d.wait_for(lambda s: s["memory"]["error"], what="the memory source error")
    assert "memory.max" in st["memory"]["error"] and REPLACEMENT in st["memory"]["error"]
    st = both_documents(d)
    assert not st["memory"]["readable"]
    rec = wait_strict_record(d, "sample_error", lambda r: "memory.max" in r.get("error", ""))
    assert REPLACEMENT in rec["error"]
    # admissions refused meanwhile name the error in their reason, also valid
    cgroup.set(max_=1 << 30)
    d.wait_for(lambda s: s["memory"]["readable"], what="recovery")
    both_documents(d)


def test_long_multibyte_error_is_cut_between_characters(cgroup, daemons, tmp_path):
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = daemons(["--cgroup", cgroup.path, "--policy", path])
    # 180 bytes of 2-, 3- and 4-byte characters (a policy line holds 198):
    # longer than the 160-byte buffer of a policy error, and shifted so that
    # a cut by bytes falls inside a character
    for text in ("\u00e9" * 90, "x" + "\u00e9" * 89, "x" + "\u20ac" * 60,
                 "xy" + "\U0001F600" * 45):
        replace_bytes(path, f"[governor]\nmode = {text}\n".encode())
        st = d.wait_for(lambda s: s["policy"]["last_error"] and
                        text[:20] in s["policy"]["last_error"], what="the rejection")
        st = both_documents(d)
        err = st["policy"]["last_error"]
        # cut between characters: no half character turned into U+FFFD
        assert REPLACEMENT not in err, err
        failed = wait_strict_record(d, "reload_failed", lambda r: text[:20] in r.get("error", ""))
        assert REPLACEMENT not in failed["error"] and failed["errors"]
        assert all(REPLACEMENT not in line for line in failed["errors"])
        replace_bytes(path, GOOD.encode())
        d.wait_for(lambda s: s["policy"]["last_error"] is None, what="the error cleared")


def test_start_failure_line_with_invalid_bytes(cgroup, tmp_path):
    # a policy that cannot be loaded at start: the start_failed message
    # quotes the path's bytes; the line must still be one valid JSON object
    raw = os.path.join(os.fsencode(str(tmp_path)), b"bad-\xff.ini")
    with open(raw, "wb") as f:
        f.write(b"[governor]\nmode = \xff\n")
    d = Daemon(["--cgroup", cgroup.path, "--policy", os.fsdecode(raw)],
               log_path=tmp_path / "governord.log", wait_ready=False)
    try:
        assert d.proc.wait(timeout=scaled(10)) == 1
    finally:
        d.close()
    with open(d.log_path, "rb") as f:
        text = f.read().decode("utf-8")  # strictly: every byte valid
    # the policy's errors come first as plain lines (as --check-policy
    # prints them), then the JSON lines
    recs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    failed = [r for r in recs if r.get("event") == "start_failed"]
    assert failed and f"bad-{REPLACEMENT}.ini" in failed[0]["msg"], recs
    assert f"'{REPLACEMENT}' is not a mode" in failed[0]["msg"]
