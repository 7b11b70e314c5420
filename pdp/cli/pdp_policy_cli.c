/* pdp_policy_cli.c - check, test and eval. Flags are parsed by hand, as in
 * pdp_cli.c, so tests can run many command lines in one process. A bundle
 * that does not compile is exit 1 (like a failing test: the thing checked
 * is wrong); bad flags, an unreadable config or input file are exit 2.
 * A deny from `eval` is a result, so it exits 0. */
#include "pdp_policy_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_bundle_guard.h"
#include "pdp_bundle_test.h"
#include "pdp_cli_flags.h"
#include "pdp_policy.h"
#include "pdp_policy_int.h"
#include "pdp_store.h"
#include "tg_pricing.h"
#include "tg_config.h"
#include "tg_json.h"

#define PDP_PC_ERR_MAX (64 * 1024)

typedef struct pdp_pc_opts {
    const char *config;
    const char *bundle;
    const char *input;
    const char *format;
    bool        explain;
    bool        jsonl; /* eval: --input holds one request a line */
    bool        help;
    const char *dir; /* the positional DIR */
} pdp_pc_opts;

typedef struct pdp_pc {
    pdp_cli_io  io;
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
    "                         [--explain] [--format text|json] [--jsonl]\n"
    "\n"
    "Evaluates one request against the bundle. FILE holds the request's\n"
    "attributes, as the \"input\" of a test case:\n"
    "  {\"principal\": {...}, \"tenant\": {...}, \"request\": {...},\n"
    "   \"time\": \"2026-11-28T10:00:00Z\"}\n"
    "--jsonl: FILE (\"-\": standard input) holds one such object a line;\n"
    "each gets one line of JSON (as --format json, with \"line\"), a line\n"
    "that cannot be read {\"line\": N, \"error\": \"...\"}; blank lines\n"
    "are skipped.\n"
    "--explain adds every rule's evaluation: matched or not, why, and the\n"
    "attribute values it read.\n"
    "Exit 0 (allow or deny), 1 the bundle has errors, 2 usage or input "
    "error (with --jsonl: some line could not be read; the others are\n"
    "evaluated).\n";

/* pdp_pc_parse reads a policy command's flags into o: DIR, the one
 * operand, when want_dir. */
static int
pdp_pc_parse(pdp_pc *c, int argc, char **argv, const pdp_cli_flag flags[],
             bool want_dir, pdp_pc_opts *o)
{
    static const char *const formats[] = {"text", "json", NULL};
    pdp_cli_args             a         = {0};
    int ec = pdp_cli_parse(&c->io, argc, argv, flags, want_dir ? 1 : 0, &a);

    memset(o, 0, sizeof(*o));
    if (ec != PDP_EXIT_OK) {
        return ec;
    }
    o->config  = pdp_cli_val(&a, "config");
    o->bundle  = pdp_cli_val(&a, "bundle");
    o->input   = pdp_cli_val(&a, "input");
    o->format  = pdp_cli_val(&a, "format");
    o->explain = pdp_cli_val(&a, "explain") != NULL;
    o->jsonl   = pdp_cli_val(&a, "jsonl") != NULL;
    o->help    = a.help;
    o->dir     = a.npos > 0 ? a.pos[0] : NULL;
    return pdp_cli_format(&c->io, o->format, formats);
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
        return PDP_EXIT_OK;
    }
    if (tg_config_load(&c->cfg, path, msg, sizeof(msg)) != TG_OK) {
        fprintf(c->io.err, "%s\n", msg);
        return PDP_EXIT_USAGE;
    }
    return PDP_EXIT_OK;
}

static int
pdp_pc_load(pdp_pc *c, const char *dir)
{
    tg_err rv;

    if (c->cfg == NULL &&
        pdp_bundle_fixture(dir, &c->cfg, c->msg, PDP_PC_ERR_MAX) != TG_OK) {
        /* Without --config, a bundle with its own catalog.json compiles
         * against it; one without compiles without a catalog. */
        c->cfg = NULL;
    }
    rv = pdp_bundle_load(&c->b, dir, c->cfg, c->msg, PDP_PC_ERR_MAX);

    if (rv == TG_OK) {
        return PDP_EXIT_OK;
    }
    if (c->msg[0] != '\0') {
        fprintf(c->io.err, "%s\n", c->msg);
    } else {
        fprintf(c->io.err, "%s: %s\n", dir, tg_strerror(rv));
    }
    fprintf(c->io.err,
            "tollgate-pdp %s: %s: the bundle has errors; nothing "
            "was loaded\n",
            c->io.cmd, dir);
    return PDP_EXIT_FAIL;
}

