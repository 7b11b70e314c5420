/* test_spend.c - pdp.spend: `tollgate-pdp spend --by` over usage records
 * written through the store: each grouping, the edges of the date range
 * (whole UTC days, records exactly at midnight, RFC 3339 instants,
 * today/yesterday/7d/12h relative to the clock), keys named by name as
 * well as id, the json and csv shapes and the argument errors. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_cli.h"
#include "pdp_store.h"
#include "pdp_test_api.h"
#include "pdp_test_cli.h"
#include "pdp_test_util.h"
#include "tg_time.h"
#include "tg_unit.h"

#define MAY1 1714521600000LL /* 2024-05-01T00:00:00Z */
#define DAY 86400000LL

static char g_cfg[768];
static char g_empty_cfg[768];
static char g_out[65536];
static char g_err[4096];

/* run executes `tollgate-pdp spend --config g_cfg WORDS...` in-process. */
static int
run(const char *first, ...)
{
    char   *argv[32];
    int     argc = 0;
    va_list ap;

    argv[argc++] = "tollgate-pdp";
    argv[argc++] = "spend";
    argv[argc++] = "--config";
    argv[argc++] = g_cfg;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31;
         a             = va_arg(ap, const char *)) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return pdp_test_cli(argc, argv, g_out, sizeof(g_out), g_err, sizeof(g_err));
}

/* run_json runs with --format json appended and parses the output. */
#define run_json(...)                                                          \
    (run(__VA_ARGS__, "--format", "json", NULL) == 0 ? cJSON_Parse(g_out)      \
                                                     : NULL)

static double
num(const cJSON *j, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(j, k));
}

static const char *
str(const cJSON *j, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(j, k));
}

static const cJSON *
row(const cJSON *doc, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "rows"), i);
}

static int
nrows(const cJSON *doc)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(doc, "rows"));
}

static const char *
total_usd(const cJSON *doc)
{
    return str(cJSON_GetObjectItem(doc, "total"), "cost_usd");
}

static void
settle(pdp_store *st, const char *id, const char *tenant, const char *key,
       const char *model, const char *user, int64_t prompt, int64_t completion,
       int64_t cost, int64_t started_ms, bool estimated)
{
    tg_usage     u;
    tg_usage_ack ack;

    memset(&u, 0, sizeof(u));
    snprintf(u.request_id, sizeof(u.request_id), "%s", id);
    snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", tenant);
    snprintf(u.key_id, sizeof(u.key_id), "%s", key);
    snprintf(u.model, sizeof(u.model), "%s", model);
    snprintf(u.user, sizeof(u.user), "%s", user);
    u.prompt_tokens     = prompt;
    u.completion_tokens = completion;
    u.started_ms        = started_ms;
    u.duration_ms       = 100;
    u.estimated         = estimated;
    u.status            = 200;
    CU_ASSERT_EQUAL_FATAL(pdp_store_usage_settle(st, &u, cost, &ack), TG_OK);
}

/* The records every case reads. r1 is the last ms of April, r2 the first
 * of May, r4 the last of May 1, r5 the first of May 2. */
static char g_dir[512];

static void
test_write_records(void)
{
    char       state[600];
    char       msg[512];
    pdp_store *st = NULL;

    snprintf(state, sizeof(state), "%s/state", g_dir);
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, state, 4, msg, sizeof(msg)),
                          TG_OK);
    settle(st, "r1", "acme", "key_a", "gpt-4o-mini", "alice", 100, 50, 1500,
           MAY1 - 1, false);
    settle(st, "r2", "acme", "key_a", "gpt-4o-mini", "alice", 200, 100, 3000,
           MAY1, false);
    settle(st, "r3", "acme", "key_b", "gpt-4o", "", 10, 5, 250000,
           MAY1 + DAY / 2, true);
    settle(st, "r4", "beta", "key_c", "gpt-4o", "bob, \"the builder\"", 1000,
           1000, 1234567, MAY1 + DAY - 1, false);
    settle(st, "r5", "beta", "key_c", "gpt-4o-mini", "alice", 1, 1, 7,
           MAY1 + DAY, false);
    settle(st, "r6", "acme", "key_a", "gpt-4o-mini", "alice", 1, 1, 1,
           MAY1 + 2 * DAY, false);
    /* A repeat of r2 (same request id) is not counted twice. */
    settle(st, "r2", "acme", "key_a", "gpt-4o-mini", "alice", 200, 100, 3000,
           MAY1, false);
    pdp_store_close(st);
}

