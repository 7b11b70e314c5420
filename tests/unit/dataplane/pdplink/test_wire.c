/* dataplane.wire - a reply the data plane cannot trust is a deny, never an
 * allow. Replies are built here with the generated code, as the PDP would. */
#include <stdlib.h>
#include <string.h>

#include "dp_wire.h"
#include "tg_unit.h"
#include "tollgate/v1/pdp.pb-c.h"

static size_t
pack_decision(Tollgate__V1__Decision *d, const char *rid, uint8_t *buf)
{
    Tollgate__V1__PdpResponse r = TOLLGATE__V1__PDP_RESPONSE__INIT;

    r.request_id = (char *)rid;
    r.body_case  = TOLLGATE__V1__PDP_RESPONSE__BODY_DECISION;
    r.decision   = d;
    return tollgate__v1__pdp_response__pack(&r, buf);
}

static void
test_allow_decodes(void)
{
    Tollgate__V1__Decision    d  = TOLLGATE__V1__DECISION__INIT;
    Tollgate__V1__RouteTarget t  = TOLLGATE__V1__ROUTE_TARGET__INIT;
    Tollgate__V1__RouteTarget *tp = &t;
    uint8_t                   buf[1024];
    tg_decision               out;
    char                      why[128];

    d.verdict         = TOLLGATE__V1__VERDICT__VERDICT_ALLOW;
    d.key_id          = "key_1";
    d.tenant_id       = "acme";
    d.policy_revision = 7;
    t.deployment_id   = "dep-a";
    t.weight          = 3;
    d.n_targets       = 1;
    d.targets         = &tp;
    size_t n          = pack_decision(&d, "req_1", buf);
    CU_ASSERT_EQUAL_FATAL(dp_wire_decode_decision(buf, n, 4096, "req_1", &out,
                                                  why, sizeof(why)),
                          TG_OK);
    CU_ASSERT_EQUAL(out.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(out.key_id, "key_1");
    CU_ASSERT_EQUAL(out.n_targets, 1);
    CU_ASSERT_STRING_EQUAL(out.targets[0].deployment_id, "dep-a");
    CU_ASSERT_EQUAL(out.targets[0].weight, 3);
    CU_ASSERT_EQUAL(out.policy_revision, 7);
}

static void
test_untrusted_replies_fail(void)
{
    Tollgate__V1__Decision d = TOLLGATE__V1__DECISION__INIT;
    uint8_t                buf[4096];
    tg_decision            out;
    char                   why[128];
    char                   longid[200];
    size_t                 n;

    /* unknown verdict */
    d.verdict = 9;
    n         = pack_decision(&d, "r", buf);
    CU_ASSERT_EQUAL(dp_wire_decode_decision(buf, n, 4096, "r", &out, why,
                                            sizeof(why)),
                    TG_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "unknown verdict"));
    /* unspecified verdict is not an allow either */
    d.verdict = 0;
    n         = pack_decision(&d, "r", buf);
    CU_ASSERT_EQUAL(dp_wire_decode_decision(buf, n, 4096, "r", &out, why,
                                            sizeof(why)),
                    TG_EPROTO);
    /* a reply for another request */
    d.verdict = TOLLGATE__V1__VERDICT__VERDICT_ALLOW;
    n         = pack_decision(&d, "other", buf);
    CU_ASSERT_EQUAL(dp_wire_decode_decision(buf, n, 4096, "r", &out, why,
                                            sizeof(why)),
                    TG_EPROTO);
    /* oversized */
    n = pack_decision(&d, "r", buf);
    CU_ASSERT_EQUAL(dp_wire_decode_decision(buf, n, n - 1, "r", &out, why,
                                            sizeof(why)),
                    TG_EPROTO);
    /* a field longer than its slot */
    memset(longid, 'k', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    d.key_id                   = longid;
    n                          = pack_decision(&d, "r", buf);
    CU_ASSERT_EQUAL(dp_wire_decode_decision(buf, n, 4096, "r", &out, why,
                                            sizeof(why)),
                    TG_EPROTO);
    /* garbage */
    memset(buf, 0xff, 64);
    CU_ASSERT_EQUAL(dp_wire_decode_decision(buf, 64, 4096, "r", &out, why,
                                            sizeof(why)),
                    TG_EPROTO);
}

static void
test_decide_encodes(void)
{
    tg_decide                 d;
    uint8_t                   buf[DP_WIRE_MAX_REQUEST];
    size_t                    n;
    Tollgate__V1__PdpRequest *r;

    memset(&d, 0, sizeof(d));
    strcpy(d.request_id, "req_9");
    strcpy(d.model, "gpt-4o");
    d.endpoint = TG_EP_CHAT_COMPLETIONS;
    d.n_meta   = 1;
    strcpy(d.meta[0].key, "team");
    strcpy(d.meta[0].value, "search");
    d.key_hash[0] = 0xab;
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_decide(&d, buf, sizeof(buf), &n),
                          TG_OK);
    r = tollgate__v1__pdp_request__unpack(NULL, n, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->body_case, TOLLGATE__V1__PDP_REQUEST__BODY_DECIDE);
    CU_ASSERT_STRING_EQUAL(r->request_id, "req_9");
    CU_ASSERT_STRING_EQUAL(r->decide->model, "gpt-4o");
    CU_ASSERT_EQUAL(r->decide->key_hash.len, 32);
    CU_ASSERT_EQUAL(r->decide->key_hash.data[0], 0xab);
    CU_ASSERT_STRING_EQUAL(r->decide->metadata[0]->value, "search");
    tollgate__v1__pdp_request__free_unpacked(r, NULL);
    CU_ASSERT_EQUAL(dp_wire_encode_decide(&d, buf, 8, &n), TG_ETOOBIG);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"allow_decodes", test_allow_decodes},
        {"untrusted_replies_fail", test_untrusted_replies_fail},
        {"decide_encodes", test_decide_encodes},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.wire", cases);
}
