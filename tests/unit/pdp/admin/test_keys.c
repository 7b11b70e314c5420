/* test_keys.c - pdp.admin.keys: virtual keys through the admin API: made
 * once (the secret in that answer only, its SHA-256 stored), with their
 * budget and rate limits in the same request (all or nothing), listed in
 * creation order, rotated with a grace period, revoked; and a budget over
 * a model without a price warned about when it is set, and refused as
 * model_unpriced (403), never budget_exceeded, when a request comes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "pdp_test_api.h"
#include "tg_pricing.h"
#include "tg_unit.h"

#define NOW 1800000000000LL /* 2027-01-15T08:00:00Z */

static pdp_test_api g_t;
static tg_pricing  *g_pr; /* the test's pricing.json: gpt-4o-mini only */

/* nkeys is the number of keys GET keys lists. */
static int
nkeys(void)
{
    CU_ASSERT_EQUAL_FATAL(pdp_test_api_call(&g_t, "GET", "keys", NULL, NULL),
                          200);
    return cJSON_GetArraySize(cJSON_GetObjectItem(g_t.doc, "keys"));
}

static void
test_create(void)
{
    const char *secret;
    const char *id;
    uint8_t     hash[TG_SHA256_LEN];
    pdp_key     k;

    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "POST", "tenants", NULL, "{\"id\":\"acme\"}"),
        201);
    CU_ASSERT_EQUAL_FATAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                            "{\"tenant\":\"acme\",\"name\":"
                                            "\"ci\",\"models\":[\"gpt-4o\"],"
                                            "\"labels\":{\"team\":\"ads\"}}"),
                          201);
    secret = pdp_test_api_str(&g_t, "key");
    id     = pdp_test_api_str(&g_t, "id");
    CU_ASSERT_FATAL(secret != NULL && id != NULL);
    CU_ASSERT_EQUAL(strncmp(secret, "sk-tg-", 6), 0);
    CU_ASSERT_EQUAL(strlen(secret), 6 + 48);
    CU_ASSERT_EQUAL(strncmp(id, "key_", 4), 0);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "active");
    /* Stored under its hash; shown again never. */
    tg_sha256(secret, strlen(secret), hash);
    {
        pdp_store_reader *rd = NULL;
        CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(g_t.st, &rd), TG_OK);
        CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
        CU_ASSERT_EQUAL(pdp_store_key_get(rd, hash, &k), TG_OK);
        CU_ASSERT_STRING_EQUAL(k.id, id);
        pdp_store_read_end(rd);
        pdp_store_reader_destroy(rd);
    }
    CU_ASSERT_EQUAL(nkeys(), 1);
    CU_ASSERT_PTR_NULL(strstr(g_t.out.data, "sk-tg-"));
    /* What is refused, and why. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"acme\",\"models\":["
                                      "\"gpt-9\"]}"),
                    400);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "unknown_model");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(pdp_test_api_str(&g_t, "error.message"), "gpt-4o-mini"));
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "keys", NULL,
                          "{\"tenant\":\"acme\",\"name\":\"a\\nb\"}"),
        400);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL, "{}"), 400);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "missing_field");
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"acme\",\"expires_in\":"
                                      "\"90\"}"),
                    400);
    CU_ASSERT_EQUAL(nkeys(), 1);
}

/* A key is made with its limits in one request: the same fields and
 * rules as setting them on the key afterwards. */
