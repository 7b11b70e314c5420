/* inj_render.c - the render command's core: read, mutate, apply. */
#include "inj_render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inj_patch.h"
#include "inj_review.h"
#include "tg_yaml.h"

tg_err
inj_render_file(const char *path, cJSON **out, char *err, size_t errlen)
{
    FILE  *f = fopen(path, "rb");
    char  *buf;
    char   why[400];
    size_t n;
    tg_err rv;

    *out = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TG_EIO;
    }
    if ((buf = malloc(INJ_REVIEW_MAX_BYTES + 1)) == NULL) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return TG_ENOMEM;
    }
    n = fread(buf, 1, INJ_REVIEW_MAX_BYTES + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return TG_EIO;
    }
    fclose(f);
    if (n > INJ_REVIEW_MAX_BYTES) {
        free(buf);
        snprintf(err, errlen, "%s: over 4 MiB", path);
        return TG_ETOOBIG;
    }
    if ((rv = tg_yaml_manifest_parse(buf, n, out, why, sizeof(why))) != TG_OK) {
        snprintf(err, errlen, "%s:%s", path, why);
    }
    free(buf);
    return rv;
}

tg_err
inj_render_pod(const inj_config *cfg, const cJSON *pod, const char *ns,
               bool default_inject, cJSON **out, inj_result *res, char *err,
               size_t errlen)
{
    const char  *kind = cJSON_GetStringValue(cJSON_GetObjectItem(pod, "kind"));
    const cJSON *md   = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    tg_err       rv;

    memset(res, 0, sizeof(*res));
    *out = NULL;
    if (!cJSON_IsObject(pod) || (kind != NULL && strcmp(kind, "Pod") != 0)) {
        snprintf(err, errlen, "expected a Pod (kind: Pod), got %s",
                 kind != NULL ? kind : "something else");
        return TG_EINVAL;
    }
    if (ns == NULL) {
        ns = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    }
    if ((rv = inj_mutate(cfg, pod, ns != NULL ? ns : "default", default_inject,
                         res)) != TG_OK) {
        snprintf(err, errlen, "out of memory");
        return rv;
    }
    if ((*out = cJSON_Duplicate(pod, true)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    if (res->verdict == INJ_PATCH &&
        (rv = inj_patch_apply(*out, res->patch, err, errlen)) != TG_OK) {
        return rv;
    }
    return TG_OK;
}
