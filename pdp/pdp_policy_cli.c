/* pdp_policy_cli.c - check, test and eval. Flags are parsed by hand, as in
 * pdp_cli.c, so tests can run many command lines in one process. A bundle
 * that does not compile is exit 1 (like a failing test: the thing checked
 * is wrong); bad flags, an unreadable config or input file are exit 2.
 * A deny from `eval` is a result, so it exits 0. */
#include "pdp_policy_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy.h"
#include "pdp_policy_int.h"
#include "tg_pricing.h"
#include "tg_config.h"
#include "tg_json.h"

#define PDP_PC_EXIT_OK 0
#define PDP_PC_EXIT_FAIL 1
#define PDP_PC_EXIT_USAGE 2
#define PDP_PC_ERR_MAX (64 * 1024)
#define PDP_PC_TEST_FILE_MAX (4u << 20)

typedef struct pdp_pc_opts {
    const char *config;
    const char *bundle;
    const char *input;
    const char *format;
    bool        explain;
    bool        help;
    const char *dir; /* the positional DIR */
} pdp_pc_opts;

typedef struct pdp_pc {
    FILE       *out;
    FILE       *err;
    const char *cmd;
    tg_config  *cfg;
    pdp_bundle *b;
    char       *msg; /* PDP_PC_ERR_MAX bytes for compiler errors */
} pdp_pc;

static const char pdp_pc_usage_check[] =
    "usage: tollgate-pdp check DIR [--config FILE]\n"
    "\n"
    "Compiles the policy bundle in DIR (bundle.json, *.policy.json) and\n"
    "checks its *.test.json and pricing.json, without running tests.\n"
    "Prints \"ok: bundle NAME revision N, R rules (hash H)\" or every\n"
    "error as FILE:LINE:COL: what is wrong. Route rules need the\n"
    "deployments catalog: --config FILE or TOLLGATE_CONFIG.\n"
    "Exit 0 ok, 1 the bundle has errors, 2 usage or config error.\n";

static const char pdp_pc_usage_test[] =
    "usage: tollgate-pdp test DIR [--config FILE]\n"
    "\n"
    "Runs every case of every *.test.json in DIR (files by name, cases in\n"
    "order) and prints PASS or FAIL per case (with the explanation of a\n"
    "failing case), then \"N passed, M failed\".\n"
    "Exit 0 all passed, 1 a case failed or the bundle has errors, 2 usage\n"
    "or config error.\n";

static const char pdp_pc_usage_eval[] =
    "usage: tollgate-pdp eval --bundle DIR --input FILE [--config FILE]\n"
    "                         [--explain] [--format text|json]\n"
    "\n"
    "Evaluates one request against the bundle. FILE holds the request's\n"
    "attributes, as the \"input\" of a test case:\n"
    "  {\"principal\": {...}, \"tenant\": {...}, \"request\": {...},\n"
    "   \"time\": \"2026-11-28T10:00:00Z\"}\n"
    "--explain adds every rule's evaluation: matched or not, why, and the\n"
    "attribute values it read.\n"
    "Exit 0 (allow or deny), 1 the bundle has errors, 2 usage or input "
    "error.\n";

static int pdp_pc_usage_error(pdp_pc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
pdp_pc_usage_error(pdp_pc *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(c->err, "tollgate-pdp %s: ", c->cmd);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fprintf(c->err, "\nRun 'tollgate-pdp %s --help' for usage.\n", c->cmd);
    return PDP_PC_EXIT_USAGE;
}

/* pdp_pc_parse accepts --flag VALUE, --flag=VALUE, the boolean --explain,
 * --help/-h and one positional DIR when want_dir. */
static int
pdp_pc_parse(pdp_pc *c, int argc, char **argv, const char *const flags[],
             bool want_dir, pdp_pc_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        const char  *a = argv[i];
        const char  *val;
        const char **slot = NULL;
        size_t       nlen;
        bool         known = false;

        if (a[0] != '-' || a[1] == '\0') {
            if (!want_dir || o->dir != NULL) {
                return pdp_pc_usage_error(c, "unexpected argument \"%s\"", a);
            }
            o->dir = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            return pdp_pc_usage_error(c, "unknown option %s", a);
        }
        val  = strchr(a, '=');
        nlen = val != NULL ? (size_t)(val - a - 2) : strlen(a + 2);
        for (size_t j = 0; flags[j] != NULL && !known; j++) {
            known =
                strlen(flags[j]) == nlen && strncmp(flags[j], a + 2, nlen) == 0;
        }
        if (!known) {
            return pdp_pc_usage_error(c, "unknown option %s", a);
        }
        if (strncmp(a + 2, "explain", nlen) == 0) {
            if (val != NULL) {
                return pdp_pc_usage_error(c, "--explain takes no value");
            }
            o->explain = true;
            continue;
        }
        if (strncmp(a + 2, "config", nlen) == 0) {
            slot = &o->config;
        } else if (strncmp(a + 2, "bundle", nlen) == 0) {
            slot = &o->bundle;
        } else if (strncmp(a + 2, "input", nlen) == 0) {
            slot = &o->input;
        } else {
            slot = &o->format;
        }
        if (val != NULL) {
            val++;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return pdp_pc_usage_error(c, "option %s needs a value", a);
        }
        *slot = val;
    }
    if (o->format != NULL && strcmp(o->format, "text") != 0 &&
        strcmp(o->format, "json") != 0) {
        return pdp_pc_usage_error(c,
                                  "--format must be text or json, not "
                                  "\"%s\"",
                                  o->format);
    }
    return PDP_PC_EXIT_OK;
}

