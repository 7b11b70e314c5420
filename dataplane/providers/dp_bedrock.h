/* dp_bedrock.h - an OpenAI chat client served by Amazon Bedrock's
 * Converse API (POST /model/{modelId}/converse) and ConverseStream
 * (/converse-stream, answered in the AWS event stream framing,
 * dp_evstream.h): the request out (dp_bedrock.c, with dp_bedrock_ops,
 * this provider's table), the reply, the stream and errors back
 * (dp_bedrock_reply.c). Each attempt is signed with SigV4 (dp_sigv4.h)
 * when it is prepared. Pure: no I/O, no global state, so thread-safe; a stream
 * translator belongs to one request.
 *
 * Mapped: system/developer messages to "system" text blocks; user and
 * assistant text; image_url parts given as base64 data URLs to image
 * blocks (png, jpeg, gif, webp) with the bytes; assistant tool_calls to
 * toolUse blocks and role "tool" messages to toolResult blocks in a user
 * turn (consecutive turns of one role are merged: Converse wants them
 * alternating); tools to toolConfig.tools[].toolSpec (inputSchema.json);
 * tool_choice auto/required/a function to toolChoice auto/any/tool;
 * max_tokens / max_completion_tokens, temperature, top_p and stop to
 * inferenceConfig. tool_choice "none" sends no tools (refused when the
 * conversation already holds tool calls: Converse needs toolConfig then).
 * Refused naming the field (they change the answer): n > 1, logprobs,
 * top_logprobs, logit_bias, audio, modalities other than text, the legacy
 * functions, response_format json_object/json_schema, image URLs that are
 * not base64 data URLs (the gateway fetches nothing), non-function tools.
 * Dropped: seed, frequency_penalty, presence_penalty, parallel_tool_calls,
 * user, service_tier, store, metadata, reasoning_effort, stream_options. */
#ifndef DP_BEDROCK_H
#define DP_BEDROCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_openai.h"
#include "tg_buf.h"
#include "tg_err.h"

/* dp_bedrock_path writes "/model/<modelId>/converse" (or
 * "/converse-stream"), the model id percent-encoded (its ':' too).
 * TG_EINVAL for an empty id; TG_ETOOBIG if out is too small. */
tg_err dp_bedrock_path(const char *model, bool stream, char *out,
                       size_t outlen);

/* dp_bedrock_req_from_openai renders the Converse request body for an
 * OpenAI chat request (parsed); clamp > 0 bounds maxTokens. TG_EINVAL
 * with a client message and param when it cannot be put in Converse.
 * Owns: *out (free()). */
tg_err dp_bedrock_req_from_openai(const cJSON *req, int64_t clamp, char **out,
                                  size_t *len, char *msg, size_t msglen,
                                  char *param, size_t paramlen);

/* What the caller fixes about a translated reply. */
typedef struct dp_bedrock_meta {
    const char *id;    /* "chatcmpl-..." */
    const char *model; /* the name the client asked for */
    int64_t     created;
} dp_bedrock_meta;

/* dp_bedrock_usage reads a Converse usage object: prompt = inputTokens +
 * cacheReadInputTokens + cacheWriteInputTokens (OpenAI counts cached
 * input in the prompt), completion = outputTokens, cached =
 * cacheReadInputTokens. Leaves out alone when u is not an object. */
void dp_bedrock_usage(const cJSON *u, dp_usage_counts *out);

/* dp_bedrock_finish maps a stopReason: end_turn and stop_sequence stop,
 * tool_use tool_calls, max_tokens length, content_filtered and
 * guardrail_intervened content_filter; anything else stop. */
const char *dp_bedrock_finish(const char *stop_reason);

/* dp_bedrock_resp_to_openai renders the chat.completion for a Converse
 * response (output.message.content text and toolUse blocks, stopReason,
 * usage) and fills usage. TG_EPROTO if body is not one. Owns: *out. */
tg_err dp_bedrock_resp_to_openai(const char *body, size_t len,
                                 const dp_bedrock_meta *meta, char **out,
                                 size_t *outlen, dp_usage_counts *usage);

/* A ConverseStream answer turned into OpenAI chat.completion.chunk
 * events: messageStart gives the role chunk, text deltas content chunks,
 * a toolUse contentBlockStart a tool_calls chunk with its id and name and
 * each toolUse input delta one with an arguments fragment, messageStop
 * the finish chunk, metadata the usage; at the end the usage chunk (when
 * asked) and [DONE]. An exception message (throttlingException,
 * modelStreamErrorException, ...) or a frame that fails its checks gives
 * one OpenAI error event and ends the stream; an end without messageStop
 * gives the "upstream_stream_incomplete" error event. */
typedef struct dp_bedrock_stream dp_bedrock_stream;

/* Owns: *out (dp_bedrock_stream_destroy). max 0: DP_EVS_MAX. */
tg_err dp_bedrock_stream_create(dp_bedrock_stream    **out,
                                const dp_bedrock_meta *meta, bool include_usage,
                                size_t max);
void   dp_bedrock_stream_destroy(dp_bedrock_stream *s);

/* dp_bedrock_stream_feed takes any piece of the body and appends the
 * client events of the messages it completes; em gets what they
 * carried. An error only for memory or an output limit. */
tg_err dp_bedrock_stream_feed(dp_bedrock_stream *s, const char *data,
                              size_t len, tg_buf *out, dp_emit *em);

/* dp_bedrock_stream_finish: the body ended; appends what closes the
 * client's stream. */
tg_err dp_bedrock_stream_finish(dp_bedrock_stream *s, tg_buf *out, dp_emit *em);

/* dp_bedrock_error_to_openai appends the OpenAI error body for a Bedrock
 * error answer ({"message": ...}, any bytes) and sets *out_status: 400
 * (a ValidationException; "too long" input gives code
 * context_length_exceeded), 403 (auth), 404, 429 (throttling), 5xx as
 * given. */
tg_err dp_bedrock_error_to_openai(int status, const char *body, size_t len,
                                  tg_buf *out, int *out_status);

#endif
