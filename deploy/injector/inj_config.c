/* inj_config.c - the injector's config file: defaults, then the file's
 * keys over them, each checked by the tg_json getters (file:line:col). */
#include "inj_config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_json.h"

#define INJ_CONFIG_MAX_BYTES (256 * 1024)

typedef struct inj_config_priv {
    tg_json_doc *doc;
    char        *dir;
} inj_config_priv;

void
inj_config_defaults(inj_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen               = "0.0.0.0:8443";
    cfg->cert_poll_s          = 2;
    cfg->own_namespace        = "tollgate";
    cfg->image_pdp            = "localhost/tollgate-pdp:dev";
    cfg->image_dataplane      = "localhost/tollgate-dataplane:dev";
    cfg->image_pull_policy    = "IfNotPresent";
    cfg->sidecar_config_map   = "tollgate-sidecar-config";
    cfg->central_config_map   = "tollgate-central-config";
    cfg->pricing_config_map   = "tollgate-pricing";
    cfg->tls_secret           = "tollgate-dataplane-tls";
    cfg->provider_keys_secret = "tollgate-provider-keys";
    cfg->default_bundle       = "tollgate-bundle-default";
    cfg->res_pdp.cpu          = "50m";
    cfg->res_pdp.memory       = "128Mi";
    cfg->res_dataplane.cpu    = "100m";
    cfg->res_dataplane.memory = "128Mi";
}

void
inj_config_fini(inj_config *cfg)
{
    inj_config_priv *p;

    if (cfg == NULL) {
        return;
    }
    p = cfg->priv;
    free(cfg->cert_file);
    free(cfg->key_file);
    if (p != NULL) {
        tg_json_doc_destroy(p->doc);
        free(p->dir);
        free(p);
    }
    cfg->cert_file = NULL;
    cfg->key_file  = NULL;
    cfg->priv      = NULL;
}

static tg_err
inj_config_path(const inj_config_priv *p, const char *in, char **out)
{
    size_t n;

    if (in == NULL) {
        return TG_OK;
    }
    if (in[0] == '/') {
        *out = strdup(in);
        return *out != NULL ? TG_OK : TG_ENOMEM;
    }
    n = strlen(p->dir) + strlen(in) + 2;
    if ((*out = malloc(n)) == NULL) {
        return TG_ENOMEM;
    }
    snprintf(*out, n, "%s/%s", p->dir, in);
    return TG_OK;
}

/* inj_config_name reads an optional object name key and checks it. */
static tg_err
inj_config_name(const tg_json_doc *d, const cJSON *o, const char *ctx,
                const char *key, const char **out, char *err, size_t errlen)
{
    tg_err rv = tg_json_get_string(d, o, ctx, key, false, out, err, errlen);

    if (rv == TG_OK && !inj_dns_name_ok(*out)) {
        return tg_json_errf(d, cJSON_GetObjectItemCaseSensitive(o, key), err,
                            errlen,
                            "%s.%s: \"%s\" is not a Kubernetes object name "
                            "(a-z 0-9 - ., at most 253)",
                            ctx, key, *out);
    }
    return rv;
}

static tg_err
inj_config_res(const tg_json_doc *d, const cJSON *o, const char *ctx,
               inj_resources *r, char *err, size_t errlen)
{
    static const char *const keys[]  = {"cpu", "memory", NULL};
    const char              *names[] = {"cpu", "memory"};
    const char             **vals[]  = {&r->cpu, &r->memory};
    tg_err                   rv;

    if (o == NULL) {
        return TG_OK;
    }
    if ((rv = tg_json_only_keys(d, o, ctx, keys, err, errlen)) != TG_OK) {
        return rv;
    }
    for (size_t i = 0; i < 2; i++) {
        if ((rv = tg_json_get_string(d, o, ctx, names[i], false, vals[i], err,
                                     errlen)) != TG_OK) {
            return rv;
        }
        if (!inj_quantity_ok(*vals[i])) {
            return tg_json_errf(
                d, cJSON_GetObjectItemCaseSensitive(o, names[i]), err, errlen,
                "%s.%s: \"%s\" is not a Kubernetes quantity "
                "(e.g. \"100m\", \"128Mi\")",
                ctx, names[i], *vals[i]);
        }
    }
    return TG_OK;
}

