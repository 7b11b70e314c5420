/* dp_transfer.h - one worker's upstream transfers: its curl multi, each
 * attempt's easy handle and callbacks, the attempt's health bracket and
 * verdict, and what a finished transfer came to. Worker thread only,
 * except dp_transfer_wakeup; never blocks in a callback. */
#ifndef DP_TRANSFER_H
#define DP_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "dp_host.h"
#include "dp_req.h"
#include "tg_buf.h"
#include "tg_err.h"

typedef struct dp_transfer dp_transfer;

/* dp_transfer_create makes the transfers of one worker. Borrows: h until
 * destroy. Owns: *out, free with dp_transfer_destroy. */
tg_err dp_transfer_create(dp_transfer **out, const dp_host *h);

/* dp_transfer_destroy frees xf; every transfer must have been released.
 * NULL-safe. */
void dp_transfer_destroy(dp_transfer *xf);

/* dp_transfer_wakeup makes a dp_transfer_wait return early. Any thread. */
void dp_transfer_wakeup(dp_transfer *xf);

/* dp_transfer_wait waits up to timeout_ms for socket activity, a wakeup,
 * or extra_fd readable (-1: none); true when extra_fd is readable. */
bool dp_transfer_wait(dp_transfer *xf, int timeout_ms, int extra_fd);

/* dp_transfer_perform moves every transfer on (runs the callbacks). */
void dp_transfer_perform(dp_transfer *xf);

/* dp_transfer_next_done returns a request whose transfer has finished,
 * with curl's result in *res; NULL when there is none left. */
dp_req *dp_transfer_next_done(dp_transfer *xf, CURLcode *res);

/* dp_transfer_start sends r's next attempt to up, opening its health
 * bracket (probe: the caller holds up's half-open probe claim). TG_EINVAL:
 * this deployment cannot take the request (msg, param say why); another
 * error: the gateway failed. On an error the attempt is released, a probe
 * claim given back and r->dep is NULL. Borrows: up for the attempt. */
tg_err dp_transfer_start(dp_transfer *xf, dp_req *r, const dp_upstream *up,
                         bool probe, char *msg, size_t msglen, char *param,
                         size_t paramlen);

/* dp_transfer_verdict reports the attempt's outcome to deployment health
 * once: a request's failures count once per deployment (a probe always
 * counts); a failure marked no_verdict is nobody's. why (borrowed) names
 * a failure in the log. */
void dp_transfer_verdict(dp_transfer *xf, dp_req *r, bool ok, const char *why);

/* dp_transfer_release ends r's current attempt, if any: stops its
 * transfer, closes its health bracket (a cancelled probe gives its claim
 * back) and keeps what it metered in r->usage and r->content_events. */
void dp_transfer_release(dp_transfer *xf, dp_req *r);

/* dp_transfer_unpause resumes r's transfer after the client drained its
 * output. */
void dp_transfer_unpause(dp_req *r);

/* dp_transfer_cut gives up a stream the client is already reading: counts
 * an upstream error, reports why as the deployment's failure and prepares
 * the stream's end with message as its final error event. */
void dp_transfer_cut(dp_transfer *xf, dp_req *r, const char *why,
                     const char *message);

/* What a finished transfer came to. */
typedef enum dp_transfer_end {
    DP_TRANSFER_CANCELLED, /* the client went away (r->cancelled) */
    DP_TRANSFER_FAILED,    /* the attempt failed: *e, body to pass on */
    DP_TRANSFER_ANSWERED,  /* answer prepared, verdict given; *status */
} dp_transfer_end;

/* dp_transfer_finished reads r's finished transfer (curl result res):
 * ANSWERED prepares the answer (a whole 2xx body, a stream's end, or a
 * stream cut short) with the status the usage report records; FAILED
 * fills *e and, when the provider's body is passed on, body. The caller
 * releases the attempt and moves on. */
dp_transfer_end dp_transfer_finished(dp_transfer *xf, dp_req *r, CURLcode res,
                                     dp_call_err *e, tg_buf *body,
                                     unsigned *status);

#endif
