/*  fail: fail on purpose, for tests of errors and retries. */
#include "jobq_processors.h"

int
jobq_proc_fail(jobq_job_t *job, void *state)
{
    (void) state;
    jobq_str_t msg = {"failed on purpose", 17};
    bool permanent = false;
    int64_t times = -1;
    jobq_job_input_str(job, "message", &msg);
    jobq_job_input_bool(job, "permanent", &permanent);
    jobq_job_input_int(job, "times", &times);
    if (times >= 0 && jobq_job_attempt(job) > (uint64_t) times) {
        jobq_mp_writer_t *out = jobq_job_output(job);
        jobq_mp_write_map(out, 1);
        jobq_mp_write_cstr(out, "attempt");
        jobq_mp_write_uint(out, jobq_job_attempt(job));
        return JOBQ_OK;
    }
    return jobq_job_fail(job, permanent, "%.*s", (int) msg.len, msg.ptr);
}
