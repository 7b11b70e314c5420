#include "dp_worker.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_anth_client.h"
#include "dp_keycache.h"
#include "dp_router.h"
#include "dp_server.h"
#include "tg_jstrict.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_OUT_HIGH (1u << 20)      /* pause upstream above this backlog */
#define DP_UP_BODY_MAX (64u << 20)  /* largest non-stream upstream reply */
#define DP_SSE_EVENT_MAX (8u << 20) /* largest single stream event */
#define DP_HANGUP_CHECK_US (200 * 1000) /* how often to look for hang-ups */
/* Attempt groups beyond the model's fallbacks: tried only after an error
 * of that kind. */
#define DP_GROUP_OTHER 60   /* fallbacks a route rule added */
#define DP_GROUP_CONTEXT 100
#define DP_GROUP_CONTENT 200
#define DP_ATTEMPTS_MAX 32
/* Output tokens an intent counts when the request sets no max_tokens: the
 * PDP's worst case (PDP_LIMITS_OUTPUT_CAP). */
#define DP_OUTPUT_WORST 4096

typedef enum dp_job_type {
    DP_JOB_NEW,
    DP_JOB_DECISION,
    DP_JOB_CANCEL,
    DP_JOB_UNPAUSE,
    DP_JOB_SPOOLED, /* the spool recorded (or refused) its record */
} dp_job_type;

/* What a request waits for from the spool (dp_req.spool_wait). */
typedef enum dp_spool_wait {
    DP_WAIT_NONE = 0,
    DP_WAIT_INTENT, /* then it goes upstream */
    DP_WAIT_FINAL,  /* then its answer is delivered */
} dp_spool_wait;

/* The answer a request delivers once its usage is recorded. */
typedef enum dp_ans_kind {
    DP_ANS_NONE = 0,
    DP_ANS_COMPLETE,   /* ans_status + ans_body */
    DP_ANS_STREAM_END, /* ans_body bytes, then ans_msg as an error event */
} dp_ans_kind;

typedef struct dp_job dp_job;
struct dp_job {
    dp_job     *next;
    dp_job_type type;
    dp_req     *req; /* the job holds a ref */
    tg_err      err;
    char        why[160];
};

struct dp_worker {
    dp_server      *srv;
    unsigned        index;
    pthread_t       thread;
    CURLM          *multi;
    pthread_mutex_t qlock;
    dp_job         *qhead;
    dp_job         *qtail;
    bool            stop; /* under qlock */
    dp_req         *active;
    tg_buf          scratch; /* stream events of one write callback */
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
    curl_multi_wakeup(w->multi);
    return true;
}

bool
dp_worker_submit(dp_worker *w, dp_req *r)
{
    r->worker = w;
    return dp_worker_post(w, DP_JOB_NEW, r, TG_OK, NULL);
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

/* ---- answering the client ------------------------------------------- */

static void
dp_worker_count_status(dp_server *srv, unsigned status)
{
    unsigned cls = status / 100;

    atomic_fetch_add(&srv->m.responses[cls < 6 ? cls : 5], 1);
}

/* dp_worker_respond hands a whole response to the MHD thread. */
static void
dp_worker_respond(dp_req *r, unsigned status, const char *body, size_t len)
{
    pthread_mutex_lock(&r->mtx);
    if (r->phase == DP_PHASE_PENDING && !r->client_gone) {
        r->phase  = DP_PHASE_COMPLETE;
        r->status = status;
        tg_buf_reset(&r->out);
        if (tg_buf_append(&r->out, body, len) != TG_OK) {
            r->status = 500;
            tg_buf_reset(&r->out);
        }
        r->out_done = true;
        if (r->have_decision) {
            r->include_revision = true;
            r->revision         = r->dec.policy_revision;
        }
        if (r->dep != NULL) {
            snprintf(r->served_by, sizeof(r->served_by), "%s",
                     r->dep->dep->id);
        }
        dp_server_resume_locked(r);
    }
    pthread_mutex_unlock(&r->mtx);
    dp_worker_count_status(r->srv, status);
}

static void
dp_worker_error(dp_req *r, unsigned status, const char *message,
                const char *type, const char *param, const char *code)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    if (dp_client_error(r->endpoint, &b, message, type, param, code) ==
        TG_OK) {
        dp_worker_respond(r, status, b.data, b.len);
    } else {
        dp_worker_respond(r, 500, "", 0);
    }
    tg_buf_fini(&b);
}

/* ---- usage ---------------------------------------------------------- */

/* dp_worker_usage builds the request's final usage report; false when
 * none is due (nothing went upstream, nothing was reserved or recorded).
 * A request whose decision never came reports by its request id (the PDP
 * may still reserve for it): abandoned when nothing went upstream. */
static bool
dp_worker_usage(dp_req *r, unsigned status, tg_usage *u)
{
    const dp_upstream *up       = r->dep;
    bool               held     = r->have_decision &&
                                  r->dec.reservation_id[0] != '\0';
    bool               orphaned = r->decide_sent && !r->have_decision;

    if (r->usage_reported ||
        (up == NULL && !held && !orphaned && !r->intent_written)) {
        return false;
    }
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", r->request_id);
    snprintf(u->key_id, sizeof(u->key_id), "%s", r->dec.key_id);
    snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", r->dec.tenant_id);
    /* The model that served it (a fallback's, when one did). */
    snprintf(u->model, sizeof(u->model), "%s",
             up != NULL ? up->dep->model : r->chat.model);
    /* Without a deployment the report only settles what the decision
     * reserved (zero tokens), so the PDP frees it now, not at expiry. */
    snprintf(u->deployment_id, sizeof(u->deployment_id), "%s",
             up != NULL ? up->dep->id : "");
    snprintf(u->reservation_id, sizeof(u->reservation_id), "%s",
             orphaned ? r->request_id : r->dec.reservation_id);
    u->abandoned = orphaned && up == NULL;
    snprintf(u->user, sizeof(u->user), "%s", r->chat.user);
    u->endpoint = r->endpoint;
    u->stream   = r->chat.stream;
    if (r->usage.found) {
        u->prompt_tokens     = r->usage.prompt_tokens;
        u->completion_tokens = r->usage.completion_tokens;
        u->cached_tokens     = r->usage.cached_tokens;
    } else if (r->up_streaming || (status >= 200 && status < 300) ||
               (r->cancelled && r->up_got_bytes)) {
        /* The provider never said: count what we saw, and say so (a
         * provider's error answer is not charged). */
        u->prompt_tokens     = r->chat.prompt_tokens_estimate;
        u->completion_tokens = r->content_events;
        u->estimated         = true;
    }
    u->status      = status;
    u->started_ms  = r->started_ms;
    u->duration_ms = (tg_mono_us() - r->started_us) / 1000;
    r->usage_reported = true;
    atomic_fetch_add(&r->srv->m.prompt_tokens, (uint64_t)u->prompt_tokens);
    atomic_fetch_add(&r->srv->m.completion_tokens,
                     (uint64_t)u->completion_tokens);
    return true;
}

/* dp_worker_report queues the final report without waiting for it (the
 * client is gone, or the gateway is stopping). */
