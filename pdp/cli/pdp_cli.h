/* pdp_cli.h - the tollgate-pdp command line: serve, reload, policy
 * history, the admin commands (pdp_cli_api.h: through the admin API),
 * admin-tokens (pdp_cli_tokens.h), the policy engine's check|test|eval
 * (pdp_policy_cli.h) and state check (pdp_state_cli.h). Called by main()
 * (and by tests, for everything but serve, which blocks
 * SIGINT/SIGTERM/SIGHUP process-wide and waits for them). Not
 * thread-safe. */
#ifndef PDP_CLI_H
#define PDP_CLI_H

#include <stdio.h>

/* pdp_cli_run runs one command line (argv[0] is the program name) and
 * returns its exit status (PDP_EXIT_*, pdp_cli_flags.h). Results go to
 * out, messages to err. */
int pdp_cli_run(int argc, char **argv, FILE *out, FILE *err);

#endif