/* pdp_pc_config loads --config or TOLLGATE_CONFIG; neither is fine (the
 * compiler then refuses route rules with a message that says so). */
static int
pdp_pc_config(pdp_pc *c, const pdp_pc_opts *o)
{
    const char *path =
        o->config != NULL ? o->config : getenv("TOLLGATE_CONFIG");
    char msg[1024];

    if (path == NULL || path[0] == '\0') {
        return PDP_PC_EXIT_OK;
    }
    if (tg_config_load(&c->cfg, path, msg, sizeof(msg)) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        return PDP_PC_EXIT_USAGE;
    }
    return PDP_PC_EXIT_OK;
}

static int
pdp_pc_load(pdp_pc *c, const char *dir)
{
    tg_err rv = pdp_bundle_load(&c->b, dir, c->cfg, c->msg, PDP_PC_ERR_MAX);

    if (rv == TG_OK) {
        return PDP_PC_EXIT_OK;
    }
    if (c->msg[0] != '\0') {
        fprintf(c->err, "%s\n", c->msg);
    } else {
        fprintf(c->err, "%s: %s\n", dir, tg_strerror(rv));
    }
    fprintf(c->err,
            "tollgate-pdp %s: %s: the bundle has errors; nothing "
            "was loaded\n",
            c->cmd, dir);
    return PDP_PC_EXIT_FAIL;
}

/* ---- test files ---------------------------------------------------------- */

typedef struct pdp_pc_expect {
    int          decision; /* 1 allow, 2 deny, 0 not given */
    int64_t      status;   /* 0: not given */
    const char  *code;
    const cJSON *rules; /* NULL: not given */
    const cJSON *audit;
    const cJSON *route;
    int          capture; /* -1: not given */
} pdp_pc_expect;

