/* dp_bedrock_reply.c - Bedrock's answer for an OpenAI client: the
 * Converse reply, the ConverseStream events and errors, in OpenAI's
 * format (see dp_bedrock.h). */
#include "dp_bedrock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_evstream.h"
#include "dp_jtx.h"
#include "dp_sse.h"

/* ---- usage, finish reasons, errors ------------------------------------- */

void
dp_bedrock_usage(const cJSON *u, dp_usage_counts *out)
{
    int64_t in = 0, cr = 0, cw = 0, o = 0;

    if (!cJSON_IsObject(u)) {
        return;
    }
    (void)dp_jtx_count(u, "inputTokens", &in);
    (void)dp_jtx_count(u, "cacheReadInputTokens", &cr);
    (void)dp_jtx_count(u, "cacheWriteInputTokens", &cw);
    (void)dp_jtx_count(u, "outputTokens", &o);
    memset(out, 0, sizeof(*out));
    out->found             = true;
    out->prompt_tokens     = in + cr + cw;
    out->completion_tokens = o;
    out->cached_tokens     = cr;
}

const char *
dp_bedrock_finish(const char *r)
{
    if (dp_jtx_is(r, "tool_use")) {
        return "tool_calls";
    }
    if (dp_jtx_is(r, "max_tokens")) {
        return "length";
    }
    if (dp_jtx_is(r, "content_filtered") ||
        dp_jtx_is(r, "guardrail_intervened")) {
        return "content_filter";
    }
    return "stop";
}

/* dp_bedrock_err_kind: the OpenAI type and code for a Bedrock status. */
static void
dp_bedrock_err_kind(int status, const char *message, const char **type,
                    const char **code)
{
    *code = NULL;
    switch (status) {
    case 400:
        *type = "invalid_request_error";
        if (dp_jtx_icontains(message, "too long") ||
            dp_jtx_icontains(message, "context length")) {
            *code = "context_length_exceeded";
        }
        break;
    case 401:
    case 403:
        *type = "authentication_error";
        *code = "invalid_api_key";
        break;
    case 404:
        *type = "invalid_request_error";
        *code = "model_not_found";
        break;
    case 429:
        *type = "rate_limit_error";
        *code = "rate_limit_exceeded";
        break;
    default:
        *type = status < 500 ? "invalid_request_error" : "server_error";
        break;
    }
}

tg_err
dp_bedrock_error_to_openai(int status, const char *body, size_t len,
                           tg_buf *out, int *out_status)
{
    cJSON      *root = cJSON_ParseWithLength(body, len);
    const char *m    = dp_jtx_gets(root, "message");
    const char *type;
    const char *code;
    char        text[400];
    tg_err      rv;

    if (m == NULL) {
        m = dp_jtx_gets(root, "Message"); /* some AWS front ends */
    }
    if (status < 400 || status > 599) {
        status = 500;
    }
    snprintf(text, sizeof(text), "%s",
             m != NULL ? m : "The upstream provider returned an error.");
    cJSON_Delete(root);
    dp_bedrock_err_kind(status, text, &type, &code);
    if (out_status != NULL) {
        *out_status = status;
    }
    rv = dp_openai_error(out, text, type, NULL, code);
    return rv;
}

/* ---- the Converse reply -------------------------------------------------- */

/* dp_bedrock_call_json renders an OpenAI tool call for a toolUse block. */
static void
dp_bedrock_call_json(dp_jtx *tx, cJSON *parent, const cJSON *tu)
{
    const cJSON *in = dp_jtx_get(tu, "input");
    char        *a  = in != NULL ? cJSON_PrintUnformatted(in) : NULL;
    const char  *id = dp_jtx_gets(tu, "toolUseId");
    const char  *nm = dp_jtx_gets(tu, "name");
    cJSON       *c  = dp_jtx_obj(tx, parent, NULL);
    cJSON       *fn;

    if (in != NULL && a == NULL) {
        tx->oom = true;
    }
    dp_jtx_str(tx, c, "id", id != NULL ? id : "");
    dp_jtx_str(tx, c, "type", "function");
    fn = dp_jtx_obj(tx, c, "function");
    dp_jtx_str(tx, fn, "name", nm != NULL ? nm : "");
    dp_jtx_str(tx, fn, "arguments", a != NULL ? a : "{}");
    cJSON_free(a);
}

