/* dp_anth_wire.h - the Anthropic Messages vocabulary the Anthropic adapters
 * share (dp_anth_backend: OpenAI clients at Anthropic; dp_anth_client:
 * Anthropic clients at an OpenAI-format provider; dp_anth_relay: Anthropic
 * clients at Anthropic): token usage, the caller's options, a text block,
 * the sampling fields, what a stream event carries. Pure, no state:
 * thread-safe. */
#ifndef DP_ANTH_WIRE_H
#define DP_ANTH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_jtx.h"
#include "dp_openai.h"
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

/* dp_anth_usage_read merges into out the members present in an Anthropic
 * usage object u (message_delta repeats only what changed); nothing when
 * u is not an object. */
void dp_anth_usage_read(const cJSON *u, dp_anth_usage *out);

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

/* dp_anth_text_block appends {"type":"text","text":s} to blocks unless s
 * is empty: Anthropic rejects empty text blocks. */
void dp_anth_text_block(dp_jtx *tx, cJSON *blocks, const char *s);

/* dp_anth_sampling copies temperature and top_p from req to root: they
 * mean the same in both APIs (Anthropic's temperature range is 0..1; it
 * says so itself). A non-number is refused naming it. */
tg_err dp_anth_sampling(dp_jtx *tx, cJSON *root, const cJSON *req);

/* dp_anth_event_content: an Anthropic stream event of type (its parsed
 * JSON ev) gives an OpenAI client content: a non-empty text block or text
 * delta, a tool_use block or a non-empty input_json_delta. */
bool dp_anth_event_content(const char *type, const cJSON *ev);

#endif
