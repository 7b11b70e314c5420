/* mock_openai.c - OpenAI wire formats for the mock LLM; see mock_openai.h.
 * Output is written by hand rather than with cJSON: the mock is the
 * reference in gateway benchmarks, so building a reply must stay cheap. */
#include "mock_openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Clamp for max_tokens: larger limits never cut a 100000-word reply. */
#define MOCK_OPENAI__MAX_TOKENS_CLAMP 1000000000.0
#define MOCK_OPENAI__EMBED_DIM 8
#define MOCK_OPENAI__EMBED_DIM_MAX 4096

/* ---- parsing ---- */

/* mock_openai__tool_calls counts an assistant message's tool calls. */
static bool
mock_openai__tool_calls(const cJSON *calls, int i, size_t *bytes, char *err,
                        size_t errsz)
{
    const cJSON *c;

    if (!cJSON_IsArray(calls)) {
        snprintf(err, errsz,
                 "Invalid type for 'messages[%d].tool_calls': expected an "
                 "array.",
                 i);
        return false;
    }
    cJSON_ArrayForEach(c, calls)
    {
        const cJSON *fn   = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");

        if (!cJSON_IsString(name) || !cJSON_IsString(args)) {
            snprintf(err, errsz,
                     "Invalid 'messages[%d].tool_calls': each needs "
                     "function.name and function.arguments strings.",
                     i);
            return false;
        }
        *bytes += strlen(name->valuestring) + strlen(args->valuestring);
    }
    return true;
}

static bool
mock_openai__messages(mock_chat_req *req, const cJSON *msgs, char *err,
                      size_t errsz)
{
    const cJSON *m;
    const cJSON *role = NULL;
    int          i    = 0;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *content;
        const cJSON *calls;
        size_t       bytes = 0;

        if (!cJSON_IsObject(m)) {
            snprintf(err, errsz,
                     "Invalid type for 'messages[%d]': expected "
                     "an object.",
                     i);
            return false;
        }
        /* a tool control counts only in the final user message, so a tool
         * loop ends once the tool's result is sent back */
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
        role    = cJSON_GetObjectItemCaseSensitive(m, "role");
        content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0) {
            req->echo_src = content;
        }
        if (cJSON_IsString(content)) {
            if (!mock_wire_text_in(req, content->valuestring, &bytes, err,
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
                    !mock_wire_text_in(req, text->valuestring, &bytes, err,
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
        calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (calls != NULL && !cJSON_IsNull(calls) &&
            !mock_openai__tool_calls(calls, i, &bytes, err, errsz)) {
            return false;
        }
        if (cJSON_IsString(role) && strcmp(role->valuestring, "tool") == 0 &&
            !cJSON_IsString(
                cJSON_GetObjectItemCaseSensitive(m, "tool_call_id"))) {
            snprintf(err, errsz,
                     "Missing required parameter: "
                     "'messages[%d].tool_call_id'.",
                     i);
            return false;
        }
        req->prompt_tokens += mock_wire_msg_tokens(bytes);
        i++;
    }
    if (!cJSON_IsString(role) || strcmp(role->valuestring, "user") != 0) {
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
    }
    return true;
}

/* mock_openai__stream reads stream and stream_options. */
static bool
mock_openai__stream(mock_chat_req *req, const cJSON *root, char *err,
                    size_t errsz)
{
    const cJSON *it;

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
    return true;
}

static bool
mock_openai__max_tokens(mock_chat_req *req, const cJSON *root, char *err,
                        size_t errsz)
{
    const cJSON *it;
    const char  *mt_name = "max_completion_tokens";

    it = cJSON_GetObjectItemCaseSensitive(root, mt_name);
    if (it == NULL || cJSON_IsNull(it)) {
        mt_name = "max_tokens";
        it      = cJSON_GetObjectItemCaseSensitive(root, mt_name);
    }
    if (it != NULL && !cJSON_IsNull(it)) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : -1.0;

        if (d > MOCK_OPENAI__MAX_TOKENS_CLAMP) {
            req->max_tokens = (long)MOCK_OPENAI__MAX_TOKENS_CLAMP;
        } else if (!mock_wire_get_int(it, 0, MOCK_OPENAI__MAX_TOKENS_CLAMP,
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

/* mock_openai__tools notes whether the model may call a tool. */
static void
mock_openai__tools(mock_chat_req *req, const cJSON *root)
{
    const cJSON *tools  = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");

    if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) == 0) {
        tools = cJSON_GetObjectItemCaseSensitive(root, "functions");
    }
    req->has_tools =
        cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0 &&
        !(cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0);
}

/* mock_openai__model takes the body's model, or path_model (Azure names
 * the deployment in the URL and ignores the body's model). */
static bool
mock_openai__model(mock_chat_req *req, const cJSON *root,
                   const char *path_model, char *err, size_t errsz)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");

    if (path_model == NULL) {
        if (model == NULL || cJSON_IsNull(model)) {
            snprintf(err, errsz, "Missing required parameter: 'model'.");
            return false;
        }
        if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
            snprintf(err, errsz,
                     "Invalid value for 'model': expected a "
                     "non-empty string.");
            return false;
        }
        path_model = model->valuestring;
    }
    req->model = strdup(path_model);
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

static bool
mock_openai__parse_chat(mock_chat_req *req, const cJSON *root,
                        const char *path_model, char *err, size_t errsz)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *msgs;

    /* check order as before: model, messages, then the options */
    if (path_model == NULL) {
        if (model == NULL || cJSON_IsNull(model)) {
            snprintf(err, errsz, "Missing required parameter: 'model'.");
            return false;
        }
        if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
            snprintf(err, errsz,
                     "Invalid value for 'model': expected a "
                     "non-empty string.");
            return false;
        }
    }
    msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (msgs == NULL || cJSON_IsNull(msgs)) {
        snprintf(err, errsz, "Missing required parameter: 'messages'.");
        return false;
    }
    if (!cJSON_IsArray(msgs)) {
        snprintf(err, errsz,
                 "Invalid type for 'messages': expected an "
                 "array.");
        return false;
    }
    if (!mock_openai__messages(req, msgs, err, errsz) ||
        !mock_openai__stream(req, root, err, errsz) ||
        !mock_openai__max_tokens(req, root, err, errsz)) {
        return false;
    }
    mock_openai__tools(req, root);
    return mock_openai__model(req, root, path_model, err, errsz);
}

