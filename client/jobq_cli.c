/*  jobq_cli.c: subcommands of `jobq`. */
#include "jobq_cli.h"
#include "jobq_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_ARGS 64  //  positional arguments kept

typedef struct {
    FILE *out;                     //  results
    FILE *err;                     //  diagnostics
    const char *broker;            //  client endpoint
    const char *events;            //  event endpoint
    int timeout_ms;                //  per request
    const char *args[S_MAX_ARGS];  //  positional arguments
    int nargs;                     //  entries in args
    //  options of the subcommands (NULL / -1 when not given)
    const char *shop, *type, *status, *input, *key, *cursor;
    long long priority, delay, max_attempts, timeout, limit, wait;
    bool json, watch;
} s_cli_t;

static int
s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: jobq [--broker EP] [--events EP] COMMAND [ARGS]\n"
        "\n"
        "  enqueue TYPE --shop SHOP [--input JSON] [--priority N] [--delay "
        "MS]\n"
        "          [--max-attempts N] [--timeout MS] [--key KEY] [--watch]\n"
        "                         add a job; prints its id\n"
        "  status ID [--json]     one job's record\n"
        "  watch ID [--wait MS]   a live progress bar until the job ends\n"
        "  list [--shop S] [--type T] [--status S] [--limit N] [--cursor C]\n"
        "       [--json]          jobs, newest first, one page\n"
        "  cancel ID              cancel a pending or running job\n"
        "  retry ID               run a failed or cancelled job again\n"
        "  stats [--json]         jobs by type and state, workers\n"
        "\n"
        "  --broker EP   client endpoint (env JOBQ_BROKER,\n"
        "                default tcp://127.0.0.1:5555)\n"
        "  --events EP   event endpoint (env JOBQ_EVENTS,\n"
        "                default tcp://127.0.0.1:5557)\n"
        "  --timeout-ms N  request timeout (default 3000)\n"
        "\n"
        "Exit status: 0 ok, 1 refused or the job failed, 2 misuse, 3 timed "
        "out.\n");
    return 2;
}

static int s_misuse(s_cli_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
s_misuse(s_cli_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "jobq: ");
    vfprintf(c->err, fmt, ap);
    fprintf(c->err, " (see jobq --help)\n");
    va_end(ap);
    return 2;
}

static bool
s_number(s_cli_t *c,
         const char *opt,
         const char *arg,
         long long min,
         long long max,
         long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (!*arg || *end || errno || v < min || v > max) {
        fprintf(c->err,
                "jobq: %s needs a whole number from %lld to %lld, "
                "not '%s'\n",
                opt, min, max, arg);
        return false;
    }
    *out = v;
    return true;
}

//  Parse options anywhere. Returns 0, or 2 after printing the misuse.
static int
s_parse(s_cli_t *c, int argc, char **argv)
{
    static const char *const valued[] = {
        "--broker",  "--events",   "--timeout-ms", "--shop",
        "--type",    "--status",   "--input",      "--key",
        "--cursor",  "--priority", "--delay",      "--max-attempts",
        "--timeout", "--limit",    "--wait",       NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strcmp(a, "--watch") == 0) {
            c->watch = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            if (c->nargs == S_MAX_ARGS)
                return s_misuse(c, "too many arguments at '%s'", a);
            c->args[c->nargs++] = a;
            continue;
        }
        int k = 0;
        while (valued[k] && strcmp(valued[k], a) != 0)
            k++;
        if (!valued[k])
            return s_misuse(c, "unknown option '%s'", a);
        if (i + 1 >= argc)
            return s_misuse(c, "option '%s' needs a value", a);
        const char *v = argv[++i];
        long long n;
        switch (k) {
        case 0:
            c->broker = v;
            break;
        case 1:
            c->events = v;
            break;
        case 2:
            if (!s_number(c, a, v, 1, 3600000, &n))
                return 2;
            c->timeout_ms = (int) n;
            break;
        case 3:
            c->shop = v;
            break;
        case 4:
            c->type = v;
            break;
        case 5:
            c->status = v;
            break;
        case 6:
            c->input = v;
            break;
        case 7:
            c->key = v;
            break;
        case 8:
            c->cursor = v;
            break;
        case 9:
            if (!s_number(c, a, v, JOBQ_MIN_PRIORITY, JOBQ_MAX_PRIORITY,
                          &c->priority))
                return 2;
            break;
        case 10:
            if (!s_number(c, a, v, 0, (long long) JOBQ_MAX_DELAY_MS, &c->delay))
                return 2;
            break;
        case 11:
            if (!s_number(c, a, v, 1, JOBQ_MAX_ATTEMPTS, &c->max_attempts))
                return 2;
            break;
        case 12:
            if (!s_number(c, a, v, 0, (long long) JOBQ_MAX_TIMEOUT_MS,
                          &c->timeout))
                return 2;
            break;
        case 13:
            if (!s_number(c, a, v, 1, JOBQ_MAX_LIST, &c->limit))
                return 2;
            break;
        default:
            if (!s_number(c, a, v, 1, 86400000LL * 7, &c->wait))
                return 2;
            break;
        }
    }
    return 0;
}

