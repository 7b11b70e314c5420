/* test_store.c - pdp.store: what survives on disk, schema versioning, keys
 * (with labels, and as older releases wrote them), tenants, the policy
 * history, and the usage rules users rely on (an acked report is counted
 * once). */
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pdp_store.h"
#include "pdp_store_int.h" /* st->env, to count transactions */
#include "tg_gen.h"
#include "tg_hash.h"
#include "tg_time.h"
#include "tg_unit.h"

static pdp_key g_key;
static pdp_key g_got;

static pdp_store *
open_store(const char *dir, int64_t mb)
{
    pdp_store *st = NULL;
    char       err[512];

    if (pdp_store_open(&st, dir, mb, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "open: %s\n", err);
    }
    return st;
}

/* raw_meta reads or writes meta.schema_version behind the store's back. */
static int
raw_meta(const char *dir, const char *set, char *got, size_t gotlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi  dbi;
    MDB_val  k = {14, "schema_version"};
    MDB_val  v;
    int      rc;

    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_maxreaders(env, 4096);
    if ((rc = mdb_env_open(env, dir, 0, 0600)) != 0) {
        mdb_env_close(env);
        return rc;
    }
    mdb_txn_begin(env, NULL, 0, &txn);
    if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) == 0) {
        if (set != NULL) {
            v.mv_size = strlen(set);
            v.mv_data = (void *)set;
            rc        = mdb_put(txn, dbi, &k, &v, 0);
        } else if ((rc = mdb_get(txn, dbi, &k, &v)) == 0) {
            snprintf(got, gotlen, "%.*s", (int)v.mv_size, (char *)v.mv_data);
        }
    }
    rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    mdb_env_close(env);
    return rc;
}

static void
test_schema_version_written(void)
{
    char        dir[600];
    char        got[32] = "";
    struct stat sb;
    pdp_store  *st;

    snprintf(dir, sizeof(dir), "%s/a/b/state", tg_unit_tmpdir("store"));
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_close(st);
    CU_ASSERT_EQUAL_FATAL(stat(dir, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0700); /* state is private */
    CU_ASSERT_EQUAL(raw_meta(dir, NULL, got, sizeof(got)), 0);
    CU_ASSERT_STRING_EQUAL(got, "4");
}

static void
test_newer_schema_refused(void)
{
    const char *dir      = tg_unit_tmpdir("store");
    pdp_store  *st       = open_store(dir, 4);
    char        err[512] = "";

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_close(st);
    CU_ASSERT_EQUAL_FATAL(raw_meta(dir, "5", NULL, 0), 0);
    st = NULL;
    CU_ASSERT_EQUAL(pdp_store_open(&st, dir, 4, err, sizeof(err)), TG_EVERSION);
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer tollgate-pdp"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "schema version 5"));
    /* Refusing must not rewrite what the newer build left. */
    CU_ASSERT_EQUAL(raw_meta(dir, NULL, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(err, "5");
}

/* raw_put writes one record into database db behind the store's back. */
static int
raw_put(const char *dir, const char *db, const void *k, size_t klen,
        const void *v, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi  dbi;
    MDB_val  mk = {klen, (void *)k};
    MDB_val  mv = {vlen, (void *)v};
    int      rc;

    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_maxreaders(env, 4096);
    if ((rc = mdb_env_open(env, dir, 0, 0600)) != 0) {
        mdb_env_close(env);
        return rc;
    }
    mdb_txn_begin(env, NULL, 0, &txn);
    if ((rc = mdb_dbi_open(txn, db, MDB_CREATE, &dbi)) == 0) {
        rc = mdb_put(txn, dbi, &mk, &mv, 0);
    }
    rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    mdb_env_close(env);
    return rc;
}

static size_t
rec_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);

    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    memcpy(p + 2, s, n);
    return n + 2;
}

/* A directory as release 0.1 (schema 1) left it: a key record of version 1
 * (no labels) must still authenticate, list and revoke after the upgrade. */
static void
test_schema1_upgraded_and_v1_keys_readable(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    uint8_t           hash[TG_SHA256_LEN];
    uint8_t           rec[256];
    size_t            n       = 0;
    int64_t           created = 1600000000000;
    char              got[32] = "";

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_close(st);
    CU_ASSERT_EQUAL_FATAL(raw_meta(dir, "1", NULL, 0), 0);
    tg_sha256("sk-old", 6, hash);
    rec[n++] = 1; /* record version */
    rec[n++] = PDP_KEY_ACTIVE;
    for (int i = 0; i < 8; i++) {
        rec[n++] = (uint8_t)(created >> (8 * i));
    }
    memset(rec + n, 0, 8); /* revoked_ms */
    n += 8;
    n += rec_str(rec + n, "key_v1");
    n += rec_str(rec + n, "legacy");
    n += rec_str(rec + n, "from 0.1");
    rec[n++] = 1; /* one model */
    rec[n++] = 0;
    n += rec_str(rec + n, "gpt-4o");
    CU_ASSERT_EQUAL_FATAL(raw_put(dir, "keys", hash, sizeof(hash), rec, n), 0);
    CU_ASSERT_EQUAL_FATAL(
        raw_put(dir, "key_ids", "key_v1", 6, hash, sizeof(hash)), 0);

    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(raw_meta(dir, NULL, got, sizeof(got)), 0);
    CU_ASSERT_STRING_EQUAL(got, "4");
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    memset(&g_got, 0x5a, sizeof(g_got)); /* labels must be cleared */
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, hash, &g_got), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_got.id, "key_v1");
    CU_ASSERT_STRING_EQUAL(g_got.tenant, "legacy");
    CU_ASSERT_STRING_EQUAL(g_got.name, "from 0.1");
    CU_ASSERT_EQUAL(g_got.n_models, 1);
    CU_ASSERT_STRING_EQUAL(g_got.models[0], "gpt-4o");
    CU_ASSERT_EQUAL(g_got.created_ms, created);
    CU_ASSERT_EQUAL(g_got.n_labels, 0);
    CU_ASSERT_EQUAL(g_got.expires_ms, 0); /* never */
    CU_ASSERT_EQUAL(g_got.rotated_ms, 0);
    CU_ASSERT_FALSE(g_got.superseded);
    pdp_store_read_end(rd);
    /* Revoking rewrites it as the newest version without losing anything. */
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_v1", created + 5), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get_by_id(rd, "key_v1", &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.status, PDP_KEY_REVOKED);
    CU_ASSERT_STRING_EQUAL(g_got.models[0], "gpt-4o");
    CU_ASSERT_EQUAL(g_got.created_ms, created);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

static void
make_key(pdp_key *k, const char *id, const char *tenant, const char *model)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", id);
    snprintf(k->tenant, sizeof(k->tenant), "%s", tenant);
    snprintf(k->name, sizeof(k->name), "name of %s", id);
    if (model != NULL) {
        snprintf(k->models[0], sizeof(k->models[0]), "%s", model);
        k->n_models = 1;
    }
    k->status     = PDP_KEY_ACTIVE;
    k->created_ms = 1700000000000;
}

static void
test_key_create_lookup_revoke(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    uint8_t           hash[TG_SHA256_LEN];
    uint8_t           other[TG_SHA256_LEN];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    tg_sha256("sk-tg-one", 9, hash);
    tg_sha256("sk-tg-two", 9, other);
    make_key(&g_key, "key_one", "acme", "gpt-4o");
    CU_ASSERT_EQUAL(pdp_store_key_put(st, hash, &g_key), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_put(st, hash, &g_key), TG_EEXIST);
    CU_ASSERT_EQUAL(pdp_store_key_put(st, other, &g_key), TG_EEXIST); /* id */
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, hash, &g_got), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_got.id, "key_one");
    CU_ASSERT_STRING_EQUAL(g_got.tenant, "acme");
    CU_ASSERT_STRING_EQUAL(g_got.name, "name of key_one");
    CU_ASSERT_EQUAL(g_got.n_models, 1);
    CU_ASSERT_STRING_EQUAL(g_got.models[0], "gpt-4o");
    CU_ASSERT_EQUAL(g_got.status, PDP_KEY_ACTIVE);
    CU_ASSERT_EQUAL(g_got.created_ms, 1700000000000);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, other, &g_got), TG_ENOTFOUND);
    pdp_store_read_end(rd);

    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_one", 1700000001000), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_one", 1700000002000),
                    TG_EEXIST);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_nope", 1), TG_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get_by_id(rd, "key_one", &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.status, PDP_KEY_REVOKED);
    CU_ASSERT_EQUAL(g_got.revoked_ms, 1700000001000);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

