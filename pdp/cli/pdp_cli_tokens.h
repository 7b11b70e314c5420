/* pdp_cli_tokens.h - `tollgate-pdp admin-tokens create|list|revoke`: the
 * tokens of the admin API, on the state directory only (pdp_tokens.h).
 * pdp_cli dispatches to it; not thread-safe. */
#ifndef PDP_CLI_TOKENS_H
#define PDP_CLI_TOKENS_H

#include <stdio.h>

/* pdp_cli_tokens runs `admin-tokens SUBCOMMAND ...`: argv holds the words
 * after "admin-tokens" (argv[0] is the subcommand), argc their count.
 * Results go to out (a new token alone on its line), messages to err.
 * Returns the exit status. */
int pdp_cli_tokens(int argc, char **argv, FILE *out, FILE *err);

#endif
