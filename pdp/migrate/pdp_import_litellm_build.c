/* pdp_import_litellm_build.c - turns what the LiteLLM importer read into
 * Tollgate's output: deployments (model_group_alias copies included),
 * model groups, the rate_limit and budget rules the config implies, and
 * tests generated from the routing (contracts in pdp_import_litellm.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_import_litellm.h"

#define PDP_LT_BUDGET_RULE "litellm-budget"
#define PDP_LT_PARALLEL_RULE "litellm-parallel"

/* pdp_lt_target is the model whose deployments m uses (itself, or the
 * model an alias stands for). */
static const char *
pdp_lt_target(const pdp_lt_model *m)
{
    return m->alias_of != NULL ? m->alias_of : m->name;
}

/* pdp_lt_weights settles the weights of model m's deployments: fractions
 * scaled by 1000 (all of the model's, keeping the ratios); with no weight
 * at all and an rpm on each, simple-shuffle's weighting by rpm. */
static void
pdp_lt_weights(pdp_lt *c, const pdp_lt_model *m)
{
    bool frac = false, any = false, all_rpm = true;

    for (size_t i = 0; i < c->n_deps; i++) {
        const pdp_lt_dep *d = &c->deps[i];
        if (!d->imported || strcmp(d->model_name, m->name) != 0) {
            continue;
        }
        any     = any || d->has_weight;
        frac    = frac || (d->has_weight && d->weight != floor(d->weight));
        all_rpm = all_rpm && d->has_rpm;
    }
    for (size_t i = 0; i < c->n_deps; i++) {
        pdp_lt_dep *d = &c->deps[i];
        if (!d->imported || strcmp(d->model_name, m->name) != 0) {
            continue;
        }
        if (frac) {
            d->weight     = llround((d->has_weight ? d->weight : 1.0) * 1000);
            d->has_weight = true;
        } else if (!any && all_rpm && m->n_deps > 1 &&
                   (c->strategy == NULL ||
                    strcmp(c->strategy, "weighted") == 0)) {
            d->weight     = (double)d->rpm;
            d->has_weight = true;
            pdp_mig_add(c->f, "model_list", d->line, PDP_MIG_MAPPED,
                        "deployment %s: weight %lld, its rpm (simple-shuffle "
                        "weighs by rpm when no weight is given)",
                        d->id, d->rpm);
        }
    }
}

/* pdp_lt_dep_json is one Tollgate deployment for d, served as model
 * (d's own, or an alias's) under id. */
static cJSON *
pdp_lt_dep_json(const pdp_lt_dep *d, const char *model, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *pr;

    if (o == NULL) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "provider", d->provider);
    if (d->api_base != NULL) {
        cJSON_AddStringToObject(o, "api_base", d->api_base);
    }
    if (d->api_key[0] != '\0') {
        cJSON_AddStringToObject(o, "api_key", d->api_key);
    }
    cJSON_AddStringToObject(o, "upstream_model", d->upstream);
    if (d->api_version != NULL) {
        cJSON_AddStringToObject(o, "api_version", d->api_version);
    }
    if (d->has_weight) {
        cJSON_AddNumberToObject(o, "weight", d->weight);
    }
    if (d->in_price[0] != '\0' &&
        (pr = cJSON_AddObjectToObject(o, "pricing")) != NULL) {
        /* Raw: the exact decimal text, never through a double. */
        cJSON_AddRawToObject(pr, "input_per_mtok", d->in_price);
        cJSON_AddRawToObject(pr, "output_per_mtok", d->out_price);
        if (d->cached_price[0] != '\0') {
            cJSON_AddRawToObject(pr, "cached_input_per_mtok", d->cached_price);
        }
    }
    return o;
}

/* pdp_lt_sorted lists the indexes of model's deployments in c->deps in
 * the order they are tried: by litellm_params.order (none: last), then
 * as written. Returns how many; sets *ordered when one had an order. */
static size_t
pdp_lt_sorted(const pdp_lt *c, const char *model, size_t *ix, bool *ordered)
{
    size_t n = 0;

    *ordered = false;
    for (size_t i = 0; i < c->n_deps; i++) {
        const pdp_lt_dep *d = &c->deps[i];
        size_t            j = n;
        if (!d->imported || strcmp(d->model_name, model) != 0) {
            continue;
        }
        *ordered = *ordered || d->order > 0;
        /* insertion sort, stable: a model has a handful of deployments */
        while (j > 0) {
            long long a = c->deps[ix[j - 1]].order;
            long long b = d->order;
            if ((a == 0 ? LLONG_MAX : a) <= (b == 0 ? LLONG_MAX : b)) {
                break;
            }
            ix[j] = ix[j - 1];
            j--;
        }
        ix[j] = i;
        n++;
    }
    return n;
}

