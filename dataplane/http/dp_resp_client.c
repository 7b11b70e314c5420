/* dp_resp_client.c - a Responses API client at the data plane's edge
 * (see dp_resp_client.h). */
#include "dp_resp_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_openai.h"
#include "dp_resp_store.h"
#include "dp_sse.h"
#include "tg_jstrict.h"

dp_resp_client *
dp_resp_client_create(const char *request_id)
{
    dp_resp_client *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    snprintf(c->id, sizeof(c->id), "resp_%s", request_id);
    c->created = (int64_t)time(NULL);
    tg_buf_init(&c->conv, 0);
    tg_buf_init(&c->raw, 0);
    tg_buf_init(&c->tail, 0);
    return c;
}

void
dp_resp_client_destroy(dp_resp_client *c)
{
    if (c == NULL) {
        return;
    }
    cJSON_Delete(c->echo);
    dp_resp_stream_destroy(c->rs);
    tg_buf_fini(&c->conv);
    tg_buf_fini(&c->raw);
    tg_buf_fini(&c->tail);
    free(c->items);
    free(c);
}

/* dp_resp_client_set_items makes items (NULL: none) what c keeps. */
static tg_err
dp_resp_client_set_items(dp_resp_client *c, cJSON *items)
{
    char *s = items != NULL ? cJSON_PrintUnformatted(items) : NULL;

    cJSON_Delete(items);
    if (items != NULL && s == NULL) {
        return TG_ENOMEM;
    }
    free(c->items);
    c->items     = s;
    c->items_len = s != NULL ? strlen(s) : 0;
    return TG_OK;
}

/* dp_resp_client_keep_input reads what storing needs from the client's
 * body root (references resolved by dp_resp_keep_lookup): whether it asks
 * to store and, if so, its input items (unless a continuation's own were
 * taken before the turns it continues were put in); the Response echoes
 * the previous_response_id it continued. */
static tg_err
dp_resp_client_keep_input(dp_resp_client *c, const cJSON *root)
{
    cJSON *items = NULL;
    tg_err rv;

    c->store_asked =
        !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "store"));
    if (c->prev_id[0] != '\0' && c->echo != NULL) {
        cJSON *v = cJSON_CreateString(c->prev_id);
        if (v == NULL ||
            !cJSON_AddItemToObject(c->echo, "previous_response_id", v)) {
            cJSON_Delete(v);
            return TG_ENOMEM;
        }
    }
    if (!c->store_asked || c->items_own) {
        return TG_OK;
    }
    rv = dp_resp_store_items(cJSON_GetObjectItemCaseSensitive(root, "input"),
                             c->id + 5, &items);
    return rv == TG_OK ? dp_resp_client_set_items(c, items) : rv;
}

tg_err
dp_resp_client_own_items(dp_resp_client *c, const cJSON *root)
{
    cJSON *items = NULL;
    tg_err rv    = dp_resp_store_items(
           cJSON_GetObjectItemCaseSensitive(root, "input"), c->id + 5, &items);

    if (rv == TG_EINVAL) {
        return TG_OK;
    }
    if (rv == TG_OK && (rv = dp_resp_client_set_items(c, items)) == TG_OK) {
        c->items_own = true;
    }
    return rv;
}

/* dp_resp_client_own_count is how many items the chat form of c's own
 * input items gives back (dp_resp_store_from_chat): all but reasoning
 * items, which are not sent. */
static int
dp_resp_client_own_count(const dp_resp_client *c)
{
    cJSON       *a = cJSON_ParseWithLength(c->items, c->items_len);
    const cJSON *it;
    int          n = 0;

    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return 0;
    }
    cJSON_ArrayForEach(it, a)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");
        n += !(cJSON_IsString(t) && strcmp(t->valuestring, "reasoning") == 0);
    }
    cJSON_Delete(a);
    return n;
}

tg_err
dp_resp_client_redacted(dp_resp_client *c, const tg_buf *chat)
{
    cJSON *items = NULL;
    tg_err rv;

    if (!c->store_asked) {
        return TG_OK;
    }
    rv =
        dp_resp_store_from_chat(chat->data, chat->len,
                                cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
                                    c->echo, "instructions")),
                                c->id + 5, &items);
    /* A continuation keeps its own part: the turns before it were kept,
     * redacted as they went then. */
    for (int own = c->items_own ? dp_resp_client_own_count(c) : -1;
         rv == TG_OK && own >= 0 && cJSON_GetArraySize(items) > own;) {
        cJSON_DeleteItemFromArray(items, 0);
    }
    if (rv == TG_OK && (rv = dp_resp_client_set_items(c, items)) == TG_OK) {
        c->redacted = true;
    } else if (rv != TG_ENOMEM) {
        c->store_asked = false; /* never the unredacted input */
        rv             = TG_OK;
    }
    return rv;
}

