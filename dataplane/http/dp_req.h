/* dp_req.h - one client request as it travels MHD thread -> worker -> MHD
 * thread: its record, create/ref/unref, and the phases of its answer
 * (pending -> complete, or pending -> streaming -> done). Thread-safety is
 * per field group (below); the refcount is atomic. */
#ifndef DP_REQ_H
#define DP_REQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "dp_attempt.h"
#include "dp_gem_in.h"
#include "dp_guard_req.h"
#include "dp_metrics.h"
#include "dp_openai.h"
#include "dp_provider.h"
#include "dp_sse.h"
#include "tg_buf.h"
#include "tg_msg.h"

/* The largest answer a request holds: a provider's whole (non-stream)
 * body, or the client's prepared answer. */
#define DP_UP_BODY_MAX (64u << 20)

/* How much of the bundle hash answers show beside the policy revision
 * (x-tollgate-policy-revision: 7; hash=ab12cd34): enough to tell two
 * activations of one revision number apart. */
#define DP_HASH_SHOWN 8

typedef struct dp_worker   dp_worker;
typedef struct dp_transfer dp_transfer;

typedef enum dp_phase {
    DP_PHASE_PENDING = 0, /* worker has not answered yet */
    DP_PHASE_COMPLETE,    /* status + whole body ready */
    DP_PHASE_STREAMING,   /* 200 SSE: bytes flow through out */
} dp_phase;

/* One upstream attempt, for its trace span. */
#define DP_TRACE_ATTEMPTS_MAX 8
typedef struct dp_trace_attempt {
    uint32_t upstream; /* index in the catalog */
    uint8_t  span_id[8];
    int64_t  start_us; /* monotonic */
    int64_t  end_us;   /* 0: still running */
    long     status;   /* HTTP status from the provider; 0: none */
    bool     ok;
    char     why[96]; /* a failure, for the span's status */
} dp_trace_attempt;

/* What a request keeps of its decision: tg_decision without what the data
 * plane never reads (redactions) and without the model list,
 * which only GET /v1/models needs (dp_req.models), so the thousands of
 * requests a data plane may hold open stay small. */
typedef struct dp_decision {
    tg_verdict        verdict;
    uint32_t          status; /* HTTP status for a deny */
    char              error_code[TG_MSG_CODE_MAX];
    char              error_type[TG_MSG_CODE_MAX];
    char              message[TG_MSG_TEXT_MAX];
    tg_route_target   targets[TG_MSG_TARGETS_MAX];
    uint32_t          n_targets;
    tg_route_strategy strategy;
    int64_t           clamp_max_tokens; /* 0: none */
    char              reservation_id[TG_REQUEST_ID_MAX];
    uint64_t          policy_revision;
    char              bundle_hash[TG_MSG_HASH_MAX];
    char              key_id[TG_ID_MAX];
    char              tenant_id[TG_ID_MAX];
    tg_limit_state    limits[TG_MSG_LIMITS_MAX];
    uint32_t          n_limits;
    /* For the decision record and x-tollgate-audit-hits. */
    tg_rule_match     matched[TG_MSG_RULES_MAX];
    uint32_t          n_matched;
    uint32_t          capture_level;
    bool              audit_hits_header;
    bool              log_shed;
    int64_t           reserved_micro_usd;
    tg_guard_ob       guards[TG_MSG_GUARDS_MAX];
    uint32_t          n_guards;
    char              guard_set[TG_MSG_HASH_MAX];
    uint32_t          reuse_ms;     /* dp_reuse */
    uint32_t          reuse_inputs; /* TG_REUSE_* */
} dp_decision;

/* What a decision is tagged with when it is asked for (dp_reuse): the
 * PDP's state generation, which mapping of its file that was read from,
 * and when (a kept decision lives from then, as the PDP's reuse_ms
 * counts from its decision). */
typedef struct dp_reuse_tag {
    uint64_t gen;
    uint64_t epoch;
    int64_t  at_us; /* monotonic */
} dp_reuse_tag;

/* dp_decision_keep copies what the data plane keeps of d into out. */
void dp_decision_keep(dp_decision *out, const tg_decision *d);

/* Ownership: fields under "MHD thread" are set before the hand-off and
 * read-only after; "worker" fields are touched only by the owning worker;
 * "shared" fields only under mtx. Reference counted: the connection, the
 * response object, the worker and each callback in flight (PDP, spool,
 * queued job) hold one. */
typedef struct dp_req dp_req;
typedef void (*dp_req_kick_fn)(void *arg);
struct dp_req {
    atomic_int             refs;
    dp_metrics            *m; /* the server's counters */
    struct MHD_Connection *conn;
    /* After a resume: MHD runs on a worker's loop (external polling),
     * which kick(kick_arg) wakes so the answer goes out. */
    dp_req_kick_fn         kick;
    void                  *kick_arg;
    dp_worker             *worker;
    dp_transfer           *xf;   /* the worker's transfers (dp_transfer) */
    dp_req                *next; /* worker's queue / active list */

