/* pdp_store_responses.c - stored Responses API responses in pdp_store
 * (pdp_responses.h). */
#include "pdp_responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_rec.h"
#include "pdp_store_int.h"

#define PDP_RESP_KEY_MAX (1 + 2 + TG_ID_MAX + 2 + PDP_RESP_ID_MAX)
#define PDP_RESP_PRUNE_BATCH 1000

int
pdp_store__responses_open(pdp_store *st, MDB_txn *txn)
{
    return mdb_dbi_open(txn, "responses", MDB_CREATE, &st->responses);
}

void
pdp_resp_rec_fini(pdp_resp_rec *r)
{
    if (r != NULL) {
        free(r->response);
        free(r->items);
        r->response = NULL;
        r->items    = NULL;
    }
}

/* pdp_resp_key writes the key of kind ('r' a record, 't' a tenant's
 * totals) into buf; 0 when tenant or id is empty or too long. */
static size_t
pdp_resp_key(uint8_t *buf, char kind, const char *tenant, const char *id)
{
    size_t tl = strlen(tenant);
    size_t il = id != NULL ? strlen(id) : 0;
    size_t o  = 0;

    if (tl == 0 || tl >= TG_ID_MAX || (kind == 'r' && il == 0) ||
        il >= PDP_RESP_ID_MAX) {
        return 0;
    }
    buf[o++] = (uint8_t)kind;
    pdp_rec_put_le(buf + o, tl, 2);
    memcpy(buf + o + 2, tenant, tl);
    o += 2 + tl;
    if (kind == 'r') {
        pdp_rec_put_le(buf + o, il, 2);
        memcpy(buf + o + 2, id, il);
        o += 2 + il;
    }
    return o;
}

/* pdp_resp_totals reads a tenant's totals (0, 0 when none) in txn. */
static int
pdp_resp_totals(pdp_store *st, MDB_txn *txn, const MDB_val *tk, int64_t *bytes,
                int64_t *count)
{
    MDB_val    v;
    int        rc = mdb_get(txn, st->responses, (MDB_val *)tk, &v);
    pdp_rec_in in = {NULL, 0, 0, false};

    *bytes = 0;
    *count = 0;
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    in.p   = v.mv_data;
    in.len = v.mv_size;
    (void)pdp_rec_get_uint(&in, 1);
    *bytes = pdp_rec_get_i64(&in);
    *count = pdp_rec_get_i64(&in);
    return in.bad ? MDB_CORRUPTED : 0;
}

/* pdp_resp_totals_add adds bytes and count to a tenant's totals (removing
 * them when both reach 0) in txn. */
static int
pdp_resp_totals_add(pdp_store *st, MDB_txn *txn, const char *tenant,
                    int64_t bytes, int64_t count)
{
    uint8_t kb[PDP_RESP_KEY_MAX];
    uint8_t vb[17];
    MDB_val k = {pdp_resp_key(kb, 't', tenant, NULL), kb};
    MDB_val v = {sizeof(vb), vb};
    int64_t b, n;
    int     rc;

    if ((rc = pdp_resp_totals(st, txn, &k, &b, &n)) != 0) {
        return rc;
    }
    b += bytes;
    n += count;
    if (n <= 0 || b <= 0) {
        rc = pdp_store__del(st, txn, st->responses, &k);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    vb[0] = 1;
    pdp_rec_put_le(vb + 1, (uint64_t)b, 8);
    pdp_rec_put_le(vb + 9, (uint64_t)n, 8);
    return pdp_store__put(st, txn, st->responses, &k, &v, 0);
}

typedef struct pdp_resp_put_arg {
    const pdp_resp_rec *r;
    int64_t             max;
    bool                over; /* the quota refused it */
    uint8_t            *val;
    size_t              vlen;
} pdp_resp_put_arg;

static int
pdp_resp_put_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_resp_put_arg *a = arg;
    uint8_t           kb[PDP_RESP_KEY_MAX], tkb[PDP_RESP_KEY_MAX];
    MDB_val           k  = {pdp_resp_key(kb, 'r', a->r->tenant, a->r->id), kb};
    MDB_val           tk = {pdp_resp_key(tkb, 't', a->r->tenant, NULL), tkb};
    MDB_val           v  = {a->vlen, a->val};
    int64_t           size = (int64_t)(k.mv_size + v.mv_size);
    int64_t           b, n;
    int               rc;

    if ((rc = pdp_resp_totals(st, txn, &tk, &b, &n)) != 0) {
        return rc;
    }
    if (a->max > 0 && b + size > a->max) {
        a->over = true;
        return MDB_KEYEXIST; /* nothing written, nothing logged */
    }
    if ((rc = pdp_store__put(st, txn, st->responses, &k, &v,
                             MDB_NOOVERWRITE)) != 0) {
        return rc;
    }
    return pdp_resp_totals_add(st, txn, a->r->tenant, size, 1);
}

