/*  jobq_processors.c: the small processors, and input helpers for all. */
#include "jobq_processors.h"

#include <string.h>

static const struct {
    const char *type;     //  job type
    jobq_process_fn *fn;  //  its processor
} s_builtin[] = {
    {"noop", jobq_proc_noop},
    {"sleep", jobq_proc_sleep},
    {"fail", jobq_proc_fail},
};

int
jobq_processors_register(jobq_registry_t *reg)
{
    for (size_t i = 0; i < sizeof s_builtin / sizeof s_builtin[0]; i++) {
        int rc =
            jobq_registry_add(reg, s_builtin[i].type, s_builtin[i].fn, NULL);
        if (rc != JOBQ_OK)
            return rc;
    }
    return JOBQ_OK;
}

int
jobq_proc_input_cstr(const jobq_job_t *job,
                     const char *key,
                     char *buf,
                     size_t cap)
{
    jobq_str_t s;
    int rc = jobq_job_input_str(job, key, &s);
    if (rc != JOBQ_OK)
        return rc;
    if (memchr(s.ptr, '\0', s.len))
        return JOBQ_EINVAL;
    if (s.len >= cap)
        return JOBQ_ETOOBIG;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    return JOBQ_OK;
}

int
jobq_proc_input_range(
    jobq_job_t *job, const char *key, int64_t min, int64_t max, int64_t *out)
{
    int64_t v = *out;
    int rc = jobq_job_input_int(job, key, &v);
    if (rc == JOBQ_ENOTFOUND)
        return JOBQ_OK;
    if (rc != JOBQ_OK || v < min || v > max)
        return jobq_job_fail(job, true,
                             "input '%s': an integer from %lld to %lld", key,
                             (long long) min, (long long) max);
    *out = v;
    return JOBQ_OK;
}
