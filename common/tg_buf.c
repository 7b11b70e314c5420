#include "tg_buf.h"

#include <stdarg.h>
#include <stdint.h>
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
    b->err  = TG_OK;
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
    b->err = TG_OK;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

static tg_err
tg_buf_reserve(tg_buf *b, size_t extra)
{
    size_t need;
    size_t ncap;
    char  *nd;

    if (extra > SIZE_MAX / 2 - b->len ||
        (b->max != 0 && b->len + extra > b->max)) {
        return TG_ETOOBIG;
    }
    need = b->len + extra + 1;
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

static tg_err
tg_buf_vprintf(tg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int     n;
    tg_err  rv;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return TG_EINVAL;
    }
    if ((rv = tg_buf_reserve(b, (size_t)n)) != TG_OK) {
        return rv;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return TG_OK;
}

tg_err
tg_buf_printf(tg_buf *b, const char *fmt, ...)
{
    va_list ap;
    tg_err  rv;

    va_start(ap, fmt);
    rv = tg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rv;
}

void
tg_buf_add(tg_buf *b, const void *data, size_t len)
{
    if (b->err == TG_OK) {
        b->err = tg_buf_append(b, data, len);
    }
}

void
tg_buf_addf(tg_buf *b, const char *fmt, ...)
{
    va_list ap;

    if (b->err == TG_OK) {
        va_start(ap, fmt);
        b->err = tg_buf_vprintf(b, fmt, ap);
        va_end(ap);
    }
}

void
tg_buf_fail(tg_buf *b, tg_err err)
{
    if (b->err == TG_OK) {
        b->err = err;
    }
}

tg_err
tg_buf_error(const tg_buf *b)
{
    return b->err;
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

bool
tg_vec_reserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap != 0 ? *cap : 16;
    void  *v;
    void  *nv;

    if (need <= *cap) {
        return true;
    }
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            return false;
        }
        ncap *= 2;
    }
    if (elem != 0 && ncap > SIZE_MAX / elem) {
        return false;
    }
    memcpy(&v, arrp, sizeof(v));
    if ((nv = realloc(v, ncap * elem)) == NULL) {
        return false;
    }
    memcpy(arrp, &nv, sizeof(nv));
    *cap = ncap;
    return true;
}
