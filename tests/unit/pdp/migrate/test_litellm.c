/* pdp.migrate.litellm - tollgate-pdp import litellm and export --to
 * litellm over the corpus in tests/migrate/litellm: each field's mapping,
 * the kinds of findings with their lines, literal secrets never copied
 * nor printed, exact price conversion, budget windows, bad YAML with
 * line:col, the output directory rules, keys.sh, and the export read back
 * and imported again. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pdp_bundle_test.h"
#include "pdp_import_litellm.h"
#include "pdp_migrate.h"
#include "tg_unit.h"
#include "tg_yaml.h"

/* What one run of a command printed, and its exit status. */
typedef struct run {
    int    ec;
    char  *out;
    char  *err;
    size_t nout, nerr;
} run;

static void
run_free(run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* run_cmd calls fn with the NULL-ended words. */
static run
run_cmd(int (*fn)(int, char **, FILE *, FILE *), ...)
{
    char   *argv[16];
    int     argc = 0;
    run     r    = {0};
    FILE   *o    = open_memstream(&r.out, &r.nout);
    FILE   *e    = open_memstream(&r.err, &r.nerr);
    va_list ap;

    va_start(ap, fn);
    for (char *w; argc < 15 && (w = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = w;
    }
    va_end(ap);
    argv[argc] = NULL;
    r.ec       = fn(argc, argv, o, e);
    fclose(o);
    fclose(e);
    return r;
}

/* corpus is the path of a corpus file (one of 4 buffers in turn, so a
 * call's arguments may hold several). */
static const char *
corpus(const char *name)
{
    static char path[4][1024];
    static int  turn;
    const char *src = getenv("TG_SRC");

    turn = (turn + 1) % 4;
    snprintf(path[turn], sizeof(path[turn]), "%s/tests/migrate/litellm/%s",
             src != NULL ? src : ".", name);
    return path[turn];
}

/* slurp reads dir/name (NULL if absent). */
static char *
slurp(const char *dir, const char *name)
{
    char   path[1024];
    char  *text = NULL;
    size_t len;
    char   err[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (pdp_mig_read_file(path, 16u << 20, &text, &len, err, sizeof(err)) !=
        TG_OK) {
        return NULL;
    }
    return text;
}

static cJSON *
slurp_json(const char *dir, const char *name)
{
    char  *t = slurp(dir, name);
    cJSON *j = t != NULL ? cJSON_Parse(t) : NULL;

    free(t);
    return j;
}

/* outdir is a fresh, not yet existing directory under a temp dir (one
 * of 4 buffers in turn). */
static const char *
outdir(const char *tag)
{
    static char path[4][600];
    static int  turn;

    turn = (turn + 1) % 4;
    snprintf(path[turn], sizeof(path[turn]), "%s/out", tg_unit_tmpdir(tag));
    return path[turn];
}

/* import_ok imports a corpus file into a new dir; returns the dir. */
static const char *
import_ok(const char *file, const char *keys, run *r)
{
    const char *dir = outdir("lt");

    *r = keys != NULL
             ? run_cmd(pdp_import_litellm_cli, (char *)corpus(file), "--out",
                       (char *)dir, "--keys", (char *)corpus(keys), NULL)
             : run_cmd(pdp_import_litellm_cli, (char *)corpus(file), "--out",
                       (char *)dir, NULL);
    if (r->ec != 0) {
        fprintf(stderr, "\nimport %s: %s\n", file, r->err);
    }
    CU_ASSERT_EQUAL_FATAL(r->ec, 0);
    return dir;
}

static const cJSON *
by_id(const cJSON *deps, const char *id)
{
    for (const cJSON *d = deps->child; d != NULL; d = d->next) {
        if (strcmp(cJSON_GetObjectItem(d, "id")->valuestring, id) == 0) {
            return d;
        }
    }
    return NULL;
}

static const char *
str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);

    return cJSON_IsString(v) ? v->valuestring : "(none)";
}

/* raw prints a member as JSON text ("2.5", "\"x\""). */
static char *
raw(const cJSON *o, const char *k)
{
    static char buf[256];
    char       *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, k));

    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "(none)");
    free(s);
    return buf;
}

/* ---- exact conversions ------------------------------------------------- */

static void
test_per_mtok(void)
{
    static const struct {
        const char *in, *want;
        bool        lost, ok;
    } cases[] = {
        {"0.0000025", "2.5", false, true},
        {"2.5e-06", "2.5", false, true},
        {"25e-7", "2.5", false, true},
        {"1e-5", "10", false, true},
        {"0.00001", "10", false, true},
        {"1.5e-7", "0.15", false, true},
        {"7.5e-8", "0.075", false, true},
        {"0.00000000027", "0.00027", false, true},
        {"0.000000000001", "0.000001", false, true},
        {"3", "3000000", false, true},
        {"0", "0", false, true},
        {"1.2345678e-12", "0.000001", true, true},
        {"4e-13", "0", true, true},
        {"9.9999996e-7", "1", true, true},
        {"-1e-6", NULL, false, false},
        {"abc", NULL, false, false},
        {"1e", NULL, false, false},
        {"", NULL, false, false},
    };
    char buf[64];
    bool lost;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool ok = pdp_mig_per_mtok(cases[i].in, buf, sizeof(buf), &lost);
        if (ok != cases[i].ok || (ok && (strcmp(buf, cases[i].want) != 0 ||
                                         lost != cases[i].lost))) {
            fprintf(stderr, "\n%s: got %d \"%s\" lost %d\n", cases[i].in, ok,
                    ok ? buf : "", lost);
        }
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        if (ok && cases[i].ok) {
            CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
            CU_ASSERT_EQUAL(lost, cases[i].lost);
        }
    }
}

