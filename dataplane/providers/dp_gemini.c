#include "dp_gemini.h"

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

/* dp_gem_rollback undoes the appends made to out since before. */
static void
dp_gem_rollback(tg_buf *out, size_t before)
{
    out->len = before;
    if (out->data != NULL) {
        out->data[before] = '\0';
    }
}

static bool
dp_gem_icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

/* dp_gem_count reads a non-negative token count; 0 if absent. */
static int64_t
dp_gem_count(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    int64_t n = 0;

    (void)tg_json_whole(v, 0, DP_TOKENS_MAX, &n);
    return n;
}

/* ---- usage and finish reasons ------------------------------------------- */

/* Gemini's usage with the thinking tokens kept apart, so the reply can
 * show them as completion_tokens_details.reasoning_tokens. */
typedef struct dp_gem_usage {
    dp_usage_counts c;
    int64_t         thoughts;
} dp_gem_usage;

/* dp_gem_usage_read replaces u with a usageMetadata object: Gemini sends
 * running totals, never increments. promptTokenCount already includes
 * cachedContentTokenCount. */
static void
dp_gem_usage_read(const cJSON *m, dp_gem_usage *u)
{
    if (!cJSON_IsObject(m)) {
        return;
    }
    memset(u, 0, sizeof(*u));
    u->c.found         = true;
    u->c.prompt_tokens = dp_gem_count(m, "promptTokenCount");
    u->thoughts        = dp_gem_count(m, "thoughtsTokenCount");
    u->c.completion_tokens =
        dp_gem_count(m, "candidatesTokenCount") + u->thoughts;
    u->c.cached_tokens = dp_gem_count(m, "cachedContentTokenCount");
    if (u->c.cached_tokens > u->c.prompt_tokens) {
        u->c.cached_tokens = u->c.prompt_tokens;
    }
}

static void
dp_gem_usage_json(dp_jtx *tx, cJSON *parent, const dp_gem_usage *u)
{
    cJSON *o = dp_jtx_obj(tx, parent, "usage");

    dp_jtx_num(tx, o, "prompt_tokens", (double)u->c.prompt_tokens);
    dp_jtx_num(tx, o, "completion_tokens", (double)u->c.completion_tokens);
    dp_jtx_num(tx, o, "total_tokens",
               (double)(u->c.prompt_tokens + u->c.completion_tokens));
    dp_jtx_num(tx, dp_jtx_obj(tx, o, "prompt_tokens_details"), "cached_tokens",
               (double)u->c.cached_tokens);
    if (u->thoughts > 0) {
        dp_jtx_num(tx, dp_jtx_obj(tx, o, "completion_tokens_details"),
                   "reasoning_tokens", (double)u->thoughts);
    }
}

/* dp_gem_finish_reason maps a Gemini finishReason. The blocking reasons
 * read as content_filter; MAX_TOKENS as length; STOP and the rest
 * (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL...) as stop, or tool_calls
 * when the turn produced function calls. */
static const char *
dp_gem_finish_reason(const char *fr, bool had_calls)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION",         "BLOCKLIST",
        "SPII",   "PROHIBITED_CONTENT", "IMAGE_SAFETY",
    };

    if (dp_jtx_is(fr, "MAX_TOKENS")) {
        return "length";
    }
    for (size_t i = 0; fr != NULL && i < sizeof(filtered) / sizeof(*filtered);
         i++) {
        if (strcmp(fr, filtered[i]) == 0) {
            return "content_filter";
        }
    }
    return had_calls ? "tool_calls" : "stop";
}

/* dp_gem_call_id renders call_prefix + index (malloc'ed). */
static char *
dp_gem_call_id(const char *prefix, int index)
{
    size_t n  = strlen(prefix) + 16;
    char  *id = malloc(n);

    if (id != NULL) {
        snprintf(id, n, "%s%d", prefix, index);
    }
    return id;
}

/* dp_gem_call_json renders an OpenAI tool call for a Gemini functionCall.
 * index >= 0 adds the "index" a stream delta carries. */
static cJSON *
dp_gem_call_json(dp_jtx *tx, cJSON *parent, const cJSON *fc,
                 const char *prefix, int n, int index)
{
    const char  *name = dp_jtx_gets(fc, "name");
    const cJSON *args = dp_jtx_get(fc, "args");
    char        *a = cJSON_IsObject(args) ? cJSON_PrintUnformatted(args) : NULL;
    char        *id = dp_gem_call_id(prefix, n);
    cJSON       *c  = dp_jtx_obj(tx, parent, NULL);
    cJSON       *fn;

    if ((cJSON_IsObject(args) && a == NULL) || id == NULL) {
        tx->oom = true;
    }
    if (index >= 0) {
        dp_jtx_num(tx, c, "index", index);
    }
    dp_jtx_str(tx, c, "id", id != NULL ? id : "");
    dp_jtx_str(tx, c, "type", "function");
    fn = dp_jtx_obj(tx, c, "function");
    dp_jtx_str(tx, fn, "name", name != NULL ? name : "");
    dp_jtx_str(tx, fn, "arguments", a != NULL ? a : "{}");
    cJSON_free(a);
    free(id);
    return c;
}

/* dp_gem_part_text borrows the text of a part that is answer text; thought
 * summaries ("thought": true) are not part of the answer. */
static const char *
dp_gem_part_text(const cJSON *part)
{
    if (cJSON_IsTrue(dp_jtx_get(part, "thought"))) {
        return NULL;
    }
    return dp_jtx_gets(part, "text");
}

/* ---- errors ------------------------------------------------------------- */

