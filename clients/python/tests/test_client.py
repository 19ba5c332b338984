"""Every client command against a real broker, and its errors."""

from __future__ import annotations

import time
import unittest

import harness

import jobq
from jobq import _protocol as p
from jobq._base import Call


class ClientCommands(unittest.TestCase):
    """No worker runs here: jobs stay pending unless cancelled."""

    broker: harness.Broker
    client: jobq.Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)
        cls.client = cls.broker.client()
        cls.addClassCleanup(cls.client.close)

    def shop(self) -> str:
        """A shop of this test's own, so tests do not see each other's jobs."""
        return f"shop-{self._testMethodName[-40:]}"

    def test_enqueue_and_status(self) -> None:
        answer = self.client.enqueue_ex(
            "scrape_reviews",
            self.shop(),
            {"url": "https://example.com", "pages": [1, 2], "raw": b"\x00\x01"},
            priority=7,
            delay_ms=60_000,
            max_attempts=5,
            timeout_ms=30_000,
            key="order-17",
        )
        self.assertTrue(answer.created)
        self.assertTrue(answer.unserved)
        job = self.client.status(answer.id)
        self.assertEqual(job.id, answer.id)
        self.assertEqual((job.type, job.shop_id, job.status), ("scrape_reviews", self.shop(), jobq.Status.PENDING))
        self.assertEqual(job.input, {"url": "https://example.com", "pages": [1, 2], "raw": b"\x00\x01"})
        self.assertEqual((job.priority, job.max_attempts, job.timeout_ms, job.key), (7, 5, 30_000, "order-17"))
        self.assertEqual((job.version, job.attempts, job.progress), (1, 0, 0))
        self.assertIsNone(job.output)
        self.assertEqual(job.errors, [])
        assert job.wait is not None and job.created_at is not None and job.run_at is not None
        self.assertEqual(job.wait.reason, "delayed")
        self.assertAlmostEqual((job.run_at - job.created_at).total_seconds(), 60, delta=0.01)
        self.assertLess(abs(time.time() - job.created_at.timestamp()), 30)

    def test_same_key_same_job(self) -> None:
        first = self.client.enqueue_ex("noop", self.shop(), key="k-1")
        again = self.client.enqueue_ex("noop", self.shop(), {"ignored": True}, key="k-1")
        other_shop = self.client.enqueue_ex("noop", self.shop() + "-b", key="k-1")
        self.assertEqual((again.id, again.created), (first.id, False))
        self.assertTrue(first.created)
        self.assertNotEqual(other_shop.id, first.id)
        self.assertEqual(self.client.status(first.id).input, {})

    def test_made_up_keys(self) -> None:
        a = self.client.status(self.client.enqueue("noop", self.shop()))
        b = self.client.status(self.client.enqueue("noop", self.shop()))
        assert a.key is not None and b.key is not None
        self.assertTrue(a.key.startswith("auto-"))
        self.assertNotEqual(a.key, b.key)
        with self.broker.client(retries=0) as once:
            self.assertIsNone(once.status(once.enqueue("noop", self.shop())).key)

    def test_enqueue_batch(self) -> None:
        answers = self.client.enqueue_batch(
            [
                {"type": "noop", "shop_id": self.shop(), "input": {"n": 1}},
                jobq.JobSpec("export_data", self.shop(), key="b-1"),
                jobq.JobSpec("export_data", self.shop(), key="b-1"),
            ]
        )
        self.assertEqual(len(answers), 3)
        self.assertEqual([a.created for a in answers], [True, True, False])
        self.assertEqual(answers[1].id, answers[2].id)
        self.assertLess(answers[0].id, answers[1].id)
        self.assertTrue(all(a.unserved for a in answers))
        self.assertEqual(self.client.status(answers[0].id).input, {"n": 1})
        with self.assertRaises(jobq.BadRequest) as caught:
            self.client.enqueue_batch([{"type": "noop", "shop_id": self.shop()}, {"type": "No", "shop_id": "s"}])
        self.assertIn("jobs[1]", caught.exception.message)

    def test_unknown_job(self) -> None:
        for call in (self.client.status, self.client.cancel, self.client.retry):
            with self.subTest(call.__name__), self.assertRaises(jobq.UnknownJob) as caught:
                call("0000000000000001")
            self.assertEqual(caught.exception.code, "unknown_job")
        with self.assertRaises(jobq.BadRequest):
            self.client.status("not-a-job-id")

    def test_cancel_and_retry(self) -> None:
        job_id = self.client.enqueue("noop", self.shop(), max_attempts=2)
        with self.assertRaises(jobq.InvalidState) as caught:
            self.client.retry(job_id)
        self.assertEqual(caught.exception.code, "invalid_state")
        cancelled = self.client.cancel(job_id)
        self.assertEqual((cancelled.status, cancelled.error, cancelled.version), ("cancelled", "cancelled", 2))
        self.assertIsNotNone(cancelled.completed_at)
        self.assertTrue(cancelled.final)
        with self.assertRaises(jobq.InvalidState):
            self.client.cancel(job_id)
        retried = self.client.retry(job_id)
        self.assertEqual((retried.status, retried.max_attempts, retried.version), ("pending", 2, 3))
        self.assertIsNone(retried.completed_at)

    def test_bad_type_name(self) -> None:
        # Refused before sending...
        with self.assertRaises(jobq.BadRequest) as caught:
            self.client.enqueue("Scrape Reviews", self.shop())
        self.assertEqual(caught.exception.code, "bad_request")
        # ...as the broker refuses it, which a raw request shows.
        fields = {"type": "Scrape Reviews", "shop_id": self.shop()}
        with self.assertRaises(jobq.BadRequest) as caught:
            self.client._run(Call(p.Command.ENQUEUE, fields, dict))
        self.assertIn("field 'type'", caught.exception.message)

    def test_too_large_input(self) -> None:
        big = {"blob": "x" * 300_000}
        with self.assertRaises(jobq.TooLarge) as caught:
            self.client.enqueue("noop", self.shop(), big)
        self.assertEqual(caught.exception.code, "too_large")
        raw = {"type": "noop", "shop_id": self.shop(), "input": big}
        with self.assertRaises(jobq.TooLarge):
            self.client._run(Call(p.Command.ENQUEUE, raw, dict))
        self.assertEqual(list(self.client.list(self.shop())), [])

    def test_list_follows_the_cursor(self) -> None:
        ids = [self.client.enqueue("noop" if i % 2 else "export_data", self.shop()) for i in range(7)]
        newest_first = list(reversed(ids))
        page = self.client.list_page(self.shop(), limit=3)
        self.assertEqual([j.id for j in page.jobs], newest_first[:3])
        self.assertIsNotNone(page.next)
        self.assertIsNone(page.jobs[0].input)
        self.assertEqual([j.id for j in self.client.list(self.shop(), page_size=3)], newest_first)
        self.assertEqual([j.id for j in self.client.list(self.shop(), limit=5, page_size=2)], newest_first[:5])
        self.assertEqual(len(list(self.client.list(self.shop(), type="noop", page_size=2))), 3)
        self.client.cancel(ids[0])
        cancelled = list(self.client.list(self.shop(), status=jobq.Status.CANCELLED))
        self.assertEqual([j.id for j in cancelled], [ids[0]])
        last = self.client.list_page(self.shop(), limit=1000)
        self.assertIsNone(last.next)

    def test_stats(self) -> None:
        self.client.enqueue("stats_probe", self.shop())
        stats = self.client.stats()
        self.assertEqual(stats["counts"]["stats_probe"], {"pending": 1})
        self.assertEqual(list(stats["totals"]), list(p.STATES))
        self.assertGreaterEqual(stats["totals"]["pending"], 1)
        self.assertEqual(stats["workers"], [])
        self.assertIn("bad_request", stats["refused"])
        self.assertNotIn("rid", stats)


