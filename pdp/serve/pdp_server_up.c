/* pdp_server_up.c - the central PDP's side of its sidecar PDPs: it serves
 * replication pulls, grants and takes back leases (each recorded in the
 * store before it is answered), settles forwarded reports against the
 * leases they name, and publishes its bundle and pricing into the
 * replicated blobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_repl.h"
#include "pdp_server_int.h"
#include "tg_log.h"
#include "tg_time.h"

#define UP_LEASE_TTL_MAX_MS (3600LL * 1000)
#define UP_REPL_KEEP 100000 /* log entries kept for replicas to resume */

static void
up_rep_head(pdp_worker *w, pdp_rep_kind kind)
{
    /* The whole reply: a worker's previous one must not leak into it. */
    memset(&w->rep, 0, sizeof(w->rep));
    w->rep.kind = kind;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
}

static void
up_error(pdp_worker *w, const char *fmt, const char *detail)
{
    up_rep_head(w, PDP_REP_ERROR);
    snprintf(w->rep.u.error, sizeof(w->rep.u.error), fmt, detail);
}

/* up_pull answers a replica: the changes after its position, or a
 * snapshot when it has none, follows another lineage or fell behind. */
static void
up_pull(pdp_worker *w)
{
    pdp_server          *srv = w->srv;
    const pdp_repl_pull *p   = &w->req.u.repl_pull;
    pdp_repl_state       rs;
    uint64_t             last = 0, head = 0;
    size_t               max  = p->max_bytes;
    tg_err               rv;

    if (pdp_repl_state_get(srv->st, &rs) != TG_OK) {
        up_error(w, "%s", "the central PDP cannot read its change log");
        return;
    }
    if (rs.replica) {
        up_error(w, "%s",
                 "this PDP is a replica itself; point pdp.upstream at the "
                 "primary (or promote this one)");
        return;
    }
    /* A sidecar that pulls is alive: its leases wait for its reports
     * (and its returns) rather than expire under them. */
    if (p->lease_ttl_ms > 0) {
        pdp_limits_lease_renew(srv->lim, p->node,
                               tg_now_ms() + p->lease_ttl_ms);
    }
    if (max < 4096 || max > (64u << 20)) {
        max = 1u << 20;
    }
    tg_buf_reset(&w->resbuf);
    up_rep_head(w, PDP_REP_REPL_DATA);
    snprintf(w->rep.u.repl.lineage, sizeof(w->rep.u.repl.lineage), "%s",
             rs.lineage);
    rv = PDP_REPL_ESNAPSHOT;
    if (!p->snapshot && strcmp(p->lineage, rs.lineage) == 0) {
        rv = pdp_repl_changes(srv->st, p->from, max, &w->resbuf, &last, &head);
    }
    if (rv != TG_OK) {
        tg_buf_reset(&w->resbuf);
        if ((rv = pdp_repl_snapshot(srv->st, &w->resbuf, &head)) != TG_OK) {
            up_error(w, "snapshot failed: %s", tg_strerror(rv));
            return;
        }
        last                    = head;
        w->rep.u.repl.snapshot  = true;
        tg_info("upstream: snapshot (sequence %llu, %zu bytes) for %s",
                (unsigned long long)head, w->resbuf.len, p->node);
    }
    w->rep.u.repl.last = last;
    w->rep.u.repl.head = head;
    w->rep.u.repl.data = w->resbuf.data;
    w->rep.u.repl.len  = w->resbuf.len;
}

/* up_want_ask turns a wire want into pdp_limits_lease_grant's ask. */
static void
up_want_ask(const pdp_wire_want *wt, pdp_lease_ask *a)
{
    memset(a, 0, sizeof(*a));
    a->id              = wt->id;
    a->kind            = wt->kind == 1 ? PDP_LEASE_RATE : PDP_LEASE_BUDGET;
    a->rate.rule_id    = wt->rule_id;
    a->rate.scope      = wt->scope;
    a->rate.rpm        = wt->rpm;
    a->rate.tpm        = wt->tpm;
    a->rate.concurrent = wt->concurrent;
    a->want_reqs       = wt->want_reqs;
    a->min_reqs        = wt->min_reqs;
    a->want_toks       = wt->want_toks;
    a->min_toks        = wt->min_toks;
    a->want_slots      = wt->want_slots;
    a->min_slots       = wt->min_slots;
    a->budget.rule_id  = wt->rule_id;
    a->budget.scope    = wt->scope;
    a->budget.code     = wt->window;
    a->budget.start_ms = wt->start_ms;
    a->budget.span_h   = wt->span_h;
    a->budget.limit    = wt->limit;
    a->budget.scope_kind = wt->scope_kind;
    a->budget.nthr       = wt->nthr;
    memcpy(a->budget.thr, wt->thr, wt->nthr);
    a->want_micro = wt->want_micro;
    a->min_micro  = wt->min_micro;
    a->ttl_ms     = wt->ttl_ms < UP_LEASE_TTL_MAX_MS ? wt->ttl_ms
                                                     : UP_LEASE_TTL_MAX_MS;
}

