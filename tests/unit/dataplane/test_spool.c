/* dataplane.spool - usage the PDP has not acknowledged survives a PDP that
 * is down and a restart of the data plane, and is sent until acked. The
 * "PDP" here is a plain nng rep0 socket that acks every Usage. */
#include <pthread.h>
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
} fake_pdp;

/* fake_pdp_seen records one acknowledged report. */
static void
fake_pdp_seen(fake_pdp *f, const char *rid)
{
    int n = atomic_fetch_add(&f->acks, 1);

    if (n < 16) {
        snprintf(f->seen[n], TG_REQUEST_ID_MAX, "%s", rid);
    }
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
                fake_pdp_seen(f, ia[i].request_id);
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
                fake_pdp_seen(f, req->request_id);
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

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"survives_pdp_down_and_restart", test_survives_pdp_down_and_restart},
        {"older_pdp_gets_single_reports", test_older_pdp_gets_single_reports},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.spool", cases);
}
