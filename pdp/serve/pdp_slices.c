/* pdp_slices.c - a sidecar PDP's leases and what they admitted (see
 * pdp_slices.h). Rules are kept per (rule, scope) for a rate limit and per
 * (rule, scope, window) for a budget, each with the slices held for it;
 * every admitted request keeps a hold naming the slices it counts in. */
#include "pdp_slices.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_hash.h"
#include "tg_time.h"

#define SL_CHAINS 256
#define SL_HOLD_CHAINS 4096
#define SL_HOLD_MAX (PDP_LIMITS_RULES_MAX + PDP_LIMITS_BUDGETS_MAX)
#define SL_IDLE_MS 1000 /* an unused slice goes back after this */
#define SL_HORIZON_S 2.0 /* a slice is sized for this much demand */

typedef struct sl_lease {
    struct sl_lease *next;
    char             id[TG_REQUEST_ID_MAX];
    int64_t          reqs, toks, slots, micro; /* granted */
    int64_t          used_reqs, used_toks, pend_toks, busy_slots;
    int64_t          used_micro, held_micro;
    uint32_t         inflight;
    int64_t          use_until, last_use;
} sl_lease;

typedef struct sl_item {
    struct sl_item *next;
    uint64_t        hash;
    uint8_t         kind; /* 1 rate, 2 budget */
    char            rule[TG_ID_MAX];
    char            scope[TG_MSG_META_VAL_MAX];
    int64_t         rpm, tpm, conc;
    uint8_t         code;
    int64_t         start;
    int32_t         span_h;
    int64_t         limit;
    uint8_t         scope_kind, nthr, thr[TG_MSG_THRESHOLDS_MAX];
    sl_lease       *leases;
    char            asking[TG_REQUEST_ID_MAX]; /* "" none in flight */
    int64_t         refused_until;
    pdp_wire_granted refusal;
    /* Demand: per second (smoothed), and this second's count. */
    double  d_reqs, d_toks, d_micro;
    int64_t c_reqs, c_toks, c_micro, c_sec;
    int64_t peak_busy;
    int64_t last_demand;
} sl_item;

typedef struct sl_hold {
    struct sl_hold *next;
    char            id[TG_REQUEST_ID_MAX];
    uint32_t        n;
    struct {
        sl_item  *it;
        sl_lease *l; /* NULL: out of the emergency allowance */
        int64_t   toks;
        int64_t   micro;
        bool      slot;
    } h[SL_HOLD_MAX];
} sl_hold;

struct pdp_slices {
    pthread_mutex_t  mu;
    char             node[TG_ID_MAX];
    char             prefix[48];
    int64_t          boot;
    uint64_t         next_id;
    int64_t          ttl_ms, use_ms;
    int64_t          emergency_left;
    pdp_slices_stats st;
    sl_item         *items[SL_CHAINS];
    sl_hold         *holds[SL_HOLD_CHAINS];
};

tg_err
pdp_slices_create(pdp_slices **out, const char *node, int64_t ttl_ms,
                  int64_t use_ms)
{
    pdp_slices *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return TG_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->node, sizeof(s->node), "%s", node);
    s->boot   = tg_now_ms();
    snprintf(s->prefix, sizeof(s->prefix), "%.16s:%lld", node,
             (long long)s->boot);
    s->ttl_ms = ttl_ms;
    s->use_ms = use_ms;
    *out      = s;
    return TG_OK;
}

