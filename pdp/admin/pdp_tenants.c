/* pdp_tenants.c - see pdp_tenants.h. Each handler validates everything
 * before it writes and answers with the record as stored. */
#include "pdp_tenants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "tg_hash.h"
#include "tg_pricing.h"

cJSON *
pdp_tenants_json(const pdp_tenant *t)
{
    cJSON *j = cJSON_CreateObject();
    char   when[32];

    cJSON_AddStringToObject(j, "id", t->id);
    if (t->name[0] != '\0') {
        cJSON_AddStringToObject(j, "name", t->name);
    } else {
        cJSON_AddNullToObject(j, "name");
    }
    if (t->tier[0] != '\0') {
        cJSON_AddStringToObject(j, "tier", t->tier);
    } else {
        cJSON_AddNullToObject(j, "tier");
    }
    cJSON_AddItemToObject(j, "labels",
                          pdp_fmt_labels_json(t->labels, t->n_labels));
    pdp_fmt_time(t->created_ms, when, sizeof(when));
    cJSON_AddStringToObject(j, "created", when);
    cJSON_AddNumberToObject(j, "created_ms", (double)t->created_ms);
    pdp_fmt_time(t->updated_ms, when, sizeof(when));
    cJSON_AddStringToObject(j, "updated", when);
    cJSON_AddStringToObject(j, "status",
                            t->disabled_ms != 0 ? "disabled" : "active");
    pdp_fmt_json_time(j, "disabled", t->disabled_ms);
    return j;
}

static void
pdp_tenants_one(void *arg, const pdp_tenant *t)
{
    cJSON_AddItemToArray(arg, pdp_tenants_json(t));
}

unsigned
pdp_tenants_list(pdp_api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "tenants");
    tg_err rv  = pdp_store_tenant_list(c->x->st, pdp_tenants_one, arr);

    return pdp_api_listed(c, rv, doc, "list tenants");
}

typedef struct pdp_tenants_get {
    const char *id;
    pdp_tenant *t;
    pdp_totals *tot;
} pdp_tenants_get;

static tg_err
pdp_tenants_get_in(pdp_store_reader *rd, void *arg)
{
    pdp_tenants_get *g  = arg;
    tg_err           rv = pdp_store_tenant_get(rd, g->id, g->t);

    if (rv == TG_OK && g->tot != NULL &&
        pdp_store_totals_get(rd, PDP_TOTALS_TENANT, g->id, g->tot) != TG_OK) {
        memset(g->tot, 0, sizeof(*g->tot));
    }
    return rv;
}

tg_err
pdp_tenants_read(pdp_api_call *c, const char *id, pdp_tenant *t,
                 pdp_totals *tot)
{
    pdp_tenants_get g = {id, t, tot};

    return pdp_api_snapshot(c, pdp_tenants_get_in, &g);
}

