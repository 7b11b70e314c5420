/* dp_pdp.c - calls are pooled: each carries its own nng context and aio,
 * opened once and reused, because nng_aio_free may not be called from the
 * aio's own callback and opening a context per request costs more than
 * the request. The pool's lock is held only to push or pop a pointer. */
#include "dp_pdp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "dp_wire.h"
#include "tg_dial.h"
#include "tg_log.h"
#include "tg_nngtls.h"
#include "tg_time.h"
#include "tg_trust.h"

typedef enum dp_pdp_kind {
    DP_PDP_DECIDE,
    DP_PDP_USAGE,
    DP_PDP_USAGE_BATCH,
    DP_PDP_GUARD,
    DP_PDP_RESP,
} dp_pdp_kind;

typedef struct dp_pdp_call dp_pdp_call;
struct dp_pdp_call {
    dp_pdp            *pdp;
    nng_ctx            ctx;
    nng_aio           *aio;
    dp_pdp_kind        kind;
    bool               sending;
    bool               in_flight; /* started and its callback not yet run */
    int64_t            deadline_us;
    char               request_id[TG_REQUEST_ID_MAX];
    dp_pdp_decision_cb decide_cb;
    dp_pdp_ack_cb      ack_cb;
    dp_pdp_batch_cb    batch_cb;
    dp_pdp_guard_cb    guard_cb;
    dp_pdp_resp_cb     resp_cb;
    char               guard_hash[TG_MSG_HASH_MAX];
    const tg_usage    *batch; /* borrowed until batch_cb */
    size_t             batch_n;
    void              *arg;
    dp_pdp_call       *next_free;
    dp_pdp_call       *next_all;
};

struct dp_pdp {
    nng_socket sock;
    /* Its dialer, replaced when the certificates change (dp_pdp_tls_reload)
     * and while no connection is up (dp_pdp_tick), both on the watch's
     * thread. */
    tg_dial             dial;
    bool                dialing;
    char               *url;
    nng_tls_config     *tls; /* tls+tcp:// only; the dialer's */
    const tg_tls_files *tls_files;
    tg_tls_watch       *tls_watch; /* also ticks dp_pdp_tick */
    /* When the outage was last logged (0: not yet in this one). */
    atomic_llong    down_logged_ms;
    size_t          max_reply;
    size_t          max_request; /* 0: none */
    size_t          max_resp;    /* a stored response's; 0: none */
    pthread_mutex_t lock;
    dp_pdp_call    *free_list;
    dp_pdp_call    *all;
    pthread_cond_t  idle;
    unsigned        starting; /* calls being started, under lock */
    atomic_bool     closing;  /* set under lock */
    bool            ipc;      /* the URL is ipc://: the peer uid is checked */
    uid_t           pdp_uid;  /* the uid an ipc PDP must run as */
    tg_trust_log    refused;  /* pipe callback only */
};

static void dp_pdp_call_cb(void *arg);
static void dp_pdp_call_finish(dp_pdp_call *c, tg_err err, nng_msg *reply,
                               const char *why_in);

/* dp_pdp_pipe_check runs before nng adds a pipe: an ipc peer that does not
 * run as the expected uid (a fake PDP another local user started where the
 * socket should be) is closed, so none of its replies is ever trusted. */
static void
dp_pdp_pipe_check(dp_pdp *pdp, nng_pipe p)
{
    uint64_t uid = UINT64_MAX;
    int      rv;

    if (!pdp->ipc) {
        return;
    }
    if ((rv = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid)) == 0 &&
        uid == (uint64_t)pdp->pdp_uid) {
        return;
    }
    if (tg_trust_log_due(&pdp->refused, uid, tg_now_ms())) {
        if (rv != 0) {
            tg_error("PDP connection refused: cannot read the peer's uid "
                     "(%s)",
                     nng_strerror(rv));
        } else {
            tg_error("PDP connection refused: the process serving the PDP "
                     "socket runs as uid %llu, not uid %u (another local "
                     "user may be impersonating the PDP; if that is the "
                     "real PDP, set dataplane.pdp_uid; logged once a "
                     "minute per uid)",
                     (unsigned long long)uid, (unsigned)pdp->pdp_uid);
        }
    }
    nng_pipe_close(p);
}

