/* dp_openrouter.c - see dp_openrouter.h. Every field is checked whole
 * before anything is removed from the body: a request is refused or
 * taken as it came, never half read. */
#include "dp_openrouter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dp_attempt.h"

/* The listed models' groups sit between the first model's own fallbacks
 * and the route rules' (dp_attempt's groups are ordered by number). */
_Static_assert(DP_OR_GROUP > TG_CONFIG_MAX_FALLBACKS &&
                   DP_OR_GROUP + DP_OR_MODELS_MAX < DP_GROUP_OTHER,
               "DP_OR_GROUP collides with dp_attempt's groups");

static tg_err dp_or_bad(char *msg, size_t msglen, char *param, size_t paramlen,
                        const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* dp_or_bad writes a 400's message and field; always TG_EINVAL. */
static tg_err
dp_or_bad(char *msg, size_t msglen, char *param, size_t paramlen,
          const char *field, const char *fmt, ...)
{
    va_list ap;

    snprintf(param, paramlen, "%s", field);
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return TG_EINVAL;
}

/* dp_or_add_model appends name to p->models unless it is there. */
static tg_err
dp_or_add_model(dp_or_prefs *p, const char *name, const char *field, char *msg,
                size_t msglen, char *param, size_t paramlen)
{
    char base[TG_MODEL_MAX];

    for (uint32_t k = 0; k < p->n_models; k++) {
        if (strcmp(p->models[k], name) == 0) {
            return TG_OK; /* listed twice: tried once */
        }
    }
    if (p->n_models == DP_OR_MODELS_MAX) {
        return dp_or_bad(msg, msglen, param, paramlen, "models",
                         "'models' may name at most %d different models "
                         "(counting 'model'); send fewer.",
                         DP_OR_MODELS_MAX);
    }
    if (p->n_models > 0 && dp_router_variant(name, base, sizeof(base), NULL)) {
        return dp_or_bad(msg, msglen, param, paramlen, field,
                         "'%s': a variant (':floor', ':nitro') applies to "
                         "the first model only; use provider.sort to pick "
                         "how every model's deployments are chosen.",
                         field);
    }
    snprintf(p->models[p->n_models++], sizeof(p->models[0]), "%s", name);
    return TG_OK;
}

/* dp_or_models reads "models": `model` (when a string) first, then the
 * list in order, repeats dropped. */
static tg_err
dp_or_models(const cJSON *root, const cJSON *arr, dp_or_prefs *p, char *msg,
             size_t msglen, char *param, size_t paramlen)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *m;
    char         field[32];
    size_t       i = 0;
    tg_err       rv;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        return dp_or_bad(msg, msglen, param, paramlen, "models",
                         "'models' must be a non-empty array of model "
                         "names, tried in that order.");
    }
    if (cJSON_GetArraySize(arr) > DP_OR_MODELS_MAX) {
        return dp_or_bad(msg, msglen, param, paramlen, "models",
                         "'models' may list at most %d models; it lists "
                         "%d.",
                         DP_OR_MODELS_MAX, cJSON_GetArraySize(arr));
    }
    if (cJSON_IsString(model) && model->valuestring[0] != '\0' &&
        strlen(model->valuestring) < TG_MODEL_MAX) {
        snprintf(p->models[p->n_models++], sizeof(p->models[0]), "%s",
                 model->valuestring);
    }
    cJSON_ArrayForEach(m, arr)
    {
        snprintf(field, sizeof(field), "models[%zu]", i++);
        if (!cJSON_IsString(m) || m->valuestring[0] == '\0' ||
            strlen(m->valuestring) >= TG_MODEL_MAX) {
            return dp_or_bad(msg, msglen, param, paramlen, field,
                             "'%s' must be a non-empty model name of at "
                             "most %d characters.",
                             field, TG_MODEL_MAX - 1);
        }
        if ((rv = dp_or_add_model(p, m->valuestring, field, msg, msglen, param,
                                  paramlen)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* dp_or_names_read reads a list of provider names ("provider.only"). */
static tg_err
dp_or_names_read(const cJSON *v, const char *field, dp_or_names *out, char *msg,
                 size_t msglen, char *param, size_t paramlen)
{
    const cJSON *e;

    if (cJSON_IsNull(v)) {
        return TG_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > DP_OR_NAMES_MAX) {
        return dp_or_bad(msg, msglen, param, paramlen, field,
                         "'%s' must be an array of at most %d names (a "
                         "deployment id, a provider such as \"openai\", or "
                         "a deployment's \"provider\" label).",
                         field, DP_OR_NAMES_MAX);
    }
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e) || e->valuestring[0] == '\0' ||
            strlen(e->valuestring) >= DP_OR_NAME_MAX) {
            return dp_or_bad(msg, msglen, param, paramlen, field,
                             "Each entry of '%s' must be a non-empty "
                             "string of at most %d characters.",
                             field, DP_OR_NAME_MAX - 1);
        }
        snprintf(out->v[out->n++], sizeof(out->v[0]), "%s", e->valuestring);
    }
    out->set = true;
    return TG_OK;
}

