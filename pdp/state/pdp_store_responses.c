/* pdp_store_responses.c - stored Responses API responses in pdp_store
 * (pdp_responses.h). */
#include "pdp_responses.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pdp_rec.h"
#include "pdp_store_int.h"
#include "tg_time.h"

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

/* pdp_resp_key writes the key of kind ('r' a record, 'i' an item's index
 * record, 't' a tenant's totals) into buf; 0 when tenant or id (an item
 * id for 'i') is empty or too long. */
static size_t
pdp_resp_key(uint8_t *buf, char kind, const char *tenant, const char *id)
{
    size_t tl = strlen(tenant);
    size_t il = id != NULL ? strlen(id) : 0;
    size_t o  = 0;

    if (tl == 0 || tl >= TG_ID_MAX || (kind != 't' && il == 0) ||
        il >= PDP_RESP_ID_MAX) {
        return 0;
    }
    buf[o++] = (uint8_t)kind;
    pdp_rec_put_le(buf + o, tl, 2);
    memcpy(buf + o + 2, tenant, tl);
    o += 2 + tl;
    if (kind != 't') {
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

/* The item ids a response indexes (pdp_resp_ids_of): borrowed from doc,
 * sorted, each once. */
typedef struct pdp_resp_ids {
    cJSON       *doc[2]; /* the Response, its input items */
    const char **id;
    size_t       n;
} pdp_resp_ids;

static void
pdp_resp_ids_fini(pdp_resp_ids *ids)
{
    cJSON_Delete(ids->doc[0]);
    cJSON_Delete(ids->doc[1]);
    free(ids->id);
    memset(ids, 0, sizeof(*ids));
}

static int
pdp_resp_ids_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* pdp_resp_ids_add adds the "id" of every item of arr (NULL or not an
 * array: none) that is a string of 1 to PDP_RESP_ID_MAX - 1 bytes. */
static tg_err
pdp_resp_ids_add(pdp_resp_ids *ids, const cJSON *arr)
{
    const cJSON *it;
    const char **grown;
    size_t       more = 0;

    if (!cJSON_IsArray(arr)) {
        return TG_OK;
    }
    cJSON_ArrayForEach(it, arr)
    {
        more++;
    }
    if (more == 0) {
        return TG_OK;
    }
    if ((grown = realloc(ids->id, (ids->n + more) * sizeof(*grown))) == NULL) {
        return TG_ENOMEM;
    }
    ids->id = grown;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        size_t       l  = cJSON_IsString(id) ? strlen(id->valuestring) : 0;

        if (l > 0 && l < PDP_RESP_ID_MAX) {
            ids->id[ids->n++] = id->valuestring;
        }
    }
    return TG_OK;
}

/* pdp_resp_ids_of collects what the index holds for a response: the ids
 * of its Response's "output" items and of its input items (a JSON array).
 * Text that does not parse, or has another shape, adds none; TG_ENOMEM is
 * the only error. Owns: *ids (pdp_resp_ids_fini), also after an error. */
static tg_err
pdp_resp_ids_of(pdp_resp_ids *ids, const char *resp, size_t rl,
                const char *items, size_t il)
{
    size_t n = 0;
    tg_err rv;

    memset(ids, 0, sizeof(*ids));
    ids->doc[0] = rl > 0 ? cJSON_ParseWithLength(resp, rl) : NULL;
    ids->doc[1] = il > 0 ? cJSON_ParseWithLength(items, il) : NULL;
    if ((rv = pdp_resp_ids_add(ids, cJSON_GetObjectItemCaseSensitive(
                                        ids->doc[0], "output"))) != TG_OK ||
        (rv = pdp_resp_ids_add(ids, ids->doc[1])) != TG_OK || ids->n == 0) {
        return rv;
    }
    /* An id twice (in the output and the input) is one index record. */
    qsort(ids->id, ids->n, sizeof(*ids->id), pdp_resp_ids_cmp);
    for (size_t i = 0; i < ids->n; i++) {
        if (n == 0 || strcmp(ids->id[n - 1], ids->id[i]) != 0) {
            ids->id[n++] = ids->id[i];
        }
    }
    ids->n = n;
    return TG_OK;
}

/* pdp_resp_ids_of_rec is pdp_resp_ids_of for a stored record's value v
 * (a damaged one: none). v may point into the map: the ids do not. */
static tg_err
pdp_resp_ids_of_rec(pdp_resp_ids *ids, const MDB_val *v)
{
    pdp_rec_in  in = {v->mv_data, v->mv_size, 0, false};
    const void *rd = NULL, *id = NULL;
    size_t      rl = 0, il = 0;
    char        key_id[TG_ID_MAX];

    memset(ids, 0, sizeof(*ids));
    if (pdp_rec_get_uint(&in, 1) != 1) {
        return TG_OK;
    }
    (void)pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, key_id, sizeof(key_id));
    if (!pdp_rec_get_blob(&in, &rd, &rl) || !pdp_rec_get_blob(&in, &id, &il)) {
        return TG_OK;
    }
    return pdp_resp_ids_of(ids, rd, rl, id, il);
}

