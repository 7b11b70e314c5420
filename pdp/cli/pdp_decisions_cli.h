/* pdp_decisions_cli.h - `tollgate-pdp decisions verify --file EXPORT
 * --public-key PEM`: checks an exported decision log offline, with only
 * the public key (pdp_decisions' verifier), no state directory, no
 * config. The other decisions commands are admin API rows
 * (pdp_cli_rows.c). Not thread-safe. */
#ifndef PDP_DECISIONS_CLI_H
#define PDP_DECISIONS_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* pdp_decisions_cli_offline runs `decisions verify` when argv (the words
 * after "decisions verify") name --file; *handled says whether it did.
 * Exit status: 0 the file verifies, 1 it does not (what failed, naming
 * the record's sequence number, on err), 2 a usage error. */
int pdp_decisions_cli_offline(int argc, char **argv, FILE *out, FILE *err,
                              bool *handled);

#endif
