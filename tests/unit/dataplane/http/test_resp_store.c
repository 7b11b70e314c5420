/* test_resp_store.c - dataplane.http.resp_store: the JSON of stored
 * Responses API responses: the items a response keeps, a page of them,
 * a continuation's input expanded with a stored response, item_reference
 * resolved, and the items kept from the chat body that went upstream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_resp.h"
#include "dp_resp_store.h"
#include "tg_unit.h"

static char *
print(const cJSON *j)
{
    return cJSON_PrintUnformatted(j);
}

static void
test_items_from_a_string_and_an_array(void)
{
    cJSON *in = cJSON_CreateString("hi there");
    cJSON *out;
    char  *s;

    CU_ASSERT_EQUAL_FATAL(dp_resp_store_items(in, "r1", &out), TG_OK);
    s = print(out);
    CU_ASSERT_STRING_EQUAL(s,
                           "[{\"type\":\"message\",\"role\":\"user\","
                           "\"content\":[{\"type\":\"input_text\","
                           "\"text\":\"hi there\"}],\"id\":\"msg_r1_in0\"}]");
    cJSON_free(s);
    cJSON_Delete(out);
    cJSON_Delete(in);
    in = cJSON_Parse("[{\"role\":\"system\",\"content\":\"be brief\"},"
                     "{\"type\":\"message\",\"id\":\"mine\",\"role\":\"user\","
                     "\"content\":\"q\"}]");
    CU_ASSERT_EQUAL_FATAL(dp_resp_store_items(in, "r2", &out), TG_OK);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(out), 2);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(out, 0), "id")->valuestring,
        "msg_r2_in0");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(out, 0), "type")->valuestring,
        "message");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(out, 1), "id")->valuestring,
        "mine");
    cJSON_Delete(out);
    cJSON_Delete(in);
    in = cJSON_CreateNumber(3);
    CU_ASSERT_EQUAL(dp_resp_store_items(in, "r3", &out), TG_EINVAL);
    CU_ASSERT_PTR_NULL(out);
    cJSON_Delete(in);
}

static void
test_pages(void)
{
    const char *items = "[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]";
    tg_buf      out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_page(items, strlen(items), 20, true, NULL, &out), TG_OK);
    CU_ASSERT_NSTRING_EQUAL(out.data,
                            "{\"object\":\"list\",\"data\":[{\"id\":\"c\"},"
                            "{\"id\":\"b\"},{\"id\":\"a\"}],\"first_id\":"
                            "\"c\",\"last_id\":\"a\",\"has_more\":false}",
                            out.len);
    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_page(items, strlen(items), 2, false, NULL, &out), TG_OK);
    CU_ASSERT_NSTRING_EQUAL(out.data,
                            "{\"object\":\"list\",\"data\":[{\"id\":\"a\"},"
                            "{\"id\":\"b\"}],\"first_id\":\"a\",\"last_id\":"
                            "\"b\",\"has_more\":true}",
                            out.len);
    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_page(items, strlen(items), 2, false, "b", &out), TG_OK);
    CU_ASSERT_NSTRING_EQUAL(out.data,
                            "{\"object\":\"list\",\"data\":[{\"id\":\"c\"}],"
                            "\"first_id\":\"c\",\"last_id\":\"c\","
                            "\"has_more\":false}",
                            out.len);
    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_page(items, strlen(items), 5, true, "a", &out), TG_OK);
    CU_ASSERT_NSTRING_EQUAL(out.data,
                            "{\"object\":\"list\",\"data\":[],\"first_id\":"
                            "null,\"last_id\":null,\"has_more\":false}",
                            out.len);
    CU_ASSERT_EQUAL(
        dp_resp_store_page(items, strlen(items), 5, true, "zz", &out),
        TG_ENOTFOUND);
    CU_ASSERT_EQUAL(dp_resp_store_page("{}", 2, 5, true, NULL, &out),
                    TG_ECORRUPT);
    tg_buf_fini(&out);
}

static void
test_expand_and_resolve(void)
{
    const char *resp  = "{\"id\":\"resp_r1\",\"output\":[{\"id\":\"msg_r1_0\","
                        "\"type\":\"message\",\"role\":\"assistant\"}]}";
    const char *items = "[{\"id\":\"msg_r1_in0\",\"type\":\"message\","
                        "\"role\":\"user\"}]";
    cJSON      *body  = cJSON_Parse("{\"model\":\"m\",\"previous_response_id\":"
                                          "\"resp_r1\",\"input\":\"next\"}");
    cJSON      *in;
    char       *s;

    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_expand(body, resp, strlen(resp), items, strlen(items)),
        TG_OK);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(body, "previous_response_id"));
    in = cJSON_GetObjectItem(body, "input");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(in), 3);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(in, 0), "id")->valuestring,
        "msg_r1_in0");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(in, 1), "role")->valuestring,
        "assistant");
    s = print(cJSON_GetArrayItem(in, 2));
    CU_ASSERT_STRING_EQUAL(s, "{\"type\":\"message\",\"role\":\"user\","
                              "\"content\":[{\"type\":\"input_text\","
                              "\"text\":\"next\"}]}");
    cJSON_free(s);
    cJSON_Delete(body);
    body = cJSON_CreateObject();
    CU_ASSERT_EQUAL(dp_resp_store_expand(body, "nope", 4, items, strlen(items)),
                    TG_ECORRUPT);
    cJSON_Delete(body);

    body = cJSON_Parse("{\"input\":[{\"type\":\"item_reference\",\"id\":"
                       "\"msg_r1_0\"},{\"role\":\"user\",\"content\":\"x\"}]}");
    CU_ASSERT_STRING_EQUAL(dp_resp_store_ref_id(body), "msg_r1_0");
    CU_ASSERT_EQUAL(
        dp_resp_store_resolve(body, resp, strlen(resp), items, strlen(items)),
        1);
    CU_ASSERT_PTR_NULL(dp_resp_store_ref_id(body));
    in = cJSON_GetObjectItem(body, "input");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(in, 0), "role")->valuestring,
        "assistant");
    cJSON_Delete(body);
}

/* chat_of renders the chat body dp_resp_req_to_chat sends upstream for
 * the Responses request req (JSON). Owns: the result (free()). */
