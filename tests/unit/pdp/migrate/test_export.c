/* test_export.c - pdp.migrate.export: `tollgate-pdp export` and `import
 * tollgate`. A state with every kind of record (tenants, keys active,
 * revoked, expired and rotated, quotas, lists with history, two bundle
 * activations, an audit line, settled usage with its budget spend, an
 * alert and signed decision records) exports to the same bytes twice,
 * imports into an empty state that exports to the same data files again
 * and still authenticates its keys; an import refuses a state that is not
 * empty, a file changed after the export (naming it), a file the manifest
 * does not name and a format version it does not read; an import that
 * fails leaves the state directory as it found it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pdp_export.h"
#include "pdp_store.h"
#include "tg_hash.h"
#include "tg_unit.h"

#define DAY_MS 86400000LL
#define T0 1764547200000LL /* 2025-12-01T00:00:00Z */

static char g_top[512];

static pdp_store *
open_store(const char *dir)
{
    pdp_store *st = NULL;
    char       err[512];

    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, dir, 16, err, sizeof(err)),
                          TG_OK);
    return st;
}

static void
hash_of(const char *secret, uint8_t out[TG_SHA256_LEN])
{
    tg_sha256(secret, strlen(secret), out);
}

static void
put_key(pdp_store *st, const char *secret, const char *id, const char *tenant,
        int64_t expires_ms)
{
    pdp_key k;
    uint8_t h[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    snprintf(k.name, sizeof(k.name), "key \"%s\", for tests", id);
    snprintf(k.models[0], sizeof(k.models[0]), "gpt-4o-mini");
    k.n_models = 1;
    snprintf(k.labels[0].key, sizeof(k.labels[0].key), "team");
    snprintf(k.labels[0].value, sizeof(k.labels[0].value), "search");
    k.n_labels   = 1;
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = T0 + 1000;
    k.expires_ms = expires_ms;
    snprintf(k.user, sizeof(k.user), "alice@example.com");
    hash_of(secret, h);
    CU_ASSERT_EQUAL_FATAL(pdp_store_key_put(st, h, &k), TG_OK);
}

static void
fill_admin(pdp_store *st)
{
    tg_kv               lab[2] = {{"region", "eu"}, {"cost,center", "4\"2"}};
    pdp_tenant_change   c      = {"t1", "gold", lab, 2, T0, "Team One"};
    pdp_tenant_change   c2     = {"t2", "", NULL, 0, T0 + 5, NULL};
    pdp_quota           q;
    uint8_t             h[TG_SHA256_LEN];
    const char         *terms[] = {"alpha", "beta gamma", "δέλτα"};
    pdp_list_set_result lr;
    pdp_list_change     lc;
    pdp_audit           a;

    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(st, &c, NULL, NULL), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_tenant_set(st, &c2, NULL, NULL), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_tenant_disable(st, "t2", T0 + 7, T0 + 7, NULL),
                    TG_OK);
    put_key(st, "sk-live-1", "k1", "t1", 0);
    put_key(st, "sk-revoked", "k2", "t1", 0);
    put_key(st, "sk-expired", "k3", "t2", T0 + 2000);
    put_key(st, "sk-rotated-old", "k4", "t1", 0);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "k2", T0 + 3000), TG_OK);
    hash_of("sk-rotated-new", h);
    CU_ASSERT_EQUAL(pdp_store_key_rotate(st, "k4", h, T0 + 4000, DAY_MS, NULL),
                    TG_OK);
    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_TENANT;
    snprintf(q.id, sizeof(q.id), "t1");
    q.created_ms  = T0;
    q.updated_ms  = T0 + 1;
    q.limit_micro = 5000000;
    q.nthr        = 2;
    q.thr[0]      = 50;
    q.thr[1]      = 90;
    q.rpm         = 600;
    snprintf(q.updated_by, sizeof(q.updated_by), "cli:root@host");
    CU_ASSERT_EQUAL(pdp_store_quota_put(st, &q, NULL), TG_OK);
    q.scope = PDP_QUOTA_KEY;
    snprintf(q.id, sizeof(q.id), "k1");
    q.limit_micro = 0;
    q.tpm         = 10000;
    CU_ASSERT_EQUAL(pdp_store_quota_put(st, &q, NULL), TG_OK);
    CU_ASSERT_EQUAL(
        pdp_store_list_set(st, "blocked", terms, 3, "cli:a", T0 + 10, &lr),
        TG_OK);
    CU_ASSERT_EQUAL(
        pdp_store_list_set(st, "blocked", terms, 2, "cli:b", T0 + 11, &lr),
        TG_OK);
    CU_ASSERT_EQUAL(
        pdp_store_list_set(st, "gone", terms, 1, "cli:a", T0 + 12, &lr), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "gone", "cli:a", T0 + 13, &lc),
                    TG_OK);
    memset(&a, 0, sizeof(a));
    a.at_ms = T0 + 20;
    snprintf(a.actor, sizeof(a.actor), "token:ops");
    snprintf(a.action, sizeof(a.action), "keys.create");
    snprintf(a.target, sizeof(a.target), "key:k1");
    snprintf(a.detail, sizeof(a.detail), "{\"tenant\":\"t1\"}");
    CU_ASSERT_EQUAL(pdp_store_audit_add(st, &a), TG_OK);
}

