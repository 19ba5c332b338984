/*  test_nats.c: several brokers on one NATS JetStream cluster (three
    nats-server nodes, R3, on loopback) serve the same jobs: a job enqueued
    through one runs on a worker of another and is watched through a
    third; an idempotency key holds across brokers; a cancel through one
    stops a worker of another; a broker SIGKILLed mid-job loses only its
    connections, and its job runs again elsewhere, fenced; delayed jobs
    are promoted by the leader whichever broker took them; the cluster
    losing its stream leader comes back, with nothing acknowledged lost;
    a broker started while the cluster has no quorum waits for it; two
    brokers taking from one queue lose no attempt; a broker whose cluster
    is gone still stops.
*/
#include "jobq_test.h"
#include "jobq_test_nats.h"
#include "jobq/jobq_client.h"
#include "jobq/jobq_mp.h"
#include "jobq_proto.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_BROKERS 3

typedef struct {
    char *dir;
    jobq_test_nats_t nats;
    char store[512];
    jobq_test_broker_t b[S_BROKERS];
    pid_t worker[S_BROKERS];
    jobq_client_t *c[S_BROKERS];
} s_fx_t;

static jobq_client_t *
s_client(const jobq_test_broker_t *b)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.events = b->events;
    cfg.timeout_ms = 5000;
    jobq_client_t *c = jobq_client_new(&cfg);
    assert_non_null(c);
    return c;
}