static bool
pdp_pc_rule_exists(const pdp_bundle *b, const char *id)
{
    uint32_t lo = 0;
    uint32_t hi = b->nrules;

    while (lo < hi) { /* rules are sorted by id */
        uint32_t mid = lo + (hi - lo) / 2;
        int      c   = strcmp(pdp_s(b, b->rules[mid].id), id);
        if (c == 0) {
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static bool
pdp_pc_id_list(pdp_pc *c, const tg_json_doc *doc, const cJSON *v,
               const char *what, int *nerr)
{
    bool ok = true;

    if (v == NULL) {
        return true;
    }
    if (!cJSON_IsArray(v)) {
        char msg[512];
        tg_json_errf(doc, v, msg, sizeof(msg),
                     "expect.%s: expected a list of %s ids", what,
                     strcmp(what, "route") == 0 ? "deployment" : "rule");
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
        return false;
    }
    for (const cJSON *e = v->child; e != NULL; e = e->next) {
        char msg[512];
        if (!cJSON_IsString(e)) {
            tg_json_errf(doc, e, msg, sizeof(msg),
                         "expect.%s: expected a string", what);
        } else if (strcmp(what, "route") != 0 &&
                   !pdp_pc_rule_exists(c->b, e->valuestring)) {
            tg_json_errf(doc, e, msg, sizeof(msg),
                         "expect.%s: no rule \"%s\" in the bundle", what,
                         e->valuestring);
        } else if (strcmp(what, "route") == 0 && c->cfg != NULL &&
                   tg_config_deployment(c->cfg, e->valuestring) == NULL) {
            tg_json_errf(doc, e, msg, sizeof(msg),
                         "expect.route: no deployment \"%s\" in the config",
                         e->valuestring);
        } else {
            continue;
        }
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
        ok = false;
    }
    return ok;
}

/* pdp_pc_expect_parse reads and checks one "expect"; errors go to err. */
static bool
pdp_pc_expect_parse(pdp_pc *c, const tg_json_doc *doc, const cJSON *e,
                    pdp_pc_expect *x, int *nerr)
{
    static const char *const keys[] = {"decision", "status", "code",    "rules",
                                       "audit",    "route",  "capture", NULL};
    const char              *s      = NULL;
    char                     msg[1024];
    int                      before = *nerr;

    memset(x, 0, sizeof(*x));
    x->capture = -1;
    if (tg_json_only_keys(doc, e, "expect", keys, msg, sizeof(msg)) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
        return false;
    }
    if (tg_json_get_string(doc, e, "expect", "decision", true, &s, msg,
                           sizeof(msg)) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
    } else if (strcmp(s, "allow") == 0 || strcmp(s, "deny") == 0) {
        x->decision = s[0] == 'a' ? 1 : 2;
    } else {
        tg_json_errf(doc, cJSON_GetObjectItemCaseSensitive(e, "decision"), msg,
                     sizeof(msg),
                     "expect.decision: expected \"allow\" or \"deny\"");
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
    }
    if (tg_json_get_int(doc, e, "expect", "status", false, 400, 599, &x->status,
                        msg, sizeof(msg)) != TG_OK ||
        tg_json_get_string(doc, e, "expect", "code", false, &x->code, msg,
                           sizeof(msg)) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
    }
    s = NULL;
    if (tg_json_get_string(doc, e, "expect", "capture", false, &s, msg,
                           sizeof(msg)) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        (*nerr)++;
    } else if (s != NULL) {
        for (int i = 0; i < 3; i++) {
            if (strcmp(s, pdp_capture_name((uint32_t)i)) == 0) {
                x->capture = i;
            }
        }
        if (x->capture < 0) {
            tg_json_errf(doc, cJSON_GetObjectItemCaseSensitive(e, "capture"),
                         msg, sizeof(msg),
                         "expect.capture: expected \"none\", \"metadata\" or "
                         "\"full\"");
            fprintf(c->err, "%s\n", msg);
            (*nerr)++;
        }
    }
    x->rules = cJSON_GetObjectItemCaseSensitive(e, "rules");
    x->audit = cJSON_GetObjectItemCaseSensitive(e, "audit");
    x->route = cJSON_GetObjectItemCaseSensitive(e, "route");
    pdp_pc_id_list(c, doc, x->rules, "rules", nerr);
    pdp_pc_id_list(c, doc, x->audit, "audit", nerr);
    pdp_pc_id_list(c, doc, x->route, "route", nerr);
    return *nerr == before;
}

/* pdp_pc_effective_route is the deployment order a request will use: the
 * route rules' targets, or, when none restricted it, the catalog's
 * deployments of the model in catalog order. */
static size_t
pdp_pc_effective_route(const pdp_pc *c, const pdp_attrs *a,
                       const pdp_policy_result *r, const char **ids, size_t cap)
{
    size_t n = 0;

    if (r->verdict != TG_VERDICT_ALLOW) {
        return 0;
    }
    if (r->route_restricted) {
        for (uint32_t i = 0; i < r->n_targets && n < cap; i++) {
            ids[n++] = r->targets[i].deployment_id;
        }
        return n;
    }
    for (size_t i = 0; c->cfg != NULL && i < c->cfg->n_deployments && n < cap;
         i++) {
        if (strcmp(c->cfg->deployments[i].model, a->model) == 0) {
            ids[n++] = c->cfg->deployments[i].id;
        }
    }
    return n;
}

static void
pdp_pc_list(char *buf, size_t cap, const char *const *ids, size_t n)
{
    size_t used = 0;

    used += (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < n && used < cap; i++) {
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                                 ids[i]);
    }
    if (used < cap) {
        snprintf(buf + used, cap - used, "]");
    }
}

static int
pdp_pc_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* pdp_pc_set_equal compares a JSON list of ids with got[] as sets; both
 * are rendered sorted into want_s / got_s. */
static bool
pdp_pc_set_equal(const cJSON *want, const char **got, size_t ngot, char *want_s,
                 char *got_s, size_t cap)
{
    const char *w[TG_MSG_RULES_MAX + 8];
    size_t      nw = 0;
    bool        eq;

    for (const cJSON *e = want->child; e != NULL && nw < TG_MSG_RULES_MAX + 8;
         e              = e->next) {
        w[nw++] = e->valuestring;
    }
    qsort(w, nw, sizeof(w[0]), pdp_pc_str_cmp);
    qsort(got, ngot, sizeof(got[0]), pdp_pc_str_cmp);
    /* Deduplicate the expectation: it is a set. */
    {
        size_t k = 0;
        for (size_t i = 0; i < nw; i++) {
            if (k == 0 || strcmp(w[k - 1], w[i]) != 0) {
                w[k++] = w[i];
            }
        }
        nw = k;
    }
    eq = nw == ngot;
    for (size_t i = 0; eq && i < nw; i++) {
        eq = strcmp(w[i], got[i]) == 0;
    }
    pdp_pc_list(want_s, cap, w, nw);
    pdp_pc_list(got_s, cap, got, ngot);
    return eq;
}

static void pdp_pc_append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pdp_pc_append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t  used = strlen(buf);
    va_list ap;

    if (used + 1 >= cap) {
        return;
    }
    if (used > 0) {
        used += (size_t)snprintf(buf + used, cap - used, "; ");
        if (used + 1 >= cap) {
            return;
        }
    }
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/* pdp_pc_compare fills why with every way r differs from x ("" if none). */
static void
pdp_pc_compare(const pdp_pc *c, const pdp_pc_expect *x, const pdp_attrs *a,
               const pdp_policy_result *r, char *why, size_t cap)
{
    const char *got[TG_MSG_RULES_MAX];
    size_t      n;
    char        ws[1024];
    char        gs[1024];
    bool        allow = r->verdict == TG_VERDICT_ALLOW;

    why[0] = '\0';
    if (x->decision != 0 && (x->decision == 1) != allow) {
        if (allow) {
            pdp_pc_append(why, cap, "expected deny, got allow");
        } else {
            pdp_pc_append(why, cap, "expected allow, got deny %u %s (\"%s\")",
                          r->status, r->error_code, r->message);
        }
    }
    /* Status and code belong to a deny; on an allow the decision line
     * above already says what is wrong. */
    if (!allow && x->status != 0 && (int64_t)r->status != x->status) {
        pdp_pc_append(why, cap, "expected status %lld, got %u",
                      (long long)x->status, r->status);
    }
    if (!allow && x->code != NULL && strcmp(x->code, r->error_code) != 0) {
        pdp_pc_append(why, cap, "expected code \"%s\", got \"%s\"", x->code,
                      r->error_code);
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *want = k == 0 ? x->rules : x->audit;
        if (want == NULL) {
            continue;
        }
        n = 0;
        for (uint32_t i = 0; i < r->n_matched; i++) {
            if (r->matched[i].enforced == (k == 0)) {
                got[n++] = r->matched[i].rule_id;
            }
        }
        if (!pdp_pc_set_equal(want, got, n, ws, gs, sizeof(ws))) {
            pdp_pc_append(why, cap, "expected %s %s, got %s",
                          k == 0 ? "rules" : "audit", ws, gs);
        }
    }
    if (x->route != NULL) {
        const char *ids[TG_MSG_TARGETS_MAX + 64];
        const char *w[TG_MSG_TARGETS_MAX + 64];
        size_t      nw = 0;
        bool        eq;
        n = pdp_pc_effective_route(c, a, r, ids, TG_MSG_TARGETS_MAX + 64);
        for (const cJSON *e                               = x->route->child;
             e != NULL && nw < TG_MSG_TARGETS_MAX + 64; e = e->next) {
            w[nw++] = e->valuestring;
        }
        eq = n == nw;
        for (size_t i = 0; eq && i < n; i++) {
            eq = strcmp(ids[i], w[i]) == 0;
        }
        if (!eq) {
            pdp_pc_list(ws, sizeof(ws), w, nw);
            pdp_pc_list(gs, sizeof(gs), ids, n);
            pdp_pc_append(why, cap, "expected route %s, got %s", ws, gs);
        }
    }
    if (x->capture >= 0 && (uint32_t)x->capture != r->capture_level) {
        pdp_pc_append(why, cap, "expected capture %s, got %s",
                      pdp_capture_name((uint32_t)x->capture),
                      pdp_capture_name(r->capture_level));
    }
}

static void
pdp_pc_print_indented(FILE *f, const pdp_trace *t, const char *indent)
{
    char  *text = NULL;
    size_t len  = 0;
    FILE  *m    = open_memstream(&text, &len);
    char  *line;
    char  *save = NULL;

    if (m == NULL) {
        return;
    }
    pdp_trace_print(t, m);
    fclose(m);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        fprintf(f, "%s%s\n", indent, line);
    }
    free(text);
}

typedef struct pdp_pc_tally {
    int passed;
    int failed;
    int errors;    /* mistakes in test files, one per message printed */
    int malformed; /* cases (or unreadable files) that could not run */
} pdp_pc_tally;

/* pdp_pc_test_file checks (and, when run, runs) every case of one test
 * file. */
static void
pdp_pc_test_file(pdp_pc *c, const char *dir, const char *name, bool run,
                 pdp_pc_tally *tally)
{
    static const char *const fkeys[] = {"$schema", "description", "tests",
                                        NULL};
    static const char *const ckeys[] = {"name", "description", "input",
                                        "expect", NULL};
    char                     path[1024];
    char                     msg[1024];
    tg_json_doc             *doc = NULL;
    const cJSON             *root;
    const cJSON             *tests;
    pdp_trace               *t = run ? pdp_trace_create() : NULL;
    int                      i = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (tg_json_doc_load(&doc, path, PDP_PC_TEST_FILE_MAX, msg, sizeof(msg)) !=
        TG_OK) {
        fprintf(c->err, "%s\n", msg);
        tally->errors++;
        tally->malformed++;
        goto out;
    }
    root = tg_json_doc_root(doc);
    if (tg_json_only_keys(doc, root, "test file", fkeys, msg, sizeof(msg)) !=
        TG_OK) {
        fprintf(c->err, "%s\n", msg);
        tally->errors++;
        tally->malformed++;
        goto out;
    }
    tests = cJSON_GetObjectItemCaseSensitive(root, "tests");
    if (!cJSON_IsArray(tests)) {
        tg_json_errf(doc, tests != NULL ? tests : root, msg, sizeof(msg),
                     "test file: expected \"tests\": [ {\"name\": ..., "
                     "\"input\": {...}, \"expect\": {...}}, ... ]");
        fprintf(c->err, "%s\n", msg);
        tally->errors++;
        tally->malformed++;
        goto out;
    }
    for (const cJSON *tc = tests->child; tc != NULL; tc = tc->next, i++) {
        const char       *tname = NULL;
        const cJSON      *in;
        const cJSON      *ex;
        pdp_pc_expect     x;
        pdp_attrs         a;
        pdp_policy_result r;
        char              ctx[32];
        char              why[4096];
        int               nerr = 0;

        snprintf(ctx, sizeof(ctx), "tests[%d]", i);
        if (tg_json_only_keys(doc, tc, ctx, ckeys, msg, sizeof(msg)) != TG_OK ||
            tg_json_get_string(doc, tc, ctx, "name", true, &tname, msg,
                               sizeof(msg)) != TG_OK) {
            fprintf(c->err, "%s\n", msg);
            tally->errors++;
            tally->malformed++;
            continue;
        }
        in = cJSON_GetObjectItemCaseSensitive(tc, "input");
        ex = cJSON_GetObjectItemCaseSensitive(tc, "expect");
        if (in == NULL || ex == NULL) {
            tg_json_errf(doc, tc, msg, sizeof(msg), "%s (%s): missing \"%s\"",
                         ctx, tname, in == NULL ? "input" : "expect");
            fprintf(c->err, "%s\n", msg);
            tally->errors++;
            tally->malformed++;
            continue;
        }
        if (pdp_attrs_from_json(&a, doc, in, msg, sizeof(msg)) != TG_OK) {
            fprintf(c->err, "%s\n", msg);
            nerr++;
        }
        if (!cJSON_IsObject(ex)) {
            tg_json_errf(doc, ex, msg, sizeof(msg),
                         "expect: expected an object such as "
                         "{\"decision\": \"deny\", \"code\": "
                         "\"policy_denied\"}");
            fprintf(c->err, "%s\n", msg);
            nerr++;
        } else {
            pdp_pc_expect_parse(c, doc, ex, &x, &nerr);
        }
        if (nerr > 0) {
            tally->errors += nerr;
            tally->malformed++;
            continue;
        }
        if (!run) {
            continue;
        }
        pdp_bundle_eval(c->b, &a, &r, t);
        pdp_pc_compare(c, &x, &a, &r, why, sizeof(why));
        if (why[0] == '\0') {
            fprintf(c->out, "PASS %s: %s\n", name, tname);
            tally->passed++;
        } else {
            fprintf(c->out, "FAIL %s: %s: %s\n", name, tname, why);
            pdp_pc_print_indented(c->out, t, "    ");
            tally->failed++;
        }
    }
out:
    pdp_trace_destroy(t);
    tg_json_doc_destroy(doc);
}

static int
pdp_pc_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pdp_pc_tests walks DIR's *.test.json in name order. */
static void
pdp_pc_tests(pdp_pc *c, const char *dir, bool run, pdp_pc_tally *tally)
{
    DIR           *d = opendir(dir);
    struct dirent *de;
    char         **names = NULL;
    size_t         n     = 0;
    size_t         cap   = 0;

    if (d == NULL) {
        return; /* pdp_bundle_load already said why */
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 10 ||
            strcmp(de->d_name + len - 10, ".test.json") != 0) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn   = realloc(names, ncap * sizeof(*nn));
            if (nn == NULL) {
                break;
            }
            names = nn;
            cap   = ncap;
        }
        if ((names[n] = strdup(de->d_name)) != NULL) {
            n++;
        }
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof(*names), pdp_pc_name_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        pdp_pc_test_file(c, dir, names[i], run, tally);
        free(names[i]);
    }
    free(names);
}

