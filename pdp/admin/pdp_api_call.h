/* pdp_api_call.h - one request of the admin API as its resource modules
 * (pdp_tenants, pdp_keys, pdp_quotas, pdp_records) see it: the context the
 * caller gives (pdp_api_ctx), the path split in segments, the query, the
 * parsed body, and the helpers that read them and write the answer. Every
 * answer is JSON: a record, or {"error":{"code","message"}} with a 4xx or
 * 5xx status. pdp_api_handle (pdp_api.h) makes one pdp_api_call per
 * request. Not thread-safe: one call belongs to one thread. */
#ifndef PDP_API_CALL_H
#define PDP_API_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pdp_limits.h"
#include "pdp_policy.h"
#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_json.h"
#include "tg_pricing.h"

#define PDP_API_PREFIX "/admin/v1/"
#define PDP_API_SEGS 5

/* What a request is answered against: the caller's state and who it is. */
typedef struct pdp_api_ctx {
    pdp_store        *st;
    const tg_config  *cfg;    /* the deployments catalog (key models) */
    pdp_limits       *lim;    /* reserved spend; NULL: not known (CLI) */
    const pdp_bundle *bundle; /* budget windows' time zone; NULL: UTC */
    /* pdp.pricing_file, which prices budgets (after the bundle's table);
     * NULL: not known, so nothing is said about unpriced models. */
    const tg_pricing *pricing;
    const char       *actor;  /* recorded with every change */
    int64_t           now_ms; /* 0: the clock */
} pdp_api_ctx;

/* One request being answered. seg and query borrow the request's path and
 * query; body is the root of doc (NULL: no body). */
typedef struct pdp_api_call {
    const pdp_api_ctx *x;
    const char        *method;
    const char        *seg[PDP_API_SEGS]; /* the path after PDP_API_PREFIX */
    char               segbuf[512];
    uint32_t           nseg;
    const char        *query;
    tg_json_doc       *doc;
    const cJSON       *body;
    tg_buf            *out;
    int64_t            now_ms;
    const char        *ctype; /* NULL: JSON */
    int                how;   /* the route's variant (pdp_api.c's table) */
} pdp_api_call;

/* ---- answers: each writes c->out whole and returns the HTTP status ----- */

/* pdp_api_err answers {"error":{"code":code,"message":...}}. */
unsigned pdp_api_err(pdp_api_call *c, unsigned status, const char *code,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* pdp_api_ok answers doc (taken; NULL: out of memory, a 500). */
unsigned pdp_api_ok(pdp_api_call *c, unsigned status, cJSON *doc);

/* pdp_api_listed answers doc (taken) when rv is TG_OK, else the store
 * error met while trying to what (doc is then freed). */
unsigned pdp_api_listed(pdp_api_call *c, tg_err rv, cJSON *doc,
                        const char *what);

/* pdp_api_store_err answers a store error while trying to what ("store
 * the key"): 507 storage_full, else 500 store_error. */
unsigned pdp_api_store_err(pdp_api_call *c, tg_err rv, const char *what);

/* pdp_api_key_missing answers 404 key_not_found for key id. */
unsigned pdp_api_key_missing(pdp_api_call *c, const char *id);

/* ---- the request ------------------------------------------------------- */

/* pdp_api_fields refuses (400, in *st) members of the body not in allowed
 * (NULL-ended) and a body that is not an object. */
bool pdp_api_fields(pdp_api_call *c, const char *const allowed[], unsigned *st);

/* pdp_api_str reads an optional string member (NULL when absent; a JSON
 * null reads as ""). */
bool pdp_api_str(pdp_api_call *c, const char *name, const char **out,
                 unsigned *st);

/* pdp_api_labels reads the body's "labels", an object of label name ->
 * value (null or "": remove, when allow_remove), into l (PDP_LABELS_MAX). */
bool pdp_api_labels(pdp_api_call *c, bool allow_remove, tg_kv *l, uint32_t *n,
                    unsigned *st);

/* pdp_api_query copies the value of query parameter name (URL-decoded)
 * into buf; false when absent. */
bool pdp_api_query(const pdp_api_call *c, const char *name, char *buf,
                   size_t cap);

/* pdp_api_snapshot runs fn in one read snapshot of the store and returns
 * what it returns (or the error that kept it from running). */
tg_err pdp_api_snapshot(pdp_api_call *c,
                        tg_err (*fn)(pdp_store_reader *rd, void *arg),
                        void *arg);

/* pdp_api_read_key reads key id, and when it was last used (last_ms NULL:
 * not wanted; 0: never), in one snapshot. TG_ENOTFOUND for an unknown or
 * invalid id. */
tg_err pdp_api_read_key(pdp_api_call *c, const char *id, pdp_key *k,
                        int64_t *last_ms);

/* ---- the audit trail --------------------------------------------------- */

/* pdp_api_audit_begin fills *a, the audit record of the change about to
 * be written on st by this thread (detail taken; may be NULL), and arms
 * it: the store commits it in the change's own transaction
 * (pdp_store_audit_arm), so there is never a change without its line, nor
 * a line without its change. It cannot fail: the record lives in the
 * caller's *a, and a detail that cannot be printed is recorded as
 * {"truncated":true}. pdp_api_audit_end disarms it after the change and
 * logs it when it was written. */
void pdp_api_audit_begin(pdp_store *st, pdp_audit *a, const char *actor,
                         const char *action, const char *target, cJSON *detail,
                         int64_t at_ms);
void pdp_api_audit_end(pdp_store *st, const pdp_audit *a);

/* pdp_api_audit is pdp_api_audit_begin for a change this call makes, by
 * its actor at its time; end it with pdp_api_audit_end(c->x->st, a). */
void pdp_api_audit(pdp_api_call *c, pdp_audit *a, const char *action,
                   const char *target, cJSON *detail);

#endif
