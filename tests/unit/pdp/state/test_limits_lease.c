/* test_limits_lease.c - pdp.limits_lease: the central PDP's accounting of
 * the leases sidecar PDPs admit against. What a user would notice: a
 * sidecar fleet plus direct decisions never passing a limit, a budget
 * lease's spend landing in the budget, a returned or dead lease giving its
 * capacity back, and leases surviving a restart as their records. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_limits.h"
#include "tg_buf.h"
#include "tg_unit.h"

#define T0 1800000000000LL /* a whole second, far from 0 */

static pdp_limits *
mk(int64_t ttl_ms)
{
    pdp_limits *l = NULL;

    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&l, ttl_ms), TG_OK);
    return l;
}

static pdp_lease_ask
rate_ask(const char *id, pdp_limits_req q, int64_t want_reqs, int64_t min_reqs,
         int64_t want_toks, int64_t want_slots)
{
    pdp_lease_ask a;

    memset(&a, 0, sizeof(a));
    a.id         = id;
    a.kind       = PDP_LEASE_RATE;
    a.rate       = q;
    a.want_reqs  = want_reqs;
    a.min_reqs   = min_reqs;
    a.want_toks  = want_toks;
    a.want_slots = want_slots;
    a.ttl_ms     = 30000;
    return a;
}

static pdp_lease_ask
budget_ask(const char *id, pdp_limits_budget b, int64_t want, int64_t min)
{
    pdp_lease_ask a;

    memset(&a, 0, sizeof(a));
    a.id         = id;
    a.kind       = PDP_LEASE_BUDGET;
    a.budget     = b;
    a.want_micro = want;
    a.min_micro  = min;
    a.ttl_ms     = 30000;
    return a;
}

static pdp_lease_grant
grant(pdp_limits *l, const pdp_lease_ask *a, int64_t now)
{
    pdp_lease_grant g;

    CU_ASSERT_EQUAL(pdp_limits_lease_grant(l, a, now, &g), TG_OK);
    return g;
}

/* direct is one direct decision, its usage report right after. */
static pdp_limits_result
direct(pdp_limits *l, const pdp_limits_req *q, int64_t tokens, int64_t now)
{
    pdp_limits_result r;

    pdp_limits_check(l, q, 1, tokens, true, now, &r);
    if (r.denied == PDP_LIMITS_OK) {
        CU_ASSERT_TRUE(pdp_limits_release(l, r.reservation_id, tokens, now));
    }
    return r;
}

/* A 1 micro-USD a token price: worst case prompt + max_out. */
static pdp_limits_cost
price(int64_t prompt, int64_t max_out)
{
    return (pdp_limits_cost){1000000, 1000000, prompt, max_out};
}

