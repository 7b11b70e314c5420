/* pdp_import_rows.c - one row of each JSON lines file of an export
 * (pdp_export.c writes them) into the record pdp_store_import writes
 * back: every member checked, none unknown, integers read from their
 * exact text. Not thread-safe. */
#include "pdp_import_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tg_hash.h"

/* ---- members
 * ------------------------------------------------------------------ */

static const cJSON *
pdp_im_member(pdp_im *m, const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (v == NULL) {
        pdp_im_fail(m, TG_EINVAL, "\"%s\" is missing", name);
    }
    return v;
}

tg_err
pdp_im_str(pdp_im *m, const cJSON *o, const char *name, char *out, size_t cap)
{
    const cJSON *v = pdp_im_member(m, o, name);

    if (v == NULL) {
        return m->rv;
    }
    if (!cJSON_IsString(v)) {
        return pdp_im_fail(m, TG_EINVAL, "\"%s\" must be a string", name);
    }
    if (strlen(v->valuestring) >= cap) {
        return pdp_im_fail(m, TG_EINVAL,
                           "\"%s\" is longer than %zu bytes, the most the "
                           "store keeps",
                           name, cap - 1);
    }
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return TG_OK;
}

/* pdp_im_number reads the exact text of number v as a whole number. */
static bool
pdp_im_number(pdp_im *m, const cJSON *v, bool neg_ok, uint64_t *mag, bool *neg)
{
    const char *t = tg_json_doc_number_text(m->doc, v);
    char       *end;

    if (t == NULL || !cJSON_IsNumber(v)) {
        return false;
    }
    *neg = t[0] == '-';
    if ((*neg && !neg_ok) || t[*neg ? 1 : 0] < '0' || t[*neg ? 1 : 0] > '9') {
        return false;
    }
    errno = 0;
    *mag  = strtoull(t + (*neg ? 1 : 0), &end, 10);
    return errno == 0 && (*end == '\0' || strchr(",}] \t\r\n", *end) != NULL);
}

tg_err
pdp_im_int(pdp_im *m, const cJSON *o, const char *name, int64_t min,
           int64_t max, int64_t *out)
{
    const cJSON *v = pdp_im_member(m, o, name);
    uint64_t     mag;
    bool         neg;
    int64_t      x;

    if (v == NULL) {
        return m->rv;
    }
    if (!pdp_im_number(m, v, min < 0, &mag, &neg) ||
        mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
        return pdp_im_fail(m, TG_EINVAL, "\"%s\" must be a whole number", name);
    }
    x = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    if (x < min || x > max) {
        return pdp_im_fail(m, TG_EINVAL,
                           "\"%s\" is %" PRId64 ": it must be from %" PRId64
                           " to %" PRId64,
                           name, x, min, max);
    }
    *out = x;
    return TG_OK;
}

tg_err
pdp_im_uint(pdp_im *m, const cJSON *o, const char *name, uint64_t *out)
{
    const cJSON *v = pdp_im_member(m, o, name);
    bool         neg;

    if (v == NULL) {
        return m->rv;
    }
    if (!pdp_im_number(m, v, false, out, &neg)) {
        return pdp_im_fail(m, TG_EINVAL,
                           "\"%s\" must be a whole number, 0 or more", name);
    }
    return TG_OK;
}

tg_err
pdp_im_bool(pdp_im *m, const cJSON *o, const char *name, bool *out)
{
    const cJSON *v = pdp_im_member(m, o, name);

    if (v == NULL) {
        return m->rv;
    }
    if (!cJSON_IsBool(v)) {
        return pdp_im_fail(m, TG_EINVAL, "\"%s\" must be true or false", name);
    }
    *out = cJSON_IsTrue(v);
    return TG_OK;
}

tg_err
pdp_im_hex(pdp_im *m, const cJSON *o, const char *name, uint8_t *out, size_t n)
{
    char        text[2 * 64 + 1];
    const char *hx = "0123456789abcdef";

    if (pdp_im_str(m, o, name, text, sizeof(text)) != TG_OK) {
        return m->rv;
    }
    if (strlen(text) != 2 * n) {
        return pdp_im_fail(m, TG_EINVAL, "\"%s\" must be %zu hex digits", name,
                           2 * n);
    }
    for (size_t i = 0; i < n; i++) {
        const char *a = strchr(hx, text[2 * i]);
        const char *b = strchr(hx, text[2 * i + 1]);
        if (a == NULL || b == NULL || text[2 * i] == '\0' ||
            text[2 * i + 1] == '\0') {
            return pdp_im_fail(m, TG_EINVAL,
                               "\"%s\" must be lower-case hex digits", name);
        }
        out[i] = (uint8_t)((a - hx) << 4 | (b - hx));
    }
    return TG_OK;
}

