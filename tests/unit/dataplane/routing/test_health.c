/* dataplane.health - the circuit breaker a deployment goes through when it
 * fails: N failures within T trip it, scattered failures do not; after the
 * cooldown exactly one request probes, however many threads race; the
 * probe's verdict closes or reopens it; a lost probe does not wedge it.
 * Plus in-flight counts and the TTFT moving average. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "dp_health.h"
#include "tg_log.h"
#include "tg_unit.h"

static const char *const NAMES[] = {"dep-a", "dep-b"};

static dp_health *
mk(void)
{
    dp_health_opts o = {0};
    dp_health     *h = NULL;

    o.failures    = 3;
    o.window_ms   = 1000;
    o.cooldown_ms = 5000;
    o.ewma_alpha  = 0.5;
    o.names       = NAMES;
    CU_ASSERT_EQUAL_FATAL(dp_health_create(&h, 2, &o), TG_OK);
    return h;
}

static dp_health_stat
st(dp_health *h, size_t i, int64_t now)
{
    dp_health_stat s;

    dp_health_get(h, i, now, &s);
    return s;
}

/* trip opens deployment i at time t (3 failures in 2 ms). */
static void
trip(dp_health *h, size_t i, int64_t t)
{
    dp_health_failure(h, i, t, "HTTP 503");
    dp_health_failure(h, i, t + 1, "HTTP 503");
    dp_health_failure(h, i, t + 2, "HTTP 429");
}

static void
test_create_options(void)
{
    dp_health     *h = NULL;
    dp_health_opts o = {0};

    CU_ASSERT_EQUAL(dp_health_create(&h, 3, NULL), TG_OK);
    CU_ASSERT_EQUAL(dp_health_size(h), 3);
    /* defaults: 3 failures within 30 s, 30 s cooldown */
    dp_health_failure(h, 2, 0, "x");
    dp_health_failure(h, 2, 15000, "x");
    dp_health_failure(h, 2, 29999, "x");
    CU_ASSERT_EQUAL(dp_health_acquire(h, 2, 30000), DP_HEALTH_COOLDOWN);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 2, 29999 + 29999), DP_HEALTH_COOLDOWN);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 2, 29999 + 30000), DP_HEALTH_PROBE);
    /* out of range is ignored */
    CU_ASSERT_EQUAL(dp_health_acquire(h, 3, 0), DP_HEALTH_OK);
    dp_health_failure(h, 99, 0, "x");
    CU_ASSERT_EQUAL(st(h, 99, 0).failures_total, 0);
    dp_health_destroy(h);
    dp_health_destroy(NULL);

    o.ewma_alpha = 1.5;
    CU_ASSERT_EQUAL(dp_health_create(&h, 1, &o), TG_EINVAL);
    o.ewma_alpha = 0;
    o.window_ms  = -1;
    CU_ASSERT_EQUAL(dp_health_create(&h, 1, &o), TG_EINVAL);
    o.window_ms = 0;
    o.failures  = 100000;
    CU_ASSERT_EQUAL(dp_health_create(&h, 1, &o), TG_EINVAL);

    CU_ASSERT_STRING_EQUAL(dp_health_circuit_name(DP_CIRCUIT_OK), "ok");
    CU_ASSERT_STRING_EQUAL(dp_health_circuit_name(DP_CIRCUIT_COOLDOWN),
                           "cooldown");
    CU_ASSERT_STRING_EQUAL(dp_health_circuit_name(DP_CIRCUIT_HALF_OPEN),
                           "half_open");
    CU_ASSERT_STRING_EQUAL(dp_health_state_name(DP_HEALTH_PROBE), "probe");
}

static void
test_failures_within_window_trip(void)
{
    dp_health     *h = mk();
    dp_health_stat s;

    dp_health_failure(h, 0, 10000, "HTTP 500");
    dp_health_failure(h, 0, 10400, "HTTP 500");
    s = st(h, 0, 10500);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_OK);
    CU_ASSERT_EQUAL(s.failures, 2);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 10500), DP_HEALTH_OK);
    /* a success in between does not forgive the window */
    dp_health_success(h, 0, 10600);
    dp_health_failure(h, 0, 10999, "connect: refused");
    s = st(h, 0, 11000);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_COOLDOWN);
    CU_ASSERT_EQUAL(s.cooldown_until_ms, 10999 + 5000);
    CU_ASSERT_EQUAL(s.cooldowns, 1);
    CU_ASSERT_EQUAL(s.failures_total, 3);
    CU_ASSERT_EQUAL(s.successes, 1);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 11000), DP_HEALTH_COOLDOWN);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 15998), DP_HEALTH_COOLDOWN);
    /* the other deployment is untouched */
    CU_ASSERT_EQUAL(dp_health_acquire(h, 1, 11000), DP_HEALTH_OK);
    /* stragglers from before the trip neither extend nor end it */
    dp_health_failure(h, 0, 12000, "timeout");
    dp_health_success(h, 0, 12001);
    s = st(h, 0, 12002);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_COOLDOWN);
    CU_ASSERT_EQUAL(s.cooldown_until_ms, 15999);
    CU_ASSERT_EQUAL(s.cooldowns, 1);
    CU_ASSERT_EQUAL(st(h, 0, 15999).state, DP_CIRCUIT_HALF_OPEN);
    dp_health_destroy(h);
}