static bool
mock_openai__parse_completions(mock_chat_req *req, const cJSON *root,
                               const char *path_model, char *err, size_t errsz)
{
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    size_t       bytes  = 0;

    if (!mock_openai__model(req, root, path_model, err, errsz)) {
        return false;
    }
    if (cJSON_IsString(prompt)) {
        if (!mock_wire_text_in(req, prompt->valuestring, &bytes, err, errsz)) {
            return false;
        }
    } else if (cJSON_IsArray(prompt)) {
        const cJSON *p;

        cJSON_ArrayForEach(p, prompt)
        {
            if (!cJSON_IsString(p)) {
                snprintf(err, errsz,
                         "Invalid type for 'prompt': expected a string or "
                         "an array of strings.");
                return false;
            }
            if (!mock_wire_text_in(req, p->valuestring, &bytes, err, errsz)) {
                return false;
            }
        }
    } else {
        snprintf(err, errsz, "Missing required parameter: 'prompt'.");
        return false;
    }
    mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
    req->echo_src      = prompt;
    req->prompt_tokens = mock_wire_msg_tokens(bytes);
    return mock_openai__stream(req, root, err, errsz) &&
           mock_openai__max_tokens(req, root, err, errsz);
}

/* mock_openai__embed_input counts one input: a string or a token array. */
static bool
mock_openai__embed_input(mock_chat_req *req, const cJSON *in, char *err,
                         size_t errsz)
{
    size_t bytes = 0;

    if (cJSON_IsString(in)) {
        if (!mock_wire_text_in(req, in->valuestring, &bytes, err, errsz)) {
            return false;
        }
        req->prompt_tokens += (bytes + 3) / 4;
        return true;
    }
    if (cJSON_IsArray(in)) {
        const cJSON *t;

        cJSON_ArrayForEach(t, in)
        {
            if (!cJSON_IsNumber(t)) {
                goto bad;
            }
        }
        req->prompt_tokens += (uint64_t)cJSON_GetArraySize(in);
        return true;
    }
bad:
    snprintf(err, errsz,
             "Invalid type for 'input': expected a string, an array of "
             "strings, an array of tokens or an array of token arrays.");
    return false;
}

