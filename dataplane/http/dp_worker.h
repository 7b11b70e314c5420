/* dp_worker.h - a worker thread: owns one curl multi and the requests
 * handed to it; asks the PDP, forwards upstream, streams the answer and
 * reports usage. submit/cancel/unpause are thread-safe (a short queue
 * lock and a wakeup); create/stop/destroy are for dp_server only. */
#ifndef DP_WORKER_H
#define DP_WORKER_H

#include <stdbool.h>

#include "dp_host.h"
#include "dp_req.h"
#include "tg_err.h"

/* dp_worker_create starts worker number index. Borrows: h (and what it
 * points to) until dp_worker_destroy. Owns: *out. */
tg_err dp_worker_create(dp_worker **out, const dp_host *h, unsigned index);

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
