"""jobq: the Python client and worker library of the jobq background job system.

It speaks JOBQ/1 (docs/PROTOCOL.md) to ``jobq-broker`` over ZeroMQ:

    import jobq

    client = jobq.Client("tcp://127.0.0.1:5555", events="tcp://127.0.0.1:5557")
    job_id = client.enqueue("scrape_reviews", "shop-42", {"url": "https://example.com"})
    for job in client.watch(job_id):
        print(job.status, job.progress, job.message)
"""

import logging

from .aio import AsyncClient
from .client import Client
from .curve import CurveKeys
from .errors import (
    BadRequest,
    Cancelled,
    Error,
    Forbidden,
    InternalError,
    InvalidState,
    JobFailure,
    NoReply,
    PermanentError,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    StorageError,
    StorageFull,
    TooLarge,
    Unavailable,
    UnknownCommand,
    UnknownJob,
    UnknownType,
    UnsupportedVersion,
    WatchTimeout,
)
from .models import AttemptError, Enqueued, Job, JobSpec, Page, Status, Wait
from .processing import RunningJob
from .worker import Worker

__version__ = "0.1.0"

# The library logs to "jobq" and its children; the program decides where
# that goes (nowhere until it configures logging).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AsyncClient",
    "AttemptError",
    "BadRequest",
    "Cancelled",
    "Client",
    "CurveKeys",
    "Enqueued",
    "Error",
    "Forbidden",
    "InternalError",
    "InvalidState",
    "Job",
    "JobFailure",
    "JobSpec",
    "NoReply",
    "Page",
    "PermanentError",
    "ProtocolError",
    "QuotaExceeded",
    "RateLimited",
    "RunningJob",
    "Status",
    "StorageError",
    "StorageFull",
    "TooLarge",
    "Unavailable",
    "UnknownCommand",
    "UnknownJob",
    "UnknownType",
    "UnsupportedVersion",
    "Wait",
    "WatchTimeout",
    "Worker",
]
