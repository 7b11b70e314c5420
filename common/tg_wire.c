/* tg_wire.c - see tg_wire.h. */
#include "tg_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_err
tg_wire_decide_fill(Tollgate__V1__Decide *dec, const tg_decide *d,
                    Tollgate__V1__KeyValue  kv[TG_MSG_META_MAX],
                    Tollgate__V1__KeyValue *kvp[TG_MSG_META_MAX],
                    char                   *fm[TG_MSG_FALLBACK_MODELS_MAX])
{
    if (d->n_meta > TG_MSG_META_MAX ||
        d->n_fallback_models > TG_MSG_FALLBACK_MODELS_MAX) {
        return TG_EINVAL;
    }
    tollgate__v1__decide__init(dec);
    dec->key_hash.data          = (uint8_t *)d->key_hash;
    dec->key_hash.len           = TG_SHA256_LEN;
    dec->endpoint               = (Tollgate__V1__Endpoint)d->endpoint;
    dec->model                  = (char *)d->model;
    dec->stream                 = d->stream;
    dec->max_tokens             = d->max_tokens;
    dec->prompt_tokens_estimate = d->prompt_tokens_estimate;
    dec->prompt_bytes           = d->prompt_bytes;
    dec->client_ip              = (char *)d->client_ip;
    dec->user                   = (char *)d->user;
    dec->now_ms                 = d->now_ms;
    for (uint32_t i = 0; i < d->n_meta; i++) {
        tollgate__v1__key_value__init(&kv[i]);
        kv[i].key   = (char *)d->meta[i].key;
        kv[i].value = (char *)d->meta[i].value;
        kvp[i]      = &kv[i];
    }
    dec->n_metadata = d->n_meta;
    dec->metadata   = kvp;
    for (uint32_t i = 0; i < d->n_fallback_models; i++) {
        fm[i] = (char *)d->fallback_models[i];
    }
    dec->n_fallback_models = d->n_fallback_models;
    dec->fallback_models   = fm;
    return TG_OK;
}

static void
tg_wire_outcome_fill(tg_wire_usage_room *room, const tg_outcome *o)
{
    Tollgate__V1__Outcome *oc = &room->oc;

    tollgate__v1__outcome__init(oc);
    oc->verdict            = (Tollgate__V1__Verdict)o->verdict;
    oc->error_code         = (char *)o->error_code;
    oc->model_requested    = (char *)o->model_requested;
    oc->policy_revision    = o->policy_revision;
    oc->bundle_hash        = (char *)o->bundle_hash;
    oc->capture_level      = o->capture_level;
    oc->reserved_micro_usd = o->reserved_micro_usd;
    oc->client_ip          = (char *)o->client_ip;
    oc->trace_id           = (char *)o->trace_id;
    oc->pdp_us             = o->pdp_us;
    oc->pdp_link           = o->pdp_link;
    oc->first_byte_us      = o->first_byte_us;
    oc->origin             = (char *)o->origin;
    oc->shed               = o->shed;
    oc->max_tokens         = o->max_tokens;
    oc->prompt_tokens_estimate = o->prompt_tokens_estimate;
    if (o->has_key_hash) {
        oc->key_hash.data = (uint8_t *)o->key_hash;
        oc->key_hash.len  = TG_SHA256_LEN;
    }
    for (uint32_t i = 0; i < o->n_matched && i < TG_MSG_RULES_MAX; i++) {
        tollgate__v1__rule_match__init(&room->rm[i]);
        room->rm[i].rule_id  = (char *)o->matched[i].rule_id;
        room->rm[i].enforced = o->matched[i].enforced;
        room->rm[i].effect   = (char *)o->matched[i].effect;
        room->rmp[i]         = &room->rm[i];
        oc->n_matched        = i + 1;
    }
    oc->matched = room->rmp;
    for (uint32_t i = 0; i < o->n_meta && i < TG_MSG_META_MAX; i++) {
        tollgate__v1__key_value__init(&room->kv[i]);
        room->kv[i].key   = (char *)o->meta[i].key;
        room->kv[i].value = (char *)o->meta[i].value;
        room->kvp[i]      = &room->kv[i];
        oc->n_metadata    = i + 1;
    }
    oc->metadata = room->kvp;
    for (uint32_t i = 0; i < o->n_guard_hits && i < TG_MSG_GUARD_HITS_MAX;
         i++) {
        const tg_guard_rec     *g = &o->guard_hits[i];
        Tollgate__V1__GuardHit *h = &room->gh[i];
        tollgate__v1__guard_hit__init(h);
        h->rule_id   = (char *)g->rule_id;
        h->detector  = (char *)g->detector;
        h->action    = (char *)g->action;
        h->stage     = g->stage;
        h->enforced  = g->enforced;
        h->count     = g->count;
        h->where     = (char *)g->where;
        h->offsets   = (uint32_t *)g->offs;
        h->n_offsets = g->n_offs < TG_MSG_GUARD_OFFS_MAX
                           ? g->n_offs
                           : TG_MSG_GUARD_OFFS_MAX;
        room->ghp[i]     = h;
        oc->n_guard_hits = i + 1;
    }
    oc->guard_hits    = room->ghp;
    oc->guard_skipped = o->guard_skipped;
}

