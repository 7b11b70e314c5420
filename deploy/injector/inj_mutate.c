/* inj_mutate.c - the injection rules, in order: who is never injected,
 * who opted in or out, what the annotations ask for (refused when
 * invalid), then the patch. */
#include "inj_mutate.h"

#include <stdio.h>
#include <string.h>

#include "inj_patch.h"
#include "inj_spec.h"

#define INJ_PATH_MAX 600

static const char *const inj_app_env[][2] = {
    {"OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"},
    {"ANTHROPIC_BASE_URL", "http://127.0.0.1:8080"},
};
#define INJ_APP_ENV_N (sizeof(inj_app_env) / sizeof(inj_app_env[0]))

void
inj_result_fini(inj_result *res)
{
    if (res != NULL) {
        cJSON_Delete(res->patch);
        res->patch = NULL;
    }
}

static const cJSON *
inj_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

    return b != NULL ? cJSON_GetObjectItemCaseSensitive(v, b) : v;
}

/* inj_meta_str is metadata.<map>[key] when it is a string, else NULL. */
static const char *
inj_meta_str(const cJSON *pod, const char *map, const char *key)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(inj_at(pod, "metadata", map), key));
}

static bool
inj_has_container(const cJSON *pod, const char *list)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, inj_at(pod, "spec", list))
    {
        const char *n = cJSON_GetStringValue(inj_at(c, "name", NULL));

        if (n != NULL &&
            (strcmp(n, INJ_NAME_PDP) == 0 || strcmp(n, INJ_NAME_DP) == 0)) {
            return true;
        }
    }
    return false;
}

/* inj_skip: the reason pod is left alone, or NULL when it is injected. */
static const char *
inj_skip(const inj_config *cfg, const cJSON *pod, const char *ns,
         bool default_inject)
{
    const char *in   = inj_meta_str(pod, "annotations", INJ_ANN_INJECT);
    const char *done = inj_meta_str(pod, "annotations", INJ_ANN_INJECTED);
    const char *comp =
        inj_meta_str(pod, "labels", "app.kubernetes.io/component");

    if (!cJSON_IsArray(inj_at(pod, "spec", "containers"))) {
        return "not a Pod (no spec.containers)";
    }
    if (strcmp(ns, "kube-system") == 0) {
        return "namespace kube-system is never injected";
    }
    if (strcmp(ns, cfg->own_namespace) == 0) {
        return "the injector's own namespace is never injected";
    }
    if (comp != NULL && strcmp(comp, "injector") == 0) {
        return "the injector itself is never injected";
    }
    if (in != NULL && strcmp(in, "false") == 0) {
        return "opted out (tollgate.io/inject: \"false\")";
    }
    if (!(in != NULL && strcmp(in, "true") == 0) && !default_inject) {
        return "not opted in";
    }
    if ((done != NULL && strcmp(done, "true") == 0) ||
        inj_has_container(pod, "initContainers") ||
        inj_has_container(pod, "containers")) {
        return "already injected";
    }
    return NULL;
}

/* inj_quantity reads one resource annotation over its default; false
 * (and the message in res) when it is not a quantity. */
static bool
inj_quantity(const cJSON *pod, const char *key, const char **val,
             inj_result *res)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        inj_at(pod, "metadata", "annotations"), key);

    if (v == NULL) {
        return true;
    }
    if (cJSON_IsString(v) && inj_quantity_ok(v->valuestring)) {
        *val = v->valuestring;
        return true;
    }
    snprintf(res->why, sizeof(res->why),
             "tollgate-injector: annotation %s: \"%.64s\" is not a "
             "Kubernetes quantity (e.g. \"250m\", \"256Mi\", \"1Gi\")",
             key, cJSON_IsString(v) ? v->valuestring : "(not a string)");
    return false;
}

/* inj_plan_read turns the pod's annotations into a plan; false (and the
 * message for the user in res) when one is invalid. */
