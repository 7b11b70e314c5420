/* dp_worker.c - a worker thread: its job queue and each request's stages
 * (dp_admit, the intent, attempts by dp_attempt over dp_transfer, the
 * answer once dp_usage's report is recorded), cancellation and timeouts.
 * Only this thread touches a request's worker fields. */
#include "dp_worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_admit.h"
#include "dp_attempt.h"
#include "dp_reuse.h"
#include "dp_trace.h"
#include "dp_transfer.h"
#include "dp_usage.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_HANGUP_CHECK_US (200 * 1000) /* how often to look for hang-ups */

typedef enum dp_job_type {
    DP_JOB_NEW,
    DP_JOB_DECISION,
    DP_JOB_CANCEL,
    DP_JOB_UNPAUSE,
    DP_JOB_SPOOLED, /* the spool recorded (or refused) its record */
    DP_JOB_GUARD,   /* the guard set it waits for came (or cannot) */
} dp_job_type;

/* What a request waits for from the spool (dp_req.spool_wait). */
typedef enum dp_spool_wait {
    DP_WAIT_NONE = 0,
    DP_WAIT_INTENT, /* then it goes upstream */
    DP_WAIT_FINAL,  /* then its answer is delivered */
} dp_spool_wait;

typedef struct dp_job dp_job;
struct dp_job {
    dp_job     *next;
    dp_job_type type;
    dp_req     *req; /* the job holds a ref */
    tg_err      err;
    char        why[160];
};

struct dp_worker {
    const dp_host        *h;
    unsigned              index;
    pthread_t             thread;
    dp_transfer          *xf;
    pthread_mutex_t       qlock;
    dp_job               *qhead;
    dp_job               *qtail;
    bool                  stop; /* under qlock */
    dp_req               *active;
    atomic_uint           held;     /* submitted, not finished */
    atomic_bool           loop_due; /* run the loop after the next wait */
    const dp_worker_loop *loop; /* NULL: none */
};

/* ---- queue ---------------------------------------------------------- */

/* dp_worker_post queues a job; false if it was not queued: out of memory,
 * or a new request for a worker that has stopped. Jobs about requests
 * already taken are queued even then, for dp_worker_destroy to release. */
static bool
dp_worker_post(dp_worker *w, dp_job_type type, dp_req *r, tg_err err,
               const char *why)
{
    dp_job *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        /* Out of memory: the request cannot make progress; log it. The
         * client's connection times out and the PDP reservation expires. */
        tg_error("worker %u: out of memory queueing a job for %s", w->index,
                 r->request_id);
        return false;
    }
    dp_req_ref(r);
    j->type = type;
    j->req  = r;
    j->err  = err;
    if (why != NULL) {
        snprintf(j->why, sizeof(j->why), "%s", why);
    }
    pthread_mutex_lock(&w->qlock);
    if (type == DP_JOB_NEW && w->stop) {
        pthread_mutex_unlock(&w->qlock);
        dp_req_unref(r);
        free(j);
        return false;
    }
    if (w->qtail != NULL) {
        w->qtail->next = j;
    } else {
        w->qhead = j;
    }
    w->qtail = j;
    pthread_mutex_unlock(&w->qlock);
    dp_transfer_wakeup(w->xf);
    return true;
}

bool
dp_worker_submit(dp_worker *w, dp_req *r)
{
    r->worker = w;
    atomic_fetch_add(&w->held, 1);
    if (!dp_worker_post(w, DP_JOB_NEW, r, TG_OK, NULL)) {
        atomic_fetch_sub(&w->held, 1);
        return false;
    }
    return true;
}

void
dp_worker_wake(dp_worker *w)
{
    atomic_store(&w->loop_due, true);
    if (!pthread_equal(pthread_self(), w->thread)) {
        dp_transfer_wakeup(w->xf); /* its own thread is not waiting */
    }
}

unsigned
dp_worker_held(const dp_worker *w)
{
    return atomic_load(&w->held);
}

void
dp_worker_cancel(dp_worker *w, dp_req *r)
{
    dp_worker_post(w, DP_JOB_CANCEL, r, TG_OK, NULL);
}

void
dp_worker_unpause(dp_worker *w, dp_req *r)
{
    dp_worker_post(w, DP_JOB_UNPAUSE, r, TG_OK, NULL);
}

