/* test_wire.c - pdp.wire: what the PDP accepts off the wire and what it
 * sends back. Anything malformed must be an error (the data plane then
 * denies), and what round-trips must come back unchanged. */
#include <stdlib.h>
#include <string.h>

#include "dp_wire.h"
#include "pdp_wire.h"
#include "tg_buf.h"
#include "tg_unit.h"
#include "tollgate/v1/pdp.pb-c.h"

static pdp_req g_req;
static pdp_req g_req2;
static pdp_rep g_rep;
static pdp_rep g_rep2;

static void
fill_decide(pdp_req *r)
{
    tg_decide *d = &r->u.decide;

    memset(r, 0, sizeof(*r));
    r->kind = PDP_REQ_DECIDE;
    strcpy(r->request_id, "req-1");
    for (int i = 0; i < TG_SHA256_LEN; i++) {
        d->key_hash[i] = (uint8_t)(i * 7 + 1);
    }
    d->endpoint = TG_EP_CHAT_COMPLETIONS;
    strcpy(d->model, "gpt-4o-mini");
    d->stream                 = true;
    d->max_tokens             = 512;
    d->prompt_tokens_estimate = 1234;
    d->prompt_bytes           = 4567;
    d->n_meta                 = 2;
    strcpy(d->meta[0].key, "team");
    strcpy(d->meta[0].value, "search");
    strcpy(d->meta[1].key, "env");
    strcpy(d->meta[1].value, "prod");
    strcpy(d->client_ip, "10.0.0.7");
    strcpy(d->user, "user-42");
    d->now_ms = 1700000000123;
}

static void
test_decide_round_trip(void)
{
    tg_buf b;
    char   err[256];

    tg_buf_init(&b, 0);
    fill_decide(&g_req);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_request(&g_req, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_decode_request(b.data, b.len, 65536, &g_req2,
                                                  err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(g_req2.kind, PDP_REQ_DECIDE);
    CU_ASSERT_STRING_EQUAL(g_req2.request_id, "req-1");
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.request_id, "req-1");
    CU_ASSERT(memcmp(g_req2.u.decide.key_hash, g_req.u.decide.key_hash,
                     TG_SHA256_LEN) == 0);
    CU_ASSERT_EQUAL(g_req2.u.decide.endpoint, TG_EP_CHAT_COMPLETIONS);
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.model, "gpt-4o-mini");
    CU_ASSERT(g_req2.u.decide.stream);
    CU_ASSERT_EQUAL(g_req2.u.decide.max_tokens, 512);
    CU_ASSERT_EQUAL(g_req2.u.decide.prompt_tokens_estimate, 1234);
    CU_ASSERT_EQUAL(g_req2.u.decide.prompt_bytes, 4567);
    CU_ASSERT_EQUAL(g_req2.u.decide.n_meta, 2);
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.meta[1].key, "env");
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.meta[1].value, "prod");
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.client_ip, "10.0.0.7");
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.user, "user-42");
    CU_ASSERT_EQUAL(g_req2.u.decide.now_ms, 1700000000123);
    tg_buf_fini(&b);
}

/* Both sides encode with one codec (tg_wire): the data plane's message
 * decodes to the same request, and more metadata than the wire carries is
 * refused, never sent with entries that point nowhere. */
static void
test_decide_from_the_data_plane(void)
{
    uint8_t buf[DP_WIRE_MAX_REQUEST];
    size_t  len = 0;
    char    err[256];

    fill_decide(&g_req);
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_decide(&g_req.u.decide, buf,
                                                sizeof(buf), &len),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_decode_request(buf, len, 65536, &g_req2,
                                                  err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(g_req2.u.decide.n_meta, 2);
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.meta[1].value, "prod");
    CU_ASSERT_STRING_EQUAL(g_req2.u.decide.user, "user-42");
    g_req.u.decide.n_meta = TG_MSG_META_MAX + 1;
    CU_ASSERT_EQUAL(dp_wire_encode_decide(&g_req.u.decide, buf, sizeof(buf),
                                          &len),
                    TG_EINVAL);
}

