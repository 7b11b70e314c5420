/* pdp_wire.c - protobuf-c in, fixed-size structs out. Every string is
 * length-checked against its tg_msg.h field and every enum against the
 * values we know: the data plane treats a WireError as a deny, so being
 * strict here can only ever turn a request into a deny, never an allow. */
#include "pdp_wire_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_wire.h"
#include "tollgate/v1/pdp.pb-c.h"

typedef struct pdp_wire_sink {
    ProtobufCBuffer base; /* first: protobuf-c calls us with &base */
    tg_buf         *out;
    tg_err          rv;
} pdp_wire_sink;

static void
pdp_wire_sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    pdp_wire_sink *s = (pdp_wire_sink *)b;

    if (s->rv == TG_OK) {
        s->rv = tg_buf_append(s->out, data, len);
    }
}

/* pdp_wire_pack packs msg into out, replacing its content. */
tg_err
pdp_wire__pack(const ProtobufCMessage *msg, tg_buf *out)
{
    pdp_wire_sink sink = {{pdp_wire_sink_append}, out, TG_OK};
    size_t        need = protobuf_c_message_get_packed_size(msg);

    tg_buf_reset(out);
    if (out->max != 0 && need > out->max) {
        return TG_ETOOBIG;
    }
    protobuf_c_message_pack_to_buffer(msg, &sink.base);
    if (sink.rv != TG_OK) {
        tg_buf_reset(out);
    }
    return sink.rv;
}

static tg_err pdp_wire_fail(tg_err rv, char *err, size_t errlen,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static tg_err
pdp_wire_fail(tg_err rv, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rv;
}

/* pdp_wire_str copies a wire string into a fixed field; too long is an
 * error rather than a silent truncation, which could change a model name
 * or an id into a different, valid one. */
tg_err
pdp_wire__str(char *dst, size_t cap, const char *src, const char *field,
             char *err, size_t errlen)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= cap) {
        return pdp_wire_fail(TG_EPROTO, err, errlen,
                             "%s is longer than %zu bytes", field, cap - 1);
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
    return TG_OK;
}

#define PDP_WIRE_STR(dst, src, field)                                          \
    do {                                                                       \
        if ((rv = pdp_wire__str((dst), sizeof(dst), (src), (field), err,        \
                               errlen)) != TG_OK) {                            \
            goto out;                                                          \
        }                                                                      \
    } while (0)

static tg_err
pdp_wire_endpoint(int v, tg_endpoint *out, char *err, size_t errlen)
{
    if (v < TG_EP_UNSPECIFIED || v > TG_EP_MODELS) {
        return pdp_wire_fail(TG_EPROTO, err, errlen, "unknown endpoint %d", v);
    }
    *out = (tg_endpoint)v;
    return TG_OK;
}

static tg_err
pdp_wire_tokens(int64_t v, const char *field, char *err, size_t errlen)
{
    if (v < 0) {
        return pdp_wire_fail(TG_EPROTO, err, errlen, "%s is negative", field);
    }
    return TG_OK;
}

