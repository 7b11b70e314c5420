/* pdp_store_keys.c - the keys, key_ids and tenants databases of pdp_store:
 * their records, the reads a decision makes (a key by hash, its tenant) and
 * the administrative writes (create, revoke, rotate; set a tenant) and
 * lists. Thread-safe like the rest of the store. */
#include "pdp_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ------------------------------------------------------------ */

void
pdp_store__key_encode(pdp_rec_out *o, const pdp_key *k)
{
    pdp_rec_uint(o, PDP_STORE_KEY_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)k->status, 1);
    pdp_rec_uint(o, (uint64_t)k->created_ms, 8);
    pdp_rec_uint(o, (uint64_t)k->revoked_ms, 8);
    pdp_rec_str(o, k->id);
    pdp_rec_str(o, k->tenant);
    pdp_rec_str(o, k->name);
    pdp_rec_uint(o, k->n_models, 2);
    for (uint32_t i = 0; i < k->n_models; i++) {
        pdp_rec_str(o, k->models[i]);
    }
    pdp_rec_labels(o, k->labels, k->n_labels);
    pdp_rec_uint(o, (uint64_t)k->expires_ms, 8);
    pdp_rec_uint(o, (uint64_t)k->rotated_ms, 8);
    pdp_rec_uint(o, (uint64_t)k->grace_until_ms, 8);
    pdp_rec_uint(o, k->superseded ? PDP_KEY_FLAG_SUPERSEDED : 0u, 1);
    pdp_rec_str(o, k->user); /* trailing: older readers ignore it */
}

tg_err
pdp_store__key_decode(const MDB_val *v, pdp_key *k)
{
    pdp_rec_in in      = {v->mv_data, v->mv_size, 0, false};
    uint64_t   version = pdp_rec_get_uint(&in, 1);

    if (version < 1 || version > PDP_STORE_KEY_VERSION) {
        return TG_EVERSION;
    }
    k->status     = (pdp_key_status)pdp_rec_get_uint(&in, 1);
    k->created_ms = pdp_rec_get_i64(&in);
    k->revoked_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, k->id, sizeof(k->id));
    pdp_rec_get_str(&in, k->tenant, sizeof(k->tenant));
    pdp_rec_get_str(&in, k->name, sizeof(k->name));
    k->n_models = (uint32_t)pdp_rec_get_uint(&in, 2);
    if (k->n_models > PDP_KEY_MODELS_MAX) {
        return TG_EIO;
    }
    for (uint32_t i = 0; i < k->n_models; i++) {
        pdp_rec_get_str(&in, k->models[i], sizeof(k->models[i]));
    }
    k->n_labels = 0;
    if (version >= 2) {
        pdp_rec_get_labels(&in, k->labels, &k->n_labels);
    }
    k->expires_ms     = 0;
    k->rotated_ms     = 0;
    k->grace_until_ms = 0;
    k->superseded     = false;
    if (version >= 3) {
        k->expires_ms     = pdp_rec_get_i64(&in);
        k->rotated_ms     = pdp_rec_get_i64(&in);
        k->grace_until_ms = pdp_rec_get_i64(&in);
        k->superseded =
            (pdp_rec_get_uint(&in, 1) & PDP_KEY_FLAG_SUPERSEDED) != 0;
    }
    k->user[0] = '\0';
    if (version >= 3 && !in.bad && in.off < in.len) {
        pdp_rec_get_str(&in, k->user, sizeof(k->user));
    }
    if (in.bad ||
        (k->status != PDP_KEY_ACTIVE && k->status != PDP_KEY_REVOKED)) {
        return TG_EIO;
    }
    return TG_OK;
}

void
pdp_store__tenant_encode(pdp_rec_out *o, const pdp_tenant *t)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)t->created_ms, 8);
    pdp_rec_uint(o, (uint64_t)t->updated_ms, 8);
    pdp_rec_str(o, t->tier);
    pdp_rec_labels(o, t->labels, t->n_labels);
    pdp_rec_str(o, t->name); /* trailing: older readers ignore it */
    pdp_rec_uint(o, (uint64_t)t->disabled_ms, 8); /* likewise */
}

