/*  test_faults.c: the broker's promises under faults, with real processes:
    kill -9 at each named fault point, workers killed or frozen mid-job,
    and SIGTERM draining of the broker and of a worker. */
#define _GNU_SOURCE  //  memmem
#include "jobq_test.h"
#include "jobq/jobq_client.h"
#include "jobq_msg.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *dir;             //  temporary directory
    jobq_test_broker_t b;  //  broker process
    pid_t workers[2];      //  worker processes, -1 if none
    jobq_client_t *c;      //  client, no retries
} s_fx_t;

static jobq_client_t *
s_client(const jobq_test_broker_t *b, int retries)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.events = b->events;
    cfg.timeout_ms = 1500;
    cfg.retries = retries;
    jobq_client_t *c = jobq_client_new(&cfg);
    assert_non_null(c);
    return c;
}

//  Start the broker, with JOBQ_CRASH_AT=crash if crash is not NULL.
static void
s_broker(s_fx_t *fx, const char *crash)
{
    const char *extra[] = {"--retry-base-ms",
                           "50",
                           "--worker-timeout-ms",
                           "1500",
                           "--lease-ms",
                           "3000",
                           NULL};
    if (crash)
        setenv("JOBQ_CRASH_AT", crash, 1);
    int rc = jobq_test_broker_start(&fx->b, fx->dir, extra);
    unsetenv("JOBQ_CRASH_AT");
    assert_int_equal(rc, 0);
    jobq_client_destroy(&fx->c);
    fx->c = s_client(&fx->b, 0);
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    fx->b.pid = -1;
    fx->workers[0] = fx->workers[1] = -1;
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_destroy(&fx->c);
    for (int i = 0; i < 2; i++)
        if (fx->workers[i] > 0)
            jobq_test_stop(fx->workers[i], SIGKILL, 5000);
    jobq_test_broker_stop(&fx->b, SIGKILL);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void
s_worker(s_fx_t *fx, int i, const char *name, const char *grace)
{
    const char *extra[] = {"--types",    "noop,sleep", "--concurrency",
                           "1",          "--name",     name,
                           "--grace-ms", grace,        NULL};
    fx->workers[i] = jobq_test_worker_start(&fx->b, extra);
    assert_true(fx->workers[i] > 0);
}

static int
s_enqueue(s_fx_t *fx,
          const char *type,
          const char *key,
          int64_t sleep_ms,
          char id[JOBQ_ID_LEN + 1],
          bool *created)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_map(&w, 2);
    jobq_mp_write_cstr(&w, "ms");
    jobq_mp_write_int(&w, sleep_ms);
    jobq_mp_write_cstr(&w, "steps");
    jobq_mp_write_int(&w, 4);
    jobq_enqueue_t req = {type, "shop-f", {w.data, w.len}, 0, 0, 5, 0, key};
    int rc = jobq_client_enqueue(fx->c, &req, id, created);
    jobq_mp_writer_fini(&w);
    return rc;
}

static jobq_job_info_t
s_status(s_fx_t *fx, const char *id)
{
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    return info;
}

typedef struct {
    s_fx_t *fx;      //  fixture
    const char *id;  //  job
    int status;      //  wanted
} s_wait_t;

static bool
s_is(void *arg)
{
    s_wait_t *w = arg;
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    bool ok = jobq_client_status(w->fx->c, w->id, &info) == JOBQ_OK &&
              info.status == w->status;
    jobq_job_info_clear(&info);
    return ok;
}

static void
s_wait_status(s_fx_t *fx, const char *id, int status, int timeout_ms)
{
    s_wait_t w = {fx, id, status};
    if (!jobq_test_wait_until(s_is, &w, timeout_ms)) {
        //  Say what the programs saw before failing.
        char path[700];
        jobq_test_log_tail(fx->b.log);
        snprintf(path, sizeof path, "%s/worker.log", fx->dir);
        jobq_test_log_tail(path);
        fail_msg("job %s did not reach %s within %d ms", id,
                 jobq_status_name(status), timeout_ms);
    }
}

//  --- kill -9 at the named fault points --------------------------------------

#ifdef JOBQ_FAULTS
//  The broker died of SIGKILL by itself (a fault point).
static void
s_broker_crashed(s_fx_t *fx)
{
    int status = jobq_test_wait(fx->b.pid, 10000);
    assert_true(status != -1);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    fx->b.pid = -1;
}

//  Jobs the broker lists (at most 100).
static size_t
s_job_count(s_fx_t *fx)
{
    jobq_list_t all = {NULL, NULL, -1, 100, NULL};
    jobq_job_info_t *jobs;
    size_t n;
    char next[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_list(fx->c, &all, &jobs, &n, next), JOBQ_OK);
    jobq_job_list_free(&jobs, n);
    return n;
}

