/* golden.h - golden transcripts for the translation tests: each JSON file
 * in tests/unit/dataplane/providers/golden/<set>/ is one case or an array of cases
 * {"kind", "name"?, ...}; helpers to run the cases of one kind and compare
 * bodies as JSON values and streams byte for byte. Test code only. */
#ifndef GOLDEN_H
#define GOLDEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_err.h"

typedef void (*golden_fn)(const char *name, const cJSON *c);

/* golden_each runs fn on every case of kind in golden/<set>/ (in file
 * name order) and returns how many there were; a directory without cases
 * or a file that is not JSON fails the test. */
int golden_each(const char *set, const char *kind, golden_fn fn);

/* Reading a case: a member, a string member (dflt when absent), an
 * integer member (0 when absent). */
const cJSON *golden_get(const cJSON *o, const char *key);
const char  *golden_gets_or(const cJSON *o, const char *key,
                            const char *dflt);
int64_t      golden_geti(const cJSON *o, const char *key);

/* golden_same_json asserts that got (text) equals expected as a JSON
 * value; golden_same_text that two texts are equal. Both show the two
 * sides when they differ. */
void golden_same_json(const char *label, const char *got,
                      const cJSON *expected);
void golden_same_text(const char *label, const char *got,
                      const char *expected);

/* golden_check_request asserts that a request translation ended as case
 * c says: its "error" ({"param", "contains"}) as TG_EINVAL with that param
 * and a message containing that text, else TG_OK with its "expected" body
 * in out (len bytes). Frees out. */
void golden_check_request(const char *label, const cJSON *c, tg_err rv,
                          const char *msg, const char *param, char *out,
                          size_t len);

#endif
