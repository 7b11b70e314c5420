/* dp_jtx.c - see dp_jtx.h. */
#include "dp_jtx.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dp_openai.h"
#include "dp_sse.h"
#include "tg_json.h"

tg_err
dp_jtx_fail(dp_jtx *tx, const char *param, const char *fmt, ...)
{
    va_list ap;

    if (tx->msg != NULL && tx->msglen > 0) {
        va_start(ap, fmt);
        vsnprintf(tx->msg, tx->msglen, fmt, ap);
        va_end(ap);
    }
    if (tx->param != NULL && tx->paramlen > 0) {
        snprintf(tx->param, tx->paramlen, "%s", param);
    }
    return TG_EINVAL;
}

cJSON *
dp_jtx_request(dp_jtx *tx, const cJSON *req, tg_err *rv)
{
    cJSON *root;

    if (tx->msglen > 0) {
        tx->msg[0] = '\0';
    }
    if (tx->paramlen > 0) {
        tx->param[0] = '\0';
    }
    if ((root = cJSON_CreateObject()) == NULL) {
        *rv = TG_ENOMEM;
        return NULL;
    }
    if (!cJSON_IsObject(req)) {
        *rv = dp_jtx_fail(tx, "", "The request body must be a JSON object.");
        cJSON_Delete(root);
        return NULL;
    }
    *rv = TG_OK;
    return root;
}

cJSON *
dp_jtx_add(dp_jtx *tx, cJSON *parent, const char *key, cJSON *item)
{
    cJSON_bool ok;

    if (item == NULL || parent == NULL) {
        cJSON_Delete(item);
        tx->oom = true;
        return NULL;
    }
    ok = key != NULL ? cJSON_AddItemToObject(parent, key, item)
                     : cJSON_AddItemToArray(parent, item);
    if (!ok) {
        cJSON_Delete(item);
        tx->oom = true;
        return NULL;
    }
    return item;
}

cJSON *
dp_jtx_str(dp_jtx *tx, cJSON *parent, const char *key, const char *s)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateString(s));
}

cJSON *
dp_jtx_num(dp_jtx *tx, cJSON *parent, const char *key, double v)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateNumber(v));
}

cJSON *
dp_jtx_obj(dp_jtx *tx, cJSON *parent, const char *key)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateObject());
}

cJSON *
dp_jtx_arr(dp_jtx *tx, cJSON *parent, const char *key)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateArray());
}

cJSON *
dp_jtx_dup(dp_jtx *tx, cJSON *parent, const char *key, const cJSON *v)
{
    return dp_jtx_add(tx, parent, key, cJSON_Duplicate(v, 1));
}

const cJSON *
dp_jtx_get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

const char *
dp_jtx_gets(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
dp_jtx_present(const cJSON *v)
{
    return v != NULL && !cJSON_IsNull(v);
}

bool
dp_jtx_is(const char *s, const char *lit)
{
    return s != NULL && strcmp(s, lit) == 0;
}

tg_err
dp_jtx_stop(dp_jtx *tx, const cJSON *req, cJSON *dst, const char *key)
{
    const cJSON *v = dp_jtx_get(req, "stop");
    const cJSON *e;

    if (cJSON_IsString(v)) {
        dp_jtx_str(tx, dp_jtx_arr(tx, dst, key), NULL, v->valuestring);
        return TG_OK;
    }
    if (dp_jtx_present(v) && !cJSON_IsArray(v)) {
        return dp_jtx_fail(tx, "stop",
                           "'stop' must be a string or an array of strings.");
    }
    if (cJSON_GetArraySize(v) == 0) {
        return TG_OK;
    }
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e)) {
            return dp_jtx_fail(tx, "stop",
                               "'stop' must be a string or an array of "
                               "strings.");
        }
    }
    dp_jtx_dup(tx, dst, key, v);
    return TG_OK;
}

tg_err
dp_jtx_take(tg_buf *out, char *s, size_t len, tg_err rv)
{
    if (rv == TG_OK) {
        rv = tg_buf_append(out, s, len);
    }
    free(s);
    return rv;
}

tg_err
dp_jtx_print(dp_jtx *tx, cJSON *root, char **out, size_t *len)
{
    char *txt = NULL;

    if (!tx->oom) {
        txt = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (txt == NULL) {
        return TG_ENOMEM;
    }
    *out = txt;
    if (len != NULL) {
        *len = strlen(txt);
    }
    return TG_OK;
}

cJSON *
dp_jtx_chunk(dp_jtx *tx, const char *id, int64_t created, const char *model,
             bool with_choice, cJSON **choice, cJSON **delta)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *choices;

    if (root == NULL) {
        tx->oom = true;
    }
    dp_jtx_str(tx, root, "id", id);
    dp_jtx_str(tx, root, "object", "chat.completion.chunk");
    dp_jtx_num(tx, root, "created", (double)created);
    dp_jtx_str(tx, root, "model", model);
    choices = dp_jtx_arr(tx, root, "choices");
    if (with_choice) {
        *choice = dp_jtx_obj(tx, choices, NULL);
        dp_jtx_num(tx, *choice, "index", 0);
        *delta = dp_jtx_obj(tx, *choice, "delta");
    }
    return root;
}

