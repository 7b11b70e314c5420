/* pdp_keys.c - see pdp_keys.h. Each handler validates everything before
 * it writes and answers with the record as stored; a secret is shown once,
 * in the answer that made it, and wiped from memory after. */
#include "pdp_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "pdp_quotas.h"
#include "pdp_tenants.h"
#include "tg_hash.h"
#include "tg_time.h"

#define PDP_KEYS_GRACE_DEFAULT_MS ((int64_t)24 * 3600000)
#define PDP_KEYS_RANDOM_BYTES 24 /* 48 hex digits */

/* pdp_keys_user_ok: 1-127 printable characters (a key's user). */
static bool
pdp_keys_user_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n < TG_MSG_USER_MAX && pdp_fmt_printable(s);
}

/* pdp_keys_secret makes a new virtual key ("sk-tg-" + 48 hex) into key
 * (cap >= PDP_KEYS_SECRET_MAX) and its SHA-256. The caller wipes key. */
static tg_err
pdp_keys_secret(char *key, size_t cap, uint8_t hash[TG_SHA256_LEN])
{
    char   hex[2 * PDP_KEYS_RANDOM_BYTES + 1];
    tg_err rv = tg_random_token(hex, PDP_KEYS_RANDOM_BYTES);

    if (rv == TG_OK) {
        snprintf(key, cap, "%s%s", PDP_KEYS_PREFIX, hex);
        tg_sha256(key, strlen(key), hash);
    }
    explicit_bzero(hex, sizeof(hex));
    return rv;
}

const char *
pdp_keys_status(const pdp_key *k, int64_t now_ms)
{
    switch (pdp_key_state_at(k, now_ms)) {
    case PDP_KEY_STATE_REVOKED:
        return "revoked";
    case PDP_KEY_STATE_EXPIRED:
        return "expired";
    case PDP_KEY_STATE_ROTATED:
        return "rotated";
    case PDP_KEY_STATE_ACTIVE:
        break;
    }
    return k->rotated_ms != 0 && k->grace_until_ms > now_ms ? "rotated-grace"
                                                            : "active";
}

cJSON *
pdp_keys_json(const pdp_key *k, const char *secret, int64_t now_ms)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *ms;

    cJSON_AddStringToObject(doc, "id", k->id);
    if (secret != NULL) {
        cJSON_AddStringToObject(doc, "key", secret);
    }
    cJSON_AddStringToObject(doc, "tenant", k->tenant);
    cJSON_AddStringToObject(doc, "name", k->name);
    if (k->user[0] != '\0') {
        cJSON_AddStringToObject(doc, "user", k->user);
    } else {
        cJSON_AddNullToObject(doc, "user");
    }
    ms = cJSON_AddArrayToObject(doc, "models");
    for (uint32_t i = 0; i < k->n_models; i++) {
        cJSON_AddItemToArray(ms, cJSON_CreateString(k->models[i]));
    }
    cJSON_AddItemToObject(doc, "labels",
                          pdp_fmt_labels_json(k->labels, k->n_labels));
    cJSON_AddStringToObject(doc, "status", pdp_keys_status(k, now_ms));
    pdp_fmt_json_time(doc, "created", k->created_ms);
    pdp_fmt_json_time(doc, "expires", k->expires_ms);
    pdp_fmt_json_time(doc, "rotated", k->rotated_ms);
    pdp_fmt_json_time(doc, "previous_valid_until",
                      k->rotated_ms != 0 ? k->grace_until_ms : 0);
    pdp_fmt_json_time(doc, "revoked",
                      k->status == PDP_KEY_REVOKED ? k->revoked_ms : 0);
    return doc;
}

typedef struct pdp_keys_filter {
    cJSON  *arr;
    int64_t now_ms;
    char    tenant[TG_ID_MAX]; /* "": every tenant's */
} pdp_keys_filter;

