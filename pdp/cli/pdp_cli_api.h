/* pdp_cli_api.h - the tollgate-pdp commands that are admin API requests
 * (tenants create|show|update, budgets, ratelimits, audit list) and every
 * key, tenant and spend command when --url (or TOLLGATE_ADMIN_URL) names a
 * running PDP's admin listener; plus admin-tokens, the local admin token
 * serve writes, and the HTTP client they share. Called by pdp_cli; not
 * thread-safe. */
#ifndef PDP_CLI_API_H
#define PDP_CLI_API_H

#include <stdbool.h>
#include <stdio.h>

#include "pdp_store.h"
#include "tg_buf.h"


/* pdp_cli_api_run runs argv (argv[1] the command) when it is one of the
 * commands above and sets *handled; otherwise returns 0 with *handled
 * false. Returns the exit status. */
int pdp_cli_api_run(int argc, char **argv, FILE *out, FILE *err,
                    bool *handled);

/* pdp_cli_api_subcommands writes the subcommands of command group cmd
 * ("keys": "create, list, show, ...") into buf; returns how many (0: not a
 * group of the admin commands). */
size_t pdp_cli_api_subcommands(const char *cmd, char *buf, size_t cap);

/* pdp_cli_http sends method url with an optional bearer token and JSON
 * body (NULL: none) and reads the answer into resp. Returns the HTTP
 * status, or -1 with why in errbuf (no connection, timeout). Redirects are
 * not followed. */
int pdp_cli_http(const char *method, const char *url, const char *token,
                 const char *body, tg_buf *resp, char *errbuf, size_t errlen);

/* pdp_cli_token_read reads <state_dir>/admin.token into buf; false when
 * there is none. */
bool pdp_cli_token_read(const char *state_dir, char *buf, size_t cap);

/* pdp_cli_admin_base writes "http://host:port" for pdp.admin_listen
 * (a wildcard address becomes loopback); false with why in err when it
 * cannot be reached from here (port 0, not host:port). */
bool pdp_cli_admin_base(const char *listen, char *buf, size_t cap, char *err,
                        size_t errlen);

#endif
