/* dp_sigv4.c - see dp_sigv4.h. */
#include "dp_sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "tg_buf.h"
#include "tg_hash.h"

static void
dp_sigv4_hmac(const void *key, size_t klen, const char *msg, size_t mlen,
              unsigned char out[32])
{
    unsigned int n = 32;

    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out,
         &n);
}

/* dp_sigv4_uri appends path URI-encoded: every byte but the unreserved
 * ones and '/' as %XX (so a '%' already there becomes %25). */
static void
dp_sigv4_uri(tg_buf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
            *p == '/') {
            tg_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            tg_buf_add(b, e, 3);
        }
    }
}

/* dp_sigv4_canonical builds the canonical request into b and the signed
 * header names into names. */
static void
dp_sigv4_canonical(const dp_sigv4_req *r, const char *date, tg_buf *b,
                   char *names, size_t nameslen)
{
    unsigned char h[32];
    char          hex[65];

    snprintf(names, nameslen, "%shost;x-amz-date%s",
             r->content_type != NULL ? "content-type;" : "",
             r->token != NULL ? ";x-amz-security-token" : "");
    tg_buf_addf(b, "%s\n", r->method);
    dp_sigv4_uri(b, r->path);
    tg_buf_addf(b, "\n\n");
    if (r->content_type != NULL) {
        tg_buf_addf(b, "content-type:%s\n", r->content_type);
    }
    tg_buf_addf(b, "host:%s\nx-amz-date:%s\n", r->host, date);
    if (r->token != NULL) {
        tg_buf_addf(b, "x-amz-security-token:%s\n", r->token);
    }
    SHA256(r->body != NULL ? r->body : (const void *)"", r->len, h);
    tg_hex(h, 32, hex);
    tg_buf_addf(b, "\n%s\n%s", names, hex);
}

tg_err
dp_sigv4_sign(const dp_sigv4_req *r, char *date, size_t datelen, char *auth,
              size_t authlen)
{
    struct tm     tm;
    char          day[9], names[96], scope[160], hex[65], key[320];
    unsigned char h[32], k1[32], k2[32];
    tg_buf        b;
    tg_err        rv;
    int           n;

    if (gmtime_r(&r->now, &tm) == NULL || datelen < 17 ||
        strftime(date, datelen, "%Y%m%dT%H%M%SZ", &tm) == 0) {
        return TG_EINVAL;
    }
    memcpy(day, date, 8);
    day[8] = '\0';
    tg_buf_init(&b, 0);
    dp_sigv4_canonical(r, date, &b, names, sizeof(names));
    if ((rv = tg_buf_error(&b)) != TG_OK) {
        tg_buf_fini(&b);
        return rv;
    }
    SHA256((const unsigned char *)b.data, b.len, h);
    tg_hex(h, 32, hex);
    snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", day, r->region,
             r->service);
    tg_buf_reset(&b);
    tg_buf_addf(&b, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope, hex);
    n = snprintf(key, sizeof(key), "AWS4%s", r->secret);
    if ((rv = tg_buf_error(&b)) != TG_OK || n < 0 || (size_t)n >= sizeof(key)) {
        tg_buf_fini(&b);
        explicit_bzero(key, sizeof(key));
        return rv != TG_OK ? rv : TG_ETOOBIG;
    }
    dp_sigv4_hmac(key, (size_t)n, day, 8, k1);
    dp_sigv4_hmac(k1, 32, r->region, strlen(r->region), k2);
    dp_sigv4_hmac(k2, 32, r->service, strlen(r->service), k1);
    dp_sigv4_hmac(k1, 32, "aws4_request", 12, k2);
    dp_sigv4_hmac(k2, 32, b.data, b.len, k1);
    explicit_bzero(key, sizeof(key));
    explicit_bzero(k2, sizeof(k2));
    tg_buf_fini(&b);
    tg_hex(k1, 32, hex);
    n = snprintf(auth, authlen,
                 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                 "Signature=%s",
                 r->key_id, scope, names, hex);
    return n < 0 || (size_t)n >= authlen ? TG_ETOOBIG : TG_OK;
}

tg_err
dp_sigv4_host(const char *url, char *out, size_t outlen, const char **path)
{
    const char *p = strstr(url, "://");
    size_t      n;

    if (p == NULL) {
        return TG_EINVAL;
    }
    p += 3;
    n = strcspn(p, "/?#");
    if (n == 0 || n >= outlen || memchr(p, '@', n) != NULL) {
        return TG_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)tolower((unsigned char)p[i]);
    }
    out[n] = '\0';
    *path  = p + n;
    return strpbrk(*path, "?#") != NULL ? TG_EINVAL : TG_OK;
}
