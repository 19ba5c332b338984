/*  jobq_test.c: test fixtures. */
#define _XOPEN_SOURCE 700
#include "jobq_test.h"
#include "jobq_test_nats.h"
#include "jobq/jobq_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

char *
jobq_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/jobq-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(path))
        return NULL;
    return strdup(path);
}

static int
s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove(path);
}

void
jobq_test_rmtree(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

//  True if port on 127.0.0.1 can be bound now.
static bool
s_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t) port);
    bool ok = bind(fd, (struct sockaddr *) &a, sizeof a) == 0;
    close(fd);
    return ok;
}

//  Ports come from below the kernel's ephemeral range, where no outgoing
//  connection (a worker or a client of a test running alongside) takes its
//  source port, and never twice from one process: a port the kernel hands
//  out for bind(0) could be given to a connect() a moment later, and the
//  broker's bind then fails.
int
jobq_test_free_port(void)
{
    static int next = -1;
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    int base = low - 12000, span = 12000;
    if (base < 1024) {
        base = 1024;
        span = 64000;  //  no room below: any port bind says is free
    }
    if (next < 0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        next = (int) (((unsigned) getpid() * 97u + (unsigned) t.tv_nsec) %
                      (unsigned) span);
    }
    for (int tries = 0; tries < span; tries++) {
        int port = base + next;
        next = (next + 1) % span;
        if (port <= 65535 && s_port_free(port))
            return port;
    }
    return -1;
}

const char *
jobq_test_bin(const char *name)
{
    static char path[1024];
    const char *dir = getenv("JOBQ_BIN_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
    if (access(path, X_OK) != 0)
        fprintf(stderr,
                "jobq tests: cannot run %s: set JOBQ_BIN_DIR to the build's "
                "apps directory (ctest sets it)\n",
                path);
    return path;
}

pid_t
jobq_test_spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    setpgid(0, 0);
    execv(argv[0], argv);
    _exit(127);
}

int
jobq_test_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (waited >= timeout_ms)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

bool
jobq_test_reap(pid_t pid, int *status)
{
    return waitpid(pid, status, WNOHANG) == pid;
}

int
jobq_test_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    return jobq_test_wait(pid, timeout_ms);
}

bool
jobq_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    //  By the clock, not by turns: cond itself may take a while.
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (true) {
        if (cond(arg))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 +
                  (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms > timeout_ms)
            return cond(arg);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static bool
s_broker_up(void *arg)
{
    jobq_test_broker_t *b = arg;
    int status;
    if (jobq_test_reap(b->pid, &status)) {
        b->pid = -1;  //  it ended: it will not come up
        if (WIFSIGNALED(status))
            fprintf(stderr, "jobq tests: the broker was killed by signal %d\n",
                    WTERMSIG(status));
        else
            fprintf(stderr, "jobq tests: the broker exited with %d\n",
                    WEXITSTATUS(status));
        return true;
    }
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.events = b->events;
    cfg.timeout_ms = 200;
    cfg.retries = 0;
    cfg.curve = b->curve;
    jobq_client_t *c = jobq_client_new(&cfg);
    jobq_bytes_t body = {NULL, 0};
    bool up = c && jobq_client_stats(c, &body) == JOBQ_OK;
    free((void *) body.ptr);
    jobq_client_destroy(&c);
    return up;
}

//  Copy the last lines of the log at path to stderr, to say why a program
//  did not come up.
void
jobq_test_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[2048];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long) sizeof buf - 1 ? size - (long) sizeof buf + 1 : 0,
          SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    fprintf(stderr, "jobq tests: the end of %s:\n%s\n", path, buf);
}

