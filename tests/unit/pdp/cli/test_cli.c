/* test_cli.c - pdp.cli: the commands operators type, their output and
 * exit codes, and that they work against a running `serve`: keys (with
 * labels), tenants, policy history and the errors of `reload`. */
#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pdp_cli.h"
#include "pdp_history_cli.h"
#include "pdp_store.h"
#include "pdp_test_cli.h"
#include "pdp_test_util.h"
#include "pdp_wire.h"
#include "tg_hash.h"
#include "tg_unit.h"

static char g_dir[512];
static char g_cfg[768];
static char g_out[16384];
static char g_err[4096];

static const char *const g_tenants[] = {"acme",    "exp",  "t",     "lab",
                                        "nolabel", "beta", "delta", "gamma",
                                        "rot",     "live", NULL};

/* run executes one command line (NULL-terminated words) in-process. */
static int
run(const char *first, ...)
{
    char   *argv[32];
    int     argc = 0;
    va_list ap;

    argv[argc++] = "tollgate-pdp";
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31;
         a             = va_arg(ap, const char *)) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return pdp_test_cli(argc, argv, g_out, sizeof(g_out), g_err, sizeof(g_err));
}

static bool
all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[n] == '\0';
}

/* create_key runs keys create --format json and copies out id and key. */
static int
create_key(const char *tenant, const char *models, char *id, char *key)
{
    cJSON *doc;
    int    rc = models != NULL
                    ? run("keys", "create", "--config", g_cfg, "--tenant", tenant,
                          "--models", models, "--format", "json", NULL)
                    : run("keys", "create", "--config", g_cfg, "--tenant", tenant,
                          "--format=json", NULL);

    if (rc != 0 || (doc = cJSON_Parse(g_out)) == NULL) {
        return rc != 0 ? rc : -1;
    }
    snprintf(id, 64, "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(doc, "id")));
    snprintf(key, 128, "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(doc, "key")));
    cJSON_Delete(doc);
    return 0;
}

static void
test_create_text_shows_key_once(void)
{
    const char *k;

    CU_ASSERT_EQUAL_FATAL(run("keys", "create", "--config", g_cfg, "--tenant",
                              "acme", "--name", "ci-bot", "--models",
                              "gpt-4o-mini, gpt-4o", NULL),
                          0);
    k = strstr(g_out, "sk-tg-");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT(strspn(k + 6, "0123456789abcdef") == 48);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "cannot be shown again"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "key_"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "gpt-4o-mini, gpt-4o"));
}

static void
test_create_json_key_works_and_only_hash_stored(void)
{
    char              id[64];
    char              key[128];
    char              path[1024];
    char             *data;
    long              size;
    FILE             *f;
    pdp_store        *st = NULL;
    pdp_store_reader *rd = NULL;
    pdp_key           k;
    uint8_t           hash[TG_SHA256_LEN];
    char              msg[512];

    CU_ASSERT_EQUAL_FATAL(create_key("beta", "gpt-4o", id, key), 0);
    CU_ASSERT(strncmp(key, "sk-tg-", 6) == 0 && all_hex(key + 6, 48));
    CU_ASSERT(strncmp(id, "key_", 4) == 0 && all_hex(id + 4, 16));

    /* The printed key authenticates as the printed id... */
    snprintf(path, sizeof(path), "%s/state", g_dir);
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, path, 4, msg, sizeof(msg)),
                          TG_OK);
    pdp_store_reader_create(st, &rd);
    tg_sha256(key, strlen(key), hash);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_get(rd, hash, &k), TG_OK);
    CU_ASSERT_STRING_EQUAL(k.id, id);
    CU_ASSERT_STRING_EQUAL(k.tenant, "beta");
    CU_ASSERT_EQUAL(k.n_models, 1);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);

    /* ...and the key itself is nowhere in the database file. */
    snprintf(path, sizeof(path), "%s/state/data.mdb", g_dir);
    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    data = malloc((size_t)size);
    CU_ASSERT_EQUAL_FATAL(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    CU_ASSERT_PTR_NULL(memmem(data, (size_t)size, key + 6, 48));
    CU_ASSERT_PTR_NOT_NULL(memmem(data, (size_t)size, id, strlen(id)));
    free(data);
}

