/* dp_spool.c - one thread owns the LMDB environment. New records join the
 * *held* list (memory, in arrival order) and are written from its head in
 * transactions of at most DP_SPOOL_TXN_MAX records, so a backlog drains
 * in bounded steps once the disk takes writes again; each record's
 * callback runs once it is on disk, or at once (TG_OK) while the disk
 * refuses writes and memory is below the ceiling. Finals go to the PDP
 * from disk or memory (the flight table keeps one send per id at a time)
 * and are deleted from both when acknowledged. Commits are MDB_NOSYNC
 * (they survive this process dying) and fsynced at most a second later,
 * which bounds what an operating-system crash could take. */
#include "dp_spool.h"
#include "dp_spool_rec.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#include "tg_hash.h"
#include "tg_trust.h"
#include "tg_lmdb.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_SPOOL_BUCKETS 1024
#define DP_SPOOL_MAX_INFLIGHT 512
#define DP_SPOOL_RESEND_US (3 * 1000000)
#define DP_SPOOL_SCAN_US (500 * 1000)
#define DP_SPOOL_ACK_TIMEOUT_MS 2000
#define DP_SPOOL_SYNC_US (1000 * 1000)
#define DP_SPOOL_LINGER_US 2000 /* gathering a batch of new reports */
#define DP_SPOOL_TXN_MAX 256    /* records per write transaction */
#define DP_SPOOL_RETRY_US (250 * 1000) /* a refusing disk is tried again */
#define DP_SPOOL_LOG_US (60 * 1000000LL) /* "disk full" at most this often */
#define DP_SPOOL_MEM_DEFAULT (64u << 20)

typedef struct dp_spool_item dp_spool_item;
struct dp_spool_item {
    dp_spool_item *next;
    dp_spool      *sp;
    dp_spool_kind  kind;
    tg_usage       usage;
    dp_spool_cb    cb; /* NULL once called */
    void          *arg;
    bool           acked; /* on the ack list: true if the PDP acked */
    char          *content; /* a final's captured bodies (owned); NULL */
    size_t         content_len;
};

static void
dp_spool_item_free(dp_spool_item *it)
{
    free(it->content);
    free(it);
}

/* In-flight reports, by request id, so a scan does not resend them. */
typedef struct dp_spool_flight dp_spool_flight;
struct dp_spool_flight {
    dp_spool_flight *next;
    int64_t          sent_us;
    char             request_id[TG_REQUEST_ID_MAX];
};

struct dp_spool {
    int              lock_fd; /* flock: one data plane per spool */
    MDB_env         *env;
    MDB_dbi          dbi;
    size_t           mapsize;
    dp_pdp          *pdp;
    pthread_t        thread;
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    dp_spool_item   *queue; /* new records in order, guarded by lock */
    dp_spool_item   *queue_tail;
    dp_spool_item   *acks; /* ack results, guarded by lock */
    bool             stop;  /* guarded by lock */
    bool             joined;
    /* Spool thread only (then dp_spool_close). */
    dp_spool_item   *held; /* not on disk yet, oldest first */
    dp_spool_item   *held_tail;
    bool             disk_failing;
    int64_t          retry_us;  /* when a failing disk is tried again */
    int64_t          logged_us; /* when "disk full" was last said */
    dp_spool_flight *flight[DP_SPOOL_BUCKETS];
    size_t           n_flight;
    int64_t          last_scan_us;
    int64_t          last_sync_us;
    bool             dirty; /* committed but not yet fsynced */
    /* Reports collected for one UsageBatch; a PDP that does not know
     * batches gets them one by one (no_batch). */
    tg_usage         batch[TG_USAGE_BATCH_MAX];
    size_t           n_batch;
    size_t           batch_bytes; /* their encoded size, at most */
    int64_t          batch_since_us; /* when its first report came */
    atomic_bool      no_batch;
    size_t           mem_max;
    char            *dir;
    atomic_uint_fast64_t held_bytes;
    atomic_uint_fast64_t queued_finals; /* in queue, not yet held */
    atomic_uint_fast64_t pending;
    atomic_uint_fast64_t acked;
};

