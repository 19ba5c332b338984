/*  jobq_tokens.c: the gateway's --tokens file (jobq_tokens.h). */
#include "jobq_tokens.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq/jobq_types.h"

struct jobq_tokens {
    jobq_token_t *t;
    size_t n;
    pthread_mutex_t mu;  //  the rate buckets
};

static bool
s_token_ok(const char *s, size_t len)
{
    if (len < 16 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("._~+/=-", c)))
            return false;
    }
    return true;
}

void
jobq_tokens_destroy(jobq_tokens_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_tokens_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        for (size_t k = 0; k < self->t[i].nshops; k++)
            free(self->t[i].shops[k]);
        free(self->t[i].shops);
    }
    free(self->t);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

//  One line's fields into t; false with why.
static bool
s_line(char *line, jobq_token_t *t, char *why, size_t why_len)
{
    char *save = NULL;
    char *tok = strtok_r(line, " \t", &save);
    char *role = strtok_r(NULL, " \t", &save);
    char *shops = strtok_r(NULL, " \t", &save);
    char *opt = strtok_r(NULL, " \t", &save);
    if (!tok || !role || !shops || (opt && strtok_r(NULL, " \t", &save))) {
        snprintf(why, why_len, "expected TOKEN ROLE SHOPS [rate=N]");
        return false;
    }
    t->rate = -1;
    if (opt) {
        char *end = NULL;
        long long r =
            strncmp(opt, "rate=", 5) == 0 && opt[5] >= '0' && opt[5] <= '9'
                ? strtoll(opt + 5, &end, 10)
                : -1;
        if (r < 0 || *end || r > JOBQ_TOKEN_RATE_MAX) {
            snprintf(why, why_len, "rate=N: N from 0 (no limit) to %d",
                     JOBQ_TOKEN_RATE_MAX);
            return false;
        }
        t->rate = r;
    }
    if (!s_token_ok(tok, strlen(tok))) {
        snprintf(why, why_len, "a token is 16 to 128 of [A-Za-z0-9._~+/=-]");
        return false;
    }
    snprintf(t->token, sizeof t->token, "%s", tok);
    t->role = strcmp(role, "read") == 0    ? JOBQ_TOKEN_READ
              : strcmp(role, "write") == 0 ? JOBQ_TOKEN_WRITE
              : strcmp(role, "admin") == 0 ? JOBQ_TOKEN_ADMIN
                                           : 0;
    if (!t->role) {
        snprintf(why, why_len, "role: read, write or admin");
        return false;
    }
    if (strcmp(shops, "*") == 0) {
        t->all_shops = true;
        return true;
    }
    if (t->role == JOBQ_TOKEN_ADMIN) {
        snprintf(why, why_len, "an admin token has every shop: use *");
        return false;
    }
    t->shops = calloc(JOBQ_TOKEN_SHOPS_MAX, sizeof *t->shops);
    if (!t->shops) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    for (char *s = strtok_r(shops, ",", &save); s;
         s = strtok_r(NULL, ",", &save)) {
        size_t len = strlen(s);
        bool ok = len >= 1 && len <= JOBQ_MAX_SHOP_LEN;
        for (size_t i = 0; ok && i < len; i++) {
            char c = s[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
                 c == '-';
        }
        if (!ok) {
            snprintf(why, why_len, "bad shop id '%.64s'", s);
            return false;
        }
        if (t->nshops == JOBQ_TOKEN_SHOPS_MAX) {
            snprintf(why, why_len, "more than %d shops", JOBQ_TOKEN_SHOPS_MAX);
            return false;
        }
        t->shops[t->nshops] = strdup(s);
        if (!t->shops[t->nshops]) {
            snprintf(why, why_len, "out of memory");
            return false;
        }
        t->nshops++;
    }
    if (!t->nshops) {
        snprintf(why, why_len, "no shops");
        return false;
    }
    return true;
}

jobq_tokens_t *
jobq_tokens_load(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_len, "%s: cannot read it", path);
        return NULL;
    }
    jobq_tokens_t *self = calloc(1, sizeof *self);
    if (self)
        pthread_mutex_init(&self->mu, NULL);
    size_t cap = 0, lineno = 0;
    char line[8192], inner[200];
    bool bad = !self;
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(why, why_len, "%s: line %zu: longer than %zu bytes", path,
                     lineno, sizeof line - 2);
            bad = true;
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#')
            continue;
        if (self->n == JOBQ_TOKENS_MAX) {
            snprintf(why, why_len, "%s: more than %d tokens", path,
                     JOBQ_TOKENS_MAX);
            bad = true;
            break;
        }
        if (self->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            jobq_token_t *t = realloc(self->t, nc * sizeof *t);
            if (!t) {
                snprintf(why, why_len, "%s: out of memory", path);
                bad = true;
                break;
            }
            self->t = t;
            cap = nc;
        }
        jobq_token_t *t = &self->t[self->n++];
        memset(t, 0, sizeof *t);
        if (!s_line(p, t, inner, sizeof inner)) {
            snprintf(why, why_len, "%s: line %zu: %s", path, lineno, inner);
            bad = true;
        }
        for (size_t i = 0; !bad && i + 1 < self->n; i++)
            if (strcmp(self->t[i].token, t->token) == 0) {
                snprintf(why, why_len, "%s: line %zu: a token given twice",
                         path, lineno);
                bad = true;
            }
    }
    fclose(f);
    if (bad) {
        if (!self)
            snprintf(why, why_len, "%s: out of memory", path);
        jobq_tokens_destroy(&self);
        return NULL;
    }
    return self;
}

