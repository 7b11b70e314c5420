/* dp_provider.c - the core of an attempt: picks the ops table once (the
 * rows below: one per provider kind), adds what every format shares (the
 * common headers and the credential), meters what the table reports,
 * classifies failures, and writes errors in the client's format. What a
 * format does is in its own module (dp_provider_int.h). */
#include "dp_provider_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_sse.h"
#include "tg_jstrict.h"

/* One row per provider kind: the table for OpenAI-format clients, and the
 * one for Anthropic Messages clients (NULL: dp_anth_client_ops around the
 * first). */
static const struct {
    tg_provider            kind;
    const dp_provider_ops *openai;
    const dp_provider_ops *messages;
} dp_provider_rows[] = {
    {TG_PROVIDER_OPENAI, &dp_openai_ops, NULL},
    {TG_PROVIDER_AZURE, &dp_openai_ops, NULL},
    {TG_PROVIDER_ANTHROPIC, &dp_anth_backend_ops, &dp_anth_relay_ops},
    {TG_PROVIDER_GEMINI, &dp_gem_ops, NULL},
    {TG_PROVIDER_BEDROCK, &dp_bedrock_ops, NULL},
};

const dp_provider_ops *
dp_provider_select(tg_endpoint ep, tg_provider kind,
                   const dp_provider_ops **wire)
{
    for (size_t i = 0; i < sizeof(dp_provider_rows) / sizeof(*dp_provider_rows);
         i++) {
        if (dp_provider_rows[i].kind != kind) {
            continue;
        }
        if (ep != TG_EP_MESSAGES) {
            *wire = dp_provider_rows[i].openai;
            return *wire;
        }
        if (dp_provider_rows[i].messages != NULL) {
            *wire = dp_provider_rows[i].messages;
            return *wire;
        }
        *wire = dp_provider_rows[i].openai;
        return &dp_anth_client_ops;
    }
    *wire = NULL;
    return NULL;
}

tg_err
dp_call_header(dp_call *c, const char *name, const char *value)
{
    char               line[512];
    struct curl_slist *n;

    snprintf(line, sizeof(line), "%s: %s", name, value);
    if ((n = curl_slist_append(c->hdrs, line)) == NULL) {
        return TG_ENOMEM;
    }
    c->hdrs = n;
    return TG_OK;
}

tg_err
dp_call_url(dp_call *c, const char *fmt, ...)
{
    va_list ap;
    int     n;

    free(c->url);
    c->url = NULL;
    va_start(ap, fmt);
    n = vasprintf(&c->url, fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->url = NULL;
        return TG_ENOMEM;
    }
    return TG_OK;
}

tg_err
dp_call_body_copy(dp_call *c, const char *data, size_t len)
{
    if ((c->body = malloc(len + 1)) == NULL) {
        return TG_ENOMEM;
    }
    memcpy(c->body, data, len);
    c->body[len] = '\0';
    c->len       = len;
    return TG_OK;
}

tg_err
dp_call_body_relay(dp_call *c, const char *raw, size_t len,
                   const char *tokens_key, int64_t clamp)
{
    const char  *um = c->up->dep->upstream_model;
    cJSON       *root;
    const cJSON *mt;
    bool         fits;

    if ((root = cJSON_ParseWithLength(raw, len)) == NULL) {
        return TG_EINVAL;
    }
    mt   = cJSON_GetObjectItemCaseSensitive(root, tokens_key);
    fits = clamp <= 0 || (cJSON_IsNumber(mt) && mt->valuedouble <= clamp);
    if (c->cr->raw_exact && strcmp(um, c->cr->chat->model) == 0 && fits) {
        cJSON_Delete(root);
        return dp_call_body_copy(c, raw, len);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model",
                                           cJSON_CreateString(um));
    if (!fits) {
        if (mt != NULL) {
            cJSON_ReplaceItemInObjectCaseSensitive(
                root, tokens_key, cJSON_CreateNumber((double)clamp));
        } else {
            cJSON_AddNumberToObject(root, tokens_key, (double)clamp);
        }
    }
    c->body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (c->body == NULL) {
        return TG_ENOMEM;
    }
    c->len = strlen(c->body);
    return TG_OK;
}

tg_err
dp_call_stream_end_relayed(void *st, tg_buf *out, dp_emit *em)
{
    (void)st;
    (void)out;
    (void)em;
    return TG_OK;
}

