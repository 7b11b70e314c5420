/* pdp_policy_compile_route.c - the compiler's route stage: copies the
 * config's deployments catalog into the bundle and compiles route rules
 * ("deployments", "labels", "fallbacks", "strategy") against it.
 * Not thread-safe: called on the compiling thread by pdp_policy_compile*.c. */
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_compile_int.h"

static const char *const pdp_strategy_names[] = {
    "",           "ordered", "weighted", "least_inflight", "lowest_latency",
    "lowest_cost"};

const char *
pdp_strategy_name(tg_route_strategy s)
{
    return (unsigned)s < 6 ? pdp_strategy_names[s] : "";
}

static bool
pdp_dep_has_labels(const tg_deployment *d, const cJSON *labels)
{
    for (const cJSON *l = labels->child; l != NULL; l = l->next) {
        bool hit = false;
        for (size_t i = 0; i < d->n_labels && !hit; i++) {
            hit = strcmp(d->label_keys[i], l->string) == 0 &&
                  strcmp(d->label_values[i], l->valuestring) == 0;
        }
        if (!hit) {
            return false;
        }
    }
    return true;
}

static int
pdp_cc_group(const pdp_bundle *b, const char *pool, const char *model)
{
    for (uint32_t g = 0; g < b->ngroups; g++) {
        if (strcmp(pool + b->groups[g].model.off, model) == 0) {
            return (int)g;
        }
    }
    return -1;
}

void
pdp_cc_catalog(pdp_cc *cc, const tg_config *cfg)
{
    pdp_bundle *b           = cc->b;
    uint32_t    cap_groups  = 0;
    uint32_t    cap_members = 0;

    b->have_catalog = true;
    b->ndeps        = (uint32_t)cfg->n_deployments;
    b->dep_ids      = calloc(b->ndeps + 1, sizeof(*b->dep_ids));
    b->dep_group    = calloc(b->ndeps + 1, sizeof(*b->dep_group));
    if (b->dep_ids == NULL || b->dep_group == NULL) {
        cc->oom = true;
    }
    for (uint32_t i = 0; i < b->ndeps && !cc->oom; i++) {
        const tg_deployment *d = &cfg->deployments[i];
        int                  g;
        b->dep_ids[i] = pdp_cc_cstr(cc, d->id);
        g             = pdp_cc_group(b, cc->pool.data, d->model);
        if (g < 0) {
            if (!pdp_cc_grow(cc, (void **)&b->groups, &cap_groups,
                             b->ngroups + 1, sizeof(*b->groups))) {
                break;
            }
            g                  = (int)b->ngroups++;
            b->groups[g].model = pdp_cc_cstr(cc, d->model);
            b->groups[g].hash  = pdp_hash(d->model, strlen(d->model));
            b->groups[g].n     = 0;
        }
        b->dep_group[i] = (uint32_t)g;
        b->groups[g].n++;
    }
    /* Members grouped by model, catalog order within a group. */
    if (!cc->oom && pdp_cc_grow(cc, (void **)&b->members, &cap_members,
                                b->ndeps + 1, sizeof(*b->members))) {
        uint32_t at = 0;
        for (uint32_t g = 0; g < b->ngroups; g++) {
            b->groups[g].first = at;
            for (uint32_t i = 0; i < b->ndeps; i++) {
                if (b->dep_group[i] == g) {
                    b->members[at++] = i;
                }
            }
        }
    }
}

/* pdp_cc_dep_index is the catalog index of the deployment id in d, or
 * ndeps (with an error naming the closest id) when there is none. */
static uint32_t
pdp_cc_dep_index(pdp_cc *cc, const cJSON *d)
{
    const pdp_bundle *b = cc->b;
    const char       *ids[64];
    size_t            nids = b->ndeps < 64 ? b->ndeps : 64;
    const char       *sug;

    for (uint32_t i = 0; i < b->ndeps; i++) {
        if (strcmp(pdp_cc_s(cc, b->dep_ids[i]), d->valuestring) == 0) {
            return i;
        }
    }
    for (size_t k = 0; k < nids; k++) {
        ids[k] = pdp_cc_s(cc, b->dep_ids[k]);
    }
    sug = pdp_suggest(d->valuestring, ids, nids);
    if (sug != NULL) {
        PDP_ERR(cc, d, "unknown deployment id \"%s\" (did you mean \"%s\"?)",
                d->valuestring, sug);
    } else {
        PDP_ERR(cc, d,
                "unknown deployment id \"%s\": not in the config's "
                "deployments",
                d->valuestring);
    }
    return b->ndeps;
}

/* pdp_cc_route_deps reads "deployments" into rt's allow set and order,
 * clearing *ok on an error; false only when out of memory. */
static bool
pdp_cc_route_deps(pdp_cc *cc, const cJSON *deps, pdp_route *rt, bool *ok)
{
    rt->has_list = true;
    if (!cJSON_IsArray(deps) || deps->child == NULL) {
        PDP_ERR(cc, deps,
                "\"deployments\" expects a non-empty list of "
                "deployment ids from the config");
        *ok = false;
        return true;
    }
    rt->order = calloc((size_t)cJSON_GetArraySize(deps), sizeof(uint32_t));
    if (rt->order == NULL) {
        cc->oom = true;
        return false;
    }
    for (const cJSON *d = deps->child; d != NULL; d = d->next) {
        uint32_t i;
        if (!cJSON_IsString(d)) {
            PDP_ERR(cc, d,
                    "\"deployments\": expected a deployment "
                    "id, got %s",
                    pdp_json_type(d));
            *ok = false;
            continue;
        }
        if ((i = pdp_cc_dep_index(cc, d)) == cc->b->ndeps) {
            *ok = false;
            continue;
        }
        if (rt->allow[i / 64] & (1ull << (i % 64))) {
            PDP_ERR(cc, d, "deployment \"%s\" is listed twice", d->valuestring);
            *ok = false;
            continue;
        }
        rt->allow[i / 64] |= 1ull << (i % 64);
        rt->order[rt->n_order++] = i;
    }
    return true;
}

