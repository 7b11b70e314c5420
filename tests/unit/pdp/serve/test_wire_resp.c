/* test_wire_resp.c - pdp.wire_resp: the stored Responses messages both
 * ways between the data plane (dp_wire) and the PDP (pdp_wire): what one
 * side encodes the other reads unchanged (a get by item id included), and
 * what is malformed is an error. */
#include <stdlib.h>
#include <string.h>

#include "dp_wire.h"
#include "pdp_wire.h"
#include "tg_buf.h"
#include "tg_unit.h"
#include "tollgate/v1/pdp.pb-c.h"

static pdp_req g_req;
static pdp_rep g_rep;

static void
fill(dp_wire_resp *r)
{
    memset(r, 0, sizeof(*r));
    memset(r->key_hash, 0xab, sizeof(r->key_hash));
    strcpy(r->id, "resp_abc");
    r->created_ms   = 1700000000123;
    r->deadline_ms  = 1700000002123;
    r->response     = "{\"id\":\"resp_abc\",\"object\":\"response\"}";
    r->response_len = strlen(r->response);
    r->items        = "[{\"type\":\"message\",\"role\":\"user\"}]";
    r->items_len    = strlen(r->items);
}

static void
test_put_reaches_the_pdp(void)
{
    dp_wire_resp r;
    uint8_t     *buf = NULL;
    size_t       len = 0;
    char         why[128];

    fill(&r);
    CU_ASSERT_EQUAL_FATAL(
        dp_wire_encode_resp(DP_RESP_PUT, "r1:req-1", &r, &buf, &len), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(buf, len, 1 << 20, &g_req, why, sizeof(why)),
        TG_OK);
    CU_ASSERT_EQUAL(g_req.kind, PDP_REQ_RESP_PUT);
    CU_ASSERT_STRING_EQUAL(g_req.request_id, "r1:req-1");
    CU_ASSERT_EQUAL(g_req.u.resp.key_hash[31], 0xab);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.id, "resp_abc");
    CU_ASSERT_EQUAL(g_req.u.resp.created_ms, 1700000000123);
    CU_ASSERT_EQUAL(g_req.u.resp.deadline_ms, 1700000002123);
    CU_ASSERT_EQUAL(g_req.u.resp.response_len, r.response_len);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.response, r.response);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.items, r.items);
    pdp_wire_request_release(&g_req);
    CU_ASSERT_PTR_NULL(g_req.u.resp.response);
    free(buf);
}

static void
test_get_and_delete_reach_the_pdp(void)
{
    dp_wire_resp r;
    uint8_t     *buf = NULL;
    size_t       len = 0;
    char         why[128];

    fill(&r);
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_resp(DP_RESP_GET, "g", &r, &buf, &len),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(buf, len, 0, &g_req, why, sizeof(why)), TG_OK);
    CU_ASSERT_EQUAL(g_req.kind, PDP_REQ_RESP_GET);
    CU_ASSERT(memcmp(g_req.u.resp.key_hash, r.key_hash, 32) == 0);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.id, "resp_abc");
    CU_ASSERT_PTR_NULL(g_req.u.resp.response);
    free(buf);
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_resp(DP_RESP_DEL, "d", &r, &buf, &len),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(buf, len, 0, &g_req, why, sizeof(why)), TG_OK);
    CU_ASSERT_EQUAL(g_req.kind, PDP_REQ_RESP_DEL);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.id, "resp_abc");
    free(buf);
    CU_ASSERT_EQUAL(
        dp_wire_encode_resp((dp_wire_resp_op)9, "x", &r, &buf, &len),
        TG_EINVAL);
}

