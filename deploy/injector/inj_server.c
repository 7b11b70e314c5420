/* inj_server.c - libmicrohttpd daemons over one listening socket, swapped
 * by the certificate watcher: quiesce the old daemon (it stops accepting;
 * the kernel queues new connections meanwhile), start the new one on the
 * same socket, then stop the old one once its requests are done. Each
 * daemon gets its own dup() of the socket: MHD_start_daemon closes the
 * socket it was given when it fails (GnuTLS refusing a pair OpenSSL took),
 * and the server's own descriptor must outlive that. */
#include "inj_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "inj_certs.h"
#include "inj_review.h"
#include "tg_buf.h"
#include "tg_framing.h"
#include "tg_log.h"

#define INJ_SERVER_THREADS 4
#define INJ_SERVER_CONNS 256
#define INJ_SERVER_IDLE_S 10 /* an idle connection is closed after this */

/* One daemon's handler context (its MHD cls). retired: a reload replaced
 * the daemon, so its answers close their connection (the client
 * reconnects to the new one). MHD_CONNECTION_INFO_DAEMON cannot tell: in
 * a thread pool it names the worker, never the daemon MHD_start_daemon
 * returned. */
typedef struct inj_live {
    inj_server *s;
    bool        retired; /* __atomic: set by the watcher, read by handlers */
} inj_live;

struct inj_server {
    const inj_config  *cfg;
    int                fd; /* the listening socket; each daemon has a dup */
    uint16_t           port;
    struct MHD_Daemon *d;                  /* watcher (and stop) only */
    inj_live          *live;               /* d's context; freed after d */
    inj_certs          certs;              /* what d serves with */
    uint8_t            bad[TG_SHA256_LEN]; /* last refused pair: log once */
    pthread_t          watcher;
    bool               watching;
    pthread_mutex_t    mu;
    pthread_cond_t     cv;
    bool               stop;
    unsigned           reloads;
};

/* One request: its body, up to INJ_REVIEW_MAX_BYTES. */
typedef struct inj_req {
    tg_buf body;
    bool   too_big;
} inj_req;

static enum MHD_Result
inj_server_send(inj_live *lv, struct MHD_Connection *c, unsigned int status,
                const char *type, const char *body, size_t len)
{
    return tg_framing_respond(c, status, type, body, len,
                              __atomic_load_n(&lv->retired, __ATOMIC_ACQUIRE));
}

static enum MHD_Result
inj_server_text(inj_live *lv, struct MHD_Connection *c, unsigned int status,
                const char *text)
{
    return inj_server_send(lv, c, status, "text/plain; charset=utf-8", text,
                           strlen(text));
}

static enum MHD_Result
inj_server_mutate(inj_live *lv, struct MHD_Connection *c, inj_req *rq)
{
    inj_server *s = lv->s;
    const char *q =
        MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "default");
    bool            dflt = s->cfg->inject_by_default;
    inj_reply       rep;
    enum MHD_Result ret;

    if (q != NULL) {
        dflt = strcmp(q, "inject") == 0;
    }
    if (rq->too_big) {
        tg_warn("mutate: 400 malformed review: body over 4 MiB");
        return inj_server_text(lv, c, 400,
                               "malformed AdmissionReview: body over 4 MiB\n");
    }
    if (tg_buf_error(&rq->body) != TG_OK ||
        inj_review_handle(s->cfg, rq->body.data != NULL ? rq->body.data : "",
                          rq->body.len, dflt, &rep) != TG_OK) {
        tg_error("mutate: out of memory");
        return inj_server_text(lv, c, 500, "out of memory\n");
    }
    if (rep.status == 200) {
        tg_info("mutate: %s", rep.log);
    } else {
        tg_warn("mutate: %s", rep.log);
    }
    ret = inj_server_send(lv, c, rep.status, rep.type, rep.body, rep.len);
    inj_reply_fini(&rep);
    return ret;
}

/* inj_server_upload takes one piece of a POST body. */
static void
inj_server_upload(inj_req *rq, const char *data, size_t n)
{
    if (rq->too_big) {
        return;
    }
    if (rq->body.len + n > INJ_REVIEW_MAX_BYTES) {
        rq->too_big = true;
        tg_buf_fini(&rq->body);
        tg_buf_init(&rq->body, INJ_REVIEW_MAX_BYTES);
        return;
    }
    tg_buf_add(&rq->body, data, n);
}

