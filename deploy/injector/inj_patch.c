/* inj_patch.c - JSON Patch add operations and a small apply (RFC 6902
 * add/replace over RFC 6901 pointers). */
#include "inj_patch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INJ_PTR_TOKEN_MAX 512

tg_err
inj_ptr_escape(char *out, size_t cap, const char *key)
{
    size_t n = 0;

    for (const char *k = key; *k != '\0'; k++) {
        const char *rep = *k == '~' ? "~0" : *k == '/' ? "~1" : NULL;
        size_t      len = rep != NULL ? 2 : 1;

        if (n + len >= cap) {
            if (cap > 0) {
                out[0] = '\0';
            }
            return TG_ETOOBIG;
        }
        memcpy(out + n, rep != NULL ? rep : k, len);
        n += len;
    }
    if (cap == 0) {
        return TG_ETOOBIG;
    }
    out[n] = '\0';
    return TG_OK;
}

tg_err
inj_patch_add(cJSON *ops, const char *path, cJSON *value)
{
    cJSON *op = cJSON_CreateObject();

    if (value == NULL || op == NULL ||
        cJSON_AddStringToObject(op, "op", "add") == NULL ||
        cJSON_AddStringToObject(op, "path", path) == NULL) {
        cJSON_Delete(op);
        cJSON_Delete(value);
        return TG_ENOMEM;
    }
    cJSON_AddItemToObject(op, "value", value);
    cJSON_AddItemToArray(ops, op);
    return TG_OK;
}

/* inj_ptr_next copies the token at *p (just after a '/') unescaped into
 * tok and moves *p past it. false on a bad escape or a too long token. */
static bool
inj_ptr_next(const char **p, char *tok, size_t cap)
{
    size_t n = 0;

    for (; **p != '\0' && **p != '/'; (*p)++) {
        char c = **p;

        if (c == '~') {
            (*p)++;
            if (**p != '0' && **p != '1') {
                return false;
            }
            c = **p == '0' ? '~' : '/';
        }
        if (n + 1 >= cap) {
            return false;
        }
        tok[n++] = c;
    }
    tok[n] = '\0';
    return true;
}

/* inj_ptr_index reads an array index token: digits, no leading zero. */
static bool
inj_ptr_index(const char *tok, int size, bool add, int *out)
{
    long v;

    if (add && strcmp(tok, "-") == 0) {
        *out = size;
        return true;
    }
    if (tok[0] == '\0' || strspn(tok, "0123456789") != strlen(tok) ||
        (tok[0] == '0' && tok[1] != '\0') || strlen(tok) > 9) {
        return false;
    }
    v    = strtol(tok, NULL, 10);
    *out = (int)v;
    return add ? v <= size : v < size;
}

/* inj_patch_insert puts value at idx (<= size) of arr, shifting the rest
 * right. Not cJSON_InsertItemInArray: Debian's cJSON 1.7.15 refuses to
 * insert before any element but the first. Takes: value. */
static tg_err
inj_patch_insert(cJSON *arr, int idx, cJSON *value)
{
    cJSON *rest = cJSON_CreateArray();
    cJSON *it;

    if (rest == NULL) {
        return TG_ENOMEM;
    }
    while ((it = cJSON_DetachItemFromArray(arr, idx)) != NULL) {
        cJSON_AddItemToArray(rest, it);
    }
    cJSON_AddItemToArray(arr, value);
    while ((it = cJSON_DetachItemFromArray(rest, 0)) != NULL) {
        cJSON_AddItemToArray(arr, it);
    }
    cJSON_Delete(rest);
    return TG_OK;
}

/* inj_patch_set puts value at key (an unescaped token) of parent. Takes:
 * value on TG_OK. */
static tg_err
inj_patch_set(cJSON *parent, const char *tok, cJSON *value, bool add)
{
    int idx;

    if (cJSON_IsObject(parent)) {
        if (cJSON_GetObjectItemCaseSensitive(parent, tok) != NULL) {
            return cJSON_ReplaceItemInObjectCaseSensitive(parent, tok, value)
                       ? TG_OK
                       : TG_ENOMEM;
        }
        if (!add) {
            return TG_EINVAL;
        }
        return cJSON_AddItemToObject(parent, tok, value) ? TG_OK : TG_ENOMEM;
    }
    if (!cJSON_IsArray(parent) ||
        !inj_ptr_index(tok, cJSON_GetArraySize(parent), add, &idx)) {
        return TG_EINVAL;
    }
    if (!add) {
        return cJSON_ReplaceItemInArray(parent, idx, value) ? TG_OK : TG_ENOMEM;
    }
    return inj_patch_insert(parent, idx, value);
}

/* inj_patch_walk resolves every token of path but the last. */
static cJSON *
inj_patch_walk(cJSON *doc, const char *path, char *last, size_t cap)
{
    const char *p   = path;
    cJSON      *cur = doc;
    int         idx;

    if (*p != '/') {
        return NULL; /* "" (the whole document) is never patched here */
    }
    p++;
    for (;;) {
        if (!inj_ptr_next(&p, last, cap)) {
            return NULL;
        }
        if (*p == '\0') {
            return cur;
        }
        p++; /* the '/' before the next token */
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, last);
        } else if (cJSON_IsArray(cur) &&
                   inj_ptr_index(last, cJSON_GetArraySize(cur), false, &idx)) {
            cur = cJSON_GetArrayItem(cur, idx);
        } else {
            cur = NULL;
        }
        if (cur == NULL) {
            return NULL;
        }
    }
}

static tg_err
inj_patch_one(cJSON *doc, const cJSON *op, size_t i, char *err, size_t errlen)
{
    const char *kind  = cJSON_GetStringValue(cJSON_GetObjectItem(op, "op"));
    const char *path  = cJSON_GetStringValue(cJSON_GetObjectItem(op, "path"));
    cJSON      *value = cJSON_GetObjectItem(op, "value");
    char        last[INJ_PTR_TOKEN_MAX];
    cJSON      *parent;
    cJSON      *copy;
    bool        add;
    tg_err      rv;

    if (kind == NULL || path == NULL || value == NULL ||
        (strcmp(kind, "add") != 0 && strcmp(kind, "replace") != 0)) {
        snprintf(err, errlen,
                 "patch[%zu]: expected an \"add\" or \"replace\" with a path "
                 "and a value",
                 i);
        return TG_EINVAL;
    }
    add = strcmp(kind, "add") == 0;
    if ((parent = inj_patch_walk(doc, path, last, sizeof(last))) == NULL) {
        snprintf(err, errlen, "patch[%zu]: %s: no such location", i, path);
        return TG_EINVAL;
    }
    if ((copy = cJSON_Duplicate(value, true)) == NULL) {
        snprintf(err, errlen, "patch[%zu]: out of memory", i);
        return TG_ENOMEM;
    }
    if ((rv = inj_patch_set(parent, last, copy, add)) != TG_OK) {
        cJSON_Delete(copy);
        snprintf(err, errlen, "patch[%zu]: %s %s: %s", i, kind, path,
                 rv == TG_EINVAL ? "no such member or index out of range"
                                 : tg_strerror(rv));
    }
    return rv;
}

tg_err
inj_patch_apply(cJSON *doc, const cJSON *ops, char *err, size_t errlen)
{
    const cJSON *op;
    size_t       i = 0;
    tg_err       rv;

    if (!cJSON_IsArray(ops)) {
        snprintf(err, errlen, "patch: expected an array of operations");
        return TG_EINVAL;
    }
    cJSON_ArrayForEach(op, ops)
    {
        if ((rv = inj_patch_one(doc, op, i++, err, errlen)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}