/* pdp_cc_route_labels keeps in rt's allow set only the deployments with
 * every label in labels (listed: "deployments" was given too), clearing
 * *ok on an error or when none is left. */
static void
pdp_cc_route_labels(pdp_cc *cc, const cJSON *labels, bool listed, pdp_route *rt,
                    bool *ok)
{
    const pdp_bundle *b   = cc->b;
    bool              lok = cJSON_IsObject(labels) && labels->child != NULL;
    bool              any = false;

    for (const cJSON *l = lok ? labels->child : NULL; l != NULL; l = l->next) {
        if (!cJSON_IsString(l)) {
            PDP_ERR(cc, l,
                    "\"labels\": label \"%s\" expects a string "
                    "value, got %s",
                    l->string, pdp_json_type(l));
            lok = false;
        }
    }
    if (!cJSON_IsObject(labels) || labels->child == NULL) {
        PDP_ERR(cc, labels,
                "\"labels\" expects an object of labels, e.g. "
                "{\"region\": \"eu\"}");
    }
    if (!lok) {
        *ok = false;
        return;
    }
    for (uint32_t i = 0; i < b->ndeps; i++) {
        if (!pdp_dep_has_labels(&cc->cfg->deployments[i], labels)) {
            rt->allow[i / 64] &= ~(1ull << (i % 64));
        } else if (rt->allow[i / 64] & (1ull << (i % 64))) {
            any = true;
        }
    }
    if (!any && *ok) {
        PDP_ERR(cc, labels,
                "no deployment in the catalog%s has these labels, "
                "so the rule could only ever deny",
                listed ? " listed in \"deployments\"" : "");
        *ok = false;
    }
}

/* pdp_cc_route_fallbacks reads "fallbacks" (model names with catalog
 * deployments) into rt, clearing *ok on an error; false only when out of
 * memory. */
static bool
pdp_cc_route_fallbacks(pdp_cc *cc, const cJSON *fbs, pdp_route *rt, bool *ok)
{
    if (!cJSON_IsArray(fbs)) {
        PDP_ERR(cc, fbs, "\"fallbacks\" expects a list of model names");
        *ok = false;
        return true;
    }
    rt->fallbacks =
        calloc((size_t)cJSON_GetArraySize(fbs) + 1, sizeof(uint32_t));
    if (rt->fallbacks == NULL) {
        cc->oom = true;
        return false;
    }
    for (const cJSON *f = fbs->child; f != NULL; f = f->next) {
        int g = -1;
        if (!cJSON_IsString(f)) {
            PDP_ERR(cc, f,
                    "\"fallbacks\": expected a model name, "
                    "got %s",
                    pdp_json_type(f));
        } else if ((g = pdp_cc_group(cc->b, cc->pool.data, f->valuestring)) <
                   0) {
            PDP_ERR(cc, f,
                    "fallback model \"%s\" has no deployment in the "
                    "config's deployments",
                    f->valuestring);
        }
        if (g < 0) {
            *ok = false;
            continue;
        }
        rt->fallbacks[rt->n_fallbacks++] = (uint32_t)g;
    }
    return true;
}

void
pdp_cc_route(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    static const char *const strategies[] = {"ordered", "weighted",
                                             "least_inflight", "lowest_latency",
                                             "lowest_cost"};
    pdp_bundle              *b            = cc->b;
    const cJSON *deps   = cJSON_GetObjectItemCaseSensitive(r, "deployments");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(r, "labels");
    const cJSON *fbs    = cJSON_GetObjectItemCaseSensitive(r, "fallbacks");
    pdp_route    rt     = {0};
    size_t       words  = (b->ndeps + 63) / 64;
    bool         ok     = true;
    int          s;

    s           = pdp_cc_field_enum(cc, r, "strategy", 0, strategies, 5);
    rt.strategy = (uint8_t)(s < 0 ? TG_ROUTE_ORDERED : s + 1);
    if (deps == NULL && labels == NULL && fbs == NULL) {
        PDP_ERR(cc, r,
                "a route rule needs \"deployments\", \"labels\" or "
                "\"fallbacks\"");
        return;
    }
    if (!b->have_catalog) {
        PDP_ERR(cc, cJSON_GetObjectItemCaseSensitive(r, "kind"),
                "route rules need the deployments catalog: pass --config");
        return;
    }
    if (deps != NULL || labels != NULL) {
        rt.allow = calloc(words + 1, sizeof(uint64_t));
        if (rt.allow == NULL) {
            cc->oom = true;
            return;
        }
    }
    if (deps != NULL) {
        if (!pdp_cc_route_deps(cc, deps, &rt, &ok)) {
            goto out;
        }
    } else if (rt.allow != NULL) {
        for (uint32_t i = 0; i < b->ndeps; i++) {
            rt.allow[i / 64] |= 1ull << (i % 64);
        }
    }
    if (labels != NULL) {
        pdp_cc_route_labels(cc, labels, deps != NULL, &rt, &ok);
    }
    if (fbs != NULL && !pdp_cc_route_fallbacks(cc, fbs, &rt, &ok)) {
        goto out;
    }
    if (!ok || !PDP_GROW(cc, routes, cap_routes, b->nroutes + 1)) {
        goto out;
    }
    rule->route             = b->nroutes;
    b->routes[b->nroutes++] = rt;
    return;
out:
    free(rt.allow);
    free(rt.order);
    free(rt.fallbacks);
}
