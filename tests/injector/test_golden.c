/* injector.golden - every tests/injector/cases/NAME.review.json through
 * the webhook's answer (inj_review_handle), compared byte for byte with
 * NAME.response.json, the decoded patch with NAME.patch.json ([] when
 * none) and the pod after the patch with NAME.pod.json; every
 * NAME.input.yaml through render's path likewise (.patch.json, .pod.json).
 * NAME.query holding "default=inject" stands for /mutate?default=inject.
 * INJ_GOLDEN_UPDATE=1 rewrites the expected files instead (review them;
 * they are kept indented by two spaces: python3 -m json.tool --indent 2).
 * Also: malformed reviews get a 400 naming what is wrong. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inj_config.h"
#include "inj_patch.h"
#include "inj_render.h"
#include "inj_review.h"
#include "tg_yaml.h"
#include "tg_unit.h"

static inj_config g_cfg;
static int        g_cases;

static char *
gold_read(const char *name, const char *ext, size_t *len)
{
    char  path[1024];
    FILE *f;
    char *buf;
    long  n;

    snprintf(path, sizeof(path), "%s/%s%s", INJ_CASES, name, ext);
    if ((f = fopen(path, "rb")) == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_FATAL(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL) {
        *len = (size_t)n;
    }
    return buf;
}

/* gold_check compares v with the file NAME+ext: both printed unformatted,
 * so member order, array order and every value count, layout does not. */
static void
gold_check(const char *name, const char *ext, const cJSON *v)
{
    char  *got = cJSON_PrintUnformatted(v);
    char  *text;
    cJSON *want;
    char  *canon = NULL;
    char  *pretty;
    char   path[1024];
    FILE  *f;

    CU_ASSERT_FATAL(got != NULL);
    if (getenv("INJ_GOLDEN_UPDATE") != NULL) {
        snprintf(path, sizeof(path), "%s/%s%s", INJ_CASES, name, ext);
        CU_ASSERT_FATAL((f = fopen(path, "w")) != NULL);
        pretty = cJSON_Print(v);
        fprintf(f, "%s\n", pretty);
        fclose(f);
        free(pretty);
        free(got);
        return;
    }
    text = gold_read(name, ext, NULL);
    want = text != NULL ? cJSON_Parse(text) : NULL;
    if (want != NULL) {
        canon = cJSON_PrintUnformatted(want);
    }
    if (canon == NULL || strcmp(canon, got) != 0) {
        fprintf(stderr, "\n%s%s differs; got:\n%s\n", name, ext, got);
        CU_FAIL("golden file differs");
    }
    free(canon);
    cJSON_Delete(want);
    free(text);
    free(got);
}

static cJSON *
gold_patch_of(const cJSON *resp)
{
    const char *b64 = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "response"), "patch"));
    char  *text;
    size_t n;
    cJSON *p;

    if (b64 == NULL) {
        return cJSON_CreateArray();
    }
    CU_ASSERT_FATAL(inj_b64_decode(b64, &text, &n) == TG_OK);
    p = cJSON_ParseWithLength(text, n);
    free(text);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static void
gold_review(const char *name)
{
    size_t    len;
    char     *body  = gold_read(name, ".review.json", &len);
    char     *query = gold_read(name, ".query", NULL);
    inj_reply rep;
    char      err[512];
    cJSON    *resp;
    cJSON    *patch;
    cJSON    *pod;

    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT_FATAL(
        inj_review_handle(&g_cfg, body, len,
                          query != NULL &&
                              strncmp(query, "default=inject", 14) == 0,
                          &rep) == TG_OK);
    CU_ASSERT_EQUAL_FATAL(rep.status, 200);
    CU_ASSERT_FATAL((resp = cJSON_Parse(rep.body)) != NULL);
    gold_check(name, ".response.json", resp);
    patch = gold_patch_of(resp);
    gold_check(name, ".patch.json", patch);
    {
        cJSON *rv = cJSON_Parse(body);

        pod = cJSON_DetachItemFromObject(cJSON_GetObjectItem(rv, "request"),
                                         "object");
        cJSON_Delete(rv);
    }
    CU_ASSERT_FATAL(pod != NULL);
    if (inj_patch_apply(pod, patch, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "\n%s: %s\n", name, err);
        CU_FAIL("the patch does not apply");
    }
    gold_check(name, ".pod.json", pod);
    cJSON_Delete(pod);
    cJSON_Delete(patch);
    cJSON_Delete(resp);
    inj_reply_fini(&rep);
    free(query);
    free(body);
}

