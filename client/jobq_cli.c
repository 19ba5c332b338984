/*  jobq_cli.c: the `jobq` command line: options, subcommands, output.

    Options are parsed by hand (no getopt: it keeps global state), from a
    table, anywhere before or after the subcommand, as `--name value` or
    `--name=value`; `--` ends them. Each subcommand then says which of the
    options it takes, how many words follow it, and parses the values it
    needs, so every misuse is caught before anything is sent.
*/
#include "jobq_cli.h"
#include "jobq_json.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef JOBQ_VERSION_STRING
#define JOBQ_VERSION_STRING "unknown"
#endif

#define S_DEFAULT_BROKER     "tcp://127.0.0.1:5555"
#define S_DEFAULT_EVENTS     "tcp://127.0.0.1:5557"
#define S_DEFAULT_TIMEOUT_MS 2000     //  per request try, ms (2 tries)
#define S_MAX_TIMEOUT_MS     3600000  //  --timeout-ms ceiling, ms
//  A list of up to JOBQ_MAX_ENDPOINTS endpoints of 255 bytes, with commas.
#define S_MAX_ENDPOINT (JOBQ_MAX_ENDPOINTS * 256 - 1)
#define S_MAX_ARGS     8   //  words kept; no command takes more
#define S_BAR_WIDTH    20  //  characters of the progress bar
#define S_TTY_MESSAGE  40  //  message bytes on a redrawn bar, to fit 80
//  Bytes of JSON text --input @FILE may hold; the msgpack is capped lower.
#define S_MAX_INPUT_TEXT (4u << 20)
//  One progress bar line, bytes: the bar, the status, the message.
#define S_LINE (S_BAR_WIDTH + 64 + JOBQ_MAX_MESSAGE_LEN)

//  --- options ----------------------------------------------------------------

typedef enum {
    S_OPT_BROKER,
    S_OPT_EVENTS,
    S_OPT_TIMEOUT_MS,
    S_OPT_HELP,
    S_OPT_VERSION,
    S_OPT_SHOP,
    S_OPT_TYPE,
    S_OPT_STATUS,
    S_OPT_INPUT,
    S_OPT_KEY,
    S_OPT_CURSOR,
    S_OPT_PRIORITY,
    S_OPT_DELAY,
    S_OPT_MAX_ATTEMPTS,
    S_OPT_TIMEOUT,
    S_OPT_LIMIT,
    S_OPT_WAIT,
    S_OPT_JSON,
    S_OPT_WATCH,
    S_OPT_CERT,
    S_OPT_BROKER_KEY,
    S_OPT_NAME,
    S_OPT_COUNT_
} s_opt_t;

#define S_BIT(o) (1u << (o))
#define S_GLOBAL_OPTS                                                          \
    (S_BIT(S_OPT_BROKER) | S_BIT(S_OPT_EVENTS) | S_BIT(S_OPT_TIMEOUT_MS) |     \
     S_BIT(S_OPT_HELP) | S_BIT(S_OPT_VERSION) | S_BIT(S_OPT_CERT) |            \
     S_BIT(S_OPT_BROKER_KEY))

typedef struct {
    const char *name;  //  as typed, "--shop"
    bool valued;       //  takes a value
} s_optdef_t;

static const s_optdef_t s_optdefs[S_OPT_COUNT_] = {
    [S_OPT_BROKER] = {"--broker", true},
    [S_OPT_EVENTS] = {"--events", true},
    [S_OPT_TIMEOUT_MS] = {"--timeout-ms", true},
    [S_OPT_HELP] = {"--help", false},
    [S_OPT_VERSION] = {"--version", false},
    [S_OPT_SHOP] = {"--shop", true},
    [S_OPT_TYPE] = {"--type", true},
    [S_OPT_STATUS] = {"--status", true},
    [S_OPT_INPUT] = {"--input", true},
    [S_OPT_KEY] = {"--key", true},
    [S_OPT_CURSOR] = {"--cursor", true},
    [S_OPT_PRIORITY] = {"--priority", true},
    [S_OPT_DELAY] = {"--delay", true},
    [S_OPT_MAX_ATTEMPTS] = {"--max-attempts", true},
    [S_OPT_TIMEOUT] = {"--timeout", true},
    [S_OPT_LIMIT] = {"--limit", true},
    [S_OPT_WAIT] = {"--wait", true},
    [S_OPT_JSON] = {"--json", false},
    [S_OPT_WATCH] = {"--watch", false},
    [S_OPT_CERT] = {"--cert", true},
    [S_OPT_BROKER_KEY] = {"--broker-key", true},
    [S_OPT_NAME] = {"--name", true},
};

typedef struct s_cmd s_cmd_t;

//  One run of the command line.
typedef struct {
    FILE *out;                         //  results
    FILE *err;                         //  diagnostics
    bool given[S_OPT_COUNT_];          //  the option was used
    const char *val[S_OPT_COUNT_];     //  its value (the last one given)
    const char *args[S_MAX_ARGS];      //  words, the command first
    int nargs;                         //  words seen (may exceed S_MAX_ARGS)
    const s_cmd_t *cmd;                //  the subcommand
    char broker[S_MAX_ENDPOINT + 1];   //  client endpoint(s)
    char events[S_MAX_ENDPOINT + 1];   //  event endpoint(s)
    jobq_curve_t curve;                //  CURVE keys, if has_curve
    bool has_curve;                    //  --cert / JOBQ_CERT given
    int timeout_ms;                    //  per request try, ms
    volatile sig_atomic_t *interrupt;  //  set by the program's handler
} s_cli_t;

struct s_cmd {
    const char *name;        //  subcommand word
    int (*run)(s_cli_t *c);  //  does it; returns the exit code
    int nargs;               //  words after the name
    const char *what;        //  those words, for messages
    uint32_t opts;           //  S_BIT of each option it takes
};

