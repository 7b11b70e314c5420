/* test_limits.c - pdp.limits: the sliding window, concurrency slots, token
 * correction, expiry and exactness under threads; what a client sees as
 * 429s and x-ratelimit-* headers comes from here. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_alerts.h"
#include "pdp_limits.h"
#include "tg_buf.h"
#include "tg_time.h"
#include "tg_unit.h"

#define T0 1800000000000LL /* a whole second, far from 0 */

static pdp_limits *
mk(int64_t ttl_ms)
{
    pdp_limits *l = NULL;

    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&l, ttl_ms), TG_OK);
    return l;
}

static pdp_limits_result
chk(pdp_limits *l, const pdp_limits_req *q, int64_t tokens, int64_t now)
{
    pdp_limits_result r;

    pdp_limits_check(l, q, 1, tokens, true, now, &r);
    return r;
}

/* chk_done is chk followed by the request's usage report. */
static pdp_limits_what
chk_done(pdp_limits *l, const pdp_limits_req *q, int64_t tokens, int64_t now)
{
    pdp_limits_result r = chk(l, q, tokens, now);

    if (r.denied == PDP_LIMITS_OK) {
        CU_ASSERT_TRUE(pdp_limits_release(l, r.reservation_id, tokens, now));
    }
    return r.denied;
}

static void
test_window_slides(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"rl", "key-a", 3, 0, 0};
    pdp_limits_req    other = {"rl", "key-b", 3, 0, 0};
    pdp_limits_result r;

    r = chk(l, &q, 10, T0);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.requests.limit, 3);
    CU_ASSERT_EQUAL(r.requests.remaining, 2);
    /* The oldest request leaves the window 60 s after it came. */
    CU_ASSERT_EQUAL(r.requests.reset_ms, 60000);
    CU_ASSERT_EQUAL(r.tokens.limit, 0); /* no tpm: no tokens state */
    /* Every admitted request is held until its usage report (so a restart
     * counts it again and its tokens get corrected). */
    CU_ASSERT_STRING_NOT_EQUAL(r.reservation_id, "");
    CU_ASSERT_EQUAL(chk(l, &q, 10, T0 + 10000).denied, PDP_LIMITS_OK);
    r = chk(l, &q, 10, T0 + 20000);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.requests.remaining, 0);
    r = chk(l, &q, 10, T0 + 30500);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(r.limit, 3);
    CU_ASSERT_EQUAL(r.used, 3);
    CU_ASSERT_EQUAL(r.retry_ms, 29500); /* the first leaves at T0+60 s */
    CU_ASSERT_EQUAL(r.requests.remaining, 0);
    CU_ASSERT_EQUAL(r.requests.reset_ms, 29500);
    /* Another scope value has its own window. */
    CU_ASSERT_EQUAL(chk(l, &other, 10, T0 + 30500).denied, PDP_LIMITS_OK);
    /* A denied request counted nothing: one slot frees at T0+60 s. */
    CU_ASSERT_EQUAL(chk(l, &q, 10, T0 + 59999).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(chk(l, &q, 10, T0 + 60000).denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk(l, &q, 10, T0 + 60001).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(chk(l, &q, 10, T0 + 70000).denied, PDP_LIMITS_OK);
    pdp_limits_destroy(l);
}

static void
test_concurrency(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"conc", "t1", 0, 0, 2};
    pdp_limits_result a = chk(l, &q, 5, T0);
    pdp_limits_result b = chk(l, &q, 5, T0);
    pdp_limits_result c = chk(l, &q, 5, T0);

    CU_ASSERT_EQUAL(a.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(b.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(c.denied, PDP_LIMITS_CONCURRENT);
    CU_ASSERT_EQUAL(c.limit, 2);
    CU_ASSERT_STRING_EQUAL(c.reservation_id, "");
    CU_ASSERT_NOT_EQUAL(strcmp(a.reservation_id, b.reservation_id), 0);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 2);
    CU_ASSERT_TRUE(pdp_limits_release(l, a.reservation_id, 5, T0 + 1));
    /* Released once only. */
    CU_ASSERT_FALSE(pdp_limits_release(l, a.reservation_id, 5, T0 + 1));
    CU_ASSERT_EQUAL(chk(l, &q, 5, T0 + 2).denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk(l, &q, 5, T0 + 3).denied, PDP_LIMITS_CONCURRENT);
    pdp_limits_destroy(l);
}

static void
test_token_correction(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"tpm", "k", 0, 1000, 0};
    pdp_limits_result a = chk(l, &q, 600, T0);
    pdp_limits_result b;

    CU_ASSERT_EQUAL(a.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(a.tokens.remaining, 400);
    CU_ASSERT_NOT_EQUAL(a.reservation_id[0], '\0');
    b = chk(l, &q, 600, T0 + 100);
    CU_ASSERT_EQUAL(b.denied, PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(b.tokens.remaining, 400);
    CU_ASSERT_EQUAL(b.retry_ms, 59900);
    /* The answer used 100 tokens, not 600: room for the second. */
    CU_ASSERT_TRUE(pdp_limits_release(l, a.reservation_id, 100, T0 + 200));
    b = chk(l, &q, 600, T0 + 300);
    CU_ASSERT_EQUAL(b.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(b.tokens.remaining, 300);
    /* More than the whole limit never fits. */
    CU_ASSERT_EQUAL(chk(l, &q, 1001, T0 + 120000).denied, PDP_LIMITS_TOKENS);
    pdp_limits_destroy(l);
}

static void
test_expiry(void)
{
    pdp_limits       *l = mk(5000);
    pdp_limits_req    q = {"conc", "t", 0, 0, 1};
    pdp_limits_result a = chk(l, &q, 1, T0);

    CU_ASSERT_EQUAL(a.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk(l, &q, 1, T0 + 4000).denied, PDP_LIMITS_CONCURRENT);
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 4999), 0);
    /* A check past the TTL sweeps by itself. */
    CU_ASSERT_EQUAL(chk(l, &q, 1, T0 + 6000).denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 1);
    CU_ASSERT_FALSE(pdp_limits_release(l, a.reservation_id, 1, T0 + 6000));
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 20000), 1);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0);
    pdp_limits_destroy(l);
}