void
pdp_slices_destroy(pdp_slices *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < SL_CHAINS; i++) {
        for (sl_item *it = s->items[i], *nx; it != NULL; it = nx) {
            nx = it->next;
            for (sl_lease *l = it->leases, *ln; l != NULL; l = ln) {
                ln = l->next;
                free(l);
            }
            free(it);
        }
    }
    for (size_t i = 0; i < SL_HOLD_CHAINS; i++) {
        for (sl_hold *h = s->holds[i], *nx; h != NULL; h = nx) {
            nx = h->next;
            free(h);
        }
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const char *
pdp_slices_prefix(const pdp_slices *s)
{
    return s->prefix;
}

void
pdp_slices_emergency_set(pdp_slices *s, int64_t micro)
{
    pthread_mutex_lock(&s->mu);
    s->emergency_left = micro;
    pthread_mutex_unlock(&s->mu);
}

/* ---- rules and holds ------------------------------------------------------ */

static uint64_t
sl_hash(uint8_t kind, const char *rule, const char *scope, uint8_t code,
        int64_t start)
{
    uint64_t h = tg_fnv1a(TG_FNV_BASIS, &kind, 1);

    h = tg_fnv1a(h, rule, strlen(rule) + 1);
    h = tg_fnv1a(h, scope, strlen(scope) + 1);
    h = tg_fnv1a(h, &code, 1);
    return tg_fnv1a(h, &start, sizeof(start));
}

/* sl_item_get finds (or, create: adds) the rule; s->mu held. */
static sl_item *
sl_item_get(pdp_slices *s, uint8_t kind, const char *rule, const char *scope,
            uint8_t code, int64_t start, bool create)
{
    uint64_t  h  = sl_hash(kind, rule, scope, code, start);
    sl_item **pp = &s->items[h % SL_CHAINS];

    for (sl_item *it = *pp; it != NULL; it = it->next) {
        if (it->hash == h && it->kind == kind && it->code == code &&
            it->start == start && strcmp(it->rule, rule) == 0 &&
            strcmp(it->scope, scope) == 0) {
            return it;
        }
    }
    if (!create) {
        return NULL;
    }
    sl_item *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return NULL;
    }
    it->hash  = h;
    it->kind  = kind;
    it->code  = code;
    it->start = start;
    snprintf(it->rule, sizeof(it->rule), "%s", rule);
    snprintf(it->scope, sizeof(it->scope), "%s", scope);
    it->next = *pp;
    *pp      = it;
    return it;
}

static sl_hold **
sl_hold_slot(pdp_slices *s, const char *id)
{
    uint64_t  h  = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    sl_hold **pp = &s->holds[h % SL_HOLD_CHAINS];

    while (*pp != NULL && strcmp((*pp)->id, id) != 0) {
        pp = &(*pp)->next;
    }
    return pp;
}

/* sl_demand counts one request's ask of the rule in its second. */
static void
sl_demand(sl_item *it, int64_t toks, int64_t micro, int64_t now)
{
    int64_t sec = now / 1000;

    if (sec != it->c_sec) {
        double gap = it->c_sec == 0 ? 1.0 : (double)(sec - it->c_sec);
        double a   = gap > 4 ? 0.0 : pow(0.5, gap);
        it->d_reqs  = a * it->d_reqs + (1 - a) * (double)it->c_reqs / gap;
        it->d_toks  = a * it->d_toks + (1 - a) * (double)it->c_toks / gap;
        it->d_micro = a * it->d_micro + (1 - a) * (double)it->c_micro / gap;
        it->c_reqs = it->c_toks = it->c_micro = 0;
        it->c_sec                             = sec;
    }
    it->c_reqs++;
    it->c_toks += toks;
    it->c_micro += micro;
    it->last_demand = now;
}

static int64_t
sl_size(double per_s, int64_t now_count, int64_t min, int64_t cap)
{
    double  x    = fmax(per_s, (double)now_count) * SL_HORIZON_S;
    int64_t want = x > 9e15 ? INT64_MAX / 4 : (int64_t)ceil(x);

    if (cap > 0 && want > cap) {
        want = cap;
    }
    return want < min ? min : want;
}