static void
test_list_never_shows_keys(void)
{
    char   id[64];
    char   key[128];
    cJSON *doc;
    cJSON *keys;
    bool   found = false;

    CU_ASSERT_EQUAL_FATAL(create_key("gamma", NULL, id, key), 0);
    CU_ASSERT_EQUAL_FATAL(run("keys", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, id));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "gamma"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "sk-tg-"));
    CU_ASSERT_EQUAL_FATAL(
        run("keys", "list", "--config", g_cfg, "--format", "json", NULL), 0);
    CU_ASSERT_PTR_NULL(strstr(g_out, "sk-tg-"));
    doc  = cJSON_Parse(g_out);
    keys = cJSON_GetObjectItem(doc, "keys");
    CU_ASSERT_FATAL(cJSON_IsArray(keys));
    for (cJSON *k = keys->child; k != NULL; k = k->next) {
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(k, "key"));
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(k, "hash"));
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(k, "id")), id) ==
            0) {
            found = true;
            CU_ASSERT_STRING_EQUAL(
                cJSON_GetStringValue(cJSON_GetObjectItem(k, "status")),
                "active");
        }
    }
    CU_ASSERT(found);
    cJSON_Delete(doc);
}

static void
test_revoke(void)
{
    char id[64];
    char key[128];

    CU_ASSERT_EQUAL_FATAL(create_key("delta", NULL, id, key), 0);
    CU_ASSERT_EQUAL(run("keys", "revoke", "--config", g_cfg, id, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Revoked"));
    CU_ASSERT_EQUAL(run("keys", "revoke", "--config", g_cfg, id, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "already revoked"));
    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "revoked"));
    CU_ASSERT_EQUAL(
        run("keys", "revoke", "--config", g_cfg, "key_0000000000000000", NULL),
        1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no key with id"));
    CU_ASSERT_EQUAL(run("keys", "revoke", "--config", g_cfg, NULL), 2);
}

static cJSON *
show_json(const char *id)
{
    if (run("keys", "show", "--config", g_cfg, id, "--format", "json", NULL) !=
        0) {
        return NULL;
    }
    return cJSON_Parse(g_out);
}

static const char *
jstr(const cJSON *j, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, k));

    return s != NULL ? s : "(none)";
}

static void
test_expiry_flags(void)
{
    char   id[64];
    cJSON *doc;

    CU_ASSERT_EQUAL_FATAL(run("keys", "create", "--config", g_cfg, "--tenant",
                              "exp", "--expires-in", "90d", "--format", "json",
                              NULL),
                          0);
    doc = cJSON_Parse(g_out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    snprintf(id, sizeof(id), "%s", jstr(doc, "id"));
    CU_ASSERT(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "expires_ms")) >
              (double)time(NULL) * 1000 + 89.0 * 86400000);
    cJSON_Delete(doc);
    doc = show_json(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(jstr(doc, "status"), "active");
    CU_ASSERT_PTR_NOT_NULL(strstr(jstr(doc, "expires"), "Z"));
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "exp",
                        "--expires", "2999-01-31", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "expires:  2999-01-31T00:00:00Z"));
    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "EXPIRES"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "2999-01-31T00:00:00Z"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "never"));
    /* Bad durations and dates: usage errors naming the value. */
    static const char *const bad_in[] = {"90", "0d",   "-1d",          "12x",
                                         "d",  "1.5h", "99999999999d", NULL};
    for (int i = 0; bad_in[i] != NULL; i++) {
        CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant",
                            "exp", "--expires-in", bad_in[i], NULL),
                        2);
        CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not a duration"));
    }
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "exp",
                        "--expires", "2020-01-01", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "not in the future"));
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "exp",
                        "--expires", "tomorrow", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not a date"));
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "exp",
                        "--expires", "2999-01-01", "--expires-in", "1d", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "not both"));
}

