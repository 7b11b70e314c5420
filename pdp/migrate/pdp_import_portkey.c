/* pdp_import_portkey.c - `tollgate-pdp import portkey`: the command, the
 * walk over a Portkey config, the model clients ask for, and the fields
 * that are one data-plane setting (retry, request_timeout). Targets are
 * pdp_import_portkey_targets.c, conditional routing
 * pdp_import_portkey_cond.c (contracts in pdp_import_portkey.h). */
#include "pdp_import_portkey.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_import_portkey_int.h"

#define PDP_PK_MAX_BYTES (4u << 20) /* a config is a few KiB */
#define PDP_PK_RETRIES_MAX 10       /* dataplane.retries' range */
#define PDP_PK_FIRST_BYTE_MS 60000  /* dataplane.first_byte_timeout_ms */

static const char PDP_PK_CMD[] = "tollgate-pdp import portkey";

/* ---- small shared helpers ---------------------------------------------- */

int
pdp_pk_line(const pdp_pk *c, const cJSON *node)
{
    int line = 0;
    int col  = 0;

    if (node != NULL) {
        tg_json_doc_pos(c->doc, node, &line, &col);
    }
    return line;
}

void
pdp_pk_note(pdp_pk *c, const char *path, const cJSON *node, pdp_mig_kind kind,
            const char *fmt, ...)
{
    char    msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pdp_mig_add(c->f, path, pdp_pk_line(c, node), kind, "%s", msg);
}

void
pdp_pk_path(char *p, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(p, cap, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= cap && cap > 4) {
        memcpy(p + cap - 4, "...", 4);
    }
}

tg_err
pdp_pk_fail(pdp_pk *c, const cJSON *node, const char *fmt, ...)
{
    char    msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tg_json_errf(c->doc, node, c->err, c->errlen, "%s", msg);
}

cJSON *
pdp_pk_ck(pdp_pk *c, cJSON *v)
{
    if (v == NULL) {
        c->nomem = true;
    }
    return v;
}

const char *
pdp_pk_mode(const cJSON *node)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(node, "strategy");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(s, "mode");

    return cJSON_IsString(m) ? m->valuestring : "single";
}

/* ---- retry, status codes, timeouts -------------------------------------- */

/* pdp_pk__acts is whether Tollgate retries (or falls back) on code. */
static bool
pdp_pk__acts(int64_t code)
{
    return code == 429 || (code >= 500 && code <= 599);
}

void
pdp_pk_codes(pdp_pk *c, const cJSON *list, const char *path, bool fallback)
{
    const char  *verb   = fallback ? "falls back" : "retries";
    bool         has429 = false;
    int          has5xx = 0;
    const cJSON *v;
    size_t       i = 0;
    char         p[PDP_PK_PATH];

    if (!cJSON_IsArray(list)) {
        pdp_pk_note(c, path, list, PDP_MIG_UNSUPPORTED,
                    "expected a list of HTTP status codes; ignored");
        return;
    }
    cJSON_ArrayForEach(v, list)
    {
        int64_t code = 0;

        pdp_pk_path(p, sizeof(p), "%s[%zu]", path, i++);
        if (!tg_json_whole(v, 100, 599, &code)) {
            pdp_pk_note(c, p, v, PDP_MIG_UNSUPPORTED,
                        "not an HTTP status code; ignored");
        } else if (pdp_pk__acts(code)) {
            has429 |= code == 429;
            has5xx += code >= 500;
            pdp_pk_note(c, p, v, PDP_MIG_MAPPED, "Tollgate %s on a %lld too",
                        verb, (long long)code);
        } else if (code == 401 || code == 403 || code == 404) {
            pdp_pk_note(c, p, v,
                        fallback ? PDP_MIG_MAPPED : PDP_MIG_APPROXIMATED,
                        "a %lld moves to the next deployment at once%s",
                        (long long)code,
                        fallback ? ""
                                 : " (Tollgate never retries it on the same "
                                   "deployment: the credential or name is "
                                   "wrong there)");
        } else {
            pdp_pk_note(c, p, v, PDP_MIG_UNSUPPORTED,
                        "Tollgate never %s on a %lld: the client gets the "
                        "provider's answer (it acts on 429, 5xx, 401/403/404, "
                        "connection errors and timeouts)",
                        fallback ? "falls back" : "retries", (long long)code);
        }
    }
    if (!has429 || has5xx < 4) {
        pdp_pk_note(c, path, list, PDP_MIG_APPROXIMATED,
                    "Tollgate %s on every 429 and 5xx, connection error and "
                    "first-byte timeout, whether or not the list names them: "
                    "the list cannot narrow that",
                    verb);
    }
}

