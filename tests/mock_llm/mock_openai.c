/* mock_openai.c - OpenAI wire format for the mock LLM; see mock_openai.h.
 * Output is written by hand rather than with cJSON: the mock is the
 * reference in gateway benchmarks, so building a reply must stay cheap. */
#include "mock_openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Clamp for max_tokens: larger limits never cut a 100000-word reply. */
#define MOCK_OPENAI__MAX_TOKENS_CLAMP 1000000000.0

/* mock_openai__get_int reads an integral JSON number in [lo, hi]. */
static bool
mock_openai__get_int(const cJSON *it, double lo, double hi, long *out)
{
    double d;

    if (!cJSON_IsNumber(it)) {
        return false;
    }
    d = it->valuedouble;
    if (!(d >= lo && d <= hi)) { /* also rejects NaN */
        return false;
    }
    if (d != (double)(long)d) {
        return false;
    }
    *out = (long)d;
    return true;
}

/* mock_openai__text counts one piece of message text and applies its
 * directives. */
static bool
mock_openai__text(mock_chat_req *req, const char *text, size_t *bytes,
                  char *err, size_t errsz)
{
    *bytes += strlen(text);
    return mock_ctl_scan_text(&req->ctl, text, err, errsz);
}

static bool
mock_openai__messages(mock_chat_req *req, const cJSON *msgs, char *err,
                      size_t errsz)
{
    const cJSON *m;
    int          i = 0;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *content;
        size_t       bytes = 0;

        if (!cJSON_IsObject(m)) {
            snprintf(err, errsz,
                     "Invalid type for 'messages[%d]': expected "
                     "an object.",
                     i);
            return false;
        }
        content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(content)) {
            if (!mock_openai__text(req, content->valuestring, &bytes, err,
                                   errsz)) {
                return false;
            }
        } else if (cJSON_IsArray(content)) {
            const cJSON *part;

            cJSON_ArrayForEach(part, content)
            {
                const cJSON *text =
                    cJSON_GetObjectItemCaseSensitive(part, "text");

                if (cJSON_IsString(text) &&
                    !mock_openai__text(req, text->valuestring, &bytes, err,
                                       errsz)) {
                    return false;
                }
            }
        } else if (content != NULL && !cJSON_IsNull(content)) {
            snprintf(err, errsz,
                     "Invalid type for 'messages[%d].content': expected a "
                     "string, an array of content parts or null.",
                     i);
            return false;
        }
        req->prompt_tokens += 4 + (bytes + 3) / 4;
        i++;
    }
    return true;
}

static bool
mock_openai__options(mock_chat_req *req, const cJSON *root, char *err,
                     size_t errsz)
{
    const cJSON *it;
    const char  *mt_name = "max_completion_tokens";

    it = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (cJSON_IsBool(it)) {
        req->stream = cJSON_IsTrue(it);
    } else if (it != NULL && !cJSON_IsNull(it)) {
        snprintf(err, errsz,
                 "Invalid type for 'stream': expected a "
                 "boolean.");
        return false;
    }

    it = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (cJSON_IsObject(it)) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(it, "include_usage");

        if (cJSON_IsBool(iu)) {
            req->include_usage = cJSON_IsTrue(iu);
        } else if (iu != NULL && !cJSON_IsNull(iu)) {
            snprintf(err, errsz,
                     "Invalid type for "
                     "'stream_options.include_usage': expected "
                     "a boolean.");
            return false;
        }
    } else if (it != NULL && !cJSON_IsNull(it)) {
        snprintf(err, errsz,
                 "Invalid type for 'stream_options': expected "
                 "an object.");
        return false;
    }

    it = cJSON_GetObjectItemCaseSensitive(root, mt_name);
    if (it == NULL || cJSON_IsNull(it)) {
        mt_name = "max_tokens";
        it      = cJSON_GetObjectItemCaseSensitive(root, mt_name);
    }
    if (it != NULL && !cJSON_IsNull(it)) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : -1.0;

        if (d > MOCK_OPENAI__MAX_TOKENS_CLAMP) {
            req->max_tokens = (long)MOCK_OPENAI__MAX_TOKENS_CLAMP;
        } else if (!mock_openai__get_int(it, 0, MOCK_OPENAI__MAX_TOKENS_CLAMP,
                                         &req->max_tokens)) {
            snprintf(err, errsz,
                     "Invalid value for '%s': expected a "
                     "non-negative integer.",
                     mt_name);
            return false;
        }
    }
    return true;
}