static void
test_rate_grant_until_full(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"rl", "key-a", 10, 1000, 3};
    pdp_lease_ask     a = rate_ask("node-a:1", q, 6, 1, 600, 2);
    pdp_lease_grant   g = grant(l, &a, T0);
    pdp_limits_result r;

    CU_ASSERT_TRUE(g.ok);
    CU_ASSERT_EQUAL(g.reqs, 6);
    CU_ASSERT_EQUAL(g.toks, 600);
    CU_ASSERT_EQUAL(g.slots, 2);
    CU_ASSERT_EQUAL(g.expires_ms, T0 + 30000);
    /* The second gets what is left of each. */
    a = rate_ask("node-b:1", q, 6, 1, 600, 2);
    g = grant(l, &a, T0 + 100);
    CU_ASSERT_TRUE(g.ok);
    CU_ASSERT_EQUAL(g.reqs, 4);
    CU_ASSERT_EQUAL(g.toks, 400);
    CU_ASSERT_EQUAL(g.slots, 1);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 2);
    /* Full: refused with the numbers, leases counted as used. */
    a = rate_ask("node-c:1", q, 1, 1, 0, 0);
    g = grant(l, &a, T0 + 200);
    CU_ASSERT_FALSE(g.ok);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(g.limit, 10);
    CU_ASSERT_EQUAL(g.used, 10);
    CU_ASSERT(g.retry_ms >= 1);
    a = rate_ask("node-c:2", q, 0, 0, 0, 1);
    g = grant(l, &a, T0 + 200);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_CONCURRENT);
    CU_ASSERT_EQUAL(g.limit, 3);
    CU_ASSERT_EQUAL(g.used, 3);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 2);
    /* Direct decisions see the leases: every slot is held. */
    r = direct(l, &q, 1, T0 + 300);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_CONCURRENT);
    CU_ASSERT_EQUAL(r.used, 3);
    /* node-b returns its lease having used 1 request and 50 tokens. */
    CU_ASSERT_TRUE(pdp_limits_lease_close(l, "node-b:1", 1, 50, T0 + 1000));
    CU_ASSERT_FALSE(pdp_limits_lease_close(l, "node-b:1", 1, 50, T0 + 1000));
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 1);
    /* 6 held + 1 used: 3 requests left, 1000 - 600 - 50 tokens. */
    r = direct(l, &q, 100, T0 + 1500);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.requests.remaining, 2);
    CU_ASSERT_EQUAL(r.tokens.remaining, 250);
    /* A min that does not fit is refused, with what is used. */
    a = rate_ask("node-d:1", q, 5, 3, 0, 0);
    g = grant(l, &a, T0 + 1600);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(g.used, 8);
    a          = rate_ask("node-d:2", q, 5, 2, 400, 0);
    a.min_toks = 300;
    g          = grant(l, &a, T0 + 1600);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(g.limit, 1000);
    CU_ASSERT_EQUAL(g.used, 750);
    a.min_toks = 250;
    g          = grant(l, &a, T0 + 1600);
    CU_ASSERT_TRUE(g.ok);
    CU_ASSERT_EQUAL(g.reqs, 2);
    CU_ASSERT_EQUAL(g.toks, 250);
    /* Bad asks. */
    a = rate_ask("", q, 1, 1, 0, 0);
    CU_ASSERT_EQUAL(pdp_limits_lease_grant(l, &a, T0, &g), TG_EINVAL);
    a = rate_ask("x", q, 1, 2, 0, 0); /* min above want */
    CU_ASSERT_EQUAL(pdp_limits_lease_grant(l, &a, T0, &g), TG_EINVAL);
    a = rate_ask("x", q, 0, 0, 0, 0); /* nothing wanted */
    CU_ASSERT_EQUAL(pdp_limits_lease_grant(l, &a, T0, &g), TG_EINVAL);
    a        = rate_ask("x", q, 1, 1, 0, 0);
    a.ttl_ms = 0;
    CU_ASSERT_EQUAL(pdp_limits_lease_grant(l, &a, T0, &g), TG_EINVAL);
    pdp_limits_destroy(l);
}

