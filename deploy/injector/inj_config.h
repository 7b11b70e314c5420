/* inj_config.h - the injector's own JSON config (not tollgate.json): where
 * it listens, its serving certificate, and what it puts into a pod. Every
 * key is checked; an unknown key is an error with file:line:col. Immutable
 * after load: thread-safe to read. Called by inj_main and the tests. */
#ifndef INJ_CONFIG_H
#define INJ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

/* What one injected container asks for: requests.cpu, and requests.memory
 * = limits.memory. */
typedef struct inj_resources {
    const char *cpu;
    const char *memory;
} inj_resources;

typedef struct inj_config {
    const char   *path;      /* NULL: built-in defaults */
    const char   *listen;    /* "host:port" */
    char         *cert_file; /* resolved against the file's directory */
    char         *key_file;
    int64_t       cert_poll_s; /* how often the cert/key content is hashed */
    bool          inject_by_default;
    bool          log_json;
    const char   *own_namespace;
    const char   *image_pdp;
    const char   *image_dataplane;
    const char   *image_pull_policy;
    const char   *sidecar_config_map; /* tollgate.json for pdp-mode sidecar */
    const char   *central_config_map; /* ... for pdp-mode central */
    const char   *pricing_config_map; /* pricing.json, both modes */
    const char   *central_pdp_url;    /* NULL: not set in the pod */
    const char   *tls_secret;         /* client cert, central mode */
    const char   *provider_keys_secret;
    const char   *default_bundle;
    inj_resources res_pdp;
    inj_resources res_dataplane;
    void         *priv; /* the parsed document the strings borrow from */
} inj_config;

/* inj_config_defaults fills cfg with the built-in defaults (the values
 * README.md lists); nothing to free but inj_config_fini is safe. */
void inj_config_defaults(inj_config *cfg);

/* inj_config_load reads path over the defaults. On error writes
 * "file:line:col: what is wrong" into err. Owns: the strings in *cfg,
 * free with inj_config_fini. */
tg_err inj_config_load(inj_config *cfg, const char *path, char *err,
                       size_t errlen);

/* inj_config_fini frees what inj_config_load allocated; NULL-safe. */
void inj_config_fini(inj_config *cfg);

/* inj_quantity_ok: s is a Kubernetes resource quantity this injector
 * accepts: an unsigned decimal number ("1", "0.5", ".5") and at most one
 * suffix (Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or e/E and an exponent). */
bool inj_quantity_ok(const char *s);

/* inj_dns_name_ok: s is a DNS-1123 subdomain (what names a ConfigMap or
 * a Secret): at most 253 of a-z 0-9 - ., alphanumeric at both ends. */
bool inj_dns_name_ok(const char *s);

#endif
