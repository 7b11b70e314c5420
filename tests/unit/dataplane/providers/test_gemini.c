/* dataplane.gemini - OpenAI <-> Gemini generateContent translation, checked
 * against golden transcripts in golden/gemini/: each file is one case or
 * an array of cases, {"kind": ..., "input"/"events": ..., "expected": ...}.
 * Bodies are compared as JSON values; streams byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_gemini.h"
#include "golden.h"
#include "tg_unit.h"

/* check_usage compares u with {"prompt","completion","cached"} when the
 * case has "usage". */
static void
check_usage(const char *label, const dp_usage_counts *u, const cJSON *c)
{
    const cJSON *e = golden_get(c, "usage");
    bool         eq;

    if (e == NULL) {
        return;
    }
    eq = u->found && u->prompt_tokens == golden_geti(e, "prompt") &&
         u->completion_tokens == golden_geti(e, "completion") &&
         u->cached_tokens == golden_geti(e, "cached");
    if (!eq) {
        fprintf(stderr,
                "\n%s: usage found %d prompt %lld completion %lld cached "
                "%lld\n",
                label, (int)u->found, (long long)u->prompt_tokens,
                (long long)u->completion_tokens, (long long)u->cached_tokens);
    }
    CU_ASSERT(eq);
}

/* expected_stream joins the expected events, each followed by "\n\n". */
static char *
expected_stream(const cJSON *c)
{
    tg_buf       b;
    const cJSON *e;

    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&b, "", 0), TG_OK);
    cJSON_ArrayForEach(e, golden_get(c, "expected"))
    {
        CU_ASSERT_EQUAL_FATAL(tg_buf_printf(&b, "%s\n\n", e->valuestring), TG_OK);
    }
    return b.data;
}

static dp_gem_resp_meta
meta_of(const cJSON *c)
{
    const cJSON     *m    = golden_get(c, "meta");
    dp_gem_resp_meta meta = {
        .id          = golden_gets_or(m, "id", "x"),
        .model       = golden_gets_or(m, "model", "m"),
        .created     = golden_geti(m, "created"),
        .call_prefix = golden_gets_or(m, "call_prefix", NULL),
    };
    return meta;
}

/* ---- requests ----------------------------------------------------------- */

static void
case_openai_request(const char *label, const cJSON *c)
{
    const cJSON    *o    = golden_get(c, "opts");
    dp_gem_req_opts opts = {
        .max_tokens_default = golden_geti(o, "max_tokens_default"),
        .max_tokens_clamp   = golden_geti(o, "max_tokens_clamp"),
    };
    char   msg[256];
    char   param[96];
    char  *out = NULL;
    size_t len = 0;
    tg_err rv  = dp_gem_req_from_openai(golden_get(c, "input"), &opts, &out, &len, msg,
                                        sizeof(msg), param, sizeof(param));

    golden_check_request(label, c, rv, msg, param, out, len);
}

static void
test_openai_request(void)
{
    CU_ASSERT(golden_each("gemini", "openai_request", case_openai_request) >= 15);
}

/* ---- non-stream responses ----------------------------------------------- */

static void
case_gemini_response(const char *label, const cJSON *c)
{
    dp_gem_resp_meta meta = meta_of(c);
    const cJSON     *in   = golden_get(c, "input");
    char       *body = cJSON_IsString(in) ? NULL : cJSON_PrintUnformatted(in);
    const char *text = body != NULL ? body : in->valuestring;
    char       *out  = NULL;
    size_t      len  = 0;
    dp_usage_counts u;
    tg_err          rv =
        dp_gem_resp_to_openai(text, strlen(text), &meta, &out, &len, &u);

    if (golden_get(c, "expected_rv") != NULL) {
        CU_ASSERT_STRING_EQUAL(tg_strerror(rv), golden_gets_or(c, "expected_rv", ""));
        CU_ASSERT_PTR_NULL(out);
    } else {
        if (rv != TG_OK) {
            fprintf(stderr, "\n%s: rv %d\n", label, (int)rv);
        }
        CU_ASSERT_EQUAL_FATAL(rv, TG_OK);
        CU_ASSERT_EQUAL(len, strlen(out));
        golden_same_json(label, out, golden_get(c, "expected"));
        check_usage(label, &u, c);
    }
    free(out);
    cJSON_free(body);
}

static void
test_gemini_response(void)
{
    CU_ASSERT(golden_each("gemini", "gemini_response", case_gemini_response) >= 8);
}

/* ---- streams ------------------------------------------------------------ */

/* render_event renders one input event as the raw SSE bytes Gemini sends:
 * "data: <json or text>\r\n\r\n" (Gemini ends lines with CRLF). */