/* dp_or_flag reads a true/false field (null: the default). */
static tg_err
dp_or_flag(const cJSON *v, const char *field, bool *out, char *msg,
           size_t msglen, char *param, size_t paramlen)
{
    if (cJSON_IsNull(v)) {
        return TG_OK;
    }
    if (!cJSON_IsBool(v)) {
        return dp_or_bad(msg, msglen, param, paramlen, field,
                         "'%s' must be true or false.", field);
    }
    *out = cJSON_IsTrue(v);
    return TG_OK;
}

/* dp_or_usd reads a price in USD per 1M tokens (a number or a numeric
 * string, as OpenRouter takes) into micro-USD per 1M tokens. */
static tg_err
dp_or_usd(const cJSON *v, const char *field, int64_t *out, char *msg,
          size_t msglen, char *param, size_t paramlen)
{
    double d   = NAN;
    char  *end = NULL;

    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        d = strtod(v->valuestring, &end);
        d = *end == '\0' ? d : NAN;
    }
    if (!isfinite(d) || d < 0 || d > 1e6) {
        return dp_or_bad(msg, msglen, param, paramlen, field,
                         "'%s' must be a price in USD per 1M tokens, from "
                         "0 to 1000000 (e.g. 2.5).",
                         field);
    }
    *out = (int64_t)(d * 1e6 + 0.5); /* d >= 0: rounded */
    return TG_OK;
}

/* dp_or_max_price reads provider.max_price: prompt and completion only
 * (Tollgate prices tokens, not images or requests). */
