"""examples/scrape.py against a local web server."""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import io
import threading
import unittest
from types import ModuleType

import harness

import jobq


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scrape_example", harness.PACKAGE_DIR / "examples" / "scrape.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_error(404)
            return
        body = f"<html><head><title>Page {self.path[1:]} &amp; co</title></head></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ScrapeExample(unittest.TestCase):
    def setUp(self) -> None:
        self.example = load_example()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.site = f"http://127.0.0.1:{server.server_address[1]}"
        self.broker = harness.Broker()
        self.addCleanup(self.broker.close)
        worker = self.example.make_worker(self.broker.workers, name="scraper")
        thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False}, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(worker.stop)

    def test_scrape_pages(self) -> None:
        urls = [f"{self.site}/a", f"{self.site}/b", f"{self.site}/missing"]
        with self.broker.client() as client:
            states = list(client.watch(client.enqueue("scrape_pages", "shop-1", {"urls": urls}), timeout=20))
        final = states[-1]
        self.assertEqual(final.status, jobq.Status.COMPLETED)
        assert final.output is not None
        pages = final.output["pages"]
        self.assertEqual([pg["status"] for pg in pages], [200, 200, 404])
        self.assertEqual([pg["title"] for pg in pages], ["Page a & co", "Page b & co", None])
        progress = [s.progress for s in states]
        self.assertEqual(progress, sorted(progress))
        self.assertEqual(final.message, "page 3 of 3")

    def test_enqueue_and_watch_command(self) -> None:
        out = io.StringIO()
        args = ["enqueue", "--broker", self.broker.clients, "--events", self.broker.events, f"{self.site}/x"]
        with contextlib.redirect_stdout(out):
            status = self.example.main(args)
        self.assertEqual(status, 0)
        self.assertIn("completed", out.getvalue())
        self.assertIn("Page x & co", out.getvalue())

    def test_bad_input_fails_for_good(self) -> None:
        with self.broker.client() as client:
            job_id = client.enqueue("scrape_pages", "shop-1", {"urls": ["ftp://example.com/"]})
            final = list(client.watch(job_id, timeout=20))[-1]
        self.assertEqual((final.status, final.attempts), ("failed", 1))
        self.assertIn("not an http(s) URL", final.error or "")


if __name__ == "__main__":
    unittest.main()
