/* pdp_server_persist.c - rate-limit state that survives a restart: a
 * snapshot thread writes the windows to the store once a second when they
 * changed (short shard locks, never the decision path's I/O), and start
 * restores the snapshot and every recorded reservation before the first
 * decision. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pdp_server_int.h"
#include "tg_log.h"
#include "tg_time.h"

/* pdp_server_snapshot writes the rate-limit state to the store unless
 * nothing changed since the last write. Snapshot thread, or stop after
 * it is joined. */
void
pdp_server_snapshot(pdp_server *srv)
{
    uint64_t seen = pdp_limits_changes(srv->lim);
    tg_err   rv;

    if (seen == srv->snap_seen && !srv->snap_force) {
        return;
    }
    tg_buf_reset(&srv->snap_buf);
    rv = pdp_limits_snapshot_windows(srv->lim, tg_now_ms(), &srv->snap_buf);
    if (rv == TG_OK) {
        rv = pdp_store_limits_save(srv->st, srv->snap_buf.data,
                                   srv->snap_buf.len);
    }
    if (rv != TG_OK) {
        if (!srv->snap_failing) {
            tg_warn("limits: cannot save the rate-limit snapshot: %s (a "
                    "restart now would forget recent counts; retrying "
                    "every second)",
                    tg_strerror(rv));
        }
        srv->snap_failing = true;
        return;
    }
    if (srv->snap_failing) {
        tg_info("limits: rate-limit snapshot saved again");
    }
    srv->snap_failing = false;
    srv->snap_force   = false;
    srv->snap_seen    = seen;
}

/* pdp_server_decisions_tick signs the decision log's head every
 * pdp.decisions.checkpoint_seconds and applies its retention once a
 * minute. Snapshot thread. */
static void
pdp_server_decisions_tick(pdp_server *srv)
{
    const tg_pdp_config *c   = &srv->cfg->pdp;
    int64_t              now = tg_mono_us() / 1000;
    uint64_t             n;
    tg_err               rv;

    if (srv->signer != NULL &&
        now - srv->cp_last_ms >= c->decision_checkpoint_s * 1000) {
        srv->cp_last_ms = now;
        if ((rv = pdp_store_decisions_checkpoint(srv->st, srv->signer, NULL)) !=
            TG_OK) {
            tg_warn("decisions: cannot sign a checkpoint: %s (retrying)",
                    tg_strerror(rv));
        }
    }
    if ((c->decision_retention_days > 0 || c->decision_retention_mb > 0) &&
        now - srv->prune_last_ms >= 60000) {
        srv->prune_last_ms = now;
        rv = pdp_store_decisions_prune(
            srv->st,
            c->decision_retention_days > 0
                ? tg_now_ms() - c->decision_retention_days * 86400000LL
                : 0,
            (uint64_t)c->decision_retention_mb << 20, &n);
        if (rv != TG_OK) {
            tg_warn("decisions: cannot prune old records: %s",
                    tg_strerror(rv));
        } else if (n > 0) {
            tg_info("decisions: pruned %llu records past the retention",
                    (unsigned long long)n);
        }
    }
    if (now - srv->resp_prune_ms >= 60000) {
        srv->resp_prune_ms = now;
        pdp_server_resp_prune(srv);
    }
}

void *
pdp_server_snap_main(void *arg)
{
    pdp_server     *srv = arg;
    struct timespec due;
    struct timespec now;

    /* Due once a second on a fixed beat, so a slow write does not stretch
     * the interval (a late one is due at once). */
    clock_gettime(CLOCK_MONOTONIC, &due);
    /* The first timed checkpoint is checkpoint_seconds after start, like
     * every later one (retention, though, applies at once). */
    srv->cp_last_ms = tg_mono_us() / 1000;
    pthread_mutex_lock(&srv->snap_mu);
    while (!srv->snap_stop) {
        due.tv_sec += 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (due.tv_sec < now.tv_sec) {
            due = now;
        }
        while (!srv->snap_stop &&
               pthread_cond_timedwait(&srv->snap_cv, &srv->snap_mu, &due) !=
                   ETIMEDOUT) {
        }
        if (srv->snap_stop) {
            break;
        }
        pthread_mutex_unlock(&srv->snap_mu);
        pdp_server_snapshot(srv);
        pdp_server_decisions_tick(srv);
        pdp_server_up_publish(srv, tg_now_ms());
        pdp_server_probe(srv);
        pthread_mutex_lock(&srv->snap_mu);
    }
    pthread_mutex_unlock(&srv->snap_mu);
    return NULL;
}

/* What pdp_server_limits_restore found in the reservations database. */
typedef struct pdp_server_res_restore {
    pdp_server *srv;
    int64_t     now_ms;
    uint64_t    snap_seq; /* the window snapshot's admission number */
    uint32_t    restored;
    uint32_t    settled; /* settled since the snapshot: counted again */
    uint32_t    ended;   /* open but past the TTL: ended now */
    uint32_t    dropped;
    char (*drop)[TG_REQUEST_ID_MAX]; /* records to delete */
    uint32_t ndrop;
    uint32_t cap;
} pdp_server_res_restore;