static tg_err
pdp_wire_decide_in(const Tollgate__V1__Decide *in, tg_decide *d, char *err,
                   size_t errlen)
{
    tg_err rv = TG_OK;

    if (in->key_hash.len != TG_SHA256_LEN) {
        return pdp_wire_fail(TG_EPROTO, err, errlen,
                             "decide.key_hash must be %d bytes, got %zu",
                             TG_SHA256_LEN, in->key_hash.len);
    }
    memcpy(d->key_hash, in->key_hash.data, TG_SHA256_LEN);
    if ((rv = pdp_wire_endpoint((int)in->endpoint, &d->endpoint, err,
                                errlen)) != TG_OK) {
        goto out;
    }
    PDP_WIRE_STR(d->model, in->model, "decide.model");
    PDP_WIRE_STR(d->client_ip, in->client_ip, "decide.client_ip");
    PDP_WIRE_STR(d->user, in->user, "decide.user");
    if (in->n_metadata > TG_MSG_META_MAX) {
        rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                           "decide.metadata has more than %d entries",
                           TG_MSG_META_MAX);
        goto out;
    }
    for (size_t i = 0; i < in->n_metadata; i++) {
        PDP_WIRE_STR(d->meta[i].key, in->metadata[i]->key,
                     "decide.metadata key");
        PDP_WIRE_STR(d->meta[i].value, in->metadata[i]->value,
                     "decide.metadata value");
    }
    d->n_meta = (uint32_t)in->n_metadata;
    if (in->n_fallback_models > TG_MSG_FALLBACK_MODELS_MAX) {
        rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                           "decide.fallback_models has more than %d entries",
                           TG_MSG_FALLBACK_MODELS_MAX);
        goto out;
    }
    for (size_t i = 0; i < in->n_fallback_models; i++) {
        PDP_WIRE_STR(d->fallback_models[i], in->fallback_models[i],
                     "decide.fallback_models");
        if (d->fallback_models[i][0] == '\0') {
            rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                               "decide.fallback_models has an empty name");
            goto out;
        }
    }
    d->n_fallback_models      = (uint32_t)in->n_fallback_models;
    d->stream                 = in->stream != 0;
    d->max_tokens             = in->max_tokens;
    d->prompt_tokens_estimate = in->prompt_tokens_estimate;
    d->prompt_bytes           = in->prompt_bytes;
    d->now_ms                 = in->now_ms;
    if ((rv = pdp_wire_tokens(in->max_tokens, "decide.max_tokens", err,
                              errlen)) != TG_OK ||
        (rv = pdp_wire_tokens(in->prompt_tokens_estimate,
                              "decide.prompt_tokens_estimate", err, errlen)) !=
            TG_OK) {
        goto out;
    }
out:
    return rv;
}

static tg_err
pdp_wire_usage_in(const Tollgate__V1__Usage *in, tg_usage *u, char *err,
                  size_t errlen)
{
    if (in == NULL) {
        return pdp_wire_fail(TG_EPROTO, err, errlen, "usage report is empty");
    }
    return tg_wire_usage_read(in, u, err, errlen);
}

tg_err
pdp_wire_decode_request(const void *buf, size_t len, size_t max, pdp_req *out,
                        char *err, size_t errlen)
{
    return pdp_wire_decode_request_content(buf, len, max, out, NULL, err,
                                           errlen);
}

