/* dataplane.spool - usage the PDP has not acknowledged survives a PDP that
 * is down and a restart of the data plane, and is sent until acked. The
 * "PDP" here is a plain nng rep0 socket that acks every Usage. */
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "dp_pdp.h"
#include "dp_spool.h"
#include "tg_unit.h"
#include "tollgate/v1/pdp.pb-c.h"

typedef struct fake_pdp {
    nng_socket  sock;
    pthread_t   thread;
    atomic_int  acks;     /* reports acknowledged */
    atomic_int  messages; /* requests received */
    bool        legacy;   /* answers every request as one report */
    char        seen[16][TG_REQUEST_ID_MAX];
    int64_t     completion[16]; /* what each report said */
    bool        estimated[16];
} fake_pdp;

/* fake_pdp_seen records one acknowledged report. */
static void
fake_pdp_seen(fake_pdp *f, const char *rid, const Tollgate__V1__Usage *u)
{
    int n = atomic_fetch_add(&f->acks, 1);

    if (n < 16) {
        snprintf(f->seen[n], TG_REQUEST_ID_MAX, "%s", rid);
        f->completion[n] = u != NULL ? u->completion_tokens : -1;
        f->estimated[n]  = u != NULL && u->estimated;
    }
}

/* fake_pdp_find is the index of rid's report, or -1. */
static int
fake_pdp_find(fake_pdp *f, const char *rid)
{
    for (int i = 0; i < atomic_load(&f->acks) && i < 16; i++) {
        if (strcmp(f->seen[i], rid) == 0) {
            return i;
        }
    }
    return -1;
}

static void *
fake_pdp_main(void *arg)
{
    fake_pdp *f = arg;

    for (;;) {
        nng_msg                  *m;
        Tollgate__V1__PdpRequest *req;
        if (nng_recvmsg(f->sock, &m, 0) != 0) {
            return NULL;
        }
        req = tollgate__v1__pdp_request__unpack(NULL, nng_msg_len(m),
                                                nng_msg_body(m));
        nng_msg_free(m);
        if (req == NULL) {
            continue;
        }
        Tollgate__V1__PdpResponse   r   = TOLLGATE__V1__PDP_RESPONSE__INIT;
        Tollgate__V1__UsageAck      ack = TOLLGATE__V1__USAGE_ACK__INIT;
        Tollgate__V1__UsageBatchAck ba  = TOLLGATE__V1__USAGE_BATCH_ACK__INIT;
        Tollgate__V1__UsageItemAck  ia[TG_USAGE_BATCH_MAX];
        Tollgate__V1__UsageItemAck *iap[TG_USAGE_BATCH_MAX];
        uint8_t                     buf[8192];
        atomic_fetch_add(&f->messages, 1);
        r.request_id = req->request_id;
        if (req->body_case == TOLLGATE__V1__PDP_REQUEST__BODY_USAGE_BATCH &&
            !f->legacy) {
            for (size_t i = 0; i < req->usage_batch->n_items; i++) {
                tollgate__v1__usage_item_ack__init(&ia[i]);
                ia[i].request_id = req->usage_batch->items[i]->request_id;
                ia[i].ok         = true;
                ia[i].ack        = &ack;
                iap[i]           = &ia[i];
                fake_pdp_seen(f, ia[i].request_id,
                              req->usage_batch->items[i]->usage);
            }
            ba.n_acks         = req->usage_batch->n_items;
            ba.acks           = iap;
            r.body_case       = TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_BATCH_ACK;
            r.usage_batch_ack = &ba;
        } else {
            /* An older PDP: a usage ack to anything; a batch gets one it
             * cannot use, so the spool goes back to single reports. */
            r.body_case = TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_ACK;
            r.usage_ack = &ack;
            if (req->body_case == TOLLGATE__V1__PDP_REQUEST__BODY_USAGE) {
                fake_pdp_seen(f, req->request_id, req->usage);
            }
        }
        size_t len = tollgate__v1__pdp_response__pack(&r, buf);
        tollgate__v1__pdp_request__free_unpacked(req, NULL);
        nng_send(f->sock, buf, len, 0);
    }
}