static char *
render_event(const cJSON *ev)
{
    const cJSON *data = golden_get(ev, "data");
    char        *d = cJSON_IsString(data) ? NULL : cJSON_PrintUnformatted(data);
    tg_buf       b;

    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_printf(&b, "data: %s\r\n\r\n", d != NULL ? d : data->valuestring), TG_OK);
    cJSON_free(d);
    return b.data;
}

static void
case_gemini_stream(const char *label, const cJSON *c)
{
    dp_gem_resp_meta meta = meta_of(c);
    dp_gem_stream   *s    = NULL;
    const cJSON     *ev;
    char            *want = expected_stream(c);
    tg_buf           out;
    dp_usage_counts  u;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&out, "", 0), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        dp_gem_stream_create(&s, &meta, cJSON_IsTrue(golden_get(c, "include_usage"))),
        TG_OK);
    cJSON_ArrayForEach(ev, golden_get(c, "events"))
    {
        char *raw = render_event(ev);
        CU_ASSERT_EQUAL(dp_gem_stream_feed_sse(s, raw, strlen(raw), &out),
                        TG_OK);
        free(raw);
    }
    CU_ASSERT_EQUAL(dp_gem_stream_finish(s, &out), TG_OK);
    CU_ASSERT_TRUE(dp_gem_stream_ended(s));
    golden_same_text(label, out.data, want);
    dp_gem_stream_usage(s, &u);
    check_usage(label, &u, c);
    dp_gem_stream_destroy(s);
    tg_buf_fini(&out);
    free(want);
}

static void
test_gemini_stream(void)
{
    CU_ASSERT(golden_each("gemini", "gemini_stream", case_gemini_stream) >= 6);
}

/* ---- errors ------------------------------------------------------------- */

static void
case_error_to_openai(const char *label, const cJSON *c)
{
    const cJSON *in   = golden_get(c, "input");
    char        *body = cJSON_IsString(in) ? NULL : cJSON_PrintUnformatted(in);
    const char  *text = body != NULL ? body : in->valuestring;
    int          status = -1;
    tg_buf       out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(dp_gem_error_to_openai((int)golden_geti(c, "status"), text,
                                                 strlen(text), &out, &status),
                          TG_OK);
    golden_same_json(label, out.data, golden_get(c, "expected"));
    if (status != golden_geti(c, "expected_status")) {
        fprintf(stderr, "\n%s: status %d\n", label, status);
    }
    CU_ASSERT_EQUAL(status, golden_geti(c, "expected_status"));
    tg_buf_fini(&out);
    cJSON_free(body);
}

static void
test_errors(void)
{
    CU_ASSERT(golden_each("gemini", "error_to_openai", case_error_to_openai) >= 9);
}

/* ---- behaviour the transcripts do not show ------------------------------ */

static void
test_model_path(void)
{
    static const struct {
        const char *model;
        bool        stream;
        tg_err      rv;
        const char *path;
    } cases[] = {
        {"gemini-2.5-flash", false, TG_OK,
         "/v1beta/models/gemini-2.5-flash:generateContent"},
        {"gemini-2.5-pro", true, TG_OK,
         "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"},
        {"tuned model:v1", false, TG_OK,
         "/v1beta/models/tuned%20model%3Av1:generateContent"},
        {"models/gemini-2.5-flash", false, TG_EINVAL, NULL},
        {"gemini?key=x", false, TG_EINVAL, NULL},
        {"gemini#x", false, TG_EINVAL, NULL},
        {"..", false, TG_EINVAL, NULL},
        {"a..b", true, TG_EINVAL, NULL},
        {"", false, TG_EINVAL, NULL},
    };
    char path[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_err rv = dp_gem_model_path(cases[i].model, cases[i].stream, path,
                                      sizeof(path));
        CU_ASSERT_EQUAL(rv, cases[i].rv);
        if (rv == TG_OK && cases[i].path != NULL) {
            CU_ASSERT_STRING_EQUAL(path, cases[i].path);
        }
    }
    CU_ASSERT_EQUAL(dp_gem_model_path(NULL, false, path, sizeof(path)),
                    TG_EINVAL);
    /* Exactly the size needed fits; one byte less does not. */
    CU_ASSERT_EQUAL(dp_gem_model_path("g", false, path, 33), TG_OK);
    CU_ASSERT_STRING_EQUAL(path, "/v1beta/models/g:generateContent");
    CU_ASSERT_EQUAL(dp_gem_model_path("g", false, path, 32), TG_ETOOBIG);
}

/* Usage is readable mid-stream, so a cut stream can still be metered; bad
 * data is a protocol error that writes nothing; events after the end are
 * ignored. */
