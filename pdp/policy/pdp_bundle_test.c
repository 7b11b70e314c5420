/* pdp_bundle_test.c - see pdp_bundle_test.h. */
#include "pdp_bundle_test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_bundle_guard.h"
#include "pdp_policy_int.h"
#include "tg_err.h"
#include "tg_json.h"

#define PDP_BT_MSG_MAX 16384 /* a fixture's compile errors */

#define PDP_BT_FILE_MAX (4u << 20)

/* One run: the bundle and catalog read, the report written. */
typedef struct pdp_bt {
    const pdp_bundle *b;
    const tg_config  *cfg;
    pdp_bundle_tests *t;
} pdp_bt;

/* pdp_bt_error keeps one mistake found in a test file. */
static void
pdp_bt_error(pdp_bt *c, const char *msg)
{
    tg_buf_addf(&c->t->messages, "%s\n", msg);
}

/* pdp_bt_record keeps one case's result: why is "" when it passed; a
 * failure keeps the evaluation's explanation too. */
static void
pdp_bt_record(pdp_bt *c, const char *file, const char *name, const char *why,
              const pdp_trace *tr)
{
    pdp_bundle_tests *t = c->t;
    pdp_bundle_case  *k;

    if (why[0] == '\0') {
        t->passed++;
    } else {
        t->failed++;
    }
    if (!tg_vec_reserve(&t->cases, &t->cap, t->n + 1, sizeof(*t->cases))) {
        tg_buf_fail(&t->messages, TG_ENOMEM); /* the counts still hold */
        return;
    }
    k = &t->cases[t->n++];
    memset(k, 0, sizeof(*k));
    snprintf(k->file, sizeof(k->file), "%s", file);
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->why, sizeof(k->why), "%s", why);
    k->passed = why[0] == '\0';
    if (!k->passed && tr != NULL) {
        size_t len = 0;
        FILE  *m   = open_memstream(&k->trace, &len);
        if (m != NULL) {
            pdp_trace_print(tr, m);
            fclose(m);
        }
    }
}

typedef struct pdp_bt_expect {
    int          decision; /* 1 allow, 2 deny, 0 not given */
    int64_t      status;   /* 0: not given */
    const char  *code;
    const cJSON *rules; /* NULL: not given */
    const cJSON *audit;
    const cJSON *route;
    int          capture; /* -1: not given */
    /* Guardrails on the case's "content": the action that wins, the text
     * after redaction, the detectors that hit. */
    const char  *guardrail;
    const char  *redacted;
    const cJSON *detectors;
} pdp_bt_expect;

static bool
pdp_bt_rule_exists(const pdp_bundle *b, const char *id)
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
pdp_bt_id_list(pdp_bt *c, const tg_json_doc *doc, const cJSON *v,
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
        pdp_bt_error(c, msg);
        (*nerr)++;
        return false;
    }
    for (const cJSON *e = v->child; e != NULL; e = e->next) {
        char msg[512];
        if (!cJSON_IsString(e)) {
            tg_json_errf(doc, e, msg, sizeof(msg),
                         "expect.%s: expected a string", what);
        } else if (strcmp(what, "route") != 0 &&
                   !pdp_bt_rule_exists(c->b, e->valuestring)) {
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
        pdp_bt_error(c, msg);
        (*nerr)++;
        ok = false;
    }
    return ok;
}

