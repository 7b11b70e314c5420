/* pdp_policy_compile_rules.c - the compiler's rule stage: walks a
 * *.policy.json file's "rules", reads the fields every rule has, hands the
 * rest to its kind (access and rate_limit here; route, budget elsewhere).
 * Not thread-safe: called on the compiling thread by pdp_compile_file. */
#include <stdio.h>
#include <string.h>

#include "pdp_policy_compile_int.h"

static void pdp_cc_warn_absent(pdp_cc *cc, const cJSON *when, uint32_t first,
                               uint32_t end);

static const char *const pdp_kind_list[] = {"access",     "route",
                                            "audit",      "rate_limit",
                                            "budget",     "guardrail"};
static const char *const pdp_scope_list[]  = {"key", "tenant", "user", "model"};
static const char *const pdp_mode_list[]   = {"enforce", "audit", "off"};
static const char *const pdp_onerr_list[]  = {"deny", "skip"};
static const char *const pdp_effect_list[] = {"allow", "deny"};

const char *
pdp_kind_name(uint8_t kind)
{
    return kind == PDP_KIND_ACCESS       ? "access"
           : kind == PDP_KIND_ROUTE      ? "route"
           : kind == PDP_KIND_RATE_LIMIT ? "rate_limit"
           : kind == PDP_KIND_BUDGET     ? "budget"
           : kind == PDP_KIND_GUARDRAIL  ? "guardrail"
                                         : "audit";
}

const char *
pdp_mode_name(uint8_t mode)
{
    return mode == PDP_MODE_ENFORCE ? "enforce"
           : mode == PDP_MODE_AUDIT ? "audit"
                                    : "off";
}

static const char *const pdp_capture_names[] = {"none", "metadata", "full"};

_Static_assert(sizeof("rate_limit") <= TG_EFFECT_MAX,
               "an effect's name must fit tg_rule_match.effect");

const char *
pdp_rule_effect(const pdp_rule *r)
{
    switch ((pdp_kind)r->kind) {
    case PDP_KIND_ACCESS:
        return r->deny ? "deny" : "allow";
    case PDP_KIND_ROUTE:
        return "route";
    case PDP_KIND_AUDIT:
        return "capture";
    case PDP_KIND_RATE_LIMIT:
        return "rate_limit";
    case PDP_KIND_BUDGET:
        return "budget";
    case PDP_KIND_GUARDRAIL:
        return "guardrail";
    }
    return "deny";
}

const char *
pdp_capture_name(uint32_t level)
{
    return level < 3 ? pdp_capture_names[level] : "full";
}

static void
pdp_cc_access(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    const cJSON *st;
    const char  *code;
    const char  *msg;
    int          eff;
    char         dmsg[128];

    eff = pdp_cc_field_enum(cc, r, "effect", -2, pdp_effect_list, 2);
    if (eff == -2) {
        PDP_ERR(cc, r,
                "missing required field \"effect\" (\"allow\" or "
                "\"deny\")");
        return;
    }
    rule->deny   = eff == 1;
    rule->status = 403;
    st           = cJSON_GetObjectItemCaseSensitive(r, "status");
    code         = pdp_cc_string(cc, r, "code", false);
    msg          = pdp_cc_string(cc, r, "message", false);
    if (eff == 0) {
        static const char *const only[] = {"status", "code", "message"};
        for (size_t i = 0; i < 3; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, only[i]);
            if (v != NULL) {
                PDP_ERR(cc, v, "\"%s\" applies only to \"effect\": \"deny\"",
                        only[i]);
            }
        }
        return;
    }
    if (st != NULL) {
        if (!cJSON_IsNumber(st) || st->valuedouble != (double)st->valueint ||
            st->valueint < 400 || st->valueint > 599) {
            PDP_ERR(cc, st,
                    "\"status\" expects an HTTP status from 400 to "
                    "599");
        } else {
            rule->status = (uint16_t)st->valueint;
        }
    }
    if (code != NULL) {
        bool ok = code[0] != '\0' && strlen(code) < TG_MSG_CODE_MAX;
        for (const char *p = code; *p != '\0' && ok; p++) {
            ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                 *p == '_';
        }
        if (!ok) {
            PDP_ERR(cc, cJSON_GetObjectItemCaseSensitive(r, "code"),
                    "\"code\" expects 1 to %d of a-z 0-9 _ (e.g. "
                    "\"premium_model\")",
                    TG_MSG_CODE_MAX - 1);
            code = NULL;
        }
    }
    if (msg != NULL && (msg[0] == '\0' || strlen(msg) >= TG_MSG_TEXT_MAX)) {
        PDP_ERR(cc, cJSON_GetObjectItemCaseSensitive(r, "message"),
                "\"message\" expects 1 to %d characters", TG_MSG_TEXT_MAX - 1);
        msg = NULL;
    }
    rule->code = pdp_cc_cstr(cc, code != NULL ? code : "policy_denied");
    if (msg == NULL) {
        snprintf(dmsg, sizeof(dmsg), "Denied by policy rule %s.",
                 pdp_cc_s(cc, rule->id));
        msg = dmsg;
    }
    rule->message = pdp_cc_cstr(cc, msg);
}

