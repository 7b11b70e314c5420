/* test_decide_models.c - pdp.decide_models: a Decide with fallback
 * models (OpenRouter's "models"). Each model is judged as if asked for
 * alone: one the bundle denies, the key may not use or the catalog does
 * not have is skipped (the rule that denied it is in the record); the
 * targets are the first allowed model's, then each later allowed model's
 * own deployments as its route rules leave them; nothing is allowed when
 * no model is (the first model's status, every model named); guardrails
 * of any allowed model are run; a budget reserves with the dearest
 * target; such a decision is never marked reusable; the wire carries the
 * list and refuses a bad one. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_decide.h"
#include "pdp_store.h"
#include "pdp_test_util.h"
#include "pdp_wire.h"
#include "tg_hash.h"
#include "tg_unit.h"

static tg_config        *g_cfg;
static pdp_store        *g_st;
static pdp_store_reader *g_rd;
static pdp_limits       *g_lim;
static tg_decide         g_req;
static tg_decision       g_dec;

/* gpt-4o is denied to tenant "freeco"; gpt-4o-mini goes to mock-mini only;
 * a guardrail runs on gpt-4o-mini requests. */
static const char g_rules[] =
    "{\"id\": \"allow-all\", \"kind\": \"access\", \"effect\": \"allow\"},\n"
    "{\"id\": \"free-no-4o\", \"kind\": \"access\", \"effect\": \"deny\",\n"
    " \"status\": 403, \"code\": \"tier_denied\", \"message\": \"No 4o.\",\n"
    " \"when\": {\"all\": [{\"eq\": [\"tenant.id\", \"freeco\"]},\n"
    "                    {\"eq\": [\"request.model\", \"gpt-4o\"]}]}},\n"
    "{\"id\": \"mini-to-mock\", \"kind\": \"route\",\n"
    " \"when\": {\"eq\": [\"request.model\", \"gpt-4o-mini\"]},\n"
    " \"deployments\": [\"mock-mini\"]},\n"
    "{\"id\": \"pii-on-mini\", \"kind\": \"guardrail\", \"stages\": "
    "[\"input\"],\n"
    " \"detectors\": [\"pii\"], \"action\": \"redact\",\n"
    " \"when\": {\"eq\": [\"request.model\", \"gpt-4o-mini\"]}}";

/* gpt-4o costs 10x gpt-4o-mini. */
static const char g_pricing[] =
    "{\"currency\": \"USD\", \"models\": {\n"
    " \"gpt-4o-mini\": {\"input_per_mtok\": 1, \"output_per_mtok\": 2},\n"
    " \"gpt-4o\": {\"input_per_mtok\": 10, \"output_per_mtok\": 20}}}\n";

static void
put_key(const char *secret, const char *id, const char *tenant,
        const char *model)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    if (model != NULL) {
        snprintf(k.models[0], sizeof(k.models[0]), "%s", model);
        k.n_models = 1;
    }
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1;
    tg_sha256(secret, strlen(secret), hash);
    if (pdp_store_key_put(g_st, hash, &k) != TG_OK) {
        fprintf(stderr, "setup: cannot store key %s\n", id);
        exit(2);
    }
}

static void
setup(void)
{
    const char *dir = tg_unit_tmpdir("decide-models");
    const char *cfg = pdp_test_config(dir, 4);
    char        err[512];
    char        state[700];

    /* pdp.pricing_file, which budgets are priced with: ours. */
    tg_unit_write(dir, "pricing.json", g_pricing);
    g_cfg = pdp_test_load(cfg);
    snprintf(state, sizeof(state), "%s/state", dir);
    if (pdp_store_open(&g_st, state, 4, err, sizeof(err)) != TG_OK ||
        pdp_limits_create(&g_lim, 60000) != TG_OK) {
        fprintf(stderr, "setup: %s\n", err);
        exit(2);
    }
    put_key("sk-all", "key_all", "acme", NULL);
    put_key("sk-free", "key_free", "freeco", NULL);
    put_key("sk-4o", "key_4o", "acme", "gpt-4o");
    pdp_store_reader_create(g_st, &g_rd);
}

static void
teardown(void)
{
    pdp_store_reader_destroy(g_rd);
    pdp_limits_destroy(g_lim);
    pdp_store_close(g_st);
    tg_config_destroy(g_cfg);
}

/* bundle_of loads g_rules plus extra (may be "") with g_pricing. */
static pdp_bundle *
bundle_of(const char *extra)
{
    const char *dir = tg_unit_tmpdir("decide-models-b");
    char        text[8192];
    char        err[2048];
    pdp_bundle *b = NULL;

    snprintf(text, sizeof(text), "{\"rules\": [%s%s%s]}\n", g_rules,
             extra[0] != '\0' ? ",\n" : "", extra);
    tg_unit_write(dir, "bundle.json", "{\"name\": \"dm\", \"revision\": 3}\n");
    tg_unit_write(dir, "rules.policy.json", text);
    tg_unit_write(dir, "pricing.json", g_pricing);
    if (pdp_bundle_load(&b, dir, g_cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "\nbundle: %s\n", err);
        return NULL;
    }
    return b;
}

