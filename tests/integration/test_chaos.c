/*  test_chaos.c: clients and workers against a broker that is killed with
    SIGKILL or stopped with SIGTERM, workers killed and frozen, at seeded
    random moments; then a checker over the whole history, in the manner of
    Jepsen's total-queue:

      lost        acknowledged jobs that did not end completed or failed
      unexpected  jobs in the store that no client tried to enqueue
      twice       jobs whose completion was published twice (two versions)
      duplicates  executions beyond the first, each of which must belong to
                  a distinct attempt (a lease that was lost); they are
                  counted by cause, the error the broker recorded for the
                  attempt that ran before

    A second run stops the broker only gracefully (SIGTERM, then a
    restart), and no job may run twice in it. Short forms by default (CI);
    JOBQ_CHAOS_SECONDS and JOBQ_CHAOS_SEED change the length and the seed
    of the first. Every loop is bounded in count and time.
*/
#include "jobq_test.h"
#include "jobq_test_nats.h"
#include "jobq/jobq_client.h"
#include "jobq_proto.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CLIENTS 3  //  client threads
#define S_WORKERS 3  //  worker processes

typedef struct {
    char key[32];              //  idempotency key
    char id[JOBQ_ID_LEN + 1];  //  id once acknowledged, "" before
} s_job_t;

typedef struct {
    int index;            //  thread number
    const char *clients;  //  broker client endpoint
    const char *events;   //  broker event endpoint
    const char *log;      //  execution log path
    volatile int *stop;   //  set by the main thread
    s_job_t *jobs;        //  max_jobs entries
    int max_jobs;         //  bound on keys tried
    int attempted;        //  keys tried
    int acked;            //  keys acknowledged
    int unknown;          //  tries that got no answer (retried)
    int job_ms;           //  how long each job runs
    int pace_ms;          //  pause between two jobs
} s_client_t;

static void s_pause(int ms);

static void *
s_client_main(void *arg)
{
    s_client_t *c = arg;
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = c->clients;
    cfg.events = c->events;
    cfg.timeout_ms = 700;
    cfg.retries = 2;  //  a list of three brokers: each gets a try
    jobq_client_t *cl = jobq_client_new(&cfg);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1024);
    while (!*c->stop && c->attempted < c->max_jobs) {
        s_job_t *j = &c->jobs[c->attempted++];
        snprintf(j->key, sizeof j->key, "c%d-%d", c->index, c->attempted);
        jobq_mp_writer_reset(&w);
        jobq_mp_write_map(&w, 2);
        jobq_mp_write_cstr(&w, "log");
        jobq_mp_write_cstr(&w, c->log);
        jobq_mp_write_cstr(&w, "ms");
        jobq_mp_write_int(&w, c->job_ms);
        jobq_enqueue_t req = {"chaos", "chaos-shop", {w.data, w.len}, 0, 0, 20,
                              0,       j->key};
        //  Retry the same key until acknowledged (or the run ends): an
        //  outcome we did not hear about is settled by the key.
        for (int tries = 0; tries < 50 && !j->id[0]; tries++) {
            int rc = jobq_client_enqueue(cl, &req, j->id, NULL);
            if (rc == JOBQ_OK)
                break;
            j->id[0] = '\0';
            c->unknown++;
            if (*c->stop)
                break;
            //  Refused at once (the broker is stopping): not a flood.
            s_pause(100);
        }
        if (j->id[0])
            c->acked++;
        //  Paced: a steady stream, not a flood.
        s_pause(c->pace_ms);
    }
    jobq_mp_writer_fini(&w);
    jobq_client_destroy(&cl);
    return NULL;
}

//  Events of completion, per job: distinct versions seen.
typedef struct {
    const char *events;  //  endpoint
    volatile int *stop;  //  set by the main thread
    zhashx_t *seen;      //  "id/version" -> 1 for completed events
    uint64_t count;      //  events received
} s_sub_t;

