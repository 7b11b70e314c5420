/* test_decide.c - pdp.decide: the answers API clients see for each kind of
 * key and model, and where allowed requests may be routed. */
#include <stdlib.h>
#include <string.h>

#include "pdp_decide.h"
#include "pdp_store.h"
#include "pdp_test_util.h"
#include "tg_hash.h"
#include "tg_unit.h"

static tg_config        *g_cfg;
static pdp_store        *g_st;
static pdp_store_reader *g_rd;
static tg_decide         g_req;
static tg_decision       g_dec;

static void
put_key(const char *secret, const char *id, const char *tenant,
        const char *model, bool revoke)
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
    /* Runs before the suite: fail the process, not an assertion. */
    if (pdp_store_key_put(g_st, hash, &k) != TG_OK ||
        (revoke && pdp_store_key_revoke(g_st, id, 2) != TG_OK)) {
        fprintf(stderr, "setup: cannot store key %s\n", id);
        exit(2);
    }
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
    pdp_store_reader_create(g_st, &g_rd);
}

static void
teardown(void)
{
    pdp_store_reader_destroy(g_rd);
    pdp_store_close(g_st);
    tg_config_destroy(g_cfg);
}

static tg_err
decide(const char *secret, tg_endpoint ep, const char *model)
{
    tg_err rv;

    memset(&g_req, 0, sizeof(g_req));
    tg_sha256(secret, strlen(secret), g_req.key_hash);
    g_req.endpoint = ep;
    snprintf(g_req.model, sizeof(g_req.model), "%s", model);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(g_rd), TG_OK);
    rv = pdp_decide_eval(g_rd, g_cfg, &g_req, &g_dec);
    pdp_store_read_end(g_rd);
    return rv;
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

static const tg_unit_case cases[] = {
    {"unknown_key_401", test_unknown_key_401},
    {"revoked_key_401", test_revoked_key_401},
    {"model_not_allowed_403", test_model_not_allowed_403},
    {"unknown_model_404", test_unknown_model_404},
    {"allow_targets_in_config_order", test_allow_targets_in_config_order},
    {"models_endpoint_lists_allowed", test_models_endpoint_lists_allowed},
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
