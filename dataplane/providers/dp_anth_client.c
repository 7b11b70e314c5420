/* dp_anth_client.c - the answer to an Anthropic Messages client from a
 * provider of another format: the OpenAI reply, stream events and errors
 * that provider's table gives turned into Anthropic's, and the table that
 * wraps it, dp_anth_client_ops (see dp_anth_client.h). */
#include "dp_anth_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_provider_int.h"
#include "dp_sse.h"
#include "tg_json.h"

#define DP_ANTH_MID_MAX (8u << 20) /* OpenAI events on their way */

/* ---- usage and stop reasons --------------------------------------------- */

/* dp_anth_usage_read_openai reads an OpenAI usage object: prompt_tokens
 * includes the cached tokens, which Anthropic counts apart. */
static void
dp_anth_usage_read_openai(const cJSON *u, dp_anth_usage *out)
{
    int64_t prompt = 0;
    int64_t cached = 0;

    if (!cJSON_IsObject(u)) {
        return;
    }
    out->found = true;
    dp_jtx_count(u, "prompt_tokens", &prompt);
    dp_jtx_count(u, "completion_tokens", &out->output_tokens);
    dp_jtx_count(dp_jtx_get(u, "prompt_tokens_details"), "cached_tokens",
                 &cached);
    if (cached > prompt) {
        cached = prompt;
    }
    out->input_tokens       = prompt - cached;
    out->cache_read_tokens  = cached;
    out->cache_write_tokens = 0;
}

/* OpenAI backends that do not report tool_calls (some say "stop") still
 * ended the turn to call a tool when they produced tool calls. */
static const char *
dp_anth_stop_reason(const char *finish, bool had_tools)
{
    if (finish != NULL && strcmp(finish, "length") == 0) {
        return "max_tokens";
    }
    if (finish != NULL && strcmp(finish, "content_filter") == 0) {
        return "refusal";
    }
    if (had_tools ||
        (finish != NULL && (strcmp(finish, "tool_calls") == 0 ||
                            strcmp(finish, "function_call") == 0))) {
        return "tool_use";
    }
    return "end_turn";
}

/* ---- errors ------------------------------------------------------------- */

/* OpenAI error -> Anthropic type, by code first, then type, then status. */
static const char *
dp_anth_anth_type(const char *type, const char *code, int *status)
{
    static const struct {
        const char *key;
        const char *anth;
        int         status;
    } by_code[] = {
        {"context_length_exceeded", "invalid_request_error", 400},
        {"invalid_api_key", "authentication_error", 401},
        {"insufficient_quota", "rate_limit_error", 429},
        {"rate_limit_exceeded", "rate_limit_error", 429},
        {"model_not_found", "not_found_error", 404},
        {"not_found", "not_found_error", 404},
        {"permission_denied", "permission_error", 403},
        {"request_too_large", "request_too_large", 413},
        {"overloaded", "overloaded_error", 529},
        {"timeout", "timeout_error", 504},
    };
    static const struct {
        const char *key;
        const char *anth;
        int         status;
    } by_type[] = {
        {"authentication_error", "authentication_error", 401},
        {"permission_error", "permission_error", 403},
        {"rate_limit_error", "rate_limit_error", 429},
        {"insufficient_quota", "rate_limit_error", 429},
        {"server_error", "api_error", 500},
    };

    for (size_t i = 0; code != NULL && i < sizeof(by_code) / sizeof(by_code[0]);
         i++) {
        if (strcmp(code, by_code[i].key) == 0) {
            if (*status == 0) {
                *status = by_code[i].status;
            }
            return by_code[i].anth;
        }
    }
    switch (*status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
        *status = 529;
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        break;
    }
    for (size_t i = 0; type != NULL && i < sizeof(by_type) / sizeof(by_type[0]);
         i++) {
        if (strcmp(type, by_type[i].key) == 0) {
            if (*status == 0) {
                *status = by_type[i].status;
            }
            return by_type[i].anth;
        }
    }
    if (*status == 0) {
        *status = 400;
    }
    return *status >= 500 ? "api_error" : "invalid_request_error";
}

/* dp_anth_anth_error_obj builds {"type":"error","error":{...}} from an
 * OpenAI error object (NULL: unknown). */
