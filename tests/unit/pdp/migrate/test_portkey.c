/* test_portkey.c - pdp.migrate.portkey: `tollgate-pdp import portkey` on
 * the corpus in tests/migrate/portkey/ (and a few configs written here):
 * each strategy mode becomes the deployments, weights and model group it
 * should; nested targets flatten with their weights multiplied; each
 * condition operator becomes a route rule whose generated tests pass
 * against the compiled bundle, together with hand-written expectations;
 * refused and unsupported fields are findings with their path and line;
 * a literal key is never copied nor printed. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_bundle_test.h"
#include "pdp_import_portkey.h"
#include "pdp_migrate.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_unit.h"

#define LITERAL_KEY "sk-proj-LITERALSECRET0123456789abcdefXYZ"
#define AWS_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static pdp_portkey      g_pk;
static pdp_mig_findings g_f;
static char             g_err[1024];

static const char *
corpus(const char *name)
{
    static char path[1024];
    const char *src = getenv("TG_SRC");

    snprintf(path, sizeof(path), "%s/tests/migrate/portkey/%s",
             src != NULL ? src : ".", name);
    return path;
}

/* import runs the importer on path into the globals. */
static tg_err
import(const char *path, const char *model)
{
    pdp_portkey_fini(&g_pk);
    pdp_mig_findings_fini(&g_f);
    pdp_mig_findings_init(&g_f, path);
    g_err[0] = '\0';
    return pdp_portkey_import(&g_pk, path, model, &g_f, g_err, sizeof(g_err));
}

static const cJSON *
dep(const char *id)
{
    const cJSON *d;

    cJSON_ArrayForEach(d, g_pk.deployments)
    {
        if (strcmp(cJSON_GetObjectItem(d, "id")->valuestring, id) == 0) {
            return d;
        }
    }
    return NULL;
}

static const char *
dep_str(const char *id, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(dep(id), key);

    return cJSON_IsString(v) ? v->valuestring : "(none)";
}

