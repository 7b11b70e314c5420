/* common.jstrict - one strict reading of a request body: every way a body
 * could be read one way by the policy and another by the provider is
 * refused, with the path of the field. One table of cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_jstrict.h"
#include "tg_unit.h"

typedef struct jcase {
    const char *name;
    const char *text;
    size_t      len; /* 0: strlen(text) */
    tg_err      want;
    const char *path; /* NULL: not checked */
    const char *says; /* a piece of the message; NULL: not checked */
} jcase;

static const jcase cases[] = {
    {"an ordinary chat body",
     "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
     "\"h\\u00e9llo \\ud83d\\ude00\"}],\"max_tokens\":5,\"stream\":true}",
     0, TG_OK, NULL, NULL},
    {"whitespace around the value", " \r\n\t{} \n", 0, TG_OK, NULL, NULL},
    {"UTF-8 in a string", "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", 0,
     TG_OK, NULL, NULL},
    {"the same name in two objects", "{\"a\":{\"x\":1},\"b\":{\"x\":2}}", 0,
     TG_OK, NULL, NULL},
    {"a duplicate model", "{\"model\":\"gpt-4o-mini\",\"messages\":[],"
                          "\"model\":\"mock-small\"}",
     0, TG_EINVAL, "model", "twice"},
    {"a duplicate through an escape",
     "{\"max_tokens\":1,\"\\u006dax_tokens\":100000}", 0, TG_EINVAL,
     "max_tokens", "twice"},
    {"a nested duplicate",
     "{\"messages\":[{\"role\":\"user\"},{\"role\":\"user\",\"content\":\"a\","
     "\"content\":\"b\"}]}",
     0, TG_EINVAL, "messages[1].content", "twice"},
    {"bytes after the value", "{\"model\":\"a\"} {\"model\":\"b\"}", 0,
     TG_EINVAL, "", "after the JSON value"},
    {"a NUL escape", "{\"model\":\"gpt-4o-mini\\u0000x\"}", 0, TG_EINVAL,
     "model", "\\u0000"},
    {"a raw NUL", "{\"model\":\"a\0b\"}", 15, TG_EINVAL, "model",
     "control character"},
    {"invalid UTF-8", "{\"model\":\"\xff\"}", 0, TG_EINVAL, "model",
     "invalid UTF-8"},
    {"an overlong encoding", "{\"a\":\"\xc0\xaf\"}", 0, TG_EINVAL, "a",
     "invalid UTF-8"},
    {"a UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}", 0, TG_EINVAL, "a",
     "invalid UTF-8"},
    {"above U+10FFFF", "{\"a\":\"\xf4\x90\x80\x80\"}", 0, TG_EINVAL, "a",
     "invalid UTF-8"},
    {"invalid UTF-8 in a name", "{\"\xfe\":1}", 0, TG_EINVAL, NULL,
     "invalid UTF-8"},
    {"a lone high surrogate", "{\"a\":\"\\ud83d\"}", 0, TG_EINVAL, "a",
     "surrogate"},
    {"a lone low surrogate", "{\"a\":\"\\ude00\"}", 0, TG_EINVAL, "a",
     "surrogate"},
    {"a number out of range", "{\"max_tokens\":1e400}", 0, TG_EINVAL,
     "max_tokens", "out of range"},
    {"a leading zero", "{\"a\":01}", 0, TG_EINVAL, NULL, NULL},
    {"a trailing comma", "{\"a\":1,}", 0, TG_EINVAL, NULL, NULL},
    {"single quotes", "{'a':1}", 0, TG_EINVAL, NULL, NULL},
    {"a cut body", "{\"model\":\"gpt", 0, TG_EINVAL, "model", "never ends"},
    {"an empty body", "", 0, TG_EINVAL, "", NULL},
    {"an unknown escape", "{\"a\":\"\\x41\"}", 0, TG_EINVAL, "a", "escape"},
    {NULL, NULL, 0, TG_OK, NULL, NULL},
};

static void
test_cases(void)
{
    for (const jcase *c = cases; c->name != NULL; c++) {
        char   path[128];
        char   msg[256];
        size_t len = c->len ? c->len : strlen(c->text);
        tg_err rv  = tg_jstrict_check(c->text, len, path, sizeof(path), msg,
                                      sizeof(msg));
        if (rv != c->want ||
            (c->path != NULL && strcmp(path, c->path) != 0) ||
            (c->says != NULL && strstr(msg, c->says) == NULL)) {
            fprintf(stderr, "case \"%s\": rv %d path \"%s\" msg \"%s\"\n",
                    c->name, (int)rv, path, msg);
            CU_FAIL(c->name);
        }
    }
}

/* Deep nesting is refused at the limit, not by running out of stack. */
static void
test_depth(void)
{
    char   path[512];
    char   msg[256];
    size_t n = TG_JSTRICT_DEPTH + 1;
    char  *t = malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++) {
        t[i]         = '[';
        t[2 * n - 1 - i] = ']';
    }
    t[2 * n] = '\0';
    CU_ASSERT_EQUAL(tg_jstrict_check(t, 2 * n, path, sizeof(path), msg,
                                     sizeof(msg)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "nested deeper"));
    /* One level less reads. */
    CU_ASSERT_EQUAL(tg_jstrict_check(t + 1, 2 * n - 2, path, sizeof(path),
                                     msg, sizeof(msg)),
                    TG_OK);
    free(t);
}

/* An object with many members is checked in linear time and a duplicate
 * among them is found wherever it is. */
static void
test_many_members(void)
{
    size_t n   = 50000;
    size_t cap = n * 16 + 64;
    char  *t   = malloc(cap);
    size_t o   = 0;
    char   path[128];
    char   msg[256];

    t[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(t + o, cap - o, "%s\"k%zu\":%zu", i ? "," : "",
                              i, i);
    }
    t[o++] = '}';
    CU_ASSERT_EQUAL(tg_jstrict_check(t, o, path, sizeof(path), msg,
                                     sizeof(msg)),
                    TG_OK);
    /* The last member renamed to the first one's name. */
    o--;
    o += (size_t)snprintf(t + o, cap - o, ",\"k0\":1}");
    CU_ASSERT_EQUAL(tg_jstrict_check(t, o, path, sizeof(path), msg,
                                     sizeof(msg)),
                    TG_EINVAL);
    CU_ASSERT_STRING_EQUAL(path, "k0");
    free(t);
}

/* Scrubbed text is valid UTF-8 with no NUL, cut at a character boundary. */
static void
test_scrub(void)
{
    char out[16];

    tg_utf8_scrub("a\xff" "b\xc3", 4, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    tg_utf8_scrub("\xe2\x82\xac\xe2\x82\xac", 6, out, 5);
    CU_ASSERT_STRING_EQUAL(out, "\xe2\x82\xac"); /* no half a euro */
    CU_ASSERT_EQUAL(tg_utf8_valid("ok\xc3\xa9\xff", 5), 4);
}

int
main(void)
{
    static const tg_unit_case all[] = {
        {"cases", test_cases},
        {"depth", test_depth},
        {"many_members", test_many_members},
        {"scrub", test_scrub},
        {NULL, NULL},
    };
    return tg_unit_run("common.jstrict", all);
}
