/* pdp_api.c - the administration API. Each handler validates everything
 * before it writes, answers with the record as stored, and appends one
 * audit record per change in the change's own transaction. Request bodies
 * are parsed with tg_json so an error can say line:col and budgets read
 * USD exactly from the number's text. */
#include "pdp_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "pdp_spend.h"
#include "tg_hash.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_pricing.h"
#include "tg_time.h"

#define PDP_API_SEGS 5
#define PDP_API_DURATION_MAX_MS ((int64_t)100 * 366 * 86400000) /* century */
#define PDP_API_GRACE_DEFAULT_MS ((int64_t)24 * 3600000)
#define PDP_API_AUDIT_LIMIT 100
#define PDP_API_KEY_RANDOM_BYTES 24 /* 48 hex digits */

typedef struct pdp_api_call {
    const pdp_api_ctx *x;
    const char        *method;
    const char        *seg[PDP_API_SEGS];
    char               segbuf[512];
    uint32_t           nseg;
    const char        *query;
    tg_json_doc       *doc; /* the body; NULL when there is none */
    const cJSON       *body;
    tg_buf            *out;
    int64_t            now_ms;
    const char        *ctype;
} pdp_api_call;

/* ---- shared pieces ------------------------------------------------------ */

/* pdp_api_printable: s has no control character (below 0x20, 0x7f). */
static bool
pdp_api_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

bool
pdp_api_user_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n < TG_MSG_USER_MAX && pdp_api_printable(s);
}

tg_err
pdp_api_secret(char *key, size_t cap, uint8_t hash[TG_SHA256_LEN])
{
    char   hex[2 * PDP_API_KEY_RANDOM_BYTES + 1];
    tg_err rv = tg_random_token(hex, PDP_API_KEY_RANDOM_BYTES);

    if (rv == TG_OK) {
        snprintf(key, cap, "%s%s", PDP_API_KEY_PREFIX, hex);
        tg_sha256(key, strlen(key), hash);
    }
    explicit_bzero(hex, sizeof(hex));
    return rv;
}

bool
pdp_api_duration(const char *s, int64_t *ms)
{
    int64_t n = 0;
    int64_t unit;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return true;
    }
    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (*s - '0');
        if (n > PDP_API_DURATION_MAX_MS) {
            return false;
        }
    }
    switch (*s) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60000;
        break;
    case 'h':
        unit = 3600000;
        break;
    case 'd':
        unit = 86400000;
        break;
    default:
        return false;
    }
    if (s[1] != '\0' || n > PDP_API_DURATION_MAX_MS / unit) {
        return false;
    }
    *ms = n * unit;
    return true;
}

void
pdp_api_time(int64_t ms, char *buf, size_t cap)
{
    time_t    s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *
pdp_api_key_status(const pdp_key *k, int64_t now_ms)
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

void
pdp_api_json_time(cJSON *j, const char *name, int64_t ms)
{
    char when[32];
    char ms_name[64];

    snprintf(ms_name, sizeof(ms_name), "%s_ms", name);
    if (ms == 0) {
        cJSON_AddNullToObject(j, name);
        cJSON_AddNullToObject(j, ms_name);
        return;
    }
    pdp_api_time(ms, when, sizeof(when));
    cJSON_AddStringToObject(j, name, when);
    cJSON_AddNumberToObject(j, ms_name, (double)ms);
}

cJSON *
pdp_api_labels_json(const tg_kv *l, uint32_t n)
{
    cJSON *j = cJSON_CreateObject();

    for (uint32_t i = 0; i < n; i++) {
        cJSON_AddStringToObject(j, l[i].key, l[i].value);
    }
    return j;
}

cJSON *
pdp_api_key_json(const pdp_key *k, const char *secret, int64_t now_ms)
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
                          pdp_api_labels_json(k->labels, k->n_labels));
    cJSON_AddStringToObject(doc, "status", pdp_api_key_status(k, now_ms));
    pdp_api_json_time(doc, "created", k->created_ms);
    pdp_api_json_time(doc, "expires", k->expires_ms);
    pdp_api_json_time(doc, "rotated", k->rotated_ms);
    pdp_api_json_time(doc, "previous_valid_until",
                      k->rotated_ms != 0 ? k->grace_until_ms : 0);
    pdp_api_json_time(doc, "revoked",
                      k->status == PDP_KEY_REVOKED ? k->revoked_ms : 0);
    return doc;
}

cJSON *
pdp_api_tenant_json(const pdp_tenant *t)
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
                          pdp_api_labels_json(t->labels, t->n_labels));
    pdp_api_time(t->created_ms, when, sizeof(when));
    cJSON_AddStringToObject(j, "created", when);
    cJSON_AddNumberToObject(j, "created_ms", (double)t->created_ms);
    pdp_api_time(t->updated_ms, when, sizeof(when));
    cJSON_AddStringToObject(j, "updated", when);
    return j;
}

bool
pdp_api_quota_target(const char *s, pdp_quota_scope *scope, const char **id)
{
    if (strncmp(s, "tenant:", 7) == 0) {
        *scope = PDP_QUOTA_TENANT;
        *id    = s + 7;
    } else if (strncmp(s, "key:", 4) == 0) {
        *scope = PDP_QUOTA_KEY;
        *id    = s + 4;
    } else {
        return false;
    }
    return tg_id_ok(*id);
}

/* ---- answers ------------------------------------------------------------ */