/* embed_req translates an OpenAI embeddings body; NULL when refused, with
 * the param left in param. */
static char *
embed_req(const char *json, char *param, size_t paramlen)
{
    cJSON *req = cJSON_Parse(json);
    char   msg[256];
    char  *out = NULL;
    size_t len = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    if (dp_gem_embed_req_from_openai(req, "gemini-embedding-001", &out, &len,
                                     msg, sizeof(msg), param,
                                     paramlen) != TG_OK) {
        CU_ASSERT_PTR_NULL(out);
        CU_ASSERT_NOT_EQUAL(msg[0], '\0');
        out = NULL;
    } else {
        CU_ASSERT_EQUAL(len, strlen(out));
    }
    cJSON_Delete(req);
    return out;
}

/* OpenAI embeddings to batchEmbedContents: one request per input, the
 * model as "models/<name>", dimensions as outputDimensionality; what has
 * no Gemini equivalent is refused naming the field. */
static void
test_embeddings_request(void)
{
    char  param[64];
    char *out;

    out = embed_req("{\"model\":\"e\",\"input\":\"hello\",\"user\":\"u1\"}",
                    param, sizeof(param));
    CU_ASSERT_STRING_EQUAL(out,
                           "{\"requests\":[{\"content\":{\"parts\":[{\"text\":"
                           "\"hello\"}]},\"model\":\"models/"
                           "gemini-embedding-001\"}]}");
    free(out);
    out = embed_req("{\"model\":\"e\",\"input\":[\"a\",\"b\"],\"dimensions\":"
                    "256,\"encoding_format\":\"base64\"}",
                    param, sizeof(param));
    CU_ASSERT_STRING_EQUAL(
        out, "{\"requests\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},"
             "\"model\":\"models/gemini-embedding-001\","
             "\"outputDimensionality\":256},{\"content\":{\"parts\":[{"
             "\"text\":\"b\"}]},\"model\":\"models/gemini-embedding-001\","
             "\"outputDimensionality\":256}]}");
    free(out);
    CU_ASSERT_PTR_NULL(embed_req("{\"model\":\"e\",\"input\":[1,2,3]}", param,
                                 sizeof(param)));
    CU_ASSERT_STRING_EQUAL(param, "input[0]");
    CU_ASSERT_PTR_NULL(embed_req("{\"model\":\"e\",\"input\":[\"a\",[1,2]]}",
                                 param, sizeof(param)));
    CU_ASSERT_STRING_EQUAL(param, "input[1]");
    CU_ASSERT_PTR_NULL(embed_req("{\"model\":\"e\",\"input\":\"a\","
                                 "\"dimensions\":0}",
                                 param, sizeof(param)));
    CU_ASSERT_STRING_EQUAL(param, "dimensions");
    CU_ASSERT_PTR_NULL(embed_req("{\"model\":\"e\",\"input\":\"a\","
                                 "\"encoding_format\":\"int8\"}",
                                 param, sizeof(param)));
    CU_ASSERT_STRING_EQUAL(param, "encoding_format");
}

static void
test_embeddings_response(void)
{
    static const char body[] =
        "{\"embeddings\":[{\"values\":[1,-0.5]},{\"values\":[0.25,0]}]}";
    dp_gem_embed_meta meta = {"text-embedding-3-small", false, 2, 7};
    char             *out  = NULL;
    size_t            len  = 0;

    CU_ASSERT_EQUAL_FATAL(dp_gem_embed_resp_to_openai(body, strlen(body),
                                                      &meta, &out, &len),
                          TG_OK);
    CU_ASSERT_STRING_EQUAL(
        out, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
             "\"index\":0,\"embedding\":[1,-0.5]},{\"object\":\"embedding\","
             "\"index\":1,\"embedding\":[0.25,0]}],\"model\":"
             "\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":7,"
             "\"total_tokens\":7}}");
    free(out);
    /* base64: little-endian float32s, as OpenAI sends them */
    meta.base64 = true;
    CU_ASSERT_EQUAL_FATAL(dp_gem_embed_resp_to_openai(body, strlen(body),
                                                      &meta, &out, &len),
                          TG_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"embedding\":\"AACAPwAAAL8=\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"embedding\":\"AACAPgAAAAA=\""));
    free(out);
    /* Another number of embeddings than inputs, or not numbers: unreadable */
    meta.inputs = 3;
    CU_ASSERT_EQUAL(dp_gem_embed_resp_to_openai(body, strlen(body), &meta,
                                                &out, &len),
                    TG_EPROTO);
    meta.inputs = 1;
    CU_ASSERT_EQUAL(dp_gem_embed_resp_to_openai(
                        "{\"embeddings\":[{\"values\":[\"x\"]}]}", 33, &meta,
                        &out, &len),
                    TG_EPROTO);
    CU_ASSERT_EQUAL(dp_gem_embed_resp_to_openai("{}", 2, &meta, &out, &len),
                    TG_EPROTO);
}