static enum MHD_Result
inj_server_handle(void *cls, struct MHD_Connection *c, const char *url,
                  const char *method, const char *version, const char *upload,
                  size_t *upload_size, void **con_cls)
{
    inj_live *lv   = cls;
    inj_req  *rq   = *con_cls;
    bool      post = strcmp(method, "POST") == 0;

    (void)version;
    if (rq == NULL) {
        if ((rq = calloc(1, sizeof(*rq))) == NULL) {
            return MHD_NO;
        }
        tg_buf_init(&rq->body, INJ_REVIEW_MAX_BYTES);
        *con_cls = rq;
        return MHD_YES; /* the body, if any, comes in the next calls */
    }
    if (*upload_size > 0) {
        inj_server_upload(rq, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/mutate") == 0) {
        return post ? inj_server_mutate(lv, c, rq)
                    : inj_server_text(lv, c, 405, "POST an AdmissionReview\n");
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        return post ? inj_server_text(lv, c, 405, "use GET\n")
                    : inj_server_text(lv, c, 200, "ok\n");
    }
    return inj_server_text(lv, c, 404, "not found\n");
}

static void
inj_server_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    inj_req *rq = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (rq != NULL) {
        tg_buf_fini(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* inj_server_daemon starts a daemon on a dup of s->fd, which the daemon
 * owns (closed by MHD_stop_daemon, or by MHD_start_daemon if it fails).
 * Owns: *live, the daemon's context, free after MHD_stop_daemon. */
static struct MHD_Daemon *
inj_server_daemon(inj_server *s, const inj_certs *tls, inj_live **live)
{
    unsigned int flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG;
    inj_live          *lv = calloc(1, sizeof(*lv));
    int                fd = -1;
    struct MHD_Daemon *d;

    *live = NULL;
    if (lv == NULL || (fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        tg_error("https: cannot start a server: %s",
                 lv == NULL ? "out of memory" : strerror(errno));
        free(lv);
        return NULL;
    }
    lv->s = s;
    /* The logger goes first so MHD never writes to stderr on its own. */
    d = MHD_start_daemon(
        flags, 0, NULL, NULL, inj_server_handle, lv, MHD_OPTION_EXTERNAL_LOGGER,
        tg_log_mhd, (void *)"https", MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_HTTPS_MEM_CERT, tls->cert, MHD_OPTION_HTTPS_MEM_KEY,
        tls->key, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)INJ_SERVER_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)INJ_SERVER_CONNS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)INJ_SERVER_IDLE_S,
        MHD_OPTION_NOTIFY_COMPLETED, inj_server_completed, NULL,
        MHD_OPTION_END);
    if (d == NULL) {
        free(lv);
        return NULL;
    }
    *live = lv;
    return d;
}

/* inj_server_drain waits until old (quiesced) holds no connection, at
 * most INJ_SERVER_IDLE_S and a second: stopping it closes what it still
 * holds, a handshake or a request on its way included. */
static void
inj_server_drain(struct MHD_Daemon *old)
{
    const struct timespec tick = {0, 50 * 1000 * 1000};

    for (int i = 0; i < (INJ_SERVER_IDLE_S + 1) * 20; i++) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(old, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

        if (di == NULL || di->num_connections == 0) {
            return;
        }
        nanosleep(&tick, NULL);
    }
}

/* inj_server_swap serves with next (taken) instead of s->certs. old is
 * NULL when an earlier swap could not serve again: then this one only
 * starts. */
static void
inj_server_swap(inj_server *s, inj_certs *next)
{
    struct MHD_Daemon *old   = s->d;
    inj_live          *olive = s->live;
    struct MHD_Daemon *d;
    inj_live          *live;
    MHD_socket         ofd = MHD_INVALID_SOCKET;

    if (old != NULL && (ofd = MHD_quiesce_daemon(old)) == MHD_INVALID_SOCKET) {
        tg_error("certificate reload: cannot quiesce the server; keeping "
                 "the old certificate");
        inj_certs_fini(next);
        return;
    }
    if ((d = inj_server_daemon(s, next, &live)) == NULL) {
        /* The pair passed OpenSSL's check but GnuTLS refused it. */
        memcpy(s->bad, next->hash, sizeof(s->bad));
        inj_certs_fini(next);
        tg_error("certificate reload: the TLS library refused the new "
                 "certificate; keeping the old one");
        d = inj_server_daemon(s, &s->certs, &live);
    } else {
        inj_certs_fini(&s->certs);
        s->certs = *next;
        pthread_mutex_lock(&s->mu);
        s->reloads++;
        pthread_mutex_unlock(&s->mu);
        tg_info("certificate reloaded");
    }
    s->d    = d;
    s->live = live;
    if (old != NULL) {
        __atomic_store_n(&olive->retired, true, __ATOMIC_RELEASE);
        inj_server_drain(old);
        MHD_stop_daemon(old);
        close(ofd); /* old's dup: a quiesced daemon leaves it to us */
        free(olive);
    }
    if (d == NULL) {
        tg_error("certificate reload: cannot serve again on the listening "
                 "socket; webhook calls fail until the next valid "
                 "certificate is picked up");
    }
}

/* inj_server_check_files is one poll of the cert and key files. */
static void
inj_server_check_files(inj_server *s)
{
    inj_certs next;
    char      why[256];

    if (inj_certs_read(&next, s->cfg->cert_file, s->cfg->key_file, why,
                       sizeof(why)) != TG_OK) {
        tg_debug("certificate poll: %s", why); /* mid-swap; next poll */
        return;
    }
    if (memcmp(next.hash, s->certs.hash, sizeof(next.hash)) == 0 ||
        memcmp(next.hash, s->bad, sizeof(next.hash)) == 0) {
        inj_certs_fini(&next);
        return;
    }
    if (inj_certs_check(&next, why, sizeof(why)) != TG_OK) {
        memcpy(s->bad, next.hash, sizeof(s->bad));
        inj_certs_fini(&next);
        tg_error("certificate reload refused, keeping the old one: %s", why);
        return;
    }
    inj_server_swap(s, &next);
}

static void *
inj_server_watch(void *arg)
{
    inj_server     *s = arg;
    struct timespec t;

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += s->cfg->cert_poll_s;
        while (!s->stop &&
               pthread_cond_timedwait(&s->cv, &s->mu, &t) != ETIMEDOUT) {
        }
        if (s->stop) {
            break;
        }
        pthread_mutex_unlock(&s->mu);
        inj_server_check_files(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* inj_server_listen opens the listening socket for "host:port". */
static tg_err
inj_server_listen(inj_server *s, const char *hostport, char *err, size_t errlen)
{
    const char      *colon = strrchr(hostport, ':');
    char             host[256];
    size_t           hl;
    struct addrinfo  hints = {.ai_socktype = SOCK_STREAM,
                              .ai_flags    = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int              one = 1;

    hl = colon != NULL ? (size_t)(colon - hostport) : 0;
    if (hl >= 2 && hostport[0] == '[' && hostport[hl - 1] == ']') {
        hostport++; /* [v6-address]:port */
        hl -= 2;
    }
    if (colon == NULL || hl == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "listen: expected \"host:port\", got \"%s\"",
                 hostport);
        return TG_ECONFIG;
    }
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        snprintf(err, errlen, "listen: cannot resolve \"%s\"", hostport);
        return TG_ECONFIG;
    }
    s->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 ||
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(s->fd, 128) != 0) {
        snprintf(err, errlen, "listen: %s: %s", hostport, strerror(errno));
        freeaddrinfo(res);
        return TG_EIO;
    }
    freeaddrinfo(res);
    return TG_OK;
}

static uint16_t
inj_server_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t               n = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static tg_err
inj_server_sync_init(inj_server *s)
{
    pthread_condattr_t ca;

    if (pthread_condattr_init(&ca) != 0) {
        return TG_ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&s->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        return TG_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->cv);
        return TG_ENOMEM;
    }
    return TG_OK;
}