static void
dp_worker_report(dp_req *r, unsigned status)
{
    tg_usage u;

    if (dp_worker_usage(r, status, &u) &&
        dp_spool_put(r->srv->spool, &u) != TG_OK) {
        tg_error("request %s: could not queue its usage report (out of "
                 "memory)",
                 r->request_id);
    }
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

static int64_t dp_worker_cost(const dp_server *srv, const dp_upstream *up);

/* dp_worker_intent_usage is the request's intent: its worst case, what
 * the PDP reserved (settled as estimated if the data plane dies before
 * the final report), at the dearest deployment it may be sent to (a
 * fallback may be dearer than the first). */
static void
dp_worker_intent_usage(dp_worker *w, dp_req *r, tg_usage *u)
{
    const dp_upstream *up = &w->srv->upstreams[r->order[0]];
    int64_t            out;

    for (uint32_t i = 1; i < r->n_order; i++) {
        const dp_upstream *o = &w->srv->upstreams[r->order[i]];
        if (dp_worker_cost(w->srv, o) > dp_worker_cost(w->srv, up)) {
            up = o;
        }
    }

    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", r->request_id);
    snprintf(u->key_id, sizeof(u->key_id), "%s", r->dec.key_id);
    snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", r->dec.tenant_id);
    snprintf(u->model, sizeof(u->model), "%s", up->dep->model);
    snprintf(u->deployment_id, sizeof(u->deployment_id), "%s", up->dep->id);
    snprintf(u->reservation_id, sizeof(u->reservation_id), "%s",
             r->have_decision ? r->dec.reservation_id : r->request_id);
    snprintf(u->user, sizeof(u->user), "%s", r->chat.user);
    out = r->dec.clamp_max_tokens > 0 ? r->dec.clamp_max_tokens
          : r->chat.max_tokens > 0    ? r->chat.max_tokens
          : r->endpoint == TG_EP_EMBEDDINGS
              ? 0
              : DP_OUTPUT_WORST; /* what the PDP reserves without one */
    u->endpoint          = r->endpoint;
    u->stream            = r->chat.stream;
    u->prompt_tokens     = r->chat.prompt_tokens_estimate;
    u->completion_tokens = out;
    u->estimated         = true;
    u->started_ms        = r->started_ms;
}

/* ---- lifecycle ------------------------------------------------------ */

/* dp_worker_health_end closes the current attempt's health bracket. A
 * cancelled probe gives its claim back. */
static void
dp_worker_health_end(dp_worker *w, dp_req *r)
{
    if (r->health_open && r->dep != NULL) {
        dp_health_end(w->srv->health, r->dep->index);
        if (r->probe) {
            dp_health_abandon(w->srv->health, r->dep->index);
        }
    }
    r->health_open = false;
    r->probe       = false;
}

/* dp_worker_failed_before: this request already counted a failure of
 * deployment index; records it otherwise. */
static bool
dp_worker_failed_before(dp_req *r, uint32_t index)
{
    for (uint32_t i = 0; i < r->n_failed; i++) {
        if (r->failed[i] == index) {
            return true;
        }
    }
    if (r->n_failed < TG_MSG_TARGETS_MAX) {
        r->failed[r->n_failed++] = index;
    }
    return false;
}

static void
dp_worker_verdict(dp_worker *w, dp_req *r, bool ok, const char *why)
{
    int64_t now = tg_mono_us() / 1000;

    if (r->dep == NULL || !r->health_open) {
        return;
    }
    if (ok) {
        dp_health_success(w->srv->health, r->dep->index, now);
    } else if (r->no_verdict) {
        r->no_verdict = false;
        if (r->probe) {
            dp_health_abandon(w->srv->health, r->dep->index);
        }
    } else if (r->probe || !dp_worker_failed_before(r, r->dep->index)) {
        /* A deployment's failures count requests, not attempts: one
         * request retried three times is one failure (a probe always
         * counts: it decides the circuit). */
        dp_health_failure(w->srv->health, r->dep->index, now, why);
    }
    r->probe = false; /* the verdict settles the claim */
}

static void
dp_worker_release_upstream(dp_worker *w, dp_req *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(w->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    dp_worker_health_end(w, r);
    /* Keep what the attempt metered for the usage report. */
    if (r->call.up != NULL) {
        if (r->call.usage.found) {
            r->usage = r->call.usage;
        }
        r->content_events += r->call.content_events;
        r->call.content_events = 0;
    }
    dp_call_fini(&r->call);
}

static void
dp_worker_finish(dp_worker *w, dp_req *r)
{
    dp_req **pp;

    if (r->finished) {
        return;
    }
    dp_worker_release_upstream(w, r);
    if (!r->usage_reported) {
        /* Whatever is still held or recorded for it is settled now: a
         * reservation, an intent, a decision that may still come. */
        unsigned status;
        pthread_mutex_lock(&r->mtx);
        status = r->status != 0 ? r->status : 499;
        pthread_mutex_unlock(&r->mtx);
        dp_worker_report(r, status);
    }
    r->finished = true;
    tg_buf_fini(&r->ans_body);
    tg_buf_fini(&r->up_resp);
    dp_sse_fini(&r->sse);
    dp_chat_fini(&r->chat);
    for (pp = &w->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    atomic_fetch_sub(&r->srv->m.inflight, 1);
    dp_req_unref(r); /* the worker's ref */
}

/* ---- answers after their usage is recorded -------------------------- */

static void dp_worker_end_stream(dp_req *r, const char *error_message);

/* dp_worker_deliver hands the prepared answer to the client and finishes
 * the request. */
static void
dp_worker_deliver(dp_worker *w, dp_req *r)
{
    switch ((dp_ans_kind)r->ans_kind) {
    case DP_ANS_COMPLETE:
        dp_worker_respond(r, r->ans_status, r->ans_body.data,
                          r->ans_body.len);
        break;
    case DP_ANS_STREAM_END:
        if (r->ans_body.len > 0) {
            pthread_mutex_lock(&r->mtx);
            if (tg_buf_append(&r->out, r->ans_body.data, r->ans_body.len) !=
                TG_OK) {
                tg_warn("request %s: out of memory for the end of the "
                        "stream",
                        r->request_id);
            }
            pthread_mutex_unlock(&r->mtx);
        }
        dp_worker_end_stream(r, r->ans_msg[0] != '\0' ? r->ans_msg : NULL);
        break;
    case DP_ANS_NONE: break;
    }
    r->ans_kind = DP_ANS_NONE;
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

    if (!dp_worker_usage(r, status, &u)) {
        dp_worker_deliver(w, r);
        return;
    }
    dp_req_ref(r); /* the spool's, released by dp_worker_spooled */
    if (dp_spool_record(w->srv->spool, DP_SPOOL_FINAL, &u, dp_worker_spooled,
                        r) != TG_OK) {
        /* Stopping (or out of memory): queued without a callback. */
        dp_req_unref(r);
        if (dp_spool_put(w->srv->spool, &u) != TG_OK) {
            tg_error("request %s: could not queue its usage report (out of "
                     "memory)",
                     r->request_id);
        }
        dp_worker_deliver(w, r);
        return;
    }
    r->spool_wait = DP_WAIT_FINAL;
}

/* dp_worker_answer_error prepares an error answer in the client's format. */
static void
dp_worker_answer_error(dp_req *r, unsigned status, const char *message,
                       const char *type, const char *param, const char *code)
{
    r->ans_kind   = DP_ANS_COMPLETE;
    r->ans_status = status;
    tg_buf_reset(&r->ans_body);
    if (dp_client_error(r->endpoint, &r->ans_body, message, type, param,
                        code) != TG_OK) {
        r->ans_status = 500;
        tg_buf_reset(&r->ans_body);
    }
}

/* dp_worker_answer_stream_end prepares the end of a stream: the bytes in
 * tail (may be NULL), then message as an error event (NULL: none). */
static void
dp_worker_answer_stream_end(dp_req *r, const tg_buf *tail,
                            const char *message)
{
    r->ans_kind = DP_ANS_STREAM_END;
    tg_buf_reset(&r->ans_body);
    if (tail != NULL && tail->len > 0 &&
        tg_buf_append(&r->ans_body, tail->data, tail->len) != TG_OK) {
        tg_warn("request %s: out of memory for the end of the stream",
                r->request_id);
    }
    snprintf(r->ans_msg, sizeof(r->ans_msg), "%s",
             message != NULL ? message : "");
}

/* ---- upstream ------------------------------------------------------- */

typedef struct dp_sse_ctx {
    dp_worker *w;
    dp_req    *r;
} dp_sse_ctx;

static int
dp_worker_on_event(void *arg, const char *ev, size_t len)
{
    dp_sse_ctx *c = arg;

    return dp_call_event(&c->r->call, ev, len, &c->w->scratch) == TG_OK ? 0
                                                                        : 1;
}

/* dp_worker_commit starts the client's 200 stream: from here on nothing
 * is retried. Call with r->mtx held. */
static void
dp_worker_commit(dp_worker *w, dp_req *r)
{
    (void)w;
    dp_worker_count_status(r->srv, 200);
    r->up_streaming     = true;
    r->phase            = DP_PHASE_STREAMING;
    r->status           = 200;
    r->include_revision = true;
    r->revision         = r->dec.policy_revision;
    snprintf(r->served_by, sizeof(r->served_by), "%s", r->dep->dep->id);
    dp_server_resume_locked(r);
}

static size_t
dp_worker_write_cb(char *data, size_t size, size_t n, void *arg)
{
    dp_req    *r   = arg;
    dp_worker *w   = r->worker;
    size_t     len = size * n;

    if (r->up_status == 0) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->up_status);
    }
    r->up_got_bytes = true;
    r->last_data_us = tg_mono_us();
    if (!(r->chat.stream && r->up_status == 200)) {
        return tg_buf_append(&r->up_resp, data, len) == TG_OK ? len : 0;
    }
    pthread_mutex_lock(&r->mtx);
    if (r->client_gone) {
        pthread_mutex_unlock(&r->mtx);
        return 0; /* aborts the transfer */
    }
    if (r->out.len - r->out_off > DP_OUT_HIGH) {
        r->curl_paused = true;
        pthread_mutex_unlock(&r->mtx);
        return CURL_WRITEFUNC_PAUSE;
    }
    bool committed = false;
    if (!r->up_streaming) {
        dp_worker_commit(w, r);
        committed = true;
    }
    pthread_mutex_unlock(&r->mtx);
    if (committed) {
        /* The shared health table, never under the request's lock. */
        dp_worker_verdict(w, r, true, NULL);
        dp_health_ttft(w->srv->health, r->dep->index,
                       tg_mono_us() - r->up_started_us);
    }

    tg_buf_reset(&w->scratch);
    {
        dp_sse_ctx ctx = {w, r};
        if (dp_sse_feed(&r->sse, data, len, dp_worker_on_event, &ctx) !=
            TG_OK) {
            return 0;
        }
    }
    if (w->scratch.len > 0) {
        pthread_mutex_lock(&r->mtx);
        if (tg_buf_append(&r->out, w->scratch.data, w->scratch.len) != TG_OK) {
            pthread_mutex_unlock(&r->mtx);
            return 0;
        }
        dp_server_resume_locked(r);
        pthread_mutex_unlock(&r->mtx);
    }
    return len;
}

static size_t
dp_worker_header_cb(char *data, size_t size, size_t n, void *arg)
{
    dp_req *r   = arg;
    size_t  len = size * n;

    if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
        const char *v = data + 12;
        size_t      k = 0;
        while (v < data + len && *v == ' ') {
            v++;
        }
        while (v + k < data + len && k + 1 < sizeof(r->retry_after) &&
               v[k] >= '0' && v[k] <= '9') {
            k++;
        }
        memcpy(r->retry_after, v, k);
        r->retry_after[k] = '\0';
    }
    return len;
}

