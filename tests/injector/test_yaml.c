/* injector.yaml - YAML (and JSON) manifests to cJSON: scalar typing, block
 * and flow collections, and nasty input (deep nesting, huge scalars,
 * invalid UTF-8, anchors, several documents) refused with a message, never
 * a crash. One table of cases. */
#include <stdlib.h>
#include <string.h>

#include "tg_yaml.h"
#include "tg_unit.h"

typedef struct ycase {
    const char *text;
    const char *want; /* unformatted JSON; NULL: refused */
    const char *says; /* a piece of the message when refused */
} ycase;

static const ycase ycases[] = {
    {"a: 1\nb: -2\nc: 1.5\nd: true\ne: False\nf: null\ng: ~\nh:\n",
     "{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":true,\"e\":false,\"f\":null,\"g\":null,"
     "\"h\":null}",
     NULL},
    {"a: \"1\"\nb: 'true'\nc: \"null\"\nd: yes\ne: 0x1F\nf: 1e3\ng: 012\n",
     "{\"a\":\"1\",\"b\":\"true\",\"c\":\"null\",\"d\":\"yes\",\"e\":\"0x1F\","
     "\"f\":\"1e3\",\"g\":12}",
     NULL},
    {"big: 1000000000000000\nok: 999999999999999\nlong: 0.1234567890123456\n",
     "{\"big\":\"1000000000000000\",\"ok\":999999999999999,\"long\":"
     "\"0.1234567890123456\"}",
     NULL},
    {"l: [1, \"x\", {k: v}]\nm: {a: [], b: {}}\n",
     "{\"l\":[1,\"x\",{\"k\":\"v\"}],\"m\":{\"a\":[],\"b\":{}}}", NULL},
    {"- a\n- - b\n  - c\n- k: v\n  j: w\n",
     "[\"a\",[\"b\",\"c\"],{\"k\":\"v\",\"j\":\"w\"}]", NULL},
    {"s: |\n  line1\n  line2\nf: >\n  folded\n  text\n",
     "{\"s\":\"line1\\nline2\\n\",\"f\":\"folded text\\n\"}", NULL},
    {"---\na: 1\n...\n", "{\"a\":1}", NULL},
    {"  {\"a\": [1, {\"b\": null}]}\n", "{\"a\":[1,{\"b\":null}]}", NULL},
    /* Refusals. */
    {"", NULL, "no YAML document"},
    {"a: &x 1\nb: *x\n", NULL, "anchors"},
    {"a: *x\n", NULL, NULL},
    {"a: 1\n---\nb: 2\n", NULL, "more than one"},
    {"a: 1\na: 2\n", NULL, "twice"},
    {"? [a]\n: 1\n", NULL, "scalar"},
    {"a: \"x\\0y\"\n", NULL, "NUL"},
    {"a: \xff\xfe\n", NULL, "UTF-8"},
    {"a: \"\xc3\x28\"\n", NULL, "UTF-8"},
    {"a: [1, 2\n", NULL, NULL},
    {"a:\tb: c\n  - d\n", NULL, NULL},
    {"{\"a\": 1, \"a\": 2}", NULL, "twice"},
    {"{\"a\": \"\xff\"}", NULL, "UTF-8"},
    {"{\"a\": 1} x", NULL, NULL},
};

static void
test_table(void)
{
    for (size_t i = 0; i < sizeof(ycases) / sizeof(ycases[0]); i++) {
        const ycase *c        = &ycases[i];
        cJSON       *v        = NULL;
        char         err[256] = "";
        tg_err rv = tg_yaml_manifest_parse(c->text, strlen(c->text), &v, err,
                                           sizeof(err));

        if (c->want != NULL) {
            char *got;

            if (rv != TG_OK) {
                fprintf(stderr, "\ncase %zu: %s\n", i, err);
            }
            CU_ASSERT_EQUAL_FATAL(rv, TG_OK);
            got = cJSON_PrintUnformatted(v);
            if (strcmp(got, c->want) != 0) {
                fprintf(stderr, "\ncase %zu: got %s\n", i, got);
            }
            CU_ASSERT_STRING_EQUAL(got, c->want);
            free(got);
        } else {
            if (rv == TG_OK || strlen(err) == 0 ||
                (c->says != NULL && strstr(err, c->says) == NULL)) {
                fprintf(stderr, "\ncase %zu: rv %d, message \"%s\"\n", i, rv,
                        err);
            }
            CU_ASSERT_EQUAL(rv, TG_EINVAL);
            CU_ASSERT_PTR_NULL(v);
            CU_ASSERT(c->says == NULL || strstr(err, c->says) != NULL);
        }
        cJSON_Delete(v);
    }
}

