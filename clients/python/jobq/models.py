"""The values the client API takes and returns.

Times are timezone-aware :class:`datetime.datetime` objects in UTC (the wire
carries milliseconds since the epoch), or ``None`` for "not yet". Durations
keep the wire's milliseconds and say so in their names (``timeout_ms``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from .errors import ProtocolError

__all__ = ["Status", "Wait", "AttemptError", "Job", "JobSpec", "Enqueued", "Page"]


class Status(str, enum.Enum):
    """The state of a job. Compares equal to its wire name (``"running"``)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for ``completed``, ``failed`` and ``cancelled``."""
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    def __str__(self) -> str:
        return self.value


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
WAIT_REASONS = frozenset({"queued", "no_worker", "delayed", "retry", "worker_lost"})


@dataclass(frozen=True)
class Wait:
    """Why a job is not running now (the job map's ``wait``, section 6).

    ``reason`` is one of ``queued``, ``no_worker``, ``delayed``, ``retry``,
    ``worker_lost``; ``until`` is when that ends, if known.
    """

    reason: str
    until: datetime | None


@dataclass(frozen=True)
class AttemptError:
    """One failed attempt: its number, its error, and when it failed."""

    attempt: int
    error: str
    at: datetime | None


@dataclass(frozen=True)
class Job:
    """A job as the broker reported it: every key of the job map (section 6).

    ``input``, ``output`` and ``errors`` are only known from :meth:`Client.status`,
    :meth:`Client.cancel` and :meth:`Client.retry`; LIST pages and events leave
    them out, and they are ``None`` here then. ``timeout_ms`` is the map's
    ``timeout``.
    """

    id: str
    type: str
    status: Status
    shop_id: str
    progress: int
    message: str | None
    error: str | None
    attempts: int
    max_attempts: int
    priority: int
    run_at: datetime | None
    timeout_ms: int
    key: str | None
    created_at: datetime | None
    updated_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    worker: str | None
    lease_until: datetime | None
    version: int
    seq: int
    wait: Wait | None = None
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    errors: list[AttemptError] | None = field(default=None)

    @property
    def final(self) -> bool:
        """True once the job has ended (completed, failed or cancelled)."""
        return self.status.final

    @classmethod
    def from_map(cls, m: Mapping[str, Any]) -> Job:
        """Read a job map; unknown keys are ignored (section 6)."""
        try:
            status = Status(m["status"])
            job_id, version = m["id"], m["version"]
            if not isinstance(job_id, str) or not isinstance(version, int):
                raise TypeError("id or version")
            errors = m.get("errors")
            return cls(
                id=job_id,
                type=m["type"],
                status=status,
                shop_id=m["shop_id"],
                progress=m.get("progress", 0),
                message=m.get("message"),
                error=m.get("error"),
                attempts=m.get("attempts", 0),
                max_attempts=m.get("max_attempts", 0),
                priority=m.get("priority", 0),
                run_at=_time(m.get("run_at")),
                timeout_ms=m.get("timeout", 0),
                key=m.get("key"),
                created_at=_time(m.get("created_at")),
                updated_at=_time(m.get("updated_at")),
                started_at=_time(m.get("started_at")),
                completed_at=_time(m.get("completed_at")),
                worker=m.get("worker"),
                lease_until=_time(m.get("lease_until")),
                version=version,
                seq=m.get("seq", 0),
                wait=_wait(m.get("wait")),
                input=m.get("input"),
                output=m.get("output"),
                errors=None if errors is None else [_attempt_error(e) for e in errors],
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProtocolError(f"malformed job map ({exc!r})") from None


def _time(ms: Any) -> datetime | None:
    if ms is None:
        return None
    if not isinstance(ms, int):
        raise TypeError(f"time {ms!r}")
    return EPOCH + timedelta(milliseconds=ms)


def _wait(w: Any) -> Wait | None:
    # A reason this library does not know counts as no wait at all (section 6).
    if not isinstance(w, Mapping) or w.get("reason") not in WAIT_REASONS:
        return None
    return Wait(reason=w["reason"], until=_time(w.get("until")))


def _attempt_error(e: Mapping[str, Any]) -> AttemptError:
    return AttemptError(attempt=e["attempt"], error=e["error"], at=_time(e.get("at")))


@dataclass(frozen=True)
class JobSpec:
    """A job to enqueue, for :meth:`Client.enqueue_batch` (plain dicts with
    these keys work too). ``max_attempts`` ``None`` is the broker's default (3);
    ``key`` ``None`` lets the client make one up, so a resend never creates
    the job twice."""

    type: str
    shop_id: str
    input: Mapping[str, Any] | None = None
    priority: int = 0
    delay_ms: int = 0
    max_attempts: int | None = None
    timeout_ms: int = 0
    key: str | None = None


@dataclass(frozen=True)
class Enqueued:
    """The answer to an enqueue.

    ``created`` is False when the idempotency key named a job that already
    existed (whose id this is); ``unserved`` is True when no connected
    worker runs the job's type yet (the job is stored and waits for one).
    """

    id: str
    created: bool
    unserved: bool = False


@dataclass(frozen=True)
class Page:
    """One LIST page: jobs newest first, and the cursor of the next page
    (``None`` at the end). A page may be short, or empty, and still have a
    ``next``."""

    jobs: list[Job]
    next: str | None
