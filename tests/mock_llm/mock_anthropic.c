/* mock_anthropic.c - Anthropic Messages wire format; see mock_anthropic.h.
 * Replies are written by hand, as in mock_openai.c. A content_filter
 * control is not an error here: Anthropic reports a refusal as
 * stop_reason "refusal" in an ordinary 200 reply. */
#include "mock_anthropic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOCK_ANT__MAX_TOKENS_MAX 1000000000.0

/* ---- parsing ---- */

/* mock_ant__json_bytes counts a JSON value (a tool_use input) by its
 * printed length. */
static bool
mock_ant__json_bytes(const cJSON *v, size_t *bytes, char *err, size_t errsz)
{
    char *s = cJSON_PrintUnformatted(v);

    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    *bytes += strlen(s);
    free(s);
    return true;
}

/* mock_ant__blocks counts an array of content blocks; where names the
 * array in messages ("messages.2.content"). */
static bool
mock_ant__blocks(mock_chat_req *req, const cJSON *blocks, const char *where,
                 size_t *bytes, char *err, size_t errsz)
{
    const cJSON *bl;
    int          j = 0;

    cJSON_ArrayForEach(bl, blocks)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(bl, "type");
        const char  *t    = cJSON_IsString(type) ? type->valuestring : "";

        if (strcmp(t, "text") == 0) {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(bl, "text");

            if (!cJSON_IsString(text)) {
                snprintf(err, errsz, "%s.%d.text: Field required", where, j);
                return false;
            }
            if (!mock_wire_text_in(req, text->valuestring, bytes, err, errsz)) {
                return false;
            }
        } else if (strcmp(t, "image") == 0 || strcmp(t, "document") == 0) {
            if (!cJSON_IsObject(
                    cJSON_GetObjectItemCaseSensitive(bl, "source"))) {
                snprintf(err, errsz, "%s.%d.source: Field required", where, j);
                return false;
            }
            *bytes += 1000; /* a flat guess, as for any image */
        } else if (strcmp(t, "tool_use") == 0) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(bl, "name");
            const cJSON *in   = cJSON_GetObjectItemCaseSensitive(bl, "input");

            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(bl, "id")) ||
                !cJSON_IsString(name) || !cJSON_IsObject(in)) {
                snprintf(err, errsz,
                         "%s.%d: tool_use needs id, name and an input "
                         "object",
                         where, j);
                return false;
            }
            *bytes += strlen(name->valuestring);
            if (!mock_ant__json_bytes(in, bytes, err, errsz)) {
                return false;
            }
        } else if (strcmp(t, "tool_result") == 0) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(bl, "content");
            char         sub[96];

            if (!cJSON_IsString(
                    cJSON_GetObjectItemCaseSensitive(bl, "tool_use_id"))) {
                snprintf(err, errsz, "%s.%d.tool_use_id: Field required", where,
                         j);
                return false;
            }
            if (cJSON_IsString(c)) {
                if (!mock_wire_text_in(req, c->valuestring, bytes, err,
                                       errsz)) {
                    return false;
                }
            } else if (cJSON_IsArray(c)) {
                snprintf(sub, sizeof(sub), "%.64s.%d.content", where, j);
                if (!mock_ant__blocks(req, c, sub, bytes, err, errsz)) {
                    return false;
                }
            }
        } else {
            snprintf(err, errsz,
                     "%s.%d.type: Input tag '%.32s' found using 'type' does "
                     "not match any of the expected tags: 'text', 'image', "
                     "'document', 'tool_use', 'tool_result'",
                     where, j, t);
            return false;
        }
        j++;
    }
    return true;
}

static bool
mock_ant__messages(mock_chat_req *req, const cJSON *msgs, char *err,
                   size_t errsz)
{
    const cJSON *m;
    const char  *role = NULL;
    int          i    = 0;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *r     = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *c     = cJSON_GetObjectItemCaseSensitive(m, "content");
        size_t       bytes = 0;
        char         where[48];

        if (!cJSON_IsString(r) || (strcmp(r->valuestring, "user") != 0 &&
                                   strcmp(r->valuestring, "assistant") != 0)) {
            snprintf(err, errsz,
                     "messages.%d.role: Input should be 'user' or "
                     "'assistant'",
                     i);
            return false;
        }
        role = r->valuestring;
        if (strcmp(role, "user") == 0) {
            req->echo_src = c;
        }
        /* as in mock_openai.c: a tool control counts only in the final
         * user message */
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
        snprintf(where, sizeof(where), "messages.%d.content", i);
        if (cJSON_IsString(c)) {
            if (!mock_wire_text_in(req, c->valuestring, &bytes, err, errsz)) {
                return false;
            }
        } else if (cJSON_IsArray(c)) {
            if (!mock_ant__blocks(req, c, where, &bytes, err, errsz)) {
                return false;
            }
        } else {
            snprintf(err, errsz, "%s: Field required", where);
            return false;
        }
        req->prompt_tokens += mock_wire_msg_tokens(bytes);
        i++;
    }
    if (role == NULL || strcmp(role, "user") != 0) {
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
    }
    return true;
}

