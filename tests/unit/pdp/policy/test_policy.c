/* test_policy.c - pdp.policy: the bundle compiler's errors (exact
 * file:line:col for every class of mistake, a bundle with one bad file is
 * refused whole), every operator, Cedar semantics (deny wins, default
 * deny/allow, audit and off modes, order independence), on_error, routes,
 * time windows across midnight and DST, traces, and the example bundles
 * under policies/ through the `test` command. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pdp_policy.h"
#include "pdp_limits.h"
#include "pdp_policy_int.h" /* compiled budget fields */
#include "pdp_policy_cli.h"
#include "tg_pricing.h"
#include "tg_json.h"
#include "tg_unit.h"

#define BUNDLE_JSON "{\"name\": \"t\", \"revision\": 1}\n"

static char       g_err[16384];
static char       g_dir[512];
static tg_config *g_cfg; /* catalog with labels, see setup() */

/* mkbundle writes name/text pairs (NULL-terminated) into a fresh
 * directory, copied into g_dir. */
static const char *
mkbundle(const char *first, ...)
{
    va_list ap;

    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("policy"));
    va_start(ap, first);
    for (const char *name = first; name != NULL;
         name             = va_arg(ap, const char *)) {
        const char *text = va_arg(ap, const char *);
        tg_unit_write(g_dir, name, text);
    }
    va_end(ap);
    return g_dir;
}

static pdp_bundle *
load(const char *dir)
{
    pdp_bundle *b = NULL;

    g_err[0] = '\0';
    if (pdp_bundle_load(&b, dir, g_cfg, g_err, sizeof(g_err)) != TG_OK) {
        return NULL;
    }
    return b;
}

/* rules1 compiles one policy file holding the given rules JSON. */
static pdp_bundle *
rules1(const char *rules)
{
    char text[16384];

    snprintf(text, sizeof(text), "{\"rules\": [%s]}\n", rules);
    return load(
        mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", text, NULL));
}

static void
attrs_of(const char *json, pdp_attrs *a)
{
    tg_json_doc *doc = NULL;
    char         err[512];

    if (tg_json_doc_parse(&doc, "input", json, strlen(json), err,
                          sizeof(err)) != TG_OK ||
        pdp_attrs_from_json(a, doc, tg_json_doc_root(doc), err, sizeof(err)) !=
            TG_OK) {
        fprintf(stderr, "bad test input %s: %s\n", json, err);
        exit(2);
    }
    tg_json_doc_destroy(doc);
}

static pdp_policy_result g_res;

static tg_verdict
eval(const pdp_bundle *b, const char *json)
{
    pdp_attrs a;

    attrs_of(json, &a);
    pdp_bundle_eval(b, &a, &g_res, NULL);
    return g_res.verdict;
}

/* matched returns "id,id" of matched rules with enforced == enf. */
static const char *
matched(bool enf)
{
    static char buf[1024];
    size_t      used = 0;

    buf[0] = '\0';
    for (uint32_t i = 0; i < g_res.n_matched; i++) {
        if (g_res.matched[i].enforced == enf) {
            used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
                                     used ? "," : "", g_res.matched[i].rule_id);
        }
    }
    return buf;
}

static const char *
targets(void)
{
    static char buf[1024];
    size_t      used = 0;

    buf[0] = '\0';
    for (uint32_t i = 0; i < g_res.n_targets; i++) {
        used +=
            (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
                             used ? "," : "", g_res.targets[i].deployment_id);
    }
    return buf;
}

/* has_line: err holds exactly this line. */
static bool
has_line(const char *line)
{
    size_t      n = strlen(line);
    const char *p = g_err;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == g_err || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) {
            return true;
        }
        p++;
    }
    fprintf(stderr, "\nexpected line:\n  %s\ngot:\n%s\n", line, g_err);
    return false;
}

static int
count_lines(const char *s)
{
    int n = s[0] != '\0';

    for (; *s != '\0'; s++) {
        n += *s == '\n' && s[1] != '\0';
    }
    return n;
}

/* ---- loading and hashing ------------------------------------------------- */

static void
test_load_and_hash(void)
{
    const char *pol = "{\"rules\": [{\"id\": \"all\", \"kind\": \"access\", "
                      "\"effect\": \"allow\"}]}\n";
    pdp_bundle *b1;
    pdp_bundle *b2;
    pdp_bundle *b3;
    char        h1[80];

    b1 = load(mkbundle("bundle.json",
                       "{\"name\": \"demo\", \"revision\": 7, "
                       "\"description\": \"x\"}",
                       "a.policy.json", pol, "x.test.json", "{\"tests\": []}",
                       NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b1);
    CU_ASSERT_STRING_EQUAL(pdp_bundle_name(b1), "demo");
    CU_ASSERT_EQUAL(pdp_bundle_revision(b1), 7);
    CU_ASSERT_EQUAL(pdp_bundle_rule_count(b1), 1);
    CU_ASSERT_EQUAL(strlen(pdp_bundle_hash(b1)), 64);
    snprintf(h1, sizeof(h1), "%s", pdp_bundle_hash(b1));
    /* Same files in another directory: same hash. */
    b2 = load(mkbundle("bundle.json",
                       "{\"name\": \"demo\", \"revision\": 7, "
                       "\"description\": \"x\"}",
                       "a.policy.json", pol, "x.test.json", "{\"tests\": []}",
                       NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    CU_ASSERT_STRING_EQUAL(pdp_bundle_hash(b2), h1);
    /* A test file is part of what was reviewed: it changes the hash. */
    b3 = load(mkbundle("bundle.json",
                       "{\"name\": \"demo\", \"revision\": 7, "
                       "\"description\": \"x\"}",
                       "a.policy.json", pol, "x.test.json", "{\"tests\": [] }",
                       NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b3);
    CU_ASSERT_STRING_NOT_EQUAL(pdp_bundle_hash(b3), h1);
    /* Renaming a file changes it too. */
    pdp_bundle_unref(b3);
    b3 = load(mkbundle("bundle.json",
                       "{\"name\": \"demo\", \"revision\": 7, "
                       "\"description\": \"x\"}",
                       "b.policy.json", pol, "x.test.json", "{\"tests\": []}",
                       NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b3);
    CU_ASSERT_STRING_NOT_EQUAL(pdp_bundle_hash(b3), h1);
    /* Reference counting: the last unref frees (ASan reports a leak or a
     * double free otherwise). */
    pdp_bundle_ref(b1);
    pdp_bundle_unref(b1);
    pdp_bundle_unref(b1);
    pdp_bundle_unref(b2);
    pdp_bundle_unref(b3);
    pdp_bundle_unref(NULL);
}

static void
test_bundle_file_errors(void)
{
    char line[2048];

    CU_ASSERT_PTR_NULL(
        load(mkbundle("a.policy.json", "{\"rules\": []}", NULL)));
    snprintf(line, sizeof(line),
             "%s/bundle.json:1:1: missing: every bundle needs bundle.json "
             "with at least {\"name\": \"...\", \"revision\": 1}",
             g_dir);
    CU_ASSERT(has_line(line));

    CU_ASSERT_PTR_NULL(
        load(mkbundle("bundle.json", BUNDLE_JSON, "notes.txt", "hello", NULL)));
    snprintf(line, sizeof(line),
             "%s/notes.txt:1:1: unknown file; expected bundle.json, "
             "*.policy.json, *.test.json, pricing.json or catalog.json",
             g_dir);
    CU_ASSERT(has_line(line));

    CU_ASSERT_PTR_NULL(load(mkbundle("bundle.json",
                                     "{\n  \"name\": \"bad name!\",\n"
                                     "  \"revision\": 0,\n"
                                     "  \"timezone\": \"Europe/Berln\",\n"
                                     "  \"defualt\": \"allow\"\n}\n",
                                     NULL)));
    snprintf(line, sizeof(line),
             "%s/bundle.json:2:3: \"name\" expects 1 to 63 of A-Z a-z 0-9 . "
             "_ -",
             g_dir);
    CU_ASSERT(has_line(line));
    snprintf(line, sizeof(line),
             "%s/bundle.json:3:3: \"revision\" expects an integer >= 1", g_dir);
    CU_ASSERT(has_line(line));
    snprintf(line, sizeof(line),
             "%s/bundle.json:5:3: unknown field \"defualt\" in bundle.json "
             "(did you mean \"default\"?)",
             g_dir);
    CU_ASSERT(has_line(line));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "bundle.json:4:3: timezone "
                                         "\"Europe/Berln\" is not a known "
                                         "IANA zone"));

    /* Editors' backup and swap files are not part of the bundle: they
     * neither refuse it nor change its hash. */
    {
        char        h[80];
        pdp_bundle *b =
            load(mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json",
                          "{\"rules\": []}", NULL));
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        snprintf(h, sizeof(h), "%s", pdp_bundle_hash(b));
        pdp_bundle_unref(b);
        tg_unit_write(g_dir, "a.policy.json~", "old");
        tg_unit_write(g_dir, "bundle.json~", "old");
        tg_unit_write(g_dir, ".#a.policy.json", "lock");
        tg_unit_write(g_dir, "a.policy.json.swp", "swap");
        tg_unit_write(g_dir, "a.policy.json.tmp", "{\"rules\": [");
        b = load(g_dir);
        if (b == NULL) {
            fprintf(stderr, "\nbackup files refused the bundle:\n%s\n", g_err);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        CU_ASSERT_STRING_EQUAL(pdp_bundle_hash(b), h);
        pdp_bundle_unref(b);
    }

    /* A policy file that is a dangling symlink is an error, not a file
     * deleted while the bundle was read: the deployment lost its target. */
    {
        char link[1024];
        mkbundle("bundle.json", BUNDLE_JSON, NULL);
        snprintf(link, sizeof(link), "%s/a.policy.json", g_dir);
        CU_ASSERT_EQUAL_FATAL(symlink("no-such-target.json", link), 0);
        CU_ASSERT_PTR_NULL(load(g_dir));
        snprintf(line, sizeof(line),
                 "%s/a.policy.json:1:1: cannot read: No such file or "
                 "directory",
                 g_dir);
        CU_ASSERT(has_line(line));
    }

    /* A syntax error in a test file refuses the bundle too. */
    CU_ASSERT_PTR_NULL(load(mkbundle("bundle.json", BUNDLE_JSON, "x.test.json",
                                     "{\"tests\": [}", NULL)));
    snprintf(line, sizeof(line), "%s/x.test.json:1:", g_dir);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, line));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "invalid JSON"));
}

/* A file deleted while the bundle is being read (an editor's or a
 * deployment's rename-and-delete) is a file the bundle no longer has, not
 * an error: nothing was wrong with the bundle. */
static atomic_bool g_churn_stop;

static void *
churn_main(void *arg)
{
    const char *dir = arg;
    char        tmp[600];
    char        dst[600];

    snprintf(tmp, sizeof(tmp), "%s/.x.policy.json.new", dir);
    snprintf(dst, sizeof(dst), "%s/x.policy.json", dir);
    while (!atomic_load(&g_churn_stop)) {
        FILE *f = fopen(tmp, "w");
        if (f != NULL) {
            fputs("{\"rules\": []}", f);
            fclose(f);
            rename(tmp, dst); /* complete files only */
        }
        unlink(dst);
    }
    return NULL;
}

static void
test_file_deleted_while_loading(void)
{
    char      dir[512];
    pthread_t th;
    int       bad = 0;

    snprintf(dir, sizeof(dir), "%s",
             mkbundle("bundle.json", BUNDLE_JSON, NULL));
    atomic_store(&g_churn_stop, false);
    pthread_create(&th, NULL, churn_main, dir);
    for (int i = 0; i < 400; i++) {
        pdp_bundle *b = load(dir);
        if (b == NULL && bad++ == 0) {
            fprintf(stderr, "\nload %d failed:\n%s\n", i, g_err);
        }
        pdp_bundle_unref(b);
    }
    atomic_store(&g_churn_stop, true);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(bad, 0);
}