static void
test_budget_grant_and_direct_refused(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_budget b = {"cap", "t1", 0, T0, 0, 30000, false, 1, 0, {0}};
    pdp_limits_cost   c = price(500, 500);
    pdp_lease_ask     a = budget_ask("node-a:1", b, 20000, 1);
    pdp_lease_grant   g = grant(l, &a, T0);
    pdp_limits_result r;
    int64_t           spent;
    int64_t           reserved;

    CU_ASSERT_TRUE(g.ok);
    CU_ASSERT_EQUAL(g.micro, 20000);
    a = budget_ask("node-b:1", b, 20000, 5000);
    g = grant(l, &a, T0);
    CU_ASSERT_TRUE(g.ok);
    CU_ASSERT_EQUAL(g.micro, 10000);
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 0);
    CU_ASSERT_EQUAL(reserved, 30000);
    a = budget_ask("node-c:1", b, 100, 0);
    g = grant(l, &a, T0);
    CU_ASSERT_FALSE(g.ok);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(g.limit, 30000);
    CU_ASSERT_EQUAL(g.used, 30000);
    CU_ASSERT_EQUAL(g.retry_ms, 1000);
    /* A direct decision with a worst case of 1000 does not fit. */
    pdp_limits_check_budgets(l, "req-1", NULL, 0, &b, 1, &c, 1000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(r.b_reserved, 30000);
    /* Returned: the direct decision fits again, and a lease the rest. */
    CU_ASSERT_TRUE(pdp_limits_lease_close(l, "node-b:1", 0, 0, T0 + 10));
    pdp_limits_check_budgets(l, "req-2", NULL, 0, &b, 1, &c, 1000, T0, &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    a = budget_ask("node-c:2", b, 100000, 1);
    g = grant(l, &a, T0 + 20);
    CU_ASSERT_EQUAL(g.micro, 9000);
    /* Another window of the same budget is its own. */
    b.start_ms = T0 + 3600000;
    a          = budget_ask("node-c:3", b, 100000, 1);
    g          = grant(l, &a, T0 + 20);
    CU_ASSERT_EQUAL(g.micro, 30000);
    pdp_limits_destroy(l);
}

static void
test_charge_and_close_budget(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_budget b = {"cap", "t1", 0, T0, 0, 50000, false, 1, 2, {50, 80}};
    pdp_lease_ask     a = budget_ask("node-a:1", b, 20000, 1);
    pdp_lease_grant   g = grant(l, &a, T0);
    pdp_limits_spend_key k[PDP_LIMITS_BUDGETS_MAX];
    int64_t              spent;
    int64_t              reserved;
    uint32_t             n;

    CU_ASSERT_TRUE_FATAL(g.ok);
    n = pdp_limits_budget_keys(l, "node-a:1", k, PDP_LIMITS_BUDGETS_MAX);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(k[0].rule_id, "cap");
    CU_ASSERT_STRING_EQUAL(k[0].scope, "t1");
    CU_ASSERT_EQUAL(k[0].start_ms, T0);
    CU_ASSERT_EQUAL(k[0].limit, 50000);
    CU_ASSERT_EQUAL(k[0].scope_kind, 1);
    CU_ASSERT_EQUAL(k[0].nthr, 2);
    CU_ASSERT_EQUAL(k[0].thr[1], 80);
    /* A settled request moves its cost from held to spent. */
    CU_ASSERT_TRUE(pdp_limits_lease_charge(l, "node-a:1", 7000, k, n, T0 + 1));
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 7000);
    CU_ASSERT_EQUAL(reserved, 13000);
    /* A cost above what is held: all of it spent, the hold emptied. */
    CU_ASSERT_TRUE(pdp_limits_lease_charge(l, "node-a:1", 15000, k, n, T0 + 2));
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 22000);
    CU_ASSERT_EQUAL(reserved, 0);
    /* Unknown: still spent. */
    CU_ASSERT_FALSE(pdp_limits_lease_charge(l, "never", 1000, k, n, T0 + 3));
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 23000);
    /* A second lease, charged then closed: the rest goes back. */
    a = budget_ask("node-a:2", b, 10000, 1);
    CU_ASSERT_TRUE(grant(l, &a, T0 + 4).ok);
    CU_ASSERT_TRUE(pdp_limits_lease_charge(l, "node-a:2", 2500, k, n, T0 + 5));
    CU_ASSERT_TRUE(pdp_limits_lease_close(l, "node-a:2", 0, 0, T0 + 6));
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 25500);
    CU_ASSERT_EQUAL(reserved, 0);
    /* A late charge for the closed lease: spent, nothing else moves; its
     * keys are still known while its id is remembered. */
    CU_ASSERT_EQUAL(
        pdp_limits_budget_keys(l, "node-a:2", k, PDP_LIMITS_BUDGETS_MAX), 1);
    CU_ASSERT_FALSE(pdp_limits_lease_charge(l, "node-a:2", 500, k, n, T0 + 7));
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(spent, 26000);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_FALSE(pdp_limits_lease_close(l, "node-a:2", 0, 0, T0 + 8));
    pdp_limits_destroy(l);
}

/* What a sidecar used is counted at the close's second and stays the
 * full window from there. */
