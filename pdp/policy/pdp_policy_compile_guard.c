/* pdp_policy_compile_guard.c - the compiler's guardrail stage: keeps each
 * guardrail rule's engine fields (everything but the fields every rule
 * has) and, once the rules are in id order, builds the bundle's guard set
 * spec and compiles it with the guardrail engine (tg_guard.h), so a bad
 * detector name, regex or schema is an error at its rule, as `check`
 * shows it. Not thread-safe: called on the compiling thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_compile_int.h"
#include "tg_guard.h"

static const char *const pdp_guard_common[] = {
    "id", "kind", "mode", "on_error", "description", "when"};
static const char *const pdp_guard_actions[] = {"block", "redact", "audit"};
static const char *const pdp_guard_stages[]  = {"input", "output"};

static bool
pdp_guard_is_common(const char *name)
{
    for (size_t i = 0; i < sizeof(pdp_guard_common) / sizeof(char *); i++) {
        if (strcmp(name, pdp_guard_common[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_cc_guard_strings checks that r[key], when present, is a list of
 * non-empty strings. */
static void
pdp_cc_guard_strings(pdp_cc *cc, const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);

    if (v == NULL) {
        return;
    }
    if (!cJSON_IsArray(v)) {
        PDP_ERR(cc, v, "\"%s\" expects a list of strings, got %s", key,
                pdp_json_type(v));
        return;
    }
    for (const cJSON *s = v->child; s != NULL; s = s->next) {
        if (!cJSON_IsString(s) || s->valuestring[0] == '\0') {
            PDP_ERR(cc, s, "\"%s\" expects non-empty strings, got %s", key,
                    pdp_json_type(s));
            return;
        }
    }
}

void
pdp_cc_guardrail(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    static const char *const what[] = {"detectors", "terms",  "lists",
                                       "patterns",  "output", "canary"};
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(r, "stages");
    cJSON       *g;
    bool         any    = false;
    unsigned     before = cc->e->n;

    if (cJSON_GetObjectItemCaseSensitive(r, "action") == NULL) {
        PDP_ERR(cc, r,
                "missing required field \"action\" (\"block\", \"redact\" or "
                "\"audit\")");
    } else {
        pdp_cc_field_enum(cc, r, "action", 0, pdp_guard_actions, 3);
    }
    if (stages != NULL && cJSON_IsArray(stages)) {
        for (const cJSON *s = stages->child; s != NULL; s = s->next) {
            if (!cJSON_IsString(s)) {
                PDP_ERR(cc, s,
                        "\"stages\" expects \"input\" and/or \"output\"");
            } else {
                pdp_cc_enum(cc, s, "stage", s->valuestring, pdp_guard_stages,
                            2);
            }
        }
    } else if (stages != NULL) {
        PDP_ERR(cc, stages,
                "\"stages\" expects a list: [\"input\", \"output\"]");
    }
    pdp_cc_guard_strings(cc, r, "detectors");
    pdp_cc_guard_strings(cc, r, "terms");
    pdp_cc_guard_strings(cc, r, "lists");
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        any = any || cJSON_GetObjectItemCaseSensitive(r, what[i]) != NULL;
    }
    if (!any) {
        PDP_ERR(cc, r,
                "a guardrail rule needs something to look for: \"detectors\", "
                "\"terms\", \"lists\", \"patterns\", \"output\" or \"canary\"");
    }
    if (cc->guard_rules == NULL &&
        (cc->guard_rules = cJSON_CreateArray()) == NULL) {
        cc->oom = true;
        return;
    }
    if ((g = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(g, "id", pdp_cc_s(cc, rule->id)) == NULL) {
        cJSON_Delete(g);
        cc->oom = true;
        return;
    }
    for (const cJSON *c = r->child; c != NULL; c = c->next) {
        cJSON *dup;
        if (pdp_guard_is_common(c->string)) {
            continue;
        }
        if ((dup = cJSON_Duplicate(c, true)) == NULL ||
            !cJSON_AddItemToObject(g, c->string, dup)) {
            cJSON_Delete(dup);
            cJSON_Delete(g);
            cc->oom = true;
            return;
        }
    }
    if (cc->e->n != before) {
        /* Its own errors are said; the engine is not asked about it. */
        cJSON_AddBoolToObject(g, "\x01broken", true);
    }
    rule->guard = (uint32_t)cJSON_GetArraySize(cc->guard_rules);
    cJSON_AddItemToArray(cc->guard_rules, g);
}