static void *
s_sub_main(void *arg)
{
    s_sub_t *s = arg;
    zsock_t *sub = zsock_new_sub(s->events, "");
    zsock_set_rcvtimeo(sub, 100);
    while (!*s->stop) {
        zmsg_t *m = zmsg_recv(sub);
        if (!m)
            continue;
        s->count++;
        zframe_t *body = zmsg_last(m);
        jobq_bytes_t b = {zframe_data(body), zframe_size(body)}, v;
        jobq_mp_reader_t r;
        jobq_str_t st, id;
        uint64_t version = 0;
        if (jobq_mp_map_find(b, "status", &v) == JOBQ_OK) {
            jobq_mp_reader_init(&r, v.ptr, v.len);
            if (jobq_mp_read_str(&r, &st) == JOBQ_OK && st.len == 9 &&
                memcmp(st.ptr, "completed", 9) == 0 &&
                jobq_mp_map_find(b, "id", &v) == JOBQ_OK) {
                jobq_mp_reader_init(&r, v.ptr, v.len);
                jobq_mp_read_str(&r, &id);
                if (jobq_mp_map_find(b, "version", &v) == JOBQ_OK) {
                    jobq_mp_reader_init(&r, v.ptr, v.len);
                    jobq_mp_read_uint(&r, &version);
                }
                char key[64];
                snprintf(key, sizeof key, "%.*s/%llu", (int) id.len, id.ptr,
                         (unsigned long long) version);
                zhashx_update(s->seen, key, (void *) 1);
            }
        }
        zmsg_destroy(&m);
    }
    zsock_destroy(&sub);
    return NULL;
}

static pid_t
s_start_worker(const char *workers, int i, const char *dir)
{
    char bin[1024], name[32], log[600];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("chaos_worker"));
    snprintf(name, sizeof name, "chaos-w%d", i);
    snprintf(log, sizeof log, "%s/worker%d.log", dir, i);
    char *argv[] = {bin, (char *) workers, name, NULL};
    return jobq_test_spawn(argv, log);
}

static uint64_t
s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
s_pause(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    jobq_client_t *c;  //  client
    uint64_t open;     //  pending + running, last read
} s_settle_t;

static bool
s_settled(void *arg)
{
    s_settle_t *s = arg;
    jobq_bytes_t body = {NULL, 0};
    if (jobq_client_stats(s->c, &body) != JOBQ_OK)
        return false;
    jobq_bytes_t totals, v;
    uint64_t p = 0, r = 0;
    if (jobq_mp_map_find(body, "totals", &totals) == JOBQ_OK) {
        jobq_mp_reader_t rd;
        if (jobq_mp_map_find(totals, "pending", &v) == JOBQ_OK) {
            jobq_mp_reader_init(&rd, v.ptr, v.len);
            jobq_mp_read_uint(&rd, &p);
        }
        if (jobq_mp_map_find(totals, "running", &v) == JOBQ_OK) {
            jobq_mp_reader_init(&rd, v.ptr, v.len);
            jobq_mp_read_uint(&rd, &r);
        }
    }
    free((void *) body.ptr);
    s->open = p + r;
    return p + r == 0;
}

static int
s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

//  The causes re-executions are counted by: the error recorded for the
//  attempt that ran before.
static const char *const s_causes[] = {
    "worker does not hold the job",        "lease expired (worker lost)",
    "worker lost (no heartbeat)",          "worker unreachable",
    "lease expired (its broker was lost)", NULL};
#define S_NCAUSES 6  //  the five above and "other"

