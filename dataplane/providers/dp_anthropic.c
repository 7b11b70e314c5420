#include "dp_anthropic.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dp_jtx.h"
#include "tg_json.h"

/* ---- small helpers ------------------------------------------------------ */

/* dp_anth_count reads a non-negative token count; false if absent. */
static bool
dp_anth_count(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return tg_json_whole(v, 0, DP_TOKENS_MAX, out);
}

/* dp_anth_usage_read merges the members of an Anthropic usage object that
 * are present: message_delta repeats only what changed. */
static void
dp_anth_usage_read(const cJSON *u, dp_anth_usage *out)
{
    if (!cJSON_IsObject(u)) {
        return;
    }
    out->found = true;
    dp_anth_count(u, "input_tokens", &out->input_tokens);
    dp_anth_count(u, "cache_read_input_tokens", &out->cache_read_tokens);
    dp_anth_count(u, "cache_creation_input_tokens", &out->cache_write_tokens);
    dp_anth_count(u, "output_tokens", &out->output_tokens);
}

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
    dp_anth_count(u, "prompt_tokens", &prompt);
    dp_anth_count(u, "completion_tokens", &out->output_tokens);
    dp_anth_count(dp_jtx_get(u, "prompt_tokens_details"), "cached_tokens",
                  &cached);
    if (cached > prompt) {
        cached = prompt;
    }
    out->input_tokens       = prompt - cached;
    out->cache_read_tokens  = cached;
    out->cache_write_tokens = 0;
}

void
dp_anth_usage_counts(const dp_anth_usage *u, dp_usage_counts *out)
{
    memset(out, 0, sizeof(*out));
    out->found = u->found;
    out->prompt_tokens =
        u->input_tokens + u->cache_read_tokens + u->cache_write_tokens;
    out->completion_tokens = u->output_tokens;
    out->cached_tokens     = u->cache_read_tokens;
}

static void
dp_anth_usage_openai_json(dp_jtx *tx, cJSON *parent, const dp_anth_usage *u)
{
    dp_usage_counts c;
    cJSON          *o = dp_jtx_obj(tx, parent, "usage");
    cJSON          *d;

    dp_anth_usage_counts(u, &c);
    dp_jtx_num(tx, o, "prompt_tokens", (double)c.prompt_tokens);
    dp_jtx_num(tx, o, "completion_tokens", (double)c.completion_tokens);
    dp_jtx_num(tx, o, "total_tokens",
                (double)(c.prompt_tokens + c.completion_tokens));
    d = dp_jtx_obj(tx, o, "prompt_tokens_details");
    dp_jtx_num(tx, d, "cached_tokens", (double)c.cached_tokens);
}

/* Stop reasons. Anthropic's pause_turn (a server tool paused) and unknown
 * values read as a normal stop; model_context_window_exceeded as length. */
