/* pdp_store.h - all PDP state in one LMDB environment (pdp.state_dir):
 * virtual keys, tenants, settled usage, spend totals, the history of
 * policy bundle activations, guardrail term lists and a snapshot of the
 * rate-limit state.
 * Thread-safe. Decisions read through a
 * pdp_store_reader (one per thread or nng context); usage writes go through
 * one internal writer thread that group-commits; admin writes (the CLI,
 * possibly another process, and policy activations) are direct, short
 * write txns.
 *
 * Named databases and records. Integers are little-endian unless noted; a
 * string is a u16 byte length then the bytes (no NUL); every value starts
 * with a u8 record version, so a later release can add fields without a
 * dump/restore. A reader accepts every version it knows; writers write the
 * newest.
 *   meta     "schema_version" -> ASCII decimal ("4"). Schema 2 added the
 *            tenants and policy_history databases and key record version 2;
 *            schema 3 added key record version 3 (expiry, rotation);
 *            schema 4 added the budgets database; opening a schema-1 to 3
 *            directory upgrades it in place (nothing is
 *            rewritten but this value; version-1 key records stay readable),
 *            after which an older tollgate-pdp refuses the directory
 *            instead of failing on records it cannot read.
 *   keys     SHA-256 of the key (32 bytes) -> u8 version (2), u8 status
 *            (1 active, 2 revoked), i64 created_ms, i64 revoked_ms
 *            (0: never), str id, str tenant, str name, u16 n, n x str model
 *            (0 models: all), then (version 2 and up) u16 n, n x (str
 *            label name, str label value), then (version 3) i64 expires_ms
 *            (0: never), i64 rotated_ms, i64 grace_until_ms, u8 flags
 *            (1: superseded), then optionally str user (records written
 *            before it existed end before it; older readers ignore it). Version 1 is version 2 without labels.
 *            Rotation keeps the key id: the old hash's record becomes
 *            superseded (it still authenticates until its grace_until_ms)
 *            and key_ids points the id at the new hash, whose record holds
 *            when it replaced the old one and until when that still works.
 *   key_ids  key id -> SHA-256 (32 bytes) of its current secret
 *   tenants  tenant id -> u8 1, i64 created_ms, i64 updated_ms, str tier
 *            ("" none), u16 n, n x (str label name, str label value), then
 *            optionally str name (for people; records written before it
 *            existed end before it), then optionally i64 disabled_ms (0 or
 *            absent: enabled; its keys are refused while it is not)
 *   usage    request id -> u8 1, u8 flags (1 stream, 2 estimated),
 *            u8 endpoint, u32 status, i64 prompt_tokens,
 *            i64 completion_tokens, i64 cached_tokens, i64 cost_micro_usd,
 *            i64 started_ms, i64 duration_ms, i64 settled_ms, str key_id,
 *            str tenant_id, str model, str deployment_id, str reservation_id,
 *            str user
 *   totals   "k:<key id>" or "t:<tenant>" -> u8 1, i64 requests,
 *            i64 prompt_tokens, i64 completion_tokens, i64 cost_micro_usd,
 *            then optionally i64 last_ms (a key's "last used": when its
 *            latest settled request started; older records end before it)
 *   policy_history  u64 sequence, BIG-endian (so LMDB order is activation
 *            order) -> u8 1, u64 revision, u64 previous_revision (0: none),
 *            i64 activated_ms, u8 how (1 start, 2 sighup, 3 command,
 *            4 watch), u8 flags (1 rollback, 2 refused: a reload that was
 *            not activated), str bundle name, str hash, then optionally
 *            str actor, str why (records written before they were kept
 *            end before them)
 *   bundle_files  bundle hash (hex) -> u8 1, then the bundle's files as
 *            JSON text (file name -> content), once per hash: what each
 *            activation in policy_history ran. Added without a schema
 *            bump: older builds ignore it.
 *   budgets  str rule id, str scope value, u8 window (0 daily, 1 weekly,
 *            2 monthly, 3 rolling: one bucket per UTC hour), u64 window
 *            start in unix ms, BIG-endian -> u8 1, i64 settled
 *            cost_micro_usd, i64 updated_ms. The settled spend of one
 *            budget window, written in the same write txn as the usage
 *            record whose cost it adds (so a crash neither loses nor
 *            double counts it); read back at PDP start.
 *   alerts_fired  the budgets key (str rule id, str scope value, u8
 *            window, u64 window start BIG-endian), then u8 threshold
 *            percent -> u8 1, i64 fired_ms, i64 settled cost_micro_usd
 *            after the crossing, i64 limit micro-USD. Written with
 *            MDB_NOOVERWRITE in the same write txn as the spend that
 *            crossed the threshold, so a budget alert is queued at most
 *            once per window and threshold, across restarts and crashes
 *            (a crash after the commit and before delivery loses that
 *            alert: at most once, never twice). Added without a schema
 *            bump: older builds ignore the database.
 *   quotas   u8 scope ('t' tenant, 'k' key), str id -> u8 1, i64
 *            created_ms, i64 updated_ms, str updated_by, i64 budget
 *            limit micro-USD (0: no budget), u8 window, i32 rolling hours,
 *            u8 action (0 deny, 1 clamp), u8 n, n x u8 threshold percent,
 *            i64 rpm, i64 tpm, i64 concurrent (0: not limited). A budget
 *            and rate limits set through administration for one tenant or
 *            key; enforced like bundle rules whose ids are
 *            PDP_QUOTA_RULE_TENANT / PDP_QUOTA_RULE_KEY. Added without a
 *            schema bump (older builds ignore it), like the two below.
 *   admin_tokens  SHA-256 of an admin API token -> u8 1, i64 created_ms,
 *            i64 revoked_ms (0: active), str name, str created_by.
 *   admin_audit  u64 sequence, BIG-endian -> u8 1, i64 at_ms, str actor,
 *            str action, str target, str detail (JSON text). One record per
 *            administrative change, by the CLI or the admin API.
 *   limits_state  "snapshot" -> the rate-limit state as written by
 *            pdp_limits_snapshot (its own leading u8 version, layout in
 *            pdp_limits.h): windows, concurrency slots and open
 *            reservations, with the worst cases they hold in budgets (not
 *            the settled spend, which is in budgets). Rewritten whole by
 *            the running PDP about once a second and at stop, restored at
 *            start. Added without a schema bump: older builds ignore it.
 *            Written by pdp_limits_snapshot_windows since reservations
 *            have their own records (below): its reservation count is 0.
 *   reservations  request id -> a reservation record as encoded by
 *            pdp_limits_reservation_encode (u8 state: 1 open, 2 settled,
 *            3 ended; u64 admission number; then the snapshot's
 *            reservation layout). Committed before the decision that made
 *            it is sent (no fsync: a process crash keeps it) and settled
 *            in the same txn as the usage record that settles or abandons
 *            it, so a restart sees exactly what was in flight and a
 *            settled reservation never comes back. A settled record stays
 *            until a saved window snapshot counts its request (deleted in
 *            that snapshot's txn); an expired or released one stays ended
 *            for a late report (charged to the budgets it names), at most
 *            7 days. Added without a schema bump: older builds ignore it.
 *   decisions  u64 sequence, BIG-endian -> one decision record: JSON text
 *            (pdp_decisions.h), chained by the SHA-256 of the record
 *            before it. Appended in the write txn that settles the
 *            request's usage report, so every request the data plane
 *            reported leaves exactly one. Pruned (pdp_store_decisions_prune)
 *            only up to a checkpoint, which stays as the anchor.
 *   decision_ids  request id -> u64 sequence, BIG-endian.
 *   checkpoints  u64 sequence, BIG-endian -> a signed checkpoint line
 *            (pdp_decisions.h) over the head of the chain at that record.
 *            These three were added without a schema bump: older builds
 *            ignore them.
 *   lists    list name ([a-z0-9][a-z0-9_-]{0,63}) -> u8 1, u64 version,
 *            i64 updated_ms, str actor, u32 n, n x str term. A guardrail
 *            term list as it is now (pdp_terms.h says what a term may
 *            be); version is 1 at the first set and +1 at every change,
 *            a delete included, so one (name, version) never names two
 *            different sets of terms, even after the list is deleted and
 *            set again.
 *   list_history  u64 sequence, BIG-endian -> u8 1, i64 at_ms, str name,
 *            u64 version, u8 op (1 set, 2 delete), str actor, u32 n_terms,
 *            32 bytes SHA-256 of the terms (each followed by a newline).
 *            One record per change, in the change's txn: for a set, the
 *            terms it set; for a delete, the terms it removed. Never the
 *            terms themselves.
 *            Both added without a schema bump (older builds ignore them),
 *            like meta "lists_generation" (ASCII decimal), which every
 *            change of a list raises in its txn: a cheap poll for "did
 *            any list change" across processes.
 *   replog   u64 sequence, BIG-endian -> u8 op (1 put, 2 del), u8 db
 *            (pdp_repl_db: 1 keys, 2 key_ids, 3 tenants, 4 quotas, 5 lists,
 *            6 repl_blobs), u32 key length, the key, u32 value length, the
 *            record as written (0 bytes for a del). The change log a
 *            replica follows (pdp_repl.h): one entry per record an admin
 *            write put or deleted in those databases, in the same txn,
 *            numbered from 1 with no gap; a replica appends its primary's
 *            entries with their numbers. Pruned from the oldest.
 *   repl_blobs  name ([a-z]{1,31}: "bundle", "pricing") -> u8 1, the
 *            content: what a replica runs besides the records (the active
 *            policy bundle, the pricing table), replicated like them.
 *   meta "repl_lineage" (32 hex: which primary's history the log
 *            numbers; made by the first change a primary logs, a
 *            replica's comes from its primary), "repl_base" (ASCII
 *            decimal: entries up to it are gone, pruned or taken as a
 *            snapshot; the head is the last replog key, or base when the
 *            log is empty), "repl_replica" ("1": this store follows an
 *            upstream and refuses admin writes of the replicated
 *            databases; absent: a primary).
 *            All added without a schema bump: older builds ignore them
 *            (and neither log nor refuse).
 *   txlog    u64 sequence, BIG-endian -> one entry per put, del or drop
 *            of any other database by a write txn of an active central
 *            PDP (meta's own "ha_*" and "txlog_*" keys aside), in that
 *            txn: the log its standby applies. Layout, the meta keys it
 *            keeps ("ha_role", "txlog_base", ...) and the u8 database
 *            numbers: pdp_txlog.h. Empty and never written on a store
 *            without a role. Added without a schema bump: older builds
 *            ignore it (and do not log).
 *   The environment is opened MDB_NOSYNC: every write but a recorded
 *   reservation is followed by an fsync before it is reported done.
 */
