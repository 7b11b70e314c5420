/* pdp_policy_int.h - the compiled form of a policy bundle, shared by the
 * loader (pdp_policy.c), the compiler (pdp_policy_compile*.c, whose own
 * state is in pdp_policy_compile_int.h), the evaluator (pdp_policy_eval.c),
 * traces (pdp_policy_trace.c) and time zones (pdp_policy_time.c). Not a
 * public API: only pdp_policy*.c include it.
 *
 * A predicate is compiled into a pre-order array of pdp_node: a node's
 * children follow it, and node.end is the index just past its subtree, so
 * evaluation walks the array with no pointers and no allocation. Attribute
 * paths become an enum (plus a label key), literals are typed at compile
 * time, `in` sets are hashed, globs split at '*', CIDRs parsed, time windows
 * kept in minutes. Everything is immutable after pdp_bundle_load. */
#ifndef PDP_POLICY_INT_H
#define PDP_POLICY_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pdp_policy.h"
#include "tg_hash.h"
#include "tg_json.h"
#include "tg_time.h"

/* Limits from the bundle format (policies/README.md, "Limits"). */
#define PDP_BUNDLE_MAX_BYTES (4u << 20)
#define PDP_RULES_MAX 2000
#define PDP_DEPTH_MAX 32
#define PDP_SET_MAX 10000
#define PDP_ERRORS_MAX 100 /* errors reported before giving up */
#define PDP_RULE_ID_MAX 64 /* 1..63 characters */

typedef enum pdp_type {
    PDP_T_STR = 0,
    PDP_T_NUM,
    PDP_T_BOOL,
    PDP_T_IP, /* a string that cidr can parse */
} pdp_type;

typedef enum pdp_attr_id {
    PDP_A_KEY_ID = 0,
    PDP_A_PRINCIPAL_TENANT,
    PDP_A_USER,
    PDP_A_KEY_LABEL,
    PDP_A_TENANT_ID,
    PDP_A_TENANT_TIER,
    PDP_A_TENANT_LABEL,
    PDP_A_ENDPOINT,
    PDP_A_MODEL,
    PDP_A_STREAM,
    PDP_A_MAX_TOKENS,
    PDP_A_PROMPT_TOKENS,
    PDP_A_META,
    PDP_A_CLIENT_IP,
    PDP_A_TIME_HOUR,
    PDP_A_TIME_MINUTE,
    PDP_A_TIME_WEEKDAY,
    PDP_A_TIME_DATE,
    PDP_A_COUNT
} pdp_attr_id;

typedef enum pdp_op {
    PDP_OP_TRUE = 0,
    PDP_OP_FALSE,
    PDP_OP_ALL,
    PDP_OP_ANY,
    PDP_OP_NOT,
    PDP_OP_EQ,
    PDP_OP_NE,
    PDP_OP_LT,
    PDP_OP_LE,
    PDP_OP_GT,
    PDP_OP_GE,
    PDP_OP_IN,
    PDP_OP_PREFIX,
    PDP_OP_SUFFIX,
    PDP_OP_CONTAINS,
    PDP_OP_GLOB,
    PDP_OP_CIDR,
    PDP_OP_EXISTS,
    PDP_OP_TIME_WINDOW,
    PDP_OP_COUNT
} pdp_op;

typedef enum pdp_kind {
    PDP_KIND_ACCESS = 0,
    PDP_KIND_ROUTE,
    PDP_KIND_AUDIT,
    PDP_KIND_RATE_LIMIT,
    PDP_KIND_BUDGET,
    PDP_KIND_GUARDRAIL,
} pdp_kind;

typedef enum pdp_mode {
    PDP_MODE_ENFORCE = 0,
    PDP_MODE_AUDIT,
    PDP_MODE_OFF,
} pdp_mode;

/* What one predicate or rule evaluated to. */
typedef enum pdp_res {
    PDP_R_FALSE = 0,
    PDP_R_TRUE  = 1,
    PDP_R_ERROR = 2,
} pdp_res;

/* A string in the bundle's pool (offsets survive the pool growing while
 * compiling; pointers are taken only after). */
typedef struct pdp_str {
    uint32_t off;
    uint32_t len;
} pdp_str;