static void
test_by_tenant_one_day(void)
{
    cJSON *doc = run_json("--by", "tenant", "--from", "2024-05-01", "--to",
                          "2024-05-01");

    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(str(doc, "by"), "tenant");
    CU_ASSERT_STRING_EQUAL(str(doc, "from"), "2024-05-01");
    CU_ASSERT_STRING_EQUAL(str(doc, "to"), "2024-05-01");
    CU_ASSERT_EQUAL(nrows(doc), 2);
    /* Highest cost first: beta (r4) then acme (r2 + r3). */
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "tenant"), "beta");
    CU_ASSERT_EQUAL(num(row(doc, 0), "requests"), 1);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "cost_usd"), "1.234567");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 1), "tenant"), "acme");
    CU_ASSERT_EQUAL(num(row(doc, 1), "requests"), 2);
    CU_ASSERT_EQUAL(num(row(doc, 1), "prompt_tokens"), 210);
    CU_ASSERT_EQUAL(num(row(doc, 1), "completion_tokens"), 105);
    CU_ASSERT_EQUAL(num(row(doc, 1), "cost_micro_usd"), 253000);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 1), "cost_usd"), "0.253000");
    CU_ASSERT_EQUAL(num(row(doc, 1), "estimated_requests"), 1);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(doc, "total"), "requests"), 3);
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "1.487567");
    cJSON_Delete(doc);
}

static void
test_date_edges(void)
{
    cJSON *doc;

    /* No range: everything, the repeated r2 once. */
    doc = run_json("--by", "tenant");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(doc, "total"), "requests"), 6);
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "1.489075");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(doc, "from")));
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(doc, "to")));
    cJSON_Delete(doc);
    /* --to a day includes all of it and nothing of the next midnight. */
    doc = run_json("--by", "day", "--to", "2024-04-30");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(nrows(doc), 1);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "day"), "2024-04-30");
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "0.001500");
    cJSON_Delete(doc);
    /* --from a day starts at its midnight, open-ended. */
    doc = run_json("--by", "day", "--from", "2024-05-02");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(nrows(doc), 2);
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "0.000008"); /* r5 + r6 */
    cJSON_Delete(doc);
    /* An RFC 3339 --to is an instant, included: r2 exactly at midnight. */
    doc = run_json("--by", "tenant", "--from", "2024-05-01T00:00:00Z", "--to",
                   "2024-05-01T00:00:00Z");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(doc, "total"), "requests"), 1);
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "0.003000");
    cJSON_Delete(doc);
    /* Offsets and fractions: 02:00+02:00 is midnight UTC. */
    doc = run_json("--by", "tenant", "--from", "2024-04-30T23:59:59.999Z",
                   "--to", "2024-05-01T02:00:00+02:00");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(doc, "total"), "requests"), 2);
    cJSON_Delete(doc);
    /* A sub-ms --from rounds up, an RFC 3339 --to is included to its ms:
     * 23:59:59.9991 is after 23:59:59.999. */
    CU_ASSERT_EQUAL(run("--by", "tenant", "--from", "2024-04-30T23:59:59.9991Z",
                        "--to", "2024-05-01T01:59:59.999+02:00", NULL),
                    2);
    doc = run_json("--by", "tenant", "--from", "2024-05-01T00:00:00.001Z",
                   "--to", "2024-05-01T11:59:59.999Z");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItem(doc, "total"), "requests"), 0);
    CU_ASSERT_EQUAL(nrows(doc), 0);
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "0.000000");
    cJSON_Delete(doc);
}

static void
test_by_day_is_chronological(void)
{
    cJSON *doc = run_json("--by", "day");

    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL_FATAL(nrows(doc), 4);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "day"), "2024-04-30");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 1), "day"), "2024-05-01");
    CU_ASSERT_EQUAL(num(row(doc, 1), "requests"), 3);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 2), "day"), "2024-05-02");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 3), "day"), "2024-05-03");
    cJSON_Delete(doc);
}

