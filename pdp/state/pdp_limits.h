/* pdp_limits.h - rate-limit and budget state of the rate_limit and budget
 * rules. Rate limits: per (rule id, scope value) a sliding 60 s window of
 * requests and tokens (1 s buckets) and a count of requests in flight.
 * Budgets: settled and reserved micro-USD per (rule id, scope value,
 * window). A decision checks and reserves atomically across every rule
 * that applies (rate limits and budgets together, all or nothing), so N
 * threads can never admit more than a limit; the usage report releases
 * the reservation, corrects the estimated tokens to the actual ones and
 * adds the actual cost to the budgets. Settled budget spend is persisted
 * by pdp_store with the usage record and loaded back with
 * pdp_limits_budget_load. Every admitted request holds a reservation
 * named by its request id, with an admission number; pdp_server records
 * each one in the store (pdp_limits_reservation_encode) before its
 * decision is sent, and writes the windows (pdp_limits_snapshot_windows)
 * about once a second. At start the windows come back from the snapshot
 * and every recorded reservation is restored on top
 * (pdp_limits_restore_reservation): nothing admitted is forgotten by a
 * crash. A decision the data plane gave up on is abandoned by its id
 * (pdp_limits_abandon), also before it is made.
 * Thread-safe: state is sharded under short mutexes that are never held
 * across I/O. Called by pdp_decide (check) and pdp_server (settle,
 * release, expiry, load, snapshot, restore). */
#ifndef PDP_LIMITS_H
#define PDP_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_msg.h"

#define PDP_LIMITS_WINDOW_S 60
#define PDP_LIMITS_RULES_MAX 8 /* rate_limit rules applied to one request */
#define PDP_LIMITS_BUDGETS_MAX 8 /* budget rules applied to one request */
/* Output tokens counted when the request sets no max_tokens. */
#define PDP_LIMITS_OUTPUT_CAP 4096
/* Soft alert thresholds of one budget rule (percent of the limit). */
#define PDP_LIMITS_THRESHOLDS_MAX 8
/* The format pdp_limits_snapshot writes (its first byte). */
#define PDP_LIMITS_SNAPSHOT_VERSION 2
/* The state byte a reservation record starts with. */
#define PDP_LIMITS_RES_OPEN 1
#define PDP_LIMITS_RES_SETTLED 2
/* Expired, or released by hand: holds nothing, but a usage report that
 * still comes is charged to the budgets it names. */
#define PDP_LIMITS_RES_ENDED 3
/* An ended record is kept this long for a late report (a data plane that
 * comes back after a long outage replays its spool). */
#define PDP_LIMITS_RES_ENDED_KEEP_MS (7LL * 24 * 3600 * 1000)

typedef struct pdp_limits pdp_limits;

/* One rule that applies to a request. A limit of 0 is not limited. */
typedef struct pdp_limits_req {
    const char *rule_id; /* borrowed during the call */
    const char *scope;   /* the scope value (key id, tenant id, ...) */
    int64_t     rpm;
    int64_t     tpm;
    int64_t     concurrent;
} pdp_limits_req;

/* Budgets: per (rule id, scope value) settled and reserved micro-USD in
 * buckets keyed by (window code, window start): one bucket per calendar
 * window, or one per hour for a rolling window (summed over the last N).
 * A reservation holds the worst case in the bucket of the decision time;
 * settling moves the actual cost into that bucket's settled spend. */
typedef struct pdp_limits_budget {
    const char *rule_id;  /* borrowed during the call */
    const char *scope;    /* the scope value */
    uint8_t     code;     /* pdp_window (rolling: one code for any N) */
    int64_t     start_ms; /* current window start (rolling: hour start) */
    int32_t     span_h;   /* rolling: N hours; 0 calendar */
    int64_t     limit;    /* micro-USD */
    bool        clamp;    /* action clamp (else deny) */
    uint8_t     scope_kind; /* pdp_scope, carried to alerts */
    uint8_t     nthr;       /* alert thresholds (calendar windows only) */
    uint8_t     thr[PDP_LIMITS_THRESHOLDS_MAX]; /* ascending, 1..99 */
} pdp_limits_budget;

