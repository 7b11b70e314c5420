#include "tg_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
tg_buf_init(tg_buf *b, size_t max)
{
    b->data = NULL;
    b->len  = 0;
    b->cap  = 0;
    b->max  = max;
}

void
tg_buf_fini(tg_buf *b)
{
    free(b->data);
    tg_buf_init(b, b->max);
}

void
tg_buf_reset(tg_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

static tg_err
tg_buf_reserve(tg_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t ncap;
    char  *nd;

    if (b->max != 0 && b->len + extra > b->max) {
        return TG_ETOOBIG;
    }
    if (need <= b->cap) {
        return TG_OK;
    }
    ncap = b->cap ? b->cap : 256;
    while (ncap < need) {
        ncap *= 2;
    }
    if ((nd = realloc(b->data, ncap)) == NULL) {
        return TG_ENOMEM;
    }
    b->data = nd;
    b->cap  = ncap;
    return TG_OK;
}

tg_err
tg_buf_append(tg_buf *b, const void *data, size_t len)
{
    tg_err rv = tg_buf_reserve(b, len);

    if (rv != TG_OK) {
        return rv;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return TG_OK;
}

tg_err
tg_buf_printf(tg_buf *b, const char *fmt, ...)
{
    va_list ap;
    int     n;
    tg_err  rv;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return TG_EINVAL;
    }
    if ((rv = tg_buf_reserve(b, (size_t)n)) != TG_OK) {
        return rv;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TG_OK;
}

void
tg_buf_consume(tg_buf *b, size_t n)
{
    if (n >= b->len) {
        tg_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
