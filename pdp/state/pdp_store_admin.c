/* pdp_store_admin.c - the administration databases of pdp_store: quotas
 * (budgets and rate limits set per tenant or key), admin API tokens, the
 * audit trail of administrative changes and the policy history (bundle
 * activations). Record layouts are in pdp_store.h. Thread-safe like the
 * rest of the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pdp_store_int.h"

int
pdp_store__admin_open(pdp_store *st, MDB_txn *txn)
{
    int rc;

    if ((rc = mdb_dbi_open(txn, "quotas", MDB_CREATE, &st->quotas)) != 0 ||
        (rc = mdb_dbi_open(txn, "admin_tokens", MDB_CREATE, &st->tokens)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "admin_audit", MDB_CREATE, &st->audit)) != 0 ||
        (rc = mdb_dbi_open(txn, "limits_state", MDB_CREATE, &st->limits)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "bundle_files", MDB_CREATE,
                           &st->bundle_files)) != 0) {
        return rc;
    }
    return 0;
}

/* ---- quotas ------------------------------------------------------------ */

size_t
pdp_store__quota_key(uint8_t *buf, pdp_quota_scope scope, const char *id)
{
    size_t n = strlen(id);

    buf[0] = (uint8_t)scope;
    memcpy(buf + 1, id, n);
    return n + 1;
}

void
pdp_store__quota_encode(pdp_rec_out *o, const pdp_quota *q)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)q->created_ms, 8);
    pdp_rec_uint(o, (uint64_t)q->updated_ms, 8);
    pdp_rec_str(o, q->updated_by);
    pdp_rec_uint(o, (uint64_t)q->limit_micro, 8);
    pdp_rec_uint(o, q->window, 1);
    pdp_rec_uint(o, (uint64_t)(uint32_t)q->window_h, 4);
    pdp_rec_uint(o, q->clamp ? 1 : 0, 1);
    pdp_rec_uint(o, q->nthr, 1);
    for (uint32_t i = 0; i < q->nthr; i++) {
        pdp_rec_uint(o, q->thr[i], 1);
    }
    pdp_rec_uint(o, (uint64_t)q->rpm, 8);
    pdp_rec_uint(o, (uint64_t)q->tpm, 8);
    pdp_rec_uint(o, (uint64_t)q->concurrent, 8);
}

static tg_err
pdp_quota_decode(const MDB_val *k, const MDB_val *v, pdp_quota *q)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    memset(q, 0, sizeof(*q));
    if (k->mv_size < 2 || k->mv_size > PDP_QUOTA_KEY_MAX) {
        return TG_EIO;
    }
    q->scope = (pdp_quota_scope)((const uint8_t *)k->mv_data)[0];
    memcpy(q->id, (const uint8_t *)k->mv_data + 1, k->mv_size - 1);
    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    q->created_ms = pdp_rec_get_i64(&in);
    q->updated_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, q->updated_by, sizeof(q->updated_by));
    q->limit_micro = pdp_rec_get_i64(&in);
    q->window      = (uint8_t)pdp_rec_get_uint(&in, 1);
    q->window_h    = (int32_t)(uint32_t)pdp_rec_get_uint(&in, 4);
    q->clamp       = pdp_rec_get_uint(&in, 1) != 0;
    q->nthr        = (uint8_t)pdp_rec_get_uint(&in, 1);
    if (q->nthr > PDP_LIMITS_THRESHOLDS_MAX) {
        return TG_EIO;
    }
    for (uint32_t i = 0; i < q->nthr; i++) {
        q->thr[i] = (uint8_t)pdp_rec_get_uint(&in, 1);
    }
    q->rpm        = pdp_rec_get_i64(&in);
    q->tpm        = pdp_rec_get_i64(&in);
    q->concurrent = pdp_rec_get_i64(&in);
    return in.bad ? TG_EIO : TG_OK;
}

tg_err
pdp_store_quota_get(pdp_store_reader *rd, pdp_quota_scope scope, const char *id,
                    pdp_quota *out)
{
    uint8_t key[PDP_QUOTA_KEY_MAX];
    MDB_val k;
    MDB_val v;
    int     rc;

    if (!rd->active) {
        return TG_EINVAL;
    }
    if (id[0] == '\0' || strlen(id) >= TG_ID_MAX) {
        return TG_ENOTFOUND;
    }
    k.mv_size = pdp_store__quota_key(key, scope, id);
    k.mv_data = key;
    rc        = mdb_get(rd->txn, rd->st->quotas, &k, &v);
    if (rc != 0) {
        return pdp_store__rc(rc);
    }
    return pdp_quota_decode(&k, &v, out);
}

