/* pdp_ha_follow.c - a central PDP's standby (pdp.ha role standby): it
 * serves nothing; it pulls the active PDP's transaction log and applies it
 * (starting from a copy of the active's whole store when it has none of
 * the active's history), and each pull acknowledges what it applied, which
 * is what lets the active answer its writers. `tollgate-pdp promote` asks,
 * through the store, for it to take over: it refuses while the active
 * still answers or when it knows it lacks writes the active acknowledged
 * without it (unless forced), else promotes the store (pdp_txlog_promote)
 * and returns, and the process goes on to serve as the active PDP. */
#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pdp_ha.h"
#include "pdp_serve.h"
#include "pdp_txlog.h"
#include "pdp_wire.h"
#include "tg_dial.h"
#include "tg_log.h"
#include "tg_nngtls.h"
#include "tg_time.h"

#define HA_PULL_WAIT_MS 500 /* the active parks an idle pull this long */
#define HA_ALIVE_MS                                                            \
    2000 /* the active answered this recently: alive (a                        \
          * healthy one answers every HA_PULL_WAIT_MS) */
#define HA_REPLY_MAX (8u << 20)
/* A pull carries at least one whole transaction: the largest stored
 * response, its index records and the log's framing must fit a reply. */
_Static_assert(TG_CONFIG_RESP_MAX_LIMIT + (1 << 20) <= HA_REPLY_MAX,
               "pdp.responses.max_response_bytes may outgrow an HA pull");
#define HA_PRUNE_EVERY_MS 10000
#define HA_SYNC_MS 100 /* applied entries reach the disk within this */
#define HA_KEEP 100000 /* log entries a standby keeps */

typedef struct ha_link {
    const tg_config *cfg;
    nng_socket       sock;
    bool             open;
    nng_tls_config  *tls;
    tg_dial          dial;
    bool             dialing;
    pdp_req          req;
    pdp_rep          rep;
    tg_buf           out;
    uint64_t         n;
} ha_link;

static tg_err
ha_link_open(ha_link *l, const tg_config *cfg, char *err, size_t errlen)
{
    const tg_ha_config *h   = &cfg->pdp.ha;
    const char         *url = h->peer;
    size_t              bad;
    char                host[256];
    int                 rc;

    memset(l, 0, sizeof(*l));
    l->cfg = cfg;
    tg_buf_init(&l->out, 0);
    if (strncmp(h->peer, "tls+tcp://", 10) == 0) {
        tg_tls_url_host(h->peer, host, sizeof(host));
        if (tg_tls_config(&l->tls, false, &h->tls, host, err, errlen) !=
            TG_OK) {
            return TG_ECONFIG;
        }
    }
    if ((rc = nng_req0_open(&l->sock)) != 0) {
        snprintf(err, errlen, "pdp.ha: %s", nng_strerror(rc));
        return TG_ESYS;
    }
    l->open = true;
    nng_socket_set_ms(l->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, HA_REPLY_MAX);
    nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 500);
    rc = tg_dial_start(&l->dial, l->sock, 1, &url, &l->tls, NULL, NULL, &bad);
    l->dialing = true;
    if (rc != 0) {
        snprintf(err, errlen, "pdp.ha.peer %s: %s", h->peer, nng_strerror(rc));
        return TG_ECONFIG;
    }
    return TG_OK;
}

static void
ha_link_close(ha_link *l)
{
    if (l->open) {
        nng_close(l->sock);
    }
    if (l->dialing) {
        tg_dial_fini(&l->dial);
    }
    if (l->tls != NULL) {
        nng_tls_config_free(l->tls);
    }
    pdp_wire_reply_release(&l->rep);
    tg_buf_fini(&l->out);
}

/* ha_call sends l->req (a ReplPull) and decodes the answer into l->rep
 * (released first); TG_EPROTO for an error answer (err says it). */