/* pdp_cc_limit reads an optional positive integer limit; 0 if absent. */
static int64_t
pdp_cc_limit(pdp_cc *cc, const cJSON *r, const char *key, int64_t max,
             bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    int64_t      n = 0;

    if (v == NULL) {
        return 0;
    }
    if (!tg_json_whole(v, 1, max, &n)) {
        PDP_ERR(cc, v, "\"%s\" expects a whole number from 1 to %lld", key,
                (long long)max);
        *bad = true;
        return 0;
    }
    return n;
}

static void
pdp_cc_rate(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    const cJSON *sc  = cJSON_GetObjectItemCaseSensitive(r, "scope");
    bool         bad = false;
    int          s;

    if (sc == NULL) {
        PDP_ERR(cc, r,
                "missing required field \"scope\" (\"key\", \"tenant\", "
                "\"user\" or \"model\")");
    } else {
        s           = pdp_cc_field_enum(cc, r, "scope", 0, pdp_scope_list, 4);
        rule->scope = (uint8_t)(s < 0 ? 0 : s);
    }
    rule->rpm = pdp_cc_limit(cc, r, "rpm", PDP_RPM_MAX, &bad);
    rule->tpm = pdp_cc_limit(cc, r, "tpm", PDP_TPM_MAX, &bad);
    rule->concurrent =
        pdp_cc_limit(cc, r, "concurrent", PDP_CONCURRENT_MAX, &bad);
    if (!bad && rule->rpm == 0 && rule->tpm == 0 && rule->concurrent == 0) {
        PDP_ERR(cc, r,
                "a rate_limit rule needs at least one of \"rpm\", \"tpm\" "
                "or \"concurrent\"");
    }
}

/* pdp_cc_rule_fields reports the fields a rule of kind k (-1: unknown)
 * does not have. */
static void
pdp_cc_rule_fields(pdp_cc *cc, const cJSON *r, int k)
{
    static const char *const common[] = {"id",       "kind",        "mode",
                                         "on_error", "description", "when"};
    static const char *const access[] = {
        "id",   "kind",   "mode",   "on_error", "description",
        "when", "effect", "status", "code",     "message"};
    static const char *const route[] = {
        "id",   "kind",        "mode",   "on_error", "description",
        "when", "deployments", "labels", "strategy", "fallbacks"};
    static const char *const audit[] = {"id",          "kind", "mode",
                                        "on_error",    "description",
                                        "when",        "capture",
                                        "on_log_full"};
    static const char *const rate[] = {
        "id",   "kind",  "mode", "on_error", "description",
        "when", "scope", "rpm",  "tpm",      "concurrent"};
    static const char *const budget[] = {
        "id",    "kind",   "mode",      "on_error", "description", "when",
        "scope", "window", "limit_usd", "action",   "thresholds",  "webhook"};
    static const char *const guard[] = {
        "id",     "kind",   "mode",     "on_error", "description", "when",
        "stages", "detectors", "terms", "lists",    "patterns",    "output",
        "canary", "action", "mask"};

    if (k < 0) {
        pdp_cc_keys(cc, r, "a rule", common, 6);
    } else if (k == PDP_KIND_ACCESS) {
        pdp_cc_keys(cc, r, "an access rule", access, 10);
    } else if (k == PDP_KIND_ROUTE) {
        pdp_cc_keys(cc, r, "a route rule", route, 10);
    } else if (k == PDP_KIND_RATE_LIMIT) {
        pdp_cc_keys(cc, r, "a rate_limit rule", rate, 10);
    } else if (k == PDP_KIND_BUDGET) {
        pdp_cc_keys(cc, r, "a budget rule", budget, 12);
    } else if (k == PDP_KIND_GUARDRAIL) {
        pdp_cc_keys(cc, r, "a guardrail rule", guard, 15);
    } else {
        pdp_cc_keys(cc, r, "an audit rule", audit, 8);
    }
}