static const struct {
    const char *status; /* google.rpc.Code name */
    int         http;
    const char *type;
    const char *code;
} dp_gem_errmap[] = {
    {"INVALID_ARGUMENT", 400, "invalid_request_error", NULL},
    {"FAILED_PRECONDITION", 400, "invalid_request_error", NULL},
    {"OUT_OF_RANGE", 400, "invalid_request_error", NULL},
    {"UNAUTHENTICATED", 401, "authentication_error", "invalid_api_key"},
    {"PERMISSION_DENIED", 403, "permission_error", "permission_denied"},
    {"NOT_FOUND", 404, "invalid_request_error", "not_found"},
    {"RESOURCE_EXHAUSTED", 429, "rate_limit_error", "rate_limit_exceeded"},
    {"INTERNAL", 500, "server_error", NULL},
    {"UNAVAILABLE", 503, "server_error", "overloaded"},
    {"DEADLINE_EXCEEDED", 504, "server_error", "timeout"},
};
#define DP_GEM_NERR (sizeof(dp_gem_errmap) / sizeof(dp_gem_errmap[0]))

static size_t
dp_gem_err_find(const char *status)
{
    for (size_t i = 0; status != NULL && i < DP_GEM_NERR; i++) {
        if (strcmp(dp_gem_errmap[i].status, status) == 0) {
            return i;
        }
    }
    return DP_GEM_NERR;
}

/* dp_gem_bad_key: Gemini answers a wrong API key with 400
 * INVALID_ARGUMENT, reason API_KEY_INVALID, not UNAUTHENTICATED. */
static bool
dp_gem_bad_key(const cJSON *err, const char *message)
{
    const cJSON *d;

    if (dp_gem_icontains(message, "API key not valid")) {
        return true;
    }
    cJSON_ArrayForEach(d, dp_jtx_get(err, "details"))
    {
        if (dp_jtx_is(dp_jtx_gets(d, "reason"), "API_KEY_INVALID")) {
            return true;
        }
    }
    return false;
}

/* dp_gem_openai_error_from_obj appends the OpenAI error body for a Gemini
 * error object (status 0: take error.code, as in a stream). */
static tg_err
dp_gem_openai_error_from_obj(const cJSON *err, int status, tg_buf *out,
                             int *out_status)
{
    const char  *message = dp_jtx_gets(err, "message");
    const char  *gstatus = dp_jtx_gets(err, "status");
    const cJSON *code_n  = dp_jtx_get(err, "code");
    size_t       i;
    const char  *type;
    const char  *code;

    if (message == NULL) {
        message = "The upstream provider returned an error.";
    }
    i = dp_gem_err_find(gstatus);
    if (dp_gem_bad_key(err, message)) {
        i = dp_gem_err_find("UNAUTHENTICATED");
    }
    if (status == 0 && cJSON_IsNumber(code_n) && code_n->valuedouble >= 400 &&
        code_n->valuedouble < 600) {
        status = (int)code_n->valuedouble;
    }
    if (i < DP_GEM_NERR) {
        status = dp_gem_errmap[i].http;
    } else {
        if (status < 400 || status > 599) {
            status = 500;
        }
        for (size_t k = 0; k < DP_GEM_NERR; k++) {
            if (dp_gem_errmap[k].http == status) {
                i = k;
                break;
            }
        }
    }
    if (i < DP_GEM_NERR) {
        type = dp_gem_errmap[i].type;
        code = dp_gem_errmap[i].code;
    } else {
        type = status < 500 ? "invalid_request_error" : "server_error";
        code = NULL;
    }
    if (status == 400 && dp_gem_icontains(message, "token") &&
        dp_gem_icontains(message, "exceed")) {
        code = "context_length_exceeded";
    }
    if (out_status != NULL) {
        *out_status = status;
    }
    return dp_openai_error(out, message, type, NULL, code);
}

/* dp_gem_error_obj finds the error object of a Gemini error body: an
 * object, or (from some stream endpoints) an array holding one. */
static const cJSON *
dp_gem_error_obj(const cJSON *root)
{
    const cJSON *e;

    if (cJSON_IsArray(root)) {
        root = cJSON_GetArrayItem(root, 0);
    }
    e = dp_jtx_get(root, "error");
    return cJSON_IsObject(e) ? e : NULL;
}

tg_err
dp_gem_error_to_openai(int status, const char *body, size_t len, tg_buf *out,
                       int *out_status)
{
    cJSON       *root = cJSON_ParseWithLength(body, len);
    const cJSON *err  = dp_gem_error_obj(root);
    char         text[64];
    cJSON       *fake = NULL;
    tg_err       rv;

    if (err != NULL) {
        rv = dp_gem_openai_error_from_obj(err, status, out, out_status);
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
    rv = dp_gem_openai_error_from_obj(fake, status, out, out_status);
    cJSON_Delete(fake);
    return rv;
}

/* ---- E: the URL path ---------------------------------------------------- */

/* dp_gem_path writes "/v1beta/models/<model><tail>", the model
 * percent-encoded. */
static tg_err
dp_gem_path(const char *model, const char *tail, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            n     = 0;

    if (model == NULL || model[0] == '\0' || strpbrk(model, "/?#") != NULL ||
        strstr(model, "..") != NULL) {
        return TG_EINVAL;
    }
#define DP_GEM_PUT(ch)                                                         \
    do {                                                                       \
        if (n + 1 >= outlen) {                                                 \
            return TG_ETOOBIG;                                                 \
        }                                                                      \
        out[n++] = (ch);                                                       \
    } while (0)
    for (const char *p = "/v1beta/models/"; *p != '\0'; p++) {
        DP_GEM_PUT(*p);
    }
    for (const unsigned char *p = (const unsigned char *)model; *p != '\0';
         p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            DP_GEM_PUT((char)*p);
        } else {
            DP_GEM_PUT('%');
            DP_GEM_PUT(hex[*p >> 4]);
            DP_GEM_PUT(hex[*p & 15]);
        }
    }
    for (const char *p = tail; *p != '\0'; p++) {
        DP_GEM_PUT(*p);
    }
#undef DP_GEM_PUT
    out[n] = '\0';
    return TG_OK;
}

tg_err
dp_gem_model_path(const char *model, bool stream, char *out, size_t outlen)
{
    return dp_gem_path(model,
                       stream ? ":streamGenerateContent?alt=sse"
                              : ":generateContent",
                       out, outlen);
}

tg_err
dp_gem_embed_path(const char *model, char *out, size_t outlen)
{
    return dp_gem_path(model, ":batchEmbedContents", out, outlen);
}

