/* test_decide.c - pdp.decide: the answers API clients see for each kind of
 * key and model, and where allowed requests may be routed; with a policy
 * bundle: what a rule's deny looks like, the attributes rules read (tenant
 * record, key labels, metadata), route restrictions, and that every
 * decision names the bundle revision it was made with; and which allows a
 * data plane may reuse (no budget or rate limit, no rule reading the
 * time; for how long, and for which request inputs). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_decide.h"
#include "pdp_store.h"
#include "pdp_test_util.h"
#include "tg_hash.h"
#include "tg_unit.h"

static tg_config        *g_cfg;
static pdp_store        *g_st;
static pdp_store_reader *g_rd;
static pdp_bundle       *g_bundle;
static tg_decide         g_req;
static tg_decision       g_dec;
static pdp_limits       *g_lim;

/* Revision 7; keys of tenants without a record read an absent tier, which
 * the on_error "skip" rules treat as "no match". */
static const char g_policy[] =
    "{\"rules\": [\n"
    " {\"id\": \"allow-all\", \"kind\": \"access\", \"effect\": \"allow\"},\n"
    " {\"id\": \"free-no-4o\", \"kind\": \"access\", \"effect\": \"deny\",\n"
    "  \"on_error\": \"skip\", \"status\": 403, \"code\": \"tier_denied\",\n"
    "  \"message\": \"Free tier: no gpt-4o.\",\n"
    "  \"when\": {\"all\": [{\"eq\": [\"tenant.tier\", \"free\"]},\n"
    "                     {\"eq\": [\"request.model\", \"gpt-4o\"]}]}},\n"
    " {\"id\": \"ci-paused\", \"kind\": \"access\", \"effect\": \"deny\",\n"
    "  \"on_error\": \"skip\", \"status\": 503, \"code\": \"ci_paused\",\n"
    "  \"message\": \"CI paused.\",\n"
    "  \"when\": {\"eq\": [\"principal.labels.env\", \"ci\"]}},\n"
    " {\"id\": \"eu-only-for-eu\", \"kind\": \"access\", \"effect\": "
    "\"deny\",\n"
    "  \"on_error\": \"skip\", \"status\": 451, \"code\": "
    "\"blocked_project\",\n"
    "  \"when\": {\"all\": [{\"eq\": [\"request.metadata.project\", \"x\"]},\n"
    "                     {\"eq\": [\"tenant.labels.region\", \"eu\"]}]}},\n"
    " {\"id\": \"mini-to-mock\", \"kind\": \"route\",\n"
    "  \"when\": {\"eq\": [\"request.model\", \"gpt-4o-mini\"]},\n"
    "  \"deployments\": [\"mock-mini\"]},\n"
    " {\"id\": \"capture-meta\", \"kind\": \"audit\", \"capture\": "
    "\"metadata\"},\n"
    " {\"id\": \"watch-full\", \"kind\": \"audit\", \"mode\": \"audit\",\n"
    "  \"capture\": \"full\"}\n"
    "]}\n";

static void
put_key_labels(const char *secret, const char *id, const char *tenant,
               const char *model, bool revoke, const char *label_k,
               const char *label_v)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    if (label_k != NULL) {
        snprintf(k.labels[0].key, sizeof(k.labels[0].key), "%s", label_k);
        snprintf(k.labels[0].value, sizeof(k.labels[0].value), "%s", label_v);
        k.n_labels = 1;
    }
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    if (model != NULL) {
        snprintf(k.models[0], sizeof(k.models[0]), "%s", model);
        k.n_models = 1;
    }
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1;
    tg_sha256(secret, strlen(secret), hash);
    /* Runs before the suite: fail the process, not an assertion. */
    if (pdp_store_key_put(g_st, hash, &k) != TG_OK ||
        (revoke && pdp_store_key_revoke(g_st, id, 2) != TG_OK)) {
        fprintf(stderr, "setup: cannot store key %s\n", id);
        exit(2);
    }
}

static void
put_key(const char *secret, const char *id, const char *tenant,
        const char *model, bool revoke)
{
    put_key_labels(secret, id, tenant, model, revoke, NULL, NULL);
}

