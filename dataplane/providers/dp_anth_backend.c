/* dp_anth_backend.c - an OpenAI client at an Anthropic backend: request
 * out (A), reply back (B), stream back (C), errors back, and the table
 * that runs them, dp_anth_backend_ops (see dp_anth_backend.h). */
#include "dp_anth_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_provider_int.h"
#include "dp_sse.h"

#define DP_ANTH_DEFAULT_MAX_TOKENS 4096 /* Anthropic requires max_tokens */

/* ---- usage and finish reasons ------------------------------------------- */

static void
dp_anth_usage_openai_json(dp_jtx *tx, cJSON *parent, const dp_anth_usage *u)
{
    dp_usage_counts c;

    dp_anth_usage_counts(u, &c);
    dp_jtx_usage(tx, parent, &c, 0);
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

/* ---- errors ------------------------------------------------------------- */

static bool
dp_anth_is_context_error(const char *message)
{
    return dp_jtx_icontains(message, "prompt is too long") ||
           dp_jtx_icontains(message, "context window") ||
           dp_jtx_icontains(message, "context length");
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

/* ---- A: OpenAI request -> Anthropic request ----------------------------- */

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

/* dp_anth_tool_use appends the tool_use block of one assistant tool
 * call to the blocks (arg). */
static void
dp_anth_tool_use(dp_jtx *tx, void *arg, const char *id, const char *name,
                 cJSON *args)
{
    cJSON *b = dp_jtx_obj(tx, arg, NULL);

    dp_jtx_str(tx, b, "type", "tool_use");
    dp_jtx_str(tx, b, "id", id);
    dp_jtx_str(tx, b, "name", name);
    dp_jtx_add(tx, b, "input", args);
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
            dp_jtx_append(tx, msgs, "user", "content", blocks);
        } else if (strcmp(role, "assistant") == 0) {
            blocks = cJSON_CreateArray();
            rv = dp_anth_parts(tx, blocks, dp_jtx_get(m, "content"), false, pw);
            if (rv == TG_OK) {
                rv = dp_jtx_calls(tx, dp_jtx_get(m, "tool_calls"), i,
                                  dp_anth_tool_use, blocks);
            }
            dp_jtx_append(tx, msgs, "assistant", "content", blocks);
        } else if (strcmp(role, "tool") == 0) {
            blocks = cJSON_CreateArray();
            rv     = dp_anth_tool_result(tx, blocks, m, i);
            dp_jtx_append(tx, msgs, "user", "content", blocks);
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
        const char *name = dp_jtx_gets(dp_jtx_get(choice, "function"), "name");
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
            dp_jtx_add(tx, tc, "disable_parallel_tool_use", cJSON_CreateTrue());
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

tg_err
dp_anth_req_from_openai(const cJSON *req, const dp_anth_req_opts *opts,
                        char **out, size_t *len, char *msg, size_t msglen,
                        char *param, size_t paramlen)
{
    dp_jtx       tx = {false, msg, msglen, param, paramlen};
    cJSON       *root;
    const char  *model;
    const cJSON *v;
    int64_t      max_tokens = 0;
    tg_err       rv;

    if ((root = dp_jtx_request(&tx, req, &rv)) == NULL) {
        return rv;
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
    if ((rv = dp_jtx_stop(&tx, req, root, "stop_sequences")) != TG_OK) {
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
    dp_jtx        tx   = {0};
    cJSON        *in   = cJSON_ParseWithLength(body, len);
    cJSON        *root = NULL;
    const cJSON  *content;
    const cJSON  *b;
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
            dp_jtx_str(&tx, fn, "name",
                       dp_jtx_gets(b, "name") != NULL ? dp_jtx_gets(b, "name")
                                                      : "");
            dp_jtx_str(&tx, fn, "arguments", args != NULL ? args : "{}");
            cJSON_free(args);
        }
        /* thinking and server-tool blocks have no OpenAI form. */
    }
    dp_anth_usage_read(dp_jtx_get(in, "usage"), &u);
    dp_jtx_completion(&tx, root, meta->id, meta->created, meta->model,
                      text.data, has_text, calls,
                      dp_anth_finish_reason(dp_jtx_gets(in, "stop_reason")));
    calls = NULL;
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
    int           content; /* content chunks the last feed wrote */
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

void
dp_anth_stream_emitted(const dp_anth_stream *s, dp_emit *out)
{
    out->content = s->content;
    dp_anth_usage_counts(&s->usage, &out->usage);
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
    tg_err rv = dp_jtx_finish_chunk(&s->h, dp_anth_finish_reason(stop), out);

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
        cJSON *root = dp_jtx_head_chunk(&tx, &s->h, false, NULL, NULL);
        dp_anth_usage_openai_json(&tx, root, &s->usage);
        if ((rv = dp_jtx_emit(&tx, root, NULL, out)) != TG_OK) {
            return rv;
        }
    }
    if ((rv = dp_sse_put(out, NULL, "[DONE]", 6)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

static tg_err
dp_anth_stream_error(dp_anth_stream *s, const cJSON *err, tg_buf *out)
{
    size_t mark = out->len;
    tg_err rv   = dp_sse_open(out, NULL);

    if (rv == TG_OK) {
        rv = dp_anth_openai_error_from_obj(err, 0, out, NULL);
    }
    if ((rv = dp_sse_close(out, mark, rv)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

static tg_err
dp_anth_stream_block_start(dp_anth_stream *s, const cJSON *ev, tg_buf *out)
{
    const cJSON *cb     = dp_jtx_get(ev, "content_block");
    const cJSON *idx    = dp_jtx_get(ev, "index");
    const char  *type   = dp_jtx_gets(cb, "type");
    dp_jtx       tx     = {0};
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
        return dp_jtx_text_chunk(&s->h, NULL, t, out);
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
    dp_jtx       tx     = {0};
    cJSON       *choice = NULL;
    cJSON       *delta  = NULL;
    cJSON       *root;

    if (type != NULL && strcmp(type, "text_delta") == 0) {
        const char *t = dp_jtx_gets(d, "text");
        if (t == NULL || t[0] == '\0') {
            return TG_OK;
        }
        return dp_jtx_text_chunk(&s->h, NULL, t, out);
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

    s->content = 0;
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
        cJSON *choice = NULL;
        cJSON *delta  = NULL;
        cJSON *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);
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
        const char *stop = dp_jtx_gets(dp_jtx_get(ev, "delta"), "stop_reason");
        dp_anth_usage_read(dp_jtx_get(ev, "usage"), &s->usage);
        if (stop != NULL && !s->finish_sent) {
            rv = dp_anth_stream_finish_chunk(s, stop, out);
        }
    } else if (strcmp(type, "message_stop") == 0) {
        rv = dp_anth_stream_stop(s, out);
    } else if (strcmp(type, "error") == 0) {
        rv = dp_anth_stream_error(s, dp_jtx_get(ev, "error"), out);
    }
    if (rv == TG_OK && dp_anth_event_content(type, ev)) {
        s->content = 1;
    }
    cJSON_Delete(ev);
    return rv;
}

/* dp_anth_stream_data is dp_anth_stream_feed for dp_sse_dispatch. */
static tg_err
dp_anth_stream_data(void *s, const char *event, const char *data, size_t len,
                    tg_buf *out)
{
    return dp_anth_stream_feed(s, event, data, len, out);
}

tg_err
dp_anth_stream_feed_sse(dp_anth_stream *s, const char *ev, size_t len,
                        tg_buf *out)
{
    return dp_sse_dispatch(ev, len, dp_anth_stream_data, s, out);
}

tg_err
dp_anth_stream_finish(dp_anth_stream *s, tg_buf *out)
{
    tg_err rv;

    s->content = 0;
    if (s->ended) {
        return TG_OK;
    }
    if (s->finish_sent) { /* only message_stop was lost */
        return dp_anth_stream_stop(s, out);
    }
    if ((rv = dp_openai_cut_event(out)) == TG_OK) {
        s->ended = true;
    }
    return rv;
}

/* ---- dp_anth_backend_ops ------------------------------------------------- */

static tg_err
dp_anth_backend_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                        char *param, size_t paramlen)
{
    const tg_deployment *d = c->up->dep;
    dp_anth_req_opts o = {d->upstream_model, DP_ANTH_DEFAULT_MAX_TOKENS, clamp};
    tg_err           rv;

    if ((rv = dp_call_url(c, "%s/v1/messages", c->up->base)) != TG_OK ||
        (rv = dp_anth_req_from_openai(c->cr->chat->root, &o, &c->body, &c->len,
                                      msg, msglen, param, paramlen)) != TG_OK) {
        return rv;
    }
    return dp_call_header(c, "anthropic-version", d->anthropic_version);
}

/* dp_anth_backend_meta: the id, model and time of the OpenAI reply. */
static dp_anth_resp_meta
dp_anth_backend_meta(const dp_call *c)
{
    dp_anth_resp_meta m = {c->oai_id, c->cr->chat->model, (int64_t)time(NULL)};

    return m;
}

static tg_err
dp_anth_backend_stream_start(const dp_call *c, bool include_usage, void **st)
{
    dp_anth_resp_meta m  = dp_anth_backend_meta(c);
    dp_anth_stream   *s  = NULL;
    tg_err            rv = dp_anth_stream_create(&s, &m, include_usage);

    *st = s;
    return rv;
}

static tg_err
dp_anth_backend_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                             dp_emit *em)
{
    tg_err rv = dp_anth_stream_feed_sse(st, ev, len, out);

    dp_anth_stream_emitted(st, em);
    return rv;
}

static tg_err
dp_anth_backend_stream_end(void *st, tg_buf *out, dp_emit *em)
{
    tg_err rv = dp_anth_stream_finish(st, out);

    dp_anth_stream_emitted(st, em);
    return rv;
}

static void
dp_anth_backend_stream_free(void *st)
{
    dp_anth_stream_destroy(st);
}

static tg_err
dp_anth_backend_body(const dp_call *c, const char *body, size_t len,
                     tg_buf *out, dp_usage_counts *usage)
{
    dp_anth_resp_meta m    = dp_anth_backend_meta(c);
    dp_anth_usage     au   = {0};
    char             *tmp  = NULL;
    size_t            tlen = 0;
    tg_err            rv;

    rv = dp_anth_resp_to_openai(body, len, &m, &tmp, &tlen, &au);
    dp_anth_usage_counts(&au, usage);
    return dp_jtx_take(out, tmp, tlen, rv);
}

static tg_err
dp_anth_backend_error(const dp_call *c, int status, const char *body,
                      size_t len, tg_buf *oai, int *out_status)
{
    (void)c;
    return dp_anth_error_to_openai(status, body, len, oai, out_status);
}

const dp_provider_ops dp_anth_backend_ops = {
    .name         = "anthropic",
    .completions  = false,
    .embeddings   = false,
    .prepare      = dp_anth_backend_prepare,
    .stream_start = dp_anth_backend_stream_start,
    .stream_event = dp_anth_backend_stream_event,
    .stream_end   = dp_anth_backend_stream_end,
    .stream_free  = dp_anth_backend_stream_free,
    .body         = dp_anth_backend_body,
    .error        = dp_anth_backend_error,
    .error_body   = dp_call_error_oai,
};
