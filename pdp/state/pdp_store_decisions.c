/* pdp_store_decisions.c - the decision log's databases of pdp_store:
 * decisions (the chained records), decision_ids (request id -> sequence)
 * and checkpoints. A record is appended in the write txn that settles its
 * request's usage report, so it is exactly as durable as the report and
 * written once (a repeated report finds its usage row and stops before).
 * Layouts are in pdp_store.h; the record and checkpoint formats in
 * pdp_decisions.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "pdp_store_int.h"
#include "tg_log.h"
#include "tg_time.h"

int
pdp_store__decisions_open(pdp_store *st, MDB_txn *txn)
{
    int rc;

    if ((rc = mdb_dbi_open(txn, "decisions", MDB_CREATE, &st->decisions)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "decision_ids", MDB_CREATE,
                           &st->decision_ids)) != 0 ||
        (rc = mdb_dbi_open(txn, "checkpoints", MDB_CREATE, &st->checkpoints)) !=
            0) {
        return rc;
    }
    return 0;
}

/* pdp_cp_head reads the head a checkpoint line signs. */
static bool
pdp_cp_head(const MDB_val *v, uint8_t head[TG_SHA256_LEN])
{
    cJSON       *doc = cJSON_ParseWithLength(v->mv_data, v->mv_size);
    const cJSON *cp  = cJSON_GetObjectItemCaseSensitive(doc, "checkpoint");
    const cJSON *h   = cJSON_GetObjectItemCaseSensitive(cp, "head");
    bool ok = cJSON_IsString(h) && strlen(h->valuestring) == 2 * TG_SHA256_LEN;

    for (int i = 0; ok && i < TG_SHA256_LEN; i++) {
        unsigned x;
        ok      = sscanf(h->valuestring + 2 * i, "%2x", &x) == 1;
        head[i] = (uint8_t)x;
    }
    cJSON_Delete(doc);
    return ok;
}

/* pdp_dec_last finds the chain's head inside txn: the last record's
 * sequence and hash, or (every record up to it pruned) the newest
 * checkpoint's; 0 and zeros for an empty log. cp_seq gets the newest
 * checkpoint's sequence (0: none). writer: the store's writer thread
 * calls, which may use the hash it kept of the record it appended last
 * (no other thread reads that). Returns an LMDB rc. */
static int
pdp_dec_last(pdp_store *st, MDB_txn *txn, bool writer, uint64_t *seq,
             uint8_t head[TG_SHA256_LEN], uint64_t *cp_seq)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    MDB_val     ck;
    MDB_val     cv;
    int         rc;
    int         crc;

    *seq    = 0;
    *cp_seq = 0;
    memset(head, 0, TG_SHA256_LEN);
    if ((rc = mdb_cursor_open(txn, st->checkpoints, &cur)) != 0) {
        return rc;
    }
    crc = mdb_cursor_get(cur, &ck, &cv, MDB_LAST);
    mdb_cursor_close(cur);
    if (crc != 0 && crc != MDB_NOTFOUND) {
        return crc;
    }
    if (crc == 0) {
        *cp_seq = pdp_store__seq_of(&ck);
    }
    if ((rc = mdb_cursor_open(txn, st->decisions, &cur)) != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == 0 && pdp_store__seq_of(&k) >= *cp_seq) {
        *seq = pdp_store__seq_of(&k);
        if (writer && *seq == st->dec_head_seq && *seq != 0) {
            memcpy(head, st->dec_head, TG_SHA256_LEN);
        } else {
            tg_sha256(v.mv_data, v.mv_size, head);
        }
        return 0;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    if (crc == 0) {
        *seq = *cp_seq;
        return pdp_cp_head(&cv, head) ? 0 : MDB_CORRUPTED;
    }
    return 0;
}

/* pdp_dec_checkpoint signs the head (seq, head) into txn unless the
 * newest checkpoint already covers it. */
