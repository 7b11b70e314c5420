/* pdp_server_ha.c - the active side of a central PDP's standby (pdp.ha):
 * it serves the standby's pulls of the transaction log (pdp_txlog.h),
 * parked until there is something new (a long poll), and copies of the
 * whole store to start one; and it holds every reply to a request that
 * wrote (a usage report, a recorded reservation, a lease granted or
 * closed) until the standby's pull acknowledged the log past that write,
 * so nothing acknowledged is missing from a standby that is promoted. A
 * standby that does not acknowledge within pdp.ha.ack_timeout_ms is lost:
 * replies go out without it ("alone", and the standby is told it is
 * behind) or are refused ("refuse") until it has caught up again. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pdp_server_int.h"
#include "pdp_txlog.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

#define HA_POLL_MS 500            /* a pull with nothing new waits this long */
#define HA_IDLE_CHECK_MS 20       /* how often a parked pull looks for writes */
#define HA_CHUNK (1u << 20)       /* bytes of a store copy per pull */
#define HA_CHANGES_MAX (4u << 20) /* bytes of log entries per pull */
#define HA_COPY_REUSE_MS 10000    /* a copy this recent is handed out again */
#define HA_PRUNE_EVERY_MS 10000
#define HA_KEEP_MIN                                                            \
    200000 /* log entries kept besides what the standby lacks                  \
            */
#define HA_KEEP_DETACHED 1000000

/* A held reply: encoded, with the context its request came on (taken
 * from the worker, which got this record's spare context instead). */
typedef struct ha_held {
    struct ha_held *next;
    struct ha_held *all_next;
    pdp_ha         *ha;
    nng_aio        *aio; /* its own: completes the reply's send */
    nng_ctx         ctx;
    nng_msg        *msg;
    uint64_t        seq;
    int64_t         until;
    char            request_id[TG_REQUEST_ID_MAX];
} ha_held;

struct pdp_ha {
    pdp_server     *srv;
    uint64_t        epoch;
    pthread_mutex_t mu; /* everything below but the copy */
    pthread_cond_t  cv;
    pthread_t       th;
    bool            running;
    bool            stop;
    bool            attached;  /* a standby pulled since this PDP started */
    bool            in_sync;   /* it acknowledged everything it was sent */
    uint64_t        acked;     /* the log position it acknowledged */
    int64_t         seen_ms;   /* its last pull */
    uint64_t        alone;     /* the last write acknowledged without it */
    uint64_t        sent_last; /* the last entry of the last answer */
    pdp_worker     *pull;      /* its parked pull */
    int64_t         pull_until;
    ha_held        *holds; /* replies waiting for it, oldest first */
    ha_held       **holds_end;
    ha_held        *spare;  /* records not in use (each with a context) */
    ha_held        *all;    /* every record, for stop */
    tg_buf          errbuf; /* the HA thread's: an error reply encoded */
    int64_t         pruned_ms;
    /* The store copy being handed out (copy_mu): a temporary file. */
    pthread_mutex_t copy_mu;
    int             copy_fd;
    char            copy_id[PDP_WIRE_LINEAGE_MAX];
    uint64_t        copy_size;
    uint64_t        copy_head;
    int64_t         copy_ms;
    uint8_t        *chunk; /* HA_CHUNK bytes read from it */
    atomic_ullong   held, timeouts, refused, copies;
};

/* ha_now is a monotonic clock in ms: deadlines only. */
static int64_t
ha_now(void)
{
    return tg_mono_us() / 1000;
}

/* ha_done sends w's reply (msg, held since w was parked: the standby's
 * pull) and releases the park. */