static void
test_rate_close_counts_used_at_now(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"rl", "key-a", 10, 0, 0};
    pdp_lease_ask     a = rate_ask("node-a:1", q, 10, 10, 0, 0);
    pdp_limits_result r;

    a.ttl_ms = 300000;
    CU_ASSERT_TRUE(grant(l, &a, T0).ok);
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 10000).denied, PDP_LIMITS_REQUESTS);
    /* Held, not in a bucket: still held after the first minute. */
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 70000).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_TRUE(pdp_limits_lease_close(l, "node-a:1", 4, 0, T0 + 75000));
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 76000).denied, PDP_LIMITS_OK);
    }
    r = direct(l, &q, 1, T0 + 76000);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(r.used, 10);
    CU_ASSERT_EQUAL(r.retry_ms, 59000); /* the 4 leave at T0 + 135 s */
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 134999).denied, PDP_LIMITS_REQUESTS);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 135000).denied, PDP_LIMITS_OK);
    }
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 135000).denied, PDP_LIMITS_REQUESTS);
    pdp_limits_destroy(l);
}

static void
test_lease_expired_cb(void *arg, const char *id)
{
    char *seen = arg;

    snprintf(seen, TG_REQUEST_ID_MAX, "%s", id);
}

/* A sidecar that dies: its lease ends on its own at expires_ms, a rate
 * lease counting everything it held as used. */
static void
test_expiry(void)
{
    pdp_limits       *l  = mk(900000);
    pdp_limits_req    q  = {"rl", "key-a", 10, 0, 2};
    pdp_limits_req    q2 = {"conc", "key-a", 0, 0, 1};
    pdp_limits_budget b  = {"cap", "t1", 0, T0, 0, 30000, false, 1, 0, {0}};
    pdp_lease_ask     a  = rate_ask("node-a:1", q, 10, 1, 0, 2);
    pdp_lease_ask     c  = rate_ask("node-a:2", q2, 0, 0, 0, 1);
    pdp_lease_ask     d  = budget_ask("node-a:3", b, 30000, 1);
    char              seen[TG_REQUEST_ID_MAX] = "";
    int64_t           spent;
    int64_t           reserved;
    pdp_lease_grant   g;

    pdp_limits_on_lease_expire(l, test_lease_expired_cb, seen);
    a.ttl_ms = 5000;
    c.ttl_ms = 5000;
    d.ttl_ms = 8000;
    CU_ASSERT_TRUE(grant(l, &a, T0).ok);
    CU_ASSERT_TRUE(grant(l, &c, T0).ok);
    CU_ASSERT_TRUE(grant(l, &d, T0).ok);
    CU_ASSERT_EQUAL(direct(l, &q2, 1, T0 + 1000).denied, PDP_LIMITS_CONCURRENT);
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 4999), 0);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 3);
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 5000), 2);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 1);
    CU_ASSERT_EQUAL(pdp_limits_leases_expired(l), 2);
    CU_ASSERT_STRING_NOT_EQUAL(seen, "");
    /* The slots are free; the 10 requests count as used at T0 + 5 s. */
    CU_ASSERT_EQUAL(direct(l, &q2, 1, T0 + 5000).denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 64999).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 65000).denied, PDP_LIMITS_OK);
    /* A decision after expires_ms sweeps by itself (the checks above
     * did): the budget lease released what it held. */
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(spent, 0);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 0);
    CU_ASSERT_EQUAL(pdp_limits_leases_expired(l), 3);
    CU_ASSERT_STRING_EQUAL(seen, "node-a:3");
    CU_ASSERT_FALSE(pdp_limits_lease_close(l, "node-a:3", 0, 0, T0 + 66000));
    /* Its id is not granted again while it is remembered... */
    g = grant(l, &d, T0 + 66000);
    CU_ASSERT_FALSE(g.ok);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_ABANDONED);
    /* ...which is the reservation TTL after it expired. */
    pdp_limits_expire(l, T0 + 65000 + 900000);
    g = grant(l, &d, T0 + 65000 + 900000);
    CU_ASSERT_TRUE(g.ok);
    pdp_limits_destroy(l);
}