/* pdp_im_only refuses a member not in names (NULL-ended). */
static tg_err
pdp_im_only(pdp_im *m, const cJSON *o, const char *const names[])
{
    char why[512];

    if (!cJSON_IsObject(o)) {
        return pdp_im_fail(m, TG_EINVAL, "not a JSON object");
    }
    if (tg_json_only_keys(m->doc, o, "row", names, why, sizeof(why)) != TG_OK) {
        return pdp_im_fail(m, TG_EINVAL, "%s", why);
    }
    return TG_OK;
}

static tg_err
pdp_im_labels(pdp_im *m, const cJSON *o, const char *name, tg_kv *l,
              uint32_t *n)
{
    const cJSON *v = pdp_im_member(m, o, name);
    const cJSON *e;

    *n = 0;
    if (v == NULL) {
        return m->rv;
    }
    if (!cJSON_IsObject(v)) {
        return pdp_im_fail(m, TG_EINVAL, "\"%s\" must be an object", name);
    }
    cJSON_ArrayForEach(e, v)
    {
        if (*n >= PDP_LABELS_MAX) {
            return pdp_im_fail(m, TG_EINVAL, "\"%s\" has more than %d labels",
                               name, PDP_LABELS_MAX);
        }
        if (strlen(e->string) >= sizeof(l->key) || !cJSON_IsString(e) ||
            strlen(e->valuestring) >= sizeof(l->value)) {
            return pdp_im_fail(m, TG_EINVAL,
                               "label \"%s\" must be a string, its name "
                               "under %zu bytes and its value under %zu",
                               e->string, sizeof(l->key), sizeof(l->value));
        }
        memcpy(l[*n].key, e->string, strlen(e->string) + 1);
        memcpy(l[*n].value, e->valuestring, strlen(e->valuestring) + 1);
        (*n)++;
    }
    return TG_OK;
}

/* pdp_im_pick reads a member naming one of a few codes (code: its
 * index, by the export's name tables). */
static tg_err
pdp_im_pick(pdp_im *m, const cJSON *o, const char *name,
            int (*code_of)(const char *), const char *expect, int *code)
{
    char text[32];

    if (pdp_im_str(m, o, name, text, sizeof(text)) != TG_OK) {
        return m->rv;
    }
    if ((*code = code_of(text)) < 0) {
        return pdp_im_fail(m, TG_EINVAL, "\"%s\" is \"%s\": it must be %s",
                           name, text, expect);
    }
    return TG_OK;
}

/* ---- tenants, keys, quotas
 * --------------------------------------------------- */

tg_err
pdp_im_row_tenant(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {
        "id",         "name",       "tier",        "labels",
        "created_ms", "updated_ms", "disabled_ms", NULL};
    pdp_tenant    *t = calloc(1, sizeof(*t));
    pdp_import_rec r = {.kind = PDP_IMPORT_TENANT};

    if (t == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_str(m, o, "id", t->id, sizeof(t->id)) == TG_OK &&
        pdp_im_str(m, o, "name", t->name, sizeof(t->name)) == TG_OK &&
        pdp_im_str(m, o, "tier", t->tier, sizeof(t->tier)) == TG_OK &&
        pdp_im_labels(m, o, "labels", t->labels, &t->n_labels) == TG_OK &&
        pdp_im_int(m, o, "created_ms", 0, INT64_MAX, &t->created_ms) == TG_OK &&
        pdp_im_int(m, o, "updated_ms", 0, INT64_MAX, &t->updated_ms) == TG_OK &&
        pdp_im_int(m, o, "disabled_ms", 0, INT64_MAX, &t->disabled_ms) ==
            TG_OK) {
        if (t->id[0] == '\0') {
            pdp_im_fail(m, TG_EINVAL, "\"id\" is empty");
        }
    }
    r.u.tenant = t;
    return pdp_im_push(m, &r, t);
}

/* A key row with its hash. */
typedef struct pdp_im_keyrow {
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];
} pdp_im_keyrow;

