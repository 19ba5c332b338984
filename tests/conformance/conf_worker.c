/*  conf_worker: the conformance processors (tests/conformance/README.md)
    on libjobq's worker runtime, as every client language has them.
    usage: conf_worker BROKER NAME

      conf.echo      output {"echo": input}
      conf.fail      input {times, message, permanent}: fails its first
                     `times` attempts with `message` (for good if
                     `permanent`), then output {"attempt": n}
      conf.progress  input {steps, ms}: `steps` reports "step i of N" over
                     `ms`, then output {"steps": N}; stops when cancelled
      conf.hang      input {ms}: waits `ms` (stops when cancelled), then
                     output {"slept_ms": ms}
*/
#include "jobq/jobq_worker.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static int
s_echo(jobq_job_t *job, void *state)
{
    (void) state;
    jobq_bytes_t in = jobq_job_input(job);
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 1);
    jobq_mp_write_cstr(out, "echo");
    if (in.len)
        jobq_mp_write_raw(out, in.ptr, in.len);
    else
        jobq_mp_write_map(out, 0);
    return JOBQ_OK;
}

static int
s_fail(jobq_job_t *job, void *state)
{
    (void) state;
    int64_t times = 0;
    bool permanent = false;
    jobq_str_t msg = {"failed", 6};
    jobq_job_input_int(job, "times", &times);
    jobq_job_input_bool(job, "permanent", &permanent);
    jobq_job_input_str(job, "message", &msg);
    if (permanent || (int64_t) jobq_job_attempt(job) <= times)
        return jobq_job_fail(job, permanent, "%.*s", (int) msg.len, msg.ptr);
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 1);
    jobq_mp_write_cstr(out, "attempt");
    jobq_mp_write_uint(out, jobq_job_attempt(job));
    return JOBQ_OK;
}

static int
s_progress(jobq_job_t *job, void *state)
{
    (void) state;
    int64_t steps = 1, ms = 0;
    jobq_job_input_int(job, "steps", &steps);
    jobq_job_input_int(job, "ms", &ms);
    if (steps < 1 || steps > 1000 || ms < 0 || ms > 600000)
        return jobq_job_fail(job, true, "steps 1..1000, ms 0..600000");
    for (int64_t i = 1; i <= steps; i++) {
        if (jobq_job_sleep(job, (uint64_t) (ms / steps)) != JOBQ_OK)
            return jobq_job_fail(job, false, "cancelled");
        jobq_job_progress(job, (unsigned) (100 * i / steps),
                          "step %lld of %lld", (long long) i,
                          (long long) steps);
    }
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 1);
    jobq_mp_write_cstr(out, "steps");
    jobq_mp_write_int(out, steps);
    return JOBQ_OK;
}

static int
s_hang(jobq_job_t *job, void *state)
{
    (void) state;
    int64_t ms = 0;
    jobq_job_input_int(job, "ms", &ms);
    if (ms < 0 || ms > 600000)
        return jobq_job_fail(job, true, "ms 0..600000");
    if (jobq_job_sleep(job, (uint64_t) ms) != JOBQ_OK)
        return jobq_job_fail(job, false, "cancelled");
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 1);
    jobq_mp_write_cstr(out, "slept_ms");
    jobq_mp_write_int(out, ms);
    return JOBQ_OK;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: conf_worker BROKER NAME\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    jobq_registry_t *reg = jobq_registry_new();
    jobq_registry_add(reg, "conf.echo", s_echo, NULL);
    jobq_registry_add(reg, "conf.fail", s_fail, NULL);
    jobq_registry_add(reg, "conf.progress", s_progress, NULL);
    jobq_registry_add(reg, "conf.hang", s_hang, NULL);
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    cfg.broker = argv[1];
    cfg.name = argv[2];
    cfg.concurrency = 4;
    cfg.broker_timeout_ms = 2000;
    cfg.grace_ms = 1000;
    jobq_worker_t *w = jobq_worker_new(&cfg, reg);
    int rc = w ? jobq_worker_run(w, &s_stop) : JOBQ_ENOMEM;
    jobq_worker_destroy(&w);
    jobq_registry_destroy(&reg);
    return rc == JOBQ_OK ? 0 : 1;
}