static void
test_create_with_limits(void)
{
    char         path[128];
    char         id[64];
    const cJSON *b;

    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "POST", "keys", NULL,
                          "{\"tenant\":\"acme\",\"models\":[\"gpt-4o-mini\"],"
                          "\"limit_usd\":2.5,\"window\":\"monthly\","
                          "\"thresholds\":[50,80],\"action\":\"clamp\","
                          "\"rpm\":60,\"concurrent\":4}"),
        201);
    snprintf(id, sizeof(id), "%s", pdp_test_api_str(&g_t, "id"));
    b = cJSON_GetObjectItem(g_t.doc, "budget");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetStringValue(cJSON_GetObjectItem(b, "limit_usd")), "2.500000");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetStringValue(cJSON_GetObjectItem(b, "action")), "clamp");
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(
                        cJSON_GetObjectItem(g_t.doc, "ratelimits"), "rpm")),
                    60);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(g_t.doc, "warnings"));
    /* As if set afterwards. */
    snprintf(path, sizeof(path), "budgets/key/%s", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", path, NULL, NULL), 200);
    CU_ASSERT_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(g_t.doc, "limit_micro_usd")),
        2500000);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "window"), "monthly");
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "updated_by"), "test");
    snprintf(path, sizeof(path), "ratelimits/key/%s", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", path, NULL, NULL), 200);
    CU_ASSERT_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(g_t.doc, "concurrent")), 4);
    /* One change, one audit line, with the limits as given. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "audit", "limit=1", NULL),
                    200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_t.out.data, "\"action\":\"keys.create\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_t.out.data, "\"limit_usd\":2.5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_t.out.data, "\"rpm\":60"));
    /* Rate limits alone. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"acme\",\"tpm\":1000}"),
                    201);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(g_t.doc, "budget"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(g_t.doc, "ratelimits"));
}

/* A limit that is wrong leaves no key behind. */
static void
test_bad_limit_makes_no_key(void)
{
    static const struct {
        const char *body;
        const char *code;
    } bad[] = {
        {"{\"tenant\":\"acme\",\"limit_usd\":-5,\"window\":\"daily\"}",
         "invalid_limit"},
        {"{\"tenant\":\"acme\",\"limit_usd\":5}", "missing_field"},
        {"{\"tenant\":\"acme\",\"window\":\"daily\"}", "missing_field"},
        {"{\"tenant\":\"acme\",\"limit_usd\":5,\"window\":\"fortnightly\"}",
         "invalid_window"},
        {"{\"tenant\":\"acme\",\"limit_usd\":5,\"window\":\"daily\","
         "\"thresholds\":[80,50]}",
         "invalid_field"},
        {"{\"tenant\":\"acme\",\"limit_usd\":5,\"window\":\"daily\","
         "\"action\":\"warn\"}",
         "invalid_field"},
        {"{\"tenant\":\"acme\",\"rpm\":-1}", "invalid_limit"},
        {"{\"tenant\":\"acme\",\"rpm\":0}", "missing_field"},
        {"{\"tenant\":\"acme\",\"limit_usd\":5,\"window\":\"daily\","
         "\"tpm\":1.5}",
         "invalid_limit"},
    };
    int before = nkeys();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(
            pdp_test_api_call(&g_t, "POST", "keys", NULL, bad[i].body), 400);
        if (pdp_test_api_code(&g_t) == NULL ||
            strcmp(pdp_test_api_code(&g_t), bad[i].code) != 0) {
            fprintf(stderr, "\n  %s: %s\n", bad[i].body, g_t.out.data);
            CU_FAIL("not the expected code");
        }
    }
    CU_ASSERT_EQUAL(nkeys(), before);
}

static void
test_list_rotate_revoke(void)
{
    char         id[64];
    char         path[128];
    const cJSON *keys;
    double       prev = 0;

    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants", NULL, "{\"id\":\"beta\"}"),
        201);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "keys", NULL, "{\"tenant\":\"beta\"}"),
        201);
    snprintf(id, sizeof(id), "%s", pdp_test_api_str(&g_t, "id"));
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "keys", "tenant=beta", NULL),
                    200);
    keys = cJSON_GetObjectItem(g_t.doc, "keys");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(keys), 1);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "keys", NULL, NULL), 200);
    for (const cJSON *k = cJSON_GetObjectItem(g_t.doc, "keys")->child;
         k != NULL; k   = k->next) {
        double c = cJSON_GetNumberValue(cJSON_GetObjectItem(k, "created_ms"));
        CU_ASSERT(c >= prev); /* oldest first */
        prev = c;
    }
    /* The old secret works for the grace period (24 h unless given). */
    snprintf(path, sizeof(path), "keys/%s/rotate", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", path, NULL, NULL), 200);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(
                        g_t.doc, "previous_valid_until_ms")),
                    NOW + 24 * 3600000LL);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "rotated-grace");
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", path, NULL, "{\"grace\":\"soon\"}"),
        400);
    snprintf(path, sizeof(path), "keys/%s/revoke", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", path, NULL, NULL), 200);
    CU_ASSERT_TRUE(
        cJSON_IsFalse(cJSON_GetObjectItem(g_t.doc, "already_revoked")));
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", path, NULL, NULL), 200);
    CU_ASSERT_TRUE(
        cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "already_revoked")));
    snprintf(path, sizeof(path), "keys/%s/rotate", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", path, NULL, NULL), 409);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "key_not_active");
}

/* warned: the last answer warns that model has no price. */
static bool
warned(const char *model)
{
    const cJSON *w = cJSON_GetObjectItem(g_t.doc, "warnings");
    const char  *m = cJSON_GetStringValue(cJSON_GetArrayItem(w, 0));

    return m != NULL && strstr(m, model) != NULL &&
           strstr(m, "model_unpriced") != NULL;
}

