/* inj_spec.c - builds the injected containers and volumes. Every builder
 * goes through inj_b, whose first allocation failure sticks, so a tree is
 * checked once, at the end, instead of after every member. */
#include "inj_spec.h"

#include <stddef.h>

#define INJ_UID 65532
#define INJ_PORT_DP 8080
#define INJ_PORT_PDP 9091
#define INJ_CONFIG_FILE "/etc/tollgate/tollgate.json"

typedef struct inj_b {
    bool failed;
} inj_b;

/* inj_b_put adds item to parent (an object when key != NULL, else an
 * array); returns item, or NULL after marking b failed. */
static cJSON *
inj_b_put(inj_b *b, cJSON *parent, const char *key, cJSON *item)
{
    bool ok;

    if (parent == NULL || item == NULL) {
        cJSON_Delete(item);
        b->failed = true;
        return NULL;
    }
    ok = key != NULL ? cJSON_AddItemToObject(parent, key, item)
                     : cJSON_AddItemToArray(parent, item);
    if (!ok) {
        cJSON_Delete(item);
        b->failed = true;
        return NULL;
    }
    return item;
}

static cJSON *
inj_b_obj(inj_b *b, cJSON *parent, const char *key)
{
    return inj_b_put(b, parent, key, cJSON_CreateObject());
}

static cJSON *
inj_b_arr(inj_b *b, cJSON *parent, const char *key)
{
    return inj_b_put(b, parent, key, cJSON_CreateArray());
}

static void
inj_b_str(inj_b *b, cJSON *parent, const char *key, const char *v)
{
    inj_b_put(b, parent, key, cJSON_CreateString(v));
}

static void
inj_b_num(inj_b *b, cJSON *parent, const char *key, double v)
{
    inj_b_put(b, parent, key, cJSON_CreateNumber(v));
}

static void
inj_b_bool(inj_b *b, cJSON *parent, const char *key, bool v)
{
    inj_b_put(b, parent, key, cJSON_CreateBool(v));
}