tg_err
dp_resp_client_translate(dp_resp_client *c, tg_buf *body, char *msg,
                         size_t msglen, char *param, size_t paramlen)
{
    char   why[256];
    char  *chat = NULL;
    size_t clen = 0;
    cJSON *root;
    tg_err rv;

    param[0] = '\0';
    /* The same one strict reading as every other body. */
    if (tg_jstrict_check(body->data, body->len, param, paramlen, why,
                         sizeof(why)) != TG_OK) {
        snprintf(msg, msglen,
                 "We could not accept the JSON body of your request: "
                 "%s%s%s%s.",
                 why, param[0] != '\0' ? " (in " : "", param,
                 param[0] != '\0' ? ")" : "");
        return TG_EPROTO;
    }
    if ((root = cJSON_ParseWithLength(body->data, body->len)) == NULL) {
        snprintf(msg, msglen,
                 "We could not parse the JSON body of your "
                 "request.");
        return TG_EPROTO;
    }
    if (dp_req_forbidden(root, msg, msglen, param, paramlen)) {
        cJSON_Delete(root);
        return TG_EINVAL;
    }
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "model"))) {
        snprintf(c->model, sizeof(c->model), "%s",
                 cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring);
    }
    cJSON_Delete(c->echo);
    c->echo = NULL;

    rv = dp_resp_req_to_chat(root, &chat, &clen, &c->echo, c->builtin,
                             sizeof(c->builtin), msg, msglen, param, paramlen);
    if (rv == TG_OK) {
        rv = dp_resp_client_keep_input(c, root);
    }
    cJSON_Delete(root);
    tg_buf_reset(&c->raw);
    if (rv == TG_OK) {
        rv = tg_buf_append(&c->raw, body->data, body->len);
    }
    if (rv != TG_OK) {
        free(chat);
        return rv;
    }
    tg_buf_reset(body);
    rv = tg_buf_append(body, chat, clen);
    free(chat);
    return rv;
}

void
dp_resp_client_route(const dp_resp_client *c, dp_client_req *cr, bool native)
{
    cr->resp_raw     = native ? c->raw.data : NULL;
    cr->resp_raw_len = native ? c->raw.len : 0;
    cr->resp_builtin = c->builtin;
}

static dp_resp_meta
dp_resp_client_meta(const dp_resp_client *c)
{
    dp_resp_meta m = {c->id, c->model, c->created, c->echo};

    return m;
}

/* dp_resp_client_restates: a native Response must be changed to say what
 * the gateway did (dp_resp_client_restate). */
static bool
dp_resp_client_restates(const dp_resp_client *c)
{
    return c->prev_id[0] != '\0' || c->keep == DP_RESP_KEEP_NO;
}

/* dp_resp_client_has_response: the SSE event ev is one that carries the
 * whole Response (response.created, .in_progress, .completed,
 * .incomplete, .failed, .queued: one word after "response."). */
static bool
dp_resp_client_has_response(const char *ev, size_t n)
{
    static const char pre[] = "event: response.";
    const char       *nl    = memchr(ev, '\n', n);

    return nl != NULL && strncmp(ev, pre, sizeof(pre) - 1) == 0 &&
           memchr(ev + sizeof(pre) - 1, '.',
                  (size_t)(nl - ev) - (sizeof(pre) - 1)) == NULL;
}

/* dp_resp_client_set replaces (or adds) o's key by v (owned). */
static bool
dp_resp_client_set(cJSON *o, const char *key, cJSON *v)
{
    bool ok =
        v != NULL && (cJSON_GetObjectItemCaseSensitive(o, key) != NULL
                          ? cJSON_ReplaceItemInObjectCaseSensitive(o, key, v)
                          : cJSON_AddItemToObject(o, key, v));

    if (!ok) {
        cJSON_Delete(v);
    }
    return ok;
}

