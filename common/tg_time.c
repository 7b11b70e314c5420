#include "tg_time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TG_WHEN_AGO_MAX_MS ((int64_t)36600 * 86400000) /* a century */

int64_t
tg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
tg_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
tg_format_reset(int64_t ms, char *buf, size_t cap)
{
    int64_t s;

    if (ms <= 0) {
        snprintf(buf, cap, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(buf, cap, "%lldms", (long long)ms);
        return;
    }
    s = (ms + 999) / 1000;
    if (s < 60) {
        snprintf(buf, cap, "%llds", (long long)s);
    } else if (s < 3600) {
        snprintf(buf, cap, "%lldm%llds", (long long)(s / 60),
                 (long long)(s % 60));
    } else {
        snprintf(buf, cap, "%lldh%lldm%llds", (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60));
    }
}

/* tg_days_from_civil is days since 1970-01-01 of a proleptic
 * Gregorian date (H. Hinnant's algorithm; exact, no time zone). */
int64_t
tg_days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

void
tg_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t  era;
    unsigned doe;
    unsigned yoe;
    unsigned doy;
    unsigned mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp  = (5 * doy + 2) / 153;
    *d  = doy - (153 * mp + 2) / 5 + 1;
    *m  = mp < 10 ? mp + 3 : mp - 9;
    *y  = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* tg_time_digits reads exactly n decimal digits at s. */
static bool
tg_time_digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* tg_parse_date parses a date bound: YYYY-MM-DD (a whole UTC day) or
 * an RFC 3339 date-time (an instant). The result is the range bound in unix
 * ms: for --from the first ms included, for --to the first ms after the
 * range (the day's end, or the instant's ms + 1). */
bool
tg_parse_date(const char *s, bool is_to, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int              y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    int64_t          ms   = 0;
    int64_t          off  = 0; /* seconds east of UTC */
    bool             frac = false;
    bool             leap;
    const char      *p = s + 10;

    if (strlen(s) < 10 || !tg_time_digits(s, 4, &y) || s[4] != '-' ||
        !tg_time_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !tg_time_digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1) {
        return false;
    }
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap ? 1 : 0)) {
        return false;
    }
    if (*p == '\0') {
        *out = (tg_days_from_civil(y, mo, d) + (is_to ? 1 : 0)) * 86400000;
        return true;
    }
    if ((*p != 'T' && *p != 't') || !tg_time_digits(p + 1, 2, &h) ||
        p[3] != ':' || !tg_time_digits(p + 4, 2, &mi) || p[6] != ':' ||
        !tg_time_digits(p + 7, 2, &sec) || h > 23 || mi > 59 || sec > 60) {
        return false;
    }
    p += 9;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 3) {
                ms = ms * 10 + (*p - '0');
            } else if (*p != '0') {
                frac = true; /* below a millisecond */
            }
        }
        if (n == 0) {
            return false;
        }
        for (; n < 3; n++) {
            ms *= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && tg_time_digits(p + 1, 2, &oh) &&
               p[3] == ':' && tg_time_digits(p + 4, 2, &om) && oh <= 23 &&
               om <= 59) {
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0') {
        return false;
    }
    ms += ((tg_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
           off) *
          1000;
    /* --from includes the first whole ms at or after the instant; --to
     * includes every ms up to it. */
    *out = is_to ? ms + 1 : ms + (frac ? 1 : 0);
    return true;
}

bool
tg_parse_when(const char *s, bool is_to, int64_t now_ms, int64_t *out)
{
    int64_t day = now_ms / 86400000 - (now_ms % 86400000 < 0 ? 1 : 0);
    int64_t n   = 0;
    int64_t unit;
    size_t  len = strlen(s);

    if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
        day -= s[0] == 'y' ? 1 : 0;
        *out = (day + (is_to ? 1 : 0)) * 86400000;
        return true;
    }
    if (len < 2 || len > 7 || strspn(s, "0123456789") != len - 1 ||
        (s[len - 1] != 'd' && s[len - 1] != 'h')) {
        return tg_parse_date(s, is_to, out);
    }
    unit = s[len - 1] == 'd' ? 86400000 : 3600000;
    for (size_t i = 0; i + 1 < len; i++) {
        n = n * 10 + (s[i] - '0');
    }
    if (n * unit > TG_WHEN_AGO_MAX_MS) {
        return false;
    }
    /* An instant, like an RFC 3339 one: --to includes it. */
    *out = now_ms - n * unit + (is_to ? 1 : 0);
    return true;
}

void
tg_timespec_after(struct timespec *ts, int clock, int64_t ms)
{
    clock_gettime((clockid_t)clock, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