/* pdp_pk__retry reads a retry block: the highest attempts wins, as
 * Tollgate's retries is one setting for every deployment. */
static void
pdp_pk__retry(pdp_pk *c, const cJSON *r, const char *path, bool top)
{
    const cJSON *m;
    char         p[PDP_PK_PATH];

    if (!cJSON_IsObject(r)) {
        pdp_pk_note(c, path, r, PDP_MIG_UNSUPPORTED,
                    "expected an object {attempts, on_status_codes}; ignored");
        return;
    }
    cJSON_ArrayForEach(m, r)
    {
        int64_t n = 0;

        pdp_pk_path(p, sizeof(p), "%s.%s", path, m->string);
        if (strcmp(m->string, "attempts") == 0) {
            if (!tg_json_whole(m, 0, 1000, &n)) {
                pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                            "expected a whole number; ignored");
                continue;
            }
            if (n > c->retries) {
                c->retries = n;
            }
            pdp_pk_note(c, p, m,
                        n > PDP_PK_RETRIES_MAX || !top ? PDP_MIG_APPROXIMATED
                                                       : PDP_MIG_MAPPED,
                        "dataplane.retries%s%s",
                        n > PDP_PK_RETRIES_MAX ? ": capped at 10" : "",
                        top ? ""
                            : " (one setting for every deployment: the "
                              "highest attempts in the config is used)");
        } else if (strcmp(m->string, "on_status_codes") == 0) {
            pdp_pk_codes(c, m, p, false);
        } else if (strcmp(m->string, "use_retry_after_header") == 0) {
            pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                        "Tollgate always honours Retry-After (in seconds, up "
                        "to retry_backoff_max_ms)");
        } else {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "unknown retry field; ignored");
        }
    }
}

bool
pdp_pk_global(pdp_pk *c, const char *key, const cJSON *v, const char *path,
              bool top)
{
    static const char *const hooks[] = {"before_request_hooks",
                                        "after_request_hooks",
                                        "input_guardrails",
                                        "output_guardrails",
                                        "default_input_guardrails",
                                        "default_output_guardrails",
                                        NULL};
    int64_t                  ms      = 0;

    if (strcmp(key, "retry") == 0) {
        pdp_pk__retry(c, v, path, top);
        return true;
    }
    if (strcmp(key, "request_timeout") == 0) {
        if (!tg_json_whole(v, 1, 86400000, &ms)) {
            pdp_pk_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "expected milliseconds from 1 to 86400000; ignored");
        } else {
            c->timeout_ms = ms > c->timeout_ms ? ms : c->timeout_ms;
            pdp_pk_note(c, path, v, PDP_MIG_APPROXIMATED,
                        "dataplane.total_timeout_ms (per attempt, the whole "
                        "transfer, streams included) and, when shorter than "
                        "60 s, first_byte_timeout_ms; a timed-out attempt "
                        "moves on as Portkey's 408 does%s",
                        top ? ""
                            : "; one setting for every deployment: the "
                              "longest in the config is used");
        }
        return true;
    }
    if (strcmp(key, "cache") == 0) {
        pdp_pk_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "Tollgate has no response cache yet: every request goes "
                    "to the provider");
        return true;
    }
    for (size_t i = 0; hooks[i] != NULL; i++) {
        if (strcmp(key, hooks[i]) == 0) {
            pdp_pk_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "Portkey hooks and guardrails are not imported: write "
                        "Tollgate guardrail rules (policies/README.md, "
                        "guardrail) for what they checked");
            return true;
        }
    }
    return false;
}

/* pdp_pk__dataplane writes the settings gathered into pk->dataplane. */
static void
pdp_pk__dataplane(pdp_pk *c)
{
    cJSON  *dp = c->pk->dataplane;
    int64_t r  = c->retries < 0 ? 0 : c->retries;

    if (r > PDP_PK_RETRIES_MAX) {
        r = PDP_PK_RETRIES_MAX;
    }
    pdp_pk_ck(c, cJSON_AddNumberToObject(dp, "retries", (double)r));
    if (c->retries < 0) {
        pdp_mig_add(c->f, "retry", 0, PDP_MIG_MAPPED,
                    "no retry block: dataplane.retries 0, as Portkey makes "
                    "one attempt per target without one (Tollgate's default "
                    "is 2)");
    }
    if (c->timeout_ms > 0) {
        pdp_pk_ck(c, cJSON_AddNumberToObject(dp, "total_timeout_ms",
                                             (double)c->timeout_ms));
        if (c->timeout_ms < PDP_PK_FIRST_BYTE_MS) {
            pdp_pk_ck(c, cJSON_AddNumberToObject(dp, "first_byte_timeout_ms",
                                                 (double)c->timeout_ms));
        }
    }
}

