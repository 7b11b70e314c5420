/* test_lists.c - pdp.admin.lists: guardrail term lists through the admin
 * API as an operator uses them: set (trimmed, duplicates dropped and
 * counted, 201 the first time, "changed": false when nothing changed),
 * read, list, delete and the history, each change in the audit trail
 * with its version and count and never a term; bad input refused with
 * which term was wrong and nothing written. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_test_api.h"
#include "tg_unit.h"

#define NOW 1800000000000LL /* 2027-01-15T08:00:00Z */

static pdp_test_api g_t;

/* audit_size is how many lines the audit trail holds. */
static int
audit_size(void)
{
    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&g_t, "GET", "audit", "limit=100000", NULL), 200);
    return cJSON_GetArraySize(cJSON_GetObjectItem(g_t.doc, "audit"));
}

/* last_audit checks the newest audit line is action on target by "test"
 * and returns its detail as text (static), or NULL. */
static const char *
last_audit(const char *action, const char *target)
{
    static char  text[2048];
    const cJSON *e;
    char        *d;

    if (pdp_test_api_call(&g_t, "GET", "audit", "limit=1", NULL) != 200) {
        return NULL;
    }
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(g_t.doc, "audit"), 0);
    if (e == NULL ||
        strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "action")),
               action) != 0 ||
        strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "target")),
               target) != 0 ||
        strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "actor")), "test") !=
            0) {
        return NULL;
    }
    d = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "detail"));
    snprintf(text, sizeof(text), "%s", d != NULL ? d : "");
    cJSON_free(d);
    return text;
}

static double
num(const char *name)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(g_t.doc, name));
}

static void
test_set_show_list_delete(void)
{
    const cJSON *terms;
    const char  *detail;
    int          lines;

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "lists", NULL, NULL), 200);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(g_t.doc, "lists")),
                    0);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "lists/rivals", NULL,
                                      "{\"terms\":[\" Acme Corp \",\"globex\","
                                      "\"Acme Corp\",\"Üñí\"]}"),
                    201);
    CU_ASSERT_EQUAL(num("version"), 1);
    CU_ASSERT_EQUAL(num("count"), 3);
    CU_ASSERT_EQUAL(num("duplicates_dropped"), 1);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "changed")));
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "new")));
    detail = last_audit("lists.set", "list:rivals");
    CU_ASSERT_PTR_NOT_NULL_FATAL(detail);
    CU_ASSERT_PTR_NOT_NULL(strstr(detail, "\"version\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(detail, "\"count\":3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(detail, "\"duplicates_dropped\":1"));
    CU_ASSERT_PTR_NULL(strstr(detail, "Acme"));
    CU_ASSERT_PTR_NULL(strstr(detail, "globex"));

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "lists/rivals", NULL, NULL),
                    200);
    terms = cJSON_GetObjectItem(g_t.doc, "terms");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(terms), 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetArrayItem(terms, 0)),
                           "Acme Corp");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetArrayItem(terms, 2)),
                           "Üñí");
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "by"), "test");
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "updated"),
                           "2027-01-15T08:00:00Z");

    /* The same terms: nothing changes, no audit line. */
    lines = audit_size();
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "lists/rivals", NULL,
                                      "{\"terms\":[\"Acme Corp\",\"globex\","
                                      "\"Üñí\"]}"),
                    200);
    CU_ASSERT_FALSE(cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "changed")));
    CU_ASSERT_EQUAL(num("version"), 1);
    CU_ASSERT_EQUAL(audit_size(), lines);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "lists/rivals", NULL,
                                      "{\"terms\":[\"initech\"]}"),
                    200);
    CU_ASSERT_EQUAL(num("version"), 2);
    CU_ASSERT_FALSE(cJSON_IsTrue(cJSON_GetObjectItem(g_t.doc, "new")));
    CU_ASSERT_EQUAL(audit_size(), lines + 1);

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "lists", NULL, NULL), 200);
    CU_ASSERT_EQUAL_FATAL(
        cJSON_GetArraySize(cJSON_GetObjectItem(g_t.doc, "lists")), 1);
    {
        const cJSON *l =
            cJSON_GetArrayItem(cJSON_GetObjectItem(g_t.doc, "lists"), 0);
        CU_ASSERT_STRING_EQUAL(
            cJSON_GetStringValue(cJSON_GetObjectItem(l, "name")), "rivals");
        CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(l, "version")),
                        2);
        CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(l, "count")),
                        1);
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(l, "terms"));
    }

    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "lists/rivals", NULL, NULL), 200);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_str(&g_t, "deleted"), "list:rivals");
    CU_ASSERT_EQUAL(num("version"), 3);
    CU_ASSERT_EQUAL(num("count"), 1);
    detail = last_audit("lists.delete", "list:rivals");
    CU_ASSERT_PTR_NOT_NULL_FATAL(detail);
    CU_ASSERT_PTR_NOT_NULL(strstr(detail, "\"version\":3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(detail, "\"count\":1"));
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "lists/rivals", NULL, NULL),
                    404);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), "list_not_found");
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "DELETE", "lists/rivals", NULL, NULL), 404);
}