/* up_grant_one grants one want and records the lease before it is
 * answered; a lease the store could not record is given back. */
static void
up_grant_one(pdp_worker *w, const pdp_wire_want *wt, pdp_wire_granted *o)
{
    pdp_server     *srv = w->srv;
    pdp_lease_ask   a;
    pdp_lease_grant g;
    int64_t         now = tg_now_ms();

    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "%s", wt->id);
    up_want_ask(wt, &a);
    if (a.kind == PDP_LEASE_BUDGET && a.budget.limit > 0) {
        /* Near the end of a budget, slices shrink (a quarter of what is
         * left at most), so little of it sits idle in another sidecar's
         * slice while this one refuses. */
        int64_t spent = 0, reserved = 0, room;
        pdp_limits_budget_state(srv->lim, &a.budget, &spent, &reserved);
        room = (a.budget.limit - spent - reserved) / 4;
        if (a.want_micro > room) {
            a.want_micro = room > a.min_micro ? room : a.min_micro;
        }
    }
    if (pdp_limits_lease_grant(srv->lim, &a, now, &g) != TG_OK) {
        o->denied = PDP_LIMITS_REQUESTS;
        return;
    }
    if (!g.ok) {
        o->denied   = (uint32_t)g.denied;
        o->limit    = g.limit;
        o->used     = g.used;
        o->retry_ms = g.retry_ms;
        return;
    }
    tg_buf_reset(&w->resbuf);
    if (pdp_limits_lease_encode(srv->lim, wt->id, &w->resbuf) != TG_OK ||
        pdp_store_lease_put(srv->st, wt->id, g.expires_ms, w->resbuf.data,
                            w->resbuf.len) != TG_OK) {
        pdp_limits_lease_close(srv->lim, wt->id, 0, 0, now);
        tg_error("upstream: lease %s not recorded; refused", wt->id);
        o->denied   = PDP_LIMITS_REQUESTS;
        o->retry_ms = 1000;
        return;
    }
    o->ok     = true;
    o->reqs   = g.reqs;
    o->toks   = g.toks;
    o->slots  = g.slots;
    o->micro  = g.micro;
    o->ttl_ms = g.expires_ms - now;
    atomic_fetch_add(&srv->leases_granted, 1);
}

/* up_lease_ask grants what fits of each want (ids must be the asking
 * node's own: "<node>:..."). */
static void
up_lease_ask(pdp_worker *w)
{
    const char      *node = w->req.u.lease_ask.node;
    size_t           nl   = strlen(node);
    pdp_wire_granted g[PDP_WIRE_WANTS_MAX];
    uint32_t         n = w->req.u.lease_ask.n;

    for (uint32_t i = 0; i < n; i++) {
        const pdp_wire_want *wt = &w->req.u.lease_ask.wants[i];
        if (nl == 0 || strncmp(wt->id, node, nl) != 0 || wt->id[nl] != ':') {
            up_error(w, "lease id %s does not start with the node's name",
                     wt->id);
            return;
        }
        up_grant_one(w, wt, &g[i]);
    }
    up_rep_head(w, PDP_REP_LEASE_REPLY);
    w->rep.u.lease.n = n;
    memcpy(w->rep.u.lease.grants, g, n * sizeof(g[0]));
}

