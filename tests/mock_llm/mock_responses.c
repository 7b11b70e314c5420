/* mock_responses.c - the OpenAI Responses API wire format (POST
 * /v1/responses) for the mock LLM: a Response object, or the Responses
 * event stream with sequence numbers, for the same deterministic replies
 * as chat completions. Errors are OpenAI's; an in-stream error is an
 * "error" event. Pure functions; thread-safe. */
#include "mock_responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_openai.h"

/* ---- parsing ---- */

/* mock_resp__text_of counts the text of a content value (a string or an
 * array of parts with "text") and applies its directives. */
static bool
mock_resp__text_of(mock_chat_req *req, const cJSON *content, size_t *bytes,
                   char *err, size_t errsz)
{
    const cJSON *p;

    if (cJSON_IsString(content)) {
        return mock_wire_text_in(req, content->valuestring, bytes, err, errsz);
    }
    cJSON_ArrayForEach(p, content)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t) &&
            !mock_wire_text_in(req, t->valuestring, bytes, err, errsz)) {
            return false;
        }
    }
    return true;
}

/* mock_resp__item counts one input item; *user: it was a user message. */
static bool
mock_resp__item(mock_chat_req *req, const cJSON *it, int i, bool *user,
                char *err, size_t errsz)
{
    const cJSON *type  = cJSON_GetObjectItemCaseSensitive(it, "type");
    const char  *t     = cJSON_IsString(type) ? type->valuestring : "message";
    const cJSON *role  = cJSON_GetObjectItemCaseSensitive(it, "role");
    size_t       bytes = 0;

    *user = false;
    if (strcmp(t, "message") == 0) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(role) ||
            (!cJSON_IsString(c) && !cJSON_IsArray(c))) {
            snprintf(err, errsz,
                     "Invalid value for 'input[%d]': a message needs a role "
                     "and content.",
                     i);
            return false;
        }
        *user = strcmp(role->valuestring, "user") == 0;
        if (*user) {
            req->echo_src = c;
        }
        if (!mock_resp__text_of(req, c, &bytes, err, errsz)) {
            return false;
        }
    } else if (strcmp(t, "function_call") == 0) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, "arguments");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!cJSON_IsString(a) || !cJSON_IsString(n) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "call_id"))) {
            snprintf(err, errsz,
                     "Missing required parameter: 'input[%d].call_id', "
                     "'name' or 'arguments'.",
                     i);
            return false;
        }
        bytes += strlen(a->valuestring) + strlen(n->valuestring);
    } else if (strcmp(t, "function_call_output") == 0) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "output");
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "call_id")) ||
            o == NULL) {
            snprintf(err, errsz,
                     "Missing required parameter: 'input[%d].call_id' or "
                     "'output'.",
                     i);
            return false;
        }
        if (!mock_resp__text_of(req, o, &bytes, err, errsz)) {
            return false;
        }
    } else {
        snprintf(err, errsz, "Invalid value for 'input[%d].type': '%.40s'.", i,
                 t);
        return false;
    }
    req->prompt_tokens += mock_wire_msg_tokens(bytes);
    return true;
}

/* mock_resp__input counts instructions and input as messages. */
static bool
mock_resp__input(mock_chat_req *req, const cJSON *root, char *err, size_t errsz)
{
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(root, "instructions");
    const cJSON *in  = cJSON_GetObjectItemCaseSensitive(root, "input");
    const cJSON *it;
    bool         user = false;
    int          i    = 0;
    size_t       bytes;

    if (cJSON_IsString(ins)) {
        bytes = 0;
        if (!mock_wire_text_in(req, ins->valuestring, &bytes, err, errsz)) {
            return false;
        }
        req->prompt_tokens += mock_wire_msg_tokens(bytes);
    }
    if (cJSON_IsString(in)) {
        bytes         = 0;
        req->echo_src = in;
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
        if (!mock_wire_text_in(req, in->valuestring, &bytes, err, errsz)) {
            return false;
        }
        req->prompt_tokens += mock_wire_msg_tokens(bytes);
        return true;
    }
    if (!cJSON_IsArray(in)) {
        snprintf(err, errsz, "Missing required parameter: 'input'.");
        return false;
    }
    cJSON_ArrayForEach(it, in)
    {
        /* a tool control counts only in the final user message */
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
        if (!mock_resp__item(req, it, i++, &user, err, errsz)) {
            return false;
        }
    }
    if (!user) {
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
    }
    return true;
}