/* ---- A: OpenAI request -> Gemini request -------------------------------- */

/* dp_gem_text_part appends {"text":s} unless s is empty: Gemini rejects
 * empty parts. */
static void
dp_gem_text_part(dp_jtx *tx, cJSON *parts, const char *s)
{
    if (s[0] != '\0') {
        dp_jtx_str(tx, dp_jtx_obj(tx, parts, NULL), "text", s);
    }
}

/* dp_gem_url_mime guesses an image's media type from the extension of
 * its URL path; Gemini requires one and most images are JPEG. */
static const char *
dp_gem_url_mime(const char *url)
{
    static const struct {
        const char *ext;
        const char *mime;
    } types[] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"}, {".webp", "image/webp"},
        {".gif", "image/gif"},   {".heic", "image/heic"},
        {".heif", "image/heif"},
    };
    size_t end = strcspn(url, "?#");

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i].ext);
        if (end >= n && strncasecmp(url + end - n, types[i].ext, n) == 0) {
            return types[i].mime;
        }
    }
    return "image/jpeg";
}

static tg_err
dp_gem_image_part(dp_jtx *tx, cJSON *parts, const cJSON *part,
                  const char *where)
{
    dp_jtx_image img;
    cJSON       *d;
    tg_err       rv = dp_jtx_image_url(tx, part, where, &img);

    if (rv != TG_OK) {
        return rv;
    }
    if (img.data != NULL) {
        d = dp_jtx_obj(tx, dp_jtx_obj(tx, parts, NULL), "inlineData");
        dp_jtx_str(tx, d, "mimeType", img.media);
        dp_jtx_str(tx, d, "data", img.data);
    } else {
        d = dp_jtx_obj(tx, dp_jtx_obj(tx, parts, NULL), "fileData");
        dp_jtx_str(tx, d, "mimeType", dp_gem_url_mime(img.url));
        dp_jtx_str(tx, d, "fileUri", img.url);
    }
    return TG_OK;
}

/* dp_gem_parts appends the parts for an OpenAI content value (string,
 * array of parts, or null) to parts. images: image_url parts allowed. */
static tg_err
dp_gem_parts(dp_jtx *tx, cJSON *parts, const cJSON *content, bool images,
              const char *where)
{
    static const dp_jtx_part_fns fns = {dp_gem_text_part, dp_gem_image_part};

    return dp_jtx_content(tx, parts, content, images, where, &fns);
}

/* dp_gem_append adds parts as a content of role, merged into the previous
 * content when it has the same role (Gemini wants the turns to alternate,
 * and all the responses to one turn's calls in one content). Takes parts. */
static void
dp_gem_append(dp_jtx *tx, cJSON *contents, const char *role, cJSON *parts)
{
    cJSON *last =
        cJSON_GetArrayItem(contents, cJSON_GetArraySize(contents) - 1);
    cJSON *c;

    if (parts == NULL) {
        tx->oom = true;
        return;
    }
    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return;
    }
    if (last != NULL && dp_jtx_is(dp_jtx_gets(last, "role"), role)) {
        cJSON *dst = cJSON_GetObjectItemCaseSensitive(last, "parts");
        cJSON *p;
        while ((p = cJSON_DetachItemFromArray(parts, 0)) != NULL) {
            dp_jtx_add(tx, dst, NULL, p);
        }
        cJSON_Delete(parts);
        return;
    }
    c = dp_jtx_obj(tx, contents, NULL);
    dp_jtx_str(tx, c, "role", role);
    dp_jtx_add(tx, c, "parts", parts);
}

/* dp_gem_calls appends a functionCall part per assistant tool call and
 * records id -> name in names for the tool messages that answer them. */
static tg_err
dp_gem_calls(dp_jtx *tx, cJSON *parts, const cJSON *calls, size_t i,
             cJSON *names)
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
        const char  *p;
        cJSON       *a;
        cJSON       *fc;

        snprintf(pw, sizeof(pw), "messages[%zu].tool_calls[%zu]", i, j++);
        if (id == NULL || name == NULL) {
            return dp_jtx_fail(
                tx, pw, "%s needs a string 'id' and 'function.name'.", pw);
        }
        for (p = args != NULL ? args : ""; isspace((unsigned char)*p); p++) {
        }
        a = *p == '\0' ? cJSON_CreateObject() : cJSON_Parse(p);
        if (a == NULL || !cJSON_IsObject(a)) {
            cJSON_Delete(a);
            snprintf(pw, sizeof(pw),
                     "messages[%zu].tool_calls[%zu].function.arguments", i,
                     j - 1);
            return dp_jtx_fail(tx, pw, "%s must be a JSON object.", pw);
        }
        fc = dp_jtx_obj(tx, dp_jtx_obj(tx, parts, NULL), "functionCall");
        dp_jtx_str(tx, fc, "name", name);
        dp_jtx_add(tx, fc, "args", a);
        cJSON_DeleteItemFromObjectCaseSensitive(names, id);
        dp_jtx_str(tx, names, id, name);
    }
    return TG_OK;
}

/* dp_gem_join_text appends the text of a tool message's content (a string
 * or text parts) to b. */
