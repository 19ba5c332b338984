/*  beanstalk_bench: the full job cycle against beanstalkd, over its plain
    text protocol, measured the way jobq_bench measures jobq.

    P producer threads each put their share of N jobs (300-byte bodies) and
    wait for INSERTED; C consumer threads each reserve-with-timeout, then
    delete. One TCP connection per thread, TCP_NODELAY, one request at a
    time. jobs/s runs from the start until the last job is deleted; the put
    latency is each put's round trip.

    usage: beanstalk_bench PORT --producers P --workers C --jobs N --mode M
    Bounded: N jobs and 120 s. The last line is CSV:
    system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_BODY     300        //  bytes per job
#define S_LIMIT_US 120000000  //  the whole run, at most

static int s_port;
static atomic_int s_deleted;
static int s_total;
static int64_t s_start;

static int64_t
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
s_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t) s_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *) &a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};  //  no read waits forever
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

//  A connection with a read buffer: replies are read in one call each,
//  not a byte at a time.
typedef struct {
    int fd;          //  socket
    char buf[4096];  //  bytes read, not yet used
    size_t have;     //  bytes in buf
    size_t at;       //  first unused byte
} s_conn_t;

static int
s_fill(s_conn_t *c)
{
    if (c->at > 0) {
        memmove(c->buf, c->buf + c->at, c->have - c->at);
        c->have -= c->at;
        c->at = 0;
    }
    if (c->have == sizeof c->buf)
        return -1;
    ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
    if (r <= 0)
        return -1;
    c->have += (size_t) r;
    return 0;
}

//  Read one CRLF-terminated line into out (at most cap - 1 bytes).
static int
s_line(s_conn_t *c, char *out, size_t cap)
{
    while (true) {
        char *nl = memchr(c->buf + c->at, '\n', c->have - c->at);
        if (nl) {
            size_t n = (size_t) (nl - (c->buf + c->at));
            size_t keep = n > 0 && nl[-1] == '\r' ? n - 1 : n;
            if (keep >= cap)
                return -1;
            memcpy(out, c->buf + c->at, keep);
            out[keep] = '\0';
            c->at += n + 1;
            return 0;
        }
        if (s_fill(c))
            return -1;
    }
}

//  Skip n bytes of a body.
static int
s_skip(s_conn_t *c, size_t n)
{
    while (n > 0) {
        if (c->at == c->have && s_fill(c))
            return -1;
        size_t k = c->have - c->at < n ? c->have - c->at : n;
        c->at += k;
        n -= k;
    }
    return 0;
}

typedef struct {
    int jobs;         //  to put
    int64_t *lat_us;  //  one per put
    int done;         //  put
} s_prod_t;

static void *
s_produce(void *arg)
{
    s_prod_t *p = arg;
    static __thread s_conn_t c;
    c.fd = s_connect();
    c.have = c.at = 0;
    if (c.fd < 0)
        return NULL;
    int fd = c.fd;
    char req[64 + S_BODY + 2], line[128];
    int hl = snprintf(req, 64, "put 1024 0 60 %d\r\n", S_BODY);
    memset(req + hl, 'x', S_BODY);
    memcpy(req + hl + S_BODY, "\r\n", 2);
    size_t len = (size_t) hl + S_BODY + 2;
    for (int i = 0; i < p->jobs && s_now_us() - s_start < S_LIMIT_US; i++) {
        int64_t t0 = s_now_us();
        if (write(fd, req, len) != (ssize_t) len ||
            s_line(&c, line, sizeof line))
            break;
        if (strncmp(line, "INSERTED", 8) != 0)
            break;
        p->lat_us[p->done++] = s_now_us() - t0;
    }
    close(fd);
    return NULL;
}

static void *
s_consume(void *arg)
{
    (void) arg;
    static __thread s_conn_t c;
    c.fd = s_connect();
    c.have = c.at = 0;
    if (c.fd < 0)
        return NULL;
    int fd = c.fd;
    char line[128], del[64];
    while (atomic_load(&s_deleted) < s_total &&
           s_now_us() - s_start < S_LIMIT_US) {
        static const char rsv[] = "reserve-with-timeout 1\r\n";
        if (write(fd, rsv, sizeof rsv - 1) != sizeof rsv - 1 ||
            s_line(&c, line, sizeof line))
            break;
        unsigned long long id;
        size_t bytes;
        if (sscanf(line, "RESERVED %llu %zu", &id, &bytes) != 2)
            continue;  //  TIMED_OUT: look again
        if (s_skip(&c, bytes + 2))
            break;
        int n = snprintf(del, sizeof del, "delete %llu\r\n", id);
        if (write(fd, del, (size_t) n) != n || s_line(&c, line, sizeof line))
            break;
        if (strcmp(line, "DELETED") == 0)
            atomic_fetch_add(&s_deleted, 1);
    }
    close(fd);
    return NULL;
}

static int
s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  Idle dispatch: a consumer already waits in `reserve` when the producer
//  puts; latency runs from the put until the consumer holds the job.
static int
s_idle(int n, const char *mode)
{
    static s_conn_t pc, cc;
    pc.fd = s_connect();
    cc.fd = s_connect();
    if (pc.fd < 0 || cc.fd < 0)
        return 1;
    struct timeval tv = {10, 0};
    setsockopt(cc.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int64_t *lat = calloc((size_t) n, sizeof *lat);
    char req[64 + S_BODY + 2], line[128], del[64];
    int hl = snprintf(req, 64, "put 1024 0 60 %d\r\n", S_BODY);
    memset(req + hl, 'x', S_BODY);
    memcpy(req + hl + S_BODY, "\r\n", 2);
    size_t len = (size_t) hl + S_BODY + 2;
    int done = 0;
    for (; done < n && s_now_us() - s_start < S_LIMIT_US; done++) {
        static const char rsv[] = "reserve\r\n";
        if (write(cc.fd, rsv, sizeof rsv - 1) != sizeof rsv - 1)
            break;
        struct timespec pause = {0, 1000000};  //  the server parks the
        nanosleep(&pause, NULL);               //  consumer meanwhile
        int64_t t0 = s_now_us();
        if (write(pc.fd, req, len) != (ssize_t) len)
            break;
        unsigned long long id;
        size_t bytes;
        if (s_line(&cc, line, sizeof line) ||
            sscanf(line, "RESERVED %llu %zu", &id, &bytes) != 2 ||
            s_skip(&cc, bytes + 2))
            break;
        lat[done] = s_now_us() - t0;
        if (s_line(&pc, line, sizeof line))  //  INSERTED
            break;
        int k = snprintf(del, sizeof del, "delete %llu\r\n", id);
        if (write(cc.fd, del, (size_t) k) != k ||
            s_line(&cc, line, sizeof line))
            break;
    }
    qsort(lat, (size_t) done, sizeof *lat, s_cmp);
    printf("beanstalkd %s idle dispatch: jobs=%d us p50=%lld p99=%lld "
           "p999=%lld\n",
           mode, done, (long long) lat[done / 2],
           (long long) lat[done * 99 / 100],
           (long long) lat[done * 999 / 1000]);
    printf("beanstalkd,%s,idle-dispatch,,%lld,%lld,%lld,\n", mode,
           (long long) lat[done / 2], (long long) lat[done * 99 / 100],
           (long long) lat[done * 999 / 1000]);
    return done == n ? 0 : 1;
}

//  Put n jobs on one connection, 1000 in flight at a time (a fast fill for
//  the restart and memory scenarios).
static int
s_put_many(int n)
{
    static s_conn_t c;
    c.fd = s_connect();
    if (c.fd < 0)
        return 1;
    char req[64 + S_BODY + 2], line[128];
    int hl = snprintf(req, 64, "put 1024 0 60 %d\r\n", S_BODY);
    memset(req + hl, 'x', S_BODY);
    memcpy(req + hl + S_BODY, "\r\n", 2);
    size_t len = (size_t) hl + S_BODY + 2;
    for (int i = 0; i < n;) {
        int k = n - i < 1000 ? n - i : 1000;
        for (int q = 0; q < k; q++)
            if (write(c.fd, req, len) != (ssize_t) len)
                return 1;
        for (int q = 0; q < k; q++)
            if (s_line(&c, line, sizeof line) ||
                strncmp(line, "INSERTED", 8) != 0)
                return 1;
        i += k;
    }
    close(c.fd);
    return 0;
}

//  Wait until the server answers `stats` with at least n ready jobs
//  (bounded: 120 s). Prints the ms it took.
static int
s_wait_ready(long n)
{
    int64_t t0 = s_now_us();
    while (s_now_us() - t0 < S_LIMIT_US) {
        static s_conn_t c;
        c.have = c.at = 0;
        c.fd = s_connect();
        if (c.fd < 0) {
            struct timespec pause = {0, 2000000};
            nanosleep(&pause, NULL);
            continue;
        }
        char line[128], body[8192];
        size_t bytes = 0;
        static const char st[] = "stats\r\n";
        long ready = -1;
        if (write(c.fd, st, sizeof st - 1) == sizeof st - 1 &&
            !s_line(&c, line, sizeof line) &&
            sscanf(line, "OK %zu", &bytes) == 1 && bytes < sizeof body) {
            size_t got = 0;
            while (got < bytes + 2) {
                if (c.at == c.have && s_fill(&c))
                    break;
                size_t k = c.have - c.at;
                if (k > bytes + 2 - got)
                    k = bytes + 2 - got;
                memcpy(body + got, c.buf + c.at, k);
                c.at += k;
                got += k;
            }
            body[bytes] = '\0';
            const char *r = strstr(body, "current-jobs-ready: ");
            if (r)
                ready = atol(r + strlen("current-jobs-ready: "));
        }
        close(c.fd);
        if (ready >= n) {
            printf("%lld\n", (long long) ((s_now_us() - t0) / 1000));
            return 0;
        }
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    return 1;
}

int
main(int argc, char **argv)
{
    int producers = 1, consumers = 1, idle = 0;
    const char *mode = "default";
    if (argc < 2)
        return 2;
    s_port = atoi(argv[1]);
    s_total = 10000;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--producers") == 0)
            producers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--workers") == 0)
            consumers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--jobs") == 0)
            s_total = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--mode") == 0)
            mode = argv[i + 1];
        else if (strcmp(argv[i], "--idle") == 0)
            idle = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--fill") == 0)
            return s_put_many(atoi(argv[i + 1]));
        else if (strcmp(argv[i], "--wait-ready") == 0)
            return s_wait_ready(atol(argv[i + 1]));
    }
    if (idle > 0) {
        s_start = s_now_us();
        return s_idle(idle, mode);
    }
    if (producers < 1 || consumers < 1 || producers > 256 || consumers > 256 ||
        s_total < producers) {
        fprintf(stderr, "beanstalk_bench: bad arguments\n");
        return 2;
    }
    s_total -= s_total % producers;
    s_prod_t *p = calloc((size_t) producers, sizeof *p);
    pthread_t *tp = calloc((size_t) producers, sizeof *tp);
    pthread_t *tc = calloc((size_t) consumers, sizeof *tc);
    s_start = s_now_us();
    for (int i = 0; i < consumers; i++)
        pthread_create(&tc[i], NULL, s_consume, NULL);
    for (int i = 0; i < producers; i++) {
        p[i].jobs = s_total / producers;
        p[i].lat_us = calloc((size_t) p[i].jobs + 1, sizeof(int64_t));
        pthread_create(&tp[i], NULL, s_produce, &p[i]);
    }
    int put = 0;
    for (int i = 0; i < producers; i++) {
        pthread_join(tp[i], NULL);
        put += p[i].done;
    }
    if (put < s_total)
        s_total = put;  //  consumers stop at what was put
    for (int i = 0; i < consumers; i++)
        pthread_join(tc[i], NULL);
    int64_t end = s_now_us();
    int deleted = atomic_load(&s_deleted);
    int64_t *all = calloc((size_t) put + 1, sizeof(int64_t));
    int k = 0;
    for (int i = 0; i < producers; i++)
        for (int j = 0; j < p[i].done; j++)
            all[k++] = p[i].lat_us[j];
    qsort(all, (size_t) k, sizeof *all, s_cmp);
    double rate = (double) deleted * 1e6 / (double) (end - s_start);
    printf("beanstalkd %s full cycle: producers=%d consumers=%d put=%d "
           "deleted=%d  %.0f jobs/s  put latency us p50=%lld p99=%lld "
           "p999=%lld\n",
           mode, producers, consumers, put, deleted, rate,
           k ? (long long) all[k / 2] : 0,
           k ? (long long) all[k * 99 / 100] : 0,
           k ? (long long) all[k * 999 / 1000] : 0);
    printf("beanstalkd,%s,cycle-%dx%d,%.0f,%lld,%lld,%lld,\n", mode, producers,
           consumers, rate, k ? (long long) all[k / 2] : 0,
           k ? (long long) all[k * 99 / 100] : 0,
           k ? (long long) all[k * 999 / 1000] : 0);
    return deleted == put && put > 0 ? 0 : 1;
}
