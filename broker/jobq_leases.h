/*  jobq_leases.h: the running attempts the broker is tracking, by job id.

    One entry per attempt a worker holds: which worker, until when its lease
    runs and when the job's timeout ends it. Open addressing over a
    power-of-two table; memory grows with the number of running attempts,
    which the workers' declared capacity bounds.
*/
#ifndef JOBQ_LEASES_H_INCLUDED
#define JOBQ_LEASES_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "jobq_proto.h"

typedef struct {
    uint64_t id;       //  job id (0 = free slot)
    uint32_t attempt;  //  attempt number the worker runs
    void *worker;      //  engine's worker, NULL if unknown
    char worker_name[JOBQ_WORKER_NAME_MAX + 1];  //  lease holder
    uint64_t lease_deadline;    //  monotonic ms; gone after this
    uint64_t timeout_deadline;  //  monotonic ms; 0 = no timeout
    uint64_t granted;           //  monotonic ms it was handed out;
                                //  0 = before this process started
    uint8_t ended;              //  job ended; slot held until report
    uint64_t progress_seq;      //  seq of the last progress change, 0 = none
    uint64_t renew_at;          //  shared store: monotonic ms to write the
                                //  lease's end again
    uint8_t held;               //  shared store: its JOB waits for the
                                //  store to confirm the claim
    size_t progress_action;     //  its event among that turn's actions
} jobq_lease_t;

typedef struct jobq_leases jobq_leases_t;

//  NULL only if out of memory.
jobq_leases_t *jobq_leases_new(void);
void jobq_leases_destroy(jobq_leases_t **self_p);

//  The entry for id, or NULL.
jobq_lease_t *jobq_leases_get(jobq_leases_t *self, uint64_t id);
//  A zeroed entry for id (id must not be present), or NULL if out of
//  memory. Pointers to entries stay valid until the next add or remove.
jobq_lease_t *jobq_leases_add(jobq_leases_t *self, uint64_t id);
//  Remove id if present.
void jobq_leases_remove(jobq_leases_t *self, uint64_t id);
size_t jobq_leases_count(const jobq_leases_t *self);
//  Iterate: *pos starts at 0; returns the next entry or NULL at the end.
//  Removing the returned entry during iteration is allowed.
jobq_lease_t *jobq_leases_next(jobq_leases_t *self, size_t *pos);

#endif