/* Every class of mistake, each at its exact position, all in one run. */
static void
test_error_positions(void)
{
    const char *pol =
        "{\n"
        "  \"rules\": [\n"
        "    {\n"
        "      \"id\": \"r1\",\n"
        "      \"kind\": \"access\",\n"
        "      \"effect\": \"allow\",\n"
        "      \"efect\": \"deny\"\n" /* 7 */
        "    },\n"
        "    {\n"
        "      \"id\": \"r2\",\n"
        "      \"kind\": \"access\",\n"
        "      \"effect\": \"deny\",\n"
        "      \"when\": {\"equals\": [\"tenant.tier\", \"free\"]}\n" /* 13 */
        "    },\n"
        "    {\n"
        "      \"id\": \"r3\",\n"
        "      \"kind\": \"access\",\n"
        "      \"effect\": \"deny\",\n"
        "      \"when\": {\"eq\": [\"request.max_tokens\", \"100\"]}\n" /* 19 */
        "    },\n"
        "    {\n"
        "      \"id\": \"r4\",\n"
        "      \"kind\": \"access\",\n"
        "      \"effect\": \"deny\",\n"
        "      \"when\": {\"eq\": [\"request.modle\", \"x\"]}\n" /* 25 */
        "    },\n"
        "    {\n"
        "      \"id\": \"r1\",\n" /* 28: duplicate */
        "      \"kind\": \"access\",\n"
        "      \"effect\": \"allow\"\n"
        "    },\n"
        "    {\n"
        "      \"id\": \"r6\",\n"
        "      \"kind\": \"guardrail\",\n" /* 34 */
        "      \"detectors\": [\"pii.crad\"]\n"
        "    },\n"
        "    {\n"
        "      \"id\": \"r7\",\n"
        "      \"kind\": \"route\",\n"
        "      \"deployments\": [\"eu-mini\", \"eu-minj\"]\n" /* 40 */
        "    },\n"
        "    {\n"
        "      \"id\": \"r8\",\n"
        "      \"kind\": \"access\",\n"
        "      \"effect\": \"deny\",\n"
        "      \"when\": {\"lt\": [\"request.model\", 3]}\n" /* 46 */
        "    }\n"
        "  ]\n"
        "}\n";
    char line[2048];

    CU_ASSERT_PTR_NULL(
        load(mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", pol, NULL)));
#define LINE(...)                                                              \
    do {                                                                       \
        char tail[768];                                                        \
        snprintf(tail, sizeof(tail), __VA_ARGS__);                             \
        snprintf(line, sizeof(line), "%s/a.policy.json:%s", g_dir, tail);      \
        CU_ASSERT(has_line(line));                                             \
    } while (0)
    LINE("7:7: rule r1: unknown field \"efect\" in an access rule (did you "
         "mean \"effect\"?)");
    LINE("13:16: rule r2: unknown operator \"equals\" (did you mean "
         "\"eq\"?)");
    LINE("19:45: rule r3: wrong argument type for eq: request.max_tokens is "
         "a number, got a string");
    LINE("25:23: rule r4: unknown attribute path \"request.modle\" (did you "
         "mean \"request.model\"?)");
    LINE("28:7: rule r1: duplicate rule id; it is already used at "
         "%s/a.policy.json:4:7",
         g_dir);
    LINE("32:5: rule r6: missing required field \"action\" (\"block\", "
         "\"redact\" or \"audit\")");
    LINE("40:34: rule r7: unknown deployment id \"eu-minj\" (did you mean "
         "\"eu-mini\"?)");
    LINE("46:23: rule r8: lt compares numbers; request.model is a string "
         "(use eq, ne, in, prefix, suffix, contains or glob)");
#undef LINE
    CU_ASSERT_EQUAL(count_lines(g_err), 8);
}

static void
test_nesting_too_deep(void)
{
    char        when[1024] = "";
    char        rule[1200];
    char        line[2048];
    size_t      used = 0;
    const char *pre  = "{\"rules\": [{\"id\": \"deep\", \"kind\": \"access\", "
                       "\"effect\": \"allow\", \"when\": ";

    /* 32 levels compile ... */
    for (int i = 0; i < 31; i++) {
        used +=
            (size_t)snprintf(when + used, sizeof(when) - used, "{\"not\": ");
    }
    snprintf(when + used, sizeof(when) - used, "true%*s", 31, "");
    memset(when + used + 4, '}', 31);
    snprintf(rule, sizeof(rule), "%s%s}]}", pre, when);
    {
        pdp_bundle *b = load(
            mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", rule, NULL));
        CU_ASSERT_PTR_NOT_NULL(b);
        pdp_bundle_unref(b);
    }
    /* ... 33 do not; the error points at the 33rd operator. */
    used = 0;
    for (int i = 0; i < 33; i++) {
        used +=
            (size_t)snprintf(when + used, sizeof(when) - used, "{\"not\": ");
    }
    snprintf(when + used, sizeof(when) - used, "true%*s", 33, "");
    memset(when + used + 4, '}', 33);
    snprintf(rule, sizeof(rule), "%s%s}]}", pre, when);
    CU_ASSERT_PTR_NULL(load(
        mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", rule, NULL)));
    snprintf(line, sizeof(line),
             "%s/a.policy.json:1:%zu: rule deep: conditions are nested too "
             "deep (more than 32 levels)",
             g_dir, strlen(pre) + 32 * strlen("{\"not\": ") + 2);
    CU_ASSERT(has_line(line));
    CU_ASSERT_EQUAL(count_lines(g_err), 1);
}

static void
test_bundle_too_large(void)
{
    size_t n   = (4u << 20) + 16;
    char  *big = malloc(n + 32);
    char   line[1024];

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', n);
    memcpy(big, "{\"tests\": []", 12);
    memcpy(big + n - 2, "}\n", 3);
    CU_ASSERT_PTR_NULL(
        load(mkbundle("bundle.json", BUNDLE_JSON, "big.test.json", big, NULL)));
    snprintf(line, sizeof(line),
             "%s/big.test.json:1:1: bundle too large: its files add up to "
             "more than 4194304 bytes (4 MiB)",
             g_dir);
    CU_ASSERT(has_line(line));
    free(big);
}

static void
test_limits(void)
{
    size_t cap  = 300000;
    char  *text = malloc(cap);
    size_t used;
    char   line[2048];

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    /* 10001 values in one `in` set. */
    used = (size_t)snprintf(text, cap,
                            "{\"rules\": [{\"id\": \"big\", \"kind\": "
                            "\"access\", \"effect\": \"allow\", \"when\": "
                            "{\"in\": [\"request.model\", [");
    for (int i = 0; i <= 10000; i++) {
        used += (size_t)snprintf(text + used, cap - used, "%s\"m%d\"",
                                 i ? "," : "", i);
    }
    snprintf(text + used, cap - used, "]]}}]}");
    CU_ASSERT_PTR_NULL(load(
        mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", text, NULL)));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "rule big: in: 10001 values; at "
                                         "most 10000 are allowed in one "
                                         "set"));
    /* 2001 rules. */
    used = (size_t)snprintf(text, cap, "{\"rules\": [");
    for (int i = 0; i <= 2000; i++) {
        used += (size_t)snprintf(text + used, cap - used,
                                 "%s\n{\"id\": \"r%d\", \"kind\": \"audit\"}",
                                 i ? "," : "", i);
    }
    snprintf(text + used, cap - used, "]}");
    CU_ASSERT_PTR_NULL(load(
        mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", text, NULL)));
    snprintf(line, sizeof(line),
             "%s/a.policy.json:2002:1: rule r2000: the bundle has more than "
             "2000 rules",
             g_dir);
    CU_ASSERT(has_line(line));
    free(text);
}

/* One bad file: nothing is served, not even the good file's rules. */
static void
test_one_bad_file_refuses_bundle(void)
{
    pdp_bundle *b = load(mkbundle(
        "bundle.json", BUNDLE_JSON, "a.policy.json",
        "{\"rules\": [{\"id\": \"ok\", \"kind\": \"access\", \"effect\": "
        "\"allow\"}]}",
        "b.policy.json",
        "{\"rules\": [{\"id\": \"bad\", \"kind\": \"access\", \"effect\": "
        "\"allow\", \"when\": {\"eq\": [\"tenant.tierr\", \"x\"]}}]}",
        NULL));

    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "b.policy.json:1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "did you mean \"tenant.tier\""));
    CU_ASSERT_EQUAL(count_lines(g_err), 1);
}

static void
test_type_and_domain_errors(void)
{
    static const struct {
        const char *when;
        const char *msg;
    } cases[] = {
        {"{\"eq\": [\"request.stream\", \"yes\"]}",
         "wrong argument type for eq: request.stream is true or false, got a "
         "string"},
        {"{\"in\": [\"request.model\", [\"a\", 3]]}",
         "wrong argument type for in: request.model is a string, got a "
         "number"},
        {"{\"in\": [\"request.model\", \"gpt-4o\"]}",
         "wrong argument type for in: expected a list of values"},
        {"{\"glob\": [\"request.max_tokens\", \"1*\"]}",
         "glob works on strings; request.max_tokens is a number"},
        {"{\"cidr\": [\"request.model\", \"10.0.0.0/8\"]}",
         "cidr works on IP addresses (request.client_ip); request.model is "
         "not one"},
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/33\"]}",
         "\"10.0.0.0/33\" is not a CIDR"},
        {"{\"eq\": [\"request.endpoint\", \"chats\"]}",
         "request.endpoint is one of chat, completions, embeddings, messages "
         "or models; \"chats\" can never match"},
        {"{\"eq\": [\"time.weekday\", \"monday\"]}",
         "time.weekday is one of mon, tue, wed, thu, fri, sat or sun; "
         "\"monday\" can never match"},
        {"{\"time_window\": {\"from\": \"9:00\", \"to\": \"17:00\"}}",
         "time_window.from expects a time \"HH:MM\" from 00:00 to 23:59, got "
         "\"9:00\""},
        {"{\"time_window\": {\"days\": [\"mon\", \"fry\"], \"from\": "
         "\"09:00\", \"to\": \"17:00\"}}",
         "day \"fry\" is not valid (did you mean \"fri\"?)"},
        {"{\"eq\": [\"tenant.labels\", \"x\"]}",
         "attribute path \"tenant.labels\" needs a key after "
         "\"tenant.labels.\""},
        {"{\"eq\": [\"tenant.tier\"]}",
         "eq expects [ATTRIBUTE, VALUE], e.g. {\"eq\": [\"tenant.tier\", "
         "\"free\"]}; got a list of another length"},
        {"{\"all\": [true], \"any\": [false]}",
         "a condition is true, false or an object with exactly one operator"},
        {"\"tenant.tier\"", "a condition is true, false or an object"},
        {"{\"exists\": \"tenant.lables.region\"}",
         "unknown attribute path \"tenant.lables.region\" (did you mean "
         "\"tenant.labels.region\"?)"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char rule[1024];
        snprintf(rule, sizeof(rule),
                 "{\"id\": \"x\", \"kind\": \"access\", \"effect\": "
                 "\"allow\", \"when\": %s}",
                 cases[i].when);
        CU_ASSERT_PTR_NULL(rules1(rule));
        if (strstr(g_err, cases[i].msg) == NULL) {
            fprintf(stderr, "\ncase %zu: expected \"%s\" in:\n%s\n", i,
                    cases[i].msg, g_err);
            CU_FAIL("message");
        }
    }
}

static void
test_rule_field_errors(void)
{
    static const struct {
        const char *rule;
        const char *msg;
    } cases[] = {
        {"{\"kind\": \"access\", \"effect\": \"allow\"}",
         "rules[0]: missing required field \"id\""},
        {"{\"id\": \"a b\", \"kind\": \"access\", \"effect\": \"allow\"}",
         "rule id \"a b\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"acess\", \"effect\": \"allow\"}",
         "rule x: rule kind \"acess\" is not valid (did you mean "
         "\"access\"?)"},
        {"{\"id\": \"x\", \"kind\": \"access\"}",
         "rule x: missing required field \"effect\""},
        {"{\"id\": \"x\", \"kind\": \"access\", \"effect\": \"allow\", "
         "\"mode\": \"dry-run\"}",
         "rule x: mode \"dry-run\" is not valid; expected enforce, audit or "
         "off"},
        {"{\"id\": \"x\", \"kind\": \"access\", \"effect\": \"deny\", "
         "\"status\": 200}",
         "\"status\" expects an HTTP status from 400 to 599"},
        {"{\"id\": \"x\", \"kind\": \"access\", \"effect\": \"allow\", "
         "\"status\": 403}",
         "\"status\" applies only to \"effect\": \"deny\""},
        {"{\"id\": \"x\", \"kind\": \"audit\", \"capture\": \"all\"}",
         "capture \"all\" is not valid; expected none, metadata or full"},
        {"{\"id\": \"x\", \"kind\": \"route\"}",
         "a route rule needs \"deployments\", \"labels\" or \"fallbacks\""},
        {"{\"id\": \"x\", \"kind\": \"route\", \"labels\": {\"region\": "
         "\"mars\"}}",
         "no deployment in the catalog has these labels"},
        {"{\"id\": \"x\", \"kind\": \"route\", \"fallbacks\": [\"gpt-5\"]}",
         "fallback model \"gpt-5\" has no deployment in the config's "
         "deployments"},
        {"{\"id\": \"x\", \"kind\": \"route\", \"deployments\": [\"eu-mini\"],"
         " \"strategy\": \"fastest\"}",
         "strategy \"fastest\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"guardrail\", \"action\": \"block\"}",
         "rule x: a guardrail rule needs something to look for"},
        {"{\"id\": \"x\", \"kind\": \"guardrail\", \"action\": \"block\", "
         "\"detectors\": [\"pii.crad\"]}",
         "rule x: unknown detector \"pii.crad\""},
        {"{\"id\": \"x\", \"kind\": \"guardrail\", \"action\": \"redact\", "
         "\"patterns\": [{\"name\": \"p\", \"regex\": \"a(b\"}]}",
         "rule x: pattern \"p\": Missing close parenthesis"},
        {"{\"id\": \"x\", \"kind\": \"guardrail\", \"action\": \"audit\", "
         "\"terms\": [\"t\"], \"effect\": \"allow\"}",
         "unknown field \"effect\" in a guardrail rule"},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"rpm\": 5}",
         "rule x: missing required field \"scope\""},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"scope\": "
         "\"tenant\"}",
         "needs at least one of \"rpm\", \"tpm\" or \"concurrent\""},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"scope\": "
         "\"org\", \"rpm\": 5}",
         "scope \"org\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"scope\": "
         "\"key\", \"rpm\": 0}",
         "a.policy.json:1:62: rule x: \"rpm\" expects a whole number from 1 "
         "to 100000000"},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"scope\": "
         "\"key\", \"tpm\": 1.5}",
         "\"tpm\" expects a whole number"},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"scope\": "
         "\"key\", \"concurrent\": 2000000}",
         "\"concurrent\" expects a whole number from 1 to 1000000"},
        {"{\"id\": \"x\", \"kind\": \"rate_limit\", \"scope\": "
         "\"key\", \"rpm\": 5, \"burst\": 2}",
         "burst"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_PTR_NULL(rules1(cases[i].rule));
        if (strstr(g_err, cases[i].msg) == NULL) {
            fprintf(stderr, "\ncase %zu: expected \"%s\" in:\n%s\n", i,
                    cases[i].msg, g_err);
            CU_FAIL("message");
        }
    }
}

static void
test_route_needs_catalog(void)
{
    pdp_bundle *b     = NULL;
    tg_config  *saved = g_cfg;

    g_cfg = NULL;
    b     = rules1("{\"id\": \"eu\", \"kind\": \"route\", \"deployments\": "
                       "[\"eu-mini\"]}");
    g_cfg = saved;
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "rule eu: route rules need the "
                                         "deployments catalog: pass "
                                         "--config"));
    /* Access rules alone need no catalog. */
    g_cfg = NULL;
    b = rules1("{\"id\": \"a\", \"kind\": \"access\", \"effect\": \"allow\"}");
    g_cfg = saved;
    CU_ASSERT_PTR_NOT_NULL(b);
    pdp_bundle_unref(b);
}