static int
s_start_broker(s_fx_t *fx, int i)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/b%d", fx->dir, i);
    const char *extra[] = {"--store", fx->store, "--lease-ms", "2000", NULL};
    return jobq_test_broker_start(&fx->b[i], dir, extra);
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    *state = fx;
    for (int i = 0; i < S_BROKERS; i++) {
        fx->b[i].pid = -1;
        fx->worker[i] = -1;
    }
    if (jobq_test_nats_start(&fx->nats, fx->dir) != 0)
        return -1;
    snprintf(fx->store, sizeof fx->store, "%s?replicas=3&prefix=shared",
             fx->nats.urls);
    for (int i = 0; i < S_BROKERS; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/b%d", fx->dir, i);
        if (mkdir(dir, 0700) != 0 || s_start_broker(fx, i) != 0)
            return -1;
        fx->c[i] = s_client(&fx->b[i]);
    }
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    for (int i = 0; i < S_BROKERS; i++) {
        jobq_client_destroy(&fx->c[i]);
        if (fx->worker[i] > 0)
            jobq_test_stop(fx->worker[i], SIGKILL, 5000);
        jobq_test_broker_stop(&fx->b[i], SIGTERM);
    }
    jobq_test_nats_stop(&fx->nats);
    if (!getenv("JOBQ_TEST_KEEP"))
        jobq_test_rmtree(fx->dir);
    else
        fprintf(stderr, "kept %s\n", fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void
s_worker(s_fx_t *fx, int i, const char *types, const char *name)
{
    const char *extra[] = {"--types", types, "--concurrency", "1", "--name",
                           name,      NULL};
    fx->worker[i] = jobq_test_worker_start(&fx->b[i], extra);
    assert_true(fx->worker[i] > 0);
}

static jobq_bytes_t
s_sleep_input(jobq_mp_writer_t *w, int64_t ms, int64_t steps)
{
    jobq_mp_writer_init(w, 256);
    jobq_mp_write_map(w, 2);
    jobq_mp_write_cstr(w, "ms");
    jobq_mp_write_int(w, ms);
    jobq_mp_write_cstr(w, "steps");
    jobq_mp_write_int(w, steps);
    return (jobq_bytes_t){w->data, w->len};
}

static void
s_enqueue(jobq_client_t *c,
          const char *type,
          jobq_bytes_t input,
          uint64_t delay_ms,
          const char *key,
          char id[JOBQ_ID_LEN + 1],
          bool *created)
{
    jobq_enqueue_t req = {type, "shop-1", input, 0, delay_ms, 3, 0, key};
    bool made = false;
    int rc = jobq_client_enqueue(c, &req, id, &made);
    if (rc != JOBQ_OK)
        fprintf(stderr, "enqueue: %s\n", jobq_client_last_error(c));
    assert_int_equal(rc, JOBQ_OK);
    if (created)
        *created = made;
}

//  Wait up to ms for job id (read through c) to reach status.
static bool
s_wait_status(jobq_client_t *c, const char *id, int status, int ms)
{
    for (int t = 0; t < ms; t += 50) {
        jobq_job_info_t info = {0};
        int rc = jobq_client_status(c, id, &info);
        int st = info.status;
        jobq_job_info_clear(&info);
        if (rc == JOBQ_OK && st == status)
            return true;
        zclock_sleep(50);
    }
    return false;
}

typedef struct {
    int progress;
    int completes;
} s_seen_t;

static void
s_on_progress(void *arg, const jobq_job_info_t *job)
{
    ((s_seen_t *) arg)->progress = (int) job->progress;
}

static void
s_on_complete(void *arg, const jobq_job_info_t *job)
{
    ((s_seen_t *) arg)->progress = (int) job->progress;
    ((s_seen_t *) arg)->completes++;
}

static void
test_nats_brokers_share_jobs_keys_and_events(void **state)
{
    s_fx_t *fx = *state;
    s_worker(fx, 1, "noop,sleep", "w-b1");
    //  Thirty jobs through broker 0 run on broker 1's worker.
    char ids[30][JOBQ_ID_LEN + 1];
    for (int i = 0; i < 30; i++)
        s_enqueue(fx->c[0], "noop", (jobq_bytes_t){0}, 0, NULL, ids[i], NULL);
    for (int i = 0; i < 30; i++)
        assert_true(s_wait_status(fx->c[2], ids[i], JOBQ_COMPLETED, 15000));

    //  One watched through broker 2 from before it starts to its end.
    jobq_mp_writer_t w;
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx->c[0], "sleep", s_sleep_input(&w, 600, 4), 0, NULL, id, NULL);
    jobq_mp_writer_fini(&w);
    s_seen_t seen = {0};
    jobq_watch_t cb = {s_on_progress, s_on_complete, NULL, &seen};
    assert_int_equal(jobq_client_watch(fx->c[2], id, &cb, 15000), JOBQ_OK);
    assert_int_equal(seen.completes, 1);
    assert_int_equal(seen.progress, 100);

    //  A key taken through one broker names the same job through another.
    char k0[JOBQ_ID_LEN + 1], k1[JOBQ_ID_LEN + 1], k2[JOBQ_ID_LEN + 1];
    bool made0 = false, made1 = true, made2 = true;
    s_enqueue(fx->c[1], "noop", (jobq_bytes_t){0}, 0, "order-17", k0, &made0);
    //  The others learn the key from the watch: give it a moment, then
    //  both must answer with the first job.
    zclock_sleep(300);
    s_enqueue(fx->c[0], "noop", (jobq_bytes_t){0}, 0, "order-17", k1, &made1);
    s_enqueue(fx->c[2], "noop", (jobq_bytes_t){0}, 0, "order-17", k2, &made2);
    assert_true(made0);
    assert_false(made1);
    assert_false(made2);
    assert_string_equal(k0, k1);
    assert_string_equal(k0, k2);

    //  LIST through any broker sees every job.
    for (int b = 0; b < S_BROKERS; b++) {
        jobq_list_t q = {"shop-1", NULL, -1, 100, NULL};
        jobq_job_info_t *jobs = NULL;
        size_t n = 0;
        char next[JOBQ_ID_LEN + 1];
        assert_int_equal(jobq_client_list(fx->c[b], &q, &jobs, &n, next),
                         JOBQ_OK);
        assert_int_equal(n, 32);
        jobq_job_list_free(&jobs, n);
    }

    //  Ids made by different brokers never collide: their low bits differ.
    char a[JOBQ_ID_LEN + 1], b[JOBQ_ID_LEN + 1];
    s_enqueue(fx->c[0], "noop", (jobq_bytes_t){0}, 0, NULL, a, NULL);
    s_enqueue(fx->c[2], "noop", (jobq_bytes_t){0}, 0, NULL, b, NULL);
    assert_string_not_equal(a, b);
    assert_true(s_wait_status(fx->c[1], b, JOBQ_COMPLETED, 10000));
}

