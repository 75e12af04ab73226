"""Fixtures and helpers of the integration suite.

The machinery the suites share is in tests/pylib (put on sys.path here):
cgroupfs.CgroupDir (a directory in the exact formats of a cgroup v2 memory
cgroup), kubelet.ConfigMapDir (a ConfigMap volume as the kubelet writes it)
and daemon.Daemon (governord on 127.0.0.1:0, its port read from the JSON
"start" log line, stopped with a signal).  Here: the `cgroup` and `daemons`
fixtures and two helpers of the HTTP tests.
"""
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))

from cgroupfs import CgroupDir  # noqa: E402
from daemon import Daemon  # noqa: E402


@pytest.fixture
def cgroup(tmp_path):
    return CgroupDir(tmp_path / "cgroup")


@pytest.fixture
def daemons(tmp_path):
    """Starts daemons on demand (daemon.Daemon's arguments); at the end of
    the test every one still running gets SIGTERM, and every one must have
    exited 0 with no sanitizer report in its log.  Under ASan a leak or a
    memory error makes the exit status non-zero, under valgrind too
    (scripts/valgrind-governord.sh), so this also checks those."""
    started = []

    def start(args, env=None, wait_ready=True, preexec_fn=None):
        d = Daemon(args, log_path=tmp_path / f"governord-{len(started)}.log", env=env,
                   wait_ready=wait_ready, preexec_fn=preexec_fn)
        started.append(d)
        return d

    yield start
    problems = []
    for d in started:
        try:
            rc = d.stop()
        except AssertionError as e:  # did not stop: killed
            rc = str(e)
        text = d.log_text()
        if rc != 0 or "Sanitizer" in text or "runtime error" in text:
            problems.append(f"{d.args}: exit {rc}\n{text[-3000:]}")
    assert not problems, "\n".join(problems)


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