/* pdp_resp_owner_of reads the response id index record value v names
 * into owner; TG_ECORRUPT or TG_EVERSION (owner "") when it cannot. */
static tg_err
pdp_resp_owner_of(const MDB_val *v, char owner[PDP_RESP_ID_MAX])
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    owner[0] = '\0';
    if (pdp_rec_get_uint(&in, 1) != 1) {
        return in.bad ? TG_ECORRUPT : TG_EVERSION;
    }
    pdp_rec_get_str(&in, owner, PDP_RESP_ID_MAX);
    return in.bad || owner[0] == '\0' ? TG_ECORRUPT : TG_OK;
}

/* pdp_resp_idx_owner reads index record k in txn: *vlen its value's size
 * and owner the response id it names ("" when damaged). */
static int
pdp_resp_idx_owner(pdp_store *st, MDB_txn *txn, MDB_val *k,
                   char owner[PDP_RESP_ID_MAX], size_t *vlen)
{
    MDB_val v;
    int     rc = mdb_get(txn, st->responses, k, &v);

    owner[0] = '\0';
    if (rc == 0) {
        *vlen = v.mv_size;
        (void)pdp_resp_owner_of(&v, owner);
    }
    return rc;
}

/* pdp_resp_idx_val writes the value of an index record naming response
 * id (at most PDP_RESP_ID_MAX bytes long) into buf. */
static MDB_val
pdp_resp_idx_val(uint8_t *buf, const char *id)
{
    size_t  l = strlen(id);
    MDB_val v = {1 + 2 + l, buf};

    buf[0] = 1;
    pdp_rec_put_le(buf + 1, l, 2);
    memcpy(buf + 3, id, l);
    return v;
}

/* pdp_resp_idx_put points every id of ids at response r (the latest put
 * wins an id another response holds too), in txn; *bytes is what that
 * adds to the tenant's totals. Counts without writing when !write. */
static int
pdp_resp_idx_put(pdp_store *st, MDB_txn *txn, const pdp_resp_rec *r,
                 const pdp_resp_ids *ids, bool write, int64_t *bytes)
{
    uint8_t kb[PDP_RESP_KEY_MAX], vb[1 + 2 + PDP_RESP_ID_MAX];
    MDB_val v = pdp_resp_idx_val(vb, r->id);
    char    owner[PDP_RESP_ID_MAX];
    size_t  old = 0;
    int     rc  = 0;

    *bytes = 0;
    for (size_t i = 0; i < ids->n && rc == 0; i++) {
        MDB_val k = {pdp_resp_key(kb, 'i', r->tenant, ids->id[i]), kb};

        rc = pdp_resp_idx_owner(st, txn, &k, owner, &old);
        if (rc == 0 || rc == MDB_NOTFOUND) {
            *bytes += rc == 0 ? (int64_t)v.mv_size - (int64_t)old
                              : (int64_t)(k.mv_size + v.mv_size);
            rc = write ? pdp_store__put(st, txn, st->responses, &k, &v, 0) : 0;
        }
    }
    return rc;
}

/* pdp_resp_idx_del deletes the index records of ids that still name
 * response id (a newer response's are kept), in txn; *bytes is what that
 * takes off the tenant's totals. */
static int
pdp_resp_idx_del(pdp_store *st, MDB_txn *txn, const char *tenant,
                 const char *id, const pdp_resp_ids *ids, int64_t *bytes)
{
    uint8_t kb[PDP_RESP_KEY_MAX];
    char    owner[PDP_RESP_ID_MAX];
    size_t  vlen = 0;
    int     rc   = 0;

    *bytes = 0;
    for (size_t i = 0; i < ids->n && rc == 0; i++) {
        MDB_val k = {pdp_resp_key(kb, 'i', tenant, ids->id[i]), kb};

        rc = pdp_resp_idx_owner(st, txn, &k, owner, &vlen);
        if (rc == MDB_NOTFOUND || (rc == 0 && strcmp(owner, id) != 0)) {
            rc = 0;
            continue;
        }
        if (rc == 0 && (rc = pdp_store__del(st, txn, st->responses, &k)) == 0) {
            *bytes += (int64_t)(k.mv_size + vlen);
        }
    }
    return rc;
}

