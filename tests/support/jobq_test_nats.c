/*  jobq_test_nats.c: a three-node NATS JetStream cluster on loopback. */
#define _XOPEN_SOURCE 700
#include "jobq_test_nats.h"
#include "jobq_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_START_MS   20000  //  for the whole cluster to be ready
#define S_RESTART_MS 20000  //  for one node to be healthy again
#define S_STOP_MS    10000  //  before SIGKILL

//  Between probes of a node that is not ready yet: nats-server logs a
//  warning for each failed health check, and wait_until polls every 10 ms.
static void
s_pause_probes(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

//  Write node i's config file.
static int
s_write_conf(jobq_test_nats_t *c, int i)
{
    FILE *f = fopen(c->conf[i], "w");
    if (!f)
        return -1;
    fprintf(f,
            "server_name: n%d\n"
            "listen: 127.0.0.1:%d\n"
            "http: 127.0.0.1:%d\n"
            "max_payload: 4MB\n"
            "jetstream {\n"
            "    store_dir: \"%s/n%d\"\n"
            "    max_memory_store: 256MB\n"
            "    max_file_store: 1GB\n"
            "}\n"
            "cluster {\n"
            "    name: jobq\n"
            "    listen: 127.0.0.1:%d\n"
            "    routes: [\n",
            i + 1, c->client_port[i], c->http_port[i], c->dir, i + 1,
            c->cluster_port[i]);
    //  All three, itself included: a server drops the route to itself.
    for (int k = 0; k < JOBQ_TEST_NATS_NODES; k++)
        fprintf(f, "        nats-route://127.0.0.1:%d\n", c->cluster_port[k]);
    fprintf(f, "    ]\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}

//  The nats-server to run: $JOBQ_NATS_SERVER, or the one
//  scripts/fetch-nats-server.sh put in the build directory (2.11.0 or
//  later: Debian 12's 2.9.10 can take two compare-and-set writes on the
//  same revision, docs/STORAGE.md 10.6).
static const char *
s_server(void)
{
    const char *path = getenv("JOBQ_NATS_SERVER");
    return path && *path ? path : JOBQ_TEST_NATS_SERVER;
}

static int
s_spawn(jobq_test_nats_t *c, int i)
{
    char *argv[] = {(char *) s_server(), "-c", c->conf[i], NULL};
    c->pid[i] = jobq_test_spawn(argv, c->log[i]);
    return c->pid[i] > 0 ? 0 : -1;
}

//  True if node i has ended (and then marks it not running).
static bool
s_ended(jobq_test_nats_t *c, int i)
{
    int status;
    if (c->pid[i] <= 0)
        return true;
    if (!jobq_test_reap(c->pid[i], &status))
        return false;
    c->pid[i] = -1;
    return true;
}

bool
jobq_test_nats_healthy(const jobq_test_nats_t *c, int i)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    //  A frozen node's kernel still accepts; it never answers.
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t) c->http_port[i]);
    char buf[512];
    size_t n = 0;
    if (connect(fd, (struct sockaddr *) &a, sizeof a) == 0) {
        const char *req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        size_t len = strlen(req);
        if (send(fd, req, len, MSG_NOSIGNAL) == (ssize_t) len) {
            ssize_t r;
            while (n < sizeof buf - 1 &&
                   (r = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0)
                n += (size_t) r;
        }
    }
    close(fd);
    buf[n] = 0;
    //  "HTTP/1.0 200 OK" (503 while JetStream is not current).
    return strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0;
}

natsStatus
jobq_test_nats_connect(const jobq_test_nats_t *c, natsConnection **nc)
{
    char urls[sizeof c->urls];
    const char *servers[JOBQ_TEST_NATS_NODES];
    int n = 0;
    snprintf(urls, sizeof urls, "%s", c->urls);
    char *save = NULL;
    for (char *u = strtok_r(urls, ",", &save); u && n < JOBQ_TEST_NATS_NODES;
         u = strtok_r(NULL, ",", &save))
        servers[n++] = u;
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, servers, n);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 100);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return s;
}

//  True if a client gets the account's JetStream info: the cluster has a
//  meta leader.
static bool
s_js_ready(const jobq_test_nats_t *c)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 1000;
    natsStatus s = jobq_test_nats_connect(c, &nc);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &o);
    if (s == NATS_OK)
        s = js_GetAccountInfo(&ai, js, NULL, NULL);
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return s == NATS_OK;
}

static bool
s_cluster_ready(void *arg)
{
    jobq_test_nats_t *c = arg;
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (s_ended(c, i))
            return true;  //  it will not come up
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (!jobq_test_nats_healthy(c, i)) {
            s_pause_probes();
            return false;
        }
    if (s_js_ready(c))
        return true;
    s_pause_probes();
    return false;
}

//  True if the log at path says a port was taken.
static bool
s_log_port_taken(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "address already in use") != NULL;
    fclose(f);
    return found;
}