tg_err
pdp_wire_decode_request_content(const void *buf, size_t len, size_t max,
                                pdp_req *out, tg_buf *content, char *err,
                                size_t errlen)
{
    Tollgate__V1__PdpRequest *in = NULL;
    tg_err                    rv = TG_OK;

    if (max != 0 && len > max) {
        return pdp_wire_fail(TG_ETOOBIG, err, errlen,
                             "request of %zu bytes is over the %zu-byte limit",
                             len, max);
    }
    in = tollgate__v1__pdp_request__unpack(NULL, len, buf);
    if (in == NULL) {
        return pdp_wire_fail(TG_EPROTO, err, errlen,
                             "request is not a valid PdpRequest");
    }
    if (in->wire_version > PDP_WIRE_VERSION) {
        rv = pdp_wire_fail(TG_EVERSION, err, errlen,
                           "wire version %u is newer than this PDP's %d; "
                           "upgrade tollgate-pdp",
                           in->wire_version, PDP_WIRE_VERSION);
        goto out;
    }
    /* Only what this request uses: the union's batch is 32 reports,
     * hundreds of KB, cleared item by item when one comes. */
    memset(out, 0, offsetof(pdp_req, u));
    if (content != NULL) {
        tg_buf_reset(content);
    }
    PDP_WIRE_STR(out->request_id, in->request_id, "request_id");
    switch (in->body_case) {
    case TOLLGATE__V1__PDP_REQUEST__BODY_DECIDE:
        out->kind = PDP_REQ_DECIDE;
        memset(&out->u.decide, 0, sizeof(out->u.decide));
        rv = pdp_wire_decide_in(in->decide, &out->u.decide, err, errlen);
        memcpy(out->u.decide.request_id, out->request_id,
               sizeof(out->request_id));
        break;
    case TOLLGATE__V1__PDP_REQUEST__BODY_USAGE:
        out->kind = PDP_REQ_USAGE;
        memset(&out->u.usage, 0, sizeof(out->u.usage));
        rv        = pdp_wire_usage_in(in->usage, &out->u.usage, err, errlen);
        memcpy(out->u.usage.request_id, out->request_id,
               sizeof(out->request_id));
        if (rv == TG_OK && out->request_id[0] == '\0') {
            /* Without an id a retried report would be counted twice. */
            rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                               "usage report without a request_id");
        }
        break;
    case TOLLGATE__V1__PDP_REQUEST__BODY_USAGE_BATCH:
        out->kind = PDP_REQ_USAGE_BATCH;
        if (in->usage_batch->n_items == 0 ||
            in->usage_batch->n_items > TG_USAGE_BATCH_MAX) {
            rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                               "usage batch of %zu reports (1 to %d)",
                               in->usage_batch->n_items, TG_USAGE_BATCH_MAX);
            break;
        }
        for (size_t i = 0; rv == TG_OK && i < in->usage_batch->n_items; i++) {
            const Tollgate__V1__UsageItem *it = in->usage_batch->items[i];
            tg_usage                      *u  = &out->u.batch.items[i];
            memset(u, 0, sizeof(*u));
            out->u.batch.content_off[i] = 0;
            out->u.batch.content_len[i] = 0;
            if (it->usage == NULL || it->request_id == NULL ||
                it->request_id[0] == '\0' ||
                strlen(it->request_id) >= sizeof(u->request_id)) {
                rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                                   "usage batch item %zu has no usage or no "
                                   "valid request_id",
                                   i);
                break;
            }
            rv = pdp_wire_usage_in(it->usage, u, err, errlen);
            memcpy(u->request_id, it->request_id, strlen(it->request_id) + 1);
            if (content != NULL && it->content.len > 0) {
                out->u.batch.content_off[i] = content->len;
                out->u.batch.content_len[i] = it->content.len;
                if (tg_buf_append(content, it->content.data,
                                  it->content.len) != TG_OK) {
                    rv = pdp_wire_fail(TG_ENOMEM, err, errlen,
                                       "out of memory for the content of "
                                       "usage batch item %zu",
                                       i);
                }
            }
        }
        out->u.batch.n = (uint32_t)in->usage_batch->n_items;
        break;
    case TOLLGATE__V1__PDP_REQUEST__BODY_HELLO:
        out->kind = PDP_REQ_HELLO;
        memset(&out->u.hello, 0, sizeof(out->u.hello));
        PDP_WIRE_STR(out->u.hello.component, in->hello->component,
                     "hello.component");
        PDP_WIRE_STR(out->u.hello.version, in->hello->version, "hello.version");
        break;
    case TOLLGATE__V1__PDP_REQUEST__BODY_PING:
        out->kind           = PDP_REQ_PING;
        out->u.ping_sent_ms = in->ping->sent_ms;
        break;
    case TOLLGATE__V1__PDP_REQUEST__BODY_GUARD_FETCH:
        out->kind = PDP_REQ_GUARD_FETCH;
        PDP_WIRE_STR(out->u.guard_set, in->guard_fetch->guard_set,
                     "guard_fetch.guard_set");
        break;
    default:
        if ((rv = pdp_wire__up_request_in(in, out, err, errlen)) ==
                TG_ENOTFOUND &&
            (rv = pdp_wire__resp_request_in(in, out, err, errlen)) ==
                TG_ENOTFOUND) {
            rv = pdp_wire_fail(TG_EPROTO, err, errlen,
                               "request has no body (decide, usage, hello or "
                               "ping)");
        }
        break;
    }
out:
    tollgate__v1__pdp_request__free_unpacked(in, NULL);
    return rv;
}

/* pdp_wire_decision_out builds the protobuf-c Decision in caller storage;
 * every pointer borrows from d or from the arrays in *s. */
