/* pdp_import_portkey_targets.c - Portkey targets into Tollgate
 * deployments. A tree of strategies is flattened, depth first, into one
 * ordered list of deployments per group (the whole config, one named
 * target of a conditional config, or one target of a fallback whose first
 * target is a loadbalance pool: pdp_pk_splits): in a loadbalance group
 * each deployment's weight is the product of its share at every level; a
 * fallback nested in it gives its first target the whole share and the
 * others weight 1; a loadbalance nested in a fallback becomes its targets
 * in order. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pdp_import_portkey_int.h"

#define PDP_PK_WEIGHT_SCALE 1000.0 /* a whole group shares 1000 */
#define PDP_PK_SHARE_MIN (-1.0)    /* "keep, with the smallest weight" */

/* Portkey providers Tollgate speaks, by Portkey's name. */
static const struct {
    const char *portkey;
    const char *tollgate;
    bool        keyless; /* a local server: no key needed */
} pdp_pk_providers[] = {
    {"openai", "openai", false},
    {"azure-openai", "azure", false},
    {"anthropic", "anthropic", false},
    {"google", "gemini", false},
    {"groq", "groq", false},
    {"mistral-ai", "mistral", false},
    {"deepseek", "deepseek", false},
    {"together-ai", "together", false},
    {"openrouter", "openrouter", false},
    {"ollama", "ollama", true},
};

/* The fields of a target this file reads itself; anything else not taken
 * by pdp_pk_global is reported as not imported. */
static const char *const pdp_pk_azure_keys[] = {"resource_name",
                                                "deployment_id", "api_version"};

static void
pdp_pk__join(char *buf, size_t cap, const char *path, const char *key)
{
    pdp_pk_path(buf, cap, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
}

/* pdp_pk__env writes "${PREFIX<ID upper-cased, other bytes _>}". */
static void
pdp_pk__env(char *buf, size_t cap, const char *prefix, const char *id)
{
    size_t n = (size_t)snprintf(buf, cap, "${%s", prefix);

    for (const char *p = id; *p != '\0' && n + 2 < cap; p++) {
        buf[n++] =
            isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    }
    buf[n++] = '}';
    buf[n]   = '\0';
}

static bool
pdp_pk__has_id(const pdp_pk *c, const char *id)
{
    const cJSON *d;

    cJSON_ArrayForEach(d, c->pk->deployments)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "id");
        if (cJSON_IsString(v) && strcmp(v->valuestring, id) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_pk__id names a deployment: the target's name (bytes other than
 * A-Z a-z 0-9 . _ - become -), else <provider>-<n>; unique. */
static void
pdp_pk__id(pdp_pk *c, const cJSON *leaf, const char *provider, char *id,
           size_t cap)
{
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(leaf, "name");
    char         base[48];
    size_t       n = 0;

    if (cJSON_IsString(nm) && nm->valuestring[0] != '\0') {
        for (const char *p = nm->valuestring; *p != '\0' && n + 1 < 40; p++) {
            unsigned char ch = (unsigned char)*p;
            base[n++] = isalnum(ch) || ch == '.' || ch == '_' || ch == '-'
                            ? (char)ch
                            : '-';
        }
        base[n] = '\0';
    } else {
        snprintf(base, sizeof(base), "%.24s-%u", provider, ++c->n_auto);
    }
    snprintf(id, cap, "%s", base);
    for (unsigned k = 2; pdp_pk__has_id(c, id); k++) {
        snprintf(id, cap, "%s-%u", base, k);
    }
}

/* pdp_pk__provider finds a target's provider in the table; -1 with a
 * finding when it cannot be imported. */
static int
pdp_pk__provider(pdp_pk *c, const cJSON *leaf, const char *path)
{
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(leaf, "provider");
    char         p[PDP_PK_PATH];
    size_t       n = sizeof(pdp_pk_providers) / sizeof(pdp_pk_providers[0]);

    pdp_pk__join(p, sizeof(p), path, "provider");
    if (!cJSON_IsString(pv)) {
        pdp_pk_note(c, path[0] ? path : "(config)", leaf, PDP_MIG_UNSUPPORTED,
                    "a target without provider (a string) is not imported");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pv->valuestring, pdp_pk_providers[i].portkey) == 0) {
            return (int)i;
        }
    }
    if (pv->valuestring[0] == '@') {
        pdp_pk_note(c, p, pv, PDP_MIG_UNSUPPORTED,
                    "a Portkey Model Catalog slug: write the target with its "
                    "provider and key instead; this target is not imported");
    } else {
        pdp_pk_note(c, p, pv, PDP_MIG_UNSUPPORTED,
                    "provider \"%.64s\" is not one Tollgate speaks (openai, "
                    "azure-openai, anthropic, google, groq, mistral-ai, "
                    "deepseek, together-ai, openrouter, ollama); this target "
                    "is not imported, nor its other fields",
                    pv->valuestring);
    }
    return -1;
}

