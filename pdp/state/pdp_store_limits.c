/* pdp_store_limits.c - the limits_state and reservations databases of
 * pdp_store: one record holding the latest rate-limit window snapshot
 * (pdp_limits_snapshot_windows), saved by pdp_server while it serves and
 * read back at its start, and one record per open reservation (written by
 * the writer thread, pdp_store_reserve_submit; ended by the usage report
 * in the same txn as its record). Thread-safe like the rest of the store. */
#include "pdp_store_int.h"

#include <errno.h>
#include <stdlib.h>

#include "tg_time.h"

#define PDP_LIMITS_SNAPSHOT_KEY "snapshot"

typedef struct pdp_limits_save_arg {
    const void *data;
    size_t      len;
} pdp_limits_save_arg;

/* Saving a window snapshot also deletes, in the same txn, the settled
 * reservation records it counts: before the commit a restart counts them
 * from their records, after it from the snapshot, never neither. */
static int
pdp_store_limits_save_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_limits_save_arg *a = arg;
    MDB_val  k = {sizeof(PDP_LIMITS_SNAPSHOT_KEY) - 1, PDP_LIMITS_SNAPSHOT_KEY};
    MDB_val  v = {a->len, (void *)a->data};
    uint64_t seq = pdp_limits_snapshot_seq(a->data, a->len);
    MDB_cursor *cur;
    MDB_val     rk;
    MDB_val     rv;
    int         rc;

    if ((rc = pdp_store__put(st, txn, st->limits, &k, &v, 0)) != 0 ||
        seq == 0) {
        return rc;
    }
    if ((rc = mdb_cursor_open(txn, st->reservations, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &rk, &rv, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &rk, &rv, MDB_NEXT)) {
        if (pdp_limits_record_prunable(rv.mv_data, rv.mv_size, seq,
                                       tg_now_ms()) &&
            (rc = pdp_store__cursor_del(st, cur)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

tg_err
pdp_store_limits_save(pdp_store *st, const void *data, size_t len)
{
    pdp_limits_save_arg a = {data, len};

    if (data == NULL || len == 0) {
        return TG_EINVAL;
    }
    return pdp_store__write(st, pdp_store_limits_save_txn, &a);
}

tg_err
pdp_store_limits_load(pdp_store *st, tg_buf *out)
{
    pdp_store_reader *rd = NULL;
    MDB_val k = {sizeof(PDP_LIMITS_SNAPSHOT_KEY) - 1, PDP_LIMITS_SNAPSHOT_KEY};
    MDB_val v;
    tg_err  rv;
    int     rc;

    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        /* v points into the map until read_end: copy it out first. */
        rc = mdb_get(rd->txn, st->limits, &k, &v);
        rv = rc == 0 ? tg_buf_append(out, v.mv_data, v.mv_size)
                     : pdp_store__rc(rc);
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

typedef struct pdp_res_list_arg {
    pdp_store_res_fn fn;
    void            *arg;
    char             id[TG_REQUEST_ID_MAX];
} pdp_res_list_arg;

static tg_err
pdp_store_res_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_res_list_arg *a = arg;
    size_t            n = k->mv_size;

    if (n >= sizeof(a->id)) {
        n = sizeof(a->id) - 1;
    }
    memcpy(a->id, k->mv_data, n);
    a->id[n] = '\0';
    a->fn(a->arg, a->id, v->mv_data, v->mv_size);
    return TG_OK;
}

tg_err
pdp_store_reservation_list(pdp_store *st, pdp_store_res_fn fn, void *arg)
{
    pdp_res_list_arg a;

    a.fn  = fn;
    a.arg = arg;
    return pdp_store__scan(st, st->reservations, false, pdp_store_res_list_one,
                           &a);
}

static int
pdp_store_res_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const char *id = arg;
    MDB_val     k  = {strlen(id), (void *)id};

    return pdp_store__del(st, txn, st->reservations, &k);
}

tg_err
pdp_store_reservation_del(pdp_store *st, const char *id)
{
    if (id == NULL || id[0] == '\0') {
        return TG_EINVAL;
    }
    return pdp_store__write(st, pdp_store_res_del_txn, (void *)id);
}

/* pdp_store__res_end marks reservation record k ended (see
 * PDP_LIMITS_RES_ENDED) using o as scratch; MDB_NOTFOUND when there is no
 * open one. */
int
pdp_store__res_end(pdp_store *st, MDB_txn *txn, MDB_val *k, pdp_rec_out *o)
{
    MDB_val v;
    int     rc = mdb_get(txn, st->reservations, k, &v);

    if (rc != 0) {
        return rc;
    }
    if (v.mv_size == 0 || v.mv_size > sizeof(o->buf) ||
        ((const uint8_t *)v.mv_data)[0] != PDP_LIMITS_RES_OPEN) {
        return MDB_NOTFOUND;
    }
    memcpy(o->buf, v.mv_data, v.mv_size);
    if (pdp_limits_record_end(o->buf, v.mv_size) != TG_OK) {
        return pdp_store__del(st, txn, st->reservations, k); /* unreadable */
    }
    v.mv_data = o->buf;
    return pdp_store__put(st, txn, st->reservations, k, &v, 0);
}

/* pdp_store__res_settle marks the reservation record of usage report it
 * settled with the tokens it used (o is scratch), or deletes it when it is
 * not one a report can settle; MDB_NOTFOUND when there is none. A record
 * no longer held in memory (expired, released, or the PDP restarted past
 * its TTL) still says which budgets the request fell under: they become
 * its budget keys when the caller gave none and asked for them back. */
int
pdp_store__res_settle(pdp_store *st, MDB_txn *txn, pdp_store_item *it,
                      pdp_rec_out *o)
{
    MDB_val k = {strlen(it->usage.reservation_id), it->usage.reservation_id};
    MDB_val v;
    const uint8_t *p;
    int            rc = mdb_get(txn, st->reservations, &k, &v);

    if (rc != 0) {
        return rc;
    }
    p = v.mv_data;
    if (v.mv_size > 0 && p[0] == PDP_STORE_HOLD_REC) {
        /* A sidecar's hold: the report names its charges (from memory,
         * or from here after a restart) and the record goes. */
        if (it->usage.n_charges == 0) {
            pdp_store_hold_decode(v.mv_data, v.mv_size, &it->usage);
        }
        return pdp_store__del(st, txn, st->reservations, &k);
    }
    if (v.mv_size == 0 || v.mv_size > sizeof(o->buf) ||
        (p[0] != PDP_LIMITS_RES_OPEN && p[0] != PDP_LIMITS_RES_ENDED)) {
        return pdp_store__del(st, txn, st->reservations, &k);
    }
    if (it->nspend == 0 && it->nspend_out != NULL && !it->usage.abandoned) {
        it->nspend = pdp_limits_record_budget_keys(
            v.mv_data, v.mv_size, it->spend, PDP_LIMITS_BUDGETS_MAX);
    }
    memcpy(o->buf, v.mv_data, v.mv_size);
    if (pdp_limits_record_settle(o->buf, v.mv_size,
                                 it->usage.prompt_tokens +
                                     it->usage.completion_tokens) != TG_OK) {
        return pdp_store__del(st, txn, st->reservations, &k);
    }
    v.mv_data = o->buf;
    return pdp_store__put(st, txn, st->reservations, &k, &v, 0);
}

static int
pdp_store_res_end_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    const char  *id = arg;
    MDB_val      k  = {strlen(id), (void *)id};
    pdp_rec_out *o  = malloc(sizeof(*o));
    int          rc;

    if (o == NULL) {
        return ENOMEM;
    }
    rc = pdp_store__res_end(st, txn, &k, o);
    free(o);
    return rc;
}

tg_err
pdp_store_reservation_end(pdp_store *st, const char *id)
{
    if (id == NULL || id[0] == '\0') {
        return TG_EINVAL;
    }
    return pdp_store__write(st, pdp_store_res_end_txn, (void *)id);
}
