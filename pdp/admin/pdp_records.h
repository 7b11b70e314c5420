/* pdp_records.h - what the admin API reads but does not change: the spend
 * report (pdp_spend), the audit trail, the settled usage records and the
 * open reservations (of which one can be released by hand). Thread-safe:
 * each call reads only through the store (and the limits, which are). */
#ifndef PDP_RECORDS_H
#define PDP_RECORDS_H

#include "pdp_api_call.h"

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status.
 *   GET spend?by=&from=&to=&tenant=&format=   pdp_records_spend
 *   GET audit[?limit=N]                       pdp_records_audit
 *   GET usage[?tenant=&key=&limit=]           pdp_records_usage
 *   GET reservations                          pdp_records_reservations
 *   POST reservations/ID/release              pdp_records_release */
unsigned pdp_records_spend(pdp_api_call *c);
unsigned pdp_records_audit(pdp_api_call *c);
unsigned pdp_records_usage(pdp_api_call *c);
unsigned pdp_records_reservations(pdp_api_call *c);
unsigned pdp_records_release(pdp_api_call *c);

#endif
