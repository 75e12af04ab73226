"""Hostile policies against the running daemon.

The parser's messages are unit-tested (tests/unit/test_policy.c); here each
bad policy reaches a running governord the way it would in a pod -- written
in place, swapped in by the kubelet's ..data rename, replaced by a directory
or a symlink loop, rewritten while being read -- and the test checks that it
is rejected with a clear error in /governor and the log, that the previous
policy stays in force (same generation, same values), and that the daemon
keeps serving and takes the next good policy.
"""
import os
import signal
import subprocess
import sys
import time

from daemon import write_file
from kubelet import ConfigMapDir

GOOD = "[governor]\ninterval_ms = 50\n[collector]\nenabled = false\n[thresholds]\nhigh = 0.9\n"


def start(daemons, cgroup, path):
    d = daemons(["--cgroup", cgroup.path, "--policy", path])
    st = d.status()
    assert st["policy"]["generation"] == 1 and st["policy"]["last_error"] is None
    return d


def rejected(d, generation, expect, previous_high="0.9"):
    """Waits for the rejection, then checks the old policy is in force."""
    st = d.wait_for(lambda s: s["policy"]["last_error"] is not None and
                    expect in s["policy"]["last_error"], timeout=3,
                    what=f"a rejection mentioning {expect!r}")
    assert st["policy"]["generation"] == generation
    assert st["policy"]["values"]["thresholds"]["high"] == previous_high
    assert d.get("/readyz") == (200, "ready\n")
    assert d.get("/counter")[0] == 200
    return st


def accepted(d, generation):
    return d.wait_for(lambda s: s["policy"]["generation"] == generation and
                      s["policy"]["last_error"] is None, timeout=3,
                      what=f"generation {generation}")


BAD_POLICIES = [
    # (content, part of the error)
    (b"[governor]\nmode = enforce\x00\n", "binary data (NUL byte) in line"),
    (bytes(range(256)) * 4, "policy.ini:1:"),
    (b"\xff\xfe[\x00g\x00o\x00v\x00]\x00", "binary data"),
    (b"[governor]\ninterval_ms = -5\n", "governor.interval_ms: '-5' is not a whole number"),
    (b"[governor]\ninterval_ms = 99999999999999999999999\n", "governor.interval_ms:"),
    (b"[governor]\ninterval_ms = 5\n", "5 ms is out of range (10..60000)"),
    (b"[collector]\nblock_size = 1e400\n", "collector.block_size: '1e400' is not a size"),
    (b"[collector]\nblock_size = 17Gi\n", "collector.block_size: 17Gi is out of range"),
    (b"[memory]\nlimit = -1Gi\n", "memory.limit: '-1Gi' is not a size: negative size"),
    (b"[thresholds]\nhigh = nan\n", "thresholds.high: 'nan' is not a fraction"),
    (b"[thresholds]\nhigh = inf\n", "thresholds.high: 'inf' is not a fraction"),
    (b"[thresholds]\nhigh = 0.5\n", "soft (0.7) must be below high (0.5)"),
    (b"[thresholds]\ncritical = 150%\n", "thresholds.critical: 150% is out of range"),
    (b"[governor]\nmode = \n", "governor.mode: empty value"),
    (b"[governor]\nmode = enforce\nmode = observe\n", "duplicate key (first set on line 2)"),
    (b"[governor]\n[governor]\ninterval_ms = 50\ninterval_ms = 60\n", "duplicate key"),
    (b"[governr]\nmode = enforce\n", "[governr]: unknown section"),
    (b"[governor]\nmood = enforce\n", "governor.mood: unknown key in [governor]"),
    (b"mode = enforce\n", "key outside a section"),
    (b"[governor\n", "section header without closing ']'"),
    (b"[governor]\njust words\n", "expected 'key = value', '[section]' or a comment"),
    (b"[governor]\nmode = " + b"x" * 5000 + b"\n", "line too long"),
    (b"[thresholds]\n" + b"high = 0.9\n" * 1000, "more)"),  # 999 duplicates, counted
    (b"x" * (2 << 20), "file larger than 1048576 bytes"),
]


def test_bad_policies_written_in_place_are_rejected(cgroup, daemons, tmp_path):
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = start(daemons, cgroup, path)
    for content, expect in BAD_POLICIES:
        tmp = str(tmp_path / ".policy.tmp")
        with open(tmp, "wb") as f:
            f.write(content)
        os.rename(tmp, path)
        rejected(d, 1, expect)
        # the good policy again: the error clears, nothing was ever loaded
        write_file(tmp_path / ".policy.tmp", GOOD)
        os.rename(str(tmp_path / ".policy.tmp"), path)
        d.wait_for(lambda s: s["policy"]["last_error"] is None, timeout=3, what="error cleared")
    st = d.status()
    assert st["policy"]["generation"] == 1
    failed = [r for r in d.records() if r["event"] == "reload_failed"]
    assert len(failed) == len(BAD_POLICIES)
    assert all(r["error"] and r["errors"] for r in failed)


def test_empty_policy_is_refused(cgroup, daemons, tmp_path):
    # an emptied ConfigMap must not reset every setting to the defaults
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = start(daemons, cgroup, path)
    write_file(path, "")
    rejected(d, 1, "no settings (empty, or only comments)")
    write_file(path, "; nothing but a comment\n[thresholds]\n")
    rejected(d, 1, "no settings (empty, or only comments)")