static void
test_windows(void)
{
    static const struct {
        const char  *in, *want;
        pdp_mig_kind kind;
    } cases[] = {
        {"30d", "rolling:720h", PDP_MIG_APPROXIMATED},
        {"24h", "rolling:24h", PDP_MIG_APPROXIMATED},
        {"1d", "rolling:24h", PDP_MIG_APPROXIMATED},
        {"1w", "rolling:168h", PDP_MIG_APPROXIMATED},
        {"31d", "rolling:744h", PDP_MIG_APPROXIMATED},
        {"120m", "rolling:2h", PDP_MIG_APPROXIMATED},
        {"1mo", "monthly", PDP_MIG_APPROXIMATED},
        {"32d", NULL, PDP_MIG_UNSUPPORTED},
        {"2mo", NULL, PDP_MIG_UNSUPPORTED},
        {"30m", NULL, PDP_MIG_UNSUPPORTED},
        {"30s", NULL, PDP_MIG_UNSUPPORTED},
        {"0d", NULL, PDP_MIG_UNSUPPORTED},
        {"monthly", NULL, PDP_MIG_UNSUPPORTED},
        {"5y", NULL, PDP_MIG_UNSUPPORTED},
    };
    char out[32], how[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pdp_mig_kind k =
            pdp_lt_window(cases[i].in, out, sizeof(out), how, sizeof(how));
        CU_ASSERT_EQUAL(k, cases[i].kind);
        CU_ASSERT(strlen(how) > 10); /* it always says how or why */
        if (k == PDP_MIG_APPROXIMATED && cases[i].want != NULL) {
            CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        }
    }
}

/* ---- mapping per field ------------------------------------------------- */

static void
test_deployments(void)
{
    run          r;
    const char  *dir  = import_ok("loadbalance.yaml", NULL, &r);
    cJSON       *cfg  = slurp_json(dir, "tollgate.json");
    const cJSON *deps = cJSON_GetObjectItem(cfg, "deployments");
    const cJSON *eu   = by_id(deps, "azure-eu-gpt-4o");
    const cJSON *us   = by_id(deps, "azure-us-gpt-4o");
    const cJSON *mini = by_id(deps, "gpt-4o-mini-1");
    const cJSON *cl   = by_id(deps, "claude-sonnet-1");
    const cJSON *al   = by_id(deps, "gpt-4-2");

    CU_ASSERT_PTR_NOT_NULL_FATAL(eu);
    CU_ASSERT_PTR_NOT_NULL_FATAL(us);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mini);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(al);
    /* model_name, provider/model, api_base, api_version, merged anchor */
    CU_ASSERT_STRING_EQUAL(str(eu, "model"), "gpt-4o");
    CU_ASSERT_STRING_EQUAL(str(eu, "provider"), "azure");
    CU_ASSERT_STRING_EQUAL(str(eu, "upstream_model"), "gpt-4o-eu");
    CU_ASSERT_STRING_EQUAL(str(eu, "api_base"),
                           "https://eu-prod.openai.azure.com");
    CU_ASSERT_STRING_EQUAL(str(eu, "api_version"), "2024-10-21");
    CU_ASSERT_STRING_EQUAL(str(eu, "api_key"), "${AZURE_API_KEY}");
    /* weights 0.7 / 0.3 keep their ratio, scaled */
    CU_ASSERT_STRING_EQUAL(raw(eu, "weight"), "700");
    CU_ASSERT_STRING_EQUAL(raw(us, "weight"), "300");
    /* prices per token -> per 1M tokens, exact */
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(eu, "pricing"), "input_per_mtok"), "2.5");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(eu, "pricing"), "output_per_mtok"), "10");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(mini, "pricing"), "cached_input_per_mtok"),
        "0.075");
    CU_ASSERT_STRING_EQUAL(str(mini, "provider"), "openai");
    CU_ASSERT_STRING_EQUAL(str(mini, "api_key"), "${OPENAI_API_KEY}");
    CU_ASSERT_STRING_EQUAL(str(cl, "provider"), "anthropic");
    CU_ASSERT_STRING_EQUAL(str(cl, "upstream_model"),
                           "claude-sonnet-4-20250514");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(cl, "pricing"));
    /* model_group_alias: deployments of the alias's own, same upstream */
    CU_ASSERT_STRING_EQUAL(str(al, "model"), "gpt-4");
    CU_ASSERT_STRING_EQUAL(str(al, "upstream_model"), "gpt-4o-us");
    CU_ASSERT_PTR_NOT_NULL(by_id(deps, "gpt-4-turbo-1"));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(deps), 8);
    cJSON_Delete(cfg);
    run_free(&r);
}

static const cJSON *
group(const cJSON *cfg, const char *model)
{
    for (const cJSON *g = cJSON_GetObjectItem(cfg, "model_groups")->child;
         g != NULL; g   = g->next) {
        if (strcmp(str(g, "model"), model) == 0) {
            return g;
        }
    }
    return NULL;
}

