/* dp_req.c - a client request's lifecycle: made on the MHD thread,
 * reference counted, answered by its worker through the shared fields
 * under r->mtx (dp_req.h). The answer functions run on the worker thread;
 * the rest on any thread. */
#include "dp_req.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_resp_client.h"
#include "tg_log.h"
#include "tg_time.h"

void
dp_req_client_ip(struct MHD_Connection *conn, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    out[0] = '\0';
    if (sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
                  (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)len);
    }
}

dp_req *
dp_req_create(dp_metrics *m, struct MHD_Connection *conn, tg_endpoint ep,
              const char *request_id, size_t max_body)
{
    dp_req *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    atomic_init(&r->refs, 1); /* the connection's */
    r->m        = m;
    r->conn     = conn;
    r->endpoint = ep;
    pthread_mutex_init(&r->mtx, NULL);
    tg_buf_init(&r->body, max_body);
    tg_buf_init(&r->out, 0);
    r->started_ms = tg_now_ms();
    r->started_us = tg_mono_us();
    snprintf(r->request_id, sizeof(r->request_id), "%s", request_id);
    dp_req_client_ip(conn, r->client_ip, sizeof(r->client_ip));
    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->client_fd = ci != NULL ? ci->connect_fd : -1;
    }
    return r;
}

void
dp_req_ref(dp_req *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void
dp_req_unref(dp_req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1) {
        return;
    }
    tg_buf_fini(&r->body);
    tg_buf_fini(&r->out);
    tg_buf_fini(&r->err_body);
    dp_gemin_stream_destroy(r->gem_st);
    dp_resp_client_destroy(r->resp);
    free(r->rapi);
    pthread_mutex_destroy(&r->mtx);
    free(r->meta);
    free(r->models);
    free(r->orp);
    free(r->audit_hits);
    if (r->guard != NULL) {
        dp_guard_req_fini(r->guard);
        free(r->guard);
    }
    free(r);
}

void
dp_decision_keep(dp_decision *out, const tg_decision *d)
{
    out->verdict = d->verdict;
    out->status  = d->status;
    memcpy(out->error_code, d->error_code, sizeof(out->error_code));
    memcpy(out->error_type, d->error_type, sizeof(out->error_type));
    memcpy(out->message, d->message, sizeof(out->message));
    memcpy(out->targets, d->targets, sizeof(out->targets));
    out->n_targets        = d->n_targets;
    out->strategy         = d->strategy;
    out->clamp_max_tokens = d->clamp_max_tokens;
    memcpy(out->reservation_id, d->reservation_id, sizeof(out->reservation_id));
    out->policy_revision = d->policy_revision;
    memcpy(out->bundle_hash, d->bundle_hash, sizeof(out->bundle_hash));
    memcpy(out->key_id, d->key_id, sizeof(out->key_id));
    memcpy(out->tenant_id, d->tenant_id, sizeof(out->tenant_id));
    memcpy(out->limits, d->limits, sizeof(out->limits));
    out->n_limits = d->n_limits;
    memcpy(out->matched, d->matched, d->n_matched * sizeof(out->matched[0]));
    out->n_matched          = d->n_matched;
    out->capture_level      = d->capture_level;
    out->audit_hits_header  = d->audit_hits_header;
    out->log_shed           = d->log_shed;
    out->reserved_micro_usd = d->reserved_micro_usd;
    memcpy(out->guards, d->guards, d->n_guards * sizeof(out->guards[0]));
    out->n_guards = d->n_guards;
    memcpy(out->guard_set, d->guard_set, sizeof(out->guard_set));
    out->reuse_ms     = d->reuse_ms;
    out->reuse_inputs = d->reuse_inputs;
}

