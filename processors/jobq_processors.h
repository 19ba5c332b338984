/*  jobq_processors.h: the small processors that ship with jobq, and input
    helpers every processor may use. The review pipeline (scrape_reviews,
    export_data, generate_report) is in processors/reviews.

    noop            returns its input as its output.
    sleep           input {"ms": N, "steps": K}: sleeps N ms in K steps,
                    reporting progress after each step; stops early when
                    cancelled.
    fail            input {"message": "...", "permanent": bool, "times": N}:
                    fails with message; with times, fails only the first N
                    attempts and then completes (for retry tests).

    docs/PROCESSORS.md has every input field, output and error.
*/
#ifndef JOBQ_PROCESSORS_H_INCLUDED
#define JOBQ_PROCESSORS_H_INCLUDED

#include "jobq/jobq_worker.h"

int jobq_proc_noop(jobq_job_t *job, void *state);
int jobq_proc_sleep(jobq_job_t *job, void *state);
int jobq_proc_fail(jobq_job_t *job, void *state);

//  Register noop, sleep and fail in reg. JOBQ_OK or the first error.
int jobq_processors_register(jobq_registry_t *reg);

//  Input field key, a string, as a NUL-terminated copy in buf (cap bytes).
//  JOBQ_OK, JOBQ_ENOTFOUND (absent or nil), JOBQ_EINVAL (not a string, or
//  it holds a NUL byte), JOBQ_ETOOBIG (cap bytes or more).
int jobq_proc_input_cstr(const jobq_job_t *job,
                         const char *key,
                         char *buf,
                         size_t cap);

//  Input field key, an integer from min to max, into *out (left as it is
//  when the field is absent). JOBQ_OK, or the job has been failed for good
//  with a message naming the field and its range, and the result is
//  JOBQ_EFAILED.
int jobq_proc_input_range(
    jobq_job_t *job, const char *key, int64_t min, int64_t max, int64_t *out);

#endif
