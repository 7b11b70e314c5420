/* inj_mutate.h - the injection rules: whether a Pod gets Tollgate's
 * sidecars, and the RFC 6902 patch that adds them (native sidecars:
 * initContainers with restartPolicy Always; volumes; app env; the
 * tollgate.io/injected marker). The one code path of both the webhook and
 * `render`. Pure and thread-safe (the config is only read). */
#ifndef INJ_MUTATE_H
#define INJ_MUTATE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "inj_config.h"
#include "tg_err.h"

#define INJ_ANN_INJECT "tollgate.io/inject"
#define INJ_ANN_INJECTED "tollgate.io/injected"
#define INJ_ANN_MODE "tollgate.io/pdp-mode"
#define INJ_ANN_BUNDLE "tollgate.io/bundle"
#define INJ_NAME_PDP "tollgate-pdp"
#define INJ_NAME_DP "tollgate-dataplane"

typedef enum inj_verdict {
    INJ_SKIP = 0, /* allowed unchanged; why says why */
    INJ_PATCH,    /* allowed with patch */
    INJ_DENY,     /* refused; why is the message for the user */
} inj_verdict;

typedef struct inj_result {
    inj_verdict verdict;
    char        why[512];
    cJSON      *patch; /* INJ_PATCH: an array of "add" operations; owned */
} inj_result;

/* inj_mutate decides for pod (a Pod object) created in namespace ns;
 * default_inject is the opt-in a pod without a tollgate.io/inject
 * annotation gets (the config's inject_by_default, or the webhook path
 * /mutate?default=inject of the namespace-label configuration).
 * TG_ENOMEM only; a refusal is a verdict. Borrows cfg and pod until
 * return. Owns: res->patch, free with inj_result_fini. */
tg_err inj_mutate(const inj_config *cfg, const cJSON *pod, const char *ns,
                  bool default_inject, inj_result *res)
    __attribute__((warn_unused_result));

void inj_result_fini(inj_result *res);

#endif