/* dp_bedrock_blocks reads output.message.content: text joined into text,
 * each toolUse into calls. */
static tg_err
dp_bedrock_blocks(dp_jtx *tx, const cJSON *content, tg_buf *text, cJSON *calls,
                  bool *has_text)
{
    const cJSON *b;

    cJSON_ArrayForEach(b, content)
    {
        const char  *t  = dp_jtx_gets(b, "text");
        const cJSON *tu = dp_jtx_get(b, "toolUse");
        if (t != NULL) {
            *has_text = true;
            if (tg_buf_append(text, t, strlen(t)) != TG_OK) {
                return TG_ENOMEM;
            }
        } else if (cJSON_IsObject(tu)) {
            dp_bedrock_call_json(tx, calls, tu);
        }
        /* reasoningContent, citations...: no chat.completion form */
    }
    return TG_OK;
}

tg_err
dp_bedrock_resp_to_openai(const char *body, size_t len,
                          const dp_bedrock_meta *meta, char **out,
                          size_t *outlen, dp_usage_counts *usage)
{
    dp_jtx          tx    = {0};
    cJSON          *in    = cJSON_ParseWithLength(body, len);
    const cJSON    *msg   = dp_jtx_get(dp_jtx_get(in, "output"), "message");
    cJSON          *root  = NULL;
    cJSON          *calls = NULL;
    tg_buf          text;
    bool            has_text = false;
    dp_usage_counts u        = {0};
    tg_err          rv       = TG_EPROTO;

    tg_buf_init(&text, 0);
    if (!cJSON_IsObject(msg)) {
        goto out;
    }
    if ((root = cJSON_CreateObject()) == NULL ||
        (calls = cJSON_CreateArray()) == NULL ||
        tg_buf_append(&text, "", 0) != TG_OK ||
        dp_bedrock_blocks(&tx, dp_jtx_get(msg, "content"), &text, calls,
                          &has_text) != TG_OK) {
        rv = TG_ENOMEM;
        goto out;
    }
    dp_bedrock_usage(dp_jtx_get(in, "usage"), &u);
    dp_jtx_completion(&tx, root, meta->id, meta->created, meta->model,
                      text.data, has_text, calls,
                      dp_bedrock_finish(dp_jtx_gets(in, "stopReason")));
    calls = NULL;
    dp_jtx_usage(&tx, root, &u, 0);
    rv   = dp_jtx_print(&tx, root, out, outlen);
    root = NULL;
    if (rv == TG_OK && usage != NULL && u.found) {
        *usage = u;
    }
out:
    cJSON_Delete(calls);
    cJSON_Delete(root);
    cJSON_Delete(in);
    tg_buf_fini(&text);
    return rv;
}

/* ---- the stream ---------------------------------------------------------- */

#define DP_BEDROCK_BLOCKS 64 /* content blocks mapped to tool call indexes */

struct dp_bedrock_stream {
    dp_evs          evs;
    dp_jtx_head     h;
    bool            include_usage;
    bool            started;  /* the role chunk went out */
    bool            finished; /* messageStop was translated */
    bool            ended;    /* nothing more goes to the client */
    int             ncalls;
    int             call_of[DP_BEDROCK_BLOCKS]; /* block -> call index + 1 */
    int64_t         content; /* content chunks of this feed */
    dp_usage_counts usage;
    tg_buf         *out; /* during a feed */
};

tg_err
dp_bedrock_stream_create(dp_bedrock_stream **out, const dp_bedrock_meta *meta,
                         bool include_usage, size_t max)
{
    dp_bedrock_stream *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return TG_ENOMEM;
    }
    dp_evs_init(&s->evs, max);
    if (dp_jtx_head_init(&s->h, meta->id, meta->model, meta->created) !=
        TG_OK) {
        dp_bedrock_stream_destroy(s);
        return TG_ENOMEM;
    }
    s->include_usage = include_usage;
    *out             = s;
    return TG_OK;
}

void
dp_bedrock_stream_destroy(dp_bedrock_stream *s)
{
    if (s == NULL) {
        return;
    }
    dp_evs_fini(&s->evs);
    dp_jtx_head_fini(&s->h);
    free(s);
}

