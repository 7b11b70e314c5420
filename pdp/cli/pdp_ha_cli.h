/* pdp_ha_cli.h - `tollgate-pdp promote`: makes the standby central PDP on
 * a state directory the active one (pdp_ha.h says what that guarantees).
 * pdp_cli dispatches to it. */
#ifndef PDP_HA_CLI_H
#define PDP_HA_CLI_H

#include <stdio.h>

/* pdp_ha_cli runs `promote ...` (argv: the words after "promote"); returns
 * the exit status: 0 promoted, 1 refused or nobody answered, 2 usage. */
int pdp_ha_cli(int argc, char **argv, FILE *out, FILE *err);

#endif