/* dp_pdp_pipe_cb runs before nng adds a pipe (dp_pdp_pipe_check). */
static void
dp_pdp_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        dp_pdp_pipe_check(arg, p);
    }
}

/* dp_pdp_change logs the link going up and down (tg_dial's lock held). */
static void
dp_pdp_change(void *arg, bool up)
{
    dp_pdp *pdp = arg;

    if (up) {
        tg_info("PDP %s: connected", pdp->url);
    } else if (!atomic_load(&pdp->closing)) {
        atomic_store(&pdp->down_logged_ms, 0);
        tg_warn("PDP %s: connection lost; reconnecting", pdp->url);
    }
}

/* dp_pdp_tick (every 2 s, on the watch thread) looks after a link that has
 * no connection:
 * - after 4 s without one, and again every 4 s, it replaces the dialer
 *   (tg_dial_check): nng 1.5's dialer stops for good when a PDP dies in
 *   the middle of its handshake;
 * - after 10 s without one, and then once a minute, it says so and what
 *   to check: nng reports no reason (a refused TLS handshake looks like a
 *   PDP that is not there). */
static void
dp_pdp_tick(void *arg)
{
    dp_pdp *pdp  = arg;
    int64_t now  = tg_mono_us() / 1000;
    int64_t down = tg_dial_down_ms(&pdp->dial);
    int64_t said = atomic_load(&pdp->down_logged_ms);

    (void)tg_dial_check(&pdp->dial);
    if (down < 10000 || (said != 0 && now - said < 60000)) {
        return;
    }
    atomic_store(&pdp->down_logged_ms, now);
    if (pdp->tls != NULL) {
        tg_warn("PDP %s: no connection for %lld s. Is the PDP up and "
                "reachable? Does this data plane's certificate "
                "(dataplane.pdp_tls.cert_file) chain to the PDP's "
                "pdp.tls.client_ca_file, and the PDP's to "
                "dataplane.pdp_tls.ca_file with the name %s?",
                pdp->url, (long long)(down / 1000),
                pdp->tls_files->server_name != NULL
                    ? pdp->tls_files->server_name
                    : "of the URL's host");
    } else {
        tg_warn("PDP %s: no connection for %lld s. Is tollgate-pdp serving "
                "there (pdp.listen), as the user dataplane.pdp_uid names?",
                pdp->url, (long long)(down / 1000));
    }
}

/* dp_pdp_dir_check refuses an ipc socket in a directory someone other
 * than the PDP's uid or root could write to: whoever can write there can
 * put their own PDP at the socket's path. A directory that does not exist
 * yet (the PDP starts later and makes it) passes; the peer-uid check on
 * every connection still holds. */
static tg_err
dp_pdp_dir_check(const char *url, uid_t pdp_uid)
{
    uid_t       owners[2] = {pdp_uid, 0};
    char        dir[4096];
    char        msg[1024];
    struct stat sb;

    if (strncmp(url, "ipc://", 6) != 0) {
        return TG_OK;
    }
    if (!tg_trust_dirname(url + 6, dir, sizeof(dir))) {
        tg_error("dataplane.pdp_url: %s: path too long", url);
        return TG_ECONFIG;
    }
    if (stat(dir, &sb) != 0 && errno == ENOENT) {
        tg_warn("dataplane.pdp_url: %s does not exist yet; the PDP's uid is "
                "checked when it connects",
                dir);
        return TG_OK;
    }
    if (tg_trust_dir_check("dataplane.pdp_url", dir, owners,
                           pdp_uid == 0 ? 1 : 2, msg, sizeof(msg)) != TG_OK) {
        tg_error("%s (dataplane.pdp_uid names the uid the PDP runs as)", msg);
        return TG_ECONFIG;
    }
    return TG_OK;
}

tg_err
dp_pdp_create(dp_pdp **out, const char *url, size_t max_reply)
{
    return dp_pdp_create_as(out, url, max_reply, -1);
}