tg_err
dp_resp_client_restate(const dp_resp_client *c, tg_buf *b, bool event)
{
    dp_sse_fields f;
    cJSON        *root = NULL;
    cJSON        *o;
    char         *s  = NULL;
    tg_err        rv = TG_EPROTO;
    tg_buf        nb;

    memset(&f, 0, sizeof(f));
    if (!event) {
        root = cJSON_ParseWithLength(b->data, b->len);
    } else if (dp_sse_read(b->data, b->len, &f) == TG_OK && f.data != NULL) {
        root = cJSON_ParseWithLength(f.data, f.len);
    }
    o = event ? cJSON_GetObjectItemCaseSensitive(root, "response") : root;
    if (cJSON_IsObject(o) &&
        (c->prev_id[0] == '\0' ||
         dp_resp_client_set(o, "previous_response_id",
                            cJSON_CreateString(c->prev_id))) &&
        (c->keep != DP_RESP_KEEP_NO ||
         dp_resp_client_set(o, "store", cJSON_CreateFalse())) &&
        (s = cJSON_PrintUnformatted(root)) != NULL) {
        tg_buf_init(&nb, 0);
        rv = event ? dp_sse_put(&nb, f.event, s, strlen(s))
                   : tg_buf_append(&nb, s, strlen(s));
        if (rv == TG_OK) {
            tg_buf_reset(b);
            rv = tg_buf_append(b, nb.data, nb.len);
        }
        tg_buf_fini(&nb);
    }
    cJSON_free(s);
    cJSON_Delete(root);
    dp_sse_fields_fini(&f);
    return rv;
}

tg_err
dp_resp_client_body(dp_resp_client *c, tg_buf *out)
{
    dp_resp_meta m    = dp_resp_client_meta(c);
    char        *s    = NULL;
    size_t       slen = 0;
    tg_err       rv;

    if (c->native) { /* OpenAI's own Response */
        return dp_resp_client_restates(c)
                   ? dp_resp_client_restate(c, out, false)
                   : TG_OK;
    }
    rv = dp_resp_from_chat(out->data, out->len, &m, &s, &slen);
    if (rv == TG_OK) {
        tg_buf_reset(out);
        rv = tg_buf_append(out, s, slen);
    }
    free(s);
    return rv;
}

/* dp_resp_client_fail ends the client's stream after a translation
 * failure: the translator cannot go on, so a plain error event closes. */
static void
dp_resp_client_fail(dp_resp_client *c, tg_err rv)
{
    static const char ev[] =
        "event: error\ndata: {\"type\":\"error\",\"code\":"
        "\"translation_error\",\"message\":\"The gateway could not "
        "translate the provider's answer into Responses events.\","
        "\"param\":null,\"sequence_number\":0}\n\n";

    (void)rv;
    if (tg_buf_append(&c->conv, ev, sizeof(ev) - 1) != TG_OK) {
        tg_buf_reset(&c->conv); /* nothing more can be said */
    }
    c->finished = true;
}

/* dp_resp_client_native passes one event of a native answer on; an
 * event of the gateway's own (an OpenAI error event: the stream was cut
 * or a limit ended it) becomes a Responses "error" event. */
static tg_err
dp_resp_client_native(dp_resp_client *c, const char *ev, size_t n)
{
    dp_sse_fields f;
    cJSON        *j = NULL;
    tg_err        rv;

    if ((rv = dp_sse_read(ev, n, &f)) != TG_OK) {
        return rv;
    }
    if (f.event[0] == '\0' && f.data != NULL && f.len > 0 && f.data[0] == '{') {
        j = cJSON_ParseWithLength(f.data, f.len);
    }
    dp_sse_fields_fini(&f);
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "error"))) {
        const cJSON *e  = cJSON_GetObjectItemCaseSensitive(j, "error");
        cJSON       *o  = cJSON_CreateObject();
        char        *s  = NULL;
        bool         ok = o != NULL;
        ok = ok && cJSON_AddStringToObject(o, "type", "error") != NULL;
        ok = ok && cJSON_AddItemToObject(
                       o, "code",
                       cJSON_Duplicate(
                           cJSON_GetObjectItemCaseSensitive(e, "code"), true));
        ok = ok &&
             cJSON_AddItemToObject(
                 o, "message",
                 cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "message"),
                                 true));
        ok = ok && cJSON_AddNullToObject(o, "param") != NULL;
        ok = ok && cJSON_AddNumberToObject(o, "sequence_number",
                                           (double)c->native_events) != NULL;
        rv = ok && (s = cJSON_PrintUnformatted(o)) != NULL
                 ? dp_sse_put(&c->conv, "error", s, strlen(s))
                 : TG_ENOMEM;
        cJSON_free(s);
        cJSON_Delete(o);
        cJSON_Delete(j);
        c->finished = true;
        return rv;
    }
    cJSON_Delete(j);
    c->native_events++;
    if (dp_resp_client_restates(c) && dp_resp_client_has_response(ev, n)) {
        size_t at = c->conv.len;
        if ((rv = tg_buf_append(&c->conv, ev, n)) == TG_OK) {
            tg_buf one;
            tg_buf_init(&one, 0);
            if (tg_buf_append(&one, c->conv.data + at, n) == TG_OK &&
                dp_resp_client_restate(c, &one, true) == TG_OK) {
                c->conv.len = at;
                rv          = tg_buf_append(&c->conv, one.data, one.len);
            }
            tg_buf_fini(&one);
        }
        return rv;
    }
    return tg_buf_append(&c->conv, ev, n);
}

