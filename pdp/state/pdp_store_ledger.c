/* pdp_store_ledger.c - the usage, totals, budgets and alerts_fired
 * databases of pdp_store: their records, what settling one usage report
 * writes (its row, its key's and tenant's totals, the spend of every budget
 * it falls under and the alerts that crossed), and their reads and lists.
 * Thread-safe like the rest of the store; writes run on the writer thread
 * (pdp_store_writer.c). */
#include "pdp_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ------------------------------------------------------------ */

void
pdp_store__usage_encode(pdp_rec_out *o, const tg_usage *u, int64_t cost,
                        int64_t settled_ms)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o,
                 (u->stream ? 1u : 0u) | (u->estimated ? 2u : 0u) |
                     (u->abandoned ? 4u : 0u),
                 1);
    pdp_rec_uint(o, (uint64_t)u->endpoint, 1);
    pdp_rec_uint(o, u->status, 4);
    pdp_rec_uint(o, (uint64_t)u->prompt_tokens, 8);
    pdp_rec_uint(o, (uint64_t)u->completion_tokens, 8);
    pdp_rec_uint(o, (uint64_t)u->cached_tokens, 8);
    pdp_rec_uint(o, (uint64_t)cost, 8);
    pdp_rec_uint(o, (uint64_t)u->started_ms, 8);
    pdp_rec_uint(o, (uint64_t)u->duration_ms, 8);
    pdp_rec_uint(o, (uint64_t)settled_ms, 8);
    pdp_rec_str(o, u->key_id);
    pdp_rec_str(o, u->tenant_id);
    pdp_rec_str(o, u->model);
    pdp_rec_str(o, u->deployment_id);
    pdp_rec_str(o, u->reservation_id);
    pdp_rec_str(o, u->user);
}

tg_err
pdp_store__usage_decode(const MDB_val *v, pdp_usage_rec *r)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};
    tg_usage  *u  = &r->usage;
    unsigned   flags;

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    flags                = (unsigned)pdp_rec_get_uint(&in, 1);
    u->stream            = (flags & 1u) != 0;
    u->estimated         = (flags & 2u) != 0;
    u->abandoned         = (flags & 4u) != 0;
    u->endpoint          = (tg_endpoint)pdp_rec_get_uint(&in, 1);
    u->status            = (uint32_t)pdp_rec_get_uint(&in, 4);
    u->prompt_tokens     = pdp_rec_get_i64(&in);
    u->completion_tokens = pdp_rec_get_i64(&in);
    u->cached_tokens     = pdp_rec_get_i64(&in);
    r->cost_micro_usd    = pdp_rec_get_i64(&in);
    u->started_ms        = pdp_rec_get_i64(&in);
    u->duration_ms       = pdp_rec_get_i64(&in);
    r->settled_ms        = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, u->key_id, sizeof(u->key_id));
    pdp_rec_get_str(&in, u->tenant_id, sizeof(u->tenant_id));
    pdp_rec_get_str(&in, u->model, sizeof(u->model));
    pdp_rec_get_str(&in, u->deployment_id, sizeof(u->deployment_id));
    pdp_rec_get_str(&in, u->reservation_id, sizeof(u->reservation_id));
    pdp_rec_get_str(&in, u->user, sizeof(u->user));
    return in.bad ? TG_EIO : TG_OK;
}

void
pdp_store__totals_encode(pdp_rec_out *o, const pdp_totals *t)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)t->requests, 8);
    pdp_rec_uint(o, (uint64_t)t->prompt_tokens, 8);
    pdp_rec_uint(o, (uint64_t)t->completion_tokens, 8);
    pdp_rec_uint(o, (uint64_t)t->cost_micro_usd, 8);
    pdp_rec_uint(o, (uint64_t)t->last_ms, 8); /* trailing: older ignore it */
}

