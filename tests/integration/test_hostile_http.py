"""Hostile HTTP against the real daemon over real sockets.

Each test throws at governord what a broken or malicious client sends --
over-long URLs and headers, thousands of headers, invalid methods and
versions, binary garbage, bodies on GET, ambiguous body framing, pipelining,
half-open, slowloris and idle connections, more connections than the limit
-- and checks the answer (4xx/5xx where due), that /healthz and /counter
keep answering, and that no file descriptor leaks (/proc/<pid>/fd before and
after).  The `daemons` fixture also checks every daemon exits 0 on SIGTERM.
"""
import os
import random
import resource
import socket
import threading
import time

from conftest import complete_responses
from daemon import scaled, wait_until, write_file


def connect(d, timeout=5):
    return socket.create_connection(("127.0.0.1", d.port), timeout=scaled(timeout))


def exchange(d, data, shut=True, timeout=5, responses=1):
    """Sends raw bytes (then half-closes) while reading, and returns what the
    server sends back until it closes the connection or `responses` complete
    answers arrived.  Reading while sending matters: a server that rejects a
    request early closes with unread data, and the kernel then resets the
    connection."""
    s = connect(d, timeout)

    def send():
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading it all

    sender = threading.Thread(target=send)
    sender.start()
    out = b""
    try:
        while complete_responses(out) < responses:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        sender.join()
        s.close()
    return out


def status_of(raw):
    line = raw.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), raw[:200]
    return int(line.split()[1])


def statuses(raw):
    """Status codes of every response in a byte stream (pipelining)."""
    return [int(part[:3]) for part in raw.split(b"HTTP/1.1 ")[1:]
            if part[:3].isdigit()]


def counter_bodies(raw):
    return [int(x.split(b"\r\n")[0].split(b"HTTP/")[0])
            for x in raw.split(b"Counter value: ")[1:]]


def still_serving(d):
    assert d.get("/healthz") == (200, "ok\n")
    code, body = d.get("/counter")
    assert code == 200 and body.startswith("Counter value: ")
    return int(body.split()[-1])