static void
test_key_labels_round_trip(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    uint8_t           hash[TG_SHA256_LEN];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    tg_sha256("sk-labels", 9, hash);
    make_key(&g_key, "key_l", "acme", NULL);
    for (uint32_t i = 0; i < PDP_LABELS_MAX; i++) {
        snprintf(g_key.labels[i].key, sizeof(g_key.labels[i].key), "k%u", i);
        snprintf(g_key.labels[i].value, sizeof(g_key.labels[i].value),
                 "value %u", i);
    }
    g_key.n_labels = PDP_LABELS_MAX;
    CU_ASSERT_EQUAL(pdp_store_key_put(st, hash, &g_key), TG_OK);
    pdp_store_close(st);
    st = open_store(dir, 4); /* on disk, not in a cache */
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, hash, &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.n_labels, PDP_LABELS_MAX);
    CU_ASSERT_STRING_EQUAL(g_got.labels[15].key, "k15");
    CU_ASSERT_STRING_EQUAL(g_got.labels[15].value, "value 15");
    CU_ASSERT_EQUAL(g_got.n_models, 0);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    g_key.n_labels = PDP_LABELS_MAX + 1;
    snprintf(g_key.id, sizeof(g_key.id), "key_too_many");
    tg_sha256("sk-labels-2", 11, hash);
    CU_ASSERT_EQUAL(pdp_store_key_put(st, hash, &g_key), TG_EINVAL);
    pdp_store_close(st);
}

/* A version-2 record (labels, no expiry or rotation), as schema 2 wrote
 * it, reads as a key that never expires and was never rotated; rotating
 * it works. */
static void
test_v2_key_readable_and_rotatable(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    uint8_t           hash[TG_SHA256_LEN];
    uint8_t           nh[TG_SHA256_LEN];
    uint8_t           rec[256];
    size_t            n = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_close(st);
    CU_ASSERT_EQUAL_FATAL(raw_meta(dir, "2", NULL, 0), 0);
    tg_sha256("sk-v2", 5, hash);
    rec[n++] = 2;
    rec[n++] = PDP_KEY_ACTIVE;
    memset(rec + n, 0, 16); /* created_ms 0, revoked_ms 0 */
    rec[n] = 7;
    n += 16;
    n += rec_str(rec + n, "key_v2");
    n += rec_str(rec + n, "acme");
    n += rec_str(rec + n, "");
    rec[n++] = 0; /* no models */
    rec[n++] = 0;
    rec[n++] = 1; /* one label */
    rec[n++] = 0;
    n += rec_str(rec + n, "env");
    n += rec_str(rec + n, "ci");
    CU_ASSERT_EQUAL_FATAL(raw_put(dir, "keys", hash, sizeof(hash), rec, n), 0);
    CU_ASSERT_EQUAL_FATAL(
        raw_put(dir, "key_ids", "key_v2", 6, hash, sizeof(hash)), 0);
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, hash, &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.created_ms, 7);
    CU_ASSERT_EQUAL(g_got.n_labels, 1);
    CU_ASSERT_STRING_EQUAL(g_got.labels[0].value, "ci");
    CU_ASSERT_EQUAL(g_got.expires_ms, 0);
    CU_ASSERT_EQUAL(pdp_key_state_at(&g_got, INT64_MAX / 2),
                    PDP_KEY_STATE_ACTIVE);
    pdp_store_read_end(rd);
    tg_sha256("sk-v2-new", 9, nh);
    CU_ASSERT_EQUAL(pdp_store_key_rotate(st, "key_v2", nh, 1000, 500, NULL),
                    TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, nh, &g_got), TG_OK);
    CU_ASSERT_STRING_EQUAL(g_got.labels[0].value, "ci");
    CU_ASSERT_EQUAL(g_got.created_ms, 7);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

static int g_keys_listed;

static void
key_count_cb(void *arg, const pdp_key *k)
{
    (void)arg;
    g_keys_listed += strcmp(k->id, "key_r") == 0 ? 1 : 0;
}

/* Expiry and rotation survive a reopen; rotation keeps the id, the old
 * secret is superseded with its grace end, key_ids moves, list shows the
 * id once, and revoke reaches every secret. */
static void
test_key_expiry_and_rotation_round_trip(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    uint8_t           h1[TG_SHA256_LEN];
    uint8_t           h2[TG_SHA256_LEN];
    uint8_t           h3[TG_SHA256_LEN];
    pdp_key           cur;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    tg_sha256("sk-r1", 5, h1);
    tg_sha256("sk-r2", 5, h2);
    tg_sha256("sk-r3", 5, h3);
    make_key(&g_key, "key_r", "acme", "gpt-4o");
    g_key.expires_ms = 1800000000000;
    CU_ASSERT_EQUAL(pdp_store_key_put(st, h1, &g_key), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_rotate(st, "key_nope", h2, 1, 1, NULL),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(
        pdp_store_key_rotate(st, "key_r", h1, 1700000001000, 60000, NULL),
        TG_EEXIST); /* the new hash is already stored */
    CU_ASSERT_EQUAL(
        pdp_store_key_rotate(st, "key_r", h2, 1700000001000, 60000, &cur),
        TG_OK);
    CU_ASSERT_EQUAL(cur.rotated_ms, 1700000001000);
    CU_ASSERT_EQUAL(cur.grace_until_ms, 1700000061000);
    CU_ASSERT_FALSE(cur.superseded);
    pdp_store_close(st);
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h1, &g_got), TG_OK);
    CU_ASSERT_TRUE(g_got.superseded);
    CU_ASSERT_STRING_EQUAL(g_got.id, "key_r");
    CU_ASSERT_EQUAL(g_got.grace_until_ms, 1700000061000);
    CU_ASSERT_EQUAL(g_got.expires_ms, 1800000000000);
    CU_ASSERT_EQUAL(pdp_key_state_at(&g_got, 1700000060999),
                    PDP_KEY_STATE_ACTIVE);
    CU_ASSERT_EQUAL(pdp_key_state_at(&g_got, 1700000061000),
                    PDP_KEY_STATE_ROTATED);
    CU_ASSERT_EQUAL(pdp_store_key_get_by_id(rd, "key_r", &g_got), TG_OK);
    CU_ASSERT_FALSE(g_got.superseded);
    CU_ASSERT_STRING_EQUAL(g_got.models[0], "gpt-4o");
    CU_ASSERT_EQUAL(g_got.expires_ms, 1800000000000);
    CU_ASSERT_EQUAL(g_got.created_ms, 1700000000000);
    CU_ASSERT_EQUAL(pdp_key_state_at(&g_got, 1800000000000),
                    PDP_KEY_STATE_EXPIRED);
    pdp_store_read_end(rd);
    /* A second rotation inside the grace: three secrets, one id. */
    CU_ASSERT_EQUAL(
        pdp_store_key_rotate(st, "key_r", h3, 1700000002000, 60000, NULL),
        TG_OK);
    g_keys_listed = 0;
    CU_ASSERT_EQUAL(pdp_store_key_list(st, key_count_cb, NULL), TG_OK);
    CU_ASSERT_EQUAL(g_keys_listed, 1);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_r", 1700000003000), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h1, &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.status, PDP_KEY_REVOKED);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h2, &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.status, PDP_KEY_REVOKED);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h3, &g_got), TG_OK);
    CU_ASSERT_EQUAL(g_got.status, PDP_KEY_REVOKED);
    pdp_store_read_end(rd);
    /* A revoked key cannot be rotated; out says why. */
    tg_sha256("sk-r4", 5, h1);
    CU_ASSERT_EQUAL(
        pdp_store_key_rotate(st, "key_r", h1, 1700000004000, 0, &cur),
        TG_EINVAL);
    CU_ASSERT_EQUAL(cur.status, PDP_KEY_REVOKED);
    /* Nor an expired one. */
    make_key(&g_key, "key_x", "acme", NULL);
    g_key.expires_ms = 1700000000500;
    tg_sha256("sk-x1", 5, h2);
    CU_ASSERT_EQUAL(pdp_store_key_put(st, h2, &g_key), TG_OK);
    CU_ASSERT_EQUAL(
        pdp_store_key_rotate(st, "key_x", h1, 1700000000500, 0, &cur),
        TG_EINVAL);
    CU_ASSERT_EQUAL(pdp_key_state_at(&cur, 1700000000500),
                    PDP_KEY_STATE_EXPIRED);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