tg_err
pdp_store_resp_put(pdp_store *st, const pdp_resp_rec *r,
                   int64_t max_tenant_bytes)
{
    uint8_t          kb[PDP_RESP_KEY_MAX];
    size_t           kl = strlen(r->key_id);
    pdp_resp_put_arg a  = {r, max_tenant_bytes, false, NULL, 0};
    tg_err           rv;
    uint8_t         *p;

    if (pdp_resp_key(kb, 'r', r->tenant, r->id) == 0 || kl >= TG_ID_MAX ||
        r->response_len > UINT32_MAX || r->items_len > UINT32_MAX) {
        return TG_EINVAL;
    }
    a.vlen = 1 + 8 + 2 + kl + 4 + r->response_len + 4 + r->items_len;
    if ((a.val = p = malloc(a.vlen)) == NULL) {
        return TG_ENOMEM;
    }
    *p++ = 1;
    pdp_rec_put_le(p, (uint64_t)r->created_ms, 8);
    p += 8;
    pdp_rec_put_le(p, kl, 2);
    memcpy(p + 2, r->key_id, kl);
    p += 2 + kl;
    pdp_rec_put_le(p, r->response_len, 4);
    memcpy(p + 4, r->response, r->response_len);
    p += 4 + r->response_len;
    pdp_rec_put_le(p, r->items_len, 4);
    memcpy(p + 4, r->items, r->items_len);
    rv = pdp_store__write(st, pdp_resp_put_txn, &a);
    free(a.val);
    return a.over ? TG_ETOOBIG : rv;
}

/* pdp_resp_decode reads record v into out (tenant and id set by the
 * caller). */
static tg_err
pdp_resp_decode(const MDB_val *v, pdp_resp_rec *out)
{
    pdp_rec_in  in = {v->mv_data, v->mv_size, 0, false};
    const void *rd = NULL, *id = NULL;
    size_t      rl = 0, il = 0;

    if (pdp_rec_get_uint(&in, 1) != 1) {
        return in.bad ? TG_ECORRUPT : TG_EVERSION;
    }
    out->created_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, out->key_id, sizeof(out->key_id));
    if (!pdp_rec_get_blob(&in, &rd, &rl) || !pdp_rec_get_blob(&in, &id, &il)) {
        return TG_ECORRUPT;
    }
    out->response = malloc(rl + 1);
    out->items    = malloc(il + 1);
    if (out->response == NULL || out->items == NULL) {
        return TG_ENOMEM;
    }
    memcpy(out->response, rd, rl);
    out->response[rl] = '\0';
    out->response_len = rl;
    memcpy(out->items, id, il);
    out->items[il] = '\0';
    out->items_len = il;
    return TG_OK;
}

