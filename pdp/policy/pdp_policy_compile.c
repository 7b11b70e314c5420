/* pdp_policy_compile.c - the compiler's driver: pdp_compile_begin/end
 * (catalog, duplicate ids, sort, price table) and what every stage shares:
 * error messages, suggestions, the string pool, JSON field checks.
 * Not thread-safe: one pdp_cc per load; called by pdp_bundle_load. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_compile_int.h"

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
const char *
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

bool
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

pdp_str
pdp_cc_str(pdp_cc *cc, const char *s, size_t n)
{
    pdp_str r = {(uint32_t)cc->pool.len, (uint32_t)n};

    if (tg_buf_append(&cc->pool, s, n) != TG_OK ||
        tg_buf_append(&cc->pool, "", 1) != TG_OK) {
        cc->oom = true;
        return (pdp_str){0, 0};
    }
    if (cc->fold) {
        pdp_fold(cc->pool.data + r.off, n);
    }
    return r;
}

pdp_str
pdp_cc_cstr(pdp_cc *cc, const char *s)
{
    return pdp_cc_str(cc, s, strlen(s));
}

uint32_t
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
bool
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

const char *
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

const char *
pdp_type_name(uint8_t t)
{
    return t == PDP_T_NUM    ? "a number"
           : t == PDP_T_BOOL ? "true or false"
           : t == PDP_T_IP   ? "an IP address (a string)"
                             : "a string";
}

/* pdp_cc_enum matches s against names; -1 and an error if none. */
int
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

bool
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

const char *
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

int
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

/* ---- begin / end --------------------------------------------------------- */

/* Room for a bundle's warnings (more are counted, not kept). */
#define PDP_WARN_BYTES 16384

tg_err
pdp_compile_begin(pdp_cc **out, pdp_bundle *b, const tg_config *cfg)
{
    pdp_cc *cc = calloc(1, sizeof(*cc));

    if (cc == NULL) {
        return TG_ENOMEM;
    }
    cc->b   = b;
    cc->cfg = cfg;
    tg_buf_init(&cc->pool, 0);
    /* Without room the warnings are left out; the bundle is the same. */
    if ((cc->warn.buf = malloc(PDP_WARN_BYTES)) != NULL) {
        cc->warn.cap    = PDP_WARN_BYTES;
        cc->warn.buf[0] = '\0';
    }
    /* Offset 0 is the empty string, so a zeroed pdp_str reads as "". */
    pdp_cc_str(cc, "", 0);
    if (cfg != NULL) {
        pdp_cc_catalog(cc, cfg);
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

/* pdp_cc_reads notes what any rule of b reads of a request beyond its
 * key, endpoint and model (every node, whatever its rule's mode: a bound
 * on what a decision depends on, for decision reuse). */
static void
pdp_cc_reads(pdp_bundle *b)
{
    static const uint32_t bit[PDP_A_COUNT] = {
        [PDP_A_USER]          = TG_REUSE_USER,
        [PDP_A_STREAM]        = TG_REUSE_STREAM,
        [PDP_A_MAX_TOKENS]    = TG_REUSE_MAX_TOKENS,
        [PDP_A_PROMPT_TOKENS] = TG_REUSE_PROMPT,
        [PDP_A_META]          = TG_REUSE_META,
        [PDP_A_CLIENT_IP]     = TG_REUSE_CLIENT_IP,
    };

    b->reads      = 0;
    b->reads_time = false;
    for (uint32_t i = 0; i < b->nnodes; i++) {
        const pdp_node *nd = &b->nodes[i];

        if (nd->op == PDP_OP_TIME_WINDOW ||
            (nd->attr >= PDP_A_TIME_HOUR && nd->attr <= PDP_A_TIME_DATE)) {
            b->reads_time = true;
        } else if (nd->attr < PDP_A_COUNT) {
            b->reads |= bit[nd->attr];
        }
    }
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
    pdp_cc_guard_end(cc, e);
    /* Budgets set through administration are priced with the same table,
     * so a bundle without budget rules loads it too. */
    if (cc->pr_state == 0) {
        pdp_cc_pricing(cc, NULL);
    }
    b->pricing = cc->pr;
    cc->pr     = NULL;
    if (cc->warn.len > 0) {
        b->warnings  = cc->warn.buf;
        cc->warn.buf = NULL;
        cc->warn.cap = 0;
    }
    b->pool       = cc->pool.data;
    b->pool_len   = cc->pool.len;
    cc->pool.data = NULL;
    tg_buf_init(&cc->pool, 0);
    pdp_cc_reads(b);
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
    free(cc->warn.buf);
    cJSON_Delete(cc->guard_rules);
    free(cc);
}