/* ---- the model clients ask for ----------------------------------------- */

/* pdp_pk__override_model is node's override_params.model (NULL: none). */
static const char *
pdp_pk__override_model(const cJSON *node)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(node, "override_params");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");

    return cJSON_IsString(m) && m->valuestring[0] != '\0' ? m->valuestring
                                                          : NULL;
}

/* pdp_pk__leaf_models walks the targets: *first gets the first model a
 * target sends (its own override_params.model or an ancestor's), *differs
 * is set when another target sends another one, *none when a target sends
 * whatever the client asked for. */
static void
pdp_pk__leaf_models(const cJSON *node, const char *inherit, int depth,
                    const char **first, bool *differs, bool *none)
{
    const cJSON *ts  = cJSON_GetObjectItemCaseSensitive(node, "targets");
    const char  *own = pdp_pk__override_model(node);
    const cJSON *t;

    if (own != NULL) {
        inherit = own;
    }
    if (!cJSON_IsArray(ts) || depth > PDP_PK_DEPTH) {
        if (inherit == NULL) {
            *none = true;
        } else if (*first == NULL) {
            *first = inherit;
        } else if (strcmp(*first, inherit) != 0) {
            *differs = true;
        }
        return;
    }
    cJSON_ArrayForEach(t, ts)
    {
        pdp_pk__leaf_models(t, inherit, depth + 1, first, differs, none);
    }
}

/* pdp_pk__pick_model decides the client-facing model: --model, else the
 * one model every target sends (override_params.model). */
static tg_err
pdp_pk__pick_model(pdp_pk *c, const cJSON *root, const char *flag)
{
    const char *first   = NULL;
    bool        differs = false;
    bool        none    = false;
    const char *why     = NULL;

    if (flag != NULL) {
        if (flag[0] == '\0' || strlen(flag) >= 128) {
            return pdp_pk_fail(c, root,
                               "--model: expected 1 to 127 "
                               "characters");
        }
        pdp_mig_add(c->f, "--model", 0, PDP_MIG_MAPPED,
                    "clients ask for model \"%s\"; a target without "
                    "override_params.model sends it upstream as is",
                    flag);
        return (c->pk->model = strdup(flag)) ? TG_OK : TG_ENOMEM;
    }
    pdp_pk__leaf_models(root, NULL, 0, &first, &differs, &none);
    if (none) {
        why = "a target has no override_params.model, so Portkey sends it "
              "whatever model the client asks for";
    } else if (differs) {
        why = "its targets send different models (override_params.model)";
    } else if (first == NULL) {
        why = "it has no targets";
    }
    if (why != NULL) {
        return pdp_pk_fail(c, root,
                           "cannot tell which model name clients will ask "
                           "for: %s; pass --model NAME (the name clients "
                           "send, e.g. --model gpt-4o)",
                           why);
    }
    pdp_mig_add(c->f, "override_params.model", 0, PDP_MIG_MAPPED,
                "clients ask for model \"%s\", the model every target sends "
                "(pass --model NAME to choose another name)",
                first);
    return (c->pk->model = strdup(first)) ? TG_OK : TG_ENOMEM;
}

/* ---- the walk ------------------------------------------------------------ */

/* pdp_pk__split_group flattens target t of a split fallback into the
 * deployments of model; false (a finding) when it imported none. */
static bool
pdp_pk__split_group(pdp_pk *c, const cJSON *t, const char *path,
                    const char *inherit, const char *model, cJSON **ids,
                    tg_err *rv)
{
    pdp_pk_group g = {.weighted = true, .model = model};

    if ((g.ids = cJSON_CreateArray()) == NULL) {
        *rv = TG_ENOMEM;
        return false;
    }
    if ((*rv = pdp_pk_flatten(c, t, path, inherit, &g)) != TG_OK ||
        cJSON_GetArraySize(g.ids) == 0) {
        if (*rv == TG_OK) {
            pdp_pk_note(c, path, t, PDP_MIG_UNSUPPORTED,
                        "imported no deployment: not a fallback");
        }
        cJSON_Delete(g.ids);
        return false;
    }
    pdp_pk_weights(c, &g);
    *ids = g.ids;
    return true;
}

