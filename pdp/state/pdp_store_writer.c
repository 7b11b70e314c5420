/* pdp_store_writer.c - the store's one writer thread and its queue: usage
 * reports, reservations to record and expired ones to end are queued by
 * any thread (pdp_store_usage_submit*, pdp_store_reserve_submit,
 * pdp_store_reservation_forget) and committed in batches, one commit and
 * one fsync for everything queued; callbacks run on the writer thread. */
#include "pdp_store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tg_log.h"
#include "tg_time.h"

/* ---- one batch, one txn ------------------------------------------------- */

/* pdp_store_batch_forget ends the record of expired reservation it: it
 * holds nothing now, but a report that still comes is charged to the
 * budgets it names. */
static int
pdp_store_batch_forget(pdp_store *st, MDB_txn *txn, pdp_store_item *it,
                       pdp_rec_out *o)
{
    MDB_val k  = {strlen(it->usage.request_id), it->usage.request_id};
    int     rc = pdp_store__res_end(st, txn, &k, o);

    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* pdp_store_batch_reserve records reservation it, unless its request is
 * settled or abandoned already (its report came first): then it is not
 * recorded (ack.duplicate), and the caller undoes it. */
static int
pdp_store_batch_reserve(pdp_store *st, MDB_txn *txn, pdp_store_item *it)
{
    MDB_val k = {strlen(it->usage.request_id), it->usage.request_id};
    MDB_val v;
    int     rc = mdb_get(txn, st->usage, &k, &v);

    it->ack.duplicate = rc == 0;
    if (rc == MDB_NOTFOUND) {
        v.mv_size = it->res_len;
        v.mv_data = it->res;
        rc        = pdp_store__put(st, txn, st->reservations, &k, &v, 0);
    }
    return rc;
}

/* pdp_store_batch_usage settles usage report it: its reservation record
 * first (pdp_store__res_settle), then its row, totals and spend
 * (pdp_store__usage_put). A retry of a report already held is acked with
 * the cost it was settled at and counts nothing. */
static int
pdp_store_batch_usage(pdp_store *st, MDB_txn *txn, pdp_store_item *it,
                      pdp_rec_out *o)
{
    MDB_val       k = {strlen(it->usage.request_id), it->usage.request_id};
    MDB_val       v;
    pdp_usage_rec prev;
    int           rc = mdb_get(txn, st->usage, &k, &v);

    /* The report settles the reservation record in the same txn: a
     * settled reservation never comes back after a crash, and its
     * request still counts in its rate windows until a saved window
     * snapshot does (pdp_store_limits_save prunes it then). */
    if (it->usage.reservation_id[0] != '\0' && rc == MDB_NOTFOUND) {
        int grc = pdp_store__res_settle(st, txn, it, o);
        if (grc != 0 && grc != MDB_NOTFOUND) {
            return grc;
        }
    }
    if (rc == 0) {
        it->ack.duplicate      = true;
        it->ack.cost_micro_usd = pdp_store__usage_decode(&v, &prev) == TG_OK
                                     ? prev.cost_micro_usd
                                     : 0;
        return 0;
    }
    if (rc != MDB_NOTFOUND) {
        return rc;
    }
    it->ack.duplicate      = false;
    it->ack.cost_micro_usd = it->cost;
    if ((rc = pdp_store__usage_put(st, txn, it, o)) != 0) {
        return rc;
    }
    return pdp_store__forward_usage(st, txn, it);
}

/* pdp_store_batch_txn settles a batch; reruns from scratch after a grow. */
static int
pdp_store_batch_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_rec_out *o  = malloc(sizeof(*o));
    int          rc = 0;

    if (o == NULL) {
        return ENOMEM;
    }
    for (pdp_store_item *it = arg; it != NULL && rc == 0; it = it->next) {
        if (it->op == PDP_STORE_OP_FORGET) {
            rc = pdp_store_batch_forget(st, txn, it, o);
        } else if (it->op == PDP_STORE_OP_RESERVE) {
            rc = pdp_store_batch_reserve(st, txn, it);
        } else {
            rc = pdp_store_batch_usage(st, txn, it, o);
        }
    }
    free(o);
    return rc;
}

/* ---- the writer thread -------------------------------------------------- */

/* pdp_store_take_batch unlinks what is queued, up to PDP_STORE_BATCH_MAX
 * items, and says how many; st->mu held, the queue not empty. */
static pdp_store_item *
pdp_store_take_batch(pdp_store *st, size_t *n)
{
    pdp_store_item *batch = st->head;
    pdp_store_item *last  = batch;

    *n = 1;
    while (last->next != NULL && *n < PDP_STORE_BATCH_MAX) {
        last = last->next;
        (*n)++;
    }
    st->head   = last->next;
    last->next = NULL;
    if (st->head == NULL) {
        st->tail = NULL;
    }
    return batch;
}

/* pdp_store_item_finish hands item it its result (the budget keys it was
 * charged to, which alerts fired, the ack) and frees it. */
