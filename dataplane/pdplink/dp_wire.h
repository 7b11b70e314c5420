/* dp_wire.h - the data plane's side of the PDP wire protocol: encodes
 * Decide/Usage/Ping requests, decodes Decision/UsageAck replies. The only
 * data-plane code that touches protobuf-c. Thread-safe (no state). */
#ifndef DP_WIRE_H
#define DP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"
#include "tg_msg.h"

#define DP_WIRE_MAX_REQUEST 16384

/* dp_wire_encode_* pack into buf (cap bytes); TG_ETOOBIG if it does not
 * fit. Borrows the message until return. */
tg_err dp_wire_encode_decide(const tg_decide *d, uint8_t *buf, size_t cap,
                             size_t *len);
tg_err dp_wire_encode_usage(const tg_usage *u, uint8_t *buf, size_t cap,
                            size_t *len);
tg_err dp_wire_encode_ping(const char *request_id, int64_t sent_ms,
                           uint8_t *buf, size_t cap, size_t *len);

/* dp_wire_decode_decision decodes a reply that must carry a Decision for
 * request_id. Any decode error, oversized reply, wrong body, mismatched
 * request id or verdict other than ALLOW/DENY returns TG_EPROTO with a
 * reason in why: the caller must treat that as a deny, never an allow. */
tg_err dp_wire_decode_decision(const uint8_t *buf, size_t len, size_t max,
                               const char *request_id, tg_decision *out,
                               char *why, size_t whylen);

/* dp_wire_encode_usage_batch encodes n (1 to TG_USAGE_BATCH_MAX) reports
 * as one UsageBatch under batch_id. TG_ETOOBIG when it does not fit. */
tg_err dp_wire_encode_usage_batch(const tg_usage *u, size_t n,
                                  const char *batch_id, uint8_t *buf,
                                  size_t cap, size_t *len);

/* dp_wire_encode_usage_batch_content is dp_wire_encode_usage_batch with
 * each report's content (content[i] NULL: none) in its UsageItem. */
tg_err dp_wire_encode_usage_batch_content(const tg_usage    *u,
                                          const char *const *content,
                                          const size_t *content_len, size_t n,
                                          const char *batch_id, uint8_t *buf,
                                          size_t cap, size_t *len);

/* dp_wire_decode_usage_batch_ack reads the UsageBatchAck of the batch u
 * (n reports, sent as batch_id) into out[n]: one ack per report, in order,
 * each naming its report, or TG_EPROTO. */
tg_err dp_wire_decode_usage_batch_ack(const uint8_t *buf, size_t len,
                                      size_t max, const char *batch_id,
                                      const tg_usage *u, size_t n,
                                      tg_usage_item_ack *out, char *why,
                                      size_t whylen);

/* dp_wire_decode_usage_ack: same rules, for a UsageAck. */
tg_err dp_wire_decode_usage_ack(const uint8_t *buf, size_t len, size_t max,
                                const char *request_id, tg_usage_ack *out,
                                char *why, size_t whylen);

/* dp_wire_encode_guard_fetch asks for the guard set named hash. */
tg_err dp_wire_encode_guard_fetch(const char *request_id, const char *hash,
                                  uint8_t *buf, size_t cap, size_t *len);

/* dp_wire_decode_guard_set reads the GuardSetReply for hash: *found and
 * the spec (owned: free()) when found. TG_EPROTO for anything else. */
tg_err dp_wire_decode_guard_set(const uint8_t *buf, size_t len, size_t max,
                                const char *request_id, const char *hash,
                                bool *found, char **spec, size_t *spec_len,
                                char *why, size_t whylen);

/* A stored Responses API response (RespPut/RespGet/RespDelete and their
 * RespReply). response and items: borrowed when encoding; owned when
 * decoded (dp_wire_resp_fini). by_item (DP_RESP_GET only): id is an item
 * id (an item_reference's), and the reply is the tenant's response that
 * holds that item, its id in the reply's id; a decoded reply's is false. */
typedef enum dp_wire_resp_status {
    DP_RESP_OK = 1,
    DP_RESP_NOT_FOUND,
    DP_RESP_OVER_QUOTA,
    DP_RESP_ERROR,
    DP_RESP_BAD_KEY,
} dp_wire_resp_status;

typedef enum dp_wire_resp_op {
    DP_RESP_PUT = 1,
    DP_RESP_GET,
    DP_RESP_DEL,
} dp_wire_resp_op;

typedef struct dp_wire_resp {
    dp_wire_resp_status status;       /* a reply's */
    uint8_t             key_hash[32]; /* SHA-256 of the virtual key */
    char                id[96];
    int64_t             created_ms;
    char               *response;
    size_t              response_len;
    char               *items;
    size_t              items_len;
    bool                by_item;     /* a get: id names an item */
    int64_t             deadline_ms; /* a put: not written after (unix ms) */
} dp_wire_resp;

void dp_wire_resp_fini(dp_wire_resp *r);

/* dp_wire_encode_resp packs op on r into *buf (malloc'd, sized to fit:
 * free()). TG_EINVAL: an unknown op. */
tg_err dp_wire_encode_resp(dp_wire_resp_op op, const char *request_id,
                           const dp_wire_resp *r, uint8_t **buf, size_t *len);

/* dp_wire_decode_resp reads the RespReply for request_id into out (its
 * status, id, time and, for a found get, the response and items).
 * TG_EPROTO for anything else. */
tg_err dp_wire_decode_resp(const uint8_t *buf, size_t len, size_t max,
                           const char *request_id, dp_wire_resp *out, char *why,
                           size_t whylen);

/* dp_wire_decode_pong: TG_OK if the reply is a Pong for request_id. */
tg_err dp_wire_decode_pong(const uint8_t *buf, size_t len,
                           const char *request_id);

#endif