static void
setup(void)
{
    const char *dir = tg_unit_tmpdir("decide");
    char        err[512];
    char        state[700];

    g_cfg = pdp_test_load(pdp_test_config(dir, 4));
    snprintf(state, sizeof(state), "%s/state", dir);
    if (pdp_store_open(&g_st, state, 4, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    put_key("sk-all", "key_all", "acme", NULL, false);
    put_key("sk-4o", "key_4o", "acme", "gpt-4o", false);
    put_key("sk-old", "key_old", "beta", NULL, true);
    put_key("sk-free", "key_free", "freeco", NULL, false);
    put_key_labels("sk-ci", "key_ci", "acme", NULL, false, "env", "ci");
    {
        tg_kv             l;
        pdp_tenant_change c;
        char              bdir[700];
        memset(&l, 0, sizeof(l));
        snprintf(l.key, sizeof(l.key), "region");
        snprintf(l.value, sizeof(l.value), "eu");
        c = (pdp_tenant_change){"freeco", "free", &l, 1, 1, NULL};
        snprintf(bdir, sizeof(bdir), "%s/bundle", dir);
        mkdir(bdir, 0700);
        tg_unit_write(bdir, "bundle.json",
                      "{\"name\": \"decide\", \"revision\": 7}\n");
        tg_unit_write(bdir, "rules.policy.json", g_policy);
        if (pdp_store_tenant_set(g_st, &c, NULL, NULL) != TG_OK ||
            pdp_bundle_load(&g_bundle, bdir, g_cfg, err, sizeof(err)) !=
                TG_OK) {
            fprintf(stderr, "setup: tenant or bundle: %s\n", err);
            exit(2);
        }
    }
    pdp_store_reader_create(g_st, &g_rd);
    if (pdp_limits_create(&g_lim, 60000) != TG_OK) {
        fprintf(stderr, "setup: limits\n");
        exit(2);
    }
}

static void
teardown(void)
{
    pdp_limits_destroy(g_lim);
    pdp_store_reader_destroy(g_rd);
    pdp_bundle_unref(g_bundle);
    pdp_store_close(g_st);
    tg_config_destroy(g_cfg);
}

static tg_err
decide_with(const pdp_bundle *b, const char *secret, tg_endpoint ep,
            const char *model, const char *project)
{
    tg_err rv;

    memset(&g_req, 0, sizeof(g_req));
    tg_sha256(secret, strlen(secret), g_req.key_hash);
    g_req.endpoint = ep;
    snprintf(g_req.model, sizeof(g_req.model), "%s", model);
    if (project != NULL) {
        snprintf(g_req.meta[0].key, sizeof(g_req.meta[0].key), "project");
        snprintf(g_req.meta[0].value, sizeof(g_req.meta[0].value), "%s",
                 project);
        g_req.n_meta = 1;
    }
    g_req.now_ms = 1700000000000;
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(g_rd), TG_OK);
    rv = pdp_decide_eval(g_rd, g_cfg, b, &g_req, &g_dec);
    pdp_store_read_end(g_rd);
    return rv;
}

static tg_err
decide(const char *secret, tg_endpoint ep, const char *model)
{
    return decide_with(NULL, secret, ep, model, NULL);
}

static tg_err
decide_b(const char *secret, tg_endpoint ep, const char *model)
{
    return decide_with(g_bundle, secret, ep, model, NULL);
}

static bool
matched(const char *rule, bool enforced)
{
    for (uint32_t i = 0; i < g_dec.n_matched; i++) {
        if (strcmp(g_dec.matched[i].rule_id, rule) == 0) {
            return g_dec.matched[i].enforced == enforced;
        }
    }
    return false;
}

static void
assert_revision_7(void)
{
    CU_ASSERT_EQUAL(g_dec.policy_revision, 7);
    CU_ASSERT_STRING_EQUAL(g_dec.bundle_hash, pdp_bundle_hash(g_bundle));
}

static void
test_unknown_key_401(void)
{
    CU_ASSERT_EQUAL(decide("sk-wrong", TG_EP_CHAT_COMPLETIONS, "gpt-4o"),
                    TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 401);
    CU_ASSERT_STRING_EQUAL(g_dec.error_type, "invalid_request_error");
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "invalid_api_key");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_dec.message, "Incorrect API key"));
    CU_ASSERT_EQUAL(g_dec.n_targets, 0);
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "");
}

