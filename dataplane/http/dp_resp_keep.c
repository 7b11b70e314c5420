/* dp_resp_keep.c - stored responses around a POST /v1/responses (see
 * dp_resp_keep.h). */
#include "dp_resp_keep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "dp_pdp.h"
#include "dp_provider.h"
#include "dp_req.h"
#include "dp_resp_client.h"
#include "dp_resp_store.h"
#include "dp_sse.h"
#include "tg_jstrict.h"
#include "tg_log.h"
#include "tg_msg.h"

/* ---- before: previous_response_id and item_reference ----------------- */

#define DP_RESP_LOOKUPS_MAX 64 /* stored responses one request may name */

typedef struct dp_resp_lookup {
    dp_req            *r;
    struct dp_pdp     *pdp;
    int64_t            timeout_ms;
    dp_resp_keep_go_fn go;
    void              *arg;
    cJSON             *root;      /* the client's body */
    bool               prev;      /* asking for previous_response_id */
    char               want[96];  /* the response asked for */
    char               item[128]; /* the item_reference being resolved */
    int                rounds;
} dp_resp_lookup;

/* dp_resp_lookup_end answers r with an OpenAI error (status 0: r's body
 * is ready, hand it to a worker) and frees lk. */
static void
dp_resp_lookup_end(dp_resp_lookup *lk, unsigned status, const char *msg,
                   const char *type, const char *param, const char *code)
{
    dp_req *r = lk->r;

    cJSON_Delete(lk->root);
    if (status == 0) {
        lk->go(lk->arg, r);
        free(lk);
        return;
    }
    pthread_mutex_lock(&r->mtx);
    tg_buf_reset(&r->out);
    r->phase    = DP_PHASE_COMPLETE;
    r->status   = status;
    r->out_done = true;
    if (dp_client_error(TG_EP_CHAT_COMPLETIONS, &r->out, msg, type, param,
                        code) != TG_OK) {
        tg_buf_reset(&r->out);
    }
    dp_req_resume_locked(r);
    pthread_mutex_unlock(&r->mtx);
    free(lk);
}

/* dp_resp_lookup_ref finds the first item_reference in root's input that
 * names an item the gateway made: its id into item, its response's into
 * resp. false: none. */
static bool
dp_resp_lookup_ref(const cJSON *root, char *item, size_t itemcap, char *resp,
                   size_t respcap)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    const cJSON *it;

    if (!cJSON_IsArray(in)) {
        return false;
    }
    cJSON_ArrayForEach(it, in)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
        const cJSON *id   = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(type) &&
            strcmp(type->valuestring, "item_reference") == 0 &&
            cJSON_IsString(id) && strlen(id->valuestring) < itemcap &&
            dp_resp_store_ref_response(id->valuestring, resp, respcap)) {
            memcpy(item, id->valuestring, strlen(id->valuestring) + 1);
            return true;
        }
    }
    return false;
}

static void dp_resp_lookup_done(void *arg, tg_err err, dp_wire_resp *rep,
                                const char *why);

/* dp_resp_lookup_finish puts the expanded body in place of the client's
 * and hands r on. */
static void
dp_resp_lookup_finish(dp_resp_lookup *lk)
{
    dp_req *r = lk->r;
    char   *s = cJSON_PrintUnformatted(lk->root);
    tg_err  rv;

    if (s == NULL) {
        dp_resp_lookup_end(lk, 503, "The gateway ran out of memory; retry.",
                           "server_error", NULL, "internal_error");
        return;
    }
    tg_buf_reset(&r->body);
    rv = tg_buf_append(&r->body, s, strlen(s));
    cJSON_free(s);
    if (rv != TG_OK) {
        dp_resp_lookup_end(
            lk, rv == TG_ETOOBIG ? 413 : 503,
            rv == TG_ETOOBIG
                ? "The conversation, with the stored responses it continues, "
                  "is larger than this gateway takes in one request "
                  "(dataplane.max_body_bytes): start a new conversation or "
                  "send a shorter history in 'input'."
                : "The gateway ran out of memory; retry.",
            rv == TG_ETOOBIG ? "invalid_request_error" : "server_error", NULL,
            rv == TG_ETOOBIG ? "request_too_large" : "internal_error");
        return;
    }
    dp_resp_lookup_end(lk, 0, NULL, NULL, NULL, NULL);
}