static double
dep_num(const char *id, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(dep(id), key);

    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* finding is the finding at path (exactly) of kind with a line, or
 * NULL. */
static const pdp_mig_finding *
finding(const char *path, pdp_mig_kind kind)
{
    for (size_t i = 0; i < g_f.n; i++) {
        if (strcmp(g_f.items[i].path, path) == 0 && g_f.items[i].kind == kind) {
            return &g_f.items[i];
        }
    }
    return NULL;
}

static bool
finding_at(const char *path, pdp_mig_kind kind, int line)
{
    const pdp_mig_finding *x = finding(path, kind);

    if (x == NULL || x->line != line) {
        fprintf(stderr, "no %s finding at %s line %d (%s)\n",
                pdp_mig_kind_name(kind), path, line,
                x != NULL ? "another line" : "none");
    }
    return x != NULL && x->line == line;
}

static bool
ids_are(const cJSON *arr, const char *const *want)
{
    size_t i = 0;

    for (const cJSON *e = arr != NULL ? arr->child : NULL; e != NULL;
         e              = e->next, i++) {
        if (want[i] == NULL || strcmp(e->valuestring, want[i]) != 0) {
            return false;
        }
    }
    return want[i] == NULL;
}

/* write_and_test writes the import into a fresh dir (plus extra, a test
 * file of hand-written cases, when not NULL), loads its tollgate.json,
 * compiles its bundle against it and runs every test; returns how many
 * passed, -1 when anything failed. */
static int
write_and_test(const char *extra)
{
    char             dir[1024];
    char             path[1200];
    pdp_mig_output   o;
    tg_config       *cfg = NULL;
    pdp_bundle      *b   = NULL;
    pdp_bundle_tests t;
    tg_buf           mismatch;
    int              passed = -1;

    snprintf(dir, sizeof(dir), "%s/out", tg_unit_tmpdir("portkey"));
    pdp_portkey_output(&g_pk, &o);
    CU_ASSERT_EQUAL_FATAL(pdp_mig_write(dir, &o, &g_f, g_err, sizeof(g_err)),
                          TG_OK);
    snprintf(path, sizeof(path), "%s/bundle", dir);
    if (extra != NULL) {
        tg_unit_write(path, "hand.test.json", extra);
    }
    snprintf(path, sizeof(path), "%s/tollgate.json", dir);
    if (tg_config_load(&cfg, path, g_err, sizeof(g_err)) != TG_OK) {
        fprintf(stderr, "config: %s\n", g_err);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/bundle", dir);
    if (pdp_bundle_load(&b, path, cfg, g_err, sizeof(g_err)) != TG_OK) {
        fprintf(stderr, "bundle: %s\n", g_err);
        tg_config_destroy(cfg);
        return -1;
    }
    pdp_bundle_tests_init(&t);
    tg_buf_init(&mismatch, 1 << 16);
    pdp_bundle_tests_hermetic(b, cfg, path, &t, &mismatch);
    for (size_t i = 0; i < t.n; i++) {
        if (!t.cases[i].passed) {
            fprintf(stderr, "FAIL %s: %s\n", t.cases[i].name, t.cases[i].why);
        }
    }
    if (t.failed == 0 && t.malformed == 0 && t.errors == 0) {
        passed = t.passed;
    }
    pdp_bundle_tests_fini(&t);
    tg_buf_fini(&mismatch);
    pdp_bundle_unref(b);
    tg_config_destroy(cfg);
    return passed;
}

/* ---- modes --------------------------------------------------------------- */

static void
test_single(void)
{
    cJSON *fj;
    char  *all;

    CU_ASSERT_EQUAL_FATAL(import(corpus("single.json"), NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_pk.model, "gpt-4o");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(g_pk.deployments), 1);
    CU_ASSERT_STRING_EQUAL(dep_str("azure-gpt4o", "provider"), "azure");
    CU_ASSERT_STRING_EQUAL(dep_str("azure-gpt4o", "api_base"),
                           "https://contoso-openai-eastus.openai.azure.com");
    CU_ASSERT_STRING_EQUAL(dep_str("azure-gpt4o", "upstream_model"),
                           "gpt4o-prod");
    CU_ASSERT_STRING_EQUAL(dep_str("azure-gpt4o", "api_version"), "2024-10-21");
    CU_ASSERT_STRING_EQUAL(dep_str("azure-gpt4o", "api_key"),
                           "${PORTKEY_VK_AZURE_GPT4O}");
    CU_ASSERT_EQUAL(dep_num("azure-gpt4o", "weight"), -1);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(g_pk.dataplane, "retries")->valueint,
                    3);
    CU_ASSERT_EQUAL(
        cJSON_GetObjectItem(g_pk.dataplane, "total_timeout_ms")->valueint,
        20000);
    CU_ASSERT(finding_at("targets[0].virtual_key", PDP_MIG_APPROXIMATED, 9));
    CU_ASSERT(finding_at("targets[0].override_params.temperature",
                         PDP_MIG_UNSUPPORTED, 13));
    CU_ASSERT(finding_at("targets[0].override_params.model",
                         PDP_MIG_APPROXIMATED, 13));
    CU_ASSERT(
        finding_at("targets[0].forward_headers", PDP_MIG_UNSUPPORTED, 14));
    CU_ASSERT(finding_at("retry.attempts", PDP_MIG_MAPPED, 3));
    CU_ASSERT(write_and_test(NULL) == 1);
    /* a virtual key is a credential's name: it is printed nowhere */
    fj  = pdp_mig_findings_json(&g_f);
    all = cJSON_PrintUnformatted(fj);
    CU_ASSERT_PTR_NULL(strstr(all, "azure-prod-7f3a2c"));
    free(all);
    cJSON_Delete(fj);
    all = cJSON_PrintUnformatted(g_pk.deployments);
    CU_ASSERT_PTR_NULL(strstr(all, "azure-prod-7f3a2c"));
    free(all);
}

/* custom_host: the version Tollgate adds itself is taken off, Ollama's
 * /v1 added, a URL with credentials refused and not printed. */
static void
test_hosts(void)
{
    const char *dir = tg_unit_tmpdir("portkey-hosts");
    const char *p   = tg_unit_write(
          dir, "hosts.json",
          "{\"strategy\": {\"mode\": \"fallback\"},\n"
            " \"override_params\": {\"model\": \"m\"},\n"
            " \"targets\": [\n"
            "  {\"name\": \"a\", \"provider\": \"anthropic\", \"virtual_key\": "
            "\"vk-a\", \"custom_host\": \"https://px.example/anthropic/v1/\"},\n"
            "  {\"name\": \"g\", \"provider\": \"google\", \"virtual_key\": "
            "\"vk-g\", \"custom_host\": \"https://px.example/gemini\"},\n"
            "  {\"name\": \"o\", \"provider\": \"openai\", \"virtual_key\": "
            "\"vk-o\", \"custom_host\": \"https://u:hunter2@px.example/v1\"},\n"
            "  {\"name\": \"l\", \"provider\": \"ollama\", "
            "\"custom_host\": \"http://10.0.0.5:11434/\"}]}\n");
    cJSON *fj;
    char  *all;

    CU_ASSERT_EQUAL_FATAL(import(p, NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(dep_str("a", "api_base"),
                           "https://px.example/anthropic");
    CU_ASSERT(finding_at("targets[0].custom_host", PDP_MIG_MAPPED, 4));
    CU_ASSERT_STRING_EQUAL(dep_str("g", "api_base"),
                           "https://px.example/gemini");
    CU_ASSERT(finding_at("targets[1].custom_host", PDP_MIG_APPROXIMATED, 5));
    CU_ASSERT_STRING_EQUAL(dep_str("o", "api_base"), "(none)");
    CU_ASSERT(finding_at("targets[2].custom_host", PDP_MIG_UNSUPPORTED, 6));
    CU_ASSERT_STRING_EQUAL(dep_str("l", "api_base"),
                           "http://10.0.0.5:11434/v1");
    CU_ASSERT_STRING_EQUAL(dep_str("l", "api_key"), "(none)");
    fj  = pdp_mig_findings_json(&g_f);
    all = cJSON_PrintUnformatted(fj);
    CU_ASSERT_PTR_NULL(strstr(all, "hunter2"));
    free(all);
    cJSON_Delete(fj);
    CU_ASSERT(write_and_test(NULL) == 1);
}

static void
test_loadbalance(void)
{
    static const char *const ids[] = {"oai-east", "oai-west", NULL};
    const cJSON             *mg;

    CU_ASSERT_EQUAL_FATAL(import(corpus("loadbalance.json"), NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_pk.model, "gpt-4o-mini");
    CU_ASSERT_EQUAL(dep_num("oai-east", "weight"), 750);
    CU_ASSERT_EQUAL(dep_num("oai-west", "weight"), 250);
    CU_ASSERT_STRING_EQUAL(dep_str("oai-west", "upstream_model"),
                           "gpt-4o-mini");
    CU_ASSERT_STRING_EQUAL(dep_str("oai-west", "model"), "gpt-4o-mini");
    mg = cJSON_GetArrayItem(g_pk.model_groups, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(mg, "model")->valuestring,
                           "gpt-4o-mini");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(mg, "strategy")->valuestring,
                           "weighted");
    CU_ASSERT(ids_are(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(g_pk.tests, 0), "expect"),
            "route"),
        ids));
    CU_ASSERT(finding_at("cache", PDP_MIG_UNSUPPORTED, 4));
    CU_ASSERT(finding_at("retry.on_status_codes", PDP_MIG_APPROXIMATED, 3));
    /* Portkey does not try the other targets when the drawn one fails */
    CU_ASSERT(finding_at("strategy.mode", PDP_MIG_APPROXIMATED, 2));
    CU_ASSERT(finding_at("targets[0].weight", PDP_MIG_MAPPED, 10));
    CU_ASSERT(write_and_test(NULL) == 1);
}

/* A fallback whose first target is a loadbalance pool: one model per
 * target, the later ones the first's model-group fallbacks. */
static void
test_fallback(void)
{
    static const char *const pool[] = {"primary", "primary-eu", NULL};
    static const char *const fbs[]  = {"smart-fallback-1", "smart-fallback-2",
                                       NULL};
    const cJSON             *mg;

    /* the targets send three models: the client-facing one is needed */
    CU_ASSERT_EQUAL(import(corpus("fallback.json"), NULL), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "send different models"));
    CU_ASSERT_EQUAL_FATAL(import(corpus("fallback.json"), "smart"), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_pk.model, "smart");
    CU_ASSERT_STRING_EQUAL(dep_str("primary", "model"), "smart");
    CU_ASSERT_STRING_EQUAL(dep_str("primary", "upstream_model"), "gpt-4o");
    CU_ASSERT_STRING_EQUAL(dep_str("primary-eu", "upstream_model"), "gpt-4o");
    CU_ASSERT_STRING_EQUAL(dep_str("primary-eu", "api_base"),
                           "https://eu.api.openai.com/v1");
    CU_ASSERT_EQUAL(dep_num("primary", "weight"), 500);
    CU_ASSERT_EQUAL(dep_num("primary-eu", "weight"), 500);
    CU_ASSERT_STRING_EQUAL(dep_str("secondary", "provider"), "anthropic");
    CU_ASSERT_STRING_EQUAL(dep_str("secondary", "model"), "smart-fallback-1");
    CU_ASSERT_STRING_EQUAL(dep_str("secondary", "upstream_model"),
                           "claude-3-5-sonnet-20241022");
    CU_ASSERT_STRING_EQUAL(dep_str("secondary", "anthropic_version"),
                           "2023-06-01");
    CU_ASSERT(finding_at("targets[1].anthropic_version", PDP_MIG_MAPPED, 23));
    CU_ASSERT_STRING_EQUAL(dep_str("last-resort", "provider"), "groq");
    CU_ASSERT_STRING_EQUAL(dep_str("last-resort", "model"), "smart-fallback-2");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(g_pk.model_groups), 1);
    mg = cJSON_GetArrayItem(g_pk.model_groups, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(mg, "model")->valuestring,
                           "smart");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(mg, "strategy")->valuestring,
                           "weighted");
    CU_ASSERT(ids_are(cJSON_GetObjectItem(mg, "fallbacks"), fbs));
    CU_ASSERT(ids_are(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(g_pk.tests, 0), "expect"),
            "route"),
        pool));
    /* no retry block: one attempt per target, as in Portkey */
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(g_pk.dataplane, "retries")->valueint,
                    0);
    CU_ASSERT_PTR_NOT_NULL(finding("retry", PDP_MIG_MAPPED));
    CU_ASSERT_EQUAL(
        cJSON_GetObjectItem(g_pk.dataplane, "first_byte_timeout_ms")->valueint,
        15000);
    CU_ASSERT(finding_at("strategy.mode", PDP_MIG_MAPPED, 3));
    CU_ASSERT(finding_at("targets[1]", PDP_MIG_MAPPED, 18));
    CU_ASSERT(finding_at("strategy.on_status_codes[0]", PDP_MIG_MAPPED, 4));
    CU_ASSERT(
        finding_at("strategy.on_status_codes[5]", PDP_MIG_UNSUPPORTED, 4));
    CU_ASSERT(finding_at("targets[1].override_params.max_tokens",
                         PDP_MIG_UNSUPPORTED, 22));
    CU_ASSERT_PTR_NULL(finding("strategy", PDP_MIG_APPROXIMATED));
    CU_ASSERT(write_and_test(NULL) == 1);
}

