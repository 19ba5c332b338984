/*  jobq_err.c: descriptions of the jobq error codes. */
#include "jobq/jobq_err.h"

static const char *const s_messages[] = {
    "ok",
    "out of memory",
    "invalid argument or request",
    "no such job",
    "size limit exceeded",
    "unavailable",
    "internal error",
    "job is in the wrong state for this",
    "storage full",
    "storage I/O error",
    "timed out",
    "protocol error",
    "cancelled",
    "already exists",
    "unsupported version",
    "unknown command",
    "stale attempt",
    "stored data is corrupt",
    "job failed",
    "interrupted",
    "unknown job type",
    "not allowed for this key",
    "rate limited",
    "quota exceeded",
};

const char *
jobq_strerror(int code)
{
    if (code > 0 || code < JOBQ_ERR_MIN_)
        return "unknown error";
    return s_messages[-code];
}