static int g_tenants_seen;

static void
tenant_cb(void *arg, const pdp_tenant *t)
{
    (void)arg;
    g_tenants_seen += strcmp(t->id, "acme") == 0 ? 1 : 100;
}

static void
test_tenants_set_merge_and_list(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    pdp_tenant        t;
    tg_kv             l[3];
    bool              created = false;
    pdp_tenant_change c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(l, 0, sizeof(l));
    snprintf(l[0].key, sizeof(l[0].key), "region");
    snprintf(l[0].value, sizeof(l[0].value), "eu");
    snprintf(l[1].key, sizeof(l[1].key), "team");
    snprintf(l[1].value, sizeof(l[1].value), "search");
    c = (pdp_tenant_change){"acme", "free", l, 2, 1000, NULL};
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, &t, &created), TG_OK);
    CU_ASSERT_TRUE(created);
    CU_ASSERT_STRING_EQUAL(t.tier, "free");
    CU_ASSERT_EQUAL(t.n_labels, 2);

    /* A second change keeps what it does not name, and "" removes. */
    snprintf(l[0].value, sizeof(l[0].value), "us");
    l[1].value[0] = '\0';
    c             = (pdp_tenant_change){"acme", NULL, l, 2, 2000, NULL};
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, &t, &created), TG_OK);
    CU_ASSERT_FALSE(created);
    CU_ASSERT_EQUAL(t.created_ms, 1000);
    CU_ASSERT_EQUAL(t.updated_ms, 2000);

    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    memset(&t, 0, sizeof(t));
    CU_ASSERT_EQUAL(pdp_store_tenant_get(rd, "acme", &t), TG_OK);
    CU_ASSERT_STRING_EQUAL(t.id, "acme");
    CU_ASSERT_STRING_EQUAL(t.tier, "free");
    CU_ASSERT_EQUAL(t.n_labels, 1);
    CU_ASSERT_STRING_EQUAL(t.labels[0].key, "region");
    CU_ASSERT_STRING_EQUAL(t.labels[0].value, "us");
    CU_ASSERT_EQUAL(pdp_store_tenant_get(rd, "nobody", &t), TG_ENOTFOUND);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);

    /* Clearing the tier; the 17th label is refused and nothing changes. */
    c = (pdp_tenant_change){"acme", "", NULL, 0, 3000, NULL};
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, &t, NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(t.tier, "");
    {
        tg_kv many[PDP_LABELS_MAX];
        memset(many, 0, sizeof(many));
        for (int i = 0; i < PDP_LABELS_MAX; i++) {
            snprintf(many[i].key, sizeof(many[i].key), "n%d", i);
            snprintf(many[i].value, sizeof(many[i].value), "v");
        }
        c = (pdp_tenant_change){"acme", "pro", many, PDP_LABELS_MAX, 4000, NULL};
        CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, &t, NULL), TG_ETOOBIG);
    }
    c = (pdp_tenant_change){"acme", NULL, NULL, 0, 5000, NULL};
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, &t, NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(t.tier, ""); /* not "pro": that write failed */
    CU_ASSERT_EQUAL(t.n_labels, 1);
    g_tenants_seen = 0;
    CU_ASSERT_EQUAL(pdp_store_tenant_list(st, tenant_cb, NULL), TG_OK);
    CU_ASSERT_EQUAL(g_tenants_seen, 1);
    c = (pdp_tenant_change){"", NULL, NULL, 0, 1, NULL};
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, NULL, NULL), TG_EINVAL);
    pdp_store_close(st);
}

typedef struct history_seen {
    uint64_t revs[8];
    int      n;
} history_seen;

static void
history_cb(void *arg, const pdp_activation *a)
{
    history_seen *h = arg;

    if (h->n < 8) {
        h->revs[h->n++] = a->revision;
    }
}

static void
test_history_newest_first(void)
{
    const char    *dir = tg_unit_tmpdir("store");
    pdp_store     *st  = open_store(dir, 4);
    pdp_activation a;
    history_seen   h;
    /* 3 then 2 (a rollback) then 5: order is activation order, not
     * revision order. 300 activations check the big-endian key. */
    static const uint64_t revs[] = {3, 2, 5};

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_history_last(st, &a), TG_ENOTFOUND);
    for (int i = 0; i < 300; i++) {
        memset(&a, 0, sizeof(a));
        a.revision     = i < 297 ? 1 : revs[i - 297];
        a.activated_ms = 1000 + i;
        a.how      = i == 298 ? PDP_ACTIVATION_COMMAND : PDP_ACTIVATION_WATCH;
        a.rollback = i == 298;
        snprintf(a.name, sizeof(a.name), "b");
        snprintf(a.hash, sizeof(a.hash), "%064d", i);
        CU_ASSERT_EQUAL(pdp_store_history_add(st, &a), TG_OK);
        CU_ASSERT_EQUAL(a.seq, (uint64_t)i + 1);
    }
    pdp_store_close(st);
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(&h, 0, sizeof(h));
    CU_ASSERT_EQUAL(pdp_store_history_list(st, history_cb, &h), TG_OK);
    CU_ASSERT_EQUAL(h.n, 8);
    CU_ASSERT_EQUAL(h.revs[0], 5);
    CU_ASSERT_EQUAL(h.revs[1], 2);
    CU_ASSERT_EQUAL(h.revs[2], 3);
    CU_ASSERT_EQUAL(h.revs[3], 1);
    CU_ASSERT_EQUAL(pdp_store_history_last(st, &a), TG_OK);
    CU_ASSERT_EQUAL(a.seq, 300);
    CU_ASSERT_EQUAL(a.revision, 5);
    CU_ASSERT_EQUAL(a.activated_ms, 1299);
    CU_ASSERT_EQUAL(a.how, PDP_ACTIVATION_WATCH);
    pdp_store_close(st);
}

static void
make_usage(tg_usage *u, const char *rid, const char *key, const char *tenant,
           int64_t prompt, int64_t completion)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", rid);
    snprintf(u->key_id, sizeof(u->key_id), "%s", key);
    snprintf(u->tenant_id, sizeof(u->tenant_id), "%s", tenant);
    snprintf(u->model, sizeof(u->model), "gpt-4o-mini");
    u->prompt_tokens     = prompt;
    u->completion_tokens = completion;
    u->status            = 200;
}