/* ask decides secret's chat request for models (the first is `model`,
 * then the fallbacks; NULL ends) with b and the limits. */
static void
ask(const pdp_bundle *b, const char *secret, const char *const *models)
{
    static int n;

    memset(&g_req, 0, sizeof(g_req));
    snprintf(g_req.request_id, sizeof(g_req.request_id), "dm-%d", ++n);
    tg_sha256(secret, strlen(secret), g_req.key_hash);
    g_req.endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(g_req.model, sizeof(g_req.model), "%s", models[0]);
    for (int i = 1; models[i] != NULL; i++) {
        snprintf(g_req.fallback_models[g_req.n_fallback_models++],
                 sizeof(g_req.fallback_models[0]), "%s", models[i]);
    }
    g_req.max_tokens             = 1000;
    g_req.prompt_tokens_estimate = 1000;
    g_req.now_ms                 = 1700000000000;
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(g_rd), TG_OK);
    CU_ASSERT_EQUAL(
        pdp_decide_eval_limits(g_rd, g_cfg, b, g_lim, NULL, &g_req, &g_dec),
        TG_OK);
    pdp_store_read_end(g_rd);
}

/* targets is the decision's targets joined by ',' */
static const char *
targets(void)
{
    static char s[512];
    size_t      k = 0;

    s[0] = '\0';
    for (uint32_t i = 0; i < g_dec.n_targets; i++) {
        k += (size_t)snprintf(s + k, sizeof(s) - k, "%s%s", i ? "," : "",
                              g_dec.targets[i].deployment_id);
    }
    return s;
}

static bool
matched(const char *rule, const char *effect)
{
    for (uint32_t i = 0; i < g_dec.n_matched; i++) {
        if (strcmp(g_dec.matched[i].rule_id, rule) == 0) {
            return strcmp(g_dec.matched[i].effect, effect) == 0;
        }
    }
    return false;
}

/* A model the bundle denies is skipped: the next one serves, and the
 * record names the rule that denied the first. */
static void
test_denied_model_skipped(void)
{
    pdp_bundle       *b   = bundle_of("");
    const char *const m[] = {"gpt-4o", "gpt-4o-mini", NULL};

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    ask(b, "sk-free", m);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    /* Only gpt-4o-mini's, and only where its route rule sends it. */
    CU_ASSERT_STRING_EQUAL(targets(), "mock-mini");
    CU_ASSERT_TRUE(matched("free-no-4o", "deny"));
    CU_ASSERT_TRUE(matched("mini-to-mock", "route"));
    CU_ASSERT_EQUAL(g_dec.policy_revision, 3);
    /* The same key asking for gpt-4o alone is denied, as before. */
    {
        const char *const one[] = {"gpt-4o", NULL};
        ask(b, "sk-free", one);
        CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
        CU_ASSERT_STRING_EQUAL(g_dec.error_code, "tier_denied");
    }
    pdp_bundle_unref(b);
}

/* Both allowed: the first model's targets, then the second's own, each
 * as its route rules leave them. */
static void
test_targets_in_model_order(void)
{
    pdp_bundle       *b   = bundle_of("");
    const char *const m[] = {"gpt-4o", "gpt-4o-mini", NULL};
    const char *const r[] = {"gpt-4o-mini", "gpt-4o", "gpt-4o-mini", NULL};

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    ask(b, "sk-all", m);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(targets(), "oai-4o,mock-mini");
    ask(b, "sk-all", r); /* a repeat is judged once */
    CU_ASSERT_STRING_EQUAL(targets(), "mock-mini,oai-4o");
    /* Without a bundle: the catalog's deployments of each. */
    ask(NULL, "sk-all", r);
    CU_ASSERT_STRING_EQUAL(targets(), "oai-mini,mock-mini,oai-4o");
    pdp_bundle_unref(b);
}

/* Unknown models and models the key may not use are skipped; only when
 * none is left is it a deny: the first model's status and code, every
 * model named with why. */
static void
test_unknown_and_not_allowed(void)
{
    const char *const m1[] = {"nope", "gpt-4o", NULL};
    const char *const m2[] = {"nope", "also-nope", NULL};
    const char *const m3[] = {"gpt-4o-mini", "gpt-4o", NULL};
    const char *const m4[] = {"gpt-4o-mini", "nope", NULL};

    ask(NULL, "sk-all", m1);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(targets(), "oai-4o");
    ask(NULL, "sk-all", m2);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 404);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "model_not_found");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_dec.message, "'nope' (model_not_found)"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(g_dec.message, "'also-nope' (model_not_found)"));
    CU_ASSERT_EQUAL(g_dec.n_targets, 0);
    /* key_4o may use gpt-4o only. */
    ask(NULL, "sk-4o", m3);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(targets(), "oai-4o");
    ask(NULL, "sk-4o", m4);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 403);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "model_not_allowed");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(g_dec.message, "'gpt-4o-mini' (model_not_allowed)"));
}

