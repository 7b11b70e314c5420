/* dp_bedrock.c - an OpenAI client at Bedrock Converse: the URL path and
 * the request (see dp_bedrock.h), and dp_bedrock_ops, the table that runs
 * an attempt; the answer's translation is in dp_bedrock_reply.c. */
#include "dp_bedrock.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_jtx.h"
#include "dp_provider_int.h"
#include "dp_sigv4.h"

tg_err
dp_bedrock_path(const char *model, bool stream, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    const char       *tail  = stream ? "/converse-stream" : "/converse";
    size_t            n     = 0;

    if (model == NULL || model[0] == '\0') {
        return TG_EINVAL;
    }
    n = (size_t)snprintf(out, outlen, "/model/");
    for (const unsigned char *p = (const unsigned char *)model; *p != '\0';
         p++) {
        if (n + 4 >= outlen) {
            return TG_ETOOBIG;
        }
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (n + strlen(tail) + 1 > outlen) {
        return TG_ETOOBIG;
    }
    memcpy(out + n, tail, strlen(tail) + 1);
    return TG_OK;
}

/* ---- messages ------------------------------------------------------------ */

static void
dp_bedrock_text(dp_jtx *tx, cJSON *blocks, const char *s)
{
    if (s[0] != '\0') { /* Converse rejects blank text blocks */
        dp_jtx_str(tx, dp_jtx_obj(tx, blocks, NULL), "text", s);
    }
}

/* dp_bedrock_image: a base64 data URL as an image block with its bytes;
 * Converse takes no URLs and the gateway fetches nothing. */
static tg_err
dp_bedrock_image(dp_jtx *tx, cJSON *blocks, const cJSON *part,
                 const char *where)
{
    static const char *const fmts[] = {"png", "jpeg", "gif", "webp"};
    dp_jtx_image             img;
    const char              *fmt = NULL;
    cJSON                   *im;
    tg_err                   rv = dp_jtx_image_url(tx, part, where, &img);

    if (rv != TG_OK) {
        return rv;
    }
    if (img.data == NULL) {
        return dp_jtx_fail(tx, where,
                           "%s: this model takes images only as base64 data "
                           "URLs (data:image/png;base64,...).",
                           where);
    }
    for (size_t i = 0; i < 4; i++) {
        if (strncmp(img.media, "image/", 6) == 0 &&
            strcmp(img.media + 6, fmts[i]) == 0) {
            fmt = fmts[i];
        }
    }
    if (strcmp(img.media, "image/jpg") == 0) {
        fmt = "jpeg";
    }
    if (fmt == NULL) {
        return dp_jtx_fail(tx, where,
                           "%s: image type '%s' is not supported by this "
                           "model (png, jpeg, gif, webp).",
                           where, img.media);
    }
    im = dp_jtx_obj(tx, dp_jtx_obj(tx, blocks, NULL), "image");
    dp_jtx_str(tx, im, "format", fmt);
    dp_jtx_str(tx, dp_jtx_obj(tx, im, "source"), "bytes", img.data);
    return TG_OK;
}

static tg_err
dp_bedrock_content(dp_jtx *tx, cJSON *blocks, const cJSON *content, bool images,
                   const char *where)
{
    static const dp_jtx_part_fns fns = {dp_bedrock_text, dp_bedrock_image};

    return dp_jtx_content(tx, blocks, content, images, where, &fns);
}

/* Where dp_bedrock_call puts the toolUse blocks of one message. */
typedef struct dp_bedrock_calls_to {
    cJSON *blocks;
    bool  *any; /* set once a toolUse block is added */
} dp_bedrock_calls_to;

/* dp_bedrock_call appends the toolUse block of one assistant tool call. */
static void
dp_bedrock_call(dp_jtx *tx, void *arg, const char *id, const char *name,
                cJSON *args)
{
    dp_bedrock_calls_to *to = arg;
    cJSON *tu = dp_jtx_obj(tx, dp_jtx_obj(tx, to->blocks, NULL), "toolUse");

    dp_jtx_str(tx, tu, "toolUseId", id);
    dp_jtx_str(tx, tu, "name", name);
    dp_jtx_add(tx, tu, "input", args);
    *to->any = true;
}

/* dp_bedrock_result appends the toolResult block of a role "tool"
 * message: its text as a text block (Converse wants non-empty content). */
static tg_err
dp_bedrock_result(dp_jtx *tx, cJSON *blocks, const cJSON *m, size_t i)
{
    const char  *id      = dp_jtx_gets(m, "tool_call_id");
    const cJSON *content = dp_jtx_get(m, "content");
    const cJSON *part;
    char         pw[96];
    cJSON       *tr;
    cJSON       *out;

    if (id == NULL) {
        snprintf(pw, sizeof(pw), "messages[%zu].tool_call_id", i);
        return dp_jtx_fail(tx, pw, "%s must be a string.", pw);
    }
    tr = dp_jtx_obj(tx, dp_jtx_obj(tx, blocks, NULL), "toolResult");
    dp_jtx_str(tx, tr, "toolUseId", id);
    out = dp_jtx_arr(tx, tr, "content");
    snprintf(pw, sizeof(pw), "messages[%zu].content", i);
    if (cJSON_IsString(content)) {
        dp_jtx_str(tx, dp_jtx_obj(tx, out, NULL), "text", content->valuestring);
        return TG_OK;
    }
    if (!cJSON_IsArray(content)) {
        return dp_jtx_fail(
            tx, pw, "%s must be a string or an array of text parts.", pw);
    }
    cJSON_ArrayForEach(part, content)
    {
        const char *t = dp_jtx_gets(part, "text");
        if (!dp_jtx_is(dp_jtx_gets(part, "type"), "text") || t == NULL) {
            return dp_jtx_fail(
                tx, pw, "%s: tool results can only hold text parts.", pw);
        }
        dp_jtx_str(tx, dp_jtx_obj(tx, out, NULL), "text", t);
    }
    if (cJSON_GetArraySize(out) == 0) {
        dp_jtx_str(tx, dp_jtx_obj(tx, out, NULL), "text", "");
    }
    return TG_OK;
}

/* dp_bedrock_one translates message i (role) into sys or msgs. */
static tg_err
dp_bedrock_one(dp_jtx *tx, cJSON *sys, cJSON *msgs, const cJSON *m, size_t i,
               bool *tool_blocks)
{
    const char *role = dp_jtx_gets(m, "role");
    cJSON      *blocks;
    char        pw[96];
    tg_err      rv;

    snprintf(pw, sizeof(pw), "messages[%zu].content", i);
    if (role == NULL) {
        snprintf(pw, sizeof(pw), "messages[%zu].role", i);
        return dp_jtx_fail(tx, pw, "%s must be a string.", pw);
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        return dp_bedrock_content(tx, sys, dp_jtx_get(m, "content"), false, pw);
    }
    if ((blocks = cJSON_CreateArray()) == NULL) {
        return TG_ENOMEM;
    }
    if (strcmp(role, "user") == 0) {
        rv = dp_bedrock_content(tx, blocks, dp_jtx_get(m, "content"), true, pw);
    } else if (strcmp(role, "assistant") == 0) {
        rv =
            dp_bedrock_content(tx, blocks, dp_jtx_get(m, "content"), false, pw);
        if (rv == TG_OK) {
            dp_bedrock_calls_to to = {blocks, tool_blocks};
            rv = dp_jtx_calls(tx, dp_jtx_get(m, "tool_calls"), i,
                              dp_bedrock_call, &to);
        }
    } else if (strcmp(role, "tool") == 0) {
        rv           = dp_bedrock_result(tx, blocks, m, i);
        *tool_blocks = true;
        role         = "user";
    } else {
        snprintf(pw, sizeof(pw), "messages[%zu].role", i);
        rv = dp_jtx_fail(
            tx, pw, "%s: role '%s' is not supported by this model.", pw, role);
    }
    if (rv != TG_OK) {
        cJSON_Delete(blocks);
        return rv;
    }
    dp_jtx_append(tx, msgs, role, "content", blocks);
    return TG_OK;
}

static tg_err
dp_bedrock_messages(dp_jtx *tx, cJSON *root, const cJSON *messages,
                    bool *tool_blocks)
{
    cJSON       *sys  = cJSON_CreateArray();
    cJSON       *msgs = cJSON_CreateArray();
    const cJSON *m;
    size_t       i  = 0;
    tg_err       rv = TG_OK;

    if (sys == NULL || msgs == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        rv = dp_jtx_fail(tx, "messages",
                         "'messages' must be a non-empty array.");
        goto out;
    }
    cJSON_ArrayForEach(m, messages)
    {
        if ((rv = dp_bedrock_one(tx, sys, msgs, m, i++, tool_blocks)) !=
            TG_OK) {
            goto out;
        }
    }
    if (cJSON_GetArraySize(msgs) == 0) {
        rv = dp_jtx_fail(tx, "messages",
                         "'messages' must hold at least one non-empty user "
                         "or assistant message for this model.");
        goto out;
    }
    dp_jtx_add(tx, root, "messages", msgs);
    msgs = NULL;
    if (cJSON_GetArraySize(sys) > 0) {
        dp_jtx_add(tx, root, "system", sys);
        sys = NULL;
    }
out:
    cJSON_Delete(sys);
    cJSON_Delete(msgs);
    return rv;
}

/* ---- tools and inference ------------------------------------------------- */

/* dp_bedrock_choice reads tool_choice: *mode "auto", "any", "tool" (with
 * *only), "none", or NULL when absent. */
static tg_err
dp_bedrock_choice(dp_jtx *tx, const cJSON *choice, const char **mode,
                  const char **only)
{
    *mode = NULL;
    *only = NULL;
    if (cJSON_IsString(choice)) {
        const char *c = choice->valuestring;
        *mode         = strcmp(c, "auto") == 0       ? "auto"
                        : strcmp(c, "required") == 0 ? "any"
                        : strcmp(c, "none") == 0     ? "none"
                                                     : NULL;
        if (*mode == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice' must be 'auto', 'required', "
                               "'none' or a function.");
        }
    } else if (cJSON_IsObject(choice)) {
        *only = dp_jtx_gets(dp_jtx_get(choice, "function"), "name");
        if (*only == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice' must name a function.");
        }
        *mode = "tool";
    } else if (dp_jtx_present(choice)) {
        return dp_jtx_fail(tx, "tool_choice",
                           "'tool_choice' must be a string or an object.");
    }
    return TG_OK;
}

