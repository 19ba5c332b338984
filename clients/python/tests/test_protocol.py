"""The encoding, the checks before sending, and the watch rules, without a
broker: bodies are compared byte for byte with PROTOCOL.md's worked examples
(section 14)."""

from __future__ import annotations

import unittest
from datetime import datetime, timezone

import harness  # noqa: F401  (puts jobq on the path)

import jobq
from jobq import _protocol as p
from jobq._watch import WatchState
from jobq.processing import Report, ReportKind, RunningJob
from jobq.worker import _Session

# Section 14's bodies, as hex.
ENQUEUE_14_1 = (
    "89a372696401a474797065ae7363726170655f72657669657773a773686f705f6964a773686f702d3432"
    "a5696e70757482a375726cb868747470733a2f2f6578616d706c652e636f6d2f702f3137a57061676573"
    "03a87072696f7269747905a564656c617900ac6d61785f617474656d70747303a774696d656f7574ce00"
    "0927c0a36b6579a86f726465722d3137"
)
ERROR_14_2 = (
    "83a372696402a4636f6465ab6261645f72657175657374a76d657373616765d9256669656c6420277479"
    "7065273a2075736520312d3634206f66205b612d7a302d395f2e2d5d"
)
READY_14_3 = (
    "84a46a6f627390a5747970657392ae7363726170655f72657669657773ab6578706f72745f64617461a8"
    "636170616369747904a46e616d65a9776f726b65722d6131"
)
PROGRESS_14_5 = (
    "84a26964b030313962373936646436376230303030a7617474656d707401a870726f677265737328a76d"
    "657373616765ab706167652032206f662033"
)
HEARTBEAT_14_5 = (
    "81a46a6f627391" "82a26964b030313962373936646436376230303030a7617474656d707401"
)
EVENT_14_6 = (
    "de0015a26964b030313962373936646436376230303030a474797065ae7363726170655f726576696577"
    "73a6737461747573a772756e6e696e67a773686f705f6964a773686f702d3432a870726f677265737328"
    "a76d657373616765ab706167652032206f662033a56572726f72c0a8617474656d70747301ac6d61785f"
    "617474656d70747303a87072696f7269747905a672756e5f6174cf0000019b796dd67ba774696d656f75"
    "74ce000927c0a36b6579a86f726465722d3137aa637265617465645f6174cf0000019b796dd67baa7570"
    "64617465645f6174cf0000019b796de6e3aa737461727465645f6174cf0000019b796dd680ac636f6d70"
    "6c657465645f6174c0a6776f726b6572a9776f726b65722d6131ab6c656173655f756e74696ccf000001"
    "9b796e217ba776657273696f6e03a3736571cd0417"
)
JOB_ID = "019b796dd67b0000"