static void
ha_done(pdp_worker *w, nng_msg *msg)
{
    pdp_server *srv = w->srv;

    pdp_server_send(w, msg);
    pthread_mutex_lock(&srv->mu);
    srv->parked--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* ha_refuse turns w's reply into an error: what it wrote is committed
 * here but not on the standby, so it is not acknowledged (the sender
 * keeps it and sends it again: every write is idempotent by its id). */
static void
ha_refuse(pdp_rep *rep, const char *why)
{
    char id[TG_REQUEST_ID_MAX];

    snprintf(id, sizeof(id), "%s", rep->request_id);
    memset(rep, 0, offsetof(pdp_rep, u));
    rep->kind = PDP_REP_ERROR;
    snprintf(rep->request_id, sizeof(rep->request_id), "%s", id);
    snprintf(rep->u.error, sizeof(rep->u.error), "%s", why);
}

static const char HA_STOPPING[] =
    "the central PDP is stopping before its standby acknowledged this "
    "write; keep it and retry";
static const char HA_LOST[] =
    "the central PDP's standby does not hold this write yet "
    "(pdp.ha.on_standby_lost refuse); keep it and retry";

/* ha_held_cb: a held reply was sent (or could not be); its record, with
 * the context it was sent on as its spare, is free again. */
static void
ha_held_cb(void *arg)
{
    ha_held *h  = arg;
    pdp_ha  *ha = h->ha;

    if (nng_aio_result(h->aio) != 0) {
        nng_msg_free(nng_aio_get_msg(h->aio));
        nng_aio_set_msg(h->aio, NULL);
    }
    pthread_mutex_lock(&ha->mu);
    h->next   = ha->spare;
    ha->spare = h;
    pthread_mutex_unlock(&ha->mu);
}

/* ha_held_get is a free record (ha->mu held), a new one when none is:
 * NULL when nng cannot make one. */
static ha_held *
ha_held_get(pdp_ha *ha)
{
    ha_held *h = ha->spare;

    if (h != NULL) {
        ha->spare = h->next;
        return h;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        return NULL;
    }
    h->ha = ha;
    if (nng_aio_alloc(&h->aio, ha_held_cb, h) != 0) {
        free(h);
        return NULL;
    }
    if (nng_ctx_open(&h->ctx, ha->srv->sock) != 0) {
        nng_aio_free(h->aio);
        free(h);
        return NULL;
    }
    h->all_next = ha->all;
    ha->all     = h;
    return h;
}

/* ha_release sends the held replies of list (outside ha->mu); refuse
 * replaces each with an error first. */
static void
ha_release(pdp_ha *ha, ha_held *list, const char *refuse)
{
    while (list != NULL) {
        ha_held *nx = list->next;
        if (refuse != NULL) {
            pdp_rep rep;
            memset(&rep, 0, sizeof(rep));
            snprintf(rep.request_id, sizeof(rep.request_id), "%s",
                     list->request_id);
            ha_refuse(&rep, refuse);
            tg_buf_reset(&ha->errbuf);
            nng_msg_clear(list->msg);
            if (pdp_wire_encode_reply(&rep, &ha->errbuf) != TG_OK ||
                nng_msg_append(list->msg, ha->errbuf.data, ha->errbuf.len) !=
                    0) {
                nng_msg_clear(list->msg); /* the sender times out */
            }
        }
        nng_aio_set_msg(list->aio, list->msg);
        list->msg = NULL;
        nng_ctx_send(list->ctx, list->aio);
        list = nx;
    }
}

bool
pdp_server_ha_hold(pdp_worker *w, nng_msg *msg)
{
    pdp_server *srv = w->srv;
    pdp_ha     *ha  = srv->ha;
    ha_held    *h;
    nng_ctx     ctx;
    uint64_t    seq;

    if (ha == NULL) {
        return false;
    }
    seq = pdp_txlog_head(srv->st);
    pthread_mutex_lock(&ha->mu);
    if (ha->stop && ha->attached && seq > ha->acked) {
        /* Stopping: the standby may never get it; the sender keeps it
         * for whichever PDP is active next. */
        atomic_fetch_add(&ha->refused, 1);
        ha_refuse(&w->rep, HA_STOPPING);
        pthread_mutex_unlock(&ha->mu);
        return false;
    }
    if (!ha->in_sync || ha->stop) {
        if (ha->attached && seq > ha->acked) {
            if (srv->cfg->pdp.ha.lost_refuse) {
                atomic_fetch_add(&ha->refused, 1);
                ha_refuse(&w->rep, HA_LOST);
            } else if (seq > ha->alone) {
                ha->alone = seq;
            }
        }
        pthread_mutex_unlock(&ha->mu);
        return false;
    }
    if (ha->acked >= seq) {
        pthread_mutex_unlock(&ha->mu);
        return false;
    }
    if ((h = ha_held_get(ha)) == NULL) {
        /* Nothing to hold it with (out of memory): not acknowledged. */
        atomic_fetch_add(&ha->refused, 1);
        ha_refuse(&w->rep, "the central PDP cannot wait for its standby "
                           "(out of memory); keep it and retry");
        pthread_mutex_unlock(&ha->mu);
        return false;
    }
    if (!pdp_server_encode(w, msg)) {
        h->next   = ha->spare;
        ha->spare = h;
        pthread_mutex_unlock(&ha->mu);
        nng_msg_free(msg);
        return true; /* nothing to send: the requester times out */
    }
    ctx      = w->ctx; /* the reply goes on the request's context ... */
    w->ctx   = h->ctx; /* ... and the worker receives on another one */
    h->ctx   = ctx;
    h->msg   = msg;
    h->seq   = seq;
    h->until = ha_now() + srv->cfg->pdp.ha.ack_timeout_ms;
    snprintf(h->request_id, sizeof(h->request_id), "%s", w->rep.request_id);
    h->next        = NULL;
    *ha->holds_end = h;
    ha->holds_end  = &h->next;
    atomic_fetch_add(&ha->held, 1);
    pthread_cond_signal(&ha->cv); /* the parked pull has something now */
    pthread_mutex_unlock(&ha->mu);
    return true;
}

/* ha_take_holds unlinks the held replies whose write the standby holds
 * (seq <= upto) or, when expired, whose time is up (until <= now), into
 * a list; under ha->mu. */
static ha_held *
ha_take_holds(pdp_ha *ha, uint64_t upto, bool expired, int64_t now)
{
    ha_held  *out = NULL, **tail = &out;
    ha_held **pp = &ha->holds;

    while (*pp != NULL) {
        ha_held *h = *pp;
        if (expired ? h->until <= now : h->seq <= upto) {
            *pp     = h->next;
            h->next = NULL;
            *tail   = h;
            tail    = &h->next;
        } else {
            pp = &h->next;
        }
    }
    ha->holds_end = pp;
    return out;
}

/* ha_rep_head starts a ReplData reply for the standby. */
static void
ha_rep_head(pdp_worker *w, const pdp_txlog_state *ts)
{
    memset(&w->rep, 0, sizeof(w->rep));
    w->rep.kind = PDP_REP_REPL_DATA;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
    snprintf(w->rep.u.repl.lineage, sizeof(w->rep.u.repl.lineage), "%s",
             ts->lineage);
    w->rep.u.repl.epoch = ts->epoch;
    w->rep.u.repl.head  = ts->head;
}

static void
ha_error(pdp_worker *w, const char *why, tg_err rv)
{
    memset(&w->rep, 0, offsetof(pdp_rep, u));
    w->rep.kind = PDP_REP_ERROR;
    memcpy(w->rep.request_id, w->req.request_id, sizeof(w->rep.request_id));
    snprintf(w->rep.u.error, sizeof(w->rep.u.error), "%s: %s", why,
             tg_strerror(rv));
}

/* ha_changes answers w (a standby's pull from position from) with the log
 * entries after it, and whether it is behind something acknowledged
 * without it. */
static void
ha_changes(pdp_ha *ha, pdp_worker *w, uint64_t from)
{
    pdp_txlog_state ts;
    uint64_t        last = from, head = 0;
    tg_err          rv;

    if ((rv = pdp_txlog_state_get(ha->srv->st, &ts)) != TG_OK) {
        ha_error(w, "the active PDP cannot read its log", rv);
        return;
    }
    tg_buf_reset(&w->resbuf);
    rv = pdp_txlog_changes(ha->srv->st, from, HA_CHANGES_MAX, &w->resbuf, &last,
                           &head);
    ha_rep_head(w, &ts);
    if (rv == PDP_TXLOG_ECOPY) {
        w->rep.u.repl.snapshot = true; /* no data: start from a copy */
        return;
    }
    if (rv != TG_OK) {
        ha_error(w, "the active PDP cannot read its log", rv);
        return;
    }
    w->rep.u.repl.last = last;
    w->rep.u.repl.head = head;
    w->rep.u.repl.data = w->resbuf.data;
    w->rep.u.repl.len  = w->resbuf.len;
    pthread_mutex_lock(&ha->mu);
    w->rep.u.repl.behind = ha->alone > last;
    ha->sent_last        = last;
    pthread_mutex_unlock(&ha->mu);
}

/* ha_copy_make writes a new copy of the store (copy_mu held). */
static tg_err
ha_copy_make(pdp_ha *ha)
{
    pdp_server *srv = ha->srv;
    char        path[4200];
    uint64_t    rnd[1]; /* the copy id's size, in random bytes */
    struct stat sb;
    tg_err      rv;

    if (ha->copy_fd >= 0) {
        close(ha->copy_fd);
        ha->copy_fd = -1;
    }
    snprintf(path, sizeof(path), "%.4000s/ha-copy.mdb",
             srv->cfg->pdp.state_dir);
    ha->copy_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ha->copy_fd < 0) {
        return TG_EIO;
    }
    unlink(path); /* the open descriptor keeps it while it is handed out */
    if ((rv = pdp_txlog_copy(srv->st, ha->copy_fd, &ha->copy_head)) != TG_OK ||
        fstat(ha->copy_fd, &sb) != 0) {
        close(ha->copy_fd);
        ha->copy_fd = -1;
        return rv != TG_OK ? rv : TG_EIO;
    }
    if ((rv = tg_random_token(ha->copy_id, sizeof(rnd))) != TG_OK) {
        close(ha->copy_fd);
        ha->copy_fd = -1;
        return rv;
    }
    ha->copy_size = (uint64_t)sb.st_size;
    ha->copy_ms   = ha_now();
    atomic_fetch_add(&ha->copies, 1);
    tg_info("ha: a copy of the store for the standby (%llu bytes, log "
            "position %llu)",
            (unsigned long long)ha->copy_size,
            (unsigned long long)ha->copy_head);
    return TG_OK;
}