#ifndef PDP_STORE_H
#define PDP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pdp_decisions.h"
#include "pdp_limits.h"
#include "pdp_terms.h"
#include "tg_buf.h"
#include "tg_err.h"
#include "tg_msg.h"

#define PDP_STORE_SCHEMA_VERSION 4
#define PDP_KEY_NAME_MAX 128
#define PDP_KEY_MODELS_MAX 64
#define PDP_LABELS_MAX 16 /* per key and per tenant */
#define PDP_BUNDLE_NAME_MAX 64
#define PDP_ACTOR_MAX 96

typedef struct pdp_store        pdp_store;
typedef struct pdp_store_reader pdp_store_reader;

typedef enum pdp_key_status {
    PDP_KEY_ACTIVE  = 1,
    PDP_KEY_REVOKED = 2,
} pdp_key_status;

typedef struct pdp_key {
    char           id[TG_ID_MAX];
    char           tenant[TG_ID_MAX];
    char           name[PDP_KEY_NAME_MAX];
    char           models[PDP_KEY_MODELS_MAX][TG_MODEL_MAX]; /* none: all */
    uint32_t       n_models;
    pdp_key_status status;
    int64_t        created_ms;
    int64_t        revoked_ms;             /* 0 while active */
    tg_kv          labels[PDP_LABELS_MAX]; /* principal.labels.<name> */
    uint32_t       n_labels;
    int64_t        expires_ms; /* 0: never */
    /* Current secret: when it replaced the previous one (0: never rotated)
     * and until when that previous one still works. Superseded secret:
     * when it was replaced and until when it works. */
    int64_t rotated_ms;
    int64_t grace_until_ms;
    bool    superseded; /* an old secret of a rotated key */
    /* The person or service the key is for: principal.user and the usage
     * record's user, whatever the request's "user" says ("": none). */
    char user[TG_MSG_USER_MAX];
} pdp_key;

/* What a key record allows at a given time, most final reason first. */
typedef enum pdp_key_state {
    PDP_KEY_STATE_ACTIVE  = 0,
    PDP_KEY_STATE_REVOKED = 1,
    PDP_KEY_STATE_ROTATED = 2, /* superseded and its grace period ended */
    PDP_KEY_STATE_EXPIRED = 3,
} pdp_key_state;

/* pdp_key_state_at says whether k authenticates at now_ms, and if not,
 * why. Pure; thread-safe. */
pdp_key_state pdp_key_state_at(const pdp_key *k, int64_t now_ms);

/* A tenant record: what tenant.* attributes read. A key's tenant need not
 * have one; then only tenant.id is known. */
typedef struct pdp_tenant {
    char     id[TG_ID_MAX];
    char     name[PDP_KEY_NAME_MAX]; /* for people; "" when not set */
    char     tier[TG_ID_MAX]; /* "" when not set */
    tg_kv    labels[PDP_LABELS_MAX];
    uint32_t n_labels;
    int64_t  created_ms;
    int64_t  updated_ms;
    int64_t  disabled_ms; /* 0: enabled */
} pdp_tenant;