static void
test_usage_round_trip(void)
{
    tg_buf    b;
    char      err[256];
    tg_usage *u = &g_req.u.usage;

    tg_buf_init(&b, 0);
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_USAGE;
    strcpy(g_req.request_id, "req-usage");
    strcpy(u->key_id, "key_0123456789abcdef");
    strcpy(u->tenant_id, "acme");
    strcpy(u->model, "gpt-4o");
    strcpy(u->deployment_id, "oai-4o");
    u->endpoint          = TG_EP_EMBEDDINGS;
    u->prompt_tokens     = 100;
    u->completion_tokens = 20;
    u->cached_tokens     = 30;
    u->estimated         = true;
    u->status            = 200;
    u->started_ms        = 5;
    u->duration_ms       = 6;
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_request(&g_req, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_request(b.data, b.len, 0, &g_req2, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_EQUAL(g_req2.kind, PDP_REQ_USAGE);
    CU_ASSERT_STRING_EQUAL(g_req2.u.usage.request_id, "req-usage");
    CU_ASSERT_STRING_EQUAL(g_req2.u.usage.key_id, "key_0123456789abcdef");
    CU_ASSERT_STRING_EQUAL(g_req2.u.usage.tenant_id, "acme");
    CU_ASSERT_STRING_EQUAL(g_req2.u.usage.deployment_id, "oai-4o");
    CU_ASSERT_EQUAL(g_req2.u.usage.endpoint, TG_EP_EMBEDDINGS);
    CU_ASSERT_EQUAL(g_req2.u.usage.prompt_tokens, 100);
    CU_ASSERT_EQUAL(g_req2.u.usage.completion_tokens, 20);
    CU_ASSERT_EQUAL(g_req2.u.usage.cached_tokens, 30);
    CU_ASSERT(g_req2.u.usage.estimated);
    CU_ASSERT_EQUAL(g_req2.u.usage.status, 200);
    tg_buf_fini(&b);
}

static void
test_decision_reply_round_trip(void)
{
    tg_decision *d = &g_rep.u.decision;
    tg_buf       b;
    char         err[256];

    tg_buf_init(&b, 65536);
    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind = PDP_REP_DECISION;
    strcpy(g_rep.request_id, "req-9");
    d->verdict   = TG_VERDICT_ALLOW;
    d->status    = 200;
    d->strategy  = TG_ROUTE_ORDERED;
    d->n_targets = 2;
    strcpy(d->targets[0].deployment_id, "oai-mini");
    d->targets[0].weight = 1;
    strcpy(d->targets[1].deployment_id, "mock-mini");
    d->targets[1].weight   = 3;
    d->clamp_max_tokens    = 100;
    d->n_redactions        = 1;
    d->redactions[0].start = 4;
    d->redactions[0].end   = 9;
    strcpy(d->redactions[0].replacement, "[EMAIL]");
    d->n_matched = 1;
    strcpy(d->matched[0].rule_id, "r1");
    d->policy_revision = 7;
    strcpy(d->key_id, "key_1");
    strcpy(d->tenant_id, "acme");
    d->n_models = 2;
    strcpy(d->models[0], "a");
    strcpy(d->models[1], "b");
    d->n_limits = 1;
    strcpy(d->limits[0].name, "requests");
    d->limits[0].remaining = 9;
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_reply(b.data, b.len, 0, &g_rep2, err, sizeof(err)),
        TG_OK);
    d = &g_rep2.u.decision;
    CU_ASSERT_EQUAL(g_rep2.kind, PDP_REP_DECISION);
    CU_ASSERT_STRING_EQUAL(g_rep2.request_id, "req-9");
    CU_ASSERT_EQUAL(d->verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(d->strategy, TG_ROUTE_ORDERED);
    CU_ASSERT_EQUAL(d->n_targets, 2);
    CU_ASSERT_STRING_EQUAL(d->targets[1].deployment_id, "mock-mini");
    CU_ASSERT_EQUAL(d->targets[1].weight, 3);
    CU_ASSERT_EQUAL(d->clamp_max_tokens, 100);
    CU_ASSERT_EQUAL(d->n_redactions, 1);
    CU_ASSERT_STRING_EQUAL(d->redactions[0].replacement, "[EMAIL]");
    CU_ASSERT_EQUAL(d->policy_revision, 7);
    CU_ASSERT_STRING_EQUAL(d->tenant_id, "acme");
    CU_ASSERT_EQUAL(d->n_models, 2);
    CU_ASSERT_STRING_EQUAL(d->models[1], "b");
    CU_ASSERT_EQUAL(d->limits[0].remaining, 9);
    tg_buf_fini(&b);
}

static void
test_small_replies_round_trip(void)
{
    tg_buf b;
    char   err[256];

    tg_buf_init(&b, 0);
    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind = PDP_REP_USAGE_ACK;
    strcpy(g_rep.u.ack.request_id, "r-ack");
    g_rep.u.ack.duplicate      = true;
    g_rep.u.ack.cost_micro_usd = 435;
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_reply(b.data, b.len, 0, &g_rep2, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_EQUAL(g_rep2.kind, PDP_REP_USAGE_ACK);
    CU_ASSERT_STRING_EQUAL(g_rep2.request_id, "r-ack");
    CU_ASSERT(g_rep2.u.ack.duplicate);
    CU_ASSERT_EQUAL(g_rep2.u.ack.cost_micro_usd, 435);

    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind = PDP_REP_ERROR;
    strcpy(g_rep.u.error, "bad request");
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_wire_decode_reply(b.data, b.len, 0, &g_rep2, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_EQUAL(g_rep2.kind, PDP_REP_ERROR);
    CU_ASSERT_STRING_EQUAL(g_rep2.u.error, "bad request");
    tg_buf_fini(&b);
}

static void
test_garbage_is_error(void)
{
    static const uint8_t junk[]   = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99};
    char                 err[256] = "";

    CU_ASSERT_EQUAL(pdp_wire_decode_request(junk, sizeof(junk), 0, &g_req, err,
                                            sizeof(err)),
                    TG_EPROTO);
    CU_ASSERT(err[0] != '\0');
    /* Zero bytes decode to a request with no body: still an error. */
    CU_ASSERT_EQUAL(pdp_wire_decode_request("", 0, 0, &g_req, err, sizeof(err)),
                    TG_EPROTO);
}

static void
test_oversized_is_error(void)
{
    tg_buf b;
    char   err[256];

    tg_buf_init(&b, 0);
    fill_decide(&g_req);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_request(&g_req, &b), TG_OK);
    CU_ASSERT_EQUAL(pdp_wire_decode_request(b.data, b.len, b.len - 1, &g_req2,
                                            err, sizeof(err)),
                    TG_ETOOBIG);
    CU_ASSERT_EQUAL(pdp_wire_decode_request(b.data, b.len, b.len, &g_req2, err,
                                            sizeof(err)),
                    TG_OK);
    tg_buf_fini(&b);
}

/* raw_decide packs a Decide with protobuf-c directly, so tests can send
 * what our own encoder never would. */
static size_t
raw_decide(uint8_t *buf, const char *model, size_t hash_len, int endpoint,
           uint32_t version, int64_t max_tokens)
{
    Tollgate__V1__PdpRequest r = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__Decide     d = TOLLGATE__V1__DECIDE__INIT;
    static uint8_t           hash[64];

    d.key_hash.data = hash;
    d.key_hash.len  = hash_len;
    d.model         = (char *)model;
    d.endpoint      = (Tollgate__V1__Endpoint)endpoint;
    d.max_tokens    = max_tokens;
    r.wire_version  = version;
    r.request_id    = "raw";
    r.body_case     = TOLLGATE__V1__PDP_REQUEST__BODY_DECIDE;
    r.decide        = &d;
    return tollgate__v1__pdp_request__pack(&r, buf);
}

static void
test_too_long_string_is_error(void)
{
    uint8_t buf[2048];
    char    model[TG_MODEL_MAX + 1];
    char    err[256] = "";
    size_t  n;

    memset(model, 'm', sizeof(model) - 1);
    model[sizeof(model) - 1] = '\0'; /* one byte too many for tg_decide */
    n                        = raw_decide(buf, model, 32, 1, 1, 0);
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, n, 0, &g_req, err, sizeof(err)),
        TG_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "decide.model"));
    model[sizeof(model) - 2] = '\0'; /* exactly the longest that fits */
    n                        = raw_decide(buf, model, 32, 1, 1, 0);
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, n, 0, &g_req, err, sizeof(err)), TG_OK);
}

