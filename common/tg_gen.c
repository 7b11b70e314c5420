/* tg_gen.c - the shared state generation (tg_gen.h): one page, mapped. */
#include "tg_gen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_GEN_SIZE 4096
#define TG_GEN_MAGIC 0x314e454754475400ull /* "\0TGTGEN1" little-endian */

struct tg_gen {
    _Atomic uint64_t *words; /* [0] magic, [1] the counter */
    dev_t             dev;
    ino_t             ino;
    char              path[];
};

tg_err
tg_gen_path(const char *url, char *buf, size_t cap)
{
    int n;

    if (strncmp(url, "ipc://", 6) != 0 || url[6] == '\0') {
        return TG_EINVAL;
    }
    n = snprintf(buf, cap, "%s.gen", url + 6);
    return n < 0 || (size_t)n >= cap ? TG_ETOOBIG : TG_OK;
}

/* tg_gen_map maps the open fd (whose stat is sb) and takes ownership of
 * nothing: the caller closes fd. */
static tg_err
tg_gen_map(tg_gen **out, const char *path, int fd, const struct stat *sb,
           bool writable)
{
    size_t  len = strlen(path) + 1;
    tg_gen *g   = malloc(sizeof(*g) + len);
    void   *p;

    if (g == NULL) {
        return TG_ENOMEM;
    }
    p = mmap(NULL, TG_GEN_SIZE, writable ? PROT_READ | PROT_WRITE : PROT_READ,
             MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        free(g);
        return TG_ESYS;
    }
    g->words = p;
    g->dev   = sb->st_dev;
    g->ino   = sb->st_ino;
    memcpy(g->path, path, len);
    *out = g;
    return TG_OK;
}

tg_err
tg_gen_open_rw(tg_gen **out, const char *path, bool create)
{
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0);
    int fd    = open(path, flags, 0644);
    struct stat sb;
    uint64_t    magic = 0;
    tg_err      rv    = TG_ESYS;

    *out = NULL;
    if (fd < 0) {
        return errno == ENOENT ? TG_ENOTFOUND : TG_ESYS;
    }
    if (fstat(fd, &sb) != 0) {
        goto out;
    }
    if (!S_ISREG(sb.st_mode) ||
        (sb.st_size != 0 && sb.st_size != TG_GEN_SIZE)) {
        rv = TG_ECORRUPT;
        goto out;
    }
    if (sb.st_size == 0 && ftruncate(fd, TG_GEN_SIZE) != 0) {
        goto out;
    }
    if (sb.st_uid == geteuid()) {
        (void)fchmod(fd, 0644); /* whatever the umask made of it */
    }
    if ((rv = tg_gen_map(out, path, fd, &sb, true)) != TG_OK) {
        goto out;
    }
    /* A new file is all zeros: it gets the magic number. */
    if (!atomic_compare_exchange_strong(&(*out)->words[0], &magic,
                                        TG_GEN_MAGIC) &&
        magic != TG_GEN_MAGIC) {
        tg_gen_close(*out);
        *out = NULL;
        rv   = TG_ECORRUPT;
    }
out:
    close(fd);
    return rv;
}

tg_err
tg_gen_open_ro(tg_gen **out, const char *path, int64_t owner_uid)
{
    uid_t       owner = owner_uid < 0 ? geteuid() : (uid_t)owner_uid;
    int         fd    = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    tg_err      rv;

    *out = NULL;
    if (fd < 0) {
        return errno == ENOENT ? TG_ENOTFOUND : TG_ESYS;
    }
    if (fstat(fd, &sb) != 0) {
        rv = TG_ESYS;
    } else if (!S_ISREG(sb.st_mode) || sb.st_size != TG_GEN_SIZE ||
               sb.st_uid != owner ||
               (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        rv = TG_ECONFIG;
    } else if ((rv = tg_gen_map(out, path, fd, &sb, false)) == TG_OK &&
               atomic_load(&(*out)->words[0]) != TG_GEN_MAGIC) {
        tg_gen_close(*out);
        *out = NULL;
        rv   = TG_ECONFIG;
    }
    close(fd);
    return rv;
}

void
tg_gen_close(tg_gen *g)
{
    if (g == NULL) {
        return;
    }
    munmap((void *)g->words, TG_GEN_SIZE);
    free(g);
}

void
tg_gen_bump(tg_gen *g)
{
    atomic_fetch_add_explicit(&g->words[1], 1, memory_order_release);
}

uint64_t
tg_gen_load(const tg_gen *g)
{
    return atomic_load_explicit(&g->words[1], memory_order_acquire);
}

bool
tg_gen_still_there(const tg_gen *g)
{
    struct stat sb;

    return stat(g->path, &sb) == 0 && sb.st_dev == g->dev &&
           sb.st_ino == g->ino;
}
