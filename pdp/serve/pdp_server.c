/* pdp_server.c - each worker is one nng context with one aio, cycling
 * recv -> handle -> send in its callback; nothing in a callback blocks
 * (LMDB reads do not; the resize lock is only held exclusively on the rare
 * map-growth path). A usage report parks its worker until the store's
 * writer calls back after the commit; that callback sends the reply.
 *
 * A decision that reserves parks its worker too: the reservation is
 * recorded by the store's writer (pdp_store_reserve_submit) before the
 * decision is sent, and the writer's callback sends it.
 *
 * Rate-limit state survives a restart (pdp_server_persist.c: restored
 * before the first decision, snapshotted once a second while serving);
 * listeners and the uid check of ipc peers are in pdp_server_listen.c.
 *
 * Shutdown order matters: mark stopping (no new work is started), wait
 * until no usage report is parked, stop every aio (waits out running
 * callbacks), close the contexts, then the socket, stop the snapshot
 * thread and write a final snapshot (nothing changes the state any more),
 * then free. */
#include "pdp_server.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pdp_alerts.h"
#include "pdp_decide.h"
#include "pdp_rollout.h"
#include "pdp_server_int.h"
#include "pdp_wire.h"
#include "tg_buf.h"
#include "tg_log.h"
#include "tg_time.h"
#include "tg_trust.h"

static void pdp_worker_cb(void *arg);

static void
pdp_worker_recv(pdp_worker *w)
{
    if (atomic_load(&w->srv->stopping)) {
        return;
    }
    w->state = PDP_WORKER_RECV;
    nng_ctx_recv(w->ctx, w->aio);
}

bool
pdp_server_encode(pdp_worker *w, nng_msg *msg)
{
    tg_err rv = pdp_wire_encode_reply(&w->rep, &w->out);

    if (rv != TG_OK) {
        /* A reply over the size cap becomes a WireError: still a deny. */
        tg_warn("server: cannot encode a reply: %s", tg_strerror(rv));
        w->rep.kind = PDP_REP_ERROR;
        snprintf(w->rep.u.error, sizeof(w->rep.u.error),
                 "pdp could not encode its reply: %s", tg_strerror(rv));
        if (pdp_wire_encode_reply(&w->rep, &w->out) != TG_OK) {
            return false;
        }
    }
    nng_msg_clear(msg);
    /* On failure the requester times out and fails closed. */
    return nng_msg_append(msg, w->out.data, w->out.len) == 0;
}

void
pdp_server_send(pdp_worker *w, nng_msg *msg)
{
    if (!pdp_server_encode(w, msg)) {
        nng_msg_free(msg);
        pdp_worker_recv(w);
        return;
    }
    w->state = PDP_WORKER_SEND;
    nng_aio_set_msg(w->aio, msg);
    nng_ctx_send(w->ctx, w->aio);
}

/* pdp_worker_reply sends w->rep; one that acknowledges a write (w->sync)
 * is handed, with w's context, to the standby's wait (pdp_server_ha.c)
 * and w goes on receiving on a new context. Takes msg. */
static void
pdp_worker_reply(pdp_worker *w, nng_msg *msg)
{
    bool sync = w->sync;

    w->sync = false;
    if (!sync || !pdp_server_ha_hold(w, msg)) {
        pdp_server_send(w, msg);
    } else {
        pdp_worker_recv(w);
    }
}

static void
pdp_worker_error(pdp_worker *w, const char *request_id, const char *why)
{
    memset(&w->rep, 0, offsetof(pdp_rep, u));
    w->rep.kind = PDP_REP_ERROR;
    snprintf(w->rep.request_id, sizeof(w->rep.request_id), "%s", request_id);
    snprintf(w->rep.u.error, sizeof(w->rep.u.error), "%s", why);
}

/* pdp_server_alerts queues an alert for each budget threshold the
 * committed report crossed (the store recorded it as fired in the same
 * txn). Writer thread; never blocks on I/O. */
static void
pdp_server_alerts(pdp_server *srv, const pdp_limits_spend_key *sp, uint32_t n)
{
    pdp_bundle *b = NULL;
    pdp_alert   al;

    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < sp[i].nfired; j++) {
            if (b == NULL) {
                b = pdp_rollout_acquire(srv->ro);
            }
            memset(&al, 0, sizeof(al));
            if (!pdp_bundle_budget_webhook(b, sp[i].rule_id, al.url,
                                           sizeof(al.url)) ||
                al.url[0] == '\0') {
                snprintf(al.url, sizeof(al.url), "%s",
                         srv->cfg->pdp.alert_webhook != NULL
                             ? srv->cfg->pdp.alert_webhook
                             : "");
            }
            snprintf(al.rule, sizeof(al.rule), "%s", sp[i].rule_id);
            snprintf(al.scope, sizeof(al.scope), "%s",
                     sp[i].scope_kind <= PDP_SCOPE_META
                         ? pdp_scope_name(sp[i].scope_kind)
                         : "?");
            snprintf(al.scope_value, sizeof(al.scope_value), "%s", sp[i].scope);
            snprintf(al.window, sizeof(al.window), "%s",
                     sp[i].code <= PDP_WINDOW_ROLLING
                         ? pdp_window_name(sp[i].code)
                         : "?");
            al.window_start_ms = sp[i].start_ms;
            al.threshold       = sp[i].fired[j];
            al.limit_micro     = sp[i].limit;
            al.spent_micro     = sp[i].spent_after;
            al.bundle_revision = pdp_rollout_revision(srv->ro);
            al.at_ms           = tg_now_ms();
            if (al.url[0] == '\0') {
                tg_warn("alerts: budget %s (%s) crossed %d%% of its "
                        "limit; no webhook to tell (set the rule's "
                        "\"webhook\" or pdp.alert_webhook)",
                        al.rule, al.scope_value, al.threshold);
                continue;
            }
            pdp_alerts_enqueue(srv->alerts, &al);
        }
    }
    pdp_bundle_unref(b);
}

