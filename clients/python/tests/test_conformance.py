"""The conformance scenarios (tests/conformance/README.md) run by the Python
client against a real broker, with conf_worker.py for the scenarios that
need a worker: one test method per scenario file, ``test_<file name>``.

The scenarios are read from $JOBQ_CONFORMANCE_DIR, else from the
repository's tests/conformance/scenarios (this file's
../../../tests/conformance/scenarios), else /work/main/tests/conformance/scenarios.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import unittest
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from harness import TESTS_DIR, Broker, Process

import jobq
from jobq.models import EPOCH


def _scenario_dir() -> Path:
    env = os.environ.get("JOBQ_CONFORMANCE_DIR")
    if env:
        return Path(env)
    here = TESTS_DIR.parents[2] / "tests" / "conformance" / "scenarios"
    return here if here.is_dir() else Path("/work/main/tests/conformance/scenarios")


SCENARIO_DIR = _scenario_dir()


class StepFailed(AssertionError):
    pass


# --- answers in the shape of the wire -------------------------------------------


def _ms(t: Any) -> int | None:
    """A time as ms since the epoch, None when there is none (or 0)."""
    if t is None:
        return None
    ms = (t - EPOCH) // timedelta(milliseconds=1)
    return ms or None


def job_json(job: jobq.Job) -> dict[str, Any]:
    """The job map of PROTOCOL.md 6 (snake_case, times in ms), plus
    ``errors_count``, as driver_c.c builds it."""
    errors = [{"attempt": e.attempt, "error": e.error, "at": _ms(e.at)} for e in job.errors or []]
    m: dict[str, Any] = {
        "id": job.id,
        "type": job.type,
        "status": str(job.status),
        "shop_id": job.shop_id,
        "input": job.input,
        "output": job.output,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "errors": errors,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "run_at": _ms(job.run_at),
        "timeout": job.timeout_ms,
        "key": job.key,
        "created_at": _ms(job.created_at),
        "updated_at": _ms(job.updated_at),
        "started_at": _ms(job.started_at),
        "completed_at": _ms(job.completed_at),
        "worker": job.worker,
        "lease_until": _ms(job.lease_until),
        "version": job.version,
        "seq": job.seq,
        "errors_count": len(errors),
    }
    if job.wait is not None:
        m["wait"] = {"reason": job.wait.reason, "until": _ms(job.wait.until)}
    return m


def _json_equal(want: Any, got: Any) -> bool:
    """JSON equality: numbers compared as numbers (1 is 1.0, as README says:
    no scenario relies on the difference), but true is not 1."""

    def kind(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        if isinstance(v, str):
            return "str"
        if isinstance(v, dict):
            return "object"
        if isinstance(v, (list, tuple)):
            return "array"
        return type(v).__name__

    if kind(want) != kind(got):
        return False
    if isinstance(want, dict):
        return want.keys() == got.keys() and all(_json_equal(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        return len(want) == len(got) and all(_json_equal(a, b) for a, b in zip(want, got))
    return bool(want == got)


_MISSING = object()


def _show(v: Any) -> str:
    return "(nothing)" if v is _MISSING else json.dumps(v, default=str)[:300]


# --- one scenario -----------------------------------------------------------------


class Run:
    """One scenario against its own broker: the saved ids, the worker."""

    def __init__(self, test: unittest.TestCase, scenario: dict[str, Any]) -> None:
        self.test = test
        self.scenario = scenario
        self.saved: dict[str, str] = {}
        self.workers_started = 0
        self.worker: Process | None = None
        # Like the C driver's broker: its defaults, and the scenario's options.
        self.broker = Broker("--map-size", "64", *scenario.get("broker", []))
        test.addCleanup(self.broker.close)
        if scenario.get("worker") is True:
            self.start_worker()
        self.client = jobq.Client(self.broker.clients, events=self.broker.events, timeout=5.0)
        test.addCleanup(self.client.close)

    def start_worker(self) -> None:
        self.workers_started += 1
        name = f"conf-py-{self.workers_started}"
        conf_worker = str(TESTS_DIR / "conf_worker.py")
        self.worker = Process(self.broker, [sys.executable, conf_worker, self.broker.workers, name])
        self.test.addCleanup(self.worker.close)

    def job(self, step: dict[str, Any]) -> str:
        ref = step.get("job", "")
        if ref.startswith("="):
            return ref[1:]
        if ref not in self.saved:
            raise StepFailed(f"no job saved as '{ref}'")
        return self.saved[ref]

    def match(self, want: Any, got: Any, path: str) -> None:
        """README's matching: objects by want's keys, arrays element by
        element, "$name" a saved id, anything else JSON-equal."""
        if isinstance(want, str) and want.startswith("$"):
            saved = self.saved.get(want[1:])
            if saved is not None and isinstance(got, str) and got == saved:
                return
        elif isinstance(want, dict):
            if isinstance(got, dict):
                for k, v in want.items():
                    self.match(v, got.get(k, _MISSING), f"{path}/{k}")
                return
        elif isinstance(want, list):
            if isinstance(got, list) and len(got) == len(want):
                for i, (w, g) in enumerate(zip(want, got)):
                    self.match(w, g, f"{path}[{i}]")
                return
        elif got is not _MISSING and _json_equal(want, got):
            return
        raise StepFailed(f"{path}: want {_show(want)}, got {_show(got)}")

    # --- the ops: each returns the answer to match, or None ---------------------

    @staticmethod
    def _spec(s: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": s.get("type"),
            "shop_id": s.get("shop"),
            "input": s.get("input"),
            "priority": s.get("priority", 0),
            "delay_ms": s.get("delay_ms", 0),
            "max_attempts": s.get("max_attempts"),
            "timeout_ms": s.get("timeout_ms", 0),
            "key": s.get("key"),
        }

    def op_enqueue(self, s: dict[str, Any]) -> Any:
        spec = self._spec(s)
        enq = self.client.enqueue_ex(spec.pop("type"), spec.pop("shop_id"), spec.pop("input"), **spec)
        if "as" in s:
            self.saved[s["as"]] = enq.id
        return {"id": enq.id, "created": enq.created}

    def op_enqueue_batch(self, s: dict[str, Any]) -> Any:
        answers = self.client.enqueue_batch([self._spec(j) for j in s["jobs"]])
        for name, enq in zip(s.get("as", []), answers):
            if isinstance(name, str):
                self.saved[name] = enq.id
        return {"ids": [a.id for a in answers], "created": [a.created for a in answers]}

    def op_status(self, s: dict[str, Any]) -> Any:
        return job_json(self.client.status(self.job(s)))

    def op_cancel(self, s: dict[str, Any]) -> Any:
        return job_json(self.client.cancel(self.job(s)))

    def op_retry(self, s: dict[str, Any]) -> Any:
        return job_json(self.client.retry(self.job(s)))

    def op_wait(self, s: dict[str, Any]) -> Any:
        job_id, status, within = self.job(s), s["status"], s["within_ms"]
        until = time.monotonic() + within / 1000
        while True:
            job = self.client.status(job_id)
            if job.status == status:
                return job_json(job)
            if time.monotonic() > until:
                raise StepFailed(f"job {job_id} not {status} within {within} ms (it is {job.status})")
            time.sleep(0.02)

    def op_watch(self, s: dict[str, Any]) -> Any:
        states: list[jobq.Job] = []
        for state in self.client.watch(self.job(s), timeout=s["within_ms"] / 1000):
            # Each newer than the last: a higher version, or the same one
            # with another wait (PROTOCOL.md 10.2, step 4).
            if states:
                before = states[-1]
                newer = state.version > before.version or (
                    state.version == before.version and state.wait != before.wait
                )
                if not newer:
                    raise StepFailed(
                        f"the watch yielded version {state.version} ({state.status}, wait {state.wait}) "
                        f"after version {before.version} ({before.status}, wait {before.wait})"
                    )
            states.append(state)
        last = states[-1]
        if not last.final:
            raise StepFailed(f"the watch ended on a {last.status} state")
        got = job_json(last)
        got["final"] = str(last.status)
        got["states"] = len(states)
        want_min = (s.get("expect") or {}).get("min_states")
        if want_min is not None:
            if len(states) < want_min:
                raise StepFailed(f"the watch yielded {len(states)} states, want {want_min} or more")
            got["min_states"] = want_min
        return got

    def _list(self, s: dict[str, Any], every: bool) -> Any:
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(1000):
            limit = s.get("limit", 50)
            page = self.client.list_page(s.get("shop"), s.get("type"), s.get("status"), limit, cursor)
            ids += [j.id for j in page.jobs]
            cursor = page.next
            if not every or cursor is None:
                break
        return {"count": len(ids), "more": cursor is not None, "ids": ids}

    def op_list(self, s: dict[str, Any]) -> Any:
        return self._list(s, every=False)

    def op_list_all(self, s: dict[str, Any]) -> Any:
        return self._list(s, every=True)

    def op_stats(self, s: dict[str, Any]) -> Any:
        stats = self.client.stats()
        got: dict[str, Any] = {}
        for path in s.get("expect") or {}:
            at: Any = stats
            for k in path.split("/"):
                at = at.get(k, _MISSING) if isinstance(at, dict) else _MISSING
            if at is not _MISSING:
                got[path] = at
        return got

    def op_same(self, s: dict[str, Any]) -> Any:
        a, b = (self.saved.get(n) for n in s["jobs"])
        if a is None or b is None or a != b:
            raise StepFailed(f"{a or '?'} and {b or '?'} differ")

    def op_sleep(self, s: dict[str, Any]) -> Any:
        time.sleep(s["ms"] / 1000)

    def op_kill_worker(self, s: dict[str, Any]) -> Any:
        if self.worker is None:
            raise StepFailed("no worker to kill")
        self.worker.signal(signal.SIGKILL)
        self.worker.wait(5)
        self.worker = None

    def op_start_worker(self, s: dict[str, Any]) -> Any:
        self.start_worker()

    # --- a step ---------------------------------------------------------------------

    def step(self, n: int, s: dict[str, Any]) -> None:
        op = s.get("op")
        run: Callable[[dict[str, Any]], Any] | None = getattr(self, f"op_{op}", None)
        if run is None:
            raise StepFailed(f"step {n}: unknown op '{op}'")
        want_err, want = s.get("error"), s.get("expect")
        try:
            got = run(s)
        except jobq.Error as exc:
            if want_err is None:
                raise StepFailed(f"step {n} ({op}): {exc}") from exc
            if exc.code != want_err:
                raise StepFailed(f"step {n} ({op}): want error {want_err}, got {exc}") from exc
            return
        except StepFailed as exc:
            raise StepFailed(f"step {n} ({op}): {exc}") from None
        if want_err is not None:
            raise StepFailed(f"step {n} ({op}): want error {want_err}, got success: {_show(got)}")
        if want is not None:
            try:
                self.match(want, got, op)
            except StepFailed as exc:
                raise StepFailed(f"step {n}: {exc}") from None

    def run(self) -> None:
        steps = self.scenario.get("steps")
        self.test.assertTrue(steps, "a scenario without steps")
        for n, s in enumerate(steps):
            self.step(n, s)


# --- the tests ----------------------------------------------------------------------


class ConformanceTest(unittest.TestCase):
    """One ``test_<name>`` per scenarios/<name>.json (added below)."""

    maxDiff = None

    def test_scenarios_found(self) -> None:
        self.assertTrue(sorted(SCENARIO_DIR.glob("*.json")), f"no scenarios in {SCENARIO_DIR}")


def _scenario_test(path: Path) -> Callable[[ConformanceTest], None]:
    def test(self: ConformanceTest) -> None:
        with open(path, encoding="utf-8") as f:
            scenario = json.load(f)
        Run(self, scenario).run()

    test.__doc__ = f"conformance: {path.name}"
    return test


for _path in sorted(SCENARIO_DIR.glob("*.json")):
    setattr(ConformanceTest, f"test_{_path.stem}", _scenario_test(_path))


if __name__ == "__main__":
    unittest.main()