/* A budget over a model without a price is set, with a warning; a request
 * for that model under it is refused as model_unpriced. */
static void
test_unpriced_models(void)
{
    char        secret[128];
    char        id[64];
    char        path[128];
    pdp_limits *lim = NULL;
    tg_decision d;

    g_t.x.pricing = g_pr;
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "PUT", "tenants/pricey", NULL, "{}"), 201);
    /* A tenant's budget covers every model of the catalog. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "budgets/tenant/pricey",
                                      NULL,
                                      "{\"limit_usd\":1,\"window\":\"daily\"}"),
                    200);
    CU_ASSERT_TRUE(warned("\"gpt-4o\""));
    CU_ASSERT_TRUE(warned("\"text-embedding-3-small\""));
    CU_ASSERT_PTR_NULL(strstr(g_t.out.data, "\\\"gpt-4o-mini\\\""));
    /* A key's budget covers the key's models. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"pricey\",\"models\":["
                                      "\"gpt-4o-mini\"],\"limit_usd\":1,"
                                      "\"window\":\"daily\"}"),
                    201);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(g_t.doc, "warnings"));
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"pricey\",\"models\":["
                                      "\"gpt-4o\"],\"limit_usd\":1,"
                                      "\"window\":\"daily\"}"),
                    201);
    CU_ASSERT_TRUE(warned("\"gpt-4o\""));
    snprintf(secret, sizeof(secret), "%s", pdp_test_api_str(&g_t, "key"));
    snprintf(id, sizeof(id), "%s", pdp_test_api_str(&g_t, "id"));
    snprintf(path, sizeof(path), "budgets/key/%s", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", path, NULL,
                                      "{\"limit_usd\":3,\"window\":\"daily\"}"),
                    200);
    CU_ASSERT_TRUE(warned("\"gpt-4o\""));
    /* Prices not known here: nothing said. */
    g_t.x.pricing = NULL;
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", path, NULL,
                                      "{\"limit_usd\":3,\"window\":\"daily\"}"),
                    200);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(g_t.doc, "warnings"));

    /* The decision: 403 model_unpriced, not 429 budget_exceeded. */
    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&lim, 900000), TG_OK);
    pdp_test_api_decide(&g_t, secret, "gpt-4o", lim, g_pr, &d);
    CU_ASSERT_EQUAL(d.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.status, 403);
    CU_ASSERT_STRING_EQUAL(d.error_code, "model_unpriced");
    CU_ASSERT_PTR_NOT_NULL(strstr(d.message, "has no price"));
    pdp_limits_destroy(lim);
}

/* The same key and model with a price allowed, and its budget enforced:
 * a request it cannot pay for is budget_exceeded. */
static void
test_priced_model_budget(void)
{
    char        secret[128];
    pdp_limits *lim = NULL;
    tg_decision d;

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"pricey\",\"models\":["
                                      "\"gpt-4o-mini\"],\"limit_usd\":"
                                      "\"0.000001\",\"window\":\"daily\"}"),
                    201);
    snprintf(secret, sizeof(secret), "%s", pdp_test_api_str(&g_t, "key"));
    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&lim, 900000), TG_OK);
    pdp_test_api_decide(&g_t, secret, "gpt-4o-mini", lim, g_pr, &d);
    CU_ASSERT_EQUAL(d.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.status, 429);
    CU_ASSERT_STRING_EQUAL(d.error_code, "budget_exceeded");
    pdp_limits_destroy(lim);
}

static const tg_unit_case cases[] = {
    {"create", test_create}, /* first: makes acme */
    {"create_with_limits", test_create_with_limits},
    {"bad_limit_makes_no_key", test_bad_limit_makes_no_key},
    {"list_rotate_revoke", test_list_rotate_revoke},
    {"unpriced_models", test_unpriced_models},
    {"priced_model_budget", test_priced_model_budget},
    {NULL, NULL},
};

int
main(void)
{
    char path[600];
    char msg[512];
    int  rc;

    pdp_test_api_open(&g_t, "keys", NOW);
    snprintf(path, sizeof(path), "%s/pricing.json", g_t.dir);
    if (tg_pricing_load(&g_pr, path, msg, sizeof(msg)) != TG_OK) {
        fprintf(stderr, "test pricing: %s\n", msg);
        return 2;
    }
    rc = tg_unit_run("pdp.admin.keys", cases);
    tg_pricing_destroy(g_pr);
    pdp_test_api_close(&g_t);
    return rc;
}
