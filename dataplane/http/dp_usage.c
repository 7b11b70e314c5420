/* dp_usage.c - a request's intent and final usage report (dp_usage.h).
 * Worker thread. */
#include "dp_usage.h"

#include <stdio.h>
#include <string.h>

#include "tg_jstrict.h"
#include "tg_log.h"
#include "tg_time.h"

/* Output tokens an intent counts when the request sets no max_tokens: the
 * PDP's worst case (PDP_LIMITS_OUTPUT_CAP). */
#define DP_OUTPUT_WORST 4096

/* dp_usage_start fills what every record of r says: who, what, when. */
static void
dp_usage_start(const dp_req *r, tg_usage *u)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", r->request_id);
    snprintf(u->key_id, sizeof(u->key_id), "%s", r->dec.key_id);
    snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", r->dec.tenant_id);
    snprintf(u->user, sizeof(u->user), "%s", r->chat.user);
    u->endpoint   = r->endpoint;
    u->stream     = r->chat.stream;
    u->started_ms = r->started_ms;
}

/* dp_usage_outcome fills the decision-record part of r's final report:
 * what was asked and decided, by which rules, how long each part took,
 * and what the capture level allows of its metadata. */
static void
dp_usage_outcome(const dp_req *r, tg_outcome *o)
{
    const dp_decision *d = &r->dec;

    o->present = true;
    snprintf(o->model_requested, sizeof(o->model_requested), "%s",
             r->chat.model);
    snprintf(o->client_ip, sizeof(o->client_ip), "%s", r->client_ip);
    snprintf(o->trace_id, sizeof(o->trace_id), "%s", r->trace_id);
    snprintf(o->error_code, sizeof(o->error_code), "%s", r->ans_code);
    o->pdp_us                 = r->pdp_us;
    o->pdp_link               = r->pdp_idx;
    o->max_tokens             = r->chat.max_tokens;
    o->prompt_tokens_estimate = r->chat.prompt_tokens_estimate;
    o->first_byte_us          = r->first_byte_us;
    if (!r->have_decision) {
        /* No decision: the PDP names the key from its hash. */
        snprintf(o->origin, sizeof(o->origin), "%s",
                 r->fail_open ? "fail_open" : "dataplane");
        o->has_key_hash = true;
        memcpy(o->key_hash, r->key_hash, sizeof(o->key_hash));
        return;
    }
    if (r->reused) {
        snprintf(o->origin, sizeof(o->origin), "reused");
    }
    o->verdict            = d->verdict;
    o->policy_revision    = d->policy_revision;
    o->capture_level      = d->capture_level;
    o->reserved_micro_usd = d->reserved_micro_usd;
    o->shed               = r->record_shed;
    snprintf(o->bundle_hash, sizeof(o->bundle_hash), "%s", d->bundle_hash);
    memcpy(o->matched, d->matched, d->n_matched * sizeof(o->matched[0]));
    o->n_matched     = d->n_matched;
    o->guard_skipped = r->guard_skipped;
    if (r->guard != NULL) {
        /* What the guardrails found: rule, detector, where, offsets;
         * never the text. */
        memcpy(o->guard_hits, r->guard->recs,
               r->guard->n_recs * sizeof(o->guard_hits[0]));
        o->n_guard_hits  = r->guard->n_recs;
        o->guard_skipped = o->guard_skipped || r->guard->skipped;
    }
    if (d->capture_level >= TG_CAPTURE_METADATA && !r->record_shed &&
        r->n_meta > 0) {
        memcpy(o->meta, r->meta, r->n_meta * sizeof(o->meta[0]));
        o->n_meta = r->n_meta;
    }
}

/* dp_usage_captures: r's record keeps its bodies. */
static bool
dp_usage_captures(const dp_req *r)
{
    return r->have_decision && r->dec.capture_level == TG_CAPTURE_FULL &&
           !r->record_shed;
}

void
dp_usage_capture(const dp_host *h, dp_req *r, const char *data, size_t len)
{
    size_t cap = (size_t)h->cfg->dataplane.capture_max_bytes;

    if (dp_usage_captures(r) && r->cap_stream.len < cap) {
        tg_buf_add(&r->cap_stream, data,
                   len < cap - r->cap_stream.len ? len
                                                 : cap - r->cap_stream.len);
    }
}

/* dp_usage_json_str appends s (n bytes) to b as a JSON string whose
 * escaped text takes at most cap bytes, invalid UTF-8 as U+FFFD; false
 * when s was cut. */
static bool
dp_usage_json_str(tg_buf *b, const char *s, size_t n, size_t cap)
{
    size_t used = 0;
    size_t i    = 0;

    tg_buf_add(b, "\"", 1);
    while (i < n) {
        unsigned char c   = (unsigned char)s[i];
        size_t        len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        char          esc[8];
        const char   *out = s + i;
        size_t        olen;

        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)c;
                out = esc, olen = 2;
            } else if (c < 0x20 || c == 0x7f) {
                olen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
                out  = esc;
            } else {
                olen = 1;
            }
        } else if (i + len <= n && tg_utf8_valid(s + i, len) == len) {
            olen = len;
        } else {
            out = "\xef\xbf\xbd", olen = 3, len = 1; /* U+FFFD */
        }
        if (used + olen > cap) {
            break;
        }
        tg_buf_add(b, out, olen);
        used += olen;
        i += len;
    }
    tg_buf_add(b, "\"", 1);
    return i >= n;
}

/* dp_usage_content writes r's content: the request body as the client
 * sent it, and the response body as the client got it (a stream's bytes
 * as they went out). */