/* ha_copy_chunk answers a standby that starts from a copy: a new copy (or
 * one made moments ago) when it names none, else the next chunk of the
 * one it names. */
static void
ha_copy_chunk(pdp_ha *ha, pdp_worker *w)
{
    const pdp_repl_pull *p = &w->req.u.repl_pull;
    pdp_txlog_state      ts;
    uint64_t             off = p->copy_offset;
    size_t               n;
    ssize_t              got;
    tg_err               rv;

    if ((rv = pdp_txlog_state_get(ha->srv->st, &ts)) != TG_OK) {
        ha_error(w, "the active PDP cannot read its log", rv);
        return;
    }
    pthread_mutex_lock(&ha->copy_mu);
    if (p->copy_id[0] == '\0' &&
        (ha->copy_fd < 0 || ha_now() - ha->copy_ms > HA_COPY_REUSE_MS) &&
        (rv = ha_copy_make(ha)) != TG_OK) {
        pthread_mutex_unlock(&ha->copy_mu);
        ha_error(w, "the active PDP cannot copy its store", rv);
        return;
    }
    if (p->copy_id[0] != '\0' &&
        (ha->copy_fd < 0 || strcmp(p->copy_id, ha->copy_id) != 0)) {
        pthread_mutex_unlock(&ha->copy_mu);
        ha_error(w, "that copy of the store is gone; start a new one",
                 TG_ENOTFOUND);
        return;
    }
    if (off > ha->copy_size) {
        off = ha->copy_size;
    }
    n = ha->copy_size - off < HA_CHUNK ? (size_t)(ha->copy_size - off)
                                       : HA_CHUNK;
    tg_buf_reset(&w->resbuf);
    if (ha->chunk == NULL && (ha->chunk = malloc(HA_CHUNK)) == NULL) {
        pthread_mutex_unlock(&ha->copy_mu);
        ha_error(w, "the active PDP cannot read its copy", TG_ENOMEM);
        return;
    }
    if ((got = pread(ha->copy_fd, ha->chunk, n, (off_t)off)) != (ssize_t)n ||
        tg_buf_append(&w->resbuf, ha->chunk, n) != TG_OK) {
        pthread_mutex_unlock(&ha->copy_mu);
        ha_error(w, "the active PDP cannot read its copy", TG_EIO);
        return;
    }
    ha_rep_head(w, &ts);
    w->rep.u.repl.snapshot    = true;
    w->rep.u.repl.head        = ha->copy_head;
    w->rep.u.repl.last        = ha->copy_head;
    w->rep.u.repl.copy_offset = off;
    w->rep.u.repl.copy_size   = ha->copy_size;
    snprintf(w->rep.u.repl.copy_id, sizeof(w->rep.u.repl.copy_id), "%s",
             ha->copy_id);
    w->rep.u.repl.data = w->resbuf.data;
    w->rep.u.repl.len  = n;
    pthread_mutex_unlock(&ha->copy_mu);
}

