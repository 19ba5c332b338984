/*  jobq_slot.c: the slot thread and the job handle processors see. */
#include "jobq_slot.h"
#include "jobq_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct jobq_job {
    zsock_t *pipe;                            //  to the runtime
    uint64_t idv;                             //  job id
    char id[JOBQ_ID_LEN + 1];                 //  as hex
    uint32_t attempt;                         //  from 1
    char type[JOBQ_MAX_TYPE_LEN + 1];         //  job type
    char shop[JOBQ_MAX_SHOP_LEN + 1];         //  shop id
    jobq_bytes_t input;                       //  borrowed from the JOB message
    jobq_mp_writer_t out;                     //  output map
    char error[JOBQ_MAX_ERROR_LEN + 1];       //  set by jobq_job_fail
    bool permanent;                           //  no retry
    bool cancelled;                           //  stop requested
    bool terminate;                           //  the slot is being shut down
    int last_pct;                             //  last progress sent, -1 = none
    char last_msg[JOBQ_MAX_MESSAGE_LEN + 1];  //  last message sent
    const jobq_slot_args_t *args;             //  shared settings
    jobq_client_t **client;                   //  the slot's, made lazily
};

static void
s_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
s_unle(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

uint64_t
jobq_slot_u64(zframe_t *f)
{
    return f && zframe_size(f) == 8 ? s_unle(zframe_data(f), 8) : 0;
}

uint32_t
jobq_slot_u32(zframe_t *f)
{
    return f && zframe_size(f) == 4 ? (uint32_t) s_unle(zframe_data(f), 4) : 0;
}

static void
s_add_u(zmsg_t *m, uint64_t v, size_t n)
{
    uint8_t b[8];
    s_le(b, v, n);
    zmsg_addmem(m, b, n);
}

int
jobq_slot_send_job(zsock_t *slot,
                   uint64_t id,
                   uint32_t attempt,
                   jobq_str_t type,
                   jobq_str_t shop,
                   jobq_bytes_t input,
                   uint64_t timeout_ms)
{
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, "JOB");
    s_add_u(m, id, 8);
    s_add_u(m, attempt, 4);
    zmsg_addmem(m, type.ptr, type.len);
    zmsg_addmem(m, shop.ptr, shop.len);
    zmsg_addmem(m, input.ptr, input.len);
    s_add_u(m, timeout_ms, 8);
    return zmsg_send(&m, slot) == 0 ? JOBQ_OK : JOBQ_EUNAVAILABLE;
}

int
jobq_slot_send_cancel(zsock_t *slot, uint64_t id)
{
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, "CANCEL");
    s_add_u(m, id, 8);
    return zmsg_send(&m, slot) == 0 ? JOBQ_OK : JOBQ_EUNAVAILABLE;
}

//  --- the job handle -------------------------------------------------------

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

//  Handle one message that reached the slot while a job runs.
static void
s_control(jobq_job_t *job, zmsg_t *m)
{
    char *cmd = zmsg_popstr(m);
    if (cmd && strcmp(cmd, "CANCEL") == 0) {
        zframe_t *f = zmsg_pop(m);
        if (jobq_slot_u64(f) == job->idv)
            job->cancelled = true;
        zframe_destroy(&f);
    } else if (cmd && strcmp(cmd, "$TERM") == 0) {
        job->cancelled = true;
        job->terminate = true;
    }
    zstr_free(&cmd);
}

//  Wait up to timeout_ms (0 = just look) for control messages.
static void
s_poll(jobq_job_t *job, long timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve(job->pipe), 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, timeout_ms) > 0) {
        zmsg_t *m = zmsg_recv(job->pipe);
        if (!m)
            break;
        s_control(job, m);
        zmsg_destroy(&m);
        timeout_ms = 0;
    }
}

bool
jobq_job_cancelled(jobq_job_t *job)
{
    if (!job->cancelled)
        s_poll(job, 0);
    return job->cancelled;
}

int
jobq_job_sleep(jobq_job_t *job, uint64_t ms)
{
    int64_t deadline = zclock_mono() + (int64_t) ms;
    while (!jobq_job_cancelled(job)) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            return JOBQ_OK;
        s_poll(job, (long) left);
    }
    return JOBQ_ECANCELLED;
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
    job->last_pct = (int) percent;
    memcpy(job->last_msg, msg, strlen(msg) + 1);
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, "PROGRESS");
    s_add_u(m, job->idv, 8);
    s_add_u(m, job->attempt, 4);
    s_add_u(m, percent, 1);
    zmsg_addstr(m, msg);
    zmsg_send(&m, job->pipe);
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
    return job->args->clients;
}

