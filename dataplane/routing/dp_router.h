/* dp_router.h - orders a decision's route targets into the order the data
 * plane tries them, picks a model variant's strategy and computes retry
 * backoff. Pure: no state, no I/O, no allocation, so thread-safe; all
 * randomness comes from the caller's seed (splitmix64), so a seed gives one
 * answer. Called by the worker once per request and once per retry. */
#ifndef DP_ROUTER_H
#define DP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_msg.h"

typedef enum dp_strategy {
    DP_STRATEGY_ORDERED,
    DP_STRATEGY_WEIGHTED,
    DP_STRATEGY_LEAST_INFLIGHT,
    DP_STRATEGY_LOWEST_LATENCY,
    DP_STRATEGY_LOWEST_COST,
} dp_strategy;

/* dp_strategy_parse maps "ordered" (or "priority"), "weighted",
 * "least_inflight", "lowest_latency", "lowest_cost" (exact, lower case) to
 * *out and returns true; false, *out untouched, for anything else or NULL. */
bool dp_strategy_parse(const char *s, dp_strategy *out);

/* dp_strategy_name returns the static name dp_strategy_parse reads
 * ("ordered" for ORDERED); "unknown" for a value out of range. */
const char *dp_strategy_name(dp_strategy s);

/* dp_strategy_from_wire maps a decision's strategy; UNSPECIFIED and
 * unknown values are ORDERED. */
dp_strategy dp_strategy_from_wire(tg_route_strategy s);

typedef struct dp_candidate {
    size_t   index;    /* deployment index (not used for ordering) */
    uint32_t weight;   /* WEIGHTED only */
    int32_t  priority; /* order in the decision; lower is tried first */
    int64_t  inflight;
    int64_t  ttft_us;  /* moving average; 0: unknown */
    int64_t  cost;     /* price per token unit; 0: unknown */
    bool     cooldown; /* circuit open: excluded unless probe */
    bool     probe;    /* half-open, this request holds the probe claim */
    uint32_t group;    /* 0: primary model group, 1..: fallbacks in order */
} dp_candidate;

/* dp_router_order writes the attempt order into order_out (room for n
 * entries) as indices into c, and returns how many it wrote (<= n; 0 when
 * every candidate is excluded: the caller answers "no deployment
 * available").
 * - Excluded: candidates in cooldown that are not the probe. A probe
 *   candidate is ordered like any other.
 * - Groups are never mixed: every group g candidate precedes every group
 *   g+1 candidate, so fallbacks come only after the primary is exhausted.
 * - Within a group: ORDERED by priority; LEAST_INFLIGHT by inflight;
 *   LOWEST_LATENCY by ttft_us, an unknown ttft (0) first so a new
 *   deployment gets measured (every request until its first sample lands
 *   goes there first); LOWEST_COST by cost, unknown (0) last. Ties break
 *   by priority, then by position in c. WEIGHTED is a weighted random
 *   permutation drawn without replacement from rand_seed; a weight-0
 *   candidate is excluded, unless every candidate of its group has weight
 *   0, in which case they are drawn as if all had weight 1.
 * Borrows: c until return. */
size_t dp_router_order(const dp_candidate *c, size_t n, dp_strategy s,
                       uint64_t rand_seed, size_t *order_out);

/* dp_router_variant strips an OpenRouter-style variant suffix: "m:floor"
 * (LOWEST_COST) or "m:nitro" (LOWEST_LATENCY) writes "m" into base, the
 * strategy into *forced (if forced is not NULL) and returns true.
 * Otherwise (no suffix, or nothing before it) it copies model into base and
 * returns false with *forced untouched. If the name does not fit in cap
 * (TG_MODEL_MAX always fits a model name) base is "" (when cap > 0) and it
 * returns false. */
bool dp_router_variant(const char *model, char *base, size_t cap,
                       dp_strategy *forced);

/* dp_router_backoff_ms returns how long to wait before retry number
 * attempt (0 for the first retry): a uniform random value in
 * [0, min(base_ms * 2^attempt, max_ms)] ("full jitter").
 * retry_after_ms > 0 (the provider's Retry-After) is honoured: the result
 * is max(retry_after_ms, jittered); but a Retry-After above max_ms returns
 * -1, meaning "do not retry this deployment now, fall back to the next".
 * base_ms <= 0 gives 0 (plus Retry-After); max_ms < 0 counts as 0. */
int64_t dp_router_backoff_ms(uint32_t attempt, int64_t base_ms, int64_t max_ms,
                             int64_t retry_after_ms, uint64_t rand_seed);

#endif
