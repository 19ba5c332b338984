#!/usr/bin/python3
"""py_bench.py: jobq's Python client and worker (clients/python), measured
as jobq_bench and jobq_watch measure libjobq (bench/README.md, "Clients").

  py_bench.py BIN_DIR --scenario S [--jobs N] [--producers P] [--workers W]
                      [--timeout SECONDS]

Each run starts its own jobq-broker (full sync, as bench.h does: three
loopback ports that were free, a temporary data directory, stopped and
removed at the end) and its own worker, then one of:

  sync       P threads, one Client each, enqueue one `noop` job at a time
             and wait for each reply; one C `jobq-worker --concurrency W`.
             jobs/s from the start until STATS counts every job completed;
             p50/p99/p99.9 of the enqueue acknowledgement.
  batched    the same with enqueue_batch of 64, the worker --prefetch 512.
  pipelined  AsyncClient, one per producer, 64 ENQUEUEs in flight each, on
             one event loop; the worker --prefetch 512.
  watch      one `sleep` job (50 ms) at a time, followed with Client.watch;
             a separate process subscribed to every event notes when it saw
             each job's `completed` event; the sample runs from then to when
             watch() yields the final state (which it reads with STATUS).
  worker     `sync`'s producers, but the worker is jobq.Worker (a process of
             its own) with a `noop` processor, concurrency W.
  worker-batched
             `batched`'s producers (faster than the worker, so the rate is
             the worker's) and jobq.Worker with prefetch 512.

The client is this tree's clients/python, or the one PYTHONPATH names.
Producers use retries=0, as jobq_bench does (no made-up idempotency keys).
Bounded: N jobs and the timeout (default 120 s); every process it starts is
stopped, and dies with it. The last line is CSV:
system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The client of this tree, unless PYTHONPATH names one.
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import jobq  # noqa: E402
import msgpack  # noqa: E402
import zmq  # noqa: E402

BATCH = 64
IN_FLIGHT = 64
WATCH_MS = 50
WATCH_WARMUP = 10
INPUT = {"n": 1}


def now_us() -> int:
    return time.monotonic_ns() // 1000  # CLOCK_MONOTONIC, as bench.h


def log(*a: object) -> None:
    print("py_bench:", *a, file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when this process ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                            env=env)


def stop(proc: subprocess.Popen | None, wait: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentiles(v: list[int]) -> tuple[int, int, int]:
    v = sorted(v)
    n = len(v)
    return v[n // 2], v[n * 99 // 100], v[n * 999 // 1000]


def row(label: str, rate: float | None, v: list[int]) -> str:
    if not v:
        return f"{label},,,,,"
    p50, p99, p999 = percentiles(v)
    return f"{label},{'%.0f' % rate if rate else ''},{p50},{p99},{p999},"


class Broker:
    """jobq-broker on three loopback ports that were free, data in a fresh
    temporary directory (bench.h's bench_broker_start)."""

    def __init__(self, bin_dir: str) -> None:
        socks = [socket.socket() for _ in range(3)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        self.dir = tempfile.mkdtemp(prefix="jobq-bench-py-")
        self.clients, self.workers, self.events = (f"tcp://127.0.0.1:{p}" for p in ports)
        self.proc = spawn([os.path.join(bin_dir, "jobq-broker"), "--data",
                           os.path.join(self.dir, "data"), "--clients", self.clients,
                           "--workers", self.workers, "--events", self.events, "--quiet"])

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_ready(c: jobq.Client, deadline: float) -> None:
    """Until the broker answers and a worker has registered."""
    while time.monotonic() < deadline:
        try:
            if c.stats().get("workers"):
                return
        except jobq.Unavailable:
            pass
        time.sleep(0.05)
    raise SystemExit("py_bench: broker or worker not ready")


def completed(c: jobq.Client) -> int:
    return int(c.stats()["totals"].get("completed", 0))


def wait_completed(c: jobq.Client, total: int, deadline: float) -> int:
    n = 0
    while time.monotonic() < deadline:
        n = completed(c)
        if n >= total:
            break
        time.sleep(0.005)
    return n


# --- sync and batched: threads, one Client each ------------------------------

def produce(b: Broker, jobs: int, batch: int, deadline: float, lat: list[int],
            errors: list[int]) -> None:
    with jobq.Client(b.clients, b.events, timeout=5.0, retries=0) as c:
        specs = [jobq.JobSpec("noop", "bench", INPUT) for _ in range(batch)]
        i = 0
        while i < jobs and time.monotonic() < deadline:
            n = min(batch, jobs - i)
            t0 = now_us()
            try:
                if n == 1:
                    c.enqueue("noop", "bench", INPUT)
                else:
                    c.enqueue_batch(specs[:n])
                dt = now_us() - t0
                lat.extend([dt] * n)
            except jobq.Error as e:
                errors.append(n)
                if len(errors) <= 3:
                    log("enqueue:", e)
            i += n


def run_threads(b: Broker, producers: int, jobs: int, batch: int, deadline: float,
                c: jobq.Client) -> tuple[float, list[int], int]:
    lats: list[list[int]] = [[] for _ in range(producers)]
    errors: list[int] = []
    threads = [threading.Thread(target=produce, args=(b, jobs // producers, batch, deadline,
                                                      lats[i], errors))
               for i in range(producers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = [x for l in lats for x in l]
    done = wait_completed(c, len(lat), deadline)
    secs = time.monotonic() - start
    log(f"jobs={len(lat)} completed={done} errors={sum(errors)} in {secs:.2f} s")
    return done / secs, lat, done


# --- pipelined: AsyncClient, IN_FLIGHT requests per producer ------------------

async def run_pipelined(b: Broker, producers: int, jobs: int, deadline: float
                        ) -> tuple[float, list[int], int]:
    lat: list[int] = []
    errors = 0
    clients = [jobq.AsyncClient(b.clients, b.events, timeout=5.0, retries=0)
               for _ in range(producers)]

    async def lane(c: jobq.AsyncClient, left: list[int]) -> None:
        nonlocal errors
        while left[0] > 0 and time.monotonic() < deadline:
            left[0] -= 1
            t0 = now_us()
            try:
                await c.enqueue("noop", "bench", INPUT)
                lat.append(now_us() - t0)
            except jobq.Error as e:
                errors += 1
                if errors <= 3:
                    log("enqueue:", e)

    start = time.monotonic()
    lanes = []
    for c in clients:
        left = [jobs // producers]
        lanes += [lane(c, left) for _ in range(IN_FLIGHT)]
    await asyncio.gather(*lanes)
    n = 0
    while time.monotonic() < deadline:
        n = int((await clients[0].stats())["totals"].get("completed", 0))
        if n >= len(lat):
            break
        await asyncio.sleep(0.005)
    secs = time.monotonic() - start
    for c in clients:
        c.close()
    log(f"jobs={len(lat)} completed={n} errors={errors} in {secs:.2f} s")
    return n / secs, lat, n


# --- watch: a direct subscriber in a process of its own ---------------------

def subscriber_main(events: str, out: str) -> None:
    """Note `<id> <monotonic us>` for each completed event, until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100000)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(events)
    end = time.monotonic() + 600
    with open(out, "w") as f:
        while time.monotonic() < end:
            if not sub.poll(200):
                continue
            frames = sub.recv_multipart()
            t = now_us()
            if len(frames) != 3:
                continue
            try:
                job = msgpack.unpackb(frames[2], raw=False)
            except ValueError:
                continue
            if isinstance(job, dict) and job.get("status") == "completed":
                f.write(f"{job.get('id')} {t}\n")
                f.flush()


def read_seen(path: str) -> dict[str, int]:
    seen: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and line.endswith("\n"):
                    seen.setdefault(parts[0], int(parts[1]))
    except FileNotFoundError:
        pass
    return seen


def run_watch(b: Broker, jobs: int, deadline: float, c: jobq.Client) -> tuple[list[int], int]:
    out = os.path.join(b.dir, "seen.txt")
    sub = spawn([sys.executable, os.path.abspath(__file__), "--subscriber", b.events, out])
    try:
        ends: list[tuple[str, int]] = []
        missed = 0
        warm = 0
        while len(ends) < jobs and missed < 10 and time.monotonic() < deadline:
            job_id = c.enqueue("sleep", "watch", {"ms": WATCH_MS, "steps": 1})
            end = None
            try:
                for job in c.watch(job_id, timeout=5.0):
                    if job.final:
                        end = now_us()
            except jobq.Error as e:
                log("watch:", e)
            if end is None:
                missed += 1
                continue
            if warm < WATCH_WARMUP:
                # Until the subscriber has seen an end (at most 50 tries).
                if job_id in read_seen(out) or warm + missed > 50:
                    warm += 1
                else:
                    missed += warm + missed > 50
                continue
            ends.append((job_id, end))
        time.sleep(0.2)
    finally:
        stop(sub, 5)
    seen = read_seen(out)
    v = [end - seen[i] for i, end in ends if i in seen]
    missed += len(ends) - len(v)
    log(f"watch: jobs={len(v)} missed={missed} (us from the direct subscriber's "
        "end to the final state from watch())")
    return v, missed


# --- worker: jobq.Worker in a process of its own ----------------------------

def worker_main(broker: str, concurrency: int, prefetch: int) -> None:
    w = jobq.Worker(broker, concurrency=concurrency, prefetch=prefetch, grace=2.0)

    @w.processor("noop")
    def noop(job: jobq.RunningJob) -> dict:
        return job.input  # as the C noop: the output is the input

    w.run()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--subscriber":
        subscriber_main(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description="jobq's Python client and worker, measured")
    ap.add_argument("bin_dir")
    ap.add_argument("--scenario", required=True,
                    choices=["sync", "batched", "pipelined", "watch", "worker",
                             "worker-batched"])
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--producers", type=int, default=16)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=120.0)
    o = ap.parse_args()
    sc = o.scenario
    jobs = o.jobs or (300 if sc == "watch" else 8000)
    if not (1 <= jobs <= 1_000_000 and 1 <= o.producers <= 256 and 1 <= o.workers <= 1024
            and 1 <= o.timeout <= 600):
        ap.error("--jobs 1..1000000, --producers 1..256, --workers 1..1024, --timeout 1..600")
    deadline = time.monotonic() + o.timeout
    prefetch = 512 if sc in ("batched", "pipelined", "worker-batched") else 0
    b = Broker(o.bin_dir)
    worker = None
    try:
        if sc.startswith("worker"):
            worker = spawn([sys.executable, os.path.abspath(__file__), "--worker", b.workers,
                            str(o.workers), str(prefetch)])
        else:
            worker = spawn([os.path.join(o.bin_dir, "jobq-worker"), "--broker", b.workers,
                            "--types", "sleep" if sc == "watch" else "noop",
                            "--concurrency", str(o.workers), "--prefetch", str(prefetch)])
        with jobq.Client(b.clients, b.events, timeout=0.5, retries=0) as c:
            wait_ready(c, min(deadline, time.monotonic() + 20))
            shape = f"cycle-{o.producers}x{o.workers}"
            if sc == "watch":
                v, missed = run_watch(b, jobs, deadline, c)
                print(row("python,watch,delay", None, v))
                return 0 if len(v) == jobs and missed == 0 else 1
            if sc == "pipelined":
                rate, lat, done = asyncio.run(run_pipelined(b, o.producers, jobs, deadline))
            else:
                rate, lat, done = run_threads(b, o.producers, jobs,
                                              BATCH if sc.endswith("batched") else 1,
                                              deadline, c)
            label = {"sync": "python,sync", "batched": "python,sync-batched",
                     "pipelined": "python,sync-pipelined",
                     "worker": "python-worker,sync",
                     "worker-batched": "python-worker,sync-batched"}[sc]
            ok = done == len(lat) == jobs // o.producers * o.producers
            print(row(f"{label},{shape}", rate if ok else None, lat if ok else []))
            return 0 if ok else 1
    finally:
        stop(worker)
        b.stop()


if __name__ == "__main__":
    sys.exit(main())
