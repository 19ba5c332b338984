/*  chaos_worker: a worker built on libjobq as a user would build one, with
    one processor, "chaos", that appends "<id> <attempt>\n" to the file named
    by its input's "log" and sleeps "ms". The chaos test reads that file to
    count executions. Usage: chaos_worker BROKER NAME

    It installs its own SIGINT and SIGTERM handlers and nothing else, and
    links libjobq alone: that the library leaves those handlers in place is
    what lets SIGTERM stop it. */
#include "jobq/jobq_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static int
s_chaos(jobq_job_t *job, void *state)
{
    (void) state;
    jobq_str_t log;
    int64_t ms = 0;
    if (jobq_job_input_str(job, "log", &log) != JOBQ_OK || log.len > 400)
        return jobq_job_fail(job, true, "input 'log' missing");
    jobq_job_input_int(job, "ms", &ms);
    char path[512], line[64];
    snprintf(path, sizeof path, "%.*s", (int) log.len, log.ptr);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        return jobq_job_fail(job, false, "cannot open log");
    int n = snprintf(line, sizeof line, "%s %u\n", jobq_job_id(job),
                     jobq_job_attempt(job));
    ssize_t wrote = write(fd, line, (size_t) n);
    close(fd);
    if (wrote != n)
        return jobq_job_fail(job, false, "cannot write log");
    if (ms > 0 && jobq_job_sleep(job, (uint64_t) ms) != JOBQ_OK)
        return jobq_job_fail(job, false, "cancelled");
    return JOBQ_OK;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: chaos_worker BROKER NAME\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    jobq_registry_t *reg = jobq_registry_new();
    jobq_registry_add(reg, "chaos", s_chaos, NULL);
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    cfg.broker = argv[1];
    cfg.name = argv[2];
    cfg.concurrency = 2;
    cfg.broker_timeout_ms = 2000;
    cfg.grace_ms = 1000;
    jobq_worker_t *w = jobq_worker_new(&cfg, reg);
    int rc = jobq_worker_run(w, &s_stop);
    jobq_worker_destroy(&w);
    jobq_registry_destroy(&reg);
    return rc == JOBQ_OK ? 0 : 1;
}
