/* inj_spec.h - the Kubernetes objects the injector adds to a pod: the PDP
 * and data-plane native sidecars and their volumes, as cJSON trees. Only
 * inj_mutate calls it. Pure and thread-safe. */
#ifndef INJ_SPEC_H
#define INJ_SPEC_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "inj_config.h"

#define INJ_VOL_RUN "tollgate-run"
#define INJ_VOL_CONFIG "tollgate-config"
#define INJ_VOL_BUNDLE "tollgate-bundle"
#define INJ_VOL_STATE "tollgate-pdp-state"
#define INJ_VOL_SPOOL "tollgate-spool"
#define INJ_VOL_TLS "tollgate-tls"
#define INJ_VOL_PRICING "tollgate-pricing"
#define INJ_VOL_TMP "tollgate-tmp"

/* What one pod gets, decided from its annotations and the config. */
typedef struct inj_plan {
    bool          central; /* tollgate.io/pdp-mode: central */
    const char   *bundle;  /* ConfigMap name (sidecar mode) */
    inj_resources pdp;
    inj_resources dataplane;
} inj_plan;

/* Each returns a new tree (owned: cJSON_Delete), NULL when out of
 * memory. Borrows cfg and plan until return. */
cJSON *inj_spec_pdp(const inj_config *cfg, const inj_plan *plan);
cJSON *inj_spec_dataplane(const inj_config *cfg, const inj_plan *plan);
/* inj_spec_volumes is the array of volumes the sidecars mount. */
cJSON *inj_spec_volumes(const inj_config *cfg, const inj_plan *plan);

#endif
