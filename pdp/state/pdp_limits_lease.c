/* pdp_limits_lease.c - leases: slices of a rate-limit window or of a
 * budget bucket that sidecar PDPs admit against, held here until they are
 * closed or expire (pdp_limits.h, "leases"), and one lease as a record.
 * A grant checks and holds under its window's or bucket's shard lock,
 * exactly as a decision does, so no decision or other grant slips in
 * between. The lease table's locks are never held with a window shard's:
 * a lease is looked up, linked or ended under its lease shard's lock, and
 * what it holds is taken or given back under the window's, apart. Between
 * the two a lease may count twice for a moment (a grant that lost a race
 * for its id, a charge), never not at all. Thread-safe. */
#include "pdp_limits_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_rec.h"
#include "tg_log.h"

/* Amounts above this are refused (asks) or malformed (records): sums of
 * many of them cannot overflow. */
#define PDP_LIM_LEASE_MAX (1LL << 53)
/* The longest record: the fixed fields, the three strings at their caps
 * and the budget fields with every threshold. */
#define PDP_LIM_LEASE_REC_MAX                                                  \
    (2 + 16 + 3 * 2 + TG_REQUEST_ID_MAX + TG_ID_MAX + TG_MSG_META_VAL_MAX + 56)
/* Leases a sweep ends per lease shard lock. */
#define PDP_LIM_LEASE_BATCH 16

/* What a lease holds, copied out of the table to be given back without
 * the lease shard's lock (windows and budgets are never freed before
 * pdp_limits_destroy). */
typedef struct pdp_lim_held {
    pdp_lease_kind kind;
    pdp_lim_win   *w;
    pdp_lim_bud   *bw;
    uint8_t        code;
    int64_t        start;
    int64_t        reqs, toks, slots, micro;
    char           id[TG_REQUEST_ID_MAX];
} pdp_lim_held;

static int64_t
pdp_lim_lease_sub(int64_t a, int64_t b)
{
    return a > b ? a - b : 0;
}

static int64_t
pdp_lim_lease_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t
pdp_lim_lease_amount(int64_t v)
{
    return v < 0 ? 0 : v > PDP_LIM_LEASE_MAX ? PDP_LIM_LEASE_MAX : v;
}

/* ---- the table ---------------------------------------------------------- */

void
pdp_limits__lease_init(pdp_limits *l)
{
    atomic_init(&l->leases_open, 0);
    atomic_init(&l->leases_expired, 0);
    atomic_init(&l->lease_tombs, 0);
    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        pthread_mutex_init(&l->lshards[i].mu, NULL);
    }
}

void
pdp_limits__lease_fini(pdp_limits *l)
{
    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        for (size_t c = 0; c < PDP_LIM_LEASE_CHAINS; c++) {
            pdp_lim_lease *x = l->lshards[i].chains[c];
            while (x != NULL) {
                pdp_lim_lease *nx = x->next;
                free(x);
                x = nx;
            }
        }
        pthread_mutex_destroy(&l->lshards[i].mu);
    }
}

static pdp_lim_lshard *
pdp_lim_lease_shard(pdp_limits *l, const char *id, uint64_t *h)
{
    *h = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    return &l->lshards[*h % PDP_LIM_SHARDS];
}

/* pdp_lim_lease_find is the link that points at lease id (open or ended)
 * in s, or the NULL link at the end of its chain. s locked. */
static pdp_lim_lease **
pdp_lim_lease_find(pdp_lim_lshard *s, uint64_t h, const char *id)
{
    pdp_lim_lease **pp = &s->chains[(h >> 8) & (PDP_LIM_LEASE_CHAINS - 1)];

    while (*pp != NULL &&
           ((*pp)->hash != h || strcmp((*pp)->info.id, id) != 0)) {
        pp = &(*pp)->next;
    }
    return pp;
}

static pdp_lim_held
pdp_lim_lease_held(const pdp_lim_lease *x)
{
    pdp_lim_held h;

    memset(&h, 0, sizeof(h));
    h.kind  = x->info.kind;
    h.w     = x->w;
    h.bw    = x->bw;
    h.code  = x->info.code;
    h.start = x->info.start_ms;
    h.reqs  = x->info.reqs;
    h.toks  = x->info.toks;
    h.slots = x->info.slots;
    h.micro = x->info.micro;
    memcpy(h.id, x->info.id, sizeof(h.id));
    return h;
}

/* pdp_lim_lease_tomb ends open lease x in place: it holds nothing and is
 * remembered until the reservation TTL after it ended or would have
 * expired. x's shard locked. */