tg_err
pdp_store__totals_decode(const MDB_val *v, pdp_totals *t)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    t->requests          = pdp_rec_get_i64(&in);
    t->prompt_tokens     = pdp_rec_get_i64(&in);
    t->completion_tokens = pdp_rec_get_i64(&in);
    t->cost_micro_usd    = pdp_rec_get_i64(&in);
    t->last_ms           = 0;
    if (!in.bad && in.off < in.len) {
        t->last_ms = pdp_rec_get_i64(&in);
    }
    return in.bad ? TG_EIO : TG_OK;
}

size_t
pdp_store__totals_key(char *buf, size_t cap, pdp_totals_kind kind,
                      const char *id)
{
    int n = snprintf(buf, cap, "%c:%s", (char)kind, id);

    return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

/* Budget spend records (see pdp_store.h). */
size_t
pdp_store__budget_key(pdp_rec_out *o, const pdp_limits_spend_key *sk)
{
    uint8_t be[8];

    o->len = 0;
    o->bad = false;
    pdp_rec_str(o, sk->rule_id);
    pdp_rec_str(o, sk->scope);
    pdp_rec_uint(o, sk->code, 1);
    for (size_t i = 0; i < 8; i++) {
        be[i] = (uint8_t)((uint64_t)sk->start_ms >> (8 * (7 - i)));
    }
    pdp_rec_put(o, be, 8);
    return o->bad ? 0 : o->len;
}

tg_err
pdp_store__budget_decode(const MDB_val *k, const MDB_val *v,
                         pdp_limits_spend_key *sk, int64_t *spent)
{
    pdp_rec_in in    = {k->mv_data, k->mv_size, 0, false};
    uint64_t   start = 0;

    pdp_rec_get_str(&in, sk->rule_id, sizeof(sk->rule_id));
    pdp_rec_get_str(&in, sk->scope, sizeof(sk->scope));
    sk->code = (uint8_t)pdp_rec_get_uint(&in, 1);
    if (in.bad || in.len - in.off != 8) {
        return TG_EVERSION;
    }
    for (size_t i = 0; i < 8; i++) {
        start = (start << 8) | in.p[in.off + i];
    }
    sk->start_ms = (int64_t)start;
    in           = (pdp_rec_in){v->mv_data, v->mv_size, 0, false};
    if (pdp_rec_get_uint(&in, 1) < 1) {
        return TG_EVERSION;
    }
    *spent = pdp_rec_get_i64(&in);
    return in.bad ? TG_EVERSION : TG_OK;
}

void
pdp_store__budget_val(pdp_rec_out *o, int64_t spent, int64_t updated_ms)
{
    pdp_rec_uint(o, 1, 1);
    pdp_rec_uint(o, (uint64_t)spent, 8);
    pdp_rec_uint(o, (uint64_t)updated_ms, 8);
}

void
pdp_store__alert_val(pdp_rec_out *o, int64_t fired_ms, int64_t spent,
                     int64_t limit)
{
    pdp_rec_uint(o, 1, 1);
    pdp_rec_uint(o, (uint64_t)fired_ms, 8);
    pdp_rec_uint(o, (uint64_t)spent, 8);
    pdp_rec_uint(o, (uint64_t)limit, 8);
}

/* pdp_store__budget_row_decode reads a budgets record (alert false: u8
 * version, i64 spent, i64 updated_ms) or an alerts_fired one (its key a
 * budgets key and a u8 threshold; its value u8 1, i64 fired_ms, i64
 * spent, i64 limit) into r. */
tg_err
pdp_store__budget_row_decode(const MDB_val *k, const MDB_val *v, bool alert,
                             pdp_budget_row *r)
{
    static const uint8_t none[9] = {1}; /* a budgets value: no spend */
    pdp_rec_in           in      = {v->mv_data, v->mv_size, 0, false};
    MDB_val              bk      = {k->mv_size - 1, k->mv_data};
    MDB_val              bv      = {sizeof(none), (void *)none};
    tg_err               rv;

    memset(r, 0, sizeof(*r));
    if (!alert) {
        if ((rv = pdp_store__budget_decode(k, v, &r->key,
                                           &r->spent_micro_usd)) != TG_OK) {
            return rv;
        }
        in.off        = 9; /* u8 version, i64 spent */
        r->updated_ms = pdp_rec_get_i64(&in);
        return in.bad ? TG_EIO : TG_OK;
    }
    if (k->mv_size < 2 || v->mv_size < 25 ||
        ((const uint8_t *)v->mv_data)[0] != 1) {
        return TG_EIO;
    }
    /* The key is a budgets key and a threshold: decode the first part as
     * one (with a budgets value, which it needs but is not this). */
    if ((rv = pdp_store__budget_decode(&bk, &bv, &r->key,
                                       &r->spent_micro_usd)) != TG_OK) {
        return rv;
    }
    r->threshold       = ((const uint8_t *)k->mv_data)[k->mv_size - 1];
    in.off             = 1;
    r->fired_ms        = pdp_rec_get_i64(&in);
    r->spent_micro_usd = pdp_rec_get_i64(&in);
    r->limit_micro_usd = pdp_rec_get_i64(&in);
    return in.bad ? TG_EIO : TG_OK;
}

/* ---- reads (in a decision's snapshot) ----------------------------------- */

tg_err
pdp_store_totals_get(pdp_store_reader *rd, pdp_totals_kind kind, const char *id,
                     pdp_totals *out)
{
    char    key[TG_ID_MAX + 4];
    size_t  klen = pdp_store__totals_key(key, sizeof(key), kind, id);
    MDB_val v;
    tg_err  rv = pdp_store__get(rd, rd->st->totals, key, klen, &v);

    return rv != TG_OK ? rv : pdp_store__totals_decode(&v, out);
}

tg_err
pdp_store_usage_get(pdp_store_reader *rd, const char *request_id,
                    pdp_usage_rec *out)
{
    MDB_val v;
    tg_err  rv;

    memset(out, 0, sizeof(*out));
    rv = pdp_store__get(rd, rd->st->usage, request_id, strlen(request_id), &v);
    if (rv != TG_OK) {
        return rv;
    }
    memcpy(out->usage.request_id, request_id, strlen(request_id) + 1);
    return pdp_store__usage_decode(&v, out);
}

/* ---- settling a usage report ------------------------------------------- */

static int
pdp_store_totals_add(pdp_store *st, MDB_txn *txn, pdp_totals_kind kind,
                     const char *id, const pdp_store_item *it)
{
    char        key[TG_ID_MAX + 4];
    MDB_val     k = {pdp_store__totals_key(key, sizeof(key), kind, id), key};
    MDB_val     v;
    pdp_totals  t = {0, 0, 0, 0, 0};
    pdp_rec_out o;
    int         rc;

    if (id[0] == '\0') {
        return 0;
    }
    rc = mdb_get(txn, st->totals, &k, &v);
    if (rc == 0 && pdp_store__totals_decode(&v, &t) != TG_OK) {
        return MDB_CORRUPTED;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    t.requests += 1;
    t.prompt_tokens += it->usage.prompt_tokens;
    t.completion_tokens += it->usage.completion_tokens;
    t.cost_micro_usd += it->cost;
    if (it->usage.started_ms > t.last_ms) {
        t.last_ms = it->usage.started_ms;
    }
    o.len = 0;
    o.bad = false;
    pdp_store__totals_encode(&o, &t);
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return pdp_store__put(st, txn, st->totals, &k, &v, 0);
}

/* pdp_store_alerts_mark records, for each threshold the cost took the
 * window across, that its alert fired (alerts_fired, see pdp_store.h),
 * unless it already had: sk->fired lists the new ones. */
static int
pdp_store_alerts_mark(pdp_store *st, MDB_txn *txn, pdp_limits_spend_key *sk,
                      const pdp_rec_out *bkey, int64_t before, int64_t after,
                      int64_t now_ms)
{
    uint8_t  crossed[PDP_LIMITS_THRESHOLDS_MAX];
    uint32_t n = pdp_limits_crossed(before, after, sk->limit, sk->thr, sk->nthr,
                                    crossed);

    sk->nfired      = 0;
    sk->spent_after = after;
    for (uint32_t i = 0; i < n; i++) {
        pdp_rec_out ko = *bkey;
        pdp_rec_out vo;
        MDB_val     k;
        MDB_val     v;
        int         rc;

        pdp_rec_uint(&ko, crossed[i], 1);
        if (ko.bad) {
            return EINVAL;
        }
        vo.len = 0;
        vo.bad = false;
        pdp_store__alert_val(&vo, now_ms, after, sk->limit);
        k  = (MDB_val){ko.len, ko.buf};
        v  = (MDB_val){vo.len, vo.buf};
        rc = pdp_store__put(st, txn, st->alerts, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            continue; /* fired already in this window */
        }
        if (rc != 0) {
            return rc;
        }
        sk->fired[sk->nfired++] = crossed[i];
    }
    return 0;
}

static int
pdp_store_budget_add(pdp_store *st, MDB_txn *txn, pdp_limits_spend_key *sk,
                     int64_t cost, int64_t now_ms)
{
    pdp_rec_out ko;
    pdp_rec_out vo;
    MDB_val     k;
    MDB_val     v;
    int64_t     spent = 0;
    int         rc;

    if ((k.mv_size = pdp_store__budget_key(&ko, sk)) == 0) {
        return EINVAL;
    }
    k.mv_data = ko.buf;
    rc        = mdb_get(txn, st->budgets, &k, &v);
    if (rc == 0) {
        pdp_limits_spend_key old;
        if (pdp_store__budget_decode(&k, &v, &old, &spent) != TG_OK) {
            return MDB_CORRUPTED;
        }
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    vo.len = 0;
    vo.bad = false;
    pdp_store__budget_val(&vo, spent + cost, now_ms);
    v.mv_size = vo.len;
    v.mv_data = vo.buf;
    if ((rc = pdp_store__put(st, txn, st->budgets, &k, &v, 0)) != 0) {
        return rc;
    }
    return pdp_store_alerts_mark(st, txn, sk, &ko, spent, spent + cost, now_ms);
}

/* pdp_store__usage_put writes the usage row of report it, then, unless it
 * was abandoned (nothing went upstream), adds it to its key's and its
 * tenant's totals and charges its cost to every budget it names (o is
 * scratch). The caller has checked the row is not there yet. */
int
pdp_store__usage_put(pdp_store *st, MDB_txn *txn, pdp_store_item *it,
                     pdp_rec_out *o)
{
    MDB_val k = {strlen(it->usage.request_id), it->usage.request_id};
    MDB_val v;
    int     rc;

    o->len = 0;
    o->bad = false;
    pdp_store__usage_encode(o, &it->usage, it->cost, it->settled_ms);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = pdp_store__put(st, txn, st->usage, &k, &v, MDB_NOOVERWRITE)) !=
            0 ||
        (rc = pdp_store__decision_append(st, txn, it)) != 0) {
        return rc;
    }
    if (it->usage.abandoned) {
        return 0; /* no totals, no spend */
    }
    if ((rc = pdp_store_totals_add(st, txn, PDP_TOTALS_KEY, it->usage.key_id,
                                   it)) != 0 ||
        (rc = pdp_store_totals_add(st, txn, PDP_TOTALS_TENANT,
                                   it->usage.tenant_id, it)) != 0) {
        return rc;
    }
    for (uint32_t i = 0; i < it->nspend; i++) {
        it->spend[i].nfired = 0; /* a retried txn starts over */
    }
    for (uint32_t i = 0; i < it->nspend && rc == 0 && it->cost > 0; i++) {
        rc = pdp_store_budget_add(st, txn, &it->spend[i], it->cost,
                                  it->settled_ms);
    }
    return rc;
}

/* ---- lists -------------------------------------------------------------- */

typedef struct pdp_totals_list_arg {
    pdp_store_totals_fn fn;
    void               *arg;
} pdp_totals_list_arg;

static tg_err
pdp_store_totals_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_totals_list_arg *a = arg;
    const char          *s = k->mv_data;
    char                 id[TG_ID_MAX + 4];
    pdp_totals           t;
    tg_err               rv;

    if (k->mv_size < 3 || k->mv_size - 2 >= sizeof(id) || s[1] != ':' ||
        (s[0] != PDP_TOTALS_KEY && s[0] != PDP_TOTALS_TENANT)) {
        return TG_OK; /* not ours: a later schema may add kinds */
    }
    if ((rv = pdp_store__totals_decode(v, &t)) != TG_OK) {
        return rv;
    }
    memcpy(id, s + 2, k->mv_size - 2);
    id[k->mv_size - 2] = '\0';
    a->fn(a->arg, (pdp_totals_kind)s[0], id, &t);
    return TG_OK;
}

