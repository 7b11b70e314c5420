/* pdp_tenants.h - tenants, the admin API's resource tenants/: their rules
 * (ids, names, tiers, labels) and the records the API answers with.
 * Thread-safe: each call reads and writes only through the store. */
#ifndef PDP_TENANTS_H
#define PDP_TENANTS_H

#include <cjson/cJSON.h>

#include "pdp_api_call.h"
#include "pdp_store.h"

/* pdp_tenants_json renders a tenant as the API answers it. Owns: the
 * result (cJSON_Delete). */
cJSON *pdp_tenants_json(const pdp_tenant *t);

/* pdp_tenants_read reads tenant id, and its all-time totals when tot is
 * not NULL (zero when it has none), in one snapshot. TG_ENOTFOUND when
 * there is no such tenant. */
tg_err pdp_tenants_read(pdp_api_call *c, const char *id, pdp_tenant *t,
                        pdp_totals *tot);

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status.
 *   GET tenants              pdp_tenants_list
 *   POST tenants             pdp_tenants_create (409 if it exists)
 *   GET tenants/ID           pdp_tenants_show (with its spend)
 *   PUT tenants/ID           pdp_tenants_put (create or change; "new")
 *   PATCH tenants/ID         pdp_tenants_patch (404 if it does not exist)
 *   POST tenants/ID/disable  pdp_tenants_disable (its keys refused: 403
 *                            tenant_disabled; "changed" says if it was not)
 *   POST tenants/ID/enable   pdp_tenants_enable
 *   DELETE tenants/ID        pdp_tenants_delete (409 tenant_has_keys while
 *                            a key of it works; removes its budget and
 *                            rate limits, keeps its keys' records, usage
 *                            and spend) */
unsigned pdp_tenants_list(pdp_api_call *c);
unsigned pdp_tenants_create(pdp_api_call *c);
unsigned pdp_tenants_show(pdp_api_call *c);
unsigned pdp_tenants_put(pdp_api_call *c);
unsigned pdp_tenants_patch(pdp_api_call *c);
unsigned pdp_tenants_disable(pdp_api_call *c);
unsigned pdp_tenants_enable(pdp_api_call *c);
unsigned pdp_tenants_delete(pdp_api_call *c);

#endif
