/* test_api.c - pdp.admin.api: the admin API's router through
 * pdp_api_handle, one table row per request: every route (method and
 * path) answers its status, and what is not a route, a method a path does
 * not take, a body that is not JSON, not an object, or holds a member the
 * resource does not take is refused with the code a caller can act on.
 * Rows run in order against one state directory; {K} is a key made first,
 * {R} a second one. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_test_api.h"
#include "tg_unit.h"

typedef struct api_case {
    const char *method;
    const char *path; /* after /admin/v1/ */
    const char *query;
    const char *body;
    unsigned    status;
    const char *code; /* the error code; NULL: a success */
} api_case;

static const api_case g_routes[] = {
    /* tenants */
    {"GET", "tenants", NULL, NULL, 200, NULL},
    {"GET", "tenants/", NULL, NULL, 200, NULL}, /* a trailing slash */
    {"POST", "tenants", NULL, "{\"id\":\"newco\",\"tier\":\"free\"}", 201,
     NULL},
    {"POST", "tenants", NULL, "{\"id\":\"newco\"}", 409, "tenant_exists"},
    {"PUT", "tenants/putco", NULL, "{\"tier\":\"pro\"}", 201, NULL},
    {"PUT", "tenants/putco", NULL, "{\"tier\":\"free\"}", 200, NULL},
    {"GET", "tenants/acme", NULL, NULL, 200, NULL},
    {"GET", "tenants/ghost", NULL, NULL, 404, "tenant_not_found"},
    {"PATCH", "tenants/acme", NULL, "{\"name\":\"Acme\"}", 200, NULL},
    {"PATCH", "tenants/ghost", NULL, "{\"name\":\"x\"}", 404,
     "tenant_not_found"},
    {"POST", "tenants/newco/disable", NULL, NULL, 200, NULL},
    {"POST", "tenants/newco/enable", NULL, "{}", 200, NULL},
    {"POST", "tenants/ghost/disable", NULL, NULL, 404, "tenant_not_found"},
    {"DELETE", "tenants/newco", NULL, NULL, 200, NULL},
    {"DELETE", "tenants/newco", NULL, NULL, 404, "tenant_not_found"},
    {"DELETE", "tenants/acme", NULL, NULL, 409, "tenant_has_keys"},
    /* keys */
    {"GET", "keys", NULL, NULL, 200, NULL},
    {"GET", "keys", "tenant=acme", NULL, 200, NULL},
    {"POST", "keys", NULL, "{\"tenant\":\"acme\",\"rpm\":10}", 201, NULL},
    {"POST", "keys", NULL, "{\"tenant\":\"ghost\"}", 404, "tenant_not_found"},
    {"GET", "keys/{K}", NULL, NULL, 200, NULL},
    {"GET", "keys/key_0000000000000000", NULL, NULL, 404, "key_not_found"},
    {"POST", "keys/{K}/rotate", NULL, "{\"grace\":\"1h\"}", 200, NULL},
    {"POST", "keys/{R}/revoke", NULL, NULL, 200, NULL},
    {"POST", "keys/key_0000000000000000/revoke", NULL, NULL, 404,
     "key_not_found"},
    /* budgets */
    {"GET", "budgets", NULL, NULL, 200, NULL},
    {"PUT", "budgets/tenant/acme", NULL,
     "{\"limit_usd\":5,\"window\":\"daily\"}", 200, NULL},
    {"GET", "budgets/tenant/acme", NULL, NULL, 200, NULL},
    {"PUT", "budgets/key/{K}", NULL,
     "{\"limit_usd\":\"0.5\",\"window\":"
     "\"rolling:24h\"}",
     200, NULL},
    {"PUT", "budgets/tenant/ghost", NULL,
     "{\"limit_usd\":5,\"window\":\"daily\"}", 404, "tenant_not_found"},
    {"PUT", "budgets/team/acme", NULL, "{\"limit_usd\":5,\"window\":\"daily\"}",
     404, "not_found"},
    {"PUT", "budgets/tenant/acme", NULL, NULL, 400, "missing_body"},
    {"DELETE", "budgets/tenant/acme", NULL, NULL, 200, NULL},
    {"GET", "budgets/tenant/acme", NULL, NULL, 404, "budget_not_found"},
    {"DELETE", "budgets/tenant/acme", NULL, NULL, 404, "budget_not_found"},
    /* rate limits */
    {"GET", "ratelimits", NULL, NULL, 200, NULL},
    {"PUT", "ratelimits/key/{K}", NULL, "{\"rpm\":5,\"concurrent\":2}", 200,
     NULL},
    {"GET", "ratelimits/key/{K}", NULL, NULL, 200, NULL},
    {"DELETE", "ratelimits/key/{K}", NULL, NULL, 200, NULL},
    {"GET", "ratelimits/key/{K}", NULL, NULL, 404, "ratelimit_not_found"},
    {"GET", "ratelimits/tenant/has space", NULL, NULL, 404, "tenant_not_found"},
    /* what is read but not changed */
    {"GET", "spend", NULL, NULL, 200, NULL},
    {"GET", "spend", "by=tenant&from=yesterday&format=csv", NULL, 200, NULL},
    {"GET", "spend", "by=team", NULL, 400, "invalid_query"},
    {"GET", "audit", NULL, NULL, 200, NULL},
    {"GET", "audit", "limit=2", NULL, 200, NULL},
    {"GET", "audit", "limit=0", NULL, 400, "invalid_query"},
    {"GET", "usage", "tenant=acme&limit=5", NULL, 200, NULL},
    {"GET", "usage", "limit=x", NULL, 400, "invalid_query"},
    {"GET", "reservations", NULL, NULL, 200, NULL},
    {"POST", "reservations/req-1/release", NULL, NULL, 404, "not_found"},
    /* not routes */
    {"GET", "", NULL, NULL, 404, "not_found"},
    {"GET", "nothing-here", NULL, NULL, 404, "not_found"},
    {"GET", "keys/a/b/c/d/e/f", NULL, NULL, 404, "not_found"},
    {"GET", "tenants/acme/disable", NULL, NULL, 404, "not_found"},
    /* a method the path does not take: 404 like any other non-route (the
     * API has no 405) */
    {"DELETE", "keys", NULL, NULL, 404, "not_found"},
    {"PATCH", "budgets", NULL, NULL, 404, "not_found"},
    {"GET", "keys/{K}/revoke", NULL, NULL, 404, "not_found"},
    {"POST", "tenants/acme", NULL, "{}", 404, "not_found"},
    {"PUT", "spend", NULL, "{}", 404, "not_found"},
    /* bodies */
    {"POST", "tenants", NULL, "{\"id\": \"x\",", 400, "invalid_json"},
    {"POST", "tenants", NULL, "[1, 2]", 400, "invalid_body"},
    {"POST", "tenants", NULL, "{\"id\":\"x\",\"colour\":\"red\"}", 400,
     "unknown_field"},
    {"PATCH", "tenants/acme", NULL, "{\"id\":\"other\"}", 400, "unknown_field"},
    {"POST", "keys", NULL, "{\"tenant\":\"acme\",\"secret\":\"x\"}", 400,
     "unknown_field"},
    {"POST", "keys/{K}/revoke", NULL, "{\"now\":true}", 400, "unknown_field"},
    {"POST", "keys/{K}/rotate", NULL, "{\"grace\":\"1h\",\"x\":1}", 400,
     "unknown_field"},
    {"POST", "tenants/acme/disable", NULL, "{\"why\":\"x\"}", 400,
     "unknown_field"},
    {"PUT", "budgets/tenant/acme", NULL,
     "{\"limit_usd\":5,\"window\":\"daily\",\"rpm\":1}", 400, "unknown_field"},
    {"PUT", "ratelimits/tenant/acme", NULL, "{\"rpm\":1,\"limit_usd\":5}", 400,
     "unknown_field"},
    {"POST", "reservations/req-1/release", NULL, "{\"x\":1}", 400,
     "unknown_field"},
    /* an invalid body is refused before the path is looked at */
    {"GET", "nothing-here", NULL, "{", 400, "invalid_json"},
};

