/* test_lmdb.c - common.lmdb: a truncated or damaged LMDB file is refused
 * with a message naming it (never SIGBUS: without the check, opening a
 * truncated copy and reading it through LMDB kills the process), a page
 * overwritten in the middle is found and named by its database without
 * LMDB reading it, and a sound file passes. */
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_lmdb.h"
#include "tg_unit.h"

#define PSIZE 4096 /* LMDB's page size here: the OS page size */
#define NBIG 2000  /* records in "big": dozens of leaf pages */
#define NSMALL 3   /* records in "small": one page */

/* make_env writes an environment with two named databases in one txn
 * (so no page of the file is a stale copy) and returns its directory. */
static const char *
make_env(void)
{
    static char dir[512];
    MDB_env    *env;
    MDB_txn    *txn;
    MDB_dbi     big;
    MDB_dbi     small;
    char        key[32];
    char        val[100];

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("lmdb"));
    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    mdb_env_set_mapsize(env, 16u << 20);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, dir, 0, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, "big", MDB_CREATE, &big), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, "small", MDB_CREATE, &small), 0);
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < NBIG + NSMALL; i++) {
        MDB_val k = {0, key};
        MDB_val v = {sizeof(val), val};
        k.mv_size = (size_t)snprintf(key, sizeof(key), "%s-%06d",
                                     i < NBIG ? "big" : "small", i);
        CU_ASSERT_EQUAL_FATAL(mdb_put(txn, i < NBIG ? big : small, &k, &v, 0),
                              0);
    }
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return dir;
}

/* copy_env copies dir's data.mdb (only) into a fresh directory. */
static const char *
copy_env(const char *dir)
{
    static char to[512];
    char        path[600];
    char        buf[65536];
    ssize_t     n;
    int         in;
    int         out;

    snprintf(to, sizeof(to), "%s", tg_unit_tmpdir("lmdb-copy"));
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    in = open(path, O_RDONLY);
    snprintf(path, sizeof(path), "%s/data.mdb", to);
    out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        CU_ASSERT_EQUAL_FATAL(write(out, buf, (size_t)n), n);
    }
    close(in);
    close(out);
    return to;
}

static off_t
file_size(const char *dir)
{
    char        path[600];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    return sb.st_size;
}

static void
write_at(const char *dir, off_t at, int byte, size_t n)
{
    char  path[600];
    char *buf = malloc(n);
    int   fd;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    fd = open(path, O_WRONLY);
    CU_ASSERT_FATAL(fd >= 0 && buf != NULL);
    for (size_t i = 0; i < n; i++) {
        buf[i] = byte < 0 ? (char)(i * 131 + 7) : (char)byte; /* garbage */
    }
    CU_ASSERT_EQUAL(pwrite(fd, buf, n, at), (ssize_t)n);
    close(fd);
    free(buf);
}

/* big_leaf finds a leaf page of "big" past the middle of the file (every
 * page is live: the file was written in one txn). */
static off_t
big_leaf(const char *dir)
{
    char          path[600];
    unsigned char pg[64];
    off_t         size = file_size(dir);
    int           fd;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    for (off_t p = size / PSIZE / 2; p < size / PSIZE; p++) {
        unsigned short flags;
        unsigned short first;
        unsigned char  node[16];
        CU_ASSERT_FATAL(pread(fd, pg, sizeof(pg), p * PSIZE) == sizeof(pg));
        memcpy(&flags, pg + 10, 2);
        memcpy(&first, pg + 16, 2);
        if (flags != 0x02 || first > PSIZE - sizeof(node) ||
            pread(fd, node, sizeof(node), p * PSIZE + first) != sizeof(node) ||
            memcmp(node + 8, "big-", 4) != 0) {
            continue;
        }
        close(fd);
        return p;
    }
    close(fd);
    CU_FAIL_FATAL("no leaf page of big past the middle of the file");
    return 0;
}

typedef struct seen {
    int      trees;
    int      damaged;
    uint64_t big_entries;
    char     damaged_name[TG_LMDB_NAME_MAX];
    char     problem[TG_LMDB_PROBLEM_MAX];
} seen;

static void
seen_tree(void *arg, const tg_lmdb_tree *t)
{
    seen *s = arg;

    s->trees++;
    if (strcmp(t->name, "big") == 0) {
        s->big_entries = t->entries;
    }
    if (t->damaged) {
        s->damaged++;
        snprintf(s->damaged_name, sizeof(s->damaged_name), "%s", t->name);
        snprintf(s->problem, sizeof(s->problem), "%s", t->problem);
    }
}

typedef struct read_seen {
    uint64_t records; /* given to rec_fn */
    uint64_t big;     /* read from "big" (db_fn) */
    uint64_t small;   /* read from "small" (db_fn) */
    bool     big_read;
    bool     big_damaged;
    bool     refuse; /* rec_fn refuses the first record of "small" */
    int      small_seen;
} read_seen;

