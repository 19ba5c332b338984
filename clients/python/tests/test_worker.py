"""jobq.Worker: Python processors, their progress and results, failures and
retries, cancellation, a worker killed mid-job, and a drain on SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
import unittest

import zmq

import harness

import jobq
from jobq import _protocol as p

LOST = {"worker unreachable", "worker lost (no heartbeat)", "lease expired (worker lost)"}


def start_worker(test: type[unittest.TestCase] | unittest.TestCase, worker: jobq.Worker) -> None:
    """Run worker on a thread until the test (or class) is over."""
    thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()

    def stop() -> None:
        worker.stop()
        thread.join(10)

    if isinstance(test, type):
        test.addClassCleanup(stop)
    else:
        test.addCleanup(stop)


class PythonProcessors(unittest.TestCase):
    broker: harness.Broker
    client: jobq.Client
    started: dict[str, threading.Event]
    saw_cancel: dict[str, bool]

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)
        cls.client = cls.broker.client()
        cls.addClassCleanup(cls.client.close)
        cls.started, cls.saw_cancel = {}, {}
        worker = jobq.Worker(cls.broker.workers, name="py-test", concurrency=3, heartbeat=0.25, broker_timeout=2)

        @worker.processor("py_steps")
        def steps(job: jobq.RunningJob) -> dict[str, object]:
            for page in (1, 2, 3):
                job.sleep(0.2)
                job.progress(page * 100 // 3, f"page {page} of 3")
            return {"pages": 3, "shop": job.shop_id, "input": job.input}

        @worker.processor("py_flaky")
        def flaky(job: jobq.RunningJob) -> dict[str, object]:
            if job.attempt <= job.input["fail_times"]:
                raise ValueError(f"bad page {job.attempt}")
            return {"attempt": job.attempt}

        @worker.processor("py_permanent")
        def permanent(job: jobq.RunningJob) -> None:
            raise jobq.PermanentError("gone for good")

        @worker.processor("py_until_cancelled")
        def until_cancelled(job: jobq.RunningJob) -> None:
            cls.started.setdefault(job.id, threading.Event()).set()
            job.cancel_event.wait(10)
            cls.saw_cancel[job.id] = job.cancelled
            job.check_cancelled()

        @worker.processor("py_huge_output")
        def huge_output(job: jobq.RunningJob) -> dict[str, object]:
            return {"blob": "x" * (1 << 20)}

        start_worker(cls, worker)

    def final(self, job_id: str) -> jobq.Job:
        return list(self.client.watch(job_id, timeout=20))[-1]

    def test_progress_and_result_reach_the_client(self) -> None:
        job_id = self.client.enqueue("py_steps", "shop-py", {"q": "shoes"})
        states = list(self.client.watch(job_id, timeout=20))
        final = states[-1]
        self.assertEqual(final.status, jobq.Status.COMPLETED)
        self.assertEqual(final.output, {"pages": 3, "shop": "shop-py", "input": {"q": "shoes"}})
        messages = [s.message for s in states[:-1] if s.message]
        self.assertGreaterEqual(len(messages), 2, messages)
        self.assertEqual(messages, sorted(messages))
        progress = [s.progress for s in states]
        self.assertEqual(progress, sorted(progress))
        self.assertIn("py-test", {s.worker for s in states if s.status == "running"})

    def test_an_exception_fails_the_attempt_and_it_is_retried(self) -> None:
        final = self.final(self.client.enqueue("py_flaky", "shop-py", {"fail_times": 1}))
        self.assertEqual((final.status, final.attempts, final.output), ("completed", 2, {"attempt": 2}))
        assert final.errors is not None
        self.assertEqual([(e.attempt, e.error) for e in final.errors], [(1, "ValueError: bad page 1")])

        final = self.final(self.client.enqueue("py_flaky", "shop-py", {"fail_times": 9}, max_attempts=2))
        self.assertEqual((final.status, final.attempts, final.error), ("failed", 2, "ValueError: bad page 2"))
        assert final.errors is not None
        self.assertEqual(len(final.errors), 2)

    def test_a_permanent_error_fails_for_good(self) -> None:
        final = self.final(self.client.enqueue("py_permanent", "shop-py", max_attempts=3))
        self.assertEqual((final.status, final.attempts, final.error), ("failed", 1, "gone for good"))

    def test_an_output_too_large_fails_for_good(self) -> None:
        final = self.final(self.client.enqueue("py_huge_output", "shop-py"))
        self.assertEqual((final.status, final.attempts), ("failed", 1))
        assert final.error is not None
        self.assertTrue(final.error.startswith("processor output:"), final.error)

    def test_cancellation_reaches_a_running_job(self) -> None:
        job_id = self.client.enqueue("py_until_cancelled", "shop-py")
        harness.wait_until(lambda: job_id in self.started, what="the job to start")
        self.assertEqual(self.client.cancel(job_id).status, jobq.Status.CANCELLED)
        harness.wait_until(lambda: job_id in self.saw_cancel, 5, "the processor to stop")
        self.assertTrue(self.saw_cancel[job_id])
        # The worker reported the attempt: its slot is free again.
        harness.wait_until(lambda: self.client.stats()["busy"] == 0, 5, "the slot to be freed")
        job = self.client.status(job_id)
        self.assertEqual((job.status, job.error, job.attempts), ("cancelled", "cancelled", 1))


class WorkerProcesses(unittest.TestCase):
    def setUp(self) -> None:
        self.broker = harness.Broker()
        self.addCleanup(self.broker.close)
        self.client = self.broker.client()
        self.addCleanup(self.client.close)

    def running(self, job_id: str, worker: str) -> jobq.Job:
        def check() -> jobq.Job | None:
            job = self.client.status(job_id)
            return job if job.worker == worker and job.progress > 0 else None

        return harness.wait_until(check, 10, f"the job to run on {worker}")

    def test_a_killed_worker_s_job_runs_again_and_its_late_result_is_fenced(self) -> None:
        victim = harness.Process.py_worker(self.broker, "victim")
        self.addCleanup(victim.close)
        job_id = self.client.enqueue("py_sleep", "shop-k", {"ms": 30_000, "steps": 300})
        self.running(job_id, "victim")
        victim.signal(signal.SIGKILL)
        victim.wait(5)

        rescuer = jobq.Worker(self.broker.workers, name="rescuer", heartbeat=0.25, broker_timeout=2)
        rescuer.processor("py_sleep")(lambda job: {"by": "rescuer", "attempt": job.attempt})
        start_worker(self, rescuer)
        final = list(self.client.watch(job_id, timeout=20))[-1]
        self.assertEqual((final.status, final.attempts), ("completed", 2))
        self.assertEqual(final.output, {"by": "rescuer", "attempt": 2})
        assert final.errors is not None
        self.assertEqual(final.errors[0].attempt, 1)
        self.assertIn(final.errors[0].error, LOST)

        # The old attempt's result, arriving late under the victim's name:
        # acknowledged as not taken, and the job does not change.
        ack = self.send_late_result(job_id, attempt=1, worker=b"victim")
        self.assertEqual((ack["id"], ack["attempt"], ack.get("taken")), (job_id, 1, False))
        after = self.client.status(job_id)
        self.assertEqual((after.version, after.output), (final.version, final.output))

    def send_late_result(self, job_id: str, attempt: int, worker: bytes) -> dict[str, object]:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        self.addCleanup(sock.close, 0)
        sock.setsockopt(zmq.ROUTING_ID, worker)
        sock.connect(self.broker.workers)
        body = p.encode_map({"id": job_id, "attempt": attempt, "output": {"late": True}})
        sock.send_multipart([p.SIGNATURE, p.Command.COMPLETE.frame, body])
        for _ in range(10):
            if not sock.poll(5000):
                break
            parsed = p.parse_message(sock.recv_multipart())
            if parsed is not None and parsed[0] == p.Command.ACK:
                return parsed[1]
        self.fail("no ACK for the late result")

    def test_a_result_made_while_the_broker_is_down_is_sent_again(self) -> None:
        worker = harness.Process.py_worker(self.broker, "keeper")
        self.addCleanup(worker.close)
        job_id = self.client.enqueue("py_sleep", "shop-r", {"ms": 1000, "steps": 4})
        self.running(job_id, "keeper")
        self.broker.kill()
        time.sleep(1.5)  # the job ends meanwhile: its result waits for an ACK
        self.broker.start()
        final = list(self.client.watch(job_id, timeout=20))[-1]
        self.assertEqual((final.status, final.attempts, final.errors), ("completed", 1, []))
        self.assertEqual(final.output, {"slept_ms": 1000, "pid": worker.pid, "worker": "keeper"})

    def test_sigterm_drains_the_running_job(self) -> None:
        worker = harness.Process.py_worker(self.broker, "drainer")
        self.addCleanup(worker.close)
        job_id = self.client.enqueue("py_sleep", "shop-d", {"ms": 1500, "steps": 5})
        self.running(job_id, "drainer")
        signalled = time.time()
        worker.signal(signal.SIGTERM)

        def draining() -> bool:
            return any(w["name"] == "drainer" and w["capacity"] == 0 for w in self.client.stats()["workers"])

        harness.wait_until(draining, 5, "the worker to tell the broker it drains")
        late = self.client.enqueue("py_sleep", "shop-d", {"ms": 100, "steps": 1})
        self.assertEqual(worker.wait(15), 0)
        job = self.client.status(job_id)
        self.assertEqual((job.status, job.attempts), ("completed", 1))
        assert job.completed_at is not None
        self.assertGreater(job.completed_at.timestamp(), signalled, "it finished its job after the signal")
        self.assertEqual(job.output, {"slept_ms": 1500, "pid": worker.pid, "worker": "drainer"})
        self.assertEqual(self.client.status(late).status, "pending", "a draining worker takes no job")


if __name__ == "__main__":
    unittest.main()
