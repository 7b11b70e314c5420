/* dp_server.h - the data plane: the client-facing HTTP listener
 * (libmicrohttpd), its workers, the PDP client and the usage spool.
 * Opaque; dp_server_create/destroy are called by main only. */
#ifndef DP_SERVER_H
#define DP_SERVER_H

#include <stddef.h>

#include "tg_config.h"
#include "tg_err.h"

typedef struct dp_server dp_server;

/* dp_server_create starts listening and serving. Borrows cfg until
 * destroy. Owns: *out. */
tg_err dp_server_create(dp_server **out, const tg_config *cfg);

/* dp_server_destroy stops accepting, answers what is in flight, stops the
 * workers and flushes the usage spool. NULL-safe. */
void dp_server_destroy(dp_server *srv);

/* dp_server_drain (on SIGTERM, before dp_server_destroy): /readyz fails
 * at once; new requests are still served for accept_s (a Service takes a
 * moment to stop sending them); then the listener closes and requests and
 * streams in flight get until timeout_s after the start to finish. */
void dp_server_drain(dp_server *srv, int64_t accept_s, int64_t timeout_s);

/* dp_server_workers returns how many worker threads srv runs. */
size_t dp_server_workers(const dp_server *srv);

#endif