/* pdp_cc_rule_id reads r's "id" into rule, and "rule <id>" into ctx (the
 * context of later messages) when it is valid; false when the bundle
 * already has PDP_RULES_MAX rules. */
static bool
pdp_cc_rule_id(pdp_cc *cc, const cJSON *r, pdp_rule *rule, char *ctx,
               size_t cap)
{
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(r, "id");
    const char  *id  = pdp_cc_string(cc, r, "id", true);

    if (id != NULL && !tg_id_ok(id)) {
        PDP_ERR(cc, idj,
                "rule id \"%s\" is not valid: expected 1 to %d of "
                "A-Z a-z 0-9 . _ -",
                id, PDP_RULE_ID_MAX - 1);
        id = NULL;
    }
    if (id != NULL) {
        snprintf(ctx, cap, "rule %s", id);
    }
    if (cc->b->nrules >= PDP_RULES_MAX) {
        if (!cc->too_many_rules) {
            PDP_ERR(cc, r, "the bundle has more than %d rules", PDP_RULES_MAX);
        }
        cc->too_many_rules = true;
        return false;
    }
    rule->id   = pdp_cc_cstr(cc, id != NULL ? id : ctx);
    rule->file = cc->file;
    rule->seq  = cc->seq++;
    tg_json_doc_pos(cc->doc, idj != NULL ? idj : r, &rule->line, &rule->col);
    return true;
}

/* pdp_cc_rule_body compiles the fields of rule's kind. */
static void
pdp_cc_rule_body(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    if (rule->kind == PDP_KIND_ACCESS) {
        pdp_cc_access(cc, r, rule);
    } else if (rule->kind == PDP_KIND_ROUTE) {
        pdp_cc_route(cc, r, rule);
    } else if (rule->kind == PDP_KIND_RATE_LIMIT) {
        pdp_cc_rate(cc, r, rule);
    } else if (rule->kind == PDP_KIND_BUDGET) {
        pdp_cc_budget(cc, r, rule);
    } else if (rule->kind == PDP_KIND_GUARDRAIL) {
        pdp_cc_guardrail(cc, r, rule);
    } else {
        static const char *const full[] = {"deny", "shed"};
        int c = pdp_cc_field_enum(cc, r, "capture", 1, pdp_capture_names, 3);
        int f = pdp_cc_field_enum(cc, r, "on_log_full", 0, full, 2);
        rule->capture  = (uint8_t)(c < 0 ? 1 : c);
        rule->log_shed = f == 1;
    }
}

