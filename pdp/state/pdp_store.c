/* pdp_store.c - LMDB environment, record codec and the usage writer.
 *
 * Map resizing: LMDB allows mdb_env_set_mapsize only while this process has
 * no active transaction. Every transaction (a reader's snapshot, the
 * writer's batch, an admin write) therefore runs under resize_lk held
 * shared; growing the map (on MDB_MAP_FULL) or adopting a size another
 * process chose (MDB_MAP_RESIZED) takes it exclusively. The lock prefers
 * the exclusive side so a steady stream of decisions cannot starve a resize;
 * that path is rare and short. */
#include "pdp_store_int.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tg_trust.h"
#include "tg_lmdb.h"
#include "tg_log.h"
#include "tg_time.h"

static void
pdp_key_encode(pdp_rec_out *o, const pdp_key *k)
{
    pdp_rec_uint(o, PDP_STORE_KEY_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)k->status, 1);
    pdp_rec_uint(o, (uint64_t)k->created_ms, 8);
    pdp_rec_uint(o, (uint64_t)k->revoked_ms, 8);
    pdp_rec_str(o, k->id);
    pdp_rec_str(o, k->tenant);
    pdp_rec_str(o, k->name);
    pdp_rec_uint(o, k->n_models, 2);
    for (uint32_t i = 0; i < k->n_models; i++) {
        pdp_rec_str(o, k->models[i]);
    }
    pdp_rec_labels(o, k->labels, k->n_labels);
    pdp_rec_uint(o, (uint64_t)k->expires_ms, 8);
    pdp_rec_uint(o, (uint64_t)k->rotated_ms, 8);
    pdp_rec_uint(o, (uint64_t)k->grace_until_ms, 8);
    pdp_rec_uint(o, k->superseded ? PDP_KEY_FLAG_SUPERSEDED : 0u, 1);
    pdp_rec_str(o, k->user); /* trailing: older readers ignore it */
}

static tg_err
pdp_key_decode(const MDB_val *v, pdp_key *k)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};
    uint64_t   version = pdp_rec_get_uint(&in, 1);

    if (version < 1 || version > PDP_STORE_KEY_VERSION) {
        return TG_EVERSION;
    }
    k->status     = (pdp_key_status)pdp_rec_get_uint(&in, 1);
    k->created_ms = pdp_rec_get_i64(&in);
    k->revoked_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, k->id, sizeof(k->id));
    pdp_rec_get_str(&in, k->tenant, sizeof(k->tenant));
    pdp_rec_get_str(&in, k->name, sizeof(k->name));
    k->n_models = (uint32_t)pdp_rec_get_uint(&in, 2);
    if (k->n_models > PDP_KEY_MODELS_MAX) {
        return TG_EIO;
    }
    for (uint32_t i = 0; i < k->n_models; i++) {
        pdp_rec_get_str(&in, k->models[i], sizeof(k->models[i]));
    }
    k->n_labels = 0;
    if (version >= 2) {
        pdp_rec_get_labels(&in, k->labels, &k->n_labels);
    }
    k->expires_ms     = 0;
    k->rotated_ms     = 0;
    k->grace_until_ms = 0;
    k->superseded     = false;
    if (version >= 3) {
        k->expires_ms     = pdp_rec_get_i64(&in);
        k->rotated_ms     = pdp_rec_get_i64(&in);
        k->grace_until_ms = pdp_rec_get_i64(&in);
        k->superseded =
            (pdp_rec_get_uint(&in, 1) & PDP_KEY_FLAG_SUPERSEDED) != 0;
    }
    k->user[0] = '\0';
    if (version >= 3 && !in.bad && in.off < in.len) {
        pdp_rec_get_str(&in, k->user, sizeof(k->user));
    }
    if (in.bad ||
        (k->status != PDP_KEY_ACTIVE && k->status != PDP_KEY_REVOKED)) {
        return TG_EIO;
    }
    return TG_OK;
}

static void
pdp_usage_encode(pdp_rec_out *o, const tg_usage *u, int64_t cost,
                 int64_t settled_ms)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o,
                 (u->stream ? 1u : 0u) | (u->estimated ? 2u : 0u) |
                     (u->abandoned ? 4u : 0u),
                 1);
    pdp_rec_uint(o, (uint64_t)u->endpoint, 1);
    pdp_rec_uint(o, u->status, 4);
    pdp_rec_uint(o, (uint64_t)u->prompt_tokens, 8);
    pdp_rec_uint(o, (uint64_t)u->completion_tokens, 8);
    pdp_rec_uint(o, (uint64_t)u->cached_tokens, 8);
    pdp_rec_uint(o, (uint64_t)cost, 8);
    pdp_rec_uint(o, (uint64_t)u->started_ms, 8);
    pdp_rec_uint(o, (uint64_t)u->duration_ms, 8);
    pdp_rec_uint(o, (uint64_t)settled_ms, 8);
    pdp_rec_str(o, u->key_id);
    pdp_rec_str(o, u->tenant_id);
    pdp_rec_str(o, u->model);
    pdp_rec_str(o, u->deployment_id);
    pdp_rec_str(o, u->reservation_id);
    pdp_rec_str(o, u->user);
}

static tg_err
pdp_usage_decode(const MDB_val *v, pdp_usage_rec *r)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};
    tg_usage  *u  = &r->usage;
    unsigned   flags;

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    flags                = (unsigned)pdp_rec_get_uint(&in, 1);
    u->stream            = (flags & 1u) != 0;
    u->estimated         = (flags & 2u) != 0;
    u->abandoned         = (flags & 4u) != 0;
    u->endpoint          = (tg_endpoint)pdp_rec_get_uint(&in, 1);
    u->status            = (uint32_t)pdp_rec_get_uint(&in, 4);
    u->prompt_tokens     = pdp_rec_get_i64(&in);
    u->completion_tokens = pdp_rec_get_i64(&in);
    u->cached_tokens     = pdp_rec_get_i64(&in);
    r->cost_micro_usd    = pdp_rec_get_i64(&in);
    u->started_ms        = pdp_rec_get_i64(&in);
    u->duration_ms       = pdp_rec_get_i64(&in);
    r->settled_ms        = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, u->key_id, sizeof(u->key_id));
    pdp_rec_get_str(&in, u->tenant_id, sizeof(u->tenant_id));
    pdp_rec_get_str(&in, u->model, sizeof(u->model));
    pdp_rec_get_str(&in, u->deployment_id, sizeof(u->deployment_id));
    pdp_rec_get_str(&in, u->reservation_id, sizeof(u->reservation_id));
    pdp_rec_get_str(&in, u->user, sizeof(u->user));
    return in.bad ? TG_EIO : TG_OK;
}

static void
pdp_totals_encode(pdp_rec_out *o, const pdp_totals *t)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)t->requests, 8);
    pdp_rec_uint(o, (uint64_t)t->prompt_tokens, 8);
    pdp_rec_uint(o, (uint64_t)t->completion_tokens, 8);
    pdp_rec_uint(o, (uint64_t)t->cost_micro_usd, 8);
    pdp_rec_uint(o, (uint64_t)t->last_ms, 8); /* trailing: older ignore it */
}

static tg_err
pdp_totals_decode(const MDB_val *v, pdp_totals *t)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    t->requests          = pdp_rec_get_i64(&in);
    t->prompt_tokens     = pdp_rec_get_i64(&in);
    t->completion_tokens = pdp_rec_get_i64(&in);
    t->cost_micro_usd    = pdp_rec_get_i64(&in);
    t->last_ms           = 0;
    if (!in.bad && in.off < in.len) {
        t->last_ms = pdp_rec_get_i64(&in);
    }
    return in.bad ? TG_EIO : TG_OK;
}

static void
pdp_tenant_encode(pdp_rec_out *o, const pdp_tenant *t)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)t->created_ms, 8);
    pdp_rec_uint(o, (uint64_t)t->updated_ms, 8);
    pdp_rec_str(o, t->tier);
    pdp_rec_labels(o, t->labels, t->n_labels);
    pdp_rec_str(o, t->name); /* trailing: older readers ignore it */
    pdp_rec_uint(o, (uint64_t)t->disabled_ms, 8); /* likewise */
}

/* pdp_tenant_decode fills t except its id (the database key). */
static tg_err
pdp_tenant_decode(const MDB_val *v, pdp_tenant *t)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    t->created_ms = pdp_rec_get_i64(&in);
    t->updated_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, t->tier, sizeof(t->tier));
    pdp_rec_get_labels(&in, t->labels, &t->n_labels);
    t->name[0]     = '\0';
    t->disabled_ms = 0;
    if (!in.bad && in.off < in.len) {
        pdp_rec_get_str(&in, t->name, sizeof(t->name));
    }
    if (!in.bad && in.off < in.len) {
        t->disabled_ms = pdp_rec_get_i64(&in);
    }
    return in.bad ? TG_EIO : TG_OK;
}

static void
pdp_history_encode(pdp_rec_out *o, const pdp_activation *a)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, a->revision, 8);
    pdp_rec_uint(o, a->previous_revision, 8);
    pdp_rec_uint(o, (uint64_t)a->activated_ms, 8);
    pdp_rec_uint(o, (uint64_t)a->how, 1);
    pdp_rec_uint(o, a->rollback ? 1u : 0u, 1);
    pdp_rec_str(o, a->name);
    pdp_rec_str(o, a->hash);
}