tg_err
dp_call_error_oai(const dp_call *c, unsigned status, const char *raw,
                  size_t rawlen, const tg_buf *oai, tg_buf *out)
{
    (void)c;
    (void)status;
    (void)raw;
    (void)rawlen;
    return tg_buf_append(out, oai->data, oai->len);
}

/* dp_call_common_headers adds what every attempt sends, after the
 * format's own headers. */
static tg_err
dp_call_common_headers(dp_call *c)
{
    struct curl_slist *n;
    tg_err             rv;

    const char *accept = !c->stream ? "application/json"
                         : dp_call_binary_stream(c)
                             ? "application/vnd.amazon.eventstream"
                             : "text/event-stream";

    if ((rv = dp_call_header(c, "Content-Type", "application/json")) != TG_OK ||
        (rv = dp_call_header(c, "Accept", accept)) != TG_OK ||
        (rv = dp_call_header(c, "Expect", "")) != TG_OK) {
        return rv;
    }
    if (c->up->auth_header != NULL) {
        if ((n = curl_slist_append(c->hdrs, c->up->auth_header)) == NULL) {
            return TG_ENOMEM;
        }
        c->hdrs = n;
    }
    return TG_OK;
}

tg_err
dp_call_prepare(dp_call *c, const dp_upstream *up, const dp_client_req *cr,
                int64_t clamp, char *msg, size_t msglen, char *param,
                size_t paramlen)
{
    const tg_deployment *d = up->dep;
    tg_err               rv;

    memset(c, 0, sizeof(*c));
    c->up     = up;
    c->cr     = cr;
    c->stream = cr->chat->stream;
    /* Ids in each format's style, from the gateway's request id. */
    snprintf(c->oai_id, sizeof(c->oai_id), "chatcmpl-%s", cr->id);
    snprintf(c->msg_id, sizeof(c->msg_id), "msg_%s", cr->id);
    msg[0]   = '\0';
    param[0] = '\0';
    c->ops   = dp_provider_select(cr->ep, d->kind, &c->wire);
    if (cr->resp_raw != NULL && d->kind == TG_PROVIDER_OPENAI) {
        /* A Responses client at OpenAI itself: its own API, natively. */
        c->ops = c->wire = &dp_resp_relay_ops;
        c->native_resp   = true;
    } else if (cr->resp_builtin != NULL && cr->resp_builtin[0] != '\0') {
        snprintf(msg, msglen,
                 "The built-in tool '%s' can only be served by an OpenAI "
                 "deployment, with the request sent as it is (no guardrail "
                 "applies to it); deployment '%s' (%s) cannot run it. Use "
                 "function tools.",
                 cr->resp_builtin, d->id, tg_provider_name(d->kind));
        snprintf(param, paramlen, "tools");
        return TG_EINVAL;
    }
    if (c->ops != NULL &&
        ((cr->ep == TG_EP_COMPLETIONS && !c->ops->completions) ||
         (cr->ep == TG_EP_EMBEDDINGS && !c->ops->embeddings))) {
        snprintf(msg, msglen, "Deployment '%s' (%s) does not serve /v1/%s.",
                 d->id, tg_provider_name(d->kind),
                 cr->ep == TG_EP_EMBEDDINGS ? "embeddings" : "completions");
        return TG_EINVAL;
    }
    rv = c->ops != NULL
             ? c->ops->prepare(c, clamp, msg, msglen, param, paramlen)
             : TG_EINVAL;
    if (rv != TG_OK) {
        if (msg[0] == '\0') {
            snprintf(msg, msglen, "Could not build the request for '%s': %s.",
                     d->id, tg_strerror(rv));
        }
        return rv;
    }
    if ((rv = dp_call_common_headers(c)) != TG_OK || !c->stream) {
        return rv;
    }
    return c->ops->stream_start(c, cr->chat->include_usage, &c->st);
}

/* dp_call_meter keeps what one upstream event gave the client. */
static void
dp_call_meter(dp_call *c, const dp_emit *em)
{
    if (em->content > 0) {
        c->content_events++;
    }
    if (em->usage.found) {
        c->usage = em->usage;
    }
}

bool
dp_call_binary_stream(const dp_call *c)
{
    return c->wire != NULL && c->wire->binary_stream;
}

tg_err
dp_call_event(dp_call *c, const char *ev, size_t len, tg_buf *out)
{
    dp_emit em;
    tg_err  rv;

    memset(&em, 0, sizeof(em));
    rv = c->ops->stream_event(c->st, ev, len, out, &em);
    dp_call_meter(c, &em);
    return rv;
}