static void
test_router_settings(void)
{
    run          r;
    const char  *dir = import_ok("loadbalance.yaml", NULL, &r);
    cJSON       *cfg = slurp_json(dir, "tollgate.json");
    const cJSON *dp  = cJSON_GetObjectItem(cfg, "dataplane");
    const cJSON *g   = group(cfg, "gpt-4o");
    const cJSON *gm  = group(cfg, "gpt-4o-mini");
    const cJSON *ga  = group(cfg, "gpt-4");

    CU_ASSERT_STRING_EQUAL(raw(dp, "retries"), "3"); /* router wins */
    CU_ASSERT_STRING_EQUAL(raw(dp, "total_timeout_ms"), "90000");
    CU_ASSERT_STRING_EQUAL(raw(dp, "first_byte_timeout_ms"), "30000");
    CU_ASSERT_STRING_EQUAL(raw(dp, "cooldown_failures"), "2");
    CU_ASSERT_STRING_EQUAL(raw(dp, "cooldown_window_ms"), "60000");
    CU_ASSERT_STRING_EQUAL(raw(dp, "cooldown_ms"), "45000");
    CU_ASSERT_STRING_EQUAL(str(cJSON_GetObjectItem(cfg, "pdp"), "state_dir"),
                           "state");
    CU_ASSERT_STRING_EQUAL(str(dp, "spool_dir"), "spool");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(dp, "pdp_url"), "/out/run/pdp.sock"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gm);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ga);
    /* usage-based-routing-v2 is approximated by least_inflight */
    CU_ASSERT_STRING_EQUAL(str(g, "strategy"), "least_inflight");
    CU_ASSERT_STRING_EQUAL(raw(g, "fallbacks"),
                           "[\"gpt-4o-mini\",\"claude-sonnet\"]");
    CU_ASSERT_STRING_EQUAL(raw(gm, "context_window_fallbacks"),
                           "[\"claude-sonnet\"]");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(gm, "strategy")); /* one dep */
    CU_ASSERT_STRING_EQUAL(raw(ga, "fallbacks"),
                           "[\"gpt-4o-mini\",\"claude-sonnet\"]");
    cJSON_Delete(cfg);
    run_free(&r);
}

static void
test_rules_and_tests(void)
{
    run          r;
    const char  *dir   = import_ok("loadbalance.yaml", NULL, &r);
    cJSON       *pol   = slurp_json(dir, "bundle/imported.policy.json");
    cJSON       *tests = slurp_json(dir, "bundle/imported.test.json");
    cJSON       *cat   = slurp_json(dir, "bundle/catalog.json");
    const cJSON *rules = cJSON_GetObjectItem(pol, "rules");
    const cJSON *r0    = cJSON_GetArrayItem(rules, 0);
    const cJSON *r1    = cJSON_GetArrayItem(rules, 1);
    const cJSON *t0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(tests, "tests"), 0);

    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(rules), 2);
    /* rpm/tpm of the two gpt-4o deployments summed, scope model */
    CU_ASSERT_STRING_EQUAL(str(r0, "id"), "litellm-limits-gpt-4o");
    CU_ASSERT_STRING_EQUAL(str(r0, "kind"), "rate_limit");
    CU_ASSERT_STRING_EQUAL(str(r0, "scope"), "model");
    CU_ASSERT_STRING_EQUAL(raw(r0, "rpm"), "1000");
    CU_ASSERT_STRING_EQUAL(raw(r0, "tpm"), "500000");
    CU_ASSERT_STRING_EQUAL(raw(r0, "when"),
                           "{\"eq\":[\"request.model\",\"gpt-4o\"]}");
    CU_ASSERT_STRING_EQUAL(raw(r1, "concurrent"), "50");
    CU_ASSERT_STRING_EQUAL(raw(r1, "when"),
                           "{\"eq\":[\"request.model\",\"gpt-4o-mini\"]}");
    /* a test per model, routed to its deployments in order */
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(tests, "tests")), 5);
    CU_ASSERT_STRING_EQUAL(raw(cJSON_GetObjectItem(t0, "expect"), "route"),
                           "[\"azure-eu-gpt-4o\",\"azure-us-gpt-4o\"]");
    CU_ASSERT_STRING_EQUAL(
        str(cJSON_GetObjectItem(cJSON_GetObjectItem(t0, "input"), "request"),
            "model"),
        "gpt-4o");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(cat, "deployments")),
                    8);
    cJSON_Delete(pol);
    cJSON_Delete(tests);
    cJSON_Delete(cat);
    run_free(&r);
}

/* order: the model's deployments sorted by it, strategy ordered; a
 * budget with its prices and the bundle's pricing.json. */
static void
test_order_and_budget(void)
{
    run          r;
    const char  *dir   = import_ok("mock.yaml", NULL, &r);
    cJSON       *cfg   = slurp_json(dir, "tollgate.json");
    cJSON       *pol   = slurp_json(dir, "bundle/imported.policy.json");
    cJSON       *price = slurp_json(dir, "bundle/pricing.json");
    const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(pol, "rules"), 0);

    CU_ASSERT_STRING_EQUAL(str(group(cfg, "team-chat"), "strategy"), "ordered");
    CU_ASSERT_STRING_EQUAL(
        str(cJSON_GetArrayItem(cJSON_GetObjectItem(cfg, "deployments"), 0),
            "id"),
        "chat-primary");
    CU_ASSERT_STRING_EQUAL(str(b, "kind"), "budget");
    CU_ASSERT_STRING_EQUAL(str(b, "scope"), "tenant");
    CU_ASSERT_STRING_EQUAL(str(b, "window"), "monthly");
    CU_ASSERT_STRING_EQUAL(raw(b, "limit_usd"), "100");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(b, "when")); /* all priced */
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(cJSON_GetObjectItem(price, "models"),
                                "team-backup"),
            "output_per_mtok"),
        "15");
    cJSON_Delete(cfg);
    cJSON_Delete(pol);
    cJSON_Delete(price);
    run_free(&r);

    /* budgets.yaml: only the priced models are counted, and said so */
    dir = import_ok("budgets.yaml", NULL, &r);
    pol = slurp_json(dir, "bundle/imported.policy.json");
    b   = cJSON_GetArrayItem(cJSON_GetObjectItem(pol, "rules"), 0);
    CU_ASSERT_STRING_EQUAL(raw(b, "limit_usd"), "250.5");
    CU_ASSERT_STRING_EQUAL(str(b, "window"), "rolling:720h");
    CU_ASSERT_STRING_EQUAL(raw(b, "when"),
                           "{\"in\":[\"request.model\",[\"gpt-4o-mini\","
                           "\"mistral-large\",\"deepseek-chat\"]]}");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "only the models with a price"));
    cJSON_Delete(pol);
    run_free(&r);
}

