/*  jobq_watch BIN_DIR [--jobs N] [--ms M]: how late libjobq's watch
    (jobq_client_watch) reports a job's end. Starts jobq-broker (bench.h)
    and one jobq-worker (--types sleep); a thread of this program
    subscribes to the broker's whole event stream (the direct subscriber)
    and notes when it saw each job's `completed` event. One job at a time:
    enqueue `sleep` {ms: M, steps: 1} (default 50 ms, so that the watch is
    under way before the end), watch it; the sample is from when the
    direct subscriber saw the end to when on_complete was called, which
    includes the watch's closing STATUS. Bounded: N jobs (default 300),
    120 s. The last line is CSV:
    jobq,watch,delay,,p50_us,p99_us,p999_us, */
#include "jobq/jobq_client.h"
#include "jobq/jobq_mp.h"
#include "../bench.h"

#include <pthread.h>
#include <string.h>
#include <zmq.h>

#define S_WARMUP 10
#define S_RING   64  //  ends remembered by the direct subscriber

static struct {
    pthread_mutex_t lock;
    char id[S_RING][JOBQ_ID_LEN + 1];
    int64_t at[S_RING];
    unsigned n;  //  ends seen
    volatile int stop;
} s_seen = {PTHREAD_MUTEX_INITIALIZER, {{0}}, {0}, 0, 0};

//  The direct subscriber: every event; each `completed` one noted.
static void *
s_subscribe(void *arg)
{
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0, hwm = 100000;
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(sub, (const char *) arg);
    while (!s_seen.stop) {
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t f[3];
        int n = 0, more = 1;
        while (more && n < 3) {
            zmq_msg_init(&f[n]);
            if (zmq_msg_recv(&f[n], sub, 0) < 0) {
                zmq_msg_close(&f[n]);
                break;
            }
            more = zmq_msg_more(&f[n++]);
        }
        int64_t now = bench_now_us();
        jobq_bytes_t v;
        jobq_str_t id, st;
        jobq_mp_reader_t r;
        if (n == 3 && !more) {
            jobq_bytes_t body = {zmq_msg_data(&f[2]), zmq_msg_size(&f[2])};
            int ok = jobq_mp_map_find(body, "status", &v) == JOBQ_OK;
            if (ok)
                jobq_mp_reader_init(&r, v.ptr, v.len);
            ok = ok && jobq_mp_read_str(&r, &st) == JOBQ_OK && st.len == 9 &&
                 memcmp(st.ptr, "completed", 9) == 0 &&
                 jobq_mp_map_find(body, "id", &v) == JOBQ_OK;
            if (ok)
                jobq_mp_reader_init(&r, v.ptr, v.len);
            if (ok && jobq_mp_read_str(&r, &id) == JOBQ_OK &&
                id.len == JOBQ_ID_LEN) {
                pthread_mutex_lock(&s_seen.lock);
                unsigned k = s_seen.n++ % S_RING;
                memcpy(s_seen.id[k], id.ptr, JOBQ_ID_LEN);
                s_seen.id[k][JOBQ_ID_LEN] = '\0';
                s_seen.at[k] = now;
                pthread_mutex_unlock(&s_seen.lock);
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return NULL;
}

//  When the direct subscriber saw id end (waiting up to 200 ms), or -1.
static int64_t
s_seen_at(const char *id)
{
    for (int tries = 0; tries < 200; tries++) {
        int64_t at = -1;
        pthread_mutex_lock(&s_seen.lock);
        for (unsigned i = 0; i < S_RING && i < s_seen.n; i++)
            if (strcmp(s_seen.id[i], id) == 0)
                at = s_seen.at[i];
        pthread_mutex_unlock(&s_seen.lock);
        if (at >= 0)
            return at;
        bench_sleep_us(1000);
    }
    return -1;
}

static void
s_on_complete(void *arg, const jobq_job_info_t *job)
{
    (void) job;
    *(int64_t *) arg = bench_now_us();
}

int
main(int argc, char **argv)
{
    int jobs = 300, ms = 50, bad = argc < 2 || argc % 2;
    for (int i = 2; !bad && i + 1 < argc; i += 2) {
        long v = bench_arg(argv[i + 1], 1, 10000);
        if (strcmp(argv[i], "--jobs") == 0 && v > 0)
            jobs = (int) v;
        else if (strcmp(argv[i], "--ms") == 0 && v > 0 && v <= 1000)
            ms = (int) v;
        else
            bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: jobq_watch BIN_DIR [--jobs 1..10000] "
                        "[--ms 1..1000]\n");
        return 2;
    }
    bench_broker_t b;
    if (bench_broker_start(&b, argv[1]) != 0)
        return 1;
    char wbin[600];
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    char *wargv[] = {wbin,    "--broker",      b.workers, "--types",
                     "sleep", "--concurrency", "16",      NULL};
    pid_t worker = bench_spawn(wargv);
    pthread_t sub;
    pthread_create(&sub, NULL, s_subscribe, b.events);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.events = b.events;
    cfg.timeout_ms = 500;
    jobq_client_t *c = jobq_client_new(&cfg);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 32);
    jobq_mp_write_map(&w, 2);
    jobq_mp_write_cstr(&w, "ms");
    jobq_mp_write_int(&w, ms);
    jobq_mp_write_cstr(&w, "steps");
    jobq_mp_write_int(&w, 1);
    jobq_enqueue_t req = {"sleep", "watch", {w.data, w.len}, 0, 0, 1, 0, NULL};
    int64_t *v = calloc((size_t) jobs, sizeof *v);
    int64_t give_up = bench_now_us() + 120 * 1000000LL;
    int done = 0, warm = 0, missed = 0, unseen = 0;
    //  The first jobs wait for the broker, the worker and the subscriber
    //  (the first STATS answers once the broker is up).
    for (int i = 0; i < 20; i++) {
        jobq_bytes_t body = {NULL, 0};
        if (jobq_client_stats(c, &body) == JOBQ_OK) {
            free((void *) body.ptr);
            break;
        }
    }
    while (done < jobs && missed < 10 && bench_now_us() < give_up) {
        char id[JOBQ_ID_LEN + 1];
        int64_t end = 0;
        jobq_watch_t cb = {NULL, s_on_complete, NULL, &end};
        if (jobq_client_enqueue(c, &req, id, NULL) != JOBQ_OK ||
            jobq_client_watch(c, id, &cb, 5000) != JOBQ_OK) {
            missed++;
            continue;
        }
        int64_t seen = s_seen_at(id);
        if (seen < 0) {
            //  not seen: the subscriber may still be joining
            missed += warm == S_WARMUP || ++unseen > 50;
            continue;
        }
        if (warm < S_WARMUP)
            warm++;
        else
            v[done++] = end - seen;
    }
    printf("jobq watch: jobs=%d missed=%d (us from the direct subscriber's "
           "end to on_complete)\n",
           done, missed);
    if (done > 0)
        bench_print_row("jobq,watch,delay", 0, v, done);
    s_seen.stop = 1;
    pthread_join(sub, NULL);
    jobq_mp_writer_fini(&w);
    jobq_client_destroy(&c);
    if (worker > 0) {
        kill(worker, SIGTERM);
        waitpid(worker, NULL, 0);
    }
    bench_broker_stop(&b);
    free(v);
    return done == jobs ? 0 : 1;
}
