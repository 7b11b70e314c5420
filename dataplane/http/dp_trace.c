/* dp_trace.c - a request's trace context and spans (dp_trace.h). */
#include "dp_trace.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dp_otel.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

static void
dp_trace_hex_to(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned x = 0;
        sscanf(hex + 2 * i, "%2x", &x);
        out[i] = (uint8_t)x;
    }
}

void
dp_trace_begin(const dp_host *h, dp_req *r)
{
    if (r->trace_id[0] == '\0' && h->otel == NULL) {
        return; /* no trace: nothing to name, nothing to pass on */
    }
    dp_otel_random(r->span_id, sizeof(r->span_id));
    if (r->trace_id[0] == '\0') {
        uint8_t id[16];
        dp_otel_random(id, sizeof(id));
        tg_hex(id, sizeof(id), r->trace_id);
    }
}

void
dp_trace_attempt_start(const dp_host *h, dp_req *r, uint32_t up)
{
    dp_trace_attempt *a;
    char              tp[64];
    char              span[17];

    (void)h;
    if (r->n_attempts == DP_TRACE_ATTEMPTS_MAX) {
        return; /* more retries than spans: the last ones go untraced */
    }
    a = &r->attempts[r->n_attempts++];
    memset(a, 0, sizeof(*a));
    a->upstream = up;
    a->start_us = tg_mono_us();
    if (r->trace_id[0] != '\0') {
        dp_otel_random(a->span_id, sizeof(a->span_id));
        /* The provider sees this attempt as the parent of its work. */
        tg_hex(a->span_id, sizeof(a->span_id), span);
        snprintf(tp, sizeof(tp), "00-%s-%s-01", r->trace_id, span);
        if (dp_call_header(&r->call, "traceparent", tp) != TG_OK) {
            tg_warn("request %s: out of memory for its traceparent; the "
                    "provider's spans will not join its trace",
                    r->request_id);
        }
    }
}

void
dp_trace_attempt_end(dp_req *r, bool ok, const char *why)
{
    dp_trace_attempt *a =
        r->n_attempts > 0 ? &r->attempts[r->n_attempts - 1] : NULL;

    if (a == NULL || a->end_us != 0) {
        return;
    }
    a->end_us = tg_mono_us();
    a->ok     = ok;
    a->status = r->up_status;
    snprintf(a->why, sizeof(a->why), "%s", why != NULL ? why : "");
}

void
dp_trace_finish_reason(dp_req *r, const char *data, size_t len)
{
    static const char *const keys[] = {"\"finish_reason\":\"",
                                       "\"stop_reason\":\""};

    if (r->finish_reason[0] != '\0' || data == NULL) {
        return;
    }
    for (size_t k = 0; k < 2; k++) {
        size_t      kl = strlen(keys[k]);
        const char *p  = memmem(data, len, keys[k], kl);
        if (p != NULL) {
            const char *v   = p + kl;
            const char *end = memchr(v, '"', len - (size_t)(v - data));
            size_t      n   = end != NULL ? (size_t)(end - v) : 0;
            if (n > 0 && n < sizeof(r->finish_reason)) {
                memcpy(r->finish_reason, v, n);
                r->finish_reason[n] = '\0';
                return;
            }
        }
    }
}

/* ---- spans -------------------------------------------------------------- */

static const char *
dp_trace_operation(tg_endpoint ep)
{
    switch (ep) {
    case TG_EP_CHAT_COMPLETIONS:
    case TG_EP_MESSAGES:
        return "chat";
    case TG_EP_COMPLETIONS:
        return "text_completion";
    case TG_EP_EMBEDDINGS:
        return "embeddings";
    default:
        return "models";
    }
}

/* dp_trace_provider: gen_ai.provider.name of a deployment. */
static const char *
dp_trace_provider(const tg_deployment *d)
{
    switch (d->kind) {
    case TG_PROVIDER_AZURE:
        return "azure.ai.openai";
    case TG_PROVIDER_ANTHROPIC:
        return "anthropic";
    case TG_PROVIDER_GEMINI:
        return "gcp.gemini";
    case TG_PROVIDER_BEDROCK:
        return "aws.bedrock";
    case TG_PROVIDER_OPENAI:
        break;
    }
    return d->provider != NULL ? d->provider : "openai";
}

static const char *
dp_trace_upstream_model(const tg_deployment *d)
{
    return d->upstream_model != NULL ? d->upstream_model : d->model;
}

static void
dp_trace_s(dp_otel_span *s, const char *key, const char *v)
{
    dp_otel_str(s, key, v, strlen(v));
}