/* ---- prices: --pricing ------------------------------------------------- */

/* put writes text into dir/name; returns the path (one of 4 buffers). */
static const char *
put(const char *dir, const char *name, const char *text)
{
    static char path[4][1024];
    static int  turn;
    FILE       *fp;

    turn = (turn + 1) % 4;
    snprintf(path[turn], sizeof(path[turn]), "%s/%s", dir, name);
    fp = fopen(path[turn], "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(text, fp);
    fclose(fp);
    return path[turn];
}

/* finding_msg is the message of the finding of kind at path in a
 * --format json report, or NULL (a static copy). */
static const char *
finding_msg(const char *report, const char *path, const char *kind)
{
    static char  msg[1200];
    cJSON       *j     = cJSON_Parse(report);
    const cJSON *f     = NULL;
    bool         found = false;

    cJSON_ArrayForEach(f, cJSON_GetObjectItem(j, "findings"))
    {
        if (!found && strcmp(str(f, "path"), path) == 0 &&
            strcmp(str(f, "kind"), kind) == 0) {
            snprintf(msg, sizeof(msg), "%s", str(f, "message"));
            found = true;
        }
    }
    cJSON_Delete(j);
    return found ? msg : NULL;
}

/* import_priced imports budgets.yaml with --pricing table (NULL: none)
 * and --format json into a new dir; returns the dir. */
static const char *
import_priced(const char *table, run *r)
{
    const char *dir = outdir("ltp");

    *r = table != NULL
             ? run_cmd(pdp_import_litellm_cli, (char *)corpus("budgets.yaml"),
                       "--out", (char *)dir, "--pricing", (char *)table,
                       "--format", "json", NULL)
             : run_cmd(pdp_import_litellm_cli, (char *)corpus("budgets.yaml"),
                       "--out", (char *)dir, "--format", "json", NULL);
    if (r->ec != 0) {
        fprintf(stderr, "\nimport budgets.yaml: %s\n", r->err);
    }
    CU_ASSERT_EQUAL_FATAL(r->ec, 0);
    return dir;
}

/* hermetic runs the written bundle's tests as `tollgate-pdp test` and
 * `serve` do (against bundle/catalog.json and bundle/pricing.json, not
 * pdp.pricing_file); returns how many passed, -1 if any did not. */
static int
hermetic(const char *dir)
{
    char             path[1200];
    char             err[2048];
    tg_config       *cfg = NULL;
    pdp_bundle      *b   = NULL;
    pdp_bundle_tests t;
    int              passed = -1;

    snprintf(path, sizeof(path), "%s/tollgate.json", dir);
    if (tg_config_load(&cfg, path, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "\n%s\n", err);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/bundle", dir);
    if (pdp_bundle_load(&b, path, cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "\n%s\n", err);
        tg_config_destroy(cfg);
        return -1;
    }
    pdp_bundle_tests_init(&t);
    pdp_bundle_tests_hermetic(b, cfg, path, &t, NULL);
    if (t.failed == 0 && t.malformed == 0 && t.errors == 0) {
        passed = t.passed;
    } else if (t.messages.len > 0) {
        fprintf(stderr, "\n%.*s\n", (int)t.messages.len, t.messages.data);
    }
    pdp_bundle_tests_fini(&t);
    pdp_bundle_unref(b);
    tg_config_destroy(cfg);
    return passed;
}

static void
test_pricing(void)
{
    char         tdir[600], cwd[1024], want[1200], real[1024];
    run          r;
    const char  *dir, *msg;
    cJSON       *cfg, *pol, *price;
    const cJSON *b;

    /* tg_unit_tmpdir's buffer is reused by outdir: keep a copy */
    snprintf(tdir, sizeof(tdir), "%s", tg_unit_tmpdir("ltpt"));
    /* Without --pricing: the models nothing prices are named, with what
     * it costs and what to do; no pdp.pricing_file. */
    dir = import_priced(NULL, &r);
    msg = finding_msg(r.out, "pricing", "approximated");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, ": llama3-local, qwen-local, mixtral, router-auto."));
    CU_ASSERT_PTR_NULL(strstr(msg, "gpt-4o-mini"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "costed at $0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "403 model_unpriced"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--pricing policies/pricing.json"));
    cfg = slurp_json(dir, "tollgate.json");
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(cfg, "pdp"));
    CU_ASSERT_PTR_NULL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "pdp"), "pricing_file"));
    cJSON_Delete(cfg);
    run_free(&r);

    /* --pricing as a relative path: mixtral priced by its model name,
     * llama3-local by its upstream_model, as the PDP prices them. */
    put(tdir, "table.json",
        "{\"currency\": \"USD\", \"models\": {\n"
        "  \"mixtral\": {\"input_per_mtok\": 0.6, \"output_per_mtok\": 0.6},\n"
        "  \"meta-llama/Llama-3.1-8B-Instruct\":\n"
        "    {\"input_per_mtok\": 0.1, \"output_per_mtok\": 0.2}}}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_EQUAL_FATAL(chdir(tdir), 0);
    dir = outdir("ltp");
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("budgets.yaml"), "--out",
                (char *)dir, "--pricing", "table.json", "--format", "json",
                NULL);
    CU_ASSERT_EQUAL_FATAL(chdir(cwd), 0);
    CU_ASSERT_EQUAL_FATAL(r.ec, 0);
    msg = finding_msg(r.out, "pricing", "approximated");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ": qwen-local, router-auto."));
    CU_ASSERT_PTR_NULL(strstr(msg, "mixtral"));
    CU_ASSERT_PTR_NULL(strstr(msg, "llama3-local"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(tdir, real));
    snprintf(want, sizeof(want), "%s/table.json", real);
    cfg = slurp_json(dir, "tollgate.json");
    CU_ASSERT_STRING_EQUAL(str(cJSON_GetObjectItem(cfg, "pdp"), "pricing_file"),
                           want);
    /* the budget counts what the table prices; pricing.json (what the
     * bundle's tests, run by `serve` too, price budgets with) has the
     * config's prices and the table's, under the table's names */
    pol = slurp_json(dir, "bundle/imported.policy.json");
    b   = cJSON_GetArrayItem(cJSON_GetObjectItem(pol, "rules"), 0);
    CU_ASSERT_STRING_EQUAL(str(b, "id"), "litellm-budget");
    CU_ASSERT_STRING_EQUAL(raw(b, "when"),
                           "{\"in\":[\"request.model\",[\"gpt-4o-mini\","
                           "\"mistral-large\",\"llama3-local\","
                           "\"deepseek-chat\",\"mixtral\"]]}");
    price = slurp_json(dir, "bundle/pricing.json");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(cJSON_GetObjectItem(price, "models"),
                                "deepseek-chat"),
            "input_per_mtok"),
        "0.00027");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(cJSON_GetObjectItem(price, "models"),
                                "mixtral"),
            "output_per_mtok"),
        "0.6");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(cJSON_GetObjectItem(price, "models"),
                                "meta-llama/Llama-3.1-8B-Instruct"),
            "output_per_mtok"),
        "0.2");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(cJSON_GetObjectItem(price, "models"),
                                           "qwen-local"));
    CU_ASSERT_EQUAL(hermetic(dir), 7);
    cJSON_Delete(cfg);
    cJSON_Delete(pol);
    cJSON_Delete(price);
    run_free(&r);

    /* A table that prices every model: no finding, the rule counts all. */
    dir = import_priced(put(tdir, "all.json",
                            "{\"currency\": \"USD\", \"models\": {\n"
                            "  \"mixtral\": {\"input_per_mtok\": 0.6, "
                            "\"output_per_mtok\": 1},\n"
                            "  \"llama3-local\": {\"input_per_mtok\": 0, "
                            "\"output_per_mtok\": 0},\n"
                            "  \"qwen2.5:14b\": {\"input_per_mtok\": 0, "
                            "\"output_per_mtok\": 0},\n"
                            "  \"openrouter/auto\": {\"input_per_mtok\": 3, "
                            "\"output_per_mtok\": 15}"
                            "}}\n"),
                        &r);
    CU_ASSERT_PTR_NULL(finding_msg(r.out, "pricing", "approximated"));
    CU_ASSERT_PTR_NOT_NULL(finding_msg(r.out, "--pricing", "mapped"));
    pol = slurp_json(dir, "bundle/imported.policy.json");
    b   = cJSON_GetArrayItem(cJSON_GetObjectItem(pol, "rules"), 0);
    CU_ASSERT_STRING_EQUAL(str(b, "id"), "litellm-budget");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(b, "when"));
    CU_ASSERT_EQUAL(hermetic(dir), 7);
    cJSON_Delete(pol);
    run_free(&r);

    /* A table the PDP would refuse is refused now, with its line. */
    dir = outdir("ltp");
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("budgets.yaml"), "--out",
                (char *)dir, "--pricing",
                (char *)put(tdir, "bad.json",
                            "{\n  \"currency\": \"USD\",\n  \"models\": {\n"
                            "    \"x\": {\"input_per_mtok\": \"cheap\"}\n"
                            "  }\n}\n"),
                NULL);
    CU_ASSERT_EQUAL(r.ec, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "--pricing: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "bad.json:4:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "policies/pricing.json"));
    CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0); /* nothing written */
    run_free(&r);
}