static bool
mock_resp__parse(mock_chat_req *req, const cJSON *root, const char *path_model,
                 char *err, size_t errsz)
{
    const cJSON *model  = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    const cJSON *mt =
        cJSON_GetObjectItemCaseSensitive(root, "max_output_tokens");
    const cJSON *tools  = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");

    (void)path_model;
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        snprintf(err, errsz, "Missing required parameter: 'model'.");
        return false;
    }
    if (!mock_resp__input(req, root, err, errsz)) {
        return false;
    }
    if (stream != NULL && !cJSON_IsNull(stream) && !cJSON_IsBool(stream)) {
        snprintf(err, errsz, "Invalid type for 'stream': expected a boolean.");
        return false;
    }
    req->stream        = cJSON_IsTrue(stream);
    req->include_usage = true; /* response.completed always carries it */
    if (mt != NULL && !cJSON_IsNull(mt) &&
        !mock_wire_get_int(mt, 16, 1e9, &req->max_tokens)) {
        snprintf(err, errsz,
                 "Invalid 'max_output_tokens': integer below minimum value. "
                 "Expected a value >= 16.");
        return false;
    }
    req->has_tools =
        cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0 &&
        !(cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0);
    req->model = strdup(model->valuestring);
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

/* ---- rendering ---- */

static void
mock_resp__id(mock_buf *b, const char *prefix, const mock_reply *r)
{
    mock_buf_addc(b, '"');
    mock_buf_adds(b, prefix);
    mock_buf_add_u64(b, r->id);
    mock_buf_addc(b, '"');
}

static void
mock_resp__usage(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"input_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    mock_buf_adds(b, ",\"input_tokens_details\":{\"cached_tokens\":0},"
                     "\"output_tokens\":");
    mock_buf_add_u64(b, (uint64_t)r->emit);
    mock_buf_adds(b, ",\"output_tokens_details\":{\"reasoning_tokens\":0},"
                     "\"total_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens + (uint64_t)r->emit);
    mock_buf_addc(b, '}');
}

/* mock_resp__item_out renders the reply's one output item: a message with
 * its text, or a function call; done: completed, else in progress and
 * empty. */
static void
mock_resp__item_out(mock_buf *b, const mock_reply *r, bool done)
{
    if (r->tool != NULL) {
        mock_buf_adds(b, "{\"id\":");
        mock_resp__id(b, "fc_mock_", r);
        mock_buf_adds(b, ",\"type\":\"function_call\",\"status\":");
        mock_buf_adds(b, done ? "\"completed\"" : "\"in_progress\"");
        mock_buf_adds(b, ",\"arguments\":");
        mock_buf_add_json_str(b, done ? MOCK_WIRE_TOOL_ARGS : "");
        mock_buf_adds(b, ",\"call_id\":");
        mock_resp__id(b, "call_mock_", r);
        mock_buf_adds(b, ",\"name\":");
        mock_buf_add_json_str(b, r->tool);
        mock_buf_addc(b, '}');
        return;
    }
    mock_buf_adds(b, "{\"id\":");
    mock_resp__id(b, "msg_mock_", r);
    mock_buf_adds(b, ",\"type\":\"message\",\"status\":");
    mock_buf_adds(b, done ? "\"completed\"" : "\"in_progress\"");
    mock_buf_adds(b, ",\"role\":\"assistant\",\"content\":[");
    if (done) {
        mock_buf_adds(b, "{\"type\":\"output_text\",\"annotations\":[],"
                         "\"logprobs\":[],\"text\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\"}");
    }
    mock_buf_adds(b, "]}");
}

/* mock_resp__object renders the Response: status, output and usage only
 * when done. */
static void
mock_resp__object(mock_buf *b, const mock_reply *r, bool done)
{
    bool cut = r->tool == NULL && r->emit < r->words;

    mock_buf_adds(b, "{\"id\":");
    mock_resp__id(b, "resp_mock_", r);
    mock_buf_adds(b, ",\"object\":\"response\",\"created_at\":");
    mock_buf_add_i64(b, r->created);
    mock_buf_adds(b, ",\"status\":");
    mock_buf_adds(b, !done ? "\"in_progress\""
                     : cut ? "\"incomplete\""
                           : "\"completed\"");
    mock_buf_adds(b, ",\"error\":null,\"incomplete_details\":");
    mock_buf_adds(b,
                  done && cut ? "{\"reason\":\"max_output_tokens\"}" : "null");
    mock_buf_adds(b, ",\"model\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"output\":[");
    if (done) {
        mock_resp__item_out(b, r, true);
    }
    mock_buf_adds(b, "],\"parallel_tool_calls\":true,\"store\":true,"
                     "\"usage\":");
    if (done) {
        mock_resp__usage(b, r);
    } else {
        mock_buf_adds(b, "null");
    }
    mock_buf_addc(b, '}');
}

static void
mock_resp__render(mock_buf *b, const mock_reply *r)
{
    mock_buf_reserve(b, 640 + strlen(r->model) * 6 + (size_t)r->emit * 8);
    mock_resp__object(b, r, true);
}

/* mock_resp__ev opens event type; the caller writes the rest of the
 * object and closes with mock_resp__ev_end(seq). */
static void
mock_resp__ev(mock_buf *b, const char *type)
{
    mock_buf_adds(b, "event: ");
    mock_buf_adds(b, type);
    mock_buf_adds(b, "\ndata: {\"type\":\"");
    mock_buf_adds(b, type);
    mock_buf_addc(b, '"');
}

static void
mock_resp__ev_end(mock_buf *b, long seq)
{
    mock_buf_adds(b, ",\"sequence_number\":");
    mock_buf_add_i64(b, seq);
    mock_buf_adds(b, "}\n\n");
}

