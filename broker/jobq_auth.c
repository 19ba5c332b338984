/*  jobq_auth.c: ZAP handler and key table (jobq_auth.h). */
#include "jobq_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_SEEN_MAX     4096  //  (key, address) pairs remembered
#define S_ADDR_MAX     64    //  bytes of an address kept

typedef struct {
    char z85[JOBQ_KEY_Z85_LEN + 1];
    char address[S_ADDR_MAX];
} s_seen_t;

#define S_CAUSES 4  //  JOBQ_AUTH_NOT_CURVE .. JOBQ_AUTH_FULL

struct jobq_auth {
    char *path;             //  the key file
    jobq_keys_t *keys;      //  current
    void *zap;              //  REP bound at S_ZAP_ENDPOINT
    const jobq_log_t *log;  //  borrowed
    s_seen_t *seen;         //  where each key came from
    size_t nseen;           //  entries in seen
    bool seen_overflow;     //  some were not remembered
    s_seen_t *gone;         //  addresses of keys removed by the last reload
    size_t ngone;
    bool gone_all;  //  a key was removed and seen_overflow was set
    uint64_t refused[S_CAUSES];
    uint64_t logged[S_CAUSES];
    uint64_t quiet_until;
    char last[S_CAUSES][160];
};

jobq_auth_t *
jobq_auth_new(void *ctx,
              const char *keys_path,
              const jobq_log_t *log,
              char *why,
              size_t why_len)
{
    jobq_auth_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(keys_path)) ||
        !(self->seen = calloc(S_SEEN_MAX, sizeof *self->seen)) ||
        !(self->gone = calloc(S_SEEN_MAX, sizeof *self->gone))) {
        snprintf(why, why_len, "out of memory");
        jobq_auth_destroy(&self);
        return NULL;
    }
    self->log = log;
    if (jobq_keys_load(keys_path, &self->keys, why, why_len) != JOBQ_OK) {
        jobq_auth_destroy(&self);
        return NULL;
    }
    self->zap = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!self->zap ||
        zmq_setsockopt(self->zap, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(self->zap, S_ZAP_ENDPOINT) != 0) {
        snprintf(why, why_len, "cannot bind the ZAP handler: %s",
                 zmq_strerror(zmq_errno()));
        jobq_auth_destroy(&self);
        return NULL;
    }
    return self;
}

void
jobq_auth_destroy(jobq_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_auth_t *self = *self_p;
    if (self->zap)
        zmq_close(self->zap);
    jobq_keys_destroy(&self->keys);
    free(self->seen);
    free(self->gone);
    free(self->path);
    free(self);
    *self_p = NULL;
}

void *
jobq_auth_socket(jobq_auth_t *self)
{
    return self->zap;
}

size_t
jobq_auth_count(const jobq_auth_t *self)
{
    return jobq_keys_count(self->keys);
}

static void
s_remember(jobq_auth_t *self, const char *z85, const char *address)
{
    for (size_t i = 0; i < self->nseen; i++)
        if (strcmp(self->seen[i].z85, z85) == 0 &&
            strcmp(self->seen[i].address, address) == 0)
            return;
    if (self->nseen == S_SEEN_MAX) {
        self->seen_overflow = true;
        return;
    }
    s_seen_t *s = &self->seen[self->nseen++];
    snprintf(s->z85, sizeof s->z85, "%s", z85);
    snprintf(s->address, sizeof s->address, "%s", address);
}

static bool
s_is(const jobq_zap_frame_t *f, const char *s)
{
    size_t n = strlen(s);
    return f->len == n && memcmp(f->ptr, s, n) == 0;
}

int
jobq_auth_check(jobq_keys_t *keys,
                const jobq_zap_frame_t *f,
                int n,
                const bool reserve_only[3],
                char *user,
                const char **text)
{
    user[0] = '\0';
    //  version, request id, domain, address, identity, mechanism, key
    if (n != 7 || !s_is(&f[0], "1.0") || !s_is(&f[5], "CURVE") ||
        f[6].len != 32) {
        *text = "CURVE only";
        return JOBQ_AUTH_NOT_CURVE;
    }
    zmq_z85_encode(user, f[6].ptr, 32);
    jobq_key_t *k = jobq_keys_find(keys, user, JOBQ_KEY_Z85_LEN);
    if (!k) {
        *text = "unknown key";
        return JOBQ_AUTH_UNKNOWN_KEY;
    }
    int e = s_is(&f[2], JOBQ_AUTH_CLIENTS)   ? 0
            : s_is(&f[2], JOBQ_AUTH_WORKERS) ? 1
            : s_is(&f[2], JOBQ_AUTH_EVENTS)  ? 2
                                             : -1;
    unsigned need =
        e == 0   ? JOBQ_ROLE_CLIENT | JOBQ_ROLE_READER
        : e == 1 ? JOBQ_ROLE_WORKER
        : e == 2 ? JOBQ_ROLE_CLIENT | JOBQ_ROLE_READER | JOBQ_ROLE_WATCHER
                 : JOBQ_ROLE_ADMIN;
    if (!jobq_key_can(k, need)) {
        *text = "this key's roles do not include this endpoint";
        return JOBQ_AUTH_WRONG_ROLE;
    }
    if (e >= 0 && reserve_only && reserve_only[e] &&
        !jobq_key_can(k, JOBQ_ROLE_WORKER | JOBQ_ROLE_ADMIN)) {
        *text = "too many connections";
        return JOBQ_AUTH_FULL;
    }
    *text = "OK";
    return -1;
}