typedef struct pdp_node {
    uint8_t  op;    /* pdp_op */
    uint8_t  attr;  /* pdp_attr_id */
    uint8_t  vtype; /* pdp_type of the literal */
    union {
        uint8_t days;  /* time_window: bit 0 = mon .. bit 6 = sun */
        uint8_t icase; /* eq ne in prefix suffix contains glob, written
                        * with an "i": ASCII letters compare folded (the
                        * literal is stored folded) */
    };
    uint32_t end;   /* index just past this node's subtree */
    pdp_str  path;  /* the attribute path as written, for traces */
    pdp_str  key;   /* label / metadata key for *.labels.<k>, metadata.<k> */
    union {
        double   num;
        bool     b;
        pdp_str  str;
        uint32_t idx; /* into sets, globs or cidrs */
        struct {
            uint16_t from; /* minutes after midnight */
            uint16_t to;   /* exclusive; from > to wraps midnight */
        } tw;
    } u;
} pdp_node;

/* A hashed `in` set: strings in an open-addressed table (cap a power of
 * two, at least twice the size), numbers sorted for binary search. */
typedef struct pdp_set_slot {
    uint64_t hash;
    pdp_str  s; /* len UINT32_MAX: empty slot */
} pdp_set_slot;

typedef struct pdp_set {
    pdp_str       disp; /* the values as written (shortened), for traces */
    uint8_t       type; /* PDP_T_STR or PDP_T_NUM */
    uint32_t      n;    /* distinct values */
    uint32_t      mask; /* cap - 1 */
    pdp_set_slot *slots;
    double       *nums;
} pdp_set;

/* A glob split at '*': segs[0] is anchored at the start unless the pattern
 * starts with '*', the last one at the end unless it ends with '*'. */
typedef struct pdp_glob {
    pdp_str  pat;
    uint32_t seg_first; /* into pdp_bundle.segs */
    uint32_t nseg;
    bool     star_start;
    bool     star_end;
} pdp_glob;

typedef struct pdp_cidr {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    uint8_t bits;     /* prefix length over the 128-bit form */
} pdp_cidr;

typedef struct pdp_cidr_list {
    pdp_str  disp;  /* as written, for traces */
    uint32_t first; /* into pdp_bundle.cidrs */
    uint32_t n;
} pdp_cidr_list;

/* The deployments catalog, copied from the config at compile time: ids in
 * the pool, each deployment's model group, and the groups in first-seen
 * catalog order with their members in catalog order. */
typedef struct pdp_group {
    pdp_str  model;
    uint64_t hash;
    uint32_t first; /* into pdp_bundle.members */
    uint32_t n;
} pdp_group;

typedef struct pdp_route {
    uint64_t *allow; /* bitset over the catalog; NULL: no restriction */
    uint32_t *order; /* catalog indices from "deployments", in order */
    uint32_t  n_order;
    bool      has_list;  /* "deployments" was given */
    uint8_t   strategy;  /* tg_route_strategy */
    uint32_t *fallbacks; /* group indices */
    uint32_t  n_fallbacks;
} pdp_route;

typedef struct pdp_rule {
    pdp_str  id;
    uint8_t  kind; /* pdp_kind */
    uint8_t  mode; /* pdp_mode */
    bool     on_error_skip;
    bool     deny;    /* access: effect deny */
    uint8_t  capture; /* audit: 0 none, 1 metadata, 2 full */
    bool     log_shed; /* audit: on_log_full "shed" (else deny) */
    uint16_t status;  /* access deny */
    pdp_str  code;    /* access deny */
    pdp_str  message; /* access deny */
    uint32_t root;    /* first node of "when" */
    uint32_t route;   /* into pdp_bundle.routes (kind route) */
    uint8_t  scope;   /* rate_limit, budget: pdp_scope */
    int64_t  rpm;     /* rate_limit: 0 = no such limit */
    int64_t  tpm;
    int64_t  concurrent;
    uint8_t  window;      /* budget: pdp_window */
    int32_t  window_h;    /* budget: rolling hours */
    int64_t  limit_micro; /* budget: micro-USD */
    bool     clamp;       /* budget: action clamp */
    pdp_str  meta_key;    /* budget: scope metadata.<k> */
    uint8_t  nthr;        /* budget: alert thresholds (percent) */
    uint8_t  thr[PDP_BUDGET_THRESHOLDS_MAX];
    pdp_str  webhook; /* budget: alert URL ("": pdp.alert_webhook) */
    uint32_t guard;   /* guardrail: index in the bundle's guard set */
    pdp_str  file;    /* the file's path, for traces */
    int      line;    /* of the rule's "id" */
    int      col;
    uint32_t seq; /* load order, to name the first of two equal ids */
} pdp_rule;

