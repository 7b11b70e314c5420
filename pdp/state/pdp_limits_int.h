/* pdp_limits_int.h - what the pdp_limits*.c files share and nothing else
 * may include: the sharded tables (windows and budgets keyed by
 * "rule\0scope", reservations and leases keyed by id), their small
 * helpers, and what each file offers the others. The locking rules are in
 * pdp_limits.c. */
#ifndef PDP_LIMITS_INT_H
#define PDP_LIMITS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pdp_limits.h"
#include "tg_hash.h"

#define PDP_LIM_SHARDS 64
#define PDP_LIM_CHAINS 256 /* per shard, power of two */

typedef struct pdp_lim_bucket {
    int64_t sec;
    int64_t reqs;
    int64_t toks;
} pdp_lim_bucket;

typedef struct pdp_lim_win {
    struct pdp_lim_win *next;
    uint64_t            hash;
    size_t              klen;
    int64_t             inflight;  /* leases' slots included */
    int64_t             held_reqs; /* held by open leases, in no bucket */
    int64_t             held_toks;
    pdp_lim_bucket      b[PDP_LIMITS_WINDOW_S];
    char                key[]; /* rule id, NUL, scope, NUL */
} pdp_lim_win;

/* A budget bucket: settled and reserved micro-USD of one window (or, for
 * rolling windows, one hour). */
typedef struct pdp_lim_bkt {
    uint8_t code;
    int64_t start;
    int64_t settled;
    int64_t reserved;
} pdp_lim_bkt;

typedef struct pdp_lim_bud {
    struct pdp_lim_bud *next;
    uint64_t            hash;
    size_t              klen;
    pdp_lim_bkt        *b;
    uint32_t            nb;
    uint32_t            cap;
    char                key[]; /* rule id, NUL, scope, NUL */
} pdp_lim_bud;

typedef struct pdp_lim_res {
    struct pdp_lim_res *next;
    uint64_t            hash;
    char                id[TG_REQUEST_ID_MAX];
    int64_t             created_ms;
    uint64_t            seq;  /* admission order (pdp_limits.admit_seq) */
    bool                tomb; /* abandoned before it was reserved */
    int64_t             sec;  /* the second its tokens were counted in */
    int64_t             tokens;
    uint32_t            n;
    pdp_lim_win        *w[PDP_LIMITS_RULES_MAX];
    bool                conc[PDP_LIMITS_RULES_MAX];
    uint32_t            nbud;
    int64_t             bamt; /* the worst case reserved in each */
    pdp_lim_bud        *bw[PDP_LIMITS_BUDGETS_MAX];
    uint8_t             bcode[PDP_LIMITS_BUDGETS_MAX];
    int64_t             bstart[PDP_LIMITS_BUDGETS_MAX];
    int64_t             blimit[PDP_LIMITS_BUDGETS_MAX];
    uint8_t             bkind[PDP_LIMITS_BUDGETS_MAX];
    uint8_t             bnthr[PDP_LIMITS_BUDGETS_MAX];
    uint8_t             bthr[PDP_LIMITS_BUDGETS_MAX][PDP_LIMITS_THRESHOLDS_MAX];
} pdp_lim_res;

typedef struct pdp_lim_shard {
    pthread_mutex_t mu;
    pdp_lim_win    *chains[PDP_LIM_CHAINS];
    pdp_lim_bud    *bchains[PDP_LIM_CHAINS];
} pdp_lim_shard;

typedef struct pdp_lim_rshard {
    pthread_mutex_t mu;
    pdp_lim_res    *chains[PDP_LIM_CHAINS];
} pdp_lim_rshard;

/* A lease (pdp_limits_lease.c): info holds what it holds (rate: in w's
 * held_reqs, held_toks and inflight; budget: in bw's bucket (info.code,
 * info.start_ms) reserved). An ended one is a tombstone that holds nothing
 * and is dropped at gone_ms. */
typedef struct pdp_lim_lease {
    struct pdp_lim_lease *next;
    uint64_t              hash;
    bool                  tomb;
    int64_t               gone_ms;
    pdp_lim_win          *w;
    pdp_lim_bud          *bw;
    pdp_lease_info        info;
} pdp_lim_lease;

#define PDP_LIM_LEASE_CHAINS 16 /* per shard, power of two */

typedef struct pdp_lim_lshard {
    pthread_mutex_t mu;
    pdp_lim_lease  *chains[PDP_LIM_LEASE_CHAINS];
} pdp_lim_lshard;

struct pdp_limits {
    int64_t       ttl_ms;
    int64_t       boot_ms;
    atomic_ullong seq;
    atomic_ullong pending;
    atomic_ullong tombs; /* abandoned ids not reserved (yet) */
    /* Admission order: taken under the window locks when a request is
     * counted, so a snapshot that read it first holds every request with
     * a smaller number (see pdp_limits_snapshot_seq). */
    atomic_ullong         admit_seq;
    atomic_ullong         changes; /* see pdp_limits_changes */
    atomic_llong          last_sweep_s;
    uint32_t              restored_win;
    uint32_t              restored_res;
    pthread_mutex_t       sweep_mu;
    pdp_limits_expired_fn on_expire; /* set before any decision */
    void                 *on_expire_arg;
    pdp_lim_shard         shards[PDP_LIM_SHARDS];
    pdp_lim_rshard        rshards[PDP_LIM_SHARDS];
    /* Leases: a third table, keyed by id; its locks are never held with
     * a window shard's (as the reservations'). */
    atomic_ullong         leases_open;
    atomic_ullong         leases_expired;
    atomic_ullong         lease_tombs;
    pdp_limits_expired_fn on_lease_expire; /* set before any grant */
    void                 *on_lease_expire_arg;
    pdp_lim_lshard        lshards[PDP_LIM_SHARDS];
};

