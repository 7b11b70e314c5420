/* pdp_responses_srv.c - the PDP's side of stored Responses API responses:
 * RespPut, RespGet and RespDelete on the store's responses database
 * (pdp_responses.h), scoped to the tenant of the key that asks (looked up
 * here: an unknown, revoked or expired key gets BAD_KEY), and their
 * retention (pdp.responses). */
#include <stdlib.h>
#include <string.h>

#include "pdp_responses.h"
#include "pdp_server_int.h"
#include "tg_log.h"
#include "tg_time.h"

_Static_assert(PDP_WIRE_RESP_ID_MAX == PDP_RESP_ID_MAX,
               "a stored response's id fits the wire's");

static void
resp_rep(pdp_worker *w, pdp_wire_resp_status st)
{
    memset(&w->rep, 0, sizeof(w->rep));
    w->rep.kind          = PDP_REP_RESP;
    w->rep.u.resp.status = st;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
    memcpy(w->rep.u.resp.resp.id, w->req.u.resp.id,
           sizeof(w->rep.u.resp.resp.id));
}

/* resp_key finds the asking key's record: false (the reply says why)
 * when it is unknown or no longer authenticates. */
static bool
resp_key(pdp_worker *w, pdp_key *k)
{
    tg_err rv;

    if ((rv = pdp_store_read_begin(w->rd)) != TG_OK) {
        resp_rep(w, PDP_RESP_ERROR);
        return false;
    }
    rv = pdp_store_key_get(w->rd, w->req.u.resp.key_hash, k);
    pdp_store_read_end(w->rd);
    if (rv == TG_OK &&
        pdp_key_state_at(k, tg_now_ms()) == PDP_KEY_STATE_ACTIVE) {
        return true;
    }
    resp_rep(w, rv == TG_OK || rv == TG_ENOTFOUND ? PDP_RESP_BAD_KEY
                                                  : PDP_RESP_ERROR);
    return false;
}

/* resp_keep_ms: how long a stored response is kept (pdp.responses). */
static int64_t
resp_keep_ms(const tg_pdp_config *c)
{
    return c->resp_retention_s > 0 ? c->resp_retention_s * 1000
                                   : c->resp_retention_days * 86400000LL;
}

static void
resp_put(pdp_worker *w, const pdp_key *k)
{
    const pdp_wire_resp *q = &w->req.u.resp;
    pdp_resp_rec         r;
    tg_err               rv;

    memset(&r, 0, sizeof(r));
    if (strlen(q->id) >= sizeof(r.id) ||
        (int64_t)(q->response_len + q->items_len) >
            w->srv->cfg->pdp.resp_max_response_bytes) {
        resp_rep(w, PDP_RESP_ERROR);
        return;
    }
    memcpy(r.tenant, k->tenant, sizeof(r.tenant));
    memcpy(r.id, q->id, strlen(q->id) + 1);
    memcpy(r.key_id, k->id, sizeof(r.key_id));
    r.created_ms   = q->created_ms > 0 ? q->created_ms : tg_now_ms();
    r.response     = q->response != NULL ? q->response : "";
    r.response_len = q->response_len;
    r.items        = q->items != NULL ? q->items : "[]";
    r.items_len    = q->items != NULL ? q->items_len : 2;
    r.deadline_ms  = q->deadline_ms;
    rv             = pdp_store_resp_put(w->srv->st, &r,
                                        w->srv->cfg->pdp.resp_max_bytes_per_tenant);
    if (rv == TG_ETOOBIG) { /* over the tenant's quota */
        resp_rep(w, PDP_RESP_OVER_QUOTA);
        return;
    }
    if (rv == TG_ETIMEDOUT) { /* its data plane stopped waiting */
        tg_info("responses: a response came after its deadline; not stored");
        resp_rep(w, PDP_RESP_ERROR);
        return;
    }
    if (rv != TG_OK) {
        tg_warn("responses: cannot store a response: %s", tg_strerror(rv));
        resp_rep(w, PDP_RESP_ERROR);
        return;
    }
    resp_rep(w, PDP_RESP_OK);
    w->sync = true;
}

static void
resp_get(pdp_worker *w, const pdp_key *k)
{
    const pdp_wire_resp *q = &w->req.u.resp;
    pdp_resp_rec         r;
    tg_err               rv;

    memset(&r, 0, sizeof(r));
    /* by_item: q->id is an item id, r.id the response that holds it. */
    rv = q->by_item ? pdp_store_resp_get_item(w->srv->st, k->tenant, q->id, &r)
                    : pdp_store_resp_get(w->srv->st, k->tenant, q->id, &r);
    if (rv == TG_OK &&
        r.created_ms < tg_now_ms() - resp_keep_ms(&w->srv->cfg->pdp)) {
        rv = TG_ENOTFOUND; /* past the retention: pruning will delete it */
    }
    if (rv != TG_OK) {
        pdp_resp_rec_fini(&r);
        if (rv != TG_ENOTFOUND) {
            tg_warn("responses: cannot read a response: %s", tg_strerror(rv));
        }
        resp_rep(w, rv == TG_ENOTFOUND ? PDP_RESP_NOT_FOUND : PDP_RESP_ERROR);
        return;
    }
    resp_rep(w, PDP_RESP_OK);
    memcpy(w->rep.u.resp.resp.id, r.id, sizeof(w->rep.u.resp.resp.id));
    /* The reply takes the record's buffers (pdp_wire_reply_release). */
    w->rep.u.resp.resp.created_ms   = r.created_ms;
    w->rep.u.resp.resp.response     = r.response;
    w->rep.u.resp.resp.response_len = r.response_len;
    w->rep.u.resp.resp.items        = r.items;
    w->rep.u.resp.resp.items_len    = r.items_len;
}

static void
resp_del(pdp_worker *w, const pdp_key *k)
{
    tg_err rv = pdp_store_resp_del(w->srv->st, k->tenant, w->req.u.resp.id);

    if (rv != TG_OK && rv != TG_ENOTFOUND) {
        tg_warn("responses: cannot delete a response: %s", tg_strerror(rv));
    }
    resp_rep(w, rv == TG_OK          ? PDP_RESP_OK
                : rv == TG_ENOTFOUND ? PDP_RESP_NOT_FOUND
                                     : PDP_RESP_ERROR);
    w->sync = rv == TG_OK;
}

void
pdp_server_resp_handle(pdp_worker *w)
{
    pdp_key k;

    if (!resp_key(w, &k)) {
        pdp_wire_request_release(&w->req);
        return;
    }
    switch (w->req.kind) {
    case PDP_REQ_RESP_PUT:
        resp_put(w, &k);
        break;
    case PDP_REQ_RESP_GET:
        resp_get(w, &k);
        break;
    case PDP_REQ_RESP_DEL:
        resp_del(w, &k);
        break;
    default:
        break;
    }
    pdp_wire_request_release(&w->req);
}

void
pdp_server_resp_prune(pdp_server *srv)
{
    const tg_pdp_config *c = &srv->cfg->pdp;
    int64_t              keep_ms;
    uint64_t             n = 0;
    tg_err               rv;

    keep_ms = resp_keep_ms(c);
    if (keep_ms <= 0) {
        return;
    }
    rv = pdp_store_resp_prune(srv->st, tg_now_ms() - keep_ms, &n);
    if (rv != TG_OK) {
        tg_warn("responses: cannot prune old responses: %s", tg_strerror(rv));
    } else if (n > 0) {
        tg_info("responses: pruned %llu responses past the retention",
                (unsigned long long)n);
    }
}