static tg_err
pdp_im_models(pdp_im *m, const cJSON *o, pdp_key *k)
{
    const cJSON *v = pdp_im_member(m, o, "models");
    const cJSON *e;

    if (v == NULL) {
        return m->rv;
    }
    if (!cJSON_IsArray(v)) {
        return pdp_im_fail(m, TG_EINVAL, "\"models\" must be an array");
    }
    cJSON_ArrayForEach(e, v)
    {
        if (k->n_models >= PDP_KEY_MODELS_MAX || !cJSON_IsString(e) ||
            strlen(e->valuestring) >= sizeof(k->models[0])) {
            return pdp_im_fail(m, TG_EINVAL,
                               "\"models\" must hold at most %d strings of "
                               "under %zu bytes",
                               PDP_KEY_MODELS_MAX, sizeof(k->models[0]));
        }
        memcpy(k->models[k->n_models++], e->valuestring,
               strlen(e->valuestring) + 1);
    }
    return TG_OK;
}

tg_err
pdp_im_row_key(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {"id",
                                        "sha256",
                                        "superseded",
                                        "tenant",
                                        "name",
                                        "user",
                                        "status",
                                        "labels",
                                        "created_ms",
                                        "revoked_ms",
                                        "expires_ms",
                                        "rotated_ms",
                                        "grace_until_ms",
                                        "models",
                                        NULL};
    pdp_im_keyrow           *kr      = calloc(1, sizeof(*kr));
    pdp_key                 *k       = kr != NULL ? &kr->k : NULL;
    pdp_import_rec           r       = {.kind = PDP_IMPORT_KEY};
    char                     status[16];

    if (kr == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_str(m, o, "id", k->id, sizeof(k->id)) == TG_OK &&
        pdp_im_hex(m, o, "sha256", kr->hash, TG_SHA256_LEN) == TG_OK &&
        pdp_im_bool(m, o, "superseded", &k->superseded) == TG_OK &&
        pdp_im_str(m, o, "tenant", k->tenant, sizeof(k->tenant)) == TG_OK &&
        pdp_im_str(m, o, "name", k->name, sizeof(k->name)) == TG_OK &&
        pdp_im_str(m, o, "user", k->user, sizeof(k->user)) == TG_OK &&
        pdp_im_str(m, o, "status", status, sizeof(status)) == TG_OK &&
        pdp_im_labels(m, o, "labels", k->labels, &k->n_labels) == TG_OK &&
        pdp_im_int(m, o, "created_ms", 0, INT64_MAX, &k->created_ms) == TG_OK &&
        pdp_im_int(m, o, "revoked_ms", 0, INT64_MAX, &k->revoked_ms) == TG_OK &&
        pdp_im_int(m, o, "expires_ms", 0, INT64_MAX, &k->expires_ms) == TG_OK &&
        pdp_im_int(m, o, "rotated_ms", 0, INT64_MAX, &k->rotated_ms) == TG_OK &&
        pdp_im_int(m, o, "grace_until_ms", 0, INT64_MAX, &k->grace_until_ms) ==
            TG_OK &&
        pdp_im_models(m, o, k) == TG_OK) {
        if (strcmp(status, "active") == 0) {
            k->status = PDP_KEY_ACTIVE;
        } else if (strcmp(status, "revoked") == 0) {
            k->status = PDP_KEY_REVOKED;
        } else {
            pdp_im_fail(m, TG_EINVAL,
                        "\"status\" is \"%s\": it must be active or revoked",
                        status);
        }
        if (m->rv == TG_OK && k->id[0] == '\0') {
            pdp_im_fail(m, TG_EINVAL, "\"id\" is empty");
        }
    }
    r.u.key.hash = kr->hash;
    r.u.key.k    = k;
    return pdp_im_push(m, &r, kr);
}

static tg_err
pdp_im_thresholds(pdp_im *m, const cJSON *o, pdp_quota *q)
{
    const cJSON *v = pdp_im_member(m, o, "thresholds");
    const cJSON *e;
    int64_t      t;

    if (v == NULL) {
        return m->rv;
    }
    if (!cJSON_IsArray(v)) {
        return pdp_im_fail(m, TG_EINVAL, "\"thresholds\" must be an array");
    }
    cJSON_ArrayForEach(e, v)
    {
        if (q->nthr >= PDP_LIMITS_THRESHOLDS_MAX ||
            !tg_json_whole(e, 1, 100, &t)) {
            return pdp_im_fail(m, TG_EINVAL,
                               "\"thresholds\" must hold at most %d whole "
                               "percents from 1 to 100",
                               PDP_LIMITS_THRESHOLDS_MAX);
        }
        q->thr[q->nthr++] = (uint8_t)t;
    }
    return TG_OK;
}