static void
test_show_and_rotate(void)
{
    char   id[64];
    char   key[128];
    char   key2[128];
    cJSON *doc;

    CU_ASSERT_EQUAL_FATAL(create_key("rot", "gpt-4o", id, key), 0);
    CU_ASSERT_EQUAL(run("keys", "show", "--config", g_cfg, id, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, id));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "status:   active"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "expires:  never"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "sk-tg-"));
    CU_ASSERT_EQUAL(
        run("keys", "rotate", "--config", g_cfg, id, "--format", "json", NULL),
        0);
    doc = cJSON_Parse(g_out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(jstr(doc, "id"), id);
    CU_ASSERT_STRING_EQUAL(jstr(doc, "tenant"), "rot");
    CU_ASSERT_STRING_EQUAL(jstr(doc, "status"), "rotated-grace");
    snprintf(key2, sizeof(key2), "%s", jstr(doc, "key"));
    CU_ASSERT_EQUAL(strncmp(key2, "sk-tg-", 6), 0);
    CU_ASSERT_STRING_NOT_EQUAL(key2, key);
    CU_ASSERT(cJSON_GetNumberValue(
                  cJSON_GetObjectItem(doc, "previous_valid_until_ms")) >
              (double)time(NULL) * 1000 + 23.0 * 3600000);
    cJSON_Delete(doc);
    doc = show_json(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(jstr(doc, "status"), "rotated-grace");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(doc, "key"));
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(doc, "hash"));
    cJSON_Delete(doc);
    /* Rotated once more with no grace: the id is listed once, active. */
    CU_ASSERT_EQUAL(
        run("keys", "rotate", "--config", g_cfg, id, "--grace", "0", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "stopped working"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "sk-tg-"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "cannot be shown again"));
    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, id));
    CU_ASSERT_PTR_NULL(strstr(strstr(g_out, id) + 1, id));
    CU_ASSERT_EQUAL(
        run("keys", "rotate", "--config", g_cfg, id, "--grace", "2w", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not a duration"));
    CU_ASSERT_EQUAL(run("keys", "rotate", "--config", g_cfg, NULL), 2);
    /* Revoked: shown as such, cannot be rotated. */
    CU_ASSERT_EQUAL(run("keys", "revoke", "--config", g_cfg, id, NULL), 0);
    doc = show_json(id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(jstr(doc, "status"), "revoked");
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("keys", "rotate", "--config", g_cfg, id, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is revoked"));
    /* Unknown ids exit 1. */
    CU_ASSERT_EQUAL(
        run("keys", "show", "--config", g_cfg, "key_0000000000000000", NULL),
        1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no key with id"));
    CU_ASSERT_EQUAL(
        run("keys", "rotate", "--config", g_cfg, "key_0000000000000000", NULL),
        1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no key with id"));
}

static void
test_usage_errors_exit_2(void)
{
    const char *bad;

    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, "--bogus", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--bogus"));
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--tenant"));
    CU_ASSERT_EQUAL(
        run("keys", "create", "--config", g_cfg, "--tenant", "has space", NULL),
        2);
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "t",
                        "--models", "gpt-4o,claude-9", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "\"claude-9\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "gpt-4o-mini")); /* known ones */
    CU_ASSERT_EQUAL(
        run("keys", "list", "--config", g_cfg, "--format", "xml", NULL), 2);
    CU_ASSERT_EQUAL(run("keys", "frobnicate", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "expected create"));
    CU_ASSERT_EQUAL(run("keys", NULL), 2);
    CU_ASSERT_EQUAL(run("tenants", "--help", NULL), 0);
    CU_ASSERT_EQUAL(run("budgets", "set", "--config", g_cfg, "tenant:t",
                        "--limit-usd", "inf", "--window", "daily", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not a number"));
    CU_ASSERT_EQUAL(run("launch", NULL), 2);
    unsetenv("TOLLGATE_CONFIG");
    CU_ASSERT_EQUAL(run("keys", "list", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "TOLLGATE_CONFIG"));
    /* A broken config is reported verbatim, with its position. */
    bad =
        tg_unit_write(g_dir, "bad.json", "{\n  \"pdp\": {\"lisen\": []}\n}\n");
    CU_ASSERT_EQUAL(run("spend", "--config", bad, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "bad.json:2:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "lisen"));
}

static void
test_help_and_env_config(void)
{
    CU_ASSERT_EQUAL(run("--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "keys create"));
    CU_ASSERT_EQUAL(run("keys", "create", "--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "--tenant"));
    CU_ASSERT_EQUAL(run("spend", "-h", NULL), 0);
    CU_ASSERT_EQUAL(run("serve", "--help", NULL), 0);
    setenv("TOLLGATE_CONFIG", g_cfg, 1);
    CU_ASSERT_EQUAL(run("keys", "list", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "acme"));
    unsetenv("TOLLGATE_CONFIG");
}

static void
test_spend_totals(void)
{
    const char  *dir = tg_unit_tmpdir("cli-spend");
    const char  *cfg = pdp_test_config(dir, 4);
    char         state[600];
    char         msg[512];
    pdp_store   *st = NULL;
    tg_usage     u;
    tg_usage_ack ack;
    cJSON       *doc;
    cJSON       *total;

    CU_ASSERT_EQUAL(run("spend", "--config", cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "No usage"));
    snprintf(state, sizeof(state), "%s/state", dir);
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, state, 4, msg, sizeof(msg)),
                          TG_OK);
    memset(&u, 0, sizeof(u));
    strcpy(u.key_id, "key_x");
    strcpy(u.tenant_id, "acme");
    strcpy(u.model, "gpt-4o-mini");
    u.prompt_tokens     = 1000;
    u.completion_tokens = 500;
    strcpy(u.request_id, "s1");
    pdp_store_usage_settle(st, &u, 435, &ack);
    strcpy(u.request_id, "s2");
    pdp_store_usage_settle(st, &u, 1234567, &ack);
    pdp_store_close(st);

    CU_ASSERT_EQUAL_FATAL(run("spend", "--config", cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "acme"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "key_x"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "TOTAL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "1.235002")); /* 1,235,002 micro */
    CU_ASSERT_EQUAL_FATAL(
        run("spend", "--config", cfg, "--format", "json", NULL), 0);
    doc   = cJSON_Parse(g_out);
    total = cJSON_GetObjectItem(doc, "total");
    CU_ASSERT_PTR_NOT_NULL_FATAL(total);
    CU_ASSERT_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(total, "requests")), 2);
    CU_ASSERT_EQUAL(
        cJSON_GetNumberValue(cJSON_GetObjectItem(total, "completion_tokens")),
        1000);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetStringValue(cJSON_GetObjectItem(total, "cost_usd")),
        "1.235002");
    cJSON_Delete(doc);
}

/* decide_over_nng asks the running server about key; returns the status. */
static int
decide_over_nng(const char *url, const char *key)
{
    static pdp_req req;
    static pdp_rep rep;
    nng_socket     s;
    tg_buf         b;
    char          *buf = NULL;
    size_t         sz  = 0;
    char           err[256];
    int            status = -1;

    memset(&req, 0, sizeof(req));
    req.kind = PDP_REQ_DECIDE;
    tg_sha256(key, strlen(key), req.u.decide.key_hash);
    req.u.decide.endpoint = TG_EP_CHAT_COMPLETIONS;
    strcpy(req.u.decide.model, "gpt-4o");
    tg_buf_init(&b, 0);
    if (nng_req0_open(&s) != 0) {
        return -1;
    }
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    if (pdp_wire_encode_request(&req, &b) == TG_OK &&
        nng_dial(s, url, NULL, 0) == 0 && nng_send(s, b.data, b.len, 0) == 0 &&
        nng_recv(s, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
        if (pdp_wire_decode_reply(buf, sz, 0, &rep, err, sizeof(err)) ==
                TG_OK &&
            rep.kind == PDP_REP_DECISION) {
            status = (int)rep.u.decision.status;
        }
        nng_free(buf, sz);
    }
    tg_buf_fini(&b);
    nng_close(s);
    return status;
}

static void
test_key_labels(void)
{
    cJSON       *doc;
    const cJSON *labels;
    char         id[64];

    CU_ASSERT_EQUAL_FATAL(run("keys", "create", "--config", g_cfg, "--tenant",
                              "lab", "--label", "team=search", "--label",
                              "env=ci", "--label", "team=ads", "--format",
                              "json", NULL),
                          0);
    doc    = cJSON_Parse(g_out);
    labels = cJSON_GetObjectItem(doc, "labels");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetStringValue(cJSON_GetObjectItem(labels, "team")), "ads");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetStringValue(cJSON_GetObjectItem(labels, "env")), "ci");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(labels), 2); /* last team= wins */
    snprintf(id, sizeof(id), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(doc, "id")));
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "LABELS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "team=ads,env=ci"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, id));

    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "t",
                        "--label", "nolabel", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "NAME=VALUE"));
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "t",
                        "--label", "bad name=x", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "\"bad name\""));
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "t",
                        "--label", "empty=", NULL),
                    2);
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "t",
                        "--label", "ctl=a\tb", NULL),
                    2);
}