static void
test_faults_crash_after_commit_before_reply_loses_nothing(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, "after-commit-before-reply");
    char id[JOBQ_ID_LEN + 1], again[JOBQ_ID_LEN + 1];
    bool created = true;
    //  The job was committed, the reply never left.
    assert_int_equal(s_enqueue(fx, "noop", "key-1", 10, id, &created),
                     JOBQ_EUNAVAILABLE);
    s_broker_crashed(fx);
    s_broker(fx, NULL);
    //  The client's retry with the same key finds the job: one job.
    assert_int_equal(s_enqueue(fx, "noop", "key-1", 10, again, &created),
                     JOBQ_OK);
    assert_false(created);
    jobq_job_info_t info = s_status(fx, again);
    assert_int_equal(info.status, JOBQ_PENDING);
    jobq_job_info_clear(&info);
    assert_int_equal(s_job_count(fx), 1);
}

static void
test_faults_crash_after_lease_commit_before_send_reruns_the_job(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, "after-lease-commit-before-send");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    //  A job stored before any worker came: its JOB waits for the commit
    //  of the lease, and never leaves.
    assert_int_equal(s_enqueue(fx, "sleep", "key-2", 10, id, &created),
                     JOBQ_OK);
    s_worker(fx, 0, "w-a", "1000");
    s_broker_crashed(fx);
    s_broker(fx, NULL);
    assert_int_equal(s_enqueue(fx, "sleep", "key-2", 10, id, &created),
                     JOBQ_OK);
    //  The worker comes back without the job; the broker sees that and
    //  runs it again.
    s_wait_status(fx, id, JOBQ_COMPLETED, 20000);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.attempts, 2);
    jobq_job_info_clear(&info);
}

//  The broker lists a worker in STATS.
static bool
s_has_worker(void *arg)
{
    s_fx_t *fx = arg;
    jobq_bytes_t body = {NULL, 0}, v;
    if (jobq_client_stats(fx->c, &body) != JOBQ_OK)
        return false;
    uint32_t n = 0;
    if (jobq_mp_map_find(body, "workers", &v) == JOBQ_OK) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        if (jobq_mp_read_array(&r, &n) != JOBQ_OK)
            n = 0;
    }
    free((void *) body.ptr);
    return n > 0;
}

static void
test_faults_crash_after_early_job_leaves_no_trace(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, "after-early-job-before-commit");
    s_worker(fx, 0, "w-a", "1000");
    assert_true(jobq_test_wait_until(s_has_worker, fx, 10000));
    char id[JOBQ_ID_LEN + 1], again[JOBQ_ID_LEN + 1];
    bool created = false;
    //  A new job goes to the waiting worker while its turn commits; the
    //  broker dies before the commit: never acknowledged, never stored.
    assert_int_equal(s_enqueue(fx, "sleep", "key-5", 10, id, &created),
                     JOBQ_EUNAVAILABLE);
    s_broker_crashed(fx);
    s_broker(fx, NULL);
    //  The retry makes the job anew; the worker's words about the lost
    //  one are refused, and only the new one ends, once.
    assert_int_equal(s_enqueue(fx, "sleep", "key-5", 10, again, &created),
                     JOBQ_OK);
    assert_true(created);
    s_wait_status(fx, again, JOBQ_COMPLETED, 20000);
    jobq_job_info_t info = s_status(fx, again);
    assert_int_equal(info.attempts, 1);
    jobq_job_info_clear(&info);
    assert_int_equal(s_job_count(fx), 1);
    int status;
    assert_false(jobq_test_reap(fx->workers[0], &status));  //  still up
}

static void
test_faults_crash_before_completion_commit_keeps_the_result(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, "before-completion-commit");
    s_worker(fx, 0, "w-a", "1000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", "key-3", 10, id, &created),
                     JOBQ_OK);
    s_broker_crashed(fx);
    s_broker(fx, NULL);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.status, JOBQ_RUNNING);
    jobq_job_info_clear(&info);
    //  The completion was never recorded, but the worker kept its result
    //  and hands it to the restarted broker: completed by attempt 1, not
    //  run again.
    s_wait_status(fx, id, JOBQ_COMPLETED, 20000);
    info = s_status(fx, id);
    assert_int_equal(info.attempts, 1);
    jobq_job_info_clear(&info);
}
#endif

//  --- workers killed, frozen, stopped ----------------------------------------

static void
test_faults_worker_killed_mid_job_loses_its_lease(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "1000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 60000, id, &created),
                     JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    jobq_test_stop(fx->workers[0], SIGKILL, 5000);
    fx->workers[0] = -1;
    s_wait_status(fx, id, JOBQ_PENDING, 10000);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.attempts, 1);
    assert_non_null(info.error);
    jobq_job_info_clear(&info);
    //  Another worker takes attempt 2.
    assert_int_equal(jobq_client_cancel(fx->c, id, NULL), JOBQ_OK);
    assert_int_equal(jobq_client_retry(fx->c, id, NULL), JOBQ_OK);
    s_worker(fx, 1, "w-b", "1000");
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
}

