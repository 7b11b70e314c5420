/* dp_jtx.c - see dp_jtx.h. */
#include "dp_jtx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_err
dp_jtx_fail(dp_jtx *tx, const char *param, const char *fmt, ...)
{
    va_list ap;

    if (tx->msg != NULL && tx->msglen > 0) {
        va_start(ap, fmt);
        vsnprintf(tx->msg, tx->msglen, fmt, ap);
        va_end(ap);
    }
    if (tx->param != NULL && tx->paramlen > 0) {
        snprintf(tx->param, tx->paramlen, "%s", param);
    }
    return TG_EINVAL;
}

cJSON *
dp_jtx_add(dp_jtx *tx, cJSON *parent, const char *key, cJSON *item)
{
    cJSON_bool ok;

    if (item == NULL || parent == NULL) {
        cJSON_Delete(item);
        tx->oom = true;
        return NULL;
    }
    ok = key != NULL ? cJSON_AddItemToObject(parent, key, item)
                     : cJSON_AddItemToArray(parent, item);
    if (!ok) {
        cJSON_Delete(item);
        tx->oom = true;
        return NULL;
    }
    return item;
}

cJSON *
dp_jtx_str(dp_jtx *tx, cJSON *parent, const char *key, const char *s)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateString(s));
}

cJSON *
dp_jtx_num(dp_jtx *tx, cJSON *parent, const char *key, double v)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateNumber(v));
}

cJSON *
dp_jtx_obj(dp_jtx *tx, cJSON *parent, const char *key)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateObject());
}

cJSON *
dp_jtx_arr(dp_jtx *tx, cJSON *parent, const char *key)
{
    return dp_jtx_add(tx, parent, key, cJSON_CreateArray());
}

cJSON *
dp_jtx_dup(dp_jtx *tx, cJSON *parent, const char *key, const cJSON *v)
{
    return dp_jtx_add(tx, parent, key, cJSON_Duplicate(v, 1));
}

const cJSON *
dp_jtx_get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

const char *
dp_jtx_gets(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
dp_jtx_present(const cJSON *v)
{
    return v != NULL && !cJSON_IsNull(v);
}

bool
dp_jtx_is(const char *s, const char *lit)
{
    return s != NULL && strcmp(s, lit) == 0;
}

tg_err
dp_jtx_print(dp_jtx *tx, cJSON *root, char **out, size_t *len)
{
    char *txt = NULL;

    if (!tx->oom) {
        txt = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (txt == NULL) {
        return TG_ENOMEM;
    }
    *out = txt;
    if (len != NULL) {
        *len = strlen(txt);
    }
    return TG_OK;
}

cJSON *
dp_jtx_chunk(dp_jtx *tx, const char *id, int64_t created, const char *model,
             bool with_choice, cJSON **choice, cJSON **delta)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *choices;

    if (root == NULL) {
        tx->oom = true;
    }
    dp_jtx_str(tx, root, "id", id);
    dp_jtx_str(tx, root, "object", "chat.completion.chunk");
    dp_jtx_num(tx, root, "created", (double)created);
    dp_jtx_str(tx, root, "model", model);
    choices = dp_jtx_arr(tx, root, "choices");
    if (with_choice) {
        *choice = dp_jtx_obj(tx, choices, NULL);
        dp_jtx_num(tx, *choice, "index", 0);
        *delta = dp_jtx_obj(tx, *choice, "delta");
    }
    return root;
}

char *
dp_jtx_strdup(const char *s)
{
    size_t n;
    char  *d;

    if (s == NULL) {
        return NULL;
    }
    n = strlen(s) + 1;
    if ((d = malloc(n)) != NULL) {
        memcpy(d, s, n);
    }
    return d;
}
