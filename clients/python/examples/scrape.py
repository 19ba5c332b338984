"""Scrape web pages with a Python processor, and follow a scrape to its end.

``scrape_pages`` fetches the pages listed in its input, ``{"urls": [...]}``,
one after the other with urllib, reports progress after each page, stops
early when the job is cancelled, and returns each page's status, size and
title. A page that answers 4xx is recorded as such; a server error (5xx) or
a network error fails the attempt, which the broker retries.

Against ``make run`` (the broker on tcp://127.0.0.1:5555 for clients,
:5556 for workers and :5557 for events), from the repository's root::

    # a terminal: the worker (Ctrl-C drains it: the running scrape finishes)
    PYTHONPATH=clients/python python3 clients/python/examples/scrape.py worker

    # another: enqueue a scrape and watch it until it ends
    PYTHONPATH=clients/python python3 clients/python/examples/scrape.py \\
        enqueue https://example.com/ https://example.org/

``make run`` starts jobq's C worker too; it does not run ``scrape_pages``,
so only this worker gets those jobs.
"""

from __future__ import annotations

import argparse
import html
import logging
import re
import sys
import urllib.error
import urllib.request
from typing import Any, Sequence

import jobq

MAX_PAGE_BYTES = 4 << 20
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def scrape_pages(job: jobq.RunningJob) -> dict[str, Any]:
    """The processor of ``scrape_pages`` jobs."""
    urls = job.input.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise jobq.PermanentError("input 'urls': a non-empty list of URLs")
    timeout = float(job.input.get("timeout_s", 10))
    pages = []
    for n, url in enumerate(urls, 1):
        job.check_cancelled()
        pages.append(fetch(url, timeout))
        job.progress(100 * n // len(urls), f"page {n} of {len(urls)}")
    return {"pages": pages}


def fetch(url: str, timeout: float) -> dict[str, Any]:
    """One page: its status, size in bytes, and title."""
    if not url.startswith(("http://", "https://")):
        raise jobq.PermanentError(f"not an http(s) URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read(MAX_PAGE_BYTES)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise  # the server's trouble: worth another attempt
        return {"url": url, "status": exc.code, "bytes": 0, "title": None}
    match = _TITLE.search(body)
    title = html.unescape(match.group(1).decode("utf-8", "replace")).strip()[:200] if match else None
    return {"url": url, "status": status, "bytes": len(body), "title": title}


def make_worker(broker: str, name: str | None = None, concurrency: int = 4) -> jobq.Worker:
    worker = jobq.Worker(broker, name=name, concurrency=concurrency)
    worker.processor("scrape_pages")(scrape_pages)
    return worker


def enqueue_and_watch(client: jobq.Client, shop: str, urls: Sequence[str]) -> jobq.Job:
    """Enqueue a scrape of urls, print its progress, and return its end."""
    job_id = client.enqueue("scrape_pages", shop, {"urls": list(urls)})
    print(f"job {job_id}")
    for job in client.watch(job_id):
        print(f"  {job.status:<9} {job.progress:3d}%  {job.message or ''}")
    if job.status == jobq.Status.COMPLETED:
        assert job.output is not None
        for page in job.output["pages"]:
            print(f"  {page['status']}  {page['bytes']:>8} bytes  {page['url']}  {page['title'] or ''}")
    else:
        print(f"  {job.error}")
    return job


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("worker", help="run scrape_pages jobs until Ctrl-C")
    run.add_argument("--broker", default="tcp://127.0.0.1:5556", help="the broker's worker endpoint")
    run.add_argument("--name", help="worker name (default: made up)")
    run.add_argument("--concurrency", type=int, default=4)
    add = commands.add_parser("enqueue", help="scrape URLs and watch the job to its end")
    add.add_argument("urls", nargs="+")
    add.add_argument("--broker", default="tcp://127.0.0.1:5555", help="the broker's client endpoint")
    add.add_argument("--events", default="tcp://127.0.0.1:5557", help="the broker's event endpoint")
    add.add_argument("--shop", default="shop-42")
    args = parser.parse_args(argv)

    if args.command == "worker":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        make_worker(args.broker, args.name, args.concurrency).run()
        return 0
    with jobq.Client(args.broker, events=args.events) as client:
        job = enqueue_and_watch(client, args.shop, args.urls)
    return 0 if job.status == jobq.Status.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