static void
pdp_server_res_one(void *arg, const char *id, const void *data, size_t len)
{
    pdp_server_res_restore *a = arg;
    tg_err                  rv;

    if (len > 0 && ((const uint8_t *)data)[0] == PDP_STORE_HOLD_REC) {
        return; /* a sidecar's hold: its report settles it */
    }
    rv = pdp_limits_restore_reservation(a->srv->lim, data, len, a->now_ms,
                                        a->snap_seq);
    if (rv == TG_OK) {
        a->restored++;
        return;
    }
    if (rv == TG_ENOTFOUND && len > 0 &&
        ((const uint8_t *)data)[0] != PDP_LIMITS_RES_OPEN) {
        /* Settled: kept until a saved snapshot counts it (the next one
         * will); ended: kept for a late report. */
        a->settled++;
        return;
    }
    if (rv == TG_ENOTFOUND) {
        /* Open but past its TTL: it ends now (no longer held), kept for
         * a late report. */
        if (pdp_store_reservation_end(a->srv->st, id) == TG_OK) {
            a->ended++;
        }
        return;
    }
    if (rv == TG_EPROTO) {
        tg_warn("limits: reservation record %s is malformed; dropping it", id);
    }
    a->dropped++;
    if (a->ndrop == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 64;
        void    *p   = realloc(a->drop, cap * sizeof(*a->drop));
        if (p == NULL) {
            return; /* dropped again at the next start */
        }
        a->drop = p;
        a->cap  = cap;
    }
    snprintf(a->drop[a->ndrop++], TG_REQUEST_ID_MAX, "%s", id);
}

/* pdp_server_limits_restore brings back the rate-limit windows saved by
 * the previous run, then every recorded reservation (what was in flight
 * when it stopped or died): those admitted after the window snapshot
 * count their request and tokens again. Records past the TTL are deleted.
 * Anything wrong costs the state, never the start. */
void
pdp_server_limits_restore(pdp_server *srv)
{
    pdp_server_res_restore ra;
    tg_buf                 b;
    tg_err                 rv;
    uint32_t               nwin = 0;
    uint32_t               nres = 0;

    memset(&ra, 0, sizeof(ra));
    ra.srv    = srv;
    ra.now_ms = tg_now_ms();
    tg_buf_init(&b, 0);
    rv = pdp_store_limits_load(srv->st, &b);
    if (rv == TG_OK) {
        rv = pdp_limits_restore(srv->lim, b.data, b.len, ra.now_ms);
        pdp_limits_restored(srv->lim, &nwin, &nres);
        if (rv == TG_OK) {
            ra.snap_seq = pdp_limits_snapshot_seq(b.data, b.len);
            tg_info("limits: restored %u rate-limit windows from the "
                    "snapshot",
                    nwin);
        } else {
            tg_warn("limits: the rate-limit snapshot (%zu bytes) cannot be "
                    "restored: %s; %s",
                    b.len, tg_strerror(rv),
                    rv == TG_ENOMEM ? "part of it was restored"
                                    : "starting with empty windows");
            srv->snap_force = true;
        }
    } else if (rv != TG_ENOTFOUND) {
        tg_warn("limits: cannot read the rate-limit snapshot: %s; starting "
                "with empty windows",
                tg_strerror(rv));
    }
    tg_buf_fini(&b);
    rv = pdp_store_reservation_list(srv->st, pdp_server_res_one, &ra);
    if (rv != TG_OK) {
        tg_warn("limits: cannot read the recorded reservations: %s; "
                "requests in flight before this start are not counted",
                tg_strerror(rv));
    }
    for (uint32_t i = 0; i < ra.ndrop; i++) {
        pdp_store_reservation_del(srv->st, ra.drop[i]);
    }
    free(ra.drop);
    if (ra.restored + ra.dropped + ra.settled + ra.ended > 0 || nres > 0) {
        tg_info("limits: restored %u open reservations (%u past their TTL, "
                "ended; %u unreadable, deleted) and %u settled or ended "
                "records",
                ra.restored + nres, ra.ended, ra.dropped, ra.settled);
    }
    /* Counted now: the next snapshot holds them and prunes their records. */
    srv->snap_force = srv->snap_force || ra.settled > 0;
    srv->snap_seen  = pdp_limits_changes(srv->lim);
}

/* pdp_server_expired deletes an expired reservation's record (on the
 * thread that swept; the writer does it). */
void
pdp_server_expired(void *arg, const char *id)
{
    pdp_server *srv = arg;

    if (pdp_store_reservation_forget(srv->st, id) != TG_OK) {
        tg_warn("limits: cannot delete the record of expired reservation "
                "%s; it is dropped at the next start",
                id);
    }
}

void
pdp_server_budget_load(void *arg, const pdp_limits_spend_key *k, int64_t spent)
{
    pdp_limits_budget_load(arg, k->rule_id, k->scope, k->code, k->start_ms,
                           spent);
}

/* pdp_server_state_load brings the limits back before the first decision:
 * the settled spend of every window that can still count (the longest is
 * rolling:744h or a 31-day month), then the saved windows and open
 * reservations on top of it (the snapshot holds no settled spend), then
 * the leases sidecar PDPs hold; and publishes the bundle and pricing for
 * them. */
tg_err
pdp_server_state_load(pdp_server *srv, char *err, size_t errlen)
{
    tg_err rv = pdp_store_budget_list(srv->st,
                                      tg_now_ms() - 745LL * 3600 * 1000,
                                      pdp_server_budget_load, srv->lim);

    if (rv != TG_OK) {
        snprintf(err, errlen, "server: cannot read budget spend: %s",
                 tg_strerror(rv));
        return rv;
    }
    pdp_server_limits_restore(srv);
    pdp_server_up_restore(srv);
    pdp_server_up_publish(srv, tg_now_ms());
    return TG_OK;
}
