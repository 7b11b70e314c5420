/* tg_gen.h - the PDP's state generation, shared with the data planes on
 * its host: a counter in a small file beside each ipc socket
 * ("<socket path>.gen"), mapped by every process that uses it. The PDP,
 * and the command line writing the same store, add one after every
 * committed change that can alter a decision (keys, tenants, quotas,
 * lists, the bundle in effect); a data plane that reuses decisions
 * (dp_reuse) reads it before every reuse, so a change is seen by the next
 * request, without a message. The file is 4096 bytes: a magic number,
 * then the counter (little-endian uint64 at offset 8), read and written
 * atomically through the mapping. Thread-safe. */
#ifndef TG_GEN_H
#define TG_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

typedef struct tg_gen tg_gen;

/* tg_gen_path writes the generation file's path for a PDP url into buf:
 * "<path>.gen" for "ipc://<path>"; TG_EINVAL for any other scheme (a PDP
 * across the network shares no file), TG_ETOOBIG when it does not fit. */
tg_err tg_gen_path(const char *url, char *buf, size_t cap);

/* tg_gen_open_rw opens path for adding to it, creating it (mode 0644) when
 * it does not exist and create is set (else TG_ENOTFOUND). TG_ESYS (errno
 * set) when it cannot be opened or mapped; TG_ECORRUPT when it exists but
 * is not a generation file. Owns: *out, free with tg_gen_close. */
tg_err tg_gen_open_rw(tg_gen **out, const char *path, bool create);

/* tg_gen_open_ro opens path for reading only. It must be a regular file
 * owned by owner_uid (-1: our own uid; not root, unless that is the
 * owner: a file left by another user is one the PDP cannot raise) and
 * writable by nobody else: TG_ECONFIG otherwise (another local user could
 * otherwise keep a stale decision alive). TG_ENOTFOUND when it does not
 * exist (yet). */
tg_err tg_gen_open_ro(tg_gen **out, const char *path, int64_t owner_uid);

void tg_gen_close(tg_gen *g); /* NULL-safe */

/* tg_gen_bump adds one (after the change is committed). */
void tg_gen_bump(tg_gen *g);

/* tg_gen_load reads the counter. */
uint64_t tg_gen_load(const tg_gen *g);

/* tg_gen_still_there: path still names the file g mapped (not removed or
 * replaced since). */
bool tg_gen_still_there(const tg_gen *g);

#endif