/* pdp_pk__azure_ok is whether an azure-openai target has what a Tollgate
 * azure deployment needs (a finding when not). */
static bool
pdp_pk__azure_ok(pdp_pk *c, const cJSON *leaf, const char *path)
{
    bool host =
        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(leaf, "custom_host"));

    for (size_t i = 0; i < 3; i++) {
        const cJSON *v =
            cJSON_GetObjectItemCaseSensitive(leaf, pdp_pk_azure_keys[i]);
        if (!cJSON_IsString(v) && !(i == 0 && host)) {
            pdp_pk_note(c, path, leaf, PDP_MIG_UNSUPPORTED,
                        "an azure-openai target needs %s (a string); this "
                        "target is not imported",
                        pdp_pk_azure_keys[i]);
            return false;
        }
    }
    return true;
}

/* pdp_pk__key sets the deployment's api_key: a ${ENV} reference, never a
 * literal (which is not copied, and never printed). */
static void
pdp_pk__key(pdp_pk *c, cJSON *dep, const char *key, const cJSON *v,
            const char *p, const char *id)
{
    char env[96];

    if (strcmp(key, "virtual_key") == 0) {
        pdp_pk__env(env, sizeof(env), "PORTKEY_VK_", id);
        pdp_pk_note(c, p, v, PDP_MIG_APPROXIMATED,
                    "Tollgate has no key vault: api_key \"%s\"; set that "
                    "variable in the data plane's environment to the "
                    "provider key this virtual key holds",
                    env);
    } else if (cJSON_IsString(v) && strncmp(v->valuestring, "${", 2) == 0 &&
               v->valuestring[strlen(v->valuestring) - 1] == '}') {
        snprintf(env, sizeof(env), "%.90s", v->valuestring);
        pdp_pk_note(c, p, v, PDP_MIG_MAPPED,
                    "api_key (an environment "
                    "reference)");
    } else {
        pdp_pk__env(env, sizeof(env), "PORTKEY_API_KEY_", id);
        pdp_pk_note(c, p, v, PDP_MIG_UNSUPPORTED,
                    "a literal secret is refused: not copied. The deployment "
                    "reads api_key \"%s\": set that variable in the data "
                    "plane's environment (and rotate a key that sat in a "
                    "config file)",
                    env);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(dep, "api_key");
    pdp_pk_ck(c, cJSON_AddStringToObject(dep, "api_key", env));
}

/* How a Portkey custom_host differs from a Tollgate api_base: Portkey
 * appends the path after the API version (/messages, /models/...), and
 * for Ollama the whole /v1/chat/completions; Tollgate appends the version
 * too for Anthropic and Gemini, and its Ollama base ends in /v1. */
static const struct {
    const char *provider;
    const char *strip;  /* a suffix of the host that Tollgate adds itself */
    const char *append; /* a suffix Tollgate's base has and Portkey's not */
} pdp_pk_hosts[] = {
    {"anthropic", "/v1", NULL},
    {"gemini", "/v1beta", NULL},
    {"ollama", NULL, "/v1"},
};

/* pdp_pk__authority_user: the URL carries user info (user:pass@host). */
static bool
pdp_pk__authority_user(const char *url)
{
    const char *a   = strstr(url, "://") + 3;
    size_t      len = strcspn(a, "/?#");

    return memchr(a, '@', len) != NULL;
}

/* pdp_pk__host maps custom_host onto api_base. */
static void
pdp_pk__host(pdp_pk *c, cJSON *dep, const cJSON *v, const char *p,
             const char *provider)
{
    char        base[512];
    size_t      n;
    const char *fix = NULL;

    if (!cJSON_IsString(v) || (strncmp(v->valuestring, "http://", 7) != 0 &&
                               strncmp(v->valuestring, "https://", 8) != 0)) {
        pdp_pk_note(c, p, v, PDP_MIG_UNSUPPORTED,
                    "expected an http:// or https:// URL; the provider's "
                    "default API base is used");
        return;
    }
    if (pdp_pk__authority_user(v->valuestring) ||
        strlen(v->valuestring) >= sizeof(base) - 8) {
        pdp_pk_note(c, p, v, PDP_MIG_UNSUPPORTED,
                    "a URL with credentials in it (user@host) or longer than "
                    "500 bytes is not copied; the provider's default API "
                    "base is used: set api_base by hand");
        return;
    }
    snprintf(base, sizeof(base), "%s", v->valuestring);
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/') {
        base[--n] = '\0';
    }
    for (size_t i = 0; i < sizeof(pdp_pk_hosts) / sizeof(pdp_pk_hosts[0]);
         i++) {
        const char *sx = pdp_pk_hosts[i].strip;
        const char *ax = pdp_pk_hosts[i].append;
        if (strcmp(provider, pdp_pk_hosts[i].provider) != 0) {
            continue;
        }
        if (sx != NULL && n >= strlen(sx) &&
            strcmp(base + n - strlen(sx), sx) == 0) {
            base[n - strlen(sx)] = '\0';
        } else if (sx != NULL) {
            fix = sx;
        } else if (n < strlen(ax) || strcmp(base + n - strlen(ax), ax) != 0) {
            snprintf(base + n, sizeof(base) - n, "%s", ax);
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(dep, "api_base");
    pdp_pk_ck(c, cJSON_AddStringToObject(dep, "api_base", base));
    if (fix != NULL) {
        pdp_pk_note(c, p, v, PDP_MIG_APPROXIMATED,
                    "api_base \"%s\": Tollgate adds %s to it, which Portkey "
                    "expected in the host: check the URL the provider is "
                    "called at",
                    base, fix);
    } else {
        pdp_pk_note(c, p, v, PDP_MIG_MAPPED, "api_base \"%s\"", base);
    }
}

/* pdp_pk__overrides reports override_params: model is the upstream model
 * (taken by the caller); Tollgate rewrites no other request parameter. */
static void
pdp_pk__overrides(pdp_pk *c, const cJSON *o, const char *path, bool azure)
{
    const cJSON *m;
    char         p[PDP_PK_PATH];

    if (!cJSON_IsObject(o)) {
        pdp_pk_note(c, path, o, PDP_MIG_UNSUPPORTED,
                    "expected an object; ignored");
        return;
    }
    cJSON_ArrayForEach(m, o)
    {
        pdp_pk__join(p, sizeof(p), path, m->string);
        if (strcmp(m->string, "model") == 0) {
            pdp_pk_note(c, p, m, azure ? PDP_MIG_APPROXIMATED : PDP_MIG_MAPPED,
                        azure ? "ignored: on Azure the deployment_id decides "
                                "the model"
                              : "the deployment's upstream_model");
        } else {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "Tollgate does not rewrite request parameters: the "
                        "client's own %s (or the provider's default) is sent",
                        m->string);
        }
    }
}

/* pdp_pk__leaf_field reports (and applies) one field of a target. */
static void
pdp_pk__leaf_field(pdp_pk *c, cJSON *dep, const cJSON *m, const char *path,
                   bool in_lb)
{
    const char *k = m->string;
    const char *prov =
        cJSON_GetObjectItemCaseSensitive(dep, "provider")->valuestring;
    const char *id = cJSON_GetObjectItemCaseSensitive(dep, "id")->valuestring;
    bool        azure = strcmp(prov, "azure") == 0;
    char        p[PDP_PK_PATH];

    pdp_pk__join(p, sizeof(p), path, k);
    if (strcmp(k, "name") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED, "deployment id \"%s\"", id);
    } else if (strcmp(k, "provider") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED, "provider \"%s\"", prov);
    } else if (strcmp(k, "virtual_key") == 0 || strcmp(k, "api_key") == 0) {
        pdp_pk__key(c, dep, k, m, p, id);
    } else if (strcmp(k, "weight") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                    in_lb ? "the deployment's weight (its share of the "
                            "group, scaled to whole numbers)"
                          : "ignored outside loadbalance, as Portkey does");
    } else if (strcmp(k, "override_params") == 0) {
        pdp_pk__overrides(c, m, p, azure);
    } else if (strcmp(k, "custom_host") == 0) {
        pdp_pk__host(c, dep, m, p, prov);
    } else if (azure && strcmp(k, "resource_name") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                    "api_base https://<resource_name>.openai.azure.com");
    } else if (azure && strcmp(k, "deployment_id") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                    "upstream_model (the Azure "
                    "deployment in the URL)");
    } else if (azure && strcmp(k, "api_version") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED, "api_version");
    } else if (strcmp(prov, "anthropic") == 0 &&
               strcmp(k, "anthropic_version") == 0 && cJSON_IsString(m)) {
        pdp_pk_ck(c, cJSON_AddStringToObject(dep, "anthropic_version",
                                             m->valuestring));
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED, "anthropic_version");
    } else if (pdp_pk_global(c, k, m, p, path[0] == '\0')) {
        return;
    } else if (strcmp(k, "forward_headers") == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "Tollgate forwards no client header to a provider");
    } else {
        pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "not imported: Tollgate has no such setting for a "
                    "\"%s\" deployment",
                    prov);
    }
}