tg_err
pdp_store_resp_get(pdp_store *st, const char *tenant, const char *id,
                   pdp_resp_rec *out)
{
    uint8_t           kb[PDP_RESP_KEY_MAX];
    size_t            kl = pdp_resp_key(kb, 'r', tenant, id);
    pdp_store_reader *rd = NULL;
    MDB_val           v;
    tg_err            rv;

    memset(out, 0, sizeof(*out));
    if (kl == 0) {
        return TG_ENOTFOUND;
    }
    snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
    snprintf(out->id, sizeof(out->id), "%s", id);
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store__get(rd, st->responses, kb, kl, &v);
        if (rv == TG_OK) {
            rv = pdp_resp_decode(&v, out);
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

typedef struct pdp_resp_del_arg {
    const char *tenant;
    const char *id;
} pdp_resp_del_arg;

/* pdp_resp_del_at deletes record k (its value v) and takes it off its
 * tenant's totals, in txn. */
static int
pdp_resp_del_rec(pdp_store *st, MDB_txn *txn, MDB_val *k, size_t vlen,
                 const char *tenant)
{
    int64_t size = (int64_t)(k->mv_size + vlen);
    int     rc   = pdp_store__del(st, txn, st->responses, k);

    return rc != 0 ? rc : pdp_resp_totals_add(st, txn, tenant, -size, -1);
}

static int
pdp_resp_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_resp_del_arg *a = arg;
    uint8_t           kb[PDP_RESP_KEY_MAX];
    MDB_val           k = {pdp_resp_key(kb, 'r', a->tenant, a->id), kb};
    MDB_val           v;
    int               rc;

    if (k.mv_size == 0) {
        return MDB_NOTFOUND;
    }
    if ((rc = mdb_get(txn, st->responses, &k, &v)) != 0) {
        return rc;
    }
    return pdp_resp_del_rec(st, txn, &k, v.mv_size, a->tenant);
}

tg_err
pdp_store_resp_del(pdp_store *st, const char *tenant, const char *id)
{
    pdp_resp_del_arg a = {tenant, id};

    return pdp_store__write(st, pdp_resp_del_txn, &a);
}

tg_err
pdp_store_resp_usage(pdp_store *st, const char *tenant, int64_t *bytes,
                     int64_t *count)
{
    uint8_t  kb[PDP_RESP_KEY_MAX];
    MDB_val  k = {pdp_resp_key(kb, 't', tenant, NULL), kb};
    MDB_txn *txn;
    int      rc;

    *bytes = 0;
    *count = 0;
    if (k.mv_size == 0) {
        return TG_OK;
    }
    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return pdp_store__rc(rc);
    }
    rc = pdp_resp_totals(st, txn, &k, bytes, count);
    mdb_txn_abort(txn);
    return pdp_store__rc(rc);
}

typedef struct pdp_resp_prune_arg {
    int64_t  before;
    uint64_t n;    /* removed in this txn */
    bool     more; /* the batch filled: run again */
} pdp_resp_prune_arg;

static int
pdp_resp_prune_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_resp_prune_arg *a = arg;
    MDB_cursor         *cur;
    MDB_val             k = {1, "r"}, v;
    int                 rc;

    a->n    = 0;
    a->more = false;
    if ((rc = mdb_cursor_open(txn, st->responses, &cur)) != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && ((const uint8_t *)k.mv_data)[0] == 'r') {
        pdp_rec_in in  = {v.mv_data, v.mv_size, 1, false};
        pdp_rec_in kin = {k.mv_data, k.mv_size, 1, false};
        char       tenant[TG_ID_MAX];
        int64_t    created = pdp_rec_get_i64(&in);

        pdp_rec_get_str(&kin, tenant, sizeof(tenant));
        if (!in.bad && !kin.bad && created < a->before) {
            int64_t size = (int64_t)(k.mv_size + v.mv_size);
            if (a->n == PDP_RESP_PRUNE_BATCH) {
                a->more = true;
                break;
            }
            /* Deleting moves the cursor on: read where it is after. */
            if ((rc = pdp_store__cursor_del(st, cur)) != 0 ||
                (rc = pdp_resp_totals_add(st, txn, tenant, -size, -1)) != 0) {
                break;
            }
            a->n++;
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
            continue;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    return rc != 0 ? rc : a->n == 0 ? MDB_KEYEXIST : 0;
}

tg_err
pdp_store_resp_prune(pdp_store *st, int64_t before_ms, uint64_t *removed)
{
    pdp_resp_prune_arg a     = {before_ms, 0, false};
    uint64_t           total = 0;
    tg_err             rv;

    do {
        rv = pdp_store__write(st, pdp_resp_prune_txn, &a);
        total += rv == TG_OK ? a.n : 0;
    } while (rv == TG_OK && a.more);
    if (removed != NULL) {
        *removed = total;
    }
    return rv == TG_EEXIST ? TG_OK : rv;
}