//  The error the broker recorded for attempt of job id ("" if none).
static void
s_attempt_error(
    jobq_client_t *c, const char *id, uint32_t attempt, char *out, size_t cap)
{
    out[0] = '\0';
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    if (jobq_client_status(c, id, &info) != JOBQ_OK)
        return;
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, info.errors.ptr, info.errors.len);
    uint32_t n = 0;
    if (info.errors.len && jobq_mp_read_array(&r, &n) == JOBQ_OK) {
        for (uint32_t i = 0; i < n; i++) {
            jobq_bytes_t e, v;
            if (jobq_mp_skip(&r, &e) != JOBQ_OK)
                break;
            uint64_t a = 0;
            jobq_mp_reader_t vr;
            if (jobq_mp_map_find(e, "attempt", &v) != JOBQ_OK)
                continue;
            jobq_mp_reader_init(&vr, v.ptr, v.len);
            jobq_str_t text;
            if (jobq_mp_read_uint(&vr, &a) != JOBQ_OK || a != attempt ||
                jobq_mp_map_find(e, "error", &v) != JOBQ_OK)
                continue;
            jobq_mp_reader_init(&vr, v.ptr, v.len);
            if (jobq_mp_read_str(&vr, &text) == JOBQ_OK)
                snprintf(out, cap, "%.*s", (int) text.len, text.ptr);
        }
    }
    jobq_job_info_clear(&info);
}

typedef struct {
    int seconds;              //  length of the nemesis phase
    uint64_t seed;            //  of the nemesis
    bool graceful;            //  the nemesis only stops the broker (SIGTERM)
    bool nats;                //  three brokers on a JetStream cluster
    int job_ms;               //  how long each job runs
    int pace_ms;              //  each client's pause between two jobs
    int duplicates;           //  executions beyond the first
    int by_cause[S_NCAUSES];  //  duplicates by cause
    int min_acked;            //  acknowledged jobs the run must reach
    int broker_kills, broker_stops, leader_kills, node_pauses;
} s_chaos_t;

#define S_BROKERS 3  //  on the JetStream cluster

