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
mock_wire_tool_frag(mock_buf *b, long i)
{
    mock_buf_adds(b, mock_wire__frags[i]);
}

void
mock_wire_word(mock_buf *b, const mock_reply *r, long i)
{
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