/* sl_want fills w with an ask for it, at least the given minimums. */
static void
sl_want(pdp_slices *s, sl_item *it, int64_t min_toks, int64_t min_micro,
        pdp_wire_want *w)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%.40s:%llu", s->prefix,
             (unsigned long long)++s->next_id);
    w->kind = it->kind;
    snprintf(w->rule_id, sizeof(w->rule_id), "%s", it->rule);
    snprintf(w->scope, sizeof(w->scope), "%s", it->scope);
    w->ttl_ms = s->ttl_ms;
    if (it->kind == 1) {
        w->rpm        = it->rpm;
        w->tpm        = it->tpm;
        w->concurrent = it->conc;
        w->min_reqs   = it->rpm > 0 ? 1 : 0;
        w->want_reqs  = it->rpm > 0 ? sl_size(it->d_reqs, it->c_reqs, 1,
                                              it->rpm / 4)
                                    : 0;
        w->min_toks  = it->tpm > 0 ? min_toks : 0;
        w->want_toks = it->tpm > 0 ? sl_size(it->d_toks, it->c_toks,
                                             min_toks, it->tpm / 4)
                                   : 0;
        w->min_slots  = it->conc > 0 ? 1 : 0;
        w->want_slots = it->conc > 0 ? sl_size(0, it->peak_busy, 1,
                                               it->conc / 4)
                                     : 0;
    } else {
        w->window     = it->code;
        w->start_ms   = it->start;
        w->span_h     = it->span_h;
        w->limit      = it->limit;
        w->scope_kind = it->scope_kind;
        w->nthr       = it->nthr;
        memcpy(w->thr, it->thr, sizeof(w->thr));
        w->min_micro  = min_micro;
        w->want_micro = sl_size(it->d_micro, it->c_micro, min_micro,
                                it->limit / 8);
    }
    snprintf(it->asking, sizeof(it->asking), "%s", w->id);
}

/* ---- admission ------------------------------------------------------------ */

static sl_lease *
sl_rate_fit(sl_item *it, int64_t toks, int64_t now)
{
    for (sl_lease *l = it->leases; l != NULL; l = l->next) {
        if (now < l->use_until &&
            (it->rpm == 0 || l->reqs - l->used_reqs >= 1) &&
            (it->tpm == 0 || l->toks - l->used_toks - l->pend_toks >= toks) &&
            (it->conc == 0 || l->slots - l->busy_slots >= 1)) {
            return l;
        }
    }
    return NULL;
}

static sl_lease *
sl_budget_fit(sl_item *it, int64_t micro, int64_t now)
{
    for (sl_lease *l = it->leases; l != NULL; l = l->next) {
        if (now < l->use_until &&
            l->micro - l->used_micro - l->held_micro >= micro) {
            return l;
        }
    }
    return NULL;
}

/* sl_short records a rule without a slice with room: a deny naming it
 * (what, its limit), and an ask unless one is in flight or a refusal
 * still stands (then the refusal is the answer). */
static void
sl_short(pdp_slices *s, sl_item *it, uint32_t idx, pdp_limits_what what,
         int64_t limit, int64_t toks, int64_t micro, int64_t now,
         pdp_limits_result *out, pdp_slices_need *need, bool *first)
{
    bool budget = what == PDP_LIMITS_BUDGET;

    if (*first) {
        *first      = false;
        out->denied = what;
        out->limit  = limit;
        if (budget) {
            out->denied_budget = idx;
            out->b_worst       = micro;
        } else {
            out->denied_rule = idx;
        }
        out->retry_ms = 1000;
        if (now < it->refused_until) {
            pdp_slices_need one = {.n = 1};
            one.rule[0]         = idx;
            one.budget[0]       = budget;
            pdp_slices_refused(&one, 0, &it->refusal, out);
        }
    }
    if (need != NULL && it->asking[0] != '\0' && now >= it->refused_until) {
        need->waiting = true;
    }
    if (need == NULL || it->asking[0] != '\0' || now < it->refused_until ||
        need->n >= PDP_WIRE_WANTS_MAX) {
        return;
    }
    need->rule[need->n]   = idx;
    need->budget[need->n] = budget;
    sl_want(s, it, toks, micro, &need->w[need->n++]);
}

/* sl_rate_short says which of a rate rule's limits no slice has room for
 * (requests first, as pdp_limits_check does), and that limit. */