static tg_err
ha_call(ha_link *l, int64_t timeout_ms, char *err, size_t errlen)
{
    nng_msg *msg = NULL;
    tg_err   rv;
    int      rc;

    pdp_wire_reply_release(&l->rep);
    memset(&l->rep, 0, sizeof(l->rep));
    l->req.kind = PDP_REQ_REPL_PULL;
    snprintf(l->req.request_id, sizeof(l->req.request_id), "ha-%llu",
             (unsigned long long)++l->n);
    tg_buf_reset(&l->out);
    if ((rv = pdp_wire_encode_request(&l->req, &l->out)) != TG_OK) {
        snprintf(err, errlen, "cannot encode a pull: %s", tg_strerror(rv));
        return rv;
    }
    nng_socket_set_ms(l->sock, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms);
    nng_socket_set_ms(l->sock, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
    if ((rc = nng_send(l->sock, l->out.data, l->out.len, 0)) != 0 ||
        (rc = nng_recvmsg(l->sock, &msg, 0)) != 0) {
        snprintf(err, errlen, "no answer from %s: %s", l->cfg->pdp.ha.peer,
                 nng_strerror(rc));
        return TG_EIO;
    }
    rv = pdp_wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), 0, &l->rep,
                               err, errlen);
    nng_msg_free(msg);
    if (rv == TG_OK && l->rep.kind == PDP_REP_ERROR) {
        snprintf(err, errlen, "%s: %.300s", l->cfg->pdp.ha.peer,
                 l->rep.u.error);
        return TG_EPROTO;
    }
    if (rv == TG_OK && l->rep.kind != PDP_REP_REPL_DATA) {
        snprintf(err, errlen, "%s: unexpected answer", l->cfg->pdp.ha.peer);
        return TG_EPROTO;
    }
    return rv;
}

/* ha_pull_init fills the pull every call of a standby starts from. */
static void
ha_pull_init(ha_link *l, const pdp_txlog_state *ts)
{
    pdp_repl_pull *p = &l->req.u.repl_pull;

    memset(&l->req, 0, sizeof(l->req));
    snprintf(p->node, sizeof(p->node), "standby");
    snprintf(p->lineage, sizeof(p->lineage), "%s", ts->lineage);
    p->from      = ts->head;
    p->max_bytes = 1u << 20;
    p->standby   = true;
    p->epoch     = ts->epoch;
}

/* ha_fetch_copy takes a copy of the active's whole store chunk by chunk
 * into path (the previous content replaced). */
static tg_err
ha_fetch_copy(ha_link *l, const pdp_txlog_state *ts, const char *path,
              char *err, size_t errlen)
{
    int      fd  = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint64_t off = 0, size = 1;
    char     id[PDP_WIRE_LINEAGE_MAX] = "";
    tg_err   rv                       = TG_OK;

    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return TG_EIO;
    }
    while (off < size) {
        ha_pull_init(l, ts);
        l->req.u.repl_pull.snapshot    = true;
        l->req.u.repl_pull.copy_offset = off;
        snprintf(l->req.u.repl_pull.copy_id, sizeof(l->req.u.repl_pull.copy_id),
                 "%s", id);
        /* The first chunk waits for the copy to be made. */
        if ((rv = ha_call(l, off == 0 ? 120000 : l->cfg->pdp.ha.timeout_ms, err,
                          errlen)) != TG_OK) {
            break;
        }
        if (!l->rep.u.repl.snapshot || l->rep.u.repl.copy_id[0] == '\0' ||
            l->rep.u.repl.copy_offset != off ||
            (off > 0 && (strcmp(id, l->rep.u.repl.copy_id) != 0 ||
                         l->rep.u.repl.copy_size != size)) ||
            (l->rep.u.repl.len == 0 && off < l->rep.u.repl.copy_size)) {
            snprintf(err, errlen, "the active's copy came out of order");
            rv = TG_EPROTO;
            break;
        }
        snprintf(id, sizeof(id), "%s", l->rep.u.repl.copy_id);
        size = l->rep.u.repl.copy_size;
        if (pwrite(fd, l->rep.u.repl.data, l->rep.u.repl.len, (off_t)off) !=
            (ssize_t)l->rep.u.repl.len) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            rv = TG_EIO;
            break;
        }
        off += l->rep.u.repl.len;
    }
    if (rv == TG_OK && fsync(fd) != 0) {
        snprintf(err, errlen, "cannot fsync %s: %s", path, strerror(errno));
        rv = TG_EIO;
    }
    close(fd);
    if (rv == TG_OK) {
        tg_info("ha: took a copy of the active's store (%llu bytes)",
                (unsigned long long)size);
    }
    return rv;
}

/* ha_reinstall replaces the standby's store with the copy at path and
 * opens it again as a standby's. */
