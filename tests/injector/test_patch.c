/* injector.patch - RFC 6901 escaping of keys that hold "/" and "~" (every
 * tollgate.io/ annotation) and the small RFC 6902 apply render uses: adds
 * into objects and arrays (index, "-"), replace, and every refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inj_patch.h"
#include "tg_unit.h"

static void
test_escape(void)
{
    char out[64];

    CU_ASSERT_EQUAL(inj_ptr_escape(out, sizeof(out), "tollgate.io/injected"),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(out, "tollgate.io~1injected");
    CU_ASSERT_EQUAL(inj_ptr_escape(out, sizeof(out), "a~/b/~"), TG_OK);
    CU_ASSERT_STRING_EQUAL(out, "a~0~1b~1~0");
    CU_ASSERT_EQUAL(inj_ptr_escape(out, sizeof(out), ""), TG_OK);
    CU_ASSERT_STRING_EQUAL(out, "");
    /* "~1" must not come back as "/" through a double unescape. */
    CU_ASSERT_EQUAL(inj_ptr_escape(out, sizeof(out), "~1"), TG_OK);
    CU_ASSERT_STRING_EQUAL(out, "~01");
    CU_ASSERT_EQUAL(inj_ptr_escape(out, 5, "a/b/c"), TG_ETOOBIG);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(inj_ptr_escape(out, 6, "ab/c"), TG_OK);
    CU_ASSERT_EQUAL(inj_ptr_escape(out, 5, "ab/c"), TG_ETOOBIG);
}

/* apply runs patch (JSON text) on doc (JSON text) and returns the result
 * printed unformatted, or NULL when it fails (err gets why). */
static char *
apply(const char *doc, const char *patch, char *err, size_t errlen)
{
    cJSON *d   = cJSON_Parse(doc);
    cJSON *p   = cJSON_Parse(patch);
    char  *out = NULL;

    CU_ASSERT_FATAL(d != NULL && p != NULL);
    if (inj_patch_apply(d, p, err, errlen) == TG_OK) {
        out = cJSON_PrintUnformatted(d);
    }
    cJSON_Delete(d);
    cJSON_Delete(p);
    return out;
}

typedef struct pcase {
    const char *doc;
    const char *patch;
    const char *want; /* NULL: refused */
} pcase;

static const pcase pcases[] = {
    {"{\"metadata\":{}}",
     "[{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"a/b\":"
     "\"1\"}},{\"op\":\"add\",\"path\":\"/metadata/annotations/"
     "tollgate.io~1injected\",\"value\":\"true\"}]",
     "{\"metadata\":{\"annotations\":{\"a/b\":\"1\",\"tollgate.io/"
     "injected\":\"true\"}}}"},
    {"{\"a\":[1,2]}",
     "[{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0},{\"op\":\"add\","
     "\"path\":\"/a/-\",\"value\":3},{\"op\":\"add\",\"path\":\"/a/4\","
     "\"value\":4}]",
     "{\"a\":[0,1,2,3,4]}"},
    {"{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":9}]",
     "{\"a\":[1,9,2]}"},
    {"{\"a\":{\"b\":1}}",
     "[{\"op\":\"replace\",\"path\":\"/a/b\",\"value\":2},{\"op\":\"add\","
     "\"path\":\"/a/b\",\"value\":3}]",
     "{\"a\":{\"b\":3}}"},
    {"{\"a\":[1]}", "[{\"op\":\"replace\",\"path\":\"/a/0\",\"value\":5}]",
     "{\"a\":[5]}"},
    {"{\"~a\":{}}", "[{\"op\":\"add\",\"path\":\"/~0a/x~1y\",\"value\":1}]",
     "{\"~a\":{\"x/y\":1}}"},
    /* Refusals. */
    {"{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":1}]", NULL},
    {"{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":1}]", NULL},
    {"{\"a\":[1]}", "[{\"op\":\"replace\",\"path\":\"/a/-\",\"value\":1}]",
     NULL},
    {"{\"a\":[1]}", "[{\"op\":\"replace\",\"path\":\"/a/1\",\"value\":1}]",
     NULL},
    {"{\"a\":{}}", "[{\"op\":\"replace\",\"path\":\"/a/b\",\"value\":1}]",
     NULL},
    {"{}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", NULL},
    {"{}", "[{\"op\":\"add\",\"path\":\"\",\"value\":1}]", NULL},
    {"{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]", NULL},
    {"{}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", NULL},
    {"{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", NULL},
    {"{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", NULL},
    {"{\"a\":[1]}",
     "[{\"op\":\"add\",\"path\":\"/a/99999999999999999999\",\"value\":1}]",
     NULL},
    {"{}", "{\"op\":\"add\"}", NULL},
};

static void
test_apply(void)
{
    char err[256];

    for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
        char *got;

        err[0] = '\0';
        got    = apply(pcases[i].doc, pcases[i].patch, err, sizeof(err));
        if (pcases[i].want == NULL) {
            CU_ASSERT_PTR_NULL(got);
            CU_ASSERT(strlen(err) > 0);
        } else {
            if (got == NULL) {
                fprintf(stderr, "\ncase %zu: %s\n", i, err);
            }
            CU_ASSERT_PTR_NOT_NULL_FATAL(got);
            CU_ASSERT_STRING_EQUAL(got, pcases[i].want);
        }
        free(got);
    }
}

static void
test_add_builds_ops(void)
{
    cJSON *ops = cJSON_CreateArray();
    char  *text;

    CU_ASSERT_EQUAL(inj_patch_add(ops, "/x~1y", cJSON_CreateNumber(1)), TG_OK);
    CU_ASSERT_EQUAL(inj_patch_add(ops, "/z", NULL), TG_ENOMEM);
    text = cJSON_PrintUnformatted(ops);
    CU_ASSERT_STRING_EQUAL(text,
                           "[{\"op\":\"add\",\"path\":\"/x~1y\",\"value\":1}]");
    free(text);
    cJSON_Delete(ops);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"pointer escaping", test_escape},
        {"apply add and replace", test_apply},
        {"add operations", test_add_builds_ops},
        {NULL, NULL},
    };

    return tg_unit_run("injector.patch", cases);
}
