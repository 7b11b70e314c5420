/* dp_gemini.c - an OpenAI client at Gemini: the URL path and the request
 * in Gemini's format (A), and dp_gem_ops, the table that runs an attempt
 * (see dp_gemini.h); the answer's translation is in dp_gemini_reply.c. */
#include "dp_gemini.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dp_jtx.h"
#include "dp_provider_int.h"

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
    return dp_gem_path(
        model, stream ? ":streamGenerateContent?alt=sse" : ":generateContent",
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

/* Where dp_gem_call puts the functionCall parts of one message. */
typedef struct dp_gem_calls_to {
    cJSON *parts;
    cJSON *names; /* call id -> function name */
} dp_gem_calls_to;

/* dp_gem_call appends the functionCall part of one assistant tool call
 * and records id -> name in names for the tool messages that answer it. */
static void
dp_gem_call(dp_jtx *tx, void *arg, const char *id, const char *name,
            cJSON *args)
{
    dp_gem_calls_to *to = arg;
    cJSON *fc = dp_jtx_obj(tx, dp_jtx_obj(tx, to->parts, NULL), "functionCall");

    dp_jtx_str(tx, fc, "name", name);
    dp_jtx_add(tx, fc, "args", args);
    cJSON_DeleteItemFromObjectCaseSensitive(to->names, id);
    dp_jtx_str(tx, to->names, id, name);
}

/* dp_gem_join_text appends the text of a tool message's content (a string
 * or text parts) to b. */
static tg_err
dp_gem_join_text(dp_jtx *tx, tg_buf *b, const cJSON *content, const char *where)
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
            dp_jtx_append(tx, contents, "user", "parts", parts);
        } else if (strcmp(role, "assistant") == 0) {
            parts = cJSON_CreateArray();
            rv = dp_gem_parts(tx, parts, dp_jtx_get(m, "content"), false, pw);
            if (rv == TG_OK) {
                dp_gem_calls_to to = {parts, names};
                rv = dp_jtx_calls(tx, dp_jtx_get(m, "tool_calls"), i,
                                  dp_gem_call, &to);
            }
            dp_jtx_append(tx, contents, "model", "parts", parts);
        } else if (strcmp(role, "tool") == 0) {
            parts = cJSON_CreateArray();
            rv    = dp_gem_tool_response(tx, parts, m, i, names);
            dp_jtx_append(tx, contents, "user", "parts", parts);
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
    if ((rv = dp_jtx_stop(tx, req, gc, "stopSequences")) != TG_OK ||
        (rv = dp_gem_response_format(tx, gc, req)) != TG_OK) {
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
    dp_jtx tx = {false, msg, msglen, param, paramlen};
    cJSON *root;
    tg_err rv;

    if ((root = dp_jtx_request(&tx, req, &rv)) == NULL) {
        return rv;
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

/* ---- dp_gem_ops ---------------------------------------------------------- */

static tg_err
dp_gem_prepare(dp_call *c, int64_t clamp, char *msg, size_t msglen, char *param,
               size_t paramlen)
{
    const tg_deployment *d  = c->up->dep;
    const dp_client_req *cr = c->cr;
    dp_gem_req_opts      o  = {0, clamp};
    char                 path[512];
    tg_err               rv;

    rv = cr->ep == TG_EP_EMBEDDINGS
             ? dp_gem_embed_path(d->upstream_model, path, sizeof(path))
             : dp_gem_model_path(d->upstream_model, c->stream, path,
                                 sizeof(path));
    if (rv != TG_OK ||
        (rv = dp_call_url(c, "%s%s", c->up->base, path)) != TG_OK) {
        return rv;
    }
    if (cr->ep == TG_EP_EMBEDDINGS) {
        return dp_gem_embed_req_from_openai(cr->chat->root, d->upstream_model,
                                            &c->body, &c->len, msg, msglen,
                                            param, paramlen);
    }
    return dp_gem_req_from_openai(cr->chat->root, &o, &c->body, &c->len, msg,
                                  msglen, param, paramlen);
}

/* dp_gem_meta: the id, model and time of the OpenAI reply. */
static dp_gem_resp_meta
dp_gem_meta(const dp_call *c)
{
    dp_gem_resp_meta m = {c->oai_id, c->cr->chat->model, (int64_t)time(NULL),
                          NULL};

    return m;
}

static tg_err
dp_gem_stream_start(const dp_call *c, bool include_usage, void **st)
{
    dp_gem_resp_meta m  = dp_gem_meta(c);
    dp_gem_stream   *s  = NULL;
    tg_err           rv = dp_gem_stream_create(&s, &m, include_usage);

    *st = s;
    return rv;
}

static tg_err
dp_gem_stream_event(void *st, const char *ev, size_t len, tg_buf *out,
                    dp_emit *em)
{
    tg_err rv = dp_gem_stream_feed_sse(st, ev, len, out);

    dp_gem_stream_emitted(st, em);
    return rv;
}

static tg_err
dp_gem_stream_end(void *st, tg_buf *out, dp_emit *em)
{
    tg_err rv = dp_gem_stream_finish(st, out);

    dp_gem_stream_emitted(st, em);
    return rv;
}

static void
dp_gem_stream_free(void *st)
{
    dp_gem_stream_destroy(st);
}

/* dp_gem_embed_meta_of: what an embeddings reply must say, from the
 * request: the encoding the client asked for ("base64" is the openai
 * SDKs' default), how many inputs, and the token estimate (Gemini reports
 * no token counts for embeddings: the worker meters the estimate). */
static dp_gem_embed_meta
dp_gem_embed_meta_of(const dp_client_req *cr)
{
    const cJSON      *root = cr->chat->root;
    const cJSON      *f    = dp_jtx_get(root, "encoding_format");
    const cJSON      *in   = dp_jtx_get(root, "input");
    dp_gem_embed_meta m    = {cr->chat->model,
                              cJSON_IsString(f) &&
                                  strcmp(f->valuestring, "base64") == 0,
                           cJSON_IsArray(in) ? cJSON_GetArraySize(in) : 1,
                              cr->chat->prompt_tokens_estimate};

    return m;
}

static tg_err
dp_gem_body(const dp_call *c, const char *body, size_t len, tg_buf *out,
            dp_usage_counts *usage)
{
    char  *tmp  = NULL;
    size_t tlen = 0;
    tg_err rv;

    if (c->cr->ep == TG_EP_EMBEDDINGS) {
        dp_gem_embed_meta em = dp_gem_embed_meta_of(c->cr);
        rv = dp_gem_embed_resp_to_openai(body, len, &em, &tmp, &tlen);
    } else {
        dp_gem_resp_meta m = dp_gem_meta(c);
        rv = dp_gem_resp_to_openai(body, len, &m, &tmp, &tlen, usage);
    }
    return dp_jtx_take(out, tmp, tlen, rv);
}

static tg_err
dp_gem_error(const dp_call *c, int status, const char *body, size_t len,
             tg_buf *oai, int *out_status)
{
    (void)c;
    return dp_gem_error_to_openai(status, body, len, oai, out_status);
}

const dp_provider_ops dp_gem_ops = {
    .name         = "gemini",
    .completions  = false,
    .embeddings   = true,
    .prepare      = dp_gem_prepare,
    .stream_start = dp_gem_stream_start,
    .stream_event = dp_gem_stream_event,
    .stream_end   = dp_gem_stream_end,
    .stream_free  = dp_gem_stream_free,
    .body         = dp_gem_body,
    .error        = dp_gem_error,
    .error_body   = dp_call_error_oai,
};
