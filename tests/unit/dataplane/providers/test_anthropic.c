/* dataplane.anthropic - OpenAI <-> Anthropic Messages translation, checked
 * against golden transcripts in golden/anthropic/: each file is one case or
 * an array of cases, {"kind": ..., "input"/"events": ..., "expected": ...}.
 * Bodies are compared as JSON values; streams byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_anthropic.h"
#include "golden.h"
#include "tg_unit.h"

/* check_usage compares u with {"input","cache_read","cache_write","output"}
 * when the case has "usage". */
static void
check_usage(const char *label, const dp_anth_usage *u, const cJSON *c)
{
    const cJSON *e = golden_get(c, "usage");
    bool         eq;

    if (e == NULL) {
        return;
    }
    eq = u->input_tokens == golden_geti(e, "input") &&
         u->cache_read_tokens == golden_geti(e, "cache_read") &&
         u->cache_write_tokens == golden_geti(e, "cache_write") &&
         u->output_tokens == golden_geti(e, "output");
    if (!eq) {
        fprintf(stderr,
                "\n%s: usage input %lld cache_read %lld cache_write %lld "
                "output %lld\n",
                label, (long long)u->input_tokens,
                (long long)u->cache_read_tokens,
                (long long)u->cache_write_tokens, (long long)u->output_tokens);
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

/* ---- requests ----------------------------------------------------------- */

typedef tg_err (*req_fn)(const cJSON *, const dp_anth_req_opts *, char **,
                         size_t *, char *, size_t, char *, size_t);

static void
run_request(const char *label, const cJSON *c, req_fn fn)
{
    const cJSON     *o    = golden_get(c, "opts");
    dp_anth_req_opts opts = {
        .model              = golden_gets_or(o, "model", NULL),
        .max_tokens_default = golden_geti(o, "max_tokens_default"),
        .max_tokens_clamp   = golden_geti(o, "max_tokens_clamp"),
    };
    char   msg[256];
    char   param[96];
    char  *out = NULL;
    size_t len = 0;
    tg_err rv  = fn(golden_get(c, "input"), &opts, &out, &len, msg, sizeof(msg), param,
                    sizeof(param));

    golden_check_request(label, c, rv, msg, param, out, len);
}

static void
case_openai_request(const char *label, const cJSON *c)
{
    run_request(label, c, dp_anth_req_from_openai);
}

static void
case_messages_request(const char *label, const cJSON *c)
{
    run_request(label, c, dp_anth_req_to_openai);
}

static void
test_openai_request(void)
{
    CU_ASSERT(golden_each("anthropic", "openai_request", case_openai_request) >= 10);
}

static void
test_messages_request(void)
{
    CU_ASSERT(golden_each("anthropic", "messages_request", case_messages_request) >= 5);
}

/* ---- non-stream responses ----------------------------------------------- */

typedef tg_err (*resp_fn)(const char *, size_t, const dp_anth_resp_meta *,
                          char **, size_t *, dp_anth_usage *);

static void
run_response(const char *label, const cJSON *c, resp_fn fn)
{
    const cJSON      *m    = golden_get(c, "meta");
    dp_anth_resp_meta meta = {
        .id      = golden_gets_or(m, "id", "x"),
        .model   = golden_gets_or(m, "model", "m"),
        .created = golden_geti(m, "created"),
    };
    const cJSON  *in   = golden_get(c, "input");
    char         *body = cJSON_IsString(in) ? NULL : cJSON_PrintUnformatted(in);
    const char   *text = body != NULL ? body : in->valuestring;
    char         *out  = NULL;
    size_t        len  = 0;
    dp_anth_usage u;
    tg_err        rv = fn(text, strlen(text), &meta, &out, &len, &u);

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
case_anthropic_response(const char *label, const cJSON *c)
{
    run_response(label, c, dp_anth_resp_to_openai);
}

static void
case_openai_response(const char *label, const cJSON *c)
{
    run_response(label, c, dp_anth_resp_from_openai);
}

static void
test_anthropic_response(void)
{
    CU_ASSERT(golden_each("anthropic", "anthropic_response", case_anthropic_response) >=
              5);
}

static void
test_openai_response(void)
{
    CU_ASSERT(golden_each("anthropic", "openai_response", case_openai_response) >= 4);
}

/* ---- streams ------------------------------------------------------------ */

/* render_event renders one input event as the raw SSE bytes an upstream
 * sends: "event: <name>\n" when named, then "data: <json or text>". */
static char *
render_event(const cJSON *ev)
{
    const cJSON *data = golden_get(ev, "data");
    const char  *name = golden_gets_or(ev, "event", NULL);
    char        *d = cJSON_IsString(data) ? NULL : cJSON_PrintUnformatted(data);
    tg_buf       b;

    tg_buf_init(&b, 0);
    if (name != NULL) {
        CU_ASSERT_EQUAL_FATAL(tg_buf_printf(&b, "event: %s\n", name), TG_OK);
    }
    CU_ASSERT_EQUAL_FATAL(tg_buf_printf(&b, "data: %s\n\n", d != NULL ? d : data->valuestring), TG_OK);
    cJSON_free(d);
    return b.data;
}

static void
case_anthropic_stream(const char *label, const cJSON *c)
{
    const cJSON      *m    = golden_get(c, "meta");
    dp_anth_resp_meta meta = {
        .id      = golden_gets_or(m, "id", "x"),
        .model   = golden_gets_or(m, "model", "m"),
        .created = golden_geti(m, "created"),
    };
    dp_anth_stream *s = NULL;
    const cJSON    *ev;
    char           *want = expected_stream(c);
    tg_buf          out;
    dp_anth_usage   u;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&out, "", 0), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        dp_anth_stream_create(&s, &meta, cJSON_IsTrue(golden_get(c, "include_usage"))),
        TG_OK);
    cJSON_ArrayForEach(ev, golden_get(c, "events"))
    {
        char *raw = render_event(ev);
        CU_ASSERT_EQUAL(dp_anth_stream_feed_sse(s, raw, strlen(raw), &out),
                        TG_OK);
        free(raw);
    }
    if (cJSON_IsTrue(golden_get(c, "finish"))) {
        CU_ASSERT_EQUAL(dp_anth_stream_finish(s, &out), TG_OK);
    }
    CU_ASSERT_TRUE(dp_anth_stream_ended(s));
    golden_same_text(label, out.data, want);
    dp_anth_stream_usage(s, &u);
    check_usage(label, &u, c);
    dp_anth_stream_destroy(s);
    tg_buf_fini(&out);
    free(want);
}

static void
case_openai_stream(const char *label, const cJSON *c)
{
    const cJSON      *m    = golden_get(c, "meta");
    dp_anth_resp_meta meta = {
        .id    = golden_gets_or(m, "id", "x"),
        .model = golden_gets_or(m, "model", "m"),
    };
    dp_anth_rstream *s = NULL;
    const cJSON     *ev;
    char            *want = expected_stream(c);
    tg_buf           out;
    dp_anth_usage    u;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&out, "", 0), TG_OK);
    CU_ASSERT_EQUAL_FATAL(
        dp_anth_rstream_create(&s, &meta, golden_geti(c, "input_tokens")), TG_OK);
    cJSON_ArrayForEach(ev, golden_get(c, "events"))
    {
        char *raw = render_event(ev);
        CU_ASSERT_EQUAL(dp_anth_rstream_feed_sse(s, raw, strlen(raw), &out),
                        TG_OK);
        free(raw);
    }
    if (cJSON_IsTrue(golden_get(c, "finish"))) {
        CU_ASSERT_EQUAL(dp_anth_rstream_finish(s, &out), TG_OK);
    }
    CU_ASSERT_TRUE(dp_anth_rstream_ended(s));
    golden_same_text(label, out.data, want);
    dp_anth_rstream_usage(s, &u);
    check_usage(label, &u, c);
    dp_anth_rstream_destroy(s);
    tg_buf_fini(&out);
    free(want);
}

