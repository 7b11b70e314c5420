/* tg_msg.h - the plain C form of the PDP wire messages (proto/tollgate/v1/
 * pdp.proto). Only pdp_wire.c and dp_wire.c touch the generated protobuf-c
 * code; everything else uses these fixed-size structs, so a message never
 * owns heap memory and can be copied between threads by value.
 * Strings are NUL-terminated; a wire string too long for its field is a
 * decode error (and so, for a decision, a deny). */
#ifndef TG_MSG_H
#define TG_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "tg_config.h"
#include "tg_hash.h"

#define TG_REQUEST_ID_MAX 64
#define TG_MSG_TEXT_MAX 256
#define TG_MSG_CODE_MAX 64
#define TG_MSG_META_MAX 16
#define TG_MSG_META_KEY_MAX 64
#define TG_MSG_META_VAL_MAX 256
#define TG_MSG_TARGETS_MAX 16
#define TG_MSG_RULES_MAX 32
#define TG_MSG_MODELS_MAX 64
#define TG_MSG_LIMITS_MAX 4
#define TG_MSG_REDACT_MAX 32
#define TG_MSG_IP_MAX 64
#define TG_MSG_USER_MAX 128
#define TG_MSG_HASH_MAX 72
#define TG_MSG_GUARDS_MAX 16     /* guardrail obligations per decision */
#define TG_MSG_GUARD_HITS_MAX 16 /* guardrail outcomes per record */
#define TG_MSG_GUARD_OFFS_MAX 8  /* offsets kept per outcome (4 spans) */
/* OpenRouter's "models" holds at most 8 names: the model and 7 more. */
#define TG_MSG_FALLBACK_MODELS_MAX 7

/* Values match the wire enums. */
typedef enum tg_endpoint {
    TG_EP_UNSPECIFIED      = 0,
    TG_EP_CHAT_COMPLETIONS = 1,
    TG_EP_COMPLETIONS      = 2,
    TG_EP_EMBEDDINGS       = 3,
    TG_EP_MESSAGES         = 4,
    TG_EP_MODELS           = 5,
} tg_endpoint;

typedef enum tg_verdict {
    TG_VERDICT_UNSPECIFIED = 0, /* never an allow */
    TG_VERDICT_ALLOW       = 1,
    TG_VERDICT_DENY        = 2,
} tg_verdict;

typedef enum tg_route_strategy {
    TG_ROUTE_UNSPECIFIED    = 0,
    TG_ROUTE_ORDERED        = 1,
    TG_ROUTE_WEIGHTED       = 2,
    TG_ROUTE_LEAST_INFLIGHT = 3,
    TG_ROUTE_LOWEST_LATENCY = 4,
    TG_ROUTE_LOWEST_COST    = 5,
} tg_route_strategy;

typedef struct tg_kv {
    char key[TG_MSG_META_KEY_MAX];
    char value[TG_MSG_META_VAL_MAX];
} tg_kv;

typedef struct tg_decide {
    char        request_id[TG_REQUEST_ID_MAX];
    uint8_t     key_hash[TG_SHA256_LEN]; /* SHA-256 of the virtual key */
    tg_endpoint endpoint;
    char        model[TG_MODEL_MAX];
    bool        stream;
    int64_t     max_tokens; /* 0: not set by the client */
    int64_t     prompt_tokens_estimate;
    int64_t     prompt_bytes;
    tg_kv       meta[TG_MSG_META_MAX];
    uint32_t    n_meta;
    char        client_ip[TG_MSG_IP_MAX];
    char        user[TG_MSG_USER_MAX];
    int64_t     now_ms;
    /* Decide.fallback_models: models after `model`, in order, each
     * judged as if asked for alone (0: just `model`). */
    char     fallback_models[TG_MSG_FALLBACK_MODELS_MAX][TG_MODEL_MAX];
    uint32_t n_fallback_models;
} tg_decide;

typedef struct tg_route_target {
    char     deployment_id[TG_ID_MAX];
    uint32_t weight;
} tg_route_target;

typedef struct tg_redact_span {
    uint32_t message_index;
    uint32_t start;
    uint32_t end;
    char     replacement[TG_MSG_CODE_MAX];
} tg_redact_span;

#define TG_EFFECT_MAX 12

typedef struct tg_rule_match {
    char rule_id[TG_ID_MAX];
    bool enforced;
    /* "allow", "deny", "route", "capture", "rate_limit" or "budget" */
    char effect[TG_EFFECT_MAX];
} tg_rule_match;

