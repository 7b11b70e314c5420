/* dataplane.gem_in - a Gemini client's request read into OpenAI's chat
 * form, and OpenAI answers (whole, streamed, errors) rendered back in
 * Gemini's shape, checked against golden transcripts in golden/gem_in/:
 * {"kind": ..., "input"/"events": ..., "expected": ...}. Bodies are
 * compared as JSON values; streams byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_gem_in.h"
#include "golden.h"
#include "tg_unit.h"

static dp_gemin_op
op_of(const cJSON *c)
{
    const char *op = golden_gets_or(c, "op", "generate");

    return strcmp(op, "stream") == 0  ? DP_GEMIN_STREAM
           : strcmp(op, "count") == 0 ? DP_GEMIN_COUNT
                                      : DP_GEMIN_GENERATE;
}

/* ---- requests ----------------------------------------------------------- */

static void
case_request(const char *label, const cJSON *c)
{
    const cJSON *in   = golden_get(c, "input");
    char        *body = cJSON_IsString(in) ? NULL : cJSON_PrintUnformatted(in);
    const char  *text = body != NULL ? body : in->valuestring;
    char         msg[512];
    char         param[96];
    char        *out = NULL;
    size_t       len = 0;
    tg_err       rv;

    rv = dp_gemin_req_to_openai(text, strlen(text), op_of(c),
                                golden_gets_or(c, "model", "m"), &out, &len,
                                msg, sizeof(msg), param, sizeof(param));
    golden_check_request(label, c, rv, msg, param, out, len);
    cJSON_free(body);
}

static void
test_request(void)
{
    CU_ASSERT(golden_each("gem_in", "request", case_request) >= 10);
}

/* ---- whole answers ------------------------------------------------------ */

static void
case_reply(const char *label, const cJSON *c)
{
    char  *body = cJSON_PrintUnformatted(golden_get(c, "input"));
    tg_buf out;
    tg_err rv;

    tg_buf_init(&out, 0);
    rv = dp_gemin_reply(body, strlen(body), &out);
    if (golden_get(c, "expected_rv") != NULL) {
        CU_ASSERT_STRING_EQUAL(tg_strerror(rv),
                               golden_gets_or(c, "expected_rv", ""));
        CU_ASSERT_EQUAL(out.len, 0);
    } else {
        CU_ASSERT_EQUAL_FATAL(rv, TG_OK);
        golden_same_json(label, out.data, golden_get(c, "expected"));
    }
    tg_buf_fini(&out);
    cJSON_free(body);
}

static void
test_reply(void)
{
    CU_ASSERT(golden_each("gem_in", "reply", case_reply) >= 4);
}

/* ---- streams ------------------------------------------------------------ */

/* expected_stream joins the expected events as "data: <e>\n\n". */
static char *
expected_stream(const cJSON *c)
{
    tg_buf       b;
    const cJSON *e;

    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&b, "", 0), TG_OK);
    cJSON_ArrayForEach(e, golden_get(c, "expected"))
    {
        CU_ASSERT_EQUAL_FATAL(tg_buf_printf(&b, "data: %s\n\n", e->valuestring),
                              TG_OK);
    }
    return b.data;
}

/* feed_all feeds the case's OpenAI events ("data: <e>\n\n" each) cut
 * every `cut` bytes (0: whole), then finishes. */
static void
feed_all(const cJSON *c, size_t cut, tg_buf *out)
{
    dp_gemin_stream *s =
        dp_gemin_stream_create(golden_gets_or(c, "model", "m"));
    const cJSON *ev;
    tg_buf       in;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    tg_buf_init(&in, 0);
    cJSON_ArrayForEach(ev, golden_get(c, "events"))
    {
        char *d = cJSON_IsString(ev) ? NULL : cJSON_PrintUnformatted(ev);
        CU_ASSERT_EQUAL_FATAL(
            tg_buf_printf(&in, "data: %s\n\n", d != NULL ? d : ev->valuestring),
            TG_OK);
        cJSON_free(d);
    }
    for (size_t off = 0; off < in.len;) {
        size_t n = cut == 0 || in.len - off < cut ? in.len - off : cut;
        CU_ASSERT_EQUAL(dp_gemin_stream_feed(s, in.data + off, n, out), TG_OK);
        off += n;
    }
    CU_ASSERT_EQUAL(dp_gemin_stream_finish(s, out), TG_OK);
    dp_gemin_stream_destroy(s);
    tg_buf_fini(&in);
}

