/* dp_sigv4.h - AWS Signature Version 4 for one request, as AWS's own SDKs
 * compute it for services other than S3: the canonical URI is the path as
 * sent, URI-encoded once more (a Bedrock model id's ':' is sent as %3A
 * and signed as %253A; libcurl 7.88's CURLOPT_AWS_SIGV4 signs the path as
 * sent, which AWS refuses for such ids), an empty query, the signed
 * headers content-type, host, x-amz-date and (with a session token)
 * x-amz-security-token, and the SHA-256 of the body. HMAC and SHA-256 are
 * OpenSSL's. Pure: thread-safe. */
#ifndef DP_SIGV4_H
#define DP_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "tg_err.h"

typedef struct dp_sigv4_req {
    const char *method;       /* "POST" */
    const char *host;         /* the Host header as sent ("h:port") */
    const char *path;         /* as sent, already percent-encoded */
    const char *content_type; /* NULL: not signed */
    const void *body;
    size_t      len;
    const char *key_id;
    const char *secret;
    const char *token; /* NULL: none */
    const char *region;
    const char *service;
    time_t      now;
} dp_sigv4_req;

/* dp_sigv4_sign writes the x-amz-date value ("20150830T123600Z") into
 * date (16+ bytes) and the whole Authorization header value into auth.
 * TG_ETOOBIG when auth is too small; TG_ENOMEM. Borrows r. */
tg_err dp_sigv4_sign(const dp_sigv4_req *r, char *date, size_t datelen,
                     char *auth, size_t authlen);

/* dp_sigv4_host copies the authority of an http(s) URL ("host[:port]",
 * as libcurl sends it in Host), lowercased, into out and points *path at
 * the URL's path (the api_base's own prefix included; "" when none).
 * TG_EINVAL if url has no authority or has a query (not signed here).
 * Borrows url: *path points into it. */
tg_err dp_sigv4_host(const char *url, char *out, size_t outlen,
                     const char **path);

#endif
