/* common.hash - the digests keys are stored under and the tokens they are
 * made of: a wrong SHA-256 locks every key out, a short token is
 * guessable, a comparison that exits early leaks a key byte by byte. */
#include <stdint.h>
#include <string.h>

#include "tg_hash.h"
#include "tg_unit.h"

static void
test_sha256_vectors(void)
{
    /* FIPS 180-2 test vectors. */
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        {"",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    uint8_t d[TG_SHA256_LEN];
    char    hex[2 * TG_SHA256_LEN + 1];

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        tg_sha256(v[i].in, strlen(v[i].in), d);
        tg_hex(d, sizeof(d), hex);
        CU_ASSERT_STRING_EQUAL(hex, v[i].hex);
    }
}

static void
test_hex(void)
{
    static const uint8_t in[] = {0x00, 0x0f, 0xa5, 0xff};
    char                 out[9];

    memset(out, 'x', sizeof(out));
    tg_hex(in, sizeof(in), out);
    CU_ASSERT_STRING_EQUAL(out, "000fa5ff");
    tg_hex(in, 0, out);
    CU_ASSERT_STRING_EQUAL(out, "");
}

static void
test_fnv1a(void)
{
    /* The published 64-bit FNV-1a values of "" and "a", and continuing a
     * hash over two pieces equals hashing them whole. */
    CU_ASSERT_EQUAL(tg_fnv1a(TG_FNV_BASIS, "", 0), 0xcbf29ce484222325ull);
    CU_ASSERT_EQUAL(tg_fnv1a(TG_FNV_BASIS, "a", 1), 0xaf63dc4c8601ec8cull);
    CU_ASSERT_EQUAL(tg_fnv1a(tg_fnv1a(TG_FNV_BASIS, "tenant", 6), "-a", 2),
                    tg_fnv1a(TG_FNV_BASIS, "tenant-a", 8));
    CU_ASSERT_NOT_EQUAL(tg_fnv1a(TG_FNV_BASIS, "ab", 2),
                        tg_fnv1a(TG_FNV_BASIS, "ba", 2));
}

static void
test_random_token(void)
{
    char a[65];
    char b[65];

    CU_ASSERT_EQUAL_FATAL(tg_random_token(a, 32), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_random_token(b, 32), TG_OK);
    CU_ASSERT_EQUAL(strlen(a), 64);
    CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), 64);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

static void
test_ct_equal(void)
{
    CU_ASSERT_TRUE(tg_ct_equal("secret", "secret", 6));
    CU_ASSERT_FALSE(tg_ct_equal("secret", "secreT", 6));
    CU_ASSERT_FALSE(tg_ct_equal("Secret", "secret", 6));
    CU_ASSERT_TRUE(tg_ct_equal("a", "b", 0));
}

static const tg_unit_case cases[] = {
    {"sha256_vectors", test_sha256_vectors},
    {"hex", test_hex},
    {"fnv1a", test_fnv1a},
    {"random_token", test_random_token},
    {"ct_equal", test_ct_equal},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("common.hash", cases);
}