static bool
mock_openai__parse_embeddings(mock_chat_req *req, const cJSON *root,
                              const char *path_model, char *err, size_t errsz)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    const cJSON *dims  = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    const cJSON *fmt =
        cJSON_GetObjectItemCaseSensitive(root, "encoding_format");

    if (!mock_openai__model(req, root, path_model, err, errsz)) {
        return false;
    }
    if (input == NULL || cJSON_IsNull(input)) {
        snprintf(err, errsz, "Missing required parameter: 'input'.");
        return false;
    }
    /* an array of numbers is one token array; any other array is a list */
    if (cJSON_IsArray(input) && !cJSON_IsNumber(input->child)) {
        const cJSON *in;

        if (input->child == NULL) {
            snprintf(err, errsz, "'input' must not be empty.");
            return false;
        }
        cJSON_ArrayForEach(in, input)
        {
            if (!mock_openai__embed_input(req, in, err, errsz)) {
                return false;
            }
            req->inputs++;
        }
    } else {
        if (!mock_openai__embed_input(req, input, err, errsz)) {
            return false;
        }
        req->inputs = 1;
    }
    req->dimensions = MOCK_OPENAI__EMBED_DIM;
    if (dims != NULL && !cJSON_IsNull(dims) &&
        !mock_wire_get_int(dims, 1, MOCK_OPENAI__EMBED_DIM_MAX,
                           &req->dimensions)) {
        snprintf(err, errsz,
                 "Invalid value for 'dimensions': expected an integer in "
                 "1..%d.",
                 MOCK_OPENAI__EMBED_DIM_MAX);
        return false;
    }
    if (fmt != NULL && !cJSON_IsNull(fmt) &&
        !(cJSON_IsString(fmt) && (strcmp(fmt->valuestring, "float") == 0 ||
                                  strcmp(fmt->valuestring, "base64") == 0))) {
        snprintf(err, errsz,
                 "Invalid value for 'encoding_format': expected 'float' or "
                 "'base64'.");
        return false;
    }
    req->base64 = cJSON_IsString(fmt) &&
                  strcmp(fmt->valuestring, "base64") == 0;
    mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
    return true;
}

/* ---- rendering ---- */

