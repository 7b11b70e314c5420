/* pdp_policy_compile_pred.c - the compiler's predicate stage: a rule's
 * "when" into pre-order nodes, with attribute paths resolved and typed and
 * each operator's literal checked against its attribute; also the names
 * of operators, weekdays and endpoints. Not thread-safe per pdp_cc. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pdp_policy_compile_int.h"

const char *const pdp_op_names[PDP_OP_COUNT] = {
    [PDP_OP_TRUE]        = "true",
    [PDP_OP_FALSE]       = "false",
    [PDP_OP_ALL]         = "all",
    [PDP_OP_ANY]         = "any",
    [PDP_OP_NOT]         = "not",
    [PDP_OP_EQ]          = "eq",
    [PDP_OP_NE]          = "ne",
    [PDP_OP_LT]          = "lt",
    [PDP_OP_LE]          = "le",
    [PDP_OP_GT]          = "gt",
    [PDP_OP_GE]          = "ge",
    [PDP_OP_IN]          = "in",
    [PDP_OP_PREFIX]      = "prefix",
    [PDP_OP_SUFFIX]      = "suffix",
    [PDP_OP_CONTAINS]    = "contains",
    [PDP_OP_GLOB]        = "glob",
    [PDP_OP_CIDR]        = "cidr",
    [PDP_OP_EXISTS]      = "exists",
    [PDP_OP_TIME_WINDOW] = "time_window",
};

const char *const pdp_weekday_names[7] = {"mon", "tue", "wed", "thu",
                                          "fri", "sat", "sun"};

static const char *const pdp_endpoint_names[] = {
    "chat", "completions", "embeddings", "messages", "models"};

typedef struct pdp_attr_def {
    const char *path; /* keyed ones end in '.', the key follows */
    uint8_t     id;
    uint8_t     type;
    bool        keyed;
} pdp_attr_def;

static const pdp_attr_def pdp_attr_defs[] = {
    {"principal.key_id", PDP_A_KEY_ID, PDP_T_STR, false},
    {"principal.tenant_id", PDP_A_PRINCIPAL_TENANT, PDP_T_STR, false},
    {"principal.user", PDP_A_USER, PDP_T_STR, false},
    {"principal.labels.", PDP_A_KEY_LABEL, PDP_T_STR, true},
    {"tenant.id", PDP_A_TENANT_ID, PDP_T_STR, false},
    {"tenant.tier", PDP_A_TENANT_TIER, PDP_T_STR, false},
    {"tenant.labels.", PDP_A_TENANT_LABEL, PDP_T_STR, true},
    {"request.endpoint", PDP_A_ENDPOINT, PDP_T_STR, false},
    {"request.model", PDP_A_MODEL, PDP_T_STR, false},
    {"request.stream", PDP_A_STREAM, PDP_T_BOOL, false},
    {"request.max_tokens", PDP_A_MAX_TOKENS, PDP_T_NUM, false},
    {"request.prompt_tokens", PDP_A_PROMPT_TOKENS, PDP_T_NUM, false},
    {"request.metadata.", PDP_A_META, PDP_T_STR, true},
    {"request.client_ip", PDP_A_CLIENT_IP, PDP_T_IP, false},
    {"time.hour", PDP_A_TIME_HOUR, PDP_T_NUM, false},
    {"time.minute", PDP_A_TIME_MINUTE, PDP_T_NUM, false},
    {"time.weekday", PDP_A_TIME_WEEKDAY, PDP_T_STR, false},
    {"time.date", PDP_A_TIME_DATE, PDP_T_STR, false},
};
#define PDP_NATTRS (sizeof(pdp_attr_defs) / sizeof(pdp_attr_defs[0]))

const char *
pdp_endpoint_name(tg_endpoint ep)
{
    return ep >= TG_EP_CHAT_COMPLETIONS && ep <= TG_EP_MODELS
               ? pdp_endpoint_names[ep - 1]
               : "";
}

