/* pdp_store_txcopy.c - the copy of a whole store a standby starts from
 * (pdp_txlog_copy) and installing it in a state directory
 * (pdp_txlog_install): pdp_txlog.h. The log itself is
 * pdp_store_txlog.c. Thread-safe like the rest of the store. */
#include "pdp_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pdp_txlog.h"
#include "tg_lmdb.h"
#include "tg_log.h"

/* pdp_txcopy_file_head checks that the LMDB file at path (a copy:
 * read-only and without a lock file, nothing else opens it) holds a meta
 * database (TG_ENOTFOUND: it does not) and, head not NULL, reads the head
 * of its log. */
static tg_err
pdp_txcopy_file_head(const char *path, uint64_t *head)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi  meta;
    MDB_dbi  txlog;
    int      rc;

    if ((rc = mdb_env_create(&env)) == 0 &&
        (rc = mdb_env_set_maxdbs(env, PDP_STORE_MAX_DBS)) == 0 &&
        (rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK,
                           0600)) == 0 &&
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) == 0 &&
        (rc = mdb_dbi_open(txn, "meta", 0, &meta)) == 0 && head != NULL &&
        (rc = mdb_dbi_open(txn, "txlog", 0, &txlog)) == 0) {
        rc = pdp_store__txlog_head_in(txn, txlog, meta, head, NULL);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (env != NULL) {
        mdb_env_close(env);
    }
    return rc == MDB_CORRUPTED ? TG_ECORRUPT : pdp_store__rc(rc);
}

tg_err
pdp_txlog_copy(pdp_store *st, int fd, uint64_t *head)
{
    char path[64];
    int  rc = MDB_MAP_RESIZED;

    for (int attempt = 0; attempt < PDP_STORE_RETRIES && rc == MDB_MAP_RESIZED;
         attempt++) {
        pdp_store_reader *rd = NULL;

        /* The copy's read txn is a txn of this process: no resize under
         * it (a writer that must grow the map waits for the copy). */
        pthread_rwlock_rdlock(&st->resize_lk);
        rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
        pthread_rwlock_unlock(&st->resize_lk);
        if (rc != MDB_MAP_RESIZED) {
            break;
        }
        /* Another process grew the map: a read adopts its size. */
        if (pdp_store_reader_create(st, &rd) == TG_OK &&
            pdp_store_read_begin(rd) == TG_OK) {
            pdp_store_read_end(rd);
        }
        pdp_store_reader_destroy(rd);
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            return TG_ESYS;
        }
    }
    if (rc != 0) {
        tg_error("store: cannot copy %s: %s", st->dir, mdb_strerror(rc));
        return pdp_store__rc(rc);
    }
    /* The head as of the copy's own read txn, which only the copy knows
     * (a head read before or after could have moved): read it from the
     * file just written, through the descriptor's path. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return pdp_txcopy_file_head(path, head);
}

static void
pdp_txcopy_tree_seen(void *arg, const tg_lmdb_tree *t)
{
    (void)arg;
    (void)t;
}

/* pdp_txcopy_verify walks every page of the copy at path before LMDB maps
 * it (a cut or damaged file is SIGBUS or an assert in LMDB): through a
 * hard link named data.mdb in a directory of its own beside dir's store
 * (on dir's filesystem, where the rename must go too). TG_EPROTO when the
 * copy is refused; TG_ESYS (err says why) when it cannot be checked. */
static tg_err
pdp_txcopy_verify(const char *dir, const char *path, char *err, size_t errlen)
{
    char   stage[4096];
    char   link_path[4200];
    char   why[512];
    tg_err rv;

    if ((size_t)snprintf(stage, sizeof(stage), "%s/.txlog-install-XXXXXX",
                         dir) >= sizeof(stage)) {
        snprintf(err, errlen, "%s: path too long", dir);
        return TG_EINVAL;
    }
    if (mkdtemp(stage) == NULL) {
        snprintf(err, errlen, "cannot make a directory in %s: %s", dir,
                 strerror(errno));
        return TG_ESYS;
    }
    snprintf(link_path, sizeof(link_path), "%s/data.mdb", stage);
    if (link(path, link_path) != 0) {
        snprintf(err, errlen,
                 "cannot link %s into %s (the copy must be on "
                 "the state directory's filesystem): %s",
                 path, dir, strerror(errno));
        rmdir(stage);
        return TG_ESYS;
    }
    rv = tg_lmdb_verify(stage, 0, pdp_txcopy_tree_seen, NULL, why, sizeof(why));
    unlink(link_path);
    rmdir(stage);
    if (rv != TG_OK) {
        snprintf(err, errlen, "%s: refused: %s", path, why);
    }
    if (rv == TG_ECORRUPT || rv == TG_EVERSION || rv == TG_EAGAIN) {
        return TG_EPROTO;
    }
    return rv;
}

/* pdp_txcopy_fsync_path fsyncs the file or directory at path. */
static int
pdp_txcopy_fsync_path(const char *path, bool dir)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
    int rc;

    if (fd < 0) {
        return -1;
    }
    rc = fsync(fd);
    close(fd);
    return rc;
}

tg_err
pdp_txlog_install(const char *dir, const char *path, char *err, size_t errlen)
{
    char   data[4096];
    tg_err rv;

    err[0] = '\0';
    if ((size_t)snprintf(data, sizeof(data), "%s/data.mdb", dir) >=
        sizeof(data)) {
        snprintf(err, errlen, "%s: path too long", dir);
        return TG_EINVAL;
    }
    rv = pdp_txcopy_verify(dir, path, err, errlen);
    if (rv == TG_OK && (rv = pdp_txcopy_file_head(path, NULL)) != TG_OK) {
        snprintf(err, errlen, "%s: not a PDP store (%s)", path,
                 rv == TG_ENOTFOUND ? "no meta database" : tg_strerror(rv));
        rv = TG_EPROTO;
    }
    if (rv == TG_EPROTO) {
        unlink(path);
        return rv;
    }
    if (rv != TG_OK) {
        return rv;
    }
    if (pdp_txcopy_fsync_path(path, false) != 0 || rename(path, data) != 0 ||
        pdp_txcopy_fsync_path(dir, true) != 0) {
        snprintf(err, errlen, "cannot install %s as %s: %s", path, data,
                 strerror(errno));
        return TG_ESYS;
    }
    return TG_OK;
}
