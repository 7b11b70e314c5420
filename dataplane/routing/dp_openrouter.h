/* dp_openrouter.h - OpenRouter's request fields on chat completions and
 * completions: "models" (models to fall back along, in order), "provider"
 * (preferences over the deployments a decision allows) and "route"
 * ("fallback", the only value). They are read and removed from the
 * client's body (never sent upstream); "models" goes to the PDP, which
 * judges every model as if it had been asked for alone; "provider" is
 * applied here to the targets the PDP allowed: it may narrow and reorder
 * them, never add one.
 * Pure: no state, no I/O, no allocation; thread-safe. Called by dp_admit
 * once per request that carries one of the fields. */
#ifndef DP_OPENROUTER_H
#define DP_OPENROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_router.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"
#include "tg_pricing.h"

/* "models" holds at most this many names (OpenRouter's own cap is
 * smaller); `model`, when given, counts as the first. */
#define DP_OR_MODELS_MAX (1 + TG_MSG_FALLBACK_MODELS_MAX)
/* Entries of provider.order / only / ignore / quantizations. */
#define DP_OR_NAMES_MAX 16
#define DP_OR_NAME_MAX 64
/* Attempt groups of the models after the first (dp_attempt): after the
 * first model's own fallbacks (1..), before the fallbacks a route rule
 * added (DP_GROUP_OTHER, 60). */
#define DP_OR_GROUP 40
/* provider.order rank of a deployment no entry names. */
#define DP_OR_UNRANKED DP_OR_NAMES_MAX

typedef enum dp_or_sort {
    DP_OR_SORT_NONE = 0,
    DP_OR_SORT_PRICE,      /* lowest_cost */
    DP_OR_SORT_THROUGHPUT, /* approximated by lowest_latency */
    DP_OR_SORT_LATENCY,    /* lowest_latency */
} dp_or_sort;

typedef struct dp_or_names {
    char     v[DP_OR_NAMES_MAX][DP_OR_NAME_MAX];
    uint32_t n;
    bool     set; /* the field was given (an empty "only" keeps nothing) */
} dp_or_names;

typedef struct dp_or_prefs {
    /* The request's models, `model` first; n_models 0: no "models". */
    char        models[DP_OR_MODELS_MAX][TG_MODEL_MAX];
    uint32_t    n_models;
    bool        has_provider;
    dp_or_names order;
    dp_or_names only;
    dp_or_names ignore;
    dp_or_names quantizations;
    bool        allow_fallbacks; /* default true */
    dp_or_sort  sort;
    int64_t     max_prompt;     /* micro-USD per 1M tokens; < 0: none */
    int64_t     max_completion; /* the same, output */
    bool        data_collection_deny;
    bool        zdr;
    bool        require_parameters;
} dp_or_prefs;

/* dp_or_take reads "models", "provider" and "route" of root (a request
 * body object) into *p and removes them from root; when root names no
 * "model", models[0] is added as "model". *found: one of them was there
 * (else root and *p's lists are untouched). A wrong type or value, more
 * than DP_OR_MODELS_MAX models, or a provider field Tollgate does not
 * honour is TG_EINVAL (TG_ENOMEM: out of memory) with a client message in
 * msg and the field in param ("models[2]", "provider.sort",
 * "provider.max_price.request"). Borrows: root until return. */
tg_err dp_or_take(cJSON *root, dp_or_prefs *p, bool *found, char *msg,
                  size_t msglen, char *param, size_t paramlen);

/* dp_or_matches: name (case-insensitive) is dep's id, its provider as
 * written in the config ("openai", "azure", "groq", ...) or the value of
 * its "provider" label. */
bool dp_or_matches(const char *name, const tg_deployment *dep);

/* One route target as the preferences see it: its deployment and its
 * price per 1M tokens (priced false: no price known). */
typedef struct dp_or_target {
    const tg_deployment *dep;
    bool                 priced;
    tg_price             price;
} dp_or_target;

/* dp_or_filter applies p's hard constraints to t[0..n) (n at most
 * TG_MSG_TARGETS_MAX), in this order: only, ignore, quantizations,
 * data_collection, zdr, require_parameters, max_price, and with
 * allow_fallbacks false and an order, the ordered ones only. keep[i] says
 * whether t[i] stays, rank[i] its place in provider.order (the first
 * entry naming it; DP_OR_UNRANKED when none does). Returns how many
 * stay; when none stays of n > 0, why says which constraint removed the
 * last ones and param names it ("provider.max_price"). */
uint32_t dp_or_filter(const dp_or_prefs *p, const dp_or_target *t, size_t n,
                      bool *keep, uint32_t *rank, char *why, size_t whylen,
                      char *param, size_t paramlen);

/* dp_or_strategy writes the strategy p asks for into *s and returns true:
 * an order is ORDERED (by rank), sort price LOWEST_COST, throughput and
 * latency LOWEST_LATENCY. False, *s untouched, when p asks for none. */
bool dp_or_strategy(const dp_or_prefs *p, dp_strategy *s);

/* dp_or_group is the attempt group of a deployment of model: group (what
 * dp_attempt_group said) unless that is DP_GROUP_OTHER and model is
 * models[j], j >= 1: then DP_OR_GROUP + j, so the listed models are
 * tried in the client's order, each after the one before it. */
uint8_t dp_or_group(const dp_or_prefs *p, const char *model, uint8_t group);

/* dp_or_first_per_group keeps, of the plan order[0..n) with groups
 * group[0..n), the first deployment of each group (allow_fallbacks false
 * without an order: only the deployment the strategy picks, per model).
 * Compacts both arrays in place; returns the new length. */
size_t dp_or_first_per_group(uint32_t *order, uint8_t *group, size_t n);

#endif