static uint64_t
pdp_history_seq(const MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    uint64_t       s = 0;

    for (size_t i = 0; i < 8 && i < k->mv_size; i++) {
        s = (s << 8) | p[i];
    }
    return s;
}

static tg_err
pdp_history_decode(const MDB_val *k, const MDB_val *v, pdp_activation *a)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    if (k->mv_size != 8) {
        return TG_EIO;
    }
    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return TG_EVERSION;
    }
    a->seq               = pdp_history_seq(k);
    a->revision          = pdp_rec_get_uint(&in, 8);
    a->previous_revision = pdp_rec_get_uint(&in, 8);
    a->activated_ms      = pdp_rec_get_i64(&in);
    a->how               = (pdp_activation_how)pdp_rec_get_uint(&in, 1);
    a->rollback          = (pdp_rec_get_uint(&in, 1) & 1u) != 0;
    pdp_rec_get_str(&in, a->name, sizeof(a->name));
    pdp_rec_get_str(&in, a->hash, sizeof(a->hash));
    return in.bad ? TG_EIO : TG_OK;
}

/* ---- environment ------------------------------------------------------ */

tg_err
pdp_store__rc(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return TG_OK;
    case MDB_NOTFOUND: return TG_ENOTFOUND;
    case MDB_KEYEXIST: return TG_EEXIST;
    case MDB_MAP_FULL: return TG_EFULL;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return TG_EVERSION;
    case ENOMEM: return TG_ENOMEM;
    case ENOSPC: return TG_EFULL;
    default: return TG_EIO;
    }
}

static tg_err
pdp_store_mkdirs(const char *path, mode_t mode)
{
    char  *p  = strdup(path);
    tg_err rv = TG_OK;

    if (p == NULL) {
        return TG_ENOMEM;
    }
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rv = TG_ESYS;
                goto out;
            }
            *s = '/';
        }
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST) {
        rv = TG_ESYS;
    }
out:
    free(p);
    return rv;
}

/* pdp_store_adopt_size picks up a map size another process has set. */
static tg_err
pdp_store_adopt_size(pdp_store *st)
{
    int rc;

    pthread_rwlock_wrlock(&st->resize_lk);
    rc = mdb_env_set_mapsize(st->env, 0);
    pthread_rwlock_unlock(&st->resize_lk);
    if (rc != 0) {
        tg_error("store: cannot adopt the new map size: %s", mdb_strerror(rc));
    }
    return pdp_store__rc(rc);
}

/* pdp_store_grow doubles the map unless someone already grew it past seen. */
static tg_err
pdp_store_grow(pdp_store *st, size_t seen)
{
    MDB_envinfo info;
    int         rc = 0;

    pthread_rwlock_wrlock(&st->resize_lk);
    mdb_env_info(st->env, &info);
    if (info.me_mapsize <= seen) {
        rc = mdb_env_set_mapsize(st->env, info.me_mapsize * 2);
        if (rc == 0) {
            tg_info("store: map full at %zu MB; grew it to %zu MB",
                    info.me_mapsize >> 20, (info.me_mapsize * 2) >> 20);
        } else {
            tg_error("store: map full at %zu MB and growing it failed: %s",
                     info.me_mapsize >> 20, mdb_strerror(rc));
        }
    }
    pthread_rwlock_unlock(&st->resize_lk);
    return pdp_store__rc(rc);
}

size_t
pdp_store_map_size(pdp_store *st)
{
    MDB_envinfo info;

    pthread_rwlock_rdlock(&st->resize_lk);
    mdb_env_info(st->env, &info);
    pthread_rwlock_unlock(&st->resize_lk);
    return info.me_mapsize;
}

/* The audit line armed on this thread (pdp_store_audit_arm). */
static _Thread_local struct {
    pdp_store *st;
    pdp_audit *a;
    bool       done;
} pdp_store__armed;

void
pdp_store_audit_arm(pdp_store *st, pdp_audit *a)
{
    pdp_store__armed.st   = st;
    pdp_store__armed.a    = a;
    pdp_store__armed.done = false;
}

bool
pdp_store_audit_disarm(pdp_store *st)
{
    bool done = pdp_store__armed.st == st && pdp_store__armed.done;

    memset(&pdp_store__armed, 0, sizeof(pdp_store__armed));
    return done;
}

/* pdp_store__with_audit: runs fn, then appends the armed audit line (if
 * any, not yet written, for st) in the same txn. */
static int
pdp_store__with_audit(pdp_store *st, MDB_txn *txn, pdp_store_txn_fn fn,
                      void *arg, bool *audited)
{
    int rc = fn(st, txn, arg);

    *audited = false;
    if (rc == 0 && pdp_store__armed.st == st && pdp_store__armed.a != NULL &&
        !pdp_store__armed.done && fn != pdp_store__audit_txn) {
        rc       = pdp_store__audit_txn(st, txn, pdp_store__armed.a);
        *audited = rc == 0;
    }
    return rc;
}

/* pdp_store__disk_full: rc means the filesystem is out of space. LMDB
 * reports a write cut short on a full filesystem as EIO, so an EIO is
 * taken as "full" when the state directory's filesystem has no room. */
static bool
pdp_store__disk_full(const pdp_store *st, int rc)
{
    struct statvfs v;

    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG) {
        return true;
    }
    return rc == EIO && statvfs(st->dir, &v) == 0 &&
           (v.f_bavail == 0 || (uint64_t)v.f_bavail * v.f_frsize < 65536);
}

/* pdp_store__log_failure says why a write failed, at most once a minute
 * (a failing disk fails every write): a full disk with what to do. */
static void
pdp_store__log_failure(pdp_store *st, const char *what, int rc)
{
    int64_t now  = tg_mono_us() / 1000;
    long long last = atomic_load(&st->full_logged_ms);

    if ((last != 0 && now - last < 60000) ||
        !atomic_compare_exchange_strong(&st->full_logged_ms, &last, now)) {
        return;
    }
    if (pdp_store__disk_full(st, rc)) {
        tg_error("store: disk full: cannot %s %s (free space on its "
                 "filesystem; usage reports are kept by the data planes and "
                 "retried, decisions whose reservation cannot be recorded "
                 "are refused until then; this message repeats at most once "
                 "a minute)",
                 what, st->dir);
        return;
    }
    tg_error("store: %s failed in %s: %s (this message repeats at most once "
             "a minute while it lasts)",
             what, st->dir, mdb_strerror(rc));
}

/* A write body: runs inside a write txn, returns an LMDB rc. It may run more
 * than once (after the map grows), so it must not keep effects outside the
 * txn except outputs it fully rewrites on each run. */
static tg_err
pdp_store__write_opt(pdp_store *st, pdp_store_txn_fn fn, void *arg,
                     bool sync)
{
    for (int attempt = 0; attempt < PDP_STORE_RETRIES; attempt++) {
        MDB_txn *txn  = NULL;
        size_t   seen = pdp_store_map_size(st);
        int      rc;

        bool     audited = false;

        pthread_rwlock_rdlock(&st->resize_lk);
        rc = mdb_txn_begin(st->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = pdp_store__with_audit(st, txn, fn, arg, &audited);
            if (rc == 0) {
                rc = mdb_txn_commit(txn); /* frees txn on failure too */
                pdp_store__armed.done |= rc == 0 && audited;
            } else {
                mdb_txn_abort(txn);
            }
        }
        pthread_rwlock_unlock(&st->resize_lk);
        if (rc == MDB_MAP_RESIZED) {
            tg_err rv = pdp_store_adopt_size(st);
            if (rv != TG_OK) {
                return rv;
            }
            continue;
        }
        if (rc == MDB_MAP_FULL) {
            tg_err rv = pdp_store_grow(st, seen);
            if (rv != TG_OK) {
                return rv;
            }
            continue;
        }
        if (rc == 0 && sync && (rc = mdb_env_sync(st->env, 1)) != 0) {
            /* Committed, but maybe not on the disk: say so; the caller
             * must not take it as durable. */
            pdp_store__log_failure(st, "fsync", rc);
            return pdp_store__rc(rc);
        }
        if (rc != 0 && rc != MDB_NOTFOUND && rc != MDB_KEYEXIST) {
            pdp_store__log_failure(st, "write", rc);
            if (pdp_store__disk_full(st, rc)) {
                return TG_EFULL; /* EIO from a write cut short */
            }
        }
        return pdp_store__rc(rc);
    }
    return TG_EFULL;
}

tg_err
pdp_store__write(pdp_store *st, pdp_store_txn_fn fn, void *arg)
{
    return pdp_store__write_opt(st, fn, arg, true);
}

tg_err
pdp_store__write_nosync(pdp_store *st, pdp_store_txn_fn fn, void *arg)
{
    return pdp_store__write_opt(st, fn, arg, false);
}

typedef struct pdp_store_init_arg {
    int version;  /* found or written; -1: unreadable */
    int upgraded; /* the older version found and upgraded; 0: none */
} pdp_store_init_arg;