static tg_err
dp_gem_join_text(dp_jtx *tx, tg_buf *b, const cJSON *content,
                 const char *where)
{
    const cJSON *part;

    if (cJSON_IsString(content)) {
        return tg_buf_append(b, content->valuestring,
                             strlen(content->valuestring));
    }
    if (!dp_jtx_present(content)) {
        return TG_OK;
    }
    if (!cJSON_IsArray(content)) {
        return dp_jtx_fail(
            tx, where, "%s must be a string or an array of text parts.", where);
    }
    cJSON_ArrayForEach(part, content)
    {
        const char *t = dp_jtx_gets(part, "text");
        if (!dp_jtx_is(dp_jtx_gets(part, "type"), "text") || t == NULL) {
            return dp_jtx_fail(
                tx, where, "%s: tool results can only hold text parts.", where);
        }
        if (tg_buf_append(b, t, strlen(t)) != TG_OK) {
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

/* dp_gem_tool_response appends the functionResponse part for a role
 * "tool" message: Gemini names the function, not the call, and wants an
 * object, so JSON-object content goes as is and anything else as
 * {"content": text}. */
static tg_err
dp_gem_tool_response(dp_jtx *tx, cJSON *parts, const cJSON *m, size_t i,
                     const cJSON *names)
{
    const char *id = dp_jtx_gets(m, "tool_call_id");
    const char *name;
    char        pw[96];
    tg_buf      text;
    cJSON      *resp = NULL;
    cJSON      *fr;
    tg_err      rv;

    snprintf(pw, sizeof(pw), "messages[%zu].tool_call_id", i);
    if (id == NULL) {
        return dp_jtx_fail(tx, pw, "%s must be a string.", pw);
    }
    name = dp_jtx_gets(names, id);
    if (name == NULL) {
        return dp_jtx_fail(tx, pw,
                           "%s: '%s' does not answer any earlier assistant "
                           "tool call.",
                           pw, id);
    }
    snprintf(pw, sizeof(pw), "messages[%zu].content", i);
    tg_buf_init(&text, 0);
    if ((rv = tg_buf_append(&text, "", 0)) != TG_OK ||
        (rv = dp_gem_join_text(tx, &text, dp_jtx_get(m, "content"), pw)) !=
            TG_OK) {
        tg_buf_fini(&text);
        return rv;
    }
    resp = cJSON_Parse(text.data);
    if (!cJSON_IsObject(resp)) {
        cJSON_Delete(resp);
        if ((resp = cJSON_CreateObject()) != NULL) {
            dp_jtx_str(tx, resp, "content", text.data);
        }
    }
    tg_buf_fini(&text);
    fr = dp_jtx_obj(tx, dp_jtx_obj(tx, parts, NULL), "functionResponse");
    dp_jtx_str(tx, fr, "name", name);
    dp_jtx_add(tx, fr, "response", resp);
    return TG_OK;
}

static tg_err
dp_gem_messages(dp_jtx *tx, cJSON *root, const cJSON *messages)
{
    cJSON       *sys      = cJSON_CreateArray();
    cJSON       *names    = cJSON_CreateObject();
    cJSON       *contents = cJSON_CreateArray();
    const cJSON *m;
    size_t       i = 0;
    char         pw[96];
    tg_err       rv = TG_OK;

    if (sys == NULL || names == NULL || contents == NULL) {
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
        const char *role = dp_jtx_gets(m, "role");
        cJSON      *parts;

        snprintf(pw, sizeof(pw), "messages[%zu].content", i);
        if (role == NULL) {
            snprintf(pw, sizeof(pw), "messages[%zu].role", i);
            rv = dp_jtx_fail(tx, pw, "%s must be a string.", pw);
            goto out;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rv = dp_gem_parts(tx, sys, dp_jtx_get(m, "content"), false, pw);
        } else if (strcmp(role, "user") == 0) {
            parts = cJSON_CreateArray();
            rv    = dp_gem_parts(tx, parts, dp_jtx_get(m, "content"), true, pw);
            dp_gem_append(tx, contents, "user", parts);
        } else if (strcmp(role, "assistant") == 0) {
            parts = cJSON_CreateArray();
            rv = dp_gem_parts(tx, parts, dp_jtx_get(m, "content"), false, pw);
            if (rv == TG_OK) {
                rv = dp_gem_calls(tx, parts, dp_jtx_get(m, "tool_calls"), i,
                                  names);
            }
            dp_gem_append(tx, contents, "model", parts);
        } else if (strcmp(role, "tool") == 0) {
            parts = cJSON_CreateArray();
            rv    = dp_gem_tool_response(tx, parts, m, i, names);
            dp_gem_append(tx, contents, "user", parts);
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
    if (cJSON_GetArraySize(contents) == 0) {
        rv = dp_jtx_fail(tx, "messages",
                         "'messages' must hold at least one non-empty user "
                         "or assistant message for this model.");
        goto out;
    }
    if (cJSON_GetArraySize(sys) > 0) {
        cJSON *si = dp_jtx_obj(tx, root, "systemInstruction");
        dp_jtx_add(tx, si, "parts", sys);
        sys = NULL;
    }
    dp_jtx_add(tx, root, "contents", contents);
    contents = NULL;
out:
    cJSON_Delete(sys);
    cJSON_Delete(names);
    cJSON_Delete(contents);
    return rv;
}

/* JSON Schema keywords Gemini's OpenAPI-subset Schema rejects (listed in
 * dp_gemini.h). */
static const char *const dp_gem_schema_drop[] = {
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "examples",
    "contentEncoding",
    "contentMediaType",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "readOnly",
    "writeOnly",
    "deprecated",
    "strict",
};

/* dp_gem_schema_type rewrites "type": [T, "null"] as T plus nullable. */
static void
dp_gem_schema_type(dp_jtx *tx, cJSON *s)
{
    cJSON       *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    const cJSON *e;
    const char  *only     = NULL;
    int          nonnull  = 0;
    bool         nullable = false;

    if (!cJSON_IsArray(t)) {
        return;
    }
    cJSON_ArrayForEach(e, t)
    {
        if (cJSON_IsString(e) && strcmp(e->valuestring, "null") == 0) {
            nullable = true;
        } else if (cJSON_IsString(e)) {
            only = e->valuestring;
            nonnull++;
        }
    }
    if (nonnull != 1) {
        return; /* a real union: leave it for Gemini to judge */
    }
    cJSON_ReplaceItemInObjectCaseSensitive(s, "type", cJSON_CreateString(only));
    if (!cJSON_IsString(dp_jtx_get(s, "type"))) {
        tx->oom = true;
    }
    if (nullable) {
        cJSON_DeleteItemFromObjectCaseSensitive(s, "nullable");
        dp_jtx_add(tx, s, "nullable", cJSON_CreateTrue());
    }
}

/* dp_gem_schema_clean makes a JSON Schema (modified in place) acceptable
 * to Gemini: drops the keywords it rejects, turns a string const into a
 * one-value enum and oneOf into anyOf, keeps only the string formats it
 * knows. "$ref" cannot be honoured without inlining: an error. */
static tg_err
dp_gem_schema_clean(dp_jtx *tx, cJSON *s, const char *where, int depth)
{
    cJSON      *v;
    cJSON      *e;
    const char *fmt;
    tg_err      rv;

    if (!cJSON_IsObject(s)) {
        return TG_OK;
    }
    if (depth > 64) {
        return dp_jtx_fail(tx, where, "%s is nested too deeply.", where);
    }
    if (dp_jtx_get(s, "$ref") != NULL) {
        return dp_jtx_fail(tx, where,
                           "%s: '$ref' is not supported by this model; "
                           "inline the definitions.",
                           where);
    }
    for (size_t i = 0; i < sizeof(dp_gem_schema_drop) / sizeof(char *); i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(s, dp_gem_schema_drop[i]);
    }
    if ((v = cJSON_DetachItemFromObjectCaseSensitive(s, "const")) != NULL) {
        if (cJSON_IsString(v) && dp_jtx_get(s, "enum") == NULL) {
            cJSON *en = dp_jtx_arr(tx, s, "enum");
            dp_jtx_add(tx, en, NULL, v);
            v = NULL;
        }
        cJSON_Delete(v);
    }
    fmt = dp_jtx_gets(s, "format");
    if (fmt != NULL && dp_jtx_is(dp_jtx_gets(s, "type"), "string") &&
        strcmp(fmt, "enum") != 0 && strcmp(fmt, "date-time") != 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(s, "format");
    }
    if (dp_jtx_get(s, "anyOf") == NULL &&
        (v = cJSON_DetachItemFromObjectCaseSensitive(s, "oneOf")) != NULL) {
        dp_jtx_add(tx, s, "anyOf", v);
    }
    dp_gem_schema_type(tx, s);
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s, "properties"))
    {
        if ((rv = dp_gem_schema_clean(tx, e, where, depth + 1)) != TG_OK) {
            return rv;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (cJSON_IsObject(v)) {
        if ((rv = dp_gem_schema_clean(tx, v, where, depth + 1)) != TG_OK) {
            return rv;
        }
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s, "anyOf"))
    {
        if ((rv = dp_gem_schema_clean(tx, e, where, depth + 1)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* dp_gem_schema_add adds a cleaned copy of schema under key. */
static tg_err
dp_gem_schema_add(dp_jtx *tx, cJSON *parent, const char *key,
                  const cJSON *schema, const char *where)
{
    cJSON *copy = dp_jtx_dup(tx, parent, key, schema);

    return copy == NULL ? TG_OK : dp_gem_schema_clean(tx, copy, where, 0);
}

static tg_err
dp_gem_tools(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    const cJSON *tools  = dp_jtx_get(req, "tools");
    const cJSON *choice = dp_jtx_get(req, "tool_choice");
    const cJSON *t;
    cJSON       *decls;
    cJSON       *fcc;
    const char  *mode = NULL;
    const char  *only = NULL;
    size_t       i    = 0;
    char         pw[64];
    tg_err       rv;

    if (!dp_jtx_present(tools) ||
        (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) == 0)) {
        return TG_OK; /* tool_choice without tools means nothing */
    }
    if (!cJSON_IsArray(tools)) {
        return dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    decls = dp_jtx_arr(tx, dp_jtx_obj(tx, dp_jtx_arr(tx, root, "tools"), NULL),
                       "functionDeclarations");
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn     = dp_jtx_get(t, "function");
        const char  *name   = dp_jtx_gets(fn, "name");
        const char  *desc   = dp_jtx_gets(fn, "description");
        const cJSON *params = dp_jtx_get(fn, "parameters");
        cJSON       *o;

        snprintf(pw, sizeof(pw), "tools[%zu]", i++);
        if (!dp_jtx_is(dp_jtx_gets(t, "type"), "function") || name == NULL) {
            return dp_jtx_fail(tx, pw,
                               "%s: only tools of type 'function' with a "
                               "function.name can be sent to this model.",
                               pw);
        }
        o = dp_jtx_obj(tx, decls, NULL);
        dp_jtx_str(tx, o, "name", name);
        if (desc != NULL) {
            dp_jtx_str(tx, o, "description", desc);
        }
        /* A function without parameters has none in Gemini: an empty
         * object schema is rejected by some models. */
        if (cJSON_IsObject(params) &&
            !(cJSON_GetArraySize(dp_jtx_get(params, "properties")) == 0 &&
              dp_jtx_is(dp_jtx_gets(params, "type"), "object"))) {
            snprintf(pw, sizeof(pw), "tools[%zu].function.parameters", i - 1);
            if ((rv = dp_gem_schema_add(tx, o, "parameters", params, pw)) !=
                TG_OK) {
                return rv;
            }
        }
    }
    if (cJSON_IsString(choice)) {
        const char *c = choice->valuestring;
        mode          = strcmp(c, "auto") == 0       ? "AUTO"
                        : strcmp(c, "required") == 0 ? "ANY"
                        : strcmp(c, "none") == 0     ? "NONE"
                                                     : NULL;
        if (mode == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice' must be 'auto', 'required', "
                               "'none' or a function.");
        }
    } else if (cJSON_IsObject(choice)) {
        only = dp_jtx_gets(dp_jtx_get(choice, "function"), "name");
        if (only == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice' must name a function.");
        }
        mode = "ANY";
    } else if (dp_jtx_present(choice)) {
        return dp_jtx_fail(tx, "tool_choice",
                           "'tool_choice' must be a string or an object.");
    }
    if (mode != NULL) {
        fcc = dp_jtx_obj(tx, dp_jtx_obj(tx, root, "toolConfig"),
                         "functionCallingConfig");
        dp_jtx_str(tx, fcc, "mode", mode);
        if (only != NULL) {
            dp_jtx_str(tx, dp_jtx_arr(tx, fcc, "allowedFunctionNames"), NULL,
                       only);
        }
    }
    return TG_OK;
}

static tg_err
dp_gem_response_format(dp_jtx *tx, cJSON *gc, const cJSON *req)
{
    const cJSON *v = dp_jtx_get(req, "response_format");
    const char  *type;
    const cJSON *schema;

    if (!dp_jtx_present(v)) {
        return TG_OK;
    }
    type = dp_jtx_gets(v, "type");
    if (dp_jtx_is(type, "text")) {
        return TG_OK;
    }
    if (dp_jtx_is(type, "json_object")) {
        dp_jtx_str(tx, gc, "responseMimeType", "application/json");
        return TG_OK;
    }
    if (!dp_jtx_is(type, "json_schema")) {
        return dp_jtx_fail(tx, "response_format",
                           "'response_format' must be of type 'text', "
                           "'json_object' or 'json_schema'.");
    }
    schema = dp_jtx_get(dp_jtx_get(v, "json_schema"), "schema");
    if (dp_jtx_present(schema) && !cJSON_IsObject(schema)) {
        return dp_jtx_fail(tx, "response_format.json_schema.schema",
                           "'response_format.json_schema.schema' must be an "
                           "object.");
    }
    dp_jtx_str(tx, gc, "responseMimeType", "application/json");
    if (cJSON_IsObject(schema)) {
        return dp_gem_schema_add(tx, gc, "responseSchema", schema,
                                 "response_format.json_schema.schema");
    }
    return TG_OK;
}

/* dp_gem_generation fills generationConfig; it is left out when empty. */
static tg_err
dp_gem_generation(dp_jtx *tx, cJSON *root, const cJSON *req,
                  const dp_gem_req_opts *opts)
{
    static const struct {
        const char *openai;
        const char *gemini;
    } nums[] = {
        {"temperature", "temperature"},
        {"top_p", "topP"},
        {"seed", "seed"},
    };
    cJSON       *gc         = cJSON_CreateObject();
    int64_t      max_tokens = 0;
    const cJSON *v;
    tg_err       rv;

    if (gc == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = dp_jtx_max_tokens(tx, req, "max_tokens", &max_tokens)) != TG_OK ||
        (rv = dp_jtx_max_tokens(tx, req, "max_completion_tokens",
                                &max_tokens)) != TG_OK) {
        goto out;
    }
    if (max_tokens == 0) {
        max_tokens = opts->max_tokens_default;
    }
    if (opts->max_tokens_clamp > 0 && max_tokens > opts->max_tokens_clamp) {
        max_tokens = opts->max_tokens_clamp;
    }
    if (max_tokens > 0) {
        dp_jtx_num(tx, gc, "maxOutputTokens", (double)max_tokens);
    }
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        v = dp_jtx_get(req, nums[i].openai);
        if (!dp_jtx_present(v)) {
            continue;
        }
        if (!cJSON_IsNumber(v)) {
            rv = dp_jtx_fail(tx, nums[i].openai, "'%s' must be a number.",
                             nums[i].openai);
            goto out;
        }
        dp_jtx_dup(tx, gc, nums[i].gemini, v);
    }
    v = dp_jtx_get(req, "stop");
    if (cJSON_IsString(v)) {
        dp_jtx_str(tx, dp_jtx_arr(tx, gc, "stopSequences"), NULL,
                   v->valuestring);
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsString(e)) {
                rv = dp_jtx_fail(tx, "stop",
                                 "'stop' must be a string or an array of "
                                 "strings.");
                goto out;
            }
        }
        dp_jtx_dup(tx, gc, "stopSequences", v);
    } else if (dp_jtx_present(v) && !cJSON_IsArray(v)) {
        rv = dp_jtx_fail(tx, "stop",
                         "'stop' must be a string or an array of strings.");
        goto out;
    }
    if ((rv = dp_gem_response_format(tx, gc, req)) != TG_OK) {
        goto out;
    }
    if (gc->child != NULL) {
        dp_jtx_add(tx, root, "generationConfig", gc);
        gc = NULL;
    }
out:
    cJSON_Delete(gc);
    return rv;
}

tg_err
dp_gem_req_from_openai(const cJSON *req, const dp_gem_req_opts *opts,
                       char **out, size_t *len, char *msg, size_t msglen,
                       char *param, size_t paramlen)
{
    dp_jtx tx   = {false, msg, msglen, param, paramlen};
    cJSON    *root = cJSON_CreateObject();
    tg_err    rv;

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
    if ((rv = dp_jtx_openai_unsupported(&tx, req)) != TG_OK ||
        (rv = dp_gem_messages(&tx, root, dp_jtx_get(req, "messages"))) !=
            TG_OK ||
        (rv = dp_gem_tools(&tx, root, req)) != TG_OK ||
        (rv = dp_gem_generation(&tx, root, req, opts)) != TG_OK) {
        goto fail;
    }
    return dp_jtx_print(&tx, root, out, len);
fail:
    cJSON_Delete(root);
    return rv;
}

/* ---- B: Gemini response -> OpenAI response ------------------------------ */

tg_err
dp_gem_resp_to_openai(const char *body, size_t len,
                      const dp_gem_resp_meta *meta, char **out, size_t *outlen,
                      dp_usage_counts *usage)
{
    dp_jtx    tx    = {0};
    cJSON       *in    = cJSON_ParseWithLength(body, len);
    const cJSON *cands = dp_jtx_get(in, "candidates");
    const cJSON *cand  = cJSON_GetArrayItem(cands, 0);
    const char  *block =
        dp_jtx_gets(dp_jtx_get(in, "promptFeedback"), "blockReason");
    const char  *prefix = meta->call_prefix ? meta->call_prefix : "call_";
    const cJSON *part;
    cJSON       *root  = NULL;
    cJSON       *calls = NULL;
    cJSON       *choice;
    cJSON       *message;
    const char  *finish;
    tg_buf       text;
    bool         has_text = false;
    int          ncalls   = 0;
    dp_gem_usage u        = {0};
    tg_err       rv       = TG_EPROTO;

    tg_buf_init(&text, 0);
    if (!cJSON_IsObject(cand) && block == NULL) {
        goto out;
    }
    if ((root = cJSON_CreateObject()) == NULL ||
        (calls = cJSON_CreateArray()) == NULL ||
        tg_buf_append(&text, "", 0) != TG_OK) {
        rv = TG_ENOMEM;
        goto out;
    }
    cJSON_ArrayForEach(part, dp_jtx_get(dp_jtx_get(cand, "content"), "parts"))
    {
        const char  *t  = dp_gem_part_text(part);
        const cJSON *fc = dp_jtx_get(part, "functionCall");
        if (t != NULL) {
            has_text = true;
            if (tg_buf_append(&text, t, strlen(t)) != TG_OK) {
                rv = TG_ENOMEM;
                goto out;
            }
        } else if (cJSON_IsObject(fc)) {
            dp_gem_call_json(&tx, calls, fc, prefix, ncalls++, -1);
        }
        /* executableCode, inlineData...: no chat.completion form. */
    }
    dp_gem_usage_read(dp_jtx_get(in, "usageMetadata"), &u);
    finish = cJSON_IsObject(cand)
                 ? dp_gem_finish_reason(dp_jtx_gets(cand, "finishReason"),
                                        ncalls > 0)
                 : "content_filter";
    dp_jtx_str(&tx, root, "id", meta->id);
    dp_jtx_str(&tx, root, "object", "chat.completion");
    dp_jtx_num(&tx, root, "created", (double)meta->created);
    dp_jtx_str(&tx, root, "model", meta->model);
    choice = dp_jtx_obj(&tx, dp_jtx_arr(&tx, root, "choices"), NULL);
    dp_jtx_num(&tx, choice, "index", 0);
    message = dp_jtx_obj(&tx, choice, "message");
    dp_jtx_str(&tx, message, "role", "assistant");
    if (has_text || ncalls == 0) {
        dp_jtx_str(&tx, message, "content", text.data);
    } else {
        dp_jtx_add(&tx, message, "content", cJSON_CreateNull());
    }
    dp_jtx_add(&tx, message, "refusal", cJSON_CreateNull());
    if (ncalls > 0) {
        dp_jtx_add(&tx, message, "tool_calls", calls);
        calls = NULL;
    }
    dp_jtx_add(&tx, choice, "logprobs", cJSON_CreateNull());
    dp_jtx_str(&tx, choice, "finish_reason", finish);
    dp_gem_usage_json(&tx, root, &u);
    rv   = dp_jtx_print(&tx, root, out, outlen);
    root = NULL;
    if (rv == TG_OK && usage != NULL) {
        *usage = u.c;
    }
out:
    cJSON_Delete(calls);
    cJSON_Delete(root);
    cJSON_Delete(in);
    tg_buf_fini(&text);
    return rv;
}

/* ---- C: Gemini stream -> OpenAI chunks ---------------------------------- */

struct dp_gem_stream {
    dp_jtx_head  h;
    char        *prefix;
    bool         include_usage;
    bool         started;     /* the role chunk went out */
    bool         finish_sent; /* a finishReason was translated */
    bool         ended;
    int          ncalls; /* function calls so far */
    dp_gem_usage usage;
};

tg_err
dp_gem_stream_create(dp_gem_stream **out, const dp_gem_resp_meta *meta,
                     bool include_usage)
{
    dp_gem_stream *s = calloc(1, sizeof(*s));

    if (s == NULL ||
        dp_jtx_head_init(&s->h, meta->id, meta->model, meta->created) !=
            TG_OK ||
        (s->prefix = dp_jtx_strdup(meta->call_prefix ? meta->call_prefix
                                                     : "call_")) == NULL) {
        dp_gem_stream_destroy(s);
        return TG_ENOMEM;
    }
    s->include_usage = include_usage;
    *out             = s;
    return TG_OK;
}

void
dp_gem_stream_destroy(dp_gem_stream *s)
{
    if (s == NULL) {
        return;
    }
    dp_jtx_head_fini(&s->h);
    free(s->prefix);
    free(s);
}

bool
dp_gem_stream_ended(const dp_gem_stream *s)
{
    return s->ended;
}

void
dp_gem_stream_usage(const dp_gem_stream *s, dp_usage_counts *out)
{
    *out = s->usage.c;
}

/* dp_gem_stream_text emits a content delta, with the role for the first
 * chunk of the stream. */
static tg_err
dp_gem_stream_text(dp_gem_stream *s, const char *role, const char *text,
                   tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON    *choice = NULL;
    cJSON    *delta  = NULL;
    cJSON    *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);

    if (role != NULL) {
        dp_jtx_str(&tx, delta, "role", role);
    }
    dp_jtx_str(&tx, delta, "content", text);
    return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
}

static tg_err
dp_gem_stream_call(dp_gem_stream *s, const cJSON *fc, tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON    *choice = NULL;
    cJSON    *delta  = NULL;
    cJSON    *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);

    dp_gem_call_json(&tx, dp_jtx_arr(&tx, delta, "tool_calls"), fc, s->prefix,
                     s->ncalls, s->ncalls);
    s->ncalls++;
    return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
}