static void
test_history(void)
{
    const cJSON *h;
    const cJSON *e;

    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "lists/hist", NULL,
                                      "{\"terms\":[\"a\",\"b\"]}"),
                    201);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "DELETE", "lists/hist", NULL, NULL),
                    200);
    /* Set again: the versions go on from the delete. */
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", "lists/hist", NULL,
                                      "{\"terms\":[\"a\",\"b\"]}"),
                    201);
    CU_ASSERT_EQUAL(num("version"), 3);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "lists/hist/history", NULL, NULL), 200);
    h = cJSON_GetObjectItem(g_t.doc, "history");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(h), 3);
    e = cJSON_GetArrayItem(h, 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(e, "op")),
                           "delete");
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "version")), 2);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "count")), 2);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(e, "by")),
                           "test");
    /* The same terms, the same hash: SHA-256("a\nb\n"). */
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(
                               cJSON_GetArrayItem(h, 0), "sha256")),
                           cJSON_GetStringValue(cJSON_GetObjectItem(
                               cJSON_GetArrayItem(h, 2), "sha256")));
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "lists/hist/history", "limit=1", NULL),
        200);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(g_t.doc, "history")),
                    1);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "lists/hist/history", "limit=0", NULL),
        400);
    CU_ASSERT_EQUAL(
        pdp_test_api_call(&g_t, "GET", "lists/never/history", NULL, NULL), 404);
}

/* refused sends PUT lists/name with body and checks the answer is 400
 * code, saying want. */
static void
refused(const char *name, const char *body, const char *code, const char *want)
{
    char path[128];

    snprintf(path, sizeof(path), "lists/%s", name);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "PUT", path, NULL, body), 400);
    CU_ASSERT_STRING_EQUAL(pdp_test_api_code(&g_t), code);
    if (strstr(pdp_test_api_str(&g_t, "error.message"), want) == NULL) {
        fprintf(stderr, "\n  %s: %s lacks \"%s\"\n", code,
                pdp_test_api_str(&g_t, "error.message"), want);
        CU_FAIL("the message does not say what was wrong");
    }
}

static void
test_bad_input_writes_nothing(void)
{
    int    lines = audit_size();
    size_t cap   = 60000 * 9 + 64;
    char  *big   = malloc(cap);
    size_t used  = 0;

    refused("Bad", "{\"terms\":[\"x\"]}", "invalid_name", "a-z 0-9 _ -");
    refused("ok", "{}", "missing_field", "\"terms\"");
    refused("ok", "{\"terms\":\"x\"}", "invalid_field", "array of strings");
    refused("ok", "{\"terms\":[\"x\",1]}", "invalid_term", "terms[1]");
    refused("ok", "{\"terms\":[\"x\",\"y\",\"a\\u0007b\"]}", "invalid_term",
            "terms[2]: the term holds a control character (U+0007)");
    refused("ok", "{\"terms\":[\"   \"]}", "invalid_term", "empty");
    refused("ok", "{\"terms\":[\"#tag\"]}", "invalid_term", "comment");
    refused("ok", "{\"terms\":[\"x\"],\"mode\":1}", "unknown_field", "mode");
    /* 60,000 distinct terms: over the limit, said as such. */
    used += (size_t)snprintf(big, cap, "{\"terms\":[");
    for (int i = 0; i < 60000; i++) {
        used += (size_t)snprintf(big + used, cap - used, "%s\"t%05d\"",
                                 i ? "," : "", i);
    }
    snprintf(big + used, cap - used, "]}");
    refused("ok", big, "list_too_large", "at most 50000");
    free(big);
    CU_ASSERT_EQUAL(pdp_test_api_call(&g_t, "GET", "lists/ok", NULL, NULL),
                    404);
    CU_ASSERT_EQUAL(audit_size(), lines);
}

static const tg_unit_case cases[] = {
    {"set_show_list_delete", test_set_show_list_delete},
    {"history", test_history},
    {"bad_input_writes_nothing", test_bad_input_writes_nothing},
    {NULL, NULL},
};

int
main(void)
{
    int rc;

    pdp_test_api_open(&g_t, "lists", NOW);
    rc = tg_unit_run("pdp.admin.lists", cases);
    pdp_test_api_close(&g_t);
    return rc;
}