/* pdp_server_settled updates memory after report u committed (writer
 * thread): the reservation's spend and tokens, and threshold alerts. */
static void
pdp_server_settled(pdp_server *srv, const tg_usage *u, const tg_usage_ack *ack,
                   const pdp_limits_spend_key *spend, uint32_t nspend)
{
    int64_t now = tg_now_ms();

    if (srv->up != NULL) {
        /* A sidecar: the request held slices of leases, not limits here. */
        pdp_upstream_settled(srv->up, u, ack->cost_micro_usd);
        return;
    }
    if (u->reservation_id[0] == '\0') {
        /* Nothing was held for it. */
    } else if (u->abandoned) {
        /* Nothing went upstream: free what the decision held, or make sure
         * a decision still on its way holds nothing. */
        pdp_limits_abandon(srv->lim, u->reservation_id, now);
    } else if (!ack->duplicate) {
        /* The spend was committed with the usage record; now count it in
         * memory and free the reserved worst case. A report that finds no
         * reservation (a decision the data plane did not wait for, or one
         * that expired) leaves the id remembered, so a late decision
         * holds nothing. */
        if (!pdp_limits_settle(srv->lim, u->reservation_id,
                               u->prompt_tokens + u->completion_tokens,
                               ack->cost_micro_usd, spend, nspend, now)) {
            pdp_limits_abandon(srv->lim, u->reservation_id, now);
        }
    } else {
        /* A repeat whose reservation is still open: the first report was
         * committed (with its record's deletion) but this PDP had not yet
         * released it. Free it without counting the cost again. */
        pdp_limits_release(srv->lim, u->reservation_id,
                           u->prompt_tokens + u->completion_tokens, now);
    }
    if (!ack->duplicate) {
        pdp_server_alerts(srv, spend, nspend);
        if (u->n_charges > 0) {
            pdp_server_up_settled(srv, u, ack->cost_micro_usd, spend, nspend);
        }
    }
}

/* pdp_worker_usage_done runs on the store's writer thread. */
static void
pdp_worker_usage_done(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    pdp_worker *w   = arg;
    pdp_server *srv = w->srv;
    nng_msg    *msg = w->parked;

    w->parked = NULL;
    if (rv == TG_OK) {
        pdp_server_settled(srv, &w->req.u.usage, ack, w->spend, w->nspend);
        memset(&w->rep, 0, offsetof(pdp_rep, u));
        w->rep.kind  = PDP_REP_USAGE_ACK;
        w->rep.u.ack = *ack;
        snprintf(w->rep.request_id, sizeof(w->rep.request_id), "%s",
                 ack->request_id);
        w->sync = true;
    } else {
        char why[TG_MSG_TEXT_MAX];
        snprintf(why, sizeof(why), "usage not recorded (%s); keep it and retry",
                 tg_strerror(rv));
        pdp_worker_error(w, w->req.request_id, why);
    }
    pdp_worker_reply(w, msg);
    /* Last touch of w: after this, stop may free it. */
    pthread_mutex_lock(&srv->mu);
    srv->parked--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* pdp_worker_usage_prep readies report u for the store: a key issued to
 * a user makes it that user's spend, whatever the request said (a missing
 * key leaves it as it came); returns its cost. */
static int64_t
pdp_worker_usage_prep(pdp_worker *w, tg_usage *u)
{
    pdp_server *srv = w->srv;
    int64_t     cost;

    if (u->key_id[0] == '\0' && u->outcome.has_key_hash &&
        pdp_store_read_begin(w->rd) == TG_OK) {
        /* No decision named the key: its record names it from the hash
         * (an unknown key stays unnamed). */
        if (pdp_store_key_get(w->rd, u->outcome.key_hash, &w->key) == TG_OK) {
            snprintf(u->key_id, sizeof(u->key_id), "%s", w->key.id);
            snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", w->key.tenant);
        }
        pdp_store_read_end(w->rd);
    }
    if (u->key_id[0] != '\0' && pdp_store_read_begin(w->rd) == TG_OK) {
        if (pdp_store_key_get_by_id(w->rd, u->key_id, &w->key) == TG_OK &&
            w->key.user[0] != '\0') {
            snprintf(u->user, sizeof(u->user), "%s", w->key.user);
        }
        pdp_store_read_end(w->rd);
    }
    {
        tg_price             price;
        pdp_bundle          *b;
        const tg_deployment *dep =
            tg_config_deployment(srv->cfg, u->deployment_id);
        /* A deployment named for clients ("openai/gpt-4o") is priced as
         * the model it calls upstream ("gpt-4o") when the table does not
         * know the first name. */
        const char *up = dep != NULL && dep->upstream_model != NULL &&
                                 strcmp(dep->upstream_model, u->model) != 0
                             ? dep->upstream_model
                             : NULL;
        /* The deployment's own "pricing" first; then pdp.pricing_file;
         * without a price there, the running bundle's own pricing.json
         * (what its budgets were priced with), so a budget's settled spend
         * is never left at 0. */
        if (dep != NULL && dep->has_price) {
            price.input        = dep->price_input;
            price.output       = dep->price_output;
            price.cached_input = dep->price_cached_input;
            cost               = tg_pricing_cost_of(&price, u->prompt_tokens,
                                                    u->cached_tokens, u->completion_tokens);
        } else if (tg_pricing_find(srv->pr, u->model, &price) ||
                   (up != NULL && tg_pricing_find(srv->pr, up, &price))) {
            cost = tg_pricing_cost_of(&price, u->prompt_tokens,
                                      u->cached_tokens, u->completion_tokens);
        } else if ((b = pdp_rollout_acquire(srv->ro)) != NULL &&
                   (pdp_bundle_price(b, u->model, &price) ||
                    (up != NULL && pdp_bundle_price(b, up, &price)))) {
            cost = tg_pricing_cost_of(&price, u->prompt_tokens,
                                      u->cached_tokens, u->completion_tokens);
            pdp_bundle_unref(b);
        } else {
            pdp_bundle_unref(b);
            cost = tg_pricing_cost(srv->pr, u->model, u->prompt_tokens,
                                   u->cached_tokens, u->completion_tokens);
        }
    }
    return cost;
}