static void
test_tenants_set_and_list(void)
{
    char   saved[sizeof(g_cfg)];
    cJSON *doc;
    cJSON *t;

    /* A state directory of its own: main() made tenants in the shared one. */
    snprintf(saved, sizeof(saved), "%s", g_cfg);
    snprintf(g_cfg, sizeof(g_cfg), "%s",
             pdp_test_config(tg_unit_tmpdir("cli-tenants"), 4));

    CU_ASSERT_EQUAL(run("tenants", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "No tenants yet"));
    CU_ASSERT_EQUAL(run("tenants", "set", "--config", g_cfg, "acme", "--tier",
                        "pro", "--label", "region=eu", "--label", "team=x",
                        NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Created tenant acme: tier pro, "
                                         "labels region=eu,team=x"));
    /* Only what is named changes; NAME= removes a label. */
    CU_ASSERT_EQUAL(run("tenants", "set", "--config", g_cfg, "acme", "--label",
                        "team=", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Updated tenant acme: tier pro, "
                                         "labels region=eu\n"));
    CU_ASSERT_EQUAL(run("tenants", "set", "--config", g_cfg, "beta", NULL), 0);
    CU_ASSERT_EQUAL(
        run("tenants", "list", "--config", g_cfg, "--format", "json", NULL), 0);
    doc = cJSON_Parse(g_out);
    CU_ASSERT_EQUAL_FATAL(
        cJSON_GetArraySize(cJSON_GetObjectItem(doc, "tenants")), 2);
    t = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "tenants"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(t, "id")),
                           "acme");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(t, "tier")),
                           "pro");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(
                               cJSON_GetObjectItem(t, "labels"), "region")),
                           "eu");
    t = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "tenants"), 1);
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(t, "tier")));
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("tenants", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "TENANT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "region=eu"));

    CU_ASSERT_EQUAL(run("tenants", "set", "--config", g_cfg, NULL), 2);
    CU_ASSERT_EQUAL(run("tenants", "set", "--config", g_cfg, "bad id", NULL),
                    2);
    CU_ASSERT_EQUAL(run("tenants", "set", "--config", g_cfg, "acme", "--tier",
                        "has space", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--tier"));
    CU_ASSERT_EQUAL(run("tenants", "frob", NULL), 2);
    snprintf(g_cfg, sizeof(g_cfg), "%s", saved);
}

static void
test_policy_commands_without_serve(void)
{
    const char *dir = tg_unit_tmpdir("cli-policy");
    char        text[2048];
    char        cfg[768];

    CU_ASSERT_EQUAL(run("--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "reload"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "policy history"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "tenants set"));
    /* The policy engine's commands are reachable. */
    CU_ASSERT_EQUAL(run("check", "--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "check"));
    CU_ASSERT_EQUAL(run("test", "--help", NULL), 0);
    CU_ASSERT_EQUAL(run("eval", "--help", NULL), 0);

    CU_ASSERT_EQUAL(run("policy", "history", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "No policy bundle has been "
                                         "activated"));
    CU_ASSERT_EQUAL(
        run("policy", "history", "--config", g_cfg, "--format", "json", NULL),
        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "{\"history\":[]}"));
    CU_ASSERT_EQUAL(run("policy", "nope", NULL), 2);

    /* reload needs the admin listener, and says so. */
    CU_ASSERT_EQUAL(run("reload", "--config", g_cfg, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "pdp.admin_listen is not set"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "SIGHUP"));
    /* Nothing listens on port 1: exit 1 and ask whether serve runs. */
    snprintf(text, sizeof(text),
             "{\"pdp\": {\"listen\": [\"ipc://%s/p.sock\"], \"state_dir\": "
             "\"state\", \"admin_listen\": \"127.0.0.1:1\"},\n"
             " \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "
             "\"ipc://%s/p.sock\", \"spool_dir\": \"spool\"},\n%s}\n",
             dir, dir, PDP_TEST_DEPLOYMENTS);
    snprintf(cfg, sizeof(cfg), "%s", tg_unit_write(dir, "t.json", text));
    /* Without serve there is no admin token in the state directory. */
    CU_ASSERT_EQUAL(run("reload", "--config", cfg, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no admin token"));
    setenv("TOLLGATE_ADMIN_TOKEN", "tga-test", 1);
    CU_ASSERT_EQUAL(run("reload", "--config", cfg, NULL), 1);
    unsetenv("TOLLGATE_ADMIN_TOKEN");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "cannot reach the running "
                                         "tollgate-pdp at http://127.0.0.1:1"));
    CU_ASSERT_EQUAL(run("reload", "--config", cfg, "--allow-rollback=1", NULL),
                    2);
}

static void
test_serve_with_cli_alongside_then_sigterm(void)
{
    const char *bin = getenv("TG_BIN");
    const char *dir = tg_unit_tmpdir("cli-serve");
    const char *cfg = pdp_test_config(dir, 4);
    char        exe[1024];
    char        url[600];
    char        sock[600];
    char        id[64];
    char        key[128];
    int         status = -1;
    pid_t       pid;

    CU_ASSERT_PTR_NOT_NULL_FATAL(bin);
    snprintf(exe, sizeof(exe), "%s/bin/tollgate-pdp", bin);
    snprintf(url, sizeof(url), "ipc://%s/run/pdp.sock", dir);
    snprintf(sock, sizeof(sock), "%s/run/pdp.sock", dir);
    snprintf(g_cfg, sizeof(g_cfg), "%s", cfg);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        execl(exe, exe, "serve", "--config", cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    /* Keys created and revoked by another process take effect at once. */
    CU_ASSERT_EQUAL(run("tenants", "create", "--config", cfg, "live", NULL), 0);
    CU_ASSERT_EQUAL(create_key("live", "gpt-4o", id, key), 0);
    CU_ASSERT_EQUAL(decide_over_nng(url, key), 200);
    CU_ASSERT_EQUAL(run("keys", "revoke", "--config", cfg, id, NULL), 0);
    CU_ASSERT_EQUAL(decide_over_nng(url, key), 401);
    CU_ASSERT_EQUAL(run("spend", "--config", cfg, NULL), 0);

    kill(pid, SIGTERM);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);    /* clean stop, no leaks */
    CU_ASSERT_NOT_EQUAL(access(sock, F_OK), 0); /* socket file removed */
}

/* test_key_needs_tenant: a key for a tenant that was never created is
 * refused (a typo would make a tenant no budget or policy applies to). */
static void
test_key_needs_tenant(void)
{
    CU_ASSERT_EQUAL(
        run("keys", "create", "--config", g_cfg, "--tenant", "typo-co", NULL),
        1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "tenants create typo-co"));
    CU_ASSERT_EQUAL(
        run("tenants", "create", "--config", g_cfg, "typo-co", NULL), 0);
    CU_ASSERT_EQUAL(
        run("keys", "create", "--config", g_cfg, "--tenant", "typo-co", NULL),
        0);
}

static int
count_lines(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* A tenant's name is free text: control characters are refused where it
 * enters, and one stored by an older version (written to the store here)
 * must neither add a row nor drive the terminal in tenants show or in the
 * audit list table. */
static void
test_table_escapes_control_characters(void)
{
    static const char evil[] = "Evil\nSEQ forged row\x1b[2J\r";
    char              cfg[768], dir[512], state[600], err[256];
    pdp_store        *st = NULL;
    pdp_audit         a  = {.at_ms = 1};

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("cli-hostile"));
    snprintf(cfg, sizeof(cfg), "%s", pdp_test_config(dir, 4));
    CU_ASSERT_EQUAL(
        run("tenants", "create", "--config", cfg, "evil", "--name", evil, NULL),
        2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "control characters"));
    snprintf(state, sizeof(state), "%s/state", dir);
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, state, 4, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(
        pdp_store_tenant_set(
            st, &(pdp_tenant_change){.id = "evil", .name = evil, .now_ms = 1},
            NULL, NULL),
        TG_OK);
    snprintf(a.actor, sizeof(a.actor), "cli:old");
    snprintf(a.action, sizeof(a.action), "tenants.update");
    snprintf(a.target, sizeof(a.target), "tenant:evil");
    snprintf(a.detail, sizeof(a.detail),
             "{\"name\":\"Evil\\nSEQ forged row\\u001b[2J\\r\"}");
    CU_ASSERT_EQUAL(pdp_store_audit_add(st, &a), TG_OK);
    pdp_store_close(st);

    CU_ASSERT_EQUAL(run("tenants", "show", "--config", cfg, "evil", NULL), 0);
    CU_ASSERT_PTR_NULL(strchr(g_out, '\x1b'));
    CU_ASSERT_PTR_NULL(strchr(g_out, '\r'));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, " Evil\\nSEQ forged row\\x1b[2J"
                                         "\\r\n"));
    CU_ASSERT_EQUAL(run("audit", "list", "--config", cfg, NULL), 0);
    CU_ASSERT_PTR_NULL(strchr(g_out, '\x1b'));
    CU_ASSERT_EQUAL(count_lines(g_out), 2); /* header and one change */
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "name=Evil\\nSEQ forged row"
                                         "\\x1b[2J\\r"));
    /* JSON keeps the exact text. */
    CU_ASSERT_EQUAL(run("tenants", "show", "--config", cfg, "evil", "--format",
                        "json", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Evil\\nSEQ forged row\\u001b[2J"));
}

/* audit list shows a change's details whole (the last column is never
 * cut), so what was changed can be read without --format json. */
static void
test_audit_details_whole(void)
{
    char cfg[768];

    snprintf(cfg, sizeof(cfg), "%s",
             pdp_test_config(tg_unit_tmpdir("cli-audit"), 4));
    CU_ASSERT_EQUAL_FATAL(run("tenants", "set", "--config", cfg, "wide",
                              "--label", "region=europe-west-with-a-long-name",
                              "--label", "team=platform-engineering-core",
                              "--label",
                              "cost_center=cc-000000000000000000001234", NULL),
                          0);
    CU_ASSERT_EQUAL(run("audit", "list", "--config", cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "cc-000000000000000000001234"));
}

/* The parity of issue 11: what the API does, the command line does, with
 * the same rules. */
static void
test_tenants_disable_enable_delete(void)
{
    char  id[64];
    char  key[128];
    char  rev[128];
    char *line;

    CU_ASSERT_EQUAL(
        run("tenants", "create", "--config", g_cfg, "gamma-off", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(create_key("gamma-off", NULL, id, key), 0);
    CU_ASSERT_EQUAL(
        run("tenants", "disable", "--config", g_cfg, "gamma-off", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Disabled tenant gamma-off"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "tenant_disabled"));
    CU_ASSERT_EQUAL(run("tenants", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "STATUS"));
    line = strstr(g_out, "\ngamma-off ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "disabled"));
    CU_ASSERT_EQUAL(
        run("tenants", "enable", "--config", g_cfg, "gamma-off", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Enabled tenant gamma-off"));
    /* Refused while a key works: exit 1 and what to do. */
    CU_ASSERT_EQUAL(
        run("tenants", "delete", "--config", g_cfg, "gamma-off", NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, id));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "keys revoke"));
    CU_ASSERT_PTR_NULL(strstr(g_err, "HTTP")); /* no HTTP was involved */
    snprintf(rev, sizeof(rev), "%s", id);
    CU_ASSERT_EQUAL(run("keys", "revoke", "--config", g_cfg, rev, NULL), 0);
    CU_ASSERT_EQUAL(
        run("tenants", "delete", "--config", g_cfg, "gamma-off", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Deleted tenant:gamma-off"));
    CU_ASSERT_EQUAL(
        run("tenants", "show", "--config", g_cfg, "gamma-off", NULL), 1);
    CU_ASSERT_EQUAL(run("audit", "list", "--config", g_cfg, "--limit", "4",
                        "--format", "json", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"action\":\"tenants.delete\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"actor\":\"cli:"));
    /* An unknown subcommand names every one there is. */
    CU_ASSERT_EQUAL(run("tenants", "remove", "--config", g_cfg, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "create, show, update, set, list, "
                                         "disable, enable, delete, not "
                                         "remove"));
}

/* keys create takes the flags of budgets set and ratelimits set; a wrong
 * one leaves no key. */
static void
test_key_create_with_limits(void)
{
    cJSON *doc;
    int    before;

    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, "--tenant", "live",
                        "--format", "json", NULL),
                    0);
    doc    = cJSON_Parse(g_out);
    before = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "keys"));
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "live",
                        "--limit-usd", "2.50", "--window", "fortnightly",
                        "--rpm", "60", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--window \"fortnightly\""));
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "live",
                        "--rpm", "-1", NULL),
                    2);
    CU_ASSERT_EQUAL(run("keys", "create", "--config", g_cfg, "--tenant", "live",
                        "--models", "gpt-4o-mini", "--limit-usd", "2.50",
                        "--window", "daily", "--thresholds", "50,80", "--rpm",
                        "60", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "budget:   $2.500000 daily, deny; "
                                         "alerts at 50,80 %"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "60 requests/min"));
    CU_ASSERT_EQUAL(run("keys", "list", "--config", g_cfg, "--tenant", "live",
                        "--format", "json", NULL),
                    0);
    doc = cJSON_Parse(g_out);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "keys")),
                    before + 1);
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("budgets", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "2.500000"));
}