/* ---- budget rules -------------------------------------------------------- */

#define PRICES                                                                 \
    "{\"currency\": \"USD\", \"models\": {"                                    \
    "\"gpt-4o\": {\"input_per_mtok\": 2.5, \"output_per_mtok\": 10},"          \
    "\"gpt-4o-mini\": {\"input_per_mtok\": 0.15, \"output_per_mtok\": "        \
    "0.6}}}\n"

/* budget1 compiles one budget rule in a bundle with PRICES as its own
 * pricing.json (the test config sets no pdp.pricing_file). */
static pdp_bundle *
budget1(const char *rule)
{
    char text[4096];

    snprintf(text, sizeof(text), "{\"rules\": [%s]}\n", rule);
    return load(mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json", text,
                         "pricing.json", PRICES, NULL));
}

/* A budget rule compiles and is reported by the evaluator for the PDP
 * to enforce; the bundle keeps the price table it was checked against. */
static void
test_budget_enforced(void)
{
    pdp_bundle *b = budget1("{\"id\": \"cap\", \"kind\": \"budget\", "
                            "\"scope\": \"tenant\", \"window\": "
                            "\"daily\", \"limit_usd\": 1, \"when\": "
                            "{\"eq\": [\"request.model\", \"gpt-4o\"]}}");
    tg_price    p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(pdp_bundle_price(b, "gpt-4o", &p));
    CU_ASSERT(p.output > 0);
    CU_ASSERT_FALSE(pdp_bundle_price(b, "no-such-model", &p));
    pdp_bundle_unref(b);
}

static void
test_budget_compiles(void)
{
    static const struct {
        const char *limit;
        int64_t     micro;
    } lims[] = {
        {"0.1", 100000},
        {"12.345678", 12345678},
        {"1e9", 1000000000000000},
        {"1000000000", 1000000000000000},
        {"0.000001", 1},
        {"2.50E+1", 25000000},
        {"999999999.999999", 999999999999999},
    };
    char        rule[1024];
    pdp_bundle *b;

    for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
        snprintf(rule, sizeof(rule),
                 "{\"id\": \"b\", \"kind\": \"budget\", \"scope\": "
                 "\"tenant\", \"window\": \"monthly\", \"limit_usd\": %s, "
                 "\"when\": {\"in\": [\"request.model\", [\"gpt-4o\", "
                 "\"gpt-4o-mini\"]]}}",
                 lims[i].limit);
        b = budget1(rule);
        CU_ASSERT_PTR_NOT_NULL(b);
        if (b == NULL) {
            fprintf(stderr, "\n%s: %s\n", lims[i].limit, g_err);
            continue;
        }
        CU_ASSERT_EQUAL(b->rules[0].kind, PDP_KIND_BUDGET);
        CU_ASSERT_EQUAL(b->rules[0].limit_micro, lims[i].micro);
        CU_ASSERT_EQUAL(b->rules[0].window, PDP_WINDOW_MONTHLY);
        CU_ASSERT_EQUAL(b->rules[0].scope, PDP_SCOPE_TENANT);
        CU_ASSERT_FALSE(b->rules[0].clamp);
        pdp_bundle_unref(b);
    }
    b = budget1("{\"id\": \"b\", \"kind\": \"budget\", \"scope\": "
                "\"metadata.team\", \"window\": \"rolling:24h\", "
                "\"limit_usd\": 5, \"action\": \"clamp\", \"when\": "
                "{\"all\": [{\"eq\": [\"tenant.tier\", \"free\"]}, "
                "{\"eq\": [\"request.model\", \"gpt-4o\"]}]}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->rules[0].scope, PDP_SCOPE_META);
    CU_ASSERT_STRING_EQUAL(pdp_s(b, b->rules[0].meta_key), "team");
    CU_ASSERT_EQUAL(b->rules[0].window, PDP_WINDOW_ROLLING);
    CU_ASSERT_EQUAL(b->rules[0].window_h, 24);
    CU_ASSERT_TRUE(b->rules[0].clamp);
    {
        /* A matched budget rule is reported, never decides the outcome. */
        pdp_policy_result r;
        pdp_attrs         a;
        attrs_of("{\"tenant\": {\"id\": \"t1\", \"tier\": \"free\"}, "
                 "\"request\": {\"model\": \"gpt-4o\"}}",
                 &a);
        pdp_bundle_eval(b, &a, &r, NULL);
        CU_ASSERT_EQUAL(r.verdict, TG_VERDICT_DENY); /* default deny */
        CU_ASSERT_EQUAL(r.n_budget, 1);
        CU_ASSERT_EQUAL(r.budget[0].limit_micro, 5000000);
        CU_ASSERT_TRUE(r.budget[0].enforced);
        CU_ASSERT_STRING_EQUAL(r.budget[0].meta_key, "team");
    }
    pdp_bundle_unref(b);
}

static void
test_budget_errors(void)
{
    static const struct {
        const char *rule;
        const char *msg;
    } cases[] = {
        {"{\"id\": \"x\", \"kind\": \"budget\", \"window\": \"daily\", "
         "\"limit_usd\": 1}",
         "rule x: missing required field \"scope\""},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"org\", "
         "\"window\": \"daily\", \"limit_usd\": 1}",
         "scope \"org\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"metadata.\", "
         "\"window\": \"daily\", \"limit_usd\": 1}",
         "scope \"metadata.\" needs a metadata key"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"thresholds\": [80, 50]}",
         "a.policy.json:1:112: rule x: threshold 50 is not above the one "
         "before it (80)"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"thresholds\": [50, 50]}",
         "threshold 50 is not above the one before it (50)"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"thresholds\": [100]}",
         "threshold 100 is not valid; expected an integer percentage from 1 "
         "to 99"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"thresholds\": [12.5]}",
         "threshold 12.5 is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"thresholds\": 50}",
         "\"thresholds\" expects a list of percentages"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"rolling:24h\", \"limit_usd\": 1, "
         "\"thresholds\": [50]}",
         "\"thresholds\" need a calendar window"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, "
         "\"webhook\": \"ftp://h/x\"}",
         "\"webhook\" \"ftp://h/x\" is not valid; expected an http:// or "
         "https:// URL"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"webhook\": \"http://\"}",
         "\"webhook\" \"http://\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"fortnightly\", \"limit_usd\": 1}",
         "a.policy.json:1:58: rule x: window \"fortnightly\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"rolling:0h\", \"limit_usd\": 1}",
         "window \"rolling:0h\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"rolling:745h\", \"limit_usd\": 1}",
         "with N from 1 to 744"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"rolling:24\", \"limit_usd\": 1}",
         "window \"rolling:24\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": -5}",
         "a.policy.json:1:77: rule x: \"limit_usd\" -5 expects a number of "
         "USD greater than 0"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 0}",
         "\"limit_usd\" 0 expects a number of USD greater than 0"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1e10}",
         "\"limit_usd\" 1e10 is not a plausible amount of USD"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1000000000.000001}",
         "is not a plausible amount of USD"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 0.0000001}",
         "has more than 6 decimals"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": \"5\"}",
         "\"limit_usd\" expects a number of USD, got a string"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"action\": \"warn\"}",
         "action \"warn\" is not valid"},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"rpm\": 5}",
         "unknown field \"rpm\" in a budget rule"},
        /* Prices: a named model without one, and the whole catalog. */
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"when\": {\"eq\": "
         "[\"request.model\", \"o3\"]}}",
         "rule x: budget on a model with no price in "},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1}",
         "rule x: budget on every model, but a catalog model has no price "
         "in "},
        {"{\"id\": \"x\", \"kind\": \"budget\", \"scope\": \"key\", "
         "\"window\": \"daily\", \"limit_usd\": 1, \"when\": {\"any\": ["
         "{\"eq\": [\"request.model\", \"gpt-4o\"]}, {\"eq\": "
         "[\"tenant.tier\", \"free\"]}]}}",
         "pricing.json: \"small\" (add it"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_PTR_NULL(budget1(cases[i].rule));
        if (strstr(g_err, cases[i].msg) == NULL) {
            fprintf(stderr, "\ncase %zu: expected \"%s\" in:\n%s\n", i,
                    cases[i].msg, g_err);
            CU_FAIL("message");
        }
    }
    /* Priced as usage is costed: through a deployment's upstream model,
     * or by its own pricing. */
    pdp_bundle *ok = budget1("{\"id\": \"x\", \"kind\": \"budget\", "
                             "\"scope\": \"key\", \"window\": \"daily\", "
                             "\"limit_usd\": 1, \"when\": {\"in\": "
                             "[\"request.model\", [\"vendor/gpt-4o\", "
                             "\"deal\"]]}}");
    CU_ASSERT_PTR_NOT_NULL(ok);
    if (ok == NULL) {
        fprintf(stderr, "\n%s\n", g_err);
    }
    pdp_bundle_unref(ok);
    /* The model named in the error, and no table at all. */
    CU_ASSERT_PTR_NULL(budget1("{\"id\": \"x\", \"kind\": \"budget\", "
                               "\"scope\": \"key\", \"window\": \"daily\", "
                               "\"limit_usd\": 1, \"when\": {\"in\": "
                               "[\"request.model\", [\"o3\", \"gpt-4o\"]]}}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, ": \"o3\" (add it"));
    CU_ASSERT_PTR_NULL(strstr(g_err, "\"gpt-4o\" (add"));
    CU_ASSERT_PTR_NULL(
        rules1("{\"id\": \"nt\", \"kind\": \"budget\", \"scope\": \"key\", "
               "\"window\": \"daily\", \"limit_usd\": 1, \"when\": {\"eq\": "
               "[\"request.model\", \"gpt-4o\"]}}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "rule nt: a budget needs prices, "
                                         "and there is no pricing table"));
}

/* ---- operators ----------------------------------------------------------- */

/* op_case: when evaluated against input gives want (1 true, 0 false, 2
 * error), seen through a rule "t" that allows when it matches and is
 * skipped on error. */
typedef struct op_case {
    const char *when;
    const char *input;
    int         want;
} op_case;

static void
run_op_cases(const op_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char        rule[2048];
        pdp_bundle *b;
        pdp_trace  *t = pdp_trace_create();
        int         got;
        snprintf(rule, sizeof(rule),
                 "{\"id\": \"t\", \"kind\": \"access\", \"effect\": "
                 "\"allow\", \"on_error\": \"skip\", \"when\": %s},"
                 "{\"id\": \"e\", \"kind\": \"access\", \"effect\": "
                 "\"allow\", \"mode\": \"audit\", \"when\": %s}",
                 cases[i].when, cases[i].when);
        b = rules1(rule);
        if (b == NULL) {
            fprintf(stderr, "\ncase %zu (%s) does not compile:\n%s\n", i,
                    cases[i].when, g_err);
            CU_FAIL("compile");
            pdp_trace_destroy(t);
            continue;
        }
        {
            pdp_attrs a;
            attrs_of(cases[i].input, &a);
            pdp_bundle_eval(b, &a, &g_res, t);
        }
        /* t matched -> allow; errored -> e (audit, on_error deny) is an
         * audit hit while t is not matched. */
        got = g_res.verdict == TG_VERDICT_ALLOW  ? 1
              : strcmp(matched(false), "e") == 0 ? 2
                                                 : 0;
        if (got != cases[i].want) {
            fprintf(stderr, "\ncase %zu: %s on %s: want %d, got %d\n", i,
                    cases[i].when, cases[i].input, cases[i].want, got);
            pdp_trace_print(t, stderr);
            CU_FAIL("operator");
        }
        pdp_trace_destroy(t);
        pdp_bundle_unref(b);
    }
}

