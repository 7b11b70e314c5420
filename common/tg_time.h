/* tg_time.h - clocks. Thread-safe. */
#ifndef TG_TIME_H
#define TG_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tg_now_ms returns wall-clock unix milliseconds. */
int64_t tg_now_ms(void);

/* tg_mono_us returns a monotonic clock in microseconds, for durations. */
int64_t tg_mono_us(void);

/* tg_timespec_after sets *ts to ms milliseconds from now on clock (the
 * clock of the condition variable it is a pthread_cond_timedwait deadline
 * for: CLOCK_REALTIME by default, CLOCK_MONOTONIC when so set). */
struct timespec;
void tg_timespec_after(struct timespec *ts, int clock, int64_t ms);

/* tg_format_reset writes a duration in ms as OpenAI's x-ratelimit-reset-*
 * headers do: "0s", "20ms" (under a second), "17s", "6m0s", "1h2m3s"
 * (whole seconds, rounded up). Always NUL-terminates buf (cap > 0). */
void tg_format_reset(int64_t ms, char *buf, size_t cap);

/* tg_days_from_civil is days since 1970-01-01 of a proleptic Gregorian
 * date (exact, no time zone). */
int64_t tg_days_from_civil(int64_t y, int m, int d);

/* tg_civil_from_days is the inverse: the y/m/d of day z since 1970-01-01. */
void tg_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* tg_parse_date parses YYYY-MM-DD (a whole UTC day) or an RFC 3339
 * date-time (an instant) as a range bound in unix ms: with is_to false the
 * first ms included (the day's start), with is_to true the first ms after
 * the range (the day's end, or the instant's ms + 1). False when s is not
 * such a date. */
bool tg_parse_date(const char *s, bool is_to, int64_t *out);

/* tg_parse_when is tg_parse_date that also reads a bound relative to
 * now_ms: "today" and "yesterday" (whole UTC days, as YYYY-MM-DD is), and
 * "Nd" or "Nh" (the instant N days or hours before now_ms, as an RFC 3339
 * instant is; N at most a century). */
bool tg_parse_when(const char *s, bool is_to, int64_t now_ms, int64_t *out);

#endif
