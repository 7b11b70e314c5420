/* pdp_wire_up.c - the messages between a sidecar PDP and its upstream
 * (central) PDP: ReplPull/ReplData, LeaseAsk/LeaseReply and
 * LeaseClose/LeaseCloseAck, both directions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_wire_int.h"

#define UP_STR(dst, src, field)                                                \
    do {                                                                       \
        if ((rv = pdp_wire__str((dst), sizeof(dst), (src), (field), err,       \
                                errlen)) != TG_OK) {                           \
            return rv;                                                         \
        }                                                                      \
    } while (0)

static tg_err
up_fail(char *err, size_t errlen, const char *why)
{
    if (errlen > 0) {
        snprintf(err, errlen, "%s", why);
    }
    return TG_EPROTO;
}

static tg_err
up_want_in(const Tollgate__V1__LeaseWant *in, pdp_wire_want *w, char *err,
           size_t errlen)
{
    tg_err rv;

    memset(w, 0, sizeof(*w));
    UP_STR(w->id, in->id, "lease_ask.id");
    UP_STR(w->rule_id, in->rule_id, "lease_ask.rule_id");
    UP_STR(w->scope, in->scope, "lease_ask.scope");
    if ((in->kind != 1 && in->kind != 2) || in->window > 255 ||
        in->scope_kind > 255 || in->thresholds.len > TG_MSG_THRESHOLDS_MAX ||
        in->id[0] == '\0' || in->rpm < 0 || in->tpm < 0 ||
        in->concurrent < 0 || in->want_reqs < 0 || in->min_reqs < 0 ||
        in->want_toks < 0 || in->min_toks < 0 || in->want_slots < 0 ||
        in->min_slots < 0 || in->want_micro < 0 || in->min_micro < 0 ||
        in->limit < 0 || in->ttl_ms <= 0) {
        return up_fail(err, errlen, "lease_ask has a malformed want");
    }
    w->kind       = (uint8_t)in->kind;
    w->rpm        = in->rpm;
    w->tpm        = in->tpm;
    w->concurrent = in->concurrent;
    w->want_reqs  = in->want_reqs;
    w->min_reqs   = in->min_reqs;
    w->want_toks  = in->want_toks;
    w->min_toks   = in->min_toks;
    w->want_slots = in->want_slots;
    w->min_slots  = in->min_slots;
    w->window     = (uint8_t)in->window;
    w->start_ms   = in->start_ms;
    w->span_h     = in->span_h;
    w->limit      = in->limit;
    w->scope_kind = (uint8_t)in->scope_kind;
    w->nthr       = (uint8_t)in->thresholds.len;
    if (w->nthr > 0) {
        memcpy(w->thr, in->thresholds.data, w->nthr);
    }
    w->want_micro = in->want_micro;
    w->min_micro  = in->min_micro;
    w->ttl_ms     = in->ttl_ms;
    return TG_OK;
}

tg_err
pdp_wire__up_request_in(const Tollgate__V1__PdpRequest *in, pdp_req *out,
                        char *err, size_t errlen)
{
    tg_err rv;

    switch (in->body_case) {
    case TOLLGATE__V1__PDP_REQUEST__BODY_REPL_PULL: {
        const Tollgate__V1__ReplPull *p = in->repl_pull;
        out->kind                       = PDP_REQ_REPL_PULL;
        memset(&out->u.repl_pull, 0, sizeof(out->u.repl_pull));
        UP_STR(out->u.repl_pull.node, p->node, "repl_pull.node");
        UP_STR(out->u.repl_pull.lineage, p->lineage, "repl_pull.lineage");
        out->u.repl_pull.from      = p->from;
        out->u.repl_pull.snapshot  = p->snapshot != 0;
        out->u.repl_pull.max_bytes = p->max_bytes;
        out->u.repl_pull.lease_ttl_ms =
            p->lease_ttl_ms > 0 && p->lease_ttl_ms <= 3600 * 1000
                ? p->lease_ttl_ms
                : 0;
        out->u.repl_pull.epoch   = p->epoch;
        out->u.repl_pull.standby = p->standby != 0;
        UP_STR(out->u.repl_pull.copy_id, p->copy_id, "repl_pull.copy_id");
        out->u.repl_pull.copy_offset = p->copy_offset;
        return TG_OK;
    }
    case TOLLGATE__V1__PDP_REQUEST__BODY_LEASE_ASK: {
        const Tollgate__V1__LeaseAsk *a = in->lease_ask;
        out->kind                       = PDP_REQ_LEASE_ASK;
        UP_STR(out->u.lease_ask.node, a->node, "lease_ask.node");
        if (a->n_wants == 0 || a->n_wants > PDP_WIRE_WANTS_MAX) {
            return up_fail(err, errlen, "lease_ask needs 1 to 8 wants");
        }
        out->u.lease_ask.n = (uint32_t)a->n_wants;
        for (size_t i = 0; i < a->n_wants; i++) {
            if ((rv = up_want_in(a->wants[i], &out->u.lease_ask.wants[i], err,
                                 errlen)) != TG_OK) {
                return rv;
            }
        }
        return TG_OK;
    }
    case TOLLGATE__V1__PDP_REQUEST__BODY_LEASE_CLOSE: {
        const Tollgate__V1__LeaseClose *c = in->lease_close;
        out->kind                         = PDP_REQ_LEASE_CLOSE;
        UP_STR(out->u.lease_close.node, c->node, "lease_close.node");
        if (c->n_leases == 0 || c->n_leases > PDP_WIRE_RETURNS_MAX) {
            return up_fail(err, errlen, "lease_close needs 1 to 32 leases");
        }
        out->u.lease_close.n = (uint32_t)c->n_leases;
        for (size_t i = 0; i < c->n_leases; i++) {
            pdp_wire_return *r = &out->u.lease_close.rets[i];
            UP_STR(r->id, c->leases[i]->id, "lease_close.id");
            if (r->id[0] == '\0') {
                return up_fail(err, errlen, "lease_close has an empty id");
            }
            if (c->leases[i]->used_reqs < 0 || c->leases[i]->used_toks < 0) {
                return up_fail(err, errlen, "lease_close has a negative use");
            }
            r->used_reqs = c->leases[i]->used_reqs;
            r->used_toks = c->leases[i]->used_toks;
        }
        return TG_OK;
    }
    default:
        return TG_ENOTFOUND;
    }
}

tg_err
pdp_wire__up_reply_in(const Tollgate__V1__PdpResponse *in, pdp_rep *out,
                      char *err, size_t errlen)
{
    tg_err rv;

    switch (in->body_case) {
    case TOLLGATE__V1__PDP_RESPONSE__BODY_REPL_DATA: {
        const Tollgate__V1__ReplData *d = in->repl_data;
        out->kind                       = PDP_REP_REPL_DATA;
        UP_STR(out->u.repl.lineage, d->lineage, "repl_data.lineage");
        out->u.repl.snapshot = d->snapshot != 0;
        out->u.repl.last     = d->last;
        out->u.repl.head     = d->head;
        out->u.repl.epoch    = d->epoch;
        UP_STR(out->u.repl.copy_id, d->copy_id, "repl_data.copy_id");
        out->u.repl.copy_offset = d->copy_offset;
        out->u.repl.copy_size   = d->copy_size;
        out->u.repl.behind      = d->behind != 0;
        out->u.repl.len         = d->data.len;
        if ((out->u.repl.data = malloc(d->data.len + 1)) == NULL) {
            return TG_ENOMEM;
        }
        if (d->data.len > 0) {
            memcpy(out->u.repl.data, d->data.data, d->data.len);
        }
        return TG_OK;
    }
    case TOLLGATE__V1__PDP_RESPONSE__BODY_LEASE_REPLY: {
        const Tollgate__V1__LeaseReply *r = in->lease_reply;
        out->kind                         = PDP_REP_LEASE_REPLY;
        if (r->n_grants > PDP_WIRE_WANTS_MAX) {
            return up_fail(err, errlen, "lease_reply has too many grants");
        }
        out->u.lease.n     = (uint32_t)r->n_grants;
        out->u.lease.epoch = r->epoch;
        for (size_t i = 0; i < r->n_grants; i++) {
            const Tollgate__V1__LeaseGranted *g = r->grants[i];
            pdp_wire_granted                 *o = &out->u.lease.grants[i];
            UP_STR(o->id, g->id, "lease_reply.id");
            o->ok       = g->ok != 0;
            o->reqs     = g->reqs;
            o->toks     = g->toks;
            o->slots    = g->slots;
            o->micro    = g->micro;
            o->ttl_ms   = g->ttl_ms;
            o->denied   = g->denied;
            o->limit    = g->limit;
            o->used     = g->used;
            o->retry_ms = g->retry_ms;
        }
        return TG_OK;
    }
    case TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_BATCH_ACK: {
        const Tollgate__V1__UsageBatchAck *b = in->usage_batch_ack;
        out->kind                            = PDP_REP_USAGE_BATCH_ACK;
        if (b->n_acks > TG_USAGE_BATCH_MAX) {
            return up_fail(err, errlen, "usage_batch_ack has too many acks");
        }
        out->u.batch.n = (uint32_t)b->n_acks;
        for (size_t i = 0; i < b->n_acks; i++) {
            tg_usage_item_ack *a = &out->u.batch.acks[i];
            memset(a, 0, sizeof(*a));
            a->ok = b->acks[i]->ok != 0;
            UP_STR(a->ack.request_id, b->acks[i]->request_id,
                   "usage_batch_ack.request_id");
            if (b->acks[i]->ack != NULL) {
                a->ack.duplicate      = b->acks[i]->ack->duplicate != 0;
                a->ack.cost_micro_usd = b->acks[i]->ack->cost_micro_usd;
            }
        }
        return TG_OK;
    }
    case TOLLGATE__V1__PDP_RESPONSE__BODY_LEASE_CLOSE_ACK:
        out->kind     = PDP_REP_LEASE_CLOSE_ACK;
        out->u.closed = in->lease_close_ack->closed;
        return TG_OK;
    default:
        return TG_ENOTFOUND;
    }
}

static void
up_want_out(const pdp_wire_want *w, Tollgate__V1__LeaseWant *o)
{
    tollgate__v1__lease_want__init(o);
    o->id              = (char *)w->id;
    o->kind            = w->kind;
    o->rule_id         = (char *)w->rule_id;
    o->scope           = (char *)w->scope;
    o->rpm             = w->rpm;
    o->tpm             = w->tpm;
    o->concurrent      = w->concurrent;
    o->want_reqs       = w->want_reqs;
    o->min_reqs        = w->min_reqs;
    o->want_toks       = w->want_toks;
    o->min_toks        = w->min_toks;
    o->want_slots      = w->want_slots;
    o->min_slots       = w->min_slots;
    o->window          = w->window;
    o->start_ms        = w->start_ms;
    o->span_h          = w->span_h;
    o->limit           = w->limit;
    o->scope_kind      = w->scope_kind;
    o->thresholds.data = (uint8_t *)w->thr;
    o->thresholds.len  = w->nthr;
    o->want_micro      = w->want_micro;
    o->min_micro       = w->min_micro;
    o->ttl_ms          = w->ttl_ms;
}

tg_err
pdp_wire__up_encode_request(const pdp_req *req, tg_buf *out)
{
    Tollgate__V1__PdpRequest  m  = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__ReplPull    rp = TOLLGATE__V1__REPL_PULL__INIT;
    Tollgate__V1__LeaseAsk    la = TOLLGATE__V1__LEASE_ASK__INIT;
    Tollgate__V1__LeaseClose  lc = TOLLGATE__V1__LEASE_CLOSE__INIT;
    Tollgate__V1__LeaseWant   w[PDP_WIRE_WANTS_MAX];
    Tollgate__V1__LeaseWant  *wp[PDP_WIRE_WANTS_MAX];
    Tollgate__V1__LeaseReturn r[PDP_WIRE_RETURNS_MAX];
    Tollgate__V1__LeaseReturn *rpp[PDP_WIRE_RETURNS_MAX];

    m.wire_version = PDP_WIRE_VERSION;
    m.request_id   = (char *)req->request_id;
    switch (req->kind) {
    case PDP_REQ_REPL_PULL:
        rp.node      = (char *)req->u.repl_pull.node;
        rp.lineage   = (char *)req->u.repl_pull.lineage;
        rp.from      = req->u.repl_pull.from;
        rp.snapshot  = req->u.repl_pull.snapshot;
        rp.max_bytes    = req->u.repl_pull.max_bytes;
        rp.lease_ttl_ms = req->u.repl_pull.lease_ttl_ms;
        rp.epoch        = req->u.repl_pull.epoch;
        rp.standby      = req->u.repl_pull.standby;
        rp.copy_id      = (char *)req->u.repl_pull.copy_id;
        rp.copy_offset  = req->u.repl_pull.copy_offset;
        m.body_case  = TOLLGATE__V1__PDP_REQUEST__BODY_REPL_PULL;
        m.repl_pull  = &rp;
        break;
    case PDP_REQ_LEASE_ASK:
        if (req->u.lease_ask.n > PDP_WIRE_WANTS_MAX) {
            return TG_EINVAL;
        }
        for (uint32_t i = 0; i < req->u.lease_ask.n; i++) {
            up_want_out(&req->u.lease_ask.wants[i], &w[i]);
            wp[i] = &w[i];
        }
        la.node      = (char *)req->u.lease_ask.node;
        la.n_wants   = req->u.lease_ask.n;
        la.wants     = wp;
        m.body_case  = TOLLGATE__V1__PDP_REQUEST__BODY_LEASE_ASK;
        m.lease_ask  = &la;
        break;
    case PDP_REQ_LEASE_CLOSE:
        if (req->u.lease_close.n > PDP_WIRE_RETURNS_MAX) {
            return TG_EINVAL;
        }
        for (uint32_t i = 0; i < req->u.lease_close.n; i++) {
            tollgate__v1__lease_return__init(&r[i]);
            r[i].id        = (char *)req->u.lease_close.rets[i].id;
            r[i].used_reqs = req->u.lease_close.rets[i].used_reqs;
            r[i].used_toks = req->u.lease_close.rets[i].used_toks;
            rpp[i]         = &r[i];
        }
        lc.node       = (char *)req->u.lease_close.node;
        lc.n_leases   = req->u.lease_close.n;
        lc.leases     = rpp;
        m.body_case   = TOLLGATE__V1__PDP_REQUEST__BODY_LEASE_CLOSE;
        m.lease_close = &lc;
        break;
    default:
        return TG_EINVAL;
    }
    return pdp_wire__pack(&m.base, out);
}

tg_err
pdp_wire__up_encode_reply(const pdp_rep *rep, tg_buf *out)
{
    Tollgate__V1__PdpResponse     m  = TOLLGATE__V1__PDP_RESPONSE__INIT;
    Tollgate__V1__ReplData        rd = TOLLGATE__V1__REPL_DATA__INIT;
    Tollgate__V1__LeaseReply      lr = TOLLGATE__V1__LEASE_REPLY__INIT;
    Tollgate__V1__LeaseCloseAck   ca = TOLLGATE__V1__LEASE_CLOSE_ACK__INIT;
    Tollgate__V1__LeaseGranted    g[PDP_WIRE_WANTS_MAX];
    Tollgate__V1__LeaseGranted   *gp[PDP_WIRE_WANTS_MAX];

    m.wire_version = PDP_WIRE_VERSION;
    m.request_id   = (char *)rep->request_id;
    switch (rep->kind) {
    case PDP_REP_REPL_DATA:
        rd.lineage   = (char *)rep->u.repl.lineage;
        rd.snapshot  = rep->u.repl.snapshot;
        rd.last      = rep->u.repl.last;
        rd.head      = rep->u.repl.head;
        rd.data.data = rep->u.repl.data;
        rd.data.len  = rep->u.repl.len;
        rd.epoch       = rep->u.repl.epoch;
        rd.copy_id     = (char *)rep->u.repl.copy_id;
        rd.copy_offset = rep->u.repl.copy_offset;
        rd.copy_size   = rep->u.repl.copy_size;
        rd.behind      = rep->u.repl.behind;
        m.body_case  = TOLLGATE__V1__PDP_RESPONSE__BODY_REPL_DATA;
        m.repl_data  = &rd;
        break;
    case PDP_REP_LEASE_REPLY:
        if (rep->u.lease.n > PDP_WIRE_WANTS_MAX) {
            return TG_EINVAL;
        }
        for (uint32_t i = 0; i < rep->u.lease.n; i++) {
            const pdp_wire_granted *o = &rep->u.lease.grants[i];
            tollgate__v1__lease_granted__init(&g[i]);
            g[i].id       = (char *)o->id;
            g[i].ok       = o->ok;
            g[i].reqs     = o->reqs;
            g[i].toks     = o->toks;
            g[i].slots    = o->slots;
            g[i].micro    = o->micro;
            g[i].ttl_ms   = o->ttl_ms;
            g[i].denied   = o->denied;
            g[i].limit    = o->limit;
            g[i].used     = o->used;
            g[i].retry_ms = o->retry_ms;
            gp[i]         = &g[i];
        }
        lr.n_grants   = rep->u.lease.n;
        lr.epoch      = rep->u.lease.epoch;
        lr.grants     = gp;
        m.body_case   = TOLLGATE__V1__PDP_RESPONSE__BODY_LEASE_REPLY;
        m.lease_reply = &lr;
        break;
    case PDP_REP_LEASE_CLOSE_ACK:
        ca.closed         = rep->u.closed;
        m.body_case       = TOLLGATE__V1__PDP_RESPONSE__BODY_LEASE_CLOSE_ACK;
        m.lease_close_ack = &ca;
        break;
    default:
        return TG_EINVAL;
    }
    return pdp_wire__pack(&m.base, out);
}

void
pdp_wire_reply_release(pdp_rep *rep)
{
    if (rep->kind == PDP_REP_GUARD_SET) {
        free(rep->u.guard.spec);
        rep->u.guard.spec = NULL;
    } else if (rep->kind == PDP_REP_REPL_DATA) {
        free(rep->u.repl.data);
        rep->u.repl.data = NULL;
    } else if (rep->kind == PDP_REP_RESP) {
        free(rep->u.resp.resp.response);
        free(rep->u.resp.resp.items);
        rep->u.resp.resp.response = NULL;
        rep->u.resp.resp.items    = NULL;
    }
    rep->kind = 0;
}