/* ---- commands ------------------------------------------------------------ */

static int
pdp_pc_check(pdp_pc *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", NULL};
    pdp_pc_opts              o;
    pdp_pc_tally             tally = {0};
    int                      ec;

    if ((ec = pdp_pc_parse(c, argc, argv, flags, true, &o)) != 0) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_pc_usage_check, c->out);
        return PDP_PC_EXIT_OK;
    }
    if (o.dir == NULL) {
        return pdp_pc_usage_error(c, "which bundle? pass its directory, "
                                     "e.g. policies/default");
    }
    if ((ec = pdp_pc_config(c, &o)) != 0 || (ec = pdp_pc_load(c, o.dir)) != 0) {
        return ec;
    }
    pdp_pc_tests(c, o.dir, false, &tally);
    {
        char         path[1024];
        tg_pricing *pr = NULL;
        FILE        *f;
        snprintf(path, sizeof(path), "%s/pricing.json", o.dir);
        if ((f = fopen(path, "r")) != NULL) {
            fclose(f);
            if (tg_pricing_load(&pr, path, c->msg, PDP_PC_ERR_MAX) != TG_OK) {
                fprintf(c->err, "%s\n", c->msg);
                tally.errors++;
            }
            tg_pricing_destroy(pr);
        }
    }
    if (tally.errors > 0) {
        fprintf(c->err,
                "tollgate-pdp check: %s: %d error%s in test or "
                "pricing files\n",
                o.dir, tally.errors, tally.errors == 1 ? "" : "s");
        return PDP_PC_EXIT_FAIL;
    }
    fprintf(c->out, "ok: bundle %s revision %llu, %zu rule%s (hash %s)\n",
            pdp_bundle_name(c->b),
            (unsigned long long)pdp_bundle_revision(c->b),
            pdp_bundle_rule_count(c->b),
            pdp_bundle_rule_count(c->b) == 1 ? "" : "s", pdp_bundle_hash(c->b));
    return PDP_PC_EXIT_OK;
}