/* pdp_pk__base is the deployment's api_base and upstream_model before the
 * target's own fields apply. */
static void
pdp_pk__base(pdp_pk *c, cJSON *dep, const cJSON *leaf, const char *inherit,
             bool azure)
{
    const cJSON *o  = cJSON_GetObjectItemCaseSensitive(leaf, "override_params");
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(o, "model");
    const char  *up = cJSON_IsString(om) && om->valuestring[0] != '\0'
                          ? om->valuestring
                      : inherit != NULL ? inherit
                                        : c->pk->model;
    char         url[320];

    if (azure) {
        const cJSON *rn =
            cJSON_GetObjectItemCaseSensitive(leaf, "resource_name");
        const cJSON *dv =
            cJSON_GetObjectItemCaseSensitive(leaf, "deployment_id");
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(leaf, "api_version");
        up              = dv->valuestring;
        pdp_pk_ck(c,
                  cJSON_AddStringToObject(dep, "api_version", av->valuestring));
        if (cJSON_IsString(rn)) {
            snprintf(url, sizeof(url), "https://%.200s.openai.azure.com",
                     rn->valuestring);
            pdp_pk_ck(c, cJSON_AddStringToObject(dep, "api_base", url));
        }
    }
    pdp_pk_ck(c, cJSON_AddStringToObject(dep, "upstream_model", up));
}

