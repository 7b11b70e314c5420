/* pdp_policy_eval.c - evaluates a compiled bundle against one request's
 * attributes. The hot path allocates nothing and takes no lock: the
 * bundle is immutable, all scratch state lives on the stack, and the
 * bundle's local time is computed at most once per call. A trace, when
 * given, records as it goes; without one, each record point is a single
 * predictable branch.
 *
 * Predicates follow Cedar: `all` and `any` evaluate left to right and stop
 * at the first child that decides (or errors), so {"all": [{"exists": A},
 * {"eq": [A, "x"]}]} is the way to guard a read of an optional attribute. */
#include <stdio.h>
#include <string.h>

#include "pdp_policy_int.h"

/* mr[] below holds rule indices in 16 bits. */
_Static_assert(PDP_RULES_MAX <= UINT16_MAX, "rule index must fit uint16_t");

/* Rule states after evaluation. */
enum {
    PDP_S_NO = 0,   /* evaluated, not matched */
    PDP_S_MATCH,    /* evaluated, matched */
    PDP_S_ERR_SKIP, /* errored, on_error skip: not matched */
    PDP_S_ERR_DENY, /* errored, on_error deny: counts as a deny */
    PDP_S_OFF,      /* mode off: not evaluated */
};

typedef struct pdp_ectx {
    const pdp_bundle *b;
    const pdp_attrs  *a;
    pdp_trace        *t;
    uint32_t          err_node; /* the node that errored */
    uint8_t           err_ip;   /* 1: client_ip was not an address */
    int8_t            ip_state; /* 0 not parsed, 1 valid, -1 invalid */
    bool              time_done;
    uint8_t           wday; /* 0 = mon */
    uint16_t          mod;  /* minute of the day */
    uint8_t           ip[16];
    int64_t           days; /* local days since 1970-01-01 */
    char              date[16];
} pdp_ectx;

typedef struct pdp_val {
    const char *s;
    size_t      len;
    double      n;
    bool        b;
} pdp_val;

static void
pdp_eval_time(pdp_ectx *x)
{
    const int64_t ms = x->a->now_ms;
    int64_t       s  = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t       days;
    int64_t       sod;

    s += pdp_tz_offset(&x->b->tz, s);
    days   = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    sod    = s - days * 86400;
    x->mod = (uint16_t)(sod / 60);
    /* 1970-01-01 was a Thursday: index 3 counting from Monday. */
    x->wday      = (uint8_t)(((days % 7) + 7 + 3) % 7);
    x->days      = days;
    x->date[0]   = '\0'; /* written when time.date is read */
    x->time_done = true;
}

/* pdp_eval_date writes time.date (YYYY-MM-DD) by hand: snprintf would
 * cost more than the rest of a typical evaluation. */
static void
pdp_eval_date(pdp_ectx *x)
{
    int64_t  y;
    unsigned m;
    unsigned d;
    unsigned yy;

    tg_civil_from_days(x->days, &y, &m, &d);
    yy          = y < 0 ? 0 : y > 9999 ? 9999 : (unsigned)y;
    x->date[0]  = (char)('0' + yy / 1000);
    x->date[1]  = (char)('0' + yy / 100 % 10);
    x->date[2]  = (char)('0' + yy / 10 % 10);
    x->date[3]  = (char)('0' + yy % 10);
    x->date[4]  = '-';
    x->date[5]  = (char)('0' + m / 10);
    x->date[6]  = (char)('0' + m % 10);
    x->date[7]  = '-';
    x->date[8]  = (char)('0' + d / 10);
    x->date[9]  = (char)('0' + d % 10);
    x->date[10] = '\0';
}

static const char *
pdp_label(const tg_kv *kv, uint32_t n, const char *key, bool icase)
{
    if (n > PDP_ATTR_LABELS_MAX) {
        n = PDP_ATTR_LABELS_MAX;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (icase ? strcasecmp(kv[i].key, key) == 0
                  : strcmp(kv[i].key, key) == 0) {
            return kv[i].value;
        }
    }
    return NULL;
}

