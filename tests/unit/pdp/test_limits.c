/* test_limits.c - pdp.limits: the sliding window, concurrency slots, token
 * correction, expiry and exactness under threads; what a client sees as
 * 429s and x-ratelimit-* headers comes from here. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_limits.h"
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
    CU_ASSERT_STRING_EQUAL(r.reservation_id, ""); /* nothing to release */
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
        {NULL, NULL},
    };

    return tg_unit_run("pdp.limits", cases);
}
