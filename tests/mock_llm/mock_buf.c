/* mock_buf.c - growable byte buffer; see mock_buf.h. */
#include "mock_buf.h"

#include <stdlib.h>
#include <string.h>

void
mock_buf_init(mock_buf *b)
{
    b->data   = NULL;
    b->len    = 0;
    b->cap    = 0;
    b->failed = false;
}

void
mock_buf_fini(mock_buf *b)
{
    free(b->data);
    mock_buf_init(b);
}

void
mock_buf_clear(mock_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

bool
mock_buf_reserve(mock_buf *b, size_t extra)
{
    size_t need;
    size_t ncap;
    char  *nd;

    if (b->failed) {
        return false;
    }
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    need = b->len + extra + 1; /* + NUL */
    if (need <= b->cap) {
        return true;
    }
    ncap = b->cap < 256 ? 256 : b->cap;
    while (ncap < need) {
        ncap *= 2;
    }
    nd = realloc(b->data, ncap);
    if (nd == NULL) {
        b->failed = true;
        return false;
    }
    b->data = nd;
    b->cap  = ncap;
    return true;
}

void
mock_buf_add(mock_buf *b, const void *p, size_t n)
{
    if (!mock_buf_reserve(b, n)) {
        return;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void
mock_buf_adds(mock_buf *b, const char *s)
{
    mock_buf_add(b, s, strlen(s));
}

void
mock_buf_addc(mock_buf *b, char c)
{
    mock_buf_add(b, &c, 1);
}

void
mock_buf_add_u64(mock_buf *b, uint64_t v)
{
    char  tmp[24];
    char *p = tmp + sizeof(tmp);

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    mock_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void
mock_buf_add_i64(mock_buf *b, int64_t v)
{
    if (v < 0) {
        mock_buf_addc(b, '-');
        /* negate in unsigned arithmetic so INT64_MIN does not overflow */
        mock_buf_add_u64(b, (uint64_t)0 - (uint64_t)v);
        return;
    }
    mock_buf_add_u64(b, (uint64_t)v);
}

void
mock_buf_add_json_str(mock_buf *b, const char *s)
{
    mock_buf_addc(b, '"');
    mock_buf_add_json_chars(b, s, strlen(s));
    mock_buf_addc(b, '"');
}

void
mock_buf_add_json_chars(mock_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const char       *run   = s;
    const char       *end   = s + n;

    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        char          esc[6];
        size_t        elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        mock_buf_add(b, run, (size_t)(s - run));
        run    = s + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            elen   = 6;
            break;
        }
        mock_buf_add(b, esc, elen);
    }
    mock_buf_add(b, run, (size_t)(s - run));
}

bool
mock_buf_failed(const mock_buf *b)
{
    return b->failed;
}

char *
mock_buf_take(mock_buf *b, size_t *len)
{
    char *out;

    if (b->failed || !mock_buf_reserve(b, 0)) {
        mock_buf_fini(b);
        *len = 0;
        return NULL;
    }
    out  = b->data;
    *len = b->len;
    mock_buf_init(b);
    return out;
}
