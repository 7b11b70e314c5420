/* dp_resp.c - a chat answer turned into the Responses API's: the Response
 * object for a whole chat.completion, and the Responses event stream for
 * chat.completion.chunk events (see dp_resp.h). */
#include "dp_resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_jtx.h"
#include "dp_sse.h"

/* ---- the Response object --------------------------------------------- */

/* dp_resp_usage adds the Responses usage for a chat usage object (null
 * when there is none). */
static void
dp_resp_usage(dp_jtx *tx, cJSON *o, const cJSON *cu)
{
    int64_t in = 0, outt = 0, cached = 0, reas = 0;
    cJSON  *u;

    if (!cJSON_IsObject(cu)) {
        dp_jtx_add(tx, o, "usage", cJSON_CreateNull());
        return;
    }
    dp_jtx_count(cu, "prompt_tokens", &in);
    dp_jtx_count(cu, "completion_tokens", &outt);
    dp_jtx_count(dp_jtx_get(cu, "prompt_tokens_details"), "cached_tokens",
                 &cached);
    dp_jtx_count(dp_jtx_get(cu, "completion_tokens_details"),
                 "reasoning_tokens", &reas);
    u = dp_jtx_obj(tx, o, "usage");
    dp_jtx_num(tx, u, "input_tokens", (double)in);
    dp_jtx_num(tx, dp_jtx_obj(tx, u, "input_tokens_details"), "cached_tokens",
               (double)cached);
    dp_jtx_num(tx, u, "output_tokens", (double)outt);
    dp_jtx_num(tx, dp_jtx_obj(tx, u, "output_tokens_details"),
               "reasoning_tokens", (double)reas);
    dp_jtx_num(tx, u, "total_tokens", (double)(in + outt));
}

/* dp_resp_echoed adds the echoed request field key, or dflt (JSON text)
 * when the request did not send it. */
static void
dp_resp_echoed(dp_jtx *tx, cJSON *o, const cJSON *echo, const char *key,
               const char *dflt)
{
    const cJSON *v = dp_jtx_get(echo, key);

    if (v != NULL) {
        dp_jtx_dup(tx, o, key, v);
    } else {
        dp_jtx_add(tx, o, key, cJSON_Parse(dflt));
    }
}

/* dp_resp_incomplete: the Responses reason for a chat finish_reason that
 * means the answer is incomplete, or NULL. */
static const char *
dp_resp_incomplete(const char *finish)
{
    if (dp_jtx_is(finish, "length")) {
        return "max_output_tokens";
    }
    if (dp_jtx_is(finish, "content_filter")) {
        return "content_filter";
    }
    return NULL;
}

/* dp_resp_object builds a Response with status, output (taken; NULL:
 * []), the chat usage cu (may be NULL) and the incomplete reason (or
 * NULL). */
static cJSON *
dp_resp_object(dp_jtx *tx, const dp_resp_meta *m, const char *status,
               cJSON *output, const cJSON *cu, const char *incomplete)
{
    const cJSON *e = m->echo;
    cJSON       *o = cJSON_CreateObject();

    if (o == NULL) {
        tx->oom = true;
        cJSON_Delete(output);
        return NULL;
    }
    dp_jtx_str(tx, o, "id", m->id);
    dp_jtx_str(tx, o, "object", "response");
    dp_jtx_num(tx, o, "created_at", (double)m->created);
    dp_jtx_str(tx, o, "status", status);
    dp_jtx_add(tx, o, "background", cJSON_CreateFalse());
    dp_jtx_add(tx, o, "error", cJSON_CreateNull());
    if (incomplete != NULL) {
        dp_jtx_str(tx, dp_jtx_obj(tx, o, "incomplete_details"), "reason",
                   incomplete);
    } else {
        dp_jtx_add(tx, o, "incomplete_details", cJSON_CreateNull());
    }
    dp_resp_echoed(tx, o, e, "instructions", "null");
    dp_resp_echoed(tx, o, e, "max_output_tokens", "null");
    dp_jtx_str(tx, o, "model", m->model);
    dp_jtx_add(tx, o, "output", output != NULL ? output : cJSON_CreateArray());
    dp_resp_echoed(tx, o, e, "parallel_tool_calls", "true");
    dp_resp_echoed(tx, o, e, "previous_response_id", "null");
    dp_resp_echoed(tx, o, e, "reasoning", "{\"effort\":null,\"summary\":null}");
    dp_resp_echoed(tx, o, e, "store", "false");
    dp_resp_echoed(tx, o, e, "temperature", "1");
    dp_resp_echoed(tx, o, e, "text", "{\"format\":{\"type\":\"text\"}}");
    dp_resp_echoed(tx, o, e, "tool_choice", "\"auto\"");
    dp_resp_echoed(tx, o, e, "tools", "[]");
    dp_resp_echoed(tx, o, e, "top_p", "1");
    dp_resp_echoed(tx, o, e, "truncation", "\"disabled\"");
    dp_resp_usage(tx, o, cu);
    dp_resp_echoed(tx, o, e, "user", "null");
    dp_resp_echoed(tx, o, e, "metadata", "{}");
    return o;
}

