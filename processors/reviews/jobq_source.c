/*  jobq_source.c: a completed job's output, through the slot's client. */
#include "jobq_source.h"

#include <string.h>

int
jobq_source_read(jobq_job_t *job,
                 const char *field,
                 jobq_str_t id,
                 jobq_job_info_t *info)
{
    memset(info, 0, sizeof *info);
    uint64_t v;
    if (id.len != JOBQ_ID_LEN || jobq_id_parse(id.ptr, id.len, &v) != JOBQ_OK)
        return jobq_job_fail(job, true,
                             "input '%s': '%.*s' is not a job id (%d hex "
                             "digits)",
                             field, (int) (id.len > 64 ? 64 : id.len), id.ptr,
                             JOBQ_ID_LEN);
    char hex[JOBQ_ID_LEN + 1];
    memcpy(hex, id.ptr, JOBQ_ID_LEN);
    hex[JOBQ_ID_LEN] = '\0';
    jobq_client_t *c = jobq_job_client(job);
    if (!c)
        return jobq_job_fail(job, false,
                             "no client for the broker at %s (out of memory, "
                             "or a bad --clients endpoint)",
                             jobq_job_broker_clients(job));
    int rc = jobq_client_status(c, hex, info);
    //  Another shop's job is not this job's to read: answered exactly as a
    //  missing one, so that its existence does not show either.
    if (rc == JOBQ_OK && strcmp(info->shop_id, jobq_job_shop(job)) != 0) {
        jobq_job_info_clear(info);
        rc = JOBQ_ENOTFOUND;
    }
    if (rc == JOBQ_ENOTFOUND)
        return jobq_job_fail(job, true, "input '%s': job %s not found", field,
                             hex);
    if (rc != JOBQ_OK)
        return jobq_job_fail(job, false, "input '%s': cannot read job %s: %s",
                             field, hex, jobq_client_last_error(c));
    int status = info->status;
    if (status == JOBQ_COMPLETED)
        return JOBQ_OK;
    jobq_job_info_clear(info);
    //  Pending or running: it may complete by the next attempt.
    bool ended = jobq_status_is_final(status);
    return jobq_job_fail(job, ended, "input '%s': job %s %s %s, not completed",
                         field, hex, ended ? "ended" : "is",
                         jobq_status_name(status));
}