static void
test_all_or_nothing(void)
{
    pdp_limits       *l    = mk(900000);
    pdp_limits_req    q[2] = {{"a", "k", 10, 0, 0}, {"b", "k", 1, 0, 0}};
    pdp_limits_result r;

    pdp_limits_check(l, q, 2, 1, true, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.requests.remaining, 0); /* the most constraining */
    pdp_limits_check(l, q, 2, 1, true, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(r.denied_rule, 1);
    /* Rule a counted only the admitted request. */
    pdp_limits_check(l, q, 1, 1, true, T0, &r);
    CU_ASSERT_EQUAL(r.requests.remaining, 8);
    /* Audit (reserve false) never denies by itself but counts. */
    pdp_limits_check(l, &q[1], 1, 1, false, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_STRING_EQUAL(r.reservation_id, "");
    pdp_limits_destroy(l);
}

typedef struct {
    pdp_limits *l;
    atomic_int *allowed;
    int         n;
} race_arg;

static void *
race_thread(void *p)
{
    race_arg         *a    = p;
    pdp_limits_req    q[2] = {{"rpm", "tenant-x", 100, 0, 0},
                              {"conc", "tenant-x", 0, 0, 1000}};
    pdp_limits_result r;

    for (int i = 0; i < a->n; i++) {
        pdp_limits_check(a->l, q, 2, 10, true, T0 + i % 50, &r);
        if (r.denied == PDP_LIMITS_OK) {
            atomic_fetch_add(a->allowed, 1);
            pdp_limits_release(a->l, r.reservation_id, 10, T0 + 50);
        }
    }
    return NULL;
}

static void
test_exact_under_threads(void)
{
    pdp_limits *l = mk(900000);
    atomic_int  allowed;
    pthread_t   th[8];
    race_arg    a;

    atomic_init(&allowed, 0);
    a.l       = l;
    a.allowed = &allowed;
    a.n       = 5000;
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_thread, &a),
                              0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
    }
    CU_ASSERT_EQUAL(atomic_load(&allowed), 100);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0);
    pdp_limits_destroy(l);
}

static void
test_format_reset(void)
{
    char b[32];

    tg_format_reset(0, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "0s");
    tg_format_reset(20, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "20ms");
    tg_format_reset(1000, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "1s");
    tg_format_reset(16001, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "17s");
    tg_format_reset(360000, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "6m0s");
    tg_format_reset(3723000, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "1h2m3s");
}

/* ---- budgets ------------------------------------------------------------- */

/* gpt-4o-like prices: $2.50 in, $10 out per 1M tokens. */
static pdp_limits_cost
cost_of(int64_t prompt, int64_t max_out)
{
    pdp_limits_cost c = {2500000, 10000000, prompt, max_out};

    return c;
}

static void
test_budget_clamp_math(void)
{
    pdp_limits_cost c = cost_of(1000, 1000);

    /* 1000 x 2.5 + 1000 x 10 = 12500 micro-USD, exact. */
    CU_ASSERT_EQUAL(pdp_limits_worst(&c, 1000), 12500);
    CU_ASSERT_EQUAL(pdp_limits_worst(&c, 0), 2500);
    CU_ASSERT_EQUAL(pdp_limits_worst(&c, 3), 2530);
    /* 1001 prompt tokens: 2502.5 micro-USD, rounded up. */
    c.prompt = 1001;
    CU_ASSERT_EQUAL(pdp_limits_worst(&c, 0), 2503);
    c.prompt = 1000;
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, 12500), 1000);
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, 100000), 1000); /* at most max_out */
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, 7500), 500);
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, 7499), 499);
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, 2500), 0);
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, 2499), -1);
    CU_ASSERT_EQUAL(pdp_limits_fit(&c, -5), -1);
    /* The fit is the largest k whose worst case fits. */
    for (int64_t rem = 2500; rem < 13000; rem += 37) {
        int64_t k = pdp_limits_fit(&c, rem);
        CU_ASSERT(pdp_limits_worst(&c, k) <= rem);
        if (k < c.max_out) {
            CU_ASSERT(pdp_limits_worst(&c, k + 1) > rem);
        }
    }
}

