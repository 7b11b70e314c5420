/* mock_wire.h - what every provider wire format of the mock LLM shares: the
 * parsed request, the reply to render, the error kinds, and the table of
 * functions (mock_wire_fmt) each format module fills, so mock_server.c runs
 * one request flow for all of them. Pure functions; thread-safe. */
#ifndef MOCK_WIRE_H
#define MOCK_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mock_buf.h"
#include "mock_ctl.h"

/* The request fields the mock acts on, whatever the format. */
typedef struct mock_chat_req {
    char    *model; /* owns; freed by mock_wire_req_fini */
    bool     stream;
    bool     include_usage; /* OpenAI stream_options.include_usage */
    long     max_tokens;    /* 0 = none */
    uint64_t prompt_tokens; /* see mock_wire_msg_tokens */
    bool     has_tools;     /* tools given and tool choice is not "none" */
    long     stop_word;     /* >= 0: a stop sequence is "w<stop_word>" */
    long     inputs;        /* embeddings: how many inputs */
    long     dimensions;    /* embeddings: vector length */
    bool     base64;        /* embeddings: encoding_format "base64" */
    mock_ctl ctl;           /* from [[mock ...]] directives in the text */
    /* What the echo control echoes: the last user message's content (a
     * string, or an array of strings or content parts), or NULL. Borrows
     * from the parsed body: valid only until its cJSON root is deleted. */
    const cJSON *echo_src;
} mock_chat_req;

/* mock_wire_req_init empties req; mock_wire_req_fini frees it. */
void mock_wire_req_init(mock_chat_req *req);
void mock_wire_req_fini(mock_chat_req *req);

/* What one reply says. Words are "w0 ", "w1 ", ... the last of `words` has
 * no trailing space; only the first `emit` are sent. In echo mode (echo is
 * not NULL) the `words` are instead the pieces of the echoed text. A tool
 * call instead sends MOCK_WIRE_TOOL_ARGS in `pieces` fragments. */
typedef struct mock_reply {
    uint64_t    id;
    int64_t     created; /* unix seconds */
    const char *model;   /* borrows: the request's model */
    long        words;
    long        emit;   /* <= words; also the completion tokens */
    long        pieces; /* stream content chunks (words or fragments) */
    uint64_t    prompt_tokens;
    bool        include_usage;
    const char *tool;      /* borrows; non-NULL: reply with this tool call */
    bool        blocked;   /* the content filter tripped (not an error) */
    long        stop_word; /* >= 0: emit stopped at stop sequence wN */
    long        inputs;    /* embeddings */
    long        dimensions;
    bool        base64; /* embeddings as base64 of little-endian float32 */
    /* Echo mode: owns both, freed by mock_wire_reply_fini; NULL in words
     * mode. Piece i is echo[echo_cut[i] .. echo_cut[i + 1]), never a
     * partial UTF-8 character; echo_cut has words + 1 entries. */
    char   *echo;
    size_t *echo_cut;
} mock_reply;

/* mock_wire_reply_fini frees what r owns (its echo text); r may then be
 * filled again. */
void mock_wire_reply_fini(mock_reply *r);

/* How many pieces echo mode cuts its text into without a chunks control. */
#define MOCK_WIRE_ECHO_PIECES 3

/* mock_wire_echo_set puts r in echo mode: the text of src (a string, or an
 * array whose strings and parts with a "text" string are joined; a part whose
 * "type" is not "text" or "input_text" is skipped; NULL echoes "") with every
 * [[mock ...]] directive removed and the whole trimmed of surrounding
 * whitespace, cut into `pieces` pieces of about equal byte length, each at
 * least one whole UTF-8 character: one per character when pieces is larger, at
 * least one when the text is not empty, none when it is. Sets r->echo,
 * r->echo_cut and r->words. Borrows src until return. False on ENOMEM, r
 * unchanged. */
bool mock_wire_echo_set(mock_reply *r, const cJSON *src, long pieces);

/* The arguments of every mock tool call, and how many stream fragments
 * OpenAI and Anthropic split them into; a call counts as that many
 * completion tokens. */
#define MOCK_WIRE_TOOL_ARGS "{\"city\":\"Paris\",\"n\":1}"
#define MOCK_WIRE_TOOL_FRAGS 4

/* mock_wire_tool_frag appends fragment i (0 <= i < MOCK_WIRE_TOOL_FRAGS)
 * of MOCK_WIRE_TOOL_ARGS as a JSON string. */
void mock_wire_tool_frag(mock_buf *b, long i);

/* mock_wire_word appends the raw text of word i ("w3 "), or in echo mode
 * piece i JSON-escaped (for the inside of a JSON string). */
