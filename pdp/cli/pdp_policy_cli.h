/* pdp_policy_cli.h - the policy author's commands of tollgate-pdp:
 * `check DIR`, `test DIR` and `eval --bundle DIR --input FILE`. pdp_cli
 * dispatches to them; tests call them directly. Not thread-safe (it may
 * read TOLLGATE_CONFIG from the environment). */
#ifndef PDP_POLICY_CLI_H
#define PDP_POLICY_CLI_H

#include <stdio.h>

#include "tg_config.h"

/* pdp_policy_cli runs one policy command. cmd is "check", "test" or "eval";
 * argv holds the words after it (argv[0] is the first option or operand,
 * not the command), argc their count. Results go to out, messages to err.
 * Returns the exit status: 0 ok, 1 the bundle does not compile or a test
 * failed, 2 a usage error or a bad config/input file. */
int pdp_policy_cli(const char *cmd, int argc, char **argv, FILE *out,
                   FILE *err);

#endif
