/* mock_sigv4.c - the mock's check of an AWS SigV4 signature (see
 * mock_bedrock.h) as AWS checks it for services other than S3: parse the
 * Authorization header, rebuild the canonical request from the method,
 * the path as sent URI-encoded once more (MHD hands us the path decoded:
 * it is encoded twice, so a model id's ':' sent as %3A is signed as
 * %253A), the signed headers' values and the SHA-256 of the body, then
 * the string to sign and the HMAC-SHA256 chain from "AWS4" + secret, and
 * compare the hex signature. libcurl 7.88's CURLOPT_AWS_SIGV4 signs the
 * path encoded once and fails here, as it does at AWS. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "mock_bedrock.h"
#include "mock_buf.h"

static void
mock_sig__hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i]     = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void
mock_sig__sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];

    SHA256(p, n, d);
    mock_sig__hex(d, sizeof(d), out);
}

static void
mock_sig__hmac(const void *key, size_t klen, const char *msg,
               unsigned char out[32])
{
    unsigned int n = 32;

    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
         out, &n);
}

/* mock_sig__field copies the value of "name=" in the Authorization
 * header (up to ',' or the end) into out. */
static bool
mock_sig__field(const char *auth, const char *name, char *out, size_t outsz)
{
    const char *p = strstr(auth, name);
    size_t      n;

    if (p == NULL) {
        return false;
    }
    p += strlen(name);
    n = strcspn(p, ", ");
    if (n == 0 || n >= outsz) {
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* mock_sig__uri appends the canonical URI: path with every byte but the
 * unreserved ones and '/' percent-encoded. */
static void
mock_sig__uri(mock_buf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
            *p == '/') {
            mock_buf_addc(b, (char)*p);
        } else {
            mock_buf_addc(b, '%');
            mock_buf_addc(b, hex[*p >> 4]);
            mock_buf_addc(b, hex[*p & 15]);
        }
    }
}

/* mock_sig__canonical builds the canonical request into b. */
static void
mock_sig__canonical(mock_buf *b, const mock_sigv4_req *r, const char *signed_h)
{
    char        body_hash[65];
    const char *s = signed_h;

    mock_buf once;

    mock_buf_adds(b, r->method);
    mock_buf_addc(b, '\n');
    mock_buf_init(&once);
    mock_sig__uri(&once, r->path); /* the path as it was sent */
    mock_sig__uri(b, once.data != NULL ? once.data : "");
    if (mock_buf_failed(&once)) {
        b->failed = true;
    }
    mock_buf_fini(&once);
    mock_buf_adds(b, "\n\n"); /* no query string */
    while (*s != '\0') {
        size_t      n = strcspn(s, ";");
        char        name[128];
        const char *v;

        snprintf(name, sizeof(name), "%.*s", (int)n, s);
        v = r->header(r->ctx, name);
        mock_buf_adds(b, name);
        mock_buf_addc(b, ':');
        if (v != NULL) {
            while (*v == ' ') {
                v++;
            }
            size_t vl = strlen(v);
            while (vl > 0 && v[vl - 1] == ' ') {
                vl--;
            }
            mock_buf_add(b, v, vl);
        }
        mock_buf_addc(b, '\n');
        s += n;
        if (*s == ';') {
            s++;
        }
    }
    mock_buf_addc(b, '\n');
    mock_buf_adds(b, signed_h);
    mock_buf_addc(b, '\n');
    mock_sig__sha256_hex(r->body != NULL ? r->body : "", r->body_len,
                         body_hash);
    mock_buf_adds(b, body_hash);
}

const char *
mock_bedrock_sigv4_check(const mock_sigv4_req *r, const char *secret, char *err,
                         size_t errsz)
{
    const char   *auth = r->header(r->ctx, "authorization");
    const char   *date = r->header(r->ctx, "x-amz-date");
    char          cred[256], signed_h[512], sig[80], scope[200], hash[65];
    char          key[300], want[65];
    char          day[16], region[64], service[64];
    unsigned char k[32], k2[32];
    mock_buf      c;

    if (auth == NULL || date == NULL) {
        return "Missing Authentication Token";
    }
    if (strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0 ||
        !mock_sig__field(auth, "Credential=", cred, sizeof(cred)) ||
        !mock_sig__field(auth, "SignedHeaders=", signed_h, sizeof(signed_h)) ||
        !mock_sig__field(auth, "Signature=", sig, sizeof(sig)) ||
        sscanf(cred, "%*[^/]/%15[^/]/%63[^/]/%63[^/]/aws4_request", day, region,
               service) != 3 ||
        strncmp(date, day, strlen(day)) != 0) {
        return "Authorization header requires 'Credential', "
               "'SignedHeaders' and 'Signature' of AWS4-HMAC-SHA256.";
    }
    if (strcmp(service, "bedrock") != 0) {
        return "Credential should be scoped to correct service: 'bedrock'.";
    }
    if (strstr(signed_h, "host") == NULL ||
        strstr(signed_h, "x-amz-date") == NULL ||
        (r->header(r->ctx, "x-amz-security-token") != NULL &&
         strstr(signed_h, "x-amz-security-token") == NULL)) {
        return "The request signature must cover host, x-amz-date and "
               "x-amz-security-token.";
    }
    mock_buf_init(&c);
    mock_sig__canonical(&c, r, signed_h);
    if (mock_buf_failed(&c)) {
        mock_buf_fini(&c);
        return "mock: out of memory";
    }
    mock_sig__sha256_hex(c.data, c.len, hash);
    mock_buf_fini(&c);
    snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", day, region,
             service);
    mock_buf_init(&c);
    mock_buf_adds(&c, "AWS4-HMAC-SHA256\n");
    mock_buf_adds(&c, date);
    mock_buf_addc(&c, '\n');
    mock_buf_adds(&c, scope);
    mock_buf_addc(&c, '\n');
    mock_buf_adds(&c, hash);
    snprintf(key, sizeof(key), "AWS4%s", secret);
    mock_sig__hmac(key, strlen(key), day, k);
    mock_sig__hmac(k, 32, region, k2);
    mock_sig__hmac(k2, 32, service, k);
    mock_sig__hmac(k, 32, "aws4_request", k2);
    mock_sig__hmac(k2, 32, c.data != NULL ? c.data : "", k);
    mock_buf_fini(&c);
    mock_sig__hex(k, 32, want);
    if (strcmp(want, sig) != 0) {
        snprintf(err, errsz,
                 "The request signature we calculated does not match the "
                 "signature you provided. Check your AWS Secret Access Key "
                 "and signing method.");
        return err;
    }
    return NULL;
}