tg_err
pdp_store__tenant_decode(const MDB_val *v, pdp_tenant *t)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    t->created_ms = pdp_rec_get_i64(&in);
    t->updated_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, t->tier, sizeof(t->tier));
    pdp_rec_get_labels(&in, t->labels, &t->n_labels);
    t->name[0]     = '\0';
    t->disabled_ms = 0;
    if (!in.bad && in.off < in.len) {
        pdp_rec_get_str(&in, t->name, sizeof(t->name));
    }
    if (!in.bad && in.off < in.len) {
        t->disabled_ms = pdp_rec_get_i64(&in);
    }
    return in.bad ? TG_EIO : TG_OK;
}

/* ---- reads (in a decision's snapshot) ----------------------------------- */

tg_err
pdp_store_key_get(pdp_store_reader *rd, const uint8_t hash[TG_SHA256_LEN],
                  pdp_key *out)
{
    MDB_val v;
    tg_err  rv = pdp_store__get(rd, rd->st->keys, hash, TG_SHA256_LEN, &v);

    return rv != TG_OK ? rv : pdp_store__key_decode(&v, out);
}

tg_err
pdp_store_key_get_by_id(pdp_store_reader *rd, const char *id, pdp_key *out)
{
    MDB_val v;
    tg_err  rv = pdp_store__get(rd, rd->st->key_ids, id, strlen(id), &v);

    if (rv != TG_OK) {
        return rv;
    }
    if (v.mv_size != TG_SHA256_LEN) {
        return TG_EIO;
    }
    return pdp_store_key_get(rd, v.mv_data, out);
}

tg_err
pdp_store_tenant_get(pdp_store_reader *rd, const char *id, pdp_tenant *out)
{
    MDB_val v;
    tg_err  rv;

    if (id[0] == '\0' || strlen(id) >= sizeof(out->id)) {
        return TG_ENOTFOUND;
    }
    rv = pdp_store__get(rd, rd->st->tenants, id, strlen(id), &v);
    if (rv != TG_OK) {
        return rv;
    }
    memcpy(out->id, id, strlen(id) + 1);
    return pdp_store__tenant_decode(&v, out);
}

/* ---- key admin -------------------------------------------------------- */

typedef struct pdp_key_put_arg {
    const uint8_t   *hash;
    const pdp_key   *k;
    const pdp_quota *q; /* NULL: none */
} pdp_key_put_arg;

static int
pdp_store_key_put_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_key_put_arg *a  = arg;
    pdp_rec_out     *o  = malloc(sizeof(*o));
    MDB_val          hk = {TG_SHA256_LEN, (void *)a->hash};
    MDB_val          ik = {strlen(a->k->id), (void *)a->k->id};
    MDB_val          v;
    int              rc;

    if (o == NULL) {
        return ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_store__key_encode(o, a->k);
    if (o->bad) {
        rc = EINVAL;
        goto out;
    }
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = pdp_store__rput(st, txn, st->keys, &hk, &v, MDB_NOOVERWRITE)) !=
        0) {
        goto out;
    }
    v.mv_size = TG_SHA256_LEN;
    v.mv_data = (void *)a->hash;
    rc        = pdp_store__rput(st, txn, st->key_ids, &ik, &v, MDB_NOOVERWRITE);
    if (rc == 0 && a->q != NULL) {
        rc = pdp_store__quota_put_in(st, txn, a->q);
    }
out:
    free(o);
    return rc;
}

tg_err
pdp_store_key_put(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                  const pdp_key *k)
{
    return pdp_store_key_put_quota(st, hash, k, NULL);
}

tg_err
pdp_store_key_put_quota(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                        const pdp_key *k, const pdp_quota *q)
{
    pdp_key_put_arg a = {hash, k, q};

    if (k->id[0] == '\0' || k->n_models > PDP_KEY_MODELS_MAX ||
        k->n_labels > PDP_LABELS_MAX ||
        (q != NULL && (q->scope != PDP_QUOTA_KEY || strcmp(q->id, k->id) != 0 ||
                       q->nthr > PDP_LIMITS_THRESHOLDS_MAX))) {
        return TG_EINVAL;
    }
    return pdp_store__refused(st,
                              pdp_store__write(st, pdp_store_key_put_txn, &a));
}

/* pdp_store_key_revoke_superseded revokes every superseded secret of key
 * id. Rotations are rare and revokes are admin writes, so a scan of the
 * keys database beats keeping an index of old secrets. k and o are
 * scratch. */
