/* test_decisions.c - pdp.state.decisions: the decision log's evidence on
 * its own. A record chains to the one before it, a checkpoint signs the
 * head with the state directory's Ed25519 key, and the verifier accepts
 * the untouched stream and names the record of any change: a byte of a
 * record, a record dropped or swapped, a forged signature, another key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_decisions.h"
#include "tg_hash.h"
#include "tg_unit.h"

#define NREC 5

static char g_dir[512];
static char g_lines[NREC + 2][2048];
static int  g_n;
static char g_pem[PDP_DECISIONS_PEM_MAX];

/* make_log writes NREC records and a checkpoint after records 2 and 5. */
static void
make_log(void)
{
    pdp_signer *s = NULL;
    char        err[256];
    uint8_t     prev[TG_SHA256_LEN] = {0};
    tg_buf      body;
    tg_buf      rec;
    tg_buf      cp;

    CU_ASSERT_EQUAL_FATAL(pdp_signer_open(&s, g_dir, true, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_signer_public_pem(s, g_pem, sizeof(g_pem)),
                          TG_OK);
    tg_buf_init(&body, 0);
    tg_buf_init(&rec, 0);
    tg_buf_init(&cp, 0);
    g_n = 0;
    for (int i = 1; i <= NREC; i++) {
        tg_usage u;
        memset(&u, 0, sizeof(u));
        snprintf(u.request_id, sizeof(u.request_id), "req_%d", i);
        snprintf(u.key_id, sizeof(u.key_id), "key_%d", i);
        u.status                = 200;
        u.outcome.present       = true;
        u.outcome.verdict       = TG_VERDICT_ALLOW;
        u.outcome.capture_level = TG_CAPTURE_METADATA;
        u.outcome.n_meta        = 1;
        snprintf(u.outcome.meta[0].key, sizeof(u.outcome.meta[0].key), "team");
        snprintf(u.outcome.meta[0].value, sizeof(u.outcome.meta[0].value),
                 "\xff bad utf-8 \"quoted\"");
        CU_ASSERT_EQUAL_FATAL(
            pdp_decision_body(&u, NULL, 0, NULL, 0, 12, 1000 + i, &body),
            TG_OK);
        CU_ASSERT_EQUAL_FATAL(
            pdp_decision_chain((uint64_t)i, prev, body.data, body.len, &rec),
            TG_OK);
        snprintf(g_lines[g_n++], sizeof(g_lines[0]), "%.*s", (int)rec.len,
                 rec.data);
        tg_sha256(rec.data, rec.len, prev);
        if (i == 2 || i == NREC) {
            CU_ASSERT_EQUAL_FATAL(
                pdp_checkpoint_line(s, (uint64_t)i, prev, 5000 + i, &cp),
                TG_OK);
            snprintf(g_lines[g_n++], sizeof(g_lines[0]), "%.*s", (int)cp.len,
                     cp.data);
        }
    }
    tg_buf_fini(&body);
    tg_buf_fini(&rec);
    tg_buf_fini(&cp);
    pdp_signer_free(s);
}

/* verify runs lines[0..n) through the verifier; error gets its message. */
static bool
verify(char lines[][2048], int n, const char *pem, char *error, size_t cap)
{
    pdp_verify v;
    bool       ok = pdp_verify_begin(&v, pem, strlen(pem));

    for (int i = 0; ok && i < n; i++) {
        ok = pdp_verify_line(&v, lines[i], strlen(lines[i]));
    }
    ok = pdp_verify_end(&v) && ok && v.covered == NREC;
    snprintf(error, cap, "%s", v.error);
    return ok;
}

static void
test_untouched_verifies(void)
{
    char err[400];

    make_log(); /* the cases below use it */
    CU_ASSERT_TRUE(verify(g_lines, g_n, g_pem, err, sizeof(err)));
    /* Records are valid JSON starting with seq and prev, text scrubbed. */
    CU_ASSERT_EQUAL(strncmp(g_lines[0], "{\"seq\":1,\"prev\":\"0000", 21), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_lines[0], "\\\"quoted\\\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_lines[0], "\xef\xbf\xbd"));
    CU_ASSERT_PTR_NULL(strstr(g_lines[0], "\xff"));
}

static void
test_any_changed_byte_is_named(void)
{
    char copy[NREC + 2][2048];
    char err[400];

    /* Every byte of every line, one at a time. */
    for (int l = 0; l < g_n; l++) {
        bool cp       = strncmp(g_lines[l], "{\"checkpoint\"", 13) == 0;
        int  seq      = 0;
        char name[32] = "";
        sscanf(g_lines[l], cp ? "{\"checkpoint\":{\"seq\":%d" : "{\"seq\":%d",
               &seq);
        snprintf(name, sizeof(name), "%s %d", cp ? "checkpoint" : "record",
                 seq);
        for (size_t at = 0; at < strlen(g_lines[l]); at++) {
            memcpy(copy, g_lines, sizeof(copy));
            copy[l][at] = copy[l][at] == 'A' ? 'B' : 'A';
            if (verify(copy, g_n, g_pem, err, sizeof(err))) {
                CU_FAIL("a changed byte still verifies");
                fprintf(stderr, "line %d byte %zu: %s\n", l, at, copy[l]);
                return;
            }
            /* The message names the record (or, for a checkpoint, the
             * record it follows). */
            if (strstr(err, name) == NULL &&
                !(cp && strstr(err, "after record") != NULL)) {
                char also[32];
                snprintf(also, sizeof(also), "record %d", seq);
                if (strstr(err, also) == NULL) {
                    CU_FAIL("the failure does not name the record");
                    fprintf(stderr, "line %d byte %zu: %s\n", l, at, err);
                    return;
                }
            }
        }
    }
}

static void
test_dropped_swapped_forged(void)
{
    char copy[NREC + 2][2048];
    char err[400];
    char other[PDP_DECISIONS_PEM_MAX];
    char dir2[600];

    /* Record 4 dropped. */
    memcpy(copy, g_lines, sizeof(copy));
    memmove(copy[4], copy[5], sizeof(copy[0]) * (size_t)(g_n - 5));
    CU_ASSERT_FALSE(verify(copy, g_n - 1, g_pem, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "record 4"));
    /* Records 3 and 4 swapped. */
    memcpy(copy, g_lines, sizeof(copy));
    memcpy(copy[3], g_lines[4], sizeof(copy[0]));
    memcpy(copy[4], g_lines[3], sizeof(copy[0]));
    CU_ASSERT_FALSE(verify(copy, g_n, g_pem, err, sizeof(err)));
    /* Cut before the last checkpoint: records 3 to 5 are unsigned. */
    CU_ASSERT_FALSE(verify(g_lines, g_n - 1, g_pem, err, sizeof(err)));
    /* Another key does not verify the signatures. */
    snprintf(dir2, sizeof(dir2), "%s/other", g_dir);
    mkdir(dir2, 0700);
    {
        pdp_signer *s = NULL;
        CU_ASSERT_EQUAL_FATAL(pdp_signer_open(&s, dir2, true, err, sizeof(err)),
                              TG_OK);
        pdp_signer_public_pem(s, other, sizeof(other));
        pdp_signer_free(s);
    }
    CU_ASSERT_FALSE(verify(g_lines, g_n, other, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "checkpoint 2"));
    CU_ASSERT_FALSE(verify(g_lines, g_n, "not a key", err, sizeof(err)));
}

static void
test_key_file_rules(void)
{
    char        path[700];
    char        err[512];
    pdp_signer *s = NULL;

    /* The same key next time; a readable key file is refused. */
    CU_ASSERT_EQUAL(pdp_signer_open(&s, g_dir, false, err, sizeof(err)), TG_OK);
    pdp_signer_free(s);
    snprintf(path, sizeof(path), "%s/%s", g_dir, PDP_DECISIONS_KEY_FILE);
    chmod(path, 0644);
    CU_ASSERT_EQUAL(pdp_signer_open(&s, g_dir, false, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
    chmod(path, 0600);
    snprintf(path, sizeof(path), "%s/none", g_dir);
    mkdir(path, 0700);
    CU_ASSERT_EQUAL(pdp_signer_open(&s, path, false, err, sizeof(err)),
                    TG_ENOTFOUND);
}

static const tg_unit_case cases[] = {
    {"untouched_verifies", test_untouched_verifies},
    {"any_changed_byte_is_named", test_any_changed_byte_is_named},
    {"dropped_swapped_forged", test_dropped_swapped_forged},
    {"key_file_rules", test_key_file_rules},
    {NULL, NULL},
};

int
main(void)
{
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("decisions"));
    return tg_unit_run("pdp.state.decisions", cases);
}
