/*  jobq_netguard.c: the address classes and allow lists of
    jobq_netguard.h. */
#define _GNU_SOURCE  //  realpath
#include "jobq_netguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void
jobq_netguard_init(jobq_netguard_t *self)
{
    memset(self, 0, sizeof *self);
}

//  a as ::ffff:a.b.c.d.
static void
s_mapped(uint8_t out[16], const uint8_t v4[4])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

static bool
s_in(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t) (0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

//  An IPv4 address is public unless it is in one of these.
static bool
s_public4(const uint8_t a[4])
{
    static const struct {
        uint8_t net[4];
        unsigned bits;
    } refused[] = {
        {{0, 0, 0, 0}, 8},       //  "this network", unspecified
        {{10, 0, 0, 0}, 8},      //  private
        {{100, 64, 0, 0}, 10},   //  shared address space (carrier NAT)
        {{127, 0, 0, 0}, 8},     //  loopback
        {{169, 254, 0, 0}, 16},  //  link-local, cloud metadata
        {{172, 16, 0, 0}, 12},   //  private
        {{192, 0, 0, 0}, 24},    //  IETF protocol assignments
        {{192, 168, 0, 0}, 16},  //  private
        {{198, 18, 0, 0}, 15},   //  benchmarking networks
        {{224, 0, 0, 0}, 4},     //  multicast
        {{240, 0, 0, 0}, 4},     //  reserved, and broadcast
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (s_in(a, refused[i].net, refused[i].bits))
            return false;
    return true;
}

bool
jobq_netguard_public(const uint8_t a[16])
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    //  IPv6 forms that carry an IPv4 address are judged by it.
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return s_public4(a + 12);
    if (memcmp(a, zero, 12) == 0) {
        //  :: and ::1, then the old IPv4-compatible ::a.b.c.d.
        if (memcmp(a + 12, zero, 3) == 0 && a[15] <= 1)
            return false;
        return s_public4(a + 12);
    }
    if (a[0] == 0x20 && a[1] == 0x02)  //  6to4: 2002:AABB:CCDD::/48
        return s_public4(a + 2);
    if (a[0] == 0xff)  //  multicast
        return false;
    if ((a[0] & 0xfe) == 0xfc)  //  unique-local fc00::/7
        return false;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)  //  link-local fe80::/10
        return false;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)  //  old site-local fec0::/10
        return false;
    return true;
}

//  sa as 16 bytes; false for a family other than IPv4 and IPv6.
static bool
s_addr16(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        s_mapped(out, (const uint8_t *) &in->sin_addr);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        memcpy(out, &in6->sin6_addr, 16);
        return true;
    }
    return false;
}

bool
jobq_netguard_addr_ok(const jobq_netguard_t *self, const struct sockaddr *sa)
{
    uint8_t a[16];
    if (!sa || !s_addr16(sa, a))
        return false;
    for (size_t i = 0; self && i < self->nallow; i++)
        if (s_in(a, self->allow[i].addr, self->allow[i].bits))
            return true;
    return jobq_netguard_public(a);
}

static int
s_add(jobq_netguard_t *self,
      const uint8_t a[16],
      unsigned bits,
      const char *entry,
      char *why,
      size_t len)
{
    if (self->nallow == JOBQ_NETGUARD_MAX_RANGES) {
        snprintf(why, len, "more than %d addresses and ranges (at '%s')",
                 JOBQ_NETGUARD_MAX_RANGES, entry);
        return JOBQ_ETOOBIG;
    }
    jobq_net_range_t *r = &self->allow[self->nallow++];
    memcpy(r->addr, a, 16);
    r->bits = bits;
    return JOBQ_OK;
}

