/* pdp_export.h - `tollgate-pdp export` and `tollgate-pdp import tollgate
 * DIR`: a PDP's state as plain files a team can read without LMDB (JSON
 * lines, a CSV of usage, the decision log as `decisions export` writes it,
 * the bundle files of every activation) with a manifest.json that gives
 * each file's rows and SHA-256, and the way back: those files restored
 * into an empty state directory, so that exporting that state again gives
 * the same bytes. pdp_export.c writes, pdp_import_tollgate.c reads back.
 * Not thread-safe: one command at a time (the store itself is). Nothing
 * here holds or prints a secret: a key is kept as the SHA-256 the store
 * holds; the decision log's signing key stays in the state directory.
 */
#ifndef PDP_EXPORT_H
#define PDP_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_err.h"

#define PDP_EXPORT_FORMAT "tollgate-export"
#define PDP_EXPORT_FORMAT_VERSION 1
#define PDP_EXPORT_MANIFEST "manifest.json"
#define PDP_EXPORT_PUB "decisions.pub"
#define PDP_EXPORT_NAME_MAX 256 /* "bundles/<seq>/<file>" */
#define PDP_EXPORT_FILES_MAX 4096

/* One file of an export, as the manifest lists it. rows: lines of a
 * .jsonl, data lines of usage.csv (the header aside), 0 for the others. */
typedef struct pdp_export_file {
    char     name[PDP_EXPORT_NAME_MAX];
    uint64_t rows;
    uint64_t bytes;
    char     sha256[2 * TG_SHA256_LEN + 1]; /* hex */
} pdp_export_file;

/* What an export wrote, or an import read. */
typedef struct pdp_export_report {
    pdp_export_file *files; /* owned: pdp_export_report_fini */
    size_t           n;
    size_t           cap;
} pdp_export_report;

void pdp_export_report_fini(pdp_export_report *r);

typedef struct pdp_export_opts {
    const char *dir;       /* created, or must be empty */
    const char *state_dir; /* named in the manifest; its decisions.pub */
    int64_t     since_ms;  /* usage, decisions, audit from then; 0: all */
    int64_t     now_ms;    /* the manifest's export time */
    const char *version;   /* tollgate's, for the manifest */
} pdp_export_opts;

/* pdp_export_run writes st into o->dir: the data files, then
 * manifest.json. TG_EEXIST when the directory is not empty, TG_EIO when a
 * file cannot be written, a store error when a record cannot be read:
 * err says what and where. Files already written stay (err says to
 * remove the directory). Owns: rep's files on any return
 * (pdp_export_report_fini). */
tg_err pdp_export_run(pdp_store *st, const pdp_export_opts *o,
                      pdp_export_report *rep, char *err, size_t errlen);

/* pdp_import_check reads dir's manifest and checks it: its format and
 * version, every file it names present with that size and SHA-256, no
 * data file it does not name. Writes nothing. TG_EVERSION for a format
 * or version this build does not read, TG_ECORRUPT naming the file that
 * does not match, TG_EIO when something cannot be read. Owns: rep. */
tg_err pdp_import_check(const char *dir, pdp_export_report *rep, char *err,
                        size_t errlen);

/* pdp_import_run restores dir (checked first, as pdp_import_check) into
 * st (opened on state_dir, named in messages), which must hold nothing an
 * import writes (TG_EEXIST naming what it holds). Every row of every file
 * is parsed and checked before the first write: a record that does not
 * parse is TG_EINVAL with FILE:LINE and what is wrong, and nothing is
 * written. A failure once writing started (the disk's; a record given
 * twice) leaves the records before it: pdp_import_into undoes that.
 * Owns: rep (rows imported per file). */
tg_err pdp_import_run(pdp_store *st, const char *state_dir, const char *dir,
                      pdp_export_report *rep, char *err, size_t errlen);

/* pdp_import_into opens (makes) the store in state_dir (map_size_mb; the
 * generation files of the ipc:// urls, as pdp_store_gen_attach, not
 * made), runs pdp_import_run into it and closes it. On any failure the
 * state directory is put back as it was: every file the open and the
 * import made removed (data.mdb, lock.mdb, ...), a data.mdb that was
 * there (an empty store) restored from a copy taken before the first
 * write, the directories the open made removed; nothing that was there
 * before is removed. err then ends saying that nothing was kept (or what
 * could not be put back). Owns: rep. */
tg_err pdp_import_into(const char *state_dir, int64_t map_size_mb,
                       const char *const *urls, size_t n_urls, const char *dir,
                       pdp_export_report *rep, char *err, size_t errlen);

/* `tollgate-pdp import tollgate DIR --config FILE [--format text|json]`:
 * argv holds the words after `import tollgate`. Returns an exit status
 * (0 imported, 1 refused or failed, 2 usage or config error). */
int pdp_import_tollgate_cli(int argc, char **argv, FILE *out, FILE *err);

/* ---- shared by pdp_export.c and pdp_import_tollgate.c ---------------------
 */

/* pdp_export_time writes ms as RFC 3339 UTC with milliseconds
 * ("2026-12-07T13:22:56.123Z"). */
void pdp_export_time(int64_t ms, char *buf, size_t cap);

/* The header line of usage.csv (its columns: README "Moving off
 * Tollgate"). */
extern const char pdp_export_usage_header[];

/* pdp_export_add appends a file to r; false when out of memory or past
 * PDP_EXPORT_FILES_MAX. */
bool pdp_export_add(pdp_export_report *r, const pdp_export_file *f);

/* Names of the codes the files use ("daily", "start", ...); NULL/-1 for an
 * unknown one. */
const char *pdp_export_window_name(unsigned code);
int         pdp_export_window_code(const char *name);
const char *pdp_export_how_name(unsigned how);
int         pdp_export_how_code(const char *name);
const char *pdp_export_endpoint_name(unsigned ep);
int         pdp_export_endpoint_code(const char *name);

#endif