bool
dp_req_client_hung_up(const dp_req *r)
{
    struct pollfd pfd = {r->client_fd, POLLRDHUP, 0};

    return r->client_fd >= 0 && poll(&pfd, 1, 0) == 1 &&
           (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void
dp_req_resume_locked(dp_req *r)
{
    if (r->suspended && !r->client_gone) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        if (r->kick != NULL) {
            r->kick(r->kick_arg);
        }
    }
}

/* ---- answers --------------------------------------------------------- */

/* dp_req_mark_decision_locked makes the answer carry what the decision
 * says about itself: the policy revision and bundle hash, and (when the
 * bundle asks) the audit-mode rules that matched. r->mtx held. */
static void
dp_req_mark_decision_locked(dp_req *r)
{
    size_t n = 0;

    r->include_revision = true;
    r->revision         = r->dec.policy_revision;
    snprintf(r->revision_hash, sizeof(r->revision_hash), "%.*s",
             DP_HASH_SHOWN, r->dec.bundle_hash);
    if (!r->dec.audit_hits_header || r->audit_hits != NULL) {
        return;
    }
    for (uint32_t i = 0; i < r->dec.n_matched; i++) {
        n += r->dec.matched[i].enforced ? 0 : strlen(r->dec.matched[i].rule_id) + 2;
    }
    if (n == 0 || (r->audit_hits = malloc(n + 1)) == NULL) {
        return; /* no hits (or no memory: the header is left out) */
    }
    n = 0;
    for (uint32_t i = 0; i < r->dec.n_matched; i++) {
        if (!r->dec.matched[i].enforced) {
            n += (size_t)sprintf(r->audit_hits + n, "%s%s", n > 0 ? ", " : "",
                                 r->dec.matched[i].rule_id);
        }
    }
}

/* dp_req_gem_body renders a whole answer (an OpenAI completion or error
 * body) for a Gemini client into b; returns the status it goes with. */
static unsigned
dp_req_gem_body(dp_req *r, unsigned status, const char *body, size_t len,
                tg_buf *b)
{
    long   retry = strtol(r->retry_after, NULL, 10);
    tg_err rv;

    if (status >= 200 && status < 300) {
        rv = r->gem_op == DP_GEMIN_COUNT ? tg_buf_append(b, body, len)
                                         : dp_gemin_reply(body, len, b);
        if (rv == TG_OK) {
            return status;
        }
        tg_buf_reset(b);
        status = 502;
        rv     = dp_gemin_error(status,
                                "The provider's answer could not be put in "
                                    "Gemini's form (a function call's arguments "
                                    "are not a JSON object).",
                                "upstream_error", 0, b);
    } else {
        rv = dp_gemin_error_from_openai(
            status, body, len, status == 429 || status == 503 ? retry : 0, b);
    }
    return rv == TG_OK ? status : 500;
}

void
dp_req_respond(dp_req *r, unsigned status, const char *body, size_t len)
{
    tg_buf gb;

    if (r->hold_answers) {
        /* Its record is spooled first (dp_worker_finish), then this is
         * delivered. */
        r->ans_kind   = DP_ANS_COMPLETE;
        r->ans_status = status;
        tg_buf_reset(&r->ans_body);
        if (tg_buf_append(&r->ans_body, body, len) != TG_OK) {
            r->ans_status = 500;
            tg_buf_reset(&r->ans_body);
        }
        return;
    }
    tg_buf_init(&gb, 0);
    if (r->gem_op != DP_GEMIN_NONE) {
        status = dp_req_gem_body(r, status, body, len, &gb);
        body   = gb.data != NULL ? gb.data : "";
        len    = gb.len;
    }
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
            dp_req_mark_decision_locked(r);
        }
        if (r->dep != NULL) {
            snprintf(r->served_by, sizeof(r->served_by), "%s", r->dep->dep->id);
        }
        dp_req_resume_locked(r);
    }
    pthread_mutex_unlock(&r->mtx);
    tg_buf_fini(&gb);
    dp_metrics_count_status(r->m, status);
}

void
dp_req_error(dp_req *r, unsigned status, const char *message, const char *type,
             const char *param, const char *code)
{
    tg_buf b;

    if (r->ans_code[0] == '\0' && code != NULL) {
        snprintf(r->ans_code, sizeof(r->ans_code), "%s", code);
    }
    tg_buf_init(&b, 0);
    if (dp_client_error(r->endpoint, &b, message, type, param, code) == TG_OK) {
        dp_req_respond(r, status, b.data, b.len);
    } else {
        dp_req_respond(r, 500, "", 0);
    }
    tg_buf_fini(&b);
}

void
dp_req_stream_commit_locked(dp_req *r)
{
    dp_metrics_count_status(r->m, 200);
    r->up_streaming     = true;
    r->phase            = DP_PHASE_STREAMING;
    r->status           = 200;
    dp_req_mark_decision_locked(r);
    snprintf(r->served_by, sizeof(r->served_by), "%s", r->dep->dep->id);
    dp_req_resume_locked(r);
}

tg_err
dp_req_out_locked(dp_req *r, const char *data, size_t len)
{
    if (r->gem_op == DP_GEMIN_NONE) {
        return tg_buf_append(&r->out, data, len);
    }
    if (r->gem_st == NULL &&
        (r->gem_st = dp_gemin_stream_create(r->gem_model)) == NULL) {
        return TG_ENOMEM;
    }
    return dp_gemin_stream_feed(r->gem_st, data, len, &r->out);
}