/* A change to one tenant, applied in one write txn (so two concurrent
 * `tenants set` cannot lose each other's labels). */
typedef struct pdp_tenant_change {
    const char  *id;
    const char  *tier;   /* NULL: keep; "": clear */
    const tg_kv *labels; /* each set, or removed when its value is "" */
    uint32_t     n_labels;
    int64_t      now_ms;
    const char  *name; /* NULL: keep; "": clear */
} pdp_tenant_change;

typedef enum pdp_activation_how {
    PDP_ACTIVATION_START   = 1, /* loaded when serve started */
    PDP_ACTIVATION_SIGHUP  = 2,
    PDP_ACTIVATION_COMMAND = 3, /* tollgate-pdp reload (admin HTTP) */
    PDP_ACTIVATION_WATCH   = 4, /* the bundle directory changed */
} pdp_activation_how;

/* One activation of a policy bundle. */
typedef struct pdp_activation {
    uint64_t           seq; /* assigned by the store, increasing */
    uint64_t           revision;
    uint64_t           previous_revision; /* 0: nothing was active */
    int64_t            activated_ms;
    pdp_activation_how how;
    bool               rollback; /* revision not above the previous one */
    char               name[PDP_BUNDLE_NAME_MAX];
    char               hash[TG_MSG_HASH_MAX];
    /* Who asked ("start", "signal:SIGHUP", "file-watch", "token:NAME",
     * with "on behalf of cli:user@host" when the CLI says so); "" in
     * records written before it was kept. */
    char               actor[PDP_ACTOR_MAX];
    /* A reload that was refused: revision and hash are the candidate's
     * (0 and "" when it did not compile), why says what was wrong. */
    bool               refused;
    char               why[TG_MSG_TEXT_MAX];
} pdp_activation;

typedef struct pdp_totals {
    int64_t requests;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micro_usd;
    int64_t last_ms; /* when the latest settled request started (0: none) */
} pdp_totals;

typedef enum pdp_totals_kind {
    PDP_TOTALS_KEY    = 'k',
    PDP_TOTALS_TENANT = 't',
} pdp_totals_kind;

/* A settled usage report as stored. */
typedef struct pdp_usage_rec {
    tg_usage usage;
    int64_t  cost_micro_usd;
    int64_t  settled_ms;
} pdp_usage_rec;

/* pdp_store_open opens (creating, mode 0700) the state directory dir with an
 * initial map of map_size_mb (never shrinking a bigger existing map), checks
 * the schema version (writes it if missing; TG_EVERSION with advice if the
 * directory was written by a newer tollgate-pdp), clears stale reader slots
 * and starts the writer thread. On failure writes why into err.
 * Owns: *out, free with pdp_store_close. */
tg_err pdp_store_open(pdp_store **out, const char *dir, int64_t map_size_mb,
                      char *err, size_t errlen);

/* pdp_store_close commits every usage report already submitted (their
 * callbacks run), stops the writer and closes the environment. All readers
 * must be destroyed first. NULL is a no-op. */
void pdp_store_close(pdp_store *st);

/* pdp_store_gen_attach opens the state generation file of each ipc://
 * url in urls (tg_gen.h: "<socket>.gen"; other schemes have none),
 * creating it when create is set (the PDP; the command line only bumps
 * the files a PDP made), and from then on bumps it after every committed change to what
 * decisions read (keys, tenants, quotas, lists), whichever thread or
 * process of this store makes it; pdp_store_gen_bump bumps it for
 * anything else (a new bundle in effect). A file that cannot be opened is
 * logged and skipped: data planes then do not reuse decisions. Call once,
 * from one thread. */
void pdp_store_gen_attach(pdp_store *st, const char *const *urls, size_t n,
                          bool create);
void pdp_store_gen_bump(pdp_store *st);
/* pdp_store_gen_ok: every generation file asked for is open (a PDP that
 * cannot raise one must not mark decisions reusable). */
bool pdp_store_gen_ok(pdp_store *st);

/* pdp_store_map_size is the current map size in bytes. */
size_t pdp_store_map_size(pdp_store *st);

/* A reader holds one LMDB read txn slot, renewed per read; use it from one
 * thread at a time (any thread: the env is MDB_NOTLS).
 * Owns: *out, free with pdp_store_reader_destroy (before pdp_store_close). */
tg_err pdp_store_reader_create(pdp_store *st, pdp_store_reader **out);
void   pdp_store_reader_destroy(pdp_store_reader *rd);

/* pdp_store_read_begin starts a snapshot; every get below sees it until
 * pdp_store_read_end, which must follow promptly (a map resize waits for
 * it). Not nestable. */
tg_err pdp_store_read_begin(pdp_store_reader *rd);
void   pdp_store_read_end(pdp_store_reader *rd);

/* Gets inside a read: TG_ENOTFOUND when absent, TG_EVERSION on a record
 * this build cannot read, TG_EIO on an LMDB error. Results are copies. */
tg_err pdp_store_key_get(pdp_store_reader *rd,
                         const uint8_t hash[TG_SHA256_LEN], pdp_key *out);
tg_err pdp_store_key_get_by_id(pdp_store_reader *rd, const char *id,
                               pdp_key *out);
tg_err pdp_store_totals_get(pdp_store_reader *rd, pdp_totals_kind kind,
                            const char *id, pdp_totals *out);
tg_err pdp_store_usage_get(pdp_store_reader *rd, const char *request_id,
                           pdp_usage_rec *out);
tg_err pdp_store_tenant_get(pdp_store_reader *rd, const char *id,
                            pdp_tenant *out);

/* pdp_store_key_put stores a new key under its hash (record version 2,
 * with its labels). TG_EEXIST if the hash or the id is already stored
 * (nothing is written); TG_EINVAL for an empty id or too many models or
 * labels. Borrows k. */
tg_err pdp_store_key_put(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                         const pdp_key *k);

/* pdp_store_key_put_quota is pdp_store_key_put with the key's budget and
 * rate limits (q: scope key, id the key's; NULL: none) in the same
 * transaction: the key is stored with them or not at all. */
struct pdp_quota;
tg_err pdp_store_key_put_quota(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                               const pdp_key *k, const struct pdp_quota *q);

/* pdp_store_key_revoke marks key id revoked at now_ms, with every
 * superseded secret of it (those still in a rotation grace period too).
 * TG_ENOTFOUND for an unknown id, TG_EEXIST if it was already revoked
 * (nothing changes). */
tg_err pdp_store_key_revoke(pdp_store *st, const char *id, int64_t now_ms);

/* pdp_store_key_rotate gives key id a new secret (stored by new_hash) with
 * the same id, tenant, name, models, labels and expiry; the old secret
 * keeps working until now_ms + grace_ms (grace_ms 0: it stops at once).
 * TG_ENOTFOUND for an unknown id; TG_EINVAL when the key is revoked or
 * expired (nothing is written; out says which); TG_EEXIST if new_hash is
 * already stored. out (may be NULL) receives the current record: the new
 * one on TG_OK. */
