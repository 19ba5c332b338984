/*  jobq_sched.c: the calling thread's scheduler slice (jobq_sched.h).
    glibc before 2.41 wraps neither sched_getattr nor sched_setattr, and
    the one that does declares struct sched_attr itself: raw syscalls, and
    the kernel's layout (version 1, 56 bytes) under a name of our own. */
#define _GNU_SOURCE
#include "jobq_sched.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define S_RESET_ON_FORK 0x01  //  SCHED_FLAG_RESET_ON_FORK, kept as it was

typedef struct {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;  //  SCHED_OTHER: the requested slice, ns
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
} s_attr_t;

static int
s_get(pid_t tid, s_attr_t *attr)
{
    memset(attr, 0, sizeof *attr);
    return (int) syscall(SYS_sched_getattr, tid, attr,
                         (unsigned int) sizeof *attr, 0u);
}

int
jobq_sched_slice(pid_t tid, uint64_t *ns)
{
    s_attr_t attr;
    if (s_get(tid, &attr) != 0)
        return -1;
    *ns = attr.sched_policy == SCHED_OTHER ? attr.sched_runtime : 0;
    return 0;
}

int
jobq_sched_set_slice(uint64_t ns)
{
    s_attr_t attr;
    if (s_get(0, &attr) != 0)
        return -1;
    if (attr.sched_policy != SCHED_OTHER) {
        errno = EINVAL;  //  real-time, batch or idle: not ours to change
        return -1;
    }
    attr.size = (uint32_t) sizeof attr;
    attr.sched_flags &= S_RESET_ON_FORK;
    attr.sched_runtime = ns;
    return (int) syscall(SYS_sched_setattr, 0, &attr, 0u);
}