/* dp_worker_spooled runs on the spool thread: hands the result to the
 * request's worker. */
static void
dp_worker_spooled(void *arg, tg_err rv)
{
    dp_req *r = arg;

    dp_worker_post(r->worker, DP_JOB_SPOOLED, r, rv, NULL);
    dp_req_unref(r); /* the spool's ref */
}

/* dp_worker_on_decision runs on an nng thread: copies the decision and
 * hands it to the owning worker, which does not touch r->dec until it
 * takes this job. */
static void
dp_worker_on_decision(void *arg, tg_err err, const tg_decision *d,
                      const char *why)
{
    dp_req *r = arg;

    if (err == TG_OK) {
        dp_decision_keep(&r->dec, d);
    }
    if (err == TG_OK && r->endpoint == TG_EP_MODELS && d->n_models > 0) {
        if ((r->models = calloc(d->n_models, sizeof(*r->models))) == NULL) {
            err = TG_ENOMEM;
            why = "out of memory for the model list";
        } else {
            memcpy(r->models, d->models, d->n_models * sizeof(*r->models));
            r->n_models = d->n_models;
        }
    }
    dp_worker_post(r->worker, DP_JOB_DECISION, r, err, why);
    dp_req_unref(r); /* the PDP call's ref */
}

/* ---- finishing ------------------------------------------------------ */

static void dp_worker_conclude(dp_worker *w, dp_req *r, unsigned status);

