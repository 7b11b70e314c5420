/* pdp_policy_compile_budget.c - the compiler's budget stage: scope,
 * window and exact micro-USD limit of a budget rule, its alerts, and that
 * every model it can apply to has a price. pdp_usd_micro and the window
 * parser are also public (pdp_policy.h). Not thread-safe per pdp_cc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_compile_int.h"

/* pdp_usd_micro reads a JSON number's text as an exact decimal in
 * micro-USD (no double in between: "0.1" is 100000, never 99999). Returns
 * 0 and sets *why when it is not a number > 0 and <= 1e9 with at most 6
 * decimals. */
int64_t
pdp_usd_micro(const char *t, const char **why)
{
    char     dig[64];
    size_t   nd    = 0;
    int64_t  e10   = 6; /* micro = digits x 10^e10 */
    int64_t  exp   = 0;
    bool     neg   = false;
    bool     frac  = false;
    uint64_t micro = 0;

    *why = "expects a number of USD greater than 0";
    if (*t == '-') {
        neg = true;
        t++;
    }
    for (; (*t >= '0' && *t <= '9') || *t == '.'; t++) {
        if (*t == '.') {
            frac = true;
            continue;
        }
        if (nd == 0 && *t == '0') {
            e10 -= frac ? 1 : 0;
            continue; /* leading zeros */
        }
        if (nd == sizeof(dig)) {
            *why = "is not a plausible amount of USD (at most 1000000000)";
            return 0;
        }
        dig[nd++] = *t;
        e10 -= frac ? 1 : 0;
    }
    if (*t == 'e' || *t == 'E') {
        bool eneg = false;
        t++;
        if (*t == '+' || *t == '-') {
            eneg = *t == '-';
            t++;
        }
        for (; *t >= '0' && *t <= '9'; t++) {
            exp = exp * 10 + (*t - '0');
            if (exp > 1000) {
                exp = 1000;
            }
        }
        e10 += eneg ? -exp : exp;
    }
    while (nd > 0 && dig[nd - 1] == '0') {
        nd--;
        e10++;
    }
    if (nd == 0 || neg) {
        return 0;
    }
    if ((int64_t)nd + e10 > 16) {
        *why = "is not a plausible amount of USD (at most 1000000000)";
        return 0;
    }
    if (e10 < 0) {
        *why = "has more than 6 decimals (budgets count whole micro-USD)";
        return 0;
    }
    for (size_t i = 0; i < nd; i++) {
        micro = micro * 10 + (uint64_t)(dig[i] - '0');
    }
    for (int64_t i = 0; i < e10; i++) {
        micro *= 10;
    }
    if (micro > (uint64_t)PDP_BUDGET_LIMIT_MAX) {
        *why = "is not a plausible amount of USD (at most 1000000000)";
        return 0;
    }
    return (int64_t)micro;
}

static const char *const pdp_window_names[] = {"daily", "weekly", "monthly",
                                               "rolling"};
static const char *const pdp_scope_names[]  = {"key", "tenant", "user", "model",
                                               "metadata"};

const char *
pdp_window_name(uint8_t window)
{
    return window <= PDP_WINDOW_ROLLING ? pdp_window_names[window] : "rolling";
}

const char *
pdp_scope_name(uint8_t scope)
{
    return scope <= PDP_SCOPE_META ? pdp_scope_names[scope] : "key";
}

/* pdp_window_parse parses "daily", "weekly", "monthly" or "rolling:<N>h". */
bool
pdp_window_parse(const char *s, uint8_t *w, int32_t *hours)
{
    long        n = 0;
    const char *p;

    for (int i = PDP_WINDOW_DAILY; i < PDP_WINDOW_ROLLING; i++) {
        if (strcmp(s, pdp_window_names[i]) == 0) {
            *w = (uint8_t)i;
            return true;
        }
    }
    if (strncmp(s, "rolling:", 8) != 0) {
        return false;
    }
    for (p = s + 8; *p >= '0' && *p <= '9' && n <= PDP_BUDGET_ROLLING_H_MAX;
         p++) {
        n = n * 10 + (*p - '0');
    }
    if (p == s + 8 || strcmp(p, "h") != 0 || n < 1 ||
        n > PDP_BUDGET_ROLLING_H_MAX || s[8] == '0') {
        return false;
    }
    *w     = PDP_WINDOW_ROLLING;
    *hours = (int32_t)n;
    return true;
}

