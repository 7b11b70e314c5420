/* dp_provider_int.h - dp_provider's internal header: the interface each
 * provider wire format implements, shaped like curl's TLS backends
 * (lib/vtls/vtls_int.h: one struct Curl_ssl per backend) and nginx's
 * upstream callbacks: one const dp_provider_ops per format, filled by the
 * module that speaks it, chosen once per attempt by dp_provider_select from
 * the client's format and the deployment's kind. The core (dp_provider.c)
 * owns what every format shares: the common headers and the credential,
 * the failure classes, metering. Included by the format modules and their
 * tests, never by the worker (which sees dp_provider.h).
 *
 * Adding a provider: write dp_<name>.c filling one dp_provider_ops for
 * OpenAI-format clients, declare it below, add one row to dp_provider_rows
 * in dp_provider.c (and the source to dataplane/CMakeLists.txt). Anthropic
 * Messages clients are then served too, by dp_anth_client_ops translating
 * around the new table; a provider that speaks Messages itself names its
 * own table for them in the row's second column.
 *
 * The tables are immutable (thread-safe); a stream state belongs to one
 * attempt of one worker. */
#ifndef DP_PROVIDER_INT_H
#define DP_PROVIDER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_openai.h"
#include "dp_provider.h"
#include "tg_buf.h"
#include "tg_err.h"

typedef struct dp_provider_ops {
    const char *name;        /* "openai", "anthropic", ...: tests, logs */
    bool        completions; /* serves POST /v1/completions */
    bool        embeddings;  /* serves POST /v1/embeddings */
    /* binary_stream: the provider streams a binary framing of its own
     * (Bedrock's application/vnd.amazon.eventstream), not SSE: the
     * transfer hands stream_event the bytes as they arrive, in pieces cut
     * anywhere, and the table buffers frames itself. */
    bool binary_stream;

    /* prepare sets c->url, the format's own headers (dp_call_header) and
     * the body (c->body, c->len); the core adds Content-Type, Accept,
     * Expect and the credential. TG_EINVAL with a client-facing msg (and
     * param): the request cannot be put in this format. */
    tg_err (*prepare)(dp_call *c, int64_t clamp, char *msg, size_t msglen,
                      char *param, size_t paramlen);

    /* stream_start makes the state of one streamed answer in *st;
     * include_usage: the client gets the usage chunk. Owns: *st, freed
     * with stream_free (NULL-safe). */
    tg_err (*stream_start)(const dp_call *c, bool include_usage, void **st);
    /* stream_event turns one whole upstream event into client events
     * appended to out and says in em what they carried: the client events
     * with content, the usage the provider reported (found false: none
     * new). An error means the stream cannot continue. */
    tg_err (*stream_event)(void *st, const char *ev, size_t len, tg_buf *out,
                           dp_emit *em);
    /* stream_end: the upstream body ended; appends what closes the
     * client's stream (an error event when the provider stopped early). */
    tg_err (*stream_end)(void *st, tg_buf *out, dp_emit *em);
    void (*stream_free)(void *st);

    /* body turns a whole 2xx upstream body into the client's body; usage
     * gets what it reported (left alone when the format reports none). */
    tg_err (*body)(const dp_call *c, const char *body, size_t len, tg_buf *out,
                   dp_usage_counts *usage);

    /* error appends to oai the OpenAI error body for an upstream error
     * answer (status, any bytes), which the core classifies, and sets
     * *out_status to the status for the client. */
    tg_err (*error)(const dp_call *c, int status, const char *body, size_t len,
                    tg_buf *oai, int *out_status);
    /* error_body writes the body the client gets for a request the
     * provider refused: from its own answer (raw) or its OpenAI form. */
    tg_err (*error_body)(const dp_call *c, unsigned status, const char *raw,
                         size_t rawlen, const tg_buf *oai, tg_buf *out);
} dp_provider_ops;

/* The tables, by the module that fills each. */
extern const dp_provider_ops dp_openai_ops;       /* dp_openai_relay.c */
extern const dp_provider_ops dp_anth_backend_ops; /* dp_anth_backend.c */
extern const dp_provider_ops dp_anth_relay_ops;   /* dp_anth_relay.c */
extern const dp_provider_ops dp_gem_ops;          /* dp_gemini.c */
extern const dp_provider_ops dp_bedrock_ops;      /* dp_bedrock.c */
extern const dp_provider_ops dp_anth_client_ops;  /* dp_anth_client.c */
extern const dp_provider_ops dp_resp_relay_ops;   /* dp_resp_relay.c */

/* dp_provider_select returns the table an attempt runs for a client
 * endpoint (TG_EP_MESSAGES: an Anthropic client; any other: OpenAI) at a
 * provider kind, and in *wire the table of the provider's own format (the
 * same one, or the one dp_anth_client_ops wraps). NULL for an unknown
 * kind. */
const dp_provider_ops *dp_provider_select(tg_endpoint ep, tg_provider kind,
                                          const dp_provider_ops **wire);

/* ---- for the tables' functions ---------------------------------------- */

/* dp_call_url sets c->url from a printf format. */
tg_err dp_call_url(dp_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));

/* dp_call_body_copy sets the body to a copy of data (a client's bytes
 * sent as they came). */
tg_err dp_call_body_copy(dp_call *c, const char *data, size_t len)
    __attribute__((warn_unused_result));

/* dp_call_body_relay sets the body to a client's own-format request raw
 * (len bytes) for a deployment of that format: byte for byte when
 * c->cr->raw_exact and nothing must change, else with only "model" set
 * to the deployment's upstream_model and tokens_key (max_tokens,
 * max_output_tokens) lowered to clamp (> 0) when it is absent or higher.
 * TG_EINVAL when raw is not JSON. */
tg_err dp_call_body_relay(dp_call *c, const char *raw, size_t len,
                          const char *tokens_key, int64_t clamp)
    __attribute__((warn_unused_result));

/* dp_call_stream_end_relayed is the stream_end of a table that relays
 * the provider's events as they came: its own closing events went
 * through, there is nothing to add. */
tg_err dp_call_stream_end_relayed(void *st, tg_buf *out, dp_emit *em);

/* dp_call_error_oai is the error_body of a format whose client reads
 * OpenAI errors: the OpenAI form, as it is. */
tg_err dp_call_error_oai(const dp_call *c, unsigned status, const char *raw,
                         size_t rawlen, const tg_buf *oai, tg_buf *out);

#endif
