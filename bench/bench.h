/*  bench.h: what the bench programs share: their clock, the CSV row
    bench/run.sh collects, how they read a number, and a jobq-broker of
    their own on loopback with its data in a temporary directory, removed
    after. */
#ifndef JOBQ_BENCH_H_INCLUDED
#define JOBQ_BENCH_H_INCLUDED

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  CLOCK_MONOTONIC in microseconds: system-wide, so one process can time
//  what another stamped.
static inline int64_t
bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void
bench_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

//  qsort order for int64_t samples, smallest first.
static inline int
bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  Sort the n (> 0) samples and print them as the CSV row bench/run.sh
//  collects: "label,rate,p50,p99,p999," (rate left empty when 0).
static inline void
bench_print_row(const char *label, double rate, int64_t *v, int n)
{
    qsort(v, (size_t) n, sizeof *v, bench_cmp_i64);
    printf("%s,", label);
    if (rate > 0)
        printf("%.0f", rate);
    printf(",%lld,%lld,%lld,\n", (long long) v[n / 2],
           (long long) v[n * 99 / 100], (long long) v[n * 999 / 1000]);
}

//  s as a whole decimal number in lo..hi (lo >= 0), or -1: the programs'
//  one way to read a number from their arguments.
static inline long
bench_arg(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v >= lo && v <= hi ? v : -1;
}

