/* tg_buf.h - a size-capped growable byte buffer. Appends past the cap fail
 * with TG_ETOOBIG and leave the buffer unchanged; no failure goes unseen. The content is always
 * NUL-terminated (the NUL is not counted in len). Not thread-safe. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "tg_err.h"

typedef struct tg_buf {
    char  *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* 0: unlimited */
    tg_err err; /* the first failed tg_buf_add/addf since init or reset */
} tg_buf;

void tg_buf_init(tg_buf *b, size_t max);
void tg_buf_fini(tg_buf *b);
/* tg_buf_reset empties b and forgets a failed add. */
void tg_buf_reset(tg_buf *b);

/* tg_buf_append and tg_buf_printf append, or fail with TG_ETOOBIG (over
 * max) or TG_ENOMEM and leave b as it was: check each result. */
tg_err tg_buf_append(tg_buf *b, const void *data, size_t len)
    __attribute__((warn_unused_result));
tg_err tg_buf_printf(tg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));

/* For a text built from many pieces: tg_buf_add and tg_buf_addf append the
 * same way, but the first failure is kept in b (the adds after it do
 * nothing), to be checked once, with tg_buf_error, before the text is
 * used: it is never used with a piece missing. */
void tg_buf_add(tg_buf *b, const void *data, size_t len);
void tg_buf_addf(tg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
tg_err tg_buf_error(const tg_buf *b) __attribute__((warn_unused_result));
/* tg_buf_fail marks b failed with err (a piece of it could not be made). */
void tg_buf_fail(tg_buf *b, tg_err err);
/* tg_vec_reserve makes room for need elements of elem bytes in a growable
 * array: arrp is the address of its pointer (any element type), *cap its
 * capacity in elements, which doubles (from 16) until need fits. false
 * when out of memory or the size would overflow (nothing changed). The one
 * growable array of the code base. */
bool tg_vec_reserve(void *arrp, size_t *cap, size_t need, size_t elem)
    __attribute__((warn_unused_result));

/* tg_buf_consume drops the first n bytes. */
void tg_buf_consume(tg_buf *b, size_t n);

#endif