/* pdp_cc_pricing is the table budgets are priced with: the deployment's
 * pdp.pricing_file when the config sets one (it overrides), else the
 * bundle's own pricing.json, else none (NULL, pr_state 1). r is the rule
 * an error is reported at (NULL: none; a table that does not load is then
 * reported by the bundle's syntax check). */
tg_pricing *
pdp_cc_pricing(pdp_cc *cc, const cJSON *r)
{
    char        path[512];
    char        msg[1024];
    const char *file = NULL;
    FILE       *f;

    if (cc->pr_state != 0) {
        return cc->pr;
    }
    cc->pr_state = 1;
    if (cc->cfg != NULL && cc->cfg->pdp.pricing_file != NULL) {
        file = cc->cfg->pdp.pricing_file;
    } else {
        snprintf(path, sizeof(path), "%s/pricing.json", cc->b->dir);
        if ((f = fopen(path, "r")) != NULL) {
            fclose(f);
            file = path;
        }
    }
    if (file == NULL) {
        return NULL;
    }
    snprintf(cc->pr_src, sizeof(cc->pr_src), "%s", file);
    if (tg_pricing_load(&cc->pr, file, msg, sizeof(msg)) != TG_OK) {
        cc->pr_state = 2;
        cc->pr       = NULL;
        if (r != NULL) {
            PDP_ERR(cc, r, "cannot check budget prices: %s", msg);
        }
    }
    return cc->pr;
}

/* A set of model names (pool offsets) a rule's `when` restricts
 * request.model to. */
typedef struct pdp_cc_models {
    pdp_str *v;
    uint32_t n;
    bool     restricted;
} pdp_cc_models;

static bool
pdp_cc_models_has(const pdp_cc *cc, const pdp_cc_models *m, const char *s)
{
    for (uint32_t i = 0; i < m->n; i++) {
        if (strcmp(pdp_cc_s(cc, m->v[i]), s) == 0) {
            return true;
        }
    }
    return false;
}

static void
pdp_cc_models_add(pdp_cc *cc, pdp_cc_models *m, pdp_str s)
{
    pdp_str *nv;

    if (pdp_cc_models_has(cc, m, pdp_cc_s(cc, s))) {
        return;
    }
    if ((nv = realloc(m->v, (m->n + 1) * sizeof(*nv))) == NULL) {
        cc->oom = true;
        return;
    }
    m->v         = nv;
    m->v[m->n++] = s;
}

/* pdp_cc_models_of: the models node n can match, when it can only match
 * named ones: eq/in on request.model, an `all` with such a condition
 * (intersected), an `any` of only such conditions (united). Anything else
 * is unrestricted. */
