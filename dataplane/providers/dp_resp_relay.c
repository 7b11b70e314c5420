/* dp_resp_relay.c - a Responses API client at an OpenAI deployment,
 * natively: the client's Responses body goes to the deployment's
 * /responses as the client wrote it (only the model renamed and
 * max_output_tokens clamped when needed) and the answer (a Response, or
 * the Responses events) comes back as OpenAI sent it, metered from its
 * usage. Chosen by dp_call_prepare when the request allows it
 * (dp_client_req.resp_raw); fills dp_resp_relay_ops (dp_provider_int.h).
 * A stream's meter belongs to one attempt; the table is thread-safe. */
#include <stdlib.h>
#include <string.h>

#include "dp_jtx.h"
#include "dp_provider_int.h"
#include "dp_sse.h"

static tg_err
dp_resp_relay_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                      char *param, size_t paramlen)
{
    tg_err rv;

    (void)msg;
    (void)msglen;
    (void)param;
    (void)paramlen;
    if ((rv = dp_call_url(c, "%s/responses", c->up->base)) != TG_OK) {
        return rv;
    }
    return dp_call_body_relay(c, c->cr->resp_raw, c->cr->resp_raw_len,
                              "max_output_tokens", clamp);
}

/* dp_resp_relay_usage reads a Responses usage object. */
static void
dp_resp_relay_usage(const cJSON *u, dp_usage_counts *out)
{
    int64_t in = 0, o = 0, cached = 0;

    if (!cJSON_IsObject(u) || !dp_jtx_count(u, "input_tokens", &in) ||
        !dp_jtx_count(u, "output_tokens", &o)) {
        return;
    }
    dp_jtx_count(dp_jtx_get(u, "input_tokens_details"), "cached_tokens",
                 &cached);
    out->found             = true;
    out->prompt_tokens     = in;
    out->completion_tokens = o;
    out->cached_tokens     = cached;
}

/* What a relayed stream has reported: nothing is read after its final
 * event. */
typedef struct dp_resp_meter {
    dp_usage_counts usage;
    bool            ended;
} dp_resp_meter;

static tg_err
dp_resp_relay_stream_start(const dp_call *c, bool include_usage, void **st)
{
    (void)c;
    (void)include_usage; /* response.completed always carries it */
    *st = calloc(1, sizeof(dp_resp_meter));
    return *st != NULL ? TG_OK : TG_ENOMEM;
}

/* dp_resp_relay_read meters one event's data. */
static void
dp_resp_relay_read(dp_resp_meter *m, const char *data, size_t len, dp_emit *em)
{
    cJSON      *ev   = cJSON_ParseWithLength(data, len);
    const char *type = dp_jtx_gets(ev, "type");

    if (dp_jtx_is(type, "response.output_text.delta") ||
        dp_jtx_is(type, "response.function_call_arguments.delta") ||
        dp_jtx_is(type, "response.refusal.delta")) {
        const char *d = dp_jtx_gets(ev, "delta");
        em->content   = d != NULL && d[0] != '\0';
    } else if (dp_jtx_is(type, "response.completed") ||
               dp_jtx_is(type, "response.incomplete") ||
               dp_jtx_is(type, "response.failed")) {
        dp_resp_relay_usage(dp_jtx_get(dp_jtx_get(ev, "response"), "usage"),
                            &m->usage);
        m->ended = true;
    } else if (dp_jtx_is(type, "error")) {
        m->ended = true;
    }
    cJSON_Delete(ev);
}

static tg_err
dp_resp_relay_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                           dp_emit *em)
{
    dp_resp_meter *m = st;
    dp_sse_fields  f;

    if (!m->ended) {
        if (dp_sse_read(ev, len, &f) == TG_OK && f.data != NULL) {
            dp_resp_relay_read(m, f.data, f.len, em);
        }
        dp_sse_fields_fini(&f);
    }
    em->usage = m->usage;
    return tg_buf_append(out, ev, len);
}

static void
dp_resp_relay_stream_free(void *st)
{
    free(st);
}

/* dp_resp_relay_stream_end: a stream that stopped before its final event
 * gets an "error" event, as the translated stream does. */
static tg_err
dp_resp_relay_stream_end(void *st, tg_buf *out, dp_emit *em)
{
    static const char cut[] =
        "{\"type\":\"error\",\"code\":\"upstream_stream_incomplete\","
        "\"message\":\"The provider's stream ended before the response was "
        "complete.\",\"param\":null}";
    const dp_resp_meter *m = st;

    (void)em;
    return m->ended ? TG_OK : dp_sse_put(out, "error", cut, sizeof(cut) - 1);
}

/* dp_resp_relay_body: the provider's Response as it came, its usage read;
 * a body that is not a Response (no output array) is refused. */
static tg_err
dp_resp_relay_body(const dp_call *c, const char *body, size_t len, tg_buf *out,
                   dp_usage_counts *usage)
{
    cJSON *in = cJSON_ParseWithLength(body, len);
    bool   ok = cJSON_IsArray(dp_jtx_get(in, "output"));

    (void)c;
    if (ok) {
        dp_resp_relay_usage(dp_jtx_get(in, "usage"), usage);
    }
    cJSON_Delete(in);
    return ok ? tg_buf_append(out, body, len) : TG_EPROTO;
}

static tg_err
dp_resp_relay_error(const dp_call *c, int status, const char *body, size_t len,
                    tg_buf *oai, int *out_status)
{
    (void)c;
    *out_status = status;
    if (body != NULL && len > 0 && tg_buf_append(oai, body, len) != TG_OK) {
        tg_buf_reset(oai); /* judged without the provider's words */
    }
    return TG_OK;
}

const dp_provider_ops dp_resp_relay_ops = {
    .name         = "openai-responses",
    .completions  = false,
    .embeddings   = false,
    .prepare      = dp_resp_relay_prepare,
    .stream_start = dp_resp_relay_stream_start,
    .stream_event = dp_resp_relay_stream_event,
    .stream_end   = dp_resp_relay_stream_end,
    .stream_free  = dp_resp_relay_stream_free,
    .body         = dp_resp_relay_body,
    .error        = dp_resp_relay_error,
    .error_body   = dp_call_error_oai,
};
