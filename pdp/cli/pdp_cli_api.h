/* pdp_cli_api.h - the tollgate-pdp commands that are admin API requests
 * (tenants, keys, budgets, ratelimits, spend, audit, usage, reservations,
 * lists: the rows of pdp_cli_rows.h), answered by pdp_api_handle in this process
 * against the state directory, or by a running PDP's admin listener when
 * --url (or TOLLGATE_ADMIN_URL) names one. Called by pdp_cli; not
 * thread-safe. */
#ifndef PDP_CLI_API_H
#define PDP_CLI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* pdp_cli_api_run runs argv (argv[1] the command) when it is one of the
 * commands above and sets *handled; otherwise returns 0 with *handled
 * false. Returns the exit status. */
int pdp_cli_api_run(int argc, char **argv, FILE *out, FILE *err, bool *handled);

/* pdp_cli_api_subcommands writes the subcommands of command group cmd
 * ("keys": "create, list, show, ...") into buf; returns how many (0: not a
 * group of the admin commands). */
size_t pdp_cli_api_subcommands(const char *cmd, char *buf, size_t cap);

#endif