/* pdp_pk__split imports a fallback whose first target is a loadbalance
 * pool: each target becomes a model, the first the one clients ask for
 * (strategy weighted), the others NAME-fallback-<n>, its model group's
 * fallbacks, which the data plane tries only once every deployment of the
 * model failed: Portkey's order of pools, each pool drawn by weight. */
static tg_err
pdp_pk__split(pdp_pk *c, const cJSON *root)
{
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "override_params"), "model");
    const char  *inh   = cJSON_IsString(om) ? om->valuestring : NULL;
    cJSON       *mg    = pdp_pk_ck(c, cJSON_CreateObject());
    cJSON       *fbs   = pdp_pk_ck(c, cJSON_CreateArray());
    cJSON       *first = NULL;
    cJSON       *ids;
    cJSON       *tc;
    const cJSON *t;
    size_t       k  = 0;
    tg_err       rv = TG_OK;
    char         path[32];
    char         model[160];

    pdp_pk_root_fields(c, root);
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "targets"))
    {
        snprintf(path, sizeof(path), "targets[%zu]", k++);
        if (first == NULL) {
            snprintf(model, sizeof(model), "%s", c->pk->model);
        } else {
            snprintf(model, sizeof(model), "%.120s-fallback-%d", c->pk->model,
                     cJSON_GetArraySize(fbs) + 1);
        }
        if (!pdp_pk__split_group(c, t, path, inh, model, &ids, &rv)) {
            if (rv != TG_OK) {
                goto out;
            }
            continue;
        }
        if (first == NULL) {
            first = ids;
            continue;
        }
        cJSON_Delete(ids);
        pdp_pk_ck(c, cJSON_AddItemToArray(fbs, cJSON_CreateString(model))
                         ? fbs
                         : NULL);
        pdp_pk_note(c, path, t, PDP_MIG_MAPPED,
                    "fallback model \"%s\" of \"%s\"", model, c->pk->model);
    }
    if (first == NULL) {
        rv = pdp_pk_fail(c, root,
                         "no target of this config can be imported (see the "
                         "findings above): there is nothing to route to");
        goto out;
    }
    if (mg != NULL && fbs != NULL) {
        pdp_pk_ck(c, cJSON_AddStringToObject(mg, "model", c->pk->model));
        pdp_pk_ck(c, cJSON_AddStringToObject(mg, "strategy", "weighted"));
        if (cJSON_GetArraySize(fbs) > 0) {
            cJSON_AddItemToObject(mg, "fallbacks", fbs);
            fbs = NULL;
        }
        cJSON_AddItemToArray(c->pk->model_groups, mg);
        mg = NULL;
    }
    tc = pdp_pk_test_case(c,
                          "the model routes to its loadbalanced pool (its "
                          "fallback models follow in the decision)",
                          NULL, first, NULL);
    if (tc != NULL) {
        cJSON_AddItemToArray(c->pk->tests, tc);
    }
out:
    cJSON_Delete(first);
    cJSON_Delete(mg);
    cJSON_Delete(fbs);
    return rv;
}

/* pdp_pk__plain imports a config that is not conditional: one group of
 * deployments for the model (weighted for loadbalance, else ordered) and
 * a test that the model routes to all of them, in catalog order. */
static tg_err
pdp_pk__plain(pdp_pk *c, const cJSON *root)
{
    pdp_pk_group g  = {0};
    tg_err       rv = TG_OK;
    cJSON       *mg;
    cJSON       *tc;
    char         name[256];

    if (pdp_pk_splits(root)) {
        return pdp_pk__split(c, root);
    }
    g.weighted = strcmp(pdp_pk_mode(root), "loadbalance") == 0;
    if ((g.ids = cJSON_CreateArray()) == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = pdp_pk_flatten(c, root, "", NULL, &g)) != TG_OK) {
        goto out;
    }
    if (cJSON_GetArraySize(g.ids) == 0) {
        bool none = !cJSON_HasObjectItem(root, "targets") &&
                    !cJSON_HasObjectItem(root, "provider");
        rv = pdp_pk_fail(c, root, "%s",
                         none ? "the config has neither targets nor a "
                                "provider: there is nothing to route to"
                              : "no target of this config can be imported "
                                "(see the findings above): there is nothing "
                                "to route to");
        goto out;
    }
    pdp_pk_weights(c, &g);
    if (g.weighted && (mg = pdp_pk_ck(c, cJSON_CreateObject())) != NULL) {
        cJSON_AddItemToArray(c->pk->model_groups, mg);
        pdp_pk_ck(c, cJSON_AddStringToObject(mg, "model", c->pk->model));
        pdp_pk_ck(c, cJSON_AddStringToObject(mg, "strategy", "weighted"));
    }
    snprintf(name, sizeof(name), "model %s routes to the %s targets",
             c->pk->model, g.weighted ? "loadbalanced" : "Portkey");
    if ((tc = pdp_pk_test_case(c, name, NULL, g.ids, NULL)) != NULL) {
        cJSON_AddItemToArray(c->pk->tests, tc);
    }