static size_t
dp_worker_read_cb(char *buf, size_t size, size_t n, void *arg)
{
    dp_req *r    = arg;
    size_t  room = size * n;
    size_t  left = r->call.len - r->body_off;

    if (room > left) {
        room = left;
    }
    memcpy(buf, r->call.body + r->body_off, room);
    r->body_off += room;
    return room;
}

static int
dp_worker_seek_cb(void *arg, curl_off_t offset, int origin)
{
    (void)arg;
    (void)offset;
    (void)origin;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* dp_worker_start_upstream sends the attempt to up. TG_EINVAL: this
 * deployment cannot take the request (msg says why); another error: the
 * gateway failed. */
static tg_err
dp_worker_start_upstream(dp_worker *w, dp_req *r, const dp_upstream *up,
                         char *msg, size_t msglen, char *param,
                         size_t paramlen)
{
    const tg_dp_config *c = &w->srv->cfg->dataplane;
    CURL               *e;
    tg_err              rv;

    rv = dp_call_prepare(&r->call, up, &r->cr, r->dec.clamp_max_tokens, msg,
                         msglen, param, paramlen);
    if (rv != TG_OK) {
        dp_call_fini(&r->call);
        return rv;
    }
    if ((e = curl_easy_init()) == NULL) {
        dp_call_fini(&r->call);
        snprintf(msg, msglen, "Could not start the upstream request.");
        return TG_ENOMEM;
    }
    r->easy           = e;
    r->dep            = up;
    r->up_status      = 0;
    r->up_got_bytes   = false;
    r->retry_after[0] = '\0';
    r->attempts++;
    tg_buf_fini(&r->up_resp);
    tg_buf_init(&r->up_resp, DP_UP_BODY_MAX);
    dp_sse_fini(&r->sse);
    dp_sse_init(&r->sse, DP_SSE_EVENT_MAX);
    curl_easy_setopt(e, CURLOPT_URL, r->call.url);
    /* The body through a read callback that cannot seek: libcurl never
     * sends it a second time on its own (it would resend a request whose
     * reused connection died, unseen by retries, breakers and budgets);
     * that attempt fails instead, and whether to send it again is the
     * router's decision, counted as one of its retries. */
    r->body_off = 0;
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, dp_worker_read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, dp_worker_seek_cb);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->call.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->call.hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, dp_worker_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, dp_worker_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* never: SSRF */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->total_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    r->up_started_us = tg_mono_us();
    r->last_data_us  = r->up_started_us;
    dp_health_begin(w->srv->health, up->index);
    r->health_open = true;
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        snprintf(msg, msglen, "Could not start the upstream request.");
        return TG_ENOMEM;
    }
    return TG_OK;
}

/* dp_worker_end_stream ends a stream the client is already reading: what
 * went wrong becomes a final error event, never a silent cut. */
static void
dp_worker_end_stream(dp_req *r, const char *error_message)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    if (error_message != NULL) {
        dp_client_error_event(r->endpoint, &b, error_message, "server_error",
                              "upstream_error");
    }
    pthread_mutex_lock(&r->mtx);
    if (tg_buf_error(&b) != TG_OK ||
        tg_buf_append(&r->out, b.data, b.len) != TG_OK) {
        tg_warn("request %s: out of memory for its final error event; the "
                "stream ends without it",
                r->request_id);
    }
    r->out_done = true;
    dp_server_resume_locked(r);
    pthread_mutex_unlock(&r->mtx);
    tg_buf_fini(&b);
}

/* dp_worker_sse_tail renders into w->scratch a last event that the
 * provider ended with EOF instead of a blank line ("data: [DONE]\n", or a
 * usage chunk with no newline at all): it would otherwise be lost, and its
 * usage with it; then whatever closes the client's stream in its format.
 * The caller sends it once the usage is recorded. */
static void
dp_worker_sse_tail(dp_worker *w, dp_req *r)
{
    dp_sse_ctx ctx = {w, r};

    tg_buf_reset(&w->scratch);
    dp_sse_finish(&r->sse, dp_worker_on_event, &ctx);
    dp_call_stream_end(&r->call, &w->scratch);
}

/* ---- attempts ------------------------------------------------------- */

/* dp_worker_fail answers the client with the last failure. */
static void
dp_worker_fail(dp_worker *w, dp_req *r)
{
    unsigned status = r->have_err ? r->err.status : 502;

    if (r->have_err && r->err.pass_body && r->err_body.len > 0) {
        r->ans_kind   = DP_ANS_COMPLETE;
        r->ans_status = status;
        tg_buf_reset(&r->ans_body);
        if (tg_buf_append(&r->ans_body, r->err_body.data, r->err_body.len) !=
            TG_OK) {
            r->ans_status = 500;
            tg_buf_reset(&r->ans_body);
        }
    } else if (r->have_err) {
        dp_worker_answer_error(r, status, r->err.message, r->err.type,
                               r->err.param[0] != '\0' ? r->err.param : NULL,
                               r->err.code);
    } else {
        dp_worker_answer_error(r, 503,
                               "No deployment could serve the request.",
                               "server_error", "model",
                               "no_deployment_available");
        status = 503;
    }
    dp_worker_conclude(w, r, status);
}

