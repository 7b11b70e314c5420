/* tg_guard_shape.c - the output shape checks (see tg_guard.h): valid
 * JSON, a JSON Schema subset, a length in bytes. A schema is checked when
 * the set compiles (tg_guard__schema_check), so every keyword a rule holds
 * is one this file enforces. Pure: thread-safe. */
#include "tg_guard_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* How deep a schema may nest (the answer may nest deeper: only as deep as
 * the schema is checked). */
#define TG_GUARD_SCHEMA_DEPTH 32
#define TG_GUARD_PATH_MAX 256

static const char *const tg_guard_types[] = {
    "object", "array", "string", "number", "integer", "boolean", "null", NULL};

/* Keywords that describe and constrain nothing. */
static const char *const tg_guard_notes[] = {
    "title",    "description", "$schema",  "$id",
    "$comment", "default",     "examples", NULL};

static bool
tg_guard_in(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static bool
tg_guard_type_ok(const cJSON *t)
{
    const cJSON *it;

    if (cJSON_IsString(t)) {
        return tg_guard_in(tg_guard_types, t->valuestring);
    }
    if (!cJSON_IsArray(t) || t->child == NULL) {
        return false;
    }
    cJSON_ArrayForEach(it, t)
    {
        if (!cJSON_IsString(it) ||
            !tg_guard_in(tg_guard_types, it->valuestring)) {
            return false;
        }
    }
    return true;
}

static bool
tg_guard_count_ok(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 &&
           v->valuedouble <= UINT32_MAX &&
           v->valuedouble == floor(v->valuedouble);
}

static bool
tg_guard_strings_ok(const cJSON *a)
{
    const cJSON *it;

    if (!cJSON_IsArray(a)) {
        return false;
    }
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it)) {
            return false;
        }
    }
    return true;
}

/* tg_guard_path_push appends "/seg" to path (of *plen bytes); returns the
 * old length to restore. */
static size_t
tg_guard_path_push(char *path, size_t *plen, const char *fmt, const char *seg)
{
    size_t old = *plen;
    int    n   = snprintf(path + old, TG_GUARD_PATH_MAX - old, fmt, seg);

    *plen = n < 0 || old + (size_t)n >= TG_GUARD_PATH_MAX
                ? TG_GUARD_PATH_MAX - 1
                : old + (size_t)n;
    return old;
}

static bool tg_guard_schema_walk(const cJSON *s, char *path, size_t plen,
                                 int depth, char *why, size_t whylen);

/* tg_guard_schema_sub checks a keyword that holds schemas. */
static bool
tg_guard_schema_sub(const cJSON *kw, char *path, size_t plen, int depth,
                    char *why, size_t whylen)
{
    const char *k = kw->string;
    size_t      old;
    bool        ok = true;

    if (strcmp(k, "properties") == 0) {
        const cJSON *p;
        if (!cJSON_IsObject(kw)) {
            snprintf(why, whylen, "at %s: \"properties\" must be an object",
                     plen ? path : "/");
            return false;
        }
        cJSON_ArrayForEach(p, kw)
        {
            old = tg_guard_path_push(path, &plen, "/properties/%s", p->string);
            ok  = tg_guard_schema_walk(p, path, plen, depth + 1, why, whylen);
            path[plen = old] = '\0';
            if (!ok) {
                return false;
            }
        }
        return true;
    }
    if (cJSON_IsArray(kw) && strcmp(k, "items") == 0) {
        snprintf(why, whylen,
                 "at %s: a list of \"items\" schemas is not "
                 "supported; give one schema",
                 plen ? path : "/");
        return false;
    }
    if (cJSON_IsBool(kw) && strcmp(k, "additionalProperties") == 0) {
        return true;
    }
    old       = tg_guard_path_push(path, &plen, "/%s", k);
    ok        = tg_guard_schema_walk(kw, path, plen, depth + 1, why, whylen);
    path[old] = '\0';
    return ok;
}

