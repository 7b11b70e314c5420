/* pdp_admin.c - probe bodies are static strings, so /healthz and /readyz
 * never allocate beyond MHD's own bookkeeping; /metrics and the admin
 * answers are built in a tg_buf and copied into the response. An /admin/
 * request is answered on the handler's last call, once MHD has read its
 * body (up to 1 MiB) into a per-request buffer; the token is checked
 * then. */
#include "pdp_admin.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "tg_deadline.h"
#include "tg_framing.h"
#include "tg_log.h"
#include "tg_nngtls.h"

#define PDP_ADMIN_BODY_MAX (1u << 20)
/* PUT /admin/v1/lists/NAME carries up to 4 MiB of terms as JSON (quoted,
 * maybe escaped, with duplicates the API drops). */
#define PDP_ADMIN_LIST_BODY_MAX (16u << 20)
/* One address may hold a quarter of the connections, so probes from
 * elsewhere still get in while one client is slow or hostile; a whole
 * request must arrive within PDP_ADMIN_REQUEST_MS however it trickles. */
#define PDP_ADMIN_CONNS        64u
#define PDP_ADMIN_CONNS_PER_IP 16u
#define PDP_ADMIN_REQUEST_MS   10000
#define PDP_ADMIN_RESPONSE_MS  60000
/* Request line and headers; an admin token is 64 characters. */
#define PDP_ADMIN_HEADER_MAX 8192u

struct pdp_admin {
    struct MHD_Daemon *d;
    pdp_admin_hooks    hooks;
    uint16_t           port;
    tg_deadline       *deadline;
    char              *tls_cert; /* pdp.admin_tls, PEM; NULL: plain HTTP */
    char              *tls_key;
};

/* pdp_admin_request_read stops c's request deadline: the request is in,
 * and a reload (compile and tests) may take longer than a client may take
 * to send one. Called by the MHD thread serving c. */
static void
pdp_admin_request_read(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    if (ci != NULL) {
        tg_deadline_disarm(ci->socket_context);
    }
}

/* pdp_admin_answering starts c's response deadline (PDP_ADMIN_RESPONSE_MS):
 * a client reading a byte at a time must not hold a thread for ever. */
static void
pdp_admin_answering(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    if (ci != NULL) {
        tg_deadline_arm_for(ci->socket_context, PDP_ADMIN_RESPONSE_MS);
    }
}

/* pdp_admin_notify tracks each connection for PDP_ADMIN_REQUEST_MS, from
 * accept to its close (MHD calls CLOSED before it closes the socket). */
static void
pdp_admin_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                 enum MHD_ConnectionNotificationCode code)
{
    pdp_admin                      *a = cls;
    const union MHD_ConnectionInfo *ci;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_ctx = ci != NULL ? tg_deadline_add(a->deadline,
                                                   (int)ci->connect_fd)
                                 : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        tg_deadline_remove(*socket_ctx);
        *socket_ctx = NULL;
    }
}

/* pdp_admin_respond queues one answer (body copied; close: the
 * connection is closed after it). Every answer goes through here. */
static enum MHD_Result
pdp_admin_respond(struct MHD_Connection *c, unsigned int status,
                  const char *body, size_t len, const char *type, bool close)
{
    pdp_admin_answering(c);
    return tg_framing_respond(c, status, type, body, len, close);
}

static enum MHD_Result
pdp_admin_send(struct MHD_Connection *c, unsigned int status, const char *body)
{
    return pdp_admin_respond(c, status, body, strlen(body),
                             "application/json", false);
}

/* pdp_admin_refuse answers a request tg_framing refused and closes the
 * connection: what follows on it cannot be trusted to start a request. */
static enum MHD_Result
pdp_admin_refuse(struct MHD_Connection *c, const tg_framing_refusal *why)
{
    char body[320];
    int  n;

    /* No character needs escaping (tg_framing_refusal's contract). */
    n = snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                 why->code, why->message);
    return pdp_admin_respond(c, why->status, body, (size_t)n,
                             "application/json", true);
}

static enum MHD_Result
pdp_admin_send_buf(struct MHD_Connection *c, unsigned int status,
                   const tg_buf *b, const char *type)
{
    return pdp_admin_respond(c, status, b->data != NULL ? b->data : "",
                             b->len, type, false);
}