/* An ask is never honoured twice: the same id gets the same lease. */
static void
test_idempotent_grant(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"rl", "key-a", 10, 0, 0};
    pdp_lease_ask     a = rate_ask("node-a:7", q, 4, 1, 0, 0);
    pdp_lease_grant   g = grant(l, &a, T0);
    pdp_limits_result r;

    CU_ASSERT_TRUE(g.ok);
    g = grant(l, &a, T0 + 500);
    CU_ASSERT_TRUE(g.ok);
    CU_ASSERT_EQUAL(g.reqs, 4);
    CU_ASSERT_EQUAL(g.expires_ms, T0 + 30000); /* not extended */
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 1);
    r = direct(l, &q, 1, T0 + 600);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.requests.remaining, 5); /* 4 held once, 1 direct */
    /* Closed, then asked again: refused. */
    CU_ASSERT_TRUE(pdp_limits_lease_close(l, "node-a:7", 0, 0, T0 + 700));
    g = grant(l, &a, T0 + 800);
    CU_ASSERT_FALSE(g.ok);
    CU_ASSERT_EQUAL(g.denied, PDP_LIMITS_ABANDONED);
    pdp_limits_destroy(l);
}

/* ---- threads: the fleet and direct decisions never pass a limit ------- */

#define RACE_RPM 500
#define RACE_BUDGET 1000000

typedef struct race_arg {
    pdp_limits  *l;
    int          t;
    atomic_llong reqs;  /* granted to leases and admitted directly */
    atomic_llong micro; /* charged by leases and settled directly */
} race_arg;

static void
race_rate(race_arg *a, int i, const pdp_limits_req *q)
{
    char            id[TG_REQUEST_ID_MAX];
    pdp_lease_ask   ask;
    pdp_lease_grant g;

    if (i % 2 == 0) {
        if (direct(a->l, q, 1, T0 + i % 50).denied == PDP_LIMITS_OK) {
            atomic_fetch_add(&a->reqs, 1);
        }
        return;
    }
    snprintf(id, sizeof(id), "node-%d:%d", a->t, i);
    ask = rate_ask(id, *q, 3, 1, 0, 0);
    if (pdp_limits_lease_grant(a->l, &ask, T0 + i % 50, &g) == TG_OK && g.ok) {
        atomic_fetch_add(&a->reqs, g.reqs);
        /* Half are returned having used it all (counted in the window
         * from then on), half stay open. */
        if (i % 4 == 1) {
            CU_ASSERT_TRUE(
                pdp_limits_lease_close(a->l, id, g.reqs, 0, T0 + 50));
        }
    }
}

static void
race_budget(race_arg *a, int i, const pdp_limits_budget *b)
{
    char                 id[TG_REQUEST_ID_MAX];
    pdp_limits_cost      c = price(500, 500);
    pdp_limits_spend_key k[PDP_LIMITS_BUDGETS_MAX];
    pdp_limits_result    r;
    pdp_lease_ask        ask;
    pdp_lease_grant      g;
    uint32_t             n;

    if (i % 2 == 0) {
        pdp_limits_check_budgets(a->l, NULL, NULL, 0, b, 1, &c, 1000, T0, &r);
        if (r.denied == PDP_LIMITS_OK) {
            n = pdp_limits_budget_keys(a->l, r.reservation_id, k, 8);
            atomic_fetch_add(&a->micro, 1000);
            pdp_limits_settle(a->l, r.reservation_id, 1000, 1000, k, n, T0);
        }
        return;
    }
    snprintf(id, sizeof(id), "bnode-%d:%d", a->t, i);
    ask = budget_ask(id, *b, 7000, 1);
    if (pdp_limits_lease_grant(a->l, &ask, T0, &g) == TG_OK && g.ok) {
        /* The sidecar spends all of it, then returns the lease. */
        n = pdp_limits_budget_keys(a->l, id, k, 8);
        CU_ASSERT_EQUAL(n, 1);
        atomic_fetch_add(&a->micro, g.micro);
        CU_ASSERT_TRUE(pdp_limits_lease_charge(a->l, id, g.micro, k, n, T0));
        CU_ASSERT_TRUE(pdp_limits_lease_close(a->l, id, 0, 0, T0));
    }
}

static void *
race_thread(void *p)
{
    race_arg         *a = p;
    pdp_limits_req    q = {"rpm", "tenant-x", RACE_RPM, 0, 0};
    pdp_limits_budget b = {"cap",       "tenant-x", 0, T0, 0,
                           RACE_BUDGET, false,      0, 0,  {0}};

    for (int i = 0; i < 2000; i++) {
        race_rate(a, i, &q);
        race_budget(a, i, &b);
    }
    return NULL;
}