static void
pdp_keys_one(void *arg, const pdp_key *k)
{
    pdp_keys_filter *l = arg;

    if (l->tenant[0] == '\0' || strcmp(l->tenant, k->tenant) == 0) {
        cJSON_AddItemToArray(l->arr, pdp_keys_json(k, NULL, l->now_ms));
    }
}

/* pdp_keys_last_used adds "last_used" to each key of arr (a
 * pdp_api_snapshot function). */
static tg_err
pdp_keys_last_used(pdp_store_reader *rd, void *arr)
{
    pdp_totals t;

    for (cJSON *k = ((cJSON *)arr)->child; k != NULL; k = k->next) {
        const char *id =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "id"));
        pdp_fmt_json_time(k, "last_used",
                          id != NULL && pdp_store_totals_get(rd, PDP_TOTALS_KEY,
                                                             id, &t) == TG_OK
                              ? t.last_ms
                              : 0);
    }
    return TG_OK;
}

/* pdp_keys_cmp orders keys by creation, then id: a list reads the same
 * every time. */
static int
pdp_keys_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a;
    const cJSON *y = *(const cJSON *const *)b;
    double       cx =
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "created_ms"));
    double cy =
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(y, "created_ms"));

    if (cx != cy) {
        return cx < cy ? -1 : 1;
    }
    return strcmp(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "id")),
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(y, "id")));
}

/* pdp_keys_sort sorts arr (pdp_keys_cmp); false when out of
 * memory (arr is then as it was). */
static bool
pdp_keys_sort(cJSON *arr)
{
    int     n = cJSON_GetArraySize(arr);
    cJSON **v;
    int     i = 0;

    if (n < 2) {
        return true;
    }
    if ((v = malloc((size_t)n * sizeof(*v))) == NULL) {
        return false;
    }
    while (arr->child != NULL) {
        v[i++] = cJSON_DetachItemViaPointer(arr, arr->child);
    }
    qsort(v, (size_t)n, sizeof(*v), pdp_keys_cmp);
    for (i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, v[i]);
    }
    free(v);
    return true;
}

unsigned
pdp_keys_list(pdp_api_call *c)
{
    cJSON          *doc = cJSON_CreateObject();
    pdp_keys_filter l   = {cJSON_AddArrayToObject(doc, "keys"), c->now_ms, ""};
    tg_err          rv;

    pdp_api_query(c, "tenant", l.tenant, sizeof(l.tenant));
    rv = pdp_store_key_list(c->x->st, pdp_keys_one, &l);
    if (rv == TG_OK) {
        rv = pdp_api_snapshot(c, pdp_keys_last_used, l.arr);
    }
    if (rv == TG_OK && !pdp_keys_sort(l.arr)) {
        rv = TG_ENOMEM;
    }
    return pdp_api_listed(c, rv, doc, "list keys");
}

