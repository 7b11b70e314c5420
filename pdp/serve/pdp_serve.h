/* pdp_serve.h - the PDP daemon: the store, the policy rollout (and its
 * bundle watcher), the decision server on pdp.listen and the admin
 * listener on pdp.admin_listen, until SIGINT or SIGTERM; SIGHUP reloads
 * the bundle. `tollgate-pdp serve` calls it. It blocks SIGINT, SIGTERM and
 * SIGHUP process-wide and waits for them: one per process. */
#ifndef PDP_SERVE_H
#define PDP_SERVE_H

#include <stdio.h>

#include "tg_config.h"

/* Exit statuses (the CLI's). */
#define PDP_SERVE_OK 0
#define PDP_SERVE_FAIL 1  /* could not start (store, listener) */
#define PDP_SERVE_USAGE 2 /* the pricing file or the bundle is wrong */

/* pdp_serve runs until stopped and returns an exit status; what stopped
 * it from starting is written to err. Borrows cfg until return. */
int pdp_serve(const tg_config *cfg, FILE *err);

#endif