typedef struct pdp_quota_put_arg {
    const pdp_quota *q;
    bool             created;
} pdp_quota_put_arg;

static int
pdp_store_quota_put_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_quota_put_arg *a = arg;
    pdp_quota          q = *a->q;
    uint8_t            key[PDP_QUOTA_KEY_MAX];
    MDB_val            owner = {strlen(q.id), q.id};
    MDB_val            k;
    MDB_val            v;
    pdp_rec_out       *o;
    pdp_quota          old;
    int                rc;

    rc = mdb_get(txn, q.scope == PDP_QUOTA_TENANT ? st->tenants : st->key_ids,
                 &owner, &v);
    if (rc != 0) {
        return rc; /* MDB_NOTFOUND: no such tenant or key */
    }
    k.mv_size = pdp_store__quota_key(key, q.scope, q.id);
    k.mv_data = key;
    rc        = mdb_get(txn, st->quotas, &k, &v);
    if (rc == 0 && pdp_quota_decode(&k, &v, &old) == TG_OK) {
        q.created_ms = old.created_ms;
        a->created   = false;
    } else if (rc == 0 || rc == MDB_NOTFOUND) {
        q.created_ms = q.updated_ms;
        a->created   = true;
    } else {
        return rc;
    }
    if ((o = malloc(sizeof(*o))) == NULL) {
        return ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_store__quota_encode(o, &q);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    rc = o->bad ? EINVAL : pdp_store__rput(st, txn, st->quotas, &k, &v, 0);
    free(o);
    return rc;
}

int
pdp_store__quota_put_in(pdp_store *st, MDB_txn *txn, const pdp_quota *q)
{
    pdp_quota_put_arg a = {q, false};

    return pdp_store_quota_put_txn(st, txn, &a);
}

tg_err
pdp_store_quota_put(pdp_store *st, const pdp_quota *q, bool *created)
{
    pdp_quota_put_arg a = {q, false};
    tg_err            rv;

    if ((q->scope != PDP_QUOTA_TENANT && q->scope != PDP_QUOTA_KEY) ||
        q->id[0] == '\0' || strlen(q->id) >= TG_ID_MAX ||
        q->nthr > PDP_LIMITS_THRESHOLDS_MAX) {
        return TG_EINVAL;
    }
    rv = pdp_store__refused(st,
                            pdp_store__write(st, pdp_store_quota_put_txn, &a));
    if (rv == TG_OK && created != NULL) {
        *created = a.created;
    }
    return rv;
}

typedef struct pdp_quota_del_arg {
    pdp_quota_scope scope;
    const char     *id;
} pdp_quota_del_arg;

static int
pdp_store_quota_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_quota_del_arg *a = arg;
    uint8_t            key[PDP_QUOTA_KEY_MAX];
    MDB_val            k;

    k.mv_size = pdp_store__quota_key(key, a->scope, a->id);
    k.mv_data = key;
    return pdp_store__rdel(st, txn, st->quotas, &k);
}

tg_err
pdp_store_quota_del(pdp_store *st, pdp_quota_scope scope, const char *id)
{
    pdp_quota_del_arg a = {scope, id};

    if (id[0] == '\0' || strlen(id) >= TG_ID_MAX) {
        return TG_ENOTFOUND;
    }
    return pdp_store__refused(
        st, pdp_store__write(st, pdp_store_quota_del_txn, &a));
}

static int
pdp_store_tenant_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const char *id = arg;
    MDB_val     t  = {strlen(id), (void *)id};
    uint8_t     key[PDP_QUOTA_KEY_MAX];
    MDB_val     q;
    int         rc;

    if ((rc = pdp_store__rdel(st, txn, st->tenants, &t)) != 0) {
        return rc; /* MDB_NOTFOUND: no such tenant */
    }
    q.mv_size = pdp_store__quota_key(key, PDP_QUOTA_TENANT, id);
    q.mv_data = key;
    rc        = pdp_store__rdel(st, txn, st->quotas, &q);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

