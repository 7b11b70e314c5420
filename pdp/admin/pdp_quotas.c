/* pdp_quotas.c - see pdp_quotas.h. A quota record holds both halves, the
 * budget and the rate limits; setting or deleting one keeps the other. */
#include "pdp_quotas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "tg_hash.h"
#include "tg_json.h"
#include "tg_pricing.h"

bool
pdp_quotas_target(const char *s, pdp_quota_scope *scope, const char **id)
{
    if (strncmp(s, "tenant:", 7) == 0) {
        *scope = PDP_QUOTA_TENANT;
        *id    = s + 7;
    } else if (strncmp(s, "key:", 4) == 0) {
        *scope = PDP_QUOTA_KEY;
        *id    = s + 4;
    } else {
        return false;
    }
    return tg_id_ok(*id);
}

typedef struct pdp_quotas_spent {
    const char *rule;
    const char *scope;
    uint8_t     code;
    int64_t     from_ms; /* buckets starting in [from_ms, to_ms] count */
    int64_t     to_ms;
    int64_t     spent;
} pdp_quotas_spent;

static void
pdp_quotas_spent_one(void *arg, const pdp_limits_spend_key *k, int64_t spent)
{
    pdp_quotas_spent *s = arg;

    if (strcmp(k->rule_id, s->rule) == 0 && strcmp(k->scope, s->scope) == 0 &&
        k->code == s->code && k->start_ms >= s->from_ms &&
        k->start_ms <= s->to_ms) {
        s->spent += spent;
    }
}

/* pdp_quotas_budget_json renders quota q's budget with its window now and
 * its spent, reserved (when the limits are known) and remaining spend. */
cJSON *
pdp_quotas_budget_json(pdp_api_call *c, const pdp_quota *q)
{
    cJSON            *j = cJSON_CreateObject();
    cJSON            *th;
    pdp_limits_budget b;
    int64_t           reset    = 0;
    int64_t           spent    = 0;
    int64_t           reserved = 0;
    char              usd[32];
    char              win[24];

    memset(&b, 0, sizeof(b));
    b.rule_id = q->scope == PDP_QUOTA_TENANT ? PDP_QUOTA_RULE_TENANT
                                             : PDP_QUOTA_RULE_KEY;
    b.scope   = q->id;
    b.code    = q->window;
    b.span_h  = q->window == PDP_WINDOW_ROLLING ? q->window_h : 0;
    b.limit   = q->limit_micro;
    pdp_bundle_budget_window(c->x->bundle, (pdp_window)q->window, c->now_ms,
                             &b.start_ms, &reset);
    if (c->x->lim != NULL) {
        pdp_limits_budget_state(c->x->lim, &b, &spent, &reserved);
    } else {
        pdp_quotas_spent s = {b.rule_id,  q->id,      q->window,
                              b.start_ms, b.start_ms, 0};
        if (b.span_h > 0) {
            s.from_ms = b.start_ms - (int64_t)(b.span_h - 1) * 3600000;
        }
        pdp_store_budget_list(c->x->st, s.from_ms, pdp_quotas_spent_one, &s);
        spent = s.spent;
    }
    cJSON_AddStringToObject(j, "target",
                            q->scope == PDP_QUOTA_TENANT ? "tenant" : "key");
    cJSON_AddStringToObject(j, "id", q->id);
    if (q->window == PDP_WINDOW_ROLLING) {
        snprintf(win, sizeof(win), "rolling:%dh", (int)q->window_h);
    } else {
        snprintf(win, sizeof(win), "%s", pdp_window_name(q->window));
    }
    cJSON_AddStringToObject(j, "window", win);
    tg_usd(q->limit_micro, usd, sizeof(usd));
    cJSON_AddStringToObject(j, "limit_usd", usd);
    tg_usd(spent, usd, sizeof(usd));
    cJSON_AddStringToObject(j, "spent_usd", usd);
    if (c->x->lim != NULL) {
        tg_usd(reserved, usd, sizeof(usd));
        cJSON_AddStringToObject(j, "reserved_usd", usd);
    } else {
        cJSON_AddNullToObject(j, "reserved_usd"); /* only serve knows */
    }
    tg_usd(q->limit_micro - spent - reserved > 0
               ? q->limit_micro - spent - reserved
               : 0,
           usd, sizeof(usd));
    cJSON_AddStringToObject(j, "remaining_usd", usd);
    cJSON_AddNumberToObject(j, "limit_micro_usd", (double)q->limit_micro);
    cJSON_AddNumberToObject(j, "spent_micro_usd", (double)spent);
    cJSON_AddNumberToObject(j, "reserved_micro_usd", (double)reserved);
    cJSON_AddNumberToObject(j, "remaining_micro_usd",
                            (double)(q->limit_micro - spent - reserved > 0
                                         ? q->limit_micro - spent - reserved
                                         : 0));
    cJSON_AddStringToObject(j, "action", q->clamp ? "clamp" : "deny");
    th = cJSON_AddArrayToObject(j, "thresholds");
    for (uint32_t i = 0; i < q->nthr; i++) {
        cJSON_AddItemToArray(th, cJSON_CreateNumber(q->thr[i]));
    }
    if (q->window == PDP_WINDOW_ROLLING) {
        pdp_fmt_json_time(j, "window_start",
                          b.start_ms - (int64_t)(q->window_h - 1) * 3600000);
        cJSON_AddNullToObject(j, "resets");
    } else {
        pdp_fmt_json_time(j, "window_start", b.start_ms);
        pdp_fmt_json_time(j, "resets", reset);
    }
    pdp_fmt_json_time(j, "updated", q->updated_ms);
    cJSON_AddStringToObject(j, "updated_by", q->updated_by);
    return j;
}

