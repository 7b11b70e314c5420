/* dp_server.c - the client-facing listener (libmicrohttpd, driven by
 * worker 0's loop): framing, the gateway's own paths, request set-up,
 * hand-off to a worker and the answer back. Its life (create, drain,
 * destroy) is dp_server_life.c. */
#include "dp_server.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "dp_host.h"
#include "dp_resp_api.h"
#include "dp_resp_client.h"
#include "dp_resp_keep.h"
#include "dp_server_int.h"
#include "dp_otel.h"
#include "dp_metrics.h"
#include "dp_req.h"
#include "dp_reuse.h"
#include "dp_worker.h"
#include "tg_deadline.h"
#include "tg_framing.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_OUT_LOW (256u << 10) /* unpause upstream below this backlog */
#define DP_KEY_MAX 512

static const char DP_META_PREFIX[] = "x-tollgate-meta-";

size_t
dp_server_workers(const dp_server *srv)
{
    return srv->n_workers;
}

/* ---- small responses on the MHD thread ------------------------------ */

/* dp_server_request_read stops conn's request deadline: the request is
 * in, and deciding, calling upstream and retrying take the server's time,
 * not the client's. */
static void
dp_server_request_read(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    if (ci != NULL) {
        tg_deadline_disarm(ci->socket_context);
    }
}

/* dp_server_answering starts conn's response deadline: the answer is
 * queued and must be taken within response_timeout_s, however slowly the
 * client reads. */
static void
dp_server_answering(dp_server *srv, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    if (ci != NULL) {
        tg_deadline_arm_for(ci->socket_context,
                            srv->cfg->dataplane.response_timeout_s * 1000);
    }
}

/* dp_server_new_id writes a request id: a random per-process prefix and a
 * counter, so ids never repeat across restarts (usage is idempotent by
 * them) and cost no system call. */
static void
dp_server_new_id(dp_server *srv, char *out, size_t len)
{
    snprintf(out, len, "req_%016llx%012llx", (unsigned long long)srv->boot_id,
             (unsigned long long)atomic_fetch_add(&srv->seq, 1));
}

static enum MHD_Result
dp_server_send(dp_server *srv, struct MHD_Connection *conn, unsigned status,
               const char *ctype, const char *body, size_t len,
               const char *request_id, const char *allow)
{
    struct MHD_Response *resp;
    enum MHD_Result      ret;
    char                 rid[TG_REQUEST_ID_MAX];

    if (request_id == NULL) { /* every response carries one */
        dp_server_new_id(srv, rid, sizeof(rid));
        request_id = rid;
    }
    dp_server_answering(srv, conn);

    resp = MHD_create_response_from_buffer(len, (void *)body,
                                           MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "x-request-id", request_id);
    if (allow != NULL) {
        MHD_add_response_header(resp, "Allow", allow);
    }
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* dp_server_key is the virtual key the request presents (Authorization:
 * Bearer, else x-api-key); NULL when none. */
static const char *
dp_server_key(struct MHD_Connection *conn, bool gem)
{
    const char *auth =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *key;

    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        for (key = auth + 7; *key == ' '; key++) {
        }
        return key;
    }
    if ((key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "x-api-key")) != NULL ||
        !gem) {
        return key;
    }
    /* Gemini clients: x-goog-api-key, or ?key= (never logged: MHD hands
     * paths over without their query). */
    if ((key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "x-goog-api-key")) != NULL) {
        return key;
    }
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
}

/* A Gemini API path's errors: Google's error shape, recorded as the chat
 * completion the request is inside (dp_server_send_error). Never sent to
 * the PDP. */
#define DP_SERVER_EP_GEMINI ((tg_endpoint)100)

/* dp_server_record_refusal spools the decision record of a request on a
 * model path refused here, before any worker took it (wrong content type,
 * too large, bad metadata headers, stopping), when it carries a key (the
 * PDP names it from its hash): every keyed request leaves one. */
static void
dp_server_record_refusal(dp_server *srv, struct MHD_Connection *conn,
                         tg_endpoint ep, unsigned status, const char *code,
                         const char *request_id)
{
    const char *key = dp_server_key(conn, ep == DP_SERVER_EP_GEMINI);
    tg_usage   *u;

    if (ep == TG_EP_UNSPECIFIED || srv->n_pdps == 0) {
        return;
    }
    ep = ep == DP_SERVER_EP_GEMINI ? TG_EP_CHAT_COMPLETIONS : ep;
    if (key == NULL || key[0] == '\0' || strlen(key) > DP_KEY_MAX ||
        (u = calloc(1, sizeof(*u))) == NULL) {
        return; /* no key (or not one): nobody to record it for */
    }
    snprintf(u->request_id, sizeof(u->request_id), "%s", request_id);
    u->endpoint             = ep;
    u->status               = status;
    u->started_ms           = tg_now_ms();
    u->abandoned            = true; /* nothing went upstream */
    u->outcome.present      = true;
    u->outcome.has_key_hash = true;
    tg_sha256(key, strlen(key), u->outcome.key_hash);
    snprintf(u->outcome.origin, sizeof(u->outcome.origin), "dataplane");
    snprintf(u->outcome.error_code, sizeof(u->outcome.error_code), "%s", code);
    dp_req_client_ip(conn, u->outcome.client_ip, sizeof(u->outcome.client_ip));
    if (dp_spool_put(srv->spools[dp_host_pick(&srv->host)], u) != TG_OK) {
        tg_warn("request %s: its decision record could not be queued (out of "
                "memory)",
                request_id);
    }
    free(u);
}