static int
pdp_store_init_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_store_init_arg *a = arg;
    MDB_val             k = {14, "schema_version"};
    MDB_val             v;
    char                num[24];
    int                 rc;

    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "keys", MDB_CREATE, &st->keys)) != 0 ||
        (rc = mdb_dbi_open(txn, "key_ids", MDB_CREATE, &st->key_ids)) != 0 ||
        (rc = mdb_dbi_open(txn, "usage", MDB_CREATE, &st->usage)) != 0 ||
        (rc = mdb_dbi_open(txn, "totals", MDB_CREATE, &st->totals)) != 0 ||
        (rc = mdb_dbi_open(txn, "tenants", MDB_CREATE, &st->tenants)) != 0 ||
        (rc = mdb_dbi_open(txn, "policy_history", MDB_CREATE, &st->history)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "budgets", MDB_CREATE, &st->budgets)) != 0 ||
        (rc = mdb_dbi_open(txn, "alerts_fired", MDB_CREATE, &st->alerts)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "reservations", MDB_CREATE,
                           &st->reservations)) != 0 ||
        (rc = pdp_store__admin_open(st, txn)) != 0) {
        return rc;
    }
    a->upgraded = 0;
    rc          = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        a->version = PDP_STORE_SCHEMA_VERSION;
        snprintf(num, sizeof(num), "%d", PDP_STORE_SCHEMA_VERSION);
        v.mv_size = strlen(num);
        v.mv_data = num;
        return mdb_put(txn, st->meta, &k, &v, 0);
    }
    if (rc != 0) {
        return rc;
    }
    if (v.mv_size == 0 || v.mv_size >= sizeof(num)) {
        a->version = -1;
        return MDB_INVALID;
    }
    memcpy(num, v.mv_data, v.mv_size);
    num[v.mv_size] = '\0';
    a->version     = atoi(num);
    if (a->version >= 1 && a->version < PDP_STORE_SCHEMA_VERSION) {
        /* Every older record stays readable; only the marker moves, so an
         * older build refuses the directory instead of misreading it. */
        a->upgraded = a->version;
        a->version  = PDP_STORE_SCHEMA_VERSION;
        snprintf(num, sizeof(num), "%d", PDP_STORE_SCHEMA_VERSION);
        v.mv_size = strlen(num);
        v.mv_data = num;
        return mdb_put(txn, st->meta, &k, &v, 0);
    }
    return 0;
}

static tg_err
pdp_store_env_open(pdp_store *st, int64_t map_size_mb, char *err, size_t errlen)
{
    pdp_store_init_arg a = {0};
    MDB_envinfo        info;
    size_t             want = (size_t)map_size_mb << 20;
    int                dead = 0;
    int                rc;
    tg_err             rv;

    if ((rc = mdb_env_create(&st->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(st->env, PDP_STORE_MAX_DBS)) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, PDP_STORE_MAX_READERS)) != 0) {
        snprintf(err, errlen, "store: %s", mdb_strerror(rc));
        return pdp_store__rc(rc);
    }
    /* A truncated or damaged file: refused here, not SIGBUS in the map. */
    if ((rv = tg_lmdb_check_file(st->dir, err, errlen)) != TG_OK) {
        return rv;
    }
    /* MDB_NOTLS: read txns belong to nng contexts, not threads.
     * MDB_NOSYNC: pdp_store__write syncs after its commit; only recorded
     * reservations (pdp_store_reserve_submit) skip it, so a decision does
     * not wait for the disk (see pdp_store__write_nosync). */
    if ((rc = mdb_env_open(st->env, st->dir, MDB_NOTLS | MDB_NOSYNC, 0600)) !=
        0) {
        snprintf(err, errlen, "store: cannot open LMDB environment in %s: %s",
                 st->dir, mdb_strerror(rc));
        return pdp_store__rc(rc);
    }
    /* Opened without a size, LMDB takes the one on disk; only ever grow it,
     * another process may have grown it past the configured size. */
    mdb_env_info(st->env, &info);
    if (info.me_mapsize < want &&
        (rc = mdb_env_set_mapsize(st->env, want)) != 0) {
        snprintf(err, errlen, "store: cannot set map size to %lld MB: %s",
                 (long long)map_size_mb, mdb_strerror(rc));
        return pdp_store__rc(rc);
    }
    if ((rc = mdb_reader_check(st->env, &dead)) != 0) {
        snprintf(err, errlen, "store: reader check failed in %s: %s", st->dir,
                 mdb_strerror(rc));
        return pdp_store__rc(rc);
    }
    if (dead > 0) {
        tg_info("store: cleared %d stale reader slot(s) left by exited "
                "processes",
                dead);
    }
    rv = pdp_store__write(st, pdp_store_init_txn, &a);
    if (a.version > PDP_STORE_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "store: %s holds state written by a newer tollgate-pdp "
                 "(schema version %d; this build supports up to %d). Run "
                 "that newer tollgate-pdp, or point pdp.state_dir at another "
                 "directory; do not delete this one unless you mean to lose "
                 "its keys and spend",
                 st->dir, a.version, PDP_STORE_SCHEMA_VERSION);
        return TG_EVERSION;
    }
    if (rv != TG_OK || a.version < 1) {
        snprintf(err, errlen,
                 "store: cannot initialise %s: %s (schema version %d)", st->dir,
                 tg_strerror(rv), a.version);
        return rv != TG_OK ? rv : TG_EVERSION;
    }
    if (a.upgraded != 0) {
        tg_info("store: upgraded %s from schema version %d to %d (tenants, "
                "key labels, policy history, key expiry and rotation, budget spend); older tollgate-pdp builds will "
                "now refuse it",
                st->dir, a.upgraded, PDP_STORE_SCHEMA_VERSION);
    }
    return TG_OK;
}

static void  *pdp_store_writer_main(void *arg);
static tg_err pdp_store__enqueue(pdp_store *st, pdp_store_item *it);

tg_err
pdp_store_open(pdp_store **out, const char *dir, int64_t map_size_mb, char *err,
               size_t errlen)
{
    pdp_store           *st = calloc(1, sizeof(*st));
    pthread_rwlockattr_t ra;
    tg_err               rv = TG_OK;

    if (st == NULL || (st->dir = strdup(dir)) == NULL) {
        free(st);
        snprintf(err, errlen, "store: out of memory");
        return TG_ENOMEM;
    }
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->resize_lk, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->lk_init = true;
    if (pdp_store_mkdirs(dir, 0700) != TG_OK) {
        snprintf(err, errlen, "store: cannot create state directory %s: %s",
                 dir, strerror(errno));
        rv = TG_ESYS;
        goto out;
    }
    { /* Another user who can write here can plant symlinks or a store. */
        uid_t me = geteuid();
        if ((rv = tg_trust_dir_check("pdp.state_dir", dir, &me, 1, err,
                                      errlen)) != TG_OK) {
            goto out;
        }
    }
    if ((rv = pdp_store_env_open(st, map_size_mb, err, errlen)) != TG_OK) {
        goto out;
    }
    if (pthread_create(&st->writer, NULL, pdp_store_writer_main, st) != 0) {
        snprintf(err, errlen, "store: cannot start the writer thread");
        rv = TG_ESYS;
        goto out;
    }
    st->writer_running = true;
    *out               = st;
    st                 = NULL;
out:
    pdp_store_close(st);
    return rv;
}

void
pdp_store_close(pdp_store *st)
{
    if (st == NULL) {
        return;
    }
    if (st->writer_running) {
        pthread_mutex_lock(&st->mu);
        st->stopping = true;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->writer, NULL);
    }
    if (st->env != NULL) {
        mdb_env_close(st->env);
    }
    if (st->lk_init) {
        pthread_rwlock_destroy(&st->resize_lk);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
    }
    free(st->dir);
    free(st);
}

/* ---- readers ---------------------------------------------------------- */

tg_err
pdp_store_reader_create(pdp_store *st, pdp_store_reader **out)
{
    pdp_store_reader *rd = calloc(1, sizeof(*rd));

    if (rd == NULL) {
        return TG_ENOMEM;
    }
    rd->st = st;
    *out   = rd;
    return TG_OK;
}

void
pdp_store_reader_destroy(pdp_store_reader *rd)
{
    if (rd == NULL) {
        return;
    }
    if (rd->active) {
        pdp_store_read_end(rd);
    }
    if (rd->txn != NULL) {
        mdb_txn_abort(rd->txn);
    }
    free(rd);
}

tg_err
pdp_store_read_begin(pdp_store_reader *rd)
{
    pdp_store *st = rd->st;

    for (int attempt = 0; attempt < PDP_STORE_RETRIES; attempt++) {
        int rc;

        pthread_rwlock_rdlock(&st->resize_lk);
        if (rd->txn != NULL) {
            rc = mdb_txn_renew(rd->txn);
        } else {
            rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &rd->txn);
        }
        if (rc == 0) {
            rd->active = true;
            return TG_OK; /* resize_lk stays shared until read_end */
        }
        pthread_rwlock_unlock(&st->resize_lk);
        if (rd->txn != NULL) {
            /* A failed renew leaves the handle in an unknown state. */
            mdb_txn_abort(rd->txn);
        }
        rd->txn = NULL;
        if (rc != MDB_MAP_RESIZED) {
            tg_error("store: cannot start a read: %s", mdb_strerror(rc));
            return pdp_store__rc(rc);
        }
        if (pdp_store_adopt_size(st) != TG_OK) {
            return TG_EIO;
        }
    }
    return TG_EIO;
}

void
pdp_store_read_end(pdp_store_reader *rd)
{
    if (!rd->active) {
        return;
    }
    mdb_txn_reset(rd->txn);
    rd->active = false;
    pthread_rwlock_unlock(&rd->st->resize_lk);
}