static void
test_nats_a_cancel_through_one_broker_stops_a_worker_of_another(void **state)
{
    s_fx_t *fx = *state;
    s_worker(fx, 1, "sleep", "w-b1");
    jobq_mp_writer_t w;
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx->c[0], "sleep", s_sleep_input(&w, 20000, 40), 0, NULL, id,
              NULL);
    jobq_mp_writer_fini(&w);
    assert_true(s_wait_status(fx->c[2], id, JOBQ_RUNNING, 10000));
    jobq_job_info_t info = {0};
    assert_int_equal(jobq_client_cancel(fx->c[2], id, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_CANCELLED);
    jobq_job_info_clear(&info);
    //  Broker 1 tells its worker to stop: its one slot is free for the
    //  next job long before the 20 s the first would have taken, and the
    //  first stays cancelled (its late result is fenced off).
    char next[JOBQ_ID_LEN + 1];
    s_enqueue(fx->c[0], "sleep", s_sleep_input(&w, 100, 1), 0, NULL, next,
              NULL);
    jobq_mp_writer_fini(&w);
    assert_true(s_wait_status(fx->c[1], next, JOBQ_COMPLETED, 8000));
    assert_int_equal(jobq_client_status(fx->c[0], id, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_CANCELLED);
    jobq_job_info_clear(&info);
}

static void
test_nats_a_killed_broker_s_job_runs_again_elsewhere(void **state)
{
    s_fx_t *fx = *state;
    s_worker(fx, 2, "sleep", "w-b2");
    jobq_mp_writer_t w;
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx->c[0], "sleep", s_sleep_input(&w, 3000, 3), 0, NULL, id, NULL);
    jobq_mp_writer_fini(&w);
    assert_true(s_wait_status(fx->c[0], id, JOBQ_RUNNING, 10000));
    //  Its broker and its worker die together; a worker of broker 1
    //  takes the job once the lease (2 s) has run out, as attempt 2.
    jobq_test_broker_stop(&fx->b[2], SIGKILL);
    jobq_test_stop(fx->worker[2], SIGKILL, 5000);
    fx->worker[2] = -1;
    s_worker(fx, 1, "sleep", "w-b1");
    assert_true(s_wait_status(fx->c[0], id, JOBQ_COMPLETED, 20000));
    jobq_job_info_t info = {0};
    assert_int_equal(jobq_client_status(fx->c[1], id, &info), JOBQ_OK);
    assert_int_equal(info.attempts, 2);
    assert_non_null(info.errors.ptr);
    jobq_job_info_clear(&info);
    //  The killed broker comes back and serves the same jobs.
    assert_int_equal(s_start_broker(fx, 2), 0);
    jobq_client_destroy(&fx->c[2]);
    fx->c[2] = s_client(&fx->b[2]);
    assert_true(s_wait_status(fx->c[2], id, JOBQ_COMPLETED, 5000));
}

static void
test_nats_delayed_jobs_run_whichever_broker_took_them(void **state)
{
    s_fx_t *fx = *state;
    s_worker(fx, 0, "noop", "w-b0");
    char ids[S_BROKERS][JOBQ_ID_LEN + 1];
    for (int b = 0; b < S_BROKERS; b++)
        s_enqueue(fx->c[b], "noop", (jobq_bytes_t){0}, 800, NULL, ids[b], NULL);
    for (int b = 0; b < S_BROKERS; b++) {
        jobq_job_info_t info = {0};
        assert_int_equal(jobq_client_status(fx->c[0], ids[b], &info), JOBQ_OK);
        assert_int_equal(info.status, JOBQ_PENDING);
        jobq_job_info_clear(&info);
    }
    for (int b = 0; b < S_BROKERS; b++)
        assert_true(s_wait_status(fx->c[b], ids[b], JOBQ_COMPLETED, 15000));
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_nats_the_cluster_loses_its_stream_leader_and_comes_back(void **state)
{
    s_fx_t *fx = *state;
    s_worker(fx, 1, "noop", "w-b1");
    char ids[40][JOBQ_ID_LEN + 1];
    for (int i = 0; i < 20; i++)
        s_enqueue(fx->c[0], "noop", (jobq_bytes_t){0}, 0, NULL, ids[i], NULL);
    int leader = jobq_test_nats_stream_leader(&fx->nats, "KV_shared_jobs");
    assert_true(leader >= 0);
    jobq_test_nats_stop_node(&fx->nats, leader, SIGKILL);
    int64_t t0 = s_now_ms();
    //  Enqueues fail (unavailable) until a new leader is elected; each is
    //  tried again with its key, so a job is made once.
    int64_t back = -1;
    for (int i = 20; i < 40; i++) {
        char key[32];
        snprintf(key, sizeof key, "after-kill-%d", i);
        int rc = JOBQ_EUNAVAILABLE;
        for (int64_t until = s_now_ms() + 30000;
             rc != JOBQ_OK && s_now_ms() < until;) {
            jobq_enqueue_t req = {"noop", "shop-1", {0}, 0, 0, 3, 0, key};
            rc = jobq_client_enqueue(fx->c[0], &req, ids[i], NULL);
            if (rc != JOBQ_OK)
                zclock_sleep(100);
        }
        assert_int_equal(rc, JOBQ_OK);
        if (back < 0)
            back = s_now_ms() - t0;
    }
    fprintf(stderr,
            "stream leader n%d killed: enqueues answered again "
            "after %lld ms\n",
            leader + 1, (long long) back);
    assert_int_equal(jobq_test_nats_restart_node(&fx->nats, leader), 0);
    for (int i = 0; i < 40; i++)
        assert_true(s_wait_status(fx->c[2], ids[i], JOBQ_COMPLETED, 20000));
}

//  A number in broker i's STATS: section ("totals", "counters") and name.
static uint64_t
s_stat(s_fx_t *fx, int i, const char *section, const char *name)
{
    jobq_bytes_t body = {NULL, 0}, sec, v;
    uint64_t n = 0;
    if (jobq_client_stats(fx->c[i], &body) == JOBQ_OK &&
        jobq_mp_map_find(body, section, &sec) == JOBQ_OK &&
        jobq_mp_map_find(sec, name, &v) == JOBQ_OK) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        jobq_mp_read_uint(&r, &n);
    }
    free((void *) body.ptr);
    return n;
}