/* dp_resp_text_part builds an output_text part holding text. */
static cJSON *
dp_resp_text_part(dp_jtx *tx, cJSON *parent, const char *key, const char *text)
{
    cJSON *p = dp_jtx_obj(tx, parent, key);

    dp_jtx_str(tx, p, "type", "output_text");
    dp_jtx_arr(tx, p, "annotations");
    dp_jtx_arr(tx, p, "logprobs");
    dp_jtx_str(tx, p, "text", text);
    return p;
}

/* dp_resp_msg_item adds a message item (content NULL: in progress, no
 * parts yet). */
static cJSON *
dp_resp_msg_item(dp_jtx *tx, cJSON *parent, const char *key, const char *id,
                 const char *text)
{
    cJSON *it = dp_jtx_obj(tx, parent, key);
    cJSON *c;

    dp_jtx_str(tx, it, "id", id);
    dp_jtx_str(tx, it, "type", "message");
    dp_jtx_str(tx, it, "status", text != NULL ? "completed" : "in_progress");
    dp_jtx_str(tx, it, "role", "assistant");
    c = dp_jtx_arr(tx, it, "content");
    if (text != NULL) {
        dp_resp_text_part(tx, c, NULL, text);
    }
    return it;
}

/* dp_resp_fc_item adds a function_call item. */
static cJSON *
dp_resp_fc_item(dp_jtx *tx, cJSON *parent, const char *key, const char *id,
                const char *call_id, const char *name, const char *args,
                bool done)
{
    cJSON *it = dp_jtx_obj(tx, parent, key);

    dp_jtx_str(tx, it, "id", id);
    dp_jtx_str(tx, it, "type", "function_call");
    dp_jtx_str(tx, it, "status", done ? "completed" : "in_progress");
    dp_jtx_str(tx, it, "arguments", args);
    dp_jtx_str(tx, it, "call_id", call_id);
    dp_jtx_str(tx, it, "name", name);
    return it;
}

tg_err
dp_resp_from_chat(const char *body, size_t len, const dp_resp_meta *m,
                  char **out, size_t *outlen)
{
    dp_jtx       tx  = {0};
    cJSON       *in  = cJSON_ParseWithLength(body, len);
    const cJSON *ch  = cJSON_GetArrayItem(dp_jtx_get(in, "choices"), 0);
    const cJSON *msg = dp_jtx_get(ch, "message");
    const cJSON *tc;
    const char  *text   = dp_jtx_gets(msg, "content");
    const char  *finish = dp_jtx_gets(ch, "finish_reason");
    const cJSON *calls  = dp_jtx_get(msg, "tool_calls");
    cJSON       *output, *o;
    char         id[160];
    int          n = 0;

    *out = NULL;
    if (!cJSON_IsObject(msg)) {
        cJSON_Delete(in);
        return TG_EPROTO;
    }
    if (text == NULL) {
        text = dp_jtx_gets(msg, "refusal");
    }
    output = cJSON_CreateArray();
    if (text != NULL && (text[0] != '\0' || cJSON_GetArraySize(calls) == 0)) {
        snprintf(id, sizeof(id), "msg_%s_%d", m->id + 5, n++);
        dp_resp_msg_item(&tx, output, NULL, id, text);
    }
    cJSON_ArrayForEach(tc, calls)
    {
        const cJSON *fn   = dp_jtx_get(tc, "function");
        const char  *args = dp_jtx_gets(fn, "arguments");
        snprintf(id, sizeof(id), "fc_%s_%d", m->id + 5, n++);
        dp_resp_fc_item(&tx, output, NULL, id,
                        dp_jtx_gets(tc, "id") ? dp_jtx_gets(tc, "id") : id,
                        dp_jtx_gets(fn, "name") ? dp_jtx_gets(fn, "name") : "",
                        args != NULL ? args : "{}", true);
    }
    if (output == NULL) {
        tx.oom = true;
    }
    o = dp_resp_object(
        &tx, m, dp_resp_incomplete(finish) ? "incomplete" : "completed", output,
        dp_jtx_get(in, "usage"), dp_resp_incomplete(finish));
    cJSON_Delete(in);
    if (o == NULL) {
        return TG_ENOMEM;
    }
    return dp_jtx_print(&tx, o, out, outlen);
}

