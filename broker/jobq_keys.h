/*  jobq_keys.h: who may talk to the broker, read from its key file.

    One line per CURVE public key:

        NAME  ROLES  SHOPS  PUBLIC-KEY  [OPTION=VALUE ...]

    NAME is 1-64 of [A-Za-z0-9_-]; ROLES a comma list of client, reader,
    watcher, worker, admin; SHOPS a comma list of shop ids, or "*" for
    every shop; PUBLIC-KEY the 40-character Z85 text of `jobq keygen`.
    Options: types=T,T (worker: the job types it may run; default any),
    rate=N and burst=N (client requests per second and the bucket's size;
    default none), quota-pending=N and quota-bytes=N (what each of its
    shops may hold when it adds a job; default the broker's). '#' starts a
   comment; blank lines are skipped. docs/PROTOCOL.md section 13 is the user's
   description; this parser is the definition, and refuses anything else with
   the line and the reason.

    Pure and bounded: no sockets, no globals, so the fuzz target can drive
    it (tests/fuzz/fuzz_keys.c).
*/
#ifndef JOBQ_KEYS_H_INCLUDED
#define JOBQ_KEYS_H_INCLUDED

#include "jobq_proto.h"

#define JOBQ_KEYS_MAX      10000      //  keys in one file
#define JOBQ_KEYS_FILE_MAX (8 << 20)  //  bytes in one file
#define JOBQ_KEYS_LINE_MAX 16384      //  bytes in one line
#define JOBQ_KEY_NAME_MAX  64         //  bytes in a key's name
#define JOBQ_KEY_SHOPS_MAX 1024       //  shops of one key
#define JOBQ_KEY_TYPES_MAX 64         //  job types of one worker key
#define JOBQ_KEY_Z85_LEN   40         //  a public key in Z85

enum {
    JOBQ_ROLE_CLIENT = 1,   //  enqueue, read, cancel, retry; events
    JOBQ_ROLE_READER = 2,   //  STATUS, LIST, STATS; events
    JOBQ_ROLE_WATCHER = 4,  //  events only
    JOBQ_ROLE_WORKER = 8,   //  the worker endpoint
    JOBQ_ROLE_ADMIN = 16,   //  everything, every shop
};

typedef struct {
    char name[JOBQ_KEY_NAME_MAX + 1];  //  the key's name
    char z85[JOBQ_KEY_Z85_LEN + 1];    //  public key, Z85 text
    unsigned roles;                    //  JOBQ_ROLE_* bits
    bool all_shops;                    //  "*"
    char **shops;                      //  sorted; nshops entries
    size_t nshops;
    char **types;  //  worker: job types allowed, sorted; none = any
    size_t ntypes;
    uint64_t quota_pending;  //  unfinished jobs per shop; 0 = broker's
    uint64_t quota_bytes;    //  record bytes per shop; 0 = broker's
    double rate;             //  client requests per second; 0 = no limit
    double burst;            //  bucket size (default: rate, at least 1)
    uint32_t line;           //  its line in the file
    //  Token bucket, kept by the broker (and across reloads).
    double tokens;
    uint64_t refill_ms;
} jobq_key_t;

typedef struct jobq_keys jobq_keys_t;

//  Parse a key file's text. JOBQ_OK with *out set, or JOBQ_EINVAL /
//  JOBQ_ETOOBIG with why ("line N: ...") and *out NULL; JOBQ_ENOMEM.
int jobq_keys_parse(
    const char *text, size_t len, jobq_keys_t **out, char *why, size_t why_len);

//  Read and parse file path (at most JOBQ_KEYS_FILE_MAX bytes). As
//  jobq_keys_parse; JOBQ_ESTORAGE when it cannot be read. why starts with
//  the path.
int
jobq_keys_load(const char *path, jobq_keys_t **out, char *why, size_t why_len);

void jobq_keys_destroy(jobq_keys_t **self_p);

size_t jobq_keys_count(const jobq_keys_t *self);
jobq_key_t *jobq_keys_at(jobq_keys_t *self, size_t i);

//  The key whose Z85 public key is z85 (len bytes), or NULL.
jobq_key_t *jobq_keys_find(jobq_keys_t *self, const char *z85, size_t len);

//  Keep the token buckets of keys present in both (same public key) when a
//  new file replaces old.
void jobq_keys_carry(jobq_keys_t *fresh, jobq_keys_t *old);

//  True when a and b grant the same: roles, shops, types (rates and quotas
//  aside, which apply from the next message).
bool jobq_key_same(const jobq_key_t *a, const jobq_key_t *b);

//  True when key has any of the roles (admin has them all).
bool jobq_key_can(const jobq_key_t *key, unsigned roles);

//  True when key may act on shop.
bool jobq_key_shop(const jobq_key_t *key, jobq_str_t shop);

//  True when key may run jobs of type (worker keys).
bool jobq_key_type(const jobq_key_t *key, jobq_str_t type);

//  True when a worker of key may use routing id name: the key's name
//  itself, or the name followed by '.' and more (admin: any).
bool jobq_key_worker_name(const jobq_key_t *key, const uint8_t *id, size_t len);

//  True when key may subscribe to topic (ZeroMQ prefix of "<shop>/<id>"):
//  a key of every shop to anything, a scoped key only to topics that start
//  with "<one of its shops>/".
bool jobq_key_topic(const jobq_key_t *key, const uint8_t *topic, size_t len);

//  Take a token from key's bucket at now_ms. False when it is empty (the
//  request is refused with rate_limited).
bool jobq_key_take(jobq_key_t *key, uint64_t now_ms);

#endif