bool
mock_openai_parse_chat(mock_chat_req *req, const char *body, size_t len,
                       char *err, size_t errsz)
{
    const char  *end = NULL;
    cJSON       *root;
    const cJSON *model;
    const cJSON *msgs;
    bool         ok = false;

    memset(req, 0, sizeof(*req));
    mock_ctl_init(&req->ctl);
    if (len == 0) {
        snprintf(err, errsz,
                 "The request body is empty; expected a JSON "
                 "object.");
        return false;
    }
    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        size_t at = (end != NULL && end >= body && end <= body + len)
                        ? (size_t)(end - body)
                        : 0;

        snprintf(err, errsz,
                 "We could not parse the JSON body of your "
                 "request (error near byte %zu).",
                 at);
        return false;
    }
    for (; end != NULL && end < body + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            snprintf(err, errsz,
                     "We could not parse the JSON body of your "
                     "request (unexpected data after the JSON "
                     "value at byte %zu).",
                     (size_t)(end - body));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errsz, "The request body must be a JSON object.");
        goto out;
    }

    model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model == NULL || cJSON_IsNull(model)) {
        snprintf(err, errsz, "Missing required parameter: 'model'.");
        goto out;
    }
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        snprintf(err, errsz,
                 "Invalid value for 'model': expected a "
                 "non-empty string.");
        goto out;
    }
    msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (msgs == NULL || cJSON_IsNull(msgs)) {
        snprintf(err, errsz, "Missing required parameter: 'messages'.");
        goto out;
    }
    if (!cJSON_IsArray(msgs)) {
        snprintf(err, errsz,
                 "Invalid type for 'messages': expected an "
                 "array.");
        goto out;
    }
    if (!mock_openai__messages(req, msgs, err, errsz) ||
        !mock_openai__options(req, root, err, errsz)) {
        goto out;
    }
    req->model = strdup(model->valuestring);
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}

void
mock_openai_chat_fini(mock_chat_req *req)
{
    free(req->model);
    req->model = NULL;
}

const char *
mock_reply_finish_reason(const mock_reply *r)
{
    return r->emit < r->words ? "length" : "stop";
}

static void
mock_openai__word(mock_buf *b, const mock_reply *r, long i)
{
    mock_buf_addc(b, 'w');
    mock_buf_add_u64(b, (uint64_t)i);
    if (i + 1 < r->words) {
        mock_buf_addc(b, ' ');
    }
}

static void
mock_openai__usage(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"prompt_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    mock_buf_adds(b, ",\"completion_tokens\":");
    mock_buf_add_u64(b, (uint64_t)r->emit);
    mock_buf_adds(b, ",\"total_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens + (uint64_t)r->emit);
    mock_buf_addc(b, '}');
}

static void
mock_openai__id(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "\"chatcmpl-mock-");
    mock_buf_add_u64(b, r->id);
    mock_buf_addc(b, '"');
}

void
mock_openai_render_completion(mock_buf *b, const mock_reply *r)
{
    /* about 7 bytes per word; one reservation keeps big replies cheap */
    mock_buf_reserve(b, 384 + strlen(r->model) * 6 + (size_t)r->emit * 8);
    mock_buf_adds(b, "{\"id\":");
    mock_openai__id(b, r);
    mock_buf_adds(b, ",\"object\":\"chat.completion\",\"created\":");
    mock_buf_add_i64(b, r->created);
    mock_buf_adds(b, ",\"model\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                     "\"assistant\",\"content\":\"");
    for (long i = 0; i < r->emit; i++) {
        mock_openai__word(b, r, i);
    }
    mock_buf_adds(b, "\"},\"logprobs\":null,\"finish_reason\":\"");
    mock_buf_adds(b, mock_reply_finish_reason(r));
    mock_buf_adds(b, "\"}],\"usage\":");
    mock_openai__usage(b, r);
    mock_buf_adds(b, ",\"system_fingerprint\":\"fp_mock\"}");
}

void
mock_openai_render_chunk_head(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "data: {\"id\":");
    mock_openai__id(b, r);
    mock_buf_adds(b, ",\"object\":\"chat.completion.chunk\",\"created\":");
    mock_buf_add_i64(b, r->created);
    mock_buf_adds(b, ",\"model\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"system_fingerprint\":\"fp_mock\",\"choices\":");
}

