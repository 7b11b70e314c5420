/* pdp_decide.c - deny messages go to API clients verbatim, so they say what
 * to do and never echo the key; OpenAI's codes are used so SDKs map them to
 * the right exception types (they go by the HTTP status; the type is
 * "invalid_request_error" for a 4xx and "server_error" for a 5xx, as
 * OpenAI's own answers have it). Policy denies carry the rule's code and
 * message. Everything a decision needs fits on the stack (~40 KB). */
#include "pdp_decide.h"
#include "pdp_decide_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tg_pricing.h"
#include "tg_log.h"
#include "tg_time.h"

/* The longest a decision may be reused for (Decision.reuse_ms); a data
 * plane bounds it further (dataplane.decision_reuse_ms). */
#define PDP_DECIDE_REUSE_MAX_MS 60000

void
pdp_decide__copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

void
pdp_decide__deny(tg_decision *d, uint32_t status, const char *type,
                 const char *code, const char *fmt, ...)
{
    va_list ap;

    d->verdict   = TG_VERDICT_DENY;
    d->status    = status;
    d->n_targets = 0;
    d->n_models  = 0;
    /* Nothing goes upstream: no guardrail to run (and a deny names no
     * guard set, so obligations left here would be undecodable). */
    d->n_guards = 0;
    pdp_decide__copy(d->error_type, sizeof(d->error_type), type);
    pdp_decide__copy(d->error_code, sizeof(d->error_code), code);
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof(d->message), fmt, ap);
    va_end(ap);
}

/* pdp_decide_time writes unix ms as RFC 3339 UTC, for messages. */
static void
pdp_decide_time(int64_t ms, char *buf, size_t cap)
{
    time_t    s = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&s, &tm) == NULL ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, cap, "%lld ms since the epoch", (long long)ms);
    }
}

