/* pdp_store_export.c - what `tollgate-pdp export` reads that the listings
 * of the other files leave out (every key record with its hash, budget
 * windows with their update time, the alerts that fired), whether a state
 * holds anything an import would write, and the import itself: records
 * written back as exported, with the layouts of pdp_store.h, through
 * pdp_store__put / pdp_store__rput. Thread-safe like the rest of the
 * store. The layouts here must stay those the other files' decoders read
 * (the unit test pdp.migrate.export reads every record back through them
 * and exports it again, byte for byte). */
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
    pdp_budget_row          r;
} pdp_ex_budget_arg;

/* pdp_ex_i64_at reads the little-endian i64 at off of v; false past the
 * end. */
static bool
pdp_ex_i64_at(const MDB_val *v, size_t off, int64_t *out)
{
    const uint8_t *p = v->mv_data;
    uint64_t       x = 0;

    if (v->mv_size < off + 8) {
        return false;
    }
    for (size_t i = 0; i < 8; i++) {
        x |= (uint64_t)p[off + i] << (8 * i);
    }
    *out = (int64_t)x;
    return true;
}

static tg_err
pdp_ex_budget_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_ex_budget_arg *a = arg;
    tg_err             rv;

    memset(&a->r, 0, sizeof(a->r));
    if ((rv = pdp_store__budget_decode(k, v, &a->r.key,
                                       &a->r.spent_micro_usd)) != TG_OK) {
        return rv;
    }
    /* u8 version, i64 spent, i64 updated_ms */
    if (!pdp_ex_i64_at(v, 9, &a->r.updated_ms)) {
        return TG_EIO;
    }
    return a->fn(a->arg, &a->r);
}

/* An alerts_fired key is a budgets key and a u8 threshold; its value u8
 * 1, i64 fired_ms, i64 spent, i64 limit. */
static tg_err
pdp_ex_alert_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_ex_budget_arg *a  = arg;
    MDB_val            bk = {k->mv_size - 1, k->mv_data};
    MDB_val            bv;
    uint8_t            rec[17] = {1};
    tg_err             rv;

    memset(&a->r, 0, sizeof(a->r));
    if (k->mv_size < 2 || v->mv_size < 25 ||
        ((const uint8_t *)v->mv_data)[0] != 1) {
        return TG_EIO;
    }
    /* The key decodes as a budgets key (the value is not read there but
     * for its spend: give it one of the budgets layout). */
    memcpy(rec + 1, (const uint8_t *)v->mv_data + 9, 8);
    bv = (MDB_val){sizeof(rec), rec};
    if ((rv = pdp_store__budget_decode(&bk, &bv, &a->r.key,
                                       &a->r.spent_micro_usd)) != TG_OK) {
        return rv;
    }
    a->r.threshold = ((const uint8_t *)k->mv_data)[k->mv_size - 1];
    if (!pdp_ex_i64_at(v, 1, &a->r.fired_ms) ||
        !pdp_ex_i64_at(v, 17, &a->r.limit_micro_usd)) {
        return TG_EIO;
    }
    return a->fn(a->arg, &a->r);
}