static void
test_faults_frozen_worker_is_fenced_when_it_wakes(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "1000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 2000, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    kill(fx->workers[0], SIGSTOP);
    s_wait_status(fx, id, JOBQ_PENDING, 10000);
    s_worker(fx, 1, "w-b", "1000");
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    //  The frozen worker wakes and finishes attempt 1: refused.
    kill(fx->workers[0], SIGCONT);
    s_wait_status(fx, id, JOBQ_COMPLETED, 20000);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.attempts, 2);
    jobq_job_info_clear(&info);
}

static void
test_faults_job_past_its_timeout_is_stopped_and_fails(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "1000");
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_map(&w, 2);
    jobq_mp_write_cstr(&w, "ms");
    jobq_mp_write_int(&w, 60000);
    jobq_mp_write_cstr(&w, "steps");
    jobq_mp_write_int(&w, 600);
    jobq_enqueue_t req = {"sleep", "shop-f", {w.data, w.len}, 0, 0, 1,
                          500,     NULL};
    char id[JOBQ_ID_LEN + 1], next[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue(fx->c, &req, id, NULL), JOBQ_OK);
    jobq_mp_writer_fini(&w);
    s_wait_status(fx, id, JOBQ_FAILED, 10000);
    jobq_job_info_t info = s_status(fx, id);
    assert_non_null(info.error);
    assert_non_null(strstr(info.error, "timed out after 500 ms"));
    jobq_job_info_clear(&info);
    //  The worker was told to stop: its one slot runs the next job.
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 10, next, &created), JOBQ_OK);
    s_wait_status(fx, next, JOBQ_COMPLETED, 10000);
}

static void
test_faults_worker_sigterm_finishes_its_job_then_exits(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "10000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 1500, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    int status = jobq_test_stop(fx->workers[0], SIGTERM, 15000);
    fx->workers[0] = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.status, JOBQ_COMPLETED);
    jobq_job_info_clear(&info);
}

//  A JOB on its way when the worker is told to stop: the worker must not
//  exit before it arrives, or the job stays `running` with nobody behind
//  it until its lease runs out. The worker is frozen while the broker sends
//  the JOB, then gets SIGTERM and wakes. If it sees the stop first it hands
//  the job back (released, not charged: `pending`, no error); if it reads
//  the JOB first it runs it within its grace (`completed`). Never
//  `running`.
static void
test_faults_worker_stopped_with_a_job_on_its_way_hands_it_back(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "10000");
    //  Registered: a first job runs through.
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "noop", NULL, 0, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_COMPLETED, 10000);
    kill(fx->workers[0], SIGSTOP);
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 1000, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 1000);
    kill(fx->workers[0], SIGTERM);
    kill(fx->workers[0], SIGCONT);
    int status = jobq_test_wait(fx->workers[0], 15000);
    fx->workers[0] = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    jobq_job_info_t info = s_status(fx, id);
    if (info.status == JOBQ_PENDING) {
        assert_null(info.error);
        assert_int_equal(info.max_attempts, 6);  //  5, and 1 handed back
    } else {
        assert_int_equal(info.status, JOBQ_COMPLETED);
        assert_int_equal(info.attempts, 1);
    }
    jobq_job_info_clear(&info);
}

//  Asked twice to stop, a worker waits little for the ACKs of results it
//  still holds (about a second, not its broker timeout of 5 s): here the
//  broker is frozen, so none comes.
static void
test_faults_worker_asked_twice_waits_little_for_acks(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "10000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 300, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    kill(fx->b.pid, SIGSTOP);
    zclock_sleep(800);  //  the job ends; its COMPLETE gets no ACK
    kill(fx->workers[0], SIGTERM);
    zclock_sleep(100);
    kill(fx->workers[0], SIGTERM);
    int status = jobq_test_wait(fx->workers[0], 3500);
    fx->workers[0] = -1;
    kill(fx->b.pid, SIGCONT);
    assert_true(WIFEXITED(status));
}

static void
test_faults_broker_sigterm_drains_and_keeps_every_ack(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    char acked[400][JOBQ_ID_LEN + 1];
    int nacked = 0, refused = 0;
    bool created;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(
            s_enqueue(fx, "noop", NULL, 1, acked[nacked], &created), JOBQ_OK);
        nacked++;
    }
    kill(fx->b.pid, SIGTERM);
    //  Keep enqueueing while it drains: each answer is an ack or a refusal,
    //  until the broker has exited.
    int status = -1;
    bool exited = false;
    for (int i = 0; i < 300 && nacked < 400 && !exited; i++) {
        char id[JOBQ_ID_LEN + 1];
        int rc = s_enqueue(fx, "noop", NULL, 1, id, &created);
        if (rc == JOBQ_OK)
            memcpy(acked[nacked++], id, sizeof id);
        else
            refused++;
        exited = jobq_test_reap(fx->b.pid, &status);
    }
    if (!exited)
        status = jobq_test_wait(fx->b.pid, 10000);
    fx->b.pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(refused > 0);
    s_broker(fx, NULL);
    for (int i = 0; i < nacked; i++) {
        jobq_job_info_t info = s_status(fx, acked[i]);
        jobq_job_info_clear(&info);
    }
}

