"""cdp.py -- drive Debian's headless Chromium over the DevTools protocol.

Chromium is started with --remote-debugging-pipe: it reads protocol
messages from file descriptor 3 and writes to descriptor 4, each message a
JSON object followed by a NUL byte.  A pipe needs no port, no websocket
library and no browser download, and nothing else on the machine can talk
to this browser.  Only the standard library is used.

    with Browser(out_dir) as b:
        page = b.new_page(1280, 900)
        page.navigate("http://127.0.0.1:8080/")
        page.wait_for("document.body.dataset.polls >= 3", timeout=10)
        png = page.screenshot()

Every network request a page makes is logged (Network.requestWillBeSent)
in page.requests, so tests can check which hosts it contacted.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# Headless flags measured in ../shared/notes/test-infrastructure.md: without
# the background-networking ones Chromium keeps trying closed connections.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class CDPError(Exception):
    pass


def _high_fd(fd):
    """Moves fd to a number >= 10 (close-on-exec), so that placing the
    child's ends on 3 and 4 cannot clobber one with the other."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.profile = tempfile.mkdtemp(prefix="governord-chromium-%d-" % os.getpid())
        cmd_r, cmd_w = (_high_fd(fd) for fd in os.pipe())  # we write, Chromium reads (fd 3)
        ev_r, ev_w = (_high_fd(fd) for fd in os.pipe())    # Chromium writes (fd 4), we read

        def child_fds():
            os.dup2(cmd_r, 3)
            os.dup2(ev_w, 4)

        self.stderr = open(os.path.join(log_dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
            preexec_fn=child_fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
            stdout=self.stderr, stderr=self.stderr)
        os.close(cmd_r)
        os.close(ev_w)
        self.wfd, self.rfd = cmd_w, ev_r
        self.buf = b""
        self.next_id = 1
        self.events = []   # (sessionId, method, params) not yet consumed
        self.pages = {}    # sessionId -> Page

    # ---- transport ----------------------------------------------------------
    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                raise CDPError("Chromium closed the pipe (see %s/chromium.log)" % self.log_dir)
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def _dispatch(self, msg):
        if "method" in msg:
            sid = msg.get("sessionId")
            page = self.pages.get(sid)
            if page and msg["method"] == "Network.requestWillBeSent":
                page.requests.append(msg["params"]["request"]["url"])
            self.events.append((sid, msg["method"], msg.get("params", {})))

    def send(self, method, params=None, session=None, timeout=30):
        msg_id = self.next_id
        self.next_id += 1
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply is None:
                raise CDPError("no answer to %s within %s s" % (method, timeout))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise CDPError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self._dispatch(reply)

    def pump(self, seconds):
        """Reads events for a while (keeps the network log current)."""
        deadline = time.monotonic() + seconds
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                return
            self._dispatch(msg)

    # ---- pages ----------------------------------------------------------------
    def new_page(self, width, height, mobile=False, scale=1):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, sid)
        self.pages[sid] = page
        page.send("Network.enable")
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.resize(width, height, mobile, scale)
        return page

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except (CDPError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self.wfd, self.rfd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    def __init__(self, browser, session):
        self.browser = browser
        self.session = session
        self.requests = []  # every URL this page requested, in order

    def send(self, method, params=None, timeout=30):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def resize(self, width, height, mobile=False, scale=1):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale,
                   "mobile": mobile})

    def navigate(self, url, timeout=15):
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, result["errorText"]))
        self.wait_for("document.readyState === 'complete'", timeout)

    def eval(self, expression, await_promise=False, timeout=30):
        r = self.send("Runtime.evaluate",
                      {"expression": expression, "returnByValue": True,
                       "awaitPromise": await_promise}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CDPError("%s: %s" % (expression, json.dumps(r["exceptionDetails"])[:500]))
        return r["result"].get("value")

    def wait_for(self, expression, timeout=10, interval=0.2):
        """Waits until expression is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise CDPError("timed out after %s s waiting for: %s" % (timeout, expression))
            self.browser.pump(interval)

    def screenshot(self):
        """A PNG of the whole page (not only the viewport)."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        r = self.send("Page.captureScreenshot",
                      {"format": "png", "captureBeyondViewport": True, "clip": clip})
        return base64.b64decode(r["data"])
