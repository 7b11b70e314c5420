/* pdp_limits.c - two sharded tables: windows keyed by "rule\0scope" and
 * reservations keyed by id. A check locks the window shards it needs in
 * ascending order (so two checks never deadlock), decides, counts and
 * unlocks: exact under any number of threads. A reservation is unlinked
 * from its table under the reservation shard's lock and only then are the
 * window shards taken, so no thread ever holds locks of both tables.
 * Windows are never freed before pdp_limits_destroy (reservations point
 * at them); their number is bounded by rules x distinct scope values.
 * A snapshot follows the same rule: it copies one shard at a time (window
 * shards, then reservation shards), reading the immutable key text of the
 * windows a reservation points at without their shard's lock. */
#include "pdp_limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_rec.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

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
    int64_t             inflight;
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
};

tg_err
pdp_limits_create(pdp_limits **out, int64_t ttl_ms)
{
    pdp_limits *l = calloc(1, sizeof(*l));

    if (l == NULL) {
        return TG_ENOMEM;
    }
    l->ttl_ms = ttl_ms > 0 ? ttl_ms : 900 * 1000;
    /* Ids stay unique across restarts: a late report for a reservation
     * of an earlier run never releases one of this run. */
    l->boot_ms = tg_now_ms();
    atomic_init(&l->seq, 0);
    atomic_init(&l->pending, 0);
    atomic_init(&l->tombs, 0);
    atomic_init(&l->admit_seq, 1);
    atomic_init(&l->changes, 0);
    atomic_init(&l->last_sweep_s, 0);
    pthread_mutex_init(&l->sweep_mu, NULL);
    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        pthread_mutex_init(&l->shards[i].mu, NULL);
        pthread_mutex_init(&l->rshards[i].mu, NULL);
    }
    *out = l;
    return TG_OK;
}

void
pdp_limits_destroy(pdp_limits *l)
{
    if (l == NULL) {
        return;
    }
    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        for (size_t c = 0; c < PDP_LIM_CHAINS; c++) {
            pdp_lim_win *w  = l->shards[i].chains[c];
            pdp_lim_res *r  = l->rshards[i].chains[c];
            pdp_lim_bud *bd = l->shards[i].bchains[c];
            while (bd != NULL) {
                pdp_lim_bud *nx = bd->next;
                free(bd->b);
                free(bd);
                bd = nx;
            }
            while (w != NULL) {
                pdp_lim_win *nx = w->next;
                free(w);
                w = nx;
            }
            while (r != NULL) {
                pdp_lim_res *nx = r->next;
                free(r);
                r = nx;
            }
        }
        pthread_mutex_destroy(&l->shards[i].mu);
        pthread_mutex_destroy(&l->rshards[i].mu);
    }
    pthread_mutex_destroy(&l->sweep_mu);
    free(l);
}

/* ---- windows ------------------------------------------------------------ */

static uint64_t
pdp_lim_key_hash(const char *rule, const char *scope)
{
    uint64_t h = tg_fnv1a(TG_FNV_BASIS, rule, strlen(rule));

    h = tg_fnv1a(h, "\xff", 1); /* the separator */
    return h ^ tg_fnv1a(TG_FNV_BASIS, scope, strlen(scope));
}

/* pdp_lim_win_get finds or creates the window; shard locked by caller. */
static pdp_lim_win *
pdp_lim_win_get(pdp_lim_shard *s, uint64_t h, const char *rule,
                const char *scope)
{
    size_t       rl = strlen(rule);
    size_t       sl = strlen(scope);
    size_t       kl = rl + 1 + sl + 1;
    size_t       c  = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    pdp_lim_win *w;

    for (w = s->chains[c]; w != NULL; w = w->next) {
        if (w->hash == h && w->klen == kl && strcmp(w->key, rule) == 0 &&
            strcmp(w->key + rl + 1, scope) == 0) {
            return w;
        }
    }
    if ((w = calloc(1, sizeof(*w) + kl)) == NULL) {
        return NULL;
    }
    w->hash = h;
    w->klen = kl;
    memcpy(w->key, rule, rl + 1);
    memcpy(w->key + rl + 1, scope, sl + 1);
    for (size_t i = 0; i < PDP_LIMITS_WINDOW_S; i++) {
        w->b[i].sec = -1;
    }
    w->next      = s->chains[c];
    s->chains[c] = w;
    return w;
}

static bool
pdp_lim_live(const pdp_lim_bucket *b, int64_t now_s)
{
    return b->sec > now_s - PDP_LIMITS_WINDOW_S && b->sec <= now_s;
}

static void
pdp_lim_sums(const pdp_lim_win *w, int64_t now_s, int64_t *reqs, int64_t *toks)
{
    int64_t r = 0;
    int64_t t = 0;

    for (size_t i = 0; i < PDP_LIMITS_WINDOW_S; i++) {
        if (pdp_lim_live(&w->b[i], now_s)) {
            r += w->b[i].reqs;
            t += w->b[i].toks;
        }
    }
    *reqs = r;
    *toks = t;
}

/* pdp_lim_free_at: the time (ms from now_ms) at which the window has freed
 * at least `need` of what it holds (toks or reqs), oldest second first; 0
 * if need <= 0. */
static int64_t
pdp_lim_free_at(const pdp_lim_win *w, int64_t now_ms, bool toks, int64_t need)
{
    int64_t now_s = now_ms / 1000;
    int64_t freed = 0;

    if (need <= 0) {
        return 0;
    }
    for (int64_t sec = now_s - PDP_LIMITS_WINDOW_S + 1; sec <= now_s; sec++) {
        const pdp_lim_bucket *b = &w->b[sec % PDP_LIMITS_WINDOW_S];
        if (b->sec != sec) {
            continue;
        }
        freed += toks ? b->toks : b->reqs;
        if (freed >= need) {
            int64_t at = (sec + PDP_LIMITS_WINDOW_S) * 1000 - now_ms;
            return at > 0 ? at : 1;
        }
    }
    return PDP_LIMITS_WINDOW_S * 1000;
}

static pdp_lim_bucket *
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

/* pdp_lim_state folds one rule's state into the most constraining one. */
static void
pdp_lim_state(tg_limit_state *st, const char *name, int64_t limit, int64_t used,
              int64_t reset_ms)
{
    int64_t rem = limit - used;

    if (limit <= 0) {
        return;
    }
    rem = rem > 0 ? rem : 0;
    if (st->limit == 0 || rem < st->remaining ||
        (rem == st->remaining && reset_ms > st->reset_ms)) {
        snprintf(st->name, sizeof(st->name), "%s", name);
        st->limit     = limit;
        st->remaining = rem;
        st->reset_ms  = reset_ms;
    }
}

static int
pdp_lim_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* ---- budgets ------------------------------------------------------------ */

#define PDP_LIM_HOUR_MS 3600000LL
/* Buckets older than the longest window (rolling:744h, a 31-day month)
 * are dropped once nothing is reserved in them. */
#define PDP_LIM_KEEP_MS (745LL * PDP_LIM_HOUR_MS)

static uint64_t
pdp_lim_bud_hash(const char *rule, const char *scope)
{
    return pdp_lim_key_hash(rule, scope) ^ 0x9e3779b97f4a7c15ull;
}

/* pdp_lim_bud_get finds or creates the budget; shard locked by caller. */
static pdp_lim_bud *
pdp_lim_bud_get(pdp_lim_shard *s, uint64_t h, const char *rule,
                const char *scope)
{
    size_t       rl = strlen(rule);
    size_t       sl = strlen(scope);
    size_t       kl = rl + 1 + sl + 1;
    size_t       c  = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    pdp_lim_bud *w;

    for (w = s->bchains[c]; w != NULL; w = w->next) {
        if (w->hash == h && w->klen == kl && strcmp(w->key, rule) == 0 &&
            strcmp(w->key + rl + 1, scope) == 0) {
            return w;
        }
    }
    if ((w = calloc(1, sizeof(*w) + kl)) == NULL) {
        return NULL;
    }
    w->hash = h;
    w->klen = kl;
    memcpy(w->key, rule, rl + 1);
    memcpy(w->key + rl + 1, scope, sl + 1);
    w->next       = s->bchains[c];
    s->bchains[c] = w;
    return w;
}