class WorkedExamples(unittest.TestCase):
    def test_enqueue_body_is_byte_for_byte_14_1(self) -> None:
        spec = jobq.JobSpec(
            "scrape_reviews",
            "shop-42",
            {"url": "https://example.com/p/17", "pages": 3},
            priority=5,
            timeout_ms=600_000,
            key="order-17",
        )
        fields, _ = p.enqueue_fields(spec, spec.key, p.MAX_MAP_DEPTH)
        self.assertEqual(p.encode_map({"rid": 1, **fields}).hex(), ENQUEUE_14_1)

    def test_error_14_2_is_a_bad_request_with_its_rid(self) -> None:
        answer = p.parse_answer([p.SIGNATURE, b"\x42", bytes.fromhex(ERROR_14_2)])
        assert answer is not None
        self.assertEqual(answer.rid, 2)
        with self.assertRaises(jobq.BadRequest) as caught:
            answer.result()
        self.assertEqual(caught.exception.code, "bad_request")
        self.assertIn("field 'type'", caught.exception.message)

    def test_answers_of_another_version_are_not_read(self) -> None:
        body = bytes.fromhex(ERROR_14_2)
        self.assertIsNone(p.parse_answer([b"JOBQ\x02", b"\x42", body]))
        self.assertIsNone(p.parse_answer([p.SIGNATURE, b"\x42"]))
        self.assertIsNone(p.parse_answer([p.SIGNATURE, b"\x42", b"\xc1"]))

    def test_event_14_6_reads_as_a_job(self) -> None:
        topic = p.topic("shop-42", JOB_ID)
        job = p.parse_event([topic, p.SIGNATURE, bytes.fromhex(EVENT_14_6)], topic)
        assert job is not None
        self.assertEqual((job.id, job.status, job.progress, job.message), (JOB_ID, "running", 40, "page 2 of 3"))
        self.assertEqual((job.version, job.seq, job.attempts, job.timeout_ms), (3, 1047, 1, 600_000))
        self.assertEqual(job.created_at, datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=timezone.utc))
        self.assertIsNone(job.completed_at)
        self.assertEqual(job.worker, "worker-a1")
        self.assertIsNone(job.output)
        self.assertFalse(job.final)
        self.assertIsNone(p.parse_event([b"shop-42/other", p.SIGNATURE, bytes.fromhex(EVENT_14_6)], topic))

    def test_worker_messages_are_byte_for_byte_14_3_and_14_5(self) -> None:
        worker = jobq.Worker("tcp://127.0.0.1:1", name="worker-a1", concurrency=4)
        worker.processor("scrape_reviews")(lambda job: None)
        worker.processor("export_data")(lambda job: None)
        session = _Session(worker)
        sent: list[tuple[int, str]] = []
        session._send_body = lambda cmd, body: sent.append((cmd, body.hex())) or True  # type: ignore[method-assign]
        session._ready()
        session._from_slot(Report((JOB_ID, 1), ReportKind.PROGRESS, percent=40, text="page 2 of 3"))
        session.held[(JOB_ID, 1)] = RunningJob(JOB_ID, 1, "scrape_reviews", "shop-42", {}, 0, worker._outbox)
        session._send(p.Command.HEARTBEAT, {"jobs": session._held_list()})
        self.assertEqual(
            sent,
            [
                (p.Command.READY, READY_14_3),
                (p.Command.PROGRESS, PROGRESS_14_5),
                (p.Command.HEARTBEAT, HEARTBEAT_14_5),
            ],
        )
        worker._outbox.close()


