/* test_gen.c - common.gen: the state generation file a PDP and the data
 * planes on its host share. A path that names the wrong file, a counter
 * one side does not see, or a file another local user could write (and
 * so keep a revoked key's decisions alive) each lets a stale decision be
 * reused; a file replaced under a reader must be noticed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_gen.h"
#include "tg_unit.h"

#define GEN_SIZE 4096

static char g_dir[512];
static char g_path[640]; /* g_dir/pdp.sock.gen */

/* fresh makes an empty temp directory for one test; gone removes it. */
static void
fresh(void)
{
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("gen"));
    snprintf(g_path, sizeof(g_path), "%s/pdp.sock.gen", g_dir);
}

static void
gone(void)
{
    DIR           *d = opendir(g_dir);
    struct dirent *e;
    char           p[1024];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof(p), "%s/%s", g_dir, e->d_name);
            if (unlink(p) != 0) {
                rmdir(p);
            }
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    CU_ASSERT_EQUAL(rmdir(g_dir), 0);
}

/* write_file writes len bytes of fill, then (when magic is not NULL) puts
 * 8 bytes of magic at offset 0. */
static void
write_file(const char *path, size_t len, uint8_t fill, const void *magic)
{
    static uint8_t buf[2 * GEN_SIZE];
    int            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CU_ASSERT_FATAL(fd >= 0 && len <= sizeof(buf));
    memset(buf, fill, len);
    if (magic != NULL) {
        memcpy(buf, magic, 8);
    }
    CU_ASSERT_EQUAL((size_t)write(fd, buf, len), len);
    close(fd);
}

/* file_word reads the little-endian uint64 at off of path. */
static uint64_t
file_word(const char *path, off_t off)
{
    uint8_t  b[8] = {0};
    uint64_t v    = 0;
    int      fd   = open(path, O_RDONLY);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, b, sizeof(b), off), 8);
    close(fd);
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | b[i];
    }
    return v;
}

static void
test_path_from_ipc_url(void)
{
    char buf[64];

    CU_ASSERT_EQUAL(
        tg_gen_path("ipc:///run/tollgate/pdp.sock", buf, sizeof(buf)), TG_OK);
    CU_ASSERT_STRING_EQUAL(buf, "/run/tollgate/pdp.sock.gen");
    CU_ASSERT_EQUAL(tg_gen_path("ipc://rel/pdp.sock", buf, sizeof(buf)), TG_OK);
    CU_ASSERT_STRING_EQUAL(buf, "rel/pdp.sock.gen");
    /* A PDP across the network shares no file. */
    CU_ASSERT_EQUAL(tg_gen_path("tcp://127.0.0.1:7000", buf, sizeof(buf)),
                    TG_EINVAL);
    CU_ASSERT_EQUAL(tg_gen_path("tls+tcp://pdp:7000", buf, sizeof(buf)),
                    TG_EINVAL);
    CU_ASSERT_EQUAL(tg_gen_path("ipc://", buf, sizeof(buf)), TG_EINVAL);
    CU_ASSERT_EQUAL(tg_gen_path("/run/pdp.sock", buf, sizeof(buf)), TG_EINVAL);
    /* "/a/pdp.sock.gen" is 15 bytes: 16 fits with its NUL, 15 does not. */
    CU_ASSERT_EQUAL(tg_gen_path("ipc:///a/pdp.sock", buf, 16), TG_OK);
    CU_ASSERT_STRING_EQUAL(buf, "/a/pdp.sock.gen");
    CU_ASSERT_EQUAL(tg_gen_path("ipc:///a/pdp.sock", buf, 15), TG_ETOOBIG);
}

/* A new file is one page, 0644 whatever the umask, with the magic number
 * and a zero counter. */
static void
test_open_rw_creates_the_file(void)
{
    static const uint8_t magic[8] = {0, 'T', 'G', 'T', 'G', 'E', 'N', '1'};
    tg_gen              *g        = NULL;
    struct stat          sb;
    uint8_t              head[8];
    mode_t               old = umask(0077);
    int                  fd;

    fresh();
    CU_ASSERT_EQUAL(tg_gen_open_rw(&g, g_path, true), TG_OK);
    umask(old);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(lstat(g_path, &sb), 0);
    CU_ASSERT_TRUE(S_ISREG(sb.st_mode));
    CU_ASSERT_EQUAL(sb.st_size, GEN_SIZE);
    CU_ASSERT_EQUAL(sb.st_mode & 07777, 0644);
    fd = open(g_path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, head, sizeof(head), 0), 8);
    close(fd);
    CU_ASSERT_EQUAL(memcmp(head, magic, sizeof(magic)), 0);
    CU_ASSERT_EQUAL(tg_gen_load(g), 0);
    CU_ASSERT_EQUAL(file_word(g_path, 8), 0);
    tg_gen_close(g);
    gone();
}