static void
test_budget_clamp_and_deny(void)
{
    pdp_limits       *l    = mk(900000);
    pdp_limits_budget den  = {"cap", "t1", 0, T0, 0, 30000, false, 0, 0, {0}};
    pdp_limits_budget clm  = {"clamp", "t1", 0, T0, 0, 30000, true, 0, 0, {0}};
    pdp_limits_cost   c    = cost_of(1000, 1000);
    pdp_limits_result r;
    int64_t           spent;
    int64_t           resv;

    /* deny: two worst cases of 12500 fit in 30000, the third does not. */
    pdp_limits_check_budgets(l, NULL, NULL, 0, &den, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.clamp_tokens, 1000);
    CU_ASSERT_EQUAL(r.b_worst, 12500); /* what the allow reserved */
    CU_ASSERT_STRING_NOT_EQUAL(r.reservation_id, "");
    pdp_limits_check_budgets(l, NULL, NULL, 0, &den, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    pdp_limits_check_budgets(l, NULL, NULL, 0, &den, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(r.limit, 30000);
    CU_ASSERT_EQUAL(r.b_reserved, 25000);
    CU_ASSERT_EQUAL(r.b_worst, 12500);
    /* clamp: 30000 and 17500 fit 1000 tokens; then 5000 fits 250. */
    pdp_limits_check_budgets(l, NULL, NULL, 0, &clm, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.clamp_tokens, 1000);
    pdp_limits_check_budgets(l, NULL, NULL, 0, &clm, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.clamp_tokens, 1000);
    pdp_limits_check_budgets(l, NULL, NULL, 0, &clm, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.clamp_tokens, 250);
    CU_ASSERT_EQUAL(r.b_worst, 5000); /* the worst case at 250 tokens */
    pdp_limits_budget_state(l, &clm, &spent, &resv);
    CU_ASSERT_EQUAL(resv, 30000);
    /* Nothing left: not even 1 output token fits. */
    pdp_limits_check_budgets(l, NULL, NULL, 0, &clm, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_BUDGET);
    /* Expiry gives the reserved amounts back. */
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 900000), 5);
    pdp_limits_budget_state(l, &clm, &spent, &resv);
    CU_ASSERT_EQUAL(resv, 0);
    CU_ASSERT_EQUAL(spent, 0);
    pdp_limits_destroy(l);
}

static void
test_budget_all_or_nothing(void)
{
    pdp_limits       *l   = mk(900000);
    pdp_limits_req    rpm = {"rpm", "t1", 1, 0, 0};
    pdp_limits_budget bud = {"cap", "t1", 0, T0, 0, 25000, false, 0, 0, {0}};
    pdp_limits_cost   c   = cost_of(1000, 1000);
    pdp_limits_result r;
    int64_t           spent;
    int64_t           resv;

    pdp_limits_check_budgets(l, NULL, &rpm, 1, &bud, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    /* The rate limit denies: the budget reserves nothing. */
    pdp_limits_check_budgets(l, NULL, &rpm, 1, &bud, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_REQUESTS);
    pdp_limits_budget_state(l, &bud, &spent, &resv);
    CU_ASSERT_EQUAL(resv, 12500);
    pdp_limits_check_budgets(l, NULL, NULL, 0, &bud, 1, &c, 2000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK); /* now the budget is full */
    /* The budget denies (a minute later): the request is not counted. */
    pdp_limits_check_budgets(l, NULL, &rpm, 1, &bud, 1, &c, 2000, T0 + 61000, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_BUDGET);
    pdp_limits_check(l, &rpm, 1, 0, true, T0 + 61000, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    pdp_limits_destroy(l);
}

typedef struct {
    pdp_limits *l;
    atomic_int *allowed;
    atomic_llong *settled;
    int         n;
} bud_arg;

#define BUD_LIMIT (10 * 12500 + 7000) /* about 10 worst cases */

static void *
bud_thread(void *p)
{
    bud_arg             *a    = p;
    pdp_limits_req       q    = {"rpm", "tenant-x", 1000000, 0, 0};
    pdp_limits_budget    bud  = {"cap", "tenant-x", 0, T0, 0, BUD_LIMIT,
                                 false, 0, 0, {0}};
    pdp_limits_cost      c    = cost_of(1000, 1000);
    pdp_limits_spend_key keys[PDP_LIMITS_BUDGETS_MAX];
    pdp_limits_result    r;

    for (int i = 0; i < a->n; i++) {
        pdp_limits_check_budgets(a->l, NULL, &q, 1, &bud, 1, &c, 2000, T0 + i, &r);
        if (r.denied == PDP_LIMITS_OK) {
            /* The actual cost is at most the worst case. */
            int64_t  actual = 2500 + (i % 7) * 1000;
            uint32_t n = pdp_limits_budget_keys(a->l, r.reservation_id, keys,
                                                PDP_LIMITS_BUDGETS_MAX);
            CU_ASSERT_EQUAL(n, 1);
            atomic_fetch_add(a->allowed, 1);
            atomic_fetch_add(a->settled, actual);
            CU_ASSERT_TRUE(pdp_limits_settle(a->l, r.reservation_id, 1100,
                                             actual, keys, n, T0 + i));
        }
    }
    return NULL;
}

static void
test_budget_exact_under_threads(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_budget bud = {"cap", "tenant-x", 0, T0, 0, BUD_LIMIT, false, 0, 0, {0}};
    atomic_int        allowed;
    atomic_llong      settled;
    pthread_t         th[8];
    bud_arg           a;
    int64_t           spent;
    int64_t           resv;

    atomic_init(&allowed, 0);
    atomic_init(&settled, 0);
    a.l       = l;
    a.allowed = &allowed;
    a.settled = &settled;
    a.n       = 3000;
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, bud_thread, &a), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
    }
    pdp_limits_budget_state(l, &bud, &spent, &resv);
    CU_ASSERT_EQUAL(resv, 0);
    CU_ASSERT_EQUAL(spent, atomic_load(&settled));
    CU_ASSERT(spent <= BUD_LIMIT);
    /* Everything that fit was admitted: what is left is below a worst case. */
    CU_ASSERT(BUD_LIMIT - spent < 12500);
    CU_ASSERT(atomic_load(&allowed) >= 10);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0);
    pdp_limits_destroy(l);
}

