"""Watching one job (PROTOCOL.md 10.2) without I/O, for both clients.

The clients feed this the snapshots (STATUS) and events they read; it says
which states are news to report, and when a STATUS must be taken.
"""

from __future__ import annotations

import time

from .errors import WatchTimeout
from .models import Job, Wait

#: After this much silence on the event stream, the watcher takes a STATUS.
SILENCE_S = 1.0


class WatchState:
    """The last state reported of the watched job, and the watch's clock."""

    def __init__(self, job_id: str = "", timeout: float | None = None) -> None:
        self.version = 0
        self.wait: Wait | None = None
        self.done = False
        self._job_id = job_id
        self._timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._quiet_since = time.monotonic()

    # --- the clock --------------------------------------------------------------

    def poll_ms(self) -> int:
        """How long to wait for the next event: until the silence is over or
        the watch's time is up. Raises WatchTimeout once it is."""
        now = time.monotonic()
        wait = max(0.0, SILENCE_S - (now - self._quiet_since))
        if self._deadline is not None:
            if now >= self._deadline:
                raise WatchTimeout(f"job {self._job_id} did not end within {self._timeout:g} s")
            wait = min(wait, self._deadline - now)
        return int(wait * 1000) + 1

    def heard(self) -> None:
        """News came: the silence starts again."""
        self._quiet_since = time.monotonic()

    def silence_over(self) -> bool:
        """True (and the silence starts again) after SILENCE_S without news
        (an event that :meth:`event` applied): time for a STATUS. Events
        that are not news (repeats, stale versions, other jobs', unreadable
        ones) do not count, so a broker that floods the watch with them
        cannot keep it from asking."""
        if time.monotonic() - self._quiet_since < SILENCE_S:
            return False
        self.heard()
        return True

    # --- the states -------------------------------------------------------------

    def _news(self, job: Job) -> bool:
        # A same-version state is news only when why the job waits changed
        # (a worker for its type came or went): that makes no event.
        if job.version > self.version:
            return True
        return job.version == self.version and not self.done and job.wait != self.wait

    def snapshot(self, job: Job) -> Job | None:
        """Apply a STATUS snapshot: the state to report, if it is news."""
        if not self._news(job):
            return None
        self.version, self.wait, self.done = job.version, job.wait, job.final
        return job

    def event(self, job: Job) -> tuple[Job | None, bool]:
        """Apply an event: the state to report, if any, and whether to take
        a STATUS now. An ending is never reported from an event: STATUS has
        the output and errors that events leave out. A version gap means
        events were missed: the event is the whole state, but a snapshot
        makes sure of it. Only an event that is news ends the silence."""
        if job.final:
            resync = job.version > self.version
            if resync:
                self.heard()
            return None, resync
        gap = job.version > self.version + 1
        news = self.snapshot(job)
        if news is not None:
            self.heard()
        return news, gap
