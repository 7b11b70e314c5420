/* pdp_import_portkey_int.h - what the files of the Portkey importer share
 * (pdp_import_portkey.c: the command, the walk, retry and timeouts;
 * pdp_import_portkey_targets.c: targets into deployments;
 * pdp_import_portkey_cond.c: conditional routing into route rules and
 * tests). Internal to pdp/migrate. */
#ifndef PDP_IMPORT_PORTKEY_INT_H
#define PDP_IMPORT_PORTKEY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "pdp_import_portkey.h"
#include "tg_json.h"

#define PDP_PK_PATH 512 /* longest input path a finding names */
#define PDP_PK_DEPTH 8  /* deepest nesting of strategies taken */

/* One import in progress. */
typedef struct pdp_pk {
    const tg_json_doc *doc;
    pdp_mig_findings  *f;
    pdp_portkey       *pk;
    int64_t            retries;    /* highest retry.attempts; -1: none */
    int64_t            timeout_ms; /* highest request_timeout; -1: none */
    unsigned           n_auto;     /* deployments named <provider>-<n> */
    bool               nomem;      /* a cJSON allocation failed */
    char              *err;
    size_t             errlen;
} pdp_pk;

/* A flattened target: the deployment ids it became, in order, and
 * whether its strategy picks among them by weight. */
typedef struct pdp_pk_group {
    cJSON      *ids; /* array of strings (owned) */
    bool        weighted;
    const char *model; /* its deployments' model (NULL: pk->model) */
} pdp_pk_group;

/* pdp_pk_line is the 1-based line where node starts (0: unknown). */
int pdp_pk_line(const pdp_pk *c, const cJSON *node);

/* pdp_pk_path formats a finding's path into p (cap bytes); one longer
 * than that (input nested past any real config) ends in "..." rather
 * than being cut silently. */
void pdp_pk_path(char *p, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pdp_pk_note adds a finding at path, on node's line. */
void pdp_pk_note(pdp_pk *c, const char *path, const cJSON *node,
                 pdp_mig_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* pdp_pk_fail writes "file:line:col: what" into c->err for node and
 * returns TG_ECONFIG. */
tg_err pdp_pk_fail(pdp_pk *c, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pdp_pk_ck records a failed cJSON allocation (v NULL) and returns v. */
cJSON *pdp_pk_ck(pdp_pk *c, cJSON *v);

/* pdp_pk_global reads the fields that are one data-plane setting however
 * deep they sit (retry, request_timeout, cache, hooks): true when key
 * was one of them (its findings added). */
bool pdp_pk_global(pdp_pk *c, const char *key, const cJSON *v, const char *path,
                   bool top);

/* pdp_pk_codes reports a list of status codes (retry.on_status_codes,
 * strategy.on_status_codes) against what Tollgate retries or falls back
 * on. fallback: the list is a fallback strategy's. */
void pdp_pk_codes(pdp_pk *c, const cJSON *list, const char *path,
                  bool fallback);

/* pdp_pk_mode is a node's strategy.mode ("single" when it names none). */
const char *pdp_pk_mode(const cJSON *node);

/* pdp_pk_flatten turns node (a target, or a strategy with targets) into
 * deployments appended to pk->deployments and their ids to g->ids.
 * inherit: override_params.model of the nearest ancestor (NULL: none).
 * g->weighted must be set by the caller (the group's own mode). A target
 * that cannot be imported is a finding, not an error; TG_ECONFIG only for
 * input no config can be built from. */
tg_err pdp_pk_flatten(pdp_pk *c, const cJSON *node, const char *path,
                      const char *inherit, pdp_pk_group *g);

/* pdp_pk_node_fields reports the fields of a strategy node other than
 * strategy and targets (name, weight, retry, ...). top: the config's
 * root; in_lb: its parent is a loadbalance. */
void pdp_pk_node_fields(pdp_pk *c, const cJSON *node, const char *path,
                        bool top, bool in_lb);

/* pdp_pk_splits: root is a fallback whose first target is a loadbalance
 * pool, imported as one model per target with the later ones as the
 * first's model-group fallbacks (exactly Portkey's order of pools). */
bool pdp_pk_splits(const cJSON *root);

/* pdp_pk_root_fields reports the root's strategy and other fields when
 * it is split (pdp_pk_splits). */
void pdp_pk_root_fields(pdp_pk *c, const cJSON *root);

/* pdp_pk_weights turns the shares pdp_pk_flatten left on g's deployments
 * into integer weights (weighted) or removes them (ordered). */
void pdp_pk_weights(pdp_pk *c, const pdp_pk_group *g);

/* pdp_pk_conditional imports a top-level conditional strategy: every
 * named target a group, a route rule per condition and for the default,
 * and a test per condition. */
tg_err pdp_pk_conditional(pdp_pk *c, const cJSON *root);

/* pdp_pk_test_case builds a test: model NAME, metadata meta (borrowed,
 * may be NULL), expecting route ids (borrowed), or a deny with code when
 * ids is NULL. */
cJSON *pdp_pk_test_case(pdp_pk *c, const char *name, const cJSON *meta,
                        const cJSON *ids, const char *code);

#endif