/* pdp_lt_deployments fills c->j_deps, model by model in the order tried:
 * model_list's, then each alias's copies (ids <alias>-<n>). */
static bool
pdp_lt_deployments(pdp_lt *c)
{
    static size_t ix[PDP_LT_DEPS_MAX];
    char          id[TG_ID_MAX];
    char          base[TG_ID_MAX - 12];

    for (int alias = 0; alias < 2; alias++) {
        for (size_t k = 0; k < c->n_models; k++) {
            pdp_lt_model *m = &c->models[k];
            size_t        n;
            int           seq = 0;
            if ((m->alias_of != NULL) != (alias == 1)) {
                continue;
            }
            n = pdp_lt_sorted(c, pdp_lt_target(m), ix, &m->ordered);
            pdp_lt_slug(m->name, base, sizeof(base));
            for (size_t i = 0; i < n; i++) {
                const pdp_lt_dep *d = &c->deps[ix[i]];
                if (alias == 1) {
                    do {
                        snprintf(id, sizeof(id), "%s-%d", base, ++seq);
                    } while (pdp_lt_dep_by_id(c, id) != NULL);
                }
                if (!cJSON_AddItemToArray(
                        c->j_deps,
                        pdp_lt_dep_json(d, m->name, alias == 1 ? id : d->id))) {
                    return false;
                }
            }
        }
    }
    return true;
}

/* pdp_lt_route adds to arr the ids of m's deployments, catalog order. */
static void
pdp_lt_route(const pdp_lt *c, const pdp_lt_model *m, cJSON *arr)
{
    for (const cJSON *d = c->j_deps->child; d != NULL; d = d->next) {
        const cJSON *model = cJSON_GetObjectItem(d, "model");
        if (strcmp(model->valuestring, m->name) == 0) {
            cJSON_AddItemToArray(
                arr,
                cJSON_CreateString(cJSON_GetObjectItem(d, "id")->valuestring));
        }
    }
}

/* pdp_lt_group_fb adds m's fallbacks of kind (an alias inherits its
 * target's; default_fallbacks fill in where none is given). */
static void
pdp_lt_group_fb(pdp_lt *c, const pdp_lt_model *m, int kind, cJSON *g)
{
    static const char *const names[] = {"fallbacks", "context_window_fallbacks",
                                        "content_policy_fallbacks"};
    const pdp_lt_model      *src     = m;
    cJSON                   *arr;

    if (src->n_fb[kind] == 0 && m->alias_of != NULL) {
        src = pdp_lt_model_find(c, m->alias_of);
    }
    if (src->n_fb[kind] > 0) {
        arr = cJSON_AddArrayToObject(g, names[kind]);
        for (size_t i = 0; i < src->n_fb[kind]; i++) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(src->fb[kind][i]));
        }
        return;
    }
    if (kind != PDP_LT_FB || !cJSON_IsArray(c->default_fb)) {
        return;
    }
    arr = NULL;
    for (const cJSON *t = c->default_fb->child; t != NULL; t = t->next) {
        if (cJSON_IsString(t) && strcmp(t->valuestring, m->name) != 0 &&
            pdp_lt_model_find(c, t->valuestring) != NULL &&
            cJSON_GetArraySize(arr) < TG_CONFIG_MAX_FALLBACKS) {
            if (arr == NULL) {
                arr = cJSON_AddArrayToObject(g, names[kind]);
            }
            cJSON_AddItemToArray(arr, cJSON_CreateString(t->valuestring));
        }
    }
}

/* pdp_lt_groups fills c->j_groups: a strategy where a model has several
 * deployments (LiteLLM's default is simple-shuffle: weighted), and the
 * fallbacks. */
