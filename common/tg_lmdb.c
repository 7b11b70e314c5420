/* tg_lmdb.c - reads LMDB's on-disk format directly (see mdb.c of LMDB
 * 0.9: MDB_page, MDB_meta, MDB_db, MDB_node). Every read is a pread into
 * our own buffer and every offset is checked against the page or the file
 * before it is used, so no input makes this code read out of bounds.
 * Recursion is bounded by LMDB's own depth limit (CURSOR_STACK, 32) and
 * every walk by a page budget, so a tree that loops ends too. */
#include "tg_lmdb.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

_Static_assert(sizeof(size_t) == 8 && sizeof(void *) == 8,
               "tg_lmdb reads the layout a 64-bit LMDB build writes");

/* The layout, 64-bit. A page starts with a 16-byte header: u64 pgno,
 * u16 pad, u16 flags, then u16 lower and u16 upper (the free space between
 * the node offsets and the nodes) or, on an overflow page, u32 pages. */
#define TG_LMDB_MAGIC 0xBEEFC0DEu
#define TG_LMDB_DATA_VERSION 1u
#define TG_LMDB_HDR 16
#define TG_LMDB_P_BRANCH 0x01
#define TG_LMDB_P_LEAF 0x02
#define TG_LMDB_P_OVERFLOW 0x04
#define TG_LMDB_P_META 0x08
#define TG_LMDB_P_LEAF2 0x20
#define TG_LMDB_P_SUBP 0x40
/* MDB_meta follows the header of pages 0 and 1: u32 magic, u32 version,
 * u64 fixed-map address, u64 map size, MDB_db free, MDB_db main,
 * u64 last used page, u64 txnid. The free tree's md_pad holds the page
 * size, its md_flags the environment's flags. */
#define TG_LMDB_OFF_MAGIC 16
#define TG_LMDB_OFF_VERSION 20
#define TG_LMDB_OFF_DBS 40
#define TG_LMDB_OFF_LAST_PG 136
#define TG_LMDB_OFF_TXNID 144
#define TG_LMDB_META_END 152
/* MDB_db: u32 pad, u16 flags, u16 depth, u64 branch pages, u64 leaf pages,
 * u64 overflow pages, u64 entries, u64 root (all ones: empty). */
#define TG_LMDB_DB_SIZE 48
#define TG_LMDB_DUPSORT 0x04
#define TG_LMDB_NO_PAGE UINT64_MAX
/* MDB_node: u16 lo, u16 hi, u16 flags, u16 key size, the key, the data.
 * Branch: lo | hi << 16 | flags << 32 is the child page. Leaf: lo | hi << 16
 * is the data size; the data is an overflow page number (BIGDATA), an
 * MDB_db (SUBDATA), a sub-page of duplicates (DUPDATA) or the value. */
#define TG_LMDB_NODE 8
#define TG_LMDB_F_BIGDATA 0x01
#define TG_LMDB_F_SUBDATA 0x02
#define TG_LMDB_F_DUPDATA 0x04
#define TG_LMDB_DEPTH_MAX 32 /* CURSOR_STACK */
#define TG_LMDB_PSIZE_MIN 512
#define TG_LMDB_PSIZE_MAX 65536

#define TG_LMDB_ADVICE                                                         \
    ": restore it from a backup (`tollgate-pdp state check [--spool DIR]` "    \
    "verifies the copy), or move it aside to start empty (losing what it "     \
    "held)"

typedef struct tg_lmdb_db {
    uint32_t pad;
    uint16_t flags;
    uint16_t depth;
    uint64_t entries;
    uint64_t root;
} tg_lmdb_db;

typedef struct tg_lmdb_meta {
    bool       ok;
    bool       other_format; /* a valid LMDB meta of another data version */
    char       why[96];      /* when not ok */
    uint32_t   version;
    uint32_t   psize;
    uint64_t   last_pg;
    uint64_t   txnid;
    tg_lmdb_db dbs[2]; /* free, main */
} tg_lmdb_meta;

typedef struct tg_lmdb_file {
    char         path[4096];
    int          fd;
    uint64_t     size;
    uint32_t     psize;
    tg_lmdb_meta meta; /* the snapshot being read */
} tg_lmdb_file;