def settle_fds(d, before, timeout=5):
    """Waits until the daemon holds no descriptor that it did not hold in
    `before` (compared with their targets: a new socket reusing a number
    is still new; a connection of `before` may have closed meanwhile)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        extra = dict(set(d.fds().items()) - set(before.items()))
        if not extra:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"descriptors leaked: {extra}")
        time.sleep(0.05)


REQ = b"GET /counter HTTP/1.1\r\nHost: x\r\n"


def serve(daemons, cgroup, tmp_path, *args, **kw):
    """A daemon without the collector: these tests are about HTTP, and a
    buffer growing against a cgroup directory that never fills up would only
    eat memory (under valgrind for minutes)."""
    policy = write_file(tmp_path / "http.ini", "[collector]\nenabled = false\n")
    return daemons(["--cgroup", cgroup.path, "--policy", policy, *args], **kw)


def test_malformed_requests_get_4xx_5xx_and_nothing_leaks(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    still_serving(d)
    before = d.fds()
    cases = [
        # (request, expected status)
        (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (REQ + b"X-Long: " + b"b" * 50000 + b"\r\n\r\n", 431),
        (REQ + b"".join(b"X-H%d: y\r\n" % i for i in range(5000)) + b"\r\n", 431),
        (b"FOO /counter HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"get /counter HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"G\x00T /counter HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"DELETE /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /counter HTTP/9.9\r\nHost: x\r\n\r\n", 505),
        (b"GET /counter HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /counter HTTP/1\r\nHost: x\r\n\r\n", 400),
        (b"GET /counter FOO/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /counter\r\n\r\n", 400),
        (REQ + b"no colon in this header\r\n\r\n", 400),
        (REQ + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
        (REQ + b"Content-Length: -5\r\n\r\n", 400),
        (REQ + b"Content-Length: 99999999999999999999999\r\n\r\n", 413),
        # ambiguous framing (request smuggling behind a proxy): refused, closed
        (REQ + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
        (REQ + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ]
    for request, expected in cases:
        raw = exchange(d, request, shut=False)
        assert status_of(raw) == expected, (request[:80], raw[:300])
    # binary garbage, with and without an end of headers
    rng = random.Random(6)
    for n in (1, 100, 4096, 70000):
        garbage = bytes(rng.randrange(256) for _ in range(n))
        raw = exchange(d, garbage + b"\r\n\r\n", shut=False)
        assert raw == b"" or 400 <= status_of(raw) < 600, raw[:200]
    still_serving(d)
    settle_fds(d, before)


def test_bodies_on_get_are_drained(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path)
    first = still_serving(d)
    raw = exchange(d, REQ + b"Content-Length: 1048576\r\n\r\n" + b"x" * 1048576)
    assert status_of(raw) == 200 and counter_bodies(raw) == [first + 1]
    chunked = b"".join(b"%x\r\n%s\r\n" % (n, b"y" * n) for n in (1, 4000, 70000)) + b"0\r\n\r\n"
    raw = exchange(d, REQ + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    assert status_of(raw) == 200 and counter_bodies(raw) == [first + 2]
    # Expect: 100-continue is honoured
    raw = exchange(d, REQ + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"), raw[:200]


def test_pipelining_answers_in_order(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path)
    first = still_serving(d)
    paths = ["/counter", "/healthz", "/nope", "/counter", "/readyz"] * 40
    batch = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in paths)
    raw = exchange(d, batch, responses=len(paths))
    expected = [404 if p == "/nope" else 200 for p in paths]
    assert statuses(raw) == expected
    assert counter_bodies(raw) == list(range(first + 1, first + 1 + paths.count("/counter")))


def test_half_open_and_abandoned_connections(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    still_serving(d)
    before = d.fds()
    # half-open: the request, then FIN; the answer still comes.  libmicrohttpd
    # 0.9.75 (edge-triggered epoll) notices a FIN that came with the request
    # only at the idle timeout (10 s), so the slot is held until then.
    raw = exchange(d, REQ + b"\r\n", shut=True)
    assert status_of(raw) == 200
    # abandoned in every state: mid-request line, mid-headers, mid-body,
    # before reading a large answer, reset (RST) after sending
    partials = [b"GE", REQ, REQ + b"Content-Length: 100\r\n\r\nabc", REQ + b"\r\n" * 1]
    for data in partials:
        s = connect(d)
        s.sendall(data)
        s.close()
    for _ in range(20):
        s = connect(d)
        s.sendall(b"GET /governor HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST: the daemon's sends fail with EPIPE/ECONNRESET
    still_serving(d)
    settle_fds(d, before, timeout=15)


def test_slowloris_does_not_starve_others(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    before = d.fds()
    stop = threading.Event()
    socks = [connect(d) for _ in range(100)]

    def drip():
        # one byte per connection every 0.2 s: a request that never ends
        header = REQ + b"X-Slow: " + b"z" * 100000
        i = 0
        while not stop.is_set() and i < len(header):
            for s in socks:
                try:
                    s.send(header[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(0.2)

    t = threading.Thread(target=drip)
    t.start()
    try:
        deadline = time.monotonic() + scaled(3)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            still_serving(d)
            assert time.monotonic() - t0 < scaled(2)
            time.sleep(0.1)
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()
    settle_fds(d, before)


def test_idle_connections_are_closed_after_the_timeout(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path)
    before = d.fds()
    idle = [connect(d) for _ in range(20)]
    for s in idle[:10]:
        s.sendall(b"GET /cou")  # and nothing more
    wait_until(lambda: len(d.fds()) >= len(before) + 20, 5, "20 accepted connections")
    # the idle timeout is 10 s: then the daemon closes them all, silently
    for s in idle:
        s.settimeout(scaled(20))
        assert s.recv(100) == b""
    settle_fds(d, before, timeout=5)
    for s in idle:
        s.close()
    still_serving(d)


def test_more_connections_than_the_limit(cgroup, daemons, tmp_path):
    # RLIMIT_NOFILE 160: the daemon keeps 64 descriptors for itself and allows
    # 96 connections; 300 clients connect and stay idle.
    def low_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    d = serve(daemons, cgroup, tmp_path, "--threads", "2", preexec_fn=low_nofile)
    still_serving(d)
    before = d.fds()
    ticks = d.status()["wakeups"]["timer"]
    flood = []
    for _ in range(300):
        try:
            flood.append(connect(d, timeout=2))
        except OSError:
            break  # the kernel's backlog is full: fine, that is the limit
    assert len(flood) > 96
    time.sleep(0.5)
    assert d.proc.poll() is None
    assert len(d.fds()) <= 160
    for s in flood:
        s.close()
    # the slots come back: /healthz and /counter answer again
    deadline = time.monotonic() + scaled(15)
    while True:
        try:
            still_serving(d)
            break
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # the governor kept reading its files while the sockets were used up
    st = d.status()
    assert st["memory"]["readable"] is True, st["memory"]
    assert st["wakeups"]["timer"] > ticks
    assert not [r for r in d.records() if r["event"] == "sample_error"]
    settle_fds(d, before, timeout=15)


def test_many_short_connections_leak_nothing(cgroup, daemons, tmp_path):
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    still_serving(d)
    before = d.fds()
    for i in range(300):
        s = connect(d)
        s.sendall(b"GET /counter HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  if i % 2 else b"GET /healthz HTTP/1.0\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.")
        s.close()
    settle_fds(d, before)
    assert os.path.exists(f"/proc/{d.proc.pid}")


def answer_then_close(d, data, timeout=5):
    """Sends raw bytes (without half-closing) and reads until the server
    closes the connection; fails if it does not close within the (scaled)
    timeout.  Returns everything the server sent."""
    s = connect(d, timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # answered and closed before reading it all
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError(f"connection still open after {scaled(timeout)} s; "
                                     f"got {out[:300]!r}")
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


SMUGGLED = b"GET /counter HTTP/1.1\r\nHost: x\r\n\r\n"


def test_framing_rfc9112_rejects_is_rejected_and_closed(cgroup, daemons, tmp_path):
    """What RFC 9112 says to reject gets 400 or 501 with "Connection: close",
    the connection is closed, and nothing behind it runs as a request: the
    /counter value moves only by the probes of still_serving()."""
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    first = still_serving(d)
    before = d.fds()
    cases = [
        # white space before the colon: not a Content-Length for libmicrohttpd,
        # so the "body" used to run as a second request
        (REQ + b"Content-Length : %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED, 400),
        (REQ + b"Content-Length\t: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED, 400),
        (REQ + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
        # transfer codings other than chunked (gzip used to hang 10 s)
        (REQ + b"Transfer-Encoding: gzip\r\n\r\n" + SMUGGLED, 501),
        (REQ + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 501),
        (REQ + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + SMUGGLED, 501),
        (REQ + b"Transfer-Encoding: identity\r\n\r\n" + SMUGGLED, 501),
        # NULs: in the path, in header values (the last one or an earlier one)
        (b"GET /counter\x00/x HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, 400),
        (b"GET /counter\x00 HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, 400),
        (b"GET /counter%00/x HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, 400),
        (REQ + b"X-A: b\x00c\r\n\r\n" + SMUGGLED, 400),
        (REQ + b"X-A: b\x00\x00c\r\nX-B: d\r\n\r\n" + SMUGGLED, 400),
        (REQ + b"X-A: b\x00\r\nX-B: d\r\n\r\n" + SMUGGLED, 400),
        (b"GET /counter HTTP/1.1\r\nX-A: \x00" + b"\r\nHost: x\r\n\r\n" + SMUGGLED, 400),
        # other control characters, space in the target
        (REQ + b"X-A: b\rc\r\n\r\n" + SMUGGLED, 400),
        (b"GET /counter /x HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, 400),
        (b"GET /coun\x01ter HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, 400),
        # Host: missing (HTTP/1.1) or more than one
        (b"GET /counter HTTP/1.1\r\n\r\n" + SMUGGLED, 400),
        (REQ + b"Host: y\r\n\r\n" + SMUGGLED, 400),
        (b"GET /counter HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n" + SMUGGLED, 400),
        # line folding (obs-fold)
        (REQ + b"X-A: b\r\n c\r\n\r\n" + SMUGGLED, 400),
    ]
    for request, expected in cases:
        t0 = time.monotonic()
        raw = answer_then_close(d, request)
        assert raw, request
        assert status_of(raw) == expected, (request[:120], raw[:300])
        head = raw.split(b"\r\n\r\n", 1)[0].lower()
        assert b"\r\nconnection: close" in head, (request[:120], raw[:300])
        assert statuses(raw) == [expected], (request[:120], raw[:600])
        assert b"Counter value" not in raw, (request[:120], raw[:300])
        # answered at once, not after the 10 s idle timeout
        assert time.monotonic() - t0 < scaled(3), (request[:120], time.monotonic() - t0)
    # no rejected request and no smuggled one used a value
    assert still_serving(d) == first + 1
    settle_fds(d, before)


def test_framing_rfc9112_still_accepts_valid_requests(cgroup, daemons, tmp_path):
    """The checks refuse nothing the RFC allows: bare LF line ends, HTTP/1.0
    without Host, an empty Host, percent-encoding, a query, chunked bodies,
    HTAB in a value, pipelining after all of them."""
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    first = still_serving(d)
    ok = [
        b"GET /counter HTTP/1.1\nHost: x\n\n",
        b"GET /counter HTTP/1.1\r\nHost: x\nX-A: b\r\n\n",
        b"GET /counter HTTP/1.0\r\n\r\n",
        b"GET /counter HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET /coun%74er HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /counter?a=b&c=%41 HTTP/1.1\r\nHost: x\r\n\r\n",
        REQ + b"X-A: b\tc\r\nX-B:  d \r\n\r\n",
        REQ + b"transfer-encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        REQ + b"Content-Length: 3\r\n\r\nabc",
    ]
    batch = b"".join(r if r.endswith(b"\n\n") or b"HTTP/1.0" not in r else
                     r.replace(b"HTTP/1.0\r\n\r\n", b"HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                     for r in ok)
    raw = exchange(d, batch, responses=len(ok))
    assert statuses(raw) == [200] * len(ok), raw[:2000]
    assert counter_bodies(raw) == list(range(first + 1, first + 1 + len(ok)))


def test_head_counter_uses_no_value(cgroup, daemons, tmp_path):
    """HEAD is safe (RFC 9110 9.2.1): a monitor probing /counter with HEAD
    gets GET's headers -- the Content-Length of the next value -- and no
    body, and the next GET still gets the next value."""
    d = serve(daemons, cgroup, tmp_path)
    first = still_serving(d)
    for _ in range(5):
        code, headers, body = d.request("/counter", method="HEAD")
        assert code == 200 and body == b""
        assert headers["Content-Length"] == str(len(f"Counter value: {first + 1}"))
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers["Cache-Control"] == "no-store"
    assert still_serving(d) == first + 1
    # also on one keep-alive connection, pipelined between two GETs
    raw = exchange(d, REQ + b"\r\n" + b"HEAD /counter HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + REQ +
                   b"Connection: close\r\n\r\n", responses=99)  # read until the close
    assert counter_bodies(raw) == [first + 2, first + 3]
    assert statuses(raw) == [200] * 5


def server_sockets(port):
    """(state, Send-Q) of every socket but the listener whose local port is
    `port`, from /proc/net/tcp: state "01" is ESTABLISHED, "04" FIN_WAIT1
    (closed, its queue still held); Send-Q counts the bytes written and not
    yet acknowledged."""
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state != "0A" and int(local.split(":")[1], 16) == port:
                out.append((state, int(queues.split(":")[0], 16)))
    return out


def server_send_queues(port):
    return [q for state, q in server_sockets(port) if state == "01"]


def test_clients_that_never_read_pin_little_kernel_memory(cgroup, daemons, tmp_path):
    """Clients that pipeline requests and never read: each server socket
    queues at most 2 x SO_SNDBUF (16 KiB) in the kernel -- memory a cgroup v2
    charges to governord -- instead of growing with TCP autotuning to
    hundreds of KiB each (tcp_wmem's maximum is 4 MiB); and once their
    answers have not moved for the idle timeout (10 s) the server resets
    them, so that no closed socket keeps its queue as an orphan."""
    d = serve(daemons, cgroup, tmp_path, "--threads", "2")
    still_serving(d)
    n = 40
    clients = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(scaled(5))
            s.connect(("127.0.0.1", d.port))
            # 40 answers of about 2 KB; 1.5 KB of requests, which the server
            # reads at once (so that a plain close would not reset)
            s.sendall(b"GET /governor HTTP/1.1\r\nHost: x\r\n\r\n" * 40)
            clients.append(s)
        # wait until the server is stuck on every connection: all n send
        # queues non-empty and unchanged over two readings
        last = [None]

        def stuck():
            q = sorted(server_send_queues(d.port))
            same = len(q) == n and all(q) and q == last[0]
            last[0] = q
            if not same:
                time.sleep(0.2)
            return same

        wait_until(stuck, timeout=scaled(20), what="the server blocked on every slow client")
        assert max(last[0]) <= 2 * 16384, last[0]
        still_serving(d)
        # the idle timeout: every stuck connection is reset, none lingers
        wait_until(lambda: not server_sockets(d.port) or time.sleep(0.2),
                   timeout=scaled(25), what="the server to drop every stuck connection")
        for s in clients:  # what they hold is readable, then the reset
            s.setblocking(False)
            try:
                while s.recv(1 << 20):
                    pass
                raise AssertionError("closed without a reset")
            except ConnectionResetError:
                pass
            except BlockingIOError:
                raise AssertionError("a stuck connection is still open")
        still_serving(d)
    finally:
        for s in clients:
            s.close()
