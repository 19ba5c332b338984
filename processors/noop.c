/*  noop: the output is the input. For smoke tests and benchmarks. */
#include "jobq_processors.h"

int
jobq_proc_noop(jobq_job_t *job, void *state)
{
    (void) state;
    jobq_bytes_t in = jobq_job_input(job);
    jobq_mp_write_raw(jobq_job_output(job), in.ptr, in.len);
    return JOBQ_OK;
}