tg_err pdp_store_key_rotate(pdp_store *st, const char *id,
                            const uint8_t new_hash[TG_SHA256_LEN],
                            int64_t now_ms, int64_t grace_ms, pdp_key *out);

/* pdp_store_tenant_set creates tenant c->id or changes it: the tier when
 * c->tier is given, each label in c->labels (an empty value removes it);
 * created_ms is kept, updated_ms becomes c->now_ms. *created says which.
 * TG_EINVAL for an empty id, TG_ETOOBIG when the result would hold more
 * than PDP_LABELS_MAX labels (nothing is written). out (may be NULL)
 * receives the record as stored. Borrows c. */
tg_err pdp_store_tenant_set(pdp_store *st, const pdp_tenant_change *c,
                            pdp_tenant *out, bool *created);

/* pdp_store_tenant_disable sets when tenant id was disabled (disabled_ms;
 * 0: enabled again), updated_ms becoming now_ms, and nothing else.
 * TG_ENOTFOUND when there is no such tenant. out (may be NULL) receives
 * the record as stored. */
tg_err pdp_store_tenant_disable(pdp_store *st, const char *id,
                                int64_t disabled_ms, int64_t now_ms,
                                pdp_tenant *out);

/* pdp_store_tenant_del removes tenant id's record and its quota (budget
 * and rate limits) in one transaction; its keys, usage and totals stay.
 * TG_ENOTFOUND when there is no such tenant. */
tg_err pdp_store_tenant_del(pdp_store *st, const char *id);

/* pdp_store_history_add appends an activation; a->seq is ignored and the
 * assigned one is written back. Borrows a. */
tg_err pdp_store_history_add(pdp_store *st, pdp_activation *a);

/* pdp_store_history_add_files is pdp_store_history_add that also keeps
 * the bundle's files (files_json, pdp_bundle_files_json; NULL: none) under
 * its hash, once per hash, in the same txn. */
tg_err pdp_store_history_add_files(pdp_store *st, pdp_activation *a,
                                   const char *files_json);

/* pdp_store_bundle_files copies the files kept for bundle hash into out
 * (JSON: file name -> content); TG_ENOTFOUND when none are (an activation
 * recorded before they were kept). */
tg_err pdp_store_bundle_files(pdp_store *st, const char *hash, tg_buf *out);

/* pdp_store_history_last copies the newest activation (not a refused
 * reload); TG_ENOTFOUND when
 * there is none. */
tg_err pdp_store_history_last(pdp_store *st, pdp_activation *out);

/* Listing, each in one snapshot, in database order (history: newest
 * first); keys lists each key id once (superseded secrets are left out). fn
 * borrows its pointer arguments only during the call. */
typedef void (*pdp_store_key_fn)(void *arg, const pdp_key *k);
typedef void (*pdp_store_totals_fn)(void *arg, pdp_totals_kind kind,
                                    const char *id, const pdp_totals *t);
typedef void (*pdp_store_tenant_fn)(void *arg, const pdp_tenant *t);
typedef void (*pdp_store_history_fn)(void *arg, const pdp_activation *a);
tg_err pdp_store_key_list(pdp_store *st, pdp_store_key_fn fn, void *arg);
tg_err pdp_store_totals_list(pdp_store *st, pdp_store_totals_fn fn, void *arg);
tg_err pdp_store_tenant_list(pdp_store *st, pdp_store_tenant_fn fn, void *arg);
tg_err pdp_store_history_list(pdp_store *st, pdp_store_history_fn fn,
                              void *arg);

/* pdp_store_usage_submit queues a usage report (copied) for the writer
 * thread, which settles it idempotently by u->request_id: the first report
 * is stored and added to the key's and the tenant's totals at
 * cost_micro_usd; a repeat is acked duplicate=true with the first report's
 * cost and changes nothing. cb runs on the writer thread exactly once,
 * after the batch holding the report is durably committed (rv TG_OK) or
 * failed; ack is borrowed during cb. If this returns an error (TG_ECLOSED
 * while closing, TG_ENOMEM) cb is never called. The map grows on MDB_MAP_FULL:
 * a report is never dropped for lack of space. */
typedef void (*pdp_store_usage_cb)(void *arg, tg_err rv,
                                   const tg_usage_ack *ack);
tg_err pdp_store_usage_submit(pdp_store *st, const tg_usage *u,
                              int64_t cost_micro_usd, pdp_store_usage_cb cb,
                              void *arg);

/* pdp_store_usage_submit_spend is pdp_store_usage_submit that also adds
 * cost_micro_usd to the settled spend of the nspend budget windows in
 * spend (copied), in the same write txn as the usage record, unless the
 * report is a duplicate. In that txn, every alert threshold of a window
 * (spend[i].thr, percent of spend[i].limit) that the cost took the
 * settled spend across and that has no alerts_fired record yet gets one;
 * before cb runs (on commit) spend[i].nfired/fired list those thresholds
 * and spend[i].spent_after the window's settled spend, so the caller
 * sends each alert once per window and threshold, even across restarts
 * (spend must stay valid until cb). */
tg_err pdp_store_usage_submit_spend(pdp_store *st, const tg_usage *u,
                                    int64_t               cost_micro_usd,
                                    pdp_limits_spend_key *spend,
                                    uint32_t nspend, pdp_store_usage_cb cb,
                                    void *arg);

/* pdp_store_reserve_submit queues reservation request_id (the len bytes
 * at data, copied: pdp_limits_reservation_encode) for the writer thread,
 * which records it unless a usage report for request_id is already stored
 * (then ack->duplicate is true and nothing is written: the caller must
 * release the reservation, the request was settled or abandoned first).
 * cb runs on the writer thread once the batch is committed (no fsync: a
 * crash of this process keeps it) or failed. Same contract as
 * pdp_store_usage_submit otherwise. */
tg_err pdp_store_reserve_submit(pdp_store *st, const char *request_id,
                                const void *data, size_t len,
                                pdp_store_usage_cb cb, void *arg);

/* pdp_store_reservation_list calls fn for every recorded reservation, in
 * one snapshot; fn borrows id and data during the call. */
typedef void (*pdp_store_res_fn)(void *arg, const char *id, const void *data,
                                 size_t len);
tg_err pdp_store_reservation_list(pdp_store *st, pdp_store_res_fn fn,
                                  void *arg);

/* pdp_store_reservation_forget queues, for the writer thread, the end of
 * reservation id's record (it expired): it holds nothing any more, but a
 * usage report that still comes is charged to the budgets it names. Never
 * blocks. */
tg_err pdp_store_reservation_forget(pdp_store *st, const char *id);

/* pdp_store_reservation_end ends an open reservation record now (a manual
 * release, or one past its TTL at start); TG_ENOTFOUND if there is no
 * open one. */
tg_err pdp_store_reservation_end(pdp_store *st, const char *id);