    /* MHD thread, read-only after hand-off */
    char        request_id[TG_REQUEST_ID_MAX];
    tg_endpoint endpoint;
    tg_buf      body;
    bool        has_key;
    uint8_t     key_hash[TG_SHA256_LEN];
    tg_kv      *meta; /* TG_MSG_META_MAX slots, or NULL until one is sent */
    uint32_t    n_meta;
    char        client_ip[TG_MSG_IP_MAX];
    int         client_fd; /* polled for hang-ups while suspended */
    char        trace_id[TG_TRACE_ID_MAX]; /* from traceparent; "" */
    char        parent_span[17]; /* its parent span id (hex); "" */
    int64_t     started_ms;
    int64_t     started_us;
    bool        dispatched;
    bool        too_big;
    bool        queued; /* a response was queued to MHD */
    /* A Gemini API client (dp_gem_in.h): its method and the model in
     * its path. The request is a chat completion inside; only its answer
     * leaves in Gemini's shape (dp_req_respond, dp_req_out_locked). */
    dp_gemin_op gem_op;
    char        gem_model[TG_MODEL_MAX];
    /* worker: the body holds the Gemini request translated; the renderer
     * of its stream */
    bool             gem_read;
    dp_gemin_stream *gem_st;
    /* A Responses API client (POST /v1/responses), NULL for any other:
     * a chat inside, translated at the edges (dp_resp_client.h). */
    struct dp_resp_client *resp;
    /* GET/DELETE /v1/responses/{id}[/input_items] (dp_resp_api.h), NULL
     * for any other: answered from the PDP, no worker. Owned. */
    struct dp_resp_api *rapi;

    /* worker */
    dp_chat_req   chat; /* OpenAI form (Messages: translated) */
    dp_client_req cr;
    bool          have_decision;
    dp_decision   dec;
    char (*models)[TG_MODEL_MAX]; /* GET /v1/models: the list, n_models */
    uint32_t           n_models;
    const dp_upstream *dep;  /* deployment of the current attempt */
    dp_call            call; /* the current attempt */
    CURL              *easy;
    dp_attempt         at;          /* the plan, where it stands */
    int64_t            retry_at_us; /* > 0: the next attempt waits */
    bool               probe;       /* this attempt is a half-open probe */
    bool               health_open; /* dp_health_begin without end */
    int64_t            last_data_us;
    bool               have_err; /* the last failure, for the answer */
    dp_call_err        err;
    tg_buf             err_body;
    int                variant; /* dp_strategy + 1 forced by :floor/:nitro */
    /* OpenRouter's "models"/"provider" (dp_openrouter); NULL: none sent */
    struct dp_or_prefs *orp;
    long               up_status;
    tg_buf             up_resp; /* non-stream body or upstream error */
    dp_sse             sse;
    bool               up_streaming; /* upstream is sending SSE 200 */
    int64_t            content_events;
    dp_usage_counts    usage;
    bool               usage_reported;
    bool               finished;  /* the worker is done with it */
    bool               cancelled; /* the client went away */
    int64_t            up_started_us;
    bool               up_got_bytes;
    int64_t            hangup_checked_us;
    char               retry_after[16];
    size_t             body_off;       /* upload position of the attempt */
    bool               decide_sent;    /* a Decide went to the PDP */
    uint8_t            pdp_idx; /* which of dataplane.pdp_url decides */
    bool               intent_written; /* the spool holds its intent */
    uint8_t            spool_wait;     /* dp_spool_wait: what it waits for */
    bool               no_verdict;     /* this failure is not the provider's */
    bool               fail_open;      /* served without a decision */
    bool               record_shed;    /* recorded without metadata */
    /* Answers wait for the request's record to be spooled (dp_req_respond
     * prepares instead of sending; dp_req_deliver sends). */
    bool               hold_answers;
    int64_t            decide_sent_us; /* when the Decide went */
    int64_t            pdp_us;         /* its round trip */
    bool               reused;    /* decided by dp_reuse, not asked */
    bool               may_keep;  /* dp_reuse may keep its decision */
    dp_reuse_tag       reuse_tag; /* what it was asked under */
    int64_t            first_byte_us;  /* upstream's, after the request */
    /* Tracing (dp_trace): the request's span, its attempts, and the
     * finish reason the client was told (or ""). */
    uint8_t            span_id[8];
    dp_trace_attempt   attempts[DP_TRACE_ATTEMPTS_MAX];
    uint32_t           n_attempts;
    char               finish_reason[24];
    /* Capture full: the stream bytes the client got (up to
     * dataplane.capture_max_bytes), and the record's content. */
    tg_buf             cap_stream;
    tg_buf             content;
    /* Guardrails (dp_guard_req), NULL when the decision named none:
     * its obligations bound to their set; guard_blocked: a block ended
     * the answer (guard->block_msg). */
    dp_guard_req      *guard;
    bool               guard_blocked;
    bool               guard_skipped; /* its set never came; on_error skip */
    bool               guard_withheld; /* a block: its body is not captured */
    /* Deployments whose failure this request counted (once each). */
    uint32_t failed[TG_MSG_TARGETS_MAX];
    uint32_t n_failed;
    /* The answer prepared while its usage is being recorded: a whole
     * response (status + body) or the end of a stream (final bytes and
     * an error message, if any). */
    uint8_t  ans_kind;
    unsigned ans_status;
    tg_buf   ans_body;
    char     ans_msg[320];
    char     ans_code[TG_MSG_CODE_MAX]; /* the error code answered; "" */
    const char *end_type; /* a stream's final error event: type and code */
    const char *end_code; /* (NULL: server_error, upstream_error) */

