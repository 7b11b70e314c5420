/* pdp_decision_log.h - the decision log through the admin API: list (with
 * filters, newest first, paged), one record by request id, export (JSONL
 * with checkpoints, for an auditor or a SIEM), verify, the public key.
 * Thread-safe: each call reads through the store. */
#ifndef PDP_DECISION_LOG_H
#define PDP_DECISION_LOG_H

#include "pdp_api_call.h"

/* The handlers of pdp_api's route table:
 *   GET decisions?since=&until=&tenant=&key=&verdict=&rule=&audit_hits=
 *                 &model=&limit=&before=&format=table|json|jsonl
 *   GET decisions/export?since=&until=      JSONL (checkpoints included)
 *   GET decisions/verify                    the chain and its signatures
 *   GET decisions/public-key                PEM
 *   GET decisions/REQUEST_ID                one record
 *   POST decisions/prune {"before": WHEN}   retention by hand (audited) */
unsigned pdp_decision_log_list(pdp_api_call *c);
unsigned pdp_decision_log_export(pdp_api_call *c);
unsigned pdp_decision_log_verify(pdp_api_call *c);
unsigned pdp_decision_log_public_key(pdp_api_call *c);
unsigned pdp_decision_log_show(pdp_api_call *c);
unsigned pdp_decision_log_prune(pdp_api_call *c);

#endif
