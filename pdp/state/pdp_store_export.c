/* pdp_store_export.c - what `tollgate-pdp export` reads that the listings
 * of the other files leave out (every key record with its hash, budget
 * windows with their update time, the alerts that fired), whether a state
 * holds anything an import would write, and the import itself: records
 * written back as exported, through pdp_store__put / pdp_store__rput.
 * Every record is encoded and decoded by the file that owns its database
 * (pdp_store_int.h, "record writers"), never here, so a layout has one
 * copy. Thread-safe like the rest of the store. */
#include "pdp_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reads ----------------------------------------------------------------
 */

typedef struct pdp_ex_keys_arg {
    pdp_store_keyrec_fn fn;
    void               *arg;
    pdp_key             k;
} pdp_ex_keys_arg;

static tg_err
pdp_ex_key_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_ex_keys_arg *a = arg;
    tg_err           rv;

    if (k->mv_size != TG_SHA256_LEN) {
        return TG_EIO;
    }
    memset(&a->k, 0, sizeof(a->k));
    if ((rv = pdp_store__key_decode(v, &a->k)) != TG_OK) {
        return rv;
    }
    return a->fn(a->arg, k->mv_data, &a->k);
}

tg_err
pdp_store_export_keys(pdp_store *st, pdp_store_keyrec_fn fn, void *arg)
{
    pdp_ex_keys_arg *a = calloc(1, sizeof(*a));
    tg_err           rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    rv     = pdp_store__scan(st, st->keys, false, pdp_ex_key_one, a);
    free(a);
    return rv;
}

typedef struct pdp_ex_budget_arg {
    pdp_store_budget_row_fn fn;
    void                   *arg;
    bool                    alerts;
    pdp_budget_row          r;
} pdp_ex_budget_arg;

static tg_err
pdp_ex_budget_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_ex_budget_arg *a = arg;
    tg_err rv            = pdp_store__budget_row_decode(k, v, a->alerts, &a->r);

    return rv != TG_OK ? rv : a->fn(a->arg, &a->r);
}

static tg_err
pdp_ex_budget_walk(pdp_store *st, bool alerts, pdp_store_budget_row_fn fn,
                   void *arg)
{
    pdp_ex_budget_arg a;

    memset(&a, 0, sizeof(a));
    a.fn     = fn;
    a.arg    = arg;
    a.alerts = alerts;
    return pdp_store__scan(st, alerts ? st->alerts : st->budgets, false,
                           pdp_ex_budget_one, &a);
}

tg_err
pdp_store_export_budgets(pdp_store *st, pdp_store_budget_row_fn fn, void *arg)
{
    return pdp_ex_budget_walk(st, false, fn, arg);
}

tg_err
pdp_store_export_alerts(pdp_store *st, pdp_store_budget_row_fn fn, void *arg)
{
    return pdp_ex_budget_walk(st, true, fn, arg);
}

/* ---- is the state empty? ----------------------------------------------------
 */