cJSON *
pdp_quotas_rate_json(const pdp_quota *q)
{
    cJSON *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "target",
                            q->scope == PDP_QUOTA_TENANT ? "tenant" : "key");
    cJSON_AddStringToObject(j, "id", q->id);
    cJSON_AddNumberToObject(j, "rpm", (double)q->rpm);
    cJSON_AddNumberToObject(j, "tpm", (double)q->tpm);
    cJSON_AddNumberToObject(j, "concurrent", (double)q->concurrent);
    pdp_fmt_json_time(j, "updated", q->updated_ms);
    cJSON_AddStringToObject(j, "updated_by", q->updated_by);
    return j;
}

typedef struct pdp_quotas_list_arg {
    pdp_api_call *c;
    cJSON        *arr;
    bool          budgets; /* else rate limits */
} pdp_quotas_list_arg;

static void
pdp_quotas_one(void *arg, const pdp_quota *q)
{
    pdp_quotas_list_arg *l = arg;

    if (l->budgets && q->limit_micro > 0) {
        cJSON_AddItemToArray(l->arr, pdp_quotas_budget_json(l->c, q));
    } else if (!l->budgets && (q->rpm > 0 || q->tpm > 0 || q->concurrent > 0)) {
        cJSON_AddItemToArray(l->arr, pdp_quotas_rate_json(q));
    }
}

unsigned
pdp_quotas_list(pdp_api_call *c)
{
    bool                budgets = c->how == PDP_QUOTAS_BUDGETS;
    cJSON              *doc     = cJSON_CreateObject();
    pdp_quotas_list_arg l       = {c, NULL, budgets};
    tg_err              rv;

    l.arr = cJSON_AddArrayToObject(doc, budgets ? "budgets" : "ratelimits");
    rv    = pdp_store_quota_list(c->x->st, pdp_quotas_one, &l);
    return pdp_api_listed(c, rv, doc, "list quotas");
}

