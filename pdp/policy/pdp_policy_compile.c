/* pdp_policy_compile.c - turns the rules of *.policy.json files into the
 * flat form pdp_policy_eval.c runs (pdp_policy_int.h). Every check the
 * format makes happens here, once, so evaluation has nothing left to
 * validate: attribute paths are resolved and typed, operators checked
 * against the attribute's type, literals against the attribute's domain,
 * deployment ids and labels against the catalog. The compiler keeps going
 * after an error, so an author sees every mistake in one run. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_int.h"
#include "tg_pricing.h"
#include "tg_buf.h"
#include "tg_json.h"

struct pdp_cc {
    pdp_bundle        *b;
    const tg_config   *cfg;
    const tg_json_doc *doc; /* the file being compiled */
    pdp_errs          *e;
    const char        *ctx; /* "rule <id>" for messages */
    pdp_str            file;
    tg_buf             pool;
    uint32_t cap_rules, cap_nodes, cap_sets, cap_globs, cap_segs, cap_cidrs,
        cap_cidr_lists, cap_routes;
    uint32_t seq;
    bool     oom;
    bool     too_many_rules;
    /* The price table budget rules are checked against, loaded on the
     * first budget rule: pr_state 0 not yet, 1 loaded (pr may be NULL:
     * there is none), 2 failed (reported once). */
    int          pr_state;
    tg_pricing *pr;
    char         pr_src[512];
};

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

/* ---- names --------------------------------------------------------------- */

const char *
pdp_kind_name(uint8_t kind)
{
    return kind == PDP_KIND_ACCESS       ? "access"
           : kind == PDP_KIND_ROUTE      ? "route"
           : kind == PDP_KIND_RATE_LIMIT ? "rate_limit"
           : kind == PDP_KIND_BUDGET     ? "budget"
                                         : "audit";
}

const char *
pdp_mode_name(uint8_t mode)
{
    return mode == PDP_MODE_ENFORCE ? "enforce"
           : mode == PDP_MODE_AUDIT ? "audit"
                                    : "off";
}

static const char *const pdp_strategy_names[] = {
    "",           "ordered", "weighted", "least_inflight", "lowest_latency",
    "lowest_cost"};

const char *
pdp_strategy_name(tg_route_strategy s)
{
    return (unsigned)s < 6 ? pdp_strategy_names[s] : "";
}

static const char *const pdp_capture_names[] = {"none", "metadata", "full"};

const char *
pdp_capture_name(uint32_t level)
{
    return level < 3 ? pdp_capture_names[level] : "full";
}

const char *
pdp_endpoint_name(tg_endpoint ep)
{
    return ep >= TG_EP_CHAT_COMPLETIONS && ep <= TG_EP_MODELS
               ? pdp_endpoint_names[ep - 1]
               : "";
}

/* ---- errors -------------------------------------------------------------- */

static void
pdp_errs_vadd(pdp_errs *e, const char *prefix, const char *fmt, va_list ap)
{
    int n;

    if (e->n >= PDP_ERRORS_MAX || e->cap == 0) {
        if (e->n == PDP_ERRORS_MAX && e->cap > 0 && e->len < e->cap) {
            n = snprintf(e->buf + e->len, e->cap - e->len,
                         "(stopped after %d errors)\n", PDP_ERRORS_MAX);
            e->len += n > 0 ? (size_t)n : 0;
            e->len = e->len < e->cap ? e->len : e->cap - 1;
        }
        e->n++;
        return;
    }
    e->n++;
    if (e->len + 1 >= e->cap) {
        return;
    }
    n = snprintf(e->buf + e->len, e->cap - e->len, "%s", prefix);
    if (n > 0) {
        e->len = e->len + (size_t)n < e->cap ? e->len + (size_t)n : e->cap - 1;
    }
    n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    if (n > 0) {
        e->len = e->len + (size_t)n < e->cap ? e->len + (size_t)n : e->cap - 1;
    }
    if (e->len + 1 < e->cap) {
        e->buf[e->len++] = '\n';
        e->buf[e->len]   = '\0';
    }
}

void
pdp_errs_add(pdp_errs *e, const tg_json_doc *doc, const cJSON *node,
             const char *ctx, const char *fmt, ...)
{
    char    prefix[640];
    int     line;
    int     col;
    va_list ap;

    tg_json_doc_pos(doc, node, &line, &col);
    snprintf(prefix, sizeof(prefix), "%s:%d:%d: %s%s", tg_json_doc_name(doc),
             line, col, ctx != NULL ? ctx : "", ctx != NULL ? ": " : "");
    va_start(ap, fmt);
    pdp_errs_vadd(e, prefix, fmt, ap);
    va_end(ap);
}

void
pdp_errs_addf(pdp_errs *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pdp_errs_vadd(e, "", fmt, ap);
    va_end(ap);
}

#define PDP_ERR(cc, node, ...)                                                 \
    pdp_errs_add((cc)->e, (cc)->doc, (node), (cc)->ctx, __VA_ARGS__)

/* ---- suggestions --------------------------------------------------------- */

/* pdp_edit_distance is the optimal string alignment distance: Levenshtein
 * plus swapping two neighbours as one edit, the commonest typo ("modle"). */
static size_t
pdp_edit_distance(const char *a, const char *b)
{
    size_t  la = strlen(a);
    size_t  lb = strlen(b);
    uint8_t d[64][64];

    if (la >= 63 || lb >= 63) {
        return (size_t)-1;
    }
    for (size_t i = 0; i <= la; i++) {
        d[i][0] = (uint8_t)i;
    }
    for (size_t j = 0; j <= lb; j++) {
        d[0][j] = (uint8_t)j;
    }
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1u < best) {
                best = d[i - 1][j] + 1u;
            }
            if (d[i][j - 1] + 1u < best) {
                best = d[i][j - 1] + 1u;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < best) {
                best = d[i - 2][j - 2] + 1u;
            }
            d[i][j] = (uint8_t)best;
        }
    }
    return d[la][lb];
}

