/* tg_framing.c - see tg_framing.h. */
#include "tg_framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What tg_framing_iter learns from one request's header lines. */
typedef struct {
    size_t      bytes;  /* as on the wire: "name: value\r\n" each */
    unsigned    n_clen; /* Content-Length lines */
    const char *clen;   /* the first one's value */
    bool        clen_conflict;
    bool        clen_invalid;
    unsigned    n_te;       /* Transfer-Encoding lines */
    bool        te_chunked; /* the (one) line says exactly "chunked" */
} tg_framing_seen;

/* tg_framing_decimal: value is 1*DIGIT (RFC 9110, section 8.6). A list
 * ("5, 5"), a sign or spaces inside are refused, not interpreted. */
static bool
tg_framing_decimal(const char *value)
{
    if (*value == '\0' || strlen(value) > 18) {
        return false;
    }
    for (const char *p = value; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return true;
}

static enum MHD_Result
tg_framing_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                const char *value)
{
    tg_framing_seen *f = cls;

    (void)kind;
    value = value != NULL ? value : "";
    f->bytes += strlen(key) + strlen(value) + 4;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (!tg_framing_decimal(value)) {
            f->clen_invalid = true;
        }
        if (f->n_clen++ == 0) {
            f->clen = value;
        } else if (strcmp(f->clen, value) != 0) {
            f->clen_conflict = true;
        }
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->n_te++;
        f->te_chunked = strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

static bool
tg_framing_refuse(tg_framing_refusal *why, unsigned status, const char *code,
                  const char *message)
{
    why->status = status;
    why->code   = code;
    snprintf(why->message, sizeof(why->message), "%s", message);
    return true;
}

bool
tg_framing_check(struct MHD_Connection *conn, const char *url,
                 const char *method, size_t max_header_bytes,
                 tg_framing_refusal *why)
{
    tg_framing_seen f = {0};

    MHD_get_connection_values(conn, MHD_HEADER_KIND, tg_framing_iter, &f);
    if (f.n_te > 0 && f.n_clen > 0) {
        return tg_framing_refuse(
            why, 400, "invalid_framing",
            "Send either Content-Length or Transfer-Encoding, not both.");
    }
    /* Only chunked is decoded here; "gzip, chunked", a repeated line, or
     * a coding that is not chunked would leave the body's end unclear. */
    if (f.n_te > 1 || (f.n_te == 1 && !f.te_chunked)) {
        return tg_framing_refuse(why, 501, "unsupported_transfer_encoding",
                                 "Transfer-Encoding must be exactly "
                                 "chunked (or send Content-Length).");
    }
    if (f.clen_conflict) {
        return tg_framing_refuse(why, 400, "invalid_framing",
                                 "The request has conflicting "
                                 "Content-Length headers.");
    }
    if (f.clen_invalid) {
        return tg_framing_refuse(why, 400, "invalid_framing",
                                 "Content-Length must be a single decimal "
                                 "number.");
    }
    /* The request line: method, target, "HTTP/1.1" and separators. */
    f.bytes += strlen(method) + strlen(url) + 12;
    if (f.bytes > max_header_bytes) {
        why->status = 431;
        why->code   = "request_header_fields_too_large";
        snprintf(why->message, sizeof(why->message),
                 "The request headers are larger than this server accepts "
                 "(%zu bytes).",
                 max_header_bytes);
        return true;
    }
    return false;
}

enum MHD_Result
tg_framing_respond(struct MHD_Connection *c, unsigned status,
                   const char *type, const char *body, size_t len, bool close)
{
    struct MHD_Response *r;
    enum MHD_Result      ret;

    r = MHD_create_response_from_buffer(len, (void *)body,
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (close) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}
