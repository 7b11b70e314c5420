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

/* An event loop a worker drives beside its own: the HTTP server's, so
 * that a request taken on that thread is decided, sent upstream and
 * answered there, never handed between threads. The worker also wakes
 * when fd is readable, waits at most timeout_ms(arg) (-1: no bound of its
 * own, 0: run now), and calls run(arg) when fd was readable, that
 * timeout came or dp_worker_wake asked for it. */
typedef struct dp_worker_loop {
    int fd;
    void (*run)(void *arg);
    int64_t (*timeout_ms)(void *arg);
    void *arg;
} dp_worker_loop;

/* dp_worker_create starts worker number index, driving loop too (NULL:
 * none). Borrows: h (and what it points to) and loop until
 * dp_worker_destroy. Owns: *out. */
tg_err dp_worker_create(dp_worker **out, const dp_host *h, unsigned index,
                        const dp_worker_loop *loop);

/* dp_worker_held: the requests w holds now (taken, not finished). Any
 * thread; a hint for choosing a worker. */
unsigned dp_worker_held(const dp_worker *w);

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

/* dp_worker_wake makes the worker go round its loop and run the loop it
 * drives now (from its own thread: after what it is doing, without a
 * call). */
void dp_worker_wake(dp_worker *w);

/* dp_worker_cancel tells the worker the client went away. */
void dp_worker_cancel(dp_worker *w, dp_req *r);

/* dp_worker_unpause tells the worker the client drained r's output. */
void dp_worker_unpause(dp_worker *w, dp_req *r);

#endif