/* pdp_read fetches the node's attribute; false if it is absent. */
static bool
pdp_read(pdp_ectx *x, const pdp_node *nd, pdp_val *v)
{
    const pdp_attrs *a = x->a;
    const char      *s = NULL;

    switch (nd->attr) {
    case PDP_A_KEY_ID:
        s = a->key_id;
        break;
    case PDP_A_PRINCIPAL_TENANT:
    case PDP_A_TENANT_ID:
        s = a->tenant_id;
        break;
    case PDP_A_USER:
        s = a->user;
        break;
    case PDP_A_KEY_LABEL:
        s = pdp_label(a->key_labels, a->n_key_labels, pdp_s(x->b, nd->key),
                      false);
        break;
    case PDP_A_TENANT_TIER:
        s = a->tenant_tier;
        break;
    case PDP_A_TENANT_LABEL:
        s = pdp_label(a->tenant_labels, a->n_tenant_labels,
                      pdp_s(x->b, nd->key), false);
        break;
    case PDP_A_ENDPOINT:
        s = pdp_endpoint_name(a->endpoint);
        break;
    case PDP_A_MODEL:
        s = a->model;
        break;
    case PDP_A_STREAM:
        v->b = a->stream;
        return true;
    case PDP_A_MAX_TOKENS:
        v->n = (double)a->max_tokens;
        return a->max_tokens != 0;
    case PDP_A_PROMPT_TOKENS:
        v->n = (double)a->prompt_tokens;
        return true;
    case PDP_A_META:
        /* Metadata keys come from HTTP header names: case-insensitive. */
        s = pdp_label(a->meta,
                      a->n_meta > TG_MSG_META_MAX ? TG_MSG_META_MAX : a->n_meta,
                      pdp_s(x->b, nd->key), true);
        break;
    case PDP_A_CLIENT_IP:
        s = a->client_ip;
        break;
    case PDP_A_TIME_HOUR:
    case PDP_A_TIME_MINUTE:
    case PDP_A_TIME_WEEKDAY:
    case PDP_A_TIME_DATE:
        if (!x->time_done) {
            pdp_eval_time(x);
        }
        if (nd->attr == PDP_A_TIME_HOUR) {
            v->n = x->mod / 60;
            return true;
        }
        if (nd->attr == PDP_A_TIME_MINUTE) {
            v->n = x->mod % 60;
            return true;
        }
        if (nd->attr == PDP_A_TIME_DATE && x->date[0] == '\0') {
            pdp_eval_date(x);
        }
        s = nd->attr == PDP_A_TIME_WEEKDAY ? pdp_weekday_names[x->wday]
                                           : x->date;
        break;
    default:
        return false;
    }
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    v->s   = s;
    v->len = strlen(s);
    return true;
}

static bool
pdp_set_has_str(const pdp_set *set, const char *pool, const char *s, size_t len)
{
    uint64_t h = pdp_hash(s, len);
    uint32_t i = (uint32_t)h & set->mask;

    if (set->slots == NULL) {
        return false;
    }
    while (set->slots[i].s.len != UINT32_MAX) {
        if (set->slots[i].hash == h && set->slots[i].s.len == len &&
            memcmp(pool + set->slots[i].s.off, s, len) == 0) {
            return true;
        }
        i = (i + 1) & set->mask;
    }
    return false;
}