static void
case_stream(const char *label, const cJSON *c)
{
    char  *want = expected_stream(c);
    tg_buf whole, cut;

    tg_buf_init(&whole, 0);
    tg_buf_init(&cut, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&whole, "", 0), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&cut, "", 0), TG_OK);
    feed_all(c, 0, &whole);
    feed_all(c, 7, &cut); /* any cut of the bytes renders the same */
    golden_same_text(label, whole.data, want);
    golden_same_text(label, cut.data, want);
    tg_buf_fini(&whole);
    tg_buf_fini(&cut);
    free(want);
}

static void
test_stream(void)
{
    CU_ASSERT(golden_each("gem_in", "stream", case_stream) >= 4);
}

/* ---- errors ------------------------------------------------------------- */

static void
case_error(const char *label, const cJSON *c)
{
    char  *body = cJSON_PrintUnformatted(golden_get(c, "input"));
    tg_buf out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(
        dp_gemin_error_from_openai((unsigned)golden_geti(c, "status"), body,
                                   strlen(body), golden_geti(c, "retry"), &out),
        TG_OK);
    golden_same_json(label, out.data, golden_get(c, "expected"));
    tg_buf_fini(&out);
    cJSON_free(body);
}

static void
test_error(void)
{
    CU_ASSERT(golden_each("gem_in", "error", case_error) >= 5);
}

/* ---- paths -------------------------------------------------------------- */

static void
test_path(void)
{
    static const struct {
        const char *url;
        bool        ours;
        dp_gemin_op op;
        const char *model;
    } cases[] = {
        {"/v1beta/models/gemini-2.5-flash:generateContent", true,
         DP_GEMIN_GENERATE, "gemini-2.5-flash"},
        {"/v1beta/models/gpt-4o:streamGenerateContent", true, DP_GEMIN_STREAM,
         "gpt-4o"},
        {"/v1/models/openai/gpt-4o:countTokens", true, DP_GEMIN_COUNT,
         "openai/gpt-4o"},
        {"/v1beta/models/m:embedContent", true, DP_GEMIN_NONE, "m"},
        {"/v1beta/models/m", true, DP_GEMIN_NONE, ""},
        {"/v1beta/files", true, DP_GEMIN_NONE, ""},
        {"/v1/models/m", false, DP_GEMIN_NONE, ""},
        {"/v1/models", false, DP_GEMIN_NONE, ""},
        {"/v1/chat/completions", false, DP_GEMIN_NONE, ""},
        /* 64 characters do not fit 64 bytes: no model, never a cut one */
        {"/v1beta/models/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         ":generateContent",
         true, DP_GEMIN_GENERATE, ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dp_gemin_op op = DP_GEMIN_NONE;
        char        model[64];
        bool ours = dp_gemin_path(cases[i].url, &op, model, sizeof(model));
        CU_ASSERT_EQUAL(ours, cases[i].ours);
        if (ours) {
            CU_ASSERT_EQUAL(op, cases[i].op);
            CU_ASSERT_STRING_EQUAL(model, cases[i].model);
        }
    }
}

static void
test_status_names(void)
{
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(400), "INVALID_ARGUMENT");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(401), "UNAUTHENTICATED");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(403), "PERMISSION_DENIED");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(404), "NOT_FOUND");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(429), "RESOURCE_EXHAUSTED");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(500), "INTERNAL");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(503), "UNAVAILABLE");
    CU_ASSERT_STRING_EQUAL(dp_gemin_status(504), "DEADLINE_EXCEEDED");
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"request_to_openai", test_request},
        {"reply_from_openai", test_reply},
        {"stream_from_openai", test_stream},
        {"error_from_openai", test_error},
        {"path", test_path},
        {"status_names", test_status_names},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.gem_in", cases);
}