static char *
chat_of(const char *req, size_t *len)
{
    cJSON *r = cJSON_Parse(req);
    cJSON *echo;
    char  *out = NULL;
    char   builtin[64], msg[256], param[64];

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(dp_resp_req_to_chat(r, &out, len, &echo, builtin,
                                              sizeof(builtin), msg, sizeof(msg),
                                              param, sizeof(param)),
                          TG_OK);
    cJSON_Delete(echo);
    cJSON_Delete(r);
    return out;
}

/* same says got equals the items in want (JSON), members in any order. */
static void
same(const cJSON *got, const char *want)
{
    cJSON *w = cJSON_Parse(want);
    char  *s = print(got);

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    if (!cJSON_Compare(got, w, 1)) {
        fprintf(stderr, "\ngot:  %s\nwant: %s\n", s, want);
        CU_FAIL("items differ");
    }
    cJSON_free(s);
    cJSON_Delete(w);
}

static const char round_req[] =
    "{\"model\":\"m\",\"instructions\":\"be brief\",\"input\":["
    "{\"role\":\"developer\",\"content\":\"note\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"look\"},{\"type\":\"input_image\",\"image_url\":\"https://x/a.png\"},"
    "{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,AA\","
    "\"detail\":\"low\"}]},"
    "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
    "\"output_text\",\"text\":\"calling\"}]},"
    "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get\","
    "\"arguments\":\"{\\\"a\\\":1}\"},"
    "{\"type\":\"function_call\",\"call_id\":\"call_2\",\"name\":\"put\","
    "\"arguments\":\"{}\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":"
    "\"r1\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":"
    "\"r2\"},"
    "{\"type\":\"function_call\",\"call_id\":\"call_3\",\"name\":\"solo\","
    "\"arguments\":\"{}\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_3\",\"output\":"
    "[{\"type\":\"input_text\",\"text\":\"p1\"},{\"type\":\"input_text\","
    "\"text\":\"p2\"}]},"
    "{\"role\":\"user\",\"content\":\"thanks\"}]}";

