/* tg_log.h - one-line log records on stderr.
 * Thread-safe (one write per record). Never pass secrets or prompt text. */
#ifndef TG_LOG_H
#define TG_LOG_H

typedef enum tg_log_level {
    TG_LOG_DEBUG = 0,
    TG_LOG_INFO,
    TG_LOG_WARN,
    TG_LOG_ERROR,
} tg_log_level;

/* tg_log_init sets the component name shown on every line and the minimum
 * level; TG_LOG_LEVEL (debug|info|warn|error) in the environment overrides. */
void tg_log_init(const char *component, tg_log_level min);

void tg_log(tg_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tg_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_info(...) tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
