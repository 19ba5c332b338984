/*  jobq_job.c: the job handle processors see (the jobq_job_* calls of
    jobq_worker.h), and how a slot turns what a processor left in it into
    the job's report. */
#include "jobq_job.h"
#include "jobq_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
jobq_job_id(const jobq_job_t *job)
{
    return job->id;
}

const char *
jobq_job_type(const jobq_job_t *job)
{
    return job->type;
}

const char *
jobq_job_shop(const jobq_job_t *job)
{
    return job->shop;
}

uint32_t
jobq_job_attempt(const jobq_job_t *job)
{
    return job->attempt;
}

jobq_bytes_t
jobq_job_input(const jobq_job_t *job)
{
    return job->input;
}

static int
s_field(const jobq_job_t *job, const char *key, jobq_mp_reader_t *r)
{
    jobq_bytes_t v;
    int rc = jobq_mp_map_find(job->input, key, &v);
    if (rc != JOBQ_OK)
        return rc == JOBQ_ENOTFOUND ? rc : JOBQ_EINVAL;
    jobq_mp_reader_init(r, v.ptr, v.len);
    if (jobq_mp_peek(r) == JOBQ_MP_NIL)
        return JOBQ_ENOTFOUND;
    return JOBQ_OK;
}

int
jobq_job_input_str(const jobq_job_t *job, const char *key, jobq_str_t *out)
{
    jobq_mp_reader_t r;
    int rc = s_field(job, key, &r);
    if (rc != JOBQ_OK)
        return rc;
    return jobq_mp_read_str(&r, out) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
}

int
jobq_job_input_int(const jobq_job_t *job, const char *key, int64_t *out)
{
    jobq_mp_reader_t r;
    int rc = s_field(job, key, &r);
    if (rc != JOBQ_OK)
        return rc;
    return jobq_mp_read_int(&r, out) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
}

int
jobq_job_input_bool(const jobq_job_t *job, const char *key, bool *out)
{
    jobq_mp_reader_t r;
    int rc = s_field(job, key, &r);
    if (rc != JOBQ_OK)
        return rc;
    return jobq_mp_read_bool(&r, out) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
}

bool
jobq_job_cancelled(jobq_job_t *job)
{
    return jobq_pool_slot_cancelled(job->slot);
}

int
jobq_job_sleep(jobq_job_t *job, uint64_t ms)
{
    if (ms == 0)  //  a timed wait would still sleep out the timer slack
        return jobq_job_cancelled(job) ? JOBQ_ECANCELLED : JOBQ_OK;
    if (ms > JOBQ_MAX_TIMEOUT_MS)
        ms = JOBQ_MAX_TIMEOUT_MS;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t) (ms / 1000);
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return jobq_pool_slot_wait(job->slot, &until) ? JOBQ_ECANCELLED : JOBQ_OK;
}

int
jobq_job_progress(jobq_job_t *job, unsigned percent, const char *fmt, ...)
{
    if (jobq_job_cancelled(job))
        return JOBQ_ECANCELLED;
    if (percent > 100)
        percent = 100;
    char msg[JOBQ_MAX_MESSAGE_LEN + 1] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if ((int) percent == job->last_pct && strcmp(msg, job->last_msg) == 0)
        return JOBQ_OK;
    size_t len = strlen(msg);
    jobq_pool_result_t r = {.kind = JOBQ_POOL_PROGRESS,
                            .id = job->idv,
                            .attempt = job->attempt,
                            .percent = (uint8_t) percent,
                            .data = malloc(len + 1),
                            .len = len};
    if (!r.data)
        return JOBQ_OK;  //  progress is advisory; the job goes on
    memcpy(r.data, msg, len + 1);
    job->last_pct = (int) percent;
    memcpy(job->last_msg, msg, len + 1);
    jobq_pool_slot_report(job->slot, &r);
    return JOBQ_OK;
}

jobq_mp_writer_t *
jobq_job_output(jobq_job_t *job)
{
    return &job->out;
}

int
jobq_job_fail(jobq_job_t *job, bool permanent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error, sizeof job->error, fmt, ap);
    va_end(ap);
    job->permanent = permanent;
    return JOBQ_EFAILED;
}

const char *
jobq_job_broker_clients(const jobq_job_t *job)
{
    return jobq_pool_slot_args(job->slot)->clients;
}

jobq_client_t *
jobq_job_client(jobq_job_t *job)
{
    if (!*job->client) {
        jobq_client_config_t cfg;
        jobq_client_config_defaults(&cfg);
        cfg.broker = jobq_pool_slot_args(job->slot)->clients;
        cfg.zmq_ctx = jobq_pool_slot_args(job->slot)->zmq_ctx;
        cfg.curve = jobq_pool_slot_args(job->slot)->curve;
        *job->client = jobq_client_new(&cfg);
    }
    return *job->client;
}

const char *
jobq_job_export_dir(const jobq_job_t *job)
{
    return jobq_pool_slot_args(job->slot)->export_dir;
}

//  --- a slot's side
//  -----------------------------------------------------------

static void
s_copy(char *dst, size_t cap, jobq_str_t s)
{
    size_t n = s.len < cap ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

void
jobq_job_start(jobq_job_t *job,
               jobq_pool_slot_t *slot,
               uint64_t id,
               uint32_t attempt,
               jobq_str_t type,
               jobq_str_t shop,
               jobq_bytes_t input,
               jobq_client_t **client)
{
    job->slot = slot;
    job->idv = id;
    jobq_id_format(id, job->id);
    job->attempt = attempt;
    s_copy(job->type, sizeof job->type, type);
    s_copy(job->shop, sizeof job->shop, shop);
    job->input = input;
    jobq_mp_writer_init(&job->out, JOBQ_MAX_OUTPUT_BYTES);
    job->error[0] = '\0';
    job->permanent = false;
    job->last_pct = -1;
    job->last_msg[0] = '\0';
    job->client = client;
}

void
jobq_job_finish(jobq_job_t *job, int rc, jobq_pool_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->kind = JOBQ_POOL_DONE;
    r->id = job->idv;
    r->attempt = job->attempt;
    r->ok = rc == JOBQ_OK;
    r->cancelled = jobq_job_cancelled(job);
    if (r->ok) {
        const char *why_bad = NULL, *bad = NULL;
        if (job->out.len == 0)
            jobq_mp_write_map(&job->out, 0);
        jobq_mp_reader_t rd;
        jobq_mp_reader_init(&rd, job->out.data, job->out.len);
        if (jobq_mp_writer_error(&job->out) != JOBQ_OK)
            why_bad = "processor output too large";
        else if (jobq_mp_check(job->out.data, job->out.len,
                               &jobq_proto_map_limits, &bad) != JOBQ_OK ||
                 jobq_mp_peek(&rd) != JOBQ_MP_MAP)
            why_bad = "processor output is not one valid msgpack map within "
                      "the protocol's limits";
        if (why_bad) {
            r->ok = false;
            jobq_job_fail(job, true, "%s", why_bad);
        }
    } else if (!job->error[0]) {
        snprintf(job->error, sizeof job->error, "%s",
                 r->cancelled ? "cancelled" : jobq_strerror(rc));
    }
    if (r->ok) {
        //  The output buffer changes hands: no copy.
        r->data = job->out.data;
        r->len = job->out.len;
        job->out.data = NULL;
    } else {
        r->len = strlen(job->error);
        r->data = malloc(r->len + 1);
        if (r->data)
            memcpy(r->data, job->error, r->len + 1);
        else
            r->len = 0;
        r->permanent = job->permanent;
    }
    jobq_mp_writer_fini(&job->out);
}