tg_err
pdp_im_row_quota(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {
        "scope",        "id",         "budget_micro_usd", "window",
        "window_hours", "action",     "thresholds",       "rpm",
        "tpm",          "concurrent", "created_ms",       "updated_ms",
        "updated_by",   NULL};
    pdp_quota     *q = calloc(1, sizeof(*q));
    pdp_import_rec r = {.kind = PDP_IMPORT_QUOTA};
    char           scope[16];
    char           action[16];
    int            w = 0;
    int64_t        wh;

    if (q == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_str(m, o, "scope", scope, sizeof(scope)) == TG_OK &&
        pdp_im_str(m, o, "id", q->id, sizeof(q->id)) == TG_OK &&
        pdp_im_int(m, o, "budget_micro_usd", 0, INT64_MAX, &q->limit_micro) ==
            TG_OK &&
        pdp_im_pick(m, o, "window", pdp_export_window_code,
                    "daily, weekly, monthly or rolling", &w) == TG_OK &&
        pdp_im_int(m, o, "window_hours", INT32_MIN, INT32_MAX, &wh) == TG_OK &&
        pdp_im_str(m, o, "action", action, sizeof(action)) == TG_OK &&
        pdp_im_thresholds(m, o, q) == TG_OK &&
        pdp_im_int(m, o, "rpm", 0, INT64_MAX, &q->rpm) == TG_OK &&
        pdp_im_int(m, o, "tpm", 0, INT64_MAX, &q->tpm) == TG_OK &&
        pdp_im_int(m, o, "concurrent", 0, INT64_MAX, &q->concurrent) == TG_OK &&
        pdp_im_int(m, o, "created_ms", 0, INT64_MAX, &q->created_ms) == TG_OK &&
        pdp_im_int(m, o, "updated_ms", 0, INT64_MAX, &q->updated_ms) == TG_OK &&
        pdp_im_str(m, o, "updated_by", q->updated_by, sizeof(q->updated_by)) ==
            TG_OK) {
        q->window   = (uint8_t)w;
        q->window_h = (int32_t)wh;
        q->scope = strcmp(scope, "key") == 0 ? PDP_QUOTA_KEY : PDP_QUOTA_TENANT;
        q->clamp = strcmp(action, "clamp") == 0;
        if (strcmp(scope, "key") != 0 && strcmp(scope, "tenant") != 0) {
            pdp_im_fail(m, TG_EINVAL,
                        "\"scope\" is \"%s\": it must be tenant or key", scope);
        } else if (!q->clamp && strcmp(action, "deny") != 0) {
            pdp_im_fail(m, TG_EINVAL,
                        "\"action\" is \"%s\": it must be deny or clamp",
                        action);
        } else if (q->id[0] == '\0') {
            pdp_im_fail(m, TG_EINVAL, "\"id\" is empty");
        }
    }
    r.u.quota = q;
    return pdp_im_push(m, &r, q);
}

/* ---- lists and their history
 * -------------------------------------------------- */

/* pdp_im_list_alloc makes one block holding the list, its term array and
 * the terms' text (freed with one free, as the batch does). */
static pdp_list_terms *
pdp_im_list_alloc(const cJSON *terms)
{
    const cJSON    *e;
    size_t          n     = 0;
    size_t          bytes = 0;
    pdp_list_terms *l;
    char           *text;

    cJSON_ArrayForEach(e, terms)
    {
        n++;
        bytes += cJSON_IsString(e) ? strlen(e->valuestring) + 1 : 1;
    }
    l = calloc(1, sizeof(*l) + n * sizeof(char *) + bytes);
    if (l == NULL) {
        return NULL;
    }
    l->terms = (char **)(l + 1);
    text     = (char *)(l->terms + n);
    cJSON_ArrayForEach(e, terms)
    {
        const char *s = cJSON_IsString(e) ? e->valuestring : "";
        size_t      k = strlen(s) + 1;
        memcpy(text, s, k);
        l->terms[l->n++] = text;
        l->bytes += k;
        text += k;
    }
    return l;
}

