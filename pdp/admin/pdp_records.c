/* pdp_records.c - see pdp_records.h. */
#include "pdp_records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "pdp_spend.h"
#include "tg_hash.h"
#include "tg_pricing.h"

#define PDP_RECORDS_AUDIT_LIMIT 100

unsigned
pdp_records_spend(pdp_api_call *c)
{
    char                     v[5][128];
    const char              *p[5];
    static const char *const names[5] = {"by", "from", "to", "tenant",
                                         "format"};
    pdp_spend_query          q;
    char                     err[256];
    tg_err                   rv;

    for (int i = 0; i < 5; i++) {
        p[i] = pdp_api_query(c, names[i], v[i], sizeof(v[i])) ? v[i] : NULL;
    }
    /* The API's default is JSON; the CLI asks for a table. */
    if (pdp_spend_parse(&q, p[0], p[1], p[2], p[3],
                        p[4] != NULL ? p[4] : "json", c->now_ms, err,
                        sizeof(err)) != TG_OK) {
        return pdp_api_err(c, 400, "invalid_query", "%s.", err);
    }
    tg_buf_reset(c->out);
    if ((rv = pdp_spend_write(c->x->st, &q, c->out, err, sizeof(err))) !=
        TG_OK) {
        return pdp_api_err(c, 500, "store_error",
                           "The spend report failed: "
                           "%s.",
                           err);
    }
    c->ctype = q.fmt == PDP_SPEND_CSV    ? "text/csv; charset=utf-8"
               : q.fmt == PDP_SPEND_JSON ? NULL
                                         : "text/plain; charset=utf-8";
    return 200; /* an append that failed: checked in pdp_api_handle */
}

typedef struct pdp_records_audit_arg {
    cJSON *arr;
} pdp_records_audit_arg;

static bool
pdp_records_audit_one(void *arg, const pdp_audit *a)
{
    pdp_records_audit_arg *l = arg;
    cJSON                 *j = cJSON_CreateObject();
    cJSON                 *d = cJSON_Parse(a->detail);

    cJSON_AddNumberToObject(j, "seq", (double)a->seq);
    pdp_fmt_json_time(j, "at", a->at_ms);
    cJSON_AddStringToObject(j, "actor", a->actor);
    cJSON_AddStringToObject(j, "action", a->action);
    cJSON_AddStringToObject(j, "target", a->target);
    if (d != NULL) {
        cJSON_AddItemToObject(j, "detail", d);
    } else {
        cJSON_AddNullToObject(j, "detail");
    }
    cJSON_AddItemToArray(l->arr, j);
    return true;
}

unsigned
pdp_records_audit(pdp_api_call *c)
{
    cJSON                *doc = cJSON_CreateObject();
    pdp_records_audit_arg l   = {cJSON_AddArrayToObject(doc, "audit")};
    char                  lim[24];
    long                  n = PDP_RECORDS_AUDIT_LIMIT;
    tg_err                rv;

    if (pdp_api_query(c, "limit", lim, sizeof(lim))) {
        char *end;
        n = strtol(lim, &end, 10);
        if (*end != '\0' || n < 1 || n > 100000) {
            cJSON_Delete(doc);
            return pdp_api_err(c, 400, "invalid_query",
                               "limit must be a whole number from 1 to "
                               "100000.");
        }
    }
    rv = pdp_store_audit_list(c->x->st, (uint32_t)n, pdp_records_audit_one, &l);
    return pdp_api_listed(c, rv, doc, "read the audit trail");
}

typedef struct pdp_records_usage_arg {
    cJSON *arr;
    char   tenant[TG_ID_MAX];
    char   key[TG_ID_MAX];
    long   limit; /* 0: all */
    long   n;
} pdp_records_usage_arg;