static void
test_exact_under_threads(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"rpm", "tenant-x", RACE_RPM, 0, 0};
    pdp_limits_budget b = {"cap",       "tenant-x", 0, T0, 0,
                           RACE_BUDGET, false,      0, 0,  {0}};
    race_arg          a[8];
    pthread_t         th[8];
    long long         reqs  = 0;
    long long         micro = 0;
    int64_t           spent;
    int64_t           reserved;
    pdp_lease_ask     one = rate_ask("late", q, 1, 1, 0, 0);

    for (int t = 0; t < 8; t++) {
        a[t].l = l;
        a[t].t = t;
        atomic_init(&a[t].reqs, 0);
        atomic_init(&a[t].micro, 0);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, race_thread, &a[t]),
                              0);
    }
    for (int t = 0; t < 8; t++) {
        pthread_join(th[t], NULL);
        reqs += atomic_load(&a[t].reqs);
        micro += atomic_load(&a[t].micro);
    }
    /* Leases take down to the last request and micro-USD (min 1). */
    CU_ASSERT_EQUAL(reqs, RACE_RPM);
    CU_ASSERT_EQUAL(direct(l, &q, 1, T0 + 50).denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_FALSE(grant(l, &one, T0 + 50).ok);
    pdp_limits_budget_state(l, &b, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(spent, micro);
    CU_ASSERT_EQUAL(spent, RACE_BUDGET);
    pdp_limits_destroy(l);
}

/* The same id asked by many at once: held once. */
typedef struct dup_arg {
    pdp_limits *l;
    atomic_int  ok;
} dup_arg;

static void *
dup_thread(void *p)
{
    dup_arg        *d = p;
    pdp_limits_req  q = {"rl", "key-d", 100, 0, 0};
    pdp_lease_ask   a = rate_ask("same", q, 30, 30, 0, 0);
    pdp_lease_grant g;

    for (int i = 0; i < 200; i++) {
        if (pdp_limits_lease_grant(d->l, &a, T0, &g) == TG_OK && g.ok) {
            CU_ASSERT_EQUAL(g.reqs, 30);
            atomic_fetch_add(&d->ok, 1);
        }
    }
    return NULL;
}

static void
test_same_id_under_threads(void)
{
    pdp_limits       *l = mk(900000);
    pdp_limits_req    q = {"rl", "key-d", 100, 0, 0};
    pthread_t         th[8];
    dup_arg           d;
    pdp_limits_result r;

    d.l = l;
    atomic_init(&d.ok, 0);
    for (int t = 0; t < 8; t++) {
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, dup_thread, &d), 0);
    }
    for (int t = 0; t < 8; t++) {
        pthread_join(th[t], NULL);
    }
    CU_ASSERT_EQUAL(atomic_load(&d.ok), 8 * 200);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 1);
    r = direct(l, &q, 1, T0);
    CU_ASSERT_EQUAL(r.requests.remaining, 100 - 30 - 1);
    pdp_limits_destroy(l);
}

/* ---- records: what a restart reads back ------------------------------- */

typedef struct rec_fixture {
    pdp_limits_req    q;
    pdp_limits_budget b;
    tg_buf            rate;
    tg_buf            bud;
} rec_fixture;

/* rec_source grants a rate lease and a budget lease (charged 1500) in a
 * PDP and keeps their records. */
