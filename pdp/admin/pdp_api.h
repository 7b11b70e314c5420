/* pdp_api.h - the administration API as one function: (method, path,
 * query, JSON body) -> (HTTP status, JSON). Tenants, keys, budgets, rate
 * limits, spend, usage, reservations, the audit trail and guardrail term
 * lists, each in its own module (pdp_tenants, pdp_keys, pdp_quotas,
 * pdp_records, pdp_lists) that holds its rules; this one holds the route table.
 * pdp_admin serves it under /admin/v1/ once the admin token is checked; the CLI
 * calls it in process against the state directory, or sends the same request to
 * a PDP's admin URL, so the two can never disagree. Every change is recorded in
 * the audit trail with the actor. Thread-safe: nothing but the store (which is)
 * is shared. */
#ifndef PDP_API_H
#define PDP_API_H

#include <stddef.h>

#include "pdp_api_call.h"
#include "tg_buf.h"

/* An answer: the status and body (JSON unless ctype says otherwise). */
typedef struct pdp_api_reply {
    unsigned    status;
    const char *ctype; /* static string */
} pdp_api_reply;

/* pdp_api_handle answers one request. path starts with PDP_API_PREFIX;
 * query is the raw query string ("" or NULL: none); body may be NULL.
 * Errors are {"error":{"code","message"}} with a 4xx/5xx status: 404
 * not_found for a path or a method the API does not have, 400
 * invalid_json for a body that does not parse, 400 unknown_field for a
 * member a resource does not take. Appends to out. Borrows everything
 * until return. */
pdp_api_reply pdp_api_handle(const pdp_api_ctx *x, const char *method,
                             const char *path, const char *query,
                             const char *body, size_t len, tg_buf *out);

#endif