tg_err
pdp_store_totals_list(pdp_store *st, pdp_store_totals_fn fn, void *arg)
{
    pdp_totals_list_arg a = {fn, arg};

    return pdp_store__scan(st, st->totals, false, pdp_store_totals_list_one,
                           &a);
}

typedef struct pdp_budget_list_arg {
    pdp_store_budget_fn fn;
    void               *arg;
    int64_t             since_ms;
} pdp_budget_list_arg;

static tg_err
pdp_store_budget_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_budget_list_arg *a = arg;
    pdp_limits_spend_key sk;
    int64_t              spent = 0;

    if (pdp_store__budget_decode(k, v, &sk, &spent) != TG_OK) {
        return TG_OK; /* not ours: skip rather than refuse to start */
    }
    if (sk.start_ms >= a->since_ms) {
        a->fn(a->arg, &sk, spent);
    }
    return TG_OK;
}

tg_err
pdp_store_budget_list(pdp_store *st, int64_t since_ms, pdp_store_budget_fn fn,
                      void *arg)
{
    pdp_budget_list_arg a = {fn, arg, since_ms};

    return pdp_store__scan(st, st->budgets, false, pdp_store_budget_list_one,
                           &a);
}

typedef struct pdp_usage_list_arg {
    pdp_store_usage_fn fn;
    void              *arg;
    tg_err             rv; /* fn's result when it stopped the walk */
    pdp_usage_rec      r;
} pdp_usage_list_arg;

static tg_err
pdp_store_usage_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_usage_list_arg *a = arg;
    size_t              n = k->mv_size;
    tg_err              rv;

    memset(&a->r, 0, sizeof(a->r));
    if ((rv = pdp_store__usage_decode(v, &a->r)) != TG_OK) {
        return rv;
    }
    if (n >= sizeof(a->r.usage.request_id)) {
        n = sizeof(a->r.usage.request_id) - 1;
    }
    memcpy(a->r.usage.request_id, k->mv_data, n);
    a->r.usage.request_id[n] = '\0';
    if ((a->rv = a->fn(a->arg, &a->r)) != TG_OK) {
        return TG_EEXIST; /* stops pdp_store__scan; a->rv is the answer */
    }
    return TG_OK;
}

tg_err
pdp_store_usage_list(pdp_store *st, pdp_store_usage_fn fn, void *arg)
{
    pdp_usage_list_arg *a = malloc(sizeof(*a));
    tg_err              rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    a->rv  = TG_OK;
    rv     = pdp_store__scan(st, st->usage, false, pdp_store_usage_list_one, a);
    if (rv == TG_OK) {
        rv = a->rv;
    }
    free(a);
    return rv;
}
