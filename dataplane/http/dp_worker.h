/* dp_worker.h - a worker thread: owns one curl multi handle and the
 * requests handed to it; asks the PDP, forwards upstream, streams the
 * answer into the request's output and reports usage. Only the worker
 * touches a request's worker fields. submit/cancel/unpause are
 * thread-safe (a short queue lock and a curl_multi_wakeup). */
#ifndef DP_WORKER_H
#define DP_WORKER_H

#include "dp_req.h"
#include "tg_err.h"

tg_err dp_worker_create(dp_worker **out, dp_server *srv, unsigned index);

/* dp_worker_stop stops the thread and answers every request it holds (503,
 * or an error event on streams). Its queue stays valid: posts after stop
 * are released by dp_worker_destroy. Call after the PDP client is gone. */
void dp_worker_stop(dp_worker *w);

/* dp_worker_destroy frees a stopped worker. NULL-safe. */
void dp_worker_destroy(dp_worker *w);

/* dp_worker_submit hands r (with its body in) to the worker and takes a
 * ref. false: not taken (the worker has stopped, or out of memory); the
 * caller answers the request itself. */
bool dp_worker_submit(dp_worker *w, dp_req *r);

/* dp_worker_cancel tells the worker the client went away. */
void dp_worker_cancel(dp_worker *w, dp_req *r);

/* dp_worker_unpause tells the worker the client drained r's output. */
void dp_worker_unpause(dp_worker *w, dp_req *r);

#endif