static int
pdp_dec_checkpoint(pdp_store *st, MDB_txn *txn, const pdp_signer *signer,
                   uint64_t seq, const uint8_t head[TG_SHA256_LEN],
                   uint64_t cp_seq, tg_buf *line)
{
    uint8_t kb[8];
    MDB_val k = {sizeof(kb), kb};
    MDB_val v;

    if (seq == 0 || seq <= cp_seq) {
        return 0;
    }
    if (pdp_checkpoint_line(signer, seq, head, tg_now_ms(), line) != TG_OK) {
        return ENOMEM;
    }
    pdp_store__seq_key(kb, seq);
    v.mv_size = line->len;
    v.mv_data = line->data;
    return pdp_store__put(st, txn, st->checkpoints, &k, &v, MDB_NOOVERWRITE);
}

/* pdp_dec_attrs writes into st->dec_attrs what the record keeps of the
 * report's key and tenant as they are in txn (the attributes rules read). */
static void
pdp_dec_attrs(pdp_store *st, MDB_txn *txn, const tg_usage *u)
{
    MDB_val    k = {strlen(u->key_id), (void *)u->key_id};
    MDB_val    v;
    bool       have_key    = false;
    bool       have_tenant = false;

    tg_buf_reset(&st->dec_attrs);
    if (u->key_id[0] != '\0' && mdb_get(txn, st->key_ids, &k, &v) == 0) {
        MDB_val hk = v;
        have_key   = mdb_get(txn, st->keys, &hk, &v) == 0 &&
                   pdp_store__key_decode(&v, &st->dec_key) == TG_OK;
    }
    k.mv_size = strlen(u->tenant_id);
    k.mv_data = (void *)u->tenant_id;
    if (u->tenant_id[0] != '\0' && mdb_get(txn, st->tenants, &k, &v) == 0) {
        have_tenant = pdp_store__tenant_decode(&v, &st->dec_tenant) == TG_OK;
    }
    if (have_key || have_tenant) {
        pdp_decision_attrs(&st->dec_attrs, have_key ? st->dec_key.labels : NULL,
                           have_key ? st->dec_key.n_labels : 0,
                           have_tenant ? st->dec_tenant.tier : NULL,
                           st->dec_tenant.labels,
                           have_tenant ? st->dec_tenant.n_labels : 0);
    }
}

int
pdp_store__decision_append(pdp_store *st, MDB_txn *txn,
                           const pdp_store_item *it)
{
    uint64_t seq;
    uint64_t cp_seq;
    uint8_t  head[TG_SHA256_LEN];
    uint8_t  kb[8];
    MDB_val  k = {sizeof(kb), kb};
    MDB_val  v;
    MDB_val  ik = {strlen(it->usage.request_id), (void *)it->usage.request_id};
    int      rc;

    if ((rc = pdp_dec_last(st, txn, true, &seq, head, &cp_seq)) != 0) {
        return rc;
    }
    pdp_dec_attrs(st, txn, &it->usage);
    if (pdp_decision_body(&it->usage, it->content, it->content_len,
                          st->dec_attrs.data, st->dec_attrs.len, it->cost,
                          it->settled_ms, &st->dec_body) != TG_OK ||
        pdp_decision_chain(seq + 1, head, st->dec_body.data, st->dec_body.len,
                           &st->dec_rec) != TG_OK) {
        return ENOMEM;
    }
    seq++;
    pdp_store__seq_key(kb, seq);
    v.mv_size = st->dec_rec.len;
    v.mv_data = st->dec_rec.data;
    if ((rc = pdp_store__put(st, txn, st->decisions, &k, &v, MDB_APPEND)) !=
            0 ||
        (rc = pdp_store__put(st, txn, st->decision_ids, &ik, &k, 0)) != 0) {
        return rc;
    }
    tg_sha256(st->dec_rec.data, st->dec_rec.len, head);
    st->dec_head_seq = seq;
    memcpy(st->dec_head, head, TG_SHA256_LEN);
    if (st->signer != NULL && st->cp_every > 0 &&
        seq - cp_seq >= st->cp_every) {
        return pdp_dec_checkpoint(st, txn, st->signer, seq, head, cp_seq,
                                  &st->dec_cp);
    }
    return 0;
}