static void
pdp_lim_lease_tomb(pdp_limits *l, pdp_lim_lease *x, int64_t now_ms)
{
    int64_t end = x->info.expires_ms > now_ms ? x->info.expires_ms : now_ms;

    x->tomb       = true;
    x->gone_ms    = pdp_lim_lease_add(end, l->ttl_ms);
    x->info.reqs  = 0;
    x->info.toks  = 0;
    x->info.slots = 0;
    x->info.micro = 0;
    atomic_fetch_sub(&l->leases_open, 1);
    atomic_fetch_add(&l->lease_tombs, 1);
}

/* pdp_lim_lease_answer answers an ask for id x from x. */
static void
pdp_lim_lease_answer(const pdp_lim_lease *x, pdp_lease_grant *out)
{
    memset(out, 0, sizeof(*out));
    if (x->tomb) {
        out->denied = PDP_LIMITS_ABANDONED;
        return;
    }
    out->ok         = true;
    out->reqs       = x->info.reqs;
    out->toks       = x->info.toks;
    out->slots      = x->info.slots;
    out->micro      = x->info.micro;
    out->expires_ms = x->info.expires_ms;
}

/* pdp_lim_lease_peek answers an ask whose id is known (open or ended);
 * false when it is not. */
static bool
pdp_lim_lease_peek(pdp_limits *l, const char *id, pdp_lease_grant *out)
{
    uint64_t        h;
    pdp_lim_lshard *s = pdp_lim_lease_shard(l, id, &h);
    pdp_lim_lease  *x;

    pthread_mutex_lock(&s->mu);
    if ((x = *pdp_lim_lease_find(s, h, id)) != NULL) {
        pdp_lim_lease_answer(x, out);
    }
    pthread_mutex_unlock(&s->mu);
    return x != NULL;
}

/* pdp_lim_lease_link links x, which holds its amounts already, unless its
 * id is known by now (a concurrent ask or restore got there first): false
 * then, out answered from the one that is, and x not linked. */
static bool
pdp_lim_lease_link(pdp_limits *l, pdp_lim_lease *x, pdp_lease_grant *out)
{
    pdp_lim_lshard *s = pdp_lim_lease_shard(l, x->info.id, &x->hash);
    pdp_lim_lease **pp;
    bool            linked = false;

    pthread_mutex_lock(&s->mu);
    pp = pdp_lim_lease_find(s, x->hash, x->info.id);
    if (*pp != NULL) {
        pdp_lim_lease_answer(*pp, out);
    } else {
        x->next = NULL;
        *pp     = x;
        linked  = true;
        atomic_fetch_add(&l->leases_open, 1);
    }
    pthread_mutex_unlock(&s->mu);
    return linked;
}

/* pdp_lim_lease_end ends open lease id: *h gets what it held. False when
 * it is not open. */
static bool
pdp_lim_lease_end(pdp_limits *l, const char *id, int64_t now_ms,
                  pdp_lim_held *h)
{
    uint64_t        hash;
    pdp_lim_lshard *s;
    pdp_lim_lease  *x;
    bool            open;

    if (l == NULL || id == NULL || id[0] == '\0') {
        return false;
    }
    s = pdp_lim_lease_shard(l, id, &hash);
    pthread_mutex_lock(&s->mu);
    x    = *pdp_lim_lease_find(s, hash, id);
    open = x != NULL && !x->tomb;
    if (open) {
        *h = pdp_lim_lease_held(x);
        pdp_lim_lease_tomb(l, x, now_ms);
    }
    pthread_mutex_unlock(&s->mu);
    return open;
}

/* ---- what a lease holds in the windows and budgets ---------------------- */

/* pdp_lim_lease_give_back frees what h holds and counts used_reqs and
 * used_toks (a rate lease's, >= 0) in its window at now_ms's second. No
 * lease shard locked. */
static void
pdp_lim_lease_give_back(pdp_limits *l, const pdp_lim_held *h, int64_t used_reqs,
                        int64_t used_toks, int64_t now_ms)
{
    if (h->kind == PDP_LEASE_RATE) {
        pdp_lim_win   *w = h->w;
        pdp_lim_shard *s = &l->shards[w->hash % PDP_LIM_SHARDS];

        pthread_mutex_lock(&s->mu);
        w->held_reqs = pdp_lim_lease_sub(w->held_reqs, h->reqs);
        w->held_toks = pdp_lim_lease_sub(w->held_toks, h->toks);
        w->inflight  = pdp_lim_lease_sub(w->inflight, h->slots);
        if (used_reqs > 0 || used_toks > 0) {
            pdp_lim_bucket *b = pdp_lim_bucket_at(w, now_ms / 1000);
            b->reqs           = pdp_lim_lease_add(b->reqs, used_reqs);
            b->toks           = pdp_lim_lease_add(b->toks, used_toks);
        }
        pthread_mutex_unlock(&s->mu);
    } else if (h->micro > 0) {
        pdp_lim_shard *s = &l->shards[h->bw->hash % PDP_LIM_SHARDS];
        pdp_lim_bkt   *b;

        pthread_mutex_lock(&s->mu);
        if ((b = pdp_limits__bkt_get(h->bw, h->code, h->start)) != NULL) {
            b->reserved = pdp_lim_lease_sub(b->reserved, h->micro);
        }
        pthread_mutex_unlock(&s->mu);
    }
    atomic_fetch_add(&l->changes, 1);
}

