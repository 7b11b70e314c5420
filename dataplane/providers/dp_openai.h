/* dp_openai.h - the OpenAI wire format as the data plane needs it: parse
 * and check a client's chat completions body, build the upstream body,
 * read usage from replies and stream events, write OpenAI error bodies.
 * No shared state: thread-safe. */
#ifndef DP_OPENAI_H
#define DP_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_msg.h"

typedef struct dp_chat_req {
    cJSON  *root; /* owned: the parsed body */
    char    model[TG_MODEL_MAX];
    bool    stream;
    bool    include_usage;      /* the client asked for the usage chunk */
    bool    has_stream_options; /* the client sent "stream_options" */
    int64_t max_tokens;         /* 0: not set */
    int64_t prompt_tokens_estimate;
    int64_t prompt_bytes;
    char    user[TG_MSG_USER_MAX];
} dp_chat_req;

/* dp_chat_parse parses and checks a chat completions body. A body that is
 * not exactly one strict JSON text (tg_jstrict_check: duplicate names,
 * bytes after it, NUL escapes, invalid UTF-8) returns TG_EPROTO; a valid
 * one with a bad field TG_EINVAL; either with a client-facing message in
 * msg and the offending field (or "") in param. Borrows body until
 * return. On TG_OK the caller owns r->root: free it with dp_chat_fini. */
tg_err dp_chat_parse(const char *body, size_t len, dp_chat_req *r, char *msg,
                     size_t msglen, char *param, size_t paramlen);
void   dp_chat_fini(dp_chat_req *r);

/* dp_req_forbidden is true (msg and param say which) when root names a
 * field that would choose the upstream or its credentials (api_base,
 * base_url, api_key, ...): refused in any client format. */
bool dp_req_forbidden(const cJSON *root, char *msg, size_t msglen, char *param,
                      size_t paramlen);

/* dp_req_parse is dp_chat_parse for any body in the OpenAI format of ep:
 * chat completions ("messages"), embeddings ("input") or completions
 * ("prompt"). Fields that would choose the upstream or its credentials
 * (api_base, base_url, api_key, ...) are refused. */
tg_err dp_req_parse(tg_endpoint ep, const char *body, size_t len,
                    dp_chat_req *r, char *msg, size_t msglen, char *param,
                    size_t paramlen);

/* dp_chat_upstream_body renders the body sent upstream: the model renamed
 * to upstream_model, max_tokens clamped when clamp > 0, and for streams
 * stream_options.include_usage forced on so usage is always metered; with
 * stream_options false (a provider that rejects the field and reports
 * usage in its last chunk anyway) stream_options is removed instead.
 * Owns: *out (free()). Modifies r->root. */
tg_err dp_chat_upstream_body(dp_chat_req *r, const char *upstream_model,
                             int64_t clamp, bool stream_options, char **out,
                             size_t *len);

/* dp_openai_estimate_tokens estimates the prompt tokens of a messages
 * array: 4 per message plus one per 4 bytes of text. */
int64_t dp_openai_estimate_tokens(const cJSON *messages, int64_t *bytes);

/* DP_TOKENS_MAX: a provider's token count above this is nonsense and is
 * ignored (the request keeps its estimate). */
#define DP_TOKENS_MAX 1000000000000000LL

typedef struct dp_usage_counts {
    bool    found;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;
} dp_usage_counts;

/* What a translation gave the client for one upstream event, or what a
 * stream translator has given it so far: counted as it is written, never
 * by searching the bytes written. For metering a stream whose provider
 * reports no usage (then content stands in for the completion tokens). */
typedef struct dp_emit {
    int64_t         content; /* client events carrying text or a tool call */
    dp_usage_counts usage;   /* the provider's usage; found false: none yet */
} dp_emit;

/* dp_openai_usage reads the "usage" object of a reply body. */
void dp_openai_usage(const char *body, size_t len, dp_usage_counts *out);

/* What one stream event (a whole "data: ..." event) carries. */
typedef struct dp_sse_info {
    bool            done;        /* data: [DONE] */
    bool            usage_only;  /* the usage chunk: "choices":[] + usage */
    bool            has_content; /* a non-empty content or tool delta */
    dp_usage_counts usage;
} dp_sse_info;

/* dp_openai_sse_inspect reads one whole raw SSE event (dp_sse_read) as
 * dp_openai_chunk_inspect reads its data. */
void dp_openai_sse_inspect(const char *ev, size_t len, dp_sse_info *out);

/* dp_openai_chunk_inspect tells what the data of one OpenAI stream event
 * (a chunk or "[DONE]") carries, parsing JSON only when it holds usage. */
void dp_openai_chunk_inspect(const char *data, size_t len, dp_sse_info *out);

/* dp_openai_error appends an OpenAI error body to b. param/code may be
 * NULL (rendered as null). */
tg_err dp_openai_error(tg_buf *b, const char *message, const char *type,
                       const char *param, const char *code);

/* dp_openai_cut_event appends the error event (code
 * "upstream_stream_incomplete") that tells an OpenAI client the provider's
 * stream ended before the response was complete. All or nothing. */
tg_err dp_openai_cut_event(tg_buf *out);

/* dp_openai_error_message copies the "error.message" of an upstream error
 * body into out (at most outlen-1 bytes); "" if there is none. */
void dp_openai_error_message(const char *body, size_t len, char *out,
                             size_t outlen);

#endif
