/* tg_buf.h - a size-capped growable byte buffer. Appends past the cap fail
 * with TG_ETOOBIG and leave the buffer unchanged. The content is always
 * NUL-terminated (the NUL is not counted in len). Not thread-safe. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>

#include "tg_err.h"

typedef struct tg_buf {
    char  *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* 0: unlimited */
} tg_buf;

void   tg_buf_init(tg_buf *b, size_t max);
void   tg_buf_fini(tg_buf *b);
void   tg_buf_reset(tg_buf *b);
tg_err tg_buf_append(tg_buf *b, const void *data, size_t len);
tg_err tg_buf_printf(tg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* tg_buf_consume drops the first n bytes. */
void tg_buf_consume(tg_buf *b, size_t n);

#endif
