/* dp_guard_stream.c - output guardrails on a stream. Each channel (a
 * choice's text, a tool call's arguments, an Anthropic content block) has
 * its own engine stream scanner, which holds back no more than the longest
 * match the active detectors can make. An event's text is replaced by
 * what its channel releases (redacted); an event left with nothing to say
 * is dropped; when a channel ends (finish_reason, content_block_stop,
 * [DONE], message_stop, the end of the body) what it still holds is
 * released into that event or one made for it. A block stops the stream
 * before the client sees the matched text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dp_guard.h"
#include "dp_guard_req.h"

struct dp_gchan {
    int choice; /* OpenAI choice index; Anthropic block index */
    int tool;   /* -1 text; OpenAI tool call index; Anthropic 0
                   text, 1 input_json */
    tg_guard_stream *st;
    bool             ended;
};

void
dp_guard_stream_fini(dp_guard_req *g)
{
    for (uint32_t i = 0; i < g->n_chans; i++) {
        tg_guard_stream_destroy(g->chans[i].st);
    }
    free(g->chans);
    g->chans   = NULL;
    g->n_chans = 0;
}

static dp_gchan *
dp_gchan_get(dp_guard_req *g, int choice, int tool)
{
    dp_gchan *c;

    for (uint32_t i = 0; i < g->n_chans; i++) {
        if (g->chans[i].choice == choice && g->chans[i].tool == tool) {
            return &g->chans[i];
        }
    }
    if (g->n_chans == DP_GUARD_CHANNELS_MAX) {
        return NULL;
    }
    if (g->chans == NULL &&
        (g->chans = calloc(DP_GUARD_CHANNELS_MAX, sizeof(*g->chans))) == NULL) {
        return NULL;
    }
    c = &g->chans[g->n_chans];
    memset(c, 0, sizeof(*c));
    c->choice = choice;
    c->tool   = tool;
    if (tg_guard_stream_create(
            &c->st, g->set, g->stage_mask[TG_GUARD_OUTPUT], g->redact,
            g->canary[0] != '\0' ? g->canary : NULL) != TG_OK) {
        return NULL;
    }
    g->n_chans++;
    return c;
}

/* dp_gchan_feed scans the next text of c; rel gets what is released. */
static dp_guard_verdict
dp_gchan_feed(dp_guard_req *g, dp_gchan *c, const char *text, size_t len,
              bool final, tg_buf *rel)
{
    char   where[32];
    tg_err rv;

    tg_buf_reset(rel);
    if (c == NULL) {
        return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
    }
    if (c->ended && len == 0) {
        return DP_GUARD_PASS; /* nothing more, and nothing held */
    }
    if (c->ended) {
        /* Text after the channel ended (a provider that sends more after
         * its finish): scanned on its own, as a channel of its own. */
        tg_guard_stream_destroy(c->st);
        c->st    = NULL;
        c->ended = false;
        if (tg_guard_stream_create(
                &c->st, g->set, g->stage_mask[TG_GUARD_OUTPUT], g->redact,
                g->canary[0] != '\0' ? g->canary : NULL) != TG_OK) {
            return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
        }
    }
    g->hits.n = 0;
    rv = tg_guard_stream_feed(c->st, dp_guard_scratch(), text, len, final, rel,
                              &g->hits);
    if (rv != TG_OK) {
        return dp_guard_failed(g, TG_GUARD_OUTPUT, rv);
    }
    c->ended = c->ended || final;
    /* The answer's text for the shape checks: the first choice's text
     * (OpenAI), every text block (Anthropic: tool 0 and no template). */
    if (rel->len > 0 && ((c->tool < 0 && c->choice == 0) ||
                         (c->tool == 0 && g->tmpl == NULL))) {
        tg_buf_add(&g->shape, rel->data, rel->len); /* capped */
    }
    if (g->hits.n == 0) {
        return DP_GUARD_PASS;
    }
    if (c->tool < 0) {
        snprintf(where, sizeof(where), "output[%d]", c->choice);
    } else {
        snprintf(where, sizeof(where), "output[%d].tool[%d]", c->choice,
                 c->tool);
    }
    return dp_guard_hits_apply(g, TG_GUARD_OUTPUT, where) == DP_GUARD_BLOCKED
               ? DP_GUARD_BLOCKED
               : DP_GUARD_PASS;
}