static void
test_revoked_key_401(void)
{
    decide("sk-old", TG_EP_CHAT_COMPLETIONS, "gpt-4o");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 401);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "invalid_api_key");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_dec.message, "revoked"));
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "key_old"); /* for the audit log */
    CU_ASSERT_EQUAL(g_dec.n_targets, 0);
}

static void
test_model_not_allowed_403(void)
{
    decide("sk-4o", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 403);
    CU_ASSERT_STRING_EQUAL(g_dec.error_type, "invalid_request_error");
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "model_not_allowed");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_dec.message, "gpt-4o-mini"));
    CU_ASSERT_EQUAL(g_dec.n_targets, 0);
}

static void
test_unknown_model_404(void)
{
    decide("sk-all", TG_EP_CHAT_COMPLETIONS, "gpt-5-imaginary");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 404);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "model_not_found");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_dec.message, "gpt-5-imaginary"));
    decide("sk-all", TG_EP_CHAT_COMPLETIONS, "");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 400);
}

static void
test_allow_targets_in_config_order(void)
{
    decide("sk-all", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.strategy, TG_ROUTE_ORDERED);
    CU_ASSERT_EQUAL_FATAL(g_dec.n_targets, 2);
    CU_ASSERT_STRING_EQUAL(g_dec.targets[0].deployment_id, "oai-mini");
    CU_ASSERT_STRING_EQUAL(g_dec.targets[1].deployment_id, "mock-mini");
    CU_ASSERT_EQUAL(g_dec.targets[0].weight, 1);
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "key_all");
    CU_ASSERT_STRING_EQUAL(g_dec.tenant_id, "acme");
    CU_ASSERT_EQUAL(g_dec.policy_revision, 0);
    decide("sk-4o", TG_EP_CHAT_COMPLETIONS, "gpt-4o");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL_FATAL(g_dec.n_targets, 1);
    CU_ASSERT_STRING_EQUAL(g_dec.targets[0].deployment_id, "oai-4o");
}

static void
test_models_endpoint_lists_allowed(void)
{
    decide("sk-all", TG_EP_MODELS, "");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL_FATAL(g_dec.n_models, 3); /* distinct, catalog order */
    CU_ASSERT_STRING_EQUAL(g_dec.models[0], "gpt-4o-mini");
    CU_ASSERT_STRING_EQUAL(g_dec.models[1], "gpt-4o");
    CU_ASSERT_STRING_EQUAL(g_dec.models[2], "text-embedding-3-small");
    decide("sk-4o", TG_EP_MODELS, "");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL_FATAL(g_dec.n_models, 1);
    CU_ASSERT_STRING_EQUAL(g_dec.models[0], "gpt-4o");
    decide("sk-old", TG_EP_MODELS, "");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.n_models, 0);
}

static void
test_policy_deny_carries_the_rule(void)
{
    CU_ASSERT_EQUAL(decide_b("sk-free", TG_EP_CHAT_COMPLETIONS, "gpt-4o"),
                    TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 403);
    CU_ASSERT_STRING_EQUAL(g_dec.error_type, "invalid_request_error");
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "tier_denied");
    CU_ASSERT_STRING_EQUAL(g_dec.message, "Free tier: no gpt-4o.");
    CU_ASSERT_TRUE(matched("free-no-4o", true));
    CU_ASSERT_EQUAL(g_dec.n_targets, 0);
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "key_free");
    CU_ASSERT_STRING_EQUAL(g_dec.tenant_id, "freeco");
    assert_revision_7();
    /* A tenant without a record has no tier: the rule is skipped. */
    decide_b("sk-all", TG_EP_CHAT_COMPLETIONS, "gpt-4o");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_TRUE(matched("allow-all", true));
    assert_revision_7();
}

static void
test_policy_reads_key_labels_and_metadata(void)
{
    decide_b("sk-ci", TG_EP_CHAT_COMPLETIONS, "gpt-4o");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 503);
    CU_ASSERT_STRING_EQUAL(g_dec.error_type, "server_error");
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "ci_paused");
    /* metadata.project = x and tenant.labels.region = eu */
    decide_with(g_bundle, "sk-free", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini",
                "x");
    CU_ASSERT_EQUAL(g_dec.status, 451);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "blocked_project");
    decide_with(g_bundle, "sk-free", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini",
                "y");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    decide_with(g_bundle, "sk-all", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini",
                "x"); /* acme has no region label */
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
}