/* What round_req's chat form gives back: "developer" went upstream as
 * "system"; call_3 had no text, so no assistant message. */
static const char round_items[] =
    "[{\"type\":\"message\",\"id\":\"msg_r1_in0\",\"role\":\"system\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"note\"}]},"
    "{\"type\":\"message\",\"id\":\"msg_r1_in1\",\"role\":\"user\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"look\"},"
    "{\"type\":\"input_image\",\"image_url\":\"https://x/a.png\","
    "\"detail\":\"auto\"},{\"type\":\"input_image\",\"image_url\":"
    "\"data:image/png;base64,AA\",\"detail\":\"low\"}]},"
    "{\"type\":\"message\",\"id\":\"msg_r1_in2\",\"role\":\"assistant\","
    "\"status\":\"completed\",\"content\":[{\"type\":\"output_text\","
    "\"text\":\"calling\",\"annotations\":[]}]},"
    "{\"type\":\"function_call\",\"id\":\"msg_r1_in3\",\"call_id\":"
    "\"call_1\",\"name\":\"get\",\"arguments\":\"{\\\"a\\\":1}\","
    "\"status\":\"completed\"},"
    "{\"type\":\"function_call\",\"id\":\"msg_r1_in4\",\"call_id\":"
    "\"call_2\",\"name\":\"put\",\"arguments\":\"{}\",\"status\":"
    "\"completed\"},"
    "{\"type\":\"function_call_output\",\"id\":\"msg_r1_in5\",\"call_id\":"
    "\"call_1\",\"output\":\"r1\"},"
    "{\"type\":\"function_call_output\",\"id\":\"msg_r1_in6\",\"call_id\":"
    "\"call_2\",\"output\":\"r2\"},"
    "{\"type\":\"function_call\",\"id\":\"msg_r1_in7\",\"call_id\":"
    "\"call_3\",\"name\":\"solo\",\"arguments\":\"{}\",\"status\":"
    "\"completed\"},"
    "{\"type\":\"function_call_output\",\"id\":\"msg_r1_in8\",\"call_id\":"
    "\"call_3\",\"output\":\"p1p2\"},"
    "{\"type\":\"message\",\"id\":\"msg_r1_in9\",\"role\":\"user\","
    "\"content\":[{\"type\":\"input_text\",\"text\":\"thanks\"}]}]";

static void
test_from_chat_round_trip(void)
{
    size_t len;
    char  *chat = chat_of(round_req, &len);
    cJSON *out;

    CU_ASSERT_EQUAL_FATAL(dp_resp_store_from_chat(chat, len, true, "r1", &out),
                          TG_OK);
    same(out, round_items);
    cJSON_Delete(out);
    free(chat);
}

/* id_at is the id of items[i] ("" when none). */
static const char *
id_at(const cJSON *items, int i)
{
    const cJSON *id = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "id");

    return cJSON_IsString(id) ? id->valuestring : "";
}

static void
test_from_chat_first_system_and_ids(void)
{
    size_t len;
    char  *chat = chat_of(round_req, &len);
    cJSON *out;

    /* Kept: the instructions' system message is item 0, the rest follow
     * with their ids one on. */
    CU_ASSERT_EQUAL_FATAL(dp_resp_store_from_chat(chat, len, false, "r2", &out),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(out), 11);
    same(cJSON_GetArrayItem(out, 0),
         "{\"type\":\"message\",\"id\":\"msg_r2_in0\",\"role\":\"system\","
         "\"content\":[{\"type\":\"input_text\",\"text\":\"be brief\"}]}");
    for (int i = 0; i < 11; i++) {
        char want[32];
        snprintf(want, sizeof(want), "msg_r2_in%d", i);
        CU_ASSERT_STRING_EQUAL(id_at(out, i), want);
    }
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(
            cJSON_GetArrayItem(
                cJSON_GetObjectItem(cJSON_GetArrayItem(out, 1), "content"), 0),
            "text")
            ->valuestring,
        "note");
    cJSON_Delete(out);
    free(chat);

    /* No instructions: the first message is the user's and is kept. */
    chat = chat_of("{\"model\":\"m\",\"input\":\"hi\"}", &len);
    CU_ASSERT_EQUAL_FATAL(dp_resp_store_from_chat(chat, len, true, "r3", &out),
                          TG_OK);
    same(out, "[{\"type\":\"message\",\"id\":\"msg_r3_in0\",\"role\":"
              "\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
              "\"hi\"}]}]");
    cJSON_Delete(out);
    free(chat);
}

