/* dp_metrics.c - GET /metrics and GET /admin/deployments, rendered from
 * the counters, the spool, the PDP link and deployment health. Called on
 * the MHD thread; thread-safe (dp_metrics.h). */
#include "dp_metrics.h"

#include "dp_guard_req.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "dp_host.h"
#include "dp_otel.h"
#include "tg_time.h"

void
dp_metrics_count_status(dp_metrics *m, unsigned status)
{
    unsigned cls = status / 100;

    atomic_fetch_add(&m->responses[cls < 6 ? cls : 5], 1);
}

/* dp_metrics_deployment_text appends per-deployment health, one metric
 * family at a time (the text format wants each family's lines together). */
static void
dp_metrics_deployment_text(const dp_host *h, tg_buf *b)
{
    static const char *const families[] = {
        "# HELP tollgate_deployment_up 1 while a deployment takes traffic, 0 "
        "while it cools down after failures.\n"
        "# TYPE tollgate_deployment_up gauge\n",
        "# HELP tollgate_deployment_cooldowns_total Times a deployment was "
        "taken out after failures.\n"
        "# TYPE tollgate_deployment_cooldowns_total counter\n",
        "# HELP tollgate_deployment_attempts_total Upstream attempts by "
        "outcome.\n"
        "# TYPE tollgate_deployment_attempts_total counter\n",
        "# TYPE tollgate_deployment_inflight gauge\n",
        "# HELP tollgate_deployment_ttft_seconds Moving average of the time "
        "to the first byte (streams) or the answer.\n"
        "# TYPE tollgate_deployment_ttft_seconds gauge\n",
    };
    int64_t         now = tg_mono_us() / 1000;
    dp_health_stat *st  = calloc(h->n_upstreams + 1, sizeof(*st));

    if (st == NULL) {
        tg_buf_fail(b, TG_ENOMEM); /* the metrics answer 500 */
        return;
    }
    for (size_t i = 0; i < h->n_upstreams; i++) {
        dp_health_get(h->health, i, now, &st[i]);
    }
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        tg_buf_addf(b, "%s", families[f]);
        for (size_t i = 0; i < h->n_upstreams; i++) {
            const char *id = h->upstreams[i].dep->id;
            switch (f) {
            case 0:
                tg_buf_addf(b,
                            "tollgate_deployment_up{deployment=\"%s\","
                            "state=\"%s\"} %d\n",
                            id, dp_health_circuit_name(st[i].state),
                            st[i].state == DP_CIRCUIT_OK ? 1 : 0);
                break;
            case 1:
                tg_buf_addf(b,
                            "tollgate_deployment_cooldowns_total{deployment="
                            "\"%s\"} %llu\n",
                            id, (unsigned long long)st[i].cooldowns);
                break;
            case 2:
                tg_buf_addf(b,
                            "tollgate_deployment_attempts_total{deployment="
                            "\"%s\",result=\"ok\"} %llu\n"
                            "tollgate_deployment_attempts_total{deployment="
                            "\"%s\",result=\"failed\"} %llu\n",
                            id, (unsigned long long)st[i].successes, id,
                            (unsigned long long)st[i].failures_total);
                break;
            case 3:
                tg_buf_addf(b,
                            "tollgate_deployment_inflight{deployment=\"%s\"} "
                            "%lld\n",
                            id, (long long)st[i].inflight);
                break;
            default:
                tg_buf_addf(b,
                            "tollgate_deployment_ttft_seconds{deployment="
                            "\"%s\"} %.6f\n",
                            id, (double)st[i].ttft_ewma_us / 1e6);
                break;
            }
        }
    }
    free(st);
}

/* dp_metrics_spools sums one spool figure over every dataplane.pdp_url's
 * spool. */
static uint64_t
dp_metrics_spools(const dp_host *h, uint64_t (*fig)(dp_spool *))
{
    uint64_t n = 0;

    for (size_t i = 0; i < h->n_pdps; i++) {
        n += fig(h->spools[i]);
    }
    return n;
}

/* dp_metrics_pdp_links: each dataplane.pdp_url's connection and how many
 * decisions went to a later one because the first was down. */