unsigned
pdp_keys_show(pdp_api_call *c)
{
    const char *id = c->seg[1];
    pdp_key     k;
    int64_t     last = 0;
    cJSON      *doc;
    tg_err      rv = pdp_api_read_key(c, id, &k, &last);

    if (rv == TG_ENOTFOUND) {
        return pdp_api_key_missing(c, id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the key");
    }
    doc = pdp_keys_json(&k, NULL, c->now_ms);
    pdp_fmt_json_time(doc, "last_used", last);
    return pdp_api_ok(c, 200, doc);
}

static bool
pdp_keys_model_known(const tg_config *cfg, const char *model)
{
    for (size_t i = 0; cfg != NULL && i < cfg->n_deployments; i++) {
        if (strcmp(cfg->deployments[i].model, model) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_keys_catalog writes the catalog's model names, each once, comma
 * separated (cut with "..." when they do not fit). */
static void
pdp_keys_catalog(const tg_config *cfg, char *buf, size_t cap)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; cfg != NULL && i < cfg->n_deployments; i++) {
        const char *m    = cfg->deployments[i].model;
        bool        seen = false;
        int         w;

        for (size_t j = 0; j < i && !seen; j++) {
            seen = strcmp(cfg->deployments[j].model, m) == 0;
        }
        if (seen) {
            continue;
        }
        w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", m);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(buf + (cap > 4 ? cap - 4 : 0), cap > 4 ? 4 : cap, "...");
            return;
        }
        used += (size_t)w;
    }
}

/* pdp_keys_models reads the body's "models" (catalog models only)
 * into k. */
static bool
pdp_keys_models(pdp_api_call *c, pdp_key *k, unsigned *st)
{
    const cJSON *models;

    models = c->body != NULL
                 ? cJSON_GetObjectItemCaseSensitive(c->body, "models")
                 : NULL;
    if (models != NULL && !cJSON_IsArray(models)) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"models\" must be an array of model names.");
        return false;
    }
    for (const cJSON *m = models != NULL ? models->child : NULL; m != NULL;
         m              = m->next) {
        if (!cJSON_IsString(m) ||
            !pdp_keys_model_known(c->x->cfg, m->valuestring)) {
            char known[512];

            pdp_keys_catalog(c->x->cfg, known, sizeof(known));
            *st = pdp_api_err(c, 400, "unknown_model",
                              "\"models\": %s%.100s%s is not a model of this "
                              "gateway's deployments catalog (it has: %s).",
                              cJSON_IsString(m) ? "\"" : "",
                              cJSON_IsString(m) ? m->valuestring : "an item",
                              cJSON_IsString(m) ? "\"" : "",
                              known[0] ? known : "none");
            return false;
        }
        if (k->n_models == PDP_KEY_MODELS_MAX) {
            *st = pdp_api_err(c, 400, "invalid_field", "At most %d models.",
                              PDP_KEY_MODELS_MAX);
            return false;
        }
        snprintf(k->models[k->n_models++], sizeof(k->models[0]), "%s",
                 m->valuestring);
    }
    return true;
}

/* pdp_keys_expiry reads "expires_in" or "expires" into k (now_ms is
 * when the key is made). */
static bool
pdp_keys_expiry(pdp_api_call *c, const char *expires_in, const char *expires,
                pdp_key *k, unsigned *st)
{
    if (expires_in != NULL && expires != NULL) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "Give \"expires_in\" or \"expires\", not both.");
        return false;
    }
    if (expires_in != NULL) {
        int64_t d = 0;
        if (!pdp_fmt_duration(expires_in, &d) || d == 0) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "\"expires_in\" \"%.40s\" is not a duration: "
                              "use a whole number and s, m, h or d, e.g. "
                              "\"90d\".",
                              expires_in);
            return false;
        }
        k->expires_ms = c->now_ms + d;
    }
    if (expires != NULL) {
        int64_t when = 0;
        if (!tg_parse_date(expires, false, &when)) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "\"expires\" \"%.40s\" is not a date: use "
                              "YYYY-MM-DD (00:00:00 UTC that day) or RFC 3339, "
                              "e.g. 2025-01-31T18:00:00Z.",
                              expires);
            return false;
        }
        if (when <= c->now_ms) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "\"expires\" \"%.40s\" is not in the future.",
                              expires);
            return false;
        }
        k->expires_ms = when;
    }
    return true;
}

/* pdp_keys_owner reads the body's "tenant", which must exist, into k. */
static bool
pdp_keys_owner(pdp_api_call *c, pdp_key *k, unsigned *st)
{
    const char *tenant;
    pdp_tenant  t;
    tg_err      rv;

    if (!pdp_api_str(c, "tenant", &tenant, st)) {
        return false;
    }
    if (tenant == NULL || !tg_id_ok(tenant)) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give the key's \"tenant\" (an existing tenant id).");
        return false;
    }
    rv = pdp_tenants_read(c, tenant, &t, NULL);
    if (rv == TG_ENOTFOUND) {
        *st = pdp_api_err(c, 404, "tenant_not_found",
                          "No tenant \"%s\"; create it first with POST "
                          "/admin/v1/tenants (tollgate-pdp tenants create "
                          "%s).",
                          tenant, tenant);
        return false;
    }
    if (rv != TG_OK) {
        *st = pdp_api_store_err(c, rv, "read the tenant");
        return false;
    }
    snprintf(k->tenant, sizeof(k->tenant), "%s", tenant);
    return true;
}

