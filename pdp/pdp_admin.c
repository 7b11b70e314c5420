/* pdp_admin.c - bodies are static strings, so a response never allocates
 * beyond MHD's own bookkeeping and the handler cannot fail half-way. */
#include "pdp_admin.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tg_log.h"

struct pdp_admin {
    struct MHD_Daemon *d;
    pdp_admin_ready_fn ready;
    void              *arg;
    uint16_t           port;
};

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
pdp_admin_handle(void *cls, struct MHD_Connection *c, const char *url,
                 const char *method, const char *version,
                 const char *upload_data, size_t *upload_data_size,
                 void **con_cls)
{
    pdp_admin *a = cls;

    (void)version;
    (void)upload_data;
    (void)con_cls;
    *upload_data_size = 0; /* bodies are ignored: no endpoint takes one */
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
    if (strcmp(url, "/readyz") == 0) {
        if (a->ready != NULL && a->ready(a->arg)) {
            return pdp_admin_send(c, MHD_HTTP_OK, "{\"status\":\"ready\"}\n");
        }
        return pdp_admin_send(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "{\"status\":\"not ready\"}\n");
    }
    return pdp_admin_send(c, MHD_HTTP_NOT_FOUND,
                          "{\"error\":{\"message\":\"no such path; try "
                          "/healthz or /readyz\",\"type\":"
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
pdp_admin_start(pdp_admin **out, const char *hostport, pdp_admin_ready_fn ready,
                void *arg, char *err, size_t errlen)
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
    a->ready = ready;
    a->arg   = arg;
    if ((rv = pdp_admin_resolve(hostport, &res, err, errlen)) != TG_OK) {
        goto out;
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
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
    tg_info("admin: listening on http://%s (/healthz, /readyz; bound port %u)",
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