uint32_t
jobq_auth_serve(jobq_auth_t *self, const bool reserve_only[3], uint32_t max)
{
    uint32_t served = 0;
    while (served < max) {
        zmq_msg_t f[8];
        int n = 0;
        bool more = true;
        while (more) {
            //  Frames past the eighth go into the last slot, replacing it
            //  (such a request is refused anyway).
            zmq_msg_t *part = &f[n < 8 ? n : 7];
            if (n >= 8)
                zmq_msg_close(part);
            zmq_msg_init(part);
            if (zmq_msg_recv(part, self->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(part);
                break;
            }
            more = zmq_msg_more(part);
            n++;
        }
        if (n > 8) {
            n = 8;
            more = true;  //  refuse it
        }
        if (n == 0)
            break;
        served++;
        char user[JOBQ_KEY_Z85_LEN + 1] = "";
        const char *text = "";
        jobq_zap_frame_t spans[8];
        for (int i = 0; i < n; i++)
            spans[i] =
                (jobq_zap_frame_t){zmq_msg_data(&f[i]), zmq_msg_size(&f[i])};
        int cause = jobq_auth_check(self->keys, spans, more ? 0 : n,
                                    reserve_only, user, &text);
        char address[S_ADDR_MAX] = "";
        if (n > 3) {
            size_t al = spans[3].len < sizeof address - 1 ? spans[3].len
                                                          : sizeof address - 1;
            memcpy(address, spans[3].ptr, al);
            address[al] = '\0';
        }
        if (cause < 0)
            s_remember(self, user, address);
        if (cause >= 0) {
            self->refused[cause]++;
            snprintf(self->last[cause], sizeof self->last[cause],
                     "%s from %s%s%s", text, address[0] ? address : "?",
                     user[0] ? ", key " : "", user);
            user[0] = '\0';
        }
        //  The reply: version, request id, status, text, user id, metadata.
        const char *status = cause >= 0 ? "400" : "200";
        zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
        if (n > 1)
            zmq_send(self->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
                     ZMQ_SNDMORE);
        else
            zmq_send(self->zap, "", 0, ZMQ_SNDMORE);
        zmq_send(self->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(self->zap, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(self->zap, user, strlen(user), ZMQ_SNDMORE);
        zmq_send(self->zap, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    return served;
}

jobq_key_t *
jobq_auth_who(jobq_auth_t *self, const char *user)
{
    return user ? jobq_keys_find(self->keys, user, strlen(user)) : NULL;
}

int
jobq_auth_reload(jobq_auth_t *self, size_t *removed, char *why, size_t why_len)
{
    jobq_keys_t *fresh;
    int rc = jobq_keys_load(self->path, &fresh, why, why_len);
    if (rc != JOBQ_OK)
        return rc;
    jobq_keys_carry(fresh, self->keys);
    *removed = 0;
    size_t changed = 0;
    for (size_t i = 0; i < jobq_keys_count(self->keys); i++) {
        jobq_key_t *k = jobq_keys_at(self->keys, i);
        jobq_key_t *n = jobq_keys_find(fresh, k->z85, JOBQ_KEY_Z85_LEN);
        if (!n)
            (*removed)++;
        else if (!jobq_key_same(k, n))
            changed++;
    }
    //  Where the removed and the changed keys came from (what they hold
    //  open, subscriptions above all, was let in under the old rights);
    //  their entries are forgotten.
    self->ngone = 0;
    self->gone_all = *removed + changed > 0 && self->seen_overflow;
    size_t kept = 0;
    for (size_t i = 0; i < self->nseen; i++) {
        jobq_key_t *o =
            jobq_keys_find(self->keys, self->seen[i].z85, JOBQ_KEY_Z85_LEN);
        jobq_key_t *n =
            jobq_keys_find(fresh, self->seen[i].z85, JOBQ_KEY_Z85_LEN);
        if (n && o && jobq_key_same(o, n)) {
            self->seen[kept++] = self->seen[i];
            continue;
        }
        bool dup = false;
        for (size_t g = 0; g < self->ngone && !dup; g++)
            dup = strcmp(self->gone[g].address, self->seen[i].address) == 0;
        if (!dup)
            self->gone[self->ngone++] = self->seen[i];
    }
    self->nseen = kept;
    if (self->gone_all)
        self->seen_overflow = false;
    jobq_keys_destroy(&self->keys);
    self->keys = fresh;
    return JOBQ_OK;
}

bool
jobq_auth_removed_from(const jobq_auth_t *self, const char *address)
{
    if (self->gone_all)
        return true;
    for (size_t g = 0; g < self->ngone; g++)
        if (strcmp(self->gone[g].address, address) == 0)
            return true;
    return false;
}

void
jobq_auth_log(jobq_auth_t *self,
              uint64_t now_ms,
              uint64_t interval_ms,
              bool all)
{
    if (!all && now_ms < self->quiet_until)
        return;
    bool any = false;
    for (int c = 0; c < S_CAUSES; c++) {
        uint64_t n = self->refused[c] - self->logged[c];
        if (!n)
            continue;
        any = true;
        JOBQ_LOG(self->log, JOBQ_LOG_WARN,
                 "refused %llu connection%s; the last: %s",
                 (unsigned long long) n, n == 1 ? "" : "s", self->last[c]);
        self->logged[c] = self->refused[c];
    }
    if (any)
        self->quiet_until = now_ms + interval_ms + 1;
}
