/* pdp_tokens.c - see pdp_tokens.h. */
#include "pdp_tokens.h"

#include <stdio.h>
#include <string.h>

#include "pdp_api_call.h"
#include "pdp_fmt.h"

#define PDP_TOKENS_RANDOM_BYTES 32 /* 64 hex digits */

tg_err
pdp_tokens_mint(char *token, size_t cap, uint8_t hash[TG_SHA256_LEN])
{
    char   hex[2 * PDP_TOKENS_RANDOM_BYTES + 1];
    tg_err rv = tg_random_token(hex, PDP_TOKENS_RANDOM_BYTES);

    if (rv == TG_OK) {
        snprintf(token, cap, "tga-%s", hex);
        tg_sha256(token, strlen(token), hash);
    }
    explicit_bzero(hex, sizeof(hex));
    return rv;
}

tg_err
pdp_tokens_create(pdp_store *st, const char *name, const char *actor,
                  int64_t now_ms, char *token, size_t cap)
{
    uint8_t         hash[TG_SHA256_LEN];
    char            target[PDP_AUDIT_TARGET_MAX];
    pdp_admin_token t;
    pdp_audit       a;
    tg_err          rv;

    if (!tg_id_ok(name) || strlen(name) >= PDP_TOKEN_NAME_MAX) {
        return TG_EINVAL;
    }
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", name);
    snprintf(t.created_by, sizeof(t.created_by), "%s", actor);
    t.created_ms = now_ms;
    if ((rv = pdp_tokens_mint(token, cap, hash)) != TG_OK) {
        return rv;
    }
    snprintf(target, sizeof(target), "admin-token:%s", name);
    pdp_api_audit_begin(st, &a, actor, "admin-tokens.create", target, NULL,
                        now_ms);
    rv = pdp_store_token_put(st, hash, &t, false);
    pdp_api_audit_end(st, &a);
    if (rv != TG_OK) {
        explicit_bzero(token, cap);
    }
    return rv;
}

tg_err
pdp_tokens_revoke(pdp_store *st, const char *name, const char *actor,
                  int64_t now_ms)
{
    char      target[PDP_AUDIT_TARGET_MAX];
    pdp_audit a;
    tg_err    rv;

    if (!tg_id_ok(name) || strlen(name) >= PDP_TOKEN_NAME_MAX) {
        return TG_ENOTFOUND;
    }
    snprintf(target, sizeof(target), "admin-token:%s", name);
    pdp_api_audit_begin(st, &a, actor, "admin-tokens.revoke", target, NULL,
                        now_ms);
    rv = pdp_store_token_revoke(st, name, now_ms);
    pdp_api_audit_end(st, &a);
    return rv;
}

static void
pdp_tokens_one(void *arg, const pdp_admin_token *t)
{
    cJSON *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "name", t->name);
    cJSON_AddStringToObject(j, "status", t->revoked_ms ? "revoked" : "active");
    pdp_fmt_json_time(j, "created", t->created_ms);
    cJSON_AddStringToObject(j, "created_by", t->created_by);
    pdp_fmt_json_time(j, "revoked", t->revoked_ms);
    cJSON_AddItemToArray(arg, j);
}

tg_err
pdp_tokens_list(pdp_store *st, cJSON **out)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "admin_tokens");
    tg_err rv =
        arr != NULL ? pdp_store_token_list(st, pdp_tokens_one, arr) : TG_ENOMEM;

    if (rv != TG_OK) {
        cJSON_Delete(doc);
        return rv;
    }
    *out = doc;
    return TG_OK;
}
