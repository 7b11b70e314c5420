/* pdp_server.h - answers PdpRequests on one nng rep0 socket listening on
 * every pdp.listen URL, with pdp.workers contexts driven by aio callbacks.
 * Decide/Hello/Ping are answered inside the callback; a Usage report is
 * answered from the store's writer thread once it is durably committed, so
 * an ack always means durable. Start and stop from one thread (main). */
#ifndef PDP_SERVER_H
#define PDP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "tg_pricing.h"
#include "pdp_rollout.h"
#include "pdp_limits.h"
#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_err.h"

#define PDP_VERSION "0.1.0"

typedef struct pdp_server pdp_server;

/* pdp_server_start listens on every cfg->pdp.listen URL (creating the
 * parent directory of an ipc:// path; nng itself replaces a stale socket
 * file that nothing answers on) and logs one line per listener. On failure
 * nothing is left listening and err says which URL and why. Each decision
 * takes the bundle in effect from ro (NULL: no policy, catalog routing).
 * Borrows: cfg, st, pr and ro until pdp_server_stop returns.
 * Owns: *out, free with pdp_server_stop. */
tg_err pdp_server_start(pdp_server **out, const tg_config *cfg, pdp_store *st,
                        tg_pricing *pr, pdp_rollout *ro, char *err,
                        size_t errlen);

/* pdp_server_start_up is pdp_server_start for a sidecar PDP (up non-NULL):
 * budgets and rate limits are admitted against up's leases, and committed
 * reports free what they held there. Borrows up until stop. */
struct pdp_upstream;
tg_err pdp_server_start_up(pdp_server **out, const tg_config *cfg,
                           pdp_store *st, tg_pricing *pr, pdp_rollout *ro,
                           struct pdp_upstream *up, char *err, size_t errlen);

/* pdp_server_ready is true once every listener is up. Thread-safe. */
bool pdp_server_ready(const pdp_server *srv);

/* pdp_server_drain (after SIGTERM): readiness fails at once; decisions and
 * usage reports are still served until every data plane has disconnected
 * or timeout_s passed. NULL-safe. */
void pdp_server_drain(pdp_server *srv, int64_t timeout_s);

/* pdp_server_metrics appends Prometheus text: decisions by verdict.
 * Thread-safe; srv may be NULL (all zero). */
void pdp_server_metrics(pdp_server *srv, tg_buf *out);

/* pdp_server_limits is the server's rate-limit and budget state (for the
 * admin API's reserved spend); NULL when srv is NULL. Borrows: valid until
 * pdp_server_stop. */
pdp_limits *pdp_server_limits(pdp_server *srv);

/* pdp_server_stop closes the listeners, waits for usage reports already
 * handed to the store (their replies are attempted), stops every aio and
 * frees the server. NULL is a no-op. */
void pdp_server_stop(pdp_server *srv);

#endif
