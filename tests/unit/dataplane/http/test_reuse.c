/* test_reuse.c - dataplane.http.reuse: the decisions a data plane serves
 * without asking the PDP. A hit where the PDP would have decided
 * otherwise is a revoked key, a changed rule input or a budget that goes
 * on working; so every way a kept decision must stop serving is asserted
 * here as a miss, beside the hit that shows it was kept at all. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_reuse.h"
#include "tg_gen.h"
#include "tg_hash.h"
#include "tg_time.h"
#include "tg_unit.h"

/* One PDP "socket" per test: dir/pdp.sock, its generation file beside. */
static char      g_dir[512];
static char      g_url[600];
static char      g_path[600];
static tg_gen   *g_pdp; /* the PDP's side of the file */
static dp_reuse *g_c;

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* start makes the PDP's generation file, then a cache with ttl_ms
 * reading it. */
static void
start(int64_t ttl_ms)
{
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("reuse"));
    snprintf(g_url, sizeof(g_url), "ipc://%s/pdp.sock", g_dir);
    snprintf(g_path, sizeof(g_path), "%s/pdp.sock.gen", g_dir);
    g_pdp = NULL;
    g_c   = NULL;
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&g_pdp, g_path, true), TG_OK);
    tg_gen_bump(g_pdp); /* as a PDP does at start */
    CU_ASSERT_EQUAL_FATAL(dp_reuse_create(&g_c, ttl_ms, g_url, -1), TG_OK);
}

static void
stop(void)
{
    dp_reuse_destroy(g_c);
    tg_gen_close(g_pdp);
    unlink(g_path);
    CU_ASSERT_EQUAL(rmdir(g_dir), 0);
}

static void
request(tg_decide *q, const char *secret, const char *model)
{
    memset(q, 0, sizeof(*q));
    snprintf(q->request_id, sizeof(q->request_id), "req-1");
    tg_sha256(secret, strlen(secret), q->key_hash);
    q->endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(q->model, sizeof(q->model), "%s", model);
    q->max_tokens             = 100;
    q->prompt_tokens_estimate = 10;
    snprintf(q->meta[0].key, sizeof(q->meta[0].key), "project");
    snprintf(q->meta[0].value, sizeof(q->meta[0].value), "x");
    q->n_meta = 1;
    snprintf(q->client_ip, sizeof(q->client_ip), "10.0.0.1");
    snprintf(q->user, sizeof(q->user), "ana");
    q->now_ms = 1700000000000;
}

/* allow is a reusable allow, as the PDP marks one. */
static void
allow(dp_decision *d, const char *deployment)
{
    memset(d, 0, sizeof(*d));
    d->verdict = TG_VERDICT_ALLOW;
    d->status  = 200;
    snprintf(d->targets[0].deployment_id, sizeof(d->targets[0].deployment_id),
             "%s", deployment);
    d->targets[0].weight = 1;
    d->n_targets         = 1;
    snprintf(d->key_id, sizeof(d->key_id), "key_a");
    snprintf(d->tenant_id, sizeof(d->tenant_id), "acme");
    d->reuse_ms = 60000;
}

/* keep_now keeps d for q at the generation a request would read now. */
static void
keep_now(const tg_decide *q, const dp_decision *d)
{
    dp_reuse_tag tag;

    CU_ASSERT_TRUE_FATAL(dp_reuse_tag_now(g_c, &tag));
    dp_reuse_keep(g_c, q, d, &tag);
}

/* new_gen_file is a PDP restarting into a socket directory made anew:
 * another file at the same path, bumped once, as a starting PDP does (so
 * it reads what the first one did after start). */
static void
new_gen_file(void)
{
    CU_ASSERT_EQUAL_FATAL(unlink(g_path), 0);
    tg_gen_close(g_pdp);
    g_pdp = NULL;
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&g_pdp, g_path, true), TG_OK);
    tg_gen_bump(g_pdp);
}

/* forged is a tag no dp_reuse_tag_now gave: the file's first mapping
 * (epoch 1) at generation gen, now. */
static const dp_reuse_tag *
forged(uint64_t gen)
{
    static dp_reuse_tag t;

    t = (dp_reuse_tag){.gen = gen, .epoch = 1, .at_us = tg_mono_us()};
    return &t;
}

static bool
hits(const tg_decide *q)
{
    dp_decision out;

    return dp_reuse_find(g_c, q, &out);
}

/* start_kept is start(ttl_ms) with key sk-a's allow for gpt-4o-mini kept
 * (and shown to serve): what a test then takes away from. */
