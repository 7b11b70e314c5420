/* pdp_quotas.h - budgets and rate limits set through administration, one
 * quota per tenant or key (the admin API's budgets/ and ratelimits/):
 * their rules (USD read exactly, budget calendar windows, thresholds,
 * limits' ranges) and the records the API answers with, a budget with its
 * window's spent, reserved and remaining USD. Thread-safe: each call
 * reads and writes only through the store (and the limits, which are). */
#ifndef PDP_QUOTAS_H
#define PDP_QUOTAS_H

#include <stdbool.h>

#include "pdp_api_call.h"
#include "pdp_store.h"

/* pdp_quotas_target parses "tenant:ID" or "key:ID"; *id points into s. */
bool pdp_quotas_target(const char *s, pdp_quota_scope *scope, const char **id);

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status. T is tenant or key.
 *   GET budgets                 pdp_quotas_budgets_list
 *   GET budgets/T/ID            pdp_quotas_budgets_show
 *   PUT budgets/T/ID            pdp_quotas_budgets_put
 *   DELETE budgets/T/ID         pdp_quotas_budgets_delete
 *   GET ratelimits              pdp_quotas_rates_list
 *   GET ratelimits/T/ID         pdp_quotas_rates_show
 *   PUT ratelimits/T/ID         pdp_quotas_rates_put
 *   DELETE ratelimits/T/ID      pdp_quotas_rates_delete */
unsigned pdp_quotas_budgets_list(pdp_api_call *c);
unsigned pdp_quotas_budgets_show(pdp_api_call *c);
unsigned pdp_quotas_budgets_put(pdp_api_call *c);
unsigned pdp_quotas_budgets_delete(pdp_api_call *c);
unsigned pdp_quotas_rates_list(pdp_api_call *c);
unsigned pdp_quotas_rates_show(pdp_api_call *c);
unsigned pdp_quotas_rates_put(pdp_api_call *c);
unsigned pdp_quotas_rates_delete(pdp_api_call *c);

#endif
