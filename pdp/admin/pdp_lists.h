/* pdp_lists.h - guardrail term lists, the admin API's resource lists/:
 * the JSON of a list, reading a request's terms (every rule of a term is
 * pdp_terms', said per term) and the records the API answers with.
 * Guardrail rules of a policy bundle name lists ("lists": ["rivals"]);
 * the PDP reads them from the store. The terms never go into the audit
 * trail or the log: a change's audit line says its version and count.
 * Thread-safe: each call reads and writes only through the store. */
#ifndef PDP_LISTS_H
#define PDP_LISTS_H

#include "pdp_api_call.h"

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status.
 *   GET lists                 pdp_lists_list: names, versions, counts
 *   GET lists/NAME            pdp_lists_show: the terms, version, when and
 *                             by whom last changed
 *   PUT lists/NAME            pdp_lists_put: {"terms": [...]} replaces
 *                             every term (201 when it made the list);
 *                             terms are trimmed, duplicates dropped
 *                             ("duplicates_dropped"); "changed" is false
 *                             when the list had these terms already (no
 *                             new version, no audit line)
 *   DELETE lists/NAME         pdp_lists_delete
 *   GET lists/NAME/history    pdp_lists_history: its changes, newest
 *                             first (?limit=N, default 100), also after
 *                             it was deleted */
unsigned pdp_lists_list(pdp_api_call *c);
unsigned pdp_lists_show(pdp_api_call *c);
unsigned pdp_lists_put(pdp_api_call *c);
unsigned pdp_lists_delete(pdp_api_call *c);
unsigned pdp_lists_history(pdp_api_call *c);

#endif