/* A fallback of plain targets stays one model, in order. */
static void
test_fallback_plain(void)
{
    static const char *const ids[] = {"a", "b", "c", NULL};
    const char              *dir   = tg_unit_tmpdir("portkey-fb");
    const char              *p     = tg_unit_write(
                         dir, "fb.json",
                         "{\"strategy\": {\"mode\": \"fallback\"},\n"
                                          " \"override_params\": {\"model\": \"gpt-4o\"},\n"
                                          " \"targets\": [{\"name\": \"a\", \"provider\": \"openai\"},\n"
                                          "  {\"name\": \"b\", \"provider\": \"azure-openai\", "
                                          "\"resource_name\": \"r\", \"deployment_id\": \"d\", "
                                          "\"api_version\": \"2024-10-21\"},\n"
                                          "  {\"strategy\": {\"mode\": \"loadbalance\"}, \"targets\": [\n"
                                          "   {\"name\": \"c\", \"provider\": \"openai\"}]}]}\n");

    CU_ASSERT_EQUAL_FATAL(import(p, NULL), TG_OK);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(g_pk.model_groups), 0);
    CU_ASSERT_EQUAL(dep_num("a", "weight"), -1);
    CU_ASSERT_STRING_EQUAL(dep_str("b", "model"), "gpt-4o");
    CU_ASSERT(ids_are(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(g_pk.tests, 0), "expect"),
            "route"),
        ids));
    /* Portkey falls back on any non-2xx, Tollgate not on a 400 */
    CU_ASSERT(finding_at("strategy", PDP_MIG_APPROXIMATED, 1));
    /* a loadbalance in a fallback: its targets in order */
    CU_ASSERT(finding_at("targets[2].strategy.mode", PDP_MIG_APPROXIMATED, 5));
    CU_ASSERT(write_and_test(NULL) == 1);
}

