/* pdp_store_limits.c - the limits_state database of pdp_store: one record
 * holding the latest rate-limit snapshot (pdp_limits_snapshot), saved by
 * pdp_server while it serves and read back at its start. Thread-safe like
 * the rest of the store. */
#include "pdp_store_int.h"

#define PDP_LIMITS_SNAPSHOT_KEY "snapshot"

typedef struct pdp_limits_save_arg {
    const void *data;
    size_t      len;
} pdp_limits_save_arg;

static int
pdp_store_limits_save_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_limits_save_arg *a = arg;
    MDB_val k = {sizeof(PDP_LIMITS_SNAPSHOT_KEY) - 1, PDP_LIMITS_SNAPSHOT_KEY};
    MDB_val v = {a->len, (void *)a->data};

    return mdb_put(txn, st->limits, &k, &v, 0);
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