const char *
pdp_suggest(const char *word, const char *const cands[], size_t n)
{
    const char *best  = NULL;
    size_t      bestd = (size_t)-1;
    size_t      len   = strlen(word);
    /* Short words are one typo from many others: only suggest on one. */
    size_t limit = len <= 4 ? 1 : len / 3 > 2 ? len / 3 : 2;

    for (size_t i = 0; i < n; i++) {
        size_t d = pdp_edit_distance(word, cands[i]);
        if (d < bestd) {
            bestd = d;
            best  = cands[i];
        }
    }
    return bestd <= limit ? best : NULL;
}

/* pdp_join writes "a, b or c" into buf. */
static const char *
pdp_join(char *buf, size_t cap, const char *const items[], size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int k = snprintf(buf + used, cap - used, "%s%s",
                         i == 0       ? ""
                         : i + 1 == n ? " or "
                                      : ", ",
                         items[i]);
        used += k > 0 ? (size_t)k : 0;
    }
    return buf;
}

/* ---- growth -------------------------------------------------------------- */

static bool
pdp_cc_grow(pdp_cc *cc, void **arr, uint32_t *cap, uint32_t need, size_t sz)
{
    size_t c = *cap;

    if (!tg_vec_reserve(arr, &c, need, sz) || c > UINT32_MAX) {
        cc->oom = true;
        return false;
    }
    *cap = (uint32_t)c;
    return true;
}

#define PDP_GROW(cc, field, capf, need)                                        \
    pdp_cc_grow((cc), (void **)&(cc)->b->field, &(cc)->capf, (need),           \
                sizeof(*(cc)->b->field))

static pdp_str
pdp_cc_str(pdp_cc *cc, const char *s, size_t n)
{
    pdp_str r = {(uint32_t)cc->pool.len, (uint32_t)n};

    if (tg_buf_append(&cc->pool, s, n) != TG_OK ||
        tg_buf_append(&cc->pool, "", 1) != TG_OK) {
        cc->oom = true;
        return (pdp_str){0, 0};
    }
    return r;
}

static pdp_str
pdp_cc_cstr(pdp_cc *cc, const char *s)
{
    return pdp_cc_str(cc, s, strlen(s));
}

/* pdp_cc_s reads a pool string while compiling (the pool may move). */
static const char *
pdp_cc_s(const pdp_cc *cc, pdp_str s)
{
    return cc->pool.data + s.off;
}

static uint32_t
pdp_cc_node(pdp_cc *cc, uint8_t op)
{
    pdp_bundle *b = cc->b;

    if (!PDP_GROW(cc, nodes, cap_nodes, b->nnodes + 1)) {
        return 0;
    }
    memset(&b->nodes[b->nnodes], 0, sizeof(b->nodes[0]));
    b->nodes[b->nnodes].op  = op;
    b->nodes[b->nnodes].end = b->nnodes + 1;
    return b->nnodes++;
}

/* ---- object keys --------------------------------------------------------- */

/* pdp_cc_keys reports every member of obj not in allowed, and duplicates;
 * false if there was any. */
static bool
pdp_cc_keys(pdp_cc *cc, const cJSON *obj, const char *what,
            const char *const allowed[], size_t n)
{
    bool ok = true;
    char list[512];

    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++) {
            known = strcmp(m->string, allowed[i]) == 0;
        }
        if (!known) {
            const char *s = pdp_suggest(m->string, allowed, n);
            if (s != NULL) {
                PDP_ERR(cc, m,
                        "unknown field \"%s\" in %s (did you mean \"%s\"?)",
                        m->string, what, s);
            } else {
                PDP_ERR(cc, m, "unknown field \"%s\" in %s; expected %s",
                        m->string, what,
                        pdp_join(list, sizeof(list), allowed, n));
            }
            ok = false;
            continue;
        }
        for (const cJSON *p = obj->child; p != m; p = p->next) {
            if (strcmp(p->string, m->string) == 0) {
                PDP_ERR(cc, m, "field \"%s\" appears twice in %s", m->string,
                        what);
                ok = false;
                break;
            }
        }
    }
    return ok;
}

static const char *
pdp_json_type(const cJSON *j)
{
    if (cJSON_IsString(j)) {
        return "a string";
    }
    if (cJSON_IsNumber(j)) {
        return "a number";
    }
    if (cJSON_IsBool(j)) {
        return j->type == cJSON_True ? "true" : "false";
    }
    if (cJSON_IsNull(j)) {
        return "null";
    }
    if (cJSON_IsArray(j)) {
        return "a list";
    }
    return "an object";
}

static const char *
pdp_type_name(uint8_t t)
{
    return t == PDP_T_NUM    ? "a number"
           : t == PDP_T_BOOL ? "true or false"
           : t == PDP_T_IP   ? "an IP address (a string)"
                             : "a string";
}

/* pdp_cc_enum matches s against names; -1 and an error if none. */
static int
pdp_cc_enum(pdp_cc *cc, const cJSON *node, const char *field, const char *s,
            const char *const names[], size_t n)
{
    char        list[256];
    const char *sug;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return (int)i;
        }
    }
    sug = pdp_suggest(s, names, n);
    if (sug != NULL) {
        PDP_ERR(cc, node, "%s \"%s\" is not valid (did you mean \"%s\"?)",
                field, s, sug);
    } else {
        PDP_ERR(cc, node, "%s \"%s\" is not valid; expected %s", field, s,
                pdp_join(list, sizeof(list), names, n));
    }
    return -1;
}

static bool
pdp_key_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= TG_MSG_META_KEY_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-' ||
              *s == '/')) {
            return false;
        }
    }
    return true;
}

/* ---- attributes ---------------------------------------------------------- */

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