static tg_err
pdp_store_get(pdp_store_reader *rd, MDB_dbi dbi, const void *key, size_t klen,
              MDB_val *v)
{
    MDB_val k = {klen, (void *)key};
    int     rc;

    if (!rd->active) {
        return TG_EINVAL;
    }
    rc = mdb_get(rd->txn, dbi, &k, v);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        tg_error("store: read failed: %s", mdb_strerror(rc));
    }
    return pdp_store__rc(rc);
}

tg_err
pdp_store_key_get(pdp_store_reader *rd, const uint8_t hash[TG_SHA256_LEN],
                  pdp_key *out)
{
    MDB_val v;
    tg_err  rv = pdp_store_get(rd, rd->st->keys, hash, TG_SHA256_LEN, &v);

    return rv != TG_OK ? rv : pdp_key_decode(&v, out);
}

tg_err
pdp_store_key_get_by_id(pdp_store_reader *rd, const char *id, pdp_key *out)
{
    MDB_val v;
    tg_err  rv = pdp_store_get(rd, rd->st->key_ids, id, strlen(id), &v);

    if (rv != TG_OK) {
        return rv;
    }
    if (v.mv_size != TG_SHA256_LEN) {
        return TG_EIO;
    }
    return pdp_store_key_get(rd, v.mv_data, out);
}

static size_t
pdp_totals_key(char *buf, size_t cap, pdp_totals_kind kind, const char *id)
{
    int n = snprintf(buf, cap, "%c:%s", (char)kind, id);

    return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

tg_err
pdp_store_totals_get(pdp_store_reader *rd, pdp_totals_kind kind, const char *id,
                     pdp_totals *out)
{
    char    key[TG_ID_MAX + 4];
    size_t  klen = pdp_totals_key(key, sizeof(key), kind, id);
    MDB_val v;
    tg_err  rv = pdp_store_get(rd, rd->st->totals, key, klen, &v);

    return rv != TG_OK ? rv : pdp_totals_decode(&v, out);
}

tg_err
pdp_store_usage_get(pdp_store_reader *rd, const char *request_id,
                    pdp_usage_rec *out)
{
    MDB_val v;
    tg_err  rv;

    memset(out, 0, sizeof(*out));
    rv = pdp_store_get(rd, rd->st->usage, request_id, strlen(request_id), &v);
    if (rv != TG_OK) {
        return rv;
    }
    memcpy(out->usage.request_id, request_id, strlen(request_id) + 1);
    return pdp_usage_decode(&v, out);
}

tg_err
pdp_store_tenant_get(pdp_store_reader *rd, const char *id, pdp_tenant *out)
{
    MDB_val v;
    tg_err  rv;

    if (id[0] == '\0' || strlen(id) >= sizeof(out->id)) {
        return TG_ENOTFOUND;
    }
    rv = pdp_store_get(rd, rd->st->tenants, id, strlen(id), &v);
    if (rv != TG_OK) {
        return rv;
    }
    memcpy(out->id, id, strlen(id) + 1);
    return pdp_tenant_decode(&v, out);
}

/* ---- key admin -------------------------------------------------------- */

typedef struct pdp_key_put_arg {
    const uint8_t   *hash;
    const pdp_key   *k;
    const pdp_quota *q; /* NULL: none */
} pdp_key_put_arg;

static int
pdp_store_key_put_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_key_put_arg *a  = arg;
    pdp_rec_out     *o  = malloc(sizeof(*o));
    MDB_val          hk = {TG_SHA256_LEN, (void *)a->hash};
    MDB_val          ik = {strlen(a->k->id), (void *)a->k->id};
    MDB_val          v;
    int              rc;

    if (o == NULL) {
        return ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_key_encode(o, a->k);
    if (o->bad) {
        rc = EINVAL;
        goto out;
    }
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = mdb_put(txn, st->keys, &hk, &v, MDB_NOOVERWRITE)) != 0) {
        goto out;
    }
    v.mv_size = TG_SHA256_LEN;
    v.mv_data = (void *)a->hash;
    rc        = mdb_put(txn, st->key_ids, &ik, &v, MDB_NOOVERWRITE);
    if (rc == 0 && a->q != NULL) {
        rc = pdp_store__quota_put_in(st, txn, a->q);
    }
out:
    free(o);
    return rc;
}

tg_err
pdp_store_key_put(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                  const pdp_key *k)
{
    return pdp_store_key_put_quota(st, hash, k, NULL);
}

tg_err
pdp_store_key_put_quota(pdp_store *st, const uint8_t hash[TG_SHA256_LEN],
                        const pdp_key *k, const pdp_quota *q)
{
    pdp_key_put_arg a = {hash, k, q};

    if (k->id[0] == '\0' || k->n_models > PDP_KEY_MODELS_MAX ||
        k->n_labels > PDP_LABELS_MAX ||
        (q != NULL && (q->scope != PDP_QUOTA_KEY || strcmp(q->id, k->id) != 0 ||
                       q->nthr > PDP_LIMITS_THRESHOLDS_MAX))) {
        return TG_EINVAL;
    }
    return pdp_store__write(st, pdp_store_key_put_txn, &a);
}

/* pdp_store_key_revoke_superseded revokes every superseded secret of key
 * id. Rotations are rare and revokes are admin writes, so a scan of the
 * keys database beats keeping an index of old secrets. k and o are
 * scratch. */
static int
pdp_store_key_revoke_superseded(pdp_store *st, MDB_txn *txn, const char *id,
                                int64_t now_ms, pdp_key *k, pdp_rec_out *o)
{
    MDB_cursor *cur = NULL;
    MDB_val     hk;
    MDB_val     v;
    int         rc;

    if ((rc = mdb_cursor_open(txn, st->keys, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &hk, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &hk, &v, MDB_NEXT)) {
        if (pdp_key_decode(&v, k) != TG_OK || !k->superseded ||
            k->status == PDP_KEY_REVOKED || strcmp(k->id, id) != 0) {
            continue;
        }
        k->status     = PDP_KEY_REVOKED;
        k->revoked_ms = now_ms;
        o->len        = 0;
        o->bad        = false;
        pdp_key_encode(o, k);
        v.mv_size = o->len;
        v.mv_data = o->buf;
        if ((rc = mdb_cursor_put(cur, &hk, &v, MDB_CURRENT)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

typedef struct pdp_key_revoke_arg {
    const char *id;
    int64_t     now_ms;
    bool        already;
} pdp_key_revoke_arg;

static int
pdp_store_key_revoke_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_key_revoke_arg *a  = arg;
    MDB_val             ik = {strlen(a->id), (void *)a->id};
    MDB_val             hk;
    MDB_val             v;
    pdp_key            *k = malloc(sizeof(*k));
    pdp_rec_out        *o = malloc(sizeof(*o));
    int                 rc;

    a->already = false;
    if (k == NULL || o == NULL) {
        rc = ENOMEM;
        goto out;
    }
    if ((rc = mdb_get(txn, st->key_ids, &ik, &hk)) != 0 ||
        (rc = mdb_get(txn, st->keys, &hk, &v)) != 0) {
        goto out;
    }
    if (pdp_key_decode(&v, k) != TG_OK) {
        rc = MDB_CORRUPTED;
        goto out;
    }
    if (k->status == PDP_KEY_REVOKED) {
        a->already = true;
        rc         = MDB_KEYEXIST; /* nothing to commit (nor to audit) */
        goto out;
    }
    k->status     = PDP_KEY_REVOKED;
    k->revoked_ms = a->now_ms;
    o->len        = 0;
    o->bad        = false;
    pdp_key_encode(o, k);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = mdb_put(txn, st->keys, &hk, &v, 0)) != 0) {
        goto out;
    }
    rc = pdp_store_key_revoke_superseded(st, txn, a->id, a->now_ms, k, o);
out:
    free(k);
    free(o);
    return rc;
}

tg_err
pdp_store_key_revoke(pdp_store *st, const char *id, int64_t now_ms)
{
    pdp_key_revoke_arg a = {id, now_ms, false};
    tg_err             rv;

    if (id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    rv = pdp_store__write(st, pdp_store_key_revoke_txn, &a);
    return a.already ? TG_EEXIST : rv;
}

typedef struct pdp_key_rotate_arg {
    const char    *id;
    const uint8_t *hash;
    int64_t        now_ms;
    int64_t        grace_ms;
    pdp_key       *k; /* the current record, as read or as written */
    bool           refused;
} pdp_key_rotate_arg;

static int
pdp_store_key_rotate_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_key_rotate_arg *a  = arg;
    MDB_val             ik = {strlen(a->id), (void *)a->id};
    MDB_val             nk = {TG_SHA256_LEN, (void *)a->hash};
    MDB_val             hk;
    MDB_val             v;
    pdp_rec_out        *o = malloc(sizeof(*o));
    uint8_t             old[TG_SHA256_LEN];
    int                 rc;

    a->refused = false;
    if (o == NULL) {
        return ENOMEM;
    }
    if ((rc = mdb_get(txn, st->key_ids, &ik, &hk)) != 0 ||
        (rc = mdb_get(txn, st->keys, &hk, &v)) != 0) {
        goto out;
    }
    if (hk.mv_size != TG_SHA256_LEN || pdp_key_decode(&v, a->k) != TG_OK) {
        rc = MDB_CORRUPTED;
        goto out;
    }
    if (pdp_key_state_at(a->k, a->now_ms) != PDP_KEY_STATE_ACTIVE) {
        a->refused = true;
        rc         = MDB_KEYEXIST; /* nothing to commit (nor to audit) */
        goto out;
    }
    memcpy(old, hk.mv_data, sizeof(old));
    hk.mv_data = old; /* mdb_put below may move the page it pointed into */
    a->k->rotated_ms     = a->now_ms;
    a->k->grace_until_ms = a->now_ms + a->grace_ms;
    a->k->superseded     = false;
    o->len               = 0;
    o->bad               = false;
    pdp_key_encode(o, a->k);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = mdb_put(txn, st->keys, &nk, &v, MDB_NOOVERWRITE)) != 0) {
        goto out;
    }
    a->k->superseded = true;
    o->len           = 0;
    pdp_key_encode(o, a->k);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    if ((rc = mdb_put(txn, st->keys, &hk, &v, 0)) != 0) {
        goto out;
    }
    a->k->superseded = false;
    rc               = mdb_put(txn, st->key_ids, &ik, &nk, 0);
out:
    free(o);
    return rc;
}

