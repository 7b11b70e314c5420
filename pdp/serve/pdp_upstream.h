/* pdp_upstream.h - a sidecar PDP's link to its central PDP (pdp.upstream).
 * Three threads share one nng req socket (mutual TLS):
 *   sync     pulls the central PDP's changes every sync_interval_ms (a
 *            snapshot first, or when the log moved past us) and applies
 *            them to the local store; a new bundle or pricing is written
 *            under state_dir/replica and the bundle reloaded;
 *   leases   sends the asks decisions queued and resumes the decisions
 *            that waited for them, asks for slices before they run out,
 *            and gives back the drained ones (queued after the reports
 *            they cover);
 *   forward  sends the store's forward queue in order (reports as
 *            UsageBatch, returns as LeaseClose) and deletes what the
 *            central PDP acknowledged.
 * Decisions call pdp_upstream_admit (pdp_decide_admit's fn), which never
 * waits on the network: when no slice has room it queues the ask and the
 * decision parks until the lease thread has the answer.
 * Created by serve (pdp_serve.c) before the server, closed after it. */
#ifndef PDP_UPSTREAM_H
#define PDP_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pdp_limits.h"
#include "pdp_rollout.h"
#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_msg.h"

typedef struct pdp_upstream pdp_upstream;

/* pdp_upstream_open dials cfg->pdp.upstream (no thread yet). Borrows cfg
 * and st until pdp_upstream_close. */
tg_err pdp_upstream_open(pdp_upstream **out, const tg_config *cfg,
                         pdp_store *st, char *err, size_t errlen);

/* pdp_upstream_first_sync is TG_OK once the store holds a replica: at
 * once when it synced before (it then serves from it, central PDP or
 * not), else when this try applied the first snapshot (the caller tries
 * again until it does: a sidecar that never synced serves nothing). The
 * bundle and pricing files are written either way. */
tg_err pdp_upstream_first_sync(pdp_upstream *up);

/* pdp_upstream_start starts the threads; bundle changes reload ro. */
tg_err pdp_upstream_start(pdp_upstream *up, pdp_rollout *ro);

/* pdp_upstream_admit: see pdp_decide_admit (arg is the pdp_upstream).
 * It never waits on the network: TG_EAGAIN when a slice is being asked
 * for (this request's ask is queued, or another's is on its way): the
 * caller parks the decision with pdp_upstream_wait and decides again
 * when it is resumed. TG_EIO: the central PDP is not answering and the
 * request needs capacity (on_upstream_error deny). */
tg_err pdp_upstream_admit(void *arg, const char *id,
                          const pdp_limits_req *reqs, uint32_t n,
                          const pdp_limits_budget *buds, uint32_t nb,
                          const pdp_limits_cost *cost, int64_t tokens,
                          int64_t now_ms, pdp_limits_result *out);

/* pdp_upstream_wait calls fn(arg) on the lease thread once the asks
 * queued so far have been answered (or failed). fn may decide again and
 * wait again. */
typedef void (*pdp_upstream_resume_fn)(void *arg);
void pdp_upstream_wait(pdp_upstream *up, pdp_upstream_resume_fn fn, void *arg);

/* pdp_upstream_charges fills u's charges (the budget windows and leases
 * request u->request_id was admitted under) before it is committed. */
void pdp_upstream_charges(pdp_upstream *up, tg_usage *u);

/* pdp_upstream_abandon frees what request id holds (its decision could
 * not be recorded). */
void pdp_upstream_abandon(pdp_upstream *up, const char *id);

/* pdp_upstream_settled frees what u's request held once it committed. */
void pdp_upstream_settled(pdp_upstream *up, const tg_usage *u, int64_t cost);

/* pdp_upstream_metrics appends Prometheus text. */
void pdp_upstream_metrics(pdp_upstream *up, tg_buf *out);

/* pdp_upstream_close stops the threads and hangs up. NULL-safe. */
void pdp_upstream_close(pdp_upstream *up);

#endif
