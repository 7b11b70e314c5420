/* dp_anth_relay.c - an Anthropic client at an Anthropic backend: the
 * request goes as the client wrote it (only the model renamed and
 * max_tokens clamped when needed) and the answer comes back as the
 * provider sent it, metered from its events and body without translating
 * them. Fills dp_anth_relay_ops (dp_provider_int.h); no state of its own:
 * thread-safe. */
#include <stdlib.h>
#include <string.h>

#include "dp_anth_backend.h"
#include "dp_provider_int.h"
#include "dp_sse.h"

static tg_err
dp_anth_relay_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                      char *param, size_t paramlen)
{
    tg_err rv;

    (void)msg;
    (void)msglen;
    (void)param;
    (void)paramlen;
    if ((rv = dp_call_url(c, "%s/v1/messages", c->up->base)) != TG_OK ||
        (rv = dp_call_body_relay(c, c->cr->raw, c->cr->raw_len, "max_tokens",
                                 clamp)) != TG_OK) {
        return rv;
    }
    return dp_call_header(c, "anthropic-version",
                          c->up->dep->anthropic_version);
}

/* What a relayed stream has reported: its usage, merged as the events
 * come; nothing is read after message_stop or an error event. */
typedef struct dp_anth_meter {
    dp_anth_usage usage;
    bool          ended;
} dp_anth_meter;

static tg_err
dp_anth_relay_stream_start(const dp_call *c, bool include_usage, void **st)
{
    (void)c;
    (void)include_usage; /* the provider's events go as they are */
    *st = calloc(1, sizeof(dp_anth_meter));
    return *st != NULL ? TG_OK : TG_ENOMEM;
}

/* dp_anth_relay_read meters one event's data (type: its SSE name, else
 * the JSON's "type"); em->content says whether it gave content. */
static void
dp_anth_relay_read(dp_anth_meter *m, const char *type, const char *data,
                   size_t len, dp_emit *em)
{
    cJSON *ev = cJSON_ParseWithLength(data, len);

    if (type[0] == '\0') {
        type = dp_jtx_gets(ev, "type");
    }
    if (ev == NULL || type == NULL) {
        cJSON_Delete(ev);
        return;
    }
    if (strcmp(type, "message_start") == 0) {
        dp_anth_usage_read(dp_jtx_get(dp_jtx_get(ev, "message"), "usage"),
                           &m->usage);
    } else if (strcmp(type, "message_delta") == 0) {
        dp_anth_usage_read(dp_jtx_get(ev, "usage"), &m->usage);
    } else if (strcmp(type, "message_stop") == 0 ||
               strcmp(type, "error") == 0) {
        m->ended = true;
    }
    em->content = dp_anth_event_content(type, ev);
    cJSON_Delete(ev);
}

static tg_err
dp_anth_relay_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                           dp_emit *em)
{
    dp_anth_meter *m = st;
    dp_sse_fields  f;

    if (!m->ended) {
        if (dp_sse_read(ev, len, &f) == TG_OK && f.data != NULL &&
            strcmp(f.event, "ping") != 0) {
            dp_anth_relay_read(m, f.event, f.data, f.len, em);
        }
        dp_sse_fields_fini(&f);
    }
    dp_anth_usage_counts(&m->usage, &em->usage);
    return tg_buf_append(out, ev, len);
}

static void
dp_anth_relay_stream_free(void *st)
{
    free(st);
}

/* dp_anth_relay_body: the provider's message as it came, its usage read;
 * a body that is not a message (no content array) is refused, as the
 * translation for an OpenAI client refuses it. */
static tg_err
dp_anth_relay_body(const dp_call *c, const char *body, size_t len, tg_buf *out,
                   dp_usage_counts *usage)
{
    cJSON        *in = cJSON_ParseWithLength(body, len);
    dp_anth_usage au = {0};
    bool          ok = cJSON_IsArray(dp_jtx_get(in, "content"));

    (void)c;
    if (ok) {
        dp_anth_usage_read(dp_jtx_get(in, "usage"), &au);
    }
    cJSON_Delete(in);
    dp_anth_usage_counts(&au, usage);
    return ok ? tg_buf_append(out, body, len) : TG_EPROTO;
}

static tg_err
dp_anth_relay_error(const dp_call *c, int status, const char *body, size_t len,
                    tg_buf *oai, int *out_status)
{
    (void)c;
    return dp_anth_error_to_openai(status, body, len, oai, out_status);
}

/* dp_anth_relay_error_body: the provider's own error, as it sent it. */
static tg_err
dp_anth_relay_error_body(const dp_call *c, unsigned status, const char *raw,
                         size_t rawlen, const tg_buf *oai, tg_buf *out)
{
    (void)c;
    (void)status;
    (void)oai;
    return tg_buf_append(out, raw, rawlen);
}

const dp_provider_ops dp_anth_relay_ops = {
    .name         = "anthropic-relay",
    .completions  = false,
    .embeddings   = false,
    .prepare      = dp_anth_relay_prepare,
    .stream_start = dp_anth_relay_stream_start,
    .stream_event = dp_anth_relay_stream_event,
    .stream_end   = dp_call_stream_end_relayed,
    .stream_free  = dp_anth_relay_stream_free,
    .body         = dp_anth_relay_body,
    .error        = dp_anth_relay_error,
    .error_body   = dp_anth_relay_error_body,
};
