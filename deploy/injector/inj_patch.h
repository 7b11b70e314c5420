/* inj_patch.h - RFC 6902 JSON Patch: building "add" operations with RFC
 * 6901 pointers (a key's "~" and "/" escaped as "~0" and "~1"), and
 * applying "add" and "replace" to a cJSON document, so `render` shows what
 * the API server will make of a patch. Pure; not thread-safe per patch. */
#ifndef INJ_PATCH_H
#define INJ_PATCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg_err.h"

/* inj_ptr_escape writes key as one pointer token into out (cap bytes,
 * NUL-terminated). TG_ETOOBIG when it does not fit (out is then ""). */
tg_err inj_ptr_escape(char *out, size_t cap, const char *key)
    __attribute__((warn_unused_result));

/* inj_patch_add appends {"op":"add","path":path,"value":value} to ops (a
 * cJSON array). Takes: value, also on failure (it is then freed).
 * TG_ENOMEM when the operation cannot be made. */
tg_err inj_patch_add(cJSON *ops, const char *path, cJSON *value)
    __attribute__((warn_unused_result));

/* inj_patch_apply applies ops (an array of "add"/"replace" operations, in
 * order) to doc. Another op, a pointer that does not resolve, or an array
 * index out of range fails with TG_EINVAL and a message in err naming the
 * operation; doc may then hold the operations before it. Borrows ops. */
tg_err inj_patch_apply(cJSON *doc, const cJSON *ops, char *err, size_t errlen);

#endif