//  Only the options in `allowed` (space-separated names) may be given.
static int
s_only(s_cli_t *c, const char *cmd, const char *allowed)
{
    const struct {
        bool given;        //  the option was used
        const char *name;  //  its name
    } opts[] = {
        {c->shop != NULL, "--shop"},
        {c->type != NULL, "--type"},
        {c->status != NULL, "--status"},
        {c->input != NULL, "--input"},
        {c->key != NULL, "--key"},
        {c->cursor != NULL, "--cursor"},
        {c->priority != 0, "--priority"},
        {c->delay >= 0, "--delay"},
        {c->max_attempts >= 0, "--max-attempts"},
        {c->timeout >= 0, "--timeout"},
        {c->limit >= 0, "--limit"},
        {c->wait >= 0, "--wait"},
        {c->json, "--json"},
        {c->watch, "--watch"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (opts[i].given && !strstr(allowed, opts[i].name)) {
            fprintf(c->err, "jobq: %s does not take %s\n", cmd, opts[i].name);
            return 2;
        }
    }
    return 0;
}

static int
s_args(s_cli_t *c, const char *cmd, int want, const char *what)
{
    if (c->nargs - 1 == want)
        return 0;
    fprintf(c->err, "jobq: %s takes %s (got %d argument%s)\n", cmd, what,
            c->nargs - 1, c->nargs - 1 == 1 ? "" : "s");
    return 2;
}

static int
s_check_id(s_cli_t *c, const char *id)
{
    uint64_t v;
    if (jobq_id_parse(id, strlen(id), &v) != JOBQ_OK) {
        fprintf(c->err,
                "jobq: '%s' is not a job id (%d lowercase hex "
                "digits)\n",
                id, JOBQ_ID_LEN);
        return 2;
    }
    return 0;
}

static jobq_client_t *
s_connect(s_cli_t *c)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = c->broker;
    cfg.events = c->events;
    cfg.timeout_ms = c->timeout_ms;
    jobq_client_t *cl = jobq_client_new(&cfg);
    if (!cl)
        fprintf(c->err, "jobq: cannot use endpoint '%s'\n", c->broker);
    return cl;
}

static int
s_failed(s_cli_t *c, jobq_client_t *cl, int rc)
{
    const char *msg = jobq_client_last_error(cl);
    fprintf(c->err, "jobq: %s\n", msg && msg[0] ? msg : jobq_strerror(rc));
    return 1;
}

static void
s_iso(uint64_t ms, char *buf, size_t len)
{
    if (!ms) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", base, (unsigned) (ms % 1000));
}

static void
s_print_json(FILE *out, json_t *j, size_t flags)
{
    char *s = json_dumps(j, flags | JSON_ENCODE_ANY);
    if (s) {
        fprintf(out, "%s\n", s);
        free(s);
    }
}