/* dp_gs_put appends one SSE event: "event: name\n" when name is given. */
static void
dp_gs_put(tg_buf *out, const char *name, const cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);

    if (text == NULL) {
        tg_buf_fail(out, TG_ENOMEM);
        return;
    }
    if (name != NULL) {
        tg_buf_addf(out, "event: %s\n", name);
    }
    tg_buf_addf(out, "data: %s\n\n", text);
    free(text);
}

/* ---- OpenAI chunks ---------------------------------------------------- */

/* dp_gs_set_str replaces (or adds) obj[key] with the string s. */
static bool
dp_gs_set_str(cJSON *obj, const char *key, const char *s)
{
    cJSON *v = cJSON_CreateString(s);

    if (v == NULL) {
        return false;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL) {
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
    }
    return cJSON_AddItemToObject(obj, key, v);
}

/* dp_gs_append_str appends s to obj[key] (a string; added when absent):
 * a chunk's own released text comes first, what a flush releases after. */
static bool
dp_gs_append_str(cJSON *obj, const char *key, const char *s)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(obj, key);
    tg_buf       t;
    bool         ok;

    if (!cJSON_IsString(cur) || cur->valuestring[0] == '\0') {
        return dp_gs_set_str(obj, key, s);
    }
    tg_buf_init(&t, 0);
    tg_buf_addf(&t, "%s%s", cur->valuestring, s);
    ok = tg_buf_error(&t) == TG_OK && dp_gs_set_str(obj, key, t.data);
    tg_buf_fini(&t);
    return ok;
}

/* dp_gs_tool_args finds (or adds) the tool_calls entry of index k in
 * delta and returns its "function" object. */
static cJSON *
dp_gs_tool_fn(cJSON *delta, int k)
{
    cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    cJSON *tc, *fn;

    if (tcs == NULL &&
        (tcs = cJSON_AddArrayToObject(delta, "tool_calls")) == NULL) {
        return NULL;
    }
    cJSON_ArrayForEach(tc, tcs)
    {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(tc, "index");
        if (cJSON_IsNumber(ix) && ix->valueint == k) {
            fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            return fn != NULL ? fn : cJSON_AddObjectToObject(tc, "function");
        }
    }
    if ((tc = cJSON_CreateObject()) == NULL ||
        cJSON_AddNumberToObject(tc, "index", k) == NULL ||
        !cJSON_AddItemToArray(tcs, tc)) {
        cJSON_Delete(tc);
        return NULL;
    }
    return cJSON_AddObjectToObject(tc, "function");
}

/* dp_gs_choice_flush releases what the channels of choice i hold into
 * its delta (chat) or choice (completions). */
static dp_guard_verdict
dp_gs_choice_flush(dp_guard_req *g, tg_endpoint ep, int i, cJSON *holder,
                   tg_buf *rel)
{
    const char *key = ep == TG_EP_CHAT_COMPLETIONS ? "content" : "text";

    for (uint32_t k = 0; k < g->n_chans; k++) {
        dp_gchan        *c = &g->chans[k];
        dp_guard_verdict v;
        cJSON           *fn, *cur;
        if (c->choice != i || c->ended) {
            continue;
        }
        if ((v = dp_gchan_feed(g, c, "", 0, true, rel)) != DP_GUARD_PASS) {
            return v;
        }
        if (rel->len == 0) {
            continue;
        }
        if (c->tool < 0) {
            cur = cJSON_GetObjectItemCaseSensitive(holder, key);
            tg_buf_add(rel, "", 0);
            if (cJSON_IsString(cur) && cur->valuestring[0] != '\0') {
                tg_buf tmp;
                tg_buf_init(&tmp, 0);
                tg_buf_addf(&tmp, "%s%s", cur->valuestring, rel->data);
                bool ok = tg_buf_error(&tmp) == TG_OK &&
                          dp_gs_set_str(holder, key, tmp.data);
                tg_buf_fini(&tmp);
                if (!ok) {
                    return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
                }
            } else if (!dp_gs_set_str(holder, key, rel->data)) {
                return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
            }
        } else if ((fn = dp_gs_tool_fn(holder, c->tool)) == NULL ||
                   !dp_gs_append_str(fn, "arguments", rel->data)) {
            return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
        }
    }
    return DP_GUARD_PASS;
}

