/*  sse_bench: event streams fanned out by jobq-gateway. Starts jobq-broker
    (bench.h), one jobq-worker and jobq-gateway; enqueues J sleep jobs that
    report progress P times a second for S seconds, opens N event streams
    (GET /v1/jobs/{id}/events, N/J per job) on one epoll loop, and takes
    each `id:` line's arrival time. The bench also subscribes to the
    broker's event socket itself: an event's delay is the time from when
    that direct subscriber saw it to when a stream's bytes held it.
    Memory per stream: the gateway's anonymous resident memory with the
    streams open, less before, over N.

    usage: sse_bench BIN_DIR [--streams N] [--jobs J] [--seconds S]
                             [--rate P] [--stagger 0|1]
    --stagger 1 (the default) starts the jobs spread over one report
    period, so that their reports spread as live jobs' do; 0 starts them
    together, so that every job reports in the same instant (the worst
    case: N events at once).
    Bounded: S + 60 s in all. The last line is CSV:
    system,mode,scenario,events_per_s,p50_us,p99_us,p999_us,bytes_per_stream
    and a line before it says the streams held, the events, the drops and
    the memory. */
#include "jobq/jobq_client.h"
#include "jobq/jobq_mp.h"
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <zmq.h>

#define S_MAX_JOBS     1000
#define S_MAX_VERSIONS 4096
#define S_MAX_SAMPLES  (8 << 20)

typedef struct {
    int fd;
    int job;         //  index into the jobs
    char buf[4096];  //  a partial line
    size_t len;
    bool open;       //  its first event came
    bool ended;      //  the server closed it
    uint32_t last;   //  the last version it got
    int64_t end_at;  //  when it ended
} s_stream_t;

static char s_ids[S_MAX_JOBS][JOBQ_ID_LEN + 1];
static int64_t (*s_seen)[S_MAX_VERSIONS];  //  [job][version]: first seen
static int s_njobs;

static int
s_job_index(const char *id, size_t len)
{
    for (int i = 0; i < s_njobs; i++)
        if (len == JOBQ_ID_LEN && memcmp(s_ids[i], id, len) == 0)
            return i;
    return -1;
}

//  The direct subscriber: note when each (job, version) was first seen.
static void
s_drain_sub(void *sub)
{
    for (;;) {
        zmq_msg_t f[3];
        int n = 0, more = 1;
        while (more && n < 3) {
            zmq_msg_init(&f[n]);
            if (zmq_msg_recv(&f[n], sub, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&f[n]);
                return;
            }
            more = zmq_msg_more(&f[n]);
            n++;
        }
        int64_t now = bench_now_us();
        if (n == 3) {
            jobq_bytes_t body = {zmq_msg_data(&f[2]), zmq_msg_size(&f[2])}, v;
            jobq_mp_reader_t r;
            jobq_str_t id;
            uint64_t version;
            if (jobq_mp_map_find(body, "id", &v) == JOBQ_OK) {
                jobq_mp_reader_init(&r, v.ptr, v.len);
                int j = jobq_mp_read_str(&r, &id) == JOBQ_OK
                            ? s_job_index(id.ptr, id.len)
                            : -1;
                if (j >= 0 &&
                    jobq_mp_map_find(body, "version", &v) == JOBQ_OK) {
                    jobq_mp_reader_init(&r, v.ptr, v.len);
                    if (jobq_mp_read_uint(&r, &version) == JOBQ_OK &&
                        version < S_MAX_VERSIONS && !s_seen[j][version])
                        s_seen[j][version] = now;
                }
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}

typedef struct {
    int job;
    uint32_t version;
    int64_t at;
} s_sample_t;

static s_sample_t *s_samples;
static size_t s_nsamples;

//  Read what came on s; one sample per `id:` line.
static void
s_read_stream(s_stream_t *s)
{
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            s->ended = true;
            return;
        }
        if (n < 0)
            return;
        int64_t now = bench_now_us();
        s->len += (size_t) n;
        s->buf[s->len] = '\0';
        char *line = s->buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            if (strncmp(line, "id: ", 4) == 0) {
                s->open = true;
                s->last = (uint32_t) atol(line + 4);
                if (s_nsamples < S_MAX_SAMPLES)
                    s_samples[s_nsamples++] =
                        (s_sample_t){s->job, (uint32_t) atol(line + 4), now};
            }
            line = nl + 1;
        }
        s->len = (size_t) (s->buf + s->len - line);
        memmove(s->buf, line, s->len);
        if (s->len == sizeof s->buf - 1)
            s->len = 0;  //  a line this long is not one we want
    }
}

static long
s_rss_anon_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "RssAnon:", 8) == 0)
            kb = atol(line + 8);
    if (f)
        fclose(f);
    return kb;
}