static tg_err
pdp_records_usage_one(void *arg, const pdp_usage_rec *r)
{
    static const char *const eps[] = {
        "",           "chat_completions", "completions",
        "embeddings", "messages",         "models"};
    pdp_records_usage_arg *l = arg;
    const tg_usage        *u = &r->usage;
    cJSON                 *j;
    char                   usd[32];

    if ((l->tenant[0] != '\0' && strcmp(u->tenant_id, l->tenant) != 0) ||
        (l->key[0] != '\0' && strcmp(u->key_id, l->key) != 0)) {
        return TG_OK;
    }
    if (l->limit > 0 && l->n >= l->limit) {
        return TG_EEXIST; /* stops the walk */
    }
    l->n++;
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "request_id", u->request_id);
    pdp_fmt_json_time(j, "started", u->started_ms);
    pdp_fmt_json_time(j, "settled", r->settled_ms);
    cJSON_AddNumberToObject(j, "duration_ms", (double)u->duration_ms);
    cJSON_AddStringToObject(j, "tenant", u->tenant_id);
    cJSON_AddStringToObject(j, "key_id", u->key_id);
    cJSON_AddStringToObject(j, "user", u->user);
    cJSON_AddStringToObject(j, "model", u->model);
    cJSON_AddStringToObject(j, "deployment_id", u->deployment_id);
    cJSON_AddStringToObject(j, "endpoint",
                            (unsigned)u->endpoint < 6 ? eps[u->endpoint] : "");
    cJSON_AddBoolToObject(j, "stream", u->stream);
    cJSON_AddNumberToObject(j, "status", u->status);
    cJSON_AddBoolToObject(j, "estimated", u->estimated);
    cJSON_AddBoolToObject(j, "abandoned", u->abandoned);
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)u->prompt_tokens);
    cJSON_AddNumberToObject(j, "completion_tokens",
                            (double)u->completion_tokens);
    cJSON_AddNumberToObject(j, "cached_tokens", (double)u->cached_tokens);
    cJSON_AddNumberToObject(j, "cost_micro_usd", (double)r->cost_micro_usd);
    tg_usd(r->cost_micro_usd, usd, sizeof(usd));
    cJSON_AddStringToObject(j, "cost_usd", usd);
    cJSON_AddStringToObject(j, "reservation_id", u->reservation_id);
    cJSON_AddItemToArray(l->arr, j);
    return TG_OK;
}

/* pdp_records_usage: the settled usage records, one per request id (in
 * request id order), optionally of one tenant or key, at most limit. */
unsigned
pdp_records_usage(pdp_api_call *c)
{
    cJSON                *doc = cJSON_CreateObject();
    pdp_records_usage_arg l;
    char                  lim[24];
    tg_err                rv;

    memset(&l, 0, sizeof(l));
    l.arr = cJSON_AddArrayToObject(doc, "records");
    pdp_api_query(c, "tenant", l.tenant, sizeof(l.tenant));
    pdp_api_query(c, "key", l.key, sizeof(l.key));
    if (pdp_api_query(c, "limit", lim, sizeof(lim))) {
        char *end;
        l.limit = strtol(lim, &end, 10);
        if (*end != '\0' || l.limit < 1 || l.limit > 100000000) {
            cJSON_Delete(doc);
            return pdp_api_err(c, 400, "invalid_query",
                               "limit must be a whole number from 1 to "
                               "100000000.");
        }
    }
    rv = pdp_store_usage_list(c->x->st, pdp_records_usage_one, &l);
    /* TG_EEXIST: the limit stopped the walk */
    return pdp_api_listed(c, rv == TG_EEXIST ? TG_OK : rv, doc,
                          "read the usage records");
}

typedef struct pdp_records_res_arg {
    pdp_api_call *c;
    cJSON        *arr;
    int64_t       ttl_ms;
} pdp_records_res_arg;


/* pdp_records_hold lists a sidecar's hold: the request, and the leases
 * (held by the central PDP) whose budget windows it will charge. */
static void
pdp_records_hold(pdp_records_res_arg *l, const char *id, const void *data,
                 size_t len)
{
    tg_usage *u = malloc(sizeof(*u));
    cJSON    *j = cJSON_CreateObject();
    cJSON    *a;

    cJSON_AddStringToObject(j, "request_id", id);
    if (u == NULL || !pdp_store_hold_decode(data, len, u)) {
        cJSON_AddStringToObject(j, "error", "unreadable record");
    } else {
        cJSON_AddBoolToObject(j, "emergency", u->emergency);
        a = cJSON_AddArrayToObject(j, "leases");
        for (uint32_t i = 0; i < u->n_charges; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "lease", u->charges[i].lease_id);
            cJSON_AddStringToObject(o, "rule", u->charges[i].rule_id);
            cJSON_AddStringToObject(o, "scope", u->charges[i].scope);
            cJSON_AddItemToArray(a, o);
        }
    }
    cJSON_AddItemToArray(l->arr, j);
    free(u);
}

