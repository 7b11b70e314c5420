/* pdp_api_call.c - see pdp_api_call.h. Request bodies are parsed with
 * tg_json so an error can say line:col and budgets read USD exactly from
 * the number's text. */
#include "pdp_api_call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "pdp_repl.h"
#include "tg_log.h"

/* ---- answers ------------------------------------------------------------ */

unsigned
pdp_api_err(pdp_api_call *c, unsigned status, const char *code, const char *fmt,
            ...)
{
    char    msg[1024];
    cJSON  *doc = cJSON_CreateObject();
    cJSON  *e   = cJSON_AddObjectToObject(doc, "error");
    char   *txt;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    txt = cJSON_PrintUnformatted(doc);
    tg_buf_reset(c->out);
    tg_buf_addf(c->out, "%s\n", txt != NULL ? txt : "{}");
    cJSON_free(txt);
    cJSON_Delete(doc);
    return status;
}

/* pdp_api_ok writes doc (taken) as the answer. */
unsigned
pdp_api_ok(pdp_api_call *c, unsigned status, cJSON *doc)
{
    char *txt = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;

    cJSON_Delete(doc);
    if (txt == NULL) {
        return pdp_api_err(c, 500, "internal", "out of memory");
    }
    tg_buf_reset(c->out);
    tg_buf_addf(c->out, "%s\n", txt); /* checked in pdp_api_handle */
    cJSON_free(txt);
    return status;
}

unsigned
pdp_api_store_err(pdp_api_call *c, tg_err rv, const char *what)
{
    if (rv == TG_EFULL) {
        return pdp_api_err(c, 507, "storage_full",
                           "Cannot %s: the state directory's disk is full. "
                           "Free space or grow the volume, then retry; "
                           "nothing was changed.",
                           what);
    }
    if (rv == PDP_REPL_EREPLICA) {
        return pdp_api_err(c, 409, "replica_read_only",
                           "Cannot %s: %s (pdp.upstream). Nothing was "
                           "changed.",
                           what, PDP_REPL_REPLICA_MSG);
    }
    return pdp_api_err(c, 500, "store_error",
                       "Cannot %s: %s. Nothing was changed; see the PDP's "
                       "log.",
                       what, tg_strerror(rv));
}

void
pdp_api_audit_begin(pdp_store *st, pdp_audit *a, const char *actor,
                    const char *action, const char *target, cJSON *detail,
                    int64_t at_ms)
{
    bool  had_detail = detail != NULL;
    char *txt        = had_detail ? cJSON_PrintUnformatted(detail) : NULL;

    cJSON_Delete(detail);
    memset(a, 0, sizeof(*a));
    a->at_ms = at_ms;
    snprintf(a->actor, sizeof(a->actor), "%s", actor);
    snprintf(a->action, sizeof(a->action), "%s", action);
    snprintf(a->target, sizeof(a->target), "%s", target);
    if (txt != NULL && strlen(txt) < sizeof(a->detail)) {
        memcpy(a->detail, txt, strlen(txt) + 1);
    } else if (had_detail) { /* too long, or no memory to print it */
        snprintf(a->detail, sizeof(a->detail), "{\"truncated\":true}");
    }
    cJSON_free(txt);
    pdp_store_audit_arm(st, a);
}

void
pdp_api_audit_end(pdp_store *st, const pdp_audit *a)
{
    if (pdp_store_audit_disarm(st)) {
        tg_info("admin: %s %s by %s", a->action, a->target, a->actor);
    }
}

void
pdp_api_audit(pdp_api_call *c, pdp_audit *a, const char *action,
              const char *target, cJSON *detail)
{
    pdp_api_audit_begin(c->x->st, a, c->x->actor, action, target, detail,
                        c->now_ms);
}

unsigned
pdp_api_listed(pdp_api_call *c, tg_err rv, cJSON *doc, const char *what)
{
    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, what);
    }
    return pdp_api_ok(c, 200, doc);
}

unsigned
pdp_api_key_missing(pdp_api_call *c, const char *id)
{
    return pdp_api_err(c, 404, "key_not_found",
                       "No key with id \"%.80s\". List them with GET "
                       "/admin/v1/keys (tollgate-pdp keys list).",
                       id);
}

