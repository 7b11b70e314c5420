/* dataplane.router - the attempt order a request sees: each strategy's
 * order, fallback groups never mixed in, cooled-down deployments left out,
 * weighted picks in proportion to weight; model variants; retry backoff
 * bounds and Retry-After. */
#include <string.h>

#include "dp_router.h"
#include "tg_unit.h"

/* cand fills a candidate at position i with priority i. */
static dp_candidate
cand(size_t i, uint32_t group)
{
    dp_candidate c = {0};

    c.index    = 100 + i;
    c.priority = (int32_t)i;
    c.weight   = 1;
    c.group    = group;
    return c;
}

static void
test_parse_and_names(void)
{
    static const char *names[] = {"ordered", "weighted", "least_inflight",
                                  "lowest_latency", "lowest_cost"};
    dp_strategy        s       = DP_STRATEGY_WEIGHTED;

    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_TRUE(dp_strategy_parse(names[i], &s));
        CU_ASSERT_EQUAL(s, (dp_strategy)i);
        CU_ASSERT_STRING_EQUAL(dp_strategy_name(s), names[i]);
    }
    s = DP_STRATEGY_WEIGHTED;
    CU_ASSERT_TRUE(dp_strategy_parse("priority", &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_ORDERED);
    s = DP_STRATEGY_WEIGHTED;
    CU_ASSERT_FALSE(dp_strategy_parse("Weighted", &s));
    CU_ASSERT_FALSE(dp_strategy_parse("", &s));
    CU_ASSERT_FALSE(dp_strategy_parse(NULL, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_WEIGHTED);
    CU_ASSERT_STRING_EQUAL(dp_strategy_name((dp_strategy)99), "unknown");
    CU_ASSERT_EQUAL(dp_strategy_from_wire(TG_ROUTE_UNSPECIFIED),
                    DP_STRATEGY_ORDERED);
    CU_ASSERT_EQUAL(dp_strategy_from_wire(TG_ROUTE_LOWEST_COST),
                    DP_STRATEGY_LOWEST_COST);
    CU_ASSERT_EQUAL(dp_strategy_from_wire(TG_ROUTE_WEIGHTED),
                    DP_STRATEGY_WEIGHTED);
}

static void
test_ordered_keeps_priority(void)
{
    dp_candidate c[4];
    size_t       o[4];

    /* given out of order; priorities say 2, 0, 3, 1 */
    for (size_t i = 0; i < 4; i++) {
        c[i] = cand(i, 0);
    }
    c[0].priority = 2;
    c[1].priority = 0;
    c[2].priority = 3;
    c[3].priority = 1;
    c[1].inflight = 50; /* ignored by ORDERED */
    CU_ASSERT_EQUAL(dp_router_order(c, 4, DP_STRATEGY_ORDERED, 7, o), 4);
    CU_ASSERT_EQUAL(o[0], 1);
    CU_ASSERT_EQUAL(o[1], 3);
    CU_ASSERT_EQUAL(o[2], 0);
    CU_ASSERT_EQUAL(o[3], 2);
    CU_ASSERT_EQUAL(dp_router_order(c, 0, DP_STRATEGY_ORDERED, 7, o), 0);
}

static void
test_least_inflight(void)
{
    dp_candidate c[4];
    size_t       o[4];

    for (size_t i = 0; i < 4; i++) {
        c[i] = cand(i, 0);
    }
    c[0].inflight = 5;
    c[1].inflight = 2;
    c[2].inflight = 9;
    c[3].inflight = 2; /* ties with 1: priority 1 < 3 goes first */
    CU_ASSERT_EQUAL(dp_router_order(c, 4, DP_STRATEGY_LEAST_INFLIGHT, 0, o), 4);
    CU_ASSERT_EQUAL(o[0], 1);
    CU_ASSERT_EQUAL(o[1], 3);
    CU_ASSERT_EQUAL(o[2], 0);
    CU_ASSERT_EQUAL(o[3], 2);
}

static void
test_lowest_latency_measures_unknown_first(void)
{
    dp_candidate c[5];
    size_t       o[5];

    for (size_t i = 0; i < 5; i++) {
        c[i] = cand(i, 0);
    }
    c[0].ttft_us = 300000;
    c[1].ttft_us = 0; /* unknown: tried first to get a sample */
    c[2].ttft_us = 120000;
    c[3].ttft_us = 0;
    c[4].ttft_us = 120000;
    CU_ASSERT_EQUAL(dp_router_order(c, 5, DP_STRATEGY_LOWEST_LATENCY, 0, o), 5);
    CU_ASSERT_EQUAL(o[0], 1);
    CU_ASSERT_EQUAL(o[1], 3);
    CU_ASSERT_EQUAL(o[2], 2);
    CU_ASSERT_EQUAL(o[3], 4);
    CU_ASSERT_EQUAL(o[4], 0);
}

static void
test_lowest_cost_unknown_last(void)
{
    dp_candidate c[4];
    size_t       o[4];

    for (size_t i = 0; i < 4; i++) {
        c[i] = cand(i, 0);
    }
    c[0].cost = 0; /* unknown price: last */
    c[1].cost = 30;
    c[2].cost = 10;
    c[3].cost = 30;
    CU_ASSERT_EQUAL(dp_router_order(c, 4, DP_STRATEGY_LOWEST_COST, 0, o), 4);
    CU_ASSERT_EQUAL(o[0], 2);
    CU_ASSERT_EQUAL(o[1], 1);
    CU_ASSERT_EQUAL(o[2], 3);
    CU_ASSERT_EQUAL(o[3], 0);
}

static void
test_groups_never_mixed(void)
{
    static const dp_strategy all[] = {
        DP_STRATEGY_ORDERED, DP_STRATEGY_WEIGHTED, DP_STRATEGY_LEAST_INFLIGHT,
        DP_STRATEGY_LOWEST_LATENCY, DP_STRATEGY_LOWEST_COST};
    dp_candidate c[6];
    size_t       o[6];

    /* fallback group 2 and 1 listed first, with the most attractive stats */
    c[0]          = cand(0, 2);
    c[1]          = cand(1, 1);
    c[2]          = cand(2, 0);
    c[3]          = cand(3, 1);
    c[4]          = cand(4, 0);
    c[5]          = cand(5, 0);
    c[0].cost     = 1;
    c[0].ttft_us  = 1;
    c[1].weight   = 1000;
    c[2].inflight = 100;
    c[2].cost     = 99;
    c[2].ttft_us  = 999999;
    for (size_t k = 0; k < 5; k++) {
        for (uint64_t seed = 0; seed < 50; seed++) {
            size_t got = dp_router_order(c, 6, all[k], seed, o);
            CU_ASSERT_EQUAL(got, 6);
            for (size_t j = 1; j < got; j++) {
                CU_ASSERT_TRUE(c[o[j - 1]].group <= c[o[j]].group);
            }
            CU_ASSERT_EQUAL(c[o[0]].group, 0);
            CU_ASSERT_EQUAL(o[5], 0);
        }
    }
}

static void
test_cooldown_excluded_probe_kept(void)
{
    dp_candidate c[4];
    size_t       o[4];

    for (size_t i = 0; i < 4; i++) {
        c[i] = cand(i, i == 3 ? 1 : 0);
    }
    c[0].cooldown = true;
    c[1].cooldown = true;
    c[1].probe    = true; /* half-open and claimed: ordered normally */
    CU_ASSERT_EQUAL(dp_router_order(c, 4, DP_STRATEGY_ORDERED, 0, o), 3);
    CU_ASSERT_EQUAL(o[0], 1);
    CU_ASSERT_EQUAL(o[1], 2);
    CU_ASSERT_EQUAL(o[2], 3);
    for (size_t i = 0; i < 4; i++) {
        c[i].cooldown = true;
        c[i].probe    = false;
    }
    CU_ASSERT_EQUAL(dp_router_order(c, 4, DP_STRATEGY_WEIGHTED, 0, o), 0);
}

static void
test_weighted_first_pick_follows_weights(void)
{
    dp_candidate c[4];
    size_t       o[4];
    size_t       first[4] = {0};
    const size_t runs     = 10000;

    /* weights 1:3:6 and a weight-0 deployment; a fallback group */
    for (size_t i = 0; i < 4; i++) {
        c[i] = cand(i, 0);
    }
    c[0].weight = 1;
    c[1].weight = 0;
    c[2].weight = 3;
    c[3].weight = 6;
    for (uint64_t seed = 0; seed < runs; seed++) {
        size_t got = dp_router_order(c, 4, DP_STRATEGY_WEIGHTED, seed, o);
        CU_ASSERT_EQUAL_FATAL(got, 3); /* weight 0 is never chosen */
        first[o[0]]++;
        for (size_t j = 0; j < got; j++) {
            CU_ASSERT_NOT_EQUAL(o[j], 1);
        }
        /* a permutation: every positive-weight candidate exactly once */
        CU_ASSERT_EQUAL(o[0] + o[1] + o[2], 0 + 2 + 3);
        CU_ASSERT_TRUE(o[0] != o[1] && o[1] != o[2] && o[0] != o[2]);
    }
    CU_ASSERT_EQUAL(first[1], 0);
    /* expected 10%, 30%, 60%: within 2 points (the sd is under 0.5) */
    CU_ASSERT_TRUE(first[0] > 800 && first[0] < 1200);
    CU_ASSERT_TRUE(first[2] > 2800 && first[2] < 3200);
    CU_ASSERT_TRUE(first[3] > 5800 && first[3] < 6200);

    /* same seed, same order */
    {
        size_t a[4], b[4];
        dp_router_order(c, 4, DP_STRATEGY_WEIGHTED, 42, a);
        dp_router_order(c, 4, DP_STRATEGY_WEIGHTED, 42, b);
        CU_ASSERT_EQUAL(memcmp(a, b, 3 * sizeof(a[0])), 0);
    }
}

static void
test_weighted_zero_weights(void)
{
    dp_candidate c[5];
    size_t       o[5];
    size_t       first[2] = {0};

    /* group 0 all weight 0: drawn uniformly; group 1 has a weight-0 member
     * between two others, which is dropped and the gap closed */
    for (size_t i = 0; i < 5; i++) {
        c[i] = cand(i, i < 2 ? 0 : 1);
    }
    c[0].weight = 0;
    c[1].weight = 0;
    c[2].weight = 5;
    c[3].weight = 0;
    c[4].weight = 5;
    for (uint64_t seed = 0; seed < 2000; seed++) {
        CU_ASSERT_EQUAL_FATAL(
            dp_router_order(c, 5, DP_STRATEGY_WEIGHTED, seed, o), 4);
        CU_ASSERT_TRUE(o[0] < 2 && o[1] < 2 && o[0] != o[1]);
        CU_ASSERT_TRUE((o[2] == 2 && o[3] == 4) || (o[2] == 4 && o[3] == 2));
        first[o[0]]++;
    }
    CU_ASSERT_TRUE(first[0] > 850 && first[1] > 850);
}

static void
test_variants(void)
{
    char        base[16];
    dp_strategy s = DP_STRATEGY_ORDERED;

    CU_ASSERT_TRUE(dp_router_variant("gpt-4o:floor", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, "gpt-4o");
    CU_ASSERT_EQUAL(s, DP_STRATEGY_LOWEST_COST);
    CU_ASSERT_TRUE(dp_router_variant("llama:nitro", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, "llama");
    CU_ASSERT_EQUAL(s, DP_STRATEGY_LOWEST_LATENCY);
    CU_ASSERT_TRUE(dp_router_variant("m:nitro", base, sizeof(base), NULL));
    CU_ASSERT_STRING_EQUAL(base, "m");

    s = DP_STRATEGY_WEIGHTED;
    CU_ASSERT_FALSE(dp_router_variant("gpt-4o", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, "gpt-4o");
    CU_ASSERT_FALSE(dp_router_variant(":floor", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, ":floor");
    CU_ASSERT_FALSE(dp_router_variant("a:floor:x", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, "a:floor:x");
    CU_ASSERT_FALSE(dp_router_variant("x:Floor", base, sizeof(base), &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_WEIGHTED);
    /* too long for base: empty, false */
    CU_ASSERT_FALSE(
        dp_router_variant("a-very-long-model-name", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, "");
    /* exactly fits once the suffix is gone */
    CU_ASSERT_TRUE(
        dp_router_variant("fifteen-chars-x:floor", base, sizeof(base), &s));
    CU_ASSERT_STRING_EQUAL(base, "fifteen-chars-x");
}

static void
test_backoff_bounds(void)
{
    int64_t max_seen = 0;

    for (uint32_t attempt = 0; attempt < 6; attempt++) {
        int64_t ceiling = 100LL << attempt;
        int64_t hi      = 0;
        if (ceiling > 2000) {
            ceiling = 2000;
        }
        for (uint64_t seed = 0; seed < 2000; seed++) {
            int64_t d = dp_router_backoff_ms(attempt, 100, 2000, 0, seed);
            CU_ASSERT_TRUE(d >= 0 && d <= ceiling);
            if (d > hi) {
                hi = d;
            }
        }
        /* full jitter reaches near the top of its range */
        CU_ASSERT_TRUE(hi > ceiling * 9 / 10);
        if (hi > max_seen) {
            max_seen = hi;
        }
    }
    CU_ASSERT_TRUE(max_seen <= 2000);
    /* huge attempt numbers saturate instead of overflowing */
    for (uint64_t seed = 0; seed < 100; seed++) {
        int64_t d = dp_router_backoff_ms(4000000000u, 100, 5000, 0, seed);
        CU_ASSERT_TRUE(d >= 0 && d <= 5000);
    }
    CU_ASSERT_EQUAL(dp_router_backoff_ms(3, 0, 1000, 0, 1), 0);
    CU_ASSERT_EQUAL(dp_router_backoff_ms(3, 100, 0, 0, 1), 0);
    CU_ASSERT_EQUAL(dp_router_backoff_ms(3, 100, -5, 0, 1), 0);
}

static void
test_backoff_retry_after(void)
{
    for (uint64_t seed = 0; seed < 500; seed++) {
        /* Retry-After is a floor ... */
        int64_t d = dp_router_backoff_ms(2, 100, 5000, 1500, seed);
        CU_ASSERT_TRUE(d >= 1500 && d <= 5000);
        /* ... larger jitter still wins (ceiling 3200 here) */
        d = dp_router_backoff_ms(5, 100, 5000, 1, seed);
        CU_ASSERT_TRUE(d >= 1 && d <= 3200);
    }
    CU_ASSERT_EQUAL(dp_router_backoff_ms(0, 100, 5000, 5000, 3), 5000);
    /* Retry-After above the cap: do not wait, fall back */
    CU_ASSERT_EQUAL(dp_router_backoff_ms(0, 100, 5000, 5001, 3), -1);
    CU_ASSERT_EQUAL(dp_router_backoff_ms(0, 100, 0, 1, 3), -1);
    /* no Retry-After (0 or negative): plain jitter */
    CU_ASSERT_TRUE(dp_router_backoff_ms(0, 100, 5000, -1, 3) <= 100);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"parse_and_names", test_parse_and_names},
        {"ordered_keeps_priority", test_ordered_keeps_priority},
        {"least_inflight", test_least_inflight},
        {"lowest_latency_measures_unknown_first",
         test_lowest_latency_measures_unknown_first},
        {"lowest_cost_unknown_last", test_lowest_cost_unknown_last},
        {"groups_never_mixed", test_groups_never_mixed},
        {"cooldown_excluded_probe_kept", test_cooldown_excluded_probe_kept},
        {"weighted_first_pick_follows_weights",
         test_weighted_first_pick_follows_weights},
        {"weighted_zero_weights", test_weighted_zero_weights},
        {"variants", test_variants},
        {"backoff_bounds", test_backoff_bounds},
        {"backoff_retry_after", test_backoff_retry_after},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.router", cases);
}