static bool
pdp_set_has_num(const pdp_set *set, double v)
{
    uint32_t lo = 0;
    uint32_t hi = set->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (set->nums[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < set->n && set->nums[lo] == v;
}

/* pdp_seg_at compares a glob segment ('?' matches any byte) at s. */
static bool
pdp_seg_at(const char *s, const char *seg, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (seg[i] != '?' && seg[i] != s[i]) {
            return false;
        }
    }
    return true;
}

/* pdp_glob_match: the first segment is anchored at the start, the last at
 * the end (unless the pattern starts/ends with '*'); the ones between are
 * found leftmost-first, which is optimal when only '*' separates them. */
static bool
pdp_glob_match(const pdp_bundle *b, const pdp_glob *g, const char *s,
               size_t len)
{
    const pdp_str *seg = b->segs + g->seg_first;
    uint32_t       lo  = 0;
    uint32_t       hi  = g->nseg;
    size_t         at  = 0;
    size_t         end = len;

    if (g->nseg == 0) {
        return g->star_start || len == 0; /* "*" or "" */
    }
    if (!g->star_start) {
        if (seg[0].len > len || !pdp_seg_at(s, pdp_s(b, seg[0]), seg[0].len)) {
            return false;
        }
        at = seg[0].len;
        lo = 1;
        if (g->nseg == 1 && !g->star_end) {
            return at == len;
        }
    }
    if (!g->star_end && hi > lo) {
        const pdp_str *last = &seg[hi - 1];
        if (last->len > len - at ||
            !pdp_seg_at(s + len - last->len, pdp_s(b, *last), last->len)) {
            return false;
        }
        end = len - last->len;
        hi--;
    }
    for (uint32_t k = lo; k < hi; k++) {
        const char *p     = pdp_s(b, seg[k]);
        size_t      n     = seg[k].len;
        bool        found = false;
        while (at + n <= end) {
            if (pdp_seg_at(s + at, p, n)) {
                found = true;
                break;
            }
            at++;
        }
        if (!found) {
            return false;
        }
        at += n;
    }
    return at <= end;
}

static bool
pdp_cidr_match(const pdp_cidr *c, const uint8_t ip[16])
{
    unsigned full = c->bits / 8;
    unsigned rest = c->bits % 8;

    if (memcmp(c->addr, ip, full) != 0) {
        return false;
    }
    return rest == 0 ||
           (ip[full] & (uint8_t)(0xff << (8 - rest))) == c->addr[full];
}

static bool
pdp_time_window(const pdp_ectx *x, const pdp_node *nd)
{
    unsigned m    = x->mod;
    unsigned from = nd->u.tw.from;
    unsigned to   = nd->u.tw.to;
    unsigned prev = (x->wday + 6u) % 7u;

    if (from < to) {
        return (nd->days >> x->wday & 1u) && m >= from && m < to;
    }
    /* Wraps midnight: a window belongs to the day it starts on, so Friday
     * 22:00-06:00 covers Saturday 03:00. */
    return ((nd->days >> x->wday & 1u) && m >= from) ||
           ((nd->days >> prev & 1u) && m < to);
}

/* ---- trace formatting (only with a trace) -------------------------------- */

static void
pdp_fmt_val(const pdp_ectx *x, const pdp_node *nd, bool present,
            const pdp_val *v, char *buf, size_t cap)
{
    uint8_t t;

    if (nd->op == PDP_OP_TIME_WINDOW) {
        snprintf(buf, cap, "%s %02u:%02u (%s)", pdp_weekday_names[x->wday],
                 x->mod / 60u, x->mod % 60u,
                 x->b->tz.name[0] ? x->b->tz.name : "UTC");
        return;
    }
    if (!present) {
        snprintf(buf, cap, "(absent)");
        return;
    }
    t = nd->attr == PDP_A_STREAM ? PDP_T_BOOL
        : (nd->attr == PDP_A_MAX_TOKENS || nd->attr == PDP_A_PROMPT_TOKENS ||
           nd->attr == PDP_A_TIME_HOUR || nd->attr == PDP_A_TIME_MINUTE)
            ? PDP_T_NUM
            : PDP_T_STR;
    if (t == PDP_T_BOOL) {
        snprintf(buf, cap, "%s", v->b ? "true" : "false");
    } else if (t == PDP_T_NUM) {
        snprintf(buf, cap, "%g", v->n);
    } else {
        snprintf(buf, cap, "\"%.*s\"", v->len > 120 ? 120 : (int)v->len, v->s);
    }
}

/* ---- predicates ---------------------------------------------------------- */

/* pdp_eval_cidr: is the client address v in node i's CIDR list? An error
 * (noted in x) when it is not an address; parsed once per evaluation. */
static inline pdp_res
pdp_eval_cidr(pdp_ectx *x, uint32_t i, const pdp_node *nd, const pdp_val *v)
{
    const pdp_bundle    *b = x->b;
    const pdp_cidr_list *l = &b->cidr_lists[nd->u.idx];

    if (x->ip_state == 0) {
        x->ip_state = pdp_parse_ip(v->s, x->ip) ? 1 : -1;
    }
    if (x->ip_state < 0) {
        x->err_node = i;
        x->err_ip   = 1;
        return PDP_R_ERROR;
    }
    for (uint32_t k = 0; k < l->n; k++) {
        if (pdp_cidr_match(&b->cidrs[l->first + k], x->ip)) {
            return PDP_R_TRUE;
        }
    }
    return PDP_R_FALSE;
}

/* pdp_eval_fold returns v with its ASCII letters folded, for ieq, iin,
 * iglob…, whose literal the compiler stored folded. The copy lives in a
 * per-thread buffer until the next call: every string attribute lives in
 * a buffer of at most TG_MSG_META_VAL_MAX bytes (pdp_attrs), so it fits;
 * kept out of line so the common path stays as it was. */
static __attribute__((noinline)) const pdp_val *
pdp_eval_fold(const pdp_val *v)
{
    static _Thread_local char    buf[2 * TG_MSG_META_VAL_MAX];
    static _Thread_local pdp_val f;
    size_t                       n = v->len < sizeof(buf) ? v->len : 0;

    f = *v;
    memcpy(buf, v->s, n); /* (a longer value cannot exist; it reads as "") */
    buf[n] = '\0';
    pdp_fold(buf, n);
    f.s   = buf;
    f.len = n;
    return &f;
}

/* pdp_eval_cmp applies node i's operator to v, the value its attribute
 * has (present: absence is handled by the caller). */
static inline pdp_res
pdp_eval_cmp(pdp_ectx *x, uint32_t i, const pdp_node *nd, const pdp_val *v)
{
    const pdp_bundle *b = x->b;
    bool              t = false;

    switch (nd->op) {
    case PDP_OP_EQ:
    case PDP_OP_NE:
        if (nd->vtype == PDP_T_NUM) {
            t = v->n == nd->u.num;
        } else if (nd->vtype == PDP_T_BOOL) {
            t = v->b == nd->u.b;
        } else {
            t = v->len == nd->u.str.len &&
                memcmp(v->s, pdp_s(b, nd->u.str), v->len) == 0;
        }
        t = t == (nd->op == PDP_OP_EQ);
        break;
    case PDP_OP_LT:
        t = v->n < nd->u.num;
        break;
    case PDP_OP_LE:
        t = v->n <= nd->u.num;
        break;
    case PDP_OP_GT:
        t = v->n > nd->u.num;
        break;
    case PDP_OP_GE:
        t = v->n >= nd->u.num;
        break;
    case PDP_OP_IN: {
        const pdp_set *set = &b->sets[nd->u.idx];
        t                  = set->type == PDP_T_NUM
                                 ? pdp_set_has_num(set, v->n)
                                 : pdp_set_has_str(set, b->pool, v->s, v->len);
        break;
    }
    case PDP_OP_PREFIX:
        t = v->len >= nd->u.str.len &&
            memcmp(v->s, pdp_s(b, nd->u.str), nd->u.str.len) == 0;
        break;
    case PDP_OP_SUFFIX:
        t = v->len >= nd->u.str.len &&
            memcmp(v->s + v->len - nd->u.str.len, pdp_s(b, nd->u.str),
                   nd->u.str.len) == 0;
        break;
    case PDP_OP_CONTAINS:
        t = nd->u.str.len == 0 ||
            memmem(v->s, v->len, pdp_s(b, nd->u.str), nd->u.str.len) != NULL;
        break;
    case PDP_OP_GLOB:
        t = pdp_glob_match(b, &b->globs[nd->u.idx], v->s, v->len);
        break;
    case PDP_OP_CIDR:
        return pdp_eval_cidr(x, i, nd, v);
    default:
        break;
    }
    return t ? PDP_R_TRUE : PDP_R_FALSE;
}

static pdp_res
pdp_eval_node(pdp_ectx *x, uint32_t i, uint32_t depth)
{
    const pdp_bundle *b  = x->b;
    const pdp_node   *nd = &b->nodes[i];
    pdp_val           v  = {0};
    pdp_res           r  = PDP_R_FALSE;
    bool              present;
    uint32_t          h = 0;

    switch (nd->op) {
    case PDP_OP_TRUE:
    case PDP_OP_FALSE:
        r = nd->op == PDP_OP_TRUE ? PDP_R_TRUE : PDP_R_FALSE;
        if (x->t != NULL) {
            pdp_trace_node_done(x->t, pdp_trace_node(x->t, i, depth, NULL), r);
        }
        return r;
    case PDP_OP_ALL:
    case PDP_OP_ANY: {
        /* Left to right, stopping at the first child that decides. */
        pdp_res stop = nd->op == PDP_OP_ALL ? PDP_R_FALSE : PDP_R_TRUE;
        if (x->t != NULL) {
            h = pdp_trace_node(x->t, i, depth, NULL);
        }
        r = nd->op == PDP_OP_ALL ? PDP_R_TRUE : PDP_R_FALSE;
        for (uint32_t c = i + 1; c < nd->end; c = b->nodes[c].end) {
            pdp_res cr = pdp_eval_node(x, c, depth + 1);
            if (cr == stop || cr == PDP_R_ERROR) {
                r = cr;
                break;
            }
        }
        if (x->t != NULL) {
            pdp_trace_node_done(x->t, h, r);
        }
        return r;
    }
    case PDP_OP_NOT:
        if (x->t != NULL) {
            h = pdp_trace_node(x->t, i, depth, NULL);
        }
        r = pdp_eval_node(x, i + 1, depth + 1);
        if (r != PDP_R_ERROR) {
            r = r == PDP_R_TRUE ? PDP_R_FALSE : PDP_R_TRUE;
        }
        if (x->t != NULL) {
            pdp_trace_node_done(x->t, h, r);
        }
        return r;
    case PDP_OP_TIME_WINDOW:
        if (!x->time_done) {
            pdp_eval_time(x);
        }
        r       = pdp_time_window(x, nd) ? PDP_R_TRUE : PDP_R_FALSE;
        present = true;
        goto done;
    default:
        break;
    }

    /* A leaf: reading an absent attribute is an error, except for exists. */
    present = pdp_read(x, nd, &v);
    if (nd->op == PDP_OP_EXISTS) {
        r = present ? PDP_R_TRUE : PDP_R_FALSE;
    } else if (!present) {
        x->err_node = i;
        x->err_ip   = 0;
        r           = PDP_R_ERROR;
    } else {
        r = pdp_eval_cmp(x, i, nd, nd->icase ? pdp_eval_fold(&v) : &v);
    }
done:
    if (x->t != NULL) {
        char buf[192];
        pdp_fmt_val(x, nd, present, &v, buf, sizeof(buf));
        pdp_trace_node_done(x->t, pdp_trace_node(x->t, i, depth, buf), r);
    }
    return r;
}

/* pdp_err_why says why the last evaluation errored. */
static void
pdp_err_why(const pdp_ectx *x, char *buf, size_t cap)
{
    const pdp_node *nd = &x->b->nodes[x->err_node];

    if (x->err_ip) {
        snprintf(buf, cap, "%s \"%.64s\" is not an IP address",
                 pdp_s(x->b, nd->path), x->a->client_ip);
    } else {
        snprintf(buf, cap, "%s is absent", pdp_s(x->b, nd->path));
    }
}

/* ---- route --------------------------------------------------------------- */

static bool
pdp_route_allows(const pdp_bundle *b, const uint16_t *mr, uint32_t nmr,
                 uint32_t d)
{
    for (uint32_t k = 0; k < nmr; k++) {
        const pdp_route *rt = &b->routes[b->rules[mr[k]].route];
        if (rt->allow != NULL && !(rt->allow[d / 64] >> (d % 64) & 1u)) {
            return false;
        }
    }
    return true;
}

static int
pdp_group_of(const pdp_bundle *b, const char *model)
{
    size_t   len = strlen(model);
    uint64_t h   = pdp_hash(model, len);

    for (uint32_t g = 0; g < b->ngroups; g++) {
        if (b->groups[g].hash == h && b->groups[g].model.len == len &&
            memcmp(pdp_s(b, b->groups[g].model), model, len) == 0) {
            return (int)g;
        }
    }
    return -1;
}

/* pdp_route_targets fills out->targets from the matched enforced route
 * rules mr (in id order): the requested model's deployments, then each
 * fallback model's, each kept only if every rule allows it, ordered by the
 * first rule that lists deployments (else catalog order). */
static void
pdp_route_targets(const pdp_bundle *b, const uint16_t *mr, uint32_t nmr,
                  const char *model, pdp_policy_result *out)
{
    const pdp_route *order = NULL;
    uint32_t         groups[64];
    uint32_t         ng = 0;
    int              g0 = pdp_group_of(b, model);

    for (uint32_t k = 0; k < nmr && order == NULL; k++) {
        const pdp_route *rt = &b->routes[b->rules[mr[k]].route];
        if (rt->has_list) {
            order = rt;
        }
    }
    out->strategy =
        (tg_route_strategy)(order != NULL
                                ? order->strategy
                                : b->routes[b->rules[mr[0]].route].strategy);
    if (g0 >= 0) {
        groups[ng++] = (uint32_t)g0;
    }
    for (uint32_t k = 0; k < nmr; k++) {
        const pdp_route *rt = &b->routes[b->rules[mr[k]].route];
        for (uint32_t f = 0; f < rt->n_fallbacks && ng < 64; f++) {
            uint32_t g   = rt->fallbacks[f];
            bool     dup = false;
            for (uint32_t j = 0; j < ng && !dup; j++) {
                dup = groups[j] == g;
            }
            if (!dup) {
                groups[ng++] = g;
            }
        }
    }
    for (uint32_t j = 0; j < ng; j++) {
        uint32_t        g = groups[j];
        const uint32_t *list;
        uint32_t        n;
        if (order != NULL) {
            list = order->order;
            n    = order->n_order;
        } else {
            list = b->members + b->groups[g].first;
            n    = b->groups[g].n;
        }
        for (uint32_t k = 0; k < n && out->n_targets < TG_MSG_TARGETS_MAX;
             k++) {
            uint32_t d = list[k];
            if (b->dep_group[d] != g || !pdp_route_allows(b, mr, nmr, d)) {
                continue;
            }
            /* Catalog ids are < TG_ID_MAX: tg_config checks them. */
            memcpy(out->targets[out->n_targets].deployment_id,
                   pdp_s(b, b->dep_ids[d]), b->dep_ids[d].len + 1);
            out->targets[out->n_targets].weight = 1;
            out->n_targets++;
        }
    }
}

/* ---- rules --------------------------------------------------------------- */

static void
pdp_add_match(pdp_policy_result *out, const pdp_bundle *b, uint32_t r,
              bool enforced)
{
    pdp_str id = b->rules[r].id; /* len < PDP_RULE_ID_MAX == TG_ID_MAX */

    if (out->n_matched >= TG_MSG_RULES_MAX) {
        return;
    }
    memcpy(out->matched[out->n_matched].rule_id, pdp_s(b, id), id.len + 1);
    out->matched[out->n_matched].enforced = enforced;
    {
        /* The names are short literals: a copy, not a format. */
        const char *e = pdp_rule_effect(&b->rules[r]);
        memcpy(out->matched[out->n_matched].effect, e, strlen(e) + 1);
    }
    out->n_matched++;
    if (b->hits != NULL) {
        atomic_fetch_add_explicit(&b->hits[2 * r + (enforced ? 0 : 1)], 1,
                                  memory_order_relaxed);
    }
}

static const char pdp_default_deny[] =
    "Denied by policy: no rule allows this request.";

static void
pdp_set_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The state of one evaluation across its stages. The arrays are the
 * caller's locals (so the struct itself never escapes and its scalars
 * stay in registers), written up to nrules / nmr only: this is the hot
 * path, nothing is zeroed. */
