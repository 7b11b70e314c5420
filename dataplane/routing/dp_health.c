/* dp_health.c - see dp_health.h. Each deployment keeps the timestamps of
 * its last N failures in a ring; the circuit trips when the ring is full
 * and its oldest entry is within the window. Decisions are made under the
 * deployment's mutex, log lines are written after it is released. */
#include "dp_health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_log.h"

#define DP_HEALTH_NAME_MAX 64
#define DP_HEALTH_MAX_FAILURES 1000

typedef struct dp_health_dep {
    pthread_mutex_t     mtx;
    atomic_int_fast64_t inflight;
    /* below: under mtx */
    int64_t *ring; /* failure times, N entries */
    uint32_t head; /* next slot to write = oldest when full */
    uint32_t count;
    bool     open;           /* cooldown or half-open */
    int64_t  cooldown_until; /* valid while open */
    bool     probe_claimed;
    int64_t  probe_at; /* when the claim was taken */
    bool     has_ttft;
    double   ttft;
    uint64_t successes;
    uint64_t failures;
    uint64_t cooldowns;
    char     name[DP_HEALTH_NAME_MAX];
} dp_health_dep;

struct dp_health {
    size_t         n;
    uint32_t       max_failures;
    int64_t        window_ms;
    int64_t        cooldown_ms;
    double         alpha;
    dp_health_dep *deps;
    int64_t       *rings; /* n * max_failures, carved into deps[i].ring */
};

tg_err
dp_health_create(dp_health **out, size_t n, const dp_health_opts *o)
{
    dp_health_opts def = {0};
    dp_health     *h   = NULL;

    if (o == NULL) {
        o = &def;
    }
    if (o->window_ms < 0 || o->cooldown_ms < 0 || o->ewma_alpha < 0 ||
        o->ewma_alpha > 1 || o->ewma_alpha != o->ewma_alpha ||
        o->failures > DP_HEALTH_MAX_FAILURES) {
        return TG_EINVAL;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        return TG_ENOMEM;
    }
    h->n            = n;
    h->max_failures = o->failures ? o->failures : 3;
    h->window_ms    = o->window_ms ? o->window_ms : 30000;
    h->cooldown_ms  = o->cooldown_ms ? o->cooldown_ms : 30000;
    h->alpha        = o->ewma_alpha > 0 ? o->ewma_alpha : 0.2;
    if (n > 0) {
        h->deps  = calloc(n, sizeof(*h->deps));
        h->rings = calloc(n * h->max_failures, sizeof(*h->rings));
        if (h->deps == NULL || h->rings == NULL) {
            free(h->deps);
            free(h->rings);
            free(h);
            return TG_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        dp_health_dep *d    = &h->deps[i];
        const char    *name = o->names != NULL ? o->names[i] : NULL;

        pthread_mutex_init(&d->mtx, NULL);
        atomic_init(&d->inflight, 0);
        d->ring = h->rings + i * h->max_failures;
        if (name != NULL) {
            size_t len = strnlen(name, DP_HEALTH_NAME_MAX - 1);
            memcpy(d->name, name, len);
            d->name[len] = '\0';
        } else {
            snprintf(d->name, sizeof(d->name), "#%zu", i);
        }
    }
    *out = h;
    return TG_OK;
}

void
dp_health_destroy(dp_health *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        pthread_mutex_destroy(&h->deps[i].mtx);
    }
    free(h->deps);
    free(h->rings);
    free(h);
}

size_t
dp_health_size(const dp_health *h)
{
    return h->n;
}

static dp_health_dep *
dp_health__dep(dp_health *h, size_t i)
{
    return (h != NULL && i < h->n) ? &h->deps[i] : NULL;
}

void
dp_health_begin(dp_health *h, size_t i)
{
    dp_health_dep *d = dp_health__dep(h, i);

    if (d != NULL) {
        atomic_fetch_add_explicit(&d->inflight, 1, memory_order_relaxed);
    }
}

void
dp_health_end(dp_health *h, size_t i)
{
    dp_health_dep *d = dp_health__dep(h, i);

    if (d != NULL) {
        atomic_fetch_sub_explicit(&d->inflight, 1, memory_order_relaxed);
    }
}

void
dp_health_ttft(dp_health *h, size_t i, int64_t us)
{
    dp_health_dep *d = dp_health__dep(h, i);

    if (d == NULL || us <= 0) {
        return;
    }
    pthread_mutex_lock(&d->mtx);
    if (d->has_ttft) {
        d->ttft = h->alpha * (double)us + (1.0 - h->alpha) * d->ttft;
    } else {
        d->ttft     = (double)us;
        d->has_ttft = true;
    }
    pthread_mutex_unlock(&d->mtx);
}

/* dp_health__reopen opens the circuit for another cooldown. Under mtx. */
static void
dp_health__reopen(dp_health *h, dp_health_dep *d, int64_t now_ms)
{
    d->open           = true;
    d->cooldown_until = now_ms + h->cooldown_ms;
    d->probe_claimed  = false;
    d->cooldowns++;
}

