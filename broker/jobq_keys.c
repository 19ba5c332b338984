/*  jobq_keys.c: the broker's key file (jobq_keys.h). */
#include "jobq_keys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jobq_keys {
    jobq_key_t *keys;  //  sorted by z85
    size_t n;
};

static const char s_z85[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&"
    "<>()[]{}@%$#";

static void
s_why(char *why, size_t len, size_t line, const char *fmt, ...)
{
    if (!why || !len)
        return;
    int n = snprintf(why, len, "line %zu: ", line);
    if (n < 0 || (size_t) n >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + n, len - (size_t) n, fmt, ap);
    va_end(ap);
}

//  40 characters of Z85 that decode to 32 bytes (each group of five below
//  2^32).
static bool
s_z85_ok(const char *s, size_t len)
{
    if (len != JOBQ_KEY_Z85_LEN)
        return false;
    for (size_t g = 0; g < len; g += 5) {
        uint64_t v = 0;
        for (size_t i = g; i < g + 5; i++) {
            const char *p = s[i] ? memchr(s_z85, s[i], 85) : NULL;
            if (!p)
                return false;
            v = v * 85 + (uint64_t) (p - s_z85);
        }
        if (v > UINT32_MAX)
            return false;
    }
    return true;
}

static bool
s_name_ok(const char *s, size_t len)
{
    if (len < 1 || len > JOBQ_KEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int
s_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
s_keycmp(const void *a, const void *b)
{
    return strcmp(((const jobq_key_t *) a)->z85, ((const jobq_key_t *) b)->z85);
}

static void
s_key_free(jobq_key_t *k)
{
    for (size_t i = 0; i < k->nshops; i++)
        free(k->shops[i]);
    for (size_t i = 0; i < k->ntypes; i++)
        free(k->types[i]);
    free(k->shops);
    free(k->types);
}

//  Split a comma list (s, len) into *out (sorted, no repeats), checking
//  each item with ok. JOBQ_OK, JOBQ_EINVAL (why set), JOBQ_ETOOBIG or
//  JOBQ_ENOMEM.
static int
s_list(const char *s,
       size_t len,
       size_t max,
       bool (*ok)(jobq_str_t),
       const char *what,
       char ***out,
       size_t *n,
       size_t line,
       char *why,
       size_t why_len)
{
    size_t items = 1;
    for (size_t i = 0; i < len; i++)
        items += s[i] == ',';
    if (items > max) {
        s_why(why, why_len, line, "more than %zu %s", max, what);
        return JOBQ_ETOOBIG;
    }
    char **v = calloc(items, sizeof *v);
    if (!v)
        return JOBQ_ENOMEM;
    size_t k = 0, start = 0;
    int rc = JOBQ_ENOMEM;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        jobq_str_t item = {s + start, i - start};
        if (!ok(item)) {
            s_why(why, why_len, line, "bad %s '%.*s'", what,
                  (int) (item.len > 64 ? 64 : item.len), item.ptr);
            rc = JOBQ_EINVAL;
            goto fail;
        }
        v[k] = strndup(item.ptr, item.len);
        if (!v[k])
            goto fail;
        k++;
        start = i + 1;
    }
    qsort(v, k, sizeof *v, s_strcmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && strcmp(v[u - 1], v[i]) == 0)
            free(v[i]);
        else
            v[u++] = v[i];
    }
    *out = v;
    *n = u;
    return JOBQ_OK;
fail:
    for (size_t i = 0; i < k; i++)
        free(v[i]);
    free(v);
    return rc;
}

static int
s_roles(const char *s, size_t len, unsigned *roles)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"client", JOBQ_ROLE_CLIENT},
                 {"reader", JOBQ_ROLE_READER},
                 {"watcher", JOBQ_ROLE_WATCHER},
                 {"worker", JOBQ_ROLE_WORKER},
                 {"admin", JOBQ_ROLE_ADMIN}};
    *roles = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        size_t n = i - start;
        unsigned bit = 0;
        for (size_t r = 0; r < sizeof names / sizeof names[0]; r++)
            if (strlen(names[r].name) == n &&
                memcmp(names[r].name, s + start, n) == 0)
                bit = names[r].bit;
        if (!bit)
            return JOBQ_EINVAL;
        *roles |= bit;
        start = i + 1;
    }
    return JOBQ_OK;
}

