/* mock_bedrock.c - Bedrock Converse wire format; see mock_bedrock.h.
 * The URL decides whether a request streams (/converse-stream). A stream
 * is a sequence of event stream messages: messageStart, (for a tool call
 * contentBlockStart), contentBlockDelta per piece, contentBlockStop,
 * messageStop and metadata (usage). A content_filter control is not an
 * error: Bedrock answers stopReason "content_filtered". */
#include "mock_bedrock.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the event stream framing ---- */

static uint32_t
mock_br__crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
    }
    return ~crc;
}

static void
mock_br__u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void
mock_br__header(mock_buf *h, const char *name, const char *value)
{
    size_t n = strlen(value);

    mock_buf_addc(h, (char)strlen(name));
    mock_buf_adds(h, name);
    mock_buf_addc(h, 7); /* string */
    mock_buf_addc(h, (char)(n >> 8));
    mock_buf_addc(h, (char)(n & 0xFF));
    mock_buf_add(h, value, n);
}

/* mock_br__frame appends one message: headers :event-type (or
 * :exception-type), :content-type and :message-type, then payload. */
static void
mock_br__frame(mock_buf *b, bool exception, const char *type,
               const mock_buf *payload)
{
    mock_buf      h;
    unsigned char pre[12];
    unsigned char crc[4];
    size_t        start = b->len;
    uint32_t      total;

    mock_buf_init(&h);
    mock_br__header(&h, exception ? ":exception-type" : ":event-type", type);
    mock_br__header(&h, ":content-type", "application/json");
    mock_br__header(&h, ":message-type", exception ? "exception" : "event");
    if (mock_buf_failed(&h) || mock_buf_failed(payload)) {
        mock_buf_fini(&h);
        b->failed = true; /* sticky, as an append that failed */
        return;
    }
    total = (uint32_t)(12 + h.len + payload->len + 4);
    mock_br__u32(pre, total);
    mock_br__u32(pre + 4, (uint32_t)h.len);
    mock_br__u32(pre + 8, mock_br__crc32(0, pre, 8));
    mock_buf_add(b, pre, 12);
    mock_buf_add(b, h.data, h.len);
    mock_buf_add(b, payload->data, payload->len);
    if (!mock_buf_failed(b)) {
        mock_br__u32(crc,
                     mock_br__crc32(0, (const unsigned char *)b->data + start,
                                    b->len - start));
        mock_buf_add(b, crc, 4);
    }
    mock_buf_fini(&h);
}

void
mock_bedrock_corrupt(mock_buf *b)
{
    if (b->len >= 16 && !mock_buf_failed(b)) {
        b->data[b->len - 1] ^= 0x01;
    }
}

/* ---- parsing ---- */

static bool
mock_br__json_bytes(const cJSON *v, size_t *bytes)
{
    char *s = cJSON_PrintUnformatted(v);

    if (s == NULL) {
        return false;
    }
    *bytes += strlen(s);
    free(s);
    return true;
}

/* mock_br__blocks counts one message's content blocks. */
static bool
mock_br__blocks(mock_chat_req *req, const cJSON *content, int i, size_t *bytes,
                char *err, size_t errsz)
{
    const cJSON *b;

    if (!cJSON_IsArray(content) || cJSON_GetArraySize(content) == 0) {
        snprintf(err, errsz,
                 "The content field in the Message object at messages.%d is "
                 "empty. Add a ContentBlock object to the content field and "
                 "try again.",
                 i);
        return false;
    }
    cJSON_ArrayForEach(b, content)
    {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(b, "text");
        const cJSON *tu   = cJSON_GetObjectItemCaseSensitive(b, "toolUse");
        const cJSON *tr   = cJSON_GetObjectItemCaseSensitive(b, "toolResult");

        if (cJSON_IsString(text)) {
            if (text->valuestring[0] == '\0') {
                snprintf(err, errsz,
                         "The text field in the ContentBlock object at "
                         "messages.%d is blank.",
                         i);
                return false;
            }
            if (!mock_wire_text_in(req, text->valuestring, bytes, err, errsz)) {
                return false;
            }
        } else if (cJSON_GetObjectItemCaseSensitive(b, "image") != NULL) {
            *bytes += 1000; /* a flat guess, as for any image */
        } else if (cJSON_IsObject(tu) || cJSON_IsObject(tr)) {
            if (!mock_br__json_bytes(tu != NULL ? tu : tr, bytes)) {
                snprintf(err, errsz, "out of memory");
                return false;
            }
        } else {
            snprintf(err, errsz,
                     "messages.%d: a ContentBlock needs one of text, image, "
                     "toolUse, toolResult.",
                     i);
            return false;
        }
    }
    return true;
}

