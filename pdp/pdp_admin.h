/* pdp_admin.h - the PDP's small HTTP listener (libmicrohttpd) on
 * pdp.admin_listen: GET /healthz, GET /readyz; later issues add the admin
 * API here. Runs its own MHD thread; start/stop from one thread. */
#ifndef PDP_ADMIN_H
#define PDP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

typedef struct pdp_admin pdp_admin;

/* pdp_admin_ready_fn says whether the PDP can answer decisions; called on
 * the MHD thread, so it must be thread-safe and quick. */
typedef bool (*pdp_admin_ready_fn)(void *arg);

/* pdp_admin_start listens on hostport ("127.0.0.1:7071", "[::1]:7071";
 * port 0 picks a free one). /readyz answers 200 while ready(arg) is true,
 * else 503. Borrows arg until pdp_admin_stop returns.
 * Owns: *out, free with pdp_admin_stop. */
tg_err pdp_admin_start(pdp_admin **out, const char *hostport,
                       pdp_admin_ready_fn ready, void *arg, char *err,
                       size_t errlen);

/* pdp_admin_port is the bound TCP port (useful after port 0). */
uint16_t pdp_admin_port(const pdp_admin *a);

/* pdp_admin_stop closes the listener and joins its thread; NULL: no-op. */
void pdp_admin_stop(pdp_admin *a);

#endif
