/* pdp_admin.c - probe bodies are static strings, so /healthz and /readyz
 * never allocate beyond MHD's own bookkeeping; /metrics and the reload
 * answer are built in a tg_buf and copied into the response. A POST is
 * answered on the handler's last call, once MHD has read the (ignored)
 * body. */
#include "pdp_admin.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tg_log.h"

#define PDP_ADMIN_BODY_MAX (1u << 20)

struct pdp_admin {
    struct MHD_Daemon *d;
    pdp_admin_hooks    hooks;
    uint16_t           port;
};

static int pdp_admin_post_marker; /* con_cls of a POST being read */

static void
pdp_admin_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    tg_warn("admin: %s", line);
}

static enum MHD_Result
pdp_admin_send(struct MHD_Connection *c, unsigned int status, const char *body)
{
    struct MHD_Response *r;
    enum MHD_Result      ret;

    r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                        MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
pdp_admin_send_buf(struct MHD_Connection *c, unsigned int status,
                   const tg_buf *b, const char *type)
{
    struct MHD_Response *r;
    enum MHD_Result      ret;

    r = MHD_create_response_from_buffer(b->len, b->data != NULL ? b->data : "",
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
pdp_admin_metrics(pdp_admin *a, struct MHD_Connection *c)
{
    tg_buf          b;
    enum MHD_Result ret;

    tg_buf_init(&b, PDP_ADMIN_BODY_MAX);
    a->hooks.metrics(a->hooks.arg, &b);
    ret = pdp_admin_send_buf(c, MHD_HTTP_OK, &b,
                             "text/plain; version=0.0.4; charset=utf-8");
    tg_buf_fini(&b);
    return ret;
}

static enum MHD_Result
pdp_admin_reload(pdp_admin *a, struct MHD_Connection *c)
{
    const char *q =
        MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "allow_rollback");
    bool   allow = q != NULL && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0);
    tg_buf b;
    unsigned        status;
    enum MHD_Result ret;

    tg_buf_init(&b, PDP_ADMIN_BODY_MAX);
    status = a->hooks.reload(a->hooks.arg, allow, &b);
    ret    = pdp_admin_send_buf(c, status, &b, "application/json");
    tg_buf_fini(&b);
    return ret;
}
static enum MHD_Result
pdp_admin_handle(void *cls, struct MHD_Connection *c, const char *url,
                 const char *method, const char *version,
                 const char *upload_data, size_t *upload_data_size,
                 void **con_cls)
{
    pdp_admin *a = cls;

    (void)version;
    (void)upload_data;
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 &&
        strcmp(url, "/admin/reload") == 0 && a->hooks.reload != NULL) {
        if (*con_cls == NULL) {
            *con_cls = &pdp_admin_post_marker; /* headers only so far */
            return MHD_YES;
        }
        if (*upload_data_size != 0) {
            *upload_data_size = 0; /* the body is ignored */
            return MHD_YES;
        }
        return pdp_admin_reload(a, c);
    }
    *upload_data_size = 0; /* bodies are ignored: no other endpoint takes one */
    if (strcmp(url, "/admin/reload") == 0 && a->hooks.reload != NULL) {
        return pdp_admin_send(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "{\"error\":{\"message\":\"use POST "
                              "/admin/reload (tollgate-pdp reload does)\","
                              "\"type\":\"invalid_request_error\"}}\n");
    }
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
                          "/healthz, /readyz, /metrics or POST "
                          "/admin/reload\",\"type\":"
                          "\"invalid_request_error\"}}\n");
}

static tg_err
pdp_admin_resolve(const char *hostport, struct addrinfo **res, char *err,
                  size_t errlen)
{
    char            host[256];
    const char     *colon = strrchr(hostport, ':');
    const char     *h     = hostport;
    size_t          hl;
    struct addrinfo hints;
    int             rc;

    if (colon == NULL || colon == hostport) {
        snprintf(err, errlen,
                 "pdp.admin_listen: expected \"host:port\", got \"%s\"",
                 hostport);
        return TG_ECONFIG;
    }
    hl = (size_t)(colon - hostport);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++; /* [v6-address]:port */
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(err, errlen, "pdp.admin_listen: host name too long");
        return TG_ECONFIG;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family   = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, colon + 1, &hints, res)) != 0) {
        snprintf(err, errlen, "pdp.admin_listen: cannot resolve \"%s\": %s",
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

    if (a == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return TG_ENOMEM;
    }
    a->hooks = *hooks;
    if ((rv = pdp_admin_resolve(hostport, &res, err, errlen)) != TG_OK) {
        goto out;
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_ERROR_LOG;
    if (res->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The logger goes first so MHD never writes to stderr on its own. */
    a->d = MHD_start_daemon(
        flags, 0, NULL, NULL, pdp_admin_handle, a, MHD_OPTION_EXTERNAL_LOGGER,
        pdp_admin_log, NULL, MHD_OPTION_SOCK_ADDR, res->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (a->d == NULL) {
        snprintf(err, errlen,
                 "pdp.admin_listen: cannot listen on %s (address in use or "
                 "not local?)",
                 hostport);
        rv = TG_EIO;
        goto out;
    }
    info    = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info != NULL ? info->port : 0;
    tg_info("admin: listening on http://%s (/healthz, /readyz, /metrics, "
            "POST /admin/reload; bound port %u)",
            hostport, (unsigned)a->port);
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
    free(a);
}
