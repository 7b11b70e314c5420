/* dp_reuse.h - decisions the data plane reuses instead of asking the PDP
 * again. Only a decision the PDP marks reusable is kept (reuse_ms > 0: an
 * allow that no budget or rate limit applies to, whose rules read no
 * time), and it serves a later request only when all of these hold:
 *  - same key hash, endpoint and model, and the same values of the
 *    inputs the PDP named (reuse_inputs: stream, max_tokens, prompt
 *    tokens, metadata, client address, user), compared byte for byte;
 *  - no fallback models (OpenRouter's "models"): such a decision is
 *    neither kept nor served (a client's "provider" preferences are
 *    applied after the decision, so they do not matter here);
 *  - younger than min(dataplane.decision_reuse_ms, reuse_ms);
 *  - the PDP's state generation (tg_gen.h, the file beside its ipc
 *    socket) is what it was when the decision was asked for, read from
 *    the same file (checked with a stat on every use): a key revoked, a
 *    tenant or quota changed, a new bundle in effect, a PDP restarted,
 *    and the next request asks the PDP again.
 * A PDP reached over tcp shares no file: nothing is reused. Budgets and
 * rate limits never come from here.
 *
 * Bounded: DP_REUSE_SETS x DP_REUSE_WAYS entries, allocated when first
 * used; a newer decision displaces the one closest to expiring.
 * Thread-safe (a lock per set). */
#ifndef DP_REUSE_H
#define DP_REUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "dp_req.h"
#include "tg_err.h"
#include "tg_msg.h"

#define DP_REUSE_SETS 256
#define DP_REUSE_WAYS 8
#define DP_REUSE_INPUT_MAX 512 /* larger inputs: not kept */

typedef struct dp_reuse dp_reuse;

/* dp_reuse_create: ttl_ms 0 turns reuse off (finds nothing, keeps
 * nothing). pdp_url is the PDP decisions come from (only ipc:// reuses);
 * pdp_uid as dataplane.pdp_uid: who must own its generation file.
 * Owns: *out, free with dp_reuse_destroy. */
tg_err dp_reuse_create(dp_reuse **out, int64_t ttl_ms, const char *pdp_url,
                       int64_t pdp_uid);
void   dp_reuse_destroy(dp_reuse *c); /* NULL-safe */

/* dp_reuse_tag_now tags a decision about to be asked for; false when
 * nothing may be kept (reuse off, or the generation file cannot be read
 * yet: it is looked for again at most once a second). */
bool dp_reuse_tag_now(dp_reuse *c, dp_reuse_tag *t);

/* dp_reuse_find copies into out a kept decision that may serve q (see
 * the top); false when there is none. */
bool dp_reuse_find(dp_reuse *c, const tg_decide *q, dp_decision *out);

/* dp_reuse_keep keeps d, the PDP's answer to q, asked under t (from
 * dp_reuse_tag_now before q was sent), when d is reusable and nothing
 * changed since t. */
void dp_reuse_keep(dp_reuse *c, const tg_decide *q, const dp_decision *d,
                   const dp_reuse_tag *t);

#endif