/* pdp_cc_attr resolves the attribute path in j into node n; false (with an
 * error) if it is not one. */
static bool
pdp_cc_attr(pdp_cc *cc, const cJSON *j, uint32_t n)
{
    const char *path;
    char        cands[PDP_NATTRS][160];
    const char *cp[PDP_NATTRS];
    const char *rest;
    const char *sug;

    if (!cJSON_IsString(j)) {
        PDP_ERR(cc, j,
                "expected an attribute path such as \"request.model\", got "
                "%s",
                pdp_json_type(j));
        return false;
    }
    path = j->valuestring;
    for (size_t i = 0; i < PDP_NATTRS; i++) {
        const pdp_attr_def *d  = &pdp_attr_defs[i];
        size_t              pl = strlen(d->path);
        if (!d->keyed && strcmp(path, d->path) == 0) {
            pdp_node *nd = &cc->b->nodes[n];
            nd->attr     = d->id;
            nd->path     = pdp_cc_cstr(cc, path);
            return true;
        }
        if (d->keyed &&
            (strncmp(path, d->path, pl) == 0 ||
             (strncmp(path, d->path, pl - 1) == 0 && path[pl - 1] == '\0'))) {
            const char *key = path[pl - 1] == '\0' ? "" : path + pl;
            if (!pdp_key_ok(key)) {
                PDP_ERR(cc, j,
                        "attribute path \"%s\" needs a key after \"%s\" "
                        "(1 to %d of A-Z a-z 0-9 . _ - /), e.g. \"%sregion\"",
                        path, d->path, TG_MSG_META_KEY_MAX - 1, d->path);
                return false;
            }
            cc->b->nodes[n].attr = d->id;
            cc->b->nodes[n].path = pdp_cc_cstr(cc, path);
            cc->b->nodes[n].key  = pdp_cc_cstr(cc, key);
            return true;
        }
    }
    /* Suggest: keyed paths keep the author's key ("tenant.lables.region"
     * -> "tenant.labels.region"). */
    rest = strchr(path, '.');
    rest = rest != NULL ? strchr(rest + 1, '.') : NULL;
    for (size_t i = 0; i < PDP_NATTRS; i++) {
        const pdp_attr_def *d = &pdp_attr_defs[i];
        if (d->keyed && rest != NULL) {
            snprintf(cands[i], sizeof(cands[i]), "%s%s", d->path, rest + 1);
        } else {
            snprintf(cands[i], sizeof(cands[i]), "%s%s", d->path,
                     d->keyed ? "<key>" : "");
        }
        cp[i] = cands[i];
    }
    sug = pdp_suggest(path, cp, PDP_NATTRS);
    if (sug != NULL && strstr(sug, "<key>") == NULL) {
        PDP_ERR(cc, j, "unknown attribute path \"%s\" (did you mean \"%s\"?)",
                path, sug);
    } else {
        PDP_ERR(cc, j,
                "unknown attribute path \"%s\"; attributes are principal.*, "
                "tenant.*, request.* and time.* (see policies/README.md)",
                path);
    }
    return false;
}

uint8_t
pdp_attr_type(uint8_t id)
{
    for (size_t i = 0; i < PDP_NATTRS; i++) {
        if (pdp_attr_defs[i].id == id) {
            return pdp_attr_defs[i].type;
        }
    }
    return PDP_T_STR;
}

/* pdp_cc_domain checks a string literal against attributes with a closed
 * set of values, so a typo is a compile error instead of a rule that can
 * never match. */
