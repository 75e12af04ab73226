"""The file store of /counter (--counter file:PATH): real processes, real
kill -9, real files.

- kill -9 at random moments under load, 20 times: every value served over
  all the runs is unique (the lease on disk is always ahead of what was
  served);
- a clean stop loses nothing: the next start serves the next value;
- a corrupt, truncated, future or unwritable file stops the start with exit
  2 and the documented message, and is left as it was;
- a lease that cannot be written at run time: /counter 503 with Retry-After
  (never a number), /readyz 503 with the reason, /healthz 200, the errors in
  /metrics and /governor; then it recovers above every value served.
"""
import os
import random
import subprocess

from counterload import Load, counter_value
from daemon import GOVERNORD, Daemon, clean_env, scaled, wait_until
from observe_helpers import metrics_text, parse_exposition, promtool_check, value


def file_args(cg, path, lease=None):
    args = ["--cgroup", cg.path, "--counter", f"file:{path}"]
    if lease:
        args += ["--counter-lease", str(lease)]
    return args


def test_kill_9_under_load_never_repeats_a_value(cgroup, tmp_path):
    path = tmp_path / "counter"
    rnd = random.Random(11)
    seen = []
    for run in range(20):
        d = Daemon(file_args(cgroup, path, lease=25), log_path=tmp_path / f"run-{run}.log")
        try:
            load = Load([d.port], clients=4).start()
            # let some requests through (at least one lease renewal on most
            # runs), then kill at a random moment
            target = rnd.randint(5, 120)
            wait_until(lambda: len(load.values) >= target, timeout=scaled(20),
                       what=f"{target} values")
            d.proc.kill()
            d.proc.wait()
            load.stop()
        finally:
            d.close()
        assert not load.others, load.others[:3]
        assert len(set(load.values)) == len(load.values), "a value repeated within a run"
        seen.extend(load.values)
    assert len(seen) == len(set(seen)), \
        f"values repeated across kill -9: {sorted(v for v in set(seen) if seen.count(v) > 1)[:10]}"
    # and nothing was skipped beyond one lease per crash
    assert max(seen) <= len(seen) + 20 * 25


def test_clean_restart_continues_exactly(daemons, cgroup, tmp_path):
    path = tmp_path / "counter"
    d = daemons(file_args(cgroup, path))
    assert [counter_value(d) for _ in range(3)] == [1, 2, 3]
    assert d.stop() == 0
    d = daemons(file_args(cgroup, path))
    assert counter_value(d) == 4
    st = d.status()["counter"]
    assert st["store"] == "file" and st["up"] is True
    assert st["target"] == str(path)
    assert st["lease"] == {"high_water_mark": 1003, "size": 1000, "writes": 1, "waits": 0}


def test_the_mark_on_disk_stays_ahead_of_every_value_served(daemons, cgroup, tmp_path):
    """The renewer writes the next lease ahead of need: after each answer
    the mark on disk covers the value served and is at most K above it."""
    path = tmp_path / "counter"
    d = daemons(file_args(cgroup, path, lease=10))
    for want in range(1, 61):
        assert counter_value(d) == want
        mark = int(path.read_text().split()[2])
        assert want <= mark <= want + 10, (want, mark)
    lease = d.status()["counter"]["lease"]
    assert lease["high_water_mark"] >= 60 and lease["size"] == 10
    # 60 values in leases of at most 10: at least 6 marks, the first at start
    assert lease["writes"] >= 6, lease
    m = parse_exposition(metrics_text(d))
    assert value(m, "governor_visits_lease_writes_total") >= lease["writes"]
    assert isinstance(value(m, "governor_visits_lease_waits_total"), (int, float))


def start_fails(cgroup, path, tmp_path):
    """Runs governord on path; it must exit 2.  Returns its log."""
    proc = subprocess.run([GOVERNORD, "--listen", "127.0.0.1:0"] + file_args(cgroup, path),
                          env=clean_env(), capture_output=True, text=True,
                          timeout=scaled(10))
    assert proc.returncode == 2, proc.stderr
    assert '"event":"start_failed"' in proc.stderr, proc.stderr
    return proc.stderr


def test_bad_files_fail_the_start_with_exit_2(cgroup, tmp_path):
    path = tmp_path / "counter"
    good = "governord-counter 1 4000 "
    cases = {
        "truncated": "governord-counter 1 40",
        "empty": "",
        "corrupt: not a governord counter file": "hello\n",
        "corrupt: checksum mismatch": good + "0000000000000000\n",
        "from the future": "governord-counter 7 4000 0000000000000000\n",
    }
    for what, text in cases.items():
        path.write_text(text)
        log = start_fails(cgroup, path, tmp_path)
        assert what in log, (what, log)
        assert "refusing to start" in log
        assert path.read_text() == text, "the bad file was changed"

    # unwritable: the file is fine but cannot be replaced (its temporary
    # name is taken by a directory -- this works for root too)
    path.unlink()
    d = Daemon(file_args(cgroup, path), log_path=tmp_path / "first.log")
    try:
        assert counter_value(d) == 1
        assert d.stop() == 0
    finally:
        d.close()
    before = path.read_text()
    os.mkdir(f"{path}.tmp")
    log = start_fails(cgroup, path, tmp_path)
    assert "is not writable" in log, log
    assert path.read_text() == before
    os.rmdir(f"{path}.tmp")

    # a directory that is not there
    log = start_fails(cgroup, tmp_path / "missing" / "counter", tmp_path)
    assert "No such file or directory" in log, log


def test_second_process_on_one_file_is_refused(daemons, cgroup, tmp_path):
    path = tmp_path / "counter"
    daemons(file_args(cgroup, path))
    log = start_fails(cgroup, path, tmp_path)
    assert "in use by another governord" in log


def test_unwritable_at_run_time_is_503_then_recovers(daemons, cgroup, tmp_path):
    path = tmp_path / "counter"
    d = daemons(file_args(cgroup, path, lease=5))
    served = [counter_value(d)]
    os.mkdir(f"{path}.tmp")
    # values still covered by the mark on disk are served although their
    # early renewal (second half of the lease) fails; then the lease is spent
    served += [counter_value(d) for _ in range(4)]
    assert served == [1, 2, 3, 4, 5]
    for _ in range(3):
        status, headers, body = d.request("/counter")
        assert status == 503, body
        assert headers["Retry-After"] == "1"
        text = body.decode()
        assert text.startswith("cannot persist the counter: ") and text.endswith("\n")
        assert text.count("\n") == 1
        assert "Counter value" not in text
    status, _, body = d.request("/readyz")
    assert status == 503 and b"counter store (file" in body and b"Is a directory" in body
    assert d.get("/healthz")[0] == 200
    st = d.status()["counter"]
    assert st["up"] is False and st["errors"]["persist"] == 3
    text = metrics_text(d)
    promtool_check(text, tmp_path)
    m = parse_exposition(text)
    assert value(m, "governor_visits_store_up") == 0
    assert value(m, "governor_visits_store_errors_total", reason="persist") == 3
    assert value(m, "governor_visits_store_info", store="file") == 1
    downs = [r for r in d.records() if r.get("event") == "counter_down"]
    assert len(downs) == 1, "one log line per outage"

    os.rmdir(f"{path}.tmp")
    v = counter_value(d)
    assert v > max(served)
    assert d.get("/readyz")[0] == 200
    d.wait_record("counter_up")
