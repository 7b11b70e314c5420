/* dp_gem_in.h - a Gemini API client (POST /v1beta/models/{model}:
 * generateContent, :streamGenerateContent?alt=sse, :countTokens) served by
 * any deployment. The request is read into OpenAI's chat completions form
 * once, at admission, and from then on the request IS a chat completion
 * (the PDP, guardrails, routing, retries, budgets and usage see one); the
 * answer (a whole chat.completion, the chat SSE stream, an OpenAI error
 * body) is rendered back in Gemini's shape as it leaves for the client.
 * Pure: no I/O, no global state, so thread-safe; a stream renderer belongs
 * to one request and is not thread-safe itself.
 *
 * Request fields ignored: generationConfig.topK (no OpenAI equivalent) and
 * safetySettings (the gateway's guardrails are its safety controls);
 * candidateCount > 1, cachedContent, non-function tools and file parts are
 * errors, as is any field not known here. */
#ifndef DP_GEM_IN_H
#define DP_GEM_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"

/* The Gemini methods served. */
typedef enum dp_gemin_op {
    DP_GEMIN_NONE = 0,
    DP_GEMIN_GENERATE, /* :generateContent */
    DP_GEMIN_STREAM,   /* :streamGenerateContent (alt=sse) */
    DP_GEMIN_COUNT,    /* :countTokens, answered by the gateway */
} dp_gemin_op;

/* dp_gemin_path reads an API path "/v1beta/models/<model>:<method>" (or
 * "/v1/models/..."): true when url is one of those with a ':' method, or
 * anything else under /v1beta/; *op is DP_GEMIN_NONE for a method or path
 * not served, and model is the part between "models/" and the last ':'
 * ("" when there is none or it does not fit modellen). */
bool dp_gemin_path(const char *url, dp_gemin_op *op, char *model,
                   size_t modellen);

/* dp_gemin_req_to_openai renders the OpenAI chat completions body for a
 * Gemini GenerateContentRequest (countTokens: also its CountTokensRequest,
 * contents alone or a generateContentRequest) for model. Streams ask for
 * stream_options.include_usage. TG_EINVAL with a client-facing message
 * and the offending field when it cannot be read; TG_EPROTO: not one
 * JSON object. Owns: *out (free()). */
tg_err dp_gemin_req_to_openai(const char *body, size_t len, dp_gemin_op op,
                              const char *model, char **out, size_t *outlen,
                              char *msg, size_t msglen, char *param,
                              size_t paramlen);

/* dp_gemin_reply renders a GenerateContentResponse for an OpenAI
 * chat.completion body. TG_EPROTO: not a completion, or a tool call's
 * arguments are not a JSON object. */
tg_err dp_gemin_reply(const char *oai, size_t len, tg_buf *out)
    __attribute__((warn_unused_result));

/* dp_gemin_status names the google.rpc status of an HTTP status. */
const char *dp_gemin_status(unsigned status);

/* dp_gemin_error writes Google's error body {"error":{"code","message",
 * "status","details"}} for status and message; code (Tollgate's error
 * code, may be NULL) goes in an ErrorInfo detail, retry_s > 0 in a
 * RetryInfo. */
tg_err dp_gemin_error(unsigned status, const char *message, const char *code,
                      long retry_s, tg_buf *out);

/* dp_gemin_error_from_openai is dp_gemin_error for an OpenAI error body
 * ({"error":{"message","code",...}}); anything else keeps a generic
 * message. */
tg_err dp_gemin_error_from_openai(unsigned status, const char *oai, size_t len,
                                  long retry_s, tg_buf *out)
    __attribute__((warn_unused_result));

/* dp_gemin_count writes {"totalTokens": n}. */
tg_err dp_gemin_count(int64_t n, tg_buf *out)
    __attribute__((warn_unused_result));

/* A stream renderer: OpenAI chat SSE bytes in (any cut), Gemini SSE out
 * ("data: {GenerateContentResponse}\n\n" per chunk:
 * text deltas as they come, function calls whole, a last chunk with the
 * finishReason and usageMetadata; an OpenAI error event becomes Google's
 * error object). */
typedef struct dp_gemin_stream dp_gemin_stream;

/* dp_gemin_stream_create: NULL when out of memory. Owns: the result, free
 * with dp_gemin_stream_destroy (NULL-safe). */
dp_gemin_stream *dp_gemin_stream_create(const char *model);
void             dp_gemin_stream_destroy(dp_gemin_stream *s);

/* dp_gemin_stream_feed renders what whole events data completes. */
tg_err dp_gemin_stream_feed(dp_gemin_stream *s, const char *data, size_t len,
                            tg_buf *out) __attribute__((warn_unused_result));

/* dp_gemin_stream_finish: no more bytes; appends the last chunk when the
 * stream finished (a finish reason came) and it is not out yet. */
tg_err dp_gemin_stream_finish(dp_gemin_stream *s, tg_buf *out)
    __attribute__((warn_unused_result));

#endif