/* ---- printing a test report --------------------------------------------- */

/* pdp_pc_messages prints the mistakes found in test files. */
static void
pdp_pc_messages(pdp_pc *c, const pdp_bundle_tests *t)
{
    if (t->messages.len > 0) {
        fputs(t->messages.data, c->io.err);
    }
    if (tg_buf_error(&t->messages) != TG_OK) {
        fprintf(c->io.err,
                "tollgate-pdp %s: out of memory: not every mistake "
                "is listed\n",
                c->io.cmd);
    }
}

/* pdp_pc_print_indented prints text (lines) with indent before each. */
static void
pdp_pc_print_indented(FILE *f, const char *text, const char *indent)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, "\n");
        fprintf(f, "%s%.*s\n", indent, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* ---- commands ------------------------------------------------------------ */

/* pdp_pc_warnings prints what the bundle compiled with but is likely a
 * mistake, "warning: FILE:LINE:COL: ..." a line, on stderr: the bundle
 * is still valid (check exits 0). */
static void
pdp_pc_warnings(pdp_pc *c)
{
    const char *w = pdp_bundle_warnings(c->b);

    while (*w != '\0') {
        size_t n = strcspn(w, "\n");
        fprintf(c->io.err, "warning: %.*s\n", (int)n, w);
        w += n + (w[n] == '\n');
    }
}

static int pdp_pc_check_lists(pdp_pc *c, const char *dir);

static int
pdp_pc_check(pdp_pc *c, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_pc_opts               o;
    pdp_bundle_tests          tally;
    int                       errors;
    int                       ec;

    if ((ec = pdp_pc_parse(c, argc, argv, flags, true, &o)) != 0) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_pc_usage_check, c->io.out);
        return PDP_EXIT_OK;
    }
    if (o.dir == NULL) {
        return pdp_cli_usage_error(&c->io, "which bundle? pass its directory, "
                                           "e.g. policies/default");
    }
    if ((ec = pdp_pc_config(c, &o)) != 0 || (ec = pdp_pc_load(c, o.dir)) != 0) {
        return ec;
    }
    pdp_bundle_tests_init(&tally);
    pdp_bundle_tests_run(c->b, c->cfg, o.dir, false, &tally);
    pdp_pc_messages(c, &tally);
    errors = tally.errors;
    {
        char        path[1024];
        tg_pricing *pr = NULL;
        FILE       *f;
        snprintf(path, sizeof(path), "%s/pricing.json", o.dir);
        if ((f = fopen(path, "r")) != NULL) {
            fclose(f);
            if (tg_pricing_load(&pr, path, c->msg, PDP_PC_ERR_MAX) != TG_OK) {
                fprintf(c->io.err, "%s\n", c->msg);
                errors++;
            }
            tg_pricing_destroy(pr);
        }
    }
    pdp_bundle_tests_fini(&tally);
    errors += pdp_pc_check_lists(c, o.dir);
    if (errors > 0) {
        fprintf(c->io.err,
                "tollgate-pdp check: %s: %d error%s in test or "
                "pricing files, or term lists\n",
                o.dir, errors, errors == 1 ? "" : "s");
        return PDP_EXIT_FAIL;
    }
    fprintf(c->io.out, "ok: bundle %s revision %llu, %zu rule%s (hash %s)\n",
            pdp_bundle_name(c->b),
            (unsigned long long)pdp_bundle_revision(c->b),
            pdp_bundle_rule_count(c->b),
            pdp_bundle_rule_count(c->b) == 1 ? "" : "s", pdp_bundle_hash(c->b));
    pdp_pc_warnings(c);
    return PDP_EXIT_OK;
}

/* pdp_pc_check_lists checks that the term lists the bundle's guardrails
 * name exist in the config's state directory (a bundle naming a missing
 * list is not activated); returns the errors. Without a config or a state
 * directory it says what it could not check. */
