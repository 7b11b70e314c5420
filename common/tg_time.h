/* tg_time.h - clocks. Thread-safe. */
#ifndef TG_TIME_H
#define TG_TIME_H

#include <stddef.h>
#include <stdint.h>

/* tg_now_ms returns wall-clock unix milliseconds. */
int64_t tg_now_ms(void);

/* tg_mono_us returns a monotonic clock in microseconds, for durations. */
int64_t tg_mono_us(void);

/* tg_format_reset writes a duration in ms as OpenAI's x-ratelimit-reset-*
 * headers do: "0s", "20ms" (under a second), "17s", "6m0s", "1h2m3s"
 * (whole seconds, rounded up). Always NUL-terminates buf (cap > 0). */
void tg_format_reset(int64_t ms, char *buf, size_t cap);

#endif
