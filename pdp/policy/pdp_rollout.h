/* pdp_rollout.h - the policy bundle in effect and how the next one gets in.
 * At start it loads pdp.bundle (compile + the bundle's own tests); on
 * reload (SIGHUP, `tollgate-pdp reload` through the admin listener, or a
 * change in the bundle directory) it compiles a candidate, checks the
 * revision rules, runs the candidate's tests and only then swaps it in.
 * Any failure leaves the running bundle in place. Every activation is
 * written to the store's policy_history.
 *
 * Thread-safe. Decisions call pdp_rollout_acquire from any thread: it
 * copies the current pointer and takes a reference under a mutex held for
 * just that, so a swap never waits for decisions and a decision finishes
 * on the bundle it started with. Reloads are serialised by a second mutex.
 * Created and destroyed by `serve` (pdp_cli.c). */
#ifndef PDP_ROLLOUT_H
#define PDP_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pdp_policy.h"
#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_err.h"

#define PDP_ROLLOUT_DETAILS_MAX 16384
#define PDP_ROLLOUT_DEBOUNCE_MS 300

typedef struct pdp_rollout pdp_rollout;

typedef enum pdp_reload_outcome {
    PDP_RELOAD_OK = 0,    /* the candidate is now in effect */
    PDP_RELOAD_UNCHANGED, /* same revision and hash already in effect */
    PDP_RELOAD_REFUSED,   /* the running bundle stays; why says why */
} pdp_reload_outcome;

/* What a reload did. name/revision/hash describe the bundle in effect
 * afterwards (the candidate on OK, the running one otherwise). */
typedef struct pdp_reload_result {
    pdp_reload_outcome outcome;
    char               name[PDP_BUNDLE_NAME_MAX];
    uint64_t           revision; /* 0: no bundle in effect */
    char               hash[TG_MSG_HASH_MAX];
    uint64_t           previous_revision;  /* in effect before the reload */
    uint64_t           candidate_revision; /* 0: it did not compile */
    char               candidate_hash[TG_MSG_HASH_MAX];
    bool               rollback; /* OK with a revision not above the last */
    int64_t            duration_us;
    char               why[512]; /* one line, for REFUSED (and UNCHANGED) */
    /* Compile errors ("file:line:col: ...", one per line) or the failing
     * tests' output; "" when none. Truncated to fit. */
    char details[PDP_ROLLOUT_DETAILS_MAX];
} pdp_reload_result;

/* pdp_rollout_check_revision applies the revision rules to a candidate
 * against the bundle in effect (cur_rev 0: none): a higher revision is
 * accepted; the same revision and hash is UNCHANGED; anything else (a
 * lower revision, or the same revision with other content) is REFUSED
 * unless allow_rollback, when it is accepted with *rollback = true.
 * Pure; why (may be NULL) gets a one-line reason for a refusal. */
pdp_reload_outcome
pdp_rollout_check_revision(uint64_t cur_rev, const char *cur_hash,
                           uint64_t cand_rev, const char *cand_hash,
                           bool allow_rollback, bool *rollback, char *why,
                           size_t whylen);

/* pdp_rollout_create loads cfg->pdp.bundle_dir when set: the bundle must
 * compile and pass its own tests, else TG_ECONFIG with every error in err
 * (one per line). The activation is recorded with how=start (flagged
 * rollback, with a warning, when its revision is below the last one
 * recorded). Without a bundle it succeeds and pdp_rollout_acquire returns
 * NULL (decisions then allow by the catalog, revision 0).
 * Borrows: cfg and st until pdp_rollout_destroy.
 * Owns: *out, free with pdp_rollout_destroy. */
tg_err pdp_rollout_create(pdp_rollout **out, const tg_config *cfg,
                          pdp_store *st, char *err, size_t errlen);

/* pdp_rollout_destroy stops the watcher (if started) and drops the
 * rollout's reference to the bundle (decisions still holding one keep it
 * alive). NULL is a no-op. */
void pdp_rollout_destroy(pdp_rollout *ro);

/* pdp_rollout_acquire returns the bundle in effect with a reference the
 * caller releases with pdp_bundle_unref once its decision is done, or NULL
 * when no bundle is configured (ro may be NULL). Never blocks on a reload. */
pdp_bundle *pdp_rollout_acquire(pdp_rollout *ro);

/* pdp_rollout_revision is the revision in effect (0: none). */
uint64_t pdp_rollout_revision(pdp_rollout *ro);

/* pdp_rollout_reload tries the bundle directory's current content as
 * described at the top, and fills *res. Blocks while another reload runs.
 * Returns the outcome (also in res->outcome). */
pdp_reload_outcome pdp_rollout_reload(pdp_rollout *ro, pdp_activation_how how,
                                      bool               allow_rollback,
                                      pdp_reload_result *res);

/* pdp_rollout_reload_by is pdp_rollout_reload on behalf of actor (NULL:
 * named by how: "signal:SIGHUP", "file-watch"), as the policy history
 * records it: an activation with the bundle's files, or a refusal with
 * the candidate and why. */
pdp_reload_outcome pdp_rollout_reload_by(pdp_rollout *ro,
                                         pdp_activation_how how,
                                         const char        *actor,
                                         bool               allow_rollback,
                                         pdp_reload_result *res);

/* pdp_rollout_watch_start watches the bundle directory (inotify; and its
 * parent, so replacing the directory or re-pointing a symlink to it is
 * seen) on a thread of its own and reloads with how=watch once changes
 * have settled for PDP_ROLLOUT_DEBOUNCE_MS. Files the loader ignores
 * (pdp_bundle_ignores_name: dotfiles, *~, *.swp, *.tmp ...) do not
 * trigger. No-op without a bundle. */
tg_err pdp_rollout_watch_start(pdp_rollout *ro, char *err, size_t errlen);

/* pdp_rollout_metrics appends Prometheus text: the revision in effect,
 * reloads by result and the last reload's duration. */
void pdp_rollout_metrics(pdp_rollout *ro, tg_buf *out);

/* pdp_activation_how_name: "start", "sighup", "command", "watch". */
const char *pdp_activation_how_name(pdp_activation_how how);

#endif
