/* dataplane.responses - the Responses API <-> chat completions
 * translation (dp_resp.h), checked against golden transcripts in
 * golden/responses/: requests ("request": the chat body, the echoed
 * fields and the built-in tool noted; or the error), whole answers
 * ("response": the Response object) and streams ("stream": the Responses
 * events, byte for byte, sequence numbers included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_resp.h"
#include "golden.h"
#include "tg_unit.h"

/* ---- requests ----------------------------------------------------------- */

static void
case_request(const char *label, const cJSON *c)
{
    char   msg[512];
    char   param[96];
    char   builtin[48];
    char  *out  = NULL;
    size_t len  = 0;
    cJSON *echo = NULL;
    tg_err rv;

    rv = dp_resp_req_to_chat(golden_get(c, "input"), &out, &len, &echo, builtin,
                             sizeof(builtin), msg, sizeof(msg), param,
                             sizeof(param));

    if (rv == TG_OK && golden_get(c, "echo") != NULL) {
        char *e = cJSON_PrintUnformatted(echo);
        golden_same_json(label, e, golden_get(c, "echo"));
        cJSON_free(e);
    }
    if (rv == TG_OK) {
        golden_same_text(label, builtin, golden_gets_or(c, "builtin", ""));
    }
    cJSON_Delete(echo);
    golden_check_request(label, c, rv, msg, param, out, len);
}

static void
test_request(void)
{
    CU_ASSERT(golden_each("responses", "request", case_request) >= 8);
}

/* ---- whole answers ------------------------------------------------------ */

static dp_resp_meta
case_meta(const cJSON *c)
{
    const cJSON *m    = golden_get(c, "meta");
    dp_resp_meta meta = {
        .id      = golden_gets_or(m, "id", "resp_x"),
        .model   = golden_gets_or(m, "model", "m"),
        .created = golden_geti(m, "created"),
        .echo    = golden_get(m, "echo"),
    };

    return meta;
}

static void
case_response(const char *label, const cJSON *c)
{
    dp_resp_meta m    = case_meta(c);
    char        *body = cJSON_PrintUnformatted(golden_get(c, "input"));
    char        *out  = NULL;
    size_t       len  = 0;
    tg_err       rv   = dp_resp_from_chat(body, strlen(body), &m, &out, &len);

    if (golden_get(c, "expected_rv") != NULL) {
        CU_ASSERT_STRING_EQUAL(tg_strerror(rv),
                               golden_gets_or(c, "expected_rv", ""));
        CU_ASSERT_PTR_NULL(out);
    } else {
        CU_ASSERT_EQUAL_FATAL(rv, TG_OK);
        CU_ASSERT_EQUAL(len, strlen(out));
        golden_same_json(label, out, golden_get(c, "expected"));
    }
    free(out);
    cJSON_free(body);
}

static void
test_response(void)
{
    CU_ASSERT(golden_each("responses", "response", case_response) >= 4);
}

/* ---- streams ------------------------------------------------------------ */

/* expected_stream joins the expected events ("event: t\ndata: {...}"),
 * each followed by "\n\n". */
static char *
expected_stream(const cJSON *c)
{
    tg_buf       b;
    const cJSON *e;

    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&b, "", 0), TG_OK);
    cJSON_ArrayForEach(e, golden_get(c, "expected"))
    {
        CU_ASSERT_EQUAL_FATAL(tg_buf_printf(&b, "%s\n\n", e->valuestring),
                              TG_OK);
    }
    return b.data;
}

static void
case_stream(const char *label, const cJSON *c)
{
    dp_resp_meta    m = case_meta(c);
    dp_resp_stream *s = NULL;
    const cJSON    *ev;
    char           *want = expected_stream(c);
    tg_buf          out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&out, "", 0), TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_resp_stream_create(&s, &m), TG_OK);
    cJSON_ArrayForEach(ev, golden_get(c, "events"))
    {
        char *d   = cJSON_IsString(ev) ? NULL : cJSON_PrintUnformatted(ev);
        char *raw = NULL;
        CU_ASSERT_FATAL(asprintf(&raw, "data: %s\n\n",
                                 d != NULL ? d : ev->valuestring) > 0);
        CU_ASSERT_EQUAL(dp_resp_stream_feed_sse(s, raw, strlen(raw), &out),
                        TG_OK);
        free(raw);
        cJSON_free(d);
    }
    if (cJSON_IsTrue(golden_get(c, "finish"))) {
        CU_ASSERT_EQUAL(dp_resp_stream_finish(s, &out), TG_OK);
    }
    CU_ASSERT_TRUE(dp_resp_stream_ended(s));
    golden_same_text(label, out.data, want);
    dp_resp_stream_destroy(s);
    tg_buf_fini(&out);
    free(want);
}

static void
test_stream(void)
{
    CU_ASSERT(golden_each("responses", "stream", case_stream) >= 5);
}

/* Nothing is written after the final event, and a stream that stopped
 * before any answer still says what happened. */
static void
test_stream_after_end(void)
{
    dp_resp_meta    m = {"resp_1", "m", 1, NULL};
    dp_resp_stream *s = NULL;
    tg_buf          out;
    const char      done[] = "data: [DONE]\n\n";

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(dp_resp_stream_create(&s, &m), TG_OK);
    CU_ASSERT_EQUAL(dp_resp_stream_finish(s, &out), TG_OK);
    CU_ASSERT_TRUE(dp_resp_stream_ended(s));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "event: error\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "upstream_stream_incomplete"));
    size_t n = out.len;
    CU_ASSERT_EQUAL(dp_resp_stream_feed_sse(s, done, sizeof(done) - 1, &out),
                    TG_OK);
    CU_ASSERT_EQUAL(dp_resp_stream_finish(s, &out), TG_OK);
    CU_ASSERT_EQUAL(out.len, n);
    dp_resp_stream_destroy(s);
    tg_buf_fini(&out);
}

static void
test_stream_not_json(void)
{
    dp_resp_meta    m = {"resp_1", "m", 1, NULL};
    dp_resp_stream *s = NULL;
    tg_buf          out;
    const char      bad[] = "data: {nope\n\n";

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(dp_resp_stream_create(&s, &m), TG_OK);
    CU_ASSERT_EQUAL(dp_resp_stream_feed_sse(s, bad, sizeof(bad) - 1, &out),
                    TG_EPROTO);
    dp_resp_stream_destroy(s);
    tg_buf_fini(&out);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"request_to_chat", test_request},
        {"chat_to_response", test_response},
        {"chat_stream_to_events", test_stream},
        {"stream_after_end", test_stream_after_end},
        {"stream_not_json", test_stream_not_json},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.responses", cases);
}