//  Start argv[0] with stderr to /dev/null; the child dies with this
//  process, however it ends. Its pid, or -1.
static inline pid_t
bench_spawn(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        //  JOBQ_BENCH_LOG=FILE: the programs' errors there (by hand).
        const char *log = getenv("JOBQ_BENCH_LOG");
        int fd = open(log ? log : "/dev/null",
                      O_WRONLY | O_APPEND | (log ? O_CREAT : 0), 0644);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

//  A jobq-broker with full sync (its default) on three loopback ports that
//  were free, its data in a fresh temporary directory.
typedef struct {
    char dir[32];      //  the temporary directory
    char data[64];     //  the broker's data directory, inside it
    char clients[64];  //  its endpoints
    char workers[64];
    char events[64];
    pid_t pid;  //  the broker, -1 when not running
} bench_broker_t;

//  Start BIN_DIR/jobq-broker (before this process touches ZeroMQ, so that
//  the fork copies none of it). 0, or -1 (and a message).
static inline int
bench_broker_start_with(bench_broker_t *b,
                        const char *bin_dir,
                        const char *const *extra)
{
    int fds[3], ports[3], ok = 1;
    for (int i = 0; i < 3; i++) {  //  all bound at once, so all differ
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        ok = ok && fds[i] >= 0 &&
             bind(fds[i], (struct sockaddr *) &a, len) == 0 &&
             getsockname(fds[i], (struct sockaddr *) &a, &len) == 0;
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    snprintf(b->dir, sizeof b->dir, "/tmp/jobq-bench-XXXXXX");
    b->pid = -1;
    if (!ok || !mkdtemp(b->dir)) {
        perror("bench: no ports or temporary directory");
        return -1;
    }
    char bin[600];
    snprintf(bin, sizeof bin, "%s/jobq-broker", bin_dir);
    snprintf(b->data, sizeof b->data, "%.31s/data", b->dir);
    snprintf(b->clients, sizeof b->clients, "tcp://127.0.0.1:%d", ports[0]);
    snprintf(b->workers, sizeof b->workers, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(b->events, sizeof b->events, "tcp://127.0.0.1:%d", ports[2]);
    char *argv[16] = {
        bin,        "--data",
        b->data,    "--clients",
        b->clients, "--workers",
        b->workers, "--events",
        b->events,  getenv("JOBQ_BENCH_LOG") ? "--verbose" : "--quiet",
        NULL};
    for (int i = 0; extra && extra[i] && i < 4; i++)
        argv[10 + i] = (char *) extra[i];
    b->pid = bench_spawn(argv);
    if (b->pid < 0)
        perror("bench: fork");
    return b->pid < 0 ? -1 : 0;
}

static inline int
bench_broker_start(bench_broker_t *b, const char *bin_dir)
{
    return bench_broker_start_with(b, bin_dir, NULL);
}

#ifdef JOBQ_CLIENT_H_INCLUDED
//  Jobs the broker counts completed (STATS), or 0 when it does not answer.
static inline uint64_t
bench_completed(jobq_client_t *c)
{
    jobq_bytes_t body = {NULL, 0}, totals, v;
    uint64_t n = 0;
    if (jobq_client_stats(c, &body) == JOBQ_OK &&
        jobq_mp_map_find(body, "totals", &totals) == JOBQ_OK &&
        jobq_mp_map_find(totals, "completed", &v) == JOBQ_OK) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        jobq_mp_read_uint(&r, &n);
    }
    free((void *) body.ptr);
    return n;
}
#endif

#ifdef JOBQ_CURVE_H_INCLUDED
//  CURVE for a run: key pairs for the broker, the client (admin) and the
//  worker (worker "w"), and the key file, in a temporary directory.
typedef struct {
    char dir[40];          //  the keys' directory
    char keys[80];         //  the key file
    char broker_cert[80];  //  the broker's secret certificate
    char worker_cert[80];  //  the worker's
    char broker_pub[41];   //  the broker's public key
    jobq_curve_t client;   //  the client's keys
    jobq_curve_t worker;   //  the worker's keys
} bench_curve_t;

static inline int
bench_curve_make(bench_curve_t *k)
{
    snprintf(k->dir, sizeof k->dir, "/tmp/jobq-bench-keys-XXXXXX");
    if (!mkdtemp(k->dir))
        return -1;
    char path[80], why[256], cpub[41], wpub[41];
    snprintf(path, sizeof path, "%s/broker", k->dir);
    snprintf(k->broker_cert, sizeof k->broker_cert, "%s/broker_secret", k->dir);
    snprintf(k->worker_cert, sizeof k->worker_cert, "%s/w_secret", k->dir);
    snprintf(k->keys, sizeof k->keys, "%s/keys", k->dir);
    int ok = jobq_curve_keygen(path, "broker", k->broker_pub, why, sizeof why);
    snprintf(path, sizeof path, "%s/c", k->dir);
    ok = ok || jobq_curve_keygen(path, "c", cpub, why, sizeof why);
    snprintf(path, sizeof path, "%s/w", k->dir);
    ok = ok || jobq_curve_keygen(path, "w", wpub, why, sizeof why);
    snprintf(path, sizeof path, "%s/c_secret", k->dir);
    ok = ok ||
         jobq_curve_setup(&k->client, path, k->broker_pub, why, sizeof why);
    ok = ok || jobq_curve_setup(&k->worker, k->worker_cert, k->broker_pub, why,
                                sizeof why);
    FILE *f = ok == 0 ? fopen(k->keys, "w") : NULL;
    if (!f) {
        fprintf(stderr, "bench: keys: %s\n", ok ? why : "cannot write");
        return -1;
    }
    fprintf(f, "c admin * %s\nw worker * %s\n", cpub, wpub);
    fclose(f);
    return 0;
}

static inline void
bench_curve_remove(bench_curve_t *k)
{
    static const char *const names[] = {
        "broker", "broker_secret", "c", "c_secret", "w", "w_secret", "keys"};
    char path[120];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", k->dir, names[i]);
        unlink(path);
    }
    rmdir(k->dir);
}
#endif

//  Remove a store's directory: LMDB's two files, the broker's lock
//  (jobq.lock), then itself.
static inline void
bench_remove_lmdb(const char *dir)
{
    static const char *const names[] = {"data.mdb", "lock.mdb", "jobq.lock"};
    char file[700];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(file, sizeof file, "%s/%s", dir, names[i]);
        unlink(file);
    }
    rmdir(dir);
}

//  Stop the broker (SIGTERM, then wait) and remove its data.
static inline void
bench_broker_stop(bench_broker_t *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        waitpid(b->pid, NULL, 0);
        b->pid = -1;
    }
    bench_remove_lmdb(b->data);
    rmdir(b->dir);
}

#endif
