/*  jobq_test_nats.h: a three-node NATS JetStream cluster (nats-server,
    /usr/sbin/nats-server) on loopback for the integration tests: free
    ports, one config file and one store directory per node, and nodes
    that can be killed, restarted and paused. There is no "skip if
    missing": a test that needs the cluster fails without nats-server.
*/
#ifndef JOBQ_TEST_NATS_H_INCLUDED
#define JOBQ_TEST_NATS_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>
#include <nats/nats.h>

#define JOBQ_TEST_NATS_NODES 3

//  The cluster. Node i is server_name "n<i+1>", with its config in
//  conf[i], its log in log[i] and its JetStream store in dir/n<i+1>.
typedef struct {
    pid_t pid[JOBQ_TEST_NATS_NODES];         //  -1 when not running
    int client_port[JOBQ_TEST_NATS_NODES];   //  nats://127.0.0.1:port
    int cluster_port[JOBQ_TEST_NATS_NODES];  //  routes
    int http_port[JOBQ_TEST_NATS_NODES];     //  monitoring (/healthz)
    char dir[512];                           //  configs, logs, stores
    char conf[JOBQ_TEST_NATS_NODES][600];    //  config files
    char log[JOBQ_TEST_NATS_NODES][600];     //  log files
    char urls[256];  //  "nats://127.0.0.1:P1,nats://...:P2,nats://...:P3"
} jobq_test_nats_t;

//  Pick free loopback ports, write the configs under dir, start the three
//  nodes and wait (20 s at most) until JetStream is ready cluster-wide:
//  every node answers /healthz with 200 and a client of urls gets the
//  account's JetStream info (there is a meta leader). Returns 0, or -1
//  (all nodes stopped, the log tails of the nodes at fault on stderr).
int jobq_test_nats_start(jobq_test_nats_t *c, const char *dir);

//  Stop node i with sig (SIGTERM, SIGKILL; SIGKILL after 10 s) and reap.
void jobq_test_nats_stop_node(jobq_test_nats_t *c, int i, int sig);

//  Start node i again (same config, ports and store) and wait (20 s at
//  most) until it answers /healthz with 200. Returns 0 or -1.
int jobq_test_nats_restart_node(jobq_test_nats_t *c, int i);

//  Freeze (SIGSTOP) or thaw (SIGCONT) node i.
void jobq_test_nats_pause_node(jobq_test_nats_t *c, int i, bool pause);

//  Stop every node (SIGTERM, SIGKILL after 10 s) and reap. Safe to call
//  twice, and on a cluster that never started if zeroed or after a
//  failed start.
void jobq_test_nats_stop(jobq_test_nats_t *c);

//  True if node i answers GET /healthz on its HTTP port with 200.
bool jobq_test_nats_healthy(const jobq_test_nats_t *c, int i);

//  Connect to the cluster (any node of urls; reconnects to another,
//  without limit, 100 ms apart; 1 s connect timeout). Returns NATS_OK and
//  the connection in *nc, or an error.
natsStatus jobq_test_nats_connect(const jobq_test_nats_t *c,
                                  natsConnection **nc);

//  Index (0..2) of the node that leads stream, or -1 (no leader now, no
//  such stream, no answer).
int jobq_test_nats_stream_leader(const jobq_test_nats_t *c, const char *stream);

//  Index (0..2) of the node whose client port url names
//  ("nats://127.0.0.1:PORT"), or -1.
int jobq_test_nats_node_of_url(const jobq_test_nats_t *c, const char *url);

#endif
