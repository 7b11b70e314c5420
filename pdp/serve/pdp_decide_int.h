/* pdp_decide_int.h - what pdp_decide.c shares with pdp_decide_models.c
 * (a Decide with fallback models): the working set of one decision and
 * the stages both use. Internal to pdp/serve; thread-safe as
 * pdp_decide.h. */
#ifndef PDP_DECIDE_INT_H
#define PDP_DECIDE_INT_H

#include "pdp_decide.h"

/* The working set of one decision. */
typedef struct pdp_decide_ctx {
    pdp_key           k;
    pdp_tenant        t;
    pdp_attrs         a;
    pdp_policy_result r;
} pdp_decide_ctx;

/* pdp_decide__copy is snprintf(dst, cap, "%s", src) without the format
 * machinery, which showed up as a quarter of a decision's time. */
void pdp_decide__copy(char *dst, size_t cap, const char *src);

/* pdp_decide__deny makes d a deny: status, OpenAI error type and code,
 * and the client's message; no targets, models or guardrails. */
void pdp_decide__deny(tg_decision *d, uint32_t status, const char *type,
                      const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* pdp_decide__model checks model (given, allowed to the key, in the
 * catalog) and lists its deployments, then its model group's fallbacks,
 * in out->targets; false, with out a deny, when one of those fails. */
bool pdp_decide__model(const tg_config *cfg, const char *model,
                       const pdp_decide_ctx *x, tg_decision *out);

/* pdp_decide__group_strategy is the model group's strategy (ordered when
 * it names none). */
tg_route_strategy pdp_decide__group_strategy(const tg_config *cfg,
                                             const char      *model);

/* pdp_decide__policy applies the bundle's result r to out (whose targets
 * hold the catalog's deployments for the model). */
void pdp_decide__policy(const pdp_policy_result *r, tg_decision *out);

/* pdp_decide__models decides a request with fallback models
 * (req->n_fallback_models > 0): `model`, then each fallback model, judged
 * as if asked for alone (the key's models, the catalog, the bundle with
 * the same attributes but that model). out is the decision of the first
 * allowed one, with the deployments of each later allowed one (its own
 * deployments, as its route rules leave them) appended in order, the
 * union of their guardrail obligations, the highest capture level, and
 * the enforced rules that denied a skipped model among the matched rules
 * (effect "deny"). On return x->a.model is the first allowed model and
 * x->r its result with the rate_limit and budget rules every allowed
 * model matched, for pdp_decide_limits. When none is allowed out is the
 * first model's deny, its message naming each model and why. TG_ENOMEM:
 * out is a 503. */
tg_err pdp_decide__models(const tg_config *cfg, const pdp_bundle *b,
                          const tg_decide *req, pdp_decide_ctx *x,
                          tg_decision *out);

#endif