static cJSON *
dp_anth_anth_error_obj(dp_jtx *tx, const cJSON *err, int *status)
{
    const char *type    = dp_jtx_gets(err, "type");
    const char *code    = dp_jtx_gets(err, "code");
    const char *message = dp_jtx_gets(err, "message");
    const char *atype   = dp_anth_anth_type(type, code, status);
    cJSON      *root    = cJSON_CreateObject();
    cJSON      *e;

    if (root == NULL) {
        tx->oom = true;
        return NULL;
    }
    if (message == NULL) {
        message = "The upstream provider returned an error.";
    }
    dp_jtx_str(tx, root, "type", "error");
    e = dp_jtx_obj(tx, root, "error");
    dp_jtx_str(tx, e, "type", atype);
    if (code != NULL && strcmp(code, "context_length_exceeded") == 0 &&
        !dp_jtx_icontains(message, "prompt is too long")) {
        /* Anthropic clients look for this phrase to compact and retry. */
        size_t n = strlen(message) + 32;
        char  *m = malloc(n);
        if (m == NULL) {
            tx->oom = true;
        } else {
            snprintf(m, n, "prompt is too long: %s", message);
            dp_jtx_str(tx, e, "message", m);
            free(m);
        }
    } else {
        dp_jtx_str(tx, e, "message", message);
    }
    return root;
}

tg_err
dp_anth_error_from_openai(int status, const char *body, size_t len, tg_buf *out,
                          int *out_status)
{
    dp_jtx       tx   = {0};
    cJSON       *root = cJSON_ParseWithLength(body, len);
    const cJSON *err  = dp_jtx_get(root, "error");
    cJSON       *res;
    char        *txt = NULL;
    tg_err       rv;

    if (cJSON_IsString(err)) { /* some servers: {"error":"text"} */
        cJSON *o = cJSON_CreateObject();
        if (o != NULL) {
            cJSON_AddStringToObject(o, "message", err->valuestring);
        }
        res = dp_anth_anth_error_obj(&tx, o, &status);
        cJSON_Delete(o);
    } else {
        res = dp_anth_anth_error_obj(&tx, cJSON_IsObject(err) ? err : NULL,
                                     &status);
    }
    cJSON_Delete(root);
    if (res == NULL || (rv = dp_jtx_print(&tx, res, &txt, NULL)) != TG_OK) {
        return TG_ENOMEM;
    }
    rv = tg_buf_append(out, txt, strlen(txt));
    free(txt);
    if (rv == TG_OK && out_status != NULL) {
        *out_status = status;
    }
    return rv;
}

/* ---- OpenAI response -> Anthropic response ------------------------------ */

static void
dp_anth_usage_anth_json(dp_jtx *tx, cJSON *parent, const dp_anth_usage *u)
{
    cJSON *o = dp_jtx_obj(tx, parent, "usage");

    dp_jtx_num(tx, o, "input_tokens", (double)u->input_tokens);
    dp_jtx_num(tx, o, "cache_creation_input_tokens",
               (double)u->cache_write_tokens);
    dp_jtx_num(tx, o, "cache_read_input_tokens", (double)u->cache_read_tokens);
    dp_jtx_num(tx, o, "output_tokens", (double)u->output_tokens);
}

/* dp_anth_parse_args parses tool call arguments into an object ("" is {}).
 * NULL if they are not a JSON object. */
static cJSON *
dp_anth_parse_args(const char *args)
{
    const char *p = args != NULL ? args : "";
    cJSON      *v;

    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '\0') {
        return cJSON_CreateObject();
    }
    v = cJSON_Parse(p);
    if (v != NULL && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v;
}

