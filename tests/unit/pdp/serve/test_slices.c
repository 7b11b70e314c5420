/* test_slices.c - pdp.slices: a sidecar PDP admitting against the slices
 * of rate limits and budgets its central PDP granted it. What a user would
 * notice: nothing admitted without a slice for every rule (all or
 * nothing), never more than the slices hold (one thread or many), the
 * right asks going to the central PDP (and none while one is on its way or
 * a refusal stands), settled costs and tokens counted, idle or used-up
 * slices going back with what they used, budget charges naming their
 * leases, and the emergency allowance. Time is driven through now_ms;
 * pdp_slices_grant reads the clock itself, so leases are "sent" near
 * tg_now_ms(). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_slices.h"
#include "tg_time.h"
#include "tg_unit.h"

#define TTL_MS 30000 /* asked for; use_until = sent + min(USE_MS, ttl/2) */
#define USE_MS 10000
#define WSTART 1800000000000LL /* a budget window's start (only a key here) */

static pdp_limits_result g_res;

static pdp_slices *
mk(void)
{
    pdp_slices *s = NULL;

    CU_ASSERT_EQUAL_FATAL(pdp_slices_create(&s, "node-a", TTL_MS, USE_MS),
                          TG_OK);
    return s;
}

static pdp_limits_req
rate(const char *rule, int64_t rpm, int64_t tpm, int64_t conc)
{
    return (pdp_limits_req){rule, "key_1", rpm, tpm, conc};
}

/* A calendar budget (window code 3) with alerts at 50 and 90 %. */
static pdp_limits_budget
bud(const char *rule, int64_t limit)
{
    return (pdp_limits_budget){rule,  "acme", 3, WSTART, 0,
                               limit, false,  2, 2,      {50, 90}};
}

/* A price of 1 micro-USD per output token: the worst case is max_out. */
static pdp_limits_cost
worst_of(int64_t worst)
{
    return (pdp_limits_cost){0, 1000000, 0, worst};
}

/* admit is one admission into g_res; need (may be NULL) is reset first. */
static pdp_limits_what
admit_em(pdp_slices *s, const char *id, const pdp_limits_req *q, uint32_t n,
         const pdp_limits_budget *b, uint32_t nb, int64_t worst, int64_t tokens,
         bool emergency, int64_t now, pdp_slices_need *need)
{
    pdp_limits_cost c = worst_of(worst);

    if (need != NULL) {
        memset(need, 0, sizeof(*need));
    }
    pdp_slices_admit(s, id, q, n, b, nb, &c, tokens, emergency, now, &g_res,
                     need);
    return g_res.denied;
}

static pdp_limits_what
admit(pdp_slices *s, const char *id, const pdp_limits_req *q, uint32_t n,
      const pdp_limits_budget *b, uint32_t nb, int64_t worst, int64_t tokens,
      int64_t now, pdp_slices_need *need)
{
    return admit_em(s, id, q, n, b, nb, worst, tokens, false, now, need);
}

/* touch makes the rules known (a denied admission, asking for nothing),
 * so slices can be granted to them. */
static void
touch(pdp_slices *s, const pdp_limits_req *q, uint32_t n,
      const pdp_limits_budget *b, uint32_t nb, int64_t now)
{
    CU_ASSERT_NOT_EQUAL(admit(s, "touch", q, n, b, nb, 1, 0, now, NULL),
                        PDP_LIMITS_OK);
}

/* give grants ask i of need (the others get no answer). */
static void
give(pdp_slices *s, const pdp_slices_need *need, uint32_t i, int64_t reqs,
     int64_t toks, int64_t slots, int64_t micro, int64_t sent)
{
    pdp_wire_granted g;

    memset(&g, 0, sizeof(g));
    snprintf(g.id, sizeof(g.id), "%s", need->w[i].id);
    g.ok     = true;
    g.reqs   = reqs;
    g.toks   = toks;
    g.slots  = slots;
    g.micro  = micro;
    g.ttl_ms = TTL_MS;
    pdp_slices_grant(s, need, &g, 1, sent, NULL);
}

/* give_rate / give_bud add a slice named id to a known rule, as the
 * answer to an ask of that id (granted for ttl_ms). */
static void
give_rate_ttl(pdp_slices *s, const pdp_limits_req *q, const char *id,
              int64_t reqs, int64_t toks, int64_t slots, int64_t sent,
              int64_t ttl_ms)
{
    pdp_slices_need  need;
    pdp_wire_granted g;

    memset(&need, 0, sizeof(need));
    memset(&g, 0, sizeof(g));
    need.n         = 1;
    need.w[0].kind = 1;
    snprintf(need.w[0].id, sizeof(need.w[0].id), "%s", id);
    snprintf(need.w[0].rule_id, sizeof(need.w[0].rule_id), "%s", q->rule_id);
    snprintf(need.w[0].scope, sizeof(need.w[0].scope), "%s", q->scope);
    snprintf(g.id, sizeof(g.id), "%s", id);
    g.ok     = true;
    g.reqs   = reqs;
    g.toks   = toks;
    g.slots  = slots;
    g.ttl_ms = ttl_ms;
    pdp_slices_grant(s, &need, &g, 1, sent, NULL);
}

static void
give_rate(pdp_slices *s, const pdp_limits_req *q, const char *id, int64_t reqs,
          int64_t toks, int64_t slots, int64_t sent)
{
    give_rate_ttl(s, q, id, reqs, toks, slots, sent, TTL_MS);
}

static void
give_bud(pdp_slices *s, const pdp_limits_budget *b, const char *id,
         int64_t micro, int64_t sent)
{
    pdp_slices_need  need;
    pdp_wire_granted g;

    memset(&need, 0, sizeof(need));
    memset(&g, 0, sizeof(g));
    need.n             = 1;
    need.budget[0]     = true;
    need.w[0].kind     = 2;
    need.w[0].window   = b->code;
    need.w[0].start_ms = b->start_ms;
    snprintf(need.w[0].id, sizeof(need.w[0].id), "%s", id);
    snprintf(need.w[0].rule_id, sizeof(need.w[0].rule_id), "%s", b->rule_id);
    snprintf(need.w[0].scope, sizeof(need.w[0].scope), "%s", b->scope);
    snprintf(g.id, sizeof(g.id), "%s", id);
    g.ok     = true;
    g.micro  = micro;
    g.ttl_ms = TTL_MS;
    pdp_slices_grant(s, &need, &g, 1, sent, NULL);
}

/* fill admits requests "<tag>-<i>" of worst case `worst` against the
 * budgets until one is denied; returns how many were admitted (left in
 * flight). */
static int
fill(pdp_slices *s, const char *tag, const pdp_limits_req *q, uint32_t n,
     const pdp_limits_budget *b, uint32_t nb, int64_t worst, int64_t now)
{
    char id[64];
    int  k = 0;

    for (;;) {
        snprintf(id, sizeof(id), "%s-%d", tag, k);
        if (admit(s, id, q, n, b, nb, worst, 0, now, NULL) != PDP_LIMITS_OK) {
            return k;
        }
        if (++k > 100000) {
            CU_FAIL("fill: no end");
            return k;
        }
    }
}

static bool
has_prefix(const char *id, const pdp_slices *s)
{
    size_t n = strlen(pdp_slices_prefix(s));

    return strncmp(id, pdp_slices_prefix(s), n) == 0 && id[n] == ':' &&
           id[n + 1] >= '0' && id[n + 1] <= '9';
}

/* ---- asks ------------------------------------------------------------------
 */

static void
test_prefix_names_node_and_boot(void)
{
    pdp_slices *s  = mk();
    pdp_slices *l  = NULL;
    int64_t     t0 = tg_now_ms();
    const char *p  = pdp_slices_prefix(s);
    long long   boot;

    CU_ASSERT_EQUAL(strncmp(p, "node-a:", 7), 0);
    boot = atoll(p + 7);
    CU_ASSERT(boot > t0 - 600000 && boot <= t0);
    /* A long node name is cut to 16 bytes in lease ids. */
    CU_ASSERT_EQUAL_FATAL(
        pdp_slices_create(&l, "a-very-long-node-name-0123", TTL_MS, USE_MS),
        TG_OK);
    CU_ASSERT_EQUAL(strncmp(pdp_slices_prefix(l), "a-very-long-node:", 17), 0);
    pdp_slices_destroy(l);
    pdp_slices_destroy(s);
    pdp_slices_destroy(NULL);
}