void
pdp_store_decisions_sign_every(pdp_store *st, const pdp_signer *signer,
                               uint64_t every)
{
    pthread_mutex_lock(&st->mu);
    st->signer   = signer;
    st->cp_every = every;
    pthread_mutex_unlock(&st->mu);
}

typedef struct pdp_cp_arg {
    const pdp_signer *signer;
    uint64_t          seq; /* out: the checkpoint's, 0: none needed */
    tg_buf            line;
} pdp_cp_arg;

static int
pdp_store_cp_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_cp_arg *a = arg;
    uint64_t    seq;
    uint64_t    cp_seq;
    uint8_t     head[TG_SHA256_LEN];
    int         rc;

    a->seq = 0;
    if ((rc = pdp_dec_last(st, txn, false, &seq, head, &cp_seq)) != 0) {
        return rc;
    }
    if (seq > cp_seq) {
        a->seq = seq;
    }
    return pdp_dec_checkpoint(st, txn, a->signer, seq, head, cp_seq, &a->line);
}

tg_err
pdp_store_decisions_checkpoint(pdp_store *st, const pdp_signer *signer,
                               uint64_t *seq)
{
    pdp_cp_arg a = {signer, 0, {0}};
    tg_err     rv;

    tg_buf_init(&a.line, 0);
    rv = pdp_store__write(st, pdp_store_cp_txn, &a);
    tg_buf_fini(&a.line);
    if (seq != NULL) {
        *seq = rv == TG_OK ? a.seq : 0;
    }
    return rv;
}

/* ---- reading ------------------------------------------------------------ */

/* A read over the log: one snapshot, cursors on records and checkpoints. */
typedef struct pdp_dec_read {
    pdp_store_reader *rd;
    MDB_cursor       *rec;
    MDB_cursor       *cp;
} pdp_dec_read;

static tg_err
pdp_dec_read_begin(pdp_store *st, pdp_dec_read *r)
{
    tg_err rv;
    int    rc;

    memset(r, 0, sizeof(*r));
    if ((rv = pdp_store_reader_create(st, &r->rd)) != TG_OK ||
        (rv = pdp_store_read_begin(r->rd)) != TG_OK) {
        return rv;
    }
    if ((rc = mdb_cursor_open(r->rd->txn, st->decisions, &r->rec)) != 0 ||
        (rc = mdb_cursor_open(r->rd->txn, st->checkpoints, &r->cp)) != 0) {
        return pdp_store__rc(rc);
    }
    return TG_OK;
}

static void
pdp_dec_read_end(pdp_dec_read *r)
{
    if (r->rec != NULL) {
        mdb_cursor_close(r->rec);
    }
    if (r->cp != NULL) {
        mdb_cursor_close(r->cp);
    }
    pdp_store_reader_destroy(r->rd);
}

/* pdp_dec_settled reads a record's settled_ms (-1: unreadable). */
static int64_t
pdp_dec_settled(const MDB_val *v)
{
    cJSON       *doc = cJSON_ParseWithLength(v->mv_data, v->mv_size);
    const cJSON *t   = cJSON_GetObjectItemCaseSensitive(doc, "settled_ms");
    int64_t      ms  = cJSON_IsNumber(t) ? (int64_t)t->valuedouble : -1;

    cJSON_Delete(doc);
    return ms;
}

