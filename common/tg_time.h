/* tg_time.h - clocks. Thread-safe. */
#ifndef TG_TIME_H
#define TG_TIME_H

#include <stdint.h>

/* tg_now_ms returns wall-clock unix milliseconds. */
int64_t tg_now_ms(void);

/* tg_mono_us returns a monotonic clock in microseconds, for durations. */
int64_t tg_mono_us(void);

#endif