static const char *
dp_anth_finish_reason(const char *stop)
{
    if (stop == NULL) {
        return "stop";
    }
    if (strcmp(stop, "max_tokens") == 0 ||
        strcmp(stop, "model_context_window_exceeded") == 0) {
        return "length";
    }
    if (strcmp(stop, "tool_use") == 0) {
        return "tool_calls";
    }
    if (strcmp(stop, "refusal") == 0) {
        return "content_filter";
    }
    return "stop";
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

static bool
dp_anth_icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

static bool
dp_anth_is_context_error(const char *message)
{
    return dp_anth_icontains(message, "prompt is too long") ||
           dp_anth_icontains(message, "context window") ||
           dp_anth_icontains(message, "context length");
}

/* Anthropic error type -> OpenAI type and code. */
static const struct {
    const char *anth;
    int         status;
    const char *type;
    const char *code;
} dp_anth_errmap[] = {
    {"invalid_request_error", 400, "invalid_request_error", NULL},
    {"authentication_error", 401, "authentication_error", "invalid_api_key"},
    {"billing_error", 402, "insufficient_quota", "insufficient_quota"},
    {"permission_error", 403, "permission_error", "permission_denied"},
    {"not_found_error", 404, "invalid_request_error", "not_found"},
    {"request_too_large", 413, "invalid_request_error", "request_too_large"},
    {"rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"},
    {"api_error", 500, "server_error", NULL},
    {"timeout_error", 504, "server_error", "timeout"},
    {"overloaded_error", 529, "server_error", "overloaded"},
};
#define DP_ANTH_NERR (sizeof(dp_anth_errmap) / sizeof(dp_anth_errmap[0]))

static size_t
dp_anth_err_find(const char *anth)
{
    size_t i = 0;

    while (i + 1 < DP_ANTH_NERR && strcmp(dp_anth_errmap[i].anth, anth) != 0) {
        i++;
    }
    return i;
}

/* dp_anth_err_by_status picks the type for a status when the body names
 * none we know (503 is how other proxies say "overloaded"). */
static size_t
dp_anth_err_by_status(int status)
{
    if (status == 503) {
        status = 529;
    }
    for (size_t i = 0; i < DP_ANTH_NERR; i++) {
        if (dp_anth_errmap[i].status == status) {
            return i;
        }
    }
    return dp_anth_err_find(
        status >= 400 && status < 500 ? "invalid_request_error" : "api_error");
}

static tg_err
dp_anth_openai_error_from_obj(const cJSON *err, int status, tg_buf *out,
                              int *out_status)
{
    const char *type    = dp_jtx_gets(err, "type");
    const char *message = dp_jtx_gets(err, "message");
    size_t      i       = DP_ANTH_NERR;
    const char *code;

    for (size_t k = 0; type != NULL && k < DP_ANTH_NERR; k++) {
        if (strcmp(dp_anth_errmap[k].anth, type) == 0) {
            i = k;
        }
    }
    if (i == DP_ANTH_NERR) {
        i = dp_anth_err_by_status(status);
    }
    if (status == 0) {
        status = dp_anth_errmap[i].status;
    }
    if (message == NULL) {
        message = "The upstream provider returned an error.";
    }
    code = dp_anth_errmap[i].code;
    if (strcmp(dp_anth_errmap[i].anth, "invalid_request_error") == 0 &&
        dp_anth_is_context_error(message)) {
        code = "context_length_exceeded";
    }
    if (out_status != NULL) {
        *out_status = status == 529 ? 503 : status;
    }
    return dp_openai_error(out, message, dp_anth_errmap[i].type, NULL, code);
}

tg_err
dp_anth_error_to_openai(int status, const char *body, size_t len, tg_buf *out,
                        int *out_status)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    char   text[256];
    cJSON *fake = NULL;
    tg_err rv;

    if (root != NULL && cJSON_IsObject(dp_jtx_get(root, "error"))) {
        rv = dp_anth_openai_error_from_obj(dp_jtx_get(root, "error"), status,
                                           out, out_status);
        cJSON_Delete(root);
        return rv;
    }
    cJSON_Delete(root);
    /* Not an error body (a proxy's HTML page...): say what we know. */
    snprintf(text, sizeof(text), "The upstream provider returned HTTP %d.",
             status);
    if ((fake = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(fake, "message", text) == NULL) {
        cJSON_Delete(fake);
        return TG_ENOMEM;
    }
    rv = dp_anth_openai_error_from_obj(fake, status, out, out_status);
    cJSON_Delete(fake);
    return rv;
}

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
        !dp_anth_icontains(message, "prompt is too long")) {
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
    dp_jtx   tx   = {0};
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

/* ---- A: OpenAI request -> Anthropic request ----------------------------- */

/* dp_anth_text_block appends {"type":"text","text":s} unless s is empty:
 * Anthropic rejects empty text blocks. */
static void
dp_anth_text_block(dp_jtx *tx, cJSON *blocks, const char *s)
{
    cJSON *b;

    if (s[0] == '\0') {
        return;
    }
    b = dp_jtx_obj(tx, blocks, NULL);
    dp_jtx_str(tx, b, "type", "text");
    dp_jtx_str(tx, b, "text", s);
}

static tg_err
dp_anth_image_block(dp_jtx *tx, cJSON *blocks, const cJSON *part,
                    const char *where)
{
    dp_jtx_image img;
    cJSON       *b;
    cJSON       *src;
    tg_err       rv = dp_jtx_image_url(tx, part, where, &img);

    if (rv != TG_OK) {
        return rv;
    }
    b = dp_jtx_obj(tx, blocks, NULL);
    dp_jtx_str(tx, b, "type", "image");
    src = dp_jtx_obj(tx, b, "source");
    if (img.data != NULL) {
        dp_jtx_str(tx, src, "type", "base64");
        dp_jtx_str(tx, src, "media_type", img.media);
        dp_jtx_str(tx, src, "data", img.data);
    } else {
        dp_jtx_str(tx, src, "type", "url");
        dp_jtx_str(tx, src, "url", img.url);
    }
    return TG_OK;
}

/* dp_anth_parts appends the blocks for an OpenAI content value (string,
 * array of parts, or null) to blocks. images: image_url parts allowed. */
static tg_err
dp_anth_parts(dp_jtx *tx, cJSON *blocks, const cJSON *content, bool images,
               const char *where)
{
    static const dp_jtx_part_fns fns = {dp_anth_text_block,
                                        dp_anth_image_block};

    return dp_jtx_content(tx, blocks, content, images, where, &fns);
}

/* dp_anth_append_msg adds the blocks as a message of role, merged into the
 * previous message when it has the same role (Anthropic requires user and
 * assistant to alternate). Takes blocks. */
static void
dp_anth_append_msg(dp_jtx *tx, cJSON *msgs, const char *role, cJSON *blocks)
{
    cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    cJSON *m;

    if (blocks == NULL) {
        tx->oom = true;
        return;
    }
    if (cJSON_GetArraySize(blocks) == 0) {
        cJSON_Delete(blocks);
        return;
    }
    if (last != NULL && strcmp(dp_jtx_gets(last, "role"), role) == 0) {
        cJSON *dst = cJSON_GetObjectItemCaseSensitive(last, "content");
        cJSON *b;
        while ((b = cJSON_DetachItemFromArray(blocks, 0)) != NULL) {
            dp_jtx_add(tx, dst, NULL, b);
        }
        cJSON_Delete(blocks);
        return;
    }
    m = dp_jtx_obj(tx, msgs, NULL);
    dp_jtx_str(tx, m, "role", role);
    dp_jtx_add(tx, m, "content", blocks);
}

static tg_err
dp_anth_tool_uses(dp_jtx *tx, cJSON *blocks, const cJSON *calls, size_t i)
{
    const cJSON *c;
    size_t       j = 0;
    char         pw[96];

    if (!dp_jtx_present(calls)) {
        return TG_OK;
    }
    if (!cJSON_IsArray(calls)) {
        snprintf(pw, sizeof(pw), "messages[%zu].tool_calls", i);
        return dp_jtx_fail(tx, pw, "%s must be an array.", pw);
    }
    cJSON_ArrayForEach(c, calls)
    {
        const cJSON *fn   = dp_jtx_get(c, "function");
        const char  *id   = dp_jtx_gets(c, "id");
        const char  *name = dp_jtx_gets(fn, "name");
        const char  *args = dp_jtx_gets(fn, "arguments");
        cJSON       *input;
        cJSON       *b;
        const char  *p;

        snprintf(pw, sizeof(pw), "messages[%zu].tool_calls[%zu]", i, j++);
        if (id == NULL || name == NULL) {
            return dp_jtx_fail(tx, pw,
                                "%s needs a string 'id' and "
                                "'function.name'.",
                                pw);
        }
        for (p = args != NULL ? args : ""; isspace((unsigned char)*p); p++) {
        }
        input = *p == '\0' ? cJSON_CreateObject() : cJSON_Parse(p);
        if (input == NULL || !cJSON_IsObject(input)) {
            cJSON_Delete(input);
            snprintf(pw, sizeof(pw),
                     "messages[%zu].tool_calls[%zu].function.arguments", i,
                     j - 1);
            return dp_jtx_fail(tx, pw, "%s must be a JSON object.", pw);
        }
        b = dp_jtx_obj(tx, blocks, NULL);
        dp_jtx_str(tx, b, "type", "tool_use");
        dp_jtx_str(tx, b, "id", id);
        dp_jtx_str(tx, b, "name", name);
        dp_jtx_add(tx, b, "input", input);
    }
    return TG_OK;
}

static tg_err
dp_anth_tool_result(dp_jtx *tx, cJSON *blocks, const cJSON *m, size_t i)
{
    const char  *id      = dp_jtx_gets(m, "tool_call_id");
    const cJSON *content = dp_jtx_get(m, "content");
    char         pw[96];
    cJSON       *b;
    tg_err       rv;

    if (id == NULL) {
        snprintf(pw, sizeof(pw), "messages[%zu].tool_call_id", i);
        return dp_jtx_fail(tx, pw, "%s must be a string.", pw);
    }
    b = dp_jtx_obj(tx, blocks, NULL);
    dp_jtx_str(tx, b, "type", "tool_result");
    dp_jtx_str(tx, b, "tool_use_id", id);
    if (cJSON_IsString(content)) {
        dp_jtx_str(tx, b, "content", content->valuestring);
    } else if (dp_jtx_present(content)) {
        snprintf(pw, sizeof(pw), "messages[%zu].content", i);
        if ((rv = dp_anth_parts(tx, dp_jtx_arr(tx, b, "content"), content,
                                false, pw)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

static tg_err
dp_anth_messages(dp_jtx *tx, cJSON *root, const cJSON *messages)
{
    cJSON       *sys  = cJSON_CreateArray();
    cJSON       *msgs = dp_jtx_arr(tx, root, "messages");
    const cJSON *m;
    size_t       i = 0;
    char         pw[96];
    tg_err       rv = TG_OK;

    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        rv = dp_jtx_fail(tx, "messages",
                          "'messages' must be a non-empty array.");
        goto out;
    }
    cJSON_ArrayForEach(m, messages)
    {
        const char *role = dp_jtx_gets(m, "role");
        cJSON      *blocks;

        snprintf(pw, sizeof(pw), "messages[%zu].content", i);
        if (role == NULL) {
            snprintf(pw, sizeof(pw), "messages[%zu].role", i);
            rv = dp_jtx_fail(tx, pw, "%s must be a string.", pw);
            goto out;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rv = dp_anth_parts(tx, sys, dp_jtx_get(m, "content"), false, pw);
        } else if (strcmp(role, "user") == 0) {
            blocks = cJSON_CreateArray();
            rv = dp_anth_parts(tx, blocks, dp_jtx_get(m, "content"), true, pw);
            dp_anth_append_msg(tx, msgs, "user", blocks);
        } else if (strcmp(role, "assistant") == 0) {
            blocks = cJSON_CreateArray();
            rv =
                dp_anth_parts(tx, blocks, dp_jtx_get(m, "content"), false, pw);
            if (rv == TG_OK) {
                rv = dp_anth_tool_uses(tx, blocks, dp_jtx_get(m, "tool_calls"),
                                       i);
            }
            dp_anth_append_msg(tx, msgs, "assistant", blocks);
        } else if (strcmp(role, "tool") == 0) {
            blocks = cJSON_CreateArray();
            rv     = dp_anth_tool_result(tx, blocks, m, i);
            dp_anth_append_msg(tx, msgs, "user", blocks);
        } else {
            snprintf(pw, sizeof(pw), "messages[%zu].role", i);
            rv = dp_jtx_fail(tx, pw,
                              "%s: role '%s' is not supported by this model.",
                              pw, role);
        }
        if (rv != TG_OK) {
            goto out;
        }
        i++;
    }
    if (cJSON_GetArraySize(sys) == 1) {
        dp_jtx_str(tx, root, "system",
                    dp_jtx_gets(cJSON_GetArrayItem(sys, 0), "text"));
    } else if (cJSON_GetArraySize(sys) > 1) {
        dp_jtx_add(tx, root, "system", sys);
        sys = NULL;
    }
out:
    cJSON_Delete(sys);
    return rv;
}

static tg_err
dp_anth_tools(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    const cJSON *tools  = dp_jtx_get(req, "tools");
    const cJSON *choice = dp_jtx_get(req, "tool_choice");
    const cJSON *par    = dp_jtx_get(req, "parallel_tool_calls");
    const cJSON *t;
    cJSON       *out;
    cJSON       *tc = NULL;
    size_t       i  = 0;
    char         pw[64];

    if (!dp_jtx_present(tools) ||
        (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) == 0)) {
        return TG_OK; /* tool_choice without tools means nothing */
    }
    if (!cJSON_IsArray(tools)) {
        return dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    out = dp_jtx_arr(tx, root, "tools");
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn     = dp_jtx_get(t, "function");
        const char  *type   = dp_jtx_gets(t, "type");
        const char  *name   = dp_jtx_gets(fn, "name");
        const char  *desc   = dp_jtx_gets(fn, "description");
        const cJSON *params = dp_jtx_get(fn, "parameters");
        cJSON       *o;

        snprintf(pw, sizeof(pw), "tools[%zu]", i++);
        if (type == NULL || strcmp(type, "function") != 0 || name == NULL) {
            return dp_jtx_fail(tx, pw,
                                "%s: only tools of type 'function' with a "
                                "function.name can be sent to this model.",
                                pw);
        }
        o = dp_jtx_obj(tx, out, NULL);
        dp_jtx_str(tx, o, "name", name);
        if (desc != NULL) {
            dp_jtx_str(tx, o, "description", desc);
        }
        if (cJSON_IsObject(params)) {
            dp_jtx_dup(tx, o, "input_schema", params);
        } else {
            cJSON *s = dp_jtx_obj(tx, o, "input_schema");
            dp_jtx_str(tx, s, "type", "object");
            dp_jtx_obj(tx, s, "properties");
        }
    }
    if (cJSON_IsString(choice)) {
        const char *c    = choice->valuestring;
        const char *type = strcmp(c, "auto") == 0       ? "auto"
                           : strcmp(c, "required") == 0 ? "any"
                           : strcmp(c, "none") == 0     ? "none"
                                                        : NULL;
        if (type == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                                "'tool_choice' must be 'auto', 'required', "
                                "'none' or a function.");
        }
        tc = dp_jtx_obj(tx, root, "tool_choice");
        dp_jtx_str(tx, tc, "type", type);
    } else if (cJSON_IsObject(choice)) {
        const char *name =
            dp_jtx_gets(dp_jtx_get(choice, "function"), "name");
        if (name == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                                "'tool_choice' must name a function.");
        }
        tc = dp_jtx_obj(tx, root, "tool_choice");
        dp_jtx_str(tx, tc, "type", "tool");
        dp_jtx_str(tx, tc, "name", name);
    } else if (dp_jtx_present(choice)) {
        return dp_jtx_fail(tx, "tool_choice",
                            "'tool_choice' must be a string or an object.");
    }
    if (cJSON_IsFalse(par)) {
        if (tc == NULL) {
            tc = dp_jtx_obj(tx, root, "tool_choice");
            dp_jtx_str(tx, tc, "type", "auto");
        }
        if (strcmp(dp_jtx_gets(tc, "type") ? dp_jtx_gets(tc, "type") : "",
                   "none") != 0) {
            dp_jtx_add(tx, tc, "disable_parallel_tool_use",
                        cJSON_CreateTrue());
        }
    }
    return TG_OK;
}

/* dp_anth_unsupported rejects the OpenAI fields that would change the
 * answer in a way Anthropic cannot honour. */
static tg_err
dp_anth_unsupported(dp_jtx *tx, const cJSON *req)
{
    const cJSON *v;
    tg_err       rv = dp_jtx_openai_unsupported(tx, req);

    if (rv != TG_OK) {
        return rv;
    }
    v = dp_jtx_get(req, "response_format");
    if (dp_jtx_present(v) && !(dp_jtx_gets(v, "type") != NULL &&
                               strcmp(dp_jtx_gets(v, "type"), "text") == 0)) {
        return dp_jtx_fail(tx, "response_format",
                           "'response_format' other than 'text' "
                           "(json_object, json_schema) is not supported by "
                           "this model.");
    }
    return TG_OK;
}

/* dp_anth_sampling copies temperature and top_p, which mean the same in
 * both APIs (Anthropic's temperature range is 0..1; it says so itself). */
static tg_err
dp_anth_sampling(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    static const char *const keys[] = {"temperature", "top_p"};

    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = dp_jtx_get(req, keys[i]);
        if (!dp_jtx_present(v)) {
            continue;
        }
        if (!cJSON_IsNumber(v)) {
            return dp_jtx_fail(tx, keys[i], "'%s' must be a number.", keys[i]);
        }
        dp_jtx_dup(tx, root, keys[i], v);
    }
    return TG_OK;
}

