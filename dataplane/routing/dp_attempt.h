/* dp_attempt.h - which attempt a request makes next (the same deployment
 * after a backoff, the next one, a context or content fallback, give up)
 * and when failing open is allowed. Pure: no I/O, clock or allocation;
 * one dp_attempt per request, owned by its worker (not thread-safe). */

/* A plan is a list of deployment indices, each with its group: 0 the
 * requested model, 1.. its fallbacks in order, DP_GROUP_OTHER fallbacks a
 * route rule added, DP_GROUP_CONTEXT.. and DP_GROUP_CONTENT.. the
 * context-window and content-policy fallbacks. Groups form three classes
 * (ordinary, context, content); a walk along the plan never crosses from
 * one class into another except on purpose, after an error of that kind.
 * The caller drives it: dp_attempt_walk starts a walk at the current
 * position and names a deployment to TRY; a deployment that cannot be
 * tried (cooling down, or it cannot take the request) is passed over with
 * dp_attempt_skip; a transfer that started is counted with
 * dp_attempt_started; one that failed is reported with dp_attempt_failed,
 * which says WAIT (the same deployment after a delay: dp_attempt_walk
 * again then), TRY (a new walk began) or GIVE_UP. */
#ifndef DP_ATTEMPT_H
#define DP_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"

/* Groups beyond the model's own fallbacks (1..). */
#define DP_GROUP_OTHER 60 /* fallbacks a route rule added */
#define DP_GROUP_CONTEXT 100
#define DP_GROUP_CONTENT 200
/* Attempts a request makes at most, over all deployments. */
#define DP_ATTEMPTS_MAX 32

/* How an attempt failed (the worker maps the provider's dp_fail_kind). */
typedef enum dp_attempt_fail {
    DP_ATTEMPT_RETRY = 1, /* 429, 5xx, no connection, timeout */
    DP_ATTEMPT_NEXT,      /* this deployment cannot serve it */
    DP_ATTEMPT_CONTEXT,   /* prompt too long: a larger-context group */
    DP_ATTEMPT_CONTENT,   /* refused by content policy: a content group */
    DP_ATTEMPT_CLIENT,    /* the request itself is wrong: give up */
} dp_attempt_fail;

typedef enum dp_attempt_act {
    DP_ATTEMPT_TRY,     /* start an attempt at the named deployment */
    DP_ATTEMPT_WAIT,    /* the same deployment again after the delay */
    DP_ATTEMPT_GIVE_UP, /* nothing left: answer with the last failure */
} dp_attempt_act;

typedef struct dp_attempt_opts {
    uint32_t retries;        /* retries at one deployment (same group) */
    int64_t  backoff_ms;     /* dp_router_backoff_ms's base */
    int64_t  backoff_max_ms; /* ... and cap */
} dp_attempt_opts;

typedef struct dp_attempt {
    uint32_t        order[TG_MSG_TARGETS_MAX]; /* deployment indices */
    uint8_t         group[TG_MSG_TARGETS_MAX];
    uint32_t        n;
    uint32_t        pos;        /* the current (or next) deployment */
    uint32_t        same_tries; /* retries made at order[pos] */
    uint32_t        started;    /* transfers started, all deployments */
    int             cls;        /* class of the current walk */
    dp_attempt_opts o;
} dp_attempt;

/* dp_attempt_plan starts a fresh plan of n (at most TG_MSG_TARGETS_MAX)
 * deployments in the order given, then moved stably by group so the
 * context- and content-only fallbacks come after everything else.
 * Returns a->n. Borrows: o, index and group until return. */
uint32_t dp_attempt_plan(dp_attempt *a, const dp_attempt_opts *o,
                         const uint32_t *index, const uint8_t *group, size_t n);

/* dp_attempt_walk starts a walk at the current position: TRY with
 * *index, or GIVE_UP when the plan is spent or DP_ATTEMPTS_MAX transfers
 * started. */
dp_attempt_act dp_attempt_walk(dp_attempt *a, uint32_t *index);

/* dp_attempt_skip passes over the deployment the walk named and names the
 * next one of the same class: TRY with *index, or GIVE_UP. */
dp_attempt_act dp_attempt_skip(dp_attempt *a, uint32_t *index);

/* dp_attempt_started counts a transfer that went out to the deployment
 * the walk named. */
void dp_attempt_started(dp_attempt *a);

/* dp_attempt_failed moves on after the current attempt failed with kind:
 * RETRY waits (*delay_ms, from dp_router_backoff_ms with retry_after_ms,
 * the provider's Retry-After or 0, and seed) while the deployment has
 * retries left and no other deployment of its group is next; otherwise,
 * like NEXT, it goes to the next deployment of an ordinary group. CONTEXT
 * and CONTENT jump to the first deployment of that kind of fallback.
 * CLIENT, or nowhere to go, is GIVE_UP. TRY began a new walk (*index). */
dp_attempt_act dp_attempt_failed(dp_attempt *a, dp_attempt_fail kind,
                                 int64_t retry_after_ms, uint64_t seed,
                                 uint32_t *index, int64_t *delay_ms);

/* dp_attempt_group says which group a deployment of model belongs to for
 * a request of model base, by cfg's model groups. Borrows: all until
 * return. */
uint8_t dp_attempt_group(const tg_config *cfg, const char *base,
                         const char *model);

/* dp_attempt_catalog writes the route targets the PDP's catalog routing
 * would list for model, for serving without a decision: its deployments
 * and its group's fallbacks (every deployment when all), in catalog order,
 * at most cap. Returns how many. */
uint32_t dp_attempt_catalog(const tg_config *cfg, const char *model, bool all,
                            tg_route_target *out, uint32_t cap);

/* What a request the PDP could not decide comes to. */
typedef enum dp_fail_open {
    DP_FAIL_OPEN_ALLOW,       /* served by the catalog, without policy */
    DP_FAIL_OPEN_DENY,        /* on_pdp_error: deny */
    DP_FAIL_OPEN_DENY_ANSWER, /* the PDP answered, unreadably: a deny */
    DP_FAIL_OPEN_DENY_KEY,    /* its key was not allowed recently */
} dp_fail_open;

/* dp_attempt_pdp_unreachable: err means the PDP could not be reached or
 * did not answer in time (the only errors failing open may cover). */
bool dp_attempt_pdp_unreachable(tg_err err);

/* dp_attempt_fail_open decides a request whose Decide ended in err (not
 * TG_OK) under on_pdp_error allow (or deny); key_known: the PDP allowed
 * its key within fail_open_key_ttl_s. */
dp_fail_open dp_attempt_fail_open(bool allow, tg_err err, bool key_known);

#endif
