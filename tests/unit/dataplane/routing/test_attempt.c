/* dataplane.attempt - what a request tries next after each kind of
 * failure: the same deployment after a backoff while it has retries, the
 * next deployment of its group first, an ordinary fallback but never a
 * context- or content-only one, the context and content fallbacks only
 * after such an error, give up when nothing is left or the client is at
 * fault; deployments cooling down passed over (with dp_health); the
 * attempt cap; attempt groups and fail-open routing from the catalog;
 * when failing open is allowed. */
#include <stdlib.h>
#include <string.h>

#include "dp_attempt.h"
#include "dp_health.h"
#include "tg_unit.h"

#define NONE (-1)
#define CTX DP_GROUP_CONTEXT
#define CNT DP_GROUP_CONTENT

/* plan fills a with deployments 10, 11, ... in groups g (n of them). */
static void
plan(dp_attempt *a, const uint8_t *g, uint32_t n, uint32_t retries,
     int64_t backoff_ms)
{
    dp_attempt_opts o = {retries, backoff_ms, 1000};
    uint32_t        index[TG_MSG_TARGETS_MAX];

    for (uint32_t i = 0; i < n; i++) {
        index[i] = 10 + i;
    }
    CU_ASSERT_EQUAL_FATAL(dp_attempt_plan(a, &o, index, g, n), n);
}

/* parse_plan reads groups written "0 0 1 O X X1 N": a number is a model
 * group, O a route-rule fallback, X/X1 context and N/N1 content
 * fallbacks. Returns how many. */
static uint32_t
parse_plan(const char *text, uint8_t *g)
{
    uint32_t n = 0;

    for (const char *p = text; *p != '\0'; p++) {
        uint8_t base;
        if (*p == ' ') {
            continue;
        }
        base = *p == 'O'   ? DP_GROUP_OTHER
               : *p == 'X' ? DP_GROUP_CONTEXT
               : *p == 'N' ? DP_GROUP_CONTENT
                           : (uint8_t)(*p - '0');
        if (base >= DP_GROUP_OTHER && p[1] >= '0' && p[1] <= '9') {
            base = (uint8_t)(base + (*++p - '0'));
        }
        g[n++] = base;
    }
    return n;
}

#define RETRY DP_ATTEMPT_RETRY
#define NEXT DP_ATTEMPT_NEXT
#define CONTEXT DP_ATTEMPT_CONTEXT
#define CONTENT DP_ATTEMPT_CONTENT
#define CLIENT DP_ATTEMPT_CLIENT
#define TRY DP_ATTEMPT_TRY
#define WAIT DP_ATTEMPT_WAIT
#define GIVE_UP DP_ATTEMPT_GIVE_UP

/* One failure: the plan, where it stands (pos, retries made there), the
 * retries configured, the failure (and the provider's Retry-After), and
 * what comes next: the action, the position it names (TRY) or keeps
 * (WAIT), and the delay (WAIT). Backoff base 0, cap 1000 ms. */
typedef struct fail_case {
    const char     *name;
    const char     *plan;
    uint32_t        pos;
    uint32_t        same_tries;
    uint32_t        retries;
    dp_attempt_fail kind;
    int64_t         retry_after_ms;
    dp_attempt_act  want;
    int             want_pos; /* NONE for GIVE_UP */
    int64_t         want_delay;
} fail_case;

