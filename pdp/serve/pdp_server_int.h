/* pdp_server_int.h - what pdp_server.c shares with the files that hold
 * its listeners (pdp_server_listen.c: ipc sockets only our peers may use),
 * its rate-limit persistence (pdp_server_persist.c: snapshot thread,
 * restore at start) and its side of sidecar PDPs (pdp_server_up.c).
 * Internal to the server; nothing else includes it. */
#ifndef PDP_SERVER_INT_H
#define PDP_SERVER_INT_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "pdp_alerts.h"
#include "pdp_decide.h"
#include "pdp_guardset.h"
#include "pdp_server.h"
#include "pdp_upstream.h"
#include "pdp_wire.h"
#include "tg_buf.h"
#include "tg_nngtls.h"
#include "tg_trust.h"

#define PDP_SERVER_PIPES_MAX 1024 /* counted for draining; more still work */
#define PDP_SERVER_REPLY_MAX (256u << 20) /* a sidecar's snapshot at most */
/* The largest request taken: pdp.max_message_bytes, or a stored
 * response's put (pdp.responses.max_response_bytes) when larger. */
#define PDP_SERVER_RECV_MAX(pc)                                                \
    ((pc)->max_message_bytes > TG_CONFIG_RESP_MESSAGE_MAX(pc)                  \
         ? (pc)->max_message_bytes                                             \
         : TG_CONFIG_RESP_MESSAGE_MAX(pc))
#define PDP_WORKER_WAITS_MAX 4 /* a decision waits for slices this often */

typedef enum pdp_worker_state {
    PDP_WORKER_RECV = 0,
    PDP_WORKER_SEND,
    PDP_WORKER_STORE, /* parked: waiting for the writer's commit */
} pdp_worker_state;

typedef struct pdp_worker {
    pdp_server       *srv;
    nng_aio          *aio;
    nng_ctx           ctx;
    bool              ctx_open;
    pdp_worker_state  state;
    pdp_store_reader *rd;
    pdp_key           key;    /* scratch for the usage report's key */
    nng_msg          *parked; /* the request, reused for the usage reply */
    tg_buf            out;
    pdp_req           req;
    pdp_rep           rep;
    tg_buf            resbuf; /* the decision's reservation, encoded */
    tg_usage          hold;   /* scratch: a sidecar decision's charges */
    uint32_t          waits;  /* times this decision waited for a slice */
    tg_buf            content; /* a usage batch's captured content */
    /* The budget windows the parked report's reservation held. */
    uint32_t             nspend;
    pdp_limits_spend_key spend[PDP_LIMITS_BUDGETS_MAX];
    /* The reply acknowledges a write: with a standby (pdp.ha), it waits
     * until the standby holds it (pdp_server_ha.c). ha_seq, ha_msg: the
     * standby's parked pull (its position, the request). */
    bool     sync;
    uint64_t ha_seq;
    nng_msg *ha_msg;
} pdp_worker;

typedef struct pdp_ha pdp_ha;