/* The request's price: worst case of k output tokens is
 * ceil((in_per_mtok * prompt + out_per_mtok * k) / 1e6) micro-USD. */
typedef struct pdp_limits_cost {
    int64_t in_per_mtok;
    int64_t out_per_mtok;
    int64_t prompt;
    int64_t max_out; /* max_tokens, or PDP_LIMITS_OUTPUT_CAP */
} pdp_limits_cost;

/* pdp_limits_worst is that worst case (saturating). */
int64_t pdp_limits_worst(const pdp_limits_cost *c, int64_t out_tokens);

/* pdp_limits_fit is the largest k in [0, c->max_out] whose worst case is
 * at most remaining, or -1 when not even k = 0 fits. */
int64_t pdp_limits_fit(const pdp_limits_cost *c, int64_t remaining);

/* A settled bucket: what a reservation's budgets were counted in. */
typedef struct pdp_limits_spend_key {
    char    rule_id[TG_ID_MAX];
    char    scope[TG_MSG_META_VAL_MAX];
    uint8_t code;
    int64_t start_ms;
    /* Alerts: the budget's limit and thresholds when it was reserved. */
    int64_t limit;
    uint8_t scope_kind;
    uint8_t nthr;
    uint8_t thr[PDP_LIMITS_THRESHOLDS_MAX];
    /* Written back by pdp_store when the spend is committed: the
     * thresholds this cost crossed that had not fired yet in this window
     * (recorded in the same txn) and the window's settled spend after. */
    uint8_t nfired;
    uint8_t fired[PDP_LIMITS_THRESHOLDS_MAX];
    int64_t spent_after;
} pdp_limits_spend_key;

/* pdp_limits_crossed writes to out (room for PDP_LIMITS_THRESHOLDS_MAX)
 * the thresholds t of thr with before < t% of limit <= after, i.e.
 * before * 100 < t * limit <= after * 100, and returns how many. */
uint32_t pdp_limits_crossed(int64_t before, int64_t after, int64_t limit,
                            const uint8_t *thr, uint32_t nthr, uint8_t *out);

typedef enum pdp_limits_what {
    PDP_LIMITS_OK = 0,
    PDP_LIMITS_REQUESTS,
    PDP_LIMITS_TOKENS,
    PDP_LIMITS_CONCURRENT,
    PDP_LIMITS_BUDGET, /* denied_budget says which */
    /* The request id was abandoned (pdp_limits_abandon) before it was
     * reserved, or is reserved already: nothing was counted. */
    PDP_LIMITS_ABANDONED,
} pdp_limits_what;

typedef struct pdp_limits_result {
    pdp_limits_what denied;      /* OK: admitted (and reserved) */
    uint32_t        denied_rule; /* index into reqs when denied */
    int64_t         limit;       /* the limit that denied */
    int64_t         used;        /* its use at the time */
    int64_t         retry_ms;    /* when a retry can fit (>= 1) */
    /* The most constraining state over the rules with such a limit
     * (limit 0: no rule has one), after this request when admitted. */
    tg_limit_state requests;
    tg_limit_state tokens;
    /* Budgets (pdp_limits_check_budgets): the rule that denied, its
     * limit, settled and reserved spend, and the worst case asked (on an
     * allow too: what the reservation holds against every budget). */
    uint32_t denied_budget;
    int64_t  b_spent;
    int64_t  b_reserved;
    int64_t  b_worst;
    /* Output tokens reserved when a clamp rule lowered them (0: none). */
    int64_t clamp_tokens;
    /* Set when something was reserved (concurrency or tokens) and must
     * be released with pdp_limits_release; "" otherwise. */
    char reservation_id[TG_REQUEST_ID_MAX];
} pdp_limits_result;

/* pdp_limits_create: reservations not released within ttl_ms expire.
 * Owns: *out, free with pdp_limits_destroy. */
tg_err pdp_limits_create(pdp_limits **out, int64_t ttl_ms);
void   pdp_limits_destroy(pdp_limits *l); /* NULL-safe */

/* pdp_limits_check checks the n rules for one request of `tokens`
 * estimated tokens at now_ms. reserve true (enforced rules): either every
 * limit fits and 1 request, the tokens and 1 concurrency slot are counted
 * for each rule, or nothing is counted and out->denied says why.
 * reserve false (audit rules): the request and tokens are always counted
 * (a shadow count, no concurrency slot, no reservation) and out->denied
 * says whether an enforced rule would have denied. Borrows reqs. */
