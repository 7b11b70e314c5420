/* dp_openai.c - see dp_openai.h. */
#include "dp_openai.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dp_sse.h"
#include "tg_json.h"
#include "tg_jstrict.h"

static int64_t
dp_openai_text_bytes(const cJSON *content)
{
    int64_t n = 0;

    if (cJSON_IsString(content)) {
        return (int64_t)strlen(content->valuestring);
    }
    if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, content)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) {
                n += (int64_t)strlen(t->valuestring);
            }
        }
    }
    return n;
}

int64_t
dp_openai_estimate_tokens(const cJSON *messages, int64_t *bytes)
{
    const cJSON *m;
    int64_t      tokens = 0;
    int64_t      total  = 0;

    cJSON_ArrayForEach(m, messages)
    {
        int64_t b = dp_openai_text_bytes(
            cJSON_GetObjectItemCaseSensitive(m, "content"));
        total += b;
        tokens += 4 + (b + 3) / 4;
    }
    if (bytes != NULL) {
        *bytes = total;
    }
    return tokens;
}

static tg_err
dp_chat_bad(char *msg, size_t msglen, char *param, size_t paramlen,
            const char *p, const char *text)
{
    snprintf(msg, msglen, "%s", text);
    snprintf(param, paramlen, "%s", p);
    return TG_EINVAL;
}

/* dp_chat_int reads an optional positive integer field. */
static tg_err
dp_chat_int(const cJSON *root, const char *key, int64_t *out, char *msg,
            size_t msglen, char *param, size_t paramlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    double       d;

    if (v == NULL || cJSON_IsNull(v)) {
        return TG_OK;
    }
    d = cJSON_GetNumberValue(v);
    if (!cJSON_IsNumber(v) || d != floor(d) || d < 1 || d > 1e9) {
        snprintf(msg, msglen, "'%s' must be a positive integer", key);
        snprintf(param, paramlen, "%s", key);
        return TG_EINVAL;
    }
    *out = (int64_t)d;
    return TG_OK;
}

/* Fields that would let a client choose where or how a request goes
 * upstream: never accepted (SSRF, credential injection). */
static const char *const dp_chat_forbidden[] = {"api_base",
                                                "base_url",
                                                "api_key",
                                                "api_version",
                                                "azure_endpoint",
                                                "azure_deployment",
                                                "custom_llm_provider",
                                                "extra_headers",
                                                "headers",
                                                "proxy",
                                                "url",
                                                "endpoint",
                                                "metadata_url",
                                                NULL};

/* dp_text_bytes sums the bytes of the strings in v (a string or nested
 * arrays of strings); token arrays count 4 bytes a token. */
static int64_t
dp_text_bytes(const cJSON *v)
{
    int64_t n = 0;

    if (cJSON_IsString(v)) {
        return (int64_t)strlen(v->valuestring);
    }
    if (cJSON_IsNumber(v)) {
        return 4;
    }
    for (const cJSON *e = cJSON_IsArray(v) ? v->child : NULL; e != NULL;
         e              = e->next) {
        n += dp_text_bytes(e);
    }
    return n;
}

/* dp_chat_input checks embeddings' "input" or completions' "prompt": a
 * string, or a non-empty array of strings (or token ids). */
static tg_err
dp_chat_input(dp_chat_req *r, const char *key, char *msg, size_t msglen,
              char *param, size_t paramlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, key);

    if (v == NULL) {
        snprintf(msg, msglen, "Missing required parameter: '%s'.", key);
        snprintf(param, paramlen, "%s", key);
        return TG_EINVAL;
    }
    if (!cJSON_IsString(v) &&
        !(cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0)) {
        snprintf(msg, msglen,
                 "'%s' must be a string or a non-empty array of strings.", key);
        snprintf(param, paramlen, "%s", key);
        return TG_EINVAL;
    }
    r->prompt_bytes           = dp_text_bytes(v);
    r->prompt_tokens_estimate = (r->prompt_bytes + 3) / 4 + 1;
    return TG_OK;
}

