/* dataplane.openrouter - OpenRouter's "models", "provider" and "route" in
 * a request body: what is read and taken out of the body (never sent
 * upstream), "models" becoming "model" when that is missing, the 400s for
 * wrong types, unknown fields and too many models (naming the field); and
 * the provider preferences applied to the targets a decision allowed:
 * only/ignore by deployment id, provider or "provider" label, order and
 * allow_fallbacks, max_price (unknown price is over it), data_collection,
 * zdr, quantizations, require_parameters, the constraint named when none
 * is left; the strategies sort asks for; the attempt groups of the listed
 * models; one deployment per group without fallbacks. */
#include <stdlib.h>
#include <string.h>

#include "dp_attempt.h"
#include "dp_openrouter.h"
#include "tg_unit.h"

static dp_or_prefs g_p;
static char        g_msg[512];
static char        g_param[96];

/* take parses body, runs dp_or_take and keeps the body it leaves in out
 * (NULL: not wanted). */
static tg_err
take(const char *body, bool *found, char *out, size_t outlen)
{
    cJSON *root = cJSON_Parse(body);
    tg_err rv;
    bool   f = false;

    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    g_msg[0]   = '\0';
    g_param[0] = '\0';
    rv         = dp_or_take(root, &g_p, &f, g_msg, sizeof(g_msg), g_param,
                            sizeof(g_param));
    if (found != NULL) {
        *found = f;
    }
    if (out != NULL) {
        char *txt = cJSON_PrintUnformatted(root);
        snprintf(out, outlen, "%s", txt != NULL ? txt : "");
        cJSON_free(txt);
    }
    cJSON_Delete(root);
    return rv;
}

static void
test_no_fields_untouched(void)
{
    bool found = true;
    char out[512];

    CU_ASSERT_EQUAL(
        take("{\"model\":\"a\",\"messages\":[]}", &found, out, sizeof(out)),
        TG_OK);
    CU_ASSERT_FALSE(found);
    CU_ASSERT_STRING_EQUAL(out, "{\"model\":\"a\",\"messages\":[]}");
}

static void
test_models_taken_and_become_model(void)
{
    bool found = false;
    char out[512];

    CU_ASSERT_EQUAL(take("{\"models\":[\"x\",\"y\",\"x\"],\"messages\":[],"
                         "\"route\":\"fallback\"}",
                         &found, out, sizeof(out)),
                    TG_OK);
    CU_ASSERT_TRUE(found);
    CU_ASSERT_EQUAL(g_p.n_models, 2); /* a repeat is tried once */
    CU_ASSERT_STRING_EQUAL(g_p.models[0], "x");
    CU_ASSERT_STRING_EQUAL(g_p.models[1], "y");
    /* Nothing of OpenRouter's is left to go upstream. */
    CU_ASSERT_STRING_EQUAL(out, "{\"messages\":[],\"model\":\"x\"}");
}

static void
test_model_comes_first(void)
{
    char out[512];

    CU_ASSERT_EQUAL(take("{\"model\":\"m\",\"models\":[\"y\",\"m\"],"
                         "\"provider\":{\"only\":[\"openai\"]}}",
                         NULL, out, sizeof(out)),
                    TG_OK);
    CU_ASSERT_EQUAL(g_p.n_models, 2);
    CU_ASSERT_STRING_EQUAL(g_p.models[0], "m");
    CU_ASSERT_STRING_EQUAL(g_p.models[1], "y");
    CU_ASSERT_TRUE(g_p.has_provider);
    CU_ASSERT_EQUAL(g_p.only.n, 1);
    CU_ASSERT_STRING_EQUAL(out, "{\"model\":\"m\"}");
}

