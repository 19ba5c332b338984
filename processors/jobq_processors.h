/*  jobq_processors.h: the processors that ship with jobq.

    noop   returns its input as its output.
    sleep  input {"ms": N, "steps": K}: sleeps N ms in K steps, reporting
           progress after each step; stops early when cancelled.
    fail   input {"message": "...", "permanent": bool, "times": N}: fails
           with message; with times, fails only the first N attempts and
           then completes (for retry tests).
*/
#ifndef JOBQ_PROCESSORS_H_INCLUDED
#define JOBQ_PROCESSORS_H_INCLUDED

#include "jobq/jobq_worker.h"

int jobq_proc_noop(jobq_job_t *job, void *state);
int jobq_proc_sleep(jobq_job_t *job, void *state);
int jobq_proc_fail(jobq_job_t *job, void *state);

//  Register every shipped processor in reg. JOBQ_OK or the first error.
int jobq_processors_register(jobq_registry_t *reg);

#endif
