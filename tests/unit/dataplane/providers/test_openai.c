/* dataplane.openai - what the gateway accepts, what it sends upstream and
 * what it meters, in OpenAI's wire format. */
#include <stdlib.h>
#include <string.h>

#include "dp_openai.h"
#include "tg_unit.h"

static tg_err
parse(const char *body, dp_chat_req *r, char *msg, char *param)
{
    return dp_chat_parse(body, strlen(body), r, msg, 256, param, 64);
}

static void
test_valid_request(void)
{
    dp_chat_req r;
    char        msg[256];
    char        param[64];

    CU_ASSERT_EQUAL_FATAL(
        parse("{\"model\":\"gpt-4o\",\"stream\":true,\"max_tokens\":50,"
              "\"user\":\"u1\",\"messages\":[{\"role\":\"system\",\"content\":"
              "\"abcd\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
              "\"text\":\"12345\"}]}]}",
              &r, msg, param),
        TG_OK);
    CU_ASSERT_STRING_EQUAL(r.model, "gpt-4o");
    CU_ASSERT_TRUE(r.stream);
    CU_ASSERT_FALSE(r.include_usage);
    CU_ASSERT_EQUAL(r.max_tokens, 50);
    CU_ASSERT_STRING_EQUAL(r.user, "u1");
    CU_ASSERT_EQUAL(r.prompt_bytes, 9);
    /* 4 per message + ceil(bytes/4): (4+1) + (4+2) */
    CU_ASSERT_EQUAL(r.prompt_tokens_estimate, 11);
    dp_chat_fini(&r);
}

static void
test_errors_name_the_field(void)
{
    static const struct {
        const char *body;
        const char *param;
        const char *text;
    } cases[] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model",
         "Missing required parameter: 'model'"},
        {"{\"model\":\"m\"}", "messages", "'messages'"},
        {"{\"model\":\"m\",\"messages\":[]}", "messages", "non-empty"},
        {"{\"model\":7,\"messages\":[{\"role\":\"user\"}]}", "model", "string"},
        {"{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
         "messages[0].role", "role"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}],\"stream\":1}",
         "stream", "true or false"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}],\"max_tokens\":-3}",
         "max_tokens", "positive integer"},
        {"[1,2]", "", "JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dp_chat_req r;
        char        msg[256];
        char        param[64];
        CU_ASSERT_EQUAL(parse(cases[i].body, &r, msg, param), TG_EINVAL);
        CU_ASSERT_STRING_EQUAL(param, cases[i].param);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].text));
        CU_ASSERT_PTR_NULL(r.root);
    }
}

/* Embeddings do not stream: "stream": true is refused by name (a
 * translated backend would otherwise get a stream request for them). */
static void
test_embeddings_do_not_stream(void)
{
    static const char body[] =
        "{\"model\":\"e\",\"input\":\"x\",\"stream\":true}";
    dp_chat_req r;
    char        msg[256];
    char        param[64];

    CU_ASSERT_EQUAL(dp_req_parse(TG_EP_EMBEDDINGS, body, strlen(body), &r, msg,
                                 sizeof(msg), param, sizeof(param)),
                    TG_EINVAL);
    CU_ASSERT_STRING_EQUAL(param, "stream");
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "do not stream"));
}

static void
test_malformed_json_says_where(void)
{
    dp_chat_req r;
    char        msg[256];
    char        param[64];

    CU_ASSERT_EQUAL(parse("{\n\"model\": \"m\",\n\"messages\": [}\n", &r, msg,
                          param),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "line 3, column 14"));
}

static void
test_upstream_body(void)
{
    dp_chat_req r;
    char        msg[256];
    char        param[64];
    char       *out = NULL;
    size_t      len;

    CU_ASSERT_EQUAL_FATAL(parse("{\"model\":\"alias\",\"stream\":true,"
                                "\"max_tokens\":500,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi\"}]}",
                                &r, msg, param),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(dp_chat_upstream_body(&r, "real-model", 100, true,
                                                &out, &len),
                          TG_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"model\":\"real-model\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"max_tokens\":100"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\"stream_options\":{\"include_usage\":true}"));
    CU_ASSERT_EQUAL(len, strlen(out));
    free(out);
    dp_chat_fini(&r);
}