static tg_err
dp_or_max_price(const cJSON *v, dp_or_prefs *p, char *msg, size_t msglen,
                char *param, size_t paramlen)
{
    const cJSON *c;
    char         field[DP_OR_NAME_MAX + 32];
    tg_err       rv = TG_OK;

    if (cJSON_IsNull(v)) {
        return TG_OK;
    }
    if (!cJSON_IsObject(v)) {
        return dp_or_bad(msg, msglen, param, paramlen, "provider.max_price",
                         "'provider.max_price' must be an object such as "
                         "{\"prompt\": 1, \"completion\": 2} (USD per 1M "
                         "tokens).");
    }
    cJSON_ArrayForEach(c, v)
    {
        snprintf(field, sizeof(field), "provider.max_price.%.*s",
                 DP_OR_NAME_MAX, c->string);
        if (strcmp(c->string, "prompt") == 0) {
            rv = dp_or_usd(c, field, &p->max_prompt, msg, msglen, param,
                           paramlen);
        } else if (strcmp(c->string, "completion") == 0) {
            rv = dp_or_usd(c, field, &p->max_completion, msg, msglen, param,
                           paramlen);
        } else {
            rv = dp_or_bad(msg, msglen, param, paramlen, field,
                           "'%s' is not supported: Tollgate prices prompt "
                           "and completion tokens only. Remove it, or "
                           "bound 'prompt' and 'completion'.",
                           field);
        }
        if (rv != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* dp_or_choice reads a string field that must be one of names (NULL
 * ended); *out its index. null: untouched. */
static tg_err
dp_or_choice(const cJSON *v, const char *field, const char *const *names,
             int *out, char *msg, size_t msglen, char *param, size_t paramlen)
{
    if (cJSON_IsNull(v)) {
        return TG_OK;
    }
    for (int i = 0; cJSON_IsString(v) && names[i] != NULL; i++) {
        if (strcmp(v->valuestring, names[i]) == 0) {
            *out = i;
            return TG_OK;
        }
    }
    return dp_or_bad(msg, msglen, param, paramlen, field,
                     "'%s' must be one of \"%s\", \"%s\"%s%s%s.", field,
                     names[0], names[1], names[2] != NULL ? ", \"" : "",
                     names[2] != NULL ? names[2] : "",
                     names[2] != NULL ? "\"" : "");
}

/* dp_or_provider_field reads one field of "provider". */
static tg_err
dp_or_provider_field(const cJSON *c, dp_or_prefs *p, char *msg, size_t msglen,
                     char *param, size_t paramlen)
{
    static const char *const sorts[] = {"price", "throughput", "latency", NULL};
    static const char *const dcs[]   = {"allow", "deny", NULL};
    const char              *k       = c->string;
    char                     field[DP_OR_NAME_MAX + 16];
    int                      i = -1;
    tg_err                   rv;

    snprintf(field, sizeof(field), "provider.%.*s", DP_OR_NAME_MAX, k);
#define DP_OR_ERR msg, msglen, param, paramlen
    if (strcmp(k, "order") == 0) {
        return dp_or_names_read(c, field, &p->order, DP_OR_ERR);
    } else if (strcmp(k, "only") == 0) {
        return dp_or_names_read(c, field, &p->only, DP_OR_ERR);
    } else if (strcmp(k, "ignore") == 0) {
        return dp_or_names_read(c, field, &p->ignore, DP_OR_ERR);
    } else if (strcmp(k, "quantizations") == 0) {
        return dp_or_names_read(c, field, &p->quantizations, DP_OR_ERR);
    } else if (strcmp(k, "allow_fallbacks") == 0) {
        return dp_or_flag(c, field, &p->allow_fallbacks, DP_OR_ERR);
    } else if (strcmp(k, "require_parameters") == 0) {
        return dp_or_flag(c, field, &p->require_parameters, DP_OR_ERR);
    } else if (strcmp(k, "zdr") == 0) {
        return dp_or_flag(c, field, &p->zdr, DP_OR_ERR);
    } else if (strcmp(k, "max_price") == 0) {
        return dp_or_max_price(c, p, DP_OR_ERR);
    } else if (strcmp(k, "sort") == 0) {
        rv      = dp_or_choice(c, field, sorts, &i, DP_OR_ERR);
        p->sort = i < 0 ? DP_OR_SORT_NONE : (dp_or_sort)(i + 1);
        return rv;
    } else if (strcmp(k, "data_collection") == 0) {
        rv                      = dp_or_choice(c, field, dcs, &i, DP_OR_ERR);
        p->data_collection_deny = i == 1;
        return rv;
    }
    return dp_or_bad(DP_OR_ERR, field,
                     "'%s' is not supported by this gateway. Remove it; "
                     "'provider' may hold order, only, ignore, "
                     "allow_fallbacks, sort, max_price, data_collection, "
                     "zdr, require_parameters and quantizations.",
                     field);
#undef DP_OR_ERR
}

tg_err
dp_or_take(cJSON *root, dp_or_prefs *p, bool *found, char *msg, size_t msglen,
           char *param, size_t paramlen)
{
    cJSON *models = cJSON_GetObjectItemCaseSensitive(root, "models");
    cJSON *prov   = cJSON_GetObjectItemCaseSensitive(root, "provider");
    cJSON *route  = cJSON_GetObjectItemCaseSensitive(root, "route");
    cJSON *c;
    tg_err rv;

    *found = models != NULL || prov != NULL || route != NULL;
    if (!*found) {
        return TG_OK;
    }
    memset(p, 0, sizeof(*p));
    p->allow_fallbacks = true;
    p->max_prompt      = -1;
    p->max_completion  = -1;
    if (route != NULL && !cJSON_IsNull(route) &&
        (!cJSON_IsString(route) ||
         strcmp(route->valuestring, "fallback") != 0)) {
        return dp_or_bad(msg, msglen, param, paramlen, "route",
                         "'route' may only be \"fallback\": the gateway "
                         "falls back along 'models' in order.");
    }
    if (models != NULL && !cJSON_IsNull(models) &&
        (rv = dp_or_models(root, models, p, msg, msglen, param, paramlen)) !=
            TG_OK) {
        return rv;
    }
    if (prov != NULL && !cJSON_IsNull(prov)) {
        if (!cJSON_IsObject(prov)) {
            return dp_or_bad(msg, msglen, param, paramlen, "provider",
                             "'provider' must be an object of provider "
                             "preferences (OpenRouter's provider "
                             "routing).");
        }
        p->has_provider = true;
        cJSON_ArrayForEach(c, prov)
        {
            if ((rv = dp_or_provider_field(c, p, msg, msglen, param,
                                           paramlen)) != TG_OK) {
                return rv;
            }
        }
    }
    if (p->n_models > 0 &&
        cJSON_GetObjectItemCaseSensitive(root, "model") == NULL &&
        cJSON_AddStringToObject(root, "model", p->models[0]) == NULL) {
        return TG_ENOMEM;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "models");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "provider");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "route");
    return TG_OK;
}

/* dp_or_label is dep's label key ("" when it has none). */
static const char *
dp_or_label(const tg_deployment *dep, const char *key)
{
    for (size_t i = 0; i < dep->n_labels; i++) {
        if (strcmp(dep->label_keys[i], key) == 0) {
            return dep->label_values[i];
        }
    }
    return "";
}

bool
dp_or_matches(const char *name, const tg_deployment *dep)
{
    const char *label = dp_or_label(dep, "provider");

    return strcasecmp(name, dep->id) == 0 ||
           (dep->provider != NULL && strcasecmp(name, dep->provider) == 0) ||
           (label[0] != '\0' && strcasecmp(name, label) == 0);
}

/* dp_or_rank is dep's place in order (DP_OR_UNRANKED: not named). */
static uint32_t
dp_or_rank(const dp_or_names *order, const tg_deployment *dep)
{
    for (uint32_t i = 0; i < order->n; i++) {
        if (dp_or_matches(order->v[i], dep)) {
            return i;
        }
    }
    return DP_OR_UNRANKED;
}

static bool
dp_or_named(const dp_or_names *l, const tg_deployment *dep)
{
    return dp_or_rank(l, dep) != DP_OR_UNRANKED;
}

/* The hard constraints, in the order they are applied. */
typedef enum dp_or_stage {
    DP_OR_ONLY,
    DP_OR_IGNORE,
    DP_OR_QUANT,
    DP_OR_DATA,
    DP_OR_ZDR,
    DP_OR_PARAMS,
    DP_OR_PRICE,
    DP_OR_FALLBACKS,
    DP_OR_STAGES,
} dp_or_stage;

/* dp_or_stage_ok: t passes constraint s of p. */
static bool
dp_or_stage_ok(const dp_or_prefs *p, dp_or_stage s, const dp_or_target *t,
               uint32_t rank)
{
    const tg_deployment *dep = t->dep;

    switch (s) {
    case DP_OR_ONLY:
        return !p->only.set || dp_or_named(&p->only, dep);
    case DP_OR_IGNORE:
        return !dp_or_named(&p->ignore, dep);
    case DP_OR_QUANT:
        for (uint32_t i = 0; p->quantizations.set && i < p->quantizations.n;
             i++) {
            if (strcasecmp(p->quantizations.v[i],
                           dp_or_label(dep, "quantization")) == 0) {
                return true;
            }
        }
        return !p->quantizations.set;
    case DP_OR_DATA:
        return !p->data_collection_deny ||
               strcmp(dp_or_label(dep, "data_collection"), "deny") == 0;
    case DP_OR_ZDR:
        return !p->zdr || strcmp(dp_or_label(dep, "zdr"), "true") == 0;
    case DP_OR_PARAMS:
        /* Only the OpenAI wire format takes every parameter as sent; the
         * Anthropic and Gemini translations drop a few harmless ones. */
        return !p->require_parameters || dep->kind == TG_PROVIDER_OPENAI ||
               dep->kind == TG_PROVIDER_AZURE;
    case DP_OR_PRICE:
        return (p->max_prompt < 0 ||
                (t->priced && t->price.input <= p->max_prompt)) &&
               (p->max_completion < 0 ||
                (t->priced && t->price.output <= p->max_completion));
    case DP_OR_FALLBACKS:
    case DP_OR_STAGES:
        break;
    }
    return p->allow_fallbacks || p->order.n == 0 || rank != DP_OR_UNRANKED;
}

/* dp_or_why says why constraint s removed the last deployments. */
static void
dp_or_why(const dp_or_prefs *p, dp_or_stage s, size_t n, char *why,
          size_t whylen, char *param, size_t paramlen)
{
    static const char *const field[] = {
        "provider.only",          "provider.ignore",
        "provider.quantizations", "provider.data_collection",
        "provider.zdr",           "provider.require_parameters",
        "provider.max_price",     "provider.allow_fallbacks"};
    static const char *const what[] = {
        "none of them is named by it (a deployment id, its provider, or "
        "its \"provider\" label)",
        "it names every one of them",
        "none carries a \"quantization\" label it lists",
        "none is labelled \"data_collection\": \"deny\"",
        "none is labelled \"zdr\": \"true\"",
        "only OpenAI-format deployments take every parameter as sent, and "
        "none of them is one",
        "none has a known price at or under it",
        "it is false and provider.order names none of them"};
    char price[96] = "";

    if (s == DP_OR_PRICE) {
        snprintf(price, sizeof(price),
                 " (prompt %s%.6g, completion %s%.6g USD per 1M tokens)",
                 p->max_prompt < 0 ? "any" : "<= ",
                 p->max_prompt < 0 ? 0.0 : (double)p->max_prompt / 1e6,
                 p->max_completion < 0 ? "any" : "<= ",
                 p->max_completion < 0 ? 0.0 : (double)p->max_completion / 1e6);
    }
    snprintf(param, paramlen, "%s", field[s]);
    snprintf(why, whylen,
             "No deployment the policy allows for this request meets "
             "'%s'%s: %s (%zu allowed). Relax it, or ask your "
             "administrator which deployments you may use.",
             field[s], price, what[s], n);
}

uint32_t
dp_or_filter(const dp_or_prefs *p, const dp_or_target *t, size_t n, bool *keep,
             uint32_t *rank, char *why, size_t whylen, char *param,
             size_t paramlen)
{
    uint32_t left = (uint32_t)n;

    for (size_t i = 0; i < n; i++) {
        keep[i] = true;
        rank[i] = dp_or_rank(&p->order, t[i].dep);
    }
    for (int s = 0; s < DP_OR_STAGES && n > 0; s++) {
        for (size_t i = 0; i < n; i++) {
            if (keep[i] && !dp_or_stage_ok(p, (dp_or_stage)s, &t[i], rank[i])) {
                keep[i] = false;
                left--;
            }
        }
        if (left == 0) {
            dp_or_why(p, (dp_or_stage)s, n, why, whylen, param, paramlen);
            return 0;
        }
    }
    return left;
}

bool
dp_or_strategy(const dp_or_prefs *p, dp_strategy *s)
{
    if (p->order.n > 0) {
        *s = DP_STRATEGY_ORDERED;
    } else if (p->sort == DP_OR_SORT_PRICE) {
        *s = DP_STRATEGY_LOWEST_COST;
    } else if (p->sort != DP_OR_SORT_NONE) {
        *s = DP_STRATEGY_LOWEST_LATENCY;
    } else {
        return false;
    }
    return true;
}

uint8_t
dp_or_group(const dp_or_prefs *p, const char *model, uint8_t group)
{
    if (group != DP_GROUP_OTHER) {
        return group;
    }
    for (uint32_t j = 1; j < p->n_models; j++) {
        if (strcmp(p->models[j], model) == 0) {
            return (uint8_t)(DP_OR_GROUP + j);
        }
    }
    return group;
}

size_t
dp_or_first_per_group(uint32_t *order, uint8_t *group, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++) {
            seen = group[j] == group[i];
        }
        if (!seen) {
            order[k] = order[i];
            group[k] = group[i];
            k++;
        }
    }
    return k;
}
