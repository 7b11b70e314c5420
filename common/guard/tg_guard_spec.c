/* tg_guard_spec.c - reading a guard set's spec (see tg_guard.h): every
 * rule strictly (an unknown field, detector, list, validator or schema
 * keyword is an error naming it), the detector table it builds (each
 * built-in and each list once, shared by the rules that use it) and the
 * regexes and folded terms tg_guard.c compiles. Pure: thread-safe. */
#include "tg_guard_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_GUARD_DETS_MAX 4096 /* detectors in one set */
#define TG_GUARD_TERMS_MAX 200000
#define TG_GUARD_NAME_MAX 64
#define TG_GUARD_MASK_MAX 256

/* tg_guard_fail records one problem as the line "<who>: <what>". */
void
tg_guard__fail(tg_guard_cc *cc, const char *who, const char *fmt, ...)
{
    char    line[768];
    va_list ap;

    if (cc->nerr++ >= TG_GUARD_ERRORS_MAX) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    tg_buf_addf(&cc->err, "%s%s: %s", cc->err.len ? "\n" : "", who, line);
}

void
tg_guard__who(char *who, const tg_guard_set *gs, size_t r)
{
    if (gs->rule[r].id != NULL) {
        snprintf(who, TG_GUARD_WHO_MAX, "rule %s", gs->rule[r].id);
    } else {
        snprintf(who, TG_GUARD_WHO_MAX, "rule #%zu", r + 1);
    }
}

/* tg_guard_fields reports each member of obj not named in known. */
static void
tg_guard_fields(tg_guard_cc *cc, const char *who, const cJSON *obj,
                const char *const *known)
{
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        char   list[256] = "";
        size_t o         = 0;
        size_t i;
        for (i = 0; known[i] != NULL && strcmp(known[i], c->string) != 0; i++) {
        }
        if (known[i] != NULL) {
            continue;
        }
        for (i = 0; known[i] != NULL && o < sizeof(list); i++) {
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
                                  i ? ", " : "", known[i]);
        }
        tg_guard__fail(cc, who, "unknown field \"%s\" (known: %s)", c->string,
                       list);
    }
}

