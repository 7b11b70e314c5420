/* tg_config_net.c - how the data plane and the PDP reach each other. An
 * ipc:// socket is guarded by the file system and the peer's uid; a
 * tls+tcp:// link by mutual TLS (both sides present certificates of one
 * CA); plain tcp:// carries forgeable decisions and usage, so it is
 * accepted only to a loopback address and only when pdp.allow_plain_tcp
 * says so. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_config_int.h"
#include "tg_trust.h"

#define TG_CONFIG_URL_HELP                                                     \
    "ipc:///absolute/path (PDP beside the data plane) or "                     \
    "tls+tcp://host:port (mutual TLS, with pdp.tls / dataplane.pdp_tls)"

tg_url_kind
tg_config_url_kind_of(const char *url)
{
    if (strncmp(url, "tls+tcp://", 10) == 0) {
        return TG_URL_TLS;
    }
    if (strncmp(url, "tcp://", 6) == 0) {
        return TG_URL_TCP_LOOP;
    }
    return TG_URL_IPC;
}

/* tg_config_loopback: the host of a tcp://host:port URL is a loopback
 * address: an IPv4 literal in 127/8, [::1] or localhost (a name such as
 * 127.example.com is not: DNS decides where it goes). */
static bool
tg_config_loopback(const char *url)
{
    const char    *h     = url + 6;
    const char    *colon = strrchr(h, ':');
    char           host[64];
    struct in_addr a;

    if (colon == NULL || (size_t)(colon - h) >= sizeof(host)) {
        return false;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - h), h);
    if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0) {
        return true;
    }
    return inet_pton(AF_INET, host, &a) == 1 &&
           (ntohl(a.s_addr) >> 24) == 127;
}

/* tg_config_url checks one nng URL of what (pdp.listen or
 * dataplane.pdp_url); plain says whether tcp:// to loopback is allowed. */
static tg_err
tg_config_url(const tg_json_doc *d, const cJSON *u, const char *what,
              bool plain, char *err, size_t errlen)
{
    const char *s = cJSON_IsString(u) ? u->valuestring : "";

    if (strncmp(s, "ipc://", 6) == 0 && s[6] == '/') {
        return TG_OK;
    }
    if (strncmp(s, "tls+tcp://", 10) == 0 && tg_config_hostport_ok(s + 10)) {
        return TG_OK;
    }
    if (strncmp(s, "tcp://", 6) == 0 && tg_config_hostport_ok(s + 6)) {
        if (plain && tg_config_loopback(s)) {
            return TG_OK;
        }
        return tg_json_errf(
            d, u, err, errlen,
            "%s: %s is plain tcp://, which has no authentication: anyone "
            "who reaches the port could forge decisions and usage. Use "
            "tls+tcp:// with pdp.tls (and dataplane.pdp_tls); plain tcp:// "
            "is accepted only to a loopback address with "
            "\"pdp\": {\"allow_plain_tcp\": true}",
            what, s);
    }
    return tg_json_errf(d, u, err, errlen, "%s: expected %s", what,
                        TG_CONFIG_URL_HELP);
}

void
tg_config_tls_free(tg_tls_files *t)
{
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    memset(t, 0, sizeof(*t));
}

/* tg_config_tls reads a TLS object: cert_file, key_file and the CA file
 * (named ca_key: "client_ca_file" for pdp.tls, "ca_file" for
 * dataplane.pdp_tls and for pdp.admin_tls, where it is optional: what the
 * command line trusts), plus server_name for a data plane. */
static tg_err
tg_config_tls(tg_config_priv *p, const cJSON *o, const char *what,
              const char *ca_key, tg_tls_files *t, char *err, size_t errlen)
{
    const char *keys[] = {"cert_file", "key_file", ca_key, "server_name",
                          NULL};
    const char *cert = NULL, *key = NULL, *ca = NULL;
    bool        admin = strcmp(what, "pdp.admin_tls") == 0;
    tg_err      rv;

    if (strcmp(ca_key, "client_ca_file") == 0 || admin) {
        keys[3] = NULL; /* the PDP names no server */
    }
    if (!cJSON_IsObject(o)) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "%s: expected an object {\"cert_file\": ..., "
                            "\"key_file\": ..., \"%s\": ...}",
                            what, ca_key);
    }
    if ((rv = tg_json_only_keys(p->doc, o, what, keys, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(p->doc, o, what, "cert_file", true, &cert,
                                 err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, o, what, "key_file", true, &key, err,
                                 errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, o, what, ca_key, !admin, &ca, err,
                                 errlen)) != TG_OK ||
        (keys[3] != NULL &&
         (rv = tg_json_get_string(p->doc, o, what, "server_name", false,
                                  &t->server_name, err, errlen)) != TG_OK)) {
        return rv;
    }
    if ((rv = tg_config_path(p, cert, &t->cert_file)) != TG_OK ||
        (rv = tg_config_path(p, key, &t->key_file)) != TG_OK ||
        (ca != NULL && (rv = tg_config_path(p, ca, &t->ca_file)) != TG_OK)) {
        return rv;
    }
    return TG_OK;
}