static int
pdp_pc_check_lists(pdp_pc *c, const char *dir)
{
    const char *const *names;
    size_t             n = pdp_bundle_guard_lists(c->b, &names);
    pdp_store         *st = NULL;
    struct stat        sb;
    int                errors = 0;
    char               msg[512];

    if (n == 0) {
        return 0;
    }
    if (c->cfg == NULL || c->cfg->pdp.state_dir == NULL ||
        stat(c->cfg->pdp.state_dir, &sb) != 0 ||
        pdp_store_open(&st, c->cfg->pdp.state_dir, c->cfg->pdp.map_size_mb,
                       msg, sizeof(msg)) != TG_OK) {
        fprintf(c->io.err,
                "note: %s: the term lists its guardrails name (%s%s) were not "
                "checked: pass --config with the PDP's state directory\n",
                dir, names[0], n > 1 ? ", ..." : "");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        pdp_list_terms lt;
        memset(&lt, 0, sizeof(lt));
        if (pdp_store_list_get(st, names[i], &lt) == TG_ENOTFOUND) {
            fprintf(c->io.err,
                    "%s: guardrails: term list \"%s\" not found in %s; "
                    "create it with tollgate-pdp lists set %s --file "
                    "terms.txt\n",
                    dir, names[i], c->cfg->pdp.state_dir, names[i]);
            errors++;
        }
        pdp_list_terms_fini(&lt);
    }
    pdp_store_close(st);
    return errors;
}

/* pdp_pc_test_run compiles dir against c->cfg, runs its tests and prints
 * the summary. */
static int
pdp_pc_test_run(pdp_pc *c, const char *dir)
{
    pdp_bundle_tests t;
    tg_buf           mismatch;
    tg_config       *fix = NULL;
    char             why[256];
    int              ec;

    if (pdp_bundle_fixture(dir, &fix, why, sizeof(why)) == TG_OK) {
        fprintf(c->io.out, "(against the bundle's own %s)\n",
                PDP_BUNDLE_CATALOG);
    }
    tg_config_destroy(fix);
    if ((ec = pdp_pc_load(c, dir)) != 0) {
        return ec;
    }
    pdp_bundle_tests_init(&t);
    tg_buf_init(&mismatch, 1u << 20);
    pdp_bundle_tests_hermetic(c->b, c->cfg, dir, &t, &mismatch);
    if (mismatch.len > 0) {
        tg_buf_add(&mismatch, "", 1);
        for (char *l = mismatch.data; l != NULL && *l != '\0';) {
            char *nl = strchr(l, '\n');
            fprintf(c->io.err, "warning: %.*s\n",
                    (int)(nl != NULL ? nl - l : (long)strlen(l)), l);
            l = nl != NULL ? nl + 1 : NULL;
        }
    }
    tg_buf_fini(&mismatch);
    pdp_pc_messages(c, &t);
    for (size_t i = 0; i < t.n; i++) {
        const pdp_bundle_case *k = &t.cases[i];
        if (k->passed) {
            fprintf(c->io.out, "PASS %s: %s\n", k->file, k->name);
            continue;
        }
        fprintf(c->io.out, "FAIL %s: %s: %s\n", k->file, k->name, k->why);
        pdp_pc_print_indented(c->io.out, k->trace, "    ");
    }
    /* A malformed case cannot pass: it counts as one failed case, however
     * many mistakes it has. */
    fprintf(c->io.out, "%d passed, %d failed\n", t.passed,
            t.failed + t.malformed);
    ec = t.failed + t.malformed > 0 ? PDP_EXIT_FAIL : PDP_EXIT_OK;
    pdp_bundle_tests_fini(&t);
    return ec;
}

static int
pdp_pc_test(pdp_pc *c, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_pc_opts               o;
    int                       ec;

    if ((ec = pdp_pc_parse(c, argc, argv, flags, true, &o)) != 0) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_pc_usage_test, c->io.out);
        return PDP_EXIT_OK;
    }
    if (o.dir == NULL) {
        return pdp_cli_usage_error(&c->io, "which bundle? pass its directory, "
                                           "e.g. policies/default");
    }
    if ((ec = pdp_pc_config(c, &o)) != 0) {
        return ec;
    }
    return pdp_pc_test_run(c, o.dir);
}

