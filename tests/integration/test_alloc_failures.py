"""Collector allocations that fail are counted, shown and logged.

The failure is real: the daemon runs under an address-space limit
(RLIMIT_AS, set in the child before exec) smaller than the block the
policy asks for, so the collector's mmap() fails with ENOMEM although
admission control granted the block (the cgroup stand-in has room).  The
count must show on /governor (buffer.alloc_failures), in /metrics
(governor_collector_alloc_failures_total, promtool-clean) and in the log:
one collector_alloc_failed line per episode, not one per attempt, and a
collector_alloc_recovered line when blocks fit again.

The first test is skipped under ASan and valgrind only: both reserve far more address space
than any useful limit (ASan's shadow alone is terabytes), so the daemon
could not start under one.
"""
import os
import resource

import pytest

from daemon import GOVERNORD, write_file
from observe_helpers import metrics_text, parse_exposition, promtool_check, value

GIB = 1 << 30
AS_LIMIT = 2 * GIB


def address_space_limit_usable():
    if os.environ.get("GOVERNORD_BIN"):  # scripts/valgrind-governord.sh wraps the binary
        return False
    with open(GOVERNORD, "rb") as f:
        return b"__asan_init" not in f.read()


needs_address_space_limit = pytest.mark.skipif(
    not address_space_limit_usable(),
    reason="ASan and valgrind need more address space than RLIMIT_AS leaves")


def limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def policy(block_size):
    return (f"[governor]\ninterval_ms = 50\n"
            f"[collector]\nenabled = true\nblock_size = {block_size}\ninterval_ms = 20\n")


def failures(d):
    return d.status()["buffer"]["alloc_failures"]


@needs_address_space_limit
def test_failed_allocations_are_counted_shown_and_logged(cgroup, daemons, tmp_path):
    # 64Gi of room in the cgroup: admission grants a 4Gi block, the
    # address-space limit (2Gi) makes mmap refuse it
    cgroup.set(max_=64 * GIB)
    path = write_file(tmp_path / "policy.ini", policy("4Gi"))
    d = daemons(["--cgroup", cgroup.path, "--policy", path], preexec_fn=limit_address_space)

    st = d.wait_for(lambda s: s["buffer"]["alloc_failures"] >= 5, what="5 failed allocations")
    assert st["buffer"]["blocks"] == 0 and st["buffer"]["bytes"] == 0
    fam = parse_exposition(metrics_text(d))
    assert fam["governor_collector_alloc_failures_total"]["type"] == "counter"
    assert value(fam, "governor_collector_alloc_failures_total") >= 5
    text = metrics_text(d)
    promtool_check(text, str(tmp_path))

    # one line for the whole episode, however many attempts failed
    rec = d.wait_record("collector_alloc_failed")
    assert rec["level"] == "error"
    assert rec["block_bytes"] == 4 * GIB and rec["alloc_failures_total"] == 1
    assert rec["error"] == os.strerror(12)  # ENOMEM
    assert failures(d) >= 5
    assert len([r for r in d.records() if r["event"] == "collector_alloc_failed"]) == 1

    # blocks that fit: the collector recovers and says so, once
    write_file(tmp_path / "policy.ini", policy("1Mi"))
    d.wait_for(lambda s: s["buffer"]["blocks"] > 0, what="a block allocated")
    rec = d.wait_record("collector_alloc_recovered")
    assert rec["alloc_failures_total"] >= 5 and rec["block_bytes"] == 1 << 20
    assert len([r for r in d.records() if r["event"] == "collector_alloc_recovered"]) == 1
    # a counter: it keeps its value
    counted = failures(d)
    assert value(parse_exposition(metrics_text(d)), "governor_collector_alloc_failures_total") \
        == counted

    # a new episode gets its own line
    write_file(tmp_path / "policy.ini", policy("4Gi"))
    d.wait_for(lambda s: s["buffer"]["alloc_failures"] > counted, what="failures again")
    d.wait_record("collector_alloc_failed", lambda r: r["alloc_failures_total"] == counted + 1)
    assert len([r for r in d.records() if r["event"] == "collector_alloc_failed"]) == 2


def test_no_failures_reads_zero(cgroup, daemons, tmp_path):
    path = write_file(tmp_path / "policy.ini", policy("1Mi"))
    d = daemons(["--cgroup", cgroup.path, "--policy", path])
    d.wait_for(lambda s: s["buffer"]["blocks"] > 0, what="a block allocated")
    assert failures(d) == 0
    assert value(parse_exposition(metrics_text(d)), "governor_collector_alloc_failures_total") == 0
    assert not [r for r in d.records() if r["event"].startswith("collector_alloc")]
