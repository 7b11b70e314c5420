/* test_server.c - pdp.server: real nng req/rep round trips over ipc, the
 * way the data plane talks to the PDP. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tg_pricing.h"
#include "pdp_server.h"
#include "pdp_store.h"
#include "pdp_test_util.h"
#include "pdp_wire.h"
#include "tg_hash.h"
#include "tg_unit.h"

typedef struct fixture {
    char         dir[512];
    char         url[640];
    tg_config   *cfg;
    pdp_store   *st;
    tg_pricing *pr;
    pdp_server  *srv;
} fixture;

static fixture    g_fx;
static nng_socket g_cli;
static pdp_req    g_req;
static pdp_rep    g_rep;

static void
fixture_start(fixture *fx, const char *tag)
{
    char err[1024];

    snprintf(fx->dir, sizeof(fx->dir), "%s", tg_unit_tmpdir(tag));
    snprintf(fx->url, sizeof(fx->url), "ipc://%s/run/pdp.sock", fx->dir);
    fx->cfg = pdp_test_load(pdp_test_config(fx->dir, 4));
    if (pdp_store_open(&fx->st, fx->cfg->pdp.state_dir, 4, err, sizeof(err)) !=
            TG_OK ||
        tg_pricing_load(&fx->pr, fx->cfg->pdp.pricing_file, err,
                         sizeof(err)) != TG_OK ||
        pdp_server_start(&fx->srv, fx->cfg, fx->st, fx->pr, NULL, err,
                         sizeof(err)) != TG_OK) {
        fprintf(stderr, "fixture: %s\n", err);
        exit(2);
    }
}

static void
fixture_stop(fixture *fx)
{
    pdp_server_stop(fx->srv);
    pdp_store_close(fx->st);
    tg_pricing_destroy(fx->pr);
    tg_config_destroy(fx->cfg);
}

static int
client_open(nng_socket *s, const char *url)
{
    int rv;

    if ((rv = nng_req0_open(s)) != 0) {
        return rv;
    }
    nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 5000);
    return nng_dial(*s, url, NULL, 0);
}

static tg_err
call_raw(nng_socket s, const void *data, size_t len, pdp_rep *rep)
{
    char  *buf = NULL;
    size_t sz  = 0;
    char   err[256];
    tg_err rv;

    if (nng_send(s, (void *)data, len, 0) != 0 ||
        nng_recv(s, &buf, &sz, NNG_FLAG_ALLOC) != 0) {
        return TG_EIO;
    }
    rv = pdp_wire_decode_reply(buf, sz, 0, rep, err, sizeof(err));
    nng_free(buf, sz);
    return rv;
}

static tg_err
call(nng_socket s, const pdp_req *req, pdp_rep *rep)
{
    tg_buf b;
    tg_err rv;

    tg_buf_init(&b, 0);
    if ((rv = pdp_wire_encode_request(req, &b)) == TG_OK) {
        rv = call_raw(s, b.data, b.len, rep);
    }
    tg_buf_fini(&b);
    return rv;
}

static void
test_ping_and_hello(void)
{
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_PING;
    strcpy(g_req.request_id, "ping-1");
    g_req.u.ping_sent_ms = 123456;
    CU_ASSERT_EQUAL_FATAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL(g_rep.kind, PDP_REP_PONG);
    CU_ASSERT_STRING_EQUAL(g_rep.request_id, "ping-1");
    CU_ASSERT_EQUAL(g_rep.u.pong_sent_ms, 123456);

    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_HELLO;
    strcpy(g_req.u.hello.component, "test");
    strcpy(g_req.u.hello.version, "0");
    CU_ASSERT_EQUAL_FATAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL(g_rep.kind, PDP_REP_HELLO_ACK);
    CU_ASSERT_STRING_EQUAL(g_rep.u.hello_ack.version, PDP_VERSION);
    CU_ASSERT(pdp_server_ready(g_fx.srv));
}

static void
test_decide_allow_and_deny(void)
{
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_DECIDE;
    strcpy(g_req.request_id, "dec-1");
    tg_sha256("sk-tg-test", 10, g_req.u.decide.key_hash);
    g_req.u.decide.endpoint = TG_EP_CHAT_COMPLETIONS;
    strcpy(g_req.u.decide.model, "gpt-4o-mini");
    CU_ASSERT_EQUAL_FATAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL_FATAL(g_rep.kind, PDP_REP_DECISION);
    CU_ASSERT_STRING_EQUAL(g_rep.request_id, "dec-1");
    CU_ASSERT_EQUAL(g_rep.u.decision.verdict, TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_rep.u.decision.n_targets, 2);
    CU_ASSERT_STRING_EQUAL(g_rep.u.decision.targets[0].deployment_id,
                           "oai-mini");
    CU_ASSERT_STRING_EQUAL(g_rep.u.decision.key_id, "key_srv");

    tg_sha256("sk-tg-wrong", 11, g_req.u.decide.key_hash);
    CU_ASSERT_EQUAL_FATAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL_FATAL(g_rep.kind, PDP_REP_DECISION);
    CU_ASSERT_EQUAL(g_rep.u.decision.verdict, TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_rep.u.decision.status, 401);
}

static void
fill_usage(pdp_req *r, const char *rid)
{
    memset(r, 0, sizeof(*r));
    r->kind = PDP_REQ_USAGE;
    snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
    strcpy(r->u.usage.key_id, "key_srv");
    strcpy(r->u.usage.tenant_id, "acme");
    strcpy(r->u.usage.model, "gpt-4o-mini");
    r->u.usage.prompt_tokens     = 1000;
    r->u.usage.cached_tokens     = 200;
    r->u.usage.completion_tokens = 500;
}

static void
test_usage_twice_counted_once(void)
{
    pdp_store_reader *rd = NULL;
    pdp_totals        t;

    fill_usage(&g_req, "use-1");
    CU_ASSERT_EQUAL_FATAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL_FATAL(g_rep.kind, PDP_REP_USAGE_ACK);
    CU_ASSERT_STRING_EQUAL(g_rep.request_id, "use-1");
    CU_ASSERT_FALSE(g_rep.u.ack.duplicate);
    CU_ASSERT_EQUAL(g_rep.u.ack.cost_micro_usd, 435); /* priced server-side */
    CU_ASSERT_EQUAL_FATAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL_FATAL(g_rep.kind, PDP_REP_USAGE_ACK);
    CU_ASSERT_TRUE(g_rep.u.ack.duplicate);
    CU_ASSERT_EQUAL(g_rep.u.ack.cost_micro_usd, 435);

    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(g_fx.st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_totals_get(rd, PDP_TOTALS_KEY, "key_srv", &t),
                    TG_OK);
    CU_ASSERT_EQUAL(t.requests, 1);
    CU_ASSERT_EQUAL(t.cost_micro_usd, 435);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
}

