/* test_server_resp.c - pdp.server_resp: stored Responses API responses
 * through a running PDP over ipc, the way the data plane asks for them:
 * put, get, delete, tenant scoping, the per-tenant quota and retention,
 * and a get by item id (the response holding an item_reference's item). */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_server.h"
#include "pdp_server_int.h"
#include "pdp_store.h"
#include "pdp_test_util.h"
#include "pdp_wire.h"
#include "tg_pricing.h"
#include "tg_hash.h"
#include "tg_time.h"
#include "tg_unit.h"

static char        g_dir[512];
static tg_config  *g_cfg;
static pdp_store  *g_st;
static tg_pricing *g_pr;
static pdp_server *g_srv;
static nng_socket  g_cli;
static pdp_req     g_req;
static pdp_rep     g_rep;

/* call_ex sends op as the key whose secret is "sk-<key>" (id; for a put
 * the response and items, NULL: a default; for a get by_item) and reads
 * the reply into g_rep (release it after). */
static pdp_wire_resp_status
call_ex(pdp_req_kind op, const char *key, const char *id, const char *body,
        const char *items, bool by_item, int64_t created_ms)
{
    char secret[64];

    tg_buf b;
    char  *buf = NULL;
    size_t sz  = 0;
    char   err[256];

    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = op;
    snprintf(g_req.request_id, sizeof(g_req.request_id), "t-%s", id);
    snprintf(secret, sizeof(secret), "sk-%s", key);
    tg_sha256(secret, strlen(secret), g_req.u.resp.key_hash);
    snprintf(g_req.u.resp.id, sizeof(g_req.u.resp.id), "%s", id);
    g_req.u.resp.created_ms   = created_ms;
    g_req.u.resp.response     = (char *)body;
    g_req.u.resp.response_len = body != NULL ? strlen(body) : 0;
    g_req.u.resp.items     = body != NULL ? "[{\"type\":\"message\"}]" : NULL;
    g_req.u.resp.items_len = body != NULL ? 20 : 0;
    if (items != NULL) {
        g_req.u.resp.items     = (char *)items;
        g_req.u.resp.items_len = strlen(items);
    }
    g_req.u.resp.by_item = by_item;
    tg_buf_init(&b, 0);
    memset(&g_rep, 0, sizeof(g_rep));
    if (pdp_wire_encode_request(&g_req, &b) != TG_OK ||
        nng_send(g_cli, b.data, b.len, 0) != 0 ||
        nng_recv(g_cli, &buf, &sz, NNG_FLAG_ALLOC) != 0) {
        tg_buf_fini(&b);
        return 0;
    }
    tg_buf_fini(&b);
    if (pdp_wire_decode_reply(buf, sz, 0, &g_rep, err, sizeof(err)) != TG_OK ||
        g_rep.kind != PDP_REP_RESP) {
        nng_free(buf, sz);
        return 0;
    }
    nng_free(buf, sz);
    return g_rep.u.resp.status;
}

static pdp_wire_resp_status
call(pdp_req_kind op, const char *key, const char *id, const char *body,
     int64_t created_ms)
{
    return call_ex(op, key, id, body, NULL, false, created_ms);
}

/* by_item gets the response holding item as key would. */
static pdp_wire_resp_status
by_item(const char *key, const char *item)
{
    return call_ex(PDP_REQ_RESP_GET, key, item, NULL, NULL, true, 0);
}

static void
test_put_get_delete(void)
{
    const char *body = "{\"id\":\"resp_1\",\"object\":\"response\"}";

    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "acme", "resp_1", body, 0),
                    PDP_RESP_OK);
    pdp_wire_reply_release(&g_rep);
    CU_ASSERT_EQUAL_FATAL(call(PDP_REQ_RESP_GET, "acme", "resp_1", NULL, 0),
                          PDP_RESP_OK);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.id, "resp_1");
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.response, body);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.items, "[{\"type\":\"message\"}]");
    CU_ASSERT(g_rep.u.resp.resp.created_ms > 0);
    pdp_wire_reply_release(&g_rep);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_DEL, "acme", "resp_1", NULL, 0),
                    PDP_RESP_OK);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "acme", "resp_1", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_DEL, "acme", "resp_1", NULL, 0),
                    PDP_RESP_NOT_FOUND);
}

static void
test_another_tenant_sees_nothing(void)
{
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "acme", "resp_2", "{}", 0),
                    PDP_RESP_OK);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "other", "resp_2", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    CU_ASSERT_PTR_NULL(g_rep.u.resp.resp.response);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_DEL, "other", "resp_2", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "acme", "resp_2", NULL, 0),
                    PDP_RESP_OK);
    pdp_wire_reply_release(&g_rep);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "acme", "resp_unknown", NULL, 0),
                    PDP_RESP_NOT_FOUND);
}