/* pdp_store_reservation_del deletes a record outright (an unreadable
 * one); TG_ENOTFOUND if there is none. */
tg_err pdp_store_reservation_del(pdp_store *st, const char *id);

/* pdp_store_usage_submit_res is pdp_store_usage_submit_spend where spend
 * has room for PDP_LIMITS_BUDGETS_MAX keys and *nspend says how many are
 * given: when none are (the reservation is no longer held in memory) and
 * the report's reservation record names budgets, the writer takes them
 * from the record, charges them in the same txn and writes them and
 * their count back before cb. */
tg_err pdp_store_usage_submit_res(pdp_store *st, const tg_usage *u,
                                  int64_t               cost_micro_usd,
                                  pdp_limits_spend_key *spend,
                                  uint32_t *nspend, pdp_store_usage_cb cb,
                                  void *arg);

/* pdp_store_usage_submit_content is pdp_store_usage_submit_res for a
 * report whose capture level kept the request's bodies: content (JSON
 * text, copied) goes into its decision record. */
tg_err pdp_store_usage_submit_content(pdp_store *st, const tg_usage *u,
                                      const char *content, size_t content_len,
                                      int64_t               cost_micro_usd,
                                      pdp_limits_spend_key *spend,
                                      uint32_t *nspend, pdp_store_usage_cb cb,
                                      void *arg);

/* pdp_store_budget_list calls fn for each stored budget window starting
 * at or after since_ms, in one snapshot. */
typedef void (*pdp_store_budget_fn)(void *arg, const pdp_limits_spend_key *k,
                                    int64_t spent_micro_usd);
tg_err pdp_store_budget_list(pdp_store *st, int64_t since_ms,
                             pdp_store_budget_fn fn, void *arg);

/* pdp_store_usage_settle is pdp_store_usage_submit that waits for the
 * commit and copies the ack out. Not for nng callbacks. */
tg_err pdp_store_usage_settle(pdp_store *st, const tg_usage *u,
                              int64_t cost_micro_usd, tg_usage_ack *ack);
tg_err pdp_store_usage_settle_spend(pdp_store *st, const tg_usage *u,
                                    int64_t               cost_micro_usd,
                                    pdp_limits_spend_key *spend,
                                    uint32_t nspend, tg_usage_ack *ack);

/* pdp_store_usage_list calls fn for every settled usage record, in request
 * id order, in one read snapshot; it streams (one record is decoded at a
 * time, nothing else is copied). fn borrows r only during the call; a
 * return other than TG_OK stops the walk and is returned as is. TG_EVERSION
 * or TG_EIO on a record this build cannot read. The snapshot is held (and
 * a map resize in this process waits) until the walk ends: not for nng
 * callbacks or the decision path. */
typedef tg_err (*pdp_store_usage_fn)(void *arg, const pdp_usage_rec *r);
tg_err pdp_store_usage_list(pdp_store *st, pdp_store_usage_fn fn, void *arg);

/* pdp_store_limits_save replaces the rate-limit snapshot (limits_state
 * "snapshot") with the len bytes at data, in one write txn (the map grows
 * when full). Direct, not through the usage writer: call it off the
 * decision path. Borrows data. */
tg_err pdp_store_limits_save(pdp_store *st, const void *data, size_t len);

/* pdp_store_limits_load appends the stored snapshot to out; TG_ENOTFOUND
 * when none was saved. */
tg_err pdp_store_limits_load(pdp_store *st, tg_buf *out);

/* ---- administration: quotas, admin tokens, audit trail --------------- */

#define PDP_QUOTA_RULE_TENANT "admin.tenant"
#define PDP_QUOTA_RULE_KEY "admin.key"
#define PDP_AUDIT_ACTION_MAX 48
#define PDP_AUDIT_TARGET_MAX 160
#define PDP_AUDIT_DETAIL_MAX 2048
#define PDP_TOKEN_NAME_MAX 64

typedef enum pdp_quota_scope {
    PDP_QUOTA_TENANT = 't',
    PDP_QUOTA_KEY    = 'k',
} pdp_quota_scope;

/* A budget and rate limits set through administration for one tenant or
 * key. A limit of 0 is not set. */
typedef struct pdp_quota {
    pdp_quota_scope scope;
    char            id[TG_ID_MAX];
    int64_t         created_ms;
    int64_t         updated_ms;
    char            updated_by[PDP_ACTOR_MAX];
    int64_t         limit_micro; /* budget, micro-USD */
    uint8_t         window;      /* pdp_window */
    int32_t         window_h;    /* rolling: hours */
    bool            clamp;       /* action clamp (else deny) */
    uint8_t         nthr;
    uint8_t         thr[PDP_LIMITS_THRESHOLDS_MAX]; /* ascending percent */
    int64_t         rpm;
    int64_t         tpm;
    int64_t         concurrent;
} pdp_quota;

/* pdp_store_quota_get reads the quota of (scope, id) inside a read. */
tg_err pdp_store_quota_get(pdp_store_reader *rd, pdp_quota_scope scope,
                           const char *id, pdp_quota *out);

/* pdp_store_quota_put creates or replaces q (created_ms kept from an
 * existing record). The tenant (a tenant record) or key id must exist, in
 * the same txn: TG_ENOTFOUND otherwise, nothing written. *created (may be
 * NULL) says whether it was new. Borrows q. */
tg_err pdp_store_quota_put(pdp_store *st, const pdp_quota *q, bool *created);

/* pdp_store_quota_del removes a quota; TG_ENOTFOUND if there is none. */
tg_err pdp_store_quota_del(pdp_store *st, pdp_quota_scope scope,
                           const char *id);

typedef void (*pdp_store_quota_fn)(void *arg, const pdp_quota *q);
tg_err pdp_store_quota_list(pdp_store *st, pdp_store_quota_fn fn, void *arg);

/* An admin API token; only its SHA-256 is stored. */
typedef struct pdp_admin_token {
    char    name[PDP_TOKEN_NAME_MAX];
    char    created_by[PDP_ACTOR_MAX];
    int64_t created_ms;
    int64_t revoked_ms; /* 0: active */
} pdp_admin_token;

/* pdp_store_token_put stores a new token. TG_EEXIST when an active token
 * has that name already (or the hash is stored). When replace is true an
 * active token of that name is deleted first, in the same txn (what serve
 * does with its "local" token at every start). Borrows t. */
tg_err pdp_store_token_put(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                           const pdp_admin_token *t, bool replace);

/* pdp_store_token_check looks a token up by hash: TG_OK with *out when it
 * is active, TG_ENOTFOUND when unknown or revoked. */
tg_err pdp_store_token_check(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                             pdp_admin_token *out);

/* pdp_store_token_revoke revokes the active token called name;
 * TG_ENOTFOUND when there is none. */
tg_err pdp_store_token_revoke(pdp_store *st, const char *name, int64_t now_ms);