static void
start_kept(int64_t ttl_ms, tg_decide *q, dp_decision *d)
{
    start(ttl_ms);
    request(q, "sk-a", "gpt-4o-mini");
    allow(d, "oai-mini");
    keep_now(q, d);
    CU_ASSERT_TRUE(hits(q));
}

static void
test_keep_then_find(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_decision  out;
    dp_reuse_tag tag;

    start(5000);
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini");
    CU_ASSERT_TRUE(dp_reuse_tag_now(g_c, &tag));
    CU_ASSERT_EQUAL(tag.gen, tg_gen_load(g_pdp));
    CU_ASSERT_FALSE(hits(&q)); /* nothing kept yet */
    dp_reuse_keep(g_c, &q, &d, &tag);
    memset(&out, 0xa5, sizeof(out));
    CU_ASSERT_TRUE_FATAL(dp_reuse_find(g_c, &q, &out));
    CU_ASSERT_EQUAL(memcmp(&out, &d, sizeof(d)), 0);
    CU_ASSERT_STRING_EQUAL(out.targets[0].deployment_id, "oai-mini");
    /* Another request of the same key, endpoint and model: its id and
     * clock are not inputs. */
    snprintf(q.request_id, sizeof(q.request_id), "req-2");
    q.now_ms += 1000;
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* Any committed change at the PDP (a key revoked, a bundle swapped) and
 * nothing kept before it serves again; what is kept after it does. */
static void
test_miss_after_bump(void)
{
    tg_decide   q;
    dp_decision d;

    start_kept(5000, &q, &d);
    tg_gen_bump(g_pdp);
    CU_ASSERT_FALSE(hits(&q));
    CU_ASSERT_FALSE(hits(&q)); /* and stays a miss */
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* vary changes exactly the input of bit in q. */
static void
vary(tg_decide *q, uint32_t bit)
{
    switch (bit) {
    case TG_REUSE_STREAM:
        q->stream = !q->stream;
        break;
    case TG_REUSE_MAX_TOKENS:
        q->max_tokens = 4096;
        break;
    case TG_REUSE_PROMPT:
        q->prompt_tokens_estimate = 9000;
        break;
    case TG_REUSE_META:
        snprintf(q->meta[0].value, sizeof(q->meta[0].value), "y");
        break;
    case TG_REUSE_CLIENT_IP:
        snprintf(q->client_ip, sizeof(q->client_ip), "192.0.2.7");
        break;
    case TG_REUSE_USER:
        snprintf(q->user, sizeof(q->user), "mallory");
        break;
    }
}

/* A decision names the inputs its rules read: a request that differs in
 * one of those asks the PDP; one that differs only in the others does
 * not. */
static void
test_inputs_named_and_unnamed(void)
{
    static const uint32_t bits[] = {TG_REUSE_STREAM,    TG_REUSE_MAX_TOKENS,
                                    TG_REUSE_PROMPT,    TG_REUSE_META,
                                    TG_REUSE_CLIENT_IP, TG_REUSE_USER};
    tg_decide             q;
    tg_decide             v;
    dp_decision           d;

    start(5000);
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        request(&q, "sk-a", "gpt-4o-mini");
        allow(&d, "oai-mini");
        d.reuse_inputs = bits[i];
        keep_now(&q, &d);
        CU_ASSERT_TRUE(hits(&q));
        v = q;
        vary(&v, bits[i]);
        CU_ASSERT_FALSE(hits(&v));
        if (hits(&v)) {
            fprintf(stderr, "\ninput 0x%x: a changed input hit\n", bits[i]);
        }
        /* Every other input changed: still the same decision. */
        v = q;
        for (size_t j = 0; j < sizeof(bits) / sizeof(bits[0]); j++) {
            if (j != i) {
                vary(&v, bits[j]);
            }
        }
        CU_ASSERT_TRUE(hits(&v));
        if (!hits(&v)) {
            fprintf(stderr, "\ninput 0x%x: other inputs missed\n", bits[i]);
        }
    }
    stop();
}

/* Metadata is compared whole: a key added, removed or renamed, or the
 * same pairs in another order, is another request. */
static void
test_metadata_compared_whole(void)
{
    tg_decide   q;
    tg_decide   v;
    dp_decision d;

    start(5000);
    request(&q, "sk-a", "gpt-4o-mini");
    snprintf(q.meta[1].key, sizeof(q.meta[1].key), "team");
    snprintf(q.meta[1].value, sizeof(q.meta[1].value), "red");
    q.n_meta = 2;
    allow(&d, "oai-mini");
    d.reuse_inputs = TG_REUSE_META;
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    v        = q;
    v.n_meta = 1; /* team dropped */
    CU_ASSERT_FALSE(hits(&v));
    v = q;
    snprintf(v.meta[1].key, sizeof(v.meta[1].key), "teams");
    CU_ASSERT_FALSE(hits(&v));
    v = q;
    snprintf(v.meta[2].key, sizeof(v.meta[2].key), "extra");
    v.n_meta = 3;
    CU_ASSERT_FALSE(hits(&v));
    /* "project"="x" + "team"="red" must not equal "project"="xteam"... */
    v        = q;
    v.n_meta = 1;
    snprintf(v.meta[0].value, sizeof(v.meta[0].value), "xteamred");
    CU_ASSERT_FALSE(hits(&v));
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* Inputs too large to keep as bytes: the decision is not kept. */
static void
test_large_inputs_not_kept(void)
{
    tg_decide   q;
    dp_decision d;

    start(5000);
    request(&q, "sk-a", "gpt-4o-mini");
    for (uint32_t i = 0; i < 4; i++) {
        snprintf(q.meta[i].key, sizeof(q.meta[i].key), "k%u", i);
        memset(q.meta[i].value, 'v', 200);
        q.meta[i].value[200] = '\0';
    }
    q.n_meta = 4; /* over DP_REUSE_INPUT_MAX bytes */
    allow(&d, "oai-mini");
    d.reuse_inputs = TG_REUSE_META;
    keep_now(&q, &d);
    CU_ASSERT_FALSE(hits(&q));
    d.reuse_inputs = 0; /* the same request when no rule reads metadata */
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

static void
test_other_key_model_or_endpoint_miss(void)
{
    tg_decide   q;
    tg_decide   v;
    dp_decision d;

    start_kept(5000, &q, &d);
    request(&v, "sk-b", "gpt-4o-mini");
    CU_ASSERT_FALSE(hits(&v));
    request(&v, "sk-a", "gpt-4o");
    CU_ASSERT_FALSE(hits(&v));
    request(&v, "sk-a", "gpt-4o-mini-2024");
    CU_ASSERT_FALSE(hits(&v));
    request(&v, "sk-a", "gpt-4o-mini");
    v.endpoint = TG_EP_EMBEDDINGS;
    CU_ASSERT_FALSE(hits(&v));
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* Whatever the PDP marked, nothing that holds a reservation or carries
 * limits, no deny and nothing unmarked is kept. */
static void
test_never_keeps_what_must_be_asked(void)
{
    tg_decide   q;
    dp_decision d;

    start(5000);
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini");
    snprintf(d.reservation_id, sizeof(d.reservation_id), "res-1");
    keep_now(&q, &d);
    CU_ASSERT_FALSE(hits(&q));

    allow(&d, "oai-mini");
    snprintf(d.limits[0].name, sizeof(d.limits[0].name), "requests");
    d.limits[0].limit     = 60;
    d.limits[0].remaining = 59;
    d.n_limits            = 1;
    keep_now(&q, &d);
    CU_ASSERT_FALSE(hits(&q));

    allow(&d, "oai-mini");
    d.verdict   = TG_VERDICT_DENY;
    d.status    = 403;
    d.n_targets = 0;
    keep_now(&q, &d);
    CU_ASSERT_FALSE(hits(&q));

    allow(&d, "oai-mini");
    d.reuse_ms = 0;
    keep_now(&q, &d);
    CU_ASSERT_FALSE(hits(&q));

    allow(&d, "oai-mini"); /* the control: this one is kept */
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* A decision serves for min(ttl, its reuse_ms). */
static void
test_expires(void)
{
    tg_decide   q;
    dp_decision d;

    start(500);
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini"); /* reuse_ms 60000: the data plane's ttl rules */
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    sleep_ms(600);
    CU_ASSERT_FALSE(hits(&q));
    stop();

    start(60000);
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini");
    d.reuse_ms = 500; /* the key expires: the PDP's bound rules */
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    sleep_ms(600);
    CU_ASSERT_FALSE(hits(&q));
    stop();
}

/* A decision asked for before a change, answered after it, may have been
 * made with the old state: not kept, and it does not displace the
 * decision kept since. */
static void
test_keep_with_older_gen_refused(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_decision  late;
    dp_decision  out;
    dp_reuse_tag asked;

    start(5000);
    request(&q, "sk-a", "gpt-4o-mini");
    CU_ASSERT_TRUE_FATAL(dp_reuse_tag_now(g_c, &asked));
    tg_gen_bump(g_pdp);
    allow(&late, "stale-dep");
    dp_reuse_keep(g_c, &q, &late, &asked);
    CU_ASSERT_FALSE(hits(&q));

    allow(&d, "oai-mini");
    keep_now(&q, &d); /* asked after the change */
    dp_reuse_keep(g_c, &q, &late, &asked);
    CU_ASSERT_TRUE_FATAL(dp_reuse_find(g_c, &q, &out));
    CU_ASSERT_STRING_EQUAL(out.targets[0].deployment_id, "oai-mini");
    stop();
}

/* An answer asked for under one generation file and arriving after the
 * PDP made a new one (a restart into a new socket directory) is not
 * kept, even when the new file's counter reads the same. */
static void
test_keep_across_file_replacement_refused(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_reuse_tag asked;

    start(60000);
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "stale-dep");
    CU_ASSERT_TRUE_FATAL(dp_reuse_tag_now(g_c, &asked));
    new_gen_file();
    CU_ASSERT_EQUAL(tg_gen_load(g_pdp), asked.gen);
    CU_ASSERT_FALSE(hits(&q)); /* the replacement is seen at once */
    dp_reuse_keep(g_c, &q, &d, &asked);
    CU_ASSERT_FALSE(hits(&q));
    sleep_ms(1100); /* mapped again */
    dp_reuse_keep(g_c, &q, &d, &asked);
    CU_ASSERT_FALSE(hits(&q));
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* The PDP's reuse_ms counts from its decision: a kept decision lives from
 * when it was asked for, not from when the answer came. */
static void
test_lifetime_from_the_ask(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_reuse_tag asked;

    start(60000);
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini");
    d.reuse_ms = 80;
    CU_ASSERT_TRUE_FATAL(dp_reuse_tag_now(g_c, &asked));
    sleep_ms(100); /* the PDP's answer came after its reuse_ms had run */
    dp_reuse_keep(g_c, &q, &d, &asked);
    CU_ASSERT_FALSE(hits(&q));
    keep_now(&q, &d); /* the control: asked now, it serves */
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* A PDP across the network shares no generation file: nothing is kept. */
static void
test_tcp_pdp_never_reuses(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_reuse_tag tag;

    g_c = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dp_reuse_create(&g_c, 5000, "tcp://127.0.0.1:7000", -1), TG_OK);
    CU_ASSERT_FALSE(dp_reuse_tag_now(g_c, &tag));
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini");
    dp_reuse_keep(g_c, &q, &d, forged(0));
    dp_reuse_keep(g_c, &q, &d, forged(1));
    CU_ASSERT_FALSE(hits(&q));
    dp_reuse_destroy(g_c);

    /* ttl 0 turns reuse off, even for a good ipc PDP. */
    start(0);
    CU_ASSERT_FALSE(dp_reuse_tag_now(g_c, &tag));
    dp_reuse_keep(g_c, &q, &d, forged(tg_gen_load(g_pdp)));
    CU_ASSERT_FALSE(hits(&q));
    stop();
    dp_reuse_destroy(NULL); /* a no-op */
}

/* A generation file another local user could write (or one not owned by
 * the PDP's user) could hold the counter still: never used. */
static void
test_untrusted_gen_file_never_reuses(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_reuse_tag tag;
    int64_t      owner = -1; /* the PDP's uid: ours, or 4242 as root */
    int64_t      other = -1; /* a uid the file must not be trusted for */

    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("reuse"));
    snprintf(g_url, sizeof(g_url), "ipc://%s/pdp.sock", g_dir);
    snprintf(g_path, sizeof(g_path), "%s/pdp.sock.gen", g_dir);
    g_pdp = NULL;
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&g_pdp, g_path, true), TG_OK);
    CU_ASSERT_EQUAL_FATAL(chmod(g_path, 0666), 0);
    CU_ASSERT_EQUAL_FATAL(dp_reuse_create(&g_c, 5000, g_url, -1), TG_OK);
    CU_ASSERT_FALSE(dp_reuse_tag_now(g_c, &tag));
    request(&q, "sk-a", "gpt-4o-mini");
    allow(&d, "oai-mini");
    dp_reuse_keep(g_c, &q, &d, forged(tg_gen_load(g_pdp)));
    CU_ASSERT_FALSE(hits(&q));
    dp_reuse_destroy(g_c);

    /* Mode 0644 but owned by another uid than the PDP's (root's own files
     * are trusted: as root, the file goes to uid 4242). */
    CU_ASSERT_EQUAL_FATAL(chmod(g_path, 0644), 0);
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL_FATAL(chown(g_path, 4242, (gid_t)-1), 0);
        owner = 4242;
    } else {
        other = (int64_t)geteuid() + 4242;
    }
    CU_ASSERT_EQUAL_FATAL(dp_reuse_create(&g_c, 5000, g_url, other), TG_OK);
    CU_ASSERT_FALSE(dp_reuse_tag_now(g_c, &tag));
    dp_reuse_keep(g_c, &q, &d, forged(tg_gen_load(g_pdp)));
    CU_ASSERT_FALSE(hits(&q));
    dp_reuse_destroy(g_c);

    /* The control: the same file, of the PDP's user, is used. */
    CU_ASSERT_EQUAL_FATAL(dp_reuse_create(&g_c, 5000, g_url, owner), TG_OK);
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* The PDP's socket directory made anew (a restart): decisions kept under
 * the old file stop serving at once (a stat on every use), even when the
 * new file's counter reads the same, and the new file is used once the
 * data plane maps it (within a second); a file that appears later is
 * picked up. */
static void
test_gen_file_replaced_or_late(void)
{
    tg_decide    q;
    dp_decision  d;
    dp_reuse_tag tag;

    start_kept(60000, &q, &d);
    new_gen_file(); /* reads what the old one did */
    CU_ASSERT_FALSE(hits(&q));
    sleep_ms(1100); /* mapped again */
    CU_ASSERT_FALSE(hits(&q));
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();

    /* No file yet (the PDP has not started): nothing kept, until it
     * appears. */
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("reuse"));
    snprintf(g_url, sizeof(g_url), "ipc://%s/pdp.sock", g_dir);
    snprintf(g_path, sizeof(g_path), "%s/pdp.sock.gen", g_dir);
    CU_ASSERT_EQUAL_FATAL(dp_reuse_create(&g_c, 60000, g_url, -1), TG_OK);
    CU_ASSERT_FALSE(dp_reuse_tag_now(g_c, &tag));
    dp_reuse_keep(g_c, &q, &d, forged(0));
    CU_ASSERT_FALSE(hits(&q));
    g_pdp = NULL;
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&g_pdp, g_path, true), TG_OK);
    sleep_ms(1100);
    keep_now(&q, &d);
    CU_ASSERT_TRUE(hits(&q));
    stop();
}