static void
dp_usage_content(const dp_host *h, dp_req *r)
{
    size_t cap = (size_t)h->cfg->dataplane.capture_max_bytes;
    bool   whole;

    tg_buf_reset(&r->content);
    tg_buf_add(&r->content, "{\"request\":", 11);
    if (r->guard_withheld) {
        /* A guardrail blocked it: what it found is never recorded. */
        static const char w[] = "[withheld: blocked by a guardrail]";
        whole = dp_usage_json_str(&r->content, w, sizeof(w) - 1, cap);
    } else {
        whole = dp_usage_json_str(&r->content, r->body.data, r->body.len, cap);
    }
    tg_buf_add(&r->content, ",\"response\":", 12);
    if (r->ans_kind == DP_ANS_COMPLETE) {
        whole = dp_usage_json_str(&r->content, r->ans_body.data,
                                  r->ans_body.len, cap) &&
                whole;
    } else {
        if (r->ans_kind == DP_ANS_STREAM_END) {
            dp_usage_capture(h, r, r->ans_body.data, r->ans_body.len);
        }
        whole = dp_usage_json_str(&r->content, r->cap_stream.data,
                                  r->cap_stream.len, cap) &&
                r->cap_stream.len < cap && whole;
    }
    tg_buf_addf(&r->content, ",\"truncated\":%s}", whole ? "false" : "true");
    if (tg_buf_error(&r->content) != TG_OK) {
        tg_buf_reset(&r->content); /* out of memory: recorded without */
    }
}

bool
dp_usage_final(const dp_host *h, dp_req *r, unsigned status, tg_usage *u)
{
    const dp_upstream *up = r->dep;
    bool held     = r->have_decision && r->dec.reservation_id[0] != '\0';
    bool orphaned = r->decide_sent && !r->have_decision;

    if (r->usage_reported || !r->has_key) {
        return false;
    }
    dp_usage_start(r, u);
    /* The model that served it (a fallback's, when one did). */
    snprintf(u->model, sizeof(u->model), "%s",
             up != NULL ? up->dep->model : r->chat.model);
    /* Without a deployment the report only settles what the decision
     * reserved (zero tokens), so the PDP frees it now, not at expiry. */
    snprintf(u->deployment_id, sizeof(u->deployment_id), "%s",
             up != NULL ? up->dep->id : "");
    snprintf(u->reservation_id, sizeof(u->reservation_id), "%s",
             orphaned ? r->request_id : r->dec.reservation_id);
    /* Nothing went upstream, held or was recorded (a deny, a request the
     * data plane refused): its record only, no usage. */
    u->abandoned = up == NULL && (orphaned || (!held && !r->intent_written));
    if (r->usage.found) {
        u->prompt_tokens     = r->usage.prompt_tokens;
        u->completion_tokens = r->usage.completion_tokens;
        u->cached_tokens     = r->usage.cached_tokens;
    } else if (r->up_streaming ||
               (status >= 200 && status < 300 && up != NULL) ||
               (r->cancelled && r->up_got_bytes)) {
        /* The provider never said: count what we saw, and say so (a
         * provider's error answer is not charged). */
        u->prompt_tokens     = r->chat.prompt_tokens_estimate;
        u->completion_tokens = r->content_events;
        u->estimated         = true;
    }
    u->status      = status;
    u->duration_ms = (tg_mono_us() - r->started_us) / 1000;
    dp_usage_outcome(r, &u->outcome);
    if (dp_usage_captures(r)) {
        dp_usage_content(h, r);
    }
    r->usage_reported = true;
    atomic_fetch_add(&h->m->prompt_tokens, (uint64_t)u->prompt_tokens);
    atomic_fetch_add(&h->m->completion_tokens, (uint64_t)u->completion_tokens);
    return true;
}

void
dp_usage_report(const dp_host *h, dp_req *r, unsigned status)
{
    tg_usage u;

    if (dp_usage_final(h, r, status, &u) &&
        dp_spool_record_content(h->spools[r->pdp_idx], DP_SPOOL_FINAL, &u, r->content.data,
                                r->content.len, NULL, NULL) != TG_OK) {
        tg_error("request %s: could not queue its usage report (out of "
                 "memory)",
                 r->request_id);
    }
}

void
dp_usage_intent(const dp_host *h, const dp_req *r, tg_usage *u)
{
    const dp_upstream *up = &h->upstreams[r->at.order[0]];

    for (uint32_t i = 1; i < r->at.n; i++) {
        const dp_upstream *o = &h->upstreams[r->at.order[i]];
        if (dp_host_cost(h, o) > dp_host_cost(h, up)) {
            up = o;
        }
    }
    dp_usage_start(r, u);
    snprintf(u->model, sizeof(u->model), "%s", up->dep->model);
    snprintf(u->deployment_id, sizeof(u->deployment_id), "%s", up->dep->id);
    snprintf(u->reservation_id, sizeof(u->reservation_id), "%s",
             r->have_decision ? r->dec.reservation_id : r->request_id);
    u->prompt_tokens = r->chat.prompt_tokens_estimate;
    /* What the PDP reserves without a max_tokens. */
    u->completion_tokens = r->dec.clamp_max_tokens > 0 ? r->dec.clamp_max_tokens
                           : r->chat.max_tokens > 0    ? r->chat.max_tokens
                           : r->endpoint == TG_EP_EMBEDDINGS ? 0
                                                             : DP_OUTPUT_WORST;
    u->estimated         = true;
    /* A final made of it after a crash still says what was decided. */
    dp_usage_outcome(r, &u->outcome);
}
