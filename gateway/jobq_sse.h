/*  jobq_sse.h: a job's changes as Server-Sent Events (docs/HTTP.md).

    One hub thread holds the gateway's only subscription socket: it
    subscribes to a job's topic once, however many streams watch the job,
    and writes each change to every stream's socket itself: a live
    stream's connection stays suspended in libmicrohttpd, which neither
    reads nor writes it, until the stream ends (one send per event, no
    thread woken). A reader that owes more than JOBQ_SSE_BUFFER is
    dropped.

    The ending is never missed: a stream starts from the job's STATUS; the
    hub gives a new stream the last state it saw of the job when that is
    newer; the broker answers a new subscription with the job's state; and
    a job silent for 5 s is read again with STATUS (a lost event, a broker
    restart). An ended job's last event carries its output and errors,
    read with STATUS.
*/
#ifndef JOBQ_SSE_H_INCLUDED
#define JOBQ_SSE_H_INCLUDED

#include <microhttpd.h>

#include "jobq_http.h"

#define JOBQ_SSE_MAX_STREAMS   10000    //  streams open at once
#define JOBQ_SSE_BUFFER        (32768)  //  bytes a slow reader may owe
#define JOBQ_SSE_SOCKET_BUFFER 65536    //  SO_SNDBUF of a stream
#define JOBQ_SSE_KEEPALIVE_S   15       //  a comment line this often

//  Start the hub (its own broker client and subscription socket, from
//  cfg). JOBQ_OK or JOBQ_ENOMEM.
int jobq_sse_start(const jobq_http_config_t *cfg);

//  End every stream (each gets what it was owed, then its end), and stop
//  the hub. Before MHD_stop_daemon.
void jobq_sse_stop(void);

//  GET /v1/jobs/{id}/events on conn: queue the stream's response
//  (MHD_YES), or fill *err with why not (a 404 for no such job, 503 for
//  the broker down or too many streams) and return MHD_NO then.
//  who: the request's token (NULL: no tokens asked); another shop's job is
//  a 404. *taken true: the hub has the connection (suspended) and writes
//  the response itself; when libmicrohttpd calls for the request again
//  (the stream ended), refuse it (MHD_NO) so that the connection closes.
enum MHD_Result jobq_sse_open(struct MHD_Connection *conn,
                              const char *id,
                              const char *last_event_id,
                              const jobq_token_t *who,
                              bool *taken,
                              jobq_http_response_t *err);

//  GET /v1/events: every change to shop's jobs (shop "": every shop's) as
//  SSE, `id:` the broker's seq; Last-Event-ID skips what the reader had.
//  Changes made while no stream was open are not replayed. MHD_YES, or
//  MHD_NO with *err (503: too many streams).
enum MHD_Result jobq_sse_open_shop(struct MHD_Connection *conn,
                                   const char *shop,
                                   const char *last_event_id,
                                   bool *taken,
                                   jobq_http_response_t *err);

#endif