static void
s_chaos(s_chaos_t *run)
{
    int seconds = run->seconds;
    uint64_t seed = run->seed;
    //  Bounds that scale with the length: keys per client (a paced client
    //  makes a few hundred a second) and nemesis actions.
    int max_jobs = 600 * seconds + 1000;
    int max_actions = seconds;
    uint64_t rng = seed ? seed : 1;
    char *dir = jobq_test_tmpdir();
    char log[600];
    snprintf(log, sizeof log, "%s/executions.log", dir);
    //  One broker on LMDB, or three on a three-node JetStream cluster,
    //  which clients, workers and the subscriber reach through lists.
    jobq_test_broker_t bs[S_BROKERS];
    memset(bs, 0, sizeof bs);
    int nb = run->nats ? S_BROKERS : 1;
    jobq_test_nats_t nats;
    memset(&nats, 0, sizeof nats);
    char store[512] = "", bdirs[S_BROKERS][600];
    if (run->nats) {
        char ndir[600];
        snprintf(ndir, sizeof ndir, "%s/nats", dir);
        assert_int_equal(mkdir(ndir, 0700), 0);
        assert_int_equal(jobq_test_nats_start(&nats, ndir), 0);
        snprintf(store, sizeof store, "%s?replicas=3&prefix=chaos", nats.urls);
    }
    const char *extra[] = {"--retry-base-ms",
                           "20",
                           "--worker-timeout-ms",
                           "1500",
                           "--lease-ms",
                           "3000",
                           run->nats ? "--store" : NULL,
                           store,
                           NULL};
    char clients_ep[3 * 64], events_ep[3 * 64], workers_ep[3 * 64];
    clients_ep[0] = events_ep[0] = workers_ep[0] = '\0';
    for (int i = 0; i < nb; i++) {
        snprintf(bdirs[i], sizeof bdirs[i], "%s/b%d", dir, i);
        assert_int_equal(mkdir(bdirs[i], 0700), 0);
        if (jobq_test_broker_start(&bs[i], bdirs[i], extra) != 0) {
            for (int k = 0; k < i; k++)
                jobq_test_broker_stop(&bs[k], SIGKILL);
            if (run->nats)
                jobq_test_nats_stop(&nats);
            fail_msg("broker %d did not start (%s kept)", i, dir);
        }
        const char *sep = i ? "," : "";
        size_t l = strlen(clients_ep);
        snprintf(clients_ep + l, sizeof clients_ep - l, "%s%s", sep,
                 bs[i].clients);
        l = strlen(events_ep);
        snprintf(events_ep + l, sizeof events_ep - l, "%s%s", sep,
                 bs[i].events);
        l = strlen(workers_ep);
        snprintf(workers_ep + l, sizeof workers_ep - l, "%s%s", sep,
                 bs[i].workers);
    }
    pid_t workers[S_WORKERS];
    for (int i = 0; i < S_WORKERS; i++)
        workers[i] = s_start_worker(workers_ep, i, dir);

    volatile int stop = 0, sub_stop = 0;
    s_sub_t sub = {events_ep, &sub_stop, zhashx_new(), 0};
    pthread_t sub_thread, threads[S_CLIENTS];
    pthread_create(&sub_thread, NULL, s_sub_main, &sub);
    s_client_t clients[S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++) {
        clients[i] = (s_client_t){
            .index = i,
            .clients = clients_ep,
            .events = events_ep,
            .log = log,
            .job_ms = run->job_ms,
            .pace_ms = run->pace_ms,
            .stop = &stop,
            .jobs = calloc((size_t) max_jobs, sizeof(s_job_t)),
            .max_jobs = max_jobs,
        };
        pthread_create(&threads[i], NULL, s_client_main, &clients[i]);
    }

    //  The nemesis.
    int broker_kills = 0, broker_stops = 0, worker_kills = 0, freezes = 0;
    int leader_kills = 0, node_pauses = 0;
    int actions = 0;
    //  What stopped the nemesis early; the run then ends, everything is
    //  stopped, and the test fails with it.
    const char *broken = NULL;
    int64_t end = zclock_mono() + seconds * 1000;
    while (zclock_mono() < end && actions < max_actions) {
        s_pause(700 + (int) (s_rand(&rng) % 1500));
        int what = run->graceful ? 3
                   : run->nats   ? (int) (s_rand(&rng) % 6)
                                 : (int) (s_rand(&rng) % 4);
        //  On the cluster, the first two actions are a paused node and a
        //  killed stream leader, whatever the seed.
        if (run->nats && actions < 2)
            what = 5 - actions;
        int wi = (int) (s_rand(&rng) % S_WORKERS);
        int bi = (int) (s_rand(&rng) % (uint64_t) nb);
        actions++;
        if (what == 4) {
            //  The leader of the jobs' stream dies, and comes back.
            int n = jobq_test_nats_stream_leader(&nats, "KV_chaos_jobs");
            if (n < 0)
                n = (int) (s_rand(&rng) % JOBQ_TEST_NATS_NODES);
            jobq_test_nats_stop_node(&nats, n, SIGKILL);
            s_pause(1000 + (int) (s_rand(&rng) % 2000));
            if (jobq_test_nats_restart_node(&nats, n) != 0) {
                broken = "a NATS node did not start again";
                break;
            }
            leader_kills++;
        } else if (what == 5) {
            //  A node stops answering for a while.
            int n = (int) (s_rand(&rng) % JOBQ_TEST_NATS_NODES);
            jobq_test_nats_pause_node(&nats, n, true);
            s_pause(2000 + (int) (s_rand(&rng) % 1000));
            jobq_test_nats_pause_node(&nats, n, false);
            node_pauses++;
        } else if (what == 0 || what == 3) {
            //  SIGKILL, or SIGTERM and a wait for the graceful stop.
            jobq_test_broker_stop(&bs[bi], what == 0 ? SIGKILL : SIGTERM);
            s_pause(100 + (int) (s_rand(&rng) % 400));
            if (jobq_test_broker_start(&bs[bi], bdirs[bi], extra) != 0) {
                broken = "a broker did not start again";
                break;
            }
            if (what == 0)
                broker_kills++;
            else
                broker_stops++;
        } else if (what == 1) {
            jobq_test_stop(workers[wi], SIGKILL, 5000);
            s_pause((int) (s_rand(&rng) % 500));
            workers[wi] = s_start_worker(workers_ep, wi, dir);
            worker_kills++;
        } else {
            kill(workers[wi], SIGSTOP);
            s_pause(2000 + (int) (s_rand(&rng) % 2000));
            kill(workers[wi], SIGCONT);
            freezes++;
        }
    }
    stop = 1;
    for (int i = 0; i < S_CLIENTS; i++)
        pthread_join(threads[i], NULL);

    //  Let everything finish, with every process up.
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = bs[0].clients;
    cfg.events = bs[0].events;
    jobq_client_t *c = jobq_client_new(&cfg);
    s_settle_t settle = {c, 0};
    //  Wait while the backlog shrinks: done when nothing is open, given up
    //  when a whole minute passes without progress (or after an hour).
    bool settled = false;
    uint64_t best = UINT64_MAX;
    int64_t progress_at = zclock_mono(), settle_end = zclock_mono() + 3600000;
    while (!settled && zclock_mono() < settle_end &&
           zclock_mono() - progress_at < 60000) {
        settled = jobq_test_wait_until(s_settled, &settle, 1000);
        if (settle.open < best) {
            best = settle.open;
            progress_at = zclock_mono();
        }
    }
    if (!settled) {
        //  Say what is still open.
        for (int st = JOBQ_PENDING; st <= JOBQ_RUNNING; st++) {
            jobq_list_t req = {NULL, NULL, st, 5, NULL};
            jobq_job_info_t *jobs;
            size_t n;
            char nx[JOBQ_ID_LEN + 1];
            if (jobq_client_list(c, &req, &jobs, &n, nx) != JOBQ_OK)
                continue;
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "open: %s %s attempts=%u worker=%s\n",
                        jobs[i].id, jobq_status_name(jobs[i].status),
                        jobs[i].attempts,
                        jobs[i].worker ? jobs[i].worker : "-");
            jobq_job_list_free(&jobs, n);
        }
        fprintf(stderr, "open by the counters: %llu\n",
                (unsigned long long) settle.open);
    }
    s_pause(300);
    sub_stop = 1;
    pthread_join(sub_thread, NULL);

    //  The checker.
    int attempted = 0, acked = 0, lost = 0, unknown = 0;
    zhashx_t *keys = zhashx_new();  //  key -> "1"
    zhashx_t *ids = zhashx_new();   //  acked id -> "1"
    for (int i = 0; i < S_CLIENTS; i++) {
        attempted += clients[i].attempted;
        acked += clients[i].acked;
        unknown += clients[i].unknown;
        for (int k = 0; k < clients[i].attempted; k++) {
            s_job_t *j = &clients[i].jobs[k];
            zhashx_insert(keys, j->key, (void *) 1);
            if (!j->id[0])
                continue;
            zhashx_insert(ids, j->id, (void *) 1);
            jobq_job_info_t info;
            memset(&info, 0, sizeof info);
            int rc = jobq_client_status(c, j->id, &info);
            if (rc != JOBQ_OK ||
                (info.status != JOBQ_COMPLETED && info.status != JOBQ_FAILED)) {
                lost++;
                fprintf(stderr, "lost: %s %s rc=%d status=%s\n", j->key, j->id,
                        rc, jobq_status_name(info.status));
            }
            jobq_job_info_clear(&info);
        }
    }
    //  Every stored job must carry a key some client tried.
    int unexpected = 0, stored = 0, recovered = 0;
    char next[JOBQ_ID_LEN + 1] = "", cursor[JOBQ_ID_LEN + 1];
    for (int pages = 0; pages < 1000; pages++) {
        memcpy(cursor, next, sizeof cursor);
        jobq_list_t req = {NULL, NULL, -1, 1000, cursor[0] ? cursor : NULL};
        jobq_job_info_t *jobs;
        size_t n;
        if (jobq_client_list(c, &req, &jobs, &n, next) != JOBQ_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            stored++;
            //  LIST omits nothing we check but the key: ask for it.
            jobq_job_info_t info;
            memset(&info, 0, sizeof info);
            if (jobq_client_status(c, jobs[i].id, &info) != JOBQ_OK ||
                !info.key || !zhashx_lookup(keys, info.key))
                unexpected++;
            else if (!zhashx_lookup(ids, jobs[i].id))
                recovered++;  //  committed, never heard of: fine
            jobq_job_info_clear(&info);
        }
        jobq_job_list_free(&jobs, n);
        if (!next[0])
            break;
    }
    //  Executions: each (id, attempt) at most once; extra runs of one job
    //  are explained by lost leases.
    int executions = 0, duplicates = 0, same_attempt_twice = 0;
    FILE *f = fopen(log, "r");
    char **lines = calloc(S_CLIENTS * max_jobs * 4 + 1, sizeof(char *));
    char line[64];
    while (f && fgets(line, sizeof line, f) &&
           executions < S_CLIENTS * max_jobs * 4)
        lines[executions++] = strdup(line);
    if (f)
        fclose(f);
    qsort(lines, (size_t) executions, sizeof(char *), s_cmp_str);
    for (int i = 1; i < executions; i++) {
        if (strcmp(lines[i], lines[i - 1]) == 0) {
            same_attempt_twice++;
            fprintf(stderr, "ran twice: %s", lines[i]);
        } else if (strncmp(lines[i], lines[i - 1], JOBQ_ID_LEN) == 0) {
            duplicates++;
            //  Why the run before this one did not count: its attempt's
            //  recorded error (lines sort by id, then attempt).
            char id[JOBQ_ID_LEN + 1], why[256];
            unsigned attempt = 0;
            if (sscanf(lines[i - 1], "%16s %u", id, &attempt) != 2)
                attempt = 0;
            s_attempt_error(c, id, attempt, why, sizeof why);
            int k = 0;
            while (s_causes[k] && strcmp(s_causes[k], why) != 0)
                k++;
            run->by_cause[k]++;
            if (!s_causes[k])
                fprintf(stderr, "rerun after: %s attempt %u: '%s'\n", id,
                        attempt, why);
        }
    }
    run->duplicates = duplicates;
    run->broker_kills = broker_kills;
    run->broker_stops = broker_stops;
    run->leader_kills = leader_kills;
    run->node_pauses = node_pauses;
    for (int i = 0; i < executions; i++)
        free(lines[i]);
    free(lines);
    //  Completions published with two different versions for one job.
    int twice = 0;
    zhashx_t *done = zhashx_new();
    for (void *v = zhashx_first(sub.seen); v; v = zhashx_next(sub.seen)) {
        const char *k = zhashx_cursor(sub.seen);
        char id[JOBQ_ID_LEN + 1];
        snprintf(id, sizeof id, "%.16s", k);
        if (zhashx_lookup(done, id))
            twice++;
        else
            zhashx_insert(done, id, (void *) 1);
    }
    printf("chaos: seed=%llu seconds=%d attempted=%d acked=%d stored=%d "
           "recovered=%d unanswered_tries=%d broker_kills=%d "
           "broker_stops=%d worker_kills=%d freezes=%d leader_kills=%d "
           "node_pauses=%d executions=%d "
           "duplicates=%d (not_held=%d lease_expired=%d no_heartbeat=%d "
           "unreachable=%d broker_lost=%d other=%d) | lost=%d unexpected=%d "
           "completed_twice=%d same_attempt_twice=%d settled=%s "
           "events=%llu\n",
           (unsigned long long) seed, seconds, attempted, acked, stored,
           recovered, unknown, broker_kills, broker_stops, worker_kills,
           freezes, leader_kills, node_pauses, executions, duplicates,
           run->by_cause[0], run->by_cause[1], run->by_cause[2],
           run->by_cause[3], run->by_cause[4], run->by_cause[5], lost,
           unexpected, twice, same_attempt_twice, settled ? "yes" : "no",
           (unsigned long long) sub.count);
    fflush(stdout);
    if (broken)
        fprintf(stderr, "chaos: %s\n", broken);
    bool ok = !broken && settled && acked >= run->min_acked &&
              broker_kills + broker_stops + worker_kills + freezes > 0 &&
              lost == 0 && unexpected == 0 && twice == 0 &&
              same_attempt_twice == 0;

    //  Every process stops before any check can end the test.
    zhashx_destroy(&done);
    zhashx_destroy(&keys);
    zhashx_destroy(&ids);
    zhashx_destroy(&sub.seen);
    jobq_client_destroy(&c);
    for (int i = 0; i < S_CLIENTS; i++)
        free(clients[i].jobs);
    for (int i = 0; i < S_WORKERS; i++)
        jobq_test_stop(workers[i], SIGKILL, 5000);
    for (int i = 0; i < nb; i++)
        jobq_test_broker_stop(&bs[i], SIGKILL);
    if (run->nats)
        jobq_test_nats_stop(&nats);
    if (getenv("JOBQ_TEST_KEEP") || !ok)
        fprintf(stderr, "kept %s\n", dir);
    else
        jobq_test_rmtree(dir);
    free(dir);
    assert_null(broken);
    assert_true(settled);
    assert_true(acked >= run->min_acked);
    assert_true(broker_kills + broker_stops + worker_kills + freezes > 0);
    assert_int_equal(lost, 0);
    assert_int_equal(unexpected, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(same_attempt_twice, 0);
}