static bool
mock_ant__system(mock_chat_req *req, const cJSON *sys, char *err, size_t errsz)
{
    size_t bytes = 0;

    if (sys == NULL || cJSON_IsNull(sys)) {
        return true;
    }
    if (cJSON_IsString(sys)) {
        if (!mock_wire_text_in(req, sys->valuestring, &bytes, err, errsz)) {
            return false;
        }
    } else if (cJSON_IsArray(sys)) {
        const cJSON *bl;

        cJSON_ArrayForEach(bl, sys)
        {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(bl, "text");

            if (!cJSON_IsString(text)) {
                snprintf(err, errsz,
                         "system: Input should be a valid string or a list "
                         "of text blocks");
                return false;
            }
            if (!mock_wire_text_in(req, text->valuestring, &bytes, err,
                                   errsz)) {
                return false;
            }
        }
    } else {
        snprintf(err, errsz, "system: Input should be a valid string");
        return false;
    }
    req->prompt_tokens += mock_wire_msg_tokens(bytes);
    return true;
}

/* mock_ant__options reads stream, temperature, stop_sequences, tools. */
static bool
mock_ant__options(mock_chat_req *req, const cJSON *root, char *err,
                  size_t errsz)
{
    const cJSON *it;
    const cJSON *choice;

    it = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (cJSON_IsBool(it)) {
        req->stream = cJSON_IsTrue(it);
    } else if (it != NULL && !cJSON_IsNull(it)) {
        snprintf(err, errsz, "stream: Input should be a valid boolean");
        return false;
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "temperature");
    if (it != NULL && !cJSON_IsNull(it) &&
        !(cJSON_IsNumber(it) && it->valuedouble >= 0.0 &&
          it->valuedouble <= 1.0)) {
        snprintf(err, errsz, "temperature: range: 0..1");
        return false;
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (it != NULL && !cJSON_IsNull(it) && !cJSON_IsObject(it)) {
        snprintf(err, errsz, "metadata: Input should be a valid dictionary");
        return false;
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "stop_sequences");
    if (cJSON_IsArray(it)) {
        const cJSON *s;

        cJSON_ArrayForEach(s, it)
        {
            long k;

            if (!cJSON_IsString(s)) {
                snprintf(err, errsz,
                         "stop_sequences: Input should be a list of "
                         "strings");
                return false;
            }
            k = mock_wire_stop_word(s->valuestring);
            if (k >= 0 && (req->stop_word < 0 || k < req->stop_word)) {
                req->stop_word = k;
            }
        }
    } else if (it != NULL && !cJSON_IsNull(it)) {
        snprintf(err, errsz, "stop_sequences: Input should be a valid list");
        return false;
    }
    it     = cJSON_GetObjectItemCaseSensitive(root, "tools");
    choice = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "tool_choice"), "type");
    if (it != NULL && !cJSON_IsNull(it) && !cJSON_IsArray(it)) {
        snprintf(err, errsz, "tools: Input should be a valid list");
        return false;
    }
    req->has_tools =
        cJSON_GetArraySize(it) > 0 &&
        !(cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0);
    return true;
}

static bool
mock_ant__parse(mock_chat_req *req, const cJSON *root, const char *path_model,
                char *err, size_t errsz)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *mt    = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    const cJSON *msgs  = cJSON_GetObjectItemCaseSensitive(root, "messages");

    (void)path_model;
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        snprintf(err, errsz, "model: Field required");
        return false;
    }
    if (mt == NULL || cJSON_IsNull(mt)) {
        snprintf(err, errsz, "max_tokens: Field required");
        return false;
    }
    if (!mock_wire_get_int(mt, 1, MOCK_ANT__MAX_TOKENS_MAX, &req->max_tokens)) {
        snprintf(err, errsz,
                 "max_tokens: Input should be a valid integer greater "
                 "than or equal to 1");
        return false;
    }
    if (!cJSON_IsArray(msgs)) {
        snprintf(err, errsz, "messages: Field required");
        return false;
    }
    if (!mock_ant__system(req, cJSON_GetObjectItemCaseSensitive(root, "system"),
                          err, errsz) ||
        !mock_ant__messages(req, msgs, err, errsz) ||
        !mock_ant__options(req, root, err, errsz)) {
        return false;
    }
    req->model = strdup(model->valuestring);
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

/* ---- rendering ---- */

