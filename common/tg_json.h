/* tg_json.h - cJSON documents that remember where each value came from, so
 * config and policy errors can say file:line:col. Also typed getters that
 * produce those errors. A doc is immutable after load: thread-safe to read. */
#ifndef TG_JSON_H
#define TG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_err.h"

typedef struct tg_json_doc tg_json_doc;

/* tg_json_doc_load reads and parses the file at path (at most max_bytes).
 * On failure returns TG_ECONFIG / TG_EIO / TG_ETOOBIG and writes
 * "path:line:col: what is wrong" into err.
 * Owns: *out, free with tg_json_doc_destroy. */
tg_err tg_json_doc_load(tg_json_doc **out, const char *path, size_t max_bytes,
                        char *err, size_t errlen);

/* tg_json_doc_parse is tg_json_doc_load for text in memory; name is used in
 * messages. Borrows text until return. */
tg_err tg_json_doc_parse(tg_json_doc **out, const char *name, const char *text,
                         size_t len, char *err, size_t errlen);

void tg_json_doc_destroy(tg_json_doc *doc);

/* Borrowed: valid until tg_json_doc_destroy. */
const cJSON *tg_json_doc_root(const tg_json_doc *doc);
const char  *tg_json_doc_name(const tg_json_doc *doc);

/* tg_json_doc_pos gives the 1-based line and column where node starts (for
 * an object member: where its key starts); 0,0 if unknown. */
void tg_json_doc_pos(const tg_json_doc *doc, const cJSON *node, int *line,
                     int *col);

/* tg_json_doc_number_text is the literal source text of a number that is
 * an object member or array element ("12.50", "1e3"), so an exact decimal
 * can be read without going through a double; NULL for any other node.
 * Borrowed: valid until tg_json_doc_destroy. */
const char *tg_json_doc_number_text(const tg_json_doc *doc, const cJSON *node);

/* tg_json_errf writes "name:line:col: <message>" into err. Returns
 * TG_ECONFIG so callers can `return tg_json_errf(...)`. */
tg_err tg_json_errf(const tg_json_doc *doc, const cJSON *node, char *err,
                    size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* tg_json_text_pos converts a byte offset in text to 1-based line/col. */
void tg_json_text_pos(const char *text, size_t offset, int *line, int *col);

/* tg_json_only_keys fails on the first member of obj not named in allowed
 * (NULL-terminated) and on duplicate members; ctx names obj in the message
 * ("dataplane", "deployments[2]"). */
tg_err tg_json_only_keys(const tg_json_doc *doc, const cJSON *obj,
                         const char *ctx, const char *const allowed[],
                         char *err, size_t errlen);

/* tg_json_whole reads v as a whole number in [min, max]: false if v is not
 * a number, has a fraction, or is out of range. Use it rather than casting
 * valuedouble, which is undefined behaviour for values out of int64_t's
 * range. NULL-safe. */
bool tg_json_whole(const cJSON *v, int64_t min, int64_t max, int64_t *out);

/* Typed getters. A missing member leaves *out unchanged and succeeds unless
 * required; a member of the wrong type or out of range is an error naming
 * ctx.key and what was expected. Strings are borrowed from the doc. */
tg_err tg_json_get_string(const tg_json_doc *doc, const cJSON *obj,
                          const char *ctx, const char *key, bool required,
                          const char **out, char *err, size_t errlen);
tg_err tg_json_get_int(const tg_json_doc *doc, const cJSON *obj,
                       const char *ctx, const char *key, bool required,
                       int64_t min, int64_t max, int64_t *out, char *err,
                       size_t errlen);
tg_err tg_json_get_bool(const tg_json_doc *doc, const cJSON *obj,
                        const char *ctx, const char *key, bool required,
                        bool *out, char *err, size_t errlen);

#endif