/* pdp_bt_expect_parse reads and checks one "expect"; errors go to err. */
static bool
pdp_bt_expect_parse(pdp_bt *c, const tg_json_doc *doc, const cJSON *e,
                    pdp_bt_expect *x, int *nerr)
{
    static const char *const keys[] = {
        "decision", "status",    "code",     "rules",     "audit", "route",
        "capture",  "guardrail", "redacted", "detectors", NULL};
    const char              *s      = NULL;
    char                     msg[1024];
    int                      before = *nerr;

    memset(x, 0, sizeof(*x));
    x->capture = -1;
    if (tg_json_only_keys(doc, e, "expect", keys, msg, sizeof(msg)) != TG_OK) {
        pdp_bt_error(c, msg);
        (*nerr)++;
        return false;
    }
    if (tg_json_get_string(doc, e, "expect", "decision", true, &s, msg,
                           sizeof(msg)) != TG_OK) {
        pdp_bt_error(c, msg);
        (*nerr)++;
    } else if (strcmp(s, "allow") == 0 || strcmp(s, "deny") == 0) {
        x->decision = s[0] == 'a' ? 1 : 2;
    } else {
        tg_json_errf(doc, cJSON_GetObjectItemCaseSensitive(e, "decision"), msg,
                     sizeof(msg),
                     "expect.decision: expected \"allow\" or \"deny\"");
        pdp_bt_error(c, msg);
        (*nerr)++;
    }
    if (tg_json_get_int(doc, e, "expect", "status", false, 400, 599, &x->status,
                        msg, sizeof(msg)) != TG_OK ||
        tg_json_get_string(doc, e, "expect", "code", false, &x->code, msg,
                           sizeof(msg)) != TG_OK) {
        pdp_bt_error(c, msg);
        (*nerr)++;
    }
    s = NULL;
    if (tg_json_get_string(doc, e, "expect", "capture", false, &s, msg,
                           sizeof(msg)) != TG_OK) {
        pdp_bt_error(c, msg);
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
            pdp_bt_error(c, msg);
            (*nerr)++;
        }
    }
    if (tg_json_get_string(doc, e, "expect", "guardrail", false, &x->guardrail,
                           msg, sizeof(msg)) != TG_OK ||
        tg_json_get_string(doc, e, "expect", "redacted", false, &x->redacted,
                           msg, sizeof(msg)) != TG_OK) {
        pdp_bt_error(c, msg);
        (*nerr)++;
    } else if (x->guardrail != NULL && strcmp(x->guardrail, "block") != 0 &&
               strcmp(x->guardrail, "redact") != 0 &&
               strcmp(x->guardrail, "audit") != 0 &&
               strcmp(x->guardrail, "pass") != 0) {
        tg_json_errf(doc, cJSON_GetObjectItemCaseSensitive(e, "guardrail"), msg,
                     sizeof(msg),
                     "expect.guardrail: expected \"block\", \"redact\", "
                     "\"audit\" or \"pass\"");
        pdp_bt_error(c, msg);
        (*nerr)++;
    }
    x->detectors = cJSON_GetObjectItemCaseSensitive(e, "detectors");
    if (x->detectors != NULL && !cJSON_IsArray(x->detectors)) {
        tg_json_errf(doc, x->detectors, msg, sizeof(msg),
                     "expect.detectors: expected a list of detector names");
        pdp_bt_error(c, msg);
        (*nerr)++;
    }
    x->rules = cJSON_GetObjectItemCaseSensitive(e, "rules");
    x->audit = cJSON_GetObjectItemCaseSensitive(e, "audit");
    x->route = cJSON_GetObjectItemCaseSensitive(e, "route");
    pdp_bt_id_list(c, doc, x->rules, "rules", nerr);
    pdp_bt_id_list(c, doc, x->audit, "audit", nerr);
    pdp_bt_id_list(c, doc, x->route, "route", nerr);
    return *nerr == before;
}

size_t
pdp_bundle_route(const tg_config *cfg, const pdp_attrs *a,
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
    for (size_t i = 0; cfg != NULL && i < cfg->n_deployments && n < cap; i++) {
        if (strcmp(cfg->deployments[i].model, a->model) == 0) {
            ids[n++] = cfg->deployments[i].id;
        }
    }
    return n;
}

static void
pdp_bt_list(char *buf, size_t cap, const char *const *ids, size_t n)
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
pdp_bt_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* pdp_bt_set_equal compares a JSON list of ids with got[] as sets; both
 * are rendered sorted into want_s / got_s. */
static bool
pdp_bt_set_equal(const cJSON *want, const char **got, size_t ngot, char *want_s,
                 char *got_s, size_t cap)
{
    const char *w[TG_MSG_RULES_MAX + 8];
    size_t      nw = 0;
    bool        eq;

    for (const cJSON *e = want->child; e != NULL && nw < TG_MSG_RULES_MAX + 8;
         e              = e->next) {
        w[nw++] = e->valuestring;
    }
    qsort(w, nw, sizeof(w[0]), pdp_bt_str_cmp);
    qsort(got, ngot, sizeof(got[0]), pdp_bt_str_cmp);
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
    pdp_bt_list(want_s, cap, w, nw);
    pdp_bt_list(got_s, cap, got, ngot);
    return eq;
}

