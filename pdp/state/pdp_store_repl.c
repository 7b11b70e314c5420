/* pdp_store_repl.c - replication (pdp_repl.h): the change log of the
 * replicated databases (pdp_store.h, "replog"), the blobs it carries
 * ("repl_blobs"), snapshots of them, and applying a primary's snapshot and
 * changes on a replica.
 *
 * The log is numbered in the write txn that changes a record
 * (pdp_store__rput, pdp_store__rdel): LMDB runs one write txn at a time
 * across processes, so the CLI writing the directory directly numbers
 * its entries in the same sequence as the PDP. The head is the last key
 * of replog, or meta "repl_base" when the log is empty (pruned, or a
 * snapshot was just applied). A primary gets its lineage with the first
 * change it logs or the first pdp_repl_state_get, not at open, so opening
 * a directory (even one a newer build refuses) writes nothing for it.
 * Thread-safe like the rest of the store. */
#include "pdp_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pdp_repl.h"
#include "tg_hash.h"
#include "tg_log.h"

#define PDP_REPL_VERSION 1
#define PDP_REPL_KIND_SNAPSHOT 1
#define PDP_REPL_KIND_CHANGES 2
#define PDP_REPL_OP_PUT 1
#define PDP_REPL_OP_DEL 2
#define PDP_REPL_HEAD_LEN (1 + 1 + 8 + 4)  /* version, kind, head, n */
#define PDP_REPL_ENTRY_MIN (1 + 1 + 4 + 4) /* op, db, key len, value len */
#define PDP_REPL_DB_MAX PDP_REPL_BLOBS
#define PDP_REPL_BLOB_VERSION 1

#define PDP_REPL_META_LINEAGE "repl_lineage"
#define PDP_REPL_META_BASE "repl_base"
#define PDP_REPL_META_REPLICA "repl_replica"

/* The store a write txn on this thread was refused on (a replica). */
static _Thread_local pdp_store *pdp_repl_refused_on;

int
pdp_store__repl_open(pdp_store *st, MDB_txn *txn)
{
    int rc = mdb_dbi_open(txn, "replog", MDB_CREATE, &st->replog);

    if (rc == 0) {
        rc = mdb_dbi_open(txn, "repl_blobs", MDB_CREATE, &st->repl_blobs);
    }
    return rc;
}

/* ---- databases and entries ---------------------------------------------- */

uint8_t
pdp_store__repl_db(const pdp_store *st, MDB_dbi dbi)
{
    const MDB_dbi dbis[] = {st->keys,   st->key_ids, st->tenants,
                            st->quotas, st->lists,   st->repl_blobs};

    for (uint8_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        if (dbis[i] == dbi) {
            return (uint8_t)(i + 1);
        }
    }
    return 0;
}

static MDB_dbi
pdp_repl_dbi(const pdp_store *st, uint8_t db)
{
    switch (db) {
    case PDP_REPL_KEYS:
        return st->keys;
    case PDP_REPL_KEY_IDS:
        return st->key_ids;
    case PDP_REPL_TENANTS:
        return st->tenants;
    case PDP_REPL_QUOTAS:
        return st->quotas;
    case PDP_REPL_LISTS:
        return st->lists;
    default:
        return st->repl_blobs;
    }
}

static bool
pdp_repl_blob_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > PDP_REPL_BLOB_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 'a' || s[i] > 'z') {
            return false;
        }
    }
    return true;
}

/* One entry, pointing into the buffer it was read from. raw is the entry
 * without its seq: what replog holds. */
typedef struct pdp_repl_entry {
    uint64_t       seq;
    uint8_t        op;
    uint8_t        db;
    MDB_val        k;
    MDB_val        v;
    const uint8_t *raw;
    size_t         raw_len;
} pdp_repl_entry;

/* pdp_repl_entry_ok: the key is one its database can hold (the lengths
 * `state check` accepts), a delete has no value, a record has at least
 * its version byte. */