/* inj_b_done returns root, or frees it and returns NULL if b failed. */
static cJSON *
inj_b_done(inj_b *b, cJSON *root)
{
    if (b->failed || root == NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static void
inj_spec_security(inj_b *b, cJSON *c)
{
    cJSON *sc = inj_b_obj(b, c, "securityContext");

    inj_b_bool(b, sc, "runAsNonRoot", true);
    inj_b_num(b, sc, "runAsUser", INJ_UID);
    inj_b_num(b, sc, "runAsGroup", INJ_UID);
    inj_b_bool(b, sc, "readOnlyRootFilesystem", true);
    inj_b_bool(b, sc, "allowPrivilegeEscalation", false);
    inj_b_str(b, inj_b_arr(b, inj_b_obj(b, sc, "capabilities"), "drop"), NULL,
              "ALL");
    inj_b_str(b, inj_b_obj(b, sc, "seccompProfile"), "type", "RuntimeDefault");
}

/* inj_spec_resources: CPU is only requested (a limit throttles the hot
 * path); memory is requested and limited alike (Guaranteed memory). */
static void
inj_spec_resources(inj_b *b, cJSON *c, const inj_resources *r)
{
    cJSON *res = inj_b_obj(b, c, "resources");
    cJSON *req = inj_b_obj(b, res, "requests");

    inj_b_str(b, req, "cpu", r->cpu);
    inj_b_str(b, req, "memory", r->memory);
    inj_b_str(b, inj_b_obj(b, res, "limits"), "memory", r->memory);
}

static void
inj_spec_probe(inj_b *b, cJSON *c, const char *kind, const char *path, int port,
               int period, int failures)
{
    cJSON *p = inj_b_obj(b, c, kind);
    cJSON *g = inj_b_obj(b, p, "httpGet");

    inj_b_str(b, g, "path", path);
    inj_b_num(b, g, "port", port);
    inj_b_num(b, p, "periodSeconds", period);
    inj_b_num(b, p, "failureThreshold", failures);
}

/* inj_spec_probes: the startup probe holds the next container back until
 * this one answers /readyz (native sidecars start in order), so the app
 * never starts before its gateway can decide. */
static void
inj_spec_probes(inj_b *b, cJSON *c, int port)
{
    inj_spec_probe(b, c, "startupProbe", "/readyz", port, 1, 120);
    inj_spec_probe(b, c, "readinessProbe", "/readyz", port, 5, 3);
    inj_spec_probe(b, c, "livenessProbe", "/healthz", port, 10, 3);
}

/* inj_spec_mount mounts vol at path; sub != NULL: only that file of it. */
static void
inj_spec_mount(inj_b *b, cJSON *mounts, const char *vol, const char *path,
               const char *sub, bool ro)
{
    cJSON *m = inj_b_obj(b, mounts, NULL);

    inj_b_str(b, m, "name", vol);
    inj_b_str(b, m, "mountPath", path);
    if (sub != NULL) {
        inj_b_str(b, m, "subPath", sub);
    }
    if (ro) {
        inj_b_bool(b, m, "readOnly", true);
    }
}

/* inj_spec_mounts: what both sidecars mount. tollgate.json is one file
 * (subPath), so /etc/tollgate stays an ordinary directory the bundle,
 * pricing and TLS mounts can sit in (a mount point cannot be made inside
 * a read-only ConfigMap volume); a config change takes a pod restart, as
 * with the deploy/k8s manifests. */
static cJSON *
inj_spec_mounts(inj_b *b, cJSON *c, const inj_plan *plan)
{
    cJSON *mounts = inj_b_arr(b, c, "volumeMounts");

    inj_spec_mount(b, mounts, INJ_VOL_CONFIG, INJ_CONFIG_FILE, "tollgate.json",
                   true);
    inj_spec_mount(b, mounts, INJ_VOL_PRICING, "/etc/tollgate/pricing", NULL,
                   true);
    if (!plan->central) {
        inj_spec_mount(b, mounts, INJ_VOL_RUN, "/run/tollgate", NULL, false);
    }
    inj_spec_mount(b, mounts, INJ_VOL_TMP, "/tmp", NULL, false);
    return mounts;
}

static void
inj_spec_port(inj_b *b, cJSON *c, const char *name, int port)
{
    cJSON *p = inj_b_obj(b, inj_b_arr(b, c, "ports"), NULL);

    inj_b_str(b, p, "name", name);
    inj_b_num(b, p, "containerPort", port);
    inj_b_str(b, p, "protocol", "TCP");
}

/* inj_spec_container: what both sidecars share. */
static cJSON *
inj_spec_container(inj_b *b, const inj_config *cfg, const char *name,
                   const char *image)
{
    cJSON *c = cJSON_CreateObject();

    if (c == NULL) {
        b->failed = true;
        return NULL;
    }
    inj_b_str(b, c, "name", name);
    inj_b_str(b, c, "image", image);
    inj_b_str(b, c, "imagePullPolicy", cfg->image_pull_policy);
    inj_b_str(b, c, "restartPolicy", "Always");
    return c;
}

cJSON *
inj_spec_pdp(const inj_config *cfg, const inj_plan *plan)
{
    inj_b  b    = {false};
    cJSON *c    = inj_spec_container(&b, cfg, "tollgate-pdp", cfg->image_pdp);
    cJSON *args = inj_b_arr(&b, c, "args");
    cJSON *mounts;

    inj_b_str(&b, args, NULL, "serve");
    inj_b_str(&b, args, NULL, "--config");
    inj_b_str(&b, args, NULL, INJ_CONFIG_FILE);
    inj_spec_port(&b, c, "tg-pdp-probe", INJ_PORT_PDP);
    inj_spec_resources(&b, c, &plan->pdp);
    inj_spec_security(&b, c);
    inj_spec_probes(&b, c, INJ_PORT_PDP);
    mounts = inj_spec_mounts(&b, c, plan);
    inj_spec_mount(&b, mounts, INJ_VOL_BUNDLE, "/etc/tollgate/bundle", NULL,
                   true);
    /* The PDP makes state_dir /var/lib/tollgate/pdp (0700) itself: an
     * emptyDir is 0777, trusted only as a private_volumes parent. */
    inj_spec_mount(&b, mounts, INJ_VOL_STATE, "/var/lib/tollgate", NULL, false);
    return inj_b_done(&b, c);
}

static void
inj_spec_dp_env(inj_b *b, const inj_config *cfg, const inj_plan *plan, cJSON *c)
{
    cJSON *ref;
    cJSON *e;

    if (plan->central && cfg->central_pdp_url != NULL) {
        e = inj_b_obj(b, inj_b_arr(b, c, "env"), NULL);
        inj_b_str(b, e, "name", "TOLLGATE_PDP_URL");
        inj_b_str(b, e, "value", cfg->central_pdp_url);
    }
    /* Optional: a pod whose namespace has no provider keys still starts
     * (its requests then fail upstream, visibly, not at pod creation). */
    ref = inj_b_obj(b, inj_b_obj(b, inj_b_arr(b, c, "envFrom"), NULL),
                    "secretRef");
    inj_b_str(b, ref, "name", cfg->provider_keys_secret);
    inj_b_bool(b, ref, "optional", true);
}

cJSON *
inj_spec_dataplane(const inj_config *cfg, const inj_plan *plan)
{
    inj_b  b = {false};
    cJSON *c =
        inj_spec_container(&b, cfg, "tollgate-dataplane", cfg->image_dataplane);
    cJSON *args = inj_b_arr(&b, c, "args");
    cJSON *mounts;

    inj_b_str(&b, args, NULL, "--config");
    inj_b_str(&b, args, NULL, INJ_CONFIG_FILE);
    inj_spec_dp_env(&b, cfg, plan, c);
    inj_spec_port(&b, c, "tg-http", INJ_PORT_DP);
    inj_spec_resources(&b, c, &plan->dataplane);
    inj_spec_security(&b, c);
    inj_spec_probes(&b, c, INJ_PORT_DP);
    mounts = inj_spec_mounts(&b, c, plan);
    if (plan->central) {
        inj_spec_mount(&b, mounts, INJ_VOL_TLS, "/etc/tollgate/tls", NULL,
                       true);
    }
    /* The data plane makes spool_dir /var/lib/tollgate/spool itself. */
    inj_spec_mount(&b, mounts, INJ_VOL_SPOOL, "/var/lib/tollgate", NULL, false);
    return inj_b_done(&b, c);
}

/* inj_spec_volume adds {name, kind: {ref_key: ref}} (no ref_key: {}). */
static cJSON *
inj_spec_volume(inj_b *b, cJSON *vols, const char *name, const char *kind,
                const char *ref_key, const char *ref)
{
    cJSON *v = inj_b_obj(b, vols, NULL);
    cJSON *src;

    inj_b_str(b, v, "name", name);
    src = inj_b_obj(b, v, kind);
    if (ref_key != NULL) {
        inj_b_str(b, src, ref_key, ref);
    }
    return src;
}

/* inj_spec_scratch adds an emptyDir; memory: tmpfs. */
static void
inj_spec_scratch(inj_b *b, cJSON *vols, const char *name, bool memory,
                 const char *size)
{
    cJSON *src = inj_spec_volume(b, vols, name, "emptyDir", NULL, NULL);

    if (memory) {
        inj_b_str(b, src, "medium", "Memory");
    }
    inj_b_str(b, src, "sizeLimit", size);
}

cJSON *
inj_spec_volumes(const inj_config *cfg, const inj_plan *plan)
{
    inj_b       b    = {false};
    cJSON      *vols = cJSON_CreateArray();
    const char *cm =
        plan->central ? cfg->central_config_map : cfg->sidecar_config_map;

    inj_spec_volume(&b, vols, INJ_VOL_CONFIG, "configMap", "name", cm);
    inj_spec_volume(&b, vols, INJ_VOL_PRICING, "configMap", "name",
                    cfg->pricing_config_map);
    if (plan->central) {
        inj_spec_volume(&b, vols, INJ_VOL_TLS, "secret", "secretName",
                        cfg->tls_secret);
    } else {
        inj_spec_volume(&b, vols, INJ_VOL_BUNDLE, "configMap", "name",
                        plan->bundle);
        inj_spec_scratch(&b, vols, INJ_VOL_RUN, true, "1Mi");
        inj_spec_scratch(&b, vols, INJ_VOL_STATE, false, "1Gi");
    }
    inj_spec_scratch(&b, vols, INJ_VOL_SPOOL, false, "512Mi");
    inj_spec_scratch(&b, vols, INJ_VOL_TMP, true, "16Mi");
    return inj_b_done(&b, vols);
}
