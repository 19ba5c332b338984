"""A broker with keys (PROTOCOL.md section 13): CURVE for the client, its
watch and the worker."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import unittest
from pathlib import Path
from unittest import mock

import harness

import jobq


def keygen(directory: Path, name: str) -> str:
    """A key pair made by ``jobq keygen``: its public key."""
    out = subprocess.run(
        [str(harness.BIN_DIR / "jobq"), "keygen", str(directory / name), "--name", name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("public key: "))


class Curve(unittest.TestCase):
    def setUp(self) -> None:
        keys = Path(tempfile.mkdtemp(prefix="jobq-keys-"))
        self.addCleanup(shutil.rmtree, keys, True)
        keygen(keys, "broker")
        lines = [f"api client * {keygen(keys, 'api')}", f"w1 worker * {keygen(keys, 'w1')}"]
        (keys / "keys").write_text("\n".join(lines) + "\n")
        self.keys = keys
        self.broker = harness.Broker(*harness.Broker.FAST, "--keys", str(keys / "keys"), "--cert", str(keys / "broker_secret"))
        self.addCleanup(self.broker.close)

    def curve(self, name: str) -> jobq.CurveKeys:
        return jobq.CurveKeys.from_files(self.keys / f"{name}_secret", self.keys / "broker")

    def test_client_and_worker_with_keys(self) -> None:
        worker = jobq.Worker(self.broker.workers, name="w1", heartbeat=0.25, broker_timeout=2, curve=self.curve("w1"))
        worker.processor("greet")(lambda job: {"hello": job.input["name"]})
        thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False}, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(worker.stop)
        with self.broker.client(curve=self.curve("api")) as client:
            job_id = client.enqueue("greet", "shop-1", {"name": "ada"})
            final = list(client.watch(job_id, timeout=20))[-1]
        self.assertEqual((final.status, final.output), ("completed", {"hello": "ada"}))

    def test_a_client_without_keys_gets_no_answer(self) -> None:
        with self.broker.client(timeout=0.3, retries=0) as client, self.assertRaises(jobq.NoReply):
            client.stats()

    def test_a_worker_key_cannot_use_the_client_endpoint(self) -> None:
        with self.broker.client(timeout=0.3, retries=0, curve=self.curve("w1")) as client:
            with self.assertRaises(jobq.NoReply):
                client.stats()


class CurveKeyFiles(unittest.TestCase):
    def test_keys_from_env_and_files(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="jobq-keys-"))
        self.addCleanup(shutil.rmtree, directory, True)
        broker_key = keygen(directory, "broker")
        api_key = keygen(directory, "api")
        keys = jobq.CurveKeys.from_files(directory / "api_secret", broker_key)
        self.assertEqual((keys.public_key, keys.server_key), (api_key, broker_key))
        with self.assertRaises(ValueError):
            jobq.CurveKeys.from_files(directory / "api", broker_key)  # the public half only
        with self.assertRaises(ValueError):
            jobq.CurveKeys("short", keys.secret_key, keys.server_key)
        env = {"JOBQ_CERT": str(directory / "api_secret"), "JOBQ_BROKER_KEY": str(directory / "broker")}
        with mock.patch.dict("os.environ", env):
            self.assertEqual(jobq.CurveKeys.from_env(), keys)
        with mock.patch.dict("os.environ", {"JOBQ_CERT": "", "JOBQ_BROKER_KEY": ""}):
            self.assertIsNone(jobq.CurveKeys.from_env())


if __name__ == "__main__":
    unittest.main()
