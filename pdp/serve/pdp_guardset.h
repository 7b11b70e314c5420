/* pdp_guardset.h - the guard sets this PDP serves to data planes. A
 * decision with guardrail obligations names the set of the bundle it ran
 * on, with the term lists now in the store, by the SHA-256 of its spec;
 * a data plane fetches the spec by that hash (GuardFetch), compiles it
 * with the same engine (tg_guard.h) and caches it. The last
 * PDP_GUARDSET_KEEP sets stay fetchable, so a decision made just before a
 * reload or a list change still finds its own. Thread-safe (one mutex,
 * held while a set is built: once per bundle and list change). */
#ifndef PDP_GUARDSET_H
#define PDP_GUARDSET_H

#include <stddef.h>
#include <stdint.h>

#include "pdp_policy.h"
#include "pdp_store.h"
#include "tg_err.h"
#include "tg_msg.h"

#define PDP_GUARDSET_KEEP 8

typedef struct pdp_guardset pdp_guardset;

/* pdp_guardset_create: reads term lists from st (borrowed for its life).
 * Owns: *out, free with pdp_guardset_destroy (NULL-safe). */
tg_err pdp_guardset_create(pdp_guardset **out, pdp_store *st);
void   pdp_guardset_destroy(pdp_guardset *g);

/* pdp_guardset_for writes into hash the set of bundle b (which has
 * guardrail rules) with the store's lists as the decision's read rd (in
 * pdp_store_read_begin) sees them, building it when b or a list changed
 * since. TG_ENOTFOUND when a list b names is not in the store, TG_EIO
 * when the store cannot be read; why says which. */
tg_err pdp_guardset_for(pdp_guardset *g, pdp_store_reader *rd,
                        const pdp_bundle *b, char hash[TG_MSG_HASH_MAX],
                        char *why, size_t whylen);

/* pdp_guardset_spec copies the spec of the set named hash. TG_ENOTFOUND
 * when it is not (or no longer) kept. Owns: *spec (free()). */
tg_err pdp_guardset_spec(pdp_guardset *g, const char *hash, char **spec,
                         size_t *len);

/* pdp_guardset_missing_list writes into why the first list b names that
 * the store does not hold (true), for refusing to activate such a
 * bundle. */
bool pdp_guardset_missing_list(pdp_store *st, const pdp_bundle *b, char *why,
                               size_t whylen);

#endif
