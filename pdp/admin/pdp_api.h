/* pdp_api.h - the administration API as one function: (method, path,
 * query, JSON body) -> (HTTP status, JSON). Tenants, keys, budgets, rate
 * limits, spend and the audit trail. pdp_admin serves it under /admin/v1/
 * once the admin token is checked; the CLI calls it in process against the
 * state directory, or sends the same request to a PDP's admin URL, so the
 * two can never disagree. Every change is recorded in the audit trail with
 * the actor. Thread-safe: nothing but the store (which is) is shared. */
#ifndef PDP_API_H
#define PDP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pdp_limits.h"
#include "pdp_policy.h"
#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_config.h"

#define PDP_API_PREFIX "/admin/v1/"
#define PDP_API_KEY_PREFIX "sk-tg-"
#define PDP_API_KEY_MAX 80 /* a secret: prefix + 64 hex + NUL fits */

typedef struct pdp_api_ctx {
    pdp_store        *st;
    const tg_config  *cfg;    /* the deployments catalog (key models) */
    pdp_limits       *lim;    /* reserved spend; NULL: not known (CLI) */
    const pdp_bundle *bundle; /* budget windows' time zone; NULL: UTC */
    const char       *actor;  /* recorded with every change */
    int64_t           now_ms; /* 0: the clock */
} pdp_api_ctx;

/* An answer: the status and body (JSON unless ctype says otherwise). */
typedef struct pdp_api_reply {
    unsigned    status;
    const char *ctype; /* static string */
} pdp_api_reply;

/* pdp_api_handle answers one request. path starts with PDP_API_PREFIX;
 * query is the raw query string ("" or NULL: none); body may be NULL.
 * Errors are {"error":{"code","message"}} with a 4xx/5xx status. Appends
 * to out. Borrows everything until return. */
pdp_api_reply pdp_api_handle(const pdp_api_ctx *x, const char *method,
                             const char *path, const char *query,
                             const char *body, size_t len, tg_buf *out);

/* ---- pieces the CLI shares ------------------------------------------ */


/* pdp_api_user_ok: 1-127 printable characters (a key's user). */
bool pdp_api_user_ok(const char *s);

/* pdp_api_secret makes a new virtual key ("sk-tg-" + 48 hex) into key
 * (cap >= PDP_API_KEY_MAX) and its SHA-256. The caller wipes key. */
tg_err pdp_api_secret(char *key, size_t cap, uint8_t hash[TG_SHA256_LEN]);

/* pdp_api_duration parses "0" or a whole number and a unit s, m, h or d
 * ("90d", "12h", "30m") into ms, at most a century. */
bool pdp_api_duration(const char *s, int64_t *ms);

/* pdp_api_time writes unix ms as RFC 3339 UTC ("2026-01-31T09:00:00Z"). */
void pdp_api_time(int64_t ms, char *buf, size_t cap);

/* pdp_api_json_time adds name (RFC 3339) and name_ms to j, both null for
 * 0 (never). */
void pdp_api_json_time(cJSON *j, const char *name, int64_t ms);

/* pdp_api_key_status names what a key's current record allows at now_ms:
 * active, rotated-grace, revoked, expired or rotated. */
const char *pdp_api_key_status(const pdp_key *k, int64_t now_ms);

/* JSON renderings shared by the CLI's --format json and the API. secret
 * (NULL: none) is shown only when it was just made. Owns: the result
 * (cJSON_Delete). */
cJSON *pdp_api_key_json(const pdp_key *k, const char *secret, int64_t now_ms);
cJSON *pdp_api_tenant_json(const pdp_tenant *t);
cJSON *pdp_api_labels_json(const tg_kv *l, uint32_t n);

/* pdp_api_audit_begin fills *a, the audit record of the change about to
 * be written on st by this thread (detail taken; may be NULL), and arms
 * it: the store commits it in the change's own transaction
 * (pdp_store_audit_arm), so there is never a change without its line, nor
 * a line without its change. It cannot fail: the record lives in the
 * caller's *a, and a detail that cannot be printed is recorded as
 * {"truncated":true}. pdp_api_audit_end disarms it after the change and
 * logs it when it was written. */
void pdp_api_audit_begin(pdp_store *st, pdp_audit *a, const char *actor,
                         const char *action, const char *target,
                         cJSON *detail, int64_t at_ms);
void pdp_api_audit_end(pdp_store *st, const pdp_audit *a);

/* pdp_api_cli_actor names who runs the CLI: "cli:<login>@<host>". */
void pdp_api_cli_actor(char *buf, size_t cap);

/* pdp_api_quota_target parses "tenant:ID" or "key:ID". */
bool pdp_api_quota_target(const char *s, pdp_quota_scope *scope,
                          const char **id);

#endif