dp_health_state
dp_health_acquire(dp_health *h, size_t i, int64_t now_ms)
{
    dp_health_dep  *d  = dp_health__dep(h, i);
    dp_health_state rv = DP_HEALTH_OK;

    if (d == NULL) {
        return DP_HEALTH_OK;
    }
    pthread_mutex_lock(&d->mtx);
    if (!d->open) {
        rv = DP_HEALTH_OK;
    } else if (now_ms < d->cooldown_until) {
        rv = DP_HEALTH_COOLDOWN;
    } else if (d->probe_claimed && now_ms - d->probe_at < h->cooldown_ms) {
        rv = DP_HEALTH_COOLDOWN; /* someone else is probing */
    } else {
        /* half-open, and no claim or a stale one: this caller probes */
        d->probe_claimed = true;
        d->probe_at      = now_ms;
        rv               = DP_HEALTH_PROBE;
    }
    pthread_mutex_unlock(&d->mtx);
    return rv;
}

void
dp_health_success(dp_health *h, size_t i, int64_t now_ms)
{
    dp_health_dep *d      = dp_health__dep(h, i);
    bool           closed = false;

    (void)now_ms;
    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->mtx);
    d->successes++;
    if (d->open && d->probe_claimed) {
        d->open           = false;
        d->probe_claimed  = false;
        d->cooldown_until = 0;
        d->count          = 0;
        d->head           = 0;
        closed            = true;
    }
    pthread_mutex_unlock(&d->mtx);
    if (closed) {
        tg_info("deployment %s: probe succeeded, back in rotation", d->name);
    }
}

void
dp_health_failure(dp_health *h, size_t i, int64_t now_ms, const char *why)
{
    dp_health_dep *d        = dp_health__dep(h, i);
    bool           tripped  = false;
    bool           reopened = false;
    uint32_t       n        = 0;
    int64_t        span     = 0;

    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->mtx);
    d->failures++;
    if (d->open) {
        if (d->probe_claimed) {
            dp_health__reopen(h, d, now_ms);
            reopened = true;
        }
        /* else: a request from before the trip; the cooldown stands */
    } else {
        d->ring[d->head] = now_ms;
        d->head          = (d->head + 1) % h->max_failures;
        if (d->count < h->max_failures) {
            d->count++;
        }
        /* when full, head is the oldest of the last N */
        if (d->count == h->max_failures &&
            now_ms - d->ring[d->head] < h->window_ms) {
            n    = d->count;
            span = now_ms - d->ring[d->head];
            dp_health__reopen(h, d, now_ms);
            d->count = 0;
            d->head  = 0;
            tripped  = true;
        }
    }
    pthread_mutex_unlock(&d->mtx);
    if (tripped) {
        tg_warn("deployment %s: %u failures in %lld ms (last: %s), cooling "
                "down for %lld ms",
                d->name, n, (long long)span, why != NULL ? why : "unknown",
                (long long)h->cooldown_ms);
    } else if (reopened) {
        tg_warn("deployment %s: probe failed (%s), cooling down for %lld ms",
                d->name, why != NULL ? why : "unknown",
                (long long)h->cooldown_ms);
    }
}

void
dp_health_abandon(dp_health *h, size_t i)
{
    dp_health_dep *d = dp_health__dep(h, i);

    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->mtx);
    d->probe_claimed = false;
    pthread_mutex_unlock(&d->mtx);
}

void
dp_health_get(dp_health *h, size_t i, int64_t now_ms, dp_health_stat *out)
{
    dp_health_dep *d = dp_health__dep(h, i);

    memset(out, 0, sizeof(*out));
    if (d == NULL) {
        return;
    }
    out->inflight =
        (int64_t)atomic_load_explicit(&d->inflight, memory_order_relaxed);
    pthread_mutex_lock(&d->mtx);
    if (!d->open) {
        out->state = DP_CIRCUIT_OK;
    } else if (now_ms < d->cooldown_until) {
        out->state = DP_CIRCUIT_COOLDOWN;
    } else {
        out->state = DP_CIRCUIT_HALF_OPEN;
    }
    if (d->has_ttft) {
        int64_t v         = (int64_t)(d->ttft + 0.5);
        out->ttft_ewma_us = v > 0 ? v : 1;
    }
    for (uint32_t k = 0; k < d->count; k++) {
        /* the count newest entries end just before head */
        uint32_t slot = (d->head + h->max_failures - 1 - k) % h->max_failures;
        if (now_ms - d->ring[slot] < h->window_ms) {
            out->failures++;
        }
    }
    out->cooldown_until_ms = d->open ? d->cooldown_until : 0;
    out->probing =
        d->open && d->probe_claimed && now_ms - d->probe_at < h->cooldown_ms;
    out->successes      = d->successes;
    out->failures_total = d->failures;
    out->cooldowns      = d->cooldowns;
    pthread_mutex_unlock(&d->mtx);
}

const char *
dp_health_circuit_name(dp_health_circuit s)
{
    switch (s) {
    case DP_CIRCUIT_OK:
        return "ok";
    case DP_CIRCUIT_COOLDOWN:
        return "cooldown";
    case DP_CIRCUIT_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

const char *
dp_health_state_name(dp_health_state s)
{
    switch (s) {
    case DP_HEALTH_OK:
        return "ok";
    case DP_HEALTH_PROBE:
        return "probe";
    case DP_HEALTH_COOLDOWN:
        return "cooldown";
    }
    return "unknown";
}