static bool
inj_plan_read(const inj_config *cfg, const cJSON *pod, inj_plan *plan,
              inj_result *res)
{
    const char *mode   = inj_meta_str(pod, "annotations", INJ_ANN_MODE);
    const char *bundle = inj_meta_str(pod, "annotations", INJ_ANN_BUNDLE);

    plan->pdp       = cfg->res_pdp;
    plan->dataplane = cfg->res_dataplane;
    plan->bundle    = bundle != NULL ? bundle : cfg->default_bundle;
    if (mode != NULL && strcmp(mode, "sidecar") != 0 &&
        strcmp(mode, "central") != 0) {
        snprintf(res->why, sizeof(res->why),
                 "tollgate-injector: annotation " INJ_ANN_MODE
                 ": \"%.64s\" is neither \"sidecar\" nor \"central\"",
                 mode);
        return false;
    }
    plan->central = mode != NULL && strcmp(mode, "central") == 0;
    if (!inj_dns_name_ok(plan->bundle)) {
        snprintf(res->why, sizeof(res->why),
                 "tollgate-injector: annotation " INJ_ANN_BUNDLE
                 ": \"%.64s\" is not a ConfigMap name",
                 plan->bundle);
        return false;
    }
    return inj_quantity(pod, "tollgate.io/dataplane-cpu", &plan->dataplane.cpu,
                        res) &&
           inj_quantity(pod, "tollgate.io/dataplane-memory",
                        &plan->dataplane.memory, res) &&
           inj_quantity(pod, "tollgate.io/pdp-cpu", &plan->pdp.cpu, res) &&
           inj_quantity(pod, "tollgate.io/pdp-memory", &plan->pdp.memory, res);
}

/* inj_vol_clash: the name of a volume the pod already has that the
 * injected ones would repeat, or NULL. */
static const char *
inj_vol_clash(const cJSON *pod, const cJSON *vols)
{
    const cJSON *mine;
    const cJSON *theirs;

    cJSON_ArrayForEach(mine, vols)
    {
        const char *n = cJSON_GetStringValue(inj_at(mine, "name", NULL));

        cJSON_ArrayForEach(theirs, inj_at(pod, "spec", "volumes"))
        {
            const char *t = cJSON_GetStringValue(inj_at(theirs, "name", NULL));

            if (t != NULL && n != NULL && strcmp(t, n) == 0) {
                return n;
            }
        }
    }
    return NULL;
}

/* inj_add_list adds items (an array; taken) to the pod's array at path:
 * the whole array when the pod has none, else each element, at index 0
 * onwards (front) or at the end. */
static tg_err
inj_add_list(cJSON *ops, const cJSON *have, const char *path, cJSON *items,
             bool front)
{
    char   p[INJ_PATH_MAX];
    cJSON *it;
    int    i  = 0;
    tg_err rv = TG_OK;

    if (!cJSON_IsArray(have)) {
        return inj_patch_add(ops, path, items);
    }
    while (rv == TG_OK && (it = cJSON_DetachItemFromArray(items, 0)) != NULL) {
        int n = front ? snprintf(p, sizeof(p), "%s/%d", path, i++)
                      : snprintf(p, sizeof(p), "%s/-", path);
        if (n < 0 || (size_t)n >= sizeof(p)) {
            cJSON_Delete(it);
            rv = TG_ETOOBIG; /* paths are ours and short: never */
            break;
        }
        rv = inj_patch_add(ops, p, it);
    }
    cJSON_Delete(items);
    return rv;
}

static bool
inj_env_has(const cJSON *env, const char *name)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, env)
    {
        const char *n = cJSON_GetStringValue(inj_at(e, "name", NULL));

        if (n != NULL && strcmp(n, name) == 0) {
            return true;
        }
    }
    return false;
}

/* inj_add_env points each app container at the data plane, leaving any
 * variable the container already sets as it is. */