/* dp_resp_client_hold moves a stream's final event (response.completed or
 * response.incomplete, always the last) from conv into tail when the
 * response is to be kept: the client gets it once the PDP has stored the
 * response (dp_resp_keep_wait). A stream that ended without one is not
 * kept. */
static void
dp_resp_client_hold(dp_resp_client *c, bool ended)
{
    static const char *const finals[] = {"event: response.completed\n",
                                         "event: response.incomplete\n"};
    const char              *base     = c->conv.data + c->conv_off;
    size_t                   n        = c->conv.len - c->conv_off;

    if (c->keep != DP_RESP_KEEP_WANT || c->tail_held) {
        return;
    }
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]) && n > 0; i++) {
        const char *p  = base;
        size_t      fl = strlen(finals[i]);
        while ((p = memmem(p, n - (size_t)(p - base), finals[i], fl)) != NULL &&
               p != base && p[-1] != '\n') {
            p++;
        }
        if (p == NULL) {
            continue;
        }
        if (tg_buf_append(&c->tail, p, n - (size_t)(p - base)) != TG_OK) {
            c->keep = DP_RESP_KEEP_NO;
            snprintf(c->keep_why, sizeof(c->keep_why),
                     "not stored; out of memory");
            return;
        }
        c->conv.len -= n - (size_t)(p - base);
        c->tail_held = true;
        return;
    }
    if (ended || c->finished) {
        c->keep = DP_RESP_KEEP_NO;
        snprintf(c->keep_why, sizeof(c->keep_why),
                 "not stored; the response did not complete");
    }
}

void
dp_resp_client_pump(dp_resp_client *c, tg_buf *in, size_t *off, bool done)
{
    tg_err rv = TG_OK;

    if (c->native && !c->finished) {
        while (rv == TG_OK && !c->finished && *off < in->len) {
            size_t n = dp_sse_next(in->data + *off, in->len - *off);
            if (n == 0 && !done) {
                break;
            }
            n  = n == 0 ? in->len - *off : n;
            rv = dp_resp_client_native(c, in->data + *off, n);
            *off += n;
        }
        if (rv != TG_OK) {
            dp_resp_client_fail(c, rv);
        }
        dp_resp_client_hold(c, done && *off >= in->len);
        return;
    }
    if (c->finished) {
        *off = in->len; /* nothing is read after the end */
        return;
    }
    if (c->rs == NULL) {
        dp_resp_meta m = dp_resp_client_meta(c);
        if ((rv = dp_resp_stream_create(&c->rs, &m)) != TG_OK) {
            dp_resp_client_fail(c, rv);
            return;
        }
    }
    while (rv == TG_OK && *off < in->len) {
        size_t n = dp_sse_next(in->data + *off, in->len - *off);
        if (n == 0 && !done) {
            break;
        }
        if (n == 0) {
            n = in->len - *off;
        }
        rv = dp_resp_stream_feed_sse(c->rs, in->data + *off, n, &c->conv);
        *off += n;
    }
    if (rv == TG_OK && done && *off >= in->len) {
        rv          = dp_resp_stream_finish(c->rs, &c->conv);
        c->finished = true;
    }
    if (rv != TG_OK) {
        dp_resp_client_fail(c, rv);
    } else if (dp_resp_stream_ended(c->rs)) {
        c->finished = true;
    }
    dp_resp_client_hold(c, done && *off >= in->len);
}

size_t
dp_resp_client_take(dp_resp_client *c, char *buf, size_t max)
{
    size_t left = c->conv.len - c->conv_off;
    size_t n    = left < max ? left : max;

    memcpy(buf, c->conv.data + c->conv_off, n);
    c->conv_off += n;
    if (c->conv_off == c->conv.len) {
        tg_buf_reset(&c->conv);
        c->conv_off = 0;
    } else if (c->conv_off > c->conv.len / 2) {
        tg_buf_consume(&c->conv, c->conv_off);
        c->conv_off = 0;
    }
    return n;
}