static void
pdp_lt_groups(pdp_lt *c)
{
    const char *strategy = c->strategy != NULL ? c->strategy : "weighted";

    for (size_t k = 0; k < c->n_models; k++) {
        const pdp_lt_model *m = &c->models[k];
        cJSON              *g;
        if (m->n_deps == 0) {
            continue;
        }
        g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "model", m->name);
        if (m->n_deps > 1) {
            cJSON_AddStringToObject(g, "strategy",
                                    m->ordered ? "ordered" : strategy);
        }
        for (int kind = 0; kind < PDP_LT_FB_N; kind++) {
            pdp_lt_group_fb(c, m, kind, g);
        }
        if (cJSON_GetArraySize(g) > 1) {
            cJSON_AddItemToArray(c->j_groups, g);
        } else {
            cJSON_Delete(g);
        }
    }
    if (c->strategy == NULL) {
        for (size_t k = 0; k < c->n_models; k++) {
            if (c->models[k].n_deps > 1 && !c->models[k].ordered) {
                pdp_mig_add(c->f, "router_settings.routing_strategy", 0,
                            PDP_MIG_MAPPED,
                            "not set: LiteLLM's default simple-shuffle, "
                            "strategy weighted in the model_groups of every "
                            "model with more than one deployment and no "
                            "order");
                break;
            }
        }
    }
    if (c->default_fb != NULL) {
        pdp_lt_note(c, c->default_fb_path, c->default_fb,
                    cJSON_IsArray(c->default_fb) ? PDP_MIG_MAPPED
                                                 : PDP_MIG_UNSUPPORTED,
                    "%s",
                    cJSON_IsArray(c->default_fb)
                        ? "the fallbacks of every model that names none of "
                          "its own (model names of model_list only)"
                        : "expected a list of model names; dropped");
    }
}

/* pdp_lt_sum adds the rpm, tpm or concurrency of m's deployments to rule
 * as key, when every deployment has one; says so otherwise. */
static bool
pdp_lt_sum(pdp_lt *c, const pdp_lt_model *m, cJSON *rule, int which,
           const char *key)
{
    long long sum  = 0;
    int       have = 0, all = 0;

    for (size_t i = 0; i < c->n_deps; i++) {
        const pdp_lt_dep *d = &c->deps[i];
        bool              h = which == 0   ? d->has_rpm
                              : which == 1 ? d->has_tpm
                                           : d->has_conc;
        if (!d->imported || strcmp(d->model_name, m->name) != 0) {
            continue;
        }
        all++;
        if (h) {
            have++;
            sum += which == 0 ? d->rpm : which == 1 ? d->tpm : d->conc;
        }
    }
    if (have == 0) {
        return false;
    }
    if (have < all) {
        pdp_mig_add(c->f, "model_list", m->line, PDP_MIG_APPROXIMATED,
                    "model \"%s\": %d of its %d deployments have %s; LiteLLM "
                    "sends the rest to the unlimited ones, so no model-wide "
                    "%s limit is set",
                    m->name, have, all, key, key);
        return false;
    }
    cJSON_AddNumberToObject(rule, key, (double)sum);
    return true;
}

/* pdp_lt_limits adds a rate_limit rule (scope model) per model whose
 * deployments carry rpm, tpm or max_parallel_requests. */
static void
pdp_lt_limits(pdp_lt *c)
{
    char slug[TG_ID_MAX - 16];

    for (size_t k = 0; k < c->n_models; k++) {
        pdp_lt_model *m    = &c->models[k];
        cJSON        *rule = cJSON_CreateObject();
        bool          any  = false;
        cJSON        *when;
        if (m->alias_of != NULL || m->n_deps == 0 || rule == NULL) {
            cJSON_Delete(rule);
            continue;
        }
        pdp_lt_slug(m->name, slug, sizeof(slug));
        snprintf(m->limit_rule, sizeof(m->limit_rule), "litellm-limits-%s",
                 slug);
        cJSON_AddStringToObject(rule, "id", m->limit_rule);
        cJSON_AddStringToObject(rule, "kind", "rate_limit");
        cJSON_AddStringToObject(rule, "scope", "model");
        any |= pdp_lt_sum(c, m, rule, 0, "rpm");
        any |= pdp_lt_sum(c, m, rule, 1, "tpm");
        any |= pdp_lt_sum(c, m, rule, 2, "concurrent");
        when = cJSON_AddObjectToObject(rule, "when");
        when = cJSON_AddArrayToObject(when, "eq");
        cJSON_AddItemToArray(when, cJSON_CreateString("request.model"));
        cJSON_AddItemToArray(when, cJSON_CreateString(m->name));
        cJSON_AddStringToObject(rule, "description",
                                "From the rpm/tpm/max_parallel_requests of "
                                "this model's LiteLLM deployments (summed).");
        if (any) {
            cJSON_AddItemToArray(c->j_rules, rule);
        } else {
            m->limit_rule[0] = '\0';
            cJSON_Delete(rule);
        }
    }
}

