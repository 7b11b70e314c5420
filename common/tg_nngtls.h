/* tg_nngtls.h - mutual TLS for the link between data planes and a PDP
 * (nng's tls+tcp://, mbedTLS underneath). Both sides present a
 * certificate; each checks the other's against the configured CA, and a
 * data plane also checks the PDP's name. Certificates are files a
 * Kubernetes Secret or cert-manager replaces in place: tg_tls_watch tells
 * when their content changed, so the owner can build a new config for new
 * connections without a restart. */
#ifndef TG_NNGTLS_H
#define TG_NNGTLS_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "tg_config.h"
#include "tg_err.h"

/* tg_tls_config builds a config from f: as the server (the PDP), client
 * certificates are required and must chain to f->ca_file; as a client,
 * the server's certificate must chain to f->ca_file and name
 * f->server_name (NULL: host, the host of the URL dialled). On error,
 * err says which file and why. Owns: *out (nng_tls_config_free). */
tg_err tg_tls_config(nng_tls_config **out, bool server, const tg_tls_files *f,
                     const char *host, char *err, size_t errlen);

/* tg_tls_read_pem reads a PEM file whole (text, 1 byte to 1 MiB),
 * NUL-terminated; *len (may be NULL) is its length. On error err names
 * the file and what is wrong. Owns: *out (wipe a key before free). */
tg_err tg_tls_read_pem(const char *path, char **out, size_t *len, char *err,
                       size_t errlen);

/* tg_tls_url_host copies the host of a tls+tcp://host:port URL into buf. */
void tg_tls_url_host(const char *url, char *buf, size_t cap);

/* tg_tls_watch polls f's files every interval_ms and calls cb(arg) on its
 * own thread when their content changed (and settled: the same twice in a
 * row, so a half-written pair is not loaded). tick (NULL: none) is called
 * on that thread every interval; f may be NULL (tick only). */
typedef struct tg_tls_watch tg_tls_watch;
tg_err tg_tls_watch_start(tg_tls_watch **out, const tg_tls_files *f,
                          int64_t interval_ms, void (*cb)(void *arg),
                          void (*tick)(void *arg), void *arg);
/* tg_tls_watch_stop joins the thread (cb is not running on return) and
 * frees. NULL-safe. */
void tg_tls_watch_stop(tg_tls_watch *w);

#endif