static const fail_case FAIL_CASES[] = {
    /* RETRY x retries left x deployments left */
    {"retry alone, retries left: wait", "0", 0, 0, 2, RETRY, 0, WAIT, 0, 0},
    {"retry alone, last retry left: wait", "0", 0, 1, 2, RETRY, 0, WAIT, 0, 0},
    {"retry alone, retries spent", "0", 0, 2, 2, RETRY, 0, GIVE_UP, NONE, 0},
    {"retry, retries spent: fallback", "0 1", 0, 2, 2, RETRY, 0, TRY, 1, 0},
    {"retry, retries left: wait before the fallback", "0 1", 0, 0, 2, RETRY, 0,
     WAIT, 0, 0},
    {"retry, same group next: it first", "0 0 1", 0, 0, 2, RETRY, 0, TRY, 1, 0},
    {"retry, no retries configured", "0 1", 0, 0, 0, RETRY, 0, TRY, 1, 0},
    {"retry, Retry-After honoured", "0", 0, 0, 2, RETRY, 700, WAIT, 0, 700},
    {"retry, Retry-After over the cap", "0 1", 0, 0, 2, RETRY, 5000, TRY, 1, 0},
    {"retry alone, Retry-After over the cap", "0", 0, 0, 2, RETRY, 5000,
     GIVE_UP, NONE, 0},
    {"retry, only a context fallback left", "0 X", 0, 2, 2, RETRY, 0, GIVE_UP,
     NONE, 0},
    {"retry at the last ordinary one", "0 0 1", 2, 1, 1, RETRY, 0, GIVE_UP,
     NONE, 0},
    {"retry at a route-rule fallback", "0 O O", 1, 1, 1, RETRY, 0, TRY, 2, 0},
    /* A retryable failure at a context fallback is not a context error: it
     * does not move on to another context fallback. */
    {"retry at a context fallback, spent", "0 X X1", 1, 0, 0, RETRY, 0, GIVE_UP,
     NONE, 0},
    {"retry at a context fallback, left", "0 X X1", 1, 0, 1, RETRY, 0, WAIT, 1,
     0},
    /* NEXT never waits */
    {"next, retries left", "0 0", 0, 0, 2, NEXT, 0, TRY, 1, 0},
    {"next, into the fallback group", "0 1 2", 0, 0, 2, NEXT, 0, TRY, 1, 0},
    {"next at the last", "0 0", 1, 0, 2, NEXT, 0, GIVE_UP, NONE, 0},
    {"next, only content fallbacks left", "0 N", 0, 0, 2, NEXT, 0, GIVE_UP,
     NONE, 0},
    /* CLIENT: the request is wrong wherever it goes */
    {"client, all left", "0 0 1", 0, 0, 2, CLIENT, 0, GIVE_UP, NONE, 0},
    /* CONTEXT / CONTENT jump over the ordinary ones */
    {"context: first context fallback", "0 0 1 X X1 N", 0, 0, 2, CONTEXT, 0,
     TRY, 3, 0},
    {"context, none configured", "0 1 N", 0, 0, 2, CONTEXT, 0, GIVE_UP, NONE,
     0},
    {"context at a context fallback", "0 X X1", 1, 0, 2, CONTEXT, 0, TRY, 2, 0},
    {"context at the last context one", "0 X N", 1, 0, 2, CONTEXT, 0, GIVE_UP,
     NONE, 0},
    {"content: first content fallback", "0 1 X N N1", 1, 0, 2, CONTENT, 0, TRY,
     3, 0},
    {"content, none configured", "0 1 X", 0, 0, 2, CONTENT, 0, GIVE_UP, NONE,
     0},
};

static void
test_failure_table(void)
{
    for (size_t i = 0; i < sizeof(FAIL_CASES) / sizeof(FAIL_CASES[0]); i++) {
        const fail_case *c = &FAIL_CASES[i];
        uint8_t          g[TG_MSG_TARGETS_MAX];
        uint32_t         n     = parse_plan(c->plan, g);
        uint32_t         index = 999;
        int64_t          delay = -7;
        dp_attempt       a;
        dp_attempt_act   act;
        bool             ok;

        plan(&a, g, n, c->retries, 0);
        a.pos        = c->pos;
        a.same_tries = c->same_tries;
        CU_ASSERT_EQUAL(dp_attempt_walk(&a, &index), DP_ATTEMPT_TRY);
        CU_ASSERT_EQUAL(index, 10 + c->pos);
        dp_attempt_started(&a);
        act = dp_attempt_failed(&a, c->kind, c->retry_after_ms, 42, &index,
                                &delay);
        ok  = act == c->want;
        if (ok && act == DP_ATTEMPT_TRY) {
            ok = a.pos == (uint32_t)c->want_pos &&
                 index == 10 + (uint32_t)c->want_pos && a.same_tries == 0;
        } else if (ok && act == DP_ATTEMPT_WAIT) {
            ok = a.pos == (uint32_t)c->want_pos && delay == c->want_delay &&
                 a.same_tries == c->same_tries + 1;
        }
        CU_assertImplementation(ok, __LINE__, c->name, __FILE__, "", CU_FALSE);
    }
}

