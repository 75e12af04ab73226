"""The trim protocol (docs/protocol.md) against the real governord: a real
Unix socket, lines by hand (trim_helpers.Raw) and the real Python client
(clients/python/governor_client.py) in processes of their own, usage driven
through a cgroup directory in cgroupfs format.

Every message type round trip, the largest holder asked first, the Python
GovernedBuffer dropping its oldest blocks, admission answering true and
false (and waiting for the shrinks it caused), and the clients the issue
calls hostile: garbage and 1 MB lines, silence, no answers, wrong seq,
absurd figures, churn, SIGKILL mid-shrink, the 65th client.  Throughout,
the governor keeps ticking at its interval, /healthz answers and the
daemon's descriptors do not grow (trim_helpers.Health)."""
import os
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from daemon import GOVERNORD, Daemon, clean_env, scaled, settle, wait_until
from observe_helpers import metrics_text, parse_exposition, promtool_check, value
from trim_helpers import (GIB, MIB, Health, Raw, Setup, client_timeout_ms, policy,
                          python_client, short_dir)


def sample(families, fam, **labels):
    """One series of a client family (labels id and name; value() takes
    `name` itself)."""
    return families[fam]["samples"][frozenset(labels.items())]


@pytest.fixture
def setup(daemons, tmp_path):
    made = []

    def make(**kw):
        s = Setup(daemons, tmp_path, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()


def lines_until(raw, pred, timeout=5.0):
    """Reads lines until pred(seen) is true; returns every line seen."""
    seen = []
    while not pred(seen):
        msg = raw.line(timeout)
        assert msg is not None, f"closed after {seen}"
        seen.append(msg)
    return seen


def ops(seen, op):
    return [m for m in seen if m["op"] == op]


# ---- every message type ------------------------------------------------------------

def test_every_message_round_trip(setup, tmp_path):
    s = setup()
    a = Raw(s.path)
    reg = a.register("alpha", 50 * MIB, 5)
    assert reg == {"op": "registered", "id": reg["id"], "level": "normal",
                   "limit_bytes": GIB, "usage_bytes": 100 * MIB}
    assert isinstance(reg["id"], int) and reg["id"] >= 1

    # count: no answer, shown on /governor with SO_PEERCRED's pid and uid
    a.send({"op": "count", "bytes": 40 * MIB, "objects": 4})
    c = wait_until(lambda: (lambda c: c if c and c["bytes"] == 40 * MIB else None)(
        s.client(reg["id"])), what="the count on /governor")
    assert c["name"] == "alpha" and c["objects"] == 4
    assert c["pid"] == os.getpid() and c["uid"] == os.getuid()
    assert c["shrinks"] == 0 and c["released_bytes"] == 0 and c["unresponsive"] is False
    assert c["last_answer_at"] is None and c["pending_seq"] is None
    so = s.d.status()["socket"]
    assert so["listening"] is True and so["path"] == s.path and so["mode"] == "0600"
    assert so["max_clients"] == 64 and so["connections"] == 1

    # admit at normal: room enough, no shrink
    a.send({"op": "admit", "bytes": MIB})
    assert a.expect("admit") == {"op": "admit", "ok": True}

    # level changes reach the client
    s.usage(0.75)
    assert a.expect("level", skip=()) == {"op": "level", "level": "soft"}

    rtt = "governor_client_shrink_round_trip_seconds"
    f = parse_exposition(metrics_text(s.d))
    assert f[rtt]["type"] == "histogram"
    assert value(f, rtt, __suffix__="_count") == 0
    assert value(f, rtt, __suffix__="_bucket", le="+Inf") == 0

    # high: a shrink for what it holds (0.9 - target 0.6 of 1 GiB is more)
    s.usage(0.90)
    seen = lines_until(a, lambda seen: ops(seen, "shrink") and
                       {"op": "level", "level": "high"} in seen)
    (shrink,) = ops(seen, "shrink")
    assert set(shrink) == {"op", "seq", "bytes", "level", "reason"}
    assert shrink["bytes"] == 40 * MIB and shrink["level"] == "high"
    assert shrink["seq"] >= 1 and "high" in shrink["reason"]
    a.send({"op": "released", "seq": shrink["seq"], "bytes": 40 * MIB})
    c = wait_until(lambda: (lambda c: c if c["released_bytes"] == 40 * MIB else None)(
        s.client(reg["id"])), what="the release on /governor")
    assert c["bytes"] == 0 and c["shrinks"] == 1 and c["last_answer_at"]

    # /metrics: the client families, promtool-clean; the release is counted
    text = metrics_text(s.d)
    promtool_check(text, tmp_path)
    f = parse_exposition(text)
    labels = {"id": str(reg["id"]), "name": "alpha"}
    assert value(f, "governor_clients") == 1
    assert value(f, "governor_socket_listening") == 1
    assert sample(f, "governor_client_bytes", **labels) == 0
    assert sample(f, "governor_client_shrinks_total", **labels) == 1
    assert sample(f, "governor_client_released_bytes_total", **labels) == 40 * MIB
    assert sample(f, "governor_client_unresponsive", **labels) == 0
    assert value(f, "governor_released_bytes_total", level="high") >= 40 * MIB
    # the round trip of that one shrink (queued -> released) is counted once,
    # in the histogram's cumulative buckets up to +Inf
    assert value(f, rtt, __suffix__="_count") == 1
    assert value(f, rtt, __suffix__="_bucket", le="+Inf") == 1
    assert 0 < value(f, rtt, __suffix__="_sum") < 60
    buckets = sorted((float(dict(k)["le"]), v) for k, v in f[rtt]["samples"].items()
                     if ("__suffix__", "_bucket") in k)
    assert [b for b, _ in buckets][:2] == [0.00005, 0.0001] and len(buckets) == 17
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    for name, kind in (("governor_client_connections_total", "counter"),
                       ("governor_client_rejected_total", "counter"),
                       ("governor_client_protocol_errors_total", "counter"),
                       ("governor_client_timeouts_total", "counter"),
                       ("governor_client_objects", "gauge")):
        assert f[name]["type"] == kind, name

    # back to normal; the live page's data has the client too
    s.usage(0.30)
    assert a.expect("level", skip=("level",)) in ({"op": "level", "level": "normal"},
                                                  {"op": "level", "level": "soft"})
    code, body = s.d.get("/governor/history")
    assert code == 200 and '"clients":[{' in body and '"name":"alpha"' in body
    a.close()
    wait_until(lambda: s.clients() == [], what="the client gone from /governor")


def test_largest_holder_is_asked_first(setup):
    s = setup(target=0.84, soft=0.845, high=0.85, critical=0.97)
    big, small = Raw(s.path), Raw(s.path)
    big.register("big", 30 * MIB, 3)
    small.register("small", 10 * MIB, 1)
    s.usage(0.855)  # 0.855 - 0.84 of 1 GiB: 15.36 MiB wanted, the big one holds 30
    shrink = big.expect("shrink")
    assert 15 * MIB < shrink["bytes"] < 16 * MIB
    big.send({"op": "released", "seq": shrink["seq"], "bytes": shrink["bytes"]})
    settle(0.5, "the small client must not be asked")
    small.s.setblocking(False)
    try:
        data = small.s.recv(65536)
    except BlockingIOError:
        data = b""
    assert b'"shrink"' not in data, data
    assert [c["shrinks"] for c in s.clients() if c["name"] == "small"] == [0]


# ---- the Python client ---------------------------------------------------------------

BUFFER_SCRIPT = r"""
import json, os, sys
from governor_client import GovernedBuffer
buf = GovernedBuffer("pybuf")
for i in range(10):
    assert buf.append(bytes([i]) * (4 << 20)), "admission refused"
print(json.dumps({"ready": True, "pid": os.getpid(), "bytes": buf.bytes,
                  "level": buf.client.level}), flush=True)
for line in sys.stdin:
    print(json.dumps({"blocks": [b[0] for b in buf.blocks()], "bytes": buf.bytes,
                      "dropped": buf.dropped_bytes, "level": buf.client.level,
                      "shrinks": buf.client.shrinks}), flush=True)
buf.close()
"""


def test_governed_buffer_drops_its_oldest_blocks(setup):
    import json
    s = setup(target=0.84, soft=0.845, high=0.85, critical=0.97)
    p = python_client(BUFFER_SCRIPT, env={"GOVERNOR_SOCKET": s.path})
    try:
        ready = json.loads(p.stdout.readline())
        assert ready == {"ready": True, "pid": p.pid, "bytes": 40 * MIB, "level": "normal"}
        c = wait_until(lambda: (lambda cs: cs[0] if cs and cs[0]["objects"] == 10 else None)(
            s.clients()), what="the buffer's count")
        assert c["name"] == "pybuf" and c["pid"] == p.pid and c["bytes"] == 40 * MIB

        s.usage(0.855)  # about 15.4 MiB wanted: four 4 MiB blocks, the oldest
        c = wait_until(lambda: (lambda c: c if c["released_bytes"] else None)(s.clients()[0]),
                       what="the buffer's release")
        assert c["released_bytes"] == 16 * MIB and c["shrinks"] == 1
        wait_until(lambda: s.clients()[0]["objects"] == 6, what="the count after the shrink")
        assert s.clients()[0]["bytes"] == 24 * MIB
        p.stdin.write("dump\n")
        p.stdin.flush()
        state = json.loads(p.stdout.readline())
        assert state == {"blocks": [4, 5, 6, 7, 8, 9], "bytes": 24 * MIB,
                         "dropped": 16 * MIB, "level": "high", "shrinks": 1}
        s.usage(0.30)
        p.stdin.close()
        assert p.wait(timeout=scaled(10)) == 0
        wait_until(lambda: s.clients() == [], what="the buffer gone")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


ADD_SCRIPT = r"""
import json, sys
from governor_client import GovernedBuffer
buf = GovernedBuffer("adder")
made = []   # (block, blocks dropped so far, blocks held) when make() ran

def maker(i, size):
    def make():
        made.append([i, buf.dropped_blocks, len(buf)])
        return bytes([i % 256]) * size
    return make

for line in sys.stdin:
    i, size = map(int, line.split())
    ok = buf.add(size, maker(i, size))
    print(json.dumps({"ok": ok, "made": made, "blocks": [b[0] for b in buf.blocks()],
                      "bytes": buf.bytes, "refused": buf.refused,
                      "dropped": buf.dropped_blocks}), flush=True)
buf.close()
"""


def test_governed_buffer_add_asks_before_it_makes(setup):
    """GovernedBuffer.add(size, make): admission for size first, make()
    only once admitted -- after the shrinks the admission caused, never
    when refused."""
    import json
    s = setup()
    p = python_client(ADD_SCRIPT, env={"GOVERNOR_SOCKET": s.path})

    def add(i, size):
        p.stdin.write(f"{i} {size}\n")
        p.stdin.flush()
        line = p.stdout.readline()
        assert line, "the client died"
        return json.loads(line)

    try:
        # normal level, room enough: admitted, made, counted
        for i in range(3):
            r = add(i, 4 * MIB)
            assert r["ok"] is True and r["made"][-1] == [i, 0, i]
        assert r["blocks"] == [0, 1, 2] and r["bytes"] == 12 * MIB
        c = wait_until(lambda: (lambda cs: cs[0] if cs and cs[0]["objects"] == 3 else None)(
            s.clients()), what="the count after three adds")
        assert c["name"] == "adder" and c["bytes"] == 12 * MIB

        # soft: no growth, a new block must replace old ones -- the governor
        # shrinks this very buffer before it answers, and make() runs after
        # that: the oldest block was already gone when it ran
        s.usage(0.75)
        r = add(3, 4 * MIB)
        assert r["ok"] is True
        assert r["made"][-1] == [3, 1, 2], r
        assert r["blocks"] == [1, 2, 3] and r["bytes"] == 12 * MIB and r["dropped"] == 1
        c = wait_until(lambda: (lambda c: c if c["released_bytes"] == 4 * MIB else None)(
            s.clients()[0]), what="the release on /governor")
        assert c["shrinks"] == 1

        # refused (larger than high of the limit; more than the buffer can
        # make room for): make() is never called, nothing is dropped
        made_before = len(r["made"])
        r = add(4, 2 * GIB)
        assert r["ok"] is False and r["refused"] == 1 and len(r["made"]) == made_before
        r = add(5, 100 * MIB)
        assert r["ok"] is False and r["refused"] == 2 and len(r["made"]) == made_before
        assert r["blocks"] == [1, 2, 3] and r["dropped"] == 1
        assert s.clients()[0]["shrinks"] == 1

        s.usage(0.30)
        p.stdin.close()
        assert p.wait(timeout=scaled(10)) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- admission -------------------------------------------------------------------------

def test_admit_shrinks_others_waits_for_them_and_refuses(setup):
    timeout_ms = client_timeout_ms(400)
    s = setup(timeout_ms=timeout_ms)
    asker, holder = Raw(s.path), Raw(s.path)
    asker.register("asker", 0, 0)
    holder.register("holder", 200 * MIB, 2)
    s.usage(0.75)  # soft: growth only by replacing what clients hold
    asker.expect("level", skip=())
    holder.expect("level", skip=())

    # the holder answers: the asker is admitted after it was shrunk
    asker.send({"op": "admit", "bytes": 100 * MIB})
    shrink = holder.expect("shrink")
    assert shrink["bytes"] == 100 * MIB and "admission" in shrink["reason"]
    holder.send({"op": "released", "seq": shrink["seq"], "bytes": 100 * MIB})
    assert asker.expect("admit") == {"op": "admit", "ok": True}

    # the holder stays silent: the answer comes once client_timeout_ms has passed
    t0 = time.monotonic()
    asker.send({"op": "admit", "bytes": 50 * MIB})
    unanswered = holder.expect("shrink")
    assert unanswered["bytes"] == 50 * MIB
    assert asker.expect("admit", timeout=30) == {"op": "admit", "ok": True}
    assert time.monotonic() - t0 >= 0.9 * timeout_ms / 1000
    wait_until(lambda: [c for c in s.clients() if c["name"] == "holder"][0]["unresponsive"],
               what="the silent holder marked unresponsive")

    # more than high of the limit: refused, at once
    asker.send({"op": "admit", "bytes": 2 * GIB})
    assert asker.expect("admit") == {"op": "admit", "ok": False}
    # the unresponsive holder is not counted: nothing to evict, refused
    asker.send({"op": "admit", "bytes": 10 * MIB})
    assert asker.expect("admit") == {"op": "admit", "ok": False}

    # a second admit while the first waits (for the silent holder, who
    # answered late and so is asked again) is an error
    holder.send({"op": "released", "seq": unanswered["seq"], "bytes": 50 * MIB})
    wait_until(lambda: not [c for c in s.clients() if c["name"] == "holder"][0]["unresponsive"],
               what="the holder responsive again")
    asker.sendraw(b'{"op":"admit","bytes":10485760}\n{"op":"admit","bytes":10485760}\n')
    assert asker.closed(30) and "previous admit" in asker.error


# ---- hostile clients ---------------------------------------------------------------------

BAD_LINES = [
    (b"garbage\n", "not valid JSON"),
    (b"\xff\xfe{}\n", "not valid JSON"),
    (b'{"op":"register","name":"\xc3\x28","bytes":1,"objects":1}\n', "not valid JSON"),
    (b"[]\n", "not a JSON object"),
    (b'{"op":"explode"}\n', "op: unknown"),
    (b'{"op":"admit","bytes":1e300}\n', "bytes: must be a whole number"),
    (b'{"op":"admit","bytes":99999999999999999999999}\n', "not valid JSON"),
    (b'{"op":"count","bytes":1,"objects":1}\n', "count: register first"),
    (b'{"op":"register","name":"x","bytes":1,"objects":1,"z":1}\n', "unexpected field"),
    (b'{"op":"register","name":"a\x00b","bytes":1,"objects":1}\n', "NUL byte"),
]
AFTER_REGISTER = [
    (b'{"op":"count","bytes":"1","objects":1}\n', "bytes: must be a whole number"),
    (b'{"op":"count","bytes":-5,"objects":1}\n', "bytes: must be from 0"),
    (b'{"op":"register","name":"again","bytes":1,"objects":1}\n', "already registered"),
    (b'{"op":"released","seq":999999,"bytes":1}\n', "was never sent"),
    (b'{"op":"released","seq":1,"bytes":-1}\n', "bytes: must be from 0"),
]


def test_bad_lines_close_only_their_connection(setup):
    s = setup()
    good = Raw(s.path)
    good_id = good.register("good", 10 * MIB, 1)["id"]
    health = Health(s.d)
    for data, why in BAD_LINES + [(d, w) for d, w in AFTER_REGISTER]:
        r = Raw(s.path)
        if (data, why) in AFTER_REGISTER:
            r.register("victim")
        r.sendraw(data)
        assert r.closed(), data
        assert r.error and why in r.error, (data, r.error, why)
        r.close()

    # a 1 MB line: refused after its first 4096 bytes
    r = Raw(s.path)
    try:
        r.sendraw(b"x" * (1 << 20) + b"\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed while we were still writing
    assert r.closed() and "line too long" in (r.error or "line too long")
    r.close()

    # exactly 4096 bytes is a line
    r = Raw(s.path)
    line = b'{"op":"register","name":"long","bytes":1,"objects":1}'
    r.sendraw(line + b" " * (4096 - len(line)) + b"\n")
    assert r.expect("registered")["op"] == "registered"
    r.close()

    # the good client was never disturbed
    good.send({"op": "admit", "bytes": MIB})
    assert good.expect("admit")["ok"] is True
    assert [c["id"] for c in s.clients()] == [good_id]
    st = s.d.status()["socket"]
    assert st["protocol_errors_total"] >= len(BAD_LINES) + len(AFTER_REGISTER) + 1
    good.close()
    health.check("after bad lines")


def test_silent_and_unresponsive_clients(setup):
    timeout_ms = client_timeout_ms(300)
    s = setup(timeout_ms=timeout_ms, cooldown_ms=int(timeout_ms * 2))
    health = Health(s.d)

    # connects and never speaks: closed once the register time (5 timeouts) is up
    silent = Raw(s.path)
    t0 = time.monotonic()
    assert silent.closed(30) and "register" in silent.error
    assert time.monotonic() - t0 >= 0.9 * 5 * timeout_ms / 1000
    silent.close()

    mute, good = Raw(s.path), Raw(s.path)
    mute_id = mute.register("mute", 100 * MIB, 1)["id"]
    good.register("good", 50 * MIB, 1)
    huge = Raw(s.path)
    huge.register("huge", 4 * GIB, 1)  # more than the limit: taken as said
    wait_until(lambda: any(c["bytes"] == 4 * GIB for c in s.clients()), what="4 GiB shown")
    huge.close()
    wait_until(lambda: len(s.clients()) == 2, what="huge gone")

    s.usage(0.90)  # 300 MiB wanted: both asked
    mute_shrink = mute.expect("shrink")
    first = good.expect("shrink")
    assert mute_shrink["bytes"] == 100 * MIB and first["bytes"] == 50 * MIB
    good.send({"op": "released", "seq": first["seq"], "bytes": 50 * MIB})
    good.send({"op": "count", "bytes": 50 * MIB, "objects": 1})
    wait_until(lambda: [c for c in s.clients() if c["id"] == mute_id][0]["unresponsive"],
               what="mute marked unresponsive")

    # the governor goes on with the good one; the mute one is not asked again
    second = good.expect("shrink", timeout=30)
    # an absurd release counts as what the client held
    good.send({"op": "released", "seq": second["seq"], "bytes": 9007199254740991})
    c = wait_until(lambda: (lambda c: c if c["released_bytes"] == 100 * MIB else None)(
        [c for c in s.clients() if c["name"] == "good"][0]), what="clamped release")
    assert c["bytes"] == 0
    m = [c for c in s.clients() if c["id"] == mute_id][0]
    assert m["shrinks"] == 1 and m["unresponsive"] is True
    f = parse_exposition(metrics_text(s.d))
    assert sample(f, "governor_client_unresponsive", id=str(mute_id), name="mute") == 1
    assert value(f, "governor_client_timeouts_total") >= 1

    # a late answer: responsive again
    mute.send({"op": "released", "seq": mute_shrink["seq"], "bytes": 100 * MIB})
    wait_until(lambda: not [c for c in s.clients() if c["id"] == mute_id][0]["unresponsive"],
               what="mute responsive after its late answer")
    s.usage(0.30)
    mute.close()
    good.close()
    health.check("after silent and unresponsive clients")


def test_connect_churn(setup):
    s = setup()
    keeper = Raw(s.path)
    keeper.register("keeper", MIB, 1)
    health = Health(s.d)
    n, t0 = 0, time.monotonic()
    while n < 400:  # two seconds' worth (more on a loaded machine)
        # 200 a second: paced, not a flood the test machine cannot make
        due = t0 + n / 200
        if time.monotonic() < due:
            time.sleep(due - time.monotonic())
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(s.path)
        if n % 2:
            c.sendall(b'{"op":"register","name":"churn","bytes":1,"objects":1}\n'
                      b'{"op":"count","bytes":2,"objects":1}\n')
        c.close()
        n += 1
    assert time.monotonic() - t0 < scaled(20)
    wait_until(lambda: s.d.status()["socket"]["connections"] == 1, 10,
               "only the keeper connected")
    keeper.send({"op": "admit", "bytes": MIB})
    assert keeper.expect("admit")["ok"] is True
    assert s.d.status()["socket"]["connections_total"] >= n
    health.check("after 200 connects a second")


KILL_SCRIPT = r"""
import sys, time
from governor_client import GovernorClient
def on_shrink(nbytes, level, reason):
    print("shrinking", flush=True)
    time.sleep(600)
c = GovernorClient("victim", on_shrink=on_shrink)
c.connect(bytes=64 << 20, objects=1)
print("ready", flush=True)
time.sleep(600)
"""


def test_client_killed_mid_shrink(setup):
    s = setup()
    other = Raw(s.path)
    other.register("other", MIB, 1)
    health = Health(s.d)
    p = python_client(KILL_SCRIPT, env={"GOVERNOR_SOCKET": s.path})
    try:
        assert p.stdout.readline().strip() == "ready"
        s.usage(0.90)
        assert p.stdout.readline().strip() == "shrinking"
        assert [c for c in s.clients() if c["name"] == "victim"][0]["pending_seq"]
        p.send_signal(signal.SIGKILL)
        p.wait()
        wait_until(lambda: [c["name"] for c in s.clients()] == ["other"],
                   what="the killed client gone")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    s.usage(0.30)
    other.send({"op": "admit", "bytes": MIB})
    assert other.expect("admit", skip=("level", "shrink"))["ok"] is True
    other.close()
    health.check("after a client was killed mid-shrink")


def test_the_65th_client_is_turned_away(setup):
    s = setup()
    health = Health(s.d)
    conns = []
    for i in range(64):
        r = Raw(s.path)
        r.register(f"c{i}", i, 1)
        conns.append(r)
    extra = Raw(s.path)
    assert extra.closed() and "too many clients" in extra.error
    extra.close()
    st = s.d.status()
    assert len(st["clients"]) == 64 and st["socket"]["rejected_total"] == 1
    assert value(parse_exposition(metrics_text(s.d)), "governor_clients") == 64
    conns.pop().close()
    wait_until(lambda: s.d.status()["socket"]["connections"] == 63, what="one slot free")
    again = Raw(s.path)
    assert again.register("again")["op"] == "registered"
    conns.append(again)
    for r in conns:
        r.close()
    wait_until(lambda: s.clients() == [], what="all gone")
    health.check("after 65 clients")


# ---- the socket's path, mode and group -----------------------------------------------------

def run_exit(args, timeout=20):
    r = subprocess.run([GOVERNORD, *args], env=clean_env(), capture_output=True, text=True,
                       timeout=scaled(timeout))
    return r.returncode, r.stderr


def test_socket_path_errors_exit_2(tmp_path, cgroup):
    d = short_dir()
    try:
        pol = policy(tmp_path)
        base = ["--cgroup", cgroup.path, "--policy", pol, "--listen", "127.0.0.1:0"]
        f = os.path.join(d, "file")
        open(f, "w").close()
        rc, err = run_exit(base + ["--socket", f])
        assert rc == 2 and "exists and is not a socket" in err, err
        os.mkdir(os.path.join(d, "dir"))
        rc, err = run_exit(base + ["--socket", os.path.join(d, "dir")])
        assert rc == 2 and "is a directory" in err, err
        rc, err = run_exit(base + ["--socket", os.path.join(d, "x" * 120)])
        assert rc == 2 and "too long" in err, err
        rc, err = run_exit(base + ["--socket", os.path.join(d, "s"), "--socket-group",
                                   "no-such-group-xyz"])
        assert rc == 2 and "unknown group" in err, err
        # a read-only directory (a read-only mount: root ignores mode bits)
        ro = os.path.join(d, "ro")
        os.mkdir(ro)
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', ro,
                            GOVERNORD, *base, "--socket", os.path.join(ro, "g.sock")],
                           env=clean_env(), capture_output=True, text=True,
                           timeout=scaled(20))
        assert r.returncode == 2 and "Read-only file system" in r.stderr, r.stderr
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def test_socket_stale_taken_mode_group_none_and_removed(daemons, tmp_path, cgroup):
    d = short_dir()
    try:
        pol = policy(tmp_path)
        path = os.path.join(d, "sub", "g.sock")  # the directory is made
        os.mkdir(os.path.join(d, "sub"))
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)  # a socket file nobody listens on, as after a crash
        stale.close()
        g = daemons(["--cgroup", cgroup.path, "--policy", pol, "--socket", path])
        assert g.wait_record("socket_stale")["path"] == path
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        Raw(path).register("probe")
        # a second governord on the same socket: exit 2
        rc, err = run_exit(["--cgroup", cgroup.path, "--policy", pol, "--listen",
                            "127.0.0.1:0", "--socket", path])
        assert rc == 2 and "another process listens" in err, err
        assert g.stop() == 0
        assert not os.path.exists(path), "the socket file is removed at a clean exit"

        # --socket-group: 0660 and the group; a missing directory is made
        path2 = os.path.join(d, "new", "g.sock")
        g = daemons(["--cgroup", cgroup.path, "--policy", pol, "--socket", path2,
                     "--socket-group", "12345"])
        st = os.lstat(path2)
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 12345
        assert stat.S_IMODE(os.stat(os.path.dirname(path2)).st_mode) == 0o755
        so = g.status()["socket"]
        assert so["mode"] == "0660" and so["gid"] == 12345
        assert g.stop() == 0

        # none: no socket, and /governor and /metrics say so
        g = daemons(["--cgroup", cgroup.path, "--policy", pol, "--socket", "none"])
        so = g.status()["socket"]
        assert so["listening"] is False and so["path"] is None and "disabled" in so["reason"]
        assert value(parse_exposition(metrics_text(g)), "governor_socket_listening") == 0
        promtool_check(metrics_text(g), tmp_path)
        assert g.stop() == 0
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


