/* pdp_slices.h - a sidecar PDP's leases: the slices of shared rate limits
 * and budgets its central PDP granted it, and the requests admitted
 * against them. A request is admitted only when every rule that applies
 * has a slice with room (all or nothing, like pdp_limits_check_budgets),
 * so what the sidecars admit can never exceed what the central PDP holds
 * for them. A slice admits for a while (use_ms), then drains: it goes
 * back to the central PDP once no request it admitted is in flight, with
 * what of it was used; an idle slice goes back early. Demand per rule is
 * tracked so the next slice is asked for before this one runs out, sized
 * to about two seconds of traffic (never more than a quarter of a rate
 * limit or an eighth of a budget).
 * Thread-safe (one mutex, never held across I/O). */
#ifndef PDP_SLICES_H
#define PDP_SLICES_H

#include <stdbool.h>
#include <stdint.h>

#include "pdp_limits.h"
#include "pdp_wire.h"
#include "tg_err.h"
#include "tg_msg.h"

typedef struct pdp_slices pdp_slices;

/* The asks for slices that are missing or running low, each ready to send
 * (ids fresh), at most PDP_WIRE_WANTS_MAX. */
typedef struct pdp_slices_need {
    uint32_t      n;
    pdp_wire_want w[PDP_WIRE_WANTS_MAX];
    /* For an admit's asks: the index of the rule each is for, in reqs or
     * (budget) in buds. */
    uint32_t rule[PDP_WIRE_WANTS_MAX];
    bool     budget[PDP_WIRE_WANTS_MAX];
    /* A rule is short and another request's ask for it is on its way
     * (else, with no ask added, a refusal of the central PDP stands). */
    bool waiting;
} pdp_slices_need;

/* pdp_slices_create: lease ids are "<node>:<boot>:<n>"; a lease is asked
 * for ttl_ms and admits for use_ms after it was asked for. */
tg_err pdp_slices_create(pdp_slices **out, const char *node, int64_t ttl_ms,
                         int64_t use_ms);
void   pdp_slices_destroy(pdp_slices *s); /* NULL-safe */

/* pdp_slices_prefix is "<node>:<boot>", what every lease id of this
 * process starts with (its leases are renewed by it). */
const char *pdp_slices_prefix(const pdp_slices *s);

/* pdp_slices_admit is pdp_limits_check_budgets over the slices (same
 * arguments, same result; reservation_id is id). A rule without a slice
 * with room denies with out->denied set and its ask added to need (when
 * need is non-NULL): the caller asks the central PDP, adds what it grants
 * and admits again. emergency: admit the budgets out of the process's
 * emergency allowance instead (each budget the request falls under
 * draws its worst case from it; rate limits still need slices); denied
 * PDP_LIMITS_BUDGET when it is spent. */
void pdp_slices_admit(pdp_slices *s, const char *id,
                      const pdp_limits_req *reqs, uint32_t n,
                      const pdp_limits_budget *buds, uint32_t nb,
                      const pdp_limits_cost *cost, int64_t tokens,
                      bool emergency, int64_t now_ms, pdp_limits_result *out,
                      pdp_slices_need *need);

/* pdp_slices_grant adds what the central PDP answered to the asks in
 * need (matched by id; sent_ms: when they were sent). A refusal is
 * remembered for its retry time, at most 250 ms (another sidecar may give
 * capacity back sooner), so requests meanwhile are denied without asking
 * again; *refusal (may be NULL) gets the last one. */
void pdp_slices_grant(pdp_slices *s, const pdp_slices_need *need,
                      const pdp_wire_granted *g, uint32_t n, int64_t sent_ms,
                      pdp_wire_granted *refusal);

/* pdp_slices_refused fills out as a deny from refusal g of need's ask i
 * (the rule it names, the central PDP's limit, use and retry time). */
void pdp_slices_refused(const pdp_slices_need *need, uint32_t i,
                        const pdp_wire_granted *g, pdp_limits_result *out);

/* pdp_slices_charges writes the budget windows request id was admitted
 * under (at most TG_MSG_CHARGES_MAX) into u's charges, and whether it was
 * an emergency admission; nothing when id is unknown. */
void pdp_slices_charges(pdp_slices *s, const char *id, tg_usage *u);

/* pdp_slices_settle ends request id: its slots are freed, its estimated
 * tokens replaced by the actual ones and its worst case by its cost.
 * Returns false when id is unknown. abandon: nothing went upstream. */
bool pdp_slices_settle(pdp_slices *s, const char *id, int64_t actual_tokens,
                       int64_t cost, bool abandon);

/* pdp_slices_prefetch adds to need (fresh ids) an ask for every rule with
 * demand whose slices are more than half used, unless one is already
 * being asked for; pdp_slices_grant ends that. */
void pdp_slices_prefetch(pdp_slices *s, int64_t now_ms, pdp_slices_need *need);

/* pdp_slices_asked ends the asks of need that got no answer (the central
 * PDP was unreachable). */
void pdp_slices_asked(pdp_slices *s, const pdp_slices_need *need);

/* pdp_slices_returns moves into r (at most max) the slices to give back:
 * past their use time or idle for a second, with nothing in flight; they
 * are forgotten here. Returns how many. */
uint32_t pdp_slices_returns(pdp_slices *s, int64_t now_ms, pdp_wire_return *r,
                            uint32_t max);

/* Counters for metrics. */
typedef struct pdp_slices_stats {
    uint64_t held;        /* slices held now */
    uint64_t granted;     /* slices granted so far */
    uint64_t refused;     /* asks refused (a limit reached) */
    uint64_t returned;    /* slices given back */
    uint64_t emergency;   /* requests admitted on the emergency allowance */
    int64_t  emergency_micro; /* of it, spent or held */
} pdp_slices_stats;
void pdp_slices_get_stats(pdp_slices *s, pdp_slices_stats *out);

/* pdp_slices_emergency_set sets the emergency allowance (micro-USD). */
void pdp_slices_emergency_set(pdp_slices *s, int64_t micro);

#endif
