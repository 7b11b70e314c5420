/* dp_transfer.c - the upstream side of a worker: curl easy handles on
 * one multi, their callbacks, health brackets and verdicts, and reading
 * a finished transfer (dp_transfer.h). Worker thread only. */
#include "dp_transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dp_resp_client.h"
#include "dp_trace.h"
#include "dp_usage.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_OUT_HIGH (1u << 20)      /* pause upstream above this backlog */
#define DP_SSE_EVENT_MAX (8u << 20) /* largest single stream event */

struct dp_transfer {
    const dp_host *h;
    CURLM         *multi;
    tg_buf         scratch; /* stream events of one write callback */
    tg_buf         gscratch; /* the same, through output guardrails */
};

tg_err
dp_transfer_create(dp_transfer **out, const dp_host *h)
{
    dp_transfer *xf = calloc(1, sizeof(*xf));

    if (xf == NULL) {
        return TG_ENOMEM;
    }
    xf->h = h;
    tg_buf_init(&xf->scratch, 0);
    tg_buf_init(&xf->gscratch, 0);
    if ((xf->multi = curl_multi_init()) == NULL) {
        free(xf);
        return TG_ENOMEM;
    }
    curl_multi_setopt(xf->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    *out = xf;
    return TG_OK;
}

void
dp_transfer_destroy(dp_transfer *xf)
{
    if (xf == NULL) {
        return;
    }
    curl_multi_cleanup(xf->multi);
    tg_buf_fini(&xf->scratch);
    tg_buf_fini(&xf->gscratch);
    free(xf);
}

void
dp_transfer_wakeup(dp_transfer *xf)
{
    curl_multi_wakeup(xf->multi);
}

bool
dp_transfer_wait(dp_transfer *xf, int timeout_ms, int extra_fd)
{
    struct curl_waitfd extra = {extra_fd, CURL_WAIT_POLLIN, 0};

    curl_multi_poll(xf->multi, extra_fd >= 0 ? &extra : NULL,
                    extra_fd >= 0 ? 1 : 0, timeout_ms, NULL);
    return extra_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN) != 0;
}

void
dp_transfer_perform(dp_transfer *xf)
{
    int running;

    curl_multi_perform(xf->multi, &running);
}