bool
dp_req_forbidden(const cJSON *root, char *msg, size_t msglen, char *param,
                 size_t paramlen)
{
    /* At the top level and inside "extra_body" (which some SDKs merge into
     * the body), in any letter case: a provider may match names loosely. */
    const cJSON *extra = NULL;
    const cJSON *c;

    for (c = root != NULL ? root->child : NULL; c != NULL; c = c->next) {
        if (c->string != NULL && strcasecmp(c->string, "extra_body") == 0) {
            extra = c;
        }
    }
    for (int level = 0; level < 2; level++) {
        const cJSON *obj = level == 0 ? root : extra;
        if (obj == NULL || !cJSON_IsObject(obj)) {
            continue;
        }
        for (c = obj->child; c != NULL; c = c->next) {
            for (size_t k = 0;
                 c->string != NULL && dp_chat_forbidden[k] != NULL; k++) {
                if (strcasecmp(c->string, dp_chat_forbidden[k]) != 0) {
                    continue;
                }
                snprintf(param, paramlen, "%s%s", level ? "extra_body." : "",
                         dp_chat_forbidden[k]);
                snprintf(msg, msglen,
                         "'%s' is not accepted: where a request goes "
                         "upstream and with which credentials comes only from "
                         "the gateway's configuration.",
                         dp_chat_forbidden[k]);
                return true;
            }
        }
    }
    return false;
}

tg_err
dp_chat_parse(const char *body, size_t len, dp_chat_req *r, char *msg,
              size_t msglen, char *param, size_t paramlen)
{
    return dp_req_parse(TG_EP_CHAT_COMPLETIONS, body, len, r, msg, msglen,
                        param, paramlen);
}

/* dp_req_json parses body into r->root: one strict JSON text, the same
 * reading for the policy and the provider (duplicate names, bytes after
 * the value, NUL escapes and invalid UTF-8 are refused whole, as the body
 * may go upstream byte for byte). */
static tg_err
dp_req_json(const char *body, size_t len, dp_chat_req *r, char *msg,
            size_t msglen, char *param, size_t paramlen)
{
    const char *end = NULL;
    char        why[256];
    int         line;
    int         col;
    tg_err      rv;

    r->root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (r->root == NULL) {
        size_t off = end != NULL && end >= body ? (size_t)(end - body) : 0;
        tg_json_text_pos(body, off, &line, &col);
        snprintf(msg, msglen,
                 "We could not parse the JSON body of your request: invalid "
                 "JSON at line %d, column %d (byte %zu).",
                 line, col, off);
        param[0] = '\0';
        return TG_EINVAL;
    }
    rv = tg_jstrict_check(body, len, param, paramlen, why, sizeof(why));
    if (rv != TG_OK) {
        snprintf(msg, msglen,
                 "We could not accept the JSON body of your request: "
                 "%s%s%s%s.",
                 why, param[0] != '\0' ? " (in " : "", param,
                 param[0] != '\0' ? ")" : "");
        dp_chat_fini(r);
        return rv == TG_ENOMEM ? TG_ENOMEM : TG_EPROTO;
    }
    return TG_OK;
}

/* dp_req_model checks the body is an object naming a model, and no
 * upstream or credential. */
static tg_err
dp_req_model(dp_chat_req *r, char *msg, size_t msglen, char *param,
             size_t paramlen)
{
    const cJSON *v;

    if (!cJSON_IsObject(r->root)) {
        return dp_chat_bad(msg, msglen, param, paramlen, "",
                           "The request body must be a JSON object.");
    }
    v = cJSON_GetObjectItemCaseSensitive(r->root, "model");
    if (v == NULL) {
        return dp_chat_bad(msg, msglen, param, paramlen, "model",
                           "Missing required parameter: 'model'.");
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' ||
        strlen(v->valuestring) >= sizeof(r->model)) {
        return dp_chat_bad(msg, msglen, param, paramlen, "model",
                           "'model' must be a non-empty string of at most "
                           "127 characters.");
    }
    snprintf(r->model, sizeof(r->model), "%s", v->valuestring);
    return dp_req_forbidden(r->root, msg, msglen, param, paramlen) ? TG_EINVAL
                                                                   : TG_OK;
}

