/* dp_server_life.c - the data plane server's life: create (health slots,
 * PDP links, the MHD daemon in external polling mode, the workers, worker
 * 0 driving MHD), drain and destroy. */
#include "dp_server_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "tg_log.h"
#include "tg_time.h"

/* ---- create / destroy ----------------------------------------------- */

static tg_err
dp_server_health(dp_server *srv)
{
    const tg_dp_config *c     = &srv->cfg->dataplane;
    const char        **names = calloc(srv->n_upstreams + 1, sizeof(*names));
    dp_health_opts      o;
    tg_err              rv;

    if (names == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < srv->n_upstreams; i++) {
        names[i] = srv->upstreams[i].dep->id;
    }
    memset(&o, 0, sizeof(o));
    o.failures    = (uint32_t)c->cooldown_failures;
    o.window_ms   = c->cooldown_window_ms;
    o.cooldown_ms = c->cooldown_ms;
    o.names       = names;
    rv            = dp_health_create(&srv->health, srv->n_upstreams, &o);
    free(names);
    return rv;
}

static tg_err
dp_server_addr(const char *listen, struct sockaddr_storage *ss)
{
    char             host[256];
    const char      *colon = strrchr(listen, ':');
    struct addrinfo  hints = {0};
    struct addrinfo *res   = NULL;
    size_t           hlen  = (size_t)(colon - listen);

    if (hlen >= sizeof(host)) {
        return TG_ECONFIG;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 ||
        res == NULL) {
        return TG_ECONFIG;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return TG_OK;
}

/* dp_server_start_workers lends the workers what they need (srv->host)
 * and starts dataplane.workers of them (0: one per CPU). */
static tg_err
dp_server_start_workers(dp_server *srv)
{
    long   nw = srv->cfg->dataplane.workers;
    tg_err rv;

    if (nw <= 0) {
        nw = sysconf(_SC_NPROCESSORS_ONLN);
        nw = nw > 0 ? nw : 1;
    }
    srv->host = (dp_host){
        .cfg         = srv->cfg,
        .pdp         = srv->pdps[0],
        .guard       = srv->guards[0],
        .spool       = srv->spools[0],
        .n_pdps      = srv->n_pdps,
        .keys        = srv->keys,
        .reuse       = srv->reuse,
        .health      = srv->health,
        .pricing     = srv->pricing,
        .upstreams   = srv->upstreams,
        .n_upstreams = srv->n_upstreams,
        .m           = &srv->m,
        .stopping    = &srv->stopping,
        .otel        = srv->otel,
    };
    for (size_t i = 0; i < srv->n_pdps; i++) {
        srv->host.pdps[i]   = srv->pdps[i];
        srv->host.guards[i] = srv->guards[i];
        srv->host.spools[i] = srv->spools[i];
    }
    srv->workers = calloc((size_t)nw, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        return TG_ENOMEM;
    }
    for (long i = 0; i < nw; i++) {
        if ((rv = dp_worker_create(&srv->workers[i], &srv->host, (unsigned)i,
                                   i == 0 ? &srv->loop : NULL)) != TG_OK) {
            return rv;
        }
        srv->n_workers++;
    }
    return TG_OK;
}

/* dp_server_quiesce_now stops accepting connections and closes the
 * listener; on the thread that drives MHD. */
static void
dp_server_quiesce_now(dp_server *srv)
{
    MHD_socket fd;

    if (srv->quiesced) {
        return;
    }
    srv->quiesced = true;
    if ((fd = MHD_quiesce_daemon(srv->mhd)) != MHD_INVALID_SOCKET) {
        close(fd);
    }
}

/* dp_server_loop_run: worker 0 runs MHD's ready events after each wait. */
static void
dp_server_loop_run(void *arg)
{
    dp_server *srv = arg;

    if (atomic_load(&srv->quiesce)) {
        dp_server_quiesce_now(srv);
    }
    MHD_run(srv->mhd);
}

static int64_t
dp_server_loop_timeout(void *arg)
{
    dp_server             *srv = arg;
    MHD_UNSIGNED_LONG_LONG t;

    return MHD_get_timeout(srv->mhd, &t) == MHD_YES ? (int64_t)t : -1;
}

/* dp_server_listen starts the MHD daemon on dataplane.listen, in external
 * polling mode: worker 0 drives it (dp_server_loop_run). */
static tg_err
dp_server_listen(dp_server *srv)
{
    const tg_dp_config     *c = &srv->cfg->dataplane;
    struct sockaddr_storage ss;
    unsigned                flags;
    tg_err                  rv;

    if ((rv = dp_server_addr(c->listen, &ss)) != TG_OK) {
        tg_error("dataplane.listen: cannot resolve \"%s\"", c->listen);
        return rv;
    }
    if ((rv = tg_deadline_create(&srv->deadline,
                                 c->request_timeout_s * 1000)) != TG_OK) {
        return rv;
    }
    /* MHD_USE_ITC: a connection resumed by another worker wakes the
     * loop (its pipe is in MHD's epoll set, which worker 0 polls). */
    flags = MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, dp_server__access, srv,
        MHD_OPTION_EXTERNAL_LOGGER, tg_log_mhd, (void *)"http",
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)c->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->client_timeout_s,
        /* Room for headers past max_header_bytes, so dp_server_framing
         * (not MHD, which drops some with no answer) refuses them, and
         * for a stream's write buffer next to the largest we accept. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)c->max_header_bytes * 2 + 32768, MHD_OPTION_STRICT_FOR_CLIENT,
        (int)1, MHD_OPTION_NOTIFY_CONNECTION, dp_server__notify, srv,
        MHD_OPTION_NOTIFY_COMPLETED, dp_server__completed, srv,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
    if (srv->mhd == NULL) {
        tg_error("cannot listen on %s (is the port in use? check "
                 "dataplane.listen)",
                 c->listen);
        return TG_ESYS;
    }
    srv->loop = (dp_worker_loop){
        .fd = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd,
        .run        = dp_server_loop_run,
        .timeout_ms = dp_server_loop_timeout,
        .arg        = srv,
    };
    return TG_OK;
}

/* dp_server_pdp_link connects to dataplane.pdp_url's i-th PDP, with its
 * guard cache and its usage spool (spool_dir for the first, a pdp-<i>
 * directory inside it for the others: usage goes to the PDP that holds
 * the request's reservation). */
static tg_err
dp_server_pdp_link(dp_server *srv, size_t i)
{
    const tg_dp_config *c = &srv->cfg->dataplane;
    char                dir[4096];
    tg_err              rv;

    /* Replies are small, but for a stored response's. */
    if ((rv = dp_pdp_create_tls(
             &srv->pdps[i], c->pdp_urls[i],
             (size_t)TG_CONFIG_RESP_MESSAGE_MAX(&srv->cfg->pdp) > (1u << 20)
                 ? (size_t)TG_CONFIG_RESP_MESSAGE_MAX(&srv->cfg->pdp)
                 : (1u << 20),
             c->pdp_uid, &c->pdp_tls)) != TG_OK) {
        return rv;
    }
    srv->n_pdps = i + 1;
    dp_pdp_set_max_request(
        srv->pdps[i], (size_t)srv->cfg->pdp.max_message_bytes,
        (size_t)TG_CONFIG_RESP_MESSAGE_MAX(&srv->cfg->pdp));
    /* A guard set is fetched once per policy or list change: allow it
     * more than a decision's time. */
    if ((rv = dp_guard_create(
             &srv->guards[i], srv->pdps[i],
             c->pdp_timeout_ms * 4 > 2000 ? c->pdp_timeout_ms * 4 : 2000)) !=
        TG_OK) {
        return rv;
    }
    if (i == 0) {
        snprintf(dir, sizeof(dir), "%s", c->spool_dir);
    } else if (snprintf(dir, sizeof(dir), "%s/pdp-%zu", c->spool_dir, i) >=
               (int)sizeof(dir)) {
        return TG_ECONFIG;
    }
    if ((rv = dp_spool_open(&srv->spools[i], dir, srv->pdps[i],
                            (size_t)c->spool_memory_max_bytes)) != TG_OK) {
        return rv;
    }
    if (i > 0) {
        tg_info("PDP fallback %zu: %s, used while %s is not connected", i,
                c->pdp_urls[i], c->pdp_urls[0]);
    }
    return TG_OK;
}

tg_err
dp_server_create(dp_server **out, const tg_config *cfg)
{
    const tg_dp_config *c   = &cfg->dataplane;
    dp_server          *srv = calloc(1, sizeof(*srv));
    tg_err              rv;

    if (srv == NULL) {
        return TG_ENOMEM;
    }
    srv->cfg = cfg;
    if (getrandom(&srv->boot_id, sizeof(srv->boot_id), 0) !=
        sizeof(srv->boot_id)) {
        srv->boot_id = (uint64_t)tg_mono_us() ^ (uint64_t)getpid();
    }
    if ((rv = dp_host_upstreams(cfg, &srv->upstreams, &srv->n_upstreams)) !=
            TG_OK ||
        (rv = dp_server_health(srv)) != TG_OK) {
        goto fail;
    }
    {
        /* Prices order the lowest_cost strategy; the PDP already refused
         * a file that does not load, so a failure here only costs that. */
        char msg[512];
        if (tg_pricing_load(&srv->pricing, cfg->pdp.pricing_file, msg,
                            sizeof(msg)) != TG_OK) {
            tg_warn("pricing: %s; lowest_cost routing uses deployment "
                    "prices only",
                    msg);
            tg_pricing_load(&srv->pricing, NULL, msg, sizeof(msg));
        }
    }
    for (size_t i = 0; i < c->n_pdp_urls; i++) {
        if ((rv = dp_server_pdp_link(srv, i)) != TG_OK) {
            goto fail;
        }
    }
    if ((c->on_pdp_error_allow &&
         (rv = dp_keycache_create(&srv->keys, c->fail_open_key_ttl_s * 1000)) !=
             TG_OK) ||
        (rv = dp_reuse_create(&srv->reuse, c->decision_reuse_ms, c->pdp_urls[0],
                              c->pdp_uid)) != TG_OK) {
        goto fail;
    }
    if (c->otel.endpoint != NULL) {
        if ((rv = dp_otel_start(&srv->otel, &c->otel)) != TG_OK) {
            goto fail;
        }
        tg_info("otel: traces go to %s (service.name %s)", c->otel.endpoint,
                c->otel.service_name);
    }
    if ((rv = dp_server_listen(srv)) != TG_OK ||
        (rv = dp_server_start_workers(srv)) != TG_OK) {
        goto fail;
    }
    *out = srv;
    return TG_OK;
fail:
    dp_server_destroy(srv);
    return rv;
}

void
dp_server_drain(dp_server *srv, int64_t accept_s, int64_t timeout_s)
{
    int64_t start = tg_mono_us();
    int64_t until = start + timeout_s * 1000000;
    int64_t n;

    atomic_store(&srv->draining, true);
    tg_info("draining: /readyz fails now; new requests are taken for %lld "
            "s, requests and streams in flight get up to %lld s in all "
            "(dataplane.drain_accept_s, drain_timeout_s)",
            (long long)accept_s, (long long)timeout_s);
    while (tg_mono_us() < start + accept_s * 1000000 && tg_mono_us() < until) {
        usleep(50 * 1000);
    }
    atomic_store(&srv->closed, true);
    if (srv->mhd != NULL && srv->n_workers > 0) {
        atomic_store(&srv->quiesce, true); /* no new connection */
        dp_worker_wake(srv->workers[0]);
    }
    while ((n = atomic_load(&srv->m.inflight)) > 0 && tg_mono_us() < until) {
        usleep(20 * 1000);
    }
    if (n > 0) {
        tg_warn("draining: %lld request(s) still in flight after %lld s; "
                "cutting them (raise dataplane.drain_timeout_s, and the "
                "pod's terminationGracePeriodSeconds above it, to wait "
                "longer)",
                (long long)n, (long long)timeout_s);
    } else {
        tg_info("draining: nothing in flight after %.1f s",
                (double)(tg_mono_us() - start) / 1e6);
    }
}

void
dp_server_destroy(dp_server *srv)
{
    if (srv == NULL) {
        return;
    }
    atomic_store(&srv->stopping, true);
    if (srv->mhd != NULL && srv->n_workers > 0) {
        atomic_store(&srv->quiesce, true);
        dp_worker_wake(srv->workers[0]);
    }
    /* Order matters: no usage is sent after the spool stops; workers stop
     * and answer every request (resuming its connection); MHD stops once
     * everything was answered; only then does the PDP client go, so no
     * worker and no MHD callback touches it after. Its last callbacks and
     * MHD's post to the stopped workers' queues, which stay valid until
     * dp_worker_destroy; reports made meanwhile are committed by
     * dp_spool_close. */
    for (size_t i = 0; i < srv->n_pdps; i++) {
        dp_spool_stop(srv->spools[i]);
    }
    for (size_t i = 0; i < srv->n_workers; i++) {
        dp_worker_stop(srv->workers[i]);
    }
    if (srv->mhd != NULL) {
        /* The workers are gone: this thread drives MHD now, to flush the
         * answers just resumed. */
        int64_t until = tg_mono_us() + 100 * 1000;
        dp_server_quiesce_now(srv);
        while (tg_mono_us() < until) {
            MHD_run_wait(srv->mhd, 10);
        }
        MHD_stop_daemon(srv->mhd);
    }
    tg_deadline_destroy(srv->deadline); /* MHD stopped: nothing tracked */
    for (size_t i = 0; i < srv->n_pdps; i++) {
        dp_pdp_destroy(srv->pdps[i]);
    }
    /* Its fetches have called back; its waiters post to the workers'
     * queues, valid until dp_worker_destroy. */
    for (size_t i = 0; i < srv->n_pdps; i++) {
        dp_guard_destroy(srv->guards[i]);
    }
    for (size_t i = 0; i < srv->n_workers; i++) {
        dp_worker_destroy(srv->workers[i]);
    }
    for (size_t i = 0; i < srv->n_pdps; i++) {
        dp_spool_close(srv->spools[i]);
    }
    dp_otel_stop(srv->otel); /* the workers are gone: no span comes */
    dp_keycache_destroy(srv->keys);
    dp_reuse_destroy(srv->reuse);
    dp_host_upstreams_free(srv->upstreams, srv->n_upstreams);
    dp_health_destroy(srv->health);
    tg_pricing_destroy(srv->pricing);
    free(srv->workers);
    free(srv);
}