tg_err
pdp_store_tenant_del(pdp_store *st, const char *id)
{
    if (id[0] == '\0' || strlen(id) >= TG_ID_MAX) {
        return TG_ENOTFOUND;
    }
    return pdp_store__refused(
        st, pdp_store__write(st, pdp_store_tenant_del_txn, (void *)id));
}

typedef struct pdp_quota_list_arg {
    pdp_store_quota_fn fn;
    void              *arg;
    pdp_quota          q;
} pdp_quota_list_arg;

static tg_err
pdp_store_quota_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_quota_list_arg *a  = arg;
    tg_err              rv = pdp_quota_decode(k, v, &a->q);

    if (rv != TG_OK) {
        return rv;
    }
    a->fn(a->arg, &a->q);
    return TG_OK;
}

tg_err
pdp_store_quota_list(pdp_store *st, pdp_store_quota_fn fn, void *arg)
{
    pdp_quota_list_arg a = {fn, arg, {0}};

    return pdp_store__scan(st, st->quotas, false, pdp_store_quota_list_one, &a);
}

/* ---- admin tokens ------------------------------------------------------ */

static void
pdp_token_encode(pdp_rec_out *o, const pdp_admin_token *t)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)t->created_ms, 8);
    pdp_rec_uint(o, (uint64_t)t->revoked_ms, 8);
    pdp_rec_str(o, t->name);
    pdp_rec_str(o, t->created_by);
}

static tg_err
pdp_token_decode(const MDB_val *v, pdp_admin_token *t)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    memset(t, 0, sizeof(*t));
    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    t->created_ms = pdp_rec_get_i64(&in);
    t->revoked_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, t->name, sizeof(t->name));
    pdp_rec_get_str(&in, t->created_by, sizeof(t->created_by));
    return in.bad ? TG_EIO : TG_OK;
}

/* pdp_token_find finds the active token called name in txn: 0 with its
 * key in *hk (pointing into the txn), MDB_NOTFOUND when there is none. */
