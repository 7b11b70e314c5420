/* tg_log.h - one-line log records on stderr.
 * Thread-safe (one write per record). Never pass secrets or prompt text. */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum tg_log_level {
    TG_LOG_DEBUG = 0,
    TG_LOG_INFO,
    TG_LOG_WARN,
    TG_LOG_ERROR,
} tg_log_level;

/* tg_log_init sets the component name shown on every line and the minimum
 * level; TG_LOG_LEVEL (debug|info|warn|error) in the environment overrides. */
void tg_log_init(const char *component, tg_log_level min);

/* tg_log_json makes every record one JSON object a line (config
 * "log_format": "json"): time, level, component, msg, and request_id and
 * trace_id when the thread works on a request (tg_log_context). Call it
 * before threads start. */
void tg_log_json(bool on);

/* tg_log_context names the request this thread works on from now (NULL or
 * "": none), for JSON records. */
void tg_log_context(const char *request_id, const char *trace_id);

/* tg_log writes one record: the formatted message has every control byte
 * (below 0x20, 0x7f), the backslash, the UTF-8 C1 controls U+0080..U+009F
 * and the bidirectional overrides and isolates (U+200E/F, U+202A..U+202E,
 * U+2066..U+2069) escaped as \n, \t, \r, \\, \xHH or \uHHHH, and every
 * byte that is not part of valid UTF-8 as \xHH, so text a client sent can
 * neither forge a second record, nor drive or reorder the terminal, nor
 * pass for an escape. Records over 2 KiB are cut. */
void tg_log(tg_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* tg_log_mhd is libmicrohttpd's MHD_OPTION_EXTERNAL_LOGGER for every
 * HTTP server here: one warning per message, prefixed with prefix (a
 * string, the logger's cls), so MHD never writes to stderr itself. */
void tg_log_mhd(void *prefix, const char *fmt, va_list ap);

/* tg_log_escape copies src into dst (cap > 0 bytes, always NUL-terminated)
 * with control characters escaped as tg_log does; an escape is never cut
 * in half. Returns the length written. For any untrusted text printed on
 * one line: log records, table cells. */
size_t tg_log_escape(char *dst, size_t cap, const char *src);

#define tg_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_info(...) tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