static tg_err
dp_gem_stream_finish_chunk(dp_gem_stream *s, const char *finish, tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON    *choice = NULL;
    cJSON    *delta  = NULL;
    cJSON    *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);

    s->finish_sent = true;
    return dp_jtx_chunk_emit(&tx, root, choice, finish, out);
}

static tg_err
dp_gem_stream_error(dp_gem_stream *s, const cJSON *err, tg_buf *out)
{
    tg_err rv;

    if ((rv = tg_buf_append(out, "data: ", 6)) != TG_OK ||
        (rv = dp_gem_openai_error_from_obj(err, 0, out, NULL)) != TG_OK ||
        (rv = tg_buf_append(out, "\n\n", 2)) != TG_OK) {
        return rv;
    }
    s->ended = true;
    return TG_OK;
}

/* dp_gem_stream_parts translates the parts of one event in order: runs of
 * text become one content delta, each functionCall one tool call. */
static tg_err
dp_gem_stream_parts(dp_gem_stream *s, const cJSON *parts, tg_buf *out)
{
    const cJSON *part;
    tg_buf       text;
    tg_err       rv = TG_OK;

    tg_buf_init(&text, 0);
    cJSON_ArrayForEach(part, parts)
    {
        const char  *t  = dp_gem_part_text(part);
        const cJSON *fc = dp_jtx_get(part, "functionCall");
        if (t != NULL) {
            if ((rv = tg_buf_append(&text, t, strlen(t))) != TG_OK) {
                break;
            }
        } else if (cJSON_IsObject(fc)) {
            if (text.len > 0) {
                if ((rv = dp_gem_stream_text(s, NULL, text.data, out)) !=
                    TG_OK) {
                    break;
                }
                text.len = 0;
            }
            if ((rv = dp_gem_stream_call(s, fc, out)) != TG_OK) {
                break;
            }
        }
    }
    if (rv == TG_OK && text.len > 0) {
        text.data[text.len] = '\0';
        rv                  = dp_gem_stream_text(s, NULL, text.data, out);
    }
    tg_buf_fini(&text);
    return rv;
}