static void
test_from_chat_lenient(void)
{
    /* What a client or a guardrail may leave in a chat body: odd messages,
     * parts and calls are left out, and the ids count the items made. */
    const char *chat =
        "{\"model\":\"m\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"sys\"},"
        "\"odd\","
        "{\"role\":\"developer\",\"content\":\"dev\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
        "\"input_audio\":{}},{\"type\":\"text\",\"text\":\"card "
        "[REDACTED]\"},{\"type\":\"image_url\",\"image_url\":"
        "\"https://x/s.png\"},{\"type\":\"image_url\",\"image_url\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]},"
        "{\"role\":\"function\",\"name\":\"f\",\"content\":\"old\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}},{\"id\":\"c2\",\"function\":{\"arguments\":"
        "\"{}\"}}]},"
        "{\"role\":\"tool\",\"content\":\"no id\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":null},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{"
        "\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":"
        "\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"\"},{\"type\":\"text\",\"text\":\"done\"},{\"type\":"
        "\"refusal\",\"refusal\":\"no\"},{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"https://x/a.png\"}}]}]}";
    cJSON *out;

    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_from_chat(chat, strlen(chat), true, "r4", &out), TG_OK);
    same(out, "[{\"type\":\"message\",\"id\":\"msg_r4_in0\",\"role\":"
              "\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":"
              "\"dev\"}]},"
              "{\"type\":\"message\",\"id\":\"msg_r4_in1\",\"role\":\"user\","
              "\"content\":[{\"type\":\"input_text\",\"text\":\"card "
              "[REDACTED]\"},{\"type\":\"input_image\",\"image_url\":"
              "\"https://x/s.png\",\"detail\":\"auto\"}]},"
              "{\"type\":\"function_call\",\"id\":\"msg_r4_in2\",\"call_id\":"
              "\"c1\",\"name\":\"f\",\"arguments\":\"{}\",\"status\":"
              "\"completed\"},"
              "{\"type\":\"function_call_output\",\"id\":\"msg_r4_in3\","
              "\"call_id\":\"c1\",\"output\":\"\"},"
              "{\"type\":\"function_call_output\",\"id\":\"msg_r4_in4\","
              "\"call_id\":\"c1\",\"output\":\"ab\"},"
              "{\"type\":\"message\",\"id\":\"msg_r4_in5\",\"role\":"
              "\"assistant\",\"status\":\"completed\",\"content\":[{\"type\":"
              "\"output_text\",\"text\":\"done\",\"annotations\":[]}]}]");
    cJSON_Delete(out);
}

static void
test_from_chat_not_chat(void)
{
    static const char *const bad[] = {
        "[]", "{}", "{\"messages\":{}}", "{\"messages\":\"hi\"}", "nope", "",
    };
    const char *good = "{\"messages\":[]}";
    cJSON      *out;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = (cJSON *)1;
        CU_ASSERT_EQUAL(
            dp_resp_store_from_chat(bad[i], strlen(bad[i]), false, "r", &out),
            TG_EPROTO);
        CU_ASSERT_PTR_NULL(out);
    }
    /* len bounds the body: cut short, it is not JSON. */
    CU_ASSERT_EQUAL(
        dp_resp_store_from_chat(good, strlen(good) - 1, false, "r", &out),
        TG_EPROTO);
    CU_ASSERT_EQUAL_FATAL(
        dp_resp_store_from_chat(good, strlen(good), false, "r", &out), TG_OK);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(out), 0);
    cJSON_Delete(out);
}

