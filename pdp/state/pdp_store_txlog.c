/* pdp_store_txlog.c - the transaction log of a central PDP's store
 * (pdp_txlog.h, "txlog"): the logging wrappers every write of the store
 * goes through, the changes an active store serves, applying them on a
 * standby, the copy a standby starts from, promotion and the handshake.
 *
 * Logging: pdp_store__txlog_begin reads meta "ha_role" at the start of
 * every write txn (pdp_store__write_opt); when it is "active" each
 * pdp_store__put, _del, _cursor_del and _drop appends its entry in the
 * same txn. The next seq is read once per txn (the last txlog key, or
 * txlog_base) and counted on in the struct, so the hot path costs one
 * MDB_APPEND put per record written. LMDB runs one write txn at a time
 * across processes, so the command line writing the directory directly
 * numbers its entries in the same sequence as the PDP. The copy a
 * standby starts from is pdp_store_txcopy.c. Thread-safe like the rest of
 * the store. */
#include "pdp_store_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "pdp_txlog.h"
#include "tg_hash.h"
#include "tg_log.h"

#define PDP_TXLOG_VERSION 1
#define PDP_TXLOG_OP_PUT 1
#define PDP_TXLOG_OP_DEL 2
#define PDP_TXLOG_OP_DROP 3
#define PDP_TXLOG_FLAG_FIRST 1
#define PDP_TXLOG_ENTRY_MIN (1 + 1 + 1 + 4 + 4) /* flags, op, db, 2 lengths */
#define PDP_TXLOG_HEAD_LEN (1 + 8 + 4)          /* version, head, n */
#define PDP_TXLOG_KEY_MAX 511                   /* LMDB's default */

#define PDP_TXLOG_META_ROLE "ha_role"
#define PDP_TXLOG_META_EPOCH "ha_epoch"
#define PDP_TXLOG_META_PROMOTED "ha_promoted"
#define PDP_TXLOG_META_REPLICA "repl_replica" /* pdp_store_repl.c's */
#define PDP_TXLOG_META_PROMOTE "ha_promote"
#define PDP_TXLOG_META_SAID "ha_said"
#define PDP_TXLOG_META_LINEAGE "txlog_lineage"
#define PDP_TXLOG_META_BASE "txlog_base"

/* The store's handle of each pdp_txlog_db (pdp_txlog.h holds the numbers:
 * append-only). */
static const size_t pdp_txlog_fields[PDP_TXLOG_DB_MAX + 1] = {
    [PDP_TXLOG_META]           = offsetof(pdp_store, meta),
    [PDP_TXLOG_KEYS]           = offsetof(pdp_store, keys),
    [PDP_TXLOG_KEY_IDS]        = offsetof(pdp_store, key_ids),
    [PDP_TXLOG_USAGE]          = offsetof(pdp_store, usage),
    [PDP_TXLOG_TOTALS]         = offsetof(pdp_store, totals),
    [PDP_TXLOG_TENANTS]        = offsetof(pdp_store, tenants),
    [PDP_TXLOG_POLICY_HISTORY] = offsetof(pdp_store, history),
    [PDP_TXLOG_BUDGETS]        = offsetof(pdp_store, budgets),
    [PDP_TXLOG_ALERTS_FIRED]   = offsetof(pdp_store, alerts),
    [PDP_TXLOG_QUOTAS]         = offsetof(pdp_store, quotas),
    [PDP_TXLOG_ADMIN_TOKENS]   = offsetof(pdp_store, tokens),
    [PDP_TXLOG_ADMIN_AUDIT]    = offsetof(pdp_store, audit),
    [PDP_TXLOG_LIMITS_STATE]   = offsetof(pdp_store, limits),
    [PDP_TXLOG_RESERVATIONS]   = offsetof(pdp_store, reservations),
    [PDP_TXLOG_DECISIONS]      = offsetof(pdp_store, decisions),
    [PDP_TXLOG_DECISION_IDS]   = offsetof(pdp_store, decision_ids),
    [PDP_TXLOG_CHECKPOINTS]    = offsetof(pdp_store, checkpoints),
    [PDP_TXLOG_BUNDLE_FILES]   = offsetof(pdp_store, bundle_files),
    [PDP_TXLOG_LISTS]          = offsetof(pdp_store, lists),
    [PDP_TXLOG_LIST_HISTORY]   = offsetof(pdp_store, list_history),
    [PDP_TXLOG_REPLOG]         = offsetof(pdp_store, replog),
    [PDP_TXLOG_REPL_BLOBS]     = offsetof(pdp_store, repl_blobs),
    [PDP_TXLOG_FORWARD]        = offsetof(pdp_store, forward),
    [PDP_TXLOG_LEASES]         = offsetof(pdp_store, leases),
    [PDP_TXLOG_RESPONSES]      = offsetof(pdp_store, responses),
};

static MDB_dbi
pdp_txlog_dbi(const pdp_store *st, uint8_t db)
{
    return *(const MDB_dbi *)((const char *)st + pdp_txlog_fields[db]);
}

