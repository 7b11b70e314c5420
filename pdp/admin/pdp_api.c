/* pdp_api.c - the route table of the admin API and the request plumbing
 * around it: split the path, parse the body, find the route, and never
 * send an answer with a piece missing. Every rule lives in the resource
 * modules the table names. */
#include "pdp_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_decision_log.h"
#include "pdp_keys.h"
#include "pdp_lists.h"
#include "pdp_quotas.h"
#include "pdp_records.h"
#include "pdp_tenants.h"
#include "tg_json.h"
#include "tg_time.h"

/* One route: a method and a path after PDP_API_PREFIX whose segments are
 * matched one by one, "*" matching any segment (the handler reads it from
 * c->seg), and the variant of the handler it is (c->how). */
typedef struct pdp_api_row {
    const char *method;
    const char *path;
    unsigned (*fn)(pdp_api_call *c);
    int how;
} pdp_api_row;

static const pdp_api_row pdp_api_routes[] = {
    {"GET", "tenants", pdp_tenants_list, 0},
    {"POST", "tenants", pdp_tenants_write, PDP_TENANTS_CREATE},
    {"PUT", "tenants/*", pdp_tenants_write, PDP_TENANTS_SET},
    {"GET", "tenants/*", pdp_tenants_show, 0},
    {"PATCH", "tenants/*", pdp_tenants_write, PDP_TENANTS_UPDATE},
    {"DELETE", "tenants/*", pdp_tenants_delete, 0},
    {"POST", "tenants/*/disable", pdp_tenants_switch, PDP_TENANTS_DISABLE},
    {"POST", "tenants/*/enable", pdp_tenants_switch, PDP_TENANTS_ENABLE},
    {"GET", "keys", pdp_keys_list, 0},
    {"POST", "keys", pdp_keys_create, 0},
    {"GET", "keys/*", pdp_keys_show, 0},
    {"POST", "keys/*/revoke", pdp_keys_revoke, 0},
    {"POST", "keys/*/rotate", pdp_keys_rotate, 0},
    {"GET", "ratelimits", pdp_quotas_list, PDP_QUOTAS_RATES},
    {"GET", "ratelimits/*/*", pdp_quotas_show, PDP_QUOTAS_RATES},
    {"PUT", "ratelimits/*/*", pdp_quotas_put, PDP_QUOTAS_RATES},
    {"DELETE", "ratelimits/*/*", pdp_quotas_delete, PDP_QUOTAS_RATES},
    {"GET", "budgets", pdp_quotas_list, PDP_QUOTAS_BUDGETS},
    {"GET", "budgets/*/*", pdp_quotas_show, PDP_QUOTAS_BUDGETS},
    {"PUT", "budgets/*/*", pdp_quotas_put, PDP_QUOTAS_BUDGETS},
    {"DELETE", "budgets/*/*", pdp_quotas_delete, PDP_QUOTAS_BUDGETS},
    {"GET", "spend", pdp_records_spend, 0},
    {"GET", "audit", pdp_records_audit, 0},
    {"GET", "usage", pdp_records_usage, 0},
    {"GET", "reservations", pdp_records_reservations, 0},
    {"POST", "reservations/*/release", pdp_records_release, 0},
    {"GET", "decisions", pdp_decision_log_list, 0},
    {"GET", "decisions/export", pdp_decision_log_export, 0},
    {"GET", "decisions/verify", pdp_decision_log_verify, 0},
    {"GET", "decisions/public-key", pdp_decision_log_public_key, 0},
    {"GET", "decisions/*", pdp_decision_log_show, 0},
    {"POST", "decisions/prune", pdp_decision_log_prune, 0},
    {"GET", "lists", pdp_lists_list, 0},
    {"GET", "lists/*", pdp_lists_show, 0},
    {"PUT", "lists/*", pdp_lists_put, 0},
    {"DELETE", "lists/*", pdp_lists_delete, 0},
    {"GET", "lists/*/history", pdp_lists_history, 0},
};