/* ---- findings ---------------------------------------------------------- */

/* has_line: the text report has a line "LINE  KIND  PATH: ..." */
static bool
has_line(const char *report, int line, const char *kind, const char *path)
{
    char want[256];

    snprintf(want, sizeof(want), "%5d  %-13s  %s: ", line, kind, path);
    if (strstr(report, want) == NULL) {
        fprintf(stderr, "\nmissing: \"%s\"\n", want);
        return false;
    }
    return true;
}

static void
test_findings(void)
{
    run         r;
    const char *dir = import_ok("loadbalance.yaml", NULL, &r);
    char       *txt = slurp(dir, "findings.txt");

    CU_ASSERT_PTR_NOT_NULL_FATAL(txt);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, txt)); /* printed = written */
    CU_ASSERT(has_line(txt, 8, "mapped", "model_list[0].model_name"));
    CU_ASSERT(
        has_line(txt, 13, "approximated", "model_list[0].litellm_params.rpm"));
    CU_ASSERT(has_line(txt, 10, "mapped",
                       "model_list[0].litellm_params.api_key")); /* via << */
    CU_ASSERT(has_line(txt, 41, "not supported",
                       "model_list[2].model_info.max_input_tokens"));
    CU_ASSERT(
        has_line(txt, 53, "approximated", "router_settings.routing_strategy"));
    CU_ASSERT(has_line(txt, 69, "not supported", "router_settings.redis_host"));
    CU_ASSERT(
        has_line(txt, 79, "not supported", "litellm_settings.drop_params"));
    CU_ASSERT(has_line(txt, 3, "mapped", "x-azure-common"));
    free(txt);
    run_free(&r);

    /* JSON: the same findings with kinds and a summary */
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("refused.yaml"),
                "--dry-run", "--format", "json", NULL);
    CU_ASSERT_EQUAL(r.ec, 0);
    {
        cJSON       *j      = cJSON_Parse(r.out);
        const cJSON *sum    = cJSON_GetObjectItem(j, "summary");
        bool         colour = false, vertex = false;
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(j, "written")));
        CU_ASSERT(cJSON_GetObjectItem(sum, "not_supported")->valueint >= 15);
        for (const cJSON *f = cJSON_GetObjectItem(j, "findings")->child;
             f != NULL; f   = f->next) {
            colour = colour ||
                     (strcmp(str(f, "path"), "model_list[6].colour") == 0 &&
                      strcmp(str(f, "kind"), "not supported") == 0 &&
                      cJSON_GetObjectItem(f, "line")->valueint == 42);
            vertex =
                vertex || (strcmp(str(f, "path"),
                                  "model_list[0].litellm_params.model") == 0 &&
                           strstr(str(f, "message"), "vertex_ai") != NULL);
        }
        CU_ASSERT(colour);
        CU_ASSERT(vertex);
        cJSON_Delete(j);
    }
    run_free(&r);
}