/* pdp_txlog_own_key: meta key k describes this copy (never logged). */
static bool
pdp_txlog_own_key(const MDB_val *k)
{
    return (k->mv_size >= 3 && memcmp(k->mv_data, "ha_", 3) == 0) ||
           (k->mv_size >= 6 && memcmp(k->mv_data, "txlog_", 6) == 0);
}

/* pdp_txlog_db_of is the pdp_txlog_db a write of dbi (key k, NULL for a
 * drop) logs under; 0 when it is not logged. */
static uint8_t
pdp_txlog_db_of(const pdp_store *st, MDB_dbi dbi, const MDB_val *k)
{
    uint8_t db = dbi < sizeof(st->txl_db) ? st->txl_db[dbi] : 0;

    if (db == PDP_TXLOG_META && k != NULL && pdp_txlog_own_key(k)) {
        return 0;
    }
    return db;
}


/* ---- entries ------------------------------------------------------------- */

/* One entry, pointing into the bytes it was read from; raw is the entry as
 * txlog holds it (without its seq). */
typedef struct pdp_txlog_entry {
    uint64_t       seq;
    uint8_t        flags;
    uint8_t        op;
    uint8_t        db;
    MDB_val        k;
    MDB_val        v;
    const uint8_t *raw;
    size_t         raw_len;
} pdp_txlog_entry;

/* pdp_txlog_entry_ok: what the active writes: a known op and database, a
 * key LMDB can hold (none for a drop), no value for a del or drop, never
 * a meta key of this copy's own, never a drop of meta. */
static bool
pdp_txlog_entry_ok(const pdp_txlog_entry *e)
{
    if ((e->flags & ~PDP_TXLOG_FLAG_FIRST) != 0 || e->db < 1 ||
        e->db > PDP_TXLOG_DB_MAX) {
        return false;
    }
    switch (e->op) {
    case PDP_TXLOG_OP_PUT:
    case PDP_TXLOG_OP_DEL:
        if (e->k.mv_size < 1 || e->k.mv_size > PDP_TXLOG_KEY_MAX ||
            (e->op == PDP_TXLOG_OP_DEL && e->v.mv_size != 0)) {
            return false;
        }
        return e->db != PDP_TXLOG_META || !pdp_txlog_own_key(&e->k);
    case PDP_TXLOG_OP_DROP:
        return e->k.mv_size == 0 && e->v.mv_size == 0 &&
               e->db != PDP_TXLOG_META;
    default:
        return false;
    }
}

/* pdp_txlog_entry_read reads one entry at in (after its u64 seq when
 * with_seq); false when it is cut or not one. */
static bool
pdp_txlog_entry_read(pdp_rec_in *in, bool with_seq, pdp_txlog_entry *e)
{
    size_t start;

    e->seq   = with_seq ? pdp_rec_get_uint(in, 8) : 0;
    start    = in->off;
    e->flags = (uint8_t)pdp_rec_get_uint(in, 1);
    e->op    = (uint8_t)pdp_rec_get_uint(in, 1);
    e->db    = (uint8_t)pdp_rec_get_uint(in, 1);
    if (!pdp_store__blob(in, &e->k) || !pdp_store__blob(in, &e->v)) {
        return false;
    }
    e->raw     = in->p + start;
    e->raw_len = in->off - start;
    return pdp_txlog_entry_ok(e);
}

/* pdp_txlog_entry_make encodes (op, db, k, v) into st->txl_ent (its flags
 * byte is set when it is appended) and points ck, cv at its copies of k
 * and v. */
static int
pdp_txlog_entry_make(pdp_store *st, uint8_t op, uint8_t db, const MDB_val *k,
                     const MDB_val *v, MDB_val *ck, MDB_val *cv)
{
    size_t  klen     = k != NULL ? k->mv_size : 0;
    size_t  vlen     = v != NULL ? v->mv_size : 0;
    uint8_t h[3 + 4] = {0, op, db};
    uint8_t l[4];
    tg_buf *b = &st->txl_ent;

    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
        return EINVAL;
    }
    tg_buf_reset(b);
    pdp_rec_put_le(h + 3, klen, 4);
    pdp_rec_put_le(l, vlen, 4);
    tg_buf_add(b, h, sizeof(h));
    tg_buf_add(b, klen > 0 ? k->mv_data : "", klen);
    tg_buf_add(b, l, sizeof(l));
    tg_buf_add(b, vlen > 0 ? v->mv_data : "", vlen);
    if (tg_buf_error(b) != TG_OK) {
        return ENOMEM;
    }
    *ck = (MDB_val){klen, b->data + sizeof(h)};
    *cv = (MDB_val){vlen, b->data + sizeof(h) + klen + sizeof(l)};
    return 0;
}

/* ---- meta and the head --------------------------------------------------- */

static int
pdp_txlog_meta_get(MDB_txn *txn, MDB_dbi meta, const char *name, MDB_val *v)
{
    MDB_val k = {strlen(name), (void *)name};

    return mdb_get(txn, meta, &k, v);
}

/* Writes of this copy's own meta keys: never logged, so not through the
 * wrappers. A del of a missing key is done. */
static int
pdp_txlog_meta_put(pdp_store *st, MDB_txn *txn, const char *name,
                   const char *value)
{
    MDB_val k = {strlen(name), (void *)name};
    MDB_val v = {strlen(value), (void *)value};

    return mdb_put(txn, st->meta, &k, &v, 0);
}

