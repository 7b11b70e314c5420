/* pdp_store_int.h - what the pdp_store_*.c files share and nothing else
 * may include: the store's struct, the record codec (every value starts
 * with a u8 version; integers little-endian; a string is a u16 length then
 * the bytes), and what each file offers the others, grouped by file. See
 * pdp_store.h for the layout of every database. */
#ifndef PDP_STORE_INT_H
#define PDP_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pdp_decisions.h"
#include "pdp_rec.h"
#include "pdp_store.h"
#include "tg_gen.h"

#define PDP_STORE_MAX_READERS 4096 /* one slot per nng context and thread */
#define PDP_STORE_MAX_DBS 32
#define PDP_STORE_GENS_MAX 4 /* one per ipc listener (pdp.listen) */
#define PDP_STORE_BATCH_MAX 512
#define PDP_STORE_REC_MAX (16 * 1024)
#define PDP_STORE_REC_VERSION 1
#define PDP_STORE_KEY_VERSION 3 /* 2: no expiry/rotation; 1: no labels */
#define PDP_KEY_FLAG_SUPERSEDED 1u
#define PDP_STORE_RETRIES 64 /* map doublings before giving up */

typedef enum pdp_store_op {
    PDP_STORE_OP_USAGE = 0, /* settle a usage report */
    PDP_STORE_OP_RESERVE,   /* record a reservation (res, res_len) */
    PDP_STORE_OP_FORGET,    /* end a reservation record (expired) */
} pdp_store_op;

typedef struct pdp_store_item {
    struct pdp_store_item *next;
    pdp_store_op           op;
    void                  *res; /* RESERVE: the encoded reservation */
    size_t                 res_len;
    char                  *content; /* USAGE: captured bodies (JSON); NULL */
    size_t                 content_len;
    tg_usage               usage; /* RESERVE: only request_id */
    int64_t                cost;
    int64_t                settled_ms;
    pdp_store_usage_cb     cb;
    void                  *arg;
    tg_usage_ack           ack;
    uint32_t               nspend;
    pdp_limits_spend_key   spend[PDP_LIMITS_BUDGETS_MAX];
    pdp_limits_spend_key  *spend_out;  /* the caller's, written back */
    uint32_t              *nspend_out; /* how many: the record's keys */
} pdp_store_item;

struct pdp_store {
    MDB_env *env;
    MDB_dbi  meta;
    MDB_dbi  keys;
    MDB_dbi  key_ids;
    MDB_dbi  usage;
    MDB_dbi  totals;
    MDB_dbi  tenants;
    MDB_dbi  history;
    MDB_dbi  budgets;
    MDB_dbi  alerts;
    MDB_dbi  quotas;
    MDB_dbi  tokens;
    MDB_dbi  audit;
    MDB_dbi  limits; /* limits_state */
    MDB_dbi  reservations;
    MDB_dbi  decisions;
    MDB_dbi  decision_ids;
    MDB_dbi  checkpoints;
    MDB_dbi  bundle_files;
    MDB_dbi  lists;
    MDB_dbi  list_history;
    MDB_dbi  responses; /* pdp_responses.h */
    /* Replication (pdp_store_repl.c): the change log of the replicated
     * databases and the blobs (active bundle, pricing) it carries. */
    MDB_dbi replog;
    MDB_dbi repl_blobs;
    /* Upstream (pdp_store_forward.c): reports a sidecar still owes its
     * central PDP, and the budget/rate leases a central PDP granted. */
    MDB_dbi     forward;
    MDB_dbi     leases;
    atomic_bool fwd_on; /* committed reports are queued for forwarding */
    char        fwd_via[TG_ID_MAX]; /* set before fwd_on */
    /* The transaction log (pdp_store_txlog.c, pdp_txlog.h). txl_db maps
     * a handle to its pdp_txlog_db (0: not logged), filled at open. The
     * txl_ fields below txl_head belong to the write txn in progress:
     * LMDB runs one at a time per environment, and
     * pdp_store__txlog_begin resets them at every begin. */
    MDB_dbi          txlog;
    uint8_t          txl_db[PDP_STORE_MAX_DBS + 2]; /* + LMDB's own two */
    bool             txl_open; /* the databases are open: read the role */
    _Atomic uint64_t txl_head; /* pdp_txlog_head */
    bool             txl_active; /* this txn logs (role "active") */
    uint64_t         txl_next;   /* its next seq; 0: not read yet */
    uint64_t         txl_last;   /* the last seq it wrote; 0: none */
    tg_buf           txl_ent;    /* scratch: one entry */
    /* State generation files (tg_gen.h), bumped after every write txn
     * that changed a replicated database (what decisions read);
     * gen_touched belongs to the write txn in progress, like txl_. */
    tg_gen          *gens[PDP_STORE_GENS_MAX];
    _Atomic unsigned n_gens; /* gens[] below it are set */
    atomic_bool      gen_failed; /* an ipc listener's could not be made */
    bool             gen_touched;
    /* The decision log: the key that signs checkpoints (borrowed; NULL:
     * none yet) and every how many records (under mu to set; read by the
     * writer); the writer's scratch for one record. */
    const pdp_signer *signer;
    uint64_t          cp_every;
    tg_buf            dec_body;
    tg_buf            dec_rec;
    tg_buf            dec_cp;
    tg_buf            dec_attrs;
    pdp_key           dec_key; /* scratch: the report's key, tenant */
    pdp_tenant        dec_tenant;
    /* The last record this writer appended and its hash: the next one
     * chains to it without hashing it again (checked against the last
     * record in each txn, so a txn that did not commit misleads no one). */
    uint64_t          dec_head_seq;
    uint8_t           dec_head[TG_SHA256_LEN];
    /* Disk full: when the writer last said so (it says it once a minute,
     * not once per failed commit). Writer thread only. */
    atomic_llong     full_logged_ms;
    char            *dir;
    pthread_rwlock_t resize_lk;
    bool             lk_init;
    pthread_mutex_t  mu; /* guards the queue below */
    pthread_cond_t   cv;
    pdp_store_item  *head;
    pdp_store_item  *tail;
    bool             stopping;
    bool             writer_running;
    pthread_t        writer;
};