/* Time zone: TZif transitions plus the POSIX TZ rule from its footer for
 * instants after the last transition. Offsets are seconds east of UTC. */
typedef struct pdp_tz_date {
    uint8_t  kind; /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' */
    uint16_t n;
    uint8_t  m, w, d;
    int32_t  secs; /* local time of day of the change */
} pdp_tz_date;

typedef struct pdp_tz {
    char        name[64];
    int64_t    *trans; /* ascending UTC seconds */
    uint8_t    *idx;   /* type index per transition */
    int32_t    *offs;  /* per type */
    uint32_t    ntrans;
    uint32_t    ntypes;
    int32_t     first_off; /* before the first transition */
    bool        has_rule;
    bool        rule_dst;
    int32_t     std_off;
    int32_t     dst_off;
    pdp_tz_date start;
    pdp_tz_date end;
} pdp_tz;

struct pdp_bundle {
    atomic_uint refs;
    char        name[64];
    uint64_t    revision;
    bool        default_allow;
    bool        audit_hits_header; /* bundle.json: x-tollgate-audit-hits */
    /* What its rules read of a request (TG_REUSE_*), and whether any reads
     * the time: pdp_bundle_reuse_inputs. */
    uint32_t reads;
    bool     reads_time;
    /* Decisions each rule matched in: [2 * rule] enforced, [2 * rule + 1]
     * audit-mode (tollgate_pdp_rule_hits_total). */
    _Atomic uint64_t *hits;
    char             *files_json; /* {"name": "content"}: for the history */
    char        hash[TG_MSG_HASH_MAX];
    char       *dir;
    char       *warnings; /* "FILE:LINE:COL: rule X: …\n" lines, or NULL */
    pdp_tz      tz;
    /* The price table budget rules were checked against (NULL without
     * budget rules): what decisions price the worst case with. */
    struct tg_pricing *pricing;
    /* Guardrail rules (NULL, 0 without any): their guard set spec as JSON
     * text, {"rules": [...]} in rule id order (a rule's pdp_rule.guard is
     * its index), the term lists they name (sorted, unique), and the set
     * compiled with those lists empty (tests fill them from fixtures). */
    char                *guard_spec;
    char               **guard_lists;
    uint32_t             n_guard_lists;
    struct tg_guard_set *guard_set;

    pdp_rule *rules; /* sorted by id: evaluation and output never depend on
                        file order */
    uint32_t  nrules;
    pdp_node *nodes;
    uint32_t  nnodes;
    char     *pool;
    size_t    pool_len;

    pdp_set       *sets;
    uint32_t       nsets;
    pdp_glob      *globs;
    uint32_t       nglobs;
    pdp_str       *segs;
    uint32_t       nsegs;
    pdp_cidr      *cidrs;
    uint32_t       ncidrs;
    pdp_cidr_list *cidr_lists;
    uint32_t       ncidr_lists;
    pdp_route     *routes;
    uint32_t       nroutes;

    /* catalog */
    uint32_t   ndeps;
    pdp_str   *dep_ids;
    uint32_t  *dep_group;
    pdp_group *groups;
    uint32_t   ngroups;
    uint32_t  *members;
    bool       have_catalog;
};

/* Errors collected while compiling: "file:line:col: rule <id>: what", one
 * per line, into the caller's buffer; stops at PDP_ERRORS_MAX. ctx is
 * what the error is in ("rule eu-only", "bundle.json"), or NULL. */
typedef struct pdp_errs {
    char    *buf;
    size_t   cap;
    size_t   len;
    unsigned n;
} pdp_errs;