/* dp_chat_messages checks "messages" and estimates the prompt from it. */
static tg_err
dp_chat_messages(dp_chat_req *r, char *msg, size_t msglen, char *param,
                 size_t paramlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, "messages");
    const cJSON *m;
    size_t       i = 0;

    if (v == NULL) {
        return dp_chat_bad(msg, msglen, param, paramlen, "messages",
                           "Missing required parameter: 'messages'.");
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
        return dp_chat_bad(msg, msglen, param, paramlen, "messages",
                           "'messages' must be a non-empty array.");
    }
    cJSON_ArrayForEach(m, v)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            snprintf(param, paramlen, "messages[%zu].role", i);
            snprintf(msg, msglen,
                     "Each message must be an object with a string 'role' "
                     "(messages[%zu] is not).",
                     i);
            return TG_EINVAL;
        }
        i++;
    }
    r->prompt_tokens_estimate = dp_openai_estimate_tokens(v, &r->prompt_bytes);
    return TG_OK;
}

/* dp_req_stream reads "stream" and "stream_options". */
static tg_err
dp_req_stream(tg_endpoint ep, dp_chat_req *r, char *msg, size_t msglen,
              char *param, size_t paramlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, "stream");

    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) {
            return dp_chat_bad(msg, msglen, param, paramlen, "stream",
                               "'stream' must be true or false.");
        }
        r->stream = cJSON_IsTrue(v);
    }
    if (r->stream && ep == TG_EP_EMBEDDINGS) {
        return dp_chat_bad(msg, msglen, param, paramlen, "stream",
                           "Embeddings do not stream; remove 'stream'.");
    }
    v = cJSON_GetObjectItemCaseSensitive(r->root, "stream_options");
    r->has_stream_options = v != NULL;
    if (v != NULL && !cJSON_IsNull(v)) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(v, "include_usage");
        if (!cJSON_IsObject(v) || (iu != NULL && !cJSON_IsBool(iu))) {
            return dp_chat_bad(msg, msglen, param, paramlen, "stream_options",
                               "'stream_options' must be an object; "
                               "'include_usage' must be true or false.");
        }
        r->include_usage = cJSON_IsTrue(iu);
    }
    return TG_OK;
}

/* dp_req_limits reads max_tokens (or max_completion_tokens) and user. */
static tg_err
dp_req_limits(dp_chat_req *r, char *msg, size_t msglen, char *param,
              size_t paramlen)
{
    const cJSON *v;
    tg_err       rv;

    if ((rv = dp_chat_int(r->root, "max_tokens", &r->max_tokens, msg, msglen,
                          param, paramlen)) != TG_OK ||
        (rv = dp_chat_int(r->root, "max_completion_tokens", &r->max_tokens, msg,
                          msglen, param, paramlen)) != TG_OK) {
        return rv;
    }
    v = cJSON_GetObjectItemCaseSensitive(r->root, "user");
    if (v != NULL) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(r->user)) {
            return dp_chat_bad(msg, msglen, param, paramlen, "user",
                               "'user' must be a string of at most 127 "
                               "characters.");
        }
        snprintf(r->user, sizeof(r->user), "%s", v->valuestring);
    }
    return TG_OK;
}

tg_err
dp_req_parse(tg_endpoint ep, const char *body, size_t len, dp_chat_req *r,
             char *msg, size_t msglen, char *param, size_t paramlen)
{
    tg_err rv;

    memset(r, 0, sizeof(*r));
    if ((rv = dp_req_json(body, len, r, msg, msglen, param, paramlen)) !=
        TG_OK) {
        return rv;
    }
    if ((rv = dp_req_model(r, msg, msglen, param, paramlen)) != TG_OK) {
        goto fail;
    }
    if (ep == TG_EP_EMBEDDINGS || ep == TG_EP_COMPLETIONS) {
        rv = dp_chat_input(r, ep == TG_EP_EMBEDDINGS ? "input" : "prompt", msg,
                           msglen, param, paramlen);
    } else {
        rv = dp_chat_messages(r, msg, msglen, param, paramlen);
    }
    if (rv != TG_OK ||
        (rv = dp_req_stream(ep, r, msg, msglen, param, paramlen)) != TG_OK ||
        (rv = dp_req_limits(r, msg, msglen, param, paramlen)) != TG_OK) {
        goto fail;
    }
    return TG_OK;
fail:
    dp_chat_fini(r);
    return rv;
}

