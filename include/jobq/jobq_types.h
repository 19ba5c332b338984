/*  jobq_types.h: the job states and the protocol limits users see. */
#ifndef JOBQ_TYPES_H_INCLUDED
#define JOBQ_TYPES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobq/jobq_err.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Job states. pending -> running -> completed | failed | cancelled; a
//  failed attempt with attempts left goes back to pending.
typedef enum {
    JOBQ_PENDING = 0,
    JOBQ_RUNNING = 1,
    JOBQ_COMPLETED = 2,
    JOBQ_FAILED = 3,
    JOBQ_CANCELLED = 4,
    JOBQ_STATUS_COUNT_ = 5
} jobq_status_t;

//  "pending", "running", ...; "unknown" for anything else. Static.
JOBQ_EXPORT const char *jobq_status_name(int status);
//  Parse a state name of len bytes; returns the state or -1.
JOBQ_EXPORT int jobq_status_parse(const char *name, size_t len);
//  True for completed, failed and cancelled.
JOBQ_EXPORT bool jobq_status_is_final(int status);

//  Why a job that has not ended is not running now (the job map's `wait`,
//  docs/PROTOCOL.md section 6). The broker works it out when it writes the
//  job; it is not stored.
typedef enum {
    JOBQ_WAIT_NONE = 0,         //  running with a live worker, or ended
    JOBQ_WAIT_QUEUED = 1,       //  due; a connected worker runs its type
    JOBQ_WAIT_NO_WORKER = 2,    //  due; no connected worker runs its type
    JOBQ_WAIT_DELAYED = 3,      //  its delay runs until wait_until
    JOBQ_WAIT_RETRY = 4,        //  an attempt failed; next at wait_until
    JOBQ_WAIT_WORKER_LOST = 5,  //  running, but its worker is not heard
                                //  from; given up at wait_until
    JOBQ_WAIT_COUNT_ = 6
} jobq_wait_t;

//  "queued", "no_worker", ...; "" for JOBQ_WAIT_NONE or anything else.
JOBQ_EXPORT const char *jobq_wait_name(int wait);
//  Parse a reason of len bytes; JOBQ_WAIT_NONE for one this library does
//  not know (a newer broker's).
JOBQ_EXPORT int jobq_wait_parse(const char *name, size_t len);

//  Job ids are 16 lowercase hex digits of a 64-bit value that grows with
//  time (ms since the epoch << 16 | a counter), so ids sort by creation.
#define JOBQ_ID_LEN 16

//  Format id into out (JOBQ_ID_LEN + 1 bytes, NUL-terminated).
JOBQ_EXPORT void jobq_id_format(uint64_t id, char out[JOBQ_ID_LEN + 1]);
//  Parse exactly JOBQ_ID_LEN hex digits; JOBQ_OK or JOBQ_EINVAL.
JOBQ_EXPORT int jobq_id_parse(const char *s, size_t len, uint64_t *id);

//  --- Limits (docs/PROTOCOL.md, "Limits") ---------------------------------
#define JOBQ_MAX_FRAME_BYTES  (2u << 20)    //  one frame; ZMQ_MAXMSGSIZE
#define JOBQ_MAX_INPUT_BYTES  (256u << 10)  //  encoded input map
#define JOBQ_MAX_OUTPUT_BYTES (1u << 20)    //  encoded output map
#define JOBQ_MAX_TYPE_LEN     64            //  job type name, bytes
#define JOBQ_MAX_SHOP_LEN     128           //  shop id, bytes
#define JOBQ_MAX_KEY_LEN      255           //  idempotency key, bytes
#define JOBQ_MAX_MESSAGE_LEN  1024          //  progress message, bytes
#define JOBQ_MAX_ERROR_LEN    4096          //  error message, bytes
#define JOBQ_MAX_DEPTH        16            //  msgpack nesting
#define JOBQ_MAX_MAP_DEPTH    14            //  input/output map nesting
#define JOBQ_MAX_CONTAINER    65536         //  entries in one array/map
#define JOBQ_MAX_ELEMENTS     262144        //  entries in one message
#define JOBQ_MAX_WORKER_TYPES 64            //  types one worker declares
#define JOBQ_MAX_CAPACITY     1024          //  concurrent jobs per worker
#define JOBQ_MAX_LIST         1000          //  jobs in one LIST page
#define JOBQ_MAX_BATCH        1000          //  jobs in one ENQUEUE_BATCH
#define JOBQ_DEFAULT_LIST     50            //  LIST page without limit
#define JOBQ_MIN_PRIORITY     (-1000)       //  lowest priority
#define JOBQ_MAX_PRIORITY     1000          //  highest priority
#define JOBQ_MAX_DELAY_MS     (366ull * 24 * 3600 * 1000)  //  one year
#define JOBQ_MAX_ATTEMPTS     100  //  max_attempts ceiling
#define JOBQ_DEFAULT_ATTEMPTS 3    //  max_attempts by default
#define JOBQ_MAX_TIMEOUT_MS   (7ull * 24 * 3600 * 1000)  //  one week

#ifdef __cplusplus
}
#endif
#endif