typedef struct pdp_resp_put_arg {
    const pdp_resp_rec *r;
    int64_t             max;
    bool                over; /* the quota refused it */
    bool                late; /* its deadline passed before it began */
    uint8_t            *val;
    size_t              vlen;
    pdp_resp_ids        ids;
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
    int64_t           b, n, idx;
    int               rc;

    /* Checked under the write lock: a put that passes here commits, and a
     * delete sent after the deadline is ordered after it. */
    if (a->r->deadline_ms > 0 && tg_now_ms() > a->r->deadline_ms) {
        a->late = true;
        return MDB_KEYEXIST; /* nothing written, nothing logged */
    }
    if ((rc = pdp_resp_totals(st, txn, &tk, &b, &n)) != 0 ||
        (rc = pdp_resp_idx_put(st, txn, a->r, &a->ids, false, &idx)) != 0) {
        return rc;
    }
    if (a->max > 0 && b + size + idx > a->max) {
        a->over = true;
        return MDB_KEYEXIST; /* nothing written, nothing logged */
    }
    if ((rc = pdp_store__put(st, txn, st->responses, &k, &v,
                             MDB_NOOVERWRITE)) != 0 ||
        (rc = pdp_resp_idx_put(st, txn, a->r, &a->ids, true, &idx)) != 0) {
        return rc;
    }
    return pdp_resp_totals_add(st, txn, a->r->tenant, size + idx, 1);
}