Tollgate__V1__Usage *
tg_wire_usage_fill(tg_wire_usage_room *room, const tg_usage *u)
{
    Tollgate__V1__Usage *us = &room->us;

    tollgate__v1__usage__init(us);
    us->key_id            = (char *)u->key_id;
    us->tenant_id         = (char *)u->tenant_id;
    us->model             = (char *)u->model;
    us->deployment_id     = (char *)u->deployment_id;
    us->reservation_id    = (char *)u->reservation_id;
    us->endpoint          = (Tollgate__V1__Endpoint)u->endpoint;
    us->stream            = u->stream;
    us->prompt_tokens     = u->prompt_tokens;
    us->completion_tokens = u->completion_tokens;
    us->cached_tokens     = u->cached_tokens;
    us->estimated         = u->estimated;
    us->abandoned         = u->abandoned;
    us->status            = u->status;
    us->started_ms        = u->started_ms;
    us->duration_ms       = u->duration_ms;
    us->user              = (char *)u->user;
    if (u->outcome.present) {
        tg_wire_outcome_fill(room, &u->outcome);
        us->outcome = &room->oc;
    }
    for (uint32_t i = 0; i < u->n_charges && i < TG_MSG_CHARGES_MAX; i++) {
        const tg_lease_charge     *c = &u->charges[i];
        Tollgate__V1__LeaseCharge *w = &room->ch[i];
        tollgate__v1__lease_charge__init(w);
        w->lease_id        = (char *)c->lease_id;
        w->rule_id         = (char *)c->rule_id;
        w->scope           = (char *)c->scope;
        w->window          = c->window;
        w->start_ms        = c->start_ms;
        w->limit           = c->limit;
        w->scope_kind      = c->scope_kind;
        w->thresholds.data = (uint8_t *)c->thr;
        w->thresholds.len  = c->nthr;
        room->chp[i]       = w;
        us->n_charges      = i + 1;
    }
    us->charges   = room->chp;
    us->emergency = u->emergency;
    us->via       = (char *)u->via;
    return us;
}

/* ---- reading ------------------------------------------------------------ */

static tg_err tg_wire_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tg_err
tg_wire_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return TG_EPROTO;
}

/* tg_wire_str copies a wire string into a fixed field; too long is an
 * error rather than a silent cut, which could turn an id into another. */
static bool
tg_wire_str(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= cap) {
        return false;
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
    return true;
}

#define TG_WIRE_STR(dst, src, field)                                           \
    do {                                                                       \
        if (!tg_wire_str((dst), sizeof(dst), (src))) {                         \
            return tg_wire_fail(err, errlen, "%s is longer than %zu bytes",    \
                                (field), sizeof(dst) - 1);                     \
        }                                                                      \
    } while (0)