static bool
tg_guard_schema_walk(const cJSON *s, char *path, size_t plen, int depth,
                     char *why, size_t whylen)
{
    const cJSON *kw;
    const char  *at = plen ? path : "/";

    if (depth > TG_GUARD_SCHEMA_DEPTH) {
        snprintf(why, whylen, "at %s: nested deeper than %d", at,
                 TG_GUARD_SCHEMA_DEPTH);
        return false;
    }
    if (!cJSON_IsObject(s)) {
        snprintf(why, whylen, "at %s: a schema must be an object", at);
        return false;
    }
    cJSON_ArrayForEach(kw, s)
    {
        const char *k   = kw->string;
        const char *bad = NULL;
        if (strcmp(k, "properties") == 0 || strcmp(k, "items") == 0 ||
            strcmp(k, "additionalProperties") == 0) {
            if (!tg_guard_schema_sub(kw, path, plen, depth, why, whylen)) {
                return false;
            }
            continue;
        }
        if (strcmp(k, "type") == 0) {
            bad = tg_guard_type_ok(kw) ? NULL
                                       : "must be object, array, string, "
                                         "number, integer, boolean, null "
                                         "or a list of them";
        } else if (strcmp(k, "required") == 0) {
            bad = tg_guard_strings_ok(kw) ? NULL : "must be a list of names";
        } else if (strcmp(k, "enum") == 0) {
            bad = cJSON_IsArray(kw) && kw->child != NULL ? NULL
                                                         : "must be a list";
        } else if (strcmp(k, "minLength") == 0 || strcmp(k, "maxLength") == 0 ||
                   strcmp(k, "minItems") == 0 || strcmp(k, "maxItems") == 0) {
            bad = tg_guard_count_ok(kw) ? NULL : "must be a whole number";
        } else if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0) {
            bad = cJSON_IsNumber(kw) ? NULL : "must be a number";
        } else if (strcmp(k, "const") != 0 && !tg_guard_in(tg_guard_notes, k)) {
            snprintf(why, whylen,
                     "keyword \"%s\" is not supported (at %s); supported: "
                     "type, properties, required, additionalProperties, "
                     "items, enum, const, minLength, maxLength, minimum, "
                     "maximum, minItems, maxItems",
                     k, at);
            return false;
        }
        if (bad != NULL) {
            snprintf(why, whylen, "at %s: \"%s\" %s", at, k, bad);
            return false;
        }
    }
    return true;
}

bool
tg_guard__schema_check(const cJSON *schema, char *why, size_t whylen)
{
    char path[TG_GUARD_PATH_MAX] = "";

    return tg_guard_schema_walk(schema, path, 0, 0, why, whylen);
}

/* ---- matching an answer against a checked schema ---------------------- */

static bool
tg_guard_is_type(const char *t, const cJSON *v)
{
    if (strcmp(t, "object") == 0) {
        return cJSON_IsObject(v);
    }
    if (strcmp(t, "array") == 0) {
        return cJSON_IsArray(v);
    }
    if (strcmp(t, "string") == 0) {
        return cJSON_IsString(v);
    }
    if (strcmp(t, "number") == 0) {
        return cJSON_IsNumber(v);
    }
    if (strcmp(t, "integer") == 0) {
        return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
               v->valuedouble == floor(v->valuedouble);
    }
    if (strcmp(t, "boolean") == 0) {
        return cJSON_IsBool(v);
    }
    return cJSON_IsNull(v);
}

static bool
tg_guard_type_match(const cJSON *t, const cJSON *v)
{
    const cJSON *it;

    if (cJSON_IsString(t)) {
        return tg_guard_is_type(t->valuestring, v);
    }
    cJSON_ArrayForEach(it, t)
    {
        if (tg_guard_is_type(it->valuestring, v)) {
            return true;
        }
    }
    return false;
}

static size_t
tg_guard_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static double
tg_guard_num(const cJSON *s, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);

    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static bool tg_guard_match(const cJSON *s, const cJSON *v, char *path,
                           size_t plen, char *why, size_t whylen);

