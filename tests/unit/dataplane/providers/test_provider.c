/* dataplane.provider - one attempt at each kind of provider: where it is
 * sent, with which credential header, in which body; how its failures are
 * classified (retry, next deployment, context or content fallback, the
 * client's own fault); and what a client may never choose (SSRF). */
#include <stdlib.h>
#include <string.h>

#include "dp_provider_int.h"
#include "tg_unit.h"

static const char g_chat[] =
    "{\"model\":\"gpt-4o\",\"max_tokens\":20,\"stream\":%s,\"messages\":["
    "{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":\"hi\"}]}";

typedef struct fixture {
    tg_deployment dep;
    dp_upstream   up;
    dp_chat_req   chat;
    dp_client_req cr;
    char          body[512];
} fixture;

static void
setup(fixture *f, tg_provider kind, const char *base, bool stream)
{
    char msg[256];
    char param[64];

    memset(f, 0, sizeof(*f));
    f->dep.id                = "d1";
    f->dep.model             = "gpt-4o";
    f->dep.upstream_model    = "up-model";
    f->dep.kind              = kind;
    f->dep.provider          = tg_provider_name(kind);
    f->dep.api_version       = "2024-10-21";
    f->dep.anthropic_version = "2023-06-01";
    f->up.dep                = &f->dep;
    f->up.base               = (char *)base;
    f->up.auth_header        = "x-test-auth: secret";
    f->up.usable             = true;
    snprintf(f->body, sizeof(f->body), g_chat, stream ? "true" : "false");
    CU_ASSERT_EQUAL_FATAL(dp_chat_parse(f->body, strlen(f->body), &f->chat, msg,
                                        sizeof(msg), param, sizeof(param)),
                          TG_OK);
    f->cr.ep      = TG_EP_CHAT_COMPLETIONS;
    f->cr.chat    = &f->chat;
    f->cr.raw     = f->body;
    f->cr.raw_len = strlen(f->body);
    f->cr.id      = "chatcmpl-test";
}

static bool
has_header(const dp_call *c, const char *line)
{
    for (const struct curl_slist *h = c->hdrs; h != NULL; h = h->next) {
        if (strcmp(h->data, line) == 0) {
            return true;
        }
    }
    return false;
}

static void
test_urls_and_headers_per_provider(void)
{
    fixture f;
    dp_call c;
    char    msg[256];
    char    param[64];

    setup(&f, TG_PROVIDER_OPENAI, "http://o/v1", false);
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(c.url, "http://o/v1/chat/completions");
    CU_ASSERT_TRUE(has_header(&c, "x-test-auth: secret"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "\"model\":\"up-model\""));
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);

    setup(&f, TG_PROVIDER_AZURE, "https://res.openai.azure.com", false);
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(c.url,
                           "https://res.openai.azure.com/openai/deployments/"
                           "up-model/chat/completions?api-version=2024-10-21");
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);

    setup(&f, TG_PROVIDER_ANTHROPIC, "https://api.anthropic.com", true);
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 10, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(c.url, "https://api.anthropic.com/v1/messages");
    CU_ASSERT_TRUE(has_header(&c, "anthropic-version: 2023-06-01"));
    CU_ASSERT_TRUE(has_header(&c, "Accept: text/event-stream"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "\"system\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "\"max_tokens\":10")); /* clamped */
    CU_ASSERT_PTR_EQUAL(c.ops, &dp_anth_backend_ops); /* translated */
    CU_ASSERT_PTR_NOT_NULL(c.st);
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);

    setup(&f, TG_PROVIDER_GEMINI, "https://g", true);
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(
        c.url,
        "https://g/v1beta/models/up-model:streamGenerateContent?alt=sse");
    CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "\"systemInstruction\""));
    CU_ASSERT_PTR_EQUAL(c.ops, &dp_gem_ops);
    CU_ASSERT_PTR_NOT_NULL(c.st);
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);
}

static void
test_embeddings_only_where_served(void)
{
    fixture f;
    dp_call c;
    char    msg[256];
    char    param[64];

    setup(&f, TG_PROVIDER_ANTHROPIC, "https://a", false);
    f.cr.ep = TG_EP_EMBEDDINGS;
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "does not serve /v1/embeddings"));
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);
}

static void
classify(tg_provider kind, long status, const char *body, dp_call_err *e)
{
    fixture f;
    dp_call c;
    tg_buf  out;
    char    msg[256];
    char    param[64];

    setup(&f, kind, "http://x", false);
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    tg_buf_init(&out, 0);
    dp_call_error(&c, status, body, body != NULL ? strlen(body) : 0,
                  "Connection refused", e, &out);
    tg_buf_fini(&out);
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);
}