tg_err
dp_anth_req_from_openai(const cJSON *req, const dp_anth_req_opts *opts,
                        char **out, size_t *len, char *msg, size_t msglen,
                        char *param, size_t paramlen)
{
    dp_jtx   tx   = {false, msg, msglen, param, paramlen};
    cJSON       *root = cJSON_CreateObject();
    const char  *model;
    const cJSON *v;
    int64_t      max_tokens = 0;
    tg_err       rv;

    if (msglen > 0) {
        msg[0] = '\0';
    }
    if (paramlen > 0) {
        param[0] = '\0';
    }
    if (root == NULL) {
        return TG_ENOMEM;
    }
    if (!cJSON_IsObject(req)) {
        rv = dp_jtx_fail(&tx, "", "The request body must be a JSON object.");
        goto fail;
    }
    model = opts->model != NULL ? opts->model : dp_jtx_gets(req, "model");
    if (model == NULL) {
        rv = dp_jtx_fail(&tx, "model",
                          "Missing required parameter: "
                          "'model'.");
        goto fail;
    }
    if ((rv = dp_anth_unsupported(&tx, req)) != TG_OK ||
        (rv = dp_jtx_max_tokens(&tx, req, "max_tokens", &max_tokens)) !=
            TG_OK ||
        (rv = dp_jtx_max_tokens(&tx, req, "max_completion_tokens",
                                 &max_tokens)) != TG_OK) {
        goto fail;
    }
    if (max_tokens == 0) {
        max_tokens = opts->max_tokens_default;
    }
    if (opts->max_tokens_clamp > 0 && max_tokens > opts->max_tokens_clamp) {
        max_tokens = opts->max_tokens_clamp;
    }
    if (max_tokens <= 0) {
        rv = dp_jtx_fail(&tx, "max_tokens",
                          "'max_tokens' is required by this model.");
        goto fail;
    }
    dp_jtx_str(&tx, root, "model", model);
    dp_jtx_num(&tx, root, "max_tokens", (double)max_tokens);
    if ((rv = dp_anth_messages(&tx, root, dp_jtx_get(req, "messages"))) !=
            TG_OK ||
        (rv = dp_anth_tools(&tx, root, req)) != TG_OK ||
        (rv = dp_anth_sampling(&tx, root, req)) != TG_OK) {
        goto fail;
    }
    v = dp_jtx_get(req, "stop");
    if (cJSON_IsString(v)) {
        dp_jtx_str(&tx, dp_jtx_arr(&tx, root, "stop_sequences"), NULL,
                    v->valuestring);
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsString(e)) {
                rv = dp_jtx_fail(&tx, "stop",
                                  "'stop' must be a string or an array of "
                                  "strings.");
                goto fail;
            }
        }
        dp_jtx_dup(&tx, root, "stop_sequences", v);
    } else if (dp_jtx_present(v) && !cJSON_IsArray(v)) {
        rv = dp_jtx_fail(&tx, "stop",
                          "'stop' must be a string or an array of strings.");
        goto fail;
    }
    v = dp_jtx_get(req, "user");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        dp_jtx_str(&tx, dp_jtx_obj(&tx, root, "metadata"), "user_id",
                    v->valuestring);
    }
    if (cJSON_IsTrue(dp_jtx_get(req, "stream"))) {
        dp_jtx_add(&tx, root, "stream", cJSON_CreateTrue());
    }
    return dp_jtx_print(&tx, root, out, len);