/* dp_bedrock_text_chunk emits a text delta (with the role: the first). */
static tg_err
dp_bedrock_text_chunk(dp_bedrock_stream *s, const char *role, const char *text)
{
    return dp_jtx_text_chunk(&s->h, role, text, s->out);
}

/* dp_bedrock_call_chunk: the tool call of block idx starts (id, name) or
 * continues (an arguments fragment). */
static tg_err
dp_bedrock_call_chunk(dp_bedrock_stream *s, int call, const char *id,
                      const char *name, const char *args)
{
    dp_jtx tx     = {0};
    cJSON *choice = NULL;
    cJSON *delta  = NULL;
    cJSON *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
    cJSON *c      = dp_jtx_obj(&tx, dp_jtx_arr(&tx, delta, "tool_calls"), NULL);
    cJSON *fn;

    dp_jtx_num(&tx, c, "index", call);
    if (id != NULL) {
        dp_jtx_str(&tx, c, "id", id);
        dp_jtx_str(&tx, c, "type", "function");
    }
    fn = dp_jtx_obj(&tx, c, "function");
    if (name != NULL) {
        dp_jtx_str(&tx, fn, "name", name);
    }
    dp_jtx_str(&tx, fn, "arguments", args);
    return dp_jtx_chunk_emit(&tx, root, choice, NULL, s->out);
}

static tg_err
dp_bedrock_finish_chunk(dp_bedrock_stream *s, const char *finish)
{
    return dp_jtx_finish_chunk(&s->h, finish, s->out);
}

/* dp_bedrock_stream_error ends the client's stream with one OpenAI error
 * event. */
