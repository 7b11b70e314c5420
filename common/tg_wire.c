/* tg_wire.c - see tg_wire.h. */
#include "tg_wire.h"

tg_err
tg_wire_decide_fill(Tollgate__V1__Decide *dec, const tg_decide *d,
                    Tollgate__V1__KeyValue  kv[TG_MSG_META_MAX],
                    Tollgate__V1__KeyValue *kvp[TG_MSG_META_MAX])
{
    if (d->n_meta > TG_MSG_META_MAX) {
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
    return TG_OK;
}

void
tg_wire_usage_fill(Tollgate__V1__Usage *us, const tg_usage *u)
{
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
}