tg_err
pdp_store_key_rotate(pdp_store *st, const char *id,
                     const uint8_t new_hash[TG_SHA256_LEN], int64_t now_ms,
                     int64_t grace_ms, pdp_key *out)
{
    pdp_key_rotate_arg a = {id, new_hash, now_ms, grace_ms, NULL, false};
    tg_err             rv;

    if (id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    if (grace_ms < 0) {
        return TG_EINVAL;
    }
    if ((a.k = calloc(1, sizeof(*a.k))) == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_store__write(st, pdp_store_key_rotate_txn, &a);
    if (a.refused) {
        rv = TG_EINVAL;
    }
    if (out != NULL && (rv == TG_OK || rv == TG_EINVAL)) {
        *out = *a.k;
    }
    free(a.k);
    return rv;
}

pdp_key_state
pdp_key_state_at(const pdp_key *k, int64_t now_ms)
{
    if (k->status != PDP_KEY_ACTIVE) {
        return PDP_KEY_STATE_REVOKED;
    }
    if (k->superseded && now_ms >= k->grace_until_ms) {
        return PDP_KEY_STATE_ROTATED;
    }
    if (k->expires_ms != 0 && now_ms >= k->expires_ms) {
        return PDP_KEY_STATE_EXPIRED;
    }
    return PDP_KEY_STATE_ACTIVE;
}

tg_err
pdp_store__scan(pdp_store *st, MDB_dbi dbi, bool backwards,
                pdp_store_scan_fn fn, void *arg)
{
    MDB_cursor_op     first = backwards ? MDB_LAST : MDB_FIRST;
    MDB_cursor_op     next  = backwards ? MDB_PREV : MDB_NEXT;
    pdp_store_reader *rd  = NULL;
    MDB_cursor       *cur = NULL;
    MDB_val           k;
    MDB_val           v;
    tg_err            rv;
    int               rc;

    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        goto out;
    }
    if ((rc = mdb_cursor_open(rd->txn, dbi, &cur)) != 0) {
        rv = pdp_store__rc(rc);
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, first); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, next)) {
        if ((rv = fn(&k, &v, arg)) != TG_OK) {
            if (rv == TG_EEXIST) {
                rv = TG_OK;
            }
            goto out;
        }
    }
    rv = rc == MDB_NOTFOUND ? TG_OK : pdp_store__rc(rc);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

static tg_err
pdp_store_scan(pdp_store *st, MDB_dbi dbi, pdp_store_scan_fn fn, void *arg)
{
    return pdp_store__scan(st, dbi, false, fn, arg);
}

typedef struct pdp_key_list_arg {
    pdp_store_key_fn fn;
    void            *arg;
    pdp_key          k;
} pdp_key_list_arg;

static tg_err
pdp_store_key_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_key_list_arg *a  = arg;
    tg_err            rv = pdp_key_decode(v, &a->k);

    (void)k;
    if (rv != TG_OK) {
        return rv;
    }
    if (!a->k.superseded) {
        a->fn(a->arg, &a->k);
    }
    return TG_OK;
}

tg_err
pdp_store_key_list(pdp_store *st, pdp_store_key_fn fn, void *arg)
{
    pdp_key_list_arg *a = malloc(sizeof(*a));
    tg_err            rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    rv     = pdp_store_scan(st, st->keys, pdp_store_key_list_one, a);
    free(a);
    return rv;
}

typedef struct pdp_totals_list_arg {
    pdp_store_totals_fn fn;
    void               *arg;
} pdp_totals_list_arg;

static tg_err
pdp_store_totals_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_totals_list_arg *a = arg;
    const char          *s = k->mv_data;
    char                 id[TG_ID_MAX + 4];
    pdp_totals           t;
    tg_err               rv;

    if (k->mv_size < 3 || k->mv_size - 2 >= sizeof(id) || s[1] != ':' ||
        (s[0] != PDP_TOTALS_KEY && s[0] != PDP_TOTALS_TENANT)) {
        return TG_OK; /* not ours: a later schema may add kinds */
    }
    if ((rv = pdp_totals_decode(v, &t)) != TG_OK) {
        return rv;
    }
    memcpy(id, s + 2, k->mv_size - 2);
    id[k->mv_size - 2] = '\0';
    a->fn(a->arg, (pdp_totals_kind)s[0], id, &t);
    return TG_OK;
}

tg_err
pdp_store_totals_list(pdp_store *st, pdp_store_totals_fn fn, void *arg)
{
    pdp_totals_list_arg a = {fn, arg};

    return pdp_store_scan(st, st->totals, pdp_store_totals_list_one, &a);
}

/* ---- tenants ------------------------------------------------------------ */

typedef struct pdp_tenant_set_arg {
    const pdp_tenant_change *c;
    pdp_tenant              *t; /* the result, rebuilt on every run */
    bool                     created;
    bool                     too_many;
    const int64_t           *disabled_ms; /* NULL: keep; else must exist */
} pdp_tenant_set_arg;

static int
pdp_tenant_label_apply(pdp_tenant *t, const tg_kv *l)
{
    uint32_t i = 0;

    while (i < t->n_labels && strcmp(t->labels[i].key, l->key) != 0) {
        i++;
    }
    if (l->value[0] == '\0') {
        if (i < t->n_labels) {
            memmove(&t->labels[i], &t->labels[i + 1],
                    (t->n_labels - i - 1) * sizeof(t->labels[0]));
            t->n_labels--;
        }
        return 0;
    }
    if (i == t->n_labels) {
        if (t->n_labels == PDP_LABELS_MAX) {
            return -1;
        }
        t->n_labels++;
    }
    t->labels[i] = *l;
    return 0;
}

static int
pdp_store_tenant_set_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_tenant_set_arg      *a = arg;
    const pdp_tenant_change *c = a->c;
    pdp_tenant              *t = a->t;
    MDB_val                  k = {strlen(c->id), (void *)c->id};
    MDB_val                  v;
    pdp_rec_out             *o;
    int                      rc;

    memset(t, 0, sizeof(*t));
    a->too_many = false;
    rc          = mdb_get(txn, st->tenants, &k, &v);
    if (rc == 0) {
        if (pdp_tenant_decode(&v, t) != TG_OK) {
            return MDB_CORRUPTED;
        }
        a->created = false;
    } else if (rc == MDB_NOTFOUND && a->disabled_ms == NULL) {
        t->created_ms = c->now_ms;
        a->created    = true;
    } else {
        return rc;
    }
    if (a->disabled_ms != NULL) {
        t->disabled_ms = *a->disabled_ms;
    }
    memcpy(t->id, c->id, k.mv_size + 1);
    t->updated_ms = c->now_ms;
    if (c->tier != NULL) {
        snprintf(t->tier, sizeof(t->tier), "%s", c->tier);
    }
    if (c->name != NULL) {
        snprintf(t->name, sizeof(t->name), "%s", c->name);
    }
    for (uint32_t i = 0; i < c->n_labels; i++) {
        if (pdp_tenant_label_apply(t, &c->labels[i]) != 0) {
            a->too_many = true;
            return EINVAL;
        }
    }
    if ((o = malloc(sizeof(*o))) == NULL) {
        return ENOMEM;
    }
    o->len = 0;
    o->bad = false;
    pdp_tenant_encode(o, t);
    v.mv_size = o->len;
    v.mv_data = o->buf;
    rc        = o->bad ? EINVAL : mdb_put(txn, st->tenants, &k, &v, 0);
    free(o);
    return rc;
}

tg_err
pdp_store_tenant_disable(pdp_store *st, const char *id, int64_t disabled_ms,
                         int64_t now_ms, pdp_tenant *out)
{
    pdp_tenant_change  c = {.id = id, .now_ms = now_ms};
    pdp_tenant_set_arg a = {&c, NULL, false, false, &disabled_ms};
    tg_err             rv;

    if (id[0] == '\0' || strlen(id) >= TG_ID_MAX) {
        return TG_ENOTFOUND;
    }
    if ((a.t = malloc(sizeof(*a.t))) == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = pdp_store__write(st, pdp_store_tenant_set_txn, &a)) == TG_OK &&
        out != NULL) {
        *out = *a.t;
    }
    free(a.t);
    return rv;
}

