/* dp_resp_api.c - see dp_resp_api.h. */
#include "dp_resp_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_pdp.h"
#include "dp_provider.h"
#include "dp_req.h"
#include "dp_resp_store.h"
#include "tg_log.h"

static bool
dp_resp_api_id_ok(const char *id, size_t n)
{
    if (n == 0 || n >= sizeof(((dp_resp_api *)0)->id)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

unsigned
dp_resp_api_parse(const char *url, const char *method, const char *limit,
                  const char *order, const char *after, dp_resp_api *out,
                  char *msg, size_t msglen, const char **param,
                  const char **code)
{
    const char *id    = url + strlen("/v1/responses/");
    const char *slash = strchr(id, '/');
    size_t      n     = slash != NULL ? (size_t)(slash - id) : strlen(id);
    char       *end;

    memset(out, 0, sizeof(*out));
    *param     = "";
    *code      = "not_found";
    out->limit = DP_RESP_PAGE_DEFAULT;
    if ((slash != NULL && strcmp(slash, "/input_items") != 0) ||
        !dp_resp_api_id_ok(id, n)) {
        snprintf(msg, msglen,
                 "No response found at '%.200s': Tollgate serves "
                 "/v1/responses/{id} (GET, DELETE) and "
                 "/v1/responses/{id}/input_items (GET).",
                 url);
        return 404;
    }
    memcpy(out->id, id, n);
    out->items = slash != NULL;
    if (strcmp(method, "GET") == 0) {
        out->op = DP_RESP_GET;
    } else if (strcmp(method, "DELETE") == 0 && !out->items) {
        out->op = DP_RESP_DEL;
    } else {
        *code = "method_not_allowed";
        snprintf(msg, msglen, "Method %.20s is not allowed here; use %s.",
                 method, out->items ? "GET" : "GET or DELETE");
        return 405;
    }
    if (!out->items) {
        return 0;
    }
    *code = "invalid_value";
    if (limit != NULL) {
        long long v = strtoll(limit, &end, 10);
        if (limit[0] == '\0' || *end != '\0' || v < 1 || v > DP_RESP_PAGE_MAX) {
            *param = "limit";
            snprintf(msg, msglen, "limit must be a whole number from 1 to %d.",
                     DP_RESP_PAGE_MAX);
            return 400;
        }
        out->limit = v;
    }
    if (order != NULL && strcmp(order, "asc") != 0 &&
        strcmp(order, "desc") != 0) {
        *param = "order";
        snprintf(msg, msglen, "order must be 'asc' or 'desc'.");
        return 400;
    }
    out->asc = order != NULL && strcmp(order, "asc") == 0;
    if (after != NULL) {
        if (after[0] == '\0' || strlen(after) >= sizeof(out->after)) {
            *param = "after";
            snprintf(msg, msglen, "after must be the id of an input item.");
            return 400;
        }
        memcpy(out->after, after, strlen(after) + 1);
    }
    return 0;
}

/* dp_resp_api_error puts an OpenAI error body in r's answer. */
static void
dp_resp_api_error(dp_req *r, unsigned status, const char *msg, const char *type,
                  const char *param, const char *code)
{
    tg_buf_reset(&r->out);
    r->status = status;
    if (dp_client_error(TG_EP_CHAT_COMPLETIONS, &r->out, msg, type, param,
                        code) != TG_OK) {
        tg_buf_reset(&r->out);
    }
}

/* dp_resp_api_answer fills r's answer from the PDP's reply. Under r's
 * mutex. */
static void
dp_resp_api_answer(dp_req *r, tg_err err, const dp_wire_resp *rep)
{
    const dp_resp_api *a = r->rapi;
    char               msg[256];
    tg_err             rv;

    if (err != TG_OK || rep->status == DP_RESP_ERROR) {
        dp_resp_api_error(r, 503,
                          "The gateway could not reach its stored "
                          "responses; retry.",
                          "server_error", NULL, "pdp_unavailable");
    } else if (rep->status == DP_RESP_BAD_KEY) {
        dp_resp_api_error(r, 401,
                          "Incorrect API key provided: it is not a valid "
                          "Tollgate virtual key.",
                          "invalid_request_error", NULL, "invalid_api_key");
    } else if (rep->status != DP_RESP_OK) {
        snprintf(msg, sizeof(msg), "Response with id '%s' not found.", a->id);
        dp_resp_api_error(r, 404, msg, "invalid_request_error", NULL,
                          "not_found");
    } else if (a->op == DP_RESP_DEL) {
        tg_buf_reset(&r->out);
        r->status = 200;
        tg_buf_addf(&r->out,
                    "{\"id\":\"%s\",\"object\":\"response\",\"deleted\":true}",
                    a->id);
    } else if (!a->items) {
        tg_buf_reset(&r->out);
        r->status = 200;
        tg_buf_add(&r->out, rep->response != NULL ? rep->response : "{}",
                   rep->response != NULL ? rep->response_len : 2);
    } else if ((rv = dp_resp_store_page(rep->items != NULL ? rep->items : "[]",
                                        rep->items != NULL ? rep->items_len : 2,
                                        a->limit, !a->asc,
                                        a->after[0] != '\0' ? a->after : NULL,
                                        &r->out)) == TG_ENOTFOUND) {
        snprintf(msg, sizeof(msg),
                 "after: no input item '%.100s' in response '%s'.", a->after,
                 a->id);
        dp_resp_api_error(r, 400, msg, "invalid_request_error", "after",
                          "invalid_value");
    } else if (rv != TG_OK) {
        dp_resp_api_error(r, 500, "The stored response is damaged.",
                          "server_error", NULL, "internal_error");
    } else {
        r->status = 200;
    }
}

static void
dp_resp_api_done(void *arg, tg_err err, dp_wire_resp *rep, const char *why)
{
    dp_req *r = arg;

    if (err != TG_OK) {
        tg_warn("request %s: stored responses: %s", r->request_id, why);
    }
    pthread_mutex_lock(&r->mtx);
    dp_resp_api_answer(r, err, rep);
    r->phase    = DP_PHASE_COMPLETE;
    r->out_done = true;
    dp_req_resume_locked(r);
    pthread_mutex_unlock(&r->mtx);
    dp_wire_resp_fini(rep);
    dp_req_unref(r);
}

tg_err
dp_resp_api_start(struct dp_pdp *pdp, struct dp_req *r, int64_t timeout_ms)
{
    dp_wire_resp q;
    tg_err       rv;

    memset(&q, 0, sizeof(q));
    memcpy(q.key_hash, r->key_hash, sizeof(q.key_hash));
    memcpy(q.id, r->rapi->id, sizeof(q.id));
    dp_req_ref(r);
    rv = dp_pdp_resp(pdp, r->rapi->op, r->request_id, &q, timeout_ms,
                     dp_resp_api_done, r);
    if (rv != TG_OK) {
        dp_req_unref(r);
    }
    return rv;
}
