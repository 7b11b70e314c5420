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
#include "tg_time.h"

/* A put must begin this long before the data plane stops waiting, so its
 * reply can come back in time. */
#define DP_RESP_PUT_MARGIN_MS 500

/* ---- before: previous_response_id and item_reference ----------------- */

#define DP_RESP_LOOKUPS_MAX 1024 /* stored parts one request may name */

typedef struct dp_resp_lookup {
    dp_req            *r;
    struct dp_pdp     *pdp;
    int64_t            timeout_ms;
    dp_resp_keep_go_fn go;
    void              *arg;
    cJSON             *root;      /* the client's body */
    char               first[96]; /* its previous_response_id; "" */
    bool               prev;      /* asking for a response of the chain */
    bool               walked;    /* the chain is in the input */
    bool               expanded;  /* its first turn is (input: items) */
    char               want[96];  /* the response or item asked for */
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
    if (status == 0 && !dp_req_client_hung_up(r)) {
        lk->go(lk->arg, r);
        free(lk);
        return;
    }
    if (status == 0) {
        /* Its client left while its stored parts were fetched: nothing
         * goes upstream; resumed, the connection is closed by MHD. */
        status = 499;
        msg    = "The client closed the connection.";
        type   = "invalid_request_error";
        code   = "client_closed";
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

/* dp_resp_lookup_ref puts the id of the first item_reference in root's
 * input into item, or "" when it is too long for any stored item. false:
 * none. */
static bool
dp_resp_lookup_ref(const cJSON *root, char *item, size_t itemcap)
{
    const char *id = dp_resp_store_ref_id(root);

    if (id != NULL) {
        snprintf(item, itemcap, "%s", strlen(id) < itemcap ? id : "");
    }
    return id != NULL;
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

    if (!lk->prev &&
        !dp_resp_lookup_ref(lk->root, lk->want, sizeof(lk->want))) {
        if (lk->first[0] == '\0' || lk->walked) {
            dp_resp_lookup_finish(lk);
            return;
        }
        /* The items this response keeps are its own input (references
         * resolved); the turns before it are read from the chain. */
        if (dp_resp_client_own_items(lk->r->resp, lk->root) != TG_OK) {
            dp_resp_lookup_end(lk, 503, "The gateway ran out of memory; retry.",
                               "server_error", NULL, "internal_error");
            return;
        }
        lk->prev = true;
        memcpy(lk->want, lk->first, sizeof(lk->want));
    }
    if (lk->want[0] == '\0') {
        dp_resp_lookup_end(lk, 400,
                           "Item with an id of 96 or more characters not "
                           "found.",
                           "invalid_request_error", "input", "item_not_found");
        return;
    }
    if (++lk->rounds > DP_RESP_LOOKUPS_MAX) {
        dp_resp_lookup_end(lk, 400,
                           "The request names more than 1024 stored "
                           "responses and items; start a new conversation "
                           "or send older items themselves.",
                           "invalid_request_error", "input", "invalid_value");
        return;
    }
    memset(&q, 0, sizeof(q));
    memcpy(q.key_hash, lk->r->key_hash, sizeof(q.key_hash));
    memcpy(q.id, lk->want, sizeof(q.id));
    q.by_item = !lk->prev; /* the stored response holding the item */
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

/* dp_resp_lookup_chain reads which response the stored one (resp, its
 * JSON) continued: the next to ask for, or the end of the chain. false:
 * resp does not parse. */
static bool
dp_resp_lookup_chain(dp_resp_lookup *lk, const char *resp, size_t len)
{
    cJSON       *o = cJSON_ParseWithLength(resp, len);
    const cJSON *p =
        cJSON_GetObjectItemCaseSensitive(o, "previous_response_id");

    if (cJSON_IsString(p) && p->valuestring[0] != '\0' &&
        strlen(p->valuestring) < sizeof(lk->want)) {
        memcpy(lk->want, p->valuestring, strlen(p->valuestring) + 1);
    } else {
        lk->prev   = false;
        lk->walked = true;
    }
    cJSON_Delete(o);
    return o != NULL;
}

/* dp_resp_lookup_use puts a found stored response into the body: a turn
 * of the chain before the input (and which turn is next), or the items
 * an item_reference names. false: lk was answered (and freed). */
static bool
dp_resp_lookup_use(dp_resp_lookup *lk, const dp_wire_resp *rep)
{
    const char *resp  = rep->response != NULL ? rep->response : "{}";
    size_t      rlen  = rep->response != NULL ? rep->response_len : 2;
    const char *items = rep->items != NULL ? rep->items : "[]";
    size_t      ilen  = rep->items != NULL ? rep->items_len : 2;
    char        again[sizeof(lk->want)];
    char        msg[300];
    bool        ok;

    if (lk->prev) {
        /* The first turn makes the input an array of items; each earlier
         * one goes in front of it. */
        ok = (lk->expanded
                  ? dp_resp_store_prepend(lk->root, resp, rlen, items, ilen)
                  : dp_resp_store_expand(lk->root, resp, rlen, items, ilen)) ==
                 TG_OK &&
             dp_resp_lookup_chain(lk, resp, rlen);
        lk->expanded = true;
    } else {
        ok = dp_resp_store_resolve(lk->root, resp, rlen, items, ilen) >= 0;
    }
    if (!ok) {
        dp_resp_lookup_end(lk, 500,
                           "A stored response this request continues is "
                           "damaged; start a new conversation.",
                           "server_error", NULL, "internal_error");
        return false;
    }
    if (!lk->prev && !lk->walked &&
        dp_resp_lookup_ref(lk->root, again, sizeof(again)) &&
        strcmp(again, lk->want) == 0) {
        snprintf(msg, sizeof(msg), "Item with id '%s' not found.", again);
        dp_resp_lookup_end(lk, 400, msg, "invalid_request_error", "input",
                           "item_not_found");
        return false;
    }
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
        if (strcmp(lk->want, lk->first) == 0) {
            snprintf(msg, sizeof(msg),
                     "Previous response with id '%s' not found.", lk->want);
        } else {
            snprintf(msg, sizeof(msg),
                     "Previous response with id '%s' not found: an earlier "
                     "turn of '%s' (deleted, or past the retention).",
                     lk->want, lk->first);
        }
        dp_resp_lookup_end(lk, 400, msg, "invalid_request_error",
                           "previous_response_id",
                           "previous_response_not_found");
    } else if (rep->status != DP_RESP_OK) {
        snprintf(msg, sizeof(msg), "Item with id '%s' not found.", lk->want);
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
    /* The words alone (in a prompt, say) are not a reference: the body
     * goes on as the client sent it. */
    if (!cJSON_IsObject(root) ||
        (cJSON_GetObjectItemCaseSensitive(root, "previous_response_id") ==
             NULL &&
         dp_resp_store_ref_id(root) == NULL) ||
        (lk = calloc(1, sizeof(*lk))) == NULL) {
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
        memcpy(lk->first, prev->valuestring, strlen(prev->valuestring) + 1);
        memcpy(r->resp->prev_id, lk->first, sizeof(r->resp->prev_id));
    }
    dp_resp_lookup_next(lk);
    return true;
}

/* ---- after: keeping the answer --------------------------------------- */

/* dp_resp_keep_settle ends a response's keeping: why says how; one not
 * kept says "store": false; a stream's held final event is released. r's
 * mutex held. */
static void
dp_resp_keep_settle(dp_req *r, bool kept, const char *why)
{
    dp_resp_client *c = r->resp;

    c->keep = kept ? DP_RESP_KEEP_DONE : DP_RESP_KEEP_NO;
    snprintf(c->keep_why, sizeof(c->keep_why), "%s", why);
    if (!kept && dp_resp_client_restate(c, c->tail_held ? &c->tail : &r->out,
                                        c->tail_held) == TG_ENOMEM) {
        tg_warn("request %s: out of memory saying its response was not "
                "stored",
                r->request_id);
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
dp_resp_keep_forgot(void *arg, tg_err err, dp_wire_resp *rep, const char *why)
{
    char *id = arg;

    if (err != TG_OK || rep->status == DP_RESP_ERROR) {
        tg_warn("stored responses: response %s may be kept although its "
                "client was told it was not (its delete failed: %s); "
                "delete it with DELETE /v1/responses/%s",
                id, err != TG_OK ? why : "the PDP failed", id);
    }
    dp_wire_resp_fini(rep);
    free(id);
}

/* dp_resp_keep_forget deletes r's response after its put got no answer:
 * the PDP refuses a put that begins after its deadline, and one that
 * began before is committed before this delete runs (LMDB orders the
 * writes), so what the client was told ("store": false) holds. */
static void
dp_resp_keep_forget(dp_req *r)
{
    dp_wire_resp q;
    char        *id;

    memset(&q, 0, sizeof(q));
    memcpy(q.key_hash, r->key_hash, sizeof(q.key_hash));
    memcpy(q.id, r->resp->keep_id, sizeof(q.id));
    if ((id = strdup(q.id)) == NULL ||
        dp_pdp_resp(r->resp->keep_pdp, DP_RESP_DEL, r->request_id, &q,
                    r->resp->keep_timeout_ms, dp_resp_keep_forgot,
                    id) != TG_OK) {
        tg_warn("stored responses: response %s may be kept although its "
                "client was told it was not (its delete could not be sent)",
                q.id);
        free(id);
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
        dp_resp_keep_forget(r);
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
    if ((int64_t)(len + c->items_len) > c->keep_max_bytes) {
        cJSON_Delete(o);
        dp_resp_keep_settle(r, false,
                            "not stored; too large for "
                            "pdp.responses.max_response_bytes");
        return false;
    }
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
        strlen(id->valuestring) >= sizeof(q.id)) {
        cJSON_Delete(o);
        dp_resp_keep_settle(r, false, "not stored; the response has no id");
        return false;
    }
    memcpy(q.id, id->valuestring, strlen(id->valuestring) + 1);
    memcpy(c->keep_id, q.id, sizeof(c->keep_id));
    cJSON_Delete(o);
    q.deadline_ms = tg_now_ms() + c->keep_timeout_ms - DP_RESP_PUT_MARGIN_MS;
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
                                  "pdp.responses.max_response_bytes"
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
dp_resp_keep_hold(struct dp_pdp *pdp, int64_t timeout_ms, int64_t max_bytes,
                  dp_req *r)
{
    dp_resp_client *c    = r->resp;
    bool            held = false;

    pthread_mutex_lock(&r->mtx);
    if (c->keep == DP_RESP_KEEP_UNSET) {
        c->keep_max_bytes = max_bytes;
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
