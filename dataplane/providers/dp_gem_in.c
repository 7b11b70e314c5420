/* dp_gem_in.c - answers to a Gemini client: an OpenAI chat.completion,
 * chat stream or error rendered in Gemini's shape (see dp_gem_in.h). */
#include "dp_gem_in.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dp_jtx.h"
#include "dp_sse.h"

#define DP_GEMIN_TOOLS_MAX 64

/* ---- pieces both answers share ---------------------------------------- */

/* dp_gemin_finish names Gemini's finishReason for an OpenAI one. */
static const char *
dp_gemin_finish(const char *fr)
{
    if (fr == NULL) {
        return "STOP";
    }
    if (strcmp(fr, "length") == 0) {
        return "MAX_TOKENS";
    }
    if (strcmp(fr, "content_filter") == 0) {
        return "SAFETY";
    }
    return "STOP"; /* stop, tool_calls (Gemini says STOP for calls too) */
}

/* dp_gemin_usage adds usageMetadata from an OpenAI usage object. */
static void
dp_gemin_usage(dp_jtx *tx, cJSON *root, const cJSON *u)
{
    int64_t p = 0, c = 0, cached = 0;
    cJSON  *um;

    if (!cJSON_IsObject(u)) {
        return;
    }
    (void)dp_jtx_count(u, "prompt_tokens", &p);
    (void)dp_jtx_count(u, "completion_tokens", &c);
    (void)dp_jtx_count(dp_jtx_get(u, "prompt_tokens_details"), "cached_tokens",
                       &cached);
    um = dp_jtx_obj(tx, root, "usageMetadata");
    dp_jtx_num(tx, um, "promptTokenCount", (double)p);
    dp_jtx_num(tx, um, "candidatesTokenCount", (double)c);
    dp_jtx_num(tx, um, "totalTokenCount", (double)(p + c));
    if (cached > 0) {
        dp_jtx_num(tx, um, "cachedContentTokenCount", (double)cached);
    }
}

/* dp_gemin_candidate starts root's candidates[0] (content.role "model")
 * and returns its parts. */
static cJSON *
dp_gemin_candidate(dp_jtx *tx, cJSON *root, cJSON **cand)
{
    cJSON *c       = dp_jtx_obj(tx, dp_jtx_arr(tx, root, "candidates"), NULL);
    cJSON *content = dp_jtx_obj(tx, c, "content");
    cJSON *parts   = dp_jtx_arr(tx, content, "parts");

    dp_jtx_str(tx, content, "role", "model");
    *cand = c;
    return parts;
}

/* dp_gemin_call_part adds a functionCall part; args must be a JSON object
 * (TG_EPROTO otherwise). */
static tg_err
dp_gemin_call_part(dp_jtx *tx, cJSON *parts, const char *id, const char *name,
                   const char *args)
{
    cJSON *a  = cJSON_Parse(args != NULL && args[0] != '\0' ? args : "{}");
    cJSON *fc = NULL;

    if (!cJSON_IsObject(a)) {
        cJSON_Delete(a);
        return TG_EPROTO;
    }
    fc = dp_jtx_obj(tx, dp_jtx_obj(tx, parts, NULL), "functionCall");
    if (id != NULL && id[0] != '\0') {
        dp_jtx_str(tx, fc, "id", id);
    }
    dp_jtx_str(tx, fc, "name", name != NULL ? name : "");
    dp_jtx_add(tx, fc, "args", a);
    return TG_OK;
}