/* ---- the event stream ------------------------------------------------ */

struct dp_resp_stream {
    char    id[128];
    char   *model;
    int64_t created;
    cJSON  *echo;
    int64_t seq;
    bool    started, ended;
    char    finish[24]; /* the chat finish_reason; "" none yet */
    cJSON  *output;     /* the items done, for the final Response */
    cJSON  *usage;      /* the chat usage, or NULL */
    int     n_items;    /* output indexes given */
    /* The item being streamed: none, a message or a function call. */
    enum { DP_RS_NONE, DP_RS_MSG, DP_RS_FC } open;
    char   item_id[160];
    int    item_index;
    int    fc_chat_index; /* the chat tool call index it came from */
    char  *call_id, *name;
    tg_buf acc; /* the text or the arguments so far */
};

static dp_resp_meta
dp_resp_stream_meta(const dp_resp_stream *s)
{
    dp_resp_meta m = {s->id, s->model, s->created, s->echo};

    return m;
}

tg_err
dp_resp_stream_create(dp_resp_stream **out, const dp_resp_meta *m)
{
    dp_resp_stream *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return TG_ENOMEM;
    }
    snprintf(s->id, sizeof(s->id), "%s", m->id);
    s->created = m->created;
    s->model   = dp_jtx_strdup(m->model);
    s->echo    = m->echo != NULL ? cJSON_Duplicate(m->echo, true) : NULL;
    s->output  = cJSON_CreateArray();
    tg_buf_init(&s->acc, 0);
    if (s->model == NULL || s->output == NULL ||
        (m->echo != NULL && s->echo == NULL)) {
        dp_resp_stream_destroy(s);
        return TG_ENOMEM;
    }
    *out = s;
    return TG_OK;
}

void
dp_resp_stream_destroy(dp_resp_stream *s)
{
    if (s == NULL) {
        return;
    }
    free(s->model);
    free(s->call_id);
    free(s->name);
    cJSON_Delete(s->echo);
    cJSON_Delete(s->output);
    cJSON_Delete(s->usage);
    tg_buf_fini(&s->acc);
    free(s);
}

bool
dp_resp_stream_ended(const dp_resp_stream *s)
{
    return s->ended;
}

/* dp_resp_ev starts an event object of type. */
static cJSON *
dp_resp_ev(dp_jtx *tx, const char *type)
{
    cJSON *e = cJSON_CreateObject();

    if (e == NULL) {
        tx->oom = true;
    }
    dp_jtx_str(tx, e, "type", type);
    return e;
}

/* dp_resp_put numbers e and appends it to out as an event named by its
 * type; frees e. */
static tg_err
dp_resp_put(dp_resp_stream *s, dp_jtx *tx, cJSON *e, tg_buf *out)
{
    char type[64];

    snprintf(type, sizeof(type), "%s", e != NULL ? dp_jtx_gets(e, "type") : "");
    dp_jtx_num(tx, e, "sequence_number", (double)s->seq++);
    return dp_jtx_emit(tx, e, type, out);
}

/* dp_resp_put_response appends an event of type carrying the Response
 * in its present state. */