static tg_err
pdp_ex_budget_walk(pdp_store *st, bool alerts, pdp_store_budget_row_fn fn,
                   void *arg)
{
    pdp_ex_budget_arg a;

    memset(&a, 0, sizeof(a));
    a.fn  = fn;
    a.arg = arg;
    return pdp_store__scan(st, alerts ? st->alerts : st->budgets, false,
                           alerts ? pdp_ex_alert_one : pdp_ex_budget_one, &a);
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

/* ---- encoders (the layouts of pdp_store.h) ----------------------------------
 */

static void
pdp_im_uint(tg_buf *b, uint64_t v, size_t width)
{
    uint8_t x[8];

    for (size_t i = 0; i < width; i++) {
        x[i] = (uint8_t)(v >> (8 * i));
    }
    tg_buf_add(b, x, width);
}

static void
pdp_im_str(tg_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (n > UINT16_MAX) {
        tg_buf_fail(b, TG_EINVAL);
        return;
    }
    pdp_im_uint(b, n, 2);
    tg_buf_add(b, s, n);
}

static void
pdp_im_labels(tg_buf *b, const tg_kv *l, uint32_t n)
{
    pdp_im_uint(b, n, 2);
    for (uint32_t i = 0; i < n; i++) {
        pdp_im_str(b, l[i].key);
        pdp_im_str(b, l[i].value);
    }
}

static void
pdp_im_key(tg_buf *b, const pdp_key *k)
{
    pdp_im_uint(b, PDP_STORE_KEY_VERSION, 1);
    pdp_im_uint(b, (uint64_t)k->status, 1);
    pdp_im_uint(b, (uint64_t)k->created_ms, 8);
    pdp_im_uint(b, (uint64_t)k->revoked_ms, 8);
    pdp_im_str(b, k->id);
    pdp_im_str(b, k->tenant);
    pdp_im_str(b, k->name);
    pdp_im_uint(b, k->n_models, 2);
    for (uint32_t i = 0; i < k->n_models; i++) {
        pdp_im_str(b, k->models[i]);
    }
    pdp_im_labels(b, k->labels, k->n_labels);
    pdp_im_uint(b, (uint64_t)k->expires_ms, 8);
    pdp_im_uint(b, (uint64_t)k->rotated_ms, 8);
    pdp_im_uint(b, (uint64_t)k->grace_until_ms, 8);
    pdp_im_uint(b, k->superseded ? PDP_KEY_FLAG_SUPERSEDED : 0u, 1);
    pdp_im_str(b, k->user);
}

static void
pdp_im_tenant(tg_buf *b, const pdp_tenant *t)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, (uint64_t)t->created_ms, 8);
    pdp_im_uint(b, (uint64_t)t->updated_ms, 8);
    pdp_im_str(b, t->tier);
    pdp_im_labels(b, t->labels, t->n_labels);
    pdp_im_str(b, t->name);
    pdp_im_uint(b, (uint64_t)t->disabled_ms, 8);
}

static void
pdp_im_quota(tg_buf *b, const pdp_quota *q)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, (uint64_t)q->created_ms, 8);
    pdp_im_uint(b, (uint64_t)q->updated_ms, 8);
    pdp_im_str(b, q->updated_by);
    pdp_im_uint(b, (uint64_t)q->limit_micro, 8);
    pdp_im_uint(b, q->window, 1);
    pdp_im_uint(b, (uint64_t)(uint32_t)q->window_h, 4);
    pdp_im_uint(b, q->clamp ? 1 : 0, 1);
    pdp_im_uint(b, q->nthr, 1);
    for (uint32_t i = 0; i < q->nthr && i < PDP_LIMITS_THRESHOLDS_MAX; i++) {
        pdp_im_uint(b, q->thr[i], 1);
    }
    pdp_im_uint(b, (uint64_t)q->rpm, 8);
    pdp_im_uint(b, (uint64_t)q->tpm, 8);
    pdp_im_uint(b, (uint64_t)q->concurrent, 8);
}

static void
pdp_im_list(tg_buf *b, const pdp_list_terms *l)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, l->version, 8);
    pdp_im_uint(b, (uint64_t)l->updated_ms, 8);
    pdp_im_str(b, l->actor);
    pdp_im_uint(b, l->n, 4);
    for (uint32_t i = 0; i < l->n; i++) {
        pdp_im_str(b, l->terms[i]);
    }
}

static void
pdp_im_change(tg_buf *b, const pdp_list_change *c)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, (uint64_t)c->at_ms, 8);
    pdp_im_str(b, c->name);
    pdp_im_uint(b, c->version, 8);
    pdp_im_uint(b, (uint64_t)c->op, 1);
    pdp_im_str(b, c->actor);
    pdp_im_uint(b, c->n, 4);
    tg_buf_add(b, c->sha256, TG_SHA256_LEN);
}

static void
pdp_im_activation(tg_buf *b, const pdp_activation *a)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, a->revision, 8);
    pdp_im_uint(b, a->previous_revision, 8);
    pdp_im_uint(b, (uint64_t)a->activated_ms, 8);
    pdp_im_uint(b, (uint64_t)a->how, 1);
    pdp_im_uint(b, (a->rollback ? 1u : 0u) | (a->refused ? 2u : 0u), 1);
    pdp_im_str(b, a->name);
    pdp_im_str(b, a->hash);
    pdp_im_str(b, a->actor);
    pdp_im_str(b, a->why);
}

static void
pdp_im_audit(tg_buf *b, const pdp_audit *a)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, (uint64_t)a->at_ms, 8);
    pdp_im_str(b, a->actor);
    pdp_im_str(b, a->action);
    pdp_im_str(b, a->target);
    pdp_im_str(b, a->detail);
}

