/* dp_resp_api.h - the stored Responses API endpoints of the data plane:
 * GET /v1/responses/{id}, DELETE /v1/responses/{id} and
 * GET /v1/responses/{id}/input_items, answered from the PDP's responses
 * database (dp_pdp_resp) for the tenant of the presented virtual key. The
 * MHD thread parses and checks the request; the PDP's reply (an nng
 * thread) fills the answer and resumes the connection. */
#ifndef DP_RESP_API_H
#define DP_RESP_API_H

#include <stdbool.h>
#include <stdint.h>

#include "dp_wire.h"

typedef struct dp_resp_api {
    dp_wire_resp_op op;    /* DP_RESP_GET or DP_RESP_DEL */
    bool            items; /* .../input_items */
    char            id[96];
    int64_t         limit;
    bool            asc;
    char            after[128]; /* "": from the start */
} dp_resp_api;

/* dp_resp_api_parse reads url (under /v1/responses/), method and the
 * input_items query (limit, order, after) into out. Returns 0, or the
 * HTTP status of the client's error (404 an unknown path, 405 a method
 * the path does not take, 400 a bad query value) with msg, the param at
 * fault ("" none) and the error code. */
unsigned dp_resp_api_parse(const char *url, const char *method,
                           const char *limit, const char *order,
                           const char *after, dp_resp_api *out, char *msg,
                           size_t msglen, const char **param,
                           const char **code);

struct dp_req;
struct dp_pdp;

/* dp_resp_api_start asks the PDP for r's operation (r->rapi) with r's key;
 * the reply fills r's answer and resumes it (r must be suspended before,
 * and is referenced until then). TG_OK, or the error of starting the call
 * (nothing will resume r: the caller answers). */
tg_err dp_resp_api_start(struct dp_pdp *pdp, struct dp_req *r,
                         int64_t timeout_ms);

#endif