static tg_err
dp_resp_put_response(dp_resp_stream *s, const char *type, const char *status,
                     const char *incomplete, tg_buf *out)
{
    dp_jtx       tx   = {0};
    dp_resp_meta m    = dp_resp_stream_meta(s);
    cJSON       *e    = dp_resp_ev(&tx, type);
    cJSON       *outp = strcmp(status, "in_progress") == 0
                            ? NULL
                            : cJSON_Duplicate(s->output, true);

    dp_jtx_add(
        &tx, e, "response",
        dp_resp_object(&tx, &m, status, outp,
                       strcmp(status, "in_progress") == 0 ? NULL : s->usage,
                       incomplete));
    return dp_resp_put(s, &tx, e, out);
}

/* dp_resp_item_ev appends an event of type about the open item, with
 * content_index when it is a message's part event. */
static tg_err
dp_resp_item_ev(dp_resp_stream *s, const char *type, const char *key,
                const char *val, bool part, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *e  = dp_resp_ev(&tx, type);

    dp_jtx_str(&tx, e, "item_id", s->item_id);
    dp_jtx_num(&tx, e, "output_index", s->item_index);
    if (part) {
        dp_jtx_num(&tx, e, "content_index", 0);
    }
    if (key != NULL) {
        dp_jtx_str(&tx, e, key, val);
    }
    if (s->open == DP_RS_MSG && key != NULL) {
        dp_jtx_arr(&tx, e, "logprobs");
    }
    return dp_resp_put(s, &tx, e, out);
}

/* dp_resp_item_added appends response.output_item.added for the item
 * just opened (and for a message its content_part.added). */
static tg_err
dp_resp_item_added(dp_resp_stream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *e  = dp_resp_ev(&tx, "response.output_item.added");
    tg_err rv;

    dp_jtx_num(&tx, e, "output_index", s->item_index);
    if (s->open == DP_RS_MSG) {
        dp_resp_msg_item(&tx, e, "item", s->item_id, NULL);
    } else {
        dp_resp_fc_item(&tx, e, "item", s->item_id, s->call_id, s->name, "",
                        false);
    }
    if ((rv = dp_resp_put(s, &tx, e, out)) != TG_OK || s->open != DP_RS_MSG) {
        return rv;
    }
    e = dp_resp_ev(&tx, "response.content_part.added");
    dp_jtx_str(&tx, e, "item_id", s->item_id);
    dp_jtx_num(&tx, e, "output_index", s->item_index);
    dp_jtx_num(&tx, e, "content_index", 0);
    dp_resp_text_part(&tx, e, "part", "");
    return dp_resp_put(s, &tx, e, out);
}

/* dp_resp_close ends the open item: its done events, and the item kept
 * for the final Response. */
static tg_err
dp_resp_close(dp_resp_stream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *e;
    tg_err rv;

    if (s->open == DP_RS_NONE) {
        return TG_OK;
    }
    if (tg_buf_append(&s->acc, "", 1) != TG_OK) {
        return TG_ENOMEM;
    }
    if (s->open == DP_RS_MSG) {
        if ((rv = dp_resp_item_ev(s, "response.output_text.done", "text",
                                  s->acc.data, true, out)) != TG_OK) {
            return rv;
        }
        e = dp_resp_ev(&tx, "response.content_part.done");
        dp_jtx_str(&tx, e, "item_id", s->item_id);
        dp_jtx_num(&tx, e, "output_index", s->item_index);
        dp_jtx_num(&tx, e, "content_index", 0);
        dp_resp_text_part(&tx, e, "part", s->acc.data);
        if ((rv = dp_resp_put(s, &tx, e, out)) != TG_OK) {
            return rv;
        }
        dp_resp_msg_item(&tx, s->output, NULL, s->item_id, s->acc.data);
    } else {
        if ((rv = dp_resp_item_ev(s, "response.function_call_arguments.done",
                                  "arguments", s->acc.data, false, out)) !=
            TG_OK) {
            return rv;
        }
        dp_resp_fc_item(&tx, s->output, NULL, s->item_id, s->call_id, s->name,
                        s->acc.data, true);
    }
    e = dp_resp_ev(&tx, "response.output_item.done");
    dp_jtx_num(&tx, e, "output_index", s->item_index);
    dp_jtx_dup(
        &tx, e, "item",
        cJSON_GetArrayItem(s->output, cJSON_GetArraySize(s->output) - 1));
    s->open = DP_RS_NONE;
    tg_buf_reset(&s->acc);
    return tx.oom ? TG_ENOMEM : dp_resp_put(s, &tx, e, out);
}