/* tg_guard_match_value: type, enum, const and the string, number and
 * array-size bounds. */
static bool
tg_guard_match_value(const cJSON *s, const cJSON *v, const char *at, char *why,
                     size_t whylen)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    const cJSON *en   = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cst  = cJSON_GetObjectItemCaseSensitive(s, "const");
    const cJSON *it;
    bool         found = en == NULL;

    if (type != NULL && !tg_guard_type_match(type, v)) {
        char *t = cJSON_PrintUnformatted(type);
        snprintf(why, whylen, "%s: expected type %s", at, t ? t : "");
        cJSON_free(t);
        return false;
    }
    cJSON_ArrayForEach(it, en)
    {
        found = found || cJSON_Compare(it, v, true);
    }
    if (!found || (cst != NULL && !cJSON_Compare(cst, v, true))) {
        snprintf(why, whylen, "%s: not %s", at,
                 found ? "the required value" : "one of the allowed values");
        return false;
    }
    if (cJSON_IsString(v)) {
        double n = (double)tg_guard_chars(v->valuestring);
        if (n < tg_guard_num(s, "minLength", 0) ||
            n > tg_guard_num(s, "maxLength", INFINITY)) {
            snprintf(why, whylen, "%s: %.0f characters, outside the bounds", at,
                     n);
            return false;
        }
    } else if (cJSON_IsNumber(v) &&
               (v->valuedouble < tg_guard_num(s, "minimum", -INFINITY) ||
                v->valuedouble > tg_guard_num(s, "maximum", INFINITY))) {
        snprintf(why, whylen, "%s: %g is outside the bounds", at,
                 v->valuedouble);
        return false;
    } else if (cJSON_IsArray(v)) {
        double n = (double)cJSON_GetArraySize(v);
        if (n < tg_guard_num(s, "minItems", 0) ||
            n > tg_guard_num(s, "maxItems", INFINITY)) {
            snprintf(why, whylen, "%s: %.0f items, outside the bounds", at, n);
            return false;
        }
    }
    return true;
}

/* tg_guard_match_members: items, required, properties and
 * additionalProperties. */
static bool
tg_guard_match_members(const cJSON *s, const cJSON *v, char *path, size_t plen,
                       char *why, size_t whylen)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    const cJSON *req   = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *add =
        cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    const cJSON *it;
    size_t       i = 0;

    if (cJSON_IsArray(v) && items != NULL) {
        cJSON_ArrayForEach(it, v)
        {
            char   idx[24];
            size_t old;
            snprintf(idx, sizeof(idx), "%zu", i++);
            old = tg_guard_path_push(path, &plen, "[%s]", idx);
            if (!tg_guard_match(items, it, path, plen, why, whylen)) {
                return false;
            }
            path[plen = old] = '\0';
        }
    }
    if (!cJSON_IsObject(v)) {
        return true;
    }
    cJSON_ArrayForEach(it, req)
    {
        if (cJSON_GetObjectItemCaseSensitive(v, it->valuestring) == NULL) {
            snprintf(why, whylen, "%s: \"%s\" is missing", path,
                     it->valuestring);
            return false;
        }
    }
    cJSON_ArrayForEach(it, v)
    {
        const cJSON *ps  = cJSON_GetObjectItemCaseSensitive(props, it->string);
        size_t       old = plen;
        if (ps == NULL && cJSON_IsFalse(add)) {
            snprintf(why, whylen, "%s: \"%s\" is not allowed", path,
                     it->string);
            return false;
        }
        ps = ps != NULL ? ps : cJSON_IsObject(add) ? add : NULL;
        if (ps == NULL) {
            continue;
        }
        old = tg_guard_path_push(path, &plen, ".%s", it->string);
        if (!tg_guard_match(ps, it, path, plen, why, whylen)) {
            return false;
        }
        path[plen = old] = '\0';
    }
    return true;
}