tg_err
dp_pdp_create_as(dp_pdp **out, const char *url, size_t max_reply,
                 int64_t pdp_uid)
{
    return dp_pdp_create_tls(out, url, max_reply, pdp_uid, NULL);
}

/* dp_pdp_free frees what dp_pdp_create_tls set up before it dialled. */
static void
dp_pdp_free(dp_pdp *pdp)
{
    tg_trust_log_fini(&pdp->refused);
    pthread_mutex_destroy(&pdp->lock);
    if (pdp->dialing) {
        tg_dial_fini(&pdp->dial);
    }
    pthread_cond_destroy(&pdp->idle);
    if (pdp->tls != NULL) {
        nng_tls_config_free(pdp->tls);
    }
    free(pdp->url);
    free(pdp);
}

/* dp_pdp_tls_reload runs on the watch's thread when dataplane.pdp_tls's
 * files changed: a new dialer with the new certificates replaces the old
 * one, whose connection closes at once (the old certificate may be what
 * the PDP now refuses); decisions in flight on it fail closed. */
static void
dp_pdp_tls_reload(void *arg)
{
    dp_pdp         *pdp = arg;
    nng_tls_config *c   = NULL;
    nng_tls_config *old;
    char            host[256];
    char            err[512];
    int             rv;

    tg_tls_url_host(pdp->url, host, sizeof(host));
    if (tg_tls_config(&c, false, pdp->tls_files, host, err, sizeof(err)) !=
        TG_OK) {
        tg_error("dataplane.pdp_tls changed but cannot be used: %s; still "
                 "using the certificates loaded before",
                 err);
        return;
    }
    if ((rv = tg_dial_replace(&pdp->dial, 0, c)) != 0) {
        nng_tls_config_free(c);
        tg_error("cannot dial PDP at %s with the new certificates: %s",
                 pdp->url, nng_strerror(rv));
        return;
    }
    old      = pdp->tls;
    pdp->tls = c;
    nng_tls_config_free(old);
    tg_info("dataplane.pdp_tls certificates reloaded (%s)",
            pdp->tls_files->cert_file);
}

