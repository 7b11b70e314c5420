/* dp_guard.h - the guard sets this data plane scans with. A decision names
 * its set by hash; the set's spec comes from the PDP (dp_pdp_guard_fetch),
 * is compiled by the guardrail engine (tg_guard.h) on this module's loader
 * thread, so no worker waits on vectorscan's compiler, and the last
 * DP_GUARD_KEEP sets are kept. One fetch per hash however many requests
 * wait for it. Thread-safe; workers call get, nng threads deliver fetches. */
#ifndef DP_GUARD_H
#define DP_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "dp_pdp.h"
#include "tg_err.h"
#include "tg_guard.h"

#define DP_GUARD_KEEP 4

typedef struct dp_guard dp_guard;

/* Called once, on the loader thread, when the set a dp_guard_get missed is
 * here (err TG_OK: get it again) or cannot be had (why says why). Must
 * not block or call back into g. */
typedef void (*dp_guard_ready_cb)(void *arg, tg_err err, const char *why);

/* dp_guard_create fetches through pdp (borrowed until destroy), each fetch
 * waiting at most timeout_ms. Owns: *out. */
tg_err dp_guard_create(dp_guard **out, dp_pdp *pdp, int64_t timeout_ms);

/* dp_guard_destroy stops the loader; waiters still pending get TG_ECLOSED.
 * Call after the PDP client is destroyed (its fetch callbacks have run).
 * NULL-safe. */
void dp_guard_destroy(dp_guard *g);

/* dp_guard_get returns a reference to the compiled set named hash (release
 * with tg_guard_set_unref), or NULL when it is not here yet: then cb (when
 * not NULL) runs once later with the outcome, possibly before this
 * returns. A set that failed to come is retried after a second. */
tg_guard_set *dp_guard_get(dp_guard *g, const char *hash, dp_guard_ready_cb cb,
                           void *arg);

/* dp_guard_scratch: the calling thread's scanning scratch (made on first
 * use, freed when the thread exits); NULL when out of memory. */
tg_guard_scratch *dp_guard_scratch(void);

#endif