static tg_err
dp_gem_stream_event(dp_gem_stream *s, const cJSON *ev, tg_buf *out)
{
    const cJSON *cand = cJSON_GetArrayItem(dp_jtx_get(ev, "candidates"), 0);
    const char  *fr   = dp_jtx_gets(cand, "finishReason");
    const char  *block =
        dp_jtx_gets(dp_jtx_get(ev, "promptFeedback"), "blockReason");
    tg_err rv;

    if (cJSON_IsObject(dp_jtx_get(ev, "error"))) {
        return dp_gem_stream_error(s, dp_jtx_get(ev, "error"), out);
    }
    dp_gem_usage_read(dp_jtx_get(ev, "usageMetadata"), &s->usage);
    if (s->finish_sent) {
        return TG_OK; /* only usage may still change */
    }
    if (!s->started) {
        if ((rv = dp_gem_stream_text(s, "assistant", "", out)) != TG_OK) {
            return rv;
        }
        s->started = true;
    }
    if ((rv = dp_gem_stream_parts(
             s, dp_jtx_get(dp_jtx_get(cand, "content"), "parts"), out)) !=
        TG_OK) {
        return rv;
    }
    if (fr != NULL && strcmp(fr, "FINISH_REASON_UNSPECIFIED") != 0) {
        return dp_gem_stream_finish_chunk(
            s, dp_gem_finish_reason(fr, s->ncalls > 0), out);
    }
    if (cand == NULL && block != NULL) {
        return dp_gem_stream_finish_chunk(s, "content_filter", out);
    }
    return TG_OK;
}