/* pdp_keys_body reads and checks everything the body says of a new key
 * (but its limits) into k. */
static bool
pdp_keys_body(pdp_api_call *c, pdp_key *k, unsigned *st)
{
    const char *name;
    const char *user;
    const char *expires_in;
    const char *expires;

    if (!pdp_api_str(c, "name", &name, st) ||
        !pdp_api_str(c, "user", &user, st) ||
        !pdp_api_str(c, "expires_in", &expires_in, st) ||
        !pdp_api_str(c, "expires", &expires, st) ||
        !pdp_api_labels(c, false, k->labels, &k->n_labels, st) ||
        !pdp_keys_owner(c, k, st)) {
        return false;
    }
    if (name != NULL &&
        (strlen(name) >= sizeof(k->name) || !pdp_fmt_printable(name))) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"name\" must be at most %zu printable characters "
                          "(no control characters).",
                          sizeof(k->name) - 1);
        return false;
    }
    if (user != NULL && !pdp_keys_user_ok(user)) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"user\" must be 1 to 127 printable characters.");
        return false;
    }
    snprintf(k->user, sizeof(k->user), "%s", user != NULL ? user : "");
    if (!pdp_keys_models(c, k, st) ||
        !pdp_keys_expiry(c, expires_in, expires, k, st)) {
        return false;
    }
    snprintf(k->name, sizeof(k->name), "%s", name != NULL ? name : "");
    k->status     = PDP_KEY_ACTIVE;
    k->created_ms = c->now_ms;
    return true;
}