struct pdp_store_reader {
    pdp_store *st;
    MDB_txn   *txn; /* reset between reads; keeps its reader slot */
    bool       active;
};

/* ---- sequence keys: u64, BIG-endian, so LMDB order is sequence order -- */

static inline void
pdp_store__seq_key(uint8_t key[8], uint64_t seq)
{
    for (int i = 0; i < 8; i++) {
        key[i] = (uint8_t)(seq >> (56 - 8 * i));
    }
}

/* pdp_store__blob points b at the next blob of in (a u32 length before
 * it, pdp_rec_get_blob); false past the end. The change logs' entries. */
static inline bool
pdp_store__blob(pdp_rec_in *in, MDB_val *b)
{
    const void *d;
    size_t      n;

    if (!pdp_rec_get_blob(in, &d, &n)) {
        return false;
    }
    b->mv_data = (void *)d;
    b->mv_size = n;
    return true;
}

/* pdp_store__next_seq gives in *seq the sequence after the last key of dbi
 * (1 for an empty one): what an append-only database (admin_audit,
 * policy_history, list_history) writes next, inside write txn. Returns an
 * LMDB error code (0: done). */
int pdp_store__next_seq(MDB_txn *txn, MDB_dbi dbi, uint64_t *seq);

/* pdp_store__seq_of reads a sequence key; 0 for anything else. */
static inline uint64_t
pdp_store__seq_of(const MDB_val *k)
{
    const uint8_t *p   = k->mv_data;
    uint64_t       seq = 0;

    if (k->mv_size != 8) {
        return 0;
    }
    for (int i = 0; i < 8; i++) {
        seq = seq << 8 | p[i];
    }
    return seq;
}

/* ---- record codec ---------------------------------------------------- */

typedef struct pdp_rec_out {
    uint8_t buf[PDP_STORE_REC_MAX];
    size_t  len;
    bool    bad;
} pdp_rec_out;