typedef struct pdp_run {
    uint8_t  *st;  /* PDP_S_* per rule */
    uint16_t *mr;  /* matched enforced route rules */
    char     *why; /* why a rule errored, when read; PDP_WHY_MAX bytes */
    uint32_t  nmr;
    int64_t   first_deny; /* the enforced rule that denies, or -1 */
    bool      any_allow;
    bool      no_route; /* allowed, but no deployment was left */
} pdp_run;

#define PDP_WHY_MAX 192

/* pdp_result_reset sets what callers read; the arrays are filled up to
 * their counts. */
static inline void
pdp_result_reset(pdp_policy_result *out)
{
    out->verdict          = TG_VERDICT_DENY;
    out->status           = 0;
    out->error_code[0]    = '\0';
    out->message[0]       = '\0';
    out->n_matched        = 0;
    out->n_targets        = 0;
    out->route_restricted = false;
    out->strategy         = TG_ROUTE_UNSPECIFIED;
    out->capture_level    = 0;
    out->log_shed         = false;
    out->n_rate           = 0;
    out->n_rate_dropped   = 0;
    out->n_budget         = 0;
    out->n_budget_dropped = 0;
    out->n_guards         = 0;
    out->n_guards_dropped = 0;
}

/* pdp_eval_rule evaluates rule i's condition into its PDP_S_* state,
 * writing run->why when it errored and the reason will be read (a trace,
 * or the message of the first enforced deny). trace is x->t, passed so
 * the hot loop keeps it in a register. */
