#include "dp_spool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "tg_log.h"
#include "tg_time.h"

#define DP_SPOOL_MAGIC 0x31534754u /* "TGS1": record layout version */
#define DP_SPOOL_BUCKETS 1024
#define DP_SPOOL_MAX_INFLIGHT 512
#define DP_SPOOL_RESEND_US (3 * 1000000)
#define DP_SPOOL_SCAN_US (500 * 1000)
#define DP_SPOOL_ACK_TIMEOUT_MS 2000
#define DP_SPOOL_SYNC_US (1000 * 1000)
#define DP_SPOOL_LINGER_US 2000 /* gathering a batch of new reports */

typedef struct dp_spool_rec {
    uint32_t magic;
    uint32_t pad;
    tg_usage usage;
} dp_spool_rec;

typedef struct dp_spool_item dp_spool_item;
struct dp_spool_item {
    dp_spool_item *next;
    dp_spool      *sp;
    tg_usage       usage;
    bool           acked; /* on the ack list: true if the PDP acked */
};

/* In-flight reports, by request id, so a scan does not resend them. */
typedef struct dp_spool_flight dp_spool_flight;
struct dp_spool_flight {
    dp_spool_flight *next;
    int64_t          sent_us;
    char             request_id[TG_REQUEST_ID_MAX];
};

struct dp_spool {
    MDB_env         *env;
    MDB_dbi          dbi;
    size_t           mapsize;
    dp_pdp          *pdp;
    pthread_t        thread;
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    dp_spool_item   *queue; /* new reports, guarded by lock */
    dp_spool_item   *acks;  /* ack results, guarded by lock */
    bool             stop;
    bool             joined;
    dp_spool_flight *flight[DP_SPOOL_BUCKETS]; /* spool thread only */
    size_t           n_flight;
    int64_t          last_scan_us;
    int64_t          last_sync_us;
    bool             dirty; /* committed but not yet fsynced */
    atomic_uint_fast64_t pending;
    atomic_uint_fast64_t acked;
    /* Reports collected for one UsageBatch (spool thread only); a PDP
     * that does not know batches gets them one by one (no_batch). */
    tg_usage             batch[TG_USAGE_BATCH_MAX];
    size_t               n_batch;
    int64_t              batch_since_us; /* when its first report came */
    atomic_bool          no_batch;
};

/* One UsageBatch in flight: its reports, borrowed by dp_pdp until the
 * callback. */
typedef struct dp_spool_batch {
    dp_spool *sp;
    size_t    n;
    tg_usage  u[TG_USAGE_BATCH_MAX];
} dp_spool_batch;

static uint32_t
dp_spool_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h % DP_SPOOL_BUCKETS;
}

static dp_spool_flight **
dp_spool_flight_find(dp_spool *sp, const char *rid)
{
    dp_spool_flight **pp = &sp->flight[dp_spool_hash(rid)];

    while (*pp != NULL && strcmp((*pp)->request_id, rid) != 0) {
        pp = &(*pp)->next;
    }
    return pp;
}

static void
dp_spool_flight_remove(dp_spool *sp, const char *rid)
{
    dp_spool_flight **pp = dp_spool_flight_find(sp, rid);
    dp_spool_flight  *f  = *pp;

    if (f != NULL) {
        *pp = f->next;
        free(f);
        sp->n_flight--;
    }
}

static void
dp_spool_ack_cb(void *arg, tg_err err, const tg_usage_ack *ack)
{
    dp_spool_item *it = arg;
    dp_spool      *sp = it->sp;

    (void)ack;
    it->acked = err == TG_OK;
    pthread_mutex_lock(&sp->lock);
    it->next  = sp->acks;
    sp->acks  = it;
    pthread_cond_signal(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
}

/* dp_spool_send_one sends one report on its own. */
static void
dp_spool_send_one(dp_spool *sp, const tg_usage *u)
{
    dp_spool_item *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        dp_spool_flight_remove(sp, u->request_id);
        return;
    }
    it->usage = *u;
    it->sp    = sp;
    if (dp_pdp_usage(sp->pdp, u, DP_SPOOL_ACK_TIMEOUT_MS, dp_spool_ack_cb,
                     it) != TG_OK) {
        free(it);
        dp_spool_flight_remove(sp, u->request_id);
    }
}

/* dp_spool_batch_cb hands each report's result to the spool thread, like
 * dp_spool_ack_cb for one. Runs on an nng thread. */
