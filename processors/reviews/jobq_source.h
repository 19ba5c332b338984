/*  jobq_source.h: the output of an earlier job, for processors that work on
    the results of others (export_data, generate_report).

    The job is read from the broker with the slot's client
    (jobq_job_client). Whether the processor should fail for good or be
    retried follows from what the broker says: a malformed id, an unknown
    job, or one that failed or was cancelled will not get better; a broker
    that does not answer, or a job still pending or running, may. A job of
    another shop than the processor's own job is answered as unknown, word
    for word: one shop never reads another's results.
*/
#ifndef JOBQ_SOURCE_H_INCLUDED
#define JOBQ_SOURCE_H_INCLUDED

#include "jobq/jobq_client.h"
#include "jobq/jobq_worker.h"

//  Read the completed job whose id is id (from the input field named field)
//  into *info (zeroed first; clear it after). JOBQ_OK, or the job has been
//  failed (jobq_job_fail, with a message naming field and the id) and the
//  result is JOBQ_EFAILED.
int jobq_source_read(jobq_job_t *job,
                     const char *field,
                     jobq_str_t id,
                     jobq_job_info_t *info);

#endif