static void
pdp_cc_rule(pdp_cc *cc, const cJSON *r, int index)
{
    pdp_bundle  *b = cc->b;
    pdp_rule     rule;
    const cJSON *kindj;
    const cJSON *when;
    const char  *kind;
    char         ctx[96];
    int          k;
    int          v;

    memset(&rule, 0, sizeof(rule));
    snprintf(ctx, sizeof(ctx), "rules[%d]", index);
    cc->ctx = ctx;
    if (!cJSON_IsObject(r)) {
        PDP_ERR(cc, r,
                "a rule is an object with \"id\", \"kind\" and more; "
                "got %s",
                pdp_json_type(r));
        return;
    }
    if (!pdp_cc_rule_id(cc, r, &rule, ctx, sizeof(ctx))) {
        return;
    }

    kindj = cJSON_GetObjectItemCaseSensitive(r, "kind");
    kind  = pdp_cc_string(cc, r, "kind", true);
    k     = -1;
    if (kind != NULL) {
        k = pdp_cc_enum(cc, kindj, "rule kind", kind, pdp_kind_list, 6);
    }
    pdp_cc_rule_fields(cc, r, k);
    if (k < 0) {
        return;
    }
    rule.kind = (uint8_t)k;
    v         = pdp_cc_field_enum(cc, r, "mode", 0, pdp_mode_list, 3);
    rule.mode = (uint8_t)(v < 0 ? 0 : v);
    v         = pdp_cc_field_enum(cc, r, "on_error", 0, pdp_onerr_list, 2);
    rule.on_error_skip = v == 1;
    pdp_cc_string(cc, r, "description", false);

    when      = cJSON_GetObjectItemCaseSensitive(r, "when");
    rule.root = b->nnodes;
    if (when == NULL) {
        pdp_cc_node(cc, PDP_OP_TRUE);
    } else {
        pdp_cc_pred(cc, when, 1);
    }
    if (!rule.on_error_skip && rule.mode != PDP_MODE_OFF && !cc->oom) {
        pdp_cc_warn_absent(cc, when, rule.root, b->nnodes);
    }
    pdp_cc_rule_body(cc, r, &rule);
    if (PDP_GROW(cc, rules, cap_rules, b->nrules + 1)) {
        b->rules[b->nrules++] = rule;
    }
}

/* pdp_cc_warn_absent warns about the first condition in nodes
 * [first, end) that reads an attribute a request may lack (the user,
 * labels, metadata) without an `exists` on it in the same rule: with
 * on_error deny, every request without it is denied by this rule, which
 * `check` cannot see and tests then show. */
static void
pdp_cc_warn_absent(pdp_cc *cc, const cJSON *when, uint32_t first, uint32_t end)
{
    const pdp_node *nodes = cc->b->nodes;

    for (uint32_t i = first; i < end; i++) {
        const pdp_node *nd      = &nodes[i];
        bool            guarded = false;
        if (nd->op < PDP_OP_EQ || nd->op > PDP_OP_CIDR ||
            (nd->attr != PDP_A_USER && nd->attr != PDP_A_KEY_LABEL &&
             nd->attr != PDP_A_TENANT_LABEL && nd->attr != PDP_A_META)) {
            continue;
        }
        for (uint32_t k = first; k < end && !guarded; k++) {
            guarded =
                nodes[k].op == PDP_OP_EXISTS && nodes[k].attr == nd->attr &&
                strcmp(pdp_cc_s(cc, nodes[k].key), pdp_cc_s(cc, nd->key)) == 0;
        }
        if (!guarded) {
            PDP_WARN(cc, when,
                     "reads %s, which a request may not have; with on_error "
                     "deny (the default) every request without it is denied "
                     "by this rule. Guard it with {\"exists\": \"%s\"} or "
                     "set \"on_error\": \"skip\"",
                     pdp_cc_s(cc, nd->path), pdp_cc_s(cc, nd->path));
            return;
        }
    }
}

void
pdp_compile_file(pdp_cc *cc, const tg_json_doc *doc, pdp_errs *e)
{
    static const char *const keys[] = {"$schema", "description", "rules"};
    const cJSON             *root   = tg_json_doc_root(doc);
    const cJSON             *rules;
    int                      i = 0;

    cc->doc  = doc;
    cc->e    = e;
    cc->ctx  = NULL;
    cc->file = pdp_cc_cstr(cc, tg_json_doc_name(doc));
    if (!cJSON_IsObject(root)) {
        PDP_ERR(cc, root,
                "a policy file is an object {\"rules\": [...]}, "
                "got %s",
                pdp_json_type(root));
        return;
    }
    pdp_cc_keys(cc, root, "a policy file", keys, 3);
    rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (rules == NULL) {
        PDP_ERR(cc, root,
                "missing required field \"rules\" (a list of "
                "rules)");
        return;
    }
    if (!cJSON_IsArray(rules)) {
        PDP_ERR(cc, rules, "\"rules\" expects a list of rules, got %s",
                pdp_json_type(rules));
        return;
    }
    for (const cJSON *r = rules->child; r != NULL; r = r->next, i++) {
        pdp_cc_rule(cc, r, i);
        cc->ctx = NULL;
        if (cc->oom) {
            return;
        }
    }
}