static bool
mock_br__messages(mock_chat_req *req, const cJSON *msgs, char *err,
                  size_t errsz)
{
    const cJSON *m;
    const char  *role = NULL;
    int          i    = 0;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *r     = cJSON_GetObjectItemCaseSensitive(m, "role");
        const char  *now   = cJSON_IsString(r) ? r->valuestring : "";
        size_t       bytes = 0;

        if (strcmp(now, "user") != 0 && strcmp(now, "assistant") != 0) {
            snprintf(err, errsz,
                     "messages.%d.role: Member must satisfy enum value set: "
                     "[user, assistant]",
                     i);
            return false;
        }
        if (role != NULL && strcmp(role, now) == 0) {
            snprintf(err, errsz,
                     "A conversation must alternate between user and "
                     "assistant roles.");
            return false;
        }
        role = now;
        /* as in mock_openai.c: a tool control counts only in the final
         * user message */
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
        if (strcmp(role, "user") == 0) {
            req->echo_src = cJSON_GetObjectItemCaseSensitive(m, "content");
        }
        if (!mock_br__blocks(req,
                             cJSON_GetObjectItemCaseSensitive(m, "content"), i,
                             &bytes, err, errsz)) {
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
mock_br__inference(mock_chat_req *req, const cJSON *ic, char *err, size_t errsz)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(ic, "maxTokens");
    const cJSON *s;

    if (it != NULL && !mock_wire_get_int(it, 1, 1e9, &req->max_tokens)) {
        snprintf(err, errsz,
                 "inferenceConfig.maxTokens: Member must be a positive "
                 "integer");
        return false;
    }
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(ic, "stopSequences"))
    {
        long k = cJSON_IsString(s) ? mock_wire_stop_word(s->valuestring) : -1;

        if (k >= 0 && (req->stop_word < 0 || k < req->stop_word)) {
            req->stop_word = k;
        }
    }
    return true;
}

static bool
mock_br__parse(mock_chat_req *req, const cJSON *root, const char *path_model,
               char *err, size_t errsz)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *sys  = cJSON_GetObjectItemCaseSensitive(root, "system");
    const cJSON *tc   = cJSON_GetObjectItemCaseSensitive(root, "toolConfig");
    const cJSON *s;

    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        snprintf(err, errsz, "messages: Member must not be empty");
        return false;
    }
    if (cJSON_IsArray(sys)) {
        size_t bytes = 0;
        cJSON_ArrayForEach(s, sys)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "text");
            if (cJSON_IsString(t) &&
                !mock_wire_text_in(req, t->valuestring, &bytes, err, errsz)) {
                return false;
            }
        }
        req->prompt_tokens += mock_wire_msg_tokens(bytes);
    }
    if (!mock_br__messages(req, msgs, err, errsz) ||
        !mock_br__inference(
            req, cJSON_GetObjectItemCaseSensitive(root, "inferenceConfig"), err,
            errsz)) {
        return false;
    }
    req->has_tools =
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tc, "tools")) > 0;
    req->model = strdup(path_model != NULL ? path_model : "bedrock-mock");
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

/* ---- rendering ---- */

static const char *
mock_br__stop(const mock_reply *r)
{
    if (r->blocked) {
        return "content_filtered";
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
mock_br__usage(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "\"usage\":{\"inputTokens\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    mock_buf_adds(b, ",\"outputTokens\":");
    mock_buf_add_i64(b, r->emit);
    mock_buf_adds(b, ",\"totalTokens\":");
    mock_buf_add_u64(b, r->prompt_tokens + (uint64_t)r->emit);
    mock_buf_adds(b, "},\"metrics\":{\"latencyMs\":1}");
}

static void
mock_br__tool_id(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "\"tooluse_mock");
    mock_buf_add_u64(b, r->id);
    mock_buf_addc(b, '"');
}

static void
mock_br__render(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"output\":{\"message\":{\"role\":\"assistant\","
                     "\"content\":[");
    if (r->tool != NULL) {
        mock_buf_adds(b, "{\"toolUse\":{\"toolUseId\":");
        mock_br__tool_id(b, r);
        mock_buf_adds(b, ",\"name\":");
        mock_buf_add_json_str(b, r->tool);
        mock_buf_adds(b, ",\"input\":" MOCK_WIRE_TOOL_ARGS "}}");
    } else if (!r->blocked) {
        mock_buf_adds(b, "{\"text\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\"}");
    }
    mock_buf_adds(b, "]}},\"stopReason\":\"");
    mock_buf_adds(b, mock_br__stop(r));
    mock_buf_adds(b, "\",");
    mock_br__usage(b, r);
    mock_buf_addc(b, '}');
}

static void
mock_br__stream_start(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    mock_buf p;

    (void)head;
    mock_buf_init(&p);
    mock_buf_adds(&p, "{\"role\":\"assistant\"}");
    mock_br__frame(b, false, "messageStart", &p);
    if (r->tool != NULL) {
        mock_buf_clear(&p);
        mock_buf_adds(&p, "{\"start\":{\"toolUse\":{\"toolUseId\":");
        mock_br__tool_id(&p, r);
        mock_buf_adds(&p, ",\"name\":");
        mock_buf_add_json_str(&p, r->tool);
        mock_buf_adds(&p, "}},\"contentBlockIndex\":0}");
        mock_br__frame(b, false, "contentBlockStart", &p);
    }
    mock_buf_fini(&p);
}