static const char s_usage_text[] =
    "usage: jobq [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  enqueue TYPE --shop SHOP [--input JSON|@FILE] [--priority N]\n"
    "          [--delay MS] [--max-attempts N] [--timeout MS] [--key KEY]\n"
    "          [--watch [--wait MS]]\n"
    "                  add a job and print its id; --watch then follows it\n"
    "  status ID [--json]\n"
    "                  one job: a summary, or the whole record as JSON\n"
    "  watch ID [--timeout MS]\n"
    "                  a live progress bar until the job ends (or MS pass)\n"
    "  list [--shop S] [--type T] [--status S] [--limit N] [--cursor C]\n"
    "       [--json]   one page of jobs, newest first, and the next cursor\n"
    "  cancel ID [--json]\n"
    "                  cancel a pending or running job; print its status\n"
    "  retry ID [--json]\n"
    "                  put a failed or cancelled job back to pending\n"
    "  stats [--json]  jobs by type and status, totals, workers\n"
    "  keygen PATH [--name NAME]\n"
    "                  write a new CURVE key pair: PATH (public) and\n"
    "                  PATH_secret (mode 0600); print the public key\n"
    "  export --store URI [--out FILE]\n"
    "  import --store URI [--in FILE]\n"
    "                  move every job and idempotency key out of a store\n"
    "                  (lmdb:DIR, its broker stopped, or nats://...) and\n"
    "                  into another; see jobq export --help\n"
    "  help            this text\n"
    "\n"
    "global options (before or after the command):\n"
    "  --broker EP      client endpoint (env JOBQ_BROKER,\n"
    "                   default " S_DEFAULT_BROKER "); or a\n"
    "                   comma-separated list of up to 16 brokers that\n"
    "                   share a store: a request that gets no reply\n"
    "                   is tried again on the next one\n"
    "  --events EP      event endpoint, for watch (env JOBQ_EVENTS,\n"
    "                   default " S_DEFAULT_EVENTS "); or a list,\n"
    "                   all of which watch listens to\n"
    "  --timeout-ms N   wait for each reply up to N ms (default 2000);\n"
    "                   a request is tried twice\n"
    "  --cert FILE      this client's secret certificate, for a broker\n"
    "                   with keys (env JOBQ_CERT)\n"
    "  --broker-key K   the broker's public key, Z85 or its certificate\n"
    "                   file (env JOBQ_BROKER_KEY)\n"
    "  --help, -h       this text\n"
    "  --version        the version\n"
    "\n"
    "enqueue: --input is a JSON object (default {}), or @FILE to read it\n"
    "from FILE (@- from stdin); --priority -1000..1000 (higher first);\n"
    "--delay ms before it may run; --max-attempts 1..100\n"
    "(default 3); --timeout ms one attempt may run (0 = none); --key an\n"
    "idempotency key (the same key within 24 h gives the same job).\n"
    "\n"
    "exit status: 0 ok; 1 the broker refused or was not reached, or the\n"
    "watched job failed or was cancelled; 2 misuse; 3 the watch timed out;\n"
    "130 interrupted (Ctrl-C).\n";

static int s_misuse(s_cli_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

//  Say what was wrong; returns the misuse exit code.
static int
s_misuse(s_cli_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("jobq: ", c->err);
    vfprintf(c->err, fmt, ap);
    fputs("\n", c->err);
    va_end(ap);
    return 2;
}

//  The option named by a[0..len), or S_OPT_COUNT_.
static s_opt_t
s_find_opt(const char *a, size_t len)
{
    for (int o = 0; o < S_OPT_COUNT_; o++) {
        const char *name = s_optdefs[o].name;
        if (strlen(name) == len && memcmp(name, a, len) == 0)
            return (s_opt_t) o;
    }
    if (len == 2 && memcmp(a, "-h", 2) == 0)
        return S_OPT_HELP;
    return S_OPT_COUNT_;
}

//  Sort argv into options and words. Returns 0, or 2 after saying why.
static int
s_parse(s_cli_t *c, int argc, char **argv)
{
    bool words_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (words_only || a[0] != '-' || a[1] == '\0') {
            if (c->nargs < S_MAX_ARGS)
                c->args[c->nargs] = a;
            c->nargs++;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            words_only = true;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t) (eq - a) : strlen(a);
        s_opt_t o = s_find_opt(a, len);
        if (o == S_OPT_COUNT_)
            return s_misuse(c, "unknown option '%.*s' (see jobq --help)",
                            (int) len, a);
        const char *name = s_optdefs[o].name;
        const char *v = NULL;
        if (!s_optdefs[o].valued) {
            if (eq)
                return s_misuse(c, "option '%s' takes no value", name);
        } else if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            //  `--shop --json` is a forgotten value, not a shop "--json".
            const char *next = argv[i + 1];
            if (s_find_opt(next, strlen(next)) == S_OPT_COUNT_)
                v = argv[++i];
        }
        if (s_optdefs[o].valued && (!v || !v[0]))
            return s_misuse(c, "option '%s' needs a value", name);
        c->given[o] = true;
        c->val[o] = v;
    }
    return 0;
}

//  Parse the value of option o as a whole number in [min, max].
static bool
s_number(s_cli_t *c, s_opt_t o, long long min, long long max, long long *out)
{
    const char *v = c->val[o];
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    //  strtoll skips leading blanks and takes a lone sign; we do not.
    bool digits = (v[0] >= '0' && v[0] <= '9') ||
                  ((v[0] == '-' || v[0] == '+') && v[1] >= '0' && v[1] <= '9');
    if (!digits || *end != '\0' || errno == ERANGE || n < min || n > max) {
        s_misuse(c, "%s needs a whole number from %lld to %lld, not '%s'",
                 s_optdefs[o].name, min, max, v);
        return false;
    }
    *out = n;
    return true;
}