static void
test_models_refused(void)
{
    static const struct {
        const char *body;
        const char *param;
    } bad[] = {
        {"{\"models\":[]}", "models"},
        {"{\"models\":\"x\"}", "models"},
        {"{\"models\":[\"a\",\"\"]}", "models[1]"},
        {"{\"models\":[\"a\",3]}", "models[1]"},
        {"{\"models\":[\"a\",\"b:nitro\"]}", "models[1]"},
        {"{\"models\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
         "\"9\"]}",
         "models"},
        {"{\"model\":\"0\",\"models\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
         "\"7\",\"8\"]}",
         "models"},
        {"{\"route\":\"auto\"}", "route"},
    };
    char out[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(take(bad[i].body, NULL, out, sizeof(out)), TG_EINVAL);
        CU_ASSERT_STRING_EQUAL(g_param, bad[i].param);
        CU_ASSERT_NOT_EQUAL(g_msg[0], '\0');
        /* Refused whole: nothing was taken out. */
        CU_ASSERT_PTR_NOT_NULL(
            strstr(out, bad[i].param[0] == 'r' ? "route" : "models"));
    }
    /* Eight in all, counting model, is the most. */
    CU_ASSERT_EQUAL(take("{\"model\":\"0\",\"models\":[\"1\",\"2\",\"3\","
                         "\"4\",\"5\",\"6\",\"7\"]}",
                         NULL, NULL, 0),
                    TG_OK);
    CU_ASSERT_EQUAL(g_p.n_models, 8);
    /* A variant on the first model is the model's own business. */
    CU_ASSERT_EQUAL(take("{\"models\":[\"a:floor\",\"b\"]}", NULL, NULL, 0),
                    TG_OK);
}

static void
test_provider_fields_read(void)
{
    CU_ASSERT_EQUAL(
        take("{\"model\":\"m\",\"provider\":{\"order\":[\"azure\",\"oai-1\"],"
             "\"ignore\":[\"groq\"],\"allow_fallbacks\":false,\"sort\":"
             "\"price\",\"max_price\":{\"prompt\":1.5,\"completion\":\"2\"},"
             "\"data_collection\":\"deny\",\"zdr\":true,"
             "\"require_parameters\":true,\"quantizations\":[\"fp8\"]}}",
             NULL, NULL, 0),
        TG_OK);
    CU_ASSERT_EQUAL(g_p.n_models, 0);
    CU_ASSERT_EQUAL(g_p.order.n, 2);
    CU_ASSERT_STRING_EQUAL(g_p.order.v[1], "oai-1");
    CU_ASSERT_EQUAL(g_p.ignore.n, 1);
    CU_ASSERT_FALSE(g_p.only.set);
    CU_ASSERT_FALSE(g_p.allow_fallbacks);
    CU_ASSERT_EQUAL(g_p.sort, DP_OR_SORT_PRICE);
    CU_ASSERT_EQUAL(g_p.max_prompt, 1500000);
    CU_ASSERT_EQUAL(g_p.max_completion, 2000000);
    CU_ASSERT_TRUE(g_p.data_collection_deny);
    CU_ASSERT_TRUE(g_p.zdr);
    CU_ASSERT_TRUE(g_p.require_parameters);
    CU_ASSERT_EQUAL(g_p.quantizations.n, 1);
    /* Defaults. */
    CU_ASSERT_EQUAL(take("{\"model\":\"m\",\"provider\":{}}", NULL, NULL, 0),
                    TG_OK);
    CU_ASSERT_TRUE(g_p.allow_fallbacks);
    CU_ASSERT_EQUAL(g_p.max_prompt, -1);
    CU_ASSERT_EQUAL(g_p.sort, DP_OR_SORT_NONE);
}