static uint8_t
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
static bool
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
        if (strcmp(s, names[i]) == 0) {
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

/* ---- sets, globs, CIDRs -------------------------------------------------- */

/* pdp_cc_disp keeps a short rendering of a literal list for traces:
 * ["a", "b", "c", ... 7 more]. */
static pdp_str
pdp_cc_disp(pdp_cc *cc, const cJSON *v)
{
    char   buf[256];
    size_t used = 0;
    int    i    = 0;
    int    n    = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    int    k;

    if (!cJSON_IsArray(v)) {
        snprintf(buf, sizeof(buf), "\"%s\"",
                 cJSON_IsString(v) ? v->valuestring : "?");
        return pdp_cc_cstr(cc, buf);
    }
    buf[used++] = '[';
    for (const cJSON *c = v->child; c != NULL; c = c->next, i++) {
        if (i == 5 && n > 6) {
            k = snprintf(buf + used, sizeof(buf) - used, ", ... %d more",
                         n - i);
            used += k > 0 ? (size_t)k : 0;
            break;
        }
        if (cJSON_IsString(c)) {
            k = snprintf(buf + used, sizeof(buf) - used, "%s\"%.40s\"",
                         i ? ", " : "", c->valuestring);
        } else {
            k = snprintf(buf + used, sizeof(buf) - used, "%s%g", i ? ", " : "",
                         c->valuedouble);
        }
        used += k > 0 ? (size_t)k : 0;
        if (used >= sizeof(buf) - 2) {
            used = sizeof(buf) - 2;
            break;
        }
    }
    if (used > sizeof(buf) - 2) {
        used = sizeof(buf) - 2;
    }
    buf[used++] = ']';
    buf[used]   = '\0';
    return pdp_cc_cstr(cc, buf);
}

static bool
pdp_cc_set(pdp_cc *cc, uint32_t n, const cJSON *list)
{
    pdp_bundle *b    = cc->b;
    uint8_t     t    = pdp_attr_type(b->nodes[n].attr);
    const char *path = pdp_cc_s(cc, b->nodes[n].path);
    int         cnt  = cJSON_GetArraySize(list);
    uint32_t    cap  = 16;
    pdp_set     set  = {0};
    bool        ok   = true;

    if (t == PDP_T_BOOL) {
        PDP_ERR(cc, list,
                "in needs a string or number attribute; %s is true "
                "or false (use eq)",
                path);
        return false;
    }
    if (cnt > PDP_SET_MAX) {
        PDP_ERR(cc, list, "in: %d values; at most %d are allowed in one set",
                cnt, PDP_SET_MAX);
        return false;
    }
    for (const cJSON *v = list->child; v != NULL; v = v->next) {
        bool good = t == PDP_T_NUM ? cJSON_IsNumber(v) : cJSON_IsString(v);
        if (!good) {
            PDP_ERR(cc, v, "wrong argument type for in: %s is %s, got %s", path,
                    pdp_type_name(t), pdp_json_type(v));
            ok = false;
        } else if (t != PDP_T_NUM && !pdp_cc_domain(cc, b->nodes[n].attr, v)) {
            ok = false;
        }
    }
    if (!ok) {
        return false;
    }
    set.type = t == PDP_T_NUM ? PDP_T_NUM : PDP_T_STR;
    set.disp = pdp_cc_disp(cc, list);
    if (t == PDP_T_NUM) {
        set.nums = calloc((size_t)cnt + 1, sizeof(double));
        if (set.nums == NULL) {
            cc->oom = true;
            return false;
        }
        for (const cJSON *v = list->child; v != NULL; v = v->next) {
            set.nums[set.n++] = v->valuedouble;
        }
        for (uint32_t i = 1; i < set.n; i++) { /* insertion sort, then dedup */
            double   x = set.nums[i];
            uint32_t j = i;
            while (j > 0 && set.nums[j - 1] > x) {
                set.nums[j] = set.nums[j - 1];
                j--;
            }
            set.nums[j] = x;
        }
        {
            uint32_t w = 0;
            for (uint32_t i = 0; i < set.n; i++) {
                if (w == 0 || set.nums[w - 1] != set.nums[i]) {
                    set.nums[w++] = set.nums[i];
                }
            }
            set.n = w;
        }
    } else {
        while (cap < (uint32_t)cnt * 2) {
            cap *= 2;
        }
        set.mask  = cap - 1;
        set.slots = malloc(cap * sizeof(*set.slots));
        if (set.slots == NULL) {
            cc->oom = true;
            return false;
        }
        for (uint32_t i = 0; i < cap; i++) {
            set.slots[i].s.len = UINT32_MAX;
        }
        for (const cJSON *v = list->child; v != NULL; v = v->next) {
            size_t   len = strlen(v->valuestring);
            uint64_t h   = pdp_hash(v->valuestring, len);
            uint32_t i   = (uint32_t)h & set.mask;
            bool     dup = false;
            while (set.slots[i].s.len != UINT32_MAX) {
                if (set.slots[i].hash == h && set.slots[i].s.len == len &&
                    memcmp(pdp_cc_s(cc, set.slots[i].s), v->valuestring, len) ==
                        0) {
                    dup = true;
                    break;
                }
                i = (i + 1) & set.mask;
            }
            if (!dup) {
                set.slots[i].hash = h;
                set.slots[i].s    = pdp_cc_str(cc, v->valuestring, len);
                set.n++;
            }
        }
    }
    if (!PDP_GROW(cc, sets, cap_sets, b->nsets + 1)) {
        free(set.slots);
        free(set.nums);
        return false;
    }
    b->nodes[n].u.idx   = b->nsets;
    b->sets[b->nsets++] = set;
    return true;
}

static bool
pdp_cc_glob(pdp_cc *cc, uint32_t n, const char *pat)
{
    pdp_bundle *b = cc->b;
    pdp_glob    g = {0};
    const char *p = pat;

    g.pat        = pdp_cc_cstr(cc, pat);
    g.seg_first  = b->nsegs;
    g.star_start = pat[0] == '*';
    g.star_end   = pat[0] != '\0' && pat[strlen(pat) - 1] == '*';
    for (;;) {
        const char *star = strchr(p, '*');
        size_t      len  = star != NULL ? (size_t)(star - p) : strlen(p);
        if (len > 0 || (star == NULL && g.nseg == 0 && !g.star_start)) {
            if (!PDP_GROW(cc, segs, cap_segs, b->nsegs + 1)) {
                return false;
            }
            b->segs[b->nsegs++] = pdp_cc_str(cc, p, len);
            g.nseg++;
        }
        if (star == NULL) {
            break;
        }
        p = star + 1;
    }
    if (!PDP_GROW(cc, globs, cap_globs, b->nglobs + 1)) {
        return false;
    }
    b->nodes[n].u.idx     = b->nglobs;
    b->globs[b->nglobs++] = g;
    return true;
}

/* pdp_parse_ip reads an IPv4 or IPv6 address into the 128-bit form
 * (IPv4 as ::ffff:a.b.c.d, so one CIDR list serves both). */
bool pdp_parse_ip(const char *s, uint8_t out[16]);

bool
pdp_parse_ip(const char *s, uint8_t out[16])
{
    struct in_addr v4;

    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

static bool
pdp_cc_cidr_one(pdp_cc *cc, const cJSON *j)
{
    pdp_bundle *b = cc->b;
    char        addr[64];
    const char *slash;
    long        bits;
    bool        v4;
    char       *end;
    pdp_cidr    c;

    if (!cJSON_IsString(j)) {
        PDP_ERR(cc, j,
                "cidr expects a CIDR string such as \"10.0.0.0/8\", "
                "got %s",
                pdp_json_type(j));
        return false;
    }
    slash = strchr(j->valuestring, '/');
    if (strlen(j->valuestring) >= sizeof(addr)) {
        goto bad;
    }
    snprintf(addr, sizeof(addr), "%.*s",
             (int)(slash != NULL ? (size_t)(slash - j->valuestring)
                                 : strlen(j->valuestring)),
             j->valuestring);
    v4 = strchr(addr, ':') == NULL;
    if (!pdp_parse_ip(addr, c.addr)) {
        goto bad;
    }
    bits = v4 ? 32 : 128;
    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9') {
            goto bad;
        }
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0' || bits < 0 || bits > (v4 ? 32 : 128)) {
            goto bad;
        }
    }
    c.bits = (uint8_t)(v4 ? bits + 96 : bits);
    /* Clear host bits so matching is a plain prefix compare. */
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        if (lo >= c.bits) {
            c.addr[i] = 0;
        } else if (c.bits - lo < 8) {
            c.addr[i] &= (uint8_t)(0xff << (8 - (c.bits - lo)));
        }
    }
    if (!PDP_GROW(cc, cidrs, cap_cidrs, b->ncidrs + 1)) {
        return false;
    }
    b->cidrs[b->ncidrs++] = c;
    return true;
