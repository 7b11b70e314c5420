/* test_guard_req.c - a request's guardrails on the data plane: bodies in
 * every client format scanned where their text is (and not where it is
 * not), redacted and rewritten, blocked naming the rule and detector; and
 * streams in OpenAI and Anthropic formats where a card number split over
 * chunks reaches the client redacted, whatever the chunking, and a block
 * stops the stream before the client sees the matched text. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dp_guard_req.h"
#include "tg_unit.h"

/* Rule 0 redacts PII, rule 1 blocks secrets, rule 2 audits terms. */
static const char guard_spec[] =
    "{\"rules\": ["
    "{\"id\": \"a-redact\", \"detectors\": [\"pii.card\", \"pii.email\"],"
    " \"action\": \"redact\"},"
    "{\"id\": \"b-block\", \"detectors\": [\"secret\"],"
    " \"patterns\": [{\"name\": \"emp\", \"regex\": \"EMP-[0-9]{6}\"}],"
    " \"action\": \"block\"},"
    "{\"id\": \"c-audit\", \"terms\": [\"project titan\"], \"action\": "
    "\"audit\"}],"
    " \"lists\": {}}";

/* The set, compiled once (vectorscan's compiler is the slow part). */
static tg_guard_set *guard_set;

static void
guard_init(dp_guard_req *g, bool enforce_block)
{
    char        err[512];
    tg_guard_ob obs[3] = {
        {"a-redact", 0, true, false},
        {"b-block", 1, enforce_block, false},
        {"c-audit", 2, true, false},
    };

    if (guard_set == NULL) {
        cJSON *spec = cJSON_Parse(guard_spec);
        CU_ASSERT_FATAL(spec != NULL);
        CU_ASSERT_FATAL(
            tg_guard_set_compile(&guard_set, spec, err, sizeof(err)) == TG_OK);
        cJSON_Delete(spec);
    }
    tg_guard_set_ref(guard_set);
    CU_ASSERT_FATAL(dp_guard_req_init(g, guard_set, obs, 3, err, sizeof(err)) ==
                    TG_OK);
}

static void
test_obligation_mismatch(void)
{
    cJSON        *spec = cJSON_Parse(guard_spec);
    tg_guard_set *set  = NULL;
    dp_guard_req  g;
    char          err[512];
    tg_guard_ob   ob = {"b-block", 0, true, false}; /* wrong index */

    CU_ASSERT_FATAL(tg_guard_set_compile(&set, spec, err, sizeof(err)) ==
                    TG_OK);
    cJSON_Delete(spec);
    CU_ASSERT(dp_guard_req_init(&g, set, &ob, 1, err, sizeof(err)) ==
              TG_EPROTO);
    CU_ASSERT(strstr(err, "b-block") != NULL);
    tg_guard_set_unref(set);
}