static void
pdp_im_usage(tg_buf *b, const pdp_usage_rec *r)
{
    const tg_usage *u = &r->usage;

    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b,
                (u->stream ? 1u : 0u) | (u->estimated ? 2u : 0u) |
                    (u->abandoned ? 4u : 0u),
                1);
    pdp_im_uint(b, (uint64_t)u->endpoint, 1);
    pdp_im_uint(b, u->status, 4);
    pdp_im_uint(b, (uint64_t)u->prompt_tokens, 8);
    pdp_im_uint(b, (uint64_t)u->completion_tokens, 8);
    pdp_im_uint(b, (uint64_t)u->cached_tokens, 8);
    pdp_im_uint(b, (uint64_t)r->cost_micro_usd, 8);
    pdp_im_uint(b, (uint64_t)u->started_ms, 8);
    pdp_im_uint(b, (uint64_t)u->duration_ms, 8);
    pdp_im_uint(b, (uint64_t)r->settled_ms, 8);
    pdp_im_str(b, u->key_id);
    pdp_im_str(b, u->tenant_id);
    pdp_im_str(b, u->model);
    pdp_im_str(b, u->deployment_id);
    pdp_im_str(b, u->reservation_id);
    pdp_im_str(b, u->user);
}

static void
pdp_im_totals(tg_buf *b, const pdp_totals *t)
{
    pdp_im_uint(b, PDP_STORE_REC_VERSION, 1);
    pdp_im_uint(b, (uint64_t)t->requests, 8);
    pdp_im_uint(b, (uint64_t)t->prompt_tokens, 8);
    pdp_im_uint(b, (uint64_t)t->completion_tokens, 8);
    pdp_im_uint(b, (uint64_t)t->cost_micro_usd, 8);
    pdp_im_uint(b, (uint64_t)t->last_ms, 8);
}

/* pdp_im_budget_key writes a budgets key (str rule, str scope, u8 window,
 * u64 start BIG-endian), then for an alert its threshold. */
static void
pdp_im_budget_key(tg_buf *b, const pdp_budget_row *r, bool alert)
{
    uint8_t be[8];

    pdp_im_str(b, r->key.rule_id);
    pdp_im_str(b, r->key.scope);
    pdp_im_uint(b, r->key.code, 1);
    for (size_t i = 0; i < 8; i++) {
        be[i] = (uint8_t)((uint64_t)r->key.start_ms >> (8 * (7 - i)));
    }
    tg_buf_add(b, be, 8);
    if (alert) {
        pdp_im_uint(b, r->threshold, 1);
    }
}

static void
pdp_im_budget(tg_buf *b, const pdp_budget_row *r, bool alert)
{
    pdp_im_uint(b, 1, 1);
    if (alert) {
        pdp_im_uint(b, (uint64_t)r->fired_ms, 8);
        pdp_im_uint(b, (uint64_t)r->spent_micro_usd, 8);
        pdp_im_uint(b, (uint64_t)r->limit_micro_usd, 8);
    } else {
        pdp_im_uint(b, (uint64_t)r->spent_micro_usd, 8);
        pdp_im_uint(b, (uint64_t)r->updated_ms, 8);
    }
}

/* ---- the import txn
 * ----------------------------------------------------------- */

typedef struct pdp_im_arg {
    const pdp_import_rec *recs;
    size_t                n;
    size_t                at; /* the record being written */
    tg_buf                k;
    tg_buf                v;
} pdp_im_arg;

/* pdp_im_encode fills the database, key and value of r (a second put, the
 * key_ids of a key or the decision_ids of a decision, is pdp_im_second's);
 * false when the record does not encode. */
