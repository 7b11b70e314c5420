/* dp_guard_req.h - one request's guardrails: the rules its decision named
 * (obligations), run on what the client sent before it goes upstream, on
 * the whole answer, or on the answer as it streams (dp_guard_stream.c),
 * in the client's own format (OpenAI chat, completions and embeddings,
 * Anthropic Messages); and what they found, for the decision record and
 * /metrics. Never keeps matched text. Worker thread only. */
#ifndef DP_GUARD_REQ_H
#define DP_GUARD_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_guard.h"
#include "tg_msg.h"

#define DP_GUARD_CHANNELS_MAX 16
#define DP_GUARD_SHAPE_MAX (1u << 20) /* answer text kept for shape checks */

typedef struct dp_gchan dp_gchan; /* a stream channel (dp_guard_stream.c) */

typedef struct dp_guard_req {
    tg_guard_set *set;           /* a reference, or NULL: no guardrails */
    uint64_t      mask;          /* every rule the decision named */
    uint64_t      enforced;      /* those in enforce mode */
    uint64_t      skip_err;      /* those whose on_error is skip */
    uint64_t      redact;        /* enforced rules whose action is redact */
    uint64_t      block;         /* enforced rules whose action is block */
    uint64_t      stage_mask[2]; /* rules of mask by tg_guard_stage */
    char          canary[40];    /* "" unless a rule asks for one */
    /* Outcomes for the record, merged by rule, detector, stage, where. */
    tg_guard_rec recs[TG_MSG_GUARD_HITS_MAX];
    uint32_t     n_recs;
    uint32_t     n_recs_dropped;
    bool         skipped; /* a scan failed and on_error skip let it by */
    bool         failed;  /* a scan failed and on_error deny stopped it */
    /* What blocked it, for the client: rule and detector, never text. */
    char block_msg[300];
    /* The stream: one scanner per channel, the last chunk's id fields. */
    dp_gchan     *chans;
    uint32_t      n_chans;
    char         *tmpl;  /* OpenAI: the last chunk with its choices removed */
    tg_buf        shape; /* the first choice's text, for shape checks */
    tg_guard_hits hits;  /* scratch */
} dp_guard_req;

typedef enum dp_guard_verdict {
    DP_GUARD_PASS = 0, /* nothing to change */
    DP_GUARD_CHANGED,  /* out holds the rewritten body or events */
    DP_GUARD_BLOCKED,  /* block_msg says which rule and detector */
    DP_GUARD_ERROR,    /* a scan failed and on_error is deny */
} dp_guard_verdict;

/* dp_guard_req_init binds the n obligations of a decision to set (takes
 * the reference on TG_OK). TG_EPROTO (why) when an obligation names a rule
 * the set does not hold at its index. */
tg_err dp_guard_req_init(dp_guard_req *g, tg_guard_set *set,
                         const tg_guard_ob *obs, uint32_t n, char *why,
                         size_t whylen);
void   dp_guard_req_fini(dp_guard_req *g); /* zeroed or inited */

/* dp_guard_stage_on: some rule of g runs at stage. */
bool dp_guard_stage_on(const dp_guard_req *g, tg_guard_stage stage);

/* dp_guard_input scans the client's body (format of ep): every message's
 * text, system prompts, tool call arguments and tool results, prompts,
 * embeddings input. CHANGED: out holds the body to send instead (spans
 * redacted, a canary added to the system prompt). */
dp_guard_verdict dp_guard_input(dp_guard_req *g, tg_endpoint ep,
                                const char *body, size_t len, tg_buf *out);

/* dp_guard_output scans a whole answer in the client's format (texts,
 * tool call arguments) and runs the shape checks; CHANGED: out holds the
 * answer to send. */
dp_guard_verdict dp_guard_output(dp_guard_req *g, tg_endpoint ep,
                                 const char *body, size_t len, tg_buf *out);

/* dp_guard_stream filters whole client stream events (SSE, the client's
 * format) into out: text is released as soon as no match can still cover
 * it, redacted; final flushes what is held (the stream ended). BLOCKED:
 * stop the stream; out holds what may still be sent. */
dp_guard_verdict dp_guard_stream(dp_guard_req *g, tg_endpoint ep,
                                 const char *ev, size_t len, bool final,
                                 tg_buf *out);

/* dp_guard_metrics appends tollgate_guardrail_hits_total (every hit this
 * process recorded, by rule, detector and action) in Prometheus text.
 * Thread-safe. */
void dp_guard_metrics(tg_buf *out);

/* ---- for dp_guard_stream.c -------------------------------------------- */

/* dp_guard_hits_apply records g->hits found at stage in where and decides:
 * BLOCKED (block_msg set) when an enforced block rule hit, CHANGED when an
 * enforced redact rule hit, else PASS. */
dp_guard_verdict dp_guard_hits_apply(dp_guard_req *g, tg_guard_stage stage,
                                     const char *where);

/* dp_guard_shape runs the output shape checks on g->shape. */
dp_guard_verdict dp_guard_shape(dp_guard_req *g);

/* dp_guard_stream_fini frees the stream's channels. */
void dp_guard_stream_fini(dp_guard_req *g);

/* dp_guard_failed: a scan failed with rv; ERROR unless every rule of the
 * stage skips on error (then PASS, recorded as skipped). */
dp_guard_verdict dp_guard_failed(dp_guard_req *g, tg_guard_stage stage,
                                 tg_err rv);

#endif
