/* dataplane.ops - the provider tables (dp_provider_int.h): each (client
 * format, provider kind) pair runs the right table, chosen once; and what
 * a stream is metered with (the usage the provider reported, the events
 * that gave the client content) comes from what the tables report while
 * they write, the same for one upstream stream whatever the client's
 * format, never from searching the bytes written. */
#include <stdlib.h>
#include <string.h>

#include "dp_anthropic.h"
#include "dp_gemini.h"
#include "dp_provider_int.h"
#include "golden.h"
#include "tg_unit.h"

/* ---- which table ------------------------------------------------------- */

static void
test_select_each_pair(void)
{
    static const struct {
        tg_endpoint            ep;
        tg_provider            kind;
        const dp_provider_ops *ops;
        const dp_provider_ops *wire;
    } want[] = {
        {TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_OPENAI, &dp_openai_ops,
         &dp_openai_ops},
        {TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_AZURE, &dp_openai_ops,
         &dp_openai_ops},
        {TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_ANTHROPIC, &dp_anth_backend_ops,
         &dp_anth_backend_ops},
        {TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_GEMINI, &dp_gem_ops, &dp_gem_ops},
        {TG_EP_EMBEDDINGS, TG_PROVIDER_OPENAI, &dp_openai_ops, &dp_openai_ops},
        {TG_EP_EMBEDDINGS, TG_PROVIDER_GEMINI, &dp_gem_ops, &dp_gem_ops},
        {TG_EP_COMPLETIONS, TG_PROVIDER_AZURE, &dp_openai_ops, &dp_openai_ops},
        {TG_EP_MESSAGES, TG_PROVIDER_OPENAI, &dp_anth_client_ops,
         &dp_openai_ops},
        {TG_EP_MESSAGES, TG_PROVIDER_AZURE, &dp_anth_client_ops,
         &dp_openai_ops},
        {TG_EP_MESSAGES, TG_PROVIDER_ANTHROPIC, &dp_anth_relay_ops,
         &dp_anth_relay_ops},
        {TG_EP_MESSAGES, TG_PROVIDER_GEMINI, &dp_anth_client_ops, &dp_gem_ops},
        {TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_BEDROCK, &dp_bedrock_ops,
         &dp_bedrock_ops},
        {TG_EP_MESSAGES, TG_PROVIDER_BEDROCK, &dp_anth_client_ops,
         &dp_bedrock_ops},
    };
    const dp_provider_ops *wire = NULL;

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CU_ASSERT_PTR_EQUAL(dp_provider_select(want[i].ep, want[i].kind, &wire),
                            want[i].ops);
        CU_ASSERT_PTR_EQUAL(wire, want[i].wire);
    }
    CU_ASSERT_PTR_NULL(
        dp_provider_select(TG_EP_CHAT_COMPLETIONS, (tg_provider)99, &wire));
    CU_ASSERT_PTR_NULL(wire);
    /* What each table serves besides chat. */
    CU_ASSERT_TRUE(dp_openai_ops.completions && dp_openai_ops.embeddings);
    CU_ASSERT_TRUE(!dp_gem_ops.completions && dp_gem_ops.embeddings);
    CU_ASSERT_TRUE(!dp_anth_backend_ops.completions &&
                   !dp_anth_backend_ops.embeddings);
    /* Only Bedrock's table reads a binary stream itself. */
    CU_ASSERT_TRUE(dp_bedrock_ops.binary_stream && !dp_bedrock_ops.embeddings &&
                   !dp_bedrock_ops.completions);
    CU_ASSERT_FALSE(dp_openai_ops.binary_stream || dp_gem_ops.binary_stream ||
                    dp_anth_backend_ops.binary_stream ||
                    dp_anth_relay_ops.binary_stream ||
                    dp_anth_client_ops.binary_stream);
}

/* ---- one attempt, streamed --------------------------------------------- */

static const char g_oai_body[] =
    "{\"model\":\"m\",\"max_tokens\":20,\"stream\":true%s,\"messages\":["
    "{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char g_anth_body[] =
    "{\"model\":\"m\",\"max_tokens\":20,\"stream\":true,\"messages\":["
    "{\"role\":\"user\",\"content\":\"hi\"}]}";

typedef struct fixture {
    tg_deployment dep;
    dp_upstream   up;
    dp_chat_req   chat;
    dp_client_req cr;
    char          body[512];
    dp_call       c;
} fixture;

/* start prepares a streamed attempt of a client of ep (TG_EP_MESSAGES: an
 * Anthropic client) at a deployment of kind. */
