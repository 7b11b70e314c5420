/* pdp_txlog.h - the store's side of a central PDP's standby: the
 * transaction log an active PDP keeps of every write to its store (all
 * databases, so the standby holds the ledger, the leases and the
 * reservations, not only what sidecars replicate), a consistent copy of the
 * whole store to start a standby from, applying the log on the standby and
 * promoting it. Who calls what and when (the network) is
 * pdp/serve/pdp_ha.c. Thread-safe like pdp_store.
 *
 * Layout (pdp_store.h lists the databases):
 *   txlog  u64 sequence, BIG-endian -> u8 flags (1: the first entry of its
 *          write txn), u8 op (1 put, 2 del, 3 drop: the database emptied),
 *          u8 db (pdp_txlog_db), u32 key length, the key, u32 value
 *          length, the value (0 bytes for a del or drop). Little-endian
 *          lengths.
 *   meta   "ha_role" ("active": every write txn logs; "standby": only
 *          pdp_txlog_apply writes the log; absent: no log), "ha_epoch"
 *          (ASCII decimal, 0 when absent: +1 at every promotion),
 *          "ha_promoted" ("1": this store became active by a promotion),
 *          "ha_promote" (a promotion asked for by the command line: "1", or
 *          "force"), "ha_said" (the standby's answer to it, text),
 *          "txlog_lineage" (32 hex: which history the numbers count; new at
 *          every promotion), "txlog_base" (ASCII decimal: entries <= base
 *          are gone; the head is the last txlog key, or base when empty).
 * Writes to txlog itself and to meta keys starting "ha_" or "txlog_" are
 * never logged (they describe this copy, not the shared state).
 *
 * On an active store every write txn (pdp_store__write and
 * pdp_store__write_nosync, the writer thread's included, and the command
 * line's from another process) appends one entry per put, del or drop it
 * made in any other database, in the same txn, numbered on from the head
 * with no gap; a reader sees only whole txns, so entries of one txn travel
 * together. The role is read at the start of each write txn (one mdb_get:
 * all a store without a role pays). Nothing refuses other writes on a
 * standby: they are not logged, and it differs from its active until the
 * active writes those records again; its PDP must not make them.
 * Implemented by pdp_store_txlog.c (the log) and pdp_store_txcopy.c (copy
 * and install). */
#ifndef PDP_TXLOG_H
#define PDP_TXLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_err.h"

#define PDP_TXLOG_LINEAGE_LEN 32 /* hex characters */

/* The databases a txlog entry names, as its u8 db (pdp_store.h's names).
 * Append-only: a number is never reused or renumbered, a new database
 * gets the next one. txlog itself has none (never logged). */
typedef enum pdp_txlog_db {
    PDP_TXLOG_META           = 1,
    PDP_TXLOG_KEYS           = 2,
    PDP_TXLOG_KEY_IDS        = 3,
    PDP_TXLOG_USAGE          = 4,
    PDP_TXLOG_TOTALS         = 5,
    PDP_TXLOG_TENANTS        = 6,
    PDP_TXLOG_POLICY_HISTORY = 7,
    PDP_TXLOG_BUDGETS        = 8,
    PDP_TXLOG_ALERTS_FIRED   = 9,
    PDP_TXLOG_QUOTAS         = 10,
    PDP_TXLOG_ADMIN_TOKENS   = 11,
    PDP_TXLOG_ADMIN_AUDIT    = 12,
    PDP_TXLOG_LIMITS_STATE   = 13,
    PDP_TXLOG_RESERVATIONS   = 14,
    PDP_TXLOG_DECISIONS      = 15,
    PDP_TXLOG_DECISION_IDS   = 16,
    PDP_TXLOG_CHECKPOINTS    = 17,
    PDP_TXLOG_BUNDLE_FILES   = 18,
    PDP_TXLOG_LISTS          = 19,
    PDP_TXLOG_LIST_HISTORY   = 20,
    PDP_TXLOG_REPLOG         = 21,
    PDP_TXLOG_REPL_BLOBS     = 22,
    PDP_TXLOG_FORWARD        = 23,
    PDP_TXLOG_LEASES         = 24,
    PDP_TXLOG_RESPONSES      = 25,
} pdp_txlog_db;

#define PDP_TXLOG_DB_MAX PDP_TXLOG_RESPONSES

typedef enum pdp_ha_role {
    PDP_HA_NONE    = 0, /* no log (a single PDP, a sidecar) */
    PDP_HA_ACTIVE  = 1,
    PDP_HA_STANDBY = 2,
} pdp_ha_role;

typedef struct pdp_txlog_state {
    pdp_ha_role role;
    uint64_t    epoch;    /* promotions this history went through */
    bool        promoted; /* this store became active by a promotion */
    char        lineage[PDP_TXLOG_LINEAGE_LEN + 1]; /* "" none yet */
    uint64_t    head;     /* last sequence number (0: none) */
    uint64_t    base;     /* entries <= base are gone */
} pdp_txlog_state;

/* pdp_txlog_state_get fills out from one read txn. */
tg_err pdp_txlog_state_get(pdp_store *st, pdp_txlog_state *out);

/* pdp_txlog_set_role sets meta "ha_role" (PDP_HA_NONE deletes it). Setting
 * PDP_HA_ACTIVE on a store without a lineage, or on one that was not
 * active (its writes since were not logged: whoever followed the log must
 * start from a copy), makes a new one; on an active store it keeps it.
 * PDP_HA_STANDBY clears "ha_promoted" (a copy carries its active's).
 * TG_EINVAL for another role. fsync'd. */