static void
test_budget_windows_and_load(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_budget day1 = {"cap", "k", 0, T0, 0, 1000, false, 0, 0, {0}};
    pdp_limits_budget day2 = {"cap", "k", 0, T0 + 86400000, 0, 1000, false, 0, 0, {0}};
    pdp_limits_budget roll = {"r", "k", 3, T0, 3, 1000, false, 0, 0, {0}};
    int64_t           spent;
    int64_t           resv;

    pdp_limits_budget_load(l, "cap", "k", 0, T0, 700);
    pdp_limits_budget_state(l, &day1, &spent, &resv);
    CU_ASSERT_EQUAL(spent, 700);
    pdp_limits_budget_state(l, &day2, &spent, &resv);
    CU_ASSERT_EQUAL(spent, 0); /* a new window starts empty */
    /* rolling:3h sums the last three hourly buckets. */
    pdp_limits_budget_load(l, "r", "k", 3, T0 - 3 * 3600000, 1);
    pdp_limits_budget_load(l, "r", "k", 3, T0 - 2 * 3600000, 10);
    pdp_limits_budget_load(l, "r", "k", 3, T0 - 3600000, 100);
    pdp_limits_budget_load(l, "r", "k", 3, T0, 1000);
    pdp_limits_budget_state(l, &roll, &spent, &resv);
    CU_ASSERT_EQUAL(spent, 1110);
    pdp_limits_destroy(l);
}

/* Threshold crossing: before < t% of limit <= after, exactly. */
static void
test_thresholds_crossed(void)
{
    const uint8_t thr[2] = {50, 80};
    uint8_t       out[PDP_LIMITS_THRESHOLDS_MAX];

    CU_ASSERT_EQUAL(pdp_limits_crossed(0, 499999, 1000000, thr, 2, out), 0);
    CU_ASSERT_EQUAL(pdp_limits_crossed(499999, 500000, 1000000, thr, 2, out),
                    1);
    CU_ASSERT_EQUAL(out[0], 50);
    /* Already at 50 %: not crossed again. */
    CU_ASSERT_EQUAL(pdp_limits_crossed(500000, 700000, 1000000, thr, 2, out),
                    0);
    CU_ASSERT_EQUAL(pdp_limits_crossed(0, 2000000, 1000000, thr, 2, out), 2);
    CU_ASSERT_EQUAL(out[0], 50);
    CU_ASSERT_EQUAL(out[1], 80);
    CU_ASSERT_EQUAL(pdp_limits_crossed(799999, 800000, 1000000, thr, 2, out),
                    1);
    CU_ASSERT_EQUAL(out[0], 80);
    /* No cost, no limit: nothing. */
    CU_ASSERT_EQUAL(pdp_limits_crossed(800000, 800000, 1000000, thr, 2, out),
                    0);
    CU_ASSERT_EQUAL(pdp_limits_crossed(0, 900000, 0, thr, 2, out), 0);
    /* An odd limit: 50 % of 3 micro-USD is 1.5, crossed by 1 -> 2. */
    CU_ASSERT_EQUAL(pdp_limits_crossed(1, 2, 3, thr, 1, out), 1);
    CU_ASSERT_EQUAL(pdp_limits_crossed(0, 1, 3, thr, 1, out), 0);
}

static void
test_alerts_helpers(void)
{
    pdp_alert al;
    tg_buf    b;
    char      h[128];

    CU_ASSERT_EQUAL(pdp_alerts_backoff_ms(1), 500);
    CU_ASSERT_EQUAL(pdp_alerts_backoff_ms(2), 1000);
    CU_ASSERT_EQUAL(pdp_alerts_backoff_ms(4), 4000);
    CU_ASSERT_TRUE(pdp_alerts_retryable(false, 0));
    CU_ASSERT_TRUE(pdp_alerts_retryable(true, 500));
    CU_ASSERT_TRUE(pdp_alerts_retryable(true, 429));
    CU_ASSERT_FALSE(pdp_alerts_retryable(true, 400));
    CU_ASSERT_FALSE(pdp_alerts_retryable(true, 302));
    pdp_alerts_redact("https://u:secret@hooks.example:8443/x?token=t", h,
                      sizeof(h));
    CU_ASSERT_STRING_EQUAL(h, "https://hooks.example:8443");
    memset(&al, 0, sizeof(al));
    snprintf(al.rule, sizeof(al.rule), "team-\"m\"");
    snprintf(al.scope, sizeof(al.scope), "tenant");
    snprintf(al.scope_value, sizeof(al.scope_value), "acme");
    snprintf(al.window, sizeof(al.window), "monthly");
    al.window_start_ms = 1772319600000LL; /* 2026-02-28T23:00:00Z */
    al.threshold       = 80;
    al.limit_micro     = 1000000;
    al.spent_micro     = 812345;
    al.bundle_revision = 3;
    al.at_ms           = 1772323200000LL;
    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL(pdp_alerts_json(&al, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&b, "", 1), TG_OK);
    CU_ASSERT_STRING_EQUAL(
        (const char *)b.data,
        "{\"type\":\"budget.threshold\",\"rule\":\"team-\\\"m\\\"\","
        "\"scope\":\"tenant\",\"scope_value\":\"acme\",\"window\":"
        "\"monthly\",\"window_start\":\"2026-02-28T23:00:00Z\","
        "\"threshold_percent\":80,\"limit_usd\":\"1.000000\","
        "\"spent_usd\":\"0.812345\",\"bundle_revision\":3,"
        "\"at\":\"2026-03-01T00:00:00Z\"}");
    tg_buf_fini(&b);
}