static enum MHD_Result
dp_server_send_error(dp_server *srv, struct MHD_Connection *conn,
                     tg_endpoint ep, unsigned status, const char *message,
                     const char *type, const char *code, const char *request_id,
                     const char *allow)
{
    tg_buf          b;
    enum MHD_Result ret;
    char            rid[TG_REQUEST_ID_MAX];

    if (request_id == NULL) {
        dp_server_new_id(srv, rid, sizeof(rid));
        request_id = rid;
    }
    dp_server_record_refusal(srv, conn, ep, status, code, request_id);
    tg_buf_init(&b, 0);
    /* In the client's format: Anthropic's for /v1/messages, Google's for
     * the Gemini paths. */
    if (ep == DP_SERVER_EP_GEMINI) {
        dp_gemin_error(status, message, code, 0, &b);
    } else {
        dp_client_error(ep, &b, message, type, NULL, code);
    }
    ret = dp_server_send(srv, conn, status, "application/json", b.data, b.len,
                         request_id, allow);
    tg_buf_fini(&b);
    dp_metrics_count_status(&srv->m, status);
    return ret;
}

static enum MHD_Result
dp_server_too_large(dp_server *srv, struct MHD_Connection *conn, tg_endpoint ep,
                    const char *request_id)
{
    char msg[160];

    snprintf(msg, sizeof(msg),
             "The request body is larger than this gateway accepts (%lld "
             "bytes).",
             (long long)srv->cfg->dataplane.max_body_bytes);
    return dp_server_send_error(srv, conn, ep, 413, msg,
                                "invalid_request_error", "request_too_large",
                                request_id, NULL);
}

static enum MHD_Result
dp_server_metrics(dp_server *srv, struct MHD_Connection *conn)
{
    tg_buf          b;
    enum MHD_Result ret;

    tg_buf_init(&b, 0);
    dp_metrics_text(&srv->host, &b);
    if (tg_buf_error(&b) != TG_OK) {
        static const char oom[] = "out of memory\n";
        ret = dp_server_send(srv, conn, 500, "text/plain", oom, sizeof(oom) - 1,
                             NULL, NULL);
    } else {
        ret = dp_server_send(srv, conn, 200, "text/plain; version=0.0.4",
                             b.data, b.len, NULL, NULL);
    }
    tg_buf_fini(&b);
    return ret;
}

/* dp_server_deployments answers GET /admin/deployments. */
static enum MHD_Result
dp_server_deployments(dp_server *srv, struct MHD_Connection *conn)
{
    char           *txt = dp_metrics_deployments(&srv->host);
    enum MHD_Result ret;

    if (txt == NULL) {
        return MHD_NO;
    }
    ret = dp_server_send(srv, conn, 200, "application/json", txt, strlen(txt),
                         NULL, NULL);
    cJSON_free(txt);
    return ret;
}

/* ---- request set-up ------------------------------------------------- */

typedef struct dp_meta_ctx {
    dp_req *r;
    bool    bad;
    char    bad_name[80];
} dp_meta_ctx;

static enum MHD_Result
dp_server_meta_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                    const char *value)
{
    dp_meta_ctx *c      = cls;
    size_t       plen   = sizeof(DP_META_PREFIX) - 1;
    const char  *suffix = key + plen;

    (void)kind;
    if (strncasecmp(key, DP_META_PREFIX, plen) != 0) {
        return MHD_YES;
    }
    if (c->r->n_meta >= TG_MSG_META_MAX || suffix[0] == '\0' ||
        strlen(suffix) >= TG_MSG_META_KEY_MAX || value == NULL ||
        strlen(value) >= TG_MSG_META_VAL_MAX) {
        c->bad = true;
        snprintf(c->bad_name, sizeof(c->bad_name), "%.79s", key);
        return MHD_NO;
    }
    if (c->r->meta == NULL &&
        (c->r->meta = calloc(TG_MSG_META_MAX, sizeof(*c->r->meta))) == NULL) {
        c->bad = true;
        snprintf(c->bad_name, sizeof(c->bad_name), "%.79s", key);
        return MHD_NO;
    }
    tg_kv *kv = &c->r->meta[c->r->n_meta++];
    for (size_t i = 0; suffix[i] != '\0'; i++) {
        kv->key[i] =
            (char)(suffix[i] >= 'A' && suffix[i] <= 'Z' ? suffix[i] + 32
                                                        : suffix[i]);
        kv->key[i + 1] = '\0';
    }
    snprintf(kv->value, sizeof(kv->value), "%s", value);
    return MHD_YES;
}

