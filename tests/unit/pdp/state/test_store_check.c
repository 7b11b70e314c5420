/* test_store_check.c - pdp.store_check: a truncated state directory is
 * refused by pdp_store_open with a message naming the file (every command
 * and serve open the state that way), and pdp_store_check reads every
 * record, decodes it with the store's readers and names what does not
 * decode, by a key id, never by a hash of a secret. */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pdp_store.h"
#include "tg_hash.h"
#include "tg_unit.h"

#define NKEYS 3

typedef struct checked {
    int      nbad;
    char     bad_db[4][32];
    char     bad_key[4][256];
    tg_err   bad_rv[4];
    int      ndbs;
    int      damaged;
    uint64_t keys; /* records in "keys" */
    bool     keys_decoded;
} checked;

static void
on_bad(void *arg, const pdp_store_check_bad *b)
{
    checked *c = arg;

    if (c->nbad < 4) {
        snprintf(c->bad_db[c->nbad], sizeof(c->bad_db[0]), "%s", b->db);
        snprintf(c->bad_key[c->nbad], sizeof(c->bad_key[0]), "%s", b->key);
        c->bad_rv[c->nbad] = b->rv;
    }
    c->nbad++;
}

static void
on_db(void *arg, const pdp_store_check_db *d)
{
    checked *c = arg;

    c->ndbs++;
    c->damaged += d->damaged ? 1 : 0;
    if (strcmp(d->name, "keys") == 0) {
        c->keys         = d->records;
        c->keys_decoded = d->decoded;
    }
}

/* make_state writes a state directory with NKEYS keys of one tenant; the
 * hash of key i is {i+1, i+1, ...}. */
static const char *
make_state(pdp_key keys[NKEYS])
{
    static char       dir[512];
    pdp_store        *st = NULL;
    pdp_tenant_change tc;
    char              err[512];

    snprintf(dir, sizeof(dir), "%s/state", tg_unit_tmpdir("store-check"));
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, dir, 4, err, sizeof(err)), TG_OK);
    memset(&tc, 0, sizeof(tc));
    tc.id     = "acme";
    tc.now_ms = 1;
    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(st, &tc, NULL, NULL), TG_OK);
    for (int i = 0; i < NKEYS; i++) {
        uint8_t hash[TG_SHA256_LEN];
        memset(hash, i + 1, sizeof(hash));
        memset(&keys[i], 0, sizeof(keys[i]));
        snprintf(keys[i].id, sizeof(keys[i].id), "key_%016d", i);
        snprintf(keys[i].tenant, sizeof(keys[i].tenant), "acme");
        keys[i].status     = PDP_KEY_ACTIVE;
        keys[i].created_ms = 1;
        CU_ASSERT_EQUAL_FATAL(pdp_store_key_put(st, hash, &keys[i]), TG_OK);
    }
    pdp_store_close(st);
    return dir;
}

/* raw_put writes one record into database db behind the store's back. */
static void
raw_put(const char *dir, const char *db, const void *k, size_t klen,
        const void *v, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi  dbi;
    MDB_val  mk = {klen, (void *)k};
    MDB_val  mv = {vlen, (void *)v};

    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    mdb_env_set_maxreaders(env, 4096);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, dir, 0, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_put(txn, dbi, &mk, &mv, 0), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_sound_state_checks_ok(void)
{
    pdp_key     keys[NKEYS];
    const char *dir = make_state(keys);
    checked     c;
    char        err[1024] = "";

    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(pdp_store_check(dir, on_bad, on_db, &c, err, sizeof(err)),
                    TG_OK);
    CU_ASSERT_EQUAL(c.nbad, 0);
    CU_ASSERT_EQUAL(c.damaged, 0);
    CU_ASSERT(c.ndbs >= 12);
    CU_ASSERT_EQUAL(c.keys, NKEYS);
    CU_ASSERT(c.keys_decoded);
}

static void
test_bad_records_named_without_secrets(void)
{
    pdp_key     keys[NKEYS];
    const char *dir = make_state(keys);
    uint8_t     hash[TG_SHA256_LEN];
    uint8_t     junk[3] = {3, 0xff, 0xff}; /* a version, then too little */
    checked     c;
    char        err[1024] = "";
    char        hex[2 * TG_SHA256_LEN + 1];

    /* Key 1's record cut short; a usage record with a bad id byte; a
     * token record that does not decode. */
    memset(hash, 2, sizeof(hash));
    raw_put(dir, "keys", hash, sizeof(hash), junk, 2);
    raw_put(dir, "usage", "req\x01id", 6, "\x01", 1);
    memset(hash, 0x42, sizeof(hash));
    raw_put(dir, "admin_tokens", hash, sizeof(hash), junk, sizeof(junk));
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(pdp_store_check(dir, on_bad, on_db, &c, err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_EQUAL_FATAL(c.nbad, 3);
    CU_ASSERT_EQUAL(c.damaged, 0); /* pages are fine; records are not */
    /* Database name order: admin_tokens, keys, usage. */
    CU_ASSERT_STRING_EQUAL(c.bad_db[0], "admin_tokens");
    CU_ASSERT_STRING_EQUAL(c.bad_key[0], "a token hash (not shown)");
    CU_ASSERT_STRING_EQUAL(c.bad_db[1], "keys");
    CU_ASSERT_STRING_EQUAL(c.bad_key[1], "key id key_0000000000000001");
    CU_ASSERT_STRING_EQUAL(c.bad_db[2], "usage");
    CU_ASSERT_STRING_EQUAL(c.bad_key[2], "req\\x01id");
    for (int i = 0; i < 3; i++) {
        memset(hash, i == 0 ? 0x42 : 2, sizeof(hash));
        tg_hex(hash, sizeof(hash), hex);
        hex[16] = '\0'; /* not even a prefix of the hash */
        CU_ASSERT_PTR_NULL(strstr(c.bad_key[i], hex));
    }
    CU_ASSERT_EQUAL(c.keys, NKEYS);
}

static void
test_truncated_state_refused_at_open(void)
{
    pdp_key     keys[NKEYS];
    const char *dir = make_state(keys);
    char        path[600];
    char        err[1024] = "";
    pdp_store  *st        = NULL;
    struct stat sb;
    off_t       half;
    checked     c;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    half = sb.st_size / 2;
    CU_ASSERT_EQUAL_FATAL(truncate(path, half), 0);
    CU_ASSERT_EQUAL(pdp_store_open(&st, dir, 4, err, sizeof(err)), TG_ECORRUPT);
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate-pdp state check"));
    /* Refusing must not have written to it. */
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, half);
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(pdp_store_check(dir, on_bad, on_db, &c, err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_EQUAL(c.ndbs, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));
}

static const tg_unit_case cases[] = {
    {"sound_state_checks_ok", test_sound_state_checks_ok},
    {"bad_records_named_without_secrets",
     test_bad_records_named_without_secrets},
    {"truncated_state_refused_at_open", test_truncated_state_refused_at_open},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.store_check", cases);
}