void pdp_limits_check(pdp_limits *l, const pdp_limits_req *reqs, uint32_t n,
                      int64_t tokens, bool reserve, int64_t now_ms,
                      pdp_limits_result *out);

/* pdp_limits_check_budgets is pdp_limits_check (reserve true) with nb
 * budgets checked and reserved in the same all-or-nothing step: a request
 * fits when settled + reserved + worst case <= limit for every budget (a
 * clamp budget first lowers the output tokens to what fits; fewer than 1
 * denies). The rate limits count prompt + the (clamped) output tokens.
 * Every admitted request holds a reservation named id (the request id;
 * NULL or "": a generated one) until it is released, settled, abandoned
 * or expires. An id that is already held or was abandoned is denied with
 * PDP_LIMITS_ABANDONED and counts nothing. cost NULL or nb 0: no budgets.
 * Borrows everything. */
void pdp_limits_check_budgets(pdp_limits *l, const char *id,
                              const pdp_limits_req *reqs,
                              uint32_t n, const pdp_limits_budget *buds,
                              uint32_t nb, const pdp_limits_cost *cost,
                              int64_t tokens, int64_t now_ms,
                              pdp_limits_result *out);

/* pdp_limits_budget_keys copies the buckets reservation id holds budgets
 * in (at most max); 0 when it holds none or is unknown. */
uint32_t pdp_limits_budget_keys(pdp_limits *l, const char *id,
                                pdp_limits_spend_key *out, uint32_t max);

/* pdp_limits_settle is pdp_limits_release that also adds cost to the
 * settled spend of the n buckets keys (as returned by
 * pdp_limits_budget_keys before the report was committed; counted even if
 * the reservation expired meanwhile). */
bool pdp_limits_settle(pdp_limits *l, const char *id, int64_t actual_tokens,
                       int64_t cost, const pdp_limits_spend_key *keys,
                       uint32_t n, int64_t now_ms);

/* pdp_limits_budget_load adds settled spend read from the store (at PDP
 * start). */
void pdp_limits_budget_load(pdp_limits *l, const char *rule, const char *scope,
                            uint8_t code, int64_t start_ms, int64_t spent);

/* pdp_limits_budget_state reads a budget's settled and reserved spend at
 * the given window (the sum over [start - (span_h-1)h, start] for a
 * rolling one), for tests and reports. */
void pdp_limits_budget_state(pdp_limits *l, const pdp_limits_budget *b,
                             int64_t *spent, int64_t *reserved);

/* pdp_limits_release ends reservation id: frees its concurrency slots and
 * replaces its estimated tokens by actual_tokens (if their second is
 * still inside the window). Returns false if id is unknown (already
 * released or expired): releasing twice changes nothing. */
bool pdp_limits_release(pdp_limits *l, const char *id, int64_t actual_tokens,
                        int64_t now_ms);

/* pdp_limits_abandon ends reservation id of a request that never went
 * upstream (its tokens are not counted). If id is not reserved (yet), it
 * is remembered until the TTL so a decision that arrives later reserves
 * nothing. Returns whether a reservation was released. */
bool pdp_limits_abandon(pdp_limits *l, const char *id, int64_t now_ms);

/* pdp_limits_expire releases every reservation older than the TTL at
 * now_ms (keeping its estimated tokens), logs each, and returns how many.
 * pdp_limits_check calls it at most once a second on its own. */
uint32_t pdp_limits_expire(pdp_limits *l, int64_t now_ms);

/* pdp_limits_on_expire makes pdp_limits_expire call fn with the id of
 * every reservation it expires (on the thread that sweeps: fn must not
 * block). Set it before the first decision. */
typedef void (*pdp_limits_expired_fn)(void *arg, const char *id);
void pdp_limits_on_expire(pdp_limits *l, pdp_limits_expired_fn fn, void *arg);

/* pdp_limits_pending is the number of open reservations. */
uint64_t pdp_limits_pending(pdp_limits *l);

