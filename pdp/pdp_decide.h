/* pdp_decide.h - turns one Decide request into a Decision: authenticate the
 * virtual key, check the model against the key and the deployments catalog,
 * list the deployments to route to. A pure function of (snapshot, config,
 * request): thread-safe, no I/O beyond the read. Called by pdp_server; the
 * policy engine, budgets and rate limits of later issues slot in after the
 * key and model checks. */
#ifndef PDP_DECIDE_H
#define PDP_DECIDE_H

#include "pdp_store.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"

/* pdp_decide_eval fills *out (fully overwritten). A deny is TG_OK with
 * verdict DENY and status/error_type/error_code/message set. Returns an
 * error only when the store cannot be read; then *out is a deny too, so a
 * caller that ignores the error still fails closed.
 * Borrows: rd, which must be inside pdp_store_read_begin; cfg; req. */
tg_err pdp_decide_eval(pdp_store_reader *rd, const tg_config *cfg,
                       const tg_decide *req, tg_decision *out);

#endif
