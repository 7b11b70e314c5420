/* dp_spool.h - usage reports the PDP has not acknowledged yet, kept in a
 * small local LMDB so that none is lost when the PDP restarts or is
 * unreachable, or when the data plane itself is killed. One spool thread
 * owns the LMDB environment: it commits new reports in batches (fsynced at
 * most a second later), sends them to the PDP as UsageBatch messages (the
 * reports committed within ~2 ms share one message; a PDP that does not
 * know batches gets them one by one), deletes them when the PDP
 * acknowledges, and replays whatever is left (also across restarts of the
 * data plane). The PDP counts a report once by its request id, so
 * sending one twice is harmless. dp_spool_put is thread-safe. */
#ifndef DP_SPOOL_H
#define DP_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "dp_pdp.h"
#include "tg_err.h"
#include "tg_msg.h"

typedef struct dp_spool dp_spool;

/* dp_spool_open opens (creating) the spool in dir and starts its thread.
 * Borrows pdp until dp_spool_close. Owns: *out. */
tg_err dp_spool_open(dp_spool **out, const char *dir, dp_pdp *pdp);

/* dp_spool_stop writes out what is queued and stops the thread: nothing
 * is sent after it returns. Call it before destroying the PDP client. */
void dp_spool_stop(dp_spool *sp);

/* dp_spool_close stops (if needed) and frees; call it after the PDP client
 * is destroyed, since that runs the last ack callbacks. Reports still
 * unacknowledged stay on disk for the next start. NULL-safe. */
void dp_spool_close(dp_spool *sp);

/* dp_spool_put queues a copy of u; it is on disk within one batch. */
tg_err dp_spool_put(dp_spool *sp, const tg_usage *u);

/* dp_spool_pending counts reports queued or on disk, not yet acked. */
uint64_t dp_spool_pending(dp_spool *sp);

/* dp_spool_acked counts reports acknowledged since open. */
uint64_t dp_spool_acked(dp_spool *sp);

#endif