typedef struct pdp_wire_decision_out {
    Tollgate__V1__Decision        msg;
    Tollgate__V1__Mutations       mut;
    Tollgate__V1__RouteTarget     tgt[TG_MSG_TARGETS_MAX];
    Tollgate__V1__RouteTarget    *tgtp[TG_MSG_TARGETS_MAX];
    Tollgate__V1__RedactSpan      red[TG_MSG_REDACT_MAX];
    Tollgate__V1__RedactSpan     *redp[TG_MSG_REDACT_MAX];
    Tollgate__V1__RuleMatch       rm[TG_MSG_RULES_MAX];
    Tollgate__V1__RuleMatch      *rmp[TG_MSG_RULES_MAX];
    Tollgate__V1__RateLimitState  lim[TG_MSG_LIMITS_MAX];
    Tollgate__V1__RateLimitState *limp[TG_MSG_LIMITS_MAX];
    char                         *models[TG_MSG_MODELS_MAX];
    Tollgate__V1__GuardObligation gd[TG_MSG_GUARDS_MAX];
    Tollgate__V1__GuardObligation *gdp[TG_MSG_GUARDS_MAX];
} pdp_wire_decision_out;

static tg_err
pdp_wire_decision_build(const tg_decision *d, pdp_wire_decision_out *s)
{
    Tollgate__V1__Decision *m = &s->msg;

    if (d->n_targets > TG_MSG_TARGETS_MAX ||
        d->n_redactions > TG_MSG_REDACT_MAX ||
        d->n_matched > TG_MSG_RULES_MAX || d->n_limits > TG_MSG_LIMITS_MAX ||
        d->n_models > TG_MSG_MODELS_MAX || d->n_guards > TG_MSG_GUARDS_MAX) {
        return TG_EINVAL;
    }
    tollgate__v1__decision__init(m);
    for (uint32_t i = 0; i < d->n_guards; i++) {
        tollgate__v1__guard_obligation__init(&s->gd[i]);
        s->gd[i].rule_id       = (char *)d->guards[i].rule_id;
        s->gd[i].index         = d->guards[i].index;
        s->gd[i].enforced      = d->guards[i].enforced;
        s->gd[i].on_error_skip = d->guards[i].on_error_skip;
        s->gdp[i]              = &s->gd[i];
    }
    m->n_guards  = d->n_guards;
    m->guards    = s->gdp;
    m->guard_set    = (char *)d->guard_set;
    m->reuse_ms     = d->reuse_ms;
    m->reuse_inputs = d->reuse_inputs;
    tollgate__v1__mutations__init(&s->mut);
    m->verdict         = (Tollgate__V1__Verdict)d->verdict;
    m->status          = d->status;
    m->error_code      = (char *)d->error_code;
    m->error_type      = (char *)d->error_type;
    m->message         = (char *)d->message;
    m->strategy        = (Tollgate__V1__RouteStrategy)d->strategy;
    m->reservation_id  = (char *)d->reservation_id;
    m->policy_revision = d->policy_revision;
    m->bundle_hash     = (char *)d->bundle_hash;
    m->key_id          = (char *)d->key_id;
    m->tenant_id       = (char *)d->tenant_id;
    m->capture_level      = d->capture_level;
    m->audit_hits_header  = d->audit_hits_header;
    m->log_shed           = d->log_shed;
    m->reserved_micro_usd = d->reserved_micro_usd;
    for (uint32_t i = 0; i < d->n_targets; i++) {
        tollgate__v1__route_target__init(&s->tgt[i]);
        s->tgt[i].deployment_id = (char *)d->targets[i].deployment_id;
        s->tgt[i].weight        = d->targets[i].weight;
        s->tgtp[i]              = &s->tgt[i];
    }
    m->n_targets = d->n_targets;
    m->targets   = s->tgtp;
    for (uint32_t i = 0; i < d->n_redactions; i++) {
        tollgate__v1__redact_span__init(&s->red[i]);
        s->red[i].message_index = d->redactions[i].message_index;
        s->red[i].start         = d->redactions[i].start;
        s->red[i].end           = d->redactions[i].end;
        s->red[i].replacement   = (char *)d->redactions[i].replacement;
        s->redp[i]              = &s->red[i];
    }
    if (d->clamp_max_tokens != 0 || d->n_redactions != 0) {
        s->mut.clamp_max_tokens = d->clamp_max_tokens;
        s->mut.n_redactions     = d->n_redactions;
        s->mut.redactions       = s->redp;
        m->mutations            = &s->mut;
    }
    for (uint32_t i = 0; i < d->n_matched; i++) {
        tollgate__v1__rule_match__init(&s->rm[i]);
        s->rm[i].rule_id  = (char *)d->matched[i].rule_id;
        s->rm[i].enforced = d->matched[i].enforced;
        s->rm[i].effect   = (char *)d->matched[i].effect;
        s->rmp[i]         = &s->rm[i];
    }
    m->n_matched = d->n_matched;
    m->matched   = s->rmp;
    for (uint32_t i = 0; i < d->n_limits; i++) {
        tollgate__v1__rate_limit_state__init(&s->lim[i]);
        s->lim[i].name      = (char *)d->limits[i].name;
        s->lim[i].limit     = d->limits[i].limit;
        s->lim[i].remaining = d->limits[i].remaining;
        s->lim[i].reset_ms  = d->limits[i].reset_ms;
        s->limp[i]          = &s->lim[i];
    }
    m->n_limits = d->n_limits;
    m->limits   = s->limp;
    for (uint32_t i = 0; i < d->n_models; i++) {
        s->models[i] = (char *)d->models[i];
    }
    m->n_models = d->n_models;
    m->models   = s->models;
    return TG_OK;
}