static tg_err
dp_bedrock_tools(dp_jtx *tx, cJSON *root, const cJSON *req, bool tool_blocks)
{
    const cJSON *tools = dp_jtx_get(req, "tools");
    const cJSON *t;
    const char  *mode;
    const char  *only;
    cJSON       *tc;
    cJSON       *list;
    size_t       i = 0;
    char         pw[64];
    tg_err       rv;

    if ((rv = dp_bedrock_choice(tx, dp_jtx_get(req, "tool_choice"), &mode,
                                &only)) != TG_OK) {
        return rv;
    }
    if (!dp_jtx_present(tools) ||
        (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) == 0)) {
        return TG_OK;
    }
    if (!cJSON_IsArray(tools)) {
        return dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    if (dp_jtx_is(mode, "none")) {
        if (tool_blocks) {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice' 'none' is not supported by this "
                               "model once the conversation holds tool "
                               "calls; use 'auto'.");
        }
        return TG_OK; /* no tools offered: none can be called */
    }
    tc   = dp_jtx_obj(tx, root, "toolConfig");
    list = dp_jtx_arr(tx, tc, "tools");
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn     = dp_jtx_get(t, "function");
        const char  *name   = dp_jtx_gets(fn, "name");
        const char  *desc   = dp_jtx_gets(fn, "description");
        const cJSON *params = dp_jtx_get(fn, "parameters");
        cJSON       *spec;

        snprintf(pw, sizeof(pw), "tools[%zu]", i++);
        if (!dp_jtx_is(dp_jtx_gets(t, "type"), "function") || name == NULL) {
            return dp_jtx_fail(tx, pw,
                               "%s: only tools of type 'function' with a "
                               "function.name can be sent to this model.",
                               pw);
        }
        spec = dp_jtx_obj(tx, dp_jtx_obj(tx, list, NULL), "toolSpec");
        dp_jtx_str(tx, spec, "name", name);
        if (desc != NULL && desc[0] != '\0') {
            dp_jtx_str(tx, spec, "description", desc);
        }
        if (cJSON_IsObject(params)) {
            dp_jtx_dup(tx, dp_jtx_obj(tx, spec, "inputSchema"), "json", params);
        } else {
            cJSON *s =
                dp_jtx_obj(tx, dp_jtx_obj(tx, spec, "inputSchema"), "json");
            dp_jtx_str(tx, s, "type", "object");
            dp_jtx_obj(tx, s, "properties");
        }
    }
    if (mode != NULL) {
        cJSON *ch = dp_jtx_obj(tx, dp_jtx_obj(tx, tc, "toolChoice"), mode);
        if (only != NULL) {
            dp_jtx_str(tx, ch, "name", only);
        }
    }
    return TG_OK;
}

