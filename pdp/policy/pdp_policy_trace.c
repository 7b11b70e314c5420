/* pdp_policy_trace.c - what `eval --explain` and a failing `test` print:
 * every rule with its state (matched, not matched, errored, off), why,
 * and each condition it evaluated with the attribute value it read. The
 * trace holds a reference to the bundle it explains, so printing reads the
 * compiled rules even if a reload dropped the bundle meanwhile. A trace
 * allocates while it records: it is for people, not for the hot path.
 * One trace is used by one thread at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_int.h"
#include "tg_buf.h"

typedef struct pdp_trace_r {
    uint32_t rule;
    uint8_t  state; /* pdp_trace_state */
    uint32_t first; /* into nodes */
    uint32_t n;
    uint32_t why; /* into text; 0: none */
} pdp_trace_r;

typedef struct pdp_trace_n {
    uint32_t node;
    uint8_t  depth;
    uint8_t  res; /* pdp_res */
    uint32_t val; /* into text; 0: no attribute read */
} pdp_trace_n;

struct pdp_trace {
    pdp_bundle       *b;
    pdp_trace_r      *rules;
    uint32_t          nrules;
    uint32_t          cap_rules;
    pdp_trace_n      *nodes;
    uint32_t          nnodes;
    uint32_t          cap_nodes;
    uint32_t          pending; /* first node not yet given to a rule */
    tg_buf            text;
    pdp_policy_result res;
    bool              done;
    uint32_t          note;
    bool              oom; /* something was not recorded */
};

pdp_trace *
pdp_trace_create(void)
{
    pdp_trace *t = calloc(1, sizeof(*t));

    if (t != NULL) {
        tg_buf_init(&t->text, 0);
    }
    return t;
}

void
pdp_trace_destroy(pdp_trace *t)
{
    if (t == NULL) {
        return;
    }
    pdp_bundle_unref(t->b);
    free(t->rules);
    free(t->nodes);
    tg_buf_fini(&t->text);
    free(t);
}

static uint32_t
pdp_trace_text(pdp_trace *t, const char *s)
{
    uint32_t off;

    if (s == NULL) {
        return 0;
    }
    if (t->text.len == 0 && tg_buf_append(&t->text, "", 1) != TG_OK) {
        t->oom = true;
        return 0;
    }
    off = (uint32_t)t->text.len;
    if (tg_buf_append(&t->text, s, strlen(s) + 1) != TG_OK) {
        t->oom = true;
        return 0;
    }
    return off;
}

static bool
pdp_trace_grow(pdp_trace *t, void **arr, uint32_t *cap, uint32_t need,
               size_t sz)
{
    size_t c = *cap;

    if (!tg_vec_reserve(arr, &c, need, sz) || c > UINT32_MAX) {
        t->oom = true;
        return false;
    }
    *cap = (uint32_t)c;
    return true;
}

void
pdp_trace_begin(pdp_trace *t, const pdp_bundle *b)
{
    if (t->b != b) {
        /* The reference count is the one mutable part of a bundle. */
        pdp_bundle_ref((pdp_bundle *)b);
        pdp_bundle_unref(t->b);
        t->b = (pdp_bundle *)b;
    }
    t->nrules  = 0;
    t->nnodes  = 0;
    t->pending = 0;
    t->done    = false;
    t->note    = 0;
    t->oom     = false;
    tg_buf_reset(&t->text);
}

uint32_t
pdp_trace_node(pdp_trace *t, uint32_t node, uint32_t depth, const char *val)
{
    pdp_trace_n *n;

    if (!pdp_trace_grow(t, (void **)&t->nodes, &t->cap_nodes, t->nnodes + 1,
                        sizeof(*t->nodes))) {
        return UINT32_MAX;
    }
    n        = &t->nodes[t->nnodes];
    n->node  = node;
    n->depth = (uint8_t)(depth > 255 ? 255 : depth);
    n->res   = PDP_R_FALSE;
    n->val   = pdp_trace_text(t, val);
    return t->nnodes++;
}