tg_err
dp_gem_stream_feed(dp_gem_stream *s, const char *data, size_t len, tg_buf *out)
{
    dp_gem_stream saved  = *s;
    size_t        before = out->len;
    cJSON        *ev;
    tg_err        rv;

    if (s->ended) {
        return TG_OK;
    }
    ev = cJSON_ParseWithLength(data, len);
    if (cJSON_IsArray(ev) && cJSON_GetArraySize(ev) == 1) {
        /* Without alt=sse Gemini wraps responses in an array. */
        cJSON *only = cJSON_DetachItemFromArray(ev, 0);
        cJSON_Delete(ev);
        ev = only;
    }
    if (!cJSON_IsObject(ev)) {
        cJSON_Delete(ev);
        return TG_EPROTO;
    }
    rv = dp_gem_stream_event(s, ev, out);
    cJSON_Delete(ev);
    if (rv != TG_OK) { /* all or nothing: no half-translated event */
        *s = saved;
        dp_gem_rollback(out, before);
    }
    return rv;
}

/* dp_gem_sse_data finds the data of one whole SSE event; several data
 * lines are joined with "\n" into scratch. Borrowed results point into ev
 * or scratch; *data is NULL when the event has none. */
static tg_err
dp_gem_sse_data(const char *ev, size_t len, tg_buf *scratch, const char **data,
                size_t *dlen)
{
    const char *p     = ev;
    const char *end   = ev + len;
    int         ndata = 0;
    tg_err      rv;

    *data = NULL;
    *dlen = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le  = eol != NULL ? eol : end;

        if (le > p && le[-1] == '\r') {
            le--;
        }
        if ((size_t)(le - p) >= 5 && memcmp(p, "data:", 5) == 0) {
            const char *v = p + 5;
            size_t      n;
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
        }
        p = eol != NULL ? eol + 1 : end;
    }
    return TG_OK;
}

