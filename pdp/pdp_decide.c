/* pdp_decide.c - deny messages go to API clients verbatim, so they say what
 * to do and never echo the key; OpenAI's codes are used so SDKs map them to
 * the right exception types. */
#include "pdp_decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tg_log.h"

static void pdp_decide_deny(tg_decision *d, uint32_t status, const char *type,
                            const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
pdp_decide_deny(tg_decision *d, uint32_t status, const char *type,
                const char *code, const char *fmt, ...)
{
    va_list ap;

    d->verdict   = TG_VERDICT_DENY;
    d->status    = status;
    d->n_targets = 0;
    d->n_models  = 0;
    snprintf(d->error_type, sizeof(d->error_type), "%s", type);
    snprintf(d->error_code, sizeof(d->error_code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof(d->message), fmt, ap);
    va_end(ap);
}

static bool
pdp_decide_key_allows(const pdp_key *k, const char *model)
{
    if (k->n_models == 0) {
        return true;
    }
    for (uint32_t i = 0; i < k->n_models; i++) {
        if (strcmp(k->models[i], model) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_decide_models lists distinct catalog models the key may use, in
 * catalog order. */
static void
pdp_decide_models(const tg_config *cfg, const pdp_key *k, tg_decision *d)
{
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const char *m   = cfg->deployments[i].model;
        bool        dup = false;

        if (!pdp_decide_key_allows(k, m)) {
            continue;
        }
        for (uint32_t j = 0; j < d->n_models && !dup; j++) {
            dup = strcmp(d->models[j], m) == 0;
        }
        if (dup) {
            continue;
        }
        if (d->n_models == TG_MSG_MODELS_MAX) {
            tg_warn("decide: more than %d models in the catalog; /v1/models "
                    "lists the first %d",
                    TG_MSG_MODELS_MAX, TG_MSG_MODELS_MAX);
            break;
        }
        snprintf(d->models[d->n_models++], sizeof(d->models[0]), "%s", m);
    }
}

tg_err
pdp_decide_eval(pdp_store_reader *rd, const tg_config *cfg,
                const tg_decide *req, tg_decision *out)
{
    pdp_key k;
    tg_err  rv;

    memset(out, 0, sizeof(*out));
    out->policy_revision = 0;
    rv                   = pdp_store_key_get(rd, req->key_hash, &k);
    if (rv == TG_ENOTFOUND) {
        pdp_decide_deny(out, 401, "invalid_request_error", "invalid_api_key",
                        "Incorrect API key provided. Ask your Tollgate "
                        "administrator for a key (created with `tollgate-pdp "
                        "keys create`).");
        return TG_OK;
    }
    if (rv != TG_OK) {
        pdp_decide_deny(out, 503, "server_error", "pdp_unavailable",
                        "The gateway could not check this API key; try again "
                        "shortly.");
        return rv;
    }
    snprintf(out->key_id, sizeof(out->key_id), "%s", k.id);
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", k.tenant);
    if (k.status != PDP_KEY_ACTIVE) {
        pdp_decide_deny(out, 401, "invalid_request_error", "invalid_api_key",
                        "This API key (%s) has been revoked. Ask your "
                        "Tollgate administrator for a new one.",
                        k.id);
        return TG_OK;
    }
    if (req->endpoint == TG_EP_MODELS) {
        out->verdict = TG_VERDICT_ALLOW;
        out->status  = 200;
        pdp_decide_models(cfg, &k, out);
        return TG_OK;
    }
    if (req->model[0] == '\0') {
        pdp_decide_deny(out, 400, "invalid_request_error", "model_required",
                        "You must provide a model parameter.");
        return TG_OK;
    }
    if (!pdp_decide_key_allows(&k, req->model)) {
        pdp_decide_deny(out, 403, "invalid_request_error", "model_not_allowed",
                        "This API key may not use the model '%.100s'. Call "
                        "GET /v1/models to see the models it may use.",
                        req->model);
        return TG_OK;
    }
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const tg_deployment *dep = &cfg->deployments[i];

        if (strcmp(dep->model, req->model) != 0) {
            continue;
        }
        if (out->n_targets == TG_MSG_TARGETS_MAX) {
            tg_warn("decide: model \"%.100s\" has more than %d deployments; "
                    "routing uses the first %d",
                    req->model, TG_MSG_TARGETS_MAX, TG_MSG_TARGETS_MAX);
            break;
        }
        snprintf(out->targets[out->n_targets].deployment_id,
                 sizeof(out->targets[0].deployment_id), "%s", dep->id);
        out->targets[out->n_targets].weight = 1;
        out->n_targets++;
    }
    if (out->n_targets == 0) {
        pdp_decide_deny(out, 404, "invalid_request_error", "model_not_found",
                        "The model '%.100s' does not exist on this gateway. "
                        "Call GET /v1/models to see the models you may use.",
                        req->model);
        return TG_OK;
    }
    out->verdict  = TG_VERDICT_ALLOW;
    out->status   = 200;
    out->strategy = TG_ROUTE_ORDERED;
    return TG_OK;
}
