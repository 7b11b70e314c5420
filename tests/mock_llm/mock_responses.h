/* mock_responses.h - the OpenAI Responses API wire format for the mock
 * LLM (POST /v1/responses). Pure functions; thread-safe. Called by
 * mock_server.c through its mock_wire_fmt table. */
#ifndef MOCK_RESPONSES_H
#define MOCK_RESPONSES_H

#include "mock_wire.h"

extern const mock_wire_fmt mock_responses_fmt;

#endif
