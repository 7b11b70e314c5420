/* fuzz_pdp_wire.c - the PDP's wire decoder (pdp_wire_decode_request) on
 * any bytes a data plane or a stranger on the socket may send; what
 * decodes must encode again (with the data plane's encoders, dp_wire) and
 * decode to a request of the same kind and id. The client half
 * (pdp_wire_decode_reply) gets the same bytes. Input: one PdpRequest or
 * PdpResponse. */
#include "dp_wire.h"
#include "fuzz_util.h"
#include "pdp_wire.h"

/* fuzz_reencode encodes req as the data plane (or, for Hello, the test
 * client half) would. */
static tg_err
fuzz_reencode(const pdp_req *req, tg_buf *b)
{
    static uint8_t buf[1 << 20];
    size_t         len = 0;
    tg_err         rv;

    switch (req->kind) {
    case PDP_REQ_DECIDE:
        rv = dp_wire_encode_decide(&req->u.decide, buf, sizeof(buf), &len);
        break;
    case PDP_REQ_USAGE:
        rv = dp_wire_encode_usage(&req->u.usage, buf, sizeof(buf), &len);
        break;
    case PDP_REQ_PING:
        rv = dp_wire_encode_ping(req->request_id, req->u.ping_sent_ms, buf,
                                 sizeof(buf), &len);
        break;
    case PDP_REQ_USAGE_BATCH:
        rv =
            dp_wire_encode_usage_batch(req->u.batch.items, req->u.batch.n,
                                       req->request_id, buf, sizeof(buf), &len);
        break;
    default:
        return pdp_wire_encode_request(req, b);
    }
    return rv != TG_OK ? rv : tg_buf_append(b, buf, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pdp_req req, again;
    static pdp_rep rep, rep2;
    char           err[256] = "";
    tg_buf         b;

    tg_buf_init(&b, 1 << 20);
    if (pdp_wire_decode_request(data, size, 65536, &req, err, sizeof(err)) ==
        TG_OK) {
        tg_err rv = fuzz_reencode(&req, &b);
        if (rv != TG_OK ||
            pdp_wire_decode_request(b.data, b.len, 0, &again, err,
                                    sizeof(err)) != TG_OK ||
            again.kind != req.kind ||
            strcmp(again.request_id, req.request_id) != 0) {
            fprintf(stderr,
                    "fuzz_pdp_wire: kind %d: round trip failed: "
                    "%s (%s)\n",
                    (int)req.kind, tg_strerror(rv), err);
            abort();
        }
    }
    tg_buf_reset(&b);
    if (pdp_wire_decode_reply(data, size, 65536, &rep, err, sizeof(err)) ==
        TG_OK) {
        if (pdp_wire_encode_reply(&rep, &b) != TG_OK ||
            pdp_wire_decode_reply(b.data, b.len, 0, &rep2, err, sizeof(err)) !=
                TG_OK ||
            rep2.kind != rep.kind) {
            fprintf(stderr, "fuzz_pdp_wire: reply round trip failed: %s\n",
                    err);
            abort();
        }
        pdp_wire_reply_release(&rep2); /* the decoder's caller owns it */
    }
    pdp_wire_reply_release(&rep);
    tg_buf_fini(&b);
    return 0;
}
