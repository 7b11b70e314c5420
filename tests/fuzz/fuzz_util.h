/* fuzz_util.h - small helpers shared by the libFuzzer targets: a NUL-
 * terminated copy of the input, splitting it into parts, and files in a
 * per-process scratch directory for the APIs that read paths. Test code
 * only; single-threaded like libFuzzer's default run. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <fcntl.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_strndup copies data into a fresh NUL-terminated heap string (free()),
 * so that a read past size is caught by ASan. Aborts on ENOMEM. */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL) {
        abort();
    }
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* fuzz_split finds the next part of [*p, end) ended by sep (or end): sets
 * *len, returns its start and moves *p past the separator. NULL when no
 * bytes are left. */
static inline const uint8_t *
fuzz_split(const uint8_t **p, const uint8_t *end, const char *sep,
           size_t *len)
{
    const uint8_t *start = *p;
    size_t         sl    = strlen(sep);
    const uint8_t *hit;

    if (start >= end) {
        return NULL;
    }
    hit = memmem(start, (size_t)(end - start), sep, sl);
    if (hit == NULL) {
        *len = (size_t)(end - start);
        *p   = end;
    } else {
        *len = (size_t)(hit - start);
        *p   = hit + sl;
    }
    return start;
}

/* fuzz_scratch_dir makes (once per process) and returns a private
 * directory under $TMPDIR (or /tmp); it is removed at exit by the
 * caller's choice of rm -rf in run.sh, as libFuzzer may _exit. */
static inline const char *
fuzz_scratch_dir(void)
{
    static char dir[256];
    const char *tmp;

    if (dir[0] != '\0') {
        return dir;
    }
    tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/tg-fuzz-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    return dir;
}

/* fuzz_write_file replaces path with len bytes of data. Aborts on error:
 * a harness failure must not pass for a finding. */
static inline void
fuzz_write_file(const char *path, const void *data, size_t len)
{
    int fd;

    /* A new file each time, not a truncated one: ext4 flushes a file that
     * was truncated and rewritten when it is closed (auto_da_alloc), which
     * made the file-reading targets wait on the disk ~90% of the time. */
    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t)len) ||
        close(fd) != 0) {
        perror(path);
        abort();
    }
}

#endif
