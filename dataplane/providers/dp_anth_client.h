/* dp_anth_client.h - an Anthropic Messages client (POST /v1/messages)
 * served by a provider of another format: its request in OpenAI's chat
 * completions form (which every provider table takes), and the answer
 * (reply, stream events, errors) back in Anthropic's. dp_anth_client_ops
 * (dp_provider_int.h) wraps the provider's own table with these. Pure: no
 * I/O, no global state, so thread-safe; a stream translator belongs to
 * one request and is not thread-safe itself.
 *
 * Request fields dropped: top_k, thinking, cache_control and
 * tool_result.is_error; server tools and non-text tool results are
 * errors. */
#ifndef DP_ANTH_CLIENT_H
#define DP_ANTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_anth_wire.h"
#include "dp_openai.h"
#include "tg_buf.h"
#include "tg_err.h"

/* dp_anth_req_to_openai renders the OpenAI chat completions body for an
 * Anthropic Messages request. Only opts->model is used (NULL: keep).
 * Streams ask for stream_options.include_usage. On a request that cannot
 * be translated returns TG_EINVAL with a client-facing message in msg and
 * the offending field in param. Owns: *out (free()). */
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

/* dp_anth_error_from_openai appends to out the Anthropic error body
 * {"type":"error","error":{"type","message"}} for an OpenAI error reply and
 * sets *out_status (may be NULL). code "context_length_exceeded" becomes a
 * message starting "prompt is too long", as Anthropic clients expect. */
tg_err dp_anth_error_from_openai(int status, const char *body, size_t len,
                                 tg_buf *out, int *out_status);

#endif