/* pdp_quotas_path reads /<budgets|ratelimits>/<tenant|key>/<id>. */
static bool
pdp_quotas_path(pdp_api_call *c, pdp_quota_scope *scope, const char **id,
                unsigned *st)
{
    if (strcmp(c->seg[1], "tenant") == 0) {
        *scope = PDP_QUOTA_TENANT;
    } else if (strcmp(c->seg[1], "key") == 0) {
        *scope = PDP_QUOTA_KEY;
    } else {
        *st = pdp_api_err(c, 404, "not_found",
                          "Expected /admin/v1/%s/tenant/ID or "
                          "/admin/v1/%s/key/ID.",
                          c->seg[0], c->seg[0]);
        return false;
    }
    *id = c->seg[2];
    if (!tg_id_ok(*id)) {
        *st = pdp_api_err(c, 404,
                          *scope == PDP_QUOTA_TENANT ? "tenant_not_found"
                                                     : "key_not_found",
                          "\"%.80s\" is not a valid id.", *id);
        return false;
    }
    return true;
}

typedef struct pdp_quotas_get {
    pdp_quota_scope scope;
    const char     *id;
    pdp_quota      *q;
} pdp_quotas_get;

static tg_err
pdp_quotas_get_in(pdp_store_reader *rd, void *arg)
{
    pdp_quotas_get *g = arg;

    return pdp_store_quota_get(rd, g->scope, g->id, g->q);
}

static tg_err
pdp_quotas_read(pdp_api_call *c, pdp_quota_scope scope, const char *id,
                pdp_quota *q)
{
    pdp_quotas_get g = {scope, id, q};

    return pdp_api_snapshot(c, pdp_quotas_get_in, &g);
}

static unsigned
pdp_quotas_missing(pdp_api_call *c, bool budgets, pdp_quota_scope scope,
                   const char *id)
{
    return pdp_api_err(c, 404,
                       budgets ? "budget_not_found" : "ratelimit_not_found",
                       "%s %s has no %s set through administration (bundle "
                       "rules are not listed here).",
                       scope == PDP_QUOTA_TENANT ? "Tenant" : "Key", id,
                       budgets ? "budget" : "rate limit");
}

unsigned
pdp_quotas_show(pdp_api_call *c)
{
    bool            budgets = c->how == PDP_QUOTAS_BUDGETS;
    pdp_quota_scope scope;
    const char     *id;
    pdp_quota       q;
    unsigned        st = 0;
    tg_err          rv;

    if (!pdp_quotas_path(c, &scope, &id, &st)) {
        return st;
    }
    rv = pdp_quotas_read(c, scope, id, &q);
    if (rv == TG_OK &&
        (budgets ? q.limit_micro == 0
                 : (q.rpm == 0 && q.tpm == 0 && q.concurrent == 0))) {
        rv = TG_ENOTFOUND;
    }
    if (rv == TG_ENOTFOUND) {
        return pdp_quotas_missing(c, budgets, scope, id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the quota");
    }
    return pdp_api_ok(c, 200,
                      budgets ? pdp_quotas_budget_json(c, &q)
                              : pdp_quotas_rate_json(&q));
}

const char *const pdp_quotas_budget_fields[] = {"limit_usd", "window",
                                                "thresholds", "action", NULL};
const char *const pdp_quotas_rate_fields[] = {"rpm", "tpm", "concurrent", NULL};

/* pdp_quotas_limit reads "limit_usd", USD exactly from the number's text
 * (or a string), into q. */
static bool
pdp_quotas_limit(pdp_api_call *c, pdp_quota *q, unsigned *st)
{
    const cJSON *lim  = cJSON_GetObjectItemCaseSensitive(c->body, "limit_usd");
    const char  *why  = "is not a positive number of USD";
    const char  *text = NULL;
    int64_t      micro;

    if (lim == NULL) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give \"limit_usd\", e.g. {\"limit_usd\": 100, "
                          "\"window\": \"monthly\"}.");
        return false;
    }
    if (cJSON_IsNumber(lim)) {
        text = tg_json_doc_number_text(c->doc, lim);
    } else if (cJSON_IsString(lim)) {
        text = lim->valuestring;
    }
    micro = text != NULL ? pdp_usd_micro(text, &why) : 0;
    if (micro <= 0) {
        *st = pdp_api_err(c, 400, "invalid_limit", "\"limit_usd\" %.40s %s.",
                          text != NULL ? text : "", why);
        return false;
    }
    q->limit_micro = micro;
    return true;
}

