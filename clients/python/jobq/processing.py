"""What a processor sees of its job, and how its outcome becomes a report.

Processors run on the worker's slot threads. They never touch the socket:
their progress and results go through an :class:`Outbox` that the worker's
own thread empties, the way jobq's C runtime hands reports from its slots
to its runtime thread.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from . import _protocol as p
from .errors import Cancelled, Error, JobFailure, PermanentError

__all__ = ["RunningJob", "Processor"]

log = logging.getLogger("jobq.worker")

#: A processor: takes the job, returns its output map (or None for ``{}``).
Processor = Callable[["RunningJob"], Optional[Mapping[str, Any]]]


class Phase(enum.Enum):
    QUEUED = "queued"  # held, waiting for a free slot
    RUNNING = "running"  # its processor runs
    DROPPED = "dropped"  # taken back before it started (released, cancelled)


class RunningJob:
    """One attempt of a job, as its processor sees it.

    ``input`` is the job's input map; ``attempt`` counts from 1;
    ``timeout_ms`` is the attempt's limit (0: none), which the broker
    enforces by cancelling the attempt.
    """

    def __init__(
        self,
        id: str,
        attempt: int,
        type: str,
        shop_id: str,
        input: dict[str, Any],
        timeout_ms: int,
        outbox: Outbox,
    ) -> None:
        self.id = id
        self.attempt = attempt
        self.type = type
        self.shop_id = shop_id
        self.input = input
        self.timeout_ms = timeout_ms
        #: Set once the job is cancelled, timed out at the broker, or the
        #: worker's stop grace ran out; wait on it between steps.
        self.cancel_event = threading.Event()
        self._outbox = outbox
        self._phase = Phase.QUEUED
        self._phase_lock = threading.Lock()
        self._last_progress: tuple[int, str] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.id, self.attempt

    @property
    def cancelled(self) -> bool:
        """True once the job should stop: stop soon, and return or raise."""
        return self.cancel_event.is_set()

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress: ``percent`` 0..100 (clamped) and an optional
        message (cut at 1024 bytes). A report equal to the last is not sent,
        and one not sent yet is replaced by the next: the newest wins.
        Nothing is sent once the job is cancelled."""
        if self.cancelled:
            return
        report = (max(0, min(100, int(percent))), p.clip(message or "", p.MAX_MESSAGE_LEN))
        if report == self._last_progress:
            return
        self._last_progress = report
        self._outbox.put(Report(self.key, ReportKind.PROGRESS, percent=report[0], text=report[1]))

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early to raise :class:`jobq.Cancelled` on cancellation."""
        if self.cancel_event.wait(seconds):
            raise Cancelled("cancelled")

    def check_cancelled(self) -> None:
        """Raise :class:`jobq.Cancelled` if the job was cancelled."""
        if self.cancelled:
            raise Cancelled("cancelled")

    def __repr__(self) -> str:
        return f"RunningJob(id={self.id!r}, type={self.type!r}, attempt={self.attempt})"

    # --- the worker's side ----------------------------------------------------

    def _start(self) -> bool:
        """Move from queued to running; False if it was taken back."""
        with self._phase_lock:
            if self._phase is not Phase.QUEUED:
                return False
            self._phase = Phase.RUNNING
            return True

    def _drop(self) -> bool:
        """Take the job back if it has not started; True if it was."""
        with self._phase_lock:
            if self._phase is not Phase.QUEUED:
                return False
            self._phase = Phase.DROPPED
            return True


class ReportKind(enum.Enum):
    PROGRESS = "progress"
    COMPLETE = "complete"
    FAIL = "fail"


@dataclass
class Report:
    """A message for the broker about one attempt, from a slot thread."""

    key: tuple[str, int]
    kind: ReportKind
    percent: int = 0
    text: str = ""  # progress message, or error
    output: bytes = b""  # encoded output map
    permanent: bool = False  # FAIL only
    cancelled: bool = False  # FAIL only


def run(job: RunningJob, processor: Processor | None) -> Report:
    """Run processor on job and turn what happened into its COMPLETE or FAIL."""
    try:
        if processor is None:
            raise PermanentError(f"no processor for type '{job.type}'")
        output = processor(job)
    except Cancelled:
        return _fail(job, "cancelled", cancelled=True)
    except JobFailure as exc:  # PermanentError too
        return _fail(job, str(exc) or "failed", permanent=exc.permanent, cancelled=job.cancelled)
    except BaseException as exc:  # a processor must not take its slot down
        log.warning("job %s attempt %d (%s) failed", job.id, job.attempt, job.type, exc_info=True)
        return _fail(job, f"{type(exc).__name__}: {exc}", cancelled=job.cancelled)
    try:
        packed = p.pack_map(output, "output", p.MAX_OUTPUT_BYTES)
    except Error as exc:
        return _fail(job, f"processor output: {exc.message}", permanent=True, cancelled=job.cancelled)
    return Report(job.key, ReportKind.COMPLETE, output=packed.data)


def _fail(job: RunningJob, error: str, *, permanent: bool = False, cancelled: bool = False) -> Report:
    return Report(
        job.key,
        ReportKind.FAIL,
        text=p.clip(error, p.MAX_ERROR_LEN),
        permanent=permanent,
        cancelled=cancelled,
    )


class Outbox:
    """Reports from the slot threads for the worker's thread, which polls
    :meth:`fileno` (readable while reports wait) beside its socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: list[Report] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def fileno(self) -> int:
        return self._wake_r.fileno()

    def put(self, report: Report) -> None:
        """Queue report. A progress report replaces its attempt's unread one
        if that is the newest unread report of the attempt."""
        with self._lock:
            if report.kind is ReportKind.PROGRESS:
                for i in range(len(self._reports) - 1, -1, -1):
                    if self._reports[i].key == report.key:
                        if self._reports[i].kind is ReportKind.PROGRESS:
                            self._reports[i] = report
                            return
                        break
            first = not self._reports
            self._reports.append(report)
        if first:
            self.wake()

    def wake(self) -> None:
        """Make :meth:`fileno` readable (from any thread)."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already readable (or closing): enough

    def take(self) -> list[Report]:
        """Every report queued so far, oldest first."""
        with self._lock:
            reports, self._reports = self._reports, []
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass
        return reports

    def close(self) -> None:
        self._wake_r.close()
        self._wake_w.close()