/* tg_config_pdp_listen reads pdp.listen; *tls: a listener is tls+tcp://. */
static tg_err
tg_config_pdp_listen(tg_config_priv *p, const cJSON *sec, tg_pdp_config *c,
                     bool *tls, char *err, size_t errlen)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(sec, "listen");
    tg_err       rv;

    if (l == NULL) {
        return tg_json_errf(
            p->doc, sec, err, errlen,
            "pdp: missing required key \"listen\" (a list of "
            "nng URLs such as \"ipc:///tmp/tollgate/pdp.sock\")");
    }
    if (!cJSON_IsArray(l) || cJSON_GetArraySize(l) == 0 ||
        cJSON_GetArraySize(l) > TG_CONFIG_MAX_LISTEN) {
        return tg_json_errf(p->doc, l, err, errlen,
                            "pdp.listen: expected a list of 1 to %d nng URLs",
                            TG_CONFIG_MAX_LISTEN);
    }
    for (const cJSON *u = l->child; u != NULL; u = u->next) {
        if ((rv = tg_config_url(p->doc, u, "pdp.listen", c->allow_plain_tcp,
                                err, errlen)) != TG_OK) {
            return rv;
        }
        *tls = *tls || tg_config_url_kind_of(u->valuestring) == TG_URL_TLS;
        c->listen[c->n_listen++] = u->valuestring;
    }
    return TG_OK;
}

tg_err
tg_config_pdp_net(tg_config_priv *p, const cJSON *sec, tg_pdp_config *c,
                  char *err, size_t errlen)
{
    const cJSON *t   = cJSON_GetObjectItemCaseSensitive(sec, "tls");
    bool         tls = false;
    tg_err       rv;

    if ((rv = tg_json_get_bool(p->doc, sec, "pdp", "allow_plain_tcp", false,
                               &c->allow_plain_tcp, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, sec, "pdp", "probe_listen", false,
                                 &c->probe_listen, err, errlen)) != TG_OK ||
        (rv = tg_config_pdp_listen(p, sec, c, &tls, err, errlen)) != TG_OK) {
        return rv;
    }
    if (c->probe_listen != NULL && !tg_config_hostport_ok(c->probe_listen)) {
        return tg_json_errf(p->doc, cJSON_GetObjectItem(sec, "probe_listen"),
                            err, errlen,
                            "pdp.probe_listen: expected \"host:port\", e.g. "
                            "\"0.0.0.0:9091\"");
    }
    if ((t = cJSON_GetObjectItemCaseSensitive(sec, "admin_tls")) != NULL &&
        (rv = tg_config_tls(p, t, "pdp.admin_tls", "ca_file", &c->admin_tls,
                            err, errlen)) != TG_OK) {
        return rv;
    }
    if ((t = cJSON_GetObjectItemCaseSensitive(sec, "tls")) != NULL) {
        return tg_config_tls(p, t, "pdp.tls", "client_ca_file", &c->tls, err,
                             errlen);
    }
    if (tls) {
        return tg_json_errf(
            p->doc, cJSON_GetObjectItem(sec, "listen"), err, errlen,
            "pdp.listen: a tls+tcp:// listener needs \"tls\": {\"cert_file\": "
            "..., \"key_file\": ..., \"client_ca_file\": ...} in pdp (the "
            "PDP's certificate and the CA data planes' certificates must "
            "chain to)");
    }
    return TG_OK;
}

/* tg_config_upstream_urls reads pdp.upstream.url: one URL, or a list of
 * up to TG_CONFIG_MAX_UPSTREAMS (a central PDP and its standby). */