static int
pdp_token_find(pdp_store *st, MDB_txn *txn, const char *name, MDB_val *hk,
               pdp_admin_token *t)
{
    MDB_cursor *cur;
    MDB_val     v;
    int         rc = mdb_cursor_open(txn, st->tokens, &cur);

    if (rc != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, hk, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, hk, &v, MDB_NEXT)) {
        if (pdp_token_decode(&v, t) == TG_OK && t->revoked_ms == 0 &&
            strcmp(t->name, name) == 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

typedef struct pdp_token_put_arg {
    const uint8_t         *hash;
    const pdp_admin_token *t;
    bool                   replace;
} pdp_token_put_arg;

static int
pdp_store_token_put_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_token_put_arg *a = arg;
    pdp_admin_token    old;
    MDB_val            hk;
    MDB_val            k = {TG_SHA256_LEN, (void *)a->hash};
    MDB_val            v;
    pdp_rec_out        o;
    int                rc = pdp_token_find(st, txn, a->t->name, &hk, &old);

    if (rc == 0) {
        if (!a->replace) {
            return MDB_KEYEXIST;
        }
        if ((rc = pdp_store__del(st, txn, st->tokens, &hk)) != 0) {
            return rc;
        }
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    o.len = 0;
    o.bad = false;
    pdp_token_encode(&o, a->t);
    if (o.bad) {
        return EINVAL;
    }
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return pdp_store__put(st, txn, st->tokens, &k, &v, MDB_NOOVERWRITE);
}

tg_err
pdp_store_token_put(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                    const pdp_admin_token *t, bool replace)
{
    pdp_token_put_arg a = {hash, t, replace};

    if (t->name[0] == '\0') {
        return TG_EINVAL;
    }
    return pdp_store__write(st, pdp_store_token_put_txn, &a);
}

tg_err
pdp_store_token_check(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                      pdp_admin_token *out)
{
    pdp_store_reader *rd = NULL;
    MDB_val           k  = {TG_SHA256_LEN, (void *)hash};
    MDB_val           v;
    tg_err            rv;
    int               rc;

    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rc = mdb_get(rd->txn, st->tokens, &k, &v);
        rv = rc == 0 ? pdp_token_decode(&v, out) : pdp_store__rc(rc);
        if (rv == TG_OK && out->revoked_ms != 0) {
            rv = TG_ENOTFOUND;
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

typedef struct pdp_token_revoke_arg {
    const char *name;
    int64_t     now_ms;
} pdp_token_revoke_arg;

static int
pdp_store_token_revoke_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_token_revoke_arg *a = arg;
    pdp_admin_token       t;
    MDB_val               hk;
    MDB_val               v;
    pdp_rec_out           o;
    uint8_t               hash[TG_SHA256_LEN];
    int                   rc = pdp_token_find(st, txn, a->name, &hk, &t);

    if (rc != 0) {
        return rc;
    }
    memcpy(hash, hk.mv_data, sizeof(hash)); /* hk points into the txn */
    hk.mv_data   = hash;
    t.revoked_ms = a->now_ms;
    o.len        = 0;
    o.bad        = false;
    pdp_token_encode(&o, &t);
    if (o.bad) {
        return EINVAL;
    }
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return pdp_store__put(st, txn, st->tokens, &hk, &v, 0);
}

tg_err
pdp_store_token_revoke(pdp_store *st, const char *name, int64_t now_ms)
{
    pdp_token_revoke_arg a = {name, now_ms};

    return pdp_store__write(st, pdp_store_token_revoke_txn, &a);
}

typedef struct pdp_token_list_arg {
    pdp_store_token_fn fn;
    void              *arg;
} pdp_token_list_arg;

static tg_err
pdp_store_token_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_token_list_arg *a = arg;
    pdp_admin_token     t;
    tg_err              rv = pdp_token_decode(v, &t);

    (void)k;
    if (rv != TG_OK) {
        return rv;
    }
    a->fn(a->arg, &t);
    return TG_OK;
}

tg_err
pdp_store_token_list(pdp_store *st, pdp_store_token_fn fn, void *arg)
{
    pdp_token_list_arg a = {fn, arg};

    return pdp_store__scan(st, st->tokens, false, pdp_store_token_list_one, &a);
}

/* ---- audit trail -------------------------------------------------------- */

void
pdp_store__audit_encode(pdp_rec_out *o, const pdp_audit *a)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)a->at_ms, 8);
    pdp_rec_str(o, a->actor);
    pdp_rec_str(o, a->action);
    pdp_rec_str(o, a->target);
    pdp_rec_str(o, a->detail);
}

int
pdp_store__audit_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_audit   *a = arg;
    MDB_val      k;
    MDB_val      v;
    uint8_t      key[8];
    pdp_rec_out *o;
    int          rc = pdp_store__next_seq(txn, st->audit, &a->seq);

    if (rc != 0) {
        return rc;
    }
    pdp_store__seq_key(key, a->seq);
    if ((o = malloc(sizeof(*o))) == NULL) {
        return ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_store__audit_encode(o, a);
    k.mv_size = sizeof(key);
    k.mv_data = key;
    v.mv_size = o->len;
    v.mv_data = o->buf;
    rc        = o->bad ? EINVAL : pdp_store__put(st, txn, st->audit, &k, &v, 0);
    free(o);
    return rc;
}

tg_err
pdp_store_audit_add(pdp_store *st, pdp_audit *a)
{
    return pdp_store__write(st, pdp_store__audit_txn, a);
}

typedef struct pdp_audit_list_arg {
    pdp_store_audit_fn fn;
    void              *arg;
    uint32_t           limit;
    uint32_t           given;
    pdp_audit          a;
} pdp_audit_list_arg;

static tg_err
pdp_store_audit_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_audit_list_arg *l  = arg;
    pdp_audit          *a  = &l->a;
    pdp_rec_in          in = {v->mv_data, v->mv_size, 0, false};

    memset(a, 0, sizeof(*a));
    a->seq = pdp_store__seq_of(k);
    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    a->at_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, a->actor, sizeof(a->actor));
    pdp_rec_get_str(&in, a->action, sizeof(a->action));
    pdp_rec_get_str(&in, a->target, sizeof(a->target));
    pdp_rec_get_str(&in, a->detail, sizeof(a->detail));
    if (in.bad) {
        return TG_EIO;
    }
    if (!l->fn(l->arg, a) || (l->limit > 0 && ++l->given >= l->limit)) {
        return TG_EEXIST; /* stops the walk */
    }
    return TG_OK;
}

