"""The Redis store of /counter (--counter redis://...): Debian's real
redis-server, started by the tests on a free port (AOF, appendfsync always).

- two governord on one Redis, 8 clients split across both, 2000 requests:
  exactly 1..2000;
- kill -9 of one governord under load and a restart: no value repeats;
- Redis stopped under load: every /counter answer is a 503 (none a number),
  /readyz 503 with the reason, /healthz 200, one log line per outage;
  Redis restarted from its AOF: numbering continues above every value served;
- a Redis that answers slowly (DEBUG SLEEP) hits the command timeout: a 503
  in about the timeout, not a hung worker;
- the password from GOVERNOR_COUNTER_PASSWORD_FILE; a wrong one is a reason
  on /readyz, not a number.
"""
import re
import subprocess
import time

import pytest

from counterload import Load, counter_value
from daemon import GOVERNORD, Daemon, clean_env, scaled, settle, wait_until, write_file
from observe_helpers import metrics_text, parse_exposition, promtool_check, value
from redisproc import RedisServer


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path / "redis").start()
    yield r
    r.stop()


def redis_args(cg, url, timeout_ms=None):
    args = ["--cgroup", cg.path, "--counter", url]
    if timeout_ms:
        args += ["--counter-timeout", str(timeout_ms)]
    return args


def test_two_daemons_one_redis_exactly_one_to_2000(daemons, cgroup, redis, tmp_path):
    url = redis.url(db=2, key="test:counter")
    a = daemons(redis_args(cgroup, url))
    b = daemons(redis_args(cgroup, url))
    load = Load([a.port, b.port], clients=8, total=2000).start().join(timeout=scaled(120))
    assert not load.others, load.others[:3]
    assert sorted(load.values) == list(range(1, 2001))
    assert redis.cli("-n", 2, "GET", "test:counter").strip() == "2000"
    # /governor and /metrics show the store
    st = a.status()["counter"]
    assert st["store"] == "redis" and st["up"] is True
    assert st["target"] == f"127.0.0.1:{redis.port}/2 key=test:counter"
    assert st["errors"] == {"persist": 0, "connect": 0, "timeout": 0, "reply": 0, "io": 0,
                            "down": 0}
    text = metrics_text(a)
    promtool_check(text, tmp_path)
    m = parse_exposition(text)
    assert value(m, "governor_visits_store_info", store="redis") == 1
    assert value(m, "governor_visits_store_info", store="memory") == 0
    assert value(m, "governor_visits_store_up") == 1
    assert value(m, "governor_visits_total") == st["last_value"] > 0


def test_kill_9_of_one_daemon_under_load_repeats_nothing(daemons, cgroup, redis, tmp_path):
    url = redis.url()
    a = daemons(redis_args(cgroup, url))
    b = Daemon(redis_args(cgroup, url), log_path=tmp_path / "victim.log")
    try:
        load = Load([a.port, b.port], clients=8).start()
        wait_until(lambda: len(load.values) >= 300, timeout=scaled(30), what="300 values")
        b.proc.kill()
        b.proc.wait()
        first = len(load.values)
        wait_until(lambda: len(load.values) >= first + 200, timeout=scaled(30),
                   what="values from the survivor")
        b2 = daemons(redis_args(cgroup, url))
        load.ports[1] = b2.port  # the clients of the dead one move to its successor
        wait_until(lambda: len(load.values) >= first + 600, timeout=scaled(30),
                   what="values after the restart")
        load.stop()
    finally:
        b.close()
    assert not load.others, load.others[:3]
    assert len(load.values) == len(set(load.values)), "a value repeated"


def test_redis_down_is_503_then_numbering_continues(daemons, cgroup, redis, tmp_path):
    d = daemons(redis_args(cgroup, redis.url(), timeout_ms=300))
    load = Load([d.port], clients=4).start()
    wait_until(lambda: len(load.values) >= 200, timeout=scaled(30), what="200 values")
    port = redis.port
    redis.kill()  # a crash: what was acknowledged is in the AOF
    served_before = None
    # under load while Redis is gone: the answers are 503s, never numbers
    wait_until(lambda: len(load.others) >= 50, timeout=scaled(30), what="50 answers without Redis")
    with load.lock:
        served_before = max(load.values)
        n_values = len(load.values)
    status, headers, body = d.request("/counter")
    assert status == 503 and headers["Retry-After"] == "1"
    assert body.decode().startswith("counter store unavailable: ") and body.count(b"\n") == 1
    status, _, body = d.request("/readyz")
    assert status == 503 and b"counter store (redis" in body, body
    assert d.get("/healthz")[0] == 200
    wait_until(lambda: len(load.others) >= 100, timeout=scaled(30), what="more 503s")
    with load.lock:
        assert len(load.values) == n_values, "a number was served while Redis was down"
        assert all(s == 503 and h.get("Retry-After") == "1" for s, h, _ in load.others)
    # logged once per outage, not per request
    downs = [r for r in d.records() if r.get("event") == "counter_down"]
    assert len(downs) == 1, downs
    st = d.status()["counter"]
    assert st["up"] is False and st["error"]
    assert st["errors"]["down"] > 0

    redis.start(port=port)
    d.wait_record("counter_up", timeout=15)
    wait_until(lambda: len(load.values) >= n_values + 100, timeout=scaled(30),
               what="values after Redis came back")
    load.stop()
    after = load.values[n_values:]
    assert min(after) > served_before, "numbering went back after the restart"
    assert len(load.values) == len(set(load.values))
    assert d.get("/readyz")[0] == 200
    assert len([r for r in d.records() if r.get("event") == "counter_down"]) == 1