int
tg_guard__det_find(const tg_guard_set *gs, const char *name)
{
    for (size_t i = 0; i < gs->ndet; i++) {
        if (strcmp(gs->det[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* tg_guard_det_add appends a detector; -1 when it cannot (reported). */
static int
tg_guard_det_add(tg_guard_cc *cc, const char *who, const char *name,
                 const char *type, tg_guard_valid_fn valid, tg_guard_kind kind)
{
    tg_guard_set *gs = cc->gs;
    tg_guard_det *d;

    if (gs->ndet >= TG_GUARD_DETS_MAX) {
        tg_guard__fail(cc, who, "too many detectors (at most %d in a set)",
                       TG_GUARD_DETS_MAX);
        return -1;
    }
    if (!tg_vec_reserve(&gs->det, &cc->capdet, gs->ndet + 1, sizeof(*d))) {
        cc->fatal = TG_ENOMEM;
        return -1;
    }
    d  = &gs->det[gs->ndet];
    *d = (tg_guard_det){.name  = strdup(name),
                        .type  = strdup(type),
                        .valid = valid,
                        .kind  = kind};
    if (d->name == NULL || d->type == NULL) {
        free(d->name);
        free(d->type);
        cc->fatal = TG_ENOMEM;
        return -1;
    }
    return (int)gs->ndet++;
}

/* tg_guard_use: rule r uses detector det at each stage it runs at. */
static void
tg_guard_use(tg_guard_cc *cc, int det, size_t r)
{
    unsigned stages = cc->gs->rule[r].stages;

    if (det < 0) {
        return;
    }
    for (unsigned s = 0; s < 2; s++) {
        if ((stages >> s & 1) != 0) {
            cc->gs->det[det].at[s] |= 1ull << r;
        }
    }
    cc->used |= 1ull << r;
}

/* tg_guard_shared: the detector called name, added on first use. */
static int
tg_guard_shared(tg_guard_cc *cc, const char *who, const char *name,
                const char *type, tg_guard_kind kind)
{
    int d = tg_guard__det_find(cc->gs, name);

    return d >= 0 ? d : tg_guard_det_add(cc, who, name, type, NULL, kind);
}

/* tg_guard_eod_anchor: whether regex holds $, \z or \Z outside a class
 * or a \Q..\E quote. The databases scan padding after the text (see
 * TG_GUARD_PAD), where such an anchor would never match. */
static bool
tg_guard_eod_anchor(const char *re)
{
    bool cls = false;

    for (const char *p = re; *p != '\0'; p++) {
        if (p[0] == '\\' && p[1] == 'Q') {
            const char *q = strstr(p + 2, "\\E");
            if (q == NULL) {
                return false;
            }
            p = q + 1;
        } else if (p[0] == '\\') {
            if (p[1] == '\0') {
                return false;
            }
            if (!cls && (p[1] == 'z' || p[1] == 'Z')) {
                return true;
            }
            p++;
        } else if (cls && p[0] == '[' && p[1] == ':' &&
                   strstr(p + 2, ":]") != NULL) {
            p = strstr(p + 2, ":]") + 1; /* [:alpha:] */
        } else if (cls) {
            cls = p[0] != ']';
        } else if (p[0] == '[') {
            cls = true;
            p += p[1] == '^';
            p += p[1] == ']'; /* a ']' first in a class is itself */
        } else if (p[0] == '$') {
            return true;
        }
    }
    return false;
}

/* tg_guard_rx_add checks regex (syntax, bounded and non-empty match) and
 * queues it for the databases of the stages det runs at. */
static void
tg_guard_rx_add(tg_guard_cc *cc, const char *who, int det, size_t r,
                const char *regex, unsigned flags, const char *what)
{
    hs_expr_info_t     *info = NULL;
    hs_compile_error_t *ce   = NULL;
    tg_guard_det       *d    = &cc->gs->det[det];

    if (tg_guard_eod_anchor(regex)) {
        tg_guard__fail(cc, who,
                       "pattern \"%s\" anchors at the end of the text ($, \\z "
                       "or \\Z), which the engine does not support; a "
                       "guardrail matches anywhere, so drop the anchor",
                       what);
        return;
    }
    if (hs_expression_info(regex, flags, &info, &ce) != HS_SUCCESS) {
        const char *m = ce != NULL ? ce->message : "cannot be compiled";
        int         n = (int)strlen(m);
        n             = n > 0 && m[n - 1] == '.' ? n - 1 : n;
        tg_guard__fail(cc, who, "pattern \"%s\": %.*s", what, n, m);
        hs_free_compile_error(ce);
        return;
    }
    if (info->max_width == UINT_MAX) {
        tg_guard__fail(cc, who,
                       "pattern \"%s\" can match text of unbounded length; "
                       "streams hold back the longest possible match, so "
                       "bound every repeat, e.g. {1,64}",
                       what);
    } else if (info->max_width > TG_GUARD_WIDTH_MAX) {
        tg_guard__fail(cc, who,
                       "pattern \"%s\" can match %u bytes, more than the %d "
                       "a stream may hold back; lower its repeats' bounds",
                       what, info->max_width, TG_GUARD_WIDTH_MAX);
    } else if (info->min_width == 0) {
        tg_guard__fail(cc, who, "pattern \"%s\" can match empty text", what);
    } else if (!tg_vec_reserve(&cc->rx, &cc->caprx, cc->nrx + 1,
                               sizeof(*cc->rx))) {
        cc->fatal = TG_ENOMEM;
    } else {
        cc->rx[cc->nrx++] = (tg_guard_rx){regex, flags, (uint16_t)det,
                                          r,     what,  info->max_width};
        d->width = info->max_width > d->width ? info->max_width : d->width;
    }
    free(info);
}

/* tg_guard_lit_add folds one term of detector det and queues it. */
static void
tg_guard_lit_add(tg_guard_cc *cc, const char *who, int det, const cJSON *term,
                 size_t i)
{
    tg_guard_lit l   = {.det = (uint16_t)det};
    size_t       w   = 0;
    const char  *why = NULL;
    tg_err       rv;

    if (!cJSON_IsString(term)) {
        tg_guard__fail(cc, who, "term %zu is not a string", i + 1);
        return;
    }
    if (cc->nlit >= TG_GUARD_TERMS_MAX) {
        if (cc->nlit++ == TG_GUARD_TERMS_MAX) {
            tg_guard__fail(cc, who, "too many terms (at most %d in a set)",
                           TG_GUARD_TERMS_MAX);
        }
        return;
    }
    rv = tg_guard__term(term->valuestring, &l.lit, &l.len, &l.bound, &w, &why);
    if (rv == TG_EINVAL) {
        tg_guard__fail(cc, who, "term \"%.60s\" %s", term->valuestring, why);
        return;
    }
    if (rv != TG_OK || !tg_vec_reserve(&cc->lit, &cc->caplit, cc->nlit + 1,
                                       sizeof(*cc->lit))) {
        free(l.lit);
        cc->fatal = TG_ENOMEM;
        return;
    }
    if (w > TG_GUARD_WIDTH_MAX) {
        tg_guard__fail(cc, who,
                       "term \"%.60s\" is too long: it can match %zu bytes, "
                       "more than the %d a stream may hold back",
                       term->valuestring, w, TG_GUARD_WIDTH_MAX);
        free(l.lit);
        return;
    }
    cc->lit[cc->nlit++] = l;
    cc->gs->det[det].width =
        w > cc->gs->det[det].width ? w : cc->gs->det[det].width;
}

static void
tg_guard_use_builtin(tg_guard_cc *cc, const char *who, size_t r,
                     const tg_guard_builtin *b)
{
    int d = tg_guard__det_find(cc->gs, b->name);

    if (d < 0) {
        d = tg_guard_det_add(cc, who, b->name, b->type, b->valid,
                             TG_GUARD_KIND_REGEX);
        if (d < 0) {
            return;
        }
        tg_guard_rx_add(cc, who, d, r, b->regex,
                        b->hs_flags | HS_FLAG_SOM_LEFTMOST, b->name);
    }
    tg_guard_use(cc, d, r);
}

/* tg_guard_categories writes the built-in categories, comma-separated. */
static void
tg_guard_categories(char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < tg_guard_builtins_n; i++) {
        const char *name = tg_guard_builtins[i].name;
        size_t      n    = strcspn(name, ".");
        bool        seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            seen = strncmp(tg_guard_builtins[j].name, name, n) == 0 &&
                   tg_guard_builtins[j].name[n] == '.';
        }
        if (!seen && o < cap) {
            o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? ", " : "",
                                  (int)n, name);
        }
    }
}

/* tg_guard_select adds the built-ins sel names: a name, a category or
 * "category.*". */
static void
tg_guard_select(tg_guard_cc *cc, const char *who, size_t r, const char *sel)
{
    const tg_guard_builtin *b     = tg_guard_builtin_find(sel);
    size_t                  n     = strlen(sel);
    size_t                  found = 0;
    char                    cats[256];

    if (b != NULL) {
        tg_guard_use_builtin(cc, who, r, b);
        return;
    }
    if (n > 2 && strcmp(sel + n - 2, ".*") == 0) {
        n -= 2;
    }
    for (size_t i = 0; memchr(sel, '.', n) == NULL && i < tg_guard_builtins_n;
         i++) {
        if (strncmp(tg_guard_builtins[i].name, sel, n) == 0 &&
            tg_guard_builtins[i].name[n] == '.') {
            tg_guard_use_builtin(cc, who, r, &tg_guard_builtins[i]);
            found++;
        }
    }
    if (found == 0) {
        tg_guard_categories(cats, sizeof(cats));
        tg_guard__fail(cc, who,
                       "unknown detector \"%s\"; name a category (%s), "
                       "\"<category>.*\" or one detector (run `tollgate-pdp "
                       "guardrails detectors` for the list)",
                       sel, cats);
    }
}

static void
tg_guard_rule_detectors(tg_guard_cc *cc, const char *who, size_t r,
                        const cJSON *arr)
{
    const cJSON *it;

    if (arr == NULL) {
        return;
    }
    if (!cJSON_IsArray(arr)) {
        tg_guard__fail(cc, who, "\"detectors\" must be a list of names");
        return;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            tg_guard__fail(cc, who, "\"detectors\" must be a list of names");
            return;
        }
        tg_guard_select(cc, who, r, it->valuestring);
    }
}

static bool
tg_guard_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TG_GUARD_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
            return false;
        }
    }
    return true;
}