static void
test_spread_failures_do_not_trip(void)
{
    dp_health     *h = mk();
    dp_health_stat s;

    /* one failure every 600 ms: never 3 within 1000 ms */
    for (int64_t t = 0; t < 60000; t += 600) {
        dp_health_failure(h, 0, t, "HTTP 502");
        CU_ASSERT_EQUAL(dp_health_acquire(h, 0, t), DP_HEALTH_OK);
    }
    s = st(h, 0, 59400);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_OK);
    CU_ASSERT_EQUAL(s.failures, 2); /* 58800 and 59400 */
    CU_ASSERT_EQUAL(s.cooldowns, 0);
    CU_ASSERT_EQUAL(s.failures_total, 100);
    CU_ASSERT_EQUAL(st(h, 0, 70000).failures, 0);
    /* the boundary: the oldest exactly T old is outside the window */
    dp_health_failure(h, 1, 0, "x");
    dp_health_failure(h, 1, 500, "x");
    dp_health_failure(h, 1, 1000, "x");
    CU_ASSERT_EQUAL(dp_health_acquire(h, 1, 1000), DP_HEALTH_OK);
    dp_health_failure(h, 1, 1001, "x"); /* 500, 1000, 1001 */
    CU_ASSERT_EQUAL(dp_health_acquire(h, 1, 1001), DP_HEALTH_COOLDOWN);
    dp_health_destroy(h);
}

static void
test_probe_success_closes(void)
{
    dp_health     *h = mk();
    dp_health_stat s;

    trip(h, 0, 0); /* cooldown until 5002 */
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 5002), DP_HEALTH_PROBE);
    s = st(h, 0, 5002);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_HALF_OPEN);
    CU_ASSERT_TRUE(s.probing);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 5003), DP_HEALTH_COOLDOWN);
    dp_health_success(h, 0, 5100);
    s = st(h, 0, 5100);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_OK);
    CU_ASSERT_EQUAL(s.failures, 0);
    CU_ASSERT_EQUAL(s.cooldown_until_ms, 0);
    CU_ASSERT_FALSE(s.probing);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 5101), DP_HEALTH_OK);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 5101), DP_HEALTH_OK);
    /* failures were reset: two more do not trip, a third does */
    dp_health_failure(h, 0, 5200, "x");
    dp_health_failure(h, 0, 5201, "x");
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 5202), DP_HEALTH_OK);
    dp_health_failure(h, 0, 5202, "x");
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 5203), DP_HEALTH_COOLDOWN);
    CU_ASSERT_EQUAL(st(h, 0, 5203).cooldowns, 2);
    dp_health_destroy(h);
}

static void
test_probe_failure_reopens(void)
{
    dp_health     *h = mk();
    dp_health_stat s;

    trip(h, 0, 0);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 6000), DP_HEALTH_PROBE);
    dp_health_failure(h, 0, 6500, "HTTP 503"); /* one failure suffices */
    s = st(h, 0, 6500);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_COOLDOWN);
    CU_ASSERT_EQUAL(s.cooldown_until_ms, 11500);
    CU_ASSERT_EQUAL(s.cooldowns, 2);
    CU_ASSERT_FALSE(s.probing);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 11499), DP_HEALTH_COOLDOWN);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 11500), DP_HEALTH_PROBE);
    /* abandon: no verdict, the next caller probes */
    dp_health_abandon(h, 0);
    s = st(h, 0, 11501);
    CU_ASSERT_EQUAL(s.state, DP_CIRCUIT_HALF_OPEN);
    CU_ASSERT_FALSE(s.probing);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 11501), DP_HEALTH_PROBE);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 11502), DP_HEALTH_COOLDOWN);
    dp_health_destroy(h);
}

static void
test_stale_probe_expires(void)
{
    dp_health *h = mk();

    trip(h, 0, 0);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 10000), DP_HEALTH_PROBE);
    /* the prober never reports */
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 14999), DP_HEALTH_COOLDOWN);
    CU_ASSERT_TRUE(st(h, 0, 14999).probing);
    CU_ASSERT_FALSE(st(h, 0, 15000).probing);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 15000), DP_HEALTH_PROBE);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 15001), DP_HEALTH_COOLDOWN);
    dp_health_success(h, 0, 15200);
    CU_ASSERT_EQUAL(dp_health_acquire(h, 0, 15201), DP_HEALTH_OK);
    dp_health_destroy(h);
}

