/* inj_yaml.h - reads a Kubernetes manifest (YAML or JSON) into a cJSON
 * tree. YAML goes through libyaml's event parser: quoted scalars stay
 * strings; plain true/false, null/~/empty, integers and decimals become
 * JSON types; block and flow maps and sequences nest up to INJ_YAML_DEPTH.
 * Refused with a line:col message: anchors and aliases, a second document,
 * a non-scalar or duplicate key, a NUL in a string, invalid UTF-8.
 * JSON (text starting with '{' or '[') is read strictly (tg_jstrict).
 * Pure and thread-safe. Called by `render` and the tests. */
#ifndef INJ_YAML_H
#define INJ_YAML_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg_err.h"

#define INJ_YAML_DEPTH 64

/* inj_yaml_parse converts text (len bytes, one document) into *out.
 * TG_EINVAL with "line:col: what is wrong" in err for input it refuses,
 * TG_ENOMEM when memory runs out. Owns: *out, free with cJSON_Delete. */
tg_err inj_yaml_parse(const char *text, size_t len, cJSON **out, char *err,
                      size_t errlen);

/* inj_manifest_parse is inj_yaml_parse, or the strict JSON reading when
 * the first non-blank byte is '{' or '['. Same contract. */
tg_err inj_manifest_parse(const char *text, size_t len, cJSON **out, char *err,
                          size_t errlen);

#endif
