/* inj_review.h - one admission.k8s.io/v1 AdmissionReview in, one out:
 * the webhook's whole answer, without HTTP (inj_server adds that), so the
 * golden tests drive exactly what the API server sees. Pure and
 * thread-safe. */
#ifndef INJ_REVIEW_H
#define INJ_REVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "inj_config.h"
#include "tg_err.h"

/* A review larger than this is refused (the API server's own request
 * limit is 3 MiB). */
#define INJ_REVIEW_MAX_BYTES (4u << 20)

typedef struct inj_reply {
    unsigned int status; /* 200, or 400 for a review that is malformed */
    const char  *type;   /* Content-Type of body (static) */
    char        *body;   /* owned: free with inj_reply_fini */
    size_t       len;
    /* What happened, for the log: uid, namespace, pod name and verdict;
     * never an env value, an annotation value or the body. */
    char log[512];
} inj_reply;

/* inj_review_handle answers the review in body (len bytes). A malformed
 * review (not JSON, wrong apiVersion/kind, no request.uid or
 * request.object, over INJ_REVIEW_MAX_BYTES) is a 400 with a text body
 * naming what is wrong. Anything else is a 200 AdmissionReview whose
 * response echoes the uid: allowed with a base64 JSONPatch, allowed
 * unchanged, or denied with status.message. TG_ENOMEM only. Borrows cfg
 * and body until return. Owns: out->body. */
tg_err inj_review_handle(const inj_config *cfg, const char *body, size_t len,
                         bool default_inject, inj_reply *out)
    __attribute__((warn_unused_result));

void inj_reply_fini(inj_reply *r);

/* inj_b64_encode returns data as standard base64 (with padding), NULL when
 * out of memory. Owns: the result, free(). */
char *inj_b64_encode(const void *data, size_t len);

/* inj_b64_decode decodes standard base64 into a new NUL-terminated buffer
 * (*outlen bytes before the NUL). TG_EINVAL for invalid text. Owns:
 * *out, free(). */
tg_err inj_b64_decode(const char *s, char **out, size_t *outlen);

#endif