tg_err
pdp_store_audit_list(pdp_store *st, uint32_t limit, pdp_store_audit_fn fn,
                     void *arg)
{
    pdp_audit_list_arg *l = calloc(1, sizeof(*l));
    tg_err              rv;

    if (l == NULL) {
        return TG_ENOMEM;
    }
    l->fn    = fn;
    l->arg   = arg;
    l->limit = limit;
    rv = pdp_store__scan(st, st->audit, true, pdp_store_audit_list_one, l);
    free(l);
    return rv;
}

/* ---- policy history ---------------------------------------------------- */

void
pdp_store__history_encode(pdp_rec_out *o, const pdp_activation *a)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, a->revision, 8);
    pdp_rec_uint(o, a->previous_revision, 8);
    pdp_rec_uint(o, (uint64_t)a->activated_ms, 8);
    pdp_rec_uint(o, (uint64_t)a->how, 1);
    pdp_rec_uint(o, (a->rollback ? 1u : 0u) | (a->refused ? 2u : 0u), 1);
    pdp_rec_str(o, a->name);
    pdp_rec_str(o, a->hash);
    pdp_rec_str(o, a->actor);
    pdp_rec_str(o, a->why);
}

static tg_err
pdp_history_decode(const MDB_val *k, const MDB_val *v, pdp_activation *a)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};
    unsigned   flags;

    if (k->mv_size != 8) {
        return TG_EIO;
    }
    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    a->seq               = pdp_store__seq_of(k);
    a->revision          = pdp_rec_get_uint(&in, 8);
    a->previous_revision = pdp_rec_get_uint(&in, 8);
    a->activated_ms      = pdp_rec_get_i64(&in);
    a->how               = (pdp_activation_how)pdp_rec_get_uint(&in, 1);
    flags                = (unsigned)pdp_rec_get_uint(&in, 1);
    a->rollback          = (flags & 1u) != 0;
    a->refused           = (flags & 2u) != 0;
    pdp_rec_get_str(&in, a->name, sizeof(a->name));
    pdp_rec_get_str(&in, a->hash, sizeof(a->hash));
    a->actor[0] = '\0';
    a->why[0]   = '\0';
    if (!in.bad && in.off < in.len) {
        pdp_rec_get_str(&in, a->actor, sizeof(a->actor));
        pdp_rec_get_str(&in, a->why, sizeof(a->why));
    }
    return in.bad ? TG_EIO : TG_OK;
}

static int
pdp_store_history_add_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_activation *a = arg;
    MDB_val         k;
    MDB_val         v;
    uint8_t         key[8];
    pdp_rec_out     o;
    int             rc;

    if ((rc = pdp_store__next_seq(txn, st->history, &a->seq)) != 0) {
        return rc;
    }
    pdp_store__seq_key(key, a->seq);
    o.len = 0;
    o.bad = false;
    pdp_store__history_encode(&o, a);
    if (o.bad) {
        return EINVAL;
    }
    k.mv_size = sizeof(key);
    k.mv_data = key;
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return pdp_store__put(st, txn, st->history, &k, &v, MDB_APPEND);
}

tg_err
pdp_store_history_add(pdp_store *st, pdp_activation *a)
{
    return pdp_store__write(st, pdp_store_history_add_txn, a);
}

typedef struct pdp_history_files_arg {
    pdp_activation *a;
    const char     *files;
} pdp_history_files_arg;

int
pdp_store__bundle_files_put(pdp_store *st, MDB_txn *txn, const char *hash,
                            const char *files)
{
    size_t   n = files != NULL ? strlen(files) : 0;
    MDB_val  k = {strlen(hash), (void *)hash};
    MDB_val  v = {n + 1, NULL};
    uint8_t *rec;
    int      rc;

    if (files == NULL || hash[0] == '\0') {
        return 0;
    }
    /* Encoded apart, not in place (MDB_RESERVE): the transaction log
     * keeps a copy of the value. */
    if ((rec = malloc(n + 1)) == NULL) {
        return ENOMEM;
    }
    rec[0] = 1; /* record version */
    memcpy(rec + 1, files, n);
    v.mv_data = rec;
    rc = pdp_store__put(st, txn, st->bundle_files, &k, &v, MDB_NOOVERWRITE);
    free(rec);
    return rc == MDB_KEYEXIST ? 0 : rc; /* kept once per hash: same files */
}