tg_err
pdp_store_decisions_stats(pdp_store *st, pdp_decisions_stats *out)
{
    pdp_dec_read r;
    MDB_val      k;
    MDB_val      v;
    MDB_stat     ms;
    tg_err       rv;

    memset(out, 0, sizeof(*out));
    if ((rv = pdp_dec_read_begin(st, &r)) == TG_OK) {
        if (mdb_cursor_get(r.rec, &k, &v, MDB_FIRST) == 0) {
            out->first_seq = pdp_store__seq_of(&k);
            out->first_ms  = pdp_dec_settled(&v);
        }
        if (mdb_cursor_get(r.rec, &k, &v, MDB_LAST) == 0) {
            out->last_seq = pdp_store__seq_of(&k);
            out->last_ms  = pdp_dec_settled(&v);
        }
        if (mdb_cursor_get(r.cp, &k, &v, MDB_LAST) == 0) {
            out->checkpoint_seq = pdp_store__seq_of(&k);
        }
        if (mdb_stat(r.rd->txn, st->decisions, &ms) == 0) {
            out->records = ms.ms_entries;
            out->bytes =
                (uint64_t)ms.ms_psize *
                (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages);
        }
        if (mdb_stat(r.rd->txn, st->checkpoints, &ms) == 0) {
            out->checkpoints = ms.ms_entries;
        }
    }
    pdp_dec_read_end(&r);
    return rv;
}

tg_err
pdp_store_decisions_each(pdp_store *st, uint64_t from_seq, bool backwards,
                         pdp_store_decision_fn fn, void *arg)
{
    pdp_dec_read  r;
    uint8_t       kb[8];
    MDB_val       k = {sizeof(kb), kb};
    MDB_val       v;
    MDB_cursor_op op;
    tg_err        rv;
    int           rc;

    if ((rv = pdp_dec_read_begin(st, &r)) != TG_OK) {
        pdp_dec_read_end(&r);
        return rv;
    }
    if (from_seq == 0) {
        op = backwards ? MDB_LAST : MDB_FIRST;
    } else {
        pdp_store__seq_key(kb, from_seq);
        op = MDB_SET_RANGE;
    }
    rc = mdb_cursor_get(r.rec, &k, &v, op);
    if (rc == 0 && backwards && from_seq != 0 && pdp_store__seq_of(&k) > from_seq) {
        rc = mdb_cursor_get(r.rec, &k, &v, MDB_PREV);
    } else if (rc == MDB_NOTFOUND && backwards && from_seq != 0) {
        rc = mdb_cursor_get(r.rec, &k, &v, MDB_LAST);
    }
    for (; rc == 0;
         rc = mdb_cursor_get(r.rec, &k, &v, backwards ? MDB_PREV : MDB_NEXT)) {
        if (!fn(arg, pdp_store__seq_of(&k), v.mv_data, v.mv_size)) {
            break;
        }
    }
    rv = rc == 0 || rc == MDB_NOTFOUND ? TG_OK : pdp_store__rc(rc);
    pdp_dec_read_end(&r);
    return rv;
}

tg_err
pdp_store_decision_get(pdp_store *st, const char *request_id, tg_buf *out)
{
    pdp_dec_read r;
    MDB_val      ik = {strlen(request_id), (void *)request_id};
    MDB_val      k;
    MDB_val      v;
    tg_err       rv;
    int          rc;

    if ((rv = pdp_dec_read_begin(st, &r)) == TG_OK) {
        rc = mdb_get(r.rd->txn, st->decision_ids, &ik, &k);
        if (rc == 0) {
            rc = mdb_get(r.rd->txn, st->decisions, &k, &v);
        }
        if (rc == 0) {
            tg_buf_reset(out);
            tg_buf_add(out, v.mv_data, v.mv_size);
            rv = tg_buf_error(out);
        } else {
            rv = rc == MDB_NOTFOUND ? TG_ENOTFOUND : pdp_store__rc(rc);
        }
    }
    pdp_dec_read_end(&r);
    return rv;
}

/* pdp_dec_seq_at finds the first record settled at or after ms (binary
 * search: records are appended in settling order); last + 1 if none. */