tg_err
pdp_im_row_list(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {"name",  "version", "updated_ms",
                                        "actor", "terms",   NULL};
    const cJSON    *terms = cJSON_GetObjectItemCaseSensitive(o, "terms");
    pdp_list_terms *l;
    pdp_import_rec  r = {.kind = PDP_IMPORT_LIST};

    if (pdp_im_only(m, o, names) != TG_OK) {
        return m->rv;
    }
    if (!cJSON_IsArray(terms)) {
        return pdp_im_fail(m, TG_EINVAL,
                           "\"terms\" must be an array of "
                           "strings");
    }
    if ((l = pdp_im_list_alloc(terms)) == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_str(m, o, "name", l->name, sizeof(l->name)) == TG_OK &&
        pdp_im_uint(m, o, "version", &l->version) == TG_OK &&
        pdp_im_int(m, o, "updated_ms", 0, INT64_MAX, &l->updated_ms) == TG_OK &&
        pdp_im_str(m, o, "actor", l->actor, sizeof(l->actor)) == TG_OK) {
        if (!pdp_terms_name_ok(l->name)) {
            pdp_im_fail(m, TG_EINVAL,
                        "\"name\" is \"%s\": not a list name "
                        "([a-z0-9][a-z0-9_-]{0,63})",
                        l->name);
        } else if (!pdp_terms_list_ok((const char *const *)l->terms, l->n)) {
            pdp_im_fail(m, TG_EINVAL,
                        "\"terms\" are not a list the store keeps (each a "
                        "valid term, none repeated, within %d terms and "
                        "4 MiB): check them with `tollgate-pdp lists set`",
                        PDP_LIST_TERMS_MAX);
        }
    }
    r.u.list = l;
    return pdp_im_push(m, &r, l);
}

tg_err
pdp_im_row_change(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {"seq",     "at_ms",        "name",
                                        "version", "op",           "actor",
                                        "terms",   "terms_sha256", NULL};
    pdp_list_change         *c       = calloc(1, sizeof(*c));
    pdp_import_rec           r       = {.kind = PDP_IMPORT_LIST_CHANGE};
    char                     op[16];
    uint64_t                 n;

    if (c == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_uint(m, o, "seq", &c->seq) == TG_OK &&
        pdp_im_int(m, o, "at_ms", 0, INT64_MAX, &c->at_ms) == TG_OK &&
        pdp_im_str(m, o, "name", c->name, sizeof(c->name)) == TG_OK &&
        pdp_im_uint(m, o, "version", &c->version) == TG_OK &&
        pdp_im_str(m, o, "op", op, sizeof(op)) == TG_OK &&
        pdp_im_str(m, o, "actor", c->actor, sizeof(c->actor)) == TG_OK &&
        pdp_im_uint(m, o, "terms", &n) == TG_OK &&
        pdp_im_hex(m, o, "terms_sha256", c->sha256, TG_SHA256_LEN) == TG_OK) {
        c->n = (uint32_t)n;
        c->op =
            strcmp(op, "delete") == 0 ? PDP_LIST_OP_DELETE : PDP_LIST_OP_SET;
        if (c->seq == 0) {
            pdp_im_fail(m, TG_EINVAL, "\"seq\" must be 1 or more");
        } else if (strcmp(op, "set") != 0 && strcmp(op, "delete") != 0) {
            pdp_im_fail(m, TG_EINVAL,
                        "\"op\" is \"%s\": it must be set or delete", op);
        } else if (!pdp_terms_name_ok(c->name) || n > UINT32_MAX) {
            pdp_im_fail(m, TG_EINVAL, "\"name\" or \"terms\" is not valid");
        }
    }
    r.u.change = c;
    return pdp_im_push(m, &r, c);
}

/* ---- policy history and the admin audit trail
 * ---------------------------------- */

/* An activation with the JSON of its bundle files (NULL: none kept). */
typedef struct pdp_im_actrow {
    pdp_activation a;
    char          *files;
} pdp_im_actrow;

static tg_err
pdp_im_act_files(pdp_im *m, const cJSON *o, pdp_im_actrow *ar)
{
    const cJSON *f = pdp_im_member(m, o, "files");
    char         want[64];

    if (f == NULL || cJSON_IsNull(f)) {
        return m->rv;
    }
    snprintf(want, sizeof(want), "bundles/%" PRIu64, ar->a.seq);
    if (!cJSON_IsString(f) || strcmp(f->valuestring, want) != 0) {
        return pdp_im_fail(m, TG_EINVAL, "\"files\" must be null or \"%s\"",
                           want);
    }
    return pdp_im_bundle_json(m, want, &ar->files);
}