/* pdp_quotas_window reads the budget's window (given as window) into q. */
static bool
pdp_quotas_window(pdp_api_call *c, const char *window, pdp_quota *q,
                  unsigned *st)
{
    if (window == NULL) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give \"window\": \"daily\", \"weekly\", "
                          "\"monthly\" or \"rolling:<hours>h\".");
        return false;
    }
    if (!pdp_window_parse(window, &q->window, &q->window_h)) {
        *st = pdp_api_err(c, 400, "invalid_window",
                          "\"window\" \"%.40s\" is not a window the budget "
                          "calendar knows: use \"daily\", \"weekly\" (Monday "
                          "to Monday), \"monthly\" or \"rolling:<N>h\" with N "
                          "from 1 to %d.",
                          window, PDP_BUDGET_ROLLING_H_MAX);
        return false;
    }
    if (q->window != PDP_WINDOW_ROLLING) {
        q->window_h = 0;
    }
    return true;
}

/* pdp_quotas_thresholds reads "thresholds" (percents alerted at, once per
 * calendar window) into q. */
static bool
pdp_quotas_thresholds(pdp_api_call *c, pdp_quota *q, unsigned *st)
{
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(c->body, "thresholds");

    q->nthr = 0;
    if (thr != NULL && !cJSON_IsArray(thr)) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"thresholds\" must be an array of percents, e.g. "
                          "[50, 80].");
        return false;
    }
    for (const cJSON *t = thr != NULL ? thr->child : NULL; t != NULL;
         t              = t->next) {
        int64_t pct = 0;

        if (!tg_json_whole(t, 1, 99, &pct) ||
            (q->nthr > 0 && pct <= q->thr[q->nthr - 1]) ||
            q->nthr == PDP_LIMITS_THRESHOLDS_MAX) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "\"thresholds\": give at most %d whole "
                              "percents from 1 to 99, ascending, e.g. [50, "
                              "80].",
                              PDP_LIMITS_THRESHOLDS_MAX);
            return false;
        }
        q->thr[q->nthr++] = (uint8_t)pct;
    }
    if (q->nthr > 0 && q->window == PDP_WINDOW_ROLLING) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"thresholds\" need a calendar window (daily, "
                          "weekly or monthly): a rolling window has no start "
                          "to alert once per.");
        return false;
    }
    return true;
}

bool
pdp_quotas_budget_read(pdp_api_call *c, pdp_quota *q, unsigned *st)
{
    const char *window;
    const char *action;

    if (!pdp_api_str(c, "window", &window, st) ||
        !pdp_api_str(c, "action", &action, st) || !pdp_quotas_limit(c, q, st) ||
        !pdp_quotas_window(c, window, q, st)) {
        return false;
    }
    q->clamp = false;
    if (action != NULL && strcmp(action, "clamp") == 0) {
        q->clamp = true;
    } else if (action != NULL && strcmp(action, "deny") != 0) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"action\" \"%.40s\" is not valid: \"deny\" (429 "
                          "budget_exceeded) or \"clamp\" (lower max_tokens "
                          "to what the budget can pay).",
                          action);
        return false;
    }
    return pdp_quotas_thresholds(c, q, st);
}

static bool
pdp_quotas_rate_field(pdp_api_call *c, const char *name, int64_t max,
                      int64_t *out, unsigned *st)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->body, name);

    if (m == NULL) {
        *out = 0;
        return true;
    }
    if (!tg_json_whole(m, 0, max, out)) {
        *st = pdp_api_err(c, 400, "invalid_limit",
                          "\"%s\" must be a whole number from 0 (no limit) "
                          "to %lld.",
                          name, (long long)max);
        return false;
    }
    return true;
}