const char *
mock_reply_finish_reason(const mock_reply *r)
{
    if (r->tool != NULL) {
        return "tool_calls";
    }
    return r->emit < r->words ? "length" : "stop";
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
mock_openai__id(mock_buf *b, const char *prefix, const mock_reply *r)
{
    mock_buf_addc(b, '"');
    mock_buf_adds(b, prefix);
    mock_buf_add_u64(b, r->id);
    mock_buf_addc(b, '"');
}

static void
mock_openai__tool_call_id(mock_buf *b, const mock_reply *r)
{
    mock_openai__id(b, "call_mock_", r);
}

static void
mock_openai__render_chat(mock_buf *b, const mock_reply *r)
{
    /* about 7 bytes per word; one reservation keeps big replies cheap */
    mock_buf_reserve(b, 384 + strlen(r->model) * 6 + (size_t)r->emit * 8);
    mock_buf_adds(b, "{\"id\":");
    mock_openai__id(b, "chatcmpl-mock-", r);
    mock_buf_adds(b, ",\"object\":\"chat.completion\",\"created\":");
    mock_buf_add_i64(b, r->created);
    mock_buf_adds(b, ",\"model\":");
    mock_buf_add_json_str(b, r->model);
    if (r->tool != NULL) {
        mock_buf_adds(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":null,\"tool_calls\":[{"
                         "\"id\":");
        mock_openai__tool_call_id(b, r);
        mock_buf_adds(b, ",\"type\":\"function\",\"function\":{\"name\":");
        mock_buf_add_json_str(b, r->tool);
        mock_buf_adds(b, ",\"arguments\":");
        mock_buf_add_json_str(b, MOCK_WIRE_TOOL_ARGS);
        mock_buf_adds(b, "}}],\"refusal\":null}");
    } else {
        mock_buf_adds(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\"}");
    }
    mock_buf_adds(b, ",\"logprobs\":null,\"finish_reason\":\"");
    mock_buf_adds(b, mock_reply_finish_reason(r));
    mock_buf_adds(b, "\"}],\"usage\":");
    mock_openai__usage(b, r);
    mock_buf_adds(b, ",\"system_fingerprint\":\"fp_mock\"}");
}

/* The part every chunk event of r shares, rendered once per stream:
 * `data: {"id":...,"system_fingerprint":"fp_mock","choices":`. */
static void
mock_openai__chat_head(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "data: {\"id\":");
    mock_openai__id(b, "chatcmpl-mock-", r);
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

/* The role event: delta {"role":"assistant","content":""}, or for a tool
 * call the call's id and name with empty arguments. */
static void
mock_openai__chat_start(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    mock_buf_add(b, head->data, head->len);
    if (r->tool != NULL) {
        mock_buf_adds(b, "[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                         "\"content\":null,\"tool_calls\":[{\"index\":0,"
                         "\"id\":");
        mock_openai__tool_call_id(b, r);
        mock_buf_adds(b, ",\"type\":\"function\",\"function\":{\"name\":");
        mock_buf_add_json_str(b, r->tool);
        mock_buf_adds(b, ",\"arguments\":\"\"}}],\"refusal\":null}");
    } else {
        mock_buf_adds(b, "[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                         "\"content\":\"\"}");
    }
    mock_openai__chunk_tail(b, r, NULL);
}

/* The content event for word or argument fragment i. */
static void
mock_openai__chat_piece(mock_buf *b, const mock_buf *head, const mock_reply *r,
                        long i)
{
    mock_buf_add(b, head->data, head->len);
    if (r->tool != NULL) {
        mock_buf_adds(b, "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":"
                         "0,\"function\":{\"arguments\":");
        mock_wire_tool_frag(b, i);
        mock_buf_adds(b, "}}]}");
    } else {
        mock_buf_adds(b, "[{\"index\":0,\"delta\":{\"content\":\"");
        mock_wire_word(b, r, i);
        mock_buf_adds(b, "\"}");
    }
    mock_openai__chunk_tail(b, r, NULL);
}

/* The finish event, then the usage event if r->include_usage, then
 * "data: [DONE]". */
static void
mock_openai__chat_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
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

/* ---- legacy completions ---- */

static void
mock_openai__cmpl_open(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"id\":");
    mock_openai__id(b, "cmpl-mock-", r);
    mock_buf_adds(b, ",\"object\":\"text_completion\",\"created\":");
    mock_buf_add_i64(b, r->created);
    mock_buf_adds(b, ",\"model\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"choices\":[");
}

static void
mock_openai__render_cmpl(mock_buf *b, const mock_reply *r)
{
    mock_buf_reserve(b, 256 + strlen(r->model) * 6 + (size_t)r->emit * 8);
    mock_openai__cmpl_open(b, r);
    mock_buf_adds(b, "{\"text\":\"");
    mock_wire_text(b, r);
    mock_buf_adds(b, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"");
    mock_buf_adds(b, mock_reply_finish_reason(r));
    mock_buf_adds(b, "\"}],\"usage\":");
    mock_openai__usage(b, r);
    mock_buf_addc(b, '}');
}

static void
mock_openai__cmpl_head(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "data: ");
    mock_openai__cmpl_open(b, r);
}

static void
mock_openai__cmpl_start(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    (void)b;
    (void)head;
    (void)r;
}

