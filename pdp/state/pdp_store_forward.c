/* pdp_store_forward.c - what a sidecar PDP owes its central PDP (the
 * forward queue) and the leases a central PDP granted. */
#include "pdp_store_int.h"

int
pdp_store__forward_open(pdp_store *st, MDB_txn *txn)
{
    int rc = mdb_dbi_open(txn, "forward", MDB_CREATE, &st->forward);

    if (rc == 0) {
        rc = mdb_dbi_open(txn, "leases", MDB_CREATE, &st->leases);
    }
    return rc;
}
