#include "dp_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_wire.h"
#include "tollgate/v1/pdp.pb-c.h"

typedef Tollgate__V1__PdpRequest  pb_req;
typedef Tollgate__V1__PdpResponse pb_resp;

static tg_err
dp_wire_pack(pb_req *req, uint8_t *buf, size_t cap, size_t *len)
{
    size_t need = tollgate__v1__pdp_request__get_packed_size(req);

    if (need > cap) {
        return TG_ETOOBIG;
    }
    *len = tollgate__v1__pdp_request__pack(req, buf);
    return TG_OK;
}

tg_err
dp_wire_encode_decide(const tg_decide *d, uint8_t *buf, size_t cap, size_t *len)
{
    pb_req                  req = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__Decide    dec;
    Tollgate__V1__KeyValue  kv[TG_MSG_META_MAX];
    Tollgate__V1__KeyValue *kvp[TG_MSG_META_MAX];
    char                   *fm[TG_MSG_FALLBACK_MODELS_MAX];
    tg_err                  rv;

    if ((rv = tg_wire_decide_fill(&dec, d, kv, kvp, fm)) != TG_OK) {
        return rv;
    }
    req.wire_version = TOLLGATE__V1__WIRE_VERSION__WIRE_VERSION_1;
    req.request_id   = (char *)d->request_id;
    req.body_case    = TOLLGATE__V1__PDP_REQUEST__BODY_DECIDE;
    req.decide       = &dec;
    return dp_wire_pack(&req, buf, cap, len);
}

tg_err
dp_wire_encode_usage(const tg_usage *u, uint8_t *buf, size_t cap, size_t *len)
{
    pb_req              req  = TOLLGATE__V1__PDP_REQUEST__INIT;
    tg_wire_usage_room *room = malloc(sizeof(*room));
    tg_err              rv;

    if (room == NULL) {
        return TG_ENOMEM;
    }
    req.wire_version = TOLLGATE__V1__WIRE_VERSION__WIRE_VERSION_1;
    req.request_id   = (char *)u->request_id;
    req.body_case    = TOLLGATE__V1__PDP_REQUEST__BODY_USAGE;
    req.usage        = tg_wire_usage_fill(room, u);
    rv               = dp_wire_pack(&req, buf, cap, len);
    free(room);
    return rv;
}

tg_err
dp_wire_encode_usage_batch(const tg_usage *u, size_t n, const char *batch_id,
                           uint8_t *buf, size_t cap, size_t *len)
{
    return dp_wire_encode_usage_batch_content(u, NULL, NULL, n, batch_id, buf,
                                              cap, len);
}

tg_err
dp_wire_encode_usage_batch_content(const tg_usage    *u,
                                   const char *const *content,
                                   const size_t *content_len, size_t n,
                                   const char *batch_id, uint8_t *buf,
                                   size_t cap, size_t *len)
{
    pb_req                   req = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__UsageBatch b   = TOLLGATE__V1__USAGE_BATCH__INIT;
    Tollgate__V1__UsageItem  items[TG_USAGE_BATCH_MAX];
    Tollgate__V1__UsageItem *itemp[TG_USAGE_BATCH_MAX];
    tg_wire_usage_room      *room;
    tg_err                   rv;

    if (n == 0 || n > TG_USAGE_BATCH_MAX) {
        return TG_EINVAL;
    }
    if ((room = calloc(n, sizeof(*room))) == NULL) {
        return TG_ENOMEM;
    }
    req.wire_version = TOLLGATE__V1__WIRE_VERSION__WIRE_VERSION_1;
    req.request_id   = (char *)batch_id;
    req.body_case    = TOLLGATE__V1__PDP_REQUEST__BODY_USAGE_BATCH;
    req.usage_batch  = &b;
    for (size_t i = 0; i < n; i++) {
        tollgate__v1__usage_item__init(&items[i]);
        items[i].request_id = (char *)u[i].request_id;
        items[i].usage      = tg_wire_usage_fill(&room[i], &u[i]);
        itemp[i]            = &items[i];
        if (content != NULL && content[i] != NULL) {
            items[i].content.data = (uint8_t *)content[i];
            items[i].content.len  = content_len[i];
        }
    }
    b.n_items = n;
    b.items   = itemp;
    rv        = dp_wire_pack(&req, buf, cap, len);
    free(room);
    return rv;
}