//  Is s (named `what` in messages) 1 to max bytes of [a-z0-9], [A-Z] if
//  upper, and the characters of extra? Says why not.
static bool
s_name_ok(s_cli_t *c,
          const char *what,
          const char *s,
          size_t max,
          bool upper,
          const char *extra)
{
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= max;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = s[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
             (upper && ch >= 'A' && ch <= 'Z') ||
             (ch != '\0' && strchr(extra, ch) != NULL);
    }
    if (!ok)
        s_misuse(c, "%s '%s' is not valid: 1 to %zu of [%s0-9%s]", what, s, max,
                 upper ? "A-Za-z" : "a-z", extra);
    return ok;
}

static bool
s_type_ok(s_cli_t *c, const char *what, const char *s)
{
    return s_name_ok(c, what, s, JOBQ_MAX_TYPE_LEN, false, "_.-");
}

static bool
s_shop_ok(s_cli_t *c, const char *what, const char *s)
{
    return s_name_ok(c, what, s, JOBQ_MAX_SHOP_LEN, true, "_.:-");
}

static bool
s_id_ok(s_cli_t *c, const char *s)
{
    uint64_t v;
    if (jobq_id_parse(s, strlen(s), &v) == JOBQ_OK)
        return true;
    s_misuse(c, "'%s' is not a job id (%d lowercase hex digits)", s,
             JOBQ_ID_LEN);
    return false;
}

//  --- output helpers ---------------------------------------------------------

//  Copy s into dst (cap bytes) for a terminal: at most max bytes, cut on a
//  character boundary with "...", control characters (C0, DEL, and C1 as
//  UTF-8) shown as spaces: a worker's message must not move the cursor or
//  start an escape sequence.
static const char *
s_clean(char *dst, size_t cap, const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (max + 4 > cap)
        max = cap - 4;
    bool cut = n > max;
    if (cut) {
        n = max;
        while (n && ((unsigned char) s[n] & 0xc0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];
        unsigned char nx = i + 1 < n ? (unsigned char) s[i + 1] : 0;
        if (ch == 0xc2 && nx >= 0x80 && nx <= 0x9f) {
            dst[i++] = ' ';
            dst[i] = ' ';
            continue;
        }
        dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char) ch;
    }
    if (cut)
        memcpy(dst + n, "...", 3);
    dst[n + (cut ? 3 : 0)] = '\0';
    return dst;
}

//  ms since the epoch as ISO-8601 UTC with ms, "-" for 0.
static const char *
s_iso(char *buf, size_t len, uint64_t ms)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    char base[32];
    if (!ms || !gmtime_r(&t, &tm) ||
        !strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, len, "-");
        return buf;
    }
    snprintf(buf, len, "%s.%03uZ", base, (unsigned) (ms % 1000));
    return buf;
}

//  Why job is not running, in words, into buf: "" when it is (or ended).
//  Times in full ISO form, or only the time of day when brief.
static const char *
s_wait_text(char *buf, size_t len, const jobq_job_info_t *job, bool brief)
{
    char t[40], e[JOBQ_MAX_ERROR_LEN + 4];
    s_iso(t, sizeof t, job->wait_until);
    const char *at = brief && strlen(t) > 19 ? t + 11 : t;
    if (brief && at != t)
        snprintf(t + 19, sizeof t - 19, "Z");  //  hh:mm:ssZ
    switch (job->wait) {
    case JOBQ_WAIT_QUEUED:
        snprintf(buf, len, "waiting for a free worker");
        break;
    case JOBQ_WAIT_NO_WORKER:
        snprintf(buf, len, "no connected worker runs type '%s'", job->type);
        break;
    case JOBQ_WAIT_DELAYED:
        snprintf(buf, len, "delayed until %s", at);
        break;
    case JOBQ_WAIT_RETRY:
        snprintf(buf, len, "retry %u of %u at %s after \"%s\"",
                 job->attempts + 1, job->max_attempts, at,
                 job->error ? s_clean(e, sizeof e, job->error, 200) : "");
        break;
    case JOBQ_WAIT_WORKER_LOST:
        snprintf(buf, len,
                 "worker %s is not responding; its attempt is given up at %s",
                 job->worker ? s_clean(e, sizeof e, job->worker, 64) : "-", at);
        break;
    default:
        buf[0] = '\0';
    }
    return buf;
}

//  Print j (any JSON value) on one line, or indented, then a newline.
//  Returns 0, or 1 if it could not be printed (out of memory).
static int
s_print_json(s_cli_t *c, const json_t *j, size_t flags)
{
    char *s = j ? jobq_json_dumps(j, flags | JSON_ENCODE_ANY) : NULL;
    if (!s) {
        fprintf(c->err, "jobq: out of memory\n");
        return 1;
    }
    fprintf(c->out, "%s\n", s);
    free(s);
    return 0;
}

//  An encoded value as compact JSON on out, "null" when absent.
static void
s_print_value(s_cli_t *c, jobq_bytes_t b)
{
    json_t *j = jobq_json_from_mp(b);
    if (j)
        s_print_json(c, j, JSON_COMPACT);
    else
        fprintf(c->out, "(not readable msgpack, %zu byte%s)\n", b.len,
                b.len == 1 ? "" : "s");
    json_decref(j);
}

//  --- the broker -------------------------------------------------------------

static jobq_client_t *
s_connect(s_cli_t *c)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = c->broker;
    cfg.events = c->events;
    cfg.timeout_ms = c->timeout_ms;
    cfg.interrupt = c->interrupt;
    cfg.curve = c->has_curve ? &c->curve : NULL;
    jobq_client_t *cl = jobq_client_new(&cfg);
    if (!cl)
        s_misuse(c, "cannot use broker endpoint '%s' (like %s)", c->broker,
                 S_DEFAULT_BROKER);
    return cl;
}

//  The exit status of a run the user interrupted (128 + SIGINT, as a
//  shell reports a command that a Ctrl-C ended).
#define S_EXIT_INTERRUPTED 130

//  A call failed: say the library's reason. Returns 1, or 130 when the
//  user interrupted the wait.
static int
s_failed(s_cli_t *c, jobq_client_t *cl, int rc)
{
    if (rc == JOBQ_EINTR) {
        fprintf(c->err, "jobq: interrupted\n");
        return S_EXIT_INTERRUPTED;
    }
    const char *msg = jobq_client_last_error(cl);
    fprintf(c->err, "jobq: %s\n", msg && msg[0] ? msg : jobq_strerror(rc));
    return 1;
}