/* dp_resp_lookup_next asks for the next stored response the body names,
 * or hands r on when none is left. */
static void
dp_resp_lookup_next(dp_resp_lookup *lk)
{
    dp_wire_resp q;
    tg_err       rv;

    if (!lk->prev && !dp_resp_lookup_ref(lk->root, lk->item, sizeof(lk->item),
                                         lk->want, sizeof(lk->want))) {
        dp_resp_lookup_finish(lk);
        return;
    }
    if (++lk->rounds > DP_RESP_LOOKUPS_MAX) {
        dp_resp_lookup_end(lk, 400,
                           "The input references items of more than 64 "
                           "stored responses; send older items themselves "
                           "instead of item_reference.",
                           "invalid_request_error", "input", "invalid_value");
        return;
    }
    memset(&q, 0, sizeof(q));
    memcpy(q.key_hash, lk->r->key_hash, sizeof(q.key_hash));
    memcpy(q.id, lk->want, sizeof(q.id));
    dp_req_ref(lk->r);
    rv = dp_pdp_resp(lk->pdp, DP_RESP_GET, lk->r->request_id, &q,
                     lk->timeout_ms, dp_resp_lookup_done, lk);
    if (rv != TG_OK) {
        dp_req_unref(lk->r);
        dp_resp_lookup_end(lk, 503,
                           "The gateway could not reach its stored "
                           "responses; retry.",
                           "server_error", NULL, "pdp_unavailable");
    }
}

/* dp_resp_lookup_use puts a found stored response into the body: the
 * whole of it before the input (previous_response_id), then every
 * item_reference to its items. false: lk was answered (and freed). */
static bool
dp_resp_lookup_use(dp_resp_lookup *lk, const dp_wire_resp *rep)
{
    const char *resp  = rep->response != NULL ? rep->response : "{}";
    size_t      rlen  = rep->response != NULL ? rep->response_len : 2;
    const char *items = rep->items != NULL ? rep->items : "[]";
    size_t      ilen  = rep->items != NULL ? rep->items_len : 2;
    char        item[sizeof(lk->item)];
    char        again[sizeof(lk->want)];
    char        msg[300];

    if ((lk->prev &&
         dp_resp_store_expand(lk->root, resp, rlen, items, ilen) != TG_OK) ||
        dp_resp_store_resolve(lk->root, resp, rlen, items, ilen) < 0) {
        dp_resp_lookup_end(lk, 500,
                           "A stored response this request continues is "
                           "damaged; start a new conversation.",
                           "server_error", NULL, "internal_error");
        return false;
    }
    if (!lk->prev &&
        dp_resp_lookup_ref(lk->root, item, sizeof(item), again,
                           sizeof(again)) &&
        strcmp(item, lk->item) == 0) {
        snprintf(msg, sizeof(msg), "Item with id '%s' not found.", item);
        dp_resp_lookup_end(lk, 400, msg, "invalid_request_error", "input",
                           "item_not_found");
        return false;
    }
    lk->prev = false;
    return true;
}