static tg_err
inj_config_sections(const tg_json_doc *d, const cJSON *root, inj_config *cfg,
                    char *err, size_t errlen)
{
    static const char *const ik[] = {"pdp", "dataplane", NULL};
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "resources");
    tg_err       rv;

    if (img != NULL &&
        ((rv = tg_json_only_keys(d, img, "images", ik, err, errlen)) != TG_OK ||
         (rv = tg_json_get_string(d, img, "images", "pdp", false,
                                  &cfg->image_pdp, err, errlen)) != TG_OK ||
         (rv = tg_json_get_string(d, img, "images", "dataplane", false,
                                  &cfg->image_dataplane, err, errlen)) !=
             TG_OK)) {
        return rv;
    }
    if (res != NULL &&
        ((rv = tg_json_only_keys(d, res, "resources", ik, err, errlen)) !=
             TG_OK ||
         (rv = inj_config_res(d, cJSON_GetObjectItemCaseSensitive(res, "pdp"),
                              "resources.pdp", &cfg->res_pdp, err, errlen)) !=
             TG_OK ||
         (rv = inj_config_res(
              d, cJSON_GetObjectItemCaseSensitive(res, "dataplane"),
              "resources.dataplane", &cfg->res_dataplane, err, errlen)) !=
             TG_OK)) {
        return rv;
    }
    return TG_OK;
}

static tg_err
inj_config_names(const tg_json_doc *d, const cJSON *r, inj_config *cfg,
                 char *err, size_t errlen)
{
    tg_err rv;

    if ((rv = inj_config_name(d, r, "injector", "own_namespace",
                              &cfg->own_namespace, err, errlen)) != TG_OK ||
        (rv = inj_config_name(d, r, "injector", "sidecar_config_map",
                              &cfg->sidecar_config_map, err, errlen)) !=
            TG_OK ||
        (rv = inj_config_name(d, r, "injector", "central_config_map",
                              &cfg->central_config_map, err, errlen)) !=
            TG_OK ||
        (rv = inj_config_name(d, r, "injector", "pricing_config_map",
                              &cfg->pricing_config_map, err, errlen)) !=
            TG_OK ||
        (rv = inj_config_name(d, r, "injector", "tls_secret", &cfg->tls_secret,
                              err, errlen)) != TG_OK ||
        (rv = inj_config_name(d, r, "injector", "provider_keys_secret",
                              &cfg->provider_keys_secret, err, errlen)) !=
            TG_OK ||
        (rv = inj_config_name(d, r, "injector", "default_bundle",
                              &cfg->default_bundle, err, errlen)) != TG_OK) {
        return rv;
    }
    return TG_OK;
}