tg_err
pdp_im_row_activation(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {"seq",
                                        "revision",
                                        "previous_revision",
                                        "activated_ms",
                                        "how",
                                        "rollback",
                                        "refused",
                                        "name",
                                        "hash",
                                        "actor",
                                        "why",
                                        "files",
                                        NULL};
    pdp_im_actrow           *ar      = calloc(1, sizeof(*ar));
    pdp_import_rec           r       = {.kind = PDP_IMPORT_ACTIVATION};
    int                      how     = 0;

    if (ar == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_uint(m, o, "seq", &ar->a.seq) == TG_OK &&
        pdp_im_uint(m, o, "revision", &ar->a.revision) == TG_OK &&
        pdp_im_uint(m, o, "previous_revision", &ar->a.previous_revision) ==
            TG_OK &&
        pdp_im_int(m, o, "activated_ms", 0, INT64_MAX, &ar->a.activated_ms) ==
            TG_OK &&
        pdp_im_pick(m, o, "how", pdp_export_how_code,
                    "start, sighup, command or watch", &how) == TG_OK &&
        pdp_im_bool(m, o, "rollback", &ar->a.rollback) == TG_OK &&
        pdp_im_bool(m, o, "refused", &ar->a.refused) == TG_OK &&
        pdp_im_str(m, o, "name", ar->a.name, sizeof(ar->a.name)) == TG_OK &&
        pdp_im_str(m, o, "hash", ar->a.hash, sizeof(ar->a.hash)) == TG_OK &&
        pdp_im_str(m, o, "actor", ar->a.actor, sizeof(ar->a.actor)) == TG_OK &&
        pdp_im_str(m, o, "why", ar->a.why, sizeof(ar->a.why)) == TG_OK) {
        ar->a.how = (pdp_activation_how)how;
        if (ar->a.seq == 0) {
            pdp_im_fail(m, TG_EINVAL, "\"seq\" must be 1 or more");
        } else {
            pdp_im_act_files(m, o, ar);
        }
    }
    if (m->rv == TG_OK && ar->files != NULL) {
        /* One block, as the batch frees it: the files after the row. */
        char          *files = ar->files;
        size_t         n     = strlen(files) + 1;
        pdp_im_actrow *big   = realloc(ar, sizeof(*ar) + n);
        if (big == NULL) {
            pdp_im_fail(m, TG_ENOMEM, "out of memory");
        } else {
            ar        = big;
            ar->files = (char *)(ar + 1);
            memcpy(ar->files, files, n);
        }
        free(files);
        if (big == NULL) {
            ar->files = NULL;
        }
    }
    r.u.act.a     = &ar->a;
    r.u.act.files = ar->files; /* NULL, or inside ar */
    return pdp_im_push(m, &r, ar);
}

tg_err
pdp_im_row_audit(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {"seq",    "at_ms",  "actor", "action",
                                        "target", "detail", NULL};
    pdp_audit               *a       = calloc(1, sizeof(*a));
    pdp_import_rec           r       = {.kind = PDP_IMPORT_AUDIT};

    if (a == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_uint(m, o, "seq", &a->seq) == TG_OK &&
        pdp_im_int(m, o, "at_ms", 0, INT64_MAX, &a->at_ms) == TG_OK &&
        pdp_im_str(m, o, "actor", a->actor, sizeof(a->actor)) == TG_OK &&
        pdp_im_str(m, o, "action", a->action, sizeof(a->action)) == TG_OK &&
        pdp_im_str(m, o, "target", a->target, sizeof(a->target)) == TG_OK &&
        pdp_im_str(m, o, "detail", a->detail, sizeof(a->detail)) == TG_OK &&
        a->seq == 0) {
        pdp_im_fail(m, TG_EINVAL, "\"seq\" must be 1 or more");
    }
    r.u.audit = a;
    return pdp_im_push(m, &r, a);
}

/* ---- totals, budgets, alerts
 * ---------------------------------------------------- */

/* Totals with the id they are kept under. */
typedef struct pdp_im_totrow {
    pdp_totals t;
    char       id[TG_ID_MAX];
} pdp_im_totrow;

