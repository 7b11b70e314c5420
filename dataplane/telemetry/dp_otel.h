/* dp_otel.h - the OpenTelemetry trace exporter: spans submitted from any
 * thread go into a bounded queue (never blocking: a full queue drops the
 * span and counts it); one exporter thread sends them in batches as OTLP
 * protobuf over HTTP (POST to dataplane.otel.endpoint, e.g.
 * http://collector:4318/v1/traces) with libcurl, every flush_ms or once
 * batch_max are waiting. A batch the collector does not take is retried
 * once, then counted as failed. Thread-safe. */
#ifndef DP_OTEL_H
#define DP_OTEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_config.h"
#include "tg_err.h"

#define DP_OTEL_ATTRS_MAX 32

typedef enum dp_otel_type {
    DP_OTEL_STR = 0,
    DP_OTEL_INT,
    DP_OTEL_BOOL,
    DP_OTEL_STRS, /* a list: s holds n strings, each NUL-ended */
} dp_otel_type;

typedef enum dp_otel_kind {
    DP_OTEL_INTERNAL = 1,
    DP_OTEL_SERVER   = 2,
    DP_OTEL_CLIENT   = 3,
} dp_otel_kind;

typedef struct dp_otel_attr {
    const char  *key; /* a string literal */
    dp_otel_type type;
    int64_t      i;
    char        *s; /* owned */
    size_t       len;
    uint32_t     n;
} dp_otel_attr;

typedef struct dp_otel_span dp_otel_span;
struct dp_otel_span {
    dp_otel_span *next;
    uint8_t       trace_id[16];
    uint8_t       span_id[8];
    uint8_t       parent_id[8];
    bool          has_parent;
    char          name[160];
    dp_otel_kind  kind;
    int64_t       start_ns; /* unix nanoseconds */
    int64_t       end_ns;
    bool          error;
    char          status_msg[160];
    dp_otel_attr  attrs[DP_OTEL_ATTRS_MAX];
    uint32_t      n_attrs;
};

typedef struct dp_otel dp_otel;

/* dp_otel_span_new makes an empty span (NULL: out of memory); the setters
 * below copy their values and do nothing once the span is full. */
dp_otel_span *dp_otel_span_new(void);
void          dp_otel_span_free(dp_otel_span *s); /* NULL-safe */
void dp_otel_str(dp_otel_span *s, const char *key, const char *v, size_t len);
void dp_otel_int(dp_otel_span *s, const char *key, int64_t v);
void dp_otel_bool(dp_otel_span *s, const char *key, bool v);
void dp_otel_strs(dp_otel_span *s, const char *key, const char *const *v,
                  uint32_t n);

/* dp_otel_random fills n bytes with random ids (never all zeros). */
void dp_otel_random(uint8_t *out, size_t n);

/* dp_otel_encode writes spans[0..n) as one ExportTraceServiceRequest of
 * service into out (replacing its content). */
tg_err dp_otel_encode(dp_otel_span *const *spans, size_t n, const char *service,
                      tg_buf *out);

/* dp_otel_start starts the exporter for cfg (borrowed until stop).
 * Owns: *out. */
tg_err dp_otel_start(dp_otel **out, const tg_otel_config *cfg);

/* dp_otel_submit hands s over (taken in every case); dropped, counted,
 * when the queue is full or o is NULL or stopping. */
void dp_otel_submit(dp_otel *o, dp_otel_span *s);

/* dp_otel_stop sends what is queued (within the timeout) and frees o.
 * NULL-safe. */
void dp_otel_stop(dp_otel *o);

/* Counters since start, for /metrics. */
typedef struct dp_otel_stats {
    uint64_t exported;
    uint64_t dropped; /* queue full */
    uint64_t failed;  /* the collector did not take them */
    uint64_t queued;
} dp_otel_stats;
void dp_otel_stats_get(dp_otel *o, dp_otel_stats *out);

#endif