static void
up_lease_close(pdp_worker *w)
{
    pdp_server *srv    = w->srv;
    uint32_t    closed = 0;
    uint32_t    n      = w->req.u.lease_close.n;
    int64_t     now    = tg_now_ms();
    const char *ids[PDP_WIRE_RETURNS_MAX];

    for (uint32_t i = 0; i < n; i++) {
        const pdp_wire_return *r = &w->req.u.lease_close.rets[i];
        if (pdp_limits_lease_close(srv->lim, r->id, r->used_reqs, r->used_toks,
                                   now)) {
            closed++;
        }
        ids[i] = r->id;
    }
    /* The records go after the memory: a crash between the two brings
     * the leases back held until they expire (never less). */
    if (n > 0 && pdp_store_lease_del(srv->st, ids, n) != TG_OK) {
        tg_warn("upstream: %u lease(s) closed but their records stay until "
                "they expire",
                n);
    }
    atomic_fetch_add(&srv->leases_closed, closed);
    up_rep_head(w, PDP_REP_LEASE_CLOSE_ACK);
    w->rep.u.closed = closed;
}

/* up_fenced is true (and w->rep the error) when a sidecar saw a higher
 * HA epoch than this PDP's: another PDP was promoted over this one, which
 * from then on answers nothing but errors (what it granted or counted
 * would be counted twice). */
static bool
up_fenced(pdp_worker *w)
{
    pdp_server *srv  = w->srv;
    uint64_t    mine = pdp_server_ha_epoch(srv);

    if (w->req.u.repl_pull.epoch <= mine) {
        return false;
    }
    if (!atomic_exchange(&srv->fenced, true)) {
        tg_error("ha: sidecar %s follows HA epoch %llu, this PDP is at %llu: "
                 "another PDP was promoted over this one. This one now "
                 "refuses every request; restart it with pdp.ha.role standby "
                 "and peer the active one",
                 w->req.u.repl_pull.node,
                 (unsigned long long)w->req.u.repl_pull.epoch,
                 (unsigned long long)mine);
    }
    up_error(w, "%s", "this central PDP was promoted over; use the active one");
    return true;
}

bool
pdp_server_up_handle(pdp_worker *w, nng_msg *msg)
{
    switch (w->req.kind) {
    case PDP_REQ_REPL_PULL:
        if (w->req.u.repl_pull.standby) {
            return pdp_server_ha_pull(w, msg);
        }
        if (!up_fenced(w)) {
            up_pull(w);
            if (w->rep.kind == PDP_REP_REPL_DATA) {
                w->rep.u.repl.epoch = pdp_server_ha_epoch(w->srv);
            }
        }
        return false;
    case PDP_REQ_LEASE_ASK:
        up_lease_ask(w);
        if (w->rep.kind == PDP_REP_LEASE_REPLY) {
            w->rep.u.lease.epoch = pdp_server_ha_epoch(w->srv);
        }
        w->sync = true;
        return false;
    case PDP_REQ_LEASE_CLOSE:
        up_lease_close(w);
        w->sync = true;
        return false;
    default:
        return false;
    }
}

uint32_t
pdp_server_up_spend(pdp_server *srv, const tg_usage *u,
                    pdp_limits_spend_key *spend)
{
    if (u->n_charges == 0) {
        return pdp_limits_budget_keys(srv->lim, u->reservation_id, spend,
                                      PDP_LIMITS_BUDGETS_MAX);
    }
    for (uint32_t i = 0; i < u->n_charges; i++) {
        const tg_lease_charge *c = &u->charges[i];
        pdp_limits_spend_key  *k = &spend[i];
        memset(k, 0, sizeof(*k));
        snprintf(k->rule_id, sizeof(k->rule_id), "%s", c->rule_id);
        snprintf(k->scope, sizeof(k->scope), "%s", c->scope);
        k->code       = c->window;
        k->start_ms   = c->start_ms;
        k->limit      = c->limit;
        k->scope_kind = c->scope_kind;
        k->nthr       = c->nthr;
        memcpy(k->thr, c->thr, c->nthr);
    }
    return u->n_charges;
}

void
pdp_server_up_settled(pdp_server *srv, const tg_usage *u, int64_t cost,
                      const pdp_limits_spend_key *spend, uint32_t nspend)
{
    int64_t now = tg_now_ms();

    if (u->emergency) {
        atomic_fetch_add(&srv->emergency_reports, 1);
    }
    for (uint32_t i = 0; i < u->n_charges && i < nspend; i++) {
        pdp_limits_lease_charge(srv->lim, u->charges[i].lease_id, cost,
                                &spend[i], 1, now);
    }
}

static void
up_lease_restore_one(void *arg, const char *id, int64_t expires_ms,
                     const void *data, size_t len)
{
    pdp_server *srv = arg;
    tg_err      rv  = pdp_limits_lease_restore(srv->lim, data, len,
                                               tg_now_ms());

    (void)expires_ms;
    if (rv == TG_EPROTO) {
        tg_warn("upstream: lease record %s is malformed; skipped", id);
    } else if (rv == TG_OK) {
        srv->leases_restored++;
    }
}