static void
test_over_the_quota_is_not_stored(void)
{
    char big[2048];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1]                 = '\0';
    g_cfg->pdp.resp_max_bytes_per_tenant = 1024;
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "quota", "resp_big", big, 0),
                    PDP_RESP_OVER_QUOTA);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "quota", "resp_big", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "quota", "resp_small", "{}", 0),
                    PDP_RESP_OK);
    g_cfg->pdp.resp_max_bytes_per_tenant = 0; /* no cap */
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "quota", "resp_big", big, 0),
                    PDP_RESP_OK);
}

static void
test_retention_prunes_the_old(void)
{
    int64_t now = tg_now_ms();

    CU_ASSERT_EQUAL(
        call(PDP_REQ_RESP_PUT, "ret", "resp_old", "{}", now - 10000),
        PDP_RESP_OK);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "ret", "resp_new", "{}", now),
                    PDP_RESP_OK);
    g_cfg->pdp.resp_retention_s = 5;
    pdp_server_resp_prune(g_srv);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "ret", "resp_old", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "ret", "resp_new", NULL, 0),
                    PDP_RESP_OK);
    pdp_wire_reply_release(&g_rep);
    g_cfg->pdp.resp_retention_s = 0;
}

static void
test_a_bad_key_gets_nothing(void)
{
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "acme", "resp_k", "{}", 0),
                    PDP_RESP_OK);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "nobody", "resp_k", NULL, 0),
                    PDP_RESP_BAD_KEY);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "revoked", "resp_k", NULL, 0),
                    PDP_RESP_BAD_KEY);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_DEL, "revoked", "resp_k", NULL, 0),
                    PDP_RESP_BAD_KEY);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "nobody", "resp_n", "{}", 0),
                    PDP_RESP_BAD_KEY);
    /* A second key of the same tenant sees the tenant's responses. */
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "acme2", "resp_k", NULL, 0),
                    PDP_RESP_OK);
    pdp_wire_reply_release(&g_rep);
}

static void
test_get_by_item(void)
{
    const char *body  = "{\"id\":\"resp_i1\",\"output\":[{\"id\":"
                        "\"msg_o1\",\"type\":\"message\"}]}";
    const char *items = "[{\"id\":\"msg_u1\",\"type\":\"message\"}]";

    CU_ASSERT_EQUAL(
        call_ex(PDP_REQ_RESP_PUT, "acme", "resp_i1", body, items, false, 0),
        PDP_RESP_OK);
    /* The reply names the response that holds the item, not the item. */
    CU_ASSERT_EQUAL_FATAL(by_item("acme", "msg_o1"), PDP_RESP_OK);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.id, "resp_i1");
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.response, body);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.items, items);
    CU_ASSERT(g_rep.u.resp.resp.created_ms > 0);
    pdp_wire_reply_release(&g_rep);
    CU_ASSERT_EQUAL_FATAL(by_item("acme2", "msg_u1"), PDP_RESP_OK);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.id, "resp_i1");
    pdp_wire_reply_release(&g_rep);
    /* An item id is not a response id, nor the other way round. */
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "acme", "msg_o1", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL(by_item("acme", "resp_i1"), PDP_RESP_NOT_FOUND);
    /* Another tenant's item is not found. */
    CU_ASSERT_EQUAL(by_item("other", "msg_o1"), PDP_RESP_NOT_FOUND);
    CU_ASSERT_PTR_NULL(g_rep.u.resp.resp.response);
    CU_ASSERT_EQUAL(by_item("revoked", "msg_o1"), PDP_RESP_BAD_KEY);
    /* Gone with its response. */
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_DEL, "acme", "resp_i1", NULL, 0),
                    PDP_RESP_OK);
    CU_ASSERT_EQUAL(by_item("acme", "msg_o1"), PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL(by_item("acme", "msg_u1"), PDP_RESP_NOT_FOUND);
}

static void
test_get_by_item_keeps_the_retention(void)
{
    int64_t now = tg_now_ms();

    CU_ASSERT_EQUAL(call_ex(PDP_REQ_RESP_PUT, "ret", "resp_iold", "{}",
                            "[{\"id\":\"msg_iold\"}]", false, now - 10000),
                    PDP_RESP_OK);
    CU_ASSERT_EQUAL(call_ex(PDP_REQ_RESP_PUT, "ret", "resp_inew", "{}",
                            "[{\"id\":\"msg_inew\"}]", false, now),
                    PDP_RESP_OK);
    /* Past the retention before pruning ran: not found at once. */
    g_cfg->pdp.resp_retention_s = 5;
    CU_ASSERT_EQUAL(by_item("ret", "msg_iold"), PDP_RESP_NOT_FOUND);
    CU_ASSERT_EQUAL_FATAL(by_item("ret", "msg_inew"), PDP_RESP_OK);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.id, "resp_inew");
    pdp_wire_reply_release(&g_rep);
    g_cfg->pdp.resp_retention_s = 0;
}

