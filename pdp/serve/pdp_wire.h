/* pdp_wire.h - the PDP's side of the wire: PdpRequest/PdpResponse bytes <->
 * the plain C structs of tg_msg.h. The only PDP code that touches protobuf-c.
 * Stateless and thread-safe. Called by pdp_server (and by tests, which also
 * need the client's half: encode a request, decode a response). */
#ifndef PDP_WIRE_H
#define PDP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_msg.h"

/* The newest wire version this PDP speaks; a request with a higher one is a
 * decode error (0, "unspecified", is taken as 1). */
#define PDP_WIRE_VERSION 1
#define PDP_WIRE_NAME_MAX 64

typedef enum pdp_req_kind {
    PDP_REQ_DECIDE = 1,
    PDP_REQ_USAGE,
    PDP_REQ_HELLO,
    PDP_REQ_PING,
    PDP_REQ_USAGE_BATCH,
    PDP_REQ_GUARD_FETCH,
    PDP_REQ_REPL_PULL, /* sidecar PDP -> central PDP (pdp_wire_up.c) */
    PDP_REQ_LEASE_ASK,
    PDP_REQ_LEASE_CLOSE,
    PDP_REQ_RESP_PUT, /* stored Responses (pdp_wire_resp.c) */
    PDP_REQ_RESP_GET,
    PDP_REQ_RESP_DEL,
} pdp_req_kind;

#define PDP_WIRE_RESP_ID_MAX 96 /* pdp_responses.h's PDP_RESP_ID_MAX */

/* RespPut / RespGet / RespDelete: the asking key's hash and the response
 * id (a get by_item: an item id, the reply naming the response that holds
 * it). response and items (put; a reply's get): borrowed (encode) or owned
 * by the decoder's caller (decode: pdp_wire_request_release,
 * pdp_wire_reply_release). */
typedef struct pdp_wire_resp {
    uint8_t key_hash[TG_SHA256_LEN];
    char    id[PDP_WIRE_RESP_ID_MAX];
    int64_t created_ms;
    char   *response;
    size_t  response_len;
    char   *items;
    size_t  items_len;
    bool    by_item;     /* RespGet only */
    int64_t deadline_ms; /* RespPut only; 0: none */
} pdp_wire_resp;

/* RespReply's status (proto RespStatus). */
typedef enum pdp_wire_resp_status {
    PDP_RESP_OK = 1,
    PDP_RESP_NOT_FOUND,
    PDP_RESP_OVER_QUOTA,
    PDP_RESP_ERROR,
    PDP_RESP_BAD_KEY,
} pdp_wire_resp_status;

#define PDP_WIRE_LINEAGE_MAX 40
#define PDP_WIRE_WANTS_MAX 8
#define PDP_WIRE_RETURNS_MAX 32

/* ReplPull: the records after `from` of lineage, or a snapshot. */
typedef struct pdp_repl_pull {
    char     node[TG_ID_MAX];
    char     lineage[PDP_WIRE_LINEAGE_MAX];
    uint64_t from;
    bool     snapshot;
    uint32_t max_bytes;
    int64_t  lease_ttl_ms;
    uint64_t epoch;   /* the highest HA epoch the puller has seen */
    bool     standby; /* a central PDP's standby (pdp_ha.c) */
    char     copy_id[PDP_WIRE_LINEAGE_MAX];
    uint64_t copy_offset;
} pdp_repl_pull;

/* One LeaseWant (kind 1 rate, 2 budget; pdp_limits.h says what each
 * field means for pdp_limits_lease_grant). */
typedef struct pdp_wire_want {
    char    id[TG_REQUEST_ID_MAX];
    uint8_t kind;
    char    rule_id[TG_ID_MAX];
    char    scope[TG_MSG_META_VAL_MAX];
    int64_t rpm, tpm, concurrent;
    int64_t want_reqs, min_reqs, want_toks, min_toks, want_slots, min_slots;
    uint8_t window;
    int64_t start_ms;
    int32_t span_h;
    int64_t limit;
    uint8_t scope_kind;
    uint8_t nthr;
    uint8_t thr[TG_MSG_THRESHOLDS_MAX];
    int64_t want_micro, min_micro;
    int64_t ttl_ms;
} pdp_wire_want;

typedef struct pdp_wire_return {
    char    id[TG_REQUEST_ID_MAX];
    int64_t used_reqs;
    int64_t used_toks;
} pdp_wire_return;

/* One LeaseGranted: ok with the amounts held, or refused with why. */
typedef struct pdp_wire_granted {
    char     id[TG_REQUEST_ID_MAX];
    bool     ok;
    int64_t  reqs, toks, slots, micro;
    int64_t  ttl_ms;
    uint32_t denied;
    int64_t  limit, used, retry_ms;
} pdp_wire_granted;

typedef struct pdp_hello {
    char component[PDP_WIRE_NAME_MAX];
    char version[PDP_WIRE_NAME_MAX];
} pdp_hello;

/* A decoded PdpRequest. request_id is copied into decide.request_id and
 * usage.request_id too, so those structs stand alone. */
