/* pdp_limits.h - rate-limit state of the rate_limit rules: per (rule id,
 * scope value) a sliding 60 s window of requests and tokens (1 s buckets)
 * and a count of requests in flight. A decision checks and reserves
 * atomically across every rule that applies, so N threads can never
 * admit more than the limit; the usage report releases the concurrency
 * slot and corrects the estimated tokens to the actual ones. In memory
 * only (a restarted PDP starts with empty windows). Thread-safe: state is
 * sharded under short mutexes that are never held across I/O. Called by
 * pdp_decide (check) and pdp_server (release, expiry). */
#ifndef PDP_LIMITS_H
#define PDP_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "tg_err.h"
#include "tg_msg.h"

#define PDP_LIMITS_WINDOW_S 60
#define PDP_LIMITS_RULES_MAX 8 /* rate_limit rules applied to one request */
/* Output tokens counted when the request sets no max_tokens. */
#define PDP_LIMITS_OUTPUT_CAP 4096

typedef struct pdp_limits pdp_limits;

/* One rule that applies to a request. A limit of 0 is not limited. */
typedef struct pdp_limits_req {
    const char *rule_id; /* borrowed during the call */
    const char *scope;   /* the scope value (key id, tenant id, ...) */
    int64_t     rpm;
    int64_t     tpm;
    int64_t     concurrent;
} pdp_limits_req;

typedef enum pdp_limits_what {
    PDP_LIMITS_OK = 0,
    PDP_LIMITS_REQUESTS,
    PDP_LIMITS_TOKENS,
    PDP_LIMITS_CONCURRENT,
} pdp_limits_what;

typedef struct pdp_limits_result {
    pdp_limits_what denied;      /* OK: admitted (and reserved) */
    uint32_t        denied_rule; /* index into reqs when denied */
    int64_t         limit;       /* the limit that denied */
    int64_t         used;        /* its use at the time */
    int64_t         retry_ms;    /* when a retry can fit (>= 1) */
    /* The most constraining state over the rules with such a limit
     * (limit 0: no rule has one), after this request when admitted. */
    tg_limit_state requests;
    tg_limit_state tokens;
    /* Set when something was reserved (concurrency or tokens) and must
     * be released with pdp_limits_release; "" otherwise. */
    char reservation_id[TG_REQUEST_ID_MAX];
} pdp_limits_result;

/* pdp_limits_create: reservations not released within ttl_ms expire.
 * Owns: *out, free with pdp_limits_destroy. */
tg_err pdp_limits_create(pdp_limits **out, int64_t ttl_ms);
void   pdp_limits_destroy(pdp_limits *l); /* NULL-safe */

/* pdp_limits_check checks the n rules for one request of `tokens`
 * estimated tokens at now_ms. reserve true (enforced rules): either every
 * limit fits and 1 request, the tokens and 1 concurrency slot are counted
 * for each rule, or nothing is counted and out->denied says why.
 * reserve false (audit rules): the request and tokens are always counted
 * (a shadow count, no concurrency slot, no reservation) and out->denied
 * says whether an enforced rule would have denied. Borrows reqs. */
void pdp_limits_check(pdp_limits *l, const pdp_limits_req *reqs, uint32_t n,
                      int64_t tokens, bool reserve, int64_t now_ms,
                      pdp_limits_result *out);

/* pdp_limits_release ends reservation id: frees its concurrency slots and
 * replaces its estimated tokens by actual_tokens (if their second is
 * still inside the window). Returns false if id is unknown (already
 * released or expired): releasing twice changes nothing. */
bool pdp_limits_release(pdp_limits *l, const char *id, int64_t actual_tokens,
                        int64_t now_ms);

/* pdp_limits_expire releases every reservation older than the TTL at
 * now_ms (keeping its estimated tokens), logs each, and returns how many.
 * pdp_limits_check calls it at most once a second on its own. */
uint32_t pdp_limits_expire(pdp_limits *l, int64_t now_ms);

/* pdp_limits_pending is the number of open reservations. */
uint64_t pdp_limits_pending(pdp_limits *l);

#endif
