/* pdp_cli_http.h - how the command line reaches a running PDP: the HTTP
 * client (libcurl, one easy handle per request), the admin listener's
 * address from pdp.admin_listen, and the admin tokens it sends (the one
 * serve leaves in the state directory, or one in a file). Not
 * thread-safe (getenv). */
#ifndef PDP_CLI_HTTP_H
#define PDP_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tg_buf.h"
#include "tg_config.h"

/* pdp_cli_http sends method url with an optional bearer token and JSON
 * body (NULL: none) and reads the answer into resp. Returns the HTTP
 * status, or -1 with why in errbuf (no connection, timeout). Redirects are
 * not followed. An https:// URL's certificate must chain to cafile (NULL:
 * $TOLLGATE_ADMIN_CA, else the system's CAs). */
int pdp_cli_http(const char *method, const char *url, const char *token,
                 const char *body, const char *cafile, tg_buf *resp,
                 char *errbuf, size_t errlen);

/* pdp_cli_admin_base writes "http://host:port" (https:// with tls) for
 * pdp.admin_listen (a wildcard address becomes loopback); false with why
 * in err when it cannot be reached from here (port 0, not host:port). */
bool pdp_cli_admin_base(const char *listen, bool tls, char *buf, size_t cap,
                        char *err, size_t errlen);

/* pdp_cli_token_read reads <state_dir>/admin.token into buf; false when
 * there is none. */
bool pdp_cli_token_read(const char *state_dir, char *buf, size_t cap);

/* pdp_cli_token_file reads an admin token from the first line of path into
 * buf (cap bytes): a file keeps the token out of argv, which every local
 * user can read in /proc/PID/cmdline. A file other users may read gets a
 * warning. False, with the reason on err (as command name), when there is
 * no token. */
bool pdp_cli_token_file(FILE *err, const char *name, const char *path,
                        char *buf, size_t cap);

/* Why pdp_cli_running did not get an answer. */
#define PDP_CLI_NO_LISTENER (-1) /* pdp.admin_listen unset or unusable */
#define PDP_CLI_NO_TOKEN (-2)    /* no admin token to send */
#define PDP_CLI_UNREACHABLE (-3) /* nothing answered there */

/* pdp_cli_running sends method path (from "/", with its query) to the
 * admin listener of the PDP serving cfg, with TOLLGATE_ADMIN_TOKEN (when
 * env_token) or else the token serve left in the state directory.
 * Returns the HTTP status (401: the token was refused), or one of the
 * negative reasons above with words in why. base receives the listener's
 * "http://host:port" once known. */
int pdp_cli_running(const tg_config *cfg, bool env_token, const char *method,
                    const char *path, const char *body, tg_buf *resp,
                    char *base, size_t basecap, char *why, size_t whylen);

#endif