/* Every mapping of the file sees every other's bumps at once, and the
 * counter is the little-endian word at offset 8 of the file, kept across
 * reopening (a PDP restarting goes on from it). */
static void
test_mappings_see_each_others_bumps(void)
{
    tg_gen *a = NULL;
    tg_gen *b = NULL;
    tg_gen *r = NULL;

    fresh();
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&a, g_path, true), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&b, g_path, false), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_ro(&r, g_path, -1), TG_OK);
    tg_gen_bump(a);
    tg_gen_bump(a);
    CU_ASSERT_EQUAL(tg_gen_load(a), 2);
    CU_ASSERT_EQUAL(tg_gen_load(b), 2);
    CU_ASSERT_EQUAL(tg_gen_load(r), 2);
    tg_gen_bump(b);
    CU_ASSERT_EQUAL(tg_gen_load(a), 3);
    CU_ASSERT_EQUAL(tg_gen_load(r), 3);
    CU_ASSERT_EQUAL(file_word(g_path, 8), 3);
    tg_gen_close(a);
    tg_gen_close(b);
    tg_gen_close(r);
    a = NULL;
    /* Opening an existing file keeps its counter (and its magic). */
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&a, g_path, true), TG_OK);
    CU_ASSERT_EQUAL(tg_gen_load(a), 3);
    tg_gen_bump(a);
    CU_ASSERT_EQUAL(file_word(g_path, 8), 4);
    tg_gen_close(a);
    tg_gen_close(NULL); /* a no-op */
    gone();
}

/* A file another local user may write could hold the counter still:
 * refused, as is one owned by someone else (root aside). */
static void
test_open_ro_refuses_writable_by_others(void)
{
    tg_gen *w = NULL;
    tg_gen *r = (tg_gen *)&r; /* must come back NULL */

    fresh();
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&w, g_path, true), TG_OK);
    CU_ASSERT_EQUAL_FATAL(chmod(g_path, 0666), 0);
    CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, -1), TG_ECONFIG);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL_FATAL(chmod(g_path, 0664), 0); /* group alone */
    CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, -1), TG_ECONFIG);
    CU_ASSERT_EQUAL_FATAL(chmod(g_path, 0644), 0);
    CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, -1), TG_OK);
    CU_ASSERT_PTR_NOT_NULL(r);
    tg_gen_close(r);
    r = NULL;
    if (geteuid() == 0) {
        /* Owned by uid 4242: only a reader expecting 4242 takes it. */
        CU_ASSERT_EQUAL_FATAL(chown(g_path, 4242, (gid_t)-1), 0);
        CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, -1), TG_ECONFIG);
        CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, 1000), TG_ECONFIG);
        CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, 4242), TG_OK);
    } else {
        CU_ASSERT_EQUAL(tg_gen_open_ro(&r, g_path, (int64_t)geteuid() + 1),
                        TG_ECONFIG);
    }
    tg_gen_close(r);
    tg_gen_close(w);
    gone();
}

/* Anything that is not exactly a generation file is refused: a wrong
 * size, a page without the magic (including an all-zero one a writer
 * has not claimed yet), a directory. */
static void
test_open_refuses_what_is_not_a_gen_file(void)
{
    static const uint8_t other[8] = {'N', 'O', 'T', 'A', 'G', 'E', 'N', '!'};
    tg_gen              *g        = (tg_gen *)&g;
    char                 sub[700];

    fresh();
    write_file(g_path, 100, 0, NULL);
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, g_path, -1), TG_ECONFIG);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_EQUAL(tg_gen_open_rw(&g, g_path, true), TG_ECORRUPT);
    write_file(g_path, 2 * GEN_SIZE, 0, NULL);
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, g_path, -1), TG_ECONFIG);
    CU_ASSERT_EQUAL(tg_gen_open_rw(&g, g_path, true), TG_ECORRUPT);

    write_file(g_path, GEN_SIZE, 0, NULL); /* right size, no magic yet */
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, g_path, -1), TG_ECONFIG);
    CU_ASSERT_PTR_NULL(g);

    write_file(g_path, GEN_SIZE, 0x11, other); /* someone else's page */
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, g_path, -1), TG_ECONFIG);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_EQUAL(tg_gen_open_rw(&g, g_path, true), TG_ECORRUPT);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_EQUAL(file_word(g_path, 8), 0x1111111111111111ull); /* as is */

    snprintf(sub, sizeof(sub), "%s/dir.gen", g_dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, sub, -1), TG_ECONFIG);
    CU_ASSERT_NOT_EQUAL(tg_gen_open_rw(&g, sub, true), TG_OK);
    CU_ASSERT_PTR_NULL(g);
    gone();
}