static void
test_usage_idempotent(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    tg_usage          u;
    tg_usage_ack      ack;
    pdp_totals        t;
    pdp_usage_rec     rec;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    make_usage(&u, "req-1", "key_a", "acme", 1000, 500);
    CU_ASSERT_EQUAL_FATAL(pdp_store_usage_settle(st, &u, 435, &ack), TG_OK);
    CU_ASSERT_FALSE(ack.duplicate);
    CU_ASSERT_EQUAL(ack.cost_micro_usd, 435);
    CU_ASSERT_STRING_EQUAL(ack.request_id, "req-1");
    /* The retry carries a different cost; the first settlement stands. */
    CU_ASSERT_EQUAL_FATAL(pdp_store_usage_settle(st, &u, 999, &ack), TG_OK);
    CU_ASSERT_TRUE(ack.duplicate);
    CU_ASSERT_EQUAL(ack.cost_micro_usd, 435);

    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_totals_get(rd, PDP_TOTALS_KEY, "key_a", &t),
                    TG_OK);
    CU_ASSERT_EQUAL(t.requests, 1);
    CU_ASSERT_EQUAL(t.prompt_tokens, 1000);
    CU_ASSERT_EQUAL(t.completion_tokens, 500);
    CU_ASSERT_EQUAL(t.cost_micro_usd, 435);
    CU_ASSERT_EQUAL(pdp_store_usage_get(rd, "req-1", &rec), TG_OK);
    CU_ASSERT_STRING_EQUAL(rec.usage.key_id, "key_a");
    CU_ASSERT_STRING_EQUAL(rec.usage.model, "gpt-4o-mini");
    CU_ASSERT_EQUAL(rec.cost_micro_usd, 435);
    CU_ASSERT(rec.settled_ms > 0);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

typedef struct counter {
    atomic_int done;
    atomic_int ok;
    atomic_int dups;
} counter;

static void
count_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    counter *c = arg;

    if (rv == TG_OK) {
        atomic_fetch_add(&c->ok, 1);
        if (ack->duplicate) {
            atomic_fetch_add(&c->dups, 1);
        }
    }
    atomic_fetch_add(&c->done, 1);
}

static void
wait_done(counter *c, int n)
{
    for (int i = 0; i < 60000 && atomic_load(&c->done) < n; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void
test_same_id_in_one_batch(void)
{
    const char *dir = tg_unit_tmpdir("store");
    pdp_store  *st  = open_store(dir, 4);
    counter     c;
    tg_usage    u;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    atomic_init(&c.done, 0);
    atomic_init(&c.ok, 0);
    atomic_init(&c.dups, 0);
    make_usage(&u, "req-dup", "key_a", "acme", 10, 10);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(pdp_store_usage_submit(st, &u, 7, count_cb, &c), TG_OK);
    }
    wait_done(&c, 5);
    CU_ASSERT_EQUAL(atomic_load(&c.ok), 5);
    CU_ASSERT_EQUAL(atomic_load(&c.dups), 4);
    pdp_store_close(st);
}

typedef struct totals_seen {
    int        keys;
    int        tenants;
    pdp_totals acme;
} totals_seen;

static void
totals_cb(void *arg, pdp_totals_kind kind, const char *id, const pdp_totals *t)
{
    totals_seen *s = arg;

    if (kind == PDP_TOTALS_KEY) {
        s->keys++;
    } else {
        s->tenants++;
        if (strcmp(id, "acme") == 0) {
            s->acme = *t;
        }
    }
}

static void
test_totals_per_key_and_tenant_survive_reopen(void)
{
    const char  *dir = tg_unit_tmpdir("store");
    pdp_store   *st  = open_store(dir, 4);
    tg_usage     u;
    tg_usage_ack ack;
    totals_seen  s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    make_usage(&u, "r1", "key_a", "acme", 100, 10);
    pdp_store_usage_settle(st, &u, 5, &ack);
    make_usage(&u, "r2", "key_b", "acme", 200, 20);
    pdp_store_usage_settle(st, &u, 7, &ack);
    make_usage(&u, "r3", "key_c", "beta", 300, 30);
    pdp_store_usage_settle(st, &u, 11, &ack);
    pdp_store_close(st);

    st = open_store(dir, 4); /* acked means on disk */
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(pdp_store_totals_list(st, totals_cb, &s), TG_OK);
    CU_ASSERT_EQUAL(s.keys, 3);
    CU_ASSERT_EQUAL(s.tenants, 2);
    CU_ASSERT_EQUAL(s.acme.requests, 2);
    CU_ASSERT_EQUAL(s.acme.prompt_tokens, 300);
    CU_ASSERT_EQUAL(s.acme.completion_tokens, 30);
    CU_ASSERT_EQUAL(s.acme.cost_micro_usd, 12);
    pdp_store_close(st);
}

static void
test_map_full_grows_never_drops(void)
{
    enum { N = 12000 };
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 1); /* 1 MB: fills quickly */
    pdp_store_reader *rd  = NULL;
    size_t            before;
    counter           c;
    tg_usage          u;
    pdp_totals        t;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    before = pdp_store_map_size(st);
    atomic_init(&c.done, 0);
    atomic_init(&c.ok, 0);
    atomic_init(&c.dups, 0);
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    for (int i = 0; i < N; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "req-%06d", i);
        make_usage(&u, rid, "key_a", "acme", 1, 2);
        CU_ASSERT_EQUAL_FATAL(pdp_store_usage_submit(st, &u, 1, count_cb, &c),
                              TG_OK);
        if (i % 1000 == 0) {
            /* Reads interleaved with growth must neither fail nor block
             * the resize forever. */
            CU_ASSERT_EQUAL(pdp_store_read_begin(rd), TG_OK);
            pdp_store_read_end(rd);
        }
    }
    wait_done(&c, N);
    CU_ASSERT_EQUAL(atomic_load(&c.ok), N);
    CU_ASSERT(pdp_store_map_size(st) > before);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_totals_get(rd, PDP_TOTALS_TENANT, "acme", &t),
                    TG_OK);
    CU_ASSERT_EQUAL(t.requests, N);
    CU_ASSERT_EQUAL(t.completion_tokens, 2 * N);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

static void
test_close_drains_queue(void)
{
    /* Close drains: every report submitted before close is settled. */
    const char *dir = tg_unit_tmpdir("store");
    pdp_store  *st  = open_store(dir, 4);
    counter     c;
    tg_usage    u;
    totals_seen s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    atomic_init(&c.done, 0);
    atomic_init(&c.ok, 0);
    atomic_init(&c.dups, 0);
    for (int i = 0; i < 50; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "drain-%d", i);
        make_usage(&u, rid, "key_a", "acme", 1, 1);
        pdp_store_usage_submit(st, &u, 1, count_cb, &c);
    }
    pdp_store_close(st);
    CU_ASSERT_EQUAL(atomic_load(&c.done), 50);
    CU_ASSERT_EQUAL(atomic_load(&c.ok), 50);
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(&s, 0, sizeof(s));
    pdp_store_totals_list(st, totals_cb, &s);
    CU_ASSERT_EQUAL(s.acme.requests, 50);
    pdp_store_close(st);
}


static void
budget_sum_cb(void *arg, const pdp_limits_spend_key *k, int64_t spent)
{
    int64_t *sum = arg;

    if (strcmp(k->rule_id, "cap") == 0 && strcmp(k->scope, "acme") == 0 &&
        k->code == 2 && k->start_ms == 1772319600000LL) {
        *sum += spent;
    }
}

/* Budget spend is committed with the usage record (a duplicate adds
 * nothing) and read back after a reopen. */
