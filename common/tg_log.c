#include "tg_log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char  *tg_log_component = "tollgate";
static tg_log_level tg_log_min       = TG_LOG_INFO;
static bool         tg_log_as_json   = false;
/* The request this thread works on (tg_log_context); "" when none. */
static _Thread_local char tg_log_rid[72];
static _Thread_local char tg_log_tid[40];

void
tg_log_json(bool on)
{
    tg_log_as_json = on;
}

void
tg_log_context(const char *request_id, const char *trace_id)
{
    snprintf(tg_log_rid, sizeof(tg_log_rid), "%s",
             request_id != NULL ? request_id : "");
    snprintf(tg_log_tid, sizeof(tg_log_tid), "%s",
             trace_id != NULL ? trace_id : "");
}

/* tg_log_json_str appends s as JSON string content to line at n (cap):
 * s is already escaped by tg_log_escape (no control bytes), so only the
 * backslash and the quote need it. Returns the new length. */
static int
tg_log_json_str(char *line, int n, int cap, const char *s)
{
    for (; *s != '\0' && n < cap - 3; s++) {
        if (*s == '\\' || *s == '"') {
            line[n++] = '\\';
        }
        line[n++] = *s;
    }
    return n;
}

/* tg_log_json_line writes the JSON record of an escaped message. */
static int
tg_log_json_line(char *line, int cap, const char *when, const char *level,
                 const char *msg)
{
    int n = snprintf(line, (size_t)cap,
                     "{\"time\":\"%s\",\"level\":\"%s\",\"component\":"
                     "\"%s\",\"msg\":\"",
                     when, level, tg_log_component);

    n = n < 0 || n > cap - 64 ? 0 : n;
    n = tg_log_json_str(line, n, cap - 160, msg);
    n += snprintf(line + n, (size_t)(cap - n), "\"");
    if (tg_log_rid[0] != '\0') {
        n += snprintf(line + n, (size_t)(cap - n), ",\"request_id\":\"");
        n = tg_log_json_str(line, n, cap - 60, tg_log_rid);
        n += snprintf(line + n, (size_t)(cap - n), "\"");
    }
    if (tg_log_tid[0] != '\0') {
        n += snprintf(line + n, (size_t)(cap - n), ",\"trace_id\":\"%s\"",
                      tg_log_tid);
    }
    n += snprintf(line + n, (size_t)(cap - n), "}");
    return n < cap - 1 ? n : cap - 2;
}

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

/* tg_log_utf8 returns the length (2 to 4) of the valid UTF-8 sequence at s
 * and its code point, or 0 if s does not start one. */
static size_t
tg_log_utf8(const unsigned char *s, unsigned *cp)
{
    size_t   len;
    unsigned c, min;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0; /* also stops at the NUL */
        }
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *cp = c;
    return len;
}

/* tg_log_hidden: code points a terminal acts on or that reorder text:
 * C1 controls (8-bit CSI) and the bidirectional overrides and isolates. */
static bool
tg_log_hidden(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t
tg_log_escape(char *dst, size_t cap, const char *src)
{
    static const char    hex[] = "0123456789abcdef";
    const unsigned char *s     = (const unsigned char *)src;
    size_t               n     = 0;

    while (*s != '\0') {
        char     esc[8];
        size_t   len = 2, used = 1, ulen;
        unsigned ch = *s, cp = 0;

        esc[0] = '\\';
        if (ch == '\n' || ch == '\t' || ch == '\r' || ch == '\\') {
            esc[1] = ch == '\n' ? 'n' : ch == '\t' ? 't' : ch == '\r' ? 'r'
                                                               : '\\';
        } else if (ch < 0x20 || ch == 0x7f) {
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 0xf];
            len    = 4;
        } else if (ch < 0x80) {
            esc[0] = (char)ch;
            len    = 1;
        } else if ((ulen = tg_log_utf8(s, &cp)) == 0) {
            /* Not UTF-8: the byte, in hex, so the line stays valid text. */
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 0xf];
            len    = 4;
        } else if (tg_log_hidden(cp)) {
            esc[1] = 'u';
            esc[2] = hex[(cp >> 12) & 0xf];
            esc[3] = hex[(cp >> 8) & 0xf];
            esc[4] = hex[(cp >> 4) & 0xf];
            esc[5] = hex[cp & 0xf];
            len    = 6;
            used   = ulen;
        } else {
            memcpy(esc, s, ulen);
            len  = ulen;
            used = ulen;
        }
        if (n + len >= cap) {
            break;
        }
        memcpy(dst + n, esc, len);
        n += len;
        s += used;
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
    if (tg_log_as_json) {
        char when[96];
        char esc[2048];
        snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        tg_log_escape(esc, sizeof(esc), msg);
        n         = tg_log_json_line(line, (int)sizeof(line), when, names[lvl],
                                     esc);
        line[n++] = '\n';
        if (write(STDERR_FILENO, line, (size_t)n) < 0) {
            /* nowhere left to report it */
        }
        return;
    }
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

void
tg_log_mhd(void *prefix, const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    tg_warn("%s: %s", prefix != NULL ? (const char *)prefix : "http", line);
}
