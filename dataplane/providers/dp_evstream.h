/* dp_evstream.h - the AWS event stream framing
 * (application/vnd.amazon.eventstream) that Bedrock's ConverseStream
 * answers in, decoded by hand: each message is a prelude (total length,
 * headers length: u32 big-endian; a CRC-32 of those 8 bytes), headers
 * (name length u8, name, value type u8, value), a payload and a CRC-32 of
 * everything before it. Bytes may arrive cut anywhere: the decoder
 * buffers up to one message. One decoder per stream: not thread-safe;
 * no I/O. */
#ifndef DP_EVSTREAM_H
#define DP_EVSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"

/* The largest message the decoder accepts (a declared length above it
 * ends the stream: never an allocation of what a peer claims). */
#define DP_EVS_MAX (16u << 20)

/* One decoded message. The string headers the data plane acts on are
 * copied (truncated to fit); the payload is borrowed from the decoder,
 * valid only during the callback. */
typedef struct dp_evs_msg {
    char        message_type[32];   /* ":message-type": event, exception */
    char        event_type[64];     /* ":event-type" */
    char        exception_type[64]; /* ":exception-type" */
    char        content_type[64];   /* ":content-type" */
    const char *payload;
    size_t      payload_len;
} dp_evs_msg;

/* dp_evs_cb is called once per whole message; non-TG_OK stops the feed
 * and is returned by it. */
typedef tg_err (*dp_evs_cb)(void *arg, const dp_evs_msg *m);

typedef struct dp_evs {
    tg_buf buf;    /* the bytes of a message not yet whole */
    size_t max;    /* DP_EVS_MAX unless a test sets less */
    bool   failed; /* a bad frame: everything after is refused */
    char   why[96];
} dp_evs;

/* dp_evs_init / dp_evs_fini: an empty decoder (max 0: DP_EVS_MAX). */
void dp_evs_init(dp_evs *d, size_t max);
void dp_evs_fini(dp_evs *d);

/* dp_evs_feed decodes data[0..len), calling cb for each message it
 * completes. TG_EPROTO (d->why says which) for a prelude or message CRC
 * that does not match, a length out of range (shorter than a frame, or
 * above max), or a header that does not fit or has an unknown value type
 * (> 9); after that every feed returns TG_EPROTO. Borrows data. */
tg_err dp_evs_feed(dp_evs *d, const char *data, size_t len, dp_evs_cb cb,
                   void *arg);

/* dp_evs_pending: bytes of an unfinished message are buffered (the
 * stream ended mid-frame). */
bool dp_evs_pending(const dp_evs *d);

/* dp_evs_crc32 continues the CRC-32 (IEEE 802.3, as zlib's crc32) crc
 * over p[0..n); start with 0. */
uint32_t dp_evs_crc32(uint32_t crc, const void *p, size_t n);

#endif