static bool dp_worker_next(dp_worker *w, dp_req *r);

/* dp_worker_attempt_failed records a failed attempt (e, and the body the
 * client would get in body) and moves on: the same deployment again after
 * a backoff, the next one, a context or content fallback, or the answer. */
static void
dp_worker_attempt_failed(dp_worker *w, dp_req *r, const dp_call_err *e,
                         const tg_buf *body)
{
    const tg_dp_config *c     = &w->srv->cfg->dataplane;
    uint32_t            want  = 0; /* the group to jump to; 0: next */
    int64_t             delay = 0;
    char                why[32];

    atomic_fetch_add(&w->srv->m.upstream_errors, 1);
    snprintf(why, sizeof(why), "HTTP %ld", r->up_status);
    dp_worker_verdict(w, r, e->kind != DP_FAIL_RETRY && e->kind != DP_FAIL_NEXT,
                      r->up_status != 0 ? why : e->message);
    r->err      = *e;
    r->have_err = true;
    tg_buf_reset(&r->err_body);
    if (e->pass_body && body != NULL &&
        tg_buf_append(&r->err_body, body->data, body->len) != TG_OK) {
        r->err.pass_body = false; /* the gateway's message instead */
    }
    tg_info("request %s: attempt %u at deployment %s failed (%s); %s",
            r->request_id, r->attempts, r->dep != NULL ? r->dep->dep->id : "-",
            e->code,
            e->kind == DP_FAIL_CLIENT ? "not retried" : "trying further");
    dp_worker_release_upstream(w, r);
    r->up_got_bytes = false; /* an error answer is not charged */
    switch (e->kind) {
    case DP_FAIL_CLIENT: dp_worker_fail(w, r); return;
    case DP_FAIL_CONTEXT: want = DP_GROUP_CONTEXT; break;
    case DP_FAIL_CONTENT: want = DP_GROUP_CONTENT; break;
    case DP_FAIL_RETRY: {
        int64_t ra = r->retry_after[0] != '\0'
                         ? strtoll(r->retry_after, NULL, 10) * 1000
                         : 0;
        /* The same deployment again, unless it asks for more patience
         * than we have or its retries are spent. */
        if (r->same_tries < (uint32_t)c->retries) {
            delay = dp_router_backoff_ms(r->same_tries, c->retry_backoff_ms,
                                         c->retry_backoff_max_ms, ra,
                                         (uint64_t)tg_mono_us() ^
                                             (uint64_t)(uintptr_t)r);
        } else {
            delay = -1;
        }
        /* Another deployment first, when there is one in the group. */
        if (r->pos + 1 < r->n_order &&
            r->group[r->pos + 1] == r->group[r->pos]) {
            delay = -1;
        }
        if (delay >= 0) {
            r->same_tries++;
            r->retry_at_us = tg_mono_us() + delay * 1000;
            return; /* dp_worker_check_timeouts starts it */
        }
        break;
    }
    case DP_FAIL_NEXT: break;
    }
    if (want != 0) {
        /* Skip to the first deployment of that kind of fallback. */
        uint32_t i = r->pos + 1;
        while (i < r->n_order && r->group[i] < want) {
            i++;
        }
        if (i >= r->n_order || r->group[i] < want ||
            r->group[i] >= want + 100) {
            dp_worker_fail(w, r);
            return;
        }
        r->pos = i - 1;
    } else {
        /* Ordinary fallbacks never reach the context/content-only ones. */
        if (r->pos + 1 >= r->n_order ||
            r->group[r->pos + 1] >= DP_GROUP_CONTEXT) {
            dp_worker_fail(w, r);
            return;
        }
    }
    r->pos++;
    r->same_tries = 0;
    if (!dp_worker_next(w, r)) {
        dp_worker_fail(w, r);
    }
}

/* dp_worker_next starts the attempt at order[pos], skipping deployments
 * that cooled down meanwhile or cannot take the request. False: nothing
 * left to try (r->err says why). */
/* dp_worker_class: ordinary groups, context-window fallbacks and
 * content-policy fallbacks are three classes an attempt never crosses
 * except on purpose (dp_worker_attempt_failed). */
static int
dp_worker_class(uint8_t group)
{
    return group >= DP_GROUP_CONTENT ? 2 : group >= DP_GROUP_CONTEXT ? 1 : 0;
}

static bool
dp_worker_next(dp_worker *w, dp_req *r)
{
    char msg[400];
    char param[64];
    int  cls = r->pos < r->n_order ? dp_worker_class(r->group[r->pos]) : 0;

    while (r->pos < r->n_order && r->attempts < DP_ATTEMPTS_MAX &&
           dp_worker_class(r->group[r->pos]) == cls) {
        const dp_upstream *up = &w->srv->upstreams[r->order[r->pos]];
        dp_health_state    hs =
            dp_health_acquire(w->srv->health, up->index, tg_mono_us() / 1000);
        tg_err rv;

        if (hs == DP_HEALTH_COOLDOWN) {
            /* Cooling down, or half-open with its one probe out. */
            if (!r->have_err) {
                memset(&r->err, 0, sizeof(r->err));
                r->have_err   = true;
                r->err.kind   = DP_FAIL_NEXT;
                r->err.status = 503;
                snprintf(r->err.type, sizeof(r->err.type), "server_error");
                snprintf(r->err.code, sizeof(r->err.code),
                         "no_healthy_deployment");
                snprintf(r->err.message, sizeof(r->err.message),
                         "Every deployment allowed for model '%s' is cooling "
                         "down after repeated failures; retry shortly.",
                         r->chat.model);
                snprintf(r->retry_after, sizeof(r->retry_after), "%d",
                         (int)((w->srv->cfg->dataplane.cooldown_ms + 999) /
                               1000));
            }
            r->pos++;
            continue;
        }
        r->probe = hs == DP_HEALTH_PROBE;
        rv       = dp_worker_start_upstream(w, r, up, msg, sizeof(msg),
                                            param, sizeof(param));
        if (rv == TG_OK) {
            return true;
        }
        if (r->probe && !r->health_open) {
            /* Never sent: the probe claim goes back unused. */
            dp_health_abandon(w->srv->health, up->index);
            r->probe = false;
        }
        dp_worker_release_upstream(w, r);
        r->dep = NULL;
        /* An earlier provider failure says more than "this one cannot
         * take it": keep it for the answer. */
        if (!r->have_err || r->err.kind == DP_FAIL_NEXT) {
            memset(&r->err, 0, sizeof(r->err));
            r->have_err   = true;
            r->err.kind   = DP_FAIL_NEXT;
            r->err.status = rv == TG_EINVAL ? 400 : 500;
            snprintf(r->err.type, sizeof(r->err.type), "%s",
                     rv == TG_EINVAL ? "invalid_request_error"
                                     : "server_error");
            snprintf(r->err.code, sizeof(r->err.code), "%s",
                     rv == TG_EINVAL ? "unsupported_by_deployment"
                                     : "internal_error");
            snprintf(r->err.message, sizeof(r->err.message), "%s", msg);
            snprintf(r->err.param, sizeof(r->err.param), "%s", param);
        }
        if (rv != TG_EINVAL) {
            return false;
        }
        r->pos++;
    }
    return false;
}