fail:
    cJSON_Delete(root);
    return rv;
}

/* ---- B: Anthropic response -> OpenAI response --------------------------- */

tg_err
dp_anth_resp_to_openai(const char *body, size_t len,
                       const dp_anth_resp_meta *meta, char **out,
                       size_t *outlen, dp_anth_usage *usage)
{
    dp_jtx    tx   = {0};
    cJSON        *in   = cJSON_ParseWithLength(body, len);
    cJSON        *root = NULL;
    const cJSON  *content;
    const cJSON  *b;
    cJSON        *choice;
    cJSON        *message;
    cJSON        *calls = NULL;
    tg_buf        text;
    bool          has_text = false;
    dp_anth_usage u        = {0};
    tg_err        rv       = TG_EPROTO;

    tg_buf_init(&text, 0);
    content = dp_jtx_get(in, "content");
    if (!cJSON_IsArray(content)) {
        goto out;
    }
    if ((root = cJSON_CreateObject()) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    cJSON_ArrayForEach(b, content)
    {
        const char *type = dp_jtx_gets(b, "type");
        if (type != NULL && strcmp(type, "text") == 0 &&
            dp_jtx_gets(b, "text") != NULL) {
            const char *t = dp_jtx_gets(b, "text");
            has_text      = true;
            if (tg_buf_append(&text, t, strlen(t)) != TG_OK) {
                rv = TG_ENOMEM;
                goto out;
            }
        } else if (type != NULL && strcmp(type, "tool_use") == 0) {
            const cJSON *input = dp_jtx_get(b, "input");
            char  *args = input != NULL ? cJSON_PrintUnformatted(input) : NULL;
            cJSON *c;
            cJSON *fn;

            if (calls == NULL) {
                calls = cJSON_CreateArray();
            }
            c = dp_jtx_obj(&tx, calls, NULL);
            dp_jtx_str(&tx, c, "id",
                        dp_jtx_gets(b, "id") != NULL ? dp_jtx_gets(b, "id")
                                                      : "");
            dp_jtx_str(&tx, c, "type", "function");
            fn = dp_jtx_obj(&tx, c, "function");
            dp_jtx_str(
                &tx, fn, "name",
                dp_jtx_gets(b, "name") != NULL ? dp_jtx_gets(b, "name") : "");
            dp_jtx_str(&tx, fn, "arguments", args != NULL ? args : "{}");
            cJSON_free(args);
        }
        /* thinking and server-tool blocks have no OpenAI form. */
    }
    dp_anth_usage_read(dp_jtx_get(in, "usage"), &u);
    dp_jtx_str(&tx, root, "id", meta->id);
    dp_jtx_str(&tx, root, "object", "chat.completion");
    dp_jtx_num(&tx, root, "created", (double)meta->created);
    dp_jtx_str(&tx, root, "model", meta->model);
    choice = dp_jtx_obj(&tx, dp_jtx_arr(&tx, root, "choices"), NULL);
    dp_jtx_num(&tx, choice, "index", 0);
    message = dp_jtx_obj(&tx, choice, "message");
    dp_jtx_str(&tx, message, "role", "assistant");
    if (has_text || calls == NULL) {
        dp_jtx_str(&tx, message, "content", text.data ? text.data : "");
    } else {
        dp_jtx_add(&tx, message, "content", cJSON_CreateNull());
    }
    dp_jtx_add(&tx, message, "refusal", cJSON_CreateNull());
    if (calls != NULL) {
        dp_jtx_add(&tx, message, "tool_calls", calls);
        calls = NULL;
    }
    dp_jtx_add(&tx, choice, "logprobs", cJSON_CreateNull());
    dp_jtx_str(&tx, choice, "finish_reason",
                dp_anth_finish_reason(dp_jtx_gets(in, "stop_reason")));
    dp_anth_usage_openai_json(&tx, root, &u);
    if (usage != NULL) {
        *usage = u;
    }
    rv   = dp_jtx_print(&tx, root, out, outlen);
    root = NULL;
out:
    cJSON_Delete(calls);
    cJSON_Delete(root);
    cJSON_Delete(in);
    tg_buf_fini(&text);
    return rv;
}

/* ---- raw SSE events ----------------------------------------------------- */

/* dp_anth_sse_fields finds the event name and the data of one whole SSE
 * event. Several data lines are joined with "\n" into scratch. Borrowed
 * results point into ev or scratch. */
static tg_err
dp_anth_sse_fields(const char *ev, size_t len, char *name, size_t namelen,
                   tg_buf *scratch, const char **data, size_t *dlen)
{
    const char *p     = ev;
    const char *end   = ev + len;
    int         ndata = 0;
    tg_err      rv;

    name[0] = '\0';
    *data   = NULL;
    *dlen   = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le  = eol != NULL ? eol : end;
        const char *v;
        size_t      n;

        if (le > p && le[-1] == '\r') {
            le--;
        }
        if ((size_t)(le - p) >= 5 && memcmp(p, "data:", 5) == 0) {
            v = p + 5;
            v += v < le && *v == ' ';
            n = (size_t)(le - v);
            if (ndata == 0) {
                *data = v;
                *dlen = n;
            } else {
                if (ndata == 1 &&
                    (rv = tg_buf_append(scratch, *data, *dlen)) != TG_OK) {
                    return rv;
                }
                if ((rv = tg_buf_append(scratch, "\n", 1)) != TG_OK ||
                    (rv = tg_buf_append(scratch, v, n)) != TG_OK) {
                    return rv;
                }
                *data = scratch->data;
                *dlen = scratch->len;
            }
            ndata++;
        } else if ((size_t)(le - p) >= 6 && memcmp(p, "event:", 6) == 0) {
            v = p + 6;
            v += v < le && *v == ' ';
            n = (size_t)(le - v);
            if (n >= namelen) {
                n = namelen - 1;
            }
            memcpy(name, v, n);
            name[n] = '\0';
        }
        p = eol != NULL ? eol + 1 : end;
    }
    return TG_OK;
}

/* ---- C: Anthropic stream -> OpenAI chunks ------------------------------- */

struct dp_anth_stream {
    dp_jtx_head   h;
    bool          include_usage;
    bool          ended;
    bool          finish_sent;
    int           ntools;  /* tool_use blocks so far */
    int          *tool_of; /* content block index -> tool index, or -1 */
    size_t        ntool_of;
    dp_anth_usage usage;
};

tg_err
dp_anth_stream_create(dp_anth_stream **out, const dp_anth_resp_meta *meta,
                      bool include_usage)
{
    dp_anth_stream *s = calloc(1, sizeof(*s));

    if (s == NULL || dp_jtx_head_init(&s->h, meta->id, meta->model,
                                      meta->created) != TG_OK) {
        dp_anth_stream_destroy(s);
        return TG_ENOMEM;
    }
    s->include_usage = include_usage;
    *out             = s;
    return TG_OK;
}