/* A chain walked turn by turn: the first turn expanded, each earlier one
 * put in front (dp_resp_store_prepend) gives the body that expanding
 * again for each turn gives, and a body whose input is not an array of
 * items yet is refused. */
static void
test_prepend_is_expand_again(void)
{
    static const char *resp[] = {
        "{\"id\":\"resp_1\",\"output\":[{\"id\":\"msg_1\",\"type\":"
        "\"message\",\"role\":\"assistant\",\"status\":\"completed\","
        "\"content\":[{\"type\":\"output_text\",\"text\":\"one\","
        "\"annotations\":[]}]}]}",
        "{\"id\":\"resp_2\",\"previous_response_id\":\"resp_1\","
        "\"output\":[{\"id\":\"fc_2\",\"type\":\"function_call\","
        "\"call_id\":\"call_2\",\"name\":\"f\",\"arguments\":\"{}\"}]}",
        "{\"id\":\"resp_3\",\"previous_response_id\":\"resp_2\","
        "\"output\":[{\"id\":\"msg_3\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":"
        "\"three\"}]}]}",
    };
    static const char *items[] = {
        "[{\"id\":\"msg_1_in0\",\"type\":\"message\",\"role\":\"user\","
        "\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}]}]",
        "[{\"id\":\"msg_2_in0\",\"type\":\"message\",\"role\":\"user\","
        "\"content\":[{\"type\":\"input_text\",\"text\":\"call f\"}]}]",
        "[{\"type\":\"function_call_output\",\"call_id\":\"call_2\","
        "\"output\":\"42\"},{\"id\":\"msg_3_in1\",\"type\":\"message\","
        "\"role\":\"user\",\"content\":\"and?\"}]",
    };
    const char *client = "{\"model\":\"m\",\"previous_response_id\":"
                         "\"resp_3\",\"input\":[{\"role\":\"user\","
                         "\"content\":\"next\"}]}";
    cJSON      *again  = cJSON_Parse(client);
    cJSON      *front  = cJSON_Parse(client);
    char       *a, *b;

    for (int t = 2; t >= 0; t--) {
        CU_ASSERT_EQUAL_FATAL(dp_resp_store_expand(again, resp[t],
                                                   strlen(resp[t]), items[t],
                                                   strlen(items[t])),
                              TG_OK);
        CU_ASSERT_EQUAL_FATAL(
            (t == 2 ? dp_resp_store_expand : dp_resp_store_prepend)(
                front, resp[t], strlen(resp[t]), items[t], strlen(items[t])),
            TG_OK);
    }
    a = print(again);
    b = print(front);
    CU_ASSERT_STRING_EQUAL(a, b);
    /* Oldest first: turn 1's input, then its answer, ..., then the new. */
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(front, "input")), 8);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(front, "input"), 0), "id")
            ->valuestring,
        "msg_1_in0");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(front, "input"), 3), "id")
            ->valuestring,
        "fc_2");
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(again);
    cJSON_Delete(front);

    front = cJSON_Parse("{\"input\":\"not yet items\"}");
    CU_ASSERT_EQUAL(dp_resp_store_prepend(front, resp[0], strlen(resp[0]),
                                          items[0], strlen(items[0])),
                    TG_EINVAL);
    CU_ASSERT_EQUAL(
        dp_resp_store_prepend(front, "nope", 4, items[0], strlen(items[0])),
        TG_ECORRUPT);
    cJSON_Delete(front);
}

static const tg_unit_case cases[] = {
    {"items_from_a_string_and_an_array", test_items_from_a_string_and_an_array},
    {"pages", test_pages},
    {"expand_and_resolve", test_expand_and_resolve},
    {"prepend_is_expand_again", test_prepend_is_expand_again},
    {"from_chat_round_trip", test_from_chat_round_trip},
    {"from_chat_first_system_and_ids", test_from_chat_first_system_and_ids},
    {"from_chat_lenient", test_from_chat_lenient},
    {"from_chat_not_chat", test_from_chat_not_chat},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("dataplane.http.resp_store", cases);
}