/* dp_resp_open closes the open item and opens a new one of kind. */
static tg_err
dp_resp_open(dp_resp_stream *s, int kind, const char *call_id, const char *name,
             tg_buf *out)
{
    tg_err rv;

    if ((rv = dp_resp_close(s, out)) != TG_OK) {
        return rv;
    }
    s->open       = kind;
    s->item_index = s->n_items++;
    snprintf(s->item_id, sizeof(s->item_id), "%s_%s_%d",
             kind == DP_RS_MSG ? "msg" : "fc", s->id + 5, s->item_index);
    if (kind == DP_RS_FC) {
        free(s->call_id);
        free(s->name);
        s->call_id = dp_jtx_strdup(call_id != NULL ? call_id : s->item_id);
        s->name    = dp_jtx_strdup(name != NULL ? name : "");
        if (s->call_id == NULL || s->name == NULL) {
            return TG_ENOMEM;
        }
    }
    return dp_resp_item_added(s, out);
}

/* dp_resp_start appends response.created and response.in_progress once. */
static tg_err
dp_resp_start(dp_resp_stream *s, tg_buf *out)
{
    tg_err rv;

    if (s->started) {
        return TG_OK;
    }
    s->started = true;
    if ((rv = dp_resp_put_response(s, "response.created", "in_progress", NULL,
                                   out)) != TG_OK) {
        return rv;
    }
    return dp_resp_put_response(s, "response.in_progress", "in_progress", NULL,
                                out);
}

/* dp_resp_complete closes the open item and appends response.completed
 * (or response.incomplete). */
static tg_err
dp_resp_complete(dp_resp_stream *s, tg_buf *out)
{
    const char *inc = dp_resp_incomplete(s->finish);
    tg_err      rv;

    if ((rv = dp_resp_start(s, out)) != TG_OK ||
        (rv = dp_resp_close(s, out)) != TG_OK) {
        return rv;
    }
    s->ended = true;
    return dp_resp_put_response(
        s, inc != NULL ? "response.incomplete" : "response.completed",
        inc != NULL ? "incomplete" : "completed", inc, out);
}

/* dp_resp_error appends the "error" event for an OpenAI error object and
 * ends the stream. */
static tg_err
dp_resp_error(dp_resp_stream *s, const cJSON *err, tg_buf *out)
{
    dp_jtx      tx   = {0};
    cJSON      *e    = dp_resp_ev(&tx, "error");
    const char *code = dp_jtx_gets(err, "code");
    const char *msg  = dp_jtx_gets(err, "message");
    const char *prm  = dp_jtx_gets(err, "param");

    s->ended = true;
    if (code != NULL) {
        dp_jtx_str(&tx, e, "code", code);
    } else {
        dp_jtx_add(&tx, e, "code", cJSON_CreateNull());
    }
    dp_jtx_str(&tx, e, "message",
               msg != NULL ? msg : "The response could not be completed.");
    if (prm != NULL) {
        dp_jtx_str(&tx, e, "param", prm);
    } else {
        dp_jtx_add(&tx, e, "param", cJSON_CreateNull());
    }
    return dp_resp_put(s, &tx, e, out);
}

/* dp_resp_tool_delta handles one chat tool call delta. */
static tg_err
dp_resp_tool_delta(dp_resp_stream *s, const cJSON *tc, tg_buf *out)
{
    const cJSON *fn   = dp_jtx_get(tc, "function");
    const char  *args = dp_jtx_gets(fn, "arguments");
    const cJSON *ix   = dp_jtx_get(tc, "index");
    int          idx  = cJSON_IsNumber(ix) ? ix->valueint : 0;
    tg_err       rv;

    if (s->open != DP_RS_FC || idx != s->fc_chat_index) {
        if ((rv = dp_resp_open(s, DP_RS_FC, dp_jtx_gets(tc, "id"),
                               dp_jtx_gets(fn, "name"), out)) != TG_OK) {
            return rv;
        }
        s->fc_chat_index = idx;
    }
    if (args == NULL || args[0] == '\0') {
        return TG_OK;
    }
    if ((rv = tg_buf_append(&s->acc, args, strlen(args))) != TG_OK) {
        return rv;
    }
    return dp_resp_item_ev(s, "response.function_call_arguments.delta", "delta",
                           args, false, out);
}

