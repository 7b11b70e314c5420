/* mock_gemini.c - Gemini generateContent wire format; see mock_gemini.h.
 * The server decides from the URL whether a request streams. Stream
 * events end in "\r\n\r\n" as Google's do. A content_filter control is not
 * an error here: Gemini answers 200 with promptFeedback.blockReason. */
#include "mock_gemini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOCK_GEM__MAX_TOKENS_MAX 1000000000.0

/* ---- parsing ---- */

/* mock_gem__item reads a field spelt camelCase or snake_case, as Google's
 * JSON mapping accepts both. */
static const cJSON *
mock_gem__item(const cJSON *obj, const char *camel, const char *snake)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, camel);

    return it != NULL ? it : cJSON_GetObjectItemCaseSensitive(obj, snake);
}

static bool
mock_gem__json_bytes(const cJSON *v, size_t *bytes, char *err, size_t errsz)
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

/* mock_gem__parts counts one Content's parts; where names it. */
static bool
mock_gem__parts(mock_chat_req *req, const cJSON *content, const char *where,
                size_t *bytes, char *err, size_t errsz)
{
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(content, "parts");
    const cJSON *p;
    int          j = 0;

    if (!cJSON_IsArray(parts)) {
        snprintf(err, errsz,
                 "* GenerateContentRequest.%s.parts: contents.parts "
                 "must not be empty.",
                 where);
        return false;
    }
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        const cJSON *fc   = mock_gem__item(p, "functionCall", "function_call");
        const cJSON *fr =
            mock_gem__item(p, "functionResponse", "function_response");

        if (cJSON_IsString(text)) {
            if (!mock_wire_text_in(req, text->valuestring, bytes, err, errsz)) {
                return false;
            }
        } else if (mock_gem__item(p, "inlineData", "inline_data") != NULL ||
                   mock_gem__item(p, "fileData", "file_data") != NULL) {
            *bytes += 1000; /* a flat guess, as for any image */
        } else if (fc != NULL || fr != NULL) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
                    fc != NULL ? fc : fr, "name"))) {
                snprintf(err, errsz,
                         "* GenerateContentRequest.%s.parts[%d]: function "
                         "name must be set.",
                         where, j);
                return false;
            }
            if (!mock_gem__json_bytes(fc != NULL ? fc : fr, bytes, err,
                                      errsz)) {
                return false;
            }
        } else {
            snprintf(err, errsz,
                     "* GenerateContentRequest.%s.parts[%d].data: required "
                     "oneof field 'data' must have one initialized field",
                     where, j);
            return false;
        }
        j++;
    }
    return true;
}