tg_err
dp_jtx_emit(dp_jtx *tx, cJSON *root, const char *event, tg_buf *out)
{
    char  *txt = NULL;
    tg_err rv;

    if (!tx->oom) {
        txt = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (txt == NULL) {
        return TG_ENOMEM;
    }
    rv = dp_sse_put(out, event, txt, strlen(txt));
    cJSON_free(txt);
    return rv;
}

tg_err
dp_jtx_chunk_emit(dp_jtx *tx, cJSON *root, cJSON *choice, const char *finish,
                  tg_buf *out)
{
    if (choice != NULL) {
        dp_jtx_add(tx, choice, "logprobs", cJSON_CreateNull());
        dp_jtx_add(tx, choice, "finish_reason",
                   finish != NULL ? cJSON_CreateString(finish)
                                  : cJSON_CreateNull());
    }
    return dp_jtx_emit(tx, root, NULL, out);
}

tg_err
dp_jtx_head_init(dp_jtx_head *h, const char *id, const char *model,
                 int64_t created)
{
    h->created = created;
    if ((h->id = dp_jtx_strdup(id)) == NULL ||
        (h->model = dp_jtx_strdup(model)) == NULL) {
        return TG_ENOMEM;
    }
    return TG_OK;
}

void
dp_jtx_head_fini(dp_jtx_head *h)
{
    free(h->id);
    free(h->model);
    h->id    = NULL;
    h->model = NULL;
}

cJSON *
dp_jtx_head_chunk(dp_jtx *tx, const dp_jtx_head *h, bool with_choice,
                  cJSON **choice, cJSON **delta)
{
    return dp_jtx_chunk(tx, h->id, h->created, h->model, with_choice, choice,
                        delta);
}

tg_err
dp_jtx_image_url(dp_jtx *tx, const cJSON *part, const char *where,
                 dp_jtx_image *out)
{
    const cJSON *iu = dp_jtx_get(part, "image_url");
    const char  *url =
        cJSON_IsString(iu) ? iu->valuestring : dp_jtx_gets(iu, "url");

    memset(out, 0, sizeof(*out));
    if (url == NULL) {
        return dp_jtx_fail(tx, where, "%s.image_url.url must be a string.",
                           where);
    }
    out->url = url;
    if (strncmp(url, "data:", 5) == 0) {
        const char *comma = strchr(url, ',');
        const char *semi  = strchr(url, ';');
        size_t      mlen;

        if (comma == NULL || semi == NULL || semi > comma ||
            (size_t)(comma - semi) != 7 || strncmp(semi, ";base64", 7) != 0) {
            return dp_jtx_fail(tx, where,
                               "%s: image data URLs must be base64 "
                               "(data:<media type>;base64,<data>).",
                               where);
        }
        mlen = (size_t)(semi - (url + 5));
        if (mlen == 0 || mlen >= sizeof(out->media)) {
            return dp_jtx_fail(
                tx, where, "%s: the image data URL has no media type.", where);
        }
        memcpy(out->media, url + 5, mlen);
        out->media[mlen] = '\0';
        out->data        = comma + 1;
        return TG_OK;
    }
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        return TG_OK;
    }
    return dp_jtx_fail(tx, where,
                       "%s: image URLs must be http(s) or base64 data URLs.",
                       where);
}

tg_err
dp_jtx_content(dp_jtx *tx, cJSON *out, const cJSON *content, bool images,
               const char *where, const dp_jtx_part_fns *fns)
{
    const cJSON *part;
    size_t       j = 0;
    char         pw[96];
    tg_err       rv;

    if (content == NULL || cJSON_IsNull(content)) {
        return TG_OK;
    }
    if (cJSON_IsString(content)) {
        fns->text(tx, out, content->valuestring);
        return TG_OK;
    }
    if (!cJSON_IsArray(content)) {
        return dp_jtx_fail(tx, where,
                           "%s must be a string or an array of parts.", where);
    }
    cJSON_ArrayForEach(part, content)
    {
        const char *type = dp_jtx_gets(part, "type");
        snprintf(pw, sizeof(pw), "%s[%zu]", where, j++);
        if (dp_jtx_is(type, "text") && dp_jtx_gets(part, "text") != NULL) {
            fns->text(tx, out, dp_jtx_gets(part, "text"));
        } else if (images && dp_jtx_is(type, "image_url")) {
            if ((rv = fns->image(tx, out, part, pw)) != TG_OK) {
                return rv;
            }
        } else {
            return dp_jtx_fail(tx, pw,
                               "%s: content parts of type '%s' cannot be "
                               "sent to this model.",
                               pw, type != NULL ? type : "(none)");
        }
    }
    return TG_OK;
}