/* pdp_lt_budget_limit reads max_budget as exact decimal text (at most 6
 * decimals, above 0, at most 1e9) into buf. */
static bool
pdp_lt_budget_limit(const cJSON *v, char *buf, size_t cap, bool *rounded)
{
    char        text[64];
    double      x;
    char       *end;
    const char *dot;

    *rounded = false;
    if (!pdp_mig_number_text(v, text, sizeof(text))) {
        return false;
    }
    x = strtod(text, &end);
    if (*end != '\0' || !(x > 0) || x > 1e9) {
        return false;
    }
    dot = strchr(text, '.');
    if (strpbrk(text, "eE") != NULL || (dot != NULL && strlen(dot + 1) > 6)) {
        snprintf(buf, cap, "%.6f", x);
        *rounded = true;
        return strtod(buf, NULL) > 0;
    }
    snprintf(buf, cap, "%s", text);
    return true;
}

/* pdp_lt_when_models is {"in": ["request.model", [priced models]]}. */
static cJSON *
pdp_lt_when_models(const pdp_lt *c)
{
    cJSON *when = cJSON_CreateObject();
    cJSON *in   = cJSON_AddArrayToObject(when, "in");
    cJSON *list = cJSON_CreateArray();

    cJSON_AddItemToArray(in, cJSON_CreateString("request.model"));
    cJSON_AddItemToArray(in, list);
    for (size_t k = 0; k < c->n_models; k++) {
        if (c->models[k].budgeted) {
            cJSON_AddItemToArray(list, cJSON_CreateString(c->models[k].name));
        }
    }
    return when;
}

/* pdp_lt_priced marks the models every deployment of which has pricing;
 * returns how many of the models with deployments are. */
static size_t
pdp_lt_priced(pdp_lt *c, size_t *with_deps)
{
    size_t n = 0;

    *with_deps = 0;
    for (size_t k = 0; k < c->n_models; k++) {
        pdp_lt_model *m = &c->models[k];
        m->priced       = m->n_deps > 0;
        for (size_t i = 0; i < c->n_deps; i++) {
            const pdp_lt_dep *d = &c->deps[i];
            if (d->imported && strcmp(d->model_name, pdp_lt_target(m)) == 0 &&
                d->in_price[0] == '\0') {
                m->priced = false;
            }
        }
        *with_deps += m->n_deps > 0;
        n += m->priced;
    }
    return n;
}

/* pdp_lt_budgeted marks the models the budget rule counts: priced by
 * the config (m->priced), or as the PDP prices them from the --pricing
 * table (by model, or every deployment by upstream_model); returns how
 * many. */
static size_t
pdp_lt_budgeted(pdp_lt *c)
{
    size_t n = 0;

    for (size_t k = 0; k < c->n_models; k++) {
        pdp_lt_model *m = &c->models[k];
        m->budgeted =
            m->n_deps > 0 &&
            (m->priced || (c->table != NULL &&
                           pdp_mig_priced(c->j_deps, c->table, m->name)));
        n += m->budgeted;
    }
    return n;
}

/* pdp_lt_table_price copies name's prices from the --pricing table into
 * models (pricing.json's), unless models has name already. */
static void
pdp_lt_table_price(const pdp_lt *c, cJSON *models, const char *name)
{
    tg_price p;
    cJSON   *pr;
    char     usd[TG_USD_MAX];

    if (cJSON_GetObjectItemCaseSensitive(models, name) != NULL ||
        !tg_pricing_find(c->table, name, &p) ||
        (pr = cJSON_AddObjectToObject(models, name)) == NULL) {
        return;
    }
    /* micro-USD per 1M tokens, written back exactly as USD */
    tg_usd(p.input, usd, sizeof(usd));
    cJSON_AddRawToObject(pr, "input_per_mtok", usd);
    tg_usd(p.output, usd, sizeof(usd));
    cJSON_AddRawToObject(pr, "output_per_mtok", usd);
    tg_usd(p.cached_input, usd, sizeof(usd));
    cJSON_AddRawToObject(pr, "cached_input_per_mtok", usd);
}