static inline uint8_t
pdp_eval_rule(pdp_ectx *x, pdp_trace *trace, const pdp_run *run,
              const pdp_rule *r, uint32_t i)
{
    pdp_res res;
    uint8_t st;

    if (r->mode == PDP_MODE_OFF) {
        if (trace != NULL) {
            pdp_trace_rule(trace, i, PDP_TS_OFF, NULL);
        }
        return PDP_S_OFF;
    }
    res = pdp_eval_node(x, r->root, 0);
    if (res == PDP_R_ERROR) {
        st = r->on_error_skip ? PDP_S_ERR_SKIP : PDP_S_ERR_DENY;
        if (trace != NULL ||
            (st == PDP_S_ERR_DENY && r->mode == PDP_MODE_ENFORCE &&
             run->first_deny < 0)) {
            pdp_err_why(x, run->why, PDP_WHY_MAX);
        }
        if (trace != NULL) {
            pdp_trace_rule(trace, i, PDP_TS_ERRORED, run->why);
        }
        return st;
    }
    st = res == PDP_R_TRUE ? PDP_S_MATCH : PDP_S_NO;
    if (trace != NULL) {
        pdp_trace_rule(trace, i,
                       res == PDP_R_TRUE ? PDP_TS_MATCHED : PDP_TS_NOT_MATCHED,
                       NULL);
    }
    return st;
}

