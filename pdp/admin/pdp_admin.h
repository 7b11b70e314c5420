/* pdp_admin.h - the PDP's small HTTP listener (libmicrohttpd) on
 * pdp.admin_listen: GET /healthz, GET /readyz, GET /metrics (Prometheus),
 * unauthenticated for probes and scrapers; and, behind an admin token
 * (Authorization: Bearer), POST /admin/reload[?allow_rollback=1] (what
 * `tollgate-pdp reload` calls) and the JSON admin API under /admin/v1/.
 * One MHD thread per connection, so a slow reload never delays a probe;
 * start/stop from one thread. */
#ifndef PDP_ADMIN_H
#define PDP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_config.h"
#include "tg_err.h"

/* serve mints an admin token named PDP_ADMIN_TOKEN_LOCAL at each start
 * and writes it to <state_dir>/PDP_ADMIN_TOKEN_FILE (0600) for the CLI on
 * the same machine. */
#define PDP_ADMIN_TOKEN_FILE "admin.token"
#define PDP_ADMIN_TOKEN_LOCAL "local"

typedef struct pdp_admin pdp_admin;

/* What the endpoints call, on MHD threads (any number at once): each must
 * be thread-safe. A NULL hook answers 404 for its path (ready: 503). */
typedef struct pdp_admin_hooks {
    /* ready says whether the PDP can answer decisions; quick. */
    bool (*ready)(void *arg);
    /* metrics appends Prometheus text exposition to out. */
    void (*metrics)(void *arg, tg_buf *out);
    /* reload reloads the policy bundle, writes a JSON object to out and
     * returns the HTTP status (200 done or already active, 409 refused). */
    unsigned (*reload)(void *arg, const char *actor, bool allow_rollback,
                       tg_buf *out);
    /* auth says whether token (the bearer token; NULL when none was sent)
     * may administer this PDP, and names who it is in actor. NULL: every
     * /admin/ path answers 401. */
    bool (*auth)(void *arg, const char *token, char *actor, size_t cap);
    /* api answers /admin/v1/... (pdp_api_handle): writes the body to out,
     * its type to *ctype and returns the status. */
    unsigned (*api)(void *arg, const char *actor, const char *method,
                    const char *url, const char *query, const char *body,
                    size_t len, tg_buf *out, const char **ctype);
    void *arg;
    /* probes_only: the probe listener (pdp.probe_listen): /healthz,
     * /readyz and /metrics; every /admin/ path is 404 there, whatever the
     * token. */
    bool probes_only;
    /* tls (NULL, or no cert_file: plain HTTP): serve HTTPS with this
     * certificate and key (read at start; a restart picks up new ones). */
    const tg_tls_files *tls;
} pdp_admin_hooks;

/* pdp_admin_start listens on hostport ("127.0.0.1:7071", "[::1]:7071";
 * port 0 picks a free one). /readyz answers 200 while hooks->ready(arg) is
 * true, else 503. Borrows: hooks->arg until pdp_admin_stop returns (hooks
 * itself is copied). Owns: *out, free with pdp_admin_stop. */
tg_err pdp_admin_start(pdp_admin **out, const char *hostport,
                       const pdp_admin_hooks *hooks, char *err, size_t errlen);

/* pdp_admin_port is the bound TCP port (useful after port 0). */
uint16_t pdp_admin_port(const pdp_admin *a);

/* pdp_admin_stop closes the listener and joins its thread; NULL: no-op. */
void pdp_admin_stop(pdp_admin *a);

#endif