static pdp_test_api g_t;
static char         g_key[64];  /* {K} */
static char         g_key2[64]; /* {R} */

/* expand writes path with {K} and {R} replaced. */
static void
expand(const char *path, char *buf, size_t cap)
{
    size_t o = 0;

    for (const char *p = path; *p != '\0' && o + 1 < cap; p++) {
        const char *id = strncmp(p, "{K}", 3) == 0   ? g_key
                         : strncmp(p, "{R}", 3) == 0 ? g_key2
                                                     : NULL;
        if (id != NULL) {
            o += (size_t)snprintf(buf + o, cap - o, "%s", id);
            p += 2;
        } else {
            buf[o++] = *p;
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
}

static void
test_setup(void)
{
    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "POST", "tenants", NULL, "{\"id\":\"acme\"}"),
        201);
    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "POST", "keys", NULL, "{\"tenant\":\"acme\"}"),
        201);
    snprintf(g_key, sizeof(g_key), "%s", pdp_test_api_str(&g_t, "id"));
    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "POST", "keys", NULL, "{\"tenant\":\"acme\"}"),
        201);
    snprintf(g_key2, sizeof(g_key2), "%s", pdp_test_api_str(&g_t, "id"));
}

static void
test_every_route(void)
{
    char path[256];

    for (size_t i = 0; i < sizeof(g_routes) / sizeof(g_routes[0]); i++) {
        const api_case *r = &g_routes[i];
        unsigned        st;
        const char     *code;

        expand(r->path, path, sizeof(path));
        st   = pdp_test_api_call(&g_t, r->method, path, r->query, r->body);
        code = pdp_test_api_code(&g_t);
        if (st != r->status ||
            (r->code != NULL ? code == NULL || strcmp(code, r->code) != 0
                             : code != NULL)) {
            fprintf(stderr, "\n  %s %s?%s: %u %s, expected %u %s\n", r->method,
                    path, r->query ? r->query : "", st, g_t.out.data, r->status,
                    r->code ? r->code : "");
            CU_FAIL("a route answered otherwise");
        }
        if (st >= 400) {
            /* An error says what to do, in words. */
            const char *m = pdp_test_api_str(&g_t, "error.message");
            CU_ASSERT(m != NULL && strlen(m) > 10);
        }
    }
}

