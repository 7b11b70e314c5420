/* pdp_policy.h - policy bundles: load and compile a bundle directory, then
 * evaluate requests against it. A compiled bundle is immutable and
 * reference counted, so any number of evaluator threads may use one while
 * a reload swaps in the next (a decision finishes on the revision it
 * started with). Format: policies/README.md; JSON Schema:
 * policies/schema/. Semantics follow Cedar: deny unless an enforced rule
 * allows (the bundle may set "default": "allow"), any enforced deny wins,
 * rule order never matters; audit-mode rules are evaluated and reported
 * but never change the outcome; off rules are not evaluated. */
#ifndef PDP_POLICY_H
#define PDP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"

#define PDP_ATTR_LABELS_MAX 16

typedef struct pdp_bundle pdp_bundle;

/* The attributes a rule can read. Strings are NUL-terminated; "" means
 * absent (reading an absent attribute is an evaluation error unless the
 * predicate is "exists"). */
typedef struct pdp_attrs {
    /* principal.* */
    char  key_id[TG_ID_MAX];
    char  user[TG_MSG_USER_MAX];
    tg_kv key_labels[PDP_ATTR_LABELS_MAX]; /* principal.labels.<k> */
    uint32_t n_key_labels;
    /* tenant.* (principal.tenant_id == tenant.id) */
    char  tenant_id[TG_ID_MAX];
    char  tenant_tier[TG_ID_MAX];
    tg_kv tenant_labels[PDP_ATTR_LABELS_MAX]; /* tenant.labels.<k> */
    uint32_t n_tenant_labels;
    /* request.* */
    tg_endpoint endpoint; /* request.endpoint: "chat", "completions",
                             "embeddings", "messages", "models" */
    char    model[TG_MODEL_MAX];
    bool    stream;
    int64_t max_tokens;    /* 0: not set (absent) */
    int64_t prompt_tokens; /* request.prompt_tokens: the estimate */
    tg_kv   meta[TG_MSG_META_MAX]; /* request.metadata.<k> */
    uint32_t n_meta;
    char    client_ip[TG_MSG_IP_MAX];
    /* time.*: derived from now_ms in the bundle's time zone */
    int64_t now_ms;
} pdp_attrs;

/* What a rate_limit or budget rule counts per: the value of this
 * attribute (META: request.metadata.<k>, budget rules only). */
typedef enum pdp_scope {
    PDP_SCOPE_KEY = 0,
    PDP_SCOPE_TENANT,
    PDP_SCOPE_USER,
    PDP_SCOPE_MODEL,
    PDP_SCOPE_META,
} pdp_scope;

/* A budget rule's window: calendar ones in the bundle's time zone. */
typedef enum pdp_window {
    PDP_WINDOW_DAILY = 0,
    PDP_WINDOW_WEEKLY, /* Monday 00:00 to Monday 00:00 */
    PDP_WINDOW_MONTHLY,
    PDP_WINDOW_ROLLING, /* the last window_h hours */
} pdp_window;

/* Budget limits: USD 1,000,000,000 in micro-USD; rolling up to 31 days. */
#define PDP_BUDGET_LIMIT_MAX 1000000000000000LL
#define PDP_BUDGET_ROLLING_H_MAX 744

/* pdp_usd_micro reads a decimal number of USD ("1", "0.25", "2e3") as
 * exact micro-USD: 0 with *why set for a negative, zero, over-precise (more
 * than 6 decimals) or implausible (over PDP_BUDGET_LIMIT_MAX) amount. */
int64_t pdp_usd_micro(const char *t, const char **why);

/* pdp_window_parse reads a budget window: "daily", "weekly", "monthly" or
 * "rolling:<N>h" (N 1 to PDP_BUDGET_ROLLING_H_MAX) into *w (a pdp_window)
 * and, for rolling, *hours. False for anything else. */
bool pdp_window_parse(const char *s, uint8_t *w, int32_t *hours);

/* pdp_window_name: "daily", "weekly", "monthly" or "rolling" (the last
 * for any value out of range). pdp_scope_name: "key", "tenant", "user",
 * "model" or "metadata" (out of range: "key"). The one table of each. */
const char *pdp_window_name(uint8_t window);
const char *pdp_scope_name(uint8_t scope);

/* A matched budget rule (enforced or audit). Strings point into the
 * bundle: valid while the caller holds its reference. */
#define PDP_BUDGET_THRESHOLDS_MAX 8 /* = PDP_LIMITS_THRESHOLDS_MAX */
#define PDP_WEBHOOK_MAX 512

typedef struct pdp_budget_hit {
    const char *rule_id;
    pdp_scope   scope;
    const char *meta_key; /* PDP_SCOPE_META: the metadata key */
    pdp_window  window;
    int32_t     window_h;    /* PDP_WINDOW_ROLLING: hours */
    int64_t     limit_micro; /* micro-USD */
    bool        clamp;       /* action clamp (else deny) */
    bool        enforced;
    uint8_t     nthr; /* soft alert thresholds, percent, ascending */
    uint8_t     thr[PDP_BUDGET_THRESHOLDS_MAX];
} pdp_budget_hit;

