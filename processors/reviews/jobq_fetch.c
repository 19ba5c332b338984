/*  jobq_fetch.c: libcurl behind the bounds of jobq_fetch.h. */
#include "jobq_fetch.h"

#include <curl/curl.h>

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

//  Growth of the body buffer: doubles from this, up to max_bytes + 1.
#define S_FIRST_CHUNK (64u << 10)

struct jobq_fetch {
    jobq_fetch_opts_t opts;            //  copy; user_agent points below
    char user_agent[256];              //  copy of opts.user_agent
    CURL *curl;                        //  reused across fetches
    struct curl_slist *headers;        //  Accept
    char curl_error[CURL_ERROR_SIZE];  //  libcurl's message of a try
    char *buf;                         //  body being received
    size_t len;                        //  bytes in buf
    size_t cap;                        //  bytes allocated
    bool too_big;                      //  the body passed max_bytes
    bool oom;                          //  buf could not grow
    bool cancelled;                    //  aborted by opts.cancelled
    bool refused;                      //  the guard refused an address
};

//  Called by libcurl for every socket it would open: the address it is
//  about to connect to, after DNS, for the URL and every redirect.
static curl_socket_t
s_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    jobq_fetch_t *self = arg;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        !jobq_netguard_addr_ok(self->opts.guard, &a->addr)) {
        self->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t
s_on_data(char *data, size_t size, size_t n, void *arg)
{
    jobq_fetch_t *self = arg;
    size_t len = size * n;
    if (len > self->opts.max_bytes - self->len) {
        self->too_big = true;
        return 0;  //  aborts the transfer with CURLE_WRITE_ERROR
    }
    if (self->len + len + 1 > self->cap) {
        size_t cap = self->cap ? self->cap : S_FIRST_CHUNK;
        while (cap < self->len + len + 1)
            cap *= 2;
        if (cap > self->opts.max_bytes + 1)
            cap = self->opts.max_bytes + 1;
        char *p = realloc(self->buf, cap);
        if (!p) {
            self->oom = true;
            return 0;
        }
        self->buf = p;
        self->cap = cap;
    }
    memcpy(self->buf + self->len, data, len);
    self->len += len;
    self->buf[self->len] = '\0';
    return len;
}

//  Called by libcurl at least once a second during a transfer.
static int
s_on_progress(void *arg,
              curl_off_t dltotal,
              curl_off_t dlnow,
              curl_off_t ultotal,
              curl_off_t ulnow)
{
    (void) dlnow;
    (void) ultotal;
    (void) ulnow;
    jobq_fetch_t *self = arg;
    //  A compressed body's announced size already says too much.
    if (dltotal > 0 && (uint64_t) dltotal > self->opts.max_bytes) {
        self->too_big = true;
        return 1;
    }
    if (self->opts.cancelled && self->opts.cancelled(self->opts.arg)) {
        self->cancelled = true;
        return 1;
    }
    return 0;
}

jobq_fetch_t *
jobq_fetch_new(const jobq_fetch_opts_t *opts)
{
    jobq_fetch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (opts->user_agent) {
        snprintf(self->user_agent, sizeof self->user_agent, "%s",
                 opts->user_agent);
        self->opts.user_agent = self->user_agent;
    }
    self->curl = curl_easy_init();
    self->headers = curl_slist_append(
        NULL, "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.1");
    if (!self->curl || !self->headers) {
        jobq_fetch_destroy(&self);
        return NULL;
    }
    CURL *c = self->curl;
    //  Slot threads must not get signals from libcurl's resolver timeouts.
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    bool files = opts->guard && opts->guard->files_dir[0];
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                     files ? "http,https,file" : "http,https");
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, self);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long) opts->max_redirects);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) opts->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) opts->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t) opts->max_bytes);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, self->headers);
    if (self->opts.user_agent)
        curl_easy_setopt(c, CURLOPT_USERAGENT, self->opts.user_agent);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, self);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, s_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, self);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, self->curl_error);
    return self;
}