/* Before a PDP made it the file is missing, and only the PDP creates it. */
static void
test_missing_file_not_found(void)
{
    tg_gen     *g = (tg_gen *)&g;
    struct stat sb;

    fresh();
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, g_path, -1), TG_ENOTFOUND);
    CU_ASSERT_PTR_NULL(g);
    g = (tg_gen *)&g;
    CU_ASSERT_EQUAL(tg_gen_open_rw(&g, g_path, false), TG_ENOTFOUND);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_EQUAL(stat(g_path, &sb), -1); /* not created */
    CU_ASSERT_EQUAL(errno, ENOENT);
    gone();
}

/* A symlink at the path is not followed, for reading or writing, even to
 * a good generation file. */
static void
test_symlink_refused(void)
{
    char    real[700];
    tg_gen *w = NULL;
    tg_gen *g = (tg_gen *)&g;

    fresh();
    snprintf(real, sizeof(real), "%s/real.gen", g_dir);
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&w, real, true), TG_OK);
    CU_ASSERT_EQUAL_FATAL(symlink(real, g_path), 0);
    errno = 0;
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, g_path, -1), TG_ESYS);
    CU_ASSERT_EQUAL(errno, ELOOP);
    CU_ASSERT_PTR_NULL(g);
    g = (tg_gen *)&g;
    CU_ASSERT_EQUAL(tg_gen_open_rw(&g, g_path, true), TG_ESYS);
    CU_ASSERT_PTR_NULL(g);
    g = NULL;
    CU_ASSERT_EQUAL(tg_gen_open_ro(&g, real, -1), TG_OK); /* the target */
    tg_gen_close(g);
    tg_gen_close(w);
    gone();
}

/* still_there turns false once the path no longer names the mapped file:
 * removed, or replaced by a new file (a PDP restarted in a new socket
 * directory), and the new file's own mapping starts afresh. */
static void
test_still_there(void)
{
    tg_gen *a = NULL;
    tg_gen *b = NULL;
    tg_gen *c = NULL;
    char    tmp[700];

    fresh();
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&a, g_path, true), TG_OK);
    CU_ASSERT_TRUE(tg_gen_still_there(a));
    tg_gen_bump(a);
    CU_ASSERT_EQUAL_FATAL(unlink(g_path), 0);
    CU_ASSERT_FALSE(tg_gen_still_there(a));
    CU_ASSERT_EQUAL(tg_gen_load(a), 1); /* still mapped */

    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&b, g_path, true), TG_OK);
    CU_ASSERT_FALSE(tg_gen_still_there(a)); /* a new file at its path */
    CU_ASSERT_TRUE(tg_gen_still_there(b));
    CU_ASSERT_EQUAL(tg_gen_load(b), 0);

    /* Replaced by rename, as an atomic install would. */
    snprintf(tmp, sizeof(tmp), "%s/next.gen", g_dir);
    CU_ASSERT_EQUAL_FATAL(tg_gen_open_rw(&c, tmp, true), TG_OK);
    CU_ASSERT_EQUAL_FATAL(rename(tmp, g_path), 0);
    CU_ASSERT_FALSE(tg_gen_still_there(b));
    CU_ASSERT_FALSE(tg_gen_still_there(c)); /* its own path is gone */
    tg_gen_close(a);
    tg_gen_close(b);
    tg_gen_close(c);
    gone();
}

static const tg_unit_case cases[] = {
    {"path_from_ipc_url", test_path_from_ipc_url},
    {"open_rw_creates_the_file", test_open_rw_creates_the_file},
    {"mappings_see_each_others_bumps", test_mappings_see_each_others_bumps},
    {"open_ro_refuses_writable_by_others",
     test_open_ro_refuses_writable_by_others},
    {"open_refuses_what_is_not_a_gen_file",
     test_open_refuses_what_is_not_a_gen_file},
    {"missing_file_not_found", test_missing_file_not_found},
    {"symlink_refused", test_symlink_refused},
    {"still_there", test_still_there},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("common.gen", cases);
}