tg_err
dp_pdp_create_tls(dp_pdp **out, const char *url, size_t max_reply,
                  int64_t pdp_uid, const tg_tls_files *tls)
{
    dp_pdp *pdp;
    int     rv;
    uid_t   expect = pdp_uid < 0 ? geteuid() : (uid_t)pdp_uid;
    size_t  bad;
    char    host[256];
    char    err[512];

    if (dp_pdp_dir_check(url, expect) != TG_OK) {
        return TG_ECONFIG;
    }
    if ((pdp = calloc(1, sizeof(*pdp))) == NULL ||
        (pdp->url = strdup(url)) == NULL) {
        free(pdp);
        return TG_ENOMEM;
    }
    pdp->max_reply = max_reply;
    pdp->ipc       = strncmp(url, "ipc://", 6) == 0;
    pdp->pdp_uid   = expect;
    tg_trust_log_init(&pdp->refused);
    pthread_mutex_init(&pdp->lock, NULL);
    pthread_cond_init(&pdp->idle, NULL);
    if (strncmp(url, "tls+tcp://", 10) == 0) {
        pdp->tls_files = tls;
        tg_tls_url_host(url, host, sizeof(host));
        if (tls == NULL || tls->cert_file == NULL ||
            tg_tls_config(&pdp->tls, false, tls, host, err, sizeof(err)) !=
                TG_OK) {
            tg_error("dataplane.pdp_tls: %s",
                     tls == NULL || tls->cert_file == NULL
                         ? "needed for a tls+tcp:// PDP"
                         : err);
            dp_pdp_free(pdp);
            return TG_ECONFIG;
        }
    }
    if ((rv = nng_req0_open(&pdp->sock)) != 0) {
        tg_error("cannot open PDP socket: %s", nng_strerror(rv));
        dp_pdp_free(pdp);
        return TG_ESYS;
    }
    /* The usage spool, not nng, decides when to send a report again. */
    nng_socket_set_ms(pdp->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(pdp->sock, NNG_OPT_RECVMAXSZ, max_reply);
    nng_socket_set_ms(pdp->sock, NNG_OPT_RECONNMINT, 10);
    nng_socket_set_ms(pdp->sock, NNG_OPT_RECONNMAXT, 500);
    nng_pipe_notify(pdp->sock, NNG_PIPE_EV_ADD_PRE, dp_pdp_pipe_cb, pdp);
    rv = tg_dial_start(&pdp->dial, pdp->sock, 1, (const char *const *)&pdp->url,
                       &pdp->tls, dp_pdp_change, pdp, &bad);
    pdp->dialing = true;
    if (rv != 0) {
        tg_error("cannot dial PDP at %s: %s (check dataplane.pdp_url)", url,
                 nng_strerror(rv));
        nng_close(pdp->sock);
        dp_pdp_free(pdp);
        return TG_ECONFIG;
    }
    if (tg_tls_watch_start(&pdp->tls_watch, pdp->tls != NULL ? tls : NULL, 2000,
                           dp_pdp_tls_reload, dp_pdp_tick, pdp) != TG_OK) {
        tg_warn("PDP %s: cannot start its watch thread: certificate changes "
                "need a restart, and a long outage is not logged",
                url);
    }
    *out = pdp;
    return TG_OK;
}

const char *
dp_pdp_url(const dp_pdp *pdp)
{
    return pdp->url;
}

void
dp_pdp_destroy(dp_pdp *pdp)
{
    dp_pdp_call *all;
    dp_pdp_call *c;
    dp_pdp_call *next;

    if (pdp == NULL) {
        return;
    }
    /* No call starts after this; wait for the ones being started, so
     * every call is either in flight (and stopped below) or pooled. */
    pthread_mutex_lock(&pdp->lock);
    atomic_store(&pdp->closing, true);
    while (pdp->starting > 0) {
        pthread_cond_wait(&pdp->idle, &pdp->lock);
    }
    all = pdp->all;
    pthread_mutex_unlock(&pdp->lock);
    tg_tls_watch_stop(pdp->tls_watch); /* no reload replaces the dialer now */
    tg_dial_stop(&pdp->dial);
    for (c = all; c != NULL; c = c->next_all) {
        nng_aio_stop(c->aio); /* waits for a running callback */
    }
    /* A call whose callback started a receive just as it was stopped gets
     * no further callback from nng: finish it here, so every caller hears
     * back exactly once. */
    for (c = all; c != NULL; c = c->next_all) {
        if (c->in_flight) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            nng_aio_set_msg(c->aio, NULL);
            dp_pdp_call_finish(c, TG_ECLOSED, NULL,
                               "PDP client is shutting down");
        }
    }
    for (c = all; c != NULL; c = next) {
        next = c->next_all;
        nng_aio_free(c->aio);
        nng_ctx_close(c->ctx);
        free(c);
    }
    nng_close(pdp->sock);
    dp_pdp_free(pdp);
}

bool
dp_pdp_connected(dp_pdp *pdp)
{
    return tg_dial_connected(&pdp->dial);
}

uint64_t
dp_pdp_redials(dp_pdp *pdp)
{
    return tg_dial_afresh(&pdp->dial);
}

static dp_pdp_call *
dp_pdp_call_get(dp_pdp *pdp)
{
    dp_pdp_call *c;

    pthread_mutex_lock(&pdp->lock);
    c = pdp->free_list;
    if (c != NULL) {
        pdp->free_list = c->next_free;
    }
    pthread_mutex_unlock(&pdp->lock);
    if (c != NULL) {
        return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return NULL;
    }
    c->pdp = pdp;
    if (nng_ctx_open(&c->ctx, pdp->sock) != 0) {
        free(c);
        return NULL;
    }
    if (nng_aio_alloc(&c->aio, dp_pdp_call_cb, c) != 0) {
        nng_ctx_close(c->ctx);
        free(c);
        return NULL;
    }
    pthread_mutex_lock(&pdp->lock);
    c->next_all = pdp->all;
    pdp->all    = c;
    pthread_mutex_unlock(&pdp->lock);
    return c;
}

static void
dp_pdp_call_put(dp_pdp_call *c)
{
    dp_pdp *pdp = c->pdp;

    pthread_mutex_lock(&pdp->lock);
    c->next_free   = pdp->free_list;
    pdp->free_list = c;
    pthread_mutex_unlock(&pdp->lock);
}