class UnknownTypes(unittest.TestCase):
    def test_a_broker_with_a_types_list(self) -> None:
        broker = harness.Broker("--types", "noop,sleep")
        self.addCleanup(broker.close)
        with broker.client() as client:
            client.enqueue("noop", "shop-1")
            with self.assertRaises(jobq.UnknownType) as caught:
                client.enqueue("scrape", "shop-1")
            self.assertEqual(caught.exception.code, "unknown_type")


class ResendsAndTimeouts(unittest.TestCase):
    def test_no_broker_means_no_reply(self) -> None:
        with jobq.Client(harness.endpoint(), timeout=0.2, retries=1) as client:
            started = time.monotonic()
            with self.assertRaises(jobq.NoReply) as caught:
                client.stats()
        self.assertIsInstance(caught.exception, jobq.Unavailable)
        self.assertEqual(caught.exception.code, "unavailable")
        self.assertGreaterEqual(time.monotonic() - started, 0.35)

    def test_a_resent_enqueue_makes_one_job(self) -> None:
        broker = harness.Broker()
        self.addCleanup(broker.close)
        proxy = harness.LossyProxy(broker.clients)
        self.addCleanup(proxy.close)
        with jobq.Client(proxy.endpoint, timeout=0.5, retries=2) as client:
            answer = client.enqueue_ex("noop", "shop-resend", {"n": 1})
        # The first reply was lost: the resent request (same bytes, so the
        # same rid and made-up key) was answered from the key.
        self.assertEqual(len(proxy.requests), 2)
        self.assertEqual(proxy.requests[0], proxy.requests[1])
        self.assertFalse(answer.created)
        with broker.client() as client:
            jobs = list(client.list("shop-resend"))
        self.assertEqual([j.id for j in jobs], [answer.id])


