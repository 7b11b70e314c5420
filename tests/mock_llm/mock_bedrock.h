/* mock_bedrock.h - Amazon Bedrock Converse for the mock LLM
 * (POST /model/{modelId}/converse and /converse-stream): request parsing,
 * the reply, ConverseStream events in the AWS event stream framing (with
 * their CRCs), errors in Bedrock's shape ({"message"} and an
 * x-amzn-ErrorType header), and the check of a request's SigV4 signature
 * against the mock's secret. Pure functions; thread-safe. */
#ifndef MOCK_BEDROCK_H
#define MOCK_BEDROCK_H

#include <stdbool.h>
#include <stddef.h>

#include "mock_wire.h"

extern const mock_wire_fmt mock_bedrock_fmt;

/* mock_bedrock_error_type: the x-amzn-ErrorType of an error status. */
const char *mock_bedrock_error_type(unsigned status);

/* mock_bedrock_corrupt flips a bit of the message CRC of the last frame
 * in b (a frame the stream then sends damaged). */
void mock_bedrock_corrupt(mock_buf *b);

/* A request as the SigV4 check sees it; header looks a header up by name
 * (case-insensitive; NULL when absent). */
typedef struct mock_sigv4_req {
    const char *method;
    const char *path; /* decoded, as MHD gives it */
    const char *body;
    size_t      body_len;
    const char *(*header)(void *ctx, const char *name);
    void *ctx;
} mock_sigv4_req;

/* mock_bedrock_sigv4_check recomputes the AWS SigV4 signature (service
 * "bedrock", HMAC-SHA256 with "AWS4" + secret) of r from the headers its
 * Authorization names and the body's hash, and compares. NULL when it
 * matches; else why not (for the 403 body). */
const char *mock_bedrock_sigv4_check(const mock_sigv4_req *r,
                                     const char *secret, char *err,
                                     size_t errsz);

#endif
