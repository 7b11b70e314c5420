/* dp_server.h - the data plane: the client-facing HTTP listener
 * (libmicrohttpd), its workers, the PDP client and the usage spool.
 * dp_server_create/destroy are called by main only; the struct is shared
 * with dp_worker.c, which reads it without locks (immutable after create)
 * except for the atomic counters. */
#ifndef DP_SERVER_H
#define DP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "dp_health.h"
#include "dp_keycache.h"
#include "dp_pdp.h"
#include "dp_provider.h"
#include "dp_req.h"
#include "dp_spool.h"
#include "tg_deadline.h"
#include "tg_config.h"
#include "tg_pricing.h"


typedef struct dp_metrics {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t responses[6]; /* by status class 1xx..5xx */
    atomic_uint_fast64_t pdp_errors;
    atomic_uint_fast64_t pdp_fail_open; /* allowed by on_pdp_error: allow */
    atomic_uint_fast64_t pdp_fail_open_refused; /* key not allowed lately */
    atomic_uint_fast64_t upstream_errors;
    atomic_uint_fast64_t client_disconnects;
    atomic_int_fast64_t  inflight;
    atomic_uint_fast64_t prompt_tokens;
    atomic_uint_fast64_t completion_tokens;
    atomic_uint_fast64_t spool_refused; /* 503 usage_spool_full */
} dp_metrics;

struct dp_server {
    const tg_config   *cfg;
    struct MHD_Daemon *mhd;
    dp_pdp            *pdp;
    dp_spool          *spool;
    dp_keycache       *keys; /* on_pdp_error: allow only: keys allowed lately */
    dp_worker        **workers;
    size_t             n_workers;
    atomic_uint        next_worker;
    dp_upstream       *upstreams;
    size_t             n_upstreams;
    dp_health         *health; /* one slot per upstream, by index */
    tg_pricing        *pricing; /* pdp.pricing_file (lowest_cost); may be empty */
    dp_metrics         m;
    uint64_t           boot_id;
    atomic_uint_fast64_t seq;
    atomic_bool        stopping;
    tg_deadline       *deadline; /* dataplane.request_timeout_s */
};

/* dp_server_create starts listening and serving. Borrows cfg until
 * destroy. Owns: *out. */
tg_err dp_server_create(dp_server **out, const tg_config *cfg);

/* dp_server_destroy stops accepting, answers what is in flight, stops the
 * workers and flushes the usage spool. NULL-safe. */
void dp_server_destroy(dp_server *srv);

/* dp_server_upstream finds the resolved deployment by id; NULL if none. */
const dp_upstream *dp_server_upstream(const dp_server *srv, const char *id);

/* dp_server_resume resumes r's MHD connection if it is suspended.
 * Call with r->mtx held. */
void dp_server_resume_locked(dp_req *r);

#endif