/* pdp_collect_hit adds matched rule r, when it is a rate_limit or budget
 * rule, to out's hits for the caller to apply (the rest are counted as
 * dropped). */
static inline void
pdp_collect_hit(const pdp_bundle *b, const pdp_rule *r, pdp_policy_result *out)
{
    if (r->kind == PDP_KIND_RATE_LIMIT) {
        if (out->n_rate < PDP_RATE_HITS_MAX) {
            pdp_rate_hit *h = &out->rate[out->n_rate++];
            h->rule_id      = pdp_s(b, r->id);
            h->scope        = (pdp_scope)r->scope;
            h->rpm          = r->rpm;
            h->tpm          = r->tpm;
            h->concurrent   = r->concurrent;
            h->enforced     = r->mode == PDP_MODE_ENFORCE;
        } else {
            out->n_rate_dropped++;
        }
    } else if (r->kind == PDP_KIND_GUARDRAIL) {
        if (out->n_guards < TG_MSG_GUARDS_MAX) {
            pdp_guard_hit *h = &out->guards[out->n_guards++];
            h->rule_id       = pdp_s(b, r->id);
            h->index         = r->guard;
            h->enforced      = r->mode == PDP_MODE_ENFORCE;
            h->on_error_skip = r->on_error_skip;
        } else {
            out->n_guards_dropped++;
        }
    } else if (r->kind == PDP_KIND_BUDGET) {
        if (out->n_budget < PDP_BUDGET_HITS_MAX) {
            pdp_budget_hit *h = &out->budget[out->n_budget++];
            h->rule_id        = pdp_s(b, r->id);
            h->scope          = (pdp_scope)r->scope;
            h->meta_key       = pdp_s(b, r->meta_key);
            h->window         = (pdp_window)r->window;
            h->window_h       = r->window_h;
            h->limit_micro    = r->limit_micro;
            h->clamp          = r->clamp;
            h->enforced       = r->mode == PDP_MODE_ENFORCE;
            h->nthr           = r->nthr;
            memcpy(h->thr, r->thr, r->nthr);
        } else {
            out->n_budget_dropped++;
        }
    }
}