static enum MHD_Result
pdp_admin_metrics(pdp_admin *a, struct MHD_Connection *c)
{
    tg_buf          b;
    enum MHD_Result ret;

    tg_buf_init(&b, PDP_ADMIN_BODY_MAX);
    a->hooks.metrics(a->hooks.arg, &b);
    ret = tg_buf_error(&b) != TG_OK
              ? pdp_admin_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "{\"error\":{\"code\":\"internal\","
                               "\"message\":\"out of memory\"}}\n")
              : pdp_admin_send_buf(c, MHD_HTTP_OK, &b,
                                   "text/plain; version=0.0.4; "
                                   "charset=utf-8");
    tg_buf_fini(&b);
    return ret;
}

static enum MHD_Result
pdp_admin_reload(pdp_admin *a, struct MHD_Connection *c, const char *actor)
{
    const char *q =
        MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "allow_rollback");
    bool   allow = q != NULL && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0);
    tg_buf b;
    unsigned        status;
    enum MHD_Result ret;

    tg_buf_init(&b, PDP_ADMIN_BODY_MAX);
    status = a->hooks.reload(a->hooks.arg, actor, allow, &b);
    ret    = tg_buf_error(&b) != TG_OK
                 ? pdp_admin_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "{\"error\":{\"code\":\"internal\","
                                  "\"message\":\"The reload ran but its "
                                  "report could not be made (out of memory); "
                                  "see tollgate-pdp policy history.\"}}\n")
                 : pdp_admin_send_buf(c, status, &b, "application/json");
    tg_buf_fini(&b);
    return ret;
}
/* One /admin/ request while its body is read. */
typedef struct pdp_admin_req {
    tg_buf body;
    bool   too_big;
    bool   authed;
    char   actor[96];
} pdp_admin_req;

static void
pdp_admin_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    pdp_admin_req                  *rq = *con_cls;
    const union MHD_ConnectionInfo *ci;

    (void)cls;
    /* A kept-alive connection now waits for its next request. */
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        tg_deadline_arm(ci->socket_context);
    }
    if (rq != NULL) {
        tg_buf_fini(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* pdp_admin_query_one re-encodes one GET argument into the query string
 * the API parses (MHD hands them over decoded). */
static enum MHD_Result
pdp_admin_query_one(void *cls, enum MHD_ValueKind kind, const char *key,
                    const char *value)
{
    tg_buf     *q = cls;
    const char *parts[2] = {key, value != NULL ? value : ""};

    (void)kind;
    if (q->len > 0) {
        tg_buf_add(q, "&", 1);
    }
    for (int i = 0; i < 2; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i];
             *p != '\0'; p++) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
                *p == '_' || *p == '~' || *p == ':') {
                tg_buf_add(q, p, 1);
            } else {
                tg_buf_addf(q, "%%%02X", *p);
            }
        }
        if (i == 0) {
            tg_buf_add(q, "=", 1);
        }
    }
    return MHD_YES;
}

static enum MHD_Result
pdp_admin_api(pdp_admin *a, struct MHD_Connection *c, pdp_admin_req *rq,
              const char *url, const char *method)
{
    tg_buf          q;
    tg_buf          b;
    const char     *ctype = "application/json";
    unsigned        status;
    enum MHD_Result ret;

    tg_buf_init(&q, 8192);
    tg_buf_init(&b, 16u << 20);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, pdp_admin_query_one,
                              &q);
    tg_buf_add(&q, "", 1); /* NUL-terminate */
    if (tg_buf_error(&q) != TG_OK) {
        /* Never a query with a piece missing: it could mean another one. */
        tg_buf_fini(&q);
        tg_buf_fini(&b);
        return pdp_admin_send(c, MHD_HTTP_URI_TOO_LONG,
                              "{\"error\":{\"code\":\"query_too_long\","
                              "\"message\":\"The query string is over 8 KiB."
                              "\"}}\n");
    }
    status = a->hooks.api(a->hooks.arg, rq->actor, method, url,
                          q.data != NULL ? q.data : "",
                          rq->body.len > 0 ? rq->body.data : NULL,
                          rq->body.len, &b, &ctype);
    ret = pdp_admin_send_buf(c, status, &b, ctype);
    tg_buf_fini(&q);
    tg_buf_fini(&b);
    return ret;
}