#define RACERS 8

typedef struct race {
    dp_health         *h;
    pthread_barrier_t *bar;
    int64_t            now;
    atomic_int        *probes;
    atomic_int        *cooldowns;
} race;

static void *
racer(void *arg)
{
    race *r = arg;

    pthread_barrier_wait(r->bar);
    switch (dp_health_acquire(r->h, 0, r->now)) {
    case DP_HEALTH_PROBE:
        atomic_fetch_add(r->probes, 1);
        break;
    case DP_HEALTH_COOLDOWN:
        atomic_fetch_add(r->cooldowns, 1);
        break;
    case DP_HEALTH_OK:
        break;
    }
    return NULL;
}

static void
test_one_probe_among_racing_threads(void)
{
    tg_log_init("test", TG_LOG_ERROR); /* 200 trips: keep the output short */
    for (int round = 0; round < 200; round++) {
        dp_health        *h = mk();
        pthread_barrier_t bar;
        pthread_t         th[RACERS];
        race              r[RACERS];
        atomic_int        probes    = 0;
        atomic_int        cooldowns = 0;

        trip(h, 0, 0);
        pthread_barrier_init(&bar, NULL, RACERS);
        for (int k = 0; k < RACERS; k++) {
            r[k] = (race){h, &bar, 5002 + k % 3, &probes, &cooldowns};
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th[k], NULL, racer, &r[k]),
                                  0);
        }
        for (int k = 0; k < RACERS; k++) {
            pthread_join(th[k], NULL);
        }
        pthread_barrier_destroy(&bar);
        CU_ASSERT_EQUAL(atomic_load(&probes), 1);
        CU_ASSERT_EQUAL(atomic_load(&cooldowns), RACERS - 1);
        dp_health_destroy(h);
    }
    tg_log_init("test", TG_LOG_INFO);
}

static void
test_inflight_and_ttft(void)
{
    dp_health *h = mk();

    CU_ASSERT_EQUAL(st(h, 1, 0).ttft_ewma_us, 0);
    dp_health_begin(h, 1);
    dp_health_begin(h, 1);
    dp_health_begin(h, 1);
    dp_health_end(h, 1);
    CU_ASSERT_EQUAL(st(h, 1, 0).inflight, 2);
    CU_ASSERT_EQUAL(st(h, 0, 0).inflight, 0);
    dp_health_end(h, 1);
    dp_health_end(h, 1);
    CU_ASSERT_EQUAL(st(h, 1, 0).inflight, 0);

    /* alpha 0.5: first sample sets, then halfway each time */
    dp_health_ttft(h, 1, 100000);
    CU_ASSERT_EQUAL(st(h, 1, 0).ttft_ewma_us, 100000);
    dp_health_ttft(h, 1, 200000);
    CU_ASSERT_EQUAL(st(h, 1, 0).ttft_ewma_us, 150000);
    dp_health_ttft(h, 1, 50000);
    CU_ASSERT_EQUAL(st(h, 1, 0).ttft_ewma_us, 100000);
    dp_health_ttft(h, 1, 0); /* ignored */
    dp_health_ttft(h, 1, -5);
    CU_ASSERT_EQUAL(st(h, 1, 0).ttft_ewma_us, 100000);
    CU_ASSERT_EQUAL(st(h, 0, 0).ttft_ewma_us, 0);
    dp_health_destroy(h);
}

typedef struct churn {
    dp_health *h;
    int        n;
} churn;

static void *
churner(void *arg)
{
    churn *c = arg;

    for (int k = 0; k < c->n; k++) {
        dp_health_begin(c->h, 0);
        dp_health_ttft(c->h, 0, 1000);
        dp_health_end(c->h, 0);
    }
    return NULL;
}

static void
test_inflight_across_threads(void)
{
    dp_health *h = mk();
    pthread_t  th[RACERS];
    churn      c = {h, 20000};

    for (int k = 0; k < RACERS; k++) {
        pthread_create(&th[k], NULL, churner, &c);
    }
    for (int k = 0; k < RACERS; k++) {
        pthread_join(th[k], NULL);
    }
    CU_ASSERT_EQUAL(st(h, 0, 0).inflight, 0);
    CU_ASSERT_EQUAL(st(h, 0, 0).ttft_ewma_us, 1000);
    dp_health_destroy(h);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"create_options", test_create_options},
        {"failures_within_window_trip", test_failures_within_window_trip},
        {"spread_failures_do_not_trip", test_spread_failures_do_not_trip},
        {"probe_success_closes", test_probe_success_closes},
        {"probe_failure_reopens", test_probe_failure_reopens},
        {"stale_probe_expires", test_stale_probe_expires},
        {"one_probe_among_racing_threads", test_one_probe_among_racing_threads},
        {"inflight_and_ttft", test_inflight_and_ttft},
        {"inflight_across_threads", test_inflight_across_threads},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.health", cases);
}