/* pdp_deny_by_rule writes the deny of enforced rule r: its own status,
 * code and message, or policy_error with run->why when it errored. */
static inline void
pdp_deny_by_rule(const pdp_bundle *b, const pdp_rule *r, uint8_t st,
                 const char *why, pdp_policy_result *out)
{
    if (st == PDP_S_ERR_DENY) {
        out->status = 403;
        pdp_set_str(out->error_code, sizeof(out->error_code), "policy_error");
        snprintf(out->message, sizeof(out->message),
                 "Rule %s could not be evaluated: %s.", pdp_s(b, r->id), why);
    } else {
        /* The compiler bounds both below the field sizes. */
        out->status = r->status;
        memcpy(out->error_code, pdp_s(b, r->code), r->code.len + 1);
        memcpy(out->message, pdp_s(b, r->message), r->message.len + 1);
    }
}

/* pdp_apply_enforced folds the state st of enforced rule i (r) into the
 * outcome: the first deny (which writes the message), an allow, a route
 * rule, the audit capture level. */
static inline void
pdp_apply_enforced(const pdp_bundle *b, pdp_run *run, const pdp_rule *r,
                   uint32_t i, uint8_t st, pdp_policy_result *out)
{
    if (st == PDP_S_ERR_DENY ||
        (st == PDP_S_MATCH && r->kind == PDP_KIND_ACCESS && r->deny)) {
        if (run->first_deny < 0) {
            run->first_deny = i;
            pdp_deny_by_rule(b, r, st, run->why, out);
        }
    } else if (st == PDP_S_MATCH) {
        if (r->kind == PDP_KIND_ACCESS) {
            run->any_allow = true;
        } else if (r->kind == PDP_KIND_ROUTE) {
            run->mr[run->nmr++] = (uint16_t)i;
        } else if (r->kind == PDP_KIND_AUDIT &&
                   r->capture > out->capture_level) {
            out->capture_level = r->capture;
            out->log_shed      = r->log_shed;
        }
    }
}

/* pdp_verdict: any enforced deny wins; else an allow (or the bundle's
 * default) allows; else the default deny. */
static inline void
pdp_verdict(const pdp_bundle *b, const pdp_run *run, pdp_policy_result *out)
{
    if (run->first_deny >= 0) {
        out->verdict = TG_VERDICT_DENY;
    } else if (run->any_allow || b->default_allow) {
        out->verdict = TG_VERDICT_ALLOW;
    } else {
        out->verdict = TG_VERDICT_DENY;
        out->status  = 403;
        memcpy(out->error_code, "policy_denied", sizeof("policy_denied"));
        memcpy(out->message, pdp_default_deny, sizeof(pdp_default_deny));
    }
}

/* pdp_route_stage restricts an allowed request for model to what the
 * matched route rules allow; with nothing left it becomes a no_route
 * deny naming them. */
static inline void
pdp_route_stage(const pdp_bundle *b, pdp_run *run, const char *model,
                pdp_policy_result *out)
{
    size_t used;

    out->route_restricted = true;
    pdp_route_targets(b, run->mr, run->nmr, model, out);
    if (out->n_targets > 0) {
        return;
    }
    run->no_route = true;
    out->verdict  = TG_VERDICT_DENY;
    out->status   = 403;
    pdp_set_str(out->error_code, sizeof(out->error_code), "no_route");
    used = (size_t)snprintf(out->message, sizeof(out->message),
                            "No deployment of model \"%.64s\" is "
                            "allowed by route rule%s",
                            model, run->nmr > 1 ? "s" : "");
    for (uint32_t k = 0; k < run->nmr && used < sizeof(out->message); k++) {
        used += (size_t)snprintf(
            out->message + used, sizeof(out->message) - used, "%s %s",
            k ? "," : "", pdp_s(b, b->rules[run->mr[k]].id));
    }
    if (used < sizeof(out->message) - 1) {
        out->message[used]     = '.';
        out->message[used + 1] = '\0';
    }
}

