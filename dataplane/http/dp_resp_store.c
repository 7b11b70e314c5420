/* dp_resp_store.c - see dp_resp_store.h. */
#include "dp_resp_store.h"

#include <stdio.h>
#include <string.h>

/* dp_resp_store_gets is the string member key of o (NULL: none). */
static const char *
dp_resp_store_gets(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* dp_resp_store_text appends to cont a part of type (input_text, or
 * output_text with an empty annotations array) with text. false: out of
 * memory (cont may be NULL). */
static bool
dp_resp_store_text(cJSON *cont, const char *type, const char *text)
{
    cJSON *p = cJSON_CreateObject();

    if (p == NULL || cont == NULL || !cJSON_AddItemToArray(cont, p)) {
        cJSON_Delete(p);
        return false;
    }
    return cJSON_AddStringToObject(p, "type", type) != NULL &&
           cJSON_AddStringToObject(p, "text", text) != NULL &&
           (strcmp(type, "output_text") != 0 ||
            cJSON_AddArrayToObject(p, "annotations") != NULL);
}

/* dp_resp_store_msg makes a message item of role around the content parts
 * cont (taken, also when it fails; may be NULL); the assistant's is
 * completed. NULL: out of memory. */
static cJSON *
dp_resp_store_msg(const char *role, cJSON *cont)
{
    cJSON *it = cJSON_CreateObject();

    if (it == NULL || cont == NULL ||
        cJSON_AddStringToObject(it, "type", "message") == NULL ||
        cJSON_AddStringToObject(it, "role", role) == NULL ||
        (strcmp(role, "assistant") == 0 &&
         cJSON_AddStringToObject(it, "status", "completed") == NULL) ||
        !cJSON_AddItemToObject(it, "content", cont)) {
        cJSON_Delete(it);
        cJSON_Delete(cont);
        return NULL;
    }
    return it;
}

/* dp_resp_store_name gives it the id "msg_<rid>_in<n>" (in place of any
 * it had): the one way a gateway-made input item is named. */
static tg_err
dp_resp_store_name(cJSON *it, const char *rid, int n)
{
    char id[160];

    cJSON_DeleteItemFromObjectCaseSensitive(it, "id");
    snprintf(id, sizeof(id), "msg_%s_in%d", rid, n);
    return cJSON_AddStringToObject(it, "id", id) != NULL ? TG_OK : TG_ENOMEM;
}

tg_err
dp_resp_store_items(const cJSON *input, const char *rid, cJSON **out)
{
    cJSON       *arr = cJSON_CreateArray();
    const cJSON *e;
    int          n = 0;

    *out = NULL;
    if (arr == NULL) {
        return TG_ENOMEM;
    }
    if (cJSON_IsString(input)) {
        cJSON *cont = cJSON_CreateArray();
        cJSON *it   = NULL;
        if (dp_resp_store_text(cont, "input_text", input->valuestring)) {
            it = dp_resp_store_msg("user", cont);
        } else {
            cJSON_Delete(cont);
        }
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
        if (dp_resp_store_name((cJSON *)e, rid, n - 1) != TG_OK) {
            cJSON_Delete(arr);
            return TG_ENOMEM;
        }
    }
    *out = arr;
    return TG_OK;
}

/* dp_resp_store_image appends to cont the input_image part of a chat
 * image_url ({url, detail?}, or the URL itself); none without a URL. */
static bool
dp_resp_store_image(cJSON *cont, const cJSON *iu)
{
    const char *url =
        cJSON_IsString(iu) ? iu->valuestring : dp_resp_store_gets(iu, "url");
    const char *det = dp_resp_store_gets(iu, "detail");
    cJSON      *p;

    if (url == NULL) {
        return true;
    }
    if ((p = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(cont, p)) {
        cJSON_Delete(p);
        return false;
    }
    return cJSON_AddStringToObject(p, "type", "input_image") != NULL &&
           cJSON_AddStringToObject(p, "image_url", url) != NULL &&
           cJSON_AddStringToObject(p, "detail", det != NULL ? det : "auto") !=
               NULL;
}

/* dp_resp_store_parts appends to cont the Responses parts of a chat
 * message's content (a string or parts): its texts as input_text, or for
 * the assistant as output_text (an empty one left out), and its image_url
 * parts as input_image (not the assistant's); other parts are left out.
 * false: out of memory. */
static bool
dp_resp_store_parts(cJSON *cont, const cJSON *content, bool assistant)
{
    const char  *tt = assistant ? "output_text" : "input_text";
    const cJSON *p;

    if (cJSON_IsString(content)) {
        return (assistant && content->valuestring[0] == '\0') ||
               dp_resp_store_text(cont, tt, content->valuestring);
    }
    cJSON_ArrayForEach(p, (cJSON_IsArray(content) ? content : NULL))
    {
        const char *type = dp_resp_store_gets(p, "type");
        const char *text = dp_resp_store_gets(p, "text");
        bool        ok   = true;
        if (type == NULL) {
            continue;
        }
        if (strcmp(type, "text") == 0 && text != NULL &&
            !(assistant && text[0] == '\0')) {
            ok = dp_resp_store_text(cont, tt, text);
        } else if (strcmp(type, "image_url") == 0 && !assistant) {
            ok = dp_resp_store_image(
                cont, cJSON_GetObjectItemCaseSensitive(p, "image_url"));
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* dp_resp_store_chat_msg appends to items the message item of a chat
 * message of role with content; none when the content gives no part. */
static tg_err
dp_resp_store_chat_msg(cJSON *items, const char *role, const cJSON *content)
{
    cJSON *cont = cJSON_CreateArray();
    cJSON *it;

    if (cont == NULL ||
        !dp_resp_store_parts(cont, content, strcmp(role, "assistant") == 0)) {
        cJSON_Delete(cont);
        return TG_ENOMEM;
    }
    if (cJSON_GetArraySize(cont) == 0) {
        cJSON_Delete(cont);
        return TG_OK;
    }
    if ((it = dp_resp_store_msg(role, cont)) == NULL ||
        !cJSON_AddItemToArray(items, it)) {
        cJSON_Delete(it);
        return TG_ENOMEM;
    }
    return TG_OK;
}

/* dp_resp_store_new appends to items a new item of type. NULL: out of
 * memory. */
static cJSON *
dp_resp_store_new(cJSON *items, const char *type)
{
    cJSON *it = cJSON_CreateObject();

    if (it == NULL || !cJSON_AddItemToArray(items, it)) {
        cJSON_Delete(it);
        return NULL;
    }
    return cJSON_AddStringToObject(it, "type", type) != NULL ? it : NULL;
}

/* dp_resp_store_calls appends to items a function_call item per tool call
 * of a chat assistant message (calls); one without an id, a name or
 * arguments is left out. */
static tg_err
dp_resp_store_calls(cJSON *items, const cJSON *calls)
{
    const cJSON *tc;

    cJSON_ArrayForEach(tc, (cJSON_IsArray(calls) ? calls : NULL))
    {
        const cJSON *fn   = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char  *cid  = dp_resp_store_gets(tc, "id");
        const char  *name = dp_resp_store_gets(fn, "name");
        const char  *args = dp_resp_store_gets(fn, "arguments");
        cJSON       *it;
        if (cid == NULL || name == NULL || args == NULL) {
            continue;
        }
        if ((it = dp_resp_store_new(items, "function_call")) == NULL ||
            cJSON_AddStringToObject(it, "call_id", cid) == NULL ||
            cJSON_AddStringToObject(it, "name", name) == NULL ||
            cJSON_AddStringToObject(it, "arguments", args) == NULL ||
            cJSON_AddStringToObject(it, "status", "completed") == NULL) {
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

/* dp_resp_store_output appends to items the function_call_output item of
 * a chat tool message m: its content (a string, or text parts joined) is
 * the output. None without a tool_call_id. */
static tg_err
dp_resp_store_output(cJSON *items, const cJSON *m)
{
    const char  *cid     = dp_resp_store_gets(m, "tool_call_id");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *p;
    cJSON       *it;
    tg_buf       b;
    tg_err       rv = TG_OK;

    if (cid == NULL) {
        return TG_OK;
    }
    tg_buf_init(&b, 0);
    if (cJSON_IsString(content)) {
        tg_buf_add(&b, content->valuestring, strlen(content->valuestring));
    }
    cJSON_ArrayForEach(p, (cJSON_IsArray(content) ? content : NULL))
    {
        const char *t = dp_resp_store_gets(p, "text");
        if (t != NULL) {
            tg_buf_add(&b, t, strlen(t));
        }
    }
    if (tg_buf_error(&b) != TG_OK ||
        (it = dp_resp_store_new(items, "function_call_output")) == NULL ||
        cJSON_AddStringToObject(it, "call_id", cid) == NULL ||
        cJSON_AddStringToObject(it, "output", b.data != NULL ? b.data : "") ==
            NULL) {
        rv = TG_ENOMEM;
    }
    tg_buf_fini(&b);
    return rv;
}

/* dp_resp_store_chat_items appends to items the items of chat message m. */
static tg_err
dp_resp_store_chat_items(cJSON *items, const cJSON *m)
{
    const char  *role    = dp_resp_store_gets(m, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    tg_err       rv;

    if (role == NULL) {
        return TG_OK;
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0 ||
        strcmp(role, "user") == 0) {
        return dp_resp_store_chat_msg(items, role, content);
    }
    if (strcmp(role, "assistant") == 0) {
        if ((rv = dp_resp_store_chat_msg(items, role, content)) != TG_OK) {
            return rv;
        }
        return dp_resp_store_calls(
            items, cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
    }
    if (strcmp(role, "tool") == 0) {
        return dp_resp_store_output(items, m);
    }
    return TG_OK; /* another role (the old "function"): not kept */
}

tg_err
dp_resp_store_from_chat(const char *chat, size_t len, bool skip_first_system,
                        const char *rid, cJSON **out)
{
    cJSON       *body  = cJSON_ParseWithLength(chat, len);
    cJSON       *msgs  = cJSON_GetObjectItemCaseSensitive(body, "messages");
    cJSON       *items = NULL;
    cJSON       *e;
    const cJSON *m;
    const char  *role0;
    tg_err       rv = TG_OK;
    int          n  = 0;

    *out = NULL;
    if (!cJSON_IsObject(body) || !cJSON_IsArray(msgs)) {
        cJSON_Delete(body);
        return TG_EPROTO;
    }
    if ((items = cJSON_CreateArray()) == NULL) {
        rv = TG_ENOMEM;
    }
    m     = msgs->child;
    role0 = dp_resp_store_gets(m, "role");
    if (skip_first_system && role0 != NULL && strcmp(role0, "system") == 0) {
        m = m->next;
    }
    for (; m != NULL && rv == TG_OK; m = m->next) {
        rv = dp_resp_store_chat_items(items, m);
    }
    cJSON_ArrayForEach(e, (rv == TG_OK ? items : NULL))
    {
        if ((rv = dp_resp_store_name(e, rid, n++)) != TG_OK) {
            break;
        }
    }
    if (rv == TG_OK) {
        *out  = items;
        items = NULL;
    }
    cJSON_Delete(items);
    cJSON_Delete(body);
    return rv;
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
    return dp_resp_store_gets(it, "id");
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

/* dp_resp_store_push_front puts a copy of each item of from, in order, in
 * front of to's items. Each goes in at index 0, last first: cJSON 1.7.15
 * refuses an insert at another index after one at 0. */
static tg_err
dp_resp_store_push_front(cJSON *to, const cJSON *from)
{
    const cJSON *first = cJSON_IsArray(from) ? from->child : NULL;
    const cJSON *e     = first != NULL ? first->prev : NULL; /* the last */

    for (; e != NULL; e = e == first ? NULL : e->prev) {
        cJSON *copy = cJSON_Duplicate(e, 1);

        if (copy == NULL || !cJSON_InsertItemInArray(to, 0, copy)) {
            cJSON_Delete(copy);
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

/* dp_resp_store_turn parses a stored turn: its response (*r) and its own
 * items (*its); *output is the response's output (may be NULL). */
static tg_err
dp_resp_store_turn(const char *resp, size_t resp_len, const char *items,
                   size_t items_len, cJSON **r, cJSON **its,
                   const cJSON **output)
{
    *r      = cJSON_ParseWithLength(resp, resp_len);
    *its    = cJSON_ParseWithLength(items, items_len);
    *output = cJSON_GetObjectItemCaseSensitive(*r, "output");
    return *r == NULL || !cJSON_IsArray(*its) ||
                   (*output != NULL && !cJSON_IsArray(*output))
               ? TG_ECORRUPT
               : TG_OK;
}

tg_err
dp_resp_store_expand(cJSON *body, const char *resp, size_t resp_len,
                     const char *items, size_t items_len)
{
    cJSON       *r, *its;
    cJSON       *now = NULL;
    cJSON       *in  = cJSON_GetObjectItemCaseSensitive(body, "input");
    cJSON       *all = cJSON_CreateArray();
    const cJSON *output;
    tg_err       rv;

    rv =
        dp_resp_store_turn(resp, resp_len, items, items_len, &r, &its, &output);
    if (rv == TG_OK && all == NULL) {
        rv = TG_ENOMEM;
    } else if (rv == TG_OK && in != NULL &&
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

tg_err
dp_resp_store_prepend(cJSON *body, const char *resp, size_t resp_len,
                      const char *items, size_t items_len)
{
    cJSON       *r, *its;
    cJSON       *in = cJSON_GetObjectItemCaseSensitive(body, "input");
    const cJSON *output;
    tg_err       rv;

    rv =
        dp_resp_store_turn(resp, resp_len, items, items_len, &r, &its, &output);
    if (rv == TG_OK && !cJSON_IsArray(in)) {
        rv = TG_EINVAL;
    }
    /* In front of what is there: the turn's own items, then its output
     * (so the output first). Inserts at the front, so a long conversation
     * costs each turn only its own items. */
    if (rv == TG_OK) {
        rv = dp_resp_store_push_front(in, output);
    }
    if (rv == TG_OK) {
        rv = dp_resp_store_push_front(in, its);
    }
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