static unsigned pdp_api_err(pdp_api_call *c, unsigned status, const char *code,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static unsigned
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
static unsigned
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

static unsigned
pdp_api_store_err(pdp_api_call *c, tg_err rv, const char *what)
{
    if (rv == TG_EFULL) {
        return pdp_api_err(c, 507, "storage_full",
                           "Cannot %s: the state directory's disk is full. "
                           "Free space or grow the volume, then retry; "
                           "nothing was changed.",
                           what);
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
pdp_api_cli_actor(char *buf, size_t cap)
{
    char           host[64] = "localhost";
    struct passwd  pw;
    struct passwd *res = NULL;
    char           pwbuf[1024];
    const char    *user = NULL;

    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
        res != NULL) {
        user = res->pw_name;
    }
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (user != NULL) {
        snprintf(buf, cap, "cli:%s@%s", user, host);
    } else {
        snprintf(buf, cap, "cli:uid%u@%s", (unsigned)getuid(), host);
    }
}

/* pdp_api_audit arms the audit line of a change made through the API, in
 * *a; end it with pdp_api_audit_end(c->x->st, a). */
static void
pdp_api_audit(pdp_api_call *c, pdp_audit *a, const char *action,
              const char *target, cJSON *detail)
{
    pdp_api_audit_begin(c->x->st, a, c->x->actor, action, target, detail,
                        c->now_ms);
}

/* ---- body and query ----------------------------------------------------- */

/* pdp_api_fields refuses members of the body not in allowed (NULL-ended). */
static bool
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
static bool
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
static bool
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
        ok = strlen(v) < sizeof(l[0].value);
        for (const char *p = v; ok && *p != '\0'; p++) {
            ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
        }
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
static bool
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

/* ---- tenants ------------------------------------------------------------ */

typedef struct pdp_api_list {
    cJSON  *arr;
    int64_t now_ms;
    char    tenant[TG_ID_MAX]; /* filter; "" none */
} pdp_api_list;

static void
pdp_api_tenant_one(void *arg, const pdp_tenant *t)
{
    pdp_api_list *l = arg;

    cJSON_AddItemToArray(l->arr, pdp_api_tenant_json(t));
}

static unsigned
pdp_api_tenants_list(pdp_api_call *c)
{
    cJSON       *doc = cJSON_CreateObject();
    pdp_api_list l   = {cJSON_AddArrayToObject(doc, "tenants"), 0, ""};
    tg_err       rv  = pdp_store_tenant_list(c->x->st, pdp_api_tenant_one, &l);

    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, "list tenants");
    }
    return pdp_api_ok(c, 200, doc);
}

