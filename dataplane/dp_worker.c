#include "dp_worker.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_server.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_OUT_HIGH (1u << 20)      /* pause upstream above this backlog */
#define DP_UP_BODY_MAX (64u << 20)  /* largest non-stream upstream reply */
#define DP_SSE_EVENT_MAX (8u << 20) /* largest single stream event */
#define DP_HANGUP_CHECK_US (200 * 1000) /* how often to look for hang-ups */

typedef enum dp_job_type {
    DP_JOB_NEW,
    DP_JOB_DECISION,
    DP_JOB_CANCEL,
    DP_JOB_UNPAUSE,
} dp_job_type;

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
    if (dp_openai_error(&b, message, type, param, code) == TG_OK) {
        dp_worker_respond(r, status, b.data, b.len);
    } else {
        dp_worker_respond(r, 500, "", 0);
    }
    tg_buf_fini(&b);
}

/* ---- usage ---------------------------------------------------------- */

static void
dp_worker_report(dp_req *r, unsigned status)
{
    const dp_upstream *up = r->dep;
    tg_usage           u;

    if (r->usage_reported ||
        (up == NULL && (!r->have_decision || r->dec.reservation_id[0] == '\0'))) {
        return; /* nothing went upstream and nothing is held: no report */
    }
    r->usage_reported = true;
    memset(&u, 0, sizeof(u));
    snprintf(u.request_id, sizeof(u.request_id), "%s", r->request_id);
    snprintf(u.key_id, sizeof(u.key_id), "%s", r->dec.key_id);
    snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", r->dec.tenant_id);
    snprintf(u.model, sizeof(u.model), "%s", r->chat.model);
    /* Without a deployment the report only settles what the decision
     * reserved (zero tokens), so the PDP frees it now, not at expiry. */
    snprintf(u.deployment_id, sizeof(u.deployment_id), "%s",
             up != NULL ? up->dep->id : "");
    snprintf(u.reservation_id, sizeof(u.reservation_id), "%s",
             r->dec.reservation_id);
    snprintf(u.user, sizeof(u.user), "%s", r->chat.user);
    u.endpoint = r->endpoint;
    u.stream   = r->chat.stream;
    if (r->usage.found) {
        u.prompt_tokens     = r->usage.prompt_tokens;
        u.completion_tokens = r->usage.completion_tokens;
        u.cached_tokens     = r->usage.cached_tokens;
    } else if (r->up_got_bytes || r->cancelled) {
        /* The provider never said: count what we saw, and say so. */
        u.prompt_tokens     = r->chat.prompt_tokens_estimate;
        u.completion_tokens = r->content_events;
        u.estimated         = true;
    }
    u.status      = status;
    u.started_ms  = r->started_ms;
    u.duration_ms = (tg_mono_us() - r->started_us) / 1000;
    atomic_fetch_add(&r->srv->m.prompt_tokens, (uint64_t)u.prompt_tokens);
    atomic_fetch_add(&r->srv->m.completion_tokens,
                     (uint64_t)u.completion_tokens);
    if (dp_spool_put(r->srv->spool, &u) != TG_OK) {
        tg_error("request %s: could not queue its usage report (out of "
                 "memory)",
                 r->request_id);
    }
}

/* ---- lifecycle ------------------------------------------------------ */