/* Retries at one deployment until they are spent, then the fallback; the
 * backoff stays within [0, base * 2^n] capped at 1000. */
static void
test_retry_then_fallback(void)
{
    static const uint8_t g[] = {0, 1};
    dp_attempt           a;
    uint32_t             index = 0;
    int64_t              delay = 0;

    plan(&a, g, 2, 3, 300);
    CU_ASSERT_EQUAL(dp_attempt_walk(&a, &index), DP_ATTEMPT_TRY);
    for (uint32_t i = 0; i < 3; i++) {
        int64_t cap = (int64_t)300 << i;
        dp_attempt_started(&a);
        CU_ASSERT_EQUAL(
            dp_attempt_failed(&a, DP_ATTEMPT_RETRY, 0, 7 + i, &index, &delay),
            DP_ATTEMPT_WAIT);
        CU_ASSERT(delay >= 0 && delay <= (cap < 1000 ? cap : 1000));
        CU_ASSERT_EQUAL(dp_attempt_walk(&a, &index), DP_ATTEMPT_TRY);
        CU_ASSERT_EQUAL(index, 10);
    }
    dp_attempt_started(&a);
    CU_ASSERT_EQUAL(
        dp_attempt_failed(&a, DP_ATTEMPT_RETRY, 0, 1, &index, &delay),
        DP_ATTEMPT_TRY);
    CU_ASSERT_EQUAL(index, 11);
    CU_ASSERT_EQUAL(a.started, 4);
}

/* A walk passes over what cannot be tried but never into another class:
 * skipping the last ordinary deployment does not reach a context one. */
static void
test_skip_stays_in_class(void)
{
    static const uint8_t g[] = {0, 1, CTX, CTX + 1, CNT};
    dp_attempt           a;
    uint32_t             index = 0;

    plan(&a, g, 5, 0, 0);
    CU_ASSERT_EQUAL(dp_attempt_walk(&a, &index), DP_ATTEMPT_TRY);
    CU_ASSERT_EQUAL(dp_attempt_skip(&a, &index), DP_ATTEMPT_TRY);
    CU_ASSERT_EQUAL(index, 11);
    CU_ASSERT_EQUAL(dp_attempt_skip(&a, &index), DP_ATTEMPT_GIVE_UP);
    /* A context walk skips within the context fallbacks only. */
    a.pos = 2;
    CU_ASSERT_EQUAL(dp_attempt_walk(&a, &index), DP_ATTEMPT_TRY);
    CU_ASSERT_EQUAL(index, 12);
    CU_ASSERT_EQUAL(dp_attempt_skip(&a, &index), DP_ATTEMPT_TRY);
    CU_ASSERT_EQUAL(index, 13);
    CU_ASSERT_EQUAL(dp_attempt_skip(&a, &index), DP_ATTEMPT_GIVE_UP);
    /* An empty plan has nothing to try. */
    plan(&a, g, 0, 0, 0);
    CU_ASSERT_EQUAL(dp_attempt_walk(&a, &index), DP_ATTEMPT_GIVE_UP);
}

/* The plan is stable by group: the router's order within a group, and
 * context/content-only fallbacks behind everything else. */
static void
test_plan_order(void)
{
    static const uint8_t g[] = {CNT, 0, CTX, 0, 1, CTX};
    dp_attempt           a;

    plan(&a, g, 6, 0, 0);
    static const uint32_t want_index[] = {11, 13, 14, 12, 15, 10};
    static const uint8_t  want_group[] = {0, 0, 1, CTX, CTX, CNT};
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(a.order[i], want_index[i]);
        CU_ASSERT_EQUAL(a.group[i], want_group[i]);
    }
}

/* No request makes more than DP_ATTEMPTS_MAX attempts, however many
 * retries the configuration allows. */
static void
test_attempt_cap(void)
{
    static const uint8_t g[] = {0};
    dp_attempt           a;
    uint32_t             index = 0;
    int64_t              delay = 0;
    uint32_t             made  = 0;

    plan(&a, g, 1, 1000, 0);
    while (dp_attempt_walk(&a, &index) == DP_ATTEMPT_TRY && made < 100) {
        dp_attempt_started(&a);
        made++;
        CU_ASSERT_EQUAL(
            dp_attempt_failed(&a, DP_ATTEMPT_RETRY, 0, made, &index, &delay),
            DP_ATTEMPT_WAIT);
    }
    CU_ASSERT_EQUAL(made, DP_ATTEMPTS_MAX);
}