typedef struct tg_lmdb_named {
    char       name[TG_LMDB_NAME_MAX];
    tg_lmdb_db db;
} tg_lmdb_named;

typedef struct tg_lmdb_walk {
    tg_lmdb_file  *f;
    tg_lmdb_tree  *t;      /* the tree being walked */
    uint64_t       budget; /* pages it may still visit: a loop ends */
    bool           main;   /* the main tree: SUBDATA nodes name databases */
    bool           in_dup; /* in a tree of one key's duplicates */
    tg_lmdb_named *named;  /* found in the main tree */
    size_t         nnamed;
    size_t         capnamed;
    bool           nomem;
} tg_lmdb_walk;

static uint16_t
tg_lmdb_u16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t
tg_lmdb_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t
tg_lmdb_u64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static void
tg_lmdb_db_parse(const uint8_t *p, tg_lmdb_db *db)
{
    db->pad     = tg_lmdb_u32(p);
    db->flags   = tg_lmdb_u16(p + 4);
    db->depth   = tg_lmdb_u16(p + 6);
    db->entries = tg_lmdb_u64(p + 32);
    db->root    = tg_lmdb_u64(p + 40);
}

/* tg_lmdb_meta_parse reads meta page pgno from the n bytes at pg. */
static void
tg_lmdb_meta_parse(const uint8_t *pg, size_t n, uint64_t pgno, tg_lmdb_meta *m)
{
    memset(m, 0, sizeof(*m));
    if (n < TG_LMDB_META_END) {
        snprintf(m->why, sizeof(m->why), "missing");
        return;
    }
    if (tg_lmdb_u64(pg) != pgno ||
        (tg_lmdb_u16(pg + 10) & TG_LMDB_P_META) == 0) {
        snprintf(m->why, sizeof(m->why), "not a meta page");
        return;
    }
    if (tg_lmdb_u32(pg + TG_LMDB_OFF_MAGIC) != TG_LMDB_MAGIC) {
        snprintf(m->why, sizeof(m->why), "no LMDB magic number");
        return;
    }
    m->version = tg_lmdb_u32(pg + TG_LMDB_OFF_VERSION);
    if (m->version != TG_LMDB_DATA_VERSION) {
        m->other_format = true;
        snprintf(m->why, sizeof(m->why), "LMDB data format %" PRIu32,
                 m->version);
        return;
    }
    tg_lmdb_db_parse(pg + TG_LMDB_OFF_DBS, &m->dbs[0]);
    tg_lmdb_db_parse(pg + TG_LMDB_OFF_DBS + TG_LMDB_DB_SIZE, &m->dbs[1]);
    m->psize   = m->dbs[0].pad;
    m->last_pg = tg_lmdb_u64(pg + TG_LMDB_OFF_LAST_PG);
    m->txnid   = tg_lmdb_u64(pg + TG_LMDB_OFF_TXNID);
    if (m->psize < TG_LMDB_PSIZE_MIN || m->psize > TG_LMDB_PSIZE_MAX ||
        (m->psize & (m->psize - 1)) != 0) {
        snprintf(m->why, sizeof(m->why), "impossible page size %" PRIu32,
                 m->psize);
        return;
    }
    if (m->last_pg < 1 || m->last_pg > UINT64_MAX / TG_LMDB_PSIZE_MAX) {
        snprintf(m->why, sizeof(m->why), "impossible last page %" PRIu64,
                 m->last_pg);
        return;
    }
    for (int i = 0; i < 2; i++) {
        const tg_lmdb_db *db = &m->dbs[i];
        if (db->root != TG_LMDB_NO_PAGE &&
            (db->root < 2 || db->root > m->last_pg ||
             db->depth > TG_LMDB_DEPTH_MAX)) {
            snprintf(m->why, sizeof(m->why),
                     "its %s tree starts at impossible page %" PRIu64,
                     i == 0 ? "free-page" : "main", db->root);
            return;
        }
    }
    m->ok = true;
}

/* tg_lmdb_need is the least size of a file whose meta page is m. */
static uint64_t
tg_lmdb_need(const tg_lmdb_meta *m)
{
    return (m->last_pg + 1) * (uint64_t)m->psize;
}

