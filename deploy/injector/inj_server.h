/* inj_server.h - the webhook over HTTPS (libmicrohttpd with GnuTLS):
 * POST /mutate[?default=inject], GET /healthz and /readyz. A watcher
 * thread hashes the cert and key files every cert_poll_s seconds; on a
 * change to a valid pair it starts a new daemon on the same listening
 * socket and stops the old one (after its requests finish), so no
 * connection is refused during a reload; an invalid new pair keeps the old
 * one and is logged. Not thread-safe: one thread starts and stops it. */
#ifndef INJ_SERVER_H
#define INJ_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "inj_config.h"
#include "tg_err.h"

typedef struct inj_server inj_server;

/* inj_server_start listens on cfg->listen with cfg->cert_file/key_file
 * (both required). On error writes why into err. Borrows: cfg until
 * inj_server_stop. Owns: *out, free with inj_server_stop. */
tg_err inj_server_start(inj_server **out, const inj_config *cfg, char *err,
                        size_t errlen);

/* inj_server_port is the bound TCP port (useful with port 0). */
uint16_t inj_server_port(const inj_server *s);

/* inj_server_reloads counts certificate reloads done so far. */
unsigned inj_server_reloads(inj_server *s);

/* inj_server_stop stops the watcher, then the daemon (waiting for the
 * requests in flight), and frees s. NULL-safe. */
void inj_server_stop(inj_server *s);

#endif