void
pdp_trace_node_done(pdp_trace *t, uint32_t handle, pdp_res r)
{
    if (handle < t->nnodes) {
        t->nodes[handle].res = (uint8_t)r;
    }
}

void
pdp_trace_rule(pdp_trace *t, uint32_t rule, pdp_trace_state st, const char *why)
{
    pdp_trace_r *r;

    if (!pdp_trace_grow(t, (void **)&t->rules, &t->cap_rules, t->nrules + 1,
                        sizeof(*t->rules))) {
        return;
    }
    r          = &t->rules[t->nrules++];
    r->rule    = rule;
    r->state   = (uint8_t)st;
    r->first   = t->pending;
    r->n       = t->nnodes - t->pending;
    r->why     = pdp_trace_text(t, why);
    t->pending = t->nnodes;
}

void
pdp_trace_end(pdp_trace *t, const pdp_policy_result *res,
              const char *route_note)
{
    t->res  = *res;
    t->done = true;
    t->note = route_note != NULL && route_note[0] != '\0'
                  ? pdp_trace_text(t, route_note)
                  : 0;
}

/* ---- printing ------------------------------------------------------------ */

static void
pdp_trace_describe(const pdp_bundle *b, const pdp_node *nd, char *buf,
                   size_t cap)
{
    const char *path = pdp_s(b, nd->path);
    char        op[24];

    /* ieq, iin…: the operator as written (time_window's days share the
     * byte icase lives in). */
    snprintf(op, sizeof(op), "%s%s",
             nd->op != PDP_OP_TIME_WINDOW && nd->icase ? "i" : "",
             pdp_op_names[nd->op]);

    switch (nd->op) {
    case PDP_OP_TRUE:
    case PDP_OP_FALSE:
        snprintf(buf, cap, "%s", op);
        break;
    case PDP_OP_ALL:
    case PDP_OP_ANY:
    case PDP_OP_NOT:
        snprintf(buf, cap, "%s", op);
        break;
    case PDP_OP_EXISTS:
        snprintf(buf, cap, "exists %s", path);
        break;
    case PDP_OP_IN:
        snprintf(buf, cap, "%s in %s", path, pdp_s(b, b->sets[nd->u.idx].disp));
        break;
    case PDP_OP_GLOB:
        snprintf(buf, cap, "%s glob \"%s\"", path,
                 pdp_s(b, b->globs[nd->u.idx].pat));
        break;
    case PDP_OP_CIDR:
        snprintf(buf, cap, "%s cidr %s", path,
                 pdp_s(b, b->cidr_lists[nd->u.idx].disp));
        break;
    case PDP_OP_TIME_WINDOW: {
        char   days[64] = "";
        size_t used     = 0;
        if (nd->days == 0x7f) {
            snprintf(days, sizeof(days), "every day");
        } else {
            for (int d = 0; d < 7; d++) {
                if (nd->days >> d & 1) {
                    used += (size_t)snprintf(days + used, sizeof(days) - used,
                                             "%s%s", used ? "," : "",
                                             pdp_weekday_names[d]);
                }
            }
        }
        snprintf(buf, cap, "time_window %s %02u:%02u-%02u:%02u", days,
                 nd->u.tw.from / 60u, nd->u.tw.from % 60u, nd->u.tw.to / 60u,
                 nd->u.tw.to % 60u);
        break;
    }
    default:
        if (nd->vtype == PDP_T_NUM) {
            snprintf(buf, cap, "%s %s %g", path, op, nd->u.num);
        } else if (nd->vtype == PDP_T_BOOL) {
            snprintf(buf, cap, "%s %s %s", path, op,
                     nd->u.b ? "true" : "false");
        } else {
            snprintf(buf, cap, "%s %s \"%s\"", path, op, pdp_s(b, nd->u.str));
        }
        break;
    }
}