bool
pdp_cc_domain(pdp_cc *cc, uint8_t attr, const cJSON *lit)
{
    const char *const *names = NULL;
    size_t             n     = 0;
    const char        *what  = NULL;
    char               list[128];
    const char        *s = lit->valuestring;

    if (attr == PDP_A_ENDPOINT) {
        names = pdp_endpoint_names;
        n     = 5;
        what  = "request.endpoint";
    } else if (attr == PDP_A_TIME_WEEKDAY) {
        names = pdp_weekday_names;
        n     = 7;
        what  = "time.weekday";
    } else if (attr == PDP_A_TIME_DATE) {
        unsigned y, m, d;
        char     tail;
        if (strlen(s) != 10 ||
            sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || m < 1 ||
            m > 12 || d < 1 || d > 31) {
            PDP_ERR(cc, lit,
                    "time.date is written YYYY-MM-DD; \"%s\" can never match",
                    s);
            return false;
        }
        return true;
    } else {
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if ((cc->fold ? strcasecmp(s, names[i]) : strcmp(s, names[i])) == 0) {
            return true;
        }
    }
    PDP_ERR(cc, lit, "%s is one of %s; \"%s\" can never match", what,
            pdp_join(list, sizeof(list), names, n), s);
    return false;
}

/* pdp_cc_literal checks lit against the attribute's type and stores it. */
static bool
pdp_cc_literal(pdp_cc *cc, uint32_t n, const cJSON *lit, const char *op)
{
    pdp_node   *nd   = &cc->b->nodes[n];
    uint8_t     t    = pdp_attr_type(nd->attr);
    const char *path = pdp_cc_s(cc, nd->path);

    if ((t == PDP_T_STR || t == PDP_T_IP) && cJSON_IsString(lit)) {
        if (!pdp_cc_domain(cc, nd->attr, lit)) {
            return false;
        }
        nd        = &cc->b->nodes[n];
        nd->vtype = PDP_T_STR;
        nd->u.str = pdp_cc_cstr(cc, lit->valuestring);
        return true;
    }
    if (t == PDP_T_NUM && cJSON_IsNumber(lit)) {
        nd->vtype = PDP_T_NUM;
        nd->u.num = lit->valuedouble;
        return true;
    }
    if (t == PDP_T_BOOL && cJSON_IsBool(lit)) {
        nd->vtype = PDP_T_BOOL;
        nd->u.b   = cJSON_IsTrue(lit);
        return true;
    }
    PDP_ERR(cc, lit, "wrong argument type for %s: %s is %s, got %s", op, path,
            pdp_type_name(t), pdp_json_type(lit));
    return false;
}

static const char *const pdp_op_list[] = {
    "all",      "any",  "not",     "eq",      "ne",          "lt",
    "le",       "gt",   "ge",      "in",      "prefix",      "suffix",
    "contains", "glob", "cidr",    "exists",  "time_window", "ieq",
    "ine",      "iin",  "iprefix", "isuffix", "icontains",   "iglob"};
#define PDP_NOPS (sizeof(pdp_op_list) / sizeof(pdp_op_list[0]))

/* Names authors bring from other policy languages. */
static const char *
pdp_op_alias(const char *s)
{
    static const char *const alias[][2] = {{"equals", "eq"},
                                           {"==", "eq"},
                                           {"!=", "ne"},
                                           {"not_equals", "ne"},
                                           {"and", "all"},
                                           {"or", "any"},
                                           {"starts_with", "prefix"},
                                           {"startswith", "prefix"},
                                           {"ends_with", "suffix"},
                                           {"endswith", "suffix"},
                                           {"matches", "glob"},
                                           {"like", "glob"},
                                           {"one_of", "in"},
                                           {"<", "lt"},
                                           {"<=", "le"},
                                           {">", "gt"},
                                           {">=", "ge"},
                                           {"has", "exists"},
                                           {"between", "time_window"}};

    for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++) {
        if (strcmp(s, alias[i][0]) == 0) {
            return alias[i][1];
        }
    }
    return NULL;
}

