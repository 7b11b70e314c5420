/* tg_config_resp.c - pdp.responses: how long stored Responses API
 * responses are kept and how many bytes a tenant may keep. */
#include "tg_config_int.h"

tg_err
tg_config_responses(const tg_json_doc *d, const cJSON *pdp, tg_pdp_config *c,
                    char *err, size_t errlen)
{
    static const char *const keys[] = {"retention_days", "retention_seconds",
                                       "max_bytes_per_tenant",
                                       "max_response_bytes", NULL};
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(pdp, "responses");
    tg_err       rv;

    c->resp_retention_days       = 30;
    c->resp_retention_s          = 0;
    c->resp_max_bytes_per_tenant = 104857600;
    c->resp_max_response_bytes   = TG_CONFIG_RESP_MAX_DEFAULT;
    if (sec == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(sec)) {
        return tg_json_errf(d, sec, err, errlen,
                            "pdp.responses: expected an object such as "
                            "{\"retention_days\": 30, "
                            "\"max_bytes_per_tenant\": 104857600}");
    }
    if ((rv = tg_json_only_keys(d, sec, "pdp.responses", keys, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp.responses", "retention_days", false,
                              1, 36500, &c->resp_retention_days, err,
                              errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp.responses", "retention_seconds",
                              false, 1, 3153600000LL, &c->resp_retention_s, err,
                              errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp.responses", "max_response_bytes",
                              false, 65536, TG_CONFIG_RESP_MAX_LIMIT,
                              &c->resp_max_response_bytes, err, errlen)) !=
            TG_OK) {
        return rv;
    }
    return tg_json_get_int(d, sec, "pdp.responses", "max_bytes_per_tenant",
                           false, 0, INT64_MAX, &c->resp_max_bytes_per_tenant,
                           err, errlen);
}