static bool
mock_gem__contents(mock_chat_req *req, const cJSON *contents, char *err,
                   size_t errsz)
{
    const cJSON *c;
    const char  *role = NULL;
    int          i    = 0;

    cJSON_ArrayForEach(c, contents)
    {
        const cJSON *r     = cJSON_GetObjectItemCaseSensitive(c, "role");
        size_t       bytes = 0;
        char         where[32];

        role = cJSON_IsString(r) ? r->valuestring : "user";
        if (strcmp(role, "user") != 0 && strcmp(role, "model") != 0 &&
            strcmp(role, "function") != 0) {
            snprintf(err, errsz,
                     "Please use a valid role: user, model, function.");
            return false;
        }
        /* as in mock_openai.c: a tool control counts only in the final
         * user content */
        mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
        if (strcmp(role, "user") == 0) {
            req->echo_src = cJSON_GetObjectItemCaseSensitive(c, "parts");
        }
        snprintf(where, sizeof(where), "contents[%d]", i);
        if (!mock_gem__parts(req, c, where, &bytes, err, errsz)) {
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
mock_gem__gen_config(mock_chat_req *req, const cJSON *gc, char *err,
                     size_t errsz)
{
    const cJSON *it;

    if (gc == NULL || cJSON_IsNull(gc)) {
        return true;
    }
    if (!cJSON_IsObject(gc)) {
        snprintf(err, errsz,
                 "Invalid JSON payload received. "
                 "generationConfig must be an object.");
        return false;
    }
    it = mock_gem__item(gc, "maxOutputTokens", "max_output_tokens");
    if (it != NULL && !cJSON_IsNull(it) &&
        !mock_wire_get_int(it, 1, MOCK_GEM__MAX_TOKENS_MAX, &req->max_tokens)) {
        snprintf(err, errsz,
                 "* GenerateContentRequest.generation_config."
                 "max_output_tokens: must be a positive "
                 "integer.");
        return false;
    }
    it = cJSON_GetObjectItemCaseSensitive(gc, "temperature");
    if (it != NULL && !cJSON_IsNull(it) &&
        !(cJSON_IsNumber(it) && it->valuedouble >= 0.0 &&
          it->valuedouble <= 2.0)) {
        snprintf(err, errsz,
                 "* GenerateContentRequest.generation_config."
                 "temperature: must be in [0.0, 2.0].");
        return false;
    }
    it = mock_gem__item(gc, "stopSequences", "stop_sequences");
    if (cJSON_IsArray(it)) {
        const cJSON *s;

        cJSON_ArrayForEach(s, it)
        {
            long k =
                cJSON_IsString(s) ? mock_wire_stop_word(s->valuestring) : -1;

            if (k >= 0 && (req->stop_word < 0 || k < req->stop_word)) {
                req->stop_word = k;
            }
        }
    }
    return true;
}

/* mock_gem__tools notes whether any function is declared and calling is
 * not switched off. */
static void
mock_gem__tools(mock_chat_req *req, const cJSON *root)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *cfg =
        mock_gem__item(mock_gem__item(root, "toolConfig", "tool_config"),
                       "functionCallingConfig", "function_calling_config");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(cfg, "mode");
    const cJSON *t;

    cJSON_ArrayForEach(t, tools)
    {
        if (cJSON_GetArraySize(mock_gem__item(t, "functionDeclarations",
                                              "function_declarations")) > 0) {
            req->has_tools = true;
        }
    }
    if (cJSON_IsString(mode) && strcmp(mode->valuestring, "NONE") == 0) {
        req->has_tools = false;
    }
}

static bool
mock_gem__parse(mock_chat_req *req, const cJSON *root, const char *path_model,
                char *err, size_t errsz)
{
    const cJSON *contents = cJSON_GetObjectItemCaseSensitive(root, "contents");
    const cJSON *sys =
        mock_gem__item(root, "systemInstruction", "system_instruction");

    if (!cJSON_IsArray(contents) || cJSON_GetArraySize(contents) == 0) {
        snprintf(err, errsz,
                 "* GenerateContentRequest.contents: contents is "
                 "not specified");
        return false;
    }
    if (sys != NULL && !cJSON_IsNull(sys)) {
        size_t bytes = 0;

        if (!mock_gem__parts(req, sys, "system_instruction", &bytes, err,
                             errsz)) {
            return false;
        }
        req->prompt_tokens += mock_wire_msg_tokens(bytes);
    }
    if (!mock_gem__contents(req, contents, err, errsz) ||
        !mock_gem__gen_config(
            req, mock_gem__item(root, "generationConfig", "generation_config"),
            err, errsz)) {
        return false;
    }
    mock_gem__tools(req, root);
    req->model = strdup(path_model != NULL ? path_model : "gemini-mock");
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

/* ---- rendering ---- */

static const char *
mock_gem__finish(const mock_reply *r)
{
    if (r->tool == NULL && r->stop_word < 0 && r->emit < r->words) {
        return "MAX_TOKENS";
    }
    return "STOP";
}

static void
mock_gem__usage(mock_buf *b, const mock_reply *r, long out)
{
    mock_buf_adds(b, ",\"usageMetadata\":{\"promptTokenCount\":");
    mock_buf_add_u64(b, r->prompt_tokens);
    if (out >= 0) {
        mock_buf_adds(b, ",\"candidatesTokenCount\":");
        mock_buf_add_i64(b, out);
    }
    mock_buf_adds(b, ",\"totalTokenCount\":");
    mock_buf_add_u64(b, r->prompt_tokens + (uint64_t)(out > 0 ? out : 0));
    mock_buf_adds(b, "},\"modelVersion\":");
    mock_buf_add_json_str(b, r->model);
    mock_buf_adds(b, ",\"responseId\":\"mock-");
    mock_buf_add_u64(b, r->id);
    mock_buf_adds(b, "\"}");
}

/* mock_gem__blocked renders a response whose prompt the filter blocked. */
static void
mock_gem__blocked(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\","
                     "\"safetyRatings\":[{\"category\":"
                     "\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":"
                     "\"HIGH\",\"blocked\":true}]}");
    mock_gem__usage(b, r, -1);
}

/* mock_gem__candidate opens a response and its candidate's parts. */
static void
mock_gem__candidate(mock_buf *b)
{
    mock_buf_adds(b, "{\"candidates\":[{\"content\":{\"parts\":[");
}

static void
mock_gem__candidate_close(mock_buf *b, const mock_reply *r, bool last)
{
    mock_buf_adds(b, "],\"role\":\"model\"}");
    if (last) {
        mock_buf_adds(b, ",\"finishReason\":\"");
        mock_buf_adds(b, mock_gem__finish(r));
        mock_buf_addc(b, '"');
    }
    mock_buf_adds(b, ",\"index\":0}]");
}

static void
mock_gem__call(mock_buf *b, const mock_reply *r)
{
    mock_buf_adds(b, "{\"functionCall\":{\"name\":");
    mock_buf_add_json_str(b, r->tool);
    mock_buf_adds(b, ",\"args\":" MOCK_WIRE_TOOL_ARGS "}}");
}

static void
mock_gem__render(mock_buf *b, const mock_reply *r)
{
    if (r->blocked) {
        mock_gem__blocked(b, r);
        return;
    }
    mock_buf_reserve(b, 384 + strlen(r->model) * 6 + (size_t)r->emit * 8);
    mock_gem__candidate(b);
    if (r->tool != NULL) {
        mock_gem__call(b, r);
    } else {
        mock_buf_adds(b, "{\"text\":\"");
        mock_wire_text(b, r);
        mock_buf_adds(b, "\"}");
    }
    mock_gem__candidate_close(b, r, true);
    mock_gem__usage(b, r, r->emit);
}

static void
mock_gem__stream_start(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    (void)b;
    (void)head;
    (void)r;
}

/* Each event carries one piece and the usage so far; the last piece also
 * carries the finish reason and the final totals. */
static void
mock_gem__stream_piece(mock_buf *b, const mock_buf *head, const mock_reply *r,
                       long i)
{
    bool last = i + 1 == r->pieces;

    (void)head;
    mock_buf_adds(b, "data: ");
    mock_gem__candidate(b);
    if (r->tool != NULL) {
        mock_gem__call(b, r);
    } else {
        mock_buf_adds(b, "{\"text\":\"");
        mock_wire_word(b, r, i);
        mock_buf_adds(b, "\"}");
    }
    mock_gem__candidate_close(b, r, last);
    mock_gem__usage(b, r, last ? r->emit : i + 1);
    mock_buf_adds(b, "\r\n\r\n");
}

/* Only an empty or blocked reply needs an event of its own at the end. */
static void
mock_gem__stream_end(mock_buf *b, const mock_buf *head, const mock_reply *r)
{
    (void)head;
    if (r->pieces > 0) {
        return;
    }
    mock_buf_adds(b, "data: ");
    if (r->blocked) {
        mock_gem__blocked(b, r);
    } else {
        mock_gem__candidate(b);
        mock_buf_adds(b, "{\"text\":\"\"}");
        mock_gem__candidate_close(b, r, true);
        mock_gem__usage(b, r, 0);
    }
    mock_buf_adds(b, "\r\n\r\n");
}

/* ---- errors ---- */

static void
mock_gem__status_error(unsigned status, const char **gstatus, const char **msg)
{
    switch (status) {
    case 400:
        *gstatus = "INVALID_ARGUMENT";
        *msg     = "mock: injected bad request";
        break;
    case 401:
        *gstatus = "UNAUTHENTICATED";
        *msg     = "mock: injected invalid credentials";
        break;
    case 403:
        *gstatus = "PERMISSION_DENIED";
        *msg     = "mock: injected permission denied";
        break;
    case 404:
        *gstatus = "NOT_FOUND";
        *msg     = "mock: injected model not found";
        break;
    case 429:
        *gstatus = "RESOURCE_EXHAUSTED";
        *msg     = "mock: injected quota exceeded; retry after 1s";
        break;
    case 503:
        *gstatus = "UNAVAILABLE";
        *msg     = "The model is overloaded. Please try again later.";
        break;
    case 504:
        *gstatus = "DEADLINE_EXCEEDED";
        *msg     = "mock: injected deadline exceeded";
        break;
    default:
        *gstatus = status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
        *msg     = status >= 500 ? "mock: injected internal error"
                                 : "mock: injected client error";
        break;
    }
}

static unsigned
mock_gem__error(mock_buf *b, const mock_wire_err *e, bool in_stream)
{
    const char *gstatus = "INVALID_ARGUMENT";
    const char *msg     = e->msg;
    unsigned    status  = 400;
    char        tmp[160];

    switch (e->kind) {
    case MOCK_WERR_INVALID:
    case MOCK_WERR_FILTER: /* not used: filter_is_error is false */
        break;
    case MOCK_WERR_AUTH_MISSING:
        gstatus = "PERMISSION_DENIED";
        msg     = "Method doesn't allow unregistered callers (callers "
                  "without established identity). Please use API Key or "
                  "other form of API consumer identity to call this API.";
        status  = 403;
        break;
    case MOCK_WERR_AUTH_BAD:
        msg = "API key not valid. Please pass a valid API key.";
        break;
    case MOCK_WERR_NOT_FOUND:
        gstatus = "NOT_FOUND";
        status  = 404;
        break;
    case MOCK_WERR_METHOD:
        status = 405;
        break;
    case MOCK_WERR_TOO_LARGE:
        msg = "Request payload size exceeds the limit: 4194304 bytes.";
        break;
    case MOCK_WERR_INTERNAL:
        gstatus = "INTERNAL";
        status  = 500;
        break;
    case MOCK_WERR_STATUS:
        status = e->status;
        mock_gem__status_error(status, &gstatus, &msg);
        if (e->msg != NULL) {
            msg = e->msg;
        }
        break;
    case MOCK_WERR_CONTEXT:
        snprintf(tmp, sizeof(tmp),
                 "The input token count (%llu) exceeds the maximum number "
                 "of tokens allowed (%ld).",
                 (unsigned long long)e->tokens, e->limit);
        msg = tmp;
        break;
    case MOCK_WERR_OVERLOADED:
        gstatus = "UNAVAILABLE";
        msg     = "The model is overloaded. Please try again later.";
        status  = 503;
        break;
    }
    if (msg == NULL) {
        msg = "mock: request failed";
    }
    if (in_stream) {
        mock_buf_adds(b, "data: ");
    }
    mock_buf_adds(b, "{\"error\":{\"code\":");
    mock_buf_add_u64(b, status);
    mock_buf_adds(b, ",\"message\":");
    mock_buf_add_json_str(b, msg);
    mock_buf_adds(b, ",\"status\":\"");
    mock_buf_adds(b, gstatus);
    mock_buf_adds(b, "\"}}");
    if (in_stream) {
        mock_buf_adds(b, "\r\n\r\n");
    }
    return status;
}

/* ---- batchEmbedContents ---- */

#define MOCK_GEM__EMBED_DIM 8
#define MOCK_GEM__EMBED_DIM_MAX 3072

/* mock_gem__embed_parse reads a BatchEmbedContentsRequest: every request
 * names the model of the URL, its content is text parts. The reply has one
 * dimension for the whole batch, the last outputDimensionality given. */
static bool
mock_gem__embed_parse(mock_chat_req *req, const cJSON *root,
                      const char *path_model, char *err, size_t errsz)
{
    const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(root, "requests");
    const cJSON *r;
    int          i = 0;

    if (!cJSON_IsArray(reqs) || cJSON_GetArraySize(reqs) == 0) {
        snprintf(err, errsz,
                 "* BatchEmbedContentsRequest.requests: requests is not "
                 "specified");
        return false;
    }
    req->dimensions = MOCK_GEM__EMBED_DIM;
    cJSON_ArrayForEach(r, reqs)
    {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(r, "model");
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r, "content"), "parts");
        const cJSON *dims =
            mock_gem__item(r, "outputDimensionality", "output_dimensionality");
        const cJSON *p;
        size_t       bytes = 0;

        if (!cJSON_IsString(model) ||
            strncmp(model->valuestring, "models/", 7) != 0 ||
            path_model == NULL ||
            strcmp(model->valuestring + 7, path_model) != 0) {
            snprintf(err, errsz,
                     "* BatchEmbedContentsRequest.requests[%d].model: the "
                     "model must be models/%s, as in the URL",
                     i, path_model != NULL ? path_model : "");
            return false;
        }
        if (!cJSON_IsArray(parts) || cJSON_GetArraySize(parts) == 0) {
            snprintf(err, errsz,
                     "* BatchEmbedContentsRequest.requests[%d].content.parts: "
                     "contents.parts must not be empty.",
                     i);
            return false;
        }
        cJSON_ArrayForEach(p, parts)
        {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");

            if (!cJSON_IsString(text)) {
                snprintf(err, errsz,
                         "* BatchEmbedContentsRequest.requests[%d]: only "
                         "text parts can be embedded.",
                         i);
                return false;
            }
            if (!mock_wire_text_in(req, text->valuestring, &bytes, err,
                                   errsz)) {
                return false;
            }
        }
        if (dims != NULL && !mock_wire_get_int(dims, 1, MOCK_GEM__EMBED_DIM_MAX,
                                               &req->dimensions)) {
            snprintf(err, errsz,
                     "* BatchEmbedContentsRequest.requests[%d]."
                     "output_dimensionality: must be between 1 and %d.",
                     i, MOCK_GEM__EMBED_DIM_MAX);
            return false;
        }
        req->prompt_tokens += (bytes + 3) / 4;
        i++;
    }
    req->inputs = i;
    mock_ctl_unset(&req->ctl, MOCK_CTL_TOOL);
    req->model = strdup(path_model);
    if (req->model == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    return true;
}

/* mock_gem__embed_render: {"embeddings":[{"values":[...]}, ...]}. Gemini
 * reports no token counts for embeddings. */
static void
mock_gem__embed_render(mock_buf *b, const mock_reply *r)
{
    mock_buf_reserve(b, 32 + (size_t)r->inputs *
                                 (16 + (size_t)r->dimensions * 7));
    mock_buf_adds(b, "{\"embeddings\":[");
    for (long i = 0; i < r->inputs; i++) {
        mock_buf_adds(b, i > 0 ? ",{\"values\":" : "{\"values\":");
        mock_wire_embed_vector(b, r, i);
        mock_buf_addc(b, '}');
    }
    mock_buf_adds(b, "]}");
}

/* batchEmbedContents never streams: stream_* stay NULL */
const mock_wire_fmt mock_gemini_embed_fmt = {
    .name            = "gemini_embed",
    .tool_pieces     = 0,
    .filter_is_error = false,
    .parse           = mock_gem__embed_parse,
    .render          = mock_gem__embed_render,
    .error           = mock_gem__error,
};

const mock_wire_fmt mock_gemini_fmt = {
    .name            = "gemini",
    .tool_pieces     = 1, /* Gemini sends a functionCall whole */
    .filter_is_error = false,
    .parse           = mock_gem__parse,
    .render          = mock_gem__render,
    .stream_head     = NULL,
    .stream_start    = mock_gem__stream_start,
    .stream_piece    = mock_gem__stream_piece,
    .stream_end      = mock_gem__stream_end,
    .error           = mock_gem__error,
};