/* pdp_limits_snapshot appends to out the rate-limit state at now_ms:
 * every window with a count in the last PDP_LIMITS_WINDOW_S seconds (or a
 * request in flight) and every open reservation, with what it holds in
 * windows and budgets. Settled budget spend is left out (the store has
 * it). Format, little-endian, a string being a u16 length then the bytes:
 *   u8 version (PDP_LIMITS_SNAPSHOT_VERSION), i64 now_ms, u64 admission
 *       number (version 2 on; see pdp_limits_snapshot_seq),
 *   u32 nwin, nwin x (str rule id, str scope, i64 inflight, u8 nb,
 *       nb x (i64 second, i64 requests, i64 tokens)),
 *   u32 nres, nres x (str id, i64 created_ms, i64 second, i64 tokens,
 *       u8 n, n x (str rule id, str scope, u8 holds a concurrency slot),
 *       u8 nbud, nbud x (str rule id, str scope, u8 window code,
 *       i64 bucket start_ms, i64 reserved micro-USD, i64 limit,
 *       u8 scope kind, u8 nthr, nthr x u8 threshold)).
 * Shard locks are taken one at a time (each only while its entries are
 * copied), so a decision never waits for more than one shard's copy and
 * never for I/O; the snapshot is consistent within a shard but not across
 * shards (a request admitted meanwhile may be in one table and not the
 * other: at most that request is lost or its slot freed early). On error
 * (TG_ENOMEM, TG_ETOOBIG: out's cap) out holds a partial snapshot. */
tg_err pdp_limits_snapshot(pdp_limits *l, int64_t now_ms, tg_buf *out);

/* pdp_limits_snapshot_windows is pdp_limits_snapshot without the
 * reservations (nres 0): pdp_server keeps each reservation as its own
 * store record (pdp_limits_reservation_encode). */
tg_err pdp_limits_snapshot_windows(pdp_limits *l, int64_t now_ms,
                                   tg_buf *out);

/* pdp_limits_restore recreates a snapshot's windows and reservations in l
 * (called at start, before any decision; pdp_limits_budget_load may come
 * before or after, as the snapshot holds no settled spend). Buckets that
 * left the window by now_ms are dropped, and so are reservations already
 * past the TTL; the others keep their ids and created_ms, so a usage
 * report arriving after the restart releases or settles them and they
 * expire on the usual TTL. A window's concurrency count is rebuilt from
 * the restored reservations that hold a slot in it (a slot no reservation
 * holds could never be freed). A restored budget reservation adds its
 * worst case to its bucket's reserved spend. The whole snapshot is checked
 * before anything is restored: TG_EPROTO for an unknown version or
 * truncated or malformed data, and l is left as it was (so a bad snapshot
 * costs the state, never the start).
 * TG_ENOMEM: l holds part of the snapshot. Borrows data. */
tg_err pdp_limits_restore(pdp_limits *l, const void *data, size_t len,
                          int64_t now_ms);

/* pdp_limits_restored says how many windows and reservations the last
 * pdp_limits_restore recreated. */
void pdp_limits_restored(pdp_limits *l, uint32_t *windows,
                         uint32_t *reservations);

/* pdp_limits_changes counts changes to the state a snapshot holds (it
 * only grows): equal before and after, nothing changed in between. */
uint64_t pdp_limits_changes(pdp_limits *l);

/* ---- one reservation as a record (the store's reservations database) -- */

/* pdp_limits_reservation_encode appends reservation id to out as a record:
 * u8 PDP_LIMITS_RES_OPEN, u64 its admission number, then the reservation
 * as in the snapshot. TG_ENOTFOUND when id holds nothing. */
tg_err pdp_limits_reservation_encode(pdp_limits *l, const char *id,
                                     tg_buf *out);

/* pdp_limits_record_mark sets the state of a record (a copy the caller
 * owns) to PDP_LIMITS_RES_ENDED; TG_EPROTO: malformed. */
tg_err pdp_limits_record_end(void *data, size_t len);

/* pdp_limits_record_budget_keys copies the budget windows a record's
 * reservation held (at most max), for settling a report whose reservation
 * is no longer in memory; 0 when it held none or is malformed. */