static tg_err
inj_config_top(const tg_json_doc *d, const cJSON *r, inj_config *cfg, char *err,
               size_t errlen)
{
    static const char *const keys[] = {"listen",
                                       "cert_file",
                                       "key_file",
                                       "cert_poll_s",
                                       "inject_by_default",
                                       "log_format",
                                       "own_namespace",
                                       "images",
                                       "image_pull_policy",
                                       "sidecar_config_map",
                                       "central_config_map",
                                       "pricing_config_map",
                                       "central_pdp_url",
                                       "tls_secret",
                                       "provider_keys_secret",
                                       "default_bundle",
                                       "resources",
                                       NULL};
    const char              *lf     = NULL;
    const char              *pp;
    tg_err                   rv;

    if ((rv = tg_json_only_keys(d, r, "injector", keys, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(d, r, "injector", "listen", false,
                                 &cfg->listen, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, r, "injector", "cert_poll_s", false, 1, 3600,
                              &cfg->cert_poll_s, err, errlen)) != TG_OK ||
        (rv = tg_json_get_bool(d, r, "injector", "inject_by_default", false,
                               &cfg->inject_by_default, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(d, r, "injector", "log_format", false, &lf,
                                 err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, r, "injector", "image_pull_policy", false,
                                 &cfg->image_pull_policy, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(d, r, "injector", "central_pdp_url", false,
                                 &cfg->central_pdp_url, err, errlen)) !=
            TG_OK ||
        (rv = inj_config_names(d, r, cfg, err, errlen)) != TG_OK ||
        (rv = inj_config_sections(d, r, cfg, err, errlen)) != TG_OK) {
        return rv;
    }
    if (lf != NULL && strcmp(lf, "json") != 0 && strcmp(lf, "text") != 0) {
        return tg_json_errf(
            d, cJSON_GetObjectItemCaseSensitive(r, "log_format"), err, errlen,
            "injector.log_format: expected \"json\" or "
            "\"text\"");
    }
    cfg->log_json = lf != NULL && strcmp(lf, "json") == 0;
    pp            = cfg->image_pull_policy;
    if (strcmp(pp, "Always") != 0 && strcmp(pp, "IfNotPresent") != 0 &&
        strcmp(pp, "Never") != 0) {
        return tg_json_errf(
            d, cJSON_GetObjectItemCaseSensitive(r, "image_pull_policy"), err,
            errlen,
            "injector.image_pull_policy: expected \"Always\", "
            "\"IfNotPresent\" or \"Never\"");
    }
    return TG_OK;
}

static tg_err
inj_config_files(const tg_json_doc *d, const cJSON *r, inj_config *cfg,
                 char *err, size_t errlen)
{
    const char *cf = NULL;
    const char *kf = NULL;
    tg_err      rv;

    if ((rv = tg_json_get_string(d, r, "injector", "cert_file", false, &cf, err,
                                 errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, r, "injector", "key_file", false, &kf, err,
                                 errlen)) != TG_OK) {
        return rv;
    }
    if ((cf == NULL) != (kf == NULL)) {
        return tg_json_errf(d, r, err, errlen,
                            "injector: cert_file and key_file go together");
    }
    if ((rv = inj_config_path(cfg->priv, cf, &cfg->cert_file)) != TG_OK ||
        (rv = inj_config_path(cfg->priv, kf, &cfg->key_file)) != TG_OK) {
        snprintf(err, errlen, "%s: out of memory", cfg->path);
    }
    return rv;
}

tg_err
inj_config_load(inj_config *cfg, const char *path, char *err, size_t errlen)
{
    inj_config_priv *p = calloc(1, sizeof(*p));
    char            *tmp;
    const cJSON     *root;
    tg_err           rv;

    inj_config_defaults(cfg);
    if (p == NULL || (tmp = strdup(path)) == NULL) {
        free(p);
        snprintf(err, errlen, "%s: out of memory", path);
        return TG_ENOMEM;
    }
    p->dir = strdup(dirname(tmp));
    free(tmp);
    cfg->priv = p;
    cfg->path = path;
    if (p->dir == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        rv = TG_ENOMEM;
        goto out;
    }
    if ((rv = tg_json_doc_load(&p->doc, path, INJ_CONFIG_MAX_BYTES, err,
                               errlen)) != TG_OK) {
        goto out;
    }
    root = tg_json_doc_root(p->doc);
    if (!cJSON_IsObject(root)) {
        rv = tg_json_errf(p->doc, root, err, errlen,
                          "injector: expected a JSON object");
        goto out;
    }
    if ((rv = inj_config_top(p->doc, root, cfg, err, errlen)) == TG_OK) {
        rv = inj_config_files(p->doc, root, cfg, err, errlen);
    }
out:
    if (rv != TG_OK) {
        inj_config_fini(cfg);
    }
    return rv;
}

bool
inj_dns_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' ||
        s[n - 1] == '-') {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n;
}

/* inj_quantity_suffix_ok: the part of a quantity after its number. */
static bool
inj_quantity_suffix_ok(const char *s)
{
    static const char *const sfx[] = {"",   "Ki", "Mi", "Gi", "Ti", "Pi",
                                      "Ei", "n",  "u",  "m",  "k",  "M",
                                      "G",  "T",  "P",  "E",  NULL};

    for (size_t i = 0; sfx[i] != NULL; i++) {
        if (strcmp(s, sfx[i]) == 0) {
            return true;
        }
    }
    if (s[0] == 'e' || s[0] == 'E') {
        s += (s[1] == '+' || s[1] == '-') ? 2 : 1;
        return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
    }
    return false;
}

bool
inj_quantity_ok(const char *s)
{
    size_t ip;
    size_t fp = 0;

    if (s == NULL || strlen(s) > 32) {
        return false;
    }
    ip = strspn(s, "0123456789");
    if (s[ip] == '.') {
        fp = strspn(s + ip + 1, "0123456789");
        if (ip + fp == 0) {
            return false;
        }
        ip += 1 + fp;
    } else if (ip == 0) {
        return false;
    }
    return inj_quantity_suffix_ok(s + ip);
}