#define PDP_BUDGET_HITS_MAX 8

/* Maximum values a rate_limit rule accepts. */
#define PDP_RPM_MAX 100000000LL
#define PDP_TPM_MAX 1000000000000LL
#define PDP_CONCURRENT_MAX 1000000LL

/* A matched rate_limit rule (enforced or audit). rule_id points into the
 * bundle: valid while the caller holds its reference. */
typedef struct pdp_rate_hit {
    const char *rule_id;
    pdp_scope   scope;
    int64_t     rpm; /* 0: not limited */
    int64_t     tpm;
    int64_t     concurrent;
    bool        enforced;
} pdp_rate_hit;

#define PDP_RATE_HITS_MAX 8

/* A matched guardrail rule: an obligation the decision carries. rule_id
 * points into the bundle. */
typedef struct pdp_guard_hit {
    const char *rule_id;
    uint32_t    index; /* in the bundle's guard set */
    bool        enforced;
    bool        on_error_skip;
} pdp_guard_hit;

/* What evaluation decided; the caller (pdp_decide) turns it into a
 * tg_decision together with the key check and the deployments catalog. */
typedef struct pdp_policy_result {
    tg_verdict        verdict;
    uint32_t          status;    /* for a deny: HTTP status */
    char              error_code[TG_MSG_CODE_MAX];
    char              message[TG_MSG_TEXT_MAX];
    tg_rule_match     matched[TG_MSG_RULES_MAX]; /* determining + audit */
    uint32_t          n_matched;
    /* Route: the deployments the request may use, in preference order,
     * already intersected with the catalog entries for the model (and its
     * fallback models, after them). n_targets == 0 with verdict ALLOW means
     * the catalog order applies (no route rule matched). */
    tg_route_target   targets[TG_MSG_TARGETS_MAX];
    uint32_t          n_targets;
    bool              route_restricted; /* a route rule matched */
    tg_route_strategy strategy;
    uint32_t          capture_level; /* 0 none, 1 metadata, 2 full */
    bool              log_shed; /* the capture's rule: on_log_full shed */
    bool              audit_hits_header; /* the bundle asks for it */
    /* Matched rate_limit rules, in id order (the first PDP_RATE_HITS_MAX;
     * n_rate_dropped counts the rest). The caller applies them: they only
     * matter when the verdict is ALLOW. */
    pdp_rate_hit      rate[PDP_RATE_HITS_MAX];
    uint32_t          n_rate;
    uint32_t          n_rate_dropped;
    /* Matched budget rules, the same way. */
    pdp_budget_hit budget[PDP_BUDGET_HITS_MAX];
    uint32_t       n_budget;
    uint32_t       n_budget_dropped;
    /* Matched guardrail rules (enforced and audit), in id order; the
     * data plane runs them (TG_MSG_GUARDS_MAX; the rest are dropped and
     * counted, and the verdict becomes a deny: a guardrail is never
     * silently not run). */
    pdp_guard_hit guards[TG_MSG_GUARDS_MAX];
    uint32_t      n_guards;
    uint32_t      n_guards_dropped;
} pdp_policy_result;

/* One line of an explanation: a rule, whether it matched, and why. */
typedef struct pdp_trace pdp_trace;

/* pdp_bundle_load reads and compiles every file of the bundle in dir
 * (bundle.json, *.policy.json; *.test.json and pricing.json are checked
 * for syntax only) against the deployments catalog of cfg. On any error
 * nothing is returned and err holds every error found, one per line, each
 * "file:line:col: rule <id>: what is wrong" (at most errlen bytes).
 * Owns: *out (refcount 1), release with pdp_bundle_unref.
 * Borrows: cfg for the bundle's lifetime. */
tg_err pdp_bundle_load(pdp_bundle **out, const char *dir,
                       const tg_config *cfg, char *err, size_t errlen);

/* A bundle's own deployments catalog, which its tests run against. */
#define PDP_BUNDLE_CATALOG "catalog.json"

/* pdp_bundle_ignores_name: files a bundle directory may hold beside its
 * own that are not part of the bundle (not read, not hashed, no reload):
 * names starting with '.' (VCS, editor locks .#*) and editors' backup
 * and swap files (*~, *.swp, *.swx, *.tmp). */
bool pdp_bundle_ignores_name(const char *name);

void pdp_bundle_ref(pdp_bundle *b);
void pdp_bundle_unref(pdp_bundle *b); /* NULL-safe */

const char *pdp_bundle_name(const pdp_bundle *b);

/* pdp_bundle_files_json: the bundle's files as it compiled them, a JSON
 * object of file name -> content (what its hash is over). */
const char *pdp_bundle_files_json(const pdp_bundle *b);

/* pdp_bundle_rule_hits calls fn with every rule and mode that matched in
 * a decision since b was loaded, and how many times. */
typedef void (*pdp_rule_hits_fn)(void *arg, const char *rule,
                                 const char *mode, const char *effect,
                                 uint64_t n);
void pdp_bundle_rule_hits(const pdp_bundle *b, pdp_rule_hits_fn fn,
                          void *arg);
