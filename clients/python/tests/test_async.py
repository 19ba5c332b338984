"""AsyncClient: the same commands awaited, requests in flight together, and
watch as an async generator."""

from __future__ import annotations

import asyncio
import unittest

import harness

import jobq
from jobq import _protocol as p


class AsyncClientTests(unittest.IsolatedAsyncioTestCase):
    broker: harness.Broker

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)
        worker = harness.Process.c_worker(cls.broker, "--types", "sleep")
        cls.addClassCleanup(worker.close)

    async def asyncSetUp(self) -> None:
        self.client = self.broker.async_client()
        self.addCleanup(self.client.close)

    async def test_commands(self) -> None:
        first = await self.client.enqueue_ex("noop", "shop-a", {"n": 1}, key="a-1")
        again = await self.client.enqueue_ex("noop", "shop-a", key="a-1")
        self.assertEqual((first.created, again.created, again.id), (True, False, first.id))
        job = await self.client.status(first.id)
        self.assertEqual((job.status, job.input), (jobq.Status.PENDING, {"n": 1}))
        batch = await self.client.enqueue_batch([jobq.JobSpec("noop", "shop-a", {"n": n}) for n in range(3)])
        self.assertEqual(len({b.id for b in batch}), 3)
        listed = [j.id async for j in self.client.list("shop-a", page_size=2)]
        self.assertEqual(listed, sorted({first.id, *(b.id for b in batch)}, reverse=True))
        cancelled = await self.client.cancel(first.id)
        self.assertEqual(cancelled.status, "cancelled")
        self.assertEqual((await self.client.retry(first.id)).status, "pending")
        stats = await self.client.stats()
        self.assertGreaterEqual(stats["counts"]["noop"]["pending"], 4)

    async def test_errors(self) -> None:
        with self.assertRaises(jobq.UnknownJob):
            await self.client.status("0000000000000001")
        job_id = await self.client.enqueue("noop", "shop-b")
        await self.client.cancel(job_id)
        with self.assertRaises(jobq.InvalidState):
            await self.client.cancel(job_id)
        with self.assertRaises(jobq.TooLarge):
            await self.client.enqueue("noop", "shop-b", {"blob": b"x" * 300_000})

    async def test_many_requests_in_flight(self) -> None:
        ids = await asyncio.gather(*(self.client.enqueue("noop", "shop-c", {"n": n}) for n in range(20)))
        jobs = await asyncio.gather(*(self.client.status(i) for i in ids))
        self.assertEqual([j.input for j in jobs], [{"n": n} for n in range(20)])

    async def test_no_reply(self) -> None:
        async with jobq.AsyncClient(harness.endpoint(), timeout=0.2, retries=1) as client:
            with self.assertRaises(jobq.NoReply):
                await client.stats()

    async def test_watch(self) -> None:
        job_id = await self.client.enqueue("sleep", "shop-d", {"ms": 800, "steps": 4})
        states = [s async for s in self.client.watch(job_id, timeout=20)]
        self.assertEqual(states[-1].status, jobq.Status.COMPLETED)
        self.assertEqual(states[-1].output, {"slept_ms": 800, "steps": 4})
        progress = [s.progress for s in states]
        self.assertEqual(progress, sorted(progress))
        self.assertGreaterEqual(len({p for p in progress if 0 < p < 100}), 2)
        # A job that has already ended: one state, the end.
        again = [s async for s in self.client.watch(job_id)]
        self.assertEqual([s.version for s in again], [states[-1].version])

    async def test_watch_timeout(self) -> None:
        job_id = await self.client.enqueue("sleep", "shop-e", delay_ms=60_000)
        with self.assertRaises(jobq.WatchTimeout):
            async for _ in self.client.watch(job_id, timeout=0.3):
                pass


class AsyncLostReplies(unittest.IsolatedAsyncioTestCase):
    """As test_client.LostReplies, with AsyncClient."""

    broker: harness.Broker

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)

    def through(self, drop: p.Command, timeout: float) -> tuple[harness.LossyProxy, jobq.AsyncClient]:
        proxy = harness.LossyProxy(self.broker.clients, drop=drop)
        self.addCleanup(proxy.close)
        client = jobq.AsyncClient(proxy.endpoint, timeout=timeout, retries=2)
        self.addCleanup(client.close)
        return proxy, client

    async def test_a_cancel_whose_reply_was_lost_returns_the_cancelled_job(self) -> None:
        proxy, client = self.through(p.Command.CANCEL, 0.5)
        job_id = await client.enqueue("unserved_type", "shop-lost")
        job = await client.cancel(job_id)
        self.assertEqual((job.id, job.status, job.version), (job_id, jobq.Status.CANCELLED, 2))
        C = p.Command
        self.assertEqual(proxy.commands(), [C.ENQUEUE, C.CANCEL, C.CANCEL, C.STATUS])
        # A job that had ended otherwise is still refused.
        with self.assertRaises(jobq.InvalidState):
            await client.cancel(job_id)

    async def test_a_retry_is_sent_once(self) -> None:
        proxy, client = self.through(p.Command.RETRY, 0.3)
        job_id = await client.enqueue("unserved_type", "shop-lost")
        await client.cancel(job_id)
        started = asyncio.get_running_loop().time()
        with self.assertRaises(jobq.NoReply):
            await client.retry(job_id)
        self.assertGreaterEqual(asyncio.get_running_loop().time() - started, 0.85)
        C = p.Command
        self.assertEqual(proxy.commands(), [C.ENQUEUE, C.CANCEL, C.RETRY])
        self.assertEqual((await client.status(job_id)).status, jobq.Status.PENDING)


if __name__ == "__main__":
    unittest.main()