static tg_err
ha_reinstall(const tg_config *cfg, pdp_store **st, const char *path, char *err,
             size_t errlen)
{
    tg_err rv;

    pdp_store_close(*st);
    *st = NULL;
    if ((rv = pdp_txlog_install(cfg->pdp.state_dir, path, err, errlen)) !=
            TG_OK ||
        (rv = pdp_store_open(st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, err,
                             errlen)) != TG_OK) {
        return rv;
    }
    return pdp_txlog_set_role(*st, PDP_HA_STANDBY);
}

typedef struct ha_state {
    const tg_config *cfg;
    pdp_store      **st;
    ha_link          l;
    int64_t          alive_ms; /* the active's last answer (monotonic) */
    bool             behind;   /* it acknowledged writes we lack */
    bool             need_copy;
    int64_t          said_ms;
    int64_t          pruned_ms;
    /* The sync thread fsyncs what was applied (dirty) every HA_SYNC_MS;
     * store_mu keeps the store from being swapped under it. */
    pthread_t       syncer;
    bool            syncing;
    pthread_mutex_t store_mu;
    atomic_bool     dirty;
    atomic_bool     stop;
} ha_state;

/* ha_step makes one pull (or takes a copy) and applies what came. */
static void
ha_step(ha_state *f, char *err, size_t errlen)
{
    pdp_txlog_state ts;
    char            path[4200];
    tg_err          rv;

    if ((rv = pdp_txlog_state_get(*f->st, &ts)) != TG_OK) {
        snprintf(err, errlen, "cannot read the log: %s", tg_strerror(rv));
        return;
    }
    if (f->need_copy || ts.lineage[0] == '\0') {
        snprintf(path, sizeof(path), "%.4000s/ha-incoming.mdb",
                 f->cfg->pdp.state_dir);
        if ((rv = ha_fetch_copy(&f->l, &ts, path, err, errlen)) == TG_OK) {
            f->alive_ms = tg_mono_us() / 1000;
            pthread_mutex_lock(&f->store_mu);
            rv = ha_reinstall(f->cfg, f->st, path, err, errlen);
            pthread_mutex_unlock(&f->store_mu);
            f->need_copy = rv != TG_OK;
        }
        unlink(path);
        return;
    }
    if (tg_mono_us() / 1000 - f->pruned_ms > HA_PRUNE_EVERY_MS) {
        /* Applied entries are kept only for a standby's own promotion:
         * its new standby starts from a copy anyway. */
        f->pruned_ms = tg_mono_us() / 1000;
        (void)pdp_txlog_prune(*f->st, HA_KEEP);
    }

    ha_pull_init(&f->l, &ts);
    if ((rv = ha_call(&f->l, HA_PULL_WAIT_MS + f->cfg->pdp.ha.timeout_ms, err,
                      errlen)) != TG_OK) {
        return;
    }
    f->alive_ms = tg_mono_us() / 1000;
    if (f->l.rep.u.repl.snapshot) {
        tg_info("ha: the active's log does not go on from this standby's "
                "position %llu (another history, or pruned); taking a copy",
                (unsigned long long)ts.head);
        f->need_copy = true;
        return;
    }
    if ((rv = pdp_txlog_apply(*f->st, f->l.rep.u.repl.data, f->l.rep.u.repl.len,
                              NULL)) != TG_OK) {
        snprintf(err, errlen, "cannot apply the active's log: %s",
                 tg_strerror(rv));
        f->need_copy = rv == TG_EPROTO;
        return;
    }
    /* The next pull acknowledges it at once (committed: a crash of this
     * process keeps it); the sync thread puts it on the disk within
     * HA_SYNC_MS. */
    if (f->l.rep.u.repl.len > 0) {
        atomic_store(&f->dirty, true);
    }
    if (f->l.rep.u.repl.behind != f->behind) {
        f->behind = f->l.rep.u.repl.behind;
        if (f->behind) {
            tg_warn("ha: the active acknowledged writes without this "
                    "standby; it is not a safe promotion target until it "
                    "has caught up");
        }
    }
    err[0] = '\0';
}

/* ha_try_promote answers a promotion the command line asked for: true
 * when this store is now the active one. */