/* pdp_pc_test_run compiles dir against c->cfg, runs its tests and prints
 * the summary. */
static int
pdp_pc_test_run(pdp_pc *c, const char *dir)
{
    pdp_pc_tally tally = {0};
    int          ec;

    if ((ec = pdp_pc_load(c, dir)) != 0) {
        return ec;
    }
    pdp_pc_tests(c, dir, true, &tally);
    /* A malformed case cannot pass: it counts as one failed case, however
     * many mistakes it has. */
    fprintf(c->out, "%d passed, %d failed\n", tally.passed,
            tally.failed + tally.malformed);
    return tally.failed + tally.malformed > 0 ? PDP_PC_EXIT_FAIL
                                              : PDP_PC_EXIT_OK;
}

static int
pdp_pc_test(pdp_pc *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", NULL};
    pdp_pc_opts              o;
    int                      ec;

    if ((ec = pdp_pc_parse(c, argc, argv, flags, true, &o)) != 0) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_pc_usage_test, c->out);
        return PDP_PC_EXIT_OK;
    }
    if (o.dir == NULL) {
        return pdp_pc_usage_error(c, "which bundle? pass its directory, "
                                     "e.g. policies/default");
    }
    if ((ec = pdp_pc_config(c, &o)) != 0) {
        return ec;
    }
    return pdp_pc_test_run(c, o.dir);
}

