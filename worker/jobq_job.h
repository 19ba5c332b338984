/*  jobq_job.h: the handle a processor runs its job through (the public
    jobq_job_* calls of jobq_worker.h), private to the worker runtime.

    A slot keeps one handle and reuses it for every job it runs: the pool
    starts it with jobq_job_start, calls the processor, and turns what the
    processor left in it into the job's report with jobq_job_finish.
*/
#ifndef JOBQ_JOB_H_INCLUDED
#define JOBQ_JOB_H_INCLUDED

#include "jobq_pool.h"

struct jobq_job {
    jobq_pool_slot_t *slot;                   //  where it runs
    uint64_t idv;                             //  job id
    char id[JOBQ_ID_LEN + 1];                 //  as hex
    uint32_t attempt;                         //  from 1
    char type[JOBQ_MAX_TYPE_LEN + 1];         //  job type
    char shop[JOBQ_MAX_SHOP_LEN + 1];         //  shop id
    jobq_bytes_t input;                       //  borrowed from the JOB body
    jobq_mp_writer_t out;                     //  output map
    char error[JOBQ_MAX_ERROR_LEN + 1];       //  set by jobq_job_fail
    bool permanent;                           //  no retry
    int last_pct;                             //  last progress sent, -1 = none
    char last_msg[JOBQ_MAX_MESSAGE_LEN + 1];  //  last message sent
    jobq_client_t **client;                   //  the slot's, made lazily
};

//  Make job the handle of attempt of job id on slot: type and shop are
//  copied, input is borrowed until jobq_job_finish. client is where the
//  slot keeps its broker client (see jobq_job_client).
void jobq_job_start(jobq_job_t *job,
                    jobq_pool_slot_t *slot,
                    uint64_t id,
                    uint32_t attempt,
                    jobq_str_t type,
                    jobq_str_t shop,
                    jobq_bytes_t input,
                    jobq_client_t **client);

//  The processor returned rc: fill in the job's DONE report *r. An output
//  that is not one map within the protocol's limits fails the job for
//  good. The output buffer moves into r (no copy).
void jobq_job_finish(jobq_job_t *job, int rc, jobq_pool_result_t *r);

#endif