void
jobq_fetch_destroy(jobq_fetch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_fetch_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup(self->curl);
    curl_slist_free_all(self->headers);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

void
jobq_fetch_result_clear(jobq_fetch_result_t *res)
{
    free(res->body);
    res->body = NULL;
    res->len = 0;
}

static int
s_wait(jobq_fetch_t *self, uint64_t ms)
{
    if (self->opts.wait)
        return self->opts.wait(self->opts.arg, ms);
    struct timespec ts = {(time_t) (ms / 1000), (long) (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    return JOBQ_OK;
}

//  The one answer to every URL the guard refuses, whatever is behind it.
static int
s_refused(const char *url, jobq_fetch_result_t *res)
{
    snprintf(res->error, sizeof res->error,
             "refused to fetch %.200s: not an address this worker may "
             "reach (see jobq-worker --allow-private, --allow-files)",
             url);
    return JOBQ_EINVAL;
}

//  A file:// URL: the real path it names in the allowed directory, as a
//  file URL in out (cap bytes). JOBQ_OK, JOBQ_ENOTFOUND (inside, but
//  missing), JOBQ_EINVAL (refused or not a file URL to take), JOBQ_ENOMEM.
static int
s_file_url(const jobq_fetch_t *self, const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    if (!u)
        return JOBQ_ENOMEM;
    char *host = NULL, *path = NULL, *s = NULL;
    char real[PATH_MAX];
    int rc = JOBQ_EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK &&
        (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host ||
         strcmp(host, "localhost") == 0))
        rc = jobq_netguard_file(self->opts.guard, path, real, sizeof real);
    if (rc == JOBQ_OK &&
        (curl_url_set(u, CURLUPART_PATH, real, CURLU_URLENCODE) != CURLUE_OK ||
         curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK))
        rc = JOBQ_ENOMEM;
    if (rc == JOBQ_OK && strlen(s) >= cap)
        rc = JOBQ_EINVAL;
    if (rc == JOBQ_OK)
        memcpy(out, s, strlen(s) + 1);
    curl_free(s);
    curl_free(path);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

//  Translate the outcome of one try.
static int
s_curl_error(jobq_fetch_t *self,
             CURLcode cc,
             const char *url,
             jobq_fetch_result_t *res)
{
    const char *detail =
        self->curl_error[0] ? self->curl_error : curl_easy_strerror(cc);
    if (self->cancelled) {
        snprintf(res->error, sizeof res->error,
                 "cancelled while fetching %.200s", url);
        return JOBQ_ECANCELLED;
    }
    if (self->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(res->error, sizeof res->error,
                 "body of %.200s is larger than %zu bytes", url,
                 self->opts.max_bytes);
        return JOBQ_ETOOBIG;
    }
    if (self->oom)
        return JOBQ_ENOMEM;
    if (self->refused && cc == CURLE_COULDNT_CONNECT)
        return s_refused(url, res);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(res->error, sizeof res->error,
                 "timed out fetching %.200s (connect %llu ms, total %llu ms)",
                 url, (unsigned long long) self->opts.connect_timeout_ms,
                 (unsigned long long) self->opts.timeout_ms);
        return JOBQ_ETIMEOUT;
    case CURLE_FILE_COULDNT_READ_FILE:
        snprintf(res->error, sizeof res->error, "cannot read %.200s", url);
        return JOBQ_ENOTFOUND;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_BAD_CONTENT_ENCODING:
        snprintf(res->error, sizeof res->error, "fetching %.200s: %.80s", url,
                 detail);
        return JOBQ_EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return JOBQ_ENOMEM;
    default:
        snprintf(res->error, sizeof res->error, "fetching %.200s: %.80s", url,
                 detail);
        return JOBQ_EUNAVAILABLE;
    }
}

//  The pause before try number `done + 1`, after `done` tries.
static uint64_t
s_backoff(jobq_fetch_t *self, unsigned done)
{
    curl_off_t after = -1;
    uint64_t ms;
    if (curl_easy_getinfo(self->curl, CURLINFO_RETRY_AFTER, &after) ==
            CURLE_OK &&
        after > 0)
        ms = (uint64_t) after > UINT64_MAX / 1000 ? UINT64_MAX
                                                  : (uint64_t) after * 1000;
    else
        ms = 500ull << (done > 16 ? 16 : done - 1);
    return ms < self->opts.max_retry_wait_ms ? ms
                                             : self->opts.max_retry_wait_ms;
}

int
jobq_fetch_get(jobq_fetch_t *self, const char *url, jobq_fetch_result_t *res)
{
    memset(res, 0, sizeof *res);
    snprintf(res->url, sizeof res->url, "%s", url);
    if (strlen(url) > JOBQ_FETCH_MAX_URL) {
        snprintf(res->error, sizeof res->error, "URL longer than %d bytes",
                 JOBQ_FETCH_MAX_URL);
        return JOBQ_EINVAL;
    }
    char file[JOBQ_FETCH_MAX_URL * 3 + 1];
    //  By its first letters: libcurl refuses to parse some file URLs (with
    //  a host), and those are refused like any other outside the guard.
    if (strncasecmp(url, "file:", 5) == 0) {
        int rc = s_file_url(self, url, file, sizeof file);
        if (rc == JOBQ_ENOTFOUND)
            snprintf(res->error, sizeof res->error, "cannot read %.200s", url);
        else if (rc == JOBQ_EINVAL)
            return s_refused(url, res);
        if (rc != JOBQ_OK)
            return rc;
        curl_easy_setopt(self->curl, CURLOPT_URL, file);
    } else {
        curl_easy_setopt(self->curl, CURLOPT_URL, url);
    }
    for (;;) {
        self->len = 0;
        self->too_big = self->oom = self->cancelled = self->refused = false;
        self->curl_error[0] = '\0';
        res->tries++;
        CURLcode cc = curl_easy_perform(self->curl);
        if (cc != CURLE_OK)
            return s_curl_error(self, cc, url, res);
        long status = 0;
        char *ctype = NULL, *eff = NULL;
        curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(self->curl, CURLINFO_CONTENT_TYPE, &ctype);
        curl_easy_getinfo(self->curl, CURLINFO_EFFECTIVE_URL, &eff);
        res->status = status;
        snprintf(res->content_type, sizeof res->content_type, "%s",
                 ctype ? ctype : "");
        if (eff)
            snprintf(res->url, sizeof res->url, "%s", eff);
        //  file:// has no status; http always has one.
        if (status == 0 || (status >= 200 && status < 300)) {
            res->body = self->buf ? self->buf : calloc(1, 1);
            if (!res->body)
                return JOBQ_ENOMEM;
            res->len = self->len;
            self->buf = NULL;
            self->len = self->cap = 0;
            return JOBQ_OK;
        }
        bool again = status == 429 || (status >= 500 && status < 600);
        if (!again || res->tries > self->opts.retries) {
            if (again)
                snprintf(res->error, sizeof res->error,
                         "HTTP %ld from %.200s after %u %s", status, url,
                         res->tries, res->tries == 1 ? "try" : "tries");
            else
                snprintf(res->error, sizeof res->error, "HTTP %ld from %.200s",
                         status, url);
            return JOBQ_EFAILED;
        }
        uint64_t ms = s_backoff(self, res->tries);
        res->waited_ms += ms;
        if (s_wait(self, ms) != JOBQ_OK) {
            snprintf(res->error, sizeof res->error,
                     "cancelled while waiting to retry %.200s", url);
            return JOBQ_ECANCELLED;
        }
    }
}

int
jobq_url_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    //  HTML strips ASCII white space around an href.
    while (*ref && strchr(" \t\n\r\f", *ref))
        ref++;
    size_t n = strlen(ref);
    while (n && strchr(" \t\n\r\f", ref[n - 1]))
        n--;
    if (n > JOBQ_FETCH_MAX_URL)
        return JOBQ_ETOOBIG;
    char trimmed[JOBQ_FETCH_MAX_URL + 1];
    memcpy(trimmed, ref, n);
    trimmed[n] = '\0';
    CURLU *u = curl_url();
    if (!u)
        return JOBQ_ENOMEM;
    int rc = JOBQ_OK;
    char *s = NULL, *host = NULL;
    if ((base && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) ||
        curl_url_set(u, CURLUPART_URL, trimmed, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return JOBQ_EINVAL;
    }
    //  Host names are case-blind: one spelling, so a loop is seen as one.
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        for (char *p = host; *p; p++)
            *p = (char) tolower((unsigned char) *p);
        curl_url_set(u, CURLUPART_HOST, host, 0);
        curl_free(host);
    }
    if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
        rc = JOBQ_EINVAL;
    else if (strlen(s) >= cap || strlen(s) > JOBQ_FETCH_MAX_URL)
        rc = JOBQ_ETOOBIG;
    else
        memcpy(out, s, strlen(s) + 1);
    curl_free(s);
    curl_url_cleanup(u);
    return rc;
}

int
jobq_url_scheme(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    if (!u)
        return JOBQ_ENOMEM;
    char *s = NULL;
    int rc = JOBQ_EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
        strlen(s) < cap) {
        for (size_t i = 0; s[i]; i++)
            out[i] = (char) tolower((unsigned char) s[i]);
        out[strlen(s)] = '\0';
        rc = JOBQ_OK;
    }
    curl_free(s);
    curl_url_cleanup(u);
    return rc;
}