typedef struct pdp_req {
    pdp_req_kind kind;
    char         request_id[TG_REQUEST_ID_MAX];
    union {
        tg_decide decide;
        tg_usage  usage;
        pdp_hello hello;
        int64_t   ping_sent_ms;
        char      guard_set[TG_MSG_HASH_MAX]; /* GuardFetch */
        struct {
            uint32_t n;
            tg_usage items[TG_USAGE_BATCH_MAX]; /* each with its request_id */
            /* Each item's content in the caller's buffer (length 0:
             * none); see pdp_wire_decode_request_content. */
            size_t content_off[TG_USAGE_BATCH_MAX];
            size_t content_len[TG_USAGE_BATCH_MAX];
        } batch;
        pdp_repl_pull repl_pull;
        struct {
            char          node[TG_ID_MAX];
            uint32_t      n;
            pdp_wire_want wants[PDP_WIRE_WANTS_MAX];
        } lease_ask;
        struct {
            char            node[TG_ID_MAX];
            uint32_t        n;
            pdp_wire_return rets[PDP_WIRE_RETURNS_MAX];
        } lease_close;
        pdp_wire_resp resp; /* RespPut, RespGet, RespDelete */
    } u;
} pdp_req;

typedef enum pdp_rep_kind {
    PDP_REP_DECISION = 1,
    PDP_REP_USAGE_ACK,
    PDP_REP_HELLO_ACK,
    PDP_REP_PONG,
    PDP_REP_ERROR,
    PDP_REP_USAGE_BATCH_ACK,
    PDP_REP_GUARD_SET,
    PDP_REP_REPL_DATA,
    PDP_REP_LEASE_REPLY,
    PDP_REP_LEASE_CLOSE_ACK,
    PDP_REP_RESP,
} pdp_rep_kind;

typedef struct pdp_hello_ack {
    char     version[PDP_WIRE_NAME_MAX];
    uint64_t policy_revision;
} pdp_hello_ack;

/* A PdpResponse. For PDP_REP_USAGE_ACK the request id is u.ack.request_id;
 * for the others it is request_id. */
typedef struct pdp_rep {
    pdp_rep_kind kind;
    char         request_id[TG_REQUEST_ID_MAX];
    union {
        tg_decision   decision;
        tg_usage_ack  ack;
        pdp_hello_ack hello_ack;
        int64_t       pong_sent_ms;
        char          error[TG_MSG_TEXT_MAX];
        /* GuardSetReply: spec borrowed (encode) or owned by the decoder's
         * caller (decode: free()). */
        struct {
            char   hash[TG_MSG_HASH_MAX];
            bool   found;
            char  *spec;
            size_t spec_len;
        } guard;
        struct {
            uint32_t          n;
            tg_usage_item_ack acks[TG_USAGE_BATCH_MAX];
        } batch;
        /* ReplData: data borrowed (encode) or owned by the decoder's
         * caller (decode: free()). */
        struct {
            char     lineage[PDP_WIRE_LINEAGE_MAX];
            bool     snapshot;
            uint64_t last;
            uint64_t head;
            void    *data;
            size_t   len;
            uint64_t epoch;
            char     copy_id[PDP_WIRE_LINEAGE_MAX];
            uint64_t copy_offset;
            uint64_t copy_size;
            bool     behind;
        } repl;
        struct {
            uint32_t         n;
            pdp_wire_granted grants[PDP_WIRE_WANTS_MAX];
            uint64_t         epoch;
        } lease;
        uint32_t closed; /* LeaseCloseAck */
        /* RespReply: status, and for a found get the response and items
         * (borrowed when encoding, owned when decoded:
         * pdp_wire_reply_release) in resp. */
        struct {
            pdp_wire_resp_status status;
            pdp_wire_resp        resp;
        } resp;
    } u;
} pdp_rep;

/* pdp_wire_decode_request parses len bytes of a PdpRequest into *out.
 * Fails with TG_ETOOBIG when len > max (0: no cap), TG_EPROTO on bytes that
 * do not parse, an empty body, an unknown enum value, a key hash that is not
 * 32 bytes, negative token counts, or a string longer than its tg_msg.h
 * field; TG_EVERSION on a newer wire version. On failure writes a short
 * reason (safe to send back in a WireError: it never quotes the payload)
 * into err. Borrows buf until return. */
tg_err pdp_wire_decode_request(const void *buf, size_t len, size_t max,
                               pdp_req *out, char *err, size_t errlen);

/* pdp_wire_decode_request_content is pdp_wire_decode_request that also
 * copies each usage batch item's content into content (reset first; NULL:
 * dropped), where out->u.batch.content_off/_len find it. */
tg_err pdp_wire_decode_request_content(const void *buf, size_t len, size_t max,
                                       pdp_req *out, tg_buf *content, char *err,
                                       size_t errlen);

/* pdp_wire_encode_reply replaces the content of out with the encoded
 * PdpResponse. Fails with TG_ETOOBIG when out's cap is exceeded (out is then
 * left empty) or TG_ENOMEM. */
tg_err pdp_wire_encode_reply(const pdp_rep *rep, tg_buf *out);

/* pdp_wire_reply_release frees what a decoded reply owns (a guard set's
 * spec, replication data) and makes it hold nothing. */
void pdp_wire_reply_release(pdp_rep *rep);

/* pdp_wire_request_release frees what a decoded request owns (a RespPut's
 * response and items) and makes it hold nothing. */
void pdp_wire_request_release(pdp_req *req);

/* The client's half, for tests and tools: the same contracts as above. */
tg_err pdp_wire_encode_request(const pdp_req *req, tg_buf *out);
tg_err pdp_wire_decode_reply(const void *buf, size_t len, size_t max,
                             pdp_rep *out, char *err, size_t errlen);

#endif