/* tg_guard_pattern_type: the type a custom pattern masks as: its "type",
 * or its name in upper case. */
static void
tg_guard_pattern_type(const char *name, const cJSON *type, char *out,
                      size_t cap)
{
    if (cJSON_IsString(type)) {
        snprintf(out, cap, "%s", type->valuestring);
        return;
    }
    snprintf(out, cap, "%s", name);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    }
}

static void
tg_guard_rule_pattern(tg_guard_cc *cc, const char *who, size_t r,
                      const cJSON *p)
{
    static const char *const known[] = {"name",      "regex",    "type",
                                        "validator", "caseless", NULL};
    const cJSON             *name = cJSON_GetObjectItemCaseSensitive(p, "name");
    const cJSON             *re = cJSON_GetObjectItemCaseSensitive(p, "regex");
    const cJSON             *type = cJSON_GetObjectItemCaseSensitive(p, "type");
    const cJSON      *val = cJSON_GetObjectItemCaseSensitive(p, "validator");
    const cJSON      *cl  = cJSON_GetObjectItemCaseSensitive(p, "caseless");
    char              pwho[TG_GUARD_WHO_MAX + 80];
    char              dname[TG_GUARD_NAME_MAX + 8];
    char              tname[TG_GUARD_NAME_MAX + 1];
    tg_guard_valid_fn fn  = NULL;
    bool              bad = false;
    int               d;

    if (!cJSON_IsString(name) || !tg_guard_name_ok(name->valuestring)) {
        tg_guard__fail(cc, who,
                       "a pattern needs a \"name\" of at most %d "
                       "letters, digits, '_' or '-'",
                       TG_GUARD_NAME_MAX);
        return;
    }
    snprintf(pwho, sizeof(pwho), "%s: pattern \"%s\"", who, name->valuestring);
    snprintf(dname, sizeof(dname), "custom.%s", name->valuestring);
    tg_guard_fields(cc, pwho, p, known);
    if (!cJSON_IsString(re) || re->valuestring[0] == '\0') {
        tg_guard__fail(cc, pwho, "needs a \"regex\"");
        bad = true;
    }
    if (type != NULL &&
        (!cJSON_IsString(type) || !tg_guard_name_ok(type->valuestring))) {
        tg_guard__fail(cc, pwho,
                       "\"type\" must be a name (letters, digits, "
                       "'_' or '-')");
        bad = true;
    }
    if (val != NULL &&
        (!cJSON_IsString(val) ||
         (fn = tg_guard_validator_find(val->valuestring)) == NULL)) {
        tg_guard__fail(cc, pwho, "unknown validator %s%s%s (known: %s)",
                       cJSON_IsString(val) ? "\"" : "",
                       cJSON_IsString(val) ? val->valuestring : "(not a name)",
                       cJSON_IsString(val) ? "\"" : "",
                       tg_guard_validator_names());
        bad = true;
    }
    if (cl != NULL && !cJSON_IsBool(cl)) {
        tg_guard__fail(cc, pwho, "\"caseless\" must be true or false");
        bad = true;
    }
    if (bad) {
        return;
    }
    tg_guard_pattern_type(name->valuestring, type, tname, sizeof(tname));
    d = tg_guard_det_add(cc, who, dname, tname, fn, TG_GUARD_KIND_REGEX);
    if (d >= 0) {
        tg_guard_use(cc, d, r);
        tg_guard_rx_add(cc, who, d, r, re->valuestring,
                        HS_FLAG_UTF8 | HS_FLAG_SOM_LEFTMOST |
                            (cJSON_IsTrue(cl) ? HS_FLAG_CASELESS : 0),
                        name->valuestring);
    }
}

