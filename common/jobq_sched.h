/*  jobq_sched.h: the calling thread's scheduler slice.

    Since Linux 6.12 a SCHED_OTHER thread may ask for a shorter slice than
    the default (sched_attr.sched_runtime, the EEVDF custom slice): when it
    wakes, it gets the CPU sooner, even ahead of a thread that is running
    and has time left. Threads inherit the slice of the thread that creates
    them, which is how a program gives one to the threads a library
    starts. Older kernels take the request and ignore it.
*/
#ifndef JOBQ_SCHED_H_INCLUDED
#define JOBQ_SCHED_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>

//  The slice of thread tid (0: the calling thread) in ns, as the kernel
//  reports it: from 6.12 the one in force, default or asked for; 0
//  before. 0, or -1 with errno set (ESRCH: no such thread).
int jobq_sched_slice(pid_t tid, uint64_t *ns);

//  Ask for a slice of ns for the calling thread (the kernel keeps it
//  within 0.1 to 100 ms), or 0 for its default again, keeping the
//  thread's policy and nice value. 0, or -1 with errno set (EINVAL for a
//  policy other than SCHED_OTHER).
int jobq_sched_set_slice(uint64_t ns);

#endif
