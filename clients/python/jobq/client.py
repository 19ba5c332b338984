"""The synchronous client: requests over one DEALER, and watch."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, List, Mapping, Sequence, TypeVar

import zmq

from . import _protocol as p
from ._base import DEFAULT_BROKER, DEFAULT_EVENTS, Call, ClientBase
from ._transport import connect
from ._watch import WatchState
from .curve import CurveKeys
from .errors import Unavailable
from .models import Enqueued, Job, JobSpec, Page, Status

__all__ = ["Client"]

T = TypeVar("T")


class Client(ClientBase):
    """A client of a jobq broker.

    Every call waits up to ``timeout`` seconds for its answer, and resends the
    same request (same request id, same idempotency key) up to ``retries``
    times before it raises :class:`jobq.NoReply`. An enqueue without a key
    gets one made up while ``retries`` is above 0, so a lost reply never
    makes two jobs. :meth:`retry` is the exception: it is sent once (see
    there). Calls may come from several threads: they take turns.

    ``curve`` holds CURVE keys for a broker started with ``--keys``;
    ``context`` is the ZeroMQ context to use (default: the shared instance).
    """

    def __init__(
        self,
        broker: str = DEFAULT_BROKER,
        events: str = DEFAULT_EVENTS,
        timeout: float = 3.0,
        retries: int = 1,
        curve: CurveKeys | None = None,
        *,
        context: zmq.Context | None = None,
    ) -> None:
        super().__init__(broker, events, timeout, retries, curve)
        self._ctx = context or zmq.Context.instance()
        self._sock = connect(self._ctx.socket(zmq.DEALER), broker, curve)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the client's socket. Safe to call twice."""
        with self._lock:
            self._sock.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commands -----------------------------------------------------------

    def enqueue(
        self,
        type: str,
        shop_id: str,
        input: Mapping[str, Any] | None = None,
        *,
        priority: int = 0,
        delay_ms: int = 0,
        max_attempts: int | None = None,
        timeout_ms: int = 0,
        key: str | None = None,
    ) -> str:
        """Add a job; returns its id once the broker has it on disk.

        ``input`` is a dict (at most 256 KiB encoded); ``priority`` -1000..1000
        (higher first); ``delay_ms`` before it may run; ``max_attempts`` 1..100
        (default 3); ``timeout_ms`` per attempt (0: none); ``key`` an
        idempotency key: the same key in the same shop within 24 hours
        answers with the same job.
        """
        return self.enqueue_ex(
            type,
            shop_id,
            input,
            priority=priority,
            delay_ms=delay_ms,
            max_attempts=max_attempts,
            timeout_ms=timeout_ms,
            key=key,
        ).id

    def enqueue_ex(
        self,
        type: str,
        shop_id: str,
        input: Mapping[str, Any] | None = None,
        *,
        priority: int = 0,
        delay_ms: int = 0,
        max_attempts: int | None = None,
        timeout_ms: int = 0,
        key: str | None = None,
    ) -> Enqueued:
        """As :meth:`enqueue`, returning the whole answer: the id, whether
        this call created the job, and whether a worker runs its type."""
        spec = self._spec(type, shop_id, input, priority, delay_ms, max_attempts, timeout_ms, key)
        return self._run(self._enqueue_call(spec))

    def enqueue_batch(self, jobs: Sequence[JobSpec | Mapping[str, Any]]) -> List[Enqueued]:
        """Add 1 to 1000 jobs (JobSpecs, or dicts of JobSpec's fields) at once:
        either all of them are stored, or none is. One answer per job, in order."""
        return self._run(self._batch_call(jobs))

    def status(self, job_id: str) -> Job:
        """The job, with its input, output and errors."""
        return self._run(self._job_call(p.Command.STATUS, job_id))

    def cancel(self, job_id: str) -> Job:
        """Cancel a pending or running job; returns its new state.
        :class:`jobq.InvalidState` if it has ended.

        A CANCEL without an answer in time is sent again. Should the resend
        get ``invalid_state``, the first one may have cancelled the job and
        lost its reply: the job is read with STATUS, and if it is cancelled
        that state is returned (so a job that someone else cancelled
        meanwhile is returned too, rather than raising)."""
        call = self._job_call(p.Command.CANCEL, job_id)
        answer, resent = self._ask(call)
        if self._cancel_maybe_lost(answer, resent):
            job = self.status(job_id)
            if job.status is Status.CANCELLED:
                return job
        return call.parse(answer.result())

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again; returns its new state.
        :class:`jobq.InvalidState` in any other state.

        RETRY is not idempotent, so it is sent once, never resent: its
        answer is awaited as long as all the tries of another call would
        take (``timeout * (retries + 1)``), and if none comes it raises
        :class:`jobq.NoReply`; the job may or may not have been retried then
        (read it with :meth:`status`)."""
        return self._run(self._job_call(p.Command.RETRY, job_id))

    def list_page(
        self,
        shop: str | None = None,
        type: str | None = None,
        status: Status | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """One LIST page (newest first, without input, output or errors)."""
        return self._run(self._list_call(shop, type, status, limit, cursor))

    def list(
        self,
        shop: str | None = None,
        type: str | None = None,
        status: Status | str | None = None,
        limit: int | None = None,
        *,
        page_size: int = 50,
    ) -> Iterator[Job]:
        """Every job matching the filters, newest first, up to ``limit`` jobs,
        fetched ``page_size`` at a time as the iteration goes, following the
        cursor to the end. Jobs created after the first page are not listed."""
        size = self._page_sizes(limit, page_size)
        seen, cursor = 0, None
        while size(seen) > 0:
            page = self.list_page(shop, type, status, size(seen), cursor)
            for job in page.jobs:
                seen += 1
                yield job
            if page.next is None:
                return
            cursor = page.next

    def stats(self) -> dict[str, Any]:
        """The broker's counters: the STATS reply (section 8.7) as a dict."""
        return self._run(self._stats_call())

    def watch(self, job_id: str, timeout: float | None = None) -> Iterator[Job]:
        """The job's states as they change, ending with its final state (read
        with STATUS, so with output and errors). Never misses the end, even
        one that came before the call, and rides out a broker restart.

        Raises :class:`jobq.WatchTimeout` if the job has not ended within
        ``timeout`` seconds (None: no limit).
        """
        state = WatchState(job_id, timeout)
        # 1. A snapshot: the shop (for the topic), and an end already there.
        job = self.status(job_id)
        state.snapshot(job)
        yield job
        if job.final:
            return
        # 2. Subscribe: the broker answers with the job's current state.
        topic = p.topic(job.shop_id, job.id)
        sub = connect(self._ctx.socket(zmq.SUB), self.events, self.curve, subscribe=topic)
        try:
            while True:
                resync = False
                if sub.poll(state.poll_ms()):
                    # 3. An event: newer versions only; an ending via STATUS.
                    event = p.parse_event(sub.recv_multipart(), topic)
                    if event is not None:
                        news, resync = state.event(event)
                        if news is not None:
                            yield news
                # 4. No news for a while (events or not): ask.
                resync = resync or state.silence_over()
                if not resync:
                    continue
                snapshot = self._watch_snapshot(state, job_id)
                if snapshot is not None:
                    yield snapshot
                    if snapshot.final:
                        return
        finally:
            sub.close(linger=0)

    def _watch_snapshot(self, state: WatchState, job_id: str) -> Job | None:
        """A STATUS for the watch: the state if news. A broker that does not
        answer (it is restarting) is asked again after the next silence."""
        try:
            return state.snapshot(self.status(job_id))
        except Unavailable:
            return None

    # --- the wire -------------------------------------------------------------

    def _run(self, call: Call[T]) -> T:
        return call.parse(self._ask(call)[0].result())

    def _ask(self, call: Call[Any]) -> tuple[p.Answer, bool]:
        """call's answer, and whether it came to a resend (an earlier try
        may have been applied). NoReply when none came in any try."""
        with self._lock:
            if self._sock.closed:
                raise ValueError("the client is closed")
            rid, msg = self._encode(call)
            tries, wait = self._tries(call)
            for attempt in range(tries):
                deadline = time.monotonic() + wait
                if not self._send(msg, deadline):
                    continue
                answer = self._receive(rid, deadline)
                if answer is not None:
                    return answer, attempt > 0
            raise self._no_reply(call)

    def _send(self, msg: Sequence[bytes], deadline: float) -> bool:
        """Queue msg for the broker, waiting until deadline for room."""
        while True:
            try:
                self._sock.send_multipart(msg, flags=zmq.NOBLOCK)
                return True
            except zmq.Again:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._sock.poll(int(left * 1000) + 1, zmq.POLLOUT)

    def _receive(self, rid: int, deadline: float) -> p.Answer | None:
        """The answer to rid, or None at deadline. Late answers to earlier
        requests are skipped; an ERROR with rid 0 (a request the broker could
        not read) answers the one request in flight (8.1)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1):
                if time.monotonic() >= deadline:
                    return None
                continue
            try:
                answer = p.parse_answer(self._sock.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                continue
            if answer is not None and answer.rid in (rid, 0):
                return answer
