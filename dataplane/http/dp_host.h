/* dp_host.h - what a worker borrows from the server that runs it (config,
 * PDP client, spool, key cache, health, prices, deployments, counters),
 * and resolving the deployments. Filled by dp_server before the workers
 * start, read-only after, valid until they stop; thread-safe. */
#ifndef DP_HOST_H
#define DP_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_health.h"
#include "dp_keycache.h"
#include "dp_guard.h"
#include "dp_pdp.h"
#include "dp_provider.h"
#include "dp_spool.h"
#include "tg_config.h"
#include "tg_pricing.h"

typedef struct dp_metrics dp_metrics;

typedef struct dp_host {
    const tg_config  *cfg;
    dp_pdp           *pdp;
    dp_guard         *guard; /* guard sets from the PDP */
    dp_spool         *spool;
    dp_keycache      *keys;       /* on_pdp_error: allow only; else NULL */
    struct dp_reuse  *reuse;      /* decisions reused (the first PDP's) */
    dp_health        *health;     /* one slot per upstream, by index */
    const tg_pricing *pricing;    /* pdp.pricing_file (lowest_cost); may be
                                     empty */
    const dp_upstream *upstreams; /* by catalog index */
    size_t             n_upstreams;
    dp_metrics        *m;
    const atomic_bool *stopping; /* set when dp_server_destroy begins */
    /* dataplane.pdp_url's PDPs in order of preference (pdp, guard and
     * spool above are the first's). A request is decided, guarded and
     * reported by the one dp_host_pick chose when it started
     * (dp_req.pdp_idx): reservations live in that PDP. */
    dp_pdp   *pdps[TG_CONFIG_MAX_PDP_URLS];
    dp_guard *guards[TG_CONFIG_MAX_PDP_URLS];
    dp_spool *spools[TG_CONFIG_MAX_PDP_URLS];
    size_t    n_pdps;
    struct dp_otel    *otel;     /* traces out; NULL: dataplane.otel off */
} dp_host;

/* dp_host_upstreams resolves cfg's deployments: api_base without a
 * trailing '/', each provider's credential header from its api_key (a
 * deployment whose environment variable is unset is not usable, logged).
 * Borrows: cfg for the result's life. Owns: *out (n of them), free with
 * dp_host_upstreams_free. */
tg_err dp_host_upstreams(const tg_config *cfg, dp_upstream **out, size_t *n);

/* dp_host_upstreams_free wipes the credentials and frees ups. NULL-safe. */
void dp_host_upstreams_free(dp_upstream *ups, size_t n);

/* dp_host_upstream finds the resolved deployment by id; NULL if none.
 * Borrows: the result, valid as long as h. */
const dp_upstream *dp_host_upstream(const dp_host *h, const char *id);

/* dp_host_cost is what a deployment charges (input + output per 1M
 * tokens): its own "pricing", else the price table's for its model; 0
 * unknown. */
int64_t dp_host_cost(const dp_host *h, const dp_upstream *up);

/* dp_host_stopping: the data plane is shutting down; answer 503. */
bool dp_host_stopping(const dp_host *h);

/* dp_host_pick: the first PDP connected now (0 when none is: the
 * request then fails as it always did, against the preferred one). */
size_t dp_host_pick(const dp_host *h);

/* dp_host_connected: some PDP is connected. */
bool dp_host_connected(const dp_host *h);

#endif