static void
pdp_pc_eval_text(pdp_pc *c, const pdp_attrs *a, const pdp_policy_result *r,
                 const pdp_trace *t)
{
    const char *ids[TG_MSG_TARGETS_MAX + 64];
    size_t n    = pdp_pc_effective_route(c, a, r, ids, TG_MSG_TARGETS_MAX + 64);
    int    ndet = 0;
    int    naud = 0;

    if (r->verdict == TG_VERDICT_ALLOW) {
        fprintf(c->out, "decision: allow\n");
    } else {
        fprintf(c->out, "decision: deny\n");
        fprintf(c->out, "status:   %u\n", r->status);
        fprintf(c->out, "code:     %s\n", r->error_code);
        fprintf(c->out, "message:  %s\n", r->message);
    }
    fprintf(c->out, "rules:    ");
    for (uint32_t i = 0; i < r->n_matched; i++) {
        if (r->matched[i].enforced) {
            fprintf(c->out, "%s%s", ndet++ ? ", " : "", r->matched[i].rule_id);
        }
    }
    fprintf(c->out, "%s\n", ndet ? "" : "(none: the bundle default decided)");
    fprintf(c->out, "audit:    ");
    for (uint32_t i = 0; i < r->n_matched; i++) {
        if (!r->matched[i].enforced) {
            fprintf(c->out, "%s%s", naud++ ? ", " : "", r->matched[i].rule_id);
        }
    }
    fprintf(c->out, "%s\n", naud ? "" : "(none)");
    if (r->verdict == TG_VERDICT_ALLOW) {
        fprintf(c->out, "route:    ");
        for (size_t i = 0; i < n; i++) {
            fprintf(c->out, "%s%s", i ? ", " : "", ids[i]);
        }
        if (r->route_restricted) {
            fprintf(c->out, " (route rules, strategy %s)\n",
                    pdp_strategy_name(r->strategy));
        } else if (c->cfg == NULL) {
            fprintf(c->out, "(catalog order; pass --config to list it)\n");
        } else {
            fprintf(c->out, "%s(catalog order: no route rule matched)\n",
                    n ? " " : "no deployment serves this model ");
        }
    }
    fprintf(c->out, "capture:  %s\n", pdp_capture_name(r->capture_level));
    fprintf(c->out, "revision: %llu (bundle %s, hash %s)\n",
            (unsigned long long)pdp_bundle_revision(c->b),
            pdp_bundle_name(c->b), pdp_bundle_hash(c->b));
    if (t != NULL) {
        fprintf(c->out, "\n");
        pdp_trace_print(t, c->out);
    }
}