//  --- results across a broker stop ------------------------------------------

//  Sleep ms, for a job to go on while the broker is away.
static void
s_pause(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

//  The job ended completed by its first attempt, with no failed one.
static void
s_completed_once(s_fx_t *fx, const char *id)
{
    s_wait_status(fx, id, JOBQ_COMPLETED, 20000);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.attempts, 1);
    assert_true(info.errors.len <= 1);  //  [] or absent
    jobq_job_info_clear(&info);
}

//  The broker is killed while a job runs; the worker finishes it with no
//  broker to tell, keeps the result, and hands it to the restarted broker.
static void
test_faults_result_finished_while_the_broker_is_down_is_kept(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "10000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 1000, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    jobq_test_broker_stop(&fx->b, SIGKILL);
    s_pause(2000);  //  the job ends meanwhile
    s_broker(fx, NULL);
    s_completed_once(fx, id);
}

//  SIGTERM: the broker hands out nothing more and waits for the running
//  job; with a grace shorter than the job it leaves at once, and the
//  worker hands the result to the broker that comes back. Either way the
//  job runs once.
static void
test_faults_broker_sigterm_waits_for_running_jobs(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    s_worker(fx, 0, "w-a", "10000");
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 1500, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    int status = jobq_test_stop(fx->b.pid, SIGTERM, 10000);
    fx->b.pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    s_broker(fx, NULL);
    s_completed_once(fx, id);
    //  Grace 200 ms: the broker goes before the job ends.
    jobq_test_broker_stop(&fx->b, SIGKILL);
    const char *extra[] = {"--grace-ms", "200", "--lease-ms", "5000", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 1500, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    status = jobq_test_stop(fx->b.pid, SIGTERM, 1000);
    fx->b.pid = -1;
    assert_true(WIFEXITED(status));
    s_pause(2000);
    s_broker(fx, NULL);
    s_completed_once(fx, id);
}

//  --- a worker by hand, on a raw DEALER
//  ---------------------------------------

//  Send m (encoded) on d.
static void
s_send_msg(zsock_t *d, const jobq_msg_t *m)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_encode(m, &w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    zmsg_t *z = zmsg_new();
    uint8_t c = (uint8_t) m->cmd;
    zmsg_addmem(z, JOBQ_SIGNATURE, JOBQ_SIGNATURE_LEN);
    zmsg_addmem(z, &c, 1);
    zmsg_addmem(z, w.data, w.len);
    zmsg_send(&z, d);
    jobq_mp_writer_fini(&w);
}

//  What came to a raw worker within ms (broker HEARTBEATs are skipped):
//  the CANCEL_JOBs for (id, attempt), the DISCONNECTs, and the first JOB.
typedef struct {
    int cancels;           //  CANCEL_JOB for (id, attempt)
    int disconnects;       //  DISCONNECT
    int other;             //  anything else but HEARTBEAT and JOB
    uint64_t job;          //  the id of a JOB received, 0 if none
    uint32_t job_attempt;  //  and its attempt
} s_got_t;

static s_got_t
s_receive(zsock_t *d, int ms, uint64_t id, uint32_t attempt)
{
    s_got_t g = {0, 0, 0, 0, 0};
    int64_t end = zclock_mono() + ms;
    zsock_set_rcvtimeo(d, 50);
    while (zclock_mono() < end) {
        zmsg_t *z = zmsg_recv(d);
        if (!z)
            continue;
        assert_int_equal(zmsg_size(z), 3);
        zmsg_first(z);
        zframe_t *c = zmsg_next(z), *b = zmsg_next(z);
        jobq_msg_t m;
        jobq_msg_why_t why;
        int cmd = zframe_data(c)[0];
        assert_int_equal(
            jobq_msg_decode(cmd, zframe_data(b), zframe_size(b), &m, &why),
            JOBQ_OK);
        if (cmd == JOBQ_CMD_CANCEL_JOB && m.u.cancel_job.id == id &&
            m.u.cancel_job.attempt == attempt)
            g.cancels++;
        else if (cmd == JOBQ_CMD_DISCONNECT)
            g.disconnects++;
        else if (cmd == JOBQ_CMD_JOB && !g.job) {
            g.job = m.u.dispatch.id;
            g.job_attempt = m.u.dispatch.attempt;
        } else if (cmd != JOBQ_CMD_HEARTBEAT)
            g.other++;
        zmsg_destroy(&z);
    }
    return g;
}

//  A PROGRESS for (id, attempt) from d.
static void
s_send_progress(zsock_t *d, uint64_t id, uint32_t attempt)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_PROGRESS;
    m.u.progress.id = id;
    m.u.progress.attempt = attempt;
    m.u.progress.progress = 50;
    s_send_msg(d, &m);
}

