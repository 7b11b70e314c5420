/* pdp_decide_models.c - a Decide with fallback models (OpenRouter's
 * "models", pdp_decide_int.h). A client may narrow or reorder what policy
 * allows, never widen it: every model is judged exactly as if it had been
 * asked for alone, and one that is denied contributes nothing but the
 * record of why. Rate limits scoped to the model count under the first
 * allowed model; budgets reserve the worst price of every target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_decide_int.h"
#include "tg_log.h"

/* What a multi-model decision holds beside the caller's: one model's own
 * decision, and the first allowed model's policy result. */
typedef struct pdp_dm {
    tg_decision       one;
    pdp_policy_result first;
    char              why[TG_MSG_TEXT_MAX]; /* "'m' (code), ..." */
    size_t            why_len;
    tg_rule_match     denied[TG_MSG_RULES_MAX]; /* rules that denied one */
    uint32_t          n_denied;
} pdp_dm;

/* pdp_dm_judge decides model m alone into dm->one (x->r: its policy
 * result, x->a.model: m). True when it is allowed. */
static bool
pdp_dm_judge(const tg_config *cfg, const pdp_bundle *b, const char *m,
             pdp_decide_ctx *x, pdp_dm *dm)
{
    tg_decision *d = &dm->one;

    memset(d, 0, sizeof(*d));
    memset(&x->r, 0, sizeof(x->r));
    pdp_decide__copy(x->a.model, sizeof(x->a.model), m);
    if (!pdp_decide__model(cfg, m, x, d)) {
        return false;
    }
    d->verdict  = TG_VERDICT_ALLOW;
    d->status   = 200;
    d->strategy = pdp_decide__group_strategy(cfg, m);
    if (b != NULL) {
        pdp_bundle_eval(b, &x->a, &x->r, NULL);
        pdp_decide__policy(&x->r, d);
    }
    return d->verdict == TG_VERDICT_ALLOW;
}

/* pdp_dm_match_add appends rule to list (n of cap) unless it is there. */
static void
pdp_dm_match_add(tg_rule_match *list, uint32_t *n, uint32_t cap,
                 const tg_rule_match *rule)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (strcmp(list[i].rule_id, rule->rule_id) == 0) {
            return;
        }
    }
    if (*n < cap) {
        list[(*n)++] = *rule;
    }
}

/* pdp_dm_skipped records that m was not allowed: its code for the deny
 * message, the enforced deny rules that decided it for the record. */
static void
pdp_dm_skipped(const char *request_id, const char *m, pdp_dm *dm)
{
    const tg_decision *d    = &dm->one;
    bool               rule = false;
    int                w;

    for (uint32_t i = 0; i < d->n_matched; i++) {
        if (d->matched[i].enforced &&
            strcmp(d->matched[i].effect, "deny") == 0) {
            pdp_dm_match_add(dm->denied, &dm->n_denied, TG_MSG_RULES_MAX,
                             &d->matched[i]);
            rule = true;
        }
    }
    w = snprintf(dm->why + dm->why_len, sizeof(dm->why) - dm->why_len,
                 "%s'%.60s' (%s)", dm->why_len > 0 ? ", " : "", m,
                 d->error_code);
    if (w > 0) {
        dm->why_len += (size_t)w;
        if (dm->why_len >= sizeof(dm->why)) {
            dm->why_len = sizeof(dm->why) - 1;
        }
    }
    /* A rule's deny is in the decision record; anything else only here. */
    if (rule) {
        tg_debug("decide %s: fallback model \"%.100s\" skipped: %s", request_id,
                 m, d->error_code);
    } else {
        tg_info("decide %s: fallback model \"%.100s\" skipped: %s", request_id,
                m, d->error_code);
    }
}

/* pdp_dm_guards_merge adds d's guardrail obligations to out's; false
 * when they do not fit (a guardrail is never dropped: the model is
 * skipped instead). */
static bool
pdp_dm_guards_merge(const tg_decision *d, tg_decision *out)
{
    tg_guard_ob add[TG_MSG_GUARDS_MAX];
    uint32_t    n = 0;

    for (uint32_t i = 0; i < d->n_guards; i++) {
        bool seen = false;
        for (uint32_t k = 0; k < out->n_guards && !seen; k++) {
            seen = out->guards[k].index == d->guards[i].index;
        }
        if (!seen) {
            add[n++] = d->guards[i];
        }
    }
    if (out->n_guards + n > TG_MSG_GUARDS_MAX) {
        return false;
    }
    memcpy(&out->guards[out->n_guards], add, n * sizeof(add[0]));
    out->n_guards += n;
    return true;
}

/* pdp_dm_hits_merge adds the rate_limit and budget rules of r that first
 * does not hold yet (by rule id). */
static void
pdp_dm_hits_merge(const pdp_policy_result *r, pdp_policy_result *first)
{
    for (uint32_t i = 0; i < r->n_rate; i++) {
        bool seen = false;
        for (uint32_t k = 0; k < first->n_rate && !seen; k++) {
            seen = strcmp(first->rate[k].rule_id, r->rate[i].rule_id) == 0;
        }
        if (!seen && first->n_rate < PDP_RATE_HITS_MAX) {
            first->rate[first->n_rate++] = r->rate[i];
        } else if (!seen) {
            first->n_rate_dropped++;
        }
    }
    for (uint32_t i = 0; i < r->n_budget; i++) {
        bool seen = false;
        for (uint32_t k = 0; k < first->n_budget && !seen; k++) {
            seen = strcmp(first->budget[k].rule_id, r->budget[i].rule_id) == 0;
        }
        if (!seen && first->n_budget < PDP_BUDGET_HITS_MAX) {
            first->budget[first->n_budget++] = r->budget[i];
        } else if (!seen) {
            first->n_budget_dropped++;
        }
    }
}