void pdp_errs_add(pdp_errs *e, const tg_json_doc *doc, const cJSON *node,
                  const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void pdp_errs_addf(pdp_errs *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The compiler's growing state; arrays move into the bundle at the end. */
typedef struct pdp_cc pdp_cc;

/* pdp_compile_begin prepares b for rules (copies the catalog of cfg, which
 * may be NULL). pdp_compile_file compiles the "rules" of one parsed
 * *.policy.json, adding errors to e. pdp_compile_end checks bundle-wide
 * rules (unique ids, limits), sorts the rules and moves everything into b.
 * Any error leaves b to be freed by pdp_bundle_free. */
tg_err pdp_compile_begin(pdp_cc **out, pdp_bundle *b, const tg_config *cfg);
void   pdp_compile_file(pdp_cc *cc, const tg_json_doc *doc, pdp_errs *e);
tg_err pdp_compile_end(pdp_cc *cc, pdp_errs *e);
void   pdp_compile_free(pdp_cc *cc); /* NULL-safe */

/* pdp_bundle_free releases everything b holds (refcount ignored). */
void pdp_bundle_free(pdp_bundle *b);

/* pdp_hash is FNV-1a over n bytes: `in` sets and catalog model lookups. */
static inline uint64_t
pdp_hash(const char *s, size_t n)
{
    return tg_fnv1a(TG_FNV_BASIS, s, n);
}

/* pdp_fold lowers the ASCII letters of s[0..n) in place: what the
 * case-insensitive operators compare (other bytes compare exactly). */
static inline void
pdp_fold(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z') {
            s[i] = (char)(s[i] - 'A' + 'a');
        }
    }
}

static inline const char *
pdp_s(const pdp_bundle *b, pdp_str s)
{
    return b->pool + s.off;
}

/* Names, shared by the compiler, traces and the CLI. */
extern const char *const pdp_op_names[PDP_OP_COUNT];
extern const char *const pdp_weekday_names[7]; /* mon..sun */
const char              *pdp_kind_name(uint8_t kind);
const char              *pdp_mode_name(uint8_t mode);
const char              *pdp_strategy_name(tg_route_strategy s);
const char              *pdp_capture_name(uint32_t level);
/* pdp_rule_effect: what rule r does when it applies ("allow", "deny",
 * "route", "capture", "rate_limit", "budget"). */
const char              *pdp_rule_effect(const pdp_rule *r);
const char *pdp_endpoint_name(tg_endpoint ep); /* "" when unspecified */

/* pdp_suggest returns the candidate closest to word (edit distance at most
 * 2, or a third of its length), or NULL. */
const char *pdp_suggest(const char *word, const char *const cands[], size_t n);

/* pdp_parse_ip reads an IPv4 or IPv6 address into the 128-bit form
 * (IPv4 as ::ffff:a.b.c.d, so one CIDR list serves both); false if s is
 * not one. The compiler reads CIDRs with it, the evaluator client_ip. */
bool pdp_parse_ip(const char *s, uint8_t out[16]);

/* time zones (pdp_policy_time.c) */
tg_err  pdp_tz_load(pdp_tz *tz, const char *name, char *why, size_t whylen);
void    pdp_tz_fini(pdp_tz *tz);
int32_t pdp_tz_offset(const pdp_tz *tz, int64_t utc_s);

/* traces (pdp_policy_trace.c): the evaluator records into t. */
typedef enum pdp_trace_state {
    PDP_TS_NOT_MATCHED = 0,
    PDP_TS_MATCHED,
    PDP_TS_ERRORED,
    PDP_TS_OFF,
} pdp_trace_state;

void pdp_trace_begin(pdp_trace *t, const pdp_bundle *b);
void pdp_trace_rule(pdp_trace *t, uint32_t rule, pdp_trace_state st,
                    const char *why);
/* pdp_trace_node records that node was reached at depth with the value the
 * attribute had (val NULL: no attribute read) and returns a handle for
 * pdp_trace_node_done, which sets its result. */
uint32_t pdp_trace_node(pdp_trace *t, uint32_t node, uint32_t depth,
                        const char *val);
void     pdp_trace_node_done(pdp_trace *t, uint32_t handle, pdp_res r);
void     pdp_trace_end(pdp_trace *t, const pdp_policy_result *res,
                       const char *route_note);

#endif