static void
dp_worker_on_done(dp_worker *w, dp_req *r, CURLcode res)
{
    const dp_upstream *up = r->dep;
    char               msg[300];
    unsigned           status;

    if (r->up_status == 0 && r->easy != NULL) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->up_status);
    }
    if (res == CURLE_WRITE_ERROR && !r->cancelled) {
        /* The write callback aborted because the client is gone. */
        pthread_mutex_lock(&r->mtx);
        bool gone = r->client_gone;
        pthread_mutex_unlock(&r->mtx);
        if (gone) {
            r->cancelled = true;
            atomic_fetch_add(&w->srv->m.client_disconnects, 1);
        }
    }
    if (r->cancelled) {
        dp_worker_release_upstream(w, r);
        dp_worker_report(r, 499);
        dp_worker_finish(w, r);
        return;
    }
    if (res != CURLE_OK) {
        bool timeout = res == CURLE_OPERATION_TIMEDOUT;
        snprintf(msg, sizeof(msg),
                 "The provider behind deployment '%s' %s: %s.", up->dep->id,
                 timeout ? "did not answer in time" : "could not be reached",
                 curl_easy_strerror(res));
        if (r->up_streaming) {
            /* The client has bytes already: never a retry now. */
            atomic_fetch_add(&w->srv->m.upstream_errors, 1);
            dp_worker_verdict(w, r, false, msg);
            dp_worker_release_upstream(w, r);
            dp_worker_answer_stream_end(r, NULL, msg);
            dp_worker_conclude(w, r, 200);
            return;
        }
        {
            dp_call_err e;
            /* A reused connection that died before any answer: libcurl
             * would have resent on its own; the router retries instead,
             * and the provider is not blamed for it. */
            r->no_verdict = res == CURLE_SEND_FAIL_REWIND;
            dp_call_error(&r->call, 0, NULL, 0, curl_easy_strerror(res), &e,
                          NULL);
            if (timeout) {
                e.status = 504;
                snprintf(e.code, sizeof(e.code), "upstream_timeout");
            }
            snprintf(e.message, sizeof(e.message), "%s", msg);
            dp_worker_attempt_failed(w, r, &e, NULL);
        }
        return;
    }
    if (r->up_streaming) {
        dp_worker_sse_tail(w, r);
        dp_worker_answer_stream_end(r, &w->scratch, NULL);
        dp_worker_release_upstream(w, r);
        dp_worker_conclude(w, r, 200);
        return;
    }
    if (r->up_status >= 200 && r->up_status < 300) {
        status = (unsigned)r->up_status;
        tg_buf_reset(&r->ans_body);
        if (dp_call_body(&r->call, r->up_resp.data, r->up_resp.len,
                         &r->ans_body) != TG_OK) {
            dp_call_err e;
            tg_buf_reset(&r->ans_body);
            dp_call_error(&r->call, 502, NULL, 0, NULL, &e, NULL);
            snprintf(e.message, sizeof(e.message),
                     "The provider behind deployment '%s' answered with a "
                     "body the gateway could not read.",
                     up->dep->id);
            dp_worker_attempt_failed(w, r, &e, NULL);
            return;
        }
        dp_worker_verdict(w, r, true, NULL);
        dp_health_ttft(w->srv->health, up->index,
                       tg_mono_us() - r->up_started_us);
        dp_worker_release_upstream(w, r);
        r->ans_kind   = DP_ANS_COMPLETE;
        r->ans_status = status;
        dp_worker_conclude(w, r, status);
        return;
    }
    {
        dp_call_err e;
        tg_buf      body;
        tg_buf_init(&body, 0);
        dp_call_error(&r->call, r->up_status, r->up_resp.data, r->up_resp.len,
                      NULL, &e, &body);
        dp_worker_attempt_failed(w, r, &e, &body);
        tg_buf_fini(&body);
    }
}

/* ---- decisions ------------------------------------------------------ */