uint32_t pdp_limits_record_budget_keys(const void *data, size_t len,
                                       pdp_limits_spend_key *out,
                                       uint32_t max);

/* pdp_limits_record_settle turns an open or ended record (a copy the
 * caller owns)
 * into a settled one with the request's actual tokens: kept so that a
 * restart still counts the request in its rate windows until a window
 * snapshot holds it (pdp_limits_record_prunable). TG_EPROTO: malformed. */
tg_err pdp_limits_record_settle(void *data, size_t len, int64_t actual_tokens);

/* pdp_limits_snapshot_seq is the admission number a window snapshot was
 * taken at: every request admitted with a smaller one is counted in it
 * (0 for a version-1 snapshot, or malformed data). */
uint64_t pdp_limits_snapshot_seq(const void *data, size_t len);

/* pdp_limits_record_prunable: the record is settled and a saved window
 * snapshot taken at snap_seq counts its request, or it ended more than
 * PDP_LIMITS_RES_ENDED_KEEP_MS before now_ms. */
bool pdp_limits_record_prunable(const void *data, size_t len,
                                uint64_t snap_seq, int64_t now_ms);

/* pdp_limits_restore_reservation brings back one record at start, before
 * any decision, after pdp_limits_restore of the window snapshot taken at
 * admission number snap_seq: an open record holds its reservation again
 * (unless past the TTL); either kind counts its request and tokens in its
 * windows again when the snapshot may not hold it (admitted at or after
 * snap_seq: counted twice at worst, never not at all). The whole record is checked
 * before anything is counted. TG_OK: open and held again; TG_ENOTFOUND:
 * nothing held (settled, past the TTL, or restored already);
 * TG_EPROTO: malformed, nothing restored. */
tg_err pdp_limits_restore_reservation(pdp_limits *l, const void *data,
                                      size_t len, int64_t now_ms,
                                      uint64_t snap_seq);

/* What an encoded reservation holds, for listings. */
typedef struct pdp_limits_res_info {
    char     id[TG_REQUEST_ID_MAX];
    bool     settled; /* its usage report came (kept for the windows) */
    bool     ended;   /* expired or released: holds nothing */
    uint64_t seq;     /* admission number */
    int64_t  created_ms;
    int64_t  tokens;
    int64_t  reserved_micro; /* worst case held in each budget */
    uint32_t n_limits;
    struct {
        char rule_id[TG_ID_MAX];
        char scope[TG_MSG_META_VAL_MAX];
        bool slot; /* holds a concurrency slot */
    } limits[PDP_LIMITS_RULES_MAX];
    uint32_t n_budgets;
    struct {
        char rule_id[TG_ID_MAX];
        char scope[TG_MSG_META_VAL_MAX];
    } budgets[PDP_LIMITS_BUDGETS_MAX];
} pdp_limits_res_info;

/* pdp_limits_reservation_info decodes an encoded reservation; TG_EPROTO
 * when malformed. */
tg_err pdp_limits_reservation_info(const void *data, size_t len,
                                   pdp_limits_res_info *out);

/* ---- leases: slices of a limit that sidecar PDPs admit against ---------- */

/* A sidecar PDP admits requests on its own against a lease: a slice of one
 * rate-limit window (requests, tokens, concurrency slots) or of one budget
 * bucket (micro-USD) that this, the central, PDP granted it. Every open
 * lease is counted as held by the checks above and by later grants, so the
 * direct decisions and all the sidecars together never pass a limit. A
 * rate lease's requests and tokens are held apart from the per-second
 * buckets (a lease may outlive the 60 s window) and its slots are counted
 * in flight; a budget lease is reserved in its bucket. The sidecar returns
 * a lease (pdp_limits_lease_close) with what it used, which is then
 * counted in the window at the close's second; a budget lease moves each
 * settled cost from held to settled as it comes (pdp_limits_lease_charge).
 * A lease nobody returns expires at its expires_ms in the sweep
 * (pdp_limits_expire, which counts it in what it returns) as if closed
 * having used all it held. An ended lease's id is remembered (it holds
 * nothing) until the reservation TTL after it ended or would have
 * expired, whichever is later, so a repeated ask is refused. Lease ids
 * and reservation ids are separate names. Thread-safe like the rest: a
 * grant checks and holds under its window's or bucket's lock, as a
 * decision does. */