jobq_client_t *
jobq_job_client(jobq_job_t *job)
{
    if (!*job->client) {
        jobq_client_config_t cfg;
        jobq_client_config_defaults(&cfg);
        cfg.broker = job->args->clients;
        *job->client = jobq_client_new(&cfg);
    }
    return *job->client;
}

const char *
jobq_job_export_dir(const jobq_job_t *job)
{
    return job->args->export_dir;
}

//  --- the slot thread --------------------------------------------------------

static void
s_copy(char *dst, size_t cap, zframe_t *f)
{
    size_t n = f ? zframe_size(f) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, zframe_data(f), n);
    dst[n] = '\0';
}

//  Run the job described by m (a "JOB" message after its command frame)
//  and report DONE. client is the slot's broker client (NULL until a
//  processor asks for it). Returns true if the slot must end afterwards.
static bool
s_run(zsock_t *pipe,
      const jobq_slot_args_t *args,
      jobq_client_t **client,
      zmsg_t *m)
{
    jobq_job_t job;
    memset(&job, 0, sizeof job);
    job.pipe = pipe;
    job.args = args;
    job.client = client;
    job.last_pct = -1;
    zframe_t *fid = zmsg_pop(m), *fat = zmsg_pop(m), *ftype = zmsg_pop(m);
    zframe_t *fshop = zmsg_pop(m), *finput = zmsg_pop(m);
    job.idv = jobq_slot_u64(fid);
    jobq_id_format(job.idv, job.id);
    job.attempt = jobq_slot_u32(fat);
    s_copy(job.type, sizeof job.type, ftype);
    s_copy(job.shop, sizeof job.shop, fshop);
    job.input.ptr = finput ? zframe_data(finput) : NULL;
    job.input.len = finput ? zframe_size(finput) : 0;
    jobq_mp_writer_init(&job.out, JOBQ_MAX_OUTPUT_BYTES);

    jobq_process_fn *fn = NULL;
    void *state = NULL;
    int rc;
    if (jobq_registry_find(args->registry, job.type, strlen(job.type), &fn,
                           &state) != JOBQ_OK)
        rc = jobq_job_fail(&job, true, "no processor for type '%s'", job.type);
    else
        rc = fn(&job, state);
    //  Also notice a cancel that came in while the processor finished.
    jobq_job_cancelled(&job);

    bool ok = rc == JOBQ_OK;
    const char *why = NULL;
    if (ok) {
        if (job.out.len == 0)
            jobq_mp_write_map(&job.out, 0);
        const char *bad = NULL;
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, job.out.data, job.out.len);
        if (jobq_mp_writer_error(&job.out) != JOBQ_OK)
            why = "processor output too large";
        else if (jobq_mp_check(job.out.data, job.out.len,
                               &jobq_proto_map_limits, &bad) != JOBQ_OK ||
                 jobq_mp_peek(&r) != JOBQ_MP_MAP)
            why = "processor output is not one valid msgpack map within "
                  "the protocol's limits";
        if (why) {
            ok = false;
            jobq_job_fail(&job, true, "%s", why);
        }
    } else if (!job.error[0]) {
        snprintf(job.error, sizeof job.error, "%s",
                 job.cancelled ? "cancelled" : jobq_strerror(rc));
    }
    zmsg_t *d = zmsg_new();
    zmsg_addstr(d, "DONE");
    s_add_u(d, job.idv, 8);
    s_add_u(d, job.attempt, 4);
    s_add_u(d, ok, 1);
    if (ok)
        zmsg_addmem(d, job.out.data, job.out.len);
    else
        zmsg_addstr(d, job.error);
    s_add_u(d, job.permanent, 1);
    s_add_u(d, job.cancelled, 1);
    zmsg_send(&d, pipe);

    jobq_mp_writer_fini(&job.out);
    zframe_destroy(&fid);
    zframe_destroy(&fat);
    zframe_destroy(&ftype);
    zframe_destroy(&fshop);
    zframe_destroy(&finput);
    return job.terminate;
}

void
jobq_slot_actor(zsock_t *pipe, void *args)
{
    const jobq_slot_args_t *a = args;
    //  Made and destroyed on this thread only (see jobq_job_client).
    jobq_client_t *client = NULL;
    zsock_signal(pipe, 0);
    while (true) {
        zmsg_t *m = zmsg_recv(pipe);
        if (!m)
            break;
        char *cmd = zmsg_popstr(m);
        bool end = !cmd || strcmp(cmd, "$TERM") == 0;
        if (!end && strcmp(cmd, "JOB") == 0)
            end = s_run(pipe, a, &client, m);
        //  A CANCEL for a job that already ended needs nothing.
        zstr_free(&cmd);
        zmsg_destroy(&m);
        if (end)
            break;
    }
    jobq_client_destroy(&client);
}