static void
test_bad_fields_are_errors(void)
{
    uint8_t buf[1024];
    char    err[256];
    size_t  n;

    n = raw_decide(buf, "gpt-4o", 31, 1, 1, 0); /* short hash */
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, n, 0, &g_req, err, sizeof(err)),
        TG_EPROTO);
    n = raw_decide(buf, "gpt-4o", 32, 99, 1, 0); /* unknown endpoint */
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, n, 0, &g_req, err, sizeof(err)),
        TG_EPROTO);
    n = raw_decide(buf, "gpt-4o", 32, 1, 2, 0); /* newer wire version */
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, n, 0, &g_req, err, sizeof(err)),
        TG_EVERSION);
    n = raw_decide(buf, "gpt-4o", 32, 1, 1, -5); /* negative max_tokens */
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(buf, n, 0, &g_req, err, sizeof(err)),
        TG_EPROTO);
}

static void
test_usage_needs_request_id(void)
{
    tg_buf b;
    char   err[256];

    tg_buf_init(&b, 0);
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_USAGE;
    strcpy(g_req.u.usage.model, "gpt-4o");
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_request(&g_req, &b), TG_OK);
    CU_ASSERT_EQUAL(
        pdp_wire_decode_request(b.data, b.len, 0, &g_req2, err, sizeof(err)),
        TG_EPROTO);
    tg_buf_fini(&b);
}

static void
test_reply_over_cap_is_error(void)
{
    tg_buf b;

    tg_buf_init(&b, 64);
    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind = PDP_REP_ERROR;
    memset(g_rep.u.error, 'x', 200);
    CU_ASSERT_EQUAL(pdp_wire_encode_reply(&g_rep, &b), TG_ETOOBIG);
    CU_ASSERT_EQUAL(b.len, 0);
    tg_buf_fini(&b);
}