/* dp_server_trace_id keeps the trace id of a valid W3C traceparent
 * ("00-<32 hex>-<16 hex>-<2 hex>", ids not all zeros) for the decision
 * record; anything else is ignored. */
static void
dp_server_trace_id(struct MHD_Connection *conn, dp_req *r)
{
    const char *tp =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    bool nonzero = false;

    if (tp == NULL || strlen(tp) < 55 || tp[2] != '-' || tp[35] != '-' ||
        tp[52] != '-' || (tp[55] != '\0' && tp[55] != '-') ||
        strncmp(tp, "ff", 2) == 0) {
        return;
    }
    for (int i = 0; i < 55; i++) {
        char c = tp[i];
        if (i == 2 || i == 35 || i == 52) {
            continue;
        }
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return;
        }
        nonzero = nonzero || (i >= 3 && i < 35 && c != '0');
    }
    if (nonzero && strncmp(tp + 36, "0000000000000000", 16) != 0) {
        memcpy(r->trace_id, tp + 3, 32);
        r->trace_id[32] = '\0';
        memcpy(r->parent_span, tp + 36, 16);
        r->parent_span[16] = '\0';
    }
}

/* dp_server_take_key hashes the presented virtual key; the key itself is
 * never kept, logged or sent anywhere. */
static bool
dp_server_take_key(struct MHD_Connection *conn, dp_req *r)
{
    const char *key = dp_server_key(conn, r->gem_op != DP_GEMIN_NONE);

    if (key == NULL || key[0] == '\0') {
        return true;
    }
    if (strlen(key) > DP_KEY_MAX) {
        return false;
    }
    tg_sha256(key, strlen(key), r->key_hash);
    r->has_key = true;
    return true;
}

/* dp_server_kick: a connection was resumed; the loop driving MHD runs
 * it (worker 0, or the thread that flushes at stop). */
static void
dp_server_kick(void *arg)
{
    dp_server *srv = arg;

    if (srv->n_workers > 0) {
        dp_worker_wake(srv->workers[0]);
    }
}

static dp_req *
dp_server_req_new(dp_server *srv, struct MHD_Connection *conn, tg_endpoint ep)
{
    char    rid[TG_REQUEST_ID_MAX];
    dp_req *r;

    dp_server_new_id(srv, rid, sizeof(rid));
    r = dp_req_create(&srv->m, conn, ep, rid,
                      (size_t)srv->cfg->dataplane.max_body_bytes);
    if (r != NULL) {
        r->kick     = dp_server_kick;
        r->kick_arg = srv;
    }
    return r;
}

static bool
dp_server_is_json(const char *ctype)
{
    static const char json[] = "application/json";

    if (ctype == NULL || strncasecmp(ctype, json, sizeof(json) - 1) != 0) {
        return false;
    }
    ctype += sizeof(json) - 1;
    return *ctype == '\0' || *ctype == ';' || *ctype == ' ';
}

/* ---- streaming ------------------------------------------------------ */

/* dp_server_read_end ends a reader call with r->mtx held: n bytes given
 * (curl resumed once the backlog drained below DP_OUT_LOW), the end of
 * the stream, or nothing yet, parking the connection until the worker
 * has bytes. Unlocks r->mtx. */
static ssize_t
dp_server_read_end(dp_req *r, size_t n)
{
    if (n > 0) {
        if (r->curl_paused && r->out.len - r->out_off < DP_OUT_LOW) {
            r->curl_paused = false;
            pthread_mutex_unlock(&r->mtx);
            dp_worker_unpause(r->worker, r);
            return (ssize_t)n;
        }
        pthread_mutex_unlock(&r->mtx);
        return (ssize_t)n;
    }
    if (r->out_done) {
        pthread_mutex_unlock(&r->mtx);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->mtx);
    return 0;
}

/* dp_server_out_compact drops what the client has read from r->out: all
 * of it at once, or the read head once it is over half the buffer, so a
 * slow reader with a large backlog costs no quadratic copying. */