typedef void (*pdp_store_token_fn)(void *arg, const pdp_admin_token *t);
tg_err pdp_store_token_list(pdp_store *st, pdp_store_token_fn fn, void *arg);

/* One administrative change. */
typedef struct pdp_audit {
    uint64_t seq; /* assigned by the store, increasing */
    int64_t  at_ms;
    char     actor[PDP_ACTOR_MAX];  /* "token:<name>" or "cli:<user>" */
    char     action[PDP_AUDIT_ACTION_MAX];   /* "keys.create", ... */
    char     target[PDP_AUDIT_TARGET_MAX];   /* "key:<id>", ... */
    char     detail[PDP_AUDIT_DETAIL_MAX];   /* JSON text, never a secret */
} pdp_audit;

/* pdp_store_audit_add appends a (a->seq is written back). Borrows a. */
tg_err pdp_store_audit_add(pdp_store *st, pdp_audit *a);

/* pdp_store_audit_arm makes the first write this thread commits on st from
 * now on append a in the same transaction, so a change and its audit line
 * are committed together or not at all (an audit line that cannot be
 * written fails the change). pdp_store_audit_disarm ends that and returns
 * whether a was committed. One armed record per thread; borrows a until
 * disarm. */
void pdp_store_audit_arm(pdp_store *st, pdp_audit *a);
bool pdp_store_audit_disarm(pdp_store *st);

/* pdp_store_audit_list calls fn for the newest records first until fn
 * returns false or limit records were given (0: all). */
typedef bool (*pdp_store_audit_fn)(void *arg, const pdp_audit *a);
tg_err pdp_store_audit_list(pdp_store *st, uint32_t limit,
                            pdp_store_audit_fn fn, void *arg);

/* ---- guardrail term lists (pdp_store_lists.c) ------------------------- */

/* A term list. In a listing (pdp_store_list_names) terms is NULL. */
typedef struct pdp_list_terms {
    char     name[PDP_LIST_NAME_MAX + 1];
    uint64_t version;    /* never reused for the name (pdp_store.h: lists) */
    int64_t  updated_ms; /* of the last change */
    char     actor[PDP_ACTOR_MAX]; /* who made it */
    uint32_t n;                    /* terms */
    size_t   bytes;                /* of the terms, a newline after each */
    /* The n terms in the order they were set, each NUL-ended and valid
     * (pdp_terms_check). One allocation holds the array and the text:
     * owned by the struct, freed by pdp_list_terms_fini. */
    char **terms;
} pdp_list_terms;

/* pdp_list_terms_fini frees l's terms (NULL-safe, idempotent). */
void pdp_list_terms_fini(pdp_list_terms *l);

/* What pdp_store_list_set did. */
typedef struct pdp_list_set_result {
    uint64_t version; /* the list's version now */
    uint32_t n;       /* its terms */
    bool     created; /* there was no list of that name */
    bool     changed; /* false: it had these terms in this order already;
                         nothing was written (no version, no history, no
                         audit line) */
} pdp_list_set_result;

/* pdp_store_list_set replaces every term of list name (creating it) with
 * the n terms at v, which must be a list as pdp_terms makes them
 * (pdp_terms_list_ok: each valid, no duplicates, within the limits):
 * TG_EINVAL otherwise, or for a bad name (pdp_terms_name_ok), nothing
 * written. In one write txn: the record (version + 1), a list_history
 * record, the lists generation raised, and the audit line armed on this
 * thread (pdp_store_audit_arm), whose detail gets "version". actor is
 * kept with the list (cut to PDP_ACTOR_MAX - 1 bytes). Borrows v. */
tg_err pdp_store_list_set(pdp_store *st, const char *name, const char *const *v,
                          uint32_t n, const char *actor, int64_t now_ms,
                          pdp_list_set_result *res);

/* One change of a list (list_history). */
typedef enum pdp_list_op {
    PDP_LIST_OP_SET    = 1,
    PDP_LIST_OP_DELETE = 2,
} pdp_list_op;

typedef struct pdp_list_change {
    uint64_t    seq; /* assigned by the store, increasing */
    int64_t     at_ms;
    char        name[PDP_LIST_NAME_MAX + 1];
    uint64_t    version; /* the list's version after the change */
    pdp_list_op op;
    char        actor[PDP_ACTOR_MAX];
    uint32_t    n;                     /* the terms set, or (delete) removed */
    uint8_t     sha256[TG_SHA256_LEN]; /* of those terms, "\n" after each */
} pdp_list_change;

/* pdp_store_list_del deletes list name, recording the delete (version +
 * 1, the terms it removed: out, may be NULL) in list_history and raising
 * the lists generation in the same txn, with the armed audit line as
 * pdp_store_list_set (its detail gets "version" and "count", the terms
 * removed). TG_ENOTFOUND when there is no such list. Nothing
 * stops deleting a list a bundle names: whoever compiles guardrails
 * decides what a missing list means. */
tg_err pdp_store_list_del(pdp_store *st, const char *name, const char *actor,
                          int64_t now_ms, pdp_list_change *out);

/* pdp_store_list_read reads list name inside a read (pdp_store_read_begin)
 * of rd. TG_ENOTFOUND when there is none (or the name is not a list
 * name), TG_EVERSION for a record this build cannot read, TG_EIO for a
 * damaged one (a term that is not valid, say), TG_ENOMEM. Owns: out's
 * terms on TG_OK (pdp_list_terms_fini); on failure out holds none. */
tg_err pdp_store_list_read(pdp_store_reader *rd, const char *name,
                           pdp_list_terms *out);

/* pdp_store_list_get is pdp_store_list_read in a read txn of its own:
 * what the PDP calls for each list its guardrails name. Thread-safe.
 * Owns: out's terms on TG_OK (pdp_list_terms_fini). */
tg_err pdp_store_list_get(pdp_store *st, const char *name, pdp_list_terms *out);

/* pdp_store_lists_generation_read reads the lists generation inside a
 * read of rd (0: no list was ever changed). It differs whenever a list
 * changed since it was last read, by this process or another (the CLI on
 * the state directory): compare with !=, not <. Read it in the snapshot
 * the lists are read in, or before them (reading it after could miss a
 * change made in between). */
tg_err pdp_store_lists_generation_read(pdp_store_reader *rd, uint64_t *gen);

/* pdp_store_lists_generation is pdp_store_lists_generation_read in a
 * short read txn of its own (a reader allocated and freed: poll it, say
 * once a second, rather than per decision). 0 when no list was ever
 * changed, and when it cannot be read (the store logs why). */
uint64_t pdp_store_lists_generation(pdp_store *st);

/* pdp_store_list_names calls fn for each list in name order, in one
 * snapshot; fn borrows l (terms NULL) during the call. A record that
 * does not read stops the walk with its error. */
typedef void (*pdp_store_list_fn)(void *arg, const pdp_list_terms *l);
tg_err pdp_store_list_names(pdp_store *st, pdp_store_list_fn fn, void *arg);

