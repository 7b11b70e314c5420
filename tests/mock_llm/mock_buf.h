/* mock_buf.h - growable byte buffer for building response bodies.
 * Not thread-safe; one buffer per user. An allocation failure is sticky:
 * later appends do nothing and mock_buf_failed() reports it, so a builder
 * checks once at the end instead of after every append. */
#ifndef MOCK_BUF_H
#define MOCK_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mock_buf {
    char  *data; /* NUL-terminated whenever non-NULL */
    size_t len;
    size_t cap;
    bool   failed;
} mock_buf;

void mock_buf_init(mock_buf *b);

/* mock_buf_fini frees the memory; the buffer may be initialised again. */
void mock_buf_fini(mock_buf *b);

/* mock_buf_clear empties the buffer but keeps its memory and failure. */
void mock_buf_clear(mock_buf *b);

/* mock_buf_reserve makes room for extra more bytes; false on ENOMEM. */
bool mock_buf_reserve(mock_buf *b, size_t extra);

void mock_buf_add(mock_buf *b, const void *p, size_t n);
void mock_buf_adds(mock_buf *b, const char *s);
void mock_buf_addc(mock_buf *b, char c);
void mock_buf_add_u64(mock_buf *b, uint64_t v);
void mock_buf_add_i64(mock_buf *b, int64_t v);

/* mock_buf_add_json_str appends s as a quoted JSON string. */
void mock_buf_add_json_str(mock_buf *b, const char *s);

/* mock_buf_add_json_chars appends s[0..n) escaped for the inside of a JSON
 * string, without quotes. Bytes >= 0x80 pass through, so UTF-8 stays
 * UTF-8; s may hold NULs. */
void mock_buf_add_json_chars(mock_buf *b, const char *s, size_t n);

bool mock_buf_failed(const mock_buf *b);

/* mock_buf_take returns the contents and leaves the buffer empty.
 * Owns: the caller frees the result with free(). NULL if an append failed
 * (the buffer is then freed and reset too). *len gets the length. */
char *mock_buf_take(mock_buf *b, size_t *len);

#endif