static inline void
pdp_rec_put(pdp_rec_out *o, const void *data, size_t n)
{
    if (o->bad || n > sizeof(o->buf) - o->len) {
        o->bad = true;
        return;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
}

static inline void
pdp_rec_uint(pdp_rec_out *o, uint64_t v, size_t width)
{
    uint8_t b[8];

    for (size_t i = 0; i < width; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    pdp_rec_put(o, b, width);
}

static inline void
pdp_rec_str(pdp_rec_out *o, const char *s)
{
    size_t n = strlen(s);

    if (n > UINT16_MAX) {
        o->bad = true;
        return;
    }
    pdp_rec_uint(o, n, 2);
    pdp_rec_put(o, s, n);
}

static inline void
pdp_rec_labels(pdp_rec_out *o, const tg_kv *l, uint32_t n)
{
    pdp_rec_uint(o, n, 2);
    for (uint32_t i = 0; i < n; i++) {
        pdp_rec_str(o, l[i].key);
        pdp_rec_str(o, l[i].value);
    }
}

static inline void
pdp_rec_get_labels(pdp_rec_in *in, tg_kv *l, uint32_t *n)
{
    *n = (uint32_t)pdp_rec_get_uint(in, 2);
    if (*n > PDP_LABELS_MAX) {
        in->bad = true;
        *n      = 0;
        return;
    }
    for (uint32_t i = 0; i < *n; i++) {
        pdp_rec_get_str(in, l[i].key, sizeof(l[i].key));
        pdp_rec_get_str(in, l[i].value, sizeof(l[i].value));
    }
}

/* ---- pdp_store.c: the environment ------------------------------------- */

/* pdp_store__rc maps an LMDB return code to a tg_err. */
tg_err pdp_store__rc(int rc);

/* pdp_store__write runs fn in a write txn and commits it when fn returns
 * 0; on MDB_MAP_FULL it grows the map and runs fn again (fn must be
 * repeatable), so a write is never dropped for lack of space. */
typedef int (*pdp_store_txn_fn)(pdp_store *st, MDB_txn *txn, void *arg);
tg_err pdp_store__write(pdp_store *st, pdp_store_txn_fn fn, void *arg);

/* pdp_store__write_nosync is pdp_store__write without the fsync: the
 * commit survives a crash of this process (LMDB wrote it to the file),
 * and the next synced write or pdp_store_sync makes it survive an
 * operating-system crash too. The environment is opened MDB_NOSYNC and
 * every other write syncs on its own. */
tg_err pdp_store__write_nosync(pdp_store *st, pdp_store_txn_fn fn, void *arg);

/* pdp_store__log_failure says why a write (what: "write", "fsync") failed
 * with LMDB code rc, at most once a minute. */
void pdp_store__log_failure(pdp_store *st, const char *what, int rc);

/* pdp_store__get reads key of database dbi in rd's snapshot (rd must be
 * inside pdp_store_read_begin). Borrows: *v points into the map, valid
 * until pdp_store_read_end. */
tg_err pdp_store__get(pdp_store_reader *rd, MDB_dbi dbi, const void *key,
                      size_t klen, MDB_val *v);

/* pdp_store__scan walks one database in a snapshot, last to first when
 * backwards. fn returning TG_EEXIST stops the walk without an error. */
typedef tg_err (*pdp_store_scan_fn)(const MDB_val *k, const MDB_val *v,
                                    void *arg);
tg_err pdp_store__scan(pdp_store *st, MDB_dbi dbi, bool backwards,
                       pdp_store_scan_fn fn, void *arg);

/* ---- pdp_store_writer.c: the writer thread ------------------------------ */

/* pdp_store__writer_start starts the writer thread (st->mu, st->cv
 * initialised); pdp_store__writer_stop drains the queue, stops and joins
 * it (a no-op when it is not running). */
tg_err pdp_store__writer_start(pdp_store *st);
void   pdp_store__writer_stop(pdp_store *st);

/* ---- pdp_store_ledger.c: usage, totals, budgets, alerts ----------------- */

/* pdp_store__usage_decode fills r from a usage row (all but
 * r->usage.request_id, the database key). */
tg_err pdp_store__usage_decode(const MDB_val *v, pdp_usage_rec *r);

/* pdp_store__usage_put writes the usage row of report it (not there yet)
 * and, unless it was abandoned, its totals and budget spend (filling
 * it->spend[].nfired and spent_after), inside txn; o is scratch. Returns
 * an LMDB rc. */
int pdp_store__usage_put(pdp_store *st, MDB_txn *txn, pdp_store_item *it,
                         pdp_rec_out *o);

/* ---- pdp_store_decisions.c: the decision log ---------------------------- */

/* pdp_store__decisions_open opens its databases (added without a schema
 * bump: older builds ignore them). */
int pdp_store__decisions_open(pdp_store *st, MDB_txn *txn);

/* pdp_store__decision_append chains the record of report it (settled in
 * txn) to the log, and signs a checkpoint when one is due. */
int pdp_store__decision_append(pdp_store *st, MDB_txn *txn,
                               const pdp_store_item *it);

/* ---- pdp_store_limits.c: limits_state and reservations ------------------ */

/* pdp_store__res_end marks reservation record k ended inside txn (o is
 * scratch); MDB_NOTFOUND when there is no open one. */
int pdp_store__res_end(pdp_store *st, MDB_txn *txn, MDB_val *k, pdp_rec_out *o);

/* pdp_store__res_settle settles the reservation record of usage report it
 * inside txn (o is scratch), taking its budget keys from the record when
 * it->nspend_out asks for them; MDB_NOTFOUND when there is none. */
int pdp_store__res_settle(pdp_store *st, MDB_txn *txn, pdp_store_item *it,
                          pdp_rec_out *o);

/* ---- pdp_store_admin.c: quotas, tokens, audit trail, policy history ----- */

/* pdp_store__audit_txn appends the pdp_audit arg in txn (its seq is
 * written back). */
int pdp_store__audit_txn(pdp_store *st, MDB_txn *txn, void *arg);

/* pdp_store__quota_put_in is pdp_store_quota_put inside txn (another
 * change's: both or neither). pdp_store_admin.c. */
int pdp_store__quota_put_in(pdp_store *st, MDB_txn *txn, const pdp_quota *q);

/* pdp_store__admin_open opens the databases added without a schema bump
 * (quotas, admin_tokens, admin_audit, limits_state) inside the store's
 * init txn. */
int pdp_store__admin_open(pdp_store *st, MDB_txn *txn);

/* ---- pdp_store_lists.c: guardrail term lists ---------------------------- */

/* pdp_store__lists_open opens lists and list_history (added without a
 * schema bump) inside the store's init txn. */
int pdp_store__lists_open(pdp_store *st, MDB_txn *txn);

/* pdp_store__repl_open opens replog and repl_blobs (added without a
 * schema bump: older builds ignore them). pdp_store_repl.c. */
int pdp_store__repl_open(pdp_store *st, MDB_txn *txn);

/* pdp_store__forward_open opens forward and leases (added without a
 * schema bump). pdp_store_forward.c. */
int pdp_store__forward_open(pdp_store *st, MDB_txn *txn);

/* pdp_store__forward_usage queues report it for the central PDP inside
 * txn, when forwarding is on (else does nothing). LMDB rc. */
int pdp_store__forward_usage(pdp_store *st, MDB_txn *txn,
                             const pdp_store_item *it);

/* pdp_store__armed_amend sets member name (a whole number) in the detail
 * of the audit line armed on this thread for st, if there is one: what
 * only the change's own txn knows (a list's new version). Idempotent, so
 * a txn run again after the map grew amends it the same. pdp_store.c. */
void pdp_store__armed_amend(pdp_store *st, const char *name, uint64_t value);

/* ---- record readers, for pdp_store_check --------------------------------- */

/* Each decodes one record of its database (pdp_store.h) into the struct
 * given: TG_OK, TG_EVERSION (a version this build does not read) or TG_EIO
 * (damaged). pdp_store__key_decode and pdp_store__tenant_decode are in
 * pdp_store_keys.c (a tenant's id, its key, is not filled);
 * pdp_store__totals_decode and pdp_store__budget_decode in
 * pdp_store_ledger.c; pdp_store__admin_check_rec in pdp_store_admin.c
 * decodes the records of its databases (TG_ENOTFOUND: db is not one). */
tg_err pdp_store__key_decode(const MDB_val *v, pdp_key *k);
tg_err pdp_store__tenant_decode(const MDB_val *v, pdp_tenant *t);
tg_err pdp_store__totals_decode(const MDB_val *v, pdp_totals *t);
tg_err pdp_store__budget_decode(const MDB_val *k, const MDB_val *v,
                                pdp_limits_spend_key *sk, int64_t *spent);
tg_err pdp_store__admin_check_rec(const char *db, const MDB_val *k,
                                  const MDB_val *v);
/* pdp_store__lists_check_rec decodes a record of lists or list_history,
 * every term checked (TG_ENOTFOUND: db is neither). pdp_store_lists.c. */
tg_err pdp_store__lists_check_rec(const char *db, const MDB_val *k,
                                  const MDB_val *v);

/* ---- record writers, for pdp_store_import -------------------------------- */

/* Each appends the record of its database (pdp_store.h) to o, as the
 * file's own writes do (o->bad when it does not fit): pdp_store_export.c
 * writes imported records through them, so each layout has one encoder.
 * Keys: pdp_store__quota_key fills buf (PDP_QUOTA_KEY_MAX bytes) and
 * pdp_store__totals_key buf (cap bytes, TG_ID_MAX + 4 holds any id), each
 * returning the length; pdp_store__budget_key resets o, writes the key
 * and returns its length (0: it does not fit). */
#define PDP_QUOTA_KEY_MAX (1 + TG_ID_MAX)
void   pdp_store__key_encode(pdp_rec_out *o, const pdp_key *k); /* keys.c */
void   pdp_store__tenant_encode(pdp_rec_out *o, const pdp_tenant *t);
size_t pdp_store__quota_key(uint8_t *buf, pdp_quota_scope scope,
                            const char *id); /* admin.c */
void   pdp_store__quota_encode(pdp_rec_out *o, const pdp_quota *q);
void   pdp_store__audit_encode(pdp_rec_out *o, const pdp_audit *a);
void   pdp_store__history_encode(pdp_rec_out *o, const pdp_activation *a);
void   pdp_store__usage_encode(pdp_rec_out *o, const tg_usage *u, int64_t cost,
                               int64_t settled_ms); /* ledger.c */
void   pdp_store__totals_encode(pdp_rec_out *o, const pdp_totals *t);
size_t pdp_store__totals_key(char *buf, size_t cap, pdp_totals_kind kind,
                             const char *id);
size_t pdp_store__budget_key(pdp_rec_out *o, const pdp_limits_spend_key *sk);
void   pdp_store__budget_val(pdp_rec_out *o, int64_t spent, int64_t updated_ms);
void   pdp_store__alert_val(pdp_rec_out *o, int64_t fired_ms, int64_t spent,
                            int64_t limit);
/* pdp_store_lists.c: */
void pdp_store__list_change_encode(pdp_rec_out *o, const pdp_list_change *c);

/* A list record can hold megabytes: pdp_store__list_encode writes the
 * record of the n terms at v into p, which has room for
 * pdp_store__list_size's bytes. pdp_store_lists.c. */
size_t pdp_store__list_size(const char *actor, const char *const *v,
                            uint32_t n);
void   pdp_store__list_encode(uint8_t *p, uint64_t version, int64_t updated_ms,
                              const char *actor, const char *const *v,
                              uint32_t n);

/* pdp_store__bundle_files_put keeps files (a JSON text; NULL: nothing)
 * as the bundle files of hash ("": nothing), once per hash (a hash
 * already there is left as it is), inside txn. LMDB rc. pdp_store_admin.c. */
int pdp_store__bundle_files_put(pdp_store *st, MDB_txn *txn, const char *hash,
                                const char *files);

/* pdp_store__budget_row_decode reads a budgets record (alert false) or an
 * alerts_fired record (true) into r, as pdp_store__budget_decode does:
 * TG_OK, TG_EVERSION or TG_EIO. pdp_store_ledger.c. */
tg_err pdp_store__budget_row_decode(const MDB_val *k, const MDB_val *v,
                                    bool alert, pdp_budget_row *r);

/* ---- pdp_store_repl.c: the change log (pdp_repl.h) ----------------------- */

/* pdp_store__rput is mdb_put(txn, dbi, k, v, flags) on a replicated
 * database (keys, key_ids, tenants, quotas, lists, repl_blobs) plus its
 * replog entry (the next seq) in the same txn; pdp_store__rdel is
 * mdb_del(txn, dbi, k, NULL) likewise (nothing logged when it returns
 * MDB_NOTFOUND). Every admin write of those databases goes through them.
 * On a replica they write nothing and return MDB_KEYEXIST, which the
 * public function turns into PDP_REPL_EREPLICA with pdp_store__refused.
 * Borrows k and v until return (they may point into the map: both are
 * copied before anything is written). Not for MDB_RESERVE. */
int pdp_store__rput(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k,
                    MDB_val *v, unsigned flags);
int pdp_store__rdel(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k);

/* pdp_store__refused is rv, or PDP_REPL_EREPLICA (said in the log) when
 * the write this thread just ran on st was refused because st is a
 * replica. Every public function whose txn calls pdp_store__rput or
 * pdp_store__rdel passes its pdp_store__write result through it. */
tg_err pdp_store__refused(pdp_store *st, tg_err rv);

/* pdp_store__log_prune drops the oldest entries of a change log (dbi:
 * replog or txlog, u64 BIG-endian keys) so that at most keep remain,
 * setting *base to the last one dropped; MDB_KEYEXIST when there is
 * nothing to drop (the txn need not commit). */
int pdp_store__log_prune(pdp_store *st, MDB_txn *txn, MDB_dbi dbi,
                         uint64_t keep, uint64_t *base);

/* pdp_store__responses_open opens the responses database inside the
 * store's init txn. pdp_store_responses.c. */
int pdp_store__responses_open(pdp_store *st, MDB_txn *txn);

/* pdp_store__lists_gen_raise raises meta "lists_generation" inside txn.
 * pdp_store_lists.c. */
int pdp_store__lists_gen_raise(pdp_store *st, MDB_txn *txn);

/* pdp_store__repl_lineage_new gives the store a new replication lineage
 * inside txn (a promoted central PDP: its sidecars take a snapshot).
 * pdp_store_repl.c. */
int pdp_store__repl_lineage_new(pdp_store *st, MDB_txn *txn);

/* ---- pdp_store_txlog.c: the transaction log (pdp_txlog.h) ---------------- */

/* pdp_store__txlog_open opens txlog inside the store's init txn (after
 * every other database: it maps their handles) and reads the role for
 * that txn; pdp_store__txlog_begin reads it at the start of every other
 * write txn (one mdb_get) and resets the txn's counters; after a commit
 * pdp_store__txlog_committed publishes last (st->txl_last read before
 * the commit: the next txn resets it) as the head. LMDB rc. */
int  pdp_store__txlog_open(pdp_store *st, MDB_txn *txn);
int  pdp_store__txlog_begin(pdp_store *st, MDB_txn *txn);
void pdp_store__txlog_committed(pdp_store *st, uint64_t last);

/* Every write of the store's databases goes through these, never
 * mdb_put, mdb_del, mdb_cursor_del or mdb_drop directly (pdp_store_txlog.c
 * aside: the log itself, meta's "ha_*" and "txlog_*" keys, and what
 * pdp_txlog_apply writes): each does the LMDB call and, when the txn
 * logs, appends its entry (nothing when the call fails:
 * MDB_KEYEXIST, MDB_NOTFOUND). pdp_store__put is mdb_put (not
 * MDB_RESERVE: EINVAL, the value must be known to log it; on
 * MDB_KEYEXIST *v is the existing value as mdb_put leaves it);
 * pdp_store__del is mdb_del(txn, dbi, k, NULL); pdp_store__cursor_del is
 * mdb_cursor_del(cur, 0) of the record cur is at; pdp_store__drop
 * empties dbi (mdb_drop(txn, dbi, 0); not meta, which holds this copy's
 * own keys: EINVAL). Borrows k and v until return;
 * they may point into the map (copied before anything is written). */
/* pdp_store__repl_db: the replicated database dbi is (PDP_REPL_*), 0 when
 * it is not one. */
uint8_t pdp_store__repl_db(const pdp_store *st, MDB_dbi dbi);

/* pdp_store__gen_mark notes that the write txn in progress changes dbi:
 * a replicated database bumps the generation files once it commits. */
static inline void
pdp_store__gen_mark(pdp_store *st, MDB_dbi dbi)
{
    if (st->n_gens > 0 && pdp_store__repl_db(st, dbi) != 0) {
        st->gen_touched = true;
    }
}

int pdp_store__put(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k,
                   MDB_val *v, unsigned flags);
int pdp_store__del(pdp_store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k);
int pdp_store__cursor_del(pdp_store *st, MDB_cursor *cur);
int pdp_store__drop(pdp_store *st, MDB_txn *txn, MDB_dbi dbi);

/* pdp_store__txlog_head_in reads base and the head (the log's last seq,
 * or base when that is higher: an empty log) in txn, of the environment
 * whose txlog and meta handles are given (the store's, or a copy's).
 * MDB_CORRUPTED: meta "txlog_base" is not ASCII decimal. */
int pdp_store__txlog_head_in(MDB_txn *txn, MDB_dbi txlog, MDB_dbi meta,
                             uint64_t *head, uint64_t *base);

/* pdp_store__txlog_check_rec checks one txlog record for `state check`:
 * a sequence key and an entry of the layout in pdp_txlog.h. */
tg_err pdp_store__txlog_check_rec(const MDB_val *k, const MDB_val *v);

#endif