static bool
pdp_repl_entry_ok(const pdp_repl_entry *e)
{
    size_t kmin = 1;
    size_t kmax = TG_ID_MAX - 1;

    if (e->op != PDP_REPL_OP_PUT && e->op != PDP_REPL_OP_DEL) {
        return false;
    }
    switch (e->db) {
    case PDP_REPL_KEYS:
        kmin = kmax = TG_SHA256_LEN;
        break;
    case PDP_REPL_KEY_IDS:
    case PDP_REPL_TENANTS:
        break;
    case PDP_REPL_QUOTAS:
        kmin = 2;
        kmax = TG_ID_MAX;
        break;
    case PDP_REPL_LISTS:
        kmax = PDP_LIST_NAME_MAX;
        break;
    case PDP_REPL_BLOBS:
        if (!pdp_repl_blob_name_ok(e->k.mv_data, e->k.mv_size)) {
            return false;
        }
        break;
    default:
        return false;
    }
    if (e->k.mv_size < kmin || e->k.mv_size > kmax) {
        return false;
    }
    if (e->op == PDP_REPL_OP_DEL) {
        return e->v.mv_size == 0;
    }
    if (e->db == PDP_REPL_KEY_IDS) {
        return e->v.mv_size == TG_SHA256_LEN;
    }
    return e->v.mv_size > 0;
}

/* pdp_repl_entry_read reads one entry at in (with its u64 seq when
 * with_seq); false when it is cut or not one. */
static bool
pdp_repl_entry_read(pdp_rec_in *in, bool with_seq, pdp_repl_entry *e)
{
    size_t start;

    e->seq = with_seq ? pdp_rec_get_uint(in, 8) : 0;
    start  = in->off;
    e->op  = (uint8_t)pdp_rec_get_uint(in, 1);
    e->db  = (uint8_t)pdp_rec_get_uint(in, 1);
    if (!pdp_store__blob(in, &e->k) || !pdp_store__blob(in, &e->v)) {
        return false;
    }
    e->raw     = in->p + start;
    e->raw_len = in->off - start;
    return pdp_repl_entry_ok(e);
}


/* pdp_repl_entry_new encodes (op, db, k, v) as replog holds it, on the
 * heap (the caller frees); NULL when out of memory or too long. */
static uint8_t *
pdp_repl_entry_new(uint8_t op, uint8_t db, const MDB_val *k, const MDB_val *v,
                   size_t *len)
{
    size_t   vlen = v != NULL ? v->mv_size : 0;
    uint8_t *p;

    if (k->mv_size > UINT32_MAX || vlen > UINT32_MAX ||
        vlen > SIZE_MAX - PDP_REPL_ENTRY_MIN - k->mv_size) {
        return NULL;
    }
    *len = PDP_REPL_ENTRY_MIN + k->mv_size + vlen;
    if ((p = malloc(*len)) == NULL) {
        return NULL;
    }
    p[0] = op;
    p[1] = db;
    pdp_rec_put_le(p + 2, k->mv_size, 4);
    memcpy(p + 6, k->mv_data, k->mv_size);
    pdp_rec_put_le(p + 6 + k->mv_size, vlen, 4);
    if (vlen > 0) {
        memcpy(p + 10 + k->mv_size, v->mv_data, vlen);
    }
    return p;
}

/* ---- meta: lineage, base, replica ---------------------------------------- */

static int
pdp_repl_meta_get(pdp_store *st, MDB_txn *txn, const char *name, MDB_val *v)
{
    MDB_val k = {strlen(name), (void *)name};

    return mdb_get(txn, st->meta, &k, v);
}

static int
pdp_repl_meta_put(pdp_store *st, MDB_txn *txn, const char *name,
                  const char *value)
{
    MDB_val k = {strlen(name), (void *)name};
    MDB_val v = {strlen(value), (void *)value};

    return pdp_store__put(st, txn, st->meta, &k, &v, 0);
}