static const char *
mock_ant__stop_reason(const mock_reply *r)
{
    if (r->blocked) {
        return "refusal";
    }
    if (r->tool != NULL) {
        return "tool_use";
    }
    if (r->stop_word >= 0) {
        return "stop_sequence";
    }
    return r->emit < r->words ? "max_tokens" : "end_turn";
}

static void
mock_ant__stop_sequence(mock_buf *b, const mock_reply *r)
{
    if (r->stop_word >= 0 && !r->blocked && r->tool == NULL) {
        mock_buf_adds(b, "\"w");
        mock_buf_add_u64(b, (uint64_t)r->stop_word);
        mock_buf_addc(b, '"');
    } else {
        mock_buf_adds(b, "null");
    }
}

static void
mock_ant__id(mock_buf *b, const char *prefix, const mock_reply *r)
{
    mock_buf_addc(b, '"');
    mock_buf_adds(b, prefix);
    mock_buf_add_u64(b, r->id);
    mock_buf_addc(b, '"');
}

static void
mock_ant__usage(mock_buf *b, const mock_reply *r, long output)
{
    mock_buf_adds(b, "{\"input_tokens\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    mock_buf_adds(b, ",\"cache_creation_input_tokens\":0,"
                     "\"cache_read_input_tokens\":0,\"output_tokens\":");
    mock_buf_add_i64(b, output);
    mock_buf_addc(b, '}');
}

/* mock_ant__message_open writes the message object up to its content. */
static void
mock_ant__message_open(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"id\":");
    mock_ant__id(b, "msg_mock_", r);
    mock_buf_adds(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"content\":[");
}

static void
mock_ant__tool_block(mock_buf *b, const mock_reply *r, bool with_input)
{
    mock_buf_adds(b, "{\"type\":\"tool_use\",\"id\":");
    mock_ant__id(b, "toolu_mock_", r);
    mock_buf_adds(b, ",\"name\":");
    mock_buf_add_json_str(b, r->tool);
    mock_buf_adds(b, ",\"input\":");
    mock_buf_adds(b, with_input ? MOCK_WIRE_TOOL_ARGS : "{}");
    mock_buf_addc(b, '}');
}

static void
mock_ant__render(mock_buf *b, const mock_reply *r)
{
    mock_buf_reserve(b, 384 + strlen(r->model) * 6 + (size_t)r->emit * 8);
    mock_ant__message_open(b, r);
    if (r->tool != NULL) {
        mock_ant__tool_block(b, r, true);
    } else if (!r->blocked) {
        mock_buf_adds(b, "{\"type\":\"text\",\"text\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\"}");
    }
    mock_buf_adds(b, "],\"stop_reason\":\"");
    mock_buf_adds(b, mock_ant__stop_reason(r));
    mock_buf_adds(b, "\",\"stop_sequence\":");
    mock_ant__stop_sequence(b, r);
    mock_buf_adds(b, ",\"usage\":");
    mock_ant__usage(b, r, r->emit);
    mock_buf_addc(b, '}');
}

static void
mock_ant__event(mock_buf *b, const char *name)
{
    mock_buf_adds(b, "event: ");
    mock_buf_adds(b, name);
    mock_buf_adds(b, "\ndata: ");
}

static void
mock_ant__stream_start(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    (void)head;
    mock_ant__event(b, "message_start");
    mock_buf_adds(b, "{\"type\":\"message_start\",\"message\":");
    mock_ant__message_open(b, r);
    mock_buf_adds(b, "],\"stop_reason\":null,\"stop_sequence\":null,"
                     "\"usage\":");
    mock_ant__usage(b, r, 1);
    mock_buf_adds(b, "}}\n\n");
    if (!r->blocked) {
        mock_ant__event(b, "content_block_start");
        mock_buf_adds(b, "{\"type\":\"content_block_start\",\"index\":0,"
                         "\"content_block\":");
        if (r->tool != NULL) {
            mock_ant__tool_block(b, r, false);
        } else {
            mock_buf_adds(b, "{\"type\":\"text\",\"text\":\"\"}");
        }
        mock_buf_adds(b, "}\n\n");
    }
    mock_ant__event(b, "ping");
    mock_buf_adds(b, "{\"type\":\"ping\"}\n\n");
}

static void
mock_ant__stream_piece(mock_buf *b, const mock_buf *head, const mock_reply *r,
                       long i)
{
    (void)head;
    mock_ant__event(b, "content_block_delta");
    mock_buf_adds(b, "{\"type\":\"content_block_delta\",\"index\":0,"
                     "\"delta\":");
    if (r->tool != NULL) {
        mock_buf_adds(b, "{\"type\":\"input_json_delta\",\"partial_json\":");
        mock_wire_tool_frag(b, i);
    } else {
        mock_buf_adds(b, "{\"type\":\"text_delta\",\"text\":\"");
        mock_wire_word(b, r, i);
        mock_buf_addc(b, '"');
    }
    mock_buf_adds(b, "}}\n\n");
}