/* pdp_admin_on_behalf adds who the caller says it acts for (the CLI sends
 * cli:user@host) to actor: "token:NAME for cli:user@host". Informative
 * only: the token is the authority. Anything but a short plain name is
 * left out. */
static void
pdp_admin_on_behalf(struct MHD_Connection *c, char *actor, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "X-Tollgate-On-Behalf-Of");
    size_t      n = v != NULL ? strlen(v) : 0;

    if (n == 0 || n > 48 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789@._:-") != n) {
        return;
    }
    n = strlen(actor);
    snprintf(actor + n, cap - n, " for %s", v);
}

/* pdp_admin_authorize checks the bearer token once per request. */
static bool
pdp_admin_authorize(pdp_admin *a, struct MHD_Connection *c, pdp_admin_req *rq)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok = NULL;

    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        tok = h + 7;
        while (*tok == ' ') {
            tok++;
        }
    }
    rq->authed = a->hooks.auth != NULL && tok != NULL && tok[0] != '\0' &&
                 a->hooks.auth(a->hooks.arg, tok, rq->actor,
                               sizeof(rq->actor));
    if (rq->authed) {
        pdp_admin_on_behalf(c, rq->actor, sizeof(rq->actor));
    }
    return tok != NULL;
}

static enum MHD_Result
pdp_admin_unauthorized(struct MHD_Connection *c, bool sent_token)
{
    return pdp_admin_send(
        c, MHD_HTTP_UNAUTHORIZED,
        sent_token
            ? "{\"error\":{\"code\":\"invalid_admin_token\",\"message\":"
              "\"This admin token is not valid (unknown or revoked). "
              "List tokens with tollgate-pdp admin-tokens list.\"}}\n"
            : "{\"error\":{\"code\":\"admin_token_required\","
              "\"message\":\"Send an admin token: Authorization: Bearer "
              "TOKEN. Create one with tollgate-pdp admin-tokens create "
              "NAME (shown once).\"}}\n");
}

/* pdp_admin_body_max is how large the body of method url may be. */
static size_t
pdp_admin_body_max(const char *url, const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_PUT) == 0 &&
                   strncmp(url, "/admin/v1/lists/", 16) == 0
               ? PDP_ADMIN_LIST_BODY_MAX
               : PDP_ADMIN_BODY_MAX;
}