static int
pdp_txlog_meta_del(pdp_store *st, MDB_txn *txn, const char *name)
{
    MDB_val k  = {strlen(name), (void *)name};
    int     rc = mdb_del(txn, st->meta, &k, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
pdp_txlog_meta_num_put(pdp_store *st, MDB_txn *txn, const char *name,
                       uint64_t n)
{
    char num[24];

    snprintf(num, sizeof(num), "%llu", (unsigned long long)n);
    return pdp_txlog_meta_put(st, txn, name, num);
}

/* pdp_txlog_meta_num reads meta name as ASCII decimal (absent: 0);
 * MDB_CORRUPTED when it is not one. */
static int
pdp_txlog_meta_num(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t *n)
{
    MDB_val v;
    int     rc = pdp_txlog_meta_get(txn, meta, name, &v);

    *n = 0;
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (v.mv_size == 0 || v.mv_size > 19) {
        return MDB_CORRUPTED;
    }
    for (size_t i = 0; i < v.mv_size; i++) {
        char c = ((const char *)v.mv_data)[i];
        if (c < '0' || c > '9') {
            return MDB_CORRUPTED;
        }
        *n = *n * 10 + (uint64_t)(c - '0');
    }
    return 0;
}

/* pdp_txlog_role_read: meta "ha_role" as a pdp_ha_role; MDB_CORRUPTED
 * for another value. */
static int
pdp_txlog_role_read(MDB_txn *txn, MDB_dbi meta, pdp_ha_role *role)
{
    MDB_val v;
    int     rc = pdp_txlog_meta_get(txn, meta, PDP_TXLOG_META_ROLE, &v);

    *role = PDP_HA_NONE;
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    if (v.mv_size == 6 && memcmp(v.mv_data, "active", 6) == 0) {
        *role = PDP_HA_ACTIVE;
    } else if (v.mv_size == 7 && memcmp(v.mv_data, "standby", 7) == 0) {
        *role = PDP_HA_STANDBY;
    } else {
        return MDB_CORRUPTED;
    }
    return 0;
}

int
pdp_store__txlog_head_in(MDB_txn *txn, MDB_dbi txlog, MDB_dbi meta,
                         uint64_t *head, uint64_t *base)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    uint64_t    b;
    int         rc = pdp_txlog_meta_num(txn, meta, PDP_TXLOG_META_BASE, &b);

    if (rc != 0 || (rc = mdb_cursor_open(txn, txlog, &cur)) != 0) {
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

static void
pdp_txlog_publish(pdp_store *st, uint64_t head)
{
    uint64_t seen = atomic_load(&st->txl_head);

    while (head > seen &&
           !atomic_compare_exchange_weak(&st->txl_head, &seen, head)) {
    }
}

/* ---- the hook and the wrappers ------------------------------------------- */

int
pdp_store__txlog_open(pdp_store *st, MDB_txn *txn)
{
    pdp_ha_role role;
    uint64_t    head = 0;
    int         rc   = mdb_dbi_open(txn, "txlog", MDB_CREATE, &st->txlog);

    if (rc != 0) {
        return rc;
    }
    memset(st->txl_db, 0, sizeof(st->txl_db));
    for (uint8_t db = 1; db <= PDP_TXLOG_DB_MAX; db++) {
        MDB_dbi dbi = pdp_txlog_dbi(st, db);
        if (dbi >= sizeof(st->txl_db)) {
            return EINVAL;
        }
        st->txl_db[dbi] = db;
    }
    st->txl_next = st->txl_last = 0;
    /* A role this build does not know logs nothing (state check says). */
    rc             = pdp_txlog_role_read(txn, st->meta, &role);
    st->txl_active = rc == 0 && role == PDP_HA_ACTIVE;
    if (rc != 0 && rc != MDB_CORRUPTED) {
        return rc;
    }
    rc = pdp_store__txlog_head_in(txn, st->txlog, st->meta, &head, NULL);
    if (rc != 0 && rc != MDB_CORRUPTED) {
        return rc; /* a damaged base: the first logged write says */
    }
    pdp_txlog_publish(st, head);
    return 0;
}

int
pdp_store__txlog_begin(pdp_store *st, MDB_txn *txn)
{
    pdp_ha_role role = PDP_HA_NONE;
    int         rc   = 0;

    st->txl_next = st->txl_last = 0;
    if (st->txl_open) {
        rc = pdp_txlog_role_read(txn, st->meta, &role);
    }
    st->txl_active = role == PDP_HA_ACTIVE;
    return rc == MDB_CORRUPTED ? 0 : rc;
}

void
pdp_store__txlog_committed(pdp_store *st, uint64_t last)
{
    if (last != 0) {
        pdp_txlog_publish(st, last);
    }
}

/* pdp_txlog_append appends st->txl_ent as the txn's next entry. */
static int
pdp_txlog_append(pdp_store *st, MDB_txn *txn)
{
    uint8_t kb[8];
    MDB_val lk = {sizeof(kb), kb};
    MDB_val lv = {st->txl_ent.len, st->txl_ent.data};
    int     rc;

    if (st->txl_next == 0) {
        uint64_t head;
        if ((rc = pdp_store__txlog_head_in(txn, st->txlog, st->meta, &head,
                                           NULL)) != 0) {
            tg_error("store: cannot log a write in %s: %s", st->dir,
                     rc == MDB_CORRUPTED ? "meta txlog_base is damaged"
                                         : mdb_strerror(rc));
            return rc;
        }
        st->txl_next = head + 1;
    }
    st->txl_ent.data[0] = st->txl_last == 0 ? PDP_TXLOG_FLAG_FIRST : 0;
    pdp_store__seq_key(kb, st->txl_next);
    if ((rc = mdb_put(txn, st->txlog, &lk, &lv, MDB_APPEND)) == 0) {
        st->txl_last = st->txl_next++;
    }
    return rc;
}

int
pdp_store__put(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v,
               unsigned flags)
{
    uint8_t db;
    MDB_val ck;
    MDB_val cv;
    int     rc;

    if ((flags & MDB_RESERVE) != 0) {
        return EINVAL;
    }
    pdp_store__gen_mark(st, dbi);
    if (!st->txl_active || (db = pdp_txlog_db_of(st, dbi, k)) == 0) {
        return mdb_put(txn, dbi, k, v, flags);
    }
    /* k and v may point into the map, which the put may move. */
    if ((rc = pdp_txlog_entry_make(st, PDP_TXLOG_OP_PUT, db, k, v, &ck, &cv)) !=
        0) {
        return rc;
    }
    rc = mdb_put(txn, dbi, &ck, &cv, flags);
    if (rc == MDB_KEYEXIST) {
        *v = cv; /* MDB_NOOVERWRITE: the value already there */
    }
    return rc == 0 ? pdp_txlog_append(st, txn) : rc;
}

int
pdp_store__del(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    uint8_t db;
    MDB_val ck;
    MDB_val cv;
    int     rc;

    pdp_store__gen_mark(st, dbi);
    if (!st->txl_active || (db = pdp_txlog_db_of(st, dbi, k)) == 0) {
        return mdb_del(txn, dbi, k, NULL);
    }
    if ((rc = pdp_txlog_entry_make(st, PDP_TXLOG_OP_DEL, db, k, NULL, &ck,
                                   &cv)) != 0) {
        return rc;
    }
    rc = mdb_del(txn, dbi, &ck, NULL);
    return rc == 0 ? pdp_txlog_append(st, txn) : rc;
}

int
pdp_store__cursor_del(pdp_store *st, MDB_cursor *cur)
{
    MDB_val k;
    MDB_val v;
    MDB_val ck;
    MDB_val cv;
    uint8_t db;
    int     rc;

    pdp_store__gen_mark(st, mdb_cursor_dbi(cur));
    if (!st->txl_active) {
        return mdb_cursor_del(cur, 0);
    }
    /* The key of the record it is at: gone after the del. */
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT)) != 0) {
        return rc;
    }
    if ((db = pdp_txlog_db_of(st, mdb_cursor_dbi(cur), &k)) == 0) {
        return mdb_cursor_del(cur, 0);
    }
    if ((rc = pdp_txlog_entry_make(st, PDP_TXLOG_OP_DEL, db, &k, NULL, &ck,
                                   &cv)) != 0) {
        return rc;
    }
    rc = mdb_cursor_del(cur, 0);
    return rc == 0 ? pdp_txlog_append(st, mdb_cursor_txn(cur)) : rc;
}