/* dp_pdp_call_finish returns the call to the pool before running the
 * user callback, so a callback that starts a new call can reuse it. */
static void
dp_pdp_call_finish(dp_pdp_call *c, tg_err err, nng_msg *reply,
                   const char *why_in)
{
    dp_pdp            *pdp       = c->pdp;
    dp_pdp_kind        kind      = c->kind;
    dp_pdp_decision_cb decide_cb = c->decide_cb;
    dp_pdp_ack_cb      ack_cb    = c->ack_cb;
    dp_pdp_batch_cb    batch_cb  = c->batch_cb;
    dp_pdp_guard_cb    guard_cb  = c->guard_cb;
    dp_pdp_resp_cb     resp_cb   = c->resp_cb;
    dp_wire_resp       resp;
    char               ghash[TG_MSG_HASH_MAX];
    bool               gfound  = false;
    char              *gspec   = NULL;
    size_t             glen    = 0;
    const tg_usage    *batch   = c->batch;
    size_t             batch_n = c->batch_n;
    void              *arg     = c->arg;
    char               rid[TG_REQUEST_ID_MAX];
    char               why[256];
    tg_decision        dec;
    tg_usage_ack       ack;
    tg_usage_item_ack  acks[TG_USAGE_BATCH_MAX];

    c->in_flight = false;
    memcpy(rid, c->request_id, sizeof(rid));
    memcpy(ghash, c->guard_hash, sizeof(ghash));
    snprintf(why, sizeof(why), "%s", why_in != NULL ? why_in : "");
    dp_pdp_call_put(c);
    if (err == TG_OK && kind == DP_PDP_DECIDE) {
        err = dp_wire_decode_decision(nng_msg_body(reply), nng_msg_len(reply),
                                      pdp->max_reply, rid, &dec, why,
                                      sizeof(why));
    } else if (err == TG_OK && kind == DP_PDP_USAGE) {
        err = dp_wire_decode_usage_ack(nng_msg_body(reply), nng_msg_len(reply),
                                       pdp->max_reply, rid, &ack, why,
                                       sizeof(why));
    } else if (err == TG_OK && kind == DP_PDP_GUARD) {
        err = dp_wire_decode_guard_set(nng_msg_body(reply), nng_msg_len(reply),
                                       pdp->max_reply, rid, ghash, &gfound,
                                       &gspec, &glen, why, sizeof(why));
    } else if (err == TG_OK && kind == DP_PDP_RESP) {
        err = dp_wire_decode_resp(nng_msg_body(reply), nng_msg_len(reply),
                                  pdp->max_reply, rid, &resp, why, sizeof(why));
    } else if (err == TG_OK) {
        err = dp_wire_decode_usage_batch_ack(
            nng_msg_body(reply), nng_msg_len(reply), pdp->max_reply, rid, batch,
            batch_n, acks, why, sizeof(why));
    }
    nng_msg_free(reply);
    if (kind == DP_PDP_DECIDE) {
        decide_cb(arg, err, err == TG_OK ? &dec : NULL, why);
    } else if (kind == DP_PDP_USAGE) {
        ack_cb(arg, err, err == TG_OK ? &ack : NULL);
    } else if (kind == DP_PDP_GUARD) {
        guard_cb(arg, err, gfound, gspec, glen, why);
    } else if (kind == DP_PDP_RESP) {
        resp_cb(arg, err, err == TG_OK ? &resp : NULL, why);
    } else {
        batch_cb(arg, err, err == TG_OK ? acks : NULL,
                 err == TG_OK ? batch_n : 0);
    }
}

static tg_err
dp_pdp_err(int rv, char *why, size_t whylen)
{
    switch (rv) {
    case NNG_ETIMEDOUT:
        snprintf(why, whylen, "PDP did not answer in time");
        return TG_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        snprintf(why, whylen, "PDP client is shutting down");
        return TG_ECLOSED;
    default:
        snprintf(why, whylen, "PDP call failed: %s", nng_strerror(rv));
        return TG_EIO;
    }
}