static bool
pdp_repl_lineage_ok(const char *s, size_t n)
{
    if (n != PDP_REPL_LINEAGE_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* pdp_repl_lineage_read copies the lineage into out ("" when there is
 * none, or it is not 32 hex). */
static int
pdp_repl_lineage_read(pdp_store *st, MDB_txn *txn,
                      char out[PDP_REPL_LINEAGE_LEN + 1])
{
    MDB_val v;
    int     rc = pdp_repl_meta_get(st, txn, PDP_REPL_META_LINEAGE, &v);

    out[0] = '\0';
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc == 0 && pdp_repl_lineage_ok(v.mv_data, v.mv_size)) {
        memcpy(out, v.mv_data, PDP_REPL_LINEAGE_LEN);
        out[PDP_REPL_LINEAGE_LEN] = '\0';
    }
    return rc;
}

int
pdp_store__repl_lineage_new(pdp_store *st, MDB_txn *txn)
{
    char lineage[PDP_REPL_LINEAGE_LEN + 1];

    if (tg_random_token(lineage, PDP_REPL_LINEAGE_LEN / 2) != TG_OK) {
        return EIO;
    }
    return pdp_repl_meta_put(st, txn, PDP_REPL_META_LINEAGE, lineage);
}

/* pdp_repl_lineage_ensure gives a store without a lineage a new one. */
static int
pdp_repl_lineage_ensure(pdp_store *st, MDB_txn *txn)
{
    char lineage[PDP_REPL_LINEAGE_LEN + 1];
    int  rc = pdp_repl_lineage_read(st, txn, lineage);

    if (rc != 0 || lineage[0] != '\0') {
        return rc;
    }
    return pdp_store__repl_lineage_new(st, txn);
}

static int
pdp_repl_is_replica(pdp_store *st, MDB_txn *txn, bool *replica)
{
    MDB_val v;
    int     rc = pdp_repl_meta_get(st, txn, PDP_REPL_META_REPLICA, &v);

    *replica = rc == 0 && v.mv_size == 1 && *(const char *)v.mv_data == '1';
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* pdp_repl_head reads base (meta, ASCII decimal; absent: 0) and the head:
 * the log's last seq, or base when that is higher (an empty log). */
static int
pdp_repl_head(pdp_store *st, MDB_txn *txn, uint64_t *head, uint64_t *base)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    uint64_t    b  = 0;
    int         rc = pdp_repl_meta_get(st, txn, PDP_REPL_META_BASE, &v);

    if (rc == 0) {
        const char *s = v.mv_data;

        if (v.mv_size == 0 || v.mv_size > 19) {
            return MDB_CORRUPTED;
        }
        for (size_t i = 0; i < v.mv_size; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return MDB_CORRUPTED;
            }
            b = b * 10 + (uint64_t)(s[i] - '0');
        }
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if ((rc = mdb_cursor_open(txn, st->replog, &cur)) != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    *head = rc == 0 && pdp_store__seq_of(&k) > b ? pdp_store__seq_of(&k) : b;
    if (base != NULL) {
        *base = b;
    }
    return 0;
}

static int
pdp_repl_base_put(pdp_store *st, MDB_txn *txn, uint64_t base)
{
    char num[24];

    snprintf(num, sizeof(num), "%llu", (unsigned long long)base);
    return pdp_repl_meta_put(st, txn, PDP_REPL_META_BASE, num);
}

/* ---- the log on the primary -----------------------------------------------
 */

/* pdp_repl_refuse: MDB_KEYEXIST (remembered for pdp_store__refused) when
 * st is a replica: its replicated databases change only by the apply
 * functions, which do not come here. */
static int
pdp_repl_refuse(pdp_store *st, MDB_txn *txn)
{
    bool replica;
    int  rc = pdp_repl_is_replica(st, txn, &replica);

    if (rc == 0 && replica) {
        pdp_repl_refused_on = st;
        return MDB_KEYEXIST;
    }
    return rc;
}

tg_err
pdp_store__refused(pdp_store *st, tg_err rv)
{
    if (pdp_repl_refused_on != st) {
        return rv;
    }
    pdp_repl_refused_on = NULL;
    if (rv != TG_EEXIST) {
        return rv;
    }
    tg_warn("store: refused a change in %s: %s", st->dir, PDP_REPL_REPLICA_MSG);
    return PDP_REPL_EREPLICA;
}

static int
pdp_repl_write(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, uint8_t op, MDB_val *k,
               MDB_val *v, unsigned flags)
{
    uint8_t  db = pdp_store__repl_db(st, dbi);
    uint8_t  key[8];
    uint8_t *ent;
    size_t   len;
    uint64_t head;
    MDB_val  ck;
    MDB_val  cv;
    MDB_val  lk = {sizeof(key), key};
    MDB_val  lv;
    int      rc;

    if (db == 0 || (flags & MDB_RESERVE) != 0) {
        return EINVAL;
    }
    if ((rc = pdp_repl_refuse(st, txn)) != 0 ||
        (rc = pdp_repl_lineage_ensure(st, txn)) != 0 ||
        (rc = pdp_repl_head(st, txn, &head, NULL)) != 0) {
        return rc;
    }
    /* k and v may point into the map, which the writes below may move. */
    if ((ent = pdp_repl_entry_new(op, db, k, v, &len)) == NULL) {
        return ENOMEM;
    }
    ck = (MDB_val){k->mv_size, ent + 6};
    cv =
        (MDB_val){len - PDP_REPL_ENTRY_MIN - k->mv_size, ent + 10 + k->mv_size};
    rc = op == PDP_REPL_OP_PUT ? pdp_store__put(st, txn, dbi, &ck, &cv, flags)
                               : pdp_store__del(st, txn, dbi, &ck);
    if (rc == 0) {
        pdp_store__seq_key(key, head + 1);
        lv = (MDB_val){len, ent};
        rc = pdp_store__put(st, txn, st->replog, &lk, &lv, MDB_APPEND);
    }
    free(ent);
    return rc;
}

int
pdp_store__rput(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k,
                MDB_val *v, unsigned flags)
{
    return pdp_repl_write(st, txn, dbi, PDP_REPL_OP_PUT, k, v, flags);
}

int
pdp_store__rdel(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    return pdp_repl_write(st, txn, dbi, PDP_REPL_OP_DEL, k, NULL, 0);
}

/* ---- state, promote, prune ------------------------------------------------
 */

static tg_err
pdp_repl_state_read(pdp_store *st, pdp_repl_state *out)
{
    pdp_store_reader *rd = NULL;
    tg_err            rv;
    int               rc;

    memset(out, 0, sizeof(*out));
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    if ((rc = pdp_repl_lineage_read(st, rd->txn, out->lineage)) == 0 &&
        (rc = pdp_repl_head(st, rd->txn, &out->head, &out->base)) == 0) {
        rc = pdp_repl_is_replica(st, rd->txn, &out->replica);
    }
    pdp_store_reader_destroy(rd);
    return rc == MDB_CORRUPTED ? TG_ECORRUPT : pdp_store__rc(rc);
}

static int
pdp_repl_lineage_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    (void)arg;
    return pdp_repl_lineage_ensure(st, txn);
}

tg_err
pdp_repl_state_get(pdp_store *st, pdp_repl_state *out)
{
    tg_err rv = pdp_repl_state_read(st, out);

    if (rv != TG_OK || out->lineage[0] != '\0' || out->replica) {
        return rv;
    }
    if ((rv = pdp_store__write(st, pdp_repl_lineage_txn, NULL)) != TG_OK) {
        return rv;
    }
    return pdp_repl_state_read(st, out);
}

static int
pdp_repl_promote_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    MDB_val k = {strlen(PDP_REPL_META_REPLICA), PDP_REPL_META_REPLICA};

    (void)arg;
    return pdp_store__del(st, txn, st->meta, &k); /* NOTFOUND: a primary */
}