static void
tg_guard_rule_patterns(tg_guard_cc *cc, const char *who, size_t r,
                       const cJSON *arr)
{
    const cJSON *p;

    if (arr == NULL) {
        return;
    }
    if (!cJSON_IsArray(arr)) {
        tg_guard__fail(cc, who, "\"patterns\" must be a list of objects");
        return;
    }
    cJSON_ArrayForEach(p, arr)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
        if (!cJSON_IsObject(p)) {
            tg_guard__fail(cc, who, "\"patterns\" must be a list of objects");
            return;
        }
        for (const cJSON *q = arr->child; q != p && cJSON_IsString(name);
             q              = q->next) {
            const cJSON *qn = cJSON_GetObjectItemCaseSensitive(q, "name");
            if (cJSON_IsString(qn) &&
                strcmp(qn->valuestring, name->valuestring) == 0) {
                tg_guard__fail(cc, who, "two patterns are called \"%s\"",
                               name->valuestring);
                name = NULL;
                break;
            }
        }
        if (name != NULL) {
            tg_guard_rule_pattern(cc, who, r, p);
        }
    }
}

static void
tg_guard_rule_terms(tg_guard_cc *cc, const char *who, size_t r,
                    const cJSON *arr)
{
    const cJSON *t;
    size_t       i = 0;
    int          d;

    if (arr == NULL) {
        return;
    }
    if (!cJSON_IsArray(arr)) {
        tg_guard__fail(cc, who, "\"terms\" must be a list of strings");
        return;
    }
    if ((d = tg_guard_det_add(cc, who, "terms", "TERM", NULL,
                              TG_GUARD_KIND_TERMS)) < 0) {
        return;
    }
    tg_guard_use(cc, d, r);
    cJSON_ArrayForEach(t, arr)
    {
        tg_guard_lit_add(cc, who, d, t, i++);
    }
}