tg_err
dp_wire_encode_ping(const char *request_id, int64_t sent_ms, uint8_t *buf,
                    size_t cap, size_t *len)
{
    pb_req             req  = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__Ping ping = TOLLGATE__V1__PING__INIT;

    req.wire_version = TOLLGATE__V1__WIRE_VERSION__WIRE_VERSION_1;
    req.request_id   = (char *)request_id;
    req.body_case    = TOLLGATE__V1__PDP_REQUEST__BODY_PING;
    req.ping         = &ping;
    ping.sent_ms     = sent_ms;
    return dp_wire_pack(&req, buf, cap, len);
}

/* dp_wire_copy copies a wire string into a fixed field; a string that does
 * not fit is a protocol error, never silently cut. */
static int
dp_wire_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= cap) {
        return -1;
    }
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
    return 0;
}

static pb_resp *
dp_wire_unpack(const uint8_t *buf, size_t len, size_t max,
               const char *request_id, char *why, size_t whylen)
{
    pb_resp *r;

    if (len > max) {
        snprintf(why, whylen, "PDP reply of %zu bytes is over the %zu limit",
                 len, max);
        return NULL;
    }
    r = tollgate__v1__pdp_response__unpack(NULL, len, buf);
    if (r == NULL) {
        snprintf(why, whylen, "PDP reply does not decode");
        return NULL;
    }
    if (request_id != NULL && strcmp(r->request_id, request_id) != 0) {
        snprintf(why, whylen, "PDP reply is for another request");
        tollgate__v1__pdp_response__free_unpacked(r, NULL);
        return NULL;
    }
    if (r->body_case == TOLLGATE__V1__PDP_RESPONSE__BODY_ERROR) {
        /* Cut on purpose: the reason only goes to a log line. */
        int n = snprintf(why, whylen, "PDP refused the request: ");
        if (n > 0 && (size_t)n < whylen) {
            strncpy(why + n, r->error->message, whylen - (size_t)n - 1);
            why[whylen - 1] = '\0';
        }
        tollgate__v1__pdp_response__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

static tg_err
dp_wire_fill_decision(const Tollgate__V1__Decision *d, tg_decision *out,
                      char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (d->verdict != TOLLGATE__V1__VERDICT__VERDICT_ALLOW &&
        d->verdict != TOLLGATE__V1__VERDICT__VERDICT_DENY) {
        snprintf(why, whylen, "PDP sent unknown verdict %d", (int)d->verdict);
        return TG_EPROTO;
    }
    out->verdict = (tg_verdict)d->verdict;
    out->status  = d->status;
    if (d->n_targets > TG_MSG_TARGETS_MAX || d->n_matched > TG_MSG_RULES_MAX ||
        d->n_models > TG_MSG_MODELS_MAX || d->n_limits > TG_MSG_LIMITS_MAX ||
        d->n_guards > TG_MSG_GUARDS_MAX ||
        (d->mutations != NULL &&
         d->mutations->n_redactions > TG_MSG_REDACT_MAX)) {
        snprintf(why, whylen, "PDP decision has too many entries");
        return TG_EPROTO;
    }
    if (d->strategy < 0 ||
        d->strategy >
            TOLLGATE__V1__ROUTE_STRATEGY__ROUTE_STRATEGY_LOWEST_COST) {
        snprintf(why, whylen, "PDP sent unknown route strategy %d",
                 (int)d->strategy);
        return TG_EPROTO;
    }
    out->strategy = (tg_route_strategy)d->strategy;
    if (dp_wire_copy(out->error_code, sizeof(out->error_code), d->error_code) ||
        dp_wire_copy(out->error_type, sizeof(out->error_type), d->error_type) ||
        dp_wire_copy(out->message, sizeof(out->message), d->message) ||
        dp_wire_copy(out->reservation_id, sizeof(out->reservation_id),
                     d->reservation_id) ||
        dp_wire_copy(out->bundle_hash, sizeof(out->bundle_hash),
                     d->bundle_hash) ||
        dp_wire_copy(out->key_id, sizeof(out->key_id), d->key_id) ||
        dp_wire_copy(out->tenant_id, sizeof(out->tenant_id), d->tenant_id) ||
        dp_wire_copy(out->guard_set, sizeof(out->guard_set), d->guard_set)) {
        goto toolong;
    }
    for (size_t i = 0; i < d->n_guards; i++) {
        if (dp_wire_copy(out->guards[i].rule_id, sizeof(out->guards[i].rule_id),
                         d->guards[i]->rule_id)) {
            goto toolong;
        }
        out->guards[i].index         = d->guards[i]->index;
        out->guards[i].enforced      = d->guards[i]->enforced != 0;
        out->guards[i].on_error_skip = d->guards[i]->on_error_skip != 0;
    }
    out->n_guards = (uint32_t)d->n_guards;
    /* An input this data plane does not know: never reuse it. */
    out->reuse_ms     = (d->reuse_inputs & ~TG_REUSE_ALL) ? 0 : d->reuse_ms;
    out->reuse_inputs = d->reuse_inputs & TG_REUSE_ALL;
    if (out->n_guards > 0 && out->guard_set[0] == '\0') {
        snprintf(why, whylen, "PDP decision names guardrails but no guard set");
        return TG_EPROTO;
    }
    for (size_t i = 0; i < d->n_targets; i++) {
        if (dp_wire_copy(out->targets[i].deployment_id,
                         sizeof(out->targets[i].deployment_id),
                         d->targets[i]->deployment_id)) {
            goto toolong;
        }
        out->targets[i].weight = d->targets[i]->weight;
    }
    out->n_targets = (uint32_t)d->n_targets;
    for (size_t i = 0; i < d->n_matched; i++) {
        if (dp_wire_copy(out->matched[i].rule_id,
                         sizeof(out->matched[i].rule_id),
                         d->matched[i]->rule_id)) {
            goto toolong;
        }
        if (dp_wire_copy(out->matched[i].effect, sizeof(out->matched[i].effect),
                         d->matched[i]->effect)) {
            goto toolong;
        }
        out->matched[i].enforced = d->matched[i]->enforced;
    }
    out->n_matched = (uint32_t)d->n_matched;
    for (size_t i = 0; i < d->n_models; i++) {
        if (dp_wire_copy(out->models[i], sizeof(out->models[i]),
                         d->models[i])) {
            goto toolong;
        }
    }
    out->n_models = (uint32_t)d->n_models;
    for (size_t i = 0; i < d->n_limits; i++) {
        if (dp_wire_copy(out->limits[i].name, sizeof(out->limits[i].name),
                         d->limits[i]->name)) {
            goto toolong;
        }
        out->limits[i].limit     = d->limits[i]->limit;
        out->limits[i].remaining = d->limits[i]->remaining;
        out->limits[i].reset_ms  = d->limits[i]->reset_ms;
    }
    out->n_limits = (uint32_t)d->n_limits;
    if (d->mutations != NULL) {
        out->clamp_max_tokens = d->mutations->clamp_max_tokens;
        for (size_t i = 0; i < d->mutations->n_redactions; i++) {
            const Tollgate__V1__RedactSpan *s = d->mutations->redactions[i];
            if (s->end < s->start ||
                dp_wire_copy(out->redactions[i].replacement,
                             sizeof(out->redactions[i].replacement),
                             s->replacement)) {
                goto toolong;
            }
            out->redactions[i].message_index = s->message_index;
            out->redactions[i].start         = s->start;
            out->redactions[i].end           = s->end;
        }
        out->n_redactions = (uint32_t)d->mutations->n_redactions;
    }
    out->policy_revision = d->policy_revision;
    if (d->capture_level > TG_CAPTURE_FULL) {
        snprintf(why, whylen, "PDP sent unknown capture level %u",
                 d->capture_level);
        return TG_EPROTO;
    }
    out->capture_level      = d->capture_level;
    out->audit_hits_header  = d->audit_hits_header != 0;
    out->log_shed           = d->log_shed != 0;
    out->reserved_micro_usd = d->reserved_micro_usd;
    return TG_OK;
toolong:
    snprintf(why, whylen, "PDP decision has a field over its size limit");
    return TG_EPROTO;
}

tg_err
dp_wire_decode_decision(const uint8_t *buf, size_t len, size_t max,
                        const char *request_id, tg_decision *out, char *why,
                        size_t whylen)
{
    pb_resp *r = dp_wire_unpack(buf, len, max, request_id, why, whylen);
    tg_err   rv;

    if (r == NULL) {
        return TG_EPROTO;
    }
    if (r->body_case != TOLLGATE__V1__PDP_RESPONSE__BODY_DECISION) {
        snprintf(why, whylen, "PDP reply is not a decision");
        rv = TG_EPROTO;
    } else {
        rv = dp_wire_fill_decision(r->decision, out, why, whylen);
    }
    tollgate__v1__pdp_response__free_unpacked(r, NULL);
    return rv;
}

tg_err
dp_wire_decode_usage_ack(const uint8_t *buf, size_t len, size_t max,
                         const char *request_id, tg_usage_ack *out, char *why,
                         size_t whylen)
{
    pb_resp *r  = dp_wire_unpack(buf, len, max, request_id, why, whylen);
    tg_err   rv = TG_OK;

    if (r == NULL) {
        return TG_EPROTO;
    }
    if (r->body_case != TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_ACK) {
        snprintf(why, whylen, "PDP reply is not a usage ack");
        rv = TG_EPROTO;
    } else {
        memset(out, 0, sizeof(*out));
        /* Equal to the caller's id (checked on unpack), so it fits. */
        dp_wire_copy(out->request_id, sizeof(out->request_id), r->request_id);
        out->duplicate      = r->usage_ack->duplicate;
        out->cost_micro_usd = r->usage_ack->cost_micro_usd;
    }
    tollgate__v1__pdp_response__free_unpacked(r, NULL);
    return rv;
}

tg_err
dp_wire_decode_usage_batch_ack(const uint8_t *buf, size_t len, size_t max,
                               const char *batch_id, const tg_usage *u,
                               size_t n, tg_usage_item_ack *out, char *why,
                               size_t whylen)
{
    pb_resp *r  = dp_wire_unpack(buf, len, max, batch_id, why, whylen);
    tg_err   rv = TG_OK;

    if (r == NULL) {
        return TG_EPROTO;
    }
    if (r->body_case != TOLLGATE__V1__PDP_RESPONSE__BODY_USAGE_BATCH_ACK ||
        r->usage_batch_ack->n_acks != n) {
        snprintf(why, whylen, "PDP reply is not an ack of this usage batch");
        rv = TG_EPROTO;
    }
    for (size_t i = 0; rv == TG_OK && i < n; i++) {
        const Tollgate__V1__UsageItemAck *a = r->usage_batch_ack->acks[i];
        /* One ack per report, in order: anything else is not our answer. */
        if (a->request_id == NULL ||
            strcmp(a->request_id, u[i].request_id) != 0) {
            snprintf(why, whylen,
                     "PDP usage batch ack %zu is for another "
                     "report",
                     i);
            rv = TG_EPROTO;
            break;
        }
        memset(&out[i], 0, sizeof(out[i]));
        out[i].ok = a->ok && a->ack != NULL;
        memcpy(out[i].ack.request_id, u[i].request_id,
               sizeof(out[i].ack.request_id));
        if (out[i].ok) {
            out[i].ack.duplicate      = a->ack->duplicate;
            out[i].ack.cost_micro_usd = a->ack->cost_micro_usd;
        }
    }
    tollgate__v1__pdp_response__free_unpacked(r, NULL);
    return rv;
}

tg_err
dp_wire_decode_pong(const uint8_t *buf, size_t len, const char *request_id)
{
    char     why[128];
    pb_resp *r =
        dp_wire_unpack(buf, len, 1 << 16, request_id, why, sizeof(why));
    tg_err rv = TG_EPROTO;

    if (r != NULL) {
        if (r->body_case == TOLLGATE__V1__PDP_RESPONSE__BODY_PONG) {
            rv = TG_OK;
        }
        tollgate__v1__pdp_response__free_unpacked(r, NULL);
    }
    return rv;
}

tg_err
dp_wire_encode_guard_fetch(const char *request_id, const char *hash,
                           uint8_t *buf, size_t cap, size_t *len)
{
    pb_req                   req = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__GuardFetch gf  = TOLLGATE__V1__GUARD_FETCH__INIT;

    req.wire_version = TOLLGATE__V1__WIRE_VERSION__WIRE_VERSION_1;
    req.request_id   = (char *)request_id;
    req.body_case    = TOLLGATE__V1__PDP_REQUEST__BODY_GUARD_FETCH;
    req.guard_fetch  = &gf;
    gf.guard_set     = (char *)hash;
    return dp_wire_pack(&req, buf, cap, len);
}

tg_err
dp_wire_decode_guard_set(const uint8_t *buf, size_t len, size_t max,
                         const char *request_id, const char *hash, bool *found,
                         char **spec, size_t *spec_len, char *why,
                         size_t whylen)
{
    pb_resp *r  = dp_wire_unpack(buf, len, max, request_id, why, whylen);
    tg_err   rv = TG_EPROTO;

    *found = false;
    *spec  = NULL;
    if (r == NULL) {
        return TG_EPROTO;
    }
    if (r->body_case != TOLLGATE__V1__PDP_RESPONSE__BODY_GUARD_SET ||
        r->guard_set->guard_set == NULL ||
        strcmp(r->guard_set->guard_set, hash) != 0) {
        snprintf(why, whylen,
                 "PDP did not answer with the guard set asked for");
    } else if (!r->guard_set->found) {
        rv = TG_OK;
    } else if ((*spec = malloc(r->guard_set->spec.len + 1)) == NULL) {
        rv = TG_ENOMEM;
    } else {
        if (r->guard_set->spec.len > 0) {
            memcpy(*spec, r->guard_set->spec.data, r->guard_set->spec.len);
        }
        (*spec)[r->guard_set->spec.len] = '\0';
        *spec_len                       = r->guard_set->spec.len;
        *found                          = true;
        rv                              = TG_OK;
    }
    tollgate__v1__pdp_response__free_unpacked(r, NULL);
    return rv;
}

void
dp_wire_resp_fini(dp_wire_resp *r)
{
    if (r != NULL) {
        free(r->response);
        free(r->items);
        r->response = NULL;
        r->items    = NULL;
    }
}

tg_err
dp_wire_encode_resp(dp_wire_resp_op op, const char *request_id,
                    const dp_wire_resp *r, uint8_t **buf, size_t *len)
{
    pb_req                   req = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__RespPut    put = TOLLGATE__V1__RESP_PUT__INIT;
    Tollgate__V1__RespGet    get = TOLLGATE__V1__RESP_GET__INIT;
    Tollgate__V1__RespDelete del = TOLLGATE__V1__RESP_DELETE__INIT;
    size_t                   cap;
    tg_err                   rv;

    req.wire_version = TOLLGATE__V1__WIRE_VERSION__WIRE_VERSION_1;
    req.request_id   = (char *)request_id;
    if (op == DP_RESP_PUT) {
        put.key_hash.data = (uint8_t *)r->key_hash;
        put.key_hash.len  = sizeof(r->key_hash);
        put.response_id   = (char *)r->id;
        put.created_ms    = r->created_ms;
        put.deadline_ms   = r->deadline_ms;
        put.response.data = (uint8_t *)r->response;
        put.response.len  = r->response_len;
        put.items.data    = (uint8_t *)r->items;
        put.items.len     = r->items_len;
        req.body_case     = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_PUT;
        req.resp_put      = &put;
    } else if (op == DP_RESP_GET) {
        get.key_hash.data = (uint8_t *)r->key_hash;
        get.key_hash.len  = sizeof(r->key_hash);
        get.response_id   = (char *)r->id;
        get.by_item       = r->by_item;
        req.body_case     = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_GET;
        req.resp_get      = &get;
    } else if (op == DP_RESP_DEL) {
        del.key_hash.data = (uint8_t *)r->key_hash;
        del.key_hash.len  = sizeof(r->key_hash);
        del.response_id   = (char *)r->id;
        req.body_case     = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_DELETE;
        req.resp_delete   = &del;
    } else {
        return TG_EINVAL;
    }
    cap = tollgate__v1__pdp_request__get_packed_size(&req);
    if ((*buf = malloc(cap > 0 ? cap : 1)) == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = dp_wire_pack(&req, *buf, cap, len)) != TG_OK) {
        free(*buf);
        *buf = NULL;
    }
    return rv;
}

tg_err
dp_wire_decode_resp(const uint8_t *buf, size_t len, size_t max,
                    const char *request_id, dp_wire_resp *out, char *why,
                    size_t whylen)
{
    pb_resp *r = dp_wire_unpack(buf, len, max, request_id, why, whylen);
    Tollgate__V1__RespReply *rr;
    tg_err                   rv = TG_EPROTO;

    memset(out, 0, sizeof(*out));
    if (r == NULL) {
        return TG_EPROTO;
    }
    rr = r->resp_reply;
    if (r->body_case != TOLLGATE__V1__PDP_RESPONSE__BODY_RESP_REPLY) {
        snprintf(why, whylen, "PDP did not answer with a stored response");
    } else if (rr->status < TOLLGATE__V1__RESP_STATUS__RESP_STATUS_OK ||
               rr->status > TOLLGATE__V1__RESP_STATUS__RESP_STATUS_BAD_KEY) {
        snprintf(why, whylen, "PDP answered an unknown stored-response status");
    } else if (dp_wire_copy(out->id, sizeof(out->id), rr->response_id)) {
        snprintf(why, whylen, "PDP answered a response id too long");
    } else if ((rv = tg_wire_bytes_dup(&rr->response, &out->response,
                                      &out->response_len)) == TG_OK &&
               (rv = tg_wire_bytes_dup(&rr->items, &out->items,
                                      &out->items_len)) == TG_OK) {
        out->status     = (dp_wire_resp_status)rr->status;
        out->created_ms = rr->created_ms;
    } else {
        dp_wire_resp_fini(out);
    }
    tollgate__v1__pdp_response__free_unpacked(r, NULL);
    return rv;
}
