/* dp_anthropic.h - the translations between the OpenAI chat completions
 * format and Anthropic's Messages API, in all four directions, streams
 * included: an OpenAI client at an Anthropic backend (dp_anth_backend.h)
 * and an Anthropic client at an OpenAI-format backend (dp_anth_client.h),
 * over the vocabulary they share (dp_anth_wire.h). One include for code
 * that uses both. */
#ifndef DP_ANTHROPIC_H
#define DP_ANTHROPIC_H

#include "dp_anth_backend.h"
#include "dp_anth_client.h"
#include "dp_anth_wire.h"

#endif