static void
test_sse_inspect(void)
{
    static const char usage[] =
        "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
        "\"completion_tokens\":3,\"total_tokens\":12,"
        "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n";
    static const char content[] =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w1\"}}],"
        "\"usage\":null}\n\n";
    static const char role[] =
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"}}]}\n\n";
    dp_sse_info info;

    dp_openai_sse_inspect(usage, strlen(usage), &info);
    CU_ASSERT_TRUE(info.usage_only);
    CU_ASSERT_TRUE(info.usage.found);
    CU_ASSERT_EQUAL(info.usage.prompt_tokens, 9);
    CU_ASSERT_EQUAL(info.usage.completion_tokens, 3);
    CU_ASSERT_EQUAL(info.usage.cached_tokens, 4);
    dp_openai_sse_inspect(content, strlen(content), &info);
    CU_ASSERT_TRUE(info.has_content);
    CU_ASSERT_FALSE(info.usage.found);
    CU_ASSERT_FALSE(info.usage_only);
    dp_openai_sse_inspect(role, strlen(role), &info);
    CU_ASSERT_FALSE(info.has_content);
    dp_openai_sse_inspect("data: [DONE]\n\n", 14, &info);
    CU_ASSERT_TRUE(info.done);
}

static void
test_sse_inspect_spaced_json(void)
{
    /* Python providers (json.dumps) put a space after every colon. */
    static const char usage[] =
        "data: {\"id\": \"x\", \"choices\": [], \"usage\": "
        "{\"prompt_tokens\": 9, \"completion_tokens\": 3, "
        "\"total_tokens\": 12}}\r\n\r\n";
    static const char content[] =
        "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": "
        "\"w1\"}}], \"usage\": null}\n\n";
    static const char tool[] =
        "data: {\"choices\": [{\"delta\": {\"content\": null, "
        "\"tool_calls\": [{\"index\": 0}]}}]}\n\n";
    static const char role[] =
        "data: {\"choices\": [{\"delta\": {\"role\": \"assistant\", "
        "\"content\": \"\"}}]}\n\n";
    dp_sse_info info;

    dp_openai_sse_inspect(usage, strlen(usage), &info);
    CU_ASSERT_TRUE(info.usage.found);
    CU_ASSERT_TRUE(info.usage_only);
    CU_ASSERT_EQUAL(info.usage.prompt_tokens, 9);
    CU_ASSERT_EQUAL(info.usage.completion_tokens, 3);
    dp_openai_sse_inspect(content, strlen(content), &info);
    CU_ASSERT_TRUE(info.has_content);
    CU_ASSERT_FALSE(info.usage.found);
    dp_openai_sse_inspect(tool, strlen(tool), &info);
    CU_ASSERT_TRUE(info.has_content);
    dp_openai_sse_inspect(role, strlen(role), &info);
    CU_ASSERT_FALSE(info.has_content);
}

static void
test_error_body(void)
{
    tg_buf b;
    char   m[64];

    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL(dp_openai_error(&b, "say \"no\"", "invalid_request_error",
                                    NULL, "x"),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(b.data,
                           "{\"error\":{\"message\":\"say \\\"no\\\"\",\"type\":"
                           "\"invalid_request_error\",\"param\":null,\"code\":"
                           "\"x\"}}");
    dp_openai_error_message(b.data, b.len, m, sizeof(m));
    CU_ASSERT_STRING_EQUAL(m, "say \"no\"");
    tg_buf_fini(&b);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"valid_request", test_valid_request},
        {"errors_name_the_field", test_errors_name_the_field},
        {"malformed_json_says_where", test_malformed_json_says_where},
        {"embeddings_do_not_stream", test_embeddings_do_not_stream},
        {"upstream_body", test_upstream_body},
        {"sse_inspect", test_sse_inspect},
        {"sse_inspect_spaced_json", test_sse_inspect_spaced_json},
        {"error_body", test_error_body},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.openai", cases);
}