static void
s_print_job(s_cli_t *c, const jobq_job_info_t *j)
{
    char created[40], started[40], completed[40];
    s_iso(j->created_at, created, sizeof created);
    s_iso(j->started_at, started, sizeof started);
    s_iso(j->completed_at, completed, sizeof completed);
    fprintf(c->out, "id:        %s\n", j->id);
    fprintf(c->out, "type:      %s\n", j->type);
    fprintf(c->out, "shop:      %s\n", j->shop_id);
    fprintf(c->out, "status:    %s\n", jobq_status_name(j->status));
    fprintf(c->out, "progress:  %u%%%s%s\n", j->progress,
            j->message ? "  " : "", j->message ? j->message : "");
    fprintf(c->out, "attempts:  %u of %u\n", j->attempts, j->max_attempts);
    if (j->error)
        fprintf(c->out, "error:     %s\n", j->error);
    fprintf(c->out, "created:   %s\nstarted:   %s\ncompleted: %s\n", created,
            started, completed);
    json_t *in = jobq_json_from_mp(j->input);
    json_t *out = jobq_json_from_mp(j->output);
    fprintf(c->out, "input:     ");
    s_print_json(c->out, in ? in : json_null(), JSON_COMPACT);
    if (j->output.len) {
        fprintf(c->out, "output:    ");
        s_print_json(c->out, out ? out : json_null(), JSON_COMPACT);
    }
    json_decref(in);
    json_decref(out);
}

//  --- subcommands
//  -------------------------------------------------------------

typedef struct {
    s_cli_t *c;    //  the CLI
    bool tty;      //  redraw in place
    int last_pct;  //  last drawn, -1 = none
} s_bar_t;

static void
s_draw(s_bar_t *b, const jobq_job_info_t *j)
{
    char bar[21];
    unsigned filled = j->progress * 20 / 100;
    for (unsigned i = 0; i < 20; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[20] = '\0';
    fprintf(b->c->out, "%s[%s] %3u%% %-9s %s%s", b->tty ? "\r\033[K" : "", bar,
            j->progress, jobq_status_name(j->status),
            j->message ? j->message : "", b->tty ? "" : "\n");
    fflush(b->c->out);
}

static void
s_on_progress(void *arg, const jobq_job_info_t *j)
{
    s_draw(arg, j);
}

static void
s_on_complete(void *arg, const jobq_job_info_t *j)
{
    s_bar_t *b = arg;
    s_draw(b, j);
    if (b->tty)
        fprintf(b->c->out, "\n");
    json_t *out = jobq_json_from_mp(j->output);
    s_print_json(b->c->out, out ? out : json_null(), JSON_COMPACT);
    json_decref(out);
}

static void
s_on_error(void *arg, const jobq_job_info_t *j)
{
    s_bar_t *b = arg;
    s_draw(b, j);
    if (b->tty)
        fprintf(b->c->out, "\n");
    if (j->status == JOBQ_CANCELLED)
        fprintf(b->c->err, "jobq: job %s cancelled\n", j->id);
    else
        fprintf(b->c->err, "jobq: job %s failed: %s\n", j->id,
                j->error ? j->error : "(no message)");
}

static int
s_watch(s_cli_t *c, jobq_client_t *cl, const char *id)
{
    s_bar_t b = {c, isatty(fileno(c->out)) != 0, -1};
    jobq_watch_t cb = {s_on_progress, s_on_complete, s_on_error, &b};
    int rc = jobq_client_watch(cl, id, &cb, c->wait >= 0 ? (int) c->wait : -1);
    switch (rc) {
    case JOBQ_OK:
        return 0;
    case JOBQ_EFAILED:
    case JOBQ_ECANCELLED:
        return 1;
    case JOBQ_ETIMEOUT:
        fprintf(c->err, "jobq: %s\n", jobq_client_last_error(cl));
        return 3;
    default:
        return s_failed(c, cl, rc);
    }
}

static int
s_cmd_enqueue(s_cli_t *c)
{
    int rc = s_only(c, "enqueue",
                    "--shop --input --priority --delay "
                    "--max-attempts --timeout --key --watch");
    if (rc || (rc = s_args(c, "enqueue", 1, "one job type")))
        return rc;
    if (!c->shop)
        return s_misuse(c, "enqueue needs --shop");
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_INPUT_BYTES);
    char why[200];
    if (c->input && jobq_json_to_mp(c->input, &w, why, sizeof why)) {
        jobq_mp_writer_fini(&w);
        return s_misuse(c, "--input: %s", why);
    }
    jobq_enqueue_t req = {
        .type = c->args[1],
        .shop_id = c->shop,
        .input = {w.data, w.len},
        .priority = (int32_t) c->priority,
        .delay_ms = c->delay > 0 ? (uint64_t) c->delay : 0,
        .max_attempts = c->max_attempts > 0 ? (uint32_t) c->max_attempts : 0,
        .timeout_ms = c->timeout > 0 ? (uint64_t) c->timeout : 0,
        .key = c->key,
    };
    jobq_client_t *cl = s_connect(c);
    if (!cl) {
        jobq_mp_writer_fini(&w);
        return 2;
    }
    char id[JOBQ_ID_LEN + 1];
    rc = jobq_client_enqueue(cl, &req, id, NULL);
    jobq_mp_writer_fini(&w);
    if (rc != JOBQ_OK)
        rc = s_failed(c, cl, rc);
    else {
        fprintf(c->out, "%s\n", id);
        fflush(c->out);
        rc = c->watch ? s_watch(c, cl, id) : 0;
    }
    jobq_client_destroy(&cl);
    return rc;
}