/* pdp_worker_usage parks the worker until the store commits. Takes msg. */
static void
pdp_worker_usage(pdp_worker *w, nng_msg *msg)
{
    pdp_server     *srv  = w->srv;
    const tg_usage *u    = &w->req.u.usage;
    int64_t         cost = pdp_worker_usage_prep(w, &w->req.u.usage);
    tg_err          rv;

    pthread_mutex_lock(&srv->mu);
    if (atomic_load(&srv->stopping)) {
        pthread_mutex_unlock(&srv->mu);
        pdp_worker_error(w, w->req.request_id,
                         "pdp is shutting down; retry the usage report");
        pdp_worker_reply(w, msg);
        return;
    }
    srv->parked++;
    w->state  = PDP_WORKER_STORE;
    w->parked = msg;
    pthread_mutex_unlock(&srv->mu);
    if (srv->up != NULL) {
        pdp_upstream_charges(srv->up, &w->req.u.usage);
    }
    w->nspend = srv->up != NULL ? 0 : pdp_server_up_spend(srv, u, w->spend);
    rv = pdp_store_usage_submit_res(srv->st, u, cost, w->spend, &w->nspend,
                                    pdp_worker_usage_done, w);
    if (rv != TG_OK) {
        w->parked = NULL;
        pdp_worker_error(w, w->req.request_id,
                         "usage not recorded; retry the usage report");
        pdp_worker_reply(w, msg);
        pthread_mutex_lock(&srv->mu);
        srv->parked--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
    }
}

/* A usage batch being committed: each report's budget windows, and how
 * many are still out. The worker stays parked until the last one. */
typedef struct pdp_batch pdp_batch;

typedef struct pdp_batch_item {
    pdp_batch           *b;
    uint32_t             i;
    uint32_t             nspend;
    pdp_limits_spend_key spend[PDP_LIMITS_BUDGETS_MAX];
} pdp_batch_item;

struct pdp_batch {
    pdp_worker    *w;
    nng_msg       *msg;
    atomic_uint    left;
    pdp_batch_item item[TG_USAGE_BATCH_MAX];
};

/* pdp_batch_item_done records one report's result; the last one answers
 * the batch. Writer thread (or the submitting worker on a refusal). */