static void
test_anthropic_stream(void)
{
    CU_ASSERT(golden_each("anthropic", "anthropic_stream", case_anthropic_stream) >= 5);
}

static void
test_openai_stream(void)
{
    CU_ASSERT(golden_each("anthropic", "openai_stream", case_openai_stream) >= 4);
}

/* ---- errors ------------------------------------------------------------- */

typedef tg_err (*err_fn)(int, const char *, size_t, tg_buf *, int *);

static void
run_error(const char *label, const cJSON *c, err_fn fn)
{
    const cJSON *in   = golden_get(c, "input");
    char        *body = cJSON_IsString(in) ? NULL : cJSON_PrintUnformatted(in);
    const char  *text = body != NULL ? body : in->valuestring;
    int          status = -1;
    tg_buf       out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(
        fn((int)golden_geti(c, "status"), text, strlen(text), &out, &status), TG_OK);
    golden_same_json(label, out.data, golden_get(c, "expected"));
    if (status != golden_geti(c, "expected_status")) {
        fprintf(stderr, "\n%s: status %d\n", label, status);
    }
    CU_ASSERT_EQUAL(status, golden_geti(c, "expected_status"));
    tg_buf_fini(&out);
    cJSON_free(body);
}

static void
case_error_to_openai(const char *label, const cJSON *c)
{
    run_error(label, c, dp_anth_error_to_openai);
}