/* mock_resp__item_ref writes the item_id and output_index members. */
static void
mock_resp__item_ref(mock_buf *b, const mock_reply *r, bool part)
{
    mock_buf_adds(b, ",\"item_id\":");
    mock_resp__id(b, r->tool != NULL ? "fc_mock_" : "msg_mock_", r);
    mock_buf_adds(b, ",\"output_index\":0");
    if (part) {
        mock_buf_adds(b, ",\"content_index\":0");
    }
}

/* The events before the first piece: sequence numbers 0..2 (a tool
 * call) or 0..3 (a message). */
static void
mock_resp__stream_start(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    (void)head;
    mock_resp__ev(b, "response.created");
    mock_buf_adds(b, ",\"response\":");
    mock_resp__object(b, r, false);
    mock_resp__ev_end(b, 0);
    mock_resp__ev(b, "response.in_progress");
    mock_buf_adds(b, ",\"response\":");
    mock_resp__object(b, r, false);
    mock_resp__ev_end(b, 1);
    mock_resp__ev(b, "response.output_item.added");
    mock_buf_adds(b, ",\"output_index\":0,\"item\":");
    mock_resp__item_out(b, r, false);
    mock_resp__ev_end(b, 2);
    if (r->tool == NULL) {
        mock_resp__ev(b, "response.content_part.added");
        mock_resp__item_ref(b, r, true);
        mock_buf_adds(b, ",\"part\":{\"type\":\"output_text\","
                         "\"annotations\":[],\"logprobs\":[],\"text\":\"\"}");
        mock_resp__ev_end(b, 3);
    }
}

static void
mock_resp__stream_piece(mock_buf *b, const mock_buf *head, const mock_reply *r,
                        long i)
{
    (void)head;
    if (r->tool != NULL) {
        mock_resp__ev(b, "response.function_call_arguments.delta");
        mock_resp__item_ref(b, r, false);
        mock_buf_adds(b, ",\"delta\":");
        mock_wire_tool_frag(b, i);
        mock_resp__ev_end(b, 3 + i);
        return;
    }
    mock_resp__ev(b, "response.output_text.delta");
    mock_resp__item_ref(b, r, true);
    mock_buf_adds(b, ",\"delta\":\"");
    mock_wire_word(b, r, i);
    mock_buf_adds(b, "\",\"logprobs\":[]");
    mock_resp__ev_end(b, 4 + i);
}

static void
mock_resp__stream_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    long seq = (r->tool != NULL ? 3 : 4) + r->pieces;
    bool cut = r->tool == NULL && r->emit < r->words;

    (void)head;
    if (r->tool != NULL) {
        mock_resp__ev(b, "response.function_call_arguments.done");
        mock_resp__item_ref(b, r, false);
        mock_buf_adds(b, ",\"arguments\":");
        mock_buf_add_json_str(b, MOCK_WIRE_TOOL_ARGS);
        mock_resp__ev_end(b, seq++);
    } else {
        mock_resp__ev(b, "response.output_text.done");
        mock_resp__item_ref(b, r, true);
        mock_buf_adds(b, ",\"text\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\",\"logprobs\":[]");
        mock_resp__ev_end(b, seq++);
        mock_resp__ev(b, "response.content_part.done");
        mock_resp__item_ref(b, r, true);
        mock_buf_adds(b, ",\"part\":{\"type\":\"output_text\","
                         "\"annotations\":[],\"logprobs\":[],\"text\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\"}");
        mock_resp__ev_end(b, seq++);
    }
    mock_resp__ev(b, "response.output_item.done");
    mock_buf_adds(b, ",\"output_index\":0,\"item\":");
    mock_resp__item_out(b, r, true);
    mock_resp__ev_end(b, seq++);
    mock_resp__ev(b, cut ? "response.incomplete" : "response.completed");
    mock_buf_adds(b, ",\"response\":");
    mock_resp__object(b, r, true);
    mock_resp__ev_end(b, seq);
}

/* mock_resp__error: OpenAI's error body; in a stream an "error" event. */
static unsigned
mock_resp__error(mock_buf *b, const mock_wire_err *e, bool in_stream)
{
    if (!in_stream) {
        return mock_openai_chat_fmt.error(b, e, false);
    }
    mock_resp__ev(b, "error");
    mock_buf_adds(b, ",\"code\":\"server_error\",\"message\":\"mock: "
                     "injected error mid-stream\",\"param\":null");
    mock_resp__ev_end(b, 0);
    return 500;
}

const mock_wire_fmt mock_responses_fmt = {
    .name            = "responses",
    .tool_pieces     = MOCK_WIRE_TOOL_FRAGS,
    .filter_is_error = true,
    .parse           = mock_resp__parse,
    .render          = mock_resp__render,
    .stream_head     = NULL,
    .stream_start    = mock_resp__stream_start,
    .stream_piece    = mock_resp__stream_piece,
    .stream_end      = mock_resp__stream_end,
    .error           = mock_resp__error,
};