tg_err
dp_gemin_reply(const char *oai, size_t len, tg_buf *out)
{
    cJSON       *in = cJSON_ParseWithLength(oai, len);
    const cJSON *ch = cJSON_GetArrayItem(dp_jtx_get(in, "choices"), 0);
    const cJSON *m  = dp_jtx_get(ch, "message");
    const cJSON *tc;
    dp_jtx       tx   = {0};
    cJSON       *root = cJSON_CreateObject();
    cJSON       *cand, *parts;
    char        *txt;
    size_t       tlen;
    tg_err       rv = TG_OK;

    if (!cJSON_IsObject(m) || root == NULL) {
        cJSON_Delete(in);
        cJSON_Delete(root);
        return root == NULL ? TG_ENOMEM : TG_EPROTO;
    }
    parts = dp_gemin_candidate(&tx, root, &cand);
    if (dp_jtx_gets(m, "content") != NULL &&
        dp_jtx_gets(m, "content")[0] != '\0') {
        dp_jtx_str(&tx, dp_jtx_obj(&tx, parts, NULL), "text",
                   dp_jtx_gets(m, "content"));
    }
    cJSON_ArrayForEach(tc, dp_jtx_get(m, "tool_calls"))
    {
        const cJSON *f = dp_jtx_get(tc, "function");
        if (rv == TG_OK) {
            rv = dp_gemin_call_part(&tx, parts, dp_jtx_gets(tc, "id"),
                                    dp_jtx_gets(f, "name"),
                                    dp_jtx_gets(f, "arguments"));
        }
    }
    dp_jtx_str(&tx, cand, "finishReason",
               dp_gemin_finish(dp_jtx_gets(ch, "finish_reason")));
    dp_jtx_num(&tx, cand, "index", 0);
    dp_gemin_usage(&tx, root, dp_jtx_get(in, "usage"));
    if (dp_jtx_gets(in, "model") != NULL) {
        dp_jtx_str(&tx, root, "modelVersion", dp_jtx_gets(in, "model"));
    }
    if (dp_jtx_gets(in, "id") != NULL) {
        dp_jtx_str(&tx, root, "responseId", dp_jtx_gets(in, "id"));
    }
    cJSON_Delete(in);
    if (rv != TG_OK) {
        cJSON_Delete(root);
        return rv;
    }
    rv = dp_jtx_print(&tx, root, &txt, &tlen);
    return rv == TG_OK ? dp_jtx_take(out, txt, tlen, rv) : rv;
}

/* ---- errors ------------------------------------------------------------ */

