/* tg_pricing.c - prices are parsed from USD floats once and kept as
 * integers, so every cost is exact integer arithmetic and the same request
 * always costs the same micro-USD everywhere. */
#include "tg_pricing.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_json.h"
#include "tg_log.h"

#define TG_PRICING_MAX_BYTES (4u << 20)
#define TG_PRICING_WARN_MAX 256 /* bounds memory if clients invent names */
#define TG_MTOK 1000000

typedef struct tg_pricing_model {
    char     *name;
    tg_price price;
} tg_pricing_model;

struct tg_pricing {
    tg_pricing_model *models; /* sorted by name */
    size_t             n;
    pthread_mutex_t    warn_mu;
    char              *warned[TG_PRICING_WARN_MAX];
    size_t             n_warned;
};

static int
tg_pricing_cmp(const void *a, const void *b)
{
    return strcmp(((const tg_pricing_model *)a)->name,
                  ((const tg_pricing_model *)b)->name);
}

static tg_err
tg_pricing_usd(const tg_json_doc *doc, const cJSON *m, const char *model,
                const char *key, bool required, int64_t *out, char *err,
                size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    double       d;

    if (v == NULL) {
        if (required) {
            return tg_json_errf(doc, m, err, errlen,
                                "models.%s: missing \"%s\" (USD per 1M "
                                "tokens, e.g. 0.15)",
                                model, key);
        }
        return TG_OK;
    }
    d = cJSON_GetNumberValue(v);
    if (!cJSON_IsNumber(v) || !(d >= 0.0) || d > TG_PRICE_MAX_USD) {
        return tg_json_errf(doc, v, err, errlen,
                            "models.%s.%s: expected a number of USD per 1M "
                            "tokens from 0 to %.0f",
                            model, key, TG_PRICE_MAX_USD);
    }
    *out = llround(d * 1e6);
    return TG_OK;
}

static tg_err
tg_pricing_parse(tg_pricing *p, const tg_json_doc *doc, char *err,
                  size_t errlen)
{
    static const char *const top[]    = {"$schema", "currency", "models", NULL};
    static const char *const per[]    = {"input_per_mtok", "output_per_mtok",
                                         "cached_input_per_mtok", NULL};
    const cJSON             *root     = tg_json_doc_root(doc);
    const char              *currency = NULL;
    const cJSON             *models;
    tg_err                   rv;

    if ((rv = tg_json_only_keys(doc, root, "pricing", top, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(doc, root, "pricing", "currency", true,
                                 &currency, err, errlen)) != TG_OK) {
        return rv;
    }
    if (strcmp(currency, "USD") != 0) {
        return tg_json_errf(doc, cJSON_GetObjectItem(root, "currency"), err,
                            errlen,
                            "pricing.currency: only \"USD\" is supported");
    }
    models = cJSON_GetObjectItemCaseSensitive(root, "models");
    if (models == NULL || !cJSON_IsObject(models)) {
        return tg_json_errf(doc, models != NULL ? models : root, err, errlen,
                            "pricing: \"models\" must be an object of "
                            "model name -> prices");
    }
    p->models =
        calloc((size_t)cJSON_GetArraySize(models) + 1, sizeof(*p->models));
    if (p->models == NULL) {
        return TG_ENOMEM;
    }
    for (const cJSON *m = models->child; m != NULL; m = m->next) {
        tg_pricing_model *pm = &p->models[p->n];
        char               ctx[160];

        snprintf(ctx, sizeof(ctx), "models.%s", m->string);
        for (size_t i = 0; i < p->n; i++) {
            if (strcmp(p->models[i].name, m->string) == 0) {
                return tg_json_errf(doc, m, err, errlen,
                                    "models: \"%s\" appears twice", m->string);
            }
        }
        pm->price.cached_input = -1;
        if ((rv = tg_json_only_keys(doc, m, ctx, per, err, errlen)) != TG_OK ||
            (rv = tg_pricing_usd(doc, m, m->string, "input_per_mtok", true,
                                  &pm->price.input, err, errlen)) != TG_OK ||
            (rv = tg_pricing_usd(doc, m, m->string, "output_per_mtok", false,
                                  &pm->price.output, err, errlen)) != TG_OK ||
            (rv = tg_pricing_usd(doc, m, m->string, "cached_input_per_mtok",
                                  false, &pm->price.cached_input, err,
                                  errlen)) != TG_OK) {
            return rv;
        }
        if (pm->price.cached_input < 0) {
            pm->price.cached_input = pm->price.input;
        }
        if ((pm->name = strdup(m->string)) == NULL) {
            return TG_ENOMEM;
        }
        p->n++;
    }
    qsort(p->models, p->n, sizeof(*p->models), tg_pricing_cmp);
    return TG_OK;
}

tg_err
tg_pricing_load(tg_pricing **out, const char *path, char *err, size_t errlen)
{
    tg_pricing *p   = calloc(1, sizeof(*p));
    tg_json_doc *doc = NULL;
    tg_err       rv  = TG_OK;

    if (p == NULL) {
        return TG_ENOMEM;
    }
    pthread_mutex_init(&p->warn_mu, NULL);
    if (path != NULL) {
        if ((rv = tg_json_doc_load(&doc, path, TG_PRICING_MAX_BYTES, err,
                                   errlen)) != TG_OK ||
            (rv = tg_pricing_parse(p, doc, err, errlen)) != TG_OK) {
            goto out;
        }
    }
    *out = p;
    p    = NULL;
out:
    tg_json_doc_destroy(doc);
    tg_pricing_destroy(p);
    return rv;
}

void
tg_pricing_destroy(tg_pricing *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        free(p->models[i].name);
    }
    for (size_t i = 0; i < p->n_warned; i++) {
        free(p->warned[i]);
    }
    free(p->models);
    pthread_mutex_destroy(&p->warn_mu);
    free(p);
}