static void
test_nested_weights(void)
{
    CU_ASSERT_EQUAL(import(corpus("nested.json"), NULL), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "pass --model NAME"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "nested.json:1:1:"));
    CU_ASSERT_EQUAL_FATAL(import(corpus("nested.json"), "llama-or-gpt"), TG_OK);
    /* 0.8 pool: a fallback, its first target takes it all */
    CU_ASSERT_EQUAL(dep_num("oai", "weight"), 800);
    CU_ASSERT_EQUAL(dep_num("gem", "weight"), 1);
    /* 0.2 pool of 1:3 */
    CU_ASSERT_EQUAL(dep_num("together", "weight"), 50);
    CU_ASSERT_EQUAL(dep_num("router", "weight"), 150);
    CU_ASSERT_EQUAL(dep_num("local", "weight"), 0);
    CU_ASSERT_STRING_EQUAL(dep_str("gem", "provider"), "gemini");
    CU_ASSERT_STRING_EQUAL(dep_str("gem", "upstream_model"), "gemini-1.5-pro");
    CU_ASSERT_STRING_EQUAL(dep_str("local", "api_base"),
                           "http://ollama.internal:11434/v1");
    CU_ASSERT_STRING_EQUAL(dep_str("local", "upstream_model"), "llama-or-gpt");
    CU_ASSERT_STRING_EQUAL(dep_str("local", "api_key"), "(none)");
    CU_ASSERT(finding_at("targets[0].strategy.mode", PDP_MIG_APPROXIMATED, 7));
    CU_ASSERT(finding_at("targets[1].strategy.mode", PDP_MIG_MAPPED, 18));
    CU_ASSERT(write_and_test(NULL) == 1);
}

/* ---- conditional ----------------------------------------------------------
 */

/* Expectations written by hand from Portkey's documented semantics. */
#define HAND_CASE(name, meta, route)                                           \
    "{\"name\": \"" name "\", \"input\": {\"principal\": {\"key_id\": "        \
    "\"k\"}, \"request\": {\"model\": \"gpt-4o-mini\", \"metadata\": " meta    \
    "}}, \"expect\": {\"decision\": \"allow\", \"route\": " route "}}"

#define BASE "[\"base\"]"
#define EU "[\"eu\"]"
#define INTERNAL "[\"mistral-1\", \"deepseek-2\"]"

static const char HAND_TESTS[] =
    "{\"tests\": [" HAND_CASE("paid", "{\"plan\": \"paid\", \"region\": \"eu\"}", "[\"finetuned\"]") "," HAND_CASE("free", "{\"plan\": \"free\"}", BASE) "," HAND_CASE(
        "in", "{\"region\": \"fr\"}",
        EU) "," HAND_CASE("not in", "{\"region\": \"us\"}",
                          BASE) "," HAND_CASE("plain value",
                                              "{\"data_class\": "
                                              "\"restricted\"}",
                                              EU) "," HAND_CASE("and holds",
                                                                "{\"tier\": "
                                                                "\"internal\", "
                                                                "\"env\": "
                                                                "\"dev\"}",
                                                                INTERNAL) "," HAND_CASE("ne fails",
                                                                                        "{\"tier\": \"internal\", \"env\": \"prod\"}",
                                                                                        BASE) "," HAND_CASE("nin fails",
                                                                                                            "{\"tier\": \"internal\", \"team\": \"ml\"}",
                                                                                                            BASE) "," HAND_CASE("nin holds",
                                                                                                                                "{\"tier\": \"internal\", \"team\": \"web\"}",
                                                                                                                                INTERNAL) "," HAND_CASE("case matters",
                                                                                                                                                        "{\"plan\": \"PAID\"}",
                                                                                                                                                        BASE) "]}";