/* pdp_pc_guard runs the guardrails r matched on the input's "content"
 * (term lists empty: a test file's "lists" gives them); false when there
 * is no content or no guardrail rule. */
static bool
pdp_pc_guard(pdp_pc *c, const pdp_policy_result *r, const cJSON *content,
             pdp_guard_run *run)
{
    const cJSON        *text  = cJSON_GetObjectItemCaseSensitive(content, "text");
    const cJSON        *stage = cJSON_GetObjectItemCaseSensitive(content, "stage");
    const tg_guard_set *gs    = pdp_bundle_guard_set(c->b);

    if (!cJSON_IsString(text) || gs == NULL) {
        return false;
    }
    return pdp_guard_run_text(gs, r,
                              cJSON_IsString(stage) &&
                                      strcmp(stage->valuestring, "output") == 0
                                  ? TG_GUARD_OUTPUT
                                  : TG_GUARD_INPUT,
                              text->valuestring, strlen(text->valuestring),
                              run) == TG_OK;
}

static void
pdp_pc_guard_json(pdp_pc *c, const pdp_policy_result *r, const cJSON *content,
                  cJSON *o)
{
    const tg_guard_set *gs = pdp_bundle_guard_set(c->b);
    pdp_guard_run       run;
    cJSON              *g, *hits;

    if (!pdp_pc_guard(c, r, content, &run)) {
        return;
    }
    g = cJSON_AddObjectToObject(o, "guardrails");
    cJSON_AddStringToObject(g, "action", run.action);
    cJSON_AddStringToObject(g, "redacted", run.redacted);
    hits = cJSON_AddArrayToObject(g, "hits");
    for (size_t i = 0; i < run.hits.n; i++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "rule",
                                tg_guard_set_rule_id(gs, run.hits.v[i].rule));
        cJSON_AddStringToObject(
            h, "detector", tg_guard_set_detector_name(gs, run.hits.v[i].detector));
        cJSON_AddNumberToObject(h, "start", run.hits.v[i].start);
        cJSON_AddNumberToObject(h, "end", run.hits.v[i].end);
        cJSON_AddItemToArray(hits, h);
    }
    pdp_guard_run_fini(&run);
}

static void
pdp_pc_eval_text(pdp_pc *c, const pdp_attrs *a, const pdp_policy_result *r,
                 const pdp_trace *t, const cJSON *content)
{
    pdp_guard_run run;

    const char *ids[TG_MSG_TARGETS_MAX + 64];
    size_t n    = pdp_bundle_route(c->cfg, a, r, ids, TG_MSG_TARGETS_MAX + 64);
    int    ndet = 0;
    int    naud = 0;

    if (r->verdict == TG_VERDICT_ALLOW) {
        fprintf(c->io.out, "decision: allow\n");
    } else {
        fprintf(c->io.out, "decision: deny\n");
        fprintf(c->io.out, "status:   %u\n", r->status);
        fprintf(c->io.out, "code:     %s\n", r->error_code);
        fprintf(c->io.out, "message:  %s\n", r->message);
    }
    fprintf(c->io.out, "rules:    ");
    for (uint32_t i = 0; i < r->n_matched; i++) {
        if (r->matched[i].enforced) {
            fprintf(c->io.out, "%s%s", ndet++ ? ", " : "",
                    r->matched[i].rule_id);
        }
    }
    fprintf(c->io.out, "%s\n",
            ndet ? "" : "(none: the bundle default decided)");
    fprintf(c->io.out, "audit:    ");
    for (uint32_t i = 0; i < r->n_matched; i++) {
        if (!r->matched[i].enforced) {
            fprintf(c->io.out, "%s%s", naud++ ? ", " : "",
                    r->matched[i].rule_id);
        }
    }
    fprintf(c->io.out, "%s\n", naud ? "" : "(none)");
    if (r->verdict == TG_VERDICT_ALLOW) {
        fprintf(c->io.out, "route:    ");
        for (size_t i = 0; i < n; i++) {
            fprintf(c->io.out, "%s%s", i ? ", " : "", ids[i]);
        }
        if (r->route_restricted) {
            fprintf(c->io.out, " (route rules, strategy %s)\n",
                    pdp_strategy_name(r->strategy));
        } else if (c->cfg == NULL) {
            fprintf(c->io.out, "(catalog order; pass --config to list it)\n");
        } else {
            fprintf(c->io.out, "%s(catalog order: no route rule matched)\n",
                    n ? " " : "no deployment serves this model ");
        }
    }
    fprintf(c->io.out, "capture:  %s\n", pdp_capture_name(r->capture_level));
    fprintf(c->io.out, "revision: %llu (bundle %s, hash %s)\n",
            (unsigned long long)pdp_bundle_revision(c->b),
            pdp_bundle_name(c->b), pdp_bundle_hash(c->b));
    if (pdp_pc_guard(c, r, content, &run)) {
        pdp_guard_run_print(pdp_bundle_guard_set(c->b), &run, c->io.out);
        pdp_guard_run_fini(&run);
    }
    if (t != NULL) {
        fprintf(c->io.out, "\n");
        pdp_trace_print(t, c->io.out);
    }
}

