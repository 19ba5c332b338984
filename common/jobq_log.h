/*  jobq_log.h: one-line, levelled logging for the shells.

    Core modules (codec, store, engine) never log; they return errors. The
    broker and worker shells log through a jobq_log_t they are given. A line
    reads "2026-11-28T12:00:00.123Z warn broker: msg". The level is tested
    before anything is formatted.
*/
#ifndef JOBQ_LOG_H_INCLUDED
#define JOBQ_LOG_H_INCLUDED

#include <stdio.h>

typedef enum {
    JOBQ_LOG_ERROR = 0,
    JOBQ_LOG_WARN = 1,
    JOBQ_LOG_NOTICE = 2,
    JOBQ_LOG_INFO = 3,
    JOBQ_LOG_DEBUG = 4
} jobq_log_level_t;

typedef struct {
    FILE *out;               //  sink; stderr by default
    jobq_log_level_t level;  //  lines above this level are not formatted
    const char *component;   //  "broker", "worker", ...
} jobq_log_t;

//  Write one line if level is enabled. log may be NULL (nothing written).
void jobq_log_write(const jobq_log_t *log,
                    jobq_log_level_t level,
                    const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

#define JOBQ_LOG(log, lvl, ...)                                                \
    do {                                                                       \
        if ((log) && (lvl) <= (log)->level)                                    \
            jobq_log_write((log), (lvl), __VA_ARGS__);                         \
    } while (0)

#endif