void mock_wire_word(mock_buf *b, const mock_reply *r, long i);

/* mock_wire_text appends the raw text of every emitted word. */
void mock_wire_text(mock_buf *b, const mock_reply *r);

/* mock_wire_embed_vector appends input i's embedding of r->dimensions
 * fixed components in [-1, 1] (three decimals, the same every run): a JSON
 * array of numbers, or with r->base64 a JSON string holding the base64 of
 * the components as little-endian float32s (OpenAI's encoding_format
 * "base64"). */
void mock_wire_embed_vector(mock_buf *b, const mock_reply *r, long i);

/* mock_wire_msg_tokens estimates a message of `bytes` text bytes:
 * 4 + ceil(bytes / 4), as the gateway does. */
uint64_t mock_wire_msg_tokens(size_t bytes);

/* mock_wire_text_in counts text into *bytes and applies its [[mock]]
 * directives to req->ctl; false with err set on a bad directive. */
bool mock_wire_text_in(mock_chat_req *req, const char *text, size_t *bytes,
                       char *err, size_t errsz);

/* mock_wire_get_int reads an integral JSON number in [lo, hi]. */
bool mock_wire_get_int(const cJSON *it, double lo, double hi, long *out);

/* mock_wire_parse_root parses body[0..len) as one JSON object. Owns: the
 * caller frees the result with cJSON_Delete. NULL with err set when the
 * body is empty, malformed, followed by more data or not an object. */
cJSON *mock_wire_parse_root(const char *body, size_t len, char *err,
                            size_t errsz);

/* mock_wire_stop_word returns K when s is the word "wK" (so a stop
 * sequence can cut the deterministic reply), else -1. */
long mock_wire_stop_word(const char *s);

/* Why a request failed; each format renders its own body and status. */
typedef enum mock_wire_err_kind {
    MOCK_WERR_INVALID,      /* 400: malformed or invalid request */
    MOCK_WERR_AUTH_MISSING, /* no credentials */
    MOCK_WERR_AUTH_BAD,     /* wrong credentials */
    MOCK_WERR_NOT_FOUND,    /* 404 */
    MOCK_WERR_METHOD,       /* 405 */
    MOCK_WERR_TOO_LARGE,    /* 413 */
    MOCK_WERR_INTERNAL,     /* 500: the mock ran out of memory */
    MOCK_WERR_STATUS,       /* injected with the status control */
    MOCK_WERR_CONTEXT,      /* the prompt exceeds the context control */
    MOCK_WERR_FILTER,       /* content filter, where it is an error */
    MOCK_WERR_OVERLOADED    /* in-stream error (error_after control) */
} mock_wire_err_kind;

typedef struct mock_wire_err {
    mock_wire_err_kind kind;
    unsigned           status; /* MOCK_WERR_STATUS: the HTTP status */
    const char        *msg;    /* NULL: the format's own message */
    uint64_t           tokens; /* MOCK_WERR_CONTEXT: prompt tokens */
    long               limit;  /* MOCK_WERR_CONTEXT: the window */
} mock_wire_err;

/* One provider wire format. Every render function appends to b; head is
 * what stream_head rendered once per stream (empty if it is NULL). */
typedef struct mock_wire_fmt {
    const char *name; /* in /_mock/stats */
    long        tool_pieces;
    bool        filter_is_error; /* content_filter=1 answers with an error */
    /* Optional: the stream's Content-Type (NULL: text/event-stream); the
     * value of an x-amzn-ErrorType header for an error status (NULL: no
     * such header); corrupt damages the last frame rendered into b (the
     * corrupt_after control; NULL: the format has no frames). */
    const char *stream_ctype;
    const char *(*error_type)(unsigned status);
    void (*corrupt)(mock_buf *b);
    /* parse fills req from the JSON root; path_model is the model or
     * deployment named in the URL, or NULL. False with err set. */
    bool (*parse)(mock_chat_req *req, const cJSON *root, const char *path_model,
                  char *err, size_t errsz);
    void (*render)(mock_buf *b, const mock_reply *r);
    void (*stream_head)(mock_buf *b, const mock_reply *r);
    void (*stream_start)(mock_buf *b, const mock_buf *head,
                         const mock_reply *r);
    void (*stream_piece)(mock_buf *b, const mock_buf *head, const mock_reply *r,
                         long i);
    void (*stream_end)(mock_buf *b, const mock_buf *head, const mock_reply *r);
    /* error renders an error body and returns its HTTP status; with
     * in_stream it renders the in-stream event instead. */
    unsigned (*error)(mock_buf *b, const mock_wire_err *e, bool in_stream);
} mock_wire_fmt;

#endif
