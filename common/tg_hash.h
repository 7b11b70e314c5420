/* tg_hash.h - SHA-256, hex and random tokens (OpenSSL libcrypto).
 * Thread-safe. */
#ifndef TG_HASH_H
#define TG_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

#define TG_SHA256_LEN 32

void tg_sha256(const void *data, size_t len, uint8_t out[TG_SHA256_LEN]);

/* tg_fnv1a continues a 64-bit FNV-1a hash h (begin with TG_FNV_BASIS) over
 * n bytes: the one hash of every in-memory table (never for secrets, never
 * stored). */
#define TG_FNV_BASIS 14695981039346656037ull
static inline uint64_t
tg_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

/* tg_hex writes 2*len hex digits and a NUL into out (size >= 2*len+1). */
void tg_hex(const uint8_t *data, size_t len, char *out);

/* tg_random_token fills out with nbytes of CSPRNG output as lowercase hex
 * (out size >= 2*nbytes+1). */
tg_err tg_random_token(char *out, size_t nbytes);

/* tg_ct_equal compares in constant time. */
int tg_ct_equal(const void *a, const void *b, size_t len);

#endif