/* walk_health drives a walk the way the worker does: a deployment whose
 * circuit says COOLDOWN is passed over. Returns the index tried (or -1)
 * and whether it holds the probe. */
static int
walk_health(dp_attempt *a, dp_health *h, int64_t now, bool *probe)
{
    uint32_t       index = 0;
    dp_attempt_act act   = dp_attempt_walk(a, &index);

    while (act == DP_ATTEMPT_TRY) {
        dp_health_state hs = dp_health_acquire(h, index - 10, now);
        if (hs != DP_HEALTH_COOLDOWN) {
            *probe = hs == DP_HEALTH_PROBE;
            dp_attempt_started(a);
            return (int)index;
        }
        act = dp_attempt_skip(a, &index);
    }
    return -1;
}

static void
test_cooldown_interplay(void)
{
    static const uint8_t g[] = {0, 0, 1};
    dp_health_opts       o   = {1, 10000, 1000, 0, NULL};
    dp_health           *h   = NULL;
    dp_attempt           a;
    bool                 probe = false;

    CU_ASSERT_EQUAL_FATAL(dp_health_create(&h, 3, &o), TG_OK);
    /* Deployment 0 fails once: its circuit opens. */
    dp_health_failure(h, 0, 100, "HTTP 503");
    plan(&a, g, 3, 2, 0);
    CU_ASSERT_EQUAL(walk_health(&a, h, 200, &probe), 11);
    CU_ASSERT_FALSE(probe);
    /* Both of the model's deployments cooling down: the fallback. */
    dp_health_failure(h, 1, 200, "HTTP 503");
    plan(&a, g, 3, 2, 0);
    CU_ASSERT_EQUAL(walk_health(&a, h, 300, &probe), 12);
    /* Everything cooling down: nothing to try. */
    dp_health_failure(h, 2, 300, "HTTP 503");
    plan(&a, g, 3, 2, 0);
    CU_ASSERT_EQUAL(walk_health(&a, h, 400, &probe), -1);
    /* After the cooldown one request probes deployment 0; the next one
     * passes it over while the probe is out. */
    plan(&a, g, 3, 2, 0);
    CU_ASSERT_EQUAL(walk_health(&a, h, 1150, &probe), 10);
    CU_ASSERT_TRUE(probe);
    plan(&a, g, 3, 2, 0);
    CU_ASSERT_EQUAL(walk_health(&a, h, 1250, &probe), 11);
    CU_ASSERT_TRUE(probe);
    dp_health_destroy(h);
}

#define CONFIG                                                                 \
    "{\"pdp\": {\"listen\": [\"ipc:///tmp/x.sock\"], \"state_dir\": "          \
    "\"state\"},\n"                                                            \
    " \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "           \
    "\"ipc:///tmp/x.sock\", \"spool_dir\": \"/var/spool\"},\n"                 \
    " \"deployments\": [\n" DEP("a1", "m", 1) "," DEP(                         \
        "o1", "other",                                                         \
        1) "," DEP("f1", "fb",                                                 \
                   2) "," DEP("c1", "big",                                     \
                              1) "," DEP("p1", "lax",                          \
                                         1) "," DEP("a2", "m",                 \
                                                    3) "],\n"                  \
                                                       " \"model_groups\": "   \
                                                       "[{\"model\": \"m\", "  \
                                                       "\"strategy\": "        \
                                                       "\"weighted\", "        \
                                                       "\"fallbacks\": "       \
                                                       "[\"fb\"], "            \
                                                       "\"context_window_"     \
                                                       "fallbacks\": "         \
                                                       "[\"big\"], "           \
                                                       "\"content_policy_"     \
                                                       "fallbacks\": "         \
                                                       "[\"lax\"]}]}\n"
#define DEP(id, model, w)                                                      \
    "{\"id\": \"" id "\", \"model\": \"" model "\", \"provider\": "            \
    "\"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", \"weight\": " #w "}"