bool
pdp_server_ha_pull(pdp_worker *w, nng_msg *msg)
{
    pdp_server          *srv = w->srv;
    pdp_ha              *ha  = srv->ha;
    const pdp_repl_pull *p   = &w->req.u.repl_pull;
    pdp_txlog_state      ts;
    ha_held             *done;
    pdp_worker          *old = NULL;
    tg_err               rv;

    if ((rv = pdp_txlog_state_get(srv->st, &ts)) != TG_OK) {
        ha_error(w, "the active PDP cannot read its log", rv);
        return false;
    }
    if (p->max_bytes == 0) { /* who is there: a peer starting up asks */
        ha_rep_head(w, &ts);
        return false;
    }
    if (ha == NULL || ts.role != PDP_HA_ACTIVE) {
        ha_error(w, "this PDP is not an active PDP with pdp.ha", TG_ECONFIG);
        return false;
    }
    if (p->copy_id[0] != '\0' || p->snapshot ||
        strcmp(p->lineage, ts.lineage) != 0 || p->from < ts.base ||
        p->from > ts.head) {
        ha_copy_chunk(ha, w);
        return false;
    }
    pthread_mutex_lock(&ha->mu);
    if (!ha->attached) {
        tg_info("ha: standby %s attached at log position %llu", p->node,
                (unsigned long long)p->from);
    }
    ha->attached = true;
    ha->seen_ms  = ha_now();
    ha->acked    = p->from; /* what it holds now (a new one may hold less) */
    /* In sync again once it holds all it was sent last: the writes made
     * meanwhile then wait for it, and those acknowledged without it keep
     * it "behind" (no promotion) until it has them. Not "caught up with
     * the head": under steady writes it never is. */
    if (!ha->in_sync && p->from >= ha->sent_last) {
        tg_info("ha: standby %s is in sync at log position %llu", p->node,
                (unsigned long long)p->from);
        ha->in_sync = true;
    }
    done = ha_take_holds(ha, ha->acked, false, 0);
    if (p->from < ts.head || ha->stop) {
        pthread_mutex_unlock(&ha->mu);
        ha_release(ha, done, NULL);
        ha_changes(ha, w, p->from);
        return false;
    }
    pthread_mutex_lock(&srv->mu);
    srv->parked++;
    pthread_mutex_unlock(&srv->mu);
    old            = ha->pull; /* a second pull: the first one is stale */
    ha->pull       = w;
    ha->pull_until = ha_now() + HA_POLL_MS;
    w->ha_msg      = msg;
    w->ha_seq      = p->from;
    pthread_cond_signal(&ha->cv);
    pthread_mutex_unlock(&ha->mu);
    ha_release(ha, done, NULL);
    if (old != NULL) {
        ha_changes(ha, old, old->ha_seq);
        ha_done(old, old->ha_msg);
    }
    return true;
}