void
dp_anth_stream_destroy(dp_anth_stream *s)
{
    if (s == NULL) {
        return;
    }
    dp_jtx_head_fini(&s->h);
    free(s->tool_of);
    free(s);
}

bool
dp_anth_stream_ended(const dp_anth_stream *s)
{
    return s->ended;
}

void
dp_anth_stream_usage(const dp_anth_stream *s, dp_anth_usage *out)
{
    *out = s->usage;
}

static tg_err
dp_anth_stream_tool_map(dp_anth_stream *s, size_t block, int tool)
{
    if (block >= s->ntool_of) {
        size_t n = block + 8;
        int   *t = realloc(s->tool_of, n * sizeof(*t));
        if (t == NULL) {
            return TG_ENOMEM;
        }
        for (size_t i = s->ntool_of; i < n; i++) {
            t[i] = -1;
        }
        s->tool_of  = t;
        s->ntool_of = n;
    }
    s->tool_of[block] = tool;
    return TG_OK;
}

static int
dp_anth_stream_tool_of(const dp_anth_stream *s, const cJSON *ev)
{
    const cJSON *idx = dp_jtx_get(ev, "index");

    if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 ||
        idx->valuedouble >= (double)s->ntool_of) {
        return -1;
    }
    return s->tool_of[(size_t)idx->valuedouble];
}

static tg_err
dp_anth_stream_finish_chunk(dp_anth_stream *s, const char *stop, tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON     *choice = NULL;
    cJSON     *delta  = NULL;
    cJSON     *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
    tg_err     rv =
        dp_jtx_chunk_emit(&tx, root, choice, dp_anth_finish_reason(stop), out);

    if (rv == TG_OK) {
        s->finish_sent = true;
    }
    return rv;
}

