#!/usr/bin/python3
"""The dashboard in a real browser: headless Chromium, driven over the
DevTools protocol, against a running jobq-gateway.

    dashboard.py BASE_URL OUT_DIR [CHROMIUM]

Enqueues jobs through the HTTP API and checks what a user would see:
a job enqueued after the page loaded appears, its bar moves and it ends
in completed (all from the event stream: the page is never reloaded);
a job is cancelled with the detail panel's button; a job whose error is
HTML shows it as text and runs nothing. Saves dashboard.png (and, when
a check fails, dashboard-failure.png) in OUT_DIR. Exits 0 when every
check passed, 1 with the reason otherwise.
"""

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CdpError  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)>"


def api(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as r:
        return json.loads(r.read())


def wait_api(base, job_id, status, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        job = api(base, "GET", "/v1/jobs/" + job_id)
        if job["status"] == status:
            return job
        if time.monotonic() > deadline:
            raise CdpError("job %s is %s, not %s" % (job_id, job["status"],
                                                    status))
        time.sleep(0.05)


def row(job_id, js):
    """A JavaScript expression on the job's row (null when absent)."""
    return ("(() => { const tr = document.querySelector('tr[data-id=\"%s\"]');"
            " return tr ? (%s) : null; })()" % (job_id, js))


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    base, out = sys.argv[1].rstrip("/"), sys.argv[2]
    chromium = sys.argv[3] if len(sys.argv) > 3 else shutil.which("chromium")
    if not chromium or not os.access(chromium, os.X_OK):
        print("dashboard.py: no chromium (scripts/install-deps.sh installs "
              "it)", file=sys.stderr)
        return 1
    os.makedirs(out, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="jobq-chromium-")
    browser = Browser(chromium, profile, os.path.join(out, "chromium.log"))
    try:
        check(browser, base, out)
        print("dashboard.py: every check passed; screenshot in " +
              os.path.join(out, "dashboard.png"))
        return 0
    except (CdpError, OSError, KeyError, ValueError) as e:
        print("dashboard.py: FAILED: %s" % e, file=sys.stderr)
        try:
            browser.screenshot(os.path.join(out, "dashboard-failure.png"))
        except (CdpError, OSError):
            pass
        return 1
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


def check(b, base, out):
    deadline = time.monotonic() + 20
    while True:  # the gateway may still be starting
        try:
            api(base, "GET", "/healthz")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    # Before the page: a job that fails with HTML for its error, and a
    # long one to cancel.
    hostile = api(base, "POST", "/v1/jobs", {
        "type": "fail", "shopId": "acme",
        "input": {"message": HOSTILE, "permanent": True}})["id"]
    wait_api(base, hostile, "failed")
    retried = api(base, "POST", "/v1/jobs", {
        "type": "fail", "shopId": "acme", "input": {"times": 1}})["id"]
    victim = api(base, "POST", "/v1/jobs", {
        "type": "sleep", "shopId": "acme",
        "input": {"ms": 120000, "steps": 1200}})["id"]
    wait_api(base, victim, "running")
    wait_api(base, retried, "completed")

    b.open_page()
    b.navigate(base + "/")
    b.wait_for(row(hostile, "true") + " && " + row(victim, "true"),
               "the list to show the jobs enqueued before")
    b.wait_for("document.getElementById('broker').textContent === "
               "'broker up'", "the broker pill to say up")

    # A job enqueued now reaches the page only through its event stream.
    live = api(base, "POST", "/v1/jobs", {
        "type": "sleep", "shopId": "acme",
        "input": {"ms": 3000, "steps": 10}})["id"]
    width = row(live, "tr.querySelector('.bar i').style.width")
    status = row(live, "tr.querySelector('.status').textContent")
    b.wait_for(row(live, "true"), "the new job's row")
    seen = set()
    deadline = time.monotonic() + 30
    while b.eval(status) != "completed":
        w = b.eval(width)
        if w not in ("0%", "100%", "", None):
            seen.add(w)
        if time.monotonic() > deadline:
            raise CdpError("the live job did not reach completed on the "
                           "page (status %s)" % b.eval(status))
        time.sleep(0.05)
    if b.eval(width) != "100%":
        raise CdpError("completed, but the bar is at " + str(b.eval(width)))
    if len(seen) < 2:
        raise CdpError("the bar did not move: widths seen %s" % sorted(seen))
    print("dashboard.py: the live job's bar went through %s to 100%%" %
          ", ".join(sorted(seen, key=lambda s: float(s[:-1]))))

    # The hostile error: shown as its text, nothing made of it.
    msg = b.eval(row(hostile, "tr.cells[5].textContent"))
    if msg != HOSTILE:
        raise CdpError("the hostile job's message cell says %r" % msg)
    b.click('tr[data-id="%s"]' % hostile)
    b.wait_for("document.getElementById('d-errors').textContent"
               ".includes(%s)" % json.dumps(HOSTILE),
               "the hostile error in the detail panel")
    if b.eval("document.querySelectorAll('img').length") != 0:
        raise CdpError("an <img> element was made from a job's text")

    # Retry with the button: the job runs (and fails) again.
    b.wait_for("!document.getElementById('d-retry').disabled",
               "Retry enabled for the failed job")
    b.click("#d-retry")
    deadline = time.monotonic() + 30
    while len(api(base, "GET", "/v1/jobs/" + hostile)["errors"]) < 2:
        if time.monotonic() > deadline:
            raise CdpError("Retry did not run the job again")
        time.sleep(0.05)
    b.wait_for(row(hostile, "tr.querySelector('.status').textContent === "
                   "'failed'"), "the retried job failed again on its row")

    # A job that failed once and then completed: its timeline says so.
    b.click('tr[data-id="%s"]' % retried)
    b.wait_for("document.getElementById('d-timeline').textContent"
               ".includes('attempt 1 failed, ran again')",
               "the retried job's timeline")
    # The workers table: one worker, heard from within the last seconds.
    heard = b.wait_for(
        "(() => { const r = document.querySelectorAll('#wrows tr');"
        " return r.length === 1 ? r[0].cells[3].textContent : null; })()",
        "the worker in the workers table")
    if not (heard == "just now" or heard.endswith(" s ago")):
        raise CdpError("the worker was last heard %r" % heard)

    # Cancel with the button, as a user would.
    b.click('tr[data-id="%s"]' % victim)
    b.wait_for("document.getElementById('d-title').textContent"
               ".includes(%s) && !document.getElementById('d-cancel')"
               ".disabled" % json.dumps(victim),
               "the victim's detail panel with Cancel enabled")
    b.click("#d-cancel")
    b.wait_for(row(victim, "tr.querySelector('.status').textContent === "
                   "'cancelled'"), "the cancelled status on the victim's row")
    wait_api(base, victim, "cancelled", timeout=10)
    b.wait_for("document.getElementById('d-cancel').disabled",
               "Cancel disabled once the job ended")

    # Show the finished job's detail for the picture.
    b.click('tr[data-id="%s"]' % live)
    b.wait_for("document.getElementById('d-output').textContent"
               ".includes('slept_ms')", "the live job's output in the panel")
    b.wait_for("(() => { const i = document.getElementById('d-bar');"
               " return i.getBoundingClientRect().width >="
               " i.parentNode.getBoundingClientRect().width - 1; })()",
               "the panel's bar at its end")
    b.wait_for("/^[0-9]+$/.test(document.getElementById('in-rate')"
               ".textContent)", "the enqueue rate", timeout=10)
    b.screenshot(os.path.join(out, "dashboard.png"))

    b.drain()
    dialogs = [p for m, p in b.events if m == "Page.javascriptDialogOpening"]
    if dialogs:
        raise CdpError("a dialog opened: %s" % dialogs[0].get("message"))
    errors = [p for m, p in b.events if m == "Runtime.exceptionThrown"]
    if errors:
        raise CdpError("the page threw: %s" %
                       errors[0]["exceptionDetails"].get("text"))


if __name__ == "__main__":
    sys.exit(main())