bad:
    PDP_ERR(cc, j,
            "\"%s\" is not a CIDR (expected e.g. \"10.0.0.0/8\", "
            "\"192.168.1.7\" or \"fd00::/8\")",
            j->valuestring);
    return false;
}

static bool
pdp_cc_cidr(pdp_cc *cc, uint32_t n, const cJSON *arg)
{
    pdp_bundle   *b  = cc->b;
    pdp_cidr_list l  = {.first = b->ncidrs, .n = 0};
    bool          ok = true;

    if (cJSON_IsArray(arg)) {
        if (arg->child == NULL) {
            PDP_ERR(cc, arg, "cidr needs at least one CIDR");
            return false;
        }
        for (const cJSON *c = arg->child; c != NULL; c = c->next) {
            ok = pdp_cc_cidr_one(cc, c) && ok;
        }
    } else {
        ok = pdp_cc_cidr_one(cc, arg);
    }
    if (!ok) {
        return false;
    }
    l.n    = b->ncidrs - l.first;
    l.disp = pdp_cc_disp(cc, arg);
    if (!PDP_GROW(cc, cidr_lists, cap_cidr_lists, b->ncidr_lists + 1)) {
        return false;
    }
    b->nodes[n].u.idx               = b->ncidr_lists;
    b->cidr_lists[b->ncidr_lists++] = l;
    return true;
}

/* pdp_hhmm parses "HH:MM" (00:00..24:00) into minutes; -1 if not one. */
static int
pdp_hhmm(const char *s)
{
    if (strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' ||
        s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' ||
        s[4] > '9') {
        return -1;
    }
    {
        int h = (s[0] - '0') * 10 + (s[1] - '0');
        int m = (s[3] - '0') * 10 + (s[4] - '0');
        if (h > 24 || (h == 24 && m != 0)) {
            return -1;
        }
        return h * 60 + m;
    }
}