//  --- watch ------------------------------------------------------------------

typedef struct {
    s_cli_t *c;         //  the command line
    bool tty;           //  redraw one line in place
    bool open;          //  tty: a bar is on the line, no newline yet
    size_t shown;       //  tty: length of the bar on the line, bytes
    char last[S_LINE];  //  not a tty: the last line printed
} s_bar_t;

//  Draw `[#####---]  25% running  message` for job.
static void
s_draw(s_bar_t *b, const jobq_job_info_t *job)
{
    unsigned pct = job->progress > 100 ? 100 : job->progress;
    unsigned filled = pct * S_BAR_WIDTH / 100;
    char bar[S_BAR_WIDTH + 1];
    for (unsigned i = 0; i < S_BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[S_BAR_WIDTH] = '\0';
    char msg[JOBQ_MAX_MESSAGE_LEN + 4], why[512];
    //  A job that waits says why, in place of a progress message.
    s_wait_text(why, sizeof why, job, true);
    s_clean(msg, sizeof msg, why[0] ? why : job->message,
            b->tty ? S_TTY_MESSAGE : JOBQ_MAX_MESSAGE_LEN);
    char line[S_LINE];
    int n = snprintf(line, sizeof line, "[%s] %3u%% %s%s%s", bar, pct,
                     jobq_status_name(job->status), msg[0] ? "  " : "", msg);
    size_t len = n < 0                      ? 0
                 : (size_t) n < sizeof line ? (size_t) n
                                            : sizeof line - 1;
    FILE *out = b->c->out;
    if (b->tty) {
        //  Spaces over what is left of a longer previous line.
        int pad = b->shown > len ? (int) (b->shown - len) : 0;
        fprintf(out, "\r%s%*s", line, pad, "");
        b->shown = len;
        b->open = true;
    } else if (strcmp(line, b->last) != 0) {
        fprintf(out, "%s\n", line);
        memcpy(b->last, line, len + 1);
    }
    fflush(out);
}

//  End the bar's line on a terminal.
static void
s_bar_done(s_bar_t *b)
{
    if (b->tty && b->open) {
        fputc('\n', b->c->out);
        fflush(b->c->out);
        b->open = false;
    }
}

static void
s_on_progress(void *arg, const jobq_job_info_t *job)
{
    s_draw(arg, job);
}

static void
s_on_complete(void *arg, const jobq_job_info_t *job)
{
    s_bar_t *b = arg;
    s_draw(b, job);
    s_bar_done(b);
    s_print_value(b->c, job->output);
}

static void
s_on_error(void *arg, const jobq_job_info_t *job)
{
    s_bar_t *b = arg;
    s_draw(b, job);
    s_bar_done(b);
    if (job->status == JOBQ_CANCELLED) {
        fprintf(b->c->err, "jobq: job %s cancelled\n", job->id);
    } else {
        char e[JOBQ_MAX_ERROR_LEN + 4];
        fprintf(b->c->err, "jobq: job %s failed: %s\n", job->id,
                job->error ? s_clean(e, sizeof e, job->error, sizeof e)
                           : "(no error given)");
    }
}

//  Follow job id until it ends or limit_ms pass (-1: no limit).
static int
s_watch(s_cli_t *c, jobq_client_t *cl, const char *id, int limit_ms)
{
    s_bar_t b;
    memset(&b, 0, sizeof b);
    b.c = c;
    b.tty = isatty(fileno(c->out)) == 1;
    jobq_watch_t cb = {s_on_progress, s_on_complete, s_on_error, &b};
    int rc = jobq_client_watch(cl, id, &cb, limit_ms);
    s_bar_done(&b);
    switch (rc) {
    case JOBQ_OK:
        return 0;
    case JOBQ_EFAILED:
    case JOBQ_ECANCELLED:
        return 1;  //  the callback said how it ended
    case JOBQ_ETIMEOUT:
        s_failed(c, cl, rc);
        return 3;
    default:
        return s_failed(c, cl, rc);
    }
}

//  The --wait or --timeout limit of a watch into *ms (-1 when not given).
static bool
s_watch_limit(s_cli_t *c, s_opt_t o, int *ms)
{
    long long v;
    *ms = -1;
    if (!c->given[o])
        return true;
    if (!s_number(c, o, 1, INT_MAX, &v))
        return false;
    *ms = (int) v;
    return true;
}

//  --- subcommands ------------------------------------------------------------

//  --input @FILE (or @- for stdin): *text gets the file's text (free it).
//  Any other value is the JSON itself: *text stays NULL. Returns 0, or the
//  exit code after saying why. Argument words are limited to 128 KiB on
//  Linux, less than an input may be, hence the file form.
static int
s_read_input(s_cli_t *c, const char *v, char **text)
{
    *text = NULL;
    if (v[0] != '@')
        return 0;
    const char *path = v + 1;
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return s_misuse(c, "--input: cannot open '%s': %s", path,
                        strerror(errno));
    char *buf = malloc(S_MAX_INPUT_TEXT + 1);
    size_t n = 0, got;
    while (buf && n <= S_MAX_INPUT_TEXT &&
           (got = fread(buf + n, 1, S_MAX_INPUT_TEXT + 1 - n, f)) > 0)
        n += got;
    bool failed = ferror(f) != 0;
    if (!is_stdin)
        fclose(f);
    if (!buf) {
        fprintf(c->err, "jobq: out of memory\n");
        return 1;
    }
    const char *why = failed                 ? "cannot be read"
                      : n > S_MAX_INPUT_TEXT ? "is too large"
                      : memchr(buf, '\0', n) ? "holds a NUL byte"
                                             : NULL;
    if (why) {
        free(buf);
        return s_misuse(c, "--input: '%s' %s", path, why);
    }
    buf[n] = '\0';
    *text = buf;
    return 0;
}

static int
s_cmd_enqueue(s_cli_t *c)
{
    const char *type = c->args[1];
    long long priority = 0, delay = 0, attempts = 0, timeout = 0;
    int wait_ms;
    if (!s_type_ok(c, "job type", type))
        return 2;
    if (!c->given[S_OPT_SHOP])
        return s_misuse(c, "enqueue needs --shop SHOP");
    if (!s_shop_ok(c, "--shop", c->val[S_OPT_SHOP]))
        return 2;
    if (c->given[S_OPT_KEY] && strlen(c->val[S_OPT_KEY]) > JOBQ_MAX_KEY_LEN)
        return s_misuse(c, "--key is longer than %d bytes", JOBQ_MAX_KEY_LEN);
    if ((c->given[S_OPT_PRIORITY] &&
         !s_number(c, S_OPT_PRIORITY, JOBQ_MIN_PRIORITY, JOBQ_MAX_PRIORITY,
                   &priority)) ||
        (c->given[S_OPT_DELAY] &&
         !s_number(c, S_OPT_DELAY, 0, (long long) JOBQ_MAX_DELAY_MS, &delay)) ||
        (c->given[S_OPT_MAX_ATTEMPTS] &&
         !s_number(c, S_OPT_MAX_ATTEMPTS, 1, JOBQ_MAX_ATTEMPTS, &attempts)) ||
        (c->given[S_OPT_TIMEOUT] &&
         !s_number(c, S_OPT_TIMEOUT, 0, (long long) JOBQ_MAX_TIMEOUT_MS,
                   &timeout)) ||
        !s_watch_limit(c, S_OPT_WAIT, &wait_ms))
        return 2;
    if (c->given[S_OPT_WAIT] && !c->given[S_OPT_WATCH])
        return s_misuse(c, "--wait goes with --watch");

    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_INPUT_BYTES);
    if (c->given[S_OPT_INPUT]) {
        char why[256];
        char *text = NULL;
        int rc = s_read_input(c, c->val[S_OPT_INPUT], &text);
        if (rc != 0) {
            jobq_mp_writer_fini(&w);
            return rc;
        }
        rc = jobq_json_to_mp(text ? text : c->val[S_OPT_INPUT], &w, why,
                             sizeof why);
        free(text);
        if (rc != JOBQ_OK) {
            jobq_mp_writer_fini(&w);
            if (rc == JOBQ_ENOMEM) {
                fprintf(c->err, "jobq: out of memory\n");
                return 1;
            }
            return s_misuse(c, "--input: %s", why);
        }
    }
    jobq_enqueue_t req = {
        .type = type,
        .shop_id = c->val[S_OPT_SHOP],
        .input = {w.data, w.len},
        .priority = (int32_t) priority,
        .delay_ms = (uint64_t) delay,
        .max_attempts = (uint32_t) attempts,
        .timeout_ms = (uint64_t) timeout,
        .key = c->val[S_OPT_KEY],
    };
    jobq_client_t *cl = s_connect(c);
    if (!cl) {
        jobq_mp_writer_fini(&w);
        return 2;
    }
    char id[JOBQ_ID_LEN + 1];
    bool created = true;
    int rc = jobq_client_enqueue(cl, &req, id, &created);
    jobq_mp_writer_fini(&w);
    if (rc != JOBQ_OK) {
        rc = s_failed(c, cl, rc);
    } else {
        fprintf(c->out, "%s\n", id);
        fflush(c->out);
        if (!created)
            fprintf(c->err, "jobq: the key named an existing job; nothing new "
                            "was enqueued\n");
        if (jobq_client_unserved(cl))
            fprintf(c->err,
                    "jobq: warning: no connected worker runs type '%s'; the "
                    "job waits until one does\n",
                    type);
        rc = c->given[S_OPT_WATCH] ? s_watch(c, cl, id, wait_ms) : 0;
    }
    jobq_client_destroy(&cl);
    return rc;
}