static void
rec_source(rec_fixture *f)
{
    pdp_limits          *l = mk(900000);
    pdp_lease_ask        a;
    pdp_limits_spend_key k[PDP_LIMITS_BUDGETS_MAX];
    uint32_t             n;

    memset(f, 0, sizeof(*f));
    f->q = (pdp_limits_req){"rl", "key-a", 10, 1000, 3};
    f->b = (pdp_limits_budget){"cap", "t1", 4, T0, 24,
                               30000, true, 2, 2,  {50, 80}};
    tg_buf_init(&f->rate, 0);
    tg_buf_init(&f->bud, 0);
    a = rate_ask("node-a:1", f->q, 6, 1, 700, 2);
    CU_ASSERT_TRUE(grant(l, &a, T0).ok);
    a = budget_ask("node-a:2", f->b, 20000, 1);
    CU_ASSERT_TRUE(grant(l, &a, T0).ok);
    n = pdp_limits_budget_keys(l, "node-a:2", k, PDP_LIMITS_BUDGETS_MAX);
    CU_ASSERT_TRUE(pdp_limits_lease_charge(l, "node-a:2", 1500, k, n, T0));
    CU_ASSERT_EQUAL(pdp_limits_lease_encode(l, "nope", &f->rate), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_limits_lease_encode(l, "node-a:1", &f->rate), TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_lease_encode(l, "node-a:2", &f->bud), TG_OK);
    CU_ASSERT_EQUAL(f->rate.data[0], PDP_LIMITS_LEASE_VERSION);
    pdp_limits_destroy(l);
}

static void
test_encode_restore(void)
{
    rec_fixture          f;
    pdp_limits          *l = mk(900000);
    pdp_lease_info       info[4];
    pdp_limits_spend_key k[2];
    pdp_limits_result    r;
    int64_t              spent;
    int64_t              reserved;

    rec_source(&f);
    CU_ASSERT_EQUAL(pdp_limits_lease_decode(f.bud.data, f.bud.len, &info[0]),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(info[0].id, "node-a:2");
    CU_ASSERT_EQUAL(info[0].kind, PDP_LEASE_BUDGET);
    CU_ASSERT_EQUAL(info[0].micro, 18500);
    CU_ASSERT_EQUAL(info[0].charged, 1500);
    CU_ASSERT_EQUAL(info[0].span_h, 24);
    CU_ASSERT_EQUAL(info[0].code, 4);
    CU_ASSERT_TRUE(info[0].clamp);
    CU_ASSERT_EQUAL(info[0].thr[1], 80);
    CU_ASSERT_EQUAL(info[0].expires_ms, T0 + 30000);
    CU_ASSERT_EQUAL(pdp_limits_lease_record_keys(f.bud.data, f.bud.len, k, 2),
                    1);
    CU_ASSERT_STRING_EQUAL(k[0].rule_id, "cap");
    CU_ASSERT_EQUAL(k[0].limit, 30000);
    CU_ASSERT_EQUAL(pdp_limits_lease_record_keys(f.rate.data, f.rate.len, k, 2),
                    0);
    /* Restored into a fresh PDP: the same holdings. */
    CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, f.rate.data, f.rate.len, T0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, f.bud.data, f.bud.len, T0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, f.bud.data, f.bud.len, T0),
                    TG_EEXIST);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 2);
    pdp_limits_budget_state(l, &f.b, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 18500);
    r = direct(l, &f.q, 100, T0 + 1000);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(r.requests.remaining, 10 - 6 - 1);
    CU_ASSERT_EQUAL(r.tokens.remaining, 1000 - 700 - 100);
    r = direct(l, &f.q, 1, T0 + 1000); /* 2 slots held, 1 left */
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(pdp_limits_lease_list(l, info, 4), 2);
    CU_ASSERT_EQUAL(pdp_limits_lease_list(l, info, 1), 1);
    /* It goes on as it was: re-asked, closed, expired. */
    {
        pdp_lease_ask   a = rate_ask("node-a:1", f.q, 9, 9, 0, 0);
        pdp_lease_grant g = grant(l, &a, T0 + 2000);
        CU_ASSERT_TRUE(g.ok);
        CU_ASSERT_EQUAL(g.reqs, 6);
        CU_ASSERT_EQUAL(g.toks, 700);
        CU_ASSERT_EQUAL(g.slots, 2);
    }
    CU_ASSERT_TRUE(pdp_limits_lease_close(l, "node-a:2", 0, 0, T0 + 3000));
    pdp_limits_budget_state(l, &f.b, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(pdp_limits_expire(l, T0 + 30000), 1);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 0);
    pdp_limits_destroy(l);
    /* Past expires_ms: nothing held. */
    l = mk(900000);
    CU_ASSERT_EQUAL(
        pdp_limits_lease_restore(l, f.bud.data, f.bud.len, T0 + 30000),
        TG_ENOTFOUND);
    pdp_limits_budget_state(l, &f.b, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 0);
    pdp_limits_destroy(l);
    tg_buf_fini(&f.rate);
    tg_buf_fini(&f.bud);
}

