/* dp_resp_store.c - see dp_resp_store.h. */
#include "dp_resp_store.h"

#include <stdio.h>
#include <string.h>

/* dp_resp_store_msg makes a message item of role with one text part. */
static cJSON *
dp_resp_store_msg(const char *role, const char *text)
{
    cJSON *it   = cJSON_CreateObject();
    cJSON *cont = cJSON_CreateArray();
    cJSON *part = cJSON_CreateObject();

    if (it == NULL || cont == NULL || part == NULL) {
        cJSON_Delete(it);
        cJSON_Delete(cont);
        cJSON_Delete(part);
        return NULL;
    }
    cJSON_AddStringToObject(it, "type", "message");
    cJSON_AddStringToObject(it, "role", role);
    cJSON_AddStringToObject(part, "type", "input_text");
    cJSON_AddStringToObject(part, "text", text);
    cJSON_AddItemToArray(cont, part);
    cJSON_AddItemToObject(it, "content", cont);
    return it;
}

tg_err
dp_resp_store_items(const cJSON *input, const char *rid, cJSON **out)
{
    cJSON       *arr = cJSON_CreateArray();
    const cJSON *e;
    int          n = 0;
    char         id[160];

    *out = NULL;
    if (arr == NULL) {
        return TG_ENOMEM;
    }
    if (cJSON_IsString(input)) {
        cJSON *it = dp_resp_store_msg("user", input->valuestring);
        if (it == NULL) {
            cJSON_Delete(arr);
            return TG_ENOMEM;
        }
        cJSON_AddItemToArray(arr, it);
    } else if (cJSON_IsArray(input)) {
        cJSON_ArrayForEach(e, input)
        {
            cJSON *it = cJSON_Duplicate(e, 1);
            if (it == NULL || !cJSON_IsObject(it)) {
                cJSON_Delete(it);
                cJSON_Delete(arr);
                return it == NULL ? TG_ENOMEM : TG_EINVAL;
            }
            if (cJSON_GetObjectItemCaseSensitive(it, "type") == NULL) {
                cJSON_AddStringToObject(it, "type", "message");
            }
            cJSON_AddItemToArray(arr, it);
        }
    } else {
        cJSON_Delete(arr);
        return TG_EINVAL;
    }
    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *have = cJSON_GetObjectItemCaseSensitive(e, "id");
        n++;
        if (cJSON_IsString(have) && have->valuestring[0] != '\0') {
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)e, "id");
        snprintf(id, sizeof(id), "msg_%s_in%d", rid, n - 1);
        cJSON_AddStringToObject((cJSON *)e, "id", id);
    }
    *out = arr;
    return TG_OK;
}

/* dp_resp_store_index is the index of the item whose id is id (-1). */
static int
dp_resp_store_index(const cJSON *arr, const char *id)
{
    const cJSON *e;
    int          i = 0;

    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(v) && strcmp(v->valuestring, id) == 0) {
            return i;
        }
        i++;
    }
    return -1;
}

static const char *
dp_resp_store_id_of(const cJSON *it)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "id");

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

tg_err
dp_resp_store_page(const char *items, size_t len, int64_t limit, bool desc,
                   const char *after, tg_buf *out)
{
    cJSON *arr = cJSON_ParseWithLength(items, len);
    cJSON *res = cJSON_CreateObject();
    cJSON *data;
    int    n, start, step, taken = 0, i;
    char  *text;
    tg_err rv = TG_OK;

    if (arr == NULL || !cJSON_IsArray(arr) || res == NULL) {
        cJSON_Delete(arr);
        cJSON_Delete(res);
        return res == NULL ? TG_ENOMEM : TG_ECORRUPT;
    }
    n     = cJSON_GetArraySize(arr);
    step  = desc ? -1 : 1;
    start = desc ? n - 1 : 0;
    if (after != NULL) {
        if ((i = dp_resp_store_index(arr, after)) < 0) {
            cJSON_Delete(arr);
            cJSON_Delete(res);
            return TG_ENOTFOUND;
        }
        start = i + step;
    }
    cJSON_AddStringToObject(res, "object", "list");
    data = cJSON_AddArrayToObject(res, "data");
    for (i = start; i >= 0 && i < n && taken < limit; i += step, taken++) {
        cJSON_AddItemToArray(data,
                             cJSON_Duplicate(cJSON_GetArrayItem(arr, i), 1));
    }
    if (taken > 0) {
        const char *first = dp_resp_store_id_of(cJSON_GetArrayItem(data, 0));
        const char *last =
            dp_resp_store_id_of(cJSON_GetArrayItem(data, taken - 1));
        cJSON_AddStringToObject(res, "first_id", first != NULL ? first : "");
        cJSON_AddStringToObject(res, "last_id", last != NULL ? last : "");
    } else {
        cJSON_AddNullToObject(res, "first_id");
        cJSON_AddNullToObject(res, "last_id");
    }
    cJSON_AddBoolToObject(res, "has_more", i >= 0 && i < n);
    text = cJSON_PrintUnformatted(res);
    tg_buf_reset(out);
    if (text == NULL || tg_buf_append(out, text, strlen(text)) != TG_OK) {
        rv = TG_ENOMEM;
    }
    cJSON_free(text);
    cJSON_Delete(arr);
    cJSON_Delete(res);
    return rv;
}