static void
test_conditional(void)
{
    static const char *const first[] = {"finetuned", NULL};
    const cJSON             *r;
    int                      passed;

    CU_ASSERT_EQUAL_FATAL(import(corpus("conditional.json"), "gpt-4o-mini"),
                          TG_OK);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(g_pk.rules), 4);
    r = cJSON_GetArrayItem(g_pk.rules, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "id")->valuestring,
                           "portkey-cond-01");
    CU_ASSERT(ids_are(cJSON_GetObjectItem(r, "deployments"), first));
    r = cJSON_GetArrayItem(g_pk.rules, 2);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "strategy")->valuestring,
                           "weighted");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(g_pk.rules, 3), "id")
            ->valuestring,
        "portkey-default");
    CU_ASSERT_EQUAL(dep_num("mistral-1", "weight"), 667);
    CU_ASSERT_EQUAL(dep_num("deepseek-2", "weight"), 333);
    CU_ASSERT_STRING_EQUAL(dep_str("finetuned", "upstream_model"),
                           "ft:gpt-4o-mini:acme::9xYz");
    CU_ASSERT_STRING_EQUAL(dep_str("eu", "upstream_model"), "gpt-4o-mini-eu");
    /* every operator is a mapped finding on its own line */
    CU_ASSERT(finding_at("strategy.conditions[0].query.metadata.plan.$eq",
                         PDP_MIG_MAPPED, 6));
    CU_ASSERT(
        finding_at("strategy.conditions[1].query.$or[0].metadata.region.$in",
                   PDP_MIG_MAPPED, 12));
    CU_ASSERT(
        finding_at("strategy.conditions[1].query.$or[1].metadata.data_class",
                   PDP_MIG_MAPPED, 13));
    CU_ASSERT(
        finding_at("strategy.conditions[2].query.$and[0].metadata.env.$ne",
                   PDP_MIG_MAPPED, 21));
    CU_ASSERT(
        finding_at("strategy.conditions[2].query.$and[1].metadata.team.$nin",
                   PDP_MIG_MAPPED, 22));
    CU_ASSERT(
        finding_at("strategy.conditions[1].query.$or", PDP_MIG_MAPPED, 11));
    CU_ASSERT(finding_at("retry.on_status_codes[3]", PDP_MIG_APPROXIMATED, 31));
    /* generated (6 or more) and hand-written (10) cases all pass */
    passed = write_and_test(HAND_TESTS);
    CU_ASSERT(passed >= 16);
}

static void
test_no_default(void)
{
    const char *dir = tg_unit_tmpdir("portkey-nodef");
    const char *p   = tg_unit_write(
          dir, "nodef.json",
          "{\"strategy\": {\"mode\": \"conditional\", \"conditions\": [\n"
            "  {\"query\": {\"metadata.team\": {\"$in\": [\"a\", \"b\"]}}, "
            "\"then\": \"t\"}]},\n"
            " \"targets\": [{\"name\": \"t\", \"provider\": \"openai\", "
            "\"api_key\": \"${OPENAI_API_KEY}\", "
            "\"override_params\": {\"model\": \"gpt-4o\"}}]}\n");
    const cJSON *r;
    const cJSON *t;
    bool         deny_tested = false;

    CU_ASSERT_EQUAL_FATAL(import(p, NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(dep_str("t", "api_key"), "${OPENAI_API_KEY}");
    r = cJSON_GetArrayItem(g_pk.rules, 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "id")->valuestring,
                           "portkey-no-match");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "effect")->valuestring,
                           "deny");
    cJSON_ArrayForEach(t, g_pk.tests)
    {
        const cJSON *d =
            cJSON_GetObjectItem(cJSON_GetObjectItem(t, "expect"), "decision");
        deny_tested |= strcmp(d->valuestring, "deny") == 0;
    }
    CU_ASSERT(deny_tested);
    CU_ASSERT(write_and_test(NULL) >= 2);
}

static void
test_bad_references(void)
{
    const char *dir = tg_unit_tmpdir("portkey-bad");
    const char *p   = tg_unit_write(
          dir, "bad.json",
          "{\"strategy\": {\"mode\": \"conditional\", \"conditions\": [\n"
            "  {\"query\": {\"metadata.team\": \"a\"}, \"then\": \"nope\"}]},\n"
            " \"targets\": [{\"name\": \"t\", \"provider\": \"openai\"}]}\n");

    CU_ASSERT_EQUAL(import(p, "m"), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "bad.json:2:37:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no target has this name"));
    p = tg_unit_write(dir, "broken.json", "{\"strategy\": {\"mode\": }\n");
    CU_ASSERT_EQUAL(import(p, "m"), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "broken.json:1:"));
}

/* Configs of the wrong shape: each is imported with findings or refused
 * with file:line:col, never a crash (the suite runs under ASan). */