static tg_err
tg_config_upstream_urls(tg_config_priv *p, const cJSON *o, tg_pdp_config *c,
                        char *err, size_t errlen)
{
    const cJSON        *u  = cJSON_GetObjectItemCaseSensitive(o, "url");
    tg_upstream_config *up = &c->upstream;
    const cJSON        *e;
    tg_err              rv;

    if (cJSON_IsArray(u)) {
        int n = cJSON_GetArraySize(u);
        if (n < 1 || n > TG_CONFIG_MAX_UPSTREAMS) {
            return tg_json_errf(p->doc, u, err, errlen,
                                "pdp.upstream.url: expected 1 to %d URLs (a "
                                "central PDP and its standby)",
                                TG_CONFIG_MAX_UPSTREAMS);
        }
        cJSON_ArrayForEach(e, u) {
            if ((rv = tg_config_url(p->doc, e, "pdp.upstream.url",
                                    c->allow_plain_tcp, err, errlen)) !=
                TG_OK) {
                return rv;
            }
            up->urls[up->n_urls++] = e->valuestring;
        }
    } else {
        if ((rv = tg_json_get_string(p->doc, o, "pdp.upstream", "url", true,
                                     &up->url, err, errlen)) != TG_OK ||
            (rv = tg_config_url(p->doc, u, "pdp.upstream.url",
                                c->allow_plain_tcp, err, errlen)) != TG_OK) {
            return rv;
        }
        up->urls[up->n_urls++] = up->url;
    }
    for (size_t i = 0; i < up->n_urls; i++) {
        if (tg_config_url_kind_of(up->urls[i]) == TG_URL_IPC) {
            return tg_json_errf(p->doc, u, err, errlen,
                                "pdp.upstream.url: expected tls+tcp://host:port "
                                "(or tcp:// to loopback with allow_plain_tcp)");
        }
        if (i > 0 && tg_config_url_kind_of(up->urls[i]) !=
                         tg_config_url_kind_of(up->urls[0])) {
            return tg_json_errf(p->doc, u, err, errlen,
                                "pdp.upstream.url: mixes tls+tcp:// and "
                                "tcp://; use one kind for every URL");
        }
    }
    up->url = up->urls[0];
    return TG_OK;
}

tg_err
tg_config_upstream(tg_config_priv *p, const cJSON *sec, tg_pdp_config *c,
                   char *err, size_t errlen)
{
    static const char *const keys[] = {
        "url",         "tls",         "node_id",    "on_upstream_error",
        "emergency_allowance_usd",    "lease_ttl_s", "lease_use_s",
        "timeout_ms",  "sync_interval_ms",           NULL};
    const cJSON        *o = cJSON_GetObjectItemCaseSensitive(sec, "upstream");
    const cJSON        *t;
    tg_upstream_config *u  = &c->upstream;
    const char         *oe = "deny";
    double              usd = 0;
    tg_err              rv;

    u->lease_ttl_s      = 60;
    u->lease_use_s      = 10;
    u->timeout_ms       = 500;
    u->sync_interval_ms = 100;
    if (o == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(o)) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp.upstream: expected an object {\"url\": "
                            "\"tls+tcp://central:7070\", \"tls\": {...}}");
    }
    if ((rv = tg_json_only_keys(p->doc, o, "pdp.upstream", keys, err,
                                errlen)) != TG_OK ||
        (rv = tg_config_upstream_urls(p, o, c, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, o, "pdp.upstream", "node_id", false,
                                 &u->node_id, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, o, "pdp.upstream",
                                 "on_upstream_error", false, &oe, err,
                                 errlen)) != TG_OK ||
        (rv = tg_json_get_int(p->doc, o, "pdp.upstream", "lease_ttl_s", false,
                              2, 3600, &u->lease_ttl_s, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(p->doc, o, "pdp.upstream", "lease_use_s", false,
                              1, 3600, &u->lease_use_s, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(p->doc, o, "pdp.upstream", "timeout_ms", false,
                              10, 60000, &u->timeout_ms, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(p->doc, o, "pdp.upstream", "sync_interval_ms",
                              false, 10, 60000, &u->sync_interval_ms, err,
                              errlen)) != TG_OK) {
        return rv;
    }
    if ((t = cJSON_GetObjectItemCaseSensitive(
             o, "emergency_allowance_usd")) != NULL) {
        usd = cJSON_GetNumberValue(t);
        if (!cJSON_IsNumber(t) || !(usd >= 0.0) || usd > 1e6) {
            return tg_json_errf(p->doc, t, err, errlen,
                                "pdp.upstream.emergency_allowance_usd: "
                                "expected USD from 0 to 1000000, e.g. 5");
        }
    }
    if (strcmp(oe, "deny") != 0 && strcmp(oe, "allow") != 0) {
        return tg_json_errf(p->doc, cJSON_GetObjectItem(o, "on_upstream_error"),
                            err, errlen,
                            "pdp.upstream.on_upstream_error: expected "
                            "\"deny\" or \"allow\"");
    }
    u->on_error_allow  = strcmp(oe, "allow") == 0;
    u->emergency_micro = (int64_t)(usd * 1e6 + 0.5);
    if (u->lease_use_s * 2 > u->lease_ttl_s) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp.upstream: lease_use_s (%lld) must be at most "
                            "half of lease_ttl_s (%lld), so a lease goes back "
                            "before the central PDP frees it",
                            (long long)u->lease_use_s,
                            (long long)u->lease_ttl_s);
    }
    if ((t = cJSON_GetObjectItemCaseSensitive(o, "tls")) != NULL) {
        if ((rv = tg_config_tls(p, t, "pdp.upstream.tls", "ca_file", &u->tls,
                                err, errlen)) != TG_OK) {
            return rv;
        }
    } else if (tg_config_url_kind_of(u->url) == TG_URL_TLS) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp.upstream: a tls+tcp:// upstream needs "
                            "\"tls\": {\"cert_file\": ..., \"key_file\": "
                            "..., \"ca_file\": ...}");
    }
    if (c->bundle_dir != NULL || c->pricing_file != NULL) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp: with \"upstream\", the bundle and pricing "
                            "come from the central PDP; remove \"bundle\" "
                            "and \"pricing_file\"");
    }
    if (asprintf(&c->bundle_dir, "%s/replica/bundle", c->state_dir) < 0 ||
        asprintf(&c->pricing_file, "%s/replica/pricing.json", c->state_dir) <
            0) {
        return TG_ENOMEM;
    }
    return TG_OK;
}