tg_err
pdp_im_row_totals(pdp_im *m, const cJSON *o)
{
    static const char *const names[] = {"kind",
                                        "id",
                                        "requests",
                                        "prompt_tokens",
                                        "completion_tokens",
                                        "cost_micro_usd",
                                        "last_ms",
                                        NULL};
    pdp_im_totrow           *tr      = calloc(1, sizeof(*tr));
    pdp_import_rec           r       = {.kind = PDP_IMPORT_TOTALS};
    char                     kind[16];

    if (tr == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, names) == TG_OK &&
        pdp_im_str(m, o, "kind", kind, sizeof(kind)) == TG_OK &&
        pdp_im_str(m, o, "id", tr->id, sizeof(tr->id)) == TG_OK &&
        pdp_im_int(m, o, "requests", INT64_MIN, INT64_MAX, &tr->t.requests) ==
            TG_OK &&
        pdp_im_int(m, o, "prompt_tokens", INT64_MIN, INT64_MAX,
                   &tr->t.prompt_tokens) == TG_OK &&
        pdp_im_int(m, o, "completion_tokens", INT64_MIN, INT64_MAX,
                   &tr->t.completion_tokens) == TG_OK &&
        pdp_im_int(m, o, "cost_micro_usd", INT64_MIN, INT64_MAX,
                   &tr->t.cost_micro_usd) == TG_OK &&
        pdp_im_int(m, o, "last_ms", INT64_MIN, INT64_MAX, &tr->t.last_ms) ==
            TG_OK) {
        if (strcmp(kind, "key") == 0) {
            r.u.totals.kind = PDP_TOTALS_KEY;
        } else if (strcmp(kind, "tenant") == 0) {
            r.u.totals.kind = PDP_TOTALS_TENANT;
        } else {
            pdp_im_fail(m, TG_EINVAL,
                        "\"kind\" is \"%s\": it must be key or tenant", kind);
        }
    }
    r.u.totals.id = tr->id;
    r.u.totals.t  = &tr->t;
    return pdp_im_push(m, &r, tr);
}

static tg_err
pdp_im_budget_row(pdp_im *m, const cJSON *o, bool alert)
{
    static const char *const bnames[] = {
        "rule",       "scope", "window", "start_ms", "spent_micro_usd",
        "updated_ms", NULL};
    static const char *const anames[] = {
        "rule",      "scope",    "window",          "start_ms",
        "threshold", "fired_ms", "spent_micro_usd", "limit_micro_usd",
        NULL};
    pdp_budget_row *b = calloc(1, sizeof(*b));
    pdp_import_rec  r = {.kind = alert ? PDP_IMPORT_ALERT : PDP_IMPORT_BUDGET};
    int             w = 0;
    int64_t         thr;

    if (b == NULL) {
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (pdp_im_only(m, o, alert ? anames : bnames) == TG_OK &&
        pdp_im_str(m, o, "rule", b->key.rule_id, sizeof(b->key.rule_id)) ==
            TG_OK &&
        pdp_im_str(m, o, "scope", b->key.scope, sizeof(b->key.scope)) ==
            TG_OK &&
        pdp_im_pick(m, o, "window", pdp_export_window_code,
                    "daily, weekly, monthly or rolling", &w) == TG_OK &&
        pdp_im_int(m, o, "start_ms", INT64_MIN, INT64_MAX, &b->key.start_ms) ==
            TG_OK &&
        pdp_im_int(m, o, "spent_micro_usd", INT64_MIN, INT64_MAX,
                   &b->spent_micro_usd) == TG_OK) {
        b->key.code = (uint8_t)w;
        if (!alert) {
            pdp_im_int(m, o, "updated_ms", INT64_MIN, INT64_MAX,
                       &b->updated_ms);
        } else if (pdp_im_int(m, o, "threshold", 1, 255, &thr) == TG_OK &&
                   pdp_im_int(m, o, "fired_ms", INT64_MIN, INT64_MAX,
                              &b->fired_ms) == TG_OK) {
            b->threshold = (uint8_t)thr;
            pdp_im_int(m, o, "limit_micro_usd", INT64_MIN, INT64_MAX,
                       &b->limit_micro_usd);
        }
    }
    r.u.budget = b;
    return pdp_im_push(m, &r, b);
}

tg_err
pdp_im_row_budget(pdp_im *m, const cJSON *o)
{
    return pdp_im_budget_row(m, o, false);
}

tg_err
pdp_im_row_alert(pdp_im *m, const cJSON *o)
{
    return pdp_im_budget_row(m, o, true);
}
