/* dp_resp_store.h - the JSON of stored Responses API responses at the data
 * plane's edge: the input items a response keeps (each with an id), a page
 * of them for GET /v1/responses/{id}/input_items, and a continuation's
 * input expanded with what a stored response held (previous_response_id)
 * or with the stored items it names (item_reference). Pure functions on
 * cJSON; thread-safe. */
#ifndef DP_RESP_STORE_H
#define DP_RESP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_buf.h"
#include "tg_err.h"

#define DP_RESP_PAGE_DEFAULT 20
#define DP_RESP_PAGE_MAX 100

/* dp_resp_store_items makes the input items a response keeps from a
 * Responses request's input (a string: one user message; an array: its
 * items, a bare {role, content} taken as a message): each an object with
 * an id (the client's, else "msg_<rid>_in<n>"). TG_EINVAL: an input of
 * another type. Owns: *out (cJSON_Delete). */
tg_err dp_resp_store_items(const cJSON *input, const char *rid, cJSON **out);

/* dp_resp_store_from_chat makes the input items a response keeps from an
 * OpenAI chat completions body (JSON text of len bytes; what went upstream
 * after a guardrail redacted it): each message becomes Responses items:
 * system/developer/user -> a "message" item (role kept; content as
 * input_text parts, image_url parts as input_image with image_url),
 * assistant -> a "message" item with role assistant and output_text
 * parts (when it has text) then one "function_call" item per tool call
 * (call_id, name, arguments), tool -> "function_call_output" (call_id,
 * output). skip_first_system: the body's first message is a system
 * message made from the request's instructions, not an input item: left
 * out (only when it is a system message). Every item gets an id
 * "msg_<rid>_in<n>" (n counting from 0 over the items made). Lenient:
 * other roles and part types, and a message or tool call missing what
 * its item needs, are left out. TG_EPROTO: not a chat body (not a JSON
 * object with a messages array); TG_ENOMEM. Owns: *out (cJSON_Delete). */
tg_err dp_resp_store_from_chat(const char *chat, size_t len,
                               bool skip_first_system, const char *rid,
                               cJSON **out);

/* dp_resp_store_page writes the list object of GET .../input_items from
 * the stored items (a JSON array of len bytes): limit items (1 to 100),
 * newest first when desc, those after the item named after (NULL: from
 * the start). TG_ENOTFOUND: no item is named after; TG_ECORRUPT: items is
 * not an array. */
tg_err dp_resp_store_page(const char *items, size_t len, int64_t limit,
                          bool desc, const char *after, tg_buf *out);

/* dp_resp_store_expand puts before body's input (the client's Responses
 * body: its "input" becomes an array of items) the stored items and the
 * output items of the stored response (the turn a continuation names),
 * and drops "previous_response_id". TG_ECORRUPT: a stored part that does
 * not parse; TG_EINVAL: an input of another type. */
tg_err dp_resp_store_expand(cJSON *body, const char *resp, size_t resp_len,
                            const char *items, size_t items_len);

/* dp_resp_store_prepend puts an earlier turn (its stored items, then its
 * response's output items) in front of body's input, which
 * dp_resp_store_expand made an array of items: the same as expanding
 * again, at the cost of this turn's items alone (a conversation of n
 * turns is then walked in O(n), not O(n^2)). Same errors; TG_EINVAL also
 * when input is not an array. */
tg_err dp_resp_store_prepend(cJSON *body, const char *resp, size_t resp_len,
                             const char *items, size_t items_len);

/* dp_resp_store_ref_id is the id of the first item_reference in body's
 * input (NULL: none). Borrows body. */
const char *dp_resp_store_ref_id(const cJSON *body);

/* dp_resp_store_resolve replaces every item_reference in body's input
 * whose id names an input item or output item of the stored response
 * (resp, items) by a copy of that item. Returns how many it replaced;
 * -1: a stored part that does not parse. */
int dp_resp_store_resolve(cJSON *body, const char *resp, size_t resp_len,
                          const char *items, size_t items_len);

#endif