static const char *
pdp_res_name(uint8_t r)
{
    return r == PDP_R_TRUE ? "true" : r == PDP_R_FALSE ? "false" : "ERROR";
}

static const char *
pdp_state_name(uint8_t st)
{
    switch (st) {
    case PDP_TS_MATCHED:
        return "MATCHED";
    case PDP_TS_ERRORED:
        return "ERRORED";
    case PDP_TS_OFF:
        return "OFF";
    default:
        return "NOT MATCHED";
    }
}

static void
pdp_trace_print_rule(const pdp_trace *t, const pdp_trace_r *tr, FILE *f)
{
    const pdp_bundle *b = t->b;
    const pdp_rule   *r = &b->rules[tr->rule];
    char              what[64];
    const char       *effect;

    if (r->kind == PDP_KIND_ACCESS) {
        snprintf(what, sizeof(what), "access %s", r->deny ? "deny" : "allow");
    } else if (r->kind == PDP_KIND_AUDIT) {
        snprintf(what, sizeof(what), "audit capture %s",
                 pdp_capture_name(r->capture));
    } else if (r->kind == PDP_KIND_RATE_LIMIT) {
        snprintf(what, sizeof(what), "rate_limit per %s",
                 pdp_scope_name(r->scope));
    } else if (r->kind == PDP_KIND_BUDGET) {
        snprintf(what, sizeof(what), "budget %s per %s%s%.24s, %s",
                 r->clamp ? "clamp" : "deny", pdp_scope_name(r->scope),
                 r->scope == PDP_SCOPE_META ? "." : "",
                 r->scope == PDP_SCOPE_META ? pdp_s(b, r->meta_key) : "",
                 pdp_window_name(r->window));
    } else if (r->kind == PDP_KIND_GUARDRAIL) {
        snprintf(what, sizeof(what), "guardrail");
    } else {
        snprintf(what, sizeof(what), "route");
    }
    fprintf(f, "  %-11s %s (%s, mode %s, on_error %s)  %s:%d:%d\n",
            pdp_state_name(tr->state), pdp_s(b, r->id), what,
            pdp_mode_name(r->mode), r->on_error_skip ? "skip" : "deny",
            pdp_s(b, r->file), r->line, r->col);
    if (tr->state == PDP_TS_OFF) {
        fprintf(f, "      mode off: not evaluated\n");
        return;
    }
    for (uint32_t k = 0; k < tr->n; k++) {
        const pdp_trace_n *n = &t->nodes[tr->first + k];
        char               desc[320];
        pdp_trace_describe(b, &b->nodes[n->node], desc, sizeof(desc));
        fprintf(f, "      %*s%s", (int)n->depth * 2, "", desc);
        if (n->val != 0) {
            fprintf(f, "  [read %s]", t->text.data + n->val);
        }
        fprintf(f, " -> %s\n", pdp_res_name(n->res));
    }
    if (tr->state == PDP_TS_ERRORED) {
        effect = r->on_error_skip ? "on_error skip: treated as not matched"
                 : r->mode == PDP_MODE_AUDIT
                     ? "on_error deny: reported only (mode audit)"
                     : "on_error deny: counts as an enforced deny";
        fprintf(f, "      error: %s; %s\n",
                tr->why ? t->text.data + tr->why : "evaluation failed", effect);
    } else if (tr->state == PDP_TS_MATCHED && r->mode == PDP_MODE_AUDIT) {
        fprintf(f, "      mode audit: reported, does not change the "
                   "outcome\n");
    }
}

enum {
    PDP_TL_ALLOW,   /* enforced access allows that matched */
    PDP_TL_DENY,    /* enforced denies: matched access denies, errors that
                       count as denies */
    PDP_TL_ROUTE,   /* enforced route rules that matched */
    PDP_TL_CAPTURE, /* enforced audit rules that matched */
};