/* pdp_api_read_tenant reads tenant id in a snapshot. */
static tg_err
pdp_api_read_tenant(pdp_api_call *c, const char *id, pdp_tenant *t,
                    pdp_totals *tot)
{
    pdp_store_reader *rd = NULL;
    tg_err            rv;

    if ((rv = pdp_store_reader_create(c->x->st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store_tenant_get(rd, id, t);
        if (rv == TG_OK && tot != NULL &&
            pdp_store_totals_get(rd, PDP_TOTALS_TENANT, id, tot) != TG_OK) {
            memset(tot, 0, sizeof(*tot));
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

static unsigned
pdp_api_tenant_show(pdp_api_call *c, const char *id)
{
    pdp_tenant t;
    pdp_totals tot;
    cJSON     *doc;
    cJSON     *sp;
    char       usd[32];
    tg_err     rv = pdp_api_read_tenant(c, id, &t, &tot);

    if (rv == TG_ENOTFOUND) {
        return pdp_api_err(c, 404, "tenant_not_found",
                           "No tenant \"%s\". List them with GET "
                           "/admin/v1/tenants (tollgate-pdp tenants list).",
                           id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the tenant");
    }
    doc = pdp_api_tenant_json(&t);
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

typedef enum pdp_api_tenant_how {
    PDP_API_TENANT_CREATE, /* POST tenants: 409 if it exists */
    PDP_API_TENANT_UPDATE, /* PATCH tenants/ID: 404 if it does not */
    PDP_API_TENANT_SET,    /* PUT tenants/ID: either; "new" says which */
} pdp_api_tenant_how;

/* pdp_api_tenant_write creates or changes tenant id from the body; what
 * is not given stays, a label set to null (or "", except at create) is
 * removed. */
static unsigned
pdp_api_tenant_write(pdp_api_call *c, const char *id, pdp_api_tenant_how how)
{
    bool                     create          = how == PDP_API_TENANT_CREATE;
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
        (strlen(name) >= PDP_KEY_NAME_MAX || !pdp_api_printable(name))) {
        return pdp_api_err(c, 400, "invalid_field",
                           "\"name\" must be at most %d printable "
                           "characters (no control characters).",
                           PDP_KEY_NAME_MAX - 1);
    }
    rv = pdp_api_read_tenant(c, id, &t, NULL);
    if (rv == TG_OK && create) {
        return pdp_api_err(c, 409, "tenant_exists",
                           "Tenant \"%s\" already exists; change it with "
                           "PATCH /admin/v1/tenants/%s (tollgate-pdp tenants "
                           "update).",
                           id, id);
    }
    if (rv == TG_ENOTFOUND && how == PDP_API_TENANT_UPDATE) {
        return pdp_api_err(c, 404, "tenant_not_found",
                           "No tenant \"%s\"; create it with POST "
                           "/admin/v1/tenants (tollgate-pdp tenants create).",
                           id);
    }
    if (rv != TG_OK && rv != TG_ENOTFOUND) {
        return pdp_api_store_err(c, rv, "read the tenant");
    }
    memset(&ch, 0, sizeof(ch));
    ch.id       = id;
    ch.tier     = tier;
    ch.name     = name;
    ch.labels   = labels;
    ch.n_labels = n;
    ch.now_ms   = c->now_ms;
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
    if (how == PDP_API_TENANT_SET) {
        cJSON *doc = pdp_api_tenant_json(&t);
        cJSON_AddBoolToObject(doc, "new", created);
        return pdp_api_ok(c, created ? 201 : 200, doc);
    }
    return pdp_api_ok(c, create ? 201 : 200, pdp_api_tenant_json(&t));
}

/* ---- keys --------------------------------------------------------------- */

static void
pdp_api_key_one(void *arg, const pdp_key *k)
{
    pdp_api_list *l = arg;

    if (l->tenant[0] == '\0' || strcmp(l->tenant, k->tenant) == 0) {
        cJSON_AddItemToArray(l->arr, pdp_api_key_json(k, NULL, l->now_ms));
    }
}

/* pdp_api_last_used adds "last_used" to each key of arr, in one snapshot. */
static tg_err
pdp_api_last_used(pdp_api_call *c, cJSON *arr)
{
    pdp_store_reader *rd = NULL;
    pdp_totals        t;
    tg_err            rv;

    if ((rv = pdp_store_reader_create(c->x->st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        for (cJSON *k = arr->child; k != NULL; k = k->next) {
            const char *id =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "id"));
            pdp_api_json_time(k, "last_used",
                              id != NULL &&
                                      pdp_store_totals_get(rd, PDP_TOTALS_KEY,
                                                           id, &t) == TG_OK
                                  ? t.last_ms
                                  : 0);
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

/* pdp_api_key_cmp orders keys by creation, then id: a list reads the same
 * every time. */
static int
pdp_api_key_cmp(const void *a, const void *b)
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

/* pdp_api_sort_keys sorts arr (pdp_api_key_cmp); false when out of
 * memory (arr is then as it was). */
static bool
pdp_api_sort_keys(cJSON *arr)
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
    qsort(v, (size_t)n, sizeof(*v), pdp_api_key_cmp);
    for (i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, v[i]);
    }
    free(v);
    return true;
}

static unsigned
pdp_api_keys_list(pdp_api_call *c)
{
    cJSON       *doc = cJSON_CreateObject();
    pdp_api_list l   = {cJSON_AddArrayToObject(doc, "keys"), c->now_ms, ""};
    tg_err       rv;

    pdp_api_query(c, "tenant", l.tenant, sizeof(l.tenant));
    rv = pdp_store_key_list(c->x->st, pdp_api_key_one, &l);
    if (rv == TG_OK) {
        rv = pdp_api_last_used(c, l.arr);
    }
    if (rv == TG_OK && !pdp_api_sort_keys(l.arr)) {
        rv = TG_ENOMEM;
    }
    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, "list keys");
    }
    return pdp_api_ok(c, 200, doc);
}

static tg_err
pdp_api_read_key(pdp_api_call *c, const char *id, pdp_key *k, int64_t *last_ms)
{
    pdp_store_reader *rd = NULL;
    pdp_totals        t;
    tg_err            rv;

    if (!tg_id_ok(id)) {
        return TG_ENOTFOUND;
    }
    if ((rv = pdp_store_reader_create(c->x->st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store_key_get_by_id(rd, id, k);
        if (last_ms != NULL) {
            *last_ms = rv == TG_OK && pdp_store_totals_get(rd, PDP_TOTALS_KEY,
                                                           id, &t) == TG_OK
                           ? t.last_ms
                           : 0;
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

static unsigned
pdp_api_key_missing(pdp_api_call *c, const char *id)
{
    return pdp_api_err(c, 404, "key_not_found",
                       "No key with id \"%.80s\". List them with GET "
                       "/admin/v1/keys (tollgate-pdp keys list).",
                       id);
}

static unsigned
pdp_api_key_show(pdp_api_call *c, const char *id)
{
    pdp_key k;
    int64_t last = 0;
    cJSON  *doc;
    tg_err  rv = pdp_api_read_key(c, id, &k, &last);

    if (rv == TG_ENOTFOUND) {
        return pdp_api_key_missing(c, id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the key");
    }
    doc = pdp_api_key_json(&k, NULL, c->now_ms);
    pdp_api_json_time(doc, "last_used", last);
    return pdp_api_ok(c, 200, doc);
}

static bool
pdp_api_model_known(const tg_config *cfg, const char *model)
{
    for (size_t i = 0; cfg != NULL && i < cfg->n_deployments; i++) {
        if (strcmp(cfg->deployments[i].model, model) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_api_catalog writes the catalog's model names, each once, comma
 * separated (cut with "..." when they do not fit). */
static void
pdp_api_catalog(const tg_config *cfg, char *buf, size_t cap)
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

/* pdp_api_key_models reads the body's "models" (catalog models only)
 * into k. */
static bool
pdp_api_key_models(pdp_api_call *c, pdp_key *k, unsigned *st)
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
            !pdp_api_model_known(c->x->cfg, m->valuestring)) {
            char known[512];

            pdp_api_catalog(c->x->cfg, known, sizeof(known));
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

/* pdp_api_key_expiry reads "expires_in" or "expires" into k (now_ms is
 * when the key is made). */
static bool
pdp_api_key_expiry(pdp_api_call *c, const char *expires_in, const char *expires,
                   pdp_key *k, unsigned *st)
{
    if (expires_in != NULL && expires != NULL) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "Give \"expires_in\" or \"expires\", not both.");
        return false;
    }
    if (expires_in != NULL) {
        int64_t d = 0;
        if (!pdp_api_duration(expires_in, &d) || d == 0) {
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

static unsigned
pdp_api_key_create(pdp_api_call *c)
{
    static const char *const fields[] = {"tenant",  "name",   "user",
                                         "models",  "labels", "expires_in",
                                         "expires", NULL};
    pdp_key                 *k        = calloc(1, sizeof(*k));
    pdp_tenant               t;
    const char              *tenant;
    const char              *name;
    const char              *user;
    const char              *expires_in;
    const char              *expires;
    char                     secret[PDP_API_KEY_MAX];
    uint8_t                  hash[TG_SHA256_LEN];
    char                     idhex[17];
    unsigned                 st = 0;
    tg_err                   rv;

    if (k == NULL) {
        return pdp_api_err(c, 500, "internal", "out of memory");
    }
    if (!pdp_api_fields(c, fields, &st) ||
        !pdp_api_str(c, "tenant", &tenant, &st) ||
        !pdp_api_str(c, "name", &name, &st) ||
        !pdp_api_str(c, "user", &user, &st) ||
        !pdp_api_str(c, "expires_in", &expires_in, &st) ||
        !pdp_api_str(c, "expires", &expires, &st) ||
        !pdp_api_labels(c, false, k->labels, &k->n_labels, &st)) {
        goto out;
    }
    if (tenant == NULL || !tg_id_ok(tenant)) {
        st = pdp_api_err(c, 400, "missing_field",
                         "Give the key's \"tenant\" (an existing tenant id).");
        goto out;
    }
    rv = pdp_api_read_tenant(c, tenant, &t, NULL);
    if (rv == TG_ENOTFOUND) {
        st = pdp_api_err(c, 404, "tenant_not_found",
                         "No tenant \"%s\"; create it first with POST "
                         "/admin/v1/tenants (tollgate-pdp tenants create "
                         "%s).",
                         tenant, tenant);
        goto out;
    }
    if (rv != TG_OK) {
        st = pdp_api_store_err(c, rv, "read the tenant");
        goto out;
    }
    if (name != NULL &&
        (strlen(name) >= sizeof(k->name) || !pdp_api_printable(name))) {
        st = pdp_api_err(c, 400, "invalid_field",
                         "\"name\" must be at most %zu printable characters "
                         "(no control characters).",
                         sizeof(k->name) - 1);
        goto out;
    }
    if (user != NULL && !pdp_api_user_ok(user)) {
        st = pdp_api_err(c, 400, "invalid_field",
                         "\"user\" must be 1 to 127 printable characters.");
        goto out;
    }
    snprintf(k->user, sizeof(k->user), "%s", user != NULL ? user : "");
    if (!pdp_api_key_models(c, k, &st) ||
        !pdp_api_key_expiry(c, expires_in, expires, k, &st)) {
        goto out;
    }
    snprintf(k->tenant, sizeof(k->tenant), "%s", tenant);
    snprintf(k->name, sizeof(k->name), "%s", name != NULL ? name : "");
    k->status     = PDP_KEY_ACTIVE;
    k->created_ms = c->now_ms;
    /* An id or secret already stored (a 2^-64 or 2^-128 chance, or a
     * broken random source) gets another try or two. */
    rv = TG_EEXIST;
    for (int i = 0; i < 3 && rv == TG_EEXIST; i++) {
        char      target[PDP_AUDIT_TARGET_MAX];
        pdp_audit a;

        if (pdp_api_secret(secret, sizeof(secret), hash) != TG_OK ||
            tg_random_token(idhex, 8) != TG_OK) {
            st = pdp_api_err(c, 500, "internal",
                             "Cannot read random bytes for a new key.");
            goto out;
        }
        snprintf(k->id, sizeof(k->id), "key_%s", idhex);
        snprintf(target, sizeof(target), "key:%s", k->id);
        pdp_api_audit(c, &a, "keys.create", target,
                      pdp_api_key_json(k, NULL, c->now_ms));
        rv = pdp_store_key_put(c->x->st, hash, k);
        pdp_api_audit_end(c->x->st, &a);
    }
    if (rv != TG_OK) {
        st = pdp_api_store_err(c, rv, "store the key");
        goto out;
    }
    st = pdp_api_ok(c, 201, pdp_api_key_json(k, secret, c->now_ms));
out:
    explicit_bzero(secret, sizeof(secret));
    free(k);
    return st;
}

static unsigned
pdp_api_key_revoke(pdp_api_call *c, const char *id)
{
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
        cJSON *doc = pdp_api_key_json(&k, NULL, c->now_ms);
        cJSON_AddBoolToObject(doc, "already_revoked", rv == TG_EEXIST);
        return pdp_api_ok(c, 200, doc);
    }
}

static unsigned
pdp_api_key_rotate(pdp_api_call *c, const char *id)
{
    static const char *const fields[] = {"grace", NULL};
    const char              *grace    = NULL;
    int64_t                  grace_ms = PDP_API_GRACE_DEFAULT_MS;
    char                     secret[PDP_API_KEY_MAX];
    uint8_t                  hash[TG_SHA256_LEN];
    pdp_key                  k;
    unsigned                 st = 0;
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, &st) ||
        !pdp_api_str(c, "grace", &grace, &st)) {
        return st;
    }
    if (grace != NULL && !pdp_api_duration(grace, &grace_ms)) {
        return pdp_api_err(c, 400, "invalid_field",
                           "\"grace\" \"%.40s\" is not a duration: use a "
                           "whole number and s, m, h or d (\"24h\"), or "
                           "\"0\".",
                           grace);
    }
    if (!tg_id_ok(id)) {
        return pdp_api_key_missing(c, id);
    }
    if (pdp_api_secret(secret, sizeof(secret), hash) != TG_OK) {
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
            if (pdp_api_secret(secret, sizeof(secret), hash) != TG_OK) {
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
                         pdp_api_key_status(&k, c->now_ms));
    } else if (rv != TG_OK) {
        st = pdp_api_store_err(c, rv, "rotate the key");
    } else {
        st = pdp_api_ok(c, 200, pdp_api_key_json(&k, secret, c->now_ms));
    }
    explicit_bzero(secret, sizeof(secret));
    return st;
}

/* ---- budgets and rate limits -------------------------------------------- */

typedef struct pdp_api_spent {
    const char *rule;
    const char *scope;
    uint8_t     code;
    int64_t     from_ms; /* buckets starting in [from_ms, to_ms] count */
    int64_t     to_ms;
    int64_t     spent;
} pdp_api_spent;

static void
pdp_api_spent_one(void *arg, const pdp_limits_spend_key *k, int64_t spent)
{
    pdp_api_spent *s = arg;

    if (strcmp(k->rule_id, s->rule) == 0 && strcmp(k->scope, s->scope) == 0 &&
        k->code == s->code && k->start_ms >= s->from_ms &&
        k->start_ms <= s->to_ms) {
        s->spent += spent;
    }
}

/* pdp_api_budget_json renders quota q's budget with its window now and
 * its spent, reserved (when the limits are known) and remaining spend. */
static cJSON *
pdp_api_budget_json(pdp_api_call *c, const pdp_quota *q)
{
    cJSON            *j = cJSON_CreateObject();
    cJSON            *th;
    pdp_limits_budget b;
    int64_t           reset    = 0;
    int64_t           spent    = 0;
    int64_t           reserved = 0;
    char              usd[32];
    char              win[24];

    memset(&b, 0, sizeof(b));
    b.rule_id = q->scope == PDP_QUOTA_TENANT ? PDP_QUOTA_RULE_TENANT
                                             : PDP_QUOTA_RULE_KEY;
    b.scope   = q->id;
    b.code    = q->window;
    b.span_h  = q->window == PDP_WINDOW_ROLLING ? q->window_h : 0;
    b.limit   = q->limit_micro;
    pdp_bundle_budget_window(c->x->bundle, (pdp_window)q->window, c->now_ms,
                             &b.start_ms, &reset);
    if (c->x->lim != NULL) {
        pdp_limits_budget_state(c->x->lim, &b, &spent, &reserved);
    } else {
        pdp_api_spent s = {b.rule_id,  q->id,      q->window,
                           b.start_ms, b.start_ms, 0};
        if (b.span_h > 0) {
            s.from_ms = b.start_ms - (int64_t)(b.span_h - 1) * 3600000;
        }
        pdp_store_budget_list(c->x->st, s.from_ms, pdp_api_spent_one, &s);
        spent = s.spent;
    }
    cJSON_AddStringToObject(j, "target",
                            q->scope == PDP_QUOTA_TENANT ? "tenant" : "key");
    cJSON_AddStringToObject(j, "id", q->id);
    if (q->window == PDP_WINDOW_ROLLING) {
        snprintf(win, sizeof(win), "rolling:%dh", (int)q->window_h);
    } else {
        snprintf(win, sizeof(win), "%s", pdp_window_name(q->window));
    }
    cJSON_AddStringToObject(j, "window", win);
    tg_usd(q->limit_micro, usd, sizeof(usd));
    cJSON_AddStringToObject(j, "limit_usd", usd);
    tg_usd(spent, usd, sizeof(usd));
    cJSON_AddStringToObject(j, "spent_usd", usd);
    if (c->x->lim != NULL) {
        tg_usd(reserved, usd, sizeof(usd));
        cJSON_AddStringToObject(j, "reserved_usd", usd);
    } else {
        cJSON_AddNullToObject(j, "reserved_usd"); /* only serve knows */
    }
    tg_usd(q->limit_micro - spent - reserved > 0
               ? q->limit_micro - spent - reserved
               : 0,
           usd, sizeof(usd));
    cJSON_AddStringToObject(j, "remaining_usd", usd);
    cJSON_AddNumberToObject(j, "limit_micro_usd", (double)q->limit_micro);
    cJSON_AddNumberToObject(j, "spent_micro_usd", (double)spent);
    cJSON_AddNumberToObject(j, "reserved_micro_usd", (double)reserved);
    cJSON_AddNumberToObject(j, "remaining_micro_usd",
                            (double)(q->limit_micro - spent - reserved > 0
                                         ? q->limit_micro - spent - reserved
                                         : 0));
    cJSON_AddStringToObject(j, "action", q->clamp ? "clamp" : "deny");
    th = cJSON_AddArrayToObject(j, "thresholds");
    for (uint32_t i = 0; i < q->nthr; i++) {
        cJSON_AddItemToArray(th, cJSON_CreateNumber(q->thr[i]));
    }
    if (q->window == PDP_WINDOW_ROLLING) {
        pdp_api_json_time(j, "window_start",
                          b.start_ms - (int64_t)(q->window_h - 1) * 3600000);
        cJSON_AddNullToObject(j, "resets");
    } else {
        pdp_api_json_time(j, "window_start", b.start_ms);
        pdp_api_json_time(j, "resets", reset);
    }
    pdp_api_json_time(j, "updated", q->updated_ms);
    cJSON_AddStringToObject(j, "updated_by", q->updated_by);
    return j;
}

static cJSON *
pdp_api_ratelimit_json(const pdp_quota *q)
{
    cJSON *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "target",
                            q->scope == PDP_QUOTA_TENANT ? "tenant" : "key");
    cJSON_AddStringToObject(j, "id", q->id);
    cJSON_AddNumberToObject(j, "rpm", (double)q->rpm);
    cJSON_AddNumberToObject(j, "tpm", (double)q->tpm);
    cJSON_AddNumberToObject(j, "concurrent", (double)q->concurrent);
    pdp_api_json_time(j, "updated", q->updated_ms);
    cJSON_AddStringToObject(j, "updated_by", q->updated_by);
    return j;
}

typedef struct pdp_api_qlist {
    pdp_api_call *c;
    cJSON        *arr;
    bool          budgets; /* else rate limits */
} pdp_api_qlist;

static void
pdp_api_quota_one(void *arg, const pdp_quota *q)
{
    pdp_api_qlist *l = arg;

    if (l->budgets && q->limit_micro > 0) {
        cJSON_AddItemToArray(l->arr, pdp_api_budget_json(l->c, q));
    } else if (!l->budgets && (q->rpm > 0 || q->tpm > 0 || q->concurrent > 0)) {
        cJSON_AddItemToArray(l->arr, pdp_api_ratelimit_json(q));
    }
}

static unsigned
pdp_api_quota_list(pdp_api_call *c, bool budgets)
{
    cJSON        *doc = cJSON_CreateObject();
    pdp_api_qlist l   = {c, NULL, budgets};
    tg_err        rv;

    l.arr = cJSON_AddArrayToObject(doc, budgets ? "budgets" : "ratelimits");
    rv    = pdp_store_quota_list(c->x->st, pdp_api_quota_one, &l);
    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, "list quotas");
    }
    return pdp_api_ok(c, 200, doc);
}

/* pdp_api_target reads /<budgets|ratelimits>/<tenant|key>/<id>. */
static bool
pdp_api_target(pdp_api_call *c, pdp_quota_scope *scope, const char **id,
               unsigned *st)
{
    if (strcmp(c->seg[1], "tenant") == 0) {
        *scope = PDP_QUOTA_TENANT;
    } else if (strcmp(c->seg[1], "key") == 0) {
        *scope = PDP_QUOTA_KEY;
    } else {
        *st = pdp_api_err(c, 404, "not_found",
                          "Expected /admin/v1/%s/tenant/ID or "
                          "/admin/v1/%s/key/ID.",
                          c->seg[0], c->seg[0]);
        return false;
    }
    *id = c->seg[2];
    if (!tg_id_ok(*id)) {
        *st = pdp_api_err(c, 404,
                          *scope == PDP_QUOTA_TENANT ? "tenant_not_found"
                                                     : "key_not_found",
                          "\"%.80s\" is not a valid id.", *id);
        return false;
    }
    return true;
}

static tg_err
pdp_api_read_quota(pdp_api_call *c, pdp_quota_scope scope, const char *id,
                   pdp_quota *q)
{
    pdp_store_reader *rd = NULL;
    tg_err            rv;

    if ((rv = pdp_store_reader_create(c->x->st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store_quota_get(rd, scope, id, q);
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

static unsigned
pdp_api_quota_missing(pdp_api_call *c, bool budgets, pdp_quota_scope scope,
                      const char *id)
{
    return pdp_api_err(c, 404,
                       budgets ? "budget_not_found" : "ratelimit_not_found",
                       "%s %s has no %s set through administration (bundle "
                       "rules are not listed here).",
                       scope == PDP_QUOTA_TENANT ? "Tenant" : "Key", id,
                       budgets ? "budget" : "rate limit");
}

static unsigned
pdp_api_quota_show(pdp_api_call *c, bool budgets)
{
    pdp_quota_scope scope;
    const char     *id;
    pdp_quota       q;
    unsigned        st = 0;
    tg_err          rv;

    if (!pdp_api_target(c, &scope, &id, &st)) {
        return st;
    }
    rv = pdp_api_read_quota(c, scope, id, &q);
    if (rv == TG_OK &&
        (budgets ? q.limit_micro == 0
                 : (q.rpm == 0 && q.tpm == 0 && q.concurrent == 0))) {
        rv = TG_ENOTFOUND;
    }
    if (rv == TG_ENOTFOUND) {
        return pdp_api_quota_missing(c, budgets, scope, id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the quota");
    }
    return pdp_api_ok(c, 200,
                      budgets ? pdp_api_budget_json(c, &q)
                              : pdp_api_ratelimit_json(&q));
}

/* pdp_api_budget_body reads a budget from the body into q. */
static bool
pdp_api_budget_body(pdp_api_call *c, pdp_quota *q, unsigned *st)
{
    static const char *const fields[] = {"limit_usd", "window", "thresholds",
                                         "action", NULL};
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(c->body, "limit_usd");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(c->body, "thresholds");
    const char  *window;
    const char  *action;
    const char  *why  = "is not a positive number of USD";
    const char  *text = NULL;
    int64_t      micro;

    if (!pdp_api_fields(c, fields, st) ||
        !pdp_api_str(c, "window", &window, st) ||
        !pdp_api_str(c, "action", &action, st)) {
        return false;
    }
    if (lim == NULL) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give \"limit_usd\", e.g. {\"limit_usd\": 100, "
                          "\"window\": \"monthly\"}.");
        return false;
    }
    if (cJSON_IsNumber(lim)) {
        text = tg_json_doc_number_text(c->doc, lim);
    } else if (cJSON_IsString(lim)) {
        text = lim->valuestring;
    }
    micro = text != NULL ? pdp_usd_micro(text, &why) : 0;
    if (micro <= 0) {
        *st = pdp_api_err(c, 400, "invalid_limit", "\"limit_usd\" %.40s %s.",
                          text != NULL ? text : "", why);
        return false;
    }
    q->limit_micro = micro;
    if (window == NULL) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give \"window\": \"daily\", \"weekly\", "
                          "\"monthly\" or \"rolling:<hours>h\".");
        return false;
    }
    if (!pdp_window_parse(window, &q->window, &q->window_h)) {
        *st = pdp_api_err(c, 400, "invalid_window",
                          "\"window\" \"%.40s\" is not a window the budget "
                          "calendar knows: use \"daily\", \"weekly\" (Monday "
                          "to Monday), \"monthly\" or \"rolling:<N>h\" with N "
                          "from 1 to %d.",
                          window, PDP_BUDGET_ROLLING_H_MAX);
        return false;
    }
    if (q->window != PDP_WINDOW_ROLLING) {
        q->window_h = 0;
    }
    q->clamp = false;
    if (action != NULL && strcmp(action, "clamp") == 0) {
        q->clamp = true;
    } else if (action != NULL && strcmp(action, "deny") != 0) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"action\" \"%.40s\" is not valid: \"deny\" (429 "
                          "budget_exceeded) or \"clamp\" (lower max_tokens "
                          "to what the budget can pay).",
                          action);
        return false;
    }
    q->nthr = 0;
    if (thr != NULL && !cJSON_IsArray(thr)) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"thresholds\" must be an array of percents, e.g. "
                          "[50, 80].");
        return false;
    }
    for (const cJSON *t = thr != NULL ? thr->child : NULL; t != NULL;
         t              = t->next) {
        int64_t pct = 0;

        if (!tg_json_whole(t, 1, 99, &pct) ||
            (q->nthr > 0 && pct <= q->thr[q->nthr - 1]) ||
            q->nthr == PDP_LIMITS_THRESHOLDS_MAX) {
            *st = pdp_api_err(c, 400, "invalid_field",
                              "\"thresholds\": give at most %d whole "
                              "percents from 1 to 99, ascending, e.g. [50, "
                              "80].",
                              PDP_LIMITS_THRESHOLDS_MAX);
            return false;
        }
        q->thr[q->nthr++] = (uint8_t)pct;
    }
    if (q->nthr > 0 && q->window == PDP_WINDOW_ROLLING) {
        *st = pdp_api_err(c, 400, "invalid_field",
                          "\"thresholds\" need a calendar window (daily, "
                          "weekly or monthly): a rolling window has no start "
                          "to alert once per.");
        return false;
    }
    return true;
}

static bool
pdp_api_rate_field(pdp_api_call *c, const char *name, int64_t max, int64_t *out,
                   unsigned *st)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->body, name);

    if (m == NULL) {
        *out = 0;
        return true;
    }
    if (!tg_json_whole(m, 0, max, out)) {
        *st = pdp_api_err(c, 400, "invalid_limit",
                          "\"%s\" must be a whole number from 0 (no limit) "
                          "to %lld.",
                          name, (long long)max);
        return false;
    }
    return true;
}

static bool
pdp_api_rate_body(pdp_api_call *c, pdp_quota *q, unsigned *st)
{
    static const char *const fields[] = {"rpm", "tpm", "concurrent", NULL};

    if (!pdp_api_fields(c, fields, st) ||
        !pdp_api_rate_field(c, "rpm", PDP_RPM_MAX, &q->rpm, st) ||
        !pdp_api_rate_field(c, "tpm", PDP_TPM_MAX, &q->tpm, st) ||
        !pdp_api_rate_field(c, "concurrent", PDP_CONCURRENT_MAX, &q->concurrent,
                            st)) {
        return false;
    }
    if (q->rpm == 0 && q->tpm == 0 && q->concurrent == 0) {
        *st = pdp_api_err(c, 400, "missing_field",
                          "Give at least one of \"rpm\", \"tpm\", "
                          "\"concurrent\" above 0 (to remove the limits, "
                          "DELETE them).");
        return false;
    }
    return true;
}

/* pdp_api_quota_write sets (PUT) or removes (DELETE) the budget or the rate
 * limits of a tenant or key, keeping the other half of its quota. */
static unsigned
pdp_api_quota_write(pdp_api_call *c, bool budgets, bool remove)
{
    pdp_quota_scope scope;
    const char     *id;
    pdp_quota       q;
    unsigned        st      = 0;
    bool            created = false;
    char            target[PDP_AUDIT_TARGET_MAX];
    pdp_audit       a;
    tg_err          rv;

    if (!pdp_api_target(c, &scope, &id, &st)) {
        return st;
    }
    rv = pdp_api_read_quota(c, scope, id, &q);
    if (rv == TG_ENOTFOUND) {
        memset(&q, 0, sizeof(q));
        q.scope = scope;
        snprintf(q.id, sizeof(q.id), "%s", id);
    } else if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the quota");
    }
    if (remove) {
        bool had = budgets ? q.limit_micro > 0
                           : (q.rpm > 0 || q.tpm > 0 || q.concurrent > 0);
        if (!had) {
            return pdp_api_quota_missing(c, budgets, scope, id);
        }
        if (budgets) {
            q.limit_micro = 0;
            q.nthr        = 0;
        } else {
            q.rpm = q.tpm = q.concurrent = 0;
        }
    } else if (c->body == NULL) {
        return pdp_api_err(c, 400, "missing_body",
                           budgets ? "Give the budget as JSON, e.g. "
                                     "{\"limit_usd\": 100, \"window\": "
                                     "\"monthly\", \"thresholds\": [50, 80]}."
                                   : "Give the limits as JSON, e.g. "
                                     "{\"rpm\": 60}.");
    } else if (budgets ? !pdp_api_budget_body(c, &q, &st)
                       : !pdp_api_rate_body(c, &q, &st)) {
        return st;
    }
    q.updated_ms = c->now_ms;
    snprintf(q.updated_by, sizeof(q.updated_by), "%s", c->x->actor);
    snprintf(target, sizeof(target), "%s:%s",
             scope == PDP_QUOTA_TENANT ? "tenant" : "key", id);
    pdp_api_audit(c, &a,
                  budgets ? (remove ? "budgets.delete" : "budgets.set")
                          : (remove ? "ratelimits.delete" : "ratelimits.set"),
                  target,
                  c->body != NULL && !remove ? cJSON_Duplicate(c->body, true)
                                             : NULL);
    if (q.limit_micro == 0 && q.rpm == 0 && q.tpm == 0 && q.concurrent == 0) {
        rv = pdp_store_quota_del(c->x->st, scope, id);
    } else {
        rv = pdp_store_quota_put(c->x->st, &q, &created);
    }
    pdp_api_audit_end(c->x->st, &a);
    if (rv == TG_ENOTFOUND) {
        return scope == PDP_QUOTA_TENANT
                   ? pdp_api_err(c, 404, "tenant_not_found",
                                 "No tenant \"%s\"; create it first "
                                 "(tollgate-pdp tenants create %s).",
                                 id, id)
                   : pdp_api_key_missing(c, id);
    }
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "store the quota");
    }
    if (remove) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "deleted", target);
        return pdp_api_ok(c, 200, doc);
    }
    return pdp_api_ok(c, 200,
                      budgets ? pdp_api_budget_json(c, &q)
                              : pdp_api_ratelimit_json(&q));
}