static void
test_odd_shapes(void)
{
    static const struct {
        const char *json;
        tg_err      want;
        const char *say; /* in the error or a finding's message */
    } odd[] = {
        {"{\"strategy\": \"loadbalance\", \"targets\": [{\"provider\": "
         "\"openai\"}]}",
         TG_OK, "taken as mode single"},
        {"{\"targets\": {}}", TG_ECONFIG, "expected a list of 1 to 64"},
        {"{\"targets\": [1, {\"provider\": \"openai\"}]}", TG_ECONFIG,
         "no target of this config can be imported"},
        {"{}", TG_ECONFIG, "neither targets nor a provider"},
        {"[]", TG_ECONFIG, "a Portkey config is a JSON object"},
        {"{\"strategy\": {\"mode\": \"conditional\", \"conditions\": [{"
         "\"query\": 5, \"then\": \"a\"}, {\"query\": {\"$or\": \"x\"}, "
         "\"then\": \"a\"}, {\"query\": {\"metadata.x\": {\"$in\": [1]}}, "
         "\"then\": \"a\"}, {\"query\": {\"metadata.bad key\": \"v\"}, "
         "\"then\": \"a\"}], \"default\": \"a\"}, \"targets\": [{\"name\": "
         "\"a\", \"provider\": \"openai\"}]}",
         TG_OK, "a metadata key Tollgate reads is 1 to 63"},
        {"{\"strategy\": {\"mode\": \"conditional\", \"conditions\": [], "
         "\"default\": \"a\"}, \"targets\": [{\"name\": \"a\", "
         "\"provider\": \"openai\"}]}",
         TG_ECONFIG, "strategy.conditions: expected a list"},
        {"{\"strategy\": {\"mode\": \"fallback\"}, \"targets\": ["
         "{\"provider\": \"openai\"}, {\"strategy\": {\"mode\": "
         "\"scientist\"}, \"targets\": [{\"provider\": \"openai\"}]}]}",
         TG_OK, "unknown strategy mode"},
    };
    const char *dir = tg_unit_tmpdir("portkey-odd");

    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        char        name[32];
        const char *p;
        bool        said = false;
        tg_err      rv;

        snprintf(name, sizeof(name), "odd%zu.json", i);
        p  = tg_unit_write(dir, name, odd[i].json);
        rv = import(p, "m");
        CU_ASSERT_EQUAL(rv, odd[i].want);
        said = strstr(g_err, odd[i].say) != NULL;
        for (size_t k = 0; k < g_f.n; k++) {
            said |= strstr(g_f.items[k].message, odd[i].say) != NULL;
        }
        if (!said || rv != odd[i].want) {
            fprintf(stderr, "odd[%zu]: %s (%s)\n", i, g_err, odd[i].say);
        }
        CU_ASSERT(said);
        if (rv != TG_OK) {
            snprintf(name, sizeof(name), "odd%zu.json:1:", i);
            CU_ASSERT_PTR_NOT_NULL(strstr(g_err, name));
        } else {
            CU_ASSERT(write_and_test(NULL) >= 1);
        }
    }
}

/* ---- refusals -------------------------------------------------------------
 */

/* no_secret: neither secret of refusals.json is anywhere in text. */
static bool
no_secret(const char *text)
{
    return strstr(text, "LITERALSECRET") == NULL &&
           strstr(text, "wJalrXUtnFEMI") == NULL &&
           strstr(text, "AKIAIOSFODNN7") == NULL;
}

/* files_clean: no file under dir holds a secret. */
static bool
files_clean(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    bool           ok = d != NULL;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char   p[1400];
        FILE  *fp;
        char   buf[1 << 16];
        size_t n;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR) {
            ok &= files_clean(p);
            continue;
        }
        if ((fp = fopen(p, "r")) == NULL) {
            continue;
        }
        n      = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        ok &= no_secret(buf);
    }
    if (d != NULL) {
        closedir(d);
    }
    return ok;
}

