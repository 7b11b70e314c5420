/* dp_gemini.h - translates between the OpenAI chat completions format and
 * Google Gemini's generateContent / streamGenerateContent?alt=sse API: an
 * OpenAI client served by a Gemini backend (request out: dp_gemini.c;
 * reply, stream events and errors back: dp_gemini_reply.c); and OpenAI
 * embeddings to batchEmbedContents and back (dp_gemini_embed.c).
 * dp_gem_ops (dp_provider_int.h, in dp_gemini.c) is this provider's table.
 * Pure: no I/O, no global state, so thread-safe; a stream translator
 * belongs to one request and is not thread-safe itself.
 *
 * The model is not in a Gemini body but in the URL (dp_gem_model_path).
 * Unsupported OpenAI request fields that would change the answer are errors
 * naming the field: n > 1, logprobs, top_logprobs, logit_bias (non-empty),
 * audio and modalities with audio, the legacy functions/function_call,
 * non-function tools, content parts other than text/image_url, image URLs
 * other than http(s) and base64 data URLs, a tool schema using "$ref".
 * Dropped: frequency_penalty and presence_penalty (several Gemini models
 * reject them with a 400), parallel_tool_calls (Gemini has no switch),
 * user, service_tier, store, metadata, prediction, reasoning_effort,
 * stream and stream_options (the URL picks streaming; see include_usage).
 * Mapped: max_tokens/max_completion_tokens, temperature, top_p, stop, seed,
 * response_format json_object (responseMimeType) and json_schema
 * (responseMimeType + responseSchema; "strict" is dropped).
 *
 * Tool and response schemas are JSON Schema; Gemini takes an OpenAPI
 * subset and rejects the rest, so at every schema level (properties,
 * items, anyOf) these keywords are removed: $schema $id $comment $defs
 * definitions additionalProperties unevaluatedProperties patternProperties
 * propertyNames dependentRequired dependentSchemas examples
 * contentEncoding contentMediaType exclusiveMinimum exclusiveMaximum
 * multipleOf readOnly writeOnly deprecated strict, and string formats
 * other than enum and date-time. A string "const" becomes a one-value
 * "enum" (other consts are dropped), "oneOf" becomes "anyOf", and
 * "type": [T, "null"] becomes "type": T, "nullable": true. "$ref" is an
 * error (it would need inlining). A function whose parameters are an
 * object without properties is declared without parameters. */
#ifndef DP_GEMINI_H
#define DP_GEMINI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_openai.h"
#include "tg_buf.h"
#include "tg_err.h"

/* What the caller decides about a translated request. */
typedef struct dp_gem_req_opts {
    int64_t max_tokens_default; /* > 0: when the request sets none */
    int64_t max_tokens_clamp;   /* > 0: upper bound on maxOutputTokens */
} dp_gem_req_opts;

/* What the caller fixes about a translated reply. Gemini gives function
 * calls no ids, so call i is named call_prefix followed by i
 * ("call_<reqid>_" gives "call_<reqid>_0"); i counts across a stream. */
typedef struct dp_gem_resp_meta {
    const char *id;          /* "chatcmpl-..." */
    const char *model;       /* the name the client asked for */
    int64_t     created;     /* unix seconds */
    const char *call_prefix; /* NULL: "call_" */
} dp_gem_resp_meta;

/* dp_gem_model_path writes the URL path for model into out:
 * "/v1beta/models/<model>:generateContent", or
 * ":streamGenerateContent?alt=sse" when stream. The model is
 * percent-encoded. TG_EINVAL for an empty model or one containing '/',
 * '?', '#' or ".."; TG_ETOOBIG if out is too small. */
tg_err dp_gem_model_path(const char *model, bool stream, char *out,
                         size_t outlen);

/* dp_gem_req_from_openai renders the Gemini GenerateContentRequest body
 * for an OpenAI chat completions request (a parsed body, e.g.
 * dp_chat_req.root). Role "tool" messages become functionResponse parts
 * of role "user", named after the earlier assistant tool call with the
 * same id. On a request that cannot be translated returns TG_EINVAL with
 * a client-facing message in msg and the offending field
 * ("messages[2].content[0]") in param. Borrows req and opts until return.
 * Owns: *out (free()). */
tg_err dp_gem_req_from_openai(const cJSON *req, const dp_gem_req_opts *opts,
                              char **out, size_t *len, char *msg, size_t msglen,
                              char *param, size_t paramlen);

/* dp_gem_resp_to_openai renders the chat.completion for a Gemini
 * GenerateContentResponse body and fills usage (may be NULL):
 * prompt = promptTokenCount (it includes the cached tokens),
 * completion = candidatesTokenCount + thoughtsTokenCount,
 * cached = cachedContentTokenCount. A prompt blocked by promptFeedback is
 * an empty reply with finish_reason "content_filter". TG_EPROTO if body is
 * neither. Borrows body and meta until return. Owns: *out (free()). */
tg_err dp_gem_resp_to_openai(const char *body, size_t len,
                             const dp_gem_resp_meta *meta, char **out,
                             size_t *outlen, dp_usage_counts *usage);

/* A Gemini alt=sse stream (each event's data is a whole
 * GenerateContentResponse) turned into OpenAI chat.completion.chunk
 * events. */