/* pdp_cc_guard_report puts each line of the engine's errors ("rule <id>:
 * what") at its rule's position. */
static void
pdp_cc_guard_report(pdp_cc *cc, pdp_errs *e, const char *msg)
{
    const pdp_bundle *b = cc->b;

    while (*msg != '\0') {
        const char     *nl  = strchr(msg, '\n');
        size_t          len = nl != NULL ? (size_t)(nl - msg) : strlen(msg);
        const pdp_rule *at  = NULL;
        for (uint32_t i = 0; i < b->nrules && at == NULL; i++) {
            const pdp_rule *r  = &b->rules[i];
            const char     *id = pdp_cc_s(cc, r->id);
            size_t          n  = strlen(id);
            if (r->kind == PDP_KIND_GUARDRAIL && len > 5 + n &&
                strncmp(msg, "rule ", 5) == 0 && strncmp(msg + 5, id, n) == 0 &&
                msg[5 + n] == ':') {
                at = r;
            }
        }
        if (at != NULL) {
            pdp_errs_addf(e, "%s:%d:%d: %.*s", pdp_cc_s(cc, at->file), at->line,
                          at->col, (int)len, msg);
        } else if (len > 0) {
            pdp_errs_addf(e, "%s: guardrails: %.*s", b->dir, (int)len, msg);
        }
        msg += len + (nl != NULL ? 1 : 0);
    }
}

static int
pdp_cc_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pdp_cc_guard_lists collects the lists the rules name, sorted, unique. */
static bool
pdp_cc_guard_lists(pdp_bundle *b, const cJSON *rules)
{
    size_t cap = 0;

    for (const cJSON *g = rules->child; g != NULL; g = g->next) {
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(g, "lists");
        for (const cJSON *s = cJSON_IsArray(ls) ? ls->child : NULL; s != NULL;
             s              = s->next) {
            bool seen = false;
            if (!cJSON_IsString(s)) {
                continue;
            }
            for (uint32_t i = 0; i < b->n_guard_lists && !seen; i++) {
                seen = strcmp(b->guard_lists[i], s->valuestring) == 0;
            }
            if (seen) {
                continue;
            }
            if (!tg_vec_reserve(&b->guard_lists, &cap, b->n_guard_lists + 1,
                                sizeof(char *)) ||
                (b->guard_lists[b->n_guard_lists] = strdup(s->valuestring)) ==
                    NULL) {
                return false;
            }
            b->n_guard_lists++;
        }
    }
    if (b->n_guard_lists > 1) {
        qsort(b->guard_lists, b->n_guard_lists, sizeof(char *), pdp_cc_strcmp);
    }
    return true;
}