/* pdp_lim_bkt_get finds or adds bucket (code, start), dropping dead ones;
 * NULL when out of memory. */
static pdp_lim_bkt *
pdp_lim_bkt_get(pdp_lim_bud *w, uint8_t code, int64_t start)
{
    uint32_t k = 0;

    for (uint32_t i = 0; i < w->nb; i++) {
        if (w->b[i].code == code && w->b[i].start == start) {
            return &w->b[i];
        }
    }
    for (uint32_t i = 0; i < w->nb; i++) {
        if (w->b[i].reserved == 0 && w->b[i].start < start - PDP_LIM_KEEP_MS) {
            continue;
        }
        w->b[k++] = w->b[i];
    }
    w->nb = k;
    if (w->nb == w->cap) {
        uint32_t     cap = w->cap ? w->cap * 2 : 4;
        pdp_lim_bkt *nb  = realloc(w->b, cap * sizeof(*nb));
        if (nb == NULL) {
            return NULL;
        }
        w->b   = nb;
        w->cap = cap;
    }
    w->b[w->nb] = (pdp_lim_bkt){code, start, 0, 0};
    return &w->b[w->nb++];
}

/* pdp_lim_bud_sum: settled and reserved in the window of q. */
static void
pdp_lim_bud_sum(const pdp_lim_bud *w, const pdp_limits_budget *q,
                int64_t *settled, int64_t *reserved)
{
    int64_t s = 0;
    int64_t r = 0;

    for (uint32_t i = 0; i < w->nb; i++) {
        const pdp_lim_bkt *b = &w->b[i];
        if (b->code != q->code) {
            continue;
        }
        if (q->span_h > 0
                ? (b->start <= q->start_ms &&
                   b->start > q->start_ms - q->span_h * PDP_LIM_HOUR_MS)
                : b->start == q->start_ms) {
            s += b->settled;
            r += b->reserved;
        }
    }
    *settled  = s;
    *reserved = r;
}

int64_t
pdp_limits_worst(const pdp_limits_cost *c, int64_t out_tokens)
{
    __int128 x = (__int128)c->in_per_mtok * (c->prompt > 0 ? c->prompt : 0) +
                 (__int128)c->out_per_mtok * (out_tokens > 0 ? out_tokens : 0);
    __int128 w = (x + 999999) / 1000000;

    return w > INT64_MAX ? INT64_MAX : (int64_t)w;
}

int64_t
pdp_limits_fit(const pdp_limits_cost *c, int64_t remaining)
{
    __int128 room;
    __int128 k;

    if (remaining < 0 || pdp_limits_worst(c, 0) > remaining) {
        return -1;
    }
    if (c->out_per_mtok <= 0) {
        return c->max_out;
    }
    room = (__int128)remaining * 1000000 -
           (__int128)c->in_per_mtok * (c->prompt > 0 ? c->prompt : 0);
    k = room / c->out_per_mtok;
    return k > c->max_out ? c->max_out : (int64_t)k;
}

/* ---- reservations ------------------------------------------------------- */

static pdp_lim_rshard *
pdp_lim_rshard_of(pdp_limits *l, uint64_t h)
{
    return &l->rshards[h % PDP_LIM_SHARDS];
}

/* pdp_lim_res_put links r unless its id is already known (reserved, or
 * abandoned before it was reserved): false then, and r is not linked. */
static bool
pdp_lim_res_put(pdp_limits *l, pdp_lim_res *r)
{
    pdp_lim_rshard *s = pdp_lim_rshard_of(l, r->hash);
    size_t          c = (size_t)(r->hash >> 8) & (PDP_LIM_CHAINS - 1);

    pthread_mutex_lock(&s->mu);
    for (pdp_lim_res *o = s->chains[c]; o != NULL; o = o->next) {
        if (o->hash == r->hash && strcmp(o->id, r->id) == 0) {
            pthread_mutex_unlock(&s->mu);
            return false;
        }
    }
    r->next      = s->chains[c];
    s->chains[c] = r;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(r->tomb ? &l->tombs : &l->pending, 1);
    return true;
}

/* pdp_lim_res_end gives back r's slots and corrects its tokens (actual < 0:
 * keep the estimate), then frees r. r is already unlinked. */
