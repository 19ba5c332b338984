#!/usr/bin/python3
"""The original design running: examples/nextjs in headless Chromium.

    nextjs.py APP_URL OUT_DIR [CHROMIUM]

Opens the example's page, clicks Start (a server action enqueues a
scrape_reviews job of the sample shop through @jobq/client), and checks
that <JobStatus> shows the job running with its progress, then completed
with a full bar, and that the page shows the scrape's result (useJob's
onComplete). Saves nextjs.png in OUT_DIR (nextjs-failure.png when a check
fails). Exits 0 when every check passed, 1 with the reason otherwise.
"""

import os
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CdpError  # noqa: E402


def check(b, url, out):
    deadline = time.monotonic() + 90  # next dev starts, then compiles
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        try:
            opener.open(url, timeout=30).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    b.open_page()
    b.navigate(url)
    # Hydrated: the button works once React has taken the page.
    b.wait_for("(() => { const s = document.querySelector('#start');"
               " return s && !s.disabled && Object.keys(s).some("
               "k => k.startsWith('__react')); })()",
               "the page's Start button, hydrated", timeout=90)
    b.click("#start")
    state = ("(() => { const e = document.querySelector('.jobq-status');"
             " if (!e) return null;"
             " const f = e.querySelector('.jobq-status__fill');"
             " return [e.className, f ? f.style.width : '',"
             " e.textContent]; })()")
    running = set()
    deadline = time.monotonic() + 60
    while True:
        s = b.eval(state)
        if s and "jobq-status--running" in s[0] and s[1] not in ("", "100%"):
            running.add(s[1])
        if s and "jobq-status--completed" in s[0]:
            break
        if s and ("--failed" in s[0] or "--cancelled" in s[0] or
                  "--unavailable" in s[0]):
            raise CdpError("the job did not complete: %s" % s[2])
        if time.monotonic() > deadline:
            raise CdpError("no completed state within 60 s (last: %s)" % s)
        time.sleep(0.03)
    if not running:
        raise CdpError("the job was never shown running with progress")
    b.wait_for("(() => { const f = document.querySelector("
               "'.jobq-status__fill'); return f && f.style.width === '100%'"
               " && f.getBoundingClientRect().width >= f.parentNode"
               ".getBoundingClientRect().width - 1; })()",
               "the bar at 100% once completed")
    text = b.wait_for("(() => { const r = document.querySelector('#result');"
                      " return r && r.textContent; })()",
                      "the scrape's result on the page")
    if "11 reviews from 3 pages" not in text:
        raise CdpError("the result says %r" % text[:200])
    print("nextjs.py: running at %s, then completed; %s" % (
        ", ".join(sorted(running, key=lambda w: float(w[:-1]))),
        text.split("5★")[0].strip()))
    b.screenshot(os.path.join(out, "nextjs.png"))
    b.drain()
    errors = [p for m, p in b.events if m == "Runtime.exceptionThrown"]
    if errors:
        raise CdpError("the page threw: %s" %
                       errors[0]["exceptionDetails"].get("text"))


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    url, out = sys.argv[1], sys.argv[2]
    chromium = sys.argv[3] if len(sys.argv) > 3 else shutil.which("chromium")
    if not chromium:
        print("nextjs.py: no chromium (scripts/install-deps.sh installs it)",
              file=sys.stderr)
        return 1
    os.makedirs(out, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="jobq-chromium-")
    b = Browser(chromium, profile, os.path.join(out, "chromium-nextjs.log"))
    try:
        check(b, url, out)
        return 0
    except (CdpError, OSError, KeyError, ValueError) as e:
        print("nextjs.py: FAILED: %s" % e, file=sys.stderr)
        try:
            b.screenshot(os.path.join(out, "nextjs-failure.png"))
        except (CdpError, OSError):
            pass
        return 1
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