static int
pdp_op_lookup(const char *s)
{
    for (int i = PDP_OP_ALL; i < PDP_OP_COUNT; i++) {
        if (strcmp(s, pdp_op_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* pdp_op_icase is the string operator s names with a leading "i" (ieq,
 * iin, iglob…: the case-insensitive variants), or -1. */
static int
pdp_op_icase(const char *s)
{
    int op = s[0] == 'i' ? pdp_op_lookup(s + 1) : -1;

    switch (op) {
    case PDP_OP_EQ:
    case PDP_OP_NE:
    case PDP_OP_IN:
    case PDP_OP_PREFIX:
    case PDP_OP_SUFFIX:
    case PDP_OP_CONTAINS:
    case PDP_OP_GLOB:
        return op;
    default:
        return -1;
    }
}

static void pdp_cc_value(pdp_cc *cc, uint32_t n, const cJSON *attr,
                         const cJSON *arg, int op, uint8_t t, const char *name,
                         const char *example);

/* pdp_cc_warn_model warns when lit (a string compared with request.model)
 * is a model no deployment of the catalog serves: such a condition never
 * holds for a request the gateway can route ("gpt4o" for "gpt-4o"). */
static void
pdp_cc_warn_model(pdp_cc *cc, const cJSON *lit)
{
    static const char *const variants[2] = {":floor", ":nitro"};
    const tg_config         *cfg         = cc->cfg;
    const char              *names[256];
    size_t                   n = 0;
    const char              *sug;

    size_t len;

    if (cfg == NULL || cfg->n_deployments == 0 || !cJSON_IsString(lit)) {
        return;
    }
    /* "gpt-4o:floor" and ":nitro" (OpenRouter's variants) name gpt-4o. */
    len = strlen(lit->valuestring);
    for (size_t i = 0; i < 2; i++) {
        size_t vl = strlen(variants[i]);
        if (len > vl && strcmp(lit->valuestring + len - vl, variants[i]) == 0) {
            len -= vl;
        }
    }
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const char *m = cfg->deployments[i].model;
        if (strlen(m) == len &&
            (cc->fold ? strncasecmp(m, lit->valuestring, len)
                      : strncmp(m, lit->valuestring, len)) == 0) {
            return;
        }
        if (n < sizeof(names) / sizeof(names[0])) {
            names[n++] = m;
        }
    }
    sug = pdp_suggest(lit->valuestring, names, n);
    PDP_WARN(cc, lit,
             "no deployment in the catalog serves model \"%s\"%s%s%s, so "
             "this never holds for a request the gateway can route",
             lit->valuestring, sug != NULL ? " (did you mean \"" : "",
             sug != NULL ? sug : "", sug != NULL ? "\"?)" : "");
}

/* pdp_cc_binary compiles {"op": [ATTR, ARG]}; node n already exists. */
static void
pdp_cc_binary(pdp_cc *cc, uint32_t n, const cJSON *m, int op)
{
    const cJSON             *args = m;
    const cJSON             *attr;
    const cJSON             *arg;
    const char              *name                  = m->string;
    static const char *const example[PDP_OP_COUNT] = {
        [PDP_OP_EQ]       = "{\"eq\": [\"tenant.tier\", \"free\"]}",
        [PDP_OP_NE]       = "{\"ne\": [\"tenant.tier\", \"free\"]}",
        [PDP_OP_LT]       = "{\"lt\": [\"request.max_tokens\", 4096]}",
        [PDP_OP_LE]       = "{\"le\": [\"request.max_tokens\", 4096]}",
        [PDP_OP_GT]       = "{\"gt\": [\"request.max_tokens\", 4096]}",
        [PDP_OP_GE]       = "{\"ge\": [\"request.max_tokens\", 4096]}",
        [PDP_OP_IN]       = "{\"in\": [\"request.model\", [\"gpt-4o\", "
                            "\"o1\"]]}",
        [PDP_OP_PREFIX]   = "{\"prefix\": [\"request.model\", \"gpt-\"]}",
        [PDP_OP_SUFFIX]   = "{\"suffix\": [\"request.model\", \"-mini\"]}",
        [PDP_OP_CONTAINS] = "{\"contains\": [\"request.model\", \"4o\"]}",
        [PDP_OP_GLOB]     = "{\"glob\": [\"request.model\", \"gpt-4*\"]}",
        [PDP_OP_CIDR]     = "{\"cidr\": [\"request.client_ip\", "
                            "\"10.0.0.0/8\"]}",
    };
    uint8_t t;

    if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) != 2) {
        PDP_ERR(cc, m, "%s expects [ATTRIBUTE, VALUE], e.g. %s; got %s", name,
                example[op],
                cJSON_IsArray(args) ? "a list of another length"
                                    : pdp_json_type(args));
        return;
    }
    attr = args->child;
    arg  = attr->next;
    if (!pdp_cc_attr(cc, attr, n)) {
        return;
    }
    t = pdp_attr_type(cc->b->nodes[n].attr);
    if (cc->b->nodes[n].icase && t != PDP_T_STR && t != PDP_T_IP) {
        PDP_ERR(cc, attr,
                "%s compares strings regardless of case; %s is %s (use %s)",
                name, pdp_cc_s(cc, cc->b->nodes[n].path), pdp_type_name(t),
                pdp_op_names[op]);
        return;
    }
    /* What the operator compares against is stored folded. */
    cc->fold = cc->b->nodes[n].icase;
    pdp_cc_value(cc, n, attr, arg, op, t, name, example[op]);
    cc->fold = false;
}

/* pdp_cc_value compiles what node n's operator compares its attribute
 * (attr, of type t) against. */
static void
pdp_cc_value(pdp_cc *cc, uint32_t n, const cJSON *attr, const cJSON *arg,
             int op, uint8_t t, const char *name, const char *example)
{
    switch (op) {
    case PDP_OP_EQ:
    case PDP_OP_NE:
        if (pdp_cc_literal(cc, n, arg, name) && op == PDP_OP_EQ &&
            cc->b->nodes[n].attr == PDP_A_MODEL) {
            pdp_cc_warn_model(cc, arg);
        }
        break;
    case PDP_OP_LT:
    case PDP_OP_LE:
    case PDP_OP_GT:
    case PDP_OP_GE:
        if (t != PDP_T_NUM) {
            PDP_ERR(cc, attr,
                    "%s compares numbers; %s is %s (use eq, ne, in, prefix, "
                    "suffix, contains or glob)",
                    name, pdp_cc_s(cc, cc->b->nodes[n].path), pdp_type_name(t));
            return;
        }
        pdp_cc_literal(cc, n, arg, name);
        break;
    case PDP_OP_IN:
        if (!cJSON_IsArray(arg)) {
            PDP_ERR(cc, arg,
                    "wrong argument type for in: expected a list of "
                    "values, e.g. %s; got %s",
                    example, pdp_json_type(arg));
            return;
        }
        pdp_cc_set(cc, n, arg);
        if (cc->b->nodes[n].attr == PDP_A_MODEL) {
            for (const cJSON *v = arg->child; v != NULL; v = v->next) {
                pdp_cc_warn_model(cc, v);
            }
        }
        break;
    case PDP_OP_PREFIX:
    case PDP_OP_SUFFIX:
    case PDP_OP_CONTAINS:
    case PDP_OP_GLOB:
        if (t != PDP_T_STR && t != PDP_T_IP) {
            PDP_ERR(cc, attr, "%s works on strings; %s is %s", name,
                    pdp_cc_s(cc, cc->b->nodes[n].path), pdp_type_name(t));
            return;
        }
        if (!cJSON_IsString(arg)) {
            PDP_ERR(cc, arg,
                    "wrong argument type for %s: expected a string, got %s",
                    name, pdp_json_type(arg));
            return;
        }
        if (op == PDP_OP_GLOB) {
            pdp_cc_glob(cc, n, arg->valuestring);
        } else {
            cc->b->nodes[n].vtype = PDP_T_STR;
            cc->b->nodes[n].u.str = pdp_cc_cstr(cc, arg->valuestring);
        }
        break;
    case PDP_OP_CIDR:
        if (t != PDP_T_IP) {
            PDP_ERR(cc, attr,
                    "cidr works on IP addresses (request.client_ip); %s is "
                    "not one",
                    pdp_cc_s(cc, cc->b->nodes[n].path));
            return;
        }
        pdp_cc_cidr(cc, n, arg);
        break;
    default:
        break;
    }
}

void
pdp_cc_pred(pdp_cc *cc, const cJSON *j, uint32_t depth)
{
    uint32_t     n;
    const cJSON *m;
    int          op;
    char         list[256];

    if (cJSON_IsBool(j)) {
        pdp_cc_node(cc, cJSON_IsTrue(j) ? PDP_OP_TRUE : PDP_OP_FALSE);
        return;
    }
    if ((n = pdp_cc_node(cc, PDP_OP_FALSE)) == 0 && cc->oom) {
        return;
    }
    if (depth > PDP_DEPTH_MAX) {
        PDP_ERR(cc, cJSON_IsObject(j) && j->child != NULL ? j->child : j,
                "conditions are nested too deep (more than %d levels)",
                PDP_DEPTH_MAX);
        return;
    }
    if (!cJSON_IsObject(j) || cJSON_GetArraySize(j) != 1) {
        PDP_ERR(cc, j,
                "a condition is true, false or an object with exactly one "
                "operator such as {\"eq\": [\"tenant.tier\", \"free\"]}; got "
                "%s%s",
                pdp_json_type(j),
                cJSON_IsObject(j) ? (j->child == NULL ? " with no operator"
                                                      : " with several keys")
                                  : "");
        return;
    }
    m  = j->child;
    op = pdp_op_lookup(m->string);
    if (op < 0 && (op = pdp_op_icase(m->string)) >= 0) {
        cc->b->nodes[n].icase = 1;
    }
    if (op < 0) {
        const char *sug = pdp_op_alias(m->string);
        if (sug == NULL) {
            sug = pdp_suggest(m->string, pdp_op_list, PDP_NOPS);
        }
        if (sug != NULL) {
            PDP_ERR(cc, m, "unknown operator \"%s\" (did you mean \"%s\"?)",
                    m->string, sug);
        } else {
            PDP_ERR(cc, m, "unknown operator \"%s\"; expected %s", m->string,
                    pdp_join(list, sizeof(list), pdp_op_list, PDP_NOPS));
        }
        return;
    }
    cc->b->nodes[n].op = (uint8_t)op;
    switch (op) {
    case PDP_OP_ALL:
    case PDP_OP_ANY:
        if (!cJSON_IsArray(m)) {
            PDP_ERR(cc, m, "%s expects a list of conditions, got %s", m->string,
                    pdp_json_type(m));
            break;
        }
        for (const cJSON *c = m->child; c != NULL; c = c->next) {
            pdp_cc_pred(cc, c, depth + 1);
        }
        break;
    case PDP_OP_NOT:
        if (cJSON_IsArray(m)) {
            PDP_ERR(cc, m,
                    "not expects one condition, got a list (wrap it "
                    "in {\"any\": [...]} or {\"all\": [...]})");
            break;
        }
        pdp_cc_pred(cc, m, depth + 1);
        break;
    case PDP_OP_EXISTS:
        pdp_cc_attr(cc, m, n);
        break;
    case PDP_OP_TIME_WINDOW:
        pdp_cc_time_window(cc, n, m);
        break;
    default:
        pdp_cc_binary(cc, n, m, op);
        break;
    }
    if (!cc->oom) {
        cc->b->nodes[n].end = cc->b->nnodes;
    }
}