static void
dp_spool_batch_cb(void *arg, tg_err err, const tg_usage_item_ack *acks,
                  size_t n)
{
    dp_spool_batch *b    = arg;
    dp_spool       *sp   = b->sp;
    dp_spool_item  *head = NULL;

    if (err == TG_EPROTO && !atomic_exchange(&sp->no_batch, true)) {
        tg_warn("usage spool: the PDP does not take usage batches; sending "
                "reports one by one");
    }
    for (size_t i = 0; i < b->n; i++) {
        dp_spool_item *it = calloc(1, sizeof(*it));
        if (it == NULL) {
            continue; /* not acked: it stays on disk and goes again */
        }
        it->usage = b->u[i];
        it->sp    = sp;
        it->acked = err == TG_OK && i < n && acks[i].ok;
        it->next  = head;
        head      = it;
    }
    pthread_mutex_lock(&sp->lock);
    while (head != NULL) {
        dp_spool_item *next = head->next;
        head->next          = sp->acks;
        sp->acks            = head;
        head                = next;
    }
    pthread_cond_signal(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
    free(b);
}

/* dp_spool_flush sends the collected reports: one UsageBatch (one message
 * instead of one per report), or one by one. */
static void
dp_spool_flush(dp_spool *sp)
{
    dp_spool_batch *b;
    size_t          n = sp->n_batch;

    sp->n_batch = 0;
    if (n == 0) {
        return;
    }
    if (n == 1 || atomic_load(&sp->no_batch) ||
        (b = malloc(sizeof(*b))) == NULL) {
        for (size_t i = 0; i < n; i++) {
            dp_spool_send_one(sp, &sp->batch[i]);
        }
        return;
    }
    b->sp = sp;
    b->n  = n;
    memcpy(b->u, sp->batch, n * sizeof(b->u[0]));
    if (dp_pdp_usage_batch(sp->pdp, b->u, n, DP_SPOOL_ACK_TIMEOUT_MS,
                           dp_spool_batch_cb, b) != TG_OK) {
        for (size_t i = 0; i < n; i++) {
            dp_spool_flight_remove(sp, b->u[i].request_id);
        }
        free(b);
    }
}

/* dp_spool_send starts one report unless it is already in flight: into
 * the batch being collected (dp_spool_flush sends it). */
static void
dp_spool_send(dp_spool *sp, const tg_usage *u, int64_t now_us)
{
    dp_spool_flight **pp = dp_spool_flight_find(sp, u->request_id);

    if (*pp != NULL) {
        if (now_us - (*pp)->sent_us < DP_SPOOL_RESEND_US) {
            return;
        }
    } else {
        if (sp->n_flight >= DP_SPOOL_MAX_INFLIGHT ||
            (*pp = calloc(1, sizeof(**pp))) == NULL) {
            return; /* the next scan sends it */
        }
        snprintf((*pp)->request_id, TG_REQUEST_ID_MAX, "%s", u->request_id);
        sp->n_flight++;
    }
    (*pp)->sent_us = now_us;
    if (sp->n_batch == 0) {
        sp->batch_since_us = now_us;
    }
    sp->batch[sp->n_batch++] = *u;
    if (sp->n_batch == TG_USAGE_BATCH_MAX) {
        dp_spool_flush(sp);
    }
}

/* dp_spool_commit runs fn in a write txn, growing the map when it fills:
 * a report is never dropped for lack of space while the disk has room. */
static tg_err
dp_spool_commit(dp_spool *sp, dp_spool_item *items, bool put)
{
    for (;;) {
        MDB_txn *txn;
        int      rc = mdb_txn_begin(sp->env, NULL, 0, &txn);

        if (rc != 0) {
            tg_error("usage spool: cannot begin write: %s", mdb_strerror(rc));
            return TG_EIO;
        }
        for (dp_spool_item *it = items; it != NULL && rc == 0; it = it->next) {
            MDB_val k = {strlen(it->usage.request_id), it->usage.request_id};
            if (put) {
                dp_spool_rec rec = {DP_SPOOL_MAGIC, 0, it->usage};
                MDB_val      v   = {sizeof(rec), &rec};
                rc               = mdb_put(txn, sp->dbi, &k, &v, 0);
            } else {
                rc = mdb_del(txn, sp->dbi, &k, NULL);
                if (rc == MDB_NOTFOUND) {
                    rc = 0;
                }
            }
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == 0) {
            sp->dirty = true;
            return TG_OK;
        }
        if (rc != MDB_MAP_FULL) {
            tg_error("usage spool: write failed: %s%s", mdb_strerror(rc),
                     rc == ENOSPC ? " (disk full: free space in the spool "
                                    "directory; reports stay queued)"
                                  : "");
            return rc == ENOSPC ? TG_EFULL : TG_EIO;
        }
        sp->mapsize *= 2;
        if ((rc = mdb_env_set_mapsize(sp->env, sp->mapsize)) != 0) {
            tg_error("usage spool: cannot grow map: %s", mdb_strerror(rc));
            return TG_EFULL;
        }
        tg_info("usage spool: map grown to %zu MiB", sp->mapsize >> 20);
    }
}

/* dp_spool_sync flushes committed reports to the disk. Commits are written
 * (MDB_NOSYNC) without an fsync each: once committed a report survives a
 * crash of this process, and this periodic fsync bounds what an operating
 * system crash could take to about one second of unacknowledged reports. An
 * fsync per request would put disk latency on every request instead. */
static void
dp_spool_sync(dp_spool *sp, int64_t now_us)
{
    int rc = mdb_env_sync(sp->env, 1);

    if (rc != 0) {
        tg_error("usage spool: fsync failed: %s", mdb_strerror(rc));
        return;
    }
    sp->dirty        = false;
    sp->last_sync_us = now_us;
}

/* dp_spool_scan (re)sends what is on disk and not in flight. */
static void
dp_spool_scan(dp_spool *sp, int64_t now_us)
{
    MDB_txn    *txn;
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    uint64_t    n = 0;
    int         rc;

    if (mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn) != 0) {
        return;
    }
    if (mdb_cursor_open(txn, sp->dbi, &cur) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            dp_spool_rec rec;
            n++;
            if (v.mv_size != sizeof(rec)) {
                continue;
            }
            memcpy(&rec, v.mv_data, sizeof(rec));
            if (rec.magic != DP_SPOOL_MAGIC) {
                continue;
            }
            if (dp_pdp_connected(sp->pdp)) {
                dp_spool_send(sp, &rec.usage, now_us);
            }
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    dp_spool_flush(sp);
    atomic_store(&sp->pending, n);
}

static void
dp_spool_free_list(dp_spool_item *it)
{
    while (it != NULL) {
        dp_spool_item *next = it->next;
        free(it);
        it = next;
    }
}

static void *
dp_spool_main(void *arg)
{
    dp_spool *sp = arg;

    for (;;) {
        dp_spool_item  *queue;
        dp_spool_item  *acks;
        dp_spool_item  *done = NULL;
        bool            stop;
        int64_t         now_us;
        struct timespec ts;

        pthread_mutex_lock(&sp->lock);
        if (sp->queue == NULL && sp->acks == NULL && !sp->stop) {
            /* A batch being gathered waits at most DP_SPOOL_LINGER_US. */
            long wait_ns = sp->n_batch > 0 ? DP_SPOOL_LINGER_US * 1000L
                                           : 200 * 1000000L;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += wait_ns;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&sp->cond, &sp->lock, &ts);
        }
        queue     = sp->queue;
        acks      = sp->acks;
        sp->queue = NULL;
        sp->acks  = NULL;
        stop      = sp->stop;
        pthread_mutex_unlock(&sp->lock);

        now_us = tg_mono_us();
        if (queue != NULL) {
            if (dp_spool_commit(sp, queue, true) == TG_OK) {
                /* On disk now (a crash loses nothing); sent together with
                 * what follows within DP_SPOOL_LINGER_US: one message for
                 * many reports. */
                for (dp_spool_item *it = queue; it != NULL && !stop;
                     it = it->next) {
                    dp_spool_send(sp, &it->usage, now_us);
                }
                dp_spool_free_list(queue);
            } else {
                /* Keep them in memory and try the disk again shortly. */
                pthread_mutex_lock(&sp->lock);
                dp_spool_item *tail = queue;
                while (tail->next != NULL) {
                    tail = tail->next;
                }
                tail->next = sp->queue;
                sp->queue  = queue;
                pthread_mutex_unlock(&sp->lock);
                struct timespec nap = {0, 100 * 1000000L};
                nanosleep(&nap, NULL);
            }
        }
        /* Ack results: delete the acked ones; failed ones wait for a scan. */
        for (dp_spool_item *it = acks, *next; it != NULL; it = next) {
            next = it->next;
            dp_spool_flight_remove(sp, it->usage.request_id);
            if (it->acked) {
                it->next = done;
                done     = it;
            } else {
                free(it);
            }
        }
        if (done != NULL) {
            uint64_t n = 0;
            for (dp_spool_item *it = done; it != NULL; it = it->next) {
                n++;
            }
            if (dp_spool_commit(sp, done, false) == TG_OK) {
                atomic_fetch_add(&sp->acked, n);
            }
            dp_spool_free_list(done);
        }
        if (sp->n_batch > 0 &&
            (stop || now_us - sp->batch_since_us >= DP_SPOOL_LINGER_US)) {
            dp_spool_flush(sp);
        }
        if (sp->dirty && (stop || now_us - sp->last_sync_us >= DP_SPOOL_SYNC_US)) {
            dp_spool_sync(sp, now_us);
        }
        if (stop) {
            break;
        }
        if (now_us - sp->last_scan_us >= DP_SPOOL_SCAN_US) {
            sp->last_scan_us = now_us;
            dp_spool_scan(sp, now_us);
        }
    }
    return NULL;
}

