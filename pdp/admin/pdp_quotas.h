/* pdp_quotas.h - budgets and rate limits set through administration, one
 * quota per tenant or key (the admin API's budgets/ and ratelimits/):
 * their rules (USD read exactly, budget calendar windows, thresholds,
 * limits' ranges) and the records the API answers with, a budget with its
 * window's spent, reserved and remaining USD. Thread-safe: each call
 * reads and writes only through the store (and the limits, which are). */
#ifndef PDP_QUOTAS_H
#define PDP_QUOTAS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "pdp_api_call.h"
#include "pdp_store.h"

/* pdp_quotas_target parses "tenant:ID" or "key:ID"; *id points into s. */
bool pdp_quotas_target(const char *s, pdp_quota_scope *scope, const char **id);

/* The body members a budget and rate limits are given with (PUT budgets/,
 * PUT ratelimits/ and POST keys), NULL-ended. */
extern const char *const pdp_quotas_budget_fields[];
extern const char *const pdp_quotas_rate_fields[];

/* pdp_quotas_budget_read reads a budget from c's body members into q:
 * limit_usd (USD read exactly from the number's text), window, action,
 * thresholds. False with the 400 answer's status in *st when one is
 * missing or wrong. pdp_quotas_rates_read reads rpm, tpm and concurrent
 * (at least one above 0). Neither checks for other members. */
bool pdp_quotas_budget_read(pdp_api_call *c, pdp_quota *q, unsigned *st);
bool pdp_quotas_rates_read(pdp_api_call *c, pdp_quota *q, unsigned *st);

/* pdp_quotas_budget_json renders q's budget with its window now and its
 * spent, reserved (when the limits are known) and remaining spend;
 * pdp_quotas_rate_json its rate limits. Owns: the result. */
cJSON *pdp_quotas_budget_json(pdp_api_call *c, const pdp_quota *q);
cJSON *pdp_quotas_rate_json(const pdp_quota *q);

/* pdp_quotas_warn_unpriced adds "warnings" to doc (an answer) when a model
 * that a budget of key k (NULL: of a tenant, every catalog model) covers
 * has no price: every request for it would be refused (403
 * model_unpriced). Nothing when the prices are not known (c->x->pricing
 * and c->x->bundle NULL). */
void pdp_quotas_warn_unpriced(pdp_api_call *c, const pdp_key *k, cJSON *doc);

/* Which half of a quota a route of pdp_api's table is about
 * (pdp_api_call.how). */
enum {
    PDP_QUOTAS_RATES   = 0, /* ratelimits/ */
    PDP_QUOTAS_BUDGETS = 1, /* budgets/ */
};

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status. R is budgets or ratelimits (c->how), T tenant or key.
 *   GET R             pdp_quotas_list
 *   GET R/T/ID        pdp_quotas_show
 *   PUT R/T/ID        pdp_quotas_put (replaces that half; the other stays;
 *                     a budget answers "warnings" for unpriced models)
 *   DELETE R/T/ID     pdp_quotas_delete */
unsigned pdp_quotas_list(pdp_api_call *c);
unsigned pdp_quotas_show(pdp_api_call *c);
unsigned pdp_quotas_put(pdp_api_call *c);
unsigned pdp_quotas_delete(pdp_api_call *c);

#endif