static void
test_provider_refused(void)
{
    static const struct {
        const char *prov;
        const char *param;
    } bad[] = {
        {"[]", "provider"},
        {"{\"enforce_distillable_text\":true}",
         "provider.enforce_distillable_text"},
        {"{\"Order\":[\"a\"]}", "provider.Order"},
        {"{\"order\":\"azure\"}", "provider.order"},
        {"{\"only\":[1]}", "provider.only"},
        {"{\"allow_fallbacks\":\"no\"}", "provider.allow_fallbacks"},
        {"{\"sort\":\"cheapest\"}", "provider.sort"},
        {"{\"sort\":{\"by\":\"price\"}}", "provider.sort"},
        {"{\"data_collection\":\"never\"}", "provider.data_collection"},
        {"{\"zdr\":1}", "provider.zdr"},
        {"{\"max_price\":3}", "provider.max_price"},
        {"{\"max_price\":{\"prompt\":-1}}", "provider.max_price.prompt"},
        {"{\"max_price\":{\"completion\":\"cheap\"}}",
         "provider.max_price.completion"},
        {"{\"max_price\":{\"request\":0.01}}", "provider.max_price.request"},
        {"{\"max_price\":{\"image\":0.01}}", "provider.max_price.image"},
    };
    char body[256];
    char out[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"provider\":%s}",
                 bad[i].prov);
        CU_ASSERT_EQUAL(take(body, NULL, out, sizeof(out)), TG_EINVAL);
        CU_ASSERT_STRING_EQUAL(g_param, bad[i].param);
        CU_ASSERT_PTR_NOT_NULL(strstr(g_msg, bad[i].param));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"provider\""));
    }
}

/* The catalog the filters see. */
static const char *const g_lab_oai[] = {"zdr", "data_collection"};
static const char *const g_val_oai[] = {"true", "deny"};
static const char *const g_lab_tog[] = {"provider", "quantization"};
static const char *const g_val_tog[] = {"together", "fp8"};
static tg_deployment     g_deps[4];
static dp_or_target      g_t[4];

static void
catalog(void)
{
    memset(g_deps, 0, sizeof(g_deps));
    g_deps[0] = (tg_deployment){.id       = "oai-1",
                                .model    = "m",
                                .provider = "openai",
                                .kind     = TG_PROVIDER_OPENAI};
    memcpy(g_deps[0].label_keys, g_lab_oai, sizeof(g_lab_oai));
    memcpy(g_deps[0].label_values, g_val_oai, sizeof(g_val_oai));
    g_deps[0].n_labels = 2;
    g_deps[1]          = (tg_deployment){.id       = "az-1",
                                         .model    = "m",
                                         .provider = "azure",
                                         .kind     = TG_PROVIDER_AZURE};
    g_deps[2]          = (tg_deployment){.id       = "tog-1",
                                         .model    = "m",
                                         .provider = "openai_compatible",
                                         .kind     = TG_PROVIDER_OPENAI};
    memcpy(g_deps[2].label_keys, g_lab_tog, sizeof(g_lab_tog));
    memcpy(g_deps[2].label_values, g_val_tog, sizeof(g_val_tog));
    g_deps[2].n_labels = 2;
    g_deps[3]          = (tg_deployment){.id       = "claude-1",
                                         .model    = "m",
                                         .provider = "anthropic",
                                         .kind     = TG_PROVIDER_ANTHROPIC};
    for (int i = 0; i < 4; i++) {
        g_t[i].dep = &g_deps[i];
    }
    /* Prices per 1M tokens in micro-USD; claude-1 has none. */
    g_t[0].priced = true;
    g_t[0].price  = (tg_price){2500000, 10000000, 0};
    g_t[1].priced = true;
    g_t[1].price  = (tg_price){1000000, 4000000, 0};
    g_t[2].priced = true;
    g_t[2].price  = (tg_price){200000, 600000, 0};
    g_t[3].priced = false;
}

/* filter takes the provider object prov and returns the kept targets as
 * a string of their indices ("023"), or "-" plus the param when none. */
static const char *
filter(const char *prov, uint32_t *rank)
{
    static char res[96];
    char        body[512];
    bool        keep[4];
    uint32_t    rk[4];
    char        why[512];
    char        param[64];
    size_t      k = 0;

    snprintf(body, sizeof(body), "{\"model\":\"m\",\"provider\":%s}", prov);
    CU_ASSERT_EQUAL_FATAL(take(body, NULL, NULL, 0), TG_OK);
    catalog();
    if (dp_or_filter(&g_p, g_t, 4, keep, rk, why, sizeof(why), param,
                     sizeof(param)) == 0) {
        CU_ASSERT_PTR_NOT_NULL(strstr(why, param));
        snprintf(res, sizeof(res), "-%s", param);
        return res;
    }
    for (int i = 0; i < 4; i++) {
        if (keep[i]) {
            res[k++] = (char)('0' + i);
        }
        if (rank != NULL) {
            rank[i] = rk[i];
        }
    }
    res[k] = '\0';
    return res;
}

