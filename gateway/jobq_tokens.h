/*  jobq_tokens.h: who may call the gateway, from its --tokens file.

    One line per bearer token:

        TOKEN  ROLE  SHOPS  [rate=N]

    TOKEN is 16 to 128 characters of [A-Za-z0-9._~+/=-] (`openssl rand
    -hex 24` makes one); ROLE is read (GET), write (read, and enqueue,
    cancel, retry) or admin (everything, every shop: stats, metrics);
    SHOPS a comma list of shop ids, or * (admin: *); rate=N, requests a
    second the token may make (N at once; 0: no limit; without it, the
    gateway's --token-rate). '#' starts a comment line. docs/HTTP.md describes
   it; this parser is the definition.
*/
#ifndef JOBQ_TOKENS_H_INCLUDED
#define JOBQ_TOKENS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOBQ_TOKENS_MAX      10000    //  tokens in one file
#define JOBQ_TOKEN_SHOPS_MAX 256      //  shops of one token
#define JOBQ_TOKEN_RATE_MAX  1000000  //  rate=, requests a second

enum { JOBQ_TOKEN_READ = 1, JOBQ_TOKEN_WRITE = 2, JOBQ_TOKEN_ADMIN = 3 };

typedef struct {
    char token[129];
    int role;        //  JOBQ_TOKEN_*
    bool all_shops;  //  "*"
    char **shops;    //  nshops entries
    size_t nshops;
    int64_t rate;     //  requests a second; -1: the default; 0: no limit
    double level;     //  requests it may make now (a token bucket)
    int64_t last_us;  //  when level was last brought up to date
} jobq_token_t;

typedef struct jobq_tokens jobq_tokens_t;

//  Read path. The table, or NULL with why ("PATH: line N: ...").
jobq_tokens_t *jobq_tokens_load(const char *path, char *why, size_t why_len);
void jobq_tokens_destroy(jobq_tokens_t **self_p);

//  The entry for an Authorization header value ("Bearer TOKEN"), or NULL.
//  Compares in time that does not depend on where a guess goes wrong.
const jobq_token_t *jobq_tokens_check(const jobq_tokens_t *self,
                                      const char *authorization);

//  The same from a request: its Authorization header, or else its
//  jobq_token cookie (the dashboard's sign-in sets it). NULL if neither
//  names a token of the file.
const jobq_token_t *jobq_tokens_check_request(const jobq_tokens_t *self,
                                              const char *authorization,
                                              const char *cookie);

//  Take one request from t's rate (threads may call it at once): true if
//  it may go on; false when over, with *retry_s the seconds to wait.
//  default_rate applies to a token without rate= (0: no limit).
bool jobq_tokens_take(jobq_tokens_t *self,
                      const jobq_token_t *t,
                      int64_t default_rate,
                      int *retry_s);

//  True when t may act on shop (len bytes).
bool jobq_token_shop(const jobq_token_t *t, const char *shop, size_t len);

#endif
