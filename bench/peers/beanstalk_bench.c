/*  beanstalk_bench: beanstalkd over its plain text protocol, measured the
    way jobq_bench and jobq_latency measure jobq.

    Cycle: P producer processes put their share of N jobs (300-byte bodies)
    and wait for each INSERTED; C consumer processes reserve-with-timeout,
    then delete. One TCP connection per process, TCP_NODELAY, one request
    at a time; with --pipeline K a producer keeps K puts in flight, and a
    consumer sends each delete with its next reserve. All connect, then
    start together; jobs/s runs from that start to the last delete, and
    the percentiles are the puts' round trips. --idle N: idle dispatch
    (s_idle). --fill N and --wait-ready N: the restart's fill and wait.

    usage: beanstalk_bench PORT --producers P --workers C --jobs N --mode M
                           [--pipeline 1..1000]
           beanstalk_bench PORT --idle N --mode M
           beanstalk_bench PORT --fill N | --wait-ready N
    Bounded: N jobs and 120 s; a child also stops when its parent is gone,
    and the parent kills and reaps every child still there 10 s after the
    limit. The last line is CSV: system,mode,scenario,jobs_per_s,p50_us,
    p99_us,p999_us, */
#define _DEFAULT_SOURCE  //  MAP_ANONYMOUS
#include "../bench.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

#define S_BODY     300        //  bytes per job
#define S_LIMIT_US 120000000  //  the whole run, at most
#define S_GRACE_US 10000000   //  then the parent kills what is left
#define S_MAX_PROC 256        //  producers, and consumers, at most

//  What the parent and its children share (MAP_SHARED, anonymous).
typedef struct {
    atomic_int ready;             //  children connected, or given up
    atomic_int go;                //  1 once the parent has started the run
    atomic_int total;             //  jobs to delete: N, then what was put
    atomic_int deleted;           //  DELETED replies, all consumers
    atomic_llong start_us;        //  the common start
    atomic_llong last_del_us;     //  when the last job was deleted
    atomic_int done[S_MAX_PROC];  //  puts per producer
    int64_t lat_us[];             //  put latencies, N / P per producer
} s_shared_t;

static int s_port;
static int s_total;
static int s_pipeline = 1;  //  --pipeline K: requests in flight
static int64_t s_start;
static s_shared_t *s_sh;
static pid_t s_parent;  //  the children's parent
static int s_go_fd;     //  read end of the start pipe, in the children

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

//  A put of S_BODY bytes of 'x' into req (64 + S_BODY + 2 bytes); returns
//  its length. The body is its last S_BODY + 2 bytes, CRLF included.
static size_t
s_put_req(char *req)
{
    int hl = snprintf(req, 64, "put 1024 0 60 %d\r\n", S_BODY);
    memset(req + hl, 'x', S_BODY);
    memcpy(req + hl + S_BODY, "\r\n", 2);
    return (size_t) hl + S_BODY + 2;
}

//  In a child: block until the parent starts the run (it closes the
//  pipe's write end). False when the parent went away instead.
static bool
s_wait_go(void)
{
    char b;
    for (int i = 0; i < 100; i++)
        if (read(s_go_fd, &b, 1) >= 0 || errno != EINTR)
            break;
    close(s_go_fd);
    return atomic_load(&s_sh->go) == 1;
}

//  In a child: still worth going on (time left, parent there).
static bool
s_in_time(void)
{
    return bench_now_us() - atomic_load(&s_sh->start_us) < S_LIMIT_US &&
           getppid() == s_parent;
}

//  In a child: connect c, say so, and wait for the start. False if either
//  failed.
static bool
s_child_start(s_conn_t *c)
{
    c->fd = s_connect();
    c->have = c->at = 0;
    atomic_fetch_add(&s_sh->ready, 1);
    return s_wait_go() && c->fd >= 0;
}