tg_err
pdp_wire_encode_reply(const pdp_rep *rep, tg_buf *out)
{
    Tollgate__V1__PdpResponse   m    = TOLLGATE__V1__PDP_RESPONSE__INIT;
    Tollgate__V1__UsageAck      ack  = TOLLGATE__V1__USAGE_ACK__INIT;
    Tollgate__V1__HelloAck      ha   = TOLLGATE__V1__HELLO_ACK__INIT;
    Tollgate__V1__Pong          pong = TOLLGATE__V1__PONG__INIT;
    Tollgate__V1__WireError     we   = TOLLGATE__V1__WIRE_ERROR__INIT;
    Tollgate__V1__UsageBatchAck ba   = TOLLGATE__V1__USAGE_BATCH_ACK__INIT;
    Tollgate__V1__GuardSetReply gs   = TOLLGATE__V1__GUARD_SET_REPLY__INIT;
    Tollgate__V1__UsageItemAck  ia[TG_USAGE_BATCH_MAX];
    Tollgate__V1__UsageItemAck *iap[TG_USAGE_BATCH_MAX];
    Tollgate__V1__UsageAck      iack[TG_USAGE_BATCH_MAX];
    pdp_wire_decision_out       dec;
    tg_err                      rv;

    m.wire_version = PDP_WIRE_VERSION;
    m.request_id   = (char *)rep->request_id;
    switch (rep->kind) {
    case PDP_REP_DECISION:
        if ((rv = pdp_wire_decision_build(&rep->u.decision, &dec)) != TG_OK) {
            return rv;
        }
        m.body_case = TOLLGATE__V1__PDP_RESPONSE__BODY_DECISION;
        m.decision  = &dec.msg;
        break;
    case PDP_REP_USAGE_ACK:
        m.request_id       = (char *)rep->u.ack.request_id;
        ack.duplicate      = rep->u.ack.duplicate;
        ack.cost_micro_usd = rep->u.ack.cost_micro_usd;
        m.body_case        = TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_ACK;
        m.usage_ack        = &ack;
        break;
    case PDP_REP_HELLO_ACK:
        ha.version         = (char *)rep->u.hello_ack.version;
        ha.policy_revision = rep->u.hello_ack.policy_revision;
        m.body_case        = TOLLGATE__V1__PDP_RESPONSE__BODY_HELLO_ACK;
        m.hello_ack        = &ha;
        break;
    case PDP_REP_PONG:
        pong.sent_ms = rep->u.pong_sent_ms;
        m.body_case  = TOLLGATE__V1__PDP_RESPONSE__BODY_PONG;
        m.pong       = &pong;
        break;
    case PDP_REP_ERROR:
        we.message  = (char *)rep->u.error;
        m.body_case = TOLLGATE__V1__PDP_RESPONSE__BODY_ERROR;
        m.error     = &we;
        break;
    case PDP_REP_USAGE_BATCH_ACK:
        if (rep->u.batch.n > TG_USAGE_BATCH_MAX) {
            return TG_EINVAL;
        }
        for (uint32_t i = 0; i < rep->u.batch.n; i++) {
            const tg_usage_item_ack *a = &rep->u.batch.acks[i];
            tollgate__v1__usage_item_ack__init(&ia[i]);
            tollgate__v1__usage_ack__init(&iack[i]);
            ia[i].request_id       = (char *)a->ack.request_id;
            ia[i].ok               = a->ok;
            iack[i].duplicate      = a->ok && a->ack.duplicate;
            iack[i].cost_micro_usd = a->ok ? a->ack.cost_micro_usd : 0;
            ia[i].ack              = a->ok ? &iack[i] : NULL;
            iap[i]                 = &ia[i];
        }
        ba.n_acks         = rep->u.batch.n;
        ba.acks           = iap;
        m.body_case       = TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_BATCH_ACK;
        m.usage_batch_ack = &ba;
        break;
    case PDP_REP_GUARD_SET:
        gs.guard_set = (char *)rep->u.guard.hash;
        gs.found     = rep->u.guard.found;
        gs.spec.data = (uint8_t *)rep->u.guard.spec;
        gs.spec.len  = rep->u.guard.spec_len;
        m.body_case  = TOLLGATE__V1__PDP_RESPONSE__BODY_GUARD_SET;
        m.guard_set  = &gs;
        break;
    case PDP_REP_RESP:
        return pdp_wire__resp_encode_reply(rep, out);
    default:
        return pdp_wire__up_encode_reply(rep, out);
    }
    return pdp_wire__pack(&m.base, out);
}