typedef struct dp_gem_stream dp_gem_stream;

/* dp_gem_stream_create copies meta. include_usage: end with the usage
 * chunk (choices:[]) before [DONE], as the client asked. Owns: *out, free
 * with dp_gem_stream_destroy. */
tg_err dp_gem_stream_create(dp_gem_stream **out, const dp_gem_resp_meta *meta,
                            bool include_usage);
void   dp_gem_stream_destroy(dp_gem_stream *s);

/* dp_gem_stream_feed translates one event, given as the JSON of its data,
 * appending zero or more whole "data: ...\n\n" events to out, all or
 * nothing: the first event gives the role chunk, text the content deltas,
 * each functionCall one tool_calls delta carrying the whole call, a
 * finishReason the finish chunk. An {"error":...} object appends an
 * OpenAI error event and ends the stream. Events after the end append
 * nothing. TG_EPROTO on data that is not a JSON object (or an array of
 * one, as Gemini sends without alt=sse); TG_ETOOBIG or
 * TG_ENOMEM from out. Borrows all arguments until return. */
tg_err dp_gem_stream_feed(dp_gem_stream *s, const char *data, size_t len,
                          tg_buf *out);

/* dp_gem_stream_feed_sse is dp_gem_stream_feed for one whole raw SSE
 * event ("data: {...}\n\n") as dp_sse_feed delivers it; events without
 * data append nothing. */
tg_err dp_gem_stream_feed_sse(dp_gem_stream *s, const char *ev, size_t len,
                              tg_buf *out);

/* dp_gem_stream_finish is called when the upstream body ends (Gemini has
 * no end marker). After a finishReason it appends the usage chunk when
 * asked and "data: [DONE]"; without one, an OpenAI error event (code
 * "upstream_stream_incomplete") so the client sees the cut. */
tg_err dp_gem_stream_finish(dp_gem_stream *s, tg_buf *out);

/* dp_gem_stream_ended: finish or an error event ended the stream.
 * dp_gem_stream_usage: the latest usageMetadata (Gemini repeats the
 * running totals), valid at any time, for metering a stream cut short. */
bool dp_gem_stream_ended(const dp_gem_stream *s);
void dp_gem_stream_usage(const dp_gem_stream *s, dp_usage_counts *out);

/* dp_gem_stream_emitted: what the last feed or finish gave the client,
 * counted as it was written (content: the text and tool call chunks), and
 * the usage so far. */
void dp_gem_stream_emitted(const dp_gem_stream *s, dp_emit *out);

/* dp_gem_error_to_openai appends to out the OpenAI error body for a Gemini
 * error reply (status, body; body may be any bytes, a
 * {"error":{"code","message","status"}} object or an array holding one)
 * and sets *out_status (may be NULL) to the status for the client, from
 * error.status: INVALID_ARGUMENT and FAILED_PRECONDITION 400 (code
 * "context_length_exceeded" when the input token count exceeds the
 * maximum), UNAUTHENTICATED 401 (and Gemini's 400 "API key not valid"),
 * PERMISSION_DENIED 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
 * INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504; otherwise the
 * HTTP status. The caller decides what the client sees for 401/403. */
tg_err dp_gem_error_to_openai(int status, const char *body, size_t len,
                              tg_buf *out, int *out_status);

/* ---- Embeddings: OpenAI /v1/embeddings served by batchEmbedContents ---- */

/* dp_gem_embed_path is dp_gem_model_path for
 * "/v1beta/models/<model>:batchEmbedContents". */
tg_err dp_gem_embed_path(const char *model, char *out, size_t outlen);

/* dp_gem_embed_req_from_openai renders the BatchEmbedContentsRequest for
 * an OpenAI embeddings request (parsed body): one request per input, each
 * naming "models/<model>", with "dimensions" as outputDimensionality.
 * "user" is dropped; "encoding_format" must be float or base64 (the reply
 * is rendered accordingly by dp_gem_embed_resp_to_openai). Token-id input
 * has no Gemini equivalent: TG_EINVAL with msg and param ("input[2]"), as
 * for a bad dimensions or encoding_format. Owns: *out (free()). */
tg_err dp_gem_embed_req_from_openai(const cJSON *req, const char *model,
                                    char **out, size_t *len, char *msg,
                                    size_t msglen, char *param,
                                    size_t paramlen);

/* What the caller fixes about an embeddings reply. Gemini reports no token
 * counts for embeddings, so usage carries the caller's estimate. */
typedef struct dp_gem_embed_meta {
    const char *model;         /* the name the client asked for */
    bool        base64;        /* encoding_format "base64" */
    int         inputs;        /* > 0: the reply must hold this many */
    int64_t     prompt_tokens; /* the estimate, for "usage" */
} dp_gem_embed_meta;

/* dp_gem_embed_resp_to_openai renders the OpenAI embeddings list for a
 * BatchEmbedContentsResponse: data[i] from embeddings[i].values, as
 * numbers or (base64) the base64 of little-endian float32s. TG_EPROTO when
 * body is not one or holds another number of embeddings. Owns: *out. */
tg_err dp_gem_embed_resp_to_openai(const char *body, size_t len,
                                   const dp_gem_embed_meta *meta, char **out,
                                   size_t *outlen);

#endif