static int
s_cmd_watch(s_cli_t *c)
{
    const char *id = c->args[1];
    int limit_ms, wait_ms;
    if (!s_id_ok(c, id) || !s_watch_limit(c, S_OPT_TIMEOUT, &limit_ms) ||
        !s_watch_limit(c, S_OPT_WAIT, &wait_ms))
        return 2;
    if (limit_ms < 0)
        limit_ms = wait_ms;
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    int rc = s_watch(c, cl, id, limit_ms);
    jobq_client_destroy(&cl);
    return rc;
}

//  The human summary of one job.
static void
s_print_job(s_cli_t *c, const jobq_job_info_t *job)
{
    char t1[40], t2[40], t3[40];
    char msg[JOBQ_MAX_MESSAGE_LEN + 4], e[JOBQ_MAX_ERROR_LEN + 4];
    FILE *o = c->out;
    fprintf(o, "id:         %s\n", job->id);
    fprintf(o, "type:       %s\n", job->type);
    fprintf(o, "shop:       %s\n", job->shop_id);
    fprintf(o, "status:     %s\n", jobq_status_name(job->status));
    fprintf(o, "progress:   %u%%\n", job->progress);
    fprintf(o, "message:    %s\n",
            job->message ? s_clean(msg, sizeof msg, job->message, sizeof msg)
                         : "-");
    fprintf(o, "error:      %s\n",
            job->error ? s_clean(e, sizeof e, job->error, sizeof e) : "-");
    fprintf(o, "attempts:   %u/%u\n", job->attempts, job->max_attempts);
    if (job->worker)
        fprintf(o, "worker:     %s\n", s_clean(e, sizeof e, job->worker, 64));
    char why[512];
    if (s_wait_text(why, sizeof why, job, false)[0])
        fprintf(o, "waiting:    %s\n", why);
    fprintf(o, "created:    %s\n", s_iso(t1, sizeof t1, job->created_at));
    fprintf(o, "started:    %s\n", s_iso(t2, sizeof t2, job->started_at));
    fprintf(o, "completed:  %s\n", s_iso(t3, sizeof t3, job->completed_at));
    fprintf(o, "input:      ");
    s_print_value(c, job->input);
    fprintf(o, "output:     ");
    s_print_value(c, job->output);
}