unsigned
pdp_tenants_show(pdp_api_call *c)
{
    const char *id = c->seg[1];
    pdp_tenant  t;
    pdp_totals  tot;
    cJSON      *doc;
    cJSON      *sp;
    char        usd[32];
    tg_err      rv = pdp_tenants_read(c, id, &t, &tot);

    if (rv == TG_ENOTFOUND) {
        return pdp_api_err(c, 404, "tenant_not_found",
                           "No tenant \"%s\". List them with GET "
                           "/admin/v1/tenants (tollgate-pdp tenants list).",
                           id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the tenant");
    }
    doc = pdp_tenants_json(&t);
    sp  = cJSON_AddObjectToObject(doc, "spend");
    cJSON_AddNumberToObject(sp, "requests", (double)tot.requests);
    cJSON_AddNumberToObject(sp, "prompt_tokens", (double)tot.prompt_tokens);
    cJSON_AddNumberToObject(sp, "completion_tokens",
                            (double)tot.completion_tokens);
    tg_usd(tot.cost_micro_usd, usd, sizeof(usd));
    cJSON_AddStringToObject(sp, "cost_usd", usd);
    cJSON_AddNumberToObject(sp, "cost_micro_usd", (double)tot.cost_micro_usd);
    return pdp_api_ok(c, 200, doc);
}

/* pdp_tenants_write creates or changes tenant id from the body; what
 * is not given stays, a label set to null (or "", except at create) is
 * removed. */
unsigned
pdp_tenants_write(pdp_api_call *c)
{
    pdp_tenants_how          how             = (pdp_tenants_how)c->how;
    const char              *id              = c->seg[1];
    bool                     create          = how == PDP_TENANTS_CREATE;
    static const char *const create_fields[] = {"id", "name", "tier", "labels",
                                                NULL};
    static const char *const update_fields[] = {"name", "tier", "labels", NULL};
    tg_kv                    labels[PDP_LABELS_MAX];
    uint32_t                 n = 0;
    const char              *name;
    const char              *tier;
    pdp_tenant               t;
    pdp_tenant_change        ch;
    bool                     created = false;
    unsigned                 st      = 0;
    char                     target[PDP_AUDIT_TARGET_MAX];
    pdp_audit                a;
    tg_err                   rv;

    if (!pdp_api_fields(c, create ? create_fields : update_fields, &st) ||
        !pdp_api_str(c, "name", &name, &st) ||
        !pdp_api_str(c, "tier", &tier, &st) ||
        !pdp_api_labels(c, !create, labels, &n, &st)) {
        return st;
    }
    if (create) {
        const char *body_id = NULL;
        if (!pdp_api_str(c, "id", &body_id, &st)) {
            return st;
        }
        id = body_id;
        if (id == NULL || id[0] == '\0') {
            return pdp_api_err(c, 400, "missing_field",
                               "Give the tenant's \"id\" (1 to 63 of A-Z a-z "
                               "0-9 . _ -).");
        }
    }
    if (!tg_id_ok(id)) {
        return pdp_api_err(c, 400, "invalid_id",
                           "Tenant id \"%.80s\" is not valid: use 1 to 63 of "
                           "A-Z a-z 0-9 . _ -",
                           id);
    }
    if (tier != NULL && tier[0] != '\0' && !tg_id_ok(tier)) {
        return pdp_api_err(c, 400, "invalid_field",
                           "\"tier\" \"%.80s\" is not valid: use 1 to 63 of "
                           "A-Z a-z 0-9 . _ - (or null to clear it)",
                           tier);
    }
    if (name != NULL &&
        (strlen(name) >= PDP_KEY_NAME_MAX || !pdp_fmt_printable(name))) {
        return pdp_api_err(c, 400, "invalid_field",
                           "\"name\" must be at most %d printable "
                           "characters (no control characters).",
                           PDP_KEY_NAME_MAX - 1);
    }
    rv = pdp_tenants_read(c, id, &t, NULL);
    if (rv == TG_OK && create) {
        return pdp_api_err(c, 409, "tenant_exists",
                           "Tenant \"%s\" already exists; change it with "
                           "PATCH /admin/v1/tenants/%s (tollgate-pdp tenants "
                           "update).",
                           id, id);
    }
    if (rv == TG_ENOTFOUND && how == PDP_TENANTS_UPDATE) {
        return pdp_api_err(c, 404, "tenant_not_found",
                           "No tenant \"%s\"; create it with POST "
                           "/admin/v1/tenants (tollgate-pdp tenants create).",
                           id);
    }
    if (rv != TG_OK && rv != TG_ENOTFOUND) {
        return pdp_api_store_err(c, rv, "read the tenant");
    }
    ch = (pdp_tenant_change){.id       = id,
                             .tier     = tier,
                             .labels   = labels,
                             .n_labels = n,
                             .now_ms   = c->now_ms,
                             .name     = name};
    snprintf(target, sizeof(target), "tenant:%s", id);
    pdp_api_audit(
        c, &a, rv == TG_ENOTFOUND ? "tenants.create" : "tenants.update", target,
        c->body != NULL ? cJSON_Duplicate(c->body, true) : NULL);
    rv = pdp_store_tenant_set(c->x->st, &ch, &t, &created);
    pdp_api_audit_end(c->x->st, &a);
    if (rv == TG_ETOOBIG) {
        return pdp_api_err(c, 400, "too_many_labels",
                           "Tenant %s would have more than %d labels; remove "
                           "some (a label set to null is removed).",
                           id, PDP_LABELS_MAX);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "store the tenant");
    }
    if (how == PDP_TENANTS_SET) {
        cJSON *doc = pdp_tenants_json(&t);
        cJSON_AddBoolToObject(doc, "new", created);
        return pdp_api_ok(c, created ? 201 : 200, doc);
    }
    return pdp_api_ok(c, create ? 201 : 200, pdp_tenants_json(&t));
}

/* pdp_tenants_missing answers 404 for tenant id. */
static unsigned
pdp_tenants_missing(pdp_api_call *c, const char *id)
{
    return pdp_api_err(c, 404, "tenant_not_found",
                       "No tenant \"%.80s\". List them with GET "
                       "/admin/v1/tenants (tollgate-pdp tenants list).",
                       id);
}

/* pdp_tenants_existing reads tenant c->seg[1] for a request that takes no
 * body; false with the answer's status in *st when it cannot. */
static bool
pdp_tenants_existing(pdp_api_call *c, pdp_tenant *t, unsigned *st)
{
    static const char *const fields[] = {NULL};
    const char              *id       = c->seg[1];
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, st)) {
        return false;
    }
    rv = tg_id_ok(id) ? pdp_tenants_read(c, id, t, NULL) : TG_ENOTFOUND;
    if (rv == TG_ENOTFOUND) {
        *st = pdp_tenants_missing(c, id);
    } else if (rv != TG_OK) {
        *st = pdp_api_store_err(c, rv, "read the tenant");
    }
    return rv == TG_OK;
}