static void
test_operators(void)
{
    static const op_case cases[] = {
        {"true", "{}", 1},
        {"false", "{}", 0},
        /* eq / ne on strings, numbers, booleans */
        {"{\"eq\": [\"tenant.tier\", \"free\"]}",
         "{\"tenant\": {\"tier\": \"free\"}}", 1},
        {"{\"eq\": [\"tenant.tier\", \"free\"]}",
         "{\"tenant\": {\"tier\": \"freemium\"}}", 0},
        {"{\"eq\": [\"tenant.tier\", \"free\"]}", "{}", 2},
        {"{\"ne\": [\"tenant.tier\", \"free\"]}",
         "{\"tenant\": {\"tier\": \"pro\"}}", 1},
        {"{\"ne\": [\"tenant.tier\", \"free\"]}",
         "{\"tenant\": {\"tier\": \"free\"}}", 0},
        {"{\"eq\": [\"request.stream\", true]}",
         "{\"request\": {\"stream\": true}}", 1},
        {"{\"eq\": [\"request.stream\", true]}", "{}", 0},
        {"{\"eq\": [\"request.max_tokens\", 100]}",
         "{\"request\": {\"max_tokens\": 100}}", 1},
        {"{\"eq\": [\"request.endpoint\", \"embeddings\"]}",
         "{\"request\": {\"endpoint\": \"embeddings\"}}", 1},
        {"{\"eq\": [\"request.endpoint\", \"chat\"]}",
         "{\"request\": {\"endpoint\": \"embeddings\"}}", 0},
        {"{\"eq\": [\"principal.key_id\", \"key_1\"]}",
         "{\"principal\": {\"key_id\": \"key_1\"}}", 1},
        {"{\"eq\": [\"principal.tenant_id\", \"acme\"]}",
         "{\"tenant\": {\"id\": \"acme\"}}", 1},
        {"{\"eq\": [\"tenant.id\", \"acme\"]}",
         "{\"principal\": {\"tenant_id\": \"acme\"}}", 1},
        {"{\"eq\": [\"principal.user\", \"bob\"]}",
         "{\"principal\": {\"user\": \"bob\"}}", 1},
        {"{\"eq\": [\"principal.labels.team\", \"ml\"]}",
         "{\"principal\": {\"labels\": {\"team\": \"ml\"}}}", 1},
        {"{\"eq\": [\"principal.labels.team\", \"ml\"]}",
         "{\"principal\": {\"labels\": {\"other\": \"ml\"}}}", 2},
        {"{\"eq\": [\"tenant.labels.region\", \"eu\"]}",
         "{\"tenant\": {\"labels\": {\"region\": \"eu\"}}}", 1},
        /* metadata keys are header names: case-insensitive */
        {"{\"eq\": [\"request.metadata.project\", \"x\"]}",
         "{\"request\": {\"metadata\": {\"Project\": \"x\"}}}", 1},
        /* lt le gt ge */
        {"{\"lt\": [\"request.max_tokens\", 100]}",
         "{\"request\": {\"max_tokens\": 99}}", 1},
        {"{\"lt\": [\"request.max_tokens\", 100]}",
         "{\"request\": {\"max_tokens\": 100}}", 0},
        {"{\"le\": [\"request.max_tokens\", 100]}",
         "{\"request\": {\"max_tokens\": 100}}", 1},
        {"{\"gt\": [\"request.prompt_tokens\", 1000]}",
         "{\"request\": {\"prompt_tokens\": 1001}}", 1},
        {"{\"gt\": [\"request.prompt_tokens\", 1000]}",
         "{\"request\": {\"prompt_tokens\": 1000}}", 0},
        {"{\"ge\": [\"request.prompt_tokens\", 1000]}",
         "{\"request\": {\"prompt_tokens\": 1000}}", 1},
        /* max_tokens 0 is "not set": an error, not 0 */
        {"{\"lt\": [\"request.max_tokens\", 100]}", "{}", 2},
        {"{\"ge\": [\"request.prompt_tokens\", 0]}", "{}", 1},
        /* in */
        {"{\"in\": [\"request.model\", [\"gpt-4o\", \"o1\", \"o3\"]]}",
         "{\"request\": {\"model\": \"o1\"}}", 1},
        {"{\"in\": [\"request.model\", [\"gpt-4o\", \"o1\", \"o3\"]]}",
         "{\"request\": {\"model\": \"o2\"}}", 0},
        {"{\"in\": [\"request.model\", []]}",
         "{\"request\": {\"model\": \"o2\"}}", 0},
        {"{\"in\": [\"request.max_tokens\", [256, 512, 1024]]}",
         "{\"request\": {\"max_tokens\": 512}}", 1},
        {"{\"in\": [\"request.max_tokens\", [256, 512, 1024]]}",
         "{\"request\": {\"max_tokens\": 513}}", 0},
        {"{\"in\": [\"time.weekday\", [\"sat\", \"sun\"]]}",
         "{\"time\": \"2026-11-28T10:00:00Z\"}", 1}, /* a Saturday */
        /* prefix suffix contains */
        {"{\"prefix\": [\"request.model\", \"gpt-\"]}",
         "{\"request\": {\"model\": \"gpt-4o\"}}", 1},
        {"{\"prefix\": [\"request.model\", \"gpt-\"]}",
         "{\"request\": {\"model\": \"gp\"}}", 0},
        {"{\"suffix\": [\"request.model\", \"-mini\"]}",
         "{\"request\": {\"model\": \"gpt-4o-mini\"}}", 1},
        {"{\"suffix\": [\"request.model\", \"-mini\"]}",
         "{\"request\": {\"model\": \"gpt-4o\"}}", 0},
        {"{\"contains\": [\"request.model\", \"4o\"]}",
         "{\"request\": {\"model\": \"openai/gpt-4o-mini\"}}", 1},
        {"{\"contains\": [\"request.model\", \"5\"]}",
         "{\"request\": {\"model\": \"openai/gpt-4o-mini\"}}", 0},
        /* glob */
        {"{\"glob\": [\"request.model\", \"gpt-4*\"]}",
         "{\"request\": {\"model\": \"gpt-4o\"}}", 1},
        {"{\"glob\": [\"request.model\", \"gpt-4*\"]}",
         "{\"request\": {\"model\": \"gpt-3.5\"}}", 0},
        {"{\"glob\": [\"request.model\", \"*/gpt-4o\"]}",
         "{\"request\": {\"model\": \"openai/gpt-4o\"}}", 1},
        {"{\"glob\": [\"request.model\", \"*/gpt-4o\"]}",
         "{\"request\": {\"model\": \"openai/gpt-4o-mini\"}}", 0},
        {"{\"glob\": [\"request.model\", \"o?-mini\"]}",
         "{\"request\": {\"model\": \"o4-mini\"}}", 1},
        {"{\"glob\": [\"request.model\", \"o?-mini\"]}",
         "{\"request\": {\"model\": \"o-mini\"}}", 0},
        {"{\"glob\": [\"request.model\", \"*4o*mini*\"]}",
         "{\"request\": {\"model\": \"gpt-4o-mini-2024\"}}", 1},
        {"{\"glob\": [\"request.model\", \"a*b*a\"]}",
         "{\"request\": {\"model\": \"aba\"}}", 1},
        {"{\"glob\": [\"request.model\", \"a*b*a\"]}",
         "{\"request\": {\"model\": \"ab\"}}", 0},
        {"{\"glob\": [\"request.model\", \"a*a\"]}",
         "{\"request\": {\"model\": \"a\"}}", 0},
        {"{\"glob\": [\"request.model\", \"*\"]}",
         "{\"request\": {\"model\": \"anything\"}}", 1},
        {"{\"glob\": [\"request.model\", \"gpt-4o\"]}",
         "{\"request\": {\"model\": \"gpt-4o-mini\"}}", 0},
        /* cidr, IPv4 and IPv6, single and list */
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/8\"]}",
         "{\"request\": {\"client_ip\": \"10.1.2.3\"}}", 1},
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/8\"]}",
         "{\"request\": {\"client_ip\": \"11.1.2.3\"}}", 0},
        {"{\"cidr\": [\"request.client_ip\", [\"192.168.0.0/16\", "
         "\"fd00::/8\"]]}",
         "{\"request\": {\"client_ip\": \"fd12::1\"}}", 1},
        {"{\"cidr\": [\"request.client_ip\", [\"192.168.0.0/16\", "
         "\"fd00::/8\"]]}",
         "{\"request\": {\"client_ip\": \"fe80::1\"}}", 0},
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/8\"]}",
         "{\"request\": {\"client_ip\": \"::ffff:10.9.9.9\"}}", 1},
        {"{\"cidr\": [\"request.client_ip\", \"172.16.0.0/12\"]}",
         "{\"request\": {\"client_ip\": \"172.31.255.255\"}}", 1},
        {"{\"cidr\": [\"request.client_ip\", \"172.16.0.0/12\"]}",
         "{\"request\": {\"client_ip\": \"172.32.0.0\"}}", 0},
        {"{\"cidr\": [\"request.client_ip\", \"127.0.0.1\"]}",
         "{\"request\": {\"client_ip\": \"127.0.0.1\"}}", 1},
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/8\"]}",
         "{\"request\": {\"client_ip\": \"not-an-ip\"}}", 2},
        {"{\"cidr\": [\"request.client_ip\", \"10.0.0.0/8\"]}", "{}", 2},
        /* exists never errors */
        {"{\"exists\": \"tenant.labels.region\"}",
         "{\"tenant\": {\"labels\": {\"region\": \"eu\"}}}", 1},
        {"{\"exists\": \"tenant.labels.region\"}", "{}", 0},
        {"{\"exists\": \"request.max_tokens\"}", "{}", 0},
        /* all / any / not, with Cedar's left-to-right short circuit */
        {"{\"all\": [{\"exists\": \"tenant.tier\"}, {\"eq\": "
         "[\"tenant.tier\", \"free\"]}]}",
         "{}", 0},
        {"{\"all\": [{\"eq\": [\"tenant.tier\", \"free\"]}, {\"exists\": "
         "\"tenant.tier\"}]}",
         "{}", 2},
        {"{\"any\": [{\"eq\": [\"request.model\", \"a\"]}, {\"eq\": "
         "[\"tenant.tier\", \"free\"]}]}",
         "{\"request\": {\"model\": \"a\"}}", 1},
        {"{\"any\": [{\"eq\": [\"request.model\", \"b\"]}, {\"eq\": "
         "[\"tenant.tier\", \"free\"]}]}",
         "{\"request\": {\"model\": \"a\"}}", 2},
        {"{\"all\": []}", "{}", 1},
        {"{\"any\": []}", "{}", 0},
        {"{\"not\": {\"eq\": [\"tenant.tier\", \"free\"]}}",
         "{\"tenant\": {\"tier\": \"pro\"}}", 1},
        {"{\"not\": {\"eq\": [\"tenant.tier\", \"free\"]}}", "{}", 2},
        /* time attributes (bundle zone UTC here) */
        {"{\"eq\": [\"time.hour\", 10]}",
         "{\"time\": \"2026-11-28T10:59:59Z\"}", 1},
        {"{\"eq\": [\"time.minute\", 59]}",
         "{\"time\": \"2026-11-28T10:59:59Z\"}", 1},
        {"{\"eq\": [\"time.date\", \"2026-11-28\"]}",
         "{\"time\": \"2026-11-28T23:59:59Z\"}", 1},
        {"{\"eq\": [\"time.date\", \"2026-11-28\"]}",
         "{\"time\": \"2026-11-28T23:30:00-01:00\"}", 0},
        {"{\"eq\": [\"time.weekday\", \"thu\"]}",
         "{\"time\": \"1970-01-01T00:00:00Z\"}", 1},
    };

    run_op_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The case-insensitive variants: `X-Tollgate-Meta-Data_Class: Restricted`
 * must not escape a rule written for "restricted"; the exact operators
 * stay exact; only ASCII letters fold. */