static void
pdp_batch_item_done(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    pdp_batch_item    *it  = arg;
    pdp_batch         *b   = it->b;
    pdp_worker        *w   = b->w;
    pdp_server        *srv = w->srv;
    tg_usage_item_ack *out = &w->rep.u.batch.acks[it->i];
    const tg_usage    *u   = &w->req.u.batch.items[it->i];

    out->ok = rv == TG_OK;
    if (rv == TG_OK) {
        pdp_server_settled(srv, u, ack, it->spend, it->nspend);
        out->ack = *ack;
    } else {
        /* The reply's union was never cleared: no garbage on the wire. */
        memset(&out->ack, 0, sizeof(out->ack));
    }
    {
        size_t n = strnlen(u->request_id, sizeof(out->ack.request_id) - 1);
        memcpy(out->ack.request_id, u->request_id, n);
        out->ack.request_id[n] = '\0';
    }
    if (atomic_fetch_sub(&b->left, 1) != 1) {
        return;
    }
    w->sync = true;
    pdp_worker_reply(w, b->msg);
    free(b);
    /* Last touch of w: after this, stop may free it. */
    pthread_mutex_lock(&srv->mu);
    srv->parked--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* pdp_worker_usage_batch commits the reports of a UsageBatch, each
 * idempotent by its own request id, and answers once every one is
 * committed (or refused). Takes msg. */
static void
pdp_worker_usage_batch(pdp_worker *w, nng_msg *msg)
{
    pdp_server *srv = w->srv;
    uint32_t    n   = w->req.u.batch.n;
    pdp_batch  *b   = calloc(1, sizeof(*b));
    int64_t     cost[TG_USAGE_BATCH_MAX];

    pthread_mutex_lock(&srv->mu);
    if (b == NULL || atomic_load(&srv->stopping)) {
        pthread_mutex_unlock(&srv->mu);
        free(b);
        pdp_worker_error(w, w->req.request_id,
                         b == NULL ? "out of memory; retry the usage reports"
                                   : "pdp is shutting down; retry the usage "
                                     "reports");
        pdp_worker_reply(w, msg);
        return;
    }
    srv->parked++;
    w->state = PDP_WORKER_STORE;
    pthread_mutex_unlock(&srv->mu);
    memset(&w->rep, 0, offsetof(pdp_rep, u));
    w->rep.kind      = PDP_REP_USAGE_BATCH_ACK;
    w->rep.u.batch.n = n;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
    b->w   = w;
    b->msg = msg;
    atomic_init(&b->left, n);
    for (uint32_t i = 0; i < n; i++) {
        tg_usage *u  = &w->req.u.batch.items[i];
        cost[i]      = pdp_worker_usage_prep(w, u);
        b->item[i].b = b;
        b->item[i].i = i;
        if (srv->up != NULL) {
            pdp_upstream_charges(srv->up, u);
        }
        b->item[i].nspend =
            srv->up != NULL ? 0 : pdp_server_up_spend(srv, u, b->item[i].spend);
    }
    /* Submitted last, all together: the first callback may run at once,
     * and the batch must be complete by then. */
    for (uint32_t i = 0; i < n; i++) {
        pdp_batch_item *it = &b->item[i];
        size_t          cl = w->req.u.batch.content_len[i];
        const char     *c =
            cl > 0 ? w->content.data + w->req.u.batch.content_off[i] : NULL;
        if (pdp_store_usage_submit_content(
                srv->st, &w->req.u.batch.items[i], c, cl, cost[i], it->spend,
                &it->nspend, pdp_batch_item_done, it) != TG_OK) {
            pdp_batch_item_done(it, TG_ECLOSED, NULL);
        }
    }
}

static void pdp_worker_reserved(void *arg, tg_err rv, const tg_usage_ack *ack);
static bool pdp_worker_park_lease(pdp_worker *w, nng_msg *msg);

/* pdp_worker_unrecorded turns the allow in w->rep into a deny: its
 * reservation could not be recorded (rv), or the request was settled or
 * abandoned first (rv TG_OK). A deny, not an error: a data plane that
 * fails open on PDP errors must not serve it without limits. */
static void
pdp_worker_unrecorded(pdp_worker *w, tg_err rv)
{
    tg_decision *d = &w->rep.u.decision;

    atomic_fetch_sub(&w->srv->decisions[0], 1);
    atomic_fetch_add(&w->srv->decisions[1], 1);
    d->verdict           = TG_VERDICT_DENY;
    d->reservation_id[0] = '\0';
    d->n_targets         = 0;
    if (rv != TG_OK) {
        d->status = 503;
        snprintf(d->error_code, sizeof(d->error_code), "state_unavailable");
        snprintf(d->error_type, sizeof(d->error_type), "server_error");
        snprintf(d->message, sizeof(d->message),
                 "The gateway's policy service could not record this "
                 "request's reservation (%s), so it was not admitted. Retry "
                 "shortly; an operator should check tollgate-pdp's state "
                 "directory (disk full?).",
                 rv == TG_EFULL ? "its disk is full" : tg_strerror(rv));
        return;
    }
    d->status = 409;
    snprintf(d->error_code, sizeof(d->error_code), "request_abandoned");
    snprintf(d->error_type, sizeof(d->error_type), "invalid_request_error");
    snprintf(d->message, sizeof(d->message),
             "This request was settled or abandoned before the policy "
             "service decided it; send it again.");
}

/* pdp_server_unhold frees what decision id holds (its reservation, or a
 * sidecar's slices) when it could not be recorded. */
static void
pdp_server_unhold(pdp_server *srv, const char *id)
{
    if (srv->up != NULL) {
        pdp_upstream_abandon(srv->up, id);
    } else {
        pdp_limits_release(srv->lim, id, 0, tg_now_ms());
    }
}

/* pdp_worker_park_reservation records the decision's reservation before
 * the decision is sent: true when the worker is parked until the store's
 * callback replies. false: w->rep says why it is denied (nothing held). */
static bool
pdp_worker_park_reservation(pdp_worker *w, nng_msg *msg)
{
    pdp_server  *srv = w->srv;
    tg_decision *d   = &w->rep.u.decision;
    tg_err       rv;

    tg_buf_reset(&w->resbuf);
    if (srv->up != NULL) {
        /* A sidecar: what the request holds is the leases it charges. */
        memset(&w->hold, 0, sizeof(w->hold));
        snprintf(w->hold.request_id, sizeof(w->hold.request_id), "%s",
                 d->reservation_id);
        pdp_upstream_charges(srv->up, &w->hold);
        rv = pdp_store_hold_encode(&w->hold, &w->resbuf);
    } else {
        rv = pdp_limits_reservation_encode(srv->lim, d->reservation_id,
                                           &w->resbuf);
    }
    pthread_mutex_lock(&srv->mu);
    if (rv == TG_OK && atomic_load(&srv->stopping)) {
        rv = TG_ECLOSED;
    }
    if (rv == TG_OK) {
        srv->parked++;
        w->state  = PDP_WORKER_STORE;
        w->parked = msg;
    }
    pthread_mutex_unlock(&srv->mu);
    if (rv == TG_OK) {
        rv =
            pdp_store_reserve_submit(srv->st, d->reservation_id, w->resbuf.data,
                                     w->resbuf.len, pdp_worker_reserved, w);
        if (rv == TG_OK) {
            return true;
        }
        w->parked = NULL;
        pthread_mutex_lock(&srv->mu);
        srv->parked--;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
    }
    pdp_server_unhold(srv, d->reservation_id);
    pdp_worker_unrecorded(w, rv);
    return false;
}

/* pdp_worker_reserved runs on the store's writer thread once the
 * decision's reservation is recorded (or could not be): only then does
 * the decision leave the PDP. */
static void
pdp_worker_reserved(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    pdp_worker  *w   = arg;
    pdp_server  *srv = w->srv;
    nng_msg     *msg = w->parked;
    tg_decision *d   = &w->rep.u.decision;

    w->parked = NULL;
    if (rv != TG_OK || ack->duplicate) {
        /* Undo it: nothing may hold budget that no record backs. */
        pdp_server_unhold(srv, d->reservation_id);
        pdp_worker_unrecorded(w, rv);
    }
    w->sync = rv == TG_OK;
    pdp_worker_reply(w, msg);
    /* Last touch of w: after this, stop may free it. */
    pthread_mutex_lock(&srv->mu);
    srv->parked--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* pdp_worker_guard_set names the guard set of the decision's obligations
 * (its bundle b, the lists as they are now); a set that cannot be built
 * (a list the policy names is missing) makes the decision a 503: the
 * guardrails must run, and cannot. */
static void
pdp_worker_guard_set(pdp_worker *w, const pdp_bundle *b)
{
    tg_decision *d = &w->rep.u.decision;
    char         why[TG_MSG_TEXT_MAX - 64];

    why[0] = '\0';
    if (d->verdict != TG_VERDICT_ALLOW ||
        pdp_guardset_for(w->srv->guards, w->rd, b, d->guard_set, why,
                         sizeof(why)) == TG_OK) {
        return;
    }
    tg_warn("decide: request %s (key %s): guardrails cannot run: %s",
            w->req.request_id, d->key_id, why);
    if (d->reservation_id[0] != '\0') {
        pdp_limits_release(w->srv->lim, d->reservation_id, 0, tg_now_ms());
        d->reservation_id[0] = '\0';
    }
    d->verdict   = TG_VERDICT_DENY;
    d->status    = 503;
    d->n_targets = 0;
    d->n_guards  = 0;
    d->guard_set[0] = '\0';
    d->reserved_micro_usd = 0;
    snprintf(d->error_type, sizeof(d->error_type), "server_error");
    snprintf(d->error_code, sizeof(d->error_code), "guardrail_unavailable");
    snprintf(d->message, sizeof(d->message),
             "The guardrails this request must pass cannot run: %s.", why);
}

/* pdp_worker_guard_fetch answers a GuardFetch with the spec it names
 * (w->rep borrows it: the caller frees what this returns once the reply
 * is encoded). */
static char *
pdp_worker_guard_fetch(pdp_worker *w)
{
    char  *spec = NULL;
    size_t len  = 0;
    tg_err rv   = pdp_guardset_spec(w->srv->guards, w->req.u.guard_set, &spec,
                                    &len);

    memset(&w->rep, 0, offsetof(pdp_rep, u));
    memset(&w->rep.u.guard, 0, sizeof(w->rep.u.guard));
    w->rep.kind = PDP_REP_GUARD_SET;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
    memcpy(w->rep.u.guard.hash, w->req.u.guard_set, TG_MSG_HASH_MAX);
    w->rep.u.guard.found    = rv == TG_OK;
    w->rep.u.guard.spec     = spec;
    w->rep.u.guard.spec_len = len;
    return spec;
}

/* pdp_worker_decide answers a Decide into w->rep; true when the reply
 * waits for the store (the worker is parked with msg). */
static bool
pdp_worker_decide(pdp_worker *w, nng_msg *msg)
{
    pdp_server      *srv = w->srv;
    const tg_decide *req = &w->req.u.decide;
    pdp_bundle      *b;
    tg_err           rv;

    memset(&w->rep, 0, offsetof(pdp_rep, u));
    w->rep.kind = PDP_REP_DECISION;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
    if ((rv = pdp_store_read_begin(w->rd)) != TG_OK) {
        atomic_fetch_add(&srv->decisions[2], 1);
        pdp_worker_error(w, w->req.request_id, "pdp state store unavailable");
        return false;
    }
    /* Held for this decision only: a reload may swap the bundle meanwhile,
     * and this decision still finishes on the one it started with. */
    b  = pdp_rollout_acquire(srv->ro);
    rv = pdp_decide_eval_leased(w->rd, srv->cfg, b, srv->lim,
                                srv->up != NULL ? &srv->admit : NULL, srv->pr,
                                req, &w->rep.u.decision);
    if (!pdp_store_gen_ok(srv->st)) {
        w->rep.u.decision.reuse_ms = 0; /* no generation to end it by */
    }
    if (rv == TG_OK && w->rep.u.decision.n_guards > 0) {
        pdp_worker_guard_set(w, b);
    }
    pdp_bundle_unref(b);
    pdp_store_read_end(w->rd);
    if (rv == TG_EAGAIN) {
        /* A sidecar asking for a slice: wait parked (never on this
         * thread), decide again when the answer is in; a few times at
         * most, then the central PDP is too slow for this request. */
        if (w->waits++ < PDP_WORKER_WAITS_MAX && pdp_worker_park_lease(w, msg)) {
            return true;
        }
        memset(&w->rep.u.decision, 0, sizeof(w->rep.u.decision));
        pdp_decide_deny_upstream(&w->rep.u.decision);
        rv = TG_OK;
    }
    if (rv != TG_OK) {
        atomic_fetch_add(&srv->decisions[2], 1);
        pdp_worker_error(w, w->req.request_id, "pdp state store read failed");
        return false;
    }
    atomic_fetch_add(
        &srv->decisions[w->rep.u.decision.verdict == TG_VERDICT_ALLOW ? 0 : 1],
        1);
    /* Key ids only: never the key or its hash. */
    tg_debug("decide: request %s key %s model \"%s\" -> %s %u%s%s",
             w->req.request_id,
             w->rep.u.decision.key_id[0] ? w->rep.u.decision.key_id : "-",
             req->model,
             w->rep.u.decision.verdict == TG_VERDICT_ALLOW ? "allow" : "deny",
             w->rep.u.decision.status,
             w->rep.u.decision.error_code[0] ? " " : "",
             w->rep.u.decision.error_code);
    return w->rep.u.decision.reservation_id[0] != '\0' &&
           pdp_worker_park_reservation(w, msg);
}

/* pdp_worker_resume decides a parked decision again (the lease thread),
 * answering it unless it parks again. */
static void
pdp_worker_resume(void *arg)
{
    pdp_worker *w   = arg;
    pdp_server *srv = w->srv;
    nng_msg    *msg = w->parked;

    w->parked = NULL;
    if (!pdp_worker_decide(w, msg)) {
        pdp_worker_reply(w, msg);
    }
    /* Last touch of w: after this, stop may free it (a new park counted
     * itself already). */
    pthread_mutex_lock(&srv->mu);
    srv->parked--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* pdp_worker_park_lease parks w until its sidecar's asks are answered;
 * false when the server is stopping (nothing parked). */
static bool
pdp_worker_park_lease(pdp_worker *w, nng_msg *msg)
{
    pdp_server *srv = w->srv;

    pthread_mutex_lock(&srv->mu);
    if (atomic_load(&srv->stopping)) {
        pthread_mutex_unlock(&srv->mu);
        return false;
    }
    srv->parked++;
    w->state  = PDP_WORKER_STORE;
    w->parked = msg;
    pthread_mutex_unlock(&srv->mu);
    pdp_upstream_wait(srv->up, pdp_worker_resume, w);
    return true;
}

/* pdp_server_printable keeps peer-supplied text from forging log lines. */
static void
pdp_server_printable(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
}

/* pdp_worker_handle answers one request. Takes msg. */
static void
pdp_worker_handle(pdp_worker *w, nng_msg *msg)
{
    char   why[TG_MSG_TEXT_MAX];
    tg_err rv;

    rv = pdp_wire_decode_request_content(
        nng_msg_body(msg), nng_msg_len(msg),
        (size_t)PDP_SERVER_RECV_MAX(&w->srv->cfg->pdp), &w->req, &w->content,
        why, sizeof(why));
    if (rv == TG_OK && w->req.kind != PDP_REQ_RESP_PUT &&
        nng_msg_len(msg) > (size_t)w->srv->cfg->pdp.max_message_bytes) {
        pdp_wire_request_release(&w->req);
        snprintf(why, sizeof(why), "a message over pdp.max_message_bytes");
        rv = TG_ETOOBIG;
    }
    if (rv != TG_OK) {
        tg_debug("server: undecodable request: %s", why);
        pdp_worker_error(w, "", why);
        pdp_worker_reply(w, msg);
        return;
    }
    if (atomic_load(&w->srv->fenced) && w->req.kind != PDP_REQ_PING) {
        pdp_worker_error(w, w->req.request_id,
                         "this central PDP was promoted over (a standby took "
                         "over); restart it with pdp.ha.role standby");
        pdp_worker_reply(w, msg);
        return;
    }
    switch (w->req.kind) {
    case PDP_REQ_DECIDE:
        w->waits = 0;
        if (pdp_worker_decide(w, msg)) {
            return; /* parked: the store's callback replies */
        }
        break;
    case PDP_REQ_USAGE:
        pdp_worker_usage(w, msg);
        return;
    case PDP_REQ_USAGE_BATCH:
        pdp_worker_usage_batch(w, msg);
        return;
    case PDP_REQ_HELLO:
        pdp_server_printable(w->req.u.hello.component);
        pdp_server_printable(w->req.u.hello.version);
        tg_info("server: hello from %s %s", w->req.u.hello.component,
                w->req.u.hello.version);
        memset(&w->rep, 0, offsetof(pdp_rep, u));
        w->rep.kind = PDP_REP_HELLO_ACK;
        memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
        snprintf(w->rep.u.hello_ack.version, sizeof(w->rep.u.hello_ack.version),
                 "%s", PDP_VERSION);
        w->rep.u.hello_ack.policy_revision = pdp_rollout_revision(w->srv->ro);
        break;
    case PDP_REQ_PING:
        memset(&w->rep, 0, offsetof(pdp_rep, u));
        w->rep.kind = PDP_REP_PONG;
        memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
        w->rep.u.pong_sent_ms = w->req.u.ping_sent_ms;
        break;
    case PDP_REQ_GUARD_FETCH: {
        char *spec = pdp_worker_guard_fetch(w);
        pdp_worker_reply(w, msg); /* encodes before it sends */
        free(spec);
        return;
    }
    case PDP_REQ_RESP_PUT:
    case PDP_REQ_RESP_GET:
    case PDP_REQ_RESP_DEL:
        pdp_server_resp_handle(w);
        pdp_worker_reply(w, msg); /* encodes before it sends */
        pdp_wire_reply_release(&w->rep);
        return;
    case PDP_REQ_REPL_PULL:
    case PDP_REQ_LEASE_ASK:
    case PDP_REQ_LEASE_CLOSE:
        if (pdp_server_up_handle(w, msg)) {
            return;
        }
        break;
    }
    pdp_worker_reply(w, msg);
}

static void
pdp_worker_cb(void *arg)
{
    pdp_worker *w  = arg;
    int         rv = nng_aio_result(w->aio);
    nng_msg    *msg;

    switch (w->state) {
    case PDP_WORKER_SEND:
        if (rv != 0) {
            /* Not sent (peer gone, socket closing): the message is ours. */
            nng_msg_free(nng_aio_get_msg(w->aio));
            nng_aio_set_msg(w->aio, NULL);
        }
        pdp_worker_recv(w);
        return;
    case PDP_WORKER_RECV:
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            return;
        }
        if (rv != 0) {
            tg_warn("server: receive failed: %s", nng_strerror(rv));
            pdp_worker_recv(w);
            return;
        }
        msg = nng_aio_get_msg(w->aio);
        nng_aio_set_msg(w->aio, NULL);
        pdp_worker_handle(w, msg);
        return;
    case PDP_WORKER_STORE:
        /* The aio is idle while parked; nothing should complete. */
        tg_error("server: aio completed while waiting on the store");
        return;
    }
}

tg_err
pdp_server_start(pdp_server **out, const tg_config *cfg, pdp_store *st,
                 tg_pricing *pr, pdp_rollout *ro, char *err, size_t errlen)
{
    return pdp_server_start_up(out, cfg, st, pr, ro, NULL, err, errlen);
}

tg_err
pdp_server_start_up(pdp_server **out, const tg_config *cfg, pdp_store *st,
                    tg_pricing *pr, pdp_rollout *ro, pdp_upstream *up,
                    char *err, size_t errlen)
{
    pdp_server *srv = calloc(1, sizeof(*srv));
    tg_err      rv  = TG_OK;
    int         nrv;

    if (srv == NULL) {
        snprintf(err, errlen, "server: out of memory");
        return TG_ENOMEM;
    }
    srv->cfg = cfg;
    srv->st  = st;
    srv->pr  = pr;
    srv->ro  = ro;
    srv->up  = up;
    srv->admit = (pdp_decide_admit){pdp_upstream_admit, up};
    if ((rv = pdp_limits_create(&srv->lim,
                                cfg->pdp.reservation_ttl_s * 1000)) != TG_OK) {
        snprintf(err, errlen, "server: out of memory");
        free(srv);
        return rv;
    }
    if ((rv = pdp_server_state_load(srv, err, errlen)) != TG_OK) {
        pdp_limits_destroy(srv->lim);
        free(srv);
        return rv;
    }
    pdp_limits_on_expire(srv->lim, pdp_server_expired, srv);
    if ((rv = pdp_alerts_start(&srv->alerts)) != TG_OK) {
        snprintf(err, errlen, "server: cannot start the alert sender: %s",
                 tg_strerror(rv));
        pdp_limits_destroy(srv->lim);
        free(srv);
        return rv;
    }
    for (size_t i = 0; i < 3; i++) {
        atomic_init(&srv->decisions[i], 0);
    }
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->ready, false);
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&srv->snap_mu, NULL);
        pthread_cond_init(&srv->snap_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    tg_buf_init(&srv->snap_buf, 0);
    tg_trust_log_init(&srv->refused);
    atomic_init(&srv->pipes, 0);
    pthread_mutex_init(&srv->pipe_mu, NULL);
    atomic_init(&srv->tls_reloads, 0);
    atomic_init(&srv->fenced, false);
    if ((rv = pdp_signer_open(&srv->signer, cfg->pdp.state_dir, true, err,
                              errlen)) != TG_OK) {
        goto out;
    }
    if ((rv = pdp_guardset_create(&srv->guards, st)) != TG_OK) {
        snprintf(err, errlen, "server: out of memory");
        goto out;
    }
    pdp_store_decisions_sign_every(st, srv->signer,
                                   (uint64_t)cfg->pdp.decision_checkpoint_every);
    pdp_server_allow(srv);
    srv->n_workers = (size_t)cfg->pdp.workers;
    if ((srv->workers = calloc(srv->n_workers, sizeof(*srv->workers))) ==
        NULL) {
        snprintf(err, errlen, "server: out of memory");
        rv = TG_ENOMEM;
        goto out;
    }
    if ((nrv = nng_rep0_open(&srv->sock)) != 0) {
        snprintf(err, errlen, "server: cannot open an nng rep socket: %s",
                 nng_strerror(nrv));
        rv = TG_EIO;
        goto out;
    }
    srv->sock_open = true;
    nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, pdp_server_pipe_cb, srv);
    nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_POST, pdp_server_pipe_cb, srv);
    nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, pdp_server_pipe_cb, srv);
    /* nng drops an over-size message unseen (the requester times out and
     * fails closed); pdp_worker_handle holds all but RespPut to less. */
    nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
                        (size_t)PDP_SERVER_RECV_MAX(&cfg->pdp));
    for (size_t i = 0; i < srv->n_workers; i++) {
        pdp_worker *w = &srv->workers[i];

        w->srv = srv;
        /* Replies are small but for replication: a sidecar's snapshot,
         * a standby's chunk of log or copy. */
        tg_buf_init(&w->out, PDP_SERVER_REPLY_MAX);
        tg_buf_init(&w->resbuf, 0);
        tg_buf_init(&w->content, 0);
        if ((nrv = nng_aio_alloc(&w->aio, pdp_worker_cb, w)) != 0 ||
            (nrv = nng_ctx_open(&w->ctx, srv->sock)) != 0) {
            snprintf(err, errlen, "server: cannot set up worker %zu: %s", i,
                     nng_strerror(nrv));
            rv = TG_EIO;
            goto out;
        }
        w->ctx_open = true;
        if ((rv = pdp_store_reader_create(st, &w->rd)) != TG_OK) {
            snprintf(err, errlen, "server: cannot set up worker %zu: %s", i,
                     tg_strerror(rv));
            goto out;
        }
    }
    if ((rv = pdp_server_tls_start(srv, err, errlen)) != TG_OK ||
        (rv = pdp_server_ha_start(srv, err, errlen)) != TG_OK) {
        goto out;
    }
    for (size_t i = 0; i < cfg->pdp.n_listen; i++) {
        if ((rv = pdp_server_listen(srv, cfg->pdp.listen[i], err, errlen)) !=
            TG_OK) {
            goto out;
        }
    }
    /* Only once this PDP serves: a start that fails (say, another PDP
     * listens there) must not overwrite that one's snapshot. */
    if ((nrv = pthread_create(&srv->snap_thread, NULL, pdp_server_snap_main,
                              srv)) != 0) {
        snprintf(err, errlen, "server: cannot start the snapshot thread: %s",
                 strerror(nrv));
        rv = TG_ESYS;
        goto out;
    }
    srv->snap_running = true;
    for (size_t i = 0; i < srv->n_workers; i++) {
        pdp_worker_recv(&srv->workers[i]);
    }
    atomic_store(&srv->ready, true);
    *out = srv;
    srv  = NULL;