/* A guardrail the data plane must run (Decision.guards). */
typedef struct tg_guard_ob {
    char     rule_id[TG_ID_MAX];
    uint32_t index; /* in the guard set */
    bool     enforced;
    bool     on_error_skip;
} tg_guard_ob;

/* A guardrail outcome for the decision record (GuardHit). */
typedef struct tg_guard_rec {
    char     rule_id[TG_ID_MAX];
    char     detector[48];
    char     action[8]; /* "block", "redact", "audit" */
    uint8_t  stage;     /* 0 input, 1 output */
    bool     enforced;
    uint32_t count;
    uint32_t offs[TG_MSG_GUARD_OFFS_MAX];
    uint32_t n_offs;
    char     where[48];
} tg_guard_rec;

typedef struct tg_limit_state {
    char    name[16]; /* "requests" or "tokens" */
    int64_t limit;
    int64_t remaining;
    int64_t reset_ms;
} tg_limit_state;

typedef struct tg_decision {
    tg_verdict        verdict;
    uint32_t          status; /* HTTP status for a deny */
    char              error_code[TG_MSG_CODE_MAX];
    char              error_type[TG_MSG_CODE_MAX];
    char              message[TG_MSG_TEXT_MAX];
    tg_route_target   targets[TG_MSG_TARGETS_MAX];
    uint32_t          n_targets;
    tg_route_strategy strategy;
    int64_t           clamp_max_tokens; /* 0: none */
    tg_redact_span    redactions[TG_MSG_REDACT_MAX];
    uint32_t          n_redactions;
    char              reservation_id[TG_REQUEST_ID_MAX];
    tg_rule_match     matched[TG_MSG_RULES_MAX];
    uint32_t          n_matched;
    uint64_t          policy_revision;
    char              bundle_hash[TG_MSG_HASH_MAX];
    char              key_id[TG_ID_MAX];
    char              tenant_id[TG_ID_MAX];
    char              models[TG_MSG_MODELS_MAX][TG_MODEL_MAX];
    uint32_t          n_models;
    tg_limit_state    limits[TG_MSG_LIMITS_MAX];
    uint32_t          n_limits;
    uint32_t          capture_level;
    bool              audit_hits_header;
    bool              log_shed;
    int64_t           reserved_micro_usd;
    tg_guard_ob       guards[TG_MSG_GUARDS_MAX];
    uint32_t          n_guards;
    char              guard_set[TG_MSG_HASH_MAX]; /* "" when n_guards 0 */
    uint32_t          reuse_ms;     /* 0: never reused (Decision.reuse_ms) */
    uint32_t          reuse_inputs; /* TG_REUSE_* */
} tg_decision;

/* The request inputs a reusable decision depends on besides the key, the
 * endpoint and the model (Decision.reuse_inputs): a data plane reuses it
 * only for a request whose named inputs are the same. */
enum {
    TG_REUSE_STREAM     = 1u << 0,
    TG_REUSE_MAX_TOKENS = 1u << 1,
    TG_REUSE_PROMPT     = 1u << 2, /* prompt_tokens_estimate */
    TG_REUSE_META       = 1u << 3,
    TG_REUSE_CLIENT_IP  = 1u << 4,
    TG_REUSE_USER       = 1u << 5,
    TG_REUSE_ALL        = (1u << 6) - 1,
};

#define TG_TRACE_ID_MAX 33 /* 32 hex digits */
#define TG_ORIGIN_MAX 16

/* Capture levels of the decision log (audit rules' "capture"). */
enum { TG_CAPTURE_NONE = 0, TG_CAPTURE_METADATA = 1, TG_CAPTURE_FULL = 2 };

/* tg_outcome: a usage report's decision-record part (Outcome on the
 * wire). present is false in reports of older data planes. */