static void
test_policy_route_audit_and_capture(void)
{
    decide_b("sk-all", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.strategy, TG_ROUTE_ORDERED);
    /* The catalog lists oai-mini first; the route rule allows mock-mini. */
    CU_ASSERT_EQUAL_FATAL(g_dec.n_targets, 1);
    CU_ASSERT_STRING_EQUAL(g_dec.targets[0].deployment_id, "mock-mini");
    CU_ASSERT_TRUE(g_dec.targets[0].weight >= 1);
    CU_ASSERT_TRUE(matched("mini-to-mock", true));
    CU_ASSERT_TRUE(matched("watch-full", false)); /* audit mode: reported */
    CU_ASSERT_EQUAL(g_dec.capture_level, 1);      /* ...but not applied */
    /* No route rule for gpt-4o: every catalog deployment. */
    decide_b("sk-4o", TG_EP_CHAT_COMPLETIONS, "gpt-4o");
    CU_ASSERT_EQUAL_FATAL(g_dec.n_targets, 1);
    CU_ASSERT_STRING_EQUAL(g_dec.targets[0].deployment_id, "oai-4o");
    assert_revision_7();
}

static void
test_policy_comes_after_key_and_catalog(void)
{
    decide_b("sk-wrong", TG_EP_CHAT_COMPLETIONS, "gpt-4o");
    CU_ASSERT_EQUAL(g_dec.status, 401);
    assert_revision_7(); /* every decision names its bundle */
    CU_ASSERT_EQUAL(g_dec.n_matched, 0);
    decide_b("sk-4o", TG_EP_CHAT_COMPLETIONS, "gpt-4o-mini");
    CU_ASSERT_EQUAL(g_dec.status, 403);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "model_not_allowed");
    decide_b("sk-free", TG_EP_CHAT_COMPLETIONS, "gpt-5-imaginary");
    CU_ASSERT_EQUAL(g_dec.status, 404);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "model_not_found");
}

static void
test_policy_filters_models_list(void)
{
    decide_b("sk-free", TG_EP_MODELS, "");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL_FATAL(g_dec.n_models, 2);
    CU_ASSERT_STRING_EQUAL(g_dec.models[0], "gpt-4o-mini");
    CU_ASSERT_STRING_EQUAL(g_dec.models[1], "text-embedding-3-small");
    assert_revision_7();
    decide_b("sk-all", TG_EP_MODELS, "");
    CU_ASSERT_EQUAL(g_dec.n_models, 3);
    decide_b("sk-ci", TG_EP_MODELS, "");
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.n_models, 0); /* every chat request is denied */
}

static tg_err
decide_at(const char *secret, int64_t now_ms)
{
    tg_err rv;

    memset(&g_req, 0, sizeof(g_req));
    tg_sha256(secret, strlen(secret), g_req.key_hash);
    g_req.endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(g_req.model, sizeof(g_req.model), "gpt-4o");
    g_req.now_ms = now_ms;
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(g_rd), TG_OK);
    rv = pdp_decide_eval(g_rd, g_cfg, NULL, &g_req, &g_dec);
    pdp_store_read_end(g_rd);
    return rv;
}

static void
assert_401(const char *words)
{
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 401);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "invalid_api_key");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_dec.message, words));
    CU_ASSERT_PTR_NULL(strstr(g_dec.message, "sk-")); /* never the key */
}

static void
test_expired_key_401(void)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "key_exp");
    snprintf(k.tenant, sizeof(k.tenant), "acme");
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1;
    k.expires_ms = 1700000000000; /* 2023-11-14T22:13:20Z */
    tg_sha256("sk-exp", 6, hash);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_put(g_st, hash, &k), TG_OK);
    CU_ASSERT_EQUAL(decide_at("sk-exp", 1699999999999), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(decide_at("sk-exp", 1700000000000), TG_OK);
    assert_401("expired at 2023-11-14T22:13:20Z");
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "key_exp");
}

/* The old secret works until the grace ends, then says why it stopped;
 * both secrets answer for the same key id. */
