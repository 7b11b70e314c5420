#include "tg_hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

void
tg_sha256(const void *data, size_t len, uint8_t out[TG_SHA256_LEN])
{
    unsigned int n = TG_SHA256_LEN;

    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void
tg_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i]     = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}

tg_err
tg_random_token(char *out, size_t nbytes)
{
    uint8_t raw[64];

    if (nbytes > sizeof(raw)) {
        return TG_EINVAL;
    }
    if (RAND_bytes(raw, (int)nbytes) != 1) {
        return TG_ESYS;
    }
    tg_hex(raw, nbytes, out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return TG_OK;
}

int
tg_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