class LostReplies(unittest.TestCase):
    """CANCEL and RETRY whose first reply is lost (the broker committed, then
    restarted before replying): a resend would find the job changed."""

    broker: harness.Broker
    worker: harness.Process

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)
        cls.worker = harness.Process.c_worker(cls.broker, "--types", "noop")
        cls.addClassCleanup(cls.worker.close)

    def through(self, drop: p.Command, **options: object) -> tuple[harness.LossyProxy, jobq.Client]:
        proxy = harness.LossyProxy(self.broker.clients, drop=drop)
        self.addCleanup(proxy.close)
        options.setdefault("timeout", 0.5)
        options.setdefault("retries", 2)
        client = jobq.Client(proxy.endpoint, **options)  # type: ignore[arg-type]
        self.addCleanup(client.close)
        return proxy, client

    def test_a_cancel_whose_reply_was_lost_returns_the_cancelled_job(self) -> None:
        proxy, client = self.through(p.Command.CANCEL)
        with self.broker.client() as direct:
            job_id = direct.enqueue("unserved_type", "shop-lost")
        job = client.cancel(job_id)
        self.assertEqual((job.id, job.status, job.version), (job_id, jobq.Status.CANCELLED, 2))
        # The first CANCEL did it; the resend got invalid_state; STATUS told.
        C = p.Command
        self.assertEqual(proxy.commands(), [C.CANCEL, C.CANCEL, C.STATUS])

    def test_a_cancel_of_a_job_that_had_ended_still_raises_after_a_resend(self) -> None:
        _, client = self.through(p.Command.CANCEL)
        with self.broker.client() as direct:
            job_id = direct.enqueue("noop", "shop-lost")
            harness.wait_until(lambda: direct.status(job_id).final, what="the noop job to end")
        with self.assertRaises(jobq.InvalidState):
            client.cancel(job_id)

    def test_a_retry_is_sent_once(self) -> None:
        proxy, client = self.through(p.Command.RETRY, timeout=0.3, retries=2)
        with self.broker.client() as direct:
            job_id = direct.enqueue("unserved_type", "shop-lost", max_attempts=2)
            direct.cancel(job_id)
            started = time.monotonic()
            with self.assertRaises(jobq.NoReply) as caught:
                client.retry(job_id)
            # Waited as long as three tries would have, with one request.
            self.assertGreaterEqual(time.monotonic() - started, 0.85)
            self.assertEqual(proxy.commands(), [p.Command.RETRY])
            self.assertIn("may or may not have been applied", caught.exception.message)
            # It was applied: the reply alone was lost.
            job = direct.status(job_id)
        self.assertEqual((job.status, job.max_attempts), (jobq.Status.PENDING, 2))
        # Answered in time, it returns the new state as ever.
        with self.broker.client() as direct:
            direct.cancel(job_id)
            self.assertEqual(client.retry(job_id).status, jobq.Status.PENDING)


if __name__ == "__main__":
    unittest.main()