static tg_err
read_rec(void *arg, const char *db, const void *key, size_t klen,
         const void *val, size_t vlen)
{
    read_seen *r = arg;

    (void)key;
    (void)klen;
    (void)val;
    CU_ASSERT_EQUAL(vlen, 100);
    r->records++;
    if (strcmp(db, "small") == 0 && r->small_seen++ == 0 && r->refuse) {
        return TG_ECORRUPT;
    }
    return TG_OK;
}

static void
read_db(void *arg, const tg_lmdb_db_report *d)
{
    read_seen *r = arg;

    if (strcmp(d->name, "big") == 0) {
        r->big         = d->records;
        r->big_read    = d->read;
        r->big_damaged = d->damaged;
    } else if (strcmp(d->name, "small") == 0) {
        r->small = d->records;
        CU_ASSERT_EQUAL(d->bad, r->refuse ? 1u : 0u);
    }
}

static void
test_sound_file_passes(void)
{
    const char *dir       = make_env();
    char        err[1024] = "";
    seen        s;
    read_seen   r = {0, 0, 0, false, false, false, 0};

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(tg_lmdb_check_file(dir, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(tg_lmdb_verify(dir, 0, seen_tree, &s, err, sizeof(err)),
                    TG_OK);
    CU_ASSERT_EQUAL(s.trees, 4); /* free pages, main, big, small */
    CU_ASSERT_EQUAL(s.damaged, 0);
    CU_ASSERT_EQUAL(s.big_entries, NBIG);
    CU_ASSERT_EQUAL(
        tg_lmdb_read_all(dir, read_rec, read_db, &r, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(r.records, NBIG + NSMALL);
    CU_ASSERT_EQUAL(r.big, NBIG);
    CU_ASSERT_EQUAL(r.small, NSMALL);
    CU_ASSERT(r.big_read);
}

static tg_err
count_rec(void *arg, const char *db, const void *key, size_t klen,
          const void *val, size_t vlen)
{
    (void)db;
    (void)key;
    (void)klen;
    (void)val;
    CU_ASSERT_EQUAL(vlen, 16);
    (*(uint64_t *)arg)++;
    return TG_OK;
}

static void
count_db(void *arg, const tg_lmdb_db_report *d)
{
    (void)arg;
    CU_ASSERT(!d->damaged);
}

/* Duplicates (MDB_DUPSORT, MDB_DUPFIXED) live in sub-pages and sub-trees:
 * a sound file of them passes too. */
static void
test_duplicates_pass(void)
{
    const char *dir       = tg_unit_tmpdir("lmdb-dup");
    char        err[1024] = "";
    MDB_env    *env;
    MDB_txn    *txn;
    MDB_dbi     dups[2];
    seen        s;
    uint64_t    n = 0;

    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, dir, 0, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CU_ASSERT_EQUAL_FATAL(
        mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups[0]), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, "fixed",
                                       MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED,
                                       &dups[1]),
                          0);
    for (int d = 0; d < 2; d++) {
        /* Key "few": a sub-page; key "many": a sub-tree of its own. */
        for (int i = 0; i < 3 + 1500; i++) {
            char    val[16];
            MDB_val k = {i < 3 ? 3 : 4, i < 3 ? "few" : "many"};
            MDB_val v = {sizeof(val), val};
            snprintf(val, sizeof(val), "%015d", i);
            CU_ASSERT_EQUAL_FATAL(mdb_put(txn, dups[d], &k, &v, 0), 0);
        }
    }
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(tg_lmdb_verify(dir, 0, seen_tree, &s, err, sizeof(err)),
                    TG_OK);
    CU_ASSERT_EQUAL(s.trees, 4);
    CU_ASSERT_EQUAL(s.damaged, 0);
    if (s.damaged) {
        fprintf(stderr, "%s: %s\n", s.damaged_name, s.problem);
    }
    CU_ASSERT_EQUAL(
        tg_lmdb_read_all(dir, count_rec, count_db, &n, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_EQUAL(n, 2 * (3 + 1500));
}

static void
test_absent_file_is_a_new_env(void)
{
    const char *dir = tg_unit_tmpdir("lmdb-none");
    char        err[1024];
    seen        s;

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(tg_lmdb_check_file(dir, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(tg_lmdb_verify(dir, 0, seen_tree, &s, err, sizeof(err)),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(s.trees, 0);
}

/* refused checks that dir's file is refused by both checks, with a
 * message that names it and holds want. */
static void
refused(const char *dir, const char *want)
{
    char err[1024] = "";
    char path[600];
    seen s;

    memset(&s, 0, sizeof(s));
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    CU_ASSERT_EQUAL(tg_lmdb_check_file(dir, err, sizeof(err)), TG_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "restore it from a backup"));
    if (strstr(err, want) == NULL) {
        fprintf(stderr, "message: %s (wanted \"%s\")\n", err, want);
    }
    CU_ASSERT_EQUAL(tg_lmdb_verify(dir, 0, seen_tree, &s, err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_EQUAL(s.trees, 0);
}

static void
test_truncated_file_refused(void)
{
    const char *dir = make_env();
    const char *cp  = copy_env(dir);
    off_t       size;
    char        want[128];

    size = file_size(cp);
    CU_ASSERT_FATAL(size > 8 * PSIZE);
    /* Half: both meta pages are intact and say the file is longer. */
    {
        char path[600];
        snprintf(path, sizeof(path), "%s/data.mdb", cp);
        CU_ASSERT_EQUAL_FATAL(truncate(path, size / 2), 0);
        snprintf(want, sizeof(want),
                 "truncated (%lld bytes, LMDB needs at least %lld)",
                 (long long)(size / 2), (long long)size);
        refused(cp, want);
        /* Shorter than the two meta pages. */
        CU_ASSERT_EQUAL_FATAL(truncate(path, PSIZE + 100), 0);
        refused(cp, "truncated");
        CU_ASSERT_EQUAL_FATAL(truncate(path, 0), 0);
        refused(cp, "empty (0 bytes)");
    }
}

static void
test_damaged_meta_refused(void)
{
    const char *dir = make_env();
    const char *cp  = copy_env(dir);

    write_at(cp, 0, 0, PSIZE); /* meta page 0 zero-filled */
    refused(cp, "meta page 0");
    cp = copy_env(dir);
    write_at(cp, PSIZE, 0, PSIZE); /* meta page 1 zero-filled */
    refused(cp, "meta page 1 is damaged");
    cp = copy_env(dir);
    write_at(cp, 16, 0x5a, 4); /* the magic number of meta page 0 */
    refused(cp, "no LMDB magic number");
}

static void
test_damaged_page_found_and_named(void)
{
    const char      *dir     = make_env();
    static const int fills[] = {0, 0xff, -1}; /* zeros, ones, garbage */

    for (size_t i = 0; i < sizeof(fills) / sizeof(*fills); i++) {
        const char *cp        = copy_env(dir);
        off_t       pg        = big_leaf(cp);
        char        err[1024] = "";
        char        at[64];
        seen        s;
        read_seen   r = {0, 0, 0, false, false, true, 0};

        memset(&s, 0, sizeof(s));
        write_at(cp, pg * PSIZE, fills[i], PSIZE);
        /* The cheap open check reads the meta pages only. */
        CU_ASSERT_EQUAL(tg_lmdb_check_file(cp, err, sizeof(err)), TG_OK);
        CU_ASSERT_EQUAL(tg_lmdb_verify(cp, 0, seen_tree, &s, err, sizeof(err)),
                        TG_ECORRUPT);
        CU_ASSERT_EQUAL(s.trees, 4);
        CU_ASSERT_EQUAL(s.damaged, 1);
        CU_ASSERT_STRING_EQUAL(s.damaged_name, "big");
        snprintf(at, sizeof(at), "page %lld ", (long long)pg);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.problem, at));
        CU_ASSERT(s.big_entries < NBIG);
        /* Reading everything skips "big" (LMDB would abort or SIGBUS on
         * it) and still reads "small"; rec_fn's refusal is counted. */
        CU_ASSERT_EQUAL(
            tg_lmdb_read_all(cp, read_rec, read_db, &r, err, sizeof(err)),
            TG_ECORRUPT);
        CU_ASSERT(!r.big_read);
        CU_ASSERT(r.big_damaged);
        CU_ASSERT_EQUAL(r.small, NSMALL);
        CU_ASSERT_EQUAL(r.records, NSMALL);
    }
}

static void
test_record_past_its_page_found(void)
{
    const char *dir = make_env();
    const char *cp  = copy_env(dir);
    off_t       pg  = big_leaf(cp);
    char        err[1024];
    seen        s;

    memset(&s, 0, sizeof(s));
    /* The page header stays; its first node offset points past the end. */
    write_at(cp, pg * PSIZE + 16, 0xff, 2);
    CU_ASSERT_EQUAL(tg_lmdb_verify(cp, 0, seen_tree, &s, err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_STRING_EQUAL(s.damaged_name, "big");
    CU_ASSERT_PTR_NOT_NULL(strstr(s.problem, "outside its page"));
}

static const tg_unit_case cases[] = {
    {"sound_file_passes", test_sound_file_passes},
    {"duplicates_pass", test_duplicates_pass},
    {"absent_file_is_a_new_env", test_absent_file_is_a_new_env},
    {"truncated_file_refused", test_truncated_file_refused},
    {"damaged_meta_refused", test_damaged_meta_refused},
    {"damaged_page_found_and_named", test_damaged_page_found_and_named},
    {"record_past_its_page_found", test_record_past_its_page_found},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("common.lmdb", cases);
}