void
dp_chat_fini(dp_chat_req *r)
{
    cJSON_Delete(r->root);
    r->root = NULL;
}

static tg_err
dp_chat_set(cJSON *obj, const char *key, cJSON *val)
{
    if (val == NULL) {
        return TG_ENOMEM;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL) {
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val)
                   ? TG_OK
                   : TG_ENOMEM;
    }
    return cJSON_AddItemToObject(obj, key, val) ? TG_OK : TG_ENOMEM;
}

tg_err
dp_chat_upstream_body(dp_chat_req *r, const char *upstream_model, int64_t clamp,
                      bool stream_options, char **out, size_t *len)
{
    tg_err rv;

    if ((rv = dp_chat_set(r->root, "model",
                          cJSON_CreateString(upstream_model))) != TG_OK) {
        return rv;
    }
    if (clamp > 0 && (r->max_tokens == 0 || r->max_tokens > clamp)) {
        const char *key = cJSON_GetObjectItemCaseSensitive(
                              r->root, "max_completion_tokens") != NULL
                              ? "max_completion_tokens"
                              : "max_tokens";
        if ((rv = dp_chat_set(r->root, key,
                              cJSON_CreateNumber((double)clamp))) != TG_OK) {
            return rv;
        }
    }
    if (!stream_options) {
        cJSON_DeleteItemFromObjectCaseSensitive(r->root, "stream_options");
    } else if (r->stream) {
        cJSON *so = cJSON_GetObjectItemCaseSensitive(r->root, "stream_options");
        if (!cJSON_IsObject(so)) {
            if ((rv = dp_chat_set(r->root, "stream_options",
                                  cJSON_CreateObject())) != TG_OK) {
                return rv;
            }
            so = cJSON_GetObjectItemCaseSensitive(r->root, "stream_options");
        }
        if ((rv = dp_chat_set(so, "include_usage", cJSON_CreateTrue())) !=
            TG_OK) {
            return rv;
        }
    }
    if ((*out = cJSON_PrintUnformatted(r->root)) == NULL) {
        return TG_ENOMEM;
    }
    *len = strlen(*out);
    return TG_OK;
}

static void
dp_openai_usage_obj(const cJSON *u, dp_usage_counts *out)
{
    const cJSON *v;
    const cJSON *det;

    if (!cJSON_IsObject(u)) {
        return;
    }
    out->found = true;
    /* A count that is not a whole number up to DP_TOKENS_MAX is ignored
     * (the estimate stands), whatever the provider sent. */
    v = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    (void)tg_json_whole(v, 0, DP_TOKENS_MAX, &out->prompt_tokens);
    v = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    (void)tg_json_whole(v, 0, DP_TOKENS_MAX, &out->completion_tokens);
    det = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    v   = cJSON_GetObjectItemCaseSensitive(det, "cached_tokens");
    (void)tg_json_whole(v, 0, DP_TOKENS_MAX, &out->cached_tokens);
}

void
dp_openai_usage(const char *body, size_t len, dp_usage_counts *out)
{
    cJSON *root = cJSON_ParseWithLength(body, len);

    memset(out, 0, sizeof(*out));
    if (root != NULL) {
        dp_openai_usage_obj(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                            out);
        cJSON_Delete(root);
    }
}

static bool
dp_openai_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* dp_openai_member finds a member "name" in p[0..len) whose value starts
 * with first, with JSON whitespace around the colon allowed (Python's
 * json.dumps writes "usage": {...}). Returns the value's first byte or
 * NULL. A heuristic like the memmem it replaces: it does not parse. */
