/* test_responses.c - pdp.responses: stored Responses API responses in
 * the store: put, get (another tenant's id is not found), an id taken
 * once per tenant, delete, the per-tenant totals the quota reads, the
 * quota refusing what would pass it, retention pruning in batches, and
 * what survives a reopen; the item index (a response found by one of its
 * output or input item ids): written on put, gone with its response
 * (deleted or pruned) unless a newer response took the id, counted in the
 * quota, and carried to a standby by the transaction log. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_responses.h"
#include "pdp_store.h"
#include "pdp_txlog.h"
#include "tg_buf.h"
#include "tg_time.h"
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

/* idx_bytes is what one item's index record counts in its tenant's
 * totals: its key (kind, tenant, item id) and its value (version and the
 * response id). */
static int64_t
idx_bytes(const char *tenant, const char *item, const char *resp_id)
{
    return (int64_t)(1 + 2 + strlen(tenant) + 2 + strlen(item)) +
           (int64_t)(1 + 2 + strlen(resp_id));
}

/* owner_of is the id of the tenant's response that holds item, or "" when
 * none (pdp_store_resp_get_item's TG_ENOTFOUND; "?" for another error). */
static const char *
owner_of(pdp_store *st, const char *tenant, const char *item)
{
    static char  id[PDP_RESP_ID_MAX];
    pdp_resp_rec r;
    tg_err       rv = pdp_store_resp_get_item(st, tenant, item, &r);

    snprintf(id, sizeof(id), "%s",
             rv == TG_OK          ? r.id
             : rv == TG_ENOTFOUND ? ""
                                  : "?");
    pdp_resp_rec_fini(&r);
    return id;
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

/* A Response with three output items (one without an id), and input
 * items with an id, without one, and a number for an id. */
#define RESP1                                                                  \
    "{\"id\":\"resp_1\",\"output\":[{\"id\":\"msg_out1\",\"type\":"            \
    "\"message\"},{\"id\":\"fc_1\",\"type\":\"function_call\"},{\"type\":"     \
    "\"reasoning\"}]}"
#define ITEMS1                                                                 \
    "[{\"id\":\"msg_in1\",\"role\":\"user\"},{\"role\":\"user\"},"             \
    "{\"id\":42}]"

/* A put whose write would begin after its deadline (its data plane
 * stopped waiting and told its client "not stored") writes nothing. */
static void
test_deadline(void)
{
    pdp_store   *st = open_store(new_dir("resp-deadline"));
    pdp_resp_rec r, got;
    int64_t      b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(&r, 0, sizeof(r));
    strcpy(r.tenant, "d");
    strcpy(r.id, "resp_late");
    strcpy(r.key_id, "key-d");
    r.created_ms   = tg_now_ms();
    r.response     = RESP1;
    r.response_len = strlen(RESP1);
    r.items        = ITEMS1;
    r.items_len    = strlen(ITEMS1);
    r.deadline_ms  = tg_now_ms() - 1;
    CU_ASSERT_EQUAL(pdp_store_resp_put(st, &r, 0), TG_ETIMEDOUT);
    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "d", "resp_late", &got),
                    TG_ENOTFOUND);
    pdp_resp_rec_fini(&got);
    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(pdp_store_resp_get_item(st, "d", "msg_in1", &got),
                    TG_ENOTFOUND);
    pdp_resp_rec_fini(&got);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "d", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, 0);
    CU_ASSERT_EQUAL(n, 0);
    /* In time: written. */
    r.deadline_ms = tg_now_ms() + 60000;
    CU_ASSERT_EQUAL(pdp_store_resp_put(st, &r, 0), TG_OK);
    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "d", "resp_late", &got), TG_OK);
    pdp_resp_rec_fini(&got);
    pdp_store_close(st);
}