static void
test_rotated_key_grace(void)
{
    uint8_t nh[TG_SHA256_LEN];
    int64_t t = 1700000000000;

    put_key("sk-rot1", "key_rot", "acme", NULL, false);
    tg_sha256("sk-rot2", 7, nh);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_key_rotate(g_st, "key_rot", nh, t, 3600000, NULL), TG_OK);
    CU_ASSERT_EQUAL(decide_at("sk-rot1", t + 3599999), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "key_rot");
    CU_ASSERT_EQUAL(decide_at("sk-rot2", t + 3599999), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(g_dec.key_id, "key_rot");
    CU_ASSERT_EQUAL(decide_at("sk-rot1", t + 3600000), TG_OK);
    assert_401("rotated and its grace period ended at 2023-11-14T23:13:20Z");
    CU_ASSERT_EQUAL(decide_at("sk-rot2", t + 3600000), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
}

static void
test_revoke_after_rotate_kills_both(void)
{
    uint8_t nh[TG_SHA256_LEN];
    int64_t t = 1700000000000;

    put_key("sk-rv1", "key_rv", "acme", NULL, false);
    tg_sha256("sk-rv2", 6, nh);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_key_rotate(g_st, "key_rv", nh, t, 86400000, NULL), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_revoke(g_st, "key_rv", t + 1), TG_OK);
    CU_ASSERT_EQUAL(decide_at("sk-rv1", t + 2), TG_OK);
    assert_401("revoked");
    CU_ASSERT_EQUAL(decide_at("sk-rv2", t + 2), TG_OK);
    assert_401("revoked");
}

/* ---- decision reuse ------------------------------------------------------ */

#define REUSE_NOW 1700000000000 /* Tue 2023-11-14T22:13:20Z */
#define REUSE_MAX 60000         /* the PDP's own bound on reuse_ms */

/* bundle_of loads a bundle made of rules (the "rules" array's items) with
 * the test price table; NULL, with the errors printed, if it does not
 * compile. */
static pdp_bundle *
bundle_of(const char *rules)
{
    const char *dir = tg_unit_tmpdir("decide-reuse");
    char        text[4096];
    char        err[2048];
    pdp_bundle *b = NULL;

    snprintf(text, sizeof(text), "{\"rules\": [%s]}\n", rules);
    tg_unit_write(dir, "bundle.json",
                  "{\"name\": \"reuse\", \"revision\": 8}\n");
    tg_unit_write(dir, "rules.policy.json", text);
    tg_unit_write(dir, "pricing.json", PDP_TEST_PRICING);
    if (pdp_bundle_load(&b, dir, g_cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "\nbundle: %s\n", err);
        return NULL;
    }
    return b;
}

/* reuse_req makes g_req a chat request with secret for model at
 * REUSE_NOW; a test changes what it needs before eval_limits. */
static void
reuse_req(const char *secret, const char *model)
{
    static int n;

    memset(&g_req, 0, sizeof(g_req));
    snprintf(g_req.request_id, sizeof(g_req.request_id), "reuse-%d", ++n);
    tg_sha256(secret, strlen(secret), g_req.key_hash);
    g_req.endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(g_req.model, sizeof(g_req.model), "%s", model);
    g_req.max_tokens             = 100;
    g_req.prompt_tokens_estimate = 10;
    g_req.now_ms                 = REUSE_NOW;
}

/* eval_limits decides g_req as the server does: with the limits (and so
 * with the quotas set through administration). */
static tg_err
eval_limits(const pdp_bundle *b)
{
    tg_err rv;

    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(g_rd), TG_OK);
    rv = pdp_decide_eval_limits(g_rd, g_cfg, b, g_lim, NULL, &g_req, &g_dec);
    pdp_store_read_end(g_rd);
    return rv;
}

/* An allow without a bundle, a budget or a rate limit is reusable for the
 * PDP's maximum, whatever the request's other inputs; pdp_decide_eval,
 * which skips the quotas, never says so. */
static void
test_reuse_plain_allow(void)
{
    reuse_req("sk-all", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, REUSE_MAX);
    CU_ASSERT_EQUAL(g_dec.reuse_inputs, 0);
    CU_ASSERT_STRING_EQUAL(g_dec.reservation_id, "");
    CU_ASSERT_EQUAL(g_dec.n_limits, 0);

    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(g_rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_decide_eval(g_rd, g_cfg, NULL, &g_req, &g_dec), TG_OK);
    pdp_store_read_end(g_rd);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
    CU_ASSERT_EQUAL(g_dec.reuse_inputs, 0);
}