/* ha_prune drops log entries the standby no longer needs (ha->mu held). */
static void
ha_prune(pdp_ha *ha, int64_t now)
{
    uint64_t head = pdp_txlog_head(ha->srv->st);
    uint64_t keep = HA_KEEP_DETACHED;

    if (now - ha->pruned_ms < HA_PRUNE_EVERY_MS) {
        return;
    }
    ha->pruned_ms = now;
    if (ha->in_sync && head >= ha->acked) {
        keep = head - ha->acked + HA_KEEP_MIN;
    }
    pthread_mutex_unlock(&ha->mu);
    if (pdp_txlog_prune(ha->srv->st, keep) != TG_OK) {
        tg_warn("ha: cannot prune the transaction log");
    }
    pthread_mutex_lock(&ha->mu);
}

/* ha_main answers the parked pull when the log moved on (or its time is
 * up) and lets held replies go when the standby did not acknowledge them
 * in time. */
static void *
ha_main(void *arg)
{
    pdp_ha *ha = arg;

    pthread_mutex_lock(&ha->mu);
    for (;;) {
        int64_t         now = ha_now();
        int64_t         wake;
        pdp_worker     *w;
        ha_held        *late;
        struct timespec ts;

        if ((w = ha->pull) != NULL &&
            (ha->stop || now >= ha->pull_until ||
             pdp_txlog_head(ha->srv->st) > w->ha_seq)) {
            ha->pull = NULL;
            pthread_mutex_unlock(&ha->mu);
            ha_changes(ha, w, w->ha_seq);
            ha_done(w, w->ha_msg);
            pthread_mutex_lock(&ha->mu);
            continue;
        }
        if ((late = ha_take_holds(ha, 0, !ha->stop, now)) != NULL ||
            (ha->stop && (late = ha_take_holds(ha, UINT64_MAX, false, 0)))) {
            bool refuse = ha->stop || ha->srv->cfg->pdp.ha.lost_refuse;
            if (ha->in_sync && !ha->stop) {
                tg_warn("ha: the standby did not acknowledge within %lld ms; "
                        "%s until it catches up",
                        (long long)ha->srv->cfg->pdp.ha.ack_timeout_ms,
                        refuse ? "writes are refused"
                               : "writes are acknowledged without it");
            }
            ha->in_sync = false;
            for (ha_held *x = late; x != NULL; x = x->next) {
                atomic_fetch_add(&ha->timeouts, 1);
                if (!refuse && x->seq > ha->alone) {
                    ha->alone = x->seq;
                }
            }
            pthread_mutex_unlock(&ha->mu);
            ha_release(ha, late,
                       !refuse    ? NULL
                       : ha->stop ? HA_STOPPING
                                  : HA_LOST);
            pthread_mutex_lock(&ha->mu);
            continue;
        }
        if (ha->stop) {
            break;
        }
        ha_prune(ha, now);
        wake = now + (ha->pull != NULL ? HA_IDLE_CHECK_MS : HA_POLL_MS);
        if (ha->pull != NULL && ha->pull_until < wake) {
            wake = ha->pull_until;
        }
        if (ha->holds != NULL && ha->holds->until < wake) {
            wake = ha->holds->until;
        }
        tg_timespec_after(&ts, CLOCK_MONOTONIC, wake > now ? wake - now : 1);
        pthread_cond_timedwait(&ha->cv, &ha->mu, &ts);
    }
    pthread_mutex_unlock(&ha->mu);
    return NULL;
}