/* tg_guard_rule_lists: each named list is one detector "list.<name>",
 * shared by the rules that use it; its terms are checked on first use. */
static void
tg_guard_rule_lists(tg_guard_cc *cc, const char *who, size_t r,
                    const cJSON *arr)
{
    const cJSON *it;

    if (arr == NULL) {
        return;
    }
    if (!cJSON_IsArray(arr)) {
        tg_guard__fail(cc, who, "\"lists\" must be a list of list names");
        return;
    }
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *l;
        char         dname[TG_GUARD_WHO_MAX];
        char         lwho[TG_GUARD_WHO_MAX];
        size_t       i = 0;
        int          d;
        if (!cJSON_IsString(it)) {
            tg_guard__fail(cc, who, "\"lists\" must be a list of list names");
            return;
        }
        l = cJSON_GetObjectItemCaseSensitive(cc->lists, it->valuestring);
        if (!cJSON_IsObject(l)) {
            tg_guard__fail(cc, who, "list \"%s\" not found", it->valuestring);
            continue;
        }
        snprintf(dname, sizeof(dname), "list.%s", it->valuestring);
        snprintf(lwho, sizeof(lwho), "list %s", it->valuestring);
        if ((d = tg_guard__det_find(cc->gs, dname)) < 0) {
            const cJSON *terms = cJSON_GetObjectItemCaseSensitive(l, "terms");
            const cJSON *t;
            d = tg_guard_det_add(cc, who, dname, "TERM", NULL,
                                 TG_GUARD_KIND_TERMS);
            if (d >= 0 && cJSON_IsArray(terms)) { /* else reported */
                cJSON_ArrayForEach(t, terms)
                {
                    tg_guard_lit_add(cc, lwho, d, t, i++);
                }
            }
        }
        tg_guard_use(cc, d, r);
    }
}

static void
tg_guard_rule_output(tg_guard_cc *cc, const char *who, size_t r, const cJSON *o)
{
    static const char *const known[] = {"json", "schema", "max_length", NULL};
    tg_guard_rule           *ru      = &cc->gs->rule[r];
    const cJSON             *json = cJSON_GetObjectItemCaseSensitive(o, "json");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(o, "schema");
    const cJSON *maxlen = cJSON_GetObjectItemCaseSensitive(o, "max_length");
    char         owho[TG_GUARD_WHO_MAX + 16];
    char         why[256];

    if (o == NULL) {
        return;
    }
    snprintf(owho, sizeof(owho), "%s: output", who);
    if (!cJSON_IsObject(o)) {
        tg_guard__fail(cc, who, "\"output\" must be an object");
        return;
    }
    tg_guard_fields(cc, owho, o, known);
    if ((ru->stages & 1u << TG_GUARD_OUTPUT) == 0) {
        tg_guard__fail(cc, who,
                       "\"output\" checks the answer, but the rule "
                       "does not run at stage \"output\"");
    }
    if (json != NULL && !cJSON_IsBool(json)) {
        tg_guard__fail(cc, owho, "\"json\" must be true or false");
    } else if (cJSON_IsTrue(json)) {
        ru->json = true;
        tg_guard_use(
            cc,
            tg_guard_shared(cc, who, "shape.json", "JSON", TG_GUARD_KIND_SHAPE),
            r);
    }
    if (schema != NULL && !tg_guard__schema_check(schema, why, sizeof(why))) {
        tg_guard__fail(cc, owho, "schema: %s", why);
    } else if (schema != NULL) {
        if ((ru->schema = cJSON_Duplicate(schema, true)) == NULL) {
            cc->fatal = TG_ENOMEM;
        }
        tg_guard_use(cc,
                     tg_guard_shared(cc, who, "shape.schema", "SCHEMA",
                                     TG_GUARD_KIND_SHAPE),
                     r);
    }
    if (maxlen != NULL &&
        (!cJSON_IsNumber(maxlen) || maxlen->valuedouble < 1 ||
         maxlen->valuedouble > UINT32_MAX ||
         maxlen->valuedouble != (double)(uint32_t)maxlen->valuedouble)) {
        tg_guard__fail(cc, owho,
                       "\"max_length\" must be a whole number of "
                       "bytes, at least 1");
    } else if (maxlen != NULL) {
        ru->max_length = (size_t)maxlen->valuedouble;
        tg_guard_use(cc,
                     tg_guard_shared(cc, who, "shape.max_length", "MAX_LENGTH",
                                     TG_GUARD_KIND_SHAPE),
                     r);
    }
}