uint64_t    pdp_bundle_revision(const pdp_bundle *b);
/* SHA-256 (hex) over the bundle's files, sorted by name. */
const char *pdp_bundle_hash(const pdp_bundle *b);
size_t      pdp_bundle_rule_count(const pdp_bundle *b);
/* pdp_bundle_reuse_inputs: what any rule of b reads of a request beyond
 * its key, endpoint and model (TG_REUSE_* bits), or false when a rule
 * reads the time (its decisions must not be reused). */
bool pdp_bundle_reuse_inputs(const pdp_bundle *b, uint32_t *inputs);
/* pdp_bundle_warnings: what compiled but is likely a mistake, one
 * "FILE:LINE:COL: rule ID: what" line each ("" when nothing): a rule that
 * reads an attribute requests may lack while an error denies, a model no
 * deployment of the catalog serves. Borrowed: valid while b is. */
const char *pdp_bundle_warnings(const pdp_bundle *b);
/* pdp_bundle_budget_webhook copies the webhook of budget rule rule_id
 * into buf ("" when the rule has none or is not in b); false when b has
 * no budget rule of that id. */
bool pdp_bundle_budget_webhook(const pdp_bundle *b, const char *rule_id,
                               char *buf, size_t len);

/* pdp_bundle_price finds model's prices in the table the bundle's budget
 * rules were checked against (false: no such table or model). */
struct tg_price;
bool pdp_bundle_price(const pdp_bundle *b, const char *model,
                      struct tg_price *out);

/* pdp_deployment_price finds the price a request for model routed to
 * deployment d (NULL: not known) is charged at: d's own "pricing", else
 * model's price in b's table, else in pr (pdp.pricing_file), else the
 * price of the model d calls upstream (b, pr NULL: none). False when there
 * is none: a budget cannot hold such a request. */
struct tg_pricing;
bool pdp_deployment_price(const pdp_bundle *b, const struct tg_pricing *pr,
                          const tg_deployment *d, const char *model,
                          struct tg_price *out);

/* pdp_bundle_budget_window: the window of kind w holding now_ms, in the
 * bundle's time zone: daily, weekly (Monday 00:00) and monthly calendar
 * windows; PDP_WINDOW_ROLLING gives the UTC hour holding now_ms. reset_ms
 * is when it ends (the next window's start). */
void pdp_bundle_budget_window(const pdp_bundle *b, pdp_window w,
                              int64_t now_ms, int64_t *start_ms,
                              int64_t *reset_ms);


/* ---- guardrails ---------------------------------------------------------
 * A bundle's guardrail rules make one guard set (tg_guard.h) whose spec the
 * PDP sends to data planes; the term lists the rules name come from the
 * store (pdp_store lists) or, in tests, from fixtures. */
struct cJSON;
struct tg_guard_set;

/* pdp_bundle_guard_lists: the term lists b's guardrail rules name (sorted,
 * unique; borrowed while b is). */
size_t pdp_bundle_guard_lists(const pdp_bundle *b, const char *const **names);

/* pdp_bundle_guard_spec renders b's guard set spec with the lists in lists
 * (a JSON object name -> {"version": n, "terms": [...]}; a list it lacks
 * is left out, which the engine refuses as not found; NULL: every list
 * empty). TG_ENOTFOUND: b has no guardrail rules. Owns: *out (free()). */
tg_err pdp_bundle_guard_spec(const pdp_bundle *b, const struct cJSON *lists,
                             char **out, size_t *len);

/* pdp_bundle_guard_compile compiles that spec (tg_guard_set_compile: its
 * errors in err). Owns: *out, release with tg_guard_set_unref. */
tg_err pdp_bundle_guard_compile(const pdp_bundle *b, const struct cJSON *lists,
                                struct tg_guard_set **out, char *err,
                                size_t errlen);

/* pdp_bundle_guard_set: b's set compiled with every list empty (NULL
 * without guardrail rules); borrowed while b is. */
const struct tg_guard_set *pdp_bundle_guard_set(const pdp_bundle *b);

/* pdp_bundle_eval evaluates a against b. Never fails: evaluation errors
 * follow each rule's on_error. trace may be NULL; when given it receives
 * one entry per rule (see pdp_trace_*). Thread-safe. */
void pdp_bundle_eval(const pdp_bundle *b, const pdp_attrs *a,
                     pdp_policy_result *out, pdp_trace *trace);

/* Traces, for `eval --explain` and `test`. */
pdp_trace *pdp_trace_create(void);
void       pdp_trace_destroy(pdp_trace *t); /* NULL-safe */
/* pdp_trace_print writes a human explanation (every rule: matched, not
 * matched, errored or off, why, and the attribute values it read). */
void pdp_trace_print(const pdp_trace *t, FILE *f);

/* pdp_attrs_from_json fills a from a test/eval input object
 * ({"principal":{…},"tenant":{…},"request":{…},"time":"RFC 3339"}).
 * On error returns TG_EINVAL with "file:line:col: what" in err. */
struct tg_json_doc;
tg_err pdp_attrs_from_json(pdp_attrs *a, const struct tg_json_doc *doc,
                           const void *input_json_obj, char *err,
                           size_t errlen);

#endif