const char *
dp_gemin_status(unsigned status)
{
    switch (status) {
    case 400:
    case 405:
    case 413:
    case 415:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 501:
        return "UNIMPLEMENTED";
    case 502:
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

tg_err
dp_gemin_error(unsigned status, const char *message, const char *code,
               long retry_s, tg_buf *out)
{
    dp_jtx tx   = {0};
    cJSON *root = cJSON_CreateObject();
    cJSON *e    = dp_jtx_obj(&tx, root, "error");
    cJSON *det;
    char  *txt;
    size_t tlen;
    tg_err rv;

    if (root == NULL) {
        return TG_ENOMEM;
    }
    dp_jtx_num(&tx, e, "code", status);
    dp_jtx_str(&tx, e, "message", message);
    dp_jtx_str(&tx, e, "status", dp_gemin_status(status));
    det = dp_jtx_arr(&tx, e, "details");
    if (code != NULL && code[0] != '\0') {
        cJSON *d = dp_jtx_obj(&tx, det, NULL);
        dp_jtx_str(&tx, d, "@type", "type.googleapis.com/google.rpc.ErrorInfo");
        dp_jtx_str(&tx, d, "reason", code);
        dp_jtx_str(&tx, d, "domain", "tollgate");
    }
    if (retry_s > 0) {
        char   delay[32];
        cJSON *d = dp_jtx_obj(&tx, det, NULL);
        snprintf(delay, sizeof(delay), "%lds", retry_s);
        dp_jtx_str(&tx, d, "@type", "type.googleapis.com/google.rpc.RetryInfo");
        dp_jtx_str(&tx, d, "retryDelay", delay);
    }
    rv = dp_jtx_print(&tx, root, &txt, &tlen);
    return rv == TG_OK ? dp_jtx_take(out, txt, tlen, rv) : rv;
}

tg_err
dp_gemin_error_from_openai(unsigned status, const char *oai, size_t len,
                           long retry_s, tg_buf *out)
{
    cJSON       *in  = cJSON_ParseWithLength(oai, len);
    const cJSON *e   = dp_jtx_get(in, "error");
    const char  *msg = dp_jtx_gets(e, "message");
    const char  *cod = dp_jtx_gets(e, "code");
    tg_err       rv;

    if (cod == NULL) {
        cod = dp_jtx_gets(e, "type");
    }
    rv = dp_gemin_error(status, msg != NULL ? msg : "The request failed.", cod,
                        retry_s, out);
    cJSON_Delete(in);
    return rv;
}

tg_err
dp_gemin_count(int64_t n, tg_buf *out)
{
    return tg_buf_printf(out, "{\"totalTokens\":%lld}", (long long)n);
}

/* ---- streams ----------------------------------------------------------- */

/* One function call being assembled from its deltas. */
typedef struct dp_gemin_tcall {
    char  *id;
    char  *name;
    tg_buf args;
} dp_gemin_tcall;

struct dp_gemin_stream {
    dp_sse         sse;
    char          *model;
    char           id[96];
    dp_gemin_tcall calls[DP_GEMIN_TOOLS_MAX];
    size_t         n_calls;
    char           finish[24]; /* the OpenAI finish reason; "" */
    cJSON         *usage;      /* the usage chunk's, or NULL */
    bool           done;       /* the last chunk (or an error) is out */
    tg_buf        *out;        /* during a feed */
    tg_err         rv;
};

dp_gemin_stream *
dp_gemin_stream_create(const char *model)
{
    dp_gemin_stream *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    dp_sse_init(&s->sse, 16u << 20);
    if ((s->model = dp_jtx_strdup(model != NULL ? model : "")) == NULL) {
        dp_gemin_stream_destroy(s);
        return NULL;
    }
    return s;
}

void
dp_gemin_stream_destroy(dp_gemin_stream *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_calls; i++) {
        free(s->calls[i].id);
        free(s->calls[i].name);
        tg_buf_fini(&s->calls[i].args);
    }
    dp_sse_fini(&s->sse);
    cJSON_Delete(s->usage);
    free(s->model);
    free(s);
}

/* dp_gemin_chunk_head starts a chunk: candidates[0] with its parts. */
static cJSON *
dp_gemin_chunk_head(dp_jtx *tx, cJSON **cand, cJSON **parts)
{
    cJSON *root = cJSON_CreateObject();

    if (root == NULL) {
        tx->oom = true;
        return NULL;
    }
    *parts = dp_gemin_candidate(tx, root, cand);
    return root;
}

/* dp_gemin_chunk_put ends a chunk (index, modelVersion, responseId) and
 * writes it as one data event. */
static tg_err
dp_gemin_chunk_put(dp_gemin_stream *s, dp_jtx *tx, cJSON *root, cJSON *cand,
                   tg_buf *out)
{
    dp_jtx_num(tx, cand, "index", 0);
    dp_jtx_str(tx, root, "modelVersion", s->model);
    if (s->id[0] != '\0') {
        dp_jtx_str(tx, root, "responseId", s->id);
    }
    return dp_jtx_emit(tx, root, NULL, out);
}

/* dp_gemin_flush_calls writes the calls assembled so far as one chunk. */
static tg_err
dp_gemin_flush_calls(dp_gemin_stream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *cand, *parts;
    cJSON *root;
    tg_err rv = TG_OK;

    if (s->n_calls == 0) {
        return TG_OK;
    }
    if ((root = dp_gemin_chunk_head(&tx, &cand, &parts)) == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < s->n_calls && rv == TG_OK; i++) {
        rv = dp_gemin_call_part(&tx, parts, s->calls[i].id, s->calls[i].name,
                                s->calls[i].args.data);
    }
    for (size_t i = 0; i < s->n_calls; i++) {
        free(s->calls[i].id);
        free(s->calls[i].name);
        tg_buf_fini(&s->calls[i].args);
    }
    s->n_calls = 0;
    if (rv != TG_OK) {
        cJSON_Delete(root);
        return rv;
    }
    return dp_gemin_chunk_put(s, &tx, root, cand, out);
}

/* dp_gemin_last writes the last chunk: an empty text part, the finish
 * reason and the usage. */
static tg_err
dp_gemin_last(dp_gemin_stream *s, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *cand, *parts;
    cJSON *root;
    tg_err rv;

    if (s->done || s->finish[0] == '\0') {
        return TG_OK;
    }
    if ((rv = dp_gemin_flush_calls(s, out)) != TG_OK) {
        return rv;
    }
    if ((root = dp_gemin_chunk_head(&tx, &cand, &parts)) == NULL) {
        return TG_ENOMEM;
    }
    s->done = true;
    dp_jtx_str(&tx, dp_jtx_obj(&tx, parts, NULL), "text", "");
    dp_jtx_str(&tx, cand, "finishReason", dp_gemin_finish(s->finish));
    dp_gemin_usage(&tx, root, s->usage);
    return dp_gemin_chunk_put(s, &tx, root, cand, out);
}

/* dp_gemin_take_call adds one tool call delta. */
static tg_err
dp_gemin_take_call(dp_gemin_stream *s, const cJSON *tc)
{
    const cJSON    *idx = dp_jtx_get(tc, "index");
    const cJSON    *f   = dp_jtx_get(tc, "function");
    size_t          i   = cJSON_IsNumber(idx) && idx->valuedouble >= 0
                              ? (size_t)idx->valuedouble
                              : s->n_calls;
    dp_gemin_tcall *c;

    if (i >= DP_GEMIN_TOOLS_MAX) {
        return TG_EPROTO;
    }
    while (s->n_calls <= i) {
        tg_buf_init(&s->calls[s->n_calls++].args, 0);
    }
    c = &s->calls[i];
    if (c->id == NULL && dp_jtx_gets(tc, "id") != NULL &&
        (c->id = dp_jtx_strdup(dp_jtx_gets(tc, "id"))) == NULL) {
        return TG_ENOMEM;
    }
    if (c->name == NULL && dp_jtx_gets(f, "name") != NULL &&
        (c->name = dp_jtx_strdup(dp_jtx_gets(f, "name"))) == NULL) {
        return TG_ENOMEM;
    }
    if (dp_jtx_gets(f, "arguments") != NULL) {
        const char *a = dp_jtx_gets(f, "arguments");
        return tg_buf_append(&c->args, a, strlen(a));
    }
    return TG_OK;
}

/* dp_gemin_error_event renders an OpenAI stream error event. */
static tg_err
dp_gemin_error_event(dp_gemin_stream *s, const cJSON *e, tg_buf *out)
{
    const char *type   = dp_jtx_gets(e, "type");
    const char *code   = dp_jtx_gets(e, "code");
    const char *msg    = dp_jtx_gets(e, "message");
    unsigned    status = 500;
    tg_buf      b;
    tg_err      rv;

    if (type != NULL && strcmp(type, "rate_limit_error") == 0) {
        status = 429;
    } else if (type != NULL && strcmp(type, "invalid_request_error") == 0) {
        status = 400;
    } else if (code != NULL && strcmp(code, "upstream_error") == 0) {
        status = 503;
    }
    s->done = true;
    tg_buf_init(&b, 0);
    rv = dp_gemin_error(status, msg != NULL ? msg : "The stream failed.", code,
                        0, &b);
    if (rv == TG_OK) {
        rv = dp_sse_put(out, NULL, b.data, b.len);
    }
    tg_buf_fini(&b);
    return rv;
}

/* dp_gemin_text_chunk writes one text delta. */
static tg_err
dp_gemin_text_chunk(dp_gemin_stream *s, const char *text, tg_buf *out)
{
    dp_jtx tx = {0};
    cJSON *cand, *parts;
    cJSON *root = dp_gemin_chunk_head(&tx, &cand, &parts);

    if (root == NULL) {
        return TG_ENOMEM;
    }
    dp_jtx_str(&tx, dp_jtx_obj(&tx, parts, NULL), "text", text);
    return dp_gemin_chunk_put(s, &tx, root, cand, out);
}

/* dp_gemin_on_chunk renders one OpenAI chunk. */
static tg_err
dp_gemin_on_chunk(dp_gemin_stream *s, const cJSON *j, tg_buf *out)
{
    const cJSON *ch = cJSON_GetArrayItem(dp_jtx_get(j, "choices"), 0);
    const cJSON *d  = dp_jtx_get(ch, "delta");
    const cJSON *tc;
    const char  *text = dp_jtx_gets(d, "content");
    const char  *fr   = dp_jtx_gets(ch, "finish_reason");
    tg_err       rv   = TG_OK;

    if (dp_jtx_get(j, "error") != NULL) {
        return dp_gemin_error_event(s, dp_jtx_get(j, "error"), out);
    }
    if (s->id[0] == '\0' && dp_jtx_gets(j, "id") != NULL) {
        snprintf(s->id, sizeof(s->id), "%s", dp_jtx_gets(j, "id"));
    }
    if (text != NULL && text[0] != '\0') {
        rv = dp_gemin_text_chunk(s, text, out);
    }
    cJSON_ArrayForEach(tc, dp_jtx_get(d, "tool_calls"))
    {
        rv = rv == TG_OK ? dp_gemin_take_call(s, tc) : rv;
    }
    if (rv == TG_OK && fr != NULL) {
        snprintf(s->finish, sizeof(s->finish), "%s", fr);
        rv = dp_gemin_flush_calls(s, out); /* function calls go whole */
    }
    if (rv == TG_OK && cJSON_IsObject(dp_jtx_get(j, "usage"))) {
        cJSON_Delete(s->usage);
        if ((s->usage = cJSON_Duplicate(dp_jtx_get(j, "usage"), 1)) == NULL) {
            rv = TG_ENOMEM;
        }
    }
    return rv;
}

static tg_err
dp_gemin_on_data(void *arg, const char *event, const char *data, size_t len,
                 tg_buf *out)
{
    dp_gemin_stream *s = arg;
    cJSON           *j;
    tg_err           rv;

    (void)event;
    if (s->done) {
        return TG_OK;
    }
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        return dp_gemin_last(s, out);
    }
    if ((j = cJSON_ParseWithLength(data, len)) == NULL) {
        return TG_EPROTO;
    }
    rv = dp_gemin_on_chunk(s, j, out);
    cJSON_Delete(j);
    return rv;
}

static int
dp_gemin_on_event(void *arg, const char *ev, size_t len)
{
    dp_gemin_stream *s = arg;

    s->rv = dp_sse_dispatch(ev, len, dp_gemin_on_data, s, s->out);
    return s->rv != TG_OK;
}

tg_err
dp_gemin_stream_feed(dp_gemin_stream *s, const char *data, size_t len,
                     tg_buf *out)
{
    tg_err rv;

    s->out = out;
    s->rv  = TG_OK;
    rv     = dp_sse_feed(&s->sse, data, len, dp_gemin_on_event, s);
    s->out = NULL;
    return s->rv != TG_OK ? s->rv : rv;
}

tg_err
dp_gemin_stream_finish(dp_gemin_stream *s, tg_buf *out)
{
    tg_err rv;

    s->out = out;
    s->rv  = TG_OK;
    rv     = dp_sse_finish(&s->sse, dp_gemin_on_event, s);
    s->out = NULL;
    if (rv == TG_OK && s->rv == TG_OK) {
        rv = dp_gemin_last(s, out);
    }
    return s->rv != TG_OK ? s->rv : rv;
}