static void
dp_worker_on_decision(void *arg, tg_err err, const tg_decision *d,
                      const char *why)
{
    dp_req *r = arg;

    /* Runs on an nng thread: copy and hand over to the owning worker. The
     * worker does not touch r->dec until it takes this job. */
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

static void
dp_worker_models(dp_req *r)
{
    dp_server *srv = r->srv;
    tg_buf     b;

    tg_buf_init(&b, 0);
    tg_buf_addf(&b, "{\"object\":\"list\",\"data\":[");
    for (uint32_t i = 0, n = 0; i < r->n_models; i++) {
        bool usable = false;
        for (size_t k = 0; k < srv->n_upstreams; k++) {
            if (srv->upstreams[k].usable &&
                strcmp(srv->upstreams[k].dep->model, r->models[i]) == 0) {
                usable = true;
                break;
            }
        }
        if (!usable) {
            continue;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", r->models[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "tollgate");
        char *txt = cJSON_PrintUnformatted(m);
        cJSON_Delete(m);
        if (txt == NULL) {
            tg_buf_fail(&b, TG_ENOMEM); /* never a list with one missing */
            break;
        }
        tg_buf_addf(&b, "%s%s", n++ ? "," : "", txt);
        cJSON_free(txt);
    }
    tg_buf_addf(&b, "]}");
    if (tg_buf_error(&b) != TG_OK) {
        dp_worker_error(r, 500, "The gateway ran out of memory listing the "
                        "models; retry.", "server_error", NULL,
                        "internal_error");
    } else {
        dp_worker_respond(r, 200, b.data, b.len);
    }
    tg_buf_fini(&b);
}

/* dp_worker_group says which attempt group a deployment of model belongs
 * to for a request of base: 0 the model itself, 1.. its group's
 * fallbacks, then route-rule fallbacks, then the context-window and
 * content-policy ones. */
static uint8_t
dp_worker_group(const tg_config *cfg, const char *base, const char *model)
{
    const tg_model_group *g = tg_config_group(cfg, base);

    if (strcmp(model, base) == 0) {
        return 0;
    }
    for (size_t i = 0; g != NULL && i < g->n_fallbacks; i++) {
        if (strcmp(g->fallbacks[i], model) == 0) {
            return (uint8_t)(1 + i);
        }
    }
    for (size_t i = 0; g != NULL && i < g->n_context_fallbacks; i++) {
        if (strcmp(g->context_fallbacks[i], model) == 0) {
            return (uint8_t)(DP_GROUP_CONTEXT + i);
        }
    }
    for (size_t i = 0; g != NULL && i < g->n_content_fallbacks; i++) {
        if (strcmp(g->content_fallbacks[i], model) == 0) {
            return (uint8_t)(DP_GROUP_CONTENT + i);
        }
    }
    return DP_GROUP_OTHER;
}

static void
dp_worker_fail_open(dp_worker *w, dp_req *r)
{
    /* on_pdp_error: allow — route as the catalog says, never outside it. */
    const tg_config *cfg = w->srv->cfg;

    const tg_model_group *g = tg_config_group(cfg, r->chat.model);
    dp_strategy           s;

    memset(&r->dec, 0, sizeof(r->dec));
    r->dec.verdict = TG_VERDICT_ALLOW;
    /* The model's deployments, then its group's fallbacks, as the PDP's
     * catalog routing would list them. */
    for (size_t i = 0; i < cfg->n_deployments &&
                       r->dec.n_targets < TG_MSG_TARGETS_MAX;
         i++) {
        if (r->endpoint == TG_EP_MODELS ||
            dp_worker_group(cfg, r->chat.model, cfg->deployments[i].model) !=
                DP_GROUP_OTHER) {
            tg_route_target *t = &r->dec.targets[r->dec.n_targets++];
            snprintf(t->deployment_id, sizeof(t->deployment_id), "%s",
                     cfg->deployments[i].id);
            t->weight = (uint32_t)cfg->deployments[i].weight;
        }
    }
    if (r->variant == 0 && g != NULL && g->strategy != NULL &&
        dp_strategy_parse(g->strategy, &s)) {
        r->variant = (int)s + 1;
    }
    if (r->endpoint == TG_EP_MODELS && r->models == NULL) {
        r->models = calloc(TG_MSG_MODELS_MAX, sizeof(*r->models));
    }
    for (size_t i = 0; r->models != NULL && i < cfg->n_deployments &&
                       r->n_models < TG_MSG_MODELS_MAX;
         i++) {
        bool seen = false;
        for (uint32_t k = 0; k < r->n_models; k++) {
            seen = seen || strcmp(r->models[k], cfg->deployments[i].model) == 0;
        }
        if (!seen) {
            snprintf(r->models[r->n_models++], TG_MODEL_MAX, "%s",
                     cfg->deployments[i].model);
        }
    }
}


/* dp_worker_cost is what a deployment charges (input + output per 1M
 * tokens): its own "pricing", else the price table's for its model; 0
 * unknown (tried after every priced one). */
static int64_t
dp_worker_cost(const dp_server *srv, const dp_upstream *up)
{
    tg_price p;

    if (up->dep->has_price) {
        return up->dep->price_input + up->dep->price_output;
    }
    if (srv->pricing != NULL &&
        (tg_pricing_find(srv->pricing, up->dep->model, &p) ||
         tg_pricing_find(srv->pricing, up->dep->upstream_model, &p))) {
        return p.input + p.output;
    }
    return 0;
}

/* dp_worker_plan orders the decision's targets into r->order: only what
 * the decision allowed, grouped, ordered by the strategy within a group,
 * deployments cooling down left out. Returns how many can be tried;
 * *off counts those without credentials, *cool those cooling down. */
static uint32_t
dp_worker_plan(dp_worker *w, dp_req *r, const dp_upstream **off,
               uint32_t *cool)
{
    dp_server   *srv = w->srv;
    dp_candidate c[TG_MSG_TARGETS_MAX];
    size_t       ord[TG_MSG_TARGETS_MAX];
    size_t       n   = 0;
    int64_t      now = tg_mono_us() / 1000;
    dp_strategy  s   = r->variant > 0 ? (dp_strategy)(r->variant - 1)
                                      : dp_strategy_from_wire(r->dec.strategy);
    size_t       k;

    *off  = NULL;
    *cool = 0;
    for (uint32_t i = 0; i < r->dec.n_targets && n < TG_MSG_TARGETS_MAX; i++) {
        const dp_upstream *up =
            dp_server_upstream(srv, r->dec.targets[i].deployment_id);
        dp_health_stat st;
        if (up == NULL) {
            continue;
        }
        if (!up->usable) {
            *off = *off != NULL ? *off : up;
            continue;
        }
        dp_health_get(srv->health, up->index, now, &st);
        memset(&c[n], 0, sizeof(c[n]));
        c[n].index    = up->index;
        c[n].weight   = r->dec.targets[i].weight;
        c[n].priority = (int32_t)i;
        c[n].inflight = st.inflight;
        c[n].ttft_us  = st.ttft_ewma_us;
        c[n].cost     = dp_worker_cost(srv, up);
        /* Half-open counts as available: dp_worker_next claims the probe. */
        c[n].cooldown = st.state == DP_CIRCUIT_COOLDOWN;
        c[n].group    = dp_worker_group(srv->cfg, r->chat.model,
                                        up->dep->model);
        *cool += c[n].cooldown ? 1 : 0;
        n++;
    }
    k = dp_router_order(c, n, s, (uint64_t)tg_mono_us() ^ r->started_us,
                        ord);
    r->n_order = 0;
    for (size_t i = 0; i < k; i++) {
        r->order[r->n_order] = (uint32_t)c[ord[i]].index;
        r->group[r->n_order] = (uint8_t)c[ord[i]].group;
        r->n_order++;
    }
    /* Context/content-only fallbacks sort after everything else. */
    for (uint32_t i = 1; i < r->n_order; i++) {
        for (uint32_t j = i; j > 0 && r->group[j - 1] > r->group[j]; j--) {
            uint32_t o = r->order[j];
            uint8_t  g = r->group[j];
            r->order[j]     = r->order[j - 1];
            r->group[j]     = r->group[j - 1];
            r->order[j - 1] = o;
            r->group[j - 1] = g;
        }
    }
    return r->n_order;
}

/* dp_worker_spool_refuse answers a request whose usage cannot be
 * recorded: it never goes upstream. */
static void
dp_worker_spool_refuse(dp_worker *w, dp_req *r)
{
    atomic_fetch_add(&w->srv->m.spool_refused, 1);
        dp_worker_error(r, 503,
                        "The gateway cannot record usage right now (its "
                        "usage spool's disk is full and the memory for "
                        "waiting records is used up), so the request was "
                        "not sent upstream. Retry later; an operator should "
                        "free space where dataplane.spool_dir is.",
                        "server_error", NULL, "usage_spool_full");
}

/* dp_worker_write_intent records the request's intent before anything
 * goes upstream; dp_worker_intent_done starts the first attempt. */
static void
dp_worker_write_intent(dp_worker *w, dp_req *r)
{
    tg_usage u;

    dp_worker_intent_usage(w, r, &u);
    dp_req_ref(r); /* the spool's, released by dp_worker_spooled */
    if (dp_spool_record(w->srv->spool, DP_SPOOL_INTENT, &u,
                        dp_worker_spooled, r) != TG_OK) {
        dp_req_unref(r);
        dp_worker_error(r, 503,
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
        dp_worker_spool_refuse(w, r);
        dp_worker_finish(w, r);
        return;
    }
    r->intent_written = true;
    if (r->cancelled) {
        dp_worker_finish(w, r); /* settles the intent at zero */
        return;
    }
    if (atomic_load(&w->srv->stopping)) {
        dp_worker_error(r, 503, "The gateway is shutting down; retry.",
                        "server_error", NULL, "shutting_down");
        dp_worker_finish(w, r);
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

static void
dp_worker_decided(dp_worker *w, dp_req *r, tg_err err, const char *why)
{
    const dp_upstream *off  = NULL;
    uint32_t           cool = 0;
    char               msg[400];

    if (r->finished) {
        return; /* answered at shutdown while the PDP call was out */
    }
    if (r->cancelled) {
        /* A decision came: an allow's reservation is freed now (a deny
         * holds none); none came: it is abandoned by its request id. */
        r->have_decision = err == TG_OK;
        dp_worker_finish(w, r);
        return;
    }
    if (atomic_load(&w->srv->stopping)) {
        dp_worker_error(r, 503, "The gateway is shutting down; retry.",
                        "server_error", NULL, "shutting_down");
        dp_worker_finish(w, r);
        return;
    }
    if (err == TG_ETOOBIG) {
        /* Never sent: the PDP would drop it unread (pdp.max_message_bytes),
         * and a timeout must not be how a request gets past it. */
        dp_worker_error(r, 400,
                        "The request carries more metadata than the policy "
                        "service accepts (pdp.max_message_bytes); send fewer "
                        "or shorter x-tollgate-meta-* headers.",
                        "invalid_request_error", NULL, "request_too_large");
        dp_worker_finish(w, r);
        return;
    }
    if (err != TG_OK) {
        atomic_fetch_add(&w->srv->m.pdp_errors, 1);
        if (!dp_pdp_connected(w->srv->pdp)) {
            why = "no connection to the PDP at dataplane.pdp_url";
        }
        /* Failing open still authenticates: only a key the PDP allowed
         * within dataplane.fail_open_key_ttl_s is served without it. And
         * only when the PDP could not be reached or did not answer in
         * time: an answer we cannot read (another version, a damaged
         * reply) is a deny, never an allow. */
        bool unreachable = err == TG_ETIMEDOUT || err == TG_ECLOSED ||
                           err == TG_EIO;
        bool known = unreachable && w->srv->keys != NULL &&
                     dp_keycache_known(w->srv->keys, r->key_hash,
                                       tg_mono_us() / 1000);
        if (!w->srv->cfg->dataplane.on_pdp_error_allow || !known) {
            if (w->srv->cfg->dataplane.on_pdp_error_allow) {
                atomic_fetch_add(&w->srv->m.pdp_fail_open_refused, 1);
            }
            tg_warn("request %s denied: %s (on_pdp_error: %s)",
                    r->request_id, why,
                    !w->srv->cfg->dataplane.on_pdp_error_allow ? "deny"
                    : !unreachable ? "allow, but only when the PDP cannot "
                                     "be reached"
                                   : "allow, but the PDP has not allowed "
                                     "this key recently");
            snprintf(msg, sizeof(msg),
                     "The gateway's policy service is unavailable (%s), so "
                     "the request was denied%s. Retry shortly; if it "
                     "persists, an operator should check tollgate-pdp.",
                     why,
                     w->srv->cfg->dataplane.on_pdp_error_allow
                         ? " (only keys it allowed recently are served "
                           "without it)"
                         : "");
            dp_worker_error(r, 503, msg, "server_error", NULL,
                            "pdp_unavailable");
            dp_worker_finish(w, r);
            return;
        }
        tg_warn("request %s allowed without a decision: %s (on_pdp_error: "
                "allow)",
                r->request_id, why);
        atomic_fetch_add(&w->srv->m.pdp_fail_open, 1);
        dp_worker_fail_open(w, r);
    }
    r->have_decision = err == TG_OK;
    if (err == TG_OK && r->dec.verdict == TG_VERDICT_ALLOW &&
        w->srv->keys != NULL) {
        dp_keycache_allowed(w->srv->keys, r->key_hash, tg_mono_us() / 1000);
    } else if (err == TG_OK && r->dec.status == 401 && w->srv->keys != NULL) {
        dp_keycache_forget(w->srv->keys, r->key_hash); /* revoked, expired */
    }
    if (r->dec.verdict != TG_VERDICT_ALLOW) {
        for (uint32_t i = 0; r->dec.status == 429 && i < r->dec.n_limits;
             i++) {
            if (strcmp(r->dec.limits[i].name, "retry") == 0) {
                /* Whole seconds, rounded up, at least 1. */
                int64_t s = (r->dec.limits[i].reset_ms + 999) / 1000;
                s = s < 1 ? 1 : s > 86400 ? 86400 : s;
                snprintf(r->retry_after, sizeof(r->retry_after), "%d",
                         (int)s);
            }
        }
        /* A deny is a 4xx or 5xx; anything else the PDP says is a 403. */
        dp_worker_error(r,
                        r->dec.status >= 400 && r->dec.status <= 599
                            ? r->dec.status
                            : 403,
                        r->dec.message[0] ? r->dec.message
                                          : "Denied by policy.",
                        r->dec.error_type[0] ? r->dec.error_type
                                             : "invalid_request_error",
                        NULL, r->dec.error_code);
        dp_worker_finish(w, r);
        return;
    }
    if (r->endpoint == TG_EP_MODELS) {
        dp_worker_models(r);
        dp_worker_finish(w, r);
        return;
    }
    /* Only deployments the decision allowed, in the strategy's order. */
    if (dp_worker_plan(w, r, &off, &cool) == 0) {
        if (cool > 0) {
            snprintf(msg, sizeof(msg),
                     "Every deployment allowed for model '%s' is cooling "
                     "down after repeated failures; retry shortly (GET "
                     "/admin/deployments shows when each returns).",
                     r->chat.model);
            snprintf(r->retry_after, sizeof(r->retry_after), "%d",
                     (int)((w->srv->cfg->dataplane.cooldown_ms + 999) / 1000));
            dp_worker_error(r, 503, msg, "server_error", "model",
                            "no_healthy_deployment");
        } else if (off != NULL) {
            snprintf(msg, sizeof(msg),
                     "No deployment can serve model '%s': deployment '%s' "
                     "needs the environment variable %s, which is not set "
                     "where tollgate-dataplane runs.",
                     r->chat.model, off->dep->id, off->missing);
            dp_worker_error(r, 503, msg, "server_error", "model",
                            "no_deployment_available");
        } else {
            snprintf(msg, sizeof(msg),
                     "No deployment allowed by policy can serve model '%s'.",
                     r->chat.model);
            dp_worker_error(r, 503, msg, "server_error", "model",
                            "no_deployment_available");
        }
        dp_worker_finish(w, r);
        return;
    }
    r->pos = 0;
    dp_worker_write_intent(w, r);
}

/* ---- new requests --------------------------------------------------- */

/* dp_worker_parse reads the client's body into r->chat (OpenAI form): a
 * Messages request is translated; a model variant (":floor", ":nitro")
 * becomes the base model and a strategy. */
static bool
dp_worker_parse(dp_req *r)
{
    char        msg[512];
    char        param[64];
    char        base[TG_MODEL_MAX];
    dp_strategy forced;
    tg_err      rv;

    if (r->endpoint == TG_EP_MESSAGES) {
        cJSON           *root = NULL;
        char            *oai  = NULL;
        size_t           olen = 0;
        dp_anth_req_opts o    = {NULL, 0, 0};
        char             why[256];

        /* The same one strict reading as every other body. */
        if ((rv = tg_jstrict_check(r->body.data, r->body.len, param,
                                   sizeof(param), why, sizeof(why))) !=
            TG_OK) {
            snprintf(msg, sizeof(msg),
                     "We could not accept the JSON body of your request: "
                     "%s%s%s%s.",
                     why, param[0] != '\0' ? " (in " : "", param,
                     param[0] != '\0' ? ")" : "");
            dp_worker_error(r, 400, msg, "invalid_request_error",
                            param[0] != '\0' ? param : NULL, "invalid_json");
            return false;
        }
        root = cJSON_ParseWithLength(r->body.data, r->body.len);
        if (root == NULL) {
            dp_worker_error(r, 400,
                            "We could not parse the JSON body of your "
                            "request.",
                            "invalid_request_error", NULL, "invalid_json");
            return false;
        }
        rv = dp_req_forbidden(root, msg, sizeof(msg), param, sizeof(param))
                 ? TG_EINVAL
                 : dp_anth_req_to_openai(root, &o, &oai, &olen, msg,
                                         sizeof(msg), param, sizeof(param));
        cJSON_Delete(root);
        if (rv == TG_OK) {
            rv = dp_req_parse(TG_EP_CHAT_COMPLETIONS, oai, olen, &r->chat, msg,
                              sizeof(msg), param, sizeof(param));
        }
        free(oai);
    } else {
        rv = dp_req_parse(r->endpoint, r->body.data, r->body.len, &r->chat,
                          msg, sizeof(msg), param, sizeof(param));
    }
    if (rv != TG_OK) {
        /* TG_EPROTO: not one strict JSON text (param: where). */
        dp_worker_error(r, 400, msg, "invalid_request_error",
                        param[0] ? param : NULL,
                        rv == TG_EPROTO || !param[0] ? "invalid_json"
                                                     : "invalid_value");
        return false;
    }
    if (dp_router_variant(r->chat.model, base, sizeof(base), &forced)) {
        snprintf(r->chat.model, sizeof(r->chat.model), "%s", base);
        r->variant = (int)forced + 1;
    }
    r->cr.ep      = r->endpoint;
    r->cr.chat    = &r->chat;
    r->cr.raw     = r->body.data;
    r->cr.raw_len = r->body.len;
    r->cr.raw_exact = r->variant == 0;
    r->cr.id      = r->request_id;
    return true;
}

static void
dp_worker_start(dp_worker *w, dp_req *r)
{
    tg_decide d;
    tg_err    rv;

    r->next   = w->active;
    w->active = r;
    dp_req_ref(r); /* the worker's ref, released by dp_worker_finish */
    atomic_fetch_add(&w->srv->m.inflight, 1);
    tg_buf_init(&r->err_body, 1u << 20);
    tg_buf_init(&r->ans_body, DP_UP_BODY_MAX);
    if (atomic_load(&w->srv->stopping)) {
        dp_worker_error(r, 503, "The gateway is shutting down; retry.",
                        "server_error", NULL, "shutting_down");
        dp_worker_finish(w, r);
        return;
    }
    if (!r->has_key) {
        dp_worker_error(r, 401,
                        "You didn't provide an API key. Send your Tollgate "
                        "virtual key in an Authorization header (Bearer) or "
                        "x-api-key.",
                        "invalid_request_error", NULL, "missing_api_key");
        dp_worker_finish(w, r);
        return;
    }
    if (r->endpoint != TG_EP_MODELS && !dp_worker_parse(r)) {
        dp_worker_finish(w, r);
        return;
    }
    if (r->endpoint != TG_EP_MODELS && dp_spool_full(w->srv->spool)) {
        /* Refused before anything is reserved: never served unrecorded. */
        dp_worker_spool_refuse(w, r);
        dp_worker_finish(w, r);
        return;
    }
    memset(&d, 0, sizeof(d));
    memcpy(d.request_id, r->request_id, sizeof(d.request_id));
    memcpy(d.key_hash, r->key_hash, sizeof(d.key_hash));
    d.endpoint               = r->endpoint;
    d.stream                 = r->chat.stream;
    d.max_tokens             = r->chat.max_tokens;
    d.prompt_tokens_estimate = r->chat.prompt_tokens_estimate;
    d.prompt_bytes           = r->chat.prompt_bytes;
    d.n_meta                 = r->n_meta;
    d.now_ms                 = tg_now_ms();
    if (r->n_meta > 0) {
        memcpy(d.meta, r->meta, r->n_meta * sizeof(d.meta[0]));
    }
    snprintf(d.model, sizeof(d.model), "%s", r->chat.model);
    snprintf(d.client_ip, sizeof(d.client_ip), "%s", r->client_ip);
    snprintf(d.user, sizeof(d.user), "%s", r->chat.user);
    if (!dp_pdp_connected(w->srv->pdp)) {
        /* Fail fast: waiting out the deadline would only add latency. */
        dp_worker_decided(w, r, TG_ECLOSED, "no connection to the PDP");
        return;
    }
    dp_req_ref(r); /* the PDP call's ref */
    r->decide_sent = true; /* before the call: its callback may run first */
    rv = dp_pdp_decide(w->srv->pdp, &d, w->srv->cfg->dataplane.pdp_timeout_ms,
                       dp_worker_on_decision, r);
    if (rv != TG_OK) {
        r->decide_sent = false; /* never sent: nothing to abandon */
        dp_req_unref(r);
        dp_worker_decided(w, r, rv, tg_strerror(rv));
    }
}

static void
dp_worker_cancelled(dp_worker *w, dp_req *r, bool resume)
{
    if (r->finished || r->cancelled) {
        return;
    }
    r->cancelled = true;
    atomic_fetch_add(&w->srv->m.client_disconnects, 1);
    if (r->easy != NULL || r->retry_at_us > 0) {
        /* Stop the upstream transfer now; meter what it produced. */
        dp_worker_release_upstream(w, r);
        dp_worker_report(r, 499);
        if (resume) {
            if (r->up_streaming) {
                dp_worker_end_stream(r, NULL);
            } else {
                dp_worker_error(r, 499, "The client closed the connection.",
                                "invalid_request_error", NULL,
                                "client_closed");
            }
        }
        dp_worker_finish(w, r);
    }
    /* Otherwise a PDP call is in flight: dp_worker_decided finishes it. */
}

/* dp_worker_client_hung_up tells whether the client closed its end.
 * libmicrohttpd does not watch suspended connections, so while a request
 * waits for the provider the worker looks at the socket itself. */
static bool
dp_worker_client_hung_up(dp_req *r, int64_t now)
{
    struct pollfd pfd = {r->client_fd, POLLRDHUP, 0};

    if (r->client_fd < 0 || now - r->hangup_checked_us < DP_HANGUP_CHECK_US) {
        return false;
    }
    r->hangup_checked_us = now;
    return poll(&pfd, 1, 0) == 1 &&
           (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
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

static void
dp_worker_check_timeouts(dp_worker *w)
{
    const tg_dp_config *c    = &w->srv->cfg->dataplane;
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
            /* Too slow to start: the next deployment may be quicker. */
            dp_call_err e;
            memset(&e, 0, sizeof(e));
            e.kind   = DP_FAIL_RETRY;
            e.status = 504;
            snprintf(e.type, sizeof(e.type), "server_error");
            snprintf(e.code, sizeof(e.code), "upstream_timeout");
            snprintf(e.message, sizeof(e.message),
                     "The provider behind deployment '%s' sent nothing "
                     "within %lld ms.",
                     r->dep->dep->id, (long long)(fb / 1000));
            r->up_status = 0;
            dp_worker_attempt_failed(w, r, &e, NULL);
        } else if (r->easy != NULL && r->up_streaming &&
                   now - r->last_data_us > idle && !dp_worker_paused(r)) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "The provider behind deployment '%s' sent nothing for "
                     "%lld ms in the middle of the stream.",
                     r->dep->dep->id, (long long)(idle / 1000));
            atomic_fetch_add(&w->srv->m.upstream_errors, 1);
            dp_worker_verdict(w, r, false, "idle stream");
            dp_worker_release_upstream(w, r);
            dp_worker_answer_stream_end(r, NULL, msg);
            dp_worker_conclude(w, r, 200);
        }
        r = next;
    }
}

static void
dp_worker_run_jobs(dp_worker *w, dp_job *j)
{
    while (j != NULL) {
        dp_job *next = j->next;
        dp_req *r    = j->req;
        switch (j->type) {
        case DP_JOB_NEW:
            dp_worker_start(w, r);
            break;
        case DP_JOB_DECISION:
            dp_worker_decided(w, r, j->err, j->why);
            break;
        case DP_JOB_CANCEL:
            dp_worker_cancelled(w, r, false);
            break;
        case DP_JOB_SPOOLED:
            dp_worker_on_spooled(w, r, j->err);
            break;
        case DP_JOB_UNPAUSE:
            if (r->easy != NULL && !r->finished) {
                curl_easy_pause(r->easy, CURLPAUSE_CONT);
            }
            break;
        }
        dp_req_unref(r);
        free(j);
        j = next;
    }
}

static void *
dp_worker_main(void *arg)
{
    dp_worker *w = arg;

    for (;;) {
        dp_job  *jobs;
        CURLMsg *msg;
        int      running;
        int      left;
        bool     stop;

        curl_multi_poll(w->multi, NULL, 0, w->active != NULL ? 50 : 1000,
                        NULL);
        pthread_mutex_lock(&w->qlock);
        jobs     = w->qhead;
        w->qhead = w->qtail = NULL;
        stop                = w->stop;
        pthread_mutex_unlock(&w->qlock);
        dp_worker_run_jobs(w, jobs);
        curl_multi_perform(w->multi, &running);
        while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                dp_req *r = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
                dp_worker_on_done(w, r, msg->data.result);
            }
        }
        dp_worker_check_timeouts(w);
        if (stop) {
            break;
        }
    }
    return NULL;
}

tg_err
dp_worker_create(dp_worker **out, dp_server *srv, unsigned index)
{
    dp_worker *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        return TG_ENOMEM;
    }
    w->srv   = srv;
    w->index = index;
    tg_buf_init(&w->scratch, 0);
    pthread_mutex_init(&w->qlock, NULL);
    if ((w->multi = curl_multi_init()) == NULL) {
        pthread_mutex_destroy(&w->qlock);
        free(w);
        return TG_ENOMEM;
    }
    curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    if (pthread_create(&w->thread, NULL, dp_worker_main, w) != 0) {
        curl_multi_cleanup(w->multi);
        pthread_mutex_destroy(&w->qlock);
        free(w);
        return TG_ESYS;
    }
    *out = w;
    return TG_OK;
}