static bool
ha_try_promote(ha_state *f, int asked)
{
    int64_t  since = tg_mono_us() / 1000 - f->alive_ms;
    char     why[512];
    uint64_t epoch = 0;
    tg_err   rv;

    why[0] = '\0';
    if (asked != 2 && f->alive_ms > 0 && since < HA_ALIVE_MS) {
        snprintf(why, sizeof(why),
                 "refused: the active PDP answered %.1f s ago; stop it first "
                 "(two active PDPs would both grant the same budget), or "
                 "promote with --force",
                 (double)since / 1000.0);
    } else if (asked != 2 && f->behind) {
        snprintf(why, sizeof(why),
                 "refused: the active acknowledged writes this standby does "
                 "not hold (its standby was lost, on_standby_lost alone); "
                 "promoting would lose them. Promote with --force to accept "
                 "that");
    }
    if (f->need_copy || f->alive_ms == 0) {
        /* Not even --force: there is nothing to serve from. */
        snprintf(why, sizeof(why),
                 "refused: this standby has not synced with the active PDP "
                 "since it started, so it holds no complete copy of its "
                 "store");
    }
    if (why[0] != '\0') {
        tg_warn("ha: promotion %s", why);
        pdp_txlog_say(*f->st, why);
        return false;
    }
    if ((rv = pdp_txlog_promote(*f->st, &epoch)) != TG_OK) {
        snprintf(why, sizeof(why), "refused: cannot promote the store: %s",
                 tg_strerror(rv));
        pdp_txlog_say(*f->st, why);
        return false;
    }
    snprintf(why, sizeof(why),
             "promoted: this PDP is the active one, epoch "
             "%llu",
             (unsigned long long)epoch);
    pdp_txlog_say(*f->st, why);
    tg_info("ha: %s%s; the old active must come back as a standby "
            "(pdp.ha.role standby, peer this one)",
            why, asked == 2 ? " (forced)" : "");
    return true;
}

/* ha_sync_main fsyncs the standby's store every HA_SYNC_MS while
 * something was applied. */
static void *
ha_sync_main(void *arg)
{
    ha_state       *f   = arg;
    struct timespec nap = {0, HA_SYNC_MS * 1000 * 1000};

    while (!atomic_load(&f->stop)) {
        nanosleep(&nap, NULL);
        if (!atomic_exchange(&f->dirty, false)) {
            continue;
        }
        pthread_mutex_lock(&f->store_mu);
        if (*f->st != NULL && pdp_txlog_sync(*f->st) != TG_OK) {
            atomic_store(&f->dirty, true); /* said in the log; again */
        }
        pthread_mutex_unlock(&f->store_mu);
    }
    return NULL;
}

/* ha_follow runs the standby until it is promoted (0) or a signal stops
 * it (PDP_HA_STOPPED). */
static int
ha_follow(const tg_config *cfg, pdp_store **st, const sigset_t *set, char *msg,
          size_t msglen)
{
    ha_state        f;
    struct timespec nap = {0, 100 * 1000 * 1000};
    struct timespec now = {0, 0};
    int             ec  = PDP_HA_STOPPED;

    memset(&f, 0, sizeof(f));
    f.cfg = cfg;
    f.st  = st;
    pthread_mutex_init(&f.store_mu, NULL);
    atomic_init(&f.dirty, false);
    atomic_init(&f.stop, false);
    if (ha_link_open(&f.l, cfg, msg, msglen) != TG_OK) {
        tg_error("ha: %s", msg);
        ha_link_close(&f.l);
        pthread_mutex_destroy(&f.store_mu);
        return PDP_SERVE_USAGE;
    }
    f.syncing = pthread_create(&f.syncer, NULL, ha_sync_main, &f) == 0;
    tg_info("ha: standby of %s: following its log; serving nothing until "
            "promoted (tollgate-pdp promote)",
            cfg->pdp.ha.peer);
    for (;;) {
        int asked, sig = sigtimedwait(set, NULL, &now);
        if (sig == SIGINT || sig == SIGTERM) {
            tg_info("ha: standby stopped");
            break;
        }
        if ((asked = pdp_txlog_promote_asked(*st)) != 0 &&
            ha_try_promote(&f, asked)) {
            ec = 0;
            break;
        }
        if (tg_dial_check(&f.l.dial) == 1) {
            tg_info("ha: no connection to %s for %d s; dialling it afresh "
                    "(and every %d s until there is one)",
                    cfg->pdp.ha.peer, TG_DIAL_AFRESH_MS / 1000,
                    TG_DIAL_AFRESH_MS / 1000);
        }
        msg[0] = '\0';
        ha_step(&f, msg, msglen);
        if (msg[0] != '\0') {
            int64_t t = tg_mono_us() / 1000;
            if (t - f.said_ms > 5000) {
                f.said_ms = t;
                tg_warn("ha: standby: %s", msg);
            }
            nanosleep(&nap, NULL);
        }
    }
    atomic_store(&f.stop, true);
    if (f.syncing) {
        pthread_join(f.syncer, NULL);
    }
    pthread_mutex_destroy(&f.store_mu);
    ha_link_close(&f.l);
    return ec;
}