static void
pdp_pc_eval_json(pdp_pc *c, const pdp_attrs *a, const pdp_policy_result *r,
                 const pdp_trace *t)
{
    const char *ids[TG_MSG_TARGETS_MAX + 64];
    size_t n   = pdp_pc_effective_route(c, a, r, ids, TG_MSG_TARGETS_MAX + 64);
    cJSON *o   = cJSON_CreateObject();
    cJSON *det = cJSON_CreateArray();
    cJSON *aud = cJSON_CreateArray();
    cJSON *rt  = cJSON_CreateArray();
    char  *s;

    cJSON_AddStringToObject(o, "decision",
                            r->verdict == TG_VERDICT_ALLOW ? "allow" : "deny");
    if (r->verdict != TG_VERDICT_ALLOW) {
        cJSON_AddNumberToObject(o, "status", r->status);
        cJSON_AddStringToObject(o, "code", r->error_code);
        cJSON_AddStringToObject(o, "message", r->message);
    }
    for (uint32_t i = 0; i < r->n_matched; i++) {
        cJSON_AddItemToArray(r->matched[i].enforced ? det : aud,
                             cJSON_CreateString(r->matched[i].rule_id));
    }
    cJSON_AddItemToObject(o, "rules", det);
    cJSON_AddItemToObject(o, "audit", aud);
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(rt, cJSON_CreateString(ids[i]));
    }
    cJSON_AddItemToObject(o, "route", rt);
    cJSON_AddBoolToObject(o, "route_restricted", r->route_restricted);
    if (r->route_restricted) {
        cJSON_AddStringToObject(o, "strategy", pdp_strategy_name(r->strategy));
    }
    cJSON_AddStringToObject(o, "capture", pdp_capture_name(r->capture_level));
    cJSON_AddStringToObject(o, "bundle", pdp_bundle_name(c->b));
    cJSON_AddNumberToObject(o, "revision", (double)pdp_bundle_revision(c->b));
    cJSON_AddStringToObject(o, "hash", pdp_bundle_hash(c->b));
    if (t != NULL) {
        char  *text = NULL;
        size_t len  = 0;
        FILE  *m    = open_memstream(&text, &len);
        if (m != NULL) {
            pdp_trace_print(t, m);
            fclose(m);
            cJSON_AddStringToObject(o, "explain", text);
            free(text);
        }
    }
    if ((s = cJSON_PrintUnformatted(o)) != NULL) {
        fprintf(c->out, "%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(o);
}

static int
pdp_pc_eval(pdp_pc *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", "bundle",  "input",
                                        "format", "explain", NULL};
    pdp_pc_opts              o;
    tg_json_doc             *doc = NULL;
    pdp_trace               *t   = NULL;
    pdp_attrs                a;
    pdp_policy_result        r;
    char                     msg[1024];
    int                      ec;

    if ((ec = pdp_pc_parse(c, argc, argv, flags, false, &o)) != 0) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_pc_usage_eval, c->out);
        return PDP_PC_EXIT_OK;
    }
    if (o.bundle == NULL || o.input == NULL) {
        return pdp_pc_usage_error(c, "--bundle DIR and --input FILE are both "
                                     "needed");
    }
    if ((ec = pdp_pc_config(c, &o)) != 0) {
        return ec;
    }
    if (tg_json_doc_load(&doc, o.input, 1u << 20, msg, sizeof(msg)) != TG_OK ||
        pdp_attrs_from_json(&a, doc, tg_json_doc_root(doc), msg, sizeof(msg)) !=
            TG_OK) {
        fprintf(c->err, "%s\n", msg);
        ec = PDP_PC_EXIT_USAGE;
        goto out;
    }
    if ((ec = pdp_pc_load(c, o.bundle)) != 0) {
        goto out;
    }
    if (o.explain && (t = pdp_trace_create()) == NULL) {
        fprintf(c->err, "tollgate-pdp eval: out of memory\n");
        ec = PDP_PC_EXIT_FAIL;
        goto out;
    }
    pdp_bundle_eval(c->b, &a, &r, t);
    if (o.format != NULL && strcmp(o.format, "json") == 0) {
        pdp_pc_eval_json(c, &a, &r, t);
    } else {
        pdp_pc_eval_text(c, &a, &r, t);
    }