//  True if the log at path holds needle past byte from.
static bool
s_log_has_since(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    fseek(f, from, SEEK_SET);
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

//  JOBQ_TEST_STORE=nats: one JetStream cluster for the whole test
//  process, started at the first broker and stopped at exit.
static jobq_test_nats_t s_nats;
static char *s_nats_dir;

static void
s_nats_stop(void)
{
    jobq_test_nats_stop(&s_nats);
    if (s_nats_dir) {
        jobq_test_rmtree(s_nats_dir);
        free(s_nats_dir);
        s_nats_dir = NULL;
    }
}

const char *
jobq_test_store(void)
{
    const char *s = getenv("JOBQ_TEST_STORE");
    return s && strcmp(s, "nats") == 0 ? "nats" : "lmdb";
}

const char *
jobq_test_nats_urls(void)
{
    if (strcmp(jobq_test_store(), "nats") != 0)
        return NULL;
    if (!s_nats_dir) {
        s_nats_dir = jobq_test_tmpdir();
        if (!s_nats_dir || jobq_test_nats_start(&s_nats, s_nats_dir) != 0) {
            fprintf(stderr, "jobq tests: the NATS cluster did not start\n");
            return NULL;
        }
        atexit(s_nats_stop);
    }
    return s_nats.urls;
}

static int
s_broker_start(jobq_test_broker_t *b, const char *dir, const char *const *extra)
{
    if (!b->clients[0]) {
        snprintf(b->clients, sizeof b->clients, "tcp://127.0.0.1:%d",
                 jobq_test_free_port());
        snprintf(b->workers, sizeof b->workers, "tcp://127.0.0.1:%d",
                 jobq_test_free_port());
        snprintf(b->events, sizeof b->events, "tcp://127.0.0.1:%d",
                 jobq_test_free_port());
    }
    snprintf(b->dir, sizeof b->dir, "%s/data", dir);
    snprintf(b->log, sizeof b->log, "%s/broker.log", dir);
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-broker"));
    char *argv[64] = {bin,        "--data",     b->dir,     "--clients",
                      b->clients, "--workers",  b->workers, "--events",
                      b->events,  "--map-size", "64",       "--verbose"};
    int n = 12;
    //  On the JetStream backend each data directory names buckets of its
    //  own, so tests stay apart and a restart finds its jobs again.
    char store[512];
    if (strcmp(jobq_test_store(), "nats") == 0) {
        const char *urls = jobq_test_nats_urls();
        if (!urls)
            return -1;
        //  The data directory is not made by the broker here, and tests
        //  keep logs beside it (DIR/data/../worker.log).
        mkdir(b->dir, 0700);
        uint32_t h = 2166136261u;
        for (const char *p = b->dir; *p; p++)
            h = (h ^ (uint8_t) *p) * 16777619u;
        snprintf(store, sizeof store, "%s?replicas=3&prefix=t%08x", urls, h);
        argv[n++] = "--store";
        argv[n++] = store;
    }
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = (char *) extra[i];
    argv[n] = NULL;
    b->pid = jobq_test_spawn(argv, b->log);
    if (b->pid < 0)
        return -1;
    //  A broker on a JetStream cluster that is electing a leader waits
    //  for it (up to 20 s); one that exits is seen at once.
    if (!jobq_test_wait_until(s_broker_up, b, 30000) || b->pid < 0) {
        jobq_test_broker_stop(b, SIGKILL);
        return -1;
    }
    return 0;
}

int
jobq_test_broker_start(jobq_test_broker_t *b,
                       const char *dir,
                       const char *const *extra)
{
    //  Fresh ports can still be taken between the pick and the bind; a
    //  broker that could not bind one is tried again on new ones. Ports the
    //  test already uses (a restart) are kept.
    bool fresh = !b->clients[0];
    for (int tries = 0; tries < 3; tries++) {
        struct stat st;
        char log[sizeof b->log];
        snprintf(log, sizeof log, "%s/broker.log", dir);
        long from = stat(log, &st) == 0 ? (long) st.st_size : 0;
        if (s_broker_start(b, dir, extra) == 0)
            return 0;
        if (!fresh || !s_log_has_since(log, from, "Address already in use"))
            break;
        b->clients[0] = 0;
    }
    jobq_test_log_tail(b->log);
    return -1;
}

void
jobq_test_broker_stop(jobq_test_broker_t *b, int sig)
{
    if (b->pid > 0)
        jobq_test_stop(b->pid, sig, 10000);
    b->pid = -1;
}

pid_t
jobq_test_worker_start(const jobq_test_broker_t *b, const char *const *extra)
{
    char bin[1024], log[600];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-worker"));
    snprintf(log, sizeof log, "%s/../worker.log", b->dir);
    char *argv[64] = {bin,         "--broker",          (char *) b->workers,
                      "--clients", (char *) b->clients, "--verbose"};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = (char *) extra[i];
    argv[n] = NULL;
    return jobq_test_spawn(argv, log);
}

pid_t
jobq_test_gateway_start(const jobq_test_broker_t *b,
                        const char *const *extra,
                        char *base,
                        size_t base_len)
{
    char bin[1024], log[600], listen[64];
    int port = jobq_test_free_port();
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-gateway"));
    snprintf(log, sizeof log, "%s/../gateway.log", b->dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(base, base_len, "http://127.0.0.1:%d", port);
    char *argv[64] = {
        bin,        "--listen",        listen, "--broker", (char *) b->clients,
        "--events", (char *) b->events};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = (char *) extra[i];
    argv[n] = NULL;
    return jobq_test_spawn(argv, log);
}

static int64_t
s_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

long
jobq_test_rss_anon_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

long
jobq_test_rss_settled_kb(pid_t pid, long base_kb, long slack_kb)
{
    long kb = jobq_test_rss_anon_kb(pid);
    for (int i = 0; i < 75 && kb - base_kb >= slack_kb; i++) {
        s_sleep_ms(200);
        kb = jobq_test_rss_anon_kb(pid);
    }
    return kb;
}

long
jobq_test_subscription_flood(void *xsub,
                             const char *frame,
                             size_t len,
                             int count,
                             pid_t broker,
                             int *sent)
{
    long peak = jobq_test_rss_anon_kb(broker);
    int64_t t0 = s_now_ms();
    int i = 0;
    for (; i < count && s_now_ms() - t0 < 60000; i++) {
        while (zmq_send(xsub, frame, len, ZMQ_DONTWAIT) < 0 &&
               s_now_ms() - t0 < 60000) {
            long kb = jobq_test_rss_anon_kb(broker);
            peak = kb > peak ? kb : peak;
            s_sleep_ms(1);
        }
        if (i % 10000 == 0) {
            long kb = jobq_test_rss_anon_kb(broker);
            peak = kb > peak ? kb : peak;
        }
    }
    for (int k = 0; k < 50; k++) {
        long kb = jobq_test_rss_anon_kb(broker);
        peak = kb > peak ? kb : peak;
        s_sleep_ms(100);
    }
    *sent = i;
    return peak;
}

//  Open up to n idle TCP connections to the port of endpoint ep
//  (tcp://127.0.0.1:PORT) without waiting for each; their fds go to fds.
//  Returns how many were opened.
int
jobq_test_idle_connections(const char *ep, int *fds, int n)
{
    int port = atoi(strrchr(ep, ':') + 1);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t) port);
    int k = 0;
    for (; k < n; k++) {
        fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fds[k] < 0)
            break;
        if (connect(fds[k], (struct sockaddr *) &a, sizeof a) != 0 &&
            errno != EINPROGRESS) {
            close(fds[k]);
            break;
        }
    }
    return k;
}