static void
test_item_index(void)
{
    pdp_store   *st = open_store(new_dir("resp-items"));
    pdp_resp_rec r;
    char         long_id[PDP_RESP_ID_MAX + 1];
    char         resp[512];
    int64_t      b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(put(st, "acme", "resp_1", 1000, RESP1, ITEMS1, 0), TG_OK);
    /* Found by an output item's id and by an input item's. */
    CU_ASSERT_EQUAL_FATAL(pdp_store_resp_get_item(st, "acme", "msg_out1", &r),
                          TG_OK);
    CU_ASSERT_STRING_EQUAL(r.id, "resp_1");
    CU_ASSERT_STRING_EQUAL(r.tenant, "acme");
    CU_ASSERT_STRING_EQUAL(r.response, RESP1);
    CU_ASSERT_STRING_EQUAL(r.items, ITEMS1);
    CU_ASSERT_EQUAL(r.created_ms, 1000);
    pdp_resp_rec_fini(&r);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "fc_1"), "resp_1");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_in1"), "resp_1");
    /* Not an item: the response's own id, an unknown id, a number. */
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "resp_1"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_nope"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "42"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", ""), "");
    /* Another tenant's items are none. */
    CU_ASSERT_STRING_EQUAL(owner_of(st, "other", "msg_out1"), "");
    /* The totals hold the record and its three index records. */
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(b, rec_bytes("acme", "resp_1", RESP1, ITEMS1) +
                           idx_bytes("acme", "msg_out1", "resp_1") +
                           idx_bytes("acme", "fc_1", "resp_1") +
                           idx_bytes("acme", "msg_in1", "resp_1"));

    /* An id in the output and the input is one index record. */
    CU_ASSERT_EQUAL(put(st, "dup", "resp_d", 1,
                        "{\"output\":[{\"id\":\"msg_d\"}]}",
                        "[{\"id\":\"msg_d\"},{\"id\":\"msg_d\"}]", 0),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "dup", "msg_d"), "resp_d");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "dup", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, rec_bytes("dup", "resp_d",
                                 "{\"output\":[{\"id\":\"msg_d\"}]}",
                                 "[{\"id\":\"msg_d\"},{\"id\":\"msg_d\"}]") +
                           idx_bytes("dup", "msg_d", "resp_d"));

    /* JSON that does not parse is stored, with no index records. */
    CU_ASSERT_EQUAL(put(st, "bad", "resp_b", 1, "{\"output\":[{\"id\":\"x\"",
                        "[{\"id\":\"y\"}", 0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_get(st, "bad", "resp_b", &r), TG_OK);
    pdp_resp_rec_fini(&r);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "bad", "x"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "bad", "y"), "");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "bad", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, rec_bytes("bad", "resp_b", "{\"output\":[{\"id\":\"x\"",
                                 "[{\"id\":\"y\"}"));

    /* An item id as long as PDP_RESP_ID_MAX is skipped; one shorter is
     * indexed. */
    memset(long_id, 'm', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    long_id[PDP_RESP_ID_MAX - 1] = '\0'; /* 95 bytes */
    snprintf(resp, sizeof(resp),
             "{\"output\":[{\"id\":\"%s\"},{\"id\":\"%sX\"}]}", long_id,
             long_id);
    CU_ASSERT_EQUAL(put(st, "long", "resp_l", 1, resp, "[]", 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "long", long_id), "resp_l");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "long", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, rec_bytes("long", "resp_l", resp, "[]") +
                           idx_bytes("long", long_id, "resp_l"));
    pdp_store_close(st);
}

