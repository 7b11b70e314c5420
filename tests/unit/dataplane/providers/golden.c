/* golden.c - see golden.h. */
#include "golden.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_unit.h"

static const char *
golden_dir(const char *set)
{
    static _Thread_local char dir[1024];
    const char               *src = getenv("TG_SRC");

    if (src != NULL) {
        snprintf(dir, sizeof(dir),
                 "%s/tests/unit/dataplane/providers/golden/%s", src, set);
    } else {
        /* Run by hand: CMake compiles this file by its absolute path. */
        const char *slash = strrchr(__FILE__, '/');
        int         n     = slash != NULL ? (int)(slash - __FILE__) : 1;
        snprintf(dir, sizeof(dir), "%.*s/golden/%s", n,
                 slash != NULL ? __FILE__ : ".", set);
    }
    return dir;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long  n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

static int
golden_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int
golden_each(const char *set, const char *kind, golden_fn fn)
{
    struct dirent **names = NULL;
    int n     = scandir(golden_dir(set), &names, golden_filter, alphasort);
    int count = 0;

    CU_ASSERT_FATAL(n > 0);
    for (int i = 0; i < n; i++) {
        char         path[1536];
        char        *text;
        cJSON       *root;
        const cJSON *c;

        snprintf(path, sizeof(path), "%s/%s", golden_dir(set),
                 names[i]->d_name);
        text = read_file(path);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        root = cJSON_Parse(text);
        if (root == NULL) {
            fprintf(stderr, "\n%s: not JSON\n", path);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(root);
        if (cJSON_IsObject(root)) {
            cJSON *arr = cJSON_CreateArray();
            cJSON_AddItemToArray(arr, root);
            root = arr;
        }
        cJSON_ArrayForEach(c, root)
        {
            const cJSON *k  = cJSON_GetObjectItemCaseSensitive(c, "kind");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
            char         label[512];
            CU_ASSERT_FATAL(cJSON_IsString(k));
            if (strcmp(k->valuestring, kind) != 0) {
                continue;
            }
            snprintf(label, sizeof(label), "%s:%s", names[i]->d_name,
                     cJSON_IsString(nm) ? nm->valuestring : "");
            fn(label, c);
            count++;
        }
        cJSON_Delete(root);
        free(text);
        free(names[i]);
    }
    free(names);
    return count;
}

const cJSON *
golden_get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

const char *
golden_gets_or(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = golden_get(o, key);

    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int64_t
golden_geti(const cJSON *o, const char *key)
{
    const cJSON *v = golden_get(o, key);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

void
golden_same_json(const char *label, const char *got, const cJSON *expected)
{
    cJSON *g  = cJSON_Parse(got);
    bool   eq = g != NULL && cJSON_Compare(g, expected, 1);

    if (!eq) {
        char *e = cJSON_PrintUnformatted(expected);
        fprintf(stderr, "\n%s:\n  expected %s\n  got      %s\n", label, e, got);
        cJSON_free(e);
    }
    CU_ASSERT(eq);
    cJSON_Delete(g);
}

void
golden_same_text(const char *label, const char *got, const char *expected)
{
    bool eq = strcmp(got, expected) == 0;

    if (!eq) {
        fprintf(stderr, "\n%s:\n--- expected\n%s--- got\n%s---\n", label,
                expected, got);
    }
    CU_ASSERT(eq);
}

void
golden_check_request(const char *label, const cJSON *c, tg_err rv,
                     const char *msg, const char *param, char *out, size_t len)
{
    const cJSON *err = golden_get(c, "error");

    if (err != NULL) {
        const char *want_param = golden_gets_or(err, "param", "");
        const char *want_msg   = golden_gets_or(err, "contains", "");
        bool        ok = rv == TG_EINVAL && strcmp(param, want_param) == 0 &&
                  strstr(msg, want_msg) != NULL;
        if (!ok) {
            fprintf(stderr, "\n%s: rv %d param '%s' msg '%s'\n", label, (int)rv,
                    rv == TG_OK ? "" : param, rv == TG_OK ? "" : msg);
        }
        CU_ASSERT(ok);
        CU_ASSERT_PTR_NULL(out);
        free(out);
        return;
    }
    if (rv != TG_OK) {
        fprintf(stderr, "\n%s: rv %d: %s (%s)\n", label, (int)rv, msg, param);
    }
    CU_ASSERT_EQUAL_FATAL(rv, TG_OK);
    CU_ASSERT_EQUAL(len, strlen(out));
    golden_same_json(label, out, golden_get(c, "expected"));
    free(out);
}