bool
pdp_quotas_rates_read(pdp_api_call *c, pdp_quota *q, unsigned *st)
{
    if (!pdp_quotas_rate_field(c, "rpm", PDP_RPM_MAX, &q->rpm, st) ||
        !pdp_quotas_rate_field(c, "tpm", PDP_TPM_MAX, &q->tpm, st) ||
        !pdp_quotas_rate_field(c, "concurrent", PDP_CONCURRENT_MAX,
                               &q->concurrent, st)) {
        return false;
    }
    if (q->rpm == 0 && q->tpm == 0 && q->concurrent == 0) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give at least one of \"rpm\", \"tpm\", "
                          "\"concurrent\" above 0 (to remove the limits, "
                          "DELETE them).");
        return false;
    }
    return true;
}

/* pdp_quotas_priced: a budget can hold a request for model: every
 * deployment of it has a price. */
static bool
pdp_quotas_priced(const pdp_api_ctx *x, const char *model)
{
    tg_price p;

    for (size_t i = 0; i < x->cfg->n_deployments; i++) {
        const tg_deployment *d = &x->cfg->deployments[i];
        if (strcmp(d->model, model) == 0 &&
            !pdp_deployment_price(x->bundle, x->pricing, d, model, &p)) {
            return false;
        }
    }
    return true;
}

/* pdp_quotas_may_use: a key k (NULL: any key of the tenant) may ask for
 * the catalog's deployment i, and it is its model's first. */
static bool
pdp_quotas_may_use(const tg_config *cfg, const pdp_key *k, size_t i)
{
    const char *m = cfg->deployments[i].model;

    for (size_t j = 0; j < i; j++) {
        if (strcmp(cfg->deployments[j].model, m) == 0) {
            return false;
        }
    }
    for (uint32_t j = 0; k != NULL && j < k->n_models; j++) {
        if (strcmp(k->models[j], m) == 0) {
            return true;
        }
    }
    return k == NULL || k->n_models == 0;
}

void
pdp_quotas_warn_unpriced(pdp_api_call *c, const pdp_key *k, cJSON *doc)
{
    const pdp_api_ctx *x         = c->x;
    char               list[512] = "";
    size_t             n         = 0;

    if (x->cfg == NULL || (x->pricing == NULL && x->bundle == NULL)) {
        return; /* the prices are not known here */
    }
    for (size_t i = 0; i < x->cfg->n_deployments; i++) {
        const char *m    = x->cfg->deployments[i].model;
        size_t      used = strlen(list);
        if (!pdp_quotas_may_use(x->cfg, k, i) || pdp_quotas_priced(x, m)) {
            continue;
        }
        if (n++ < 8) {
            snprintf(list + used, sizeof(list) - used, "%s\"%.80s\"",
                     used > 0 ? ", " : "", m);
        }
    }
    if (n > 0) {
        char   msg[1024];
        cJSON *w = cJSON_AddArrayToObject(doc, "warnings");
        snprintf(msg, sizeof(msg),
                 "%s %s%s %s no price (in pdp.pricing_file, the bundle's "
                 "pricing.json or the deployment's \"pricing\"), so under "
                 "this budget every request for %s is refused with 403 "
                 "model_unpriced until %s priced.",
                 n == 1 ? "Model" : "Models", list, n > 8 ? ", ..." : "",
                 n == 1 ? "has" : "have", n == 1 ? "it" : "them",
                 n == 1 ? "it is" : "they are");
        cJSON_AddItemToArray(w, cJSON_CreateString(msg));
    }
}

/* pdp_quotas_budget_set answers a budget just set, with a warning when a
 * model it covers has no price. */
static unsigned
pdp_quotas_budget_set(pdp_api_call *c, const pdp_quota *q,
                      pdp_quota_scope scope, const char *id)
{
    cJSON  *doc = pdp_quotas_budget_json(c, q);
    pdp_key k;

    /* A key's budget covers the models the key may use. */
    if (scope == PDP_QUOTA_KEY && pdp_api_read_key(c, id, &k, NULL) == TG_OK) {
        pdp_quotas_warn_unpriced(c, &k, doc);
    } else if (scope == PDP_QUOTA_TENANT) {
        pdp_quotas_warn_unpriced(c, NULL, doc);
    }
    return pdp_api_ok(c, 200, doc);
}

