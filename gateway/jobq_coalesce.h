/*  jobq_coalesce.h: POST /v1/jobs requests that arrive together go to the
    broker as one ENQUEUE_BATCH.

    Each request's thread hands its job to one coalescing thread and waits.
    That thread sends what is waiting as one batch (one message, one commit
    for all), and while that batch is at the broker the next requests
    gather: the more requests at once, the bigger the batches, and nothing
    waits for a timer. Each request still gets its own answer: when a batch
    is refused for one entry (a bad type, a shop over its quota), its jobs
    are sent again one at a time. A batch the broker did not answer is not
    sent again (its jobs may exist): each request gets 503, and its caller
    resends with its key, as for any request. A request that gives up
    before its job was sent takes the job out: it is never sent.
*/
#ifndef JOBQ_COALESCE_H_INCLUDED
#define JOBQ_COALESCE_H_INCLUDED

#include "jobq/jobq_client.h"

#define JOBQ_COALESCE_MAX_JOBS  256         //  jobs in one batch
#define JOBQ_COALESCE_MAX_BYTES (1u << 20)  //  their inputs, in all
#define JOBQ_COALESCE_MAX_QUEUE 4096        //  requests waiting at most
#define JOBQ_COALESCE_THREADS   4           //  batches at the broker at once

//  Start the coalescing thread; it makes its broker client with client(),
//  called from the thread. JOBQ_OK or JOBQ_ENOMEM.
int jobq_coalesce_start(jobq_client_t *(*client)(void), void (*done)(void));

//  Stop it: waiting requests get JOBQ_EUNAVAILABLE.
void jobq_coalesce_stop(void);

//  Enqueue e through a batch and wait for its answer (at most wait_ms).
//  JOBQ_OK with id and *created, or an error code with why (the broker's
//  message, or one of ours). JOBQ_EUNAVAILABLE when the queue is full or
//  the coalescer stopped.
int jobq_coalesce_enqueue(const jobq_enqueue_t *e,
                          int wait_ms,
                          char id[JOBQ_ID_LEN + 1],
                          bool *created,
                          char *why,
                          size_t why_len);

#endif