tg_err
pdp_repl_promote(pdp_store *st)
{
    tg_err rv = pdp_store__write(st, pdp_repl_promote_txn, NULL);

    return rv == TG_ENOTFOUND ? TG_OK : rv;
}

typedef struct pdp_repl_prune_arg {
    uint64_t keep;
    bool     none; /* nothing to drop */
} pdp_repl_prune_arg;

int
pdp_store__log_prune(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, uint64_t keep,
                     uint64_t *base)
{
    MDB_stat    ms;
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    uint64_t    drop;
    int         rc;

    if ((rc = mdb_stat(txn, dbi, &ms)) != 0) {
        return rc;
    }
    if (ms.ms_entries <= keep) {
        return MDB_KEYEXIST; /* nothing to commit */
    }
    drop = ms.ms_entries - keep;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && drop > 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST), drop--) {
        *base = pdp_store__seq_of(&k);
        if ((rc = pdp_store__cursor_del(st, cur)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
pdp_repl_prune_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_repl_prune_arg *a    = arg;
    uint64_t            base = 0;
    uint64_t            head;
    int                 rc;

    a->none = false;
    if ((rc = pdp_repl_head(st, txn, &head, &base)) != 0) {
        return rc;
    }
    if ((rc = pdp_store__log_prune(st, txn, st->replog, a->keep, &base)) !=
        0) {
        a->none = rc == MDB_KEYEXIST;
        return rc;
    }
    return pdp_repl_base_put(st, txn, base);
}

tg_err
pdp_repl_prune(pdp_store *st, uint64_t keep)
{
    pdp_repl_prune_arg a  = {keep, false};
    tg_err             rv = pdp_store__write(st, pdp_repl_prune_txn, &a);

    return rv == TG_EEXIST && a.none ? TG_OK : rv;
}

/* ---- blobs -------------------------------------------------------------- */

typedef struct pdp_repl_blob_arg {
    const char *name;
    const void *data;
    size_t      len;
    bool        same; /* the stored content is byte-equal */
} pdp_repl_blob_arg;

static int
pdp_repl_blob_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_repl_blob_arg *a = arg;
    MDB_val            k = {strlen(a->name), (void *)a->name};
    MDB_val            v;
    uint8_t           *rec;
    int                rc;

    a->same = false;
    rc      = mdb_get(txn, st->repl_blobs, &k, &v);
    if (rc == 0 && v.mv_size == a->len + 1 &&
        *(const uint8_t *)v.mv_data == PDP_REPL_BLOB_VERSION &&
        (a->len == 0 ||
         memcmp((const uint8_t *)v.mv_data + 1, a->data, a->len) == 0)) {
        a->same = true;
        return MDB_KEYEXIST; /* nothing to commit, nothing to log */
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    if ((rec = malloc(a->len + 1)) == NULL) {
        return ENOMEM;
    }
    rec[0] = PDP_REPL_BLOB_VERSION;
    if (a->len > 0) {
        memcpy(rec + 1, a->data, a->len);
    }
    v  = (MDB_val){a->len + 1, rec};
    rc = pdp_store__rput(st, txn, st->repl_blobs, &k, &v, 0);
    free(rec);
    return rc;
}

tg_err
pdp_repl_blob_set(pdp_store *st, const char *name, const void *data, size_t len)
{
    pdp_repl_blob_arg a = {name, data, len, false};
    tg_err            rv;

    if (!pdp_repl_blob_name_ok(name, strlen(name)) || len >= UINT32_MAX - 1 ||
        (data == NULL && len > 0)) {
        return TG_EINVAL;
    }
    rv = pdp_store__refused(st, pdp_store__write(st, pdp_repl_blob_txn, &a));
    return rv == TG_EEXIST && a.same ? TG_OK : rv;
}

tg_err
pdp_repl_blob_get(pdp_store *st, const char *name, tg_buf *out)
{
    pdp_store_reader *rd = NULL;
    MDB_val           v;
    tg_err            rv;

    tg_buf_reset(out);
    if (!pdp_repl_blob_name_ok(name, strlen(name))) {
        return TG_ENOTFOUND;
    }
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    rv = pdp_store__get(rd, st->repl_blobs, name, strlen(name), &v);
    if (rv == TG_OK) {
        if (v.mv_size == 0 ||
            *(const uint8_t *)v.mv_data != PDP_REPL_BLOB_VERSION) {
            rv = v.mv_size == 0 ? TG_ECORRUPT : TG_EVERSION;
        } else {
            rv = tg_buf_append(out, (const uint8_t *)v.mv_data + 1,
                               v.mv_size - 1);
        }
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

/* ---- the primary side: snapshot and changes --------------------------------
 */

/* pdp_repl_head_put appends a buffer's head; the entry count (at
 * start + 10) is filled in by pdp_repl_count_put. */
static tg_err
pdp_repl_head_put(tg_buf *out, uint8_t kind, uint64_t head)
{
    uint8_t h[PDP_REPL_HEAD_LEN] = {PDP_REPL_VERSION, kind};

    pdp_rec_put_le(h + 2, head, 8);
    return tg_buf_append(out, h, sizeof(h));
}

static void
pdp_repl_count_put(tg_buf *out, size_t start, uint32_t n)
{
    pdp_rec_put_le((uint8_t *)out->data + start + 10, n, 4);
}

/* pdp_repl_undo takes out back to its length before a failed append. */
static void
pdp_repl_undo(tg_buf *out, size_t start)
{
    out->len = start;
    if (out->data != NULL) {
        out->data[start] = '\0';
    }
}

/* pdp_repl_snap_db appends every record of db as a snapshot entry. */
static tg_err
pdp_repl_snap_db(pdp_store *st, MDB_txn *txn, uint8_t db, tg_buf *out,
                 uint32_t *n)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    tg_err      rv = TG_OK;
    int         rc = mdb_cursor_open(txn, pdp_repl_dbi(st, db), &cur);

    if (rc != 0) {
        return pdp_store__rc(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && rv == TG_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t  seq[8] = {0};
        size_t   len;
        uint8_t *ent = pdp_repl_entry_new(PDP_REPL_OP_PUT, db, &k, &v, &len);

        if (ent == NULL || *n == UINT32_MAX) {
            free(ent);
            rv = ent == NULL ? TG_ENOMEM : TG_ETOOBIG;
            break;
        }
        if ((rv = tg_buf_append(out, seq, sizeof(seq))) == TG_OK) {
            rv = tg_buf_append(out, ent, len);
        }
        free(ent);
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rv == TG_OK && rc != MDB_NOTFOUND) {
        rv = pdp_store__rc(rc);
    }
    return rv;
}

tg_err
pdp_repl_snapshot(pdp_store *st, tg_buf *out, uint64_t *head)
{
    pdp_store_reader *rd    = NULL;
    size_t            start = out->len;
    uint32_t          n     = 0;
    tg_err            rv;
    int               rc;

    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    if ((rc = pdp_repl_head(st, rd->txn, head, NULL)) != 0) {
        rv = rc == MDB_CORRUPTED ? TG_ECORRUPT : pdp_store__rc(rc);
        goto out;
    }
    if ((rv = pdp_repl_head_put(out, PDP_REPL_KIND_SNAPSHOT, *head)) != TG_OK) {
        goto out;
    }
    for (uint8_t db = 1; db <= PDP_REPL_DB_MAX && rv == TG_OK; db++) {
        rv = pdp_repl_snap_db(st, rd->txn, db, out, &n);
    }
    if (rv == TG_OK) {
        pdp_repl_count_put(out, start, n);
    }
out:
    pdp_store_reader_destroy(rd);
    if (rv != TG_OK) {
        pdp_repl_undo(out, start);
    }
    return rv;
}

/* pdp_repl_changes_walk appends the log entries after from. */
static tg_err
pdp_repl_changes_walk(pdp_store *st, MDB_txn *txn, uint64_t from,
                      size_t max_bytes, tg_buf *out, size_t start,
                      uint64_t *last)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    uint8_t     kb[8];
    uint32_t    n  = 0;
    tg_err      rv = TG_OK;
    int         rc = mdb_cursor_open(txn, st->replog, &cur);

    if (rc != 0) {
        return pdp_store__rc(rc);
    }
    pdp_store__seq_key(kb, from + 1);
    k = (MDB_val){sizeof(kb), kb};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        pdp_rec_in     in  = {v.mv_data, v.mv_size, 0, false};
        uint64_t       seq = pdp_store__seq_of(&k);
        uint8_t        sb[8];
        pdp_repl_entry e;

        if (n > 0 && (out->len - start) + 8 + v.mv_size > max_bytes) {
            break;
        }
        if (seq != from + 1 + n || !pdp_repl_entry_read(&in, false, &e) ||
            in.off != in.len || n == UINT32_MAX) {
            tg_error("store: replication log entry %llu is damaged",
                     (unsigned long long)seq);
            rv = TG_ECORRUPT;
            break;
        }
        pdp_rec_put_le(sb, seq, 8);
        if ((rv = tg_buf_append(out, sb, sizeof(sb))) != TG_OK ||
            (rv = tg_buf_append(out, v.mv_data, v.mv_size)) != TG_OK) {
            break;
        }
        n++;
        *last = seq;
    }
    mdb_cursor_close(cur);
    if (rv == TG_OK && rc != 0 && rc != MDB_NOTFOUND) {
        rv = pdp_store__rc(rc);
    }
    if (rv == TG_OK) {
        pdp_repl_count_put(out, start, n);
    }
    return rv;
}

tg_err
pdp_repl_changes(pdp_store *st, uint64_t from, size_t max_bytes, tg_buf *out,
                 uint64_t *last, uint64_t *head)
{
    pdp_store_reader *rd    = NULL;
    size_t            start = out->len;
    uint64_t          base;
    tg_err            rv;
    int               rc;

    *last = from;
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    if ((rc = pdp_repl_head(st, rd->txn, head, &base)) != 0) {
        rv = rc == MDB_CORRUPTED ? TG_ECORRUPT : pdp_store__rc(rc);
        goto out;
    }
    if (from < base || from > *head) {
        rv = PDP_REPL_ESNAPSHOT;
        goto out;
    }
    if ((rv = pdp_repl_head_put(out, PDP_REPL_KIND_CHANGES, *head)) == TG_OK) {
        rv = pdp_repl_changes_walk(st, rd->txn, from, max_bytes, out, start,
                                   last);
    }
out:
    pdp_store_reader_destroy(rd);
    if (rv != TG_OK) {
        pdp_repl_undo(out, start);
        *last = from;
    }
    return rv;
}

/* ---- the replica side: apply ----------------------------------------------
 */

typedef struct pdp_repl_apply_arg {
    const char    *lineage;
    const uint8_t *data;
    size_t         len;
    uint8_t        kind;
    uint64_t       head;  /* the buffer's */
    uint32_t       n;     /* entries */
    uint64_t       first; /* changes: the first entry's seq */
    uint64_t       count[PDP_REPL_DB_MAX + 1]; /* entries per database */
    uint32_t       changed;
    bool           refused; /* another lineage, a gap: TG_EPROTO */
} pdp_repl_apply_arg;

/* pdp_repl_parse reads the buffer's head into a and positions in at its
 * first entry. */
static tg_err
pdp_repl_parse(pdp_repl_apply_arg *a, pdp_rec_in *in)
{
    *in = (pdp_rec_in){a->data, a->len, 0, false};
    if (a->len == 0) {
        return TG_EPROTO;
    }
    if (pdp_rec_get_uint(in, 1) != PDP_REPL_VERSION) {
        return TG_EVERSION;
    }
    if (pdp_rec_get_uint(in, 1) != a->kind) {
        return TG_EPROTO;
    }
    a->head = pdp_rec_get_uint(in, 8);
    a->n    = (uint32_t)pdp_rec_get_uint(in, 4);
    return in->bad ? TG_EPROTO : TG_OK;
}

/* pdp_repl_validate reads the whole buffer before anything is written:
 * every entry whole and well formed, a snapshot's all puts without a seq,
 * changes numbered one after the other up to the buffer's head, nothing
 * after the last. */
static tg_err
pdp_repl_validate(pdp_repl_apply_arg *a)
{
    bool           snap = a->kind == PDP_REPL_KIND_SNAPSHOT;
    pdp_rec_in     in;
    pdp_repl_entry e;
    tg_err         rv = pdp_repl_parse(a, &in);

    memset(a->count, 0, sizeof(a->count));
    if (rv != TG_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (!pdp_repl_entry_read(&in, true, &e)) {
            return TG_EPROTO;
        }
        if (snap && (e.seq != 0 || e.op != PDP_REPL_OP_PUT)) {
            return TG_EPROTO;
        }
        if (!snap && (e.seq == 0 || e.seq > a->head ||
                      (i > 0 && e.seq != a->first + i))) {
            return TG_EPROTO;
        }
        if (i == 0) {
            a->first = e.seq;
        }
        a->count[e.db]++;
    }
    return in.off == in.len ? TG_OK : TG_EPROTO;
}

/* pdp_repl_snap_diff sets a->changed to the databases whose content the
 * snapshot changes: another number of records, or one not the same. */
static int
pdp_repl_snap_diff(pdp_store *st, MDB_txn *txn, pdp_repl_apply_arg *a)
{
    pdp_rec_in     in;
    pdp_repl_entry e;
    MDB_stat       ms;
    MDB_val        old;
    int            rc;

    for (uint8_t db = 1; db <= PDP_REPL_DB_MAX; db++) {
        if ((rc = mdb_stat(txn, pdp_repl_dbi(st, db), &ms)) != 0) {
            return rc;
        }
        if (ms.ms_entries != a->count[db]) {
            a->changed |= 1u << db;
        }
    }
    (void)pdp_repl_parse(a, &in);
    for (uint32_t i = 0; i < a->n; i++) {
        (void)pdp_repl_entry_read(&in, true, &e);
        if ((a->changed & (1u << e.db)) != 0) {
            continue;
        }
        rc = mdb_get(txn, pdp_repl_dbi(st, e.db), &e.k, &old);
        if (rc == MDB_NOTFOUND ||
            (rc == 0 && (old.mv_size != e.v.mv_size ||
                         memcmp(old.mv_data, e.v.mv_data, old.mv_size) != 0))) {
            a->changed |= 1u << e.db;
        } else if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* pdp_repl_follow: meta says st follows lineage from base. */
static int
pdp_repl_follow(pdp_store *st, MDB_txn *txn, const char *lineage, uint64_t base)
{
    int rc;

    if ((rc = pdp_repl_meta_put(st, txn, PDP_REPL_META_LINEAGE, lineage)) !=
            0 ||
        (rc = pdp_repl_meta_put(st, txn, PDP_REPL_META_REPLICA, "1")) != 0) {
        return rc;
    }
    return pdp_repl_base_put(st, txn, base);
}

static int
pdp_repl_snap_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_repl_apply_arg *a = arg;
    pdp_rec_in          in;
    pdp_repl_entry      e;
    int                 rc;

    a->changed = 0;
    if ((rc = pdp_repl_snap_diff(st, txn, a)) != 0) {
        return rc;
    }
    for (uint8_t db = 1; db <= PDP_REPL_DB_MAX; db++) {
        if ((a->changed & (1u << db)) != 0 &&
            (rc = pdp_store__drop(st, txn, pdp_repl_dbi(st, db))) != 0) {
            return rc;
        }
    }
    (void)pdp_repl_parse(a, &in);
    for (uint32_t i = 0; i < a->n; i++) {
        (void)pdp_repl_entry_read(&in, true, &e);
        if ((a->changed & (1u << e.db)) != 0 &&
            (rc = pdp_store__put(st, txn, pdp_repl_dbi(st, e.db), &e.k, &e.v,
                                 0)) != 0) {
            return rc;
        }
    }
    if ((rc = pdp_store__drop(st, txn, st->replog)) != 0 ||
        (rc = pdp_repl_follow(st, txn, a->lineage, a->head)) != 0) {
        return rc;
    }
    if ((a->changed & (1u << PDP_REPL_LISTS)) != 0) {
        rc = pdp_store__lists_gen_raise(st, txn);
    }
    return rc;
}

/* pdp_repl_changes_ok: st is a replica of a->lineage whose head is just
 * before the first entry. */
static int
pdp_repl_changes_ok(pdp_store *st, MDB_txn *txn, pdp_repl_apply_arg *a)
{
    char     lineage[PDP_REPL_LINEAGE_LEN + 1];
    bool     replica;
    uint64_t head;
    int      rc;

    if ((rc = pdp_repl_is_replica(st, txn, &replica)) != 0 ||
        (rc = pdp_repl_lineage_read(st, txn, lineage)) != 0 ||
        (rc = pdp_repl_head(st, txn, &head, NULL)) != 0) {
        return rc;
    }
    if (!replica || strcmp(lineage, a->lineage) != 0 ||
        (a->n > 0 && a->first != head + 1)) {
        a->refused = true;
        return MDB_KEYEXIST;
    }
    return a->n == 0 ? MDB_KEYEXIST : 0; /* none: nothing to commit */
}

static int
pdp_repl_changes_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_repl_apply_arg *a = arg;
    pdp_rec_in          in;
    pdp_repl_entry      e;
    uint8_t             kb[8];
    MDB_val             lk = {sizeof(kb), kb};
    MDB_val             lv;
    int                 rc;

    a->changed = 0;
    a->refused = false;
    if ((rc = pdp_repl_changes_ok(st, txn, a)) != 0) {
        return rc;
    }
    (void)pdp_repl_parse(a, &in);
    for (uint32_t i = 0; i < a->n; i++) {
        MDB_dbi dbi;

        (void)pdp_repl_entry_read(&in, true, &e);
        dbi = pdp_repl_dbi(st, e.db);
        rc  = e.op == PDP_REPL_OP_PUT
                  ? pdp_store__put(st, txn, dbi, &e.k, &e.v, 0)
                  : pdp_store__del(st, txn, dbi, &e.k);
        if (rc == 0) {
            a->changed |= 1u << e.db;
        } else if (rc != MDB_NOTFOUND) {
            return rc;
        }
        pdp_store__seq_key(kb, e.seq);
        lv = (MDB_val){e.raw_len, (void *)e.raw};
        if ((rc = pdp_store__put(st, txn, st->replog, &lk, &lv, MDB_APPEND)) !=
            0) {
            return rc;
        }
    }
    if ((a->changed & (1u << PDP_REPL_LISTS)) != 0) {
        return pdp_store__lists_gen_raise(st, txn);
    }
    return 0;
}

static tg_err
pdp_repl_apply(pdp_store *st, pdp_repl_apply_arg *a, uint32_t *changed_out)
{
    tg_err rv;

    if (changed_out != NULL) {
        *changed_out = 0;
    }
    if (a->lineage == NULL ||
        !pdp_repl_lineage_ok(a->lineage, strlen(a->lineage)) ||
        (a->data == NULL && a->len > 0)) {
        return TG_EINVAL;
    }
    if ((rv = pdp_repl_validate(a)) != TG_OK) {
        return rv;
    }
    rv = pdp_store__write(st,
                          a->kind == PDP_REPL_KIND_SNAPSHOT
                              ? pdp_repl_snap_txn
                              : pdp_repl_changes_txn,
                          a);
    if (rv == TG_EEXIST) {
        rv = a->refused ? TG_EPROTO : TG_OK; /* refused, or no entries */
    }
    if (rv == TG_OK && changed_out != NULL) {
        *changed_out = a->changed;
    }
    return rv;
}

tg_err
pdp_repl_apply_snapshot(pdp_store *st, const char *lineage, const void *data,
                        size_t len, uint32_t *changed_out)
{
    pdp_repl_apply_arg a = {.lineage = lineage,
                            .data    = data,
                            .len     = len,
                            .kind    = PDP_REPL_KIND_SNAPSHOT};

    return pdp_repl_apply(st, &a, changed_out);
}

tg_err
pdp_repl_apply_changes(pdp_store *st, const char *lineage, const void *data,
                       size_t len, uint32_t *changed_out)
{
    pdp_repl_apply_arg a = {.lineage = lineage,
                            .data    = data,
                            .len     = len,
                            .kind    = PDP_REPL_KIND_CHANGES};

    return pdp_repl_apply(st, &a, changed_out);
}