//  Two brokers take from one queue at once (batches enqueued through each
//  in turn, workers with deep prefetch on both, so that both claim many
//  jobs each turn and sometimes the same): every job completes at
//  its first attempt, none taken as lost. (A dispatch turn whose claim met
//  the other broker's failed whole, and the claims of it the cluster took
//  stayed running with nobody on them until the leader, once their lease
//  ran out, took them as lost; so did claims confirmed in a turn that then
//  failed.)
static void
test_nats_two_brokers_on_one_queue_lose_no_attempt(void **state)
{
    s_fx_t *fx = *state;
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "w-deep-%d", i);
        const char *extra[] = {"--types", "noop",       "--concurrency",
                               "4",       "--prefetch", "256",
                               "--name",  name,         NULL};
        fx->worker[i] = jobq_test_worker_start(&fx->b[i], extra);
        assert_true(fx->worker[i] > 0);
    }
    enum { S_JOBS = 4096, S_BATCH = 64 };
    jobq_enqueue_t reqs[S_BATCH];
    char ids[S_BATCH][JOBQ_ID_LEN + 1];
    for (int k = 0; k < S_BATCH; k++)
        reqs[k] = (jobq_enqueue_t){"noop", "shop-1", {0}, 0, 0, 3, 0, NULL};
    for (int n = 0; n < S_JOBS; n += S_BATCH)
        assert_int_equal(jobq_client_enqueue_batch(fx->c[(n / S_BATCH) % 2],
                                                   reqs, S_BATCH, ids, NULL),
                         JOBQ_OK);
    uint64_t done = 0;
    for (int t = 0; t < 60000 && done < S_JOBS; t += 100) {
        zclock_sleep(100);
        done = s_stat(fx, 2, "totals", "completed");
    }
    uint64_t lost = 0, taken[2];
    for (int i = 0; i < S_BROKERS; i++)
        lost += s_stat(fx, i, "counters", "lost");
    for (int i = 0; i < 2; i++)
        taken[i] = s_stat(fx, i, "counters", "completed");
    fprintf(stderr,
            "two brokers on one queue: %llu of %d completed (%llu and %llu "
            "by each), %llu taken as lost\n",
            (unsigned long long) done, S_JOBS, (unsigned long long) taken[0],
            (unsigned long long) taken[1], (unsigned long long) lost);
    assert_int_equal(done, S_JOBS);
    assert_int_equal(lost, 0);
    assert_true(taken[1] > 0);  //  both took jobs
}