tg_err
pdp_store_tenant_set(pdp_store *st, const pdp_tenant_change *c, pdp_tenant *out,
                     bool *created)
{
    pdp_tenant_set_arg a = {c, NULL, false, false, NULL};
    tg_err             rv;

    if (c->id == NULL || c->id[0] == '\0' || strlen(c->id) >= TG_ID_MAX ||
        (c->tier != NULL && strlen(c->tier) >= TG_ID_MAX) ||
        (c->name != NULL && strlen(c->name) >= PDP_KEY_NAME_MAX)) {
        return TG_EINVAL;
    }
    if ((a.t = malloc(sizeof(*a.t))) == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_store__write(st, pdp_store_tenant_set_txn, &a);
    if (rv != TG_OK && a.too_many) {
        rv = TG_ETOOBIG;
    }
    if (rv == TG_OK) {
        if (out != NULL) {
            *out = *a.t;
        }
        if (created != NULL) {
            *created = a.created;
        }
    }
    free(a.t);
    return rv;
}

typedef struct pdp_tenant_list_arg {
    pdp_store_tenant_fn fn;
    void               *arg;
    pdp_tenant          t;
} pdp_tenant_list_arg;

static tg_err
pdp_store_tenant_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_tenant_list_arg *a = arg;
    tg_err               rv;

    if (k->mv_size == 0 || k->mv_size >= sizeof(a->t.id)) {
        return TG_EIO;
    }
    if ((rv = pdp_tenant_decode(v, &a->t)) != TG_OK) {
        return rv;
    }
    memcpy(a->t.id, k->mv_data, k->mv_size);
    a->t.id[k->mv_size] = '\0';
    a->fn(a->arg, &a->t);
    return TG_OK;
}

tg_err
pdp_store_tenant_list(pdp_store *st, pdp_store_tenant_fn fn, void *arg)
{
    pdp_tenant_list_arg *a = malloc(sizeof(*a));
    tg_err               rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    rv     = pdp_store_scan(st, st->tenants, pdp_store_tenant_list_one, a);
    free(a);
    return rv;
}

/* ---- policy history -------------------------------------------------- */

static int
pdp_store_history_add_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_activation *a   = arg;
    MDB_cursor     *cur = NULL;
    MDB_val         k;
    MDB_val         v;
    uint8_t         key[8];
    pdp_rec_out     o;
    int             rc;

    if ((rc = mdb_cursor_open(txn, st->history, &cur)) != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    a->seq = rc == 0 ? pdp_history_seq(&k) + 1 : 1;
    for (size_t i = 0; i < 8; i++) {
        key[i] = (uint8_t)(a->seq >> (8 * (7 - i)));
    }
    o.len = 0;
    o.bad = false;
    pdp_history_encode(&o, a);
    if (o.bad) {
        return EINVAL;
    }
    k.mv_size = sizeof(key);
    k.mv_data = key;
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return mdb_put(txn, st->history, &k, &v, MDB_APPEND);
}

tg_err
pdp_store_history_add(pdp_store *st, pdp_activation *a)
{
    return pdp_store__write(st, pdp_store_history_add_txn, a);
}

typedef struct pdp_history_list_arg {
    pdp_store_history_fn fn;
    void                *arg;
    pdp_activation       a;
    bool                 first_only;
} pdp_history_list_arg;

static tg_err
pdp_store_history_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_history_list_arg *a  = arg;
    tg_err                rv = pdp_history_decode(k, v, &a->a);

    if (rv != TG_OK) {
        return rv;
    }
    if (a->fn != NULL) {
        a->fn(a->arg, &a->a);
    }
    return a->first_only ? TG_EEXIST : TG_OK; /* EEXIST: stop, no error */
}

tg_err
pdp_store_history_list(pdp_store *st, pdp_store_history_fn fn, void *arg)
{
    pdp_history_list_arg a;

    memset(&a, 0, sizeof(a));
    a.fn  = fn;
    a.arg = arg;
    return pdp_store__scan(st, st->history, true, pdp_store_history_list_one,
                              &a);
}

tg_err
pdp_store_history_last(pdp_store *st, pdp_activation *out)
{
    pdp_history_list_arg a;
    tg_err               rv;

    memset(&a, 0, sizeof(a));
    a.first_only = true;
    a.a.seq      = 0;
    rv = pdp_store__scan(st, st->history, true, pdp_store_history_list_one,
                            &a);
    if (rv != TG_OK) {
        return rv;
    }
    if (a.a.seq == 0) {
        return TG_ENOTFOUND;
    }
    *out = a.a;
    return TG_OK;
}

/* ---- usage writer ----------------------------------------------------- */

