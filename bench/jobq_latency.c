/*  jobq_latency: idle dispatch latency through a real broker and worker.

    Starts jobq-broker (fresh data directory, free loopback ports, full
    sync) and one jobq-worker with one slot, already waiting. Then, N times
    with a 2 ms pause: enqueue one noop job and time (a) its acknowledgement
    and (b) the job's `running` event on the event socket, which the broker
    publishes in the same step as it sends the JOB to the worker (after the
    commit that records the lease). (b) is the idle dispatch latency.

    usage: jobq_latency BIN_DIR [--jobs N]   (bounded: N jobs, 60 s)
    The last line printed is CSV (system,mode,scenario,jobs_per_s,p50_us,
    p99_us,p999_us,rss_kb). */
#include "jobq/jobq_client.h"

#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int
s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static pid_t
s_spawn(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

//  True if body (an event's job map) says status st for job id.
static bool
s_is(const uint8_t *body, size_t len, const char *id, const char *st)
{
    char want[32];
    int n = snprintf(want, sizeof want, "\xa6status%c%s",
                     (char) (0xa0 | strlen(st)), st);
    return memmem(body, len, id, JOBQ_ID_LEN) &&
           memmem(body, len, want, (size_t) n);
}

int
main(int argc, char **argv)
{
    int jobs =
        argc > 3 && strcmp(argv[2], "--jobs") == 0 ? atoi(argv[3]) : 2000;
    if (argc < 2 || jobs < 10 || jobs > 100000) {
        fprintf(stderr, "usage: jobq_latency BIN_DIR [--jobs 10..100000]\n");
        return 2;
    }
    zsys_init();
    zsys_set_linger(0);
    char dir[] = "/tmp/jobq-lat-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    zsock_t *ps[3];
    int ports[3];
    for (int i = 0; i < 3; i++) {
        ps[i] = zsock_new(ZMQ_ROUTER);
        ports[i] = zsock_bind(ps[i], "tcp://127.0.0.1:*");
    }
    for (int i = 0; i < 3; i++)
        zsock_destroy(&ps[i]);
    char data[600], cl[64], wk[64], ev[64], bbin[600], wbin[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cl, sizeof cl, "tcp://127.0.0.1:%d", ports[0]);
    snprintf(wk, sizeof wk, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", ports[2]);
    snprintf(bbin, sizeof bbin, "%s/jobq-broker", argv[1]);
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    char *bargv[] = {bbin, "--data",   data, "--clients", cl,  "--workers",
                     wk,   "--events", ev,   "--quiet",   NULL};
    char *wargv[] = {wbin,   "--broker",      wk,  "--types",
                     "noop", "--concurrency", "1", NULL};
    pid_t broker = s_spawn(bargv), worker = s_spawn(wargv);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = cl;
    cfg.events = ev;
    cfg.timeout_ms = 500;
    jobq_client_t *c = jobq_client_new(&cfg);
    zsock_t *sub = zsock_new_sub(ev, "lat/");
    zsock_set_rcvtimeo(sub, 500);
    //  Warm up until a job's `running` event is seen: broker up, worker
    //  registered, SUB connected (at most 10 s).
    char id0[JOBQ_ID_LEN + 1];
    jobq_enqueue_t warm = {"noop", "lat", {NULL, 0}, 0, 0, 3, 0, NULL};
    bool ready = false;
    for (int i = 0; i < 20 && !ready; i++) {
        zclock_sleep(100);
        if (jobq_client_enqueue(c, &warm, id0, NULL) != JOBQ_OK)
            continue;
        zmsg_t *m;
        while (!ready && (m = zmsg_recv(sub)) != NULL) {
            zframe_t *b = zmsg_last(m);
            ready = s_is(zframe_data(b), zframe_size(b), id0, "running");
            zmsg_destroy(&m);
        }
    }
    int64_t *ack = calloc((size_t) jobs, sizeof *ack);
    int64_t *run = calloc((size_t) jobs, sizeof *run);
    jobq_enqueue_t req = {"noop", "lat", {NULL, 0}, 0, 0, 3, 0, NULL};
    char id[JOBQ_ID_LEN + 1];
    int done = 0, missed = 0;
    int64_t give_up = zclock_usecs() + 60 * 1000000LL;
    while (done < jobs && missed < 10 && zclock_usecs() < give_up) {
        zclock_sleep(2);
        int64_t t0 = zclock_usecs();
        if (jobq_client_enqueue(c, &req, id, NULL) != JOBQ_OK)
            break;
        ack[done] = zclock_usecs() - t0;
        run[done] = -1;
        while (run[done] < 0) {
            zmsg_t *m = zmsg_recv(sub);
            if (!m)
                break;
            zframe_t *b = zmsg_last(m);
            if (s_is(zframe_data(b), zframe_size(b), id, "running"))
                run[done] = zclock_usecs() - t0;
            zmsg_destroy(&m);
        }
        if (run[done] < 0)
            missed++;  //  not seen within 500 ms: counted, not a sample
        else
            done++;
    }
    if (done == 0) {
        fprintf(stderr, "jobq_latency: no job was seen dispatched\n");
        done = 1;
        ack[0] = run[0] = -1;
    }
    qsort(ack, (size_t) done, sizeof *ack, s_cmp);
    qsort(run, (size_t) done, sizeof *run, s_cmp);
    printf("jobq idle: jobs=%d missed=%d  enqueue ack us p50=%lld p99=%lld "
           "p999=%lld  "
           "enqueue->dispatched us p50=%lld p99=%lld p999=%lld\n",
           done, missed, (long long) ack[done / 2],
           (long long) ack[done * 99 / 100], (long long) ack[done * 999 / 1000],
           (long long) run[done / 2], (long long) run[done * 99 / 100],
           (long long) run[done * 999 / 1000]);
    printf("jobq,sync,enqueue-ack,,%lld,%lld,%lld,\n",
           (long long) ack[done / 2], (long long) ack[done * 99 / 100],
           (long long) ack[done * 999 / 1000]);
    printf("jobq,sync,idle-dispatch,,%lld,%lld,%lld,\n",
           (long long) run[done / 2], (long long) run[done * 99 / 100],
           (long long) run[done * 999 / 1000]);
    zsock_destroy(&sub);
    jobq_client_destroy(&c);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "jobq_latency: could not remove %s\n", dir);
    return done == jobs && missed == 0 ? 0 : 1;
}