/* pdp_pk__skipped reports each field of a target that is not imported
 * (never its value), so that nothing is left out silently. */
static void
pdp_pk__skipped(pdp_pk *c, const cJSON *leaf, const char *path,
                const char *skip)
{
    const cJSON *m;
    char         p[PDP_PK_PATH];

    cJSON_ArrayForEach(m, leaf)
    {
        if (skip != NULL && strcmp(m->string, skip) == 0) {
            continue; /* reported with the reason */
        }
        pdp_pk__join(p, sizeof(p), path, m->string);
        pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "not imported: its target is not (see above)");
    }
}

/* pdp_pk__leaf imports one target as a deployment with share (its weight
 * before scaling). */
static tg_err
pdp_pk__leaf(pdp_pk *c, const cJSON *leaf, const char *path,
             const char *inherit, double share, bool in_lb, pdp_pk_group *g)
{
    int          pi = pdp_pk__provider(c, leaf, path);
    cJSON       *dep;
    const cJSON *m;
    char         id[64];
    char         env[96];
    bool         azure;

    if (pi < 0) {
        pdp_pk__skipped(c, leaf, path, "provider");
        return TG_OK;
    }
    azure = strcmp(pdp_pk_providers[pi].tollgate, "azure") == 0;
    if (azure && !pdp_pk__azure_ok(c, leaf, path)) {
        pdp_pk__skipped(c, leaf, path, NULL);
        return TG_OK;
    }
    if ((dep = cJSON_CreateObject()) == NULL) {
        return TG_ENOMEM;
    }
    pdp_pk__id(c, leaf, pdp_pk_providers[pi].tollgate, id, sizeof(id));
    cJSON_AddItemToArray(c->pk->deployments, dep);
    pdp_pk_ck(c, cJSON_AddStringToObject(dep, "id", id));
    pdp_pk_ck(c, cJSON_AddStringToObject(
                     dep, "model", g->model != NULL ? g->model : c->pk->model));
    pdp_pk_ck(c, cJSON_AddStringToObject(dep, "provider",
                                         pdp_pk_providers[pi].tollgate));
    pdp_pk__base(c, dep, leaf, inherit, azure);
    pdp_pk_ck(c, cJSON_AddNumberToObject(dep, "weight", share));
    if (c->nomem) {
        return TG_ENOMEM;
    }
    cJSON_ArrayForEach(m, leaf)
    {
        pdp_pk__leaf_field(c, dep, m, path, in_lb);
    }
    if (cJSON_GetObjectItemCaseSensitive(dep, "api_key") == NULL &&
        !pdp_pk_providers[pi].keyless) {
        pdp_pk__env(env, sizeof(env), "PORTKEY_API_KEY_", id);
        pdp_pk_ck(c, cJSON_AddStringToObject(dep, "api_key", env));
        pdp_pk_note(c, path[0] ? path : "(config)", leaf, PDP_MIG_APPROXIMATED,
                    "the target names no key (Portkey took it from the "
                    "request): the deployment reads api_key \"%s\" from the "
                    "data plane's environment",
                    env);
    }
    pdp_pk_ck(c, cJSON_AddItemToArray(g->ids, cJSON_CreateString(id)) ? g->ids
                                                                      : NULL);
    return TG_OK;
}

