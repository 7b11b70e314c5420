/* dp_keycache.h - which virtual keys the PDP allowed recently (by their
 * SHA-256, never the key), so that failing open (on_pdp_error: allow)
 * still authenticates: only a key the PDP allowed within the TTL is served
 * while the PDP cannot answer; a made-up key gets 503. Bounded: a fixed
 * set-associative table (DP_KEYCACHE_KEYS entries); an older entry makes
 * room for a newer one. Thread-safe (a short lock per shard); workers
 * remember allows and look keys up. */
#ifndef DP_KEYCACHE_H
#define DP_KEYCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "tg_err.h"
#include "tg_msg.h"

#define DP_KEYCACHE_KEYS 16384

typedef struct dp_keycache dp_keycache;

/* dp_keycache_create: entries older than ttl_ms do not count.
 * Owns: *out, free with dp_keycache_destroy. */
tg_err dp_keycache_create(dp_keycache **out, int64_t ttl_ms);
void   dp_keycache_destroy(dp_keycache *c); /* NULL-safe */

/* dp_keycache_allowed records that the PDP allowed the key with hash h at
 * now_ms. */
void dp_keycache_allowed(dp_keycache *c, const uint8_t h[TG_SHA256_LEN],
                         int64_t now_ms);

/* dp_keycache_known: the PDP allowed the key within the TTL before now_ms;
 * a revoked key stops being known when its TTL runs out. */
bool dp_keycache_known(dp_keycache *c, const uint8_t h[TG_SHA256_LEN],
                       int64_t now_ms);

/* dp_keycache_forget: the PDP refused the key with hash h (revoked,
 * expired, unknown): it is not served while the PDP is away, even within
 * the TTL of an earlier allow. */
void dp_keycache_forget(dp_keycache *c, const uint8_t h[TG_SHA256_LEN]);

#endif