/* pdp_trace_list prints the rules of one role in the outcome, from the
 * recorded states (the result alone cannot tell an audit rule that raised
 * capture from one whose error counted as a deny); returns how many. */
static int
pdp_trace_list(const pdp_trace *t, int role, const char *lead, FILE *f)
{
    int n = 0;

    for (uint32_t i = 0; i < t->nrules; i++) {
        const pdp_rule *r  = &t->b->rules[t->rules[i].rule];
        uint8_t         st = t->rules[i].state;
        bool            in;
        if (r->mode != PDP_MODE_ENFORCE) {
            continue;
        }
        switch (role) {
        case PDP_TL_ALLOW:
            in = st == PDP_TS_MATCHED && r->kind == PDP_KIND_ACCESS && !r->deny;
            break;
        case PDP_TL_DENY:
            in = (st == PDP_TS_MATCHED && r->kind == PDP_KIND_ACCESS &&
                  r->deny) ||
                 (st == PDP_TS_ERRORED && !r->on_error_skip);
            break;
        case PDP_TL_ROUTE:
            in = st == PDP_TS_MATCHED && r->kind == PDP_KIND_ROUTE;
            break;
        default:
            in = st == PDP_TS_MATCHED && r->kind == PDP_KIND_AUDIT;
            break;
        }
        if (in) {
            fprintf(f, "%s%s", n++ ? ", " : lead, pdp_s(t->b, r->id));
        }
    }
    return n;
}

static void
pdp_trace_outcome(const pdp_trace *t, FILE *f)
{
    const pdp_policy_result *res = &t->res;

    if (res->verdict == TG_VERDICT_ALLOW) {
        fprintf(f, "  => ALLOW");
        if (pdp_trace_list(t, PDP_TL_ALLOW, ": allowed by ", f) == 0) {
            fprintf(f, ": no enforced rule decided; the bundle default is "
                       "allow");
        }
        if (res->route_restricted) {
            pdp_trace_list(t, PDP_TL_ROUTE, "; route restricted by ", f);
            fprintf(f, " to [");
            for (uint32_t i = 0; i < res->n_targets; i++) {
                fprintf(f, "%s%s", i ? ", " : "",
                        res->targets[i].deployment_id);
            }
            fprintf(f, "] (%s)", pdp_strategy_name(res->strategy));
        } else {
            fprintf(f, "; route: catalog order");
        }
    } else {
        fprintf(f, "  => DENY %u %s: ", res->status, res->error_code);
        if (pdp_trace_list(t, PDP_TL_DENY, "denied by ", f) > 0) {
            fprintf(f, " (an enforced deny wins)");
        } else if (strcmp(res->error_code, "no_route") == 0) {
            pdp_trace_list(t, PDP_TL_ROUTE, "route rules ", f);
            fprintf(f, " leave no deployment for the model");
        } else {
            fprintf(f, "no enforced rule allowed; the bundle default is "
                       "deny");
        }
    }
    fprintf(f, "; capture %s", pdp_capture_name(res->capture_level));
    pdp_trace_list(t, PDP_TL_CAPTURE, " by ", f);
    fprintf(f, "\n");
}

void
pdp_trace_print(const pdp_trace *t, FILE *f)
{
    if (t->b == NULL || !t->done) {
        fprintf(f, "(no evaluation recorded)\n");
        return;
    }
    fprintf(f, "bundle %s revision %llu, %u rules, default %s:\n", t->b->name,
            (unsigned long long)t->b->revision, t->b->nrules,
            t->b->default_allow ? "allow" : "deny");
    for (uint32_t i = 0; i < t->nrules; i++) {
        pdp_trace_print_rule(t, &t->rules[i], f);
    }
    if (t->note != 0) {
        fprintf(f, "  %s\n", t->text.data + t->note);
    }
    pdp_trace_outcome(t, f);
    if (t->oom) {
        fprintf(f, "  (trace incomplete: out of memory)\n");
    }
}