/* A literal key, a master key, a database URL and environment values are
 * never copied nor printed; the deployment reads a variable instead. */
static void
test_literal_secret(void)
{
    static const char *const secrets[] = {"LITERALSECRET",
                                          "sk-1234-proxy-master",
                                          "dbpassword9090",
                                          "sk-lf-very-secret-value",
                                          "88dc28d0f030c55ed4ab",
                                          "Xy9Q",
                                          NULL};
    run                      r;
    const char              *dir = import_ok("refused.yaml", NULL, &r);
    char                    *cfg = slurp(dir, "tollgate.json");
    char                    *txt = slurp(dir, "findings.txt");
    cJSON                   *j   = cJSON_Parse(cfg);
    const cJSON *d = by_id(cJSON_GetObjectItem(j, "deployments"), "gpt-4o-1");
    run          r2;
    const char  *dir2 = import_ok("budgets.yaml", "keys.json", &r2);
    char        *txt2 = slurp(dir2, "findings.txt");
    char        *sh   = slurp(dir2, "keys.sh");

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(str(d, "api_key"), "${TOLLGATE_KEY_GPT_4O_1}");
    CU_ASSERT(has_line(txt, 23, "not supported",
                       "model_list[3].litellm_params.api_key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "literal secret"));
    for (size_t i = 0; secrets[i] != NULL; i++) {
        const char *texts[] = {r.out,  r.err,  cfg,  txt,
                               r2.out, r2.err, txt2, sh};
        for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
            if (texts[k] != NULL && strstr(texts[k], secrets[i]) != NULL) {
                fprintf(stderr, "\nsecret %s shown in output %zu\n", secrets[i],
                        k);
                CU_FAIL("a secret was copied or printed");
            }
        }
    }
    free(cfg);
    free(txt);
    free(txt2);
    free(sh);
    cJSON_Delete(j);
    run_free(&r);
    run_free(&r2);
}

/* ---- refusals ---------------------------------------------------------- */

static void
test_bad_input(void)
{
    static const struct {
        const char *text, *says;
    } cases[] = {
        {"model_list:\n  - model_name: a\n    litellm_params: {model: x\n",
         "bad.yaml:4:1: "},
        {"model_list:\n\t- model_name: a\n", "bad.yaml:2:1: "},
        {"general_settings: {}\n", "bad.yaml:1:1: model_list: expected"},
        {"model_list:\n  - model_name: a\n    litellm_params: {model: "
         "openai/x}\n  - litellm_params:\n      model: openai/x\n",
         "bad.yaml:4:5: model_list[1]: expected a mapping with model_name"},
        {"model_list:\n  - model_name: a\n    litellm_params:\n      api_key: "
         "x\n",
         "bad.yaml:3:5: model_list[0].litellm_params: expected a mapping with "
         "model"},
        {"model_list:\n  - model_name: a\n    litellm_params: {model: "
         "openai/x}\nrouter_settings: [1]\n",
         "bad.yaml:4:1: router_settings: expected a mapping"},
        {"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
         "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
         "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
         "nodes"},
        {"model_list:\n  - model_name: a\n    litellm_params: {model: "
         "vertex_ai/x}\n",
         "no deployment of model_list could be imported"},
    };
    const char *tmp = tg_unit_tmpdir("ltbad");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = tg_unit_write(tmp, "bad.yaml", cases[i].text);
        char        rel[1024];
        run         r;
        snprintf(rel, sizeof(rel), "%s", path);
        r = run_cmd(pdp_import_litellm_cli, rel, "--dry-run", NULL);
        if (r.ec != 2 || strstr(r.err, cases[i].says) == NULL) {
            fprintf(stderr, "\ncase %zu: ec %d, err %s\n", i, r.ec, r.err);
        }
        CU_ASSERT_EQUAL(r.ec, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.err, cases[i].says));
        run_free(&r);
    }
}