/* A quota set through administration counts every request at the PDP:
 * neither a key's rate limit nor a tenant's concurrency may be reused. */
static void
test_reuse_not_with_a_quota(void)
{
    pdp_quota         q;
    tg_kv             none;
    pdp_tenant_change c;

    put_key("sk-quota", "key_quota", "acme", NULL, false);
    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_KEY;
    snprintf(q.id, sizeof(q.id), "key_quota");
    q.rpm = 1000;
    CU_ASSERT_EQUAL_FATAL(pdp_store_quota_put(g_st, &q, NULL), TG_OK);
    reuse_req("sk-quota", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT(g_dec.n_limits > 0); /* the quota did apply */
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
    CU_ASSERT_EQUAL(g_dec.reuse_inputs, 0);

    memset(&none, 0, sizeof(none));
    c = (pdp_tenant_change){"conco", "pro", &none, 0, 1, NULL};
    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(g_st, &c, NULL, NULL), TG_OK);
    put_key("sk-conc", "key_conc", "conco", NULL, false);
    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_TENANT;
    snprintf(q.id, sizeof(q.id), "conco");
    q.concurrent = 5;
    CU_ASSERT_EQUAL_FATAL(pdp_store_quota_put(g_st, &q, NULL), TG_OK);
    reuse_req("sk-conc", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_NOT_EQUAL(g_dec.reservation_id, ""); /* a slot held */
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
    (void)pdp_limits_release(g_lim, g_dec.reservation_id, 0, REUSE_NOW);
}

/* A budget or rate_limit rule that matches, enforced or audited, keeps
 * the decision at the PDP; one that does not match leaves it reusable. */
static void
test_reuse_not_with_a_matching_limit_rule(void)
{
    static const char *const rules[] = {
        "{\"id\": \"rl\", \"kind\": \"rate_limit\", \"scope\": \"key\", "
        "\"rpm\": 1000, \"when\": {\"eq\": [\"request.model\", "
        "\"gpt-4o-mini\"]}}",
        "{\"id\": \"rl\", \"kind\": \"rate_limit\", \"mode\": \"audit\", "
        "\"scope\": \"key\", \"rpm\": 1000, \"when\": {\"eq\": "
        "[\"request.model\", \"gpt-4o-mini\"]}}",
        "{\"id\": \"cap\", \"kind\": \"budget\", \"scope\": \"tenant\", "
        "\"window\": \"daily\", \"limit_usd\": 10, \"when\": {\"eq\": "
        "[\"request.model\", \"gpt-4o-mini\"]}}",
    };
    char rule[1024];

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        pdp_bundle *b;

        snprintf(rule, sizeof(rule),
                 "{\"id\": \"all\", \"kind\": \"access\", \"effect\": "
                 "\"allow\"}, %s",
                 rules[i]);
        b = bundle_of(rule);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        reuse_req("sk-all", "gpt-4o-mini");
        CU_ASSERT_EQUAL(eval_limits(b), TG_OK);
        CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
        CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
        if (g_dec.reuse_ms != 0) {
            fprintf(stderr, "\nreused with rule %zu\n", i);
        }
        if (g_dec.reservation_id[0] != '\0') {
            (void)pdp_limits_release(g_lim, g_dec.reservation_id, 0, REUSE_NOW);
        }
        /* gpt-4o: the rule does not match. */
        reuse_req("sk-all", "gpt-4o");
        CU_ASSERT_EQUAL(eval_limits(b), TG_OK);
        CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
        CU_ASSERT_EQUAL(g_dec.reuse_ms, REUSE_MAX);
        pdp_bundle_unref(b);
    }
}

/* reuse_inputs names exactly the request inputs some rule reads (beyond
 * key, endpoint and model, and what the store holds: tenant and key
 * attributes change the generation instead). */