static void
test_filter_only_ignore(void)
{
    CU_ASSERT_STRING_EQUAL(filter("{}", NULL), "0123");
    /* By deployment id, provider (any case) or "provider" label. */
    CU_ASSERT_STRING_EQUAL(filter("{\"only\":[\"az-1\"]}", NULL), "1");
    CU_ASSERT_STRING_EQUAL(filter("{\"only\":[\"OpenAI\"]}", NULL), "0");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"only\":[\"together\",\"anthropic\"]}", NULL), "23");
    CU_ASSERT_STRING_EQUAL(filter("{\"ignore\":[\"azure\",\"tog-1\"]}", NULL),
                           "03");
    /* A name no allowed deployment has adds nothing: never a widening. */
    CU_ASSERT_STRING_EQUAL(filter("{\"only\":[\"groq\"]}", NULL),
                           "-provider.only");
    CU_ASSERT_STRING_EQUAL(filter("{\"only\":[]}", NULL), "-provider.only");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"ignore\":[\"openai\",\"azure\",\"together\","
               "\"anthropic\"]}",
               NULL),
        "-provider.ignore");
}

static void
test_filter_labels_and_params(void)
{
    CU_ASSERT_STRING_EQUAL(filter("{\"zdr\":true}", NULL), "0");
    CU_ASSERT_STRING_EQUAL(filter("{\"zdr\":false}", NULL), "0123");
    CU_ASSERT_STRING_EQUAL(filter("{\"data_collection\":\"deny\"}", NULL), "0");
    CU_ASSERT_STRING_EQUAL(filter("{\"data_collection\":\"allow\"}", NULL),
                           "0123");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"quantizations\":[\"int4\",\"FP8\"]}", NULL), "2");
    CU_ASSERT_STRING_EQUAL(filter("{\"require_parameters\":true}", NULL),
                           "012");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"only\":[\"anthropic\"],\"require_parameters\":true}", NULL),
        "-provider.require_parameters");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"ignore\":[\"oai-1\"],\"zdr\":true}", NULL), "-provider.zdr");
}

static void
test_filter_max_price(void)
{
    /* Unknown price (claude-1) is over any bound: a hard constraint. */
    CU_ASSERT_STRING_EQUAL(filter("{\"max_price\":{\"prompt\":1}}", NULL),
                           "12");
    CU_ASSERT_STRING_EQUAL(filter("{\"max_price\":{\"completion\":4}}", NULL),
                           "12");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"max_price\":{\"prompt\":100,\"completion\":0.6}}", NULL),
        "2");
    CU_ASSERT_STRING_EQUAL(filter("{\"max_price\":{\"prompt\":0.1}}", NULL),
                           "-provider.max_price");
    CU_ASSERT_STRING_EQUAL(filter("{\"max_price\":{}}", NULL), "0123");
}

