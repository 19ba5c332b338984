/*  jobq_test.c: test fixtures. */
#define _XOPEN_SOURCE 700
#include "jobq_test.h"
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int
jobq_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
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
        return true;
    }
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.events = b->events;
    cfg.timeout_ms = 200;
    cfg.retries = 0;
    jobq_client_t *c = jobq_client_new(&cfg);
    jobq_bytes_t body = {NULL, 0};
    bool up = c && jobq_client_stats(c, &body) == JOBQ_OK;
    free((void *) body.ptr);
    jobq_client_destroy(&c);
    return up;
}

int
jobq_test_broker_start(jobq_test_broker_t *b,
                       const char *dir,
                       const char *const *extra)
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
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = (char *) extra[i];
    argv[n] = NULL;
    b->pid = jobq_test_spawn(argv, b->log);
    if (b->pid < 0)
        return -1;
    if (!jobq_test_wait_until(s_broker_up, b, 10000) || b->pid < 0) {
        jobq_test_broker_stop(b, SIGKILL);
        return -1;
    }
    return 0;
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