static void
test_reuse_names_the_inputs_rules_read(void)
{
    static const struct {
        const char *when;
        uint32_t    inputs;
    } cases[] = {
        {"{\"eq\": [\"request.metadata.project\", \"x\"]}", TG_REUSE_META},
        {"{\"gt\": [\"request.max_tokens\", 4000]}", TG_REUSE_MAX_TOKENS},
        {"{\"gt\": [\"request.prompt_tokens\", 4000]}", TG_REUSE_PROMPT},
        {"{\"eq\": [\"request.stream\", true]}", TG_REUSE_STREAM},
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/8\"]}",
         TG_REUSE_CLIENT_IP},
        {"{\"eq\": [\"principal.user\", \"mallory\"]}", TG_REUSE_USER},
        {"{\"any\": [{\"eq\": [\"request.metadata.team\", \"red\"]}, "
         "{\"eq\": [\"principal.user\", \"mallory\"]}]}",
         TG_REUSE_META | TG_REUSE_USER},
        {"{\"all\": [{\"eq\": [\"tenant.tier\", \"free\"]}, {\"eq\": "
         "[\"principal.labels.env\", \"ci\"]}, {\"eq\": [\"request.model\", "
         "\"o1\"]}]}",
         0},
    };
    char rules[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pdp_bundle *b;

        snprintf(rules, sizeof(rules),
                 "{\"id\": \"all\", \"kind\": \"access\", \"effect\": "
                 "\"allow\"}, {\"id\": \"no\", \"kind\": \"access\", "
                 "\"effect\": \"deny\", \"on_error\": \"skip\", \"when\": %s}",
                 cases[i].when);
        b = bundle_of(rules);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        reuse_req("sk-all", "gpt-4o-mini");
        CU_ASSERT_EQUAL(eval_limits(b), TG_OK);
        CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
        CU_ASSERT_EQUAL(g_dec.reuse_ms, REUSE_MAX);
        CU_ASSERT_EQUAL(g_dec.reuse_inputs, cases[i].inputs);
        if (g_dec.reuse_inputs != cases[i].inputs) {
            fprintf(stderr, "\ncase %zu: inputs 0x%x\n", i, g_dec.reuse_inputs);
        }
        pdp_bundle_unref(b);
    }
    /* The suite's bundle reads request.metadata.project (and the store). */
    reuse_req("sk-all", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(g_bundle), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, REUSE_MAX);
    CU_ASSERT_EQUAL(g_dec.reuse_inputs, TG_REUSE_META);
}

/* A rule that reads the clock may decide differently a second later:
 * never reused, even when it does not match and even in audit mode. */
static void
test_reuse_not_when_a_rule_reads_time(void)
{
    static const char *const rules[] = {
        "{\"id\": \"night\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"when\": {\"eq\": [\"time.hour\", 3]}}",
        "{\"id\": \"weekend\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"when\": {\"time_window\": {\"days\": [\"sat\", \"sun\"], "
        "\"from\": \"00:00\", \"to\": \"23:59\"}}}",
        "{\"id\": \"watch\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"mode\": \"audit\", \"when\": {\"eq\": [\"time.weekday\", "
        "\"sun\"]}}",
    };
    char text[1024];

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        pdp_bundle *b;

        snprintf(text, sizeof(text),
                 "{\"id\": \"all\", \"kind\": \"access\", \"effect\": "
                 "\"allow\"}, %s",
                 rules[i]);
        b = bundle_of(text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        reuse_req("sk-all", "gpt-4o-mini"); /* Tuesday, 22:13 UTC */
        CU_ASSERT_EQUAL(eval_limits(b), TG_OK);
        CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
        CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
        pdp_bundle_unref(b);
    }
}

/* A decision is never reused past the moment its key stops working: its
 * expiry, or the end of a rotated secret's grace. */
static void
test_reuse_ends_with_the_key(void)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];
    uint8_t nh[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "key_soon");
    snprintf(k.tenant, sizeof(k.tenant), "acme");
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1;
    k.expires_ms = REUSE_NOW + 5000;
    tg_sha256("sk-soon", 7, hash);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_put(g_st, hash, &k), TG_OK);
    reuse_req("sk-soon", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT(g_dec.reuse_ms > 0 && g_dec.reuse_ms <= 5000);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 5000);
    g_req.now_ms = REUSE_NOW + 4999; /* 1 ms left */
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 1);

    /* Far from expiring: the PDP's maximum. */
    snprintf(k.id, sizeof(k.id), "key_later");
    k.expires_ms = REUSE_NOW + 3600000;
    tg_sha256("sk-later", 8, hash);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_put(g_st, hash, &k), TG_OK);
    reuse_req("sk-later", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, REUSE_MAX);

    /* The old secret of a rotated key: until its grace ends (10 s); the
     * new one: the maximum. */
    put_key("sk-grace1", "key_grace", "acme", NULL, false);
    tg_sha256("sk-grace2", 9, nh);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_key_rotate(g_st, "key_grace", nh, REUSE_NOW, 10000, NULL),
        TG_OK);
    reuse_req("sk-grace1", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 10000);
    reuse_req("sk-grace2", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, REUSE_MAX);
}

