/* pdp_cli.h - the tollgate-pdp command line: serve, reload, policy
 * history, the admin commands (pdp_cli_api.h: through the admin API), the
 * policy engine's check|test|eval (pdp_policy_cli.h) and state check
 * (pdp_state_cli.h).
 * Called by main() (and by tests, for
 * everything but serve, which blocks SIGINT/SIGTERM/SIGHUP process-wide and
 * waits for them). Not thread-safe. */
#ifndef PDP_CLI_H
#define PDP_CLI_H

#include <stdio.h>

/* Exit statuses. */
#define PDP_EXIT_OK 0
#define PDP_EXIT_FAIL 1  /* the operation failed (unknown id, store error) */
#define PDP_EXIT_USAGE 2 /* bad flags or a bad config file */

/* pdp_cli_run runs one command line (argv[0] is the program name) and
 * returns its exit status. Results go to out, messages to err. */
int pdp_cli_run(int argc, char **argv, FILE *out, FILE *err);

#endif