dp_req *
dp_transfer_next_done(dp_transfer *xf, CURLcode *res)
{
    CURLMsg *msg;
    int      left;

    while ((msg = curl_multi_info_read(xf->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            dp_req *r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
            *res = msg->data.result;
            return r;
        }
    }
    return NULL;
}

/* ---- one attempt ----------------------------------------------------- */

/* dp_transfer_health_end closes the current attempt's health bracket. A
 * cancelled probe gives its claim back. */
static void
dp_transfer_health_end(dp_transfer *xf, dp_req *r)
{
    if (r->health_open && r->dep != NULL) {
        dp_health_end(xf->h->health, r->dep->index);
        if (r->probe) {
            dp_health_abandon(xf->h->health, r->dep->index);
        }
    }
    r->health_open = false;
    r->probe       = false;
}

/* dp_transfer_failed_before: this request already counted a failure of
 * deployment index; records it otherwise. */
static bool
dp_transfer_failed_before(dp_req *r, uint32_t index)
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

void
dp_transfer_verdict(dp_transfer *xf, dp_req *r, bool ok, const char *why)
{
    int64_t now = tg_mono_us() / 1000;

    if (r->dep == NULL || !r->health_open) {
        return;
    }
    dp_trace_attempt_end(r, ok, why);
    if (ok) {
        dp_health_success(xf->h->health, r->dep->index, now);
    } else if (r->no_verdict) {
        r->no_verdict = false;
        if (r->probe) {
            dp_health_abandon(xf->h->health, r->dep->index);
        }
    } else if (r->probe || !dp_transfer_failed_before(r, r->dep->index)) {
        /* A deployment's failures count requests, not attempts: one
         * request retried three times is one failure (a probe always
         * counts: it decides the circuit). */
        dp_health_failure(xf->h->health, r->dep->index, now, why);
    }
    r->probe = false; /* the verdict settles the claim */
}

void
dp_transfer_release(dp_transfer *xf, dp_req *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(xf->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    dp_transfer_health_end(xf, r);
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

/* dp_transfer_on_event turns one upstream event of r (the arg) into
 * client bytes in its transfer's scratch. */
static int
dp_transfer_on_event(void *arg, const char *ev, size_t len)
{
    dp_req *r = arg;

    return dp_call_event(&r->call, ev, len, &r->xf->scratch) == TG_OK ? 0 : 1;
}

/* dp_transfer_guard passes the client events in xf->scratch through r's
 * output guardrails (final: the stream ended, release what is held);
 * false when a block (or a scan that failed with on_error deny) ends the
 * stream: xf->scratch holds what may still be sent. */
static bool
dp_transfer_guard(dp_transfer *xf, dp_req *r, bool final)
{
    dp_guard_verdict v;
    tg_buf           t;

    if (r->guard == NULL || !dp_guard_stage_on(r->guard, TG_GUARD_OUTPUT) ||
        r->guard_blocked) {
        return !r->guard_blocked;
    }
    tg_buf_reset(&xf->gscratch);
    v = dp_guard_stream(r->guard, r->endpoint, xf->scratch.data,
                        xf->scratch.len, final, &xf->gscratch);
    t            = xf->scratch;
    xf->scratch  = xf->gscratch;
    xf->gscratch = t;
    if (v == DP_GUARD_BLOCKED || v == DP_GUARD_ERROR) {
        r->guard_blocked = true;
        return false;
    }
    return true;
}

static size_t
dp_transfer_write_cb(char *data, size_t size, size_t n, void *arg)
{
    dp_req      *r   = arg;
    dp_transfer *xf  = r->xf;
    size_t       len = size * n;

    if (r->up_status == 0) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->up_status);
    }
    r->last_data_us = tg_mono_us();
    if (!r->up_got_bytes && r->first_byte_us == 0) {
        r->first_byte_us = r->last_data_us - r->up_started_us;
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
    bool committed = false;
    if (!r->up_streaming) {
        dp_req_stream_commit_locked(r);
        committed = true;
    }
    pthread_mutex_unlock(&r->mtx);
    if (committed) {
        /* The shared health table, never under the request's lock. */
        dp_transfer_verdict(xf, r, true, NULL);
        dp_health_ttft(xf->h->health, r->dep->index,
                       tg_mono_us() - r->up_started_us);
    }

    tg_buf_reset(&xf->scratch);
    if (dp_call_binary_stream(&r->call)
            ? dp_transfer_on_event(r, data, len) != 0
            : dp_sse_feed(&r->sse, data, len, dp_transfer_on_event, r) !=
                  TG_OK) {
        return 0;
    }
    bool go = dp_transfer_guard(xf, r, false);
    if (xf->scratch.len > 0) {
        dp_usage_capture(xf->h, r, xf->scratch.data, xf->scratch.len);
        dp_trace_finish_reason(r, xf->scratch.data, xf->scratch.len);
        pthread_mutex_lock(&r->mtx);
        if (dp_req_out_locked(r, xf->scratch.data, xf->scratch.len) != TG_OK) {
            pthread_mutex_unlock(&r->mtx);
            return 0;
        }
        dp_req_resume_locked(r);
        pthread_mutex_unlock(&r->mtx);
    }
    return go ? len : 0; /* a guardrail block stops the transfer */
}

static size_t
dp_transfer_header_cb(char *data, size_t size, size_t n, void *arg)
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
dp_transfer_read_cb(char *buf, size_t size, size_t n, void *arg)
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
dp_transfer_seek_cb(void *arg, curl_off_t offset, int origin)
{
    (void)arg;
    (void)offset;
    (void)origin;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* dp_transfer_body gives e the attempt's body. */
static void
dp_transfer_body(CURL *e, dp_req *r)
{
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->call.len);
    /* The body through a read callback that cannot seek: libcurl never
     * sends it a second time on its own (it would resend a request whose
     * reused connection died, unseen by retries, breakers and budgets);
     * that attempt fails instead, and whether to send it again is the
     * router's decision, counted as one of its retries. */
    r->body_off = 0;
    curl_easy_setopt(e, CURLOPT_READFUNCTION, dp_transfer_read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, dp_transfer_seek_cb);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
}

/* dp_transfer_send prepares the attempt at up and adds it to the multi
 * (dp_transfer_start). */
static tg_err
dp_transfer_send(dp_transfer *xf, dp_req *r, const dp_upstream *up, char *msg,
                 size_t msglen, char *param, size_t paramlen)
{
    const tg_dp_config *c = &xf->h->cfg->dataplane;
    CURL               *e;
    tg_err              rv;

    if (r->resp != NULL) {
        /* Natively to OpenAI only when no guardrail reads or changes it:
         * the guardrails work on the chat form. */
        dp_resp_client_route(r->resp, &r->cr, r->guard == NULL);
    }
    rv = dp_call_prepare(&r->call, up, &r->cr, r->dec.clamp_max_tokens, msg,
                         msglen, param, paramlen);
    if (rv != TG_OK) {
        dp_call_fini(&r->call);
        return rv;
    }
    if (r->resp != NULL) {
        pthread_mutex_lock(&r->mtx);
        r->resp->native = r->call.native_resp;
        pthread_mutex_unlock(&r->mtx);
    }
    if ((e = curl_easy_init()) == NULL) {
        dp_call_fini(&r->call);
        snprintf(msg, msglen, "Could not start the upstream request.");
        return TG_ENOMEM;
    }
    dp_trace_attempt_start(xf->h, r, (uint32_t)up->index);
    r->xf             = xf;
    r->easy           = e;
    r->dep            = up;
    r->up_status      = 0;
    r->up_got_bytes   = false;
    r->retry_after[0] = '\0';
    tg_buf_fini(&r->up_resp);
    tg_buf_init(&r->up_resp, DP_UP_BODY_MAX);
    dp_sse_fini(&r->sse);
    dp_sse_init(&r->sse, DP_SSE_EVENT_MAX);
    curl_easy_setopt(e, CURLOPT_URL, r->call.url);
    dp_transfer_body(e, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->call.hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, dp_transfer_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, dp_transfer_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* never: SSRF */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->total_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    r->up_started_us = tg_mono_us();
    r->last_data_us  = r->up_started_us;
    dp_health_begin(xf->h->health, up->index);
    r->health_open = true;
    if (curl_multi_add_handle(xf->multi, e) != CURLM_OK) {
        snprintf(msg, msglen, "Could not start the upstream request.");
        return TG_ENOMEM;
    }
    return TG_OK;
}

/* dp_transfer_stream_tail renders into xf->scratch a last event that the
 * provider ended with EOF instead of a blank line ("data: [DONE]\n", or a
 * usage chunk with no newline at all): it would otherwise be lost, and its
 * usage with it; then whatever closes the client's stream in its format.
 * The caller sends it once the usage is recorded. */
static const tg_buf *
dp_transfer_stream_tail(dp_transfer *xf, dp_req *r)
{
    tg_buf_reset(&xf->scratch);
    dp_sse_finish(&r->sse, dp_transfer_on_event, r);
    dp_call_stream_end(&r->call, &xf->scratch);
    dp_transfer_guard(xf, r, true);
    return &xf->scratch;
}

tg_err
dp_transfer_start(dp_transfer *xf, dp_req *r, const dp_upstream *up, bool probe,
                  char *msg, size_t msglen, char *param, size_t paramlen)
{
    tg_err rv;

    r->probe = probe;
    rv       = dp_transfer_send(xf, r, up, msg, msglen, param, paramlen);
    if (rv == TG_OK) {
        return TG_OK;
    }
    if (r->probe && !r->health_open) {
        /* Never sent: the probe claim goes back unused. */
        dp_health_abandon(xf->h->health, up->index);
        r->probe = false;
    }
    dp_transfer_release(xf, r);
    r->dep = NULL;
    return rv;
}

void
dp_transfer_unpause(dp_req *r)
{
    if (r->easy != NULL && !r->finished) {
        curl_easy_pause(r->easy, CURLPAUSE_CONT);
    }
}

void
dp_transfer_cut(dp_transfer *xf, dp_req *r, const char *why,
                const char *message)
{
    atomic_fetch_add(&xf->h->m->upstream_errors, 1);
    dp_transfer_verdict(xf, r, false, why);
    dp_req_prepare_stream_end(r, NULL, message);
}

/* dp_transfer_broken: the transfer ended with curl error res. Before the
 * client has bytes it is the attempt's failure (*e); after, the stream is
 * cut (prepared). */
static dp_transfer_end
dp_transfer_broken(dp_transfer *xf, dp_req *r, CURLcode res, dp_call_err *e,
                   unsigned *status)
{
    bool timeout = res == CURLE_OPERATION_TIMEDOUT;
    char msg[300];

    snprintf(msg, sizeof(msg), "The provider behind deployment '%s' %s: %s.",
             r->dep->dep->id,
             timeout ? "did not answer in time" : "could not be reached",
             curl_easy_strerror(res));
    if (r->up_streaming) {
        /* The client has bytes already: never a retry now. */
        dp_transfer_cut(xf, r, msg, msg);
        *status = 200;
        return DP_TRANSFER_ANSWERED;
    }
    /* A reused connection that died before any answer: libcurl would have
     * resent on its own; the router retries instead, and the provider is
     * not blamed for it. */
    r->no_verdict = res == CURLE_SEND_FAIL_REWIND;
    dp_call_error(&r->call, 0, NULL, 0, curl_easy_strerror(res), e, NULL);
    if (timeout) {
        e->status = 504;
        snprintf(e->code, sizeof(e->code), "upstream_timeout");
    }
    snprintf(e->message, sizeof(e->message), "%s", msg);
    return DP_TRANSFER_FAILED;
}

/* dp_transfer_guard_whole runs r's output guardrails on its whole
 * answer (r->ans_body): rewritten when redacted, replaced by the block's
 * error otherwise. Returns the status the client gets. */
static unsigned
dp_transfer_guard_whole(dp_req *r)
{
    tg_buf           nb;
    dp_guard_verdict v;

    tg_buf_init(&nb, DP_UP_BODY_MAX);
    v = dp_guard_output(r->guard, r->endpoint, r->ans_body.data,
                        r->ans_body.len, &nb);
    if (v == DP_GUARD_CHANGED) {
        tg_buf t    = r->ans_body;
        r->ans_body = nb;
        nb          = t;
    } else if (v == DP_GUARD_BLOCKED || v == DP_GUARD_ERROR) {
        r->guard_blocked = true;
        dp_req_prepare_error(r, v == DP_GUARD_BLOCKED ? 400 : 503,
                             r->guard->block_msg,
                             v == DP_GUARD_BLOCKED ? "invalid_request_error"
                                                   : "server_error",
                             NULL,
                             v == DP_GUARD_BLOCKED ? "guardrail_blocked"
                                                   : "guardrail_error");
    }
    tg_buf_fini(&nb);
    return r->ans_status;
}

/* dp_transfer_whole reads a whole (not streamed) upstream answer: a 2xx
 * becomes the client's body, anything else the attempt's failure. */
static dp_transfer_end
dp_transfer_whole(dp_transfer *xf, dp_req *r, dp_call_err *e, tg_buf *body,
                  unsigned *status)
{
    if (r->up_status < 200 || r->up_status >= 300) {
        dp_call_error(&r->call, r->up_status, r->up_resp.data, r->up_resp.len,
                      NULL, e, body);
        return DP_TRANSFER_FAILED;
    }
    tg_buf_reset(&r->ans_body);
    if (dp_call_body(&r->call, r->up_resp.data, r->up_resp.len, &r->ans_body) !=
        TG_OK) {
        tg_buf_reset(&r->ans_body);
        dp_call_error(&r->call, 502, NULL, 0, NULL, e, NULL);
        snprintf(e->message, sizeof(e->message),
                 "The provider behind deployment '%s' answered with a "
                 "body the gateway could not read.",
                 r->dep->dep->id);
        return DP_TRANSFER_FAILED;
    }
    dp_transfer_verdict(xf, r, true, NULL);
    dp_health_ttft(xf->h->health, r->dep->index,
                   tg_mono_us() - r->up_started_us);
    *status       = (unsigned)r->up_status;
    r->ans_kind   = DP_ANS_COMPLETE;
    r->ans_status = *status;
    if (r->guard != NULL && dp_guard_stage_on(r->guard, TG_GUARD_OUTPUT)) {
        *status = dp_transfer_guard_whole(r);
    }
    return DP_TRANSFER_ANSWERED;
}

dp_transfer_end
dp_transfer_finished(dp_transfer *xf, dp_req *r, CURLcode res, dp_call_err *e,
                     tg_buf *body, unsigned *status)
{
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
            atomic_fetch_add(&xf->h->m->client_disconnects, 1);
        }
    }
    if (r->cancelled) {
        return DP_TRANSFER_CANCELLED;
    }
    if (r->guard_blocked && r->up_streaming) {
        /* A guardrail ended the stream; the provider did its part. */
        dp_transfer_verdict(xf, r, true, NULL);
        dp_req_guard_end(r);
        *status = 200;
        return DP_TRANSFER_ANSWERED;
    }
    if (res != CURLE_OK) {
        return dp_transfer_broken(xf, r, res, e, status);
    }
    if (r->up_streaming) {
        const tg_buf *tail = dp_transfer_stream_tail(xf, r);
        dp_req_prepare_stream_end(r, tail, NULL);
        if (r->guard_blocked) {
            dp_req_guard_end(r);
        }
        *status = 200;
        return DP_TRANSFER_ANSWERED;
    }
    return dp_transfer_whole(xf, r, e, body, status);
}
