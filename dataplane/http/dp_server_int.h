/* dp_server_int.h - struct dp_server, shared by dp_server.c (the requests)
 * and dp_server_life.c (create, drain, destroy); nothing else sees it.
 * The server owns the workers and what they borrow (workers see a
 * dp_host). */
#ifndef DP_SERVER_INT_H
#define DP_SERVER_INT_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "dp_guard.h"
#include "dp_host.h"
#include "dp_keycache.h"
#include "dp_metrics.h"
#include "dp_otel.h"
#include "dp_pdp.h"
#include "dp_reuse.h"
#include "dp_server.h"
#include "dp_spool.h"
#include "dp_worker.h"
#include "tg_deadline.h"

/* Once a body is in, the connection is suspended and the request handed
 * to a worker. The worker resumes the connection when it has a whole
 * answer, or each time stream bytes arrive; the content reader suspends
 * it again when it has drained them. */
struct dp_server {
    const tg_config   *cfg;
    struct MHD_Daemon *mhd;
    /* One PDP client, guard cache and usage spool per dataplane.pdp_url. */
    dp_pdp      *pdps[TG_CONFIG_MAX_PDP_URLS];
    dp_guard    *guards[TG_CONFIG_MAX_PDP_URLS];
    dp_spool    *spools[TG_CONFIG_MAX_PDP_URLS];
    size_t       n_pdps;
    dp_keycache *keys; /* on_pdp_error: allow only */
    dp_reuse    *reuse;
    dp_worker  **workers;
    size_t       n_workers;
    /* Worker 0 drives MHD (external polling): loop, and quiesce asks it
     * to stop accepting; quiesced belongs to whoever drives MHD. */
    dp_worker_loop       loop;
    atomic_bool          quiesce;
    bool                 quiesced;
    dp_upstream         *upstreams;
    size_t               n_upstreams;
    dp_health           *health;  /* one slot per upstream, by index */
    tg_pricing          *pricing; /* pdp.pricing_file; may be empty */
    dp_metrics           m;
    dp_host              host; /* what the workers borrow of the above */
    uint64_t             boot_id;
    atomic_uint_fast64_t seq;
    atomic_bool          stopping;
    atomic_bool          draining; /* SIGTERM: /readyz fails, work goes on */
    atomic_bool          closed;   /* draining, past drain_accept_s: new
                                      requests get 503, the listener is
                                      closed; what is in flight goes on */
    tg_deadline *deadline;         /* dataplane.request_timeout_s */
    dp_otel     *otel;             /* dataplane.otel; NULL: off */
};

/* The MHD callbacks (dp_server.c), for dp_server_life.c to start MHD with. */
enum MHD_Result dp_server__access(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls);
void            dp_server__completed(void *cls, struct MHD_Connection *conn,
                                     void **con_cls, enum MHD_RequestTerminationCode toe);
void            dp_server__notify(void *cls, struct MHD_Connection *conn,
                                  void                              **socket_ctx,
                                  enum MHD_ConnectionNotificationCode code);

#endif