/* ha_peer_epoch asks the peer who it is: true when it answered as an
 * active PDP, with its epoch. */
static bool
ha_peer_epoch(const tg_config *cfg, uint64_t *epoch)
{
    ha_link l;
    char    err[256];
    bool    ok = false;

    if (ha_link_open(&l, cfg, err, sizeof(err)) == TG_OK) {
        memset(&l.req, 0, sizeof(l.req));
        snprintf(l.req.u.repl_pull.node, sizeof(l.req.u.repl_pull.node),
                 "peer");
        l.req.u.repl_pull.standby = true; /* max_bytes 0: who is there */
        /* A dialer connects in the background: give it the timeout. */
        ok     = ha_call(&l, cfg->pdp.ha.timeout_ms, err, sizeof(err)) == TG_OK;
        *epoch = ok ? l.rep.u.repl.epoch : 0;
    }
    ha_link_close(&l);
    return ok;
}

int
pdp_ha_begin(const tg_config *cfg, pdp_store **st, const sigset_t *set,
             char *msg, size_t msglen, FILE *err)
{
    const tg_ha_config *h = &cfg->pdp.ha;
    pdp_txlog_state     ts;
    uint64_t            peer = 0;
    bool                answered, standby;

    if (pdp_store_open(st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       msglen) != TG_OK ||
        pdp_txlog_state_get(*st, &ts) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        return PDP_SERVE_FAIL;
    }
    answered = h->peer != NULL && ha_peer_epoch(cfg, &peer);
    if (answered && peer >= ts.epoch && !(ts.promoted && peer == ts.epoch)) {
        if (!h->standby) {
            fprintf(err,
                    "tollgate-pdp serve: pdp.ha: the peer %s is an active PDP "
                    "(epoch %llu, this one %llu): another PDP was promoted "
                    "over this one, or both are configured active. Start "
                    "this one with \"role\": \"standby\"\n",
                    h->peer, (unsigned long long)peer,
                    (unsigned long long)ts.epoch);
            return PDP_SERVE_USAGE;
        }
        standby = true;
    } else if (ts.role == PDP_HA_ACTIVE && ts.promoted) {
        if (h->standby) {
            tg_info("ha: this store was promoted (epoch %llu): serving as "
                    "the active PDP although pdp.ha.role is standby",
                    (unsigned long long)ts.epoch);
        }
        standby = false;
    } else if (!h->standby && ts.role == PDP_HA_STANDBY) {
        fprintf(err, "tollgate-pdp serve: pdp.ha: this state directory is a "
                     "standby's copy; start it as a standby and run "
                     "`tollgate-pdp promote` to make it active\n");
        return PDP_SERVE_USAGE;
    } else {
        standby = h->standby;
    }
    if (pdp_txlog_set_role(*st, standby ? PDP_HA_STANDBY : PDP_HA_ACTIVE) !=
        TG_OK) {
        fprintf(err, "tollgate-pdp serve: pdp.ha: cannot set the role\n");
        return PDP_SERVE_FAIL;
    }
    return standby ? ha_follow(cfg, st, set, msg, msglen) : 0;
}

void
pdp_ha_none(pdp_store *st)
{
    pdp_txlog_state ts;

    if (pdp_txlog_state_get(st, &ts) != TG_OK || ts.role == PDP_HA_NONE) {
        return;
    }
    /* A store that was one of a pair and is no more: nothing follows its
     * log, which would only grow. */
    tg_info("ha: pdp.ha is not set: this PDP keeps no transaction log any "
            "more (it was %s, epoch %llu)",
            ts.role == PDP_HA_ACTIVE ? "an active PDP" : "a standby",
            (unsigned long long)ts.epoch);
    if (pdp_txlog_set_role(st, PDP_HA_NONE) != TG_OK ||
        pdp_txlog_prune(st, 0) != TG_OK) {
        tg_warn("ha: cannot drop the transaction log; it stays as it is");
    }
}
