/* test_tenants.c - pdp.admin.tenants: tenants through the admin API as an
 * operator uses them: create, change (what is not given stays), disable
 * (every key of the tenant refused by the decision with 403
 * tenant_disabled) and enable, and delete (refused while a key works; its
 * quota goes, its keys' records and spend stay), each change in the audit
 * trail with who made it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "pdp_test_api.h"
#include "tg_unit.h"

#define NOW 1800000000000LL /* 2027-01-15T08:00:00Z */

static pdp_test_api g_t;

/* new_key makes a key of tenant and copies its id and secret. */
static void
new_key(const char *tenant, char *id, char *secret)
{
    char body[128];

    snprintf(body, sizeof(body), "{\"tenant\":\"%s\"}", tenant);
    CU_ASSERT_EQUAL_FATAL(pdp_test_api_call(&g_t, "POST", "keys", NULL, body),
                          201);
    snprintf(id, 64, "%s", pdp_test_api_str(&g_t, "id"));
    snprintf(secret, 128, "%s", pdp_test_api_str(&g_t, "key"));
}

/* audited: the newest audit line is action on target by "test". */
static bool
audited(const char *action, const char *target)
{
    const cJSON *e;

    if (pdp_test_api_call(&g_t, "GET", "audit", "limit=1", NULL) != 200) {
        return false;
    }
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(g_t.doc, "audit"), 0);
    return e != NULL &&
           strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "action")),
                  action) == 0 &&
           strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "target")),
                  target) == 0 &&
           strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "actor")),
                  "test") == 0;
}

static void
test_create_and_change(void)
{
    const cJSON *labels;

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "tenants", NULL,
                                      "{\"id\":\"acme\",\"name\":\"Acme\","
                                      "\"tier\":\"pro\",\"labels\":{\"region\":"
                                      "\"eu\"}}"),
                    201);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "active");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(g_t.doc, "disabled")));
    CU_ASSERT_TRUE(audited("tenants.create", "tenant:acme"));
    /* What is not given stays; a label set to null goes. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PATCH", "tenants/acme", NULL,
                                      "{\"labels\":{\"region\":null,\"team\":"
                                      "\"ads\"}}"),
                    200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "tier"), "pro");
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "name"), "Acme");
    labels = cJSON_GetObjectItem(g_t.doc, "labels");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(labels, "region"));
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetStringValue(cJSON_GetObjectItem(labels, "team")), "ads");
    CU_ASSERT_TRUE(audited("tenants.update", "tenant:acme"));
    /* PUT creates or changes, and says which. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "tenants/beta", NULL, "{}"),
                    201);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "new")));
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "tenants/beta", NULL,
                                      "{\"tier\":\"free\"}"),
                    200);
    CU_ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(g_t.doc, "new")));
    /* Refused where they enter. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "tenants", NULL,
                                      "{\"id\":\"x\",\"name\":\"a\\u001bb\"}"),
                    400);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "tenants", NULL,
                                      "{\"id\":\"has space\"}"),
                    400);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "invalid_id");
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "tenants", NULL, "{}"),
                    400);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "missing_field");
}

/* A disabled tenant's keys are refused with a code and a message that says
 * what to do; enabled again, they work. Nothing else of it changes. */
static void
test_disable_refuses_its_keys(void)
{
    char        id[64];
    char        secret[128];
    char        other_id[64];
    char        other[128];
    tg_decision d;

    new_key("acme", id, secret);
    new_key("beta", other_id, other);
    pdp_test_api_decide(&g_t, secret, "gpt-4o-mini", NULL, NULL, &d);
    CU_ASSERT_EQUAL(d.verdict, TG_VERDICT_ALLOW);

    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants/acme/disable", NULL, NULL),
        200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "disabled");
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "changed")));
    CU_ASSERT_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(g_t.doc, "disabled_ms")), NOW);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "tier"), "pro");
    CU_ASSERT_TRUE(audited("tenants.disable", "tenant:acme"));

    pdp_test_api_decide(&g_t, secret, "gpt-4o-mini", NULL, NULL, &d);
    CU_ASSERT_EQUAL(d.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.status, 403);
    CU_ASSERT_STRING_EQUAL(d.error_code, "tenant_disabled");
    CU_ASSERT_PTR_NOT_NULL(strstr(d.message, "acme"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.message, "administrator"));
    /* Another tenant's keys are not touched. */
    pdp_test_api_decide(&g_t, other, "gpt-4o-mini", NULL, NULL, &d);
    CU_ASSERT_EQUAL(d.verdict, TG_VERDICT_ALLOW);
    /* It reads disabled wherever a tenant is shown. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "tenants/acme", NULL, NULL),
                    200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "disabled");
    /* A change that is not a disable keeps it disabled. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PATCH", "tenants/acme", NULL,
                                      "{\"tier\":\"enterprise\"}"),
                    200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "disabled");
    /* Twice is no change, and no audit line. */
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants/acme/disable", NULL, NULL),
        200);
    CU_ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(g_t.doc, "changed")));
    CU_ASSERT_TRUE(audited("tenants.update", "tenant:acme"));

    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants/acme/enable", NULL, NULL),
        200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "active");
    CU_ASSERT_TRUE(audited("tenants.enable", "tenant:acme"));
    pdp_test_api_decide(&g_t, secret, "gpt-4o-mini", NULL, NULL, &d);
    CU_ASSERT_EQUAL(d.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants/nobody/disable", NULL, NULL),
        404);
}