static void
test_item_index_goes_with_the_response(void)
{
    pdp_store *st = open_store(new_dir("resp-items-del"));
    int64_t    b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(put(st, "acme", "resp_1", 1000, RESP1, ITEMS1, 0), TG_OK);
    CU_ASSERT_EQUAL(put(st, "acme", "resp_2", 1000,
                        "{\"output\":[{\"id\":\"msg_2\"}]}", "[]", 0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_1"), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_out1"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_in1"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_2"), "resp_2");
    /* Nothing of resp_1 is left in the totals... */
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(b, rec_bytes("acme", "resp_2",
                                 "{\"output\":[{\"id\":\"msg_2\"}]}", "[]") +
                           idx_bytes("acme", "msg_2", "resp_2"));
    /* ...nor in the index: a new response under the same id does not
     * inherit its items. */
    CU_ASSERT_EQUAL(put(st, "acme", "resp_1", 2000, "{}", "[]", 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_out1"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "fc_1"), "");
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_1"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_2"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, 0);
    CU_ASSERT_EQUAL(n, 0);
    pdp_store_close(st);
}

static void
test_item_newer_owner_wins(void)
{
    pdp_store  *st   = open_store(new_dir("resp-items-owner"));
    const char *in_x = "[{\"id\":\"msg_x\"}]";
    const char *out  = "{\"output\":[{\"id\":\"msg_x\"},{\"id\":\"msg_y\"}]}";
    int64_t     b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    /* A client reuses msg_x: the latest put holds it. */
    CU_ASSERT_EQUAL(put(st, "acme", "resp_a", 1, "{}", in_x, 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_x"), "resp_a");
    CU_ASSERT_EQUAL(put(st, "acme", "resp_b", 2, out, "[]", 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_x"), "resp_b");
    /* Its index record replaced resp_a's: counted once. */
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, rec_bytes("acme", "resp_a", "{}", in_x) +
                           rec_bytes("acme", "resp_b", out, "[]") +
                           idx_bytes("acme", "msg_x", "resp_b") +
                           idx_bytes("acme", "msg_y", "resp_b"));
    /* Deleting the older keeps the newer's index record. */
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_a"), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_x"), "resp_b");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, rec_bytes("acme", "resp_b", out, "[]") +
                           idx_bytes("acme", "msg_x", "resp_b") +
                           idx_bytes("acme", "msg_y", "resp_b"));
    /* Deleting the newer takes the id, even while an older one (put
     * again) holds it too: the index names one response per id. */
    CU_ASSERT_EQUAL(put(st, "acme", "resp_a", 1, "{}", in_x, 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_x"), "resp_a");
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_a"), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_x"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "acme", "msg_y"), "resp_b");
    CU_ASSERT_EQUAL(pdp_store_resp_del(st, "acme", "resp_b"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "acme", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, 0);
    pdp_store_close(st);
}

static void
test_item_quota(void)
{
    pdp_store  *st   = open_store(new_dir("resp-items-quota"));
    const char *out  = "{\"output\":[{\"id\":\"msg_q\"}]}";
    const char *in_q = "[{\"id\":\"msg_q\"}]";
    int64_t     one =
        rec_bytes("q", "resp_a", out, "[]") + idx_bytes("q", "msg_q", "resp_a");
    int64_t b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    /* The index record's bytes are what passes the cap. */
    CU_ASSERT_EQUAL(put(st, "q", "resp_a", 1, out, "[]", one - 1), TG_ETOOBIG);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "q", "msg_q"), "");
    CU_ASSERT_EQUAL(put(st, "q", "resp_a", 1, out, "[]", one), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "q", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, one);
    /* Taking msg_q over costs the record and the one byte its longer id
     * adds to the index record, not a second index record. */
    b = one + rec_bytes("q", "resp_bb", out, "[]");
    CU_ASSERT_EQUAL(put(st, "q", "resp_bb", 2, out, "[]", b), TG_ETOOBIG);
    CU_ASSERT_EQUAL(put(st, "q", "resp_bb", 2, out, "[]", b + 1), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "q", "msg_q"), "resp_bb");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "q", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, one + rec_bytes("q", "resp_bb", out, "[]") + 1);
    /* An id the output and the input both hold is counted once, by the
     * cap too. */
    one =
        rec_bytes("d", "resp_d", out, in_q) + idx_bytes("d", "msg_q", "resp_d");
    CU_ASSERT_EQUAL(put(st, "d", "resp_d", 1, out, in_q, one), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "d", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(b, one);
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

static void
test_prune_takes_the_index(void)
{
    pdp_store  *st = open_store(new_dir("resp-items-prune"));
    const char *o_old =
        "{\"output\":[{\"id\":\"msg_old\"},{\"id\":\"msg_s\"}]}";
    const char *o_new   = "{\"output\":[{\"id\":\"msg_new\"}]}";
    const char *i_new   = "[{\"id\":\"msg_s\"}]";
    uint64_t    removed = 0;
    int64_t     b, n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(put(st, "t", "resp_old", 1000, o_old, "[]", 0), TG_OK);
    CU_ASSERT_EQUAL(put(st, "t", "resp_new", 900000, o_new, i_new, 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "t", "msg_s"), "resp_new");
    CU_ASSERT_EQUAL(pdp_store_resp_prune(st, 500000, &removed), TG_OK);
    CU_ASSERT_EQUAL(removed, 1);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "t", "msg_old"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "t", "msg_new"), "resp_new");
    CU_ASSERT_STRING_EQUAL(owner_of(st, "t", "msg_s"), "resp_new");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(st, "t", &b, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(b, rec_bytes("t", "resp_new", o_new, i_new) +
                           idx_bytes("t", "msg_new", "resp_new") +
                           idx_bytes("t", "msg_s", "resp_new"));
    /* A new response under the pruned id does not inherit its items. */
    CU_ASSERT_EQUAL(put(st, "t", "resp_old", 950000, "{}", "[]", 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(owner_of(st, "t", "msg_old"), "");
    pdp_store_close(st);
}

/* The index records travel in the transaction log like the responses:
 * a standby that applied it finds the same items. */
static void
test_item_index_reaches_a_standby(void)
{
    pdp_store *a = open_store(new_dir("resp-items-active"));
    pdp_store *s = open_store(new_dir("resp-items-standby"));
    tg_buf     log;
    uint64_t   last = 0, head = 0, removed = 0;
    int64_t    ba, na, bs, ns;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_set_role(a, PDP_HA_ACTIVE), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_set_role(s, PDP_HA_STANDBY), TG_OK);
    CU_ASSERT_EQUAL(put(a, "acme", "resp_1", 1000, RESP1, ITEMS1, 0), TG_OK);
    CU_ASSERT_EQUAL(put(a, "acme", "resp_2", 900000,
                        "{\"output\":[{\"id\":\"msg_2\"}]}",
                        "[{\"id\":\"msg_in1\"}]", 0),
                    TG_OK);
    CU_ASSERT_EQUAL(put(a, "acme", "resp_3", 900000,
                        "{\"output\":[{\"id\":\"msg_3\"}]}", "[]", 0),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_del(a, "acme", "resp_3"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_prune(a, 500000, &removed), TG_OK);
    CU_ASSERT_EQUAL(removed, 1);
    tg_buf_init(&log, 0);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_changes(a, 0, SIZE_MAX, &log, &last, &head),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_apply(s, log.data, log.len, NULL), TG_OK);
    tg_buf_fini(&log);
    CU_ASSERT_STRING_EQUAL(owner_of(s, "acme", "msg_2"), "resp_2");
    CU_ASSERT_STRING_EQUAL(owner_of(s, "acme", "msg_in1"), "resp_2");
    CU_ASSERT_STRING_EQUAL(owner_of(s, "acme", "msg_out1"), "");
    CU_ASSERT_STRING_EQUAL(owner_of(s, "acme", "msg_3"), "");
    CU_ASSERT_EQUAL(pdp_store_resp_usage(a, "acme", &ba, &na), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_resp_usage(s, "acme", &bs, &ns), TG_OK);
    CU_ASSERT_EQUAL(bs, ba);
    CU_ASSERT_EQUAL(ns, na);
    pdp_store_close(s);
    pdp_store_close(a);
}

/* The largest stored response (pdp.responses.max_response_bytes at its
 * most) is one transaction a standby takes in one pull (the active sends
 * at least one whole one past its 4 MiB pull size; a standby reads
 * replies up to 8 MiB). */
static void
test_largest_response_reaches_a_standby(void)
{
    pdp_store   *a   = open_store(new_dir("resp-big-active"));
    pdp_store   *s   = open_store(new_dir("resp-big-standby"));
    size_t       n   = (size_t)TG_CONFIG_RESP_MAX_LIMIT - 64;
    char        *big = malloc(n + 1);
    tg_buf       log;
    uint64_t     last = 0, head = 0;
    pdp_resp_rec got;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_set_role(a, PDP_HA_ACTIVE), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_set_role(s, PDP_HA_STANDBY), TG_OK);
    memset(big, ' ', n);
    memcpy(big, "{\"output\":[{\"id\":\"msg_big\"}]}", 29);
    big[n] = '\0';
    CU_ASSERT_EQUAL(put(a, "acme", "resp_big", 1000, big, "[]", 0), TG_OK);
    tg_buf_init(&log, 0);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_changes(a, 0, 4u << 20, &log, &last, &head),
                          TG_OK);
    CU_ASSERT_EQUAL(last, head);
    CU_ASSERT(log.len < (8u << 20) - 4096);
    CU_ASSERT_EQUAL_FATAL(pdp_txlog_apply(s, log.data, log.len, NULL), TG_OK);
    tg_buf_fini(&log);
    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(pdp_store_resp_get(s, "acme", "resp_big", &got), TG_OK);
    CU_ASSERT_EQUAL(got.response_len, n);
    pdp_resp_rec_fini(&got);
    CU_ASSERT_STRING_EQUAL(owner_of(s, "acme", "msg_big"), "resp_big");
    free(big);
    pdp_store_close(s);
    pdp_store_close(a);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"put_get_del", test_put_get_del},
        {"quota", test_quota},
        {"deadline", test_deadline},
        {"prune", test_prune},
        {"item_index", test_item_index},
        {"item_index_goes_with_the_response",
         test_item_index_goes_with_the_response},
        {"item_newer_owner_wins", test_item_newer_owner_wins},
        {"item_quota", test_item_quota},
        {"prune_takes_the_index", test_prune_takes_the_index},
        {"item_index_reaches_a_standby", test_item_index_reaches_a_standby},
        {"largest_response_reaches_a_standby",
         test_largest_response_reaches_a_standby},
        {NULL, NULL},
    };
    return tg_unit_run("pdp.responses", cases);
}