static tg_err
inj_add_env(cJSON *ops, const cJSON *pod)
{
    const cJSON *c;
    char         path[INJ_PATH_MAX];
    int          i  = 0;
    tg_err       rv = TG_OK;

    cJSON_ArrayForEach(c, inj_at(pod, "spec", "containers"))
    {
        const cJSON *env  = inj_at(c, "env", NULL);
        cJSON       *vars = cJSON_CreateArray();

        for (size_t k = 0; vars != NULL && k < INJ_APP_ENV_N; k++) {
            cJSON *e;

            if (inj_env_has(env, inj_app_env[k][0])) {
                continue;
            }
            if ((e = cJSON_CreateObject()) == NULL ||
                !cJSON_AddItemToArray(vars, e) ||
                cJSON_AddStringToObject(e, "name", inj_app_env[k][0]) == NULL ||
                cJSON_AddStringToObject(e, "value", inj_app_env[k][1]) ==
                    NULL) {
                cJSON_Delete(vars);
                return TG_ENOMEM;
            }
        }
        snprintf(path, sizeof(path), "/spec/containers/%d/env", i++);
        if (vars == NULL) {
            return TG_ENOMEM;
        }
        if (cJSON_GetArraySize(vars) == 0) {
            cJSON_Delete(vars);
        } else if ((rv = inj_add_list(ops, env, path, vars, false)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* inj_wrap returns {key: v}; takes v (freed on failure, NULL then). */
static cJSON *
inj_wrap(const char *key, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || v == NULL || !cJSON_AddItemToObject(o, key, v)) {
        cJSON_Delete(o);
        cJSON_Delete(v);
        return NULL;
    }
    return o;
}

/* inj_add_marker sets metadata.annotations["tollgate.io/injected"]. */
static tg_err
inj_add_marker(cJSON *ops, const cJSON *pod)
{
    char   key[128];
    char   path[INJ_PATH_MAX];
    cJSON *obj;

    if (cJSON_IsObject(inj_at(pod, "metadata", "annotations"))) {
        if (inj_ptr_escape(key, sizeof(key), INJ_ANN_INJECTED) != TG_OK) {
            return TG_EINTERNAL;
        }
        snprintf(path, sizeof(path), "/metadata/annotations/%s", key);
        return inj_patch_add(ops, path, cJSON_CreateString("true"));
    }
    if ((obj = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(obj, INJ_ANN_INJECTED, "true") == NULL) {
        cJSON_Delete(obj);
        return TG_ENOMEM;
    }
    if (cJSON_IsObject(inj_at(pod, "metadata", NULL))) {
        return inj_patch_add(ops, "/metadata/annotations", obj);
    }
    return inj_patch_add(ops, "/metadata", inj_wrap("annotations", obj));
}

/* inj_sidecars returns [pdp, dataplane] (central mode: [dataplane]). */
static cJSON *
inj_sidecars(const inj_config *cfg, const inj_plan *plan)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *pdp = plan->central ? NULL : inj_spec_pdp(cfg, plan);
    cJSON *dp  = inj_spec_dataplane(cfg, plan);

    if (arr == NULL || dp == NULL || (!plan->central && pdp == NULL)) {
        cJSON_Delete(arr);
        cJSON_Delete(pdp);
        cJSON_Delete(dp);
        return NULL;
    }
    if (pdp != NULL) {
        cJSON_AddItemToArray(arr, pdp); /* first: it must be up first */
    }
    cJSON_AddItemToArray(arr, dp);
    return arr;
}

/* inj_build makes the patch: sidecars in front of the pod's own init
 * containers (so those can use the gateway too), volumes, app env, the
 * marker. Fills res->why when a volume name clashes. */
static tg_err
inj_build(const inj_config *cfg, const cJSON *pod, const inj_plan *plan,
          inj_result *res)
{
    cJSON      *ops  = cJSON_CreateArray();
    cJSON      *vols = inj_spec_volumes(cfg, plan);
    cJSON      *side = inj_sidecars(cfg, plan);
    const char *clash;
    tg_err      rv;

    if (ops == NULL || vols == NULL || side == NULL) {
        cJSON_Delete(ops);
        cJSON_Delete(vols);
        cJSON_Delete(side);
        return TG_ENOMEM;
    }
    if ((clash = inj_vol_clash(pod, vols)) != NULL) {
        res->verdict = INJ_DENY;
        snprintf(res->why, sizeof(res->why),
                 "tollgate-injector: the pod already has a volume named "
                 "\"%s\"; rename it or opt out with " INJ_ANN_INJECT
                 ": \"false\"",
                 clash);
        cJSON_Delete(ops);
        cJSON_Delete(vols);
        cJSON_Delete(side);
        return TG_OK;
    }
    if ((rv = inj_add_list(ops, inj_at(pod, "spec", "initContainers"),
                           "/spec/initContainers", side, true)) != TG_OK) {
        cJSON_Delete(vols);
    }
    if (rv != TG_OK ||
        (rv = inj_add_list(ops, inj_at(pod, "spec", "volumes"), "/spec/volumes",
                           vols, false)) != TG_OK ||
        (rv = inj_add_env(ops, pod)) != TG_OK ||
        (rv = inj_add_marker(ops, pod)) != TG_OK) {
        cJSON_Delete(ops);
        return rv;
    }
    res->verdict = INJ_PATCH;
    res->patch   = ops;
    snprintf(res->why, sizeof(res->why), "injected (pdp-mode %s)",
             plan->central ? "central" : "sidecar");
    return TG_OK;
}

tg_err
inj_mutate(const inj_config *cfg, const cJSON *pod, const char *ns,
           bool default_inject, inj_result *res)
{
    const char *skip;
    inj_plan    plan;

    memset(res, 0, sizeof(*res));
    if ((skip = inj_skip(cfg, pod, ns, default_inject)) != NULL) {
        res->verdict = INJ_SKIP;
        snprintf(res->why, sizeof(res->why), "%s", skip);
        return TG_OK;
    }
    if (!inj_plan_read(cfg, pod, &plan, res)) {
        res->verdict = INJ_DENY;
        return TG_OK;
    }
    return inj_build(cfg, pod, &plan, res);
}
