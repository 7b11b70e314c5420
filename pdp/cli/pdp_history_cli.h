/* pdp_history_cli.h - `tollgate-pdp policy show REV` and `policy diff
 * REV1 REV2`: what a revision ran (the files the policy history kept of
 * its activation) and what changed between two, rule by rule and then as a
 * unified diff of each file, so an auditor sees who changed what, when.
 * Read from the state directory of --config. Not thread-safe. */
#ifndef PDP_HISTORY_CLI_H
#define PDP_HISTORY_CLI_H

#include "pdp_cli_flags.h"

/* Each returns the exit status: 0 shown, 1 no such revision (or its files
 * were not kept: activated before this release), 2 a usage error. argv
 * holds the words after the subcommand. */
int pdp_history_show(const pdp_cli_io *io, int argc, char **argv);
int pdp_history_diff(const pdp_cli_io *io, int argc, char **argv);

/* pdp_history_unified writes a unified diff (3 lines of context) of a and
 * b, named name, to f; nothing when they are equal. Exposed for tests. */
void pdp_history_unified(FILE *f, const char *name, const char *a,
                         const char *b);

#endif