/* ---- snapshot and restore: what a restarted PDP remembers ---------- */

typedef struct snap_fixture {
    pdp_limits_req    rpm;  /* rpm 5, 3 used */
    pdp_limits_req    tpm;  /* tpm 1000: 400 settled + 200 reserved */
    pdp_limits_req    conc; /* 1 in flight, its slot held */
    pdp_limits_budget bud;  /* 4000 settled (the store's) + 3000 reserved */
    pdp_limits_cost   cost;
    char              tok_id[TG_REQUEST_ID_MAX];
    char              conc_id[TG_REQUEST_ID_MAX];
    char              bud_id[TG_REQUEST_ID_MAX];
} snap_fixture;

static void
snap_fixture_init(snap_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->rpm  = (pdp_limits_req){"rpm5", "key-a", 5, 0, 0};
    f->tpm  = (pdp_limits_req){"tpm", "key-a", 0, 1000, 0};
    f->conc = (pdp_limits_req){"conc", "t1", 0, 0, 1};
    f->bud  = (pdp_limits_budget){"cap", "t1", 0, T0, 0, 9000, false, 1, 2,
                                  {50, 80}};
    /* 1 micro-USD a token: the worst case is 1000 + 2000 = 3000. */
    f->cost = (pdp_limits_cost){1000000, 1000000, 1000, 2000};
}

/* snap_source builds the state of the fixture in a running PDP and
 * returns its snapshot at T0 + 5 s. */
static void
snap_source(snap_fixture *f, tg_buf *out)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    old = {"old", "key-z", 5, 0, 0};
    pdp_limits_result r;

    pdp_limits_budget_load(l, "cap", "t1", 0, T0, 4000);
    CU_ASSERT_EQUAL(chk_done(l, &old, 1, T0 - 120000), PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk_done(l, &f->rpm, 1, T0), PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk_done(l, &f->rpm, 1, T0 + 1000), PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk_done(l, &f->rpm, 1, T0 + 2000), PDP_LIMITS_OK);
    r = chk(l, &f->tpm, 300, T0);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_limits_release(l, r.reservation_id, 400, T0 + 100));
    r = chk(l, &f->tpm, 200, T0);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    memcpy(f->tok_id, r.reservation_id, sizeof(f->tok_id));
    r = chk(l, &f->conc, 1, T0 + 3000);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    memcpy(f->conc_id, r.reservation_id, sizeof(f->conc_id));
    pdp_limits_check_budgets(l, NULL, NULL, 0, &f->bud, 1, &f->cost, 3000,
                             T0 + 4000, &r);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    memcpy(f->bud_id, r.reservation_id, sizeof(f->bud_id));
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 3);
    CU_ASSERT_EQUAL(pdp_limits_snapshot(l, T0 + 5000, out), TG_OK);
    CU_ASSERT_EQUAL(out->data[0], PDP_LIMITS_SNAPSHOT_VERSION);
    pdp_limits_destroy(l);
}

static void
test_snapshot_restore(void)
{
    snap_fixture         f;
    tg_buf               b;
    pdp_limits          *l = mk(900000);
    pdp_limits_result    r;
    pdp_limits_spend_key keys[PDP_LIMITS_BUDGETS_MAX];
    int64_t              spent;
    int64_t              reserved;
    uint32_t             nwin;
    uint32_t             nres;
    uint64_t             changes;
    int64_t              now = T0 + 5000;

    snap_fixture_init(&f);
    tg_buf_init(&b, 0);
    snap_source(&f, &b);
    /* What the PDP does at start: settled spend from the store, then the
     * snapshot. Neither counts the other's part. */
    pdp_limits_budget_load(l, "cap", "t1", 0, T0, 4000);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_restore(l, b.data, b.len, now), TG_OK);
    pdp_limits_restored(l, &nwin, &nres);
    CU_ASSERT_EQUAL(nwin, 3); /* rpm5, tpm, conc; "old" had left the window */
    CU_ASSERT_EQUAL(nres, 3);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 3);
    pdp_limits_budget_state(l, &f.bud, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 4000);
    CU_ASSERT_EQUAL(reserved, 3000);

    /* rpm 5 with 3 used: exactly 2 more. */
    changes = pdp_limits_changes(l);
    CU_ASSERT_EQUAL(chk_done(l, &f.rpm, 1, now), PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_limits_changes(l) > changes);
    CU_ASSERT_EQUAL(chk_done(l, &f.rpm, 1, now), PDP_LIMITS_OK);
    r = chk(l, &f.rpm, 1, now);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(r.used, 5);
    CU_ASSERT_EQUAL(r.retry_ms, 55000); /* the first still leaves at T0+60s */

    /* Tokens: 400 settled + 200 still reserved. */
    r = chk(l, &f.tpm, 401, now);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(r.used, 600);
    /* The restored reservation is corrected like any other. */
    CU_ASSERT_TRUE(pdp_limits_release(l, f.tok_id, 0, now));
    CU_ASSERT_FALSE(pdp_limits_release(l, f.tok_id, 0, now));
    r = chk(l, &f.tpm, 600, now);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.tokens.remaining, 0);

    /* The slot is held by the restored reservation, freed by its id. */
    CU_ASSERT_EQUAL(chk(l, &f.conc, 1, now).denied, PDP_LIMITS_CONCURRENT);
    CU_ASSERT_TRUE(pdp_limits_release(l, f.conc_id, 1, now));
    r = chk(l, &f.conc, 1, now);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    /* New ids never collide with restored ones, even in the same ms. */
    CU_ASSERT_STRING_NOT_EQUAL(r.reservation_id, f.bud_id);
    CU_ASSERT_STRING_NOT_EQUAL(r.reservation_id, f.tok_id);
    CU_ASSERT_STRING_NOT_EQUAL(r.reservation_id, f.conc_id);

    /* The restored worst case counts against the budget: 4000 + 3000 +
     * 3000 > 9000. */
    pdp_limits_check_budgets(l, NULL, NULL, 0, &f.bud, 1, &f.cost, 3000, now, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(r.b_spent, 4000);
    CU_ASSERT_EQUAL(r.b_reserved, 3000);
    /* Its usage report settles it as before the restart. */
    CU_ASSERT_EQUAL_FATAL(pdp_limits_budget_keys(l, f.bud_id, keys, 8), 1);
    CU_ASSERT_STRING_EQUAL(keys[0].rule_id, "cap");
    CU_ASSERT_STRING_EQUAL(keys[0].scope, "t1");
    CU_ASSERT_EQUAL(keys[0].code, 0);
    CU_ASSERT_EQUAL(keys[0].start_ms, T0);
    CU_ASSERT_EQUAL(keys[0].limit, 9000);
    CU_ASSERT_EQUAL(keys[0].scope_kind, 1);
    CU_ASSERT_EQUAL(keys[0].nthr, 2);
    CU_ASSERT_EQUAL(keys[0].thr[1], 80);
    CU_ASSERT_TRUE(
        pdp_limits_settle(l, f.bud_id, 1500, 1500, keys, 1, now + 100));
    pdp_limits_budget_state(l, &f.bud, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 5500);
    CU_ASSERT_EQUAL(reserved, 0);
    pdp_limits_check_budgets(l, NULL, NULL, 0, &f.bud, 1, &f.cost, 3000, now, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK); /* 5500 + 3000 <= 9000 */
    /* Only this run's three (tpm, conc, budget) are left. */
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 3);
    tg_buf_fini(&b);
    pdp_limits_destroy(l);
}