/* pdp_pk__mode_note reports strategy.mode against the group the node is
 * flattened into (split: the root of a fallback of model groups). */
static void
pdp_pk__mode_note(pdp_pk *c, const char *p, const cJSON *m, const char *mode,
                  int depth, bool weighted, bool split)
{
    bool lb = strcmp(mode, "loadbalance") == 0;
    bool fb = strcmp(mode, "fallback") == 0;

    if (split) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                    "each target becomes a model: the first is the one "
                    "clients ask for, the others its fallbacks "
                    "(model_groups[].fallbacks), tried in order once every "
                    "deployment of the one before failed");
    } else if (depth == 0 && lb) {
        pdp_pk_note(c, p, m, PDP_MIG_APPROXIMATED,
                    "the model's strategy \"weighted\": a deployment is drawn "
                    "by weight; when it fails Tollgate tries the others (by "
                    "weight), where Portkey answers with the failure (after "
                    "its retries)");
    } else if (depth == 0 && weighted && fb) {
        pdp_pk_note(c, p, m, PDP_MIG_APPROXIMATED,
                    "a fallback model under a weighted strategy: its "
                    "deployments are drawn by weight (the first 1000, the "
                    "others 1), so this order holds nearly always, not "
                    "always");
    } else if (depth == 0) {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED, "%s",
                    fb ? "the model's deployments in this order (strategy "
                         "\"ordered\": the next one on failure)"
                       : "the first target is the only deployment");
    } else if (weighted && fb) {
        pdp_pk_note(c, p, m, PDP_MIG_APPROXIMATED,
                    "flattened: its first target takes this pool's weight, "
                    "the others weight 1; after a failure Tollgate tries the "
                    "group's other deployments by weight, not this "
                    "fallback's order first");
    } else if (!weighted && lb) {
        pdp_pk_note(c, p, m, PDP_MIG_APPROXIMATED,
                    "flattened into the fallback order: its targets are "
                    "tried in turn, so the first takes all the traffic while "
                    "it works (weights not used)");
    } else {
        pdp_pk_note(c, p, m, PDP_MIG_MAPPED, "flattened into the group%s",
                    lb ? ", weights multiplied" : ", in order");
    }
}

/* pdp_pk__strategy reports a node's strategy block against the group it
 * is flattened into. */