/* dp_gs_text filters holder[key] (a string) through channel c. */
static dp_guard_verdict
dp_gs_text(dp_guard_req *g, dp_gchan *c, cJSON *holder, const char *key,
           tg_buf *rel, bool *said)
{
    cJSON           *s = cJSON_GetObjectItemCaseSensitive(holder, key);
    dp_guard_verdict v;

    if (!cJSON_IsString(s)) {
        return DP_GUARD_PASS;
    }
    v = dp_gchan_feed(g, c, s->valuestring, strlen(s->valuestring), false, rel);
    if (v != DP_GUARD_PASS) {
        return v;
    }
    tg_buf_add(rel, "", 0);
    if (!dp_gs_set_str(holder, key, rel->data != NULL ? rel->data : "")) {
        return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
    }
    *said = *said || rel->len > 0;
    return DP_GUARD_PASS;
}

/* dp_gs_choice filters one choice of a chunk; *keep: it still says
 * something (text, a role, a tool call's id or name, a finish). */
static dp_guard_verdict
dp_gs_choice(dp_guard_req *g, tg_endpoint ep, cJSON *ch, int pos, tg_buf *rel,
             bool *keep)
{
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(ch, "index");
    int          i  = cJSON_IsNumber(ix) ? ix->valueint : pos;
    bool         fin =
        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason"));
    cJSON           *holder = ch;
    cJSON           *tc;
    dp_guard_verdict v;
    bool             said = fin;

    if (ep == TG_EP_CHAT_COMPLETIONS) {
        holder = cJSON_GetObjectItemCaseSensitive(ch, "delta");
        if (holder == NULL) {
            holder = cJSON_AddObjectToObject(ch, "delta");
        }
        said = said || cJSON_GetObjectItemCaseSensitive(holder, "role") != NULL;
        v    = dp_gs_text(g, dp_gchan_get(g, i, -1), holder, "content", rel,
                          &said);
        cJSON_ArrayForEach(
            tc, cJSON_GetObjectItemCaseSensitive(holder, "tool_calls"))
        {
            const cJSON *k  = cJSON_GetObjectItemCaseSensitive(tc, "index");
            cJSON       *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            said = said || cJSON_GetObjectItemCaseSensitive(tc, "id") != NULL ||
                   cJSON_GetObjectItemCaseSensitive(fn, "name") != NULL;
            if (v == DP_GUARD_PASS && fn != NULL) {
                v = dp_gs_text(
                    g, dp_gchan_get(g, i, cJSON_IsNumber(k) ? k->valueint : 0),
                    fn, "arguments", rel, &said);
            }
        }
    } else {
        v = dp_gs_text(g, dp_gchan_get(g, i, -1), holder, "text", rel, &said);
    }
    if (v == DP_GUARD_PASS && fin) {
        v = dp_gs_choice_flush(g, ep, i, holder, rel);
    }
    *keep = *keep || said;
    return v;
}

/* dp_gs_template keeps the chunk's id fields, to make chunks that release
 * what is held when the stream ends without a finish_reason. */