tg_err
pdp_store_import_empty(pdp_store *st, const char **db, uint64_t *records)
{
    const struct {
        const char *name;
        MDB_dbi     dbi;
    } dbs[] = {
        {"keys", st->keys},
        {"tenants", st->tenants},
        {"quotas", st->quotas},
        {"usage", st->usage},
        {"totals", st->totals},
        {"budgets", st->budgets},
        {"alerts_fired", st->alerts},
        {"lists", st->lists},
        {"list_history", st->list_history},
        {"policy_history", st->history},
        {"bundle_files", st->bundle_files},
        {"admin_audit", st->audit},
        {"decisions", st->decisions},
        {"checkpoints", st->checkpoints},
        {"reservations", st->reservations},
    };
    pdp_store_reader *rd = NULL;
    tg_err            rv;

    *db      = NULL;
    *records = 0;
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]) && rv == TG_OK; i++) {
        MDB_stat s;
        int      rc = mdb_stat(rd->txn, dbs[i].dbi, &s);
        if (rc != 0) {
            rv = pdp_store__rc(rc);
        } else if (s.ms_entries > 0) {
            *db      = dbs[i].name;
            *records = s.ms_entries;
            rv       = TG_EEXIST;
        }
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

/* ---- the import txn
 * ----------------------------------------------------------- */

/* Every record is encoded by the store's own encoders (pdp_store_int.h),
 * so a layout has one writer; a record's value is one pdp_rec_out (the
 * bound every write of the store has), a list's its own allocation. */
typedef struct pdp_im_arg {
    const pdp_import_rec *recs;
    size_t                n;
    size_t                at; /* the record being written */
    pdp_rec_out           ko;
    pdp_rec_out           vo;
    uint8_t              *list; /* a list record; freed after its put */
} pdp_im_arg;

static inline void
pdp_im_seq(pdp_rec_out *o, uint64_t seq)
{
    pdp_store__seq_key(o->buf, seq);
    o->len = 8;
}

/* pdp_im_value fills the value of r in a (its key is pdp_im_encode's). */
static int
pdp_im_value(pdp_im_arg *a, const pdp_import_rec *r, MDB_val *v)
{
    pdp_rec_out *o = &a->vo;

    switch (r->kind) {
    case PDP_IMPORT_TENANT:
        pdp_store__tenant_encode(o, r->u.tenant);
        break;
    case PDP_IMPORT_KEY:
        pdp_store__key_encode(o, r->u.key.k);
        break;
    case PDP_IMPORT_QUOTA:
        if (r->u.quota->nthr > PDP_LIMITS_THRESHOLDS_MAX) {
            return EINVAL;
        }
        pdp_store__quota_encode(o, r->u.quota);
        break;
    case PDP_IMPORT_LIST: {
        const char *const *t = (const char *const *)r->u.list->terms;
        v->mv_size = pdp_store__list_size(r->u.list->actor, t, r->u.list->n);
        if ((a->list = malloc(v->mv_size)) == NULL) {
            return ENOMEM;
        }
        pdp_store__list_encode(a->list, r->u.list->version,
                               r->u.list->updated_ms, r->u.list->actor, t,
                               r->u.list->n);
        v->mv_data = a->list;
        return 0;
    }
    case PDP_IMPORT_LIST_CHANGE:
        pdp_store__list_change_encode(o, r->u.change);
        break;
    case PDP_IMPORT_ACTIVATION:
        pdp_store__history_encode(o, r->u.act.a);
        break;
    case PDP_IMPORT_AUDIT:
        pdp_store__audit_encode(o, r->u.audit);
        break;
    case PDP_IMPORT_USAGE:
        pdp_store__usage_encode(o, &r->u.usage->usage,
                                r->u.usage->cost_micro_usd,
                                r->u.usage->settled_ms);
        break;
    case PDP_IMPORT_TOTALS:
        pdp_store__totals_encode(o, r->u.totals.t);
        break;
    case PDP_IMPORT_BUDGET:
        pdp_store__budget_val(o, r->u.budget->spent_micro_usd,
                              r->u.budget->updated_ms);
        break;
    case PDP_IMPORT_ALERT:
        pdp_store__alert_val(o, r->u.budget->fired_ms,
                             r->u.budget->spent_micro_usd,
                             r->u.budget->limit_micro_usd);
        break;
    case PDP_IMPORT_DECISION:
    case PDP_IMPORT_CHECKPOINT:
        *v = (MDB_val){r->u.line.len, (void *)r->u.line.text};
        return 0;
    default:
        return EINVAL;
    }
    *v = (MDB_val){o->len, o->buf};
    return o->bad ? EINVAL : 0;
}

/* pdp_im_encode fills the database, key and value of r (a second put, the
 * key_ids of a key or the decision_ids of a decision, is pdp_im_second's).
 * 0, or EINVAL when the record does not encode, ENOMEM. */
static int
pdp_im_encode(pdp_store *st, pdp_im_arg *a, const pdp_import_rec *r, MDB_val *k,
              MDB_val *v, MDB_dbi *dbi, bool *replicated)
{
    pdp_rec_out *ko = &a->ko;

    ko->len     = 0;
    ko->bad     = false;
    a->vo.len   = 0;
    a->vo.bad   = false;
    *replicated = r->kind == PDP_IMPORT_TENANT || r->kind == PDP_IMPORT_KEY ||
                  r->kind == PDP_IMPORT_QUOTA || r->kind == PDP_IMPORT_LIST;
    switch (r->kind) {
    case PDP_IMPORT_TENANT:
        *dbi = st->tenants;
        *k   = (MDB_val){strlen(r->u.tenant->id), (void *)r->u.tenant->id};
        break;
    case PDP_IMPORT_KEY:
        *dbi = st->keys;
        *k   = (MDB_val){TG_SHA256_LEN, (void *)r->u.key.hash};
        break;
    case PDP_IMPORT_QUOTA:
        *dbi = st->quotas;
        *k   = (MDB_val){
              pdp_store__quota_key(ko->buf, r->u.quota->scope, r->u.quota->id),
              ko->buf};
        break;
    case PDP_IMPORT_LIST:
        *dbi = st->lists;
        *k   = (MDB_val){strlen(r->u.list->name), (void *)r->u.list->name};
        break;
    case PDP_IMPORT_LIST_CHANGE:
    case PDP_IMPORT_ACTIVATION:
    case PDP_IMPORT_AUDIT:
    case PDP_IMPORT_DECISION:
    case PDP_IMPORT_CHECKPOINT:
        *dbi = r->kind == PDP_IMPORT_LIST_CHANGE  ? st->list_history
               : r->kind == PDP_IMPORT_ACTIVATION ? st->history
               : r->kind == PDP_IMPORT_AUDIT      ? st->audit
               : r->kind == PDP_IMPORT_DECISION   ? st->decisions
                                                  : st->checkpoints;
        pdp_im_seq(ko, r->kind == PDP_IMPORT_LIST_CHANGE  ? r->u.change->seq
                       : r->kind == PDP_IMPORT_ACTIVATION ? r->u.act.a->seq
                       : r->kind == PDP_IMPORT_AUDIT      ? r->u.audit->seq
                                                          : r->u.line.seq);
        *k = (MDB_val){ko->len, ko->buf};
        break;
    case PDP_IMPORT_USAGE:
        *dbi = st->usage;
        *k   = (MDB_val){strlen(r->u.usage->usage.request_id),
                         (void *)r->u.usage->usage.request_id};
        break;
    case PDP_IMPORT_TOTALS:
        *dbi = st->totals;
        *k   = (MDB_val){pdp_store__totals_key((char *)ko->buf, TG_ID_MAX + 4,
                                               r->u.totals.kind, r->u.totals.id),
                         ko->buf};
        break;
    case PDP_IMPORT_BUDGET:
    case PDP_IMPORT_ALERT:
        *dbi = r->kind == PDP_IMPORT_ALERT ? st->alerts : st->budgets;
        pdp_store__budget_key(ko, &r->u.budget->key);
        if (r->kind == PDP_IMPORT_ALERT) {
            pdp_rec_uint(ko, r->u.budget->threshold, 1);
        }
        *k = (MDB_val){ko->bad ? 0 : ko->len, ko->buf};
        break;
    default:
        return EINVAL;
    }
    if (k->mv_size == 0) {
        return EINVAL;
    }
    return pdp_im_value(a, r, v);
}

/* pdp_im_second writes what goes with r in another database: a current
 * key's key_ids entry, a decision's decision_ids entry, an activation's
 * bundle files (once per hash), a list's generation. LMDB rc. */
static int
pdp_im_second(pdp_store *st, MDB_txn *txn, const pdp_import_rec *r)
{
    uint8_t seq[8];
    MDB_val k;
    MDB_val v;
    int     rc = 0;

    if (r->kind == PDP_IMPORT_KEY && !r->u.key.k->superseded) {
        k  = (MDB_val){strlen(r->u.key.k->id), (void *)r->u.key.k->id};
        v  = (MDB_val){TG_SHA256_LEN, (void *)r->u.key.hash};
        rc = pdp_store__rput(st, txn, st->key_ids, &k, &v, MDB_NOOVERWRITE);
    } else if (r->kind == PDP_IMPORT_DECISION && r->u.line.request_id != NULL &&
               r->u.line.request_id[0] != '\0') {
        pdp_store__seq_key(seq, r->u.line.seq);
        k  = (MDB_val){strlen(r->u.line.request_id),
                       (void *)r->u.line.request_id};
        v  = (MDB_val){sizeof(seq), seq};
        rc = pdp_store__put(st, txn, st->decision_ids, &k, &v, MDB_NOOVERWRITE);
    } else if (r->kind == PDP_IMPORT_ACTIVATION) {
        rc = pdp_store__bundle_files_put(st, txn, r->u.act.a->hash,
                                         r->u.act.files);
    } else if (r->kind == PDP_IMPORT_LIST) {
        rc = pdp_store__lists_gen_raise(st, txn);
    }
    return rc;
}

static int
pdp_im_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_im_arg *a = arg;

    for (a->at = 0; a->at < a->n; a->at++) {
        const pdp_import_rec *r = &a->recs[a->at];
        MDB_dbi               dbi;
        bool                  repl;
        MDB_val               k;
        MDB_val               v;
        int                   rc;

        rc = pdp_im_encode(st, a, r, &k, &v, &dbi, &repl);
        if (rc == 0) {
            rc = repl ? pdp_store__rput(st, txn, dbi, &k, &v, MDB_NOOVERWRITE)
                      : pdp_store__put(st, txn, dbi, &k, &v, MDB_NOOVERWRITE);
        }
        free(a->list);
        a->list = NULL;
        if (rc == 0) {
            rc = pdp_im_second(st, txn, r);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

tg_err
pdp_store_import(pdp_store *st, const pdp_import_rec *recs, size_t n,
                 size_t *bad)
{
    pdp_im_arg *a = calloc(1, sizeof(*a));
    tg_err      rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->recs = recs;
    a->n    = n;
    rv      = pdp_store__refused(st, pdp_store__write(st, pdp_im_txn, a));
    if (bad != NULL) {
        *bad = a->at;
    }
    free(a);
    return rv;
}