static bool
pdp_decide_key_allows(const pdp_key *k, const char *model)
{
    if (k->n_models == 0) {
        return true;
    }
    for (uint32_t i = 0; i < k->n_models; i++) {
        if (strcmp(k->models[i], model) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_decide_models lists distinct catalog models the key may use, in
 * catalog order; with a bundle, only those a chat request for them would be
 * allowed (x->a holds the request's attributes; model and endpoint are
 * overwritten per model). A time- or token-dependent rule is judged as of
 * now and without max_tokens, so the list is a hint, not a promise. */
static void
pdp_decide_models(const tg_config *cfg, const pdp_bundle *b, pdp_decide_ctx *x,
                  tg_decision *d)
{
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const char *m   = cfg->deployments[i].model;
        bool        dup = false;

        if (!pdp_decide_key_allows(&x->k, m)) {
            continue;
        }
        for (uint32_t j = 0; j < d->n_models && !dup; j++) {
            dup = strcmp(d->models[j], m) == 0;
        }
        if (dup) {
            continue;
        }
        if (b != NULL) {
            x->a.endpoint = TG_EP_CHAT_COMPLETIONS;
            pdp_decide__copy(x->a.model, sizeof(x->a.model), m);
            pdp_bundle_eval(b, &x->a, &x->r, NULL);
            if (x->r.verdict != TG_VERDICT_ALLOW) {
                continue;
            }
        }
        if (d->n_models == TG_MSG_MODELS_MAX) {
            tg_warn("decide: more than %d models in the catalog; /v1/models "
                    "lists the first %d",
                    TG_MSG_MODELS_MAX, TG_MSG_MODELS_MAX);
            break;
        }
        pdp_decide__copy(d->models[d->n_models++], sizeof(d->models[0]), m);
    }
}

/* pdp_decide_attrs fills the attributes rules read. A key whose tenant
 * has no record still has tenant.id; tier and labels are then absent. */
static tg_err
pdp_decide_attrs(pdp_store_reader *rd, const tg_decide *req, pdp_decide_ctx *x)
{
    pdp_attrs *a = &x->a;
    tg_err     rv;

    /* Field by field, not a memset: the label and metadata arrays (most of
     * the struct's 16 KB) are read only up to their counts. Every field of
     * pdp_attrs is set below; a field added there must be set here too. */
    a->tenant_tier[0]  = '\0';
    a->n_tenant_labels = 0;
    pdp_decide__copy(a->key_id, sizeof(a->key_id), x->k.id);
    /* A key issued to a user speaks for that user only. */
    pdp_decide__copy(a->user, sizeof(a->user),
                     x->k.user[0] != '\0' ? x->k.user : req->user);
    a->n_key_labels = x->k.n_labels < PDP_ATTR_LABELS_MAX ? x->k.n_labels
                                                          : PDP_ATTR_LABELS_MAX;
    memcpy(a->key_labels, x->k.labels,
           a->n_key_labels * sizeof(a->key_labels[0]));
    pdp_decide__copy(a->tenant_id, sizeof(a->tenant_id), x->k.tenant);
    x->t.disabled_ms = 0; /* a tenant without a record is enabled */
    rv               = pdp_store_tenant_get(rd, x->k.tenant, &x->t);
    if (rv == TG_OK) {
        pdp_decide__copy(a->tenant_tier, sizeof(a->tenant_tier), x->t.tier);
        a->n_tenant_labels = x->t.n_labels < PDP_ATTR_LABELS_MAX
                                 ? x->t.n_labels
                                 : PDP_ATTR_LABELS_MAX;
        memcpy(a->tenant_labels, x->t.labels,
               a->n_tenant_labels * sizeof(a->tenant_labels[0]));
    } else if (rv != TG_ENOTFOUND) {
        return rv;
    }
    a->endpoint      = req->endpoint;
    a->stream        = req->stream;
    a->max_tokens    = req->max_tokens;
    a->prompt_tokens = req->prompt_tokens_estimate;
    a->n_meta = req->n_meta < TG_MSG_META_MAX ? req->n_meta : TG_MSG_META_MAX;
    memcpy(a->meta, req->meta, a->n_meta * sizeof(a->meta[0]));
    pdp_decide__copy(a->model, sizeof(a->model), req->model);
    pdp_decide__copy(a->client_ip, sizeof(a->client_ip), req->client_ip);
    a->now_ms = req->now_ms > 0 ? req->now_ms : tg_now_ms();
    return TG_OK;
}

/* pdp_decide_catalog_add appends the deployments of model not listed
 * yet. */
static void
pdp_decide_catalog_add(const tg_config *cfg, const char *model,
                       tg_decision *out)
{
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const tg_deployment *dep  = &cfg->deployments[i];
        bool                 seen = false;

        if (strcmp(dep->model, model) != 0) {
            continue;
        }
        for (uint32_t k = 0; k < out->n_targets && !seen; k++) {
            seen = strcmp(out->targets[k].deployment_id, dep->id) == 0;
        }
        if (seen) {
            continue;
        }
        if (out->n_targets == TG_MSG_TARGETS_MAX) {
            tg_warn("decide: model \"%.100s\" and its fallbacks have more "
                    "than %d deployments; routing uses the first %d",
                    model, TG_MSG_TARGETS_MAX, TG_MSG_TARGETS_MAX);
            return;
        }
        pdp_decide__copy(out->targets[out->n_targets].deployment_id,
                         sizeof(out->targets[0].deployment_id), dep->id);
        out->targets[out->n_targets].weight = (uint32_t)dep->weight;
        out->n_targets++;
    }
}

/* pdp_decide_catalog_targets lists the model's deployments, then those of
 * its model group's fallbacks (general, context-window, content-policy, in
 * that order): the data plane tries them in that order of groups and
 * knows from the catalog which is which. */
static void
pdp_decide_catalog_targets(const tg_config *cfg, const char *model,
                           tg_decision *out)
{
    const tg_model_group *g = tg_config_group(cfg, model);

    pdp_decide_catalog_add(cfg, model, out);
    if (out->n_targets == 0 || g == NULL) {
        return;
    }
    for (size_t i = 0; i < g->n_fallbacks; i++) {
        pdp_decide_catalog_add(cfg, g->fallbacks[i], out);
    }
    for (size_t i = 0; i < g->n_context_fallbacks; i++) {
        pdp_decide_catalog_add(cfg, g->context_fallbacks[i], out);
    }
    for (size_t i = 0; i < g->n_content_fallbacks; i++) {
        pdp_decide_catalog_add(cfg, g->content_fallbacks[i], out);
    }
}

tg_route_strategy
pdp_decide__group_strategy(const tg_config *cfg, const char *model)
{
    static const struct {
        const char       *name;
        tg_route_strategy s;
    } map[]                 = {{"ordered", TG_ROUTE_ORDERED},
                               {"priority", TG_ROUTE_ORDERED},
                               {"weighted", TG_ROUTE_WEIGHTED},
                               {"least_inflight", TG_ROUTE_LEAST_INFLIGHT},
                               {"lowest_latency", TG_ROUTE_LOWEST_LATENCY},
                               {"lowest_cost", TG_ROUTE_LOWEST_COST}};
    const tg_model_group *g = tg_config_group(cfg, model);

    for (size_t i = 0;
         g != NULL && g->strategy != NULL && i < sizeof(map) / sizeof(map[0]);
         i++) {
        if (strcmp(map[i].name, g->strategy) == 0) {
            return map[i].s;
        }
    }
    return TG_ROUTE_ORDERED;
}

void
pdp_decide__policy(const pdp_policy_result *r, tg_decision *out)
{
    uint32_t nm =
        r->n_matched < TG_MSG_RULES_MAX ? r->n_matched : TG_MSG_RULES_MAX;

    memcpy(out->matched, r->matched, nm * sizeof(out->matched[0]));
    out->n_matched         = nm;
    out->capture_level     = r->capture_level;
    out->log_shed          = r->log_shed;
    out->audit_hits_header = r->audit_hits_header;
    if (r->verdict != TG_VERDICT_ALLOW) {
        uint32_t status =
            r->status >= 400 && r->status <= 599 ? r->status : 403;
        pdp_decide__deny(
            out, status,
            status >= 500 ? "server_error" : "invalid_request_error",
            r->error_code[0] ? r->error_code : "policy_denied", "%s",
            r->message[0] ? r->message : "Denied by policy.");
        return;
    }
    if (r->n_targets > 0) {
        uint32_t nt = r->n_targets < TG_MSG_TARGETS_MAX ? r->n_targets
                                                        : TG_MSG_TARGETS_MAX;
        memcpy(out->targets, r->targets, nt * sizeof(out->targets[0]));
        out->n_targets = nt;
        for (uint32_t i = 0; i < nt; i++) {
            if (out->targets[i].weight == 0) {
                out->targets[i].weight = 1;
            }
        }
    } else if (r->route_restricted) {
        /* The engine denies this itself; never route outside a rule. */
        pdp_decide__deny(out, 403, "invalid_request_error", "no_route",
                         "No deployment of this model is allowed by the "
                         "routing policy.");
        return;
    }
    if (r->strategy != TG_ROUTE_UNSPECIFIED) {
        out->strategy = r->strategy; /* else the model group's */
    }
    /* Guardrail obligations; the server names their guard set. */
    for (uint32_t i = 0; i < r->n_guards && i < TG_MSG_GUARDS_MAX; i++) {
        tg_guard_ob *g = &out->guards[i];
        pdp_decide__copy(g->rule_id, sizeof(g->rule_id), r->guards[i].rule_id);
        g->index         = r->guards[i].index;
        g->enforced      = r->guards[i].enforced;
        g->on_error_skip = r->guards[i].on_error_skip;
        out->n_guards    = i + 1;
    }
}

static const char *
pdp_decide_scope_value(const pdp_attrs *a, pdp_scope s)
{
    switch (s) {
    case PDP_SCOPE_TENANT:
        return a->tenant_id;
    case PDP_SCOPE_USER:
        return a->user; /* "" : one bucket for no user */
    case PDP_SCOPE_MODEL:
        return a->model;
    case PDP_SCOPE_KEY:
    case PDP_SCOPE_META:
        break;
    }
    return a->key_id;
}

static const char *
pdp_decide_scope_name(pdp_scope s)
{
    return s < PDP_SCOPE_META ? pdp_scope_name((uint8_t)s) : "key";
}

/* pdp_decide_budget_scope: the scope value a budget counts under. */
static const char *
pdp_decide_budget_scope(const pdp_attrs *a, const pdp_budget_hit *h)
{
    if (h->scope != PDP_SCOPE_META) {
        return pdp_decide_scope_value(a, h->scope);
    }
    for (uint32_t i = 0; i < a->n_meta; i++) {
        if (strcmp(a->meta[i].key, h->meta_key) == 0) {
            return a->meta[i].value;
        }
    }
    return ""; /* requests without the tag share one budget */
}

/* pdp_decide_usd writes micro-USD as dollars ("$1.250000"). */
static void
pdp_decide_usd(int64_t micro, char *buf, size_t cap)
{
    char usd[TG_USD_MAX];

    tg_usd(micro < 0 ? 0 : micro, usd, sizeof(usd));
    snprintf(buf, cap, "$%s", usd);
}

/* pdp_decide_worst_price is the price a budget reserves with: the most
 * expensive of the deployments the request may be routed to (a
 * deployment's own "pricing", else the model's price in the bundle's
 * table, else the price of the model the deployment calls upstream; a
 * deployment of another model, a fallback, at the dearer of that and its
 * own model's price, which its usage is charged at), so the worst case
 * holds wherever it goes. False when some target has no price at all. */
static bool
pdp_decide_worst_price(const tg_config *cfg, const pdp_bundle *bun,
                       const tg_pricing *pr, const char *model,
                       const tg_decision *out, tg_price *price)
{
    tg_price table;
    bool have_table = (bun != NULL && pdp_bundle_price(bun, model, &table)) ||
                      (pr != NULL && tg_pricing_find(pr, model, &table));
    bool any = false;

    memset(price, 0, sizeof(*price));
    for (uint32_t i = 0; i < out->n_targets; i++) {
        const tg_deployment *d =
            tg_config_deployment(cfg, out->targets[i].deployment_id);
        tg_price p;
        tg_price own;
        bool     have = pdp_deployment_price(bun, pr, d, model, &p);
        if (d != NULL && strcmp(d->model, model) != 0 &&
            pdp_deployment_price(bun, pr, d, d->model, &own)) {
            p.input  = have && p.input > own.input ? p.input : own.input;
            p.output = have && p.output > own.output ? p.output : own.output;
            have     = true;
        }
        if (!have) {
            return false;
        }
        price->input  = p.input > price->input ? p.input : price->input;
        price->output = p.output > price->output ? p.output : price->output;
        any           = true;
    }
    if (!any && have_table) {
        *price = table;
        any    = true;
    }
    return any;
}

/* The matched rate_limit and budget rules of one decision, as pdp_limits
 * asks for them: enforced rate limits, audit ones (counted in a shadow),
 * enforced budgets (audit budgets are reported, never counted), and what
 * the request may cost. */
typedef struct pdp_decide_hits {
    pdp_limits_req        enf[PDP_RATE_HITS_MAX];
    pdp_scope             esc[PDP_RATE_HITS_MAX];
    uint32_t              ne;
    pdp_limits_req        aud[PDP_RATE_HITS_MAX];
    pdp_scope             asc[PDP_RATE_HITS_MAX];
    uint32_t              na;
    pdp_limits_budget     bud[PDP_BUDGET_HITS_MAX];
    const pdp_budget_hit *bh[PDP_BUDGET_HITS_MAX];
    int64_t               breset[PDP_BUDGET_HITS_MAX]; /* window ends */
    uint32_t              nb;
    int64_t               tokens; /* prompt + the output it may ask for */
    pdp_limits_cost       cost;
} pdp_decide_hits;

/* pdp_decide_warn_dropped says that more rules of a kind matched than the
 * max applied to one request (dropped of them beyond the n kept). */
static void
pdp_decide_warn_dropped(const char *kind, uint32_t dropped, uint32_t n, int max)
{
    if (dropped > 0) {
        tg_warn("decide: %u more %s rules matched than the %d applied to "
                "one request; only the first %d (by id) count",
                dropped + n, kind, max, max);
    }
}

/* pdp_decide_collect_rates sorts the matched rate_limit rules into
 * enforced and audit ones, scoped to this request. */
static void
pdp_decide_collect_rates(const pdp_decide_ctx *x, pdp_decide_hits *hs)
{
    const pdp_policy_result *r = &x->r;

    hs->ne = 0;
    hs->na = 0;
    for (uint32_t i = 0; i < r->n_rate; i++) {
        const pdp_rate_hit *h = &r->rate[i];
        pdp_limits_req     *q;

        if (h->enforced) {
            hs->esc[hs->ne] = h->scope;
            q               = &hs->enf[hs->ne++];
        } else {
            hs->asc[hs->na] = h->scope;
            q               = &hs->aud[hs->na++];
        }

        q->rule_id    = h->rule_id;
        q->scope      = pdp_decide_scope_value(&x->a, h->scope);
        q->rpm        = h->rpm;
        q->tpm        = h->tpm;
        q->concurrent = h->concurrent;
    }
    pdp_decide_warn_dropped("rate_limit", r->n_rate_dropped, r->n_rate,
                            PDP_RATE_HITS_MAX);
}

/* pdp_decide_collect_budgets lists the enforced budget rules with the
 * scope value they count under and their window now (start, and end: when
 * the budget resets). */
static void
pdp_decide_collect_budgets(const pdp_bundle *bun, const pdp_decide_ctx *x,
                           pdp_decide_hits *hs)
{
    const pdp_policy_result *r = &x->r;

    hs->nb = 0;
    for (uint32_t i = 0; i < r->n_budget; i++) {
        const pdp_budget_hit *h = &r->budget[i];
        pdp_limits_budget    *q = &hs->bud[hs->nb];

        if (!h->enforced) {
            continue; /* audit budgets are reported, never counted */
        }
        hs->bh[hs->nb] = h;
        q->rule_id     = h->rule_id;
        q->scope       = pdp_decide_budget_scope(&x->a, h);
        q->code        = (uint8_t)h->window;
        q->span_h      = h->window == PDP_WINDOW_ROLLING ? h->window_h : 0;
        q->limit       = h->limit_micro;
        q->clamp       = h->clamp;
        q->scope_kind  = (uint8_t)h->scope;
        q->nthr        = h->nthr;
        memcpy(q->thr, h->thr, h->nthr);
        pdp_bundle_budget_window(bun, h->window, x->a.now_ms, &q->start_ms,
                                 &hs->breset[hs->nb]);
        hs->nb++;
    }
    pdp_decide_warn_dropped("budget", r->n_budget_dropped, r->n_budget,
                            PDP_BUDGET_HITS_MAX);
}

/* pdp_decide_price fills what the request may cost: its tokens and, when
 * a budget applies, the worst price of its targets. False, with out a 403
 * model_unpriced, when a budget applies and some target has no price: the
 * compiler refuses a budget on a model without a price, but an
 * administration budget covers every model, and a budget must never look
 * satisfied when it cannot be priced. */
static bool
pdp_decide_price(const tg_config *cfg, const pdp_bundle *bun,
                 const tg_pricing *pr, const pdp_decide_ctx *x,
                 pdp_decide_hits *hs, tg_decision *out)
{
    tg_price price;

    hs->tokens =
        x->a.prompt_tokens +
        (x->a.max_tokens > 0 ? x->a.max_tokens : PDP_LIMITS_OUTPUT_CAP);
    memset(&hs->cost, 0, sizeof(hs->cost));
    hs->cost.prompt = x->a.prompt_tokens > 0 ? x->a.prompt_tokens : 0;
    hs->cost.max_out =
        x->a.max_tokens > 0 ? x->a.max_tokens : PDP_LIMITS_OUTPUT_CAP;
    if (hs->nb == 0) {
        return true;
    }
    if (!pdp_decide_worst_price(cfg, bun, pr, x->a.model, out, &price)) {
        pdp_decide__deny(out, 403, "invalid_request_error", "model_unpriced",
                         "Budget rule %s applies to this request but the "
                         "model '%.100s' has no price; ask your Tollgate "
                         "administrator to add it to the pricing table.",
                         hs->bh[0]->rule_id, x->a.model);
        return false;
    }
    hs->cost.in_per_mtok  = price.input;
    hs->cost.out_per_mtok = price.output;
    return true;
}

/* pdp_decide_audit_shadow counts the audit rate_limit rules in their
 * shadow windows (nothing reserved) and logs the one that would deny. */
static void
pdp_decide_audit_shadow(pdp_limits *lim, const pdp_decide_ctx *x,
                        const pdp_decide_hits *hs, const tg_decision *out)
{
    pdp_limits_result res;

    pdp_limits_check(lim, hs->aud, hs->na, hs->tokens, false, x->a.now_ms,
                     &res);
    if (res.denied == PDP_LIMITS_OK) {
        return;
    }
    tg_info("decide: audit rate_limit rule %s (per %s) would deny "
            "key %s: %lld of %lld %s used",
            hs->aud[res.denied_rule].rule_id,
            pdp_decide_scope_name(hs->asc[res.denied_rule]), out->key_id,
            (long long)res.used, (long long)res.limit,
            res.denied == PDP_LIMITS_TOKENS     ? "tokens per minute"
            : res.denied == PDP_LIMITS_REQUESTS ? "requests per minute"
                                                : "concurrent requests");
}

/* pdp_decide_retry_hint appends the "retry" limits entry the data plane
 * turns into retry-after, when there is room. */
static void
pdp_decide_retry_hint(tg_decision *out, int64_t reset_ms)
{
    tg_limit_state *ra;

    if (out->n_limits >= TG_MSG_LIMITS_MAX) {
        return;
    }
    ra = &out->limits[out->n_limits++];
    memset(ra, 0, sizeof(*ra));
    pdp_decide__copy(ra->name, sizeof(ra->name), "retry");
    ra->reset_ms = reset_ms;
}

/* pdp_decide_matched_only makes rule_id, the rule that denied, the one
 * matched rule: it determines the outcome. */
static void
pdp_decide_matched_only(tg_decision *out, const char *rule_id,
                        const char *effect)
{
    out->n_matched = 0;
    pdp_decide__copy(out->matched[0].rule_id, sizeof(out->matched[0].rule_id),
                     rule_id);
    out->matched[0].enforced = true;
    out->n_matched           = 1;
    snprintf(out->matched[0].effect, sizeof(out->matched[0].effect), "%s",
             effect);
}

/* pdp_decide_deny_budget writes the 429 budget_exceeded of budget
 * res->denied_budget: what it allows, what is spent and reserved, what
 * this request may cost, and when it resets. */
static void
pdp_decide_deny_budget(const pdp_decide_ctx *x, const pdp_decide_hits *hs,
                       const pdp_limits_result *res, tg_decision *out)
{
    uint32_t              j = res->denied_budget;
    const pdp_budget_hit *h = hs->bh[j];
    char                  lim_s[32];
    char                  spent_s[32];
    char                  res_s[32];
    char                  rem_s[32];
    char                  worst_s[32];
    char                  when[32];
    int64_t               rem = res->limit - res->b_spent - res->b_reserved;

    pdp_decide_usd(res->limit, lim_s, sizeof(lim_s));
    pdp_decide_usd(res->b_spent, spent_s, sizeof(spent_s));
    pdp_decide_usd(res->b_reserved, res_s, sizeof(res_s));
    pdp_decide_usd(rem, rem_s, sizeof(rem_s));
    pdp_decide_usd(res->b_worst, worst_s, sizeof(worst_s));
    if (h->window == PDP_WINDOW_ROLLING) {
        snprintf(when, sizeof(when), "over the last %d hours",
                 (int)h->window_h);
    } else {
        pdp_decide_time(hs->breset[j], when, sizeof(when));
    }
    pdp_decide__deny(
        out, 429, "insufficient_quota", "budget_exceeded",
        "Budget exceeded (rule %s, %s budget per %s%s%s): "
        "limit %s, spent %s, reserved by requests in flight "
        "%s, remaining %s; this request may cost up to %s. "
        "%s%s.",
        h->rule_id, pdp_window_name(h->window),
        h->scope == PDP_SCOPE_META ? "metadata."
                                   : pdp_decide_scope_name(h->scope),
        h->scope == PDP_SCOPE_META ? h->meta_key : "",
        h->clamp ? ", action clamp" : "", lim_s, spent_s, res_s, rem_s, worst_s,
        h->window == PDP_WINDOW_ROLLING ? "Spend counts "
                                        : "The budget resets at ",
        when);
    if (h->window != PDP_WINDOW_ROLLING) {
        pdp_decide_retry_hint(out, hs->breset[j] - x->a.now_ms > 0
                                       ? hs->breset[j] - x->a.now_ms
                                       : 1);
    }
    pdp_decide_matched_only(out, h->rule_id, "budget");
}

/* pdp_decide_deny_rate writes the 429 rate_limit_exceeded of rule
 * res->denied_rule: concurrent requests, requests or tokens per minute,
 * with when to retry. */
static void
pdp_decide_deny_rate(const pdp_decide_hits *hs, const pdp_limits_result *res,
                     tg_decision *out)
{
    const pdp_limits_req *q = &hs->enf[res->denied_rule];
    char                  reset[24];

    tg_format_reset(res->retry_ms, reset, sizeof(reset));
    /* OpenAI's type names the limit: "requests" or "tokens". */
    if (res->denied == PDP_LIMITS_CONCURRENT) {
        pdp_decide__deny(out, 429, "requests", "rate_limit_exceeded",
                         "Rate limit reached on concurrent requests per %s "
                         "(rule %s): limit %lld, in flight %lld. Retry when "
                         "one of them finishes.",
                         pdp_decide_scope_name(hs->esc[res->denied_rule]),
                         q->rule_id, (long long)res->limit,
                         (long long)res->used);
    } else {
        bool tok = res->denied == PDP_LIMITS_TOKENS;
        pdp_decide__deny(
            out, 429, tok ? "tokens" : "requests", "rate_limit_exceeded",
            "Rate limit reached on %s per %s (rule %s): "
            "limit %lld, used %lld, requested %lld. Please try "
            "again in %s.",
            tok ? "tokens per min (TPM)" : "requests per min (RPM)",
            pdp_decide_scope_name(hs->esc[res->denied_rule]), q->rule_id,
            (long long)res->limit, (long long)res->used,
            (long long)(tok ? hs->tokens : 1), reset);
    }
    pdp_decide_retry_hint(out, res->retry_ms);
    pdp_decide_matched_only(out, q->rule_id, "rate_limit");
}

void
pdp_decide_deny_upstream(tg_decision *out)
{
    pdp_decide__deny(out, 503, "server_error", "pdp_upstream_unavailable",
                     "This request needs budget or rate-limit capacity from "
                     "the central policy service, which is not answering; "
                     "retry shortly.");
    pdp_decide_retry_hint(out, 1000);
}

/* pdp_decide_enforce checks and reserves the enforced rate limits and
 * budgets atomically: an allow gets the reservation id, the limits of the
 * most constraining rule and, when a budget was priced, the output tokens
 * the provider is held to; a deny is one of the messages above. */
static tg_err
pdp_decide_enforce(pdp_limits *lim, const pdp_decide_admit *ad,
                   const char *request_id, const pdp_decide_ctx *x,
                   const pdp_decide_hits *hs, tg_decision *out)
{
    pdp_limits_result res;
    tg_err            rv = TG_OK;

    if (ad == NULL) {
        pdp_limits_check_budgets(lim, request_id, hs->enf, hs->ne, hs->bud,
                                 hs->nb, &hs->cost, hs->tokens, x->a.now_ms,
                                 &res);
    } else if ((rv = ad->fn(ad->arg, request_id, hs->enf, hs->ne, hs->bud,
                            hs->nb, &hs->cost, hs->tokens, x->a.now_ms,
                            &res)) == TG_EAGAIN) {
        return rv; /* decided again once the capacity is asked for */
    } else if (rv != TG_OK) {
        pdp_decide_deny_upstream(out);
        return TG_OK;
    }
    out->n_limits = 0;
    if (res.requests.limit > 0) {
        out->limits[out->n_limits++] = res.requests;
    }
    if (res.tokens.limit > 0) {
        out->limits[out->n_limits++] = res.tokens;
    }
    if (res.denied == PDP_LIMITS_OK) {
        memcpy(out->reservation_id, res.reservation_id,
               sizeof(out->reservation_id));
        out->reserved_micro_usd = hs->nb > 0 ? res.b_worst : 0;
        /* The worst case reserved holds only if the provider is held to
         * the output tokens it was priced with. */
        if (hs->nb > 0 &&
            (res.clamp_tokens < hs->cost.max_out || x->a.max_tokens <= 0)) {
            out->clamp_max_tokens = res.clamp_tokens;
        }
    } else if (res.denied == PDP_LIMITS_ABANDONED) {
        /* The data plane gave up on this request before this decision
         * (its abandon arrived first): nothing is held for it. */
        pdp_decide__deny(out, 409, "invalid_request_error", "request_abandoned",
                         "This request was abandoned by the gateway before "
                         "the policy service decided it; send it again.");
    } else if (res.denied == PDP_LIMITS_BUDGET) {
        pdp_decide_deny_budget(x, hs, &res, out);
    } else {
        pdp_decide_deny_rate(hs, &res, out);
    }
    return TG_OK;
}

/* pdp_decide_limits applies the matched rate_limit and budget rules of an
 * allowed request: collect them, price the request, count the audit ones
 * in the shadow (logged when they would deny), then check and reserve the
 * enforced ones, which fill out->limits (and the reservation id) or turn
 * out into a deny. */
static tg_err
pdp_decide_limits(pdp_limits *lim, const pdp_decide_admit *ad,
                  const tg_config *cfg, const pdp_bundle *bun,
                  const tg_pricing *pr, const char *request_id,
                  const pdp_decide_ctx *x, tg_decision *out)
{
    pdp_decide_hits hs;

    pdp_decide_collect_rates(x, &hs);
    pdp_decide_collect_budgets(bun, x, &hs);
    if (!pdp_decide_price(cfg, bun, pr, x, &hs, out)) {
        return TG_OK;
    }
    if (hs.na > 0) {
        pdp_decide_audit_shadow(lim, x, &hs, out);
    }
    if (hs.ne == 0 && hs.nb == 0) {
        return TG_OK;
    }
    return pdp_decide_enforce(lim, ad, request_id, x, &hs, out);
}

/* pdp_decide_quota_add turns a quota set through administration into the
 * hits a bundle rule would give: its budget and its rate limits count
 * exactly like rules with the ids PDP_QUOTA_RULE_TENANT / _KEY, scoped to
 * the tenant or key. A quota is never dropped for lack of room: bundle
 * rules beyond the per-request maximum are (they are logged). */
static void
pdp_decide_quota_add(pdp_decide_ctx *x, const pdp_quota *q)
{
    pdp_policy_result *r = &x->r;
    const char *rule_id  = q->scope == PDP_QUOTA_TENANT ? PDP_QUOTA_RULE_TENANT
                                                        : PDP_QUOTA_RULE_KEY;
    pdp_scope   scope =
        q->scope == PDP_QUOTA_TENANT ? PDP_SCOPE_TENANT : PDP_SCOPE_KEY;

    if (q->limit_micro > 0) {
        pdp_budget_hit *h;

        if (r->n_budget == PDP_BUDGET_HITS_MAX) {
            r->n_budget--;
            r->n_budget_dropped++;
        }
        h = &r->budget[r->n_budget++];
        memset(h, 0, sizeof(*h));
        h->rule_id     = rule_id;
        h->scope       = scope;
        h->window      = (pdp_window)q->window;
        h->window_h    = q->window_h;
        h->limit_micro = q->limit_micro;
        h->clamp       = q->clamp;
        h->enforced    = true;
        h->nthr        = q->nthr;
        memcpy(h->thr, q->thr, q->nthr);
    }
    if (q->rpm > 0 || q->tpm > 0 || q->concurrent > 0) {
        pdp_rate_hit *h;

        if (r->n_rate == PDP_RATE_HITS_MAX) {
            r->n_rate--;
            r->n_rate_dropped++;
        }
        h = &r->rate[r->n_rate++];
        memset(h, 0, sizeof(*h));
        h->rule_id    = rule_id;
        h->scope      = scope;
        h->rpm        = q->rpm;
        h->tpm        = q->tpm;
        h->concurrent = q->concurrent;
        h->enforced   = true;
    }
}

/* pdp_decide_quotas adds the quotas of the key's tenant and of the key
 * (read in the decision's snapshot). */
static tg_err
pdp_decide_quotas(pdp_store_reader *rd, pdp_decide_ctx *x)
{
    pdp_quota q;
    tg_err    rv;

    rv = pdp_store_quota_get(rd, PDP_QUOTA_TENANT, x->k.tenant, &q);
    if (rv == TG_OK) {
        pdp_decide_quota_add(x, &q);
    } else if (rv != TG_ENOTFOUND) {
        return rv;
    }
    rv = pdp_store_quota_get(rd, PDP_QUOTA_KEY, x->k.id, &q);
    if (rv == TG_OK) {
        pdp_decide_quota_add(x, &q);
    } else if (rv != TG_ENOTFOUND) {
        return rv;
    }
    return TG_OK;
}

/* pdp_decide_key looks the key up and checks it can be used now. False
 * when that decides: out is a 401 (*rv TG_OK), or a 503 when the store
 * cannot be read (*rv says why). */
static bool
pdp_decide_key(pdp_store_reader *rd, const tg_decide *req, pdp_decide_ctx *x,
               tg_decision *out, tg_err *rv)
{
    char when[32];

    *rv = pdp_store_key_get(rd, req->key_hash, &x->k);
    if (*rv == TG_ENOTFOUND) {
        pdp_decide__deny(out, 401, "invalid_request_error", "invalid_api_key",
                         "Incorrect API key provided. Ask your Tollgate "
                         "administrator for a key (created with `tollgate-pdp "
                         "keys create`).");
        *rv = TG_OK;
        return false;
    }
    if (*rv != TG_OK) {
        pdp_decide__deny(out, 503, "server_error", "pdp_unavailable",
                         "The gateway could not check this API key; try again "
                         "shortly.");
        return false;
    }
    pdp_decide__copy(out->key_id, sizeof(out->key_id), x->k.id);
    pdp_decide__copy(out->tenant_id, sizeof(out->tenant_id), x->k.tenant);
    switch (
        pdp_key_state_at(&x->k, req->now_ms > 0 ? req->now_ms : tg_now_ms())) {
    case PDP_KEY_STATE_ACTIVE:
        break;
    case PDP_KEY_STATE_REVOKED:
        pdp_decide__deny(out, 401, "invalid_request_error", "invalid_api_key",
                         "This API key (%s) has been revoked. Ask your "
                         "Tollgate administrator for a new one.",
                         x->k.id);
        return false;
    case PDP_KEY_STATE_ROTATED:
        pdp_decide_time(x->k.grace_until_ms, when, sizeof(when));
        pdp_decide__deny(out, 401, "invalid_request_error", "invalid_api_key",
                         "This API key (%s) was rotated and its grace period "
                         "ended at %s. Use the new key, or ask your Tollgate "
                         "administrator for it.",
                         x->k.id, when);
        return false;
    case PDP_KEY_STATE_EXPIRED:
        pdp_decide_time(x->k.expires_ms, when, sizeof(when));
        pdp_decide__deny(out, 401, "invalid_request_error", "invalid_api_key",
                         "This API key (%s) expired at %s. Ask your Tollgate "
                         "administrator for a new one.",
                         x->k.id, when);
        return false;
    }
    return true;
}

bool
pdp_decide__model(const tg_config *cfg, const char *model,
                  const pdp_decide_ctx *x, tg_decision *out)
{
    if (model[0] == '\0') {
        pdp_decide__deny(out, 400, "invalid_request_error", "model_required",
                         "You must provide a model parameter.");
        return false;
    }
    if (!pdp_decide_key_allows(&x->k, model)) {
        pdp_decide__deny(out, 403, "invalid_request_error", "model_not_allowed",
                         "This API key may not use the model '%.100s'. Call "
                         "GET /v1/models to see the models it may use.",
                         model);
        return false;
    }
    pdp_decide_catalog_targets(cfg, model, out);
    if (out->n_targets == 0) {
        pdp_decide__deny(out, 404, "invalid_request_error", "model_not_found",
                         "The model '%.100s' does not exist on this gateway. "
                         "Call GET /v1/models to see the models you may use.",
                         model);
        return false;
    }
    return true;
}

/* pdp_decide_reuse marks an allow that holds nothing (no budget or rate
 * limit applies, so nothing is reserved or counted) as one the data plane
 * may reuse (Decision.reuse_ms): for the inputs its rules read, until
 * PDP_DECIDE_REUSE_MAX_MS or the key's end, whichever comes first. Not
 * when a rule reads the time. */
static void
pdp_decide_reuse(const pdp_bundle *b, const pdp_decide_ctx *x, tg_decision *out)
{
    uint32_t inputs = 0;
    int64_t  now    = x->a.now_ms;
    int64_t  until  = now + PDP_DECIDE_REUSE_MAX_MS;

    if (out->n_redactions > 0 ||
        (b != NULL && !pdp_bundle_reuse_inputs(b, &inputs))) {
        return;
    }
    if (x->k.expires_ms != 0 && x->k.expires_ms < until) {
        until = x->k.expires_ms;
    }
    if (x->k.superseded && x->k.grace_until_ms < until) {
        until = x->k.grace_until_ms;
    }
    if (until > now) {
        out->reuse_ms     = (uint32_t)(until - now);
        out->reuse_inputs = inputs;
    }
}

tg_err
pdp_decide_eval(pdp_store_reader *rd, const tg_config *cfg, const pdp_bundle *b,
                const tg_decide *req, tg_decision *out)
{
    return pdp_decide_eval_limits(rd, cfg, b, NULL, NULL, req, out);
}

tg_err
pdp_decide_eval_limits(pdp_store_reader *rd, const tg_config *cfg,
                       const pdp_bundle *b, pdp_limits *lim,
                       const tg_pricing *pr, const tg_decide *req,
                       tg_decision *out)
{
    return pdp_decide_eval_leased(rd, cfg, b, lim, NULL, pr, req, out);
}

tg_err
pdp_decide_eval_leased(pdp_store_reader *rd, const tg_config *cfg,
                       const pdp_bundle *b, pdp_limits *lim,
                       const pdp_decide_admit *ad, const tg_pricing *pr,
                       const tg_decide *req, tg_decision *out)
{
    pdp_decide_ctx x;
    tg_err         rv;

    memset(out, 0, sizeof(*out));
    if (b != NULL) {
        out->policy_revision = pdp_bundle_revision(b);
        pdp_decide__copy(out->bundle_hash, sizeof(out->bundle_hash),
                         pdp_bundle_hash(b));
    }
    if (!pdp_decide_key(rd, req, &x, out, &rv)) {
        return rv;
    }
    if ((rv = pdp_decide_attrs(rd, req, &x)) != TG_OK) {
        pdp_decide__deny(out, 503, "server_error", "pdp_unavailable",
                         "The gateway could not read this key's tenant; try "
                         "again shortly.");
        return rv;
    }
    if (x.t.disabled_ms != 0) {
        pdp_decide__deny(out, 403, "invalid_request_error", "tenant_disabled",
                         "The tenant of this API key (%s) is disabled, so its "
                         "keys are refused. Ask your Tollgate administrator "
                         "to enable it again (tollgate-pdp tenants enable "
                         "%s).",
                         x.k.tenant, x.k.tenant);
        return TG_OK;
    }
    if (req->endpoint == TG_EP_MODELS) {
        out->verdict = TG_VERDICT_ALLOW;
        out->status  = 200;
        pdp_decide_models(cfg, b, &x, out);
        return TG_OK;
    }
    if (req->n_fallback_models > 0) {
        if ((rv = pdp_decide__models(cfg, b, req, &x, out)) != TG_OK) {
            return rv;
        }
    } else if (pdp_decide__model(cfg, req->model, &x, out)) {
        out->verdict  = TG_VERDICT_ALLOW;
        out->status   = 200;
        out->strategy = pdp_decide__group_strategy(cfg, req->model);
        memset(&x.r, 0, sizeof(x.r));
        if (b != NULL) {
            pdp_bundle_eval(b, &x.a, &x.r, NULL);
            pdp_decide__policy(&x.r, out);
        }
    }
    /* Budgets and rate limits set through administration apply with or
     * without a policy bundle. */
    if (lim != NULL && out->verdict == TG_VERDICT_ALLOW) {
        if ((rv = pdp_decide_quotas(rd, &x)) != TG_OK) {
            pdp_decide__deny(out, 503, "server_error", "pdp_unavailable",
                             "The gateway could not read this key's budgets; "
                             "try again shortly.");
            return rv;
        }
        if (x.r.n_rate > 0 || x.r.n_budget > 0) {
            return pdp_decide_limits(lim, ad, cfg, b, pr, req->request_id, &x,
                                     out);
        }
        if (req->n_fallback_models == 0) {
            pdp_decide_reuse(b, &x, out); /* made for one model */
        }
    }
    return TG_OK;
}