/* One UsageBatch in flight: its reports, borrowed by dp_pdp until the
 * callback. */
typedef struct dp_spool_batch {
    dp_spool *sp;
    size_t    n;
    char     *content[TG_USAGE_BATCH_MAX]; /* owned; NULL: none */
    size_t    content_len[TG_USAGE_BATCH_MAX];
    tg_usage  u[]; /* n of them: a batch is as large as what it holds */
} dp_spool_batch;

static void
dp_spool_batch_free(dp_spool_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->content[i]);
    }
    free(b);
}

/* ---- the flight table --------------------------------------------------- */

static uint32_t
dp_spool_hash(const char *s)
{
    return (uint32_t)(tg_fnv1a(TG_FNV_BASIS, s, strlen(s)) %
                      DP_SPOOL_BUCKETS);
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

/* ---- sending ------------------------------------------------------------ */

/* dp_spool_ack_post hands ack results to the spool thread. */
static void
dp_spool_ack_post(dp_spool *sp, dp_spool_item *head)
{
    pthread_mutex_lock(&sp->lock);
    while (head != NULL) {
        dp_spool_item *next = head->next;
        head->next          = sp->acks;
        sp->acks            = head;
        head                = next;
    }
    pthread_cond_signal(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
}

static void
dp_spool_ack_cb(void *arg, tg_err err, const tg_usage_ack *ack)
{
    dp_spool_item *it = arg;

    (void)ack;
    it->acked = err == TG_OK;
    it->next  = NULL;
    dp_spool_ack_post(it->sp, it);
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
        dp_spool_item_free(it);
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
            continue; /* not acked: it stays and goes again */
        }
        it->usage = b->u[i];
        it->sp    = sp;
        it->acked = err == TG_OK && i < n && acks[i].ok;
        it->next  = head;
        head      = it;
    }
    dp_spool_ack_post(sp, head);
    dp_spool_batch_free(b);
}

/* dp_spool_send_batch sends reports u[0..n) as one UsageBatch with their
 * contents (taken: freed whatever happens). */
static void
dp_spool_send_batch(dp_spool *sp, const tg_usage *u, size_t n, char **content,
                    const size_t *content_len)
{
    dp_spool_batch *b = malloc(sizeof(*b) + n * sizeof(b->u[0]));

    if (b == NULL) {
        for (size_t i = 0; i < n; i++) {
            free(content[i]);
            dp_spool_flight_remove(sp, u[i].request_id);
        }
        return;
    }
    b->sp = sp;
    b->n  = n;
    memcpy(b->u, u, n * sizeof(b->u[0]));
    memcpy(b->content, content, n * sizeof(b->content[0]));
    memcpy(b->content_len, content_len, n * sizeof(b->content_len[0]));
    if (dp_pdp_usage_batch(sp->pdp, b->u, (const char *const *)b->content,
                           b->content_len, n, DP_SPOOL_ACK_TIMEOUT_MS,
                           dp_spool_batch_cb, b) != TG_OK) {
        for (size_t i = 0; i < n; i++) {
            dp_spool_flight_remove(sp, b->u[i].request_id);
        }
        dp_spool_batch_free(b);
    }
}

/* dp_spool_flush sends the collected reports: UsageBatch messages (one
 * instead of one per report) no larger than TG_USAGE_BATCH_BYTES each
 * with the content kept beside them (a report with more content goes
 * alone: pdp.max_message_bytes is checked to take it), or one by one to
 * a PDP that does not know batches. */