static void
fake_pdp_start_as(fake_pdp *f, const char *url, bool legacy)
{
    memset(f, 0, sizeof(*f));
    f->legacy = legacy;
    CU_ASSERT_EQUAL_FATAL(nng_rep0_open(&f->sock), 0);
    CU_ASSERT_EQUAL_FATAL(nng_listen(f->sock, url, NULL, 0), 0);
    pthread_create(&f->thread, NULL, fake_pdp_main, f);
}

static void
fake_pdp_start(fake_pdp *f, const char *url)
{
    fake_pdp_start_as(f, url, false);
}

static void
fake_pdp_stop(fake_pdp *f)
{
    nng_close(f->sock);
    pthread_join(f->thread, NULL);
}

static bool
wait_for(dp_spool *sp, uint64_t acked, uint64_t pending)
{
    for (int i = 0; i < 200; i++) {
        if (dp_spool_acked(sp) == acked && dp_spool_pending(sp) == pending) {
            return true;
        }
        usleep(50 * 1000);
    }
    return false;
}

static void
put(dp_spool *sp, const char *rid)
{
    tg_usage u;

    memset(&u, 0, sizeof(u));
    snprintf(u.request_id, sizeof(u.request_id), "%s", rid);
    strcpy(u.key_id, "key_1");
    u.prompt_tokens = 10;
    CU_ASSERT_EQUAL(dp_spool_put(sp, &u), TG_OK);
}

static void
test_survives_pdp_down_and_restart(void)
{
    char      dir[512];
    char      url[600];
    dp_pdp   *pdp = NULL;
    dp_spool *sp  = NULL;
    fake_pdp  f;

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("spool"));
    snprintf(url, sizeof(url), "ipc://%s/pdp.sock", dir);
    strcat(dir, "/spool");

    /* No PDP: reports are kept on disk. */
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    put(sp, "req_a");
    put(sp, "req_b");
    put(sp, "req_c");
    CU_ASSERT_TRUE(wait_for(sp, 0, 3));
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);

    /* Data plane restarts with the PDP up: all three are replayed. */
    fake_pdp_start(&f, url);
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    CU_ASSERT_TRUE(wait_for(sp, 3, 0));
    put(sp, "req_d");
    CU_ASSERT_TRUE(wait_for(sp, 4, 0));
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);
    fake_pdp_stop(&f);
    CU_ASSERT_EQUAL(atomic_load(&f.acks), 4);
    CU_ASSERT_STRING_EQUAL(f.seen[3], "req_d");
    /* The three replayed together: fewer messages than reports. */
    CU_ASSERT(atomic_load(&f.messages) < 4);

    /* Nothing left on disk: a new start sends nothing. */
    fake_pdp_start(&f, url);
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    usleep(800 * 1000);
    CU_ASSERT_EQUAL(dp_spool_pending(sp), 0);
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);
    fake_pdp_stop(&f);
    CU_ASSERT_EQUAL(atomic_load(&f.acks), 0);
}

/* test_older_pdp_gets_single_reports: a PDP that does not know usage
 * batches still gets every report, one by one. */
static void
test_older_pdp_gets_single_reports(void)
{
    char      dir[512];
    char      url[600];
    dp_pdp   *pdp = NULL;
    dp_spool *sp  = NULL;
    fake_pdp  f;

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("spool-old"));
    snprintf(url, sizeof(url), "ipc://%s/pdp.sock", dir);
    strcat(dir, "/spool");
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    put(sp, "req_1");
    put(sp, "req_2");
    put(sp, "req_3");
    CU_ASSERT_TRUE(wait_for(sp, 0, 3));
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);
    fake_pdp_start_as(&f, url, true);
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    CU_ASSERT_TRUE(wait_for(sp, 3, 0));
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);
    fake_pdp_stop(&f);
    CU_ASSERT_EQUAL(atomic_load(&f.acks), 3);
}

/* A recorded callback: how often it ran and with what. */
typedef struct rec_cb {
    atomic_int calls;
    atomic_int last;  /* tg_err */
    atomic_int efull; /* how many were refused */
} rec_cb;