tg_err
pdp_server_ha_start(pdp_server *srv, char *err, size_t errlen)
{
    pdp_ha            *ha;
    pdp_txlog_state    ts;
    pthread_condattr_t ca;
    tg_err             rv;

    if (!srv->cfg->pdp.ha.on) {
        return TG_OK;
    }
    if ((rv = pdp_txlog_state_get(srv->st, &ts)) != TG_OK) {
        snprintf(err, errlen, "ha: cannot read the transaction log: %s",
                 tg_strerror(rv));
        return rv;
    }
    if ((ha = calloc(1, sizeof(*ha))) == NULL) {
        snprintf(err, errlen, "ha: out of memory");
        return TG_ENOMEM;
    }
    ha->srv       = srv;
    ha->epoch     = ts.epoch;
    ha->copy_fd   = -1;
    ha->holds_end = &ha->holds;
    ha->pruned_ms = ha_now();
    tg_buf_init(&ha->errbuf, 0);
    pthread_mutex_init(&ha->mu, NULL);
    pthread_mutex_init(&ha->copy_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ha->cv, &ca);
    pthread_condattr_destroy(&ca);
    srv->ha = ha;
    if (pthread_create(&ha->th, NULL, ha_main, ha) != 0) {
        snprintf(err, errlen, "ha: cannot start its thread");
        return TG_ESYS;
    }
    ha->running = true;
    tg_info("ha: the active PDP (epoch %llu, log position %llu); writes are "
            "acknowledged once a standby holds them, while one follows",
            (unsigned long long)ts.epoch, (unsigned long long)ts.head);
    return TG_OK;
}

uint64_t
pdp_server_ha_epoch(const pdp_server *srv)
{
    return srv->ha != NULL ? srv->ha->epoch : 0;
}