//  One job as the JSON document of --json. Returns the exit code.
static int
s_print_job_json(s_cli_t *c, const jobq_job_info_t *job)
{
    json_t *o = jobq_json_job(job);
    int rc = s_print_json(c, o, JSON_INDENT(2));
    json_decref(o);
    return rc;
}

//  status, cancel and retry: one id, one job back.
static int
s_cmd_by_id(s_cli_t *c)
{
    const char *id = c->args[1];
    if (!s_id_ok(c, id))
        return 2;
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    jobq_job_info_t job;
    memset(&job, 0, sizeof job);
    const char *name = c->cmd->name;
    int rc = strcmp(name, "status") == 0   ? jobq_client_status(cl, id, &job)
             : strcmp(name, "cancel") == 0 ? jobq_client_cancel(cl, id, &job)
                                           : jobq_client_retry(cl, id, &job);
    if (rc != JOBQ_OK) {
        rc = s_failed(c, cl, rc);
    } else if (c->given[S_OPT_JSON]) {
        rc = s_print_job_json(c, &job);
    } else if (strcmp(name, "status") == 0) {
        s_print_job(c, &job);
    } else {
        fprintf(c->out, "%s\n", jobq_status_name(job.status));
    }
    jobq_job_info_clear(&job);
    jobq_client_destroy(&cl);
    return rc;
}

static int
s_print_list_json(s_cli_t *c,
                  const jobq_job_info_t *jobs,
                  size_t n,
                  const char *next)
{
    json_t *o = json_object(), *a = json_array();
    int bad = !o || !a;
    for (size_t i = 0; !bad && i < n; i++)
        bad = json_array_append_new(a, jobq_json_job(&jobs[i]));
    bad |= json_object_set(o, "jobs", a);
    bad |= json_object_set_new(o, "next",
                               next[0] ? json_string(next) : json_null());
    int rc =
        bad ? s_print_json(c, NULL, 0) : s_print_json(c, o, JSON_INDENT(2));
    json_decref(a);
    json_decref(o);
    return rc;
}

static void
s_print_list(s_cli_t *c,
             const jobq_job_info_t *jobs,
             size_t n,
             const char *next)
{
    int tw = 4, sw = 4;  //  widths of the type and shop columns
    for (size_t i = 0; i < n; i++) {
        int t = (int) strlen(jobs[i].type), s = (int) strlen(jobs[i].shop_id);
        tw = t > tw ? t : tw;
        sw = s > sw ? s : sw;
    }
    if (n == 0) {
        fprintf(c->out, "no jobs\n");
    } else {
        fprintf(c->out, "%-16s  %-*s  %-*s  %-9s  %8s  %s\n", "ID", tw, "TYPE",
                sw, "SHOP", "STATUS", "PROGRESS", "UPDATED");
    }
    for (size_t i = 0; i < n; i++) {
        char upd[40];
        fprintf(c->out, "%-16s  %-*s  %-*s  %-9s  %7u%%  %s\n", jobs[i].id, tw,
                jobs[i].type, sw, jobs[i].shop_id,
                jobq_status_name(jobs[i].status), jobs[i].progress,
                s_iso(upd, sizeof upd, jobs[i].updated_at));
    }
    if (next[0])
        fprintf(c->out, "next: %s  (jobq list --cursor %s ...)\n", next, next);
}

static int
s_cmd_list(s_cli_t *c)
{
    jobq_list_t req = {NULL, NULL, -1, 0, NULL};
    long long limit = 0;
    if (c->given[S_OPT_SHOP]) {
        req.shop_id = c->val[S_OPT_SHOP];
        if (!s_shop_ok(c, "--shop", req.shop_id))
            return 2;
    }
    if (c->given[S_OPT_TYPE]) {
        req.type = c->val[S_OPT_TYPE];
        if (!s_type_ok(c, "--type", req.type))
            return 2;
    }
    if (c->given[S_OPT_STATUS]) {
        const char *s = c->val[S_OPT_STATUS];
        req.status = jobq_status_parse(s, strlen(s));
        if (req.status < 0)
            return s_misuse(c,
                            "unknown --status '%s' (pending, running, "
                            "completed, failed or cancelled)",
                            s);
    }
    if (c->given[S_OPT_LIMIT] &&
        !s_number(c, S_OPT_LIMIT, 1, JOBQ_MAX_LIST, &limit))
        return 2;
    req.limit = (uint32_t) limit;
    if (c->given[S_OPT_CURSOR]) {
        req.cursor = c->val[S_OPT_CURSOR];
        if (!s_id_ok(c, req.cursor))
            return 2;
    }
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    jobq_job_info_t *jobs = NULL;
    size_t n = 0;
    char next[JOBQ_ID_LEN + 1] = "";
    int rc = jobq_client_list(cl, &req, &jobs, &n, next);
    if (rc != JOBQ_OK)
        rc = s_failed(c, cl, rc);
    else if (c->given[S_OPT_JSON])
        rc = s_print_list_json(c, jobs, n, next);
    else
        s_print_list(c, jobs, n, next);
    jobq_job_list_free(&jobs, n);
    jobq_client_destroy(&cl);
    return rc;
}

//  An integer member of o (0 when missing or not an integer).
static long long
s_int(const json_t *o, const char *key)
{
    return (long long) json_integer_value(json_object_get(o, key));
}