out:
    pdp_server_stop(srv);
    return rv;
}

bool
pdp_server_ready(const pdp_server *srv)
{
    return srv != NULL && atomic_load(&srv->ready);
}

void
pdp_server_drain(pdp_server *srv, int64_t timeout_s)
{
    int64_t until = tg_mono_us() + timeout_s * 1000000;
    int     n;

    if (srv == NULL) {
        return;
    }
    atomic_store(&srv->ready, false);
    n = atomic_load(&srv->pipes);
    if (n > 0 && timeout_s > 0) {
        tg_info("server: draining: %d data plane connection(s) open; "
                "deciding until they close or %lld s pass "
                "(pdp.drain_timeout_s)",
                n, (long long)timeout_s);
    }
    while (atomic_load(&srv->pipes) > 0 && tg_mono_us() < until) {
        usleep(20 * 1000);
    }
    if ((n = atomic_load(&srv->pipes)) > 0 && timeout_s > 0) {
        tg_warn("server: drain time is up with %d data plane connection(s) "
                "still open; stopping (they fail over or fail closed)",
                n);
    }
}

static void
pdp_server_rule_hit(void *arg, const char *rule, const char *mode,
                    const char *effect, uint64_t n)
{
    /* Rule ids are [A-Za-z0-9._-]: nothing to escape in a label. */
    tg_buf_addf(arg,
                "tollgate_pdp_rule_hits_total{rule=\"%s\",mode=\"%s\","
                "effect=\"%s\"} %llu\n",
                rule, mode, effect, (unsigned long long)n);
}