static void
dp_pdp_call_cb(void *arg)
{
    dp_pdp_call *c  = arg;
    int          rv = nng_aio_result(c->aio);
    char         why[128];
    int64_t      left_ms;

    if (c->sending) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            nng_aio_set_msg(c->aio, NULL);
            dp_pdp_call_finish(c, dp_pdp_err(rv, why, sizeof(why)), NULL, why);
            return;
        }
        c->sending = false;
        left_ms    = (c->deadline_us - tg_mono_us()) / 1000;
        nng_aio_set_timeout(c->aio, left_ms > 0 ? (nng_duration)left_ms : 1);
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        dp_pdp_call_finish(c, dp_pdp_err(rv, why, sizeof(why)), NULL, why);
        return;
    }
    {
        nng_msg *reply = nng_aio_get_msg(c->aio);
        nng_aio_set_msg(c->aio, NULL);
        dp_pdp_call_finish(c, TG_OK, reply, NULL);
    }
}

typedef struct dp_pdp_cbs {
    dp_pdp_decision_cb decide_cb;
    dp_pdp_ack_cb      ack_cb;
    dp_pdp_batch_cb    batch_cb;
    dp_pdp_guard_cb    guard_cb;
    dp_pdp_resp_cb     resp_cb;
    const char        *guard_hash;
    const tg_usage    *batch;
    size_t             batch_n;
} dp_pdp_cbs;

static tg_err
dp_pdp_start(dp_pdp *pdp, dp_pdp_kind kind, const char *request_id,
             const uint8_t *buf, size_t len, int64_t timeout_ms,
             const dp_pdp_cbs *cbs, void *arg)
{
    dp_pdp_call *c;
    nng_msg     *msg;
    tg_err       rv  = TG_OK;
    size_t       max = kind == DP_PDP_RESP ? pdp->max_resp : pdp->max_request;

    if (max != 0 && len > max) {
        return TG_ETOOBIG;
    }
    pthread_mutex_lock(&pdp->lock);
    if (atomic_load(&pdp->closing)) {
        pthread_mutex_unlock(&pdp->lock);
        return TG_ECLOSED;
    }
    pdp->starting++;
    pthread_mutex_unlock(&pdp->lock);
    if ((c = dp_pdp_call_get(pdp)) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, len) != 0) {
        dp_pdp_call_put(c);
        rv = TG_ENOMEM;
        goto out;
    }
    c->kind      = kind;
    c->decide_cb = cbs->decide_cb;
    c->ack_cb    = cbs->ack_cb;
    c->batch_cb  = cbs->batch_cb;
    c->guard_cb  = cbs->guard_cb;
    c->resp_cb   = cbs->resp_cb;
    snprintf(c->guard_hash, sizeof(c->guard_hash), "%s",
             cbs->guard_hash != NULL ? cbs->guard_hash : "");
    c->batch       = cbs->batch;
    c->batch_n     = cbs->batch_n;
    c->arg         = arg;
    c->sending     = true;
    c->in_flight   = true;
    c->deadline_us = tg_mono_us() + timeout_ms * 1000;
    snprintf(c->request_id, sizeof(c->request_id), "%s", request_id);
    nng_aio_set_msg(c->aio, msg);
    nng_aio_set_timeout(c->aio, (nng_duration)timeout_ms);
    nng_ctx_send(c->ctx, c->aio);
out:
    pthread_mutex_lock(&pdp->lock);
    if (--pdp->starting == 0) {
        pthread_cond_broadcast(&pdp->idle);
    }
    pthread_mutex_unlock(&pdp->lock);
    return rv;
}

void
dp_pdp_set_max_request(dp_pdp *pdp, size_t max, size_t max_resp)
{
    pdp->max_request = max;
    pdp->max_resp    = max_resp;
}

tg_err
dp_pdp_decide(dp_pdp *pdp, const tg_decide *req, int64_t timeout_ms,
              dp_pdp_decision_cb cb, void *arg)
{
    uint8_t buf[DP_WIRE_MAX_REQUEST];
    size_t  len;
    tg_err  rv = dp_wire_encode_decide(req, buf, sizeof(buf), &len);

    if (rv != TG_OK) {
        return rv;
    }
    dp_pdp_cbs cbs = {.decide_cb = cb};

    return dp_pdp_start(pdp, DP_PDP_DECIDE, req->request_id, buf, len,
                        timeout_ms, &cbs, arg);
}

