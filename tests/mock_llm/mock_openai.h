/* mock_openai.h - OpenAI chat-completions wire format for the mock LLM:
 * parses a request body and renders completions, stream events and error
 * bodies. Pure functions over caller-owned structs; thread-safe. */
#ifndef MOCK_OPENAI_H
#define MOCK_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mock_buf.h"
#include "mock_ctl.h"

/* The request fields the mock acts on. */
typedef struct mock_chat_req {
    char    *model; /* owns; freed by mock_openai_chat_fini */
    bool     stream;
    bool     include_usage; /* stream_options.include_usage */
    long     max_tokens;    /* max_completion_tokens or max_tokens; 0 = none */
    uint64_t prompt_tokens; /* sum of 4 + ceil(text bytes / 4) per message */
    mock_ctl ctl;           /* from [[mock ...]] directives in message text */
} mock_chat_req;

/* mock_openai_parse_chat fills req from the JSON body[0..len) (body must be
 * NUL-terminated at len). On a malformed or invalid body it returns false
 * with a client-facing message in err, and req needs no fini. On true the
 * caller must call mock_openai_chat_fini. Borrows body until return. */
bool mock_openai_parse_chat(mock_chat_req *req, const char *body, size_t len,
                            char *err, size_t errsz);

void mock_openai_chat_fini(mock_chat_req *req);

/* What one reply says. Words are "w0 ", "w1 ", ... the last of `words` has
 * no trailing space; only the first `emit` are sent. */
typedef struct mock_reply {
    uint64_t    id;
    int64_t     created; /* unix seconds */
    const char *model;   /* borrows: the request's model */
    long        words;
    long        emit; /* <= words; also the completion tokens */
    uint64_t    prompt_tokens;
    bool        include_usage;
} mock_reply;

/* "length" when max_tokens cut the reply short, else "stop". */
const char *mock_reply_finish_reason(const mock_reply *r);

/* mock_openai_render_completion appends a full chat.completion object. */
void mock_openai_render_completion(mock_buf *b, const mock_reply *r);

/* mock_openai_render_chunk_head appends the part every chunk event of r
 * shares: `data: {"id":...,"system_fingerprint":"fp_mock","choices":`.
 * Render it once per stream and pass it to the event functions. */
void mock_openai_render_chunk_head(mock_buf *b, const mock_reply *r);

/* The role event: delta {"role":"assistant","content":""}. */
void mock_openai_event_role(mock_buf *b, const mock_buf *head,
                            const mock_reply *r);

/* The content event for word i (0 <= i < r->emit). */
void mock_openai_event_word(mock_buf *b, const mock_buf *head,
                            const mock_reply *r, long i);

/* The finish event, then the usage event if r->include_usage, then
 * "data: [DONE]". */
void mock_openai_event_end(mock_buf *b, const mock_buf *head,
                           const mock_reply *r);

/* mock_openai_render_error appends {"error":{...}}; code NULL gives null. */
void mock_openai_render_error(mock_buf *b, const char *msg, const char *type,
                              const char *code);

/* mock_openai_status_error gives the error type, code (may be NULL) and a
 * message for an injected HTTP error status. Returns static strings. */
void mock_openai_status_error(int status, const char **type, const char **code,
                              const char **msg);

/* The GET /v1/models body; a static string. */
const char *mock_openai_models_json(void);

#endif
