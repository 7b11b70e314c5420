/* pdp_keys.h - virtual keys, the admin API's resource keys/: their rules
 * (an existing tenant, catalog models, labels, expiry, the rotation grace
 * default, id and secret retries) and the records the API answers with.
 * Only a key's SHA-256 is stored. Thread-safe: each call reads and writes
 * only through the store. */
#ifndef PDP_KEYS_H
#define PDP_KEYS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "pdp_api_call.h"
#include "pdp_store.h"

#define PDP_KEYS_PREFIX "sk-tg-"
#define PDP_KEYS_SECRET_MAX 80 /* a secret: prefix + 64 hex + NUL fits */

/* pdp_keys_status names what a key's current record allows at now_ms:
 * active, rotated-grace, revoked, expired or rotated. */
const char *pdp_keys_status(const pdp_key *k, int64_t now_ms);

/* pdp_keys_json renders a key as the API answers it; secret (NULL: none)
 * is shown only when it was just made. Owns: the result (cJSON_Delete). */
cJSON *pdp_keys_json(const pdp_key *k, const char *secret, int64_t now_ms);

/* The handlers of pdp_api's route table; each answers c and returns the
 * HTTP status.
 *   GET keys[?tenant=ID]      pdp_keys_list (oldest first, with last use)
 *   POST keys                 pdp_keys_create (201, the secret shown once)
 *   GET keys/ID               pdp_keys_show
 *   POST keys/ID/revoke       pdp_keys_revoke
 *   POST keys/ID/rotate       pdp_keys_rotate ({"grace": "24h"}) */
unsigned pdp_keys_list(pdp_api_call *c);
unsigned pdp_keys_create(pdp_api_call *c);
unsigned pdp_keys_show(pdp_api_call *c);
unsigned pdp_keys_revoke(pdp_api_call *c);
unsigned pdp_keys_rotate(pdp_api_call *c);

#endif