static tg_err
dp_anth_stream_stop(dp_anth_stream *s, tg_buf *out)
{
    tg_err rv;

    if (!s->finish_sent &&
        (rv = dp_anth_stream_finish_chunk(s, NULL, out)) != TG_OK) {
        return rv;
    }
    if (s->include_usage) {
        dp_jtx tx   = {0};
        cJSON     *root = dp_jtx_head_chunk(&tx, &s->h, false, NULL, NULL);
        dp_anth_usage_openai_json(&tx, root, &s->usage);
        if ((rv = dp_jtx_emit(&tx, root, "data: ", out)) != TG_OK) {
            return rv;
        }
    }
    if ((rv = tg_buf_append(out, "data: [DONE]\n\n", 14)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

static tg_err
dp_anth_stream_error(dp_anth_stream *s, const cJSON *err, tg_buf *out)
{
    size_t before = out->len;
    tg_err rv;

    if ((rv = tg_buf_append(out, "data: ", 6)) != TG_OK ||
        (rv = dp_anth_openai_error_from_obj(err, 0, out, NULL)) != TG_OK ||
        (rv = tg_buf_append(out, "\n\n", 2)) != TG_OK) {
        out->len = before;
        if (out->data != NULL) {
            out->data[before] = '\0';
        }
        return rv;
    }
    s->ended = true;
    return TG_OK;
}

static tg_err
dp_anth_stream_block_start(dp_anth_stream *s, const cJSON *ev, tg_buf *out)
{
    const cJSON *cb     = dp_jtx_get(ev, "content_block");
    const cJSON *idx    = dp_jtx_get(ev, "index");
    const char  *type   = dp_jtx_gets(cb, "type");
    dp_jtx   tx     = {0};
    cJSON       *choice = NULL;
    cJSON       *delta  = NULL;
    cJSON       *root;
    cJSON       *tc;
    cJSON       *fn;
    tg_err       rv;

    if (type != NULL && strcmp(type, "text") == 0) {
        const char *t = dp_jtx_gets(cb, "text");
        if (t == NULL || t[0] == '\0') {
            return TG_OK;
        }
        root = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
        dp_jtx_str(&tx, delta, "content", t);
        return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
    }
    if (type == NULL || strcmp(type, "tool_use") != 0) {
        return TG_OK; /* thinking and server tools: nothing to say */
    }
    if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 ||
        idx->valuedouble > 100000) {
        return TG_EPROTO;
    }
    if ((rv = dp_anth_stream_tool_map(s, (size_t)idx->valuedouble,
                                      s->ntools)) != TG_OK) {
        return rv;
    }
    root = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
    tc   = dp_jtx_obj(&tx, dp_jtx_arr(&tx, delta, "tool_calls"), NULL);
    dp_jtx_num(&tx, tc, "index", s->ntools++);
    dp_jtx_str(&tx, tc, "id",
                dp_jtx_gets(cb, "id") ? dp_jtx_gets(cb, "id") : "");
    dp_jtx_str(&tx, tc, "type", "function");
    fn = dp_jtx_obj(&tx, tc, "function");
    dp_jtx_str(&tx, fn, "name",
                dp_jtx_gets(cb, "name") ? dp_jtx_gets(cb, "name") : "");
    dp_jtx_str(&tx, fn, "arguments", "");
    return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
}

static tg_err
dp_anth_stream_block_delta(dp_anth_stream *s, const cJSON *ev, tg_buf *out)
{
    const cJSON *d      = dp_jtx_get(ev, "delta");
    const char  *type   = dp_jtx_gets(d, "type");
    dp_jtx   tx     = {0};
    cJSON       *choice = NULL;
    cJSON       *delta  = NULL;
    cJSON       *root;

    if (type != NULL && strcmp(type, "text_delta") == 0) {
        const char *t = dp_jtx_gets(d, "text");
        if (t == NULL || t[0] == '\0') {
            return TG_OK;
        }
        root = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
        dp_jtx_str(&tx, delta, "content", t);
        return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
    }
    if (type != NULL && strcmp(type, "input_json_delta") == 0) {
        const char *pj   = dp_jtx_gets(d, "partial_json");
        int         tool = dp_anth_stream_tool_of(s, ev);
        cJSON      *tc;
        if (tool < 0) {
            return TG_EPROTO;
        }
        if (pj == NULL || pj[0] == '\0') {
            return TG_OK;
        }
        root = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
        tc   = dp_jtx_obj(&tx, dp_jtx_arr(&tx, delta, "tool_calls"), NULL);
        dp_jtx_num(&tx, tc, "index", tool);
        dp_jtx_str(&tx, dp_jtx_obj(&tx, tc, "function"), "arguments", pj);
        return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
    }
    return TG_OK; /* thinking_delta, signature_delta, citations_delta */
}

tg_err
dp_anth_stream_feed(dp_anth_stream *s, const char *event, const char *data,
                    size_t len, tg_buf *out)
{
    cJSON      *ev;
    const char *type;
    tg_err      rv = TG_OK;

    if (s->ended) {
        return TG_OK;
    }
    if (event != NULL && strcmp(event, "ping") == 0) {
        return TG_OK;
    }
    if ((ev = cJSON_ParseWithLength(data, len)) == NULL) {
        return TG_EPROTO;
    }
    type = event != NULL && event[0] != '\0' ? event : dp_jtx_gets(ev, "type");
    if (type == NULL) {
        rv = TG_EPROTO;
    } else if (strcmp(type, "message_start") == 0) {
        dp_jtx tx     = {0};
        cJSON     *choice = NULL;
        cJSON     *delta  = NULL;
        cJSON     *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
        dp_anth_usage_read(dp_jtx_get(dp_jtx_get(ev, "message"), "usage"),
                           &s->usage);
        dp_jtx_str(&tx, delta, "role", "assistant");
        dp_jtx_str(&tx, delta, "content", "");
        rv = dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
    } else if (strcmp(type, "content_block_start") == 0) {
        rv = dp_anth_stream_block_start(s, ev, out);
    } else if (strcmp(type, "content_block_delta") == 0) {
        rv = dp_anth_stream_block_delta(s, ev, out);
    } else if (strcmp(type, "message_delta") == 0) {
        const char *stop =
            dp_jtx_gets(dp_jtx_get(ev, "delta"), "stop_reason");
        dp_anth_usage_read(dp_jtx_get(ev, "usage"), &s->usage);
        if (stop != NULL && !s->finish_sent) {
            rv = dp_anth_stream_finish_chunk(s, stop, out);
        }
    } else if (strcmp(type, "message_stop") == 0) {
        rv = dp_anth_stream_stop(s, out);
    } else if (strcmp(type, "error") == 0) {
        rv = dp_anth_stream_error(s, dp_jtx_get(ev, "error"), out);
    }
    cJSON_Delete(ev);
    return rv;
}

tg_err
dp_anth_stream_feed_sse(dp_anth_stream *s, const char *ev, size_t len,
                        tg_buf *out)
{
    char        name[64];
    const char *data;
    size_t      dlen;
    tg_buf      scratch;
    tg_err      rv;

    tg_buf_init(&scratch, 0);
    rv =
        dp_anth_sse_fields(ev, len, name, sizeof(name), &scratch, &data, &dlen);
    if (rv == TG_OK && data != NULL) {
        rv = dp_anth_stream_feed(s, name, data, dlen, out);
    }
    tg_buf_fini(&scratch);
    return rv;
}

tg_err
dp_anth_stream_finish(dp_anth_stream *s, tg_buf *out)
{
    size_t before = out->len;
    tg_err rv;

    if (s->ended) {
        return TG_OK;
    }
    if (s->finish_sent) { /* only message_stop was lost */
        return dp_anth_stream_stop(s, out);
    }
    if ((rv = tg_buf_append(out, "data: ", 6)) != TG_OK ||
        (rv = dp_openai_error(out,
                              "The upstream stream ended before the "
                              "response was complete.",
                              "server_error", NULL,
                              "upstream_stream_incomplete")) != TG_OK ||
        (rv = tg_buf_append(out, "\n\n", 2)) != TG_OK) {
        out->len = before;
        if (out->data != NULL) {
            out->data[before] = '\0';
        }
        return rv;
    }
    s->ended = true;
    return TG_OK;
}

/* ---- D: Anthropic request -> OpenAI request ----------------------------- */

/* dp_anth_join_text appends the text of a string or of the text blocks of
 * an array to b, blocks separated by "\n". Other blocks are an error. */
static tg_err
dp_anth_join_text(dp_jtx *tx, tg_buf *b, const cJSON *content,
                  const char *where)
{
    const cJSON *blk;
    size_t       j = 0;
    char         pw[96];

    if (cJSON_IsString(content)) {
        return tg_buf_append(b, content->valuestring,
                             strlen(content->valuestring));
    }
    if (!cJSON_IsArray(content)) {
        return dp_jtx_present(content)
                   ? dp_jtx_fail(tx, where,
                                  "%s must be a string or an array of "
                                  "blocks.",
                                  where)
                   : TG_OK;
    }
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = dp_jtx_gets(blk, "type");
        const char *t    = dp_jtx_gets(blk, "text");
        tg_err      rv;
        snprintf(pw, sizeof(pw), "%s[%zu]", where, j++);
        if (type == NULL || strcmp(type, "text") != 0 || t == NULL) {
            return dp_jtx_fail(tx, pw,
                                "%s: only text blocks can be sent to this "
                                "model here.",
                                pw);
        }
        if ((b->len > 0 && (rv = tg_buf_append(b, "\n", 1)) != TG_OK) ||
            (rv = tg_buf_append(b, t, strlen(t))) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

static tg_err
dp_anth_image_part(dp_jtx *tx, cJSON *parts, const cJSON *blk,
                   const char *where)
{
    const cJSON *src   = dp_jtx_get(blk, "source");
    const char  *stype = dp_jtx_gets(src, "type");
    cJSON       *p;
    cJSON       *iu;

    if (stype != NULL && strcmp(stype, "base64") == 0 &&
        dp_jtx_gets(src, "media_type") != NULL &&
        dp_jtx_gets(src, "data") != NULL) {
        const char *mt  = dp_jtx_gets(src, "media_type");
        const char *d   = dp_jtx_gets(src, "data");
        size_t      n   = strlen(mt) + strlen(d) + 16;
        char       *url = malloc(n);
        if (url == NULL) {
            return TG_ENOMEM;
        }
        snprintf(url, n, "data:%s;base64,%s", mt, d);
        p = dp_jtx_obj(tx, parts, NULL);
        dp_jtx_str(tx, p, "type", "image_url");
        iu = dp_jtx_obj(tx, p, "image_url");
        dp_jtx_str(tx, iu, "url", url);
        free(url);
        return TG_OK;
    }
    if (stype != NULL && strcmp(stype, "url") == 0 &&
        dp_jtx_gets(src, "url") != NULL) {
        p = dp_jtx_obj(tx, parts, NULL);
        dp_jtx_str(tx, p, "type", "image_url");
        iu = dp_jtx_obj(tx, p, "image_url");
        dp_jtx_str(tx, iu, "url", dp_jtx_gets(src, "url"));
        return TG_OK;
    }
    return dp_jtx_fail(tx, where,
                        "%s: images must have a base64 or url source.", where);
}

static void
dp_anth_tool_msg(dp_jtx *tx, cJSON *msgs, const char *id, const char *text)
{
    cJSON *m = dp_jtx_obj(tx, msgs, NULL);

    dp_jtx_str(tx, m, "role", "tool");
    dp_jtx_str(tx, m, "tool_call_id", id);
    dp_jtx_str(tx, m, "content", text);
}

/* dp_anth_user_to_openai: tool_result blocks become tool messages, which
 * must directly follow the assistant's tool calls, so they go first; the
 * other blocks make one user message after them. */
static tg_err
dp_anth_user_to_openai(dp_jtx *tx, cJSON *msgs, const cJSON *content,
                       size_t i)
{
    cJSON       *parts = NULL;
    const cJSON *blk;
    size_t       j = 0;
    char         pw[96];
    tg_err       rv = TG_OK;

    if ((parts = cJSON_CreateArray()) == NULL) {
        return TG_ENOMEM;
    }
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = dp_jtx_gets(blk, "type");
        snprintf(pw, sizeof(pw), "messages[%zu].content[%zu]", i, j++);
        if (type != NULL && strcmp(type, "tool_result") == 0) {
            const char *id = dp_jtx_gets(blk, "tool_use_id");
            tg_buf      t;
            char        cw[112];
            if (id == NULL) {
                rv = dp_jtx_fail(tx, pw, "%s.tool_use_id must be a string.",
                                  pw);
                goto out;
            }
            snprintf(cw, sizeof(cw), "%s.content", pw);
            tg_buf_init(&t, 0);
            rv = dp_anth_join_text(tx, &t, dp_jtx_get(blk, "content"), cw);
            if (rv == TG_OK) {
                dp_anth_tool_msg(tx, msgs, id, t.data != NULL ? t.data : "");
            }
            tg_buf_fini(&t);
        } else if (type != NULL && strcmp(type, "text") == 0 &&
                   dp_jtx_gets(blk, "text") != NULL) {
            cJSON *p = dp_jtx_obj(tx, parts, NULL);
            dp_jtx_str(tx, p, "type", "text");
            dp_jtx_str(tx, p, "text", dp_jtx_gets(blk, "text"));
        } else if (type != NULL && strcmp(type, "image") == 0) {
            rv = dp_anth_image_part(tx, parts, blk, pw);
        } else {
            rv = dp_jtx_fail(tx, pw,
                              "%s: blocks of type '%s' cannot be sent to "
                              "this model.",
                              pw, type != NULL ? type : "(none)");
        }
        if (rv != TG_OK) {
            goto out;
        }
    }
    if (cJSON_GetArraySize(parts) > 0) {
        cJSON       *m     = dp_jtx_obj(tx, msgs, NULL);
        const cJSON *first = cJSON_GetArrayItem(parts, 0);
        dp_jtx_str(tx, m, "role", "user");
        if (cJSON_GetArraySize(parts) == 1 &&
            strcmp(dp_jtx_gets(first, "type"), "text") == 0) {
            dp_jtx_str(tx, m, "content", dp_jtx_gets(first, "text"));
        } else {
            dp_jtx_add(tx, m, "content", parts);
            parts = NULL;
        }
    }
out:
    cJSON_Delete(parts);
    return rv;
}

static tg_err
dp_anth_assistant_to_openai(dp_jtx *tx, cJSON *msgs, const cJSON *content,
                            size_t i)
{
    cJSON       *m     = dp_jtx_obj(tx, msgs, NULL);
    cJSON       *calls = NULL;
    const cJSON *blk;
    tg_buf       text;
    bool         has_text = false;
    size_t       j        = 0;
    char         pw[96];
    tg_err       rv = TG_OK;

    tg_buf_init(&text, 0);
    dp_jtx_str(tx, m, "role", "assistant");
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = dp_jtx_gets(blk, "type");
        snprintf(pw, sizeof(pw), "messages[%zu].content[%zu]", i, j++);
        if (type != NULL && strcmp(type, "text") == 0 &&
            dp_jtx_gets(blk, "text") != NULL) {
            const char *t = dp_jtx_gets(blk, "text");
            has_text      = true;
            if ((rv = tg_buf_append(&text, t, strlen(t))) != TG_OK) {
                goto out;
            }
        } else if (type != NULL && strcmp(type, "tool_use") == 0) {
            const char  *id    = dp_jtx_gets(blk, "id");
            const char  *name  = dp_jtx_gets(blk, "name");
            const cJSON *input = dp_jtx_get(blk, "input");
            char        *args;
            cJSON       *c;
            cJSON       *fn;
            if (id == NULL || name == NULL) {
                rv = dp_jtx_fail(tx, pw,
                                  "%s: tool_use needs a string 'id' and "
                                  "'name'.",
                                  pw);
                goto out;
            }
            if (calls == NULL) {
                calls = dp_jtx_arr(tx, m, "tool_calls");
            }
            c = dp_jtx_obj(tx, calls, NULL);
            dp_jtx_str(tx, c, "id", id);
            dp_jtx_str(tx, c, "type", "function");
            fn = dp_jtx_obj(tx, c, "function");
            dp_jtx_str(tx, fn, "name", name);
            args = input != NULL ? cJSON_PrintUnformatted(input) : NULL;
            dp_jtx_str(tx, fn, "arguments", args != NULL ? args : "{}");
            cJSON_free(args);
        } else if (type != NULL && (strcmp(type, "thinking") == 0 ||
                                    strcmp(type, "redacted_thinking") == 0)) {
            continue; /* an OpenAI model cannot take it back */
        } else {
            rv = dp_jtx_fail(tx, pw,
                              "%s: blocks of type '%s' cannot be sent to "
                              "this model.",
                              pw, type != NULL ? type : "(none)");
            goto out;
        }
    }
    if (has_text) {
        dp_jtx_str(tx, m, "content", text.data);
    } else {
        dp_jtx_add(tx, m, "content", cJSON_CreateNull());
    }
out:
    tg_buf_fini(&text);
    return rv;
}

static tg_err
dp_anth_tools_to_openai(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    const cJSON *tools  = dp_jtx_get(req, "tools");
    const cJSON *choice = dp_jtx_get(req, "tool_choice");
    const cJSON *t;
    cJSON       *out;
    size_t       i = 0;
    char         pw[64];

    if (dp_jtx_present(tools) && !cJSON_IsArray(tools)) {
        return dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        out = dp_jtx_arr(tx, root, "tools");
        cJSON_ArrayForEach(t, tools)
        {
            const char  *type   = dp_jtx_gets(t, "type");
            const char  *name   = dp_jtx_gets(t, "name");
            const char  *desc   = dp_jtx_gets(t, "description");
            const cJSON *schema = dp_jtx_get(t, "input_schema");
            cJSON       *o;
            cJSON       *fn;

            snprintf(pw, sizeof(pw), "tools[%zu]", i++);
            if ((type != NULL && strcmp(type, "custom") != 0) || name == NULL) {
                return dp_jtx_fail(tx, pw,
                                    "%s: only client tools with a name and "
                                    "an input_schema can be sent to this "
                                    "model.",
                                    pw);
            }
            o = dp_jtx_obj(tx, out, NULL);
            dp_jtx_str(tx, o, "type", "function");
            fn = dp_jtx_obj(tx, o, "function");
            dp_jtx_str(tx, fn, "name", name);
            if (desc != NULL) {
                dp_jtx_str(tx, fn, "description", desc);
            }
            if (cJSON_IsObject(schema)) {
                dp_jtx_dup(tx, fn, "parameters", schema);
            }
        }
    }
    if (cJSON_IsObject(choice)) {
        const char *type = dp_jtx_gets(choice, "type");
        if (type == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                                "'tool_choice.type' must be a string.");
        }
        if (strcmp(type, "auto") == 0) {
            dp_jtx_str(tx, root, "tool_choice", "auto");
        } else if (strcmp(type, "any") == 0) {
            dp_jtx_str(tx, root, "tool_choice", "required");
        } else if (strcmp(type, "none") == 0) {
            dp_jtx_str(tx, root, "tool_choice", "none");
        } else if (strcmp(type, "tool") == 0 &&
                   dp_jtx_gets(choice, "name") != NULL) {
            cJSON *c = dp_jtx_obj(tx, root, "tool_choice");
            dp_jtx_str(tx, c, "type", "function");
            dp_jtx_str(tx, dp_jtx_obj(tx, c, "function"), "name",
                        dp_jtx_gets(choice, "name"));
        } else {
            return dp_jtx_fail(tx, "tool_choice",
                                "'tool_choice.type' must be auto, any, "
                                "none or tool (with a name).");
        }
        if (cJSON_IsTrue(dp_jtx_get(choice, "disable_parallel_tool_use")) &&
            cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
            dp_jtx_add(tx, root, "parallel_tool_calls", cJSON_CreateFalse());
        }
    } else if (dp_jtx_present(choice)) {
        return dp_jtx_fail(tx, "tool_choice",
                            "'tool_choice' must be an object.");
    }
    return TG_OK;
}

tg_err
dp_anth_req_to_openai(const cJSON *req, const dp_anth_req_opts *opts,
                      char **out, size_t *len, char *msg, size_t msglen,
                      char *param, size_t paramlen)
{
    dp_jtx   tx   = {false, msg, msglen, param, paramlen};
    cJSON       *root = cJSON_CreateObject();
    cJSON       *msgs;
    const cJSON *messages;
    const cJSON *m;
    const cJSON *v;
    const char  *model;
    int64_t      max_tokens = 0;
    size_t       i          = 0;
    char         pw[64];
    tg_err       rv;

    if (msglen > 0) {
        msg[0] = '\0';
    }
    if (paramlen > 0) {
        param[0] = '\0';
    }
    if (root == NULL) {
        return TG_ENOMEM;
    }
    if (!cJSON_IsObject(req)) {
        rv = dp_jtx_fail(&tx, "", "The request body must be a JSON object.");
        goto fail;
    }
    model = opts != NULL && opts->model != NULL ? opts->model
                                                : dp_jtx_gets(req, "model");
    if (model == NULL) {
        rv = dp_jtx_fail(&tx, "model", "Missing required parameter: 'model'.");
        goto fail;
    }
    if ((rv = dp_jtx_max_tokens(&tx, req, "max_tokens", &max_tokens)) !=
        TG_OK) {
        goto fail;
    }
    messages = dp_jtx_get(req, "messages");
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        rv = dp_jtx_fail(&tx, "messages",
                          "'messages' must be a non-empty array.");
        goto fail;
    }
    dp_jtx_str(&tx, root, "model", model);
    msgs = dp_jtx_arr(&tx, root, "messages");
    v    = dp_jtx_get(req, "system");
    if (dp_jtx_present(v)) {
        tg_buf t;
        tg_buf_init(&t, 0);
        rv = dp_anth_join_text(&tx, &t, v, "system");
        if (rv == TG_OK && t.len > 0) {
            cJSON *sm = dp_jtx_obj(&tx, msgs, NULL);
            dp_jtx_str(&tx, sm, "role", "system");
            dp_jtx_str(&tx, sm, "content", t.data);
        }
        tg_buf_fini(&t);
        if (rv != TG_OK) {
            goto fail;
        }
    }
    cJSON_ArrayForEach(m, messages)
    {
        const char  *role    = dp_jtx_gets(m, "role");
        const cJSON *content = dp_jtx_get(m, "content");
        bool         user    = role != NULL && strcmp(role, "user") == 0;

        if (!user && (role == NULL || strcmp(role, "assistant") != 0)) {
            snprintf(pw, sizeof(pw), "messages[%zu].role", i);
            rv = dp_jtx_fail(&tx, pw, "%s must be 'user' or 'assistant'.", pw);
            goto fail;
        }
        if (cJSON_IsString(content)) {
            cJSON *om = dp_jtx_obj(&tx, msgs, NULL);
            dp_jtx_str(&tx, om, "role", role);
            dp_jtx_str(&tx, om, "content", content->valuestring);
        } else if (!cJSON_IsArray(content)) {
            snprintf(pw, sizeof(pw), "messages[%zu].content", i);
            rv = dp_jtx_fail(&tx, pw,
                              "%s must be a string or an array of blocks.", pw);
            goto fail;
        } else if ((rv = user ? dp_anth_user_to_openai(&tx, msgs, content, i)
                              : dp_anth_assistant_to_openai(&tx, msgs, content,
                                                            i)) != TG_OK) {
            goto fail;
        }
        i++;
    }
    if ((rv = dp_anth_tools_to_openai(&tx, root, req)) != TG_OK ||
        (rv = dp_anth_sampling(&tx, root, req)) != TG_OK) {
        goto fail;
    }
    if (max_tokens > 0) {
        dp_jtx_num(&tx, root, "max_tokens", (double)max_tokens);
    }
    v = dp_jtx_get(req, "stop_sequences");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        dp_jtx_dup(&tx, root, "stop", v);
    }
    v = dp_jtx_get(dp_jtx_get(req, "metadata"), "user_id");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        dp_jtx_str(&tx, root, "user", v->valuestring);
    }
    if (cJSON_IsTrue(dp_jtx_get(req, "stream"))) {
        dp_jtx_add(&tx, root, "stream", cJSON_CreateTrue());
        dp_jtx_add(&tx, dp_jtx_obj(&tx, root, "stream_options"),
                    "include_usage", cJSON_CreateTrue());
    }
    return dp_jtx_print(&tx, root, out, len);
