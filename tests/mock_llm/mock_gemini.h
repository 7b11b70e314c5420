/* mock_gemini.h - Google Gemini generateContent wire format for the mock
 * LLM (POST /v1beta/models/{model}:generateContent,
 * :streamGenerateContent?alt=sse and :batchEmbedContents): request parsing, response and SSE event
 * rendering, error bodies. Pure functions; thread-safe. Called by
 * mock_server.c through the table below. */
#ifndef MOCK_GEMINI_H
#define MOCK_GEMINI_H

#include "mock_wire.h"

extern const mock_wire_fmt mock_gemini_fmt;

/* POST /v1beta/models/{model}:batchEmbedContents */
extern const mock_wire_fmt mock_gemini_embed_fmt;

#endif
