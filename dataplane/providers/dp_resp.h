/* dp_resp.h - an OpenAI Responses API client (POST /v1/responses) served
 * through the internal chat completions form: its request read into an
 * OpenAI chat body (which policy, guardrails, routing, retries, budgets
 * and every provider table take as they take a chat request), and the
 * chat answer (a whole chat.completion, or chat.completion.chunk events)
 * turned back into a Response object or the Responses event stream.
 * Pure: no I/O, no global state, so thread-safe; a stream translator
 * belongs to one request and is not thread-safe itself.
 *
 * What is honoured, approximated or refused is listed at
 * dp_resp_req_to_chat. */
#ifndef DP_RESP_H
#define DP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_buf.h"
#include "tg_err.h"

/* dp_resp_req_to_chat renders the chat completions body for a Responses
 * request req, and in *echo the request's parameters a Response object
 * repeats (instructions, tools, tool_choice, temperature, top_p,
 * max_output_tokens, metadata, parallel_tool_calls, text, reasoning,
 * user, store).
 *
 * Translated: input (a string, or message / function_call /
 * function_call_output items; input_text and input_image parts),
 * instructions (a first system message), tools (function tools),
 * tool_choice, max_output_tokens (max_tokens), temperature, top_p,
 * text.format (response_format), parallel_tool_calls (with tools), user,
 * stream (with stream_options.include_usage, so usage is always known).
 * Echoed only: metadata, reasoning (not sent: not every provider takes
 * it), store (answered false: the gateway does not keep responses),
 * truncation, include, service_tier, prompt_cache_key,
 * safety_identifier, top_logprobs, max_tool_calls, text.verbosity.
 * Left out, named in builtin (the first; "" when none): built-in tools
 * (web_search, file_search, computer_use, ...) and a tool_choice naming
 * one, which only a native attempt at OpenAI can serve.
 * Refused (TG_EINVAL, a client-facing message in msg and the field in
 * param): previous_response_id, conversation, background, prompt,
 * item_reference and input_file items, image file_id, and any unknown
 * field. Owns: *out (free()) and *echo (cJSON_Delete). Borrows req. */
tg_err dp_resp_req_to_chat(const cJSON *req, char **out, size_t *len,
                           cJSON **echo, char *builtin, size_t builtinlen,
                           char *msg, size_t msglen, char *param,
                           size_t paramlen);

/* What a translated answer repeats: the response id ("resp_..."), the
 * model the client asked for, the creation time (unix seconds) and the
 * request's echoed parameters (may be NULL). Borrowed. */
typedef struct dp_resp_meta {
    const char  *id;
    const char  *model;
    int64_t      created;
    const cJSON *echo;
} dp_resp_meta;

/* dp_resp_from_chat renders the Response object for a chat.completion
 * body: a message item for the text, a function_call item per tool call,
 * status "completed" (or "incomplete", reason max_output_tokens, when
 * the answer was cut by its length), usage in the Responses form.
 * TG_EPROTO if body is not a chat.completion. Owns: *out (free()). */
tg_err dp_resp_from_chat(const char *body, size_t len, const dp_resp_meta *m,
                         char **out, size_t *outlen);

/* chat.completion.chunk events turned into Responses events
 * ("event: <type>\ndata: {...,"sequence_number":n}\n\n"), in OpenAI's
 * order: response.created, response.in_progress, then per output item
 * response.output_item.added, (for a message) response.content_part.added,
 * response.output_text.delta..., response.output_text.done,
 * response.content_part.done, (for a function call)
 * response.function_call_arguments.delta..., .done, then
 * response.output_item.done; at the end response.completed (or
 * response.incomplete) with usage. An OpenAI error event becomes an
 * "error" event and ends the stream. */
typedef struct dp_resp_stream dp_resp_stream;

/* dp_resp_stream_create copies m (and a duplicate of m->echo). Owns:
 * *out, free with dp_resp_stream_destroy (NULL-safe). */
tg_err dp_resp_stream_create(dp_resp_stream **out, const dp_resp_meta *m);
void   dp_resp_stream_destroy(dp_resp_stream *s);

/* dp_resp_stream_feed_sse translates one whole raw chat SSE event
 * ("data: {...}\n\n", "data: [DONE]\n\n" or an error event), appending
 * zero or more whole Responses events to out. Nothing is read after the
 * stream has ended. TG_EPROTO: data that is not JSON. */
tg_err dp_resp_stream_feed_sse(dp_resp_stream *s, const char *ev, size_t len,
                               tg_buf *out);

/* dp_resp_stream_finish is called when the chat stream's bytes end: a
 * stream that finished (a finish_reason seen) without [DONE] is completed;
 * one that stopped early gets an error event. Nothing after an end. */
tg_err dp_resp_stream_finish(dp_resp_stream *s, tg_buf *out);

/* dp_resp_stream_ended: the final event (completed, incomplete or error)
 * has been written. */
bool dp_resp_stream_ended(const dp_resp_stream *s);

#endif