static int
s_start_once(jobq_test_nats_t *c)
{
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++) {
        c->client_port[i] = jobq_test_free_port();
        c->cluster_port[i] = jobq_test_free_port();
        c->http_port[i] = jobq_test_free_port();
        if (c->client_port[i] < 0 || c->cluster_port[i] < 0 ||
            c->http_port[i] < 0)
            return -1;
    }
    snprintf(c->urls, sizeof c->urls,
             "nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d",
             c->client_port[0], c->client_port[1], c->client_port[2]);
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++) {
        snprintf(c->conf[i], sizeof c->conf[i], "%s/n%d.conf", c->dir, i + 1);
        snprintf(c->log[i], sizeof c->log[i], "%s/n%d.log", c->dir, i + 1);
        unlink(c->log[i]);  //  a retry's logs are its own
        if (s_write_conf(c, i) != 0)
            return -1;
    }
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (s_spawn(c, i) != 0)
            return -1;
    if (!jobq_test_wait_until(s_cluster_ready, c, S_START_MS))
        return -1;
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (c->pid[i] <= 0)
            return -1;
    return 0;
}

int
jobq_test_nats_start(jobq_test_nats_t *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        c->pid[i] = -1;
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    if (access(s_server(), X_OK) != 0) {
        fprintf(stderr,
                "jobq tests: cannot run %s: fetch nats-server with "
                "scripts/fetch-nats-server.sh (make test does)\n",
                s_server());
        return -1;
    }
    //  A port picked free can be taken before the node binds it: start
    //  again on fresh ones then.
    for (int tries = 0; tries < 3; tries++) {
        if (s_start_once(c) == 0)
            return 0;
        jobq_test_nats_stop(c);
        bool taken = false;
        for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
            taken = taken || s_log_port_taken(c->log[i]);
        if (!taken)
            break;
    }
    fprintf(stderr, "jobq tests: the NATS cluster in %s did not come up\n",
            c->dir);
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        jobq_test_log_tail(c->log[i]);
    return -1;
}

void
jobq_test_nats_stop_node(jobq_test_nats_t *c, int i, int sig)
{
    if (i < 0 || i >= JOBQ_TEST_NATS_NODES || c->pid[i] <= 0)
        return;
    kill(c->pid[i], SIGCONT);  //  a frozen node would not see SIGTERM
    jobq_test_stop(c->pid[i], sig, S_STOP_MS);
    c->pid[i] = -1;
}

typedef struct {
    jobq_test_nats_t *c;
    int i;
} s_node_t;

static bool
s_node_healthy(void *arg)
{
    s_node_t *n = arg;
    if (s_ended(n->c, n->i))
        return true;  //  it will not come up
    if (jobq_test_nats_healthy(n->c, n->i))
        return true;
    s_pause_probes();
    return false;
}

int
jobq_test_nats_restart_node(jobq_test_nats_t *c, int i)
{
    if (i < 0 || i >= JOBQ_TEST_NATS_NODES)
        return -1;
    jobq_test_nats_stop_node(c, i, SIGTERM);
    s_node_t n = {c, i};
    if (s_spawn(c, i) != 0 ||
        !jobq_test_wait_until(s_node_healthy, &n, S_RESTART_MS) ||
        c->pid[i] <= 0) {
        fprintf(stderr, "jobq tests: NATS node n%d did not come back\n", i + 1);
        jobq_test_log_tail(c->log[i]);
        return -1;
    }
    return 0;
}

void
jobq_test_nats_pause_node(jobq_test_nats_t *c, int i, bool pause)
{
    if (i >= 0 && i < JOBQ_TEST_NATS_NODES && c->pid[i] > 0)
        kill(c->pid[i], pause ? SIGSTOP : SIGCONT);
}

void
jobq_test_nats_stop(jobq_test_nats_t *c)
{
    //  All at once, then reap each: a node shutting down waits for none
    //  of the others.
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGCONT);
            kill(c->pid[i], SIGTERM);
        }
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (c->pid[i] > 0) {
            jobq_test_wait(c->pid[i], S_STOP_MS);
            c->pid[i] = -1;
        }
}

int
jobq_test_nats_stream_leader(const jobq_test_nats_t *c, const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 2000;
    natsStatus s = jobq_test_nats_connect(c, &nc);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &o);
    if (s == NATS_OK)
        s = js_GetStreamInfo(&si, js, stream, NULL, NULL);
    int leader = -1;
    if (s == NATS_OK && si->Cluster && si->Cluster->Leader) {
        const char *name = si->Cluster->Leader;
        if (name[0] == 'n' && name[1] >= '1' &&
            name[1] < '1' + JOBQ_TEST_NATS_NODES && name[2] == 0)
            leader = name[1] - '1';
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return leader;
}

int
jobq_test_nats_node_of_url(const jobq_test_nats_t *c, const char *url)
{
    const char *colon = url ? strrchr(url, ':') : NULL;
    if (!colon)
        return -1;
    int port = atoi(colon + 1);
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        if (c->client_port[i] == port)
            return i;
    return -1;
}