/* ---- spend and audit ------------------------------------------------------
 */

static unsigned
pdp_api_spend(pdp_api_call *c)
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
                        p[4] != NULL ? p[4] : "json", err,
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

typedef struct pdp_api_audit_list {
    cJSON *arr;
} pdp_api_audit_list;

static bool
pdp_api_audit_one(void *arg, const pdp_audit *a)
{
    pdp_api_audit_list *l = arg;
    cJSON              *j = cJSON_CreateObject();
    cJSON              *d = cJSON_Parse(a->detail);

    cJSON_AddNumberToObject(j, "seq", (double)a->seq);
    pdp_api_json_time(j, "at", a->at_ms);
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

static unsigned
pdp_api_audit_get(pdp_api_call *c)
{
    cJSON             *doc = cJSON_CreateObject();
    pdp_api_audit_list l   = {cJSON_AddArrayToObject(doc, "audit")};
    char               lim[24];
    long               n = PDP_API_AUDIT_LIMIT;
    tg_err             rv;

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
    rv = pdp_store_audit_list(c->x->st, (uint32_t)n, pdp_api_audit_one, &l);
    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, "read the audit trail");
    }
    return pdp_api_ok(c, 200, doc);
}

/* ---- routing ---------------------------------------------------------------
 */

/* ---- usage records --------------------------------------------------------
 */

