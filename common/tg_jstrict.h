/* tg_jstrict.h - the one strict reading of a JSON request body that both
 * the policy decision and the provider see. cJSON (what parses the body
 * afterwards) takes the first of two members with the same name, where
 * providers take the last; it reads a string up to an escaped NUL; it
 * ignores bytes after the value and copies invalid UTF-8. Any of those
 * would let a client have one request judged and another one served, so a
 * body is checked here first and refused whole when it has any. Pure and
 * thread-safe. Called by the data plane's request parsing. */
#ifndef TG_JSTRICT_H
#define TG_JSTRICT_H

#include <stdbool.h>
#include <stddef.h>

#include "tg_err.h"

/* Deepest nesting of arrays and objects a body may have. */
#define TG_JSTRICT_DEPTH 64

/* tg_jstrict_check reads text as exactly one JSON value (RFC 8259) with
 * nothing but whitespace after it, where additionally every byte is valid
 * UTF-8 (no overlong forms, no surrogates, at most U+10FFFF), no string
 * holds \u0000 or a lone surrogate escape, no object has two members with
 * the same name (compared after unescaping, so "a" and "\u0061" are the
 * same), every number fits a double, and nesting is at most
 * TG_JSTRICT_DEPTH. TG_OK when it does. TG_EINVAL otherwise: path gets
 * the offending field as a client names it ("messages[2].content", "" for
 * the body itself) and msg what is wrong and at which byte. TG_ENOMEM
 * when scratch memory runs out. */
tg_err tg_jstrict_check(const char *text, size_t len, char *path,
                        size_t pathcap, char *msg, size_t msgcap);

/* tg_utf8_valid is the length of the longest prefix of s that is valid
 * UTF-8 (len when all of it is). */
size_t tg_utf8_valid(const char *s, size_t len);

/* tg_utf8_scrub writes s into out (cap bytes, always NUL-terminated when
 * cap > 0) with every invalid UTF-8 sequence and every NUL replaced by
 * U+FFFD, cutting at a character boundary: safe to put into JSON text. */
void tg_utf8_scrub(const char *s, size_t len, char *out, size_t cap);

#endif