static void
test_failure_classes(void)
{
    dp_call_err e;

    classify(TG_PROVIDER_OPENAI, 429,
             "{\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit\"}}",
             &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_RETRY);
    CU_ASSERT_EQUAL(e.status, 429);
    classify(TG_PROVIDER_OPENAI, 503, "oops", &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_RETRY);
    CU_ASSERT_EQUAL(e.status, 502);
    classify(TG_PROVIDER_OPENAI, 0, NULL, &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_RETRY);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "Connection refused"));
    classify(TG_PROVIDER_OPENAI, 401, "{}", &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_NEXT);
    classify(TG_PROVIDER_OPENAI, 400,
             "{\"error\":{\"message\":\"too long\",\"code\":"
             "\"context_length_exceeded\"}}",
             &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_CONTEXT);
    classify(TG_PROVIDER_OPENAI, 400,
             "{\"error\":{\"message\":\"no\",\"code\":\"content_filter\"}}",
             &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_CONTENT);
    classify(TG_PROVIDER_OPENAI, 400,
             "{\"error\":{\"message\":\"bad temperature\"}}", &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_CLIENT);
    CU_ASSERT_TRUE(e.pass_body);
    /* Other providers' errors are read in their own format. */
    classify(TG_PROVIDER_ANTHROPIC, 400,
             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_"
             "error\",\"message\":\"prompt is too long: 300 tokens > 200 "
             "maximum\"}}",
             &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_CONTEXT);
    classify(TG_PROVIDER_ANTHROPIC, 529,
             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
             "\"message\":\"busy\"}}",
             &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_RETRY);
    classify(TG_PROVIDER_GEMINI, 429,
             "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
             "\"RESOURCE_EXHAUSTED\"}}",
             &e);
    CU_ASSERT_EQUAL(e.kind, DP_FAIL_RETRY);
}

static void
test_client_cannot_choose_the_upstream(void)
{
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"api_base\":\"http://169.254.169.254\","
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"base_url\":\"http://internal\",\"messages\":[{"
        "\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"api_key\":\"sk-x\",\"input\":\"x\"}",
    };
    dp_chat_req r;
    char        msg[256];
    char        param[64];

    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(
            dp_req_parse(i == 2 ? TG_EP_EMBEDDINGS : TG_EP_CHAT_COMPLETIONS,
                         bodies[i], strlen(bodies[i]), &r, msg, sizeof(msg),
                         param, sizeof(param)),
            TG_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "gateway's configuration"));
    }
    CU_ASSERT_STRING_EQUAL(param, "api_key");
}

static void
test_client_errors_in_its_format(void)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL(dp_client_error(TG_EP_MESSAGES, &b, "no", "server_error",
                                    NULL, "upstream_error"),
                    TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&b, "", 1), TG_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\"type\":\"error\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\"type\":\"api_error\""));
    tg_buf_reset(&b);
    CU_ASSERT_EQUAL(dp_client_error(TG_EP_CHAT_COMPLETIONS, &b, "no",
                                    "server_error", NULL, "upstream_error"),
                    TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(&b, "", 1), TG_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "{\"error\":{"));
    tg_buf_fini(&b);
}

static void
test_verbatim_when_nothing_changes(void)
{
    fixture f;
    dp_call c;
    char    msg[256];
    char    param[64];

    setup(&f, TG_PROVIDER_OPENAI, "http://o/v1", false);
    f.dep.upstream_model = "gpt-4o"; /* the same name */
    f.cr.raw_exact       = true;
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_OK);
    CU_ASSERT_EQUAL(c.len, strlen(f.body));
    CU_ASSERT_EQUAL(memcmp(c.body, f.body, c.len), 0);
    dp_call_fini(&c);
    /* A clamp below the client's max_tokens changes the body. */
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 5, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "\"max_tokens\":5"));
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);
}

/* A Responses API client: natively to an OpenAI deployment (its own body
 * to /responses, byte for byte when nothing changes; only the model and
 * max_output_tokens rewritten otherwise), translated everywhere else, and
 * a built-in tool refused where it cannot be run. */