//  a and b equal, looking at every byte of the longer (no early exit).
static bool
s_same(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al > bl ? al : bl;
    unsigned diff = (unsigned) (al ^ bl);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < al ? (unsigned char) a[i] : 0;
        unsigned char y = i < bl ? (unsigned char) b[i] : 0;
        diff |= (unsigned) (x ^ y);
    }
    return diff == 0;
}

const jobq_token_t *
jobq_tokens_check(const jobq_tokens_t *self, const char *authorization)
{
    if (!self || !authorization || strncmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = authorization + 7;
    size_t len = strlen(tok);
    if (len > 128)
        return NULL;
    const jobq_token_t *found = NULL;
    for (size_t i = 0; i < self->n; i++)
        if (s_same(self->t[i].token, strlen(self->t[i].token), tok, len))
            found = &self->t[i];
    return found;
}

const jobq_token_t *
jobq_tokens_check_request(const jobq_tokens_t *self,
                          const char *authorization,
                          const char *cookie)
{
    if (authorization)
        return jobq_tokens_check(self, authorization);
    const char *at = cookie ? strstr(cookie, "jobq_token=") : NULL;
    if (!at || (at != cookie && at[-1] != ' ' && at[-1] != ';'))
        return NULL;
    at += 11;
    size_t len = strcspn(at, "; ");
    if (len > 128)
        return NULL;
    char bearer[7 + 128 + 1];
    memcpy(bearer, "Bearer ", 7);
    memcpy(bearer + 7, at, len);
    bearer[7 + len] = '\0';
    return jobq_tokens_check(self, bearer);
}

bool
jobq_tokens_take(jobq_tokens_t *self,
                 const jobq_token_t *t,
                 int64_t default_rate,
                 int *retry_s)
{
    int64_t rate = t->rate >= 0 ? t->rate : default_rate;
    if (rate <= 0)
        return true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    jobq_token_t *b = &self->t[t - self->t];
    pthread_mutex_lock(&self->mu);
    if (b->last_us == 0) {
        b->level = (double) rate;
    } else {
        b->level += (double) rate * (double) (now - b->last_us) / 1e6;
        if (b->level > (double) rate)
            b->level = (double) rate;
    }
    b->last_us = now;
    bool ok = b->level >= 1.0;
    if (ok)
        b->level -= 1.0;
    double wait = ok ? 0 : (1.0 - b->level) / (double) rate;
    pthread_mutex_unlock(&self->mu);
    *retry_s = (int) wait + 1;
    return ok;
}

bool
jobq_token_shop(const jobq_token_t *t, const char *shop, size_t len)
{
    if (t->all_shops)
        return true;
    for (size_t i = 0; i < t->nshops; i++)
        if (strlen(t->shops[i]) == len && memcmp(t->shops[i], shop, len) == 0)
            return true;
    return false;
}