/* pdp_lim_lease_hold holds what x's info says in its window or bucket,
 * unchecked (a restored lease was granted); x->w or x->bw point at it. */
static tg_err
pdp_lim_lease_hold(pdp_limits *l, pdp_lim_lease *x)
{
    const pdp_lease_info *i = &x->info;
    pdp_lim_shard        *s;
    uint64_t              h;
    bool                  ok = false;

    if (i->kind == PDP_LEASE_RATE) {
        h = pdp_lim_key_hash(i->rule_id, i->scope);
        s = &l->shards[h % PDP_LIM_SHARDS];
        pthread_mutex_lock(&s->mu);
        if ((x->w = pdp_limits__win_get(s, h, i->rule_id, i->scope)) != NULL) {
            x->w->held_reqs = pdp_lim_lease_add(x->w->held_reqs, i->reqs);
            x->w->held_toks = pdp_lim_lease_add(x->w->held_toks, i->toks);
            x->w->inflight  = pdp_lim_lease_add(x->w->inflight, i->slots);
            ok              = true;
        }
    } else {
        pdp_lim_bkt *b = NULL;
        h              = pdp_lim_bud_hash(i->rule_id, i->scope);
        s              = &l->shards[h % PDP_LIM_SHARDS];
        pthread_mutex_lock(&s->mu);
        if ((x->bw = pdp_limits__bud_get(s, h, i->rule_id, i->scope)) != NULL) {
            b = pdp_limits__bkt_get(x->bw, i->code, i->start_ms);
        }
        if (b != NULL) {
            b->reserved = pdp_lim_lease_add(b->reserved, i->micro);
            ok          = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&l->changes, 1);
    return ok ? TG_OK : TG_ENOMEM;
}

/* ---- grant -------------------------------------------------------------- */

static bool
pdp_lim_lease_wants(int64_t want, int64_t min)
{
    return min >= 0 && want >= min && want <= PDP_LIM_LEASE_MAX;
}

static bool
pdp_lim_lease_ask_ok(const pdp_lease_ask *a)
{
    const char *rule;
    const char *scope;
    bool        ok;

    if (a->id == NULL || a->id[0] == '\0' ||
        strlen(a->id) >= TG_REQUEST_ID_MAX || a->ttl_ms <= 0 ||
        a->ttl_ms > PDP_LIM_LEASE_MAX) {
        return false;
    }
    if (a->kind == PDP_LEASE_RATE) {
        rule  = a->rate.rule_id;
        scope = a->rate.scope;
        ok    = pdp_lim_lease_wants(a->want_reqs, a->min_reqs) &&
             pdp_lim_lease_wants(a->want_toks, a->min_toks) &&
             pdp_lim_lease_wants(a->want_slots, a->min_slots) &&
             a->want_reqs + a->want_toks + a->want_slots > 0;
    } else if (a->kind == PDP_LEASE_BUDGET) {
        rule  = a->budget.rule_id;
        scope = a->budget.scope;
        ok    = pdp_lim_lease_wants(a->want_micro, a->min_micro) &&
             a->want_micro > 0 && a->budget.start_ms >= 0 &&
             a->budget.span_h >= 0;
    } else {
        return false;
    }
    return ok && rule != NULL && scope != NULL && strlen(rule) < TG_ID_MAX &&
           strlen(scope) < TG_MSG_META_VAL_MAX;
}

/* pdp_lim_lease_fill writes what the ask names into i (nothing held). */
static void
pdp_lim_lease_fill(pdp_lease_info *i, const pdp_lease_ask *a, int64_t now_ms)
{
    const pdp_limits_budget *b = &a->budget;

    snprintf(i->id, sizeof(i->id), "%s", a->id);
    i->kind       = a->kind;
    i->granted_ms = now_ms;
    i->expires_ms = now_ms + a->ttl_ms;
    if (a->kind == PDP_LEASE_RATE) {
        snprintf(i->rule_id, sizeof(i->rule_id), "%s", a->rate.rule_id);
        snprintf(i->scope, sizeof(i->scope), "%s", a->rate.scope);
        i->rpm        = pdp_lim_lease_amount(a->rate.rpm);
        i->tpm        = pdp_lim_lease_amount(a->rate.tpm);
        i->concurrent = pdp_lim_lease_amount(a->rate.concurrent);
        return;
    }
    snprintf(i->rule_id, sizeof(i->rule_id), "%s", b->rule_id);
    snprintf(i->scope, sizeof(i->scope), "%s", b->scope);
    i->code       = b->code;
    i->start_ms   = b->start_ms;
    i->span_h     = b->span_h;
    i->limit      = pdp_lim_lease_amount(b->limit);
    i->clamp      = b->clamp;
    i->scope_kind = b->scope_kind;
    i->nthr       = b->nthr;
    if (i->nthr > PDP_LIMITS_THRESHOLDS_MAX) {
        i->nthr = PDP_LIMITS_THRESHOLDS_MAX;
    }
    memcpy(i->thr, b->thr, i->nthr);
}

/* pdp_lim_lease_room is how much of want fits under limit (0: not
 * limited) with used taken. */
static int64_t
pdp_lim_lease_room(int64_t limit, int64_t used, int64_t want)
{
    if (limit <= 0) {
        return want;
    }
    if (used >= limit) {
        return 0;
    }
    return limit - used < want ? limit - used : want;
}

static void
pdp_lim_lease_refuse(pdp_lease_grant *out, pdp_limits_what what, int64_t limit,
                     int64_t used, int64_t retry_ms)
{
    out->denied   = what;
    out->limit    = limit;
    out->used     = used;
    out->retry_ms = retry_ms > 0 ? retry_ms : 1;
}

static int64_t
pdp_lim_lease_at_least_1(int64_t min)
{
    return min > 1 ? min : 1;
}

/* pdp_lim_lease_take_rate grants what fits of a rate ask in its window and
 * holds it, in one step under the window's lock: each amount is as much
 * of its want as fits, at least its min and not all 0; else out says
 * which limit refused (concurrency, requests, tokens: the order a
 * decision checks in). */
static tg_err
pdp_lim_lease_take_rate(pdp_limits *l, pdp_lim_lease *x, const pdp_lease_ask *a,
                        int64_t now_ms, pdp_lease_grant *out)
{
    pdp_lease_info *i = &x->info;
    uint64_t        h = pdp_lim_key_hash(i->rule_id, i->scope);
    pdp_lim_shard  *s = &l->shards[h % PDP_LIM_SHARDS];
    pdp_lim_win    *w;
    int64_t         ur, ut, gr, gt, gs;
    bool            none;

    pthread_mutex_lock(&s->mu);
    if ((w = pdp_limits__win_get(s, h, i->rule_id, i->scope)) == NULL) {
        pthread_mutex_unlock(&s->mu);
        return TG_ENOMEM;
    }
    pdp_limits__win_sums(w, now_ms / 1000, &ur, &ut);
    gs   = pdp_lim_lease_room(i->concurrent, w->inflight, a->want_slots);
    gr   = pdp_lim_lease_room(i->rpm, ur, a->want_reqs);
    gt   = pdp_lim_lease_room(i->tpm, ut, a->want_toks);
    none = gs + gr + gt == 0;
    if (gs < a->min_slots || (none && a->want_slots > 0)) {
        pdp_lim_lease_refuse(out, PDP_LIMITS_CONCURRENT, i->concurrent,
                             w->inflight, 1000);
    } else if (gr < a->min_reqs || (none && a->want_reqs > 0)) {
        int64_t need = ur + pdp_lim_lease_at_least_1(a->min_reqs) - i->rpm;
        pdp_lim_lease_refuse(out, PDP_LIMITS_REQUESTS, i->rpm, ur,
                             pdp_limits__free_at(w, now_ms, false, need));
    } else if (gt < a->min_toks || none) {
        int64_t m = pdp_lim_lease_at_least_1(a->min_toks);
        pdp_lim_lease_refuse(
            out, PDP_LIMITS_TOKENS, i->tpm, ut,
            m > i->tpm ? PDP_LIMITS_WINDOW_S * 1000
                       : pdp_limits__free_at(w, now_ms, true, ut + m - i->tpm));
    } else {
        w->held_reqs += gr;
        w->held_toks += gt;
        w->inflight += gs;
    }
    pthread_mutex_unlock(&s->mu);
    if (out->denied == PDP_LIMITS_OK) {
        x->w       = w;
        i->reqs    = gr;
        i->toks    = gt;
        i->slots   = gs;
        out->ok    = true;
        out->reqs  = gr;
        out->toks  = gt;
        out->slots = gs;
        atomic_fetch_add(&l->changes, 1);
    }
    return TG_OK;
}

/* pdp_lim_lease_take_budget grants min(want, limit - settled - reserved)
 * of a budget ask when that is at least its min (and 1) and reserves it
 * in the bucket, in one step under the budget's lock. */
static tg_err
pdp_lim_lease_take_budget(pdp_limits *l, pdp_lim_lease *x,
                          const pdp_lease_ask *a, pdp_lease_grant *out)
{
    const pdp_limits_budget *q = &a->budget;
    uint64_t                 h = pdp_lim_bud_hash(q->rule_id, q->scope);
    pdp_lim_shard           *s = &l->shards[h % PDP_LIM_SHARDS];
    pdp_lim_bud             *bw;
    pdp_lim_bkt             *b = NULL;
    int64_t                  settled;
    int64_t                  reserved;
    int64_t                  g;

    pthread_mutex_lock(&s->mu);
    if ((bw = pdp_limits__bud_get(s, h, q->rule_id, q->scope)) != NULL) {
        b = pdp_limits__bkt_get(bw, q->code, q->start_ms);
    }
    if (b == NULL) {
        pthread_mutex_unlock(&s->mu);
        return TG_ENOMEM;
    }
    pdp_limits__bud_sum(bw, q, &settled, &reserved);
    g = q->limit - settled - reserved;
    g = g < a->want_micro ? g : a->want_micro;
    if (g < pdp_lim_lease_at_least_1(a->min_micro)) {
        pdp_lim_lease_refuse(out, PDP_LIMITS_BUDGET, q->limit,
                             settled + reserved, 1000);
    } else {
        b->reserved += g;
    }
    pthread_mutex_unlock(&s->mu);
    if (out->denied == PDP_LIMITS_OK) {
        x->bw         = bw;
        x->info.micro = g;
        out->ok       = true;
        out->micro    = g;
        atomic_fetch_add(&l->changes, 1);
    }
    return TG_OK;
}

tg_err
pdp_limits_lease_grant(pdp_limits *l, const pdp_lease_ask *a, int64_t now_ms,
                       pdp_lease_grant *out)
{
    pdp_lim_lease *x;
    tg_err         rv;

    memset(out, 0, sizeof(*out));
    if (l == NULL || a == NULL || !pdp_lim_lease_ask_ok(a)) {
        return TG_EINVAL;
    }
    pdp_limits__maybe_sweep(l, now_ms);
    if (pdp_lim_lease_peek(l, a->id, out)) {
        return TG_OK; /* asked again: answered again, nothing more held */
    }
    if ((x = calloc(1, sizeof(*x))) == NULL) {
        return TG_ENOMEM;
    }
    pdp_lim_lease_fill(&x->info, a, now_ms);
    rv = a->kind == PDP_LEASE_RATE
             ? pdp_lim_lease_take_rate(l, x, a, now_ms, out)
             : pdp_lim_lease_take_budget(l, x, a, out);
    if (rv != TG_OK || !out->ok) {
        free(x);
        return rv;
    }
    out->expires_ms = x->info.expires_ms;
    if (!pdp_lim_lease_link(l, x, out)) {
        /* The same id was granted meanwhile: out is its answer, and what
         * this copy took goes back. */
        pdp_lim_held h = pdp_lim_lease_held(x);
        pdp_lim_lease_give_back(l, &h, 0, 0, now_ms);
        free(x);
    }
    return TG_OK;
}

/* ---- charge, close, expiry ---------------------------------------------- */

bool
pdp_limits_lease_charge(pdp_limits *l, const char *id, int64_t cost_micro,
                        const pdp_limits_spend_key *keys, uint32_t n,
                        int64_t now_ms)
{
    int64_t         cost = pdp_lim_lease_amount(cost_micro);
    pdp_lim_held    h;
    pdp_lim_lshard *s;
    pdp_lim_lease  *x;
    uint64_t        hash;
    bool            open;

    memset(&h, 0, sizeof(h));
    if (l == NULL) {
        return false;
    }
    /* Settled first: until the lease's share is released below, the cost
     * counts twice (over, never under). */
    for (uint32_t i = 0; i < n && cost > 0; i++) {
        pdp_limits_budget_load(l, keys[i].rule_id, keys[i].scope, keys[i].code,
                               keys[i].start_ms, cost);
    }
    if (id == NULL || id[0] == '\0') {
        return false;
    }
    s = pdp_lim_lease_shard(l, id, &hash);
    pthread_mutex_lock(&s->mu);
    x    = *pdp_lim_lease_find(s, hash, id);
    open = x != NULL && !x->tomb && x->info.kind == PDP_LEASE_BUDGET;
    if (open) {
        h       = pdp_lim_lease_held(x);
        h.micro = cost < x->info.micro ? cost : x->info.micro;
        x->info.micro -= h.micro;
        x->info.charged = pdp_lim_lease_add(x->info.charged, cost);
    }
    pthread_mutex_unlock(&s->mu);
    if (open && h.micro > 0) {
        pdp_lim_lease_give_back(l, &h, 0, 0, now_ms);
    }
    return open;
}

bool
pdp_limits_lease_close(pdp_limits *l, const char *id, int64_t used_reqs,
                       int64_t used_toks, int64_t now_ms)
{
    pdp_lim_held h;

    if (!pdp_lim_lease_end(l, id, now_ms, &h)) {
        return false;
    }
    if (h.kind != PDP_LEASE_RATE) {
        used_reqs = 0;
        used_toks = 0;
    }
    pdp_lim_lease_give_back(l, &h, pdp_lim_lease_amount(used_reqs),
                            pdp_lim_lease_amount(used_toks), now_ms);
    return true;
}

/* pdp_lim_lease_sweep_shard ends up to PDP_LIM_LEASE_BATCH leases of s
 * past their expires_ms (copied to dead, tombstones now) and frees the
 * tombstones past gone_ms; returns how many it ended. */
static uint32_t
pdp_lim_lease_sweep_shard(pdp_limits *l, pdp_lim_lshard *s, int64_t now_ms,
                          pdp_lim_held *dead)
{
    pdp_lim_lease *gone = NULL;
    uint32_t       n    = 0;

    pthread_mutex_lock(&s->mu);
    for (size_t c = 0; c < PDP_LIM_LEASE_CHAINS; c++) {
        pdp_lim_lease **pp = &s->chains[c];
        while (*pp != NULL) {
            pdp_lim_lease *x = *pp;
            if (x->tomb && x->gone_ms <= now_ms) {
                *pp     = x->next;
                x->next = gone;
                gone    = x;
                continue;
            }
            if (!x->tomb && x->info.expires_ms <= now_ms &&
                n < PDP_LIM_LEASE_BATCH) {
                dead[n++] = pdp_lim_lease_held(x);
                pdp_lim_lease_tomb(l, x, now_ms);
            }
            pp = &x->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (gone != NULL) {
        pdp_lim_lease *nx = gone->next;
        free(gone);
        atomic_fetch_sub(&l->lease_tombs, 1);
        gone = nx;
    }
    return n;
}

uint32_t
pdp_limits__lease_expire(pdp_limits *l, int64_t now_ms)
{
    pdp_lim_held dead[PDP_LIM_LEASE_BATCH];
    uint32_t     total = 0;

    if (atomic_load(&l->leases_open) + atomic_load(&l->lease_tombs) == 0) {
        return 0;
    }
    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        uint32_t n;
        do {
            n = pdp_lim_lease_sweep_shard(l, &l->lshards[i], now_ms, dead);
            for (uint32_t k = 0; k < n; k++) {
                const pdp_lim_held *h = &dead[k];
                tg_warn("limits: lease %s expired: its sidecar did not "
                        "return it; %s",
                        h->id,
                        h->kind == PDP_LEASE_RATE
                            ? "the requests and tokens it held count as "
                              "used now"
                            : "the budget it still held is released");
                /* A rate lease's sidecar may have used all of it. */
                pdp_lim_lease_give_back(l, h, h->reqs, h->toks, now_ms);
                if (l->on_lease_expire != NULL) {
                    l->on_lease_expire(l->on_lease_expire_arg, h->id);
                }
            }
            atomic_fetch_add(&l->leases_expired, n);
            total += n;
        } while (n == PDP_LIM_LEASE_BATCH);
    }
    return total;
}

void
pdp_limits_on_lease_expire(pdp_limits *l, pdp_limits_expired_fn fn, void *arg)
{
    l->on_lease_expire     = fn;
    l->on_lease_expire_arg = arg;
}

uint64_t
pdp_limits_leases_open(pdp_limits *l)
{
    return l != NULL ? atomic_load(&l->leases_open) : 0;
}

uint64_t
pdp_limits_leases_expired(pdp_limits *l)
{
    return l != NULL ? atomic_load(&l->leases_expired) : 0;
}

/* ---- listing and budget keys -------------------------------------------- */

uint32_t
pdp_limits_lease_list(pdp_limits *l, pdp_lease_info *out, uint32_t max)
{
    uint32_t n = 0;

    for (size_t i = 0; l != NULL && i < PDP_LIM_SHARDS && n < max; i++) {
        pdp_lim_lshard *s = &l->lshards[i];

        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_LEASE_CHAINS; c++) {
            for (const pdp_lim_lease *x = s->chains[c]; x != NULL && n < max;
                 x                      = x->next) {
                if (!x->tomb) {
                    out[n++] = x->info;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

static void
pdp_lim_lease_key(const pdp_lease_info *i, pdp_limits_spend_key *k)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->rule_id, i->rule_id, sizeof(k->rule_id));
    memcpy(k->scope, i->scope, sizeof(k->scope));
    k->code       = i->code;
    k->start_ms   = i->start_ms;
    k->limit      = i->limit;
    k->scope_kind = i->scope_kind;
    k->nthr       = i->nthr;
    memcpy(k->thr, i->thr, sizeof(k->thr));
}

uint32_t
pdp_limits__lease_keys(pdp_limits *l, const char *id, pdp_limits_spend_key *out,
                       uint32_t max)
{
    uint64_t        h;
    pdp_lim_lshard *s = pdp_lim_lease_shard(l, id, &h);
    pdp_lim_lease  *x;
    uint32_t        n = 0;

    pthread_mutex_lock(&s->mu);
    x = *pdp_lim_lease_find(s, h, id);
    if (x != NULL && x->info.kind == PDP_LEASE_BUDGET && max > 0) {
        pdp_lim_lease_key(&x->info, out);
        n = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- one lease as a record ---------------------------------------------- */

static size_t
pdp_lim_lease_put(uint8_t *p, size_t at, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++) {
        p[at + i] = (uint8_t)(v >> (8 * i));
    }
    return at + width;
}

/* Strings are below their caps (checked when asked or decoded). */
static size_t
pdp_lim_lease_put_str(uint8_t *p, size_t at, const char *s)
{
    size_t n = strlen(s);

    at = pdp_lim_lease_put(p, at, n, 2);
    memcpy(p + at, s, n);
    return at + n;
}

/* pdp_lim_lease_write writes i as a record to p (room for
 * PDP_LIM_LEASE_REC_MAX) and returns its length. */
static size_t
pdp_lim_lease_write(const pdp_lease_info *i, uint8_t *p)
{
    size_t at = pdp_lim_lease_put(p, 0, PDP_LIMITS_LEASE_VERSION, 1);

    at = pdp_lim_lease_put(p, at, (uint64_t)i->kind, 1);
    at = pdp_lim_lease_put_str(p, at, i->id);
    at = pdp_lim_lease_put(p, at, (uint64_t)i->granted_ms, 8);
    at = pdp_lim_lease_put(p, at, (uint64_t)i->expires_ms, 8);
    at = pdp_lim_lease_put_str(p, at, i->rule_id);
    at = pdp_lim_lease_put_str(p, at, i->scope);
    if (i->kind == PDP_LEASE_RATE) {
        const int64_t v[] = {i->rpm,  i->tpm,  i->concurrent,
                             i->reqs, i->toks, i->slots};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
            at = pdp_lim_lease_put(p, at, (uint64_t)v[k], 8);
        }
        return at;
    }
    at = pdp_lim_lease_put(p, at, i->code, 1);
    at = pdp_lim_lease_put(p, at, (uint64_t)i->start_ms, 8);
    at = pdp_lim_lease_put(p, at, (uint32_t)i->span_h, 4);
    at = pdp_lim_lease_put(p, at, (uint64_t)i->limit, 8);
    at = pdp_lim_lease_put(p, at, i->clamp ? 1 : 0, 1);
    at = pdp_lim_lease_put(p, at, i->scope_kind, 1);
    at = pdp_lim_lease_put(p, at, i->nthr, 1);
    for (uint32_t k = 0; k < i->nthr; k++) {
        at = pdp_lim_lease_put(p, at, i->thr[k], 1);
    }
    at = pdp_lim_lease_put(p, at, (uint64_t)i->micro, 8);
    return pdp_lim_lease_put(p, at, (uint64_t)i->charged, 8);
}

tg_err
pdp_limits_lease_encode(pdp_limits *l, const char *id, tg_buf *out)
{
    uint8_t         rec[PDP_LIM_LEASE_REC_MAX];
    pdp_lease_info  info;
    pdp_lim_lshard *s;
    pdp_lim_lease  *x;
    uint64_t        h;
    bool            open;

    if (l == NULL || id == NULL || id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    s = pdp_lim_lease_shard(l, id, &h);
    pthread_mutex_lock(&s->mu);
    x    = *pdp_lim_lease_find(s, h, id);
    open = x != NULL && !x->tomb;
    if (open) {
        info = x->info;
    }
    pthread_mutex_unlock(&s->mu);
    if (!open) {
        return TG_ENOTFOUND;
    }
    return tg_buf_append(out, rec, pdp_lim_lease_write(&info, rec));
}

static bool
pdp_lim_lease_in_range(int64_t v)
{
    return v >= 0 && v <= PDP_LIM_LEASE_MAX;
}

/* pdp_lim_lease_read_budget reads a budget lease's fields; false when one
 * is out of range. */
static bool
pdp_lim_lease_read_budget(pdp_rec_in *in, pdp_lease_info *o)
{
    uint64_t clamp;

    o->code       = (uint8_t)pdp_rec_get_uint(in, 1);
    o->start_ms   = pdp_rec_get_i64(in);
    o->span_h     = (int32_t)(uint32_t)pdp_rec_get_uint(in, 4);
    o->limit      = pdp_rec_get_i64(in);
    clamp         = pdp_rec_get_uint(in, 1);
    o->clamp      = clamp != 0;
    o->scope_kind = (uint8_t)pdp_rec_get_uint(in, 1);
    o->nthr       = (uint8_t)pdp_rec_get_uint(in, 1);
    if (o->nthr > PDP_LIMITS_THRESHOLDS_MAX) {
        return false;
    }
    for (uint32_t k = 0; k < o->nthr; k++) {
        o->thr[k] = (uint8_t)pdp_rec_get_uint(in, 1);
    }
    o->micro   = pdp_rec_get_i64(in);
    o->charged = pdp_rec_get_i64(in);
    return clamp <= 1 && o->start_ms >= 0 && o->span_h >= 0 &&
           pdp_lim_lease_in_range(o->limit) &&
           pdp_lim_lease_in_range(o->micro) &&
           pdp_lim_lease_in_range(o->charged);
}

tg_err
pdp_limits_lease_decode(const void *data, size_t len, pdp_lease_info *out)
{
    pdp_rec_in in = {data, data != NULL ? len : 0, 0, false};
    uint64_t   version;
    uint64_t   kind;
    bool       ok = true;

    memset(out, 0, sizeof(*out));
    version = pdp_rec_get_uint(&in, 1);
    kind    = pdp_rec_get_uint(&in, 1);
    if (version != PDP_LIMITS_LEASE_VERSION ||
        (kind != PDP_LEASE_RATE && kind != PDP_LEASE_BUDGET)) {
        return TG_EPROTO;
    }
    out->kind = (pdp_lease_kind)kind;
    pdp_rec_get_str(&in, out->id, sizeof(out->id));
    out->granted_ms = pdp_rec_get_i64(&in);
    out->expires_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, out->rule_id, sizeof(out->rule_id));
    pdp_rec_get_str(&in, out->scope, sizeof(out->scope));
    if (kind == PDP_LEASE_RATE) {
        int64_t *v[] = {&out->rpm,  &out->tpm,  &out->concurrent,
                        &out->reqs, &out->toks, &out->slots};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
            *v[k] = pdp_rec_get_i64(&in);
            ok    = ok && pdp_lim_lease_in_range(*v[k]);
        }
    } else {
        ok = pdp_lim_lease_read_budget(&in, out);
    }
    if (!ok || in.bad || in.off != in.len || out->id[0] == '\0' ||
        out->granted_ms < 0 || out->expires_ms < out->granted_ms) {
        memset(out, 0, sizeof(*out));
        return TG_EPROTO;
    }
    return TG_OK;
}

uint32_t
pdp_limits_lease_record_keys(const void *data, size_t len,
                             pdp_limits_spend_key *out, uint32_t max)
{
    pdp_lease_info info;

    if (max == 0 || pdp_limits_lease_decode(data, len, &info) != TG_OK ||
        info.kind != PDP_LEASE_BUDGET) {
        return 0;
    }
    pdp_lim_lease_key(&info, out);
    return 1;
}

tg_err
pdp_limits_lease_restore(pdp_limits *l, const void *data, size_t len,
                         int64_t now_ms)
{
    pdp_lim_lease  *x = calloc(1, sizeof(*x));
    pdp_lease_grant g;
    tg_err          rv;

    if (x == NULL) {
        return TG_ENOMEM;
    }
    /* The whole record is checked before anything is held. */
    if ((rv = pdp_limits_lease_decode(data, len, &x->info)) != TG_OK) {
        goto out;
    }
    if (x->info.expires_ms <= now_ms) {
        rv = TG_ENOTFOUND;
        goto out;
    }
    if ((rv = pdp_lim_lease_hold(l, x)) != TG_OK) {
        goto out;
    }
    if (!pdp_lim_lease_link(l, x, &g)) {
        pdp_lim_held h = pdp_lim_lease_held(x);
        pdp_lim_lease_give_back(l, &h, 0, 0, now_ms);
        rv = g.ok ? TG_EEXIST : TG_ENOTFOUND;
        goto out;
    }
    x = NULL; /* linked: the table owns it */
out:
    free(x);
    return rv;
}

uint32_t
pdp_limits_lease_renew(pdp_limits *l, const char *node, int64_t until_ms)
{
    size_t   nl = strlen(node);
    uint32_t n  = 0;

    if (nl == 0) {
        return 0;
    }
    for (size_t i = 0; i < PDP_LIM_SHARDS; i++) {
        pdp_lim_lshard *s = &l->lshards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_LEASE_CHAINS; c++) {
            for (pdp_lim_lease *x = s->chains[c]; x != NULL; x = x->next) {
                if (!x->tomb && strncmp(x->info.id, node, nl) == 0 &&
                    x->info.id[nl] == ':' && x->info.expires_ms < until_ms) {
                    x->info.expires_ms = until_ms;
                    n++;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}