static void
test_no_slice_denies_and_asks(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_req    q    = rate("rl-rpm", 400, 0, 0);
    pdp_limits_budget b    = bud("bg-day", 8000);
    pdp_slices_need   need = {0};
    pdp_slices_need   more = {0};
    pdp_wire_want    *w;

    CU_ASSERT_EQUAL(admit(s, "r1", &q, 1, &b, 1, 30, 100, t, &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(g_res.denied_rule, 0);
    CU_ASSERT_EQUAL(g_res.limit, 400);
    CU_ASSERT(g_res.retry_ms >= 1);
    CU_ASSERT_STRING_EQUAL(g_res.reservation_id, "");
    CU_ASSERT_FALSE(need.waiting);
    CU_ASSERT_EQUAL_FATAL(need.n, 2);
    /* The rate rule's ask: at least one request, no tokens or slots (the
     * rule has no such limits), at most a quarter of the rpm. */
    w = &need.w[0];
    CU_ASSERT_FALSE(need.budget[0]);
    CU_ASSERT_EQUAL(need.rule[0], 0);
    CU_ASSERT_EQUAL(w->kind, 1);
    CU_ASSERT_STRING_EQUAL(w->rule_id, "rl-rpm");
    CU_ASSERT_STRING_EQUAL(w->scope, "key_1");
    CU_ASSERT_EQUAL(w->rpm, 400);
    CU_ASSERT_EQUAL(w->min_reqs, 1);
    CU_ASSERT(w->want_reqs >= 1 && w->want_reqs <= 100);
    CU_ASSERT_EQUAL(w->min_toks, 0);
    CU_ASSERT_EQUAL(w->want_toks, 0);
    CU_ASSERT_EQUAL(w->min_slots, 0);
    CU_ASSERT_EQUAL(w->want_slots, 0);
    CU_ASSERT_EQUAL(w->ttl_ms, TTL_MS);
    CU_ASSERT_TRUE(has_prefix(w->id, s));
    /* The budget's: the bucket, and at least this request's worst case. */
    w = &need.w[1];
    CU_ASSERT_TRUE(need.budget[1]);
    CU_ASSERT_EQUAL(need.rule[1], 0);
    CU_ASSERT_EQUAL(w->kind, 2);
    CU_ASSERT_STRING_EQUAL(w->rule_id, "bg-day");
    CU_ASSERT_STRING_EQUAL(w->scope, "acme");
    CU_ASSERT_EQUAL(w->window, 3);
    CU_ASSERT_EQUAL(w->start_ms, WSTART);
    CU_ASSERT_EQUAL(w->span_h, 0);
    CU_ASSERT_EQUAL(w->limit, 8000);
    CU_ASSERT_EQUAL(w->scope_kind, 2);
    CU_ASSERT_EQUAL(w->nthr, 2);
    CU_ASSERT_EQUAL(w->thr[0], 50);
    CU_ASSERT_EQUAL(w->thr[1], 90);
    CU_ASSERT_EQUAL(w->min_micro, 30);
    CU_ASSERT(w->want_micro >= 30 && w->want_micro <= 1000);
    CU_ASSERT_EQUAL(w->ttl_ms, TTL_MS);
    CU_ASSERT_TRUE(has_prefix(w->id, s));
    CU_ASSERT_STRING_NOT_EQUAL(need.w[0].id, need.w[1].id);
    /* While those asks are out, another request waits for them. */
    CU_ASSERT_EQUAL(admit(s, "r2", &q, 1, &b, 1, 30, 100, t + 1, &more),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(more.n, 0);
    CU_ASSERT_TRUE(more.waiting);
    CU_ASSERT_EQUAL(admit(s, "r3", NULL, 0, &b, 1, 30, 0, t + 1, &more),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(more.n, 0);
    CU_ASSERT_TRUE(more.waiting);
    /* Unanswered (central unreachable): the next request asks again,
     * under fresh ids. */
    pdp_slices_asked(s, &need);
    CU_ASSERT_EQUAL(admit(s, "r4", &q, 1, &b, 1, 30, 100, t + 2, &more),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_FALSE(more.waiting);
    CU_ASSERT_EQUAL_FATAL(more.n, 2);
    CU_ASSERT_STRING_NOT_EQUAL(more.w[0].id, need.w[0].id);
    CU_ASSERT_STRING_NOT_EQUAL(more.w[0].id, need.w[1].id);
    CU_ASSERT_STRING_NOT_EQUAL(more.w[1].id, need.w[0].id);
    CU_ASSERT_STRING_NOT_EQUAL(more.w[1].id, need.w[1].id);
    /* Ending the old asks again does not end the new ones. */
    pdp_slices_asked(s, &need);
    CU_ASSERT_EQUAL(admit(s, "r5", &q, 1, &b, 1, 30, 100, t + 3, &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(need.n, 0);
    CU_ASSERT_TRUE(need.waiting);
    /* Nothing was admitted. */
    CU_ASSERT_FALSE(pdp_slices_settle(s, "r1", 0, 0, false));
    CU_ASSERT_FALSE(pdp_slices_settle(s, "r4", 0, 0, false));
    pdp_slices_destroy(s);
}

static void
test_deny_names_first_short_rule(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_req    q[3] = {rate("rl-a", 600, 0, 0), rate("rl-b", 60, 0, 0),
                              rate("rl-c", 0, 6000, 0)};
    pdp_limits_budget b[2] = {bud("bg-day", 8000), bud("bg-month", 90000)};
    pdp_slices_need   need;

    touch(s, q, 3, b, 2, t);
    give_rate(s, &q[0], "L-a", 10, 0, 0, t);
    /* rl-b and rl-c are short: the deny names rl-b, both are asked for
     * (rl-c for at least this request's tokens), rl-a is not. */
    CU_ASSERT_EQUAL(admit(s, "x1", q, 3, NULL, 0, 0, 120, t, &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(g_res.denied_rule, 1);
    CU_ASSERT_EQUAL(g_res.limit, 60);
    CU_ASSERT_EQUAL_FATAL(need.n, 2);
    CU_ASSERT_STRING_EQUAL(need.w[0].rule_id, "rl-b");
    CU_ASSERT_EQUAL(need.rule[0], 1);
    CU_ASSERT_EQUAL(need.w[0].min_reqs, 1);
    CU_ASSERT_STRING_EQUAL(need.w[1].rule_id, "rl-c");
    CU_ASSERT_EQUAL(need.rule[1], 2);
    CU_ASSERT_EQUAL(need.w[1].min_reqs, 0);
    CU_ASSERT_EQUAL(need.w[1].min_toks, 120);
    CU_ASSERT(need.w[1].want_toks >= 120 && need.w[1].want_toks <= 1500);
    pdp_slices_asked(s, &need);
    /* A budget short after one that fits: denied_budget names it. */
    give_bud(s, &b[0], "L-day", 1000, t);
    CU_ASSERT_EQUAL(admit(s, "x2", NULL, 0, b, 2, 45, 0, t, &need),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(g_res.denied_budget, 1);
    CU_ASSERT_EQUAL(g_res.limit, 90000);
    CU_ASSERT_EQUAL(g_res.b_worst, 45);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT_TRUE(need.budget[0]);
    CU_ASSERT_EQUAL(need.rule[0], 1);
    CU_ASSERT_STRING_EQUAL(need.w[0].rule_id, "bg-month");
    CU_ASSERT_EQUAL(need.w[0].min_micro, 45);
    /* A worst case above an eighth of the limit is asked for whole. */
    pdp_slices_asked(s, &need);
    CU_ASSERT_EQUAL(admit(s, "x3", NULL, 0, &b[1], 1, 20000, 0, t, &need),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT_EQUAL(need.w[0].min_micro, 20000);
    CU_ASSERT_EQUAL(need.w[0].want_micro, 20000);
    pdp_slices_destroy(s);
}

/* Asks are sized to about two seconds of demand, capped at a quarter of a
 * rate limit and an eighth of a budget. */
static void
test_ask_sized_to_demand(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = (tg_now_ms() / 1000) * 1000 + 10;
    pdp_limits_req    q[2] = {rate("rl-big", 100000, 0, 0),
                              rate("rl-small", 120, 0, 0)};
    pdp_limits_budget b[2] = {bud("bg-big", 80000000), bud("bg-small", 8000)};
    pdp_slices_need   need;
    char              id[32];

    /* 50 requests in one second, none with an ask. */
    for (int i = 0; i < 49; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        CU_ASSERT_NOT_EQUAL(admit(s, id, q, 2, b, 2, 30, 0, t + i, NULL),
                            PDP_LIMITS_OK);
    }
    CU_ASSERT_NOT_EQUAL(admit(s, "d49", q, 2, b, 2, 30, 0, t + 49, &need),
                        PDP_LIMITS_OK);
    CU_ASSERT_EQUAL_FATAL(need.n, 4);
    CU_ASSERT_STRING_EQUAL(need.w[0].rule_id, "rl-big");
    CU_ASSERT(need.w[0].want_reqs >= 80 && need.w[0].want_reqs <= 120);
    CU_ASSERT_STRING_EQUAL(need.w[1].rule_id, "rl-small");
    CU_ASSERT_EQUAL(need.w[1].want_reqs, 30); /* 120 / 4 */
    CU_ASSERT_STRING_EQUAL(need.w[2].rule_id, "bg-big");
    CU_ASSERT(need.w[2].want_micro >= 2400 && need.w[2].want_micro <= 3600);
    CU_ASSERT_STRING_EQUAL(need.w[3].rule_id, "bg-small");
    CU_ASSERT_EQUAL(need.w[3].want_micro, 1000); /* 8000 / 8 */
    CU_ASSERT_EQUAL(need.w[3].min_micro, 30);
    pdp_slices_destroy(s);
}

/* ---- admission -------------------------------------------------------------
 */

static void
test_grant_then_admit(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_req    q    = rate("rl-rpm", 400, 0, 0);
    pdp_limits_budget b    = bud("bg-day", 8000);
    pdp_slices_need   need = {0};
    pdp_slices_stats  st;

    CU_ASSERT_EQUAL(admit(s, "r1", &q, 1, &b, 1, 30, 0, t, &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL_FATAL(need.n, 2);
    give(s, &need, 0, 5, 0, 0, 0, t);
    give(s, &need, 1, 0, 0, 0, 100, t);
    CU_ASSERT_EQUAL(admit(s, "r1", &q, 1, &b, 1, 30, 0, t + 1, &need),
                    PDP_LIMITS_OK);
    CU_ASSERT_STRING_EQUAL(g_res.reservation_id, "r1");
    CU_ASSERT_EQUAL(g_res.b_worst, 30);
    CU_ASSERT_EQUAL(g_res.clamp_tokens, 30);
    CU_ASSERT_EQUAL(need.n, 0);
    pdp_slices_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.granted, 2);
    CU_ASSERT_EQUAL(st.held, 2);
    CU_ASSERT_EQUAL(st.refused, 0);
    /* The grants ended the asks: a short rule asks again at once. */
    CU_ASSERT_EQUAL(fill(s, "f", &q, 1, &b, 1, 30, t + 2), 2);
    CU_ASSERT_EQUAL(admit(s, "r2", &q, 1, &b, 1, 30, 0, t + 3, &need),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(need.n, 1);
    CU_ASSERT_FALSE(need.waiting);
    pdp_slices_destroy(s);
}

static void
test_all_or_nothing(void)
{
    pdp_slices       *s       = mk();
    int64_t           t       = tg_now_ms();
    pdp_limits_req    q       = rate("rl", 600, 0, 0);
    pdp_limits_req    q2      = rate("rl-none", 600, 0, 0);
    pdp_limits_req    both[2] = {q, q2};
    pdp_limits_budget b       = bud("bg", 8000);
    pdp_wire_return   r[4];
    char              id[16];

    touch(s, both, 2, &b, 1, t);
    give_rate(s, &q, "L-rate", 4, 0, 0, t);
    /* A rate slice without a budget slice: denied, nothing counted. */
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        CU_ASSERT_EQUAL(admit(s, id, &q, 1, &b, 1, 30, 0, t + 1, NULL),
                        PDP_LIMITS_BUDGET);
    }
    give_bud(s, &b, "L-bud", 100, t);
    /* A budget slice and a rate slice, but a second rate rule without
     * one: denied, nothing counted either. */
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "b%d", i);
        CU_ASSERT_EQUAL(admit(s, id, both, 2, &b, 1, 30, 0, t + 1, NULL),
                        PDP_LIMITS_REQUESTS);
        CU_ASSERT_EQUAL(g_res.denied_rule, 1);
    }
    /* 100 micro at 30 each: exactly 3, then short on the budget (the rate
     * slice still has a request left). */
    CU_ASSERT_EQUAL(admit(s, "x1", &q, 1, &b, 1, 30, 0, t + 2, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "x2", &q, 1, &b, 1, 30, 0, t + 2, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "x3", &q, 1, &b, 1, 30, 0, t + 2, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "x4", &q, 1, &b, 1, 30, 0, t + 2, NULL),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(admit(s, "x4", &q, 1, &b, 1, 10, 0, t + 2, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "x5", &q, 1, NULL, 0, 0, 0, t + 2, NULL),
                    PDP_LIMITS_REQUESTS);
    for (int i = 1; i <= 4; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        CU_ASSERT_TRUE(pdp_slices_settle(s, id, 0, 1, false));
    }
    /* What the rate slice gives back counts the 4 admitted only. */
    CU_ASSERT_EQUAL_FATAL(pdp_slices_returns(s, t + USE_MS, r, 4), 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(strcmp(r[i].id, "L-rate") == 0 ||
                  strcmp(r[i].id, "L-bud") == 0);
        if (strcmp(r[i].id, "L-rate") == 0) {
            CU_ASSERT_EQUAL(r[i].used_reqs, 4);
        }
    }
    pdp_slices_destroy(s);
}

static void
test_slice_admits_until_use_time(void)
{
    pdp_slices    *s  = mk();
    int64_t        t  = tg_now_ms();
    pdp_limits_req q  = rate("rl", 600, 0, 0);
    pdp_limits_req q2 = rate("rl-short", 600, 0, 0);

    touch(s, &q, 1, NULL, 0, t);
    touch(s, &q2, 1, NULL, 0, t);
    /* use_until = sent + min(use_ms, ttl / 2). */
    give_rate(s, &q, "L1", 100, 0, 0, t - 1000);
    CU_ASSERT_EQUAL(
        admit(s, "a", &q, 1, NULL, 0, 0, 0, t - 1000 + USE_MS - 1, NULL),
        PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(
        admit(s, "b", &q, 1, NULL, 0, 0, 0, t - 1000 + USE_MS, NULL),
        PDP_LIMITS_REQUESTS);
    give_rate_ttl(s, &q2, "L2", 100, 0, 0, t, 8000);
    CU_ASSERT_EQUAL(admit(s, "c", &q2, 1, NULL, 0, 0, 0, t + 3999, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "d", &q2, 1, NULL, 0, 0, 0, t + 4000, NULL),
                    PDP_LIMITS_REQUESTS);
    pdp_slices_destroy(s);
}

static void
test_settle_and_abandon(void)
{
    pdp_slices       *s = mk();
    int64_t           t = tg_now_ms();
    pdp_limits_budget b = bud("bg", 8000);

    touch(s, NULL, 0, &b, 1, t);
    give_bud(s, &b, "L", 100, t);
    CU_ASSERT_EQUAL(admit(s, "A", NULL, 0, &b, 1, 30, 0, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "B", NULL, 0, &b, 1, 30, 0, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "C", NULL, 0, &b, 1, 30, 0, t + 1, NULL),
                    PDP_LIMITS_OK);
    /* held 90: 10 left. */
    CU_ASSERT_EQUAL(admit(s, "D", NULL, 0, &b, 1, 11, 0, t + 1, NULL),
                    PDP_LIMITS_BUDGET);
    /* A costs 11: 100 - 11 used - 60 held = 29, one short of 30. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "A", 0, 11, false));
    CU_ASSERT_EQUAL(admit(s, "D", NULL, 0, &b, 1, 30, 0, t + 2, NULL),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(admit(s, "D", NULL, 0, &b, 1, 29, 0, t + 2, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "E", NULL, 0, &b, 1, 1, 0, t + 2, NULL),
                    PDP_LIMITS_BUDGET);
    /* B abandoned: its 30 come back, its cost is not counted. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "B", 0, 25, true));
    CU_ASSERT_EQUAL(admit(s, "E", NULL, 0, &b, 1, 30, 0, t + 3, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "F", NULL, 0, &b, 1, 1, 0, t + 3, NULL),
                    PDP_LIMITS_BUDGET);
    /* C costs its whole worst case: nothing freed. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "C", 0, 30, false));
    CU_ASSERT_EQUAL(admit(s, "F", NULL, 0, &b, 1, 1, 0, t + 4, NULL),
                    PDP_LIMITS_BUDGET);
    /* D costs nothing: its 29 come back. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "D", 0, 0, false));
    /* An id in flight is not admitted twice, and holds nothing more. */
    CU_ASSERT_EQUAL(admit(s, "E", NULL, 0, &b, 1, 29, 0, t + 5, NULL),
                    PDP_LIMITS_ABANDONED);
    CU_ASSERT_STRING_EQUAL(g_res.reservation_id, "");
    CU_ASSERT_EQUAL(admit(s, "F", NULL, 0, &b, 1, 29, 0, t + 5, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "G", NULL, 0, &b, 1, 1, 0, t + 5, NULL),
                    PDP_LIMITS_BUDGET);
    /* Unknown and settled ids. */
    CU_ASSERT_FALSE(pdp_slices_settle(s, "nope", 0, 0, false));
    CU_ASSERT_FALSE(pdp_slices_settle(s, "A", 0, 11, false));
    CU_ASSERT_FALSE(pdp_slices_settle(s, "B", 0, 0, true));
    /* A settled id can be used again (nothing held under it). */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "E", 0, 0, false));
    CU_ASSERT_EQUAL(admit(s, "A", NULL, 0, &b, 1, 30, 0, t + 6, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "A", 0, 0, true));
    CU_ASSERT_TRUE(pdp_slices_settle(s, "F", 0, 0, true));
    /* Spent: 11 + 30 = 41 of 100. */
    CU_ASSERT_EQUAL(admit(s, "H", NULL, 0, &b, 1, 59, 0, t + 7, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "I", NULL, 0, &b, 1, 1, 0, t + 7, NULL),
                    PDP_LIMITS_BUDGET);
    pdp_slices_destroy(s);
}

static void
test_rate_slice_counts(void)
{
    pdp_slices     *s  = mk();
    int64_t         t  = tg_now_ms();
    pdp_limits_req  qr = rate("rl-rpm", 600, 0, 0);
    pdp_limits_req  qt = rate("rl-tpm", 0, 60000, 0);
    pdp_limits_req  qc = rate("rl-conc", 0, 0, 4);
    pdp_wire_return r[4];
    int64_t         reqs = 0, toks = 0;

    touch(s, &qr, 1, NULL, 0, t);
    touch(s, &qt, 1, NULL, 0, t);
    touch(s, &qc, 1, NULL, 0, t);
    give_rate(s, &qr, "L-rpm", 2, 0, 0, t);
    give_rate(s, &qt, "L-tpm", 0, 100, 0, t);
    give_rate(s, &qc, "L-conc", 0, 0, 1, t);
    /* Requests: counted at admission, never given back by a settle. */
    CU_ASSERT_EQUAL(admit(s, "r1", &qr, 1, NULL, 0, 0, 10, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "r1", 10, 0, false));
    CU_ASSERT_EQUAL(admit(s, "r2", &qr, 1, NULL, 0, 0, 10, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "r2", 0, 0, true));
    CU_ASSERT_EQUAL(admit(s, "r3", &qr, 1, NULL, 0, 0, 10, t + 1, NULL),
                    PDP_LIMITS_REQUESTS);
    /* Tokens: the estimate is held, then replaced by the actual count. */
    CU_ASSERT_EQUAL(admit(s, "t1", &qt, 1, NULL, 0, 0, 60, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "t2", &qt, 1, NULL, 0, 0, 41, t + 1, NULL),
                    PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(admit(s, "t2", &qt, 1, NULL, 0, 0, 40, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "t1", 10, 0, false)); /* 50 back */
    CU_ASSERT_EQUAL(admit(s, "t3", &qt, 1, NULL, 0, 0, 51, t + 1, NULL),
                    PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(admit(s, "t3", &qt, 1, NULL, 0, 0, 50, t + 1, NULL),
                    PDP_LIMITS_OK);
    /* An abandoned request's tokens are not counted. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "t3", 999, 0, true));
    CU_ASSERT_TRUE(pdp_slices_settle(s, "t2", 30, 0, false));
    CU_ASSERT_EQUAL(admit(s, "t4", &qt, 1, NULL, 0, 0, 61, t + 1, NULL),
                    PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(admit(s, "t4", &qt, 1, NULL, 0, 0, 60, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "t4", 60, 0, false));
    /* Concurrency: a slot is held while in flight, freed at settle. */
    CU_ASSERT_EQUAL(admit(s, "c1", &qc, 1, NULL, 0, 0, 5, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "c2", &qc, 1, NULL, 0, 0, 5, t + 1, NULL),
                    PDP_LIMITS_CONCURRENT);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "c1", 5, 0, false));
    CU_ASSERT_EQUAL(admit(s, "c2", &qc, 1, NULL, 0, 0, 5, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "c3", &qc, 1, NULL, 0, 0, 5, t + 1, NULL),
                    PDP_LIMITS_CONCURRENT);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "c2", 0, 0, true));
    CU_ASSERT_EQUAL(admit(s, "c3", &qc, 1, NULL, 0, 0, 5, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "c3", 7, 0, false));
    /* Given back with what they used: requests admitted, actual tokens. */
    CU_ASSERT_EQUAL_FATAL(pdp_slices_returns(s, t + USE_MS, r, 4), 3);
    for (int i = 0; i < 3; i++) {
        if (strcmp(r[i].id, "L-rpm") == 0) {
            CU_ASSERT_EQUAL(r[i].used_reqs, 2);
            CU_ASSERT_EQUAL(r[i].used_toks, 10);
        } else if (strcmp(r[i].id, "L-tpm") == 0) {
            CU_ASSERT_EQUAL(r[i].used_reqs, 4);
            CU_ASSERT_EQUAL(r[i].used_toks, 100);
        } else if (strcmp(r[i].id, "L-conc") == 0) {
            CU_ASSERT_EQUAL(r[i].used_reqs, 3);
            CU_ASSERT_EQUAL(r[i].used_toks, 12);
        } else {
            CU_FAIL("unknown slice returned");
        }
        reqs += r[i].used_reqs;
        toks += r[i].used_toks;
    }
    CU_ASSERT_EQUAL(reqs, 9);
    CU_ASSERT_EQUAL(toks, 122);
    pdp_slices_destroy(s);
}

/* ---- refusals --------------------------------------------------------------
 */

static void
test_refusal_stands_for_a_while(void)
{
    pdp_slices      *s    = mk();
    int64_t          t    = tg_now_ms();
    pdp_limits_req   q[2] = {rate("rl-a", 600, 0, 0), rate("rl-b", 60, 0, 0)};
    pdp_slices_need  need = {0};
    pdp_slices_need  more = {0};
    pdp_wire_granted g, ref;
    pdp_slices_stats st;

    touch(s, q, 2, NULL, 0, t);
    give_rate(s, &q[0], "L-a", 1, 0, 0, t);
    CU_ASSERT_EQUAL(admit(s, "f1", q, 2, NULL, 0, 0, 0, tg_now_ms(), &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT_EQUAL(need.rule[0], 1);
    memset(&g, 0, sizeof(g));
    memset(&ref, 0, sizeof(ref));
    snprintf(g.id, sizeof(g.id), "%s", need.w[0].id);
    g.denied   = PDP_LIMITS_REQUESTS;
    g.limit    = 60;
    g.used     = 60;
    g.retry_ms = 200;
    pdp_slices_grant(s, &need, &g, 1, t, &ref);
    CU_ASSERT_STRING_EQUAL(ref.id, g.id);
    CU_ASSERT_FALSE(ref.ok);
    CU_ASSERT_EQUAL(ref.limit, 60);
    memset(&g_res, 0, sizeof(g_res));
    pdp_slices_refused(&need, 0, &ref, &g_res);
    CU_ASSERT_EQUAL(g_res.denied, PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(g_res.denied_rule, 1);
    CU_ASSERT_EQUAL(g_res.limit, 60);
    CU_ASSERT_EQUAL(g_res.used, 60);
    CU_ASSERT_EQUAL(g_res.retry_ms, 200);
    pdp_slices_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.refused, 1);
    CU_ASSERT_EQUAL(st.granted, 1);
    /* Meanwhile the refusal is the answer: no ask, nothing to wait for,
     * and the rate slice of rl-a is not touched. */
    CU_ASSERT_EQUAL(admit(s, "f2", q, 2, NULL, 0, 0, 0, tg_now_ms(), &more),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(more.n, 0);
    CU_ASSERT_FALSE(more.waiting);
    CU_ASSERT_EQUAL(g_res.denied_rule, 1);
    CU_ASSERT_EQUAL(g_res.limit, 60);
    CU_ASSERT_EQUAL(g_res.used, 60);
    CU_ASSERT_EQUAL(g_res.retry_ms, 200);
    /* After its retry time, a request asks again. */
    CU_ASSERT_EQUAL(
        admit(s, "f3", q, 2, NULL, 0, 0, 0, tg_now_ms() + 1000, &more),
        PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(more.n, 1);
    CU_ASSERT_STRING_EQUAL(more.w[0].rule_id, "rl-b");
    CU_ASSERT_FALSE(more.waiting);
    CU_ASSERT_EQUAL(admit(s, "f4", q, 1, NULL, 0, 0, 0, t + 2, NULL),
                    PDP_LIMITS_OK);
    pdp_slices_destroy(s);
}

/* A slice granted after a refusal ends it: when that slice is used up,
 * the next request asks again instead of repeating the old refusal. */
static void
test_grant_ends_refusal(void)
{
    pdp_slices      *s    = mk();
    int64_t          t    = tg_now_ms();
    pdp_limits_req   q    = rate("rl", 60, 0, 0);
    pdp_slices_need  need = {0};
    pdp_wire_granted g;

    CU_ASSERT_EQUAL(admit(s, "a", &q, 1, NULL, 0, 0, 0, t, &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    memset(&g, 0, sizeof(g));
    snprintf(g.id, sizeof(g.id), "%s", need.w[0].id);
    g.denied   = PDP_LIMITS_REQUESTS;
    g.limit    = 60;
    g.used     = 60;
    g.retry_ms = 5000;
    pdp_slices_grant(s, &need, &g, 1, t, NULL);
    give_rate(s, &q, "L", 1, 0, 0, t);
    CU_ASSERT_EQUAL(admit(s, "b", &q, 1, NULL, 0, 0, 0, tg_now_ms(), &need),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "c", &q, 1, NULL, 0, 0, 0, tg_now_ms(), &need),
                    PDP_LIMITS_REQUESTS);
    CU_ASSERT_EQUAL(need.n, 1);
    CU_ASSERT_EQUAL(g_res.used, 0);
    pdp_slices_destroy(s);
}

static void
test_budget_refusal(void)
{
    pdp_slices       *s    = mk();
    pdp_limits_budget b    = bud("bg", 8000);
    pdp_slices_need   need = {0};
    pdp_slices_need   more = {0};
    pdp_wire_granted  g[2];

    CU_ASSERT_EQUAL(admit(s, "f1", NULL, 0, &b, 1, 30, 0, tg_now_ms(), &need),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    memset(g, 0, sizeof(g));
    snprintf(g[0].id, sizeof(g[0].id), "not-asked");
    g[0].ok    = true;
    g[0].micro = 1000000;
    snprintf(g[1].id, sizeof(g[1].id), "%s", need.w[0].id);
    g[1].denied = PDP_LIMITS_BUDGET;
    g[1].limit  = 8000;
    g[1].used   = 7990;
    pdp_slices_grant(s, &need, g, 2, tg_now_ms(), NULL);
    /* An answer to no ask of need is not a slice. */
    CU_ASSERT_EQUAL(admit(s, "f2", NULL, 0, &b, 1, 30, 0, tg_now_ms(), &more),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(more.n, 0);
    CU_ASSERT_FALSE(more.waiting);
    CU_ASSERT_EQUAL(g_res.denied_budget, 0);
    CU_ASSERT_EQUAL(g_res.limit, 8000);
    CU_ASSERT_EQUAL(g_res.b_spent, 7990);
    CU_ASSERT_EQUAL(g_res.used, 7990);
    CU_ASSERT_EQUAL(g_res.retry_ms, 1000); /* none given */
    memset(&g_res, 0, sizeof(g_res));
    pdp_slices_refused(&need, 0, &g[1], &g_res);
    CU_ASSERT_EQUAL(g_res.denied, PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(g_res.denied_budget, 0);
    CU_ASSERT_EQUAL(g_res.b_spent, 7990);
    CU_ASSERT_EQUAL(g_res.retry_ms, 1000);
    pdp_slices_destroy(s);
}

/* ---- returns ---------------------------------------------------------------
 */

static void
test_returns(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_budget b    = bud("bg", 8000);
    pdp_slices_need   need = {0};
    pdp_wire_return   r[4];
    pdp_slices_stats  st;

    touch(s, NULL, 0, &b, 1, t);
    give_bud(s, &b, "L1", 100, t);
    CU_ASSERT_EQUAL(admit(s, "A", NULL, 0, &b, 1, 30, 0, t + 100, NULL),
                    PDP_LIMITS_OK);
    /* In flight: never given back, idle or past its use time. */
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + 5000, r, 4), 0);
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + 100000, r, 4), 0);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "A", 0, 10, false));
    /* Idle a second since its last admission: back. */
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + 1099, r, 4), 0);
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + 1100, r, 0), 0);
    CU_ASSERT_EQUAL_FATAL(pdp_slices_returns(s, t + 1100, r, 4), 1);
    CU_ASSERT_STRING_EQUAL(r[0].id, "L1");
    CU_ASSERT_EQUAL(r[0].used_reqs, 0);
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + 100000, r, 4), 0);
    pdp_slices_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.held, 0);
    CU_ASSERT_EQUAL(st.returned, 1);
    /* Forgotten here: short again, and asked for. */
    CU_ASSERT_EQUAL(admit(s, "B", NULL, 0, &b, 1, 30, 0, t + 1200, &need),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(need.n, 1);
    /* Busy but past its use time: back as soon as nothing is in flight. */
    give(s, &need, 0, 0, 0, 0, 100, t);
    CU_ASSERT_EQUAL(admit(s, "B", NULL, 0, &b, 1, 30, 0, t + USE_MS - 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "B", 0, 30, false));
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + USE_MS - 1, r, 4), 0);
    CU_ASSERT_EQUAL(pdp_slices_returns(s, t + USE_MS, r, 4), 1);
    CU_ASSERT_STRING_EQUAL(r[0].id, need.w[0].id);
    pdp_slices_destroy(s);
}

static void
test_returns_by_slice(void)
{
    pdp_slices     *s = mk();
    int64_t         t = tg_now_ms();
    pdp_limits_req  q = rate("rl", 600, 60000, 0);
    pdp_wire_return r[2];

    touch(s, &q, 1, NULL, 0, t);
    give_rate(s, &q, "L1", 1, 1000, 0, t);
    give_rate(s, &q, "L2", 1, 1000, 0, t);
    CU_ASSERT_EQUAL(admit(s, "a", &q, 1, NULL, 0, 0, 100, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "b", &q, 1, NULL, 0, 0, 100, t + 2, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "c", &q, 1, NULL, 0, 0, 100, t + 3, NULL),
                    PDP_LIMITS_REQUESTS);
    /* One of them settled: only its slice goes back. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "a", 70, 0, false));
    CU_ASSERT_EQUAL_FATAL(pdp_slices_returns(s, t + USE_MS, r, 2), 1);
    CU_ASSERT_EQUAL(r[0].used_reqs, 1);
    CU_ASSERT_EQUAL(r[0].used_toks, 70);
    CU_ASSERT_TRUE(pdp_slices_settle(s, "b", 80, 0, false));
    CU_ASSERT_EQUAL_FATAL(pdp_slices_returns(s, t + USE_MS, r, 2), 1);
    CU_ASSERT_EQUAL(r[0].used_reqs, 1);
    CU_ASSERT_EQUAL(r[0].used_toks, 80);
    pdp_slices_destroy(s);
}

/* ---- charges and the emergency allowance -----------------------------------
 */

static void
test_charges_name_budget_leases(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_req    q    = rate("rl", 600, 0, 0);
    pdp_limits_budget b[2] = {bud("bg-day", 8000), bud("bg-roll", 50000)};
    tg_usage         *u    = calloc(1, sizeof(*u));
    int               seen = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    b[1].code     = 9;
    b[1].start_ms = WSTART + 3600000;
    b[1].span_h   = 24;
    b[1].nthr     = 0;
    touch(s, &q, 1, b, 2, t);
    give_rate(s, &q, "L-rate", 10, 0, 0, t);
    give_bud(s, &b[0], "L-day", 100, t);
    give_bud(s, &b[1], "L-roll", 100, t);
    CU_ASSERT_EQUAL(admit(s, "c1", &q, 1, b, 2, 30, 0, t + 1, NULL),
                    PDP_LIMITS_OK);
    pdp_slices_charges(s, "c1", u);
    CU_ASSERT_EQUAL_FATAL(u->n_charges, 2);
    CU_ASSERT_FALSE(u->emergency);
    for (uint32_t i = 0; i < u->n_charges; i++) {
        const tg_lease_charge *c = &u->charges[i];
        if (strcmp(c->lease_id, "L-day") == 0) {
            seen |= 1;
            CU_ASSERT_STRING_EQUAL(c->rule_id, "bg-day");
            CU_ASSERT_STRING_EQUAL(c->scope, "acme");
            CU_ASSERT_EQUAL(c->window, 3);
            CU_ASSERT_EQUAL(c->start_ms, WSTART);
            CU_ASSERT_EQUAL(c->limit, 8000);
            CU_ASSERT_EQUAL(c->scope_kind, 2);
            CU_ASSERT_EQUAL(c->nthr, 2);
            CU_ASSERT_EQUAL(c->thr[0], 50);
            CU_ASSERT_EQUAL(c->thr[1], 90);
        } else if (strcmp(c->lease_id, "L-roll") == 0) {
            seen |= 2;
            CU_ASSERT_STRING_EQUAL(c->rule_id, "bg-roll");
            CU_ASSERT_EQUAL(c->window, 9);
            CU_ASSERT_EQUAL(c->start_ms, WSTART + 3600000);
            CU_ASSERT_EQUAL(c->limit, 50000);
            CU_ASSERT_EQUAL(c->nthr, 0);
        } else {
            CU_FAIL("a charge for no budget lease");
        }
    }
    CU_ASSERT_EQUAL(seen, 3);
    /* A rate-only request charges nothing; an unknown id neither. */
    CU_ASSERT_EQUAL(admit(s, "c2", &q, 1, NULL, 0, 0, 0, t + 1, NULL),
                    PDP_LIMITS_OK);
    pdp_slices_charges(s, "c2", u);
    CU_ASSERT_EQUAL(u->n_charges, 0);
    u->n_charges = 3;
    pdp_slices_charges(s, "nope", u);
    CU_ASSERT_EQUAL(u->n_charges, 0);
    /* Settled: forgotten. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "c1", 0, 30, false));
    pdp_slices_charges(s, "c1", u);
    CU_ASSERT_EQUAL(u->n_charges, 0);
    free(u);
    pdp_slices_destroy(s);
}

static void
test_emergency_allowance(void)
{
    pdp_slices       *s = mk();
    int64_t           t = tg_now_ms();
    pdp_limits_req    q = rate("rl", 600, 0, 0);
    pdp_limits_budget b = bud("bg", 8000);
    tg_usage         *u = calloc(1, sizeof(*u));
    pdp_slices_need   need;
    pdp_slices_stats  st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    /* No allowance: denied. */
    CU_ASSERT_EQUAL(admit_em(s, "e0", NULL, 0, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_BUDGET);
    pdp_slices_emergency_set(s, 100);
    /* No slice needed for the budget, none asked for. */
    CU_ASSERT_EQUAL(admit_em(s, "e1", NULL, 0, &b, 1, 30, 0, true, t, &need),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(need.n, 0);
    CU_ASSERT_STRING_EQUAL(g_res.reservation_id, "e1");
    CU_ASSERT_EQUAL(admit_em(s, "e2", NULL, 0, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit_em(s, "e3", NULL, 0, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_OK);
    /* 10 left. */
    CU_ASSERT_EQUAL(admit_em(s, "e4", NULL, 0, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(g_res.denied_budget, 0);
    CU_ASSERT_EQUAL(g_res.limit, 8000);
    CU_ASSERT_EQUAL(g_res.b_worst, 30);
    CU_ASSERT(g_res.retry_ms >= 1);
    pdp_slices_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.emergency, 3);
    CU_ASSERT_EQUAL(st.emergency_micro, 90);
    /* Charged under no lease, marked emergency. */
    pdp_slices_charges(s, "e1", u);
    CU_ASSERT_EQUAL_FATAL(u->n_charges, 1);
    CU_ASSERT_STRING_EQUAL(u->charges[0].lease_id, "");
    CU_ASSERT_STRING_EQUAL(u->charges[0].rule_id, "bg");
    CU_ASSERT_EQUAL(u->charges[0].start_ms, WSTART);
    CU_ASSERT_EQUAL(u->charges[0].limit, 8000);
    CU_ASSERT_TRUE(u->emergency);
    /* Abandoned: all of it back; settled: what it did not cost. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "e1", 0, 20, true));
    CU_ASSERT_EQUAL(admit_em(s, "e4", NULL, 0, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_OK);                           /* 10 left */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "e2", 0, 10, false)); /* 30 left */
    CU_ASSERT_EQUAL(admit_em(s, "e5", NULL, 0, &b, 1, 31, 0, true, t, NULL),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(admit_em(s, "e5", NULL, 0, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_OK); /* 0 left */
    CU_ASSERT_EQUAL(admit_em(s, "e6", NULL, 0, &b, 1, 1, 0, true, t, NULL),
                    PDP_LIMITS_BUDGET);
    pdp_slices_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.emergency, 5);
    CU_ASSERT_EQUAL(st.emergency_micro, 100);
    /* A cost above the worst case takes nothing more. */
    CU_ASSERT_TRUE(pdp_slices_settle(s, "e3", 0, 500, false));
    CU_ASSERT_EQUAL(admit_em(s, "e6", NULL, 0, &b, 1, 1, 0, true, t, NULL),
                    PDP_LIMITS_BUDGET);
    /* Rate limits still need slices; nothing of the allowance is taken. */
    pdp_slices_emergency_set(s, 30);
    CU_ASSERT_EQUAL(admit_em(s, "e7", &q, 1, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_REQUESTS);
    touch(s, &q, 1, NULL, 0, t);
    give_rate(s, &q, "L-rate", 10, 0, 0, t);
    /* A budget slice is not touched by emergency admissions, and does not
     * let one past a spent allowance. */
    give_bud(s, &b, "L-bud", 60, t);
    CU_ASSERT_EQUAL(admit_em(s, "e7", &q, 1, &b, 1, 30, 0, true, t, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit_em(s, "e8", &q, 1, &b, 1, 1, 0, true, t, NULL),
                    PDP_LIMITS_BUDGET);
    pdp_slices_charges(s, "e7", u);
    CU_ASSERT_EQUAL_FATAL(u->n_charges, 1);
    CU_ASSERT_STRING_EQUAL(u->charges[0].lease_id, "");
    CU_ASSERT_EQUAL(fill(s, "n", &q, 1, &b, 1, 30, t), 2);
    /* A regular admission is no emergency. */
    memset(u, 0, sizeof(*u));
    pdp_slices_charges(s, "n-0", u);
    CU_ASSERT_EQUAL_FATAL(u->n_charges, 1);
    CU_ASSERT_STRING_EQUAL(u->charges[0].lease_id, "L-bud");
    CU_ASSERT_FALSE(u->emergency);
    free(u);
    pdp_slices_destroy(s);
}

/* ---- prefetch --------------------------------------------------------------
 */

static void
test_prefetch(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_budget b    = bud("bg", 8000);
    pdp_limits_budget idle = bud("bg-idle", 8000);
    pdp_limits_req    q    = rate("rl", 600, 0, 0);
    pdp_slices_need   need = {0};
    pdp_slices_need   n2   = {0};

    touch(s, NULL, 0, &idle, 1, t - 5000);
    give_bud(s, &idle, "L-idle", 100, t);
    CU_ASSERT_EQUAL(admit(s, "i1", NULL, 0, &idle, 1, 80, 0, t - 3000, NULL),
                    PDP_LIMITS_OK);
    touch(s, NULL, 0, &b, 1, t);
    give_bud(s, &b, "L", 100, t);
    /* Half used is not low. */
    CU_ASSERT_EQUAL(admit(s, "p1", NULL, 0, &b, 1, 30, 0, t + 10, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "p2", NULL, 0, &b, 1, 20, 0, t + 10, NULL),
                    PDP_LIMITS_OK);
    pdp_slices_prefetch(s, t + 10, &need);
    CU_ASSERT_EQUAL(need.n, 0);
    /* More than half: asked for (the idle rule, 80 % used, is not). */
    CU_ASSERT_EQUAL(admit(s, "p3", NULL, 0, &b, 1, 1, 0, t + 20, NULL),
                    PDP_LIMITS_OK);
    pdp_slices_prefetch(s, t + 20, &need);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT_TRUE(need.budget[0]);
    CU_ASSERT_EQUAL(need.w[0].kind, 2);
    CU_ASSERT_STRING_EQUAL(need.w[0].rule_id, "bg");
    CU_ASSERT_EQUAL(need.w[0].start_ms, WSTART);
    CU_ASSERT(need.w[0].min_micro >= 1);
    CU_ASSERT(need.w[0].want_micro >= need.w[0].min_micro &&
              need.w[0].want_micro <= 1000);
    CU_ASSERT_TRUE(has_prefix(need.w[0].id, s));
    /* Being asked for: not again, and a short request waits for it. */
    pdp_slices_prefetch(s, t + 20, &n2);
    CU_ASSERT_EQUAL(n2.n, 0);
    CU_ASSERT_EQUAL(admit(s, "p4", NULL, 0, &b, 1, 60, 0, t + 20, &n2),
                    PDP_LIMITS_BUDGET);
    CU_ASSERT_EQUAL(n2.n, 0);
    CU_ASSERT_TRUE(n2.waiting);
    /* Granted: 100 + 100 with 51 used is not low any more. */
    give(s, &need, 0, 0, 0, 0, 100, t);
    memset(&n2, 0, sizeof(n2));
    pdp_slices_prefetch(s, t + 30, &n2);
    CU_ASSERT_EQUAL(n2.n, 0);
    CU_ASSERT_EQUAL(admit(s, "p4", NULL, 0, &b, 1, 60, 0, t + 40, NULL),
                    PDP_LIMITS_OK);
    /* 111 of 200: low again; asked for while there was demand in the
     * last 2 s, not after. */
    memset(&need, 0, sizeof(need));
    pdp_slices_prefetch(s, t + 2040, &need);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT_STRING_EQUAL(need.w[0].rule_id, "bg");
    pdp_slices_asked(s, &need);
    memset(&need, 0, sizeof(need));
    pdp_slices_prefetch(s, t + 2041, &need);
    CU_ASSERT_EQUAL(need.n, 0);
    pdp_slices_destroy(s);
    /* A rate rule: more than half its requests used. */
    s = mk();
    touch(s, &q, 1, NULL, 0, t);
    give_rate(s, &q, "L-rate", 4, 0, 0, t);
    CU_ASSERT_EQUAL(fill(s, "r", &q, 1, NULL, 0, 0, t + 50), 4);
    memset(&need, 0, sizeof(need));
    pdp_slices_prefetch(s, t + 50, &need);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT_EQUAL(need.w[0].kind, 1);
    CU_ASSERT_STRING_EQUAL(need.w[0].rule_id, "rl");
    CU_ASSERT_EQUAL(need.w[0].min_reqs, 1);
    CU_ASSERT(need.w[0].want_reqs >= 1 && need.w[0].want_reqs <= 150);
    pdp_slices_destroy(s);
}

/* ---- many threads ----------------------------------------------------------
 */

#define RACE_THREADS 8

typedef struct race {
    pdp_slices              *s;
    const pdp_limits_req    *q;
    uint32_t                 n;
    const pdp_limits_budget *b;
    uint32_t                 nb;
    int64_t                  worst;
    int64_t                  now;
    int64_t                  cap;   /* micro (or slots) never to pass */
    atomic_llong            *acct;  /* held + spent (micro), or in flight */
    atomic_llong            *spent; /* costs settled */
    atomic_llong            *admitted;
    atomic_llong            *over; /* times acct passed cap */
    atomic_llong            *errs; /* unexpected results */
    int                      t;
} race;

/* budget_racer admits until the budgets deny, abandoning every third and
 * settling the others at their worst case. */
static void *
budget_racer(void *arg)
{
    race             *a = arg;
    pdp_limits_cost   c = worst_of(a->worst);
    pdp_limits_result r;
    char              id[64];

    for (int k = 0;; k++) {
        snprintf(id, sizeof(id), "t%d-%d", a->t, k);
        pdp_slices_admit(a->s, id, NULL, 0, a->b, a->nb, &c, 0, false, a->now,
                         &r, NULL);
        if (r.denied == PDP_LIMITS_BUDGET) {
            break;
        }
        if (r.denied != PDP_LIMITS_OK) {
            atomic_fetch_add(a->errs, 1);
            break;
        }
        atomic_fetch_add(a->admitted, 1);
        if (atomic_fetch_add(a->acct, a->worst) + a->worst > a->cap) {
            atomic_fetch_add(a->over, 1);
        }
        sched_yield();
        if (k % 3 == 2) {
            atomic_fetch_sub(a->acct, a->worst);
            if (!pdp_slices_settle(a->s, id, 0, 0, true)) {
                atomic_fetch_add(a->errs, 1);
            }
        } else {
            atomic_fetch_add(a->spent, a->worst);
            if (!pdp_slices_settle(a->s, id, 7, a->worst, false)) {
                atomic_fetch_add(a->errs, 1);
            }
        }
    }
    return NULL;
}

/* The counters the racers share. */
typedef struct race_counts {
    atomic_llong acct, spent, admitted, over, errs;
} race_counts;

/* race_run starts RACE_THREADS copies of proto (each its own t) running
 * fn over c's counters and waits for all of them. */
static void
race_run(race proto, void *(*fn)(void *), race_counts *c)
{
    race      a[RACE_THREADS];
    pthread_t th[RACE_THREADS];

    atomic_init(&c->acct, 0);
    atomic_init(&c->spent, 0);
    atomic_init(&c->admitted, 0);
    atomic_init(&c->over, 0);
    atomic_init(&c->errs, 0);
    proto.acct     = &c->acct;
    proto.spent    = &c->spent;
    proto.admitted = &c->admitted;
    proto.over     = &c->over;
    proto.errs     = &c->errs;
    for (int i = 0; i < RACE_THREADS; i++) {
        a[i]   = proto;
        a[i].t = i;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, fn, &a[i]), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
}

static void
test_threads_never_pass_budget_slices(void)
{
    pdp_slices       *s    = mk();
    int64_t           t    = tg_now_ms();
    pdp_limits_budget b[2] = {bud("bg-a", 1000000), bud("bg-b", 1000000)};
    race_counts       c;
    int               left;

    touch(s, NULL, 0, b, 2, t);
    /* bg-a: 1000 in three slices, bg-b: 700 in two. */
    give_bud(s, &b[0], "A1", 400, t);
    give_bud(s, &b[0], "A2", 300, t);
    give_bud(s, &b[0], "A3", 300, t);
    give_bud(s, &b[1], "B1", 400, t);
    give_bud(s, &b[1], "B2", 300, t);
    race_run((race){.s = s, .b = b, .nb = 2, .worst = 10, .now = t + 1,
                    .cap = 700},
             budget_racer, &c);
    CU_ASSERT_EQUAL(atomic_load(&c.over), 0);
    CU_ASSERT_EQUAL(atomic_load(&c.errs), 0);
    CU_ASSERT(atomic_load(&c.admitted) >= 70);
    CU_ASSERT(atomic_load(&c.spent) <= 700);
    /* Exact: what is left of bg-b is 700 minus what was spent, and bg-a
     * was charged the same (never held alone). */
    left = fill(s, "rest", NULL, 0, b, 2, 10, t + 2);
    CU_ASSERT_EQUAL(atomic_load(&c.spent) + 10 * left, 700);
    CU_ASSERT_EQUAL(fill(s, "only-a", NULL, 0, &b[0], 1, 10, t + 2), 30);
    pdp_slices_destroy(s);
}

/* rate_racer admits until rl-rpm (rule 0) is out of requests, retrying
 * while rl-conc (rule 1) has no slot free; slots in flight are counted. */
static void *
rate_racer(void *arg)
{
    race             *a = arg;
    pdp_limits_result r;
    char              id[64];

    for (int k = 0;; k++) {
        snprintf(id, sizeof(id), "t%d-%d", a->t, k);
        pdp_slices_admit(a->s, id, a->q, a->n, NULL, 0, NULL, 5, false, a->now,
                         &r, NULL);
        if (r.denied == PDP_LIMITS_REQUESTS && r.denied_rule == 0) {
            break;
        }
        if (r.denied == PDP_LIMITS_CONCURRENT && r.denied_rule == 1) {
            sched_yield();
            continue;
        }
        if (r.denied != PDP_LIMITS_OK) {
            atomic_fetch_add(a->errs, 1);
            break;
        }
        atomic_fetch_add(a->admitted, 1);
        if (atomic_fetch_add(a->acct, 1) + 1 > a->cap) {
            atomic_fetch_add(a->over, 1);
        }
        sched_yield();
        atomic_fetch_sub(a->acct, 1);
        if (!pdp_slices_settle(a->s, id, 5, 0, false)) {
            atomic_fetch_add(a->errs, 1);
        }
    }
    return NULL;
}

static void
test_threads_never_pass_rate_slices(void)
{
    pdp_slices     *s    = mk();
    int64_t         t    = tg_now_ms();
    pdp_limits_req  q[2] = {rate("rl-rpm", 6000, 0, 0),
                            rate("rl-conc", 0, 0, 16)};
    race_counts     c;
    pdp_wire_return r[8];
    uint32_t        nr;
    int64_t         reqs[2] = {0, 0}, toks[2] = {0, 0};

    touch(s, q, 2, NULL, 0, t);
    give_rate(s, &q[0], "R1", 150, 0, 0, t);
    give_rate(s, &q[0], "R2", 50, 0, 0, t);
    give_rate(s, &q[1], "C1", 0, 0, 3, t);
    give_rate(s, &q[1], "C2", 0, 0, 1, t);
    race_run((race){.s = s, .q = q, .n = 2, .now = t + 1, .cap = 4},
             rate_racer, &c);
    CU_ASSERT_EQUAL(atomic_load(&c.over), 0);
    CU_ASSERT_EQUAL(atomic_load(&c.errs), 0);
    CU_ASSERT_EQUAL(atomic_load(&c.admitted), 200);
    /* Everything settled: all four go back, each rule's slices having
     * counted the 200 requests and their 1000 tokens. */
    nr = pdp_slices_returns(s, t + USE_MS, r, 8);
    CU_ASSERT_EQUAL_FATAL(nr, 4);
    for (uint32_t i = 0; i < nr; i++) {
        int k = r[i].id[0] == 'R' ? 0 : 1;
        reqs[k] += r[i].used_reqs;
        toks[k] += r[i].used_toks;
        if (strcmp(r[i].id, "R1") == 0) {
            CU_ASSERT_EQUAL(r[i].used_reqs, 150);
        } else if (strcmp(r[i].id, "R2") == 0) {
            CU_ASSERT_EQUAL(r[i].used_reqs, 50);
        }
    }
    CU_ASSERT_EQUAL(reqs[0], 200);
    CU_ASSERT_EQUAL(toks[0], 1000);
    CU_ASSERT_EQUAL(reqs[1], 200);
    CU_ASSERT_EQUAL(toks[1], 1000);
    pdp_slices_destroy(s);
}

/* pdp_slices_admit is "pdp_limits_check_budgets over the slices (same
 * arguments, same result)": a clamp budget lowers the output tokens to
 * what its slice fits, and asks for room for one output token at least. */
static void
test_clamp_budget_clamps(void)
{
    pdp_slices       *s = mk();
    int64_t           t = tg_now_ms();
    pdp_limits       *l = NULL;
    pdp_limits_budget b = bud("bg-clamp", 100);
    pdp_limits_cost   c = worst_of(300); /* 300 tokens at 1 micro each */
    pdp_limits_result direct;
    pdp_slices_need   need;

    b.clamp = true;
    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&l, 60000), TG_OK);
    pdp_limits_check_budgets(l, "x", NULL, 0, &b, 1, &c, 300, t, &direct);
    CU_ASSERT_EQUAL(direct.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(direct.clamp_tokens, 100);
    memset(&need, 0, sizeof(need));
    pdp_slices_admit(s, "x", NULL, 0, &b, 1, &c, 300, false, t, &g_res, &need);
    CU_ASSERT_EQUAL_FATAL(need.n, 1);
    CU_ASSERT(need.w[0].min_micro <= 100);
    give(s, &need, 0, 0, 0, 0, 100, t);
    pdp_slices_admit(s, "x", NULL, 0, &b, 1, &c, 300, false, t, &g_res, NULL);
    CU_ASSERT_EQUAL(g_res.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(g_res.clamp_tokens, 100);
    pdp_limits_destroy(l);
    pdp_slices_destroy(s);
}

/* A rule short on tokens or slots is denied as TOKENS or CONCURRENT with
 * that limit, as pdp_limits_check says (not as requests, limit 0). */
static void
test_short_names_the_limit(void)
{
    pdp_slices    *s  = mk();
    int64_t        t  = tg_now_ms();
    pdp_limits_req qc = rate("rl-conc", 0, 0, 4);
    pdp_limits_req qt = rate("rl-tpm", 0, 6000, 0);

    touch(s, &qc, 1, NULL, 0, t);
    give_rate(s, &qc, "L-conc", 0, 0, 1, t);
    CU_ASSERT_EQUAL(admit(s, "a", &qc, 1, NULL, 0, 0, 0, t + 1, NULL),
                    PDP_LIMITS_OK);
    CU_ASSERT_EQUAL(admit(s, "b", &qc, 1, NULL, 0, 0, 0, t + 1, NULL),
                    PDP_LIMITS_CONCURRENT);
    CU_ASSERT_EQUAL(g_res.limit, 4);
    CU_ASSERT_EQUAL(admit(s, "c", &qt, 1, NULL, 0, 0, 10, t + 1, NULL),
                    PDP_LIMITS_TOKENS);
    CU_ASSERT_EQUAL(g_res.limit, 6000);
    pdp_slices_destroy(s);
}

static const tg_unit_case cases[] = {
    {"prefix_names_node_and_boot", test_prefix_names_node_and_boot},
    {"no_slice_denies_and_asks", test_no_slice_denies_and_asks},
    {"deny_names_first_short_rule", test_deny_names_first_short_rule},
    {"ask_sized_to_demand", test_ask_sized_to_demand},
    {"grant_then_admit", test_grant_then_admit},
    {"all_or_nothing", test_all_or_nothing},
    {"slice_admits_until_use_time", test_slice_admits_until_use_time},
    {"settle_and_abandon", test_settle_and_abandon},
    {"rate_slice_counts", test_rate_slice_counts},
    {"refusal_stands_for_a_while", test_refusal_stands_for_a_while},
    {"grant_ends_refusal", test_grant_ends_refusal},
    {"budget_refusal", test_budget_refusal},
    {"returns", test_returns},
    {"returns_by_slice", test_returns_by_slice},
    {"charges_name_budget_leases", test_charges_name_budget_leases},
    {"emergency_allowance", test_emergency_allowance},
    {"prefetch", test_prefetch},
    {"threads_never_pass_budget_slices", test_threads_never_pass_budget_slices},
    {"threads_never_pass_rate_slices", test_threads_never_pass_rate_slices},
    {"clamp_budget_clamps", test_clamp_budget_clamps},
    {"short_names_the_limit", test_short_names_the_limit},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.slices", cases);
}