static bool
pdp_cc_time_window(pdp_cc *cc, uint32_t n, const cJSON *arg)
{
    static const char *const keys[] = {"days", "from", "to"};
    const cJSON             *days   = NULL;
    const cJSON             *from   = NULL;
    const cJSON             *to     = NULL;
    uint8_t                  mask   = 0;
    int                      f      = -1;
    int                      t      = -1;
    bool                     ok;

    if (!cJSON_IsObject(arg)) {
        PDP_ERR(cc, arg,
                "time_window expects an object such as {\"days\": [\"mon\", "
                "\"fri\"], \"from\": \"09:00\", \"to\": \"17:30\"}, got %s",
                pdp_json_type(arg));
        return false;
    }
    ok   = pdp_cc_keys(cc, arg, "time_window", keys, 3);
    days = cJSON_GetObjectItemCaseSensitive(arg, "days");
    from = cJSON_GetObjectItemCaseSensitive(arg, "from");
    to   = cJSON_GetObjectItemCaseSensitive(arg, "to");
    if (days == NULL) {
        mask = 0x7f;
    } else if (!cJSON_IsArray(days) || days->child == NULL) {
        PDP_ERR(cc, days,
                "time_window.days expects a non-empty list of mon, tue, wed, "
                "thu, fri, sat, sun");
        ok = false;
    } else {
        for (const cJSON *d = days->child; d != NULL; d = d->next) {
            int i = -1;
            if (!cJSON_IsString(d)) {
                PDP_ERR(cc, d,
                        "time_window.days: expected a day name such as "
                        "\"mon\", got %s",
                        pdp_json_type(d));
            } else {
                i = pdp_cc_enum(cc, d, "day", d->valuestring, pdp_weekday_names,
                                7);
            }
            if (i < 0) {
                ok = false;
            } else {
                mask |= (uint8_t)(1u << i);
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *v    = k == 0 ? from : to;
        const char  *name = k == 0 ? "from" : "to";
        int          mins = -1;
        if (v == NULL) {
            PDP_ERR(cc, arg, "time_window needs \"%s\" (\"HH:MM\")", name);
            ok = false;
            continue;
        }
        if (cJSON_IsString(v)) {
            mins = pdp_hhmm(v->valuestring);
        }
        if (mins < 0 || (k == 0 && mins == 24 * 60)) {
            PDP_ERR(cc, v,
                    "time_window.%s expects a time \"HH:MM\" from 00:00 to "
                    "%s, got %s%s%s",
                    name, k == 0 ? "23:59" : "24:00",
                    cJSON_IsString(v) ? "\"" : "",
                    cJSON_IsString(v) ? v->valuestring : pdp_json_type(v),
                    cJSON_IsString(v) ? "\"" : "");
            ok = false;
            continue;
        }
        if (k == 0) {
            f = mins;
        } else {
            t = mins;
        }
    }
    if (ok && f == t) {
        PDP_ERR(cc, to,
                "time_window: \"from\" and \"to\" are equal, so the window "
                "is empty; leave the time_window out to allow all day");
        ok = false;
    }
    if (!ok) {
        return false;
    }
    cc->b->nodes[n].days      = mask;
    cc->b->nodes[n].u.tw.from = (uint16_t)f;
    cc->b->nodes[n].u.tw.to   = (uint16_t)t;
    return true;
}

/* ---- predicates ---------------------------------------------------------- */

static void pdp_cc_pred(pdp_cc *cc, const cJSON *j, uint32_t depth);

static const char *const pdp_op_list[] = {
    "all",      "any",  "not",  "eq",     "ne",         "lt",
    "le",       "gt",   "ge",   "in",     "prefix",     "suffix",
    "contains", "glob", "cidr", "exists", "time_window"};
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

/* pdp_cc_binary compiles {"op": [ATTR, ARG]}; node n already exists. */
static void
pdp_cc_binary(pdp_cc *cc, uint32_t n, const cJSON *m, int op)
{
    const cJSON             *args = m;
    const cJSON             *attr;
    const cJSON             *arg;
    const char              *name                  = pdp_op_names[op];
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
    switch (op) {
    case PDP_OP_EQ:
    case PDP_OP_NE:
        pdp_cc_literal(cc, n, arg, name);
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
                    example[op], pdp_json_type(arg));
            return;
        }
        pdp_cc_set(cc, n, arg);
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

static void
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

/* ---- rules --------------------------------------------------------------- */

static const char *const pdp_kind_list[]   = {"access", "route", "audit",
                                              "rate_limit", "budget"};
static const char *const pdp_later_kinds[] = {"guardrail"};
static const char *const pdp_scope_list[]  = {"key", "tenant", "user",
                                              "model"};
static const char *const pdp_mode_list[]   = {"enforce", "audit", "off"};
static const char *const pdp_onerr_list[]  = {"deny", "skip"};
static const char *const pdp_effect_list[] = {"allow", "deny"};

static const char *
pdp_cc_string(pdp_cc *cc, const cJSON *rule, const char *key, bool required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rule, key);

    if (v == NULL) {
        if (required) {
            PDP_ERR(cc, rule, "missing required field \"%s\"", key);
        }
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        PDP_ERR(cc, v, "\"%s\" expects a string, got %s", key,
                pdp_json_type(v));
        return NULL;
    }
    return v->valuestring;
}

static int
pdp_cc_field_enum(pdp_cc *cc, const cJSON *rule, const char *key, int dflt,
                  const char *const names[], size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rule, key);

    if (v == NULL) {
        return dflt;
    }
    if (!cJSON_IsString(v)) {
        PDP_ERR(cc, v, "\"%s\" expects a string, got %s", key,
                pdp_json_type(v));
        return -1;
    }
    return pdp_cc_enum(cc, v, key, v->valuestring, names, n);
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

static bool
pdp_dep_has_labels(const tg_deployment *d, const cJSON *labels)
{
    for (const cJSON *l = labels->child; l != NULL; l = l->next) {
        bool hit = false;
        for (size_t i = 0; i < d->n_labels && !hit; i++) {
            hit = strcmp(d->label_keys[i], l->string) == 0 &&
                  strcmp(d->label_values[i], l->valuestring) == 0;
        }
        if (!hit) {
            return false;
        }
    }
    return true;
}

static int
pdp_cc_group(const pdp_bundle *b, const char *pool, const char *model)
{
    for (uint32_t g = 0; g < b->ngroups; g++) {
        if (strcmp(pool + b->groups[g].model.off, model) == 0) {
            return (int)g;
        }
    }
    return -1;
}

static void
pdp_cc_route(pdp_cc *cc, const cJSON *r, pdp_rule *rule)
{
    static const char *const strategies[] = {"ordered", "weighted",
                                             "least_inflight", "lowest_latency",
                                             "lowest_cost"};
    pdp_bundle              *b            = cc->b;
    const cJSON *deps   = cJSON_GetObjectItemCaseSensitive(r, "deployments");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(r, "labels");
    const cJSON *fbs    = cJSON_GetObjectItemCaseSensitive(r, "fallbacks");
    pdp_route    rt     = {0};
    size_t       words  = (b->ndeps + 63) / 64;
    bool         ok     = true;
    int          s;

    s           = pdp_cc_field_enum(cc, r, "strategy", 0, strategies, 5);
    rt.strategy = (uint8_t)(s < 0 ? TG_ROUTE_ORDERED : s + 1);
    if (deps == NULL && labels == NULL && fbs == NULL) {
        PDP_ERR(cc, r,
                "a route rule needs \"deployments\", \"labels\" or "
                "\"fallbacks\"");
        return;
    }
    if (!b->have_catalog) {
        PDP_ERR(cc, cJSON_GetObjectItemCaseSensitive(r, "kind"),
                "route rules need the deployments catalog: pass --config");
        return;
    }
    if (deps != NULL || labels != NULL) {
        rt.allow = calloc(words + 1, sizeof(uint64_t));
        if (rt.allow == NULL) {
            cc->oom = true;
            return;
        }
    }
    if (deps != NULL) {
        rt.has_list = true;
        if (!cJSON_IsArray(deps) || deps->child == NULL) {
            PDP_ERR(cc, deps,
                    "\"deployments\" expects a non-empty list of "
                    "deployment ids from the config");
            ok = false;
        } else {
            rt.order =
                calloc((size_t)cJSON_GetArraySize(deps), sizeof(uint32_t));
            if (rt.order == NULL) {
                cc->oom = true;
                goto out;
            }
            for (const cJSON *d = deps->child; d != NULL; d = d->next) {
                uint32_t i;
                if (!cJSON_IsString(d)) {
                    PDP_ERR(cc, d,
                            "\"deployments\": expected a deployment "
                            "id, got %s",
                            pdp_json_type(d));
                    ok = false;
                    continue;
                }
                for (i = 0; i < b->ndeps; i++) {
                    if (strcmp(pdp_cc_s(cc, b->dep_ids[i]), d->valuestring) ==
                        0) {
                        break;
                    }
                }
                if (i == b->ndeps) {
                    const char *ids[64];
                    size_t      nids = b->ndeps < 64 ? b->ndeps : 64;
                    const char *sug;
                    for (size_t k = 0; k < nids; k++) {
                        ids[k] = pdp_cc_s(cc, b->dep_ids[k]);
                    }
                    sug = pdp_suggest(d->valuestring, ids, nids);
                    if (sug != NULL) {
                        PDP_ERR(cc, d,
                                "unknown deployment id \"%s\" (did you mean "
                                "\"%s\"?)",
                                d->valuestring, sug);
                    } else {
                        PDP_ERR(cc, d,
                                "unknown deployment id \"%s\": not in the "
                                "config's deployments",
                                d->valuestring);
                    }
                    ok = false;
                    continue;
                }
                if (rt.allow[i / 64] & (1ull << (i % 64))) {
                    PDP_ERR(cc, d, "deployment \"%s\" is listed twice",
                            d->valuestring);
                    ok = false;
                    continue;
                }
                rt.allow[i / 64] |= 1ull << (i % 64);
                rt.order[rt.n_order++] = i;
            }
        }
    } else if (rt.allow != NULL) {
        for (uint32_t i = 0; i < b->ndeps; i++) {
            rt.allow[i / 64] |= 1ull << (i % 64);
        }
    }
    if (labels != NULL) {
        bool lok = cJSON_IsObject(labels) && labels->child != NULL;
        for (const cJSON *l = lok ? labels->child : NULL; l != NULL;
             l              = l->next) {
            if (!cJSON_IsString(l)) {
                PDP_ERR(cc, l,
                        "\"labels\": label \"%s\" expects a string "
                        "value, got %s",
                        l->string, pdp_json_type(l));
                lok = false;
            }
        }
        if (!cJSON_IsObject(labels) || labels->child == NULL) {
            PDP_ERR(cc, labels,
                    "\"labels\" expects an object of labels, e.g. "
                    "{\"region\": \"eu\"}");
        }
        if (!lok) {
            ok = false;
        } else {
            bool any = false;
            for (uint32_t i = 0; i < b->ndeps; i++) {
                if (!pdp_dep_has_labels(&cc->cfg->deployments[i], labels)) {
                    rt.allow[i / 64] &= ~(1ull << (i % 64));
                } else if (rt.allow[i / 64] & (1ull << (i % 64))) {
                    any = true;
                }
            }
            if (!any && ok) {
                PDP_ERR(cc, labels,
                        "no deployment in the catalog%s has these labels, "
                        "so the rule could only ever deny",
                        deps != NULL ? " listed in \"deployments\"" : "");
                ok = false;
            }
        }
    }
    if (fbs != NULL) {
        if (!cJSON_IsArray(fbs)) {
            PDP_ERR(cc, fbs, "\"fallbacks\" expects a list of model names");
            ok = false;
        } else {
            rt.fallbacks =
                calloc((size_t)cJSON_GetArraySize(fbs) + 1, sizeof(uint32_t));
            if (rt.fallbacks == NULL) {
                cc->oom = true;
                goto out;
            }
            for (const cJSON *f = fbs->child; f != NULL; f = f->next) {
                int g = -1;
                if (!cJSON_IsString(f)) {
                    PDP_ERR(cc, f,
                            "\"fallbacks\": expected a model name, "
                            "got %s",
                            pdp_json_type(f));
                } else if ((g = pdp_cc_group(b, cc->pool.data,
                                             f->valuestring)) < 0) {
                    PDP_ERR(cc, f,
                            "fallback model \"%s\" has no deployment in the "
                            "config's deployments",
                            f->valuestring);
                }
                if (g < 0) {
                    ok = false;
                    continue;
                }
                rt.fallbacks[rt.n_fallbacks++] = (uint32_t)g;
            }
        }
    }
    if (!ok || !PDP_GROW(cc, routes, cap_routes, b->nroutes + 1)) {
        goto out;
    }
    rule->route             = b->nroutes;
    b->routes[b->nroutes++] = rt;
    return;
out:
    free(rt.allow);
    free(rt.order);
    free(rt.fallbacks);
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
    rule->rpm        = pdp_cc_limit(cc, r, "rpm", PDP_RPM_MAX, &bad);
    rule->tpm        = pdp_cc_limit(cc, r, "tpm", PDP_TPM_MAX, &bad);
    rule->concurrent =
        pdp_cc_limit(cc, r, "concurrent", PDP_CONCURRENT_MAX, &bad);
    if (!bad && rule->rpm == 0 && rule->tpm == 0 && rule->concurrent == 0) {
        PDP_ERR(cc, r,
                "a rate_limit rule needs at least one of \"rpm\", \"tpm\" "
                "or \"concurrent\"");
    }
}

/* ---- budget rules -------------------------------------------------------- */

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
static const char *const pdp_scope_names[]  = {"key", "tenant", "user",
                                               "model", "metadata"};

const char *
pdp_window_name(uint8_t window)
{
    return window <= PDP_WINDOW_ROLLING ? pdp_window_names[window]
                                        : "rolling";
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
static tg_pricing *
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
        if (!d->has_price &&
            !(d->upstream_model != NULL &&
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
    tg_pricing  *pr;
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
                tg_buf_addf(&missing, "%s\"%s\"", nmissing ? ", " : "",
                            model);
                nmissing++;
            }
        }
    } else {
        for (uint32_t g = 0; g < cc->b->ngroups; g++) {
            const char *model = pdp_cc_s(cc, cc->b->groups[g].model);
            if (!pdp_cc_priced(cc, pr, model)) {
                tg_buf_addf(&missing, "%s\"%s\"", nmissing ? ", " : "",
                            model);
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
                prev                     = (int)d;
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
                   hj->valuestring[strcspn(hj->valuestring, ":") + 3] ==
                       '\0') {
            PDP_ERR(cc, hj,
                    "\"webhook\" \"%s\" is not valid; expected an "
                    "http:// or https:// URL (at most %d bytes, no spaces)",
                    hj->valuestring, PDP_WEBHOOK_MAX - 1);
        } else {
            rule->webhook = pdp_cc_cstr(cc, hj->valuestring);
        }
    }
}

static void
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

static void
pdp_cc_rule(pdp_cc *cc, const cJSON *r, int index)
{
    static const char *const common[] = {"id",       "kind",        "mode",
                                         "on_error", "description", "when"};
    static const char *const access[] = {
        "id",   "kind",   "mode",   "on_error", "description",
        "when", "effect", "status", "code",     "message"};
    static const char *const route[] = {
        "id",   "kind",        "mode",   "on_error", "description",
        "when", "deployments", "labels", "strategy", "fallbacks"};
    static const char *const audit[] = {
        "id", "kind", "mode", "on_error", "description", "when", "capture"};
    static const char *const rate[] = {"id",       "kind",        "mode",
                                       "on_error", "description", "when",
                                       "scope",    "rpm",         "tpm",
                                       "concurrent"};
    static const char *const budget[] = {
        "id",   "kind",  "mode",   "on_error",  "description",
        "when", "scope", "window", "limit_usd", "action", "thresholds",
        "webhook"};
    pdp_bundle  *b = cc->b;
    pdp_rule     rule;
    const cJSON *idj;
    const cJSON *kindj;
    const cJSON *when;
    const char  *id;
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
    idj = cJSON_GetObjectItemCaseSensitive(r, "id");
    id  = pdp_cc_string(cc, r, "id", true);
    if (id != NULL && !tg_id_ok(id)) {
        PDP_ERR(cc, idj,
                "rule id \"%s\" is not valid: expected 1 to %d of "
                "A-Z a-z 0-9 . _ -",
                id, PDP_RULE_ID_MAX - 1);
        id = NULL;
    }
    if (id != NULL) {
        snprintf(ctx, sizeof(ctx), "rule %s", id);
    }
    if (b->nrules >= PDP_RULES_MAX) {
        if (!cc->too_many_rules) {
            PDP_ERR(cc, r, "the bundle has more than %d rules", PDP_RULES_MAX);
        }
        cc->too_many_rules = true;
        return;
    }
    rule.id   = pdp_cc_cstr(cc, id != NULL ? id : ctx);
    rule.file = cc->file;
    rule.seq  = cc->seq++;
    tg_json_doc_pos(cc->doc, idj != NULL ? idj : r, &rule.line, &rule.col);

    kindj = cJSON_GetObjectItemCaseSensitive(r, "kind");
    kind  = pdp_cc_string(cc, r, "kind", true);
    k     = -1;
    if (kind != NULL) {
        for (size_t i = 0; i < 1; i++) {
            if (strcmp(kind, pdp_later_kinds[i]) == 0) {
                PDP_ERR(cc, kindj, "rule kind \"%s\" is not supported yet",
                        kind);
                return;
            }
        }
        k = pdp_cc_enum(cc, kindj, "rule kind", kind, pdp_kind_list, 5);
    }
    if (k < 0) {
        pdp_cc_keys(cc, r, "a rule", common, 6);
        return;
    }
    rule.kind = (uint8_t)k;
    if (k == PDP_KIND_ACCESS) {
        pdp_cc_keys(cc, r, "an access rule", access, 10);
    } else if (k == PDP_KIND_ROUTE) {
        pdp_cc_keys(cc, r, "a route rule", route, 10);
    } else if (k == PDP_KIND_RATE_LIMIT) {
        pdp_cc_keys(cc, r, "a rate_limit rule", rate, 10);
    } else if (k == PDP_KIND_BUDGET) {
        pdp_cc_keys(cc, r, "a budget rule", budget, 12);
    } else {
        pdp_cc_keys(cc, r, "an audit rule", audit, 7);
    }
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
    if (k == PDP_KIND_ACCESS) {
        pdp_cc_access(cc, r, &rule);
    } else if (k == PDP_KIND_ROUTE) {
        pdp_cc_route(cc, r, &rule);
    } else if (k == PDP_KIND_RATE_LIMIT) {
        pdp_cc_rate(cc, r, &rule);
    } else if (k == PDP_KIND_BUDGET) {
        pdp_cc_budget(cc, r, &rule);
    } else {
        int c = pdp_cc_field_enum(cc, r, "capture", 1, pdp_capture_names, 3);
        rule.capture = (uint8_t)(c < 0 ? 1 : c);
    }
    if (PDP_GROW(cc, rules, cap_rules, b->nrules + 1)) {
        b->rules[b->nrules++] = rule;
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

/* ---- begin / end --------------------------------------------------------- */

tg_err
pdp_compile_begin(pdp_cc **out, pdp_bundle *b, const tg_config *cfg)
{
    pdp_cc  *cc          = calloc(1, sizeof(*cc));
    uint32_t cap_groups  = 0;
    uint32_t cap_members = 0;

    if (cc == NULL) {
        return TG_ENOMEM;
    }
    cc->b   = b;
    cc->cfg = cfg;
    tg_buf_init(&cc->pool, 0);
    /* Offset 0 is the empty string, so a zeroed pdp_str reads as "". */
    pdp_cc_str(cc, "", 0);
    if (cfg != NULL) {
        b->have_catalog = true;
        b->ndeps        = (uint32_t)cfg->n_deployments;
        b->dep_ids      = calloc(b->ndeps + 1, sizeof(*b->dep_ids));
        b->dep_group    = calloc(b->ndeps + 1, sizeof(*b->dep_group));
        if (b->dep_ids == NULL || b->dep_group == NULL) {
            cc->oom = true;
        }
        for (uint32_t i = 0; i < b->ndeps && !cc->oom; i++) {
            const tg_deployment *d = &cfg->deployments[i];
            int                  g;
            b->dep_ids[i] = pdp_cc_cstr(cc, d->id);
            g             = pdp_cc_group(b, cc->pool.data, d->model);
            if (g < 0) {
                if (!pdp_cc_grow(cc, (void **)&b->groups, &cap_groups,
                                 b->ngroups + 1, sizeof(*b->groups))) {
                    break;
                }
                g                  = (int)b->ngroups++;
                b->groups[g].model = pdp_cc_cstr(cc, d->model);
                b->groups[g].hash  = pdp_hash(d->model, strlen(d->model));
                b->groups[g].n     = 0;
            }
            b->dep_group[i] = (uint32_t)g;
            b->groups[g].n++;
        }
        /* Members grouped by model, catalog order within a group. */
        if (!cc->oom && pdp_cc_grow(cc, (void **)&b->members, &cap_members,
                                    b->ndeps + 1, sizeof(*b->members))) {
            uint32_t at = 0;
            for (uint32_t g = 0; g < b->ngroups; g++) {
                b->groups[g].first = at;
                for (uint32_t i = 0; i < b->ndeps; i++) {
                    if (b->dep_group[i] == g) {
                        b->members[at++] = i;
                    }
                }
            }
        }
    }
    *out = cc;
    return cc->oom ? TG_ENOMEM : TG_OK;
}

/* Ties (duplicate ids, an error anyway) keep load order, so the message
 * names the later rule and points at the first. */
static int
pdp_rule_cmp(const void *x, const void *y, void *pool)
{
    const pdp_rule *a = x;
    const pdp_rule *b = y;
    int             c =
        strcmp((const char *)pool + a->id.off, (const char *)pool + b->id.off);

    if (c != 0) {
        return c;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

tg_err
pdp_compile_end(pdp_cc *cc, pdp_errs *e)
{
    pdp_bundle *b = cc->b;

    if (cc->oom) {
        return TG_ENOMEM;
    }
    if (b->nrules > 1) {
        qsort_r(b->rules, b->nrules, sizeof(*b->rules), pdp_rule_cmp,
                cc->pool.data);
    }
    for (uint32_t i = 1; i < b->nrules; i++) {
        const pdp_rule *p = &b->rules[i - 1];
        const pdp_rule *r = &b->rules[i];
        /* A rule without a valid id is named "rules[i]" and already has
         * its error; two of those are not duplicates. */
        if (strcmp(pdp_cc_s(cc, p->id), pdp_cc_s(cc, r->id)) == 0 &&
            tg_id_ok(pdp_cc_s(cc, r->id))) {
            const pdp_rule *first = p;
            while (first > b->rules && strcmp(pdp_cc_s(cc, (first - 1)->id),
                                              pdp_cc_s(cc, r->id)) == 0) {
                first--;
            }
            pdp_errs_addf(e,
                          "%s:%d:%d: rule %s: duplicate rule id; it is "
                          "already used at %s:%d:%d",
                          pdp_cc_s(cc, r->file), r->line, r->col,
                          pdp_cc_s(cc, r->id), pdp_cc_s(cc, first->file),
                          first->line, first->col);
        }
    }
    /* Budgets set through administration are priced with the same table,
     * so a bundle without budget rules loads it too. */
    if (cc->pr_state == 0) {
        pdp_cc_pricing(cc, NULL);
    }
    b->pricing    = cc->pr;
    cc->pr        = NULL;
    b->pool       = cc->pool.data;
    b->pool_len   = cc->pool.len;
    cc->pool.data = NULL;
    tg_buf_init(&cc->pool, 0);
    return TG_OK;
}

void
pdp_compile_free(pdp_cc *cc)
{
    if (cc == NULL) {
        return;
    }
    tg_buf_fini(&cc->pool);
    tg_pricing_destroy(cc->pr);
    free(cc);
}