static uint64_t
pdp_dec_seq_at(pdp_dec_read *r, uint64_t first, uint64_t last, int64_t ms)
{
    uint64_t lo = first;
    uint64_t hi = last + 1;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint8_t  kb[8];
        MDB_val  k = {sizeof(kb), kb};
        MDB_val  v;
        pdp_store__seq_key(kb, mid);
        if (mdb_cursor_get(r->rec, &k, &v, MDB_SET_RANGE) != 0) {
            hi = mid;
        } else if (pdp_dec_settled(&v) < ms) {
            lo = pdp_store__seq_of(&k) + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

tg_err
pdp_store_decisions_export(pdp_store *st, int64_t since_ms, int64_t until_ms,
                           pdp_store_line_fn fn, void *arg,
                           pdp_export_range *range)
{
    pdp_dec_read r;
    MDB_val      k;
    MDB_val      v;
    MDB_val      ck;
    MDB_val      cv;
    uint8_t      kb[8];
    uint64_t     first;
    uint64_t     last;
    uint64_t     from;
    uint64_t     to;
    tg_err       rv;
    int          rc;

    memset(range, 0, sizeof(*range));
    if ((rv = pdp_dec_read_begin(st, &r)) != TG_OK) {
        pdp_dec_read_end(&r);
        return rv;
    }
    if (mdb_cursor_get(r.rec, &k, &v, MDB_FIRST) != 0) {
        pdp_dec_read_end(&r);
        return TG_OK; /* an empty log */
    }
    first = pdp_store__seq_of(&k);
    mdb_cursor_get(r.rec, &k, &v, MDB_LAST);
    last = pdp_store__seq_of(&k);
    from = since_ms > 0 ? pdp_dec_seq_at(&r, first, last, since_ms) : first;
    to   = until_ms > 0 ? pdp_dec_seq_at(&r, first, last, until_ms) - 1 : last;
    range->first_wanted = from;
    range->last_wanted  = to;
    /* Widen to checkpoints: start after the newest one before from (the
     * anchor, whose signature vouches for what precedes), end at the
     * first one at or after to. */
    pdp_store__seq_key(kb, from);
    ck.mv_size = sizeof(kb);
    ck.mv_data = kb;
    rc         = mdb_cursor_get(r.cp, &ck, &cv, MDB_SET_RANGE);
    rc         = rc == 0 ? mdb_cursor_get(r.cp, &ck, &cv, MDB_PREV)
                         : mdb_cursor_get(r.cp, &ck, &cv, MDB_LAST);
    if (rc == 0 && pdp_store__seq_of(&ck) < from) {
        from = pdp_store__seq_of(&ck) + 1;
        if (!fn(arg, cv.mv_data, cv.mv_size)) {
            goto out;
        }
    } else {
        from = first;
    }
    pdp_store__seq_key(kb, to);
    ck.mv_size = sizeof(kb);
    ck.mv_data = kb;
    if (mdb_cursor_get(r.cp, &ck, &cv, MDB_SET_RANGE) == 0) {
        to = pdp_store__seq_of(&ck);
    } else {
        to = last;
    }
    pdp_store__seq_key(kb, from);
    k.mv_size = sizeof(kb);
    k.mv_data = kb;
    for (rc = mdb_cursor_get(r.rec, &k, &v, MDB_SET_RANGE);
         rc == 0 && pdp_store__seq_of(&k) <= to;
         rc = mdb_cursor_get(r.rec, &k, &v, MDB_NEXT)) {
        ck = k;
        if (!fn(arg, v.mv_data, v.mv_size)) {
            goto out;
        }
        range->records++;
        range->last  = pdp_store__seq_of(&k);
        range->first = range->first != 0 ? range->first : pdp_store__seq_of(&k);
        if (mdb_get(r.rd->txn, st->checkpoints, &ck, &cv) == 0) {
            range->covered = pdp_store__seq_of(&k);
            if (!fn(arg, cv.mv_data, cv.mv_size)) {
                goto out;
            }
        }
    }
out:
    pdp_dec_read_end(&r);
    return TG_OK;
}

/* ---- retention ---------------------------------------------------------- */

typedef struct pdp_prune_arg {
    int64_t  before_ms; /* 0: no age limit */
    uint64_t max_bytes; /* 0: no size limit */
    uint64_t removed;
} pdp_prune_arg;

/* pdp_prune_cut chooses the newest checkpoint up to which records may go:
 * every record up to it settled before before_ms, or (over max_bytes)
 * the checkpoint that brings the log under it. 0: nothing to prune. */
static uint64_t
pdp_prune_cut(pdp_store *st, MDB_txn *txn, const pdp_prune_arg *a)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    MDB_stat    ms;
    uint64_t    cut     = 0;
    uint64_t    drop_to = 0; /* records up to here must go for the size */

    if (a->max_bytes > 0 && mdb_stat(txn, st->decisions, &ms) == 0 &&
        ms.ms_entries > 0 && mdb_cursor_open(txn, st->decisions, &cur) == 0) {
        uint64_t bytes =
            (uint64_t)ms.ms_psize *
            (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages);
        if (bytes > a->max_bytes &&
            mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0) {
            uint64_t avg = bytes / ms.ms_entries + 1;
            drop_to      = pdp_store__seq_of(&k) + (bytes - a->max_bytes) / avg;
        }
        mdb_cursor_close(cur);
    }
    if (mdb_cursor_open(txn, st->checkpoints, &cur) != 0) {
        return 0;
    }
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc     = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_val rk = k;
        MDB_val rv;
        bool    old = true; /* an anchor whose record is already gone */
        if (mdb_get(txn, st->decisions, &rk, &rv) == 0) {
            int64_t at = pdp_dec_settled(&rv);
            old        = a->before_ms > 0 && at >= 0 && at < a->before_ms;
        }
        if (!old && cut >= drop_to) {
            break;
        }
        cut = pdp_store__seq_of(&k);
    }
    mdb_cursor_close(cur);
    return cut;
}