static void
pdp_pk__strategy(pdp_pk *c, const cJSON *node, const char *path, int depth,
                 bool weighted, bool split)
{
    const cJSON *s    = cJSON_GetObjectItemCaseSensitive(node, "strategy");
    const char  *mode = pdp_pk_mode(node);
    const cJSON *m;
    char         p[PDP_PK_PATH];
    char         sp[PDP_PK_PATH];

    pdp_pk__join(sp, sizeof(sp), path, "strategy");
    if (s != NULL && !cJSON_IsObject(s)) {
        pdp_pk_note(c, sp, s, PDP_MIG_UNSUPPORTED,
                    "expected an object {\"mode\": ...}; taken as mode "
                    "single (the first target only)");
        s = NULL;
    }
    cJSON_ArrayForEach(m, s)
    {
        pdp_pk__join(p, sizeof(p), sp, m->string);
        if (strcmp(m->string, "mode") == 0) {
            pdp_pk__mode_note(c, p, m, mode, depth, weighted, split);
        } else if (strcmp(m->string, "on_status_codes") == 0 &&
                   strcmp(mode, "fallback") == 0) {
            pdp_pk_codes(c, m, p, true);
        } else {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "not used by a %s strategy; ignored", mode);
        }
    }
    if (strcmp(mode, "fallback") == 0 &&
        cJSON_GetObjectItemCaseSensitive(s, "on_status_codes") == NULL) {
        pdp_pk_note(c, sp, s, PDP_MIG_APPROXIMATED,
                    "Portkey falls back on any answer that is not 2xx; "
                    "Tollgate on 429, 5xx, 401/403/404, connection errors "
                    "and timeouts: a 400 or 422 from a target goes back to "
                    "the client");
    }
}

void
pdp_pk_node_fields(pdp_pk *c, const cJSON *node, const char *path, bool top,
                   bool in_lb)
{
    const cJSON *m;
    char         p[PDP_PK_PATH];

    cJSON_ArrayForEach(m, node)
    {
        const char *k = m->string;

        pdp_pk__join(p, sizeof(p), path, k);
        if (strcmp(k, "strategy") == 0 || strcmp(k, "targets") == 0) {
            continue; /* the caller's */
        }
        if (pdp_pk_global(c, k, m, p, top)) {
            continue;
        }
        if (strcmp(k, "name") == 0) {
            pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                        "names this group (conditions' then and default "
                        "refer to it); its targets are the deployments");
        } else if (strcmp(k, "weight") == 0) {
            pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                        in_lb ? "multiplied into the weights of its targets"
                              : "ignored outside loadbalance, as Portkey "
                                "does");
        } else if (strcmp(k, "override_params") == 0) {
            pdp_pk__overrides(c, m, p, false);
        } else if (strcmp(k, "forward_headers") == 0) {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "Tollgate forwards no client header to a provider");
        } else {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "not imported: a field of a target, not of a "
                        "strategy, or unknown");
        }
    }
}

/* pdp_pk__shares fills share[i] for the children of a node. */
static void
pdp_pk__shares(const cJSON *ts, const char *mode, double share, double *out,
               size_t n)
{
    double       sum = 0;
    size_t       i   = 0;
    const cJSON *t;

    cJSON_ArrayForEach(t, ts)
    {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "weight");
        out[i] =
            cJSON_IsNumber(w) && w->valuedouble >= 0 ? w->valuedouble : 1.0;
        sum += out[i++];
    }
    for (i = 0; i < n; i++) {
        if (strcmp(mode, "loadbalance") == 0) {
            out[i] = share > 0 && sum > 0 ? share * out[i] / sum
                                          : (share < 0 ? share : 0);
        } else {
            out[i] = i == 0 || share == 0 ? share : PDP_PK_SHARE_MIN;
        }
    }
}