int
pdp_store__drop(pdp_store *st, MDB_txn *txn, MDB_dbi dbi)
{
    uint8_t db = pdp_txlog_db_of(st, dbi, NULL);
    MDB_val ck;
    MDB_val cv;
    int     rc;

    if (dbi == st->meta) {
        return EINVAL; /* it holds this copy's own keys */
    }
    pdp_store__gen_mark(st, dbi);
    if (!st->txl_active || db == 0) {
        return mdb_drop(txn, dbi, 0);
    }
    if ((rc = pdp_txlog_entry_make(st, PDP_TXLOG_OP_DROP, db, NULL, NULL, &ck,
                                   &cv)) != 0) {
        return rc;
    }
    rc = mdb_drop(txn, dbi, 0);
    return rc == 0 ? pdp_txlog_append(st, txn) : rc;
}

tg_err
pdp_store__txlog_check_rec(const MDB_val *k, const MDB_val *v)
{
    pdp_rec_in      in = {v->mv_data, v->mv_size, 0, false};
    pdp_txlog_entry e;

    if (pdp_store__seq_of(k) == 0 || !pdp_txlog_entry_read(&in, false, &e) ||
        in.off != in.len) {
        return TG_ECORRUPT;
    }
    return TG_OK;
}

/* ---- state, role, head --------------------------------------------------- */