static void
s_print_stats(s_cli_t *c, const json_t *st)
{
    FILE *o = c->out;
    const json_t *counts = json_object_get(st, "counts");
    const json_t *totals = json_object_get(st, "totals");
    const json_t *workers = json_object_get(st, "workers");
    const json_t *served = json_object_get(st, "served");
    int tw = 5;  //  width of the type column ("TOTAL")
    const char *type;
    json_t *row;
    json_object_foreach((json_t *) counts, type, row)
    {
        int n = (int) strlen(type);
        tw = n > tw && n <= JOBQ_MAX_TYPE_LEN ? n : tw;
    }
    json_object_foreach((json_t *) served, type, row)
    {
        int n = (int) strlen(type);
        tw = n > tw && n <= JOBQ_MAX_TYPE_LEN ? n : tw;
    }
    fprintf(o, "%-*s", tw, "TYPE");
    for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
        fprintf(o, "  %9s", jobq_status_name(s));
    fprintf(o, "  %9s  %7s\n", "total", "workers");
    //  Every type with jobs, then the types workers run that have none.
    long long stranded = 0;
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach((json_t *) (pass ? served : counts), type, row)
        {
            if (pass && json_object_get(counts, type))
                continue;
            char name[JOBQ_MAX_TYPE_LEN + 4];
            long long sum = 0;
            long long nw = s_int(served, type);
            fprintf(o, "%-*s", tw,
                    s_clean(name, sizeof name, type, JOBQ_MAX_TYPE_LEN));
            for (int s = 0; s < JOBQ_STATUS_COUNT_; s++) {
                long long v = pass ? 0 : s_int(row, jobq_status_name(s));
                sum += v;
                fprintf(o, "  %9lld", v);
            }
            long long pending = pass ? 0 : s_int(row, "pending");
            fprintf(o, "  %9lld  %7lld%s\n", sum, nw,
                    pending && !nw ? "  <- no worker" : "");
            stranded += pending && !nw ? pending : 0;
        }
    }
    long long sum = 0;
    fprintf(o, "%-*s", tw, "TOTAL");
    for (int s = 0; s < JOBQ_STATUS_COUNT_; s++) {
        long long v = s_int(totals, jobq_status_name(s));
        sum += v;
        fprintf(o, "  %9lld", v);
    }
    fprintf(o, "  %9lld\n", sum);
    //  A key of some shops gets its shops' counts, not the types'.
    const json_t *shops = json_object_get(st, "shops");
    if (json_object_size(shops)) {
        fprintf(o, "\n%-*s", tw, "SHOP");
        for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
            fprintf(o, "  %9s", jobq_status_name(s));
        fprintf(o, "  %11s\n", "bytes");
        const char *shop;
        json_object_foreach((json_t *) shops, shop, row)
        {
            char name[JOBQ_MAX_SHOP_LEN + 4];
            fprintf(o, "%-*s", tw,
                    s_clean(name, sizeof name, shop, JOBQ_MAX_SHOP_LEN));
            for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
                fprintf(o, "  %9lld", s_int(row, jobq_status_name(s)));
            fprintf(o, "  %11lld\n", s_int(row, "bytes"));
        }
    }
    if (stranded)
        fprintf(o,
                stranded == 1
                    ? "\n%lld pending job is of a type no connected worker "
                      "runs: it waits until one does\n"
                    : "\n%lld pending jobs are of types no connected worker "
                      "runs: they wait until one does\n",
                stranded);

    if (!workers)
        return;  //  a key of some shops is not told of the workers
    fprintf(o, "\nworkers: %zu  capacity: %lld  busy: %lld\n",
            json_array_size(workers), s_int(st, "capacity"), s_int(st, "busy"));
    size_t i;
    json_t *w;
    json_array_foreach((json_t *) workers, i, w)
    {
        char name[80];
        const char *nm = json_string_value(json_object_get(w, "name"));
        fprintf(o, "  %-24s  %lld/%lld  ", s_clean(name, sizeof name, nm, 64),
                s_int(w, "active"), s_int(w, "capacity"));
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(w, "types"), k, t)
        {
            const char *ts = json_string_value(t);
            char tn[JOBQ_MAX_TYPE_LEN + 4];
            fprintf(o, "%s%s", k ? "," : "",
                    s_clean(tn, sizeof tn, ts, JOBQ_MAX_TYPE_LEN));
        }
        fprintf(o, "\n");
    }
}

static int
s_cmd_stats(s_cli_t *c)
{
    jobq_client_t *cl = s_connect(c);
    if (!cl)
        return 2;
    jobq_bytes_t body = {NULL, 0};
    int rc = jobq_client_stats(cl, &body);
    if (rc != JOBQ_OK) {
        rc = s_failed(c, cl, rc);
        jobq_client_destroy(&cl);
        return rc;
    }
    jobq_client_destroy(&cl);
    json_t *st = jobq_json_from_mp(body);
    free((void *) body.ptr);
    if (!json_is_object(st)) {
        json_decref(st);
        fprintf(c->err, "jobq: the broker's stats reply is not readable\n");
        return 1;
    }
    json_object_del(st, "rid");
    rc = 0;
    if (c->given[S_OPT_JSON])
        rc = s_print_json(c, st, JSON_INDENT(2));
    else
        s_print_stats(c, st);
    json_decref(st);
    return rc;
}

//  A key file name from a path's last part: [A-Za-z0-9_-], others as '-'.
static void
s_key_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = 0;
    for (; base[n] && n + 1 < cap && n < 64; n++) {
        char ch = base[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        out[n] = ok ? ch : '-';
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "key");
}

