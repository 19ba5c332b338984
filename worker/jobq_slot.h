/*  jobq_slot.h: one unit of a worker's concurrency: a thread that runs one
    job at a time, talking to the runtime only by messages on its pipe.

    runtime -> slot:  "JOB" id(8) attempt(4) type shop input timeout(8)
                      "CANCEL" id(8)          (stop the running job)
                      "$TERM"                 (end the thread)
    slot -> runtime:  "PROGRESS" id attempt percent(1) message
                      "DONE" id attempt ok(1) output-or-error permanent(1)
                             cancelled(1)
    Integers are little-endian; the job's bytes are copied into the message,
    so no memory is shared between the threads.
*/
#ifndef JOBQ_SLOT_H_INCLUDED
#define JOBQ_SLOT_H_INCLUDED

#include <czmq.h>

#include "jobq/jobq_worker.h"

typedef struct {
    const jobq_registry_t *registry;  //  borrowed, read-only while running
    const char *clients;              //  broker client endpoint, borrowed
    const char *export_dir;           //  borrowed
} jobq_slot_args_t;

//  The zactor body of a slot; args is a jobq_slot_args_t * that must
//  outlive the actor.
void jobq_slot_actor(zsock_t *pipe, void *args);

//  Messages of the slot protocol, for the runtime.
int jobq_slot_send_job(zsock_t *slot,
                       uint64_t id,
                       uint32_t attempt,
                       jobq_str_t type,
                       jobq_str_t shop,
                       jobq_bytes_t input,
                       uint64_t timeout_ms);
int jobq_slot_send_cancel(zsock_t *slot, uint64_t id);

//  Read a u64/u32 from a frame written by the slot protocol.
uint64_t jobq_slot_u64(zframe_t *f);
uint32_t jobq_slot_u32(zframe_t *f);

#endif