void
pdp_server_metrics(pdp_server *srv, tg_buf *out)
{
    static const char *const names[3] = {"allow", "deny", "error"};

    tg_buf_addf(out, "# HELP tollgate_pdp_decisions_total Decisions "
                     "answered, by verdict (error: the store could not be "
                     "read; the data plane denies).\n"
                     "# TYPE tollgate_pdp_decisions_total counter\n");
    for (size_t i = 0; i < 3; i++) {
        tg_buf_addf(out, "tollgate_pdp_decisions_total{verdict=\"%s\"} %lld\n",
                    names[i],
                    srv != NULL ? (long long)atomic_load(&srv->decisions[i])
                                : 0LL);
    }
    tg_buf_addf(out,
                "# HELP tollgate_pdp_connections Data plane connections "
                "open now.\n"
                "# TYPE tollgate_pdp_connections gauge\n"
                "tollgate_pdp_connections %d\n"
                "# HELP tollgate_pdp_tls_reloads_total Times pdp.tls's "
                "certificates were reloaded after their files changed.\n"
                "# TYPE tollgate_pdp_tls_reloads_total counter\n"
                "tollgate_pdp_tls_reloads_total %lld\n",
                srv != NULL ? atomic_load(&srv->pipes) : 0,
                srv != NULL ? (long long)atomic_load(&srv->tls_reloads) : 0LL);
    tg_buf_addf(out, "# HELP tollgate_pdp_rule_hits_total Decisions a rule "
                     "matched in (its condition held), by mode (audit: "
                     "would have applied) and effect, since its bundle was "
                     "loaded.\n"
                     "# TYPE tollgate_pdp_rule_hits_total counter\n");
    if (srv != NULL) {
        pdp_bundle *b = pdp_rollout_acquire(srv->ro);
        if (b != NULL) {
            pdp_bundle_rule_hits(b, pdp_server_rule_hit, out);
            pdp_bundle_unref(b);
        }
    }
    pdp_alerts_metrics(srv != NULL ? srv->alerts : NULL, out);
    if (srv != NULL) {
        pdp_server_up_metrics(srv, out);
        pdp_server_ha_metrics(srv, out);
        if (srv->up != NULL) {
            pdp_upstream_metrics(srv->up, out);
        }
    }
}

