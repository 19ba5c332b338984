/*  sleep: wait N ms in K steps with progress after each. Stands in for a
    long job in demos and tests of progress, cancel and timeouts. */
#include "jobq_processors.h"

#define S_MAX_MS    (24ll * 3600 * 1000)  //  one day
#define S_MAX_STEPS 10000

int
jobq_proc_sleep(jobq_job_t *job, void *state)
{
    (void) state;
    int64_t ms = 1000, steps = 10;
    int rc = jobq_job_input_int(job, "ms", &ms);
    if (rc == JOBQ_EINVAL || ms < 0 || ms > S_MAX_MS)
        return jobq_job_fail(job, true, "input 'ms': an integer from 0 to %lld",
                             S_MAX_MS);
    rc = jobq_job_input_int(job, "steps", &steps);
    if (rc == JOBQ_EINVAL || steps < 1 || steps > S_MAX_STEPS)
        return jobq_job_fail(
            job, true, "input 'steps': an integer from 1 to %d", S_MAX_STEPS);
    for (int64_t i = 1; i <= steps; i++) {
        int64_t until = ms * i / steps, before = ms * (i - 1) / steps;
        if (jobq_job_sleep(job, (uint64_t) (until - before)) != JOBQ_OK)
            return jobq_job_fail(job, false, "cancelled at step %lld of %lld",
                                 (long long) i, (long long) steps);
        jobq_job_progress(job, (unsigned) (100 * i / steps),
                          "step %lld of %lld", (long long) i,
                          (long long) steps);
    }
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 2);
    jobq_mp_write_cstr(out, "slept_ms");
    jobq_mp_write_int(out, ms);
    jobq_mp_write_cstr(out, "steps");
    jobq_mp_write_int(out, steps);
    return JOBQ_OK;
}