void
pdp_cc_guard_end(pdp_cc *cc, pdp_errs *e)
{
    pdp_bundle *b     = cc->b;
    cJSON      *spec  = NULL;
    cJSON      *rules = NULL;
    char        err[4096];
    uint32_t    n             = 0;
    unsigned    errors_before = e->n;

    if (cc->guard_rules == NULL) {
        return;
    }
    if ((spec = cJSON_CreateObject()) == NULL ||
        (rules = cJSON_AddArrayToObject(spec, "rules")) == NULL) {
        goto oom;
    }
    for (uint32_t i = 0; i < b->nrules; i++) {
        pdp_rule *r = &b->rules[i];
        cJSON    *g;
        if (r->kind != PDP_KIND_GUARDRAIL) {
            continue;
        }
        g = cJSON_GetArrayItem(cc->guard_rules, (int)r->guard);
        if (cJSON_GetObjectItemCaseSensitive(g, "\x01broken") != NULL) {
            continue;
        }
        if ((g = cJSON_Duplicate(g, true)) == NULL) {
            goto oom;
        }
        cJSON_AddItemToArray(rules, g);
        r->guard = n++;
    }
    if (n > TG_GUARD_RULES_MAX) {
        pdp_errs_addf(e,
                      "%s: the bundle has %u guardrail rules; at most %d "
                      "(merge rules that share a condition)",
                      b->dir, n, TG_GUARD_RULES_MAX);
        goto out;
    }
    if (!pdp_cc_guard_lists(b, rules) ||
        (b->guard_spec = cJSON_PrintUnformatted(spec)) == NULL) {
        goto oom;
    }
    /* Compiled even when other rules have errors, so an author sees the
     * engine's too in the same run. */
    if (pdp_bundle_guard_compile(b, NULL, &b->guard_set, err, sizeof(err)) ==
        TG_EINVAL) {
        pdp_cc_guard_report(cc, e, err);
    } else if (b->guard_set == NULL) {
        goto oom;
    }
    if (e->n > errors_before || errors_before > 0) {
        tg_guard_set_unref(b->guard_set); /* the bundle does not load */
        b->guard_set = NULL;
    }
    goto out;
oom:
    cc->oom = true;
out:
    cJSON_Delete(spec);
}

/* ---- the bundle's guard set, for the server and tests ------------------- */

tg_err
pdp_bundle_guard_spec(const pdp_bundle *b, const cJSON *lists, char **out,
                      size_t *len)
{
    cJSON *spec = NULL;
    cJSON *ls;
    tg_err rv = TG_ENOMEM;

    *out = NULL;
    if (b->guard_spec == NULL) {
        return TG_ENOTFOUND;
    }
    if ((spec = cJSON_Parse(b->guard_spec)) == NULL ||
        (ls = cJSON_AddObjectToObject(spec, "lists")) == NULL) {
        goto out;
    }
    for (uint32_t i = 0; i < b->n_guard_lists; i++) {
        const char *name = b->guard_lists[i];
        cJSON      *l;
        if (lists != NULL) {
            const cJSON *have = cJSON_GetObjectItemCaseSensitive(lists, name);
            if (have == NULL) {
                continue; /* the engine says "list not found" */
            }
            l = cJSON_Duplicate(have, true);
        } else {
            l = cJSON_CreateObject();
            if (l != NULL &&
                (cJSON_AddNumberToObject(l, "version", 0) == NULL ||
                 cJSON_AddArrayToObject(l, "terms") == NULL)) {
                cJSON_Delete(l);
                l = NULL;
            }
        }
        if (l == NULL || !cJSON_AddItemToObject(ls, name, l)) {
            cJSON_Delete(l);
            goto out;
        }
    }
    if ((*out = cJSON_PrintUnformatted(spec)) != NULL) {
        *len = strlen(*out);
        rv   = TG_OK;
    }
out:
    cJSON_Delete(spec);
    return rv;
}

tg_err
pdp_bundle_guard_compile(const pdp_bundle *b, const cJSON *lists,
                         struct tg_guard_set **out, char *err, size_t errlen)
{
    char  *text = NULL;
    size_t len  = 0;
    cJSON *spec = NULL;
    tg_err rv;

    *out = NULL;
    if ((rv = pdp_bundle_guard_spec(b, lists, &text, &len)) != TG_OK) {
        return rv;
    }
    if ((spec = cJSON_ParseWithLength(text, len)) == NULL) {
        rv = TG_ENOMEM;
    } else {
        rv = tg_guard_set_compile(out, spec, err, errlen);
    }
    cJSON_Delete(spec);
    free(text);
    return rv;
}