static void
dp_spool_flush(dp_spool *sp)
{
    char  *content[TG_USAGE_BATCH_MAX];
    size_t content_len[TG_USAGE_BATCH_MAX];
    size_t n     = sp->n_batch;
    size_t first = 0;
    size_t bytes = 0;

    sp->n_batch     = 0;
    sp->batch_bytes = 0;
    if (n == 0) {
        return;
    }
    if (atomic_load(&sp->no_batch)) {
        for (size_t i = 0; i < n; i++) {
            dp_spool_send_one(sp, &sp->batch[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t size;
        content[i]     = NULL;
        content_len[i] = 0;
        if (sp->batch[i].outcome.capture_level == TG_CAPTURE_FULL &&
            !sp->batch[i].outcome.shed) {
            dp_spool_rec_content_load(sp->env, sp->dbi,
                                      sp->batch[i].request_id, &content[i],
                                      &content_len[i]);
        }
        size = dp_spool_rec_wire_size(&sp->batch[i]) + content_len[i];
        if (i > first && bytes + size > TG_USAGE_BATCH_BYTES) {
            dp_spool_send_batch(sp, sp->batch + first, i - first,
                                content + first, content_len + first);
            first = i;
            bytes = 0;
        }
        bytes += size;
    }
    dp_spool_send_batch(sp, sp->batch + first, n - first, content + first,
                        content_len + first);
}

/* dp_spool_send starts one report unless it is already in flight: into
 * the batch being collected (dp_spool_flush sends it). */
static void
dp_spool_send(dp_spool *sp, const tg_usage *u, int64_t now_us)
{
    dp_spool_flight **pp = dp_spool_flight_find(sp, u->request_id);
    size_t            size;

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
    size = dp_spool_rec_wire_size(u);
    if (sp->n_batch > 0 && sp->batch_bytes + size > TG_USAGE_BATCH_BYTES) {
        dp_spool_flush(sp); /* a batch fits any PDP's max_message_bytes */
    }
    if (sp->n_batch == 0) {
        sp->batch_since_us = now_us;
    }
    sp->batch_bytes += size;
    sp->batch[sp->n_batch++] = *u;
    if (sp->n_batch == TG_USAGE_BATCH_MAX) {
        dp_spool_flush(sp);
    }
}

/* ---- the disk ----------------------------------------------------------- */

/* dp_spool_disk_error says a write failed: a full disk at most once a
 * minute (records wait in memory meanwhile), anything else each time. */
static void
dp_spool_disk_error(dp_spool *sp, const char *what, int rc, int64_t now_us)
{
    struct statvfs v;
    /* LMDB reports a write cut short on a full filesystem as EIO. */
    bool full = rc == ENOSPC || rc == EDQUOT || rc == EFBIG ||
                rc == MDB_MAP_FULL ||
                (rc == EIO && statvfs(sp->dir, &v) == 0 &&
                 (uint64_t)v.f_bavail * v.f_frsize < 65536);

    if (sp->logged_us != 0 && now_us - sp->logged_us < DP_SPOOL_LOG_US) {
        return; /* a failing disk fails every write: said once a minute */
    }
    sp->logged_us = now_us;
    if (full) {
        tg_error("usage spool: disk full: cannot %s (free space where "
                 "dataplane.spool_dir is; usage waits in memory meanwhile, "
                 "%llu of %zu bytes used, and new requests are refused with "
                 "503 usage_spool_full when it is full; said at most once a "
                 "minute)",
                 what, (unsigned long long)atomic_load(&sp->held_bytes),
                 sp->mem_max);
    } else {
        tg_error("usage spool: cannot %s: %s (usage waits in memory "
                 "meanwhile; said at most once a minute)",
                 what, mdb_strerror(rc));
    }
}

/* dp_spool_txn runs n puts (items) or deletes (keys) in one write txn,
 * growing the map when it fills. Returns an LMDB rc. */
static int
dp_spool_txn(dp_spool *sp, dp_spool_item *items, size_t n, char (*keys)[TG_REQUEST_ID_MAX])
{
    uint8_t rec[DP_SPOOL_REC_MAX];

    for (;;) {
        MDB_txn *txn;
        int      rc = mdb_txn_begin(sp->env, NULL, 0, &txn);

        if (rc != 0) {
            return rc;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (items != NULL) {
                MDB_val k = {strlen(items->usage.request_id),
                             items->usage.request_id};
                MDB_val v = {0, rec};
                v.mv_size = dp_spool_rec_pack(items->kind, &items->usage, rec);
                rc        = v.mv_size == 0 ? EINVAL
                                           : mdb_put(txn, sp->dbi, &k, &v, 0);
                if (rc == 0 && items->content != NULL) {
                    rc = dp_spool_rec_content_put(txn, sp->dbi, items->usage.request_id,
                                                 items->content,
                                                 items->content_len);
                }
                items = items->next;
            } else {
                MDB_val k = {strlen(keys[i]), keys[i]};
                rc        = mdb_del(txn, sp->dbi, &k, NULL);
                if (rc == MDB_NOTFOUND) {
                    rc = 0;
                }
                if (rc == 0) {
                    rc = dp_spool_rec_content_del(txn, sp->dbi, keys[i]);
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
        }
        if (rc != MDB_MAP_FULL) {
            return rc;
        }
        if ((rc = mdb_env_set_mapsize(sp->env, sp->mapsize * 2)) != 0) {
            return rc;
        }
        sp->mapsize *= 2;
        tg_info("usage spool: map grown to %zu MiB", sp->mapsize >> 20);
    }
}

/* dp_spool_write_list writes a whole list in transactions of at most
 * DP_SPOOL_TXN_MAX records; the first failing one's LMDB rc (what came
 * before it is written). */
static int
dp_spool_write_list(dp_spool *sp, dp_spool_item *it)
{
    while (it != NULL) {
        size_t         n   = 0;
        dp_spool_item *end = it;
        int            rc;
        while (n < DP_SPOOL_TXN_MAX && end != NULL) {
            end = end->next;
            n++;
        }
        if ((rc = dp_spool_txn(sp, it, n, NULL)) != 0) {
            return rc;
        }
        it = end;
    }
    return 0;
}

/* dp_spool_called runs an item's callback once. */
static void
dp_spool_called(dp_spool_item *it, tg_err rv)
{
    dp_spool_cb cb = it->cb;

    it->cb = NULL;
    if (cb != NULL) {
        cb(it->arg, rv);
    }
}

/* dp_spool_unhold takes the first n held items off the list. */
static dp_spool_item *
dp_spool_unhold(dp_spool *sp, size_t n)
{
    dp_spool_item *head = sp->held;
    dp_spool_item *last = head;

    for (size_t i = 1; i < n; i++) {
        last = last->next;
    }
    sp->held   = last->next;
    last->next = NULL;
    if (sp->held == NULL) {
        sp->held_tail = NULL;
    }
    atomic_fetch_sub(&sp->held_bytes, n * sizeof(*head));
    return head;
}

/* dp_spool_write_held writes the held records, oldest first, in bounded
 * transactions; what the disk refuses stays held (its callback runs now:
 * recorded in memory, or an intent refused past the ceiling). */
static void
dp_spool_write_held(dp_spool *sp, int64_t now_us)
{
    size_t written = 0;

    if (!sp->disk_failing || now_us >= sp->retry_us) {
        while (sp->held != NULL) {
            dp_spool_item *it = sp->held;
            size_t         n  = 1;
            int            rc;

            while (n < DP_SPOOL_TXN_MAX && it->next != NULL) {
                it = it->next;
                n++;
            }
            if ((rc = dp_spool_txn(sp, sp->held, n, NULL)) != 0) {
                dp_spool_disk_error(sp, "write usage records", rc, now_us);
                sp->disk_failing = true;
                sp->retry_us     = now_us + DP_SPOOL_RETRY_US;
                break;
            }
            written += n;
            for (it = dp_spool_unhold(sp, n); it != NULL;) {
                dp_spool_item *next = it->next;
                dp_spool_called(it, TG_OK);
                if (it->kind == DP_SPOOL_FINAL) {
                    dp_spool_send(sp, &it->usage, now_us);
                }
                dp_spool_item_free(it);
                it = next;
            }
        }
    }
    if (written > 0 && sp->disk_failing && sp->held == NULL) {
        tg_info("usage spool: the disk takes writes again; every waiting "
                "record is written");
        sp->disk_failing = false;
        sp->logged_us    = 0;
    }
    /* Still held: recorded in memory below the ceiling, else an intent is
     * refused (its request must not go upstream), the newest first. A
     * final is never refused. */
    size_t used = 0;
    for (dp_spool_item **pp = &sp->held; *pp != NULL;) {
        dp_spool_item *it = *pp;
        if (it->cb == NULL) {
            used += sizeof(*it);
            pp = &it->next;
            continue;
        }
        if (it->kind == DP_SPOOL_INTENT && used + sizeof(*it) > sp->mem_max) {
            *pp = it->next;
            if (sp->held_tail == it) {
                sp->held_tail = NULL;
                for (dp_spool_item *t = sp->held; t != NULL; t = t->next) {
                    sp->held_tail = t;
                }
            }
            atomic_fetch_sub(&sp->held_bytes, sizeof(*it));
            dp_spool_called(it, TG_EFULL);
            dp_spool_item_free(it);
            continue;
        }
        dp_spool_called(it, TG_OK);
        used += sizeof(*it);
        pp = &it->next;
    }
}

/* dp_spool_forget deletes acknowledged reports: from memory, and from the
 * disk in bounded transactions (one the disk cannot delete is sent again
 * later and acknowledged as a duplicate). */
static void
dp_spool_forget(dp_spool *sp, char (*ids)[TG_REQUEST_ID_MAX], size_t n,
                int64_t now_us)
{
    for (size_t i = 0; i < n; i++) {
        for (dp_spool_item **pp = &sp->held; *pp != NULL;) {
            dp_spool_item *it = *pp;
            if (strcmp(it->usage.request_id, ids[i]) != 0) {
                pp = &it->next;
                continue;
            }
            *pp = it->next;
            atomic_fetch_sub(&sp->held_bytes, sizeof(*it));
            dp_spool_called(it, TG_OK);
            dp_spool_item_free(it);
        }
    }
    sp->held_tail = NULL;
    for (dp_spool_item *t = sp->held; t != NULL; t = t->next) {
        sp->held_tail = t;
    }
    for (size_t i = 0; i < n; i += DP_SPOOL_TXN_MAX) {
        size_t k  = n - i < DP_SPOOL_TXN_MAX ? n - i : DP_SPOOL_TXN_MAX;
        int    rc = dp_spool_txn(sp, NULL, k, ids + i);
        if (rc != 0) {
            dp_spool_disk_error(sp, "delete acknowledged usage records", rc,
                                now_us);
            break;
        }
    }
}

/* dp_spool_sync flushes committed records to the disk. Commits are written
 * (MDB_NOSYNC) without an fsync each: once committed a record survives a
 * crash of this process, and this periodic fsync bounds what an operating
 * system crash could take to about one second. An fsync per request would
 * put disk latency on every request instead. */
static void
dp_spool_sync(dp_spool *sp, int64_t now_us)
{
    int rc = mdb_env_sync(sp->env, 1);

    sp->last_sync_us = now_us;
    if (rc != 0) {
        dp_spool_disk_error(sp, "fsync the spool", rc, now_us);
        return;
    }
    sp->dirty = false;
}

/* dp_spool_scan (re)sends the finals on disk and in memory that are not in
 * flight, and counts them. */
static void
dp_spool_scan(dp_spool *sp, int64_t now_us)
{
    MDB_txn      *txn;
    MDB_cursor   *cur;
    MDB_val       k;
    MDB_val       v;
    uint64_t      n    = 0;
    bool          send = dp_pdp_connected(sp->pdp);
    dp_spool_kind kind;
    tg_usage      u;
    int           rc;

    if (mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn) != 0) {
        return;
    }
    if (mdb_cursor_open(txn, sp->dbi, &cur) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (!dp_spool_rec_read(&v, &kind, &u) || kind != DP_SPOOL_FINAL) {
                continue;
            }
            n++;
            if (send) {
                dp_spool_send(sp, &u, now_us);
            }
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    for (dp_spool_item *it = sp->held; it != NULL; it = it->next) {
        if (it->kind == DP_SPOOL_FINAL) {
            n++;
            if (send) {
                dp_spool_send(sp, &it->usage, now_us);
            }
        }
    }
    dp_spool_flush(sp);
    /* With those still in the queue: a report is never uncounted. */
    atomic_store(&sp->pending, n + atomic_load(&sp->queued_finals));
}

/* dp_spool_settle_intents turns what a previous run left in flight into
 * estimated finals (their worst case), in bounded transactions. */
static tg_err
dp_spool_settle_intents(dp_spool *sp)
{
    dp_spool_item *list = NULL;
    dp_spool_item *tail = NULL;
    size_t         n    = 0;
    MDB_txn       *txn;
    MDB_cursor    *cur;
    MDB_val        k;
    MDB_val        v;
    int            rc;

    if ((rc = mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return TG_EIO;
    }
    if ((rc = mdb_cursor_open(txn, sp->dbi, &cur)) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            dp_spool_kind  kind;
            dp_spool_item *it;
            tg_usage       u;
            if (!dp_spool_rec_read(&v, &kind, &u) || kind != DP_SPOOL_INTENT ||
                (it = calloc(1, sizeof(*it))) == NULL) {
                continue;
            }
            it->kind            = DP_SPOOL_FINAL;
            it->usage           = u;
            it->usage.estimated = true;
            if (tail != NULL) {
                tail->next = it;
            } else {
                list = it;
            }
            tail = it;
            n++;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    if (n > 0) {
        tg_warn("usage spool: %zu request(s) were in flight when the data "
                "plane stopped without finishing them; each is reported as "
                "estimated at its worst case (what the PDP reserved for it)",
                n);
    }
    if ((rc = dp_spool_write_list(sp, list)) != 0) {
        tg_error("usage spool: cannot settle the requests left in flight: "
                 "%s (they are settled at the next start)",
                 mdb_strerror(rc));
    }
    while (list != NULL) {
        dp_spool_item *next = list->next;
        free(list);
        list = next;
    }
    return TG_OK;
}

/* ---- the thread --------------------------------------------------------- */

static void
dp_spool_free_list(dp_spool_item *it)
{
    while (it != NULL) {
        dp_spool_item *next = it->next;
        dp_spool_item_free(it);
        it = next;
    }
}

/* dp_spool_acks deletes what the PDP acknowledged; the rest waits for a
 * scan. */
static void
dp_spool_acks(dp_spool *sp, dp_spool_item *acks, int64_t now_us)
{
    char (*ids)[TG_REQUEST_ID_MAX] = NULL;
    size_t n                       = 0;
    size_t cap                     = 0;

    for (dp_spool_item *it = acks; it != NULL; it = it->next) {
        dp_spool_flight_remove(sp, it->usage.request_id);
        if (!it->acked) {
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            void  *p  = realloc(ids, nc * sizeof(*ids));
            if (p == NULL) {
                break; /* sent again later, acked as a duplicate */
            }
            ids = p;
            cap = nc;
        }
        snprintf(ids[n++], TG_REQUEST_ID_MAX, "%s", it->usage.request_id);
    }
    if (n > 0) {
        dp_spool_forget(sp, ids, n, now_us);
        atomic_fetch_add(&sp->acked, n); /* pending: the next scan */
    }
    free(ids);
    dp_spool_free_list(acks);
}

static void *
dp_spool_main(void *arg)
{
    dp_spool *sp = arg;

    for (;;) {
        dp_spool_item  *queue;
        dp_spool_item  *acks;
        bool            stop;
        int64_t         now_us;
        struct timespec ts;

        pthread_mutex_lock(&sp->lock);
        if (sp->queue == NULL && sp->acks == NULL && !sp->stop) {
            /* A batch being gathered waits at most DP_SPOOL_LINGER_US; a
             * refusing disk is tried again soon. */
            long wait_ns = sp->n_batch > 0 ? DP_SPOOL_LINGER_US * 1000L
                           : sp->held != NULL ? DP_SPOOL_RETRY_US * 1000L
                                              : 200 * 1000000L;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += wait_ns;
            while (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&sp->cond, &sp->lock, &ts);
        }
        queue          = sp->queue;
        acks           = sp->acks;
        sp->queue      = NULL;
        sp->queue_tail = NULL;
        sp->acks       = NULL;
        stop           = sp->stop;
        pthread_mutex_unlock(&sp->lock);

        now_us = tg_mono_us();
        if (queue != NULL) {
            uint64_t n = 0;
            for (dp_spool_item *t = queue; t != NULL; t = t->next) {
                n++;
                if (t->kind == DP_SPOOL_FINAL) {
                    atomic_fetch_sub(&sp->queued_finals, 1);
                }
                if (t->next == NULL) {
                    if (sp->held_tail != NULL) {
                        sp->held_tail->next = queue;
                    } else {
                        sp->held = queue;
                    }
                    sp->held_tail = t;
                }
            }
            atomic_fetch_add(&sp->held_bytes, n * sizeof(*queue));
        }
        dp_spool_write_held(sp, now_us);
        if (acks != NULL) {
            dp_spool_acks(sp, acks, now_us);
        }
        if (sp->n_batch > 0 &&
            (stop || now_us - sp->batch_since_us >= DP_SPOOL_LINGER_US)) {
            dp_spool_flush(sp);
        }
        if (sp->dirty &&
            (stop || now_us - sp->last_sync_us >= DP_SPOOL_SYNC_US)) {
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

/* ---- open and close ----------------------------------------------------- */

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
dp_spool_open(dp_spool **out, const char *dir, dp_pdp *pdp, size_t mem_max)
{
    dp_spool *sp = calloc(1, sizeof(*sp));
    MDB_txn  *txn;
    tg_err    rv = TG_EIO;
    int       rc;

    if (sp == NULL) {
        return TG_ENOMEM;
    }
    sp->pdp     = pdp;
    sp->mapsize = 16u << 20;
    sp->mem_max = mem_max > 0 ? mem_max : DP_SPOOL_MEM_DEFAULT;
    if ((sp->dir = strdup(dir)) == NULL) {
        free(sp);
        return TG_ENOMEM;
    }
    pthread_mutex_init(&sp->lock, NULL);
    pthread_cond_init(&sp->cond, NULL);
    sp->lock_fd = -1;
    if (dp_spool_mkdirs(dir) != 0) {
        tg_error("usage spool: cannot create %s: %s (check "
                 "dataplane.spool_dir)",
                 dir, strerror(errno));
        goto fail;
    }
    { /* Another user who can write here can forge or drop usage intents. */
        uid_t me = geteuid();
        char  msg[1024];
        if (tg_trust_dir_check("dataplane.spool_dir", dir, &me, 1, msg,
                                sizeof(msg)) != TG_OK) {
            tg_error("usage spool: %s", msg);
            rv = TG_ECONFIG;
            goto fail;
        }
    }
    { /* Another data plane's intents are not ours to settle. */
        char lk[4200];
        snprintf(lk, sizeof(lk), "%s/spool.lock", dir);
        if ((sp->lock_fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
            flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            tg_error("usage spool: %s is in use by another process (%s): "
                     "give each tollgate-dataplane its own "
                     "dataplane.spool_dir",
                     dir, strerror(errno));
            goto fail;
        }
    }
    { /* a truncated or damaged file: refused here, not SIGBUS in the map */
        char msg[1024];
        if ((rv = tg_lmdb_check_file(dir, msg, sizeof(msg))) != TG_OK) {
            tg_error("usage spool: %s", msg);
            goto fail;
        }
        rv = TG_EIO;
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
        MDB_envinfo info;
        int         dead = 0;
        mdb_reader_check(sp->env, &dead);
        mdb_env_info(sp->env, &info);
        if (info.me_mapsize > sp->mapsize) {
            sp->mapsize = info.me_mapsize; /* grown by an earlier run */
        }
    }
    if ((rc = mdb_txn_begin(sp->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "usage", MDB_CREATE, &sp->dbi)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0) {
        tg_error("usage spool: cannot open database: %s", mdb_strerror(rc));
        goto fail;
    }
    dp_spool_settle_intents(sp);
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
    if (sp->lock_fd >= 0) {
        close(sp->lock_fd);
    }
    free(sp->dir);
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->cond);
    free(sp);
    return rv;
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
    /* Records queued after the thread stopped (requests answered during
     * shutdown; none has a callback) join the held ones and are written
     * now; everything not acknowledged stays on disk and is replayed at
     * the next start. */
    if (sp->queue != NULL) {
        if (sp->held_tail != NULL) {
            sp->held_tail->next = sp->queue;
        } else {
            sp->held = sp->queue;
        }
        sp->queue = NULL;
    }
    {
        int rc = dp_spool_write_list(sp, sp->held);
        if (rc != 0) {
            tg_error("usage spool: %s: usage of requests answered during "
                     "shutdown could not be written; it is lost",
                     mdb_strerror(rc));
        }
    }
    if (sp->dirty) {
        dp_spool_sync(sp, tg_mono_us());
    }
    dp_spool_free_list(sp->held);
    dp_spool_free_list(sp->acks);
    for (size_t i = 0; i < DP_SPOOL_BUCKETS; i++) {
        while (sp->flight[i] != NULL) {
            dp_spool_flight *f = sp->flight[i];
            sp->flight[i]      = f->next;
            free(f);
        }
    }
    mdb_env_close(sp->env);
    close(sp->lock_fd);
    free(sp->dir);
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->cond);
    free(sp);
}

tg_err
dp_spool_record(dp_spool *sp, dp_spool_kind kind, const tg_usage *u,
                dp_spool_cb cb, void *arg)
{
    return dp_spool_record_content(sp, kind, u, NULL, 0, cb, arg);
}

tg_err
dp_spool_record_content(dp_spool *sp, dp_spool_kind kind, const tg_usage *u,
                        const char *content, size_t len, dp_spool_cb cb,
                        void *arg)
{
    dp_spool_item *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        return TG_ENOMEM;
    }
    if (content != NULL && len > 0 && kind == DP_SPOOL_FINAL) {
        if ((it->content = malloc(len)) == NULL) {
            free(it);
            return TG_ENOMEM;
        }
        memcpy(it->content, content, len);
        it->content_len = len;
    }
    it->sp    = sp;
    it->kind  = kind;
    it->usage = *u;
    it->cb    = cb;
    it->arg   = arg;
    pthread_mutex_lock(&sp->lock);
    if (sp->stop && cb != NULL) {
        /* Nobody would call it back: the caller goes on without. */
        pthread_mutex_unlock(&sp->lock);
        dp_spool_item_free(it);
        return TG_ECLOSED;
    }
    if (sp->queue_tail != NULL) {
        sp->queue_tail->next = it;
    } else {
        sp->queue = it;
    }
    sp->queue_tail = it;
    if (kind == DP_SPOOL_FINAL) {
        /* Counted before the spool thread can take it from the queue. */
        atomic_fetch_add(&sp->queued_finals, 1);
        atomic_fetch_add(&sp->pending, 1);
    }
    pthread_cond_signal(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
    return TG_OK;
}

tg_err
dp_spool_put(dp_spool *sp, const tg_usage *u)
{
    return dp_spool_record(sp, DP_SPOOL_FINAL, u, NULL, NULL);
}

bool
dp_spool_full(dp_spool *sp)
{
    /* No room for one more record. */
    return atomic_load(&sp->held_bytes) + sizeof(dp_spool_item) > sp->mem_max;
}

uint64_t
dp_spool_pending(dp_spool *sp)
{
    return atomic_load(&sp->pending);
}

uint64_t
dp_spool_held_bytes(dp_spool *sp)
{
    return atomic_load(&sp->held_bytes);
}

uint64_t
dp_spool_mem_max(dp_spool *sp)
{
    return sp->mem_max;
}

uint64_t
dp_spool_acked(dp_spool *sp)
{
    return atomic_load(&sp->acked);
}