static void
mock_openai__cmpl_tail(mock_buf *b, const mock_reply *r, const char *finish)
{
    mock_buf_adds(b, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    if (finish == NULL) {
        mock_buf_adds(b, "null");
    } else {
        mock_buf_add_json_str(b, finish);
    }
    mock_buf_adds(b, "}]");
    if (r->include_usage) {
        mock_buf_adds(b, ",\"usage\":null");
    }
    mock_buf_adds(b, "}\n\n");
}

static void
mock_openai__cmpl_piece(mock_buf *b, const mock_buf *head, const mock_reply *r,
                        long i)
{
    mock_buf_add(b, head->data, head->len);
    mock_buf_adds(b, "{\"text\":\"");
    mock_wire_word(b, r, i);
    mock_openai__cmpl_tail(b, r, NULL);
}

static void
mock_openai__cmpl_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    mock_buf_add(b, head->data, head->len);
    mock_buf_adds(b, "{\"text\":\"");
    mock_openai__cmpl_tail(b, r, mock_reply_finish_reason(r));
    if (r->include_usage) {
        mock_buf_add(b, head->data, head->len);
        mock_buf_adds(b, "],\"usage\":");
        mock_openai__usage(b, r);
        mock_buf_adds(b, "}\n\n");
    }
    mock_buf_adds(b, "data: [DONE]\n\n");
}

/* ---- embeddings ---- */

static void
mock_openai__render_embeddings(mock_buf *b, const mock_reply *r)
{
    mock_buf_reserve(b, 128 + (size_t)r->inputs *
                                  (64 + (size_t)r->dimensions * 7));
    mock_buf_adds(b, "{\"object\":\"list\",\"data\":[");
    for (long i = 0; i < r->inputs; i++) {
        if (i > 0) {
            mock_buf_addc(b, ',');
        }
        mock_buf_adds(b, "{\"object\":\"embedding\",\"index\":");
        mock_buf_add_i64(b, i);
        mock_buf_adds(b, ",\"embedding\":");
        mock_wire_embed_vector(b, r, i);
        mock_buf_addc(b, '}');
    }
    mock_buf_adds(b, "],\"model\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"usage\":{\"prompt_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    mock_buf_adds(b, ",\"total_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    mock_buf_adds(b, "}}");
}

/* ---- errors ---- */

static void
mock_openai__error_param(mock_buf *b, const char *msg, const char *type,
                         const char *param, const char *code)
{
    mock_buf_adds(b, "{\"error\":{\"message\":");
    mock_buf_add_json_str(b, msg);
    mock_buf_adds(b, ",\"type\":");
    mock_buf_add_json_str(b, type);
    mock_buf_adds(b, ",\"param\":");
    if (param == NULL) {
        mock_buf_adds(b, "null");
    } else {
        mock_buf_add_json_str(b, param);
    }
    mock_buf_adds(b, ",\"code\":");
    if (code == NULL) {
        mock_buf_adds(b, "null");
    } else {
        mock_buf_add_json_str(b, code);
    }
    mock_buf_adds(b, "}}");
}

void
mock_openai_render_error(mock_buf *b, const char *msg, const char *type,
                         const char *code)
{
    mock_openai__error_param(b, msg, type, NULL, code);
}

/* mock_openai__status_error gives the error type, code (may be NULL) and a
 * message for an injected HTTP error status. */
