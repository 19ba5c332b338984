/*  jobq_err.h: the one error enum of jobq.

    Every jobq function that can fail returns JOBQ_OK (0) or one of the
    negative codes below. Foreign codes (LMDB, errno, ZeroMQ) are translated
    into these once, at the edge that meets them.
*/
#ifndef JOBQ_ERR_H_INCLUDED
#define JOBQ_ERR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

#if defined(JOBQ_BUILDING)
#define JOBQ_EXPORT __attribute__((visibility("default")))
#else
#define JOBQ_EXPORT
#endif

typedef enum {
    JOBQ_OK = 0,
    JOBQ_ENOMEM = -1,        //  out of memory
    JOBQ_EINVAL = -2,        //  bad argument or bad request
    JOBQ_ENOTFOUND = -3,     //  no such job
    JOBQ_ETOOBIG = -4,       //  a size limit was exceeded
    JOBQ_EUNAVAILABLE = -5,  //  peer unreachable, or the broker is stopping
    JOBQ_EINTERNAL = -6,     //  a bug or an unexpected condition
    JOBQ_ESTATE = -7,        //  the job is in the wrong state for this
    JOBQ_ESTOREFULL = -8,    //  storage map full (retryable)
    JOBQ_ESTORAGE = -9,      //  storage I/O error; nothing was persisted
    JOBQ_ETIMEOUT = -10,     //  no answer within the time limit
    JOBQ_EPROTO = -11,       //  a peer broke the wire protocol
    JOBQ_ECANCELLED = -12,   //  the job was cancelled
    JOBQ_EEXIST = -13,       //  already exists
    JOBQ_EVERSION = -14,     //  unsupported protocol or record version
    JOBQ_ECOMMAND = -15,     //  unknown command
    JOBQ_ESTALE = -16,       //  message from a stale attempt (fenced)
    JOBQ_ECORRUPT = -17,     //  stored data failed its checks
    JOBQ_EFAILED = -18,      //  the job failed
    JOBQ_EINTR = -19,        //  a signal interrupted the wait (never on the
                             //  wire)
    JOBQ_ETYPE = -20,        //  a job type this broker does not run
    JOBQ_EFORBIDDEN = -21,   //  the caller's key may not do this
    JOBQ_ERATE = -22,        //  the caller's key sent too many requests
    JOBQ_EQUOTA = -23,       //  the shop is at its quota of jobs or bytes
    JOBQ_ERR_MIN_ = -23      //  lowest code; for range checks
} jobq_err_t;

//  A static, human-readable description of code. Never NULL; unknown codes
//  give "unknown error".
JOBQ_EXPORT const char *jobq_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
