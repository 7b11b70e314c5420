#include "tg_time.h"

#include <stdio.h>
#include <time.h>

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
