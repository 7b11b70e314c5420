/* pdp_store.c - the LMDB environment: open (schema version, stale readers)
 * and close, growing the map, the write and read transactions every other
 * pdp_store_*.c file runs in, and the armed audit line. The databases
 * live in pdp_store_keys.c, _ledger.c, _admin.c and _limits.c; the writer
 * thread in pdp_store_writer.c.
 *
 * Map resizing: LMDB allows mdb_env_set_mapsize only while this process has
 * no active transaction. Every transaction (a reader's snapshot, the
 * writer's batch, an admin write) therefore runs under resize_lk held
 * shared; growing the map (on MDB_MAP_FULL) or adopting a size another
 * process chose (MDB_MAP_RESIZED) takes it exclusively. The lock prefers
 * the exclusive side so a steady stream of decisions cannot starve a resize;
 * that path is rare and short. */
#include "pdp_store_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
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

/* ---- environment ------------------------------------------------------ */

tg_err
pdp_store__rc(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return TG_OK;
    case MDB_NOTFOUND:
        return TG_ENOTFOUND;
    case MDB_KEYEXIST:
        return TG_EEXIST;
    case MDB_MAP_FULL:
        return TG_EFULL;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:
        return TG_EVERSION;
    case ENOMEM:
        return TG_ENOMEM;
    case ENOSPC:
        return TG_EFULL;
    default:
        return TG_EIO;
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

void
pdp_store__armed_amend(pdp_store *st, const char *name, uint64_t value)
{
    pdp_audit *a = pdp_store__armed.a;
    cJSON     *old;
    cJSON     *doc;
    char      *txt;

    if (pdp_store__armed.st != st || a == NULL || pdp_store__armed.done) {
        return;
    }
    old = a->detail[0] != '\0' ? cJSON_Parse(a->detail) : cJSON_CreateObject();
    doc = cJSON_CreateObject();
    if (old == NULL || doc == NULL || !cJSON_IsObject(old)) {
        goto out; /* the line keeps the detail it was armed with */
    }
    /* name first, then the rest as armed (a previous amend replaced). */
    if (cJSON_AddNumberToObject(doc, name, (double)value) == NULL) {
        goto out;
    }
    for (cJSON *m = old->child; m != NULL; m = m->next) {
        if (strcmp(m->string, name) != 0 &&
            !cJSON_AddItemToObject(doc, m->string, cJSON_Duplicate(m, true))) {
            goto out; /* never a detail with a member missing */
        }
    }
    txt = cJSON_PrintUnformatted(doc);
    if (txt != NULL && strlen(txt) < sizeof(a->detail)) {
        memcpy(a->detail, txt, strlen(txt) + 1);
    }
    cJSON_free(txt);
out:
    cJSON_Delete(old);
    cJSON_Delete(doc);
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
void
pdp_store__log_failure(pdp_store *st, const char *what, int rc)
{
    int64_t   now  = tg_mono_us() / 1000;
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
pdp_store__write_opt(pdp_store *st, pdp_store_txn_fn fn, void *arg, bool sync)
{
    for (int attempt = 0; attempt < PDP_STORE_RETRIES; attempt++) {
        MDB_txn *txn  = NULL;
        size_t   seen = pdp_store_map_size(st);
        int      rc;

        bool audited = false;

        pthread_rwlock_rdlock(&st->resize_lk);
        rc = mdb_txn_begin(st->env, NULL, 0, &txn);
        if (rc == 0) {
            st->gen_touched = false;
            /* Whether this txn logs its writes (pdp_store_txlog.c). */
            if ((rc = pdp_store__txlog_begin(st, txn)) == 0) {
                rc = pdp_store__with_audit(st, txn, fn, arg, &audited);
            }
            if (rc == 0) {
                /* Read before the commit: the next txn resets them. */
                uint64_t logged  = st->txl_last;
                bool     touched = st->gen_touched;

                rc = mdb_txn_commit(txn); /* frees txn on failure too */
                pdp_store__armed.done |= rc == 0 && audited;
                if (rc == 0) {
                    pdp_store__txlog_committed(st, logged);
                }
                if (rc == 0 && touched) {
                    pdp_store_gen_bump(st);
                }
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
        (rc = pdp_store__admin_open(st, txn)) != 0 ||
        (rc = pdp_store__lists_open(st, txn)) != 0 ||
        (rc = pdp_store__responses_open(st, txn)) != 0 ||
        (rc = pdp_store__decisions_open(st, txn)) != 0 ||
        (rc = pdp_store__repl_open(st, txn)) != 0 ||
        (rc = pdp_store__forward_open(st, txn)) != 0 ||
        (rc = pdp_store__txlog_open(st, txn)) != 0) {
        return rc; /* txlog last: it maps the others' handles */
    }
    a->upgraded = 0;
    rc          = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        a->version = PDP_STORE_SCHEMA_VERSION;
        snprintf(num, sizeof(num), "%d", PDP_STORE_SCHEMA_VERSION);
        v.mv_size = strlen(num);
        v.mv_data = num;
        return pdp_store__put(st, txn, st->meta, &k, &v, 0);
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
        return pdp_store__put(st, txn, st->meta, &k, &v, 0);
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
    rv           = pdp_store__write(st, pdp_store_init_txn, &a);
    st->txl_open = rv == TG_OK; /* every later txn reads the role */
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
                "key labels, policy history, key expiry and rotation, budget "
                "spend); older tollgate-pdp builds will "
                "now refuse it",
                st->dir, a.upgraded, PDP_STORE_SCHEMA_VERSION);
    }
    return TG_OK;
}

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
    tg_buf_init(&st->dec_body, 0);
    tg_buf_init(&st->dec_rec, 0);
    tg_buf_init(&st->dec_cp, 0);
    tg_buf_init(&st->dec_attrs, 0);
    tg_buf_init(&st->txl_ent, 0);
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
    if ((rv = pdp_store__writer_start(st)) != TG_OK) {
        snprintf(err, errlen, "store: cannot start the writer thread");
        goto out;
    }
    *out = st;
    st   = NULL;
out:
    pdp_store_close(st);
    return rv;
}

void
pdp_store_gen_attach(pdp_store *st, const char *const *urls, size_t n,
                     bool create)
{
    unsigned k = atomic_load(&st->n_gens);

    for (size_t i = 0; i < n && k < PDP_STORE_GENS_MAX; i++) {
        char   path[PATH_MAX];
        tg_err rv = tg_gen_path(urls[i], path, sizeof(path));

        if (rv == TG_EINVAL) {
            continue; /* not ipc: no data plane shares a file with us */
        }
        if (rv == TG_OK) {
            rv = tg_gen_open_rw(&st->gens[k], path, create);
        }
        if (rv == TG_ENOTFOUND && !create) {
            continue; /* no PDP made it: no data plane reads it */
        }
        if (rv != TG_OK) {
            atomic_store(&st->gen_failed, true);
            tg_warn("store: cannot open the state generation file for %s "
                    "(%s%s%s); %s. Check that this user may write beside "
                    "the socket.",
                    urls[i], tg_strerror(rv), rv == TG_ESYS ? ": " : "",
                    rv == TG_ESYS ? strerror(errno) : "",
                    create ? "data planes on this host will not reuse "
                             "decisions"
                           : "data planes reusing decisions see this "
                             "change only when their reuse window ends "
                             "(dataplane.decision_reuse_ms)");
            continue;
        }
        atomic_store(&st->n_gens, ++k);
    }
}

bool
pdp_store_gen_ok(pdp_store *st)
{
    return !atomic_load(&st->gen_failed);
}

void
pdp_store_gen_bump(pdp_store *st)
{
    unsigned n = atomic_load(&st->n_gens);

    for (unsigned i = 0; i < n; i++) {
        tg_gen_bump(st->gens[i]);
    }
}

void
pdp_store_close(pdp_store *st)
{
    if (st == NULL) {
        return;
    }
    pdp_store__writer_stop(st);
    for (unsigned i = 0; i < atomic_load(&st->n_gens); i++) {
        tg_gen_close(st->gens[i]);
    }
    if (st->env != NULL) {
        mdb_env_close(st->env);
    }
    if (st->lk_init) {
        pthread_rwlock_destroy(&st->resize_lk);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
    }
    tg_buf_fini(&st->dec_body);
    tg_buf_fini(&st->dec_rec);
    tg_buf_fini(&st->dec_cp);
    tg_buf_fini(&st->dec_attrs);
    tg_buf_fini(&st->txl_ent);
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

tg_err
pdp_store__get(pdp_store_reader *rd, MDB_dbi dbi, const void *key, size_t klen,
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
pdp_store__scan(pdp_store *st, MDB_dbi dbi, bool backwards,
                pdp_store_scan_fn fn, void *arg)
{
    MDB_cursor_op     first = backwards ? MDB_LAST : MDB_FIRST;
    MDB_cursor_op     next  = backwards ? MDB_PREV : MDB_NEXT;
    pdp_store_reader *rd    = NULL;
    MDB_cursor       *cur   = NULL;
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

int
pdp_store__next_seq(MDB_txn *txn, MDB_dbi dbi, uint64_t *seq)
{
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    int         rc = mdb_cursor_open(txn, dbi, &cur);

    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    *seq = rc == 0 ? pdp_store__seq_of(&k) + 1 : 1;
    return 0;
}