/* tg_lmdb_load opens <dir>/data.mdb and picks the meta page of txnid (0:
 * the newest). TG_ENOTFOUND (err set) when there is no file. On TG_OK
 * f->fd is open (the caller closes it). */
static tg_err
tg_lmdb_load(tg_lmdb_file *f, const char *dir, uint64_t txnid, char *err,
             size_t errlen)
{
    uint8_t      pg[TG_LMDB_META_END];
    tg_lmdb_meta m[2];
    struct stat  sb;
    ssize_t      n;
    tg_err       rv = TG_ECORRUPT;

    f->fd = -1;
    if ((size_t)snprintf(f->path, sizeof(f->path), "%s/data.mdb", dir) >=
        sizeof(f->path)) {
        snprintf(err, errlen, "%s: path too long", dir);
        return TG_EINVAL;
    }
    if ((f->fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", f->path, strerror(e));
        return e == ENOENT ? TG_ENOTFOUND : TG_ESYS;
    }
    if (fstat(f->fd, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", f->path, strerror(errno));
        rv = TG_ESYS;
        goto fail;
    }
    f->size = (uint64_t)sb.st_size;
    if (f->size == 0) {
        snprintf(err, errlen, "%s: empty (0 bytes)" TG_LMDB_ADVICE, f->path);
        goto fail;
    }
    if ((n = pread(f->fd, pg, sizeof(pg), 0)) < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", f->path, strerror(errno));
        rv = TG_ESYS;
        goto fail;
    }
    tg_lmdb_meta_parse(pg, (size_t)n, 0, &m[0]);
    if (m[0].other_format) {
        snprintf(err, errlen,
                 "%s: written in %s, and this build reads LMDB data format "
                 "%u: open it with the release that wrote it",
                 f->path, m[0].why, TG_LMDB_DATA_VERSION);
        rv = TG_EVERSION;
        goto fail;
    }
    if (!m[0].ok) {
        snprintf(err, errlen,
                 "%s: not an LMDB file, or its first page is damaged (meta "
                 "page 0: %s)" TG_LMDB_ADVICE,
                 f->path, m[0].why);
        goto fail;
    }
    f->psize = m[0].psize;
    if (f->size < 2 * (uint64_t)f->psize) {
        snprintf(err, errlen,
                 "%s: truncated (%" PRIu64 " bytes, LMDB needs at least "
                 "%" PRIu64 ")" TG_LMDB_ADVICE,
                 f->path, f->size, tg_lmdb_need(&m[0]));
        goto fail;
    }
    if ((n = pread(f->fd, pg, sizeof(pg), f->psize)) < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", f->path, strerror(errno));
        rv = TG_ESYS;
        goto fail;
    }
    tg_lmdb_meta_parse(pg, (size_t)n, 1, &m[1]);
    if (!m[1].ok || m[1].psize != f->psize) {
        /* LMDB reads both meta pages at open and refuses the file too. */
        snprintf(err, errlen, "%s: meta page 1 is damaged (%s)" TG_LMDB_ADVICE,
                 f->path, m[1].ok ? "another page size" : m[1].why);
        goto fail;
    }
    if (txnid == 0) {
        f->meta = m[m[1].txnid > m[0].txnid ? 1 : 0];
    } else if (m[0].txnid == txnid || m[1].txnid == txnid) {
        f->meta = m[m[1].txnid == txnid ? 1 : 0];
    } else {
        snprintf(err, errlen,
                 "%s: transaction %" PRIu64 " is no longer "
                 "the newest; try again",
                 f->path, txnid);
        rv = TG_EAGAIN;
        goto fail;
    }
    if (f->size < tg_lmdb_need(&f->meta)) {
        /* Touching a page past the end through LMDB's map is SIGBUS. */
        snprintf(err, errlen,
                 "%s: truncated (%" PRIu64 " bytes, LMDB needs at least "
                 "%" PRIu64 ")" TG_LMDB_ADVICE,
                 f->path, f->size, tg_lmdb_need(&f->meta));
        goto fail;
    }
    return TG_OK;
fail:
    close(f->fd);
    f->fd = -1;
    return rv;
}

tg_err
tg_lmdb_check_file(const char *dir, char *err, size_t errlen)
{
    tg_lmdb_file *f = malloc(sizeof(*f));
    tg_err        rv;

    if (f == NULL) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return TG_ENOMEM;
    }
    rv = tg_lmdb_load(f, dir, 0, err, errlen);
    if (rv == TG_OK) {
        close(f->fd);
    } else if (rv == TG_ENOTFOUND) {
        err[0] = '\0';
        rv     = TG_OK; /* a new environment */
    }
    free(f);
    return rv;
}

/* ---- the tree walk ----------------------------------------------------- */

static bool tg_lmdb_bad(tg_lmdb_walk *w, uint64_t pgno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
tg_lmdb_bad(tg_lmdb_walk *w, uint64_t pgno, const char *fmt, ...)
{
    char    what[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    w->t->damaged = true;
    snprintf(w->t->problem, sizeof(w->t->problem),
             "page %" PRIu64 " (byte %" PRIu64 "): %s", pgno,
             pgno * (uint64_t)w->f->psize, what);
    return false;
}

/* tg_lmdb_visit checks that pgno may be part of the snapshot, n pages. */
static bool
tg_lmdb_visit(tg_lmdb_walk *w, uint64_t pgno, uint64_t n)
{
    const tg_lmdb_file *f = w->f;

    if (pgno < 2 || pgno > f->meta.last_pg || n > f->meta.last_pg - pgno + 1) {
        return tg_lmdb_bad(w, pgno,
                           "points outside the pages in use (2 to %" PRIu64 ")",
                           f->meta.last_pg);
    }
    if (n > w->budget) {
        return tg_lmdb_bad(w, pgno, "the tree loops back on itself");
    }
    w->budget -= n;
    w->t->pages += n;
    return true;
}

/* tg_lmdb_read reads page pgno into pg (psize bytes). */
static bool
tg_lmdb_read(tg_lmdb_walk *w, uint64_t pgno, uint8_t *pg, size_t len)
{
    ssize_t n = pread(w->f->fd, pg, len, (off_t)(pgno * w->f->psize));

    if (n != (ssize_t)len) {
        return tg_lmdb_bad(w, pgno, "cannot be read: %s",
                           n < 0 ? strerror(errno) : "short read");
    }
    if (tg_lmdb_u64(pg) != pgno) {
        return tg_lmdb_bad(w, pgno,
                           "its header says page %" PRIu64
                           " (overwritten, or misplaced)",
                           tg_lmdb_u64(pg));
    }
    return true;
}

static bool
tg_lmdb_overflow(tg_lmdb_walk *w, uint64_t pgno, uint64_t dsize)
{
    uint8_t  hdr[TG_LMDB_HDR];
    uint32_t n;

    if (!tg_lmdb_visit(w, pgno, 1) ||
        !tg_lmdb_read(w, pgno, hdr, sizeof(hdr))) {
        return false;
    }
    n = tg_lmdb_u32(hdr + 12);
    if (tg_lmdb_u16(hdr + 10) != TG_LMDB_P_OVERFLOW || n == 0) {
        return tg_lmdb_bad(w, pgno, "not the overflow page a record needs");
    }
    if (dsize + TG_LMDB_HDR > (uint64_t)n * w->f->psize) {
        return tg_lmdb_bad(
            w, pgno, "%" PRIu32 " overflow pages cannot hold %" PRIu64 " bytes",
            n, dsize);
    }
    return n == 1 || tg_lmdb_visit(w, pgno + 1, n - 1);
}

static bool tg_lmdb_page(tg_lmdb_walk *w, const tg_lmdb_db *db, uint64_t pgno,
                         unsigned level);

static bool
tg_lmdb_tree_walk(tg_lmdb_walk *w, const tg_lmdb_db *db, uint64_t at)
{
    if (db->root == TG_LMDB_NO_PAGE) {
        return true; /* empty */
    }
    if (db->depth == 0 || db->depth > TG_LMDB_DEPTH_MAX) {
        return tg_lmdb_bad(w, at, "a tree of impossible depth %u",
                           (unsigned)db->depth);
    }
    return tg_lmdb_page(w, db, db->root, 0);
}

/* tg_lmdb_named_add remembers a database the main tree names. */
static bool
tg_lmdb_named_add(tg_lmdb_walk *w, uint64_t pgno, const uint8_t *key,
                  size_t klen, const uint8_t *data)
{
    tg_lmdb_named *nd;

    if (klen == 0 || klen >= TG_LMDB_NAME_MAX || memchr(key, '\0', klen)) {
        return tg_lmdb_bad(w, pgno, "a database name that LMDB cannot open");
    }
    if (w->nnamed == w->capnamed) {
        size_t         cap = w->capnamed ? 2 * w->capnamed : 16;
        tg_lmdb_named *v   = realloc(w->named, cap * sizeof(*v));
        if (v == NULL) {
            w->nomem = true;
            return false;
        }
        w->named    = v;
        w->capnamed = cap;
    }
    nd = &w->named[w->nnamed++];
    memcpy(nd->name, key, klen);
    nd->name[klen] = '\0';
    tg_lmdb_db_parse(data, &nd->db);
    return true;
}

/* tg_lmdb_subpage checks the duplicates of one key kept inside its node
 * (n bytes at p, a page of their own without a page number): keys only,
 * as nodes, or fixed-size (LEAF2, the size in the header's pad). */
static bool
tg_lmdb_subpage(tg_lmdb_walk *w, uint64_t pgno, const uint8_t *p, size_t n)
{
    uint16_t flags, lower, upper;
    size_t   count;

    if (n < TG_LMDB_HDR) {
        return tg_lmdb_bad(w, pgno, "a duplicate sub-page too short");
    }
    flags = tg_lmdb_u16(p + 10);
    lower = tg_lmdb_u16(p + 12);
    upper = tg_lmdb_u16(p + 14);
    if (!(flags & TG_LMDB_P_LEAF) || !(flags & TG_LMDB_P_SUBP) ||
        lower < TG_LMDB_HDR || (lower - TG_LMDB_HDR) % 2 != 0 ||
        lower > upper || upper > n) {
        return tg_lmdb_bad(w, pgno, "a damaged duplicate sub-page");
    }
    count = (size_t)(lower - TG_LMDB_HDR) / 2;
    if (flags & TG_LMDB_P_LEAF2) {
        if (count * tg_lmdb_u16(p + 8) > n - TG_LMDB_HDR) {
            return tg_lmdb_bad(w, pgno, "a damaged duplicate sub-page");
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            size_t off = tg_lmdb_u16(p + TG_LMDB_HDR + 2 * i);
            if (off < upper || off > n - TG_LMDB_NODE ||
                tg_lmdb_u16(p + off + 6) > n - off - TG_LMDB_NODE) {
                return tg_lmdb_bad(w, pgno, "a damaged duplicate sub-page");
            }
        }
    }
    w->t->entries += count;
    return true;
}

/* tg_lmdb_leaf_node checks the node at off of leaf page pgno (in pg). */
static bool
tg_lmdb_leaf_node(tg_lmdb_walk *w, uint64_t pgno, const uint8_t *pg, size_t off)
{
    const uint8_t *node  = pg + off;
    uint16_t       flags = tg_lmdb_u16(node + 4);
    size_t         klen  = tg_lmdb_u16(node + 6);
    uint64_t dsize = tg_lmdb_u16(node) | (uint64_t)tg_lmdb_u16(node + 2) << 16;
    size_t   room  = w->f->psize - off - TG_LMDB_NODE;
    const uint8_t *data = node + TG_LMDB_NODE + klen;
    bool           ok;

    if ((flags &
         ~(TG_LMDB_F_BIGDATA | TG_LMDB_F_SUBDATA | TG_LMDB_F_DUPDATA)) != 0) {
        return tg_lmdb_bad(w, pgno, "a record with unknown flags 0x%x",
                           (unsigned)flags);
    }
    if (klen > room ||
        ((flags & TG_LMDB_F_BIGDATA) ? 8 : dsize) > room - klen) {
        return tg_lmdb_bad(w, pgno, "a record runs past the page's end");
    }
    if (flags & TG_LMDB_F_BIGDATA) {
        if (flags != TG_LMDB_F_BIGDATA) {
            return tg_lmdb_bad(w, pgno, "a record with impossible flags");
        }
        w->t->entries++;
        return tg_lmdb_overflow(w, tg_lmdb_u64(data), dsize);
    }
    if (flags & TG_LMDB_F_SUBDATA) {
        tg_lmdb_db sub;

        if (dsize != TG_LMDB_DB_SIZE) {
            return tg_lmdb_bad(w, pgno,
                               "a database record of %" PRIu64 " bytes", dsize);
        }
        if (!(flags & TG_LMDB_F_DUPDATA)) {
            if (!w->main) {
                return tg_lmdb_bad(w, pgno,
                                   "a database record outside the main tree");
            }
            w->t->entries++;
            return tg_lmdb_named_add(w, pgno, node + TG_LMDB_NODE, klen, data);
        }
        if (w->in_dup) {
            return tg_lmdb_bad(w, pgno, "duplicates of a duplicate");
        }
        /* The duplicates of one key, in a tree of their own (its leaves
         * count one record per duplicate). */
        tg_lmdb_db_parse(data, &sub);
        w->in_dup = true;
        ok        = tg_lmdb_tree_walk(w, &sub, pgno);
        w->in_dup = false;
        return ok;
    }
    if (flags & TG_LMDB_F_DUPDATA) {
        if (w->in_dup) {
            return tg_lmdb_bad(w, pgno, "duplicates of a duplicate");
        }
        return tg_lmdb_subpage(w, pgno, data, (size_t)dsize);
    }
    w->t->entries++;
    return true;
}

static bool
tg_lmdb_page(tg_lmdb_walk *w, const tg_lmdb_db *db, uint64_t pgno,
             unsigned level)
{
    size_t   psize = w->f->psize;
    bool     leaf  = level + 1 == db->depth;
    bool     ok    = false;
    uint8_t *pg;
    uint16_t flags, lower, upper;
    size_t   n;

    if (!tg_lmdb_visit(w, pgno, 1)) {
        return false;
    }
    if ((pg = malloc(psize)) == NULL) {
        w->nomem = true;
        return false;
    }
    if (!tg_lmdb_read(w, pgno, pg, psize)) {
        goto out;
    }
    flags = tg_lmdb_u16(pg + 10);
    lower = tg_lmdb_u16(pg + 12);
    upper = tg_lmdb_u16(pg + 14);
    if (leaf ? flags != TG_LMDB_P_LEAF &&
                   flags != (TG_LMDB_P_LEAF | TG_LMDB_P_LEAF2)
             : flags != TG_LMDB_P_BRANCH) {
        tg_lmdb_bad(w, pgno, "a %s page was expected, flags are 0x%x",
                    leaf ? "leaf" : "branch", (unsigned)flags);
        goto out;
    }
    if (lower < TG_LMDB_HDR + 2 || (lower - TG_LMDB_HDR) % 2 != 0 ||
        lower > upper || upper > psize) {
        tg_lmdb_bad(w, pgno, "damaged free-space bounds %u..%u",
                    (unsigned)lower, (unsigned)upper);
        goto out;
    }
    n = (size_t)(lower - TG_LMDB_HDR) / 2;
    if (flags & TG_LMDB_P_LEAF2) {
        /* Fixed-size keys of duplicates, no nodes. */
        if (db->pad == 0 || n * db->pad > psize - TG_LMDB_HDR) {
            tg_lmdb_bad(w, pgno, "damaged fixed-size records");
            goto out;
        }
        w->t->entries += n;
        ok = true;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t off = tg_lmdb_u16(pg + TG_LMDB_HDR + 2 * i);

        if (off < upper || off > psize - TG_LMDB_NODE) {
            tg_lmdb_bad(w, pgno, "record %zu starts outside its page", i);
            goto out;
        }
        if (leaf) {
            if (!tg_lmdb_leaf_node(w, pgno, pg, off)) {
                goto out;
            }
        } else {
            const uint8_t *node  = pg + off;
            uint64_t       child = tg_lmdb_u16(node) |
                             (uint64_t)tg_lmdb_u16(node + 2) << 16 |
                             (uint64_t)tg_lmdb_u16(node + 4) << 32;
            if (tg_lmdb_u16(node + 6) > psize - off - TG_LMDB_NODE) {
                tg_lmdb_bad(w, pgno, "a key runs past the page's end");
                goto out;
            }
            if (!tg_lmdb_page(w, db, child, level + 1)) {
                goto out;
            }
        }
    }
    ok = true;
out:
    free(pg);
    return ok;
}

/* tg_lmdb_walk_one walks one tree and reports it; false when out of
 * memory. */
static bool
tg_lmdb_walk_one(tg_lmdb_walk *w, const char *name, const tg_lmdb_db *db,
                 bool main, tg_lmdb_tree_fn fn, void *arg, bool *damaged)
{
    tg_lmdb_tree t;

    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", name);
    w->t      = &t;
    w->main   = main;
    w->budget = w->f->meta.last_pg + 1; /* each page once */
    if (tg_lmdb_tree_walk(w, db, db->root) && !(db->flags & TG_LMDB_DUPSORT) &&
        t.entries != db->entries) {
        t.damaged = true;
        snprintf(t.problem, sizeof(t.problem),
                 "holds %" PRIu64 " records where its header says %" PRIu64,
                 t.entries, db->entries);
    }
    if (w->nomem) {
        return false;
    }
    *damaged |= t.damaged;
    fn(arg, &t);
    return true;
}

tg_err
tg_lmdb_verify(const char *dir, uint64_t txnid, tg_lmdb_tree_fn fn, void *arg,
               char *err, size_t errlen)
{
    tg_lmdb_file *f = malloc(sizeof(*f));
    tg_lmdb_walk  w;
    tg_lmdb_db    free_db;
    bool          damaged = false;
    tg_err        rv;

    memset(&w, 0, sizeof(w));
    if (f == NULL) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return TG_ENOMEM;
    }
    if ((rv = tg_lmdb_load(f, dir, txnid, err, errlen)) != TG_OK) {
        free(f);
        return rv;
    }
    w.f = f;
    /* The free tree's md_flags are the environment's flags, not its own. */
    free_db       = f->meta.dbs[0];
    free_db.flags = 0;
    free_db.pad   = 0;
    if (!tg_lmdb_walk_one(&w, TG_LMDB_FREE_DB, &free_db, false, fn, arg,
                          &damaged) ||
        !tg_lmdb_walk_one(&w, TG_LMDB_MAIN_DB, &f->meta.dbs[1], true, fn, arg,
                          &damaged)) {
        goto nomem;
    }
    for (size_t i = 0; i < w.nnamed; i++) {
        if (!tg_lmdb_walk_one(&w, w.named[i].name, &w.named[i].db, false, fn,
                              arg, &damaged)) {
            goto nomem;
        }
    }
    rv = damaged ? TG_ECORRUPT : TG_OK;
    if (damaged) {
        snprintf(err, errlen, "%s: damaged" TG_LMDB_ADVICE, f->path);
    }
    goto out;
nomem:
    snprintf(err, errlen, "%s: out of memory", f->path);
    rv = TG_ENOMEM;
out:
    close(f->fd);
    free(w.named);
    free(f);
    return rv;
}

/* ---- reading every record ---------------------------------------------- */

#define TG_LMDB_READ_DBS_MAX 128 /* named databases one file may hold */
#define TG_LMDB_READ_RETRIES 8   /* snapshots that moved on while opening */

typedef struct tg_lmdb_trees {
    tg_lmdb_tree *v;
    size_t        n;
    size_t        cap;
    bool          nomem;
} tg_lmdb_trees;

static void
tg_lmdb_trees_add(void *arg, const tg_lmdb_tree *t)
{
    tg_lmdb_trees *ts = arg;

    if (ts->n == ts->cap) {
        size_t        cap = ts->cap ? 2 * ts->cap : 16;
        tg_lmdb_tree *v   = realloc(ts->v, cap * sizeof(*v));
        if (v == NULL) {
            ts->nomem = true;
            return;
        }
        ts->v   = v;
        ts->cap = cap;
    }
    ts->v[ts->n++] = *t;
}

/* tg_lmdb_read_db reads one named database through a cursor. */
static void
tg_lmdb_read_db(MDB_txn *txn, const char *name, tg_lmdb_rec_fn rec_fn,
                void *arg, tg_lmdb_db_report *r, char *problem, size_t cap)
{
    MDB_cursor *cur = NULL;
    MDB_dbi     dbi;
    MDB_val     k;
    MDB_val     v;
    int         rc;

    r->read    = true;
    r->records = 0;
    if ((rc = mdb_dbi_open(txn, name, 0, &dbi)) != 0 ||
        (rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
        r->read = false;
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        r->records++;
        if (rec_fn(arg, name, k.mv_data, k.mv_size, v.mv_data, v.mv_size) !=
            TG_OK) {
            r->bad++;
        }
    }
out:
    if (rc != 0 && rc != MDB_NOTFOUND) {
        r->damaged = true;
        snprintf(problem, cap, "LMDB: %s", mdb_strerror(rc));
        r->problem = problem;
    }
    mdb_cursor_close(cur); /* NULL-safe */
}

tg_err
tg_lmdb_read_all(const char *dir, tg_lmdb_rec_fn rec_fn, tg_lmdb_db_fn db_fn,
                 void *arg, char *err, size_t errlen)
{
    static const char skipped[] = "not read: the main tree is damaged";
    tg_lmdb_trees     ts        = {0};
    MDB_env          *env       = NULL;
    MDB_txn          *txn       = NULL;
    char              path[4096];
    char              problem[TG_LMDB_PROBLEM_MAX];
    struct stat       sb;
    bool              main_ok = false;
    bool              any     = false;
    tg_err            rv;
    int               rc;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &sb) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? TG_ENOTFOUND : TG_ESYS;
    }
    if ((rv = tg_lmdb_check_file(dir, err, errlen)) != TG_OK) {
        return rv;
    }
    if ((rc = mdb_env_create(&env)) != 0 ||
        (rc = mdb_env_set_maxdbs(env, TG_LMDB_READ_DBS_MAX)) != 0 ||
        (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600)) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, mdb_strerror(rc));
        rv = rc == ENOMEM ? TG_ENOMEM : TG_EIO;
        goto out;
    }
    for (int attempt = 0; attempt < TG_LMDB_READ_RETRIES; attempt++) {
        if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path,
                     mdb_strerror(rc));
            rv = TG_EIO;
            goto out;
        }
        ts.n = 0;
        rv   = tg_lmdb_verify(dir, mdb_txn_id(txn), tg_lmdb_trees_add, &ts, err,
                              errlen);
        if (rv != TG_EAGAIN) {
            break;
        }
        mdb_txn_abort(txn); /* a writer committed twice meanwhile */
        txn = NULL;
    }
    if (ts.nomem) {
        snprintf(err, errlen, "%s: out of memory", path);
        rv = TG_ENOMEM;
    }
    if ((rv != TG_OK && rv != TG_ECORRUPT) || ts.n == 0) {
        goto out; /* err says why */
    }
    for (size_t i = 0; i < ts.n; i++) {
        main_ok |=
            strcmp(ts.v[i].name, TG_LMDB_MAIN_DB) == 0 && !ts.v[i].damaged;
    }
    for (size_t i = 0; i < ts.n; i++) {
        const tg_lmdb_tree *t     = &ts.v[i];
        bool                named = i >= 2; /* free and main come first */
        tg_lmdb_db_report   r     = {t->name, t->entries, 0,
                                     false,   t->damaged, t->problem};

        if (named && !t->damaged && !main_ok) {
            r.damaged = true;
            r.problem = skipped;
        } else if (named && !t->damaged) {
            tg_lmdb_read_db(txn, t->name, rec_fn, arg, &r, problem,
                            sizeof(problem));
        }
        any |= r.damaged || r.bad > 0;
        db_fn(arg, &r);
    }
    rv = any ? TG_ECORRUPT : TG_OK;
out:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (env != NULL) {
        mdb_env_close(env);
    }
    free(ts.v);
    return rv;
}