/* pdp_lt_table_prices adds what the --pricing table prices a budgeted
 * model without a price in the config by, under the names the table
 * knows it by (the model's, else each deployment's upstream_model): the
 * bundle's tests, which `serve` runs too, compile against catalog.json
 * and this pricing.json, never pdp.pricing_file. */
static void
pdp_lt_table_prices(const pdp_lt *c, cJSON *models)
{
    tg_price p;

    for (size_t k = 0; c->table != NULL && k < c->n_models; k++) {
        const pdp_lt_model *m = &c->models[k];
        if (!m->budgeted || m->priced) {
            continue;
        }
        if (tg_pricing_find(c->table, m->name, &p)) {
            pdp_lt_table_price(c, models, m->name);
            continue;
        }
        for (size_t i = 0; i < c->n_deps; i++) {
            const pdp_lt_dep *d = &c->deps[i];
            if (d->imported && strcmp(d->model_name, pdp_lt_target(m)) == 0) {
                pdp_lt_table_price(c, models, d->upstream);
            }
        }
    }
}

/* pdp_lt_pricing makes the bundle's pricing.json, which a budget rule
 * needs: each priced model at its first deployment's prices (each
 * deployment's own pricing still wins when usage is costed), then the
 * --pricing table's prices of the other budgeted models. */
static cJSON *
pdp_lt_pricing(const pdp_lt *c)
{
    cJSON *doc    = cJSON_CreateObject();
    cJSON *models = cJSON_AddObjectToObject(doc, "models");

    cJSON_AddStringToObject(doc, "currency", "USD");
    for (size_t k = 0; models != NULL && k < c->n_models; k++) {
        const pdp_lt_model *m = &c->models[k];
        for (size_t i = 0; m->priced && i < c->n_deps; i++) {
            const pdp_lt_dep *d = &c->deps[i];
            cJSON            *pr;
            if (!d->imported || strcmp(d->model_name, pdp_lt_target(m)) != 0) {
                continue;
            }
            pr = cJSON_AddObjectToObject(models, m->name);
            cJSON_AddRawToObject(pr, "input_per_mtok", d->in_price);
            cJSON_AddRawToObject(pr, "output_per_mtok", d->out_price);
            if (d->cached_price[0] != '\0') {
                cJSON_AddRawToObject(pr, "cached_input_per_mtok",
                                     d->cached_price);
            }
            break;
        }
    }
    if (models != NULL) {
        pdp_lt_table_prices(c, models);
    }
    return doc;
}

/* pdp_lt_budget maps litellm_settings.max_budget + budget_duration onto a
 * budget rule (scope tenant: Tollgate has no proxy-wide scope). */
