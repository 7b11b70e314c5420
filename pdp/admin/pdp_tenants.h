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

/* What a route of pdp_api's table asks of pdp_tenants_write or
 * pdp_tenants_switch (pdp_api_call.how). */
typedef enum pdp_tenants_how {
    PDP_TENANTS_CREATE,  /* POST tenants: 409 if it exists */
    PDP_TENANTS_UPDATE,  /* PATCH tenants/ID: 404 if it does not */
    PDP_TENANTS_SET,     /* PUT tenants/ID: either; "new" says which */
    PDP_TENANTS_DISABLE, /* POST tenants/ID/disable */
    PDP_TENANTS_ENABLE,  /* POST tenants/ID/enable */
} pdp_tenants_how;

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status.
 *   GET tenants              pdp_tenants_list
 *   GET tenants/ID           pdp_tenants_show (with its spend)
 *   POST tenants, PATCH tenants/ID, PUT tenants/ID
 *                            pdp_tenants_write (c->how: create, update or
 *                            set); what is not given stays, a label set to
 *                            null is removed
 *   POST tenants/ID/disable|enable
 *                            pdp_tenants_switch: a disabled tenant's keys
 *                            are refused (403 tenant_disabled); "changed"
 *                            says whether it was otherwise
 *   DELETE tenants/ID        pdp_tenants_delete (409 tenant_has_keys while
 *                            a key of it works; removes its budget and
 *                            rate limits, keeps its keys' records, usage
 *                            and spend) */
unsigned pdp_tenants_list(pdp_api_call *c);
unsigned pdp_tenants_show(pdp_api_call *c);
unsigned pdp_tenants_write(pdp_api_call *c);
unsigned pdp_tenants_switch(pdp_api_call *c);
unsigned pdp_tenants_delete(pdp_api_call *c);

#endif