static void
test_refusals(void)
{
    char  *all;
    cJSON *fj;
    char   dir[1024];
    char   outbuf[1 << 16];
    char   errbuf[4096];
    FILE  *out;
    FILE  *err;
    char  *argv[8];
    int    st;

    CU_ASSERT_EQUAL_FATAL(import(corpus("refusals.json"), NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_pk.model, "gpt-4o");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(g_pk.deployments), 2);
    CU_ASSERT_STRING_EQUAL(dep_str("openai-1", "api_key"),
                           "${PORTKEY_VK_OPENAI_1}");
    CU_ASSERT_STRING_EQUAL(dep_str("openai-direct", "api_key"),
                           "${PORTKEY_API_KEY_OPENAI_DIRECT}");
    CU_ASSERT(finding_at("targets[0].api_key", PDP_MIG_UNSUPPORTED, 19));
    CU_ASSERT(finding_at("targets[0].openai_project", PDP_MIG_UNSUPPORTED, 20));
    CU_ASSERT(
        finding_at("targets[1].targets[0].provider", PDP_MIG_UNSUPPORTED, 27));
    CU_ASSERT(finding_at("targets[1].targets[0].aws_secret_access_key",
                         PDP_MIG_UNSUPPORTED, 29));
    CU_ASSERT(
        finding_at("targets[1].targets[1].provider", PDP_MIG_UNSUPPORTED, 32));
    /* a fallback without on_status_codes falls back on fewer answers */
    CU_ASSERT(finding_at("targets[1].strategy", PDP_MIG_APPROXIMATED, 24));
    CU_ASSERT(finding_at("strategy.conditions[0].query.metadata.user_id.$regex",
                         PDP_MIG_UNSUPPORTED, 5));
    CU_ASSERT(finding_at("strategy.conditions[1].query.metadata.score.$gt",
                         PDP_MIG_UNSUPPORTED, 6));
    CU_ASSERT(finding_at("strategy.conditions[2].query.params.temperature",
                         PDP_MIG_UNSUPPORTED, 7));
    CU_ASSERT(finding_at("cache", PDP_MIG_UNSUPPORTED, 12));
    CU_ASSERT(finding_at("before_request_hooks", PDP_MIG_UNSUPPORTED, 13));
    CU_ASSERT(
        finding_at("override_params.temperature", PDP_MIG_UNSUPPORTED, 14));
    /* only condition 4 and the default are rules */
    CU_ASSERT_EQUAL(cJSON_GetArraySize(g_pk.rules), 2);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(g_pk.rules, 0), "id")
            ->valuestring,
        "portkey-cond-04");
    /* the literal keys are nowhere: not in the built config, the report,
     * the files written, nor what the command prints */
    all = cJSON_PrintUnformatted(g_pk.deployments);
    CU_ASSERT(no_secret(all));
    free(all);
    fj  = pdp_mig_findings_json(&g_f);
    all = cJSON_PrintUnformatted(fj);
    CU_ASSERT(no_secret(all));
    free(all);
    cJSON_Delete(fj);
    CU_ASSERT(write_and_test(NULL) >= 2);
    snprintf(dir, sizeof(dir), "%s/cli", tg_unit_tmpdir("portkey-cli"));
    out     = fmemopen(outbuf, sizeof(outbuf), "w");
    err     = fmemopen(errbuf, sizeof(errbuf), "w");
    argv[0] = (char *)corpus("refusals.json");
    argv[1] = "--out";
    argv[2] = dir;
    argv[3] = NULL;
    st      = pdp_import_portkey_cli(3, argv, out, err);
    fclose(out);
    fclose(err);
    CU_ASSERT_EQUAL(st, PDP_MIG_EXIT_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(outbuf, "targets[0].api_key"));
    CU_ASSERT(no_secret(outbuf));
    CU_ASSERT(no_secret(errbuf));
    CU_ASSERT(files_clean(dir));
}

static void
test_cli(void)
{
    char   outbuf[1 << 16];
    char   errbuf[4096];
    FILE  *out;
    FILE  *err;
    char  *argv[8];
    int    st;
    char   dir[1024];
    cJSON *j;

    snprintf(dir, sizeof(dir), "%s/never", tg_unit_tmpdir("portkey-dry"));
    out     = fmemopen(outbuf, sizeof(outbuf), "w");
    err     = fmemopen(errbuf, sizeof(errbuf), "w");
    argv[0] = (char *)corpus("nested.json");
    argv[1] = "--model=gpt-4o";
    argv[2] = "--dry-run";
    argv[3] = "--format";
    argv[4] = "json";
    argv[5] = "--out";
    argv[6] = dir;
    argv[7] = NULL;
    st      = pdp_import_portkey_cli(7, argv, out, err);
    fclose(out);
    fclose(err);
    CU_ASSERT_EQUAL(st, PDP_MIG_EXIT_OK);
    j = cJSON_Parse(outbuf);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(j, "findings"));
    cJSON_Delete(j);
    CU_ASSERT_PTR_NULL(opendir(dir)); /* a dry run writes nothing */

    out     = fmemopen(outbuf, sizeof(outbuf), "w");
    err     = fmemopen(errbuf, sizeof(errbuf), "w");
    argv[1] = "--dry-run";
    argv[2] = NULL;
    st      = pdp_import_portkey_cli(2, argv, out, err);
    fclose(out);
    fclose(err);
    CU_ASSERT_EQUAL(st, PDP_MIG_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "--model NAME"));

    out     = fmemopen(outbuf, sizeof(outbuf), "w");
    err     = fmemopen(errbuf, sizeof(errbuf), "w");
    argv[1] = "--model";
    argv[2] = NULL;
    st      = pdp_import_portkey_cli(2, argv, out, err);
    fclose(out);
    fclose(err);
    CU_ASSERT_EQUAL(st, PDP_MIG_EXIT_USAGE);
}

/* pk_cli runs `import portkey` with the NULL-ended words into outbuf and
 * errbuf; returns its exit status. */
