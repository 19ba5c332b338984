/*  jobq_netguard.h: which addresses and files a fetch may reach.

    A worker fetches URLs that its jobs name, so a job must not turn it
    inward: to the worker's own loopback, the private network behind it,
    a cloud metadata address, or its disk. The guard answers one question
    for each address a fetch is about to connect to (after DNS, on every
    redirect and every next link): is it public, or explicitly allowed?

    Refused unless allowed: loopback (127.0.0.0/8, ::1), unspecified
    (0.0.0.0/8, ::), private (10/8, 172.16/12, 192.168/16, 100.64/10),
    link-local (169.254/16, fe80::/10), unique-local (fc00::/7), multicast
    (224/4, ff00::/8), and the reserved 240/4 with broadcast. An IPv6
    address that carries an IPv4 one (IPv4-mapped ::ffff:0:0/96,
    IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged
    by the IPv4 address it carries. Every spelling of an address (decimal
    2130706433, octal 0177.0.0.1, hex, short 127.1) reaches the guard as
    the address the resolver made of it, so none slips past.

    file:// URLs are refused unless a directory is allowed, and then only
    paths inside it (after resolving "..", and symbolic links).
*/
#ifndef JOBQ_NETGUARD_H_INCLUDED
#define JOBQ_NETGUARD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "jobq/jobq_err.h"

//  Entries an allow list may hold.
#define JOBQ_NETGUARD_MAX_RANGES 64

typedef struct {
    uint8_t addr[16];  //  IPv6, or IPv4 as ::ffff:a.b.c.d
    unsigned bits;     //  prefix length, of the 128
} jobq_net_range_t;

typedef struct {
    jobq_net_range_t allow[JOBQ_NETGUARD_MAX_RANGES];  //  opened ranges
    size_t nallow;                                     //  entries in allow
    char files_dir[4096];  //  real path of the allowed directory, or ""
} jobq_netguard_t;

//  An empty guard: public addresses only, no files.
void jobq_netguard_init(jobq_netguard_t *self);

//  Open what list names, comma-separated: IPv4 or IPv6 addresses with an
//  optional /prefix (10.0.0.0/8, ::1, fd00::/8), or host names, whose
//  addresses now are opened (so "localhost" opens 127.0.0.1 and ::1).
//  JOBQ_OK, or JOBQ_EINVAL / JOBQ_ETOOBIG with why (len bytes) saying
//  which entry is wrong.
int jobq_netguard_allow(jobq_netguard_t *self,
                        const char *list,
                        char *why,
                        size_t len);

//  Allow file:// URLs inside dir, which must exist. JOBQ_OK, or
//  JOBQ_EINVAL with why.
int jobq_netguard_allow_files(jobq_netguard_t *self,
                              const char *dir,
                              char *why,
                              size_t len);

//  True if a fetch may connect to sa (AF_INET or AF_INET6; anything else
//  is refused).
bool jobq_netguard_addr_ok(const jobq_netguard_t *self,
                           const struct sockaddr *sa);

//  True if the 16-byte address (IPv4 as ::ffff:a.b.c.d) is public: none of
//  the refused ranges above.
bool jobq_netguard_public(const uint8_t addr[16]);

//  For a file:// URL's decoded path: JOBQ_OK with the real path in out
//  (cap bytes) if it lies inside the allowed directory; JOBQ_ENOTFOUND if
//  it would, but does not exist; JOBQ_EINVAL if files are not allowed or
//  the path leads outside.
int jobq_netguard_file(const jobq_netguard_t *self,
                       const char *path,
                       char *out,
                       size_t cap);

#endif