static void
test_input_chat_redacts_where_text_is(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *body =
        "{\"model\":\"m\",\"user\":\"4111111111111111\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"mail ops@example.com\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"card 4111 1111 1111 1111 thanks\"}]},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"4111111111111111\","
        "\"type\":\"function\",\"function\":{\"name\":\"pay\",\"arguments\":"
        "\"{\\\"card\\\":\\\"5555555555554444\\\"}\"}}]}]}";
    cJSON *root;

    guard_init(&g, true);
    tg_buf_init(&out, 0);
    CU_ASSERT_FATAL(dp_guard_input(&g, TG_EP_CHAT_COMPLETIONS, body,
                                   strlen(body), &out) == DP_GUARD_CHANGED);
    root = cJSON_Parse(out.data);
    CU_ASSERT_FATAL(root != NULL);
    /* Text fields redacted; the user field and the tool call id are not
     * text a person wrote to the model, and stay. */
    CU_ASSERT(strstr(out.data, "mail [REDACTED:EMAIL]") != NULL);
    CU_ASSERT(strstr(out.data, "card [REDACTED:CARD] thanks") != NULL);
    CU_ASSERT(strstr(out.data, "{\\\"card\\\":\\\"[REDACTED:CARD]\\\"}") !=
              NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(root, "user")->valuestring,
                           "4111111111111111");
    CU_ASSERT(strstr(out.data, "\"id\":\"4111111111111111\"") != NULL);
    CU_ASSERT(strstr(out.data, "4111 1111") == NULL);
    CU_ASSERT(g.n_recs == 3);
    CU_ASSERT_STRING_EQUAL(g.recs[0].where, "messages[0].content");
    cJSON_Delete(root);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

static void
test_input_block_names_rule_not_text(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":"
        "\"x\",\"content\":\"employee EMP-204118 found\"}]}";

    guard_init(&g, true);
    tg_buf_init(&out, 0);
    CU_ASSERT(dp_guard_input(&g, TG_EP_CHAT_COMPLETIONS, body, strlen(body),
                             &out) == DP_GUARD_BLOCKED);
    CU_ASSERT(strstr(g.block_msg, "b-block") != NULL);
    CU_ASSERT(strstr(g.block_msg, "custom.emp") != NULL);
    CU_ASSERT(strstr(g.block_msg, "messages[0].content") != NULL);
    CU_ASSERT(strstr(g.block_msg, "204118") == NULL);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

static void
test_input_audit_mode_changes_nothing(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"EMP-204118 and Project  Titan\"}]}";

    guard_init(&g, false); /* b-block in audit mode */
    tg_buf_init(&out, 0);
    CU_ASSERT(dp_guard_input(&g, TG_EP_CHAT_COMPLETIONS, body, strlen(body),
                             &out) == DP_GUARD_PASS);
    CU_ASSERT(out.len == 0);
    CU_ASSERT(g.n_recs == 2);
    CU_ASSERT_STRING_EQUAL(g.recs[0].action, "audit");
    CU_ASSERT(!g.recs[0].enforced);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

static void
test_input_messages_format(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *body =
        "{\"model\":\"m\",\"max_tokens\":5,\"system\":\"ops@example.com\","
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"4111111111111111\"}]}]},{\"role\":\"assistant\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"4111111111111111\","
        "\"signature\":\"sig\"}]}]}";

    guard_init(&g, true);
    tg_buf_init(&out, 0);
    CU_ASSERT_FATAL(dp_guard_input(&g, TG_EP_MESSAGES, body, strlen(body),
                                   &out) == DP_GUARD_CHANGED);
    CU_ASSERT(strstr(out.data, "\"system\":\"[REDACTED:EMAIL]\"") != NULL);
    CU_ASSERT(strstr(out.data, "\"text\":\"[REDACTED:CARD]\"") != NULL);
    /* Signed thinking is left alone: a changed byte breaks it. */
    CU_ASSERT(strstr(out.data, "\"thinking\":\"4111111111111111\"") != NULL);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

static void
test_output_whole(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *body =
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"pay with 4111111111111111\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1}}";

    guard_init(&g, true);
    tg_buf_init(&out, 0);
    CU_ASSERT_FATAL(dp_guard_output(&g, TG_EP_CHAT_COMPLETIONS, body,
                                    strlen(body), &out) == DP_GUARD_CHANGED);
    CU_ASSERT(strstr(out.data, "pay with [REDACTED:CARD]") != NULL);
    CU_ASSERT(g.recs[0].stage == TG_GUARD_OUTPUT);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

static void
test_input_embeddings(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *body = "{\"model\":\"e\",\"input\":[\"hi ops@example.com\","
                        "\"plain\"]}";

    guard_init(&g, true);
    tg_buf_init(&out, 0);
    CU_ASSERT_FATAL(dp_guard_input(&g, TG_EP_EMBEDDINGS, body, strlen(body),
                                   &out) == DP_GUARD_CHANGED);
    CU_ASSERT(strstr(out.data, "\"hi [REDACTED:EMAIL]\",\"plain\"") != NULL);
    CU_ASSERT_STRING_EQUAL(g.recs[0].where, "input[0]");
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

/* A canary rule that only looks at answers: the canary still goes into
 * the system prompt, and an answer repeating it is a leak, blocked. */
static void
test_canary(void)
{
    cJSON *spec = cJSON_Parse(
        "{\"rules\": [{\"id\": \"leak\", \"stages\": [\"output\"], "
        "\"canary\": true, \"action\": \"block\"}], \"lists\": {}}");
    tg_guard_set *set = NULL;
    tg_guard_ob   ob  = {"leak", 0, true, false};
    dp_guard_req  g;
    tg_buf        out, ans;
    char          err[512];
    const char   *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"hi\"}]}";

    CU_ASSERT_FATAL(tg_guard_set_compile(&set, spec, err, sizeof(err)) ==
                    TG_OK);
    cJSON_Delete(spec);
    CU_ASSERT_FATAL(dp_guard_req_init(&g, set, &ob, 1, err, sizeof(err)) ==
                    TG_OK);
    CU_ASSERT(strncmp(g.canary, "tg-canary-", 10) == 0);
    tg_buf_init(&out, 0);
    tg_buf_init(&ans, 0);
    CU_ASSERT_FATAL(dp_guard_input(&g, TG_EP_CHAT_COMPLETIONS, body,
                                   strlen(body), &out) == DP_GUARD_CHANGED);
    CU_ASSERT(strstr(out.data, "\"role\":\"system\"") != NULL);
    CU_ASSERT(strstr(out.data, g.canary) != NULL);
    tg_buf_addf(&ans,
                "{\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"my canary is %s\"}}]}",
                g.canary);
    tg_buf_reset(&out);
    CU_ASSERT(dp_guard_output(&g, TG_EP_CHAT_COMPLETIONS, ans.data, ans.len,
                              &out) == DP_GUARD_BLOCKED);
    CU_ASSERT(strstr(g.block_msg, "injection.canary_leak") != NULL);
    tg_buf_fini(&out);
    tg_buf_fini(&ans);
    dp_guard_req_fini(&g);
}

/* ---- streams -------------------------------------------------------- */

/* oai_chunk appends one OpenAI chat chunk with content piece. */
static void
oai_chunk(tg_buf *b, const char *piece, const char *finish)
{
    cJSON *c = cJSON_CreateObject(), *ch, *d;
    char  *s;

    cJSON_AddStringToObject(c, "id", "chatcmpl-1");
    cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
    ch = cJSON_AddArrayToObject(c, "choices");
    d  = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, d);
    cJSON_AddNumberToObject(d, "index", 0);
    cJSON *delta = cJSON_AddObjectToObject(d, "delta");
    if (piece != NULL) {
        cJSON_AddStringToObject(delta, "content", piece);
    }
    if (finish != NULL) {
        cJSON_AddStringToObject(d, "finish_reason", finish);
    } else {
        cJSON_AddNullToObject(d, "finish_reason");
    }
    s = cJSON_PrintUnformatted(c);
    tg_buf_addf(b, "data: %s\n\n", s);
    free(s);
    cJSON_Delete(c);
}

/* oai_text concatenates the content of every chunk in an SSE text. */
static void
oai_text(const char *sse, tg_buf *text, bool *done)
{
    const char *p = sse;

    *done = false;
    while ((p = strstr(p, "data: ")) != NULL) {
        const char *e = strstr(p, "\n\n");
        p += 6;
        if (strncmp(p, "[DONE]", 6) == 0) {
            *done = true;
        } else {
            cJSON *c = cJSON_ParseWithLength(p, (size_t)(e - p));
            cJSON *d = cJSON_GetObjectItem(
                cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0),
                "delta");
            cJSON *t = cJSON_GetObjectItem(d, "content");
            if (cJSON_IsString(t)) {
                tg_buf_add(text, t->valuestring, strlen(t->valuestring));
            }
            cJSON_Delete(c);
        }
        p = e;
    }
}

static void
test_stream_openai_split_card_every_way(void)
{
    const char *answer = "Your card 4111 1111 1111 1111 is on file, ok?";
    size_t      n      = strlen(answer);

    /* Every way of cutting the answer into three chunks. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            dp_guard_req g;
            tg_buf       in, out, text;
            char         p1[64], p2[64], p3[64];
            bool         done;
            guard_init(&g, true);
            tg_buf_init(&in, 0);
            tg_buf_init(&out, 0);
            tg_buf_init(&text, 0);
            snprintf(p1, sizeof(p1), "%.*s", (int)i, answer);
            snprintf(p2, sizeof(p2), "%.*s", (int)(j - i), answer + i);
            snprintf(p3, sizeof(p3), "%s", answer + j);
            /* One event per call, as the provider sends them. */
            const char *pieces[3] = {p1, p2, p3};
            for (int k = 0; k < 3; k++) {
                tg_buf_reset(&in);
                oai_chunk(&in, pieces[k], NULL);
                CU_ASSERT_FATAL(dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS,
                                                in.data, in.len, false,
                                                &out) == DP_GUARD_PASS);
                /* The card's digits are never all out before the end. */
                CU_ASSERT(strstr(out.data != NULL ? out.data : "",
                                 "1111 1111 1111") == NULL);
            }
            tg_buf_reset(&in);
            oai_chunk(&in, NULL, "stop");
            tg_buf_add(&in, "data: [DONE]\n\n", 14);
            CU_ASSERT_FATAL(dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS, in.data,
                                            in.len, true,
                                            &out) == DP_GUARD_PASS);
            oai_text(out.data, &text, &done);
            tg_buf_add(&text, "", 0);
            CU_ASSERT(done);
            if (strcmp(text.data,
                       "Your card [REDACTED:CARD] is on file, ok?") != 0) {
                fprintf(stderr, "\nsplit %zu/%zu: %s\n", i, j, text.data);
                CU_FAIL("redacted stream");
            }
            tg_buf_fini(&in);
            tg_buf_fini(&out);
            tg_buf_fini(&text);
            dp_guard_req_fini(&g);
        }
    }
}