bool
dp_jtx_count(const cJSON *o, const char *key, int64_t *out)
{
    return tg_json_whole(cJSON_GetObjectItemCaseSensitive(o, key), 0,
                         DP_TOKENS_MAX, out);
}

bool
dp_jtx_icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

char *
dp_jtx_strdup(const char *s)
{
    size_t n;
    char  *d;

    if (s == NULL) {
        return NULL;
    }
    n = strlen(s) + 1;
    if ((d = malloc(n)) != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

tg_err
dp_jtx_openai_unsupported(dp_jtx *tx, const cJSON *req)
{
    const cJSON *v;

    v = dp_jtx_get(req, "n");
    if (dp_jtx_present(v) && !(cJSON_IsNumber(v) && v->valuedouble == 1)) {
        return dp_jtx_fail(tx, "n",
                           "'n' other than 1 is not supported by this model.");
    }
    if (cJSON_IsTrue(dp_jtx_get(req, "logprobs"))) {
        return dp_jtx_fail(tx, "logprobs",
                           "'logprobs' is not supported by this model.");
    }
    v = dp_jtx_get(req, "top_logprobs");
    if (dp_jtx_present(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0)) {
        return dp_jtx_fail(tx, "top_logprobs",
                           "'top_logprobs' is not supported by this model.");
    }
    v = dp_jtx_get(req, "logit_bias");
    if (cJSON_IsObject(v) && v->child != NULL) {
        return dp_jtx_fail(tx, "logit_bias",
                           "'logit_bias' is not supported by this model.");
    }
    if (dp_jtx_present(dp_jtx_get(req, "audio"))) {
        return dp_jtx_fail(tx, "audio",
                           "'audio' output is not supported by this model.");
    }
    v = dp_jtx_get(req, "modalities");
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsString(e) || strcmp(e->valuestring, "text") != 0) {
                return dp_jtx_fail(tx, "modalities",
                                   "'modalities' other than 'text' are not "
                                   "supported by this model.");
            }
        }
    }
    if (dp_jtx_present(dp_jtx_get(req, "functions")) ||
        dp_jtx_present(dp_jtx_get(req, "function_call"))) {
        return dp_jtx_fail(tx,
                           dp_jtx_present(dp_jtx_get(req, "functions"))
                               ? "functions"
                               : "function_call",
                           "The legacy 'functions'/'function_call' "
                           "parameters are not supported by this model; use "
                           "'tools'.");
    }
    return TG_OK;
}

tg_err
dp_jtx_max_tokens(dp_jtx *tx, const cJSON *req, const char *key, int64_t *out)
{
    const cJSON *v = dp_jtx_get(req, key);

    if (!dp_jtx_present(v)) {
        return TG_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < 1 || v->valuedouble > 1e9) {
        return dp_jtx_fail(tx, key, "'%s' must be a positive integer.", key);
    }
    *out = (int64_t)v->valuedouble;
    return TG_OK;
}

void
dp_jtx_append(dp_jtx *tx, cJSON *list, const char *role, const char *key,
              cJSON *items)
{
    cJSON *last = cJSON_GetArrayItem(list, cJSON_GetArraySize(list) - 1);
    cJSON *turn;
    cJSON *it;

    if (items == NULL) {
        tx->oom = true;
        return;
    }
    if (cJSON_GetArraySize(items) == 0) {
        cJSON_Delete(items);
        return;
    }
    if (last != NULL && dp_jtx_is(dp_jtx_gets(last, "role"), role)) {
        cJSON *dst = cJSON_GetObjectItemCaseSensitive(last, key);
        while ((it = cJSON_DetachItemFromArray(items, 0)) != NULL) {
            dp_jtx_add(tx, dst, NULL, it);
        }
        cJSON_Delete(items);
        return;
    }
    turn = dp_jtx_obj(tx, list, NULL);
    dp_jtx_str(tx, turn, "role", role);
    dp_jtx_add(tx, turn, key, items);
}

