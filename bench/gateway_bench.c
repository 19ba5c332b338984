/*  gateway_bench: the job cycle through jobq-gateway, as a web app sees
    it. Starts jobq-broker (bench.h), one jobq-worker with --concurrency W
    and jobq-gateway; P threads POST noop jobs to /v1/jobs over keep-alive
    connections (libcurl, one each) until N are in, and it waits until all
    have completed. Comparable with jobq_bench's plain `sync` rows: the
    same broker, worker and job, with HTTP and JSON in between.

    usage: gateway_bench BIN_DIR [--producers P] [--workers W] [--jobs N]
    Bounded: N jobs and 120 s. The last line is CSV:
    system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us, */
#include "jobq/jobq_client.h"
#include "bench.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

typedef struct {
    const char *url;  //  POST /v1/jobs
    int jobs;         //  to enqueue
    int64_t *lat_us;  //  one per job
    int done;         //  answered 201
    int errors;       //  anything else
} s_producer_t;

static size_t
s_discard(char *p, size_t size, size_t n, void *arg)
{
    (void) p;
    (void) arg;
    return size * n;
}

static void *
s_produce(void *arg)
{
    s_producer_t *p = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    static const char body[] =
        "{\"type\":\"noop\",\"shopId\":\"bench\",\"input\":{\"n\":1}}";
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) sizeof body - 1);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    int64_t give_up = bench_now_us() + 120 * 1000000LL;
    for (int i = 0; i < p->jobs && bench_now_us() < give_up; i++) {
        int64_t t0 = bench_now_us();
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 201)
            p->lat_us[p->done++] = bench_now_us() - t0;
        else
            p->errors++;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

int
main(int argc, char **argv)
{
    int producers = 16, workers = 16, jobs = 8000, bad = argc < 2 || argc % 2;
    for (int i = 2; !bad && i + 1 < argc; i += 2) {
        long v = bench_arg(argv[i + 1], 1, 1000000);
        if (strcmp(argv[i], "--producers") == 0 && v > 0 && v <= 256)
            producers = (int) v;
        else if (strcmp(argv[i], "--workers") == 0 && v > 0 && v <= 1024)
            workers = (int) v;
        else if (strcmp(argv[i], "--jobs") == 0 && v > 0)
            jobs = (int) v;
        else
            bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: gateway_bench BIN_DIR [--producers P] "
                        "[--workers W] [--jobs N]\n");
        return 2;
    }
    bench_broker_t b;
    if (bench_broker_start(&b, argv[1]) != 0)
        return 1;
    char wbin[600], gbin[600], conc[16], listen[64], url[128];
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    snprintf(gbin, sizeof gbin, "%s/jobq-gateway", argv[1]);
    snprintf(conc, sizeof conc, "%d", workers);
    //  A port that was free: the broker's client port plus 3 would do
    //  only by chance, so ask the system.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *) &a, al) != 0 ||
        getsockname(fd, (struct sockaddr *) &a, &al) != 0) {
        perror("gateway_bench: no port");
        bench_broker_stop(&b);
        return 1;
    }
    close(fd);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ntohs(a.sin_port));
    snprintf(url, sizeof url, "http://%s/v1/jobs", listen);
    char *wargv[] = {wbin,   "--broker",      b.workers, "--types",
                     "noop", "--concurrency", conc,      NULL};
    char *gargv[] = {gbin,      "--listen", listen,   "--broker",
                     b.clients, "--events", b.events, NULL};
    pid_t worker = bench_spawn(wargv), gateway = bench_spawn(gargv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.timeout_ms = 500;
    jobq_client_t *c = jobq_client_new(&cfg);
    //  Up: the broker answers, and so does the gateway.
    for (int i = 0; i < 40; i++) {
        CURL *h = curl_easy_init();
        char ready[160];
        snprintf(ready, sizeof ready, "http://%s/readyz", listen);
        curl_easy_setopt(h, CURLOPT_URL, ready);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        long status = 0;
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (status == 200)
            break;
        bench_sleep_us(250000);
    }
    bench_sleep_us(300000);  //  the worker registers
    s_producer_t *p = calloc((size_t) producers, sizeof *p);
    pthread_t *t = calloc((size_t) producers, sizeof *t);
    int64_t start = bench_now_us();
    for (int i = 0; i < producers; i++) {
        p[i].url = url;
        p[i].jobs = jobs / producers;
        p[i].lat_us = calloc((size_t) p[i].jobs + 1, sizeof(int64_t));
        pthread_create(&t[i], NULL, s_produce, &p[i]);
    }
    int total = 0, errors = 0;
    for (int i = 0; i < producers; i++) {
        pthread_join(t[i], NULL);
        total += p[i].done;
        errors += p[i].errors;
    }
    while (bench_completed(c) < (uint64_t) total &&
           bench_now_us() - start < 120 * 1000000LL)
        bench_sleep_us(5000);
    int64_t end = bench_now_us();
    uint64_t completed = bench_completed(c);
    int64_t *all = calloc((size_t) total + 1, sizeof(int64_t));
    int k = 0;
    for (int i = 0; i < producers; i++)
        for (int j = 0; j < p[i].done; j++)
            all[k++] = p[i].lat_us[j];
    printf("gateway cycle: jobs=%d completed=%llu errors=%d (POST latency "
           "us)\n",
           total, (unsigned long long) completed, errors);
    char label[64];
    snprintf(label, sizeof label, "jobq,http,cycle-%dx%d", producers, workers);
    if (k > 0)
        bench_print_row(
            label, (double) completed * 1e6 / (double) (end - start), all, k);
    jobq_client_destroy(&c);
    kill(gateway, SIGTERM);
    waitpid(gateway, NULL, 0);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    bench_broker_stop(&b);
    curl_global_cleanup();
    return completed == (uint64_t) total && k > 0 && errors == 0 ? 0 : 1;
}
