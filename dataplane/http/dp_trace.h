/* dp_trace.h - a request's trace: its W3C trace context (the client's
 * traceparent honoured, passed on to the provider with each attempt's span
 * as parent) and, when dataplane.otel is set, its spans following the
 * OpenTelemetry GenAI semantic conventions: the request (SERVER), the PDP
 * decision (INTERNAL) and one per upstream attempt (CLIENT), with message
 * content only when the request's capture level is full. Worker thread. */
#ifndef DP_TRACE_H
#define DP_TRACE_H

#include "dp_host.h"
#include "dp_req.h"

/* dp_trace_begin gives r its trace id (the client's, or a new one when
 * traces are exported) and span id. */
void dp_trace_begin(const dp_host *h, dp_req *r);

/* dp_trace_attempt_start records the attempt r starts on up (upstream
 * index) and adds its traceparent to the upstream request. */
void dp_trace_attempt_start(const dp_host *h, dp_req *r, uint32_t up);

/* dp_trace_attempt_end closes r's current attempt. */
void dp_trace_attempt_end(dp_req *r, bool ok, const char *why);

/* dp_trace_finish_reason notes the finish reason in bytes the client is
 * sent (a response or stream events), once. */
void dp_trace_finish_reason(dp_req *r, const char *data, size_t len);

/* dp_trace_end submits r's spans (answered with status) to the exporter. */
void dp_trace_end(const dp_host *h, dp_req *r, unsigned status);

#endif
