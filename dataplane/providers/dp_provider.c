/* dp_provider.c - the (client format, provider) table lives in
 * dp_call_prepare: it picks the body, the URL and the translators once per
 * attempt; the stream, body and error functions only follow that choice.
 * Gemini to an Anthropic client goes through OpenAI chunks (mid). */
#include "dp_provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg_jstrict.h"
#include "tg_log.h"

#define DP_CALL_DEFAULT_MAX_TOKENS 4096 /* Anthropic requires max_tokens */
#define DP_CALL_EVENT_MAX (8u << 20)

static bool
dp_call_is_openai(const dp_call *c)
{
    return c->up->dep->kind == TG_PROVIDER_OPENAI ||
           c->up->dep->kind == TG_PROVIDER_AZURE;
}

/* dp_call_header appends "name: value" to the attempt's headers. */
static tg_err
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

static tg_err
dp_call_url(dp_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static tg_err
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

/* dp_call_openai_url: an OpenAI-format endpoint at this deployment. */
static tg_err
dp_call_openai_url(dp_call *c, const char *path)
{
    const tg_deployment *d = c->up->dep;
    char                 esc[3 * TG_MODEL_MAX];
    size_t               o = 0;

    if (d->kind == TG_PROVIDER_AZURE) {
        /* The Azure deployment name is the upstream model. */
        for (const unsigned char *p = (const unsigned char *)d->upstream_model;
             *p != '\0' && o + 4 < sizeof(esc); p++) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
                *p == '.') {
                esc[o++] = (char)*p;
            } else {
                o += (size_t)snprintf(esc + o, sizeof(esc) - o, "%%%02X", *p);
            }
        }
        esc[o] = '\0';
        return dp_call_url(c, "%s/openai/deployments/%s/%s?api-version=%s",
                           c->up->base, esc, path, d->api_version);
    }
    return dp_call_url(c, "%s/%s", c->up->base, path);
}

/* dp_call_passthrough_body is the client's Anthropic body for an
 * Anthropic deployment: byte for byte unless the model or max_tokens
 * must change. */