static void
fill_history(pdp_store *st)
{
    pdp_activation a;

    memset(&a, 0, sizeof(a));
    a.revision     = 1;
    a.activated_ms = T0 + 30;
    a.how          = PDP_ACTIVATION_START;
    snprintf(a.name, sizeof(a.name), "team");
    snprintf(a.hash, sizeof(a.hash), "aaaa1111");
    snprintf(a.actor, sizeof(a.actor), "start");
    CU_ASSERT_EQUAL(pdp_store_history_add_files(
                        st, &a,
                        "{\"bundle.json\":\"{\\\"name\\\":\\\"team\\\"}\\n\","
                        "\"main.policy.json\":\"[]\\n\"}"),
                    TG_OK);
    a.revision          = 2;
    a.previous_revision = 1;
    a.activated_ms      = T0 + 40;
    a.how               = PDP_ACTIVATION_COMMAND;
    snprintf(a.hash, sizeof(a.hash), "bbbb2222");
    snprintf(a.actor, sizeof(a.actor), "token:ops");
    CU_ASSERT_EQUAL(pdp_store_history_add_files(
                        st, &a,
                        "{\"bundle.json\":\"{\\\"name\\\":\\\"team\\\","
                        "\\\"revision\\\":2}\\n\"}"),
                    TG_OK);
}

/* fill_usage settles three reports on key k1 with budget spend (the
 * second crosses 50% of the budget: an alert) and signed records. */
static void
fill_usage(pdp_store *st, const char *dir)
{
    pdp_signer          *s = NULL;
    char                 err[256];
    pdp_limits_spend_key sk;
    tg_usage_ack         ack;

    CU_ASSERT_EQUAL_FATAL(pdp_signer_open(&s, dir, true, err, sizeof(err)),
                          TG_OK);
    pdp_store_decisions_sign_every(st, s, 2);
    for (int i = 0; i < 3; i++) {
        tg_usage u;
        memset(&u, 0, sizeof(u));
        memset(&sk, 0, sizeof(sk));
        snprintf(u.request_id, sizeof(u.request_id), "req,%d", i);
        snprintf(u.key_id, sizeof(u.key_id), "k1");
        snprintf(u.tenant_id, sizeof(u.tenant_id), "t1");
        snprintf(u.model, sizeof(u.model), "gpt-4o-mini");
        snprintf(u.deployment_id, sizeof(u.deployment_id), "mock-mini");
        snprintf(u.user, sizeof(u.user), "bob \"b\"");
        u.endpoint              = TG_EP_CHAT_COMPLETIONS;
        u.stream                = i == 1;
        u.status                = 200;
        u.prompt_tokens         = 100 + i;
        u.completion_tokens     = 20;
        u.started_ms            = T0 + 100 + i;
        u.duration_ms           = 7;
        u.outcome.present       = true;
        u.outcome.verdict       = TG_VERDICT_ALLOW;
        u.outcome.capture_level = TG_CAPTURE_METADATA;
        snprintf(sk.rule_id, sizeof(sk.rule_id), PDP_QUOTA_RULE_TENANT);
        snprintf(sk.scope, sizeof(sk.scope), "t1");
        sk.start_ms = T0;
        sk.limit    = 5000000;
        sk.nthr     = 1;
        sk.thr[0]   = 50;
        CU_ASSERT_EQUAL(
            pdp_store_usage_settle_spend(st, &u, 1500000, &sk, 1, &ack), TG_OK);
    }
    pdp_store_decisions_sign_every(st, NULL, 0);
    pdp_signer_free(s);
}