tg_err
dp_jtx_calls(dp_jtx *tx, const cJSON *calls, size_t i, dp_jtx_call_fn fn,
             void *arg)
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
        const cJSON *f    = dp_jtx_get(c, "function");
        const char  *id   = dp_jtx_gets(c, "id");
        const char  *name = dp_jtx_gets(f, "name");
        const char  *args = dp_jtx_gets(f, "arguments");
        const char  *p;
        cJSON       *a;

        snprintf(pw, sizeof(pw), "messages[%zu].tool_calls[%zu]", i, j);
        if (id == NULL || name == NULL) {
            return dp_jtx_fail(
                tx, pw, "%s needs a string 'id' and 'function.name'.", pw);
        }
        for (p = args != NULL ? args : ""; isspace((unsigned char)*p); p++) {
        }
        a = *p == '\0' ? cJSON_CreateObject() : cJSON_Parse(p);
        if (!cJSON_IsObject(a)) {
            cJSON_Delete(a);
            snprintf(pw, sizeof(pw),
                     "messages[%zu].tool_calls[%zu].function.arguments", i, j);
            return dp_jtx_fail(tx, pw, "%s must be a JSON object.", pw);
        }
        fn(tx, arg, id, name, a);
        j++;
    }
    return TG_OK;
}

void
dp_jtx_usage(dp_jtx *tx, cJSON *parent, const dp_usage_counts *u,
             int64_t reasoning)
{
    cJSON *o = dp_jtx_obj(tx, parent, "usage");

    dp_jtx_num(tx, o, "prompt_tokens", (double)u->prompt_tokens);
    dp_jtx_num(tx, o, "completion_tokens", (double)u->completion_tokens);
    dp_jtx_num(tx, o, "total_tokens",
               (double)(u->prompt_tokens + u->completion_tokens));
    dp_jtx_num(tx, dp_jtx_obj(tx, o, "prompt_tokens_details"), "cached_tokens",
               (double)u->cached_tokens);
    if (reasoning > 0) {
        dp_jtx_num(tx, dp_jtx_obj(tx, o, "completion_tokens_details"),
                   "reasoning_tokens", (double)reasoning);
    }
}

tg_err
dp_jtx_stream_end(const dp_jtx_head *h, bool finished, bool include_usage,
                  const dp_usage_counts *u, int64_t reasoning, tg_buf *out)
{
    size_t before = out->len;
    tg_err rv     = TG_OK;

    if (!finished) {
        rv = dp_openai_cut_event(out);
    } else if (include_usage) {
        dp_jtx tx   = {0};
        cJSON *root = dp_jtx_head_chunk(&tx, h, false, NULL, NULL);
        dp_jtx_usage(&tx, root, u, reasoning);
        rv = dp_jtx_emit(&tx, root, NULL, out);
    }
    if (rv == TG_OK && finished) {
        rv = dp_sse_put(out, NULL, "[DONE]", 6);
    }
    if (rv != TG_OK) {
        dp_sse_undo(out, before);
    }
    return rv;
}

void
dp_jtx_completion(dp_jtx *tx, cJSON *root, const char *id, int64_t created,
                  const char *model, const char *text, bool has_text,
                  cJSON *calls, const char *finish)
{
    bool   any = cJSON_GetArraySize(calls) > 0;
    cJSON *choice;
    cJSON *message;

    dp_jtx_str(tx, root, "id", id);
    dp_jtx_str(tx, root, "object", "chat.completion");
    dp_jtx_num(tx, root, "created", (double)created);
    dp_jtx_str(tx, root, "model", model);
    choice = dp_jtx_obj(tx, dp_jtx_arr(tx, root, "choices"), NULL);
    dp_jtx_num(tx, choice, "index", 0);
    message = dp_jtx_obj(tx, choice, "message");
    dp_jtx_str(tx, message, "role", "assistant");
    if (has_text || !any) {
        dp_jtx_str(tx, message, "content", text != NULL ? text : "");
    } else {
        dp_jtx_add(tx, message, "content", cJSON_CreateNull());
    }
    dp_jtx_add(tx, message, "refusal", cJSON_CreateNull());
    if (any) {
        dp_jtx_add(tx, message, "tool_calls", calls);
    } else {
        cJSON_Delete(calls);
    }
    dp_jtx_add(tx, choice, "logprobs", cJSON_CreateNull());
    dp_jtx_str(tx, choice, "finish_reason", finish);
}

tg_err
dp_jtx_text_chunk(const dp_jtx_head *h, const char *role, const char *text,
                  tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON *choice = NULL;
    cJSON *delta  = NULL;
    cJSON *root   = dp_jtx_head_chunk(&tx, h, true, &choice, &delta);

    if (role != NULL) {
        dp_jtx_str(&tx, delta, "role", role);
    }
    dp_jtx_str(&tx, delta, "content", text);
    return dp_jtx_chunk_emit(&tx, root, choice, NULL, out);
}

tg_err
dp_jtx_finish_chunk(const dp_jtx_head *h, const char *finish, tg_buf *out)
{
    dp_jtx tx     = {0};
    cJSON *choice = NULL;
    cJSON *delta  = NULL;
    cJSON *root   = dp_jtx_head_chunk(&tx, h, true, &choice, &delta);

    return dp_jtx_chunk_emit(&tx, root, choice, finish, out);
}