static void
test_operators_icase(void)
{
#define META(v) "{\"request\": {\"metadata\": {\"data_class\": \"" v "\"}}}"
    static const op_case cases[] = {
        {"{\"eq\": [\"request.metadata.data_class\", \"restricted\"]}",
         META("Restricted"), 0},
        {"{\"ieq\": [\"request.metadata.data_class\", \"restricted\"]}",
         META("Restricted"), 1},
        {"{\"ieq\": [\"request.metadata.data_class\", \"RESTRICTED\"]}",
         META("reStricted"), 1},
        {"{\"ieq\": [\"request.metadata.data_class\", \"restricted\"]}",
         META("restricte"), 0},
        {"{\"ine\": [\"request.metadata.data_class\", \"public\"]}",
         META("PUBLIC"), 0},
        {"{\"ine\": [\"request.metadata.data_class\", \"public\"]}",
         META("Secret"), 1},
        {"{\"iin\": [\"request.metadata.data_class\", [\"Secret\", "
         "\"restricted\"]]}",
         META("RESTRICTED"), 1},
        {"{\"iin\": [\"request.metadata.data_class\", [\"Secret\", "
         "\"restricted\"]]}",
         META("secret"), 1},
        {"{\"in\": [\"request.metadata.data_class\", [\"Secret\"]]}",
         META("secret"), 0},
        {"{\"iin\": [\"request.metadata.data_class\", [\"Secret\"]]}",
         META("public"), 0},
        {"{\"iprefix\": [\"request.model\", \"GPT-\"]}",
         "{\"request\": {\"model\": \"gpt-4o\"}}", 1},
        {"{\"isuffix\": [\"request.model\", \"-MINI\"]}",
         "{\"request\": {\"model\": \"gpt-4o-Mini\"}}", 1},
        {"{\"icontains\": [\"request.metadata.data_class\", \"STRICT\"]}",
         META("Restricted"), 1},
        {"{\"contains\": [\"request.metadata.data_class\", \"STRICT\"]}",
         META("Restricted"), 0},
        {"{\"iglob\": [\"request.model\", \"GPT-4*\"]}",
         "{\"request\": {\"model\": \"gpt-4o\"}}", 1},
        {"{\"iglob\": [\"request.model\", \"claude-*\"]}",
         "{\"request\": {\"model\": \"gpt-4o\"}}", 0},
        /* weekday names fold too; absent is still an error */
        {"{\"ieq\": [\"time.weekday\", \"Sat\"]}",
         "{\"time\": \"2026-11-28T10:00:00Z\"}", 1},
        {"{\"ieq\": [\"tenant.tier\", \"free\"]}", "{}", 2},
        /* only ASCII folds: bytes above 0x7f compare exactly */
        {"{\"ieq\": [\"request.metadata.data_class\", \"\u00e9t\u00e9\"]}",
         META("\u00c9T\u00c9"), 0},
        {"{\"ieq\": [\"request.metadata.data_class\", \"\u00e9t\u00e9\"]}",
         META("\u00e9T\u00e9"), 1},
    };
#undef META

    run_op_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* Not on numbers: the message names the exact operator to use. */
    CU_ASSERT_PTR_NULL(rules1("{\"id\": \"n\", \"kind\": \"access\", "
                              "\"effect\": \"deny\", \"when\": {\"ieq\": "
                              "[\"request.max_tokens\", 5]}}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        g_err, "ieq compares strings regardless of case; request.max_tokens "
               "is a number (use eq)"));
}

/* check's warnings: what compiles but is likely a mistake, with the place
 * and what to do; a bundle without such rules has none. */
static void
test_warnings(void)
{
    pdp_bundle *b;
    const char *w;

    /* A typo in a model, in eq and in an `in` list; a model the catalog
     * serves is fine; iin compares regardless of case. */
    b = rules1("{\"id\": \"typo\", \"kind\": \"access\", \"effect\": "
               "\"deny\", \"on_error\": \"skip\", \"when\": {\"any\": ["
               "{\"eq\": [\"request.model\", \"gpt4o\"]}, "
               "{\"in\": [\"request.model\", [\"gpt-4o\", \"gpt-4o-mnii\"]]}, "
               "{\"iin\": [\"request.model\", [\"GPT-4O-MINI\"]]}, "
               "{\"eq\": [\"request.model\", \"gpt-4o:floor\"]}, "
               "{\"ne\": [\"request.model\", \"o1\"]}]}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    w = pdp_bundle_warnings(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(
        w, "rule typo: no deployment in the catalog serves model \"gpt4o\" "
           "(did you mean \"gpt-4o\"?)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(w, "model \"gpt-4o-mnii\" (did you mean "
                                     "\"gpt-4o-mini\"?)"));
    CU_ASSERT_PTR_NULL(strstr(w, "model \"gpt-4o\""));
    CU_ASSERT_PTR_NULL(strstr(w, "GPT-4O-MINI"));
    CU_ASSERT_PTR_NULL(strstr(w, "floor"));
    CU_ASSERT_PTR_NULL(strstr(w, "\"o1\"")); /* ne: not a "never holds" */
    CU_ASSERT_EQUAL(count_lines(w), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(w, ".policy.json:1:")); /* FILE:LINE:COL */
    pdp_bundle_unref(b);

    /* An attribute a request may lack, under on_error deny (the default):
     * warned once per rule; not with an exists guard or on_error skip. */
    b = rules1("{\"id\": \"meta\", \"kind\": \"access\", \"effect\": "
               "\"deny\", \"when\": {\"all\": [{\"eq\": "
               "[\"request.metadata.data_class\", \"x\"]}, {\"eq\": "
               "[\"principal.user\", \"bob\"]}]}},"
               "{\"id\": \"guarded\", \"kind\": \"access\", \"effect\": "
               "\"deny\", \"when\": {\"all\": [{\"exists\": "
               "\"request.metadata.data_class\"}, {\"eq\": "
               "[\"request.metadata.data_class\", \"x\"]}]}},"
               "{\"id\": \"skipped\", \"kind\": \"access\", \"effect\": "
               "\"deny\", \"on_error\": \"skip\", \"when\": {\"eq\": "
               "[\"tenant.labels.region\", \"eu\"]}},"
               "{\"id\": \"tier\", \"kind\": \"access\", \"effect\": "
               "\"allow\", \"when\": {\"eq\": [\"tenant.tier\", \"pro\"]}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    w = pdp_bundle_warnings(b);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(w, "rule meta: reads request.metadata.data_class, which a "
                  "request may not have; with on_error deny (the default) "
                  "every request without it is denied by this rule. Guard it "
                  "with {\"exists\": \"request.metadata.data_class\"} or set "
                  "\"on_error\": \"skip\"\n"));
    CU_ASSERT_EQUAL(count_lines(w), 1);
    pdp_bundle_unref(b);

    b = rules1("{\"id\": \"all\", \"kind\": \"access\", \"effect\": "
               "\"allow\"}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(pdp_bundle_warnings(b), "");
    pdp_bundle_unref(b);
}

/* ---- semantics ----------------------------------------------------------- */

static const char *const sem_rules[] = {
    "{\"id\": \"allow-all\", \"kind\": \"access\", \"effect\": \"allow\"}",
    "{\"id\": \"deny-free-4o\", \"kind\": \"access\", \"effect\": \"deny\", "
    "\"status\": 402, \"code\": \"upgrade_required\", \"message\": \"Upgrade "
    "to use gpt-4o.\", \"when\": {\"all\": [{\"eq\": [\"tenant.tier\", "
    "\"free\"]}, {\"glob\": [\"request.model\", \"gpt-4o*\"]}]}}",
    "{\"id\": \"b-deny-embed\", \"kind\": \"access\", \"effect\": \"deny\", "
    "\"when\": {\"eq\": [\"request.endpoint\", \"embeddings\"]}}",
    "{\"id\": \"audit-big\", \"kind\": \"access\", \"effect\": \"deny\", "
    "\"mode\": \"audit\", \"when\": {\"gt\": [\"request.max_tokens\", "
    "1000]}}",
    "{\"id\": \"old-deny\", \"kind\": \"access\", \"effect\": \"deny\", "
    "\"mode\": \"off\"}",
    "{\"id\": \"capture\", \"kind\": \"audit\", \"capture\": \"metadata\"}",
    "{\"id\": \"capture-full-eu\", \"kind\": \"audit\", \"capture\": "
    "\"full\", \"when\": {\"eq\": [\"tenant.labels.region\", \"eu\"]}, "
    "\"on_error\": \"skip\"}",
};
#define N_SEM (sizeof(sem_rules) / sizeof(sem_rules[0]))

static const char *const sem_inputs[] = {
    "{\"tenant\": {\"tier\": \"pro\"}, \"request\": {\"model\": "
    "\"gpt-4o\", \"endpoint\": \"chat\", \"max_tokens\": 10}}",
    "{\"tenant\": {\"tier\": \"free\"}, \"request\": {\"model\": "
    "\"o1\", \"endpoint\": \"chat\", \"max_tokens\": 5000}}",
    "{\"tenant\": {\"tier\": \"free\", \"labels\": {\"region\": \"eu\"}}, "
    "\"request\": {\"model\": \"gpt-4o\", \"endpoint\": \"embeddings\"}}",
    "{\"tenant\": {\"tier\": \"pro\"}, \"request\": {\"model\": \"o1\", "
    "\"endpoint\": \"chat\", \"max_tokens\": 10}}",
};
#define N_SEM_IN (sizeof(sem_inputs) / sizeof(sem_inputs[0]))

/* load_perm writes the rules in the order perm gives, split over nfiles
 * files, and compiles them. */
static pdp_bundle *
load_perm(const size_t *perm, size_t nfiles)
{
    char   files[4][8192];
    size_t used[4] = {0};
    char   dir[512];

    for (size_t f = 0; f < nfiles; f++) {
        used[f] = (size_t)snprintf(files[f], sizeof(files[f]), "{\"rules\": [");
    }
    for (size_t i = 0; i < N_SEM; i++) {
        size_t f = i % nfiles;
        used[f] += (size_t)snprintf(
            files[f] + used[f], sizeof(files[f]) - used[f], "%s%s",
            i < nfiles ? "" : ",\n", sem_rules[perm[i]]);
    }
    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("perm"));
    tg_unit_write(dir, "bundle.json", BUNDLE_JSON);
    for (size_t f = 0; f < nfiles; f++) {
        char name[32];
        snprintf(files[f] + used[f], sizeof(files[f]) - used[f], "]}\n");
        snprintf(name, sizeof(name), "%c.policy.json", (char)('z' - f));
        tg_unit_write(dir, name, files[f]);
    }
    return load(dir);
}

