/* pdp_tokens.h - admin API tokens (Authorization: Bearer on
 * pdp.admin_listen): made, listed and revoked on the state directory only,
 * never through the API itself (whoever may make a token must be able to
 * read the state). A token is shown once; only its SHA-256 is stored; its
 * name is who the audit trail says made a change ("token:NAME"). Every
 * change is in the audit trail with the actor. Thread-safe. */
#ifndef PDP_TOKENS_H
#define PDP_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pdp_store.h"
#include "tg_hash.h"

#define PDP_TOKENS_SECRET_MAX 72 /* "tga-" + 64 hex + NUL fits */

/* pdp_tokens_mint makes a new token ("tga-" + 64 hex) into token (cap >=
 * PDP_TOKENS_SECRET_MAX) and its SHA-256 into hash. The caller wipes
 * token. */
tg_err pdp_tokens_mint(char *token, size_t cap, uint8_t hash[TG_SHA256_LEN]);

/* pdp_tokens_create makes token name (1-63 of A-Z a-z 0-9 . _ -) and
 * stores it, made by actor at now_ms. TG_EINVAL for a bad name, TG_EEXIST
 * when an active token has that name (nothing is written). */
tg_err pdp_tokens_create(pdp_store *st, const char *name, const char *actor,
                         int64_t now_ms, char *token, size_t cap);

/* pdp_tokens_revoke revokes the active token called name; TG_ENOTFOUND
 * when there is none. */
tg_err pdp_tokens_revoke(pdp_store *st, const char *name, const char *actor,
                         int64_t now_ms);

/* pdp_tokens_list renders every token (never the token itself) as
 * {"admin_tokens": [{"name","status","created","created_by","revoked"}]}.
 * Owns: *out (cJSON_Delete) on TG_OK. */
tg_err pdp_tokens_list(pdp_store *st, cJSON **out);

#endif
