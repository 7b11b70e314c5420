/* test_responses.c - pdp.responses: stored Responses API responses in
 * the store: put, get (another tenant's id is not found), an id taken
 * once per tenant, delete, the per-tenant totals the quota reads, the
 * quota refusing what would pass it, retention pruning in batches, and
 * what survives a reopen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_responses.h"
#include "pdp_store.h"
#include "tg_unit.h"

static pdp_store *
open_store(const char *dir)
{
    pdp_store *st = NULL;
    char       err[512];

    if (pdp_store_open(&st, dir, 8, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "open: %s\n", err);
    }
    return st;
}

static const char *
new_dir(const char *tag)
{
    static char dir[600];

    snprintf(dir, sizeof(dir), "%s/state", tg_unit_tmpdir(tag));
    return dir;
}

static tg_err
put(pdp_store *st, const char *tenant, const char *id, int64_t at,
    const char *resp, const char *items, int64_t max)
{
    pdp_resp_rec r;

    memset(&r, 0, sizeof(r));
    snprintf(r.tenant, sizeof(r.tenant), "%s", tenant);
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.key_id, sizeof(r.key_id), "key-%s", tenant);
    r.created_ms   = at;
    r.response     = (char *)resp;
    r.response_len = strlen(resp);
    r.items        = (char *)items;
    r.items_len    = strlen(items);
    return pdp_store_resp_put(st, &r, max);
}

/* rec_bytes is what one record counts in its tenant's totals: its key
 * (kind, tenant, id) and its value. */
static int64_t
rec_bytes(const char *tenant, const char *id, const char *resp,
          const char *items)
{
    return (int64_t)(1 + 2 + strlen(tenant) + 2 + strlen(id)) + 1 + 8 + 2 +
           (int64_t)strlen("key-") + (int64_t)strlen(tenant) + 4 +
           (int64_t)strlen(resp) + 4 + (int64_t)strlen(items);
}

static void
test_put_get_del(void)
{
    const char  *dir = new_dir("resp");
    pdp_store   *st  = open_store(dir);
    pdp_resp_rec r;
    int64_t      b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(put(st, "acme", "resp_1", 1000, "{\"id\":\"resp_1\"}",
                        "[{\"role\":\"user\",\"content\":\"hi\"}]", 0),
                    TG_OK);
    CU_ASSERT_EQUAL(put(st, "acme", "resp_1", 2000, "{}", "[]", 0), TG_EEXIST);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "acme", "resp_1", &r), TG_OK);
    CU_ASSERT_STRING_EQUAL(r.response, "{\"id\":\"resp_1\"}");
    CU_ASSERT_STRING_EQUAL(r.items, "[{\"role\":\"user\",\"content\":\"hi\"}]");
    CU_ASSERT_STRING_EQUAL(r.key_id, "key-acme");
    CU_ASSERT_EQUAL(r.created_ms, 1000);
    pdp_resp_rec_fini(&r);
    /* Another tenant does not see it, and may use the same id. */
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "other", "resp_1", &r),
                    TG_ENOTFOUND);
    pdp_resp_rec_fini(&r);
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "other", "resp_1"), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(put(st, "other", "resp_1", 1000, "{\"o\":1}", "[]", 0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(b, rec_bytes("acme", "resp_1", "{\"id\":\"resp_1\"}",
                                 "[{\"role\":\"user\",\"content\":\"hi\"}]"));
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_1"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_1"), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "acme", "resp_1", &r), TG_ENOTFOUND);
    pdp_resp_rec_fini(&r);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "other", "resp_1", &r), TG_OK);
    CU_ASSERT_STRING_EQUAL(r.response, "{\"o\":1}");
    pdp_resp_rec_fini(&r);
    /* Bad names are refused, never stored. */
    CU_ASSERT_EQUAL(put(st, "", "resp_2", 1, "{}", "[]", 0), TG_EINVAL);
    CU_ASSERT_EQUAL(put(st, "acme", "", 1, "{}", "[]", 0), TG_EINVAL);
    pdp_store_close(st);

    /* Kept across a reopen. */
    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "other", "resp_1", &r), TG_OK);
    pdp_resp_rec_fini(&r);
    pdp_store_close(st);
}

static void
test_quota(void)
{
    pdp_store *st  = open_store(new_dir("resp-quota"));
    int64_t    one = rec_bytes("q", "resp_a", "{\"x\":1}", "[]");
    int64_t    b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(put(st, "q", "resp_a", 1, "{\"x\":1}", "[]", 2 * one),
                    TG_OK);
    CU_ASSERT_EQUAL(put(st, "q", "resp_b", 1, "{\"x\":1}", "[]", 2 * one),
                    TG_OK);
    CU_ASSERT_EQUAL(put(st, "q", "resp_c", 1, "{\"x\":1}", "[]", 2 * one),
                    TG_ETOOBIG);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "q", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(b, 2 * one);
    /* Another tenant has its own. */
    CU_ASSERT_EQUAL(put(st, "r", "resp_a", 1, "{\"x\":1}", "[]", 2 * one),
                    TG_OK);
    /* Deleting makes room again. */
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "q", "resp_a"), TG_OK);
    CU_ASSERT_EQUAL(put(st, "q", "resp_c", 1, "{\"x\":1}", "[]", 2 * one),
                    TG_OK);
    pdp_store_close(st);
}

static void
test_prune(void)
{
    pdp_store   *st = open_store(new_dir("resp-prune"));
    pdp_resp_rec r;
    uint64_t     removed = 0;
    char         id[32];
    int64_t      b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    /* 2,500 old ones (more than one batch), across two tenants, and
     * newer ones that stay. */
    for (int i = 0; i < 2500; i++) {
        snprintf(id, sizeof(id), "resp_old%d", i);
        CU_ASSERT_EQUAL_FATAL(
            put(st, i % 2 ? "t1" : "t2", id, 1000 + i, "{}", "[]", 0), TG_OK);
    }
    CU_ASSERT_EQUAL(put(st, "t1", "resp_new", 900000, "{}", "[]", 0), TG_OK);
    CU_ASSERT_EQUAL(put(st, "t2", "resp_new", 900000, "{}", "[]", 0), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_prune(st, 500000, &removed), TG_OK);
    CU_ASSERT_EQUAL(removed, 2500);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "t1", "resp_old1", &r),
                    TG_ENOTFOUND);
    pdp_resp_rec_fini(&r);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "t2", "resp_new", &r), TG_OK);
    pdp_resp_rec_fini(&r);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "t1", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(b, rec_bytes("t1", "resp_new", "{}", "[]"));
    /* Nothing left to prune is no error. */
    CU_ASSERT_EQUAL(pdp_store_resp_prune(st, 500000, &removed), TG_OK);
    CU_ASSERT_EQUAL(removed, 0);
    pdp_store_close(st);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"put_get_del", test_put_get_del},
        {"quota", test_quota},
        {"prune", test_prune},
        {NULL, NULL},
    };
    return tg_unit_run("pdp.responses", cases);
}