tg_err
dp_anth_resp_from_openai(const char *body, size_t len,
                         const dp_anth_resp_meta *meta, char **out,
                         size_t *outlen, dp_anth_usage *usage)
{
    dp_jtx        tx   = {0};
    cJSON        *in   = cJSON_ParseWithLength(body, len);
    cJSON        *root = NULL;
    cJSON        *content;
    const cJSON  *choice;
    const cJSON  *message;
    const cJSON  *v;
    const cJSON  *c;
    bool          had_tools = false;
    dp_anth_usage u         = {0};
    tg_err        rv        = TG_EPROTO;

    choice  = cJSON_GetArrayItem(dp_jtx_get(in, "choices"), 0);
    message = dp_jtx_get(choice, "message");
    if (!cJSON_IsObject(message)) {
        goto out;
    }
    if ((root = cJSON_CreateObject()) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    dp_jtx_str(&tx, root, "id", meta->id);
    dp_jtx_str(&tx, root, "type", "message");
    dp_jtx_str(&tx, root, "role", "assistant");
    dp_jtx_str(&tx, root, "model", meta->model);
    content = dp_jtx_arr(&tx, root, "content");
    v       = dp_jtx_get(message, "content");
    if (cJSON_IsString(v)) {
        dp_anth_text_block(&tx, content, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        const cJSON *p;
        cJSON_ArrayForEach(p, v)
        {
            if (dp_jtx_gets(p, "text") != NULL) {
                dp_anth_text_block(&tx, content, dp_jtx_gets(p, "text"));
            }
        }
    }
    if (dp_jtx_gets(message, "refusal") != NULL) {
        dp_anth_text_block(&tx, content, dp_jtx_gets(message, "refusal"));
    }
    cJSON_ArrayForEach(c, dp_jtx_get(message, "tool_calls"))
    {
        const cJSON *fn    = dp_jtx_get(c, "function");
        cJSON       *input = dp_anth_parse_args(dp_jtx_gets(fn, "arguments"));
        cJSON       *b;
        if (input == NULL) {
            rv = TG_EPROTO;
            goto out;
        }
        b = dp_jtx_obj(&tx, content, NULL);
        dp_jtx_str(&tx, b, "type", "tool_use");
        dp_jtx_str(&tx, b, "id",
                   dp_jtx_gets(c, "id") ? dp_jtx_gets(c, "id") : "");
        dp_jtx_str(&tx, b, "name",
                   dp_jtx_gets(fn, "name") ? dp_jtx_gets(fn, "name") : "");
        dp_jtx_add(&tx, b, "input", input);
        had_tools = true;
    }
    dp_jtx_str(
        &tx, root, "stop_reason",
        dp_anth_stop_reason(dp_jtx_gets(choice, "finish_reason"), had_tools));
    dp_jtx_add(&tx, root, "stop_sequence", cJSON_CreateNull());
    dp_anth_usage_read_openai(dp_jtx_get(in, "usage"), &u);
    dp_anth_usage_anth_json(&tx, root, &u);
    if (usage != NULL) {
        *usage = u;
    }
    rv   = dp_jtx_print(&tx, root, out, outlen);
    root = NULL;
out:
    cJSON_Delete(root);
    cJSON_Delete(in);
    return rv;
}

/* ---- OpenAI stream -> Anthropic events ---------------------------------- */

struct dp_anth_rstream {
    dp_jtx_head h; /* created unused: Anthropic events carry none */
    int64_t     input_hint;
    bool        started;
    bool        ended;
    bool        had_tools;
    int         next_block;   /* index of the next content block */
    int         open_block;   /* -1: none open */
    int         open_tool;    /* OpenAI tool index of the open block, or -1
                                 when it is a text block */
    char          finish[32]; /* "" until a finish_reason came */
    dp_anth_usage usage;
};

tg_err
dp_anth_rstream_create(dp_anth_rstream **out, const dp_anth_resp_meta *meta,
                       int64_t input_tokens)
{
    dp_anth_rstream *s = calloc(1, sizeof(*s));

    if (s == NULL || dp_jtx_head_init(&s->h, meta->id, meta->model,
                                      meta->created) != TG_OK) {
        dp_anth_rstream_destroy(s);
        return TG_ENOMEM;
    }
    s->input_hint = input_tokens;
    s->open_block = -1;
    s->open_tool  = -1;
    *out          = s;
    return TG_OK;
}

void
dp_anth_rstream_destroy(dp_anth_rstream *s)
{
    if (s == NULL) {
        return;
    }
    dp_jtx_head_fini(&s->h);
    free(s);
}

bool
dp_anth_rstream_ended(const dp_anth_rstream *s)
{
    return s->ended;
}

void
dp_anth_rstream_usage(const dp_anth_rstream *s, dp_anth_usage *out)
{
    *out = s->usage;
}

/* dp_anth_revent starts an Anthropic event object of the given type. */
static cJSON *
dp_anth_revent(dp_jtx *tx, const char *type)
{
    cJSON *root = cJSON_CreateObject();

    if (root == NULL) {
        tx->oom = true;
    }
    dp_jtx_str(tx, root, "type", type);
    return root;
}

static tg_err
dp_anth_rstream_start(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *root;
    cJSON *m;
    cJSON *u;
    tg_err rv;

    if (s->started) {
        return TG_OK;
    }
    root = dp_anth_revent(&tx, "message_start");
    m    = dp_jtx_obj(&tx, root, "message");
    dp_jtx_str(&tx, m, "id", s->h.id);
    dp_jtx_str(&tx, m, "type", "message");
    dp_jtx_str(&tx, m, "role", "assistant");
    dp_jtx_str(&tx, m, "model", s->h.model);
    dp_jtx_arr(&tx, m, "content");
    dp_jtx_add(&tx, m, "stop_reason", cJSON_CreateNull());
    dp_jtx_add(&tx, m, "stop_sequence", cJSON_CreateNull());
    u = dp_jtx_obj(&tx, m, "usage");
    dp_jtx_num(&tx, u, "input_tokens", (double)s->input_hint);
    dp_jtx_num(&tx, u, "output_tokens", 0);
    if ((rv = dp_jtx_emit(&tx, root, "message_start", out)) == TG_OK) {
        s->started = true;
    }
    return rv;
}

static tg_err
dp_anth_rstream_close_block(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *root;
    tg_err rv;

    if (s->open_block < 0) {
        return TG_OK;
    }
    root = dp_anth_revent(&tx, "content_block_stop");
    dp_jtx_num(&tx, root, "index", s->open_block);
    if ((rv = dp_jtx_emit(&tx, root, "content_block_stop", out)) == TG_OK) {
        s->open_block = -1;
        s->open_tool  = -1;
    }
    return rv;
}

/* dp_anth_rstream_open starts a content block: text when id is NULL, else
 * a tool_use block for OpenAI tool index tool. */
static tg_err
dp_anth_rstream_open(dp_anth_rstream *s, const char *id, const char *name,
                     int tool, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *root;
    cJSON *cb;
    tg_err rv;

    if ((rv = dp_anth_rstream_close_block(s, out)) != TG_OK) {
        return rv;
    }
    root = dp_anth_revent(&tx, "content_block_start");
    dp_jtx_num(&tx, root, "index", s->next_block);
    cb = dp_jtx_obj(&tx, root, "content_block");
    if (id == NULL) {
        dp_jtx_str(&tx, cb, "type", "text");
        dp_jtx_str(&tx, cb, "text", "");
    } else {
        dp_jtx_str(&tx, cb, "type", "tool_use");
        dp_jtx_str(&tx, cb, "id", id);
        dp_jtx_str(&tx, cb, "name", name != NULL ? name : "");
        dp_jtx_obj(&tx, cb, "input");
    }
    if ((rv = dp_jtx_emit(&tx, root, "content_block_start", out)) == TG_OK) {
        s->open_block = s->next_block++;
        s->open_tool  = id == NULL ? -1 : tool;
        s->had_tools |= id != NULL;
    }
    return rv;
}

static tg_err
dp_anth_rstream_delta(dp_anth_rstream *s, const char *dtype, const char *key,
                      const char *text, tg_buf *out)
{
    dp_jtx tx   = {0};
    cJSON *root = dp_anth_revent(&tx, "content_block_delta");
    cJSON *d;

    dp_jtx_num(&tx, root, "index", s->open_block);
    d = dp_jtx_obj(&tx, root, "delta");
    dp_jtx_str(&tx, d, "type", dtype);
    dp_jtx_str(&tx, d, key, text);
    return dp_jtx_emit(&tx, root, "content_block_delta", out);
}

static tg_err
dp_anth_rstream_text(dp_anth_rstream *s, const char *text, tg_buf *out)
{
    tg_err rv;

    if (text == NULL || text[0] == '\0') {
        return TG_OK;
    }
    if ((s->open_block < 0 || s->open_tool >= 0) &&
        (rv = dp_anth_rstream_open(s, NULL, NULL, -1, out)) != TG_OK) {
        return rv;
    }
    return dp_anth_rstream_delta(s, "text_delta", "text", text, out);
}

static tg_err
dp_anth_rstream_tools(dp_anth_rstream *s, const cJSON *calls, tg_buf *out)
{
    const cJSON *c;
    tg_err       rv;

    cJSON_ArrayForEach(c, calls)
    {
        const cJSON *idx   = dp_jtx_get(c, "index");
        const cJSON *fn    = dp_jtx_get(c, "function");
        const char  *id    = dp_jtx_gets(c, "id");
        const char  *args  = dp_jtx_gets(fn, "arguments");
        int64_t      index = 0;
        int          tool;

        (void)tg_json_whole(idx, 0, INT32_MAX, &index);
        tool = (int)index;

        if (id != NULL && id[0] != '\0' && tool != s->open_tool) {
            if ((rv = dp_anth_rstream_open(s, id, dp_jtx_gets(fn, "name"), tool,
                                           out)) != TG_OK) {
                return rv;
            }
        } else if (s->open_block < 0 || tool != s->open_tool) {
            /* Anthropic blocks cannot interleave; OpenAI sends each call
             * whole before the next, so this is a broken upstream. */
            return TG_EPROTO;
        }
        if (args != NULL && args[0] != '\0' &&
            (rv = dp_anth_rstream_delta(s, "input_json_delta", "partial_json",
                                        args, out)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

static tg_err
dp_anth_rstream_stop(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *root;
    cJSON *d;
    cJSON *u;
    tg_err rv;

    if ((rv = dp_anth_rstream_start(s, out)) != TG_OK ||
        (rv = dp_anth_rstream_close_block(s, out)) != TG_OK) {
        return rv;
    }
    root = dp_anth_revent(&tx, "message_delta");
    d    = dp_jtx_obj(&tx, root, "delta");
    dp_jtx_str(
        &tx, d, "stop_reason",
        dp_anth_stop_reason(s->finish[0] ? s->finish : NULL, s->had_tools));
    dp_jtx_add(&tx, d, "stop_sequence", cJSON_CreateNull());
    u = dp_jtx_obj(&tx, root, "usage");
    if (s->usage.found) {
        dp_jtx_num(&tx, u, "input_tokens", (double)s->usage.input_tokens);
        dp_jtx_num(&tx, u, "cache_read_input_tokens",
                   (double)s->usage.cache_read_tokens);
    }
    dp_jtx_num(&tx, u, "output_tokens", (double)s->usage.output_tokens);
    if ((rv = dp_jtx_emit(&tx, root, "message_delta", out)) != TG_OK) {
        return rv;
    }
    root = dp_anth_revent(&tx, "message_stop");
    if ((rv = dp_jtx_emit(&tx, root, "message_stop", out)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

static tg_err
dp_anth_rstream_error(dp_anth_rstream *s, const cJSON *err, tg_buf *out)
{
    dp_jtx tx     = {0};
    int    status = 0;
    cJSON *root   = dp_anth_anth_error_obj(&tx, err, &status);
    tg_err rv;

    if (root == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = dp_jtx_emit(&tx, root, "error", out)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

tg_err
dp_anth_rstream_feed(dp_anth_rstream *s, const char *data, size_t len,
                     tg_buf *out)
{
    cJSON       *ev;
    const cJSON *choice;
    const cJSON *delta;
    const char  *finish;
    tg_err       rv = TG_OK;

    if (s->ended) {
        return TG_OK;
    }
    if (len >= 6 && memcmp(data, "[DONE]", 6) == 0) {
        return dp_anth_rstream_stop(s, out);
    }
    if ((ev = cJSON_ParseWithLength(data, len)) == NULL) {
        return TG_EPROTO;
    }
    if (dp_jtx_present(dp_jtx_get(ev, "error"))) {
        const cJSON *e = dp_jtx_get(ev, "error");
        cJSON       *o = NULL;
        if (cJSON_IsString(e)) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "message", e->valuestring);
        }
        rv = dp_anth_rstream_error(s, o != NULL ? o : e, out);
        cJSON_Delete(o);
        goto out;
    }
    if ((rv = dp_anth_rstream_start(s, out)) != TG_OK) {
        goto out;
    }
    if (cJSON_IsObject(dp_jtx_get(ev, "usage"))) {
        dp_anth_usage_read_openai(dp_jtx_get(ev, "usage"), &s->usage);
    }
    choice = cJSON_GetArrayItem(dp_jtx_get(ev, "choices"), 0);
    delta  = dp_jtx_get(choice, "delta");
    if ((rv = dp_anth_rstream_text(s, dp_jtx_gets(delta, "content"), out)) !=
            TG_OK ||
        (rv = dp_anth_rstream_text(s, dp_jtx_gets(delta, "refusal"), out)) !=
            TG_OK ||
        (rv = dp_anth_rstream_tools(s, dp_jtx_get(delta, "tool_calls"), out)) !=
            TG_OK) {
        goto out;
    }
    finish = dp_jtx_gets(choice, "finish_reason");
    if (finish != NULL) {
        snprintf(s->finish, sizeof(s->finish), "%s", finish);
        rv = dp_anth_rstream_close_block(s, out);
    }
out:
    cJSON_Delete(ev);
    return rv;
}

/* dp_anth_rstream_data is dp_anth_rstream_feed for dp_sse_dispatch. */
static tg_err
dp_anth_rstream_data(void *s, const char *event, const char *data, size_t len,
                     tg_buf *out)
{
    (void)event;
    return dp_anth_rstream_feed(s, data, len, out);
}

tg_err
dp_anth_rstream_feed_sse(dp_anth_rstream *s, const char *ev, size_t len,
                         tg_buf *out)
{
    return dp_sse_dispatch(ev, len, dp_anth_rstream_data, s, out);
}

tg_err
dp_anth_rstream_finish(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *e;
    tg_err rv;

    if (s->ended) {
        return TG_OK;
    }
    if (s->finish[0] != '\0') { /* only [DONE] was lost */
        return dp_anth_rstream_stop(s, out);
    }
    e = cJSON_CreateObject();
    dp_jtx_str(&tx, e, "type", "server_error");
    dp_jtx_str(&tx, e, "message",
               "The upstream stream ended before the response was "
               "complete.");
    rv = tx.oom ? TG_ENOMEM : dp_anth_rstream_error(s, e, out);
    cJSON_Delete(e);
    s->ended = true;
    return rv;
}

/* ---- dp_anth_client_ops: around the provider's own table --------------- */

/* An answer streamed to an Anthropic client: the provider's table (wire)
 * writes OpenAI events into mid, rs turns them into Anthropic events. */
typedef struct dp_anth_client_stream {
    const dp_provider_ops *wire;
    void                  *inner; /* wire's stream state */
    dp_anth_rstream       *rs;
    tg_buf                 mid;
} dp_anth_client_stream;

/* dp_anth_client_meta: the id, model and time of the Anthropic answer. */
static dp_anth_resp_meta
dp_anth_client_meta(const dp_call *c)
{
    dp_anth_resp_meta m = {c->msg_id, c->cr->chat->model, (int64_t)time(NULL)};

    return m;
}

/* dp_anth_client_prepare: the client's request, already in OpenAI form
 * (dp_anth_req_to_openai), goes out as the provider's table writes it. */
static tg_err
dp_anth_client_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                       char *param, size_t paramlen)
{
    return c->wire->prepare(c, clamp, msg, msglen, param, paramlen);
}

static void
dp_anth_client_stream_free(void *st)
{
    dp_anth_client_stream *s = st;

    if (s == NULL) {
        return;
    }
    if (s->inner != NULL) {
        s->wire->stream_free(s->inner);
    }
    dp_anth_rstream_destroy(s->rs);
    tg_buf_fini(&s->mid);
    free(s);
}

static tg_err
dp_anth_client_stream_start(const dp_call *c, bool include_usage, void **st)
{
    dp_anth_resp_meta      m = dp_anth_client_meta(c);
    dp_anth_client_stream *s = calloc(1, sizeof(*s));
    tg_err                 rv;

    (void)include_usage; /* an Anthropic client gets it in message_delta */
    if (s == NULL) {
        return TG_ENOMEM;
    }
    s->wire = c->wire;
    tg_buf_init(&s->mid, DP_ANTH_MID_MAX);
    /* The provider's usage chunk is kept: message_delta carries it. */
    if ((rv = dp_anth_rstream_create(
             &s->rs, &m, c->cr->chat->prompt_tokens_estimate)) != TG_OK ||
        (rv = s->wire->stream_start(c, true, &s->inner)) != TG_OK) {
        dp_anth_client_stream_free(s);
        return rv;
    }
    *st = s;
    return TG_OK;
}

/* dp_anth_client_drain feeds the whole OpenAI events in s->mid to the
 * Anthropic translator (a rest without its blank line as one event). */
static tg_err
dp_anth_client_drain(dp_anth_client_stream *s, tg_buf *out)
{
    size_t i = 0;
    tg_err rv;

    while (i < s->mid.len) {
        size_t n = dp_sse_next(s->mid.data + i, s->mid.len - i);
        if (n == 0) {
            n = s->mid.len - i;
        }
        if ((rv = dp_anth_rstream_feed_sse(s->rs, s->mid.data + i, n, out)) !=
            TG_OK) {
            return rv;
        }
        i += n;
    }
    tg_buf_reset(&s->mid);
    return TG_OK;
}

/* dp_anth_client_stream_event: em is what the provider's table reports
 * for the event, so metering reads the provider's events, not ours. */
static tg_err
dp_anth_client_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                            dp_emit *em)
{
    dp_anth_client_stream *s = st;
    tg_err rv = s->wire->stream_event(s->inner, ev, len, &s->mid, em);

    return rv != TG_OK ? rv : dp_anth_client_drain(s, out);
}

static tg_err
dp_anth_client_stream_end(void *st, tg_buf *out, dp_emit *em)
{
    dp_anth_client_stream *s  = st;
    tg_err                 rv = s->wire->stream_end(s->inner, &s->mid, em);

    if (rv == TG_OK) {
        rv = dp_anth_client_drain(s, out);
    }
    if (rv == TG_OK) {
        rv = dp_anth_rstream_finish(s->rs, out);
    }
    return rv;
}

static tg_err
dp_anth_client_body(const dp_call *c, const char *body, size_t len, tg_buf *out,
                    dp_usage_counts *usage)
{
    dp_anth_resp_meta m    = dp_anth_client_meta(c);
    dp_anth_usage     au   = {0};
    char             *fin  = NULL;
    size_t            flen = 0;
    tg_buf            oai;
    tg_err            rv;

    tg_buf_init(&oai, 0);
    rv = c->wire->body(c, body, len, &oai, usage);
    if (rv == TG_OK) {
        rv = dp_anth_resp_from_openai(oai.data, oai.len, &m, &fin, &flen, &au);
    }
    tg_buf_fini(&oai);
    return dp_jtx_take(out, fin, flen, rv);
}

static tg_err
dp_anth_client_error(const dp_call *c, int status, const char *body, size_t len,
                     tg_buf *oai, int *out_status)
{
    return c->wire->error(c, status, body, len, oai, out_status);
}

/* dp_anth_client_error_body: the provider's error, in Anthropic's form. */
static tg_err
dp_anth_client_error_body(const dp_call *c, unsigned status, const char *raw,
                          size_t rawlen, const tg_buf *oai, tg_buf *out)
{
    (void)c;
    (void)raw;
    (void)rawlen;
    return dp_anth_error_from_openai((int)status, oai->data, oai->len, out,
                                     NULL);
}

const dp_provider_ops dp_anth_client_ops = {
    .name         = "anthropic-client",
    .completions  = false,
    .embeddings   = false,
    .prepare      = dp_anth_client_prepare,
    .stream_start = dp_anth_client_stream_start,
    .stream_event = dp_anth_client_stream_event,
    .stream_end   = dp_anth_client_stream_end,
    .stream_free  = dp_anth_client_stream_free,
    .body         = dp_anth_client_body,
    .error        = dp_anth_client_error,
    .error_body   = dp_anth_client_error_body,
};
