"""Brokers and workers for the tests, on free loopback ports.

Every process started here is stopped (and its data directory removed) by
its ``close``, which the tests register with ``addCleanup`` /
``addClassCleanup`` right after starting it, so it happens on failure too.
Every wait is bounded in time.

Importing this module puts the ``jobq`` package (the directory above) on
``sys.path``, so the tests run without installing it.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import msgpack
import zmq

PACKAGE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PACKAGE_DIR))

import jobq  # noqa: E402

BIN_DIR = Path(os.environ.get("JOBQ_BIN_DIR", "/work/main/build/apps"))
TESTS_DIR = Path(__file__).resolve().parent
_RESERVED_PORTS = {5555, 5556, 5557, 8080}

T = TypeVar("T")


def free_port() -> int:
    """A loopback TCP port nobody listens on (the kernel picks it)."""
    for _ in range(20):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _RESERVED_PORTS:
            return port
    raise RuntimeError("no free port")


def endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def wait_until(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll check until it returns something true; its value. AssertionError
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Broker:
    """A jobq-broker on three free ports with its own data directory.

    Fast settings by default, so that lost workers and retries take
    fractions of a second: pass ``options`` to change them.
    """

    FAST = (
        "--heartbeat-ms", "200",
        "--worker-timeout-ms", "1500",
        "--lease-ms", "2000",
        "--retry-base-ms", "50",
    )  # fmt: skip

    def __init__(self, *options: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jobq-test-"))
        self.clients, self.workers, self.events = endpoint(), endpoint(), endpoint()
        self.options = options or self.FAST
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = open(self.dir / "broker.log", "ab")
        self.start()

    def start(self) -> None:
        """Start (or restart) it, on the same ports and data."""
        port = int(self.clients.rsplit(":", 1)[1])
        self.proc = subprocess.Popen(
            [
                str(BIN_DIR / "jobq-broker"),
                "--data", str(self.dir / "data"),
                "--clients", self.clients,
                "--workers", self.workers,
                "--events", self.events,
                "--quiet",
                *self.options,
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"jobq-broker exited: {(self.dir / 'broker.log').read_text()}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 10, "the broker to listen")

    def kill(self) -> None:
        """SIGKILL: a crash."""
        assert self.proc is not None
        _stop(self.proc, signal.SIGKILL)

    def client(self, **options: object) -> jobq.Client:
        options.setdefault("timeout", 1.0)
        return jobq.Client(self.clients, events=self.events, **options)  # type: ignore[arg-type]

    def async_client(self, **options: object) -> jobq.AsyncClient:
        options.setdefault("timeout", 1.0)
        return jobq.AsyncClient(self.clients, events=self.events, **options)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """A worker process: ``jobq-worker`` or ``tests/py_worker.py``. Its
    output goes to a log file in its broker's directory."""

    def __init__(self, broker: Broker, args: list[str]) -> None:
        self._log = open(broker.dir / "workers.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    @classmethod
    def c_worker(cls, broker: Broker, *options: str) -> Process:
        return cls(broker, [str(BIN_DIR / "jobq-worker"), "--broker", broker.workers, "--quiet", *options])

    @classmethod
    def py_worker(cls, broker: Broker, name: str) -> Process:
        return cls(broker, [sys.executable, str(TESTS_DIR / "py_worker.py"), broker.workers, name])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        _stop(self.proc)
        self._log.close()


def assert_in_order(states: list[jobq.Job]) -> None:
    """Each state a watch yields is newer than the one before: a higher
    version, or the same version with another wait (10.2)."""
    for before, after in zip(states, states[1:]):
        newer = after.version > before.version or (after.version == before.version and after.wait != before.wait)
        assert newer, f"state {after} after {before}"


class Watcher(threading.Thread):
    """client.watch(job_id) on a thread of its own, keeping what it yields."""

    def __init__(self, client: jobq.Client, job_id: str, timeout: float = 30) -> None:
        super().__init__(daemon=True)
        self._watch = lambda: client.watch(job_id, timeout=timeout)
        self._states: queue.Queue[jobq.Job] = queue.Queue()
        self._seen: list[jobq.Job] = []
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            for state in self._watch():
                self._states.put(state)
        except BaseException as exc:  # handed to the test by states()
            self._error = exc

    def next_state(self, timeout: float = 10) -> jobq.Job:
        """The next state the watch yields (AssertionError after timeout)."""
        try:
            state = self._states.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the watch yielded nothing for {timeout:g} s") from None
        self._seen.append(state)
        return state

    def states(self, timeout: float = 30) -> list[jobq.Job]:
        """Every state yielded, once the watch has ended; its error raised."""
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"the watch did not end within {timeout:g} s")
        if self._error is not None:
            raise self._error
        while not self._states.empty():
            self._seen.append(self._states.get())
        return self._seen


class LossyProxy:
    """Between clients and the broker: forwards requests and replies, but
    drops the first reply to a request of command ``drop`` (a command code;
    None: the first reply of all), as a broker that restarts between its
    commit and its reply would."""

    def __init__(self, broker: str, drop: int | None = None) -> None:
        self.endpoint = endpoint()
        self.requests: list[list[bytes]] = []
        self._drop = drop
        self._stop = threading.Event()
        ctx = zmq.Context.instance()
        self._front = ctx.socket(zmq.ROUTER)
        self._front.bind(self.endpoint)
        self._back = ctx.socket(zmq.DEALER)
        self._back.connect(broker)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def commands(self) -> list[int]:
        """The command codes of the requests forwarded so far, in order."""
        return [msg[1][0] for msg in list(self.requests)]

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._front, zmq.POLLIN)
        poller.register(self._back, zmq.POLLIN)
        asked: dict[int, tuple[bytes, int]] = {}  # rid -> (client, command)
        dropped = False
        while not self._stop.is_set():
            ready = dict(poller.poll(50))
            if self._front in ready:
                peer, *msg = self._front.recv_multipart()
                self.requests.append(msg)
                asked[msgpack.unpackb(msg[2])["rid"]] = (peer, msg[1][0])
                self._back.send_multipart(msg)
            if self._back in ready:
                msg = self._back.recv_multipart()
                entry = asked.get(msgpack.unpackb(msg[2])["rid"])
                if entry is None:
                    continue  # rid 0: not for these tests
                peer, cmd = entry
                if not dropped and self._drop in (None, cmd):
                    dropped = True
                    continue
                self._front.send_multipart([peer, *msg])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._front.close(linger=0)
        self._back.close(linger=0)