/* make_state builds the state every case exports, in g_top/src. */
static void
make_state(void)
{
    char       dir[600];
    pdp_store *st;

    snprintf(g_top, sizeof(g_top), "%s", tg_unit_tmpdir("export"));
    snprintf(dir, sizeof(dir), "%s/src", g_top);
    st = open_store(dir);
    fill_admin(st);
    fill_history(st);
    fill_usage(st, dir);
    pdp_store_close(st);
}

static int64_t g_since_ms; /* what export_to passes as --since */

/* export_to exports the state in state_dir into g_top/name. */
static tg_err
export_to(const char *state_dir, const char *name, int64_t now_ms,
          pdp_export_report *rep, char *err, size_t cap)
{
    char            out[600];
    char            sdir[600];
    pdp_store      *st;
    pdp_export_opts o;
    tg_err          rv;

    snprintf(sdir, sizeof(sdir), "%s/%s", g_top, state_dir);
    snprintf(out, sizeof(out), "%s/%s", g_top, name);
    st = open_store(sdir);
    o  = (pdp_export_opts){out, sdir, g_since_ms, now_ms, "test"};
    rv = pdp_export_run(st, &o, rep, err, cap);
    pdp_store_close(st);
    return rv;
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long  n;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf       = malloc((size_t)n + 1);
    *len      = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* same_file: g_top/a/name and g_top/b/name hold the same bytes. */
static bool
same_file(const char *a, const char *b, const char *name)
{
    char   pa[900];
    char   pb[900];
    size_t la = 0;
    size_t lb = 0;
    char  *x;
    char  *y;
    bool   same;

    snprintf(pa, sizeof(pa), "%s/%s/%s", g_top, a, name);
    snprintf(pb, sizeof(pb), "%s/%s/%s", g_top, b, name);
    x    = slurp(pa, &la);
    y    = slurp(pb, &lb);
    same = x != NULL && y != NULL && la == lb && memcmp(x, y, la) == 0;
    if (!same && strcmp(name, PDP_EXPORT_MANIFEST) != 0) {
        fprintf(stderr, "differs: %s and %s\n", pa, pb);
    }
    free(x);
    free(y);
    return same;
}

static void
test_export_is_byte_stable(void)
{
    pdp_export_report r1;
    pdp_export_report r2;
    char              err[2048] = "";

    make_state(); /* the cases below use it */
    CU_ASSERT_EQUAL_FATAL(
        export_to("src", "ex1", T0 + DAY_MS, &r1, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        export_to("src", "ex2", T0 + 2 * DAY_MS, &r2, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(r1.n, r2.n);
    for (size_t i = 0; i < r1.n; i++) {
        CU_ASSERT_TRUE(same_file("ex1", "ex2", r1.files[i].name));
    }
    /* Only the manifest says when: it differs. */
    CU_ASSERT_FALSE(same_file("ex1", "ex2", "manifest.json"));
    pdp_export_report_fini(&r1);
    pdp_export_report_fini(&r2);
}

/* rows_of finds name in rep. */
static uint64_t
rows_of(const pdp_export_report *rep, const char *name)
{
    for (size_t i = 0; i < rep->n; i++) {
        if (strcmp(rep->files[i].name, name) == 0) {
            return rep->files[i].rows;
        }
    }
    return UINT64_MAX;
}

static void
test_export_holds_every_record(void)
{
    pdp_export_report r;
    char              err[2048] = "";
    char              path[900];
    size_t            len;
    char             *text;

    CU_ASSERT_EQUAL_FATAL(export_to("src", "ex3", T0, &r, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(rows_of(&r, "tenants.jsonl"), 2);
    CU_ASSERT_EQUAL(rows_of(&r, "keys.jsonl"), 5); /* k4's old secret too */
    CU_ASSERT_EQUAL(rows_of(&r, "quotas.jsonl"), 2);
    CU_ASSERT_EQUAL(rows_of(&r, "lists.jsonl"), 1);
    CU_ASSERT_EQUAL(rows_of(&r, "list_history.jsonl"), 4);
    CU_ASSERT_EQUAL(rows_of(&r, "policy_history.jsonl"), 2);
    CU_ASSERT_EQUAL(rows_of(&r, "admin_audit.jsonl"), 1);
    CU_ASSERT_EQUAL(rows_of(&r, "usage.csv"), 3);
    CU_ASSERT_EQUAL(rows_of(&r, "totals.jsonl"), 2);
    CU_ASSERT_EQUAL(rows_of(&r, "budgets.jsonl"), 1);
    CU_ASSERT_EQUAL(rows_of(&r, "alerts.jsonl"), 1);
    /* 3 records, the checkpoint after the second and the one the first
     * export signed over the head */
    CU_ASSERT_EQUAL(rows_of(&r, "decisions.jsonl"), 5);
    CU_ASSERT_NOT_EQUAL(rows_of(&r, "bundles/2/bundle.json"), UINT64_MAX);
    CU_ASSERT_NOT_EQUAL(rows_of(&r, "decisions.pub"), UINT64_MAX);
    /* usage: exact integers; a comma or quote in a field is quoted */
    snprintf(path, sizeof(path), "%s/ex3/usage.csv", g_top);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\n\"req,1\",2025-12-01T00:00:00.101Z,"
                                        "1764547200101,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, ",\"bob \"\"b\"\"\",gpt-4o-mini,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, ",101,20,0,1500000,\n"));
    free(text);
    /* keys: the hash, never anything else of the secret */
    snprintf(path, sizeof(path), "%s/ex3/keys.jsonl", g_top);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NULL(strstr(text, "sk-live-1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"status\":\"revoked\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"superseded\":true"));
    free(text);
    pdp_export_report_fini(&r);
}

static void
test_import_round_trips(void)
{
    pdp_export_report r;
    pdp_export_report im;
    pdp_export_report r2;
    char              err[2048] = "";
    char              sdir[600];
    char              edir[600];
    pdp_store        *st;
    pdp_store_reader *rd = NULL;
    pdp_key           k;
    uint8_t           h[TG_SHA256_LEN];

    CU_ASSERT_EQUAL_FATAL(export_to("src", "ex4", T0, &r, err, sizeof(err)),
                          TG_OK);
    snprintf(sdir, sizeof(sdir), "%s/dst", g_top);
    snprintf(edir, sizeof(edir), "%s/ex4", g_top);
    st = open_store(sdir);
    CU_ASSERT_EQUAL(pdp_import_run(st, sdir, edir, &im, err, sizeof(err)),
                    TG_OK);
    if (err[0] != '\0') {
        fprintf(stderr, "import: %s\n", err);
    }
    CU_ASSERT_EQUAL(rows_of(&im, "usage.csv"), 3);
    /* the keys authenticate by the same hashes; the revoked stays so */
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    hash_of("sk-live-1", h);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h, &k), TG_OK);
    CU_ASSERT_EQUAL(pdp_key_state_at(&k, T0 + 5000), PDP_KEY_STATE_ACTIVE);
    hash_of("sk-revoked", h);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h, &k), TG_OK);
    CU_ASSERT_EQUAL(pdp_key_state_at(&k, T0 + 5000), PDP_KEY_STATE_REVOKED);
    CU_ASSERT_EQUAL(pdp_store_key_get_by_id(rd, "k4", &k), TG_OK);
    hash_of("sk-rotated-new", h);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, h, &k), TG_OK);
    CU_ASSERT_FALSE(k.superseded);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
    /* exported again: the same data files (decisions.pub is the state's
     * own key, which an import does not carry) */
    CU_ASSERT_EQUAL_FATAL(export_to("dst", "ex5", T0, &r2, err, sizeof(err)),
                          TG_OK);
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.files[i].name, PDP_EXPORT_PUB) != 0) {
            CU_ASSERT_TRUE(same_file("ex4", "ex5", r.files[i].name));
        }
    }
    CU_ASSERT_EQUAL(r2.n + 1, r.n);
    /* and a second import into that state is refused, naming what it holds */
    pdp_export_report_fini(&im);
    st     = open_store(sdir);
    err[0] = '\0';
    CU_ASSERT_EQUAL(pdp_import_run(st, sdir, edir, &im, err, sizeof(err)),
                    TG_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not empty"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "keys"));
    pdp_store_close(st);
    pdp_export_report_fini(&r);
    pdp_export_report_fini(&r2);
    pdp_export_report_fini(&im);
}