static tg_err
tg_wire_outcome_read(const Tollgate__V1__Outcome *in, tg_outcome *o,
                     char *err, size_t errlen)
{
    if ((int)in->verdict < 0 || (int)in->verdict > (int)TG_VERDICT_DENY) {
        return tg_wire_fail(err, errlen, "outcome.verdict %d is unknown",
                            (int)in->verdict);
    }
    if (in->n_matched > TG_MSG_RULES_MAX || in->n_metadata > TG_MSG_META_MAX ||
        in->n_guard_hits > TG_MSG_GUARD_HITS_MAX) {
        return tg_wire_fail(err, errlen, "outcome has too many list entries");
    }
    if (in->key_hash.len != 0 && in->key_hash.len != TG_SHA256_LEN) {
        return tg_wire_fail(err, errlen, "outcome.key_hash must be %d bytes",
                            TG_SHA256_LEN);
    }
    if (in->capture_level > TG_CAPTURE_FULL) {
        return tg_wire_fail(err, errlen, "outcome.capture_level %u is unknown",
                            in->capture_level);
    }
    o->present = true;
    o->verdict = (tg_verdict)in->verdict;
    TG_WIRE_STR(o->error_code, in->error_code, "outcome.error_code");
    TG_WIRE_STR(o->model_requested, in->model_requested,
                "outcome.model_requested");
    TG_WIRE_STR(o->bundle_hash, in->bundle_hash, "outcome.bundle_hash");
    TG_WIRE_STR(o->client_ip, in->client_ip, "outcome.client_ip");
    TG_WIRE_STR(o->trace_id, in->trace_id, "outcome.trace_id");
    TG_WIRE_STR(o->origin, in->origin, "outcome.origin");
    for (size_t i = 0; i < in->n_matched; i++) {
        TG_WIRE_STR(o->matched[i].rule_id, in->matched[i]->rule_id,
                    "outcome.matched");
        TG_WIRE_STR(o->matched[i].effect, in->matched[i]->effect,
                    "outcome.matched.effect");
        o->matched[i].enforced = in->matched[i]->enforced != 0;
    }
    o->n_matched = (uint32_t)in->n_matched;
    for (size_t i = 0; i < in->n_metadata; i++) {
        TG_WIRE_STR(o->meta[i].key, in->metadata[i]->key, "outcome.metadata");
        TG_WIRE_STR(o->meta[i].value, in->metadata[i]->value,
                    "outcome.metadata");
    }
    o->n_meta = (uint32_t)in->n_metadata;
    for (size_t i = 0; i < in->n_guard_hits; i++) {
        const Tollgate__V1__GuardHit *h = in->guard_hits[i];
        tg_guard_rec                 *g = &o->guard_hits[i];
        TG_WIRE_STR(g->rule_id, h->rule_id, "outcome.guard_hits.rule_id");
        TG_WIRE_STR(g->detector, h->detector, "outcome.guard_hits.detector");
        TG_WIRE_STR(g->action, h->action, "outcome.guard_hits.action");
        TG_WIRE_STR(g->where, h->where, "outcome.guard_hits.where");
        if (h->stage > 1 || h->n_offsets > TG_MSG_GUARD_OFFS_MAX) {
            return tg_wire_fail(err, errlen, "outcome.guard_hits is invalid");
        }
        g->stage    = (uint8_t)h->stage;
        g->enforced = h->enforced != 0;
        g->count    = h->count;
        g->n_offs   = (uint32_t)h->n_offsets;
        if (h->n_offsets > 0) {
            memcpy(g->offs, h->offsets, h->n_offsets * sizeof(g->offs[0]));
        }
    }
    o->n_guard_hits       = (uint32_t)in->n_guard_hits;
    o->guard_skipped      = in->guard_skipped != 0;
    o->policy_revision    = in->policy_revision;
    o->capture_level      = in->capture_level;
    o->reserved_micro_usd = in->reserved_micro_usd;
    o->pdp_us             = in->pdp_us;
    o->pdp_link           = in->pdp_link;
    o->first_byte_us      = in->first_byte_us;
    o->shed               = in->shed != 0;
    o->max_tokens         = in->max_tokens;
    o->prompt_tokens_estimate = in->prompt_tokens_estimate;
    o->has_key_hash       = in->key_hash.len == TG_SHA256_LEN;
    if (o->has_key_hash) {
        memcpy(o->key_hash, in->key_hash.data, TG_SHA256_LEN);
    }
    return TG_OK;
}