static bool
pdp_txlog_lineage_ok(const MDB_val *v)
{
    const char *s = v->mv_data;

    if (v->mv_size != PDP_TXLOG_LINEAGE_LEN) {
        return false;
    }
    for (size_t i = 0; i < v->mv_size; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static int
pdp_txlog_state_fn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_txlog_state *out = arg;
    MDB_val          v;
    int              rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pdp_txlog_role_read(txn, st->meta, &out->role)) != 0 ||
        (rc = pdp_txlog_meta_num(txn, st->meta, PDP_TXLOG_META_EPOCH,
                                 &out->epoch)) != 0 ||
        (rc = pdp_store__txlog_head_in(txn, st->txlog, st->meta, &out->head,
                                       &out->base)) != 0) {
        return rc;
    }
    rc = pdp_txlog_meta_get(txn, st->meta, PDP_TXLOG_META_PROMOTED, &v);
    out->promoted = rc == 0 && v.mv_size == 1 && *(char *)v.mv_data == '1';
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    rc = pdp_txlog_meta_get(txn, st->meta, PDP_TXLOG_META_LINEAGE, &v);
    if (rc == 0 && !pdp_txlog_lineage_ok(&v)) {
        return MDB_CORRUPTED;
    }
    if (rc == 0) {
        memcpy(out->lineage, v.mv_data, PDP_TXLOG_LINEAGE_LEN);
        out->lineage[PDP_TXLOG_LINEAGE_LEN] = '\0';
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* pdp_txlog_read runs fn in one read txn; an LMDB rc from it becomes a
 * tg_err (MDB_CORRUPTED: TG_ECORRUPT). */
static tg_err
pdp_txlog_read(pdp_store *st, pdp_store_txn_fn fn, void *arg)
{
    pdp_store_reader *rd = NULL;
    tg_err            rv;
    int               rc;

    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return rv;
    }
    rc = fn(st, rd->txn, arg);
    pdp_store_reader_destroy(rd);
    return rc == MDB_CORRUPTED ? TG_ECORRUPT : pdp_store__rc(rc);
}

tg_err
pdp_txlog_state_get(pdp_store *st, pdp_txlog_state *out)
{
    tg_err rv = pdp_txlog_read(st, pdp_txlog_state_fn, out);

    if (rv == TG_OK) {
        pdp_txlog_publish(st, out->head);
    }
    return rv;
}

uint64_t
pdp_txlog_head(pdp_store *st)
{
    return atomic_load(&st->txl_head);
}

static int
pdp_txlog_lineage_new(pdp_store *st, MDB_txn *txn)
{
    char lineage[PDP_TXLOG_LINEAGE_LEN + 1];

    if (tg_random_token(lineage, PDP_TXLOG_LINEAGE_LEN / 2) != TG_OK) {
        return EIO;
    }
    return pdp_txlog_meta_put(st, txn, PDP_TXLOG_META_LINEAGE, lineage);
}

static int
pdp_txlog_role_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_ha_role role = *(const pdp_ha_role *)arg;
    pdp_ha_role old;
    MDB_val     v;
    int         rc = pdp_txlog_role_read(txn, st->meta, &old);

    if (rc != 0 && rc != MDB_CORRUPTED) {
        return rc;
    }
    /* A standby refuses administration like a sidecar's replica does
     * (pdp_repl.h: "repl_replica"): its store is the active's, and a
     * change made here alone would be lost or differ. */
    if (role != PDP_HA_STANDBY && old == PDP_HA_STANDBY &&
        (rc = pdp_txlog_meta_del(st, txn, PDP_TXLOG_META_REPLICA)) != 0) {
        return rc;
    }
    if (role == PDP_HA_NONE) {
        return pdp_txlog_meta_del(st, txn, PDP_TXLOG_META_ROLE);
    }
    rc = pdp_txlog_meta_put(st, txn, PDP_TXLOG_META_ROLE,
                            role == PDP_HA_ACTIVE ? "active" : "standby");
    if (rc != 0) {
        return rc;
    }
    if (role == PDP_HA_STANDBY) {
        if ((rc = pdp_txlog_meta_put(st, txn, PDP_TXLOG_META_REPLICA, "1")) !=
            0) {
            return rc;
        }
        return pdp_txlog_meta_del(st, txn, PDP_TXLOG_META_PROMOTED);
    }
    /* Writes made while it was not active were not logged: whoever
     * followed the log before must start again from a copy. */
    rc = pdp_txlog_meta_get(txn, st->meta, PDP_TXLOG_META_LINEAGE, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && old != PDP_HA_ACTIVE)) {
        rc = pdp_txlog_lineage_new(st, txn);
    }
    return rc;
}

tg_err
pdp_txlog_set_role(pdp_store *st, pdp_ha_role role)
{
    if (role != PDP_HA_NONE && role != PDP_HA_ACTIVE &&
        role != PDP_HA_STANDBY) {
        return TG_EINVAL;
    }
    return pdp_store__write(st, pdp_txlog_role_txn, &role);
}

/* ---- the active side: changes -------------------------------------------- */

/* Where changes may end: after whole txns (n entries, the last seq). */
typedef struct pdp_txlog_cut {
    size_t   len;
    uint32_t n;
    uint64_t last;
} pdp_txlog_cut;

typedef struct pdp_txlog_changes_arg {
    uint64_t from;
    size_t   max_bytes;
    tg_buf  *out;
    size_t   start;
    uint64_t last;
    uint64_t head;
    bool     copy; /* from is not in the log */
} pdp_txlog_changes_arg;

