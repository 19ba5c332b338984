/*  test_sched.c: jobq_sched, a thread's scheduler slice. Each case runs in
    a thread of its own, so the test's main thread keeps its settings. The
    slice itself is only kept by kernels from 6.12; on others the cases
    that need it are skipped, the error paths run everywhere. */
#define _GNU_SOURCE
#include "jobq_sched.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

//  What a case thread saw; the assertions run on the main thread.
typedef struct {
    int rc;           //  the call under test
    int err;          //  its errno
    uint64_t before;  //  slice before
    uint64_t after;   //  slice after
    uint64_t child;   //  slice of a thread started in between
    int nice;         //  nice value after
    int policy;       //  policy after
    bool kept;        //  the kernel kept a slice asked for
} s_seen_t;

static void *
s_read_own(void *arg)
{
    jobq_sched_slice(0, arg);
    return NULL;
}

static void *
s_set_and_inherit(void *arg)
{
    s_seen_t *s = arg;
    //  A nice value of our own, to see that it is kept.
    setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 5);
    jobq_sched_slice(0, &s->before);
    s->rc = jobq_sched_set_slice(300000);
    s->err = errno;
    jobq_sched_slice(0, &s->after);
    s->kept = s->after == 300000;
    pthread_t t;
    if (pthread_create(&t, NULL, s_read_own, &s->child) == 0)
        pthread_join(t, NULL);
    errno = 0;
    s->nice = getpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid));
    jobq_sched_set_slice(0);
    return NULL;
}

static void *
s_set_under_batch(void *arg)
{
    s_seen_t *s = arg;
    struct sched_param p = {0};
    s->policy = -1;
    if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &p) != 0)
        return NULL;  //  not allowed here: s->policy stays -1
    s->rc = jobq_sched_set_slice(300000);
    s->err = errno;
    int policy;
    pthread_getschedparam(pthread_self(), &policy, &p);
    s->policy = policy;
    return NULL;
}

static void
s_run(void *(*fn)(void *), s_seen_t *s)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, s), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static void
test_sched_slice_is_set_kept_inherited_and_undone(void **state)
{
    (void) state;
    s_seen_t s = {0};
    s_run(s_set_and_inherit, &s);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.nice, 5);  //  the nice value stays as it was
    if (!s.kept)
        skip();  //  a kernel before 6.12 takes the request and drops it
    assert_int_not_equal(s.before, 300000);
    assert_int_equal(s.child, 300000);  //  a new thread inherits it
}

static void
test_sched_slice_of_no_such_thread(void **state)
{
    (void) state;
    uint64_t ns = 7;
    assert_int_equal(jobq_sched_slice((pid_t) INT_MAX, &ns), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(ns, 7);  //  untouched
}

static void
test_sched_slice_refused_outside_sched_other(void **state)
{
    (void) state;
    s_seen_t s = {0};
    s_run(s_set_under_batch, &s);
    if (s.policy == -1)
        skip();  //  SCHED_BATCH was refused to this process
    assert_int_equal(s.rc, -1);
    assert_int_equal(s.err, EINVAL);
    assert_int_equal(s.policy, SCHED_BATCH);  //  left as it was
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sched_slice_is_set_kept_inherited_and_undone),
        cmocka_unit_test(test_sched_slice_of_no_such_thread),
        cmocka_unit_test(test_sched_slice_refused_outside_sched_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
