"""The live page (GET /) in a real headless Chromium against the real daemon.

governord runs with --cgroup pointing at a directory in cgroup v2 formats
(tests/pylib/cgroupfs.py).  A feeder thread plays the kernel: every 100 ms it sets
memory.current to what the pod would use -- the rest of the pod (`base`,
which the test raises) plus the collector's buffer as /governor reports it --
so the collector's growth, the governor's shrink and evictions all show up
in the numbers the governor reads back, as they would on cgroupfs.

The scenario: the collector grows up to `soft`; the rest of the pod climbs
so usage passes `high` and the governor shrinks the buffer; the limit is
lowered (in-place resize down: usage lands between `soft` and `high`), then raised (the
chart must rescale); the
daemon is stopped with SIGSTOP for a few seconds (the page must show that it
was not reachable, and the hole in the samples).  Meanwhile Chromium shows
the page; the test reads the DOM through the DevTools protocol, clicks a
decision marker with real mouse events, saves screenshots (laptop and phone
width) under OUT_DIR, and checks every request the page made.
"""

import json
import os
import re
import signal
import threading
import time

import pytest

from cdp import Browser
from cgroupfs import MIB, CgroupDir
from daemon import Daemon, wait_until, write_file

OUT_DIR = os.environ.get("OUT_DIR", os.path.join(os.getcwd(), "build", "test-browser"))

POLICY = """\
[governor]
interval_ms = 100
cooldown_ms = 1000

[collector]
block_size = 2Mi
interval_ms = 100
"""


def poll_until(what, fn, timeout):
    """wait_until, polling every 100 ms (each poll may be a request)."""
    return wait_until(fn, timeout, what, interval=0.1)


class Feeder(threading.Thread):
    """Sets memory.current = base + the collector's buffer, every 100 ms."""

    def __init__(self, cg, d, base):
        super().__init__(daemon=True)
        self.cg, self.d, self.base = cg, d, base
        self.buffer = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.buffer = self.d.status(timeout=0.5)["buffer"]["bytes"]
            except (OSError, AssertionError, ValueError):
                pass  # daemon stopped (SIGSTOP): keep the last figure
            self.cg.set(current=self.base + self.buffer)
            self.stop.wait(0.1)


@pytest.fixture
def daemon(tmp_path):
    os.makedirs(OUT_DIR, exist_ok=True)
    cg = CgroupDir(tmp_path / "cgroup", current=24 * MIB, max_=192 * MIB,
                   inactive_file=12 * MIB, active_file=4 * MIB)
    os.makedirs(tmp_path / "policy")
    policy = write_file(tmp_path / "policy" / "policy.ini", POLICY)
    log_path = os.path.join(OUT_DIR, "governord.log")
    d = Daemon(["--cgroup", cg.path, "--policy", policy, "--log-format", "json",
                "--threads", "2"], log_path=log_path, http_timeout=2.0)
    feeder = Feeder(cg, d, base=48 * MIB)
    feeder.start()
    try:
        yield {"d": d, "cg": cg, "feeder": feeder}
    finally:
        feeder.stop.set()
        feeder.join()
        if d.proc.poll() is None:
            d.send_signal(signal.SIGCONT)  # if the test left it stopped
        rc = d.stop(timeout=10)
    assert rc == 0, f"governord exited {rc}; see {log_path}"