static int
pdp_store_key_revoke_superseded(pdp_store *st, MDB_txn *txn, const char *id,
                                int64_t now_ms, pdp_key *k, pdp_rec_out *o)
{
    MDB_cursor *cur = NULL;
    MDB_val     hk;
    MDB_val     v;
    int         rc;

    if ((rc = mdb_cursor_open(txn, st->keys, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &hk, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &hk, &v, MDB_NEXT)) {
        if (pdp_store__key_decode(&v, k) != TG_OK || !k->superseded ||
            k->status == PDP_KEY_REVOKED || strcmp(k->id, id) != 0) {
            continue;
        }
        k->status     = PDP_KEY_REVOKED;
        k->revoked_ms = now_ms;
        o->len        = 0;
        o->bad        = false;
        pdp_store__key_encode(o, k);
        v.mv_size = o->len;
        v.mv_data = o->buf;
        /* Logged like any key write; cur, a write txn's cursor, is kept
         * on this record by LMDB across the put. */
        if ((rc = pdp_store__rput(st, txn, st->keys, &hk, &v, 0)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

typedef struct pdp_key_revoke_arg {
    const char *id;
    int64_t     now_ms;
    bool        already;
} pdp_key_revoke_arg;

static int
pdp_store_key_revoke_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_key_revoke_arg *a  = arg;
    MDB_val             ik = {strlen(a->id), (void *)a->id};
    MDB_val             hk;
    MDB_val             v;
    pdp_key            *k = malloc(sizeof(*k));
    pdp_rec_out        *o = malloc(sizeof(*o));
    int                 rc;

    a->already = false;
    if (k == NULL || o == NULL) {
        rc = ENOMEM;
        goto out;
    }
    if ((rc = mdb_get(txn, st->key_ids, &ik, &hk)) != 0 ||
        (rc = mdb_get(txn, st->keys, &hk, &v)) != 0) {
        goto out;
    }
    if (pdp_store__key_decode(&v, k) != TG_OK) {
        rc = MDB_CORRUPTED;
        goto out;
    }
    if (k->status == PDP_KEY_REVOKED) {
        a->already = true;
        rc         = MDB_KEYEXIST; /* nothing to commit (nor to audit) */
        goto out;
    }
    k->status     = PDP_KEY_REVOKED;
    k->revoked_ms = a->now_ms;
    o->len        = 0;
    o->bad        = false;
    pdp_store__key_encode(o, k);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = pdp_store__rput(st, txn, st->keys, &hk, &v, 0)) != 0) {
        goto out;
    }
    rc = pdp_store_key_revoke_superseded(st, txn, a->id, a->now_ms, k, o);
out:
    free(k);
    free(o);
    return rc;
}

tg_err
pdp_store_key_revoke(pdp_store *st, const char *id, int64_t now_ms)
{
    pdp_key_revoke_arg a = {id, now_ms, false};
    tg_err             rv;

    if (id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    rv = pdp_store__refused(st,
                            pdp_store__write(st, pdp_store_key_revoke_txn, &a));
    return a.already ? TG_EEXIST : rv;
}

typedef struct pdp_key_rotate_arg {
    const char    *id;
    const uint8_t *hash;
    int64_t        now_ms;
    int64_t        grace_ms;
    pdp_key       *k; /* the current record, as read or as written */
    bool           refused;
} pdp_key_rotate_arg;

static int
pdp_store_key_rotate_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_key_rotate_arg *a  = arg;
    MDB_val             ik = {strlen(a->id), (void *)a->id};
    MDB_val             nk = {TG_SHA256_LEN, (void *)a->hash};
    MDB_val             hk;
    MDB_val             v;
    pdp_rec_out        *o = malloc(sizeof(*o));
    uint8_t             old[TG_SHA256_LEN];
    int                 rc;

    a->refused = false;
    if (o == NULL) {
        return ENOMEM;
    }
    if ((rc = mdb_get(txn, st->key_ids, &ik, &hk)) != 0 ||
        (rc = mdb_get(txn, st->keys, &hk, &v)) != 0) {
        goto out;
    }
    if (hk.mv_size != TG_SHA256_LEN ||
        pdp_store__key_decode(&v, a->k) != TG_OK) {
        rc = MDB_CORRUPTED;
        goto out;
    }
    if (pdp_key_state_at(a->k, a->now_ms) != PDP_KEY_STATE_ACTIVE) {
        a->refused = true;
        rc         = MDB_KEYEXIST; /* nothing to commit (nor to audit) */
        goto out;
    }
    memcpy(old, hk.mv_data, sizeof(old));
    hk.mv_data = old; /* mdb_put below may move the page it pointed into */
    a->k->rotated_ms     = a->now_ms;
    a->k->grace_until_ms = a->now_ms + a->grace_ms;
    a->k->superseded     = false;
    o->len               = 0;
    o->bad               = false;
    pdp_store__key_encode(o, a->k);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = pdp_store__rput(st, txn, st->keys, &nk, &v, MDB_NOOVERWRITE)) !=
        0) {
        goto out;
    }
    a->k->superseded = true;
    o->len           = 0;
    pdp_store__key_encode(o, a->k);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = pdp_store__rput(st, txn, st->keys, &hk, &v, 0)) != 0) {
        goto out;
    }
    a->k->superseded = false;
    rc               = pdp_store__rput(st, txn, st->key_ids, &ik, &nk, 0);