/* A restart long after the snapshot: what left the window is gone, and
 * reservations past the TTL are not brought back. */
static void
test_snapshot_old_state_dropped(void)
{
    snap_fixture      f;
    tg_buf            b;
    pdp_limits       *l = mk(30000);
    pdp_limits       *k = mk(900000);
    int64_t           now = T0 + 61500;
    int64_t           spent;
    int64_t           reserved;
    pdp_limits_result r;

    snap_fixture_init(&f);
    tg_buf_init(&b, 0);
    snap_source(&f, &b);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_restore(l, b.data, b.len, now), TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0); /* all past the 30 s TTL */
    /* The T0 and T0+1s requests left the window; T0+2s is still in it. */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(chk(l, &f.rpm, 1, now).denied, PDP_LIMITS_OK);
    }
    CU_ASSERT_EQUAL(chk(l, &f.rpm, 1, now).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(chk(l, &f.conc, 1, now).denied, PDP_LIMITS_OK);
    pdp_limits_budget_state(l, &f.bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    /* With a longer TTL the reservations stay (slot and worst case held)
     * though their tokens left the window. */
    CU_ASSERT_EQUAL_FATAL(pdp_limits_restore(k, b.data, b.len, now), TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 3);
    CU_ASSERT_EQUAL(chk(k, &f.conc, 1, now).denied, PDP_LIMITS_CONCURRENT);
    r = chk(k, &f.tpm, 1000, now);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    /* ...and expire on the usual TTL, counted from their creation. */
    CU_ASSERT_EQUAL(pdp_limits_expire(k, T0 + 4000 + 900000), 3);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 1);
    tg_buf_fini(&b);
    pdp_limits_destroy(l);
    pdp_limits_destroy(k);
}

/* A bad snapshot is refused whole: the PDP starts with empty windows. */
static void
test_snapshot_bad_refused(void)
{
    snap_fixture   f;
    tg_buf         b;
    pdp_limits    *l = mk(900000);
    int64_t        now = T0 + 5000;
    uint8_t        junk[64];
    uint32_t       nwin;
    uint32_t       nres;
    int64_t        spent;
    int64_t        reserved;

    snap_fixture_init(&f);
    tg_buf_init(&b, 0);
    snap_source(&f, &b);
    for (size_t n = 0; n < b.len; n++) {
        CU_ASSERT_EQUAL(pdp_limits_restore(l, b.data, n, now), TG_EPROTO);
    }
    /* Trailing bytes, an unknown version, garbage, nothing. */
    CU_ASSERT_EQUAL(tg_buf_append(&b, "", 1), TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_restore(l, b.data, b.len, now), TG_EPROTO);
    b.data[0] = PDP_LIMITS_SNAPSHOT_VERSION + 1;
    CU_ASSERT_EQUAL(pdp_limits_restore(l, b.data, b.len - 1, now),
                    TG_EPROTO);
    memset(junk, 0xff, sizeof(junk));
    junk[0] = PDP_LIMITS_SNAPSHOT_VERSION;
    CU_ASSERT_EQUAL(pdp_limits_restore(l, junk, sizeof(junk), now),
                    TG_EPROTO);
    for (size_t i = 1; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 37 + 11);
    }
    CU_ASSERT_EQUAL(pdp_limits_restore(l, junk, sizeof(junk), now),
                    TG_EPROTO);
    CU_ASSERT_EQUAL(pdp_limits_restore(l, NULL, 0, now), TG_EPROTO);
    pdp_limits_restored(l, &nwin, &nres);
    CU_ASSERT_EQUAL(nwin, 0);
    CU_ASSERT_EQUAL(nres, 0);
    /* Empty and usable. */
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0);
    pdp_limits_budget_state(l, &f.bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(chk(l, &f.rpm, 1, now).denied, PDP_LIMITS_OK);
    }
    CU_ASSERT_EQUAL(chk(l, &f.rpm, 1, now).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(chk(l, &f.conc, 1, now).denied, PDP_LIMITS_OK);
    tg_buf_fini(&b);
    pdp_limits_destroy(l);
}