static tg_err
dp_bedrock_inference(dp_jtx *tx, cJSON *root, const cJSON *req, int64_t clamp)
{
    static const char *const nums[][2] = {{"temperature", "temperature"},
                                          {"top_p", "topP"}};
    const cJSON             *rf        = dp_jtx_get(req, "response_format");
    cJSON                   *ic        = cJSON_CreateObject();
    int64_t                  max       = 0;
    tg_err                   rv;

    if (ic == NULL) {
        return TG_ENOMEM;
    }
    if (dp_jtx_present(rf) && !dp_jtx_is(dp_jtx_gets(rf, "type"), "text")) {
        rv = dp_jtx_fail(tx, "response_format",
                         "'response_format' other than 'text' is not "
                         "supported by this model.");
        goto out;
    }
    if ((rv = dp_jtx_max_tokens(tx, req, "max_tokens", &max)) != TG_OK ||
        (rv = dp_jtx_max_tokens(tx, req, "max_completion_tokens", &max)) !=
            TG_OK) {
        goto out;
    }
    if (clamp > 0 && (max == 0 || max > clamp)) {
        max = clamp;
    }
    if (max > 0) {
        dp_jtx_num(tx, ic, "maxTokens", (double)max);
    }
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = dp_jtx_get(req, nums[i][0]);
        if (!dp_jtx_present(v)) {
            continue;
        }
        if (!cJSON_IsNumber(v)) {
            rv = dp_jtx_fail(tx, nums[i][0], "'%s' must be a number.",
                             nums[i][0]);
            goto out;
        }
        dp_jtx_dup(tx, ic, nums[i][1], v);
    }
    if ((rv = dp_jtx_stop(tx, req, ic, "stopSequences")) != TG_OK) {
        goto out;
    }
    if (ic->child != NULL) {
        dp_jtx_add(tx, root, "inferenceConfig", ic);
        ic = NULL;
    }