static pdp_limits_what
sl_rate_short(const sl_item *it, int64_t toks, int64_t now, int64_t *limit)
{
    bool reqs = false, tk = false;

    for (const sl_lease *l = it->leases; l != NULL; l = l->next) {
        if (now < l->use_until) {
            reqs = reqs || l->reqs - l->used_reqs >= 1;
            tk   = tk || l->toks - l->used_toks - l->pend_toks >= toks;
        }
    }
    if (it->rpm > 0 && !reqs) {
        *limit = it->rpm;
        return PDP_LIMITS_REQUESTS;
    }
    if (it->tpm > 0 && !tk) {
        *limit = it->tpm;
        return PDP_LIMITS_TOKENS;
    }
    *limit = it->conc;
    return PDP_LIMITS_CONCURRENT;
}

/* sl_budget_room is the most a usable slice of the budget has left. */
static int64_t
sl_budget_room(const sl_item *it, int64_t now)
{
    int64_t best = -1;

    for (const sl_lease *l = it->leases; l != NULL; l = l->next) {
        int64_t room = l->micro - l->used_micro - l->held_micro;
        if (now < l->use_until && room > best) {
            best = room;
        }
    }
    return best;
}

/* sl_rate_item is the rule of reqs[i] with its current limits. */
static sl_item *
sl_rate_item(pdp_slices *s, const pdp_limits_req *q)
{
    sl_item *it = sl_item_get(s, 1, q->rule_id, q->scope, 0, 0, true);

    if (it != NULL) {
        it->rpm  = q->rpm;
        it->tpm  = q->tpm;
        it->conc = q->concurrent;
    }
    return it;
}

static sl_item *
sl_budget_item(pdp_slices *s, const pdp_limits_budget *b)
{
    sl_item *it =
        sl_item_get(s, 2, b->rule_id, b->scope, b->code, b->start_ms, true);

    if (it != NULL) {
        it->span_h     = b->span_h;
        it->limit      = b->limit;
        it->scope_kind = b->scope_kind;
        it->nthr       = b->nthr < TG_MSG_THRESHOLDS_MAX ? b->nthr
                                                         : TG_MSG_THRESHOLDS_MAX;
        memcpy(it->thr, b->thr, it->nthr);
    }
    return it;
}

