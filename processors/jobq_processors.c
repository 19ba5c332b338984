/*  jobq_processors.c: the one list of shipped processors. */
#include "jobq_processors.h"

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