/* pdp_quotas_write sets (PUT) or removes (DELETE) the budget or the rate
 * limits of a tenant or key, keeping the other half of its quota. */
static unsigned
pdp_quotas_write(pdp_api_call *c, bool remove)
{
    bool            budgets = c->how == PDP_QUOTAS_BUDGETS;
    pdp_quota_scope scope;
    const char     *id;
    pdp_quota       q;
    unsigned        st      = 0;
    bool            created = false;
    char            target[PDP_AUDIT_TARGET_MAX];
    pdp_audit       a;
    tg_err          rv;

    if (!pdp_quotas_path(c, &scope, &id, &st)) {
        return st;
    }
    rv = pdp_quotas_read(c, scope, id, &q);
    if (rv == TG_ENOTFOUND) {
        memset(&q, 0, sizeof(q));
        q.scope = scope;
        snprintf(q.id, sizeof(q.id), "%s", id);
    } else if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the quota");
    }
    if (remove) {
        bool had = budgets ? q.limit_micro > 0
                           : (q.rpm > 0 || q.tpm > 0 || q.concurrent > 0);
        if (!had) {
            return pdp_quotas_missing(c, budgets, scope, id);
        }
        if (budgets) {
            q.limit_micro = 0;
            q.nthr        = 0;
        } else {
            q.rpm = q.tpm = q.concurrent = 0;
        }
    } else if (c->body == NULL) {
        return pdp_api_err(c, 400, "missing_body",
                           budgets ? "Give the budget as JSON, e.g. "
                                     "{\"limit_usd\": 100, \"window\": "
                                     "\"monthly\", \"thresholds\": [50, 80]}."
                                   : "Give the limits as JSON, e.g. "
                                     "{\"rpm\": 60}.");
    } else if (!pdp_api_fields(c,
                               budgets ? pdp_quotas_budget_fields
                                       : pdp_quotas_rate_fields,
                               &st) ||
               (budgets ? !pdp_quotas_budget_read(c, &q, &st)
                        : !pdp_quotas_rates_read(c, &q, &st))) {
        return st;
    }
    q.updated_ms = c->now_ms;
    snprintf(q.updated_by, sizeof(q.updated_by), "%s", c->x->actor);
    snprintf(target, sizeof(target), "%s:%s",
             scope == PDP_QUOTA_TENANT ? "tenant" : "key", id);
    pdp_api_audit(c, &a,
                  budgets ? (remove ? "budgets.delete" : "budgets.set")
                          : (remove ? "ratelimits.delete" : "ratelimits.set"),
                  target,
                  c->body != NULL && !remove ? cJSON_Duplicate(c->body, true)
                                             : NULL);
    if (q.limit_micro == 0 && q.rpm == 0 && q.tpm == 0 && q.concurrent == 0) {
        rv = pdp_store_quota_del(c->x->st, scope, id);
    } else {
        rv = pdp_store_quota_put(c->x->st, &q, &created);
    }
    pdp_api_audit_end(c->x->st, &a);
    if (rv == TG_ENOTFOUND) {
        return scope == PDP_QUOTA_TENANT
                   ? pdp_api_err(c, 404, "tenant_not_found",
                                 "No tenant \"%s\"; create it first "
                                 "(tollgate-pdp tenants create %s).",
                                 id, id)
                   : pdp_api_key_missing(c, id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "store the quota");
    }
    if (remove) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "deleted", target);
        return pdp_api_ok(c, 200, doc);
    }
    if (budgets) {
        return pdp_quotas_budget_set(c, &q, scope, id);
    }
    return pdp_api_ok(c, 200, pdp_quotas_rate_json(&q));
}

unsigned
pdp_quotas_put(pdp_api_call *c)
{
    return pdp_quotas_write(c, false);
}

unsigned
pdp_quotas_delete(pdp_api_call *c)
{
    return pdp_quotas_write(c, true);
}