out:
    cJSON_Delete(g.ids);
    return rv;
}

static tg_err
pdp_pk__run(pdp_pk *c, const char *path, const char *model)
{
    tg_json_doc *doc = NULL;
    const cJSON *root;
    tg_err       rv;

    if ((rv = tg_json_doc_load(&doc, path, PDP_PK_MAX_BYTES, c->err,
                               c->errlen)) != TG_OK) {
        return rv;
    }
    c->doc = doc;
    root   = tg_json_doc_root(doc);
    if (!cJSON_IsObject(root)) {
        rv = pdp_pk_fail(c, root,
                         "a Portkey config is a JSON object "
                         "({\"strategy\": ..., \"targets\": [...]})");
        goto out;
    }
    if ((rv = pdp_pk__pick_model(c, root, model)) != TG_OK) {
        goto out;
    }
    if (strcmp(pdp_pk_mode(root), "conditional") == 0) {
        rv = pdp_pk_conditional(c, root);
    } else {
        rv = pdp_pk__plain(c, root);
    }
    if (rv == TG_OK) {
        pdp_pk__dataplane(c);
    }
    if (rv == TG_OK && c->nomem) {
        rv = TG_ENOMEM;
    }
out:
    tg_json_doc_destroy(doc);
    c->doc = NULL;
    return rv;
}

tg_err
pdp_portkey_import(pdp_portkey *pk, const char *path, const char *model,
                   pdp_mig_findings *f, char *err, size_t errlen)
{
    pdp_pk c = {.f          = f,
                .pk         = pk,
                .retries    = -1,
                .timeout_ms = -1,
                .err        = err,
                .errlen     = errlen};

    memset(pk, 0, sizeof(*pk));
    pk->deployments  = cJSON_CreateArray();
    pk->model_groups = cJSON_CreateArray();
    pk->dataplane    = cJSON_CreateObject();
    pk->rules        = cJSON_CreateArray();
    pk->tests        = cJSON_CreateArray();
    if (pk->deployments == NULL || pk->model_groups == NULL ||
        pk->dataplane == NULL || pk->rules == NULL || pk->tests == NULL) {
        return TG_ENOMEM;
    }
    return pdp_pk__run(&c, path, model);
}

void
pdp_portkey_output(const pdp_portkey *pk, pdp_mig_output *o)
{
    memset(o, 0, sizeof(*o));
    o->bundle_name = "portkey-import";
    o->description = "Imported from a Portkey gateway config by "
                     "tollgate-pdp import portkey";
    o->deployments = pk->deployments;
    o->model_groups =
        cJSON_GetArraySize(pk->model_groups) ? pk->model_groups : NULL;
    o->dataplane = pk->dataplane;
    o->rules     = pk->rules;
    o->tests     = cJSON_GetArraySize(pk->tests) ? pk->tests : NULL;
}

void
pdp_portkey_fini(pdp_portkey *pk)
{
    if (pk == NULL) {
        return;
    }
    free(pk->model);
    cJSON_Delete(pk->deployments);
    cJSON_Delete(pk->model_groups);
    cJSON_Delete(pk->dataplane);
    cJSON_Delete(pk->rules);
    cJSON_Delete(pk->tests);
    memset(pk, 0, sizeof(*pk));
}

/* ---- the command --------------------------------------------------------- */

