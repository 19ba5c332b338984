/*  jobq_types.c: job states and job ids (include/jobq/jobq_types.h). */
#include "jobq/jobq_types.h"

#include <string.h>

static const char *const s_status[] = {"pending", "running", "completed",
                                       "failed", "cancelled"};

const char *
jobq_status_name(int status)
{
    if (status < 0 || status >= JOBQ_STATUS_COUNT_)
        return "unknown";
    return s_status[status];
}

int
jobq_status_parse(const char *name, size_t len)
{
    for (int i = 0; i < JOBQ_STATUS_COUNT_; i++)
        if (strlen(s_status[i]) == len && memcmp(s_status[i], name, len) == 0)
            return i;
    return -1;
}

static const char *const s_wait[] = {"",        "queued", "no_worker",
                                     "delayed", "retry",  "worker_lost"};

const char *
jobq_wait_name(int wait)
{
    if (wait <= JOBQ_WAIT_NONE || wait >= JOBQ_WAIT_COUNT_)
        return "";
    return s_wait[wait];
}

int
jobq_wait_parse(const char *name, size_t len)
{
    for (int i = 1; i < JOBQ_WAIT_COUNT_; i++)
        if (strlen(s_wait[i]) == len && memcmp(s_wait[i], name, len) == 0)
            return i;
    return JOBQ_WAIT_NONE;
}

bool
jobq_status_is_final(int status)
{
    return status == JOBQ_COMPLETED || status == JOBQ_FAILED ||
           status == JOBQ_CANCELLED;
}

void
jobq_id_format(uint64_t id, char out[JOBQ_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = JOBQ_ID_LEN - 1; i >= 0; i--) {
        out[i] = hex[id & 0xf];
        id >>= 4;
    }
    out[JOBQ_ID_LEN] = '\0';
}

int
jobq_id_parse(const char *s, size_t len, uint64_t *id)
{
    if (!s || len != JOBQ_ID_LEN)
        return JOBQ_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned) (c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned) (c - 'a' + 10);
        else
            return JOBQ_EINVAL;
        v = (v << 4) | d;
    }
    *id = v;
    return JOBQ_OK;
}
