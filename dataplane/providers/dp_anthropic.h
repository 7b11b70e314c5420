/* dp_anthropic.h - translates between the OpenAI chat completions format and
 * Anthropic's Messages API, in all four directions, streams included:
 * an OpenAI client served by an Anthropic backend (requests out, replies and
 * stream events back) and an Anthropic client (POST /v1/messages) served by
 * an OpenAI backend. Pure: no I/O, no global state, so thread-safe; a stream
 * translator belongs to one request and is not thread-safe itself.
 *
 * Unsupported OpenAI request fields that would change the answer are errors
 * naming the field: n > 1, logprobs, top_logprobs, logit_bias (non-empty),
 * response_format json_object/json_schema, audio and modalities with audio,
 * non-function tools, content parts other than text/image_url. Fields that
 * only tune sampling or bookkeeping are dropped: frequency_penalty,
 * presence_penalty, seed, service_tier, store, metadata, prediction,
 * reasoning_effort, stream_options (see include_usage below). In the other
 * direction top_k, thinking, cache_control and tool_result.is_error are
 * dropped; server tools and non-text tool results are errors. */
#ifndef DP_ANTHROPIC_H
#define DP_ANTHROPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_openai.h"
#include "tg_buf.h"
#include "tg_err.h"

/* Token counts in Anthropic's terms: input_tokens excludes the tokens read
 * from or written to the prompt cache. */
typedef struct dp_anth_usage {
    bool    found;              /* a usage object was seen */
    int64_t input_tokens;       /* input_tokens (uncached) */
    int64_t cache_read_tokens;  /* cache_read_input_tokens */
    int64_t cache_write_tokens; /* cache_creation_input_tokens */
    int64_t output_tokens;
} dp_anth_usage;

/* dp_anth_usage_counts gives the OpenAI view used for metering:
 * prompt = input + cache read + cache write, cached = cache read. */
void dp_anth_usage_counts(const dp_anth_usage *u, dp_usage_counts *out);

/* What the caller decides about a translated request. */
typedef struct dp_anth_req_opts {
    const char *model;              /* model written upstream; NULL: keep */
    int64_t     max_tokens_default; /* when the request sets none (> 0) */
    int64_t     max_tokens_clamp;   /* > 0: upper bound on max_tokens */
} dp_anth_req_opts;

/* What the caller fixes about a translated reply. */
typedef struct dp_anth_resp_meta {
    const char *id;      /* "chatcmpl-..." or "msg_..." */
    const char *model;   /* the name the client asked for */
    int64_t     created; /* unix seconds (OpenAI replies only) */
} dp_anth_resp_meta;

/* ---- OpenAI client, Anthropic backend ---------------------------------- */

/* dp_anth_req_from_openai renders the Anthropic Messages body for an OpenAI
 * chat completions request (a parsed body, e.g. dp_chat_req.root). On a
 * request that cannot be translated returns TG_EINVAL with a client-facing
 * message in msg and the offending field ("messages[2].content[0]") in
 * param. Borrows req until return. Owns: *out (free()). */
tg_err dp_anth_req_from_openai(const cJSON *req, const dp_anth_req_opts *opts,
                               char **out, size_t *len, char *msg,
                               size_t msglen, char *param, size_t paramlen);

/* dp_anth_resp_to_openai renders the chat.completion for an Anthropic
 * message body and fills usage (may be NULL). TG_EPROTO if body is not a
 * message. Borrows body and meta until return. Owns: *out (free()). */
tg_err dp_anth_resp_to_openai(const char *body, size_t len,
                              const dp_anth_resp_meta *meta, char **out,
                              size_t *outlen, dp_anth_usage *usage);

/* An Anthropic event stream turned into OpenAI chat.completion.chunk
 * events, fed one SSE event at a time. */
typedef struct dp_anth_stream dp_anth_stream;

/* dp_anth_stream_create copies meta. include_usage: end with the usage
 * chunk (choices:[]) before [DONE], as the client asked. Owns: *out, free
 * with dp_anth_stream_destroy. */
tg_err dp_anth_stream_create(dp_anth_stream         **out,
                             const dp_anth_resp_meta *meta, bool include_usage);
void   dp_anth_stream_destroy(dp_anth_stream *s);

/* dp_anth_stream_feed translates one event (name as in "event:", data the
 * JSON of "data:"), appending zero or more whole "data: ...\n\n" events to
 * out. message_stop appends "data: [DONE]"; an error event appends an
 * OpenAI error event and ends the stream. Events after the end, ping and
 * unknown events append nothing. TG_EPROTO on data that is not JSON;
 * TG_ETOOBIG/TG_ENOMEM from out. Borrows all arguments until return. */
tg_err dp_anth_stream_feed(dp_anth_stream *s, const char *event,
                           const char *data, size_t len, tg_buf *out);

