/* pdp_store_forward.c - what a sidecar PDP owes its central PDP (the
 * forward queue) and the leases a central PDP granted. */
#include "pdp_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tg_wire.h"

int
pdp_store__forward_open(pdp_store *st, MDB_txn *txn)
{
    int rc = mdb_dbi_open(txn, "forward", MDB_CREATE, &st->forward);

    if (rc == 0) {
        rc = mdb_dbi_open(txn, "leases", MDB_CREATE, &st->leases);
    }
    return rc;
}

void
pdp_store_forward_enable(pdp_store *st, const char *via)
{
    snprintf(st->fwd_via, sizeof(st->fwd_via), "%s", via);
    atomic_store(&st->fwd_on, true);
}

/* fwd_append writes rec (u8 kind, then the bytes) as the next queued
 * record inside txn. */
static int
fwd_append(pdp_store *st, MDB_txn *txn, uint8_t *rec, size_t len)
{
    uint8_t  key[8];
    uint64_t seq;
    MDB_val  k = {8, key};
    MDB_val  v = {len, rec};
    int      rc;

    if ((rc = pdp_store__next_seq(txn, st->forward, &seq)) != 0) {
        return rc;
    }
    pdp_store__seq_key(key, seq);
    return pdp_store__put(st, txn, st->forward, &k, &v, 0);
}

int
pdp_store__forward_usage(pdp_store *st, MDB_txn *txn, const pdp_store_item *it)
{
    Tollgate__V1__UsageItem item = TOLLGATE__V1__USAGE_ITEM__INIT;
    tg_wire_usage_room     *room;
    tg_usage               *u;
    uint8_t                *buf;
    size_t                  len;
    int                     rc;

    if (!atomic_load(&st->fwd_on)) {
        return 0;
    }
    room = malloc(sizeof(*room));
    u    = malloc(sizeof(*u));
    if (room == NULL || u == NULL) {
        free(room);
        free(u);
        return ENOMEM;
    }
    /* The central PDP holds no reservation of ours: the report settles
     * the leases its charges name. */
    *u                   = it->usage;
    u->reservation_id[0] = '\0';
    snprintf(u->via, sizeof(u->via), "%s", st->fwd_via);
    item.request_id   = u->request_id;
    item.usage        = tg_wire_usage_fill(room, u);
    item.content.data = (uint8_t *)it->content;
    item.content.len  = it->content != NULL ? it->content_len : 0;
    len               = tollgate__v1__usage_item__get_packed_size(&item);
    if ((buf = malloc(len + 1)) == NULL) {
        rc = ENOMEM;
    } else {
        buf[0] = 1; /* a report */
        tollgate__v1__usage_item__pack(&item, buf + 1);
        rc = fwd_append(st, txn, buf, len + 1);
    }
    free(buf);
    free(room);
    free(u);
    return rc;
}

typedef struct fwd_blob {
    const void *data;
    size_t      len;
    uint8_t     kind;
    const char *id;
    int64_t     expires_ms;
} fwd_blob;

static int
fwd_close_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const fwd_blob *b   = arg;
    uint8_t        *rec = malloc(b->len + 1);
    int             rc;

    if (rec == NULL) {
        return ENOMEM;
    }
    rec[0] = b->kind;
    memcpy(rec + 1, b->data, b->len);
    rc = fwd_append(st, txn, rec, b->len + 1);
    free(rec);
    return rc;
}

tg_err
pdp_store_forward_close(pdp_store *st, const void *data, size_t len)
{
    fwd_blob b = {.data = data, .len = len, .kind = 2};

    return pdp_store__write(st, fwd_close_txn, &b);
}

typedef struct fwd_read {
    pdp_store_fwd_fn fn;
    void            *arg;
    uint32_t         left;
} fwd_read;

static tg_err
fwd_read_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    fwd_read *r = arg;

    if (r->left == 0 || v->mv_size < 1) {
        return TG_EEXIST;
    }
    r->left--;
    if (!r->fn(r->arg, pdp_store__seq_of(k), ((const uint8_t *)v->mv_data)[0],
               (const uint8_t *)v->mv_data + 1, v->mv_size - 1)) {
        return TG_EEXIST;
    }
    return TG_OK;
}