static void
dp_worker_finish(dp_worker *w, dp_req *r)
{
    dp_req **pp;

    if (r->finished) {
        return;
    }
    dp_transfer_release(w->xf, r);
    if (r->hold_answers && r->ans_kind != DP_ANS_NONE) {
        if (!r->usage_reported) {
            /* An answer waits for its record: spooled first, then
             * delivered (dp_worker_conclude comes back here). */
            dp_worker_conclude(
                w, r, r->ans_kind == DP_ANS_COMPLETE ? r->ans_status : 200);
            return;
        }
        dp_req_deliver(r); /* its record is queued already */
    }
    {
        unsigned status;
        pthread_mutex_lock(&r->mtx);
        status = r->status != 0 ? r->status : 499;
        pthread_mutex_unlock(&r->mtx);
        if (!r->usage_reported) {
            /* Whatever is still held or recorded for it is settled now: a
             * reservation, an intent, a decision that may still come. */
            dp_usage_report(w->h, r, status);
        }
        dp_trace_end(w->h, r, status);
    }
    r->finished = true;
    tg_buf_fini(&r->ans_body);
    tg_buf_fini(&r->up_resp);
    tg_buf_fini(&r->cap_stream);
    tg_buf_fini(&r->content);
    dp_sse_fini(&r->sse);
    dp_chat_fini(&r->chat);
    for (pp = &w->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    atomic_fetch_sub(&w->h->m->inflight, 1);
    atomic_fetch_sub(&w->held, 1);
    dp_req_unref(r); /* the worker's ref */
}

static void
dp_worker_shutting_down(dp_worker *w, dp_req *r)
{
    dp_req_error(r, 503, "The gateway is shutting down; retry.", "server_error",
                 NULL, "shutting_down");
    dp_worker_finish(w, r);
}

/* dp_worker_deliver hands the prepared answer to the client and finishes
 * the request. */
static void
dp_worker_deliver(dp_worker *w, dp_req *r)
{
    dp_req_deliver(r);
    dp_worker_finish(w, r);
}

/* dp_worker_conclude records the final usage and delivers the prepared
 * answer once it is recorded (on disk, or held in memory while the disk
 * refuses): a client never holds a finished answer whose usage could
 * still be lost. */
static void
dp_worker_conclude(dp_worker *w, dp_req *r, unsigned status)
{
    tg_usage u;

    if (!dp_usage_final(w->h, r, status, &u)) {
        dp_worker_deliver(w, r);
        return;
    }
    dp_req_ref(r); /* the spool's, released by dp_worker_spooled */
    if (dp_spool_record_content(w->h->spools[r->pdp_idx], DP_SPOOL_FINAL, &u,
                                r->content.data, r->content.len,
                                dp_worker_spooled, r) != TG_OK) {
        /* Stopping (or out of memory): queued without a callback. */
        dp_req_unref(r);
        if (dp_spool_record_content(w->h->spools[r->pdp_idx], DP_SPOOL_FINAL,
                                    &u, r->content.data, r->content.len, NULL,
                                    NULL) != TG_OK) {
            tg_error("request %s: could not queue its usage report (out of "
                     "memory)",
                     r->request_id);
        }
        dp_worker_deliver(w, r);
        return;
    }
    r->spool_wait = DP_WAIT_FINAL;
}

/* dp_worker_fail answers the client with the last failure. */
static void
dp_worker_fail(dp_worker *w, dp_req *r)
{
    dp_worker_conclude(w, r, dp_req_prepare_failure(r));
}

/* ---- attempts ------------------------------------------------------- */

/* dp_worker_cooling notes that a deployment of r's walk is cooling down
 * (or half-open with its one probe out): the answer, unless an attempt
 * failed before. */
static void
dp_worker_cooling(dp_worker *w, dp_req *r)
{
    if (r->have_err) {
        return;
    }
    memset(&r->err, 0, sizeof(r->err));
    r->have_err   = true;
    r->err.kind   = DP_FAIL_NEXT;
    r->err.status = 503;
    snprintf(r->err.type, sizeof(r->err.type), "server_error");
    snprintf(r->err.code, sizeof(r->err.code), "no_healthy_deployment");
    snprintf(r->err.message, sizeof(r->err.message),
             "Every deployment allowed for model '%s' is cooling "
             "down after repeated failures; retry shortly.",
             r->chat.model);
    snprintf(r->retry_after, sizeof(r->retry_after), "%d",
             (int)((w->h->cfg->dataplane.cooldown_ms + 999) / 1000));
}

/* dp_worker_unusable notes that an attempt could not start (rv; msg and
 * param say why). An earlier provider failure says more than "this one
 * cannot take it": that one is kept for the answer. */
static void
dp_worker_unusable(dp_req *r, tg_err rv, const char *msg, const char *param)
{
    if (r->have_err && r->err.kind != DP_FAIL_NEXT) {
        return;
    }
    memset(&r->err, 0, sizeof(r->err));
    r->have_err   = true;
    r->err.kind   = DP_FAIL_NEXT;
    r->err.status = rv == TG_EINVAL ? 400 : 500;
    snprintf(r->err.type, sizeof(r->err.type), "%s",
             rv == TG_EINVAL ? "invalid_request_error" : "server_error");
    snprintf(r->err.code, sizeof(r->err.code), "%s",
             rv == TG_EINVAL ? "unsupported_by_deployment" : "internal_error");
    snprintf(r->err.message, sizeof(r->err.message), "%s", msg);
    snprintf(r->err.param, sizeof(r->err.param), "%s", param);
}

/* dp_worker_try follows r's walk from act (TRY index): starts the first
 * deployment that is not cooling down and can take the request. False:
 * nothing left to try (r->err says why). */
static bool
dp_worker_try(dp_worker *w, dp_req *r, dp_attempt_act act, uint32_t index)
{
    char msg[400];
    char param[64];

    while (act == DP_ATTEMPT_TRY) {
        const dp_upstream *up = &w->h->upstreams[index];
        dp_health_state    hs =
            dp_health_acquire(w->h->health, up->index, tg_mono_us() / 1000);
        tg_err rv;

        if (hs == DP_HEALTH_COOLDOWN) {
            dp_worker_cooling(w, r);
            act = dp_attempt_skip(&r->at, &index);
            continue;
        }
        rv = dp_transfer_start(w->xf, r, up, hs == DP_HEALTH_PROBE, msg,
                               sizeof(msg), param, sizeof(param));
        if (rv == TG_OK) {
            dp_attempt_started(&r->at);
            return true;
        }
        dp_worker_unusable(r, rv, msg, param);
        if (rv != TG_EINVAL) {
            return false;
        }
        act = dp_attempt_skip(&r->at, &index);
    }
    return false;
}

/* dp_worker_next starts a walk where r's plan stands. */
static bool
dp_worker_next(dp_worker *w, dp_req *r)
{
    uint32_t       index = 0;
    dp_attempt_act act   = dp_attempt_walk(&r->at, &index);

    return dp_worker_try(w, r, act, index);
}

static dp_attempt_fail
dp_worker_fail_kind(dp_fail_kind kind)
{
    switch (kind) {
    case DP_FAIL_RETRY:
        return DP_ATTEMPT_RETRY;
    case DP_FAIL_CONTEXT:
        return DP_ATTEMPT_CONTEXT;
    case DP_FAIL_CONTENT:
        return DP_ATTEMPT_CONTENT;
    case DP_FAIL_CLIENT:
        return DP_ATTEMPT_CLIENT;
    case DP_FAIL_NEXT:
        break;
    }
    return DP_ATTEMPT_NEXT;
}

/* dp_worker_attempt_failed records a failed attempt (e, and the body the
 * client would get in body) and moves on as dp_attempt_failed says: the
 * same deployment again after a backoff, the next one, a context or
 * content fallback, or the answer. */
static void
dp_worker_attempt_failed(dp_worker *w, dp_req *r, const dp_call_err *e,
                         const tg_buf *body)
{
    uint32_t       index = 0;
    int64_t        delay = 0;
    int64_t        ra;
    dp_attempt_act act;
    char           why[32];

    atomic_fetch_add(&w->h->m->upstream_errors, 1);
    snprintf(why, sizeof(why), "HTTP %ld", r->up_status);
    dp_transfer_verdict(w->xf, r,
                        e->kind != DP_FAIL_RETRY && e->kind != DP_FAIL_NEXT,
                        r->up_status != 0 ? why : e->message);
    r->err      = *e;
    r->have_err = true;
    tg_buf_reset(&r->err_body);
    if (e->pass_body && body != NULL &&
        tg_buf_append(&r->err_body, body->data, body->len) != TG_OK) {
        r->err.pass_body = false; /* the gateway's message instead */
    }
    tg_info("request %s: attempt %u at deployment %s failed (%s); %s",
            r->request_id, r->at.started,
            r->dep != NULL ? r->dep->dep->id : "-", e->code,
            e->kind == DP_FAIL_CLIENT ? "not retried" : "trying further");
    dp_transfer_release(w->xf, r);
    r->up_got_bytes = false; /* an error answer is not charged */
    ra  = r->retry_after[0] != '\0' ? strtoll(r->retry_after, NULL, 10) * 1000
                                    : 0;
    act = dp_attempt_failed(&r->at, dp_worker_fail_kind(e->kind), ra,
                            (uint64_t)tg_mono_us() ^ (uint64_t)(uintptr_t)r,
                            &index, &delay);
    if (act == DP_ATTEMPT_WAIT) {
        r->retry_at_us = tg_mono_us() + delay * 1000;
        return; /* dp_worker_check_timeouts starts it */
    }
    if (!dp_worker_try(w, r, act, index)) {
        dp_worker_fail(w, r);
    }
}

static void
dp_worker_on_done(dp_worker *w, dp_req *r, CURLcode res)
{
    dp_call_err e;
    tg_buf      body;
    unsigned    status = 0;

    tg_buf_init(&body, 0);
    switch (dp_transfer_finished(w->xf, r, res, &e, &body, &status)) {
    case DP_TRANSFER_CANCELLED:
        dp_transfer_release(w->xf, r);
        dp_usage_report(w->h, r, 499);
        dp_worker_finish(w, r);
        break;
    case DP_TRANSFER_FAILED:
        dp_worker_attempt_failed(w, r, &e, &body);
        break;
    case DP_TRANSFER_ANSWERED:
        dp_transfer_release(w->xf, r);
        dp_worker_conclude(w, r, status);
        break;
    }
    tg_buf_fini(&body);
}

/* ---- the intent ----------------------------------------------------- */

/* dp_worker_write_intent records the request's intent before anything
 * goes upstream; dp_worker_intent_done starts the first attempt. */
static void
dp_worker_write_intent(dp_worker *w, dp_req *r)
{
    tg_usage u;

    dp_usage_intent(w->h, r, &u);
    dp_req_ref(r); /* the spool's, released by dp_worker_spooled */
    if (dp_spool_record(w->h->spools[r->pdp_idx], DP_SPOOL_INTENT, &u,
                        dp_worker_spooled, r) != TG_OK) {
        dp_req_unref(r);
        dp_req_error(r, 503,
                     "The gateway could not record this request's usage, "
                     "so it was not sent; retry shortly.",
                     "server_error", NULL, "usage_spool_full");
        dp_worker_finish(w, r);
        return;
    }
    r->spool_wait = DP_WAIT_INTENT;
}

static void
dp_worker_intent_done(dp_worker *w, dp_req *r, tg_err rv)
{
    if (rv != TG_OK) {
        dp_admit_unrecorded(w->h, r);
        dp_worker_finish(w, r);
        return;
    }
    r->intent_written = true;
    if (r->cancelled) {
        dp_worker_finish(w, r); /* settles the intent at zero */
        return;
    }
    if (dp_host_stopping(w->h)) {
        dp_worker_shutting_down(w, r);
        return;
    }
    if (!dp_worker_next(w, r)) {
        dp_worker_fail(w, r);
    }
}

/* dp_worker_on_spooled continues a request after the spool recorded (or
 * refused) its intent or final report. */
static void
dp_worker_on_spooled(dp_worker *w, dp_req *r, tg_err rv)
{
    dp_spool_wait wait = (dp_spool_wait)r->spool_wait;

    if (r->finished) {
        return;
    }
    r->spool_wait = DP_WAIT_NONE;
    if (wait == DP_WAIT_INTENT) {
        dp_worker_intent_done(w, r, rv);
    } else if (wait == DP_WAIT_FINAL) {
        dp_worker_deliver(w, r);
    }
}

/* ---- guardrails ----------------------------------------------------- */

/* dp_worker_on_guard runs on the guard loader thread: the set a request
 * waited for is here, or cannot be had. */
static void
dp_worker_on_guard(void *arg, tg_err err, const char *why)
{
    dp_req *r = arg;

    dp_worker_post(r->worker, DP_JOB_GUARD, r, err, why);
    dp_req_unref(r); /* the wait's ref */
}

/* dp_worker_guarded runs r's input guardrails with set (taken; NULL:
 * unavailable, why), then records its intent. */
static void
dp_worker_guarded(dp_worker *w, dp_req *r, tg_guard_set *set, const char *why)
{
    if (!dp_admit_guarded(w->h, r, set, why)) {
        dp_worker_finish(w, r);
        return;
    }
    dp_worker_write_intent(w, r);
}

/* dp_worker_guard gets the guard set of r's decision (or waits for it). */
static void
dp_worker_guard(dp_worker *w, dp_req *r)
{
    tg_guard_set *set;

    if (r->dec.n_guards == 0) {
        dp_worker_write_intent(w, r);
        return;
    }
    dp_req_ref(r); /* the wait's, released by dp_worker_on_guard */
    set = dp_guard_get(w->h->guards[r->pdp_idx], r->dec.guard_set,
                       dp_worker_on_guard, r);
    if (set != NULL) {
        dp_req_unref(r); /* here already: no callback comes */
        dp_worker_guarded(w, r, set, NULL);
    }
}

static void
dp_worker_guard_came(dp_worker *w, dp_req *r, tg_err err, const char *why)
{
    tg_guard_set *set = NULL;

    if (r->finished) {
        return;
    }
    if (r->cancelled) {
        dp_worker_finish(w, r);
        return;
    }
    if (dp_host_stopping(w->h)) {
        dp_worker_shutting_down(w, r);
        return;
    }
    if (err == TG_OK &&
        (set = dp_guard_get(w->h->guards[r->pdp_idx], r->dec.guard_set, NULL,
                            NULL)) == NULL) {
        why = "it was dropped from the cache before it could be used";
    }
    dp_worker_guarded(w, r, set, why);
}

/* ---- arrival and decision ------------------------------------------- */

static void
dp_worker_decided(dp_worker *w, dp_req *r, tg_err err, const char *why)
{
    if (r->finished) {
        return; /* answered at shutdown while the PDP call was out */
    }
    if (r->decide_sent_us > 0) {
        r->pdp_us = tg_mono_us() - r->decide_sent_us;
    }
    if (err == TG_OK && r->may_keep && r->dec.reuse_ms > 0) {
        tg_decide q; /* rebuilt only for a decision that may be kept */

        dp_admit_decide(r, &q);
        dp_reuse_keep(w->h->reuse, &q, &r->dec, &r->reuse_tag);
    }
    if (r->cancelled) {
        /* A decision came: an allow's reservation is freed now (a deny
         * holds none); none came: it is abandoned by its request id. */
        r->have_decision = err == TG_OK;
        dp_worker_finish(w, r);
        return;
    }
    if (dp_host_stopping(w->h)) {
        dp_worker_shutting_down(w, r);
        return;
    }
    if (!dp_admit_decided(w->h, r, err, why)) {
        dp_worker_finish(w, r);
        return;
    }
    dp_worker_guard(w, r);
}

static void
dp_worker_start(dp_worker *w, dp_req *r)
{
    tg_decide d;
    tg_err    rv;

    r->next   = w->active;
    w->active = r;
    dp_req_ref(r); /* the worker's ref, released by dp_worker_finish */
    atomic_fetch_add(&w->h->m->inflight, 1);
    tg_buf_init(&r->err_body, 1u << 20);
    tg_buf_init(&r->ans_body, DP_UP_BODY_MAX);
    tg_buf_init(&r->cap_stream, 0);
    tg_buf_init(&r->content, 0);
    r->hold_answers = r->has_key; /* answered once its record is spooled */
    r->pdp_idx      = (uint8_t)dp_host_pick(w->h);
    if (r->pdp_idx > 0) {
        atomic_fetch_add(&w->h->m->pdp_fallback_decisions, 1);
    }
    dp_trace_begin(w->h, r);
    if (!dp_admit_arrived(w->h, r)) {
        dp_worker_finish(w, r);
        return;
    }
    dp_admit_decide(r, &d);
    if (r->pdp_idx == 0 && dp_reuse_find(w->h->reuse, &d, &r->dec)) {
        r->reused = true;
        atomic_fetch_add(&w->h->m->decisions_reused, 1);
        dp_worker_decided(w, r, TG_OK, NULL);
        return;
    }
    r->may_keep =
        r->pdp_idx == 0 && dp_reuse_tag_now(w->h->reuse, &r->reuse_tag);
    if (!dp_pdp_connected(w->h->pdps[r->pdp_idx])) {
        /* Fail fast: waiting out the deadline would only add latency. */
        dp_worker_decided(w, r, TG_ECLOSED, "no connection to the PDP");
        return;
    }
    dp_req_ref(r);            /* the PDP call's ref */
    r->decide_sent    = true; /* before the call: its callback may run first */
    r->decide_sent_us = tg_mono_us();
    rv                = dp_pdp_decide(w->h->pdps[r->pdp_idx], &d,
                                      w->h->cfg->dataplane.pdp_timeout_ms,
                                      dp_worker_on_decision, r);
    if (rv != TG_OK) {
        r->decide_sent = false; /* never sent: nothing to abandon */
        dp_req_unref(r);
        dp_worker_decided(w, r, rv, tg_strerror(rv));
    }
}

/* ---- cancellation and timeouts -------------------------------------- */

static void
dp_worker_cancelled(dp_worker *w, dp_req *r, bool resume)
{
    if (r->finished || r->cancelled) {
        return;
    }
    r->cancelled = true;
    atomic_fetch_add(&w->h->m->client_disconnects, 1);
    if (r->easy != NULL || r->retry_at_us > 0) {
        /* Stop the upstream transfer now; meter what it produced. */
        dp_transfer_release(w->xf, r);
        dp_usage_report(w->h, r, 499);
        if (resume) {
            if (r->up_streaming) {
                dp_req_stream_end(r, NULL);
            } else {
                dp_req_error(r, 499, "The client closed the connection.",
                             "invalid_request_error", NULL, "client_closed");
            }
        }
        dp_worker_finish(w, r);
    }
    /* Otherwise a PDP call is in flight: dp_worker_decided finishes it. */
}

/* dp_worker_client_hung_up tells, at most every DP_HANGUP_CHECK_US,
 * whether the client of a request waiting for the provider closed its
 * end (dp_req_client_hung_up). */
static bool
dp_worker_client_hung_up(dp_req *r, int64_t now)
{
    if (r->client_fd < 0 || now - r->hangup_checked_us < DP_HANGUP_CHECK_US) {
        return false;
    }
    r->hangup_checked_us = now;
    return dp_req_client_hung_up(r);
}

/* dp_worker_paused: the transfer waits for the client to read (its
 * silence is the client's, not the provider's). */
static bool
dp_worker_paused(dp_req *r)
{
    bool paused;

    pthread_mutex_lock(&r->mtx);
    paused = r->curl_paused;
    pthread_mutex_unlock(&r->mtx);
    if (paused) {
        r->last_data_us = tg_mono_us();
    }
    return paused;
}

/* dp_worker_slow_start fails an attempt whose provider sent nothing
 * within fb_us: the next deployment may be quicker. */
static void
dp_worker_slow_start(dp_worker *w, dp_req *r, int64_t fb_us)
{
    dp_call_err e;

    memset(&e, 0, sizeof(e));
    e.kind   = DP_FAIL_RETRY;
    e.status = 504;
    snprintf(e.type, sizeof(e.type), "server_error");
    snprintf(e.code, sizeof(e.code), "upstream_timeout");
    snprintf(e.message, sizeof(e.message),
             "The provider behind deployment '%s' sent nothing "
             "within %lld ms.",
             r->dep->dep->id, (long long)(fb_us / 1000));
    r->up_status = 0;
    dp_worker_attempt_failed(w, r, &e, NULL);
}

/* dp_worker_idle ends a stream whose provider went silent for idle_us. */
static void
dp_worker_idle(dp_worker *w, dp_req *r, int64_t idle_us)
{
    char msg[200];

    snprintf(msg, sizeof(msg),
             "The provider behind deployment '%s' sent nothing for "
             "%lld ms in the middle of the stream.",
             r->dep->dep->id, (long long)(idle_us / 1000));
    dp_transfer_cut(w->xf, r, "idle stream", msg);
    dp_transfer_release(w->xf, r);
    dp_worker_conclude(w, r, 200);
}

static void
dp_worker_check_timeouts(dp_worker *w)
{
    const tg_dp_config *c    = &w->h->cfg->dataplane;
    int64_t             now  = tg_mono_us();
    int64_t             fb   = c->first_byte_timeout_ms * 1000;
    int64_t             idle = c->idle_timeout_ms * 1000;
    dp_req             *r    = w->active;

    while (r != NULL) {
        dp_req *next = r->next;
        bool    live = r->easy != NULL || r->retry_at_us > 0;
        if (live && dp_worker_client_hung_up(r, now)) {
            /* Answer so MHD resumes, notices the closed socket and frees
             * the connection; the upstream transfer stops now. */
            dp_worker_cancelled(w, r, true);
        } else if (r->retry_at_us > 0 && now >= r->retry_at_us) {
            r->retry_at_us = 0;
            if (!dp_worker_next(w, r)) {
                dp_worker_fail(w, r);
            }
        } else if (r->easy != NULL && !r->up_got_bytes &&
                   now - r->up_started_us > fb) {
            dp_worker_slow_start(w, r, fb);
        } else if (r->easy != NULL && r->up_streaming &&
                   now - r->last_data_us > idle && !dp_worker_paused(r)) {
            dp_worker_idle(w, r, idle);
        }
        r = next;
    }
}

/* ---- the thread ----------------------------------------------------- */

static void
dp_worker_run_jobs(dp_worker *w, dp_job *j)
{
    while (j != NULL) {
        dp_job *next = j->next;
        dp_req *r    = j->req;
        tg_log_context(r->request_id, r->trace_id);
        switch (j->type) {
        case DP_JOB_NEW:
            dp_worker_start(w, r);
            break;
        case DP_JOB_DECISION:
            dp_worker_decided(w, r, j->err, j->why);
            break;
        case DP_JOB_GUARD:
            dp_worker_guard_came(w, r, j->err, j->why);
            break;
        case DP_JOB_CANCEL:
            dp_worker_cancelled(w, r, false);
            break;
        case DP_JOB_SPOOLED:
            dp_worker_on_spooled(w, r, j->err);
            break;
        case DP_JOB_UNPAUSE:
            dp_transfer_unpause(r);
            break;
        }
        tg_log_context(NULL, NULL);
        dp_req_unref(r);
        free(j);
        j = next;
    }
}

/* dp_worker_wait waits for the worker's transfers, a job, or the loop it
 * drives; that loop runs when its fd is readable, when it was kicked,
 * and when its own timeout comes (a loop with nothing ready costs no
 * call). */
static void
dp_worker_wait(dp_worker *w)
{
    int64_t wait = w->active != NULL ? 50 : 1000;
    int64_t lw   = -1;
    bool    due  = false;

    if (w->loop != NULL) {
        lw   = w->loop->timeout_ms(w->loop->arg);
        due  = atomic_exchange(&w->loop_due, false) || lw == 0;
        wait = due ? 0 : lw > 0 && lw < wait ? lw : wait;
    }
    if (lw > 0 && lw <= wait) {
        due = true; /* the loop's timeout is what ends this wait */
    }
    if (dp_transfer_wait(w->xf, (int)wait,
                         w->loop != NULL ? w->loop->fd : -1) ||
        due) {
        w->loop->run(w->loop->arg);
    }
}

static void *
dp_worker_main(void *arg)
{
    dp_worker *w = arg;

    for (;;) {
        dp_job  *jobs;
        dp_req  *r;
        CURLcode res;
        bool     stop;

        dp_worker_wait(w);
        pthread_mutex_lock(&w->qlock);
        jobs     = w->qhead;
        w->qhead = w->qtail = NULL;
        stop                = w->stop;
        pthread_mutex_unlock(&w->qlock);
        dp_worker_run_jobs(w, jobs);
        dp_transfer_perform(w->xf);
        while ((r = dp_transfer_next_done(w->xf, &res)) != NULL) {
            tg_log_context(r->request_id, r->trace_id);
            dp_worker_on_done(w, r, res);
            tg_log_context(NULL, NULL);
        }
        dp_worker_check_timeouts(w);
        if (stop) {
            break;
        }
    }
    return NULL;
}

tg_err
dp_worker_create(dp_worker **out, const dp_host *h, unsigned index,
                 const dp_worker_loop *loop)
{
    dp_worker *w = calloc(1, sizeof(*w));
    tg_err     rv;

    if (w == NULL) {
        return TG_ENOMEM;
    }
    w->h     = h;
    w->index = index;
    w->loop  = loop;
    if ((rv = dp_transfer_create(&w->xf, h)) != TG_OK) {
        free(w);
        return rv;
    }
    pthread_mutex_init(&w->qlock, NULL);
    if (pthread_create(&w->thread, NULL, dp_worker_main, w) != 0) {
        dp_transfer_destroy(w->xf);
        pthread_mutex_destroy(&w->qlock);
        free(w);
        return TG_ESYS;
    }
    *out = w;
    return TG_OK;
}

/* dp_worker_stop_one answers one request still active when the worker
 * stops. */
static void
dp_worker_stop_one(dp_worker *w, dp_req *r)
{
    if (r->spool_wait == DP_WAIT_FINAL) {
        /* Its usage is queued (dp_spool_close writes it): the answer it
         * prepared goes out as it is. */
        r->spool_wait = DP_WAIT_NONE;
        dp_worker_deliver(w, r);
        return;
    }
    if (r->up_streaming) {
        dp_req_stream_end(r, "The gateway is shutting down.");
    } else {
        dp_req_error(r, 503, "The gateway is shutting down; retry.",
                     "server_error", NULL, "shutting_down");
    }
    if (r->easy != NULL) {
        dp_transfer_release(w->xf, r);
        dp_usage_report(w->h, r, 503);
    }
    dp_worker_finish(w, r);
}

void
dp_worker_stop(dp_worker *w)
{
    dp_job *left;

    pthread_mutex_lock(&w->qlock);
    w->stop = true;
    pthread_mutex_unlock(&w->qlock);
    dp_transfer_wakeup(w->xf);
    pthread_join(w->thread, NULL);
    /* Jobs that came in after the last loop, then whatever is active. */
    pthread_mutex_lock(&w->qlock);
    left     = w->qhead;
    w->qhead = w->qtail = NULL;
    pthread_mutex_unlock(&w->qlock);
    dp_worker_run_jobs(w, left);
    while (w->active != NULL) {
        dp_worker_stop_one(w, w->active);
    }
}

void
dp_worker_destroy(dp_worker *w)
{
    dp_job *left;

    if (w == NULL) {
        return;
    }
    /* Whatever was posted after stop (cancels from connections MHD closed)
     * finds its request finished; it only drops its reference. */
    left     = w->qhead;
    w->qhead = w->qtail = NULL;
    dp_worker_run_jobs(w, left);
    dp_transfer_destroy(w->xf);
    pthread_mutex_destroy(&w->qlock);
    free(w);
}
