"""What Client and AsyncClient share: settings, request ids, idempotency
keys, and each command as a :class:`Call` (its fields and how to read its
reply), so that the two clients differ only in how they wait."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

from . import _protocol as p
from .curve import CurveKeys
from .errors import NoReply, ProtocolError
from .models import Enqueued, Job, JobSpec, Page

T = TypeVar("T")

DEFAULT_BROKER = "tcp://127.0.0.1:5555"
DEFAULT_EVENTS = "tcp://127.0.0.1:5557"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: its command, its fields but ``rid``, its reply's reader,
    and whether it may be sent again when no answer comes (``resend``)."""

    cmd: p.Command
    fields: dict[str, Any]
    parse: Callable[[dict[str, Any]], T]
    resend: bool = True


def _job(body: Mapping[str, Any]) -> Job:
    return Job.from_map(p.reply_field(body, "job", dict))


def _enqueued(body: Mapping[str, Any]) -> Enqueued:
    job_id = p.reply_field(body, "id", str)
    return Enqueued(job_id, body.get("created") is not False, body.get("unserved") is True)


def _batch(specs: Sequence[JobSpec]) -> Callable[[dict[str, Any]], list[Enqueued]]:
    def parse(body: dict[str, Any]) -> list[Enqueued]:
        ids = p.reply_field(body, "ids", list)
        created = body.get("created")
        if len(ids) != len(specs) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError(f"reply lists {len(ids)} ids for {len(specs)} jobs")
        if not isinstance(created, list) or len(created) != len(ids):
            created = [True] * len(ids)
        unserved = body.get("unserved")
        unserved_types = set(unserved) if isinstance(unserved, list) else set()
        return [
            Enqueued(i, c is not False, s.type in unserved_types)
            for i, c, s in zip(ids, created, specs)
        ]

    return parse


def _page(body: dict[str, Any]) -> Page:
    jobs = p.reply_field(body, "jobs", list)
    cursor = body.get("next")
    return Page([Job.from_map(j) for j in jobs], cursor if isinstance(cursor, str) else None)


def _stats(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "rid"}


class ClientBase:
    """Settings and request building shared by both clients."""

    def __init__(
        self,
        broker: str,
        events: str,
        timeout: float,
        retries: int,
        curve: CurveKeys | None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.broker = broker
        self.events = events
        self.timeout = timeout
        self.retries = retries
        self.curve = curve
        # Request ids start at a random point, so that a late answer meant
        # for an earlier client on the same routing id is not taken as ours.
        self._rids = itertools.count(secrets.randbits(48) + 1)
        # Names this client in the idempotency keys it makes up.
        self._nonce = secrets.randbits(64)
        self._made_keys = itertools.count(1)

    # --- requests ---------------------------------------------------------

    def _encode(self, call: Call[Any]) -> tuple[int, list[bytes]]:
        """A fresh rid and the frames of call; ``rid`` is the body's first key."""
        rid = next(self._rids)
        return rid, p.frames(call.cmd, p.encode_map({"rid": rid, **call.fields}))

    def _tries(self, call: Call[Any]) -> tuple[int, float]:
        """How many times to send call, and how long to wait for each answer.
        A request that is not resent waits as long as all the tries of
        another would take."""
        if call.resend:
            return self.retries + 1, self.timeout
        return 1, self.timeout * (self.retries + 1)

    def _no_reply(self, call: Call[Any]) -> NoReply:
        tries, wait = self._tries(call)
        if not call.resend:
            return NoReply(
                f"no reply from the broker at {self.broker} within {wait:g} s; "
                f"{call.cmd.name} is sent once, and may or may not have been applied"
            )
        return NoReply(
            f"no reply from the broker at {self.broker} within {wait:g} s "
            f"({tries} {'try' if tries == 1 else 'tries'})"
        )

    @staticmethod
    def _cancel_maybe_lost(answer: p.Answer, resent: bool) -> bool:
        """Whether a CANCEL's answer may hide that it was applied: an
        ``invalid_state`` that answered a resend, when the first try may have
        cancelled the job and lost its reply (a broker restart after its
        commit, 7). The caller then reads the job: cancelled means done."""
        return resent and answer.cmd is p.Command.ERROR and answer.body.get("code") == "invalid_state"

    def _key(self, key: str | None) -> str | None:
        """key, or one made up when requests may be resent (8.2): a resent
        ENQUEUE then answers with the job the first one made."""
        if key is not None or self.retries == 0:
            return key
        return f"auto-{self._nonce:016x}-{next(self._made_keys):x}"

    def _enqueue_call(self, spec: JobSpec) -> Call[Enqueued]:
        fields, _ = p.enqueue_fields(spec, self._key(spec.key), p.MAX_MAP_DEPTH)
        return Call(p.Command.ENQUEUE, fields, _enqueued)

    def _batch_call(self, jobs: Sequence[JobSpec | Mapping[str, Any]]) -> Call[list[Enqueued]]:
        specs = [p.job_spec(j) for j in jobs]
        jobs_raw, _ = p.batch_jobs(specs, [self._key(s.key) for s in specs])
        return Call(p.Command.ENQUEUE_BATCH, {"jobs": jobs_raw}, _batch(specs))

    @staticmethod
    def _job_call(cmd: p.Command, job_id: str) -> Call[Job]:
        # RETRY is not idempotent: a resend after a lost reply would get
        # invalid_state (the job is pending now), and a job that is pending
        # or running cannot tell whether this RETRY made it so. It is sent
        # once. CANCEL is resent: its end state (cancelled) says it all.
        return Call(cmd, {"id": p.check_job_id(job_id)}, _job, resend=cmd is not p.Command.RETRY)

    @staticmethod
    def _list_call(
        shop: str | None, type: str | None, status: str | None, limit: int, cursor: str | None
    ) -> Call[Page]:
        return Call(p.Command.LIST, p.list_fields(shop, type, status, limit, cursor), _page)

    @staticmethod
    def _stats_call() -> Call[dict[str, Any]]:
        return Call(p.Command.STATS, {}, _stats)

    @staticmethod
    def _spec(
        type: str,
        shop_id: str,
        input: Mapping[str, Any] | None,
        priority: int,
        delay_ms: int,
        max_attempts: int | None,
        timeout_ms: int,
        key: str | None,
    ) -> JobSpec:
        return JobSpec(type, shop_id, input, priority, delay_ms, max_attempts, timeout_ms, key)

    @staticmethod
    def _page_sizes(limit: int | None, page_size: int) -> Callable[[int], int]:
        """How many jobs to ask for next, given how many were yielded."""
        p.check_int(page_size, "limit", 1, p.MAX_LIST)
        if limit is not None and limit < 0:
            raise ValueError("limit must be 0 or more")
        return lambda seen: page_size if limit is None else min(page_size, limit - seen)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(broker={self.broker!r}, events={self.events!r})"
