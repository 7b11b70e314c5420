/* pdp_decide.h - turns one Decide request into a Decision: authenticate the
 * virtual key, check the model against the key and the deployments catalog,
 * then evaluate the policy bundle (with the key's and its tenant's
 * attributes) and list the deployments to route to. A pure function of
 * (snapshot, config, bundle, request): thread-safe, no I/O beyond the read.
 * Called by pdp_server; budgets and rate limits of later issues slot in
 * after the policy. */
#ifndef PDP_DECIDE_H
#define PDP_DECIDE_H

#include "pdp_limits.h"
#include "pdp_policy.h"
#include "pdp_store.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"
#include "tg_pricing.h"

/* pdp_decide_eval fills *out (fully overwritten). Order: the key (401),
 * the model (400 model_required), the key's own model list (403
 * model_not_allowed), the catalog (404 model_not_found), then bundle b
 * (NULL: no bundle configured, every catalog deployment allowed, revision
 * 0). Every decision made with a bundle carries its revision and hash.
 * For ENDPOINT_MODELS the list holds the models the key may use that the
 * bundle would allow for a chat request by this key.
 * A deny is TG_OK with verdict DENY and status/error_type/error_code/
 * message set. Returns an error only when the store cannot be read; then
 * *out is a deny too, so a caller that ignores the error still fails
 * closed.
 * Borrows: rd, which must be inside pdp_store_read_begin; cfg; b; req. */
tg_err pdp_decide_eval(pdp_store_reader *rd, const tg_config *cfg,
                       const pdp_bundle *b, const tg_decide *req,
                       tg_decision *out);

/* pdp_decide_eval_limits is pdp_decide_eval that also applies the matched
 * rate_limit rules of an allowed request against lim (NULL: rate limits
 * are not applied). Enforced rules are checked and reserved atomically:
 * either out is an allow with a reservation_id (when a slot or tokens are
 * held; release it with pdp_limits_release on the usage report) and
 * limits "requests"/"tokens" of the most constraining rule, or a deny 429
 * code rate_limit_exceeded, type "requests" or "tokens", with nothing
 * reserved and an extra limits entry "retry" whose reset_ms says when to
 * retry. Audit rules are counted in a shadow window and only logged.
 * Budgets and rate limits set through administration (pdp_store quotas)
 * apply with or without a bundle; a budget prices the request with the
 * bundle's table, else pr (pdp.pricing_file; NULL: none), and a
 * deployment's own pricing wins. An allow that no budget or rate limit
 * applies to, with no rule reading the time, is marked reusable
 * (reuse_ms, reuse_inputs; never with lim NULL, which skips the quotas).
 * Borrows: lim (thread-safe), pr. */
tg_err pdp_decide_eval_limits(pdp_store_reader *rd, const tg_config *cfg,
                              const pdp_bundle *b, pdp_limits *lim,
                              const tg_pricing *pr, const tg_decide *req,
                              tg_decision *out);

/* A sidecar PDP admits budgets and rate limits against the leases its
 * central PDP grants (pdp_upstream_admit) instead of its own limits: fn
 * has pdp_limits_check_budgets's contract, and returns an error when the
 * capacity could not be had because the central PDP did not answer (the
 * request is then denied with 503 pdp_upstream_unavailable). */
typedef struct pdp_decide_admit {
    tg_err (*fn)(void *arg, const char *id, const pdp_limits_req *reqs,
                 uint32_t n, const pdp_limits_budget *buds, uint32_t nb,
                 const pdp_limits_cost *cost, int64_t tokens, int64_t now_ms,
                 pdp_limits_result *out);
    void *arg;
} pdp_decide_admit;

/* pdp_decide_deny_upstream makes out the deny of a request that needs
 * capacity from a central PDP that is not answering (503
 * pdp_upstream_unavailable). */
void pdp_decide_deny_upstream(tg_decision *out);

/* pdp_decide_eval_leased is pdp_decide_eval_limits with the enforced
 * checks going through ad (NULL: lim, as pdp_decide_eval_limits). The
 * audit rules' shadow counts stay in lim. TG_EAGAIN (from ad->fn): not
 * decided yet, nothing held: decide again later (the audit shadow counts
 * again then). */
tg_err pdp_decide_eval_leased(pdp_store_reader *rd, const tg_config *cfg,
                              const pdp_bundle *b, pdp_limits *lim,
                              const pdp_decide_admit *ad,
                              const tg_pricing *pr, const tg_decide *req,
                              tg_decision *out);

#endif
