/*  nats_failover.c: how long a broker on a JetStream cluster stops
    answering when the leader of its jobs' stream is killed, and that
    nothing it acknowledged is lost.

    usage: nats_failover BIN_DIR NATS_DIR URLS [--rounds N]

    NATS_DIR is bench/peers/nats.sh's directory (nN.conf, nN.pid). Each
    round: a broker on the cluster; one client enqueues keyed jobs one
    after another (each tried again until acknowledged) for 2 s; the node
    leading the stream KV_<prefix>_jobs is SIGKILLed; the time from the
    kill to the first acknowledgement after it is the sample; 3 s later the
    node is started again. At the end every acknowledged job is read back.
    The row: "jobq-nats,failover,leader-kill" with the samples in us.
*/
#include "bench.h"
#include "jobq/jobq_client.h"

#include <czmq.h>
#include <nats/nats.h>
#include <string.h>

#define S_MAX_JOBS 20000

static pid_t
s_read_pid(const char *dir, int n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/n%d.pid", dir, n);
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t) pid;
}

//  The nats-server peers/nats.sh runs: $NATS_SERVER, or the one
//  scripts/fetch-nats-server.sh put beside the programs (BIN_DIR/../nats).
static char s_server[700];

static void
s_restart(const char *dir, int n)
{
    char conf[700], log[700], pidf[700];
    snprintf(conf, sizeof conf, "%s/n%d.conf", dir, n);
    snprintf(log, sizeof log, "%s/n%d.log", dir, n);
    snprintf(pidf, sizeof pidf, "%s/n%d.pid", dir, n);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(s_server, "nats-server", "-c", conf, (char *) NULL);
        _exit(127);
    }
    FILE *f = fopen(pidf, "w");
    if (f) {
        fprintf(f, "%ld\n", (long) pid);
        fclose(f);
    }
}

//  The node (1..3) leading stream, or 0.
static int
s_leader(const char *urls, const char *stream)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    int n = 0;
    char buf[1024];
    const char *servers[8];
    int count = 0;
    snprintf(buf, sizeof buf, "%s", urls);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p && count < 8;
         p = strtok_r(NULL, ",", &save))
        servers[count++] = p;
    if (natsOptions_Create(&o) == NATS_OK &&
        natsOptions_SetServers(o, servers, count) == NATS_OK &&
        natsConnection_Connect(&nc, o) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK && si &&
        si->Cluster && si->Cluster->Leader && si->Cluster->Leader[0] == 'n')
        n = atoi(si->Cluster->Leader + 1);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return n;
}

int
main(int argc, char **argv)
{
    int rounds = 3;
    if (argc == 6 && strcmp(argv[4], "--rounds") == 0)
        rounds = (int) bench_arg(argv[5], 1, 10);
    if ((argc != 4 && argc != 6) || rounds < 1) {
        fprintf(stderr,
                "usage: nats_failover BIN_DIR NATS_DIR URLS [--rounds N]\n");
        return 2;
    }
    const char *dir = argv[2], *urls = argv[3];
    const char *server = getenv("NATS_SERVER");
    if (server && *server)
        snprintf(s_server, sizeof s_server, "%s", server);
    else
        snprintf(s_server, sizeof s_server, "%s/../nats/nats-server", argv[1]);
    char prefix[32], store[1024], stream[64];
    snprintf(prefix, sizeof prefix, "fo%ld", (long) getpid());
    snprintf(store, sizeof store, "%s?replicas=3&prefix=%s", urls, prefix);
    snprintf(stream, sizeof stream, "KV_%s_jobs", prefix);
    const char *extra[] = {"--store", store, NULL};
    bench_broker_t b;
    if (bench_broker_start_with(&b, argv[1], extra) != 0)
        return 1;
    zsys_init();
    zsys_set_linger(0);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.timeout_ms = 1000;
    cfg.retries = 0;
    jobq_client_t *c = jobq_client_new(&cfg);
    static char ids[S_MAX_JOBS][JOBQ_ID_LEN + 1];
    int64_t samples[10];
    int acked = 0, ns = 0, lost = 0;
    for (int r = 0; r < rounds && acked < S_MAX_JOBS; r++) {
        int64_t start = bench_now_us(), killed = 0, back = 0;
        int node = 0;
        while (acked < S_MAX_JOBS && bench_now_us() - start < 30000000LL) {
            if (!killed && bench_now_us() - start > 2000000) {
                //  After the last round's restart the cluster may still
                //  be electing: ask again for up to 10 s.
                for (int t = 0; t < 50 && !(node = s_leader(urls, stream)); t++)
                    bench_sleep_us(200000);
                pid_t pid = node ? s_read_pid(dir, node) : -1;
                if (pid <= 0) {
                    fprintf(stderr, "nats_failover: no leader of %s\n", stream);
                    break;
                }
                kill(pid, SIGKILL);
                waitpid(pid, NULL, WNOHANG);
                killed = bench_now_us();
            }
            char key[32];
            snprintf(key, sizeof key, "fo-%d", acked);
            jobq_enqueue_t req = {"noop", "bench", {0}, 0, 0, 1, 0, key};
            if (jobq_client_enqueue(c, &req, ids[acked], NULL) != JOBQ_OK)
                continue;  //  the same key again: made at most once
            acked++;
            if (killed && !back) {
                back = bench_now_us() - killed;
                samples[ns++] = back;
                fprintf(stderr,
                        "nats_failover: round %d: n%d killed, answered "
                        "again after %.0f ms\n",
                        r + 1, node, (double) back / 1000.0);
            }
            if (back && bench_now_us() - killed > back + 3000000)
                break;
        }
        if (node)
            s_restart(dir, node);
        bench_sleep_us(3000000);  //  it catches up before the next round
    }
    //  Every acknowledged job is there.
    for (int i = 0; i < acked; i++) {
        jobq_job_info_t info = {0};
        int rc = JOBQ_EUNAVAILABLE;
        for (int t = 0; t < 20 && rc == JOBQ_EUNAVAILABLE; t++)
            rc = jobq_client_status(c, ids[i], &info);
        if (rc != JOBQ_OK)
            lost++;
        jobq_job_info_clear(&info);
    }
    printf("nats failover: rounds=%d acked=%d lost=%d (us from the kill "
           "to the next acknowledgement)\n",
           ns, acked, lost);
    if (ns > 0)
        bench_print_row("jobq-nats,failover,leader-kill", 0, samples, ns);
    jobq_client_destroy(&c);
    bench_broker_stop(&b);
    return ns == rounds && lost == 0 ? 0 : 1;
}