out:
    cJSON_Delete(ic);
    return rv;
}

tg_err
dp_bedrock_req_from_openai(const cJSON *req, int64_t clamp, char **out,
                           size_t *len, char *msg, size_t msglen, char *param,
                           size_t paramlen)
{
    dp_jtx tx          = {false, msg, msglen, param, paramlen};
    bool   tool_blocks = false;
    cJSON *root;
    tg_err rv;

    if ((root = dp_jtx_request(&tx, req, &rv)) == NULL) {
        return rv;
    }
    if ((rv = dp_jtx_openai_unsupported(&tx, req)) != TG_OK ||
        (rv = dp_bedrock_messages(&tx, root, dp_jtx_get(req, "messages"),
                                  &tool_blocks)) != TG_OK ||
        (rv = dp_bedrock_tools(&tx, root, req, tool_blocks)) != TG_OK ||
        (rv = dp_bedrock_inference(&tx, root, req, clamp)) != TG_OK) {
        cJSON_Delete(root);
        return rv;
    }
    return dp_jtx_print(&tx, root, out, len);
}

/* ---- dp_bedrock_ops ------------------------------------------------------ */

/* dp_bedrock_token adds the session token's header (STS tokens run past
 * dp_call_header's line). */
static tg_err
dp_bedrock_token(dp_call *c, const char *token)
{
    struct curl_slist *n;
    char              *line = NULL;

    if (token == NULL) {
        return TG_OK;
    }
    if (asprintf(&line, "X-Amz-Security-Token: %s", token) < 0) {
        return TG_ENOMEM;
    }
    n = curl_slist_append(c->hdrs, line);
    explicit_bzero(line, strlen(line));
    free(line);
    if (n == NULL) {
        return TG_ENOMEM;
    }
    c->hdrs = n;
    return TG_OK;
}

/* dp_bedrock_sign adds the SigV4 headers of the attempt (its body, the
 * path of its URL as sent, now): Host as signed, X-Amz-Date, the session token
 * and Authorization. The Content-Type signed is the one the core adds. */