/* pdp_pc_eval_json prints r as one line of JSON; line > 0 (--jsonl) adds
 * the input line it answers. */
static void
pdp_pc_eval_json(pdp_pc *c, const pdp_attrs *a, const pdp_policy_result *r,
                 const pdp_trace *t, long line, const cJSON *content)
{
    const char *ids[TG_MSG_TARGETS_MAX + 64];
    size_t n   = pdp_bundle_route(c->cfg, a, r, ids, TG_MSG_TARGETS_MAX + 64);
    cJSON *o   = cJSON_CreateObject();
    cJSON *det = cJSON_CreateArray();
    cJSON *aud = cJSON_CreateArray();
    cJSON *rt  = cJSON_CreateArray();
    char  *s;

    if (line > 0) {
        cJSON_AddNumberToObject(o, "line", (double)line);
    }
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
    pdp_pc_guard_json(c, r, content, o);
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
        fprintf(c->io.out, "%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(o);
}

/* pdp_pc_eval_line evaluates the request on one line of a --jsonl input
 * (line n of path) and prints its result or why it cannot be read.
 * False when it could not be read. */
static bool
pdp_pc_eval_line(pdp_pc *c, const char *path, long n, const char *text,
                 size_t len, pdp_trace *t)
{
    tg_json_doc      *doc = NULL;
    pdp_attrs         a;
    pdp_policy_result r;
    char              msg[1024];
    bool              ok;

    ok = tg_json_doc_parse(&doc, "", text, len, msg, sizeof(msg)) == TG_OK &&
         pdp_attrs_from_json(&a, doc, tg_json_doc_root(doc), msg,
                             sizeof(msg)) == TG_OK;
    if (ok) {
        pdp_bundle_eval(c->b, &a, &r, t);
        pdp_pc_eval_json(c, &a, &r, t, n,
                         cJSON_GetObjectItemCaseSensitive(
                             tg_json_doc_root(doc), "content"));
    } else {
        /* msg is ":1:COL: what" (one line, no name): say where it is. */
        cJSON *o = cJSON_CreateObject();
        char   where[64];
        char  *s   = NULL;
        char  *col = msg[0] == ':' ? strchr(msg + 1, ':') : NULL;
        char  *what;
        snprintf(where, sizeof(where), "%ld", n);
        fprintf(c->io.err, "%s:%s%s\n", path, where, col != NULL ? col : msg);
        cJSON_AddNumberToObject(o, "line", (double)n);
        what = col != NULL ? strchr(col + 1, ':') : NULL;
        cJSON_AddStringToObject(o, "error", what != NULL ? what + 2 : msg);
        if ((s = cJSON_PrintUnformatted(o)) != NULL) {
            fprintf(c->io.out, "%s\n", s);
            cJSON_free(s);
        }
        cJSON_Delete(o);
    }
    tg_json_doc_destroy(doc);
    return ok;
}

/* pdp_pc_eval_jsonl evaluates every request of a --jsonl input. */
static int
pdp_pc_eval_jsonl(pdp_pc *c, const pdp_pc_opts *o, pdp_trace *t)
{
    bool    stdin_ = strcmp(o->input, "-") == 0;
    FILE   *f      = stdin_ ? stdin : fopen(o->input, "r");
    char   *line   = NULL;
    size_t  cap    = 0;
    ssize_t len;
    long    n  = 0;
    int     ec = PDP_EXIT_OK;

    if (f == NULL) {
        fprintf(c->io.err, "tollgate-pdp eval: cannot read %s: %s\n", o->input,
                strerror(errno));
        return PDP_EXIT_USAGE;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        n++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0 || strspn(line, " \t") == (size_t)len) {
            continue;
        }
        if (!pdp_pc_eval_line(c, o->input, n, line, (size_t)len, t)) {
            ec = PDP_EXIT_USAGE;
        }
    }
    if (ferror(f)) {
        fprintf(c->io.err, "tollgate-pdp eval: reading %s failed at line %ld\n",
                o->input, n + 1);
        ec = PDP_EXIT_USAGE;
    }
    free(line);
    if (!stdin_) {
        fclose(f);
    }
    return ec;
}

