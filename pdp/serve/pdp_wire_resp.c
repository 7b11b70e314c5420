/* pdp_wire_resp.c - the stored Responses messages on the PDP's side of the
 * wire (RespPut, RespGet, RespDelete, RespReply); see pdp_wire.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_wire_int.h"
#include "tg_hash.h"
#include "tg_wire.h"

#define PDP_WIRE_STR(dst, src, field)                                          \
    do {                                                                       \
        if ((rv = pdp_wire__str((dst), sizeof(dst), (src), (field), err,       \
                                errlen)) != TG_OK) {                           \
            return rv;                                                         \
        }                                                                      \
    } while (0)

static tg_err
pdp_wire_resp_fail(char *err, size_t errlen, const char *why)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", why);
    }
    return TG_EPROTO;
}

static tg_err
pdp_wire_resp_ids_in(pdp_wire_resp *r, const ProtobufCBinaryData *hash,
                     const char *id, char *err, size_t errlen)
{
    tg_err rv;

    if (hash->len != TG_SHA256_LEN) {
        return pdp_wire_resp_fail(err, errlen,
                                  "resp: key_hash is not 32 bytes");
    }
    memcpy(r->key_hash, hash->data, TG_SHA256_LEN);
    PDP_WIRE_STR(r->id, id, "resp.response_id");
    if (r->id[0] == '\0') {
        return pdp_wire_resp_fail(err, errlen, "resp: an empty response_id");
    }
    return TG_OK;
}

tg_err
pdp_wire__resp_request_in(const Tollgate__V1__PdpRequest *in, pdp_req *out,
                          char *err, size_t errlen)
{
    pdp_wire_resp *r = &out->u.resp;
    tg_err         rv;

    memset(r, 0, sizeof(*r));
    switch (in->body_case) {
    case TOLLGATE__V1__PDP_REQUEST__BODY_RESP_PUT:
        out->kind = PDP_REQ_RESP_PUT;
        if ((rv = pdp_wire_resp_ids_in(r, &in->resp_put->key_hash,
                                       in->resp_put->response_id, err,
                                       errlen)) != TG_OK) {
            return rv;
        }
        r->created_ms  = in->resp_put->created_ms;
        r->deadline_ms = in->resp_put->deadline_ms;
        if ((rv = tg_wire_bytes_dup(&in->resp_put->response, &r->response,
                                    &r->response_len)) != TG_OK ||
            (rv = tg_wire_bytes_dup(&in->resp_put->items, &r->items,
                                    &r->items_len)) != TG_OK) {
            pdp_wire_request_release(out);
            out->kind = PDP_REQ_RESP_PUT;
            return rv;
        }
        return TG_OK;
    case TOLLGATE__V1__PDP_REQUEST__BODY_RESP_GET:
        out->kind  = PDP_REQ_RESP_GET;
        r->by_item = in->resp_get->by_item;
        return pdp_wire_resp_ids_in(r, &in->resp_get->key_hash,
                                    in->resp_get->response_id, err, errlen);
    case TOLLGATE__V1__PDP_REQUEST__BODY_RESP_DELETE:
        out->kind = PDP_REQ_RESP_DEL;
        return pdp_wire_resp_ids_in(r, &in->resp_delete->key_hash,
                                    in->resp_delete->response_id, err, errlen);
    default:
        return TG_ENOTFOUND;
    }
}

tg_err
pdp_wire__resp_reply_in(const Tollgate__V1__PdpResponse *in, pdp_rep *out,
                        char *err, size_t errlen)
{
    const Tollgate__V1__RespReply *rr = in->resp_reply;
    pdp_wire_resp                 *r  = &out->u.resp.resp;
    tg_err                         rv;

    if (in->body_case != TOLLGATE__V1__PDP_RESPONSE__BODY_RESP_REPLY) {
        return TG_ENOTFOUND;
    }
    out->kind = PDP_REP_RESP;
    memset(r, 0, sizeof(*r));
    if (rr->status < TOLLGATE__V1__RESP_STATUS__RESP_STATUS_OK ||
        rr->status > TOLLGATE__V1__RESP_STATUS__RESP_STATUS_BAD_KEY) {
        return pdp_wire_resp_fail(err, errlen, "resp_reply: an unknown status");
    }
    out->u.resp.status = (pdp_wire_resp_status)rr->status;
    PDP_WIRE_STR(r->id, rr->response_id, "resp_reply.response_id");
    r->created_ms = rr->created_ms;
    if ((rv = tg_wire_bytes_dup(&rr->response, &r->response,
                                &r->response_len)) != TG_OK ||
        (rv = tg_wire_bytes_dup(&rr->items, &r->items, &r->items_len)) !=
            TG_OK) {
        pdp_wire_reply_release(out);
        return rv;
    }
    return TG_OK;
}

tg_err
pdp_wire__resp_encode_request(const pdp_req *req, tg_buf *out)
{
    Tollgate__V1__PdpRequest m   = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__RespPut    put = TOLLGATE__V1__RESP_PUT__INIT;
    Tollgate__V1__RespGet    get = TOLLGATE__V1__RESP_GET__INIT;
    Tollgate__V1__RespDelete del = TOLLGATE__V1__RESP_DELETE__INIT;
    const pdp_wire_resp     *r   = &req->u.resp;

    m.wire_version = PDP_WIRE_VERSION;
    m.request_id   = (char *)req->request_id;
    switch (req->kind) {
    case PDP_REQ_RESP_PUT:
        put.key_hash.data = (uint8_t *)r->key_hash;
        put.key_hash.len  = TG_SHA256_LEN;
        put.response_id   = (char *)r->id;
        put.created_ms    = r->created_ms;
        put.deadline_ms   = r->deadline_ms;
        put.response.data = (uint8_t *)r->response;
        put.response.len  = r->response_len;
        put.items.data    = (uint8_t *)r->items;
        put.items.len     = r->items_len;
        m.body_case       = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_PUT;
        m.resp_put        = &put;
        break;
    case PDP_REQ_RESP_GET:
        get.key_hash.data = (uint8_t *)r->key_hash;
        get.key_hash.len  = TG_SHA256_LEN;
        get.response_id   = (char *)r->id;
        get.by_item       = r->by_item;
        m.body_case       = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_GET;
        m.resp_get        = &get;
        break;
    case PDP_REQ_RESP_DEL:
        del.key_hash.data = (uint8_t *)r->key_hash;
        del.key_hash.len  = TG_SHA256_LEN;
        del.response_id   = (char *)r->id;
        m.body_case       = TOLLGATE__V1__PDP_REQUEST__BODY_RESP_DELETE;
        m.resp_delete     = &del;
        break;
    default:
        return TG_EINVAL;
    }
    return pdp_wire__pack(&m.base, out);
}

tg_err
pdp_wire__resp_encode_reply(const pdp_rep *rep, tg_buf *out)
{
    Tollgate__V1__PdpResponse m  = TOLLGATE__V1__PDP_RESPONSE__INIT;
    Tollgate__V1__RespReply   rr = TOLLGATE__V1__RESP_REPLY__INIT;
    const pdp_wire_resp      *r  = &rep->u.resp.resp;

    if (rep->kind != PDP_REP_RESP) {
        return TG_EINVAL;
    }
    m.wire_version   = PDP_WIRE_VERSION;
    m.request_id     = (char *)rep->request_id;
    rr.status        = (Tollgate__V1__RespStatus)rep->u.resp.status;
    rr.response_id   = (char *)r->id;
    rr.created_ms    = r->created_ms;
    rr.response.data = (uint8_t *)r->response;
    rr.response.len  = r->response_len;
    rr.items.data    = (uint8_t *)r->items;
    rr.items.len     = r->items_len;
    m.body_case      = TOLLGATE__V1__PDP_RESPONSE__BODY_RESP_REPLY;
    m.resp_reply     = &rr;
    return pdp_wire__pack(&m.base, out);
}

void
pdp_wire_request_release(pdp_req *req)
{
    if (req->kind == PDP_REQ_RESP_PUT) {
        free(req->u.resp.response);
        free(req->u.resp.items);
        req->u.resp.response = NULL;
        req->u.resp.items    = NULL;
    }
    req->kind = 0;
}