CHILD_SCRIPT = r"""
import os, sys, time
from governor_client import GovernedBuffer
buf = GovernedBuffer("child")
assert buf.append(b"x" * 1024)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {os.environ['GOVERNOR_SOCKET']}\n")
time.sleep(600)
"""


def in_private_run(ro):
    """A wrapper that gives governord a fresh /run of its own (read-only
    when ro) in a private mount namespace: the default socket's directory
    is then ours alone."""
    return ["unshare", "-m", "sh", "-c",
            f"mount -t tmpfs {'-o ro ' if ro else ''}tmpfs /run && exec \"$@\"", "sh"]


def test_default_socket_and_a_child(tmp_path, cgroup):
    import sys
    from trim_helpers import CLIENTS_DIR
    out = tmp_path / "child.txt"
    d = Daemon(["--cgroup", cgroup.path, "--policy", policy(tmp_path), "--stop-timeout",
                "100ms", "--", sys.executable, "-c", CHILD_SCRIPT, str(out)],
               log_path=tmp_path / "d.log", wrapper=in_private_run(False),
               env={"GOVERNOR_SOCKET": None, "PYTHONPATH": CLIENTS_DIR})
    try:
        wait_until(lambda: out.exists() and out.read_text().endswith("\n"), 20,
                   "the child registered")
        pid, path = out.read_text().split()
        assert path == "/run/governor/governor.sock"
        st = d.status()
        assert st["socket"]["path"] == path
        (c,) = st["clients"]
        assert c["name"] == "child" and c["pid"] == int(pid) and c["bytes"] == 1024
    finally:
        d.stop()


def test_default_socket_unavailable_runs_without(tmp_path, cgroup):
    d = Daemon(["--cgroup", cgroup.path, "--policy", policy(tmp_path)],
               log_path=tmp_path / "d.log", wrapper=in_private_run(True),
               env={"GOVERNOR_SOCKET": None})
    try:
        rec = d.wait_record("socket_unavailable")
        assert rec["path"] == "/run/governor/governor.sock"
        so = d.status()["socket"]
        assert so["listening"] is False and "default socket unavailable" in so["reason"]
        assert "Read-only file system" in so["reason"]
        assert d.get("/healthz")[0] == 200
    finally:
        assert d.stop() == 0
