/* dataplane.keycache - failing open still authenticates: only keys the
 * PDP allowed within the TTL are known, a made-up one never, and the
 * table stays bounded however many keys pass. */
#include <string.h>

#include "dp_keycache.h"
#include "tg_unit.h"

static void
hash_of(uint32_t i, uint8_t h[TG_SHA256_LEN])
{
    /* Spread like a SHA-256's bytes would be. */
    uint32_t x = i * 2654435761u + 12345;

    memset(h, 0, TG_SHA256_LEN);
    for (int k = 0; k < TG_SHA256_LEN; k++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        h[k] = (uint8_t)x;
    }
}

static void
test_known_within_ttl(void)
{
    dp_keycache *c = NULL;
    uint8_t      a[TG_SHA256_LEN];
    uint8_t      b[TG_SHA256_LEN];

    CU_ASSERT_EQUAL_FATAL(dp_keycache_create(&c, 600000), TG_OK);
    hash_of(1, a);
    hash_of(2, b);
    CU_ASSERT_FALSE(dp_keycache_known(c, a, 1000));
    dp_keycache_allowed(c, a, 1000);
    CU_ASSERT_TRUE(dp_keycache_known(c, a, 1000 + 599999));
    CU_ASSERT_FALSE(dp_keycache_known(c, a, 1000 + 600000)); /* expired */
    CU_ASSERT_FALSE(dp_keycache_known(c, b, 2000));          /* never seen */
    dp_keycache_allowed(c, a, 700000); /* seen again: the TTL restarts */
    CU_ASSERT_TRUE(dp_keycache_known(c, a, 1200000));
    dp_keycache_destroy(c);
}

static void
test_bounded(void)
{
    dp_keycache *c = NULL;
    uint8_t      h[TG_SHA256_LEN];
    uint32_t     known = 0;

    CU_ASSERT_EQUAL_FATAL(dp_keycache_create(&c, 600000), TG_OK);
    for (uint32_t i = 0; i < 4 * DP_KEYCACHE_KEYS; i++) {
        hash_of(i, h);
        dp_keycache_allowed(c, h, 1000 + i);
    }
    for (uint32_t i = 0; i < 4 * DP_KEYCACHE_KEYS; i++) {
        hash_of(i, h);
        known += dp_keycache_known(c, h, 2000 + 4 * DP_KEYCACHE_KEYS);
    }
    CU_ASSERT(known <= DP_KEYCACHE_KEYS);
    CU_ASSERT(known > DP_KEYCACHE_KEYS / 2); /* the newest mostly stay */
    /* The most recent one is always there. */
    hash_of(4 * DP_KEYCACHE_KEYS - 1, h);
    CU_ASSERT_TRUE(dp_keycache_known(c, h, 2000 + 4 * DP_KEYCACHE_KEYS));
    dp_keycache_destroy(c);
}

/* A key the PDP refused (revoked) is forgotten at once, its neighbours in
 * the same set are not. */
static void
test_forget(void)
{
    dp_keycache *c = NULL;
    uint8_t      a[TG_SHA256_LEN], b[TG_SHA256_LEN];

    CU_ASSERT_EQUAL_FATAL(dp_keycache_create(&c, 60000), TG_OK);
    hash_of(1, a);
    memcpy(b, a, TG_SHA256_LEN);
    b[TG_SHA256_LEN - 1] ^= 1; /* same set, another key */
    dp_keycache_allowed(c, a, 1000);
    dp_keycache_allowed(c, b, 1000);
    dp_keycache_forget(c, a);
    CU_ASSERT_FALSE(dp_keycache_known(c, a, 2000));
    CU_ASSERT_TRUE(dp_keycache_known(c, b, 2000));
    dp_keycache_allowed(c, a, 3000); /* allowed again (un-revoked) */
    CU_ASSERT_TRUE(dp_keycache_known(c, a, 4000));
    dp_keycache_destroy(c);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"known_within_ttl", test_known_within_ttl},
        {"bounded", test_bounded},
        {"forget", test_forget},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.keycache", cases);
}
