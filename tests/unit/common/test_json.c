/* common.json - positions in config/policy errors must point at the right
 * line and column, or users cannot find their mistake. */
#include <stdint.h>
#include <string.h>

#include "tg_json.h"
#include "tg_unit.h"

static void
test_positions_of_members(void)
{
    const char   text[] = "{\n  \"a\": 1,\n  \"b\": {\n    \"c\": [true, "
                          "\"x\"]\n  }\n}\n";
    char         err[256];
    tg_json_doc *doc = NULL;
    int          line;
    int          col;

    CU_ASSERT_EQUAL_FATAL(tg_json_doc_parse(&doc, "t.json", text,
                                            strlen(text), err, sizeof(err)),
                          TG_OK);
    const cJSON *root = tg_json_doc_root(doc);
    const cJSON *b    = cJSON_GetObjectItem(root, "b");
    const cJSON *c    = cJSON_GetObjectItem(b, "c");
    tg_json_doc_pos(doc, cJSON_GetObjectItem(root, "a"), &line, &col);
    CU_ASSERT_EQUAL(line, 2);
    CU_ASSERT_EQUAL(col, 3);
    tg_json_doc_pos(doc, c, &line, &col);
    CU_ASSERT_EQUAL(line, 4);
    CU_ASSERT_EQUAL(col, 5);
    tg_json_doc_pos(doc, cJSON_GetArrayItem(c, 1), &line, &col);
    CU_ASSERT_EQUAL(line, 4);
    CU_ASSERT_EQUAL(col, 17);
    tg_json_doc_destroy(doc);
}

static void
test_syntax_error_location(void)
{
    const char   text[] = "{\n  \"a\": 1,\n  \"b\" 2\n}";
    char         err[256];
    tg_json_doc *doc = NULL;

    CU_ASSERT_EQUAL(tg_json_doc_parse(&doc, "cfg.json", text, strlen(text),
                                      err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cfg.json:3:"));
}

static void
test_trailing_garbage(void)
{
    const char   text[] = "{\"a\":1}\n}";
    char         err[256];
    tg_json_doc *doc = NULL;

    CU_ASSERT_EQUAL(tg_json_doc_parse(&doc, "x", text, strlen(text), err,
                                      sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "x:2:1: unexpected text"));
}

static void
test_only_keys_and_duplicates(void)
{
    static const char *const allowed[] = {"a", "b", NULL};
    const char               text[]    = "{\"a\":1,\n\"zz\":2}";
    const char               dup[]     = "{\"a\":1,\n \"a\":2}";
    char                     err[256];
    tg_json_doc             *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(tg_json_doc_parse(&doc, "f", text, strlen(text),
                                            err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(tg_json_only_keys(doc, tg_json_doc_root(doc), "sec",
                                      allowed, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_STRING_EQUAL(err, "f:2:1: sec: unknown key \"zz\"; expected "
                                "one of: a, b");
    tg_json_doc_destroy(doc);
    CU_ASSERT_EQUAL_FATAL(tg_json_doc_parse(&doc, "f", dup, strlen(dup), err,
                                            sizeof(err)),
                          TG_OK);
    CU_ASSERT_EQUAL(tg_json_only_keys(doc, tg_json_doc_root(doc), "sec",
                                      allowed, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "f:2:2: sec: key \"a\" appears twice"));
    tg_json_doc_destroy(doc);
}

static void
test_typed_getters(void)
{
    const char   text[] = "{\"n\": 1.5, \"s\": 3, \"b\": \"yes\", \"ok\": 7}";
    char         err[256];
    tg_json_doc *doc = NULL;
    int64_t      n   = 0;
    const char  *s   = NULL;
    bool         b   = false;

    CU_ASSERT_EQUAL_FATAL(tg_json_doc_parse(&doc, "g", text, strlen(text),
                                            err, sizeof(err)),
                          TG_OK);
    const cJSON *root = tg_json_doc_root(doc);
    CU_ASSERT_EQUAL(tg_json_get_int(doc, root, "x", "n", true, 0, 10, &n, err,
                                    sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "x.n: expected an integer"));
    CU_ASSERT_EQUAL(tg_json_get_int(doc, root, "x", "ok", true, 0, 5, &n, err,
                                    sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_EQUAL(tg_json_get_int(doc, root, "x", "ok", true, 0, 10, &n,
                                    err, sizeof(err)),
                    TG_OK);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_EQUAL(tg_json_get_string(doc, root, "x", "s", true, &s, err,
                                       sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_EQUAL(tg_json_get_bool(doc, root, "x", "b", true, &b, err,
                                     sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_EQUAL(tg_json_get_string(doc, root, "x", "missing", true, &s,
                                       err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing required key \"missing\""));
    tg_json_doc_destroy(doc);
}

/* Numbers out of int64_t's range must be refused before any cast (a cast
 * is undefined behaviour there; UBSan aborts this test if one happens). */
static void
test_whole_numbers(void)
{
    static const struct {
        const char *text;
        int64_t     min, max;
        bool        ok;
        int64_t     want;
    } cases[] = {
        {"7", 0, 10, true, 7},
        {"-3", -5, 5, true, -3},
        {"1.5", 0, 10, false, 0},
        {"11", 0, 10, false, 0},
        {"-1", 0, 10, false, 0},
        {"3.7e38", 0, INT64_MAX, false, 0},
        {"-3.7e38", INT64_MIN, INT64_MAX, false, 0},
        {"9223372036854775807", 0, INT64_MAX, false, 0}, /* 2^63 as a double */
        {"1e15", 0, 1000000000000000LL, true, 1000000000000000LL},
        {"\"7\"", 0, 10, false, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON  *v = cJSON_Parse(cases[i].text);
        int64_t n = -42;

        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(tg_json_whole(v, cases[i].min, cases[i].max, &n),
                        cases[i].ok);
        CU_ASSERT_EQUAL(n, cases[i].ok ? cases[i].want : -42);
        cJSON_Delete(v);
    }
    CU_ASSERT_FALSE(tg_json_whole(NULL, 0, 1, NULL));
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"positions_of_members", test_positions_of_members},
        {"syntax_error_location", test_syntax_error_location},
        {"trailing_garbage", test_trailing_garbage},
        {"only_keys_and_duplicates", test_only_keys_and_duplicates},
        {"typed_getters", test_typed_getters},
        {"whole_numbers", test_whole_numbers},
        {NULL, NULL},
    };
    return tg_unit_run("common.json", cases);
}