void
pdp_server_ha_stop(pdp_server *srv)
{
    pdp_ha *ha = srv->ha;

    if (ha == NULL || !ha->running) {
        return;
    }
    pthread_mutex_lock(&ha->mu);
    ha->stop = true;
    pthread_cond_signal(&ha->cv);
    pthread_mutex_unlock(&ha->mu);
    pthread_join(ha->th, NULL);
    ha->running = false;
}

void
pdp_server_ha_free(pdp_server *srv)
{
    pdp_ha *ha = srv->ha;

    if (ha == NULL) {
        return;
    }
    pdp_server_ha_stop(srv);
    /* Every held reply was sent at stop; wait for the sends to end. */
    for (ha_held *h = ha->all; h != NULL; h = h->all_next) {
        nng_aio_stop(h->aio);
    }
    while (ha->all != NULL) {
        ha_held *nx = ha->all->all_next;
        nng_ctx_close(ha->all->ctx);
        nng_aio_free(ha->all->aio);
        free(ha->all);
        ha->all = nx;
    }
    tg_buf_fini(&ha->errbuf);
    if (ha->copy_fd >= 0) {
        close(ha->copy_fd);
    }
    free(ha->chunk);
    pthread_mutex_destroy(&ha->mu);
    pthread_mutex_destroy(&ha->copy_mu);
    pthread_cond_destroy(&ha->cv);
    free(ha);
    srv->ha = NULL;
}

void
pdp_server_ha_metrics(pdp_server *srv, tg_buf *out)
{
    pdp_ha  *ha = srv->ha;
    bool     attached, in_sync;
    uint64_t acked, head;
    int64_t  seen;

    if (ha == NULL) {
        return;
    }
    head = pdp_txlog_head(srv->st);
    pthread_mutex_lock(&ha->mu);
    attached = ha->attached;
    in_sync  = ha->in_sync;
    acked    = ha->acked;
    seen     = ha->seen_ms;
    pthread_mutex_unlock(&ha->mu);
    tg_buf_addf(
        out,
        "# HELP tollgate_ha_epoch Promotions this central PDP's history "
        "went through.\n# TYPE tollgate_ha_epoch gauge\n"
        "tollgate_ha_epoch %llu\n"
        "# HELP tollgate_ha_standby_in_sync 1 while a standby holds every "
        "write this PDP acknowledged.\n# TYPE tollgate_ha_standby_in_sync "
        "gauge\ntollgate_ha_standby_in_sync %d\n"
        "# HELP tollgate_ha_standby_lag_entries Log entries the standby has "
        "not acknowledged.\n# TYPE tollgate_ha_standby_lag_entries gauge\n"
        "tollgate_ha_standby_lag_entries %llu\n"
        "# HELP tollgate_ha_standby_seen_seconds Since the standby's last "
        "pull (-1: never).\n# TYPE tollgate_ha_standby_seen_seconds gauge\n"
        "tollgate_ha_standby_seen_seconds %.3f\n"
        "# HELP tollgate_ha_held_total Replies held until the standby had "
        "the write.\n# TYPE tollgate_ha_held_total counter\n"
        "tollgate_ha_held_total %llu\n"
        "# HELP tollgate_ha_ack_timeouts_total Held replies the standby did "
        "not acknowledge in time.\n# TYPE tollgate_ha_ack_timeouts_total "
        "counter\ntollgate_ha_ack_timeouts_total %llu\n"
        "# HELP tollgate_ha_refused_total Writes refused while the standby "
        "was lost (on_standby_lost refuse).\n# TYPE "
        "tollgate_ha_refused_total counter\ntollgate_ha_refused_total %llu\n"
        "# HELP tollgate_ha_copies_total Copies of the store made for a "
        "standby.\n# TYPE tollgate_ha_copies_total counter\n"
        "tollgate_ha_copies_total %llu\n",
        (unsigned long long)ha->epoch, in_sync ? 1 : 0,
        (unsigned long long)(attached && head > acked ? head - acked : 0),
        attached ? (double)(ha_now() - seen) / 1000.0 : -1.0,
        (unsigned long long)atomic_load(&ha->held),
        (unsigned long long)atomic_load(&ha->timeouts),
        (unsigned long long)atomic_load(&ha->refused),
        (unsigned long long)atomic_load(&ha->copies));
}
