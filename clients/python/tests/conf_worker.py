"""The conformance processors (tests/conformance/README.md) on jobq's Python
worker, as every client language has them (the C one is conf_worker.c).

usage: conf_worker.py BROKER NAME      (SIGTERM or SIGINT stops it)

  conf.echo      output {"echo": input}
  conf.fail      input {times, message, permanent}: fails its first `times`
                 attempts with `message` (default "failed"; for good if
                 `permanent`), then output {"attempt": n}
  conf.progress  input {steps, ms}: `steps` reports "step i of N" over `ms`,
                 then output {"steps": N}; stops when cancelled
  conf.hang      input {ms}: waits `ms` (stops when cancelled), then output
                 {"slept_ms": ms}
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jobq  # noqa: E402


def _int(job: jobq.RunningJob, key: str, default: int) -> int:
    """An integer of the input, or default (as jobq_job_input_int)."""
    value = job.input.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def echo(job: jobq.RunningJob) -> dict[str, Any]:
    return {"echo": job.input}


def fail(job: jobq.RunningJob) -> dict[str, Any]:
    times = _int(job, "times", 0)
    permanent = job.input.get("permanent") is True
    message = job.input.get("message")
    if not isinstance(message, str):
        message = "failed"
    if permanent or job.attempt <= times:
        raise jobq.JobFailure(message, permanent=permanent)
    return {"attempt": job.attempt}


def progress(job: jobq.RunningJob) -> dict[str, Any]:
    steps, ms = _int(job, "steps", 1), _int(job, "ms", 0)
    if not (1 <= steps <= 1000 and 0 <= ms <= 600000):
        raise jobq.PermanentError("steps 1..1000, ms 0..600000")
    for i in range(1, steps + 1):
        job.sleep((ms // steps) / 1000)  # raises jobq.Cancelled when cancelled
        job.progress(100 * i // steps, f"step {i} of {steps}")
    return {"steps": steps}


def hang(job: jobq.RunningJob) -> dict[str, Any]:
    ms = _int(job, "ms", 0)
    if not 0 <= ms <= 600000:
        raise jobq.PermanentError("ms 0..600000")
    job.sleep(ms / 1000)  # raises jobq.Cancelled when cancelled
    return {"slept_ms": ms}


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: conf_worker.py BROKER NAME", file=sys.stderr)
        return 2
    broker, name = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format=f"{name}: %(levelname)s %(message)s")
    # As conf_worker.c (concurrency 4, broker timeout 2 s, grace 1 s), but a
    # heartbeat every 250 ms: worker_killed runs its broker with
    # --worker-timeout-ms 1000, which a heartbeat once a second would graze.
    worker = jobq.Worker(broker, name=name, concurrency=4, heartbeat=0.25, broker_timeout=2.0, grace=1.0)
    for job_type, processor in (
        ("conf.echo", echo),
        ("conf.fail", fail),
        ("conf.progress", progress),
        ("conf.hang", hang),
    ):
        worker.processor(job_type)(processor)
    worker.run()  # SIGTERM/SIGINT: drain and return
    return 0


if __name__ == "__main__":
    sys.exit(main())