static int
pdp_pc_eval(pdp_pc *c, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE},
                                         {"bundle", PDP_CLI_VALUE},
                                         {"input", PDP_CLI_VALUE},
                                         {"format", PDP_CLI_VALUE},
                                         {"explain", PDP_CLI_SWITCH},
                                         {"jsonl", PDP_CLI_SWITCH},
                                         {NULL, 0}};
    pdp_pc_opts               o;
    tg_json_doc              *doc = NULL;
    pdp_trace                *t   = NULL;
    pdp_attrs                 a;
    pdp_policy_result         r;
    char                      msg[1024];
    int                       ec;

    if ((ec = pdp_pc_parse(c, argc, argv, flags, false, &o)) != 0) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_pc_usage_eval, c->io.out);
        return PDP_EXIT_OK;
    }
    if (o.bundle == NULL || o.input == NULL) {
        return pdp_cli_usage_error(&c->io,
                                   "--bundle DIR and --input FILE are both "
                                   "needed");
    }
    if (o.jsonl && o.format != NULL && strcmp(o.format, "json") != 0) {
        return pdp_cli_usage_error(&c->io, "--jsonl prints JSON lines; leave "
                                           "out --format text");
    }
    if ((ec = pdp_pc_config(c, &o)) != 0) {
        return ec;
    }
    if (o.jsonl) {
        if ((ec = pdp_pc_load(c, o.bundle)) == 0) {
            if (o.explain && (t = pdp_trace_create()) == NULL) {
                fprintf(c->io.err, "tollgate-pdp eval: out of memory\n");
                return PDP_EXIT_FAIL;
            }
            ec = pdp_pc_eval_jsonl(c, &o, t);
        }
        goto out;
    }
    if (tg_json_doc_load(&doc, o.input, 1u << 20, msg, sizeof(msg)) != TG_OK ||
        pdp_attrs_from_json(&a, doc, tg_json_doc_root(doc), msg, sizeof(msg)) !=
            TG_OK) {
        fprintf(c->io.err, "%s\n", msg);
        ec = PDP_EXIT_USAGE;
        goto out;
    }
    if ((ec = pdp_pc_load(c, o.bundle)) != 0) {
        goto out;
    }
    if (o.explain && (t = pdp_trace_create()) == NULL) {
        fprintf(c->io.err, "tollgate-pdp eval: out of memory\n");
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    pdp_bundle_eval(c->b, &a, &r, t);
    if (o.format != NULL && strcmp(o.format, "json") == 0) {
        pdp_pc_eval_json(c, &a, &r, t, 0,
                         cJSON_GetObjectItemCaseSensitive(
                             tg_json_doc_root(doc), "content"));
    } else {
        pdp_pc_eval_text(c, &a, &r, t,
                         cJSON_GetObjectItemCaseSensitive(
                             tg_json_doc_root(doc), "content"));
    }
out:
    pdp_trace_destroy(t);
    tg_json_doc_destroy(doc);
    return ec;
}

int
pdp_policy_cli(const char *cmd, int argc, char **argv, FILE *out, FILE *err)
{
    pdp_pc c = {{out, err, cmd}, NULL, NULL, NULL};
    int    ec;

    if ((c.msg = malloc(PDP_PC_ERR_MAX)) == NULL) {
        fprintf(err, "tollgate-pdp %s: out of memory\n", cmd);
        return PDP_EXIT_FAIL;
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
        ec = PDP_EXIT_USAGE;
    }
    pdp_bundle_unref(c.b);
    tg_config_destroy(c.cfg);
    free(c.msg);
    return ec;
}