    /* shared, under mtx */
    pthread_mutex_t mtx;
    dp_phase        phase;
    unsigned        status;
    tg_buf          out;         /* response body / stream bytes */
    size_t          out_off;     /* stream bytes of out already sent */
    bool            out_done;    /* no more bytes will come */
    bool            suspended;   /* the MHD connection is suspended */
    bool            client_gone; /* MHD finished the connection */
    bool            curl_paused; /* write callback paused (backpressure) */
    bool            include_revision;
    uint64_t        revision;
    char            revision_hash[DP_HASH_SHOWN + 1];
    char           *audit_hits; /* x-tollgate-audit-hits value; NULL */
    char            served_by[TG_ID_MAX]; /* deployment that answered; "" */
};

/* The answer a request delivers once its usage is recorded (ans_kind). */
typedef enum dp_ans_kind {
    DP_ANS_NONE = 0,
    DP_ANS_COMPLETE,   /* ans_status + ans_body */
    DP_ANS_STREAM_END, /* ans_body bytes, then ans_msg as an error event */
} dp_ans_kind;

/* dp_req_create makes the request that arrived on conn, for endpoint ep,
 * with the id the server gave it (copied) and room for a body of
 * max_body bytes. One reference, the connection's. NULL: out of memory.
 * Owns: the result, release with dp_req_unref. Borrows: m and conn for
 * the request's life. MHD thread. */
dp_req *dp_req_create(dp_metrics *m, struct MHD_Connection *conn,
                      tg_endpoint ep, const char *request_id, size_t max_body);

/* dp_req_client_ip writes the address conn came from (for records). */
void dp_req_client_ip(struct MHD_Connection *conn, char *out, size_t len);

/* dp_req_ref takes a reference; dp_req_unref drops one and frees r with
 * the last. Any thread. */
void dp_req_ref(dp_req *r);
void dp_req_unref(dp_req *r);

/* dp_req_client_hung_up tells whether r's client closed its end of the
 * connection: libmicrohttpd does not watch a suspended connection, so
 * whoever holds one looks at the socket itself. */
bool dp_req_client_hung_up(const dp_req *r);

/* dp_req_resume_locked resumes r's MHD connection if it is suspended and
 * the client is still there. Call with r->mtx held. */
void dp_req_resume_locked(dp_req *r);

/* ---- answers: the worker hands them to the MHD thread ---------------- */

/* dp_req_respond makes r's answer complete: status and body (copied),
 * with the policy revision and the deployment that served it, and resumes
 * the connection. Does nothing once r is answered or its client gone;
 * counts the status either way. Worker thread. */
void dp_req_respond(dp_req *r, unsigned status, const char *body, size_t len);

/* dp_req_error is dp_req_respond with an error body in the client's
 * format (param may be NULL). */
void dp_req_error(dp_req *r, unsigned status, const char *message,
                  const char *type, const char *param, const char *code);

/* dp_req_stream_commit_locked starts the client's 200 stream from r->dep:
 * from here on nothing is retried. Call with r->mtx held, r pending. */
void dp_req_stream_commit_locked(dp_req *r);

/* dp_req_out_locked appends stream bytes (whole OpenAI chat SSE events)
 * to r->out in the client's format. Call with r->mtx held. */
tg_err dp_req_out_locked(dp_req *r, const char *data, size_t len)
    __attribute__((warn_unused_result));

/* dp_req_stream_end ends a stream the client is already reading: what
 * went wrong (error_message, NULL: nothing) becomes a final error event,
 * never a silent cut. */
void dp_req_stream_end(dp_req *r, const char *error_message);

/* ---- answers prepared while their usage is recorded ------------------ */

/* dp_req_prepare_error prepares an error answer in the client's format. */
void dp_req_prepare_error(dp_req *r, unsigned status, const char *message,
                          const char *type, const char *param,
                          const char *code);

/* dp_req_prepare_stream_end prepares the end of a stream: the bytes in
 * tail (may be NULL), then message as an error event (NULL: none). */
void dp_req_prepare_stream_end(dp_req *r, const tg_buf *tail,
                               const char *message);

/* dp_req_guard_end makes the prepared end of r's stream the guardrail
 * block's error event (code guardrail_blocked; guardrail_error when a
 * scan failed), after what the client may still see. */
void dp_req_guard_end(dp_req *r);

/* dp_req_prepare_failure prepares the answer to a request no attempt
 * served: the last failure (the provider's body when it is passed on) or
 * 503 no_deployment_available. Returns its status. */
unsigned dp_req_prepare_failure(dp_req *r);

/* dp_req_deliver hands the prepared answer to the client (see
 * dp_req_respond, dp_req_stream_end); nothing when none is prepared. */
void dp_req_deliver(dp_req *r);

#endif