/* Bounded: many more keys than entries keep at most the table's size,
 * and the newest decisions are the ones kept. */
static void
test_bounded(void)
{
    enum { N = 4 * DP_REUSE_SETS * DP_REUSE_WAYS };
    tg_decide    q;
    dp_decision  d;
    dp_reuse_tag tag;
    char         secret[32];
    uint32_t     found = 0;

    start(60000);
    allow(&d, "oai-mini");
    CU_ASSERT_TRUE_FATAL(dp_reuse_tag_now(g_c, &tag));
    for (uint32_t i = 0; i < N; i++) {
        snprintf(secret, sizeof(secret), "sk-%u", i);
        request(&q, secret, "gpt-4o-mini");
        dp_reuse_keep(g_c, &q, &d, &tag);
    }
    for (uint32_t i = 0; i < N; i++) {
        snprintf(secret, sizeof(secret), "sk-%u", i);
        request(&q, secret, "gpt-4o-mini");
        found += hits(&q);
    }
    CU_ASSERT(found <= DP_REUSE_SETS * DP_REUSE_WAYS);
    CU_ASSERT(found > 0);
    snprintf(secret, sizeof(secret), "sk-%u", N - 1);
    request(&q, secret, "gpt-4o-mini");
    CU_ASSERT_TRUE(hits(&q)); /* the newest is kept */
    stop();
}

static const tg_unit_case cases[] = {
    {"keep_then_find", test_keep_then_find},
    {"miss_after_bump", test_miss_after_bump},
    {"inputs_named_and_unnamed", test_inputs_named_and_unnamed},
    {"metadata_compared_whole", test_metadata_compared_whole},
    {"large_inputs_not_kept", test_large_inputs_not_kept},
    {"other_key_model_or_endpoint_miss", test_other_key_model_or_endpoint_miss},
    {"never_keeps_what_must_be_asked", test_never_keeps_what_must_be_asked},
    {"expires", test_expires},
    {"keep_with_older_gen_refused", test_keep_with_older_gen_refused},
    {"keep_across_file_replacement_refused",
     test_keep_across_file_replacement_refused},
    {"lifetime_from_the_ask", test_lifetime_from_the_ask},
    {"tcp_pdp_never_reuses", test_tcp_pdp_never_reuses},
    {"untrusted_gen_file_never_reuses", test_untrusted_gen_file_never_reuses},
    {"gen_file_replaced_or_late", test_gen_file_replaced_or_late},
    {"bounded", test_bounded},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("dataplane.http.reuse", cases);
}