static void
rec_cb_fn(void *arg, tg_err rv)
{
    rec_cb *c = arg;

    atomic_store(&c->last, (int)rv);
    if (rv == TG_EFULL) {
        atomic_fetch_add(&c->efull, 1);
    }
    atomic_fetch_add(&c->calls, 1);
}

static bool
rec_cb_wait(rec_cb *c, int calls)
{
    for (int i = 0; i < 200 && atomic_load(&c->calls) < calls; i++) {
        usleep(10 * 1000);
    }
    return atomic_load(&c->calls) == calls;
}

static void
usage_of(tg_usage *u, const char *rid, int64_t completion, bool estimated)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", rid);
    strcpy(u->key_id, "key_1");
    u->prompt_tokens     = 10;
    u->completion_tokens = completion;
    u->estimated         = estimated;
}

/* test_intent_becomes_estimated: a request whose intent was recorded but
 * whose final report never came (the data plane died) is reported after
 * the restart as estimated at its worst case; one whose final came is
 * reported as the final says, once. */
static void
test_intent_becomes_estimated(void)
{
    char      dir[512];
    char      url[600];
    dp_pdp   *pdp = NULL;
    dp_spool *sp  = NULL;
    fake_pdp  f;
    rec_cb    cb = {0};
    tg_usage  u;
    int       i;

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("spool-intent"));
    snprintf(url, sizeof(url), "ipc://%s/pdp.sock", dir);
    strcat(dir, "/spool");
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    usage_of(&u, "req_cut", 4096, true);
    CU_ASSERT_EQUAL(dp_spool_record(sp, DP_SPOOL_INTENT, &u, rec_cb_fn, &cb),
                    TG_OK);
    usage_of(&u, "req_done", 4096, true);
    CU_ASSERT_EQUAL(dp_spool_record(sp, DP_SPOOL_INTENT, &u, rec_cb_fn, &cb),
                    TG_OK);
    usage_of(&u, "req_done", 7, false);
    CU_ASSERT_EQUAL(dp_spool_record(sp, DP_SPOOL_FINAL, &u, rec_cb_fn, &cb),
                    TG_OK);
    CU_ASSERT_TRUE(rec_cb_wait(&cb, 3));
    CU_ASSERT_EQUAL(atomic_load(&cb.last), TG_OK);
    /* A second data plane on the same spool would settle this one's
     * intents as its own: refused. */
    {
        dp_spool *other = NULL;
        CU_ASSERT_NOT_EQUAL(dp_spool_open(&other, dir, pdp, 0), TG_OK);
        CU_ASSERT_PTR_NULL(other);
    }
    /* Only finals are reports: the intent waits for its request. */
    CU_ASSERT_TRUE(wait_for(sp, 0, 1));
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp); /* as a kill -9 after the commits leaves it */

    fake_pdp_start(&f, url);
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_spool_open(&sp, dir, pdp, 0), TG_OK);
    CU_ASSERT_TRUE(wait_for(sp, 2, 0));
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);
    fake_pdp_stop(&f);
    CU_ASSERT_EQUAL(atomic_load(&f.acks), 2);
    CU_ASSERT_FATAL((i = fake_pdp_find(&f, "req_cut")) >= 0);
    CU_ASSERT_TRUE(f.estimated[i]);
    CU_ASSERT_EQUAL(f.completion[i], 4096);
    CU_ASSERT_FATAL((i = fake_pdp_find(&f, "req_done")) >= 0);
    CU_ASSERT_FALSE(f.estimated[i]);
    CU_ASSERT_EQUAL(f.completion[i], 7);
}

/* test_disk_refuses_writes: with the spool file unable to grow
 * (RLIMIT_FSIZE; a full disk behaves alike) records wait in memory and
 * are still reported from there; past the memory ceiling an intent is
 * refused, a final never; once the disk takes writes the rest drains. */
