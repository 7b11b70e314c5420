/* pdp_policy_compile_int.h - the compiler's state and the stages it is
 * split into, shared only by the pdp_policy_compile*.c files (the rest of
 * the policy code sees pdp_compile_begin/file/end in pdp_policy_int.h).
 * One pdp_cc per bundle load, on one thread.
 *
 *   pdp_policy_compile.c         begin/end, errors, the string pool, fields
 *   pdp_policy_compile_rules.c   a policy file and its rules: access, rate
 *   pdp_policy_compile_route.c   the deployments catalog and route rules
 *   pdp_policy_compile_budget.c  budget rules: amounts, windows, prices
 *   pdp_policy_compile_pred.c    "when": attribute paths, literals, operators
 *   pdp_policy_compile_values.c  `in` sets, globs, CIDRs, time windows
 *
 * The compiler turns the rules of *.policy.json files into the flat form
 * pdp_policy_eval.c runs (pdp_policy_int.h). Every check the format makes
 * happens here, once, so evaluation has nothing left to validate:
 * attribute paths are resolved and typed, operators checked against the
 * attribute's type, literals against the attribute's domain, deployment
 * ids and labels against the catalog. Every stage reports through PDP_ERR
 * and keeps going, so an author sees every mistake in one run; cc->oom
 * stops the compile. */
#ifndef PDP_POLICY_COMPILE_INT_H
#define PDP_POLICY_COMPILE_INT_H

#include "pdp_policy_int.h"
#include "tg_buf.h"
#include "tg_json.h"
#include "tg_pricing.h"

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
    bool     fold; /* pdp_cc_str stores ASCII letters folded (iin, ieq…) */
    pdp_errs warn; /* what compiles but is likely a mistake (check) */
    bool     too_many_rules;
    /* The price table budget rules are checked against, loaded on the
     * first budget rule: pr_state 0 not yet, 1 loaded (pr may be NULL:
     * there is none), 2 failed (reported once). */
    int         pr_state;
    tg_pricing *pr;
    char        pr_src[512];
    /* Guardrail rules' engine fields as written, by pdp_rule.guard until
     * pdp_cc_guard_end renumbers them in id order. */
    cJSON *guard_rules;
};

#define PDP_ERR(cc, node, ...)                                                 \
    pdp_errs_add((cc)->e, (cc)->doc, (node), (cc)->ctx, __VA_ARGS__)

#define PDP_WARN(cc, node, ...)                                                \
    pdp_errs_add(&(cc)->warn, (cc)->doc, (node), (cc)->ctx, __VA_ARGS__)

#define PDP_GROW(cc, field, capf, need)                                        \
    pdp_cc_grow((cc), (void **)&(cc)->b->field, &(cc)->capf, (need),           \
                sizeof(*(cc)->b->field))

/* ---- pdp_policy_compile.c: the pool, arrays and field helpers ----------- */

/* pdp_cc_grow makes *arr hold need elements of sz bytes; false (and
 * cc->oom) when it cannot. */
bool pdp_cc_grow(pdp_cc *cc, void **arr, uint32_t *cap, uint32_t need,
                 size_t sz);

/* pdp_cc_str copies n bytes of s into the pool (NUL-terminated). */
pdp_str pdp_cc_str(pdp_cc *cc, const char *s, size_t n);
pdp_str pdp_cc_cstr(pdp_cc *cc, const char *s);

/* pdp_cc_s reads a pool string while compiling (the pool may move, so the
 * pointer is good only until the next pdp_cc_str). */
static inline const char *
pdp_cc_s(const pdp_cc *cc, pdp_str s)
{
    return cc->pool.data + s.off;
}

/* pdp_cc_node appends a node with op (end just past itself); its index,
 * or 0 with cc->oom. */
uint32_t pdp_cc_node(pdp_cc *cc, uint8_t op);

/* pdp_cc_keys reports every member of obj not in allowed, and duplicates;
 * false if there was any. */
bool pdp_cc_keys(pdp_cc *cc, const cJSON *obj, const char *what,
                 const char *const allowed[], size_t n);

/* pdp_cc_enum matches s against names; -1 and an error if none. */
int pdp_cc_enum(pdp_cc *cc, const cJSON *node, const char *field, const char *s,
                const char *const names[], size_t n);

/* pdp_cc_string: rule[key] when it is a string; NULL (with an error when
 * it is not a string, or is required and missing) otherwise. */
const char *pdp_cc_string(pdp_cc *cc, const cJSON *rule, const char *key,
                          bool required);

/* pdp_cc_field_enum: the index of rule[key] in names, dflt when absent,
 * -1 (with an error) when it is not one of them. */
int pdp_cc_field_enum(pdp_cc *cc, const cJSON *rule, const char *key, int dflt,
                      const char *const names[], size_t n);

/* Wording for messages: "a string", "a number" ...; pdp_join writes
 * "a, b or c" into buf and returns it. */
const char *pdp_json_type(const cJSON *j);
const char *pdp_type_name(uint8_t t);
const char *pdp_join(char *buf, size_t cap, const char *const items[],
                     size_t n);

/* pdp_key_ok: s is a label or metadata key (1 to TG_MSG_META_KEY_MAX - 1
 * of A-Z a-z 0-9 . _ - /). */
bool pdp_key_ok(const char *s);

/* ---- stages ------------------------------------------------------------- */

/* pdp_cc_catalog copies cfg's deployments into the bundle: ids, model
 * groups in first-seen order, members by group (pdp_policy_compile_route.c). */
void pdp_cc_catalog(pdp_cc *cc, const tg_config *cfg);

/* Per rule kind; each reads r's own fields into rule (the common fields
 * and "when" are done). */
void pdp_cc_route(pdp_cc *cc, const cJSON *r, pdp_rule *rule);
void pdp_cc_guardrail(pdp_cc *cc, const cJSON *r, pdp_rule *rule);
/* pdp_cc_guard_end builds and compiles the bundle's guard set from its
 * guardrail rules, in id order (after the rules are sorted), reporting
 * the engine's errors at their rules (pdp_policy_compile_guard.c). */
void pdp_cc_guard_end(pdp_cc *cc, pdp_errs *e);
void pdp_cc_budget(pdp_cc *cc, const cJSON *r, pdp_rule *rule);

/* pdp_cc_pricing loads, once, the table budgets are priced with; r is
 * where a load error is reported (NULL: nowhere). May return NULL. */
tg_pricing *pdp_cc_pricing(pdp_cc *cc, const cJSON *r);

/* pdp_cc_pred compiles the condition j at depth into the node array. */
void pdp_cc_pred(pdp_cc *cc, const cJSON *j, uint32_t depth);

/* pdp_attr_type: the pdp_type of attribute id. pdp_cc_domain checks a
 * string literal against attributes with a closed set of values. */
uint8_t pdp_attr_type(uint8_t id);
bool    pdp_cc_domain(pdp_cc *cc, uint8_t attr, const cJSON *lit);

/* Literal arguments of node n that compile to more than a value
 * (pdp_policy_compile_values.c); false (with an error) when invalid. */
bool pdp_cc_set(pdp_cc *cc, uint32_t n, const cJSON *list);
bool pdp_cc_glob(pdp_cc *cc, uint32_t n, const char *pat);
bool pdp_cc_cidr(pdp_cc *cc, uint32_t n, const cJSON *arg);
bool pdp_cc_time_window(pdp_cc *cc, uint32_t n, const cJSON *arg);

#endif