/* ---- helpers every file uses -------------------------------------------- */

/* pdp_lim_key_hash is the hash of window (rule, scope); pdp_lim_bud_hash
 * that of budget (rule, scope), never the same. */
static inline uint64_t
pdp_lim_key_hash(const char *rule, const char *scope)
{
    uint64_t h = tg_fnv1a(TG_FNV_BASIS, rule, strlen(rule));

    h = tg_fnv1a(h, "\xff", 1); /* the separator */
    return h ^ tg_fnv1a(TG_FNV_BASIS, scope, strlen(scope));
}

static inline uint64_t
pdp_lim_bud_hash(const char *rule, const char *scope)
{
    return pdp_lim_key_hash(rule, scope) ^ 0x9e3779b97f4a7c15ull;
}

/* pdp_lim_bucket_at is the bucket of second sec in w, emptied when it held
 * an older second; w's shard locked. */
static inline pdp_lim_bucket *
pdp_lim_bucket_at(pdp_lim_win *w, int64_t sec)
{
    pdp_lim_bucket *b = &w->b[sec % PDP_LIMITS_WINDOW_S];

    if (b->sec != sec) {
        b->sec  = sec;
        b->reqs = 0;
        b->toks = 0;
    }
    return b;
}

/* pdp_lim_rshard_of is the reservation shard of id hash h. */
static inline pdp_lim_rshard *
pdp_lim_rshard_of(pdp_limits *l, uint64_t h)
{
    return &l->rshards[h % PDP_LIM_SHARDS];
}

/* ---- pdp_limits.c: the windows and budgets ------------------------------ */

/* pdp_limits__win_get and pdp_limits__bud_get find or create the window
 * or budget of (rule, scope) with hash h in shard s, which the caller
 * holds locked; NULL when out of memory. */
pdp_lim_win *pdp_limits__win_get(pdp_lim_shard *s, uint64_t h, const char *rule,
                                 const char *scope);
pdp_lim_bud *pdp_limits__bud_get(pdp_lim_shard *s, uint64_t h, const char *rule,
                                 const char *scope);

/* pdp_limits__bkt_get finds or adds bucket (code, start) of budget w,
 * dropping dead ones; NULL when out of memory. w's shard locked. */
pdp_lim_bkt *pdp_limits__bkt_get(pdp_lim_bud *w, uint8_t code, int64_t start);

/* pdp_limits__win_sums sums the requests and tokens of w's window at
 * second now_s, what leases hold included. w's shard locked. */
void pdp_limits__win_sums(const pdp_lim_win *w, int64_t now_s, int64_t *reqs,
                          int64_t *toks);

/* pdp_limits__free_at is the time (ms from now_ms) at which w's buckets
 * have freed at least need requests (toks: tokens), oldest second first; 0
 * if need <= 0, a whole window if they never do. w's shard locked. */
int64_t pdp_limits__free_at(const pdp_lim_win *w, int64_t now_ms, bool toks,
                            int64_t need);

/* pdp_limits__bud_sum sums the settled and reserved spend of budget w in
 * the window of q (rolling: the last span_h hours). w's shard locked. */
void pdp_limits__bud_sum(const pdp_lim_bud *w, const pdp_limits_budget *q,
                         int64_t *settled, int64_t *reserved);

/* ---- pdp_limits_res.c: the reservations --------------------------------- */

/* pdp_limits__res_put links r unless its id is already known (reserved, or
 * abandoned before it was reserved): false then, and r is not linked.
 * Takes no window shard lock. */
bool pdp_limits__res_put(pdp_limits *l, pdp_lim_res *r);

/* pdp_limits__res_end gives back r's slots and corrects its tokens
 * (actual < 0: keep the estimate), then frees r. r is already unlinked;
 * takes the window shards' locks one at a time. */
void pdp_limits__res_end(pdp_limits *l, pdp_lim_res *r, int64_t actual,
                         int64_t now_ms);

/* pdp_limits__res_known: id is reserved or abandoned. */
bool pdp_limits__res_known(pdp_limits *l, const char *id);

/* pdp_limits__maybe_sweep expires reservations at most once a second, on
 * whichever thread gets there first; the others never wait for it. */
void pdp_limits__maybe_sweep(pdp_limits *l, int64_t now_ms);

/* ---- pdp_limits_lease.c: the leases ------------------------------------- */

/* pdp_limits__lease_init and _fini set up and free the lease table (from
 * pdp_limits_create and pdp_limits_destroy). */
void pdp_limits__lease_init(pdp_limits *l);
void pdp_limits__lease_fini(pdp_limits *l);

/* pdp_limits__lease_expire ends every lease past its expires_ms and drops
 * tombstones past gone_ms; returns how many leases it ended. Takes the
 * lease shards' locks, then the window shards', never together. */
uint32_t pdp_limits__lease_expire(pdp_limits *l, int64_t now_ms);

/* pdp_limits__lease_keys is pdp_limits_budget_keys for a budget lease id
 * (open or ended but remembered). */
uint32_t pdp_limits__lease_keys(pdp_limits *l, const char *id,
                                pdp_limits_spend_key *out, uint32_t max);

#endif