//  docs/PROTOCOL.md 8.4, 9.4, 9.9: after a client cancels a running job,
//  every PROGRESS of its attempt is answered with CANCEL_JOB. After a
//  broker restart the same PROGRESS from the same worker name, sent
//  without READY, gets CANCEL_JOB and DISCONNECT, every time.
static void
test_faults_progress_of_a_cancelled_attempt_gets_cancel_job(void **state)
{
    s_fx_t *fx = *state;
    s_broker(fx, NULL);
    char hex[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "noop", NULL, 10, hex, &created), JOBQ_OK);
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_identity(d, "w-raw");
    zsock_set_linger(d, 0);
    assert_int_equal(zsock_connect(d, "%s", fx->b.workers), 0);
    jobq_msg_t r;
    memset(&r, 0, sizeof r);
    r.cmd = JOBQ_CMD_READY;
    r.u.ready.types[0] = (jobq_str_t){"noop", 4};
    r.u.ready.ntypes = 1;
    r.u.ready.capacity = 1;
    s_send_msg(d, &r);
    uint64_t id = 0;
    assert_int_equal(jobq_id_parse(hex, JOBQ_ID_LEN, &id), JOBQ_OK);
    s_got_t g = s_receive(d, 1000, id, 1);
    assert_true(g.job == id && g.job_attempt == 1);
    //  The client cancels it: the worker is told once, at once.
    assert_int_equal(jobq_client_cancel(fx->c, hex, NULL), JOBQ_OK);
    g = s_receive(d, 300, id, 1);
    assert_int_equal(g.cancels, 1);
    //  Every PROGRESS of the cancelled attempt is answered.
    for (int i = 0; i < 2; i++) {
        s_send_progress(d, id, 1);
        g = s_receive(d, 300, id, 1);
        assert_int_equal(g.cancels, 1);
        assert_int_equal(g.disconnects, 0);
        assert_int_equal(g.other, 0);
    }
    //  The broker restarts; the worker, still running the attempt, reports
    //  again before any READY.
    jobq_test_broker_stop(&fx->b, SIGKILL);
    s_broker(fx, NULL);
    for (int i = 0; i < 2; i++) {
        s_send_progress(d, id, 1);
        g = s_receive(d, 1000, id, 1);
        assert_int_equal(g.cancels, 1);
        assert_int_equal(g.disconnects, 1);
        assert_int_equal(g.other, 0);
    }
    jobq_job_info_t info = s_status(fx, hex);
    assert_int_equal(info.status, JOBQ_CANCELLED);
    jobq_job_info_clear(&info);
    zsock_destroy(&d);
}

typedef struct {
    const char *log;  //  scripts/run.sh's output
    pid_t pids[2];    //  the broker and the worker it started
} s_pair_t;

//  The pids run.sh printed ("broker pid N, worker pid M") are in its log.
static bool
s_pair_started(void *arg)
{
    s_pair_t *p = arg;
    FILE *f = fopen(p->log, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        int b, w;
        const char *at = strstr(line, "broker pid ");
        if (at && sscanf(at, "broker pid %d, worker pid %d", &b, &w) == 2) {
            p->pids[0] = b;
            p->pids[1] = w;
            found = true;
        }
    }
    fclose(f);
    return found;
}

//  make run's pair (scripts/run.sh) stopped with Ctrl-C, as a terminal
//  sends it to the script's process group while a job runs: the worker
//  finishes the job, the broker records it, both exit, nothing runs twice.
static void
test_faults_ctrl_c_of_make_runs_pair_loses_no_work(void **state)
{
    s_fx_t *fx = *state;
    //  Ports of our own, and the data where jobq_test_broker_start looks.
    memset(&fx->b, 0, sizeof fx->b);
    snprintf(fx->b.clients, sizeof fx->b.clients, "tcp://127.0.0.1:%d",
             jobq_test_free_port());
    snprintf(fx->b.workers, sizeof fx->b.workers, "tcp://127.0.0.1:%d",
             jobq_test_free_port());
    snprintf(fx->b.events, sizeof fx->b.events, "tcp://127.0.0.1:%d",
             jobq_test_free_port());
    fx->b.pid = -1;
    char data[600], exports[600], log[600], bin[600];
    snprintf(data, sizeof data, "%s/data", fx->dir);
    snprintf(exports, sizeof exports, "%s/exports", fx->dir);
    snprintf(log, sizeof log, "%s/run.log", fx->dir);
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-broker"));
    *strrchr(bin, '/') = '\0';
    setenv("JOBQ_BROKER", fx->b.clients, 1);
    setenv("JOBQ_WORKERS", fx->b.workers, 1);
    setenv("JOBQ_EVENTS", fx->b.events, 1);
    setenv("JOBQ_DATA", data, 1);
    setenv("JOBQ_EXPORTS", exports, 1);
    char http[64];
    snprintf(http, sizeof http, "127.0.0.1:%d", jobq_test_free_port());
    setenv("JOBQ_HTTP", http, 1);
    char *argv[] = {"/bin/sh", JOBQ_SOURCE_DIR "/scripts/run.sh", bin, NULL};
    pid_t run = jobq_test_spawn(argv, log);
    unsetenv("JOBQ_BROKER");
    unsetenv("JOBQ_WORKERS");
    unsetenv("JOBQ_EVENTS");
    unsetenv("JOBQ_DATA");
    unsetenv("JOBQ_EXPORTS");
    unsetenv("JOBQ_HTTP");
    assert_true(run > 0);
    s_pair_t pair = {log, {-1, -1}};
    assert_true(jobq_test_wait_until(s_pair_started, &pair, 10000));
    fx->c = s_client(&fx->b, 3);
    char id[JOBQ_ID_LEN + 1];
    bool created;
    assert_int_equal(s_enqueue(fx, "sleep", NULL, 1500, id, &created), JOBQ_OK);
    s_wait_status(fx, id, JOBQ_RUNNING, 10000);
    //  Ctrl-C: SIGINT to the terminal's foreground group, the script's.
    assert_int_equal(kill(-run, SIGINT), 0);
    int status = jobq_test_wait(run, 30000);
    assert_int_not_equal(status, -1);
    assert_true(WIFEXITED(status));
    for (int i = 0; i < 2; i++)
        assert_true(kill(pair.pids[i], 0) != 0);  //  both gone
    //  And the gateway it started beside them.
    FILE *f = fopen(log, "r");
    char line[512];
    int gw = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "gateway pid ");
        if (at)
            sscanf(at, "gateway pid %d", &gw);
    }
    if (f)
        fclose(f);
    assert_true(gw > 0);
    assert_true(kill(gw, 0) != 0);
    //  A broker on the same data: the job ended, by its first attempt.
    jobq_client_destroy(&fx->c);
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, NULL), 0);
    fx->c = s_client(&fx->b, 0);
    s_completed_once(fx, id);
}