static void
dp_server_out_compact(dp_req *r)
{
    if (r->out_off == r->out.len) {
        tg_buf_reset(&r->out);
        r->out_off = 0;
    } else if (r->out_off > r->out.len / 2) {
        tg_buf_consume(&r->out, r->out_off);
        r->out_off = 0;
    }
}

static ssize_t
dp_server_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    dp_req *r = cls;
    size_t  n = 0;

    (void)pos;
    pthread_mutex_lock(&r->mtx);
    if (r->out.len > r->out_off) {
        size_t left = r->out.len - r->out_off;
        n           = left < max ? left : max;
        memcpy(buf, r->out.data + r->out_off, n);
        r->out_off += n;
        dp_server_out_compact(r);
    }
    return dp_server_read_end(r, n);
}

/* dp_server_resp_reader is dp_server_reader for a Responses client: the
 * chat events in r->out are translated (dp_resp_client_pump) and the
 * translation is what the client reads. */
static ssize_t
dp_server_resp_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    dp_req *r = cls;
    size_t  n;

    (void)pos;
    pthread_mutex_lock(&r->mtx);
    dp_resp_client_pump(r->resp, &r->out, &r->out_off, r->out_done);
    dp_server_out_compact(r);
    n = dp_resp_client_take(r->resp, buf, max);
    if (n == 0 && dp_resp_keep_wait(r)) {
        /* The final event waits for the response to be stored. */
        r->suspended = true;
        MHD_suspend_connection(r->conn);
        pthread_mutex_unlock(&r->mtx);
        return 0;
    }
    if (n == 0) {
        n = dp_resp_client_take(r->resp, buf, max);
    }
    return dp_server_read_end(r, n);
}

static void
dp_server_reader_free(void *cls)
{
    dp_req_unref(cls);
}

/* dp_server_limit_headers adds OpenAI's x-ratelimit-* headers from the
 * decision's limits ("requests", "tokens"); "retry" is the PDP's hint for
 * retry-after on its own 429s (set by dp_worker into r->retry_after). */
static void
dp_server_limit_headers(struct MHD_Response *resp, const dp_decision *d)
{
    for (uint32_t i = 0; i < d->n_limits && i < TG_MSG_LIMITS_MAX; i++) {
        const tg_limit_state *l = &d->limits[i];
        char                  name[48];
        char                  val[32];

        if (strcmp(l->name, "requests") != 0 &&
            strcmp(l->name, "tokens") != 0) {
            continue;
        }
        snprintf(name, sizeof(name), "x-ratelimit-limit-%s", l->name);
        snprintf(val, sizeof(val), "%lld", (long long)l->limit);
        MHD_add_response_header(resp, name, val);
        snprintf(name, sizeof(name), "x-ratelimit-remaining-%s", l->name);
        snprintf(val, sizeof(val), "%lld", (long long)l->remaining);
        MHD_add_response_header(resp, name, val);
        snprintf(name, sizeof(name), "x-ratelimit-reset-%s", l->name);
        tg_format_reset(l->reset_ms, val, sizeof(val));
        MHD_add_response_header(resp, name, val);
    }
}

static enum MHD_Result
dp_server_queue(dp_server *srv, struct MHD_Connection *conn, dp_req *r)
{
    struct MHD_Response *resp;
    enum MHD_Result      ret;
    char                 rev[48];
    bool                 stream;

    dp_server_answering(srv, conn);
    pthread_mutex_lock(&r->mtx);
    stream = r->phase == DP_PHASE_STREAMING;
    if (stream) {
        dp_req_ref(r); /* the response's, released by reader_free */
        resp = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, 1024,
            r->resp != NULL ? dp_server_resp_reader : dp_server_reader, r,
            dp_server_reader_free);
    } else {
        if (r->resp != NULL && !r->resp->body_done && r->status >= 200 &&
            r->status < 300 && dp_resp_client_body(r->resp, &r->out) != TG_OK) {
            /* Never a chat body to a Responses client. */
            tg_buf_reset(&r->out);
            r->status = 502;
            if (dp_client_error(r->endpoint, &r->out,
                                "The gateway could not translate the "
                                "provider's answer into a Response.",
                                "server_error", NULL,
                                "translation_error") != TG_OK) {
                tg_buf_reset(&r->out);
            }
        }
        resp = MHD_create_response_from_buffer(r->out.len, r->out.data,
                                               MHD_RESPMEM_MUST_COPY);
    }
    pthread_mutex_unlock(&r->mtx);
    if (resp == NULL) {
        if (stream) {
            dp_req_unref(r);
        }
        return MHD_NO;
    }
    MHD_add_response_header(resp, "x-request-id", r->request_id);
    if (r->served_by[0] != '\0') {
        MHD_add_response_header(resp, "x-tollgate-deployment", r->served_by);
    }
    if (r->resp != NULL && r->resp->keep_why[0] != '\0') {
        MHD_add_response_header(resp, "x-tollgate-store", r->resp->keep_why);
    }
    if (r->include_revision) {
        if (r->revision_hash[0] != '\0') {
            snprintf(rev, sizeof(rev), "%llu; hash=%s",
                     (unsigned long long)r->revision, r->revision_hash);
        } else {
            snprintf(rev, sizeof(rev), "%llu", (unsigned long long)r->revision);
        }
        MHD_add_response_header(resp, "x-tollgate-policy-revision", rev);
    }
    if (r->have_decision) {
        dp_server_limit_headers(resp, &r->dec);
    }
    if (r->audit_hits != NULL) {
        MHD_add_response_header(resp, "x-tollgate-audit-hits", r->audit_hits);
    }
    if (stream) {
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    } else {
        MHD_add_response_header(resp, "Content-Type", "application/json");
        if (r->retry_after[0] != '\0' &&
            (r->status == 429 || r->status == 503)) {
            MHD_add_response_header(resp, "Retry-After", r->retry_after);
        }
    }
    r->queued = true;
    ret       = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    (void)srv;
    return ret;
}