tg_err
pdp_store_resp_put(pdp_store *st, const pdp_resp_rec *r,
                   int64_t max_tenant_bytes)
{
    uint8_t          kb[PDP_RESP_KEY_MAX];
    size_t           kl = strlen(r->key_id);
    pdp_resp_put_arg a  = {.r = r, .max = max_tenant_bytes};
    tg_err           rv;
    uint8_t         *p;

    if (pdp_resp_key(kb, 'r', r->tenant, r->id) == 0 || kl >= TG_ID_MAX ||
        r->response_len > UINT32_MAX || r->items_len > UINT32_MAX) {
        return TG_EINVAL;
    }
    a.vlen = 1 + 8 + 2 + kl + 4 + r->response_len + 4 + r->items_len;
    if ((rv = pdp_resp_ids_of(&a.ids, r->response, r->response_len, r->items,
                              r->items_len)) != TG_OK ||
        (a.val = p = malloc(a.vlen)) == NULL) {
        pdp_resp_ids_fini(&a.ids);
        return rv != TG_OK ? rv : TG_ENOMEM;
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
    pdp_resp_ids_fini(&a.ids);
    return a.over ? TG_ETOOBIG : a.late ? TG_ETIMEDOUT : rv;
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

/* pdp_resp_read reads the tenant's response named name (by_item: the
 * response the index names for item name, both in one snapshot). */
static tg_err
pdp_resp_read(pdp_store *st, const char *tenant, const char *name, bool by_item,
              pdp_resp_rec *out)
{
    uint8_t           kb[PDP_RESP_KEY_MAX];
    size_t            kl = pdp_resp_key(kb, by_item ? 'i' : 'r', tenant, name);
    pdp_store_reader *rd = NULL;
    MDB_val           v;
    tg_err            rv;

    memset(out, 0, sizeof(*out));
    if (kl == 0) {
        return TG_ENOTFOUND;
    }
    snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
    if (!by_item) {
        snprintf(out->id, sizeof(out->id), "%s", name);
    }
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store__get(rd, st->responses, kb, kl, &v);
        if (rv == TG_OK && by_item &&
            (rv = pdp_resp_owner_of(&v, out->id)) == TG_OK) {
            kl = pdp_resp_key(kb, 'r', tenant, out->id);
            rv = pdp_store__get(rd, st->responses, kb, kl, &v);
        }
        if (rv == TG_OK) {
            rv = pdp_resp_decode(&v, out);
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

tg_err
pdp_store_resp_get(pdp_store *st, const char *tenant, const char *id,
                   pdp_resp_rec *out)
{
    return pdp_resp_read(st, tenant, id, false, out);
}

tg_err
pdp_store_resp_get_item(pdp_store *st, const char *tenant, const char *item_id,
                        pdp_resp_rec *out)
{
    return pdp_resp_read(st, tenant, item_id, true, out);
}

/* pdp_resp_del_at deletes the tenant's response id (its record k, value v,
 * which may point into the map) and the index records that still name it,
 * and takes them off the tenant's totals, in txn. */
static int
pdp_resp_del_at(pdp_store *st, MDB_txn *txn, MDB_val *k, const MDB_val *v,
                const char *tenant, const char *id)
{
    int64_t      size = (int64_t)(k->mv_size + v->mv_size);
    int64_t      idx  = 0;
    pdp_resp_ids ids;
    int          rc;

    /* Read the ids before anything is written: v points into the map. */
    if (pdp_resp_ids_of_rec(&ids, v) != TG_OK) {
        pdp_resp_ids_fini(&ids);
        return ENOMEM;
    }
    if ((rc = pdp_store__del(st, txn, st->responses, k)) == 0) {
        rc = pdp_resp_idx_del(st, txn, tenant, id, &ids, &idx);
    }
    pdp_resp_ids_fini(&ids);
    return rc != 0 ? rc
                   : pdp_resp_totals_add(st, txn, tenant, -(size + idx), -1);
}

/* pdp_resp_del_named deletes the tenant's response id (pdp_resp_del_at)
 * in txn; MDB_NOTFOUND: none. */
static int
pdp_resp_del_named(pdp_store *st, MDB_txn *txn, const char *tenant,
                   const char *id)
{
    uint8_t kb[PDP_RESP_KEY_MAX];
    MDB_val k = {pdp_resp_key(kb, 'r', tenant, id), kb};
    MDB_val v;
    int     rc;

    if (k.mv_size == 0) {
        return MDB_NOTFOUND;
    }
    if ((rc = mdb_get(txn, st->responses, &k, &v)) != 0) {
        return rc;
    }
    return pdp_resp_del_at(st, txn, &k, &v, tenant, id);
}

typedef struct pdp_resp_del_arg {
    const char *tenant;
    const char *id;
} pdp_resp_del_arg;

static int
pdp_resp_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_resp_del_arg *a = arg;

    return pdp_resp_del_named(st, txn, a->tenant, a->id);
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

/* A response's name: what pruning deletes. */
typedef struct pdp_resp_name {
    char tenant[TG_ID_MAX];
    char id[PDP_RESP_ID_MAX];
} pdp_resp_name;

typedef struct pdp_resp_prune_arg {
    int64_t        before;
    uint64_t       n;     /* removed in this txn */
    bool           more;  /* the batch filled: run again */
    pdp_resp_name *batch; /* PDP_RESP_PRUNE_BATCH */
} pdp_resp_prune_arg;

/* pdp_resp_prune_find names in a->batch (*n of them) the responses
 * created before a->before, at most a batch (a->more: there are more). */
static int
pdp_resp_prune_find(pdp_store *st, MDB_txn *txn, pdp_resp_prune_arg *a,
                    size_t *n)
{
    MDB_cursor *cur;
    MDB_val     k = {1, "r"}, v;
    int         rc;

    *n = 0;
    if ((rc = mdb_cursor_open(txn, st->responses, &cur)) != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0 && ((const uint8_t *)k.mv_data)[0] == 'r';
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        pdp_rec_in     in      = {v.mv_data, v.mv_size, 1, false};
        pdp_rec_in     kin     = {k.mv_data, k.mv_size, 1, false};
        int64_t        created = pdp_rec_get_i64(&in);
        pdp_resp_name *nm;

        if (in.bad || created >= a->before) {
            continue;
        }
        if (*n == PDP_RESP_PRUNE_BATCH) {
            a->more = true;
            break;
        }
        nm = &a->batch[*n];
        pdp_rec_get_str(&kin, nm->tenant, sizeof(nm->tenant));
        pdp_rec_get_str(&kin, nm->id, sizeof(nm->id));
        *n += kin.bad ? 0 : 1;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
pdp_resp_prune_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_resp_prune_arg *a = arg;
    size_t              n = 0;
    int                 rc;

    a->n    = 0;
    a->more = false;
    if ((rc = pdp_resp_prune_find(st, txn, a, &n)) != 0) {
        return rc;
    }
    /* Deleted once the walk is over: each takes its item ids' index
     * records with it, which sit elsewhere in the database. */
    for (size_t i = 0; i < n; i++) {
        if ((rc = pdp_resp_del_named(st, txn, a->batch[i].tenant,
                                     a->batch[i].id)) != 0) {
            return rc;
        }
        a->n++;
    }
    return a->n == 0 ? MDB_KEYEXIST : 0;
}

tg_err
pdp_store_resp_prune(pdp_store *st, int64_t before_ms, uint64_t *removed)
{
    pdp_resp_prune_arg a     = {before_ms, 0, false, NULL};
    uint64_t           total = 0;
    tg_err             rv;

    if ((a.batch = malloc(PDP_RESP_PRUNE_BATCH * sizeof(*a.batch))) == NULL) {
        return TG_ENOMEM;
    }
    do {
        rv = pdp_store__write(st, pdp_resp_prune_txn, &a);
        total += rv == TG_OK ? a.n : 0;
    } while (rv == TG_OK && a.more);
    free(a.batch);
    if (removed != NULL) {
        *removed = total;
    }
    return rv == TG_EEXIST ? TG_OK : rv;
}