static void
test_budget_spend_persists(void)
{
    const char          *dir = tg_unit_tmpdir("store");
    pdp_store           *st  = open_store(dir, 4);
    pdp_limits_spend_key sk[2];
    tg_usage             u;
    tg_usage_ack         ack;
    int64_t              sum = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(sk, 0, sizeof(sk));
    snprintf(sk[0].rule_id, sizeof(sk[0].rule_id), "cap");
    snprintf(sk[0].scope, sizeof(sk[0].scope), "acme");
    sk[0].code     = 2;
    sk[0].start_ms = 1772319600000LL;
    sk[1]          = sk[0];
    snprintf(sk[1].scope, sizeof(sk[1].scope), "other");
    make_usage(&u, "req-b1", "key_a", "acme", 1000, 500);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 435, sk, 2, &ack), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 435, sk, 2, &ack), TG_OK);
    CU_ASSERT_TRUE(ack.duplicate);
    make_usage(&u, "req-b2", "key_a", "acme", 10, 5);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 65, sk, 1, &ack), TG_OK);
    pdp_store_close(st);
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_budget_list(st, 0, budget_sum_cb, &sum), TG_OK);
    CU_ASSERT_EQUAL(sum, 500);
    sum = 0;
    /* Windows that ended long ago are not read back. */
    CU_ASSERT_EQUAL(
        pdp_store_budget_list(st, 1772319600001LL, budget_sum_cb, &sum),
        TG_OK);
    CU_ASSERT_EQUAL(sum, 0);
    pdp_store_close(st);
}

/* Budget alerts: the store records each threshold a committed cost took
 * the window across, once per window and threshold, also after a reopen;
 * a new window fires again; a duplicate report fires nothing. */
static void
alert_key(pdp_limits_spend_key *sk, int64_t start)
{
    memset(sk, 0, sizeof(*sk));
    snprintf(sk->rule_id, sizeof(sk->rule_id), "cap");
    snprintf(sk->scope, sizeof(sk->scope), "acme");
    sk->code     = 2;
    sk->start_ms = start;
    sk->limit    = 1000000; /* $1 */
    sk->nthr     = 2;
    sk->thr[0]   = 50;
    sk->thr[1]   = 80;
}

static void
test_alerts_fire_once_per_window(void)
{
    const char          *dir = tg_unit_tmpdir("store");
    pdp_store           *st  = open_store(dir, 4);
    pdp_limits_spend_key sk;
    tg_usage             u;
    tg_usage_ack         ack;
    const int64_t        w1 = 1772319600000LL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    alert_key(&sk, w1);
    make_usage(&u, "req-a1", "key_a", "acme", 10, 5);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 499999, &sk, 1, &ack), TG_OK);
    CU_ASSERT_EQUAL(sk.nfired, 0); /* 49.9999 % */
    CU_ASSERT_EQUAL(sk.spent_after, 499999);
    alert_key(&sk, w1);
    make_usage(&u, "req-a2", "key_a", "acme", 10, 5);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 1, &sk, 1, &ack), TG_OK);
    CU_ASSERT_EQUAL_FATAL(sk.nfired, 1); /* exactly 50 % */
    CU_ASSERT_EQUAL(sk.fired[0], 50);
    CU_ASSERT_EQUAL(sk.spent_after, 500000);
    /* The same report again: a duplicate fires nothing. */
    alert_key(&sk, w1);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 1, &sk, 1, &ack), TG_OK);
    CU_ASSERT_TRUE(ack.duplicate);
    CU_ASSERT_EQUAL(sk.nfired, 0);
    pdp_store_close(st);

    /* After a reopen: 50 % fired already; a jump across 80 % fires it. */
    st = open_store(dir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    alert_key(&sk, w1);
    make_usage(&u, "req-a3", "key_a", "acme", 10, 5);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 400000, &sk, 1, &ack), TG_OK);
    CU_ASSERT_EQUAL_FATAL(sk.nfired, 1);
    CU_ASSERT_EQUAL(sk.fired[0], 80);
    CU_ASSERT_EQUAL(sk.spent_after, 900000);
    alert_key(&sk, w1);
    make_usage(&u, "req-a4", "key_a", "acme", 10, 5);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 50000, &sk, 1, &ack), TG_OK);
    CU_ASSERT_EQUAL(sk.nfired, 0);
    /* A new window: both fire again, at once, in ascending order. */
    alert_key(&sk, w1 + 31LL * 86400000);
    make_usage(&u, "req-a5", "key_a", "acme", 10, 5);
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_usage_settle_spend(st, &u, 850000, &sk, 1, &ack), TG_OK);
    CU_ASSERT_EQUAL_FATAL(sk.nfired, 2);
    CU_ASSERT_EQUAL(sk.fired[0], 50);
    CU_ASSERT_EQUAL(sk.fired[1], 80);
    pdp_store_close(st);
}

/* test_admin_records: quotas need their tenant or key, keep created_ms
 * across updates and survive a reopen; admin tokens are found by hash only
 * while active, one active per name; the audit trail lists newest first. */
static bool
audit_collect(void *arg, const pdp_audit *a)
{
    uint64_t *seqs = arg;

    for (int i = 0; i < 8; i++) {
        if (seqs[i] == 0) {
            seqs[i] = a->seq;
            break;
        }
    }
    return true;
}

static void
test_admin_records(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_store_reader *rd  = NULL;
    pdp_tenant_change tc  = {"acme", NULL, NULL, 0, 1000, "Acme"};
    pdp_quota         q;
    pdp_quota         got;
    pdp_admin_token   t;
    pdp_admin_token   seen;
    pdp_audit         a;
    uint8_t           h1[TG_SHA256_LEN];
    uint8_t           h2[TG_SHA256_LEN];
    uint64_t          seqs[8] = {0};
    bool              created = false;
    pdp_tenant        tn;

    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_TENANT;
    snprintf(q.id, sizeof(q.id), "acme");
    q.limit_micro = 1000000;
    q.window      = 2;
    q.nthr        = 2;
    q.thr[0]      = 50;
    q.thr[1]      = 80;
    q.rpm         = 60;
    q.updated_ms  = 2000;
    CU_ASSERT_EQUAL(pdp_store_quota_put(st, &q, &created), TG_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(st, &tc, &tn, NULL), TG_OK);
    CU_ASSERT_STRING_EQUAL(tn.name, "Acme");
    CU_ASSERT_EQUAL(pdp_store_quota_put(st, &q, &created), TG_OK);
    CU_ASSERT_TRUE(created);
    q.rpm        = 120;
    q.updated_ms = 3000;
    CU_ASSERT_EQUAL(pdp_store_quota_put(st, &q, &created), TG_OK);
    CU_ASSERT_FALSE(created);
    pdp_store_close(st);

    st = open_store(dir, 4);
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_quota_get(rd, PDP_QUOTA_TENANT, "acme", &got),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_quota_get(rd, PDP_QUOTA_KEY, "acme", &q),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_tenant_get(rd, "acme", &tn), TG_OK);
    CU_ASSERT_STRING_EQUAL(tn.name, "Acme");
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    CU_ASSERT_EQUAL(got.limit_micro, 1000000);
    CU_ASSERT_EQUAL(got.rpm, 120);
    CU_ASSERT_EQUAL(got.created_ms, 2000);
    CU_ASSERT_EQUAL(got.updated_ms, 3000);
    CU_ASSERT_EQUAL(got.nthr, 2);
    CU_ASSERT_EQUAL(got.thr[1], 80);
    CU_ASSERT_EQUAL(pdp_store_quota_del(st, PDP_QUOTA_TENANT, "acme"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_quota_del(st, PDP_QUOTA_TENANT, "acme"),
                    TG_ENOTFOUND);

    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "ops");
    t.created_ms = 5;
    tg_sha256("one", 3, h1);
    tg_sha256("two", 3, h2);
    CU_ASSERT_EQUAL(pdp_store_token_put(st, h1, &t, false), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_token_put(st, h2, &t, false), TG_EEXIST);
    CU_ASSERT_EQUAL(pdp_store_token_check(st, h1, &seen), TG_OK);
    CU_ASSERT_STRING_EQUAL(seen.name, "ops");
    CU_ASSERT_EQUAL(pdp_store_token_check(st, h2, &seen), TG_ENOTFOUND);
    /* replace: the new secret takes over the name (serve's "local"). */
    CU_ASSERT_EQUAL(pdp_store_token_put(st, h2, &t, true), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_token_check(st, h1, &seen), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_token_check(st, h2, &seen), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_token_revoke(st, "ops", 9), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_token_check(st, h2, &seen), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_token_revoke(st, "ops", 9), TG_ENOTFOUND);

    for (int i = 0; i < 3; i++) {
        memset(&a, 0, sizeof(a));
        a.at_ms = 100 + i;
        snprintf(a.actor, sizeof(a.actor), "token:ops");
        snprintf(a.action, sizeof(a.action), "tenants.update");
        snprintf(a.target, sizeof(a.target), "tenant:acme");
        CU_ASSERT_EQUAL(pdp_store_audit_add(st, &a), TG_OK);
        CU_ASSERT_EQUAL(a.seq, (uint64_t)i + 1);
    }
    CU_ASSERT_EQUAL(pdp_store_audit_list(st, 2, audit_collect, seqs), TG_OK);
    CU_ASSERT_EQUAL(seqs[0], 3);
    CU_ASSERT_EQUAL(seqs[1], 2);
    CU_ASSERT_EQUAL(seqs[2], 0); /* the limit held */
    pdp_store_close(st);
}