tg_err
tg_config_ha(tg_config_priv *p, const cJSON *sec, tg_pdp_config *c, char *err,
             size_t errlen)
{
    static const char *const keys[] = {"role",           "peer",
                                       "tls",            "ack_timeout_ms",
                                       "on_standby_lost", "timeout_ms",
                                       NULL};
    const cJSON  *o    = cJSON_GetObjectItemCaseSensitive(sec, "ha");
    const cJSON  *t;
    tg_ha_config *h    = &c->ha;
    const char   *role = "active", *lost = "alone";
    tg_err        rv;

    h->ack_timeout_ms = 500;
    h->timeout_ms     = 1000;
    if (o == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(o)) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp.ha: expected an object {\"role\": "
                            "\"active\" or \"standby\", \"peer\": "
                            "\"tls+tcp://other:7070\", \"tls\": {...}}");
    }
    h->on = true;
    if ((rv = tg_json_only_keys(p->doc, o, "pdp.ha", keys, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(p->doc, o, "pdp.ha", "role", false, &role,
                                 err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, o, "pdp.ha", "peer", false, &h->peer,
                                 err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(p->doc, o, "pdp.ha", "on_standby_lost", false,
                                 &lost, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(p->doc, o, "pdp.ha", "ack_timeout_ms", false, 10,
                              60000, &h->ack_timeout_ms, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(p->doc, o, "pdp.ha", "timeout_ms", false, 10,
                              60000, &h->timeout_ms, err, errlen)) != TG_OK) {
        return rv;
    }
    if (strcmp(role, "active") != 0 && strcmp(role, "standby") != 0) {
        return tg_json_errf(p->doc, cJSON_GetObjectItem(o, "role"), err, errlen,
                            "pdp.ha.role: expected \"active\" or "
                            "\"standby\"");
    }
    if (strcmp(lost, "alone") != 0 && strcmp(lost, "refuse") != 0) {
        return tg_json_errf(p->doc, cJSON_GetObjectItem(o, "on_standby_lost"),
                            err, errlen,
                            "pdp.ha.on_standby_lost: expected \"alone\" "
                            "(acknowledge writes without the standby) or "
                            "\"refuse\" (refuse them until it is back)");
    }
    h->standby     = strcmp(role, "standby") == 0;
    h->lost_refuse = strcmp(lost, "refuse") == 0;
    if (h->peer != NULL &&
        ((rv = tg_config_url(p->doc, cJSON_GetObjectItem(o, "peer"),
                             "pdp.ha.peer", c->allow_plain_tcp, err,
                             errlen)) != TG_OK)) {
        return rv;
    }
    if (h->peer != NULL && tg_config_url_kind_of(h->peer) == TG_URL_IPC) {
        return tg_json_errf(p->doc, cJSON_GetObjectItem(o, "peer"), err,
                            errlen,
                            "pdp.ha.peer: expected tls+tcp://host:port (or "
                            "tcp:// to loopback with allow_plain_tcp)");
    }
    if (h->standby && h->peer == NULL) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp.ha: a standby needs \"peer\": the active "
                            "PDP's listener it follows");
    }
    if ((t = cJSON_GetObjectItemCaseSensitive(o, "tls")) != NULL) {
        if ((rv = tg_config_tls(p, t, "pdp.ha.tls", "ca_file", &h->tls, err,
                                errlen)) != TG_OK) {
            return rv;
        }
    } else if (h->peer != NULL &&
               tg_config_url_kind_of(h->peer) == TG_URL_TLS) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp.ha: a tls+tcp:// peer needs \"tls\": "
                            "{\"cert_file\": ..., \"key_file\": ..., "
                            "\"ca_file\": ...}");
    }
    if (c->upstream.url != NULL) {
        return tg_json_errf(p->doc, o, err, errlen,
                            "pdp: \"ha\" is for a central PDP and its "
                            "standby; a sidecar (\"upstream\") lists the "
                            "central PDP and its standby in upstream.url "
                            "instead");
    }
    return TG_OK;
}