static void
dp_resp_lookup_done(void *arg, tg_err err, dp_wire_resp *rep, const char *why)
{
    dp_resp_lookup *lk = arg;
    dp_req         *r  = lk->r;
    char            msg[300];

    if (err != TG_OK) {
        tg_warn("request %s: stored responses: %s", r->request_id, why);
    }
    if (err != TG_OK || rep->status == DP_RESP_ERROR) {
        dp_resp_lookup_end(lk, 503,
                           "The gateway could not reach its stored "
                           "responses; retry.",
                           "server_error", NULL, "pdp_unavailable");
    } else if (rep->status == DP_RESP_BAD_KEY) {
        dp_resp_lookup_end(lk, 401,
                           "Incorrect API key provided: it is not a valid "
                           "Tollgate virtual key.",
                           "invalid_request_error", NULL, "invalid_api_key");
    } else if (rep->status != DP_RESP_OK && lk->prev) {
        snprintf(msg, sizeof(msg), "Previous response with id '%s' not found.",
                 lk->want);
        dp_resp_lookup_end(lk, 400, msg, "invalid_request_error",
                           "previous_response_id",
                           "previous_response_not_found");
    } else if (rep->status != DP_RESP_OK) {
        snprintf(msg, sizeof(msg), "Item with id '%s' not found.", lk->item);
        dp_resp_lookup_end(lk, 400, msg, "invalid_request_error", "input",
                           "item_not_found");
    } else if (dp_resp_lookup_use(lk, rep)) {
        dp_resp_lookup_next(lk);
    }
    dp_wire_resp_fini(rep);
    dp_req_unref(r);
}

bool
dp_resp_keep_lookup(struct dp_pdp *pdp, int64_t timeout_ms, dp_req *r,
                    dp_resp_keep_go_fn go, void *arg)
{
    dp_resp_lookup *lk;
    cJSON          *root;
    const cJSON    *prev;
    char            param[64];
    char            why[128];

    if (r->body.len == 0 ||
        (memmem(r->body.data, r->body.len, "previous_response_id", 20) ==
             NULL &&
         memmem(r->body.data, r->body.len, "item_reference", 14) == NULL)) {
        return false;
    }
    if (tg_jstrict_check(r->body.data, r->body.len, param, sizeof(param), why,
                         sizeof(why)) != TG_OK ||
        (root = cJSON_ParseWithLength(r->body.data, r->body.len)) == NULL) {
        return false; /* the worker says what is wrong with it */
    }
    if (!cJSON_IsObject(root) || (lk = calloc(1, sizeof(*lk))) == NULL) {
        cJSON_Delete(root);
        return false;
    }
    *lk  = (dp_resp_lookup){.r          = r,
                            .pdp        = pdp,
                            .timeout_ms = timeout_ms,
                            .go         = go,
                            .arg        = arg,
                            .root       = root};
    prev = cJSON_GetObjectItemCaseSensitive(root, "previous_response_id");
    if (cJSON_IsNull(prev)) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "previous_response_id");
    } else if (prev != NULL) {
        if (!cJSON_IsString(prev) || prev->valuestring[0] == '\0' ||
            strlen(prev->valuestring) >= sizeof(lk->want)) {
            dp_resp_lookup_end(lk, 400,
                               "previous_response_id must be the id of a "
                               "stored response (a string, as a Response's "
                               "'id').",
                               "invalid_request_error", "previous_response_id",
                               "invalid_value");
            return true;
        }
        memcpy(lk->want, prev->valuestring, strlen(prev->valuestring) + 1);
        memcpy(r->resp->prev_id, lk->want, sizeof(r->resp->prev_id));
        lk->prev = true;
    }
    dp_resp_lookup_next(lk);
    return true;
}

/* ---- after: keeping the answer --------------------------------------- */

/* dp_resp_keep_unstore sets "store" in the JSON object text b (the
 * "response" inside it when event: b is a whole SSE event) to false. A
 * text it cannot read is left as it was. */