tg_err pdp_txlog_set_role(pdp_store *st, pdp_ha_role role);

/* pdp_txlog_head is the last sequence number this process saw committed
 * (an atomic read: no txn), so that a reply can wait until its standby
 * holds everything committed before it: the highest of the head at open,
 * the last entry a write txn of this process committed (pdp_txlog_apply's
 * included) and the head pdp_txlog_state_get or pdp_txlog_changes read
 * (another process's writes show there). 0 when nothing was logged. */
uint64_t pdp_txlog_head(pdp_store *st);

/* pdp_txlog_changes appends to out the log entries after from (exclusive),
 * whole txns only, up to about max_bytes (at least one txn when there is
 * one), sets *last to the seq of the last entry appended (from when none)
 * and *head to the log head:
 *   u8 version (1), u64 head, u32 n, n x (u64 seq, then the entry's value
 *   as stored). Little-endian.
 * PDP_TXLOG_ECOPY (nothing appended) when from < base or from > head: the
 * standby must start from a copy. TG_ECORRUPT for a damaged entry. */
#define PDP_TXLOG_ECOPY TG_ENOTFOUND
tg_err pdp_txlog_changes(pdp_store *st, uint64_t from, size_t max_bytes,
                         tg_buf *out, uint64_t *last, uint64_t *head);

/* pdp_txlog_apply applies a buffer made by pdp_txlog_changes on a standby
 * store (role PDP_HA_STANDBY, else TG_ECONFIG) in one write txn, committed
 * but not fsync'd (like a reservation: a crash of the standby's process
 * keeps it; pdp_txlog_sync puts it on the disk, and the standby calls it
 * within 100 ms): every entry's seq must continue head + 1 with no gap
 * (else TG_EPROTO, nothing applied); puts overwrite, dels of a missing key
 * and drops of an empty database are no-ops; the entries are appended to
 * the standby's own txlog with their seq. Validates the whole buffer first
 * (TG_EPROTO cut or garbled, TG_EVERSION another version). *head_out (may
 * be NULL) is the head after. An empty buffer (len 0) or one without
 * entries changes nothing (it only reads; TG_ECONFIG still on a store
 * that is not a standby). */
tg_err pdp_txlog_apply(pdp_store *st, const void *data, size_t len,
                       uint64_t *head_out);

/* pdp_txlog_sync fsyncs what pdp_txlog_apply committed. */
tg_err pdp_txlog_sync(pdp_store *st);

/* pdp_txlog_copy writes a consistent, compacted copy of the whole store
 * (every database, the log and meta included, as of one read txn) to fd
 * (a regular file, positioned at 0, not fsync'd) and sets *head to the
 * log head in it, read from the copy itself (through /proc/self/fd: exact,
 * whatever committed during the copy). Growing the map in this process
 * waits until the copy ends. */
tg_err pdp_txlog_copy(pdp_store *st, int fd, uint64_t *head);

/* pdp_txlog_install replaces the store of state directory dir (closed by
 * every process: the caller closed its own) with the copy at path, which
 * is checked first: every page read (tg_lmdb_verify, through a hard link
 * in a directory it makes in dir: path must be on dir's filesystem, as
 * the rename needs anyway), then it opens as an LMDB environment with a
 * "meta" database (TG_EPROTO: dir left alone, path removed); then fsync'd,
 * renamed over dir/data.mdb (atomic) and dir fsync'd. TG_ESYS when it
 * cannot be checked or moved (path kept). The caller opens the store
 * again and sets the role PDP_HA_STANDBY before anything else writes.
 * err says why on failure. */
tg_err pdp_txlog_install(const char *dir, const char *path, char *err,
                         size_t errlen);

/* pdp_txlog_promote makes a standby store active in one fsync'd txn:
 * epoch + 1, a new txlog lineage (the log goes on from head + 1), a new
 * replication lineage for sidecars (pdp_repl.h: they take a snapshot, so
 * none keeps a change the old active logged but the standby never got),
 * "ha_promoted" 1, role active, "ha_promote" cleared. *epoch_out (may be
 * NULL) is the new epoch. TG_ECONFIG on a store that is not a standby. */
tg_err pdp_txlog_promote(pdp_store *st, uint64_t *epoch_out);

/* The command line's promotion handshake, through the store (the standby
 * process and the command line share the directory): pdp_txlog_ask_promote
 * sets "ha_promote" ("force" when force, else "1") and clears "ha_said";
 * pdp_txlog_promote_asked reads it (0 none, 1 asked, 2 forced);
 * pdp_txlog_say sets "ha_said" to text and clears "ha_promote" (a refusal:
 * the command line prints it; "" deletes it); pdp_txlog_said copies
 * "ha_said" into out, cut to cap - 1 bytes ("" none; TG_EINVAL when cap
 * is 0). None of these is logged. */
tg_err pdp_txlog_ask_promote(pdp_store *st, bool force);
int    pdp_txlog_promote_asked(pdp_store *st);
tg_err pdp_txlog_say(pdp_store *st, const char *text);
tg_err pdp_txlog_said(pdp_store *st, char *out, size_t cap);

/* pdp_txlog_prune drops the oldest entries so that at most keep remain
 * (base moves up to the last one dropped), whole txns or not: a standby
 * that needs them starts from a copy. Logs nothing itself. */
tg_err pdp_txlog_prune(pdp_store *st, uint64_t keep);

#endif
