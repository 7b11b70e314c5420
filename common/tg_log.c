#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char  *tg_log_component = "tollgate";
static tg_log_level tg_log_min       = TG_LOG_INFO;

void
tg_log_init(const char *component, tg_log_level min)
{
    const char *env = getenv("TG_LOG_LEVEL");

    tg_log_component = component;
    tg_log_min       = min;
    if (env != NULL) {
        if (strcasecmp(env, "debug") == 0) {
            tg_log_min = TG_LOG_DEBUG;
        } else if (strcasecmp(env, "info") == 0) {
            tg_log_min = TG_LOG_INFO;
        } else if (strcasecmp(env, "warn") == 0) {
            tg_log_min = TG_LOG_WARN;
        } else if (strcasecmp(env, "error") == 0) {
            tg_log_min = TG_LOG_ERROR;
        }
    }
}

void
tg_log(tg_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char               line[2048];
    struct timespec    ts;
    struct tm          tm;
    va_list            ap;
    int                n;

    if (lvl < tg_log_min) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[lvl],
                 tg_log_component);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    /* One write(2) per record keeps lines whole across threads. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere left to report it */
    }
}