static int
pdp_store_totals_add(pdp_store *st, MDB_txn *txn, pdp_totals_kind kind,
                     const char *id, const pdp_store_item *it)
{
    char        key[TG_ID_MAX + 4];
    MDB_val     k = {pdp_totals_key(key, sizeof(key), kind, id), key};
    MDB_val     v;
    pdp_totals  t = {0, 0, 0, 0, 0};
    pdp_rec_out o;
    int         rc;

    if (id[0] == '\0') {
        return 0;
    }
    rc = mdb_get(txn, st->totals, &k, &v);
    if (rc == 0 && pdp_totals_decode(&v, &t) != TG_OK) {
        return MDB_CORRUPTED;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    t.requests += 1;
    t.prompt_tokens += it->usage.prompt_tokens;
    t.completion_tokens += it->usage.completion_tokens;
    t.cost_micro_usd += it->cost;
    if (it->usage.started_ms > t.last_ms) {
        t.last_ms = it->usage.started_ms;
    }
    o.len = 0;
    o.bad = false;
    pdp_totals_encode(&o, &t);
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return mdb_put(txn, st->totals, &k, &v, 0);
}

/* Budget spend records (see pdp_store.h). */
static size_t
pdp_budget_key(pdp_rec_out *o, const pdp_limits_spend_key *sk)
{
    uint8_t be[8];

    o->len = 0;
    o->bad = false;
    pdp_rec_str(o, sk->rule_id);
    pdp_rec_str(o, sk->scope);
    pdp_rec_uint(o, sk->code, 1);
    for (size_t i = 0; i < 8; i++) {
        be[i] = (uint8_t)((uint64_t)sk->start_ms >> (8 * (7 - i)));
    }
    pdp_rec_put(o, be, 8);
    return o->bad ? 0 : o->len;
}

static tg_err
pdp_budget_decode(const MDB_val *k, const MDB_val *v, pdp_limits_spend_key *sk,
                  int64_t *spent)
{
    pdp_rec_in in = {k->mv_data, k->mv_size, 0, false};
    uint64_t   start = 0;

    pdp_rec_get_str(&in, sk->rule_id, sizeof(sk->rule_id));
    pdp_rec_get_str(&in, sk->scope, sizeof(sk->scope));
    sk->code = (uint8_t)pdp_rec_get_uint(&in, 1);
    if (in.bad || in.len - in.off != 8) {
        return TG_EVERSION;
    }
    for (size_t i = 0; i < 8; i++) {
        start = (start << 8) | in.p[in.off + i];
    }
    sk->start_ms = (int64_t)start;
    in           = (pdp_rec_in){v->mv_data, v->mv_size, 0, false};
    if (pdp_rec_get_uint(&in, 1) < 1) {
        return TG_EVERSION;
    }
    *spent = pdp_rec_get_i64(&in);
    return in.bad ? TG_EVERSION : TG_OK;
}

/* pdp_store_alerts_mark records, for each threshold the cost took the
 * window across, that its alert fired (alerts_fired, see pdp_store.h),
 * unless it already had: sk->fired lists the new ones. */
static int
pdp_store_alerts_mark(pdp_store *st, MDB_txn *txn, pdp_limits_spend_key *sk,
                      const pdp_rec_out *bkey, int64_t before, int64_t after,
                      int64_t now_ms)
{
    uint8_t  crossed[PDP_LIMITS_THRESHOLDS_MAX];
    uint32_t n = pdp_limits_crossed(before, after, sk->limit, sk->thr,
                                    sk->nthr, crossed);

    sk->nfired      = 0;
    sk->spent_after = after;
    for (uint32_t i = 0; i < n; i++) {
        pdp_rec_out ko = *bkey;
        pdp_rec_out vo;
        MDB_val     k;
        MDB_val     v;
        int         rc;

        pdp_rec_uint(&ko, crossed[i], 1);
        if (ko.bad) {
            return EINVAL;
        }
        vo.len = 0;
        vo.bad = false;
        pdp_rec_uint(&vo, 1, 1);
        pdp_rec_uint(&vo, (uint64_t)now_ms, 8);
        pdp_rec_uint(&vo, (uint64_t)after, 8);
        pdp_rec_uint(&vo, (uint64_t)sk->limit, 8);
        k  = (MDB_val){ko.len, ko.buf};
        v  = (MDB_val){vo.len, vo.buf};
        rc = mdb_put(txn, st->alerts, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            continue; /* fired already in this window */
        }
        if (rc != 0) {
            return rc;
        }
        sk->fired[sk->nfired++] = crossed[i];
    }
    return 0;
}

static int
pdp_store_budget_add(pdp_store *st, MDB_txn *txn, pdp_limits_spend_key *sk,
                     int64_t cost, int64_t now_ms)
{
    pdp_rec_out ko;
    pdp_rec_out vo;
    MDB_val     k;
    MDB_val     v;
    int64_t     spent = 0;
    int         rc;

    if ((k.mv_size = pdp_budget_key(&ko, sk)) == 0) {
        return EINVAL;
    }
    k.mv_data = ko.buf;
    rc        = mdb_get(txn, st->budgets, &k, &v);
    if (rc == 0) {
        pdp_limits_spend_key old;
        if (pdp_budget_decode(&k, &v, &old, &spent) != TG_OK) {
            return MDB_CORRUPTED;
        }
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    vo.len = 0;
    vo.bad = false;
    pdp_rec_uint(&vo, 1, 1);
    pdp_rec_uint(&vo, (uint64_t)(spent + cost), 8);
    pdp_rec_uint(&vo, (uint64_t)now_ms, 8);
    v.mv_size = vo.len;
    v.mv_data = vo.buf;
    if ((rc = mdb_put(txn, st->budgets, &k, &v, 0)) != 0) {
        return rc;
    }
    return pdp_store_alerts_mark(st, txn, sk, &ko, spent, spent + cost,
                                 now_ms);
}

typedef struct pdp_budget_list_arg {
    pdp_store_budget_fn fn;
    void               *arg;
    int64_t             since_ms;
} pdp_budget_list_arg;

static tg_err
pdp_store_budget_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_budget_list_arg *a = arg;
    pdp_limits_spend_key sk;
    int64_t              spent = 0;

    if (pdp_budget_decode(k, v, &sk, &spent) != TG_OK) {
        return TG_OK; /* not ours: skip rather than refuse to start */
    }
    if (sk.start_ms >= a->since_ms) {
        a->fn(a->arg, &sk, spent);
    }
    return TG_OK;
}

tg_err
pdp_store_budget_list(pdp_store *st, int64_t since_ms, pdp_store_budget_fn fn,
                      void *arg)
{
    pdp_budget_list_arg a = {fn, arg, since_ms};

    return pdp_store_scan(st, st->budgets, pdp_store_budget_list_one, &a);
}

/* pdp_store__res_end marks reservation record k ended (see
 * PDP_LIMITS_RES_ENDED) using o as scratch; MDB_NOTFOUND when there is no
 * open one. */
int
pdp_store__res_end(pdp_store *st, MDB_txn *txn, MDB_val *k, pdp_rec_out *o)
{
    MDB_val v;
    int     rc = mdb_get(txn, st->reservations, k, &v);

    if (rc != 0) {
        return rc;
    }
    if (v.mv_size == 0 || v.mv_size > sizeof(o->buf) ||
        ((const uint8_t *)v.mv_data)[0] != PDP_LIMITS_RES_OPEN) {
        return MDB_NOTFOUND;
    }
    memcpy(o->buf, v.mv_data, v.mv_size);
    if (pdp_limits_record_end(o->buf, v.mv_size) != TG_OK) {
        return mdb_del(txn, st->reservations, k, NULL); /* unreadable */
    }
    v.mv_data = o->buf;
    return mdb_put(txn, st->reservations, k, &v, 0);
}

/* pdp_store_batch_txn settles a batch; reruns from scratch after a grow. */
static int
pdp_store_batch_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_rec_out *o  = malloc(sizeof(*o));
    int          rc = 0;

    if (o == NULL) {
        return ENOMEM;
    }
    for (pdp_store_item *it = arg; it != NULL; it = it->next) {
        MDB_val       k = {strlen(it->usage.request_id), it->usage.request_id};
        MDB_val       v;
        MDB_val       rk = {strlen(it->usage.reservation_id),
                            it->usage.reservation_id};
        pdp_usage_rec prev;

        if (it->op == PDP_STORE_OP_FORGET) {
            /* Expired: it holds nothing now, but a report that still
             * comes is charged to the budgets it names. */
            rc = pdp_store__res_end(st, txn, &k, o);
            if (rc != 0 && rc != MDB_NOTFOUND) {
                break;
            }
            rc = 0;
            continue;
        }
        rc = mdb_get(txn, st->usage, &k, &v);
        if (it->op == PDP_STORE_OP_RESERVE) {
            /* Settled or abandoned already (its report came first): the
             * reservation is not recorded, and the caller undoes it. */
            it->ack.duplicate = rc == 0;
            if (rc == MDB_NOTFOUND) {
                v.mv_size = it->res_len;
                v.mv_data = it->res;
                rc = mdb_put(txn, st->reservations, &k, &v, 0);
            }
            if (rc != 0) {
                break;
            }
            continue;
        }
        /* The report settles the reservation record in the same txn: a
         * settled reservation never comes back after a crash, and its
         * request still counts in its rate windows until a saved window
         * snapshot does (pdp_store_limits_save prunes it then). */
        if (rk.mv_size > 0 && rc == MDB_NOTFOUND) {
            MDB_val rv2;
            int     grc = mdb_get(txn, st->reservations, &rk, &rv2);
            if (grc == 0 && rv2.mv_size <= sizeof(o->buf) &&
                rv2.mv_size > 0 &&
                (((const uint8_t *)rv2.mv_data)[0] == PDP_LIMITS_RES_OPEN ||
                 ((const uint8_t *)rv2.mv_data)[0] == PDP_LIMITS_RES_ENDED)) {
                /* No longer held in memory (expired, released, or the
                 * PDP restarted past its TTL): the record still says which
                 * budgets the request fell under. */
                if (it->nspend == 0 && it->nspend_out != NULL &&
                    !it->usage.abandoned) {
                    it->nspend = pdp_limits_record_budget_keys(
                        rv2.mv_data, rv2.mv_size, it->spend,
                        PDP_LIMITS_BUDGETS_MAX);
                }
                memcpy(o->buf, rv2.mv_data, rv2.mv_size);
                grc = pdp_limits_record_settle(o->buf, rv2.mv_size,
                                               it->usage.prompt_tokens +
                                                   it->usage.completion_tokens) ==
                              TG_OK
                          ? mdb_put(txn, st->reservations, &rk,
                                    &(MDB_val){rv2.mv_size, o->buf}, 0)
                          : mdb_del(txn, st->reservations, &rk, NULL);
            } else if (grc == 0) {
                grc = mdb_del(txn, st->reservations, &rk, NULL);
            }
            if (grc != 0 && grc != MDB_NOTFOUND) {
                rc = grc;
                break;
            }
        }
        if (rc == 0) {
            /* A retry of a report we already hold: ack it, count nothing. */
            it->ack.duplicate = true;
            it->ack.cost_micro_usd =
                pdp_usage_decode(&v, &prev) == TG_OK ? prev.cost_micro_usd : 0;
            continue;
        }
        if (rc != MDB_NOTFOUND) {
            break;
        }
        it->ack.duplicate      = false;
        it->ack.cost_micro_usd = it->cost;
        o->len                 = 0;
        o->bad                 = false;
        pdp_usage_encode(o, &it->usage, it->cost, it->settled_ms);
        v.mv_size = o->len;
        v.mv_data = o->buf;
        if ((rc = mdb_put(txn, st->usage, &k, &v, MDB_NOOVERWRITE)) != 0) {
            break;
        }
        if (it->usage.abandoned) {
            continue; /* nothing went upstream: no totals, no spend */
        }
        if ((rc = pdp_store_totals_add(st, txn, PDP_TOTALS_KEY,
                                       it->usage.key_id, it)) != 0 ||
            (rc = pdp_store_totals_add(st, txn, PDP_TOTALS_TENANT,
                                       it->usage.tenant_id, it)) != 0) {
            break;
        }
        for (uint32_t i = 0; i < it->nspend; i++) {
            it->spend[i].nfired = 0; /* a retried txn starts over */
        }
        for (uint32_t i = 0; i < it->nspend && rc == 0 && it->cost > 0; i++) {
            rc = pdp_store_budget_add(st, txn, &it->spend[i], it->cost,
                                      it->settled_ms);
        }
        if (rc != 0) {
            break;
        }
    }
    free(o);
    return rc;
}

static void *
pdp_store_writer_main(void *arg)
{
    pdp_store *st = arg;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        pdp_store_item *batch;
        pdp_store_item *last;
        size_t          n = 1;
        int64_t         t0;
        tg_err          rv;

        while (st->head == NULL && !st->stopping) {
            pthread_cond_wait(&st->cv, &st->mu);
        }
        if (st->head == NULL) {
            break; /* stopping and drained */
        }
        /* Take everything queued (up to a cap): one fsync for all of it. */
        batch = last = st->head;
        while (last->next != NULL && n < PDP_STORE_BATCH_MAX) {
            last = last->next;
            n++;
        }
        st->head   = last->next;
        last->next = NULL;
        if (st->head == NULL) {
            st->tail = NULL;
        }
        pthread_mutex_unlock(&st->mu);

        t0 = tg_mono_us();
        /* One commit for the whole batch, no fsync: the reservations in it
         * only need to survive this process dying, so their decisions go
         * out now; the usage acks wait for the fsync below. */
        rv = pdp_store__write_nosync(st, pdp_store_batch_txn, batch);
        tg_debug("store: committed %zu item(s) in %lld us: %s", n,
                 (long long)(tg_mono_us() - t0), tg_strerror(rv));
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: reservations and forgets; pass 1: usage, synced. */
            if (pass == 1 && rv == TG_OK) {
                bool usage = false;
                for (pdp_store_item *it = batch; it != NULL && !usage;
                     it = it->next) {
                    usage = it->op == PDP_STORE_OP_USAGE;
                }
                int src = usage ? mdb_env_sync(st->env, 1) : 0;
                if (src != 0) {
                    /* Committed (a crash of this process keeps it) but
                     * maybe not on the disk: memory follows the commit,
                     * and the failing disk is said. */
                    pdp_store__log_failure(st, "fsync", src);
                }
            }
            for (pdp_store_item **pp = &batch; *pp != NULL;) {
                pdp_store_item *it = *pp;
                if ((it->op == PDP_STORE_OP_USAGE) != (pass == 1)) {
                    pp = &it->next;
                    continue;
                }
                *pp = it->next;
                if (it->nspend_out != NULL && rv == TG_OK) {
                    /* The keys may be the record's: copy them whole. */
                    *it->nspend_out = it->nspend;
                    memcpy(it->spend_out, it->spend,
                           it->nspend * sizeof(it->spend[0]));
                }
                for (uint32_t i = 0; it->spend_out != NULL && rv == TG_OK &&
                                     i < it->nspend;
                     i++) {
                    it->spend_out[i].nfired =
                        it->ack.duplicate ? 0 : it->spend[i].nfired;
                    memcpy(it->spend_out[i].fired, it->spend[i].fired,
                           sizeof(it->spend[i].fired));
                    it->spend_out[i].spent_after = it->spend[i].spent_after;
                }
                if (it->cb != NULL) {
                    it->cb(it->arg, rv, &it->ack);
                }
                free(it->res);
                free(it);
            }
        }
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

