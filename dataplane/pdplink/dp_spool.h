/* dp_spool.h - the data plane's write-ahead record of usage, in a small
 * local LMDB, so that no provider call goes uncounted whatever dies: the
 * PDP (restarted, unreachable), the data plane itself (kill -9) or the
 * disk (full).
 *
 * Two kinds of record, one per request id (the later replaces the
 * earlier): an *intent*, committed before the request goes upstream (who,
 * which reservation, the worst case it may cost), and the *final* usage
 * report, committed before the answer completes; both carry the request's
 * decision-record part, and a final whose capture level is full has its
 * content kept beside it (dp_spool_rec.h). After a crash every
 * intent without a final becomes a final marked estimated, charged at its
 * worst case (what the PDP reserved for it: never more than a budget
 * allowed). Finals are sent to the PDP as UsageBatch messages (the ones
 * committed within ~2 ms share one message; a PDP that does not know
 * batches gets them one by one), deleted when acknowledged, replayed until
 * then (also across restarts). The PDP counts a report once by its
 * request id, so sending one twice is harmless.
 *
 * When the disk refuses writes (full, failing) records are kept in memory
 * up to a ceiling and written in bounded batches once it takes them again;
 * finals held in memory are still sent to the PDP. Past the ceiling new
 * requests are refused (dp_spool_full) rather than served unrecorded.
 *
 * One spool thread owns the LMDB environment and calls every callback.
 * dp_spool_record and the counters are thread-safe. */
#ifndef DP_SPOOL_H
#define DP_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_pdp.h"
#include "dp_spool_rec.h"
#include "tg_err.h"
#include "tg_msg.h"

typedef struct dp_spool dp_spool;


/* dp_spool_open opens (creating) the spool in dir and starts its thread;
 * intents a previous run left become estimated finals. A truncated or
 * damaged spool file is refused with a message naming it. mem_max bytes
 * of records may wait in memory for the disk (0: 64 MiB).
 * Borrows pdp until dp_spool_close. Owns: *out. */
tg_err dp_spool_open(dp_spool **out, const char *dir, dp_pdp *pdp,
                     size_t mem_max);

/* dp_spool_stop writes out what is queued and stops the thread: nothing
 * is sent and no callback runs after it returns. Call it before
 * destroying the PDP client. */
void dp_spool_stop(dp_spool *sp);

/* dp_spool_close stops (if needed) and frees; call it after the PDP client
 * is destroyed, since that runs the last ack callbacks. Records not yet
 * acknowledged stay on disk for the next start. NULL-safe. */
void dp_spool_close(dp_spool *sp);

/* Called once on the spool thread: TG_OK when the record is on disk, or
 * (the disk refusing) held in memory below the ceiling; TG_EFULL when an
 * intent was refused because the memory ceiling is reached (the request
 * must not go upstream). Must not block. */
typedef void (*dp_spool_cb)(void *arg, tg_err rv);

/* dp_spool_record queues a copy of u as kind; cb (may be NULL) runs once
 * it is recorded. A final is never refused. If this returns an error
 * (TG_ENOMEM, TG_ECLOSED after stop) cb is never called. */
tg_err dp_spool_record(dp_spool *sp, dp_spool_kind kind, const tg_usage *u,
                       dp_spool_cb cb, void *arg);

/* dp_spool_record_content is dp_spool_record for a final that carries
 * content (its captured bodies as JSON text, copied): kept beside the
 * report on disk and sent with it. Content waiting in memory while the
 * disk refuses writes is not kept (the report is). */
tg_err dp_spool_record_content(dp_spool *sp, dp_spool_kind kind,
                               const tg_usage *u, const char *content,
                               size_t len, dp_spool_cb cb, void *arg);

/* dp_spool_put queues a final report with no callback. */
tg_err dp_spool_put(dp_spool *sp, const tg_usage *u);

/* dp_spool_full: records waiting in memory for the disk have reached the
 * ceiling; new requests are to be refused. */
bool dp_spool_full(dp_spool *sp);

/* dp_spool_pending counts final reports not yet acknowledged (on disk or
 * in memory). */
uint64_t dp_spool_pending(dp_spool *sp);

/* dp_spool_held_bytes is what waits in memory because the disk refused
 * it; dp_spool_mem_max the ceiling. */
uint64_t dp_spool_held_bytes(dp_spool *sp);
uint64_t dp_spool_mem_max(dp_spool *sp);

/* dp_spool_acked counts reports acknowledged since open. */
uint64_t dp_spool_acked(dp_spool *sp);

#endif