static bool
pdp_im_encode(pdp_store *st, const pdp_import_rec *r, tg_buf *k, tg_buf *v,
              MDB_dbi *dbi, bool *replicated)
{
    uint8_t seq[8];
    char    tk[TG_ID_MAX + 2];

    *replicated = false;
    switch (r->kind) {
    case PDP_IMPORT_TENANT:
        *dbi = st->tenants, *replicated = true;
        tg_buf_add(k, r->u.tenant->id, strlen(r->u.tenant->id));
        pdp_im_tenant(v, r->u.tenant);
        break;
    case PDP_IMPORT_KEY:
        *dbi = st->keys, *replicated = true;
        tg_buf_add(k, r->u.key.hash, TG_SHA256_LEN);
        pdp_im_key(v, r->u.key.k);
        break;
    case PDP_IMPORT_QUOTA:
        *dbi = st->quotas, *replicated = true;
        pdp_im_uint(k, (uint64_t)r->u.quota->scope, 1);
        tg_buf_add(k, r->u.quota->id, strlen(r->u.quota->id));
        pdp_im_quota(v, r->u.quota);
        break;
    case PDP_IMPORT_LIST:
        *dbi = st->lists, *replicated = true;
        tg_buf_add(k, r->u.list->name, strlen(r->u.list->name));
        pdp_im_list(v, r->u.list);
        break;
    case PDP_IMPORT_LIST_CHANGE:
        *dbi = st->list_history;
        pdp_store__seq_key(seq, r->u.change->seq);
        tg_buf_add(k, seq, 8);
        pdp_im_change(v, r->u.change);
        break;
    case PDP_IMPORT_ACTIVATION:
        *dbi = st->history;
        pdp_store__seq_key(seq, r->u.act.a->seq);
        tg_buf_add(k, seq, 8);
        pdp_im_activation(v, r->u.act.a);
        break;
    case PDP_IMPORT_AUDIT:
        *dbi = st->audit;
        pdp_store__seq_key(seq, r->u.audit->seq);
        tg_buf_add(k, seq, 8);
        pdp_im_audit(v, r->u.audit);
        break;
    case PDP_IMPORT_USAGE:
        *dbi = st->usage;
        tg_buf_add(k, r->u.usage->usage.request_id,
                   strlen(r->u.usage->usage.request_id));
        pdp_im_usage(v, r->u.usage);
        break;
    case PDP_IMPORT_TOTALS:
        *dbi = st->totals;
        snprintf(tk, sizeof(tk), "%c:%s", (char)r->u.totals.kind,
                 r->u.totals.id);
        tg_buf_add(k, tk, strlen(tk));
        pdp_im_totals(v, r->u.totals.t);
        break;
    case PDP_IMPORT_BUDGET:
    case PDP_IMPORT_ALERT:
        *dbi = r->kind == PDP_IMPORT_ALERT ? st->alerts : st->budgets;
        pdp_im_budget_key(k, r->u.budget, r->kind == PDP_IMPORT_ALERT);
        pdp_im_budget(v, r->u.budget, r->kind == PDP_IMPORT_ALERT);
        break;
    case PDP_IMPORT_DECISION:
    case PDP_IMPORT_CHECKPOINT:
        *dbi = r->kind == PDP_IMPORT_DECISION ? st->decisions : st->checkpoints;
        pdp_store__seq_key(seq, r->u.line.seq);
        tg_buf_add(k, seq, 8);
        tg_buf_add(v, r->u.line.text, r->u.line.len);
        break;
    default:
        return false;
    }
    return tg_buf_error(k) == TG_OK && tg_buf_error(v) == TG_OK && k->len > 0;
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
    } else if (r->kind == PDP_IMPORT_ACTIVATION && r->u.act.files != NULL &&
               r->u.act.a->hash[0] != '\0') {
        size_t   n   = strlen(r->u.act.files);
        uint8_t *rec = malloc(n + 1);
        if (rec == NULL) {
            return ENOMEM;
        }
        rec[0] = 1; /* record version */
        memcpy(rec + 1, r->u.act.files, n);
        k  = (MDB_val){strlen(r->u.act.a->hash), (void *)r->u.act.a->hash};
        v  = (MDB_val){n + 1, rec};
        rc = pdp_store__put(st, txn, st->bundle_files, &k, &v, MDB_NOOVERWRITE);
        free(rec);
        rc = rc == MDB_KEYEXIST ? 0 : rc; /* kept once per hash */
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

        tg_buf_reset(&a->k);
        tg_buf_reset(&a->v);
        if (!pdp_im_encode(st, r, &a->k, &a->v, &dbi, &repl)) {
            return tg_buf_error(&a->k) == TG_ENOMEM ||
                           tg_buf_error(&a->v) == TG_ENOMEM
                       ? ENOMEM
                       : EINVAL;
        }
        k  = (MDB_val){a->k.len, a->k.data};
        v  = (MDB_val){a->v.len, a->v.data};
        rc = repl ? pdp_store__rput(st, txn, dbi, &k, &v, MDB_NOOVERWRITE)
                  : pdp_store__put(st, txn, dbi, &k, &v, MDB_NOOVERWRITE);
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
    pdp_im_arg a;
    tg_err     rv;

    memset(&a, 0, sizeof(a));
    a.recs = recs;
    a.n    = n;
    tg_buf_init(&a.k, 0);
    tg_buf_init(&a.v, 0);
    rv = pdp_store__refused(st, pdp_store__write(st, pdp_im_txn, &a));
    if (bad != NULL) {
        *bad = a.at;
    }
    tg_buf_fini(&a.k);
    tg_buf_fini(&a.v);
    return rv;
}