static void
pdp_pk__usage(FILE *f)
{
    fprintf(f,
            "usage: %s CONFIG.json --out DIR [--dry-run] [--model NAME]\n"
            "         [--pricing FILE] [--format text|json]\n"
            "\n"
            "Turns a Portkey gateway config into DIR/tollgate.json (the\n"
            "targets as deployments of one model), DIR/bundle (route rules\n"
            "for conditional routing, with tests) and DIR/findings.txt\n"
            "(every field: mapped, approximated or not supported).\n"
            "--model NAME: the model name clients will ask for (default:\n"
            "the override_params.model every target sends). Clients send\n"
            "Portkey metadata as x-tollgate-meta-<key> headers.\n"
            "--pricing FILE: a Tollgate price table (USD per 1M tokens;\n"
            "Tollgate's own is policies/pricing.json in its repository),\n"
            "checked now and set as pdp.pricing_file (absolute path). Without\n"
            "it, usage is costed at $0 (the report names the models).\n",
            PDP_PK_CMD);
}

/* pdp_pk__take_model removes --model NAME / --model=NAME from argv
 * (copied into kept) so the shared flag parser sees only its flags. */
static int
pdp_pk__take_model(int argc, char **argv, char **kept, int *nkept,
                   const char **model, FILE *err)
{
    *nkept = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0) {
            if (i + 1 >= argc) {
                fprintf(err,
                        "%s: --model needs a value (the model name "
                        "clients ask for)\n",
                        PDP_PK_CMD);
                return PDP_MIG_EXIT_USAGE;
            }
            *model = argv[++i];
        } else if (strncmp(argv[i], "--model=", 8) == 0) {
            *model = argv[i] + 8;
        } else {
            kept[(*nkept)++] = argv[i];
        }
    }
    kept[*nkept] = NULL;
    return PDP_MIG_EXIT_OK;
}

int
pdp_import_portkey_cli(int argc, char **argv, FILE *out, FILE *err)
{
    pdp_mig_args     a  = {0};
    pdp_mig_findings f  = {0};
    pdp_portkey      pk = {0};
    pdp_mig_output   o;
    const char      *model = NULL;
    char           **kept  = calloc((size_t)argc + 1, sizeof(*kept));
    int              nkept = 0;
    int              st;
    char             msg[1024] = "";
    tg_pricing      *table     = NULL;
    char             table_abs[PATH_MAX];
    tg_err           rv;

    if (kept == NULL) {
        fprintf(err, "%s: out of memory\n", PDP_PK_CMD);
        return PDP_MIG_EXIT_FAIL;
    }
    if ((st = pdp_pk__take_model(argc, argv, kept, &nkept, &model, err)) !=
            PDP_MIG_EXIT_OK ||
        (st = pdp_mig_args_parse(&a, nkept, kept, "out dry-run pricing format",
                                 PDP_PK_CMD, err)) != PDP_MIG_EXIT_OK) {
        goto out;
    }
    if (a.help) {
        pdp_pk__usage(out);
        goto out;
    }
    if (a.input == NULL) {
        fprintf(err, "%s: name the Portkey config to import (a JSON file)\n",
                PDP_PK_CMD);
        pdp_pk__usage(err);
        st = PDP_MIG_EXIT_USAGE;
        goto out;
    }
    if (a.out == NULL && !a.dry_run) {
        fprintf(err,
                "%s: say where to write the result with --out DIR (a "
                "new or empty directory), or pass --dry-run\n",
                PDP_PK_CMD);
        st = PDP_MIG_EXIT_USAGE;
        goto out;
    }
    if ((st = pdp_mig_pricing_open(&a, PDP_PK_CMD, &table, table_abs,
                                   sizeof(table_abs), err)) !=
        PDP_MIG_EXIT_OK) {
        goto out;
    }
    pdp_mig_findings_init(&f, a.input);
    rv = pdp_portkey_import(&pk, a.input, model, &f, msg, sizeof(msg));
    if (rv != TG_OK) {
        if (rv == TG_ECONFIG && f.n > 0) {
            pdp_mig_findings_text(&f, err); /* what was read before it */
        }
        fprintf(err, "%s: %s\n", PDP_PK_CMD,
                msg[0] != '\0' ? msg : tg_strerror(rv));
        st = rv == TG_ENOMEM ? PDP_MIG_EXIT_FAIL : PDP_MIG_EXIT_USAGE;
        goto out;
    }
    pdp_portkey_output(&pk, &o);
    pdp_mig_unpriced(&f, o.deployments, table,
                     table != NULL ? table_abs : NULL);
    o.pricing_file = table != NULL ? table_abs : NULL;
    st             = pdp_mig_finish(&a, PDP_PK_CMD, &o, &f, out, err);
out:
    pdp_portkey_fini(&pk);
    pdp_mig_findings_fini(&f);
    tg_pricing_destroy(table);
    free(kept);
    return st;
}