/* ---- the access handler --------------------------------------------- */

/* dp_server_refuse answers a request whose framing or size we will not
 * read on from, and closes the connection: whatever follows on it cannot
 * be trusted to start a request (RFC 9112, section 6.3). */
static enum MHD_Result
dp_server_refuse(dp_server *srv, struct MHD_Connection *conn, unsigned status,
                 const char *message, const char *code)
{
    struct MHD_Response *resp;
    enum MHD_Result      ret;
    tg_buf               b;
    char                 rid[TG_REQUEST_ID_MAX];

    dp_server_new_id(srv, rid, sizeof(rid));
    dp_server_answering(srv, conn);
    tg_buf_init(&b, 0);
    dp_client_error(TG_EP_UNSPECIFIED, &b, message, "invalid_request_error",
                    NULL, code);
    resp =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    tg_buf_fini(&b);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "x-request-id", rid);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    atomic_fetch_add(&srv->m.responses[status / 100], 1);
    return ret;
}

/* dp_server_framing refuses a request whose length is ambiguous or whose
 * headers are over max_header_bytes (tg_framing). Returns true if it
 * answered. */
static bool
dp_server_framing(dp_server *srv, struct MHD_Connection *conn, const char *url,
                  const char *method, enum MHD_Result *ret)
{
    tg_framing_refusal why;

    if (!tg_framing_check(conn, url, method,
                          (size_t)srv->cfg->dataplane.max_header_bytes, &why)) {
        return false;
    }
    *ret = dp_server_refuse(srv, conn, why.status, why.message, why.code);
    return true;
}

/* dp_server_own_path answers the gateway's own paths: /healthz, /readyz,
 * /metrics and /admin/deployments. False: url is none of them. */
static bool
dp_server_own_path(dp_server *srv, struct MHD_Connection *conn, const char *url,
                   const char *method, enum MHD_Result *ret)
{
    static const char nr[] =
        "{\"status\":\"not ready\",\"reason\":\"no connection to the "
        "PDP at dataplane.pdp_url\"}";
    bool admin = strcmp(url, "/admin/deployments") == 0;

    if (!admin && strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0 &&
        strcmp(url, "/metrics") != 0) {
        return false;
    }
    if (strcmp(method, "GET") != 0 && (admin || strcmp(method, "HEAD") != 0)) {
        *ret = dp_server_send_error(
            srv, conn, TG_EP_UNSPECIFIED, 405, "Use GET on this path.",
            "invalid_request_error", "method_not_allowed", NULL, "GET");
    } else if (admin) {
        *ret = dp_server_deployments(srv, conn);
    } else if (url[1] == 'm') {
        *ret = dp_server_metrics(srv, conn);
    } else if (url[1] == 'h') {
        *ret = dp_server_send(srv, conn, 200, "application/json",
                              "{\"status\":\"ok\"}", 15, NULL, NULL);
    } else if (!dp_host_connected(&srv->host) || atomic_load(&srv->stopping) ||
               atomic_load(&srv->draining)) {
        *ret = dp_server_send(srv, conn, 503, "application/json", nr,
                              sizeof(nr) - 1, NULL, NULL);
    } else {
        *ret = dp_server_send(srv, conn, 200, "application/json",
                              "{\"status\":\"ready\"}", 18, NULL, NULL);
    }
    return true;
}

/* dp_server_endpoint maps an API path to its endpoint and the one method
 * it takes; false: not an API path. */
