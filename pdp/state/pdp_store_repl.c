/* pdp_store_repl.c - replication: the change log of the replicated
 * databases (pdp_store.h, "replog"), snapshots of them, and applying a
 * primary's snapshot and changes on a replica. */
#include "pdp_store_int.h"

int
pdp_store__repl_open(pdp_store *st, MDB_txn *txn)
{
    int rc = mdb_dbi_open(txn, "replog", MDB_CREATE, &st->replog);

    if (rc == 0) {
        rc = mdb_dbi_open(txn, "repl_blobs", MDB_CREATE, &st->repl_blobs);
    }
    return rc;
}