static void
dp_worker_release_upstream(dp_worker *w, dp_req *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(w->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    free(r->up_body);
    r->up_body = NULL;
}

static void
dp_worker_finish(dp_worker *w, dp_req *r)
{
    dp_req **pp;

    if (r->finished) {
        return;
    }
    if (!r->usage_reported && r->have_decision &&
        r->dec.reservation_id[0] != '\0') {
        unsigned status;
        pthread_mutex_lock(&r->mtx);
        status = r->status != 0 ? r->status : 499;
        pthread_mutex_unlock(&r->mtx);
        dp_worker_report(r, status);
    }
    r->finished = true;
    dp_worker_release_upstream(w, r);
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

/* ---- upstream ------------------------------------------------------- */

typedef struct dp_sse_ctx {
    dp_worker *w;
    dp_req    *r;
} dp_sse_ctx;

static int
dp_worker_on_event(void *arg, const char *ev, size_t len)
{
    dp_sse_ctx *c = arg;
    dp_sse_info info;

    dp_openai_sse_inspect(ev, len, &info);
    if (info.usage.found) {
        c->r->usage = info.usage;
    }
    if (info.has_content) {
        c->r->content_events++;
    }
    if (info.usage_only && !c->r->chat.include_usage) {
        return 0; /* we asked for it; the client did not */
    }
    return tg_buf_append(&c->w->scratch, ev, len) == TG_OK ? 0 : 1;
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
    if (!r->up_streaming) {
        dp_worker_count_status(r->srv, 200);
        r->up_streaming     = true;
        r->phase            = DP_PHASE_STREAMING;
        r->status           = 200;
        r->include_revision = true;
        r->revision         = r->dec.policy_revision;
        dp_server_resume_locked(r);
    }
    pthread_mutex_unlock(&r->mtx);

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

static bool
dp_worker_start_upstream(dp_worker *w, dp_req *r, const dp_upstream *up)
{
    const tg_dp_config *c = &w->srv->cfg->dataplane;
    size_t              blen;
    CURL               *e;

    if (dp_chat_upstream_body(&r->chat, up->dep->upstream_model,
                              r->dec.clamp_max_tokens, &r->up_body,
                              &blen) != TG_OK) {
        dp_worker_error(r, 500, "Out of memory building the upstream request.",
                        "server_error", NULL, "internal_error");
        return false;
    }
    if ((e = curl_easy_init()) == NULL) {
        dp_worker_error(r, 500, "Could not start the upstream request.",
                        "server_error", NULL, "internal_error");
        return false;
    }
    r->easy = e;
    r->dep  = up;
    r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
    r->hdrs = curl_slist_append(r->hdrs, r->chat.stream
                                             ? "Accept: text/event-stream"
                                             : "Accept: application/json");
    r->hdrs = curl_slist_append(r->hdrs, "Expect:");
    if (up->auth_header != NULL) {
        r->hdrs = curl_slist_append(r->hdrs, up->auth_header);
    }
    tg_buf_init(&r->up_resp, DP_UP_BODY_MAX);
    dp_sse_init(&r->sse, DP_SSE_EVENT_MAX);
    curl_easy_setopt(e, CURLOPT_URL, up->chat_url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->up_body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
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
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        dp_worker_error(r, 500, "Could not start the upstream request.",
                        "server_error", NULL, "internal_error");
        return false;
    }
    return true;
}

/* dp_worker_end_stream ends a stream the client is already reading: what
 * went wrong becomes a final error event, never a silent cut. */
static void
dp_worker_end_stream(dp_req *r, const char *error_message)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    if (error_message != NULL) {
        tg_buf_append(&b, "data: ", 6);
        dp_openai_error(&b, error_message, "server_error", NULL,
                        "upstream_error");
        tg_buf_append(&b, "\n\n", 2);
    }
    pthread_mutex_lock(&r->mtx);
    tg_buf_append(&r->out, b.data, b.len);
    r->out_done = true;
    dp_server_resume_locked(r);
    pthread_mutex_unlock(&r->mtx);
    tg_buf_fini(&b);
}

/* dp_worker_sse_tail passes on a last event that the provider ended with
 * EOF instead of a blank line ("data: [DONE]\n", or a usage chunk with no
 * newline at all): it would otherwise be lost, and its usage with it. */
static void
dp_worker_sse_tail(dp_worker *w, dp_req *r)
{
    dp_sse_ctx  ctx = {w, r};
    size_t      len;
    const char *rest = dp_sse_rest(&r->sse, &len);
    size_t      i    = 0;

    while (i < len && (rest[i] == '\r' || rest[i] == '\n')) {
        i++;
    }
    if (i == len) {
        return; /* nothing, or only line ends */
    }
    tg_buf_reset(&w->scratch);
    if (dp_sse_feed(&r->sse, "\n\n", 2, dp_worker_on_event, &ctx) != TG_OK ||
        w->scratch.len == 0) {
        return;
    }
    pthread_mutex_lock(&r->mtx);
    tg_buf_append(&r->out, w->scratch.data, w->scratch.len);
    pthread_mutex_unlock(&r->mtx);
}

static void
dp_worker_upstream_status(dp_req *r)
{
    const dp_upstream *up = r->dep;
    char               umsg[200];
    char               msg[400];
    long               st = r->up_status;

    dp_openai_error_message(r->up_resp.data, r->up_resp.len, umsg,
                            sizeof(umsg));
    atomic_fetch_add(&r->srv->m.upstream_errors, 1);
    if (st == 429) {
        snprintf(msg, sizeof(msg),
                 "The provider behind deployment '%s' is rate limiting "
                 "requests%s%s. Retry later.",
                 up->dep->id, umsg[0] ? ": " : "", umsg);
        dp_worker_error(r, 429, msg, "rate_limit_error", NULL,
                        "upstream_rate_limited");
    } else if (st == 401 || st == 403) {
        snprintf(msg, sizeof(msg),
                 "The provider rejected the gateway's credentials for "
                 "deployment '%s' (HTTP %ld). An operator must check the key "
                 "named in its api_key.",
                 up->dep->id, st);
        dp_worker_error(r, 502, msg, "server_error", NULL,
                        "upstream_auth_failed");
    } else if (st >= 400 && st < 500 && st != 408) {
        /* The provider judged the request itself: pass its answer on. */
        if (r->up_resp.len > 0 && umsg[0] != '\0') {
            dp_worker_respond(r, (unsigned)st, r->up_resp.data,
                              r->up_resp.len);
        } else {
            snprintf(msg, sizeof(msg),
                     "The provider behind deployment '%s' refused the "
                     "request with HTTP %ld.",
                     up->dep->id, st);
            dp_worker_error(r, (unsigned)st, msg, "invalid_request_error",
                            NULL, "upstream_rejected");
        }
    } else {
        snprintf(msg, sizeof(msg),
                 "The provider behind deployment '%s' failed with HTTP "
                 "%ld%s%s.",
                 up->dep->id, st, umsg[0] ? ": " : "", umsg);
        dp_worker_error(r, 502, msg, "server_error", NULL, "upstream_error");
    }
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
    if (res != CURLE_OK && !r->cancelled) {
        bool timeout = res == CURLE_OPERATION_TIMEDOUT;
        atomic_fetch_add(&w->srv->m.upstream_errors, 1);
        snprintf(msg, sizeof(msg),
                 "The provider behind deployment '%s' %s: %s.", up->dep->id,
                 timeout ? "did not answer in time" : "could not be reached",
                 curl_easy_strerror(res));
        if (r->up_streaming) {
            dp_worker_end_stream(r, msg);
            status = 200;
        } else {
            status = timeout ? 504 : 502;
            dp_worker_error(r, status, msg, "server_error", NULL,
                            timeout ? "upstream_timeout" : "upstream_error");
        }
    } else if (r->up_streaming) {
        dp_worker_sse_tail(w, r);
        dp_worker_end_stream(r, NULL);
        status = 200;
    } else if (r->up_status >= 200 && r->up_status < 300) {
        dp_openai_usage(r->up_resp.data, r->up_resp.len, &r->usage);
        status = (unsigned)r->up_status;
        dp_worker_respond(r, status, r->up_resp.data, r->up_resp.len);
    } else {
        dp_worker_upstream_status(r);
        status = r->up_status == 429 ? 429 : 502;
    }
    dp_worker_report(r, r->cancelled ? 499 : status);
    tg_buf_fini(&r->up_resp);
    dp_sse_fini(&r->sse);
    dp_worker_finish(w, r);
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
        r->dec = *d;
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
    tg_buf_printf(&b, "{\"object\":\"list\",\"data\":[");
    for (uint32_t i = 0, n = 0; i < r->dec.n_models; i++) {
        bool usable = false;
        for (size_t k = 0; k < srv->n_upstreams; k++) {
            if (srv->upstreams[k].usable &&
                strcmp(srv->upstreams[k].dep->model, r->dec.models[i]) == 0) {
                usable = true;
                break;
            }
        }
        if (!usable) {
            continue;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", r->dec.models[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "tollgate");
        char *txt = cJSON_PrintUnformatted(m);
        cJSON_Delete(m);
        if (txt != NULL) {
            tg_buf_printf(&b, "%s%s", n++ ? "," : "", txt);
            cJSON_free(txt);
        }
    }
    tg_buf_printf(&b, "]}");
    dp_worker_respond(r, 200, b.data, b.len);
    tg_buf_fini(&b);
}

static void
dp_worker_fail_open(dp_worker *w, dp_req *r)
{
    /* on_pdp_error: allow — route as the catalog says, never outside it. */
    const tg_config *cfg = w->srv->cfg;

    memset(&r->dec, 0, sizeof(r->dec));
    r->dec.verdict = TG_VERDICT_ALLOW;
    for (size_t i = 0; i < cfg->n_deployments &&
                       r->dec.n_targets < TG_MSG_TARGETS_MAX;
         i++) {
        if (r->endpoint == TG_EP_MODELS ||
            strcmp(cfg->deployments[i].model, r->chat.model) == 0) {
            tg_route_target *t = &r->dec.targets[r->dec.n_targets++];
            snprintf(t->deployment_id, sizeof(t->deployment_id), "%s",
                     cfg->deployments[i].id);
            t->weight = 1;
        }
    }
    for (size_t i = 0; r->endpoint == TG_EP_MODELS && i < cfg->n_deployments &&
                       r->dec.n_models < TG_MSG_MODELS_MAX;
         i++) {
        bool seen = false;
        for (uint32_t k = 0; k < r->dec.n_models; k++) {
            seen = seen ||
                   strcmp(r->dec.models[k], cfg->deployments[i].model) == 0;
        }
        if (!seen) {
            snprintf(r->dec.models[r->dec.n_models++], TG_MODEL_MAX, "%s",
                     cfg->deployments[i].model);
        }
    }
}

static void
dp_worker_decided(dp_worker *w, dp_req *r, tg_err err, const char *why)
{
    const dp_upstream *pick    = NULL;
    const dp_upstream *missing = NULL;
    char               msg[400];

    if (r->finished) {
        return; /* answered at shutdown while the PDP call was out */
    }
    if (r->cancelled) {
        dp_worker_finish(w, r);
        return;
    }
    if (atomic_load(&w->srv->stopping)) {
        dp_worker_error(r, 503, "The gateway is shutting down; retry.",
                        "server_error", NULL, "shutting_down");
        dp_worker_finish(w, r);
        return;
    }
    if (err != TG_OK) {
        atomic_fetch_add(&w->srv->m.pdp_errors, 1);
        if (!dp_pdp_connected(w->srv->pdp)) {
            why = "no connection to the PDP at dataplane.pdp_url";
        }
        if (!w->srv->cfg->dataplane.on_pdp_error_allow) {
            tg_warn("request %s denied: %s (on_pdp_error: deny)",
                    r->request_id, why);
            snprintf(msg, sizeof(msg),
                     "The gateway's policy service is unavailable (%s), so "
                     "the request was denied. Retry shortly; if it persists, "
                     "an operator should check tollgate-pdp.",
                     why);
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
        dp_worker_error(r, r->dec.status >= 400 ? r->dec.status : 403,
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
    /* Only deployments the decision allowed, in its order. */
    for (uint32_t i = 0; i < r->dec.n_targets && pick == NULL; i++) {
        const dp_upstream *up =
            dp_server_upstream(w->srv, r->dec.targets[i].deployment_id);
        if (up == NULL) {
            continue;
        }
        if (up->usable) {
            pick = up;
        } else if (missing == NULL) {
            missing = up;
        }
    }
    if (pick == NULL) {
        if (missing != NULL) {
            snprintf(msg, sizeof(msg),
                     "No deployment can serve model '%s': deployment '%s' "
                     "needs the environment variable %s, which is not set "
                     "where tollgate-dataplane runs.",
                     r->chat.model, missing->dep->id, missing->missing);
        } else {
            snprintf(msg, sizeof(msg),
                     "No deployment allowed by policy can serve model '%s'.",
                     r->chat.model);
        }
        dp_worker_error(r, 503, msg, "server_error", "model",
                        "no_deployment_available");
        dp_worker_finish(w, r);
        return;
    }
    if (!dp_worker_start_upstream(w, r, pick)) {
        dp_worker_finish(w, r);
    }
}

/* ---- new requests --------------------------------------------------- */

static void
dp_worker_start(dp_worker *w, dp_req *r)
{
    tg_decide d;
    char      msg[256];
    char      param[64];
    tg_err    rv;

    r->next   = w->active;
    w->active = r;
    dp_req_ref(r); /* the worker's ref, released by dp_worker_finish */
    atomic_fetch_add(&w->srv->m.inflight, 1);
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
    if (r->endpoint == TG_EP_CHAT_COMPLETIONS &&
        dp_chat_parse(r->body.data, r->body.len, &r->chat, msg, sizeof(msg),
                      param, sizeof(param)) != TG_OK) {
        dp_worker_error(r, 400, msg, "invalid_request_error", param,
                        param[0] ? "invalid_value" : "invalid_json");
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
    memcpy(d.meta, r->meta, sizeof(d.meta));
    snprintf(d.model, sizeof(d.model), "%s", r->chat.model);
    snprintf(d.client_ip, sizeof(d.client_ip), "%s", r->client_ip);
    snprintf(d.user, sizeof(d.user), "%s", r->chat.user);
    if (!dp_pdp_connected(w->srv->pdp)) {
        /* Fail fast: waiting out the deadline would only add latency. */
        dp_worker_decided(w, r, TG_ECLOSED, "no connection to the PDP");
        return;
    }
    dp_req_ref(r); /* the PDP call's ref */
    rv = dp_pdp_decide(w->srv->pdp, &d, w->srv->cfg->dataplane.pdp_timeout_ms,
                       dp_worker_on_decision, r);
    if (rv != TG_OK) {
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
    if (r->easy != NULL) {
        /* Stop the upstream transfer now; meter what it produced. */
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
        tg_buf_fini(&r->up_resp);
        dp_sse_fini(&r->sse);
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

static void
dp_worker_check_timeouts(dp_worker *w)
{
    int64_t now = tg_mono_us();
    int64_t fb  = w->srv->cfg->dataplane.first_byte_timeout_ms * 1000;
    dp_req *r   = w->active;

    while (r != NULL) {
        dp_req *next = r->next;
        if (r->easy != NULL && dp_worker_client_hung_up(r, now)) {
            /* Answer so MHD resumes, notices the closed socket and frees
             * the connection; the upstream transfer stops now. */
            dp_worker_cancelled(w, r, true);
        } else if (r->easy != NULL && !r->up_got_bytes &&
            now - r->up_started_us > fb) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "The provider behind deployment '%s' sent nothing "
                     "within %lld ms.",
                     ((const dp_upstream *)r->dep)->dep->id,
                     (long long)(fb / 1000));
            atomic_fetch_add(&w->srv->m.upstream_errors, 1);
            dp_worker_error(r, 504, msg, "server_error", NULL,
                            "upstream_timeout");
            dp_worker_report(r, 504);
            tg_buf_fini(&r->up_resp);
            dp_sse_fini(&r->sse);
            dp_worker_finish(w, r);
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
        if (r->up_streaming) {
            dp_worker_end_stream(r, "The gateway is shutting down.");
        } else {
            dp_worker_error(r, 503, "The gateway is shutting down; retry.",
                            "server_error", NULL, "shutting_down");
        }
        if (r->easy != NULL) {
            dp_worker_report(r, 503);
            tg_buf_fini(&r->up_resp);
            dp_sse_fini(&r->sse);
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