/* dp_resp_store_append_all appends a copy of each item of from to to. */
static void
dp_resp_store_append_all(cJSON *to, const cJSON *from)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, from)
    {
        cJSON_AddItemToArray(to, cJSON_Duplicate(e, 1));
    }
}

tg_err
dp_resp_store_expand(cJSON *body, const char *resp, size_t resp_len,
                     const char *items, size_t items_len)
{
    cJSON       *r   = cJSON_ParseWithLength(resp, resp_len);
    cJSON       *its = cJSON_ParseWithLength(items, items_len);
    cJSON       *now = NULL;
    cJSON       *in  = cJSON_GetObjectItemCaseSensitive(body, "input");
    cJSON       *all = cJSON_CreateArray();
    const cJSON *output;
    tg_err       rv = TG_OK;

    output = cJSON_GetObjectItemCaseSensitive(r, "output");
    if (r == NULL || !cJSON_IsArray(its) ||
        (output != NULL && !cJSON_IsArray(output))) {
        rv = TG_ECORRUPT;
    } else if (all == NULL) {
        rv = TG_ENOMEM;
    } else if (in != NULL &&
               (rv = dp_resp_store_items(in, "x", &now)) == TG_OK) {
        /* The new input keeps its own ids only where the client set them:
         * drop the placeholders dp_resp_store_items added. */
        cJSON *e;
        cJSON_ArrayForEach(e, now)
        {
            const char *id = dp_resp_store_id_of(e);
            if (id != NULL && strncmp(id, "msg_x_in", 8) == 0) {
                cJSON_DeleteItemFromObjectCaseSensitive(e, "id");
            }
        }
    }
    if (rv == TG_OK) {
        dp_resp_store_append_all(all, its);
        dp_resp_store_append_all(all, output);
        dp_resp_store_append_all(all, now);
        cJSON_DeleteItemFromObjectCaseSensitive(body, "input");
        cJSON_AddItemToObject(body, "input", all);
        cJSON_DeleteItemFromObjectCaseSensitive(body, "previous_response_id");
        all = NULL;
    }
    cJSON_Delete(all);
    cJSON_Delete(now);
    cJSON_Delete(r);
    cJSON_Delete(its);
    return rv;
}

static bool
dp_resp_store_is_ref(const cJSON *it)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");

    return cJSON_IsString(t) && strcmp(t->valuestring, "item_reference") == 0;
}

const char *
dp_resp_store_ref_id(const cJSON *body)
{
    const cJSON *in  = cJSON_GetObjectItemCaseSensitive(body, "input");
    const cJSON *arr = cJSON_IsArray(in) ? in : NULL;
    const cJSON *e;

    cJSON_ArrayForEach(e, arr)
    {
        if (dp_resp_store_is_ref(e) && dp_resp_store_id_of(e) != NULL) {
            return dp_resp_store_id_of(e);
        }
    }
    return NULL;
}

/* dp_resp_store_find is the item named id in arr, else NULL. */
static const cJSON *
dp_resp_store_find(const cJSON *arr, const char *id)
{
    int i = cJSON_IsArray(arr) ? dp_resp_store_index(arr, id) : -1;

    return i >= 0 ? cJSON_GetArrayItem(arr, i) : NULL;
}

int
dp_resp_store_resolve(cJSON *body, const char *resp, size_t resp_len,
                      const char *items, size_t items_len)
{
    cJSON *r   = cJSON_ParseWithLength(resp, resp_len);
    cJSON *its = cJSON_ParseWithLength(items, items_len);
    cJSON *in  = cJSON_GetObjectItemCaseSensitive(body, "input");
    cJSON *e;
    int    n = 0, i = 0;

    if (r == NULL || its == NULL) {
        cJSON_Delete(r);
        cJSON_Delete(its);
        return -1;
    }
    if (!cJSON_IsArray(in)) {
        in = NULL;
    }
    cJSON_ArrayForEach(e, in)
    {
        const char  *id = dp_resp_store_id_of(e);
        const cJSON *hit;
        if (dp_resp_store_is_ref(e) && id != NULL &&
            ((hit = dp_resp_store_find(its, id)) != NULL ||
             (hit = dp_resp_store_find(
                  cJSON_GetObjectItemCaseSensitive(r, "output"), id)) !=
                 NULL)) {
            cJSON *copy = cJSON_Duplicate(hit, 1);
            if (copy != NULL && cJSON_ReplaceItemInArray(in, i, copy)) {
                e = copy;
                n++;
            } else {
                cJSON_Delete(copy);
            }
        }
        i++;
    }
    cJSON_Delete(r);
    cJSON_Delete(its);
    return n;
}

bool
dp_resp_store_ref_response(const char *item_id, char *out, size_t cap)
{
    const char *rid;
    const char *end = strrchr(item_id, '_');
    int         n;

    if (strncmp(item_id, "msg_", 4) == 0) {
        rid = item_id + 4;
    } else if (strncmp(item_id, "fc_", 3) == 0) {
        rid = item_id + 3;
    } else {
        return false;
    }
    if (end == NULL || end <= rid) {
        return false;
    }
    n = snprintf(out, cap, "resp_%.*s", (int)(end - rid), rid);
    return n > 0 && (size_t)n < cap;
}