static void
pdp_store_item_finish(pdp_store_item *it, tg_err rv)
{
    if (it->nspend_out != NULL && rv == TG_OK) {
        /* The keys may be the record's: copy them whole. */
        *it->nspend_out = it->nspend;
        memcpy(it->spend_out, it->spend, it->nspend * sizeof(it->spend[0]));
    }
    for (uint32_t i = 0; it->spend_out != NULL && rv == TG_OK && i < it->nspend;
         i++) {
        it->spend_out[i].nfired = it->ack.duplicate ? 0 : it->spend[i].nfired;
        memcpy(it->spend_out[i].fired, it->spend[i].fired,
               sizeof(it->spend[i].fired));
        it->spend_out[i].spent_after = it->spend[i].spent_after;
    }
    if (it->cb != NULL) {
        it->cb(it->arg, rv, &it->ack);
    }
    free(it->res);
    free(it->content);
    free(it);
}

/* pdp_store_deliver finishes a committed batch in two passes: first the
 * reservations and forgets (they only need to survive this process dying,
 * so their decisions go out at once), then, after one fsync, the usage
 * reports. */
static void
pdp_store_deliver(pdp_store *st, pdp_store_item *batch, tg_err rv)
{
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && rv == TG_OK) {
            bool usage = false;
            for (pdp_store_item *it = batch; it != NULL && !usage;
                 it                 = it->next) {
                usage = it->op == PDP_STORE_OP_USAGE;
            }
            int src = usage ? mdb_env_sync(st->env, 1) : 0;
            if (src != 0) {
                /* Committed (a crash of this process keeps it) but
                 * maybe not on the disk: memory follows the commit,
                 * and the failing disk is said. */
                pdp_store__log_failure(st, "fsync", src);
            }
        }
        for (pdp_store_item **pp = &batch; *pp != NULL;) {
            pdp_store_item *it = *pp;
            if ((it->op == PDP_STORE_OP_USAGE) != (pass == 1)) {
                pp = &it->next;
                continue;
            }
            *pp = it->next;
            pdp_store_item_finish(it, rv);
        }
    }
}

static void *
pdp_store_writer_main(void *arg)
{
    pdp_store *st = arg;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        pdp_store_item *batch;
        size_t          n;
        int64_t         t0;
        tg_err          rv;

        while (st->head == NULL && !st->stopping) {
            pthread_cond_wait(&st->cv, &st->mu);
        }
        if (st->head == NULL) {
            break; /* stopping and drained */
        }
        /* Take everything queued (up to a cap): one fsync for all of it. */
        batch = pdp_store_take_batch(st, &n);
        pthread_mutex_unlock(&st->mu);

        t0 = tg_mono_us();
        /* One commit for the whole batch, no fsync: see pdp_store_deliver. */
        rv = pdp_store__write_nosync(st, pdp_store_batch_txn, batch);
        tg_debug("store: committed %zu item(s) in %lld us: %s", n,
                 (long long)(tg_mono_us() - t0), tg_strerror(rv));
        pdp_store_deliver(st, batch, rv);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

tg_err
pdp_store__writer_start(pdp_store *st)
{
    if (pthread_create(&st->writer, NULL, pdp_store_writer_main, st) != 0) {
        return TG_ESYS;
    }
    st->writer_running = true;
    return TG_OK;
}

void
pdp_store__writer_stop(pdp_store *st)
{
    if (!st->writer_running) {
        return;
    }
    pthread_mutex_lock(&st->mu);
    st->stopping = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->writer, NULL);
    st->writer_running = false;
}

/* ---- submitting --------------------------------------------------------- */

/* pdp_store__enqueue hands it to the writer; TG_ECLOSED (it is freed)
 * when the store is closing. */
static tg_err
pdp_store__enqueue(pdp_store *st, pdp_store_item *it)
{
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        pthread_mutex_unlock(&st->mu);
        free(it->res);
        free(it);
        return TG_ECLOSED;
    }
    if (st->tail != NULL) {
        st->tail->next = it;
    } else {
        st->head = it;
    }
    st->tail = it;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return TG_OK;
}

tg_err
pdp_store_usage_submit(pdp_store *st, const tg_usage *u, int64_t cost_micro_usd,
                       pdp_store_usage_cb cb, void *arg)
{
    return pdp_store_usage_submit_spend(st, u, cost_micro_usd, NULL, 0, cb,
                                        arg);
}

/* pdp_store__submit_usage queues report u with the budget keys given
 * (nspend of spend); nspend_out non-NULL: spend has room for
 * PDP_LIMITS_BUDGETS_MAX and the keys and their count are written back. */