tg_err
pdp_store_forward_read(pdp_store *st, uint32_t max, pdp_store_fwd_fn fn,
                       void *arg)
{
    fwd_read r = {fn, arg, max};

    return pdp_store__scan(st, st->forward, false, fwd_read_one, &r);
}

static int
fwd_ack_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    uint64_t    upto = *(const uint64_t *)arg;
    MDB_cursor *c;
    MDB_val     k, v;
    int         rc = mdb_cursor_open(txn, st->forward, &c);

    if (rc != 0) {
        return rc;
    }
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0 &&
           pdp_store__seq_of(&k) <= upto) {
        if ((rc = pdp_store__cursor_del(st, c)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

tg_err
pdp_store_forward_ack(pdp_store *st, uint64_t seq)
{
    return pdp_store__write(st, fwd_ack_txn, &seq);
}

uint64_t
pdp_store_forward_pending(pdp_store *st)
{
    MDB_txn *txn;
    MDB_stat ms;
    uint64_t n = 0;

    pthread_rwlock_rdlock(&st->resize_lk);
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat(txn, st->forward, &ms) == 0) {
            n = ms.ms_entries;
        }
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&st->resize_lk);
    return n;
}

/* ---- leases -------------------------------------------------------------- */

static int
lease_put_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const fwd_blob *b   = arg;
    MDB_val         k   = {strlen(b->id), (void *)b->id};
    uint8_t        *rec = malloc(b->len + 8);
    MDB_val         v   = {b->len + 8, rec};
    int             rc;

    if (rec == NULL) {
        return ENOMEM;
    }
    for (int i = 0; i < 8; i++) {
        rec[i] = (uint8_t)((uint64_t)b->expires_ms >> (8 * i));
    }
    memcpy(rec + 8, b->data, b->len);
    rc = pdp_store__put(st, txn, st->leases, &k, &v, 0);
    free(rec);
    return rc;
}

tg_err
pdp_store_lease_put(pdp_store *st, const char *id, int64_t expires_ms,
                    const void *data, size_t len)
{
    fwd_blob b = {.data = data, .len = len, .id = id, .expires_ms = expires_ms};

    if (id[0] == '\0' || strlen(id) > 511) {
        return TG_EINVAL;
    }
    /* Like a reservation: no fsync (a crash of this process keeps it; the
     * grant is answered after the commit). */
    return pdp_store__write_nosync(st, lease_put_txn, &b);
}

typedef struct lease_ids {
    const char *const *ids;
    uint32_t           n;
} lease_ids;

static int
lease_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const lease_ids *l = arg;

    for (uint32_t i = 0; i < l->n; i++) {
        MDB_val k = {strlen(l->ids[i]), (void *)l->ids[i]};
        int     rc;
        if (k.mv_size == 0 || k.mv_size > 511) {
            continue; /* no such record can exist */
        }
        rc = pdp_store__del(st, txn, st->leases, &k);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }
    return 0;
}

tg_err
pdp_store_lease_del(pdp_store *st, const char *const *ids, uint32_t n)
{
    lease_ids l = {ids, n};

    return pdp_store__write_nosync(st, lease_del_txn, &l);
}

static int64_t
lease_expiry(const MDB_val *v)
{
    uint64_t x = 0;

    for (int i = 0; i < 8; i++) {
        x |= (uint64_t)((const uint8_t *)v->mv_data)[i] << (8 * i);
    }
    return (int64_t)x;
}

typedef struct lease_walk {
    pdp_store_lease_fn fn;
    void              *arg;
} lease_walk;

static tg_err
lease_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    lease_walk *w = arg;
    char        id[512];

    if (v->mv_size < 8 || k->mv_size >= sizeof(id)) {
        return TG_OK; /* not ours to judge: restore skips it */
    }
    memcpy(id, k->mv_data, k->mv_size);
    id[k->mv_size] = '\0';
    w->fn(w->arg, id, lease_expiry(v), (const uint8_t *)v->mv_data + 8,
          v->mv_size - 8);
    return TG_OK;
}