/* pdp_dm_append adds the allowed model m (its decision dm->one, its
 * result x->r) after those already in out: its own deployments not
 * listed yet, its obligations, rules and limits. False: its guardrails
 * do not fit, so it is skipped. */
static bool
pdp_dm_append(const tg_config *cfg, const char *m, const pdp_decide_ctx *x,
              pdp_dm *dm, tg_decision *out)
{
    const tg_decision *d = &dm->one;

    if (!pdp_dm_guards_merge(d, out)) {
        return false;
    }
    for (uint32_t i = 0; i < d->n_targets; i++) {
        const tg_deployment *dep =
            tg_config_deployment(cfg, d->targets[i].deployment_id);
        bool seen = false;
        if (dep == NULL || strcmp(dep->model, m) != 0) {
            continue; /* its fallbacks: listed in "models" when wanted */
        }
        for (uint32_t k = 0; k < out->n_targets && !seen; k++) {
            seen = strcmp(out->targets[k].deployment_id,
                          d->targets[i].deployment_id) == 0;
        }
        if (!seen && out->n_targets < TG_MSG_TARGETS_MAX) {
            out->targets[out->n_targets++] = d->targets[i];
        }
    }
    for (uint32_t i = 0; i < d->n_matched; i++) {
        pdp_dm_match_add(out->matched, &out->n_matched, TG_MSG_RULES_MAX,
                         &d->matched[i]);
    }
    if (d->capture_level > out->capture_level) {
        out->capture_level = d->capture_level;
        out->log_shed      = d->log_shed;
    }
    out->audit_hits_header = out->audit_hits_header || d->audit_hits_header;
    pdp_dm_hits_merge(&x->r, &dm->first);
    return true;
}

/* pdp_dm_take makes the first allowed model's decision out's. */
static void
pdp_dm_take(const pdp_dm *dm, tg_decision *out)
{
    const tg_decision *d = &dm->one;

    out->verdict = TG_VERDICT_ALLOW;
    out->status  = 200;
    memcpy(out->targets, d->targets, sizeof(out->targets));
    out->n_targets = d->n_targets;
    out->strategy  = d->strategy;
    memcpy(out->matched, d->matched, sizeof(out->matched));
    out->n_matched         = d->n_matched;
    out->capture_level     = d->capture_level;
    out->log_shed          = d->log_shed;
    out->audit_hits_header = d->audit_hits_header;
    memcpy(out->guards, d->guards, sizeof(out->guards));
    out->n_guards = d->n_guards;
}

/* pdp_dm_none makes out the deny when no model may be used: the first
 * model's status and code, a message naming each model and why. */
static void
pdp_dm_none(uint32_t n, pdp_dm *dm, const tg_decision *first_deny,
            tg_decision *out)
{
    pdp_decide__deny(out, first_deny->status,
                     first_deny->error_type[0] ? first_deny->error_type
                                               : "invalid_request_error",
                     first_deny->error_code,
                     "None of the %u models asked for may be used: %s. "
                     "The first one's reason: %s",
                     n, dm->why, first_deny->message);
    out->n_matched = 0;
    for (uint32_t i = 0; i < dm->n_denied; i++) {
        pdp_dm_match_add(out->matched, &out->n_matched, TG_MSG_RULES_MAX,
                         &dm->denied[i]);
    }
}

tg_err
pdp_decide__models(const tg_config *cfg, const pdp_bundle *b,
                   const tg_decide *req, pdp_decide_ctx *x, tg_decision *out)
{
    const char  *list[1 + TG_MSG_FALLBACK_MODELS_MAX];
    uint32_t     n     = 0;
    int          first = -1;
    pdp_dm      *dm    = calloc(1, sizeof(*dm));
    tg_decision *deny0 = calloc(1, sizeof(*deny0));

    if (dm == NULL || deny0 == NULL) {
        free(dm);
        free(deny0);
        pdp_decide__deny(out, 503, "server_error", "pdp_unavailable",
                         "The gateway ran out of memory deciding this "
                         "request; retry.");
        return TG_ENOMEM;
    }
    list[n++] = req->model;
    for (uint32_t i = 0; i < req->n_fallback_models; i++) {
        bool dup = false;
        for (uint32_t k = 0; k < n && !dup; k++) {
            dup = strcmp(list[k], req->fallback_models[i]) == 0;
        }
        if (!dup) {
            list[n++] = req->fallback_models[i];
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        bool ok = pdp_dm_judge(cfg, b, list[i], x, dm);
        if (ok && first < 0) {
            first = (int)i;
            pdp_dm_take(dm, out);
            dm->first = x->r;
        } else if (ok && !pdp_dm_append(cfg, list[i], x, dm, out)) {
            pdp_decide__copy(dm->one.error_code, sizeof(dm->one.error_code),
                             "too_many_guardrails");
            ok = false;
        }
        if (!ok) {
            if (i == 0) {
                *deny0 = dm->one;
            }
            pdp_dm_skipped(req->request_id, list[i], dm);
        }
    }
    if (first < 0) {
        pdp_dm_none(n, dm, deny0, out);
    } else {
        /* The record says which models were refused, by which rules. */
        for (uint32_t i = 0; i < dm->n_denied; i++) {
            pdp_dm_match_add(out->matched, &out->n_matched, TG_MSG_RULES_MAX,
                             &dm->denied[i]);
        }
        pdp_decide__copy(x->a.model, sizeof(x->a.model), list[first]);
        x->r = dm->first;
    }
    free(dm);
    free(deny0);
    return TG_OK;
}
