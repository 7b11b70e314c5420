/* pdp_wire_int.h - what pdp_wire.c shares with pdp_wire_up.c (the
 * messages between a sidecar PDP and its central PDP) and nothing else may
 * include. */
#ifndef PDP_WIRE_INT_H
#define PDP_WIRE_INT_H

#include "pdp_wire.h"
#include "tollgate/v1/pdp.pb-c.h"

/* pdp_wire__pack encodes msg into out (replacing its content). */
tg_err pdp_wire__pack(const ProtobufCMessage *msg, tg_buf *out);

/* pdp_wire__str copies a wire string into dst; TG_EPROTO (reason in err)
 * when it does not fit. */
tg_err pdp_wire__str(char *dst, size_t cap, const char *src,
                     const char *field, char *err, size_t errlen);

/* The upstream bodies: TG_ENOTFOUND when in holds none of them. */
tg_err pdp_wire__up_request_in(const Tollgate__V1__PdpRequest *in,
                               pdp_req *out, char *err, size_t errlen);
tg_err pdp_wire__up_reply_in(const Tollgate__V1__PdpResponse *in,
                             pdp_rep *out, char *err, size_t errlen);
tg_err pdp_wire__up_encode_request(const pdp_req *req, tg_buf *out);
tg_err pdp_wire__up_encode_reply(const pdp_rep *rep, tg_buf *out);

/* The stored Responses bodies (pdp_wire_resp.c): TG_ENOTFOUND when in
 * holds none of them; the encoders TG_EINVAL on another kind. */
tg_err pdp_wire__resp_request_in(const Tollgate__V1__PdpRequest *in,
                                 pdp_req *out, char *err, size_t errlen);
tg_err pdp_wire__resp_reply_in(const Tollgate__V1__PdpResponse *in,
                               pdp_rep *out, char *err, size_t errlen);
tg_err pdp_wire__resp_encode_request(const pdp_req *req, tg_buf *out);
tg_err pdp_wire__resp_encode_reply(const pdp_rep *rep, tg_buf *out);

#endif