static void
mock_ant__stream_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    (void)head;
    if (!r->blocked) {
        mock_ant__event(b, "content_block_stop");
        mock_buf_adds(b, "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
    }
    mock_ant__event(b, "message_delta");
    mock_buf_adds(b, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                     "\"");
    mock_buf_adds(b, mock_ant__stop_reason(r));
    mock_buf_adds(b, "\",\"stop_sequence\":");
    mock_ant__stop_sequence(b, r);
    mock_buf_adds(b, "},\"usage\":{\"output_tokens\":");
    mock_buf_add_i64(b, r->emit);
    mock_buf_adds(b, "}}\n\n");
    mock_ant__event(b, "message_stop");
    mock_buf_adds(b, "{\"type\":\"message_stop\"}\n\n");
}

/* ---- errors ---- */

static void
mock_ant__status_error(unsigned status, const char **type, const char **msg)
{
    switch (status) {
    case 401:
        *type = "authentication_error";
        *msg  = "mock: injected invalid API key";
        break;
    case 403:
        *type = "permission_error";
        *msg  = "mock: injected permission denied";
        break;
    case 404:
        *type = "not_found_error";
        *msg  = "mock: injected model not found";
        break;
    case 413:
        *type = "request_too_large";
        *msg  = "mock: injected request too large";
        break;
    case 429:
        *type = "rate_limit_error";
        *msg  = "mock: injected rate limit; retry after 1s";
        break;
    case 529:
        *type = "overloaded_error";
        *msg  = "Overloaded";
        break;
    default:
        if (status >= 500) {
            *type = "api_error";
            *msg  = "mock: injected server error";
        } else {
            *type = "invalid_request_error";
            *msg  = "mock: injected bad request";
        }
        break;
    }
}

static unsigned
mock_ant__error(mock_buf *b, const mock_wire_err *e, bool in_stream)
{
    const char *type   = "invalid_request_error";
    const char *msg    = e->msg;
    unsigned    status = 400;
    char        tmp[128];

    switch (e->kind) {
    case MOCK_WERR_INVALID:
    case MOCK_WERR_FILTER: /* not used: filter_is_error is false */
        break;
    case MOCK_WERR_AUTH_MISSING:
        type   = "authentication_error";
        msg    = "x-api-key header is required";
        status = 401;
        break;
    case MOCK_WERR_AUTH_BAD:
        type   = "authentication_error";
        msg    = "invalid x-api-key";
        status = 401;
        break;
    case MOCK_WERR_NOT_FOUND:
        type   = "not_found_error";
        status = 404;
        break;
    case MOCK_WERR_METHOD:
        status = 405;
        break;
    case MOCK_WERR_TOO_LARGE:
        type   = "request_too_large";
        msg    = "Request exceeds the maximum allowed number of bytes.";
        status = 413;
        break;
    case MOCK_WERR_INTERNAL:
        type   = "api_error";
        status = 500;
        break;
    case MOCK_WERR_STATUS:
        status = e->status;
        mock_ant__status_error(status, &type, &msg);
        if (e->msg != NULL) {
            msg = e->msg;
        }
        break;
    case MOCK_WERR_CONTEXT:
        snprintf(tmp, sizeof(tmp),
                 "prompt is too long: %llu tokens > %ld "
                 "maximum",
                 (unsigned long long)e->tokens, e->limit);
        msg = tmp;
        break;
    case MOCK_WERR_OVERLOADED:
        type   = "overloaded_error";
        msg    = "Overloaded";
        status = 529;
        break;
    }
    if (msg == NULL) {
        msg = "mock: request failed";
    }
    if (in_stream) {
        mock_ant__event(b, "error");
    }
    mock_buf_adds(b, "{\"type\":\"error\",\"error\":{\"type\":");
    mock_buf_add_json_str(b, type);
    mock_buf_adds(b, ",\"message\":");
    mock_buf_add_json_str(b, msg);
    mock_buf_adds(b, "}}");
    if (in_stream) {
        mock_buf_adds(b, "\n\n");
    }
    return status;
}

const mock_wire_fmt mock_anthropic_fmt = {
    .name            = "anthropic",
    .tool_pieces     = MOCK_WIRE_TOOL_FRAGS,
    .filter_is_error = false,
    .parse           = mock_ant__parse,
    .render          = mock_ant__render,
    .stream_head     = NULL,
    .stream_start    = mock_ant__stream_start,
    .stream_piece    = mock_ant__stream_piece,
    .stream_end      = mock_ant__stream_end,
    .error           = mock_ant__error,
};