/* dp_spool_mkdirs creates dir and its missing parents (mode 0700). */
static int
dp_spool_mkdirs(const char *dir)
{
    char path[4096];

    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

tg_err
dp_spool_open(dp_spool **out, const char *dir, dp_pdp *pdp)
{
    dp_spool *sp = calloc(1, sizeof(*sp));
    MDB_txn  *txn;
    int       rc;

    if (sp == NULL) {
        return TG_ENOMEM;
    }
    sp->pdp     = pdp;
    sp->mapsize = 16u << 20;
    pthread_mutex_init(&sp->lock, NULL);
    pthread_cond_init(&sp->cond, NULL);
    if (dp_spool_mkdirs(dir) != 0) {
        tg_error("usage spool: cannot create %s: %s (check "
                 "dataplane.spool_dir)",
                 dir, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&sp->env)) != 0 ||
        (rc = mdb_env_set_mapsize(sp->env, sp->mapsize)) != 0 ||
        (rc = mdb_env_set_maxdbs(sp->env, 2)) != 0 ||
        (rc = mdb_env_open(sp->env, dir, MDB_NOTLS | MDB_NOSYNC, 0600)) !=
            0) {
        tg_error("usage spool: cannot open LMDB in %s: %s (is another "
                 "tollgate-dataplane using it?)",
                 dir, mdb_strerror(rc));
        goto fail;
    }
    {
        int dead = 0;
        mdb_reader_check(sp->env, &dead);
    }
    if ((rc = mdb_txn_begin(sp->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "usage", MDB_CREATE, &sp->dbi)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0) {
        tg_error("usage spool: cannot open database: %s", mdb_strerror(rc));
        goto fail;
    }
    sp->last_scan_us = 0; /* replay what a previous run left at once */
    if (pthread_create(&sp->thread, NULL, dp_spool_main, sp) != 0) {
        goto fail;
    }
    *out = sp;
    return TG_OK;
fail:
    if (sp->env != NULL) {
        mdb_env_close(sp->env);
    }
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->cond);
    free(sp);
    return TG_EIO;
}

