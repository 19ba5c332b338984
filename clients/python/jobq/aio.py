"""The asyncio client: the same API as :class:`jobq.Client`, awaited."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, List, Mapping, Sequence, TypeVar

import zmq
import zmq.asyncio

from . import _protocol as p
from ._base import DEFAULT_BROKER, DEFAULT_EVENTS, Call, ClientBase
from ._transport import connect
from ._watch import WatchState
from .curve import CurveKeys
from .errors import Unavailable
from .models import Enqueued, Job, JobSpec, Page, Status

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(ClientBase):
    """A client of a jobq broker for asyncio programs.

    The same calls as :class:`jobq.Client`, as coroutines (resent the same
    way, :meth:`retry` sent once); :meth:`list` and :meth:`watch` are async
    generators. Many requests may be in flight at
    once: answers are matched to requests by their request id. Use one
    client within one event loop, and close it (or use ``async with``).
    """

    def __init__(
        self,
        broker: str = DEFAULT_BROKER,
        events: str = DEFAULT_EVENTS,
        timeout: float = 3.0,
        retries: int = 1,
        curve: CurveKeys | None = None,
        *,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        super().__init__(broker, events, timeout, retries, curve)
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock = connect(self._ctx.socket(zmq.DEALER), broker, curve)
        self._waiting: dict[int, asyncio.Future[p.Answer]] = {}
        self._reader: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Stop reading answers and close the socket. Safe to call twice."""
        if self._reader is not None and not self._reader.get_loop().is_closed():
            self._reader.cancel()
        self._reader = None
        self._sock.close(linger=0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # --- commands -----------------------------------------------------------

    async def enqueue(
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
        """Add a job; returns its id. See :meth:`jobq.Client.enqueue`."""
        answer = await self.enqueue_ex(
            type,
            shop_id,
            input,
            priority=priority,
            delay_ms=delay_ms,
            max_attempts=max_attempts,
            timeout_ms=timeout_ms,
            key=key,
        )
        return answer.id

    async def enqueue_ex(
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
        """Add a job; returns its id, whether it was created, and whether a
        worker runs its type."""
        spec = self._spec(type, shop_id, input, priority, delay_ms, max_attempts, timeout_ms, key)
        return await self._run(self._enqueue_call(spec))

    async def enqueue_batch(self, jobs: Sequence[JobSpec | Mapping[str, Any]]) -> List[Enqueued]:
        """Add 1 to 1000 jobs at once, all or none."""
        return await self._run(self._batch_call(jobs))

    async def status(self, job_id: str) -> Job:
        """The job, with its input, output and errors."""
        return await self._run(self._job_call(p.Command.STATUS, job_id))

    async def cancel(self, job_id: str) -> Job:
        """Cancel a pending or running job; returns its new state. Resent
        like other calls; a resend answered ``invalid_state`` reads the job,
        and returns it if it is cancelled. See :meth:`jobq.Client.cancel`."""
        call = self._job_call(p.Command.CANCEL, job_id)
        answer, resent = await self._ask(call)
        if self._cancel_maybe_lost(answer, resent):
            job = await self.status(job_id)
            if job.status is Status.CANCELLED:
                return job
        return call.parse(answer.result())

    async def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again; returns its new state. Sent
        once, never resent: :class:`jobq.NoReply` after
        ``timeout * (retries + 1)`` leaves it unknown whether the job was
        retried. See :meth:`jobq.Client.retry`."""
        return await self._run(self._job_call(p.Command.RETRY, job_id))

    async def list_page(
        self,
        shop: str | None = None,
        type: str | None = None,
        status: Status | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """One LIST page (newest first)."""
        return await self._run(self._list_call(shop, type, status, limit, cursor))

    async def list(
        self,
        shop: str | None = None,
        type: str | None = None,
        status: Status | str | None = None,
        limit: int | None = None,
        *,
        page_size: int = 50,
    ) -> AsyncIterator[Job]:
        """Every job matching the filters, newest first, following the cursor."""
        size = self._page_sizes(limit, page_size)
        seen, cursor = 0, None
        while size(seen) > 0:
            page = await self.list_page(shop, type, status, size(seen), cursor)
            for job in page.jobs:
                seen += 1
                yield job
            if page.next is None:
                return
            cursor = page.next

    async def stats(self) -> dict[str, Any]:
        """The broker's counters (section 8.7)."""
        return await self._run(self._stats_call())

    async def watch(self, job_id: str, timeout: float | None = None) -> AsyncIterator[Job]:
        """The job's states until its final one. See :meth:`jobq.Client.watch`."""
        state = WatchState(job_id, timeout)
        # 1. A snapshot: the shop (for the topic), and an end already there.
        job = await self.status(job_id)
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
                if await sub.poll(state.poll_ms()):
                    # 3. An event: newer versions only; an ending via STATUS.
                    event = p.parse_event(await sub.recv_multipart(), topic)
                    if event is not None:
                        news, resync = state.event(event)
                        if news is not None:
                            yield news
                # 4. No news for a while (events or not): ask.
                resync = resync or state.silence_over()
                if not resync:
                    continue
                snapshot = await self._watch_snapshot(state, job_id)
                if snapshot is not None:
                    yield snapshot
                    if snapshot.final:
                        return
        finally:
            sub.close(linger=0)

    async def _watch_snapshot(self, state: WatchState, job_id: str) -> Job | None:
        try:
            return state.snapshot(await self.status(job_id))
        except Unavailable:
            return None

    # --- the wire -------------------------------------------------------------

    async def _run(self, call: Call[T]) -> T:
        return call.parse((await self._ask(call))[0].result())

    async def _ask(self, call: Call[Any]) -> tuple[p.Answer, bool]:
        """call's answer, and whether it came to a resend (an earlier try
        may have been applied). NoReply when none came in any try."""
        if self._sock.closed:
            raise ValueError("the client is closed")
        rid, msg = self._encode(call)
        tries, wait = self._tries(call)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[p.Answer] = loop.create_future()
        self._waiting[rid] = answer
        if self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._read_answers())
        try:
            for attempt in range(tries):
                try:
                    got = await asyncio.wait_for(self._exchange(msg, answer), wait)
                except asyncio.TimeoutError:
                    continue
                return got, attempt > 0
            raise self._no_reply(call)
        finally:
            del self._waiting[rid]

    async def _exchange(self, msg: Sequence[bytes], answer: asyncio.Future[p.Answer]) -> p.Answer:
        await self._sock.send_multipart(msg)
        # Shielded: a timeout ends this wait, not the future a resend shares.
        return await asyncio.shield(answer)

    async def _read_answers(self) -> None:
        """Hand each answer to the request waiting for it. An ERROR with rid
        0 answers the request in flight if there is one only (8.1)."""
        while True:
            answer = p.parse_answer(await self._sock.recv_multipart())
            if answer is None:
                continue
            waiting = self._waiting.get(answer.rid)
            if waiting is None and answer.rid == 0 and len(self._waiting) == 1:
                waiting = next(iter(self._waiting.values()))
            if waiting is not None and not waiting.done():
                waiting.set_result(answer)