def test_slow_redis_hits_the_command_timeout(daemons, cgroup, redis, tmp_path):
    d = daemons(redis_args(cgroup, redis.url(), timeout_ms=300))
    assert counter_value(d) == 1
    sleeper = redis.cli_background("DEBUG", "SLEEP", "3")
    try:
        # until the sleep is in effect the requests still get numbers; every
        # request, before and during it, answers within about the timeout
        took = []

        def one():
            t0 = time.monotonic()
            status, headers, body = d.request("/counter", timeout=10)
            took.append(time.monotonic() - t0)
            return (status, body) if status == 503 else None
        status, body = wait_until(one, timeout=scaled(3), what="a 503 from the slow Redis")
        assert b"timed out" in body, body
        assert max(took) < scaled(1.5), f"a request took {max(took):.2f}s (timeout 0.3s)"
        # other endpoints are not held up meanwhile
        assert d.get("/healthz")[0] == 200
    finally:
        sleeper.wait(timeout=scaled(10))
    d.wait_record("counter_up", timeout=15)
    assert counter_value(d) >= 2
    assert d.status()["counter"]["errors"]["timeout"] >= 1


def test_password_from_a_file(daemons, cgroup, tmp_path):
    r = RedisServer(tmp_path / "redis-auth", password="s3cret pass").start()
    try:
        good = write_file(tmp_path / "password", "s3cret pass\n")
        d = daemons(redis_args(cgroup, r.url()), env={"GOVERNOR_COUNTER_PASSWORD_FILE": good})
        assert counter_value(d) == 1
        assert b"s3cret" not in d.request("/governor")[2]
        assert "s3cret" not in d.log_text()

        bad = write_file(tmp_path / "wrong", "nope\n")
        e = daemons(redis_args(cgroup, r.url()), env={"GOVERNOR_COUNTER_PASSWORD_FILE": bad})
        status, _, body = e.request("/readyz")
        assert status == 503 and b"AUTH" in body, body
        status, _, body = e.request("/counter")
        assert status == 503 and b"Counter value" not in body
    finally:
        r.stop()


def test_bad_redis_urls_exit_2(cgroup, tmp_path):
    for url, what in [("redis://nohost", "HOST:PORT"), ("redis://h:99999", "port"),
                      ("redis://h:1?db=2", "key=NAME"), ("mem:", "expected memory:")]:
        p = subprocess.run([GOVERNORD, "--listen", "127.0.0.1:0", "--counter", url],
                           env=clean_env(), capture_output=True, text=True, timeout=scaled(10))
        assert p.returncode == 2 and what in p.stderr, (url, p.stderr)


def test_reconnects_back_off(daemons, cgroup, tmp_path):
    """While Redis refuses governord (a wrong password), the reconnect thread
    tries again at 100 ms, 200 ms, 400 ms ... (up to 5 s), not in a busy loop."""
    r = RedisServer(tmp_path / "redis-backoff", password="right").start()
    try:
        bad = write_file(tmp_path / "wrong", "wrong\n")

        def connections():
            info = r.cli("INFO", "stats")
            return int(re.search(r"total_connections_received:(\d+)", info).group(1))

        before = connections()
        e = daemons(redis_args(cgroup, r.url()), env={"GOVERNOR_COUNTER_PASSWORD_FILE": bad})
        wait_until(lambda: e.get("/readyz")[0] == 503, 5, "not ready: AUTH refused")
        settle(2, "a busy loop would connect thousands of times")
        # start-up, the HTTP pool's slots and a handful of backed-off probes
        # (100+200+400+800 ms fit in 2 s): far from thousands
        made = connections() - before - 1  # our own INFO connection
        assert made < 30, f"{made} connections in about 2 s"
    finally:
        r.stop()
