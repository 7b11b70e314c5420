/* mock_wire.c - pieces every mock wire format shares; see mock_wire.h. */
#include "mock_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* MOCK_WIRE_TOOL_ARGS cut in MOCK_WIRE_TOOL_FRAGS pieces, JSON-escaped */
static const char *const mock_wire__frags[MOCK_WIRE_TOOL_FRAGS] = {
    "\"{\\\"city\\\":\"",
    "\"\\\"Paris\\\",\"",
    "\"\\\"n\\\":\"",
    "\"1}\"",
};

void
mock_wire_req_init(mock_chat_req *req)
{
    memset(req, 0, sizeof(*req));
    req->stop_word = -1;
    mock_ctl_init(&req->ctl);
}

void
mock_wire_req_fini(mock_chat_req *req)
{
    free(req->model);
    req->model = NULL;
}

void
mock_wire_reply_fini(mock_reply *r)
{
    free(r->echo);
    free(r->echo_cut);
    r->echo     = NULL;
    r->echo_cut = NULL;
}

void
mock_wire_tool_frag(mock_buf *b, long i)
{
    mock_buf_adds(b, mock_wire__frags[i]);
}

void
mock_wire_word(mock_buf *b, const mock_reply *r, long i)
{
    if (r->echo != NULL) {
        mock_buf_add_json_chars(b, r->echo + r->echo_cut[i],
                                r->echo_cut[i + 1] - r->echo_cut[i]);
        return;
    }
    mock_buf_addc(b, 'w');
    mock_buf_add_u64(b, (uint64_t)i);
    if (i + 1 < r->words) {
        mock_buf_addc(b, ' ');
    }
}

void
mock_wire_text(mock_buf *b, const mock_reply *r)
{
    for (long i = 0; i < r->emit; i++) {
        mock_wire_word(b, r, i);
    }
}

/* mock_wire__echo_part appends text with its directives removed. An
 * unterminated one stays: parsing has already refused such a request. */
static void
mock_wire__echo_part(mock_buf *b, const char *text)
{
    const char *end = NULL;
    const char *d;

    while ((d = mock_ctl_find_directive(text, &end)) != NULL && end != NULL) {
        mock_buf_add(b, text, (size_t)(d - text));
        text = end;
    }
    mock_buf_adds(b, text);
}

/* mock_wire__echo_collect appends the text of src, a string or an array of
 * strings and parts; see mock_wire_echo_set. */
static void
mock_wire__echo_collect(mock_buf *b, const cJSON *src)
{
    const cJSON *part;

    if (cJSON_IsString(src)) {
        mock_wire__echo_part(b, src->valuestring);
        return;
    }
    if (!cJSON_IsArray(src)) {
        return;
    }
    cJSON_ArrayForEach(part, src)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");

        if (cJSON_IsString(part)) {
            mock_wire__echo_part(b, part->valuestring);
        } else if (cJSON_IsString(text) &&
                   (type == NULL ||
                    (cJSON_IsString(type) &&
                     (strcmp(type->valuestring, "text") == 0 ||
                      strcmp(type->valuestring, "input_text") == 0)))) {
            /* "input_text": the Responses API's text part */
            mock_wire__echo_part(b, text->valuestring);
        }
    }
}

static bool
mock_wire__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* mock_wire__is_cont: a UTF-8 continuation byte, never a piece's start */
static bool
mock_wire__is_cont(char c)
{
    return ((unsigned char)c & 0xC0u) == 0x80u;
}

/* mock_wire__echo_cut fills cut[0..n) for text[0..len) of `chars`
 * characters (n <= chars): boundary k is the first character start at or
 * past byte len * k / n, moved so that every piece keeps at least one
 * character. */
static void
mock_wire__echo_cut(const char *text, size_t len, size_t chars, size_t n,
                    size_t *cut)
{
    size_t pos = 0; /* a character start */
    size_t j   = 0; /* characters before pos */

    cut[0] = 0;
    for (size_t k = 1; k < n; k++) {
        size_t want = (size_t)((uint64_t)len * k / n);
        size_t last = chars - (n - k); /* one character per later piece */

        do {
            pos++;
            while (pos < len && mock_wire__is_cont(text[pos])) {
                pos++;
            }
            j++;
        } while (pos < want && j < last);
        cut[k] = pos;
    }
}