tg_err
dp_gem_stream_feed_sse(dp_gem_stream *s, const char *ev, size_t len,
                       tg_buf *out)
{
    const char *data;
    size_t      dlen;
    tg_buf      scratch;
    tg_err      rv;

    tg_buf_init(&scratch, 0);
    rv = dp_gem_sse_data(ev, len, &scratch, &data, &dlen);
    if (rv == TG_OK && data != NULL) {
        rv = dp_gem_stream_feed(s, data, dlen, out);
    }
    tg_buf_fini(&scratch);
    return rv;
}

tg_err
dp_gem_stream_finish(dp_gem_stream *s, tg_buf *out)
{
    size_t before = out->len;
    tg_err rv;

    if (s->ended) {
        return TG_OK;
    }
    if (!s->finish_sent) {
        rv = tg_buf_append(out, "data: ", 6);
        if (rv == TG_OK) {
            rv = dp_openai_error(out,
                                 "The upstream stream ended before the "
                                 "response was complete.",
                                 "server_error", NULL,
                                 "upstream_stream_incomplete");
        }
        if (rv == TG_OK) {
            rv = tg_buf_append(out, "\n\n", 2);
        }
    } else {
        rv = TG_OK;
        if (s->include_usage) {
            dp_jtx tx   = {0};
            cJSON    *root = dp_jtx_head_chunk(&tx, &s->h, false, NULL, NULL);
            dp_gem_usage_json(&tx, root, &s->usage);
            rv = dp_jtx_emit(&tx, root, "data: ", out);
        }
        if (rv == TG_OK) {
            rv = tg_buf_append(out, "data: [DONE]\n\n", 14);
        }
    }
    if (rv != TG_OK) {
        dp_gem_rollback(out, before);
        return rv;
    }
    s->ended = true;
    return TG_OK;
}