static void
tg_guard_rule_head(tg_guard_cc *cc, const char *who, size_t r, const cJSON *js)
{
    tg_guard_rule *ru     = &cc->gs->rule[r];
    const cJSON   *stages = cJSON_GetObjectItemCaseSensitive(js, "stages");
    const cJSON   *action = cJSON_GetObjectItemCaseSensitive(js, "action");
    const cJSON   *mask   = cJSON_GetObjectItemCaseSensitive(js, "mask");
    const cJSON   *canary = cJSON_GetObjectItemCaseSensitive(js, "canary");
    const cJSON   *it;
    bool           bad = false;

    ru->stages = 1u << TG_GUARD_INPUT | 1u << TG_GUARD_OUTPUT;
    if (stages != NULL) {
        ru->stages = 0;
        bad        = !cJSON_IsArray(stages) || stages->child == NULL;
        cJSON_ArrayForEach(it, (cJSON_IsArray(stages) ? stages : NULL))
        {
            const char *v = cJSON_IsString(it) ? it->valuestring : "";
            ru->stages |= strcmp(v, "input") == 0    ? 1u << TG_GUARD_INPUT
                          : strcmp(v, "output") == 0 ? 1u << TG_GUARD_OUTPUT
                                                     : (bad = true, 0u);
        }
        if (bad) {
            tg_guard__fail(cc, who,
                           "\"stages\" must list \"input\", "
                           "\"output\" or both");
        }
    }
    ru->action = TG_GUARD_BLOCK;
    if (action != NULL) {
        const char *v = cJSON_IsString(action) ? action->valuestring : "";
        ru->action    = strcmp(v, "audit") == 0    ? TG_GUARD_AUDIT
                        : strcmp(v, "redact") == 0 ? TG_GUARD_REDACT
                                                   : TG_GUARD_BLOCK;
        if (strcmp(v, "block") != 0 && ru->action == TG_GUARD_BLOCK) {
            tg_guard__fail(cc, who,
                           "\"action\" must be \"block\", "
                           "\"redact\" or \"audit\"");
        }
    }
    if (mask != NULL && (!cJSON_IsString(mask) ||
                         strlen(mask->valuestring) > TG_GUARD_MASK_MAX)) {
        tg_guard__fail(cc, who, "\"mask\" must be a string of at most %d bytes",
                       TG_GUARD_MASK_MAX);
    }
    ru->mask =
        strdup(cJSON_IsString(mask) ? mask->valuestring : "[REDACTED:{type}]");
    if (ru->mask == NULL) {
        cc->fatal = TG_ENOMEM;
    }
    if (canary != NULL && !cJSON_IsBool(canary)) {
        tg_guard__fail(cc, who, "\"canary\" must be true or false");
    }
    ru->canary = cJSON_IsTrue(canary);
}