/* pdp_api_matches: route r is c's method and path. */
static bool
pdp_api_matches(const pdp_api_call *c, const pdp_api_row *r)
{
    const char *p = r->path;
    uint32_t    i = 0;

    if (strcmp(c->method, r->method) != 0) {
        return false;
    }
    for (; i < c->nseg && *p != '\0'; i++) {
        size_t n = strcspn(p, "/");

        if (!(n == 1 && *p == '*') &&
            (strlen(c->seg[i]) != n || strncmp(c->seg[i], p, n) != 0)) {
            return false;
        }
        p += n + (p[n] == '/');
    }
    return i == c->nseg && *p == '\0';
}

static unsigned
pdp_api_route(pdp_api_call *c)
{
    if (c->nseg == 0) {
        return pdp_api_err(c, 404, "not_found",
                           "Resources: tenants, keys, budgets, ratelimits, "
                           "spend, usage, audit, reservations, decisions, "
                           "lists "
                           "(under "
                           "/admin/v1/).");
    }
    for (size_t i = 0; i < sizeof(pdp_api_routes) / sizeof(pdp_api_routes[0]);
         i++) {
        if (pdp_api_matches(c, &pdp_api_routes[i])) {
            c->how = pdp_api_routes[i].how;
            return pdp_api_routes[i].fn(c);
        }
    }
    return pdp_api_err(c, 404, "not_found",
                       "No %s %s%s here. See the README's \"Admin API\" for "
                       "the resources and their methods.",
                       c->method, PDP_API_PREFIX, c->seg[0]);
}

pdp_api_reply
pdp_api_handle(const pdp_api_ctx *x, const char *method, const char *path,
               const char *query, const char *body, size_t len, tg_buf *out)
{
    pdp_api_call *c    = calloc(1, sizeof(*c));
    pdp_api_reply r    = {500, "application/json"};
    size_t        plen = strlen(PDP_API_PREFIX);
    char          err[512];
    char         *p;

    if (c == NULL) {
        tg_buf_addf(out, "{\"error\":{\"code\":\"internal\",\"message\":"
                         "\"out of memory\"}}\n");
        return r;
    }
    c->x      = x;
    c->method = method;
    c->query  = query;
    c->out    = out;
    c->now_ms = x->now_ms > 0 ? x->now_ms : tg_now_ms();
    if (strncmp(path, PDP_API_PREFIX, plen) != 0 ||
        strlen(path + plen) >= sizeof(c->segbuf)) {
        r.status = pdp_api_err(c, 404, "not_found", "No such path.");
        goto out;
    }
    snprintf(c->segbuf, sizeof(c->segbuf), "%s", path + plen);
    for (p = c->segbuf; *p != '\0' && c->nseg < PDP_API_SEGS;) {
        char *slash       = strchr(p, '/');
        c->seg[c->nseg++] = p;
        if (slash == NULL) {
            break;
        }
        *slash = '\0';
        p      = slash + 1;
        if (*p == '\0') {
            break; /* a trailing slash */
        }
    }
    if (body != NULL && len > 0) {
        if (tg_json_doc_parse(&c->doc, "request body", body, len, err,
                              sizeof(err)) != TG_OK) {
            r.status = pdp_api_err(c, 400, "invalid_json",
                                   "%s. Send a JSON object.", err);
            goto out;
        }
        c->body = tg_json_doc_root(c->doc);
    }
    r.status = pdp_api_route(c);
    if (c->ctype != NULL) {
        r.ctype = c->ctype;
    }
    if (tg_buf_error(out) != TG_OK) {
        /* Never an answer with a piece missing. */
        bool big = tg_buf_error(out) == TG_ETOOBIG;

        r.status = pdp_api_err(c, big ? 507 : 500,
                               big ? "answer_too_large" : "internal",
                               big ? "The answer is larger than this "
                                     "interface sends; ask for less (e.g. "
                                     "limit=, tenant=, from=/to=)."
                                   : "out of memory");
        r.ctype  = "application/json";
    }
out:
    tg_json_doc_destroy(c->doc);
    free(c);
    return r;
}