static void
test_stream_openai_releases_early(void)
{
    dp_guard_req g;
    tg_buf       in, out, text;
    bool         done;
    char         big[4000];

    /* Plain text far longer than any match is released as it comes. */
    memset(big, 'a', sizeof(big) - 1);
    for (size_t i = 5; i < sizeof(big) - 1; i += 6) {
        big[i] = ' ';
    }
    big[sizeof(big) - 1] = '\0';
    guard_init(&g, true);
    tg_buf_init(&in, 0);
    tg_buf_init(&out, 0);
    tg_buf_init(&text, 0);
    oai_chunk(&in, big, NULL);
    CU_ASSERT(dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS, in.data, in.len,
                              false, &out) == DP_GUARD_PASS);
    oai_text(out.data, &text, &done);
    CU_ASSERT(text.len > 0);
    CU_ASSERT(text.len + tg_guard_set_holdback(g.set, g.stage_mask[1], 0) >=
              strlen(big));
    tg_buf_fini(&in);
    tg_buf_fini(&out);
    tg_buf_fini(&text);
    dp_guard_req_fini(&g);
}

static void
test_stream_openai_block_stops_before_text(void)
{
    dp_guard_req g;
    tg_buf       in, out;

    guard_init(&g, true);
    tg_buf_init(&in, 0);
    tg_buf_init(&out, 0);
    oai_chunk(&in, "hello there, the key is ", NULL);
    CU_ASSERT(dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS, in.data, in.len,
                              false, &out) == DP_GUARD_PASS);
    tg_buf_reset(&in);
    oai_chunk(&in, "AKIAZ7QK3M2XW9PL4T", NULL);
    dp_guard_verdict v = dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS, in.data,
                                         in.len, false, &out);
    tg_buf_reset(&in);
    oai_chunk(&in, "RE and more", "stop");
    if (v == DP_GUARD_PASS) {
        v = dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS, in.data, in.len, true,
                            &out);
    }
    CU_ASSERT(v == DP_GUARD_BLOCKED);
    CU_ASSERT(strstr(out.data != NULL ? out.data : "", "AKIA") == NULL);
    CU_ASSERT(strstr(g.block_msg, "b-block") != NULL);
    tg_buf_fini(&in);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