/* A stored response may be larger than pdp.max_message_bytes, up to
 * pdp.responses.max_response_bytes. */
static void
test_a_large_response_is_taken(void)
{
    size_t n   = (size_t)g_cfg->pdp.max_message_bytes * 2;
    char  *big = malloc(n + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'x', n);
    memcpy(big, "{\"id\":\"resp_big\",\"pad\":\"", 24);
    memcpy(big + n - 2, "\"}", 2);
    big[n] = '\0';
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "acme", "resp_big", big, 0),
                    PDP_RESP_OK);
    CU_ASSERT_EQUAL_FATAL(call(PDP_REQ_RESP_GET, "acme", "resp_big", NULL, 0),
                          PDP_RESP_OK);
    CU_ASSERT_EQUAL(g_rep.u.resp.resp.response_len, n);
    pdp_wire_reply_release(&g_rep);
    /* Over it: refused, nothing kept. */
    g_cfg->pdp.resp_max_response_bytes = (int64_t)n - 1;
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_PUT, "acme", "resp_big2", big, 0),
                    PDP_RESP_ERROR);
    CU_ASSERT_EQUAL(call(PDP_REQ_RESP_GET, "acme", "resp_big2", NULL, 0),
                    PDP_RESP_NOT_FOUND);
    g_cfg->pdp.resp_max_response_bytes = TG_CONFIG_RESP_MAX_DEFAULT;
    free(big);
}

/* add_key stores the key "sk-<name>" of tenant (revoked when asked). */
static int
add_key(const char *name, const char *tenant, bool revoked)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];
    char    secret[64];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "key_%s", name);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    k.status     = revoked ? PDP_KEY_REVOKED : PDP_KEY_ACTIVE;
    k.revoked_ms = revoked ? 1 : 0;
    snprintf(secret, sizeof(secret), "sk-%s", name);
    tg_sha256(secret, strlen(secret), hash);
    return pdp_store_key_put(g_st, hash, &k) == TG_OK ? 0 : -1;
}

static const tg_unit_case cases[] = {
    {"a_bad_key_gets_nothing", test_a_bad_key_gets_nothing},
    {"put_get_delete", test_put_get_delete},
    {"another_tenant_sees_nothing", test_another_tenant_sees_nothing},
    {"over_the_quota_is_not_stored", test_over_the_quota_is_not_stored},
    {"retention_prunes_the_old", test_retention_prunes_the_old},
    {"get_by_item", test_get_by_item},
    {"get_by_item_keeps_the_retention", test_get_by_item_keeps_the_retention},
    {"a_large_response_is_taken", test_a_large_response_is_taken},
    {NULL, NULL},
};

int
main(void)
{
    char url[700];
    char err[1024];
    int  rc;

    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("server_resp"));
    snprintf(url, sizeof(url), "ipc://%s/run/pdp.sock", g_dir);
    g_cfg = pdp_test_load(pdp_test_config(g_dir, 4));
    if (pdp_store_open(&g_st, g_cfg->pdp.state_dir, 4, err, sizeof(err)) !=
            TG_OK ||
        tg_pricing_load(&g_pr, g_cfg->pdp.pricing_file, err, sizeof(err)) !=
            TG_OK ||
        pdp_server_start(&g_srv, g_cfg, g_st, g_pr, NULL, err, sizeof(err)) !=
            TG_OK ||
        nng_req0_open(&g_cli) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return 2;
    }
    if (add_key("acme", "acme", false) != 0 ||
        add_key("acme2", "acme", false) != 0 ||
        add_key("other", "other", false) != 0 ||
        add_key("quota", "quota", false) != 0 ||
        add_key("ret", "ret", false) != 0 ||
        add_key("revoked", "acme", true) != 0) {
        fprintf(stderr, "setup: cannot store the keys\n");
        return 2;
    }
    nng_socket_set_ms(g_cli, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(g_cli, NNG_OPT_SENDTIMEO, 5000);
    if (nng_dial(g_cli, url, NULL, 0) != 0) {
        fprintf(stderr, "setup: cannot dial %s\n", url);
        return 2;
    }
    rc = tg_unit_run("pdp.server_resp", cases);
    nng_close(g_cli);
    pdp_server_stop(g_srv);
    pdp_store_close(g_st);
    tg_pricing_destroy(g_pr);
    tg_config_destroy(g_cfg);
    return rc;
}