static void
test_disk_refuses_writes(void)
{
    char          dir[512];
    char          url[600];
    char          path[600];
    dp_pdp       *pdp = NULL;
    dp_spool     *sp  = NULL;
    fake_pdp      f;
    rec_cb        cb = {0};
    rec_cb        refused = {0};
    tg_usage      u;
    struct rlimit old;
    struct rlimit lim;
    struct stat   stt;
    char          rid[32];
    int           n = 0;

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("spool-full"));
    snprintf(url, sizeof(url), "ipc://%s/pdp.sock", dir);
    strcat(dir, "/spool");
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG */
    fake_pdp_start(&f, url);
    CU_ASSERT_EQUAL_FATAL(dp_pdp_create(&pdp, url, 1 << 16), TG_OK);
    /* Room for four records in memory. */
    CU_ASSERT_EQUAL_FATAL(
        dp_spool_open(&sp, dir, pdp, 4 * (sizeof(tg_usage) + 64)), TG_OK);
    CU_ASSERT_EQUAL_FATAL(stat(path, &stt), 0);
    CU_ASSERT_FATAL(stt.st_size > 8192);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    /* Past LMDB's two meta pages nothing can be written: every commit
     * fails on its data pages, before its meta page. */
    lim.rlim_cur = 8192;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    /* Finals while the disk refuses: held, reported, acked from memory. */
    for (; n < 3; n++) {
        snprintf(rid, sizeof(rid), "req_f%d", n);
        usage_of(&u, rid, 5, false);
        CU_ASSERT_EQUAL(dp_spool_record(sp, DP_SPOOL_FINAL, &u, rec_cb_fn,
                                        &cb),
                        TG_OK);
    }
    CU_ASSERT_TRUE(rec_cb_wait(&cb, 3));
    CU_ASSERT_EQUAL(atomic_load(&cb.last), TG_OK);
    CU_ASSERT_TRUE(wait_for(sp, 3, 0));
    CU_ASSERT_EQUAL(atomic_load(&f.acks), 3);
    /* Intents fill memory: past the ceiling one is refused. */
    for (int k = 0; k < 6; k++) {
        snprintf(rid, sizeof(rid), "req_i%d", k);
        usage_of(&u, rid, 4096, true);
        CU_ASSERT_EQUAL(dp_spool_record(sp, DP_SPOOL_INTENT, &u, rec_cb_fn,
                                        &refused),
                        TG_OK);
    }
    CU_ASSERT_TRUE(rec_cb_wait(&refused, 6));
    /* Room for four: the two newest are refused. */
    CU_ASSERT_EQUAL(atomic_load(&refused.last), TG_EFULL);
    CU_ASSERT_EQUAL(atomic_load(&refused.efull), 2);
    CU_ASSERT_TRUE(dp_spool_full(sp));
    CU_ASSERT_TRUE(dp_spool_held_bytes(sp) > 0);
    /* A final still goes in past the ceiling. */
    usage_of(&u, "req_late", 9, false);
    CU_ASSERT_EQUAL(dp_spool_record(sp, DP_SPOOL_FINAL, &u, rec_cb_fn, &cb),
                    TG_OK);
    CU_ASSERT_TRUE(rec_cb_wait(&cb, 4));
    CU_ASSERT_EQUAL(atomic_load(&cb.last), TG_OK);
    /* Space returns: everything waiting is written, nothing is lost. */
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &old), 0);
    for (int k = 0; k < 200 && dp_spool_held_bytes(sp) > 0; k++) {
        usleep(20 * 1000);
    }
    CU_ASSERT_EQUAL(dp_spool_held_bytes(sp), 0);
    CU_ASSERT_FALSE(dp_spool_full(sp));
    CU_ASSERT_TRUE(wait_for(sp, 4, 0));
    CU_ASSERT_TRUE(fake_pdp_find(&f, "req_late") >= 0);
    dp_spool_stop(sp);
    dp_pdp_destroy(pdp);
    dp_spool_close(sp);
    fake_pdp_stop(&f);
    signal(SIGXFSZ, SIG_DFL);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"survives_pdp_down_and_restart", test_survives_pdp_down_and_restart},
        {"older_pdp_gets_single_reports", test_older_pdp_gets_single_reports},
        {"intent_becomes_estimated", test_intent_becomes_estimated},
        {"disk_refuses_writes", test_disk_refuses_writes},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.spool", cases);
}