static void
pdp_lim_res_end(pdp_limits *l, pdp_lim_res *r, int64_t actual, int64_t now_ms)
{
    int64_t now_s = now_ms / 1000;

    for (uint32_t i = 0; i < r->n; i++) {
        pdp_lim_win   *w = r->w[i];
        pdp_lim_shard *s = &l->shards[w->hash % PDP_LIM_SHARDS];

        pthread_mutex_lock(&s->mu);
        if (r->conc[i] && w->inflight > 0) {
            w->inflight--;
        }
        if (actual >= 0 && r->sec > now_s - PDP_LIMITS_WINDOW_S) {
            pdp_lim_bucket *b = &w->b[r->sec % PDP_LIMITS_WINDOW_S];
            if (b->sec == r->sec) {
                b->toks += actual - r->tokens;
                if (b->toks < 0) {
                    b->toks = 0;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    for (uint32_t i = 0; i < r->nbud; i++) {
        pdp_lim_bud   *w = r->bw[i];
        pdp_lim_shard *s = &l->shards[w->hash % PDP_LIM_SHARDS];
        pdp_lim_bkt   *b;

        pthread_mutex_lock(&s->mu);
        b = pdp_lim_bkt_get(w, r->bcode[i], r->bstart[i]);
        if (b != NULL) {
            b->reserved -= r->bamt;
            if (b->reserved < 0) {
                b->reserved = 0;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (!r->tomb) {
        atomic_fetch_sub(&l->pending, 1);
    }
    atomic_fetch_add(&l->changes, 1);
    free(r);
}

/* pdp_lim_res_take unlinks reservation id (a tombstone too) and returns
 * it, or NULL when the id is unknown. */
static pdp_lim_res *
pdp_lim_res_take(pdp_limits *l, const char *id, bool tombs)
{
    uint64_t        h = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    pdp_lim_rshard *s = pdp_lim_rshard_of(l, h);
    size_t          c = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    pdp_lim_res   **pp;
    pdp_lim_res    *r = NULL;

    pthread_mutex_lock(&s->mu);
    for (pp = &s->chains[c]; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->hash == h && strcmp((*pp)->id, id) == 0) {
            if ((*pp)->tomb && !tombs) {
                break;
            }
            r   = *pp;
            *pp = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* pdp_lim_res_known: id is reserved or abandoned. */
static bool
pdp_lim_res_known(pdp_limits *l, const char *id)
{
    uint64_t        h     = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    pdp_lim_rshard *s     = pdp_lim_rshard_of(l, h);
    size_t          c     = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    bool            known = false;

    pthread_mutex_lock(&s->mu);
    for (pdp_lim_res *r = s->chains[c]; r != NULL && !known; r = r->next) {
        known = r->hash == h && strcmp(r->id, id) == 0;
    }
    pthread_mutex_unlock(&s->mu);
    return known;
}

bool
pdp_limits_release(pdp_limits *l, const char *id, int64_t actual_tokens,
                   int64_t now_ms)
{
    pdp_lim_res *r;

    if (l == NULL || id == NULL || id[0] == '\0' ||
        (r = pdp_lim_res_take(l, id, false)) == NULL) {
        return false;
    }
    pdp_lim_res_end(l, r, actual_tokens < 0 ? 0 : actual_tokens, now_ms);
    return true;
}

bool
pdp_limits_abandon(pdp_limits *l, const char *id, int64_t now_ms)
{
    pdp_lim_res    *t;
    pdp_lim_res    *r = NULL;
    pdp_lim_rshard *s;
    size_t          c;
    bool            known = false;

    if (l == NULL || id == NULL || id[0] == '\0' ||
        strlen(id) >= sizeof(t->id)) {
        return false;
    }
    /* Allocated before the lock. Without memory a decision still on its
     * way reserves and the TTL frees it: late, never lost. */
    if ((t = calloc(1, sizeof(*t))) != NULL) {
        snprintf(t->id, sizeof(t->id), "%s", id);
        t->tomb       = true;
        t->created_ms = now_ms;
    }
    {
        uint64_t h = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
        s          = pdp_lim_rshard_of(l, h);
        c          = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
        if (t != NULL) {
            t->hash = h;
        }
        /* One lock for the lookup and the tombstone: a decision putting
         * its reservation in between cannot slip past both. */
        pthread_mutex_lock(&s->mu);
        for (pdp_lim_res **pp = &s->chains[c]; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->hash == h && strcmp((*pp)->id, id) == 0) {
                known = true;
                if (!(*pp)->tomb) {
                    r   = *pp;
                    *pp = r->next;
                }
                break;
            }
        }
        if (!known && t != NULL) {
            t->next      = s->chains[c];
            s->chains[c] = t;
            t            = NULL;
            atomic_fetch_add(&l->tombs, 1);
        }
        pthread_mutex_unlock(&s->mu);
    }
    free(t);
    if (r == NULL) {
        return false;
    }
    /* Nothing went upstream: its tokens are not counted. */
    pdp_lim_res_end(l, r, 0, now_ms);
    return true;
}

uint32_t
pdp_limits_expire(pdp_limits *l, int64_t now_ms)
{
    uint32_t n = 0;

    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        pdp_lim_rshard *s    = &l->rshards[i];
        pdp_lim_res    *dead = NULL;

        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_CHAINS; c++) {
            pdp_lim_res **pp = &s->chains[c];
            while (*pp != NULL) {
                pdp_lim_res *r = *pp;
                if (now_ms - r->created_ms >= l->ttl_ms) {
                    *pp     = r->next;
                    r->next = dead;
                    dead    = r;
                } else {
                    pp = &r->next;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
        while (dead != NULL) {
            pdp_lim_res *nx = dead->next;
            if (dead->tomb) {
                atomic_fetch_sub(&l->tombs, 1);
                free(dead);
                dead = nx;
                continue;
            }
            tg_warn("limits: reservation %s expired: no usage report within "
                    "%lld s; its concurrency slot and its reserved budget "
                    "(%lld micro-USD) are released and its estimated %lld "
                    "tokens stay counted",
                    dead->id, (long long)(l->ttl_ms / 1000),
                    (long long)dead->bamt, (long long)dead->tokens);
            if (l->on_expire != NULL) {
                l->on_expire(l->on_expire_arg, dead->id);
            }
            pdp_lim_res_end(l, dead, -1, now_ms);
            dead = nx;
            n++;
        }
    }
    return n;
}

void
pdp_limits_on_expire(pdp_limits *l, pdp_limits_expired_fn fn, void *arg)
{
    l->on_expire     = fn;
    l->on_expire_arg = arg;
}

uint64_t
pdp_limits_pending(pdp_limits *l)
{
    return l != NULL ? atomic_load(&l->pending) : 0;
}

/* pdp_lim_maybe_sweep expires reservations at most once a second, on
 * whichever thread gets there first; the others never wait for it. */
static void
pdp_lim_maybe_sweep(pdp_limits *l, int64_t now_ms)
{
    long long now_s = now_ms / 1000;
    long long last  = atomic_load(&l->last_sweep_s);

    if (now_s <= last ||
        atomic_load(&l->pending) + atomic_load(&l->tombs) == 0) {
        return;
    }
    if (!atomic_compare_exchange_strong(&l->last_sweep_s, &last, now_s)) {
        return;
    }
    if (pthread_mutex_trylock(&l->sweep_mu) != 0) {
        return;
    }
    pdp_limits_expire(l, now_ms);
    pthread_mutex_unlock(&l->sweep_mu);
}

/* ---- check -------------------------------------------------------------- */

static void
pdp_lim_check(pdp_limits *l, const char *id, const pdp_limits_req *reqs,
              uint32_t n, const pdp_limits_budget *buds, uint32_t nb,
              const pdp_limits_cost *cost, int64_t tokens, bool reserve,
              int64_t now_ms, pdp_limits_result *out)
{
    uint32_t     shard_of[PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX];
    uint32_t     order[PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX];
    uint64_t     hash[PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX];
    pdp_lim_win *w[PDP_LIMITS_RULES_MAX];
    pdp_lim_bud *bw[PDP_LIMITS_BUDGETS_MAX];
    int64_t      bset[PDP_LIMITS_BUDGETS_MAX];
    int64_t      bres[PDP_LIMITS_BUDGETS_MAX];
    uint32_t     nlock    = 0;
    int64_t      now_s    = now_ms / 1000;
    bool         need_res = false;
    pdp_lim_res *res      = NULL;
    int64_t      kout     = 0;
    int64_t      worst    = 0;

    memset(out, 0, sizeof(*out));
    if (n > PDP_LIMITS_RULES_MAX) {
        n = PDP_LIMITS_RULES_MAX;
    }
    if (nb > PDP_LIMITS_BUDGETS_MAX) {
        nb = PDP_LIMITS_BUDGETS_MAX;
    }
    if (cost == NULL || !reserve) {
        nb = 0;
    }
    if (tokens < 0) {
        tokens = 0;
    }
    if (n == 0 && nb == 0) {
        return;
    }
    pdp_lim_maybe_sweep(l, now_ms);
    if (reserve) {
        /* Allocated before locking; freed unused if nothing is held. */
        res = calloc(1, sizeof(*res));
    }
    for (uint32_t i = 0; i < n; i++) {
        hash[i]     = pdp_lim_key_hash(reqs[i].rule_id, reqs[i].scope);
        shard_of[i] = (uint32_t)(hash[i] % PDP_LIM_SHARDS);
        bool seen   = false;
        for (uint32_t k = 0; k < nlock && !seen; k++) {
            seen = order[k] == shard_of[i];
        }
        if (!seen) {
            order[nlock++] = shard_of[i];
        }
    }
    for (uint32_t j = 0; j < nb; j++) {
        uint32_t i  = PDP_LIMITS_RULES_MAX + j;
        hash[i]     = pdp_lim_bud_hash(buds[j].rule_id, buds[j].scope);
        shard_of[i] = (uint32_t)(hash[i] % PDP_LIM_SHARDS);
        bool seen   = false;
        for (uint32_t k = 0; k < nlock && !seen; k++) {
            seen = order[k] == shard_of[i];
        }
        if (!seen) {
            order[nlock++] = shard_of[i];
        }
    }
    qsort(order, nlock, sizeof(order[0]), pdp_lim_cmp_u32);
    for (uint32_t k = 0; k < nlock; k++) {
        pthread_mutex_lock(&l->shards[order[k]].mu);
    }
    for (uint32_t i = 0; i < n; i++) {
        w[i] = pdp_lim_win_get(&l->shards[shard_of[i]], hash[i],
                               reqs[i].rule_id, reqs[i].scope);
        if (w[i] == NULL) {
            /* Out of memory: fail closed on this rule. */
            out->denied      = PDP_LIMITS_REQUESTS;
            out->denied_rule = i;
            out->limit       = reqs[i].rpm;
            out->retry_ms    = 1000;
            goto unlock;
        }
    }
    for (uint32_t j = 0; j < nb; j++) {
        uint32_t i = PDP_LIMITS_RULES_MAX + j;
        bw[j]      = pdp_lim_bud_get(&l->shards[shard_of[i]], hash[i],
                                     buds[j].rule_id, buds[j].scope);
        if (bw[j] == NULL ||
            pdp_lim_bkt_get(bw[j], buds[j].code, buds[j].start_ms) == NULL) {
            out->denied        = PDP_LIMITS_BUDGET;
            out->denied_budget = j;
            out->limit         = buds[j].limit;
            goto unlock;
        }
        pdp_lim_bud_sum(bw[j], &buds[j], &bset[j], &bres[j]);
    }
    /* Budgets first: a clamp lowers the output tokens every other limit
     * then counts. */
    if (nb > 0) {
        kout = cost->max_out;
        for (uint32_t j = 0; j < nb && out->denied == PDP_LIMITS_OK; j++) {
            int64_t f;
            if (!buds[j].clamp) {
                continue;
            }
            f = pdp_limits_fit(cost, buds[j].limit - bset[j] - bres[j]);
            if (f < 1) {
                out->denied        = PDP_LIMITS_BUDGET;
                out->denied_budget = j;
                out->b_worst       = pdp_limits_worst(cost, 1);
            } else if (f < kout) {
                kout = f;
            }
        }
        worst = pdp_limits_worst(cost, kout);
        for (uint32_t j = 0; j < nb && out->denied == PDP_LIMITS_OK; j++) {
            if (bset[j] + bres[j] > buds[j].limit - worst) {
                out->denied        = PDP_LIMITS_BUDGET;
                out->denied_budget = j;
                out->b_worst       = worst;
            }
        }
        if (out->denied == PDP_LIMITS_BUDGET) {
            uint32_t j      = out->denied_budget;
            out->limit      = buds[j].limit;
            out->used       = bset[j] + bres[j];
            out->b_spent    = bset[j];
            out->b_reserved = bres[j];
            goto unlock;
        }
        out->clamp_tokens = kout;
        tokens -= cost->max_out - kout;
        if (tokens < 0) {
            tokens = 0;
        }
        need_res = true;
    }
    /* Decide over every rule before counting anything. */
    for (uint32_t i = 0; i < n && out->denied == PDP_LIMITS_OK; i++) {
        const pdp_limits_req *q = &reqs[i];
        int64_t               ur;
        int64_t               ut;

        pdp_lim_sums(w[i], now_s, &ur, &ut);
        if (q->concurrent > 0 && reserve &&
            w[i]->inflight + 1 > q->concurrent) {
            out->denied   = PDP_LIMITS_CONCURRENT;
            out->limit    = q->concurrent;
            out->used     = w[i]->inflight;
            out->retry_ms = 1000;
        } else if (q->rpm > 0 && ur + 1 > q->rpm) {
            out->denied = PDP_LIMITS_REQUESTS;
            out->limit  = q->rpm;
            out->used   = ur;
            out->retry_ms =
                pdp_lim_free_at(w[i], now_ms, false, ur + 1 - q->rpm);
        } else if (q->tpm > 0 && ut + tokens > q->tpm) {
            out->denied = PDP_LIMITS_TOKENS;
            out->limit  = q->tpm;
            out->used   = ut;
            out->retry_ms =
                tokens > q->tpm
                    ? PDP_LIMITS_WINDOW_S * 1000
                    : pdp_lim_free_at(w[i], now_ms, true, ut + tokens - q->tpm);
        }
        if (out->denied != PDP_LIMITS_OK) {
            out->denied_rule = i;
        }
    }
    if (out->denied == PDP_LIMITS_OK || !reserve) {
        atomic_fetch_add(&l->changes, 1);
        if (res != NULL) {
            res->seq = atomic_fetch_add(&l->admit_seq, 1);
        }
        for (uint32_t i = 0; i < n; i++) {
            pdp_lim_bucket *b = pdp_lim_bucket_at(w[i], now_s);
            b->reqs++;
            b->toks += tokens;
            if (reserve && reqs[i].concurrent > 0) {
                w[i]->inflight++;
            }
            /* Every admitted request is held until its usage report, so
             * a restart can count it again and its tokens get corrected. */
            need_res = need_res || reserve;
        }
    }
    /* Headers: the state each rule is left in. */
    for (uint32_t i = 0; i < n; i++) {
        int64_t ur;
        int64_t ut;

        pdp_lim_sums(w[i], now_s, &ur, &ut);
        pdp_lim_state(&out->requests, "requests", reqs[i].rpm, ur,
                      pdp_lim_free_at(w[i], now_ms, false, 1));
        pdp_lim_state(&out->tokens, "tokens", reqs[i].tpm, ut,
                      pdp_lim_free_at(w[i], now_ms, true, 1));
    }
    if (out->denied != PDP_LIMITS_OK) {
        /* The limit that denied is the one the client must wait for. */
        tg_limit_state *st =
            out->denied == PDP_LIMITS_TOKENS ? &out->tokens : &out->requests;
        const pdp_limits_req *q = &reqs[out->denied_rule];
        if (out->denied == PDP_LIMITS_TOKENS ||
            out->denied == PDP_LIMITS_REQUESTS) {
            int64_t lim = out->limit;
            int64_t rem = lim - out->used;
            snprintf(st->name, sizeof(st->name), "%s",
                     out->denied == PDP_LIMITS_TOKENS ? "tokens" : "requests");
            st->limit     = lim;
            st->remaining = rem > 0 ? rem : 0;
            st->reset_ms  = out->retry_ms;
        }
        (void)q;
    }
    if (out->denied != PDP_LIMITS_OK) {
        need_res = false; /* budgets: nothing was counted yet */
    }
    if (need_res && res != NULL) {
        uint32_t k = 0;
        for (uint32_t j = 0; j < nb; j++) {
            pdp_lim_bkt *b =
                pdp_lim_bkt_get(bw[j], buds[j].code, buds[j].start_ms);
            b->reserved += worst; /* found above: no allocation here */
            res->bw[j]     = bw[j];
            res->bcode[j]  = buds[j].code;
            res->bstart[j] = buds[j].start_ms;
            res->blimit[j] = buds[j].limit;
            res->bkind[j]  = buds[j].scope_kind;
            res->bnthr[j]  = buds[j].nthr <= PDP_LIMITS_THRESHOLDS_MAX
                                 ? buds[j].nthr
                                 : PDP_LIMITS_THRESHOLDS_MAX;
            memcpy(res->bthr[j], buds[j].thr, res->bnthr[j]);
        }
        res->nbud = nb;
        res->bamt = worst;
        for (uint32_t i = 0; i < n; i++) {
            res->w[k]    = w[i];
            res->conc[k] = reqs[i].concurrent > 0;
            k++;
        }
        res->n = k;
    } else if (need_res) {
        /* No memory for the reservation: undo, fail closed. */
        for (uint32_t i = 0; i < n; i++) {
            pdp_lim_bucket *b = pdp_lim_bucket_at(w[i], now_s);
            b->reqs--;
            b->toks -= tokens;
            if (reqs[i].concurrent > 0) {
                w[i]->inflight--;
            }
        }
        out->denied   = PDP_LIMITS_REQUESTS;
        out->limit    = n > 0 ? reqs[0].rpm : 0;
        out->retry_ms = 1000;
        need_res      = false;
    }
unlock:
    for (uint32_t k = nlock; k-- > 0;) {
        pthread_mutex_unlock(&l->shards[order[k]].mu);
    }
    if (!need_res) {
        free(res);
        return;
    }
    if (id != NULL && id[0] != '\0' && strlen(id) < sizeof(res->id)) {
        memcpy(res->id, id, strlen(id) + 1);
    } else {
        snprintf(res->id, sizeof(res->id), "rl-%llx-%llx",
                 (unsigned long long)l->boot_ms,
                 (unsigned long long)atomic_fetch_add(&l->seq, 1));
    }
    res->hash       = tg_fnv1a(TG_FNV_BASIS, res->id, strlen(res->id));
    res->created_ms = now_ms;
    res->sec        = now_s;
    res->tokens     = tokens;
    if (!pdp_lim_res_put(l, res)) {
        /* Abandoned before it got here (or a repeated id): undo. */
        atomic_fetch_add(&l->pending, 1); /* pdp_lim_res_end takes it back */
        pdp_lim_res_end(l, res, 0, now_ms);
        memset(out, 0, sizeof(*out));
        out->denied   = PDP_LIMITS_ABANDONED;
        out->retry_ms = 1000;
        return;
    }
    memcpy(out->reservation_id, res->id, sizeof(out->reservation_id));
}

void
pdp_limits_check(pdp_limits *l, const pdp_limits_req *reqs, uint32_t n,
                 int64_t tokens, bool reserve, int64_t now_ms,
                 pdp_limits_result *out)
{
    pdp_lim_check(l, NULL, reqs, n, NULL, 0, NULL, tokens, reserve, now_ms,
                  out);
}

void
pdp_limits_check_budgets(pdp_limits *l, const char *id,
                         const pdp_limits_req *reqs, uint32_t n,
                         const pdp_limits_budget *buds, uint32_t nb,
                         const pdp_limits_cost *cost, int64_t tokens,
                         int64_t now_ms, pdp_limits_result *out)
{
    pdp_lim_check(l, id, reqs, n, buds, nb, cost, tokens, true, now_ms, out);
}

uint32_t
pdp_limits_budget_keys(pdp_limits *l, const char *id, pdp_limits_spend_key *out,
                       uint32_t max)
{
    uint64_t        h;
    pdp_lim_rshard *s;
    pdp_lim_res    *r;
    uint32_t        n = 0;
    size_t          c;

    if (l == NULL || id == NULL || id[0] == '\0') {
        return 0;
    }
    h = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    s = pdp_lim_rshard_of(l, h);
    c = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    pthread_mutex_lock(&s->mu);
    for (r = s->chains[c]; r != NULL; r = r->next) {
        if (r->hash == h && strcmp(r->id, id) == 0) {
            break;
        }
    }
    for (uint32_t i = 0; r != NULL && i < r->nbud && n < max; i++) {
        /* The key text is immutable once the budget exists. */
        const char *rule = r->bw[i]->key;
        snprintf(out[n].rule_id, sizeof(out[n].rule_id), "%s", rule);
        snprintf(out[n].scope, sizeof(out[n].scope), "%s",
                 rule + strlen(rule) + 1);
        out[n].code       = r->bcode[i];
        out[n].start_ms   = r->bstart[i];
        out[n].limit      = r->blimit[i];
        out[n].scope_kind = r->bkind[i];
        out[n].nthr       = r->bnthr[i];
        memcpy(out[n].thr, r->bthr[i], r->bnthr[i]);
        out[n].nfired      = 0;
        out[n].spent_after = 0;
        n++;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void
pdp_lim_bud_add(pdp_limits *l, const char *rule, const char *scope,
                uint8_t code, int64_t start_ms, int64_t amount)
{
    uint64_t       h = pdp_lim_bud_hash(rule, scope);
    pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
    pdp_lim_bud   *w;
    pdp_lim_bkt   *b = NULL;

    pthread_mutex_lock(&s->mu);
    if ((w = pdp_lim_bud_get(s, h, rule, scope)) != NULL) {
        b = pdp_lim_bkt_get(w, code, start_ms);
    }
    if (b != NULL) {
        b->settled += amount;
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&l->changes, 1);
    if (b == NULL) {
        tg_error("limits: out of memory: %lld micro-USD of budget %s (%s) "
                 "not counted until restart",
                 (long long)amount, rule, scope);
    }
}

bool
pdp_limits_settle(pdp_limits *l, const char *id, int64_t actual_tokens,
                  int64_t cost, const pdp_limits_spend_key *keys, uint32_t n,
                  int64_t now_ms)
{
    for (uint32_t i = 0; i < n && cost > 0; i++) {
        pdp_lim_bud_add(l, keys[i].rule_id, keys[i].scope, keys[i].code,
                        keys[i].start_ms, cost);
    }
    return pdp_limits_release(l, id, actual_tokens, now_ms);
}

void
pdp_limits_budget_load(pdp_limits *l, const char *rule, const char *scope,
                       uint8_t code, int64_t start_ms, int64_t spent)
{
    pdp_lim_bud_add(l, rule, scope, code, start_ms, spent);
}

void
pdp_limits_budget_state(pdp_limits *l, const pdp_limits_budget *q,
                        int64_t *spent, int64_t *reserved)
{
    uint64_t       h = pdp_lim_bud_hash(q->rule_id, q->scope);
    pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
    pdp_lim_bud   *w;

    *spent    = 0;
    *reserved = 0;
    pthread_mutex_lock(&s->mu);
    if ((w = pdp_lim_bud_get(s, h, q->rule_id, q->scope)) != NULL) {
        pdp_lim_bud_sum(w, q, spent, reserved);
    }
    pthread_mutex_unlock(&s->mu);
}

uint32_t
pdp_limits_crossed(int64_t before, int64_t after, int64_t limit,
                   const uint8_t *thr, uint32_t nthr, uint8_t *out)
{
    uint32_t n = 0;

    if (limit <= 0 || after <= before) {
        return 0;
    }
    for (uint32_t i = 0; i < nthr && n < PDP_LIMITS_THRESHOLDS_MAX; i++) {
        __int128 mark = (__int128)thr[i] * limit;
        if ((__int128)before * 100 < mark && mark <= (__int128)after * 100) {
            out[n++] = thr[i];
        }
    }
    return n;
}

/* ---- snapshot and restore ----------------------------------------------- */

/* A snapshot writer: the first error sticks and later appends do nothing. */
typedef struct pdp_lim_wr {
    tg_buf *b;
    tg_err  rv;
} pdp_lim_wr;

static void
pdp_lim_wr_uint(pdp_lim_wr *w, uint64_t v, size_t width)
{
    uint8_t b[8];

    if (w->rv != TG_OK) {
        return;
    }
    for (size_t i = 0; i < width; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    w->rv = tg_buf_append(w->b, b, width);
}

static void
pdp_lim_wr_str(pdp_lim_wr *w, const char *s)
{
    size_t n = strlen(s);

    if (n > UINT16_MAX) {
        n = UINT16_MAX; /* never: ids and scope values are far shorter */
    }
    pdp_lim_wr_uint(w, n, 2);
    if (w->rv == TG_OK) {
        w->rv = tg_buf_append(w->b, s, n);
    }
}

/* pdp_lim_wr_patch writes a u32 at offset at (reserved earlier). */
static void
pdp_lim_wr_patch(pdp_lim_wr *w, size_t at, uint32_t v)
{
    if (w->rv != TG_OK) {
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        w->b->data[at + i] = (char)(uint8_t)(v >> (8 * i));
    }
}

/* pdp_lim_snap_win writes window w if it holds anything; shard locked. */
static uint32_t
pdp_lim_snap_win(pdp_lim_wr *o, const pdp_lim_win *w, int64_t now_s)
{
    uint8_t nb = 0;

    for (int64_t sec = now_s - PDP_LIMITS_WINDOW_S + 1; sec <= now_s; sec++) {
        const pdp_lim_bucket *b = &w->b[sec % PDP_LIMITS_WINDOW_S];
        nb += b->sec == sec && (b->reqs != 0 || b->toks != 0);
    }
    if (nb == 0 && w->inflight == 0) {
        return 0;
    }
    pdp_lim_wr_str(o, w->key);
    pdp_lim_wr_str(o, w->key + strlen(w->key) + 1);
    pdp_lim_wr_uint(o, (uint64_t)w->inflight, 8);
    pdp_lim_wr_uint(o, nb, 1);
    for (int64_t sec = now_s - PDP_LIMITS_WINDOW_S + 1; sec <= now_s; sec++) {
        const pdp_lim_bucket *b = &w->b[sec % PDP_LIMITS_WINDOW_S];
        if (b->sec == sec && (b->reqs != 0 || b->toks != 0)) {
            pdp_lim_wr_uint(o, (uint64_t)b->sec, 8);
            pdp_lim_wr_uint(o, (uint64_t)b->reqs, 8);
            pdp_lim_wr_uint(o, (uint64_t)b->toks, 8);
        }
    }
    return 1;
}

/* pdp_lim_snap_res writes reservation r; its rshard locked. The window
 * and budget keys it points at never change once created. */
static void
pdp_lim_snap_res(pdp_lim_wr *o, const pdp_lim_res *r)
{
    pdp_lim_wr_str(o, r->id);
    pdp_lim_wr_uint(o, (uint64_t)r->created_ms, 8);
    pdp_lim_wr_uint(o, (uint64_t)r->sec, 8);
    pdp_lim_wr_uint(o, (uint64_t)r->tokens, 8);
    pdp_lim_wr_uint(o, r->n, 1);
    for (uint32_t i = 0; i < r->n; i++) {
        pdp_lim_wr_str(o, r->w[i]->key);
        pdp_lim_wr_str(o, r->w[i]->key + strlen(r->w[i]->key) + 1);
        pdp_lim_wr_uint(o, r->conc[i] ? 1 : 0, 1);
    }
    pdp_lim_wr_uint(o, r->nbud, 1);
    for (uint32_t i = 0; i < r->nbud; i++) {
        pdp_lim_wr_str(o, r->bw[i]->key);
        pdp_lim_wr_str(o, r->bw[i]->key + strlen(r->bw[i]->key) + 1);
        pdp_lim_wr_uint(o, r->bcode[i], 1);
        pdp_lim_wr_uint(o, (uint64_t)r->bstart[i], 8);
        pdp_lim_wr_uint(o, (uint64_t)r->bamt, 8);
        pdp_lim_wr_uint(o, (uint64_t)r->blimit[i], 8);
        pdp_lim_wr_uint(o, r->bkind[i], 1);
        pdp_lim_wr_uint(o, r->bnthr[i], 1);
        for (uint32_t k = 0; k < r->bnthr[i]; k++) {
            pdp_lim_wr_uint(o, r->bthr[i][k], 1);
        }
    }
}

static tg_err pdp_lim_snapshot(pdp_limits *l, int64_t now_ms, bool with_res,
                               tg_buf *out);

tg_err
pdp_limits_snapshot(pdp_limits *l, int64_t now_ms, tg_buf *out)
{
    return pdp_lim_snapshot(l, now_ms, true, out);
}

tg_err
pdp_limits_snapshot_windows(pdp_limits *l, int64_t now_ms, tg_buf *out)
{
    return pdp_lim_snapshot(l, now_ms, false, out);
}

static tg_err
pdp_lim_snapshot(pdp_limits *l, int64_t now_ms, bool with_res, tg_buf *out)
{
    pdp_lim_wr o     = {out, TG_OK};
    int64_t    now_s = now_ms / 1000;
    uint32_t   nwin  = 0;
    uint32_t   nres  = 0;
    size_t     at;

    pdp_lim_wr_uint(&o, PDP_LIMITS_SNAPSHOT_VERSION, 1);
    pdp_lim_wr_uint(&o, (uint64_t)now_ms, 8);
    /* Read before any shard is copied: every request counted with a
     * smaller number is in this snapshot. */
    pdp_lim_wr_uint(&o, atomic_load(&l->admit_seq), 8);
    at = out->len;
    pdp_lim_wr_uint(&o, 0, 4); /* nwin, patched below */
    for (size_t i = 0; i < PDP_LIM_SHARDS && o.rv == TG_OK; i++) {
        pdp_lim_shard *s = &l->shards[i];

        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_CHAINS; c++) {
            for (const pdp_lim_win *w = s->chains[c]; w != NULL; w = w->next) {
                nwin += pdp_lim_snap_win(&o, w, now_s);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    pdp_lim_wr_patch(&o, at, nwin);
    at = out->len;
    pdp_lim_wr_uint(&o, 0, 4); /* nres */
    for (size_t i = 0; with_res && i < PDP_LIM_SHARDS && o.rv == TG_OK; i++) {
        pdp_lim_rshard *s = &l->rshards[i];

        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_CHAINS; c++) {
            for (const pdp_lim_res *r = s->chains[c]; r != NULL; r = r->next) {
                if (r->tomb) {
                    continue;
                }
                pdp_lim_snap_res(&o, r);
                nres++;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    pdp_lim_wr_patch(&o, at, nres);
    return o.rv;
}

/* Reading a snapshot (pdp_rec.h): the first overrun or bad value sets bad. */
#define PDP_LIM_STR_CAP (UINT16_MAX + 1)
/* Counts above this are malformed: 60 buckets of it cannot overflow. */
#define PDP_LIM_COUNT_MAX (1LL << 53)

static int64_t
pdp_lim_sat_add(int64_t a, int64_t b)
{
    return a > PDP_LIM_COUNT_MAX - b ? PDP_LIM_COUNT_MAX : a + b;
}

typedef struct pdp_lim_scratch {
    char rule[PDP_LIM_STR_CAP];
    char scope[PDP_LIM_STR_CAP];
} pdp_lim_scratch;

/* pdp_lim_restore_win restores one window record (apply false: checks
 * it only). Returns whether a live bucket was restored. */
static bool
pdp_lim_restore_win(pdp_limits *l, pdp_rec_in *in, pdp_lim_scratch *sc,
                    int64_t now_s, bool apply, tg_err *rv)
{
    pdp_lim_shard *s = NULL;
    pdp_lim_win   *w = NULL;
    uint32_t       nb;
    bool           live = false;

    pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
    pdp_rec_get_str(in, sc->scope, sizeof(sc->scope));
    (void)pdp_rec_get_i64(in); /* inflight: rebuilt from the reservations */
    nb = (uint32_t)pdp_rec_get_uint(in, 1);
    if (nb > PDP_LIMITS_WINDOW_S) {
        in->bad = true;
    }
    if (in->bad) {
        return false;
    }
    if (apply) {
        uint64_t h = pdp_lim_key_hash(sc->rule, sc->scope);
        s          = &l->shards[h % PDP_LIM_SHARDS];
        pthread_mutex_lock(&s->mu);
        if ((w = pdp_lim_win_get(s, h, sc->rule, sc->scope)) == NULL) {
            *rv = TG_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < nb; i++) {
        int64_t sec  = pdp_rec_get_i64(in);
        int64_t reqs = pdp_rec_get_i64(in);
        int64_t toks = pdp_rec_get_i64(in);
        if (!in->bad &&
            (sec < 0 || reqs < 0 || toks < 0 || reqs > PDP_LIM_COUNT_MAX ||
             toks > PDP_LIM_COUNT_MAX)) {
            in->bad = true;
        }
        if (w != NULL && !in->bad && sec > now_s - PDP_LIMITS_WINDOW_S &&
            sec <= now_s) {
            pdp_lim_bucket *b = pdp_lim_bucket_at(w, sec);
            b->reqs           = pdp_lim_sat_add(b->reqs, reqs);
            b->toks           = pdp_lim_sat_add(b->toks, toks);
            live              = true;
        }
    }
    if (s != NULL) {
        pthread_mutex_unlock(&s->mu);
    }
    return live;
}

/* pdp_lim_restore_res restores one reservation (apply false: checks it
 * only): count, its request and tokens in its windows (a request the
 * window snapshot does not hold); hold, the reservation itself unless past
 * the TTL. Returns whether it holds one now. */
static bool
pdp_lim_restore_res(pdp_limits *l, pdp_rec_in *in, pdp_lim_scratch *sc,
                    int64_t now_ms, bool count, bool hold, bool apply,
                    tg_err *rv)
{
    pdp_lim_res  tmp;
    pdp_lim_res *r = &tmp;
    uint32_t     n;
    uint32_t     nbud;
    bool         keep;

    memset(&tmp, 0, sizeof(tmp));
    pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
    if (!in->bad &&
        (sc->rule[0] == '\0' || strlen(sc->rule) >= sizeof(r->id))) {
        in->bad = true;
    } else {
        memcpy(tmp.id, sc->rule, strlen(sc->rule) + 1);
    }
    tmp.created_ms = pdp_rec_get_i64(in);
    tmp.sec        = pdp_rec_get_i64(in);
    tmp.tokens     = pdp_rec_get_i64(in);
    n              = (uint32_t)pdp_rec_get_uint(in, 1);
    if (n > PDP_LIMITS_RULES_MAX || tmp.created_ms < 0 || tmp.sec < 0 ||
        tmp.tokens < 0 || tmp.tokens > PDP_LIM_COUNT_MAX) {
        in->bad = true;
    }
    keep  = hold && apply && !in->bad && now_ms - tmp.created_ms < l->ttl_ms;
    count = count && apply && !in->bad;
    if (keep) {
        if ((r = malloc(sizeof(*r))) == NULL) {
            *rv  = TG_ENOMEM;
            keep = false;
            r    = &tmp;
        } else {
            *r = tmp;
        }
    }
    for (uint32_t i = 0; i < n && !in->bad; i++) {
        bool conc;
        pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
        pdp_rec_get_str(in, sc->scope, sizeof(sc->scope));
        conc = pdp_rec_get_uint(in, 1) != 0;
        if ((keep || count) && !in->bad) {
            uint64_t       h = pdp_lim_key_hash(sc->rule, sc->scope);
            pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
            pdp_lim_win   *w;
            pthread_mutex_lock(&s->mu);
            if ((w = pdp_lim_win_get(s, h, sc->rule, sc->scope)) != NULL) {
                if (count && tmp.sec > now_ms / 1000 - PDP_LIMITS_WINDOW_S &&
                    tmp.sec <= now_ms / 1000) {
                    pdp_lim_bucket *b = pdp_lim_bucket_at(w, tmp.sec);
                    b->reqs           = pdp_lim_sat_add(b->reqs, 1);
                    b->toks           = pdp_lim_sat_add(b->toks, tmp.tokens);
                }
                if (keep) {
                    w->inflight += conc;
                    r->w[r->n]    = w;
                    r->conc[r->n] = conc;
                    r->n++;
                }
            } else {
                *rv = TG_ENOMEM;
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
    nbud = (uint32_t)pdp_rec_get_uint(in, 1);
    if (nbud > PDP_LIMITS_BUDGETS_MAX) {
        in->bad = true;
    }
    for (uint32_t i = 0; i < nbud && !in->bad; i++) {
        uint8_t code;
        int64_t start;
        int64_t amt;
        int64_t limit;
        uint8_t kind;
        uint8_t nthr;
        uint8_t thr[PDP_LIMITS_THRESHOLDS_MAX];

        pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
        pdp_rec_get_str(in, sc->scope, sizeof(sc->scope));
        code  = (uint8_t)pdp_rec_get_uint(in, 1);
        start = pdp_rec_get_i64(in);
        amt   = pdp_rec_get_i64(in);
        limit = pdp_rec_get_i64(in);
        kind  = (uint8_t)pdp_rec_get_uint(in, 1);
        nthr  = (uint8_t)pdp_rec_get_uint(in, 1);
        /* One worst case is reserved in every budget of a request. */
        if (nthr > PDP_LIMITS_THRESHOLDS_MAX || amt < 0 || start < 0 ||
            (i > 0 && amt != tmp.bamt)) {
            in->bad = true;
            break;
        }
        for (uint32_t k = 0; k < nthr; k++) {
            thr[k] = (uint8_t)pdp_rec_get_uint(in, 1);
        }
        tmp.bamt = amt;
        if (keep && !in->bad) {
            uint64_t       h = pdp_lim_bud_hash(sc->rule, sc->scope);
            pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
            pdp_lim_bud   *bw;
            pdp_lim_bkt   *b = NULL;
            uint32_t       j = r->nbud;
            pthread_mutex_lock(&s->mu);
            if ((bw = pdp_lim_bud_get(s, h, sc->rule, sc->scope)) != NULL) {
                b = pdp_lim_bkt_get(bw, code, start);
            }
            if (b != NULL) {
                b->reserved  = b->reserved > INT64_MAX - amt ? INT64_MAX
                                                             : b->reserved + amt;
                r->bw[j]     = bw;
                r->bcode[j]  = code;
                r->bstart[j] = start;
                r->blimit[j] = limit;
                r->bkind[j]  = kind;
                r->bnthr[j]  = nthr;
                memcpy(r->bthr[j], thr, nthr);
                r->bamt = amt;
                r->nbud++;
            } else {
                *rv = TG_ENOMEM;
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (!keep) {
        return false;
    }
    /* Only reached in the apply pass, after the check pass accepted the
     * whole snapshot: in->bad cannot be set here. */
    r->hash = tg_fnv1a(TG_FNV_BASIS, r->id, strlen(r->id));
    {
        /* This run's ids must not collide with restored ones (two runs
         * started in the same millisecond, as tests do). */
        unsigned long long boot = 0;
        unsigned long long seq  = 0;
        if (sscanf(r->id, "rl-%llx-%llx", &boot, &seq) == 2 &&
            boot == (unsigned long long)l->boot_ms &&
            seq >= atomic_load(&l->seq)) {
            atomic_store(&l->seq, seq + 1);
        }
    }
    if (!pdp_lim_res_put(l, r)) {
        /* Restored twice: give back what this copy took. */
        atomic_fetch_add(&l->pending, 1);
        pdp_lim_res_end(l, r, -1, now_ms);
        return false;
    }
    return true;
}

/* pdp_lim_restore_pass walks the whole snapshot; apply false only checks
 * it (so a bad one changes nothing). */
static tg_err
pdp_lim_restore_pass(pdp_limits *l, const void *data, size_t len,
                     int64_t now_ms, bool apply, pdp_lim_scratch *sc)
{
    pdp_rec_in in = {data, len, 0, false};
    tg_err     rv = TG_OK;
    uint32_t   nwin;
    uint32_t   nres;

    uint64_t version = pdp_rec_get_uint(&in, 1);
    uint64_t seq     = 0;

    if (version != 1 && version != PDP_LIMITS_SNAPSHOT_VERSION) {
        return TG_EPROTO;
    }
    (void)pdp_rec_get_i64(&in); /* when it was taken */
    if (version >= 2) {
        seq = pdp_rec_get_uint(&in, 8);
    }
    if (apply && seq > atomic_load(&l->admit_seq)) {
        atomic_store(&l->admit_seq, seq);
    }
    nwin = (uint32_t)pdp_rec_get_uint(&in, 4);
    for (uint32_t i = 0; i < nwin && !in.bad; i++) {
        l->restored_win +=
            pdp_lim_restore_win(l, &in, sc, now_ms / 1000, apply, &rv);
    }
    nres = (uint32_t)pdp_rec_get_uint(&in, 4);
    for (uint32_t i = 0; i < nres && !in.bad; i++) {
        l->restored_res +=
            pdp_lim_restore_res(l, &in, sc, now_ms, false, true, apply, &rv);
    }
    if (in.bad || in.off != in.len) {
        return TG_EPROTO;
    }
    return rv;
}

tg_err
pdp_limits_restore(pdp_limits *l, const void *data, size_t len, int64_t now_ms)
{
    pdp_lim_scratch *sc = malloc(sizeof(*sc));
    tg_err           rv;

    l->restored_win = 0;
    l->restored_res = 0;
    if (sc == NULL) {
        return TG_ENOMEM;
    }
    if (data == NULL) {
        len = 0;
    }
    rv = pdp_lim_restore_pass(l, data, len, now_ms, false, sc);
    if (rv == TG_OK) {
        rv = pdp_lim_restore_pass(l, data, len, now_ms, true, sc);
    }
    free(sc);
    return rv;
}

void
pdp_limits_restored(pdp_limits *l, uint32_t *windows, uint32_t *reservations)
{
    *windows      = l->restored_win;
    *reservations = l->restored_res;
}

uint64_t
pdp_limits_changes(pdp_limits *l)
{
    return l != NULL ? atomic_load(&l->changes) : 0;
}

/* ---- one reservation as a record ---------------------------------------- */

/* A record: u8 state (PDP_LIMITS_RES_OPEN or _SETTLED), u64 admission
 * number, then the reservation as the snapshot writes it. */
#define PDP_LIM_REC_HEAD 9

tg_err
pdp_limits_reservation_encode(pdp_limits *l, const char *id, tg_buf *out)
{
    uint64_t        h;
    pdp_lim_rshard *s;
    pdp_lim_wr      o = {out, TG_ENOTFOUND};
    size_t          c;

    if (l == NULL || id == NULL || id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    h = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    s = pdp_lim_rshard_of(l, h);
    c = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    pthread_mutex_lock(&s->mu);
    for (const pdp_lim_res *r = s->chains[c]; r != NULL; r = r->next) {
        if (r->hash == h && !r->tomb && strcmp(r->id, id) == 0) {
            o.rv = TG_OK;
            pdp_lim_wr_uint(&o, PDP_LIMITS_RES_OPEN, 1);
            pdp_lim_wr_uint(&o, r->seq, 8);
            pdp_lim_snap_res(&o, r);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return o.rv;
}

tg_err
pdp_limits_restore_reservation(pdp_limits *l, const void *data, size_t len,
                               int64_t now_ms, uint64_t snap_seq)
{
    pdp_lim_scratch     *sc   = malloc(sizeof(*sc));
    pdp_limits_res_info *info = malloc(sizeof(*info));
    tg_err               rv;
    bool                 open;
    bool                 count;
    bool                 kept;

    if (sc == NULL || info == NULL) {
        free(sc);
        free(info);
        return TG_ENOMEM;
    }
    /* The whole record is checked before anything is counted. */
    if ((rv = pdp_limits_reservation_info(data, len, info)) != TG_OK) {
        goto out;
    }
    if (pdp_lim_res_known(l, info->id)) {
        rv = TG_ENOTFOUND; /* restored already: it must not count twice */
        goto out;
    }
    open  = !info->settled && !info->ended;
    count = info->seq >= snap_seq; /* the snapshot may not hold it */
    {
        pdp_rec_in in = {data, len, PDP_LIM_REC_HEAD, false};
        kept = pdp_lim_restore_res(l, &in, sc, now_ms, count, open, true, &rv);
    }
    if (info->seq >= atomic_load(&l->admit_seq)) {
        atomic_store(&l->admit_seq, info->seq + 1);
    }
    if (rv == TG_OK && !kept) {
        rv = TG_ENOTFOUND;
    }
out:
    free(sc);
    free(info);
    return rv;
}

tg_err
pdp_limits_reservation_info(const void *data, size_t len,
                            pdp_limits_res_info *out)
{
    pdp_rec_in in = {data, data != NULL ? len : 0, 0, false};
    uint64_t   state;
    uint32_t   n;
    uint32_t   nbud;

    memset(out, 0, sizeof(*out));
    state = pdp_rec_get_uint(&in, 1);
    if (state != PDP_LIMITS_RES_OPEN && state != PDP_LIMITS_RES_SETTLED &&
        state != PDP_LIMITS_RES_ENDED) {
        return TG_EPROTO;
    }
    out->settled = state == PDP_LIMITS_RES_SETTLED;
    out->ended   = state == PDP_LIMITS_RES_ENDED;
    out->seq     = pdp_rec_get_uint(&in, 8);
    pdp_rec_get_str(&in, out->id, sizeof(out->id));
    out->created_ms = pdp_rec_get_i64(&in);
    (void)pdp_rec_get_i64(&in); /* second */
    out->tokens = pdp_rec_get_i64(&in);
    n           = (uint32_t)pdp_rec_get_uint(&in, 1);
    if (in.bad || out->id[0] == '\0' || n > PDP_LIMITS_RULES_MAX ||
        out->tokens < 0 || out->tokens > PDP_LIM_COUNT_MAX) {
        return TG_EPROTO;
    }
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        pdp_rec_get_str(&in, out->limits[i].rule_id,
                        sizeof(out->limits[i].rule_id));
        pdp_rec_get_str(&in, out->limits[i].scope,
                        sizeof(out->limits[i].scope));
        out->limits[i].slot = pdp_rec_get_uint(&in, 1) != 0;
    }
    out->n_limits = n;
    nbud          = (uint32_t)pdp_rec_get_uint(&in, 1);
    if (nbud > PDP_LIMITS_BUDGETS_MAX) {
        return TG_EPROTO;
    }
    for (uint32_t i = 0; i < nbud && !in.bad; i++) {
        uint32_t nthr;
        int64_t  amt;
        pdp_rec_get_str(&in, out->budgets[i].rule_id,
                        sizeof(out->budgets[i].rule_id));
        pdp_rec_get_str(&in, out->budgets[i].scope,
                        sizeof(out->budgets[i].scope));
        (void)pdp_rec_get_uint(&in, 1); /* window code */
        (void)pdp_rec_get_i64(&in);     /* bucket start */
        amt = pdp_rec_get_i64(&in);
        (void)pdp_rec_get_i64(&in); /* limit */
        (void)pdp_rec_get_uint(&in, 1);
        nthr = (uint32_t)pdp_rec_get_uint(&in, 1);
        if (amt < 0 || (i > 0 && amt != out->reserved_micro) ||
            nthr > PDP_LIMITS_THRESHOLDS_MAX) {
            return TG_EPROTO;
        }
        out->reserved_micro = amt;
        for (uint32_t k = 0; k < nthr; k++) {
            (void)pdp_rec_get_uint(&in, 1);
        }
    }
    out->n_budgets = nbud;
    return in.bad || in.off != in.len ? TG_EPROTO : TG_OK;
}

tg_err
pdp_limits_record_settle(void *data, size_t len, int64_t actual_tokens)
{
    pdp_limits_res_info *info = malloc(sizeof(*info));
    uint8_t             *p    = data;
    size_t               at;
    tg_err               rv;

    if (info == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_limits_reservation_info(data, len, info);
    /* The tokens: after the head, the id (u16 + bytes), created, second. */
    at = PDP_LIM_REC_HEAD + 2 + strlen(info->id) + 8 + 8;
    if (rv == TG_OK && info->settled) {
        rv = TG_EEXIST; /* settled once */
    }
    free(info);
    if (rv != TG_OK) {
        return rv;
    }
    if (actual_tokens < 0) {
        actual_tokens = 0;
    }
    p[0] = PDP_LIMITS_RES_SETTLED;
    for (size_t i = 0; i < 8; i++) {
        p[at + i] = (uint8_t)((uint64_t)actual_tokens >> (8 * i));
    }
    return TG_OK;
}

bool
pdp_limits_record_prunable(const void *data, size_t len, uint64_t snap_seq,
                           int64_t now_ms)
{
    const uint8_t *p   = data;
    uint64_t       seq = 0;

    if (len < PDP_LIM_REC_HEAD) {
        return false;
    }
    if (p[0] == PDP_LIMITS_RES_ENDED) {
        pdp_limits_res_info info;
        return pdp_limits_reservation_info(data, len, &info) == TG_OK &&
               now_ms - info.created_ms > PDP_LIMITS_RES_ENDED_KEEP_MS;
    }
    if (p[0] != PDP_LIMITS_RES_SETTLED) {
        return false;
    }
    for (size_t i = 0; i < 8; i++) {
        seq |= (uint64_t)p[1 + i] << (8 * i);
    }
    return seq < snap_seq;
}

tg_err
pdp_limits_record_end(void *data, size_t len)
{
    pdp_limits_res_info *info = malloc(sizeof(*info));
    tg_err               rv;

    if (info == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_limits_reservation_info(data, len, info);
    free(info);
    if (rv == TG_OK) {
        ((uint8_t *)data)[0] = PDP_LIMITS_RES_ENDED;
    }
    return rv;
}

uint32_t
pdp_limits_record_budget_keys(const void *data, size_t len,
                              pdp_limits_spend_key *out, uint32_t max)
{
    pdp_rec_in in = {data, len, PDP_LIM_REC_HEAD, false};
    char       buf[TG_REQUEST_ID_MAX + TG_MSG_META_VAL_MAX]; /* >= any field */
    uint32_t   n;
    uint32_t   nbud;
    uint32_t   k = 0;

    if (data == NULL || len < PDP_LIM_REC_HEAD) {
        return 0;
    }
    pdp_rec_get_str(&in, buf, sizeof(buf)); /* id */
    (void)pdp_rec_get_i64(&in);             /* created */
    (void)pdp_rec_get_i64(&in);             /* second */
    (void)pdp_rec_get_i64(&in);             /* tokens */
    n = (uint32_t)pdp_rec_get_uint(&in, 1);
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        pdp_rec_get_str(&in, buf, sizeof(buf));
        pdp_rec_get_str(&in, buf, sizeof(buf));
        (void)pdp_rec_get_uint(&in, 1);
    }
    nbud = (uint32_t)pdp_rec_get_uint(&in, 1);
    for (uint32_t i = 0; i < nbud && !in.bad; i++) {
        pdp_limits_spend_key sk;
        memset(&sk, 0, sizeof(sk));
        pdp_rec_get_str(&in, sk.rule_id, sizeof(sk.rule_id));
        pdp_rec_get_str(&in, sk.scope, sizeof(sk.scope));
        sk.code     = (uint8_t)pdp_rec_get_uint(&in, 1);
        sk.start_ms = pdp_rec_get_i64(&in);
        (void)pdp_rec_get_i64(&in); /* the worst case reserved */
        sk.limit      = pdp_rec_get_i64(&in);
        sk.scope_kind = (uint8_t)pdp_rec_get_uint(&in, 1);
        sk.nthr       = (uint8_t)pdp_rec_get_uint(&in, 1);
        if (sk.nthr > PDP_LIMITS_THRESHOLDS_MAX) {
            return 0;
        }
        for (uint32_t t = 0; t < sk.nthr; t++) {
            sk.thr[t] = (uint8_t)pdp_rec_get_uint(&in, 1);
        }
        if (!in.bad && k < max) {
            out[k++] = sk;
        }
    }
    return in.bad || in.off != in.len ? 0 : k;
}

uint64_t
pdp_limits_snapshot_seq(const void *data, size_t len)
{
    const uint8_t *p   = data;
    uint64_t       seq = 0;

    if (data == NULL || len < 17 || p[0] != PDP_LIMITS_SNAPSHOT_VERSION) {
        return 0; /* version 1 had none: nothing is known to be in it */
    }
    for (size_t i = 0; i < 8; i++) {
        seq |= (uint64_t)p[9 + i] << (8 * i);
    }
    return seq;
}
