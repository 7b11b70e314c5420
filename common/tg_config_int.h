/* tg_config_int.h - what the config's readers share: the parsed document
 * and the config file's directory, which relative paths resolve against. */
#ifndef TG_CONFIG_INT_H
#define TG_CONFIG_INT_H

#include "tg_config.h"
#include "tg_json.h"

typedef struct tg_config_priv {
    tg_json_doc *doc;
    char        *dir;
} tg_config_priv;

/* tg_config_path: in, resolved against the config's directory. Owns:
 * *out. */
tg_err tg_config_path(const tg_config_priv *p, const char *in, char **out);

/* tg_config_hostport_ok: s is "host:port" with a port from 1 to 65535. */
bool tg_config_hostport_ok(const char *s);

/* tg_config_is_secret_ref: s is "${NAME}" with NAME [A-Za-z0-9_]+. */
bool tg_config_is_secret_ref(const char *s);

/* The network settings (tg_config_net.c): pdp.listen, pdp.tls,
 * pdp.allow_plain_tcp, pdp.probe_listen, pdp.socket_volume; and
 * dataplane.pdp_url and dataplane.pdp_tls. */
tg_err tg_config_pdp_net(tg_config_priv *p, const cJSON *sec,
                         tg_pdp_config *c, char *err, size_t errlen);
/* tg_config_upstream reads pdp.upstream (tg_config_net.c); with one,
 * pdp.bundle and pdp.pricing_file must be absent (they come from the
 * upstream) and are set to the replica's copies under state_dir. */
tg_err tg_config_upstream(tg_config_priv *p, const cJSON *sec,
                          tg_pdp_config *c, char *err, size_t errlen);
/* tg_config_ha reads pdp.ha (tg_config_net.c); not with pdp.upstream. */
tg_err tg_config_ha(tg_config_priv *p, const cJSON *sec, tg_pdp_config *c,
                    char *err, size_t errlen);

tg_err tg_config_dp_net(tg_config_priv *p, const cJSON *sec, tg_dp_config *c,
                        char *err, size_t errlen);
void   tg_config_tls_free(tg_tls_files *t);

/* tg_config_volumes reads "private_volumes" and gives them to
 * tg_trust_private_volumes. */
tg_err tg_config_volumes(tg_config *cfg, tg_config_priv *p, const cJSON *root,
                         char *err, size_t errlen);

/* tg_config_bedrock reads a deployment's Bedrock keys (region,
 * aws_access_key_id, aws_secret_access_key, aws_session_token): required
 * (the session token optional) for provider "bedrock", refused for any
 * other; sets the default api_base from the region when none is written.
 * tg_config_bedrock.c. */
tg_err tg_config_bedrock(const tg_json_doc *d, const cJSON *o, const char *ctx,
                         tg_deployment *dep, char *err, size_t errlen);

/* tg_config_responses reads pdp.responses (tg_config_resp.c). */
tg_err tg_config_responses(const tg_json_doc *d, const cJSON *pdp,
                           tg_pdp_config *c, char *err, size_t errlen);

#endif