static void
test_a_get_by_item_reaches_the_pdp(void)
{
    dp_wire_resp r;
    uint8_t     *buf = NULL;
    size_t       len = 0;
    char         why[128];
    tg_buf       out;

    /* From the data plane: the flag and the item id in id. */
    fill(&r);
    strcpy(r.id, "msg_68af0c1d2e3f");
    r.by_item = true;
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_resp(DP_RESP_GET, "i", &r, &buf, &len),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(buf, len, 0, &g_req, why, sizeof(why)), TG_OK);
    CU_ASSERT_EQUAL(g_req.kind, PDP_REQ_RESP_GET);
    CU_ASSERT_TRUE(g_req.u.resp.by_item);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.id, "msg_68af0c1d2e3f");
    pdp_wire_request_release(&g_req);
    free(buf);
    /* A get by response id says so. */
    r.by_item = false;
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_resp(DP_RESP_GET, "g", &r, &buf, &len),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(buf, len, 0, &g_req, why, sizeof(why)), TG_OK);
    CU_ASSERT_FALSE(g_req.u.resp.by_item);
    pdp_wire_request_release(&g_req);
    free(buf);

    /* The PDP's own encoder (a test client's half) carries it too. */
    tg_buf_init(&out, 0);
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_RESP_GET;
    strcpy(g_req.request_id, "p");
    memset(g_req.u.resp.key_hash, 0xcd, sizeof(g_req.u.resp.key_hash));
    strcpy(g_req.u.resp.id, "fc_123");
    g_req.u.resp.by_item = true;
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_request(&g_req, &out), TG_OK);
    memset(&g_req, 0, sizeof(g_req));
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(out.data, out.len, 0, &g_req, why, sizeof(why)),
        TG_OK);
    CU_ASSERT_EQUAL(g_req.kind, PDP_REQ_RESP_GET);
    CU_ASSERT_TRUE(g_req.u.resp.by_item);
    CU_ASSERT_STRING_EQUAL(g_req.u.resp.id, "fc_123");
    CU_ASSERT_EQUAL(g_req.u.resp.key_hash[0], 0xcd);
    pdp_wire_request_release(&g_req);
    tg_buf_fini(&out);
}

static void
test_an_empty_id_or_a_bad_hash_is_refused(void)
{
    dp_wire_resp r;
    uint8_t     *buf = NULL;
    size_t       len = 0;
    char         why[128];

    Tollgate__V1__PdpRequest m   = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__RespGet    get = TOLLGATE__V1__RESP_GET__INIT;
    uint8_t                  raw[256];
    uint8_t                  h[5] = {1, 2, 3, 4, 5};

    get.key_hash.data = h;
    get.key_hash.len  = sizeof(h);
    get.response_id   = "resp_1";
    m.body_case       = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_GET;
    m.resp_get        = &get;
    len               = tollgate__v1__pdp_request__pack(&m, raw);
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(raw, len, 0, &g_req, why, sizeof(why)),
        TG_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "key_hash"));
    fill(&r);
    r.id[0] = '\0';
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_resp(DP_RESP_PUT, "p", &r, &buf, &len),
                          TG_OK);
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, len, 0, &g_req, why, sizeof(why)),
        TG_EPROTO);
    free(buf);
}