static void
test_responses_native_or_translated(void)
{
    static const char raw[] =
        "{\"model\":\"gpt-4o\" , \"input\":\"hi\",\"max_output_tokens\":20}";
    fixture f;
    dp_call c;
    char    msg[256];
    char    param[64];

    setup(&f, TG_PROVIDER_OPENAI, "http://o/v1", false);
    f.dep.upstream_model = "gpt-4o";
    f.cr.raw_exact       = true;
    f.cr.resp_raw        = raw;
    f.cr.resp_raw_len    = strlen(raw);
    f.cr.resp_builtin    = "web_search_preview";
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_TRUE(c.native_resp);
    CU_ASSERT_STRING_EQUAL(c.url, "http://o/v1/responses");
    CU_ASSERT_EQUAL(c.len, strlen(raw));
    CU_ASSERT_EQUAL(memcmp(c.body, raw, c.len), 0);
    dp_call_fini(&c);
    /* Another upstream name and a clamp: both rewritten, nothing else. */
    f.dep.upstream_model = "gpt-4o-2024";
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 5, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_STRING_EQUAL(c.body, "{\"model\":\"gpt-4o-2024\",\"input\":"
                                   "\"hi\",\"max_output_tokens\":5}");
    dp_call_fini(&c);
    /* Not OpenAI: the chat form, and the built-in tool refused. */
    dp_chat_fini(&f.chat);
    setup(&f, TG_PROVIDER_ANTHROPIC, "http://a", false);
    f.cr.resp_raw     = raw;
    f.cr.resp_raw_len = strlen(raw);
    f.cr.resp_builtin = "";
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_FALSE(c.native_resp);
    CU_ASSERT_STRING_EQUAL(c.url, "http://a/v1/messages");
    dp_call_fini(&c);
    f.cr.resp_builtin = "web_search_preview";
    CU_ASSERT_EQUAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                    param, sizeof(param)),
                    TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "web_search_preview"));
    CU_ASSERT_STRING_EQUAL(param, "tools");
    dp_call_fini(&c);
    /* No raw body (a guardrail applies): OpenAI gets the chat form. */
    dp_chat_fini(&f.chat);
    setup(&f, TG_PROVIDER_OPENAI, "http://o/v1", false);
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_FALSE(c.native_resp);
    CU_ASSERT_STRING_EQUAL(c.url, "http://o/v1/chat/completions");
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);
}

/* A stream to a deployment that takes no stream_options (Mistral answers
 * 422 to the field and reports usage in its last chunk anyway): the
 * gateway adds none, and removes a client's. */
static void
test_stream_options_per_deployment(void)
{
    static const char with_so[] =
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{"
        "\"include_usage\":true},\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}]}";
    fixture     f;
    dp_call     c;
    dp_chat_req ch;
    char        msg[256];
    char        param[64];

    /* Default: a stream that did not ask for usage gets it asked for. */
    setup(&f, TG_PROVIDER_OPENAI, "http://o/v1", true);
    f.dep.upstream_model = "gpt-4o";
    f.cr.raw_exact       = true;
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(c.body, "\"stream_options\":{\"include_usage\":true}"));
    dp_call_fini(&c);
    /* stream_options false: the client's bytes, unchanged. */
    f.dep.no_stream_options = true;
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_EQUAL(c.len, strlen(f.body));
    CU_ASSERT_EQUAL(memcmp(c.body, f.body, c.len), 0);
    CU_ASSERT_PTR_EQUAL(c.ops, &dp_openai_ops); /* relayed, metered */
    dp_call_fini(&c);
    dp_chat_fini(&f.chat);

    /* A client's own stream_options are removed for such a deployment. */
    CU_ASSERT_EQUAL_FATAL(dp_chat_parse(with_so, strlen(with_so), &ch, msg,
                                        sizeof(msg), param, sizeof(param)),
                          TG_OK);
    f.cr.chat    = &ch;
    f.cr.raw     = with_so;
    f.cr.raw_len = strlen(with_so);
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_PTR_NULL(strstr(c.body, "stream_options"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "\"stream\":true"));
    dp_call_fini(&c);
    /* A retry (or the next such deployment) renders it again: still none,
     * though the first rendering took the field out of the parsed body. */
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&c, &f.up, &f.cr, 0, msg, sizeof(msg),
                                          param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_PTR_NULL(strstr(c.body, "stream_options"));
    dp_call_fini(&c);
    dp_chat_fini(&ch);
}

static const tg_unit_case cases[] = {
    {"verbatim_when_nothing_changes", test_verbatim_when_nothing_changes},
    {"responses_native_or_translated", test_responses_native_or_translated},
    {"stream_options_per_deployment", test_stream_options_per_deployment},
    {"urls_and_headers_per_provider", test_urls_and_headers_per_provider},
    {"embeddings_only_where_served", test_embeddings_only_where_served},
    {"failure_classes", test_failure_classes},
    {"client_cannot_choose_the_upstream",
     test_client_cannot_choose_the_upstream},
    {"client_errors_in_its_format", test_client_errors_in_its_format},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("dataplane.provider", cases);
}
