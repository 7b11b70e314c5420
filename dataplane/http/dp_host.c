/* dp_host.c - resolving deployments and look-ups over what dp_server
 * lends its workers (dp_host.h). Thread-safe: reads only what is
 * immutable after dp_server_create. */
#include "dp_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_log.h"

const dp_upstream *
dp_host_upstream(const dp_host *h, const char *id)
{
    for (size_t i = 0; i < h->n_upstreams; i++) {
        if (strcmp(h->upstreams[i].dep->id, id) == 0) {
            return &h->upstreams[i];
        }
    }
    return NULL;
}

int64_t
dp_host_cost(const dp_host *h, const dp_upstream *up)
{
    tg_price p;

    if (up->dep->has_price) {
        return up->dep->price_input + up->dep->price_output;
    }
    if (h->pricing != NULL &&
        (tg_pricing_find(h->pricing, up->dep->model, &p) ||
         tg_pricing_find(h->pricing, up->dep->upstream_model, &p))) {
        return p.input + p.output;
    }
    return 0;
}

size_t
dp_host_pick(const dp_host *h)
{
    for (size_t i = 0; i < h->n_pdps; i++) {
        if (dp_pdp_connected(h->pdps[i])) {
            return i;
        }
    }
    return 0;
}

bool
dp_host_connected(const dp_host *h)
{
    for (size_t i = 0; i < h->n_pdps; i++) {
        if (dp_pdp_connected(h->pdps[i])) {
            return true;
        }
    }
    return false;
}

bool
dp_host_stopping(const dp_host *h)
{
    return atomic_load(h->stopping);
}

/* dp_host_aws_secret resolves one "${ENV}" credential of d into *out;
 * an unset variable turns the deployment off (false). */
static tg_err
dp_host_aws_secret(const tg_deployment *d, dp_upstream *up, const char *ref,
                   char **out)
{
    switch (tg_config_secret(ref, out, up->missing, sizeof(up->missing))) {
    case TG_OK:
        return TG_OK;
    case TG_ENOTFOUND:
        up->usable = false;
        tg_warn("deployment %s (model %s) is off: environment variable "
                "%s is not set",
                d->id, d->model, up->missing);
        return TG_OK;
    default:
        return TG_ENOMEM;
    }
}

/* dp_host_free_secret wipes and frees a secret (NULL-safe). */
static void
dp_host_free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* dp_host_aws resolves a bedrock deployment's SigV4 credentials. */
static tg_err
dp_host_aws(const tg_deployment *d, dp_upstream *up)
{
    char  *id     = NULL;
    char  *secret = NULL;
    char  *token  = NULL;
    tg_err rv;

    if ((rv = dp_host_aws_secret(d, up, d->aws_access_key_id, &id)) != TG_OK ||
        (up->usable && (rv = dp_host_aws_secret(d, up, d->aws_secret_access_key,
                                                &secret)) != TG_OK) ||
        (up->usable && d->aws_session_token != NULL &&
         (rv = dp_host_aws_secret(d, up, d->aws_session_token, &token)) !=
             TG_OK)) {
        goto out;
    }
    if (up->usable) {
        up->aws_key_id = id;
        up->aws_secret = secret;
        up->aws_token  = token;
        id = secret = token = NULL; /* the upstream owns them */
    }
out:
    dp_host_free_secret(id);
    dp_host_free_secret(secret);
    dp_host_free_secret(token);
    return rv;
}

/* dp_host_resolve fills ups[0..n) from cfg's deployments; on an error
 * what it filled is for the caller to free. */
static tg_err
dp_host_resolve(const tg_config *cfg, dp_upstream *ups)
{
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        dp_upstream         *up   = &ups[i];
        const tg_deployment *d    = &cfg->deployments[i];
        size_t               blen = strlen(d->api_base);
        char                *key  = NULL;

        up->dep   = d;
        up->index = i;
        while (blen > 0 && d->api_base[blen - 1] == '/') {
            blen--;
        }
        if (asprintf(&up->base, "%.*s", (int)blen, d->api_base) < 0) {
            return TG_ENOMEM;
        }
        up->usable = true;
        if (d->kind == TG_PROVIDER_BEDROCK) {
            tg_err rv = dp_host_aws(d, up);
            if (rv != TG_OK) {
                return rv;
            }
            continue;
        }
        if (d->api_key == NULL) {
            continue;
        }
        switch (tg_config_secret(d->api_key, &key, up->missing,
                                 sizeof(up->missing))) {
        case TG_OK:
            /* Each provider's own credential header. */
            if (asprintf(&up->auth_header, "%s%s",
                         d->kind == TG_PROVIDER_AZURE       ? "api-key: "
                         : d->kind == TG_PROVIDER_ANTHROPIC ? "x-api-key: "
                         : d->kind == TG_PROVIDER_GEMINI
                             ? "x-goog-api-key: "
                             : "Authorization: Bearer ",
                         key) < 0) {
                free(key);
                return TG_ENOMEM;
            }
            explicit_bzero(key, strlen(key));
            free(key);
            break;
        case TG_ENOTFOUND:
            up->usable = false;
            tg_warn("deployment %s (model %s) is off: environment variable "
                    "%s is not set",
                    d->id, d->model, up->missing);
            break;
        default:
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

tg_err
dp_host_upstreams(const tg_config *cfg, dp_upstream **out, size_t *n)
{
    dp_upstream *ups = calloc(cfg->n_deployments + 1, sizeof(*ups));
    tg_err       rv;

    if (ups == NULL) {
        return TG_ENOMEM;
    }
    if ((rv = dp_host_resolve(cfg, ups)) != TG_OK) {
        dp_host_upstreams_free(ups, cfg->n_deployments);
        return rv;
    }
    *out = ups;
    *n   = cfg->n_deployments;
    return TG_OK;
}

void
dp_host_upstreams_free(dp_upstream *ups, size_t n)
{
    for (size_t i = 0; ups != NULL && i < n; i++) {
        free(ups[i].base);
        dp_host_free_secret(ups[i].aws_key_id);
        dp_host_free_secret(ups[i].aws_secret);
        dp_host_free_secret(ups[i].aws_token);
        if (ups[i].auth_header != NULL) {
            explicit_bzero(ups[i].auth_header, strlen(ups[i].auth_header));
            free(ups[i].auth_header);
        }
    }
    free(ups);
}
