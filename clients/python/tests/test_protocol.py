"""The encoding, the checks before sending, and the watch rules, without a
broker: bodies are compared byte for byte with PROTOCOL.md's worked examples
(section 14)."""

from __future__ import annotations

import subprocess
import sys
import time
import unittest
from datetime import datetime, timezone
from unittest import mock

import msgpack
import zmq

import harness

import jobq
from jobq import _protocol as p
from jobq import worker as worker_module
from jobq._transport import connect
from jobq._watch import WatchState
from jobq.processing import Report, ReportKind, RunningJob
from jobq.worker import _Session, _Stop

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


def _nested_entries(arrays: int, each: int) -> bytes:
    """A map of ``rid`` 1 and ``arrays`` keys, each an array of ``each``
    empty arrays: 1 + arrays * (each + 1) entries, about arrays * each bytes."""
    parts = [p.map_header(arrays + 1), msgpack.packb("rid"), b"\x01"]
    for i in range(arrays):
        parts += [msgpack.packb(f"k{i}"), p.array_header(each), b"\x90" * each]
    return b"".join(parts)


class DecodingLimits(unittest.TestCase):
    """Section 5.1's total of entries, held to what the broker sends."""

    def test_a_reply_may_hold_twice_as_many_entries_as_other_bodies(self) -> None:
        body = _nested_entries(7, 60_000)  # 420,007 entries, under 525,312
        self.assertIsNotNone(p.parse_answer([p.SIGNATURE, b"\x41", body]))
        self.assertIsNone(p.parse_answer([p.SIGNATURE, b"\x42", body]))
        self.assertIsNone(p.parse_message([p.SIGNATURE, b"\x12", body]))
        topic = p.topic("s", JOB_ID)
        self.assertIsNone(p.parse_event([topic, p.SIGNATURE, body], topic))
        self.assertEqual(p.count_entries(body, p.MAX_REPLY_ELEMENTS), 1 + 7 * 60_001)

    def test_a_reply_of_more_entries_is_refused_before_it_is_built(self) -> None:
        body = _nested_entries(32, 65_000)  # 2 MiB: 2,080,033 entries
        self.assertLessEqual(len(body), p.MAX_FRAME_BYTES)
        started = time.monotonic()
        self.assertIsNone(p.parse_answer([p.SIGNATURE, b"\x41", body]))
        self.assertLess(time.monotonic() - started, 2)
        with self.assertRaises(jobq.ProtocolError):
            p.unpack(_nested_entries(9, 65_535), p.MAX_REPLY_ELEMENTS)
        for bad in (b"\x92\xc0", b"\x91\xc1", b"\xdd\xff\xff\xff\xff"):
            with self.subTest(bad.hex()), self.assertRaises(jobq.ProtocolError):
                p.count_entries(bad, 10)

    def test_the_memory_it_costs_stays_small(self) -> None:
        # In a fresh process, so that the peak is this decode's alone: the
        # 2 MiB body of empty arrays cost ~140 MB when msgpack built it.
        code = (
            "import resource, sys, harness\n"
            "from jobq import _protocol as p\n"
            "from test_protocol import _nested_entries\n"
            "body = _nested_entries(32, 65000)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "assert p.parse_answer([p.SIGNATURE, b'\\x41', body]) is None\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=harness.TESTS_DIR, capture_output=True, text=True, timeout=60
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertLess(int(out.stdout), 20_000, "KiB of peak memory added by the decode")

    def test_a_job_larger_than_an_input_may_be_is_dropped(self) -> None:
        def job(blob: bytes) -> list[bytes]:
            fields = {"id": JOB_ID, "attempt": 1, "type": "t", "shop_id": "s", "input": {"b": blob}, "timeout": 0}
            return [p.SIGNATURE, b"\x21", p.encode_map(fields)]

        parsed = p.parse_message(job(b"x" * (p.MAX_INPUT_BYTES - 16)))
        assert parsed is not None
        self.assertEqual(parsed[0], p.Command.JOB)
        self.assertIsNone(p.parse_message(job(b"x" * (p.MAX_JOB_BODY_BYTES + 1))))


class HighWaterMarks(unittest.TestCase):
    """What a flooding broker can make ZeroMQ hold for us: every receive
    queue times the 2 MiB frame stays within 128 MiB."""

    BOUND = 128 << 20

    def assert_bounded(self, sock: zmq.Socket) -> None:
        self.assertLessEqual(sock.getsockopt(zmq.RCVHWM) * p.MAX_FRAME_BYTES, self.BOUND)
        self.assertGreater(sock.getsockopt(zmq.RCVHWM), 0)  # 0 is no limit at all

    def test_client_watch_and_worker_sockets(self) -> None:
        with jobq.Client(harness.endpoint()) as client:
            self.assert_bounded(client._sock)
        aclient = jobq.AsyncClient(harness.endpoint())
        self.assert_bounded(aclient._sock)
        aclient.close()
        sub = connect(zmq.Context.instance().socket(zmq.SUB), harness.endpoint(), None, subscribe=b"s/")
        self.assert_bounded(sub)
        sub.close(linger=0)
        worker = jobq.Worker(harness.endpoint(), name="hwm")
        session = _Session(worker)
        session._connect()
        assert session.sock is not None
        self.assert_bounded(session.sock)
        session.sock.close(linger=0)
        worker._outbox.close()


class WorkerKeepsBoundedResults(unittest.TestCase):
    """A broker that sends JOBs and never ACKs: the worker hands each back,
    and keeps at most MAX_HELD results for resending."""

    def session(self) -> tuple[_Session, list[tuple[int, bytes]]]:
        worker = jobq.Worker("tcp://127.0.0.1:1", name="w", concurrency=1)
        worker.processor("t")(lambda job: None)
        self.addCleanup(worker._outbox.close)
        session = _Session(worker)
        sent: list[tuple[int, bytes]] = []
        session._send_body = lambda cmd, body: sent.append((cmd, body)) or True  # type: ignore[method-assign]
        return session, sent

    @staticmethod
    def job(n: int) -> dict[str, object]:
        return {"id": f"{n:016x}", "attempt": 1, "type": "t", "shop_id": "s", "input": {}, "timeout": 0}

    def test_released_jobs_while_stopping(self) -> None:
        session, sent = self.session()
        session.stop = _Stop(jobs_until=0.0)
        with self.assertLogs("jobq.worker", "WARNING"):
            for n in range(1, 3001):
                session._on_job(self.job(n))
        self.assertEqual(len(session.unacked), p.MAX_HELD)
        self.assertEqual(session.unkept, 3000 - p.MAX_HELD)
        fails = [msgpack.unpackb(body) for cmd, body in sent if cmd == p.Command.FAIL]
        self.assertEqual(len(fails), 3000)  # every JOB was handed back at once
        self.assertTrue(all(f["released"] for f in fails))
        self.assertLessEqual(len(session._held_list()), p.MAX_HELD)

    def test_released_jobs_with_no_free_slot(self) -> None:
        session, sent = self.session()
        session._on_job(self.job(1))  # takes the one slot
        self.assertEqual(len(session.held), 1)
        with self.assertLogs("jobq.worker", "WARNING"):
            for n in range(2, 3002):
                session._on_job(self.job(n))
        self.assertEqual(len(session.held) + len(session.unacked), p.MAX_HELD)
        self.assertEqual(sum(cmd == p.Command.FAIL for cmd, _ in sent), 3000)

    def test_unacknowledged_results_past_their_bytes_stop_new_jobs(self) -> None:
        session, sent = self.session()
        with mock.patch.object(worker_module, "_UNACKED_BYTES", 1000):
            session._result((f"{1:016x}", 1), p.Command.COMPLETE, {"output": p.Raw(msgpack.packb({"b": b"x" * 2000}))})
            session._on_job(self.job(2))
            self.assertEqual(session.held, {})  # handed back, though a slot is free
            session._on_ack({"id": f"{1:016x}", "attempt": 1, "taken": True})
            self.assertEqual(session.unacked_bytes, sum(len(r.body) for r in session.unacked.values()))
            session._on_ack({"id": f"{2:016x}", "attempt": 1, "taken": True})
            self.assertEqual(session.unacked_bytes, 0)
            session._on_job(self.job(3))
            self.assertEqual(list(session.held), [(f"{3:016x}", 1)])


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

    def test_only_news_ends_the_silence(self) -> None:
        state = WatchState()
        state.snapshot(_job(3))
        state._quiet_since -= 5  # long silent
        self.assertEqual(state.event(_job(3)), (None, False))  # a repeat
        self.assertEqual(state.event(_job(2)), (None, False))  # stale
        self.assertTrue(state.silence_over())
        state._quiet_since -= 5
        state.event(_job(4))
        self.assertFalse(state.silence_over())

    def test_a_changed_wait_is_news_at_the_same_version(self) -> None:
        state = WatchState()
        state.snapshot(_job(1, "pending", {"reason": "no_worker", "until": None}))
        self.assertIsNone(state.snapshot(_job(1, "pending", {"reason": "no_worker", "until": None})))
        self.assertIsNotNone(state.snapshot(_job(1, "pending", {"reason": "queued", "until": None})))
        # An unknown reason counts as no wait (section 6).
        self.assertIsNone(_job(1, "pending", {"reason": "new_reason", "until": None}).wait)


if __name__ == "__main__":
    unittest.main()