/* pdp_store_list_history calls fn with the changes of list name (NULL:
 * every list), newest first, until fn returns false or limit were given
 * (0: all). fn borrows c during the call. */
typedef bool (*pdp_store_list_change_fn)(void *arg, const pdp_list_change *c);
tg_err pdp_store_list_history(pdp_store *st, const char *name, uint32_t limit,
                              pdp_store_list_change_fn fn, void *arg);

/* ---- checking a state directory (pdp_store_check.c) ------------------- */

/* A record that was read but does not decode. Its key is printable:
 * escaped bytes, a sequence number or a key id; never a hash of a secret. */
typedef struct pdp_store_check_bad {
    const char *db;  /* its database, e.g. "usage" */
    const char *key; /* how the record is named */
    tg_err      rv;  /* TG_EVERSION: a newer build wrote it; else damaged */
} pdp_store_check_bad;

/* One database, after its records. name is as stored ("(main)" and "(free
 * pages)" are LMDB's own trees); decoded says this build knows it and
 * decoded every record (else it was only read). */
typedef struct pdp_store_check_db {
    const char *name;
    uint64_t    records; /* read (when not read: found by the page walk) */
    uint64_t    bad;     /* read, but do not decode */
    bool        decoded;
    bool        damaged; /* pages unreadable: records may be missing */
    const char *problem; /* when damaged: where and what */
} pdp_store_check_db;

typedef void (*pdp_store_check_bad_fn)(void *arg, const pdp_store_check_bad *b);
typedef void (*pdp_store_check_db_fn)(void *arg, const pdp_store_check_db *d);

/* pdp_store_check reads every record of the state directory dir and
 * decodes it with the store's own readers, without writing to it and
 * without a pdp_store (which would write its schema version, start the
 * writer and could crash on a damaged file): tg_lmdb_read_all, which
 * walks every page first and never reads a damaged database through
 * LMDB. Works beside a running serve (one read snapshot). bad_fn is
 * called for each record that does not decode, db_fn once per database
 * after its records; both borrow their argument during the call.
 * TG_OK: every record reads and decodes. TG_ECORRUPT: something is
 * damaged (the callbacks said what, or err when the file as a whole is
 * refused: truncated, not LMDB). TG_ENOTFOUND: no state in dir. TG_EIO,
 * TG_ENOMEM, TG_ESYS: err says why. */
tg_err pdp_store_check(const char *dir, pdp_store_check_bad_fn bad_fn,
                       pdp_store_check_db_fn db_fn, void *arg, char *err,
                       size_t errlen);

/* ---- the decision log ---------------------------------------------------- */

/* pdp_store_decisions_sign_every makes the writer sign a checkpoint every
 * `every` records with signer (borrowed until the store closes, or until
 * called again; NULL: never). */
void pdp_store_decisions_sign_every(pdp_store *st, const pdp_signer *signer,
                                    uint64_t every);

/* pdp_store_decisions_checkpoint signs the chain's head unless a
 * checkpoint covers it already; *seq (may be NULL) gets the record it
 * covers, 0 when none was needed. */
tg_err pdp_store_decisions_checkpoint(pdp_store *st, const pdp_signer *signer,
                                      uint64_t *seq);

typedef struct pdp_decisions_stats {
    uint64_t records;
    uint64_t bytes; /* pages the records take */
    uint64_t first_seq;
    uint64_t last_seq;
    int64_t  first_ms; /* settled */
    int64_t  last_ms;
    uint64_t checkpoints;
    uint64_t checkpoint_seq; /* the newest */
} pdp_decisions_stats;

tg_err pdp_store_decisions_stats(pdp_store *st, pdp_decisions_stats *out);

/* pdp_store_decisions_each calls fn with each record from from_seq (0:
 * the first, or the last when backwards) until it returns false. */
typedef bool (*pdp_store_decision_fn)(void *arg, uint64_t seq,
                                      const char *rec, size_t len);
tg_err pdp_store_decisions_each(pdp_store *st, uint64_t from_seq,
                                bool backwards, pdp_store_decision_fn fn,
                                void *arg);

/* pdp_store_decision_get copies the record of request_id into out;
 * TG_ENOTFOUND when there is none (yet, or pruned). */
tg_err pdp_store_decision_get(pdp_store *st, const char *request_id,
                              tg_buf *out);

/* What an export held: the records asked for (by settled time) and those
 * it carries, widened to checkpoints so that every one is signed. */
typedef struct pdp_export_range {
    uint64_t first_wanted;
    uint64_t last_wanted;
    uint64_t first;
    uint64_t last;
    uint64_t records;
    uint64_t covered; /* the last record a checkpoint in it signs */
} pdp_export_range;

/* pdp_store_decisions_export calls fn with every line of an export of
 * the records settled in [since_ms, until_ms) (0: unbounded), in one
 * snapshot: the anchor checkpoint, records, each checkpoint after the
 * record it signs (pdp_decisions.h). fn returns false to stop. */
typedef bool (*pdp_store_line_fn)(void *arg, const char *line, size_t len);
tg_err pdp_store_decisions_export(pdp_store *st, int64_t since_ms,
                                  int64_t until_ms, pdp_store_line_fn fn,
                                  void *arg, pdp_export_range *range);

/* pdp_store_decisions_prune deletes the oldest records, up to the newest
 * checkpoint whose record settled before before_ms (0: no age limit) or
 * as far as needed to bring the records under max_bytes (0: no limit).
 * The checkpoint at the cut stays: the chain verifies from it. */
tg_err pdp_store_decisions_prune(pdp_store *st, int64_t before_ms,
                                 uint64_t max_bytes, uint64_t *removed);

/* ---- pdp_store_forward.c: what a sidecar owes its central PDP ----------
 *   forward  u64 sequence, BIG-endian -> u8 kind (1 a usage report: the
 *            UsageItem protobuf, request id, report and captured content;
 *            2 a lease close: the caller's bytes). Appended in the write txn
 *            that commits the report locally, deleted when the central PDP
 *            acknowledged it: every report reaches the central PDP at least
 *            once, in order, whatever dies (the central PDP counts a report
 *            once by its request id, so exactly once in effect).
 *   leases   lease id -> i64 expires_ms, then pdp_limits_lease_encode's
 *            record: the leases a central PDP granted, committed before
 *            the grant is answered, deleted when closed; those past expiry
 *            are pruned.
 * Both added without a schema bump (older builds ignore them). */

/* pdp_store_forward_enable makes every report committed from now on (not
 * a duplicate) also queue for forwarding, marked as forwarded by via. */
void pdp_store_forward_enable(pdp_store *st, const char *via);

/* pdp_store_forward_close queues a lease close (data: bytes the caller
 * decodes when it sends them), after every report already queued. */
tg_err pdp_store_forward_close(pdp_store *st, const void *data, size_t len);