tg_err
dp_call_stream_end(dp_call *c, tg_buf *out)
{
    dp_emit em;
    tg_err  rv;

    memset(&em, 0, sizeof(em));
    rv = c->ops->stream_end(c->st, out, &em);
    dp_call_meter(c, &em);
    return rv;
}

tg_err
dp_call_body(dp_call *c, const char *body, size_t len, tg_buf *out)
{
    return c->ops->body(c, body, len, out, &c->usage);
}

/* dp_call_kind classifies an OpenAI-format error (status, code). */
static dp_fail_kind
dp_call_kind(long status, const char *code)
{
    if (status == 0 || status == 408 || status == 409 || status == 429 ||
        status >= 500) {
        return DP_FAIL_RETRY;
    }
    if (status == 401 || status == 403 || status == 404) {
        return DP_FAIL_NEXT; /* this deployment's key or name is wrong */
    }
    if (strcmp(code, "context_length_exceeded") == 0) {
        return DP_FAIL_CONTEXT;
    }
    if (strcmp(code, "content_filter") == 0 ||
        strcmp(code, "content_policy_violation") == 0) {
        return DP_FAIL_CONTENT;
    }
    return DP_FAIL_CLIENT;
}

/* dp_call_err_text fills e's status, type, code and message for its kind
 * from the provider's status, code and message (umsg); ostat is the
 * status the format maps the provider's to. */
static void
dp_call_err_text(const tg_deployment *d, long status, int ostat,
                 const char *code, const char *umsg, dp_call_err *e)
{
    switch (e->kind) {
    case DP_FAIL_RETRY:
        e->status = status == 429 ? 429 : 502;
        snprintf(e->type, sizeof(e->type), "%s",
                 status == 429 ? "rate_limit_error" : "server_error");
        snprintf(e->code, sizeof(e->code), "%s",
                 status == 429 ? "upstream_rate_limited" : "upstream_error");
        snprintf(e->message, sizeof(e->message),
                 "The provider behind deployment '%s' %s (HTTP %ld)%s%.200s.",
                 d->id, status == 429 ? "is rate limiting requests" : "failed",
                 status, umsg[0] ? ": " : "", umsg);
        break;
    case DP_FAIL_NEXT:
        e->status = 502;
        snprintf(e->type, sizeof(e->type), "server_error");
        snprintf(e->code, sizeof(e->code), "upstream_auth_failed");
        snprintf(e->message, sizeof(e->message),
                 "The provider rejected the gateway's request for deployment "
                 "'%s' (HTTP %ld). An operator must check its api_key and "
                 "model.",
                 d->id, status);
        break;
    default:
        /* The provider judged the request: its answer, in the client's
         * format. */
        e->status = ostat >= 400 && ostat < 500 ? (unsigned)ostat : 400;
        snprintf(e->type, sizeof(e->type), "invalid_request_error");
        snprintf(e->code, sizeof(e->code), "%s",
                 code[0] ? code : "upstream_rejected");
        snprintf(e->message, sizeof(e->message), "%.380s",
                 umsg[0] ? umsg : "The provider refused the request.");
        break;
    }
}

/* dp_call_err_unreachable: no answer at all (curl failed with why). */
static void
dp_call_err_unreachable(const tg_deployment *d, const char *why, dp_call_err *e)
{
    e->kind   = DP_FAIL_RETRY;
    e->status = 502;
    snprintf(e->type, sizeof(e->type), "server_error");
    snprintf(e->code, sizeof(e->code), "upstream_error");
    snprintf(e->message, sizeof(e->message),
             "The provider behind deployment '%s' could not be reached: %s.",
             d->id, why != NULL ? why : "no answer");
}

