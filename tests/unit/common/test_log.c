/* common.log - one tg_log call is one line on stderr, whatever the message
 * holds: a client's newline cannot forge a record, an ANSI escape never
 * reaches the terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_log.h"
#include "tg_unit.h"

static char g_out[8192];

/* capture runs one tg_log call with stderr on a pipe; g_out gets the bytes. */
#define capture(...)                                                           \
    do {                                                                       \
        int     fds[2];                                                        \
        int     saved = dup(STDERR_FILENO);                                    \
        ssize_t got;                                                           \
        CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);                                   \
        dup2(fds[1], STDERR_FILENO);                                           \
        close(fds[1]);                                                         \
        tg_log(__VA_ARGS__);                                                   \
        dup2(saved, STDERR_FILENO);                                            \
        close(saved);                                                          \
        got = read(fds[0], g_out, sizeof(g_out) - 1);                          \
        close(fds[0]);                                                         \
        g_out[got > 0 ? got : 0] = '\0';                                       \
    } while (0)

static size_t
count(const char *s, int ch)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        n += *s == ch;
    }
    return n;
}

static void
test_forged_line_and_ansi(void)
{
    const char *user = "mallory\n2026-01-01T00:00:00.000Z error tollgate: "
                       "forged\x1b[2J\r\tend\x7f\x01";

    capture(TG_LOG_WARN, "unknown user %s", user);
    CU_ASSERT_EQUAL(count(g_out, '\n'), 1);
    CU_ASSERT_EQUAL(g_out[strlen(g_out) - 1], '\n');
    CU_ASSERT_PTR_NULL(strchr(g_out, '\x1b'));
    CU_ASSERT_PTR_NULL(strchr(g_out, '\r'));
    CU_ASSERT_PTR_NULL(strchr(g_out, '\t'));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, " warn test: unknown user mallory"
                                         "\\n2026-01-01T00:00:00.000Z error "
                                         "tollgate: forged\\x1b[2J\\r\\tend"
                                         "\\x7f\\x01\n"));
}

static void
test_plain_text_unchanged(void)
{
    /* UTF-8 text and quotes pass; a backslash is doubled, so a client's
     * literal "\n" cannot pass for an escaped newline. */
    capture(TG_LOG_ERROR, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 %d %s",
            42, "a\\b \"q\" \\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, " error test: caf\xc3\xa9 \xe2\x82\xac "
                                         "\xf0\x9f\x98\x80 42 a\\\\b \"q\" "
                                         "\\\\n\n"));
}

static void
test_invalid_utf8_and_bidi(void)
{
    /* A lone 8-bit CSI, a truncated sequence, an overlong slash, a
     * surrogate; then RIGHT-TO-LEFT OVERRIDE and an isolate. */
    capture(TG_LOG_INFO, "a\x9b"
                         "2J b\xe2\x82 c\xc0\xaf d\xed\xa0\x80 "
                         "e\xe2\x80\xae"
                         "gnp.exe f\xe2\x81\xa6");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, ": a\\x9b2J b\\xe2\\x82 c\\xc0\\xaf "
                                         "d\\xed\\xa0\\x80 e\\u202egnp.exe "
                                         "f\\u2066\n"));
}

static void
test_c1_controls(void)
{
    /* U+009B is CSI on a UTF-8 terminal. */
    capture(TG_LOG_INFO, "x\xc2\x9b"
                         "2Jy");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_out, ": x\\u009b2Jy\n"));
}

static void
test_long_message_stays_one_line(void)
{
    char big[4096];

    for (size_t i = 0; i < sizeof(big) - 1; i++) {
        big[i] = i % 2 ? '\n' : 'a';
    }
    big[sizeof(big) - 1] = '\0';
    capture(TG_LOG_INFO, "%s", big);
    CU_ASSERT_EQUAL(count(g_out, '\n'), 1);
    CU_ASSERT_TRUE(strlen(g_out) <= 2048);
    /* never half an escape before the newline */
    CU_ASSERT_NOT_EQUAL(g_out[strlen(g_out) - 2], '\\');
}

static void
test_escape_bounds(void)
{
    char buf[8];

    CU_ASSERT_EQUAL(tg_log_escape(buf, sizeof(buf),
                                  "ab\x1b"
                                  "cdef"),
                    7);
    CU_ASSERT_STRING_EQUAL(buf, "ab\\x1bc");
    CU_ASSERT_EQUAL(tg_log_escape(buf, 4, "ab\ncd"), 2);
    CU_ASSERT_STRING_EQUAL(buf, "ab");
    CU_ASSERT_EQUAL(tg_log_escape(buf, 1, "x"), 0);
    CU_ASSERT_STRING_EQUAL(buf, "");
}

static const tg_unit_case cases[] = {
    {"forged_line_and_ansi", test_forged_line_and_ansi},
    {"plain_text_unchanged", test_plain_text_unchanged},
    {"c1_controls", test_c1_controls},
    {"invalid_utf8_and_bidi", test_invalid_utf8_and_bidi},
    {"long_message_stays_one_line", test_long_message_stays_one_line},
    {"escape_bounds", test_escape_bounds},
    {NULL, NULL},
};

int
main(void)
{
    unsetenv("TG_LOG_LEVEL");
    tg_log_init("test", TG_LOG_DEBUG);
    return tg_unit_run("common.log", cases);
}