/* mock_openai__chunk_tail closes a chunk whose delta was just written. */
static void
mock_openai__chunk_tail(mock_buf *b, const mock_reply *r, const char *finish)
{
    mock_buf_adds(b, ",\"logprobs\":null,\"finish_reason\":");
    if (finish == NULL) {
        mock_buf_adds(b, "null");
    } else {
        mock_buf_addc(b, '"');
        mock_buf_adds(b, finish);
        mock_buf_addc(b, '"');
    }
    mock_buf_adds(b, "}]");
    /* with include_usage OpenAI puts "usage":null on every earlier chunk */
    if (r->include_usage) {
        mock_buf_adds(b, ",\"usage\":null");
    }
    mock_buf_adds(b, "}\n\n");
}

void
mock_openai_event_role(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    mock_buf_add(b, head->data, head->len);
    mock_buf_adds(b, "[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                     "\"content\":\"\"}");
    mock_openai__chunk_tail(b, r, NULL);
}

void
mock_openai_event_word(mock_buf *b, const mock_buf *head, const mock_reply *r,
                       long i)
{
    mock_buf_add(b, head->data, head->len);
    mock_buf_adds(b, "[{\"index\":0,\"delta\":{\"content\":\"");
    mock_openai__word(b, r, i);
    mock_buf_adds(b, "\"}");
    mock_openai__chunk_tail(b, r, NULL);
}

void
mock_openai_event_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    mock_buf_add(b, head->data, head->len);
    mock_buf_adds(b, "[{\"index\":0,\"delta\":{}");
    mock_openai__chunk_tail(b, r, mock_reply_finish_reason(r));
    if (r->include_usage) {
        mock_buf_add(b, head->data, head->len);
        mock_buf_adds(b, "[],\"usage\":");
        mock_openai__usage(b, r);
        mock_buf_adds(b, "}\n\n");
    }
    mock_buf_adds(b, "data: [DONE]\n\n");
}

void
mock_openai_render_error(mock_buf *b, const char *msg, const char *type,
                         const char *code)
{
    mock_buf_adds(b, "{\"error\":{\"message\":");
    mock_buf_add_json_str(b, msg);
    mock_buf_adds(b, ",\"type\":");
    mock_buf_add_json_str(b, type);
    mock_buf_adds(b, ",\"param\":null,\"code\":");
    if (code == NULL) {
        mock_buf_adds(b, "null");
    } else {
        mock_buf_add_json_str(b, code);
    }
    mock_buf_adds(b, "}}");
}

void
mock_openai_status_error(int status, const char **type, const char **code,
                         const char **msg)
{
    switch (status) {
    case 400:
        *type = "invalid_request_error";
        *code = NULL;
        *msg  = "mock: injected bad request";
        break;
    case 401:
        *type = "invalid_request_error";
        *code = "invalid_api_key";
        *msg  = "mock: injected invalid API key";
        break;
    case 403:
        *type = "invalid_request_error";
        *code = "permission_denied";
        *msg  = "mock: injected permission denied";
        break;
    case 404:
        *type = "invalid_request_error";
        *code = "model_not_found";
        *msg  = "mock: injected model not found";
        break;
    case 429:
        *type = "requests";
        *code = "rate_limit_exceeded";
        *msg  = "mock: injected rate limit; retry after 1s";
        break;
    case 503:
        *type = "server_error";
        *code = "service_unavailable";
        *msg  = "mock: injected service unavailable";
        break;
    default:
        *type = "server_error";
        *code = "server_error";
        *msg  = "mock: injected server error";
        break;
    }
}

const char *
mock_openai_models_json(void)
{
    return "{\"object\":\"list\",\"data\":["
           "{\"id\":\"gpt-4o-mini\",\"object\":\"model\","
           "\"created\":1721172741,\"owned_by\":\"system\"},"
           "{\"id\":\"gpt-4o\",\"object\":\"model\","
           "\"created\":1715367049,\"owned_by\":\"system\"},"
           "{\"id\":\"mock-small\",\"object\":\"model\","
           "\"created\":1700000000,\"owned_by\":\"tollgate-mock\"}]}";
}
