"""GET /metrics from the running daemon: promtool-clean, and the values move.

Each scrape is checked twice: by `promtool check metrics` (the reference
parser and linter; exit 3 on lint findings fails) and by a strict parser of
the text format here, whose values are compared with what the test did --
the usage it wrote into the cgroup files, the requests it made, the policy
files it wrote, the moment it started the process."""
import hashlib
import os
import resource
import signal
import time
from pathlib import Path

import pytest

from cgroupfs import GIB, MIB, CgroupDir
from daemon import GOVERNORD, settle, wait_until, write_file
from observe_helpers import metrics_text, parse_exposition, policy_text, promtool_check, value


def start(daemons, policy, cg):
    return daemons(["--cgroup", cg.path, "--policy", policy])


def scrape(g, tmp_path):
    text = metrics_text(g)
    promtool_check(text, tmp_path)
    return parse_exposition(text)


REQUIRED = {
    # name: type -- the families the README documents
    "governor_build_info": "gauge",
    "governor_process_start_time_seconds": "gauge",
    "governor_memory_readable": "gauge",
    "governor_memory_limit_bytes": "gauge",
    "governor_memory_limit_source": "gauge",
    "governor_memory_signal_bytes": "gauge",
    "governor_memory_usage_bytes": "gauge",  # deprecated alias, one release
    "governor_memory_current_bytes": "gauge",
    "governor_memory_working_set_bytes": "gauge",
    "governor_memory_inactive_file_bytes": "gauge",
    "governor_memory_peak_bytes": "gauge",
    "governor_memory_signal_ratio": "gauge",
    "governor_memory_usage_ratio": "gauge",  # deprecated alias, one release
    "governor_memory_events_total": "counter",
    "governor_memory_oom_kills_total": "counter",
    "governor_memory_pressure_stall_seconds_total": "counter",
    "governor_level": "gauge",
    "governor_mode": "gauge",
    "governor_threshold_ratio": "gauge",
    "governor_buffer_bytes": "gauge",
    "governor_buffer_blocks": "gauge",
    "governor_shrinks_total": "counter",
    "governor_released_bytes_total": "counter",
    "governor_admission_evictions_total": "counter",
    "governor_admission_evicted_bytes_total": "counter",
    "governor_refused_allocations_total": "counter",
    "governor_policy_generation": "gauge",
    "governor_policy_reloads_total": "counter",
    "governor_policy_loaded_timestamp_seconds": "gauge",
    "governor_policy_info": "gauge",
    "governor_wakeups_total": "counter",
    "governor_ticks_total": "counter",
    "governor_sample_errors_total": "counter",
    "governor_visits_total": "counter",
    "governor_http_requests_total": "counter",
    # the trim protocol's socket and its clients (per-client families have
    # no samples without clients: these daemons run with --socket none)
    "governor_socket_listening": "gauge",
    "governor_clients": "gauge",
    "governor_client_connections_total": "counter",
    "governor_client_rejected_total": "counter",
    "governor_client_protocol_errors_total": "counter",
    "governor_client_timeouts_total": "counter",
    "governor_client_bytes": "gauge",
    "governor_client_objects": "gauge",
    "governor_client_shrinks_total": "counter",
    "governor_client_released_bytes_total": "counter",
    "governor_client_unresponsive": "gauge",
    "governor_client_shrink_round_trip_seconds": "histogram",
    # the standard process metrics of the Prometheus client libraries
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


def test_families_types_and_first_values(daemons, tmp_path):
    cg = CgroupDir(tmp_path / "cgroup", max_=GIB, current=300 * MIB, inactive_file=20 * MIB)
    cg.set_pressure(some_total_us=1_500_000, full_total_us=250_000)
    policy = write_file(tmp_path / "policy.ini", policy_text())
    g = start(daemons, policy, cg)
    g.request("/counter")  # so that the requests family has a sample
    f = wait_until(lambda: (lambda m: m if value(m, "governor_ticks_total") > 0 else None)(
        scrape(g, tmp_path)), what="a first tick")

    for name, kind in REQUIRED.items():
        assert name in f, f"family {name} missing"
        assert f[name]["type"] == kind, f"{name} is a {f[name]['type']}, not {kind}"
        assert f[name]["help"], f"{name} has no HELP text"
    for name, fam in f.items():
        assert name.startswith(("governor_", "process_")), name
        assert name.endswith("_total") == (fam["type"] == "counter"), name

    assert value(f, "governor_build_info", version="0.1.0") == 1
    assert value(f, "governor_memory_readable") == 1
    assert value(f, "governor_memory_limit_bytes") == GIB
    assert value(f, "governor_memory_limit_source", source="cgroup") == 1
    assert value(f, "governor_memory_limit_source", source="host") == 0
    assert value(f, "governor_memory_current_bytes") == 300 * MIB
    assert value(f, "governor_memory_inactive_file_bytes") == 20 * MIB
    assert value(f, "governor_memory_working_set_bytes") == 280 * MIB
    assert value(f, "governor_memory_signal_bytes") == 280 * MIB  # signal = working_set
    assert value(f, "governor_memory_usage_bytes") == 280 * MIB  # its old name
    assert value(f, "governor_memory_peak_bytes") == 300 * MIB
    assert value(f, "governor_memory_signal_ratio") == pytest.approx(280 / 1024, rel=1e-12)
    assert value(f, "governor_memory_usage_ratio") == value(f, "governor_memory_signal_ratio")
    assert value(f, "governor_memory_pressure_stall_seconds_total", kind="some") == 1.5
    assert value(f, "governor_memory_pressure_stall_seconds_total", kind="full") == 0.25
    levels = {lv: value(f, "governor_level", level=lv)
              for lv in ("normal", "soft", "high", "critical")}
    assert levels == {"normal": 1, "soft": 0, "high": 0, "critical": 0}
    assert value(f, "governor_mode", mode="enforce") == 1
    assert value(f, "governor_threshold_ratio", threshold="high") == 0.85
    assert value(f, "governor_policy_generation") == 1
    assert value(f, "governor_policy_reloads_total", result="success") == 0
    assert value(f, "governor_visits_total") == 1

    # cross-check with /governor, which reads the same snapshot type
    st = g.status()
    assert st["memory"]["limit_bytes"] == value(f, "governor_memory_limit_bytes")
    assert st["memory"]["working_set_bytes"] == value(f, "governor_memory_working_set_bytes")
    assert st["policy"]["generation"] == value(f, "governor_policy_generation")
    assert g.stop() == 0


def test_process_start_time_is_the_real_start(daemons, tmp_path):
    cg = CgroupDir(tmp_path / "cgroup")
    policy = write_file(tmp_path / "policy.ini", policy_text())
    g = start(daemons, policy, cg)
    time.sleep(0.3)  # a start time taken at scrape time would now be visibly late
    f = scrape(g, tmp_path)
    t = value(f, "process_start_time_seconds")
    assert value(f, "governor_process_start_time_seconds") == t
    # starttime has clock-tick (10 ms) resolution and is taken at fork
    assert g.spawned_at - 0.05 <= t <= g.spawned_done + 0.05, (g.spawned_at, t)
    # the same figure the Prometheus client libraries compute: btime + starttime
    with open(f"/proc/{g.pid}/stat") as fh:
        ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as fh:
        btime = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
    assert abs(t - (btime + ticks / os.sysconf("SC_CLK_TCK"))) < 1.0
    assert g.stop() == 0


def test_values_move_after_shrinks(daemons, tmp_path):
    """A growing buffer, then usage past high (shrink to target), back to
    normal, regrowth, then past critical (release everything)."""
    cg = CgroupDir(tmp_path / "cgroup", max_=GIB, current=100 * MIB)
    policy = write_file(tmp_path / "policy.ini",
                        policy_text(collector=True, block_size="1Mi",
                                    collector_interval_ms=100))
    g = start(daemons, policy, cg)

    def scrape_when(pred, what, timeout=10):
        return wait_until(lambda: (lambda m: m if pred(m) else None)(scrape(g, tmp_path)),
                          timeout, what, interval=0.05)

    before = scrape_when(lambda m: value(m, "governor_buffer_blocks") >= 3, "3 blocks")
    assert value(before, "governor_buffer_bytes") == value(before,
                                                           "governor_buffer_blocks") * MIB
    assert value(before, "governor_shrinks_total", level="high") == 0
    assert value(before, "governor_released_bytes_total", level="high") == 0
    held = value(before, "governor_buffer_bytes")

    # past high (85%), below critical (95%)
    cg.set(current=int(0.90 * GIB), inactive_file=0)
    # admission samples memory itself and may evict before a tick has
    # published the level: wait for both
    high = scrape_when(lambda m: value(m, "governor_shrinks_total", level="high") >= 1 and
                       value(m, "governor_level", level="high") == 1, "a shrink at high")
    assert value(high, "governor_level", level="high") == 1
    assert value(high, "governor_level", level="normal") == 0
    assert value(high, "governor_memory_current_bytes") == int(0.90 * GIB)
    assert value(high, "governor_memory_signal_ratio") == pytest.approx(0.90, rel=1e-9)
    # the shrink wanted 30% of the limit, more than the buffer: all of it went
    assert value(high, "governor_released_bytes_total", level="high") >= held
    assert value(high, "governor_released_bytes_total", level="high") % MIB == 0
    assert value(high, "governor_released_bytes_total", level="critical") == 0
    # at high, new blocks cannot fit: admission refuses them
    high = scrape_when(lambda m: value(m, "governor_refused_allocations_total") >= 1 and
                       value(m, "governor_buffer_bytes") == 0, "refusals and an empty buffer")

    # back to normal; the buffer grows again
    cg.set(current=100 * MIB)
    normal = scrape_when(lambda m: value(m, "governor_level", level="normal") == 1 and
                         value(m, "governor_buffer_blocks") >= 3, "regrowth at normal")
    regrown = value(normal, "governor_buffer_bytes")
    refused = value(normal, "governor_refused_allocations_total")

    # past critical (95%): everything above the floor (0) is released at once
    cg.set(current=int(0.97 * GIB))
    crit = scrape_when(lambda m: value(m, "governor_shrinks_total", level="critical") >= 1,
                       "a release at critical")
    assert value(crit, "governor_level", level="critical") == 1
    assert value(crit, "governor_released_bytes_total", level="critical") >= regrown
    assert value(crit, "governor_refused_allocations_total") >= refused
    # counters never went down between the scrapes
    for name, labels in (("governor_shrinks_total", {"level": "high"}),
                         ("governor_released_bytes_total", {"level": "high"}),
                         ("governor_ticks_total", {}),
                         ("governor_wakeups_total", {"source": "timer"})):
        assert value(before, name, **labels) <= value(high, name, **labels) <= \
            value(normal, name, **labels) <= value(crit, name, **labels), name
    assert value(crit, "governor_ticks_total") > value(before, "governor_ticks_total")

    # the decision log on /governor tells the same story
    st = g.status()
    actions = {(d["level"], d["action"]) for d in st["decisions"]}
    assert ("high", "shrink") in actions and ("critical", "release") in actions
    assert g.stop() == 0


def test_oom_kills_events_and_wakeups(daemons, tmp_path):
    cg = CgroupDir(tmp_path / "cgroup")
    policy = write_file(tmp_path / "policy.ini", policy_text(interval_ms=2000))
    g = start(daemons, policy, cg)
    f0 = scrape(g, tmp_path)
    assert value(f0, "governor_memory_oom_kills_total") == 0
    woken = value(f0, "governor_wakeups_total", source="events")

    # the kernel rewrites memory.events in place; the governor's watch wakes it
    # (the timer is 2 s, so the new values arrive through the events wake-up)
    cg.set_events(max=7, oom=3, oom_kill=2, high=11)
    f = wait_until(lambda: (lambda m: m if value(m, "governor_memory_oom_kills_total") == 2
                            else None)(scrape(g, tmp_path)), 1.5, "oom_kill 2")
    assert value(f, "governor_memory_events_total", event="max") == 7
    assert value(f, "governor_memory_events_total", event="oom") == 3
    assert value(f, "governor_memory_events_total", event="high") == 11
    assert value(f, "governor_wakeups_total", source="events") > woken
    assert g.stop() == 0


def test_policy_reloads_and_generation(daemons, tmp_path):
    cg = CgroupDir(tmp_path / "cgroup")
    path = str(tmp_path / "policy.ini")
    write_file(path, policy_text())
    g = start(daemons, path, cg)
    f = scrape(g, tmp_path)
    assert value(f, "governor_policy_generation") == 1
    loaded1 = value(f, "governor_policy_loaded_timestamp_seconds")
    assert g.spawned_at - 1 <= loaded1 <= time.time()

    # a valid new policy (watched directory): generation 2, one success
    write_file(path + ".new", policy_text(mode="observe"))
    os.rename(path + ".new", path)
    f = wait_until(lambda: (lambda m: m if value(m, "governor_policy_generation") == 2
                            else None)(scrape(g, tmp_path)), 5, "generation 2")
    assert value(f, "governor_policy_reloads_total", result="success") == 1
    assert value(f, "governor_policy_reloads_total", result="failure") == 0
    assert value(f, "governor_mode", mode="observe") == 1
    assert value(f, "governor_wakeups_total", source="policy") >= 1
    assert value(f, "governor_policy_loaded_timestamp_seconds") > loaded1

    # a broken one: rejected, generation stays 2
    write_file(path + ".new", "[thresholds]\nhigh = 2\n")
    os.rename(path + ".new", path)
    f = wait_until(lambda: (lambda m: m if value(m, "governor_policy_reloads_total",
                                                 result="failure") == 1 else None)(
        scrape(g, tmp_path)), 5, "a failed reload")
    assert value(f, "governor_policy_generation") == 2
    assert value(f, "governor_policy_reloads_total", result="success") == 1

    # SIGHUP with the same broken file: nothing new is counted
    g.send_signal(signal.SIGHUP)
    g.wait_record("signal")
    settle(0.5, "a second rejection of the same file would be counted within a tick")
    f = scrape(g, tmp_path)
    assert value(f, "governor_policy_reloads_total", result="failure") == 1
    assert value(f, "governor_policy_generation") == 2
    assert g.stop() == 0


def test_http_requests_by_path_and_code(daemons, tmp_path):
    cg = CgroupDir(tmp_path / "cgroup")
    policy = write_file(tmp_path / "policy.ini", policy_text())
    g = start(daemons, policy, cg)
    for _ in range(7):
        assert g.request("/counter")[0] == 200
    for _ in range(2):
        assert g.request("/counter", method="HEAD")[0] == 200
    for path in ("/nope", "/counter/", "/metrics/x"):
        assert g.request(path)[0] == 404
    assert g.request("/counter", method="POST")[0] == 405
    assert g.request("/governor", method="DELETE")[0] == 405
    assert g.request("/healthz")[0] in (200, 503)
    assert g.request("/")[0] == 200

    f = scrape(g, tmp_path)  # the first scrape: itself not yet counted
    assert value(f, "governor_http_requests_total", path="/counter", code="200") == 9
    assert value(f, "governor_http_requests_total", path="other", code="404") == 3
    assert value(f, "governor_http_requests_total", path="/counter", code="405") == 1
    assert value(f, "governor_http_requests_total", path="/governor", code="405") == 1
    assert value(f, "governor_http_requests_total", path="/", code="200") == 1
    healthz = sum(v for k, v in f["governor_http_requests_total"]["samples"].items()
                  if ("path", "/healthz") in k)
    assert healthz == 1
    assert value(f, "governor_visits_total") == 7  # GET counts; HEAD and POST do not
    assert frozenset({("path", "/metrics"), ("code", "200")}) not in \
        f["governor_http_requests_total"]["samples"]

    f = scrape(g, tmp_path)
    assert value(f, "governor_http_requests_total", path="/metrics", code="200") == 1
    assert g.stop() == 0


def test_unreadable_memory_source_is_visible(daemons, tmp_path):
    """A broken memory.current: readable 0, sample errors counted, still lint-clean."""
    cg = CgroupDir(tmp_path / "cgroup")
    policy = write_file(tmp_path / "policy.ini", policy_text())
    g = start(daemons, policy, cg)
    cg.write("memory.current", "garbage\n")
    f = wait_until(lambda: (lambda m: m if value(m, "governor_memory_readable") == 0
                            else None)(scrape(g, tmp_path)), 5, "readable 0")
    assert value(f, "governor_sample_errors_total") >= 1
    cg.set(current=200 * MIB)
    f = wait_until(lambda: (lambda m: m if value(m, "governor_memory_readable") == 1
                            else None)(scrape(g, tmp_path)), 5, "readable 1")
    assert value(f, "governor_memory_current_bytes") == 200 * MIB
    assert g.stop() == 0


def test_process_metrics_are_this_process(daemons, tmp_path):
    """process_* agree with what the kernel says about the daemon's pid."""
    cg = CgroupDir(tmp_path / "cgroup")
    policy = write_file(tmp_path / "policy.ini", policy_text())
    g = start(daemons, policy, cg)
    f = scrape(g, tmp_path)
    with open(f"/proc/{g.pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    hz, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    cpu = (int(fields[11]) + int(fields[12])) / hz
    # CPU only grows; the scrape came first
    assert 0 <= value(f, "process_cpu_seconds_total") <= cpu + 1e-9
    vsize, rss = int(fields[20]), int(fields[21]) * page
    assert value(f, "process_virtual_memory_bytes") == pytest.approx(vsize, rel=0.5)
    assert value(f, "process_resident_memory_bytes") == pytest.approx(rss, rel=0.5)
    assert value(f, "process_resident_memory_bytes") < value(f, "process_virtual_memory_bytes")
    fds = len(os.listdir(f"/proc/{g.pid}/fd"))
    assert abs(value(f, "process_open_fds") - fds) <= 2, fds  # a connection comes and goes
    soft = resource.prlimit(g.pid, resource.RLIMIT_NOFILE)[0]
    # under valgrind (make test-valgrind) the guest sees the limit less the
    # 12 descriptors valgrind keeps at the top for itself
    reserved = 12 if "valgrind" in os.path.basename(GOVERNORD) else 0
    assert value(f, "process_max_fds") == soft - reserved
    assert g.stop() == 0


def test_policy_hash_on_metrics_and_governor(daemons, tmp_path):
    """governor_policy_info and /governor carry the SHA-256 of the file's bytes,
    and follow a reload; a rejected file does not change them."""
    cg = CgroupDir(tmp_path / "cgroup")
    path = str(tmp_path / "policy.ini")
    first = policy_text()
    write_file(path, first)
    g = start(daemons, path, cg)

    def info(m):
        (labels,) = m["governor_policy_info"]["samples"]
        assert m["governor_policy_info"]["samples"][labels] == 1
        return dict(labels)

    f = scrape(g, tmp_path)
    want = hashlib.sha256(first.encode()).hexdigest()
    assert info(f) == {"sha256": want, "source": path}
    assert g.status()["policy"]["sha256"] == want

    second = policy_text(mode="observe")
    write_file(path + ".new", second)
    os.rename(path + ".new", path)
    f = wait_until(lambda: (lambda m: m if value(m, "governor_policy_generation") == 2
                            else None)(scrape(g, tmp_path)), 5, "generation 2")
    want = hashlib.sha256(second.encode()).hexdigest()
    assert info(f)["sha256"] == want
    assert g.status()["policy"]["sha256"] == want

    write_file(path + ".new", "[thresholds]\nhigh = 2\n")
    os.rename(path + ".new", path)
    f = wait_until(lambda: (lambda m: m if value(m, "governor_policy_reloads_total",
                                                 result="failure") == 1 else None)(
        scrape(g, tmp_path)), 5, "a failed reload")
    assert info(f)["sha256"] == want
    assert g.status()["policy"]["sha256"] == want
    assert g.stop() == 0


def test_embedded_policy_hash(daemons, tmp_path):
    """Without a file, the hash is that of the embedded text (policies/default.ini)."""
    cg = CgroupDir(tmp_path / "cgroup")
    g = daemons(["--cgroup", cg.path])
    st = g.status()
    if st["policy"]["source"] == "embedded":
        default = (Path(__file__).resolve().parents[2] / "policies" / "default.ini").read_bytes()
    else:  # a machine with governord installed: its default file is used
        default = Path(st["policy"]["source"]).read_bytes()
    assert st["policy"]["sha256"] == hashlib.sha256(default).hexdigest()
    f = scrape(g, tmp_path)
    assert value(f, "governor_policy_info", sha256=st["policy"]["sha256"],
                 source=st["policy"]["source"]) == 1
    assert g.stop() == 0