/* pdp_txlog_changes_walk appends the entries after a->from, then their
 * count; stops before a txn that would take the buffer past max_bytes,
 * once it holds a whole one. */
static int
pdp_txlog_changes_walk(pdp_store *st, MDB_txn *txn, pdp_txlog_changes_arg *a)
{
    MDB_cursor   *cur;
    MDB_val       k;
    MDB_val       v;
    uint8_t       kb[8];
    uint32_t      n   = 0;
    pdp_txlog_cut cut = {a->out->len, 0, a->from};
    int           rc  = mdb_cursor_open(txn, st->txlog, &cur);

    if (rc != 0) {
        return rc;
    }
    pdp_store__seq_key(kb, a->from + 1);
    k = (MDB_val){sizeof(kb), kb};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        pdp_rec_in      in  = {v.mv_data, v.mv_size, 0, false};
        uint64_t        seq = pdp_store__seq_of(&k);
        uint8_t         sb[8];
        pdp_txlog_entry e;

        if (seq != a->from + 1 + n || !pdp_txlog_entry_read(&in, false, &e) ||
            in.off != in.len || n == UINT32_MAX) {
            tg_error("store: transaction log entry %llu is damaged",
                     (unsigned long long)seq);
            rc = MDB_CORRUPTED;
            break;
        }
        if ((e.flags & PDP_TXLOG_FLAG_FIRST) != 0) {
            cut = (pdp_txlog_cut){a->out->len, n, a->last};
        }
        if (cut.n > 0 &&
            (a->out->len - a->start) + 8 + v.mv_size > a->max_bytes) {
            break; /* back to the end of the last whole txn */
        }
        pdp_rec_put_le(sb, seq, 8);
        if (tg_buf_append(a->out, sb, sizeof(sb)) != TG_OK ||
            tg_buf_append(a->out, v.mv_data, v.mv_size) != TG_OK) {
            rc = ENOMEM;
            break;
        }
        n++;
        a->last = seq;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    if (rc == 0) { /* stopped early: at the cut */
        a->out->len           = cut.len;
        a->out->data[cut.len] = '\0';
        n                     = cut.n;
        a->last               = cut.last;
    }
    pdp_rec_put_le((uint8_t *)a->out->data + a->start + 9, n, 4);
    return 0;
}

static int
pdp_txlog_changes_fn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_txlog_changes_arg *a                     = arg;
    uint8_t                h[PDP_TXLOG_HEAD_LEN] = {PDP_TXLOG_VERSION};
    uint64_t               base;
    int                    rc;

    if ((rc = pdp_store__txlog_head_in(txn, st->txlog, st->meta, &a->head,
                                       &base)) != 0) {
        return rc;
    }
    if (a->from < base || a->from > a->head) {
        a->copy = true;
        return MDB_NOTFOUND;
    }
    pdp_rec_put_le(h + 1, a->head, 8);
    if (tg_buf_append(a->out, h, sizeof(h)) != TG_OK) {
        return ENOMEM;
    }
    return pdp_txlog_changes_walk(st, txn, a);
}

tg_err
pdp_txlog_changes(pdp_store *st, uint64_t from, size_t max_bytes, tg_buf *out,
                  uint64_t *last, uint64_t *head)
{
    pdp_txlog_changes_arg a = {from, max_bytes, out, out->len, from, 0, false};
    tg_err                rv;

    *last = from;
    rv    = pdp_txlog_read(st, pdp_txlog_changes_fn, &a);
    if (rv != TG_OK) {
        if (out->len > a.start) { /* nothing appended */
            out->len            = a.start;
            out->data[out->len] = '\0';
        }
        return a.copy ? PDP_TXLOG_ECOPY : rv;
    }
    *last = a.last;
    *head = a.head;
    pdp_txlog_publish(st, a.head);
    return TG_OK;
}

/* ---- the standby side: apply --------------------------------------------- */

typedef enum pdp_txlog_refusal {
    PDP_TXLOG_APPLIED = 0,
    PDP_TXLOG_NOT_STANDBY, /* TG_ECONFIG */
    PDP_TXLOG_GAP,         /* TG_EPROTO */
} pdp_txlog_refusal;

typedef struct pdp_txlog_apply_arg {
    const uint8_t    *data;
    size_t            len;
    uint64_t          bhead; /* the buffer's head */
    uint32_t          n;
    uint64_t          first; /* the first entry's seq */
    uint64_t          head;  /* the store's, after */
    pdp_txlog_refusal refused;
} pdp_txlog_apply_arg;

/* pdp_txlog_parse reads the buffer's head into a and positions in at its
 * first entry. */
static tg_err
pdp_txlog_parse(pdp_txlog_apply_arg *a, pdp_rec_in *in)
{
    *in = (pdp_rec_in){a->data, a->len, 0, false};
    if (pdp_rec_get_uint(in, 1) != PDP_TXLOG_VERSION) {
        return in->bad ? TG_EPROTO : TG_EVERSION;
    }
    a->bhead = pdp_rec_get_uint(in, 8);
    a->n     = (uint32_t)pdp_rec_get_uint(in, 4);
    return in->bad ? TG_EPROTO : TG_OK;
}

/* pdp_txlog_validate reads the whole buffer before anything is written:
 * every entry whole and well formed, numbered one after the other up to
 * the buffer's head, nothing after the last. */