static void
test_cedar_semantics(void)
{
    size_t      id[N_SEM];
    pdp_bundle *b;

    for (size_t i = 0; i < N_SEM; i++) {
        id[i] = i;
    }
    b = load_perm(id, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* pro + gpt-4o: allowed by allow-all; capture metadata. */
    CU_ASSERT_EQUAL(eval(b, sem_inputs[0]), TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(matched(true), "allow-all,capture");
    CU_ASSERT_STRING_EQUAL(matched(false), "");
    CU_ASSERT_EQUAL(g_res.capture_level, 1);
    CU_ASSERT_EQUAL(g_res.n_targets, 0);
    CU_ASSERT_FALSE(g_res.route_restricted);
    /* free + o1 with max_tokens 5000: the audit deny matches but never
     * denies. */
    CU_ASSERT_EQUAL(eval(b, sem_inputs[1]), TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(matched(true), "allow-all,capture");
    CU_ASSERT_STRING_EQUAL(matched(false), "audit-big");
    /* free + gpt-4o + embeddings: two enforced denies beat the allow; the
     * smallest id (b-deny-embed) sets status, code and message; both are
     * listed. capture-full-eu raises capture to full. */
    CU_ASSERT_EQUAL(eval(b, sem_inputs[2]), TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_res.status, 403);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "policy_denied");
    CU_ASSERT_STRING_EQUAL(g_res.message,
                           "Denied by policy rule b-deny-embed.");
    CU_ASSERT_STRING_EQUAL(matched(true),
                           "b-deny-embed,capture,capture-full-eu,deny-free-4o");
    CU_ASSERT_EQUAL(g_res.capture_level, 2);
    /* audit-big cannot read max_tokens: in audit mode the error is only
     * reported. */
    CU_ASSERT_STRING_EQUAL(matched(false), "audit-big");
    pdp_bundle_unref(b);

    /* Only deny-free-4o: its own status/code/message. */
    b = rules1(sem_rules[1]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"tier\": \"free\"}, \"request\": "
                            "{\"model\": \"gpt-4o\"}}"),
                    TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_res.status, 402);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "upgrade_required");
    CU_ASSERT_STRING_EQUAL(g_res.message, "Upgrade to use gpt-4o.");
    /* Nothing allows: the default deny, no determining rule. */
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"tier\": \"pro\"}, \"request\": "
                            "{\"model\": \"gpt-4o\"}}"),
                    TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_res.status, 403);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "policy_denied");
    CU_ASSERT_EQUAL(g_res.n_matched, 0);
    pdp_bundle_unref(b);

    /* "default": "allow" */
    b = load(mkbundle("bundle.json",
                      "{\"name\": \"t\", \"revision\": 1, \"default\": "
                      "\"allow\"}",
                      "a.policy.json",
                      "{\"rules\": [{\"id\": \"d\", \"kind\": \"access\", "
                      "\"effect\": \"deny\", \"when\": {\"eq\": "
                      "[\"tenant.tier\", \"free\"]}}]}",
                      NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"tier\": \"pro\"}}"),
                    TG_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(g_res.n_matched, 0);
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"tier\": \"free\"}}"),
                    TG_VERDICT_DENY);
    pdp_bundle_unref(b);

    /* An empty bundle denies everything. */
    b = load(mkbundle("bundle.json", BUNDLE_JSON, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(eval(b, "{}"), TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(pdp_bundle_rule_count(b), 0);
    pdp_bundle_unref(b);
}

static bool
same_result(const pdp_policy_result *a, const pdp_policy_result *b)
{
    if (a->verdict != b->verdict || a->status != b->status ||
        strcmp(a->error_code, b->error_code) != 0 ||
        strcmp(a->message, b->message) != 0 || a->n_matched != b->n_matched ||
        a->n_targets != b->n_targets || a->capture_level != b->capture_level) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_matched; i++) {
        if (strcmp(a->matched[i].rule_id, b->matched[i].rule_id) != 0 ||
            a->matched[i].enforced != b->matched[i].enforced) {
            return false;
        }
    }
    return true;
}

/* Rule order in files, and how rules are split over files, never matters:
 * every permutation in a sample gives the same results. */
static void
test_order_independence(void)
{
    pdp_policy_result ref[N_SEM_IN];
    size_t            perm[N_SEM];
    pdp_bundle       *b;
    unsigned          seed = 12345;

    for (size_t i = 0; i < N_SEM; i++) {
        perm[i] = i;
    }
    b = load_perm(perm, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t k = 0; k < N_SEM_IN; k++) {
        eval(b, sem_inputs[k]);
        ref[k] = g_res;
    }
    pdp_bundle_unref(b);
    for (int round = 0; round < 12; round++) {
        /* Fisher-Yates with a fixed seed: reproducible permutations. */
        for (size_t i = N_SEM - 1; i > 0; i--) {
            size_t j;
            size_t t;
            seed    = seed * 1103515245u + 12345u;
            j       = (seed >> 16) % (i + 1);
            t       = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        b = load_perm(perm, 1 + (size_t)round % 3);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        for (size_t k = 0; k < N_SEM_IN; k++) {
            eval(b, sem_inputs[k]);
            CU_ASSERT(same_result(&ref[k], &g_res));
        }
        pdp_bundle_unref(b);
    }
}

static void
test_on_error(void)
{
    pdp_bundle *b = rules1(
        "{\"id\": \"allow\", \"kind\": \"access\", \"effect\": \"allow\"},"
        "{\"id\": \"eu-only\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"when\": {\"ne\": [\"tenant.labels.region\", \"eu\"]}},"
        "{\"id\": \"skip-me\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"on_error\": \"skip\", \"when\": {\"eq\": [\"principal.user\", "
        "\"mallory\"]}},"
        "{\"id\": \"watch\", \"kind\": \"access\", \"effect\": \"allow\", "
        "\"mode\": \"audit\", \"when\": {\"eq\": [\"request.metadata.x\", "
        "\"1\"]}}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* The label is absent: eu-only errors, on_error deny -> an enforced
     * deny with code policy_error; skip-me errors too but is skipped; the
     * audit rule's error is reported only. */
    CU_ASSERT_EQUAL(eval(b, "{}"), TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_res.status, 403);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "policy_error");
    CU_ASSERT_STRING_EQUAL(g_res.message,
                           "Rule eu-only could not be evaluated: "
                           "tenant.labels.region is absent.");
    CU_ASSERT_STRING_EQUAL(matched(true), "eu-only");
    CU_ASSERT_STRING_EQUAL(matched(false), "watch");
    /* Label present: eu-only does not match; skip-me still errors and is
     * skipped, so allow decides. */
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"labels\": {\"region\": "
                            "\"eu\"}}}"),
                    TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(matched(true), "allow");
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"labels\": {\"region\": "
                            "\"eu\"}}, \"principal\": {\"user\": "
                            "\"mallory\"}}"),
                    TG_VERDICT_DENY);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "policy_denied");
    CU_ASSERT_STRING_EQUAL(matched(true), "skip-me");
    pdp_bundle_unref(b);

    /* An off rule is never evaluated, so it cannot error either. */
    b = rules1("{\"id\": \"allow\", \"kind\": \"access\", \"effect\": "
               "\"allow\"},"
               "{\"id\": \"off\", \"kind\": \"access\", \"effect\": "
               "\"deny\", \"mode\": \"off\", \"when\": {\"eq\": "
               "[\"tenant.labels.region\", \"eu\"]}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(eval(b, "{}"), TG_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(matched(true), "allow");
    CU_ASSERT_STRING_EQUAL(matched(false), "");
    pdp_bundle_unref(b);
}

/* ---- routes -------------------------------------------------------------- */

static void
test_route(void)
{
    pdp_bundle *b = rules1(
        "{\"id\": \"allow\", \"kind\": \"access\", \"effect\": \"allow\"},"
        /* EU tenants: EU deployments only, gpt-4o-mini as fallback */
        "{\"id\": \"eu\", \"kind\": \"route\", \"labels\": {\"region\": "
        "\"eu\"}, \"fallbacks\": [\"gpt-4o-mini\"], \"when\": {\"eq\": "
        "[\"tenant.labels.region\", \"eu\"]}, \"on_error\": \"skip\"},"
        /* prefer the second gpt-4o deployment for one tenant */
        "{\"id\": \"order\", \"kind\": \"route\", \"deployments\": "
        "[\"eu-4o-b\", \"us-4o\", \"eu-4o\", \"eu-mini\"], \"strategy\": "
        "\"lowest_latency\", \"when\": {\"eq\": [\"tenant.id\", "
        "\"acme\"]}, \"on_error\": \"skip\"},"
        /* a tenant pinned to US only */
        "{\"id\": \"us\", \"kind\": \"route\", \"deployments\": [\"us-4o\"], "
        "\"when\": {\"eq\": [\"tenant.id\", \"yankee\"]}, \"on_error\": "
        "\"skip\"},"
        /* audit-mode routes never restrict */
        "{\"id\": \"z-audit\", \"kind\": \"route\", \"deployments\": "
        "[\"us-mini\"], \"mode\": \"audit\"}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* No enforced route rule: catalog order applies (n_targets 0). */
    CU_ASSERT_EQUAL(eval(b, "{\"request\": {\"model\": \"gpt-4o\"}}"),
                    TG_VERDICT_ALLOW);
    CU_ASSERT_FALSE(g_res.route_restricted);
    CU_ASSERT_EQUAL(g_res.n_targets, 0);
    CU_ASSERT_STRING_EQUAL(matched(false), "z-audit");
    /* EU: the EU gpt-4o deployments in catalog order, then EU gpt-4o-mini. */
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"id\": \"t1\", \"labels\": "
                            "{\"region\": \"eu\"}}, \"request\": {\"model\": "
                            "\"gpt-4o\"}}"),
                    TG_VERDICT_ALLOW);
    CU_ASSERT(g_res.route_restricted);
    CU_ASSERT_STRING_EQUAL(targets(), "eu-4o,eu-4o-b,eu-mini");
    CU_ASSERT_EQUAL(g_res.strategy, TG_ROUTE_ORDERED);
    CU_ASSERT_STRING_EQUAL(matched(true), "allow,eu");
    /* The fallback is not repeated when it is the requested model. */
    eval(b, "{\"tenant\": {\"labels\": {\"region\": \"eu\"}}, \"request\": "
            "{\"model\": \"gpt-4o-mini\"}}");
    CU_ASSERT_STRING_EQUAL(targets(), "eu-mini");
    /* EU and acme: intersection; order and strategy from "order", the
     * smallest id that lists deployments. */
    eval(b, "{\"tenant\": {\"id\": \"acme\", \"labels\": {\"region\": "
            "\"eu\"}}, \"request\": {\"model\": \"gpt-4o\"}}");
    CU_ASSERT_STRING_EQUAL(targets(), "eu-4o-b,eu-4o,eu-mini");
    CU_ASSERT_EQUAL(g_res.strategy, TG_ROUTE_LOWEST_LATENCY);
    CU_ASSERT_STRING_EQUAL(matched(true), "allow,eu,order");
    /* acme alone: its list, for the model asked. */
    eval(b, "{\"tenant\": {\"id\": \"acme\"}, \"request\": {\"model\": "
            "\"gpt-4o\"}}");
    CU_ASSERT_STRING_EQUAL(targets(), "eu-4o-b,us-4o,eu-4o");
    /* EU and pinned to US: nothing left -> no_route, naming the rules. */
    CU_ASSERT_EQUAL(eval(b, "{\"tenant\": {\"id\": \"yankee\", \"labels\": "
                            "{\"region\": \"eu\"}}, \"request\": {\"model\": "
                            "\"gpt-4o\"}}"),
                    TG_VERDICT_DENY);
    CU_ASSERT_EQUAL(g_res.status, 403);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "no_route");
    CU_ASSERT_STRING_EQUAL(g_res.message,
                           "No deployment of model \"gpt-4o\" is allowed by "
                           "route rules eu, us.");
    CU_ASSERT_STRING_EQUAL(matched(true), "eu,us");
    /* A model with no deployment in the region, no fallback left. */
    eval(b, "{\"tenant\": {\"id\": \"yankee\"}, \"request\": {\"model\": "
            "\"small\"}}");
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "no_route");
    /* Route rules only apply to allowed requests. */
    pdp_bundle_unref(b);
    b = rules1("{\"id\": \"eu\", \"kind\": \"route\", \"labels\": "
               "{\"region\": \"eu\"}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(eval(b, "{\"request\": {\"model\": \"gpt-4o\"}}"),
                    TG_VERDICT_DENY);
    CU_ASSERT_STRING_EQUAL(g_res.error_code, "policy_denied");
    CU_ASSERT_EQUAL(g_res.n_targets, 0);
    pdp_bundle_unref(b);
}

/* ---- time ---------------------------------------------------------------- */

static pdp_bundle *
berlin(const char *when)
{
    char pol[1024];

    snprintf(pol, sizeof(pol),
             "{\"rules\": [{\"id\": \"w\", \"kind\": \"access\", \"effect\": "
             "\"allow\", \"when\": %s}]}",
             when);
    return load(mkbundle("bundle.json",
                         "{\"name\": \"t\", \"revision\": 1, \"timezone\": "
                         "\"Europe/Berlin\"}",
                         "a.policy.json", pol, NULL));
}

static tg_verdict
at(const pdp_bundle *b, const char *time)
{
    char in[128];

    snprintf(in, sizeof(in), "{\"time\": \"%s\"}", time);
    return eval(b, in);
}

#define ALLOW TG_VERDICT_ALLOW
#define DENY TG_VERDICT_DENY