//  Producer process `idx`: puts `jobs` jobs, s_pipeline in flight (one
//  round trip each when 1). lat[i] holds put i's send time until its
//  INSERTED comes, then its round trip.
static int
s_produce(int idx, int jobs)
{
    static s_conn_t c;
    if (!s_child_start(&c))
        return 1;
    int fd = c.fd;
    int64_t *lat = s_sh->lat_us + (size_t) idx * (size_t) jobs;
    char req[64 + S_BODY + 2], line[128];
    size_t len = s_put_req(req);
    int sent = 0, acked = 0;
    while (acked < jobs && s_in_time()) {
        while (sent < jobs && sent - acked < s_pipeline) {
            lat[sent] = bench_now_us();
            if (write(fd, req, len) != (ssize_t) len)
                goto out;
            sent++;
        }
        if (s_line(&c, line, sizeof line) || strncmp(line, "INSERTED", 8))
            break;
        lat[acked] = bench_now_us() - lat[acked];
        atomic_store(&s_sh->done[idx], ++acked);
    }
out:
    close(fd);
    return 0;
}

//  Consumer process: reserve then delete until every job put is deleted;
//  with --pipeline above 1, each delete goes out with the next reserve.
static int
s_consume(void)
{
    static s_conn_t c;
    if (!s_child_start(&c))
        return 1;
    int fd = c.fd;
    static const char rsv[] = "reserve-with-timeout 1\r\n";
    char line[128], del[64 + sizeof rsv];
    bool asked = false;  //  a reserve is out already (pipelined)
    while (atomic_load(&s_sh->deleted) < atomic_load(&s_sh->total) &&
           s_in_time()) {
        if (!asked && write(fd, rsv, sizeof rsv - 1) != sizeof rsv - 1)
            break;
        asked = false;
        if (s_line(&c, line, sizeof line))
            break;
        unsigned long long id;
        size_t bytes;
        if (sscanf(line, "RESERVED %llu %zu", &id, &bytes) != 2)
            continue;  //  TIMED_OUT: look again
        if (s_skip(&c, bytes + 2))
            break;
        int n = snprintf(del, sizeof del, "delete %llu\r\n", id);
        if (s_pipeline > 1 &&
            atomic_load(&s_sh->deleted) + 1 < atomic_load(&s_sh->total)) {
            memcpy(del + n, rsv, sizeof rsv - 1);
            n += (int) sizeof rsv - 1;
            asked = true;
        }
        if (write(fd, del, (size_t) n) != n || s_line(&c, line, sizeof line))
            break;
        if (strcmp(line, "DELETED") == 0) {
            long long now = bench_now_us();
            long long last = atomic_load(&s_sh->last_del_us);
            while (now > last && !atomic_compare_exchange_weak(
                                     &s_sh->last_del_us, &last, now))
                ;
            atomic_fetch_add(&s_sh->deleted, 1);
        }
    }
    close(fd);
    return 0;
}

//  Idle dispatch, measured the way jobq_latency measures jobq: the consumer
//  is a process of its own, already waiting in `reserve` when the producer
//  puts job i (its body starts with i); it notes in shared memory the
//  monotonic time it has read the job, then deletes it and asks for the
//  next. The producer waits until the consumer has asked, pauses 2 ms (the
//  server parks the consumer meanwhile), puts, reads INSERTED (the
//  acknowledgement), then looks for the consumer's note every 20 us. As in
//  jobq_latency: 50 jobs first that are not samples, and a job not read
//  within 500 ms is counted missed and skipped, ten of them end the run.
#define S_IDLE_WARMUP 50
#define S_IDLE_MISSES 10

typedef struct {
    atomic_int asked;          //  `reserve`s the consumer has sent
    atomic_int gone;           //  1 once the consumer has stopped
    volatile int64_t stamp[];  //  when the consumer read job i, 0 = not yet
} s_idle_t;