static void
dp_gs_template(dp_guard_req *g, const cJSON *root)
{
    cJSON *t;

    if (g->tmpl != NULL || (t = cJSON_Duplicate(root, true)) == NULL) {
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(t, "choices");
    cJSON_DeleteItemFromObjectCaseSensitive(t, "usage");
    g->tmpl = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
}

/* dp_gs_openai_flush releases every open channel in chunks of their own. */
static dp_guard_verdict
dp_gs_openai_flush(dp_guard_req *g, tg_endpoint ep, tg_buf *out, tg_buf *rel)
{
    for (uint32_t k = 0; k < g->n_chans; k++) {
        int              i = g->chans[k].choice;
        cJSON           *root, *choices, *ch, *holder;
        dp_guard_verdict v;
        bool             any;
        if (g->chans[k].ended) {
            continue;
        }
        root = g->tmpl != NULL ? cJSON_Parse(g->tmpl) : cJSON_CreateObject();
        if (root == NULL ||
            (choices = cJSON_AddArrayToObject(root, "choices")) == NULL ||
            (ch = cJSON_CreateObject()) == NULL) {
            cJSON_Delete(root);
            return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
        }
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", i);
        holder = ep == TG_EP_CHAT_COMPLETIONS
                     ? cJSON_AddObjectToObject(ch, "delta")
                     : ch;
        cJSON_AddNullToObject(ch, "finish_reason");
        v   = dp_gs_choice_flush(g, ep, i, holder, rel);
        any = holder != NULL && holder->child != NULL;
        if (v == DP_GUARD_PASS && any) {
            dp_gs_put(out, NULL, root);
        }
        cJSON_Delete(root);
        if (v != DP_GUARD_PASS) {
            return v;
        }
    }
    return DP_GUARD_PASS;
}

static dp_guard_verdict
dp_gs_openai(dp_guard_req *g, tg_endpoint ep, const char *data, size_t len,
             const char *raw, size_t rawlen, tg_buf *out, tg_buf *rel)
{
    cJSON           *root, *ch;
    dp_guard_verdict v    = DP_GUARD_PASS;
    bool             keep = false;
    int              pos  = 0;

    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        if ((v = dp_gs_openai_flush(g, ep, out, rel)) == DP_GUARD_PASS) {
            v = dp_guard_shape(g);
        }
        if (v == DP_GUARD_PASS) {
            tg_buf_add(out, raw, rawlen);
        }
        return v;
    }
    if ((root = cJSON_ParseWithLength(data, len)) == NULL) {
        tg_buf_add(out, raw, rawlen); /* not a chunk: an error event */
        return DP_GUARD_PASS;
    }
    dp_gs_template(g, root);
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(root, "choices"))
    {
        if (v == DP_GUARD_PASS) {
            v = dp_gs_choice(g, ep, ch, pos++, rel, &keep);
        }
    }
    keep = keep ||
           cJSON_GetArraySize(
               cJSON_GetObjectItemCaseSensitive(root, "choices")) == 0 ||
           cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "usage"));
    if (v == DP_GUARD_PASS && keep) {
        dp_gs_put(out, NULL, root);
    }
    cJSON_Delete(root);
    return v;
}

/* ---- Anthropic Messages events ---------------------------------------- */

/* dp_gs_anth_release releases what block idx's channel holds as a delta
 * event of its own. */
static dp_guard_verdict
dp_gs_anth_release(dp_guard_req *g, dp_gchan *c, tg_buf *out, tg_buf *rel)
{
    dp_guard_verdict v;
    cJSON           *ev, *d;

    if (c->ended) {
        return DP_GUARD_PASS;
    }
    if ((v = dp_gchan_feed(g, c, "", 0, true, rel)) != DP_GUARD_PASS ||
        rel->len == 0) {
        return v;
    }
    tg_buf_add(rel, "", 0);
    ev = cJSON_CreateObject();
    if (ev == NULL ||
        !cJSON_AddStringToObject(ev, "type", "content_block_delta") ||
        !cJSON_AddNumberToObject(ev, "index", c->choice) ||
        (d = cJSON_AddObjectToObject(ev, "delta")) == NULL ||
        !cJSON_AddStringToObject(
            d, "type", c->tool == 1 ? "input_json_delta" : "text_delta") ||
        !cJSON_AddStringToObject(d, c->tool == 1 ? "partial_json" : "text",
                                 rel->data)) {
        cJSON_Delete(ev);
        return dp_guard_failed(g, TG_GUARD_OUTPUT, TG_ENOMEM);
    }
    dp_gs_put(out, "content_block_delta", ev);
    cJSON_Delete(ev);
    return DP_GUARD_PASS;
}

static dp_guard_verdict
dp_gs_anth_all(dp_guard_req *g, tg_buf *out, tg_buf *rel)
{
    dp_guard_verdict v = DP_GUARD_PASS;

    for (uint32_t k = 0; k < g->n_chans && v == DP_GUARD_PASS; k++) {
        v = dp_gs_anth_release(g, &g->chans[k], out, rel);
    }
    return v;
}