static void
start(fixture *f, tg_endpoint ep, tg_provider kind, bool include_usage)
{
    char msg[256];
    char param[64];

    memset(f, 0, sizeof(*f));
    f->dep.id                = "d1";
    f->dep.model             = "m";
    f->dep.upstream_model    = "up";
    f->dep.kind              = kind;
    f->dep.provider          = tg_provider_name(kind);
    f->dep.anthropic_version = "2023-06-01";
    f->up.dep                = &f->dep;
    f->up.base               = (char *)"http://u";
    f->up.usable             = true;
    snprintf(f->body, sizeof(f->body), g_oai_body,
             include_usage ? ",\"stream_options\":{\"include_usage\":true}"
                           : "");
    CU_ASSERT_EQUAL_FATAL(dp_chat_parse(f->body, strlen(f->body), &f->chat, msg,
                                        sizeof(msg), param, sizeof(param)),
                          TG_OK);
    f->cr.ep      = ep;
    f->cr.chat    = &f->chat;
    f->cr.raw     = ep == TG_EP_MESSAGES ? g_anth_body : f->body;
    f->cr.raw_len = strlen(f->cr.raw);
    f->cr.id      = "req1";
    CU_ASSERT_EQUAL_FATAL(dp_call_prepare(&f->c, &f->up, &f->cr, 0, msg,
                                          sizeof(msg), param, sizeof(param)),
                          TG_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->c.st);
}

/* run feeds the events to the attempt, then ends the stream; out gets
 * what the client reads. */
static void
run(fixture *f, const char *const *events, size_t n, tg_buf *out)
{
    tg_buf_init(out, 0);
    CU_ASSERT_EQUAL_FATAL(tg_buf_append(out, "", 0), TG_OK);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(dp_call_event(&f->c, events[i], strlen(events[i]), out),
                        TG_OK);
    }
    CU_ASSERT_EQUAL(dp_call_stream_end(&f->c, out), TG_OK);
}

static void
stop(fixture *f, tg_buf *out)
{
    dp_call_fini(&f->c);
    dp_chat_fini(&f->chat);
    tg_buf_fini(out);
}

#define NEV(a) (sizeof(a) / sizeof((a)[0]))

/* An OpenAI stream: two text deltas and a tool call in two deltas (4
 * events with content), the finish, the usage chunk. */