static int
pk_cli(char *outbuf, size_t outcap, char *errbuf, size_t errcap, ...)
{
    char   *argv[12];
    int     argc = 0;
    int     st;
    FILE   *out = fmemopen(outbuf, outcap, "w");
    FILE   *err = fmemopen(errbuf, errcap, "w");
    va_list ap;

    va_start(ap, errcap);
    for (char *w; argc < 11 && (w = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = w;
    }
    va_end(ap);
    argv[argc] = NULL;
    st         = pdp_import_portkey_cli(argc, argv, out, err);
    fclose(out);
    fclose(err);
    return st;
}

/* pk_finding is the message of the finding at path in the --format json
 * report, or NULL (a static copy). */
static const char *
pk_finding(const char *report, const char *path)
{
    static char  msg[1200];
    cJSON       *j     = cJSON_Parse(report);
    const cJSON *f     = NULL;
    bool         found = false;

    cJSON_ArrayForEach(f, cJSON_GetObjectItem(j, "findings"))
    {
        const cJSON *p = cJSON_GetObjectItem(f, "path");
        if (!found && cJSON_IsString(p) && strcmp(p->valuestring, path) == 0) {
            snprintf(msg, sizeof(msg), "%s",
                     cJSON_GetObjectItem(f, "message")->valuestring);
            found = true;
        }
    }
    cJSON_Delete(j);
    return found ? msg : NULL;
}

/* --pricing: the models nothing prices are named (without a table: all
 * three; with Tollgate's policies/pricing.json, "smart" is priced by its
 * upstream gpt-4o), pdp.pricing_file is the table's absolute path, and a
 * table the PDP would refuse is refused with its line. */
static void
test_pricing(void)
{
    static char outbuf[1 << 17];
    char        errbuf[4096];
    char        dir[1024], table[1024], want[1024], bad[1200], path[1200];
    const char *src = getenv("TG_SRC");
    const char *msg;
    tg_config  *cfg = NULL;
    int         st;

    snprintf(table, sizeof(table), "%s/policies/pricing.json",
             src != NULL ? src : ".");
    snprintf(dir, sizeof(dir), "%s/out", tg_unit_tmpdir("portkey-price"));
    st = pk_cli(outbuf, sizeof(outbuf), errbuf, sizeof(errbuf),
                (char *)corpus("fallback.json"), "--model", "smart",
                "--dry-run", "--format", "json", (char *)NULL);
    CU_ASSERT_EQUAL_FATAL(st, PDP_MIG_EXIT_OK);
    msg = pk_finding(outbuf, "pricing");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, "3 client-facing models have no price (no deployment "
                    "pricing, and no price table): smart, smart-fallback-1, "
                    "smart-fallback-2."));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "403 model_unpriced"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--pricing policies/pricing.json"));

    st = pk_cli(outbuf, sizeof(outbuf), errbuf, sizeof(errbuf),
                (char *)corpus("fallback.json"), "--model", "smart", "--out",
                dir, "--pricing", table, "--format", "json", (char *)NULL);
    CU_ASSERT_EQUAL_FATAL(st, PDP_MIG_EXIT_OK);
    msg = pk_finding(outbuf, "pricing");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, ": smart-fallback-1, smart-fallback-2."));
    CU_ASSERT_PTR_NULL(strstr(msg, "smart,"));
    CU_ASSERT_PTR_NOT_NULL(pk_finding(outbuf, "--pricing"));
    /* the written config loads, and names the table by absolute path */
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(table, want));
    snprintf(path, sizeof(path), "%s/tollgate.json", dir);
    CU_ASSERT_EQUAL_FATAL(tg_config_load(&cfg, path, g_err, sizeof(g_err)),
                          TG_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->pdp.pricing_file);
    CU_ASSERT_STRING_EQUAL(cfg->pdp.pricing_file, want);
    tg_config_destroy(cfg);

    snprintf(path, sizeof(path), "%s", tg_unit_tmpdir("portkey-bad"));
    snprintf(bad, sizeof(bad), "%s",
             tg_unit_write(path, "bad.json",
                           "{\"currency\": \"USD\",\n \"models\": {\n"
                           "  \"gpt-4o\": {\"input_per_mtok\": 1, "
                           "\"output_per_mtok\": 1, \"x\": 1}}}\n"));
    snprintf(dir, sizeof(dir), "%s/out", tg_unit_tmpdir("portkey-price"));
    st = pk_cli(outbuf, sizeof(outbuf), errbuf, sizeof(errbuf),
                (char *)corpus("loadbalance.json"), "--out", dir, "--pricing",
                bad, (char *)NULL);
    CU_ASSERT_EQUAL(st, PDP_MIG_EXIT_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "--pricing: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "bad.json:3:"));
    CU_ASSERT_PTR_NULL(opendir(dir)); /* nothing written */
}

static const tg_unit_case cases[] = {
    {"single: one azure deployment, retry and timeout", test_single},
    {"custom_host: versions, Ollama's /v1, credentials refused", test_hosts},
    {"loadbalance: weights and a weighted model group", test_loadbalance},
    {"fallback: ordered deployments, status codes reported", test_fallback},
    {"a fallback of plain targets: one model, in order", test_fallback_plain},
    {"nested targets: weights multiplied, --model needed", test_nested_weights},
    {"conditional: every operator, generated and hand tests pass",
     test_conditional},
    {"conditional without default: no match is denied", test_no_default},
    {"a then naming no target, broken JSON: file:line:col",
     test_bad_references},
    {"configs of the wrong shape: findings or file:line:col", test_odd_shapes},
    {"refusals: paths and lines, literal keys never copied or printed",
     test_refusals},
    {"the command: --dry-run --format json, --model errors", test_cli},
    {"--pricing: unpriced models, pricing_file, a bad table", test_pricing},
    {NULL, NULL},
};

int
main(void)
{
    int rc = tg_unit_run("pdp.migrate.portkey", cases);

    pdp_portkey_fini(&g_pk);
    pdp_mig_findings_fini(&g_f);
    return rc;
}