static void
dp_resp_keep_unstore(tg_buf *b, bool event)
{
    dp_sse_fields f;
    cJSON        *root = NULL;
    cJSON        *o;
    char         *s = NULL;
    tg_buf        nb;

    memset(&f, 0, sizeof(f));
    if (event) {
        if (dp_sse_read(b->data, b->len, &f) == TG_OK && f.data != NULL) {
            root = cJSON_ParseWithLength(f.data, f.len);
        }
    } else {
        root = cJSON_ParseWithLength(b->data, b->len);
    }
    o = event ? cJSON_GetObjectItemCaseSensitive(root, "response") : root;
    if (cJSON_IsObject(o) &&
        cJSON_ReplaceItemInObjectCaseSensitive(o, "store",
                                               cJSON_CreateFalse()) &&
        (s = cJSON_PrintUnformatted(root)) != NULL) {
        tg_buf_init(&nb, 0);
        if ((event ? dp_sse_put(&nb, f.event, s, strlen(s))
                   : tg_buf_append(&nb, s, strlen(s))) == TG_OK) {
            tg_buf_reset(b);
            if (tg_buf_append(b, nb.data, nb.len) != TG_OK) {
                tg_warn("stored responses: out of memory rewriting store");
            }
        }
        tg_buf_fini(&nb);
    }
    cJSON_free(s);
    cJSON_Delete(root);
    dp_sse_fields_fini(&f);
}

/* dp_resp_keep_settle ends a response's keeping: why says how; one not
 * kept says "store": false; a stream's held final event is released. r's
 * mutex held. */
static void
dp_resp_keep_settle(dp_req *r, bool kept, const char *why)
{
    dp_resp_client *c = r->resp;

    c->keep = kept ? DP_RESP_KEEP_DONE : DP_RESP_KEEP_NO;
    snprintf(c->keep_why, sizeof(c->keep_why), "%s", why);
    if (!kept) {
        dp_resp_keep_unstore(c->tail_held ? &c->tail : &r->out, c->tail_held);
    }
    if (c->tail_held) {
        if (tg_buf_append(&c->conv, c->tail.data, c->tail.len) != TG_OK) {
            tg_warn("request %s: out of memory for a stream's last event",
                    r->request_id);
        }
        tg_buf_reset(&c->tail);
        c->tail_held = false;
    }
}

static void
dp_resp_keep_done(void *arg, tg_err err, dp_wire_resp *rep, const char *why)
{
    dp_req         *r  = arg;
    dp_resp_client *c  = r->resp;
    bool            ok = err == TG_OK && rep->status == DP_RESP_OK;

    if (err != TG_OK) {
        tg_warn("request %s: its response was not stored: %s", r->request_id,
                why);
    }
    pthread_mutex_lock(&r->mtx);
    dp_resp_keep_settle(
        r, ok,
        ok ? (c->redacted ? "stored; input redacted by a guardrail" : "stored")
        : err != TG_OK ? "not stored; the PDP could not be reached"
        : rep->status == DP_RESP_OVER_QUOTA
            ? "not stored; over the tenant's quota "
              "(pdp.responses.max_bytes_per_tenant)"
        : rep->status == DP_RESP_BAD_KEY
            ? "not stored; the key no longer authenticates"
            : "not stored; the PDP could not store it");
    dp_req_resume_locked(r);
    pthread_mutex_unlock(&r->mtx);
    dp_wire_resp_fini(rep);
    dp_req_unref(r);
}

/* dp_resp_keep_put puts the Response json (len bytes) and c's input items
 * to the PDP. false: it did not start, and r's keeping is settled. r's
 * mutex held. */
static bool
dp_resp_keep_put(dp_req *r, const char *json, size_t len)
{
    dp_resp_client *c  = r->resp;
    cJSON          *o  = cJSON_ParseWithLength(json, len);
    const cJSON    *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    dp_wire_resp    q;
    tg_err          rv;

    memset(&q, 0, sizeof(q));
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
        strlen(id->valuestring) >= sizeof(q.id)) {
        cJSON_Delete(o);
        dp_resp_keep_settle(r, false, "not stored; the response has no id");
        return false;
    }
    memcpy(q.id, id->valuestring, strlen(id->valuestring) + 1);
    cJSON_Delete(o);
    memcpy(q.key_hash, r->key_hash, sizeof(q.key_hash));
    q.response     = (char *)json;
    q.response_len = len;
    q.items        = c->items != NULL ? c->items : "[]";
    q.items_len    = c->items != NULL ? c->items_len : 2;
    dp_req_ref(r);
    rv = dp_pdp_resp(c->keep_pdp, DP_RESP_PUT, r->request_id, &q,
                     c->keep_timeout_ms, dp_resp_keep_done, r);
    if (rv != TG_OK) {
        dp_req_unref(r);
        dp_resp_keep_settle(r, false,
                            rv == TG_ETOOBIG
                                ? "not stored; too large for "
                                  "pdp.max_message_bytes"
                                : "not stored; the PDP could not be reached");
        return false;
    }
    c->keep = DP_RESP_KEEP_PUTTING;
    return true;
}

