/* dp_openai_relay.c - the OpenAI format as a provider (OpenAI, Azure
 * OpenAI and every compatible API) for an OpenAI client: the request as
 * the client wrote it when nothing must change, the answer relayed as it
 * came and metered from its events. Fills dp_openai_ops
 * (dp_provider_int.h); no state of its own: thread-safe. */
#include <stdio.h>
#include <string.h>

#include "dp_openai.h"
#include "dp_provider_int.h"

/* dp_openai_url points c at an OpenAI-format endpoint of its deployment;
 * for Azure the deployment name (its upstream model) is in the path. */
static tg_err
dp_openai_url(dp_call *c, const char *path)
{
    const tg_deployment *d = c->up->dep;
    char                 esc[3 * TG_MODEL_MAX];
    size_t               o = 0;

    if (d->kind != TG_PROVIDER_AZURE) {
        return dp_call_url(c, "%s/%s", c->up->base, path);
    }
    for (const unsigned char *p = (const unsigned char *)d->upstream_model;
         *p != '\0' && o + 4 < sizeof(esc); p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.') {
            esc[o++] = (char)*p;
        } else {
            o += (size_t)snprintf(esc + o, sizeof(esc) - o, "%%%02X", *p);
        }
    }
    esc[o] = '\0';
    return dp_call_url(c, "%s/openai/deployments/%s/%s?api-version=%s",
                       c->up->base, esc, path, d->api_version);
}

/* dp_openai_verbatim: an OpenAI-format request can go as the client wrote
 * it when the model keeps its name, nothing is clamped and (for a stream)
 * the client asked for the usage chunk the gateway meters with, or the
 * deployment takes no stream_options and the client sent none. */
static bool
dp_openai_verbatim(const dp_call *c, int64_t clamp)
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

static tg_err
dp_openai_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                  char *param, size_t paramlen)
{
    const dp_client_req *cr = c->cr;
    const tg_deployment *d  = c->up->dep;
    tg_err               rv;

    (void)msg;
    (void)msglen;
    (void)param;
    (void)paramlen;
    rv = dp_openai_url(c, cr->ep == TG_EP_EMBEDDINGS    ? "embeddings"
                          : cr->ep == TG_EP_COMPLETIONS ? "completions"
                                                        : "chat/completions");
    if (rv != TG_OK) {
        return rv;
    }
    if (dp_openai_verbatim(c, clamp)) {
        /* Already in this format and nothing to change: byte for byte. */
        return dp_call_body_copy(c, cr->raw, cr->raw_len);
    }
    return dp_chat_upstream_body(cr->chat, d->upstream_model,
                                 cr->ep == TG_EP_EMBEDDINGS ? 0 : clamp,
                                 !d->no_stream_options, &c->body, &c->len);
}

/* A relayed stream's whole state: whether the client gets the usage
 * chunk. Two constants, so a stream allocates nothing. */
typedef struct dp_openai_relay {
    bool include_usage;
} dp_openai_relay;

static dp_openai_relay dp_openai_relay_usage    = {true};
static dp_openai_relay dp_openai_relay_no_usage = {false};

static tg_err
dp_openai_stream_start(const dp_call *c, bool include_usage, void **st)
{
    (void)c;
    *st = include_usage ? &dp_openai_relay_usage : &dp_openai_relay_no_usage;
    return TG_OK;
}

/* dp_openai_stream_event relays an event as it came, but for the usage
 * chunk the gateway asked for and the client did not. */
static tg_err
dp_openai_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                       dp_emit *em)
{
    const dp_openai_relay *r = st;
    dp_sse_info            info;

    dp_openai_sse_inspect(ev, len, &info);
    em->content = info.has_content;
    em->usage   = info.usage;
    if (info.usage_only && !r->include_usage) {
        return TG_OK;
    }
    return tg_buf_append(out, ev, len);
}

static void
dp_openai_stream_free(void *st)
{
    (void)st; /* one of the two constants */
}

static tg_err
dp_openai_body(const dp_call *c, const char *body, size_t len, tg_buf *out,
               dp_usage_counts *usage)
{
    (void)c;
    dp_openai_usage(body, len, usage);
    return tg_buf_append(out, body, len);
}

static tg_err
dp_openai_error_ops(const dp_call *c, int status, const char *body, size_t len,
                    tg_buf *oai, int *out_status)
{
    (void)c;
    *out_status = status;
    if (body != NULL && len > 0 && tg_buf_append(oai, body, len) != TG_OK) {
        tg_buf_reset(oai); /* judged without the provider's words */
    }
    return TG_OK;
}

const dp_provider_ops dp_openai_ops = {
    .name         = "openai",
    .completions  = true,
    .embeddings   = true,
    .prepare      = dp_openai_prepare,
    .stream_start = dp_openai_stream_start,
    .stream_event = dp_openai_stream_event,
    .stream_end   = dp_call_stream_end_relayed,
    .stream_free  = dp_openai_stream_free,
    .body         = dp_openai_body,
    .error        = dp_openai_error_ops,
    .error_body   = dp_call_error_oai,
};
