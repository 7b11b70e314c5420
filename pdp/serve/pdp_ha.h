/* pdp_ha.h - a central PDP's high availability (pdp.ha), the process
 * side: which role this PDP takes at start, and a standby's life until it
 * is promoted. The active side (holding replies until the standby has the
 * write, serving its pulls) is the server's: pdp_server_ha.c; the store's
 * log is pdp_txlog.h.
 *
 * Which role, at start: a peer that answers with a higher HA epoch was
 * promoted over this PDP, which then follows it (role standby) or refuses
 * to start (role active: two actives would count everything twice); a
 * store promoted before stays active whatever the configured role; a
 * standby's store is never made active but by `tollgate-pdp promote`. */
#ifndef PDP_HA_H
#define PDP_HA_H

#include <signal.h>
#include <stdio.h>

#include "pdp_store.h"
#include "tg_config.h"

/* pdp_ha_begin opens the store (*st) of a PDP with pdp.ha and settles its
 * role; a standby follows its peer here until it is promoted. Returns 0
 * when this PDP is to serve as the active one (the caller goes on with
 * *st), PDP_HA_STOPPED when SIGINT or SIGTERM stopped the standby (a clean
 * stop), else the exit code (a configuration this PDP must not start
 * with: 2, said on err). set holds the blocked signals that stop it. */
#define PDP_HA_STOPPED (-1)
int pdp_ha_begin(const tg_config *cfg, pdp_store **st, const sigset_t *set,
                 char *msg, size_t msglen, FILE *err);

/* pdp_ha_none stops the transaction log of a store that was one of a
 * pair (pdp.ha removed from its config): role none, the log dropped. */
void pdp_ha_none(pdp_store *st);

#endif
