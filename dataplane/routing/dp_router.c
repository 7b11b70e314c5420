/* dp_router.c - see dp_router.h. Candidate lists are short (at most
 * TG_MSG_TARGETS_MAX per decision), so ordering is a stable insertion sort
 * done in place in the caller's order_out: no allocation. */
#include "dp_router.h"

#include <string.h>

static const char *const dp_router__names[] = {
    [DP_STRATEGY_ORDERED]        = "ordered",
    [DP_STRATEGY_WEIGHTED]       = "weighted",
    [DP_STRATEGY_LEAST_INFLIGHT] = "least_inflight",
    [DP_STRATEGY_LOWEST_LATENCY] = "lowest_latency",
    [DP_STRATEGY_LOWEST_COST]    = "lowest_cost",
};

#define DP_ROUTER_N_STRATEGIES                                                 \
    (sizeof(dp_router__names) / sizeof(dp_router__names[0]))

bool
dp_strategy_parse(const char *s, dp_strategy *out)
{
    if (s == NULL) {
        return false;
    }
    if (strcmp(s, "priority") == 0) {
        *out = DP_STRATEGY_ORDERED;
        return true;
    }
    for (size_t i = 0; i < DP_ROUTER_N_STRATEGIES; i++) {
        if (strcmp(s, dp_router__names[i]) == 0) {
            *out = (dp_strategy)i;
            return true;
        }
    }
    return false;
}

const char *
dp_strategy_name(dp_strategy s)
{
    if ((size_t)s >= DP_ROUTER_N_STRATEGIES) {
        return "unknown";
    }
    return dp_router__names[s];
}

dp_strategy
dp_strategy_from_wire(tg_route_strategy s)
{
    switch (s) {
    case TG_ROUTE_WEIGHTED:
        return DP_STRATEGY_WEIGHTED;
    case TG_ROUTE_LEAST_INFLIGHT:
        return DP_STRATEGY_LEAST_INFLIGHT;
    case TG_ROUTE_LOWEST_LATENCY:
        return DP_STRATEGY_LOWEST_LATENCY;
    case TG_ROUTE_LOWEST_COST:
        return DP_STRATEGY_LOWEST_COST;
    case TG_ROUTE_UNSPECIFIED:
    case TG_ROUTE_ORDERED:
    default:
        return DP_STRATEGY_ORDERED;
    }
}

/* splitmix64 (Steele, Lea, Flood 2014): tiny, and good enough to make
 * consecutive seeds give independent-looking draws. */
static uint64_t
dp_router__next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
dp_router__cmp64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* dp_router__less is the strict "x is tried before y" order: group, then the
 * strategy's key, then priority, then position in c (so the sort is a total
 * order and the result does not depend on the sort algorithm). */
static bool
dp_router__less(const dp_candidate *c, dp_strategy s, size_t x, size_t y)
{
    const dp_candidate *a = &c[x];
    const dp_candidate *b = &c[y];
    int                 r = 0;

    if (a->group != b->group) {
        return a->group < b->group;
    }
    switch (s) {
    case DP_STRATEGY_LEAST_INFLIGHT:
        r = dp_router__cmp64(a->inflight, b->inflight);
        break;
    case DP_STRATEGY_LOWEST_LATENCY:
        /* unknown first: a deployment without a sample gets measured */
        r = dp_router__cmp64(a->ttft_us > 0, b->ttft_us > 0);
        if (r == 0) {
            r = dp_router__cmp64(a->ttft_us, b->ttft_us);
        }
        break;
    case DP_STRATEGY_LOWEST_COST:
        /* unknown last: never prefer a price we do not know */
        r = dp_router__cmp64(a->cost <= 0, b->cost <= 0);
        if (r == 0) {
            r = dp_router__cmp64(a->cost, b->cost);
        }
        break;
    case DP_STRATEGY_ORDERED:
    case DP_STRATEGY_WEIGHTED:
    default:
        break;
    }
    if (r != 0) {
        return r < 0;
    }
    if (a->priority != b->priority) {
        return a->priority < b->priority;
    }
    return x < y;
}

/* dp_router__draw shuffles ord[0..m) by weighted draws without replacement
 * and returns how many it kept (weight-0 entries are dropped unless all of
 * them are 0). */