/* budgets set on a catalog with a model without a price: set, with a
 * warning on stderr that names it and says what requests will get. */
static void
test_budget_warns_unpriced(void)
{
    CU_ASSERT_EQUAL(run("budgets", "set", "tenant:beta", "--config", g_cfg,
                        "--limit-usd", "10", "--window", "monthly", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "warning:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "\"gpt-4o\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "403 model_unpriced"));
    CU_ASSERT_PTR_NULL(strstr(g_err, "\"gpt-4o-mini\""));
    CU_ASSERT_PTR_NULL(strstr(g_out, "warning")); /* not in the answer */
    CU_ASSERT_EQUAL(run("budgets", "set", "tenant:beta", "--config", g_cfg,
                        "--limit-usd", "10", "--window", "monthly", "--format",
                        "json", NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"warnings\":["));
}

/* unified_diff: policy diff's hunks are what diff -u prints: context of
 * 3 lines, removals before additions, separate hunks for far changes, a
 * missing final newline said. */
static char *
diff_of(const char *a, const char *b)
{
    char  *out = NULL;
    size_t len = 0;
    FILE  *f   = open_memstream(&out, &len);

    pdp_history_unified(f, "x", a, b);
    fclose(f);
    return out;
}

static void
test_unified_diff(void)
{
    char *d;

    d = diff_of("a\nb\n", "a\nb\n");
    CU_ASSERT_STRING_EQUAL(d, "");
    free(d);
    d = diff_of("1\n2\n3\n4\n5\n6\n7\n", "1\n2\n3\nfour\n5\n6\n7\n");
    CU_ASSERT_STRING_EQUAL(d, "--- a/x\n+++ b/x\n@@ -1,7 +1,7 @@\n 1\n 2\n 3\n"
                              "-4\n+four\n 5\n 6\n 7\n");
    free(d);
    d = diff_of("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
                "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve\n");
    CU_ASSERT_STRING_EQUAL(d, "--- a/x\n+++ b/x\n@@ -1,4 +1,4 @@\n-1\n+one\n"
                              " 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n"
                              "-12\n+twelve\n");
    free(d);
    d = diff_of("", "new\n");
    CU_ASSERT_STRING_EQUAL(d, "--- a/x\n+++ b/x\n@@ -0,0 +1,1 @@\n+new\n");
    free(d);
    d = diff_of("a\nb", "a\nc");
    CU_ASSERT_STRING_EQUAL(d, "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n"
                              "\\ No newline at end of file\n+c\n"
                              "\\ No newline at end of file\n");
    free(d);
}

static const tg_unit_case cases[] = {
    {"key_needs_tenant", test_key_needs_tenant},
    {"table_escapes_control_characters", test_table_escapes_control_characters},
    {"create_text_shows_key_once", test_create_text_shows_key_once},
    {"create_json_key_works_and_only_hash_stored",
     test_create_json_key_works_and_only_hash_stored},
    {"list_never_shows_keys", test_list_never_shows_keys},
    {"revoke", test_revoke},
    {"expiry_flags", test_expiry_flags},
    {"show_and_rotate", test_show_and_rotate},
    {"usage_errors_exit_2", test_usage_errors_exit_2},
    {"help_and_env_config", test_help_and_env_config},
    {"spend_totals", test_spend_totals},
    {"key_labels", test_key_labels},
    {"tenants_set_and_list", test_tenants_set_and_list},
    {"audit_details_whole", test_audit_details_whole},
    {"policy_commands_without_serve", test_policy_commands_without_serve},
    {"tenants_disable_enable_delete", test_tenants_disable_enable_delete},
    {"key_create_with_limits", test_key_create_with_limits},
    {"budget_warns_unpriced", test_budget_warns_unpriced},
    {"serve_with_cli_alongside_then_sigterm",
     test_serve_with_cli_alongside_then_sigterm},
    {"unified_diff", test_unified_diff},
    {NULL, NULL},
};

int
main(void)
{
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("cli"));
    snprintf(g_cfg, sizeof(g_cfg), "%s", pdp_test_config(g_dir, 4));
    /* A key names an existing tenant. */
    for (const char *const *t = g_tenants; *t != NULL; t++) {
        if (run("tenants", "create", "--config", g_cfg, *t, NULL) != 0) {
            fprintf(stderr, "cannot create tenant %s: %s", *t, g_err);
            return 1;
        }
    }
    return tg_unit_run("pdp.cli", cases);
}