bool
tg_pricing_find(const tg_pricing *p, const char *model, tg_price *out)
{
    tg_pricing_model        key = {(char *)model, {0, 0, 0}};
    const tg_pricing_model *hit;

    if (p == NULL || p->n == 0) {
        return false;
    }
    hit = bsearch(&key, p->models, p->n, sizeof(key), tg_pricing_cmp);
    if (hit == NULL) {
        return false;
    }
    *out = hit->price;
    return true;
}

size_t
tg_pricing_count(const tg_pricing *p)
{
    return p != NULL ? p->n : 0;
}

/* tokens * price / 1e6 is split as (q * 1e6 + r) * price, so the whole part
 * q * price is exact and the remainders r * price (< 1e6 * 1e12) can be
 * summed before the one rounding step without overflow. */
int64_t
tg_pricing_cost_of(const tg_price *price, int64_t prompt, int64_t cached,
                    int64_t completion)
{
    int64_t tokens[3];
    int64_t rates[3] = {price->input, price->cached_input, price->output};
    int64_t whole    = 0;
    int64_t frac     = 0;

    prompt     = prompt < 0 ? 0 : prompt;
    completion = completion < 0 ? 0 : completion;
    cached     = cached < 0 ? 0 : (cached > prompt ? prompt : cached);
    tokens[0]  = prompt - cached;
    tokens[1]  = cached;
    tokens[2]  = completion;
    for (int i = 0; i < 3; i++) {
        int64_t q = tokens[i] / TG_MTOK;
        int64_t r = tokens[i] % TG_MTOK;
        int64_t part;

        if (__builtin_mul_overflow(q, rates[i], &part) ||
            __builtin_add_overflow(whole, part, &whole)) {
            return INT64_MAX;
        }
        frac += r * rates[i];
    }
    if (__builtin_add_overflow(whole, (frac + TG_MTOK / 2) / TG_MTOK,
                               &whole)) {
        return INT64_MAX;
    }
    return whole;
}

static void
tg_pricing_warn_unknown(tg_pricing *p, const char *model)
{
    bool seen = false;

    pthread_mutex_lock(&p->warn_mu);
    for (size_t i = 0; i < p->n_warned && !seen; i++) {
        seen = strcmp(p->warned[i], model) == 0;
    }
    if (!seen && p->n_warned < TG_PRICING_WARN_MAX) {
        p->warned[p->n_warned] = strdup(model);
        if (p->warned[p->n_warned] != NULL) {
            p->n_warned++;
        }
    }
    pthread_mutex_unlock(&p->warn_mu);
    if (!seen) {
        tg_warn("pricing: no price for model \"%.*s\"; its usage is "
                "recorded at cost 0 (add it to pdp.pricing_file)",
                128, model);
    }
}

int64_t
tg_pricing_cost(tg_pricing *p, const char *model, int64_t prompt,
                 int64_t cached, int64_t completion)
{
    tg_price price;

    if (p == NULL) {
        return 0;
    }
    if (!tg_pricing_find(p, model, &price)) {
        tg_pricing_warn_unknown(p, model);
        return 0;
    }
    return tg_pricing_cost_of(&price, prompt, cached, completion);
}

void
tg_usd(int64_t micro, char *buf, size_t cap)
{
    uint64_t m = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;

    snprintf(buf, cap, "%s%llu.%06llu", micro < 0 ? "-" : "",
             (unsigned long long)(m / 1000000),
             (unsigned long long)(m % 1000000));
}
