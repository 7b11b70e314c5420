/* test_store.c - pdp.store: what survives on disk, schema versioning, keys,
 * and the usage rules users rely on (an acked report is counted once). */
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pdp_store.h"
#include "tg_hash.h"
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
    CU_ASSERT_STRING_EQUAL(got, "1");
}

static void
test_newer_schema_refused(void)
{
    const char *dir      = tg_unit_tmpdir("store");
    pdp_store  *st       = open_store(dir, 4);
    char        err[512] = "";

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_close(st);
    CU_ASSERT_EQUAL_FATAL(raw_meta(dir, "2", NULL, 0), 0);
    st = NULL;
    CU_ASSERT_EQUAL(pdp_store_open(&st, dir, 4, err, sizeof(err)), TG_EVERSION);
    CU_ASSERT_PTR_NULL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer tollgate-pdp"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "schema version 2"));
    /* Refusing must not rewrite what the newer build left. */
    CU_ASSERT_EQUAL(raw_meta(dir, NULL, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(err, "2");
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

static const tg_unit_case cases[] = {
    {"schema_version_written", test_schema_version_written},
    {"newer_schema_refused", test_newer_schema_refused},
    {"key_create_lookup_revoke", test_key_create_lookup_revoke},
    {"usage_idempotent", test_usage_idempotent},
    {"same_id_in_one_batch", test_same_id_in_one_batch},
    {"totals_per_key_and_tenant_survive_reopen",
     test_totals_per_key_and_tenant_survive_reopen},
    {"map_full_grows_never_drops", test_map_full_grows_never_drops},
    {"close_drains_queue", test_close_drains_queue},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.store", cases);
}