/* A decision the data plane gave up on is abandoned by its request id:
 * before the decision (the abandon overtook it) nothing is reserved and
 * the decision is refused; after it, the slot and the worst case go back
 * at once, not at the TTL. */
static void
test_abandon_by_request_id(void)
{
    pdp_limits       *l    = mk(900000);
    pdp_limits_req    conc = {"conc", "key-a", 0, 0, 1};
    pdp_limits_budget bud  = {"cap", "t1", 0, T0, 0, 9000, false, 1, 0, {0}};
    pdp_limits_cost   c    = {1000000, 1000000, 1000, 2000}; /* 3000 */
    pdp_limits_result r;
    int64_t           spent;
    int64_t           reserved;

    pdp_limits_check_budgets(l, "req_1", &conc, 1, &bud, 1, &c, 3000, T0, &r);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_STRING_EQUAL(r.reservation_id, "req_1");
    /* The same id again (a repeated Decide) holds nothing more. */
    pdp_limits_check_budgets(l, "req_1", NULL, 0, &bud, 1, &c, 3000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_ABANDONED);
    pdp_limits_budget_state(l, &bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 3000);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 1);
    /* Abandoned after the decision: released now. */
    CU_ASSERT_TRUE(pdp_limits_abandon(l, "req_1", T0 + 10));
    pdp_limits_budget_state(l, &bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(spent, 0);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0);
    /* Abandoned before its decision arrives: the decision holds nothing. */
    CU_ASSERT_FALSE(pdp_limits_abandon(l, "req_2", T0 + 20));
    CU_ASSERT_FALSE(pdp_limits_abandon(l, "req_2", T0 + 21)); /* twice */
    pdp_limits_check_budgets(l, "req_2", &conc, 1, &bud, 1, &c, 3000,
                             T0 + 30, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_ABANDONED);
    CU_ASSERT_STRING_EQUAL(r.reservation_id, "");
    pdp_limits_budget_state(l, &bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(pdp_limits_pending(l), 0);
    /* ...and its concurrency slot is free for the next request. */
    pdp_limits_check_budgets(l, "req_3", &conc, 1, NULL, 0, NULL, 10, T0 + 40,
                             &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    /* A tombstone is forgotten at the TTL like a reservation, silently. */
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 900100), 1); /* req_3 only */
    pdp_limits_check_budgets(l, "req_2", &conc, 1, NULL, 0, NULL, 10,
                             T0 + 900200, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    pdp_limits_destroy(l);
}

static void
test_expired_cb(void *arg, const char *id)
{
    char *seen = arg;

    snprintf(seen, TG_REQUEST_ID_MAX, "%s", id);
}

/* One reservation as a record: what a PDP restart reads back. A request
 * admitted after the window snapshot counts again in its windows; one
 * before it does not count twice; past the TTL nothing is held; a settled
 * record counts its request but holds nothing, and may be pruned once a
 * snapshot counts it. */