/* dp_anth_stream_feed_sse is dp_anth_stream_feed for one whole raw SSE
 * event ("event: x\ndata: {...}\n\n") as dp_sse_feed delivers it. */
tg_err dp_anth_stream_feed_sse(dp_anth_stream *s, const char *ev, size_t len,
                               tg_buf *out);

/* dp_anth_stream_finish is called when the upstream body ends. If the
 * stream did not end properly it appends an OpenAI error event (code
 * "upstream_stream_incomplete") so the client sees the cut. */
tg_err dp_anth_stream_finish(dp_anth_stream *s, tg_buf *out);

/* dp_anth_stream_ended: message_stop or an error event was seen (or
 * finish was called). dp_anth_stream_usage: the usage so far, valid at any
 * time, for metering a stream cut short. */
bool dp_anth_stream_ended(const dp_anth_stream *s);
void dp_anth_stream_usage(const dp_anth_stream *s, dp_anth_usage *out);

/* ---- Anthropic client (POST /v1/messages), OpenAI backend -------------- */

/* dp_anth_req_to_openai renders the OpenAI chat completions body for an
 * Anthropic Messages request. Only opts->model is used (NULL: keep).
 * Streams ask for stream_options.include_usage. Errors as
 * dp_anth_req_from_openai. Owns: *out (free()). */
tg_err dp_anth_req_to_openai(const cJSON *req, const dp_anth_req_opts *opts,
                             char **out, size_t *len, char *msg, size_t msglen,
                             char *param, size_t paramlen);

/* dp_anth_resp_from_openai renders the Anthropic message for an OpenAI
 * chat.completion (meta->id should start with "msg_") and fills usage (may
 * be NULL). TG_EPROTO if body is not a completion or a tool call's
 * arguments are not JSON. Owns: *out (free()). */
tg_err dp_anth_resp_from_openai(const char *body, size_t len,
                                const dp_anth_resp_meta *meta, char **out,
                                size_t *outlen, dp_anth_usage *usage);

/* OpenAI chat.completion.chunk events turned into Anthropic events. */
typedef struct dp_anth_rstream dp_anth_rstream;

/* dp_anth_rstream_create copies meta. input_tokens goes into message_start
 * (0 if unknown: OpenAI reports usage only at the end). Owns: *out, free
 * with dp_anth_rstream_destroy. */
tg_err dp_anth_rstream_create(dp_anth_rstream        **out,
                              const dp_anth_resp_meta *meta,
                              int64_t                  input_tokens);
void   dp_anth_rstream_destroy(dp_anth_rstream *s);

/* dp_anth_rstream_feed translates one OpenAI event, given as the text of
 * its data field (a chunk, an {"error":...} object or "[DONE]"), appending
 * zero or more whole "event: x\ndata: {...}\n\n" events to out.
 * message_delta and message_stop are sent at [DONE], so that the usage
 * chunk that follows the finish_reason is in them. TG_EPROTO on data that
 * is not JSON or tool call deltas that interleave. Borrows until return. */
tg_err dp_anth_rstream_feed(dp_anth_rstream *s, const char *data, size_t len,
                            tg_buf *out);

/* dp_anth_rstream_feed_sse is dp_anth_rstream_feed for one whole raw SSE
 * event ("data: {...}\n\n"). */
tg_err dp_anth_rstream_feed_sse(dp_anth_rstream *s, const char *ev, size_t len,
                                tg_buf *out);

/* dp_anth_rstream_finish is called when the upstream body ends: after a
 * finish_reason without [DONE] it closes the message normally; with no
 * finish_reason it appends an error event. */
tg_err dp_anth_rstream_finish(dp_anth_rstream *s, tg_buf *out);

bool dp_anth_rstream_ended(const dp_anth_rstream *s);
void dp_anth_rstream_usage(const dp_anth_rstream *s, dp_anth_usage *out);

/* ---- Errors ------------------------------------------------------------ */

/* dp_anth_error_to_openai appends to out the OpenAI error body for an
 * Anthropic error reply (status, body; body may be any bytes) and sets
 * *out_status (may be NULL) to the status for the client: the same except
 * 529 (overloaded), which becomes 503. A "prompt is too long" error gets
 * code "context_length_exceeded". */
tg_err dp_anth_error_to_openai(int status, const char *body, size_t len,
                               tg_buf *out, int *out_status);

/* dp_anth_error_from_openai appends to out the Anthropic error body
 * {"type":"error","error":{"type","message"}} for an OpenAI error reply and
 * sets *out_status (may be NULL). code "context_length_exceeded" becomes a
 * message starting "prompt is too long", as Anthropic clients expect. */
tg_err dp_anth_error_from_openai(int status, const char *body, size_t len,
                                 tg_buf *out, int *out_status);

#endif