def test_missing_directory_and_symlink_loop(cgroup, daemons, tmp_path):
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = start(daemons, cgroup, path)

    os.unlink(path)
    rejected(d, 1, "cannot open: No such file or directory")

    os.mkdir(path)  # a directory where the file was
    rejected(d, 1, "is a directory, not a policy file")
    os.rmdir(path)

    os.symlink("loop-b.ini", str(tmp_path / "loop-a.ini"))
    os.symlink("loop-a.ini", str(tmp_path / "loop-b.ini"))
    os.symlink("loop-a.ini", str(tmp_path / ".policy.tmp"))
    os.rename(str(tmp_path / ".policy.tmp"), path)
    rejected(d, 1, "cannot open: Too many levels of symbolic links")

    os.symlink("/dev/zero", str(tmp_path / ".policy.tmp"))  # not a regular file
    os.rename(str(tmp_path / ".policy.tmp"), path)
    rejected(d, 1, "is not a regular file")

    os.unlink(path)
    write_file(path, GOOD.replace("0.9", "0.88"))
    st = accepted(d, 2)
    assert st["policy"]["values"]["thresholds"]["high"] == "0.88"


def test_configmap_swapped_to_garbage_and_a_directory(cgroup, daemons, tmp_path):
    cm = ConfigMapDir(tmp_path / "config", {"policy.ini": GOOD})
    d = start(daemons, cgroup, cm.file("policy.ini"))
    cm.update({"policy.ini": "\x00\x01\x02 garbage \xff"})
    rejected(d, 1, "binary data (NUL byte) in line")

    # the kubelet's layout with policy.ini a directory inside the new ..data
    stamp = os.path.join(cm.path, "..2026_01_01_00_00_00.999999999")
    os.makedirs(os.path.join(stamp, "policy.ini"))
    tmp = os.path.join(cm.path, "..data_tmp")
    os.symlink(os.path.basename(stamp), tmp)
    os.rename(tmp, os.path.join(cm.path, "..data"))
    rejected(d, 1, "is a directory, not a policy file")
    os.rmdir(os.path.join(stamp, "policy.ini"))  # so that update() can clean up

    cm.update({"policy.ini": GOOD.replace("0.9", "0.91")})
    st = accepted(d, 2)
    assert st["policy"]["values"]["thresholds"]["high"] == "0.91"


def test_policy_rewritten_in_place(cgroup, daemons, tmp_path):
    """Rewritten in place (truncate, then write; no rename), a policy file is
    empty or half written for a moment -- and half a policy may well be
    valid, since every key is optional.  The daemon only takes a
    file that has been left alone for 250 ms and did not change while it was
    read, so a reload asked for in that moment waits for the complete file."""
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = start(daemons, cgroup, path)
    for gen, high in ((2, "0.8"), (3, "0.7")):
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        d.send_signal(signal.SIGHUP)  # reload now, while the file is empty
        time.sleep(0.05)
        os.write(fd, GOOD.replace("high = 0.9", f"high = {high}\nsoft = 0.65").encode())
        os.close(fd)
        st = accepted(d, gen)
        assert st["policy"]["values"]["thresholds"]["high"] == high
    # neither the empty file nor a partial one was ever taken
    loads = [r for r in d.records() if r["event"] == "reload"]
    assert [r["policy_generation"] for r in loads] == [2, 3]


def test_policy_replaced_while_being_read(cgroup, daemons, tmp_path):
    """A writer process replaces the file (write a temporary file, rename it
    over the policy) as fast as it can, cycling through two valid versions of
    different sizes and a broken one, while SIGHUPs and inotify ask for
    reloads: every policy in force is one of the valid versions, the broken
    one is rejected, and the daemon keeps serving."""
    versions = {
        "0.9": GOOD,
        "0.8": GOOD.replace("high = 0.9", "high = 0.8") + "; padding\n" * 2000,
    }
    broken = GOOD + "[thresholds]\nhigh = 0.2\n"
    path = write_file(tmp_path / "policy.ini", GOOD)
    d = start(daemons, cgroup, path)
    script = ("import os, sys, time\n"
              "texts = [t.encode() for t in sys.argv[2:]]\n"
              "end = time.monotonic() + 3\n"
              "i = 0\n"
              "while time.monotonic() < end:\n"
              "    tmp = sys.argv[1] + '.tmp'\n"
              "    with open(tmp, 'wb') as f:\n"
              "        f.write(texts[i % len(texts)])\n"
              "    os.rename(tmp, sys.argv[1])\n"
              "    i += 1\n"
              "    if i % 200 == 0:\n"
              "        time.sleep(0.3)  # settled for a moment\n")
    writer = subprocess.Popen([sys.executable, "-c", script, path, versions["0.9"],
                               versions["0.8"], broken])
    seen = set()
    try:
        while writer.poll() is None:
            d.send_signal(signal.SIGHUP)
            st = d.status()
            high = st["policy"]["values"]["thresholds"]["high"]
            assert high in versions, st["policy"]
            seen.add(st["policy"]["generation"])
            assert d.get("/counter")[0] == 200
            time.sleep(0.02)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == 0
    write_file(path, versions["0.9"] + "; the end\n")
    d.wait_for(lambda s: s["policy"]["values"]["thresholds"]["high"] == "0.9" and
               s["policy"]["last_error"] is None, timeout=3, what="the settled version")
    assert len(seen) > 1, "no reload happened while the file was replaced"
