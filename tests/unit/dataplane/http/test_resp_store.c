/* test_resp_store.c - dataplane.http.resp_store: the JSON of stored
 * Responses API responses: the items a response keeps, a page of them,
 * a continuation's input expanded with a stored response, item_reference
 * resolved. */
#include <stdlib.h>
#include <string.h>

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
    char        rid[64];

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

    CU_ASSERT(dp_resp_store_ref_response("msg_abc-123_0", rid, sizeof(rid)));
    CU_ASSERT_STRING_EQUAL(rid, "resp_abc-123");
    CU_ASSERT(dp_resp_store_ref_response("fc_a_b_2", rid, sizeof(rid)));
    CU_ASSERT_STRING_EQUAL(rid, "resp_a_b");
    CU_ASSERT(dp_resp_store_ref_response("msg_r9_in3", rid, sizeof(rid)));
    CU_ASSERT_STRING_EQUAL(rid, "resp_r9");
    CU_ASSERT_FALSE(dp_resp_store_ref_response("rs_123", rid, sizeof(rid)));
    CU_ASSERT_FALSE(dp_resp_store_ref_response("msg_", rid, sizeof(rid)));
}

static const tg_unit_case cases[] = {
    {"items_from_a_string_and_an_array", test_items_from_a_string_and_an_array},
    {"pages", test_pages},
    {"expand_and_resolve", test_expand_and_resolve},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("dataplane.http.resp_store", cases);
}
