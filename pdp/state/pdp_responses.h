/* pdp_responses.h - stored Responses API responses (POST /v1/responses
 * with "store"), per tenant, in the store's "responses" database: the
 * Response object and the input items it answered, so a later request can
 * name it as previous_response_id and a client can retrieve, list the
 * inputs of and delete it. Thread-safe like the rest of pdp_store.
 *
 *   responses  u8 'r', str tenant, str response id -> u8 version (1),
 *              i64 created_ms, str key id, u32 n + n bytes of the Response
 *              (JSON text), u32 n + n bytes of its input items (a JSON
 *              array); u8 'i', str tenant, str item id -> u8 1, str
 *              response id: the response holding that item (an "id" of
 *              its Response's "output" items or of its input items, a
 *              string shorter than PDP_RESP_ID_MAX), written and deleted
 *              with the response, in its write txn; the latest put wins
 *              an id two responses hold, and a response deleted takes
 *              only the index records that still name it; u8 't', str
 *              tenant -> u8 1, i64 bytes, i64 count: what the tenant's
 *              stored responses hold (keys and values of 'r' and 'i'
 *              records; count: 'r' ones), kept in the same write txn as
 *              every record change, for the per-tenant quota.
 * Written through pdp_store__put / pdp_store__del (the HA transaction log
 * carries them; the database is not replicated to sidecars: responses are
 * served by the PDP that holds them). Added without a schema bump: older
 * builds ignore the database. */
#ifndef PDP_RESPONSES_H
#define PDP_RESPONSES_H

#include <stddef.h>
#include <stdint.h>

#include "pdp_store.h"
#include "tg_config.h"
#include "tg_err.h"

#define PDP_RESP_ID_MAX 96 /* "resp_" and a request id, or OpenAI's */

typedef struct pdp_resp_rec {
    char    tenant[TG_ID_MAX];
    char    id[PDP_RESP_ID_MAX];
    char    key_id[TG_ID_MAX];
    int64_t created_ms;
    char   *response; /* JSON text, NUL-terminated; owned */
    size_t  response_len;
    char   *items; /* a JSON array, NUL-terminated; owned */
    size_t  items_len;
    int64_t deadline_ms; /* a put: not begun after (unix ms); 0: none */
} pdp_resp_rec;

/* pdp_resp_rec_fini frees what r owns (NULL-safe). */
void pdp_resp_rec_fini(pdp_resp_rec *r);

/* pdp_store_resp_put stores r (its tenant, id, key id, time, response and
 * items; borrowed until return) and the index records of its item ids
 * (none when its JSON does not parse). max_tenant_bytes > 0: TG_ETOOBIG
 * when the tenant's stored bytes, index records included, would pass it
 * (nothing written). TG_ETIMEDOUT: r's deadline passed before its write
 * began (nothing written). TG_EEXIST: the tenant already has a response
 * with this id. TG_EINVAL: an empty or too long tenant or id. */
tg_err pdp_store_resp_put(pdp_store *st, const pdp_resp_rec *r,
                          int64_t max_tenant_bytes);

/* pdp_store_resp_get reads the tenant's response id into out.
 * TG_ENOTFOUND: none (another tenant's id is none). TG_ECORRUPT: a
 * damaged record. Owns: out's buffers (pdp_resp_rec_fini), also after an
 * error. */
tg_err pdp_store_resp_get(pdp_store *st, const char *tenant, const char *id,
                          pdp_resp_rec *out);

/* pdp_store_resp_get_item reads into out the tenant's response that
 * holds item item_id (out->id: that response's id), as
 * pdp_store_resp_get does. TG_ENOTFOUND: none (another tenant's item is
 * none; so is an id too long to be indexed). */
tg_err pdp_store_resp_get_item(pdp_store *st, const char *tenant,
                               const char *item_id, pdp_resp_rec *out);

/* pdp_store_resp_del deletes the tenant's response id and its item
 * index records (those a newer response took stay). TG_ENOTFOUND:
 * none. */
tg_err pdp_store_resp_del(pdp_store *st, const char *tenant, const char *id);

/* pdp_store_resp_usage reads what the tenant's stored responses hold
 * (0 and 0 when none). */
tg_err pdp_store_resp_usage(pdp_store *st, const char *tenant, int64_t *bytes,
                            int64_t *count);

/* pdp_store_resp_prune deletes every response created before before_ms
 * (retention), with their index records as pdp_store_resp_del does, in
 * batches of at most 1000 per write txn; *removed counts them (may be
 * NULL). */
tg_err pdp_store_resp_prune(pdp_store *st, int64_t before_ms,
                            uint64_t *removed);

#endif