bool
mock_wire_echo_set(mock_reply *r, const cJSON *src, long pieces)
{
    mock_buf b;
    char    *text;
    size_t  *cut;
    size_t   len;
    size_t   start = 0;
    size_t   chars = 0;
    size_t   n     = pieces < 1 ? 1 : (size_t)pieces;

    mock_buf_init(&b);
    mock_wire__echo_collect(&b, src);
    text = mock_buf_take(&b, &len);
    if (text == NULL) {
        return false;
    }
    while (start < len && mock_wire__is_space(text[start])) {
        start++;
    }
    while (len > start && mock_wire__is_space(text[len - 1])) {
        len--;
    }
    len -= start;
    memmove(text, text + start, len);
    text[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        chars += i == 0 || !mock_wire__is_cont(text[i]);
    }
    if (n > chars) {
        n = chars;
    }
    cut = malloc((n + 1) * sizeof(*cut));
    if (cut == NULL) {
        free(text);
        return false;
    }
    mock_wire__echo_cut(text, len, chars, n, cut);
    cut[n] = len;
    mock_wire_reply_fini(r);
    r->echo     = text;
    r->echo_cut = cut;
    r->words    = (long)n;
    return true;
}

/* mock_wire__embed_milli is component j of input i's vector, in
 * thousandths: -1000..1000. */
static long
mock_wire__embed_milli(long i, long j)
{
    return ((i + 1) * 7919 + (j + 1) * 104729) % 2001 - 1000;
}

void
mock_wire_embed_vector(mock_buf *b, const mock_reply *r, long i)
{
    if (r->base64) {
        size_t         n   = (size_t)r->dimensions * 4;
        unsigned char *raw = malloc(n + 1);
        unsigned char *out = malloc((n + 2) / 3 * 4 + 1);

        if (raw == NULL || out == NULL) {
            free(raw);
            free(out);
            b->failed = true; /* sticky, as an append's ENOMEM */
            return;
        }
        for (long j = 0; j < r->dimensions; j++) {
            float    f = (float)mock_wire__embed_milli(i, j) / 1000.0f;
            uint32_t u;

            memcpy(&u, &f, sizeof(u));
            for (int k = 0; k < 4; k++) {
                raw[(size_t)j * 4 + (size_t)k] =
                    (unsigned char)(u >> (8 * k));
            }
        }
        EVP_EncodeBlock(out, raw, (int)n);
        mock_buf_add_json_str(b, (const char *)out);
        free(raw);
        free(out);
        return;
    }
    mock_buf_addc(b, '[');
    for (long j = 0; j < r->dimensions; j++) {
        long v = mock_wire__embed_milli(i, j);

        if (j > 0) {
            mock_buf_addc(b, ',');
        }
        if (v < 0) {
            mock_buf_addc(b, '-');
            v = -v;
        }
        mock_buf_add_u64(b, (uint64_t)(v / 1000));
        mock_buf_addc(b, '.');
        mock_buf_addc(b, (char)('0' + v / 100 % 10));
        mock_buf_addc(b, (char)('0' + v / 10 % 10));
        mock_buf_addc(b, (char)('0' + v % 10));
    }
    mock_buf_addc(b, ']');
}

uint64_t
mock_wire_msg_tokens(size_t bytes)
{
    return 4 + (bytes + 3) / 4;
}

bool
mock_wire_text_in(mock_chat_req *req, const char *text, size_t *bytes,
                  char *err, size_t errsz)
{
    *bytes += strlen(text);
    return mock_ctl_scan_text(&req->ctl, text, err, errsz);
}

bool
mock_wire_get_int(const cJSON *it, double lo, double hi, long *out)
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

cJSON *
mock_wire_parse_root(const char *body, size_t len, char *err, size_t errsz)
{
    const char *end = NULL;
    cJSON      *root;

    if (len == 0) {
        snprintf(err, errsz,
                 "The request body is empty; expected a JSON "
                 "object.");
        return NULL;
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
        return NULL;
    }
    for (; end != NULL && end < body + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            snprintf(err, errsz,
                     "We could not parse the JSON body of your "
                     "request (unexpected data after the JSON "
                     "value at byte %zu).",
                     (size_t)(end - body));
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errsz, "The request body must be a JSON object.");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

long
mock_wire_stop_word(const char *s)
{
    long v = 0;

    if (s[0] != 'w' || s[1] == '\0') {
        return -1;
    }
    for (s++; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > 100000) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}