tg_err
tg_config_dp_net(tg_config_priv *p, const cJSON *sec, tg_dp_config *c,
                 char *err, size_t errlen)
{
    const cJSON *u   = cJSON_GetObjectItemCaseSensitive(sec, "pdp_url");
    const cJSON *t   = cJSON_GetObjectItemCaseSensitive(sec, "pdp_tls");
    const cJSON *pdp = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(tg_json_doc_root(p->doc), "pdp"),
        "allow_plain_tcp");
    bool   plain = cJSON_IsTrue(pdp);
    bool   tls   = false;
    tg_err rv;

    if (u == NULL) {
        return tg_json_errf(p->doc, sec, err, errlen,
                            "dataplane: missing required key \"pdp_url\" (%s)",
                            TG_CONFIG_URL_HELP);
    }
    if (cJSON_IsArray(u) && (cJSON_GetArraySize(u) < 1 ||
                             cJSON_GetArraySize(u) > TG_CONFIG_MAX_PDP_URLS)) {
        return tg_json_errf(p->doc, u, err, errlen,
                            "dataplane.pdp_url: expected a URL or a list of 1 "
                            "to %d (the first preferred, the others used "
                            "while it is unreachable)",
                            TG_CONFIG_MAX_PDP_URLS);
    }
    for (const cJSON *e = cJSON_IsArray(u) ? u->child : u; e != NULL;
         e = cJSON_IsArray(u) ? e->next : NULL) {
        if ((rv = tg_config_url(p->doc, e, "dataplane.pdp_url", plain, err,
                                errlen)) != TG_OK) {
            return rv;
        }
        tls = tls || tg_config_url_kind_of(e->valuestring) == TG_URL_TLS;
        c->pdp_urls[c->n_pdp_urls++] = e->valuestring;
    }
    c->pdp_url = c->pdp_urls[0];
    if (t != NULL) {
        return tg_config_tls(p, t, "dataplane.pdp_tls", "ca_file",
                             &c->pdp_tls, err, errlen);
    }
    if (tls) {
        return tg_json_errf(
            p->doc, u, err, errlen,
            "dataplane.pdp_url: a tls+tcp:// PDP needs \"pdp_tls\": "
            "{\"cert_file\": ..., \"key_file\": ..., \"ca_file\": ...} in "
            "dataplane (this data plane's client certificate and the CA the "
            "PDP's certificate chains to)");
    }
    return TG_OK;
}

tg_err
tg_config_volumes(tg_config *cfg, tg_config_priv *p, const cJSON *root,
                  char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "private_volumes");
    tg_err       rv;

    if (v == NULL) {
        tg_trust_private_volumes(NULL, 0);
        return TG_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > TG_CONFIG_MAX_VOLUMES) {
        return tg_json_errf(p->doc, v, err, errlen,
                            "private_volumes: expected a list of at most %d "
                            "absolute paths, e.g. [\"/run/tollgate\", "
                            "\"/var/lib/tollgate\"]",
                            TG_CONFIG_MAX_VOLUMES);
    }
    for (const cJSON *e = v->child; e != NULL; e = e->next) {
        if (!cJSON_IsString(e) || e->valuestring[0] != '/' ||
            strcmp(e->valuestring, "/") == 0) {
            return tg_json_errf(p->doc, e, err, errlen,
                                "private_volumes: expected an absolute path "
                                "other than / (a volume only this pod's "
                                "Tollgate containers mount)");
        }
        if ((rv = tg_config_path(p, e->valuestring,
                                 &cfg->private_volumes[cfg->n_private_volumes])) !=
            TG_OK) {
            return rv;
        }
        cfg->n_private_volumes++;
    }
    tg_trust_private_volumes((const char *const *)cfg->private_volumes,
                             cfg->n_private_volumes);
    return TG_OK;
}