static void pdp_bt_append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pdp_bt_append(char *buf, size_t cap, const char *fmt, ...)
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

/* pdp_bt_compare fills why with every way r differs from x ("" if none). */
static void
pdp_bt_compare(const pdp_bt *c, const pdp_bt_expect *x, const pdp_attrs *a,
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
            pdp_bt_append(why, cap, "expected deny, got allow");
        } else {
            pdp_bt_append(why, cap, "expected allow, got deny %u %s (\"%s\")",
                          r->status, r->error_code, r->message);
        }
    }
    /* Status and code belong to a deny; on an allow the decision line
     * above already says what is wrong. */
    if (!allow && x->status != 0 && (int64_t)r->status != x->status) {
        pdp_bt_append(why, cap, "expected status %lld, got %u",
                      (long long)x->status, r->status);
    }
    if (!allow && x->code != NULL && strcmp(x->code, r->error_code) != 0) {
        pdp_bt_append(why, cap, "expected code \"%s\", got \"%s\"", x->code,
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
        if (!pdp_bt_set_equal(want, got, n, ws, gs, sizeof(ws))) {
            pdp_bt_append(why, cap, "expected %s %s, got %s",
                          k == 0 ? "rules" : "audit", ws, gs);
        }
    }
    if (x->route != NULL) {
        const char *ids[TG_MSG_TARGETS_MAX + 64];
        const char *w[TG_MSG_TARGETS_MAX + 64];
        size_t      nw = 0;
        bool        eq;
        n = pdp_bundle_route(c->cfg, a, r, ids, TG_MSG_TARGETS_MAX + 64);
        for (const cJSON *e                               = x->route->child;
             e != NULL && nw < TG_MSG_TARGETS_MAX + 64; e = e->next) {
            w[nw++] = e->valuestring;
        }
        eq = n == nw;
        for (size_t i = 0; eq && i < n; i++) {
            eq = strcmp(ids[i], w[i]) == 0;
        }
        if (!eq) {
            pdp_bt_list(ws, sizeof(ws), w, nw);
            pdp_bt_list(gs, sizeof(gs), ids, n);
            pdp_bt_append(why, cap, "expected route %s, got %s", ws, gs);
        }
    }
    if (x->capture >= 0 && (uint32_t)x->capture != r->capture_level) {
        pdp_bt_append(why, cap, "expected capture %s, got %s",
                      pdp_capture_name((uint32_t)x->capture),
                      pdp_capture_name(r->capture_level));
    }
}

/* pdp_bt_guard_set compiles the bundle's guard set for one test file,
 * its term lists from the file's "lists" fixture (a list it does not give
 * is empty); *out stays NULL without guardrail rules. */