void
pdp_server_stop(pdp_server *srv)
{
    if (srv == NULL) {
        return;
    }
    atomic_store(&srv->ready, false);
    pthread_mutex_lock(&srv->mu);
    atomic_store(&srv->stopping, true);
    pthread_mutex_unlock(&srv->mu);
    pdp_server_ha_stop(srv); /* held replies go (as errors) */
    /* Parked usage reports get their (durable) acks out first, while the
     * socket still works. */
    pthread_mutex_lock(&srv->mu);
    while (srv->parked > 0) {
        pthread_cond_wait(&srv->cv, &srv->mu);
    }
    pthread_mutex_unlock(&srv->mu);
    for (size_t i = 0; srv->workers != NULL && i < srv->n_workers; i++) {
        if (srv->workers[i].aio != NULL) {
            nng_aio_stop(srv->workers[i].aio);
        }
    }
    /* Closing the socket with aios still active has hung nng 1.5 now and
     * then; with every aio stopped and every context closed it does not. */
    for (size_t i = 0; srv->workers != NULL && i < srv->n_workers; i++) {
        if (srv->workers[i].ctx_open) {
            nng_ctx_close(srv->workers[i].ctx);
        }
    }
    pdp_server_tls_stop(srv);
    if (srv->sock_open) {
        nng_close(srv->sock);
    }
    if (srv->snap_running) {
        pthread_mutex_lock(&srv->snap_mu);
        srv->snap_stop = true;
        pthread_cond_signal(&srv->snap_cv);
        pthread_mutex_unlock(&srv->snap_mu);
        pthread_join(srv->snap_thread, NULL);
        /* No decision or report runs any more: this one is final. */
        pdp_server_snapshot(srv);
    }
    for (size_t i = 0; srv->workers != NULL && i < srv->n_workers; i++) {
        pdp_worker *w = &srv->workers[i];
        nng_aio_free(w->aio);
        pdp_store_reader_destroy(w->rd);
        tg_buf_fini(&w->out);
        tg_buf_fini(&w->resbuf);
        tg_buf_fini(&w->content);
    }
    free(srv->workers);
    pdp_server_ha_free(srv);
    pdp_alerts_stop(srv->alerts); /* no usage report is in flight now */
    pdp_limits_destroy(srv->lim);
    pdp_guardset_destroy(srv->guards);
    pthread_mutex_destroy(&srv->mu);
    pthread_mutex_destroy(&srv->pipe_mu);
    pthread_cond_destroy(&srv->cv);
    pthread_mutex_destroy(&srv->snap_mu);
    pthread_cond_destroy(&srv->snap_cv);
    tg_buf_fini(&srv->snap_buf);
    tg_trust_log_fini(&srv->refused);
    if (srv->signer != NULL) {
        /* Nothing is settled any more: the writer is idle. */
        pdp_store_decisions_checkpoint(srv->st, srv->signer, NULL);
        pdp_store_decisions_sign_every(srv->st, NULL, 0);
        pdp_signer_free(srv->signer);
    }
    free(srv);
}

pdp_limits *
pdp_server_limits(pdp_server *srv)
{
    return srv != NULL ? srv->lim : NULL;
}
