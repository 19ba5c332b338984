"""A Python worker process for the tests: ``py_worker.py ENDPOINT NAME``.

It runs ``py_sleep`` (input ``{ms, steps}``: a progress report per step,
cancellable) until SIGTERM or SIGINT, which drain it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jobq  # noqa: E402


def main() -> None:
    endpoint, name = sys.argv[1:3]
    logging.basicConfig(level=logging.INFO, format=f"{name}: %(levelname)s %(message)s")
    worker = jobq.Worker(endpoint, name=name, concurrency=2, heartbeat=0.25, broker_timeout=2.0)

    @worker.processor("py_sleep")
    def py_sleep(job: jobq.RunningJob) -> dict[str, object]:
        ms, steps = int(job.input.get("ms", 1000)), int(job.input.get("steps", 10))
        for step in range(1, steps + 1):
            job.sleep(ms / 1000 / steps)
            job.progress(100 * step // steps, f"step {step} of {steps}")
        return {"slept_ms": ms, "pid": os.getpid(), "worker": name}

    worker.run()


if __name__ == "__main__":
    main()