//  A whole decimal number from 1 to max (at most 10^15), into *out.
static bool
s_count(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len < 1 || len > 16)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t) (s[i] - '0');
    }
    if (v < 1 || v > max)
        return false;
    *out = v;
    return true;
}

//  A rate or a burst: 1 to 10^9.
static bool
s_number(const char *s, size_t len, double *out)
{
    uint64_t v;
    if (!s_count(s, len, 1000000000, &v))
        return false;
    *out = (double) v;
    return true;
}

//  One line's fields into k. JOBQ_OK, or an error with why set.
static int
s_line(const char *p,
       size_t len,
       jobq_key_t *k,
       size_t line,
       char *why,
       size_t why_len)
{
    const char *f[16];
    size_t fl[16], nf = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == len)
            break;
        if (nf == 16) {
            s_why(why, why_len, line, "too many fields");
            return JOBQ_EINVAL;
        }
        f[nf] = p + i;
        while (i < len && p[i] != ' ' && p[i] != '\t')
            i++;
        fl[nf] = (size_t) (p + i - f[nf]);
        nf++;
    }
    if (nf < 4) {
        s_why(why, why_len, line,
              "expected NAME ROLES SHOPS PUBLIC-KEY [OPTION=VALUE ...]");
        return JOBQ_EINVAL;
    }
    if (!s_name_ok(f[0], fl[0])) {
        s_why(why, why_len, line, "name: use 1-%d of [A-Za-z0-9_-]",
              JOBQ_KEY_NAME_MAX);
        return JOBQ_EINVAL;
    }
    memcpy(k->name, f[0], fl[0]);
    if (s_roles(f[1], fl[1], &k->roles) != JOBQ_OK) {
        s_why(why, why_len, line,
              "roles: a comma list of client, reader, watcher, worker, admin");
        return JOBQ_EINVAL;
    }
    int rc;
    if (fl[2] == 1 && f[2][0] == '*') {
        k->all_shops = true;
    } else if ((rc = s_list(f[2], fl[2], JOBQ_KEY_SHOPS_MAX,
                            jobq_proto_valid_shop, "shop", &k->shops,
                            &k->nshops, line, why, why_len)) != JOBQ_OK) {
        return rc;
    }
    if ((k->roles & JOBQ_ROLE_ADMIN) && !k->all_shops) {
        s_why(why, why_len, line, "an admin key has every shop: use *");
        return JOBQ_EINVAL;
    }
    if (!s_z85_ok(f[3], fl[3])) {
        s_why(why, why_len, line,
              "public key: expected 40 characters of Z85 (jobq keygen)");
        return JOBQ_EINVAL;
    }
    memcpy(k->z85, f[3], JOBQ_KEY_Z85_LEN);
    bool has_burst = false;
    for (size_t o = 4; o < nf; o++) {
        const char *eq = memchr(f[o], '=', fl[o]);
        size_t kl = eq ? (size_t) (eq - f[o]) : fl[o];
        const char *v = eq ? eq + 1 : NULL;
        size_t vl = eq ? fl[o] - kl - 1 : 0;
        if (eq && kl == 5 && memcmp(f[o], "types", 5) == 0 && !k->types) {
            if (!(k->roles & JOBQ_ROLE_WORKER)) {
                s_why(why, why_len, line, "types= is for worker keys");
                return JOBQ_EINVAL;
            }
            rc = s_list(v, vl, JOBQ_KEY_TYPES_MAX, jobq_proto_valid_type,
                        "type", &k->types, &k->ntypes, line, why, why_len);
            if (rc != JOBQ_OK)
                return rc;
        } else if (eq && kl == 4 && memcmp(f[o], "rate", 4) == 0 &&
                   k->rate == 0 && s_number(v, vl, &k->rate)) {
        } else if (eq && kl == 5 && memcmp(f[o], "burst", 5) == 0 &&
                   !has_burst && s_number(v, vl, &k->burst)) {
            has_burst = true;
        } else if (eq && kl == 13 && memcmp(f[o], "quota-pending", 13) == 0 &&
                   !k->quota_pending &&
                   s_count(v, vl, 1000000000000000ull, &k->quota_pending)) {
        } else if (eq && kl == 11 && memcmp(f[o], "quota-bytes", 11) == 0 &&
                   !k->quota_bytes &&
                   s_count(v, vl, 1000000000000000ull, &k->quota_bytes)) {
        } else {
            s_why(why, why_len, line,
                  "unknown or repeated option '%.*s' (types=, rate=, "
                  "burst=, quota-pending=, quota-bytes=; numbers from 1)",
                  (int) (fl[o] > 64 ? 64 : fl[o]), f[o]);
            return JOBQ_EINVAL;
        }
    }
    if (has_burst && k->rate == 0) {
        s_why(why, why_len, line, "burst= needs rate=");
        return JOBQ_EINVAL;
    }
    if (k->rate > 0 && !has_burst)
        k->burst = k->rate < 1 ? 1 : k->rate;
    k->tokens = k->burst;
    return JOBQ_OK;
}