static void
pdp_cc_models_of(pdp_cc *cc, uint32_t n, pdp_cc_models *out)
{
    const pdp_node *nd = &cc->b->nodes[n];

    memset(out, 0, sizeof(*out));
    if (nd->op == PDP_OP_EQ && nd->attr == PDP_A_MODEL &&
        nd->vtype == PDP_T_STR) {
        out->restricted = true;
        pdp_cc_models_add(cc, out, nd->u.str);
    } else if (nd->op == PDP_OP_IN && nd->attr == PDP_A_MODEL &&
               cc->b->sets[nd->u.idx].type == PDP_T_STR) {
        const pdp_set *set = &cc->b->sets[nd->u.idx];
        out->restricted    = true;
        for (uint32_t i = 0; set->slots != NULL && i <= set->mask; i++) {
            if (set->slots[i].s.len != UINT32_MAX) {
                pdp_cc_models_add(cc, out, set->slots[i].s);
            }
        }
    } else if (nd->op == PDP_OP_ALL || nd->op == PDP_OP_ANY) {
        bool all        = nd->op == PDP_OP_ALL;
        out->restricted = !all;
        for (uint32_t c = n + 1; c < nd->end; c = cc->b->nodes[c].end) {
            pdp_cc_models sub;
            pdp_cc_models_of(cc, c, &sub);
            if (all && sub.restricted && !out->restricted) {
                *out = sub;
                continue;
            }
            if (all && sub.restricted) {
                uint32_t k = 0;
                for (uint32_t i = 0; i < out->n; i++) {
                    if (pdp_cc_models_has(cc, &sub, pdp_cc_s(cc, out->v[i]))) {
                        out->v[k++] = out->v[i];
                    }
                }
                out->n = k;
            } else if (!all && !sub.restricted) {
                out->restricted = false;
            } else if (!all) {
                for (uint32_t i = 0; i < sub.n; i++) {
                    pdp_cc_models_add(cc, out, sub.v[i]);
                }
            }
            free(sub.v);
        }
        if (!out->restricted) {
            out->n = 0;
        }
    }
}

/* pdp_cc_priced: the PDP can cost model as it costs usage (pdp_server.c):
 * the price table knows it, or every catalog deployment of it has its own
 * "pricing" or calls an upstream model the table knows. */
static bool
pdp_cc_priced(const pdp_cc *cc, const tg_pricing *pr, const char *model)
{
    tg_price p;
    size_t   n = 0;

    if (tg_pricing_find(pr, model, &p)) {
        return true;
    }
    for (size_t i = 0; cc->cfg != NULL && i < cc->cfg->n_deployments; i++) {
        const tg_deployment *d = &cc->cfg->deployments[i];
        if (strcmp(d->model, model) != 0) {
            continue;
        }
        if (!d->has_price && !(d->upstream_model != NULL &&
                               tg_pricing_find(pr, d->upstream_model, &p))) {
            return false;
        }
        n++;
    }
    return n > 0;
}

/* pdp_cc_budget_prices refuses a budget on a model that has no price:
 * the models the rule's `when` names, else every catalog model. */
static void
pdp_cc_budget_prices(pdp_cc *cc, const cJSON *r, const pdp_rule *rule)
{
    pdp_cc_models m;
    tg_pricing   *pr;
    tg_buf        missing;
    uint32_t      nmissing = 0;

    pdp_cc_models_of(cc, rule->root, &m);
    if (!m.restricted && cc->cfg == NULL) {
        PDP_ERR(cc, r,
                "a budget rule that does not name its models in \"when\" "
                "needs the deployments catalog to check their prices: pass "
                "--config");
        goto out;
    }
    pr = pdp_cc_pricing(cc, r);
    if (cc->pr_state == 2) {
        goto out;
    }
    if (pr == NULL) {
        PDP_ERR(cc, r,
                "a budget needs prices, and there is no pricing table: set "
                "pdp.pricing_file in the config or add pricing.json to the "
                "bundle");
        goto out;
    }
    tg_buf_init(&missing, 0);
    if (m.restricted) {
        for (uint32_t i = 0; i < m.n; i++) {
            const char *model = pdp_cc_s(cc, m.v[i]);
            if (!pdp_cc_priced(cc, pr, model)) {
                tg_buf_addf(&missing, "%s\"%s\"", nmissing ? ", " : "", model);
                nmissing++;
            }
        }
    } else {
        for (uint32_t g = 0; g < cc->b->ngroups; g++) {
            const char *model = pdp_cc_s(cc, cc->b->groups[g].model);
            if (!pdp_cc_priced(cc, pr, model)) {
                tg_buf_addf(&missing, "%s\"%s\"", nmissing ? ", " : "", model);
                nmissing++;
            }
        }
    }
    if (nmissing > 0) {
        PDP_ERR(cc, r,
                "budget on %s no price in %s: %s (add %s to the pricing "
                "table, or restrict the rule with {\"in\": "
                "[\"request.model\", [...]]})",
                m.restricted ? (nmissing > 1 ? "models with" : "a model with")
                             : (nmissing > 1 ? "every model, but catalog "
                                               "models have"
                                             : "every model, but a catalog "
                                               "model has"),
                cc->pr_src,
                tg_buf_error(&missing) == TG_OK && missing.data != NULL
                    ? missing.data
                    : "(out of memory listing them)",
                nmissing > 1 ? "them" : "it");
    }
    tg_buf_fini(&missing);
out:
    free(m.v);
}

