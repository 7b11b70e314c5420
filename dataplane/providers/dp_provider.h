/* dp_provider.h - one attempt at one deployment: the upstream URL, headers
 * and body for the client's request in the provider's wire format, and the
 * provider's answer (whole, streamed or an error) turned back into the
 * client's format. The client speaks OpenAI (chat, embeddings, completions)
 * or Anthropic Messages; the provider OpenAI (and OpenAI-compatible APIs),
 * Azure OpenAI, Anthropic, Gemini or Amazon Bedrock (Converse). Internally a chat is an OpenAI chat
 * body (dp_chat_req); a Messages request to an Anthropic deployment is
 * sent as the client wrote it (only the model renamed and max_tokens
 * clamped when needed). dp_call_prepare chooses the attempt's ops table
 * (dp_provider_int.h) once, from the client's format and the provider's
 * kind; every later call follows it. Adding a provider is one module that
 * fills a dp_provider_ops and one row in dp_provider_rows (dp_provider.c);
 * dp_provider_int.h says how. One dp_call per attempt, owned by one
 * worker: not thread-safe. */
#ifndef DP_PROVIDER_H
#define DP_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "dp_openai.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_msg.h"

/* An upstream deployment with its credentials resolved (dp_server). */
typedef struct dp_upstream {
    const tg_deployment *dep;
    size_t               index;       /* in the catalog */
    char                *auth_header; /* "Authorization: Bearer …", NULL */
    char                *base;        /* api_base without a trailing '/' */
    bool                 usable;      /* false: its api_key env is unset */
    char                 missing[64]; /* the env var that is unset */
    /* bedrock: the SigV4 credentials (dp_sigv4.h), resolved from their
     * "${ENV}" refs; aws_token NULL without a session token. NULL for
     * other providers. */
    char *aws_key_id;
    char *aws_secret;
    char *aws_token;
} dp_upstream;

/* What the client sent, parsed. */
typedef struct dp_client_req {
    tg_endpoint  ep;   /* CHAT_COMPLETIONS, MESSAGES, EMBEDDINGS, ... */
    dp_chat_req *chat; /* the OpenAI form (for MESSAGES: translated) */
    const char  *raw;  /* the body as the client sent it */
    size_t       raw_len;
    bool         raw_exact; /* raw names chat->model exactly (no variant) */
    const char  *id;        /* the gateway's request id */
    /* A Responses API client (POST /v1/responses; ep is then
     * CHAT_COMPLETIONS, chat its translation): resp_raw is its own body
     * when it may go natively to an OpenAI deployment (NULL: translated
     * everywhere); resp_builtin names a built-in tool it asks for ("" or
     * NULL: none), which only a native attempt can serve. */
    const char  *resp_raw;
    size_t       resp_raw_len;
    const char  *resp_builtin;
} dp_client_req;

/* How an upstream failure is handled. */
typedef enum dp_fail_kind {
    DP_FAIL_RETRY = 1, /* 429, 5xx, no connection, timeout: retry/fall back */
    DP_FAIL_NEXT,      /* this deployment cannot serve it: the next one */
    DP_FAIL_CONTEXT,   /* prompt too long: a larger-context model group */
    DP_FAIL_CONTENT,   /* refused by content policy: a content fallback */
    DP_FAIL_CLIENT,    /* the request itself is wrong: tell the client */
} dp_fail_kind;

struct dp_provider_ops;

typedef struct dp_call {
    const dp_upstream   *up;
    const dp_client_req *cr;
    bool                 stream;
    char                *url;
    struct curl_slist   *hdrs;
    char                *body;
    size_t               len;
    /* Chosen once by dp_call_prepare (dp_provider_int.h): ops runs the
     * attempt; wire is the provider's own format (ops itself, or the
     * format an adapter for the client's format wraps). */
    const struct dp_provider_ops *ops;
    const struct dp_provider_ops *wire;
    void                         *st; /* ops' stream state, or NULL */
    bool native_resp; /* a Responses client sent natively (resp_raw) */
    /* Metering, from what the ops report (never from searching bytes). */
    dp_usage_counts usage;
    int64_t         content_events; /* upstream events with content */
    char            oai_id[TG_REQUEST_ID_MAX + 16]; /* "chatcmpl-…" */
    char            msg_id[TG_REQUEST_ID_MAX + 16]; /* "msg_…" */
} dp_call;

/* dp_call_prepare builds the attempt of cr at up; clamp > 0 lowers
 * max_tokens. TG_EINVAL with a client message (and param) when the
 * request cannot be put in this provider's format: the caller tries the
 * next deployment, or answers 400 when there is none. Owns: c's buffers,
 * free with dp_call_fini (also after an error). */
tg_err dp_call_prepare(dp_call *c, const dp_upstream *up,
                       const dp_client_req *cr, int64_t clamp, char *msg,
                       size_t msglen, char *param, size_t paramlen);

/* dp_call_binary_stream: the attempt's provider streams binary frames
 * (dp_provider_int.h binary_stream): the transfer gives dp_call_event the
 * body's bytes as they come instead of splitting SSE events. */
bool dp_call_binary_stream(const dp_call *c);

/* dp_call_event turns one upstream stream event (whole, as dp_sse_feed
 * delivers it; for a binary stream, any piece of the body) into client
 * bytes appended to out; keeps the usage the
 * provider reported in c->usage and counts in c->content_events the
 * events that gave the client content. An error means the stream cannot
 * continue. */
tg_err dp_call_event(dp_call *c, const char *ev, size_t len, tg_buf *out);

/* dp_call_stream_end appends what ends the client's stream when the
 * upstream body has ended (closing events, or an error event when the
 * provider stopped early). */
tg_err dp_call_stream_end(dp_call *c, tg_buf *out);

/* dp_call_body turns a whole 2xx upstream body into the client's body. */
tg_err dp_call_body(dp_call *c, const char *body, size_t len, tg_buf *out);

/* An upstream error as the client will see it. */
typedef struct dp_call_err {
    dp_fail_kind kind;
    unsigned     status; /* for the client */
    char         type[48];
    char         code[64];
    char         message[400];
    char         param[64]; /* the request field at fault, or "" */
    bool         pass_body; /* out holds the provider's body, ready */
} dp_call_err;

/* dp_call_error classifies an upstream answer with HTTP status (0: no
 * answer: curl failed with why) and, when pass_body, writes the body the
 * client gets to out. */
void dp_call_error(dp_call *c, long status, const char *body, size_t len,
                   const char *why, dp_call_err *e, tg_buf *out);

void dp_call_fini(dp_call *c);

/* dp_client_error writes an error body in the client's format (OpenAI's
 * {"error":{...}} or Anthropic's {"type":"error","error":{...}}). */
tg_err dp_client_error(tg_endpoint ep, tg_buf *b, const char *message,
                       const char *type, const char *param, const char *code);

/* dp_client_error_event is dp_client_error as a stream event. */
tg_err dp_client_error_event(tg_endpoint ep, tg_buf *b, const char *message,
                             const char *type, const char *code);

/* dp_call_header appends "name: value" to the attempt's headers (after
 * dp_call_prepare: the formats' own, and a traceparent). */
tg_err dp_call_header(dp_call *c, const char *name, const char *value)
    __attribute__((warn_unused_result));

#endif