void
dp_worker_stop(dp_worker *w)
{
    dp_job *left;

    pthread_mutex_lock(&w->qlock);
    w->stop = true;
    pthread_mutex_unlock(&w->qlock);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    /* Jobs that came in after the last loop, then whatever is active. */
    pthread_mutex_lock(&w->qlock);
    left     = w->qhead;
    w->qhead = w->qtail = NULL;
    pthread_mutex_unlock(&w->qlock);
    dp_worker_run_jobs(w, left);
    while (w->active != NULL) {
        dp_req *r = w->active;
        if (r->spool_wait == DP_WAIT_FINAL) {
            /* Its usage is queued (dp_spool_close writes it): the answer
             * it prepared goes out as it is. */
            r->spool_wait = DP_WAIT_NONE;
            dp_worker_deliver(w, r);
            continue;
        }
        if (r->up_streaming) {
            dp_worker_end_stream(r, "The gateway is shutting down.");
        } else {
            dp_worker_error(r, 503, "The gateway is shutting down; retry.",
                            "server_error", NULL, "shutting_down");
        }
        if (r->easy != NULL) {
            dp_worker_release_upstream(w, r);
            dp_worker_report(r, 503);
        }
        dp_worker_finish(w, r);
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
    curl_multi_cleanup(w->multi);
    tg_buf_fini(&w->scratch);
    pthread_mutex_destroy(&w->qlock);
    free(w);
}