typedef enum pdp_lease_kind {
    PDP_LEASE_RATE   = 1,
    PDP_LEASE_BUDGET = 2,
} pdp_lease_kind;

/* The format pdp_limits_lease_encode writes (its first byte). */
#define PDP_LIMITS_LEASE_VERSION 1

typedef struct pdp_lease_ask {
    const char *id; /* the asker's, unique (e.g. "node-a:17"); borrowed;
                       1 to TG_REQUEST_ID_MAX - 1 bytes */
    pdp_lease_kind kind;
    /* RATE: the rule (its limits; 0 is not limited; rule id below
     * TG_ID_MAX, scope below TG_MSG_META_VAL_MAX bytes) and what is
     * wanted and needed at least (0 <= min <= want, some want > 0). */
    pdp_limits_req rate;
    int64_t        want_reqs, min_reqs;
    int64_t        want_toks, min_toks;
    int64_t        want_slots, min_slots;
    /* BUDGET: the bucket, as pdp_limits_check_budgets takes it (clamp is
     * kept, not used), and the micro-USD wanted and needed (0 <= min <=
     * want, want > 0; at least 1 is always needed). */
    pdp_limits_budget budget;
    int64_t           want_micro, min_micro;
    int64_t           ttl_ms; /* > 0: it expires this long after the grant */
} pdp_lease_ask;

typedef struct pdp_lease_grant {
    bool ok; /* granted: the amounts below are held */
    /* Each between its min and want: as much of want as fits. */
    int64_t reqs, toks, slots, micro;
    int64_t expires_ms;
    /* Refused: the limit that refused (PDP_LIMITS_CONCURRENT, _REQUESTS,
     * _TOKENS or _BUDGET; PDP_LIMITS_ABANDONED: the id ended already), the
     * limit, its use (held by leases included; a budget's settled plus
     * reserved) and when a retry may fit (1000 when only a close frees
     * it: a slot or a budget; 0 for PDP_LIMITS_ABANDONED: never under
     * that id). */
    pdp_limits_what denied;
    int64_t         limit, used, retry_ms;
} pdp_lease_grant;

/* An open lease as pdp_limits_lease_list and pdp_limits_lease_decode give
 * it: the record's fields, plain. */
typedef struct pdp_lease_info {
    char           id[TG_REQUEST_ID_MAX];
    pdp_lease_kind kind;
    char           rule_id[TG_ID_MAX];
    char           scope[TG_MSG_META_VAL_MAX];
    int64_t        granted_ms;
    int64_t        expires_ms;
    /* RATE: the rule's limits and what the lease holds. */
    int64_t rpm, tpm, concurrent;
    int64_t reqs, toks, slots;
    /* BUDGET: the bucket (as in pdp_limits_budget), the micro-USD the
     * lease still holds and what its sidecar settled so far. */
    uint8_t code;
    int64_t start_ms;
    int32_t span_h;
    int64_t limit;
    bool    clamp;
    uint8_t scope_kind;
    uint8_t nthr;
    uint8_t thr[PDP_LIMITS_THRESHOLDS_MAX];
    int64_t micro;
    int64_t charged;
} pdp_lease_info;

/* pdp_limits_lease_grant grants a lease at now_ms or refuses it; a refusal
 * is a result (out->ok false), not an error. An id that is open already
 * gets the answer again with what it holds now (an ask is never honoured
 * twice); an id that ended is refused with PDP_LIMITS_ABANDONED. Also
 * sweeps, as a decision does. TG_EINVAL: a bad ask; TG_ENOMEM: nothing
 * held. Borrows a. */
tg_err pdp_limits_lease_grant(pdp_limits *l, const pdp_lease_ask *a,
                              int64_t now_ms, pdp_lease_grant *out);

/* pdp_limits_lease_charge: the sidecar of budget lease id settled a
 * request of cost_micro. Adds cost to the settled spend of the n buckets
 * keys (pdp_limits_budget_keys(l, id, ...) before the caller committed the
 * spend; added even when the lease ended meanwhile) and moves it out of
 * what the lease holds: held -= min(cost, held). Returns whether a budget
 * lease of that id was open. Borrows keys. */
