/* fuzz_wire_seeds.c - writes the binary seeds of the wire targets: every
 * kind of PdpRequest into DIR/pdp_wire/ and every kind of PdpResponse into
 * DIR/dp_wire/ (and pdp_wire/, which decodes replies too), encoded by the
 * real encoders. Build and run it by hand when the protocol changes:
 *   cmake --build build/fuzz --target fuzz_wire_seeds
 *   build/fuzz/bin/fuzz_wire_seeds tests/fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_wire.h"
#include "pdp_wire.h"

static const char *g_dir;

static void
seeds_write(const char *target, const char *name, const void *buf,
            size_t len)
{
    char  path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", g_dir, target, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(buf, 1, len, f) != len ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void
seeds_usage(tg_usage *u, const char *id)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", id);
    snprintf(u->key_id, sizeof(u->key_id), "key-1");
    snprintf(u->tenant_id, sizeof(u->tenant_id), "acme");
    snprintf(u->model, sizeof(u->model), "gpt-4o");
    snprintf(u->deployment_id, sizeof(u->deployment_id), "oai-1");
    snprintf(u->reservation_id, sizeof(u->reservation_id), "res-%s", id);
    u->endpoint          = TG_EP_CHAT_COMPLETIONS;
    u->stream            = true;
    u->prompt_tokens     = 120;
    u->completion_tokens = 30;
    u->cached_tokens     = 64;
    u->status            = 200;
    u->started_ms        = 1767225600000;
    u->duration_ms       = 850;
    snprintf(u->user, sizeof(u->user), "alice");
}

static void
seeds_requests(void)
{
    static tg_decide d;
    static tg_usage  u[2];
    static pdp_req   hello;
    uint8_t          buf[DP_WIRE_MAX_REQUEST];
    size_t           len;
    tg_buf           b;

    snprintf(d.request_id, sizeof(d.request_id), "req-1");
    memset(d.key_hash, 0x42, sizeof(d.key_hash));
    d.endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(d.model, sizeof(d.model), "gpt-4o");
    d.stream                 = true;
    d.max_tokens             = 256;
    d.prompt_tokens_estimate = 40;
    d.prompt_bytes           = 160;
    snprintf(d.meta[0].key, sizeof(d.meta[0].key), "team");
    snprintf(d.meta[0].value, sizeof(d.meta[0].value), "search");
    d.n_meta = 1;
    snprintf(d.client_ip, sizeof(d.client_ip), "10.0.0.7");
    snprintf(d.user, sizeof(d.user), "alice");
    d.now_ms = 1767225600000;
    if (dp_wire_encode_decide(&d, buf, sizeof(buf), &len) != TG_OK) {
        exit(1);
    }
    seeds_write("pdp_wire", "decide.bin", buf, len);
    seeds_usage(&u[0], "req-1");
    seeds_usage(&u[1], "req-2");
    u[1].abandoned = true;
    if (dp_wire_encode_usage(&u[0], buf, sizeof(buf), &len) != TG_OK) {
        exit(1);
    }
    seeds_write("pdp_wire", "usage.bin", buf, len);
    if (dp_wire_encode_usage_batch(u, 2, "batch-1", buf, sizeof(buf),
                                   &len) != TG_OK) {
        exit(1);
    }
    seeds_write("pdp_wire", "usage_batch.bin", buf, len);
    if (dp_wire_encode_ping("req-1", 1767225600000, buf, sizeof(buf),
                            &len) != TG_OK) {
        exit(1);
    }
    seeds_write("pdp_wire", "ping.bin", buf, len);
    hello.kind = PDP_REQ_HELLO;
    snprintf(hello.request_id, sizeof(hello.request_id), "req-1");
    snprintf(hello.u.hello.component, sizeof(hello.u.hello.component),
             "dataplane");
    snprintf(hello.u.hello.version, sizeof(hello.u.hello.version), "0.1.0");
    tg_buf_init(&b, 0);
    if (pdp_wire_encode_request(&hello, &b) != TG_OK) {
        exit(1);
    }
    seeds_write("pdp_wire", "hello.bin", b.data, b.len);
    tg_buf_fini(&b);
}

static void
seeds_reply(const pdp_rep *rep, const char *name)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    if (pdp_wire_encode_reply(rep, &b) != TG_OK) {
        exit(1);
    }
    seeds_write("dp_wire", name, b.data, b.len);
    seeds_write("pdp_wire", name, b.data, b.len);
    tg_buf_fini(&b);
}

static void
seeds_replies(void)
{
    static pdp_rep r;
    tg_decision   *d = &r.u.decision;

    r.kind = PDP_REP_DECISION;
    snprintf(r.request_id, sizeof(r.request_id), "req-1");
    d->verdict = TG_VERDICT_ALLOW;
    snprintf(d->targets[0].deployment_id, TG_ID_MAX, "oai-1");
    d->targets[0].weight = 3;
    snprintf(d->targets[1].deployment_id, TG_ID_MAX, "anth-1");
    d->targets[1].weight = 1;
    d->n_targets        = 2;
    d->clamp_max_tokens = 512;
    snprintf(d->reservation_id, sizeof(d->reservation_id), "res-1");
    snprintf(d->matched[0].rule_id, TG_ID_MAX, "allow-all");
    d->matched[0].enforced = true;
    d->n_matched           = 1;
    d->policy_revision     = 7;
    snprintf(d->bundle_hash, sizeof(d->bundle_hash), "%064d", 0);
    snprintf(d->key_id, sizeof(d->key_id), "key-1");
    snprintf(d->tenant_id, sizeof(d->tenant_id), "acme");
    snprintf(d->models[0], TG_MODEL_MAX, "gpt-4o");
    d->n_models = 1;
    snprintf(d->limits[0].name, sizeof(d->limits[0].name), "requests");
    d->limits[0].limit     = 60;
    d->limits[0].remaining = 59;
    d->limits[0].reset_ms  = 1767225660000;
    d->n_limits            = 1;
    d->capture_level       = 1;
    seeds_reply(&r, "decision_allow.bin");
    memset(d, 0, sizeof(*d));
    d->verdict = TG_VERDICT_DENY;
    d->status  = 429;
    snprintf(d->error_code, sizeof(d->error_code), "rate_limit_exceeded");
    snprintf(d->error_type, sizeof(d->error_type), "rate_limit_error");
    snprintf(d->message, sizeof(d->message), "60 requests per minute");
    seeds_reply(&r, "decision_deny.bin");

    memset(&r, 0, sizeof(r));
    r.kind = PDP_REP_USAGE_ACK;
    snprintf(r.u.ack.request_id, sizeof(r.u.ack.request_id), "req-1");
    r.u.ack.cost_micro_usd = 1250;
    seeds_reply(&r, "usage_ack.bin");

    memset(&r, 0, sizeof(r));
    r.kind = PDP_REP_USAGE_BATCH_ACK;
    snprintf(r.request_id, sizeof(r.request_id), "batch-1");
    r.u.batch.n = 2;
    r.u.batch.acks[0].ok = true;
    snprintf(r.u.batch.acks[0].ack.request_id, TG_REQUEST_ID_MAX, "req-1");
    r.u.batch.acks[0].ack.cost_micro_usd = 10;
    r.u.batch.acks[1].ok = true;
    r.u.batch.acks[1].ack.duplicate = true;
    snprintf(r.u.batch.acks[1].ack.request_id, TG_REQUEST_ID_MAX, "req-2");
    seeds_reply(&r, "usage_batch_ack.bin");

    memset(&r, 0, sizeof(r));
    r.kind = PDP_REP_PONG;
    snprintf(r.request_id, sizeof(r.request_id), "req-1");
    r.u.pong_sent_ms = 1767225600000;
    seeds_reply(&r, "pong.bin");

    memset(&r, 0, sizeof(r));
    r.kind = PDP_REP_HELLO_ACK;
    snprintf(r.request_id, sizeof(r.request_id), "req-1");
    snprintf(r.u.hello_ack.version, sizeof(r.u.hello_ack.version), "0.1.0");
    r.u.hello_ack.policy_revision = 7;
    seeds_reply(&r, "hello_ack.bin");

    memset(&r, 0, sizeof(r));
    r.kind = PDP_REP_ERROR;
    snprintf(r.request_id, sizeof(r.request_id), "req-1");
    snprintf(r.u.error, sizeof(r.u.error), "bad request");
    seeds_reply(&r, "error.bin");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    seeds_requests();
    seeds_replies();
    return 0;
}