class ChecksBeforeSending(unittest.TestCase):
    def fields(self, **kw: object) -> dict[str, object]:
        spec = jobq.JobSpec(**{"type": "noop", "shop_id": "shop-1", **kw})  # type: ignore[arg-type]
        return p.enqueue_fields(spec, spec.key, p.MAX_MAP_DEPTH)[0]

    def test_names(self) -> None:
        with self.assertRaises(jobq.BadRequest):
            self.fields(type="Scrape")
        with self.assertRaises(jobq.TooLarge):
            self.fields(type="a" * 65)
        self.fields(type="a" * 64)
        with self.assertRaises(jobq.BadRequest):
            self.fields(shop_id="shop/42")
        with self.assertRaises(jobq.TooLarge):
            self.fields(shop_id="s" * 129)

    def test_ranges(self) -> None:
        for bad in ({"priority": 1001}, {"priority": 1.5}, {"delay_ms": -1}, {"max_attempts": 0}):
            with self.subTest(bad), self.assertRaises(jobq.BadRequest):
                self.fields(**bad)
        with self.assertRaises(jobq.BadRequest):
            self.fields(timeout_ms=p.MAX_TIMEOUT_MS + 1)
        with self.assertRaises(jobq.BadRequest):
            self.fields(key="")
        with self.assertRaises(jobq.TooLarge):
            self.fields(key="k" * 256)

    def test_input(self) -> None:
        with self.assertRaises(jobq.TooLarge) as caught:
            self.fields(input={"blob": "x" * (256 << 10)})
        self.assertIn("input", caught.exception.message)
        self.fields(input={"blob": "x" * ((256 << 10) - 100)})
        with self.assertRaises(jobq.BadRequest):
            self.fields(input={1: "integer key"})
        with self.assertRaises(jobq.BadRequest):
            self.fields(input={"nested": {"deeper": {2: 3}}})
        with self.assertRaises(jobq.BadRequest):
            self.fields(input=["not", "a", "map"])
        with self.assertRaises(jobq.BadRequest):
            self.fields(input={"when": datetime.now()})

    def test_nesting(self) -> None:
        def nest(levels: int) -> dict[str, object]:
            value: dict[str, object] = {}
            for _ in range(levels - 1):
                value = {"a": value}
            return value

        self.fields(input=nest(14))
        with self.assertRaises(jobq.TooLarge):
            self.fields(input=nest(15))
        specs = [jobq.JobSpec("noop", "s", nest(13))]
        p.batch_jobs(specs, [None])
        with self.assertRaises(jobq.TooLarge) as caught:
            p.batch_jobs([specs[0], jobq.JobSpec("noop", "s", nest(14))], [None, None])
        self.assertTrue(caught.exception.message.startswith("jobs[1]: "))

    def test_batch_size(self) -> None:
        with self.assertRaises(jobq.BadRequest):
            p.batch_jobs([], [])
        with self.assertRaises(jobq.TooLarge):
            p.batch_jobs([jobq.JobSpec("noop", "s")] * 1001, [None] * 1001)

    def test_request_frame_size(self) -> None:
        with self.assertRaises(jobq.TooLarge):
            p.frames(p.Command.ENQUEUE, b"\x80" * ((2 << 20) + 1))

    def test_job_ids_and_list_filters(self) -> None:
        for bad in ("019B796DD67B0000", "019b796dd67b000", 17):
            with self.subTest(bad), self.assertRaises(jobq.BadRequest):
                p.check_job_id(bad)
        with self.assertRaises(jobq.BadRequest):
            p.list_fields(None, None, "done", 10, None)
        with self.assertRaises(jobq.BadRequest):
            p.list_fields(None, None, None, 1001, None)
        self.assertEqual(p.list_fields("s", None, jobq.Status.FAILED, 10, None)["status"], "failed")


def _job(version: int, status: str = "running", wait: dict[str, object] | None = None) -> jobq.Job:
    m: dict[str, object] = {"id": JOB_ID, "type": "t", "status": status, "shop_id": "s", "version": version}
    if wait is not None:
        m["wait"] = wait
    return jobq.Job.from_map(m)


class WatchRules(unittest.TestCase):
    def test_only_newer_versions_are_news(self) -> None:
        state = WatchState()
        self.assertIsNotNone(state.snapshot(_job(3)))
        self.assertEqual(state.event(_job(3)), (None, False))
        self.assertEqual(state.event(_job(2)), (None, False))
        news, resync = state.event(_job(4))
        self.assertEqual((news and news.version, resync), (4, False))

    def test_a_gap_asks_for_a_snapshot(self) -> None:
        state = WatchState()
        state.snapshot(_job(3))
        news, resync = state.event(_job(6))
        self.assertEqual((news and news.version, resync), (6, True))

    def test_an_ending_is_read_with_status(self) -> None:
        state = WatchState()
        state.snapshot(_job(3))
        self.assertEqual(state.event(_job(4, "completed")), (None, True))
        self.assertEqual(state.event(_job(3, "completed")), (None, False))
        self.assertIsNotNone(state.snapshot(_job(4, "completed")))
        self.assertTrue(state.done)

    def test_a_changed_wait_is_news_at_the_same_version(self) -> None:
        state = WatchState()
        state.snapshot(_job(1, "pending", {"reason": "no_worker", "until": None}))
        self.assertIsNone(state.snapshot(_job(1, "pending", {"reason": "no_worker", "until": None})))
        self.assertIsNotNone(state.snapshot(_job(1, "pending", {"reason": "queued", "until": None})))
        # An unknown reason counts as no wait (section 6).
        self.assertIsNone(_job(1, "pending", {"reason": "new_reason", "until": None}).wait)


if __name__ == "__main__":
    unittest.main()