tg_err
pdp_wire_encode_request(const pdp_req *req, tg_buf *out)
{
    Tollgate__V1__PdpRequest m     = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__Decide     dec   = TOLLGATE__V1__DECIDE__INIT;
    tg_wire_usage_room      *room  = NULL;
    Tollgate__V1__Hello      hello = TOLLGATE__V1__HELLO__INIT;
    Tollgate__V1__Ping       ping  = TOLLGATE__V1__PING__INIT;
    Tollgate__V1__GuardFetch gf    = TOLLGATE__V1__GUARD_FETCH__INIT;
    Tollgate__V1__KeyValue   kv[TG_MSG_META_MAX];
    Tollgate__V1__KeyValue  *kvp[TG_MSG_META_MAX];
    char                    *fm[TG_MSG_FALLBACK_MODELS_MAX];
    const tg_decide         *d = &req->u.decide;
    const tg_usage          *u = &req->u.usage;
    tg_err                   rv;

    m.wire_version = PDP_WIRE_VERSION;
    m.request_id   = (char *)req->request_id;
    switch (req->kind) {
    case PDP_REQ_DECIDE:
        if (tg_wire_decide_fill(&dec, d, kv, kvp, fm) != TG_OK) {
            return TG_EINVAL;
        }
        m.body_case = TOLLGATE__V1__PDP_REQUEST__BODY_DECIDE;
        m.decide    = &dec;
        break;
    case PDP_REQ_USAGE:
        if ((room = malloc(sizeof(*room))) == NULL) {
            return TG_ENOMEM;
        }
        m.body_case = TOLLGATE__V1__PDP_REQUEST__BODY_USAGE;
        m.usage     = tg_wire_usage_fill(room, u);
        break;
    case PDP_REQ_HELLO:
        hello.component = (char *)req->u.hello.component;
        hello.version   = (char *)req->u.hello.version;
        m.body_case     = TOLLGATE__V1__PDP_REQUEST__BODY_HELLO;
        m.hello         = &hello;
        break;
    case PDP_REQ_PING:
        ping.sent_ms = req->u.ping_sent_ms;
        m.body_case  = TOLLGATE__V1__PDP_REQUEST__BODY_PING;
        m.ping       = &ping;
        break;
    case PDP_REQ_GUARD_FETCH:
        gf.guard_set  = (char *)req->u.guard_set;
        m.body_case   = TOLLGATE__V1__PDP_REQUEST__BODY_GUARD_FETCH;
        m.guard_fetch = &gf;
        break;
    case PDP_REQ_RESP_PUT:
    case PDP_REQ_RESP_GET:
    case PDP_REQ_RESP_DEL:
        return pdp_wire__resp_encode_request(req, out);
    default:
        return pdp_wire__up_encode_request(req, out);
    }
    rv = pdp_wire__pack(&m.base, out);
    free(room);
    return rv;
}