/* pdp_keys_given: the body has one of the members in names. */
static bool
pdp_keys_given(const pdp_api_call *c, const char *const names[])
{
    for (size_t i = 0; c->body != NULL && names[i] != NULL; i++) {
        if (cJSON_GetObjectItemCaseSensitive(c->body, names[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* The limits a key is created with: the fields of PUT budgets/key/ID and
 * PUT ratelimits/key/ID, read by the same rules. */
typedef struct pdp_keys_limits {
    bool      budget;
    bool      rates;
    pdp_quota q;
} pdp_keys_limits;

static bool
pdp_keys_limits_read(pdp_api_call *c, pdp_keys_limits *l, unsigned *st)
{
    memset(l, 0, sizeof(*l));
    l->budget = pdp_keys_given(c, pdp_quotas_budget_fields);
    l->rates  = pdp_keys_given(c, pdp_quotas_rate_fields);
    if ((l->budget && !pdp_quotas_budget_read(c, &l->q, st)) ||
        (l->rates && !pdp_quotas_rates_read(c, &l->q, st))) {
        return false;
    }
    l->q.scope      = PDP_QUOTA_KEY;
    l->q.updated_ms = c->now_ms;
    snprintf(l->q.updated_by, sizeof(l->q.updated_by), "%s", c->x->actor);
    return true;
}

/* pdp_keys_audit_detail is what the audit trail says of a new key: the
 * key, and the limits as they were given. */
static cJSON *
pdp_keys_audit_detail(const pdp_api_call *c, const pdp_key *k)
{
    cJSON *d   = pdp_keys_json(k, NULL, c->now_ms);
    cJSON *lim = NULL;

    for (int h = 0; h < 2; h++) {
        const char *const *names =
            h == 0 ? pdp_quotas_budget_fields : pdp_quotas_rate_fields;
        for (size_t i = 0; c->body != NULL && names[i] != NULL; i++) {
            const cJSON *m =
                cJSON_GetObjectItemCaseSensitive(c->body, names[i]);
            if (m != NULL) {
                lim = lim != NULL ? lim : cJSON_AddObjectToObject(d, "limits");
                cJSON_AddItemToObject(lim, names[i], cJSON_Duplicate(m, true));
            }
        }
    }
    return d;
}

/* pdp_keys_store stores k, and its limits, under a new id and secret (in
 * secret) in one transaction with its audit line. An id or secret already
 * stored (a 2^-64 or 2^-128 chance, or a broken random source) gets
 * another try or two. */
static tg_err
pdp_keys_store(pdp_api_call *c, pdp_key *k, pdp_keys_limits *l, char *secret,
               size_t cap, bool *no_random)
{
    uint8_t hash[TG_SHA256_LEN];
    char    idhex[17];
    tg_err  rv = TG_EEXIST;

    *no_random = false;
    for (int i = 0; i < 3 && rv == TG_EEXIST; i++) {
        char      target[PDP_AUDIT_TARGET_MAX];
        pdp_audit a;

        if (pdp_keys_secret(secret, cap, hash) != TG_OK ||
            tg_random_token(idhex, 8) != TG_OK) {
            *no_random = true;
            return TG_EIO;
        }
        snprintf(k->id, sizeof(k->id), "key_%s", idhex);
        snprintf(l->q.id, sizeof(l->q.id), "%s", k->id);
        snprintf(target, sizeof(target), "key:%s", k->id);
        pdp_api_audit(c, &a, "keys.create", target,
                      pdp_keys_audit_detail(c, k));
        rv = pdp_store_key_put_quota(c->x->st, hash, k,
                                     l->budget || l->rates ? &l->q : NULL);
        pdp_api_audit_end(c->x->st, &a);
    }
    return rv;
}

/* pdp_keys_created answers a new key: its record, the secret (shown this
 * once) and the limits it was given. */
static unsigned
pdp_keys_created(pdp_api_call *c, const pdp_key *k, const pdp_keys_limits *l,
                 const char *secret)
{
    cJSON *doc = pdp_keys_json(k, secret, c->now_ms);

    if (l->budget) {
        cJSON_AddItemToObject(doc, "budget", pdp_quotas_budget_json(c, &l->q));
        pdp_quotas_warn_unpriced(c, k, doc);
    }
    if (l->rates) {
        cJSON_AddItemToObject(doc, "ratelimits", pdp_quotas_rate_json(&l->q));
    }
    return pdp_api_ok(c, 201, doc);
}

unsigned
pdp_keys_create(pdp_api_call *c)
{
    static const char *const fields[] = {
        "tenant",     "name",    "user",      "models",     "labels",
        "expires_in", "expires", "limit_usd", "window",     "thresholds",
        "action",     "rpm",     "tpm",       "concurrent", NULL};
    pdp_key        *k = calloc(1, sizeof(*k));
    pdp_keys_limits l;
    char            secret[PDP_KEYS_SECRET_MAX] = "";
    unsigned        st                          = 0;
    bool            no_random;
    tg_err          rv;

    if (k == NULL) {
        return pdp_api_err(c, 500, "internal", "out of memory");
    }
    /* Everything is checked before anything is written: a limit that is
     * wrong leaves no key behind. */
    if (!pdp_api_fields(c, fields, &st) || !pdp_keys_body(c, k, &st) ||
        !pdp_keys_limits_read(c, &l, &st)) {
        goto out;
    }
    rv = pdp_keys_store(c, k, &l, secret, sizeof(secret), &no_random);
    if (no_random) {
        st = pdp_api_err(c, 500, "internal",
                         "Cannot read random bytes for a new key.");
    } else if (rv != TG_OK) {
        st = pdp_api_store_err(c, rv, "store the key");
    } else {
        st = pdp_keys_created(c, k, &l, secret);
    }
out:
    explicit_bzero(secret, sizeof(secret));
    free(k);
    return st;
}

unsigned
pdp_keys_revoke(pdp_api_call *c)
{
    const char              *id       = c->seg[1];
    static const char *const fields[] = {NULL};
    pdp_key                  k;
    unsigned                 st = 0;
    char                     target[PDP_AUDIT_TARGET_MAX];
    pdp_audit                a;
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, &st)) {
        return st;
    }
    if (!tg_id_ok(id)) {
        return pdp_api_key_missing(c, id);
    }
    snprintf(target, sizeof(target), "key:%s", id);
    pdp_api_audit(c, &a, "keys.revoke", target, NULL);
    rv = pdp_store_key_revoke(c->x->st, id, c->now_ms);
    pdp_api_audit_end(c->x->st, &a);
    if (rv == TG_ENOTFOUND) {
        return pdp_api_key_missing(c, id);
    }
    if (rv != TG_OK && rv != TG_EEXIST) {
        return pdp_api_store_err(c, rv, "revoke the key");
    }
    if (pdp_api_read_key(c, id, &k, NULL) != TG_OK) {
        return pdp_api_store_err(c, TG_EIO, "read the key back");
    }
    {
        cJSON *doc = pdp_keys_json(&k, NULL, c->now_ms);
        cJSON_AddBoolToObject(doc, "already_revoked", rv == TG_EEXIST);
        return pdp_api_ok(c, 200, doc);
    }
}

unsigned
pdp_keys_rotate(pdp_api_call *c)
{
    const char              *id       = c->seg[1];
    static const char *const fields[] = {"grace", NULL};
    const char              *grace    = NULL;
    int64_t                  grace_ms = PDP_KEYS_GRACE_DEFAULT_MS;
    char                     secret[PDP_KEYS_SECRET_MAX];
    uint8_t                  hash[TG_SHA256_LEN];
    pdp_key                  k;
    unsigned                 st = 0;
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, &st) ||
        !pdp_api_str(c, "grace", &grace, &st)) {
        return st;
    }
    if (grace != NULL && !pdp_fmt_duration(grace, &grace_ms)) {
        return pdp_api_err(c, 400, "invalid_field",
                           "\"grace\" \"%.40s\" is not a duration: use a "
                           "whole number and s, m, h or d (\"24h\"), or "
                           "\"0\".",
                           grace);
    }
    if (!tg_id_ok(id)) {
        return pdp_api_key_missing(c, id);
    }
    if (pdp_keys_secret(secret, sizeof(secret), hash) != TG_OK) {
        return pdp_api_err(c, 500, "internal",
                           "Cannot read random bytes for a new key.");
    }
    {
        char      target[PDP_AUDIT_TARGET_MAX];
        cJSON    *d = cJSON_CreateObject();
        pdp_audit a;
        cJSON_AddNumberToObject(d, "grace_ms", (double)grace_ms);
        snprintf(target, sizeof(target), "key:%s", id);
        pdp_api_audit(c, &a, "keys.rotate", target, d);
        rv = pdp_store_key_rotate(c->x->st, id, hash, c->now_ms, grace_ms, &k);
        /* A new secret that is already stored (a 2^-128 chance, or a
         * broken random source) gets another try or two. */
        for (int i = 0; i < 2 && rv == TG_EEXIST; i++) {
            if (pdp_keys_secret(secret, sizeof(secret), hash) != TG_OK) {
                break;
            }
            rv = pdp_store_key_rotate(c->x->st, id, hash, c->now_ms, grace_ms,
                                      &k);
        }
        pdp_api_audit_end(c->x->st, &a);
    }
    if (rv == TG_ENOTFOUND) {
        st = pdp_api_key_missing(c, id);
    } else if (rv == TG_EINVAL) {
        st = pdp_api_err(c, 409, "key_not_active",
                         "Key %s is %s; only an active key can be rotated.", id,
                         pdp_keys_status(&k, c->now_ms));
    } else if (rv != TG_OK) {
        st = pdp_api_store_err(c, rv, "rotate the key");
    } else {
        st = pdp_api_ok(c, 200, pdp_keys_json(&k, secret, c->now_ms));
    }
    explicit_bzero(secret, sizeof(secret));
    return st;
}