static tg_err
pdp_bt_guard_set(pdp_bt *c, const tg_json_doc *doc, const cJSON *root,
                 tg_guard_set **out)
{
    const cJSON       *fx = cJSON_GetObjectItemCaseSensitive(root, "lists");
    const char *const *names;
    cJSON             *lists;
    char         msg[1024];
    char         err[512];
    tg_err       rv;

    *out = NULL;
    if (fx != NULL && !cJSON_IsObject(fx)) {
        tg_json_errf(doc, fx, msg, sizeof(msg),
                     "lists: expected {\"list name\": [\"term\", ...]}");
        pdp_bt_error(c, msg);
        return TG_EINVAL;
    }
    if (pdp_bundle_guard_set(c->b) == NULL) {
        return TG_OK;
    }
    if (fx == NULL || pdp_bundle_guard_lists(c->b, &names) == 0) {
        /* Every list empty: the set the bundle compiled already is this
         * one (compiling takes vectorscan a second or more). */
        *out = (tg_guard_set *)pdp_bundle_guard_set(c->b);
        tg_guard_set_ref(*out);
        return TG_OK;
    }
    if ((lists = pdp_guard_lists_fixture(c->b, fx)) == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_bundle_guard_compile(c->b, lists, out, err, sizeof(err));
    cJSON_Delete(lists);
    if (rv != TG_OK) {
        tg_json_errf(doc, fx != NULL ? fx : root, msg, sizeof(msg),
                     "lists: the guardrails do not compile with these "
                     "terms: %s",
                     err);
        pdp_bt_error(c, msg);
    }
    return rv;
}

/* pdp_bt_guard_compare runs the guardrails r matched on the case's
 * content ({"stage": "input"|"output", "text": "..."}) and adds to why
 * every way the outcome differs from x. */
static void
pdp_bt_guard_compare(const tg_guard_set *gs, const pdp_bt_expect *x,
                     const pdp_policy_result *r, const cJSON *content,
                     char *why, size_t cap)
{
    const cJSON   *text  = cJSON_GetObjectItemCaseSensitive(content, "text");
    const cJSON   *stage = cJSON_GetObjectItemCaseSensitive(content, "stage");
    pdp_guard_run  run;
    const char    *got[64];
    size_t         n = 0;
    char           ws[1024], gs_s[1024];
    tg_err         rv;

    if (x->guardrail == NULL && x->redacted == NULL && x->detectors == NULL) {
        return;
    }
    if (!cJSON_IsString(text)) {
        pdp_bt_append(why, cap,
                      "expect.guardrail needs \"content\": {\"text\": "
                      "\"...\"}");
        return;
    }
    if (gs == NULL) {
        memset(&run, 0, sizeof(run));
        run.action = "pass";
        rv         = TG_OK;
    } else {
        rv = pdp_guard_run_text(
            gs, r,
            cJSON_IsString(stage) && strcmp(stage->valuestring, "output") == 0
                ? TG_GUARD_OUTPUT
                : TG_GUARD_INPUT,
            text->valuestring, strlen(text->valuestring), &run);
    }
    if (rv != TG_OK) {
        pdp_bt_append(why, cap, "guardrails failed: %s", tg_strerror(rv));
        pdp_guard_run_fini(&run);
        return;
    }
    if (x->guardrail != NULL && strcmp(x->guardrail, run.action) != 0) {
        pdp_bt_append(why, cap, "expected guardrail %s, got %s", x->guardrail,
                      run.action);
    }
    if (x->redacted != NULL && strcmp(x->redacted, run.redacted != NULL
                                                       ? run.redacted
                                                       : text->valuestring) !=
                                   0) {
        pdp_bt_append(why, cap, "expected redacted \"%.300s\", got \"%.300s\"",
                      x->redacted,
                      run.redacted != NULL ? run.redacted : text->valuestring);
    }
    for (size_t i = 0; gs != NULL && i < run.hits.n && n < 64; i++) {
        const char *d = tg_guard_set_detector_name(gs, run.hits.v[i].detector);
        bool        dup = false;
        for (size_t k = 0; k < n && !dup; k++) {
            dup = strcmp(got[k], d) == 0;
        }
        if (!dup) {
            got[n++] = d;
        }
    }
    if (x->detectors != NULL &&
        !pdp_bt_set_equal(x->detectors, got, n, ws, gs_s, sizeof(ws))) {
        pdp_bt_append(why, cap, "expected detectors %s, got %s", ws, gs_s);
    }
    pdp_guard_run_fini(&run);
}

/* pdp_bt_test_file checks (and, when run, runs) every case of one test
 * file. */
static void
pdp_bt_test_file(pdp_bt *c, const char *dir, const char *name, bool run)
{
    static const char *const fkeys[] = {"$schema", "description", "tests",
                                        "lists", NULL};
    static const char *const ckeys[] = {"name", "description", "input",
                                        "expect", NULL};
    tg_guard_set            *gs = NULL;
    char                     path[1024];
    char                     msg[1024];
    tg_json_doc             *doc = NULL;
    const cJSON             *root;
    const cJSON             *tests;
    pdp_trace               *t = run ? pdp_trace_create() : NULL;
    int                      i = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (tg_json_doc_load(&doc, path, PDP_BT_FILE_MAX, msg, sizeof(msg)) !=
        TG_OK) {
        pdp_bt_error(c, msg);
        c->t->errors++;
        c->t->malformed++;
        goto out;
    }
    root = tg_json_doc_root(doc);
    if (tg_json_only_keys(doc, root, "test file", fkeys, msg, sizeof(msg)) !=
        TG_OK) {
        pdp_bt_error(c, msg);
        c->t->errors++;
        c->t->malformed++;
        goto out;
    }
    tests = cJSON_GetObjectItemCaseSensitive(root, "tests");
    if (!cJSON_IsArray(tests)) {
        tg_json_errf(doc, tests != NULL ? tests : root, msg, sizeof(msg),
                     "test file: expected \"tests\": [ {\"name\": ..., "
                     "\"input\": {...}, \"expect\": {...}}, ... ]");
        pdp_bt_error(c, msg);
        c->t->errors++;
        c->t->malformed++;
        goto out;
    }
    if (run && pdp_bt_guard_set(c, doc, root, &gs) != TG_OK) {
        c->t->errors++;
        c->t->malformed++;
        goto out;
    }
    for (const cJSON *tc = tests->child; tc != NULL; tc = tc->next, i++) {
        const char       *tname = NULL;
        const cJSON      *in;
        const cJSON      *ex;
        pdp_bt_expect     x;
        pdp_attrs         a;
        pdp_policy_result r;
        char              ctx[32];
        char              why[4096];
        int               nerr = 0;

        snprintf(ctx, sizeof(ctx), "tests[%d]", i);
        if (tg_json_only_keys(doc, tc, ctx, ckeys, msg, sizeof(msg)) != TG_OK ||
            tg_json_get_string(doc, tc, ctx, "name", true, &tname, msg,
                               sizeof(msg)) != TG_OK) {
            pdp_bt_error(c, msg);
            c->t->errors++;
            c->t->malformed++;
            continue;
        }
        in = cJSON_GetObjectItemCaseSensitive(tc, "input");
        ex = cJSON_GetObjectItemCaseSensitive(tc, "expect");
        if (in == NULL || ex == NULL) {
            tg_json_errf(doc, tc, msg, sizeof(msg), "%s (%s): missing \"%s\"",
                         ctx, tname, in == NULL ? "input" : "expect");
            pdp_bt_error(c, msg);
            c->t->errors++;
            c->t->malformed++;
            continue;
        }
        if (pdp_attrs_from_json(&a, doc, in, msg, sizeof(msg)) != TG_OK) {
            pdp_bt_error(c, msg);
            nerr++;
        }
        if (!cJSON_IsObject(ex)) {
            tg_json_errf(doc, ex, msg, sizeof(msg),
                         "expect: expected an object such as "
                         "{\"decision\": \"deny\", \"code\": "
                         "\"policy_denied\"}");
            pdp_bt_error(c, msg);
            nerr++;
        } else {
            pdp_bt_expect_parse(c, doc, ex, &x, &nerr);
        }
        if (nerr > 0) {
            c->t->errors += nerr;
            c->t->malformed++;
            continue;
        }
        if (!run) {
            continue;
        }
        pdp_bundle_eval(c->b, &a, &r, t);
        pdp_bt_compare(c, &x, &a, &r, why, sizeof(why));
        pdp_bt_guard_compare(gs, &x, &r,
                             cJSON_GetObjectItemCaseSensitive(in, "content"),
                             why, sizeof(why));
        pdp_bt_record(c, name, tname, why, t);
    }
out:
    tg_guard_set_unref(gs);
    pdp_trace_destroy(t);
    tg_json_doc_destroy(doc);
}

static int
pdp_bt_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pdp_bt_tests walks DIR's *.test.json in name order. */
static void
pdp_bt_tests(pdp_bt *c, const char *dir, bool run)
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
        /* A test file left out would pass a bundle it was to stop. */
        if (!tg_vec_reserve(&names, &cap, n + 1, sizeof(*names)) ||
            (names[n] = strdup(de->d_name)) == NULL) {
            pdp_bt_error(c, "out of memory listing the test files");
            c->t->errors++;
            c->t->malformed++;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof(*names), pdp_bt_name_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        pdp_bt_test_file(c, dir, names[i], run);
        free(names[i]);
    }
    free(names);
}

