/* pdp_limits.c - the rate-limit windows and budget buckets, and the check
 * that decides and counts against them. Windows and budgets live in one
 * sharded table keyed by "rule\0scope", reservations (pdp_limits_res.c) in
 * another keyed by id. A check locks the window shards it needs in
 * ascending order (so two checks never deadlock), decides, counts and
 * unlocks: exact under any number of threads. A reservation is unlinked
 * from its table under the reservation shard's lock and only then are the
 * window shards taken, so no thread ever holds locks of both tables.
 * Windows are never freed before pdp_limits_destroy (reservations point
 * at them); their number is bounded by rules x distinct scope values.
 * A snapshot (pdp_limits_snap.c) follows the same rule: it copies one
 * shard at a time (window shards, then reservation shards), reading the
 * immutable key text of the windows a reservation points at without their
 * shard's lock. */
#include "pdp_limits_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_log.h"
#include "tg_time.h"

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
    pdp_limits__lease_init(l);
    *out = l;
    return TG_OK;
}

void
pdp_limits_destroy(pdp_limits *l)
{
    if (l == NULL) {
        return;
    }
    pdp_limits__lease_fini(l);
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

pdp_lim_win *
pdp_limits__win_get(pdp_lim_shard *s, uint64_t h, const char *rule,
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

void
pdp_limits__win_sums(const pdp_lim_win *w, int64_t now_s, int64_t *reqs,
                     int64_t *toks)
{
    int64_t r = w->held_reqs; /* leases: held whatever the second */
    int64_t t = w->held_toks;

    for (size_t i = 0; i < PDP_LIMITS_WINDOW_S; i++) {
        if (pdp_lim_live(&w->b[i], now_s)) {
            r += w->b[i].reqs;
            t += w->b[i].toks;
        }
    }
    *reqs = r;
    *toks = t;
}

int64_t
pdp_limits__free_at(const pdp_lim_win *w, int64_t now_ms, bool toks,
                    int64_t need)
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

/* ---- budgets ------------------------------------------------------------ */

#define PDP_LIM_HOUR_MS 3600000LL
/* Buckets older than the longest window (rolling:744h, a 31-day month)
 * are dropped once nothing is reserved in them. */
#define PDP_LIM_KEEP_MS (745LL * PDP_LIM_HOUR_MS)

pdp_lim_bud *
pdp_limits__bud_get(pdp_lim_shard *s, uint64_t h, const char *rule,
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

pdp_lim_bkt *
pdp_limits__bkt_get(pdp_lim_bud *w, uint8_t code, int64_t start)
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

void
pdp_limits__bud_sum(const pdp_lim_bud *w, const pdp_limits_budget *q,
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

/* ---- check -------------------------------------------------------------- */

/* One check's working set, stage to stage: its inputs (already capped) and
 * what it found under the window shards' locks. Its address never leaves
 * pdp_lim_check's stages, so the compiler keeps its fields in registers
 * across calls: a hot path. */
typedef struct pdp_lim_ck {
    pdp_limits              *l;
    const pdp_limits_req    *reqs;
    uint32_t                 n;
    const pdp_limits_budget *buds;
    uint32_t                 nb;
    const pdp_limits_cost   *cost;
    int64_t                  tokens; /* lowered when a budget clamps */
    bool                     reserve;
    int64_t                  now_ms;
    int64_t                  now_s;
    /* Rules at [0, n), budgets at PDP_LIMITS_RULES_MAX + [0, nb). */
    uint32_t     shard_of[PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX];
    uint64_t     hash[PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX];
    pdp_lim_win *w[PDP_LIMITS_RULES_MAX];
    pdp_lim_bud *bw[PDP_LIMITS_BUDGETS_MAX];
    int64_t      bset[PDP_LIMITS_BUDGETS_MAX]; /* settled in its window */
    int64_t      bres[PDP_LIMITS_BUDGETS_MAX]; /* reserved in its window */
    int64_t      worst;    /* the cost reserved in every budget */
    bool         need_res; /* something is held until the usage report */
    pdp_lim_res *res;      /* allocated before locking; NULL: out of memory */
} pdp_lim_ck;

static int
pdp_lim_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The window shards one check locks, ascending (apart from pdp_lim_ck:
 * qsort takes its address). */
typedef struct pdp_lim_locks {
    uint32_t order[PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX];
    uint32_t n;
} pdp_lim_locks;

static void
pdp_lim_plan_add(pdp_lim_ck *ck, pdp_lim_locks *lk, uint32_t i, uint64_t h)
{
    bool seen = false;

    ck->hash[i]     = h;
    ck->shard_of[i] = (uint32_t)(h % PDP_LIM_SHARDS);
    for (uint32_t k = 0; k < lk->n && !seen; k++) {
        seen = lk->order[k] == ck->shard_of[i];
    }
    if (!seen) {
        lk->order[lk->n++] = ck->shard_of[i];
    }
}

/* pdp_lim_plan hashes every rule's window and every budget and lists the
 * shards they live in, ascending: the order they are locked in, so two
 * checks never deadlock. */
static void
pdp_lim_plan(pdp_lim_ck *ck, pdp_lim_locks *lk)
{
    lk->n = 0;
    for (uint32_t i = 0; i < ck->n; i++) {
        pdp_lim_plan_add(
            ck, lk, i,
            pdp_lim_key_hash(ck->reqs[i].rule_id, ck->reqs[i].scope));
    }
    for (uint32_t j = 0; j < ck->nb; j++) {
        pdp_lim_plan_add(
            ck, lk, PDP_LIMITS_RULES_MAX + j,
            pdp_lim_bud_hash(ck->buds[j].rule_id, ck->buds[j].scope));
    }
    qsort(lk->order, lk->n, sizeof(lk->order[0]), pdp_lim_cmp_u32);
}

/* pdp_lim_find looks up (or creates) every window and budget, and sums
 * what each budget's window holds. Out of memory fails closed on that
 * rule or budget: false, and out says so. Shards locked. */
static bool
pdp_lim_find(pdp_lim_ck *ck, pdp_limits_result *out)
{
    pdp_limits *l = ck->l;

    for (uint32_t i = 0; i < ck->n; i++) {
        ck->w[i] = pdp_limits__win_get(&l->shards[ck->shard_of[i]], ck->hash[i],
                                       ck->reqs[i].rule_id, ck->reqs[i].scope);
        if (ck->w[i] == NULL) {
            out->denied      = PDP_LIMITS_REQUESTS;
            out->denied_rule = i;
            out->limit       = ck->reqs[i].rpm;
            out->retry_ms    = 1000;
            return false;
        }
    }
    for (uint32_t j = 0; j < ck->nb; j++) {
        const pdp_limits_budget *q = &ck->buds[j];
        uint32_t                 i = PDP_LIMITS_RULES_MAX + j;
        int64_t                  settled;
        int64_t                  reserved;

        ck->bw[j] = pdp_limits__bud_get(&l->shards[ck->shard_of[i]],
                                        ck->hash[i], q->rule_id, q->scope);
        if (ck->bw[j] == NULL ||
            pdp_limits__bkt_get(ck->bw[j], q->code, q->start_ms) == NULL) {
            out->denied        = PDP_LIMITS_BUDGET;
            out->denied_budget = j;
            out->limit         = q->limit;
            return false;
        }
        /* Through locals: ck's address must not escape (pdp_lim_ck). */
        pdp_limits__bud_sum(ck->bw[j], q, &settled, &reserved);
        ck->bset[j] = settled;
        ck->bres[j] = reserved;
    }
    return true;
}

/* pdp_lim_decide_budgets runs before the rules: a clamp lowers the output
 * tokens every other limit then counts. The worst case (the cost at the
 * output tokens left) must fit in every budget. False on a deny, with out
 * saying which budget and what it holds. Shards locked. */
static bool
pdp_lim_decide_budgets(pdp_lim_ck *ck, pdp_limits_result *out)
{
    const pdp_limits_cost *cost = ck->cost;
    int64_t                kout;
    uint32_t               j;

    if (ck->nb == 0) {
        return true;
    }
    kout = cost->max_out;
    for (j = 0; j < ck->nb && out->denied == PDP_LIMITS_OK; j++) {
        int64_t f;
        if (!ck->buds[j].clamp) {
            continue;
        }
        f = pdp_limits_fit(cost, ck->buds[j].limit - ck->bset[j] - ck->bres[j]);
        if (f < 1) {
            out->denied        = PDP_LIMITS_BUDGET;
            out->denied_budget = j;
            out->b_worst       = pdp_limits_worst(cost, 1);
        } else if (f < kout) {
            kout = f;
        }
    }
    ck->worst = pdp_limits_worst(cost, kout);
    for (j = 0; j < ck->nb && out->denied == PDP_LIMITS_OK; j++) {
        if (ck->bset[j] + ck->bres[j] > ck->buds[j].limit - ck->worst) {
            out->denied        = PDP_LIMITS_BUDGET;
            out->denied_budget = j;
            out->b_worst       = ck->worst;
        }
    }
    if (out->denied == PDP_LIMITS_BUDGET) {
        j               = out->denied_budget;
        out->limit      = ck->buds[j].limit;
        out->used       = ck->bset[j] + ck->bres[j];
        out->b_spent    = ck->bset[j];
        out->b_reserved = ck->bres[j];
        return false;
    }
    out->clamp_tokens = kout;
    out->b_worst      = ck->worst; /* what the reservation holds */
    ck->tokens -= cost->max_out - kout;
    if (ck->tokens < 0) {
        ck->tokens = 0;
    }
    ck->need_res = true;
    return true;
}

/* pdp_lim_decide_rules decides over every rule before anything is
 * counted: the first that would be exceeded denies (concurrency, then
 * requests, then tokens per minute), with when to retry. Shards locked. */
static void
pdp_lim_decide_rules(pdp_lim_ck *ck, pdp_limits_result *out)
{
    for (uint32_t i = 0; i < ck->n && out->denied == PDP_LIMITS_OK; i++) {
        const pdp_limits_req *q = &ck->reqs[i];
        const pdp_lim_win    *w = ck->w[i];
        int64_t               ur;
        int64_t               ut;

        pdp_limits__win_sums(w, ck->now_s, &ur, &ut);
        if (q->concurrent > 0 && ck->reserve &&
            w->inflight + 1 > q->concurrent) {
            out->denied   = PDP_LIMITS_CONCURRENT;
            out->limit    = q->concurrent;
            out->used     = w->inflight;
            out->retry_ms = 1000;
        } else if (q->rpm > 0 && ur + 1 > q->rpm) {
            out->denied = PDP_LIMITS_REQUESTS;
            out->limit  = q->rpm;
            out->used   = ur;
            out->retry_ms =
                pdp_limits__free_at(w, ck->now_ms, false, ur + 1 - q->rpm);
        } else if (q->tpm > 0 && ut + ck->tokens > q->tpm) {
            out->denied   = PDP_LIMITS_TOKENS;
            out->limit    = q->tpm;
            out->used     = ut;
            out->retry_ms = ck->tokens > q->tpm
                                ? PDP_LIMITS_WINDOW_S * 1000
                                : pdp_limits__free_at(w, ck->now_ms, true,
                                                      ut + ck->tokens - q->tpm);
        }
        if (out->denied != PDP_LIMITS_OK) {
            out->denied_rule = i;
        }
    }
}

/* pdp_lim_count counts the request and its tokens in every window (and
 * takes its concurrency slots) when it is allowed, or always when nothing
 * is reserved (an audit shadow). Shards locked. */
static void
pdp_lim_count(pdp_lim_ck *ck, const pdp_limits_result *out)
{
    pdp_limits *l = ck->l;

    if (out->denied != PDP_LIMITS_OK && ck->reserve) {
        return;
    }
    atomic_fetch_add(&l->changes, 1);
    if (ck->res != NULL) {
        ck->res->seq = atomic_fetch_add(&l->admit_seq, 1);
    }
    for (uint32_t i = 0; i < ck->n; i++) {
        pdp_lim_bucket *b = pdp_lim_bucket_at(ck->w[i], ck->now_s);
        b->reqs++;
        b->toks += ck->tokens;
        if (ck->reserve && ck->reqs[i].concurrent > 0) {
            ck->w[i]->inflight++;
        }
        /* Every admitted request is held until its usage report, so a
         * restart can count it again and its tokens get corrected. */
        ck->need_res = ck->need_res || ck->reserve;
    }
}

/* pdp_lim_headers fills out->requests and out->tokens with the state each
 * rule is left in (the most constraining), and on a rate deny with the
 * limit that denied: the one the client must wait for. Shards locked. */
static void
pdp_lim_headers(const pdp_lim_ck *ck, pdp_limits_result *out)
{
    for (uint32_t i = 0; i < ck->n; i++) {
        int64_t ur;
        int64_t ut;

        pdp_limits__win_sums(ck->w[i], ck->now_s, &ur, &ut);
        pdp_lim_state(&out->requests, "requests", ck->reqs[i].rpm, ur,
                      pdp_limits__free_at(ck->w[i], ck->now_ms, false, 1));
        pdp_lim_state(&out->tokens, "tokens", ck->reqs[i].tpm, ut,
                      pdp_limits__free_at(ck->w[i], ck->now_ms, true, 1));
    }
    if (out->denied == PDP_LIMITS_TOKENS ||
        out->denied == PDP_LIMITS_REQUESTS) {
        bool            tok = out->denied == PDP_LIMITS_TOKENS;
        tg_limit_state *st  = tok ? &out->tokens : &out->requests;
        int64_t         rem = out->limit - out->used;

        snprintf(st->name, sizeof(st->name), "%s", tok ? "tokens" : "requests");
        st->limit     = out->limit;
        st->remaining = rem > 0 ? rem : 0;
        st->reset_ms  = out->retry_ms;
    }
}

/* pdp_lim_hold fills the reservation with what was taken (the windows,
 * their slots, the worst case reserved in every budget), or, without
 * memory for it, undoes the count and fails closed. Nothing is held on a
 * deny (budgets: nothing was counted yet). Shards locked. */
static void
pdp_lim_hold(pdp_lim_ck *ck, pdp_limits_result *out)
{
    pdp_lim_res *res = ck->res;

    if (out->denied != PDP_LIMITS_OK) {
        ck->need_res = false;
    }
    if (!ck->need_res) {
        return;
    }
    if (res == NULL) {
        for (uint32_t i = 0; i < ck->n; i++) {
            pdp_lim_bucket *b = pdp_lim_bucket_at(ck->w[i], ck->now_s);
            b->reqs--;
            b->toks -= ck->tokens;
            if (ck->reqs[i].concurrent > 0) {
                ck->w[i]->inflight--;
            }
        }
        out->denied   = PDP_LIMITS_REQUESTS;
        out->limit    = ck->n > 0 ? ck->reqs[0].rpm : 0;
        out->retry_ms = 1000;
        ck->need_res  = false;
        return;
    }
    for (uint32_t j = 0; j < ck->nb; j++) {
        const pdp_limits_budget *q = &ck->buds[j];
        pdp_lim_bkt *b = pdp_limits__bkt_get(ck->bw[j], q->code, q->start_ms);

        b->reserved += ck->worst; /* found above: no allocation here */
        res->bw[j]     = ck->bw[j];
        res->bcode[j]  = q->code;
        res->bstart[j] = q->start_ms;
        res->blimit[j] = q->limit;
        res->bkind[j]  = q->scope_kind;
        res->bnthr[j]  = q->nthr <= PDP_LIMITS_THRESHOLDS_MAX
                             ? q->nthr
                             : PDP_LIMITS_THRESHOLDS_MAX;
        memcpy(res->bthr[j], q->thr, res->bnthr[j]);
    }
    res->nbud = ck->nb;
    res->bamt = ck->worst;
    for (uint32_t i = 0; i < ck->n; i++) {
        res->w[i]    = ck->w[i];
        res->conc[i] = ck->reqs[i].concurrent > 0;
    }
    res->n = ck->n;
}

/* pdp_lim_link names the reservation (id, or one of this run's own) and
 * links it, or frees it when nothing is held. An id abandoned before it
 * got here (or a repeated one) is undone: out becomes
 * PDP_LIMITS_ABANDONED. No shard locked. */
static void
pdp_lim_link(pdp_lim_ck *ck, const char *id, pdp_limits_result *out)
{
    pdp_limits  *l   = ck->l;
    pdp_lim_res *res = ck->res;

    if (!ck->need_res) {
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
    res->created_ms = ck->now_ms;
    res->sec        = ck->now_s;
    res->tokens     = ck->tokens;
    if (!pdp_limits__res_put(l, res)) {
        atomic_fetch_add(&l->pending,
                         1); /* pdp_limits__res_end takes it back */
        pdp_limits__res_end(l, res, 0, ck->now_ms);
        memset(out, 0, sizeof(*out));
        out->denied   = PDP_LIMITS_ABANDONED;
        out->retry_ms = 1000;
        return;
    }
    memcpy(out->reservation_id, res->id, sizeof(out->reservation_id));
}

/* pdp_lim_check: plan, lock, find, decide (budgets, then rules), count,
 * report, hold, unlock, link. Budgets apply only when reserving with a
 * cost. */
static void
pdp_lim_check(pdp_limits *l, const char *id, const pdp_limits_req *reqs,
              uint32_t n, const pdp_limits_budget *buds, uint32_t nb,
              const pdp_limits_cost *cost, int64_t tokens, bool reserve,
              int64_t now_ms, pdp_limits_result *out)
{
    pdp_lim_ck    ck;
    pdp_lim_locks lk;

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
    if (n == 0 && nb == 0) {
        return;
    }
    pdp_limits__maybe_sweep(l, now_ms);
    ck.l        = l;
    ck.reqs     = reqs;
    ck.n        = n;
    ck.buds     = buds;
    ck.nb       = nb;
    ck.cost     = cost;
    ck.tokens   = tokens < 0 ? 0 : tokens;
    ck.reserve  = reserve;
    ck.now_ms   = now_ms;
    ck.now_s    = now_ms / 1000;
    ck.worst    = 0;
    ck.need_res = false;
    ck.res      = reserve ? calloc(1, sizeof(*ck.res)) : NULL;
    pdp_lim_plan(&ck, &lk);
    for (uint32_t k = 0; k < lk.n; k++) {
        pthread_mutex_lock(&l->shards[lk.order[k]].mu);
    }
    if (pdp_lim_find(&ck, out) && pdp_lim_decide_budgets(&ck, out)) {
        pdp_lim_decide_rules(&ck, out);
        pdp_lim_count(&ck, out);
        pdp_lim_headers(&ck, out);
        pdp_lim_hold(&ck, out);
    }
    for (uint32_t k = lk.n; k-- > 0;) {
        pthread_mutex_unlock(&l->shards[lk.order[k]].mu);
    }
    pdp_lim_link(&ck, id, out);
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

/* ---- spend and the budgets' state -------------------------------------- */

static void
pdp_lim_bud_add(pdp_limits *l, const char *rule, const char *scope,
                uint8_t code, int64_t start_ms, int64_t amount)
{
    uint64_t       h = pdp_lim_bud_hash(rule, scope);
    pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
    pdp_lim_bud   *w;
    pdp_lim_bkt   *b = NULL;

    pthread_mutex_lock(&s->mu);
    if ((w = pdp_limits__bud_get(s, h, rule, scope)) != NULL) {
        b = pdp_limits__bkt_get(w, code, start_ms);
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
    if ((w = pdp_limits__bud_get(s, h, q->rule_id, q->scope)) != NULL) {
        pdp_limits__bud_sum(w, q, spent, reserved);
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

uint64_t
pdp_limits_changes(pdp_limits *l)
{
    return l != NULL ? atomic_load(&l->changes) : 0;
}