static void
test_time_window_dst(void)
{
    pdp_bundle *b = berlin("{\"time_window\": {\"days\": [\"mon\", \"tue\", "
                           "\"wed\", \"thu\", \"fri\"], \"from\": \"09:00\", "
                           "\"to\": \"18:00\"}}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* Winter (CET, UTC+1): 09:00 Berlin is 08:00Z. */
    CU_ASSERT_EQUAL(at(b, "2026-01-14T07:59:00Z"), DENY);
    CU_ASSERT_EQUAL(at(b, "2026-01-14T08:00:00Z"), ALLOW);
    CU_ASSERT_EQUAL(at(b, "2026-01-14T16:59:59Z"), ALLOW);
    CU_ASSERT_EQUAL(at(b, "2026-01-14T17:00:00Z"), DENY); /* 18:00: excl. */
    /* Summer (CEST, UTC+2): 09:00 Berlin is 07:00Z. */
    CU_ASSERT_EQUAL(at(b, "2026-07-15T07:00:00Z"), ALLOW);
    CU_ASSERT_EQUAL(at(b, "2026-07-15T16:00:00Z"), DENY);
    /* The week DST starts (Sun 2026-03-29 01:00Z): Friday before is CET,
     * Monday after is CEST. 07:30Z is 08:30 on Friday, 09:30 on Monday. */
    CU_ASSERT_EQUAL(at(b, "2026-03-27T07:30:00Z"), DENY);
    CU_ASSERT_EQUAL(at(b, "2026-03-30T07:30:00Z"), ALLOW);
    /* DST ends Sun 2026-10-25 01:00Z: Monday after, 07:30Z is 08:30. */
    CU_ASSERT_EQUAL(at(b, "2026-10-23T07:30:00Z"), ALLOW);
    CU_ASSERT_EQUAL(at(b, "2026-10-26T07:30:00Z"), DENY);
    CU_ASSERT_EQUAL(at(b, "2026-11-28T10:00:00Z"), DENY); /* Saturday */
    /* Far future, beyond the zoneinfo transition table: POSIX rule. */
    CU_ASSERT_EQUAL(at(b, "2061-07-15T07:00:00Z"), ALLOW); /* Fri, CEST */
    CU_ASSERT_EQUAL(at(b, "2061-12-16T07:30:00Z"), DENY);  /* Fri, CET */
    pdp_bundle_unref(b);

    /* time.hour and time.date follow the zone too. */
    b = berlin("{\"all\": [{\"eq\": [\"time.hour\", 0]}, {\"eq\": "
               "[\"time.date\", \"2026-07-01\"]}, {\"eq\": [\"time.weekday\", "
               "\"wed\"]}]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(at(b, "2026-06-30T22:30:00Z"), ALLOW);
    CU_ASSERT_EQUAL(at(b, "2026-06-30T21:30:00Z"), DENY);
    pdp_bundle_unref(b);

    /* The hour that does not exist (02:00-03:00 on 2026-03-29) and the one
     * that happens twice (02:00-03:00 on 2026-10-25). */
    b = berlin("{\"eq\": [\"time.hour\", 2]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(at(b, "2026-03-29T00:59:59Z"), DENY);  /* 01:59 CET */
    CU_ASSERT_EQUAL(at(b, "2026-03-29T01:00:00Z"), DENY);  /* 03:00 CEST */
    CU_ASSERT_EQUAL(at(b, "2026-10-25T00:30:00Z"), ALLOW); /* 02:30 CEST */
    CU_ASSERT_EQUAL(at(b, "2026-10-25T01:30:00Z"), ALLOW); /* 02:30 CET */
    CU_ASSERT_EQUAL(at(b, "2026-10-25T02:00:00Z"), DENY);  /* 03:00 CET */
    pdp_bundle_unref(b);
}

static void
test_time_window_midnight(void)
{
    /* Night shift: Fri and Sat nights 22:00-06:00 (UTC bundle). */
    pdp_bundle *b = rules1(
        "{\"id\": \"night\", \"kind\": \"access\", \"effect\": \"allow\", "
        "\"when\": {\"time_window\": {\"days\": [\"fri\", \"sat\"], \"from\": "
        "\"22:00\", \"to\": \"06:00\"}}}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(at(b, "2026-11-27T21:59:00Z"), DENY);  /* Fri 21:59 */
    CU_ASSERT_EQUAL(at(b, "2026-11-27T22:00:00Z"), ALLOW); /* Fri 22:00 */
    CU_ASSERT_EQUAL(at(b, "2026-11-28T03:00:00Z"), ALLOW); /* Sat 03:00 */
    CU_ASSERT_EQUAL(at(b, "2026-11-28T06:00:00Z"), DENY);  /* Sat 06:00 */
    CU_ASSERT_EQUAL(at(b, "2026-11-28T23:00:00Z"), ALLOW); /* Sat 23:00 */
    CU_ASSERT_EQUAL(at(b, "2026-11-29T05:59:00Z"), ALLOW); /* Sun 05:59 */
    CU_ASSERT_EQUAL(at(b, "2026-11-29T23:00:00Z"), DENY);  /* Sun 23:00 */
    CU_ASSERT_EQUAL(at(b, "2026-11-27T03:00:00Z"), DENY);  /* Fri 03:00:
                                                              Thu's night */
    pdp_bundle_unref(b);

    /* Until midnight, every day. */
    b = rules1("{\"id\": \"eve\", \"kind\": \"access\", \"effect\": "
               "\"allow\", \"when\": {\"time_window\": {\"from\": \"18:00\", "
               "\"to\": \"24:00\"}}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(at(b, "2026-11-29T23:59:59Z"), ALLOW);
    CU_ASSERT_EQUAL(at(b, "2026-11-29T00:00:00Z"), DENY);
    CU_ASSERT_EQUAL(at(b, "2026-11-29T17:59:00Z"), DENY);
    pdp_bundle_unref(b);
}

/* ---- traces -------------------------------------------------------------- */

static void
test_trace(void)
{
    pdp_bundle *b = rules1(
        "{\"id\": \"allow-paid\", \"kind\": \"access\", \"effect\": "
        "\"allow\", \"when\": {\"all\": [{\"ne\": [\"tenant.tier\", "
        "\"free\"]}, {\"in\": [\"request.model\", [\"gpt-4o\", "
        "\"gpt-4o-mini\"]]}]}},"
        "{\"id\": \"no-eu\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"when\": {\"eq\": [\"tenant.labels.region\", \"eu\"]}, "
        "\"on_error\": \"skip\"},"
        "{\"id\": \"legacy\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"mode\": \"off\"},"
        "{\"id\": \"big\", \"kind\": \"access\", \"effect\": \"deny\", "
        "\"mode\": \"audit\", \"when\": {\"gt\": [\"request.max_tokens\", "
        "1000]}}");
    pdp_trace *t = pdp_trace_create();
    pdp_attrs  a;
    char      *text = NULL;
    size_t     len  = 0;
    FILE      *f;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    attrs_of("{\"tenant\": {\"tier\": \"pro\"}, \"request\": {\"model\": "
             "\"gpt-4o\", \"max_tokens\": 4000}}",
             &a);
    pdp_bundle_eval(b, &a, &g_res, t);
    /* The trace holds its own reference: printing after the unref works. */
    pdp_bundle_unref(b);
    f = open_memstream(&text, &len);
    pdp_trace_print(t, f);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "MATCHED     allow-paid (access "
                                        "allow, mode enforce"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tenant.tier ne \"free\"  [read "
                                        "\"pro\"] -> true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "request.model in [\"gpt-4o\", "
                                        "\"gpt-4o-mini\"]  [read "
                                        "\"gpt-4o\"] -> true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "ERRORED     no-eu"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tenant.labels.region eq \"eu\"  "
                                        "[read (absent)] -> ERROR"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "error: tenant.labels.region is "
                                        "absent; on_error skip: treated as "
                                        "not matched"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "OFF         legacy"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "mode off: not evaluated"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "request.max_tokens gt 1000  [read "
                                        "4000] -> true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "mode audit: reported, does not "
                                        "change the outcome"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, "=> ALLOW: allowed by allow-paid; route: catalog order; "
                     "capture none\n"));
    free(text);
    pdp_trace_destroy(t);
    pdp_trace_destroy(NULL);
}

/* ---- input --------------------------------------------------------------- */

static void
test_attrs_from_json(void)
{
    static const struct {
        const char *json;
        const char *msg;
    } bad[] = {
        {"{\"reqest\": {}}",
         "in:1:2: input: unknown key \"reqest\" (did you mean "
         "\"request\"?)"},
        {"{\"request\": {\"modle\": \"x\"}}",
         "in:1:14: request: unknown key \"modle\" (did you mean "
         "\"model\"?)"},
        {"{\"request\": {\"endpoint\": \"chats\"}}",
         "in:1:14: request.endpoint: expected \"chat\""},
        {"{\"time\": \"2026-11-28 10:00\"}",
         "in:1:2: time: expected an RFC 3339 time"},
        /* No such day: not silently 2027-03-03. */
        {"{\"time\": \"2027-02-31T10:00:00Z\"}",
         "in:1:2: time: expected an RFC 3339 time"},
        {"{\"time\": \"2026-04-31T10:00:00Z\"}",
         "in:1:2: time: expected an RFC 3339 time"},
        {"{\"principal\": {\"tenant_id\": \"a\"}, \"tenant\": {\"id\": "
         "\"b\"}}",
         "tenant.id \"b\" differs from principal.tenant_id \"a\""},
        {"{\"request\": {\"max_tokens\": -1}}",
         "request.max_tokens: expected an integer"},
    };
    pdp_attrs a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tg_json_doc *doc      = NULL;
        char         err[512] = "";
        CU_ASSERT_EQUAL_FATAL(tg_json_doc_parse(&doc, "in", bad[i].json,
                                                strlen(bad[i].json), err,
                                                sizeof(err)),
                              TG_OK);
        CU_ASSERT_EQUAL(pdp_attrs_from_json(&a, doc, tg_json_doc_root(doc), err,
                                            sizeof(err)),
                        TG_EINVAL);
        if (strstr(err, bad[i].msg) == NULL) {
            fprintf(stderr, "\ncase %zu: want \"%s\", got \"%s\"\n", i,
                    bad[i].msg, err);
            CU_FAIL("message");
        }
        tg_json_doc_destroy(doc);
    }
    attrs_of("{\"time\": \"2026-11-28T11:00:00.250+01:00\", \"request\": "
             "{\"endpoint\": \"messages\", \"stream\": true}}",
             &a);
    CU_ASSERT_EQUAL(a.now_ms, INT64_C(1795860000250));
    CU_ASSERT_EQUAL(a.endpoint, TG_EP_MESSAGES);
    CU_ASSERT(a.stream);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct thr_arg {
    const pdp_bundle *b;
    int               bad;
} thr_arg;

static void *
thr_main(void *p)
{
    thr_arg          *arg = p;
    pdp_attrs         a[2];
    pdp_policy_result r;

    attrs_of(sem_inputs[0], &a[0]);
    attrs_of(sem_inputs[2], &a[1]);
    for (int i = 0; i < 20000; i++) {
        pdp_bundle_eval(arg->b, &a[i & 1], &r, NULL);
        if (r.verdict != ((i & 1) ? TG_VERDICT_DENY : TG_VERDICT_ALLOW)) {
            arg->bad++;
        }
    }
    return NULL;
}

static void
test_threads_share_bundle(void)
{
    size_t      perm[N_SEM];
    pthread_t   th[4];
    thr_arg     args[4];
    pdp_bundle *b;

    for (size_t i = 0; i < N_SEM; i++) {
        perm[i] = i;
    }
    b = load_perm(perm, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){b, 0};
        pthread_create(&th[i], NULL, thr_main, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(args[i].bad, 0);
    }
    pdp_bundle_unref(b);
}

/* ---- the example bundles ------------------------------------------------- */

/* The example bundles and the benchmark's bundle must keep compiling and
 * passing their own tests; `test` is called in-process, as tollgate-pdp
 * dispatches to it. */

static int
run_cli(const char *cmd, char *out, size_t cap, ...)
{
    char   *argv[16];
    int     argc = 0;
    va_list ap;
    FILE   *o = tmpfile();
    FILE   *e = tmpfile();
    int     rc;
    size_t  n;

    va_start(ap, cap);
    for (const char *s = va_arg(ap, const char *); s != NULL && argc < 15;
         s             = va_arg(ap, const char *)) {
        argv[argc++] = (char *)s;
    }
    va_end(ap);
    argv[argc] = NULL;
    rc         = pdp_policy_cli(cmd, argc, argv, o, e);
    rewind(o);
    n = fread(out, 1, cap - 1, o);
    rewind(e);
    n += fread(out + n, 1, cap - 1 - n, e);
    out[n] = '\0';
    fclose(o);
    fclose(e);
    return rc;
}

static void
test_example_bundles(void)
{
    static const char *const bundles[] = {
        "policies/free-tier",      "policies/eu-routing",
        "policies/business-hours", "policies/audit-rollout",
        "policies/default",        "policies/pii-and-secrets",
        "tests/bench/policy-20"};
    const char *src = getenv("TG_SRC");
    char        cfg[1024];
    char        dir[1024];
    static char out[65536];

    if (src == NULL) {
        src = ".";
    }
    snprintf(cfg, sizeof(cfg), "%s/policies/examples.config.json", src);
    for (size_t i = 0; i < sizeof(bundles) / sizeof(bundles[0]); i++) {
        int rc;
        snprintf(dir, sizeof(dir), "%s/%s", src, bundles[i]);
        rc = run_cli("check", out, sizeof(out), dir, "--config", cfg, NULL);
        if (rc != 0 || strncmp(out, "ok: bundle ", 11) != 0) {
            fprintf(stderr, "\ncheck %s: exit %d\n%s\n", dir, rc, out);
            CU_FAIL("check");
        }
        rc = run_cli("test", out, sizeof(out), dir, "--config", cfg, NULL);
        if (rc != 0 || strstr(out, " 0 failed\n") == NULL ||
            strstr(out, "\nPASS ") == NULL) {
            fprintf(stderr, "\ntest %s: exit %d\n%s\n", dir, rc, out);
            CU_FAIL("test");
        }
    }
}

/* check, test and eval on a small bundle: output lines, the summary, exit
 * codes. */
static void
test_cli_commands(void)
{
    static char out[65536];
    char        in[1024];
    char        want[1024];
    char        d[512];

    snprintf(
        d, sizeof(d), "%s",
        mkbundle("bundle.json", "{\"name\": \"cli\", \"revision\": 3}",
                 "a.policy.json",
                 "{\"rules\": [{\"id\": \"free-deny\", \"kind\": \"access\", "
                 "\"effect\": \"deny\", \"code\": \"free_tier\", \"when\": "
                 "{\"eq\": [\"tenant.tier\", \"free\"]}, \"on_error\": "
                 "\"skip\"}, {\"id\": \"all\", \"kind\": \"access\", "
                 "\"effect\": \"allow\"}]}",
                 "b.test.json",
                 "{\"tests\": [\n"
                 " {\"name\": \"free denied\", \"input\": {\"tenant\": "
                 "{\"tier\": \"free\"}}, \"expect\": {\"decision\": \"deny\", "
                 "\"code\": \"free_tier\", \"rules\": [\"free-deny\"]}},\n"
                 " {\"name\": \"pro denied\", \"input\": {\"tenant\": "
                 "{\"tier\": \"pro\"}}, \"expect\": {\"decision\": "
                 "\"deny\"}}\n"
                 "]}",
                 "a.test.json",
                 "{\"tests\": [{\"name\": \"bad\", \"input\": {\"tenant\": "
                 "{\"teir\": \"x\"}}, \"expect\": {\"decision\": "
                 "\"allow\"}}]}",
                 NULL));
    /* test: files by name (a before b); the malformed case counts as
     * failed; a failing case shows its explanation, indented. */
    CU_ASSERT_EQUAL(run_cli("test", out, sizeof(out), d, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PASS b.test.json: free denied\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "FAIL b.test.json: pro denied: "
                                       "expected deny, got allow\n"
                                       "    bundle cli revision 3, 2 rules, "
                                       "default deny:\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "    => ALLOW: allowed by all;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\n1 passed, 2 failed\n"));
    snprintf(want, sizeof(want),
             "%s/a.test.json:1:49: tenant: unknown key \"teir\" (did you "
             "mean \"tier\"?)",
             d);
    CU_ASSERT(strstr(out, want) != NULL ||
              (fprintf(stderr, "\nwant %s in\n%s\n", want, out), false));
    /* check reports the malformed test file too, without running. */
    CU_ASSERT_EQUAL(run_cli("check", out, sizeof(out), d, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NULL(strstr(out, "PASS"));
    tg_unit_write(d, "a.test.json", "{\"tests\": []}");
    CU_ASSERT_EQUAL(run_cli("check", out, sizeof(out), d, NULL), 0);
    CU_ASSERT_EQUAL(
        strncmp(out, "ok: bundle cli revision 3, 2 rules (hash ", 41), 0);
    CU_ASSERT_EQUAL(strlen(out), 41 + 64 + 2); /* hash, ")\n" */
    /* eval, text and json; the input lives outside the bundle. */
    snprintf(in, sizeof(in), "%s",
             tg_unit_write(tg_unit_tmpdir("policy-in"), "in.json",
                           "{\"tenant\": {\"tier\": \"free\"}}"));
    CU_ASSERT_EQUAL(run_cli("eval", out, sizeof(out), "--bundle", d, "--input",
                            in, "--explain", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "decision: deny\nstatus:   403\n"
                                       "code:     free_tier\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rules:    free-deny\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "revision: 3 (bundle cli, hash "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  => DENY 403 free_tier: denied by "
                                       "free-deny (an enforced deny wins)"));
    CU_ASSERT_EQUAL(run_cli("eval", out, sizeof(out), "--bundle", d, "--input",
                            in, "--format=json", NULL),
                    0);
    {
        cJSON *j = cJSON_Parse(out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "decision")->valuestring,
                               "deny");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "code")->valuestring,
                               "free_tier");
        CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "revision")->valueint, 3);
        cJSON_Delete(j);
    }
    /* --jsonl: one result a line, in order, each naming its line; a line
     * that cannot be read is an error object (and exit 2), the rest are
     * still evaluated; blank lines are skipped. */
    snprintf(in, sizeof(in), "%s",
             tg_unit_write(tg_unit_tmpdir("policy-jsonl"), "in.jsonl",
                           "{\"tenant\": {\"tier\": \"free\"}}\n"
                           "\n"
                           "{\"tenant\": {\"teir\": \"pro\"}}\n"
                           "{\"tenant\": {\"tier\": \"pro\"}}\r\n"
                           "{\"tenant\": \n"));
    CU_ASSERT_EQUAL(run_cli("eval", out, sizeof(out), "--bundle", d, "--input",
                            in, "--jsonl", NULL),
                    2);
    {
        const char *lines[] = {"{\"line\":1,\"decision\":\"deny\",",
                               "{\"line\":3,\"error\":\"tenant: unknown key "
                               "\\\"teir\\\"",
                               "{\"line\":4,\"decision\":\"allow\",",
                               "{\"line\":5,\"error\":\"invalid JSON"};
        const char *p       = out;
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            CU_ASSERT_EQUAL(strncmp(p, lines[i], strlen(lines[i])), 0);
            p = strchr(p, '\n');
            CU_ASSERT_PTR_NOT_NULL_FATAL(p);
            p++;
        }
        /* then what went wrong, on stderr, as FILE:LINE:COL */
        CU_ASSERT_PTR_NOT_NULL(strstr(p, "in.jsonl:3:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(p, "in.jsonl:5:"));
    }
    CU_ASSERT_EQUAL(run_cli("eval", out, sizeof(out), "--bundle", d, "--input",
                            in, "--jsonl", "--format", "text", NULL),
                    2);
    /* usage errors exit 2 */
    CU_ASSERT_EQUAL(run_cli("eval", out, sizeof(out), "--bundle", d, NULL), 2);
    CU_ASSERT_EQUAL(run_cli("check", out, sizeof(out), NULL), 2);
    CU_ASSERT_EQUAL(run_cli("test", out, sizeof(out), d, "--bogus", NULL), 2);
    CU_ASSERT_EQUAL(run_cli("eval", out, sizeof(out), "--bundle", d, "--input",
                            in, "--format", "yaml", NULL),
                    2);
}

/* The summary counts cases: a malformed case is one failed case however
 * many mistakes it has (each is still reported on its own line). */
static void
test_cli_summary_counts_cases(void)
{
    static char out[65536];
    const char *d;

    d = mkbundle("bundle.json", BUNDLE_JSON, "a.policy.json",
                 "{\"rules\": [{\"id\": \"all\", \"kind\": \"access\", "
                 "\"effect\": \"allow\"}]}",
                 "a.test.json",
                 "{\"tests\": [\n"
                 " {\"name\": \"ok\", \"input\": {}, \"expect\": "
                 "{\"decision\": \"allow\"}},\n"
                 " {\"name\": \"three mistakes\", \"input\": {\"tenant\": "
                 "{\"teir\": \"x\"}}, \"expect\": {\"decision\": \"alow\", "
                 "\"rules\": [\"nope\"]}}\n"
                 "]}",
                 NULL);
    CU_ASSERT_EQUAL(run_cli("test", out, sizeof(out), d, NULL), 1);
    CU_ASSERT(strstr(out, "\n1 passed, 1 failed\n") != NULL ||
              (fprintf(stderr, "\nwant \"1 passed, 1 failed\" in\n%s\n", out),
               false));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown key \"teir\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "expect.decision: expected"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no rule \"nope\" in the bundle"));
}

/* ---- setup --------------------------------------------------------------- */

static void
setup(void)
{
    const char *dir = tg_unit_tmpdir("policy-cfg");
    char        text[4096];
    char        path[768];
    char        err[512];

    snprintf(
        text, sizeof(text),
        "{\n"
        "  \"pdp\": {\"listen\": [\"ipc://%s/pdp.sock\"], "
        "\"state_dir\": \"state\"},\n"
        "  \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "
        "\"ipc://%s/pdp.sock\", \"spool_dir\": \"spool\"},\n"
        "  \"deployments\": [\n"
        "    {\"id\": \"us-mini\", \"model\": \"gpt-4o-mini\", "
        "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"labels\": {\"region\": \"us\"}},\n"
        "    {\"id\": \"eu-mini\", \"model\": \"gpt-4o-mini\", "
        "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"labels\": {\"region\": \"eu\"}},\n"
        "    {\"id\": \"us-4o\", \"model\": \"gpt-4o\", "
        "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"labels\": {\"region\": \"us\"}},\n"
        "    {\"id\": \"eu-4o\", \"model\": \"gpt-4o\", "
        "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"labels\": {\"region\": \"eu\"}},\n"
        "    {\"id\": \"eu-4o-b\", \"model\": \"gpt-4o\", "
        "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"labels\": {\"region\": \"eu\", \"tier\": \"b\"}},\n"
        "    {\"id\": \"us-small\", \"model\": \"small\", "
        "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"labels\": {\"region\": \"us\"}},\n"
        /* priced through its upstream model, and by its own pricing */
        "    {\"id\": \"vendor-4o\", \"model\": \"vendor/gpt-4o\", "
        "\"upstream_model\": \"gpt-4o\", \"provider\": \"openai\", "
        "\"api_base\": \"http://127.0.0.1:9/v1\"},\n"
        "    {\"id\": \"deal\", \"model\": \"deal\", \"provider\": "
        "\"openai\", \"api_base\": \"http://127.0.0.1:9/v1\", "
        "\"pricing\": {\"input_per_mtok\": 1, \"output_per_mtok\": 2}}\n"
        "  ]\n"
        "}\n",
        dir, dir);
    snprintf(path, sizeof(path), "%s",
             tg_unit_write(dir, "tollgate.json", text));
    if (tg_config_load(&g_cfg, path, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "test config: %s\n", err);
        exit(2);
    }
}

/* Budget windows are calendar windows in the bundle's zone: a daily budget
 * in Europe/Berlin rolls over at local midnight (23:00 UTC in winter, 22:00
 * in summer), and what was spent the day before no longer counts. */
static void
test_budget_window_berlin(void)
{
    pdp_bundle       *b = berlin("true");
    pdp_limits       *l = NULL;
    pdp_limits_budget q = {"day", "t", PDP_WINDOW_DAILY, 0, 0, 10000, false, 0,
                           0,     {0}};
    pdp_limits_cost   c = {1000000, 1000000, 1000, 4000}; /* 5000 worst */
    pdp_limits_result r;
    int64_t           start;
    int64_t           reset;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* 2026-03-10 23:59:59 CET */
    pdp_bundle_budget_window(b, PDP_WINDOW_DAILY, 1773183599000LL, &start,
                             &reset);
    CU_ASSERT_EQUAL(start, 1773097200000LL); /* 2026-03-09T23:00:00Z */
    CU_ASSERT_EQUAL(reset, 1773183600000LL); /* 2026-03-10T23:00:00Z */
    pdp_bundle_budget_window(b, PDP_WINDOW_DAILY, 1773183600000LL, &start,
                             &reset);
    CU_ASSERT_EQUAL(start, 1773183600000LL);
    CU_ASSERT_EQUAL(reset, 1773270000000LL);
    /* The day DST starts has 23 hours. */
    pdp_bundle_budget_window(b, PDP_WINDOW_DAILY, 1774778400000LL, &start,
                             &reset);
    CU_ASSERT_EQUAL(start, 1774738800000LL); /* 2026-03-28T23:00:00Z */
    CU_ASSERT_EQUAL(reset, 1774821600000LL); /* 2026-03-29T22:00:00Z */
    /* Thursday 2026-03-12: the week from Monday 2026-03-09 00:00 CET. */
    pdp_bundle_budget_window(b, PDP_WINDOW_WEEKLY, 1773316800000LL, &start,
                             &reset);
    CU_ASSERT_EQUAL(start, 1773010800000LL);
    CU_ASSERT_EQUAL(reset, 1773615600000LL);
    pdp_bundle_budget_window(b, PDP_WINDOW_MONTHLY, 1773316800000LL, &start,
                             &reset);
    CU_ASSERT_EQUAL(start, 1772319600000LL); /* 2026-03-01 00:00 CET */
    CU_ASSERT_EQUAL(reset, 1774994400000LL); /* 2026-04-01 00:00 CEST */
    pdp_bundle_budget_window(b, PDP_WINDOW_ROLLING, 1773316800123LL, &start,
                             &reset);
    CU_ASSERT_EQUAL(start, 1773316800000LL);

    /* Fill the budget just before midnight; the next day starts empty. */
    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&l, 900000000), TG_OK);
    pdp_bundle_budget_window(b, PDP_WINDOW_DAILY, 1773183599000LL, &q.start_ms,
                             &reset);
    for (int i = 0; i < 2; i++) {
        pdp_limits_check_budgets(l, NULL, NULL, 0, &q, 1, &c, 5000,
                                 1773183599000LL, &r);
        CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    }
    pdp_limits_check_budgets(l, NULL, NULL, 0, &q, 1, &c, 5000, 1773183599500LL,
                             &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_BUDGET);
    pdp_bundle_budget_window(b, PDP_WINDOW_DAILY, 1773183600000LL, &q.start_ms,
                             &reset);
    pdp_limits_check_budgets(l, NULL, NULL, 0, &q, 1, &c, 5000, 1773183600000LL,
                             &r);
    CU_ASSERT_EQUAL(r.denied, PDP_LIMITS_OK);
    pdp_limits_destroy(l);
    pdp_bundle_unref(b);
}

static const tg_unit_case cases[] = {
    {"load_and_hash", test_load_and_hash},
    {"budget_window_berlin", test_budget_window_berlin},
    {"bundle_file_errors", test_bundle_file_errors},
    {"file_deleted_while_loading", test_file_deleted_while_loading},
    {"error_positions", test_error_positions},
    {"nesting_too_deep", test_nesting_too_deep},
    {"bundle_too_large", test_bundle_too_large},
    {"limits", test_limits},
    {"one_bad_file_refuses_bundle", test_one_bad_file_refuses_bundle},
    {"type_and_domain_errors", test_type_and_domain_errors},
    {"rule_field_errors", test_rule_field_errors},
    {"route_needs_catalog", test_route_needs_catalog},
    {"budget_compiles", test_budget_compiles},
    {"budget_enforced", test_budget_enforced},
    {"budget_errors", test_budget_errors},
    {"operators", test_operators},
    {"operators_icase", test_operators_icase},
    {"warnings", test_warnings},
    {"cedar_semantics", test_cedar_semantics},
    {"order_independence", test_order_independence},
    {"on_error", test_on_error},
    {"route", test_route},
    {"time_window_dst", test_time_window_dst},
    {"time_window_midnight", test_time_window_midnight},
    {"trace", test_trace},
    {"attrs_from_json", test_attrs_from_json},
    {"threads_share_bundle", test_threads_share_bundle},
    {"cli_commands", test_cli_commands},
    {"cli_summary_counts_cases", test_cli_summary_counts_cases},
    {"example_bundles", test_example_bundles},
    {NULL, NULL},
};

int
main(void)
{
    int rc;

    setup();
    rc = tg_unit_run("pdp.policy", cases);
    tg_config_destroy(g_cfg);
    return rc;
}