/* pdp_store_forward_read calls fn with the first max queued records in
 * order (kind 1 report, 2 close); fn borrows data during the call and
 * returns false to stop early. */
typedef bool (*pdp_store_fwd_fn)(void *arg, uint64_t seq, uint8_t kind,
                                 const void *data, size_t len);
tg_err pdp_store_forward_read(pdp_store *st, uint32_t max,
                              pdp_store_fwd_fn fn, void *arg);

/* pdp_store_forward_ack deletes the queued records up to seq (included). */
tg_err pdp_store_forward_ack(pdp_store *st, uint64_t seq);

/* pdp_store_forward_pending is how many records are queued. */
uint64_t pdp_store_forward_pending(pdp_store *st);

/* A sidecar records what an admitted request holds (the budget windows
 * and leases it will charge) in the reservations database, as a record
 * whose first byte is PDP_STORE_HOLD_REC, through pdp_store_reserve_submit
 * like a reservation: a sidecar that restarts before the report comes
 * still forwards the report with its charges (the report settles and
 * deletes the record in its txn). Layout: u8 PDP_STORE_HOLD_REC, u8
 * emergency, u8 n, n x (str lease id, str rule id, str scope, u8 window,
 * i64 start_ms, i64 limit, u8 scope kind, u8 nthr, nthr x u8). */
#define PDP_STORE_HOLD_REC 0x48
tg_err pdp_store_hold_encode(const tg_usage *u, tg_buf *out);
/* pdp_store_hold_decode: data is such a record; its charges (and
 * emergency) go into u. false: it is not one, or it is malformed (u
 * unchanged). */
bool pdp_store_hold_decode(const void *data, size_t len, tg_usage *u);

/* Leases a central PDP granted (see above). Written without an fsync,
 * like a reservation: a crash of the process keeps them. */
tg_err pdp_store_lease_put(pdp_store *st, const char *id, int64_t expires_ms,
                           const void *data, size_t len);
tg_err pdp_store_lease_del(pdp_store *st, const char *const *ids, uint32_t n);
typedef void (*pdp_store_lease_fn)(void *arg, const char *id,
                                   int64_t expires_ms, const void *data,
                                   size_t len);
tg_err pdp_store_lease_list(pdp_store *st, pdp_store_lease_fn fn, void *arg);
/* pdp_store_lease_prune deletes the records expired before now_ms. */
tg_err pdp_store_lease_prune(pdp_store *st, int64_t now_ms);


/* ---- export and import (pdp_store_export.c) ----------------------------
 * What `tollgate-pdp export` reads beyond the listings above, and the one
 * write `tollgate-pdp import tollgate` makes: records restored as they
 * were exported (their times, versions and sequence numbers kept), each
 * through pdp_store__put / pdp_store__rput like every other write, so
 * the replication and transaction logs and the generation files see them.
 */

/* pdp_store_export_keys calls fn with every key record and its hash,
 * superseded secrets of rotated keys included, in hash order, in one
 * snapshot; a return other than TG_OK stops the walk and is returned. */
typedef tg_err (*pdp_store_keyrec_fn)(void *arg,
                                      const uint8_t  hash[TG_SHA256_LEN],
                                      const pdp_key *k);
tg_err pdp_store_export_keys(pdp_store *st, pdp_store_keyrec_fn fn, void *arg);

/* A budget window's settled spend (budgets), or an alert that fired in
 * one (alerts_fired: threshold, fired_ms, limit_micro_usd set). Of key,
 * rule_id, scope, code (pdp_window) and start_ms are used. */
typedef struct pdp_budget_row {
    pdp_limits_spend_key key;
    int64_t              spent_micro_usd;
    int64_t              updated_ms; /* budgets */
    uint8_t              threshold;  /* alerts: percent */
    int64_t              fired_ms;
    int64_t              limit_micro_usd;
} pdp_budget_row;

/* pdp_store_export_budgets and pdp_store_export_alerts call fn with each
 * record in database order, in one snapshot (TG_EVERSION/TG_EIO on one
 * that does not decode); fn's error stops the walk and is returned. */
typedef tg_err (*pdp_store_budget_row_fn)(void *arg, const pdp_budget_row *r);
tg_err pdp_store_export_budgets(pdp_store *st, pdp_store_budget_row_fn fn,
                                void *arg);
tg_err pdp_store_export_alerts(pdp_store *st, pdp_store_budget_row_fn fn,
                               void *arg);

/* pdp_store_import_empty: TG_OK when none of the databases an import
 * writes holds a record; TG_EEXIST otherwise, *db naming the first that
 * does (static text) and *records how many it holds. */
tg_err pdp_store_import_empty(pdp_store *st, const char **db,
                              uint64_t *records);

typedef enum pdp_import_kind {
    PDP_IMPORT_TENANT = 1,
    PDP_IMPORT_KEY,        /* key_ids too, unless superseded */
    PDP_IMPORT_QUOTA,
    PDP_IMPORT_LIST,       /* raises the lists generation */
    PDP_IMPORT_LIST_CHANGE,
    PDP_IMPORT_ACTIVATION, /* with its bundle files, once per hash */
    PDP_IMPORT_AUDIT,
    PDP_IMPORT_USAGE,
    PDP_IMPORT_TOTALS,
    PDP_IMPORT_BUDGET,
    PDP_IMPORT_ALERT,
    PDP_IMPORT_DECISION, /* decision_ids too */
    PDP_IMPORT_CHECKPOINT,
} pdp_import_kind;

/* One record to restore; the member named by kind is used, borrowed. */
typedef struct pdp_import_rec {
    pdp_import_kind kind;
    union {
        const pdp_tenant      *tenant;
        const pdp_quota       *quota;
        const pdp_list_terms  *list;   /* terms set */
        const pdp_list_change *change; /* its seq kept */
        const pdp_audit       *audit;  /* its seq kept */
        const pdp_usage_rec   *usage;
        const pdp_budget_row  *budget; /* BUDGET and ALERT */
        struct {
            const uint8_t *hash;
            const pdp_key *k;
        } key;
        struct {
            const pdp_activation *a;     /* its seq kept */
            const char           *files; /* pdp_bundle_files_json; NULL */
        } act;
        struct {
            pdp_totals_kind   kind;
            const char       *id;
            const pdp_totals *t;
        } totals;
        struct {
            uint64_t    seq;
            const char *text; /* the record or checkpoint line, no newline */
            size_t      len;
            const char *request_id; /* DECISION */
        } line;
    } u;
} pdp_import_rec;

/* pdp_store_import writes the n records in one write txn, each with
 * MDB_NOOVERWRITE: a record already there (a duplicate in the input, or
 * a state that was not empty) is TG_EEXIST and nothing of the txn is
 * written; TG_EINVAL for one that does not encode (a string too long).
 * *bad (may be NULL) gets the index of the record that failed. */
tg_err pdp_store_import(pdp_store *st, const pdp_import_rec *recs, size_t n,
                        size_t *bad);

#endif