static void
mock_br__stream_piece(mock_buf *b, const mock_buf *head, const mock_reply *r,
                      long i)
{
    mock_buf p;

    (void)head;
    mock_buf_init(&p);
    if (r->tool != NULL) {
        mock_buf_adds(&p, "{\"delta\":{\"toolUse\":{\"input\":");
        mock_wire_tool_frag(&p, i);
        mock_buf_adds(&p, "}},\"contentBlockIndex\":0}");
    } else {
        mock_buf_adds(&p, "{\"delta\":{\"text\":\"");
        mock_wire_word(&p, r, i);
        mock_buf_adds(&p, "\"},\"contentBlockIndex\":0}");
    }
    mock_br__frame(b, false, "contentBlockDelta", &p);
    mock_buf_fini(&p);
}

static void
mock_br__stream_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    mock_buf p;

    (void)head;
    mock_buf_init(&p);
    mock_buf_adds(&p, "{\"contentBlockIndex\":0}");
    mock_br__frame(b, false, "contentBlockStop", &p);
    mock_buf_clear(&p);
    mock_buf_adds(&p, "{\"stopReason\":\"");
    mock_buf_adds(&p, mock_br__stop(r));
    mock_buf_adds(&p, "\"}");
    mock_br__frame(b, false, "messageStop", &p);
    mock_buf_clear(&p);
    mock_buf_addc(&p, '{');
    mock_br__usage(&p, r);
    mock_buf_addc(&p, '}');
    mock_br__frame(b, false, "metadata", &p);
    mock_buf_fini(&p);
}

/* ---- errors ---- */

const char *
mock_bedrock_error_type(unsigned status)
{
    switch (status) {
    case 400:
        return "ValidationException";
    case 401:
    case 403:
        return "AccessDeniedException";
    case 404:
        return "ResourceNotFoundException";
    case 408:
        return "ModelTimeoutException";
    case 424:
        return "ModelErrorException";
    case 429:
        return "ThrottlingException";
    case 503:
        return "ServiceUnavailableException";
    default:
        return status >= 500 ? "InternalServerException"
                             : "ValidationException";
    }
}

/* mock_br__error_text: the status and message of error e. */
static unsigned
mock_br__error_text(const mock_wire_err *e, const char **msg, char *tmp,
                    size_t tmpsz)
{
    switch (e->kind) {
    case MOCK_WERR_AUTH_MISSING:
        *msg = "Missing Authentication Token";
        return 403;
    case MOCK_WERR_AUTH_BAD:
        return 403;
    case MOCK_WERR_NOT_FOUND:
        return 404;
    case MOCK_WERR_METHOD:
        return 405;
    case MOCK_WERR_INTERNAL:
        return 500;
    case MOCK_WERR_STATUS:
        if (*msg == NULL) {
            *msg = e->status == 429 ? "Too many requests, please wait before "
                                      "trying again."
                                    : "mock: injected error";
        }
        return e->status;
    case MOCK_WERR_CONTEXT:
        snprintf(tmp, tmpsz,
                 "Input is too long for requested model (%llu tokens, the "
                 "limit is %ld).",
                 (unsigned long long)e->tokens, e->limit);
        *msg = tmp;
        return 400;
    case MOCK_WERR_OVERLOADED:
        *msg = "The system encountered an unexpected error during "
               "processing. Try your request again.";
        return 503;
    default:
        return 400;
    }
}

static unsigned
mock_br__error(mock_buf *b, const mock_wire_err *e, bool in_stream)
{
    const char *msg = e->msg;
    char        tmp[200];
    unsigned    status = mock_br__error_text(e, &msg, tmp, sizeof(tmp));
    mock_buf    p;

    if (msg == NULL) {
        msg = "mock: request failed";
    }
    mock_buf_init(&p);
    mock_buf_adds(&p, "{\"message\":");
    mock_buf_add_json_str(&p, msg);
    mock_buf_addc(&p, '}');
    if (in_stream) {
        const char *x = e->kind == MOCK_WERR_OVERLOADED
                            ? "modelStreamErrorException"
                        : status == 429 ? "throttlingException"
                                        : "internalServerException";
        mock_br__frame(b, true, x, &p);
    } else {
        mock_buf_add(b, p.data, p.len);
    }
    mock_buf_fini(&p);
    return status;
}

const mock_wire_fmt mock_bedrock_fmt = {
    .name            = "bedrock",
    .tool_pieces     = MOCK_WIRE_TOOL_FRAGS,
    .filter_is_error = false,
    .stream_ctype    = "application/vnd.amazon.eventstream",
    .error_type      = mock_bedrock_error_type,
    .corrupt         = mock_bedrock_corrupt,
    .parse           = mock_br__parse,
    .render          = mock_br__render,
    .stream_head     = NULL,
    .stream_start    = mock_br__stream_start,
    .stream_piece    = mock_br__stream_piece,
    .stream_end      = mock_br__stream_end,
    .error           = mock_br__error,
};