static void
pdp_records_res_one(void *arg, const char *id, const void *data, size_t len)
{
    pdp_records_res_arg *l    = arg;
    pdp_limits_res_info *info = malloc(sizeof(*info));
    cJSON               *j;
    cJSON               *a;
    char                 usd[32];

    if (info == NULL) {
        return;
    }
    if (len > 0 && *(const uint8_t *)data == PDP_STORE_HOLD_REC) {
        pdp_records_hold(l, id, data, len);
        free(info);
        return;
    }
    if (pdp_limits_reservation_info(data, len, info) == TG_OK &&
        (info->settled || info->ended)) {
        free(info); /* kept for the windows or a late report: none held */
        return;
    }
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "request_id", id);
    if (pdp_limits_reservation_info(data, len, info) != TG_OK) {
        cJSON_AddStringToObject(j, "error", "unreadable record");
        cJSON_AddItemToArray(l->arr, j);
        free(info);
        return;
    }
    pdp_fmt_json_time(j, "created", info->created_ms);
    pdp_fmt_json_time(j, "expires", info->created_ms + l->ttl_ms);
    cJSON_AddNumberToObject(j, "tokens", (double)info->tokens);
    tg_usd(info->n_budgets > 0 ? info->reserved_micro : 0, usd, sizeof(usd));
    cJSON_AddStringToObject(j, "reserved_usd", usd);
    a = cJSON_AddArrayToObject(j, "limits");
    for (uint32_t i = 0; i < info->n_limits; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "rule", info->limits[i].rule_id);
        cJSON_AddStringToObject(o, "scope", info->limits[i].scope);
        cJSON_AddBoolToObject(o, "concurrency_slot", info->limits[i].slot);
        cJSON_AddItemToArray(a, o);
    }
    a = cJSON_AddArrayToObject(j, "budgets");
    for (uint32_t i = 0; i < info->n_budgets; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "rule", info->budgets[i].rule_id);
        cJSON_AddStringToObject(o, "scope", info->budgets[i].scope);
        cJSON_AddItemToArray(a, o);
    }
    cJSON_AddItemToArray(l->arr, j);
    free(info);
}

/* pdp_records_reservations: every open reservation as recorded (what a
 * restart restores), oldest request id first. */
unsigned
pdp_records_reservations(pdp_api_call *c)
{
    cJSON              *doc = cJSON_CreateObject();
    pdp_records_res_arg l;
    tg_err              rv;

    l.c      = c;
    l.arr    = cJSON_AddArrayToObject(doc, "reservations");
    l.ttl_ms = c->x->cfg != NULL ? c->x->cfg->pdp.reservation_ttl_s * 1000
                                 : 900 * 1000;
    rv       = pdp_store_reservation_list(c->x->st, pdp_records_res_one, &l);
    return pdp_api_listed(c, rv, doc, "read the reservations");
}

/* pdp_records_release frees a reservation by hand: its record
 * and, in a running PDP, what it holds (slots, worst case); a decision
 * for that request id still on its way then holds nothing. */
unsigned
pdp_records_release(pdp_api_call *c)
{
    const char              *id       = c->seg[1];
    static const char *const fields[] = {NULL};
    unsigned                 st       = 0;
    char                     target[PDP_AUDIT_TARGET_MAX];
    pdp_audit                a;
    tg_err                   rv;
    bool                     held = false;
    cJSON                   *doc;

    if (!pdp_api_fields(c, fields, &st)) {
        return st;
    }
    if (!tg_id_ok(id)) {
        return pdp_api_err(c, 404, "not_found",
                           "No reservation \"%.64s\": list them with GET "
                           "/admin/v1/reservations (tollgate-pdp "
                           "reservations list).",
                           id);
    }
    snprintf(target, sizeof(target), "reservation:%s", id);
    pdp_api_audit(c, &a, "reservations.release", target, NULL);
    rv = pdp_store_reservation_end(c->x->st, id);
    pdp_api_audit_end(c->x->st, &a);
    if (rv != TG_OK && rv != TG_ENOTFOUND) {
        return pdp_api_store_err(c, rv, "release the reservation");
    }
    if (c->x->lim != NULL) {
        held = pdp_limits_abandon(c->x->lim, id, c->now_ms);
    }
    if (rv == TG_ENOTFOUND && !held) {
        return pdp_api_err(c, 404, "not_found",
                           "No open reservation \"%s\": it was settled, "
                           "released or expired. List them with GET "
                           "/admin/v1/reservations (tollgate-pdp "
                           "reservations list).",
                           id);
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "request_id", id);
    cJSON_AddBoolToObject(doc, "released", true);
    return pdp_api_ok(c, 200, doc);
}