//  --- storage ------------------------------------------------------------

//  Enqueue a sleep job padded with `pad` bytes of filler.
static int
s_enqueue_padded(s_fx_t *fx, size_t pad, char id[JOBQ_ID_LEN + 1])
{
    static char filler[32768];
    memset(filler, 'x', sizeof filler);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 65536);
    jobq_mp_write_map(&w, 3);
    jobq_mp_write_cstr(&w, "ms");
    jobq_mp_write_int(&w, 1);
    jobq_mp_write_cstr(&w, "steps");
    jobq_mp_write_int(&w, 1);
    jobq_mp_write_cstr(&w, "filler");
    jobq_mp_write_str(&w, filler, pad < sizeof filler ? pad : sizeof filler);
    jobq_enqueue_t req = {"sleep", "shop-f", {w.data, w.len}, 0, 0, 3, 0, NULL};
    int rc = jobq_client_enqueue(fx->c, &req, id, NULL);
    jobq_mp_writer_fini(&w);
    return rc;
}

static void
test_faults_full_storage_refuses_new_jobs_but_finishes_old_ones(void **state)
{
    s_fx_t *fx = *state;
    //  2 MiB, so that the eighth kept for running jobs (64 pages) holds a
    //  completion of these 16 KiB records however LMDB's free pages lie
    //  (a record's overflow pages must be contiguous): with 1 MiB (32
    //  pages) a fragmented free list sometimes left none, and every
    //  completion failed for want of room.
    const char *extra[] = {"--map-size", "2", "--map-max", "2", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    fx->c = s_client(&fx->b, 0);
    char first[JOBQ_ID_LEN + 1], id[JOBQ_ID_LEN + 1];
    int rc = s_enqueue_padded(fx, 16384, first), accepted = 1;
    assert_int_equal(rc, JOBQ_OK);
    for (int i = 0; i < 400 && rc == JOBQ_OK; i++) {
        rc = s_enqueue_padded(fx, 16384, id);
        accepted += rc == JOBQ_OK;
    }
    //  A clear, retryable refusal; the broker is still up and reads work.
    assert_int_equal(rc, JOBQ_ESTOREFULL);
    assert_non_null(strstr(jobq_client_last_error(fx->c), "storage full"));
    assert_true(accepted > 5);
    jobq_job_info_t info = s_status(fx, first);
    assert_int_equal(info.status, JOBQ_PENDING);
    jobq_job_info_clear(&info);
    //  Jobs already accepted still run to completion in the reserve.
    s_worker(fx, 0, "w-a", "1000");
    s_wait_status(fx, first, JOBQ_COMPLETED, 20000);
    s_wait_status(fx, id[0] ? id : first, JOBQ_COMPLETED, 20000);
}

static void
test_faults_storage_grows_when_allowed(void **state)
{
    s_fx_t *fx = *state;
    const char *extra[] = {"--map-size", "1", "--map-max", "16", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    fx->c = s_client(&fx->b, 0);
    char id[JOBQ_ID_LEN + 1];
    //  About 3 MiB of jobs in a 1 MiB map.
    for (int i = 0; i < 200; i++)
        assert_int_equal(s_enqueue_padded(fx, 16384, id), JOBQ_OK);
    jobq_job_info_t info = s_status(fx, id);
    assert_int_equal(info.status, JOBQ_PENDING);
    jobq_job_info_clear(&info);
}


//  Run `jobq-broker` with args (a NULL-terminated list), its output in
//  dir/name.log; returns its wait status.
static int
s_broker_tool(s_fx_t *fx, const char *name, const char *const *args)
{
    char bin[600], log[600];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-broker"));
    snprintf(log, sizeof log, "%s/%s.log", fx->dir, name);
    char *argv[16] = {bin};
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = (char *) args[n - 1];
    argv[n] = NULL;
    pid_t pid = jobq_test_spawn(argv, log);
    assert_true(pid > 0);
    return jobq_test_wait(pid, 60000);
}

//  Whether dir/name.log holds text.
static bool
s_log_has(s_fx_t *fx, const char *name, const char *text)
{
    char path[600], line[2048];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

//  300 jobs in the store, the broker stopped.
static void
s_fill_and_stop(s_fx_t *fx)
{
    s_broker(fx, NULL);
    jobq_enqueue_t reqs[100];
    char ids[100][JOBQ_ID_LEN + 1];
    for (int i = 0; i < 100; i++)
        reqs[i] =
            (jobq_enqueue_t){"noop", "shop-d", {NULL, 0}, 0, 0, 3, 0, NULL};
    for (int k = 0; k < 3; k++)
        assert_int_equal(jobq_client_enqueue_batch(fx->c, reqs, 100, ids, NULL),
                         JOBQ_OK);
    jobq_test_broker_stop(&fx->b, SIGTERM);
}

//  The pending/running/... totals of STATS, summed, and the jobs LIST
//  gives page after page: equal on a sound store.
static void
s_stats_equals_list(s_fx_t *fx, uint64_t *total, size_t *listed)
{
    jobq_bytes_t body;
    assert_int_equal(jobq_client_stats(fx->c, &body), JOBQ_OK);
    jobq_bytes_t totals, v;
    assert_int_equal(jobq_mp_map_find(body, "totals", &totals), JOBQ_OK);
    *total = 0;
    for (int st = 0; st < JOBQ_STATUS_COUNT_; st++) {
        if (jobq_mp_map_find(totals, jobq_status_name(st), &v) != JOBQ_OK)
            continue;
        jobq_mp_reader_t r;
        uint64_t n = 0;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        assert_int_equal(jobq_mp_read_uint(&r, &n), JOBQ_OK);
        *total += n;
    }
    free((void *) body.ptr);
    *listed = 0;
    char next[JOBQ_ID_LEN + 1] = "", cursor[JOBQ_ID_LEN + 1];
    for (int page = 0; page < 100; page++) {
        memcpy(cursor, next, sizeof cursor);
        jobq_list_t q = {NULL, NULL, -1, 1000, cursor[0] ? cursor : NULL};
        jobq_job_info_t *jobs;
        size_t n;
        assert_int_equal(jobq_client_list(fx->c, &q, &jobs, &n, next), JOBQ_OK);
        *listed += n;
        jobq_job_list_free(&jobs, n);
        if (!next[0])
            break;
    }
}

//  A record that fails its check: LIST is refused with `internal` and the
//  log says which job; the broker stays up. --verify names it and exits
//  1; --repair puts it in the quarantine; then STATS and LIST agree.
static void
test_faults_damaged_store_refuses_requests_not_the_broker(void **state)
{
    s_fx_t *fx = *state;
    s_fill_and_stop(fx);
    char path[600];
    snprintf(path, sizeof path, "%s/data/data.mdb", fx->dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t page[4096];
    bool flipped = false;
    for (long pg = 0; !flipped && fread(page, 1, 4096, f) == 4096; pg++) {
        //  A leaf page (flags at byte 10) of records: they hold the shop
        //  after its u32 length (index keys do not).
        uint8_t *at = memmem(page, sizeof page, "\x06\0\0\0shop-d", 10);
        if (pg >= 2 && at && (page[10] & 0x02)) {
            at += 4;
            at[5] ^= 0x01;
            assert_int_equal(fseek(f, pg * 4096, SEEK_SET), 0);
            assert_int_equal(fwrite(page, 1, 4096, f), 4096);
            flipped = true;
        }
    }
    fclose(f);
    assert_true(flipped);
    s_broker(fx, NULL);
    jobq_list_t q = {NULL, NULL, -1, 1000, NULL};
    jobq_job_info_t *jobs;
    size_t n;
    char next[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_list(fx->c, &q, &jobs, &n, next),
                     JOBQ_EINTERNAL);
    assert_non_null(strstr(jobq_client_last_error(fx->c), "fails its check"));
    assert_true(kill(fx->b.pid, 0) == 0);
    assert_true(s_log_has(fx, "broker.log", "stored data is damaged"));
    jobq_test_broker_stop(&fx->b, SIGTERM);
    const char *verify[] = {"--verify", fx->b.dir, NULL};
    int status = s_broker_tool(fx, "verify", verify);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(s_log_has(fx, "verify.log", "fails its check"));
    const char *repair[] = {"--repair", fx->b.dir, NULL};
    status = s_broker_tool(fx, "repair", repair);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    status = s_broker_tool(fx, "verify2", verify);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(s_log_has(fx, "verify2.log", "in the quarantine"));
    s_broker(fx, NULL);
    uint64_t total;
    size_t listed;
    s_stats_equals_list(fx, &total, &listed);
    assert_int_equal(total, listed);
    assert_true(listed >= 280 && listed < 300);
}

//  Half the file gone: the broker says so and exits 1; no SIGBUS.
static void
test_faults_truncated_store_is_refused_with_a_message(void **state)
{
    s_fx_t *fx = *state;
    s_fill_and_stop(fx);
    char path[600];
    snprintf(path, sizeof path, "%s/data/data.mdb", fx->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    const char *extra[] = {"--retry-base-ms", "50", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), -1);
    assert_true(s_log_has(fx, "broker.log", "is truncated"));
    //  It exited by itself, with 1 (jobq_test_broker_start reaped it).
    const char *args[] = {"--data", fx->b.dir, "--clients", "tcp://127.0.0.1:0",
                          NULL};
    int status = s_broker_tool(fx, "again", args);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

//  A full disk: a tmpfs of 1 MiB under the data. Commits fail with ENOSPC,
//  named in the log; after five failed commits in a row the broker stops
//  with exit status 1, as docs/STORAGE.md says. Needs root for the mount:
//  skipped without it (CI runs as root).
static void
test_faults_full_disk_is_named_and_stops_the_broker(void **state)
{
    s_fx_t *fx = *state;
    char mnt[600];
    snprintf(mnt, sizeof mnt, "%s/data", fx->dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "mount -t tmpfs -o size=1m jobq-test %s 2>/dev/null", mnt);
    if (geteuid() != 0 || system(cmd) != 0)
        skip();
    const char *extra[] = {"--map-max", "64", NULL};
    int rc = jobq_test_broker_start(&fx->b, fx->dir, extra);
    if (rc == 0) {
        fx->c = s_client(&fx->b, 0);
        static char filler[16384];
        memset(filler, 'x', sizeof filler);
        jobq_mp_writer_t w;
        jobq_mp_writer_init(&w, 65536);
        int refused = 0;
        int status = -1;
        bool ended = false;
        for (int i = 0; i < 2000 && !ended; i++) {
            jobq_mp_writer_reset(&w);
            jobq_mp_write_map(&w, 1);
            jobq_mp_write_cstr(&w, "filler");
            jobq_mp_write_str(&w, filler, sizeof filler);
            jobq_enqueue_t req = {"noop", "shop-f", {w.data, w.len}, 0, 0, 3,
                                  0,      NULL};
            char id[JOBQ_ID_LEN + 1];
            refused += jobq_client_enqueue(fx->c, &req, id, NULL) != JOBQ_OK;
            ended = jobq_test_reap(fx->b.pid, &status);
        }
        jobq_mp_writer_fini(&w);
        if (!ended)
            status = jobq_test_wait(fx->b.pid, 10000);
        fx->b.pid = -1;
        assert_true(refused > 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 1);
    }
    snprintf(cmd, sizeof cmd, "umount %s", mnt);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
    assert_true(s_log_has(fx, "broker.log", "ENOSPC"));
    assert_true(s_log_has(fx, "broker.log", "commits failed in a row"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int
main(void)
{
    zsys_init();
    zsys_set_linger(0);
    cmocka_set_test_filter(getenv("JOBQ_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
#ifdef JOBQ_FAULTS
        //  The broker's crash points exist only in builds with JOBQ_FAULTS
        //  (make test turns it on).
        T(test_faults_crash_after_commit_before_reply_loses_nothing),
        T(test_faults_crash_after_lease_commit_before_send_reruns_the_job),
        T(test_faults_crash_after_early_job_leaves_no_trace),
        T(test_faults_crash_before_completion_commit_keeps_the_result),
#endif
        T(test_faults_worker_killed_mid_job_loses_its_lease),
        T(test_faults_frozen_worker_is_fenced_when_it_wakes),
        T(test_faults_job_past_its_timeout_is_stopped_and_fails),
        T(test_faults_worker_sigterm_finishes_its_job_then_exits),
        T(test_faults_worker_stopped_with_a_job_on_its_way_hands_it_back),
        T(test_faults_worker_asked_twice_waits_little_for_acks),
        T(test_faults_broker_sigterm_drains_and_keeps_every_ack),
        T(test_faults_result_finished_while_the_broker_is_down_is_kept),
        T(test_faults_broker_sigterm_waits_for_running_jobs),
        T(test_faults_progress_of_a_cancelled_attempt_gets_cancel_job),
        T(test_faults_ctrl_c_of_make_runs_pair_loses_no_work),
        T(test_faults_full_storage_refuses_new_jobs_but_finishes_old_ones),
        T(test_faults_damaged_store_refuses_requests_not_the_broker),
        T(test_faults_truncated_store_is_refused_with_a_message),
        T(test_faults_full_disk_is_named_and_stops_the_broker),
        T(test_faults_storage_grows_when_allowed),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