out:
    free(o);
    return rc;
}

tg_err
pdp_store_key_rotate(pdp_store *st, const char *id,
                     const uint8_t new_hash[TG_SHA256_LEN], int64_t now_ms,
                     int64_t grace_ms, pdp_key *out)
{
    pdp_key_rotate_arg a = {id, new_hash, now_ms, grace_ms, NULL, false};
    tg_err             rv;

    if (id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    if (grace_ms < 0) {
        return TG_EINVAL;
    }
    if ((a.k = calloc(1, sizeof(*a.k))) == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_store__refused(st,
                            pdp_store__write(st, pdp_store_key_rotate_txn, &a));
    if (a.refused) {
        rv = TG_EINVAL;
    }
    if (out != NULL && (rv == TG_OK || rv == TG_EINVAL)) {
        *out = *a.k;
    }
    free(a.k);
    return rv;
}

pdp_key_state
pdp_key_state_at(const pdp_key *k, int64_t now_ms)
{
    if (k->status != PDP_KEY_ACTIVE) {
        return PDP_KEY_STATE_REVOKED;
    }
    if (k->superseded && now_ms >= k->grace_until_ms) {
        return PDP_KEY_STATE_ROTATED;
    }
    if (k->expires_ms != 0 && now_ms >= k->expires_ms) {
        return PDP_KEY_STATE_EXPIRED;
    }
    return PDP_KEY_STATE_ACTIVE;
}

typedef struct pdp_key_list_arg {
    pdp_store_key_fn fn;
    void            *arg;
    pdp_key          k;
} pdp_key_list_arg;

static tg_err
pdp_store_key_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_key_list_arg *a  = arg;
    tg_err            rv = pdp_store__key_decode(v, &a->k);

    (void)k;
    if (rv != TG_OK) {
        return rv;
    }
    if (!a->k.superseded) {
        a->fn(a->arg, &a->k);
    }
    return TG_OK;
}

tg_err
pdp_store_key_list(pdp_store *st, pdp_store_key_fn fn, void *arg)
{
    pdp_key_list_arg *a = malloc(sizeof(*a));
    tg_err            rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    rv     = pdp_store__scan(st, st->keys, false, pdp_store_key_list_one, a);
    free(a);
    return rv;
}

/* ---- tenants ------------------------------------------------------------ */

typedef struct pdp_tenant_set_arg {
    const pdp_tenant_change *c;
    pdp_tenant              *t; /* the result, rebuilt on every run */
    bool                     created;
    bool                     too_many;
    const int64_t           *disabled_ms; /* NULL: keep; else must exist */
} pdp_tenant_set_arg;

static int
pdp_tenant_label_apply(pdp_tenant *t, const tg_kv *l)
{
    uint32_t i = 0;

    while (i < t->n_labels && strcmp(t->labels[i].key, l->key) != 0) {
        i++;
    }
    if (l->value[0] == '\0') {
        if (i < t->n_labels) {
            memmove(&t->labels[i], &t->labels[i + 1],
                    (t->n_labels - i - 1) * sizeof(t->labels[0]));
            t->n_labels--;
        }
        return 0;
    }
    if (i == t->n_labels) {
        if (t->n_labels == PDP_LABELS_MAX) {
            return -1;
        }
        t->n_labels++;
    }
    t->labels[i] = *l;
    return 0;
}

static int
pdp_store_tenant_set_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_tenant_set_arg      *a = arg;
    const pdp_tenant_change *c = a->c;
    pdp_tenant              *t = a->t;
    MDB_val                  k = {strlen(c->id), (void *)c->id};
    MDB_val                  v;
    pdp_rec_out             *o;
    int                      rc;

    memset(t, 0, sizeof(*t));
    a->too_many = false;
    rc          = mdb_get(txn, st->tenants, &k, &v);
    if (rc == 0) {
        if (pdp_store__tenant_decode(&v, t) != TG_OK) {
            return MDB_CORRUPTED;
        }
        a->created = false;
    } else if (rc == MDB_NOTFOUND && a->disabled_ms == NULL) {
        t->created_ms = c->now_ms;
        a->created    = true;
    } else {
        return rc;
    }
    if (a->disabled_ms != NULL) {
        t->disabled_ms = *a->disabled_ms;
    }
    memcpy(t->id, c->id, k.mv_size + 1);
    t->updated_ms = c->now_ms;
    if (c->tier != NULL) {
        snprintf(t->tier, sizeof(t->tier), "%s", c->tier);
    }
    if (c->name != NULL) {
        snprintf(t->name, sizeof(t->name), "%s", c->name);
    }
    for (uint32_t i = 0; i < c->n_labels; i++) {
        if (pdp_tenant_label_apply(t, &c->labels[i]) != 0) {
            a->too_many = true;
            return EINVAL;
        }
    }
    if ((o = malloc(sizeof(*o))) == NULL) {
        return ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_store__tenant_encode(o, t);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    rc = o->bad ? EINVAL : pdp_store__rput(st, txn, st->tenants, &k, &v, 0);
    free(o);
    return rc;
}

tg_err
pdp_store_tenant_disable(pdp_store *st, const char *id, int64_t disabled_ms,
                         int64_t now_ms, pdp_tenant *out)
{
    pdp_tenant_change  c = {.id = id, .now_ms = now_ms};
    pdp_tenant_set_arg a = {&c, NULL, false, false, &disabled_ms};
    tg_err             rv;

    if (id[0] == '\0' || strlen(id) >= TG_ID_MAX) {
        return TG_ENOTFOUND;
    }
    if ((a.t = malloc(sizeof(*a.t))) == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_store__refused(st,
                            pdp_store__write(st, pdp_store_tenant_set_txn, &a));
    if (rv == TG_OK && out != NULL) {
        *out = *a.t;
    }
    free(a.t);
    return rv;
}

tg_err
pdp_store_tenant_set(pdp_store *st, const pdp_tenant_change *c, pdp_tenant *out,
                     bool *created)
{
    pdp_tenant_set_arg a = {c, NULL, false, false, NULL};
    tg_err             rv;

    if (c->id == NULL || c->id[0] == '\0' || strlen(c->id) >= TG_ID_MAX ||
        (c->tier != NULL && strlen(c->tier) >= TG_ID_MAX) ||
        (c->name != NULL && strlen(c->name) >= PDP_KEY_NAME_MAX)) {
        return TG_EINVAL;
    }
    if ((a.t = malloc(sizeof(*a.t))) == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_store__refused(st,
                            pdp_store__write(st, pdp_store_tenant_set_txn, &a));
    if (rv != TG_OK && a.too_many) {
        rv = TG_ETOOBIG;
    }
    if (rv == TG_OK) {
        if (out != NULL) {
            *out = *a.t;
        }
        if (created != NULL) {
            *created = a.created;
        }
    }
    free(a.t);
    return rv;
}

typedef struct pdp_tenant_list_arg {
    pdp_store_tenant_fn fn;
    void               *arg;
    pdp_tenant          t;
} pdp_tenant_list_arg;

static tg_err
pdp_store_tenant_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_tenant_list_arg *a = arg;
    tg_err               rv;

    if (k->mv_size == 0 || k->mv_size >= sizeof(a->t.id)) {
        return TG_EIO;
    }
    if ((rv = pdp_store__tenant_decode(v, &a->t)) != TG_OK) {
        return rv;
    }
    memcpy(a->t.id, k->mv_data, k->mv_size);
    a->t.id[k->mv_size] = '\0';
    a->fn(a->arg, &a->t);
    return TG_OK;
}

tg_err
pdp_store_tenant_list(pdp_store *st, pdp_store_tenant_fn fn, void *arg)
{
    pdp_tenant_list_arg *a = malloc(sizeof(*a));
    tg_err               rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    rv = pdp_store__scan(st, st->tenants, false, pdp_store_tenant_list_one, a);
    free(a);
    return rv;
}