static void
gold_yaml(const char *name)
{
    char       path[1024];
    char       err[512];
    cJSON     *in;
    cJSON     *out;
    cJSON     *none = cJSON_CreateArray();
    inj_result res;

    snprintf(path, sizeof(path), "%s/%s.input.yaml", INJ_CASES, name);
    if (inj_render_file(path, &in, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "\n%s\n", err);
        CU_FAIL_FATAL("the YAML case does not read");
    }
    CU_ASSERT_FATAL(inj_render_pod(&g_cfg, in, NULL, false, &out, &res, err,
                                   sizeof(err)) == TG_OK);
    gold_check(name, ".patch.json", res.patch != NULL ? res.patch : none);
    gold_check(name, ".pod.json", out);
    inj_result_fini(&res);
    cJSON_Delete(none);
    cJSON_Delete(out);
    cJSON_Delete(in);
}

/* gold_each runs fn on every case whose file ends in ext. */
static void
gold_each(const char *ext, void (*fn)(const char *))
{
    DIR           *d = opendir(INJ_CASES);
    struct dirent *e;
    char           name[256];
    size_t         el = strlen(ext);

    CU_ASSERT_FATAL(d != NULL);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);

        if (n <= el || n - el >= sizeof(name) ||
            strcmp(e->d_name + n - el, ext) != 0) {
            continue;
        }
        memcpy(name, e->d_name, n - el);
        name[n - el] = '\0';
        fn(name);
        g_cases++;
    }
    closedir(d);
}

static void
test_cases(void)
{
    char err[512];

    CU_ASSERT_FATAL(inj_config_load(&g_cfg, INJ_CASES "/injector.json", err,
                                    sizeof(err)) == TG_OK);
    gold_each(".review.json", gold_review);
    gold_each(".input.yaml", gold_yaml);
    CU_ASSERT(g_cases >= 11);
    inj_config_fini(&g_cfg);
}

typedef struct bad_review {
    const char *body;
    const char *says;
} bad_review;

static void
test_malformed(void)
{
    static const bad_review bads[] = {
        {"not json", "not JSON"},
        {"{\"kind\":\"AdmissionReview\"} trailing", "not JSON"},
        {"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":"
         "\"AdmissionReview\",\"request\":{}}",
         "apiVersion"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}",
         "kind AdmissionReview"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
         "\"AdmissionReview\"}",
         "missing request"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
         "\"AdmissionReview\",\"request\":{\"object\":{}}}",
         "request.uid"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
         "\"AdmissionReview\",\"request\":{\"uid\":\"u\"}}",
         "request.object"},
    };
    inj_config cfg;
    inj_reply  rep;

    inj_config_defaults(&cfg);
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(inj_review_handle(&cfg, bads[i].body,
                                                strlen(bads[i].body), true,
                                                &rep),
                              TG_OK);
        CU_ASSERT_EQUAL(rep.status, 400);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.body, bads[i].says));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.log, bads[i].says));
        inj_reply_fini(&rep);
    }
    CU_ASSERT_EQUAL(
        inj_review_handle(&cfg, "{}", INJ_REVIEW_MAX_BYTES + 1, true, &rep),
        TG_OK);
    CU_ASSERT_EQUAL(rep.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.body, "4 MiB"));
    inj_reply_fini(&rep);
}

/* The answer echoes request.uid itself, not a member whose name differs
 * only in case (cJSON_GetObjectItem ignores case). */
static void
test_uid_echo(void)
{
    static const char body[] =
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
        "\"AdmissionReview\",\"request\":{\"UID\":7,\"Uid\":\"other\","
        "\"uid\":\"the-uid\",\"operation\":\"DELETE\",\"object\":{}}}";
    inj_config cfg;
    inj_reply  rep;

    inj_config_defaults(&cfg);
    CU_ASSERT_EQUAL_FATAL(
        inj_review_handle(&cfg, body, strlen(body), false, &rep), TG_OK);
    CU_ASSERT_EQUAL(rep.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.body, "\"uid\":\"the-uid\""));
    inj_reply_fini(&rep);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"every golden case", test_cases},
        {"malformed reviews", test_malformed},
        {"the uid echoed is request.uid", test_uid_echo},
        {NULL, NULL},
    };

    return tg_unit_run("injector.golden", cases);
}