/* Delete is refused while a key of the tenant works; then the tenant and
 * its quota go, its keys' records and its spend stay. */
static void
test_delete(void)
{
    char         id[64];
    char         secret[128];
    char         target[96];
    tg_usage     u;
    tg_usage_ack ack;
    const char  *msg;

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "tenants", NULL,
                                      "{\"id\":\"gone-co\"}"),
                    201);
    new_key("gone-co", id, secret);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "budgets/tenant/gone-co",
                                      NULL,
                                      "{\"limit_usd\":5,\"window\":\"daily\"}"),
                    200);
    memset(&u, 0, sizeof(u));
    snprintf(u.request_id, sizeof(u.request_id), "del-1");
    snprintf(u.tenant_id, sizeof(u.tenant_id), "gone-co");
    snprintf(u.key_id, sizeof(u.key_id), "%s", id);
    snprintf(u.model, sizeof(u.model), "gpt-4o-mini");
    u.prompt_tokens = 10;
    u.started_ms    = NOW;
    u.status        = 200;
    CU_ASSERT_EQUAL_FATAL(pdp_store_usage_settle(g_t.st, &u, 1234, &ack),
                          TG_OK);

    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "tenants/gone-co", NULL, NULL), 409);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "tenant_has_keys");
    msg = pdp_test_api_str(&g_t, "error.message");
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, id));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "keys revoke"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "tenants disable gone-co"));
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "tenants/gone-co", NULL, NULL), 200);

    snprintf(target, sizeof(target), "keys/%s/revoke", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", target, NULL, NULL), 200);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "tenants/gone-co", NULL, NULL), 200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "deleted"), "tenant:gone-co");
    CU_ASSERT_TRUE(audited("tenants.delete", "tenant:gone-co"));
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "tenants/gone-co", NULL, NULL), 404);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "budgets/tenant/gone-co", NULL, NULL),
        404);
    /* Its key's record stays (revoked), and so does its spend. */
    snprintf(target, sizeof(target), "keys/%s", id);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", target, NULL, NULL), 200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "status"), "revoked");
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "spend", NULL, NULL), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_t.out.data, "\"tenant\":\"gone-co\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_t.out.data, "\"cost_micro_usd\":1234"));
    /* Made again, it starts without the old budget. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "tenants", NULL,
                                      "{\"id\":\"gone-co\"}"),
                    201);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "budgets/tenant/gone-co", NULL, NULL),
        404);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "tenants/nobody", NULL, NULL), 404);
}

/* A key that expired does not hold a tenant back; one that is disabled
 * with its tenant does (it works again once the tenant is enabled). */
static void
test_delete_expired_and_disabled(void)
{
    char id[64];
    char secret[128];

    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants", NULL, "{\"id\":\"exp-co\"}"),
        201);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "POST", "keys", NULL,
                                      "{\"tenant\":\"exp-co\",\"expires_in\":"
                                      "\"1h\"}"),
                    201);
    g_t.x.now_ms = NOW + 2 * 3600000; /* the key expired an hour ago */
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "tenants/exp-co", NULL, NULL), 200);
    g_t.x.now_ms = NOW;
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants", NULL, "{\"id\":\"off-co\"}"),
        201);
    new_key("off-co", id, secret);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "POST", "tenants/off-co/disable", NULL, NULL),
        200);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "tenants/off-co", NULL, NULL), 409);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(pdp_test_api_str(&g_t, "error.message"), "is disabled"));
}

static const tg_unit_case cases[] = {
    {"create_and_change", test_create_and_change}, /* first: makes acme */
    {"disable_refuses_its_keys", test_disable_refuses_its_keys},
    {"delete", test_delete},
    {"delete_expired_and_disabled", test_delete_expired_and_disabled},
    {NULL, NULL},
};

int
main(void)
{
    int rc;

    pdp_test_api_open(&g_t, "tenants", NOW);
    rc = tg_unit_run("pdp.admin.tenants", cases);
    pdp_test_api_close(&g_t);
    return rc;
}