fail:
    cJSON_Delete(root);
    return rv;
}

/* ---- D: OpenAI response -> Anthropic response --------------------------- */

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
    dp_jtx    tx   = {0};
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

/* ---- D: OpenAI stream -> Anthropic events ------------------------------- */

struct dp_anth_rstream {
    dp_jtx_head h; /* created unused: Anthropic events carry none */
    int64_t input_hint;
    bool    started;
    bool    ended;
    bool    had_tools;
    int     next_block;       /* index of the next content block */
    int     open_block;       /* -1: none open */
    int     open_tool;        /* OpenAI tool index of the open block, or -1
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
dp_anth_rsend(dp_jtx *tx, cJSON *root, const char *type, tg_buf *out)
{
    char prefix[64];

    snprintf(prefix, sizeof(prefix), "event: %s\ndata: ", type);
    return dp_jtx_emit(tx, root, prefix, out);
}

static tg_err
dp_anth_rstream_start(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON     *root;
    cJSON     *m;
    cJSON     *u;
    tg_err     rv;

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
    if ((rv = dp_anth_rsend(&tx, root, "message_start", out)) == TG_OK) {
        s->started = true;
    }
    return rv;
}

static tg_err
dp_anth_rstream_close_block(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON     *root;
    tg_err     rv;

    if (s->open_block < 0) {
        return TG_OK;
    }
    root = dp_anth_revent(&tx, "content_block_stop");
    dp_jtx_num(&tx, root, "index", s->open_block);
    if ((rv = dp_anth_rsend(&tx, root, "content_block_stop", out)) == TG_OK) {
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
    cJSON     *root;
    cJSON     *cb;
    tg_err     rv;

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
    if ((rv = dp_anth_rsend(&tx, root, "content_block_start", out)) == TG_OK) {
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
    cJSON     *root = dp_anth_revent(&tx, "content_block_delta");
    cJSON     *d;

    dp_jtx_num(&tx, root, "index", s->open_block);
    d = dp_jtx_obj(&tx, root, "delta");
    dp_jtx_str(&tx, d, "type", dtype);
    dp_jtx_str(&tx, d, key, text);
    return dp_anth_rsend(&tx, root, "content_block_delta", out);
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
        const cJSON *idx  = dp_jtx_get(c, "index");
        const cJSON *fn   = dp_jtx_get(c, "function");
        const char  *id   = dp_jtx_gets(c, "id");
        const char  *args = dp_jtx_gets(fn, "arguments");
        int64_t      index = 0;
        int          tool;

        (void)tg_json_whole(idx, 0, INT32_MAX, &index);
        tool = (int)index;

        if (id != NULL && id[0] != '\0' && tool != s->open_tool) {
            if ((rv = dp_anth_rstream_open(s, id, dp_jtx_gets(fn, "name"),
                                           tool, out)) != TG_OK) {
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
    cJSON     *root;
    cJSON     *d;
    cJSON     *u;
    tg_err     rv;

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
    if ((rv = dp_anth_rsend(&tx, root, "message_delta", out)) != TG_OK) {
        return rv;
    }
    root = dp_anth_revent(&tx, "message_stop");
    if ((rv = dp_anth_rsend(&tx, root, "message_stop", out)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

static tg_err
dp_anth_rstream_error(dp_anth_rstream *s, const cJSON *err, tg_buf *out)
{
    dp_jtx tx     = {0};
    int        status = 0;
    cJSON     *root   = dp_anth_anth_error_obj(&tx, err, &status);
    tg_err     rv;

    if (root == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = dp_anth_rsend(&tx, root, "error", out)) == TG_OK) {
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
        (rv = dp_anth_rstream_tools(s, dp_jtx_get(delta, "tool_calls"),
                                    out)) != TG_OK) {
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

tg_err
dp_anth_rstream_feed_sse(dp_anth_rstream *s, const char *ev, size_t len,
                         tg_buf *out)
{
    char        name[64];
    const char *data;
    size_t      dlen;
    tg_buf      scratch;
    tg_err      rv;

    tg_buf_init(&scratch, 0);
    rv =
        dp_anth_sse_fields(ev, len, name, sizeof(name), &scratch, &data, &dlen);
    if (rv == TG_OK && data != NULL) {
        rv = dp_anth_rstream_feed(s, data, dlen, out);
    }
    tg_buf_fini(&scratch);
    return rv;
}

tg_err
dp_anth_rstream_finish(dp_anth_rstream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON     *e;
    tg_err     rv;

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