static tg_err
pdp_txlog_validate(pdp_txlog_apply_arg *a)
{
    pdp_rec_in      in;
    pdp_txlog_entry e;
    tg_err          rv = pdp_txlog_parse(a, &in);

    if (rv != TG_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (!pdp_txlog_entry_read(&in, true, &e)) {
            return TG_EPROTO;
        }
        if (i == 0) {
            a->first = e.seq;
        }
        if (e.seq == 0 || e.seq > a->bhead || e.seq != a->first + i) {
            return TG_EPROTO;
        }
    }
    return in.off == in.len ? TG_OK : TG_EPROTO;
}

/* pdp_txlog_apply_one writes entry e raw (a standby logs by appending the
 * entry itself). */
static int
pdp_txlog_apply_one(pdp_store *st, MDB_txn *txn, const pdp_txlog_entry *e)
{
    MDB_dbi dbi = pdp_txlog_dbi(st, e->db);
    uint8_t kb[8];
    MDB_val lk = {sizeof(kb), kb};
    MDB_val lv = {e->raw_len, (void *)e->raw};
    MDB_val k  = e->k;
    MDB_val v  = e->v;
    int     rc;

    switch (e->op) {
    case PDP_TXLOG_OP_PUT:
        rc = mdb_put(txn, dbi, &k, &v, 0);
        break;
    case PDP_TXLOG_OP_DEL:
        rc = mdb_del(txn, dbi, &k, NULL);
        break;
    default:
        rc = mdb_drop(txn, dbi, 0);
        break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    pdp_store__seq_key(kb, e->seq);
    return mdb_put(txn, st->txlog, &lk, &lv, MDB_APPEND);
}

static int
pdp_txlog_apply_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_txlog_apply_arg *a = arg;
    pdp_ha_role          role;
    pdp_rec_in           in;
    pdp_txlog_entry      e;
    int                  rc;

    a->refused = PDP_TXLOG_APPLIED;
    if ((rc = pdp_txlog_role_read(txn, st->meta, &role)) != 0 ||
        (rc = pdp_store__txlog_head_in(txn, st->txlog, st->meta, &a->head,
                                       NULL)) != 0) {
        return rc;
    }
    if (role != PDP_HA_STANDBY) {
        a->refused = PDP_TXLOG_NOT_STANDBY;
        return MDB_KEYEXIST;
    }
    if (a->n == 0) {
        return MDB_KEYEXIST; /* nothing to commit */
    }
    if (a->first != a->head + 1) {
        a->refused = PDP_TXLOG_GAP;
        return MDB_KEYEXIST;
    }
    (void)pdp_txlog_parse(a, &in);
    for (uint32_t i = 0; i < a->n; i++) {
        (void)pdp_txlog_entry_read(&in, true, &e);
        if ((rc = pdp_txlog_apply_one(st, txn, &e)) != 0) {
            return rc;
        }
    }
    a->head      = a->first + a->n - 1;
    st->txl_last = a->head; /* published after the commit */
    return 0;
}

tg_err
pdp_txlog_apply(pdp_store *st, const void *data, size_t len, uint64_t *head_out)
{
    pdp_txlog_apply_arg a;
    tg_err              rv;

    memset(&a, 0, sizeof(a));
    a.data = data;
    a.len  = len;
    if (data == NULL && len > 0) {
        return TG_EINVAL;
    }
    if (len > 0 && (rv = pdp_txlog_validate(&a)) != TG_OK) {
        return rv;
    }
    /* Without entries it only reads: no write txn. */
    rv = a.n == 0 ? pdp_txlog_read(st, pdp_txlog_apply_txn, &a)
                  : pdp_store__write_nosync(st, pdp_txlog_apply_txn, &a);
    if (rv == TG_EEXIST) {
        rv = a.refused == PDP_TXLOG_NOT_STANDBY ? TG_ECONFIG
             : a.refused == PDP_TXLOG_GAP       ? TG_EPROTO
                                                : TG_OK;
    }
    if (rv == TG_OK && head_out != NULL) {
        *head_out = a.head;
    }
    return rv;
}

/* ---- promotion and the handshake ----------------------------------------- */

typedef struct pdp_txlog_promote_arg {
    uint64_t epoch;
    bool     refused; /* not a standby */
} pdp_txlog_promote_arg;

static int
pdp_txlog_promote_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_txlog_promote_arg *a = arg;
    pdp_ha_role            role;
    int                    rc = pdp_txlog_role_read(txn, st->meta, &role);

    a->refused = false;
    if (rc != 0 || (rc = pdp_txlog_meta_num(txn, st->meta, PDP_TXLOG_META_EPOCH,
                                            &a->epoch)) != 0) {
        return rc;
    }
    if (role != PDP_HA_STANDBY) {
        a->refused = true;
        return MDB_KEYEXIST;
    }
    a->epoch++;
    if ((rc = pdp_txlog_meta_num_put(st, txn, PDP_TXLOG_META_EPOCH,
                                     a->epoch)) != 0 ||
        (rc = pdp_txlog_meta_put(st, txn, PDP_TXLOG_META_PROMOTED, "1")) != 0 ||
        (rc = pdp_txlog_meta_put(st, txn, PDP_TXLOG_META_ROLE, "active")) !=
            0 ||
        (rc = pdp_txlog_meta_del(st, txn, PDP_TXLOG_META_PROMOTE)) != 0 ||
        (rc = pdp_txlog_meta_del(st, txn, PDP_TXLOG_META_REPLICA)) != 0 ||
        (rc = pdp_txlog_lineage_new(st, txn)) != 0) {
        return rc;
    }
    return pdp_store__repl_lineage_new(st, txn);
}