static void
s_idle_consumer(s_idle_t *st, int n)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    static s_conn_t cc;
    cc.fd = s_connect();
    struct timeval tv = {10, 0};
    if (cc.fd >= 0)
        setsockopt(cc.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char line[S_BODY + 16], del[64];
    static const char rsv[] = "reserve\r\n";
    while (cc.fd >= 0 && write(cc.fd, rsv, sizeof rsv - 1) == sizeof rsv - 1) {
        atomic_fetch_add(&st->asked, 1);
        unsigned long long id;
        size_t bytes;
        int i;
        if (s_line(&cc, line, sizeof line) ||
            sscanf(line, "RESERVED %llu %zu", &id, &bytes) != 2)
            break;
        int64_t t = bench_now_us();
        if (bytes != S_BODY || s_line(&cc, line, sizeof line) ||
            sscanf(line, "%d", &i) != 1)
            break;
        if (i >= 0 && i < n)
            st->stamp[i] = t;
        int k = snprintf(del, sizeof del, "delete %llu\r\n", id);
        if (write(cc.fd, del, (size_t) k) != k ||
            s_line(&cc, line, sizeof line))
            break;
    }
    atomic_store(&st->gone, 1);
    _exit(0);
}

//  Wait (20 us steps, until_us at most) for the consumer to have sent more
//  than puts `reserve`s. False if it did not.
static bool
s_idle_asked(s_idle_t *st, int puts, int64_t until_us)
{
    while (atomic_load(&st->asked) <= puts && !atomic_load(&st->gone) &&
           bench_now_us() < until_us)
        bench_sleep_us(20);
    return atomic_load(&st->asked) > puts;
}

static int
s_idle(int n, const char *mode)
{
    int total = n + S_IDLE_WARMUP + S_IDLE_MISSES;  //  puts at most
    size_t size = sizeof(s_idle_t) + (size_t) total * sizeof(int64_t);
    s_idle_t *st = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED)
        return 1;
    pid_t kid = fork();
    if (kid < 0) {
        fprintf(stderr, "beanstalk_bench: fork: %s\n", strerror(errno));
        munmap(st, size);
        return 1;
    }
    if (kid == 0)
        s_idle_consumer(st, total);
    static s_conn_t pc;
    pc.fd = s_connect();
    int64_t *lat = calloc((size_t) n, sizeof *lat);
    int64_t *ack = calloc((size_t) n, sizeof *ack);
    char req[64 + S_BODY + 2], line[128];
    size_t len = s_put_req(req);
    char *body = req + len - S_BODY - 2;
    int done = 0, missed = 0, puts = 0;
    while (pc.fd >= 0 && lat && ack && done < n && missed < S_IDLE_MISSES &&
           puts < total && bench_now_us() - s_start < S_LIMIT_US) {
        if (!s_idle_asked(st, puts, bench_now_us() + 10000000))
            break;
        bench_sleep_us(2000);
        int i = puts++;
        body[snprintf(body, 16, "%010d", i)] = 'x';  //  its number first
        int64_t t0 = bench_now_us();
        if (write(pc.fd, req, len) != (ssize_t) len ||
            s_line(&pc, line, sizeof line) || strncmp(line, "INSERTED", 8))
            break;
        int64_t a = bench_now_us() - t0;
        while (st->stamp[i] == 0 && bench_now_us() - t0 < 500000)
            bench_sleep_us(20);
        if (i < S_IDLE_WARMUP)
            continue;
        if (st->stamp[i] == 0) {
            missed++;  //  not read within 500 ms: counted, not a sample
            continue;
        }
        ack[done] = a;
        lat[done++] = st->stamp[i] - t0;
    }
    //  Stop the consumer once it waits again (its delete answered), so that
    //  it leaves no reply unread and beanstalkd sees a clean close.
    s_idle_asked(st, puts, bench_now_us() + 1000000);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    if (done == 0) {
        fprintf(stderr, "beanstalk_bench: no job was seen dispatched\n");
        free(lat);
        free(ack);
        munmap(st, size);
        return 1;
    }
    printf("beanstalkd %s idle: jobs=%d missed=%d\n", mode, done, missed);
    char label[128];
    snprintf(label, sizeof label, "beanstalkd,%s,enqueue-ack", mode);
    bench_print_row(label, 0, ack, done);
    snprintf(label, sizeof label, "beanstalkd,%s,idle-dispatch", mode);
    bench_print_row(label, 0, lat, done);
    free(lat);
    free(ack);
    munmap(st, size);
    return done == n && missed == 0 ? 0 : 1;
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
    size_t len = s_put_req(req);
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
s_wait_ready(int n)
{
    int64_t t0 = bench_now_us();
    while (bench_now_us() - t0 < S_LIMIT_US) {
        static s_conn_t c;
        c.have = c.at = 0;
        c.fd = s_connect();
        if (c.fd < 0) {
            bench_sleep_us(2000);
            continue;
        }
        static const char st[] = "stats\r\n", key[] = "current-jobs-ready: ";
        char line[256];
        long ready = -1;
        if (write(c.fd, st, sizeof st - 1) == sizeof st - 1 &&
            !s_line(&c, line, sizeof line) && strncmp(line, "OK ", 3) == 0)
            while (ready < 0 && !s_line(&c, line, sizeof line))
                if (strncmp(line, key, sizeof key - 1) == 0)
                    ready = strtol(line + sizeof key - 1, NULL, 10);
        close(c.fd);
        if (ready >= n) {
            printf("%lld\n", (long long) ((bench_now_us() - t0) / 1000));
            return 0;
        }
        bench_sleep_us(2000);
    }
    return 1;
}