static bool
audit_count(void *arg, const pdp_audit *a)
{
    (void)a;
    (*(int *)arg)++;
    return true;
}

static size_t
last_txn(pdp_store *st)
{
    MDB_envinfo info;

    mdb_env_info(st->env, &info);
    return info.me_last_txnid;
}

/* An armed audit line is committed in the change's own transaction (a
 * crash can never keep one without the other), once, and only when a
 * change is committed. */
static void
test_audit_with_its_change(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_audit         a;
    pdp_tenant        t;
    pdp_tenant_change ch = {.id = "acme", .now_ms = 1};
    uint8_t           hash[TG_SHA256_LEN];
    bool              created = false;
    int               n       = 0;
    size_t            txn;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(&a, 0, sizeof(a));
    snprintf(a.actor, sizeof(a.actor), "cli:test");
    snprintf(a.action, sizeof(a.action), "tenants.create");
    snprintf(a.target, sizeof(a.target), "tenant:acme");
    txn = last_txn(st);
    pdp_store_audit_arm(st, &a);
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &ch, &t, &created), TG_OK);
    CU_ASSERT_TRUE(created);
    CU_ASSERT_EQUAL(last_txn(st), txn + 1); /* one transaction for both */
    CU_ASSERT_EQUAL(a.seq, 1);
    /* Consumed: a later write in the same operation adds no second line. */
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &ch, &t, &created), TG_OK);
    CU_ASSERT_TRUE(pdp_store_audit_disarm(st));
    CU_ASSERT_EQUAL(pdp_store_audit_list(st, 0, audit_count, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);

    /* No change, no line: an unknown key, a key already revoked. */
    pdp_store_audit_arm(st, &a);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_nope", 2), TG_ENOTFOUND);
    CU_ASSERT_FALSE(pdp_store_audit_disarm(st));
    tg_sha256("sk-tg-audit", 11, hash);
    make_key(&g_key, "key_a", "acme", NULL);
    CU_ASSERT_EQUAL(pdp_store_key_put(st, hash, &g_key), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_a", 3), TG_OK);
    txn = last_txn(st);
    pdp_store_audit_arm(st, &a);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_a", 4), TG_EEXIST);
    CU_ASSERT_FALSE(pdp_store_audit_disarm(st));
    CU_ASSERT_EQUAL(last_txn(st), txn); /* nothing committed */
    /* Rotating a revoked key is refused: no change, no line. */
    tg_sha256("sk-tg-audit-2", 13, hash);
    pdp_store_audit_arm(st, &a);
    CU_ASSERT_EQUAL(pdp_store_key_rotate(st, "key_a", hash, 5, 0, NULL),
                    TG_EINVAL);
    CU_ASSERT_FALSE(pdp_store_audit_disarm(st));
    CU_ASSERT_EQUAL(last_txn(st), txn);
    n = 0;
    CU_ASSERT_EQUAL(pdp_store_audit_list(st, 0, audit_count, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    /* Disarmed: writes are not audited. */
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &ch, &t, &created), TG_OK);
    n = 0;
    CU_ASSERT_EQUAL(pdp_store_audit_list(st, 0, audit_count, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 1);
    pdp_store_close(st);
}

/* The rate-limit snapshot: one record, replaced whole, survives a reopen,
 * and a snapshot bigger than the map grows it rather than failing. */
static void
test_limits_snapshot_saved(void)
{
    const char *dir = tg_unit_tmpdir("store");
    pdp_store  *st  = open_store(dir, 1); /* 1 MB */
    size_t      big = 3u << 20;
    char       *blob = malloc(big);
    tg_buf      b;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL(pdp_store_limits_load(st, &b), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(pdp_store_limits_save(st, "\x01" "ab\0cd", 6), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_limits_load(st, &b), TG_OK);
    CU_ASSERT_EQUAL(b.len, 6);
    CU_ASSERT_EQUAL(memcmp(b.data, "\x01" "ab\0cd", 6), 0);
    for (size_t i = 0; i < big; i++) {
        blob[i] = (char)(i * 7 + 1);
    }
    CU_ASSERT_EQUAL(pdp_store_limits_save(st, blob, big), TG_OK);
    CU_ASSERT_TRUE(pdp_store_map_size(st) > big);
    pdp_store_close(st);
    st = open_store(dir, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    tg_buf_reset(&b);
    CU_ASSERT_EQUAL(pdp_store_limits_load(st, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(b.len, big);
    CU_ASSERT_EQUAL(memcmp(b.data, blob, big), 0);
    /* Replaced, not appended. */
    CU_ASSERT_EQUAL(pdp_store_limits_save(st, "\x01z", 2), TG_OK);
    tg_buf_reset(&b);
    CU_ASSERT_EQUAL(pdp_store_limits_load(st, &b), TG_OK);
    CU_ASSERT_EQUAL(b.len, 2);
    CU_ASSERT_EQUAL(pdp_store_limits_save(st, NULL, 0), TG_EINVAL);
    tg_buf_fini(&b);
    free(blob);
    pdp_store_close(st);
}

/* A waiter for pdp_store_reserve_submit's callback. */
typedef struct res_wait {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            done;
    tg_err          rv;
    bool            dup;
} res_wait;

static void
res_wait_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    res_wait *w = arg;

    pthread_mutex_lock(&w->mu);
    w->rv   = rv;
    w->dup  = ack->duplicate;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static tg_err
reserve_len(pdp_store *st, const char *id, const void *data, size_t len,
            bool *dup)
{
    res_wait w;
    tg_err   rv;

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rv = pdp_store_reserve_submit(st, id, data, len, res_wait_cb, &w);
    if (rv == TG_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        rv   = w.rv;
        *dup = w.dup;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rv;
}

static tg_err
reserve(pdp_store *st, const char *id, const char *data, bool *dup)
{
    return reserve_len(st, id, data, strlen(data), dup);
}

static void
count_res(void *arg, const char *id, const void *data, size_t len)
{
    (void)id;
    (void)data;
    (void)len;
    (*(int *)arg)++;
}

static void
state_res(void *arg, const char *id, const void *data, size_t len)
{
    (void)id;
    *(int *)arg = len > 0 ? ((const uint8_t *)data)[0] : -1;
}

/* A real reservation's record: its report keeps it, settled, until a
 * saved window snapshot counts its request; that save prunes it. */
static void
test_reservation_settled_then_pruned(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_limits       *l   = NULL;
    pdp_limits_req    q   = {"rl", "key-a", 5, 0, 1};
    pdp_limits_result r;
    tg_buf            rec;
    tg_buf            snap;
    tg_usage          u;
    tg_usage_ack      ack;
    bool              dup = true;
    int               state = 0;
    int               n     = 0;

    tg_buf_init(&rec, 0);
    tg_buf_init(&snap, 0);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&l, 900000), TG_OK);
    CU_ASSERT_EQUAL(pdp_limits_snapshot_windows(l, tg_now_ms(), &snap),
                    TG_OK); /* before the request: does not count it */
    pdp_limits_check_budgets(l, "req_s", &q, 1, NULL, 0, NULL, 10,
                             tg_now_ms(), &r);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_reservation_encode(l, "req_s", &rec),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&rec, "", 1), TG_OK); /* reserve() takes a string */
    rec.len--;
    {
        res_wait w;
        memset(&w, 0, sizeof(w));
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        CU_ASSERT_EQUAL(pdp_store_reserve_submit(st, "req_s", rec.data,
                                                 rec.len, res_wait_cb, &w),
                        TG_OK);
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        dup = w.dup;
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cv);
    }
    CU_ASSERT_FALSE(dup);
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req_s");
    strcpy(u.reservation_id, "req_s");
    strcpy(u.key_id, "key_1");
    u.prompt_tokens = 7;
    CU_ASSERT_EQUAL(pdp_store_usage_settle(st, &u, 1, &ack), TG_OK);
    pdp_store_reservation_list(st, state_res, &state);
    CU_ASSERT_EQUAL(state, PDP_LIMITS_RES_SETTLED);
    /* A snapshot from before the request does not prune it... */
    CU_ASSERT_EQUAL(pdp_store_limits_save(st, snap.data, snap.len), TG_OK);
    pdp_store_reservation_list(st, count_res, &n);
    CU_ASSERT_EQUAL(n, 1);
    /* ...one taken after it does, in the same commit. */
    tg_buf_reset(&snap);
    CU_ASSERT_EQUAL(pdp_limits_snapshot_windows(l, tg_now_ms(), &snap),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_limits_save(st, snap.data, snap.len), TG_OK);
    n = 0;
    pdp_store_reservation_list(st, count_res, &n);
    CU_ASSERT_EQUAL(n, 0);
    pdp_limits_destroy(l);
    tg_buf_fini(&rec);
    tg_buf_fini(&snap);
    pdp_store_close(st);
}

/* A reservation record lives from its decision to its usage report, which
 * deletes it in the same txn; one reserved after its request's report
 * (the data plane abandoned it first) is not recorded. */
static void
test_reservation_records(void)
{
    const char  *dir = tg_unit_tmpdir("store");
    pdp_store   *st  = open_store(dir, 4);
    tg_usage     u;
    tg_usage_ack ack;
    bool         dup = true;
    int          n   = 0;

    CU_ASSERT_EQUAL(reserve(st, "req_a", "x", &dup), TG_OK);
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_EQUAL(reserve(st, "req_b", "y", &dup), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_reservation_list(st, count_res, &n), TG_OK);
    CU_ASSERT_EQUAL(n, 2);
    /* Kept across a close (a crash keeps what was committed). */
    pdp_store_close(st);
    st = open_store(dir, 4);
    n  = 0;
    pdp_store_reservation_list(st, count_res, &n);
    CU_ASSERT_EQUAL(n, 2);
    /* req_a's report ends it in the same commit (a record this build
     * cannot read as a reservation is deleted; a real one is kept settled,
     * see reservation_settled_then_pruned). */
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req_a");
    strcpy(u.reservation_id, "req_a");
    strcpy(u.key_id, "key_1");
    CU_ASSERT_EQUAL(pdp_store_usage_settle(st, &u, 10, &ack), TG_OK);
    n = 0;
    pdp_store_reservation_list(st, count_res, &n);
    CU_ASSERT_EQUAL(n, 1);
    /* req_c abandoned before its decision: the late reservation is not
     * recorded and the caller is told. */
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req_c");
    strcpy(u.reservation_id, "req_c");
    strcpy(u.key_id, "key_1");
    u.prompt_tokens = 99;
    u.abandoned     = true;
    CU_ASSERT_EQUAL(pdp_store_usage_settle(st, &u, 5, &ack), TG_OK);
    CU_ASSERT_EQUAL(reserve(st, "req_c", "z", &dup), TG_OK);
    CU_ASSERT_TRUE(dup);
    n = 0;
    pdp_store_reservation_list(st, count_res, &n);
    CU_ASSERT_EQUAL(n, 1);
    /* An abandoned request is no spend: the key's totals do not move. */
    {
        pdp_store_reader *rd = NULL;
        pdp_totals        t;
        CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
        CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
        CU_ASSERT_EQUAL(pdp_store_totals_get(rd, PDP_TOTALS_KEY, "key_1", &t),
                        TG_OK);
        CU_ASSERT_EQUAL(t.requests, 1);
        CU_ASSERT_EQUAL(t.prompt_tokens, 0);
        CU_ASSERT_EQUAL(t.cost_micro_usd, 10);
        pdp_store_read_end(rd);
        pdp_store_reader_destroy(rd);
    }
    /* A manual release deletes the record. */
    CU_ASSERT_EQUAL(pdp_store_reservation_del(st, "req_b"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_reservation_del(st, "req_b"), TG_ENOTFOUND);
    n = 0;
    pdp_store_reservation_list(st, count_res, &n);
    CU_ASSERT_EQUAL(n, 0);
    pdp_store_close(st);
}

static void
sum_budget(void *arg, const pdp_limits_spend_key *k, int64_t spent)
{
    if (strcmp(k->rule_id, "cap") == 0) {
        *(int64_t *)arg += spent;
    }
}

typedef struct usage_wait {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            done;
    tg_err          rv;
} usage_wait;

static void
usage_wait_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    usage_wait *w = arg;

    (void)ack;
    pthread_mutex_lock(&w->mu);
    w->rv   = rv;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A reservation that expired (or was released by hand) before its usage
 * report came: the report is still charged to the budgets the record
 * names, in the store and (through the keys written back) in memory. */
static void
test_late_report_charged_from_record(void)
{
    const char       *dir = tg_unit_tmpdir("store");
    pdp_store        *st  = open_store(dir, 4);
    pdp_limits       *l   = NULL;
    pdp_limits_budget bud = {"cap", "t1", 0, 0, 0, 9000000, false, 1, 1,
                             {50}};
    pdp_limits_cost   c   = {1000000, 1000000, 10, 20};
    pdp_limits_result r;
    pdp_limits_spend_key keys[PDP_LIMITS_BUDGETS_MAX];
    uint32_t          nkeys = 0;
    tg_buf            rec;
    tg_usage          u;
    usage_wait        w;
    int64_t           spent = 0;
    int               state = 0;

    tg_buf_init(&rec, 0);
    bud.start_ms = 1767225600000LL;
    CU_ASSERT_EQUAL_FATAL(pdp_limits_create(&l, 900000), TG_OK);
    pdp_limits_check_budgets(l, "req_late", NULL, 0, &bud, 1, &c, 30,
                             tg_now_ms(), &r);
    CU_ASSERT_EQUAL_FATAL(r.denied, PDP_LIMITS_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_limits_reservation_encode(l, "req_late", &rec),
                          TG_OK);
    {
        bool dup = true;
        CU_ASSERT_EQUAL(reserve_len(st, "req_late", rec.data, rec.len, &dup),
                        TG_OK);
        CU_ASSERT_FALSE(dup);
    }
    /* It is released by hand: the record ends (holds nothing, names its
     * budget); a second release finds nothing open. */
    CU_ASSERT_EQUAL(pdp_store_reservation_end(st, "req_late"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_reservation_end(st, "req_late"), TG_ENOTFOUND);
    pdp_store_reservation_list(st, state_res, &state);
    CU_ASSERT_EQUAL(state, PDP_LIMITS_RES_ENDED);
    /* The report comes late, with no keys from memory. */
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req_late");
    strcpy(u.reservation_id, "req_late");
    strcpy(u.key_id, "key_1");
    u.prompt_tokens = 10;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    CU_ASSERT_EQUAL_FATAL(pdp_store_usage_submit_res(st, &u, 777, keys,
                                                     &nkeys, usage_wait_cb,
                                                     &w),
                          TG_OK);
    pthread_mutex_lock(&w.mu);
    while (!w.done) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    CU_ASSERT_EQUAL(w.rv, TG_OK);
    CU_ASSERT_EQUAL_FATAL(nkeys, 1);
    CU_ASSERT_STRING_EQUAL(keys[0].rule_id, "cap");
    CU_ASSERT_STRING_EQUAL(keys[0].scope, "t1");
    CU_ASSERT_EQUAL(keys[0].limit, 9000000);
    CU_ASSERT_EQUAL(pdp_store_budget_list(st, 0, sum_budget, &spent), TG_OK);
    CU_ASSERT_EQUAL(spent, 777);
    pdp_store_reservation_list(st, state_res, &state);
    CU_ASSERT_EQUAL(state, PDP_LIMITS_RES_SETTLED);
    pdp_limits_destroy(l);
    tg_buf_fini(&rec);
    pdp_store_close(st);
}

/* ---- the state generation (tg_gen.h) ------------------------------------- */

/* gen_now reads the generation file at path as a data plane would. */
static uint64_t
gen_now(const char *path)
{
    tg_gen  *g = NULL;
    uint64_t v;

    CU_ASSERT_EQUAL_FATAL(tg_gen_open_ro(&g, path, -1), TG_OK);
    v = tg_gen_load(g);
    tg_gen_close(g);
    return v;
}

/* Every committed change to what decisions read (keys, tenants, quotas,
 * lists) moves the generation a data plane reuses decisions by, in the
 * PDP's store and in another one attached to the same file (the CLI);
 * usage, admin tokens, the bundle history and failed writes do not (a
 * usage report per request would make reuse useless). */
static void
test_generation_bumped_by_what_decisions_read(void)
{
    static const char *const terms[] = {"acme", "globex"};
    const char              *base    = tg_unit_tmpdir("store-gen");
    char                     run[600];
    char                     url[700];
    char                     other_url[700];
    char                     path[720];
    char                     other[720];
    char                     dir2[600];
    const char              *urls[2];
    pdp_store               *st;
    pdp_store               *st2;
    pdp_key                  k;
    uint8_t                  hash[TG_SHA256_LEN];
    pdp_tenant_change        c;
    pdp_quota                q;
    pdp_list_set_result      lres;
    pdp_admin_token          tok;
    pdp_activation           act;
    tg_usage                 u;
    tg_usage_ack             ack;
    uint64_t                 g0;
    struct stat              sb;
    char                     sdir[600];

    snprintf(run, sizeof(run), "%s/run", base);
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0755), 0);
    snprintf(url, sizeof(url), "ipc://%s/pdp.sock", run);
    snprintf(path, sizeof(path), "%s/pdp.sock.gen", run);
    snprintf(other_url, sizeof(other_url), "ipc://%s/other.sock", run);
    snprintf(other, sizeof(other), "%s/other.sock.gen", run);
    snprintf(sdir, sizeof(sdir), "%s/state", base);
    st = open_store(sdir, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    urls[0] = "tcp://127.0.0.1:7000"; /* no file: skipped */
    urls[1] = url;
    pdp_store_gen_attach(st, urls, 2, true);
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 4096);
    g0 = gen_now(path);
    CU_ASSERT_EQUAL(g0, 0); /* attaching is not a change */

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "key_g");
    snprintf(k.tenant, sizeof(k.tenant), "acme");
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1;
    tg_sha256("sk-g", 4, hash);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_put(st, hash, &k), TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 1);
    c = (pdp_tenant_change){"acme", "free", NULL, 0, 1000, NULL};
    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(st, &c, NULL, NULL), TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 2);
    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_KEY;
    snprintf(q.id, sizeof(q.id), "key_g");
    q.rpm = 60;
    CU_ASSERT_EQUAL_FATAL(pdp_store_quota_put(st, &q, NULL), TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 3);
    CU_ASSERT_EQUAL_FATAL(pdp_store_list_set(st, "customers", terms, 2,
                                             "cli:ana@ops", 1000, &lres),
                          TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 4);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_revoke(st, "key_g", 2000), TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 5);

    /* Writes that change no decision. */
    make_usage(&u, "req-g", "key_g", "acme", 100, 50);
    CU_ASSERT_EQUAL_FATAL(pdp_store_usage_settle(st, &u, 42, &ack), TG_OK);
    CU_ASSERT_FALSE(ack.duplicate);
    memset(&tok, 0, sizeof(tok));
    snprintf(tok.name, sizeof(tok.name), "ops");
    tok.created_ms = 5;
    tg_sha256("tok", 3, hash);
    CU_ASSERT_EQUAL_FATAL(pdp_store_token_put(st, hash, &tok, false), TG_OK);
    memset(&act, 0, sizeof(act));
    act.revision     = 3;
    act.activated_ms = 3000;
    act.how          = PDP_ACTIVATION_START;
    CU_ASSERT_EQUAL_FATAL(pdp_store_history_add(st, &act), TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 5);

    /* A write that fails changes nothing, and says so to nobody. */
    snprintf(q.id, sizeof(q.id), "key_nobody");
    CU_ASSERT_EQUAL(pdp_store_quota_put(st, &q, NULL), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_nobody", 3000), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 5);

    /* What else can change a decision (a new bundle) bumps it by hand. */
    pdp_store_gen_bump(st);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 6);

    /* Another writer (the CLI) bumps the file the PDP made, and makes
     * none: it has no data plane reading it. */
    snprintf(dir2, sizeof(dir2), "%s/state2", base);
    st2 = open_store(dir2, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
    urls[0] = url;
    urls[1] = other_url;
    pdp_store_gen_attach(st2, urls, 2, false);
    CU_ASSERT_EQUAL(stat(other, &sb), -1);
    c = (pdp_tenant_change){"globex", "pro", NULL, 0, 1000, NULL};
    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(st2, &c, NULL, NULL), TG_OK);
    CU_ASSERT_EQUAL(gen_now(path), g0 + 7);
    pdp_store_close(st2);
    pdp_store_close(st);
}