static tg_err
inj_server_open(inj_server *s, char *err, size_t errlen)
{
    tg_err rv;

    if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        snprintf(err, errlen, "libmicrohttpd was built without TLS");
        return TG_ECONFIG;
    }
    if (s->cfg->cert_file == NULL || s->cfg->key_file == NULL) {
        snprintf(err, errlen,
                 "%s: cert_file and key_file are required to "
                 "serve",
                 s->cfg->path != NULL ? s->cfg->path : "config");
        return TG_ECONFIG;
    }
    if ((rv = inj_certs_read(&s->certs, s->cfg->cert_file, s->cfg->key_file,
                             err, errlen)) != TG_OK) {
        return rv;
    }
    if ((rv = inj_certs_check(&s->certs, err, errlen)) != TG_OK ||
        (rv = inj_server_listen(s, s->cfg->listen, err, errlen)) != TG_OK) {
        return rv;
    }
    s->port = inj_server_bound_port(s->fd);
    if ((s->d = inj_server_daemon(s, &s->certs, &s->live)) == NULL) {
        snprintf(err, errlen,
                 "cannot start the HTTPS server (the TLS "
                 "library refused the certificate?)");
        return TG_EIO;
    }
    return TG_OK;
}

tg_err
inj_server_start(inj_server **out, const inj_config *cfg, char *err,
                 size_t errlen)
{
    inj_server *s = calloc(1, sizeof(*s));
    tg_err      rv;

    if (s == NULL || inj_server_sync_init(s) != TG_OK) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    s->cfg = cfg;
    s->fd  = -1;
    if ((rv = inj_server_open(s, err, errlen)) != TG_OK) {
        goto out;
    }
    if (pthread_create(&s->watcher, NULL, inj_server_watch, s) != 0) {
        snprintf(err, errlen, "cannot start the certificate watcher");
        rv = TG_ESYS;
        goto out;
    }
    s->watching = true;
    tg_info("listening on https://%s (port %u): POST /mutate, GET /healthz, "
            "/readyz; certificate polled every %lld s",
            cfg->listen, (unsigned)s->port, (long long)cfg->cert_poll_s);
    *out = s;
    s    = NULL;
out:
    inj_server_stop(s);
    return rv;
}

uint16_t
inj_server_port(const inj_server *s)
{
    return s->port;
}

unsigned
inj_server_reloads(inj_server *s)
{
    unsigned n;

    pthread_mutex_lock(&s->mu);
    n = s->reloads;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void
inj_server_stop(inj_server *s)
{
    if (s == NULL) {
        return;
    }
    if (s->watching) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->watcher, NULL);
    }
    if (s->d != NULL) {
        MHD_stop_daemon(s->d); /* closes its dup of the socket */
    }
    free(s->live);
    if (s->fd >= 0) {
        close(s->fd);
    }
    inj_certs_fini(&s->certs);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
