/* pdp_repl.h - replication of a central PDP's store to sidecar PDPs, the
 * store's side of it: the change log a primary keeps of the replicated
 * databases (keys, key_ids, tenants, quotas, lists) and of two blobs (the
 * active policy bundle, the pricing table), snapshots of them, and
 * applying a primary's snapshot and changes on a replica. Who calls what
 * and when (the network) is not here. Thread-safe like pdp_store; every
 * call runs in its own txn. Layouts are in pdp_store.h (replog,
 * repl_blobs, meta repl_*).
 *
 * On a primary every admin write of a replicated database (pdp_store.h:
 * key put, revoke, rotate, tenant set/disable/delete, quota put/delete,
 * list set/delete) appends one log entry per record it writes or deletes,
 * numbered from 1 in the same txn. On a replica those admin writes are
 * refused with PDP_REPL_EREPLICA (one that would change nothing, such as
 * setting a list or a blob to what it holds, answers as on a primary);
 * only the apply functions write. */
#ifndef PDP_REPL_H
#define PDP_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_err.h"

/* Replicated databases, as a u8 on the wire and in replog entries. */
typedef enum pdp_repl_db {
    PDP_REPL_KEYS    = 1,
    PDP_REPL_KEY_IDS = 2,
    PDP_REPL_TENANTS = 3,
    PDP_REPL_QUOTAS  = 4,
    PDP_REPL_LISTS   = 5,
    PDP_REPL_BLOBS   = 6,
} pdp_repl_db;

#define PDP_REPL_LINEAGE_LEN 32 /* hex characters */
#define PDP_REPL_BLOB_NAME_MAX 31

/* What an admin write of a replicated database returns on a replica
 * (tg_err has no "not permitted": the store is configured to follow an
 * upstream), and what to tell whoever asked. */
#define PDP_REPL_EREPLICA TG_ECONFIG
#define PDP_REPL_REPLICA_MSG                                                   \
    "this PDP is a replica of its upstream; make the change on the central "   \
    "PDP"

/* What pdp_repl_changes returns when the entries asked for are not in the
 * log (pruned, or the replica is ahead of this primary): the replica must
 * take a snapshot. */
#define PDP_REPL_ESNAPSHOT TG_ENOTFOUND

typedef struct pdp_repl_state {
    /* 32 hex chars: identifies one primary's history; "" unknown */
    char     lineage[PDP_REPL_LINEAGE_LEN + 1];
    uint64_t head; /* last sequence number in the log (0: none yet) */
    uint64_t base; /* entries <= base are gone (pruned, or came as a
                      snapshot) */
    bool replica;  /* this store follows an upstream (set by the first
                      snapshot applied) */
} pdp_repl_state;

/* pdp_repl_state_get fills out. A primary store that has no lineage yet
 * gets one here (a write txn, once). */
tg_err pdp_repl_state_get(pdp_store *st, pdp_repl_state *out);

/* pdp_repl_blob_set sets blob name ([a-z]{1,31}: "bundle", "pricing") on a
 * primary: written to repl_blobs with its replog entry in one txn;
 * content byte-equal to what is stored writes nothing (TG_OK, on a
 * replica too). PDP_REPL_EREPLICA on a replica, TG_EINVAL for a bad name.
 * Borrows data until return. */
tg_err pdp_repl_blob_set(pdp_store *st, const char *name, const void *data,
                         size_t len);

/* pdp_repl_blob_get copies blob name into out (cleared first);
 * TG_ENOTFOUND when there is none. */
tg_err pdp_repl_blob_get(pdp_store *st, const char *name, tg_buf *out);

/* The primary side. Both append one buffer to out:
 *   u8 version (1), u8 kind (1 snapshot, 2 changes), u64 head (the log
 *   head in the read txn the buffer was made in), u32 n, n entries;
 *   entry = u64 seq (0 in a snapshot), u8 op (1 put, 2 del), u8 db
 *   (pdp_repl_db), u32 key len, key, u32 value len, value (0 for a del).
 * Little-endian. n makes a buffer cut at an entry boundary detectable.
 *
 * pdp_repl_snapshot appends every record of the replicated databases and
 * the blobs as of one read txn and sets *head to the log head in it. */
tg_err pdp_repl_snapshot(pdp_store *st, tg_buf *out, uint64_t *head);

/* pdp_repl_changes appends the log entries after from (exclusive), up to
 * about max_bytes (at least one entry when there is one), sets *last to
 * the seq of the last entry appended (from when none) and *head to the
 * log head. PDP_REPL_ESNAPSHOT (nothing appended) when from < base (those
 * entries were pruned) or from > head (a replica ahead of this primary:
 * another lineage or a lost log): the replica must take a snapshot.
 * TG_ECORRUPT when a log entry is damaged. */
tg_err pdp_repl_changes(pdp_store *st, uint64_t from, size_t max_bytes,
                        tg_buf *out, uint64_t *last, uint64_t *head);

/* The replica side. Each validates the whole buffer first (TG_EPROTO when
 * cut or garbled, TG_EVERSION for another version), then applies it in
 * one write txn, fsync'd like an admin write: all or nothing. On TG_OK,
 * *changed_out (may be NULL) is the mask (1u << pdp_repl_db) of the
 * databases that changed (PDP_REPL_BLOBS: reload the bundle or prices;
 * PDP_REPL_LISTS also raises meta "lists_generation", so every PDP on
 * the directory notices).
 *
 * pdp_repl_apply_snapshot replaces the whole content of the replicated
 * databases and blobs (a database whose content is the same is left
 * alone), empties the local log, sets base = head = the snapshot's head,
 * lineage (PDP_REPL_LINEAGE_LEN hex, else TG_EINVAL) = the primary's and
 * makes the store a replica. Borrows lineage and data until return. */
tg_err pdp_repl_apply_snapshot(pdp_store *st, const char *lineage,
                               const void *data, size_t len,
                               uint32_t *changed_out);

/* pdp_repl_apply_changes applies entries that continue exactly at head + 1
 * of the same lineage on a replica (else TG_EPROTO, nothing applied) and
 * appends them to the local log with their own seq numbers, so a promoted
 * replica serves the same numbers. A buffer without entries changes
 * nothing. */
tg_err pdp_repl_apply_changes(pdp_store *st, const char *lineage,
                              const void *data, size_t len,
                              uint32_t *changed_out);

/* pdp_repl_promote makes a replica a primary: its admin writes are
 * accepted and logged from head + 1, with the same lineage, so replicas
 * that followed the old primary continue from their seq. A no-op on a
 * primary. */
tg_err pdp_repl_promote(pdp_store *st);

/* pdp_repl_prune drops the oldest log entries so that at most keep remain
 * (base moves up to the last one dropped). */
tg_err pdp_repl_prune(pdp_store *st, uint64_t keep);

#endif