static tg_err
pdp_pk__node(pdp_pk *c, const cJSON *node, const char *path,
             const char *inherit, double share, int depth, bool in_lb,
             pdp_pk_group *g)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(node, "targets");
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(node, "override_params"), "model");
    const char  *mode = pdp_pk_mode(node);
    const cJSON *t;
    double       shares[64];
    size_t       n = 0;
    size_t       i = 0;
    char         p[PDP_PK_PATH];
    tg_err       rv;

    if (!cJSON_IsObject(node)) {
        pdp_pk_note(c, path, node, PDP_MIG_UNSUPPORTED,
                    "a target is an object; not imported");
        return TG_OK;
    }
    if (ts == NULL) {
        return pdp_pk__leaf(c, node, path, inherit, share, in_lb, g);
    }
    pdp_pk__join(p, sizeof(p), path, "targets");
    if (!cJSON_IsArray(ts) || (n = (size_t)cJSON_GetArraySize(ts)) == 0 ||
        n > 64 || depth >= PDP_PK_DEPTH) {
        return pdp_pk_fail(c, ts,
                           "%s: expected a list of 1 to 64 targets, "
                           "nested at most %d deep",
                           p, PDP_PK_DEPTH);
    }
    if (strcmp(mode, "single") != 0 && strcmp(mode, "loadbalance") != 0 &&
        strcmp(mode, "fallback") != 0) {
        pdp_pk__join(p, sizeof(p), path, "strategy.mode");
        pdp_pk_note(c, p, cJSON_GetObjectItemCaseSensitive(node, "strategy"),
                    PDP_MIG_UNSUPPORTED, "%s",
                    strcmp(mode, "conditional") == 0
                        ? "a conditional strategy is imported only at the top "
                          "of the config; these targets are not imported"
                        : "unknown strategy mode (single, loadbalance, "
                          "fallback or conditional); these targets are not "
                          "imported");
        return TG_OK;
    }
    pdp_pk__strategy(c, node, path, depth, g->weighted, false);
    pdp_pk_node_fields(c, node, path, depth == 0 && path[0] == '\0', in_lb);
    pdp_pk__shares(ts, mode, share, shares, n);
    inherit = cJSON_IsString(om) ? om->valuestring : inherit;
    cJSON_ArrayForEach(t, ts)
    {
        pdp_pk_path(p, sizeof(p), "%s%stargets[%zu]", path, path[0] ? "." : "",
                    i);
        if (strcmp(mode, "single") == 0 && i > 0) {
            pdp_pk_note(c, p, t, PDP_MIG_MAPPED,
                        "not imported: a single strategy uses its first "
                        "target only, as Portkey does");
        } else if ((rv = pdp_pk__node(c, t, p, inherit, shares[i], depth + 1,
                                      strcmp(mode, "loadbalance") == 0, g)) !=
                   TG_OK) {
            return rv;
        }
        i++;
    }
    return TG_OK;
}

tg_err
pdp_pk_flatten(pdp_pk *c, const cJSON *node, const char *path,
               const char *inherit, pdp_pk_group *g)
{
    return pdp_pk__node(c, node, path, inherit, 1.0, 0, false, g);
}

void
pdp_pk_weights(pdp_pk *c, const pdp_pk_group *g)
{
    const cJSON *id;

    cJSON_ArrayForEach(id, g->ids)
    {
        cJSON *d;
        cJSON_ArrayForEach(d, c->pk->deployments)
        {
            cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "weight");
            double s;
            if (strcmp(cJSON_GetObjectItemCaseSensitive(d, "id")->valuestring,
                       id->valuestring) != 0 ||
                w == NULL) {
                continue;
            }
            s = w->valuedouble;
            if (!g->weighted) {
                cJSON_DeleteItemFromObjectCaseSensitive(d, "weight");
            } else {
                double iw = s < 0    ? 1
                            : s == 0 ? 0
                                     : fmax(1, round(s * PDP_PK_WEIGHT_SCALE));
                cJSON_SetNumberValue(w, iw);
            }
        }
    }
}

bool
pdp_pk_splits(const cJSON *root)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "targets");
    const cJSON *t0 = cJSON_IsArray(ts) ? ts->child : NULL;

    return strcmp(pdp_pk_mode(root), "fallback") == 0 && cJSON_IsObject(t0) &&
           cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t0, "targets")) &&
           strcmp(pdp_pk_mode(t0), "loadbalance") == 0 &&
           cJSON_GetArraySize(ts) <= 64;
}

void
pdp_pk_root_fields(pdp_pk *c, const cJSON *root)
{
    pdp_pk__strategy(c, root, "", 0, false, true);
    pdp_pk_node_fields(c, root, "", true, false);
}