bool pdp_limits_lease_charge(pdp_limits *l, const char *id, int64_t cost_micro,
                             const pdp_limits_spend_key *keys, uint32_t n,
                             int64_t now_ms);

/* pdp_limits_lease_close ends lease id. Rate: frees what it holds and
 * counts used_reqs and used_toks (each >= 0) in its window at now_ms's
 * second, where they stay the full 60 s (they happened between the grant
 * and now: never shorter than they really do). Budget: releases what it
 * still holds (the used counts are ignored). Returns whether it was open;
 * closing twice changes nothing. */
bool pdp_limits_lease_close(pdp_limits *l, const char *id, int64_t used_reqs,
                            int64_t used_toks, int64_t now_ms);

/* pdp_limits_on_lease_expire makes pdp_limits_expire call fn with the id
 * of every lease it expires (on the sweeping thread: fn must not block),
 * e.g. to delete its record. Set it before the first grant. */
void pdp_limits_on_lease_expire(pdp_limits *l, pdp_limits_expired_fn fn,
                                void *arg);

/* pdp_limits_leases_open is the number of open leases;
 * pdp_limits_leases_expired how many expired since create (it only
 * grows). */
uint64_t pdp_limits_leases_open(pdp_limits *l);
uint64_t pdp_limits_leases_expired(pdp_limits *l);

/* pdp_limits_lease_list copies up to max open leases to out (shard by
 * shard, so not one instant) and returns how many. */
uint32_t pdp_limits_lease_list(pdp_limits *l, pdp_lease_info *out,
                               uint32_t max);

/* pdp_limits_lease_encode appends open lease id to out as a record:
 * little-endian, a string being a u16 length then the bytes:
 *   u8 PDP_LIMITS_LEASE_VERSION, u8 kind, str id, i64 granted_ms,
 *   i64 expires_ms, str rule id, str scope, then
 *   RATE:   i64 rpm, i64 tpm, i64 concurrent, i64 reqs, i64 toks,
 *           i64 slots (held);
 *   BUDGET: u8 window code, i64 start_ms, i32 span_h, i64 limit,
 *           u8 clamp, u8 scope kind, u8 nthr, nthr x u8 threshold,
 *           i64 micro-USD held, i64 micro-USD charged.
 * A budget lease's record is exact until its next charge (re-encode
 * then; an older record holds more: restored, it over-counts, never
 * under). TG_ENOTFOUND: id is not open; TG_ENOMEM, TG_ETOOBIG: out
 * unchanged. */
tg_err pdp_limits_lease_encode(pdp_limits *l, const char *id, tg_buf *out);

/* pdp_limits_lease_decode reads a record, checking all of it; TG_EPROTO
 * when malformed (an unknown version included). */
tg_err pdp_limits_lease_decode(const void *data, size_t len,
                               pdp_lease_info *out);

/* pdp_limits_lease_record_keys copies the budget bucket a budget lease's
 * record holds (at most max: 0 or 1), for charging a cost whose lease is
 * no longer in memory; 0 for a rate lease or a malformed record. */
uint32_t pdp_limits_lease_record_keys(const void *data, size_t len,
                                      pdp_limits_spend_key *out, uint32_t max);

/* pdp_limits_lease_restore holds a recorded lease again (at start, before
 * any decision or grant): its window or bucket counts what it holds,
 * without a check (it was granted). TG_ENOTFOUND: expired by now_ms (or
 * its id ended), nothing held; TG_EEXIST: open already (restored twice),
 * nothing more held; TG_EPROTO: malformed, nothing changed; TG_ENOMEM:
 * nothing held. Borrows data. */
tg_err pdp_limits_lease_restore(pdp_limits *l, const void *data, size_t len,
                                int64_t now_ms);

/* pdp_limits_lease_renew keeps the open leases of sidecar node (ids
 * "<node>:...") from expiring before until_ms: a sidecar that is still
 * there (it pulls changes several times a second) may have reports on
 * their way that charge them. Only a sidecar gone for a whole TTL loses
 * its leases. Returns how many were extended. */
uint32_t pdp_limits_lease_renew(pdp_limits *l, const char *node,
                                int64_t until_ms);

#endif