static size_t
dp_router__draw(const dp_candidate *c, size_t *ord, size_t m, uint64_t *rng)
{
    bool all_zero = true;

    for (size_t k = 0; k < m; k++) {
        if (c[ord[k]].weight > 0) {
            all_zero = false;
        }
    }
    for (size_t pos = 0; pos < m; pos++) {
        uint64_t total = 0;
        uint64_t r;
        size_t   pick = pos;

        for (size_t k = pos; k < m; k++) {
            total += all_zero ? 1 : c[ord[k]].weight;
        }
        if (total == 0) {
            return pos; /* only weight-0 entries are left */
        }
        r = dp_router__next(rng) % total;
        for (size_t k = pos; k < m; k++) {
            uint64_t w = all_zero ? 1 : c[ord[k]].weight;
            if (r < w) {
                pick = k;
                break;
            }
            r -= w;
        }
        size_t t  = ord[pos];
        ord[pos]  = ord[pick];
        ord[pick] = t;
    }
    return m;
}

size_t
dp_router_order(const dp_candidate *c, size_t n, dp_strategy s,
                uint64_t rand_seed, size_t *order_out)
{
    size_t   m   = 0;
    uint64_t rng = rand_seed;

    for (size_t i = 0; i < n; i++) {
        if (c[i].cooldown && !c[i].probe) {
            continue;
        }
        /* insertion sort: shift the larger ones right */
        size_t k = m++;
        while (k > 0 && dp_router__less(c, s, i, order_out[k - 1])) {
            order_out[k] = order_out[k - 1];
            k--;
        }
        order_out[k] = i;
    }
    if (s != DP_STRATEGY_WEIGHTED) {
        return m;
    }
    /* Each group is a run in priority order; shuffle it and close the gap
     * left by dropped weight-0 entries. */
    for (size_t a = 0; a < m;) {
        size_t b = a;
        size_t kept;

        while (b < m && c[order_out[b]].group == c[order_out[a]].group) {
            b++;
        }
        kept = dp_router__draw(c, order_out + a, b - a, &rng);
        if (kept < b - a) {
            memmove(order_out + a + kept, order_out + b,
                    (m - b) * sizeof(*order_out));
            m -= (b - a) - kept;
        }
        a += kept;
    }
    return m;
}

bool
dp_router_variant(const char *model, char *base, size_t cap,
                  dp_strategy *forced)
{
    static const struct {
        const char *suffix;
        dp_strategy s;
    } variants[] = {
        {":floor", DP_STRATEGY_LOWEST_COST},
        {":nitro", DP_STRATEGY_LOWEST_LATENCY},
    };
    size_t len   = strlen(model);
    size_t keep  = len;
    bool   found = false;
    size_t which = 0;

    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        size_t sl = strlen(variants[v].suffix);
        if (len > sl && strcmp(model + len - sl, variants[v].suffix) == 0) {
            keep  = len - sl;
            found = true;
            which = v;
            break;
        }
    }
    if (keep >= cap) {
        if (cap > 0) {
            base[0] = '\0';
        }
        return false;
    }
    memcpy(base, model, keep);
    base[keep] = '\0';
    if (found && forced != NULL) {
        *forced = variants[which].s;
    }
    return found;
}

int64_t
dp_router_backoff_ms(uint32_t attempt, int64_t base_ms, int64_t max_ms,
                     int64_t retry_after_ms, uint64_t rand_seed)
{
    int64_t  ceiling = base_ms > 0 ? base_ms : 0;
    int64_t  jittered;
    uint64_t rng = rand_seed;

    if (max_ms < 0) {
        max_ms = 0;
    }
    /* base * 2^attempt, saturating at max_ms without overflowing */
    for (uint32_t k = 0; k < attempt && 0 < ceiling && ceiling < max_ms; k++) {
        ceiling = ceiling > INT64_MAX / 2 ? INT64_MAX : ceiling * 2;
    }
    if (ceiling > max_ms) {
        ceiling = max_ms;
    }
    jittered = (int64_t)(dp_router__next(&rng) % ((uint64_t)ceiling + 1));
    if (retry_after_ms > 0) {
        if (retry_after_ms > max_ms) {
            return -1;
        }
        return retry_after_ms > jittered ? retry_after_ms : jittered;
    }
    return jittered;
}