int
main(int argc, char **argv)
{
    int producers = 1, consumers = 1, idle = 0;
    const char *mode = "default";
    s_port = argc < 2 ? -1 : (int) bench_arg(argv[1], 1, 65535);
    s_total = 10000;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *o = argv[i];
        int v = (int) bench_arg(argv[i + 1], 0, 10000000);
        if (strcmp(o, "--mode") == 0)
            mode = argv[i + 1];
        else if (strcmp(o, "--producers") == 0)
            producers = v;
        else if (strcmp(o, "--workers") == 0)
            consumers = v;
        else if (strcmp(o, "--jobs") == 0)
            s_total = v;
        else if (strcmp(o, "--idle") == 0)
            idle = v;
        else if (strcmp(o, "--pipeline") == 0)
            s_pipeline = v;
        else if (strcmp(o, "--fill") == 0 && v > 0 && s_port > 0)
            return s_put_many(v);
        else if (strcmp(o, "--wait-ready") == 0 && v > 0 && s_port > 0)
            return s_wait_ready(v);
        else
            s_port = -1;  //  unknown: the usage below
    }
    if (s_port > 0 && idle > 0) {
        s_start = bench_now_us();
        return s_idle(idle, mode);
    }
    if (s_port < 0 || idle < 0 || producers < 1 || consumers < 1 ||
        producers > S_MAX_PROC || consumers > S_MAX_PROC ||
        s_total < producers || s_pipeline < 1 || s_pipeline > 1000) {
        fprintf(stderr,
                "usage: beanstalk_bench PORT --producers P --workers C "
                "--jobs N --mode M [--pipeline 1..1000]\n"
                "       beanstalk_bench PORT --idle N --mode M\n"
                "       beanstalk_bench PORT --fill N | --wait-ready N\n");
        return 2;
    }
    s_total -= s_total % producers;
    int per = s_total / producers, kids = producers + consumers;
    size_t size = sizeof *s_sh + (size_t) s_total * sizeof(int64_t);
    s_sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    pid_t *pid = calloc((size_t) kids, sizeof *pid);
    int go[2];
    if (s_sh == MAP_FAILED || !pid || pipe(go) != 0) {
        fprintf(stderr, "beanstalk_bench: no shared memory or pipe\n");
        return 1;
    }
    atomic_store(&s_sh->total, s_total);
    //  SIGCHLD stays blocked in the parent, which waits for it with
    //  sigtimedwait; the children get the old mask back.
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    s_parent = getpid();
    int forked = 0;
    for (; forked < kids; forked++) {
        pid[forked] = fork();
        if (pid[forked] < 0)
            break;
        if (pid[forked] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != s_parent)
                _exit(1);
            sigprocmask(SIG_SETMASK, &old, NULL);
            signal(SIGPIPE, SIG_IGN);
            close(go[1]);
            s_go_fd = go[0];
            _exit(forked < consumers ? s_consume()
                                     : s_produce(forked - consumers, per));
        }
    }
    close(go[0]);
    //  Every child connects, then waits (10 s at most) for the start.
    int64_t t0 = bench_now_us();
    while (forked == kids && atomic_load(&s_sh->ready) < kids &&
           bench_now_us() - t0 < 10000000)
        bench_sleep_us(1000);
    s_start = bench_now_us();
    atomic_store(&s_sh->start_us, s_start);
    atomic_store(&s_sh->go, forked == kids ? 1 : 0);
    close(go[1]);  //  the start: every child's read returns
    //  Reap. Once the producers are gone, the consumers stop at what was
    //  put; once that is deleted, the ones still waiting in a reserve are
    //  told to stop. At the limit, every child left is killed.
    int live = forked, prod_left = forked - consumers, put = 0;
    bool stopped = false;
    while (live > 0) {
        int status;
        pid_t w;
        while ((w = waitpid(-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < forked; i++)
                if (pid[i] == w) {
                    pid[i] = 0;
                    live--;
                    if (i >= consumers && --prod_left == 0) {
                        int sum = 0;
                        for (int j = 0; j < producers; j++)
                            sum += atomic_load(&s_sh->done[j]);
                        atomic_store(&s_sh->total, sum);
                    }
                }
        if (live == 0)
            break;
        if (prod_left <= 0 && !stopped &&
            atomic_load(&s_sh->deleted) >= atomic_load(&s_sh->total)) {
            for (int i = 0; i < consumers && i < forked; i++)
                if (pid[i] > 0)
                    kill(pid[i], SIGTERM);
            stopped = true;
        }
        int64_t left = s_start + S_LIMIT_US + S_GRACE_US - bench_now_us();
        if (left <= 0 || forked < kids) {
            for (int i = 0; i < forked; i++)
                if (pid[i] > 0)
                    kill(pid[i], SIGKILL);
            for (int i = 0; i < forked; i++)
                if (pid[i] > 0)
                    waitpid(pid[i], &status, 0);
            break;
        }
        if (left > 1000000)
            left = 1000000;
        struct timespec ts = {(time_t) (left / 1000000),
                              (long) (left % 1000000) * 1000};
        sigtimedwait(&chld, NULL, &ts);
    }
    if (forked < kids) {
        fprintf(stderr, "beanstalk_bench: fork failed\n");
        return 1;
    }
    for (int i = 0; i < producers; i++)
        put += atomic_load(&s_sh->done[i]);
    int deleted = atomic_load(&s_sh->deleted);
    int64_t end = atomic_load(&s_sh->last_del_us);
    if (end <= s_start)
        end = bench_now_us();
    int64_t *all = calloc((size_t) put + 1, sizeof(int64_t));
    int k = 0;
    for (int i = 0; i < producers; i++)
        for (int j = 0; j < atomic_load(&s_sh->done[i]); j++)
            all[k++] = s_sh->lat_us[(size_t) i * (size_t) per + (size_t) j];
    double rate = (double) deleted * 1e6 / (double) (end - s_start);
    printf("beanstalkd %s cycle: put=%d deleted=%d (put latency us)\n", mode,
           put, deleted);
    char label[128];
    snprintf(label, sizeof label, "beanstalkd,%s,cycle-%dx%d", mode, producers,
             consumers);
    if (k > 0)
        bench_print_row(label, rate, all, k);
    free(all);
    return deleted == put && put > 0 ? 0 : 1;
}