typedef struct tg_outcome {
    bool          present;
    tg_verdict    verdict; /* UNSPECIFIED: no decision came */
    char          error_code[TG_MSG_CODE_MAX];
    char          model_requested[TG_MODEL_MAX];
    tg_rule_match matched[TG_MSG_RULES_MAX];
    uint32_t      n_matched;
    uint64_t      policy_revision;
    char          bundle_hash[TG_MSG_HASH_MAX];
    uint32_t      capture_level;
    int64_t       reserved_micro_usd;
    tg_kv         meta[TG_MSG_META_MAX]; /* capture metadata or full */
    uint32_t      n_meta;
    char          client_ip[TG_MSG_IP_MAX];
    char          trace_id[TG_TRACE_ID_MAX];
    int64_t       pdp_us;
    int64_t       first_byte_us;
    char          origin[TG_ORIGIN_MAX]; /* "", "dataplane", "fail_open" */
    bool          has_key_hash;
    uint8_t       key_hash[TG_SHA256_LEN];
    bool          shed;
    int64_t       max_tokens; /* as the Decide said */
    int64_t       prompt_tokens_estimate;
    tg_guard_rec  guard_hits[TG_MSG_GUARD_HITS_MAX];
    uint32_t      n_guard_hits;
    bool          guard_skipped; /* a guardrail failed open (on_error) */
    uint32_t      pdp_link; /* dataplane.pdp_url's index that decided */
} tg_outcome;

/* A budget window a report forwarded by a sidecar PDP is charged to, and
 * the lease that covered it ("": an emergency admission). */
#define TG_MSG_CHARGES_MAX 4
#define TG_MSG_THRESHOLDS_MAX 8
typedef struct tg_lease_charge {
    char     lease_id[TG_REQUEST_ID_MAX];
    char     rule_id[TG_ID_MAX];
    char     scope[TG_MSG_META_VAL_MAX];
    uint8_t  window;
    int64_t  start_ms;
    int64_t  limit;
    uint8_t  scope_kind;
    uint8_t  nthr;
    uint8_t  thr[TG_MSG_THRESHOLDS_MAX];
} tg_lease_charge;

typedef struct tg_usage {
    char        request_id[TG_REQUEST_ID_MAX];
    char        key_id[TG_ID_MAX];
    char        tenant_id[TG_ID_MAX];
    char        model[TG_MODEL_MAX];
    char        deployment_id[TG_ID_MAX];
    char        reservation_id[TG_REQUEST_ID_MAX];
    tg_endpoint endpoint;
    bool        stream;
    int64_t     prompt_tokens;
    int64_t     completion_tokens;
    int64_t     cached_tokens;
    bool        estimated; /* counted by the gateway, not the provider */
    uint32_t    status;    /* HTTP status the client saw */
    int64_t     started_ms;
    int64_t     duration_ms;
    char        user[TG_MSG_USER_MAX];
    /* Nothing went upstream and the data plane gave up on the decision
     * (timeout, PDP gone, client gone, shutdown): the PDP releases whatever
     * it reserved for request_id, or will reserve, and counts no usage. */
    bool abandoned;
    tg_outcome outcome;
    /* Forwarded by a sidecar PDP (Usage.charges, .emergency, .via). */
    uint32_t        n_charges;
    tg_lease_charge charges[TG_MSG_CHARGES_MAX];
    bool            emergency;
    char            via[TG_ID_MAX];
} tg_usage;

typedef struct tg_usage_ack {
    char    request_id[TG_REQUEST_ID_MAX];
    bool    duplicate;
    int64_t cost_micro_usd;
} tg_usage_ack;

/* A batch of usage reports travels as one message (UsageBatch). */
#define TG_USAGE_BATCH_MAX 32
/* The most bytes one encoded report takes: its usage and outcome strings
 * at their field limits, with their wire overhead. The spool sends a batch
 * only as large as TG_USAGE_BATCH_BYTES, which must fit in the least
 * pdp.max_message_bytes, or the PDP would drop it unread and the spool
 * would retry it for ever. */
#define TG_USAGE_REPORT_MAX                                                    \
    (sizeof(tg_usage) +                                                        \
     4 * (TG_MSG_RULES_MAX + TG_MSG_META_MAX) +                                \
     TG_MSG_GUARD_HITS_MAX * (16 + 6 * TG_MSG_GUARD_OFFS_MAX) + 256)
#define TG_USAGE_BATCH_BYTES (TG_CONFIG_PDP_MSG_MIN - 1024)
_Static_assert(TG_USAGE_BATCH_BYTES >= TG_USAGE_REPORT_MAX,
               "pdp.max_message_bytes may be set below one usage report");

/* The answer to one report of a batch: committed (ack) or not (ok false:
 * keep the report and send it again). */
typedef struct tg_usage_item_ack {
    bool         ok;
    tg_usage_ack ack;
} tg_usage_item_ack;

#endif