void
pdp_slices_admit(pdp_slices *s, const char *id, const pdp_limits_req *reqs,
                 uint32_t n, const pdp_limits_budget *buds, uint32_t nb,
                 const pdp_limits_cost *cost, int64_t tokens, bool emergency,
                 int64_t now_ms, pdp_limits_result *out, pdp_slices_need *need)
{
    int64_t  out_tokens = cost != NULL ? cost->max_out : 0;
    int64_t  worst      = nb > 0 && cost != NULL
                              ? pdp_limits_worst(cost, cost->max_out)
                              : 0;
    sl_hold  hd    = {0};
    bool     first = true;
    int64_t  em    = 0;
    sl_hold *h;

    memset(out, 0, sizeof(*out));
    if (n > PDP_LIMITS_RULES_MAX || nb > PDP_LIMITS_BUDGETS_MAX) {
        out->denied = PDP_LIMITS_REQUESTS;
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (*sl_hold_slot(s, id) != NULL) {
        pthread_mutex_unlock(&s->mu);
        out->denied = PDP_LIMITS_ABANDONED;
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        sl_item  *it = sl_rate_item(s, &reqs[i]);
        sl_lease *l;
        if (it == NULL) {
            out->denied = PDP_LIMITS_REQUESTS;
            goto done;
        }
        sl_demand(it, tokens, 0, now_ms);
        if ((l = sl_rate_fit(it, tokens, now_ms)) == NULL) {
            int64_t         lim;
            pdp_limits_what w = sl_rate_short(it, tokens, now_ms, &lim);
            sl_short(s, it, i, w, lim, tokens, 0, now_ms, out, need, &first);
            continue;
        }
        hd.h[hd.n].it     = it;
        hd.h[hd.n].l      = l;
        hd.h[hd.n].toks   = tokens;
        hd.h[hd.n++].slot = it->conc > 0;
    }
    /* A clamp budget lowers the output tokens to what its best slice
     * fits (at least 1); every budget then holds the worst case of that. */
    for (uint32_t i = 0; i < nb && !emergency && cost != NULL; i++) {
        sl_item *it = buds[i].clamp ? sl_budget_item(s, &buds[i]) : NULL;
        int64_t  k  = it != NULL ? pdp_limits_fit(cost, sl_budget_room(it, now_ms))
                                 : -1;
        if (it != NULL && k >= 1 && k < out_tokens) {
            out_tokens = k;
        }
    }
    if (cost != NULL && nb > 0) {
        worst = pdp_limits_worst(cost, out_tokens);
    }
    for (uint32_t i = 0; i < nb; i++) {
        sl_item  *it = sl_budget_item(s, &buds[i]);
        sl_lease *l  = NULL;
        if (it == NULL) {
            out->denied = PDP_LIMITS_BUDGET;
            goto done;
        }
        sl_demand(it, 0, worst, now_ms);
        if (emergency) {
            em += worst;
        } else if ((l = sl_budget_fit(it, worst, now_ms)) == NULL) {
            /* A clamp budget needs room for one output token at least. */
            int64_t need_micro = buds[i].clamp && cost != NULL
                                     ? pdp_limits_worst(cost, 1)
                                     : worst;
            sl_short(s, it, i, PDP_LIMITS_BUDGET, buds[i].limit, 0,
                     need_micro < worst ? need_micro : worst, now_ms, out,
                     need, &first);
            continue;
        }
        hd.h[hd.n].it      = it;
        hd.h[hd.n].l       = l;
        hd.h[hd.n++].micro = worst;
    }
    if (!first) {
        goto done;
    }
    if (em > 0 && em > s->emergency_left) {
        out->denied        = PDP_LIMITS_BUDGET;
        out->denied_budget = 0;
        out->limit         = buds[0].limit;
        out->b_worst       = worst;
        out->retry_ms      = 1000;
        goto done;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        out->denied = PDP_LIMITS_REQUESTS;
        goto done;
    }
    *h = hd;
    snprintf(h->id, sizeof(h->id), "%s", id);
    for (uint32_t i = 0; i < h->n; i++) {
        sl_lease *l = h->h[i].l;
        if (l == NULL) {
            continue;
        }
        l->inflight++;
        l->last_use = now_ms;
        if (h->h[i].it->kind == 1) {
            l->used_reqs++;
            l->pend_toks += h->h[i].toks;
            l->busy_slots += h->h[i].slot ? 1 : 0;
            if (l->busy_slots > h->h[i].it->peak_busy) {
                h->h[i].it->peak_busy = l->busy_slots;
            }
        } else {
            l->held_micro += h->h[i].micro;
        }
    }
    if (em > 0) {
        s->emergency_left -= em;
        s->st.emergency++;
        s->st.emergency_micro += em;
    }
    h->next                       = NULL;
    *sl_hold_slot(s, id)          = h;
    out->denied                   = PDP_LIMITS_OK;
    out->b_worst                  = worst;
    out->clamp_tokens             = out_tokens;
    snprintf(out->reservation_id, sizeof(out->reservation_id), "%s", id);
done:
    pthread_mutex_unlock(&s->mu);
}

/* ---- grants, refusals and returns ---------------------------------------- */

void
pdp_slices_refused(const pdp_slices_need *need, uint32_t i,
                   const pdp_wire_granted *g, pdp_limits_result *out)
{
    out->denied = g->denied >= PDP_LIMITS_REQUESTS &&
                          g->denied <= PDP_LIMITS_BUDGET
                      ? (pdp_limits_what)g->denied
                      : (need->budget[i] ? PDP_LIMITS_BUDGET
                                         : PDP_LIMITS_REQUESTS);
    if (need->budget[i]) {
        out->denied        = PDP_LIMITS_BUDGET;
        out->denied_budget = need->rule[i];
        out->b_spent       = g->used;
        out->b_reserved    = 0;
    } else {
        out->denied_rule = need->rule[i];
    }
    out->limit    = g->limit;
    out->used     = g->used;
    out->retry_ms = g->retry_ms > 0 ? g->retry_ms : 1000;
}

static sl_item *
sl_item_of_want(pdp_slices *s, const pdp_wire_want *w)
{
    return sl_item_get(s, w->kind, w->rule_id, w->scope,
                       w->kind == 2 ? w->window : 0,
                       w->kind == 2 ? w->start_ms : 0, false);
}

void
pdp_slices_grant(pdp_slices *s, const pdp_slices_need *need,
                 const pdp_wire_granted *g, uint32_t n, int64_t sent_ms,
                 pdp_wire_granted *refusal)
{
    int64_t now = tg_now_ms();

    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < need->n; i++) {
        const pdp_wire_want    *w  = &need->w[i];
        const pdp_wire_granted *gi = NULL;
        sl_item                *it = sl_item_of_want(s, w);
        sl_lease               *l;
        for (uint32_t j = 0; j < n; j++) {
            if (strcmp(g[j].id, w->id) == 0) {
                gi = &g[j];
            }
        }
        if (it != NULL && strcmp(it->asking, w->id) == 0) {
            it->asking[0] = '\0';
        }
        if (gi == NULL || it == NULL) {
            continue;
        }
        if (!gi->ok) {
            int64_t wait     = gi->retry_ms > 0 && gi->retry_ms < 250
                                   ? gi->retry_ms
                                   : 250;
            it->refused_until = now + wait;
            it->refusal       = *gi;
            s->st.refused++;
            if (refusal != NULL) {
                *refusal = *gi;
            }
            continue;
        }
        if ((l = calloc(1, sizeof(*l))) == NULL) {
            continue; /* the central PDP frees it on expiry */
        }
        snprintf(l->id, sizeof(l->id), "%s", gi->id);
        l->reqs      = gi->reqs;
        l->toks      = gi->toks;
        l->slots     = gi->slots;
        l->micro     = gi->micro;
        l->use_until = sent_ms + (s->use_ms < gi->ttl_ms / 2 ? s->use_ms
                                                             : gi->ttl_ms / 2);
        l->last_use  = now;
        l->next      = it->leases;
        it->leases   = l;
        it->refused_until = 0;
        s->st.granted++;
        s->st.held++;
    }
    pthread_mutex_unlock(&s->mu);
}