static const char *const g_oai[] = {
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
    "\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
    "\"Hel\"}}]}\n\n",
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
    "\"lo\"}}]}\n\n",
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{"
    "\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n",
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
    "\"completion_tokens\":7,\"total_tokens\":18}}\n\n",
    "data: [DONE]\n\n",
};

/* The same answer from Anthropic: empty text and empty JSON deltas carry
 * nothing; a ping is no event of the answer. */
static const char *const g_anth[] = {
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
    "\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[],\"model\":\"c\",\"usage\":{\"input_tokens\":11,"
    "\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
    "\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
    "\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
    "\"name\":\"f\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
    "\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
    "\"{}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
    "\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{"
    "\"output_tokens\":7}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
};

/* The same from Gemini: the second event holds text, a call and text (2
 * events with content, 4 content chunks for the client). */
static const char *const g_gem[] = {
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{"
    "\"text\":\"Hel\"}]},\"index\":0}],\"usageMetadata\":{"
    "\"promptTokenCount\":11,\"candidatesTokenCount\":1}}\n\n",
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{"
    "\"text\":\"lo\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{"
    "\"text\":\"!\"}]},\"index\":0}],\"usageMetadata\":{"
    "\"promptTokenCount\":11,\"candidatesTokenCount\":5}}\n\n",
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{"
    "\"text\":\"\"}]},\"index\":0,\"finishReason\":\"STOP\"}],"
    "\"usageMetadata\":{\"promptTokenCount\":11,\"candidatesTokenCount\":7}"
    "}\n\n",
};

static void
check_metered(const dp_call *c, int64_t content, int64_t prompt,
              int64_t completion)
{
    CU_ASSERT_EQUAL(c->content_events, content);
    CU_ASSERT_TRUE(c->usage.found);
    CU_ASSERT_EQUAL(c->usage.prompt_tokens, prompt);
    CU_ASSERT_EQUAL(c->usage.completion_tokens, completion);
}

/* A relayed OpenAI stream: tool-call deltas count as content like text
 * (a search for "delta":{"content" would miss them); the usage chunk the
 * client did not ask for is metered, then dropped. */
static void
test_openai_relay_meters_what_it_relays(void)
{
    fixture f;
    tg_buf  out;

    start(&f, TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_OPENAI, false);
    CU_ASSERT_PTR_EQUAL(f.c.ops, &dp_openai_ops);
    run(&f, g_oai, NEV(g_oai), &out);
    check_metered(&f.c, 4, 11, 7);
    CU_ASSERT_PTR_NULL(strstr(out.data, "\"usage\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "data: [DONE]\n\n"));
    stop(&f, &out);

    start(&f, TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_AZURE, true);
    run(&f, g_oai, NEV(g_oai), &out);
    check_metered(&f.c, 4, 11, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"usage\""));
    stop(&f, &out);
}

/* Anthropic to an OpenAI client (translated) and to an Anthropic client
 * (relayed byte for byte, metered from the events without translating
 * them): the same numbers. */
static void
test_anthropic_metered_alike_translated_or_relayed(void)
{
    fixture f;
    tg_buf  out;
    tg_buf  all;

    start(&f, TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_ANTHROPIC, false);
    CU_ASSERT_PTR_EQUAL(f.c.ops, &dp_anth_backend_ops);
    run(&f, g_anth, NEV(g_anth), &out);
    check_metered(&f.c, 4, 11, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"tool_calls\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "data: [DONE]\n\n"));
    stop(&f, &out);

    start(&f, TG_EP_MESSAGES, TG_PROVIDER_ANTHROPIC, false);
    CU_ASSERT_PTR_EQUAL(f.c.ops, &dp_anth_relay_ops);
    run(&f, g_anth, NEV(g_anth), &out);
    check_metered(&f.c, 4, 11, 7);
    tg_buf_init(&all, 0);
    for (size_t i = 0; i < NEV(g_anth); i++) {
        CU_ASSERT_EQUAL_FATAL(tg_buf_append(&all, g_anth[i], strlen(g_anth[i])),
                              TG_OK);
    }
    CU_ASSERT_EQUAL(out.len, all.len);
    CU_ASSERT_EQUAL(memcmp(out.data, all.data, all.len), 0);
    tg_buf_fini(&all);
    stop(&f, &out);
}

/* Gemini: an event that gives the client three chunks is one content
 * event, to an OpenAI client and to an Anthropic one (through OpenAI
 * chunks: metering reads the provider's events, not the chunks). */
static void
test_gemini_metered_per_event_for_both_clients(void)
{
    fixture f;
    tg_buf  out;

    start(&f, TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_GEMINI, false);
    run(&f, g_gem, NEV(g_gem), &out);
    check_metered(&f.c, 2, 11, 7);
    stop(&f, &out);

    start(&f, TG_EP_MESSAGES, TG_PROVIDER_GEMINI, false);
    CU_ASSERT_PTR_EQUAL(f.c.ops, &dp_anth_client_ops);
    CU_ASSERT_PTR_EQUAL(f.c.wire, &dp_gem_ops);
    run(&f, g_gem, NEV(g_gem), &out);
    check_metered(&f.c, 2, 11, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "event: message_stop\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"type\":\"tool_use\""));
    stop(&f, &out);
}

/* An Anthropic client at an OpenAI deployment: metered as the relay of
 * the same stream is, answered in Anthropic events. */
static void
test_anthropic_client_at_openai(void)
{
    fixture f;
    tg_buf  out;

    start(&f, TG_EP_MESSAGES, TG_PROVIDER_OPENAI, false);
    CU_ASSERT_PTR_EQUAL(f.c.wire, &dp_openai_ops);
    run(&f, g_oai, NEV(g_oai), &out);
    check_metered(&f.c, 4, 11, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "event: message_start\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"output_tokens\":7"));
    CU_ASSERT_PTR_NULL(strstr(out.data, "[DONE]"));
    stop(&f, &out);
}

/* A stream cut before its end: the usage reported so far is kept, and
 * the client reads an error event. */
static void
test_cut_stream_keeps_reported_usage(void)
{
    fixture f;
    tg_buf  out;

    start(&f, TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_ANTHROPIC, false);
    run(&f, g_anth, 5, &out); /* up to the second text delta */
    check_metered(&f.c, 2, 11, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "upstream_stream_incomplete"));
    stop(&f, &out);

    start(&f, TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_GEMINI, false);
    run(&f, g_gem, 2, &out);
    check_metered(&f.c, 2, 11, 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "upstream_stream_incomplete"));
    stop(&f, &out);
}

/* ---- the translators report what they wrote --------------------------- */

static void
test_translators_count_as_they_write(void)
{
    dp_anth_resp_meta am = {"chatcmpl-1", "m", 1};
    dp_gem_resp_meta  gm = {"chatcmpl-1", "m", 1, NULL};
    dp_anth_stream   *a  = NULL;
    dp_gem_stream    *g  = NULL;
    dp_emit           em;
    tg_buf            out;
    int64_t           sum = 0;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(dp_gem_stream_create(&g, &gm, false), TG_OK);
    CU_ASSERT_EQUAL(dp_gem_stream_feed_sse(g, g_gem[1], strlen(g_gem[1]), &out),
                    TG_OK);
    dp_gem_stream_emitted(g, &em);
    CU_ASSERT_EQUAL(em.content, 3); /* "lo", the call, "!" */
    CU_ASSERT_EQUAL(em.usage.completion_tokens, 5);
    /* A feed that fails writes nothing and reports nothing. */
    CU_ASSERT_EQUAL(dp_gem_stream_feed_sse(g, "data: {x\n\n", 10, &out),
                    TG_EPROTO);
    dp_gem_stream_emitted(g, &em);
    CU_ASSERT_EQUAL(em.content, 0);
    dp_gem_stream_destroy(g);

    CU_ASSERT_EQUAL_FATAL(dp_anth_stream_create(&a, &am, false), TG_OK);
    for (size_t i = 0; i < NEV(g_anth); i++) {
        CU_ASSERT_EQUAL(
            dp_anth_stream_feed_sse(a, g_anth[i], strlen(g_anth[i]), &out),
            TG_OK);
        dp_anth_stream_emitted(a, &em);
        sum += em.content;
    }
    CU_ASSERT_EQUAL(sum, 4);
    CU_ASSERT_EQUAL(em.usage.prompt_tokens, 11);
    dp_anth_stream_destroy(a);
    tg_buf_fini(&out);
}

/* Every golden Anthropic stream is metered the same translated for an
 * OpenAI client and relayed to an Anthropic one. */
static char *
golden_raw_event(const cJSON *ev)
{
    const cJSON *data = golden_get(ev, "data");
    const char  *name = golden_gets_or(ev, "event", NULL);
    char        *d = cJSON_IsString(data) ? NULL : cJSON_PrintUnformatted(data);
    tg_buf       b;

    tg_buf_init(&b, 0);
    if (name != NULL) {
        tg_buf_add(&b, "event: ", 7);
        tg_buf_add(&b, name, strlen(name));
        tg_buf_add(&b, "\n", 1);
    }
    tg_buf_addf(&b, "data: %s\n\n", d != NULL ? d : data->valuestring);
    cJSON_free(d);
    CU_ASSERT_EQUAL_FATAL(tg_buf_error(&b), TG_OK);
    return b.data;
}

static void
golden_meter_alike(const char *label, const cJSON *c)
{
    fixture      f[2];
    tg_buf       out[2];
    const cJSON *ev;

    (void)label;
    start(&f[0], TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_ANTHROPIC, false);
    start(&f[1], TG_EP_MESSAGES, TG_PROVIDER_ANTHROPIC, false);
    for (int k = 0; k < 2; k++) {
        tg_buf_init(&out[k], 0);
    }
    cJSON_ArrayForEach(ev, golden_get(c, "events"))
    {
        char *raw = golden_raw_event(ev);
        for (int k = 0; k < 2; k++) {
            (void)dp_call_event(&f[k].c, raw, strlen(raw), &out[k]);
        }
        free(raw);
    }
    CU_ASSERT_EQUAL(f[0].c.content_events, f[1].c.content_events);
    CU_ASSERT_EQUAL(f[0].c.usage.found, f[1].c.usage.found);
    CU_ASSERT_EQUAL(f[0].c.usage.prompt_tokens, f[1].c.usage.prompt_tokens);
    CU_ASSERT_EQUAL(f[0].c.usage.completion_tokens,
                    f[1].c.usage.completion_tokens);
    CU_ASSERT_EQUAL(f[0].c.usage.cached_tokens, f[1].c.usage.cached_tokens);
    for (int k = 0; k < 2; k++) {
        stop(&f[k], &out[k]);
    }
}

static void
test_golden_anthropic_streams_metered_alike(void)
{
    CU_ASSERT_TRUE(
        golden_each("anthropic", "anthropic_stream", golden_meter_alike) > 0);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"select_each_pair", test_select_each_pair},
        {"openai_relay_meters_what_it_relays",
         test_openai_relay_meters_what_it_relays},
        {"anthropic_metered_alike_translated_or_relayed",
         test_anthropic_metered_alike_translated_or_relayed},
        {"gemini_metered_per_event_for_both_clients",
         test_gemini_metered_per_event_for_both_clients},
        {"anthropic_client_at_openai", test_anthropic_client_at_openai},
        {"cut_stream_keeps_reported_usage",
         test_cut_stream_keeps_reported_usage},
        {"translators_count_as_they_write",
         test_translators_count_as_they_write},
        {"golden_anthropic_streams_metered_alike",
         test_golden_anthropic_streams_metered_alike},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.ops", cases);
}
