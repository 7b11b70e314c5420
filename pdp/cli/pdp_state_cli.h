/* pdp_state_cli.h - `tollgate-pdp state check`: reads every record of the
 * PDP's state directory (pdp.state_dir), or with --spool DIR of a data
 * plane's usage spool, without writing to it (pdp_store_check,
 * tg_lmdb_read_all), and says per database what reads and what does not.
 * pdp_cli dispatches to it; tests call it directly. Not thread-safe (it
 * may read TOLLGATE_CONFIG from the environment). */
#ifndef PDP_STATE_CLI_H
#define PDP_STATE_CLI_H

#include <stdio.h>

/* pdp_state_cli runs `state SUBCOMMAND ...`: argv holds the words after
 * "state" (argv[0] is the subcommand), argc their count. Results go to
 * out, messages to err. Returns the exit status: 0 every record reads,
 * 1 something is damaged or there is nothing to check, 2 a usage error or
 * a bad config file. */
int pdp_state_cli(int argc, char **argv, FILE *out, FILE *err);

#endif