/* import_into imports g_top/name into a new state g_top/state. */
static tg_err
import_into(const char *name, const char *state, char *err, size_t cap)
{
    char              sdir[600];
    char              edir[600];
    pdp_store        *st;
    pdp_export_report im;
    tg_err            rv;
    const char       *db = NULL;
    uint64_t          n  = 0;

    snprintf(sdir, sizeof(sdir), "%s/%s", g_top, state);
    snprintf(edir, sizeof(edir), "%s/%s", g_top, name);
    st     = open_store(sdir);
    err[0] = '\0';
    rv     = pdp_import_run(st, sdir, edir, &im, err, cap);
    if (rv == TG_ECORRUPT || rv == TG_EVERSION) {
        /* an export refused by its checks writes nothing (a row that does
         * not parse comes after the files before it were written) */
        CU_ASSERT_EQUAL(pdp_store_import_empty(st, &db, &n), TG_OK);
    }
    pdp_export_report_fini(&im);
    pdp_store_close(st);
    return rv;
}

static void
test_import_refuses_a_nonempty_state(void)
{
    char              err[2048] = "";
    char              sdir[600];
    char              edir[600];
    pdp_store        *st;
    pdp_export_report im;
    pdp_tenant_change c = {"other", NULL, NULL, 0, T0, NULL};

    snprintf(sdir, sizeof(sdir), "%s/busy", g_top);
    st = open_store(sdir);
    CU_ASSERT_EQUAL(pdp_store_tenant_set(st, &c, NULL, NULL), TG_OK);
    snprintf(edir, sizeof(edir), "%s/ex4", g_top);
    CU_ASSERT_EQUAL(pdp_import_run(st, sdir, edir, &im, err, sizeof(err)),
                    TG_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tenants database holds 1 record"));
    pdp_export_report_fini(&im);
    pdp_store_close(st);
}

/* copy_export copies g_top/ex4 to g_top/name with cp -r. */
static void
copy_export(const char *name)
{
    char cmd[1400];

    snprintf(cmd, sizeof(cmd), "cp -r '%s/ex4' '%s/%s'", g_top, g_top, name);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

static void
test_import_names_a_changed_file(void)
{
    char  err[2048];
    char  path[900];
    FILE *f;

    copy_export("tampered");
    snprintf(path, sizeof(path), "%s/tampered/quotas.jsonl", g_top);
    f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 30, SEEK_SET);
    fputc('X', f);
    fclose(f);
    CU_ASSERT_EQUAL(import_into("tampered", "s_tampered", err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tampered/quotas.jsonl does not "
                                       "match manifest.json"));
    /* a file the manifest does not name is refused too */
    copy_export("extra");
    snprintf(path, sizeof(path), "%s/extra/bundles/2/sneaky.json", g_top);
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{}\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(import_into("extra", "s_extra", err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bundles/2/sneaky.json is not named"));
}

/* replace_in rewrites the first from in text (len bytes) with to, of the
 * same length. */
static void
replace_in(char *text, const char *from, const char *to)
{
    char *at = strstr(text, from);

    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    CU_ASSERT_EQUAL_FATAL(strlen(from), strlen(to));
    memcpy(at, to, strlen(to));
}

static void
write_all(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void
test_import_refuses_a_log_that_does_not_verify(void)
{
    char    err[2048];
    char    path[900];
    char    mpath[900];
    char    old_hex[2 * TG_SHA256_LEN + 1];
    char    new_hex[2 * TG_SHA256_LEN + 1];
    uint8_t sha[TG_SHA256_LEN];
    size_t  len;
    size_t  mlen;
    char   *text;
    char   *manifest;

    /* A record changed and the manifest made to match: only the chain and
     * its signatures can tell. */
    copy_export("forged");
    snprintf(path, sizeof(path), "%s/forged/decisions.jsonl", g_top);
    snprintf(mpath, sizeof(mpath), "%s/forged/manifest.json", g_top);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    tg_sha256(text, len, sha);
    tg_hex(sha, TG_SHA256_LEN, old_hex);
    replace_in(text, "\"status\":200", "\"status\":201");
    tg_sha256(text, len, sha);
    tg_hex(sha, TG_SHA256_LEN, new_hex);
    write_all(path, text, len);
    manifest = slurp(mpath, &mlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(manifest);
    replace_in(manifest, old_hex, new_hex);
    write_all(mpath, manifest, mlen);
    free(text);
    free(manifest);
    CU_ASSERT_EQUAL(import_into("forged", "s_forged", err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "decisions.jsonl"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not verify"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "record 1"));
}

/* forge changes from to to (same length) in g_top/name/file and makes
 * the manifest match. */
static void
forge(const char *name, const char *file, const char *from, const char *to)
{
    char    path[900];
    char    mpath[900];
    char    old_hex[2 * TG_SHA256_LEN + 1];
    char    new_hex[2 * TG_SHA256_LEN + 1];
    uint8_t sha[TG_SHA256_LEN];
    size_t  len;
    size_t  mlen;
    char   *text;
    char   *manifest;

    copy_export(name);
    snprintf(path, sizeof(path), "%s/%s/%s", g_top, name, file);
    snprintf(mpath, sizeof(mpath), "%s/%s/manifest.json", g_top, name);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    tg_sha256(text, len, sha);
    tg_hex(sha, TG_SHA256_LEN, old_hex);
    replace_in(text, from, to);
    tg_sha256(text, len, sha);
    tg_hex(sha, TG_SHA256_LEN, new_hex);
    write_all(path, text, len);
    manifest = slurp(mpath, &mlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(manifest);
    replace_in(manifest, old_hex, new_hex);
    write_all(mpath, manifest, mlen);
    free(text);
    free(manifest);
}

static void
test_import_names_a_bad_row(void)
{
    char err[2048];

    /* k2 is the second key row (keys by id) */
    forge("badrow", "keys.jsonl", "\"status\":\"revoked\"",
          "\"status\":\"retired\"");
    CU_ASSERT_EQUAL(import_into("badrow", "s_badrow", err, sizeof(err)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "badrow/keys.jsonl:2: \"status\" is "
                                       "\"retired\": it must be active or "
                                       "revoked"));
    /* a usage row: the column is named */
    forge("badcsv", "usage.csv", ",200,", ",2x0,");
    CU_ASSERT_EQUAL(import_into("badcsv", "s_badcsv", err, sizeof(err)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "badcsv/usage.csv:2: status is not "
                                       "valid"));
}

/* drop_pub removes decisions.pub from g_top/name and its manifest: the
 * decision log is then imported without its signatures checked. */
static void
drop_pub(const char *name)
{
    char   path[900];
    size_t len;
    char  *text;
    char  *out;
    cJSON *m;
    cJSON *files;
    int    n;

    snprintf(path, sizeof(path), "%s/%s/%s", g_top, name, PDP_EXPORT_PUB);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/%s/%s", g_top, name, PDP_EXPORT_MANIFEST);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    m     = cJSON_ParseWithLength(text, len);
    files = cJSON_GetObjectItemCaseSensitive(m, "files");
    n     = cJSON_GetArraySize(files);
    for (int i = 0; i < n; i++) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(files, i), "name");
        if (cJSON_IsString(nm) &&
            strcmp(nm->valuestring, PDP_EXPORT_PUB) == 0) {
            cJSON_DeleteItemFromArray(files, i);
            break;
        }
    }
    CU_ASSERT_EQUAL(cJSON_GetArraySize(files), n - 1);
    out = cJSON_Print(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    write_all(path, out, strlen(out));
    free(out);
    cJSON_Delete(m);
    free(text);
}

/* names_in counts the names dir holds; -1 when it is not there. */
static int
names_in(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    int            n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(d);
    return n;
}

/* import_fails_clean imports g_top/lastbad into sdir, which fails on the
 * first row of decisions.jsonl, the last file imported. */
static void
import_fails_clean(const char *sdir)
{
    char              err[2048];
    char              edir[600];
    pdp_export_report im;

    snprintf(edir, sizeof(edir), "%s/lastbad", g_top);
    CU_ASSERT_EQUAL(
        pdp_import_into(sdir, 16, NULL, 0, edir, &im, err, sizeof(err)),
        TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lastbad/decisions.jsonl:1: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nothing was kept"));
    pdp_export_report_fini(&im);
}

static void
test_import_fails_whole(void)
{
    char              err[2048];
    char              sdir[600];
    char              edir[600];
    pdp_export_report im;
    pdp_store        *st;
    const char       *db = NULL;
    uint64_t          n  = 0;

    /* a row of the last file (decisions.jsonl) that does not parse, once
     * every other file would have been written */
    forge("lastbad", "decisions.jsonl", "\"request_id\":", "\"request_xx\":");
    drop_pub("lastbad");
    /* a state directory the import makes (and its parent): both go */
    snprintf(sdir, sizeof(sdir), "%s/s_made/state", g_top);
    import_fails_clean(sdir);
    snprintf(sdir, sizeof(sdir), "%s/s_made", g_top);
    CU_ASSERT_EQUAL(names_in(sdir), -1);
    /* an empty directory stays, empty */
    snprintf(sdir, sizeof(sdir), "%s/s_empty", g_top);
    CU_ASSERT_EQUAL_FATAL(mkdir(sdir, 0700), 0);
    import_fails_clean(sdir);
    CU_ASSERT_EQUAL(names_in(sdir), 0);
    /* an empty store keeps its files, and stays empty */
    snprintf(sdir, sizeof(sdir), "%s/s_store", g_top);
    pdp_store_close(open_store(sdir));
    CU_ASSERT_EQUAL(names_in(sdir), 2);
    import_fails_clean(sdir);
    CU_ASSERT_EQUAL(names_in(sdir), 2);
    st = open_store(sdir);
    CU_ASSERT_EQUAL(pdp_store_import_empty(st, &db, &n), TG_OK);
    pdp_store_close(st);
    /* a failure once writing started (a key id given twice: only the
     * store can tell; the tenants before it were written) is undone too:
     * the store is put back as it was */
    forge("twice", "keys.jsonl", "\"id\":\"k2\"", "\"id\":\"k1\"");
    snprintf(edir, sizeof(edir), "%s/twice", g_top);
    CU_ASSERT_EQUAL(
        pdp_import_into(sdir, 16, NULL, 0, edir, &im, err, sizeof(err)),
        TG_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "twice/keys.jsonl:2: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nothing was kept"));
    pdp_export_report_fini(&im);
    CU_ASSERT_EQUAL(names_in(sdir), 2);
    st = open_store(sdir);
    CU_ASSERT_EQUAL(pdp_store_import_empty(st, &db, &n), TG_OK);
    pdp_store_close(st);
    /* and a good import goes into each afterwards */
    snprintf(edir, sizeof(edir), "%s/ex4", g_top);
    CU_ASSERT_EQUAL(
        pdp_import_into(sdir, 16, NULL, 0, edir, &im, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(names_in(sdir), 2);
    pdp_export_report_fini(&im);
    snprintf(sdir, sizeof(sdir), "%s/s_empty", g_top);
    CU_ASSERT_EQUAL(
        pdp_import_into(sdir, 16, NULL, 0, edir, &im, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(rows_of(&im, "usage.csv"), 3);
    pdp_export_report_fini(&im);
}

static void
test_import_refuses_an_unknown_version(void)
{
    char   err[2048];
    char   path[900];
    size_t len;
    char  *text;
    char  *at;
    FILE  *f;

    copy_export("v2");
    snprintf(path, sizeof(path), "%s/v2/manifest.json", g_top);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    at = strstr(text, "\"format_version\":\t1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    at[strlen("\"format_version\":\t")] = '2';
    f                                   = fopen(path, "wb");
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    CU_ASSERT_EQUAL(import_into("v2", "s_v2", err, sizeof(err)), TG_EVERSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "format_version 2 is not one this "
                                       "tollgate-pdp reads"));
}

static void
test_since_keeps_the_recent_part(void)
{
    pdp_export_report r;
    pdp_export_report r2;
    pdp_export_report im;
    char              err[2048] = "";
    char              sdir[600];
    char              edir[600];
    char              path[900];
    size_t            len;
    char             *text;
    pdp_store        *st;

    g_since_ms = T0 + 101; /* the second and third request */
    CU_ASSERT_EQUAL_FATAL(export_to("src", "since", T0, &r, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(rows_of(&r, "usage.csv"), 2);
    CU_ASSERT_EQUAL(rows_of(&r, "admin_audit.jsonl"), 0); /* older */
    CU_ASSERT_EQUAL(rows_of(&r, "tenants.jsonl"), 2);     /* whole */
    /* decision records go by when they settled: now, after since */
    CU_ASSERT_EQUAL(rows_of(&r, "decisions.jsonl"), 5);
    snprintf(path, sizeof(path), "%s/since/manifest.json", g_top);
    text = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, "\"since\":\t\"2025-12-01T00:00:00.101Z\""));
    free(text);
    /* it imports, and exports again (with the same --since) the same */
    snprintf(sdir, sizeof(sdir), "%s/s_since", g_top);
    snprintf(edir, sizeof(edir), "%s/since", g_top);
    st = open_store(sdir);
    CU_ASSERT_EQUAL(pdp_import_run(st, sdir, edir, &im, err, sizeof(err)),
                    TG_OK);
    pdp_store_close(st);
    CU_ASSERT_EQUAL_FATAL(
        export_to("s_since", "since2", T0, &r2, err, sizeof(err)), TG_OK);
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.files[i].name, PDP_EXPORT_PUB) != 0) {
            CU_ASSERT_TRUE(same_file("since", "since2", r.files[i].name));
        }
    }
    g_since_ms = 0;
    pdp_export_report_fini(&r);
    pdp_export_report_fini(&r2);
    pdp_export_report_fini(&im);
}

static void
test_export_refuses_a_nonempty_dir(void)
{
    pdp_export_report r;
    char              err[2048] = "";

    CU_ASSERT_EQUAL(export_to("src", "ex4", T0, &r, err, sizeof(err)),
                    TG_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not empty"));
    pdp_export_report_fini(&r);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"export is byte-stable", test_export_is_byte_stable},
        {"export holds every record", test_export_holds_every_record},
        {"import round-trips", test_import_round_trips},
        {"import refuses a non-empty state",
         test_import_refuses_a_nonempty_state},
        {"import names a changed file", test_import_names_a_changed_file},
        {"import refuses a log that does not verify",
         test_import_refuses_a_log_that_does_not_verify},
        {"import names a bad row", test_import_names_a_bad_row},
        {"import fails whole", test_import_fails_whole},
        {"import refuses an unknown version",
         test_import_refuses_an_unknown_version},
        {"--since keeps the recent part", test_since_keeps_the_recent_part},
        {"export refuses a non-empty dir", test_export_refuses_a_nonempty_dir},
        {NULL, NULL}};

    return tg_unit_run("pdp.migrate.export", cases);
}