static void
test_stream_usage_midway(void)
{
    static const char ev[] =
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
        "[{\"text\":\"Hi\"}]}}],\"usageMetadata\":{\"promptTokenCount\":60,"
        "\"candidatesTokenCount\":1,\"cachedContentTokenCount\":30,"
        "\"thoughtsTokenCount\":4}}\r\n\r\n";
    dp_gem_resp_meta meta = {"chatcmpl-1", "gpt-x", 1, NULL};
    dp_gem_stream   *s    = NULL;
    dp_usage_counts  c;
    tg_buf           out;
    size_t           n;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(dp_gem_stream_create(&s, &meta, false), TG_OK);
    CU_ASSERT_EQUAL(dp_gem_stream_feed_sse(s, ev, strlen(ev), &out), TG_OK);
    CU_ASSERT_FALSE(dp_gem_stream_ended(s));
    dp_gem_stream_usage(s, &c);
    CU_ASSERT_TRUE(c.found);
    CU_ASSERT_EQUAL(c.prompt_tokens, 60);
    CU_ASSERT_EQUAL(c.cached_tokens, 30);
    CU_ASSERT_EQUAL(c.completion_tokens, 5);
    n = out.len;
    CU_ASSERT_EQUAL(dp_gem_stream_feed(s, "{x", 2, &out), TG_EPROTO);
    CU_ASSERT_EQUAL(dp_gem_stream_feed(s, "[1,2]", 5, &out), TG_EPROTO);
    CU_ASSERT_EQUAL(out.len, n);
    /* A keep-alive comment has no data: nothing to say. */
    CU_ASSERT_EQUAL(dp_gem_stream_feed_sse(s, ": ping\n\n", 8, &out), TG_OK);
    CU_ASSERT_EQUAL(out.len, n);
    CU_ASSERT_EQUAL(dp_gem_stream_finish(s, &out), TG_OK);
    CU_ASSERT_TRUE(dp_gem_stream_ended(s));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "upstream_stream_incomplete"));
    n = out.len;
    CU_ASSERT_EQUAL(dp_gem_stream_feed_sse(s, ev, strlen(ev), &out), TG_OK);
    CU_ASSERT_EQUAL(dp_gem_stream_finish(s, &out), TG_OK);
    CU_ASSERT_EQUAL(out.len, n);
    dp_gem_stream_destroy(s);
    dp_gem_stream_destroy(NULL);
    tg_buf_fini(&out);
}

/* A capped output buffer fails whole: an event that needs several chunks
 * (role, text, finish) leaves neither a half chunk nor the first chunks,
 * and the stream state is as before, so a retry gives the same output. */
static void
test_stream_out_full(void)
{
    static const char ev[] =
        "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
        "[{\"text\":\"hello there\"}]},\"finishReason\":\"STOP\"}]}";
    dp_gem_resp_meta meta = {"chatcmpl-1", "gpt-x", 1, NULL};
    dp_gem_stream   *s    = NULL;
    tg_buf           out;
    tg_buf           big;

    tg_buf_init(&out, 200);
    tg_buf_init(&big, 0);
    CU_ASSERT_EQUAL_FATAL(dp_gem_stream_create(&s, &meta, false), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&out, "keep", 4), TG_OK);
    CU_ASSERT_EQUAL(dp_gem_stream_feed(s, ev, strlen(ev), &out), TG_ETOOBIG);
    CU_ASSERT_EQUAL(out.len, 4);
    CU_ASSERT_STRING_EQUAL(out.data, "keep");
    CU_ASSERT_EQUAL(dp_gem_stream_feed(s, ev, strlen(ev), &big), TG_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(big.data, "\"role\":\"assistant\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(big.data, "\"finish_reason\":\"stop\""));
    dp_gem_stream_destroy(s);
    tg_buf_fini(&out);
    tg_buf_fini(&big);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"openai_request_to_gemini", test_openai_request},
        {"gemini_response_to_openai", test_gemini_response},
        {"gemini_stream_to_openai", test_gemini_stream},
        {"errors", test_errors},
        {"model_path", test_model_path},
        {"embeddings_request", test_embeddings_request},
        {"embeddings_response", test_embeddings_response},
        {"stream_usage_midway", test_stream_usage_midway},
        {"stream_out_full", test_stream_out_full},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.gemini", cases);
}