static int
pdp_store_history_files_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_history_files_arg *fa = arg;
    int                    rc;

    if ((rc = pdp_store__bundle_files_put(st, txn, fa->a->hash, fa->files)) !=
        0) {
        return rc;
    }
    return pdp_store_history_add_txn(st, txn, fa->a);
}

tg_err
pdp_store_history_add_files(pdp_store *st, pdp_activation *a,
                            const char *files_json)
{
    pdp_history_files_arg fa = {a, files_json};

    if (files_json == NULL) {
        return pdp_store_history_add(st, a);
    }
    return pdp_store__write(st, pdp_store_history_files_txn, &fa);
}

tg_err
pdp_store_bundle_files(pdp_store *st, const char *hash, tg_buf *out)
{
    pdp_store_reader *rd = NULL;
    MDB_val           k  = {strlen(hash), (void *)hash};
    MDB_val           v;
    tg_err            rv;
    int               rc;

    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    rc = mdb_get(rd->txn, st->bundle_files, &k, &v);
    if (rc == 0 && (v.mv_size < 1 || ((const uint8_t *)v.mv_data)[0] != 1)) {
        rv = TG_EVERSION;
    } else if (rc == 0) {
        tg_buf_reset(out);
        tg_buf_add(out, (const uint8_t *)v.mv_data + 1, v.mv_size - 1);
        rv = tg_buf_error(out);
    } else {
        rv = rc == MDB_NOTFOUND ? TG_ENOTFOUND : pdp_store__rc(rc);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

typedef struct pdp_history_list_arg {
    pdp_store_history_fn fn;
    void                *arg;
    pdp_activation       a;
    bool                 first_only;
} pdp_history_list_arg;

static tg_err
pdp_store_history_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_history_list_arg *a  = arg;
    tg_err                rv = pdp_history_decode(k, v, &a->a);

    if (rv != TG_OK) {
        return rv;
    }
    if (a->first_only && a->a.refused) {
        a->a.seq = 0;
        return TG_OK; /* the last activation: refusals are not one */
    }
    if (a->fn != NULL) {
        a->fn(a->arg, &a->a);
    }
    return a->first_only ? TG_EEXIST : TG_OK; /* EEXIST: stop, no error */
}

tg_err
pdp_store_history_list(pdp_store *st, pdp_store_history_fn fn, void *arg)
{
    pdp_history_list_arg a;

    memset(&a, 0, sizeof(a));
    a.fn  = fn;
    a.arg = arg;
    return pdp_store__scan(st, st->history, true, pdp_store_history_list_one,
                           &a);
}

tg_err
pdp_store_history_last(pdp_store *st, pdp_activation *out)
{
    pdp_history_list_arg a;
    tg_err               rv;

    memset(&a, 0, sizeof(a));
    a.first_only = true;
    a.a.seq      = 0;
    rv = pdp_store__scan(st, st->history, true, pdp_store_history_list_one, &a);
    if (rv != TG_OK) {
        return rv;
    }
    if (a.a.seq == 0) {
        return TG_ENOTFOUND;
    }
    *out = a.a;
    return TG_OK;
}

/* ---- state check -------------------------------------------------------- */

static bool
pdp_store_audit_any(void *arg, const pdp_audit *a)
{
    (void)arg;
    (void)a;
    return true;
}

tg_err
pdp_store__admin_check_rec(const char *db, const MDB_val *k, const MDB_val *v)
{
    pdp_audit_list_arg *l;
    pdp_admin_token     t;
    pdp_quota           q;
    pdp_activation      act;
    tg_err              rv;

    if (strcmp(db, "quotas") == 0) {
        return pdp_quota_decode(k, v, &q);
    }
    if (strcmp(db, "admin_tokens") == 0) {
        return pdp_token_decode(v, &t);
    }
    if (strcmp(db, "policy_history") == 0) {
        return pdp_history_decode(k, v, &act);
    }
    if (strcmp(db, "admin_audit") != 0) {
        return TG_ENOTFOUND;
    }
    if ((l = calloc(1, sizeof(*l))) == NULL) {
        return TG_ENOMEM;
    }
    l->fn = pdp_store_audit_any;
    rv    = pdp_store_audit_list_one(k, v, l);
    free(l);
    return rv;
}