struct pdp_server {
    const tg_config *cfg;
    pdp_store       *st;
    tg_pricing      *pr;
    pdp_rollout     *ro;
    pdp_limits      *lim;          /* rate-limit windows and reservations */
    pdp_alerts      *alerts;       /* budget threshold alerts */
    pdp_guardset    *guards;       /* guard sets served to data planes */
    atomic_llong     decisions[3]; /* allow, deny, error */
    nng_socket       sock;
    bool             sock_open;
    pdp_worker      *workers;
    size_t           n_workers;
    atomic_bool      stopping;
    atomic_bool      ready;
    pthread_mutex_t  mu; /* guards parked and, with it, stopping for usage */
    pthread_cond_t   cv;
    size_t           parked;
    /* The snapshot thread; snap_stop is guarded by snap_mu. snap_seen and
     * snap_buf belong to whoever writes snapshots: the thread, then stop
     * once it is joined. */
    pthread_t       snap_thread;
    bool            snap_running;
    bool            snap_stop;
    bool            snap_force;   /* the stored snapshot is bad: replace it */
    bool            snap_failing; /* the last write failed (warned once) */
    uint64_t        snap_seen;    /* pdp_limits_changes at the last write */
    pthread_mutex_t snap_mu;
    pthread_cond_t  snap_cv;
    tg_buf          snap_buf;
    /* The decision log's signing key (pdp.state_dir/decisions.key), and
     * when the snapshot thread last signed a checkpoint and pruned. */
    pdp_signer     *signer;
    int64_t         cp_last_ms;
    int64_t         prune_last_ms;
    int64_t         resp_prune_ms; /* pdp.responses' retention, likewise */
    /* Who may talk to an ipc:// listener (pdp.allow_uids, else our uid);
     * refused is only touched by the pipe callback. */
    uid_t        allow[TG_CONFIG_MAX_UIDS];
    size_t       n_allow;
    tg_trust_log refused;
    /* Connected data planes, for draining: the pipes nng added (a pipe
     * closed before it was added may still be reported removed, so ids
     * are kept, not just counted); pipe_mu guards pipe_ids. */
    atomic_int      pipes;
    pthread_mutex_t pipe_mu;
    uint32_t        pipe_ids[PDP_SERVER_PIPES_MAX];
    size_t          n_pipe_ids;
    /* tls+tcp:// listeners: restarted with a new config when pdp.tls's
     * files change (tls_mu guards them and tls_cfg). */
    pthread_mutex_t tls_mu;
    nng_tls_config *tls_cfg;
    nng_listener    tls_l[TG_CONFIG_MAX_LISTEN];
    const char     *tls_url[TG_CONFIG_MAX_LISTEN];
    size_t          n_tls;
    tg_tls_watch   *tls_watch;
    atomic_llong    tls_reloads;
    /* ipc:// listeners, and whether each still takes connections
     * (pdp_server_probe.c, on the snapshot thread, which alone changes
     * them after start): nng 1.5's listener stops for good when a peer
     * hangs up before its handshake. */
    nng_listener ipc_l[TG_CONFIG_MAX_LISTEN];
    const char  *ipc_url[TG_CONFIG_MAX_LISTEN];
    size_t       n_ipc;
    unsigned     probe_misses[TG_CONFIG_MAX_LISTEN];
    int64_t      probe_accepted[TG_CONFIG_MAX_LISTEN]; /* its "accept" count */
    int64_t      probe_ms;
    /* A sidecar: its link to the central PDP, through which budgets and
     * rate limits are admitted (NULL: this PDP's own limits). */
    pdp_upstream    *up;
    pdp_decide_admit admit;
    /* As a central PDP (pdp_server_up.c): leases granted and taken back,
     * forwarded emergency reports, and what was last published. */
    atomic_ullong leases_granted;
    atomic_ullong leases_closed;
    atomic_ullong emergency_reports;
    uint64_t      leases_restored;
    char          published[TG_MSG_HASH_MAX];
    bool          pricing_published;
    int64_t       repl_pruned_ms;
    /* A central PDP with a standby (pdp_server_ha.c; NULL: none), and
     * whether a sidecar told this one that another was promoted over it
     * (it then answers nothing but errors). */
    pdp_ha     *ha;
    atomic_bool fenced;
};

/* pdp_server_listen starts a listener on url (ipc:// only: tcp is refused
 * at config load) on srv->sock; an ipc socket's directory is made ours
 * alone first (pdp.socket_group shares it). err gets what went wrong. */
tg_err pdp_server_listen(pdp_server *srv, const char *url, char *err,
                         size_t errlen);

/* pdp_server_pipe_cb is the nng pipe callback (NNG_PIPE_EV_ADD_PRE) that
 * closes an ipc peer whose uid is not allowed; arg is the server. */
void pdp_server_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg);

/* pdp_server_ipc_relisten closes ipc listener i and listens on its URL
 * again (its connections close: their data planes redial).
 * pdp_server_listen.c. */
tg_err pdp_server_ipc_relisten(pdp_server *srv, size_t i, char *err,
                               size_t errlen);

/* pdp_server_probe checks, every 2 s (called by the snapshot thread once a
 * second), that each ipc listener still takes connections, and restarts
 * one that missed twice in a row. pdp_server_probe.c. */
void pdp_server_probe(pdp_server *srv);

/* pdp_server_allow sets the uids an ipc:// peer may run as
 * (pdp.allow_uids, else our own). pdp_server_listen.c. */
void pdp_server_allow(pdp_server *srv);

/* pdp_server_tls_start loads pdp.tls when a listener needs it and watches
 * its files; pdp_server_tls_stop closes the listeners' config and the
 * watch (before the socket closes). */
tg_err pdp_server_tls_start(pdp_server *srv, char *err, size_t errlen);
void   pdp_server_tls_stop(pdp_server *srv);

/* pdp_server_limits_restore brings back the saved rate-limit windows and
 * every recorded reservation before the first decision (start only). */
void pdp_server_limits_restore(pdp_server *srv);

/* pdp_server_state_load brings the limits back before the first decision
 * (pdp_server_persist.c, which says in what order). */
tg_err pdp_server_state_load(pdp_server *srv, char *err, size_t errlen);