/* A deny is asked again every time: a key or a tenant fixed is seen at
 * once. */
static void
test_reuse_never_for_a_deny(void)
{
    reuse_req("sk-free", "gpt-4o"); /* the bundle's tier_denied */
    CU_ASSERT_EQUAL(eval_limits(g_bundle), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_STRING_EQUAL(g_dec.error_code, "tier_denied");
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
    CU_ASSERT_EQUAL(g_dec.reuse_inputs, 0);
    reuse_req("sk-4o", "gpt-4o-mini"); /* model_not_allowed */
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.status, 403);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
    reuse_req("sk-wrong", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(NULL), TG_OK);
    CU_ASSERT_EQUAL(g_dec.status, 401);
    CU_ASSERT_EQUAL(g_dec.reuse_ms, 0);
}

/* A request the bundle would guard but a limit denies carries no
 * guardrail obligation (a deny names no guard set: the data plane could
 * not decode one that did, and answered 503 instead of the 429). */
static void
test_limit_deny_has_no_guards(void)
{
    pdp_bundle *b = bundle_of(
        "{\"id\": \"all\", \"kind\": \"access\", \"effect\": \"allow\"}, "
        "{\"id\": \"pii\", \"kind\": \"guardrail\", \"stages\": "
        "[\"input\"], \"detectors\": [\"pii\"], \"action\": \"redact\"}, "
        "{\"id\": \"one\", \"kind\": \"rate_limit\", \"scope\": \"key\", "
        "\"rpm\": 1}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    reuse_req("sk-all", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(b), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_dec.n_guards, 1); /* the control: it is guarded */
    reuse_req("sk-all", "gpt-4o-mini");
    CU_ASSERT_EQUAL(eval_limits(b), TG_OK);
    CU_ASSERT_EQUAL(g_dec.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_dec.status, 429);
    CU_ASSERT_EQUAL(g_dec.n_guards, 0);
    pdp_bundle_unref(b);
}

static const tg_unit_case cases[] = {
    {"limit_deny_has_no_guards", test_limit_deny_has_no_guards},
    {"expired_key_401", test_expired_key_401},
    {"rotated_key_grace", test_rotated_key_grace},
    {"revoke_after_rotate_kills_both", test_revoke_after_rotate_kills_both},
    {"unknown_key_401", test_unknown_key_401},
    {"revoked_key_401", test_revoked_key_401},
    {"model_not_allowed_403", test_model_not_allowed_403},
    {"unknown_model_404", test_unknown_model_404},
    {"allow_targets_in_config_order", test_allow_targets_in_config_order},
    {"models_endpoint_lists_allowed", test_models_endpoint_lists_allowed},
    {"policy_deny_carries_the_rule", test_policy_deny_carries_the_rule},
    {"policy_reads_key_labels_and_metadata",
     test_policy_reads_key_labels_and_metadata},
    {"policy_route_audit_and_capture", test_policy_route_audit_and_capture},
    {"policy_comes_after_key_and_catalog",
     test_policy_comes_after_key_and_catalog},
    {"policy_filters_models_list", test_policy_filters_models_list},
    {"reuse_plain_allow", test_reuse_plain_allow},
    {"reuse_not_with_a_quota", test_reuse_not_with_a_quota},
    {"reuse_not_with_a_matching_limit_rule",
     test_reuse_not_with_a_matching_limit_rule},
    {"reuse_names_the_inputs_rules_read",
     test_reuse_names_the_inputs_rules_read},
    {"reuse_not_when_a_rule_reads_time", test_reuse_not_when_a_rule_reads_time},
    {"reuse_ends_with_the_key", test_reuse_ends_with_the_key},
    {"reuse_never_for_a_deny", test_reuse_never_for_a_deny},
    {NULL, NULL},
};

int
main(void)
{
    int rc;

    setup();
    rc = tg_unit_run("pdp.decide", cases);
    teardown();
    return rc;
}
