/* tg_framing.h - the HTTP/1.1 framing checks both listeners (the data
 * plane and the PDP admin listener) make before reading a request's body.
 * libmicrohttpd 0.9.75 takes the first of several Content-Length lines
 * (the rest of the body then reads as the next request), lets
 * Transfer-Encoding win over Content-Length on a connection it keeps open,
 * and limits headers by its memory pool, not by our limit. A request
 * refused here must be answered with "Connection: close" (RFC 9112,
 * section 6.3). Thread-safe (no state); called on the listener's thread. */
#ifndef TG_FRAMING_H
#define TG_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

/* Why a request was refused: the HTTP status, a stable error code and a
 * sentence for the client (ASCII with no quote, backslash or control
 * character: it may be put in a JSON string as it is). */
typedef struct {
    unsigned    status;
    const char *code;
    char        message[160];
} tg_framing_refusal;

/* tg_framing_check reads conn's request line and headers; returns true
 * (and fills *why) if the request must be refused: Content-Length with
 * Transfer-Encoding, a Transfer-Encoding other than one "chunked" (501),
 * Content-Length lines that disagree or are not plain decimal, or a request
 * line plus headers over max_header_bytes (431). */
bool tg_framing_check(struct MHD_Connection *conn, const char *url,
                      const char *method, size_t max_header_bytes,
                      tg_framing_refusal *why);

/* tg_framing_respond queues a whole answer: len bytes of body (copied)
 * as type, never cached (Cache-Control: no-store), and with "Connection:
 * close" when close is set. For the small fixed answers of the admin and
 * injector listeners. */
enum MHD_Result tg_framing_respond(struct MHD_Connection *c, unsigned status,
                                   const char *type, const char *body,
                                   size_t len, bool close);

#endif
