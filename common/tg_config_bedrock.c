/* tg_config_bedrock.c - a deployment's Amazon Bedrock keys (see
 * tg_config_int.h): the region that names the endpoint and the SigV4
 * scope, and the credentials, which like api_key are "${ENV}" references
 * the data plane resolves, never literal. */
#include <stdio.h>
#include <string.h>

#include "tg_config_int.h"

/* tg_config_bedrock_region: s looks like an AWS region ("eu-west-3"). */
static bool
tg_config_bedrock_region(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > 32 || s[0] == '-' || s[n - 1] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-')) {
            return false;
        }
    }
    return true;
}

/* tg_config_bedrock_other refuses the Bedrock keys on another provider. */
static tg_err
tg_config_bedrock_other(const tg_json_doc *d, const cJSON *o, const char *ctx,
                        const tg_deployment *dep, char *err, size_t errlen)
{
    static const char *const keys[] = {"region", "aws_access_key_id",
                                       "aws_secret_access_key",
                                       "aws_session_token"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        if (v != NULL) {
            return tg_json_errf(d, v, err, errlen,
                                "%s.%s: only bedrock deployments take it "
                                "(provider is \"%s\")",
                                ctx, keys[i], dep->provider);
        }
    }
    return TG_OK;
}

/* tg_config_bedrock_secret reads one credential key: a "${ENV}" ref. */
static tg_err
tg_config_bedrock_secret(const tg_json_doc *d, const cJSON *o, const char *ctx,
                         const char *key, bool required, const char **out,
                         char *err, size_t errlen)
{
    tg_err rv = tg_json_get_string(d, o, ctx, key, required, out, err, errlen);

    if (rv != TG_OK || *out == NULL) {
        return rv;
    }
    if (!tg_config_is_secret_ref(*out)) {
        /* Never echo the value: it may be a real key pasted by mistake. */
        return tg_json_errf(d, cJSON_GetObjectItemCaseSensitive(o, key), err,
                            errlen,
                            "%s.%s: secrets are never literal in config; "
                            "write \"${ENV_NAME}\" and set that environment "
                            "variable",
                            ctx, key);
    }
    return TG_OK;
}

tg_err
tg_config_bedrock(const tg_json_doc *d, const cJSON *o, const char *ctx,
                  tg_deployment *dep, char *err, size_t errlen)
{
    tg_err rv;

    if (dep->kind != TG_PROVIDER_BEDROCK) {
        return tg_config_bedrock_other(d, o, ctx, dep, err, errlen);
    }
    if (dep->api_key != NULL) {
        return tg_json_errf(d, cJSON_GetObjectItemCaseSensitive(o, "api_key"),
                            err, errlen,
                            "%s.api_key: a bedrock deployment signs with "
                            "\"aws_access_key_id\" and "
                            "\"aws_secret_access_key\" instead",
                            ctx);
    }
    if ((rv = tg_json_get_string(d, o, ctx, "region", true, &dep->region, err,
                                 errlen)) != TG_OK ||
        (rv = tg_config_bedrock_secret(d, o, ctx, "aws_access_key_id", true,
                                       &dep->aws_access_key_id, err, errlen)) !=
            TG_OK ||
        (rv = tg_config_bedrock_secret(d, o, ctx, "aws_secret_access_key", true,
                                       &dep->aws_secret_access_key, err,
                                       errlen)) != TG_OK ||
        (rv = tg_config_bedrock_secret(d, o, ctx, "aws_session_token", false,
                                       &dep->aws_session_token, err, errlen)) !=
            TG_OK) {
        return rv;
    }
    if (!tg_config_bedrock_region(dep->region)) {
        return tg_json_errf(d, cJSON_GetObjectItemCaseSensitive(o, "region"),
                            err, errlen,
                            "%s.region: expected an AWS region such as "
                            "\"us-east-1\"",
                            ctx);
    }
    if (dep->api_base == NULL) {
        snprintf(dep->region_base, sizeof(dep->region_base),
                 "https://bedrock-runtime.%s.amazonaws.com", dep->region);
        dep->api_base = dep->region_base;
    }
    return TG_OK;
}