static int
s_namecmp(const void *a, const void *b)
{
    const jobq_key_t *x = *(const jobq_key_t *const *) a;
    const jobq_key_t *y = *(const jobq_key_t *const *) b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

//  Sort the keys by public key, and refuse a name or a public key given
//  twice, naming the later line. O(n log n).
static int
s_no_twice(jobq_keys_t *self, char *why, size_t why_len)
{
    if (self->n == 0)
        return JOBQ_OK;
    qsort(self->keys, self->n, sizeof *self->keys, s_keycmp);
    for (size_t i = 1; i < self->n; i++) {
        jobq_key_t *a = &self->keys[i - 1], *b = &self->keys[i];
        if (strcmp(a->z85, b->z85) == 0) {
            jobq_key_t *first = a->line < b->line ? a : b;
            jobq_key_t *later = a->line < b->line ? b : a;
            s_why(why, why_len, later->line, "public key is used twice (%s)",
                  first->name);
            return JOBQ_EINVAL;
        }
    }
    jobq_key_t **by_name = malloc(self->n * sizeof *by_name);
    if (!by_name)
        return JOBQ_ENOMEM;
    for (size_t i = 0; i < self->n; i++)
        by_name[i] = &self->keys[i];
    qsort(by_name, self->n, sizeof *by_name, s_namecmp);
    int rc = JOBQ_OK;
    for (size_t i = 1; i < self->n && rc == JOBQ_OK; i++) {
        if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
            s_why(why, why_len, by_name[i]->line, "name '%s' is used twice",
                  by_name[i]->name);
            rc = JOBQ_EINVAL;
        }
    }
    free(by_name);
    return rc;
}

int
jobq_keys_parse(
    const char *text, size_t len, jobq_keys_t **out, char *why, size_t why_len)
{
    *out = NULL;
    if (why && why_len)
        why[0] = '\0';
    if (len > JOBQ_KEYS_FILE_MAX) {
        s_why(why, why_len, 0, "the file is larger than %d bytes",
              JOBQ_KEYS_FILE_MAX);
        return JOBQ_ETOOBIG;
    }
    jobq_keys_t *self = calloc(1, sizeof *self);
    if (!self)
        return JOBQ_ENOMEM;
    size_t cap = 0, line = 0, pos = 0;
    int rc = JOBQ_OK;
    while (pos < len && rc == JOBQ_OK) {
        line++;
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > JOBQ_KEYS_LINE_MAX) {
            s_why(why, why_len, line, "longer than %d bytes",
                  JOBQ_KEYS_LINE_MAX);
            rc = JOBQ_ETOOBIG;
            break;
        }
        size_t i = 0;
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == n || p[i] == '#')
            continue;
        if (memchr(p, '\0', n)) {
            s_why(why, why_len, line, "holds a NUL byte");
            rc = JOBQ_EINVAL;
            break;
        }
        if (self->n == JOBQ_KEYS_MAX) {
            s_why(why, why_len, line, "more than %d keys", JOBQ_KEYS_MAX);
            rc = JOBQ_ETOOBIG;
            break;
        }
        if (self->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            jobq_key_t *k = realloc(self->keys, ncap * sizeof *k);
            if (!k) {
                rc = JOBQ_ENOMEM;
                break;
            }
            self->keys = k;
            cap = ncap;
        }
        jobq_key_t *k = &self->keys[self->n];
        memset(k, 0, sizeof *k);
        self->n++;
        k->line = (uint32_t) line;
        rc = s_line(p, n, k, line, why, why_len);
    }
    if (rc == JOBQ_OK)
        rc = s_no_twice(self, why, why_len);
    if (rc != JOBQ_OK) {
        if (rc == JOBQ_ENOMEM && why && why_len)
            snprintf(why, why_len, "out of memory");
        jobq_keys_destroy(&self);
        return rc;
    }
    *out = self;
    return JOBQ_OK;
}