void
pdp_bundle_tests_init(pdp_bundle_tests *t)
{
    memset(t, 0, sizeof(*t));
    tg_buf_init(&t->messages, 1u << 20);
}

void
pdp_bundle_tests_fini(pdp_bundle_tests *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->cases[i].trace);
    }
    free(t->cases);
    tg_buf_fini(&t->messages);
    memset(t, 0, sizeof(*t));
}

void
pdp_bundle_tests_run(const pdp_bundle *b, const tg_config *cfg, const char *dir,
                     bool run, pdp_bundle_tests *t)
{
    pdp_bt c = {b, cfg, t};

    pdp_bt_tests(&c, dir, run);
}

/* ---- the bundle's own catalog --------------------------------------------- */

tg_err
pdp_bundle_fixture(const char *dir, tg_config **out, char *err, size_t errlen)
{
    char        path[4096];
    struct stat sb;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, PDP_BUNDLE_CATALOG) >=
        (int)sizeof(path)) {
        snprintf(err, errlen, "%s: path too long", dir);
        return TG_EINVAL;
    }
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) {
            return TG_ENOTFOUND;
        }
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TG_EIO;
    }
    return tg_config_catalog_load(out, path, err, errlen);
}

/* pdp_bt_mismatch says, one line each, which tests of dir do not hold
 * against live's catalog although they pass against the bundle's. */