static void
test_garbage_gets_wire_error(void)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};

    CU_ASSERT_EQUAL_FATAL(call_raw(g_cli, junk, sizeof(junk), &g_rep), TG_OK);
    CU_ASSERT_EQUAL(g_rep.kind, PDP_REP_ERROR);
    CU_ASSERT(g_rep.u.error[0] != '\0');
    /* The server is still answering afterwards. */
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_PING;
    CU_ASSERT_EQUAL(call(g_cli, &g_req, &g_rep), TG_OK);
    CU_ASSERT_EQUAL(g_rep.kind, PDP_REP_PONG);
}

typedef struct burst {
    int id;
    int acked;
} burst;

static void *
burst_main(void *arg)
{
    burst     *b = arg;
    nng_socket s;
    pdp_req   *req = malloc(sizeof(*req));
    pdp_rep   *rep = malloc(sizeof(*rep));

    if (req != NULL && rep != NULL && client_open(&s, g_fx.url) == 0) {
        for (int i = 0; i < 50; i++) {
            char rid[48];
            snprintf(rid, sizeof(rid), "burst-%d-%d", b->id, i);
            fill_usage(req, rid);
            if (call(s, req, rep) == TG_OK && rep->kind == PDP_REP_USAGE_ACK &&
                !rep->u.ack.duplicate) {
                b->acked++;
            }
        }
        nng_close(s);
    }
    free(req);
    free(rep);
    return NULL;
}