/* dp_trace_ns turns a monotonic time of r into unix nanoseconds. */
static int64_t
dp_trace_ns(const dp_req *r, int64_t mono_us)
{
    return r->started_ms * 1000000LL + (mono_us - r->started_us) * 1000LL;
}

static dp_otel_span *
dp_trace_child(const dp_req *r, const uint8_t trace[16], const char *name,
               dp_otel_kind kind)
{
    dp_otel_span *s = dp_otel_span_new();

    if (s != NULL) {
        memcpy(s->trace_id, trace, 16);
        memcpy(s->parent_id, r->span_id, 8);
        s->has_parent = true;
        s->kind       = kind;
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    return s;
}

/* dp_trace_content adds the bodies a full-capture record keeps. */
static void
dp_trace_content(dp_otel_span *s, const dp_req *r)
{
    cJSON       *c;
    const cJSON *in;
    const cJSON *out;

    if (r->content.len == 0 ||
        (c = cJSON_ParseWithLength(r->content.data, r->content.len)) == NULL) {
        return;
    }
    in  = cJSON_GetObjectItemCaseSensitive(c, "request");
    out = cJSON_GetObjectItemCaseSensitive(c, "response");
    if (cJSON_IsString(in)) {
        dp_trace_s(s, "gen_ai.input.messages", in->valuestring);
    }
    if (cJSON_IsString(out)) {
        dp_trace_s(s, "gen_ai.output.messages", out->valuestring);
    }
    cJSON_Delete(c);
}

static dp_otel_span *
dp_trace_root(const dp_host *h, const dp_req *r, const uint8_t trace[16],
              unsigned status)
{
    dp_otel_span      *s  = dp_otel_span_new();
    const dp_upstream *up = r->dep;
    const char        *op = dp_trace_operation(r->endpoint);

    if (s == NULL) {
        return NULL;
    }
    memcpy(s->trace_id, trace, 16);
    memcpy(s->span_id, r->span_id, 8);
    if (r->parent_span[0] != '\0') {
        dp_trace_hex_to(r->parent_span, s->parent_id, 8);
        s->has_parent = true;
    }
    s->kind = DP_OTEL_SERVER;
    snprintf(s->name, sizeof(s->name), "%s %s", op, r->chat.model);
    s->start_ns = r->started_ms * 1000000LL;
    s->end_ns   = dp_trace_ns(r, tg_mono_us());
    s->error    = status >= 500;
    if (status >= 400) {
        snprintf(s->status_msg, sizeof(s->status_msg), "%u %s", status,
                 r->ans_code);
        dp_trace_s(s, "error.type", r->ans_code[0] ? r->ans_code : "error");
    }
    dp_trace_s(s, "gen_ai.operation.name", op);
    dp_trace_s(s, "gen_ai.request.model", r->chat.model);
    if (up != NULL) {
        dp_trace_s(s, "gen_ai.provider.name", dp_trace_provider(up->dep));
        dp_trace_s(s, "gen_ai.response.model", dp_trace_upstream_model(up->dep));
        dp_trace_s(s, "tollgate.deployment", up->dep->id);
    }
    if (r->chat.max_tokens > 0) {
        dp_otel_int(s, "gen_ai.request.max_tokens", r->chat.max_tokens);
    }
    if (r->usage.found || r->up_got_bytes) {
        dp_otel_int(s, "gen_ai.usage.input_tokens",
                    r->usage.found ? r->usage.prompt_tokens
                                   : r->chat.prompt_tokens_estimate);
        dp_otel_int(s, "gen_ai.usage.output_tokens",
                    r->usage.found ? r->usage.completion_tokens
                                   : r->content_events);
    }
    if (r->usage.cached_tokens > 0) {
        dp_otel_int(s, "gen_ai.usage.cache_read.input_tokens",
                    r->usage.cached_tokens);
    }
    if (r->finish_reason[0] != '\0') {
        const char *fr = r->finish_reason;
        dp_otel_strs(s, "gen_ai.response.finish_reasons", &fr, 1);
    }
    if (r->first_byte_us > 0) {
        dp_otel_int(s, "tollgate.time_to_first_chunk_ms",
                    r->first_byte_us / 1000);
    }
    dp_otel_bool(s, "tollgate.stream", r->chat.stream);
    dp_otel_int(s, "http.response.status_code", status);
    dp_trace_s(s, "client.address", r->client_ip);
    dp_trace_s(s, "tollgate.request_id", r->request_id);
    if (r->have_decision) {
        dp_trace_s(s, "tollgate.key_id", r->dec.key_id);
        dp_trace_s(s, "tollgate.tenant", r->dec.tenant_id);
        dp_otel_int(s, "tollgate.policy.revision",
                    (int64_t)r->dec.policy_revision);
        if (r->dec.capture_level == TG_CAPTURE_FULL && !r->record_shed) {
            dp_trace_content(s, r);
        }
    }
    (void)h;
    return s;
}

static dp_otel_span *
dp_trace_decide(const dp_req *r, const uint8_t trace[16])
{
    dp_otel_span *s = dp_trace_child(r, trace, "tollgate.policy.decide",
                                     DP_OTEL_INTERNAL);
    const char   *rules[TG_MSG_RULES_MAX];
    uint32_t      n = 0;

    if (s == NULL) {
        return NULL;
    }
    dp_otel_random(s->span_id, sizeof(s->span_id));
    s->start_ns = dp_trace_ns(r, r->decide_sent_us);
    s->end_ns   = dp_trace_ns(r, r->decide_sent_us + r->pdp_us);
    if (!r->have_decision) {
        s->error = true;
        snprintf(s->status_msg, sizeof(s->status_msg), "%s",
                 r->fail_open ? "no decision: served failing open"
                              : "no decision from the PDP");
        return s;
    }
    dp_trace_s(s, "tollgate.verdict",
               r->dec.verdict == TG_VERDICT_ALLOW ? "allow" : "deny");
    dp_otel_int(s, "tollgate.policy.revision", (int64_t)r->dec.policy_revision);
    dp_trace_s(s, "tollgate.policy.bundle_hash", r->dec.bundle_hash);
    for (uint32_t i = 0; i < r->dec.n_matched; i++) {
        rules[n++] = r->dec.matched[i].rule_id;
    }
    if (n > 0) {
        dp_otel_strs(s, "tollgate.policy.rules", rules, n);
    }
    if (r->dec.verdict != TG_VERDICT_ALLOW) {
        dp_trace_s(s, "error.type", r->dec.error_code);
    }
    return s;
}

static dp_otel_span *
dp_trace_attempt_span(const dp_host *h, const dp_req *r,
                      const uint8_t trace[16], const dp_trace_attempt *a)
{
    const dp_upstream *up = &h->upstreams[a->upstream];
    char               name[160];
    dp_otel_span      *s;
    const char        *host = up->base;

    snprintf(name, sizeof(name), "%s %s", dp_trace_operation(r->endpoint),
             dp_trace_upstream_model(up->dep));
    if ((s = dp_trace_child(r, trace, name, DP_OTEL_CLIENT)) == NULL) {
        return NULL;
    }
    memcpy(s->span_id, a->span_id, 8);
    s->start_ns = dp_trace_ns(r, a->start_us);
    s->end_ns   = dp_trace_ns(r, a->end_us != 0 ? a->end_us : tg_mono_us());
    s->error    = !a->ok;
    if (!a->ok) {
        snprintf(s->status_msg, sizeof(s->status_msg), "%s", a->why);
        dp_trace_s(s, "error.type",
                   a->status > 0 ? "http_error" : "transport_error");
    }
    dp_trace_s(s, "gen_ai.operation.name", dp_trace_operation(r->endpoint));
    dp_trace_s(s, "gen_ai.provider.name", dp_trace_provider(up->dep));
    dp_trace_s(s, "gen_ai.request.model", dp_trace_upstream_model(up->dep));
    dp_trace_s(s, "tollgate.deployment", up->dep->id);
    if (host != NULL) {
        const char *p = strstr(host, "://");
        p             = p != NULL ? p + 3 : host;
        dp_otel_str(s, "server.address", p, strcspn(p, "/:"));
    }
    if (a->status > 0) {
        dp_otel_int(s, "http.response.status_code", a->status);
    }
    return s;
}

void
dp_trace_end(const dp_host *h, dp_req *r, unsigned status)
{
    uint8_t trace[16];

    if (h->otel == NULL || strlen(r->trace_id) != 32) {
        return;
    }
    if (r->finish_reason[0] == '\0' && r->ans_body.len > 0) {
        dp_trace_finish_reason(r, r->ans_body.data, r->ans_body.len);
    }
    if (r->finish_reason[0] == '\0' && !r->up_streaming) {
        pthread_mutex_lock(&r->mtx);
        dp_trace_finish_reason(r, r->out.data, r->out.len);
        pthread_mutex_unlock(&r->mtx);
    }
    dp_trace_hex_to(r->trace_id, trace, sizeof(trace));
    dp_otel_submit(h->otel, dp_trace_root(h, r, trace, status));
    if (r->decide_sent_us > 0) {
        dp_otel_submit(h->otel, dp_trace_decide(r, trace));
    }
    for (uint32_t i = 0; i < r->n_attempts; i++) {
        dp_otel_submit(h->otel,
                       dp_trace_attempt_span(h, r, trace, &r->attempts[i]));
    }
}