static void
pdp_bt_mismatch(const pdp_bundle *b, const tg_config *live, const char *dir,
                const pdp_bundle_tests *fixed, tg_buf *out)
{
    pdp_bundle_tests lt;

    pdp_bundle_tests_init(&lt);
    pdp_bundle_tests_run(b, live, dir, true, &lt);
    if (lt.messages.len > 0) {
        tg_buf_add(out, lt.messages.data, lt.messages.len);
    }
    for (size_t i = 0; i < lt.n; i++) {
        const pdp_bundle_case *k = &lt.cases[i];
        bool                   was_ok = false;
        for (size_t j = 0; j < fixed->n; j++) {
            was_ok = was_ok || (fixed->cases[j].passed &&
                                strcmp(fixed->cases[j].file, k->file) == 0 &&
                                strcmp(fixed->cases[j].name, k->name) == 0);
        }
        if (!k->passed && was_ok) {
            tg_buf_addf(out,
                        "%s: %s: passes against the bundle's catalog.json, "
                        "not against this PDP's deployments: %s\n",
                        k->file, k->name, k->why);
        }
    }
    pdp_bundle_tests_fini(&lt);
}

void
pdp_bundle_tests_hermetic(const pdp_bundle *b, const tg_config *live,
                          const char *dir, pdp_bundle_tests *t,
                          tg_buf *mismatch)
{
    tg_config  *fix = NULL;
    pdp_bundle *bf  = NULL;
    char       *msg = malloc(PDP_BT_MSG_MAX);
    tg_err      rv;

    if (msg == NULL) {
        t->errors++;
        tg_buf_addf(&t->messages, "%s: out of memory\n", dir);
        return;
    }
    msg[0] = '\0';
    rv     = pdp_bundle_fixture(dir, &fix, msg, PDP_BT_MSG_MAX);
    if (rv == TG_ENOTFOUND) {
        pdp_bundle_tests_run(b, live, dir, true, t);
    } else if (rv == TG_OK &&
               (rv = pdp_bundle_load(&bf, dir, fix, msg, PDP_BT_MSG_MAX)) ==
                   TG_OK) {
        pdp_bundle_tests_run(bf, fix, dir, true, t);
        if (live != NULL && mismatch != NULL) {
            pdp_bt_mismatch(b, live, dir, t, mismatch);
        }
    } else {
        /* catalog.json does not read, or the bundle does not compile
         * against it: its tests cannot run. */
        t->errors++;
        tg_buf_addf(&t->messages, "%s\n",
                    msg[0] != '\0' ? msg : tg_strerror(rv));
    }
    pdp_bundle_unref(bf);
    tg_config_destroy(fix);
    free(msg);
}