static void
test_reply_reaches_the_data_plane(void)
{
    tg_buf       out;
    dp_wire_resp got;
    char         why[128];

    tg_buf_init(&out, 0);
    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind          = PDP_REP_RESP;
    g_rep.u.resp.status = PDP_RESP_OK;
    strcpy(g_rep.request_id, "r2:req-9");
    strcpy(g_rep.u.resp.resp.id, "resp_abc");
    g_rep.u.resp.resp.created_ms   = 42;
    g_rep.u.resp.resp.response     = "{\"id\":\"resp_abc\"}";
    g_rep.u.resp.resp.response_len = strlen(g_rep.u.resp.resp.response);
    g_rep.u.resp.resp.items        = "[]";
    g_rep.u.resp.resp.items_len    = 2;
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &out), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_wire_decode_resp((const uint8_t *)out.data,
                                              out.len, 1 << 20, "r2:req-9",
                                              &got, why, sizeof(why)),
                          TG_OK);
    CU_ASSERT_EQUAL(got.status, DP_RESP_OK);
    CU_ASSERT_STRING_EQUAL(got.id, "resp_abc");
    CU_ASSERT_FALSE(got.by_item);
    CU_ASSERT_EQUAL(got.created_ms, 42);
    CU_ASSERT_STRING_EQUAL(got.response, "{\"id\":\"resp_abc\"}");
    CU_ASSERT_STRING_EQUAL(got.items, "[]");
    dp_wire_resp_fini(&got);
    /* Another request's reply is refused. */
    CU_ASSERT_EQUAL(dp_wire_decode_resp((const uint8_t *)out.data, out.len,
                                        1 << 20, "r2:other", &got, why,
                                        sizeof(why)),
                    TG_EPROTO);
    /* The PDP side reads its own reply back too (a test client's half). */
    CU_ASSERT_EQUAL_FATAL(pdp_wire_decode_reply(out.data, out.len, 1 << 20,
                                                &g_rep, why, sizeof(why)),
                          TG_OK);
    CU_ASSERT_EQUAL(g_rep.kind, PDP_REP_RESP);
    CU_ASSERT_EQUAL(g_rep.u.resp.status, PDP_RESP_OK);
    CU_ASSERT_STRING_EQUAL(g_rep.u.resp.resp.response, "{\"id\":\"resp_abc\"}");
    pdp_wire_reply_release(&g_rep);
    tg_buf_fini(&out);
}

static void
test_statuses_and_a_wrong_body(void)
{
    tg_buf                     out;
    dp_wire_resp               got;
    char                       why[128];
    const pdp_wire_resp_status st[] = {PDP_RESP_NOT_FOUND, PDP_RESP_OVER_QUOTA,
                                       PDP_RESP_ERROR, PDP_RESP_BAD_KEY};

    tg_buf_init(&out, 0);
    for (size_t i = 0; i < 4; i++) {
        memset(&g_rep, 0, sizeof(g_rep));
        g_rep.kind          = PDP_REP_RESP;
        g_rep.u.resp.status = st[i];
        strcpy(g_rep.request_id, "x");
        CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &out), TG_OK);
        CU_ASSERT_EQUAL_FATAL(dp_wire_decode_resp((const uint8_t *)out.data,
                                                  out.len, 1 << 20, "x", &got,
                                                  why, sizeof(why)),
                              TG_OK);
        CU_ASSERT_EQUAL((int)got.status, (int)st[i]);
        CU_ASSERT_PTR_NULL(got.response);
    }
    /* An unknown status (0) is a protocol error. */
    g_rep.u.resp.status = 0;
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &out), TG_OK);
    CU_ASSERT_EQUAL(dp_wire_decode_resp((const uint8_t *)out.data, out.len,
                                        1 << 20, "x", &got, why, sizeof(why)),
                    TG_EPROTO);
    CU_ASSERT_EQUAL(pdp_wire_decode_reply(out.data, out.len, 1 << 20, &g_rep,
                                          why, sizeof(why)),
                    TG_EPROTO);
    /* A Pong is not a stored response. */
    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind = PDP_REP_PONG;
    strcpy(g_rep.request_id, "x");
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &out), TG_OK);
    CU_ASSERT_EQUAL(dp_wire_decode_resp((const uint8_t *)out.data, out.len,
                                        1 << 20, "x", &got, why, sizeof(why)),
                    TG_EPROTO);
    tg_buf_fini(&out);
}

static const tg_unit_case cases[] = {
    {"put_reaches_the_pdp", test_put_reaches_the_pdp},
    {"get_and_delete_reach_the_pdp", test_get_and_delete_reach_the_pdp},
    {"a_get_by_item_reaches_the_pdp", test_a_get_by_item_reaches_the_pdp},
    {"an_empty_id_or_a_bad_hash_is_refused",
     test_an_empty_id_or_a_bad_hash_is_refused},
    {"reply_reaches_the_data_plane", test_reply_reaches_the_data_plane},
    {"statuses_and_a_wrong_body", test_statuses_and_a_wrong_body},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.wire_resp", cases);
}