static void
test_outdir(void)
{
    const char *dir = outdir("ltdir");
    struct stat st;
    run         r;

    /* --dry-run writes nothing */
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("basic.yaml"), "--out",
                (char *)dir, "--dry-run", NULL);
    CU_ASSERT_EQUAL(r.ec, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "nothing was written"));
    CU_ASSERT_NOT_EQUAL(stat(dir, &st), 0);
    run_free(&r);
    /* the first import writes, the second is refused and changes nothing */
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("basic.yaml"), "--out",
                (char *)dir, NULL);
    CU_ASSERT_EQUAL(r.ec, 0);
    run_free(&r);
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("budgets.yaml"), "--out",
                (char *)dir, NULL);
    CU_ASSERT_EQUAL(r.ec, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "not empty"));
    run_free(&r);
    {
        char *cfg = slurp(dir, "tollgate.json");
        CU_ASSERT_PTR_NULL(strstr(cfg, "mistral")); /* still basic's */
        CU_ASSERT_PTR_NOT_NULL(strstr(cfg, "\"log_format\":\t\"json\""));
        free(cfg);
    }
    /* usage errors */
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("basic.yaml"), NULL);
    CU_ASSERT_EQUAL(r.ec, 2);
    run_free(&r);
    r = run_cmd(pdp_import_litellm_cli, (char *)corpus("basic.yaml"),
                "--dry-run", "--bogus", NULL);
    CU_ASSERT_EQUAL(r.ec, 2);
    run_free(&r);
    r = run_cmd(pdp_import_litellm_cli, "/nonexistent.yaml", "--dry-run", NULL);
    CU_ASSERT_EQUAL(r.ec, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "/nonexistent.yaml: cannot read"));
    run_free(&r);
}

/* ---- keys -------------------------------------------------------------- */

static void
test_keys(void)
{
    run         r;
    const char *dir = import_ok("mock.yaml", "keys.json", &r);
    char       *sh  = slurp(dir, "keys.sh");
    char       *txt = slurp(dir, "findings.txt");
    struct stat st;
    char        path[700];

    CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
    snprintf(path, sizeof(path), "%s/keys.sh", dir);
    CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0100) != 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "tenants set -- 'platform'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "tenants set -- 'research'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "tenants set -- 'default'"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(sh, "keys create --tenant 'platform' --name 'ci-bot' --user "
                   "'ana@example.com'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--models 'team-chat','chat'"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(sh, "--limit-usd 20.000000 --window monthly --thresholds 80"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--rpm 30"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--tpm 100000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--concurrent 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--label 'env'='ci'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--window rolling:168h"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sh, "--expires 2099-01-01T00:00:00Z"));
    /* not recreated: unknown models only, expired, blocked */
    CU_ASSERT_PTR_NULL(strstr(sh, "old-intern"));
    CU_ASSERT_PTR_NULL(strstr(sh, "'expired'"));
    CU_ASSERT_PTR_NULL(strstr(sh, "blocked-one"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "keys.json#keys[2].models"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "expired already"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "keys.json#keys[5].budget_duration"));
    free(sh);
    free(txt);
    run_free(&r);

    /* an export of hashes only is refused with its place */
    {
        const char *tmp = tg_unit_tmpdir("ltkeys");
        char        kp[700];
        snprintf(kp, sizeof(kp), "%s",
                 tg_unit_write(tmp, "k.json", "{\"keys\": [\"88dc28d0\"]}"));
        r = run_cmd(pdp_import_litellm_cli, (char *)corpus("mock.yaml"),
                    "--dry-run", "--keys", kp, NULL);
        CU_ASSERT_EQUAL(r.ec, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "k.json:1:11: a key is a hash"));
        CU_ASSERT_PTR_NULL(strstr(r.err, "88dc28d0"));
        run_free(&r);
    }
}

/* ---- export ------------------------------------------------------------ */

static void
test_export_roundtrip(void)
{
    run          r;
    const char  *dir = import_ok("mock.yaml", NULL, &r);
    const char  *out = outdir("ltexp");
    char         cfgp[700];
    char        *yaml;
    tg_yaml_doc *doc = NULL;
    char         err[256];
    const cJSON *ml, *e0, *rs;

    snprintf(cfgp, sizeof(cfgp), "%s/tollgate.json", dir);
    run_free(&r);
    r = run_cmd(pdp_export_litellm_cli, "--to", "litellm", "--config", cfgp,
                "--out", (char *)out, NULL);
    if (r.ec != 0) {
        fprintf(stderr, "\nexport: %s\n", r.err);
    }
    CU_ASSERT_EQUAL_FATAL(r.ec, 0);
    yaml = slurp(out, "config.yaml");
    CU_ASSERT_PTR_NOT_NULL_FATAL(yaml);
    CU_ASSERT_EQUAL_FATAL(
        tg_yaml_load(yaml, strlen(yaml), NULL, &doc, err, sizeof(err)), TG_OK);
    ml = cJSON_GetObjectItem(tg_yaml_root(doc), "model_list");
    e0 = cJSON_GetArrayItem(ml, 0);
    rs = cJSON_GetObjectItem(tg_yaml_root(doc), "router_settings");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(ml), 5);
    CU_ASSERT_STRING_EQUAL(str(e0, "model_name"), "team-chat");
    CU_ASSERT_STRING_EQUAL(
        str(cJSON_GetObjectItem(e0, "litellm_params"), "model"),
        "openai/mock-primary");
    CU_ASSERT_STRING_EQUAL(
        str(cJSON_GetObjectItem(e0, "litellm_params"), "api_key"),
        "os.environ/TOLLGATE_MOCK_KEY");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(e0, "litellm_params"), "order"), "1");
    CU_ASSERT_STRING_EQUAL(
        raw(cJSON_GetObjectItem(e0, "model_info"), "input_cost_per_token"),
        "1e-06");
    CU_ASSERT_STRING_EQUAL(str(cJSON_GetObjectItem(e0, "model_info"), "id"),
                           "chat-primary");
    CU_ASSERT_STRING_EQUAL(raw(rs, "num_retries"), "0");
    CU_ASSERT_STRING_EQUAL(raw(rs, "cooldown_time"), "1");
    CU_ASSERT_STRING_EQUAL(raw(rs, "fallbacks"),
                           "[{\"team-chat\":[\"team-backup\"]},"
                           "{\"chat\":[\"team-backup\"]}]");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "budget"));
    tg_yaml_doc_destroy(doc);
    run_free(&r);

    /* and the exported config imports again, to the same deployments */
    {
        const char *back = outdir("ltback");
        char        yp[700];
        cJSON      *a, *b;
        snprintf(yp, sizeof(yp), "%s/config.yaml", out);
        r = run_cmd(pdp_import_litellm_cli, yp, "--out", (char *)back, NULL);
        CU_ASSERT_EQUAL_FATAL(r.ec, 0);
        a = slurp_json(dir, "tollgate.json");
        b = slurp_json(back, "tollgate.json");
        for (const cJSON *d = cJSON_GetObjectItem(a, "deployments")->child;
             d != NULL; d   = d->next) {
            const cJSON *e =
                by_id(cJSON_GetObjectItem(b, "deployments"), str(d, "id"));
            CU_ASSERT_PTR_NOT_NULL(e);
            if (e != NULL) {
                CU_ASSERT_STRING_EQUAL(str(e, "upstream_model"),
                                       str(d, "upstream_model"));
                CU_ASSERT_STRING_EQUAL(raw(e, "pricing"), raw(d, "pricing"));
            }
        }
        cJSON_Delete(a);
        cJSON_Delete(b);
        run_free(&r);
    }
    free(yaml);
}