static bool
dp_server_endpoint(const char *url, tg_endpoint *ep, const char **allow)
{
    static const struct {
        const char *url;
        tg_endpoint ep;
        const char *allow;
    } paths[] = {
        {"/v1/chat/completions", TG_EP_CHAT_COMPLETIONS, "POST"},
        {"/v1/messages", TG_EP_MESSAGES, "POST"},
        /* A chat inside: dp_resp_client translates at the edges. */
        {"/v1/responses", TG_EP_CHAT_COMPLETIONS, "POST"},
        {"/v1/embeddings", TG_EP_EMBEDDINGS, "POST"},
        {"/v1/completions", TG_EP_COMPLETIONS, "POST"},
        {"/v1/models", TG_EP_MODELS, "GET"},
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (strcmp(url, paths[i].url) == 0) {
            *ep    = paths[i].ep;
            *allow = paths[i].allow;
            return true;
        }
    }
    return false;
}

/* dp_server_resp_pdp is the PDP that keeps stored responses
 * (dataplane.responses_pdp). */
static struct dp_pdp *
dp_server_resp_pdp(const dp_server *srv)
{
    return srv->pdps[srv->cfg->dataplane.responses_pdp - 1];
}

/* dp_server_resp_api_first checks a request for a stored response
 * (dp_resp_api.h) and its key; its answer comes from the PDP once it has
 * been read (dp_server_resp_api_go). */
static enum MHD_Result
dp_server_resp_api_first(dp_server *srv, struct MHD_Connection *conn,
                         const char *url, const char *method, void **con_cls)
{
    dp_resp_api a;
    char        msg[400];
    const char *param;
    const char *code;
    dp_req     *r;
    unsigned    st = dp_resp_api_parse(
           url, method,
           MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit"),
           MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "order"),
           MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after"), &a,
           msg, sizeof(msg), &param, &code);

    if (st != 0) {
        return dp_server_send_error(srv, conn, TG_EP_CHAT_COMPLETIONS, st, msg,
                                    "invalid_request_error", code, NULL,
                                    st != 405 ? NULL
                                    : a.items ? "GET"
                                              : "GET, DELETE");
    }
    if ((r = dp_server_req_new(srv, conn, TG_EP_CHAT_COMPLETIONS)) == NULL) {
        return MHD_NO;
    }
    *con_cls = r;
    if ((r->rapi = malloc(sizeof(*r->rapi))) == NULL) {
        r->dispatched = true;
        return dp_server_send_error(srv, conn, TG_EP_CHAT_COMPLETIONS, 503,
                                    "The gateway ran out of memory; retry.",
                                    "server_error", "internal_error",
                                    r->request_id, NULL);
    }
    *r->rapi = a;
    if (!dp_server_take_key(conn, r) || !r->has_key) {
        r->dispatched = true;
        return dp_server_send_error(
            srv, conn, TG_EP_CHAT_COMPLETIONS, 401,
            r->has_key ? "The API key is too long to be valid."
                       : "You didn't provide an API key. Send your Tollgate "
                         "virtual key in an Authorization header (Bearer) "
                         "or x-api-key.",
            "invalid_request_error",
            r->has_key ? "invalid_api_key" : "missing_api_key", r->request_id,
            NULL);
    }
    return MHD_YES;
}

/* dp_server_resp_api_go suspends r until the PDP answers its stored
 * response operation. */
static enum MHD_Result
dp_server_resp_api_go(dp_server *srv, struct MHD_Connection *conn, dp_req *r)
{
    tg_err rv;

    dp_server_request_read(conn);
    pthread_mutex_lock(&r->mtx);
    r->suspended = true;
    MHD_suspend_connection(conn);
    pthread_mutex_unlock(&r->mtx);
    rv = dp_resp_api_start(
        dp_server_resp_pdp(srv), r,
        dp_resp_pdp_timeout(srv->cfg->dataplane.pdp_timeout_ms));
    if (rv != TG_OK) {
        pthread_mutex_lock(&r->mtx);
        r->phase    = DP_PHASE_COMPLETE;
        r->status   = 503;
        r->out_done = true;
        tg_buf_reset(&r->out);
        if (dp_client_error(TG_EP_CHAT_COMPLETIONS, &r->out,
                            "The gateway could not reach its stored "
                            "responses; retry.",
                            "server_error", NULL, "pdp_unavailable") != TG_OK) {
            tg_buf_reset(&r->out);
        }
        dp_req_resume_locked(r);
        pthread_mutex_unlock(&r->mtx);
    }
    return MHD_YES;
}