tg_err
pdp_store_lease_list(pdp_store *st, pdp_store_lease_fn fn, void *arg)
{
    lease_walk w = {fn, arg};

    return pdp_store__scan(st, st->leases, false, lease_one, &w);
}

static int
lease_prune_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    int64_t     now = *(const int64_t *)arg;
    MDB_cursor *c;
    MDB_val     k, v;
    int         rc = mdb_cursor_open(txn, st->leases, &c);

    if (rc != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if ((v.mv_size < 8 || lease_expiry(&v) < now) &&
            (rc = pdp_store__cursor_del(st, c)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

tg_err
pdp_store_lease_prune(pdp_store *st, int64_t now_ms)
{
    return pdp_store__write(st, lease_prune_txn, &now_ms);
}

/* ---- a sidecar's holds ------------------------------------------------------ */

tg_err
pdp_store_hold_encode(const tg_usage *u, tg_buf *out)
{
    pdp_rec_out *o = malloc(sizeof(*o));
    tg_err       rv;

    if (o == NULL) {
        return TG_ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_rec_uint(o, PDP_STORE_HOLD_REC, 1);
    pdp_rec_uint(o, u->emergency ? 1 : 0, 1);
    pdp_rec_uint(o, u->n_charges, 1);
    for (uint32_t i = 0; i < u->n_charges && i < TG_MSG_CHARGES_MAX; i++) {
        const tg_lease_charge *c = &u->charges[i];
        if (c->nthr > TG_MSG_THRESHOLDS_MAX) {
            o->bad = true; /* what decode refuses is never written */
            break;
        }
        pdp_rec_str(o, c->lease_id);
        pdp_rec_str(o, c->rule_id);
        pdp_rec_str(o, c->scope);
        pdp_rec_uint(o, c->window, 1);
        pdp_rec_uint(o, (uint64_t)c->start_ms, 8);
        pdp_rec_uint(o, (uint64_t)c->limit, 8);
        pdp_rec_uint(o, c->scope_kind, 1);
        pdp_rec_uint(o, c->nthr, 1);
        pdp_rec_put(o, c->thr, c->nthr);
    }
    tg_buf_reset(out);
    rv = o->bad || u->n_charges > TG_MSG_CHARGES_MAX ? TG_ETOOBIG : TG_OK;
    if (rv == TG_OK) {
        rv = tg_buf_append(out, o->buf, o->len);
    }
    free(o);
    return rv;
}

bool
pdp_store_hold_decode(const void *data, size_t len, tg_usage *u)
{
    pdp_rec_in in = {data, len, 0, false};
    tg_usage   c; /* only the charges; copied when whole */
    uint32_t   n;

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_HOLD_REC) {
        return false;
    }
    c.emergency = pdp_rec_get_uint(&in, 1) != 0;
    n           = (uint32_t)pdp_rec_get_uint(&in, 1);
    if (n > TG_MSG_CHARGES_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        tg_lease_charge *ch = &c.charges[i];
        pdp_rec_get_str(&in, ch->lease_id, sizeof(ch->lease_id));
        pdp_rec_get_str(&in, ch->rule_id, sizeof(ch->rule_id));
        pdp_rec_get_str(&in, ch->scope, sizeof(ch->scope));
        ch->window     = (uint8_t)pdp_rec_get_uint(&in, 1);
        ch->start_ms   = pdp_rec_get_i64(&in);
        ch->limit      = pdp_rec_get_i64(&in);
        ch->scope_kind = (uint8_t)pdp_rec_get_uint(&in, 1);
        ch->nthr       = (uint8_t)pdp_rec_get_uint(&in, 1);
        if (ch->nthr > TG_MSG_THRESHOLDS_MAX || ch->nthr > len - in.off) {
            return false;
        }
        memcpy(ch->thr, (const uint8_t *)data + in.off, ch->nthr);
        in.off += ch->nthr;
    }
    if (in.bad || in.off != len) {
        return false;
    }
    u->emergency = c.emergency;
    u->n_charges = n;
    memcpy(u->charges, c.charges, n * sizeof(c.charges[0]));
    return true;
}