void
pdp_slices_asked(pdp_slices *s, const pdp_slices_need *need)
{
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < need->n; i++) {
        sl_item *it = sl_item_of_want(s, &need->w[i]);
        if (it != NULL && strcmp(it->asking, need->w[i].id) == 0) {
            it->asking[0] = '\0';
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* sl_low: the rule's usable slices are more than half used. */
static bool
sl_low(const sl_item *it, int64_t now)
{
    int64_t have = 0, left = 0;

    for (const sl_lease *l = it->leases; l != NULL; l = l->next) {
        if (now >= l->use_until) {
            continue;
        }
        if (it->kind == 2) {
            have += l->micro;
            left += l->micro - l->used_micro - l->held_micro;
        } else if (it->rpm > 0) {
            have += l->reqs;
            left += l->reqs - l->used_reqs;
        } else if (it->conc > 0) {
            have += l->slots;
            left += l->slots - l->busy_slots;
        } else {
            have += l->toks;
            left += l->toks - l->used_toks - l->pend_toks;
        }
    }
    return left * 2 < have || have == 0;
}

void
pdp_slices_prefetch(pdp_slices *s, int64_t now_ms, pdp_slices_need *need)
{
    pthread_mutex_lock(&s->mu);
    for (size_t c = 0; c < SL_CHAINS; c++) {
        for (sl_item *it = s->items[c]; it != NULL; it = it->next) {
            if (need->n >= PDP_WIRE_WANTS_MAX) {
                break;
            }
            if (it->asking[0] != '\0' || now_ms < it->refused_until ||
                now_ms - it->last_demand > 2000 || !sl_low(it, now_ms)) {
                continue;
            }
            need->rule[need->n]   = 0;
            need->budget[need->n] = it->kind == 2;
            sl_want(s, it, it->kind == 1 && it->tpm > 0 ? 1 : 0,
                    it->kind == 2 ? 1 : 0, &need->w[need->n++]);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

uint32_t
pdp_slices_returns(pdp_slices *s, int64_t now_ms, pdp_wire_return *r,
                   uint32_t max)
{
    uint32_t n = 0;

    pthread_mutex_lock(&s->mu);
    for (size_t c = 0; c < SL_CHAINS && n < max; c++) {
        for (sl_item *it = s->items[c]; it != NULL && n < max; it = it->next) {
            sl_lease **pp = &it->leases;
            while (*pp != NULL && n < max) {
                sl_lease *l = *pp;
                if (l->inflight > 0 || (now_ms < l->use_until &&
                                        now_ms - l->last_use < SL_IDLE_MS)) {
                    pp = &l->next;
                    continue;
                }
                snprintf(r[n].id, sizeof(r[n].id), "%s", l->id);
                r[n].used_reqs = l->used_reqs;
                r[n].used_toks = l->used_toks;
                n++;
                *pp = l->next;
                free(l);
                s->st.held--;
                s->st.returned++;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- settling -------------------------------------------------------------- */

void
pdp_slices_charges(pdp_slices *s, const char *id, tg_usage *u)
{
    sl_hold *h;

    pthread_mutex_lock(&s->mu);
    h            = *sl_hold_slot(s, id);
    u->n_charges = 0;
    for (uint32_t i = 0; h != NULL && i < h->n; i++) {
        const sl_item   *it = h->h[i].it;
        tg_lease_charge *c;
        if (it->kind != 2 || u->n_charges >= TG_MSG_CHARGES_MAX) {
            continue;
        }
        c = &u->charges[u->n_charges++];
        memset(c, 0, sizeof(*c));
        snprintf(c->lease_id, sizeof(c->lease_id), "%s",
                 h->h[i].l != NULL ? h->h[i].l->id : "");
        snprintf(c->rule_id, sizeof(c->rule_id), "%s", it->rule);
        snprintf(c->scope, sizeof(c->scope), "%s", it->scope);
        c->window     = it->code;
        c->start_ms   = it->start;
        c->limit      = it->limit;
        c->scope_kind = it->scope_kind;
        c->nthr       = it->nthr;
        memcpy(c->thr, it->thr, sizeof(c->thr));
        u->emergency = u->emergency || h->h[i].l == NULL;
    }
    pthread_mutex_unlock(&s->mu);
}

bool
pdp_slices_settle(pdp_slices *s, const char *id, int64_t actual_tokens,
                  int64_t cost, bool abandon)
{
    sl_hold **pp;
    sl_hold  *h;

    pthread_mutex_lock(&s->mu);
    pp = sl_hold_slot(s, id);
    if ((h = *pp) == NULL) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    *pp = h->next;
    for (uint32_t i = 0; i < h->n; i++) {
        sl_lease *l = h->h[i].l;
        if (l == NULL) {
            /* Emergency: an abandoned request gives its allowance back. */
            if (abandon) {
                s->emergency_left += h->h[i].micro;
                s->st.emergency_micro -= h->h[i].micro;
            } else if (cost < h->h[i].micro) {
                s->emergency_left += h->h[i].micro - cost;
                s->st.emergency_micro -= h->h[i].micro - cost;
            }
            continue;
        }
        l->inflight--;
        if (h->h[i].it->kind == 1) {
            l->pend_toks -= h->h[i].toks;
            l->used_toks += abandon ? 0 : actual_tokens;
            l->busy_slots -= h->h[i].slot ? 1 : 0;
        } else {
            l->held_micro -= h->h[i].micro;
            l->used_micro += abandon ? 0 : cost;
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(h);
    return true;
}

void
pdp_slices_get_stats(pdp_slices *s, pdp_slices_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}