tg_err
pdp_txlog_promote(pdp_store *st, uint64_t *epoch_out)
{
    pdp_txlog_promote_arg a  = {0, false};
    tg_err                rv = pdp_store__write(st, pdp_txlog_promote_txn, &a);

    if (rv == TG_EEXIST && a.refused) {
        return TG_ECONFIG;
    }
    if (rv == TG_OK && epoch_out != NULL) {
        *epoch_out = a.epoch;
    }
    return rv;
}

/* What a handshake write sets (set: its value, NULL deletes) and
 * clears. */
typedef struct pdp_txlog_say_arg {
    const char *set;
    const char *value;
    const char *clear;
} pdp_txlog_say_arg;

static int
pdp_txlog_say_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const pdp_txlog_say_arg *a  = arg;
    int                      rc = pdp_txlog_meta_del(st, txn, a->clear);

    if (rc == 0) {
        rc = a->value[0] != '\0' ? pdp_txlog_meta_put(st, txn, a->set, a->value)
                                 : pdp_txlog_meta_del(st, txn, a->set);
    }
    return rc;
}

tg_err
pdp_txlog_ask_promote(pdp_store *st, bool force)
{
    pdp_txlog_say_arg a = {PDP_TXLOG_META_PROMOTE, force ? "force" : "1",
                           PDP_TXLOG_META_SAID};

    return pdp_store__write(st, pdp_txlog_say_txn, &a);
}

tg_err
pdp_txlog_say(pdp_store *st, const char *text)
{
    pdp_txlog_say_arg a = {PDP_TXLOG_META_SAID, text, PDP_TXLOG_META_PROMOTE};

    return pdp_store__write(st, pdp_txlog_say_txn, &a);
}

/* A meta value read out into a caller's buffer. */
typedef struct pdp_txlog_text {
    const char *name;
    char       *out;
    size_t      cap;
} pdp_txlog_text;

static int
pdp_txlog_text_fn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_txlog_text *t = arg;
    MDB_val         v;
    int             rc = pdp_txlog_meta_get(txn, st->meta, t->name, &v);
    size_t          n  = rc == 0 ? v.mv_size : 0;

    if (n >= t->cap) {
        n = t->cap - 1;
    }
    memcpy(t->out, rc == 0 ? v.mv_data : "", n);
    t->out[n] = '\0';
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int
pdp_txlog_promote_asked(pdp_store *st)
{
    char           asked[8];
    pdp_txlog_text t = {PDP_TXLOG_META_PROMOTE, asked, sizeof(asked)};

    if (pdp_txlog_read(st, pdp_txlog_text_fn, &t) != TG_OK) {
        return 0;
    }
    if (strcmp(asked, "force") == 0) {
        return 2;
    }
    return strcmp(asked, "1") == 0 ? 1 : 0;
}

tg_err
pdp_txlog_said(pdp_store *st, char *out, size_t cap)
{
    pdp_txlog_text t = {PDP_TXLOG_META_SAID, out, cap};

    if (cap == 0) {
        return TG_EINVAL;
    }
    out[0] = '\0';
    return pdp_txlog_read(st, pdp_txlog_text_fn, &t);
}

/* ---- prune --------------------------------------------------------------- */

typedef struct pdp_txlog_prune_arg {
    uint64_t keep;
    bool     none; /* nothing to drop */
} pdp_txlog_prune_arg;

static int
pdp_txlog_prune_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_txlog_prune_arg *a    = arg;
    uint64_t             base = 0;
    uint64_t             head;
    int                  rc;

    a->none = false;
    if ((rc = pdp_store__txlog_head_in(txn, st->txlog, st->meta, &head,
                                       &base)) != 0) {
        return rc;
    }
    /* txlog's own deletes are never logged (pdp_store__cursor_del). */
    if ((rc = pdp_store__log_prune(st, txn, st->txlog, a->keep, &base)) !=
        0) {
        a->none = rc == MDB_KEYEXIST;
        return rc;
    }
    return pdp_txlog_meta_num_put(st, txn, PDP_TXLOG_META_BASE, base);
}

tg_err
pdp_txlog_prune(pdp_store *st, uint64_t keep)
{
    pdp_txlog_prune_arg a  = {keep, false};
    tg_err              rv = pdp_store__write(st, pdp_txlog_prune_txn, &a);

    return rv == TG_EEXIST && a.none ? TG_OK : rv;
}

tg_err
pdp_txlog_sync(pdp_store *st)
{
    int rc = mdb_env_sync(st->env, 1);

    if (rc != 0) {
        pdp_store__log_failure(st, "fsync", rc);
    }
    return pdp_store__rc(rc);
}
