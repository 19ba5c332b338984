/*  jobq_test.h: what every jobq test needs: cmocka in the right include
    order, temporary directories, free loopback ports, child processes with
    deadlines, and polling with a time limit (never a bare sleep).
*/
#ifndef JOBQ_TEST_H_INCLUDED
#define JOBQ_TEST_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include "jobq/jobq_curve.h"

//  A fresh directory under $TMPDIR (or /tmp); caller frees and removes it.
char *jobq_test_tmpdir(void);
//  Remove dir and everything below it.
void jobq_test_rmtree(const char *dir);
//  A TCP port on 127.0.0.1 that was free a moment ago.
int jobq_test_free_port(void);
//  Copy the last 2 kB of the log at path to stderr, to say why a test
//  step failed.
void jobq_test_log_tail(const char *path);
//  Path of one of our programs (jobq-broker, jobq-worker, jobq), from
//  JOBQ_BIN_DIR. Static buffer.
const char *jobq_test_bin(const char *name);

//  Start argv[0] (a path) with stdout and stderr appended to log (NULL =
//  /dev/null). Returns the pid, or -1.
pid_t jobq_test_spawn(char *const argv[], const char *log);
//  Wait up to timeout_ms for pid; returns its wait status, or -1 on timeout
//  (the process is then killed with SIGKILL and reaped).
int jobq_test_wait(pid_t pid, int timeout_ms);
//  True if pid has ended (reaped; *status gets its wait status). Never
//  waits, never kills.
bool jobq_test_reap(pid_t pid, int *status);
//  Send sig and wait for the process to end (SIGKILL after timeout_ms).
int jobq_test_stop(pid_t pid, int sig, int timeout_ms);

//  Call cond(arg) every 10 ms until it returns true or timeout_ms passes.
bool jobq_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

//  Open up to n idle TCP connections to the port of endpoint ep
//  (tcp://127.0.0.1:PORT), without waiting for each; their descriptors go
//  to fds. Returns how many were opened.
int jobq_test_idle_connections(const char *ep, int *fds, int n);

//  The anonymous resident memory of process pid, kB (0 if unknown).
long jobq_test_rss_anon_kb(pid_t pid);

//  The broker's anonymous memory once it is back within slack_kb of
//  base_kb (read every 200 ms, 15 s at most: a broker that still works
//  through a backlog on a busy machine gives it back later), or the last
//  reading.
long jobq_test_rss_settled_kb(pid_t pid, long base_kb, long slack_kb);

//  The amplification an outside audit used, from xsub (an XSUB, connected;
//  it forwards every subscription frame, repeats included): frame (len
//  bytes) sent count times, within 60 s, then 5 s for the broker to work
//  through them. Returns the peak of broker's anonymous memory, kB;
//  *sent gets how many frames went.
long jobq_test_subscription_flood(void *xsub,
                                  const char *frame,
                                  size_t len,
                                  int count,
                                  pid_t broker,
                                  int *sent);

//  The backend the brokers of this test run on: "lmdb", or "nats" when
//  JOBQ_TEST_STORE=nats (then a three-node JetStream cluster is started
//  for the process at the first broker, and each data directory names a
//  set of buckets of its own).
const char *jobq_test_store(void);
//  The cluster's URLs on the nats backend (starting it if needed), else
//  NULL; NULL too if it could not start.
const char *jobq_test_nats_urls(void);

//  A broker process on free loopback ports with its data in dir.
typedef struct {
    pid_t pid;                  //  process, -1 when not running
    char dir[512];              //  data directory
    char clients[64];           //  client endpoint
    char workers[64];           //  worker endpoint
    char events[64];            //  event endpoint
    char log[600];              //  its log file
    const jobq_curve_t *curve;  //  keys to ask "up?" with (--keys), or NULL
} jobq_test_broker_t;

//  Pick ports (first call only) and start the broker; extra is a
//  NULL-terminated list of more arguments or NULL. Waits until it answers
//  a STATS request (30 s at most). Returns 0, or -1 if it did not come up
//  or ended.
int jobq_test_broker_start(jobq_test_broker_t *b,
                           const char *dir,
                           const char *const *extra);
//  Stop with sig (SIGTERM, SIGKILL) and reap.
void jobq_test_broker_stop(jobq_test_broker_t *b, int sig);

//  Start a worker for broker b; extra as above. Returns the pid or -1.
pid_t jobq_test_worker_start(const jobq_test_broker_t *b,
                             const char *const *extra);

//  Start jobq-gateway for broker b on a free loopback port (its log is
//  gateway.log beside b's data); extra as above. base gets its URL,
//  http://127.0.0.1:PORT. Returns the pid or -1; it may take a moment to
//  answer.
pid_t jobq_test_gateway_start(const jobq_test_broker_t *b,
                              const char *const *extra,
                              char *base,
                              size_t base_len);

#endif