static dp_guard_verdict
dp_gs_anth(dp_guard_req *g, const char *data, size_t len, const char *raw,
           size_t rawlen, tg_buf *out, tg_buf *rel)
{
    cJSON           *root = cJSON_ParseWithLength(data, len);
    const cJSON     *t    = cJSON_GetObjectItemCaseSensitive(root, "type");
    const char      *type = cJSON_IsString(t) ? t->valuestring : "";
    const cJSON     *ix   = cJSON_GetObjectItemCaseSensitive(root, "index");
    int              idx  = cJSON_IsNumber(ix) ? ix->valueint : 0;
    dp_guard_verdict v    = DP_GUARD_PASS;
    bool             said = false;

    if (strcmp(type, "content_block_delta") == 0) {
        cJSON       *d  = cJSON_GetObjectItemCaseSensitive(root, "delta");
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(d, "type");
        const char  *k  = cJSON_IsString(dt) ? dt->valuestring : "";
        if (strcmp(k, "text_delta") == 0 ||
            strcmp(k, "input_json_delta") == 0) {
            bool json = strcmp(k, "input_json_delta") == 0;
            v         = dp_gs_text(g, dp_gchan_get(g, idx, json ? 1 : 0), d,
                           json ? "partial_json" : "text", rel, &said);
            if (v == DP_GUARD_PASS && said) {
                dp_gs_put(out, "content_block_delta", root);
            }
            cJSON_Delete(root);
            return v;
        }
    } else if (strcmp(type, "content_block_stop") == 0) {
        for (uint32_t k = 0; k < g->n_chans && v == DP_GUARD_PASS; k++) {
            if (g->chans[k].choice == idx) {
                v = dp_gs_anth_release(g, &g->chans[k], out, rel);
            }
        }
    } else if (strcmp(type, "message_stop") == 0 ||
               strcmp(type, "error") == 0) {
        v = dp_gs_anth_all(g, out, rel);
        if (v == DP_GUARD_PASS && strcmp(type, "message_stop") == 0) {
            v = dp_guard_shape(g);
        }
    }
    if (v == DP_GUARD_PASS) {
        tg_buf_add(out, raw, rawlen);
    }
    cJSON_Delete(root);
    return v;
}

/* ---- events ----------------------------------------------------------- */

/* dp_gs_data finds the data of one SSE event. */
static bool
dp_gs_data(const char *ev, size_t len, const char **data, size_t *dlen)
{
    const char *p = ev, *end = ev + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        if (le - p >= 5 && memcmp(p, "data:", 5) == 0) {
            *data = p + 5;
            if (*data < le && **data == ' ') {
                (*data)++;
            }
            *dlen = (size_t)(le - *data);
            return true;
        }
        p = le + 1;
    }
    return false;
}

dp_guard_verdict
dp_guard_stream(dp_guard_req *g, tg_endpoint ep, const char *ev, size_t len,
                bool final, tg_buf *out)
{
    const char      *p = ev, *end = ev + len;
    dp_guard_verdict v = DP_GUARD_PASS;
    tg_buf           rel;

    if (!dp_guard_stage_on(g, TG_GUARD_OUTPUT) || ep == TG_EP_EMBEDDINGS) {
        tg_buf_add(out, ev, len);
        return tg_buf_error(out) == TG_OK ? DP_GUARD_PASS : DP_GUARD_ERROR;
    }
    tg_buf_init(&rel, 0);
    while (p < end && v == DP_GUARD_PASS) {
        const char *sep = NULL;
        const char *data;
        size_t      dlen, n;
        for (const char *q = p; q + 1 < end && sep == NULL; q++) {
            sep = q[0] == '\n' && q[1] == '\n' ? q : NULL;
        }
        n = sep != NULL ? (size_t)(sep + 2 - p) : (size_t)(end - p);
        if (!dp_gs_data(p, n, &data, &dlen)) {
            tg_buf_add(out, p, n);
        } else if (ep == TG_EP_MESSAGES) {
            v = dp_gs_anth(g, data, dlen, p, n, out, &rel);
        } else {
            v = dp_gs_openai(g, ep, data, dlen, p, n, out, &rel);
        }
        p += n;
    }
    if (v == DP_GUARD_PASS && final) {
        v = ep == TG_EP_MESSAGES ? dp_gs_anth_all(g, out, &rel)
                                 : dp_gs_openai_flush(g, ep, out, &rel);
    }
    tg_buf_fini(&rel);
    if (v == DP_GUARD_PASS && tg_buf_error(out) != TG_OK) {
        v = dp_guard_failed(g, TG_GUARD_OUTPUT, tg_buf_error(out));
    }
    return v;
}