static void
test_by_key_model_user(void)
{
    cJSON *doc;

    doc = run_json("--by", "key");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL_FATAL(nrows(doc), 3);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "key_id"), "key_c");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "tenant"), "beta");
    CU_ASSERT_EQUAL(num(row(doc, 0), "requests"), 2);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 1), "key_id"), "key_b");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 2), "key_id"), "key_a");
    CU_ASSERT_EQUAL(num(row(doc, 2), "requests"), 3);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 2), "cost_usd"), "0.004501");
    cJSON_Delete(doc);

    doc = run_json("--by", "model");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL_FATAL(nrows(doc), 2);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "model"), "gpt-4o");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "cost_usd"), "1.484567");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(row(doc, 0), "tenant"));
    CU_ASSERT_STRING_EQUAL(str(row(doc, 1), "model"), "gpt-4o-mini");
    CU_ASSERT_EQUAL(num(row(doc, 1), "requests"), 4);
    cJSON_Delete(doc);

    /* alice of acme and alice of beta are different people; no user is
     * null. */
    doc = run_json("--by", "user");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL_FATAL(nrows(doc), 4);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "user"), "bob, \"the builder\"");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(row(doc, 1), "user")));
    CU_ASSERT_STRING_EQUAL(str(row(doc, 1), "tenant"), "acme");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 2), "user"), "alice");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 2), "tenant"), "acme");
    CU_ASSERT_EQUAL(num(row(doc, 2), "requests"), 3);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 3), "user"), "alice");
    CU_ASSERT_STRING_EQUAL(str(row(doc, 3), "tenant"), "beta");
    cJSON_Delete(doc);

    doc = run_json("--by", "user", "--tenant", "beta");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(nrows(doc), 2);
    CU_ASSERT_STRING_EQUAL(str(doc, "tenant"), "beta");
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "1.234574");
    cJSON_Delete(doc);
}

static void
test_csv(void)
{
    CU_ASSERT_EQUAL_FATAL(run("--by", "user", "--format", "csv", NULL), 0);
    CU_ASSERT_EQUAL(strncmp(g_out,
                            "user,tenant,requests,prompt_tokens,"
                            "completion_tokens,cost_micro_usd,cost_usd,"
                            "estimated_requests\r\n",
                            strlen("user,tenant,requests,prompt_tokens,"
                                   "completion_tokens,cost_micro_usd,"
                                   "cost_usd,estimated_requests\r\n")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\r\n\"bob, \"\"the builder\"\"\","
                                         "beta,1,1000,1000,1234567,1.234567,"
                                         "0\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\r\n-,acme,1,10,5,250000,0.250000,"
                                         "1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\r\nTOTAL,,6,1312,1157,1489075,"
                                         "1.489075,1\r\n"));
    CU_ASSERT_EQUAL(
        run("--by", "day", "--format=csv", "--to", "2024-04-30", NULL), 0);
    CU_ASSERT_STRING_EQUAL(g_out,
                           "day,requests,prompt_tokens,completion_tokens,"
                           "cost_micro_usd,cost_usd,estimated_requests\r\n"
                           "2024-04-30,1,100,50,1500,0.001500,0\r\n"
                           "TOTAL,1,100,50,1500,0.001500,0\r\n");
}

static void
test_table(void)
{
    CU_ASSERT_EQUAL_FATAL(run("--by", "user", NULL), 0);
    CU_ASSERT_EQUAL(strncmp(g_out, "USER", 4), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "ESTIMATED"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\n-  "));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\nTOTAL "));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "1.489075"));
    /* text is table. */
    CU_ASSERT_EQUAL(run("--by", "tenant", "--format", "text", NULL), 0);
    CU_ASSERT_EQUAL(strncmp(g_out, "TENANT", 6), 0);
    /* Without --by the all-time totals stay as they were. */
    CU_ASSERT_EQUAL(run(NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "KEY"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "ESTIMATED"));
}

/* Names a client chose: a spreadsheet must see text, a terminal no
 * control sequence, and a newline must not add a row. */