/* A finishing chunk that carries a whole tool call: the arguments the
 * chunk releases and what the finish flushes are joined, in order; a
 * chunk after the finish (usage, an empty delta) does not break it. */
static void
test_stream_tool_call_in_finishing_chunk(void)
{
    dp_guard_req g;
    tg_buf       out;
    const char  *ev =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{"
        "\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"{\\\"city\\\": \\\"Paris is a very long city name here\\\"}\"}}]},"
        "\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{"
        "\"content\":\"\"},\"finish_reason\":null}],\"usage\":{"
        "\"prompt_tokens\":1}}\n\n"
        "data: [DONE]\n\n";

    guard_init(&g, true);
    tg_buf_init(&out, 0);
    CU_ASSERT_FATAL(dp_guard_stream(&g, TG_EP_CHAT_COMPLETIONS, ev,
                                    strlen(ev), true, &out) == DP_GUARD_PASS);
    CU_ASSERT(strstr(out.data, "\"arguments\":\"{\\\"city\\\": \\\"Paris is a "
                               "very long city name here\\\"}\"") != NULL);
    CU_ASSERT(strstr(out.data, "\"usage\"") != NULL);
    CU_ASSERT(strstr(out.data, "[DONE]") != NULL);
    tg_buf_fini(&out);
    dp_guard_req_fini(&g);
}

static void
anth_delta(tg_buf *b, int index, const char *text)
{
    cJSON *e = cJSON_CreateObject(), *d;
    char  *s;

    cJSON_AddStringToObject(e, "type", "content_block_delta");
    cJSON_AddNumberToObject(e, "index", index);
    d = cJSON_AddObjectToObject(e, "delta");
    cJSON_AddStringToObject(d, "type", "text_delta");
    cJSON_AddStringToObject(d, "text", text);
    s = cJSON_PrintUnformatted(e);
    tg_buf_addf(b, "event: content_block_delta\ndata: %s\n\n", s);
    free(s);
    cJSON_Delete(e);
}

static void
test_stream_anthropic_split_card(void)
{
    dp_guard_req g;
    tg_buf       in, out, text;
    const char  *pieces[] = {"Card 4111 11", "11 1111 ", "1111 done"};
    const char  *p;

    guard_init(&g, true);
    tg_buf_init(&in, 0);
    tg_buf_init(&out, 0);
    tg_buf_init(&text, 0);
    tg_buf_addf(&in, "event: content_block_start\ndata: {\"type\":"
                     "\"content_block_start\",\"index\":0,\"content_block\":{"
                     "\"type\":\"text\",\"text\":\"\"}}\n\n");
    CU_ASSERT(dp_guard_stream(&g, TG_EP_MESSAGES, in.data, in.len, false,
                              &out) == DP_GUARD_PASS);
    for (int k = 0; k < 3; k++) {
        tg_buf_reset(&in);
        anth_delta(&in, 0, pieces[k]);
        CU_ASSERT(dp_guard_stream(&g, TG_EP_MESSAGES, in.data, in.len, false,
                                  &out) == DP_GUARD_PASS);
    }
    tg_buf_reset(&in);
    tg_buf_addf(&in, "event: content_block_stop\ndata: {\"type\":"
                     "\"content_block_stop\",\"index\":0}\n\n"
                     "event: message_stop\ndata: {\"type\":\"message_stop\"}"
                     "\n\n");
    CU_ASSERT(dp_guard_stream(&g, TG_EP_MESSAGES, in.data, in.len, true,
                              &out) == DP_GUARD_PASS);
    /* The text of every delta, in order. */
    for (p = out.data; (p = strstr(p, "\"text_delta\",\"text\":\"")) != NULL;) {
        const char *e;
        p += strlen("\"text_delta\",\"text\":\"");
        e = strchr(p, '"');
        tg_buf_add(&text, p, (size_t)(e - p));
    }
    tg_buf_add(&text, "", 0);
    CU_ASSERT_STRING_EQUAL(text.data, "Card [REDACTED:CARD] done");
    /* The stop events still come, after the released text. */
    CU_ASSERT(strstr(out.data, "content_block_stop") >
              strstr(out.data, "REDACTED"));
    CU_ASSERT(strstr(out.data, "message_stop") != NULL);
    tg_buf_fini(&in);
    tg_buf_fini(&out);
    tg_buf_fini(&text);
    dp_guard_req_fini(&g);
}

static const tg_unit_case cases[] = {
    {"an obligation that names another rule is refused",
     test_obligation_mismatch},
    {"chat input: text, parts and tool arguments redacted, ids left",
     test_input_chat_redacts_where_text_is},
    {"a block names the rule, detector and place, never the text",
     test_input_block_names_rule_not_text},
    {"audit-mode hits are recorded and change nothing",
     test_input_audit_mode_changes_nothing},
    {"Messages input: system and tool results; signed thinking left alone",
     test_input_messages_format},
    {"a whole answer is redacted", test_output_whole},
    {"embeddings input is scanned", test_input_embeddings},
    {"a canary in the system prompt, leaked in the answer, blocks",
     test_canary},
    {"OpenAI stream: a card split into 3 chunks any way is redacted",
     test_stream_openai_split_card_every_way},
    {"a stream releases text as soon as no match can cover it",
     test_stream_openai_releases_early},
    {"a block mid-stream stops before the client sees the secret",
     test_stream_openai_block_stops_before_text},
    {"Anthropic stream: a split card is redacted, stop events follow",
     test_stream_anthropic_split_card},
    {"a tool call in the finishing chunk keeps all its arguments",
     test_stream_tool_call_in_finishing_chunk},
    {NULL, NULL},
};

int
main(void)
{
    int rc = tg_unit_run("dataplane.guard_req", cases);

    tg_guard_set_unref(guard_set);
    return rc;
}