static void
dp_metrics_pdp_links(const dp_host *h, const dp_metrics *m, tg_buf *out)
{
    tg_buf_addf(out,
                "# HELP tollgate_pdp_link_connected Whether each "
                "dataplane.pdp_url (by position, 0 preferred) is connected.\n"
                "# TYPE tollgate_pdp_link_connected gauge\n");
    for (size_t i = 0; i < h->n_pdps; i++) {
        tg_buf_addf(out, "tollgate_pdp_link_connected{pdp=\"%zu\"} %d\n", i,
                    dp_pdp_connected(h->pdps[i]) ? 1 : 0);
    }
    tg_buf_addf(out, "# HELP tollgate_pdp_link_redials_total Times each "
                     "dataplane.pdp_url's link, without a connection for 4 s, "
                     "started dialling again with a new dialer.\n"
                     "# TYPE tollgate_pdp_link_redials_total counter\n");
    for (size_t i = 0; i < h->n_pdps; i++) {
        tg_buf_addf(out, "tollgate_pdp_link_redials_total{pdp=\"%zu\"} %llu\n",
                    i, (unsigned long long)dp_pdp_redials(h->pdps[i]));
    }
    tg_buf_addf(out,
                "# HELP tollgate_pdp_fallback_decisions_total Requests "
                "decided by a later dataplane.pdp_url because the first was "
                "not connected.\n"
                "# TYPE tollgate_pdp_fallback_decisions_total counter\n"
                "tollgate_pdp_fallback_decisions_total %llu\n"
                "# HELP tollgate_decisions_reused_total Requests decided by "
                "a decision the PDP made earlier and marked reusable "
                "(dataplane.decision_reuse_ms), not asked again.\n"
                "# TYPE tollgate_decisions_reused_total counter\n"
                "tollgate_decisions_reused_total %llu\n",
                (unsigned long long)atomic_load(&m->pdp_fallback_decisions),
                (unsigned long long)atomic_load(&m->decisions_reused));
}

void
dp_metrics_text(const dp_host *h, tg_buf *b)
{
    dp_metrics *m = h->m;

    tg_buf_addf(b,
                "# HELP tollgate_requests_total Client requests received.\n"
                "# TYPE tollgate_requests_total counter\n"
                "tollgate_requests_total %llu\n"
                "# HELP tollgate_responses_total Responses by status "
                "class.\n"
                "# TYPE tollgate_responses_total counter\n",
                (unsigned long long)atomic_load(&m->requests));
    for (int i = 1; i < 6; i++) {
        tg_buf_addf(b, "tollgate_responses_total{class=\"%dxx\"} %llu\n", i,
                    (unsigned long long)atomic_load(&m->responses[i]));
    }
    tg_buf_addf(
        b,
        "# TYPE tollgate_pdp_errors_total counter\n"
        "tollgate_pdp_errors_total %llu\n"
        "# TYPE tollgate_pdp_fail_open_total counter\n"
        "tollgate_pdp_fail_open_total %llu\n"
        "# HELP tollgate_pdp_fail_open_refused_total Requests refused while "
        "failing open: the PDP had not allowed their key recently.\n"
        "# TYPE tollgate_pdp_fail_open_refused_total counter\n"
        "tollgate_pdp_fail_open_refused_total %llu\n"
        "# TYPE tollgate_upstream_errors_total counter\n"
        "tollgate_upstream_errors_total %llu\n"
        "# TYPE tollgate_client_disconnects_total counter\n"
        "tollgate_client_disconnects_total %llu\n"
        "# TYPE tollgate_inflight_requests gauge\n"
        "tollgate_inflight_requests %lld\n"
        "# TYPE tollgate_tokens_total counter\n"
        "tollgate_tokens_total{kind=\"prompt\"} %llu\n"
        "tollgate_tokens_total{kind=\"completion\"} %llu\n"
        "# HELP tollgate_usage_spool_pending Usage reports the PDP has not "
        "acknowledged yet (on disk or waiting in memory).\n"
        "# TYPE tollgate_usage_spool_pending gauge\n"
        "tollgate_usage_spool_pending %llu\n"
        "# HELP tollgate_usage_spool_bytes Usage records waiting in memory "
        "because the spool's disk refuses writes.\n"
        "# TYPE tollgate_usage_spool_bytes gauge\n"
        "tollgate_usage_spool_bytes %llu\n"
        "# TYPE tollgate_usage_spool_memory_max_bytes gauge\n"
        "tollgate_usage_spool_memory_max_bytes %llu\n"
        "# HELP tollgate_usage_spool_refused_total Requests refused because "
        "their usage could not be recorded.\n"
        "# TYPE tollgate_usage_spool_refused_total counter\n"
        "tollgate_usage_spool_refused_total %llu\n"
        "# TYPE tollgate_usage_reports_acked_total counter\n"
        "tollgate_usage_reports_acked_total %llu\n"
        "# HELP tollgate_decision_records_shed_total Requests recorded "
        "without their metadata or content because the decision log's "
        "backlog was full (on_log_full: shed).\n"
        "# TYPE tollgate_decision_records_shed_total counter\n"
        "tollgate_decision_records_shed_total %llu\n"
        "# HELP tollgate_decision_records_refused_total Requests refused "
        "because the decision log's backlog was full (on_log_full: deny).\n"
        "# TYPE tollgate_decision_records_refused_total counter\n"
        "tollgate_decision_records_refused_total %llu\n"
        "# TYPE tollgate_pdp_connected gauge\n"
        "tollgate_pdp_connected %d\n",
        (unsigned long long)atomic_load(&m->pdp_errors),
        (unsigned long long)atomic_load(&m->pdp_fail_open),
        (unsigned long long)atomic_load(&m->pdp_fail_open_refused),
        (unsigned long long)atomic_load(&m->upstream_errors),
        (unsigned long long)atomic_load(&m->client_disconnects),
        (long long)atomic_load(&m->inflight),
        (unsigned long long)atomic_load(&m->prompt_tokens),
        (unsigned long long)atomic_load(&m->completion_tokens),
        (unsigned long long)dp_metrics_spools(h, dp_spool_pending),
        (unsigned long long)dp_metrics_spools(h, dp_spool_held_bytes),
        (unsigned long long)dp_spool_mem_max(h->spool),
        (unsigned long long)atomic_load(&m->spool_refused),
        (unsigned long long)dp_metrics_spools(h, dp_spool_acked),
        (unsigned long long)atomic_load(&m->records_shed),
        (unsigned long long)atomic_load(&m->records_refused),
        dp_host_connected(h) ? 1 : 0);
    dp_metrics_pdp_links(h, m, b);
    if (h->otel != NULL) {
        dp_otel_stats st;
        dp_otel_stats_get(h->otel, &st);
        tg_buf_addf(b,
                    "# HELP tollgate_otel_spans_total Trace spans by what "
                    "became of them (exported, dropped: the queue was full, "
                    "failed: the collector did not take them).\n"
                    "# TYPE tollgate_otel_spans_total counter\n"
                    "tollgate_otel_spans_total{result=\"exported\"} %llu\n"
                    "tollgate_otel_spans_total{result=\"dropped\"} %llu\n"
                    "tollgate_otel_spans_total{result=\"failed\"} %llu\n"
                    "# TYPE tollgate_otel_spans_queued gauge\n"
                    "tollgate_otel_spans_queued %llu\n",
                    (unsigned long long)st.exported,
                    (unsigned long long)st.dropped,
                    (unsigned long long)st.failed,
                    (unsigned long long)st.queued);
    }
    dp_metrics_deployment_text(h, b);
    dp_guard_metrics(b);
}