static void
pdp_lt_budget(pdp_lt *c)
{
    const char *path = "litellm_settings.max_budget";
    char        limit[64], window[32] = "rolling:744h", how[512] = "";
    const char *dur =
        cJSON_IsString(c->budget_dur) ? c->budget_dur->valuestring : NULL;
    pdp_mig_kind wk   = PDP_MIG_APPROXIMATED;
    size_t       with = 0, budgeted;
    bool         rounded;
    cJSON       *rule;

    if (c->budget == NULL) {
        if (c->budget_dur != NULL) {
            pdp_lt_note(c, "litellm_settings.budget_duration", c->budget_dur,
                        PDP_MIG_UNSUPPORTED, "without max_budget: no budget");
        }
        return;
    }
    if (!pdp_lt_budget_limit(c->budget, limit, sizeof(limit), &rounded)) {
        pdp_lt_note(c, path, c->budget, PDP_MIG_UNSUPPORTED,
                    "expected USD above 0 and at most 1000000000 (a budget "
                    "of 0 blocks everything: write an access rule that "
                    "denies instead); no budget");
        return;
    }
    if (c->budget_dur != NULL) {
        wk = pdp_lt_window(dur, window, sizeof(window), how, sizeof(how));
        pdp_lt_note(c, "litellm_settings.budget_duration", c->budget_dur, wk,
                    "%s", how);
        if (wk == PDP_MIG_UNSUPPORTED) {
            pdp_lt_note(c, path, c->budget, PDP_MIG_UNSUPPORTED,
                        "its budget_duration has no Tollgate window; no "
                        "budget");
            return;
        }
    }
    (void)pdp_lt_priced(c, &with); /* marks m->priced */
    budgeted = pdp_lt_budgeted(c);
    if (budgeted == 0) {
        pdp_lt_note(c, path, c->budget, PDP_MIG_UNSUPPORTED,
                    "no model has a price in the config "
                    "(input_cost_per_token/output_cost_per_token)%s, and a "
                    "Tollgate budget needs one for each model it counts: "
                    "%s and add a budget rule",
                    c->table != NULL ? " nor in the --pricing table" : "",
                    c->table != NULL
                        ? "add them to that table"
                        : "import again with --pricing policies/pricing.json "
                          "(a price table: it sets pdp.pricing_file)");
        return;
    }
    rule = cJSON_CreateObject();
    cJSON_AddStringToObject(rule, "id", PDP_LT_BUDGET_RULE);
    cJSON_AddStringToObject(rule, "kind", "budget");
    cJSON_AddStringToObject(rule, "scope", "tenant");
    cJSON_AddStringToObject(rule, "window", window);
    cJSON_AddRawToObject(rule, "limit_usd", limit);
    if (budgeted < with) {
        cJSON_AddItemToObject(rule, "when", pdp_lt_when_models(c));
    }
    cJSON_AddStringToObject(rule, "description",
                            "From LiteLLM's litellm_settings.max_budget.");
    cJSON_AddItemToArray(c->j_rules, rule);
    c->j_pricing = pdp_lt_pricing(c);
    pdp_lt_note(c, path, c->budget, PDP_MIG_APPROXIMATED,
                "budget rule %s: %s USD%s per tenant, window %s%s (LiteLLM's "
                "budget is one for the whole proxy; Tollgate has no "
                "proxy-wide scope, and keys.sh puts keys without a team in "
                "tenant \"default\")%s",
                PDP_LT_BUDGET_RULE, limit,
                rounded ? " (rounded to 6 decimals)" : "", window,
                c->budget_dur == NULL ? " (LiteLLM's never resets "
                                        "without budget_duration: "
                                        "744h is Tollgate's longest)"
                                      : "",
                budgeted < with
                    ? (c->table != NULL
                           ? "; only the models with a price in the config "
                             "or the --pricing table are counted (the "
                             "others have none: add them to the table, or "
                             "give their deployments pricing, and widen the "
                             "rule)"
                           : "; only the models with a price in the config "
                             "are counted (the others have none: import "
                             "again with --pricing policies/pricing.json, "
                             "or give their deployments pricing, and widen "
                             "the rule)")
                    : "");
}

/* pdp_lt_parallel adds the rule for general_settings'
 * max_parallel_requests. */
static void
pdp_lt_parallel(pdp_lt *c)
{
    cJSON *rule;

    if (c->global_conc <= 0) {
        return;
    }
    rule = cJSON_CreateObject();
    cJSON_AddStringToObject(rule, "id", PDP_LT_PARALLEL_RULE);
    cJSON_AddStringToObject(rule, "kind", "rate_limit");
    cJSON_AddStringToObject(rule, "scope", "tenant");
    cJSON_AddNumberToObject(rule, "concurrent", (double)c->global_conc);
    cJSON_AddStringToObject(rule, "description",
                            "From LiteLLM's general_settings "
                            "max_parallel_requests.");
    cJSON_AddItemToArray(c->j_rules, rule);
}