void
dp_call_error(dp_call *c, long status, const char *body, size_t len,
              const char *why, dp_call_err *e, tg_buf *out)
{
    tg_buf       ob;
    cJSON       *j     = NULL;
    const cJSON *err   = NULL;
    const char  *code  = "";
    const char  *umsg  = "";
    int          ostat = (int)status;

    memset(e, 0, sizeof(*e));
    if (status == 0) {
        dp_call_err_unreachable(c->up->dep, why, e);
        return;
    }
    /* Everything in OpenAI's shape first. */
    tg_buf_init(&ob, 1u << 20);
    (void)c->ops->error(c, (int)status, body, len, &ob, &ostat);
    if (ob.len > 0) {
        j   = cJSON_ParseWithLength(ob.data, ob.len);
        err = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "code"))) {
            code = cJSON_GetObjectItemCaseSensitive(err, "code")->valuestring;
        }
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message"))) {
            umsg =
                cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring;
        }
    }
    e->kind = dp_call_kind(status, code);
    dp_call_err_text(c->up->dep, status, ostat, code, umsg, e);
    /* The provider's own body goes to the client when it fits; otherwise
     * the gateway's message says the same. */
    if (e->kind != DP_FAIL_RETRY && e->kind != DP_FAIL_NEXT && out != NULL &&
        ob.len > 0 && j != NULL) {
        e->pass_body =
            c->ops->error_body(c, e->status, body, len, &ob, out) == TG_OK;
    }
    cJSON_Delete(j);
    tg_buf_fini(&ob);
}

void
dp_call_fini(dp_call *c)
{
    free(c->url);
    free(c->body);
    curl_slist_free_all(c->hdrs);
    if (c->st != NULL) {
        c->ops->stream_free(c->st);
    }
    memset(c, 0, sizeof(*c));
}

/* dp_client_anth_type names the Anthropic error type for an OpenAI one. */
static const char *
dp_client_anth_type(const char *type, const char *code)
{
    if (strcmp(type, "server_error") == 0) {
        return code != NULL && strcmp(code, "pdp_unavailable") == 0
                   ? "overloaded_error"
                   : "api_error";
    }
    if (strcmp(type, "rate_limit_error") == 0 ||
        strcmp(type, "requests") == 0 || strcmp(type, "tokens") == 0 ||
        strcmp(type, "insufficient_quota") == 0) {
        return "rate_limit_error";
    }
    if (code != NULL && (strcmp(code, "invalid_api_key") == 0 ||
                         strcmp(code, "missing_api_key") == 0)) {
        return "authentication_error";
    }
    if (code != NULL && (strcmp(code, "model_not_found") == 0 ||
                         strcmp(code, "unknown_url") == 0)) {
        return "not_found_error";
    }
    if (code != NULL && (strcmp(code, "policy_denied") == 0 ||
                         strcmp(code, "policy_error") == 0 ||
                         strcmp(code, "model_not_allowed") == 0 ||
                         strcmp(code, "no_route") == 0)) {
        return "permission_error";
    }
    return "invalid_request_error";
}

static tg_err
dp_client_anth_error(tg_buf *b, const char *message, const char *type,
                     const char *code)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(j, "error");
    char  *s;
    tg_err rv;

    cJSON_AddStringToObject(j, "type", "error");
    cJSON_AddStringToObject(e, "type", dp_client_anth_type(type, code));
    cJSON_AddStringToObject(e, "message", message);
    if (code != NULL) {
        cJSON_AddStringToObject(e, "code", code); /* Tollgate's, extra */
    }
    s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s == NULL) {
        return TG_ENOMEM;
    }
    rv = tg_buf_append(b, s, strlen(s));
    cJSON_free(s);
    return rv;
}

/* Error text may quote what a client sent (a model name, a header):
 * invalid UTF-8 (or a multi-byte character cut in half) would make the
 * error body invalid JSON, so it is scrubbed first. */
#define DP_ERR_TEXT_MAX 4096

tg_err
dp_client_error(tg_endpoint ep, tg_buf *b, const char *message,
                const char *type, const char *param, const char *code)
{
    char m[DP_ERR_TEXT_MAX];
    char p[256];

    tg_utf8_scrub(message, strlen(message), m, sizeof(m));
    if (param != NULL) {
        tg_utf8_scrub(param, strlen(param), p, sizeof(p));
    }
    if (ep == TG_EP_MESSAGES) {
        return dp_client_anth_error(b, m, type, code);
    }
    return dp_openai_error(b, m, type, param != NULL ? p : NULL, code);
}

tg_err
dp_client_error_event(tg_endpoint ep, tg_buf *b, const char *message,
                      const char *type, const char *code)
{
    tg_buf e;
    tg_err rv;

    tg_buf_init(&e, 0);
    rv = dp_client_error(ep, &e, message, type, NULL, code);
    if (rv == TG_OK) {
        rv =
            dp_sse_put(b, ep == TG_EP_MESSAGES ? "error" : NULL, e.data, e.len);
    }
    tg_buf_fini(&e);
    return rv;
}