static tg_err
pdp_wire_decision_in(const Tollgate__V1__Decision *in, tg_decision *d,
                     char *err, size_t errlen)
{
    tg_err rv = TG_OK;

    if ((int)in->verdict > (int)TG_VERDICT_DENY ||
        (int)in->strategy > (int)TG_ROUTE_LOWEST_COST) {
        return pdp_wire_fail(TG_EPROTO, err, errlen,
                             "decision has an unknown verdict or strategy");
    }
    if (in->n_targets > TG_MSG_TARGETS_MAX ||
        in->n_matched > TG_MSG_RULES_MAX || in->n_models > TG_MSG_MODELS_MAX ||
        in->n_limits > TG_MSG_LIMITS_MAX || in->n_guards > TG_MSG_GUARDS_MAX ||
        (in->mutations != NULL &&
         in->mutations->n_redactions > TG_MSG_REDACT_MAX)) {
        return pdp_wire_fail(TG_EPROTO, err, errlen,
                             "decision has too many list entries");
    }
    PDP_WIRE_STR(d->guard_set, in->guard_set, "decision.guard_set");
    d->reuse_ms     = (in->reuse_inputs & ~TG_REUSE_ALL) ? 0 : in->reuse_ms;
    d->reuse_inputs = in->reuse_inputs & TG_REUSE_ALL;
    for (size_t i = 0; i < in->n_guards; i++) {
        PDP_WIRE_STR(d->guards[i].rule_id, in->guards[i]->rule_id,
                     "decision.guards");
        d->guards[i].index         = in->guards[i]->index;
        d->guards[i].enforced      = in->guards[i]->enforced != 0;
        d->guards[i].on_error_skip = in->guards[i]->on_error_skip != 0;
    }
    d->n_guards = (uint32_t)in->n_guards;
    d->verdict         = (tg_verdict)in->verdict;
    d->status          = in->status;
    d->strategy        = (tg_route_strategy)in->strategy;
    d->policy_revision = in->policy_revision;
    d->capture_level      = in->capture_level;
    d->audit_hits_header  = in->audit_hits_header != 0;
    d->log_shed           = in->log_shed != 0;
    d->reserved_micro_usd = in->reserved_micro_usd;
    PDP_WIRE_STR(d->error_code, in->error_code, "decision.error_code");
    PDP_WIRE_STR(d->error_type, in->error_type, "decision.error_type");
    PDP_WIRE_STR(d->message, in->message, "decision.message");
    PDP_WIRE_STR(d->reservation_id, in->reservation_id,
                 "decision.reservation_id");
    PDP_WIRE_STR(d->bundle_hash, in->bundle_hash, "decision.bundle_hash");
    PDP_WIRE_STR(d->key_id, in->key_id, "decision.key_id");
    PDP_WIRE_STR(d->tenant_id, in->tenant_id, "decision.tenant_id");
    for (size_t i = 0; i < in->n_targets; i++) {
        PDP_WIRE_STR(d->targets[i].deployment_id, in->targets[i]->deployment_id,
                     "decision.targets");
        d->targets[i].weight = in->targets[i]->weight;
    }
    d->n_targets = (uint32_t)in->n_targets;
    if (in->mutations != NULL) {
        const Tollgate__V1__Mutations *mu = in->mutations;
        d->clamp_max_tokens               = mu->clamp_max_tokens;
        for (size_t i = 0; i < mu->n_redactions; i++) {
            d->redactions[i].message_index = mu->redactions[i]->message_index;
            d->redactions[i].start         = mu->redactions[i]->start;
            d->redactions[i].end           = mu->redactions[i]->end;
            PDP_WIRE_STR(d->redactions[i].replacement,
                         mu->redactions[i]->replacement, "decision.redactions");
        }
        d->n_redactions = (uint32_t)mu->n_redactions;
    }
    for (size_t i = 0; i < in->n_matched; i++) {
        PDP_WIRE_STR(d->matched[i].rule_id, in->matched[i]->rule_id,
                     "decision.matched");
        PDP_WIRE_STR(d->matched[i].effect, in->matched[i]->effect,
                     "decision.matched.effect");
        d->matched[i].enforced = in->matched[i]->enforced != 0;
    }
    d->n_matched = (uint32_t)in->n_matched;
    for (size_t i = 0; i < in->n_limits; i++) {
        PDP_WIRE_STR(d->limits[i].name, in->limits[i]->name, "decision.limits");
        d->limits[i].limit     = in->limits[i]->limit;
        d->limits[i].remaining = in->limits[i]->remaining;
        d->limits[i].reset_ms  = in->limits[i]->reset_ms;
    }
    d->n_limits = (uint32_t)in->n_limits;
    for (size_t i = 0; i < in->n_models; i++) {
        PDP_WIRE_STR(d->models[i], in->models[i], "decision.models");
    }
    d->n_models = (uint32_t)in->n_models;
out:
    return rv;
}

