/* pdp_lists.c - see pdp_lists.h. A request's terms are read whole and
 * checked before anything is written; the store checks them again. */
#include "pdp_lists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "tg_hash.h"

#define PDP_LISTS_HISTORY_LIMIT 100

/* pdp_lists_json adds what every answer about list l says to j. */
static void
pdp_lists_json(cJSON *j, const pdp_list_terms *l)
{
    cJSON_AddStringToObject(j, "name", l->name);
    cJSON_AddNumberToObject(j, "version", (double)l->version);
    cJSON_AddNumberToObject(j, "count", (double)l->n);
    cJSON_AddNumberToObject(j, "bytes", (double)l->bytes);
    pdp_fmt_json_time(j, "updated", l->updated_ms);
    cJSON_AddStringToObject(j, "by", l->actor);
}

static unsigned
pdp_lists_missing(pdp_api_call *c, const char *name)
{
    return pdp_api_err(c, 404, "list_not_found",
                       "No list \"%.80s\". List them with GET "
                       "/admin/v1/lists (tollgate-pdp lists list); make one "
                       "with PUT /admin/v1/lists/NAME (tollgate-pdp lists "
                       "set NAME --file FILE).",
                       name);
}

static void
pdp_lists_one(void *arg, const pdp_list_terms *l)
{
    cJSON *j = cJSON_CreateObject();

    pdp_lists_json(j, l);
    cJSON_AddItemToArray(arg, j);
}

unsigned
pdp_lists_list(pdp_api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "lists");
    tg_err rv  = pdp_store_list_names(c->x->st, pdp_lists_one, arr);

    return pdp_api_listed(c, rv, doc, "list the term lists");
}

unsigned
pdp_lists_show(pdp_api_call *c)
{
    const char    *name = c->seg[1];
    pdp_list_terms l;
    cJSON         *doc;
    cJSON         *terms;
    bool           ok;
    tg_err         rv = pdp_store_list_get(c->x->st, name, &l);

    if (rv == TG_ENOTFOUND) {
        return pdp_lists_missing(c, name);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the list");
    }
    doc = cJSON_CreateObject();
    pdp_lists_json(doc, &l);
    terms = cJSON_AddArrayToObject(doc, "terms");
    ok    = terms != NULL;
    for (uint32_t i = 0; i < l.n && ok; i++) {
        ok = cJSON_AddItemToArray(terms, cJSON_CreateString(l.terms[i]));
    }
    pdp_list_terms_fini(&l);
    if (!ok) { /* never a list with a term missing */
        cJSON_Delete(doc);
        doc = NULL;
    }
    return pdp_api_ok(c, 200, doc);
}

/* pdp_lists_terms reads the body's "terms" into t (trimmed, duplicates
 * dropped, within the limits); false with the answer's status in *st. */
static bool
pdp_lists_terms(pdp_api_call *c, pdp_terms *t, pdp_terms_dups *d, unsigned *st)
{
    const cJSON *arr = c->body != NULL
                           ? cJSON_GetObjectItemCaseSensitive(c->body, "terms")
                           : NULL;
    char         why[512];
    uint32_t     i = 0;
    tg_err       rv;

    if (!cJSON_IsArray(arr)) {
        *st =
            pdp_api_err(c, 400, arr == NULL ? "missing_field" : "invalid_field",
                        "Give the list's terms as {\"terms\": [\"term\", "
                        "...]}: an array of strings, every term of the "
                        "list (it replaces them all).");
        return false;
    }
    for (const cJSON *e = arr->child; e != NULL; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            *st = pdp_api_err(c, 400, "invalid_term",
                              "terms[%u] must be a string.", i);
            return false;
        }
        rv = pdp_terms_add(t, e->valuestring, strlen(e->valuestring), i, why,
                           sizeof(why));
        if (rv != TG_OK) {
            *st = rv == TG_ENOMEM
                      ? pdp_api_err(c, 500, "internal", "out of memory")
                  : rv == TG_ETOOBIG
                      ? pdp_api_err(c, 400, "list_too_large", "%s.", why)
                      : pdp_api_err(c, 400, "invalid_term", "terms[%u]: %s.", i,
                                    why);
            return false;
        }
    }
    if ((rv = pdp_terms_finish(t, d, why, sizeof(why))) != TG_OK) {
        *st = rv == TG_ENOMEM
                  ? pdp_api_err(c, 500, "internal", "out of memory")
                  : pdp_api_err(c, 400, "list_too_large", "%s.", why);
        return false;
    }
    return true;
}