static const tg_unit_case cases[] = {
    {"limits_snapshot_saved", test_limits_snapshot_saved},
    {"admin_records", test_admin_records},
    {"audit_with_its_change", test_audit_with_its_change},
    {"schema_version_written", test_schema_version_written},
    {"alerts_fire_once_per_window", test_alerts_fire_once_per_window},
    {"budget_spend_persists", test_budget_spend_persists},
    {"newer_schema_refused", test_newer_schema_refused},
    {"schema1_upgraded_and_v1_keys_readable",
     test_schema1_upgraded_and_v1_keys_readable},
    {"key_create_lookup_revoke", test_key_create_lookup_revoke},
    {"key_labels_round_trip", test_key_labels_round_trip},
    {"v2_key_readable_and_rotatable", test_v2_key_readable_and_rotatable},
    {"key_expiry_and_rotation_round_trip",
     test_key_expiry_and_rotation_round_trip},
    {"tenants_set_merge_and_list", test_tenants_set_merge_and_list},
    {"history_newest_first", test_history_newest_first},
    {"usage_idempotent", test_usage_idempotent},
    {"same_id_in_one_batch", test_same_id_in_one_batch},
    {"totals_per_key_and_tenant_survive_reopen",
     test_totals_per_key_and_tenant_survive_reopen},
    {"map_full_grows_never_drops", test_map_full_grows_never_drops},
    {"close_drains_queue", test_close_drains_queue},
    {"reservation_records", test_reservation_records},
    {"reservation_settled_then_pruned", test_reservation_settled_then_pruned},
    {"late_report_charged_from_record", test_late_report_charged_from_record},
    {"generation_bumped_by_what_decisions_read",
     test_generation_bumped_by_what_decisions_read},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.store", cases);
}
