"""A small DevTools-protocol driver for headless Chromium, on the
standard library only.

Chromium is started with --remote-debugging-pipe: it reads commands from
its fd 3 and writes answers and events to its fd 4, each message one JSON
text ended by a NUL byte. No websocket and no port: nothing else on the
machine can reach the browser.
"""

import base64
import ctypes
import fcntl
import json
import os
import select
import signal
import time


class CdpError(Exception):
    """A command answered with an error, or the browser went away."""


class Browser:
    """One headless Chromium and one page in it (a flattened session)."""

    def __init__(self, chromium, profile_dir, log_path, width=1400, height=900):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        argv = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            "--user-data-dir=" + profile_dir,
            "--window-size=%d,%d" % (width, height),
            "--no-first-run",
            "--no-default-browser-check",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-domain-reliability",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
            "about:blank",
        ]
        self.pid = os.fork()
        if self.pid == 0:  # the child: fds 3 and 4 as Chromium wants them
            try:
                libc = ctypes.CDLL(None)
                libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
                r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
                w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
                os.dup2(r, 3)
                os.dup2(w, 4)
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
                os.execv(chromium, argv)
            finally:
                os._exit(127)
        os.close(to_child_r)
        os.close(from_child_w)
        os.close(log_fd)
        self._buf = b""
        self._next_id = 0
        self.events = []  # (method, params) of every event seen
        self.session = None
        self.width, self.height = width, height

    # -- the wire ---------------------------------------------------------
    def _read_one(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("no answer from the browser in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise CdpError("the browser closed its pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=True, timeout=30.0):
        """Send one command and return its result; events that come
        first are kept in self.events."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_one(deadline)
            if m.get("id") == self._next_id:
                if "error" in m:
                    raise CdpError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append((m["method"], m.get("params", {})))

    def drain(self):
        """Take in the events that have arrived, without waiting."""
        while True:
            if b"\0" not in self._buf:
                ready, _, _ = select.select([self._from_child], [], [], 0)
                if not ready:
                    return
            m = self._read_one(time.monotonic() + 1)
            if "method" in m:
                self.events.append((m["method"], m.get("params", {})))

    # -- a page -----------------------------------------------------------
    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"},
                           session=False)["targetId"]
        self.session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True},
            session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height,
            "deviceScaleFactor": 1, "mobile": False})

    def navigate(self, url):
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CdpError("navigate %s: %s" % (url, r["errorText"]))

    def eval(self, expression):
        """The value of a JavaScript expression (promises awaited)."""
        r = self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True,
            "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError("%s: %s" % (expression,
                                       r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def wait_for(self, expression, what, timeout=30.0, every=0.05):
        """Evaluate until the value is truthy; return it."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise CdpError("timed out waiting for " + what)
            time.sleep(every)

    def click(self, selector):
        """A real mouse click (pressed and released) at the middle of the
        element, as a user's would be: it goes through hit testing, so a
        hidden or covered element is not clicked."""
        box = self.eval(
            "(() => { const e = document.querySelector(%s);"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
            % json.dumps(selector))
        if not box:
            raise CdpError("nothing to click at " + selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {
                "type": kind, "x": box[0], "y": box[1], "button": "left",
                "clickCount": 1})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (CdpError, OSError):
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
