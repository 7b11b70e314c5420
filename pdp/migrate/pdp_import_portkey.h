/* pdp_import_portkey.h - `tollgate-pdp import portkey CONFIG.json`: a
 * Portkey gateway config (strategy, targets, retry, request_timeout, ...)
 * becomes Tollgate deployments of one client-facing model, a model group,
 * data-plane settings, route rules (conditional routing) and the tests
 * that pin what each condition routes to. Every field read is a finding
 * (pdp_migrate.h). Not thread-safe; one import at a time. Called by
 * pdp_import_portkey_cli and the unit tests. */
#ifndef PDP_IMPORT_PORTKEY_H
#define PDP_IMPORT_PORTKEY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "pdp_migrate.h"
#include "tg_err.h"

/* What one import built; every member owned (pdp_portkey_fini frees). */
typedef struct pdp_portkey {
    char  *model;        /* the model name clients ask for */
    cJSON *deployments;  /* array, never empty after a successful import */
    cJSON *model_groups; /* array (may be empty) */
    cJSON *dataplane;    /* object: retries, total_timeout_ms, ... */
    cJSON *rules;        /* array: route rules (conditional) */
    cJSON *tests;        /* array: test cases for imported.test.json */
} pdp_portkey;

/* pdp_portkey_import reads the Portkey config at path and fills *pk.
 * model is --model (NULL: taken from override_params.model, see the
 * README). TG_OK with findings added to f; otherwise TG_ECONFIG (the
 * input cannot become a working config: err says "path:line:col: what",
 * and what to do), TG_EIO/TG_ETOOBIG (unreadable), TG_ENOMEM. Never puts
 * a secret (api_key, a virtual key, AWS credentials) into pk, f or err.
 * Owns: *pk on TG_OK and on failure alike (call pdp_portkey_fini). */
tg_err pdp_portkey_import(pdp_portkey *pk, const char *path, const char *model,
                          pdp_mig_findings *f, char *err, size_t errlen);

/* pdp_portkey_output points o at what pk holds (borrowed: valid until
 * pdp_portkey_fini). */
void pdp_portkey_output(const pdp_portkey *pk, pdp_mig_output *o);

/* pdp_portkey_fini frees pk's members; a zeroed pk is fine. */
void pdp_portkey_fini(pdp_portkey *pk);

#endif