tg_err
tg_wire_usage_read(const Tollgate__V1__Usage *in, tg_usage *u, char *err,
                   size_t errlen)
{
    TG_WIRE_STR(u->key_id, in->key_id, "usage.key_id");
    TG_WIRE_STR(u->tenant_id, in->tenant_id, "usage.tenant_id");
    TG_WIRE_STR(u->model, in->model, "usage.model");
    TG_WIRE_STR(u->deployment_id, in->deployment_id, "usage.deployment_id");
    TG_WIRE_STR(u->reservation_id, in->reservation_id, "usage.reservation_id");
    TG_WIRE_STR(u->user, in->user, "usage.user");
    if ((int)in->endpoint < TG_EP_UNSPECIFIED ||
        (int)in->endpoint > TG_EP_MODELS) {
        return tg_wire_fail(err, errlen, "unknown endpoint %d",
                            (int)in->endpoint);
    }
    if (in->prompt_tokens < 0 || in->completion_tokens < 0 ||
        in->cached_tokens < 0) {
        return tg_wire_fail(err, errlen, "usage has a negative token count");
    }
    u->endpoint          = (tg_endpoint)in->endpoint;
    u->stream            = in->stream != 0;
    u->prompt_tokens     = in->prompt_tokens;
    u->completion_tokens = in->completion_tokens;
    u->cached_tokens     = in->cached_tokens;
    u->estimated         = in->estimated != 0;
    u->abandoned         = in->abandoned != 0;
    u->status            = in->status;
    u->started_ms        = in->started_ms;
    u->duration_ms       = in->duration_ms;
    TG_WIRE_STR(u->via, in->via, "usage.via");
    u->emergency = in->emergency != 0;
    if (in->n_charges > TG_MSG_CHARGES_MAX) {
        return tg_wire_fail(err, errlen, "usage has more than %d charges",
                            TG_MSG_CHARGES_MAX);
    }
    u->n_charges = (uint32_t)in->n_charges;
    for (size_t i = 0; i < in->n_charges; i++) {
        const Tollgate__V1__LeaseCharge *w = in->charges[i];
        tg_lease_charge                 *c = &u->charges[i];
        TG_WIRE_STR(c->lease_id, w->lease_id, "usage.charges.lease_id");
        TG_WIRE_STR(c->rule_id, w->rule_id, "usage.charges.rule_id");
        TG_WIRE_STR(c->scope, w->scope, "usage.charges.scope");
        if (w->window > 255 || w->scope_kind > 255 ||
            w->thresholds.len > TG_MSG_THRESHOLDS_MAX) {
            return tg_wire_fail(err, errlen, "usage has a malformed charge");
        }
        c->window     = (uint8_t)w->window;
        c->start_ms   = w->start_ms;
        c->limit      = w->limit;
        c->scope_kind = (uint8_t)w->scope_kind;
        c->nthr       = (uint8_t)w->thresholds.len;
        if (c->nthr > 0) {
            memcpy(c->thr, w->thresholds.data, c->nthr);
        }
    }
    memset(&u->outcome, 0, sizeof(u->outcome));
    if (in->outcome != NULL) {
        return tg_wire_outcome_read(in->outcome, &u->outcome, err, errlen);
    }
    return TG_OK;
}

tg_err
tg_wire_bytes_dup(const ProtobufCBinaryData *in, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (in->len == 0) {
        return TG_OK;
    }
    if ((*out = malloc(in->len + 1)) == NULL) {
        return TG_ENOMEM;
    }
    memcpy(*out, in->data, in->len);
    (*out)[in->len] = '\0';
    *len            = in->len;
    return TG_OK;
}