tg_err
pdp_api_snapshot(pdp_api_call *c, tg_err (*fn)(pdp_store_reader *rd, void *arg),
                 void         *arg)
{
    pdp_store_reader *rd = NULL;
    tg_err            rv;

    if ((rv = pdp_store_reader_create(c->x->st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = fn(rd, arg);
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

/* ---- body and query ----------------------------------------------------- */

/* pdp_api_fields refuses members of the body not in allowed (NULL-ended). */
bool
pdp_api_fields(pdp_api_call *c, const char *const allowed[], unsigned *st)
{
    char err[512];

    if (c->body == NULL) {
        return true;
    }
    if (!cJSON_IsObject(c->body)) {
        *st = pdp_api_err(c, 400, "invalid_body",
                          "The request body must be a JSON object.");
        return false;
    }
    if (tg_json_only_keys(c->doc, c->body, "body", allowed, err, sizeof(err)) !=
        TG_OK) {
        *st = pdp_api_err(c, 400, "unknown_field", "%s", err);
        return false;
    }
    return true;
}

/* pdp_api_str reads an optional string member (NULL when absent; a JSON
 * null reads as ""). */
bool
pdp_api_str(pdp_api_call *c, const char *name, const char **out, unsigned *st)
{
    const cJSON *m = c->body != NULL
                         ? cJSON_GetObjectItemCaseSensitive(c->body, name)
                         : NULL;

    *out = NULL;
    if (m == NULL) {
        return true;
    }
    if (cJSON_IsNull(m)) {
        *out = "";
        return true;
    }
    if (!cJSON_IsString(m)) {
        *st = pdp_api_err(c, 400, "invalid_field", "\"%s\" must be a string.",
                          name);
        return false;
    }
    *out = m->valuestring;
    return true;
}

/* pdp_api_labels reads an object of label name -> value (null or "":
 * remove, when allow_remove). */
bool
pdp_api_labels(pdp_api_call *c, bool allow_remove, tg_kv *l, uint32_t *n,
               unsigned *st)
{
    const cJSON *m = c->body != NULL
                         ? cJSON_GetObjectItemCaseSensitive(c->body, "labels")
                         : NULL;

    *n = 0;
    if (m == NULL) {
        return true;
    }
    if (!cJSON_IsObject(m)) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"labels\" must be an object of name: value.");
        return false;
    }
    for (const cJSON *e = m->child; e != NULL; e = e->next) {
        const char *v = cJSON_IsNull(e) ? "" : e->valuestring;
        bool        ok;

        if (!tg_id_ok(e->string) || strlen(e->string) >= sizeof(l[0].key)) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "label name \"%.80s\" is not valid: use 1 to "
                              "63 of A-Z a-z 0-9 . _ -",
                              e->string);
            return false;
        }
        if (!cJSON_IsString(e) && !cJSON_IsNull(e)) {
            *st =
                pdp_api_err(c, 400, "invalid_field",
                            "label %s: the value must be a string.", e->string);
            return false;
        }
        ok = strlen(v) < sizeof(l[0].value) && pdp_fmt_printable(v);
        if (!ok || (v[0] == '\0' && !allow_remove)) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "label %s: the value must be 1 to 255 "
                              "printable characters.",
                              e->string);
            return false;
        }
        if (*n == PDP_LABELS_MAX) {
            *st = pdp_api_err(c, 400, "too_many_labels", "At most %d labels.",
                              PDP_LABELS_MAX);
            return false;
        }
        snprintf(l[*n].key, sizeof(l[*n].key), "%s", e->string);
        snprintf(l[*n].value, sizeof(l[*n].value), "%s", v);
        (*n)++;
    }
    return true;
}

/* pdp_api_query copies the value of query parameter name (URL-decoded)
 * into buf; false when absent. */
bool
pdp_api_query(const pdp_api_call *c, const char *name, char *buf, size_t cap)
{
    size_t      nl = strlen(name);
    const char *p  = c->query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t o = 0;
            for (size_t i = nl + 1; i < len && o + 1 < cap; i++) {
                unsigned h;
                if (p[i] == '+') {
                    buf[o++] = ' ';
                } else if (p[i] == '%' && i + 2 < len &&
                           sscanf(p + i + 1, "%2x", &h) == 1) {
                    buf[o++] = (char)h;
                    i += 2;
                } else {
                    buf[o++] = p[i];
                }
            }
            buf[o] = '\0';
            return true;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

typedef struct pdp_api_key_get {
    const char *id;
    pdp_key    *k;
    int64_t    *last_ms;
} pdp_api_key_get;

static tg_err
pdp_api_key_get_in(pdp_store_reader *rd, void *arg)
{
    pdp_api_key_get *g  = arg;
    tg_err           rv = pdp_store_key_get_by_id(rd, g->id, g->k);
    pdp_totals       t;

    if (g->last_ms != NULL) {
        *g->last_ms = rv == TG_OK && pdp_store_totals_get(rd, PDP_TOTALS_KEY,
                                                          g->id, &t) == TG_OK
                          ? t.last_ms
                          : 0;
    }
    return rv;
}

tg_err
pdp_api_read_key(pdp_api_call *c, const char *id, pdp_key *k, int64_t *last_ms)
{
    pdp_api_key_get g = {id, k, last_ms};

    if (!tg_id_ok(id)) {
        return TG_ENOTFOUND;
    }
    return pdp_api_snapshot(c, pdp_api_key_get_in, &g);
}