out:
    pdp_trace_destroy(t);
    tg_json_doc_destroy(doc);
    return ec;
}

int
pdp_policy_test(const tg_config *cfg, const char *dir, FILE *out, FILE *err)
{
    /* cfg is only read; c.cfg is not destroyed below. */
    pdp_pc c = {out, err, "test", (tg_config *)cfg, NULL, NULL};
    int    ec;

    if ((c.msg = malloc(PDP_PC_ERR_MAX)) == NULL) {
        fprintf(err, "tollgate-pdp test: out of memory\n");
        return PDP_PC_EXIT_FAIL;
    }
    c.msg[0] = '\0';
    ec       = pdp_pc_test_run(&c, dir);
    pdp_bundle_unref(c.b);
    free(c.msg);
    return ec;
}

int
pdp_policy_cli(const char *cmd, int argc, char **argv, FILE *out, FILE *err)
{
    pdp_pc c = {out, err, cmd, NULL, NULL, NULL};
    int    ec;

    if ((c.msg = malloc(PDP_PC_ERR_MAX)) == NULL) {
        fprintf(err, "tollgate-pdp %s: out of memory\n", cmd);
        return PDP_PC_EXIT_FAIL;
    }
    c.msg[0] = '\0';
    if (strcmp(cmd, "check") == 0) {
        ec = pdp_pc_check(&c, argc, argv);
    } else if (strcmp(cmd, "test") == 0) {
        ec = pdp_pc_test(&c, argc, argv);
    } else if (strcmp(cmd, "eval") == 0) {
        ec = pdp_pc_eval(&c, argc, argv);
    } else {
        fprintf(err,
                "tollgate-pdp: unknown policy command \"%s\"; expected "
                "check, test or eval\n",
                cmd);
        ec = PDP_PC_EXIT_USAGE;
    }
    pdp_bundle_unref(c.b);
    tg_config_destroy(c.cfg);
    free(c.msg);
    return ec;
}