//  status, cancel, retry, watch: one id.
static int
s_cmd_one(s_cli_t *c, const char *cmd)
{
    bool status = strcmp(cmd, "status") == 0, watch = strcmp(cmd, "watch") == 0;
    int rc = s_only(c, cmd, status ? "--json" : watch ? "--wait" : "");
    if (rc || (rc = s_args(c, cmd, 1, "one job id")) ||
        (rc = s_check_id(c, c->args[1])))
        return rc;
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    const char *id = c->args[1];
    jobq_job_info_t j;
    memset(&j, 0, sizeof j);
    if (watch) {
        rc = s_watch(c, cl, id);
    } else {
        rc = status                       ? jobq_client_status(cl, id, &j)
             : strcmp(cmd, "cancel") == 0 ? jobq_client_cancel(cl, id, &j)
                                          : jobq_client_retry(cl, id, &j);
        if (rc != JOBQ_OK) {
            rc = s_failed(c, cl, rc);
        } else if (status && c->json) {
            json_t *o = jobq_json_job(&j);
            s_print_json(c->out, o, JSON_INDENT(2));
            json_decref(o);
        } else if (status) {
            s_print_job(c, &j);
        } else {
            fprintf(c->out, "%s %s\n", j.id, jobq_status_name(j.status));
        }
    }
    jobq_job_info_clear(&j);
    jobq_client_destroy(&cl);
    return rc;
}

static int
s_cmd_list(s_cli_t *c)
{
    int rc = s_only(c, "list",
                    "--shop --type --status --limit --cursor "
                    "--json");
    if (rc || (rc = s_args(c, "list", 0, "no arguments")))
        return rc;
    int status = -1;
    if (c->status &&
        (status = jobq_status_parse(c->status, strlen(c->status))) < 0)
        return s_misuse(c,
                        "unknown --status '%s' (pending, running, "
                        "completed, failed, cancelled)",
                        c->status);
    if (c->cursor && (rc = s_check_id(c, c->cursor)))
        return rc;
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    jobq_list_t req = {c->shop, c->type, status,
                       c->limit > 0 ? (uint32_t) c->limit : 0, c->cursor};
    jobq_job_info_t *jobs = NULL;
    size_t n = 0;
    char next[JOBQ_ID_LEN + 1];
    rc = jobq_client_list(cl, &req, &jobs, &n, next);
    if (rc != JOBQ_OK) {
        rc = s_failed(c, cl, rc);
    } else if (c->json) {
        json_t *o = json_object(), *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, jobq_json_job(&jobs[i]));
        json_object_set_new(o, "jobs", a);
        json_object_set_new(o, "next",
                            next[0] ? json_string(next) : json_null());
        s_print_json(c->out, o, JSON_INDENT(2));
        json_decref(o);
    } else {
        fprintf(c->out, "%-16s  %-16s  %-16s  %-9s  %4s  %s\n", "ID", "TYPE",
                "SHOP", "STATUS", "PCT", "UPDATED");
        for (size_t i = 0; i < n; i++) {
            char upd[40];
            s_iso(jobs[i].updated_at, upd, sizeof upd);
            fprintf(c->out, "%-16s  %-16.16s  %-16.16s  %-9s  %3u%%  %s\n",
                    jobs[i].id, jobs[i].type, jobs[i].shop_id,
                    jobq_status_name(jobs[i].status), jobs[i].progress, upd);
        }
        if (next[0])
            fprintf(c->out, "next page: --cursor %s\n", next);
    }
    jobq_job_list_free(&jobs, n);
    jobq_client_destroy(&cl);
    return rc;
}