/* dp_resp_keep_plan decides whether r's answer is kept, and has its
 * Response say so. r's mutex held. */
static void
dp_resp_keep_plan(dp_req *r, struct dp_pdp *pdp, int64_t timeout_ms)
{
    dp_resp_client *c    = r->resp;
    const char     *why  = "";
    bool            want = false;

    if (r->status < 200 || r->status >= 300) {
        why = ""; /* an error is not a response */
    } else if (!c->store_asked) {
        why = "not stored; store is false";
    } else if (!r->have_decision) {
        why = "not stored; no policy decision (served fail-open)";
    } else if (r->dec.capture_level < TG_CAPTURE_METADATA) {
        why = "not stored; capture level none";
    } else {
        want = true;
    }
    c->keep            = want ? DP_RESP_KEEP_WANT : DP_RESP_KEEP_NO;
    c->keep_pdp        = pdp;
    c->keep_timeout_ms = timeout_ms;
    snprintf(c->keep_why, sizeof(c->keep_why), "%s", why);
    if (c->echo != NULL && c->store_asked) {
        cJSON *v = cJSON_CreateBool(want);
        if (v == NULL ||
            (cJSON_GetObjectItemCaseSensitive(c->echo, "store") != NULL
                 ? !cJSON_ReplaceItemInObjectCaseSensitive(c->echo, "store", v)
                 : !cJSON_AddItemToObject(c->echo, "store", v))) {
            cJSON_Delete(v);
        }
    }
}

bool
dp_resp_keep_hold(struct dp_pdp *pdp, int64_t timeout_ms, dp_req *r)
{
    dp_resp_client *c    = r->resp;
    bool            held = false;

    pthread_mutex_lock(&r->mtx);
    if (c->keep == DP_RESP_KEEP_UNSET) {
        dp_resp_keep_plan(r, pdp, timeout_ms);
    }
    if (c->keep == DP_RESP_KEEP_WANT && r->phase == DP_PHASE_COMPLETE) {
        if (dp_resp_client_body(c, &r->out) != TG_OK) {
            c->keep = DP_RESP_KEEP_NO; /* dp_server answers 502 */
        } else {
            c->body_done = true;
            held         = dp_resp_keep_put(r, r->out.data, r->out.len);
        }
    }
    if (held) {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&r->mtx);
    return held;
}

bool
dp_resp_keep_wait(dp_req *r)
{
    dp_resp_client *c = r->resp;
    dp_sse_fields   f;
    cJSON          *root = NULL;
    char           *s    = NULL;
    bool            started;

    if (c == NULL || !c->tail_held) {
        return false;
    }
    if (c->keep != DP_RESP_KEEP_WANT) {
        return c->keep == DP_RESP_KEEP_PUTTING;
    }
    /* What is kept is the final event's Response, as the client gets it. */
    memset(&f, 0, sizeof(f));
    if (dp_sse_read(c->tail.data, c->tail.len, &f) == TG_OK && f.data != NULL) {
        root = cJSON_ParseWithLength(f.data, f.len);
        s    = cJSON_PrintUnformatted(
               cJSON_GetObjectItemCaseSensitive(root, "response"));
    }
    dp_sse_fields_fini(&f);
    cJSON_Delete(root);
    if (s == NULL) {
        dp_resp_keep_settle(r, false, "not stored; its final event is damaged");
        return false;
    }
    started = dp_resp_keep_put(r, s, strlen(s));
    cJSON_free(s);
    return started;
}