static tg_err
dp_bedrock_stream_error(dp_bedrock_stream *s, const char *message,
                        const char *type, const char *code)
{
    size_t mark = s->out->len;
    tg_err rv   = dp_sse_open(s->out, NULL);

    if (rv == TG_OK) {
        rv = dp_openai_error(s->out, message, type, NULL, code);
    }
    if ((rv = dp_sse_close(s->out, mark, rv)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

/* dp_bedrock_block: the call index + 1 of content block idx (0: text). */
static int *
dp_bedrock_block(dp_bedrock_stream *s, const cJSON *ev)
{
    int64_t i = 0;

    if (!dp_jtx_count(ev, "contentBlockIndex", &i) || i >= DP_BEDROCK_BLOCKS) {
        return NULL;
    }
    return &s->call_of[i];
}

static tg_err
dp_bedrock_delta(dp_bedrock_stream *s, const cJSON *ev)
{
    const cJSON *d    = dp_jtx_get(ev, "delta");
    const char  *text = dp_jtx_gets(d, "text");
    const char  *args = dp_jtx_gets(dp_jtx_get(d, "toolUse"), "input");
    int         *blk  = dp_bedrock_block(s, ev);

    if (text != NULL && text[0] != '\0') {
        s->content++;
        return dp_bedrock_text_chunk(s, NULL, text);
    }
    if (args != NULL && blk != NULL && *blk > 0) {
        s->content++;
        return dp_bedrock_call_chunk(s, *blk - 1, NULL, NULL, args);
    }
    return TG_OK; /* reasoningContent, an empty delta: nothing to show */
}

static tg_err
dp_bedrock_block_start(dp_bedrock_stream *s, const cJSON *ev)
{
    const cJSON *tu  = dp_jtx_get(dp_jtx_get(ev, "start"), "toolUse");
    int         *blk = dp_bedrock_block(s, ev);

    if (!cJSON_IsObject(tu) || blk == NULL) {
        return TG_OK;
    }
    *blk = ++s->ncalls;
    s->content++;
    return dp_bedrock_call_chunk(
        s, *blk - 1,
        dp_jtx_gets(tu, "toolUseId") != NULL ? dp_jtx_gets(tu, "toolUseId")
                                             : "",
        dp_jtx_gets(tu, "name") != NULL ? dp_jtx_gets(tu, "name") : "", "");
}

/* dp_bedrock_event translates one event message's JSON payload. */
static tg_err
dp_bedrock_event(dp_bedrock_stream *s, const char *type, const cJSON *ev)
{
    tg_err rv;

    if (strcmp(type, "metadata") == 0) {
        dp_bedrock_usage(dp_jtx_get(ev, "usage"), &s->usage);
        return TG_OK;
    }
    if (s->finished) {
        return TG_OK;
    }
    if (!s->started) {
        if ((rv = dp_bedrock_text_chunk(s, "assistant", "")) != TG_OK) {
            return rv;
        }
        s->started = true;
    }
    if (strcmp(type, "contentBlockDelta") == 0) {
        return dp_bedrock_delta(s, ev);
    }
    if (strcmp(type, "contentBlockStart") == 0) {
        return dp_bedrock_block_start(s, ev);
    }
    if (strcmp(type, "messageStop") == 0) {
        s->finished = true;
        return dp_bedrock_finish_chunk(
            s, dp_bedrock_finish(dp_jtx_gets(ev, "stopReason")));
    }
    return TG_OK; /* messageStart, contentBlockStop */
}

/* dp_bedrock_exception: an exception message ends the stream. */
static tg_err
dp_bedrock_exception(dp_bedrock_stream *s, const dp_evs_msg *m)
{
    cJSON      *j    = cJSON_ParseWithLength(m->payload, m->payload_len);
    const char *what = dp_jtx_gets(j, "message");
    const char *x    = m->exception_type[0] ? m->exception_type : "exception";
    bool        rate = strcmp(x, "throttlingException") == 0 ||
                strcmp(x, "serviceUnavailableException") == 0;
    char   text[400];
    tg_err rv;

    snprintf(text, sizeof(text),
             "The provider ended the stream with %s%s%.300s", x,
             what != NULL ? ": " : ".", what != NULL ? what : "");
    cJSON_Delete(j);
    rv = dp_bedrock_stream_error(
        s, text, rate ? "rate_limit_error" : "server_error",
        strcmp(x, "validationException") == 0 ? "upstream_rejected"
        : rate                                ? "upstream_rate_limited"
                                              : "upstream_error");
    return rv;
}

static tg_err
dp_bedrock_on_msg(void *arg, const dp_evs_msg *m)
{
    dp_bedrock_stream *s = arg;
    cJSON             *ev;
    tg_err             rv;

    if (s->ended) {
        return TG_OK;
    }
    if (strcmp(m->message_type, "exception") == 0 ||
        strcmp(m->message_type, "error") == 0) {
        return dp_bedrock_exception(s, m);
    }
    if (strcmp(m->message_type, "event") != 0) {
        return TG_OK;
    }
    ev = cJSON_ParseWithLength(m->payload, m->payload_len);
    if (!cJSON_IsObject(ev)) {
        cJSON_Delete(ev);
        return dp_bedrock_stream_error(
            s, "The provider sent a stream event the gateway could not read.",
            "server_error", "upstream_stream_invalid");
    }
    rv = dp_bedrock_event(s, m->event_type, ev);
    cJSON_Delete(ev);
    return rv;
}

tg_err
dp_bedrock_stream_feed(dp_bedrock_stream *s, const char *data, size_t len,
                       tg_buf *out, dp_emit *em)
{
    tg_err rv = TG_OK;

    s->content = 0;
    s->out     = out;
    if (!s->ended) {
        rv = dp_evs_feed(&s->evs, data, len, dp_bedrock_on_msg, s);
        if (rv == TG_EPROTO) {
            char text[200];
            snprintf(text, sizeof(text),
                     "The provider's event stream is damaged (%s).",
                     s->evs.why);
            rv = dp_bedrock_stream_error(s, text, "server_error",
                                         "upstream_stream_invalid");
        }
    }
    em->content = s->content;
    em->usage   = s->usage;
    s->out      = NULL;
    return rv;
}

tg_err
dp_bedrock_stream_finish(dp_bedrock_stream *s, tg_buf *out, dp_emit *em)
{
    tg_err rv;

    s->content  = 0;
    em->content = 0;
    em->usage   = s->usage;
    if (s->ended) {
        return TG_OK;
    }
    rv = dp_jtx_stream_end(&s->h, s->finished, s->include_usage, &s->usage, 0,
                           out);
    if (rv == TG_OK) {
        s->ended = true;
    }
    return rv;
}