static void
test_chaos_no_acknowledged_job_is_lost(void **state)
{
    (void) state;
    const char *env = getenv("JOBQ_CHAOS_SECONDS");
    s_chaos_t run = {.seconds = env ? (int) strtol(env, NULL, 10) : 30,
                     .job_ms = 2,
                     .pace_ms = 2,
                     .min_acked = 100};
    env = getenv("JOBQ_CHAOS_SEED");
    run.seed = env ? strtoull(env, NULL, 10) : 20261128;
    if (run.seconds < 5)
        run.seconds = 5;
    if (run.seconds > 86400)
        run.seconds = 86400;
    s_chaos(&run);
}

//  Graceful broker stops (SIGTERM, as a service manager sends it) while
//  jobs of 3 s run: the broker waits for their results, so no job runs
//  twice. (A broker that left after a short drain lost the results of the
//  jobs still running, and they ran again after the restart.)
static void
test_chaos_graceful_broker_stops_run_no_job_twice(void **state)
{
    (void) state;
    s_chaos_t run = {.seconds = 14,
                     .seed = 7,
                     .graceful = true,
                     .job_ms = 3000,
                     .pace_ms = 1500,
                     .min_acked = 10};
    s_chaos(&run);
    assert_true(run.broker_stops >= 3);
    assert_int_equal(run.duplicates, 0);
}