void
dp_spool_stop(dp_spool *sp)
{
    if (sp == NULL || sp->joined) {
        return;
    }
    pthread_mutex_lock(&sp->lock);
    sp->stop = true;
    pthread_cond_signal(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
    pthread_join(sp->thread, NULL);
    sp->joined = true;
}

void
dp_spool_close(dp_spool *sp)
{
    if (sp == NULL) {
        return;
    }
    dp_spool_stop(sp);
    /* Reports queued after the thread stopped (requests answered during
     * shutdown) are committed now; everything not acknowledged stays on
     * disk and is replayed at the next start. */
    if (sp->queue != NULL && dp_spool_commit(sp, sp->queue, true) != TG_OK) {
        tg_error("usage spool: %s reports could not be written at shutdown",
                 "some");
    }
    if (sp->dirty) {
        dp_spool_sync(sp, tg_mono_us());
    }
    dp_spool_free_list(sp->queue);
    dp_spool_free_list(sp->acks);
    for (size_t i = 0; i < DP_SPOOL_BUCKETS; i++) {
        while (sp->flight[i] != NULL) {
            dp_spool_flight *f = sp->flight[i];
            sp->flight[i]      = f->next;
            free(f);
        }
    }
    mdb_env_close(sp->env);
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->cond);
    free(sp);
}

tg_err
dp_spool_put(dp_spool *sp, const tg_usage *u)
{
    dp_spool_item *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        return TG_ENOMEM;
    }
    it->usage = *u;
    atomic_fetch_add(&sp->pending, 1);
    pthread_mutex_lock(&sp->lock);
    it->next  = sp->queue;
    sp->queue = it;
    pthread_cond_signal(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
    return TG_OK;
}

uint64_t
dp_spool_pending(dp_spool *sp)
{
    return atomic_load(&sp->pending);
}

uint64_t
dp_spool_acked(dp_spool *sp)
{
    return atomic_load(&sp->acked);
}
