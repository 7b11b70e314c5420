/* mock_anthropic.h - Anthropic Messages API wire format for the mock LLM
 * (POST /v1/messages): request parsing, message and SSE event rendering,
 * error bodies. Pure functions; thread-safe. Called by mock_server.c
 * through the table below. */
#ifndef MOCK_ANTHROPIC_H
#define MOCK_ANTHROPIC_H

#include "mock_wire.h"

extern const mock_wire_fmt mock_anthropic_fmt;

#endif