/* pdp_tenants_switch disables or enables tenant c->seg[1] (c->how): a
 * disabled tenant's keys are refused by every decision (403
 * tenant_disabled) until it is enabled again; nothing else changes. */
unsigned
pdp_tenants_switch(pdp_api_call *c)
{
    bool        disable = c->how == PDP_TENANTS_DISABLE;
    const char *id      = c->seg[1];
    pdp_tenant  t;
    char        target[PDP_AUDIT_TARGET_MAX];
    pdp_audit   a;
    unsigned    st      = 0;
    bool        changed = false;
    cJSON      *doc;
    tg_err      rv;

    if (!pdp_tenants_existing(c, &t, &st)) {
        return st;
    }
    if ((t.disabled_ms != 0) != disable) {
        snprintf(target, sizeof(target), "tenant:%s", id);
        pdp_api_audit(c, &a, disable ? "tenants.disable" : "tenants.enable",
                      target, NULL);
        rv = pdp_store_tenant_disable(c->x->st, id, disable ? c->now_ms : 0,
                                      c->now_ms, &t);
        pdp_api_audit_end(c->x->st, &a);
        if (rv != TG_OK) {
            return pdp_api_store_err(
                c, rv, disable ? "disable the tenant" : "enable the tenant");
        }
        changed = true;
    }
    doc = pdp_tenants_json(&t);
    cJSON_AddBoolToObject(doc, "changed", changed);
    return pdp_api_ok(c, 200, doc);
}

/* The keys of one tenant that still authenticate. */
typedef struct pdp_tenants_live {
    const char *tenant;
    int64_t     now_ms;
    size_t      n;
    char        ids[256]; /* the first few, comma separated */
} pdp_tenants_live;

static void
pdp_tenants_live_one(void *arg, const pdp_key *k)
{
    pdp_tenants_live *l    = arg;
    size_t            used = strlen(l->ids);

    if (strcmp(k->tenant, l->tenant) != 0 ||
        pdp_key_state_at(k, l->now_ms) != PDP_KEY_STATE_ACTIVE) {
        return;
    }
    if (l->n++ < 5) {
        snprintf(l->ids + used, sizeof(l->ids) - used, "%s%s",
                 used > 0 ? ", " : "", k->id);
    } else if (l->n == 6) {
        snprintf(l->ids + used, sizeof(l->ids) - used, ", ...");
    }
}

/* pdp_tenants_delete removes tenant c->seg[1], with its budget and rate
 * limits, once none of its keys works any more (each revoked or expired:
 * 409 tenant_has_keys until then). Its keys' records, its usage records
 * and its spend totals stay, so spend reports still add up. */
unsigned
pdp_tenants_delete(pdp_api_call *c)
{
    const char      *id   = c->seg[1];
    pdp_tenants_live live = {id, c->now_ms, 0, ""};
    pdp_tenant       t;
    char             target[PDP_AUDIT_TARGET_MAX];
    pdp_audit        a;
    unsigned         st = 0;
    cJSON           *doc;
    tg_err           rv;

    if (!pdp_tenants_existing(c, &t, &st)) {
        return st;
    }
    if ((rv = pdp_store_key_list(c->x->st, pdp_tenants_live_one, &live)) !=
        TG_OK) {
        return pdp_api_store_err(c, rv, "read the tenant's keys");
    }
    if (live.n > 0) {
        return pdp_api_err(
            c, 409, "tenant_has_keys",
            "Tenant %s still has %zu key%s that work%s (%s). Revoke %s "
            "first (tollgate-pdp keys revoke KEY_ID)%s%s%s.",
            id, live.n, live.n == 1 ? "" : "s", live.n == 1 ? "s" : "",
            live.ids, live.n == 1 ? "it" : "them",
            t.disabled_ms != 0 ? "; the tenant is disabled, so they are "
                                 "refused meanwhile"
                               : ", or disable the tenant to refuse them all "
                                 "at once (tollgate-pdp tenants disable ",
            t.disabled_ms != 0 ? "" : id, t.disabled_ms != 0 ? "" : ")");
    }
    snprintf(target, sizeof(target), "tenant:%s", id);
    pdp_api_audit(c, &a, "tenants.delete", target, pdp_tenants_json(&t));
    rv = pdp_store_tenant_del(c->x->st, id);
    pdp_api_audit_end(c->x->st, &a);
    if (rv == TG_ENOTFOUND) {
        return pdp_tenants_missing(c, id); /* deleted meanwhile */
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "delete the tenant");
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "deleted", target);
    return pdp_api_ok(c, 200, doc);
}