/* nothing_held: l holds no lease and none of the fixture's capacity. */
static void
nothing_held(pdp_limits *l, const rec_fixture *f, int64_t now)
{
    pdp_limits_result r;
    int64_t           spent;
    int64_t           reserved;

    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 0);
    pdp_limits_budget_state(l, &f->b, &spent, &reserved);
    CU_ASSERT_EQUAL(reserved, 0);
    pdp_limits_check(l, &f->q, 1, 1, false, now, &r); /* audit: no hold */
    CU_ASSERT_EQUAL(r.requests.remaining, 10 - 1);
    CU_ASSERT_EQUAL(r.tokens.remaining, 1000 - 1);
}

static void
test_malformed_records(void)
{
    rec_fixture          f;
    pdp_limits          *l = mk(900000);
    pdp_lease_info       info;
    pdp_limits_spend_key keys[2];
    char                 bad[1024];
    const tg_buf        *recs[2];

    rec_source(&f);
    recs[0] = &f.rate;
    recs[1] = &f.bud;
    for (int k = 0; k < 2; k++) {
        const tg_buf *b = recs[k];
        CU_ASSERT_FATAL(b->len + 1 <= sizeof(bad));
        /* Truncated at every length. */
        for (size_t n = 0; n < b->len; n++) {
            CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, b->data, n, T0),
                            TG_EPROTO);
        }
        /* One byte too many. */
        memcpy(bad, b->data, b->len);
        bad[b->len] = 0;
        CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, bad, b->len + 1, T0),
                        TG_EPROTO);
        /* Another version; an unknown kind. */
        bad[0] = PDP_LIMITS_LEASE_VERSION + 1;
        CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, bad, b->len, T0),
                        TG_EPROTO);
        bad[0] = PDP_LIMITS_LEASE_VERSION;
        bad[1] = 3;
        CU_ASSERT_EQUAL(pdp_limits_lease_decode(bad, b->len, &info), TG_EPROTO);
        /* A negative held amount (its last field's top byte). */
        memcpy(bad, b->data, b->len);
        bad[b->len - 1] = (char)0x80;
        CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, bad, b->len, T0),
                        TG_EPROTO);
        /* Expires before it was granted. */
        memcpy(bad, b->data, b->len);
        bad[2 + 2 + strlen("node-a:1") + 8 + 7] = (char)0x80;
        CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, bad, b->len, T0),
                        TG_EPROTO);
        /* An empty id. */
        memcpy(bad, b->data, b->len);
        bad[2] = 0;
        bad[3] = 0;
        CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, bad, b->len, T0),
                        TG_EPROTO);
    }
    CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, NULL, 0, T0), TG_EPROTO);
    CU_ASSERT_EQUAL(
        pdp_limits_lease_record_keys(f.bud.data, f.bud.len - 1, keys, 2), 0);
    nothing_held(l, &f, T0);
    /* And the good ones still restore. */
    CU_ASSERT_EQUAL(pdp_limits_lease_restore(l, f.rate.data, f.rate.len, T0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_leases_open(l), 1);
    pdp_limits_destroy(l);
    tg_buf_fini(&f.rate);
    tg_buf_fini(&f.bud);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"rate_grant_until_full", test_rate_grant_until_full},
        {"budget_grant_and_direct_refused",
         test_budget_grant_and_direct_refused},
        {"charge_and_close_budget", test_charge_and_close_budget},
        {"rate_close_counts_used_at_now", test_rate_close_counts_used_at_now},
        {"expiry", test_expiry},
        {"idempotent_grant", test_idempotent_grant},
        {"exact_under_threads", test_exact_under_threads},
        {"same_id_under_threads", test_same_id_under_threads},
        {"encode_restore", test_encode_restore},
        {"malformed_records", test_malformed_records},
        {NULL, NULL},
    };

    return tg_unit_run("pdp.limits_lease", cases);
}
