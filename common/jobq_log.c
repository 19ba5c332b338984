/*  jobq_log.c: the stderr line sink. */
#include "jobq/jobq_log.h"

#include <stdarg.h>
#include <time.h>

static const char *const s_names[] = {"error", "warn", "notice", "info",
                                      "debug"};

void
jobq_log_write(const jobq_log_t *log,
               jobq_log_level_t level,
               const char *fmt,
               ...)
{
    if (!log || level > log->level)
        return;
    FILE *out = log->out ? log->out : stderr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(out, "%s.%03ldZ %s %s: %s\n", stamp, ts.tv_nsec / 1000000L,
            s_names[level], log->component ? log->component : "jobq", line);
    fflush(out);
}