char *
dp_metrics_deployments(const dp_host *h)
{
    int64_t now = tg_mono_us() / 1000;
    cJSON  *doc = cJSON_CreateObject();
    cJSON  *arr = cJSON_AddArrayToObject(doc, "deployments");
    char   *txt;

    for (size_t i = 0; i < h->n_upstreams; i++) {
        const dp_upstream *up = &h->upstreams[i];
        dp_health_stat     st;
        cJSON             *j = cJSON_CreateObject();

        dp_health_get(h->health, i, now, &st);
        cJSON_AddStringToObject(j, "id", up->dep->id);
        cJSON_AddStringToObject(j, "model", up->dep->model);
        cJSON_AddStringToObject(j, "provider", up->dep->provider);
        cJSON_AddBoolToObject(j, "usable", up->usable);
        cJSON_AddStringToObject(j, "state", dp_health_circuit_name(st.state));
        cJSON_AddNumberToObject(j, "cooldown_remaining_ms",
                                (double)(st.cooldown_until_ms > now
                                             ? st.cooldown_until_ms - now
                                             : 0));
        cJSON_AddNumberToObject(j, "inflight", (double)st.inflight);
        cJSON_AddNumberToObject(j, "ttft_ms", (double)st.ttft_ewma_us / 1000);
        cJSON_AddNumberToObject(j, "recent_failures", (double)st.failures);
        cJSON_AddNumberToObject(j, "successes", (double)st.successes);
        cJSON_AddNumberToObject(j, "failures", (double)st.failures_total);
        cJSON_AddNumberToObject(j, "cooldowns", (double)st.cooldowns);
        cJSON_AddItemToArray(arr, j);
    }
    txt = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return txt;
}