static void
tg_guard_rule_read(tg_guard_cc *cc, size_t r, const cJSON *js)
{
    static const char *const known[] = {
        "id",     "stages", "detectors", "terms", "lists", "patterns",
        "output", "canary", "action",    "mask",  NULL};
    tg_guard_set *gs   = cc->gs;
    const cJSON  *id   = cJSON_GetObjectItemCaseSensitive(js, "id");
    size_t        nerr = cc->nerr;
    char          who[TG_GUARD_WHO_MAX];

    if (cJSON_IsString(id) && id->valuestring[0] != '\0' &&
        strlen(id->valuestring) <= 128 &&
        (gs->rule[r].id = strdup(id->valuestring)) == NULL) {
        cc->fatal = TG_ENOMEM;
        return;
    }
    tg_guard__who(who, gs, r);
    if (!cJSON_IsObject(js)) {
        tg_guard__fail(cc, who, "must be an object");
        return;
    }
    if (gs->rule[r].id == NULL) {
        tg_guard__fail(cc, who, "needs an \"id\": a string of 1 to 128 bytes");
    }
    for (size_t q = 0; q < r && gs->rule[r].id != NULL; q++) {
        if (gs->rule[q].id != NULL &&
            strcmp(gs->rule[q].id, gs->rule[r].id) == 0) {
            tg_guard__fail(cc, who, "duplicate rule id (rules %zu and %zu)",
                           q + 1, r + 1);
        }
    }
    tg_guard_fields(cc, who, js, known);
    tg_guard_rule_head(cc, who, r, js);
    tg_guard_rule_output(cc, who, r,
                         cJSON_GetObjectItemCaseSensitive(js, "output"));
    tg_guard_rule_detectors(cc, who, r,
                            cJSON_GetObjectItemCaseSensitive(js, "detectors"));
    tg_guard_rule_patterns(cc, who, r,
                           cJSON_GetObjectItemCaseSensitive(js, "patterns"));
    tg_guard_rule_terms(cc, who, r,
                        cJSON_GetObjectItemCaseSensitive(js, "terms"));
    tg_guard_rule_lists(cc, who, r,
                        cJSON_GetObjectItemCaseSensitive(js, "lists"));
    if (gs->rule[r].canary) {
        tg_guard_use(cc,
                     tg_guard_shared(cc, who, "injection.canary_leak", "CANARY",
                                     TG_GUARD_KIND_CANARY),
                     r);
    }
    if ((cc->used >> r & 1) == 0 && cc->nerr == nerr) {
        tg_guard__fail(cc, who,
                       "checks nothing: give it detectors, terms, "
                       "lists, patterns, output checks or a canary");
    }
}

/* tg_guard_lists_check: the shape of spec.lists; a list's terms are
 * checked when a rule uses it. */
static void
tg_guard_lists_check(tg_guard_cc *cc, const cJSON *lists)
{
    static const char *const known[] = {"version", "terms", NULL};
    const cJSON             *l;

    if (lists == NULL) {
        return;
    }
    if (!cJSON_IsObject(lists)) {
        tg_guard__fail(cc, "spec", "\"lists\" must map names to lists");
        cc->lists = NULL;
        return;
    }
    cJSON_ArrayForEach(l, lists)
    {
        char         who[TG_GUARD_WHO_MAX];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(l, "version");
        snprintf(who, sizeof(who), "list %s", l->string);
        if (!cJSON_IsObject(l) ||
            !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(l, "terms"))) {
            tg_guard__fail(cc, who,
                           "must be an object with \"terms\": a "
                           "list of strings");
            continue;
        }
        tg_guard_fields(cc, who, l, known);
        if (v != NULL && !cJSON_IsNumber(v)) {
            tg_guard__fail(cc, who, "\"version\" must be a number");
        }
    }
}

void
tg_guard__read(tg_guard_cc *cc, const cJSON *spec)
{
    static const char *const known[] = {"rules", "lists", NULL};
    tg_guard_set            *gs      = cc->gs;
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(spec, "rules");
    const cJSON *r;
    size_t       i = 0;

    if (!cJSON_IsObject(spec) || !cJSON_IsArray(rules)) {
        tg_guard__fail(cc, "spec", "must be an object with \"rules\": a list");
        return;
    }
    tg_guard_fields(cc, "spec", spec, known);
    gs->nrule = (size_t)cJSON_GetArraySize(rules);
    if (gs->nrule > TG_GUARD_RULES_MAX) {
        tg_guard__fail(cc, "spec", "%zu rules; a set holds at most %d",
                       gs->nrule, TG_GUARD_RULES_MAX);
        gs->nrule = 0;
        return;
    }
    if ((gs->rule = calloc(gs->nrule + 1, sizeof(*gs->rule))) == NULL) {
        cc->fatal = TG_ENOMEM;
        return;
    }
    cc->lists = cJSON_GetObjectItemCaseSensitive(spec, "lists");
    tg_guard_lists_check(cc, cc->lists);
    cJSON_ArrayForEach(r, rules)
    {
        if (cc->fatal != TG_OK) {
            return;
        }
        tg_guard_rule_read(cc, i, r);
        for (unsigned s = 0; s < 2; s++) {
            gs->at[s] |= (uint64_t)(gs->rule[i].stages >> s & 1) << i;
        }
        i++;
    }
}
