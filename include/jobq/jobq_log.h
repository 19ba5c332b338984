/*  jobq_log.h: one-line, levelled log lines, to a sink the program chooses.

    libjobq never writes to stderr on its own: the worker runtime (and any
    other part that has something to say) writes through the jobq_log_t its
    caller gave it, and says nothing when given none. A line reads
    "2026-11-28T12:00:00.123Z warn worker: msg". The level is tested before
    anything is formatted. Core modules (codec, store, engine) never log;
    they return errors.
*/
#ifndef JOBQ_LOG_H_INCLUDED
#define JOBQ_LOG_H_INCLUDED

#include <stdio.h>

#include "jobq/jobq_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    JOBQ_LOG_ERROR = 0,
    JOBQ_LOG_WARN = 1,
    JOBQ_LOG_NOTICE = 2,
    JOBQ_LOG_INFO = 3,
    JOBQ_LOG_DEBUG = 4
} jobq_log_level_t;

typedef struct {
    FILE *out;               //  sink; NULL = stderr
    jobq_log_level_t level;  //  lines above this level are not formatted
    const char *component;   //  "broker", "worker", ...
} jobq_log_t;

//  Write one line if level is enabled; the message is cut at 1,023 bytes
//  (the time, level and component come on top). log
//  may be NULL (nothing is written). Safe from several threads: each line
//  is written with one call.
JOBQ_EXPORT void jobq_log_write(const jobq_log_t *log,
                                jobq_log_level_t level,
                                const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

#define JOBQ_LOG(log, lvl, ...)                                                \
    do {                                                                       \
        if ((log) && (lvl) <= (log)->level)                                    \
            jobq_log_write((log), (lvl), __VA_ARGS__);                         \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
