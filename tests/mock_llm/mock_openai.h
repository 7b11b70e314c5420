/* mock_openai.h - OpenAI wire formats for the mock LLM: chat completions
 * (also served as Azure OpenAI, whose errors differ), legacy completions
 * and embeddings. Pure functions; thread-safe. Called by mock_server.c
 * through the mock_wire_fmt tables. */
#ifndef MOCK_OPENAI_H
#define MOCK_OPENAI_H

#include "mock_wire.h"

/* POST /v1/chat/completions */
extern const mock_wire_fmt mock_openai_chat_fmt;
/* POST /openai/deployments/{deployment}/chat/completions */
extern const mock_wire_fmt mock_openai_azure_fmt;
/* POST /v1/completions */
extern const mock_wire_fmt mock_openai_completions_fmt;
/* POST /v1/embeddings */
extern const mock_wire_fmt mock_openai_embeddings_fmt;

/* "length" when max_tokens cut the reply short, "tool_calls" for a tool
 * call, else "stop". */
const char *mock_reply_finish_reason(const mock_reply *r);

/* mock_openai_render_error appends {"error":{...}}; code NULL gives null. */
void mock_openai_render_error(mock_buf *b, const char *msg, const char *type,
                              const char *code);

/* The GET /v1/models body; a static string. */
const char *mock_openai_models_json(void);

#endif