static void
test_filter_order_and_fallbacks(void)
{
    uint32_t    rank[4];
    dp_strategy s = DP_STRATEGY_WEIGHTED;

    CU_ASSERT_STRING_EQUAL(filter("{\"order\":[\"anthropic\",\"az-1\"]}", rank),
                           "0123");
    CU_ASSERT_EQUAL(rank[3], 0);
    CU_ASSERT_EQUAL(rank[1], 1);
    CU_ASSERT_EQUAL(rank[0], DP_OR_UNRANKED);
    CU_ASSERT_TRUE(dp_or_strategy(&g_p, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_ORDERED);
    /* Without fallbacks only the ordered ones stay. */
    CU_ASSERT_STRING_EQUAL(
        filter("{\"order\":[\"anthropic\",\"az-1\"],\"allow_fallbacks\":"
               "false}",
               rank),
        "13");
    CU_ASSERT_STRING_EQUAL(
        filter("{\"order\":[\"groq\"],\"allow_fallbacks\":false}", NULL),
        "-provider.allow_fallbacks");
    /* allow_fallbacks false without an order narrows nothing here (the
     * plan keeps one per group: dp_or_first_per_group). */
    CU_ASSERT_STRING_EQUAL(filter("{\"allow_fallbacks\":false}", NULL), "0123");
}

static void
test_sort_strategies(void)
{
    dp_strategy s = DP_STRATEGY_WEIGHTED;

    (void)filter("{}", NULL);
    CU_ASSERT_FALSE(dp_or_strategy(&g_p, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_WEIGHTED);
    (void)filter("{\"sort\":\"price\"}", NULL);
    CU_ASSERT_TRUE(dp_or_strategy(&g_p, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_LOWEST_COST);
    (void)filter("{\"sort\":\"throughput\"}", NULL);
    CU_ASSERT_TRUE(dp_or_strategy(&g_p, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_LOWEST_LATENCY);
    (void)filter("{\"sort\":\"latency\"}", NULL);
    CU_ASSERT_TRUE(dp_or_strategy(&g_p, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_LOWEST_LATENCY);
    /* An order wins over a sort. */
    (void)filter("{\"sort\":\"price\",\"order\":[\"azure\"]}", NULL);
    CU_ASSERT_TRUE(dp_or_strategy(&g_p, &s));
    CU_ASSERT_EQUAL(s, DP_STRATEGY_ORDERED);
}

static void
test_groups_follow_models(void)
{
    uint32_t order[6] = {7, 8, 9, 10, 11, 12};
    uint8_t  group[6] = {0, 0, 41, 41, 42, DP_GROUP_CONTEXT};

    CU_ASSERT_EQUAL(
        take("{\"model\":\"a\",\"models\":[\"b\",\"c\"]}", NULL, NULL, 0),
        TG_OK);
    CU_ASSERT_EQUAL(dp_or_group(&g_p, "b", DP_GROUP_OTHER), DP_OR_GROUP + 1);
    CU_ASSERT_EQUAL(dp_or_group(&g_p, "c", DP_GROUP_OTHER), DP_OR_GROUP + 2);
    /* The first model and its model group's own fallbacks keep theirs. */
    CU_ASSERT_EQUAL(dp_or_group(&g_p, "a", 0), 0);
    CU_ASSERT_EQUAL(dp_or_group(&g_p, "b", 1), 1);
    CU_ASSERT_EQUAL(dp_or_group(&g_p, "z", DP_GROUP_OTHER), DP_GROUP_OTHER);
    CU_ASSERT_TRUE(DP_OR_GROUP + DP_OR_MODELS_MAX < DP_GROUP_OTHER);
    CU_ASSERT_EQUAL(dp_or_first_per_group(order, group, 6), 4);
    CU_ASSERT_EQUAL(order[0], 7);
    CU_ASSERT_EQUAL(order[1], 9);
    CU_ASSERT_EQUAL(order[2], 11);
    CU_ASSERT_EQUAL(order[3], 12);
    CU_ASSERT_EQUAL(group[3], DP_GROUP_CONTEXT);
}

static const tg_unit_case cases[] = {
    {"no_fields_untouched", test_no_fields_untouched},
    {"models_taken_and_become_model", test_models_taken_and_become_model},
    {"model_comes_first", test_model_comes_first},
    {"models_refused", test_models_refused},
    {"provider_fields_read", test_provider_fields_read},
    {"provider_refused", test_provider_refused},
    {"filter_only_ignore", test_filter_only_ignore},
    {"filter_labels_and_params", test_filter_labels_and_params},
    {"filter_max_price", test_filter_max_price},
    {"filter_order_and_fallbacks", test_filter_order_and_fallbacks},
    {"sort_strategies", test_sort_strategies},
    {"groups_follow_models", test_groups_follow_models},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("dataplane.openrouter", cases);
}