static enum MHD_Result
dp_server_first(dp_server *srv, struct MHD_Connection *conn, const char *url,
                const char *method, void **con_cls)
{
    tg_endpoint     ep;
    const char     *allow;
    const char     *clen;
    dp_req         *r;
    dp_meta_ctx     mc = {0};
    enum MHD_Result ret;
    dp_gemin_op     gop = DP_GEMIN_NONE;
    char            gmodel[TG_MODEL_MAX];

    atomic_fetch_add(&srv->m.requests, 1);
    if (dp_server_framing(srv, conn, url, method, &ret) ||
        dp_server_own_path(srv, conn, url, method, &ret)) {
        return ret;
    }
    if (strncmp(url, "/v1/responses/", 14) == 0) {
        return dp_server_resp_api_first(srv, conn, url, method, con_cls);
    }
    if (dp_gemin_path(url, &gop, gmodel, sizeof(gmodel))) {
        const char *alt =
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "alt");
        ep    = DP_SERVER_EP_GEMINI; /* for the errors below */
        allow = "POST";
        if (gop == DP_GEMIN_NONE || gmodel[0] == '\0') {
            return dp_server_send_error(
                srv, conn, ep, 404,
                "Tollgate serves the Gemini methods generateContent, "
                "streamGenerateContent (alt=sse) and countTokens of "
                "/v1beta/models/{model} (a model name under 128 "
                "characters).",
                "invalid_request_error", "unknown_url", NULL, NULL);
        }
        if (gop == DP_GEMIN_STREAM &&
            (alt == NULL || strcmp(alt, "sse") != 0)) {
            return dp_server_send_error(
                srv, conn, ep, 400,
                "streamGenerateContent is served as server-sent events "
                "only: add ?alt=sse to the URL.",
                "invalid_request_error", "invalid_value", NULL, NULL);
        }
    } else if (!dp_server_endpoint(url, &ep, &allow)) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "Unknown path '%.200s'. Tollgate serves /v1/chat/completions, "
                 "/v1/responses, /v1/messages, /v1/embeddings, "
                 "/v1/completions, /v1/models and Gemini's "
                 "/v1beta/models/{model}:generateContent.",
                 url);
        return dp_server_send_error(srv, conn, TG_EP_UNSPECIFIED, 404, msg,
                                    "invalid_request_error", "unknown_url",
                                    NULL, NULL);
    }
    if (strcmp(method, allow) != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Method %.20s is not allowed here; use %s.",
                 method, allow);
        return dp_server_send_error(srv, conn, ep, 405, msg,
                                    "invalid_request_error",
                                    "method_not_allowed", NULL, allow);
    }
    if (ep != TG_EP_MODELS) {
        const char *ct =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!dp_server_is_json(ct)) {
            return dp_server_send_error(
                srv, conn, ep, 415,
                "Send the request body as JSON with 'Content-Type: "
                "application/json'.",
                "invalid_request_error", "unsupported_media_type", NULL, NULL);
        }
        clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "Content-Length");
        if (clen != NULL &&
            strtoull(clen, NULL, 10) >
                (unsigned long long)srv->cfg->dataplane.max_body_bytes) {
            return dp_server_too_large(srv, conn, ep, NULL);
        }
    }
    /* A Gemini request is a chat completion inside. */
    r = dp_server_req_new(srv, conn,
                          gop != DP_GEMIN_NONE ? TG_EP_CHAT_COMPLETIONS : ep);
    if (r == NULL) {
        return MHD_NO;
    }
    *con_cls = r;
    if (gop != DP_GEMIN_NONE) {
        r->gem_op = gop;
        snprintf(r->gem_model, sizeof(r->gem_model), "%s", gmodel);
    }
    if (strcmp(url, "/v1/responses") == 0 &&
        (r->resp = dp_resp_client_create(r->request_id)) == NULL) {
        r->dispatched = true;
        return dp_server_send_error(
            srv, conn, ep, 503, "The gateway ran out of memory; retry.",
            "server_error", "internal_error", r->request_id, NULL);
    }
    if (!dp_server_take_key(conn, r)) {
        r->dispatched = true; /* answered here */
        return dp_server_send_error(
            srv, conn, ep, 401, "The API key is too long to be valid.",
            "invalid_request_error", "invalid_api_key", r->request_id, NULL);
    }
    mc.r = r;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, dp_server_meta_iter, &mc);
    if (mc.bad) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Header '%s' is not valid: at most %d x-tollgate-meta-* "
                 "headers, names under %d and values under %d characters.",
                 mc.bad_name, TG_MSG_META_MAX, TG_MSG_META_KEY_MAX,
                 TG_MSG_META_VAL_MAX);
        r->dispatched = true;
        return dp_server_send_error(srv, conn, ep, 400, msg,
                                    "invalid_request_error", "invalid_header",
                                    r->request_id, NULL);
    }
    dp_server_trace_id(conn, r);
    return MHD_YES;
}

/* dp_server_dispatch gives r (read whole, suspended) to the worker
 * holding the fewest; on a tie worker 0, which drives MHD, so a request
 * need not change threads. Also from an nng thread (dp_resp_keep). */
