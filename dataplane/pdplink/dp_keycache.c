/* dp_keycache.c - DP_KEYCACHE_SHARDS shards of 4-way sets indexed by the
 * key hash's first bytes (a SHA-256: already uniform). A new key takes the
 * oldest way of its set. */
#include "dp_keycache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DP_KEYCACHE_SHARDS 16
#define DP_KEYCACHE_WAYS 4
#define DP_KEYCACHE_SETS                                                       \
    (DP_KEYCACHE_KEYS / DP_KEYCACHE_SHARDS / DP_KEYCACHE_WAYS)

typedef struct dp_keycache_entry {
    uint8_t hash[TG_SHA256_LEN];
    int64_t at_ms; /* 0: empty */
} dp_keycache_entry;

typedef struct dp_keycache_shard {
    pthread_mutex_t   mu;
    dp_keycache_entry e[DP_KEYCACHE_SETS][DP_KEYCACHE_WAYS];
} dp_keycache_shard;

struct dp_keycache {
    int64_t           ttl_ms;
    dp_keycache_shard shards[DP_KEYCACHE_SHARDS];
};

tg_err
dp_keycache_create(dp_keycache **out, int64_t ttl_ms)
{
    dp_keycache *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return TG_ENOMEM;
    }
    c->ttl_ms = ttl_ms;
    for (size_t i = 0; i < DP_KEYCACHE_SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mu, NULL);
    }
    *out = c;
    return TG_OK;
}

void
dp_keycache_destroy(dp_keycache *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < DP_KEYCACHE_SHARDS; i++) {
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    free(c);
}

static dp_keycache_entry *
dp_keycache_set(dp_keycache *c, const uint8_t h[TG_SHA256_LEN],
                dp_keycache_shard **shard)
{
    uint32_t v = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16;

    *shard = &c->shards[v % DP_KEYCACHE_SHARDS];
    return (*shard)->e[(v / DP_KEYCACHE_SHARDS) % DP_KEYCACHE_SETS];
}

void
dp_keycache_allowed(dp_keycache *c, const uint8_t h[TG_SHA256_LEN],
                    int64_t now_ms)
{
    dp_keycache_shard *s;
    dp_keycache_entry *set = dp_keycache_set(c, h, &s);
    dp_keycache_entry *use = &set[0];

    pthread_mutex_lock(&s->mu);
    for (int w = 0; w < DP_KEYCACHE_WAYS; w++) {
        if (set[w].at_ms != 0 && memcmp(set[w].hash, h, TG_SHA256_LEN) == 0) {
            use = &set[w];
            break;
        }
        if (set[w].at_ms < use->at_ms) {
            use = &set[w]; /* the oldest (or an empty one) */
        }
    }
    memcpy(use->hash, h, TG_SHA256_LEN);
    use->at_ms = now_ms > 0 ? now_ms : 1;
    pthread_mutex_unlock(&s->mu);
}

bool
dp_keycache_known(dp_keycache *c, const uint8_t h[TG_SHA256_LEN],
                  int64_t now_ms)
{
    dp_keycache_shard *s;
    dp_keycache_entry *set = dp_keycache_set(c, h, &s);
    bool               known = false;

    pthread_mutex_lock(&s->mu);
    for (int w = 0; w < DP_KEYCACHE_WAYS && !known; w++) {
        known = set[w].at_ms != 0 &&
                memcmp(set[w].hash, h, TG_SHA256_LEN) == 0 &&
                now_ms - set[w].at_ms < c->ttl_ms;
    }
    pthread_mutex_unlock(&s->mu);
    return known;
}

void
dp_keycache_forget(dp_keycache *c, const uint8_t h[TG_SHA256_LEN])
{
    dp_keycache_shard *s;
    dp_keycache_entry *set = dp_keycache_set(c, h, &s);

    pthread_mutex_lock(&s->mu);
    for (int w = 0; w < DP_KEYCACHE_WAYS; w++) {
        if (set[w].at_ms != 0 && memcmp(set[w].hash, h, TG_SHA256_LEN) == 0) {
            set[w].at_ms = 0;
        }
    }
    pthread_mutex_unlock(&s->mu);
}