//  One entry of an allow list.
static int
s_entry(jobq_netguard_t *self, char *entry, char *why, size_t len)
{
    char *slash = strchr(entry, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || bits < 0 || bits > 128) {
            snprintf(why, len, "'%s/%s': the prefix is not 0 to 128", entry,
                     slash + 1);
            return JOBQ_EINVAL;
        }
    }
    uint8_t a[16], v4[4];
    if (inet_pton(AF_INET, entry, v4) == 1) {
        if (bits > 32) {
            snprintf(why, len, "'%s/%ld': an IPv4 prefix is 0 to 32", entry,
                     bits);
            return JOBQ_EINVAL;
        }
        s_mapped(a, v4);
        return s_add(self, a, bits < 0 ? 128 : 96 + (unsigned) bits, entry, why,
                     len);
    }
    if (inet_pton(AF_INET6, entry, a) == 1)
        return s_add(self, a, bits < 0 ? 128 : (unsigned) bits, entry, why,
                     len);
    if (slash) {
        snprintf(why, len, "'%s': a prefix goes with an address, not a name",
                 entry);
        return JOBQ_EINVAL;
    }
    //  A host name: the addresses it has now.
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(entry, NULL, &hints, &res);
    if (gai != 0) {
        snprintf(why, len, "'%s' is not an address, a range or a known host",
                 entry);
        return JOBQ_EINVAL;
    }
    int rc = JOBQ_OK;
    for (struct addrinfo *p = res; p && rc == JOBQ_OK; p = p->ai_next)
        if (s_addr16(p->ai_addr, a))
            rc = s_add(self, a, 128, entry, why, len);
    freeaddrinfo(res);
    return rc;
}

int
jobq_netguard_allow(jobq_netguard_t *self,
                    const char *list,
                    char *why,
                    size_t len)
{
    char buf[4096];
    if (strlen(list) >= sizeof buf) {
        snprintf(why, len, "the list is longer than %zu bytes", sizeof buf - 1);
        return JOBQ_ETOOBIG;
    }
    memcpy(buf, list, strlen(list) + 1);
    char *save = NULL;
    int n = 0;
    for (char *e = strtok_r(buf, ",", &save); e;
         e = strtok_r(NULL, ",", &save)) {
        while (*e == ' ')
            e++;
        size_t l = strlen(e);
        while (l && e[l - 1] == ' ')
            e[--l] = '\0';
        if (!*e)
            continue;
        int rc = s_entry(self, e, why, len);
        if (rc != JOBQ_OK)
            return rc;
        n++;
    }
    if (!n) {
        snprintf(why, len, "no address, range or host given");
        return JOBQ_EINVAL;
    }
    return JOBQ_OK;
}

int
jobq_netguard_allow_files(jobq_netguard_t *self,
                          const char *dir,
                          char *why,
                          size_t len)
{
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(dir, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, len, "'%s' is not a directory", dir);
        return JOBQ_EINVAL;
    }
    if (strlen(real) >= sizeof self->files_dir) {
        snprintf(why, len, "'%s': the path is too long", dir);
        return JOBQ_ETOOBIG;
    }
    memcpy(self->files_dir, real, strlen(real) + 1);
    return JOBQ_OK;
}

//  True if path is dir or lies below it.
static bool
s_below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return path[0] == '/';
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

//  path with "." and ".." segments and repeated slashes taken out, as
//  text (no file is looked at). False if it is not absolute or too long.
static bool
s_lexical(const char *path, char *out, size_t cap)
{
    if (path[0] != '/' || strlen(path) >= cap)
        return false;
    size_t n = 0;
    out[n++] = '/';
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t sl = (size_t) (p - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            //  Drop the last segment and the slash before it.
            while (n > 1 && out[n - 1] != '/')
                n--;
            if (n > 1)
                n--;
            continue;
        }
        if (n > 1)
            out[n++] = '/';
        memcpy(out + n, seg, sl);
        n += sl;
    }
    if (n > 1 && out[n - 1] == '/')
        n--;
    out[n] = '\0';
    return true;
}

int
jobq_netguard_file(const jobq_netguard_t *self,
                   const char *path,
                   char *out,
                   size_t cap)
{
    char lex[PATH_MAX], real[PATH_MAX];
    if (!self || !self->files_dir[0] || !s_lexical(path, lex, sizeof lex) ||
        !s_below(lex, self->files_dir))
        return JOBQ_EINVAL;
    //  Inside as written: now where it really leads (links included).
    if (!realpath(lex, real))
        return JOBQ_ENOTFOUND;
    if (!s_below(real, self->files_dir))
        return JOBQ_EINVAL;
    if (strlen(real) >= cap)
        return JOBQ_ETOOBIG;
    memcpy(out, real, strlen(real) + 1);
    return JOBQ_OK;
}