static tg_config *
load_config(void)
{
    const char *dir  = tg_unit_tmpdir("attempt");
    const char *path = tg_unit_write(dir, "tollgate.json", CONFIG);
    tg_config  *cfg  = NULL;
    char        err[512];

    if (tg_config_load(&cfg, path, err, sizeof(err)) != TG_OK) {
        CU_FAIL(err);
        return NULL;
    }
    return cfg;
}

static void
test_groups_and_catalog(void)
{
    tg_config      *cfg = load_config();
    tg_route_target t[TG_MSG_TARGETS_MAX];
    uint32_t        n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "m", "m"), 0);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "m", "fb"), 1);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "m", "big"), DP_GROUP_CONTEXT);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "m", "lax"), DP_GROUP_CONTENT);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "m", "other"), DP_GROUP_OTHER);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "other", "m"), DP_GROUP_OTHER);
    CU_ASSERT_EQUAL(dp_attempt_group(cfg, "other", "other"), 0);
    /* Fail-open routing: the model's deployments and its fallbacks, in
     * catalog order with their weights; never an unrelated model. */
    n = dp_attempt_catalog(cfg, "m", false, t, TG_MSG_TARGETS_MAX);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    CU_ASSERT_STRING_EQUAL(t[0].deployment_id, "a1");
    CU_ASSERT_STRING_EQUAL(t[1].deployment_id, "f1");
    CU_ASSERT_EQUAL(t[1].weight, 2);
    CU_ASSERT_STRING_EQUAL(t[2].deployment_id, "c1");
    CU_ASSERT_STRING_EQUAL(t[3].deployment_id, "p1");
    CU_ASSERT_STRING_EQUAL(t[4].deployment_id, "a2");
    CU_ASSERT_EQUAL(t[4].weight, 3);
    CU_ASSERT_EQUAL(dp_attempt_catalog(cfg, "other", false, t, 8), 1);
    CU_ASSERT_EQUAL(dp_attempt_catalog(cfg, "nope", false, t, 8), 0);
    CU_ASSERT_EQUAL(dp_attempt_catalog(cfg, "", true, t, 8), 6);
    CU_ASSERT_EQUAL(dp_attempt_catalog(cfg, "", true, t, 2), 2);
    tg_config_destroy(cfg);
}

/* Failing open: only under on_pdp_error: allow, only when the PDP could
 * not be reached or did not answer in time, only for a key it allowed
 * lately. */
static void
test_fail_open_table(void)
{
    static const struct {
        bool         allow;
        tg_err       err;
        bool         known;
        dp_fail_open want;
    } cases[] = {
        {false, TG_ETIMEDOUT, true, DP_FAIL_OPEN_DENY},
        {false, TG_ECLOSED, false, DP_FAIL_OPEN_DENY},
        {false, TG_EPROTO, true, DP_FAIL_OPEN_DENY},
        {true, TG_ETIMEDOUT, true, DP_FAIL_OPEN_ALLOW},
        {true, TG_ECLOSED, true, DP_FAIL_OPEN_ALLOW},
        {true, TG_EIO, true, DP_FAIL_OPEN_ALLOW},
        {true, TG_ETIMEDOUT, false, DP_FAIL_OPEN_DENY_KEY},
        {true, TG_EIO, false, DP_FAIL_OPEN_DENY_KEY},
        {true, TG_EPROTO, true, DP_FAIL_OPEN_DENY_ANSWER},
        {true, TG_ENOMEM, true, DP_FAIL_OPEN_DENY_ANSWER},
        {true, TG_EINVAL, false, DP_FAIL_OPEN_DENY_ANSWER},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(
            dp_attempt_fail_open(cases[i].allow, cases[i].err, cases[i].known),
            cases[i].want);
    }
    CU_ASSERT_TRUE(dp_attempt_pdp_unreachable(TG_ETIMEDOUT));
    CU_ASSERT_FALSE(dp_attempt_pdp_unreachable(TG_EPROTO));
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"failure table", test_failure_table},
        {"retries then the fallback", test_retry_then_fallback},
        {"skip stays in its class", test_skip_stays_in_class},
        {"plan order", test_plan_order},
        {"attempt cap", test_attempt_cap},
        {"cooldown interplay", test_cooldown_interplay},
        {"groups and catalog", test_groups_and_catalog},
        {"fail-open table", test_fail_open_table},
        {NULL, NULL},
    };

    return tg_unit_run("dataplane.attempt", cases);
}