static int
s_cmd_stats(s_cli_t *c)
{
    int rc = s_only(c, "stats", "--json");
    if (rc || (rc = s_args(c, "stats", 0, "no arguments")))
        return rc;
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    jobq_bytes_t body = {NULL, 0};
    rc = jobq_client_stats(cl, &body);
    if (rc != JOBQ_OK) {
        rc = s_failed(c, cl, rc);
        jobq_client_destroy(&cl);
        return rc;
    }
    json_t *o = jobq_json_from_mp(body);
    free((void *) body.ptr);
    if (!o) {
        fprintf(c->err, "jobq: malformed stats reply\n");
        jobq_client_destroy(&cl);
        return 1;
    }
    json_object_del(o, "rid");
    if (c->json) {
        s_print_json(c->out, o, JSON_INDENT(2));
    } else {
        fprintf(c->out, "%-20s", "TYPE");
        for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
            fprintf(c->out, " %10s", jobq_status_name(s));
        fprintf(c->out, "\n");
        const char *type;
        json_t *counts;
        json_object_foreach(json_object_get(o, "counts"), type, counts)
        {
            fprintf(c->out, "%-20.20s", type);
            for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
                fprintf(c->out, " %10lld",
                        (long long) json_integer_value(
                            json_object_get(counts, jobq_status_name(s))));
            fprintf(c->out, "\n");
        }
        json_t *workers = json_object_get(o, "workers");
        fprintf(c->out, "workers: %zu, capacity %lld, busy %lld\n",
                json_array_size(workers),
                (long long) json_integer_value(json_object_get(o, "capacity")),
                (long long) json_integer_value(json_object_get(o, "busy")));
        size_t i;
        json_t *w;
        json_array_foreach(workers, i, w)
        {
            char *types = json_dumps(json_object_get(w, "types"), JSON_COMPACT);
            fprintf(
                c->out, "  %s  %lld/%lld  %s\n",
                json_string_value(json_object_get(w, "name")),
                (long long) json_integer_value(json_object_get(w, "active")),
                (long long) json_integer_value(json_object_get(w, "capacity")),
                types ? types : "");
            free(types);
        }
    }
    json_decref(o);
    jobq_client_destroy(&cl);
    return 0;
}

int
jobq_cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    s_cli_t c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.err = err;
    c.broker = getenv("JOBQ_BROKER");
    c.events = getenv("JOBQ_EVENTS");
    if (!c.broker || !c.broker[0])
        c.broker = "tcp://127.0.0.1:5555";
    if (!c.events || !c.events[0])
        c.events = "tcp://127.0.0.1:5557";
    c.timeout_ms = 3000;
    c.delay = c.max_attempts = c.timeout = c.limit = c.wait = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(out);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            fprintf(out, "jobq %s\n", JOBQ_VERSION_STRING);
            return 0;
        }
    }
    int rc = s_parse(&c, argc, argv);
    if (rc)
        return rc;
    if (c.nargs == 0) {
        fprintf(err, "jobq: no command given\n");
        return s_usage(err);
    }
    const char *cmd = c.args[0];
    if (strcmp(cmd, "help") == 0) {
        s_usage(out);
        return 0;
    }
    if (strcmp(cmd, "enqueue") == 0)
        return s_cmd_enqueue(&c);
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "watch") == 0 ||
        strcmp(cmd, "cancel") == 0 || strcmp(cmd, "retry") == 0)
        return s_cmd_one(&c, cmd);
    if (strcmp(cmd, "list") == 0)
        return s_cmd_list(&c);
    if (strcmp(cmd, "stats") == 0)
        return s_cmd_stats(&c);
    return s_misuse(&c, "unknown command '%s'", cmd);
}