static tg_err
dp_call_passthrough_body(dp_call *c, int64_t clamp)
{
    const dp_client_req *cr = c->cr;
    const char          *um = c->up->dep->upstream_model;
    cJSON               *root;
    const cJSON         *mt;
    bool                 same;

    root = cJSON_ParseWithLength(cr->raw, cr->raw_len);
    if (root == NULL) {
        return TG_EINVAL;
    }
    mt   = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    same = cr->raw_exact && strcmp(um, cr->chat->model) == 0 &&
           (clamp <= 0 || (cJSON_IsNumber(mt) && mt->valuedouble <= clamp));
    if (same) {
        cJSON_Delete(root);
        if ((c->body = malloc(cr->raw_len + 1)) == NULL) {
            return TG_ENOMEM;
        }
        memcpy(c->body, cr->raw, cr->raw_len);
        c->body[cr->raw_len] = '\0';
        c->len               = cr->raw_len;
        return TG_OK;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model",
                                           cJSON_CreateString(um));
    if (clamp > 0 && !(cJSON_IsNumber(mt) && mt->valuedouble <= clamp)) {
        if (mt != NULL) {
            cJSON_ReplaceItemInObjectCaseSensitive(
                root, "max_tokens", cJSON_CreateNumber((double)clamp));
        } else {
            cJSON_AddNumberToObject(root, "max_tokens", (double)clamp);
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

/* dp_call_verbatim: an OpenAI-format request to an OpenAI-format
 * deployment can go as the client wrote it when the model keeps its name,
 * nothing is clamped and (for a stream) the client asked for the usage
 * chunk the gateway meters with, or the deployment takes no stream_options
 * and the client sent none. */
static bool
dp_call_verbatim(const dp_call *c, int64_t clamp)
{
    const dp_client_req *cr = c->cr;
    const dp_chat_req   *ch = cr->chat;

    return cr->ep != TG_EP_MESSAGES && cr->raw_exact &&
           strcmp(c->up->dep->upstream_model, ch->model) == 0 &&
           (clamp <= 0 || cr->ep == TG_EP_EMBEDDINGS ||
            (ch->max_tokens > 0 && ch->max_tokens <= clamp)) &&
           (c->up->dep->no_stream_options ? !ch->has_stream_options
                                           : !ch->stream || ch->include_usage);
}

tg_err
dp_call_prepare(dp_call *c, const dp_upstream *up, const dp_client_req *cr,
                int64_t clamp, char *msg, size_t msglen, char *param,
                size_t paramlen)
{
    const tg_deployment *d = up->dep;
    dp_chat_req         *ch = cr->chat;
    tg_err               rv;

    memset(c, 0, sizeof(*c));
    c->up     = up;
    c->cr     = cr;
    c->stream = ch->stream;
    /* Ids in each format's style, from the gateway's request id. */
    snprintf(c->oai_id, sizeof(c->oai_id), "chatcmpl-%s", cr->id);
    snprintf(c->msg_id, sizeof(c->msg_id), "msg_%s", cr->id);
    tg_buf_init(&c->mid, DP_CALL_EVENT_MAX);
    tg_buf_init(&c->scratch, DP_CALL_EVENT_MAX);
    msg[0]   = '\0';
    param[0] = '\0';
    if ((cr->ep == TG_EP_COMPLETIONS && !dp_call_is_openai(c)) ||
        (cr->ep == TG_EP_EMBEDDINGS && d->kind == TG_PROVIDER_ANTHROPIC)) {
        snprintf(msg, msglen,
                 "Deployment '%s' (%s) does not serve /v1/%s.", d->id,
                 tg_provider_name(d->kind),
                 cr->ep == TG_EP_EMBEDDINGS ? "embeddings" : "completions");
        return TG_EINVAL;
    }
    switch (d->kind) {
    case TG_PROVIDER_OPENAI:
    case TG_PROVIDER_AZURE:
        rv = dp_call_openai_url(c, cr->ep == TG_EP_EMBEDDINGS    ? "embeddings"
                                   : cr->ep == TG_EP_COMPLETIONS ? "completions"
                                                                 : "chat/"
                                                                   "completions");
        if (rv == TG_OK && dp_call_verbatim(c, clamp)) {
            /* Already in this provider's format and nothing to change:
             * byte for byte. */
            if ((c->body = malloc(cr->raw_len + 1)) == NULL) {
                rv = TG_ENOMEM;
            } else {
                memcpy(c->body, cr->raw, cr->raw_len);
                c->body[cr->raw_len] = '\0';
                c->len               = cr->raw_len;
            }
        } else if (rv == TG_OK) {
            rv = dp_chat_upstream_body(ch, d->upstream_model,
                                       cr->ep == TG_EP_EMBEDDINGS ? 0 : clamp,
                                       !d->no_stream_options, &c->body,
                                       &c->len);
        }
        break;
    case TG_PROVIDER_ANTHROPIC:
        rv = dp_call_url(c, "%s/v1/messages", up->base);
        if (rv == TG_OK && cr->ep == TG_EP_MESSAGES) {
            rv = dp_call_passthrough_body(c, clamp);
        } else if (rv == TG_OK) {
            dp_anth_req_opts o = {d->upstream_model,
                                  DP_CALL_DEFAULT_MAX_TOKENS, clamp};
            rv = dp_anth_req_from_openai(ch->root, &o, &c->body, &c->len, msg,
                                         msglen, param, paramlen);
        }
        if (rv == TG_OK) {
            rv = dp_call_header(c, "anthropic-version",
                                d->anthropic_version);
        }
        break;
    case TG_PROVIDER_GEMINI: {
        char             path[512];
        dp_gem_req_opts  o = {0, clamp};
        rv = cr->ep == TG_EP_EMBEDDINGS
                 ? dp_gem_embed_path(d->upstream_model, path, sizeof(path))
                 : dp_gem_model_path(d->upstream_model, c->stream, path,
                                     sizeof(path));
        if (rv == TG_OK) {
            rv = dp_call_url(c, "%s%s", up->base, path);
        }
        if (rv == TG_OK && cr->ep == TG_EP_EMBEDDINGS) {
            rv = dp_gem_embed_req_from_openai(ch->root, d->upstream_model,
                                              &c->body, &c->len, msg, msglen,
                                              param, paramlen);
        } else if (rv == TG_OK) {
            rv = dp_gem_req_from_openai(ch->root, &o, &c->body, &c->len, msg,
                                        msglen, param, paramlen);
        }
        break;
    }
    default: rv = TG_EINVAL; break;
    }
    if (rv != TG_OK) {
        if (msg[0] == '\0') {
            snprintf(msg, msglen, "Could not build the request for '%s': %s.",
                     d->id, tg_strerror(rv));
        }
        return rv;
    }
    if ((rv = dp_call_header(c, "Content-Type", "application/json")) !=
            TG_OK ||
        (rv = dp_call_header(c, "Accept", c->stream ? "text/event-stream"
                                                    : "application/json")) !=
            TG_OK ||
        (rv = dp_call_header(c, "Expect", "")) != TG_OK) {
        return rv;
    }
    if (up->auth_header != NULL) {
        struct curl_slist *n = curl_slist_append(c->hdrs, up->auth_header);
        if (n == NULL) {
            return TG_ENOMEM;
        }
        c->hdrs = n;
    }
    if (!c->stream) {
        return TG_OK;
    }
    {
        dp_anth_resp_meta am = {cr->ep == TG_EP_MESSAGES ? c->msg_id
                                                         : c->oai_id,
                                ch->model, (int64_t)time(NULL)};
        dp_gem_resp_meta  gm = {c->oai_id, ch->model, (int64_t)time(NULL),
                                NULL};
        bool              iu = ch->include_usage;

        if (cr->ep == TG_EP_MESSAGES) {
            if (d->kind == TG_PROVIDER_ANTHROPIC) {
                c->raw = true;
                rv     = dp_anth_stream_create(&c->meter, &am, true);
            } else {
                rv = dp_anth_rstream_create(&c->o2a, &am,
                                            ch->prompt_tokens_estimate);
                if (rv == TG_OK && d->kind == TG_PROVIDER_GEMINI) {
                    rv = dp_gem_stream_create(&c->g2o, &gm, true);
                }
            }
        } else if (d->kind == TG_PROVIDER_ANTHROPIC) {
            rv = dp_anth_stream_create(&c->a2o, &am, iu);
        } else if (d->kind == TG_PROVIDER_GEMINI) {
            rv = dp_gem_stream_create(&c->g2o, &gm, iu);
        } else {
            c->raw = true; /* OpenAI to OpenAI */
        }
    }
    return rv;
}

/* dp_call_openai_event meters one OpenAI chunk event; false: drop it (the
 * usage chunk the gateway asked for and the client did not). */
static bool
dp_call_openai_event(dp_call *c, const char *ev, size_t len, bool client_iu)
{
    dp_sse_info info;

    dp_openai_sse_inspect(ev, len, &info);
    if (info.usage.found) {
        c->usage = info.usage;
    }
    if (info.has_content) {
        c->content_events++;
    }
    return !(info.usage_only && !client_iu);
}

/* dp_call_to_o2a feeds the OpenAI chunk events in buf to the Anthropic
 * translator. */
static tg_err
dp_call_to_o2a(dp_call *c, tg_buf *buf, tg_buf *out)
{
    size_t i = 0;
    tg_err rv;

    while (i < buf->len) {
        const char *p   = buf->data + i;
        const char *end = memmem(p, buf->len - i, "\n\n", 2);
        size_t      n   = end != NULL ? (size_t)(end - p) + 2 : buf->len - i;

        dp_call_openai_event(c, p, n, true);
        if ((rv = dp_anth_rstream_feed_sse(c->o2a, p, n, out)) != TG_OK) {
            return rv;
        }
        i += n;
    }
    tg_buf_reset(buf);
    return TG_OK;
}

tg_err
dp_call_event(dp_call *c, const char *ev, size_t len, tg_buf *out)
{
    bool   iu = c->cr->chat->include_usage;
    size_t before;
    tg_err rv;

    if (c->meter != NULL) { /* Anthropic passthrough */
        dp_anth_usage u;
        tg_buf_reset(&c->scratch);
        if (dp_anth_stream_feed_sse(c->meter, ev, len, &c->scratch) == TG_OK &&
            memmem(c->scratch.data != NULL ? c->scratch.data : "",
                   c->scratch.len, "\"content\":\"", 11) != NULL) {
            c->content_events++;
        }
        dp_anth_stream_usage(c->meter, &u);
        if (u.found) {
            dp_anth_usage_counts(&u, &c->usage);
        }
        return tg_buf_append(out, ev, len);
    }
    if (c->raw) { /* OpenAI to OpenAI */
        return dp_call_openai_event(c, ev, len, iu) ? tg_buf_append(out, ev, len)
                                                    : TG_OK;
    }
    if (c->o2a != NULL) { /* to an Anthropic client */
        if (c->g2o != NULL) {
            if ((rv = dp_gem_stream_feed_sse(c->g2o, ev, len, &c->mid)) !=
                TG_OK) {
                return rv;
            }
        } else if ((rv = tg_buf_append(&c->mid, ev, len)) != TG_OK) {
            return rv;
        }
        return dp_call_to_o2a(c, &c->mid, out);
    }
    before = out->len;
    if (c->a2o != NULL) {
        dp_anth_usage u;
        rv = dp_anth_stream_feed_sse(c->a2o, ev, len, out);
        dp_anth_stream_usage(c->a2o, &u);
        if (u.found) {
            dp_anth_usage_counts(&u, &c->usage);
        }
    } else {
        rv = dp_gem_stream_feed_sse(c->g2o, ev, len, out);
        dp_gem_stream_usage(c->g2o, &c->usage);
    }
    if (rv == TG_OK && out->len > before &&
        memmem(out->data + before, out->len - before, "\"delta\":{\"content\"",
               18) != NULL) {
        c->content_events++;
    }
    return rv;
}

tg_err
dp_call_stream_end(dp_call *c, tg_buf *out)
{
    tg_err rv = TG_OK;

    if (c->raw || c->meter != NULL) {
        return TG_OK; /* the provider's own closing events went through */
    }
    if (c->o2a != NULL) {
        if (c->g2o != NULL && !dp_gem_stream_ended(c->g2o)) {
            rv = dp_gem_stream_finish(c->g2o, &c->mid);
        }
        if (rv == TG_OK) {
            rv = dp_call_to_o2a(c, &c->mid, out);
        }
        if (rv == TG_OK && !dp_anth_rstream_ended(c->o2a)) {
            rv = dp_anth_rstream_finish(c->o2a, out);
        }
        return rv;
    }
    if (c->a2o != NULL && !dp_anth_stream_ended(c->a2o)) {
        return dp_anth_stream_finish(c->a2o, out);
    }
    if (c->g2o != NULL && !dp_gem_stream_ended(c->g2o)) {
        rv = dp_gem_stream_finish(c->g2o, out);
        dp_gem_stream_usage(c->g2o, &c->usage);
    }
    return rv;
}

/* dp_call_wants_base64: an embeddings request with encoding_format
 * "base64" (the openai SDKs' default). */
static bool
dp_call_wants_base64(const dp_client_req *cr)
{
    const cJSON *f =
        cJSON_GetObjectItemCaseSensitive(cr->chat->root, "encoding_format");

    return cJSON_IsString(f) && strcmp(f->valuestring, "base64") == 0;
}

/* dp_call_inputs: how many inputs an embeddings request has. */
static int
dp_call_inputs(const dp_client_req *cr)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(cr->chat->root,
                                                       "input");

    return cJSON_IsArray(in) ? cJSON_GetArraySize(in) : 1;
}

tg_err
dp_call_body(dp_call *c, const char *body, size_t len, tg_buf *out)
{
    const dp_client_req *cr = c->cr;
    dp_anth_resp_meta    am = {cr->ep == TG_EP_MESSAGES ? c->msg_id
                                                            : c->oai_id,
                               cr->chat->model, (int64_t)time(NULL)};
    dp_gem_resp_meta     gm = {c->oai_id, cr->chat->model, (int64_t)time(NULL),
                               NULL};
    dp_anth_usage        au;
    char                *tmp  = NULL;
    size_t               tlen = 0;
    char                *fin  = NULL;
    size_t               flen = 0;
    tg_err               rv;

    memset(&au, 0, sizeof(au));
    switch (c->up->dep->kind) {
    case TG_PROVIDER_ANTHROPIC:
        if (cr->ep == TG_EP_MESSAGES) { /* passthrough; meter only */
            rv = dp_anth_resp_to_openai(body, len, &am, &tmp, &tlen, &au);
            dp_anth_usage_counts(&au, &c->usage);
            free(tmp);
            return rv == TG_OK ? tg_buf_append(out, body, len) : rv;
        }
        rv = dp_anth_resp_to_openai(body, len, &am, &tmp, &tlen, &au);
        dp_anth_usage_counts(&au, &c->usage);
        break;
    case TG_PROVIDER_GEMINI:
        if (cr->ep == TG_EP_EMBEDDINGS) {
            /* No token counts come back: the worker meters the estimate. */
            dp_gem_embed_meta em = {cr->chat->model, dp_call_wants_base64(cr),
                                    dp_call_inputs(cr),
                                    cr->chat->prompt_tokens_estimate};
            rv = dp_gem_embed_resp_to_openai(body, len, &em, &tmp, &tlen);
            break;
        }
        rv = dp_gem_resp_to_openai(body, len, &gm, &tmp, &tlen, &c->usage);
        break;
    default:
        dp_openai_usage(body, len, &c->usage);
        if (cr->ep != TG_EP_MESSAGES) {
            return tg_buf_append(out, body, len);
        }
        rv = TG_OK;
        break;
    }
    if (rv != TG_OK) {
        free(tmp);
        return rv;
    }
    if (cr->ep != TG_EP_MESSAGES) {
        rv = tg_buf_append(out, tmp, tlen);
        free(tmp);
        return rv;
    }
    /* An OpenAI reply (translated or native) for an Anthropic client. */
    rv = dp_anth_resp_from_openai(tmp != NULL ? tmp : body,
                                  tmp != NULL ? tlen : len, &am, &fin, &flen,
                                  &au);
    free(tmp);
    if (rv == TG_OK) {
        rv = tg_buf_append(out, fin, flen);
    }
    free(fin);
    return rv;
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

void
dp_call_error(dp_call *c, long status, const char *body, size_t len,
              const char *why, dp_call_err *e, tg_buf *out)
{
    const tg_deployment *d = c->up->dep;
    tg_buf               ob;
    cJSON               *j     = NULL;
    const cJSON         *err   = NULL;
    const char          *code  = "";
    const char          *umsg  = "";
    int                  ostat = (int)status;

    memset(e, 0, sizeof(*e));
    tg_buf_init(&ob, 1u << 20);
    if (status == 0) {
        e->kind   = DP_FAIL_RETRY;
        e->status = 502;
        snprintf(e->type, sizeof(e->type), "server_error");
        snprintf(e->code, sizeof(e->code), "upstream_error");
        snprintf(e->message, sizeof(e->message),
                 "The provider behind deployment '%s' could not be reached: "
                 "%s.",
                 d->id, why != NULL ? why : "no answer");
        tg_buf_fini(&ob);
        return;
    }
    /* Everything in OpenAI's shape first. */
    if (d->kind == TG_PROVIDER_ANTHROPIC) {
        dp_anth_error_to_openai((int)status, body, len, &ob, &ostat);
    } else if (d->kind == TG_PROVIDER_GEMINI) {
        dp_gem_error_to_openai((int)status, body, len, &ob, &ostat);
    } else if (body != NULL && len > 0 &&
               tg_buf_append(&ob, body, len) != TG_OK) {
        tg_buf_reset(&ob); /* judged without the provider's words */
    }
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
    switch (e->kind) {
    case DP_FAIL_RETRY:
        e->status = status == 429 ? 429 : 502;
        snprintf(e->type, sizeof(e->type), "%s",
                 status == 429 ? "rate_limit_error" : "server_error");
        snprintf(e->code, sizeof(e->code), "%s",
                 status == 429 ? "upstream_rate_limited" : "upstream_error");
        snprintf(e->message, sizeof(e->message),
                 "The provider behind deployment '%s' %s (HTTP %ld)%s%.200s.",
                 d->id,
                 status == 429 ? "is rate limiting requests" : "failed",
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
        /* The provider's own body goes to the client when it fits;
         * otherwise the gateway's message says the same. */
        if (out != NULL && ob.len > 0 && j != NULL) {
            if (c->cr->ep == TG_EP_MESSAGES && d->kind == TG_PROVIDER_ANTHROPIC) {
                e->pass_body = tg_buf_append(out, body, len) == TG_OK;
            } else if (c->cr->ep == TG_EP_MESSAGES) {
                int s2 = 0;
                dp_anth_error_from_openai((int)e->status, ob.data, ob.len, out,
                                          &s2);
                e->pass_body = true;
            } else {
                e->pass_body = tg_buf_append(out, ob.data, ob.len) == TG_OK;
            }
        }
        break;
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
    dp_anth_stream_destroy(c->a2o);
    dp_anth_stream_destroy(c->meter);
    dp_gem_stream_destroy(c->g2o);
    dp_anth_rstream_destroy(c->o2a);
    tg_buf_fini(&c->mid);
    tg_buf_fini(&c->scratch);
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
dp_client_error_event(tg_endpoint ep, tg_buf *b, const char *msg_in,
                      const char *type, const char *code)
{
    char   message[DP_ERR_TEXT_MAX];
    tg_err rv;

    tg_utf8_scrub(msg_in, strlen(msg_in), message, sizeof(message));

    if (ep == TG_EP_MESSAGES) {
        if ((rv = tg_buf_append(b, "event: error\ndata: ", 19)) != TG_OK ||
            (rv = dp_client_anth_error(b, message, type, code)) != TG_OK) {
            return rv;
        }
        return tg_buf_append(b, "\n\n", 2);
    }
    if ((rv = tg_buf_append(b, "data: ", 6)) != TG_OK ||
        (rv = dp_openai_error(b, message, type, NULL, code)) != TG_OK) {
        return rv;
    }
    return tg_buf_append(b, "\n\n", 2);
}