static tg_err
pdp_store__submit_usage(pdp_store *st, const tg_usage *u, const char *content,
                        size_t content_len, int64_t cost,
                        pdp_limits_spend_key *spend, uint32_t nspend,
                        uint32_t *nspend_out, pdp_store_usage_cb cb, void *arg)
{
    pdp_store_item *it;

    if (u->request_id[0] == '\0') {
        return TG_EINVAL;
    }
    if ((it = calloc(1, sizeof(*it))) == NULL) {
        return TG_ENOMEM;
    }
    if (content != NULL && content_len > 0) {
        if ((it->content = malloc(content_len)) == NULL) {
            free(it);
            return TG_ENOMEM;
        }
        memcpy(it->content, content, content_len);
        it->content_len = content_len;
    }
    it->usage      = *u;
    it->cost       = cost;
    it->settled_ms = tg_now_ms();
    it->cb         = cb;
    it->arg        = arg;
    it->nspend =
        nspend < PDP_LIMITS_BUDGETS_MAX ? nspend : PDP_LIMITS_BUDGETS_MAX;
    if (it->nspend > 0) {
        memcpy(it->spend, spend, it->nspend * sizeof(spend[0]));
    }
    if (it->nspend > 0 || nspend_out != NULL) {
        it->spend_out = spend;
    }
    it->nspend_out = nspend_out;
    memcpy(it->ack.request_id, u->request_id, sizeof(it->ack.request_id));
    return pdp_store__enqueue(st, it);
}

tg_err
pdp_store_usage_submit_spend(pdp_store *st, const tg_usage *u,
                             int64_t               cost_micro_usd,
                             pdp_limits_spend_key *spend, uint32_t nspend,
                             pdp_store_usage_cb cb, void *arg)
{
    return pdp_store__submit_usage(st, u, NULL, 0, cost_micro_usd, spend,
                                   nspend, NULL, cb, arg);
}

tg_err
pdp_store_usage_submit_res(pdp_store *st, const tg_usage *u,
                           int64_t cost_micro_usd, pdp_limits_spend_key *spend,
                           uint32_t *nspend, pdp_store_usage_cb cb, void *arg)
{
    return pdp_store__submit_usage(st, u, NULL, 0, cost_micro_usd, spend,
                                   *nspend, nspend, cb, arg);
}

tg_err
pdp_store_usage_submit_content(pdp_store *st, const tg_usage *u,
                               const char *content, size_t content_len,
                               int64_t cost_micro_usd,
                               pdp_limits_spend_key *spend, uint32_t *nspend,
                               pdp_store_usage_cb cb, void *arg)
{
    return pdp_store__submit_usage(st, u, content, content_len,
                                   cost_micro_usd, spend, *nspend, nspend, cb,
                                   arg);
}

tg_err
pdp_store_reserve_submit(pdp_store *st, const char *request_id,
                         const void *data, size_t len, pdp_store_usage_cb cb,
                         void *arg)
{
    pdp_store_item *it;
    size_t          n = strlen(request_id);

    if (n == 0 || n >= TG_REQUEST_ID_MAX || len == 0) {
        return TG_EINVAL;
    }
    if ((it = calloc(1, sizeof(*it))) == NULL ||
        (it->res = malloc(len)) == NULL) {
        free(it);
        return TG_ENOMEM;
    }
    it->op      = PDP_STORE_OP_RESERVE;
    it->res_len = len;
    memcpy(it->res, data, len);
    memcpy(it->usage.request_id, request_id, n + 1);
    memcpy(it->ack.request_id, request_id, n + 1);
    it->cb  = cb;
    it->arg = arg;
    return pdp_store__enqueue(st, it);
}

tg_err
pdp_store_reservation_forget(pdp_store *st, const char *id)
{
    pdp_store_item *it;
    size_t          n = strlen(id);

    if (n == 0 || n >= TG_REQUEST_ID_MAX) {
        return TG_EINVAL;
    }
    if ((it = calloc(1, sizeof(*it))) == NULL) {
        return TG_ENOMEM;
    }
    it->op = PDP_STORE_OP_FORGET;
    memcpy(it->usage.request_id, id, n + 1);
    return pdp_store__enqueue(st, it);
}

typedef struct pdp_store_waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            done;
    tg_err          rv;
    tg_usage_ack    ack;
} pdp_store_waiter;

static void
pdp_store_settle_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    pdp_store_waiter *w = arg;

    pthread_mutex_lock(&w->mu);
    w->rv   = rv;
    w->ack  = *ack;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

tg_err
pdp_store_usage_settle(pdp_store *st, const tg_usage *u, int64_t cost_micro_usd,
                       tg_usage_ack *ack)
{
    return pdp_store_usage_settle_spend(st, u, cost_micro_usd, NULL, 0, ack);
}

tg_err
pdp_store_usage_settle_spend(pdp_store *st, const tg_usage *u,
                             int64_t               cost_micro_usd,
                             pdp_limits_spend_key *spend, uint32_t nspend,
                             tg_usage_ack *ack)
{
    pdp_store_waiter w;
    tg_err           rv;

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rv = pdp_store_usage_submit_spend(st, u, cost_micro_usd, spend, nspend,
                                      pdp_store_settle_cb, &w);
    if (rv == TG_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        rv   = w.rv;
        *ack = w.ack;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rv;
}
