/* tg_lmdb.h - checks an LMDB data file (<dir>/data.mdb) by reading it with
 * pread, never through a map, so that a truncated or damaged file is
 * refused with a message instead of killing the process: LMDB maps the
 * whole file and trusts it, so a page past the end of a truncated file
 * raises SIGBUS, and a garbled page makes LMDB 0.9 assert (abort), wander
 * off the page or SIGBUS while a cursor walks it.
 *
 * Both Tollgate environments (the PDP's state directory, the data plane's
 * usage spool) call tg_lmdb_check_file right before mdb_env_open; `tollgate-pdp
 * state check` reads them with tg_lmdb_read_all, which runs tg_lmdb_verify
 * over every B-tree before it reads any record through LMDB. Knows the
 * on-disk format of LMDB 0.9 (data version 1) as written by a 64-bit build
 * on the same machine. Thread-safe: no shared state; never writes. */
#ifndef TG_LMDB_H
#define TG_LMDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

/* Names tg_lmdb_verify gives LMDB's own two trees. */
#define TG_LMDB_FREE_DB "(free pages)"
#define TG_LMDB_MAIN_DB "(main)"
#define TG_LMDB_NAME_MAX 256
#define TG_LMDB_PROBLEM_MAX 256

/* tg_lmdb_check_file checks <dir>/data.mdb before it is opened: both meta
 * pages are valid (LMDB refuses a file with one damaged meta page anyway),
 * and the file is long enough for every page the newest meta page says is
 * in use. It reads the two meta pages only, so it is cheap enough for
 * every open; damage inside the file is tg_lmdb_verify's job.
 * TG_OK when the file is absent (a new environment) or passes.
 * TG_ECORRUPT when it is empty, truncated, not an LMDB file or has a
 * damaged meta page; TG_EVERSION when another LMDB data format wrote it;
 * TG_ESYS when it cannot be read. On an error err names the file, says
 * what is wrong and what to do. */
tg_err tg_lmdb_check_file(const char *dir, char *err, size_t errlen);

/* What tg_lmdb_verify found in one B-tree. */
typedef struct tg_lmdb_tree {
    /* The database name as stored (what mdb_dbi_open takes), or
     * TG_LMDB_FREE_DB / TG_LMDB_MAIN_DB for LMDB's own trees. */
    char     name[TG_LMDB_NAME_MAX];
    uint64_t entries; /* records found in its leaf pages */
    uint64_t pages;   /* pages it uses (branch, leaf, overflow) */
    bool     damaged; /* reading it through LMDB is not safe */
    char     problem[TG_LMDB_PROBLEM_MAX]; /* when damaged: where, what */
} tg_lmdb_tree;

/* Borrows t only during the call. */
typedef void (*tg_lmdb_tree_fn)(void *arg, const tg_lmdb_tree *t);

/* tg_lmdb_verify walks every page of every B-tree of <dir>/data.mdb as of
 * the snapshot that transaction txnid committed (0: the newest one; give a
 * read txn's mdb_txn_id to check exactly what that txn reads, its pages
 * then cannot change underneath). Each page must be where its parent
 * points, of the right kind and depth, and hold nodes, keys and data that
 * stay inside it; overflow pages must lie inside the file. fn is called
 * for the free-page tree, the main tree, then each named database in
 * name order; a database whose record in the main tree cannot be read is
 * not seen at all (the main tree is then damaged).
 * TG_OK when every tree is intact; TG_ECORRUPT when one is damaged (fn has
 * said which) or the file as a whole is refused (err says why, as
 * tg_lmdb_check_file would); TG_ENOTFOUND when there is no data.mdb;
 * TG_EAGAIN when neither meta page holds txnid any more (a writer
 * committed twice since: begin a new txn and retry); TG_ENOMEM, TG_ESYS
 * (err says why). */
tg_err tg_lmdb_verify(const char *dir, uint64_t txnid, tg_lmdb_tree_fn fn,
                      void *arg, char *err, size_t errlen);

/* One database as tg_lmdb_read_all saw it. */
typedef struct tg_lmdb_db_report {
    const char *name;    /* as stored, or TG_LMDB_FREE_DB / TG_LMDB_MAIN_DB */
    uint64_t    records; /* read through LMDB; when not read: counted by
                            the page walk, up to any damage */
    uint64_t    bad;     /* records rec_fn refused */
    bool        read;    /* its records went through rec_fn */
    bool        damaged; /* some records could not be read */
    const char *problem; /* when damaged: where and what */
} tg_lmdb_db_report;

/* rec_fn judges one record: TG_OK, or why it is bad. Borrows every
 * pointer only during the call (they point into LMDB's map). */
typedef tg_err (*tg_lmdb_rec_fn)(void *arg, const char *db, const void *key,
                                 size_t klen, const void *val, size_t vlen);
typedef void (*tg_lmdb_db_fn)(void *arg, const tg_lmdb_db_report *r);

/* tg_lmdb_read_all reads every record of the environment in dir without
 * writing to data.mdb: tg_lmdb_check_file, then mdb_env_open read-only
 * (beside a running writer is fine), then in one read txn tg_lmdb_verify
 * of exactly that txn's snapshot, and only then a cursor over each named
 * database found intact, calling rec_fn for every record (databases in
 * name order, records in key order). A database the page walk found
 * damaged is not read through LMDB (that could abort or SIGBUS); when the
 * main tree is damaged no named database is read. db_fn is called once
 * per tree, after its records: LMDB's own two trees first (never given to
 * rec_fn).
 * TG_OK when every tree is intact and rec_fn took every record;
 * TG_ECORRUPT when anything is damaged or refused (db_fn said what; or
 * err, when the file as a whole is refused and db_fn was never called);
 * TG_ENOTFOUND when dir holds no data.mdb; TG_EIO when LMDB cannot open
 * it; TG_ENOMEM, TG_ESYS. err says why on every error but TG_ECORRUPT
 * with db_fn called. */
tg_err tg_lmdb_read_all(const char *dir, tg_lmdb_rec_fn rec_fn,
                        tg_lmdb_db_fn db_fn, void *arg, char *err,
                        size_t errlen);

#endif