static void
dp_server_dispatch(void *arg, dp_req *r)
{
    dp_server *srv = arg;
    unsigned   i   = 0;

    for (size_t k = 1; k < srv->n_workers; k++) {
        i = dp_worker_held(srv->workers[k]) < dp_worker_held(srv->workers[i])
                ? (unsigned)k
                : i;
    }
    if (!dp_worker_submit(srv->workers[i], r)) {
        /* Shutting down (the worker stopped after the check above):
         * answer here, or MHD would stop with a suspended connection. */
        tg_buf b;
        tg_buf_init(&b, 0);
        if (r->gem_op != DP_GEMIN_NONE) {
            dp_gemin_error(503, "The gateway is shutting down; retry.",
                           "shutting_down", 0, &b);
        } else {
            dp_client_error(r->endpoint, &b,
                            "The gateway is shutting down; retry.",
                            "server_error", NULL, "shutting_down");
        }
        pthread_mutex_lock(&r->mtx);
        r->phase    = DP_PHASE_COMPLETE;
        r->status   = 503;
        r->out_done = true;
        if (tg_buf_append(&r->out, b.data, b.len) != TG_OK) {
            tg_warn("request %s: out of memory for its 503 body",
                    r->request_id);
        }
        dp_req_resume_locked(r);
        pthread_mutex_unlock(&r->mtx);
        tg_buf_fini(&b);
    }
}

enum MHD_Result
dp_server__access(void *cls, struct MHD_Connection *conn, const char *url,
                  const char *method, const char *version,
                  const char *upload_data, size_t *upload_data_size,
                  void **con_cls)
{
    dp_server *srv = cls;
    dp_req    *r   = *con_cls;

    (void)version;
    if (r == NULL) {
        return dp_server_first(srv, conn, url, method, con_cls);
    }
    if (*upload_data_size != 0) {
        if (!r->too_big &&
            tg_buf_append(&r->body, upload_data, *upload_data_size) != TG_OK) {
            r->too_big = true;
            tg_buf_fini(&r->body); /* drop the rest as it arrives */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->queued) {
        return MHD_YES;
    }
    if (!r->dispatched) {
        tg_endpoint eep =
            r->gem_op != DP_GEMIN_NONE ? DP_SERVER_EP_GEMINI : r->endpoint;
        r->dispatched = true;
        if (r->too_big) {
            return dp_server_too_large(srv, conn, eep, r->request_id);
        }
        if (atomic_load(&srv->stopping) || atomic_load(&srv->closed)) {
            return dp_server_send_error(
                srv, conn, eep, 503, "The gateway is shutting down; retry.",
                "server_error", "shutting_down", r->request_id, NULL);
        }
        if (r->rapi != NULL) {
            return dp_server_resp_api_go(srv, conn, r);
        }
        dp_server_request_read(conn);
        pthread_mutex_lock(&r->mtx);
        r->suspended = true;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&r->mtx);
        if (r->resp == NULL ||
            !dp_resp_keep_lookup(
                dp_server_resp_pdp(srv),
                dp_resp_pdp_timeout(srv->cfg->dataplane.pdp_timeout_ms), r,
                dp_server_dispatch, srv)) {
            dp_server_dispatch(srv, r);
        }
        return MHD_YES;
    }
    if (r->resp != NULL &&
        dp_resp_keep_hold(
            dp_server_resp_pdp(srv),
            dp_resp_pdp_timeout(srv->cfg->dataplane.pdp_timeout_ms),
            srv->cfg->pdp.resp_max_response_bytes, r)) {
        return MHD_YES; /* until its Response is stored */
    }
    return dp_server_queue(srv, conn, r);
}

void
dp_server__completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    dp_req                         *r = *con_cls;
    const union MHD_ConnectionInfo *ci;

    (void)cls;
    /* A kept-alive connection now waits for its next request. */
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        tg_deadline_arm(ci->socket_context);
    }
    if (r == NULL) {
        return;
    }
    *con_cls = NULL;
    pthread_mutex_lock(&r->mtx);
    r->client_gone = true;
    pthread_mutex_unlock(&r->mtx);
    if (r->worker != NULL && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        dp_worker_cancel(r->worker, r);
    }
    dp_req_unref(r);
}

/* dp_server__notify tracks each connection for request_timeout_s, from
 * accept to its close (MHD calls CLOSED before it closes the socket). */
void
dp_server__notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                  enum MHD_ConnectionNotificationCode code)
{
    dp_server                      *srv = cls;
    const union MHD_ConnectionInfo *ci;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_ctx = ci != NULL
                          ? tg_deadline_add(srv->deadline, (int)ci->connect_fd)
                          : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        tg_deadline_remove(*socket_ctx);
        *socket_ctx = NULL;
    }
}