void
pdp_server_up_restore(pdp_server *srv)
{
    pdp_store_lease_prune(srv->st, tg_now_ms());
    pdp_store_lease_list(srv->st, up_lease_restore_one, srv);
    if (srv->leases_restored > 0) {
        tg_info("upstream: %llu lease(s) of sidecar PDPs held again",
                (unsigned long long)srv->leases_restored);
    }
}

void
pdp_server_up_publish(pdp_server *srv, int64_t now_ms)
{
    pdp_bundle *b;

    /* Leases nobody returns expire even when no decision comes here (all
     * traffic may go through sidecars). */
    pdp_limits_expire(srv->lim, now_ms);
    if (srv->cfg->pdp.upstream.url != NULL) {
        return; /* a sidecar publishes nothing */
    }
    if ((b = pdp_rollout_acquire(srv->ro)) != NULL) {
        const char *hash = pdp_bundle_hash(b);
        if (strcmp(hash, srv->published) != 0) {
            const char *files = pdp_bundle_files_json(b);
            if (files != NULL &&
                pdp_repl_blob_set(srv->st, "bundle", files, strlen(files)) ==
                    TG_OK) {
                snprintf(srv->published, sizeof(srv->published), "%s", hash);
            }
        }
        pdp_bundle_unref(b);
    }
    if (!srv->pricing_published && srv->cfg->pdp.pricing_file != NULL) {
        char  *text = NULL;
        size_t len  = 0;
        FILE  *f    = fopen(srv->cfg->pdp.pricing_file, "rb");
        if (f != NULL) {
            char   buf[65536];
            size_t r;
            while ((r = fread(buf, 1, sizeof(buf), f)) > 0) {
                char *grown = realloc(text, len + r);
                if (grown == NULL) {
                    break;
                }
                text = grown;
                memcpy(text + len, buf, r);
                len += r;
            }
            fclose(f);
        }
        if (text != NULL &&
            pdp_repl_blob_set(srv->st, "pricing", text, len) == TG_OK) {
            srv->pricing_published = true;
        }
        free(text);
    }
    if (now_ms - srv->repl_pruned_ms > 60000) {
        srv->repl_pruned_ms = now_ms;
        pdp_repl_prune(srv->st, UP_REPL_KEEP);
        pdp_store_lease_prune(srv->st, now_ms - 60000);
    }
}

void
pdp_server_up_metrics(pdp_server *srv, tg_buf *out)
{
    pdp_repl_state rs;

    if (srv->up == NULL && pdp_repl_state_get(srv->st, &rs) == TG_OK) {
        tg_buf_addf(out,
                    "# HELP tollgate_repl_head_sequence The last change in "
                    "this PDP's replication log (a sidecar's "
                    "tollgate_upstream_applied_sequence trails it).\n"
                    "# TYPE tollgate_repl_head_sequence gauge\n"
                    "tollgate_repl_head_sequence %llu\n",
                    (unsigned long long)rs.head);
    }
    tg_buf_addf(out,
                "# HELP tollgate_leases_granted_total Leases granted to "
                "sidecar PDPs.\n"
                "# TYPE tollgate_leases_granted_total counter\n"
                "tollgate_leases_granted_total %llu\n"
                "# TYPE tollgate_leases_closed_total counter\n"
                "tollgate_leases_closed_total %llu\n"
                "# HELP tollgate_leases_open Leases held by sidecar PDPs now.\n"
                "# TYPE tollgate_leases_open gauge\n"
                "tollgate_leases_open %llu\n"
                "# TYPE tollgate_leases_expired_total counter\n"
                "tollgate_leases_expired_total %llu\n"
                "# HELP tollgate_emergency_reports_total Forwarded reports of "
                "requests a sidecar admitted on its emergency allowance.\n"
                "# TYPE tollgate_emergency_reports_total counter\n"
                "tollgate_emergency_reports_total %llu\n",
                (unsigned long long)atomic_load(&srv->leases_granted),
                (unsigned long long)atomic_load(&srv->leases_closed),
                (unsigned long long)pdp_limits_leases_open(srv->lim),
                (unsigned long long)pdp_limits_leases_expired(srv->lim),
                (unsigned long long)atomic_load(&srv->emergency_reports));
}