//  Three brokers on a three-node JetStream cluster, clients and workers
//  going through all of them, while the nemesis SIGKILLs brokers and
//  workers, freezes workers, SIGKILLs the leader of the jobs' stream (and
//  restarts it), and pauses a NATS node.
static void
test_chaos_nats_cluster_loses_no_acknowledged_job(void **state)
{
    (void) state;
    const char *env = getenv("JOBQ_CHAOS_SECONDS");
    s_chaos_t run = {.seconds = env ? (int) strtol(env, NULL, 10) : 40,
                     .nats = true,
                     .job_ms = 2,
                     .pace_ms = 5,
                     .min_acked = 100};
    env = getenv("JOBQ_CHAOS_SEED");
    run.seed = env ? strtoull(env, NULL, 10) : 20261207;
    if (run.seconds < 10)
        run.seconds = 10;
    if (run.seconds > 86400)
        run.seconds = 86400;
    s_chaos(&run);
    assert_true(run.broker_kills + run.leader_kills + run.node_pauses > 0);
}

int
main(void)
{
    zsys_init();
    zsys_set_linger(0);
    cmocka_set_test_filter(getenv("JOBQ_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_no_acknowledged_job_is_lost),
        cmocka_unit_test(test_chaos_graceful_broker_stops_run_no_job_twice),
    };
    //  JOBQ_CHAOS_NATS=1: the run on the JetStream cluster alone (ctest's
    //  test_chaos_nats, tests/README.md).
    const struct CMUnitTest nats_tests[] = {
        cmocka_unit_test(test_chaos_nats_cluster_loses_no_acknowledged_job),
    };
    if (getenv("JOBQ_CHAOS_NATS"))
        return cmocka_run_group_tests_name("chaos-nats", nats_tests, NULL,
                                           NULL);
    return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