void
dp_req_stream_end(dp_req *r, const char *error_message)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    if (error_message != NULL) {
        dp_client_error_event(
            r->endpoint, &b, error_message,
            r->end_type != NULL ? r->end_type : "server_error",
            r->end_code != NULL ? r->end_code : "upstream_error");
    }
    pthread_mutex_lock(&r->mtx);
    if (tg_buf_error(&b) != TG_OK ||
        (b.len > 0 && dp_req_out_locked(r, b.data, b.len) != TG_OK) ||
        (r->gem_st != NULL &&
         dp_gemin_stream_finish(r->gem_st, &r->out) != TG_OK)) {
        tg_warn("request %s: out of memory for its final error event; the "
                "stream ends without it",
                r->request_id);
    }
    r->out_done = true;
    dp_req_resume_locked(r);
    pthread_mutex_unlock(&r->mtx);
    tg_buf_fini(&b);
}

/* ---- prepared answers ------------------------------------------------ */

void
dp_req_prepare_error(dp_req *r, unsigned status, const char *message,
                     const char *type, const char *param, const char *code)
{
    r->ans_kind   = DP_ANS_COMPLETE;
    r->ans_status = status;
    if (code != NULL) {
        snprintf(r->ans_code, sizeof(r->ans_code), "%s", code);
    }
    tg_buf_reset(&r->ans_body);
    if (dp_client_error(r->endpoint, &r->ans_body, message, type, param,
                        code) != TG_OK) {
        r->ans_status = 500;
        tg_buf_reset(&r->ans_body);
    }
}

void
dp_req_prepare_stream_end(dp_req *r, const tg_buf *tail, const char *message)
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

void
dp_req_guard_end(dp_req *r)
{
    bool blocked = r->guard != NULL && !r->guard->failed;

    r->end_type = blocked ? "invalid_request_error" : "server_error";
    r->end_code = blocked ? "guardrail_blocked" : "guardrail_error";
    snprintf(r->ans_code, sizeof(r->ans_code), "%s", r->end_code);
    if (r->ans_kind != DP_ANS_STREAM_END) {
        dp_req_prepare_stream_end(r, NULL, NULL);
    }
    snprintf(r->ans_msg, sizeof(r->ans_msg), "%s",
             r->guard != NULL ? r->guard->block_msg : "Blocked by a guardrail.");
}

unsigned
dp_req_prepare_failure(dp_req *r)
{
    unsigned status = r->have_err ? r->err.status : 502;

    if (r->have_err && r->err.pass_body && r->err_body.len > 0) {
        snprintf(r->ans_code, sizeof(r->ans_code), "%s",
                 r->err.code[0] != '\0' ? r->err.code : "upstream_error");
        r->ans_kind   = DP_ANS_COMPLETE;
        r->ans_status = status;
        tg_buf_reset(&r->ans_body);
        if (tg_buf_append(&r->ans_body, r->err_body.data, r->err_body.len) !=
            TG_OK) {
            r->ans_status = 500;
            tg_buf_reset(&r->ans_body);
        }
    } else if (r->have_err) {
        dp_req_prepare_error(r, status, r->err.message, r->err.type,
                             r->err.param[0] != '\0' ? r->err.param : NULL,
                             r->err.code);
    } else {
        dp_req_prepare_error(r, 503, "No deployment could serve the request.",
                             "server_error", "model",
                             "no_deployment_available");
        status = 503;
    }
    return status;
}

void
dp_req_deliver(dp_req *r)
{
    r->hold_answers = false;
    switch ((dp_ans_kind)r->ans_kind) {
    case DP_ANS_COMPLETE:
        dp_req_respond(r, r->ans_status, r->ans_body.data, r->ans_body.len);
        break;
    case DP_ANS_STREAM_END:
        if (r->ans_body.len > 0) {
            pthread_mutex_lock(&r->mtx);
            if (dp_req_out_locked(r, r->ans_body.data, r->ans_body.len) !=
                TG_OK) {
                tg_warn("request %s: out of memory for the end of the "
                        "stream",
                        r->request_id);
            }
            pthread_mutex_unlock(&r->mtx);
        }
        dp_req_stream_end(r, r->ans_msg[0] != '\0' ? r->ans_msg : NULL);
        break;
    case DP_ANS_NONE:
        break;
    }
    r->ans_kind = DP_ANS_NONE;
}