static enum MHD_Result
pdp_admin_handle_admin(pdp_admin *a, struct MHD_Connection *c, const char *url,
                       const char *method, const char *upload_data,
                       size_t *upload_data_size, void **con_cls)
{
    pdp_admin_req *rq = *con_cls;
    bool           sent_token;

    if (rq == NULL) {
        if ((rq = calloc(1, sizeof(*rq))) == NULL) {
            return MHD_NO;
        }
        tg_buf_init(&rq->body, pdp_admin_body_max(url, method));
        *con_cls = rq;
        /* The token is checked on the headers: a body from someone
         * without one is never read. */
        sent_token = pdp_admin_authorize(a, c, rq);
        if (!rq->authed) {
            return pdp_admin_unauthorized(c, sent_token);
        }
        return MHD_YES; /* headers only so far */
    }
    if (*upload_data_size != 0) {
        if (!rq->too_big &&
            tg_buf_append(&rq->body, upload_data, *upload_data_size) !=
                TG_OK) {
            rq->too_big = true; /* keep reading, answer 413 at the end */
            tg_buf_reset(&rq->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The whole request is in: what follows is the PDP's time. */
    pdp_admin_request_read(c);
    if (!rq->authed) { /* refused on the first call; never reached */
        return pdp_admin_unauthorized(c, false);
    }
    if (rq->too_big) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "{\"error\":{\"code\":\"body_too_large\",\"message\":"
                 "\"The request body is over %zu MiB.\"}}\n",
                 rq->body.max >> 20);
        return pdp_admin_send(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
    }
    if (strcmp(url, "/admin/reload") == 0 && a->hooks.reload != NULL) {
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            return pdp_admin_send(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  "{\"error\":{\"code\":\"method_not_"
                                  "allowed\",\"message\":\"use POST "
                                  "/admin/reload (tollgate-pdp reload "
                                  "does)\"}}\n");
        }
        tg_info("admin: reload requested by %s", rq->actor);
        return pdp_admin_reload(a, c, rq->actor);
    }
    if (strncmp(url, "/admin/v1/", 10) == 0 && a->hooks.api != NULL) {
        return pdp_admin_api(a, c, rq, url, method);
    }
    return pdp_admin_send(c, MHD_HTTP_NOT_FOUND,
                          "{\"error\":{\"code\":\"not_found\",\"message\":"
                          "\"No such admin path; the API is under "
                          "/admin/v1/ (tenants, keys, budgets, ratelimits, "
                          "spend, audit, lists) and POST /admin/reload.\"}}\n");
}

static enum MHD_Result
pdp_admin_handle(void *cls, struct MHD_Connection *c, const char *url,
                 const char *method, const char *version,
                 const char *upload_data, size_t *upload_data_size,
                 void **con_cls)
{
    pdp_admin         *a = cls;
    tg_framing_refusal why;

    (void)version;
    /* The first call for a request (an /admin/ request then has no state
     * yet; every other path is answered on its first call). */
    if (*con_cls == NULL &&
        tg_framing_check(c, url, method, PDP_ADMIN_HEADER_MAX, &why)) {
        return pdp_admin_refuse(c, &why);
    }
    if (strncmp(url, "/admin/", 7) == 0 && a->hooks.probes_only) {
        *upload_data_size = 0;
        return pdp_admin_send(c, MHD_HTTP_NOT_FOUND,
                              "{\"error\":{\"message\":\"this is the probe "
                              "listener (pdp.probe_listen): /healthz, /readyz "
                              "and /metrics only; the admin API is on "
                              "pdp.admin_listen\",\"type\":"
                              "\"invalid_request_error\"}}\n");
    }
    if (strncmp(url, "/admin/", 7) == 0) {
        return pdp_admin_handle_admin(a, c, url, method, upload_data,
                                      upload_data_size, con_cls);
    }
    *upload_data_size = 0; /* bodies are ignored: no other endpoint takes one */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return pdp_admin_send(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "{\"error\":{\"message\":\"only GET is "
                              "supported here\",\"type\":"
                              "\"invalid_request_error\"}}\n");
    }
    if (strcmp(url, "/healthz") == 0) {
        return pdp_admin_send(c, MHD_HTTP_OK, "{\"status\":\"ok\"}\n");
    }
    if (strcmp(url, "/metrics") == 0 && a->hooks.metrics != NULL) {
        return pdp_admin_metrics(a, c);
    }
    if (strcmp(url, "/readyz") == 0) {
        if (a->hooks.ready != NULL && a->hooks.ready(a->hooks.arg)) {
            return pdp_admin_send(c, MHD_HTTP_OK, "{\"status\":\"ready\"}\n");
        }
        return pdp_admin_send(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "{\"status\":\"not ready\"}\n");
    }
    return pdp_admin_send(c, MHD_HTTP_NOT_FOUND,
                          "{\"error\":{\"message\":\"no such path; try "
                          "/healthz, /readyz, /metrics, POST /admin/reload "
                          "or the admin API under /admin/v1/\",\"type\":"
                          "\"invalid_request_error\"}}\n");
}

static tg_err
pdp_admin_resolve(const char *what, const char *hostport,
                  struct addrinfo **res, char *err, size_t errlen)
{
    char            host[256];
    const char     *colon = strrchr(hostport, ':');
    const char     *h     = hostport;
    size_t          hl;
    struct addrinfo hints;
    int             rc;

    if (colon == NULL || colon == hostport) {
        snprintf(err, errlen, "%s: expected \"host:port\", got \"%s\"",
                 what, hostport);
        return TG_ECONFIG;
    }
    hl = (size_t)(colon - hostport);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++; /* [v6-address]:port */
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(err, errlen, "%s: host name too long", what);
        return TG_ECONFIG;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family   = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, colon + 1, &hints, res)) != 0) {
        snprintf(err, errlen, "%s: cannot resolve \"%s\": %s", what,
                 hostport, gai_strerror(rc));
        return TG_ECONFIG;
    }
    return TG_OK;
}