/* Every denied model denied: the rules that denied are in the record. */
static void
test_all_denied_by_policy(void)
{
    pdp_bundle *b = bundle_of(
        "{\"id\": \"free-no-mini\", \"kind\": \"access\", \"effect\": "
        "\"deny\", \"status\": 402, \"code\": \"pay_first\",\n"
        " \"when\": {\"all\": [{\"eq\": [\"tenant.id\", \"freeco\"]},\n"
        "  {\"eq\": [\"request.model\", \"gpt-4o-mini\"]}]}}");
    const char *const m[] = {"gpt-4o-mini", "gpt-4o", NULL};

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    ask(b, "sk-free", m);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 402);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "pay_first");
    CU_ASSERT_TRUE(matched("free-no-mini", "deny"));
    CU_ASSERT_TRUE(matched("free-no-4o", "deny"));
    CU_ASSERT_EQUAL(g_dec.n_guards, 0);
    pdp_bundle_unref(b);
}

/* A guardrail that applies to a later model is run too (obligations of
 * every allowed model); the decision is never reusable. */
static void
test_guards_union_and_no_reuse(void)
{
    pdp_bundle       *b   = bundle_of("");
    const char *const m[] = {"gpt-4o", "gpt-4o-mini", NULL};
    const char *const o[] = {"gpt-4o", NULL};

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    ask(b, "sk-all", o);
    CU_ASSERT_EQUAL(g_dec.n_guards, 0); /* the control */
    CU_ASSERT_NOT_EQUAL(g_dec.reuse_ms, 0);
    ask(b, "sk-all", m);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL_FATAL(g_dec.n_guards, 1);
    CU_ASSERT_STRING_EQUAL(g_dec.guards[0].rule_id, "pii-on-mini");
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
    pdp_bundle_unref(b);
}

/* A budget that matches only the later model still applies, and reserves
 * with the dearest target: 1000 prompt + 1000 output tokens at gpt-4o's
 * $10/$20 per 1M is $0.03, where gpt-4o-mini alone would be $0.003. */
static void
test_budget_reserves_the_dearest(void)
{
    pdp_bundle *b = bundle_of(
        "{\"id\": \"mini-budget\", \"kind\": \"budget\", \"scope\": \"key\", "
        "\"window\": \"daily\", \"limit_usd\": 100,\n"
        " \"when\": {\"eq\": [\"request.model\", \"gpt-4o-mini\"]}}");
    const char *const m[] = {"gpt-4o-mini", "gpt-4o", NULL};
    const char *const r[] = {"gpt-4o", "gpt-4o-mini", NULL};
    const char *const o[] = {"gpt-4o", NULL};

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    ask(b, "sk-all", o);
    CU_ASSERT_EQUAL(g_dec.reserved_micro_usd, 0); /* the control */
    ask(b, "sk-all", m);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(targets(), "mock-mini,oai-4o");
    CU_ASSERT_EQUAL(g_dec.reserved_micro_usd, 30000);
    CU_ASSERT_NOT_EQUAL(g_dec.reservation_id[0], '\0');
    /* The budget matched only the second model: still reserved. */
    ask(b, "sk-all", r);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reserved_micro_usd, 30000);
    pdp_bundle_unref(b);
}

/* The wire carries the list both ways and refuses a bad one. */
static void
test_wire_round_trip(void)
{
    static pdp_req req; /* large: a usage batch's room */
    static pdp_req back;
    tg_buf         out;
    char           err[256];

    memset(&req, 0, sizeof(req));
    req.kind = PDP_REQ_DECIDE;
    snprintf(req.request_id, sizeof(req.request_id), "w-1");
    snprintf(req.u.decide.model, sizeof(req.u.decide.model), "a");
    snprintf(req.u.decide.fallback_models[0], TG_MODEL_MAX, "b");
    snprintf(req.u.decide.fallback_models[1], TG_MODEL_MAX, "c");
    req.u.decide.n_fallback_models = 2;
    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_request(&req, &out), TG_OK);
    memset(&back, 0, sizeof(back));
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(out.data, out.len, 0, &back, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_EQUAL(back.u.decide.n_fallback_models, 2);
    CU_ASSERT_STRING_EQUAL(back.u.decide.fallback_models[1], "c");
    tg_buf_fini(&out);
    /* Eight fallbacks are more than a Decide may carry. */
    req.u.decide.n_fallback_models = TG_MSG_FALLBACK_MODELS_MAX + 1;
    tg_buf_init(&out, 0);
    CU_ASSERT_NOT_EQUAL(pdp_wire_encode_request(&req, &out), TG_OK);
    tg_buf_fini(&out);
}

static const tg_unit_case cases[] = {
    {"denied_model_skipped", test_denied_model_skipped},
    {"targets_in_model_order", test_targets_in_model_order},
    {"unknown_and_not_allowed", test_unknown_and_not_allowed},
    {"all_denied_by_policy", test_all_denied_by_policy},
    {"guards_union_and_no_reuse", test_guards_union_and_no_reuse},
    {"budget_reserves_the_dearest", test_budget_reserves_the_dearest},
    {"wire_round_trip", test_wire_round_trip},
    {NULL, NULL},
};

int
main(void)
{
    int rc;

    setup();
    rc = tg_unit_run("pdp.decide_models", cases);
    teardown();
    return rc;
}
