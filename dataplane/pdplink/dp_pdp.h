/* dp_pdp.h - the data plane's client of the PDP: nng req0 over ipc or tcp,
 * one context per call in flight, aio callbacks only (never a blocking
 * call on a request path). The data plane, not the PDP, owns the timeout.
 * Thread-safe: workers and the usage spool share one dp_pdp. */
#ifndef DP_PDP_H
#define DP_PDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_wire.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"

typedef struct dp_pdp dp_pdp;

/* Called exactly once on an nng thread; must not block. On err != TG_OK
 * (timeout, PDP unreachable, undecodable reply) d is NULL and why says
 * what happened. d and why are valid only during the call. */
typedef void (*dp_pdp_decision_cb)(void *arg, tg_err err, const tg_decision *d,
                                   const char *why);
typedef void (*dp_pdp_ack_cb)(void *arg, tg_err err, const tg_usage_ack *ack);
typedef void (*dp_pdp_batch_cb)(void *arg, tg_err err,
                                const tg_usage_item_ack *acks, size_t n);

/* dp_pdp_create dials url in the background (a PDP that is not up yet is
 * fine: calls fail until it is). Owns: *out, free with dp_pdp_destroy. */
tg_err dp_pdp_create(dp_pdp **out, const char *url, size_t max_reply);

/* dp_pdp_create_as is dp_pdp_create for a PDP that runs as pdp_uid (-1:
 * our own uid). For an ipc:// url it returns TG_ECONFIG (logged) when the
 * socket's directory exists and is owned by another uid than pdp_uid and
 * root, or writable by group or other; and it closes every connection
 * whose peer does not run as pdp_uid. */
tg_err dp_pdp_create_as(dp_pdp **out, const char *url, size_t max_reply,
                        int64_t pdp_uid);

/* dp_pdp_create_tls is dp_pdp_create_as that also speaks tls+tcp://: tls
 * (borrowed until dp_pdp_destroy) names this data plane's certificate and
 * the CA and name the PDP's must match; its files are watched, and new
 * connections use new certificates once they change. tls may be NULL for
 * ipc:// and tcp://. */
tg_err dp_pdp_create_tls(dp_pdp **out, const char *url, size_t max_reply,
                         int64_t pdp_uid, const tg_tls_files *tls);

/* dp_pdp_url: the URL it dials (borrowed). */
const char *dp_pdp_url(const dp_pdp *pdp);

/* dp_pdp_set_max_request: a message longer than max (the PDP's
 * pdp.max_message_bytes, which it drops unread), or than max_resp for a
 * stored response's (pdp.responses.max_response_bytes and the rest), is
 * not sent; the call returns TG_ETOOBIG. 0: no limit (the default). Call
 * before any call. */
void dp_pdp_set_max_request(dp_pdp *pdp, size_t max, size_t max_resp);

/* dp_pdp_destroy stops every call in flight (their callbacks run with
 * TG_ECLOSED) and frees. NULL-safe. */
void dp_pdp_destroy(dp_pdp *pdp);

/* dp_pdp_decide asks for a decision. If it returns an error, cb is never
 * called. Borrows req until return. */
tg_err dp_pdp_decide(dp_pdp *pdp, const tg_decide *req, int64_t timeout_ms,
                     dp_pdp_decision_cb cb, void *arg);

/* dp_pdp_usage reports usage; same contract as dp_pdp_decide. */
tg_err dp_pdp_usage(dp_pdp *pdp, const tg_usage *u, int64_t timeout_ms,
                    dp_pdp_ack_cb cb, void *arg);

/* dp_pdp_usage_batch reports n (1 to TG_USAGE_BATCH_MAX) reports in one
 * message, each with its content (content NULL, or content[i] NULL:
 * none); cb gets one ack per report, in order (or err for all). A PDP
 * that does not know batches answers with an error: TG_EPROTO. Borrows u
 * until cb has run; same contract as dp_pdp_decide otherwise. */
tg_err dp_pdp_usage_batch(dp_pdp *pdp, const tg_usage *u,
                          const char *const *content, const size_t *content_len,
                          size_t n, int64_t timeout_ms, dp_pdp_batch_cb cb,
                          void *arg);

/* dp_pdp_guard_cb gets the guard set asked for: err TG_OK and found with
 * its spec (the callee takes it: free()), or found false (the PDP no
 * longer holds it), or an error (why). Runs on an nng thread: must not
 * block. */
typedef void (*dp_pdp_guard_cb)(void *arg, tg_err err, bool found, char *spec,
                                size_t len, const char *why);

/* dp_pdp_guard_fetch asks for the guard set named hash (a Decision's
 * guard_set); same contract as dp_pdp_decide. */
tg_err dp_pdp_guard_fetch(dp_pdp *pdp, const char *hash, int64_t timeout_ms,
                          dp_pdp_guard_cb cb, void *arg);

/* dp_pdp_resp_cb receives a stored response's RespReply (rep: owned by
 * the callback, dp_wire_resp_fini; NULL on an error, why says it). Runs on
 * an nng thread: must not block. */
typedef void (*dp_pdp_resp_cb)(void *arg, tg_err err, dp_wire_resp *rep,
                               const char *why);

/* dp_pdp_resp puts, gets or deletes a stored Responses API response
 * (op on r: tenant, id, and for a put the rest); same contract as
 * dp_pdp_decide. TG_ETOOBIG: a put larger than the PDP takes
 * (pdp.max_message_bytes); TG_ECLOSED: the PDP is not connected now. */
tg_err dp_pdp_resp(dp_pdp *pdp, dp_wire_resp_op op, const char *request_id,
                   const dp_wire_resp *r, int64_t timeout_ms, dp_pdp_resp_cb cb,
                   void *arg);

/* dp_pdp_connected tells whether a connection to the PDP is up now. */
bool dp_pdp_connected(dp_pdp *pdp);

/* dp_pdp_redials counts the times the link replaced its dialer after it
 * went without a connection for 4 s (see dp_pdp_tick in dp_pdp.c). */
uint64_t dp_pdp_redials(dp_pdp *pdp);

#endif
