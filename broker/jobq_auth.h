/*  jobq_auth.h: the broker's ZAP handler (ZeroMQ RFC 27) and key table.

    With a key file, every endpoint is a CURVE server and libzmq asks this
    handler about each new connection: the client's public key must be in
    the file, with a role that fits the endpoint (clients: client or
    reader; workers: worker; events: client, reader or watcher; admin fits
    all). The handler names the connection by its public key (ZAP's user
    id), which libzmq then attaches to every message from it; the broker
    looks the key up again for each message (jobq_auth_who), so a key
    removed by a reload is refused from its next message on.

    Runs in the broker's thread: the broker polls jobq_auth_socket and
    calls jobq_auth_serve. A connection's handshake waits for its answer,
    at most one turn.
*/
#ifndef JOBQ_AUTH_H_INCLUDED
#define JOBQ_AUTH_H_INCLUDED

#include "jobq/jobq_log.h"
#include "jobq_keys.h"

//  The endpoints, as ZAP domains.
#define JOBQ_AUTH_CLIENTS "jobq-clients"
#define JOBQ_AUTH_WORKERS "jobq-workers"
#define JOBQ_AUTH_EVENTS  "jobq-events"

typedef struct jobq_auth jobq_auth_t;

//  Load keys_path and bind the handler on ctx (ZeroMQ allows one per
//  context). NULL with why set when the file cannot be read or parsed or
//  the handler cannot bind.
jobq_auth_t *jobq_auth_new(void *ctx,
                           const char *keys_path,
                           const jobq_log_t *log,
                           char *why,
                           size_t why_len);

void jobq_auth_destroy(jobq_auth_t **self_p);

//  The handler's socket, to poll for ZMQ_POLLIN.
void *jobq_auth_socket(jobq_auth_t *self);

//  Answer up to max waiting requests. reserve_only[e] (e = 0 clients,
//  1 workers, 2 events) set: the broker holds as many connections as it
//  lets anyone open, and only worker and admin keys are let in there.
//  Returns how many were answered.
uint32_t
jobq_auth_serve(jobq_auth_t *self, const bool reserve_only[3], uint32_t max);

//  The key named by a message's user id (jobq_wire_in_user), or NULL when
//  it is not in the file any more.
jobq_key_t *jobq_auth_who(jobq_auth_t *self, const char *user);

//  Read the key file again. On success the new keys answer from now on,
//  and *removed gets how many keys are gone; JOBQ_OK. Removed keys, and
//  keys whose roles, shops or types changed, count as gone for
//  jobq_auth_removed_from: their connections are closed (the changed ones
//  reconnect, under their new rights). Otherwise the old
//  keys stay, and why says what is wrong with the file.
int
jobq_auth_reload(jobq_auth_t *self, size_t *removed, char *why, size_t why_len);

//  After a reload: true when a key removed by it was let in from address
//  (as ZAP gives it: the peer's IP, numeric), so connections from there
//  are to be closed. All of them when more addresses were seen than
//  remembered.
bool jobq_auth_removed_from(const jobq_auth_t *self, const char *address);

//  One frame of a ZAP request.
typedef struct {
    const uint8_t *ptr;
    size_t len;
} jobq_zap_frame_t;

//  Why a handshake is refused.
enum {
    JOBQ_AUTH_NOT_CURVE,    //  not a well-formed CURVE request
    JOBQ_AUTH_UNKNOWN_KEY,  //  a key the file does not hold
    JOBQ_AUTH_WRONG_ROLE,   //  its roles do not fit the endpoint
    JOBQ_AUTH_FULL,         //  the broker is at its connection limit
};

//  Decide a ZAP request of n frames against keys (pure: no sockets; the
//  fuzz target drives it). Returns -1 to let it in, with user (41 bytes)
//  its key's Z85 text; otherwise a JOBQ_AUTH_* cause. text gets the
//  reply's status text either way.
int jobq_auth_check(jobq_keys_t *keys,
                    const jobq_zap_frame_t *f,
                    int n,
                    const bool reserve_only[3],
                    char *user,
                    const char **text);

//  Log refused handshakes: at most one line every interval_ms (all: now).
void jobq_auth_log(jobq_auth_t *self,
                   uint64_t now_ms,
                   uint64_t interval_ms,
                   bool all);

//  Number of keys.
size_t jobq_auth_count(const jobq_auth_t *self);

#endif
