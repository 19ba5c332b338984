#!/usr/bin/python3
"""celery_bench.py: Celery on Redis as a peer of jobq's client benchmark
(bench/README.md, "Clients"), the `cycle-PxW` shape of jobq_bench.

  celery_bench.py [--jobs N] [--producers P] [--workers W] [--timeout S]

Starts its own redis-server on 127.0.0.1 and a port that was free, its data
in a temporary directory, with `--appendonly yes --appendfsync always` (as
BullMQ's `aof-always`: the AOF is flushed before the replies of each
event-loop turn), and one Celery worker process (prefork pool, concurrency
W, Celery's defaults otherwise: prefetch multiplier 4, early acks) for a
task that does nothing but count itself done (one INCR on the same Redis;
results are ignored, Celery's default). P threads call apply_async one at a
time (the app's producer pool, one connection per thread). jobs/s runs from
the start until the counter reaches N; p50/p99/p99.9 are apply_async's
latencies (the message is in Redis when it returns). Debian's
python3-celery and python3-redis; redis-server from Debian.

Bounded: N jobs and the timeout (default 120 s); redis-server and the
worker (its whole process group) are stopped at the end and die with this
process. The last line is CSV:
system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb
"""

from __future__ import annotations

import argparse
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

from celery import Celery

REDIS_URL = os.environ.get("JOBQ_BENCH_REDIS", "redis://127.0.0.1:1/0")
DONE_KEY = "jobq-bench:done"

app = Celery("celery_bench", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    broker_pool_limit=64,  # every producer thread a connection of its own
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_default_queue="jobqbench",
)

_redis = None


@app.task(name="noop")
def noop(n: int = 1) -> None:
    """Does nothing; counts itself done."""
    global _redis
    if _redis is None:
        import redis
        _redis = redis.Redis.from_url(REDIS_URL)
    _redis.incr(DONE_KEY)


def log(*a: object) -> None:
    print("celery_bench:", *a, file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description="Celery on Redis, the jobq cycle shape")
    ap.add_argument("--jobs", type=int, default=8000)
    ap.add_argument("--producers", type=int, default=16)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=120.0)
    o = ap.parse_args()
    if not (1 <= o.jobs <= 1_000_000 and 1 <= o.producers <= 64 and 1 <= o.workers <= 64
            and 1 <= o.timeout <= 600):
        ap.error("--jobs 1..1000000, --producers 1..64, --workers 1..64, --timeout 1..600")
    import redis

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    deadline = time.monotonic() + o.timeout
    tmp = tempfile.mkdtemp(prefix="jobq-bench-celery-")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    rs = wk = None
    try:
        rs = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--protected-mode",
             "yes", "--unixsocket", "", "--dir", tmp, "--save", "", "--daemonize", "no",
             "--appendonly", "yes", "--appendfsync", "always",
             "--logfile", os.path.join(tmp, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        r = redis.Redis.from_url(url, socket_timeout=5)
        for _ in range(100):
            try:
                if r.info("server")["process_id"] == rs.pid:
                    break
            except redis.RedisError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("celery_bench: redis-server did not answer")
        env = dict(os.environ, JOBQ_BENCH_REDIS=url,
                   PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
        wk = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "-P", "prefork",
             "-c", str(o.workers), "-Q", "jobqbench", "-l", "WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, "worker.log"), "w"), env=env,
            start_new_session=True, preexec_fn=_die_with_parent, cwd=tmp)
        app.conf.broker_url = url
        # Warm-up: the worker is up and each producer connection made.
        warm = 2 * o.producers
        warm_until = min(deadline, time.monotonic() + 60)
        for _ in range(warm):
            noop.apply_async()
        while int(r.get(DONE_KEY) or 0) < warm:
            if time.monotonic() > warm_until or wk.poll() is not None:
                raise SystemExit("celery_bench: the worker did not run the warm-up tasks")
            time.sleep(0.05)
        base = int(r.get(DONE_KEY) or 0)
        per = o.jobs // o.producers
        lats: list[list[int]] = [[] for _ in range(o.producers)]
        errors: list[int] = []

        def produce(lat: list[int]) -> None:
            for _ in range(per):
                if time.monotonic() > deadline:
                    return
                t0 = time.monotonic_ns()
                try:
                    noop.apply_async()
                    lat.append((time.monotonic_ns() - t0) // 1000)
                except Exception as e:  # a refused or lost connection
                    errors.append(1)
                    if len(errors) <= 3:
                        log("apply_async:", e)

        threads = [threading.Thread(target=produce, args=(lats[i],)) for i in range(o.producers)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_s = time.monotonic() - start
        lat = sorted(x for l in lats for x in l)
        done = 0
        while time.monotonic() < deadline:
            done = int(r.get(DONE_KEY) or 0) - base
            if done >= len(lat):
                break
            time.sleep(0.005)
        secs = time.monotonic() - start
        log(f"jobs={len(lat)} done={done} errors={len(errors)} in {secs:.2f} s, "
            f"apply_async alone {len(lat) / sent_s:.0f}/s")
        ok = done >= len(lat) == per * o.producers
        n = len(lat)
        shape = f"cycle-{o.producers}x{o.workers}"
        if ok:
            print(f"celery,redis,{shape},{done / secs:.0f},{lat[n // 2]},{lat[n * 99 // 100]},"
                  f"{lat[n * 999 // 1000]},")
        else:
            print(f"celery,redis,{shape},,,,,")
        return 0 if ok else 1
    finally:
        if wk is not None and wk.poll() is None:
            wk.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                wk.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if wk is not None:
            try:
                os.killpg(wk.pid, signal.SIGKILL)  # its pool, whatever is left
            except ProcessLookupError:
                pass
            wk.wait()
        if rs is not None and rs.poll() is None:
            rs.terminate()
            try:
                rs.wait(10)
            except subprocess.TimeoutExpired:
                rs.kill()
                rs.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
