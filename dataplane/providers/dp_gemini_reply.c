/* dp_gemini_reply.c - Gemini's answer for an OpenAI client: the reply
 * (B), the stream (C) and errors, in OpenAI's format (see dp_gemini.h). */
#include "dp_gemini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_jtx.h"
#include "dp_sse.h"

/* ---- small helpers ------------------------------------------------------ */

/* dp_gem_count reads a non-negative token count; 0 if absent. */
static int64_t
dp_gem_count(const cJSON *o, const char *key)
{
    int64_t n = 0;

    (void)dp_jtx_count(o, key, &n);
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
dp_gem_call_json(dp_jtx *tx, cJSON *parent, const cJSON *fc, const char *prefix,
                 int n, int index)
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

    if (dp_jtx_icontains(message, "API key not valid")) {
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
    if (status == 400 && dp_jtx_icontains(message, "token") &&
        dp_jtx_icontains(message, "exceed")) {
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

/* ---- B: Gemini response -> OpenAI response ------------------------------ */

tg_err
dp_gem_resp_to_openai(const char *body, size_t len,
                      const dp_gem_resp_meta *meta, char **out, size_t *outlen,
                      dp_usage_counts *usage)
{
    dp_jtx       tx    = {0};
    cJSON       *in    = cJSON_ParseWithLength(body, len);
    const cJSON *cands = dp_jtx_get(in, "candidates");
    const cJSON *cand  = cJSON_GetArrayItem(cands, 0);
    const char  *block =
        dp_jtx_gets(dp_jtx_get(in, "promptFeedback"), "blockReason");
    const char  *prefix = meta->call_prefix ? meta->call_prefix : "call_";
    const cJSON *part;
    cJSON       *root  = NULL;
    cJSON       *calls = NULL;
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
    dp_jtx_completion(&tx, root, meta->id, meta->created, meta->model,
                      text.data, has_text, calls, finish);
    calls = NULL;
    dp_jtx_usage(&tx, root, &u.c, u.thoughts);
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
    int          ncalls;  /* function calls so far */
    int          content; /* content chunks the last feed wrote */
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

void
dp_gem_stream_emitted(const dp_gem_stream *s, dp_emit *out)
{
    out->content = s->content;
    out->usage   = s->usage.c;
}

/* dp_gem_stream_text emits a content delta, with the role for the first
 * chunk of the stream. */
static tg_err
dp_gem_stream_text(dp_gem_stream *s, const char *role, const char *text,
                   tg_buf *out)
{
    return dp_jtx_text_chunk(&s->h, role, text, out);
}

static tg_err
dp_gem_stream_call(dp_gem_stream *s, const cJSON *fc, tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON *choice = NULL;
    cJSON *delta  = NULL;
    cJSON *root   = dp_jtx_head_chunk(&tx, &s->h, true, &choice, &delta);

    dp_gem_call_json(&tx, dp_jtx_arr(&tx, delta, "tool_calls"), fc, s->prefix,
                     s->ncalls, s->ncalls);
    s->ncalls++;
    return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
}

static tg_err
dp_gem_stream_finish_chunk(dp_gem_stream *s, const char *finish, tg_buf *out)
{
    s->finish_sent = true;
    return dp_jtx_finish_chunk(&s->h, finish, out);
}

static tg_err
dp_gem_stream_error(dp_gem_stream *s, const cJSON *err, tg_buf *out)
{
    size_t mark = out->len;
    tg_err rv   = dp_sse_open(out, NULL);

    if (rv == TG_OK) {
        rv = dp_gem_openai_error_from_obj(err, 0, out, NULL);
    }
    if ((rv = dp_sse_close(out, mark, rv)) == TG_OK) {
        s->ended = true;
    }
    return rv;
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
                s->content++;
                text.len = 0;
            }
            if ((rv = dp_gem_stream_call(s, fc, out)) != TG_OK) {
                break;
            }
            s->content++;
        }
    }
    if (rv == TG_OK && text.len > 0) {
        text.data[text.len] = '\0';
        if ((rv = dp_gem_stream_text(s, NULL, text.data, out)) == TG_OK) {
            s->content++;
        }
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
    dp_gem_stream saved;
    size_t        before = out->len;
    cJSON        *ev;
    tg_err        rv;

    s->content = 0;
    saved      = *s;
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
        dp_sse_undo(out, before);
    }
    return rv;
}

/* dp_gem_stream_data is dp_gem_stream_feed for dp_sse_dispatch. */
static tg_err
dp_gem_stream_data(void *s, const char *event, const char *data, size_t len,
                   tg_buf *out)
{
    (void)event;
    return dp_gem_stream_feed(s, data, len, out);
}

tg_err
dp_gem_stream_feed_sse(dp_gem_stream *s, const char *ev, size_t len,
                       tg_buf *out)
{
    return dp_sse_dispatch(ev, len, dp_gem_stream_data, s, out);
}

tg_err
dp_gem_stream_finish(dp_gem_stream *s, tg_buf *out)
{
    tg_err rv;

    s->content = 0;
    if (s->ended) {
        return TG_OK;
    }
    rv = dp_jtx_stream_end(&s->h, s->finish_sent, s->include_usage, &s->usage.c,
                           s->usage.thoughts, out);
    if (rv == TG_OK) {
        s->ended = true;
    }
    return rv;
}
