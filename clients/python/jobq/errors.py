"""The exceptions of jobq.

Every error the broker answers with is a :class:`Error` whose ``code`` is the
JOBQ/1 error code (PROTOCOL.md section 7); the common codes have their own
subclass, so callers can write ``except jobq.UnknownJob``. Checks the library
makes before sending (section 11's limits) raise the same classes the broker
would, with the same codes.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "BadRequest",
    "TooLarge",
    "UnknownCommand",
    "UnsupportedVersion",
    "UnknownJob",
    "InvalidState",
    "Unavailable",
    "NoReply",
    "StorageFull",
    "StorageError",
    "UnknownType",
    "Forbidden",
    "RateLimited",
    "QuotaExceeded",
    "InternalError",
    "ProtocolError",
    "WatchTimeout",
    "JobFailure",
    "PermanentError",
    "Cancelled",
]


class Error(Exception):
    """A request failed. ``code`` is JOBQ/1's error code, ``message`` the text."""

    code: str = "internal"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BadRequest(Error, ValueError):
    """The request breaks a rule of the protocol (``bad_request``)."""

    code = "bad_request"


class TooLarge(Error, ValueError):
    """A size, count or nesting limit was passed (``too_large``)."""

    code = "too_large"


class UnknownCommand(Error):
    """The broker does not take this command here (``unknown_command``)."""

    code = "unknown_command"


class UnsupportedVersion(Error):
    """Another protocol or record version (``unsupported_version``)."""

    code = "unsupported_version"


class UnknownJob(Error, LookupError):
    """No job with that id, or not one this key may see (``unknown_job``)."""

    code = "unknown_job"


class InvalidState(Error):
    """The job is in the wrong state for this request (``invalid_state``)."""

    code = "invalid_state"


class Unavailable(Error):
    """The broker is shutting down, or did not answer (``unavailable``)."""

    code = "unavailable"


class NoReply(Unavailable, TimeoutError):
    """No answer came within the timeout, after every resend."""


class StorageFull(Error):
    """The broker's storage is full; retry later (``storage_full``)."""

    code = "storage_full"


class StorageError(Error):
    """The broker could not write or read its storage (``storage_error``)."""

    code = "storage_error"


class UnknownType(Error):
    """The broker does not run this job type (``unknown_type``)."""

    code = "unknown_type"


class Forbidden(Error, PermissionError):
    """The CURVE key in use may not do this (``forbidden``)."""

    code = "forbidden"


class RateLimited(Error):
    """The key sent too many requests; retry after a moment (``rate_limited``)."""

    code = "rate_limited"


class QuotaExceeded(Error):
    """The shop is at its quota of jobs or bytes (``quota_exceeded``)."""

    code = "quota_exceeded"


class InternalError(Error):
    """``internal``, and any code this library does not know (section 7)."""

    code = "internal"


class ProtocolError(Error):
    """The broker sent something that does not follow JOBQ/1."""

    code = "protocol"


class WatchTimeout(Error, TimeoutError):
    """A watched job did not end within the watch's timeout."""

    code = "timeout"


_BY_CODE: dict[str, type[Error]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        TooLarge,
        UnknownCommand,
        UnsupportedVersion,
        UnknownJob,
        InvalidState,
        Unavailable,
        StorageFull,
        StorageError,
        UnknownType,
        Forbidden,
        RateLimited,
        QuotaExceeded,
        InternalError,
    )
}


def from_code(code: str, message: str) -> Error:
    """The exception for an ERROR body; unknown codes are internal errors."""
    return _BY_CODE.get(code, InternalError)(message, code)


class JobFailure(Exception):
    """Raised by a processor: the attempt fails with exactly this message.

    Any other exception fails the attempt too, with the error
    ``"<ExceptionType>: <message>"``; this one gives the error as it is.
    The broker retries the job while attempts are left, unless ``permanent``.
    """

    def __init__(self, message: str = "", *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class PermanentError(JobFailure):
    """Raised by a processor: the job fails for good, without a retry."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message, permanent=True)


class Cancelled(Exception):
    """Raised inside a processor once its job was cancelled (or timed out).

    :meth:`jobq.RunningJob.sleep` and :meth:`jobq.RunningJob.check_cancelled`
    raise it; the worker reports the attempt as cancelled.
    """