tg_err
pdp_wire_decode_reply(const void *buf, size_t len, size_t max, pdp_rep *out,
                      char *err, size_t errlen)
{
    Tollgate__V1__PdpResponse *in = NULL;
    tg_err                     rv = TG_OK;

    if (max != 0 && len > max) {
        return pdp_wire_fail(TG_ETOOBIG, err, errlen,
                             "reply of %zu bytes is over the %zu-byte limit",
                             len, max);
    }
    if ((in = tollgate__v1__pdp_response__unpack(NULL, len, buf)) == NULL) {
        return pdp_wire_fail(TG_EPROTO, err, errlen,
                             "reply is not a valid PdpResponse");
    }
    memset(out, 0, sizeof(*out));
    PDP_WIRE_STR(out->request_id, in->request_id, "request_id");
    switch (in->body_case) {
    case TOLLGATE__V1__PDP_RESPONSE__BODY_DECISION:
        out->kind = PDP_REP_DECISION;
        rv = pdp_wire_decision_in(in->decision, &out->u.decision, err, errlen);
        break;
    case TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_ACK:
        out->kind                 = PDP_REP_USAGE_ACK;
        out->u.ack.duplicate      = in->usage_ack->duplicate != 0;
        out->u.ack.cost_micro_usd = in->usage_ack->cost_micro_usd;
        memcpy(out->u.ack.request_id, out->request_id, sizeof(out->request_id));
        break;
    case TOLLGATE__V1__PDP_RESPONSE__BODY_HELLO_ACK:
        out->kind                        = PDP_REP_HELLO_ACK;
        out->u.hello_ack.policy_revision = in->hello_ack->policy_revision;
        PDP_WIRE_STR(out->u.hello_ack.version, in->hello_ack->version,
                     "hello_ack.version");
        break;
    case TOLLGATE__V1__PDP_RESPONSE__BODY_PONG:
        out->kind           = PDP_REP_PONG;
        out->u.pong_sent_ms = in->pong->sent_ms;
        break;
    case TOLLGATE__V1__PDP_RESPONSE__BODY_ERROR:
        out->kind = PDP_REP_ERROR;
        PDP_WIRE_STR(out->u.error, in->error->message, "error.message");
        break;
    case TOLLGATE__V1__PDP_RESPONSE__BODY_GUARD_SET:
        out->kind          = PDP_REP_GUARD_SET;
        out->u.guard.found = in->guard_set->found != 0;
        PDP_WIRE_STR(out->u.guard.hash, in->guard_set->guard_set,
                     "guard_set.guard_set");
        if ((out->u.guard.spec = malloc(in->guard_set->spec.len + 1)) ==
            NULL) {
            rv = TG_ENOMEM;
            break;
        }
        if (in->guard_set->spec.len > 0) {
            memcpy(out->u.guard.spec, in->guard_set->spec.data,
                   in->guard_set->spec.len);
        }
        out->u.guard.spec[in->guard_set->spec.len] = '\0';
        out->u.guard.spec_len                      = in->guard_set->spec.len;
        break;
    default:
        if ((rv = pdp_wire__up_reply_in(in, out, err, errlen)) ==
                TG_ENOTFOUND &&
            (rv = pdp_wire__resp_reply_in(in, out, err, errlen)) ==
                TG_ENOTFOUND) {
            rv = pdp_wire_fail(TG_EPROTO, err, errlen, "reply has no body");
        }
        break;
    }
out:
    tollgate__v1__pdp_response__free_unpacked(in, NULL);
    return rv;
}