//  A broker whose cluster is gone still stops when told: SIGTERM ends it
//  within 10 s. (Its slot's renewal then tried each of the 64 slots with a
//  2 s timeout, and the stop waited for that: minutes.)
static void
test_nats_a_broker_whose_cluster_is_gone_still_stops(void **state)
{
    s_fx_t *fx = *state;
    jobq_test_nats_stop(&fx->nats);
    zclock_sleep(3000);  //  a renewal meets the dead cluster
    int64_t t0 = s_now_ms();
    kill(fx->b[0].pid, SIGTERM);
    int st = jobq_test_wait(fx->b[0].pid, 10000);
    fx->b[0].pid = -1;
    fprintf(stderr, "broker without its cluster: stopped after %lld ms\n",
            (long long) (s_now_ms() - t0));
    assert_true(st >= 0);
}

typedef struct {
    jobq_test_nats_t *nats;
    int after_ms;
} s_thaw_t;

static void *
s_thaw_main(void *arg)
{
    s_thaw_t *t = arg;
    zclock_sleep(t->after_ms);
    jobq_test_nats_pause_node(t->nats, 1, false);
    jobq_test_nats_pause_node(t->nats, 2, false);
    return NULL;
}

//  A broker started while the cluster has no quorum (two of its three
//  nodes frozen) waits for the cluster instead of exiting, and serves
//  once it is back. (It used to exit at the first request that timed out,
//  and a service manager restarting it raced the cluster's election.)
static void
test_nats_a_broker_started_without_a_quorum_waits_for_it(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_destroy(&fx->c[2]);
    jobq_test_broker_stop(&fx->b[2], SIGKILL);
    jobq_test_nats_pause_node(&fx->nats, 1, true);
    jobq_test_nats_pause_node(&fx->nats, 2, true);
    s_thaw_t thaw = {&fx->nats, 6000};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_thaw_main, &thaw), 0);
    int64_t t0 = s_now_ms();
    int rc = s_start_broker(fx, 2);
    pthread_join(thread, NULL);
    assert_int_equal(rc, 0);
    fprintf(stderr, "broker started without a quorum: serving after %lld ms\n",
            (long long) (s_now_ms() - t0));
    fx->c[2] = s_client(&fx->b[2]);
    s_worker(fx, 0, "noop", "w-b0");
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx->c[2], "noop", (jobq_bytes_t){0}, 0, NULL, id, NULL);
    assert_true(s_wait_status(fx->c[2], id, JOBQ_COMPLETED, 20000));
}

//  A --store the broker cannot use is refused at start, saying why, and
//  no cluster is needed to see it.
static void
test_nats_a_bad_store_is_refused_with_its_reason(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    static const struct {
        const char *store;
        const char *why;
    } cases[] = {
        {"redis://127.0.0.1:6379", "neither lmdb:DIR nor"},
        {"nats://127.0.0.1:1?replicas=9", "replicas=N"},
        {"nats://127.0.0.1:1?color=red", "prefix=NAME"},
        {"nats://127.0.0.1:1,,", "cannot reach NATS"},
        {"nats://127.0.0.1:1", "cannot reach NATS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char log[600], bin[1024];
        snprintf(log, sizeof log, "%s/broker%zu.log", dir, i);
        snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-broker"));
        char *argv[] = {bin, "--store", (char *) cases[i].store, NULL};
        pid_t pid = jobq_test_spawn(argv, log);
        assert_true(pid > 0);
        int st = jobq_test_wait(pid, 20000);
        assert_true(st > 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
        FILE *f = fopen(log, "r");
        char text[4096] = "";
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[n] = '\0';
        if (f)
            fclose(f);
        if (!strstr(text, cases[i].why))
            fprintf(stderr, "%s: %s\n", cases[i].store, text);
        assert_non_null(strstr(text, cases[i].why));
    }
    jobq_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nats_a_bad_store_is_refused_with_its_reason),
        cmocka_unit_test_setup_teardown(
            test_nats_brokers_share_jobs_keys_and_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_a_cancel_through_one_broker_stops_a_worker_of_another,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_a_killed_broker_s_job_runs_again_elsewhere, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_delayed_jobs_run_whichever_broker_took_them, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_the_cluster_loses_its_stream_leader_and_comes_back,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_a_broker_started_without_a_quorum_waits_for_it, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_two_brokers_on_one_queue_lose_no_attempt, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_nats_a_broker_whose_cluster_is_gone_still_stops, s_setup,
            s_teardown),
    };
    //  JOBQ_TEST_ONLY=pattern runs the matching tests only (by hand).
    if (getenv("JOBQ_TEST_ONLY"))
        cmocka_set_test_filter(getenv("JOBQ_TEST_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