/* Answers are JSON unless the report asks otherwise. */
static void
test_content_types(void)
{
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "spend", "by=tenant&format=csv", NULL),
        200);
    CU_ASSERT_STRING_EQUAL(g_t.reply.ctype, "text/csv; charset=utf-8");
    CU_ASSERT_EQUAL(strncmp(g_t.out.data, "tenant,requests", 15), 0);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "spend", "by=tenant&format=table", NULL),
        200);
    CU_ASSERT_STRING_EQUAL(g_t.reply.ctype, "text/plain; charset=utf-8");
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "tenants", NULL, NULL), 200);
    CU_ASSERT_STRING_EQUAL(g_t.reply.ctype, "application/json");
    CU_ASSERT_PTR_NOT_NULL(g_t.doc);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "nothing", NULL, NULL), 404);
    CU_ASSERT_STRING_EQUAL(g_t.reply.ctype, "application/json");
}

/* A path outside /admin/v1/ is not the API's. */
static void
test_outside_prefix(void)
{
    tg_buf        out;
    pdp_api_reply r;

    tg_buf_init(&out, 1u << 20);
    r = pdp_api_handle(&g_t.x, "GET", "/admin/v2/tenants", NULL, NULL, 0, &out);
    CU_ASSERT_EQUAL(r.status, 404);
    tg_buf_reset(&out);
    r = pdp_api_handle(&g_t.x, "GET", "/tenants", NULL, NULL, 0, &out);
    CU_ASSERT_EQUAL(r.status, 404);
    tg_buf_fini(&out);
}

/* Every change made through the table is in the audit trail, by the
 * context's actor. */
static void
test_changes_audited(void)
{
    static const char *const actions[] = {
        "tenants.create", "tenants.update", "tenants.disable",
        "tenants.enable", "tenants.delete", "keys.create",
        "keys.rotate",    "keys.revoke",    "budgets.set",
        "budgets.delete", "ratelimits.set", "ratelimits.delete"};
    const cJSON *a;

    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "GET", "audit", "limit=1000", NULL), 200);
    a = cJSON_GetObjectItem(g_t.doc, "audit");
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        bool found = false;
        for (const cJSON *e = a != NULL ? a->child : NULL; e != NULL;
             e              = e->next) {
            const char *act =
                cJSON_GetStringValue(cJSON_GetObjectItem(e, "action"));
            const char *who =
                cJSON_GetStringValue(cJSON_GetObjectItem(e, "actor"));
            found = found || (act != NULL && strcmp(act, actions[i]) == 0 &&
                              who != NULL && strcmp(who, "test") == 0);
        }
        if (!found) {
            fprintf(stderr, "\n  no audit line for %s\n", actions[i]);
        }
        CU_ASSERT_TRUE(found);
    }
}

static const tg_unit_case cases[] = {
    {"setup", test_setup}, /* first: the others use its tenant and keys */
    {"every_route", test_every_route},
    {"content_types", test_content_types},
    {"outside_prefix", test_outside_prefix},
    {"changes_audited", test_changes_audited},
    {NULL, NULL},
};

int
main(void)
{
    int rc;

    pdp_test_api_open(&g_t, "api", 0);
    rc = tg_unit_run("pdp.admin.api", cases);
    pdp_test_api_close(&g_t);
    return rc;
}