tg_err
pdp_admin_start(pdp_admin **out, const char *hostport,
                const pdp_admin_hooks *hooks, char *err, size_t errlen)
{
    pdp_admin                  *a   = calloc(1, sizeof(*a));
    struct addrinfo            *res = NULL;
    const union MHD_DaemonInfo *info;
    unsigned int                flags;
    tg_err                      rv;
    const char                  *what =
        hooks->probes_only ? "pdp.probe_listen" : "pdp.admin_listen";
    struct MHD_OptionItem        tls_opts[3] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, NULL},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    if (a == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return TG_ENOMEM;
    }
    a->hooks = *hooks;
    if ((rv = pdp_admin_resolve(what, hostport, &res, err, errlen)) !=
        TG_OK) {
        goto out;
    }
    if ((rv = tg_deadline_create(&a->deadline, PDP_ADMIN_REQUEST_MS)) !=
        TG_OK) {
        snprintf(err, errlen, "admin: cannot start the request reaper");
        goto out;
    }
    if (hooks->tls != NULL && hooks->tls->cert_file != NULL &&
        ((rv = tg_tls_read_pem(hooks->tls->cert_file, &a->tls_cert, NULL, err,
                               errlen)) != TG_OK ||
         (rv = tg_tls_read_pem(hooks->tls->key_file, &a->tls_key, NULL, err,
                               errlen)) != TG_OK)) {
        goto out;
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_ERROR_LOG | (a->tls_key != NULL ? MHD_USE_TLS : 0);
    tls_opts[0].ptr_value = a->tls_key;
    tls_opts[1].ptr_value = a->tls_cert;
    if (res->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The logger goes first so MHD never writes to stderr on its own. */
    a->d = MHD_start_daemon(
        flags, 0, NULL, NULL, pdp_admin_handle, a, MHD_OPTION_EXTERNAL_LOGGER,
        tg_log_mhd, (void *)"admin", MHD_OPTION_SOCK_ADDR, res->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, PDP_ADMIN_CONNS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, PDP_ADMIN_CONNS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
        /* Room past PDP_ADMIN_HEADER_MAX so tg_framing, not MHD (which
         * drops some with no answer), refuses large headers. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)PDP_ADMIN_HEADER_MAX * 2 + 32768,
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_ARRAY,
        a->tls_key != NULL ? tls_opts : tls_opts + 2,
        MHD_OPTION_NOTIFY_CONNECTION,
        pdp_admin_notify, a, MHD_OPTION_NOTIFY_COMPLETED, pdp_admin_completed,
        NULL,
        MHD_OPTION_END);
    if (a->d == NULL) {
        snprintf(err, errlen,
                 "%s: cannot listen on %s (address in use or "
                 "not local?%s)",
                 what, hostport,
                 a->tls_key != NULL ? " or pdp.admin_tls's pair unusable" : "");
        rv = TG_EIO;
        goto out;
    }
    info    = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info != NULL ? info->port : 0;
    if (hooks->probes_only) {
        tg_info("probes: listening on http://%s (/healthz, /readyz, "
                "/metrics; bound port %u)",
                hostport, (unsigned)a->port);
    } else {
        tg_info("admin: listening on %s://%s (/healthz, /readyz, /metrics; "
                "with an admin token POST /admin/reload and /admin/v1/; "
                "bound port %u)",
                a->tls_key != NULL ? "https" : "http", hostport,
                (unsigned)a->port);
    }
    *out = a;
    a    = NULL;
out:
    if (res != NULL) {
        freeaddrinfo(res);
    }
    pdp_admin_stop(a);
    return rv;
}

uint16_t
pdp_admin_port(const pdp_admin *a)
{
    return a->port;
}

void
pdp_admin_stop(pdp_admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->d != NULL) {
        MHD_stop_daemon(a->d);
    }
    tg_deadline_destroy(a->deadline); /* MHD stopped: nothing tracked */
    free(a->tls_cert);
    if (a->tls_key != NULL) {
        explicit_bzero(a->tls_key, strlen(a->tls_key));
        free(a->tls_key);
    }
    free(a);
}