static void
test_hostile_names(void)
{
    char       saved[sizeof(g_cfg)];
    char       dir[512];
    char       state[600];
    char       msg[512];
    pdp_store *st    = NULL;
    int        lines = 0;

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("spend-hostile"));
    snprintf(state, sizeof(state), "%s/state", dir);
    memcpy(saved, g_cfg, sizeof(saved));
    snprintf(g_cfg, sizeof(g_cfg), "%s", pdp_test_config(dir, 4));
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, state, 4, msg, sizeof(msg)),
                          TG_OK);
    settle(st, "h1", "@SUM(1+1)", "key_h", "gpt-4o",
           "=HYPERLINK(\"http://evil/\",\"x\")", 1, 1, 10, MAY1, false);
    settle(st, "h2", "plain", "key_h", "+cmd", "-2+3", 1, 1, 10, MAY1, false);
    settle(st, "h3", "plain", "key_h", "gpt-4o",
           "eve\n2024-05-01 error forged\x1b[2J", 1, 1, 10, MAY1, false);
    pdp_store_close(st);

    CU_ASSERT_EQUAL(run("--by", "user", "--format", "csv", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out,
                                  "\r\n\"'=HYPERLINK(\"\"http://evil/\"\","
                                  "\"\"x\"\")\",\"'@SUM(1+1)\",1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\r\n\"'-2+3\",plain,1,"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "\r\n=HYPERLINK"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "\r\n-2+3"));
    CU_ASSERT_PTR_NULL(strstr(g_out, ",@SUM"));
    /* numbers stay numbers */
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\r\nTOTAL,,3,3,3,30,0.000030,0\r\n"));
    CU_ASSERT_EQUAL(run("--by", "model", "--format", "csv", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\r\n\"'+cmd\",1,"));

    CU_ASSERT_EQUAL(run("--by", "user", NULL), 0);
    CU_ASSERT_PTR_NULL(strchr(g_out, '\x1b'));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\neve\\n2024-05-01 error forged"
                                         "\\x1b[2J  plain "));
    for (const char *p = g_out; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    CU_ASSERT_EQUAL(lines, 6); /* head, 3 rows, blank, TOTAL */
    memcpy(g_cfg, saved, sizeof(g_cfg));
}

static void
test_empty_store(void)
{
    char   saved[sizeof(g_cfg)];
    cJSON *doc;

    memcpy(saved, g_cfg, sizeof(saved));
    memcpy(g_cfg, g_empty_cfg, sizeof(g_cfg));
    doc = run_json("--by", "model");
    CU_ASSERT_PTR_NOT_NULL(doc);
    CU_ASSERT_EQUAL(nrows(doc), 0);
    CU_ASSERT_STRING_EQUAL(total_usd(doc), "0.000000");
    cJSON_Delete(doc);
    memcpy(g_cfg, saved, sizeof(g_cfg));
}