/* pdp_lt_embedding: m's deployments serve embeddings (model_info.mode). */
static bool
pdp_lt_embedding(const pdp_lt *c, const pdp_lt_model *m)
{
    for (size_t i = 0; i < c->n_deps; i++) {
        const pdp_lt_dep *d = &c->deps[i];
        if (d->imported && d->embedding &&
            strcmp(d->model_name, pdp_lt_target(m)) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_lt_tests makes one test per client-facing model: allowed, and
 * routed to the deployments model_list gives it, in order. Its name says
 * which limits and budget apply to it: a test's expect has no field for
 * matched rate_limit and budget rules ("rules" holds the rules that
 * decided), so their scope is checked where they are made. */
static void
pdp_lt_tests(pdp_lt *c)
{
    for (size_t k = 0; k < c->n_models; k++) {
        const pdp_lt_model *m = &c->models[k];
        const pdp_lt_model *t = pdp_lt_model_find(c, pdp_lt_target(m));
        cJSON              *tc, *in, *p, *req, *ex;
        char                name[TG_MODEL_MAX + 160];
        if (m->n_deps == 0) {
            continue;
        }
        tc = cJSON_CreateObject();
        snprintf(name, sizeof(name),
                 "%s: allowed, routed as model_list says%s%s%s%s%s", m->name,
                 t->limit_rule[0] != '\0' && m->alias_of == NULL ? "; under "
                                                                 : "",
                 m->alias_of == NULL ? t->limit_rule : "",
                 m->budgeted ? "; under " PDP_LT_BUDGET_RULE : "",
                 c->global_conc > 0 ? "; under " PDP_LT_PARALLEL_RULE : "",
                 m->alias_of != NULL ? "; an alias" : "");
        cJSON_AddStringToObject(tc, "name", name);
        in = cJSON_AddObjectToObject(tc, "input");
        p  = cJSON_AddObjectToObject(in, "principal");
        cJSON_AddStringToObject(p, "key_id", "key_imported_test");
        cJSON_AddStringToObject(p, "tenant_id", "default");
        req = cJSON_AddObjectToObject(in, "request");
        cJSON_AddStringToObject(req, "endpoint",
                                pdp_lt_embedding(c, m) ? "embeddings" : "chat");
        cJSON_AddStringToObject(req, "model", m->name);
        cJSON_AddNumberToObject(req, "max_tokens", 16);
        cJSON_AddNumberToObject(req, "prompt_tokens", 10);
        ex = cJSON_AddObjectToObject(tc, "expect");
        cJSON_AddStringToObject(ex, "decision", "allow");
        pdp_lt_route(c, m, cJSON_AddArrayToObject(ex, "route"));
        cJSON_AddItemToArray(c->j_tests, tc);
    }
}

bool
pdp_lt_build(pdp_lt *c)
{
    size_t names = 0;

    c->j_deps      = cJSON_CreateArray();
    c->j_groups    = cJSON_CreateArray();
    c->j_rules     = cJSON_CreateArray();
    c->j_tests     = cJSON_CreateArray();
    c->model_names = cJSON_CreateArray();
    if (c->j_deps == NULL || c->j_groups == NULL || c->j_rules == NULL ||
        c->j_tests == NULL || c->model_names == NULL) {
        return false;
    }
    for (size_t k = 0; k < c->n_models; k++) {
        if (c->models[k].alias_of == NULL) {
            pdp_lt_weights(c, &c->models[k]);
        }
    }
    if (!pdp_lt_deployments(c)) {
        return false;
    }
    if (cJSON_GetArraySize(c->j_deps) == 0) {
        return pdp_lt_fatal(c, NULL,
                            "no deployment of model_list could be imported "
                            "(the findings say why for each)");
    }
    pdp_lt_groups(c);
    pdp_lt_limits(c);
    pdp_lt_budget(c);
    pdp_lt_parallel(c);
    pdp_lt_tests(c);
    for (size_t k = 0; k < c->n_models; k++) {
        if (c->models[k].n_deps > 0) {
            cJSON_AddItemToArray(c->model_names,
                                 cJSON_CreateString(c->models[k].name));
            names++;
        }
    }
    c->out.bundle_name  = "imported-litellm";
    c->out.description  = "Imported from a LiteLLM config by tollgate-pdp "
                          "import litellm.";
    c->out.deployments  = c->j_deps;
    c->out.model_groups = c->j_groups;
    c->out.dataplane    = c->j_dp;
    c->out.pdp          = c->j_pdp;
    c->out.top          = c->out_top;
    c->out.rules        = c->j_rules;
    c->out.tests        = c->j_tests;
    c->out.pricing      = c->j_pricing;
    return names > 0;
}

void
pdp_lt_free(pdp_lt *c)
{
    if (c == NULL) {
        return;
    }
    cJSON_Delete(c->j_deps);
    cJSON_Delete(c->j_groups);
    cJSON_Delete(c->j_dp);
    cJSON_Delete(c->j_pdp);
    cJSON_Delete(c->j_rules);
    cJSON_Delete(c->j_tests);
    cJSON_Delete(c->out_top);
    cJSON_Delete(c->j_pricing);
    cJSON_Delete(c->model_names);
    free(c->keys_sh);
    pdp_mig_findings_fini(&c->findings);
    tg_yaml_doc_destroy(c->doc);
    free(c);
}