def check_png(path, width):
    """A real, non-blank PNG of the expected width."""
    from PIL import Image  # python3-pil

    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.load()
        assert im.width == width and im.height >= 400, (path, im.size)
        rgb = im.convert("RGB")
        small = rgb.resize((rgb.width // 4, rgb.height // 4))
        colours = small.getcolors(1 << 20)
        assert len(colours) > 50, "%s: only %d colours, looks blank" % (path, len(colours))
        # not mostly one colour: the page has text, a chart and a table
        top = max(c for c, _ in colours)
        assert top < 0.95 * small.width * small.height, path


def page_state(page):
    return page.eval("""(() => {
        const svg = document.getElementById('chart');
        return {
          polls: Number(document.body.dataset.polls || 0),
          failures: Number(document.body.dataset.failures || 0),
          badge: document.getElementById('level').textContent,
          badgeLevel: document.getElementById('level').dataset.level,
          conn: document.getElementById('conn').dataset.state,
          points: Number(svg.dataset.points),
          markers: Number(svg.dataset.markers),
          gaps: Number(svg.dataset.gaps),
          unreachable: Number(svg.dataset.unreachable),
          ymax: Number(svg.dataset.ymax),
          wsPoints: [...svg.querySelectorAll('polyline.line-ws')]
              .reduce((n, p) => n + p.points.numberOfItems, 0),
          limitText: document.getElementById('f-limit').textContent,
          source: document.getElementById('f-source').textContent,
          cgroup: document.getElementById('f-cgroup').textContent,
          policy: document.getElementById('f-policy').textContent,
          rows: [...document.querySelectorAll('#decisions tbody tr')].map(tr => ({
              action: tr.dataset.action,
              seq: Number(tr.dataset.key.split(':')[1]),
              cells: [...tr.cells].map(td => td.textContent)})),
        };
    })()""")


def save_failure(page, gov):
    """What the page and the daemon showed when the test failed, for CI."""
    for name, what in (("failure-page.json", lambda: page_state(page)),
                       ("failure-governor.json", lambda: gov.status())):
        try:
            with open(os.path.join(OUT_DIR, name), "w") as f:
                json.dump(what(), f, indent=2)
        except Exception as e:  # the browser or the daemon may be gone
            print("cannot save %s: %s" % (name, e))
    try:
        with open(os.path.join(OUT_DIR, "failure.png"), "wb") as f:
            f.write(page.screenshot())
    except Exception as e:
        print("cannot save failure.png: %s" % e)


def wait_polls(page, n, timeout=15):
    start = page_state(page)["polls"]
    page.wait_for("Number(document.body.dataset.polls || 0) >= %d" % (start + n), timeout)
    return page_state(page)


def test_live_view(daemon):
    gov, cg, feeder = daemon["d"], daemon["cg"], daemon["feeder"]
    port = gov.port
    base_url = "http://127.0.0.1:%d/" % port

    # the page and its files come from the binary, with a strict CSP
    for path, ctype in (("/", "text/html"), ("/page.js", "text/javascript"),
                        ("/page.css", "text/css")):
        status, headers, body = gov.request(path)
        assert status == 200 and headers["content-type"].startswith(ctype), (path, headers)
        csp = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
        assert csp["default-src"] == "'none'", csp
        for directive in ("script-src", "style-src", "connect-src", "img-src"):
            assert csp[directive] == "'self'", csp
        assert len(body) > 1000
    status, _, body = gov.request("/governor/history?since=x")
    assert status == 400, body

    with Browser(OUT_DIR) as browser:
        page = browser.new_page(1280, 900)
        try:
            page.navigate(base_url)
            s = wait_polls(page, 3)
            assert s["conn"] == "live" and s["failures"] == 0, s
            assert s["cgroup"] == "v2" and s["source"] == "cgroup", s
            assert s["limitText"] == "192 MiB", s
            assert s["policy"] == "generation 1 · enforce", s

            # 1. the collector grows up to soft (70% of 192Mi): admission control
            # then makes new blocks replace old ones (evict decisions)
            poll_until("the buffer at the soft line", lambda: any(
                d["action"] == "evict" for d in gov.status()["decisions"]), 20)
            assert gov.status()["buffer"]["bytes"] >= 60 * MIB

            # 2. the rest of the pod climbs: usage passes high (85%) -> shrink
            feeder.base = 90 * MIB
            shrink = poll_until("a shrink decision", lambda: next(
                (d for d in gov.status()["decisions"] if d["action"] == "shrink"), None), 10)
            assert shrink["released_bytes"] > 0, shrink

            # the page shows it: a marker and a table row with the shrink
            page.wait_for("!!document.querySelector('#chart .marker[data-action=shrink]')", 5)
            page.wait_for("!!document.querySelector('#decisions tr[data-action=shrink]')", 5)

            # a click on the marker (real mouse events) shows its reason
            box = page.eval("""(() => {
                const r = document.querySelector('#chart .marker[data-action=shrink] path')
                    .getBoundingClientRect();
                const x = r.x + r.width / 2, y = r.y + r.height / 3;
                const hit = document.elementFromPoint(x, y).closest('.marker');
                return {x: x, y: y, hit: hit && hit.dataset.action};
            })()""")
            assert box["hit"] == "shrink", box  # not hidden under another marker
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                page.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                       "button": "left", "clickCount": 1})
            detail = page.wait_for(
                "document.getElementById('detail').textContent.includes('shrink') && "
                "document.getElementById('detail').textContent", 5)
            assert shrink["reason"] in detail, (shrink["reason"], detail)
            page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 1, "y": 1})

            # 3. the buffer grows back to the soft line; then an in-place resize
            # down, 192Mi -> 170Mi, puts usage (~133Mi) between soft and high
            poll_until("the buffer back at the soft line", lambda: any(
                d["action"] == "evict" and d["level"] == "normal" and d["seq"] > shrink["seq"]
                for d in gov.status()["decisions"]), 20)
            cg.set(max_=170 * MIB)
            poll_until("limit 170Mi", lambda: gov.status()["memory"]["limit_bytes"] == 170 * MIB, 5)
            page.wait_for("document.getElementById('f-limit').textContent === '170 MiB'", 5)

            # the badge shows the level /governor reports (level steady: soft)
            poll_until("level soft again", lambda: gov.status()["level"] == "soft", 10)
            s = wait_polls(page, 2)
            g = gov.status()
            assert s["badge"] == s["badgeLevel"] == g["level"] == "soft", (s, g["level"])
            # the chart has a point for every sample the governor took (all of
            # them are inside the window so far), give or take the last poll
            _, _, body = gov.request("/governor/history")
            taken = len(json.loads(body)["samples"])
            assert s["points"] >= 5 and taken - 2 <= s["points"] <= taken, (s, taken)
            assert s["wsPoints"] >= s["points"], s
            assert s["markers"] >= 1, s
            rows = [r for r in s["rows"] if r["action"] == "shrink"]
            assert rows, s["rows"]
            assert shrink["reason"] in rows[0]["cells"], rows
            # the table is newest first, like /governor, and holds its records
            seqs = [r["seq"] for r in s["rows"]]
            assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 2, seqs
            assert set(seqs) <= {d["seq"] for d in g["decisions"]}, (seqs, g["decisions"])

            # 4. resize up: 170Mi -> 320Mi; the chart's scale follows
            ymax_before = s["ymax"]
            assert ymax_before < 320 * MIB, s
            cg.set(max_=320 * MIB)
            page.wait_for("Number(document.getElementById('chart').dataset.ymax) >= %d"
                          % (320 * MIB), 5)
            s = wait_polls(page, 1)
            assert s["limitText"] == "320 MiB", s

            # 5. the daemon stops answering for a while: SIGSTOP, then SIGCONT
            os.kill(gov.pid, signal.SIGSTOP)
            try:
                page.wait_for("document.getElementById('conn').dataset.state === 'unreachable'", 10)
                time.sleep(1.5)
            finally:
                os.kill(gov.pid, signal.SIGCONT)
            page.wait_for("document.getElementById('conn').dataset.state === 'live'", 10)
            s = wait_polls(page, 3)
            assert s["failures"] >= 1 and s["unreachable"] >= 1, s
            assert s["gaps"] >= 1, s  # no samples while the governor was stopped

            shot = os.path.join(OUT_DIR, "live-view.png")
            with open(shot, "wb") as f:
                f.write(page.screenshot())
            check_png(shot, 1280)

            # phone width: nothing wider than the screen, chart still drawn
            phone = browser.new_page(390, 844, mobile=True, scale=2)
            phone.navigate(base_url)
            ps = wait_polls(phone, 2)
            assert ps["points"] >= 5 and ps["markers"] >= 1, ps
            overflow = phone.eval("document.documentElement.scrollWidth")
            assert overflow <= 390, overflow
            phone_shot = os.path.join(OUT_DIR, "live-view-phone.png")
            with open(phone_shot, "wb") as f:
                f.write(phone.screenshot())
            check_png(phone_shot, 780)

            # every request both pages made went to the daemon, and the polls
            # after the first asked only for what was new
            browser.pump(0.2)
            for p in (page, phone):
                assert p.requests, "no network log"
                others = [u for u in p.requests if not u.startswith(base_url)]
                assert not others, others
            polls = [u for u in page.requests if "/governor/history" in u]
            assert len(polls) >= 10, polls
            assert re.search(r"since=[1-9]\d*&after_seq=[1-9]", polls[-1]), polls[-1]

            # and the browser enforces the CSP: a fetch to another (loopback)
            # host is blocked before it leaves the page
            violation = page.eval("""new Promise(resolve => {
                document.addEventListener('securitypolicyviolation',
                    e => resolve({uri: e.blockedURI, directive: e.effectiveDirective}),
                    {once: true});
                fetch('http://127.0.0.2:%d/governor').catch(() => {});
                setTimeout(() => resolve(null), 3000);
            })""" % port, await_promise=True)
            assert violation and violation["directive"] == "connect-src", violation
            assert violation["uri"].startswith("http://127.0.0.2"), violation
        except Exception:
            save_failure(page, gov)
            raise