tg_err
pdp_store_usage_submit(pdp_store *st, const tg_usage *u, int64_t cost_micro_usd,
                       pdp_store_usage_cb cb, void *arg)
{
    return pdp_store_usage_submit_spend(st, u, cost_micro_usd, NULL, 0, cb,
                                        arg);
}

/* pdp_store__submit_usage queues report u with the budget keys given
 * (nspend of spend); nspend_out non-NULL: spend has room for
 * PDP_LIMITS_BUDGETS_MAX and the keys and their count are written back. */
static tg_err
pdp_store__submit_usage(pdp_store *st, const tg_usage *u, int64_t cost,
                        pdp_limits_spend_key *spend, uint32_t nspend,
                        uint32_t *nspend_out, pdp_store_usage_cb cb,
                        void *arg)
{
    pdp_store_item *it;

    if (u->request_id[0] == '\0') {
        return TG_EINVAL;
    }
    if ((it = calloc(1, sizeof(*it))) == NULL) {
        return TG_ENOMEM;
    }
    it->usage      = *u;
    it->cost       = cost;
    it->settled_ms = tg_now_ms();
    it->cb         = cb;
    it->arg        = arg;
    it->nspend     = nspend < PDP_LIMITS_BUDGETS_MAX ? nspend
                                                     : PDP_LIMITS_BUDGETS_MAX;
    if (it->nspend > 0) {
        memcpy(it->spend, spend, it->nspend * sizeof(spend[0]));
    }
    if (it->nspend > 0 || nspend_out != NULL) {
        it->spend_out = spend;
    }
    it->nspend_out = nspend_out;
    memcpy(it->ack.request_id, u->request_id, sizeof(it->ack.request_id));
    return pdp_store__enqueue(st, it);
}

tg_err
pdp_store_usage_submit_spend(pdp_store *st, const tg_usage *u,
                             int64_t cost_micro_usd,
                             pdp_limits_spend_key *spend, uint32_t nspend,
                             pdp_store_usage_cb cb, void *arg)
{
    return pdp_store__submit_usage(st, u, cost_micro_usd, spend, nspend, NULL,
                                   cb, arg);
}

tg_err
pdp_store_usage_submit_res(pdp_store *st, const tg_usage *u,
                           int64_t cost_micro_usd, pdp_limits_spend_key *spend,
                           uint32_t *nspend, pdp_store_usage_cb cb, void *arg)
{
    return pdp_store__submit_usage(st, u, cost_micro_usd, spend, *nspend,
                                   nspend, cb, arg);
}

/* pdp_store__enqueue hands it to the writer; TG_ECLOSED (it is freed)
 * when the store is closing. */
static tg_err
pdp_store__enqueue(pdp_store *st, pdp_store_item *it)
{
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        pthread_mutex_unlock(&st->mu);
        free(it->res);
        free(it);
        return TG_ECLOSED;
    }
    if (st->tail != NULL) {
        st->tail->next = it;
    } else {
        st->head = it;
    }
    st->tail = it;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return TG_OK;
}

tg_err
pdp_store_reserve_submit(pdp_store *st, const char *request_id,
                         const void *data, size_t len, pdp_store_usage_cb cb,
                         void *arg)
{
    pdp_store_item *it;
    size_t          n = strlen(request_id);

    if (n == 0 || n >= TG_REQUEST_ID_MAX || len == 0) {
        return TG_EINVAL;
    }
    if ((it = calloc(1, sizeof(*it))) == NULL ||
        (it->res = malloc(len)) == NULL) {
        free(it);
        return TG_ENOMEM;
    }
    it->op      = PDP_STORE_OP_RESERVE;
    it->res_len = len;
    memcpy(it->res, data, len);
    memcpy(it->usage.request_id, request_id, n + 1);
    memcpy(it->ack.request_id, request_id, n + 1);
    it->cb  = cb;
    it->arg = arg;
    return pdp_store__enqueue(st, it);
}

tg_err
pdp_store_reservation_forget(pdp_store *st, const char *id)
{
    pdp_store_item *it;
    size_t          n = strlen(id);

    if (n == 0 || n >= TG_REQUEST_ID_MAX) {
        return TG_EINVAL;
    }
    if ((it = calloc(1, sizeof(*it))) == NULL) {
        return TG_ENOMEM;
    }
    it->op = PDP_STORE_OP_FORGET;
    memcpy(it->usage.request_id, id, n + 1);
    return pdp_store__enqueue(st, it);
}

typedef struct pdp_store_waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            done;
    tg_err          rv;
    tg_usage_ack    ack;
} pdp_store_waiter;

static void
pdp_store_settle_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    pdp_store_waiter *w = arg;

    pthread_mutex_lock(&w->mu);
    w->rv   = rv;
    w->ack  = *ack;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

tg_err
pdp_store_usage_settle(pdp_store *st, const tg_usage *u, int64_t cost_micro_usd,
                       tg_usage_ack *ack)
{
    return pdp_store_usage_settle_spend(st, u, cost_micro_usd, NULL, 0, ack);
}

tg_err
pdp_store_usage_settle_spend(pdp_store *st, const tg_usage *u,
                             int64_t cost_micro_usd,
                             pdp_limits_spend_key *spend, uint32_t nspend,
                             tg_usage_ack *ack)
{
    pdp_store_waiter w;
    tg_err           rv;

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rv = pdp_store_usage_submit_spend(st, u, cost_micro_usd, spend, nspend,
                                      pdp_store_settle_cb, &w);
    if (rv == TG_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        rv   = w.rv;
        *ack = w.ack;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rv;
}

/* ---- usage listing ------------------------------------------------------ */

typedef struct pdp_usage_list_arg {
    pdp_store_usage_fn fn;
    void              *arg;
    tg_err             rv; /* fn's result when it stopped the walk */
    pdp_usage_rec      r;
} pdp_usage_list_arg;

static tg_err
pdp_store_usage_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_usage_list_arg *a = arg;
    size_t              n = k->mv_size;
    tg_err              rv;

    memset(&a->r, 0, sizeof(a->r));
    if ((rv = pdp_usage_decode(v, &a->r)) != TG_OK) {
        return rv;
    }
    if (n >= sizeof(a->r.usage.request_id)) {
        n = sizeof(a->r.usage.request_id) - 1;
    }
    memcpy(a->r.usage.request_id, k->mv_data, n);
    a->r.usage.request_id[n] = '\0';
    if ((a->rv = a->fn(a->arg, &a->r)) != TG_OK) {
        return TG_EEXIST; /* stops pdp_store_scan; a->rv is the answer */
    }
    return TG_OK;
}

tg_err
pdp_store_usage_list(pdp_store *st, pdp_store_usage_fn fn, void *arg)
{
    pdp_usage_list_arg *a = malloc(sizeof(*a));
    tg_err              rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    a->rv  = TG_OK;
    rv     = pdp_store_scan(st, st->usage, pdp_store_usage_list_one, a);
    if (rv == TG_OK) {
        rv = a->rv;
    }
    free(a);
    return rv;
}

/* ---- state check -------------------------------------------------------- */

tg_err
pdp_store__check_rec(const char *db, const MDB_val *k, const MDB_val *v)
{
    union {
        pdp_key              key;
        pdp_usage_rec        usage;
        pdp_totals           totals;
        pdp_tenant           tenant;
        pdp_activation       act;
        pdp_limits_spend_key spend;
    } *r = malloc(sizeof(*r));
    int64_t spent;
    tg_err  rv = TG_ENOTFOUND;

    if (r == NULL) {
        return TG_ENOMEM;
    }
    if (strcmp(db, "keys") == 0) {
        rv = pdp_key_decode(v, &r->key);
    } else if (strcmp(db, "usage") == 0) {
        rv = pdp_usage_decode(v, &r->usage);
    } else if (strcmp(db, "totals") == 0) {
        rv = pdp_totals_decode(v, &r->totals);
    } else if (strcmp(db, "tenants") == 0) {
        rv = pdp_tenant_decode(v, &r->tenant);
    } else if (strcmp(db, "policy_history") == 0) {
        rv = pdp_history_decode(k, v, &r->act);
    } else if (strcmp(db, "budgets") == 0) {
        rv = pdp_budget_decode(k, v, &r->spend, &spent);
    }
    free(r);
    return rv;
}