/* nest writes n levels of open ("- " or "[" or "a: ") into a string. */
static char *
nest(const char *open, const char *close, int n, const char *leaf)
{
    size_t lo = strlen(open);
    size_t lc = strlen(close);
    char  *s  = malloc((lo + lc) * (size_t)n + strlen(leaf) + 2);
    char  *p  = s;

    for (int i = 0; i < n; i++, p += lo) {
        memcpy(p, open, lo);
    }
    p += sprintf(p, "%s", leaf);
    for (int i = 0; i < n; i++, p += lc) {
        memcpy(p, close, lc);
    }
    *p = '\0';
    return s;
}

static void
test_deep(void)
{
    char  *ok    = nest("[", "]", TG_YAML_DEPTH - 1, "1");
    char  *deep  = nest("[", "]", 100000, "1");
    char  *deepm = nest("{a: ", "}", 100000, "1");
    cJSON *v     = NULL;
    char   err[256];

    CU_ASSERT_EQUAL(tg_yaml_parse(ok, strlen(ok), &v, err, sizeof(err)), TG_OK);
    cJSON_Delete(v);
    CU_ASSERT_EQUAL(tg_yaml_parse(deep, strlen(deep), &v, err, sizeof(err)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "deeper"));
    CU_ASSERT_EQUAL(tg_yaml_parse(deepm, strlen(deepm), &v, err, sizeof(err)),
                    TG_EINVAL);
    CU_ASSERT_EQUAL(
        tg_yaml_manifest_parse(deep, strlen(deep), &v, err, sizeof(err)),
        TG_EINVAL);
    free(ok);
    free(deep);
    free(deepm);
}

static void
test_huge_scalar(void)
{
    size_t n    = 3u << 20;
    char  *text = malloc(n + 16);
    cJSON *v    = NULL;
    char   err[256];

    memcpy(text, "k: ", 3);
    memset(text + 3, 'x', n);
    memcpy(text + 3 + n, "\n", 2);
    CU_ASSERT_EQUAL_FATAL(
        tg_yaml_parse(text, strlen(text), &v, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(v, "k")->valuestring), n);
    cJSON_Delete(v);
    free(text);
}

