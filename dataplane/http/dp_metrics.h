/* dp_metrics.h - the data plane's counters and the two views of them:
 * GET /metrics (Prometheus text) and GET /admin/deployments (JSON).
 * Thread-safe: every counter is an atomic; the views read the rest through
 * the thread-safe objects of a dp_host. */
#ifndef DP_METRICS_H
#define DP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "tg_buf.h"

typedef struct dp_host dp_host;

typedef struct dp_metrics {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t responses[6]; /* by status class 1xx..5xx */
    atomic_uint_fast64_t pdp_errors;
    /* Decisions asked of a later dataplane.pdp_url because the first
     * was not connected. */
    atomic_uint_fast64_t pdp_fallback_decisions;
    atomic_uint_fast64_t decisions_reused; /* dp_reuse, not asked */
    atomic_uint_fast64_t pdp_fail_open; /* allowed by on_pdp_error: allow */
    atomic_uint_fast64_t pdp_fail_open_refused; /* key not allowed lately */
    atomic_uint_fast64_t upstream_errors;
    atomic_uint_fast64_t client_disconnects;
    atomic_int_fast64_t  inflight;
    atomic_uint_fast64_t prompt_tokens;
    atomic_uint_fast64_t completion_tokens;
    atomic_uint_fast64_t spool_refused; /* 503 usage_spool_full */
    /* on_log_full while the decision log's backlog is over its bound */
    atomic_uint_fast64_t records_shed;    /* served, recorded without */
    atomic_uint_fast64_t records_refused; /* 503 decision_log_full */
} dp_metrics;

/* dp_metrics_count_status counts one response by its status class (600
 * and above count as 5xx). */
void dp_metrics_count_status(dp_metrics *m, unsigned status);

/* dp_metrics_text appends every metric, h->m's counters, the spool's,
 * the PDP link's and each deployment's health, to b; tg_buf_error(b) says
 * whether all of it fit. Borrows: h and b until return. */
void dp_metrics_text(const dp_host *h, tg_buf *b);

/* dp_metrics_deployments renders each deployment's circuit, in-flight
 * requests, time to first token and counters (no credentials, no URLs) as
 * {"deployments":[...]}. NULL: out of memory. Owns: the result, free with
 * cJSON_free. */
char *dp_metrics_deployments(const dp_host *h);

#endif