/* Every corpus config survives import, export --to litellm and import
 * again: the same deployments (id, model, provider, upstream, weight,
 * pricing) and model groups. */
static void
test_roundtrip_corpus(void)
{
    static const char *const files[] = {"basic.yaml",   "loadbalance.yaml",
                                        "budgets.yaml", "mock.yaml",
                                        "refused.yaml", NULL};
    static const char *const keep[]  = {
         "id",      "model",       "provider", "upstream_model", "api_base",
         "api_key", "api_version", "weight",   "pricing",        NULL};

    for (size_t i = 0; files[i] != NULL; i++) {
        run         r;
        const char *dir = import_ok(files[i], NULL, &r);
        const char *exp = outdir("ltrt");
        const char *back;
        char        cfgp[700], yp[700];
        cJSON      *a, *b;
        snprintf(cfgp, sizeof(cfgp), "%s/tollgate.json", dir);
        run_free(&r);
        r = run_cmd(pdp_export_litellm_cli, "--to", "litellm", "--config", cfgp,
                    "--out", (char *)exp, NULL);
        CU_ASSERT_EQUAL_FATAL(r.ec, 0);
        run_free(&r);
        snprintf(yp, sizeof(yp), "%s/config.yaml", exp);
        back = outdir("ltrt2");
        r    = run_cmd(pdp_import_litellm_cli, yp, "--out", (char *)back, NULL);
        if (r.ec != 0) {
            fprintf(stderr, "\n%s back: %s\n", files[i], r.err);
        }
        CU_ASSERT_EQUAL_FATAL(r.ec, 0);
        a = slurp_json(dir, "tollgate.json");
        b = slurp_json(back, "tollgate.json");
        CU_ASSERT_EQUAL(
            cJSON_GetArraySize(cJSON_GetObjectItem(a, "deployments")),
            cJSON_GetArraySize(cJSON_GetObjectItem(b, "deployments")));
        for (const cJSON *d = cJSON_GetObjectItem(a, "deployments")->child;
             d != NULL; d   = d->next) {
            const cJSON *e =
                by_id(cJSON_GetObjectItem(b, "deployments"), str(d, "id"));
            CU_ASSERT_PTR_NOT_NULL(e);
            for (size_t k = 0; e != NULL && keep[k] != NULL; k++) {
                char want[256];
                snprintf(want, sizeof(want), "%s", raw(d, keep[k]));
                if (strcmp(want, raw(e, keep[k])) != 0) {
                    fprintf(stderr, "\n%s %s.%s: %s then %s\n", files[i],
                            str(d, "id"), keep[k], want, raw(e, keep[k]));
                    CU_FAIL("a deployment changed on the way back");
                }
            }
        }
        {
            char *ga =
                cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "model_groups"));
            char *gb =
                cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "model_groups"));
            if (ga == NULL || gb == NULL || strcmp(ga, gb) != 0) {
                fprintf(stderr, "\n%s groups: %s\nthen %s\n", files[i], ga, gb);
                CU_FAIL("the model groups changed on the way back");
            }
            free(ga);
            free(gb);
        }
        cJSON_Delete(a);
        cJSON_Delete(b);
        run_free(&r);
    }
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"per-token prices to per-1M exactly", test_per_mtok},
        {"budget_duration to budget windows", test_windows},
        {"model_list to deployments", test_deployments},
        {"router and litellm settings", test_router_settings},
        {"rules and generated tests", test_rules_and_tests},
        {"order, budget and pricing.json", test_order_and_budget},
        {"--pricing: unpriced models, pricing_file, budget", test_pricing},
        {"findings: kinds, lines, every field", test_findings},
        {"literal secrets never copied nor printed", test_literal_secret},
        {"bad YAML and bad configs: file:line:col, exit 2", test_bad_input},
        {"--out: dry run, non-empty refused", test_outdir},
        {"--keys: keys.sh", test_keys},
        {"export --to litellm and back", test_export_roundtrip},
        {"every corpus config: import, export, import", test_roundtrip_corpus},
        {NULL, NULL},
    };

    return tg_unit_run("pdp.migrate.litellm", cases);
}
