/* inj_render.h - `tollgate-injector render`: a Pod manifest (YAML or
 * JSON) through the webhook's own rules (inj_mutate), the patch applied
 * by inj_patch_apply, so what is printed is what the API server would
 * store. Pure; called by inj_main and the golden tests. */
#ifndef INJ_RENDER_H
#define INJ_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "inj_config.h"
#include "inj_mutate.h"
#include "tg_err.h"

/* inj_render_pod runs pod (borrowed) through inj_mutate in namespace ns
 * (NULL: the pod's metadata.namespace, else "default"). *out gets the pod
 * as the API server would store it (unchanged when skipped or denied) and
 * res the verdict (res->patch stays owned by res). TG_EINVAL with why in
 * err when pod is not a Pod or the patch does not apply. Owns: *out
 * (cJSON_Delete) and res (inj_result_fini), also on error. */
tg_err inj_render_pod(const inj_config *cfg, const cJSON *pod, const char *ns,
                      bool default_inject, cJSON **out, inj_result *res,
                      char *err, size_t errlen);

/* inj_render_file reads path (at most 4 MiB) as a manifest. Owns: *out. */
tg_err inj_render_file(const char *path, cJSON **out, char *err, size_t errlen);

#endif
