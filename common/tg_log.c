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

size_t
tg_log_escape(char *dst, size_t cap, const char *src)
{
    static const char    hex[] = "0123456789abcdef";
    const unsigned char *s     = (const unsigned char *)src;
    size_t               n     = 0;

    for (; *s != '\0'; s++) {
        char     esc[6];
        size_t   len = 2;
        unsigned ch  = *s;

        esc[0] = '\\';
        if (ch == '\n' || ch == '\t' || ch == '\r') {
            esc[1] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
        } else if (ch < 0x20 || ch == 0x7f) {
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 0xf];
            len    = 4;
        } else if (ch == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
            /* U+0080..U+009F: 8-bit CSI and friends for a UTF-8 terminal */
            ch = *++s;
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 0xf];
            len    = 6;
        } else {
            esc[0] = (char)ch;
            len    = 1;
        }
        if (n + len >= cap) {
            break;
        }
        memcpy(dst + n, esc, len);
        n += len;
    }
    dst[n] = '\0';
    return n;
}

void
tg_log(tg_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char               line[2048];
    char               msg[2048];
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
    if (n < 0 || n > (int)sizeof(line) - 2) {
        n = n < 0 ? 0 : (int)sizeof(line) - 2;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Escaped after formatting: a client's text arrives through %s. */
    n += (int)tg_log_escape(line + n, sizeof(line) - (size_t)n - 1, msg);
    line[n++] = '\n';
    /* One write(2) per record keeps lines whole across threads. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere left to report it */
    }
}