static tg_err
dp_bedrock_sign(dp_call *c)
{
    const dp_upstream *up = c->up;
    char               host[256];
    char               date[32];
    char               auth[512];
    const char        *path = NULL;
    dp_sigv4_req       r    = {.method       = "POST",
                               .host         = host,
                               .content_type = "application/json",
                               .body         = c->body,
                               .len          = c->len,
                               .key_id       = up->aws_key_id,
                               .secret       = up->aws_secret,
                               .token        = up->aws_token,
                               .region       = up->dep->region,
                               .service      = "bedrock",
                               .now          = time(NULL)};
    tg_err             rv;

    if (up->aws_key_id == NULL || up->aws_secret == NULL) {
        return TG_EINVAL; /* not usable: never chosen */
    }
    if ((rv = dp_sigv4_host(c->url, host, sizeof(host), &path)) != TG_OK) {
        return rv;
    }
    r.path = path; /* the api_base's path prefix is signed too */
    if ((rv = dp_sigv4_sign(&r, date, sizeof(date), auth, sizeof(auth))) !=
            TG_OK ||
        (rv = dp_call_header(c, "Host", host)) != TG_OK ||
        (rv = dp_call_header(c, "X-Amz-Date", date)) != TG_OK ||
        (rv = dp_bedrock_token(c, up->aws_token)) != TG_OK ||
        (rv = dp_call_header(c, "Authorization", auth)) != TG_OK) {
        explicit_bzero(auth, sizeof(auth));
        return rv;
    }
    explicit_bzero(auth, sizeof(auth));
    return TG_OK;
}

static tg_err
dp_bedrock_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                   char *param, size_t paramlen)
{
    const dp_upstream *up = c->up;
    char               path[600];
    tg_err             rv;

    if ((rv = dp_bedrock_path(up->dep->upstream_model, c->stream, path,
                              sizeof(path))) != TG_OK ||
        (rv = dp_call_url(c, "%s%s", up->base, path)) != TG_OK) {
        return rv;
    }
    if ((rv = dp_bedrock_req_from_openai(c->cr->chat->root, clamp, &c->body,
                                         &c->len, msg, msglen, param,
                                         paramlen)) != TG_OK) {
        return rv;
    }
    return dp_bedrock_sign(c);
}

static dp_bedrock_meta
dp_bedrock_meta_of(const dp_call *c)
{
    dp_bedrock_meta m = {c->oai_id, c->cr->chat->model, (int64_t)time(NULL)};

    return m;
}

static tg_err
dp_bedrock_stream_start(const dp_call *c, bool include_usage, void **st)
{
    dp_bedrock_meta    m  = dp_bedrock_meta_of(c);
    dp_bedrock_stream *s  = NULL;
    tg_err             rv = dp_bedrock_stream_create(&s, &m, include_usage, 0);

    *st = s;
    return rv;
}

static tg_err
dp_bedrock_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                        dp_emit *em)
{
    return dp_bedrock_stream_feed(st, ev, len, out, em);
}

static tg_err
dp_bedrock_stream_end(void *st, tg_buf *out, dp_emit *em)
{
    return dp_bedrock_stream_finish(st, out, em);
}

static void
dp_bedrock_stream_free(void *st)
{
    dp_bedrock_stream_destroy(st);
}

static tg_err
dp_bedrock_body(const dp_call *c, const char *body, size_t len, tg_buf *out,
                dp_usage_counts *usage)
{
    dp_bedrock_meta m    = dp_bedrock_meta_of(c);
    char           *tmp  = NULL;
    size_t          tlen = 0;
    tg_err          rv;

    rv = dp_bedrock_resp_to_openai(body, len, &m, &tmp, &tlen, usage);
    return dp_jtx_take(out, tmp, tlen, rv);
}

static tg_err
dp_bedrock_error(const dp_call *c, int status, const char *body, size_t len,
                 tg_buf *oai, int *out_status)
{
    (void)c;
    return dp_bedrock_error_to_openai(status, body, len, oai, out_status);
}

const dp_provider_ops dp_bedrock_ops = {
    .name          = "bedrock",
    .completions   = false,
    .embeddings    = false,
    .binary_stream = true,
    .prepare       = dp_bedrock_prepare,
    .stream_start  = dp_bedrock_stream_start,
    .stream_event  = dp_bedrock_stream_event,
    .stream_end    = dp_bedrock_stream_end,
    .stream_free   = dp_bedrock_stream_free,
    .body          = dp_bedrock_body,
    .error         = dp_bedrock_error,
    .error_body    = dp_call_error_oai,
};
