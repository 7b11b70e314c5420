/* test_cli_lists.c - pdp.cli_lists: `tollgate-pdp lists` as an operator
 * types it on the state directory: a terms file set (comments, blank
 * lines, a byte order mark, CRLF; duplicates dropped and said with their
 * lines), read back byte for byte so `lists get > f; lists set --file f`
 * changes nothing, a bad file refused with its line and nothing written,
 * delete, history, the audit trail without the terms, and the usage. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_test_cli.h"
#include "pdp_test_util.h"
#include "tg_unit.h"

static char g_dir[512];
static char g_cfg[768];
static char g_out[65536];
static char g_err[8192];

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

/* file writes text into g_dir/name and returns its path, in a static
 * buffer valid until the next call. */
static const char *
file(const char *name, const char *text)
{
    static char path[640];

    snprintf(path, sizeof(path), "%s", tg_unit_write(g_dir, name, text));
    return path;
}

static void
test_set_get_round_trip(void)
{
    const char *terms = file("rivals.txt", "\xef\xbb\xbf# rivals\r\n"
                                           "  Acme Corp  \r\n"
                                           "\n"
                                           "globex\n"
                                           "Acme Corp\n"
                                           "initech");
    char        saved[1024];
    cJSON      *doc;

    CU_ASSERT_EQUAL(run("lists", "list", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "No term lists yet"));
    CU_ASSERT_EQUAL_FATAL(
        run("lists", "set", "rivals", "--file", terms, "--config", g_cfg, NULL),
        0);
    CU_ASSERT_STRING_EQUAL(g_out, "Created list rivals: version 1, 3 terms.\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "1 duplicate term dropped (the first "
                                         "at line 5 repeats line 2)"));
    CU_ASSERT_EQUAL(run("lists", "get", "rivals", "--config", g_cfg, NULL), 0);
    CU_ASSERT_STRING_EQUAL(g_out, "Acme Corp\nglobex\ninitech\n");
    CU_ASSERT_STRING_EQUAL(g_err, "");

    /* What get prints, set reads back: nothing changes. */
    snprintf(saved, sizeof(saved), "%s", file("saved.txt", g_out));
    CU_ASSERT_EQUAL(
        run("lists", "set", "rivals", "--file", saved, "--config", g_cfg, NULL),
        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "already has these 3 terms"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "version 1"));

    CU_ASSERT_EQUAL(run("lists", "get", "rivals", "--format", "json",
                        "--config", g_cfg, NULL),
                    0);
    doc = cJSON_Parse(g_out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "version")),
                    1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "terms")), 3);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "by")), "cli:"));
    cJSON_Delete(doc);

    /* ls is list. */
    CU_ASSERT_EQUAL(run("lists", "ls", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "NAME"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "rivals"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "globex"));
}

static void
test_bad_file_refused_with_its_line(void)
{
    char bad[640];
    char ctl[640];
    char good[640];

    /* file() returns a static buffer: each path copied. */
    snprintf(bad, sizeof(bad), "%s",
             file("bad.txt", "ok\n# fine\nbad \xff byte\n"));
    snprintf(ctl, sizeof(ctl), "%s",
             file("ctl.txt", "ok\nsecond\nthird\tterm\n"));
    snprintf(good, sizeof(good), "%s", file("one.txt", "first\n"));

    CU_ASSERT_EQUAL_FATAL(
        run("lists", "set", "badlist", "--file", good, "--config", g_cfg, NULL),
        0);
    CU_ASSERT_EQUAL(
        run("lists", "set", "badlist", "--file", bad, "--config", g_cfg, NULL),
        2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "bad.txt: line 3 is not valid UTF-8"));
    CU_ASSERT_EQUAL(
        run("lists", "set", "badlist", "--file", ctl, "--config", g_cfg, NULL),
        2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "ctl.txt: line 3: the term holds a "
                                         "control character (U+0009)"));
    CU_ASSERT_EQUAL(run("lists", "set", "badlist", "--file", "/nonexistent/x",
                        "--config", g_cfg, NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "cannot read the terms file"));
    /* Nothing was written. */
    CU_ASSERT_EQUAL(run("lists", "get", "badlist", "--config", g_cfg, NULL), 0);
    CU_ASSERT_STRING_EQUAL(g_out, "first\n");

    CU_ASSERT_EQUAL(run("lists", "set", "badlist", "--config", g_cfg, NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--file is required"));
    CU_ASSERT_EQUAL(
        run("lists", "set", "Rivals", "--file", good, "--config", g_cfg, NULL),
        2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "not a valid list name"));
    CU_ASSERT_EQUAL(run("lists", "get", "nosuch", "--config", g_cfg, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "no list \"nosuch\""));
    CU_ASSERT_EQUAL(run("lists", "frob", NULL), 2);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(g_err, "expected set, get, list, delete, history, not frob"));
}

static void
test_stdin_delete_history_audit(void)
{
    const char *in = file("stdin.txt", "alpha\nbeta\n");

    /* --file - reads standard input. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(freopen(in, "r", stdin));
    CU_ASSERT_EQUAL(run("lists", "set", "fromstdin", "--file", "-", "--config",
                        g_cfg, NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "version 1, 2 terms"));
    CU_ASSERT_EQUAL(run("lists", "rm", "fromstdin", "--config", g_cfg, NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "Deleted list:fromstdin (it had 2 "
                                         "terms)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "version 2"));
    CU_ASSERT_EQUAL(
        run("lists", "history", "fromstdin", "--config", g_cfg, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "VERSION"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "delete"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "set"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "alpha"));
    /* The audit trail says who, which list, version and count: no term. */
    CU_ASSERT_EQUAL(run("audit", "list", "--limit", "2", "--format", "json",
                        "--config", g_cfg, NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"lists.delete\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"lists.set\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"list:fromstdin\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "\"version\":2"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "alpha"));
    CU_ASSERT_PTR_NULL(strstr(g_out, "beta"));
}

static void
test_usage(void)
{
    CU_ASSERT_EQUAL(run("--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "lists set"));
    CU_ASSERT_EQUAL(run("lists", "set", "--help", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "--file FILE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, "50,000 terms"));
}

static const tg_unit_case cases[] = {
    {"set_get_round_trip", test_set_get_round_trip}, /* first: none yet */
    {"bad_file_refused_with_its_line", test_bad_file_refused_with_its_line},
    {"stdin_delete_history_audit", test_stdin_delete_history_audit},
    {"usage", test_usage},
    {NULL, NULL},
};

int
main(void)
{
    snprintf(g_dir, sizeof(g_dir), "%s", tg_unit_tmpdir("cli-lists"));
    snprintf(g_cfg, sizeof(g_cfg), "%s", pdp_test_config(g_dir, 4));
    return tg_unit_run("pdp.cli_lists", cases);
}