/* dp_resp_chunk handles one chat.completion.chunk. */
static tg_err
dp_resp_chunk(dp_resp_stream *s, const cJSON *ch, tg_buf *out)
{
    const cJSON *c     = cJSON_GetArrayItem(dp_jtx_get(ch, "choices"), 0);
    const cJSON *delta = dp_jtx_get(c, "delta");
    const char  *text  = dp_jtx_gets(delta, "content");
    const char  *fin   = dp_jtx_gets(c, "finish_reason");
    const cJSON *tc;
    tg_err       rv;

    if (cJSON_IsObject(dp_jtx_get(ch, "usage"))) {
        cJSON_Delete(s->usage);
        if ((s->usage = cJSON_Duplicate(dp_jtx_get(ch, "usage"), true)) ==
            NULL) {
            return TG_ENOMEM;
        }
    }
    if (text == NULL) {
        text = dp_jtx_gets(delta, "refusal");
    }
    if (text != NULL && text[0] != '\0') {
        if (s->open != DP_RS_MSG &&
            (rv = dp_resp_open(s, DP_RS_MSG, NULL, NULL, out)) != TG_OK) {
            return rv;
        }
        if ((rv = tg_buf_append(&s->acc, text, strlen(text))) != TG_OK ||
            (rv = dp_resp_item_ev(s, "response.output_text.delta", "delta",
                                  text, true, out)) != TG_OK) {
            return rv;
        }
    }
    cJSON_ArrayForEach(tc, dp_jtx_get(delta, "tool_calls"))
    {
        if ((rv = dp_resp_tool_delta(s, tc, out)) != TG_OK) {
            return rv;
        }
    }
    if (fin != NULL) {
        snprintf(s->finish, sizeof(s->finish), "%s", fin);
    }
    return TG_OK;
}

/* dp_resp_data handles the data of one chat event. */
static tg_err
dp_resp_data(dp_resp_stream *s, const char *data, size_t len, tg_buf *out)
{
    cJSON *j;
    tg_err rv;

    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        return dp_resp_complete(s, out);
    }
    if ((j = cJSON_ParseWithLength(data, len)) == NULL) {
        return TG_EPROTO;
    }
    if ((rv = dp_resp_start(s, out)) == TG_OK) {
        rv = dp_jtx_get(j, "error") != NULL
                 ? dp_resp_error(s, dp_jtx_get(j, "error"), out)
                 : dp_resp_chunk(s, j, out);
    }
    cJSON_Delete(j);
    return rv;
}

tg_err
dp_resp_stream_feed_sse(dp_resp_stream *s, const char *ev, size_t len,
                        tg_buf *out)
{
    dp_sse_fields f;
    tg_err        rv;

    if (s->ended) {
        return TG_OK;
    }
    if ((rv = dp_sse_read(ev, len, &f)) != TG_OK) {
        return rv;
    }
    if (f.data != NULL) {
        rv = dp_resp_data(s, f.data, f.len, out);
    }
    dp_sse_fields_fini(&f);
    return rv;
}

tg_err
dp_resp_stream_finish(dp_resp_stream *s, tg_buf *out)
{
    if (s->ended) {
        return TG_OK;
    }
    if (s->finish[0] != '\0') {
        return dp_resp_complete(s, out);
    }
    cJSON *err = cJSON_Parse(
        "{\"code\":\"upstream_stream_incomplete\",\"message\":\"The "
        "provider's stream ended before the response was complete.\"}");
    tg_err rv = err != NULL ? dp_resp_start(s, out) : TG_ENOMEM;

    if (rv == TG_OK) {
        rv = dp_resp_error(s, err, out);
    }
    cJSON_Delete(err);
    return rv;
}
