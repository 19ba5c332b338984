"""watch never misses the end of a job (PROTOCOL.md 10.2), with jobq-worker's
sleep and noop processors doing the work."""

from __future__ import annotations

import asyncio
import threading
import time
import unittest

import msgpack
import zmq

import harness

import jobq
from jobq import _protocol as p


def watched(client: jobq.Client, job_id: str, timeout: float = 20) -> list[jobq.Job]:
    return list(client.watch(job_id, timeout=timeout))


class Watch(unittest.TestCase):
    broker: harness.Broker
    client: jobq.Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)
        worker = harness.Process.c_worker(cls.broker, "--types", "noop,sleep", "--concurrency", "4")
        cls.addClassCleanup(worker.close)
        cls.client = cls.broker.client()
        cls.addClassCleanup(cls.client.close)

    def test_a_job_that_ended_before_the_watch(self) -> None:
        job_id = self.client.enqueue("noop", "shop-w", {"echo": "hi"})
        harness.wait_until(lambda: self.client.status(job_id).final, what="the noop job to end")
        states = watched(self.client, job_id)
        self.assertEqual(len(states), 1)
        self.assertEqual(states[0].status, jobq.Status.COMPLETED)
        self.assertIsNotNone(states[0].output)

    def test_a_sleep_job_to_its_end_with_progress_in_order(self) -> None:
        job_id = self.client.enqueue("sleep", "shop-w", {"ms": 1200, "steps": 4})
        states = watched(self.client, job_id)
        final = states[-1]
        self.assertEqual(final.status, jobq.Status.COMPLETED)
        self.assertEqual(final.output, {"slept_ms": 1200, "steps": 4})
        self.assertEqual(final.errors, [])
        harness.assert_in_order(states)
        progress = [s.progress for s in states]
        self.assertEqual(progress, sorted(progress), "progress only grows")
        messages = [s.message for s in states if s.message]
        self.assertGreaterEqual(len(messages), 2, f"steps seen: {messages}")
        self.assertEqual(messages, sorted(messages), "steps in order")
        self.assertTrue(all(s.status == "running" for s in states[1:-1]))
        self.assertTrue(all(not s.final for s in states[:-1]))

    def test_a_failed_end_carries_its_errors(self) -> None:
        broker = harness.Broker()
        self.addCleanup(broker.close)
        with broker.client() as client:
            # No worker yet: the watch starts on a pending job.
            job_id = client.enqueue("fail", "shop-w", {"message": "no such page", "permanent": True})
            watcher = harness.Watcher(client, job_id)
            self.assertEqual(watcher.next_state().status, "pending")
            worker = harness.Process.c_worker(broker, "--types", "fail")
            self.addCleanup(worker.close)
            final = watcher.states()[-1]
        self.assertEqual((final.status, final.error), (jobq.Status.FAILED, "no such page"))
        assert final.errors is not None
        self.assertEqual([(e.attempt, e.error) for e in final.errors], [(1, "no such page")])

    def test_watch_timeout(self) -> None:
        job_id = self.client.enqueue("sleep", "shop-w", delay_ms=60_000)
        states = []
        started = time.monotonic()
        with self.assertRaises(jobq.WatchTimeout):
            for state in self.client.watch(job_id, timeout=0.5):
                states.append(state)
        self.assertLess(time.monotonic() - started, 3)
        self.assertEqual(len(states), 1)
        assert states[0].wait is not None
        self.assertEqual(states[0].wait.reason, "delayed")
        self.client.cancel(job_id)


class WatchUnderAFlood(unittest.TestCase):
    """An event stream that never falls silent but brings no news (repeats
    of the job's state, and bodies that cannot be read) must not keep the
    watch from taking its STATUS, and so from seeing the end."""

    def flood(self, topic: bytes, version: int) -> str:
        events = harness.endpoint()
        pub = zmq.Context.instance().socket(zmq.PUB)
        pub.bind(events)
        stop = threading.Event()
        job_id = topic.split(b"/")[1].decode()
        repeat = msgpack.packb({"id": job_id, "type": "t", "status": "pending", "shop_id": "shop-flood", "version": version})

        def run() -> None:
            while not stop.is_set():
                for body in (repeat, b"\xc1", repeat):
                    pub.send_multipart([topic, p.SIGNATURE, body])
                time.sleep(0.002)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def close() -> None:
            stop.set()
            thread.join(5)
            pub.close(linger=0)

        self.addCleanup(close)
        return events

    def run_watch(self, client_class: type) -> None:
        broker = harness.Broker()
        self.addCleanup(broker.close)
        with broker.client() as direct:
            job_id = direct.enqueue("unserved_type", "shop-flood")
            events = self.flood(p.topic("shop-flood", job_id), direct.status(job_id).version)
            if client_class is jobq.Client:
                with jobq.Client(broker.clients, events=events, timeout=1.0) as client:
                    watcher = harness.Watcher(client, job_id, timeout=8)
                    self.assertEqual(watcher.next_state().status, "pending")
                    time.sleep(0.3)
                    direct.cancel(job_id)
                    states = watcher.states()
            else:
                states = asyncio_watch(broker.clients, events, job_id, direct)
        self.assertEqual(states[-1].status, jobq.Status.CANCELLED)

    def test_sync(self) -> None:
        self.run_watch(jobq.Client)

    def test_async(self) -> None:
        self.run_watch(jobq.AsyncClient)


def asyncio_watch(clients: str, events: str, job_id: str, direct: jobq.Client) -> list[jobq.Job]:
    """The flooded watch with AsyncClient; direct cancels the job once it started."""

    async def main() -> list[jobq.Job]:
        async with jobq.AsyncClient(clients, events=events, timeout=1.0) as client:
            states = []
            async for state in client.watch(job_id, timeout=8):
                states.append(state)
                if len(states) == 1:
                    await asyncio.sleep(0.3)
                    await asyncio.get_running_loop().run_in_executor(None, direct.cancel, job_id)
            return states

    return asyncio.run(main())


class WatchAcrossABrokerCrash(unittest.TestCase):
    def test_the_broker_killed_and_restarted_under_a_watch(self) -> None:
        broker = harness.Broker()
        self.addCleanup(broker.close)
        worker = harness.Process.c_worker(broker, "--types", "sleep")
        self.addCleanup(worker.close)
        client = broker.client(timeout=0.5)
        self.addCleanup(client.close)
        job_id = client.enqueue("sleep", "shop-crash", {"ms": 3000, "steps": 10})
        watcher = harness.Watcher(client, job_id)
        for _ in range(20):
            if watcher.next_state().progress > 0:
                break
        else:
            self.fail("no progress seen")
        broker.kill()
        time.sleep(0.5)
        broker.start()
        states = watcher.states()
        final = states[-1]
        self.assertEqual(final.status, jobq.Status.COMPLETED)
        self.assertEqual(final.output, {"slept_ms": 3000, "steps": 10})
        self.assertEqual(sum(s.final for s in states), 1)
        harness.assert_in_order(states)


if __name__ == "__main__":
    unittest.main()