typedef struct pdp_api_usage_list {
    cJSON *arr;
    char   tenant[TG_ID_MAX];
    char   key[TG_ID_MAX];
    long   limit; /* 0: all */
    long   n;
} pdp_api_usage_list;

static tg_err
pdp_api_usage_one(void *arg, const pdp_usage_rec *r)
{
    static const char *const eps[] = {
        "",           "chat_completions", "completions",
        "embeddings", "messages",         "models"};
    pdp_api_usage_list *l = arg;
    const tg_usage     *u = &r->usage;
    cJSON              *j;
    char                usd[32];

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
    pdp_api_json_time(j, "started", u->started_ms);
    pdp_api_json_time(j, "settled", r->settled_ms);
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

/* pdp_api_usage_get: the settled usage records, one per request id (in
 * request id order), optionally of one tenant or key, at most limit. */
static unsigned
pdp_api_usage_get(pdp_api_call *c)
{
    cJSON             *doc = cJSON_CreateObject();
    pdp_api_usage_list l;
    char               lim[24];
    tg_err             rv;

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
    rv = pdp_store_usage_list(c->x->st, pdp_api_usage_one, &l);
    if (rv != TG_OK && rv != TG_EEXIST) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, "read the usage records");
    }
    return pdp_api_ok(c, 200, doc);
}