int
main(int argc, char **argv)
{
    int streams = 1000, seconds = 20, rate = 2, stagger = 1,
        bad = argc < 2 || argc % 2;
    s_njobs = 100;
    for (int i = 2; !bad && i + 1 < argc; i += 2) {
        long v = bench_arg(argv[i + 1], 0, 100000);
        if (strcmp(argv[i], "--streams") == 0 && v > 0 && v <= 12000)
            streams = (int) v;
        else if (strcmp(argv[i], "--jobs") == 0 && v > 0 && v <= S_MAX_JOBS)
            s_njobs = (int) v;
        else if (strcmp(argv[i], "--seconds") == 0 && v > 0 && v <= 600)
            seconds = (int) v;
        else if (strcmp(argv[i], "--rate") == 0 && v > 0 && v <= 100)
            rate = (int) v;
        else if (strcmp(argv[i], "--stagger") == 0 && v >= 0 && v <= 1)
            stagger = (int) v;
        else
            bad = 1;
    }
    if (bad || seconds * rate + 8 > S_MAX_VERSIONS) {
        fprintf(stderr, "usage: sse_bench BIN_DIR [--streams N] [--jobs J] "
                        "[--seconds S] [--rate P] (S x P < 4,000)\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t) streams + 200) {
        fprintf(stderr,
                "sse_bench: %d streams need %d descriptors; the "
                "limit is %llu\n",
                streams, streams + 200, (unsigned long long) rl.rlim_cur);
        return 1;
    }
    s_seen = calloc(S_MAX_JOBS, sizeof *s_seen);
    s_samples = calloc(S_MAX_SAMPLES, sizeof *s_samples);
    s_stream_t *st = calloc((size_t) streams, sizeof *st);
    if (!s_seen || !s_samples || !st)
        return 1;
    bench_broker_t b;
    if (bench_broker_start(&b, argv[1]) != 0)
        return 1;
    char wbin[600], gbin[600], conc[16], listen[64];
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    snprintf(gbin, sizeof gbin, "%s/jobq-gateway", argv[1]);
    snprintf(conc, sizeof conc, "%d", s_njobs);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ga = {.sin_family = AF_INET};
    ga.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof ga;
    if (fd < 0 || bind(fd, (struct sockaddr *) &ga, al) != 0 ||
        getsockname(fd, (struct sockaddr *) &ga, &al) != 0) {
        perror("sse_bench: no port");
        bench_broker_stop(&b);
        return 1;
    }
    close(fd);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ntohs(ga.sin_port));
    char *wargv[] = {wbin,    "--broker",      b.workers, "--types",
                     "sleep", "--concurrency", conc,      NULL};
    char *gargv[] = {gbin,      "--listen", listen,   "--broker",
                     b.clients, "--events", b.events, NULL};
    pid_t worker = bench_spawn(wargv), gateway = bench_spawn(gargv);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int hwm = 1000000;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(sub, b.events);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.timeout_ms = 2000;
    jobq_client_t *c = jobq_client_new(&cfg);
    bench_sleep_us(1500000);  //  the worker registers, the gateway listens
    long rss0 = s_rss_anon_kb(gateway);

    //  The jobs: each reports rate times a second for seconds.
    int ok = 1;
    for (int j = 0; j < s_njobs && ok; j++) {
        jobq_mp_writer_t w;
        jobq_mp_writer_init(&w, 256);
        jobq_mp_write_map(&w, 2);
        jobq_mp_write_cstr(&w, "ms");
        jobq_mp_write_uint(&w, (uint64_t) seconds * 1000);
        jobq_mp_write_cstr(&w, "steps");
        jobq_mp_write_uint(&w, (uint64_t) seconds * rate);
        //  Staggered: the jobs' reports spread evenly over each period, as
        //  jobs started at different times do; without, all report at once.
        jobq_enqueue_t e = {
            .type = "sleep",
            .shop_id = "bench",
            .input = {w.data, w.len},
            .delay_ms = stagger ? (uint64_t) (j * 1000 / rate / s_njobs) : 0};
        ok = jobq_client_enqueue(c, &e, s_ids[j], NULL) == JOBQ_OK;
        jobq_mp_writer_fini(&w);
    }
    if (!ok)
        fprintf(stderr, "sse_bench: enqueue failed: %s\n",
                jobq_client_last_error(c));

    //  The streams, opened all at once on one epoll.
    int ep = epoll_create1(0);
    int64_t t_open = bench_now_us();
    for (int i = 0; i < streams && ok; i++) {
        s_stream_t *s = &st[i];
        s->job = i % s_njobs;
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (s->fd < 0 || (connect(s->fd, (struct sockaddr *) &ga, sizeof ga) &&
                          errno != EINPROGRESS)) {
            perror("sse_bench: connect");
            ok = 0;
            break;
        }
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t) i};
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    }
    int64_t deadline = bench_now_us() + (int64_t) (seconds + 60) * 1000000;
    int nopen = 0, nended = 0;
    long rss1 = 0;
    int64_t t_all_open = 0;
    struct epoll_event evs[512];
    while (ok && bench_now_us() < deadline && nended < streams) {
        //  The memory with every stream open, a second after they are.
        if (t_all_open && !rss1 && bench_now_us() > t_all_open + 1000000)
            rss1 = s_rss_anon_kb(gateway);
        s_drain_sub(sub);
        int n = epoll_wait(ep, evs, 512, 5);
        for (int k = 0; k < n; k++) {
            s_stream_t *s = &st[evs[k].data.u32];
            if (evs[k].events & EPOLLOUT) {
                char req[160];
                int rl2 = snprintf(req, sizeof req,
                                   "GET /v1/jobs/%s/events HTTP/1.1\r\n"
                                   "Host: %s\r\nConnection: close\r\n\r\n",
                                   s_ids[s->job], listen);
                if (write(s->fd, req, (size_t) rl2) != rl2) {
                    s->ended = true;
                } else {
                    struct epoll_event ev = {.events = EPOLLIN,
                                             .data.u32 = evs[k].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                }
            } else {
                bool was_open = s->open;
                s_read_stream(s);
                if (!was_open && s->open && ++nopen == streams)
                    t_all_open = bench_now_us();
            }
            if (s->ended) {
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                close(s->fd);
                s->fd = -1;
                s->ended = false;
                s->end_at = bench_now_us();
                nended++;
            }
        }
    }
    s_drain_sub(sub);
    int64_t t_end = bench_now_us();
    int late = 0;
    for (int i = 0; i < streams; i++) {
        if (st[i].fd > 0 || st[i].end_at > t_open + (seconds + 5) * 1000000LL) {
            if (late++ < 5)
                fprintf(stderr,
                        "sse_bench: stream %d (job %s) ended late or not at "
                        "all: last version %u, at %.1f s\n",
                        i, s_ids[st[i].job], st[i].last,
                        st[i].end_at ? (double) (st[i].end_at - t_open) / 1e6
                                     : -1.0);
        }
    }
    if (late)
        fprintf(stderr, "sse_bench: %d streams ended late\n", late);
    //  Every stream must end with its job's last version.
    int short_ended = 0;
    for (int i = 0; i < streams; i++) {
        uint32_t top = 0;
        for (uint32_t v = 0; v < S_MAX_VERSIONS; v++)
            if (s_seen[st[i].job][v])
                top = v;
        if (st[i].last != top && short_ended++ < 5)
            fprintf(stderr, "sse_bench: stream %d ended at version %u of %u\n",
                    i, st[i].last, top);
    }
    if (short_ended)
        fprintf(stderr, "sse_bench: %d streams missed their job's end\n",
                short_ended);
    //  Delays: only changes (not each stream's first event, the job as it
    //  was when the stream opened).
    int64_t *d = calloc(s_nsamples + 1, sizeof *d);
    size_t nd = 0, unmatched = 0;
    int64_t first = 0, last = 0;
    for (size_t i = 0; i < s_nsamples; i++) {
        s_sample_t *x = &s_samples[i];
        int64_t at =
            x->version < S_MAX_VERSIONS ? s_seen[x->job][x->version] : 0;
        if (!at || at < t_all_open || !t_all_open) {
            unmatched += !at;
            continue;
        }
        d[nd++] = x->at > at ? x->at - at : 0;
        if (getenv("SSE_BENCH_TRACE")) {  //  delay by second, for a person
            static int64_t worst[600];
            int sec = (int) ((x->at - t_open) / 1000000);
            if (sec >= 0 && sec < 600 && d[nd - 1] > worst[sec]) {
                worst[sec] = d[nd - 1];
                fprintf(stderr, "t=%ds worst so far %lld us\n", sec,
                        (long long) worst[sec]);
            }
        }
        if (!first || x->at < first)
            first = x->at;
        if (x->at > last)
            last = x->at;
    }
    printf("sse fan-out: streams=%d held=%d ended=%d jobs=%d events=%zu "
           "(delays %zu, unmatched %zu) open_in_ms=%lld gateway_rss_kb "
           "%ld->%ld per_stream_bytes=%ld in_s=%.1f\n",
           streams, nopen, nended, s_njobs, s_nsamples, nd, unmatched,
           t_all_open ? (long long) (t_all_open - t_open) / 1000 : -1LL, rss0,
           rss1, rss1 > rss0 ? (rss1 - rss0) * 1024 / streams : 0,
           (double) (t_end - t_open) / 1e6);
    char label[64];
    snprintf(label, sizeof label, "jobq,sse,fanout-%d%s", streams,
             stagger ? "" : "-together");
    //  The row: the CSV's last column (rss_kb elsewhere) holds the
    //  gateway's bytes per stream.
    if (nd > 0) {
        qsort(d, nd, sizeof *d, bench_cmp_i64);
        printf("%s,%.0f,%lld,%lld,%lld,%ld\n", label,
               last > first ? (double) nd * 1e6 / (double) (last - first) : 0,
               (long long) d[nd / 2], (long long) d[nd * 99 / 100],
               (long long) d[nd * 999 / 1000],
               rss1 > rss0 ? (rss1 - rss0) * 1024 / streams : 0);
    }
    for (int i = 0; i < streams; i++)
        if (st[i].fd > 0)
            close(st[i].fd);
    jobq_client_destroy(&c);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    kill(gateway, SIGTERM);
    waitpid(gateway, NULL, 0);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    bench_broker_stop(&b);
    return ok && nopen == streams && nd > 0 && !short_ended ? 0 : 1;
}