unsigned
pdp_lists_put(pdp_api_call *c)
{
    static const char *const fields[] = {"terms", NULL};
    const char              *name     = c->seg[1];
    pdp_terms                t;
    pdp_terms_dups           d;
    pdp_list_set_result      res;
    char                     target[PDP_AUDIT_TARGET_MAX];
    pdp_audit                a;
    cJSON                   *detail;
    cJSON                   *doc;
    unsigned                 st = 0;
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, &st)) {
        return st;
    }
    if (!pdp_terms_name_ok(name)) {
        return pdp_api_err(c, 400, "invalid_name",
                           "List name \"%.80s\" is not valid: use 1 to %d of "
                           "a-z 0-9 _ -, starting with a letter or a digit.",
                           name, PDP_LIST_NAME_MAX);
    }
    pdp_terms_init(&t);
    if (!pdp_lists_terms(c, &t, &d, &st)) {
        pdp_terms_fini(&t);
        return st;
    }
    /* The terms stay out of the audit trail; the store adds "version". */
    detail = cJSON_CreateObject();
    cJSON_AddNumberToObject(detail, "count", (double)t.n);
    cJSON_AddNumberToObject(detail, "duplicates_dropped", (double)d.dropped);
    snprintf(target, sizeof(target), "list:%s", name);
    pdp_api_audit(c, &a, "lists.set", target, detail);
    rv = pdp_store_list_set(c->x->st, name, (const char *const *)t.v, t.n,
                            c->x->actor, c->now_ms, &res);
    pdp_api_audit_end(c->x->st, &a);
    pdp_terms_fini(&t);
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "store the list");
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "name", name);
    cJSON_AddNumberToObject(doc, "version", (double)res.version);
    cJSON_AddNumberToObject(doc, "count", (double)res.n);
    cJSON_AddNumberToObject(doc, "duplicates_dropped", (double)d.dropped);
    cJSON_AddBoolToObject(doc, "changed", res.changed);
    cJSON_AddBoolToObject(doc, "new", res.created);
    return pdp_api_ok(c, res.created ? 201 : 200, doc);
}

unsigned
pdp_lists_delete(pdp_api_call *c)
{
    static const char *const fields[] = {NULL};
    const char              *name     = c->seg[1];
    pdp_list_change          ch;
    char                     target[PDP_AUDIT_TARGET_MAX];
    pdp_audit                a;
    cJSON                   *doc;
    unsigned                 st = 0;
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, &st)) {
        return st;
    }
    if (!pdp_terms_name_ok(name)) {
        return pdp_lists_missing(c, name);
    }
    /* The store adds "version" and "count" (what it removed). */
    snprintf(target, sizeof(target), "list:%s", name);
    pdp_api_audit(c, &a, "lists.delete", target, cJSON_CreateObject());
    rv = pdp_store_list_del(c->x->st, name, c->x->actor, c->now_ms, &ch);
    pdp_api_audit_end(c->x->st, &a);
    if (rv == TG_ENOTFOUND) {
        return pdp_lists_missing(c, name);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "delete the list");
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "deleted", target);
    cJSON_AddNumberToObject(doc, "version", (double)ch.version);
    cJSON_AddNumberToObject(doc, "count", (double)ch.n);
    return pdp_api_ok(c, 200, doc);
}

static bool
pdp_lists_change_one(void *arg, const pdp_list_change *ch)
{
    cJSON *j = cJSON_CreateObject();
    char   hex[2 * TG_SHA256_LEN + 1];

    tg_hex(ch->sha256, sizeof(ch->sha256), hex);
    cJSON_AddNumberToObject(j, "seq", (double)ch->seq);
    cJSON_AddNumberToObject(j, "version", (double)ch->version);
    cJSON_AddStringToObject(j, "op",
                            ch->op == PDP_LIST_OP_DELETE ? "delete" : "set");
    cJSON_AddNumberToObject(j, "count", (double)ch->n);
    cJSON_AddStringToObject(j, "sha256", hex);
    pdp_fmt_json_time(j, "at", ch->at_ms);
    cJSON_AddStringToObject(j, "by", ch->actor);
    cJSON_AddItemToArray(arg, j);
    return true;
}

unsigned
pdp_lists_history(pdp_api_call *c)
{
    const char *name = c->seg[1];
    char        lim[24];
    long        n = PDP_LISTS_HISTORY_LIMIT;
    cJSON      *doc;
    cJSON      *arr;
    tg_err      rv;

    if (pdp_api_query(c, "limit", lim, sizeof(lim))) {
        char *end;
        n = strtol(lim, &end, 10);
        if (*end != '\0' || n < 1 || n > 100000) {
            return pdp_api_err(c, 400, "invalid_query",
                               "limit must be a whole number from 1 to "
                               "100000.");
        }
    }
    if (!pdp_terms_name_ok(name)) {
        return pdp_lists_missing(c, name);
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "name", name);
    arr = cJSON_AddArrayToObject(doc, "history");
    rv  = pdp_store_list_history(c->x->st, name, (uint32_t)n,
                                 pdp_lists_change_one, arr);
    if (rv == TG_OK && cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(doc);
        return pdp_lists_missing(c, name);
    }
    return pdp_api_listed(c, rv, doc, "read the list's history");
}