/* test_usage_batch_both_ways: the data plane's UsageBatch as the PDP
 * reads it, and the PDP's answer as the data plane reads it: one ack per
 * report, in order, failures kept apart. */
static void
test_usage_batch_both_ways(void)
{
    static tg_usage   u[3];
    tg_usage_item_ack acks[3];
    uint8_t           buf[16384];
    size_t            len = 0;
    tg_buf            out;
    char              why[256];

    memset(u, 0, sizeof(u));
    for (int i = 0; i < 3; i++) {
        snprintf(u[i].request_id, sizeof(u[i].request_id), "req-%d", i);
        snprintf(u[i].key_id, sizeof(u[i].key_id), "key_%d", i);
        snprintf(u[i].model, sizeof(u[i].model), "gpt-4o-mini");
        u[i].prompt_tokens     = 10 + i;
        u[i].completion_tokens = 20 + i;
        u[i].endpoint          = TG_EP_CHAT_COMPLETIONS;
    }
    CU_ASSERT_EQUAL_FATAL(dp_wire_encode_usage_batch(u, 3, "b:req-0", buf,
                                                     sizeof(buf), &len),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_decode_request(buf, len, 1 << 16, &g_req,
                                                  why, sizeof(why)),
                          TG_OK);
    CU_ASSERT_EQUAL(g_req.kind, PDP_REQ_USAGE_BATCH);
    CU_ASSERT_EQUAL_FATAL(g_req.u.batch.n, 3);
    CU_ASSERT_STRING_EQUAL(g_req.u.batch.items[2].request_id, "req-2");
    CU_ASSERT_STRING_EQUAL(g_req.u.batch.items[1].key_id, "key_1");
    CU_ASSERT_EQUAL(g_req.u.batch.items[2].completion_tokens, 22);

    memset(&g_rep, 0, sizeof(g_rep));
    g_rep.kind = PDP_REP_USAGE_BATCH_ACK;
    strcpy(g_rep.request_id, "b:req-0");
    g_rep.u.batch.n = 3;
    for (int i = 0; i < 3; i++) {
        g_rep.u.batch.acks[i].ok = i != 1; /* the second was not stored */
        strcpy(g_rep.u.batch.acks[i].ack.request_id, u[i].request_id);
        g_rep.u.batch.acks[i].ack.cost_micro_usd = 100 * i;
        g_rep.u.batch.acks[i].ack.duplicate      = i == 2;
    }
    tg_buf_init(&out, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(pdp_wire_encode_reply(&g_rep, &out), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_wire_decode_usage_batch_ack(
                              (const uint8_t *)out.data, out.len, 1 << 16,
                              "b:req-0", u, 3, acks, why, sizeof(why)),
                          TG_OK);
    CU_ASSERT_TRUE(acks[0].ok);
    CU_ASSERT_FALSE(acks[1].ok);
    CU_ASSERT_TRUE(acks[2].ok && acks[2].ack.duplicate);
    CU_ASSERT_EQUAL(acks[2].ack.cost_micro_usd, 200);
    /* An answer for other reports, or for another batch, is refused. */
    strcpy(u[1].request_id, "req-X");
    CU_ASSERT_EQUAL(dp_wire_decode_usage_batch_ack(
                        (const uint8_t *)out.data, out.len, 1 << 16,
                        "b:req-0", u, 3, acks, why, sizeof(why)),
                    TG_EPROTO);
    CU_ASSERT_EQUAL(dp_wire_decode_usage_batch_ack(
                        (const uint8_t *)out.data, out.len, 1 << 16,
                        "b:other", u, 3, acks, why, sizeof(why)),
                    TG_EPROTO);
    tg_buf_fini(&out);
    /* An empty or oversized batch never leaves the data plane. */
    CU_ASSERT_EQUAL(dp_wire_encode_usage_batch(u, 0, "b", buf, sizeof(buf),
                                               &len),
                    TG_EINVAL);
}

static const tg_unit_case cases[] = {
    {"usage_batch_both_ways", test_usage_batch_both_ways},
    {"decide_round_trip", test_decide_round_trip},
    {"decide_from_the_data_plane", test_decide_from_the_data_plane},
    {"usage_round_trip", test_usage_round_trip},
    {"decision_reply_round_trip", test_decision_reply_round_trip},
    {"small_replies_round_trip", test_small_replies_round_trip},
    {"garbage_is_error", test_garbage_is_error},
    {"oversized_is_error", test_oversized_is_error},
    {"too_long_string_is_error", test_too_long_string_is_error},
    {"bad_fields_are_errors", test_bad_fields_are_errors},
    {"usage_needs_request_id", test_usage_needs_request_id},
    {"reply_over_cap_is_error", test_reply_over_cap_is_error},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.wire", cases);
}