static int
pdp_store_prune_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_prune_arg *a   = arg;
    uint64_t       cut = pdp_prune_cut(st, txn, a);
    MDB_cursor    *cur;
    MDB_val        k;
    MDB_val        v;
    int            rc;

    a->removed = 0;
    if (cut == 0) {
        return 0;
    }
    if ((rc = mdb_cursor_open(txn, st->decisions, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && pdp_store__seq_of(&k) <= cut;
         rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) {
        cJSON       *doc = cJSON_ParseWithLength(v.mv_data, v.mv_size);
        const cJSON *id  = cJSON_GetObjectItemCaseSensitive(doc, "request_id");
        if (cJSON_IsString(id)) {
            MDB_val ik  = {strlen(id->valuestring), id->valuestring};
            int     drc = pdp_store__del(st, txn, st->decision_ids, &ik);
            rc          = drc == MDB_NOTFOUND ? 0 : drc;
        }
        cJSON_Delete(doc);
        if (rc != 0 || (rc = pdp_store__cursor_del(st, cur)) != 0) {
            break;
        }
        a->removed++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    /* Checkpoints before the cut go; the cut's stays as the anchor. */
    if ((rc = mdb_cursor_open(txn, st->checkpoints, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && pdp_store__seq_of(&k) < cut;
         rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) {
        if ((rc = pdp_store__cursor_del(st, cur)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

tg_err
pdp_store_decisions_prune(pdp_store *st, int64_t before_ms, uint64_t max_bytes,
                          uint64_t *removed)
{
    pdp_prune_arg a = {before_ms, max_bytes, 0};
    tg_err        rv;

    rv = pdp_store__write(st, pdp_store_prune_txn, &a);
    if (removed != NULL) {
        *removed = rv == TG_OK ? a.removed : 0;
    }
    return rv;
}