static int
s_cmd_keygen(s_cli_t *c)
{
    const char *path = c->args[1];
    char name[65];
    if (c->given[S_OPT_NAME]) {
        const char *v = c->val[S_OPT_NAME];
        size_t n = strlen(v);
        bool ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                 (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '-';
        if (!ok)
            return s_misuse(c, "--name: use 1-64 of [A-Za-z0-9_-]");
        snprintf(name, sizeof name, "%s", v);
    } else {
        s_key_name(path, name, sizeof name);
    }
    char pub[JOBQ_CURVE_Z85_LEN + 1], why[512];
    int rc = jobq_curve_keygen(path, name, pub, why, sizeof why);
    if (rc != JOBQ_OK) {
        fprintf(c->err, "jobq: %s\n", why);
        return rc == JOBQ_EEXIST || rc == JOBQ_EINVAL ? 2 : 1;
    }
    fprintf(c->out,
            "wrote %s (public) and %s_secret (secret, mode 0600)\n"
            "public key: %s\n"
            "for the broker's key file (roles: client, reader, watcher, "
            "worker, admin; shops: a,b or *):\n"
            "%s  ROLES  SHOPS  %s\n",
            path, path, pub, name, pub);
    return 0;
}

static int
s_cmd_help(s_cli_t *c)
{
    fputs(s_usage_text, c->out);
    return 0;
}

static const s_cmd_t s_cmds[] = {
    {"enqueue", s_cmd_enqueue, 1, "one job type",
     S_BIT(S_OPT_SHOP) | S_BIT(S_OPT_INPUT) | S_BIT(S_OPT_PRIORITY) |
         S_BIT(S_OPT_DELAY) | S_BIT(S_OPT_MAX_ATTEMPTS) | S_BIT(S_OPT_TIMEOUT) |
         S_BIT(S_OPT_KEY) | S_BIT(S_OPT_WATCH) | S_BIT(S_OPT_WAIT)},
    {"status", s_cmd_by_id, 1, "one job id", S_BIT(S_OPT_JSON)},
    {"watch", s_cmd_watch, 1, "one job id",
     S_BIT(S_OPT_TIMEOUT) | S_BIT(S_OPT_WAIT)},
    {"list", s_cmd_list, 0, "no arguments",
     S_BIT(S_OPT_SHOP) | S_BIT(S_OPT_TYPE) | S_BIT(S_OPT_STATUS) |
         S_BIT(S_OPT_LIMIT) | S_BIT(S_OPT_CURSOR) | S_BIT(S_OPT_JSON)},
    {"cancel", s_cmd_by_id, 1, "one job id", S_BIT(S_OPT_JSON)},
    {"retry", s_cmd_by_id, 1, "one job id", S_BIT(S_OPT_JSON)},
    {"stats", s_cmd_stats, 0, "no arguments", S_BIT(S_OPT_JSON)},
    {"keygen", s_cmd_keygen, 1, "one path", S_BIT(S_OPT_NAME)},
    {"help", s_cmd_help, -1, NULL, 0},
};

//  Endpoint from an option, else the environment, else the default.
static bool
s_endpoint(s_cli_t *c,
           s_opt_t o,
           const char *env,
           const char *dflt,
           char *dst,
           size_t cap)
{
    const char *v = c->given[o] ? c->val[o] : getenv(env);
    if (!v || !v[0])
        v = dflt;
    const char *what = c->given[o] ? s_optdefs[o].name : env;
    if (strlen(v) >= cap) {
        s_misuse(c, "%s endpoint is longer than %zu bytes", what, cap - 1);
        return false;
    }
    char why[128];
    if (jobq_endpoints_check(v, why, sizeof why) != JOBQ_OK) {
        s_misuse(c, "%s: %s", what, why);
        return false;
    }
    snprintf(dst, cap, "%s", v);
    return true;
}

int
jobq_cli_run(int argc,
             char **argv,
             FILE *out,
             FILE *err,
             volatile sig_atomic_t *interrupt)
{
    s_cli_t c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.err = err;
    c.interrupt = interrupt;
    c.timeout_ms = S_DEFAULT_TIMEOUT_MS;
    int rc = s_parse(&c, argc, argv);
    if (rc != 0)
        return rc;
    if (c.given[S_OPT_HELP])
        return s_cmd_help(&c);
    if (c.given[S_OPT_VERSION]) {
        fprintf(out, "jobq %s\n", JOBQ_VERSION_STRING);
        return 0;
    }
    long long ms;
    if (!s_endpoint(&c, S_OPT_BROKER, "JOBQ_BROKER", S_DEFAULT_BROKER, c.broker,
                    sizeof c.broker) ||
        !s_endpoint(&c, S_OPT_EVENTS, "JOBQ_EVENTS", S_DEFAULT_EVENTS, c.events,
                    sizeof c.events))
        return 2;
    if (c.given[S_OPT_TIMEOUT_MS]) {
        if (!s_number(&c, S_OPT_TIMEOUT_MS, 1, S_MAX_TIMEOUT_MS, &ms))
            return 2;
        c.timeout_ms = (int) ms;
    }
    if (c.nargs == 0) {
        s_misuse(&c, "no command given");
        fputs(s_usage_text, err);
        return 2;
    }
    for (size_t i = 0; i < sizeof s_cmds / sizeof s_cmds[0]; i++) {
        if (strcmp(s_cmds[i].name, c.args[0]) == 0)
            c.cmd = &s_cmds[i];
    }
    if (!c.cmd)
        return s_misuse(&c, "unknown command '%s' (see jobq --help)",
                        c.args[0]);
    for (int o = 0; o < S_OPT_COUNT_; o++) {
        if (c.given[o] && !(S_BIT(o) & (S_GLOBAL_OPTS | c.cmd->opts)))
            return s_misuse(&c, "%s does not take %s", c.cmd->name,
                            s_optdefs[o].name);
    }
    int words = c.nargs - 1;
    if (c.cmd->nargs >= 0 && words != c.cmd->nargs)
        return s_misuse(&c, "%s takes %s (got %d argument%s)", c.cmd->name,
                        c.cmd->what, words, words == 1 ? "" : "s");
    if (c.cmd->run != s_cmd_keygen && c.cmd->run != s_cmd_help) {
        char why[512];
        rc = jobq_curve_setup(
            &c.curve, c.given[S_OPT_CERT] ? c.val[S_OPT_CERT] : NULL,
            c.given[S_OPT_BROKER_KEY] ? c.val[S_OPT_BROKER_KEY] : NULL, why,
            sizeof why);
        if (rc != JOBQ_OK && rc != JOBQ_ENOTFOUND)
            return s_misuse(&c, "%s", why);
        c.has_curve = rc == JOBQ_OK;
    }
    return c.cmd->run(&c);
}