static void
test_reservation_record(void)
{
    pdp_limits         *l   = mk(900000);
    pdp_limits         *k   = mk(900000);
    pdp_limits_req      q   = {"rl", "key-a", 2, 0, 1};
    pdp_limits_budget   bud = {"cap", "t1", 0, T0, 0, 9000, false, 1, 0, {0}};
    pdp_limits_cost     c   = {1000000, 1000000, 1000, 2000};
    pdp_limits_result   r;
    pdp_limits_res_info info;
    tg_buf              rec;
    tg_buf              snap;
    tg_buf              settled;
    int64_t             spent;
    int64_t             reserved;
    uint64_t            seq;
    char                seen[TG_REQUEST_ID_MAX] = "";

    tg_buf_init(&rec, 0);
    tg_buf_init(&snap, 0);
    tg_buf_init(&settled, 0);
    pdp_limits_check_budgets(l, "req_9", &q, 1, &bud, 1, &c, 3000, T0 + 500,
                             &r);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(pdp_limits_reservation_encode(l, "nope", &rec),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_reservation_encode(l, "req_9", &rec),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_reservation_info(rec.data, rec.len,
                                                      &info),
                          TG_OK);
    CU_ASSERT_STRING_EQUAL(info.id, "req_9");
    CU_ASSERT_FALSE(info.settled);
    CU_ASSERT_EQUAL(info.reserved_micro, 3000);
    CU_ASSERT_EQUAL(info.n_limits, 1);
    CU_ASSERT_TRUE(info.limits[0].slot);
    CU_ASSERT_STRING_EQUAL(info.budgets[0].scope, "t1");
    seq = info.seq;
    /* A window snapshot taken now counts it: its number is past seq. */
    CU_ASSERT_EQUAL(pdp_limits_snapshot_windows(l, T0 + 600, &snap), TG_OK);
    CU_ASSERT_TRUE(pdp_limits_snapshot_seq(snap.data, snap.len) > seq);
    /* Truncated: refused whole. */
    CU_ASSERT_EQUAL(pdp_limits_restore_reservation(k, rec.data, rec.len - 1,
                                                   T0 + 1000, 0),
                    TG_EPROTO);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 0);
    /* The snapshot may not hold it (taken at its number): counted again. */
    CU_ASSERT_EQUAL(pdp_limits_restore_reservation(k, rec.data, rec.len,
                                                   T0 + 1000, seq),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 1);
    pdp_limits_budget_state(k, &bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 3000);
    /* The slot is held (concurrent 1), and rpm 2 has one left. */
    CU_ASSERT_EQUAL(chk(k, &q, 1, T0 + 1000).denied, PDP_LIMITS_CONCURRENT);
    /* Restored twice: the second copy takes nothing. */
    CU_ASSERT_EQUAL(pdp_limits_restore_reservation(k, rec.data, rec.len,
                                                   T0 + 1000, seq),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 1);
    pdp_limits_budget_state(k, &bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 3000);
    CU_ASSERT_TRUE(pdp_limits_release(k, "req_9", 10, T0 + 1000));
    CU_ASSERT_EQUAL(chk_done(k, &q, 1, T0 + 1000), PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk(k, &q, 1, T0 + 1000).denied, PDP_LIMITS_REQUESTS);
    pdp_limits_destroy(k);
    /* The snapshot holds it: restored, but not counted twice. */
    k = mk(900000);
    CU_ASSERT_EQUAL(pdp_limits_restore_reservation(k, rec.data, rec.len,
                                                   T0 + 1000, seq + 1),
                    TG_OK);
    CU_ASSERT_TRUE(pdp_limits_release(k, "req_9", 10, T0 + 1000));
    CU_ASSERT_EQUAL(chk_done(k, &q, 1, T0 + 1000), PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk_done(k, &q, 1, T0 + 1000), PDP_LIMITS_OK);
    /* Numbers go on after the restored ones. */
    CU_ASSERT_EQUAL(pdp_limits_snapshot_windows(k, T0 + 1000, &snap), TG_OK);
    pdp_limits_destroy(k);
    /* Settled: counts its request (rpm 2: one left), holds no slot and no
     * budget, and is prunable once a snapshot past its number is saved. */
    CU_ASSERT_EQUAL(tg_buf_append(&settled, rec.data, rec.len), TG_OK);
    CU_ASSERT_FALSE(pdp_limits_record_prunable(rec.data, rec.len, seq + 1, T0));
    CU_ASSERT_EQUAL_FATAL(pdp_limits_record_settle(settled.data, settled.len,
                                                   1234),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_reservation_info(settled.data,
                                                      settled.len, &info),
                          TG_OK);
    CU_ASSERT_TRUE(info.settled);
    CU_ASSERT_EQUAL(info.tokens, 1234);
    CU_ASSERT_FALSE(pdp_limits_record_prunable(settled.data, settled.len, seq, T0));
    CU_ASSERT_TRUE(
        pdp_limits_record_prunable(settled.data, settled.len, seq + 1, T0));
    k = mk(900000);
    CU_ASSERT_EQUAL(pdp_limits_restore_reservation(k, settled.data,
                                                   settled.len, T0 + 1000,
                                                   seq),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 0);
    pdp_limits_budget_state(k, &bud, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(chk_done(k, &q, 1, T0 + 1000), PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(chk(k, &q, 1, T0 + 1000).denied, PDP_LIMITS_REQUESTS);
    pdp_limits_destroy(k);
    /* Past the TTL: nothing is held. */
    k = mk(900000);
    CU_ASSERT_EQUAL(pdp_limits_restore_reservation(k, rec.data, rec.len,
                                                   T0 + 901000, seq),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_limits_pending(k), 0);
    pdp_limits_destroy(k);
    /* Expiry names each expired reservation (its record is deleted). */
    pdp_limits_on_expire(l, test_expired_cb, seen);
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 900600), 1);
    CU_ASSERT_STRING_EQUAL(seen, "req_9");
    tg_buf_fini(&rec);
    tg_buf_fini(&snap);
    tg_buf_fini(&settled);
    pdp_limits_destroy(l);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"window_slides", test_window_slides},
        {"concurrency", test_concurrency},
        {"token_correction", test_token_correction},
        {"expiry", test_expiry},
        {"all_or_nothing", test_all_or_nothing},
        {"exact_under_threads", test_exact_under_threads},
        {"format_reset", test_format_reset},
        {"budget_clamp_math", test_budget_clamp_math},
        {"budget_clamp_and_deny", test_budget_clamp_and_deny},
        {"budget_all_or_nothing", test_budget_all_or_nothing},
        {"thresholds_crossed", test_thresholds_crossed},
        {"alerts_helpers", test_alerts_helpers},
        {"budget_exact_under_threads", test_budget_exact_under_threads},
        {"budget_windows_and_load", test_budget_windows_and_load},
        {"snapshot_restore", test_snapshot_restore},
        {"snapshot_old_state_dropped", test_snapshot_old_state_dropped},
        {"snapshot_bad_refused", test_snapshot_bad_refused},
        {"abandon_by_request_id", test_abandon_by_request_id},
        {"reservation_record", test_reservation_record},
        {NULL, NULL},
    };

    return tg_unit_run("pdp.limits", cases);
}