static void
test_bad_arguments(void)
{
    static const char *const bad_dates[] = {"2024-13-01",
                                            "2024-02-30",
                                            "2023-02-29",
                                            "2024-5-1",
                                            "2024-05-01T25:00:00Z",
                                            "2024-05-01T10:00:00",
                                            "2024-05-01T10:00Z",
                                            "2024-05-01T10:00:00.Z",
                                            "2024-05-01T10:00:00+2:00",
                                            "7x",
                                            "d",
                                            "-1d",
                                            "1.5d",
                                            "36601d",
                                            "Yesterday",
                                            "2024-05-01x",
                                            ""};

    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
        CU_ASSERT_EQUAL(run("--by", "tenant", "--from", bad_dates[i], NULL), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is not a date"));
        CU_ASSERT_EQUAL(g_out[0], '\0');
    }
    CU_ASSERT_EQUAL(run("--by", "tenant", "--from", "2024-02-29", NULL), 0);
    CU_ASSERT_EQUAL(run("--by", "tenant", "--from", "2024-05-02", "--to",
                        "2024-05-01", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--from 2024-05-02 is after --to "
                                         "2024-05-01"));
    CU_ASSERT_EQUAL(run("--by", "tenant", "--from", "2024-05-01T00:00:00.001Z",
                        "--to", "2024-05-01T00:00:00Z", NULL),
                    2);
    CU_ASSERT_EQUAL(run("--by", "team", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "\"team\""));
    CU_ASSERT_EQUAL(run("--by", "tenant", "--by", "key", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "twice"));
    CU_ASSERT_EQUAL(run("--by", "tenant", "--format", "xml", NULL), 2);
    CU_ASSERT_EQUAL(run("--by", "tenant", "--tenant", "a,b", NULL), 2);
    CU_ASSERT_EQUAL(run("--by", NULL), 2);
    CU_ASSERT_EQUAL(run("--by", "tenant", "extra", NULL), 2);
    CU_ASSERT_EQUAL(run("--by", "tenant", "--bogus", "1", NULL), 2);
    /* Filters without --by would print all-time totals that look cut. */
    CU_ASSERT_EQUAL(run("--from", "2024-05-01", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "needs --by"));
    CU_ASSERT_EQUAL(run("--format", "csv", NULL), 2);
    CU_ASSERT_EQUAL(run("--tenant", "acme", NULL), 2);
    CU_ASSERT_EQUAL(run("--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "--by"));
}

/* spend_api asks GET spend through the API at clock now_ms (noon, May 2)
 * and returns the number of rows (-1: not a 200). */
static int
spend_api(int64_t now_ms, const char *query, const char *total_usd_want)
{
    pdp_test_api t;
    int          n = -1;

    pdp_test_api_attach(&t, g_dir, now_ms);
    if (pdp_test_api_call(&t, "GET", "spend", query, NULL) == 200) {
        n = nrows(t.doc);
        if (total_usd_want != NULL) {
            CU_ASSERT_STRING_EQUAL(total_usd(t.doc), total_usd_want);
        }
    }
    pdp_test_api_close(&t);
    return n;
}

/* Relative dates read against the API's clock: seen from noon on May 2,
 * "yesterday" is May 1 whole, "today" May 2 whole, "36h" the instant
 * May 1 00:00, "12h" May 2 00:00. */
static void
test_relative_dates(void)
{
    const int64_t now = MAY1 + DAY + DAY / 2;

    /* r2, r3 (acme) and r4 (beta) */
    CU_ASSERT_EQUAL(
        spend_api(now, "by=tenant&from=yesterday&to=yesterday", "1.487567"), 2);
    /* r5 only */
    CU_ASSERT_EQUAL(spend_api(now, "by=tenant&from=today&to=today", "0.000007"),
                    1);
    /* r2 (exactly at the bound) to r6 */
    CU_ASSERT_EQUAL(spend_api(now, "by=day&from=36h", "1.487575"), 3);
    /* from the instant 12 hours ago to now: r5 */
    CU_ASSERT_EQUAL(spend_api(now, "by=day&from=12h&to=0h", "0.000007"), 1);
    /* the same as the dates they stand for */
    /* 1d is the instant May 1 12:00: r3 (exactly then), r4, r5 */
    CU_ASSERT_EQUAL(spend_api(now, "by=day&from=1d&to=2024-05-02", "1.484574"),
                    2);
    /* 2d is April 30 12:00: r1 to r6 */
    CU_ASSERT_EQUAL(spend_api(now, "by=day&from=2d", "1.489075"), 4);
    CU_ASSERT_EQUAL(spend_api(now, "by=day&from=today&to=yesterday", NULL), -1);
    CU_ASSERT_EQUAL(spend_api(now, "by=day&from=7x", NULL), -1);
}

/* The command line reads them against the real clock. */
static void
test_relative_dates_cli(void)
{
    char       saved[sizeof(g_cfg)];
    char       dir[512];
    char       state[600];
    char       msg[512];
    pdp_store *st = NULL;
    cJSON     *doc;

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir("spend-recent"));
    snprintf(state, sizeof(state), "%s/state", dir);
    memcpy(saved, g_cfg, sizeof(saved));
    snprintf(g_cfg, sizeof(g_cfg), "%s", pdp_test_config(dir, 4));
    CU_ASSERT_EQUAL_FATAL(pdp_store_open(&st, state, 4, msg, sizeof(msg)),
                          TG_OK);
    settle(st, "n1", "acme", "key_n", "gpt-4o", "", 1, 1, 42,
           tg_now_ms() - 3600000, false);
    pdp_store_close(st);
    doc = run_json("--by", "tenant", "--from", "2h");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(nrows(doc), 1);
    CU_ASSERT_STRING_EQUAL(str(doc, "from"), "2h");
    cJSON_Delete(doc);
    doc = run_json("--by", "tenant", "--from", "7d", "--to", "2h");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(nrows(doc), 0);
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("--by", "tenant", "--from", "yesterday", NULL), 0);
    CU_ASSERT_EQUAL(run("--by", "tenant", "--from", "week", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "yesterday"));
    memcpy(g_cfg, saved, sizeof(g_cfg));
}