/* pdp_server_snap_main is the snapshot thread: a snapshot once a second
 * while the windows change, until snap_stop. arg is the server. */
void *pdp_server_snap_main(void *arg);

/* pdp_server_snapshot writes the rate-limit state to the store unless
 * nothing changed since the last write. The snapshot thread, or stop once
 * it is joined. */
void pdp_server_snapshot(pdp_server *srv);

/* pdp_server_expired deletes an expired reservation's record
 * (pdp_limits_on_expire callback; arg is the server). */
void pdp_server_expired(void *arg, const char *id);

/* pdp_server_budget_load feeds one settled budget window to the limits
 * (pdp_store_budget_windows callback; arg is the pdp_limits). */
void pdp_server_budget_load(void *arg, const pdp_limits_spend_key *k,
                            int64_t spent);

/* pdp_server_encode encodes w->rep into msg (false: it cannot be, even as
 * an error); pdp_server_send encodes and sends it, taking msg
 * (pdp_server.c). */
bool pdp_server_encode(pdp_worker *w, nng_msg *msg);
void pdp_server_send(pdp_worker *w, nng_msg *msg);

/* ---- pdp_server_ha.c: the active side of a standby (pdp.ha) ---- */

/* pdp_server_ha_start starts it when pdp.ha is set (else does nothing);
 * pdp_server_ha_stop lets every held reply go as an error and answers the
 * parked pull (before the server waits for parked workers);
 * pdp_server_ha_free stops and frees it. */
tg_err pdp_server_ha_start(pdp_server *srv, char *err, size_t errlen);
void   pdp_server_ha_stop(pdp_server *srv);
void   pdp_server_ha_free(pdp_server *srv);

/* pdp_server_ha_hold: true when w's reply (msg, taken) waits until the
 * standby holds every write committed so far: it is encoded and kept with
 * w's context, and w gets a fresh one to receive on (a held reply never
 * keeps a worker: the standby's own pull must find one); false: send it
 * now (w->rep may have become an error: the standby is lost and
 * on_standby_lost is refuse). */
bool pdp_server_ha_hold(pdp_worker *w, nng_msg *msg);

/* pdp_server_ha_pull answers a standby's ReplPull: true when it is parked
 * until the log moves on (msg taken), false when w->rep is the answer. */
bool pdp_server_ha_pull(pdp_worker *w, nng_msg *msg);

/* pdp_server_ha_epoch is this PDP's HA epoch (0 without pdp.ha). */
uint64_t pdp_server_ha_epoch(const pdp_server *srv);

void pdp_server_ha_metrics(pdp_server *srv, tg_buf *out);

/* ---- pdp_responses_srv.c: stored Responses API responses ---- */

/* pdp_server_resp_handle fills w->rep (a RespReply) for a RespPut,
 * RespGet or RespDelete and releases the request; the reply owns a found
 * response's buffers (pdp_wire_reply_release after it is encoded). */
void pdp_server_resp_handle(pdp_worker *w);

/* pdp_server_resp_prune deletes the stored responses past
 * pdp.responses' retention (the snapshot thread, once a minute). */
void pdp_server_resp_prune(pdp_server *srv);

/* ---- pdp_server_up.c: the central PDP's side of its sidecar PDPs ---- */

/* pdp_server_up_handle fills w->rep for a ReplPull, LeaseAsk or
 * LeaseClose; true when w is parked instead (a standby's pull: msg is
 * taken and the reply sent later). */
bool pdp_server_up_handle(pdp_worker *w, nng_msg *msg);

/* pdp_server_up_spend writes the budget windows report u charges into
 * spend (room for PDP_LIMITS_BUDGETS_MAX): a forwarded report's own, else
 * its reservation's. Returns how many. */
uint32_t pdp_server_up_spend(pdp_server *srv, const tg_usage *u,
                             pdp_limits_spend_key *spend);

/* pdp_server_up_settled moves a committed forwarded report's cost from
 * the leases it names to their settled spend. */
void pdp_server_up_settled(pdp_server *srv, const tg_usage *u, int64_t cost,
                           const pdp_limits_spend_key *spend, uint32_t nspend);

/* pdp_server_up_restore holds the recorded leases again (start only). */
void pdp_server_up_restore(pdp_server *srv);

/* pdp_server_up_publish puts the bundle in effect (when it changed) and
 * the pricing file into the replicated blobs, and prunes the change log
 * and expired lease records once a minute (the snapshot thread). */
void pdp_server_up_publish(pdp_server *srv, int64_t now_ms);

/* pdp_server_up_metrics appends the lease counters. */
void pdp_server_up_metrics(pdp_server *srv, tg_buf *out);

#endif
