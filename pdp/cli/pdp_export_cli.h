/* pdp_export_cli.h - `tollgate-pdp export`: the PDP's state as plain files
 * (pdp/migrate/pdp_export.h). pdp_cli dispatches to it; tests call it
 * directly. Not thread-safe (it may read TOLLGATE_CONFIG). */
#ifndef PDP_EXPORT_CLI_H
#define PDP_EXPORT_CLI_H

#include <stdio.h>

/* pdp_export_cli runs `export ...`: argv holds the words after "export".
 * Returns the exit status: 0 exported, 1 failed (said on err), 2 a usage
 * error or a bad config file. */
int pdp_export_cli(int argc, char **argv, FILE *out, FILE *err);

#endif