int
jobq_keys_load(const char *path, jobq_keys_t **out, char *why, size_t why_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        return JOBQ_ESTORAGE;
    }
    char *buf = malloc(JOBQ_KEYS_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        snprintf(why, why_len, "%s: out of memory", path);
        return JOBQ_ENOMEM;
    }
    size_t n = fread(buf, 1, JOBQ_KEYS_FILE_MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(why, why_len, "%s: cannot read it", path);
        return JOBQ_ESTORAGE;
    }
    char inner[256];
    int rc = jobq_keys_parse(buf, n, out, inner, sizeof inner);
    free(buf);
    if (rc != JOBQ_OK)
        snprintf(why, why_len, "%s: %s", path, inner);
    return rc;
}

void
jobq_keys_destroy(jobq_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_keys_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        s_key_free(&self->keys[i]);
    free(self->keys);
    free(self);
    *self_p = NULL;
}

size_t
jobq_keys_count(const jobq_keys_t *self)
{
    return self ? self->n : 0;
}

jobq_key_t *
jobq_keys_at(jobq_keys_t *self, size_t i)
{
    return self && i < self->n ? &self->keys[i] : NULL;
}

jobq_key_t *
jobq_keys_find(jobq_keys_t *self, const char *z85, size_t len)
{
    if (!self || len != JOBQ_KEY_Z85_LEN)
        return NULL;
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(self->keys[mid].z85, z85, JOBQ_KEY_Z85_LEN);
        if (c == 0)
            return &self->keys[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void
jobq_keys_carry(jobq_keys_t *fresh, jobq_keys_t *old)
{
    for (size_t i = 0; fresh && i < fresh->n; i++) {
        jobq_key_t *k = &fresh->keys[i];
        jobq_key_t *o = jobq_keys_find(old, k->z85, JOBQ_KEY_Z85_LEN);
        if (o && o->rate == k->rate && o->burst == k->burst) {
            k->tokens = o->tokens;
            k->refill_ms = o->refill_ms;
        }
    }
}

static bool
s_same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

bool
jobq_key_same(const jobq_key_t *a, const jobq_key_t *b)
{
    return a->roles == b->roles && a->all_shops == b->all_shops &&
           strcmp(a->name, b->name) == 0 &&
           s_same_list(a->shops, a->nshops, b->shops, b->nshops) &&
           s_same_list(a->types, a->ntypes, b->types, b->ntypes);
}

bool
jobq_key_can(const jobq_key_t *key, unsigned roles)
{
    return (key->roles & (roles | JOBQ_ROLE_ADMIN)) != 0;
}

//  True when s (len bytes, any bytes) is one of the sorted strings v.
static bool
s_in(char *const *v, size_t n, const char *s, size_t len)
{
    if (memchr(s, '\0', len))
        return false;  //  no entry holds a NUL
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(v[mid], s, len);
        if (c == 0)
            c = v[mid][len] != '\0';
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool
jobq_key_shop(const jobq_key_t *key, jobq_str_t shop)
{
    return key->all_shops || s_in(key->shops, key->nshops, shop.ptr, shop.len);
}

bool
jobq_key_type(const jobq_key_t *key, jobq_str_t type)
{
    return key->ntypes == 0 ||
           s_in(key->types, key->ntypes, type.ptr, type.len);
}

bool
jobq_key_worker_name(const jobq_key_t *key, const uint8_t *id, size_t len)
{
    if (key->roles & JOBQ_ROLE_ADMIN)
        return true;
    size_t n = strlen(key->name);
    return len >= n && memcmp(id, key->name, n) == 0 &&
           (len == n || (len > n + 1 && id[n] == '.'));
}

bool
jobq_key_topic(const jobq_key_t *key, const uint8_t *topic, size_t len)
{
    if (key->all_shops)
        return true;
    const uint8_t *slash = memchr(topic, '/', len);
    return slash && jobq_key_shop(key, (jobq_str_t){(const char *) topic,
                                                    (size_t) (slash - topic)});
}

bool
jobq_key_take(jobq_key_t *key, uint64_t now_ms)
{
    if (key->rate <= 0)
        return true;
    if (now_ms > key->refill_ms) {
        double add = (double) (now_ms - key->refill_ms) * key->rate / 1000.0;
        key->tokens =
            key->tokens + add > key->burst ? key->burst : key->tokens + add;
        key->refill_ms = now_ms;
    }
    if (key->tokens < 1)
        return false;
    key->tokens -= 1;
    return true;
}