static void
mock_openai__status_error(unsigned status, const char **type, const char **code,
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

static unsigned
mock_openai__error(mock_buf *b, const mock_wire_err *e, bool in_stream)
{
    const char *type   = "invalid_request_error";
    const char *code   = NULL;
    const char *param  = NULL;
    const char *msg    = e->msg;
    unsigned    status = 400;
    char        tmp[256];

    switch (e->kind) {
    case MOCK_WERR_INVALID:
        break;
    case MOCK_WERR_AUTH_MISSING:
    case MOCK_WERR_AUTH_BAD:
        code   = "invalid_api_key";
        status = 401;
        break;
    case MOCK_WERR_NOT_FOUND:
        status = 404;
        break;
    case MOCK_WERR_METHOD:
        status = 405;
        break;
    case MOCK_WERR_TOO_LARGE:
        code   = "request_too_large";
        status = 413;
        break;
    case MOCK_WERR_INTERNAL:
        type   = "server_error";
        code   = "server_error";
        status = 500;
        break;
    case MOCK_WERR_STATUS:
        status = e->status;
        mock_openai__status_error(status, &type, &code, &msg);
        if (e->msg != NULL) {
            msg = e->msg;
        }
        break;
    case MOCK_WERR_CONTEXT:
        snprintf(tmp, sizeof(tmp),
                 "This model's maximum context length is %ld tokens. "
                 "However, your messages resulted in %llu tokens. Please "
                 "reduce the length of the messages.",
                 e->limit, (unsigned long long)e->tokens);
        msg   = tmp;
        param = "messages";
        code  = "context_length_exceeded";
        break;
    case MOCK_WERR_FILTER:
        msg   = "The response was filtered due to the prompt triggering "
                "the content management policy (mock content_filter).";
        param = "prompt";
        code  = "content_filter";
        break;
    case MOCK_WERR_OVERLOADED:
        type   = "server_error";
        code   = "server_error";
        msg    = "mock: injected error mid-stream";
        status = 500;
        break;
    }
    if (msg == NULL) {
        msg = "mock: request failed";
    }
    if (in_stream) {
        mock_buf_adds(b, "data: ");
    }
    mock_openai__error_param(b, msg, type, param, code);
    if (in_stream) {
        mock_buf_adds(b, "\n\n");
    }
    return status;
}

/* mock_openai__azure_error renders Azure's own bodies for a bad key and an
 * unknown resource; everything else looks like OpenAI's. */
static unsigned
mock_openai__azure_error(mock_buf *b, const mock_wire_err *e, bool in_stream)
{
    if (e->kind == MOCK_WERR_AUTH_MISSING || e->kind == MOCK_WERR_AUTH_BAD) {
        mock_buf_adds(b, "{\"error\":{\"code\":\"401\",\"message\":\"Access "
                         "denied due to invalid subscription key or wrong "
                         "API endpoint. Make sure to provide a valid key "
                         "for an active subscription and use a correct "
                         "regional API endpoint for your resource.\"}}");
        return 401;
    }
    if (e->kind == MOCK_WERR_NOT_FOUND) {
        mock_buf_adds(b, "{\"error\":{\"code\":\"404\",\"message\":");
        mock_buf_add_json_str(b,
                              e->msg != NULL ? e->msg : "Resource not found");
        mock_buf_adds(b, "}}");
        return 404;
    }
    return mock_openai__error(b, e, in_stream);
}

const mock_wire_fmt mock_openai_chat_fmt = {
    .name            = "openai",
    .tool_pieces     = MOCK_WIRE_TOOL_FRAGS,
    .filter_is_error = true,
    .parse           = mock_openai__parse_chat,
    .render          = mock_openai__render_chat,
    .stream_head     = mock_openai__chat_head,
    .stream_start    = mock_openai__chat_start,
    .stream_piece    = mock_openai__chat_piece,
    .stream_end      = mock_openai__chat_end,
    .error           = mock_openai__error,
};

const mock_wire_fmt mock_openai_azure_fmt = {
    .name            = "azure",
    .tool_pieces     = MOCK_WIRE_TOOL_FRAGS,
    .filter_is_error = true,
    .parse           = mock_openai__parse_chat,
    .render          = mock_openai__render_chat,
    .stream_head     = mock_openai__chat_head,
    .stream_start    = mock_openai__chat_start,
    .stream_piece    = mock_openai__chat_piece,
    .stream_end      = mock_openai__chat_end,
    .error           = mock_openai__azure_error,
};

const mock_wire_fmt mock_openai_completions_fmt = {
    .name            = "completions",
    .tool_pieces     = 0,
    .filter_is_error = true,
    .parse           = mock_openai__parse_completions,
    .render          = mock_openai__render_cmpl,
    .stream_head     = mock_openai__cmpl_head,
    .stream_start    = mock_openai__cmpl_start,
    .stream_piece    = mock_openai__cmpl_piece,
    .stream_end      = mock_openai__cmpl_end,
    .error           = mock_openai__error,
};

/* embeddings never stream: stream_* stay NULL */
const mock_wire_fmt mock_openai_embeddings_fmt = {
    .name            = "embeddings",
    .tool_pieces     = 0,
    .filter_is_error = true,
    .parse           = mock_openai__parse_embeddings,
    .render          = mock_openai__render_embeddings,
    .error           = mock_openai__error,
};

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