/* Keys are named by name as well as id: a column added last (table, CSV)
 * or a field (JSON), the id columns as they were. */
static void
test_key_names(void)
{
    char         saved[sizeof(g_cfg)];
    pdp_test_api t;
    char         id[64];
    cJSON       *doc;
    const cJSON *k;

    pdp_test_api_open(&t, "spend-names", 0);
    CU_ASSERT_EQUAL_FATAL(
        pdp_test_api_call(&t, "POST", "tenants", NULL, "{\"id\":\"acme\"}"),
        201);
    CU_ASSERT_EQUAL_FATAL(pdp_test_api_call(&t, "POST", "keys", NULL,
                                            "{\"tenant\":\"acme\",\"name\":"
                                            "\"ci-bot, nightly\"}"),
                          201);
    snprintf(id, sizeof(id), "%s", pdp_test_api_str(&t, "id"));
    settle(t.st, "k1", "acme", id, "gpt-4o", "", 1, 1, 10, MAY1, false);
    settle(t.st, "k2", "acme", "key_gone", "gpt-4o", "", 1, 1, 5, MAY1, false);
    memcpy(saved, g_cfg, sizeof(saved));
    snprintf(g_cfg, sizeof(g_cfg), "%s", t.cfg_path);
    pdp_test_api_close(&t);

    doc = run_json("--by", "key");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "key_id"), id);
    CU_ASSERT_STRING_EQUAL(str(row(doc, 0), "key_name"), "ci-bot, nightly");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(row(doc, 1), "key_name")));
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run("--by", "key", "--format", "csv", NULL), 0);
    CU_ASSERT_EQUAL(strncmp(g_out,
                            "key_id,tenant,requests,prompt_tokens,"
                            "completion_tokens,cost_micro_usd,cost_usd,"
                            "estimated_requests,key_name\r\n",
                            strlen("key_id,tenant,requests,prompt_tokens,"
                                   "completion_tokens,cost_micro_usd,"
                                   "cost_usd,estimated_requests,"
                                   "key_name\r\n")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(g_out, ",0.000010,0,\"ci-bot, nightly\"\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "key_gone,acme,1,1,1,5,0.000005,0,-"
                                         "\r\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(g_out, "\r\nTOTAL,,2,2,2,15,0.000015,0,\r\n"));
    CU_ASSERT_EQUAL(run("--by", "key", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "ESTIMATED  NAME\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "  ci-bot, nightly\n"));
    /* The all-time totals too. */
    doc = run("--format", "json", NULL) == 0 ? cJSON_Parse(g_out) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    k = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "keys"), 0);
    CU_ASSERT_PTR_NOT_NULL(str(k, "key_id"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(k, "key_name"));
    for (k = cJSON_GetObjectItem(doc, "keys")->child; k != NULL; k = k->next) {
        if (strcmp(str(k, "key_id"), id) == 0) {
            CU_ASSERT_STRING_EQUAL(str(k, "key_name"), "ci-bot, nightly");
            CU_ASSERT_STRING_EQUAL(str(k, "tenant"), "acme");
        }
    }
    cJSON_Delete(doc);
    CU_ASSERT_EQUAL(run(NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "COST_USD  NAME\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "  ci-bot, nightly\n"));
    memcpy(g_cfg, saved, sizeof(g_cfg));
}

static const tg_unit_case cases[] = {
    {"write_records", test_write_records}, /* first: the others read them */
    {"by_tenant_one_day", test_by_tenant_one_day},
    {"date_edges", test_date_edges},
    {"by_day_is_chronological", test_by_day_is_chronological},
    {"by_key_model_user", test_by_key_model_user},
    {"csv", test_csv},
    {"table", test_table},
    {"hostile_names", test_hostile_names},
    {"empty_store", test_empty_store},
    {"bad_arguments", test_bad_arguments},
    {"relative_dates", test_relative_dates},
    {"relative_dates_cli", test_relative_dates_cli},
    {"key_names", test_key_names},
    {NULL, NULL},
};

int
main(void)
{
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("spend-empty"));
    snprintf(g_empty_cfg, sizeof(g_empty_cfg), "%s", pdp_test_config(g_dir, 4));
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("spend"));
    snprintf(g_cfg, sizeof(g_cfg), "%s", pdp_test_config(g_dir, 4));
    return tg_unit_run("pdp.spend", cases);
}