static void
test_many_keys(void)
{
    size_t cap  = 16 * 5000;
    char  *text = malloc(cap);
    size_t len  = 0;
    cJSON *v    = NULL;
    char   err[256];

    for (int i = 0; i < 5000; i++) {
        len += (size_t)snprintf(text + len, cap - len, "k%d: %d\n", i, i);
    }
    CU_ASSERT_EQUAL(tg_yaml_parse(text, len, &v, err, sizeof(err)), TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than"));
    free(text);
}

/* With aliases on (LiteLLM configs): an alias is a copy, "<<" merges with
 * the mapping's own keys winning; unknown aliases and self-reference are
 * refused; positions name the line of each node. */
static void
test_aliases(void)
{
    static const char text[] = "base: &b\n"
                               "  api_base: http://x\n"
                               "  rpm: 10\n"
                               "list:\n"
                               "  - <<: *b\n"
                               "    rpm: 20\n"
                               "  - *b\n"
                               "  - <<: [*b, {extra: 1}]\n";
    tg_yaml_opts      opts   = {.aliases = true};
    tg_yaml_doc      *d      = NULL;
    char              err[256];
    char             *got;
    const cJSON      *l;
    int               line, col;

    CU_ASSERT_EQUAL_FATAL(
        tg_yaml_load(text, strlen(text), &opts, &d, err, sizeof(err)), TG_OK);
    got = cJSON_PrintUnformatted(tg_yaml_root(d));
    CU_ASSERT_STRING_EQUAL(
        got, "{\"base\":{\"api_base\":\"http://x\",\"rpm\":10},\"list\":["
             "{\"rpm\":20,\"api_base\":\"http://x\"},"
             "{\"api_base\":\"http://x\",\"rpm\":10},"
             "{\"api_base\":\"http://x\",\"rpm\":10,\"extra\":1}]}");
    free(got);
    l = cJSON_GetObjectItem(tg_yaml_root(d), "list");
    CU_ASSERT(tg_yaml_pos(d, cJSON_GetArrayItem(l, 0), &line, &col));
    CU_ASSERT_EQUAL(line, 5);
    CU_ASSERT(tg_yaml_pos(
        d, cJSON_GetObjectItem(cJSON_GetArrayItem(l, 0), "rpm"), &line, &col));
    CU_ASSERT_EQUAL(line, 6);
    CU_ASSERT_EQUAL(col, 5);
    CU_ASSERT(tg_yaml_pos(d, cJSON_GetArrayItem(l, 1), &line, &col));
    CU_ASSERT_EQUAL(line, 7);
    CU_ASSERT(tg_yaml_pos(
        d, cJSON_GetObjectItem(cJSON_GetArrayItem(l, 1), "rpm"), &line, &col));
    CU_ASSERT_EQUAL(line, 7); /* a copy is where its alias is */
    CU_ASSERT_FALSE(tg_yaml_pos(d, l->child->next->next->next, &line, &col));
    tg_yaml_doc_destroy(d);

    d = NULL;
    CU_ASSERT_EQUAL(tg_yaml_load("a: *nope\n", 9, &opts, &d, err, sizeof(err)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "1:4: the alias *nope"));
    CU_ASSERT_EQUAL(
        tg_yaml_load("a: &s [1, *s]\n", 14, &opts, &d, err, sizeof(err)),
        TG_EINVAL);
    CU_ASSERT_EQUAL(
        tg_yaml_load("a: &s 1\n<<: *s\n", 15, &opts, &d, err, sizeof(err)),
        TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "merge key"));
    CU_ASSERT_PTR_NULL(d);
}

/* Billion laughs: each level doubles ten times; the node budget stops it
 * long before memory does. */
static void
test_laughs(void)
{
    static const char four[] = "a: &a [1, 2, 3]\nb: [*a, *a, *a, *a]\n";
    char              text[2048];
    size_t            len  = 0;
    tg_yaml_opts      opts = {.aliases = true};
    tg_yaml_doc      *d    = NULL;
    char              err[256];

    len += (size_t)snprintf(text + len, sizeof(text) - len, "l0: &l0 lol\n");
    for (int i = 1; i < 10; i++) {
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "l%d: &l%d [*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,"
                                "*l%d,*l%d,*l%d,*l%d]\n",
                                i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                                i - 1, i - 1, i - 1, i - 1);
    }
    CU_ASSERT_EQUAL(tg_yaml_load(text, len, &opts, &d, err, sizeof(err)),
                    TG_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than 200000 nodes"));
    CU_ASSERT_PTR_NULL(d);
    opts.max_nodes = 50;
    CU_ASSERT_EQUAL(
        tg_yaml_load(four, strlen(four), &opts, &d, err, sizeof(err)), TG_OK);
    tg_yaml_doc_destroy(d);
    opts.max_nodes = 10;
    d              = NULL;
    CU_ASSERT_EQUAL(
        tg_yaml_load(four, strlen(four), &opts, &d, err, sizeof(err)),
        TG_ETOOBIG);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"scalars and collections", test_table},
        {"deep nesting", test_deep},
        {"a 3 MiB scalar", test_huge_scalar},
        {"a mapping with too many keys", test_many_keys},
        {"aliases, merge keys and positions", test_aliases},
        {"billion laughs against the node budget", test_laughs},
        {NULL, NULL},
    };

    return tg_unit_run("injector.yaml", cases);
}