tg_err
dp_pdp_usage(dp_pdp *pdp, const tg_usage *u, int64_t timeout_ms,
             dp_pdp_ack_cb cb, void *arg)
{
    uint8_t buf[DP_WIRE_MAX_REQUEST];
    size_t  len;
    tg_err  rv = dp_wire_encode_usage(u, buf, sizeof(buf), &len);

    if (rv != TG_OK) {
        return rv;
    }
    dp_pdp_cbs cbs = {.ack_cb = cb};

    return dp_pdp_start(pdp, DP_PDP_USAGE, u->request_id, buf, len, timeout_ms,
                        &cbs, arg);
}

tg_err
dp_pdp_usage_batch(dp_pdp *pdp, const tg_usage *u, const char *const *content,
                   const size_t *content_len, size_t n, int64_t timeout_ms,
                   dp_pdp_batch_cb cb, void *arg)
{
    size_t   cap = TG_USAGE_BATCH_BYTES + 1024;
    uint8_t *buf;

    for (size_t i = 0; content != NULL && i < n; i++) {
        cap += content_len[i] + TG_USAGE_REPORT_MAX; /* one alone may pass */
    }
    buf = malloc(cap);
    char       id[TG_REQUEST_ID_MAX];
    size_t     len;
    dp_pdp_cbs cbs = {.batch_cb = cb, .batch = u, .batch_n = n};
    tg_err     rv;

    if (buf == NULL) {
        return TG_ENOMEM;
    }
    /* The batch's own id: its first report's, marked (unique: a report is
     * in one batch at a time). */
    snprintf(id, sizeof(id), "b:%.*s", (int)sizeof(id) - 3, u[0].request_id);
    rv = dp_wire_encode_usage_batch_content(u, content, content_len, n, id, buf,
                                            cap, &len);
    if (rv == TG_OK) {
        rv = dp_pdp_start(pdp, DP_PDP_USAGE_BATCH, id, buf, len, timeout_ms,
                          &cbs, arg);
    }
    free(buf);
    return rv;
}

tg_err
dp_pdp_guard_fetch(dp_pdp *pdp, const char *hash, int64_t timeout_ms,
                   dp_pdp_guard_cb cb, void *arg)
{
    uint8_t    buf[256];
    size_t     len;
    char       id[TG_REQUEST_ID_MAX];
    dp_pdp_cbs cbs = {.guard_cb = cb, .guard_hash = hash};
    tg_err     rv;

    snprintf(id, sizeof(id), "g:%.16s", hash);
    if ((rv = dp_wire_encode_guard_fetch(id, hash, buf, sizeof(buf), &len)) !=
        TG_OK) {
        return rv;
    }
    return dp_pdp_start(pdp, DP_PDP_GUARD, id, buf, len, timeout_ms, &cbs, arg);
}

tg_err
dp_pdp_resp(dp_pdp *pdp, dp_wire_resp_op op, const char *request_id,
            const dp_wire_resp *r, int64_t timeout_ms, dp_pdp_resp_cb cb,
            void *arg)
{
    uint8_t   *buf = NULL;
    size_t     len = 0;
    char       id[TG_REQUEST_ID_MAX];
    dp_pdp_cbs cbs = {.resp_cb = cb};
    tg_err     rv;

    if (!dp_pdp_connected(pdp)) {
        return TG_ECLOSED; /* not worth a wait: the client is answered now */
    }
    /* Its own id: a stored response's calls run beside the request's
     * decision and usage report, which use the request id. */
    snprintf(id, sizeof(id), "r%d:%.*s", (int)op, (int)sizeof(id) - 4,
             request_id);
    if ((rv = dp_wire_encode_resp(op, id, r, &buf, &len)) != TG_OK) {
        return rv;
    }
    rv = dp_pdp_start(pdp, DP_PDP_RESP, id, buf, len, timeout_ms, &cbs, arg);
    free(buf);
    return rv;
}