static const char *
dp_openai_member(const char *p, size_t len, const char *name, char first)
{
    const char *end = p + len;
    size_t      n   = strlen(name);

    while (p < end && (p = memmem(p, (size_t)(end - p), name, n)) != NULL) {
        const char *v = p + n;
        while (v < end && dp_openai_ws(*v)) {
            v++;
        }
        if (v < end && *v == ':') {
            v++;
            while (v < end && dp_openai_ws(*v)) {
                v++;
            }
            if (v < end && *v == first) {
                return v;
            }
        }
        p += n;
    }
    return NULL;
}

void
dp_openai_chunk_inspect(const char *data, size_t len, dp_sse_info *out)
{
    const char *p;

    memset(out, 0, sizeof(*out));
    while (len > 0 && *data == ' ') {
        data++;
        len--;
    }
    if (len >= 6 && memcmp(data, "[DONE]", 6) == 0) {
        out->done = true;
        return;
    }
    /* Most chunks carry one content delta; only parse JSON when a usage
     * object is there, which keeps the per-chunk cost to a few scans. */
    p = dp_openai_member(data, len, "\"content\"", '"');
    if (p != NULL && p + 1 < data + len && p[1] != '"') {
        out->has_content = true;
    } else if (dp_openai_member(data, len, "\"tool_calls\"", '[') != NULL) {
        out->has_content = true;
    }
    if (dp_openai_member(data, len, "\"usage\"", '{') != NULL) {
        cJSON *root = cJSON_ParseWithLength(data, len);
        if (root != NULL) {
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(root, "choices");
            dp_openai_usage_obj(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                                &out->usage);
            out->usage_only = cJSON_IsArray(ch) && cJSON_GetArraySize(ch) == 0;
            cJSON_Delete(root);
        }
    }
}

void
dp_openai_sse_inspect(const char *ev, size_t len, dp_sse_info *out)
{
    dp_sse_fields f;

    memset(out, 0, sizeof(*out));
    if (dp_sse_read(ev, len, &f) == TG_OK && f.data != NULL) {
        dp_openai_chunk_inspect(f.data, f.len, out);
    }
    dp_sse_fields_fini(&f);
}

tg_err
dp_openai_cut_event(tg_buf *out)
{
    size_t mark = out->len;
    tg_err rv   = dp_sse_open(out, NULL);

    if (rv == TG_OK) {
        rv =
            dp_openai_error(out,
                            "The upstream stream ended before the response "
                            "was complete.",
                            "server_error", NULL, "upstream_stream_incomplete");
    }
    return dp_sse_close(out, mark, rv);
}

tg_err
dp_openai_error(tg_buf *b, const char *message, const char *type,
                const char *param, const char *code)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err  = cJSON_AddObjectToObject(root, "error");
    char  *txt;
    tg_err rv;

    if (root == NULL || err == NULL) {
        cJSON_Delete(root);
        return TG_ENOMEM;
    }
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddStringToObject(err, "type", type);
    if (param != NULL && param[0] != '\0') {
        cJSON_AddStringToObject(err, "param", param);
    } else {
        cJSON_AddNullToObject(err, "param");
    }
    if (code != NULL && code[0] != '\0') {
        cJSON_AddStringToObject(err, "code", code);
    } else {
        cJSON_AddNullToObject(err, "code");
    }
    txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (txt == NULL) {
        return TG_ENOMEM;
    }
    rv = tg_buf_append(b, txt, strlen(txt));
    cJSON_free(txt);
    return rv;
}

void
dp_openai_error_message(const char *body, size_t len, char *out, size_t outlen)
{
    cJSON       *root = cJSON_ParseWithLength(body, len);
    const cJSON *m;

    out[0] = '\0';
    if (root == NULL) {
        return;
    }
    m = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "error"), "message");
    if (cJSON_IsString(m)) {
        snprintf(out, outlen, "%s", m->valuestring);
    }
    cJSON_Delete(root);
}
