/* pdp_limits_res.c - reservations: what an admitted request holds until
 * its usage report (its concurrency slots, its tokens to correct, the worst
 * case reserved in each budget), released by the report, abandoned by the
 * data plane, or expired after the TTL by a sweep at most once a second.
 * Thread-safe; a reservation shard's lock is never held with a window
 * shard's (pdp_limits.c). */
#include "pdp_limits_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_log.h"

bool
pdp_limits__res_put(pdp_limits *l, pdp_lim_res *r)
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

void
pdp_limits__res_end(pdp_limits *l, pdp_lim_res *r, int64_t actual,
                    int64_t now_ms)
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
        b = pdp_limits__bkt_get(w, r->bcode[i], r->bstart[i]);
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

bool
pdp_limits__res_known(pdp_limits *l, const char *id)
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
    pdp_limits__res_end(l, r, actual_tokens < 0 ? 0 : actual_tokens, now_ms);
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
    pdp_limits__res_end(l, r, 0, now_ms);
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
            pdp_limits__res_end(l, dead, -1, now_ms);
            dead = nx;
            n++;
        }
    }
    return n + pdp_limits__lease_expire(l, now_ms);
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

void
pdp_limits__maybe_sweep(pdp_limits *l, int64_t now_ms)
{
    long long now_s = now_ms / 1000;
    long long last  = atomic_load(&l->last_sweep_s);
    uint64_t  held  = atomic_load(&l->pending) + atomic_load(&l->tombs) +
                    atomic_load(&l->leases_open) + atomic_load(&l->lease_tombs);

    if (now_s <= last || held == 0) {
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

uint32_t
pdp_limits_budget_keys(pdp_limits *l, const char *id, pdp_limits_spend_key *out,
                       uint32_t max)
{
    uint64_t        h;
    pdp_lim_rshard *s;
    pdp_lim_res    *r;
    uint32_t        n = 0;
    size_t          c;
    bool            found;

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
    found = r != NULL;
    pthread_mutex_unlock(&s->mu);
    /* Not a reservation: a budget lease's, after the lock. */
    return found ? n : pdp_limits__lease_keys(l, id, out, max);
}