static void
test_concurrent_usage_all_acked(void)
{
    pthread_t         th[4];
    burst             b[4];
    pdp_store_reader *rd = NULL;
    pdp_totals        t;

    for (int i = 0; i < 4; i++) {
        b[i] = (burst){i, 0};
        pthread_create(&th[i], NULL, burst_main, &b[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(b[i].acked, 50);
    }
    pdp_store_reader_create(g_fx.st, &rd);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_totals_get(rd, PDP_TOTALS_TENANT, "acme", &t),
                    TG_OK);
    CU_ASSERT_EQUAL(t.requests, 1 + 200); /* use-1 plus the bursts */
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
}

static void
test_second_server_on_same_url_fails(void)
{
    pdp_server *other     = NULL;
    char        err[1024] = "";

    CU_ASSERT_NOT_EQUAL(pdp_server_start(&other, g_fx.cfg, g_fx.st, g_fx.pr,
                                         NULL, err, sizeof(err)),
                        TG_OK);
    CU_ASSERT_PTR_NULL(other);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, g_fx.url));
    /* The first server is unharmed. */
    memset(&g_req, 0, sizeof(g_req));
    g_req.kind = PDP_REQ_PING;
    CU_ASSERT_EQUAL(call(g_cli, &g_req, &g_rep), TG_OK);
}

static void
test_stale_socket_file_replaced(void)
{
    fixture            fx;
    struct sockaddr_un sun;
    char               run[600];
    int                fd;
    nng_socket         s;

    /* A socket file left by a crashed PDP: bound, never unlinked, nobody
     * listening. nng must replace it rather than fail to start. */
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.dir, sizeof(fx.dir), "%s", tg_unit_tmpdir("stale"));
    snprintf(run, sizeof(run), "%s/run", fx.dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0700), 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    CU_ASSERT_FATAL(strlen(run) + 10 < sizeof(sun.sun_path));
    memcpy(sun.sun_path, run, strlen(run));
    memcpy(sun.sun_path + strlen(run), "/pdp.sock", 10);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(access(sun.sun_path, F_OK), 0);

    {
        char err[1024];
        snprintf(fx.url, sizeof(fx.url), "ipc://%s", sun.sun_path);
        fx.cfg = pdp_test_load(pdp_test_config(fx.dir, 4));
        CU_ASSERT_EQUAL_FATAL(
            pdp_store_open(&fx.st, fx.cfg->pdp.state_dir, 4, err, sizeof(err)),
            TG_OK);
        CU_ASSERT_EQUAL_FATAL(tg_pricing_load(&fx.pr, NULL, err, sizeof(err)),
                              TG_OK);
        CU_ASSERT_EQUAL(pdp_server_start(&fx.srv, fx.cfg, fx.st, fx.pr, NULL,
                                         err, sizeof(err)),
                        TG_OK);
    }
    if (fx.srv != NULL && client_open(&s, fx.url) == 0) {
        memset(&g_req, 0, sizeof(g_req));
        g_req.kind = PDP_REQ_PING;
        CU_ASSERT_EQUAL(call(s, &g_req, &g_rep), TG_OK);
        CU_ASSERT_EQUAL(g_rep.kind, PDP_REP_PONG);
        nng_close(s);
    }
    fixture_stop(&fx);
}

static const tg_unit_case cases[] = {
    {"ping_and_hello", test_ping_and_hello},
    {"decide_allow_and_deny", test_decide_allow_and_deny},
    {"usage_twice_counted_once", test_usage_twice_counted_once},
    {"garbage_gets_wire_error", test_garbage_gets_wire_error},
    {"concurrent_usage_all_acked", test_concurrent_usage_all_acked},
    {"second_server_on_same_url_fails", test_second_server_on_same_url_fails},
    {"stale_socket_file_replaced", test_stale_socket_file_replaced},
    {NULL, NULL},
};

int
main(void)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];
    int     rc;

    fixture_start(&g_fx, "server");
    memset(&k, 0, sizeof(k));
    strcpy(k.id, "key_srv");
    strcpy(k.tenant, "acme");
    k.status = PDP_KEY_ACTIVE;
    tg_sha256("sk-tg-test", 10, hash);
    if (pdp_store_key_put(g_fx.st, hash, &k) != TG_OK ||
        client_open(&g_cli, g_fx.url) != 0) {
        fprintf(stderr, "setup failed\n");
        return 2;
    }
    rc = tg_unit_run("pdp.server", cases);
    nng_close(g_cli);
    fixture_stop(&g_fx);
    return rc;
}
