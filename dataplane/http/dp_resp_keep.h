/* dp_resp_keep.h - stored responses around a POST /v1/responses (OpenAI's
 * "store", previous_response_id and item_reference), kept in the PDP's
 * responses database (dp_pdp_resp) for the tenant of the request's key:
 *
 *  - before a worker reads the request (the MHD thread, then nng
 *    threads): the stored parts its body names are fetched and put into
 *    its input, so the PDP, guardrails and provider judge and get the
 *    whole conversation;
 *  - when its answer starts (the MHD thread): whether it will be kept:
 *    "store" asked (or left to OpenAI's default, true), a 2xx answer, and
 *    a capture level of metadata or full (capture none keeps nothing
 *    about a request, so nothing is stored for it either);
 *  - at its end: the Response and its input items are put to the PDP
 *    before the client gets the whole body, or a stream's final event,
 *    so that a GET or a continuation right after finds it. A response
 *    that could not be kept says "store": false, and a whole answer's
 *    x-tollgate-store header says why. */
#ifndef DP_RESP_KEEP_H
#define DP_RESP_KEEP_H

#include <stdbool.h>
#include <stdint.h>

struct dp_req;
struct dp_pdp;

/* Calls for stored responses wait at least this long for the PDP: a put
 * is an LMDB commit, slower than a decision (dataplane.pdp_timeout_ms). */
#define DP_RESP_PDP_TIMEOUT_MIN_MS 2000

/* dp_resp_pdp_timeout is the wait for a stored-response call, given
 * dataplane.pdp_timeout_ms. */
static inline int64_t
dp_resp_pdp_timeout(int64_t pdp_timeout_ms)
{
    return pdp_timeout_ms > DP_RESP_PDP_TIMEOUT_MIN_MS
               ? pdp_timeout_ms
               : DP_RESP_PDP_TIMEOUT_MIN_MS;
}

/* dp_resp_keep_go_fn hands a request whose body is complete to a worker
 * (runs on an nng thread). */
typedef void (*dp_resp_keep_go_fn)(void *arg, struct dp_req *r);

/* dp_resp_keep_lookup: when r's body (suspended, read whole) continues a
 * stored response (previous_response_id) or names items the gateway
 * stored (item_reference), asks the PDP for them and returns true; r is
 * then either given to go(arg, r) with its input expanded, or answered
 * with an OpenAI error (400 previous_response_not_found or
 * item_not_found, 401, 413, 503) and resumed. false: nothing to look up
 * (a body that is not strict JSON is left for the worker to refuse). */
bool dp_resp_keep_lookup(struct dp_pdp *pdp, int64_t timeout_ms,
                         struct dp_req *r, dp_resp_keep_go_fn go, void *arg);

/* dp_resp_keep_hold decides, once, whether r's answer is kept (its
 * Response says so), and for a whole 2xx answer to keep translates it
 * and puts it to the PDP: true when r was suspended until the put's
 * reply. A response whose Response and input items pass max_bytes
 * (pdp.responses.max_response_bytes) is not kept. MHD thread, before the
 * answer is queued. */
bool dp_resp_keep_hold(struct dp_pdp *pdp, int64_t timeout_ms,
                       int64_t max_bytes, struct dp_req *r);

/* dp_resp_keep_wait is for a stream's reader that has nothing to give:
 * while the stream's final event is held, puts the response (once) and
 * returns true (the reader parks; the put's reply releases the event and
 * resumes r). false: nothing is held, or the put could not start and the
 * event is released now. r's mutex held. */
bool dp_resp_keep_wait(struct dp_req *r);

#endif