/* pdp_cc_budget_alerts: "thresholds" (integers 1..99, ascending, unique,
 * at most PDP_BUDGET_THRESHOLDS_MAX; calendar windows only) and
 * "webhook" (an http:// or https:// URL). */
static void
pdp_cc_budget_alerts(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    const cJSON *tj = cJSON_GetObjectItemCaseSensitive(r, "thresholds");
    const cJSON *hj = cJSON_GetObjectItemCaseSensitive(r, "webhook");
    const cJSON *e;
    int          prev = 0;

    if (tj != NULL) {
        if (!cJSON_IsArray(tj)) {
            PDP_ERR(cc, tj,
                    "\"thresholds\" expects a list of percentages (integers "
                    "1 to 99, ascending), got %s",
                    pdp_json_type(tj));
        } else if (cJSON_GetArraySize(tj) > PDP_BUDGET_THRESHOLDS_MAX) {
            PDP_ERR(cc, tj, "\"thresholds\" has %d values; at most %d",
                    cJSON_GetArraySize(tj), PDP_BUDGET_THRESHOLDS_MAX);
        } else {
            cJSON_ArrayForEach(e, tj)
            {
                double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
                if (!cJSON_IsNumber(e) || d != (double)(int)d || d < 1 ||
                    d > 99) {
                    PDP_ERR(cc, e,
                            "threshold %s is not valid; expected an integer "
                            "percentage from 1 to 99",
                            cJSON_IsNumber(e)
                                ? (tg_json_doc_number_text(cc->doc, e) != NULL
                                       ? tg_json_doc_number_text(cc->doc, e)
                                       : "?")
                                : pdp_json_type(e));
                    rule->nthr = 0;
                    break;
                }
                if ((int)d <= prev) {
                    PDP_ERR(cc, e,
                            "threshold %d is not above the one before it "
                            "(%d); thresholds must be ascending and unique",
                            (int)d, prev);
                    rule->nthr = 0;
                    break;
                }
                prev                    = (int)d;
                rule->thr[rule->nthr++] = (uint8_t)d;
            }
            if (rule->nthr > 0 && rule->window == PDP_WINDOW_ROLLING) {
                PDP_ERR(cc, tj,
                        "\"thresholds\" need a calendar window (daily, "
                        "weekly or monthly): a rolling window has no start "
                        "to alert once per");
                rule->nthr = 0;
            }
        }
    }
    if (hj != NULL) {
        if (!cJSON_IsString(hj)) {
            PDP_ERR(cc, hj, "\"webhook\" expects a URL string, got %s",
                    pdp_json_type(hj));
        } else if ((strncmp(hj->valuestring, "http://", 7) != 0 &&
                    strncmp(hj->valuestring, "https://", 8) != 0) ||
                   strlen(hj->valuestring) >= PDP_WEBHOOK_MAX ||
                   strpbrk(hj->valuestring, " \t\r\n") != NULL ||
                   hj->valuestring[strcspn(hj->valuestring, ":") + 3] == '\0') {
            PDP_ERR(cc, hj,
                    "\"webhook\" \"%s\" is not valid; expected an "
                    "http:// or https:// URL (at most %d bytes, no spaces)",
                    hj->valuestring, PDP_WEBHOOK_MAX - 1);
        } else {
            rule->webhook = pdp_cc_cstr(cc, hj->valuestring);
        }
    }
}

