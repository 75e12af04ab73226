"""counterload -- concurrent clients of /counter for the counter store tests.

Load runs client threads, each on its own keep-alive HTTP connection to one
of the given ports, until it has made its share of requests or stop() is
called.  Every complete answer is kept: `values` are the N of each
`200 Counter value: N`, `others` every other (status, headers, body).  An
answer that never arrived (the daemon was killed mid-request) is not a value
that was served, so it is not kept; the client reconnects and goes on.
"""
import http.client
import re
import threading
import time

from daemon import scaled

VALUE = re.compile(r"^Counter value: ([0-9]+)$")


def parse_value(status, body):
    """N for a 200 `Counter value: N`, else None."""
    if status != 200:
        return None
    m = VALUE.match(body)
    assert m, f"a 200 answer that is not a counter value: {body!r}"
    return int(m.group(1))


def counter_value(d):
    """One GET /counter from daemon d; its N (the answer must be a number)."""
    status, body = d.get("/counter")
    v = parse_value(status, body)
    assert v is not None, (status, body)
    return v


class Load:
    def __init__(self, ports, clients=8, total=None, timeout=5.0):
        """ports: a list (client i uses ports[i % len]); total: requests in
        all (None: until stop())."""
        self.ports = list(ports)
        self.values = []
        self.others = []
        self.failures = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.timeout = scaled(timeout)
        share = None if total is None else [total // clients + (i < total % clients)
                                            for i in range(clients)]
        self.threads = [threading.Thread(target=self._run, args=(i, share and share[i]),
                                         daemon=True) for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, i, count):
        port = self.ports[i % len(self.ports)]
        conn = None
        done = 0
        while not self._stop.is_set() and (count is None or done < count):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
                conn.request("GET", "/counter")
                resp = conn.getresponse()
                body = resp.read().decode()
                v = parse_value(resp.status, body)
                with self.lock:
                    if v is None:
                        self.others.append((resp.status, dict(resp.headers), body))
                    else:
                        self.values.append(v)
                done += 1
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                if count is not None:
                    # a fixed number of answers is wanted: the daemon is back soon
                    time.sleep(0.01)
                else:
                    self._stop.wait(0.01)
        if conn is not None:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.values) + len(self.others)

    def stop(self):
        self._stop.set()
        self.join()

    def join(self, timeout=None):
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"
        return self