/* pdp_matched fills out->matched: the enforced rules that determined the
 * outcome, then the audit-mode hits; each group in id order. */
static inline void
pdp_matched(const pdp_bundle *b, const pdp_run *run, pdp_policy_result *out)
{
    const uint8_t *st = run->st;

    for (uint32_t i = 0; i < b->nrules; i++) {
        const pdp_rule *r = &b->rules[i];
        bool            det;
        if (r->mode != PDP_MODE_ENFORCE) {
            continue;
        }
        if (run->first_deny >= 0) {
            det =
                st[i] == PDP_S_ERR_DENY ||
                (st[i] == PDP_S_MATCH && r->kind == PDP_KIND_ACCESS && r->deny);
        } else if (run->no_route) {
            det = st[i] == PDP_S_MATCH && r->kind == PDP_KIND_ROUTE;
        } else {
            det = st[i] == PDP_S_MATCH &&
                  ((r->kind == PDP_KIND_ACCESS &&
                    out->verdict == TG_VERDICT_ALLOW) ||
                   (r->kind == PDP_KIND_ROUTE && out->route_restricted));
        }
        det = det || (st[i] == PDP_S_MATCH && (r->kind == PDP_KIND_AUDIT ||
                                               r->kind == PDP_KIND_GUARDRAIL));
        if (det) {
            pdp_add_match(out, b, i, true);
        }
    }
    for (uint32_t i = 0; i < b->nrules; i++) {
        if (b->rules[i].mode == PDP_MODE_AUDIT &&
            (st[i] == PDP_S_MATCH || st[i] == PDP_S_ERR_DENY)) {
            pdp_add_match(out, b, i, false);
        }
    }
}

/* pdp_eval_trace_end closes the trace with a note on route rules that
 * matched but did not apply. */
static inline void
pdp_eval_trace_end(pdp_trace *trace, const pdp_run *run, const char *model,
                   const pdp_policy_result *out)
{
    char note[160] = "";

    if (run->nmr > 0 && model[0] == '\0') {
        snprintf(note, sizeof(note),
                 "route rules matched but the request names no model: "
                 "no restriction");
    } else if (run->nmr > 0 && !run->no_route &&
               out->verdict != TG_VERDICT_ALLOW) {
        snprintf(note, sizeof(note),
                 "route rules matched, but the request is denied, so "
                 "they do not apply");
    }
    pdp_trace_end(trace, out, note);
}

/* The stages: each rule's condition (collecting rate and budget hits and
 * folding enforced rules in as it goes), the verdict, the route, the
 * matched list, the trace's closing note. */
void
pdp_bundle_eval(const pdp_bundle *b, const pdp_attrs *a, pdp_policy_result *out,
                pdp_trace *trace)
{
    uint8_t  st[PDP_RULES_MAX];
    uint16_t mr[PDP_RULES_MAX];
    char     why[PDP_WHY_MAX]; /* not zeroed: this is the hot path */
    pdp_run  run = {st, mr, why, 0, -1, false, false};
    pdp_ectx x;

    x.b         = b;
    x.a         = a;
    x.t         = trace;
    x.err_node  = 0;
    x.err_ip    = 0;
    x.ip_state  = 0;
    x.time_done = false;
    pdp_result_reset(out);
    out->audit_hits_header = b->audit_hits_header;
    if (trace != NULL) {
        pdp_trace_begin(trace, b);
    }
    for (uint32_t i = 0; i < b->nrules; i++) {
        const pdp_rule *r = &b->rules[i];
        uint8_t         s = pdp_eval_rule(&x, trace, &run, r, i);
        st[i]             = s;
        if (s == PDP_S_MATCH) {
            pdp_collect_hit(b, r, out);
        }
        if (r->mode == PDP_MODE_ENFORCE) {
            pdp_apply_enforced(b, &run, r, i, s, out);
        }
    }
    pdp_verdict(b, &run, out);
    if (out->verdict == TG_VERDICT_ALLOW && out->n_guards_dropped > 0) {
        /* More guardrails apply than a decision carries: never run some
         * and silently not the rest. */
        out->verdict = TG_VERDICT_DENY;
        out->status  = 403;
        pdp_set_str(out->error_code, sizeof(out->error_code), "policy_error");
        snprintf(out->message, sizeof(out->message),
                 "More than %d guardrail rules apply to this request; the "
                 "policy must be changed so fewer do.",
                 TG_MSG_GUARDS_MAX);
    }
    if (out->verdict == TG_VERDICT_ALLOW && run.nmr > 0 &&
        a->model[0] != '\0') {
        pdp_route_stage(b, &run, a->model, out);
    }
    pdp_matched(b, &run, out);
    if (trace != NULL) {
        pdp_eval_trace_end(trace, &run, a->model, out);
    }
}