/* ---- reservations -------------------------------------------------------- */

typedef struct pdp_api_res_list {
    pdp_api_call *c;
    cJSON        *arr;
    int64_t       ttl_ms;
} pdp_api_res_list;

static void
pdp_api_res_one(void *arg, const char *id, const void *data, size_t len)
{
    pdp_api_res_list    *l    = arg;
    pdp_limits_res_info *info = malloc(sizeof(*info));
    cJSON               *j;
    cJSON               *a;
    char                 usd[32];

    if (info == NULL) {
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
    pdp_api_json_time(j, "created", info->created_ms);
    pdp_api_json_time(j, "expires", info->created_ms + l->ttl_ms);
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

/* pdp_api_reservations_list: every open reservation as recorded (what a
 * restart restores), oldest request id first. */
static unsigned
pdp_api_reservations_list(pdp_api_call *c)
{
    cJSON           *doc = cJSON_CreateObject();
    pdp_api_res_list l;
    tg_err           rv;

    l.c      = c;
    l.arr    = cJSON_AddArrayToObject(doc, "reservations");
    l.ttl_ms = c->x->cfg != NULL ? c->x->cfg->pdp.reservation_ttl_s * 1000
                                 : 900 * 1000;
    rv       = pdp_store_reservation_list(c->x->st, pdp_api_res_one, &l);
    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return pdp_api_store_err(c, rv, "read the reservations");
    }
    return pdp_api_ok(c, 200, doc);
}

/* pdp_api_reservation_release frees a reservation by hand: its record
 * and, in a running PDP, what it holds (slots, worst case); a decision
 * for that request id still on its way then holds nothing. */
static unsigned
pdp_api_reservation_release(pdp_api_call *c, const char *id)
{
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

static bool
pdp_api_is(const pdp_api_call *c, const char *method, uint32_t nseg,
           const char *s0, const char *s2)
{
    return strcmp(c->method, method) == 0 && c->nseg == nseg &&
           strcmp(c->seg[0], s0) == 0 &&
           (s2 == NULL || (nseg > 2 && strcmp(c->seg[2], s2) == 0));
}

static unsigned
pdp_api_route(pdp_api_call *c)
{
    if (c->nseg == 0) {
        return pdp_api_err(c, 404, "not_found",
                           "Resources: tenants, keys, budgets, ratelimits, "
                           "spend, usage, audit, reservations (under "
                           "/admin/v1/).");
    }
    if (pdp_api_is(c, "GET", 1, "tenants", NULL)) {
        return pdp_api_tenants_list(c);
    }
    if (pdp_api_is(c, "POST", 1, "tenants", NULL)) {
        return pdp_api_tenant_write(c, NULL, PDP_API_TENANT_CREATE);
    }
    if (pdp_api_is(c, "PUT", 2, "tenants", NULL)) {
        return pdp_api_tenant_write(c, c->seg[1], PDP_API_TENANT_SET);
    }
    if (pdp_api_is(c, "GET", 2, "tenants", NULL)) {
        return pdp_api_tenant_show(c, c->seg[1]);
    }
    if (pdp_api_is(c, "PATCH", 2, "tenants", NULL)) {
        return pdp_api_tenant_write(c, c->seg[1], PDP_API_TENANT_UPDATE);
    }
    if (pdp_api_is(c, "GET", 1, "keys", NULL)) {
        return pdp_api_keys_list(c);
    }
    if (pdp_api_is(c, "POST", 1, "keys", NULL)) {
        return pdp_api_key_create(c);
    }
    if (pdp_api_is(c, "GET", 2, "keys", NULL)) {
        return pdp_api_key_show(c, c->seg[1]);
    }
    if (pdp_api_is(c, "POST", 3, "keys", "revoke")) {
        return pdp_api_key_revoke(c, c->seg[1]);
    }
    if (pdp_api_is(c, "POST", 3, "keys", "rotate")) {
        return pdp_api_key_rotate(c, c->seg[1]);
    }
    for (int b = 0; b < 2; b++) {
        const char *res = b ? "budgets" : "ratelimits";
        if (pdp_api_is(c, "GET", 1, res, NULL)) {
            return pdp_api_quota_list(c, b);
        }
        if (pdp_api_is(c, "GET", 3, res, NULL)) {
            return pdp_api_quota_show(c, b);
        }
        if (pdp_api_is(c, "PUT", 3, res, NULL)) {
            return pdp_api_quota_write(c, b, false);
        }
        if (pdp_api_is(c, "DELETE", 3, res, NULL)) {
            return pdp_api_quota_write(c, b, true);
        }
    }
    if (pdp_api_is(c, "GET", 1, "spend", NULL)) {
        return pdp_api_spend(c);
    }
    if (pdp_api_is(c, "GET", 1, "audit", NULL)) {
        return pdp_api_audit_get(c);
    }
    if (pdp_api_is(c, "GET", 1, "usage", NULL)) {
        return pdp_api_usage_get(c);
    }
    if (pdp_api_is(c, "GET", 1, "reservations", NULL)) {
        return pdp_api_reservations_list(c);
    }
    if (pdp_api_is(c, "POST", 3, "reservations", "release")) {
        return pdp_api_reservation_release(c, c->seg[1]);
    }
    return pdp_api_err(c, 404, "not_found",
                       "No %s %s%s here. See the README's \"Admin API\" for "
                       "the resources and their methods.",
                       c->method, PDP_API_PREFIX, c->seg[0]);
}

pdp_api_reply
pdp_api_handle(const pdp_api_ctx *x, const char *method, const char *path,
               const char *query, const char *body, size_t len, tg_buf *out)
{
    pdp_api_call *c    = calloc(1, sizeof(*c));
    pdp_api_reply r    = {500, "application/json"};
    size_t        plen = strlen(PDP_API_PREFIX);
    char          err[512];
    char         *p;

    if (c == NULL) {
        tg_buf_addf(out, "{\"error\":{\"code\":\"internal\",\"message\":"
                         "\"out of memory\"}}\n");
        return r;
    }
    c->x      = x;
    c->method = method;
    c->query  = query;
    c->out    = out;
    c->now_ms = x->now_ms > 0 ? x->now_ms : tg_now_ms();
    if (strncmp(path, PDP_API_PREFIX, plen) != 0 ||
        strlen(path + plen) >= sizeof(c->segbuf)) {
        r.status = pdp_api_err(c, 404, "not_found", "No such path.");
        goto out;
    }
    snprintf(c->segbuf, sizeof(c->segbuf), "%s", path + plen);
    for (p = c->segbuf; *p != '\0' && c->nseg < PDP_API_SEGS;) {
        char *slash       = strchr(p, '/');
        c->seg[c->nseg++] = p;
        if (slash == NULL) {
            break;
        }
        *slash = '\0';
        p      = slash + 1;
        if (*p == '\0') {
            break; /* a trailing slash */
        }
    }
    if (body != NULL && len > 0) {
        if (tg_json_doc_parse(&c->doc, "request body", body, len, err,
                              sizeof(err)) != TG_OK) {
            r.status = pdp_api_err(c, 400, "invalid_json",
                                   "%s. Send a JSON object.", err);
            goto out;
        }
        c->body = tg_json_doc_root(c->doc);
    }
    r.status = pdp_api_route(c);
    if (c->ctype != NULL) {
        r.ctype = c->ctype;
    }
    if (tg_buf_error(out) != TG_OK) {
        /* Never an answer with a piece missing. */
        bool big = tg_buf_error(out) == TG_ETOOBIG;

        r.status = pdp_api_err(c, big ? 507 : 500,
                               big ? "answer_too_large" : "internal",
                               big ? "The answer is larger than this "
                                     "interface sends; ask for less (e.g. "
                                     "limit=, tenant=, from=/to=)."
                                   : "out of memory");
        r.ctype  = "application/json";
    }
out:
    tg_json_doc_destroy(c->doc);
    free(c);
    return r;
}