void
pdp_cc_budget(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    static const char *const actions[] = {"deny", "clamp"};
    const cJSON             *sc = cJSON_GetObjectItemCaseSensitive(r, "scope");
    const cJSON             *wj = cJSON_GetObjectItemCaseSensitive(r, "window");
    const cJSON *lj = cJSON_GetObjectItemCaseSensitive(r, "limit_usd");
    const char  *why;
    int          a;
    bool         ok = true;

    if (sc == NULL) {
        ok = false;
        PDP_ERR(cc, r,
                "missing required field \"scope\" (\"tenant\", \"key\", "
                "\"user\", \"model\" or \"metadata.<key>\")");
    } else if (!cJSON_IsString(sc)) {
        ok = false;
        PDP_ERR(cc, sc, "\"scope\" expects a string, got %s",
                pdp_json_type(sc));
    } else if (strncmp(sc->valuestring, "metadata.", 9) == 0) {
        if (!pdp_key_ok(sc->valuestring + 9)) {
            ok = false;
            PDP_ERR(cc, sc,
                    "scope \"%s\" needs a metadata key after \"metadata.\" "
                    "(1 to %d of A-Z a-z 0-9 . _ - /)",
                    sc->valuestring, TG_MSG_META_KEY_MAX - 1);
        } else {
            rule->scope    = PDP_SCOPE_META;
            rule->meta_key = pdp_cc_cstr(cc, sc->valuestring + 9);
        }
    } else {
        static const char *const scopes[] = {"key", "tenant", "user", "model",
                                             "metadata.<key>"};
        int                      s        = -1;
        for (int i = PDP_SCOPE_KEY; i < PDP_SCOPE_META; i++) {
            if (strcmp(sc->valuestring, pdp_scope_name((uint8_t)i)) == 0) {
                s = i;
            }
        }
        if (s < 0) {
            ok = false;
            pdp_cc_enum(cc, sc, "scope", sc->valuestring, scopes, 5);
        }
        rule->scope = (uint8_t)(s < 0 ? 0 : s);
    }
    if (wj == NULL) {
        ok = false;
        PDP_ERR(cc, r,
                "missing required field \"window\" (\"daily\", \"weekly\", "
                "\"monthly\" or \"rolling:<hours>h\")");
    } else if (!cJSON_IsString(wj) ||
               !pdp_window_parse(wj->valuestring, &rule->window,
                                 &rule->window_h)) {
        ok = false;
        PDP_ERR(cc, wj,
                "window %s%s%s is not valid; expected \"daily\", \"weekly\", "
                "\"monthly\" (calendar, in the bundle's time zone) or "
                "\"rolling:<N>h\" with N from 1 to %d",
                cJSON_IsString(wj) ? "\"" : "",
                cJSON_IsString(wj) ? wj->valuestring : pdp_json_type(wj),
                cJSON_IsString(wj) ? "\"" : "", PDP_BUDGET_ROLLING_H_MAX);
    }
    if (lj == NULL) {
        ok = false;
        PDP_ERR(cc, r, "missing required field \"limit_usd\"");
    } else if (!cJSON_IsNumber(lj)) {
        ok = false;
        PDP_ERR(cc, lj, "\"limit_usd\" expects a number of USD, got %s",
                pdp_json_type(lj));
    } else {
        const char *text  = tg_json_doc_number_text(cc->doc, lj);
        rule->limit_micro = pdp_usd_micro(text != NULL ? text : "", &why);
        if (rule->limit_micro == 0) {
            ok = false;
            PDP_ERR(cc, lj, "\"limit_usd\" %s %s", text != NULL ? text : "",
                    why);
        }
    }
    a           = pdp_cc_field_enum(cc, r, "action", 0, actions, 2);
    rule->clamp = a == 1;
    pdp_cc_budget_alerts(cc, r, rule);
    if (ok && !cc->oom) {
        pdp_cc_budget_prices(cc, r, rule);
    }
}