static void
case_error_from_openai(const char *label, const cJSON *c)
{
    run_error(label, c, dp_anth_error_from_openai);
}

static void
test_errors(void)
{
    CU_ASSERT(golden_each("anthropic", "error_to_openai", case_error_to_openai) >= 4);
    CU_ASSERT(golden_each("anthropic", "error_from_openai", case_error_from_openai) >= 4);
}

/* ---- behaviour the transcripts do not show ------------------------------ */

/* Usage is readable mid-stream, so a cut stream can still be metered. */
static void
test_stream_usage_midway(void)
{
    static const char start[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
        "\"content\":[],\"model\":\"claude\",\"stop_reason\":null,"
        "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":20,"
        "\"cache_read_input_tokens\":30,\"output_tokens\":1}}}\r\n\r\n";
    dp_anth_resp_meta meta = {"chatcmpl-1", "gpt-x", 1};
    dp_anth_stream   *s    = NULL;
    dp_anth_usage     u;
    dp_usage_counts   c;
    tg_buf            out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(dp_anth_stream_create(&s, &meta, false), TG_OK);
    CU_ASSERT_EQUAL(dp_anth_stream_feed_sse(s, start, strlen(start), &out),
                    TG_OK);
    CU_ASSERT_FALSE(dp_anth_stream_ended(s));
    dp_anth_stream_usage(s, &u);
    dp_anth_usage_counts(&u, &c);
    CU_ASSERT_TRUE(c.found);
    CU_ASSERT_EQUAL(c.prompt_tokens, 60);
    CU_ASSERT_EQUAL(c.cached_tokens, 30);
    CU_ASSERT_EQUAL(c.completion_tokens, 1);
    CU_ASSERT_EQUAL(u.cache_write_tokens, 20);
    /* Not JSON: a protocol error, nothing written. */
    out.len = 0;
    CU_ASSERT_EQUAL(
        dp_anth_stream_feed(s, "content_block_delta", "{x", 2, &out),
        TG_EPROTO);
    CU_ASSERT_EQUAL(out.len, 0);
    dp_anth_stream_destroy(s);
    dp_anth_stream_destroy(NULL);
    dp_anth_rstream_destroy(NULL);
    tg_buf_fini(&out);
}

/* A capped output buffer fails whole: no half event is left in it. */
static void
test_stream_out_full(void)
{
    static const char ev[] =
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
        "\"text_delta\",\"text\":\"hello there\"}}";
    dp_anth_resp_meta meta = {"chatcmpl-1", "gpt-x", 1};
    dp_anth_stream   *s    = NULL;
    tg_buf            out;

    tg_buf_init(&out, 40);
    CU_ASSERT_EQUAL_FATAL(dp_anth_stream_create(&s, &meta, false), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&out, "keep", 4), TG_OK);
    CU_ASSERT_EQUAL(
        dp_anth_stream_feed(s, "content_block_delta", ev, strlen(ev), &out),
        TG_ETOOBIG);
    CU_ASSERT_EQUAL(out.len, 4);
    CU_ASSERT_STRING_EQUAL(out.data, "keep");
    dp_anth_stream_destroy(s);
    tg_buf_fini(&out);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"openai_request_to_anthropic", test_openai_request},
        {"anthropic_response_to_openai", test_anthropic_response},
        {"anthropic_stream_to_openai", test_anthropic_stream},
        {"messages_request_to_openai", test_messages_request},
        {"openai_response_to_messages", test_openai_response},
        {"openai_stream_to_messages", test_openai_stream},
        {"errors", test_errors},
        {"stream_usage_midway", test_stream_usage_midway},
        {"stream_out_full", test_stream_out_full},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.anthropic", cases);
}
