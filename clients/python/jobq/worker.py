"""The worker runtime: Python processors serving a jobq broker.

One thread (the one calling :meth:`Worker.run`) owns the DEALER to the
broker: it registers (READY), sends heartbeats with the attempts it holds,
hands JOBs to the slot threads, sends their progress and results, keeps each
result until its ACK, and reconnects when the broker falls silent
(PROTOCOL.md section 9). Processors run on ``concurrency`` slot threads.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Mapping

import zmq

from . import _protocol as p
from ._protocol import Command
from ._transport import WORKER_HWM, connect
from .curve import CurveKeys
from .errors import Forbidden
from .processing import Outbox, Processor, Report, ReportKind, RunningJob, run

__all__ = ["Worker"]

log = logging.getLogger("jobq.worker")

DEFAULT_WORKERS = "tcp://127.0.0.1:5556"
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,64}\Z")
_POLL_S = 0.2  # the longest wait: a stop request is seen this soon
_LAST_WORDS_S = 1.0  # time cancelled jobs get to report, after the grace
# Results kept for their ACK (9.12), at most: p.MAX_HELD of them (the most a
# heartbeat's job list holds, 9.3), together with the attempts held, and
# this many bytes. A broker that sends JOBs but never ACKs would otherwise
# make the worker keep a released FAIL for every JOB it sends, and a result
# (up to 1 MiB) for every job it runs, without end.
_UNACKED_BYTES = 64 << 20


def _default_name() -> str:
    host = re.sub(r"[^\x21-\x7e]", "_", socket.gethostname())[:24] or "host"
    return f"py-{host}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class _Stop:
    """How far a stopping worker is."""

    jobs_until: float  # the end of the grace, then of the last moment
    hard: bool = False  # asked twice: no grace
    cancelled_all: bool = False  # the running jobs were asked to stop
    acks_until: float = 0.0  # how long to wait for ACKs and the echo


@dataclass
class _Unacked:
    """A result sent and not yet acknowledged."""

    cmd: Command
    body: bytes
    sent_at: float


class Worker:
    """Runs Python processors for a jobq broker.

    ``name`` is the worker's routing id: 1 to 64 printable ASCII characters,
    unique among the broker's workers; keep it across restarts so the broker
    hands back the leases of a worker that comes back (default: made up).
    ``concurrency`` jobs run at once, each on its own thread; ``prefetch``
    more may wait for a free thread. ``heartbeat`` and ``broker_timeout``
    are seconds: the worker reconnects after that much broker silence.
    On stop, running jobs get ``grace`` seconds to finish before they are
    cancelled.

    Register processors with :meth:`processor`, then call :meth:`run`.
    """

    def __init__(
        self,
        broker: str = DEFAULT_WORKERS,
        name: str | None = None,
        concurrency: int = 4,
        *,
        prefetch: int = 0,
        heartbeat: float = 1.0,
        broker_timeout: float = 5.0,
        grace: float = 10.0,
        curve: CurveKeys | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        self.name = _default_name() if name is None else name
        if not _PRINTABLE.match(self.name):
            raise ValueError("worker name: 1 to 64 printable ASCII characters, no spaces")
        if not 1 <= concurrency or concurrency + prefetch > p.MAX_CAPACITY or prefetch < 0:
            raise ValueError(f"concurrency 1 or more, prefetch 0 or more, {p.MAX_CAPACITY} in all at most")
        if heartbeat <= 0 or broker_timeout <= heartbeat or grace < 0:
            raise ValueError("heartbeat > 0, broker_timeout > heartbeat and grace >= 0 are required")
        self.broker = broker
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.heartbeat = heartbeat
        self.broker_timeout = broker_timeout
        self.grace = grace
        self.curve = curve
        self._ctx = context or zmq.Context.instance()
        self._processors: dict[str, Processor] = {}
        self._stop = threading.Event()
        self._hard_stop = threading.Event()
        self._outbox = Outbox()
        self._started = False

    @property
    def types(self) -> list[str]:
        """The job types this worker runs."""
        return list(self._processors)

    def processor(self, type: str) -> Callable[[Processor], Processor]:
        """Register the decorated function as the processor of ``type``.

        It gets a :class:`jobq.RunningJob` and returns the output dict (or
        None for ``{}``). An exception fails the attempt, which the broker
        retries while attempts are left (:class:`jobq.JobFailure` gives the
        error text as is); :class:`jobq.PermanentError` fails the job for good.
        """
        p.check_type(type)
        if type in self._processors:
            raise ValueError(f"a processor for {type!r} is registered already")
        if len(self._processors) == p.MAX_WORKER_TYPES:
            raise ValueError(f"a worker runs at most {p.MAX_WORKER_TYPES} types")

        def register(fn: Processor) -> Processor:
            self._processors[type] = fn
            return fn

        return register

    def run(self, *, handle_signals: bool = True) -> None:
        """Serve the broker until :meth:`stop` (or SIGTERM/SIGINT, when
        ``handle_signals`` and called from the main thread). Then take no new
        jobs, hand queued ones back, let running ones finish within the
        grace, and wait for the broker to acknowledge their results.

        A second stop (or signal) cuts the grace short. Raises
        :class:`jobq.Forbidden` if the broker's keys refuse this worker.
        A worker runs once.
        """
        if not self._processors:
            raise ValueError("no processor registered")
        if self._started:
            raise RuntimeError("a worker runs once")
        self._started = True
        restore = self._install_signal_handlers() if handle_signals else {}
        try:
            _Session(self).run()
        finally:
            for signum, handler in restore.items():
                signal.signal(signum, handler)
            self._outbox.close()

    def stop(self, *, hard: bool = False) -> None:
        """Ask :meth:`run` to stop (from any thread). ``hard``, or a second
        call, does not wait for running jobs."""
        if hard or self._stop.is_set():
            self._hard_stop.set()
        self._stop.set()
        self._outbox.wake()

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stop()

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def __repr__(self) -> str:
        return f"Worker(broker={self.broker!r}, name={self.name!r}, types={self.types})"


class _Session:
    """One run of a worker: its socket, the attempts it holds, its results."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.capacity = worker.concurrency + worker.prefetch
        self.sock: zmq.Socket | None = None
        self.poller = zmq.Poller()
        self.poller.register(worker._outbox.fileno(), zmq.POLLIN)
        # Attempts held: queued or running, result not yet read.
        self.held: dict[tuple[str, int], RunningJob] = {}
        self.unacked: dict[tuple[str, int], _Unacked] = {}
        self.unacked_bytes = 0
        self.unkept = 0  # released FAILs sent without keeping them (the cap)
        self.dropped = 0  # messages from the broker that could not be read
        self.jobs: queue.SimpleQueue[RunningJob | None] = queue.SimpleQueue()
        self.draining = False
        self.echo = 0
        self.echoed = False
        self.refused: str | None = None
        self.stop: _Stop | None = None
        self.last_heard = self.next_heartbeat = 0.0

    # --- the loop -------------------------------------------------------------

    def run(self) -> None:
        slots = [
            threading.Thread(target=self._slot, name=f"jobq-slot-{i}", daemon=True)
            for i in range(self.w.concurrency)
        ]
        for t in slots:
            t.start()
        try:
            self._loop()
        finally:
            for job in self.held.values():
                job.cancel_event.set()
            for _ in slots:
                self.jobs.put(None)
            if self.sock is not None:
                # Results already queued for the broker get a moment to leave.
                self.sock.close(linger=1000)

    def _loop(self) -> None:
        w = self.w
        self._connect()
        while not self._stopped(time.monotonic()):
            now = time.monotonic()
            self._resend(older_than=now - w.broker_timeout / 2)
            if now >= self.next_heartbeat:
                self._send(Command.HEARTBEAT, {"jobs": self._held_list()})
                self.next_heartbeat = now + w.heartbeat
            if now - self.last_heard > w.broker_timeout:
                log.warning("broker silent for %.1f s, reconnecting", w.broker_timeout)
                self._connect()
            wait = max(0.0, min(self.next_heartbeat - now, _POLL_S))
            ready = dict(self.poller.poll(int(wait * 1000) + 1))
            if self.sock in ready:
                for _ in range(64):  # bounded work per turn
                    if not self._from_broker():
                        break
            if w._outbox.fileno() in ready:
                for report in w._outbox.take():
                    self._from_slot(report)
            if self.refused is not None:
                raise Forbidden(self.refused)

    def _stopped(self, now: float) -> bool:
        """Whether a stop is asked for and done: no attempt held (the grace
        over, the running ones cancelled and given a last moment), every
        result acknowledged, and the echo of the draining READY back, so
        that no JOB is on its way (9.2); or the broker silent too long."""
        w, stop = self.w, self.stop
        if stop is None:
            if not w._stop.is_set():
                return False
            stop = self.stop = _Stop(jobs_until=now + w.grace)
            self._drain()
        if w._hard_stop.is_set() and not stop.hard:
            stop.hard, stop.jobs_until = True, now
            if stop.acks_until:
                stop.acks_until = min(stop.acks_until, now + _LAST_WORDS_S)
        if self.held and not stop.cancelled_all and now >= stop.jobs_until:
            # The grace is over: ask the running jobs to stop, and give them
            # a moment to report, so the broker can retry them at once.
            for job in self.held.values():
                job.cancel_event.set()
            stop.cancelled_all, stop.jobs_until = True, now + _LAST_WORDS_S
        if self.held and not (stop.cancelled_all and now >= stop.jobs_until):
            return False
        if not self.unacked and (self.echoed or stop.hard):
            return True
        if not stop.acks_until:
            stop.acks_until = now + (_LAST_WORDS_S if stop.hard else w.broker_timeout)
        if now < stop.acks_until:
            return False
        log.warning(
            "stopping without word from the broker: %d result(s) unacknowledged, "
            "a JOB it sent last may wait for its lease to end",
            len(self.unacked),
        )
        return True

    def _slot(self) -> None:
        while (job := self.jobs.get()) is not None:
            if job._start():
                log.info("job %s %s attempt %d started", job.id, job.type, job.attempt)
                self.w._outbox.put(run(job, self.w._processors.get(job.type)))

    # --- to the broker ----------------------------------------------------------

    def _connect(self) -> None:
        """A new DEALER under the same name (the old one closed first, 9.1),
        READY, and every unacknowledged result again."""
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close(linger=0)
        self.sock = connect(
            self.w._ctx.socket(zmq.DEALER),
            self.w.broker,
            self.w.curve,
            routing_id=self.w.name.encode(),
            receive_hwm=WORKER_HWM,
        )
        self.poller.register(self.sock, zmq.POLLIN)
        self.last_heard = time.monotonic()
        self._ready()
        self._resend()

    def _send(self, cmd: Command, fields: Mapping[str, Any]) -> None:
        self._send_body(cmd, p.encode_map(fields))

    def _send_body(self, cmd: Command, body: bytes) -> bool:
        assert self.sock is not None
        try:
            self.sock.send_multipart([p.SIGNATURE, cmd.frame, body], flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False  # results are sent again; the rest is not worth waiting for

    def _held_list(self) -> list[dict[str, Any]]:
        """The attempts held, and the ones whose result waits for its ACK (9.3)."""
        keys = list(self.held) + [k for k in self.unacked if k not in self.held]
        return [{"id": i, "attempt": a} for i, a in keys[: p.MAX_HELD]]

    def _ready(self) -> None:
        fields: dict[str, Any] = {
            "jobs": self._held_list(),
            "types": self.w.types,
            # 0 while draining: the broker keeps our leases, sends no JOB.
            "capacity": 0 if self.draining else self.capacity,
            "name": self.w.name,
        }
        if self.draining:
            # Its echo comes back after every JOB sent before this READY.
            self.echo += 1
            self.echoed = False
            fields["echo"] = self.echo
        self._send(Command.READY, fields)

    def _drain(self) -> None:
        """Stop taking jobs, and hand back the ones that have not started."""
        self.draining = True
        self._ready()
        for key, job in list(self.held.items()):
            if job._drop():
                del self.held[key]
                self._fail_unstarted(key, "worker shutting down", released=True)

    def _result(self, key: tuple[str, int], cmd: Command, fields: Mapping[str, Any], *, keep: bool = True) -> None:
        """Send a result and, if ``keep``, keep it until its ACK (9.12)."""
        body = p.encode_map(fields)
        if keep:
            self._forget(key)
            self.unacked[key] = _Unacked(cmd, body, time.monotonic())
            self.unacked_bytes += len(body)
        self._send_body(cmd, body)

    def _forget(self, key: tuple[str, int]) -> bool:
        """Drop the result kept for key; whether there was one."""
        result = self.unacked.pop(key, None)
        if result is None:
            return False
        self.unacked_bytes -= len(result.body)
        return True

    def _full(self) -> bool:
        """Whether the attempts held and the results kept are at their cap."""
        return len(self.held) + len(self.unacked) >= p.MAX_HELD

    def _resend(self, older_than: float = float("inf")) -> None:
        now = time.monotonic()
        for result in self.unacked.values():
            if result.sent_at <= older_than and self._send_body(result.cmd, result.body):
                result.sent_at = now

    def _fail_unstarted(self, key: tuple[str, int], why: str, *, released: bool, keep: bool = True) -> None:
        """Report an attempt that never ran: handed back (``released``: it
        does not count) or cancelled before it started."""
        fields: dict[str, Any] = {
            "id": key[0],
            "attempt": key[1],
            "error": why,
            "permanent": False,
            "cancelled": not released,
        }
        if released:
            fields["released"] = True
        self._result(key, Command.FAIL, fields, keep=keep)

    def _release(self, key: tuple[str, int], why: str) -> None:
        """Hand a JOB back at once (FAIL ``released``, 9.6). At the cap of
        kept results the FAIL is sent once and not kept: should it be lost,
        the broker ends the attempt when the job lists leave it out ("worker
        does not hold the job", 9.3) and retries it while attempts are left."""
        if not self._full():
            self._fail_unstarted(key, why, released=True)
            return
        self.unkept += 1
        if self.unkept % 1000 == 1:
            log.warning(
                "%d result(s) await an ACK: JOBs are handed back without keeping "
                "their FAIL (%d so far); is the broker acknowledging results?",
                len(self.unacked),
                self.unkept,
            )
        self._fail_unstarted(key, why, released=True, keep=False)

    def _from_slot(self, report: Report) -> None:
        job_id, attempt = report.key
        if report.kind is ReportKind.PROGRESS:
            self._send(
                Command.PROGRESS,
                {"id": job_id, "attempt": attempt, "progress": report.percent, "message": report.text},
            )
            return
        if report.kind is ReportKind.COMPLETE:
            fields = {"id": job_id, "attempt": attempt, "output": p.Raw(report.output)}
            self._result(report.key, Command.COMPLETE, fields)
        else:
            fields = {
                "id": job_id,
                "attempt": attempt,
                "error": report.text,
                "permanent": report.permanent,
                "cancelled": report.cancelled,
            }
            self._result(report.key, Command.FAIL, fields)
        self.held.pop(report.key, None)
        outcome = "completed" if report.kind is ReportKind.COMPLETE else "failed"
        log.info("job %s attempt %d %s", job_id, attempt, outcome)

    # --- from the broker ----------------------------------------------------------

    def _from_broker(self) -> bool:
        """Handle one message from the broker; False when none waits."""
        assert self.sock is not None
        try:
            msg = self.sock.recv_multipart(flags=zmq.NOBLOCK)
        except zmq.Again:
            return False
        parsed = p.parse_message(msg)
        if parsed is None:
            # Logged the first time and every 1000th: a broker that floods
            # the worker with them does not flood its log too.
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning(
                    "dropped a message from the broker that is not JOBQ/1 or breaks its limits "
                    "(%d so far)",
                    self.dropped,
                )
            return True
        self.last_heard = time.monotonic()
        cmd, body = parsed
        if cmd == Command.JOB:
            self._on_job(body)
        elif cmd == Command.CANCEL_JOB:
            self._on_cancel(body)
        elif cmd == Command.ACK:
            self._on_ack(body)
        elif cmd == Command.DISCONNECT:
            self._on_disconnect(body)
        elif cmd == Command.HEARTBEAT:
            if self.draining and body.get("echo") == self.echo:
                self.echoed = True
        return True

    def _on_job(self, body: dict[str, Any]) -> None:
        try:
            key = _attempt_key(body)
            job_type, shop_id, job_input = body["type"], body["shop_id"], body["input"]
            timeout_ms = body.get("timeout", 0)
            if not (isinstance(job_type, str) and isinstance(shop_id, str) and isinstance(job_input, dict)):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            log.warning("dropped a malformed JOB from the broker")
            return
        if key in self.held or key in self.unacked:
            return  # a repeat of a JOB already taken
        if self.stop is not None:
            self._release(key, "worker shutting down")
        elif len(self.held) >= self.capacity or self._full() or self.unacked_bytes >= _UNACKED_BYTES:
            self._release(key, "worker has no free slot")
        else:
            job = RunningJob(key[0], key[1], job_type, shop_id, job_input, timeout_ms, self.w._outbox)
            self.held[key] = job
            self.jobs.put(job)

    def _on_cancel(self, body: dict[str, Any]) -> None:
        try:
            key = _attempt_key(body)
        except (KeyError, TypeError, ValueError):
            return
        job = self.held.get(key)
        if job is None:
            return  # not ours (any more): ignored (9.8)
        if job._drop():
            del self.held[key]
            self._fail_unstarted(key, "cancelled", released=False)
        else:
            job.cancel_event.set()

    def _on_ack(self, body: dict[str, Any]) -> None:
        try:
            key = _attempt_key(body)
        except (KeyError, TypeError, ValueError):
            return
        if self._forget(key) and body.get("taken") is not True:
            log.info(
                "job %s attempt %d: result not taken (the attempt had ended, "
                "or its result was recorded before)",
                *key,
            )

    def _on_disconnect(self, body: dict[str, Any]) -> None:
        reason = str(body.get("reason", ""))
        if reason.startswith("forbidden:"):
            # The broker's keys refuse this worker: asking again is no use.
            log.error("the broker refuses this worker: %s", reason)
            self.refused = reason
            return
        # The broker does not know us (it restarted, or dropped us after
        # silence): register again; running jobs go on, and their results
        # not yet acknowledged go again.
        log.debug("broker: %s", reason)
        self._ready()
        self._resend()


def _attempt_key(body: Mapping[str, Any]) -> tuple[str, int]:
    job_id, attempt = p.check_job_id(body["id"]), body["attempt"]
    if not isinstance(attempt, int) or not 0 <= attempt <= p.MAX_ATTEMPT_NUMBER:
        raise ValueError("attempt")
    return job_id, attempt