static bool
tg_guard_match(const cJSON *s, const cJSON *v, char *path, size_t plen,
               char *why, size_t whylen)
{
    return tg_guard_match_value(s, v, path, why, whylen) &&
           tg_guard_match_members(s, v, path, plen, why, whylen);
}

/* tg_guard_json_parse: the answer as JSON (nothing but whitespace after
 * the value), or NULL with *bad the offset of the problem. */
static cJSON *
tg_guard_json_parse(const char *text, size_t len, size_t *bad)
{
    const char *end = NULL;
    cJSON      *doc;
    size_t      o;

    *bad = 0;
    if (len == 0) {
        return NULL;
    }
    if ((doc = cJSON_ParseWithLengthOpts(text, len, &end, false)) == NULL) {
        *bad = end != NULL && end >= text && end <= text + len
                   ? (size_t)(end - text)
                   : 0;
        return NULL;
    }
    for (o = (size_t)(end - text);
         o < len && strchr(" \t\r\n", text[o]) && text[o] != '\0'; o++) {
    }
    if (o < len) {
        *bad = o;
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static tg_err
tg_guard_shape_fail(tg_guard_hits *hits, size_t r, uint16_t det, size_t at,
                    char *why, size_t whylen, const char *what)
{
    if (why != NULL && whylen > 0 && why[0] == '\0') {
        snprintf(why, whylen, "%s", what);
    }
    return tg_guard__hit_add(hits, r, det, at, at);
}

tg_err
tg_guard_shape_check(const tg_guard_set *gs, uint64_t mask, const char *text,
                     size_t len, tg_guard_hits *hits, char *why, size_t whylen)
{
    uint64_t m    = 0;
    bool     need = false;
    cJSON   *doc  = NULL;
    size_t   bad  = 0;
    char     msg[320];
    char     path[TG_GUARD_PATH_MAX] = "$";
    tg_err   rv                      = TG_OK;

    if (why != NULL && whylen > 0) {
        why[0] = '\0';
    }
    if (gs == NULL || hits == NULL || (text == NULL && len > 0)) {
        return TG_EINVAL;
    }
    m = mask & gs->at[TG_GUARD_OUTPUT];
    for (uint64_t b = m; b != 0; b &= b - 1) {
        const tg_guard_rule *ru = &gs->rule[__builtin_ctzll(b)];
        need                    = need || ru->json || ru->schema != NULL;
    }
    if (need) {
        doc = tg_guard_json_parse(text, len, &bad); /* NULL: not JSON */
    }
    for (uint64_t b = m; b != 0 && rv == TG_OK; b &= b - 1) {
        size_t               r  = (size_t)__builtin_ctzll(b);
        const tg_guard_rule *ru = &gs->rule[r];
        snprintf(msg, sizeof(msg), "the answer is not valid JSON (byte %zu)",
                 bad);
        if (ru->json && doc == NULL) {
            rv = tg_guard_shape_fail(hits, r, gs->json, bad, why, whylen, msg);
        }
        if (rv == TG_OK && ru->schema != NULL && doc == NULL) {
            rv =
                tg_guard_shape_fail(hits, r, gs->schema, bad, why, whylen, msg);
        } else if (rv == TG_OK && ru->schema != NULL &&
                   !tg_guard_match(ru->schema, doc, path, 1, msg,
                                   sizeof(msg))) {
            char full[400];
            snprintf(full, sizeof(full),
                     "the answer does not match the "
                     "schema: %s",
                     msg);
            rv = tg_guard_shape_fail(hits, r, gs->schema, len, why, whylen,
                                     full);
        }
        if (rv == TG_OK && ru->max_length > 0 && len > ru->max_length) {
            snprintf(msg, sizeof(msg),
                     "the answer is %zu bytes, more than "
                     "max_length %zu",
                     len, ru->max_length);
            rv = tg_guard_shape_fail(hits, r, gs->maxlen, ru->max_length, why,
                                     whylen, msg);
        }
    }
    cJSON_Delete(doc);
    return rv;
}
