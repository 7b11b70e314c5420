/* dp_anth_backend.h - an OpenAI client served by an Anthropic backend: its
 * chat completions request in Anthropic's Messages format, and the answer
 * (reply, stream events, errors) back in OpenAI's; dp_anth_backend_ops is
 * this adapter's table (dp_provider_int.h). Pure: no I/O, no global
 * state, so thread-safe; a stream translator belongs to one request and is
 * not thread-safe itself.
 *
 * Unsupported OpenAI request fields that would change the answer are errors
 * naming the field: n > 1, logprobs, top_logprobs, logit_bias (non-empty),
 * response_format json_object/json_schema, audio and modalities with audio,
 * non-function tools, content parts other than text/image_url. Fields that
 * only tune sampling or bookkeeping are dropped: frequency_penalty,
 * presence_penalty, seed, service_tier, store, metadata, prediction,
 * reasoning_effort, stream_options (see include_usage below). */
#ifndef DP_ANTH_BACKEND_H
#define DP_ANTH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_anth_wire.h"
#include "dp_openai.h"
#include "tg_buf.h"
#include "tg_err.h"

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
 * time, for metering a stream cut short. dp_anth_stream_emitted: what the
 * last feed or finish gave the client, counted as it was written (content:
 * 1 when the event became a content chunk, dp_anth_event_content), and the
 * usage so far. */
bool dp_anth_stream_ended(const dp_anth_stream *s);
void dp_anth_stream_usage(const dp_anth_stream *s, dp_anth_usage *out);
void dp_anth_stream_emitted(const dp_anth_stream *s, dp_emit *out);

/* dp_anth_error_to_openai appends to out the OpenAI error body for an
 * Anthropic error reply (status, body; body may be any bytes) and sets
 * *out_status (may be NULL) to the status for the client: the same except
 * 529 (overloaded), which becomes 503. A "prompt is too long" error gets
 * code "context_length_exceeded". */
tg_err dp_anth_error_to_openai(int status, const char *body, size_t len,
                               tg_buf *out, int *out_status);

#endif
