/* pdp_import_tollgate.c - `tollgate-pdp import tollgate DIR`: an export
 * (pdp_export.h) checked against its manifest (format, version, every
 * file's size and SHA-256, no file it does not name, the decision log's
 * chain and signatures when decisions.pub came with it) before anything
 * is written, then restored into an empty state in batches of
 * PDP_IM_BATCH records per write txn. pdp_import_rows.c parses the JSON
 * rows, pdp_import_tollgate_cli.c is the command. Not thread-safe. */
#include "pdp_import_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_decisions.h"
#include "tg_hash.h"

#define PDP_IM_MANIFEST_MAX ((size_t)4 << 20)
#define PDP_IM_LINE_MAX ((size_t)64 << 20) /* one JSON line or CSV row */

/* The data files, in the order they are restored, and how each row is
 * read (NULL: usage.csv and decisions.jsonl, read apart). */
static const struct {
    const char   *name;
    pdp_im_row_fn fn;
} pdp_im_files[] = {
    {"tenants.jsonl", pdp_im_row_tenant},
    {"keys.jsonl", pdp_im_row_key},
    {"quotas.jsonl", pdp_im_row_quota},
    {"lists.jsonl", pdp_im_row_list},
    {"list_history.jsonl", pdp_im_row_change},
    {"policy_history.jsonl", pdp_im_row_activation},
    {"admin_audit.jsonl", pdp_im_row_audit},
    {"usage.csv", NULL},
    {"totals.jsonl", pdp_im_row_totals},
    {"budgets.jsonl", pdp_im_row_budget},
    {"alerts.jsonl", pdp_im_row_alert},
    {"decisions.jsonl", NULL},
};
#define PDP_IM_NFILES (sizeof(pdp_im_files) / sizeof(pdp_im_files[0]))

tg_err
pdp_im_fail(pdp_im *m, tg_err rv, const char *fmt, ...)
{
    va_list ap;
    int     n = 0;

    if (m->rv != TG_OK) {
        return m->rv;
    }
    if (m->file != NULL && m->line > 0) {
        n = snprintf(m->err, m->errlen, "%s/%s:%" PRIu64 ": ", m->dir, m->file,
                     m->line);
    } else if (m->file != NULL) {
        n = snprintf(m->err, m->errlen, "%s/%s: ", m->dir, m->file);
    }
    if (n >= 0 && (size_t)n < m->errlen) {
        va_start(ap, fmt);
        vsnprintf(m->err + n, m->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    m->rv = rv;
    return rv;
}

static void
pdp_im_batch_free(pdp_im *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->owned[i]);
    }
    m->n = 0;
}

tg_err
pdp_im_flush(pdp_im *m)
{
    size_t bad = 0;
    tg_err rv;

    if (m->n == 0 || m->rv != TG_OK || m->st == NULL) { /* NULL: checking */
        m->rows += m->rv == TG_OK ? m->n : 0;
        pdp_im_batch_free(m);
        return m->rv;
    }
    rv = pdp_store_import(m->st, m->recs, m->n, &bad);
    if (rv != TG_OK) {
        m->line = bad < m->n ? m->lines[bad] : 0;
        pdp_im_fail(m, rv,
                    rv == TG_EEXIST
                        ? "this record is already in the state (the same "
                          "id or sequence twice in the export, or a state "
                          "that was not empty)"
                        : "cannot write this record: %s",
                    tg_strerror(rv));
    } else {
        m->rows += m->n;
    }
    pdp_im_batch_free(m);
    return m->rv;
}

/* pdp_im_push takes owned whatever happens: after a failure (a row
 * that did not parse) it is freed, and the row not kept. */
tg_err
pdp_im_push(pdp_im *m, const pdp_import_rec *r, void *owned)
{
    if (m->rv != TG_OK) {
        free(owned);
        return m->rv;
    }
    m->recs[m->n]  = *r;
    m->owned[m->n] = owned;
    m->lines[m->n] = m->line;
    m->n++;
    return m->n == PDP_IM_BATCH ? pdp_im_flush(m) : m->rv;
}

/* ---- files
 * -------------------------------------------------------------------- */

/* pdp_im_path checks that rel is a path an export writes (a plain name,
 * or bundles/<seq>/<name>; never "..", "." first, absolute or empty). */
static bool
pdp_im_path_ok(const char *rel)
{
    int parts = 0;

    if (rel[0] == '\0' || strlen(rel) >= PDP_EXPORT_NAME_MAX) {
        return false;
    }
    for (const char *p = rel; *p != '\0'; parts++) {
        const char *e = strchr(p, '/');
        size_t      n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n == 0 || p[0] == '.') {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)p[i] < 0x20 || p[i] == '\\') {
                return false;
            }
        }
        p += n + (e != NULL ? 1 : 0);
        if (e != NULL && *p == '\0') {
            return false;
        }
    }
    return parts == 1 || (parts == 3 && strncmp(rel, "bundles/", 8) == 0);
}

/* pdp_im_hash_file computes the size and SHA-256 (hex) of DIR/rel. */
static tg_err
pdp_im_hash_file(pdp_im *m, const char *rel, uint64_t *bytes, char *hex)
{
    char         path[PATH_MAX];
    char         buf[65536];
    uint8_t      sha[EVP_MAX_MD_SIZE];
    unsigned int n  = 0;
    EVP_MD_CTX  *md = EVP_MD_CTX_new();
    FILE        *f;
    size_t       got;

    snprintf(path, sizeof(path), "%s/%s", m->dir, rel);
    *bytes = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return pdp_im_fail(m, TG_ENOMEM, "cannot start a SHA-256");
    }
    if ((f = fopen(path, "rb")) == NULL) {
        EVP_MD_CTX_free(md);
        return pdp_im_fail(m, TG_ECORRUPT,
                           "%s is named in the manifest but cannot be read: "
                           "%s (the export is incomplete: export again)",
                           path, strerror(errno));
    }
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
        EVP_DigestUpdate(md, buf, got);
        *bytes += got;
    }
    if (ferror(f) || EVP_DigestFinal_ex(md, sha, &n) != 1 ||
        n != TG_SHA256_LEN) {
        pdp_im_fail(m, TG_EIO, "cannot read %s: %s", path, strerror(errno));
    } else {
        tg_hex(sha, TG_SHA256_LEN, hex);
    }
    fclose(f);
    EVP_MD_CTX_free(md);
    return m->rv;
}

tg_err
pdp_im_bundle_json(pdp_im *m, const char *rel, char **out)
{
    char           path[PATH_MAX];
    DIR           *d;
    struct dirent *de;
    cJSON         *o     = cJSON_CreateObject();
    char         **names = NULL;
    size_t         n = 0, cap = 0;

    *out = NULL;
    snprintf(path, sizeof(path), "%s/%s", m->dir, rel);
    if (o == NULL || (d = opendir(path)) == NULL) {
        cJSON_Delete(o);
        return pdp_im_fail(m, TG_EINVAL,
                           "\"files\" names %s, which cannot "
                           "be read: %s",
                           path, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if (!tg_vec_reserve(&names, &cap, n + 1, sizeof(*names)) ||
            (names[n] = strdup(de->d_name)) == NULL) {
            pdp_im_fail(m, TG_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    /* In name order, as the compiler keeps them (strcmp order). */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t      = names[j];
            names[j]     = names[j - 1];
            names[j - 1] = t;
        }
    }
    for (size_t i = 0; i < n && m->rv == TG_OK; i++) {
        char  *text = NULL;
        size_t len  = 0;
        FILE  *f;
        snprintf(path, sizeof(path), "%s/%s/%s", m->dir, rel, names[i]);
        if ((f = fopen(path, "rb")) == NULL) {
            pdp_im_fail(m, TG_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (getdelim(&text, &len, '\0', f) < 0) {
            free(text);
            text = strdup(""); /* an empty file */
        }
        fclose(f);
        if (text == NULL ||
            cJSON_AddStringToObject(o, names[i], text) == NULL) {
            pdp_im_fail(m, TG_ENOMEM, "out of memory");
        }
        free(text);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    if (m->rv == TG_OK && (*out = cJSON_PrintUnformatted(o)) == NULL) {
        pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    cJSON_Delete(o);
    return m->rv;
}

/* ---- the manifest
 * ----------------------------------------------------------------- */

static const pdp_export_file *
pdp_im_listed(const pdp_export_report *rep, const char *name)
{
    for (size_t i = 0; i < rep->n; i++) {
        if (strcmp(rep->files[i].name, name) == 0) {
            return &rep->files[i];
        }
    }
    return NULL;
}

/* pdp_im_manifest_file reads one entry of "files" into rep. */
static tg_err
pdp_im_manifest_file(pdp_im *m, const cJSON *o, pdp_export_report *rep)
{
    static const char *const names[] = {"name", "rows", "bytes", "sha256",
                                        NULL};
    pdp_export_file          f;
    char                     why[512];

    memset(&f, 0, sizeof(f));
    if (!cJSON_IsObject(o) || tg_json_only_keys(m->doc, o, "files[]", names,
                                                why, sizeof(why)) != TG_OK) {
        return pdp_im_fail(m, TG_ECORRUPT,
                           "an entry of \"files\" is not "
                           "{name, rows, bytes, sha256}");
    }
    if (pdp_im_str(m, o, "name", f.name, sizeof(f.name)) != TG_OK ||
        pdp_im_uint(m, o, "rows", &f.rows) != TG_OK ||
        pdp_im_uint(m, o, "bytes", &f.bytes) != TG_OK ||
        pdp_im_str(m, o, "sha256", f.sha256, sizeof(f.sha256)) != TG_OK) {
        return m->rv;
    }
    if (!pdp_im_path_ok(f.name) || strcmp(f.name, PDP_EXPORT_MANIFEST) == 0) {
        return pdp_im_fail(m, TG_ECORRUPT,
                           "\"files\" names \"%s\": not a "
                           "file an export writes",
                           f.name);
    }
    if (pdp_im_listed(rep, f.name) != NULL) {
        return pdp_im_fail(m, TG_ECORRUPT, "\"files\" names %s twice", f.name);
    }
    if (!pdp_export_add(rep, &f)) {
        return pdp_im_fail(m, TG_ENOMEM, "too many files");
    }
    return TG_OK;
}

/* pdp_im_manifest reads DIR/manifest.json into rep (format and version
 * checked). */
static tg_err
pdp_im_manifest(pdp_im *m, pdp_export_report *rep)
{
    char         path[PATH_MAX];
    char         why[1024];
    char         format[64]  = "";
    char         version[64] = "?";
    int64_t      fv          = 0;
    const cJSON *root;
    const cJSON *files;
    const cJSON *e;

    snprintf(path, sizeof(path), "%s/%s", m->dir, PDP_EXPORT_MANIFEST);
    if (tg_json_doc_load(&m->doc, path, PDP_IM_MANIFEST_MAX, why,
                         sizeof(why)) != TG_OK) {
        return pdp_im_fail(m, TG_ECORRUPT,
                           "%s (is %s an export made by "
                           "`tollgate-pdp export`?)",
                           why, m->dir);
    }
    m->file = PDP_EXPORT_MANIFEST;
    root    = tg_json_doc_root(m->doc);
    if (!cJSON_IsObject(root) ||
        pdp_im_str(m, root, "format", format, sizeof(format)) != TG_OK ||
        strcmp(format, PDP_EXPORT_FORMAT) != 0) {
        m->rv = TG_OK;
        return pdp_im_fail(m, TG_EVERSION,
                           "\"format\" is not \"%s\": not "
                           "an export of `tollgate-pdp export`",
                           PDP_EXPORT_FORMAT);
    }
    (void)pdp_im_str(m, root, "tollgate_version", version, sizeof(version));
    m->rv = TG_OK;
    if (pdp_im_int(m, root, "format_version", INT64_MIN, INT64_MAX, &fv) !=
            TG_OK ||
        fv != PDP_EXPORT_FORMAT_VERSION) {
        m->rv = TG_OK;
        return pdp_im_fail(m, TG_EVERSION,
                           "format_version %" PRId64 " is not one this "
                           "tollgate-pdp reads (it reads %d): import it with "
                           "the tollgate-pdp that wrote it (%s) or a newer "
                           "one",
                           fv, PDP_EXPORT_FORMAT_VERSION, version);
    }
    files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!cJSON_IsArray(files)) {
        return pdp_im_fail(m, TG_ECORRUPT, "\"files\" must be an array");
    }
    cJSON_ArrayForEach(e, files)
    {
        if (pdp_im_manifest_file(m, e, rep) != TG_OK) {
            return m->rv;
        }
    }
    return TG_OK;
}

/* pdp_im_unlisted refuses a file under DIR (rel: a folder in it, "" the
 * top) that the manifest does not name. */
static tg_err
pdp_im_unlisted(pdp_im *m, const pdp_export_report *rep, const char *rel,
                int depth)
{
    char           path[PATH_MAX];
    char           sub[PDP_EXPORT_NAME_MAX * 2];
    DIR           *d;
    struct dirent *de;
    struct stat    sb;

    snprintf(path, sizeof(path), "%s%s%s", m->dir, rel[0] ? "/" : "", rel);
    if ((d = opendir(path)) == NULL) {
        return pdp_im_fail(m, TG_EIO, "cannot read %s: %s", path,
                           strerror(errno));
    }
    while ((de = readdir(d)) != NULL && m->rv == TG_OK) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
                 de->d_name);
        snprintf(path, sizeof(path), "%s/%s", m->dir, sub);
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && depth < 2) {
            pdp_im_unlisted(m, rep, sub, depth + 1);
        } else if (strcmp(sub, PDP_EXPORT_MANIFEST) != 0 &&
                   pdp_im_listed(rep, sub) == NULL) {
            pdp_im_fail(m, TG_ECORRUPT,
                        "%s is not named in %s/%s: the export was changed "
                        "after it was made (remove the file, or export "
                        "again)",
                        path, m->dir, PDP_EXPORT_MANIFEST);
        }
    }
    closedir(d);
    return m->rv;
}

/* pdp_im_verify_decisions checks the chain and the checkpoints of
 * decisions.jsonl with decisions.pub. */
static tg_err
pdp_im_verify_decisions(pdp_im *m)
{
    char       path[PATH_MAX];
    char       pem[4096];
    pdp_verify v;
    FILE      *f;
    char      *line = NULL;
    size_t     cap  = 0;
    ssize_t    n;
    size_t     got;
    bool       ok;

    snprintf(path, sizeof(path), "%s/%s", m->dir, PDP_EXPORT_PUB);
    if ((f = fopen(path, "rb")) == NULL) {
        return pdp_im_fail(m, TG_EIO, "cannot read %s: %s", path,
                           strerror(errno));
    }
    got = fread(pem, 1, sizeof(pem) - 1, f);
    fclose(f);
    pem[got] = '\0';
    m->file  = PDP_EXPORT_PUB;
    if (!pdp_verify_begin(&v, pem, got)) {
        return pdp_im_fail(m, TG_ECORRUPT, "%s", v.error);
    }
    m->file = "decisions.jsonl";
    snprintf(path, sizeof(path), "%s/%s", m->dir, m->file);
    if ((f = fopen(path, "rb")) == NULL) {
        pdp_verify_end(&v);
        return pdp_im_fail(m, TG_EIO, "cannot read: %s", strerror(errno));
    }
    ok = true;
    while (ok && (n = getline(&line, &cap, f)) > 0) {
        n -= line[n - 1] == '\n' ? 1 : 0;
        ok = pdp_verify_line(&v, line, (size_t)n);
    }
    free(line);
    fclose(f);
    ok = pdp_verify_end(&v) && ok;
    if (!ok) {
        return pdp_im_fail(m, TG_ECORRUPT,
                           "the decision log does not verify with %s: %s",
                           PDP_EXPORT_PUB, v.error);
    }
    return TG_OK;
}

/* pdp_im_check_files checks every file the manifest names (size and
 * SHA-256), that the data files are all there, and that nothing else is. */
static tg_err
pdp_im_check_files(pdp_im *m, const pdp_export_report *rep)
{
    for (size_t i = 0; i < PDP_IM_NFILES; i++) {
        if (pdp_im_listed(rep, pdp_im_files[i].name) == NULL) {
            return pdp_im_fail(m, TG_ECORRUPT,
                               "it does not name %s: the export is "
                               "incomplete (export again)",
                               pdp_im_files[i].name);
        }
    }
    m->file = NULL;
    for (size_t i = 0; i < rep->n; i++) {
        const pdp_export_file *f = &rep->files[i];
        char                   hex[2 * TG_SHA256_LEN + 1];
        uint64_t               bytes;
        if (pdp_im_hash_file(m, f->name, &bytes, hex) != TG_OK) {
            return m->rv;
        }
        if (bytes != f->bytes || strcmp(hex, f->sha256) != 0) {
            return pdp_im_fail(m, TG_ECORRUPT,
                               "%s/%s does not match %s (%" PRIu64
                               " bytes, SHA-256 %s; the manifest says %" PRIu64
                               " bytes, %s): it was changed or damaged after "
                               "the export; restore it or export again",
                               m->dir, f->name, PDP_EXPORT_MANIFEST, bytes, hex,
                               f->bytes, f->sha256);
        }
    }
    if (pdp_im_unlisted(m, rep, "", 0) != TG_OK) {
        return m->rv;
    }
    return pdp_im_listed(rep, PDP_EXPORT_PUB) != NULL
               ? pdp_im_verify_decisions(m)
               : TG_OK;
}

tg_err
pdp_import_check(const char *dir, pdp_export_report *rep, char *err,
                 size_t errlen)
{
    pdp_im m;

    memset(&m, 0, sizeof(m));
    memset(rep, 0, sizeof(*rep));
    m.dir    = dir;
    m.err    = err;
    m.errlen = errlen;
    if (pdp_im_manifest(&m, rep) == TG_OK) {
        pdp_im_check_files(&m, rep);
    }
    tg_json_doc_destroy(m.doc);
    return m.rv;
}

/* ---- reading the data files
 * ---------------------------------------------------------- */

/* pdp_im_open opens DIR/name as the file being read. */
static FILE *
pdp_im_open(pdp_im *m, const char *name)
{
    char  path[PATH_MAX];
    FILE *f;

    m->file = name;
    m->line = 0;
    m->rows = 0;
    snprintf(path, sizeof(path), "%s/%s", m->dir, name);
    if ((f = fopen(path, "rb")) == NULL) {
        pdp_im_fail(m, TG_EIO, "cannot read: %s", strerror(errno));
    }
    return f;
}

/* pdp_im_getline reads the next line (its newline cut) of f; false at
 * the end or on a failure (said). */
static bool
pdp_im_getline(pdp_im *m, FILE *f, char **line, size_t *cap, size_t *len)
{
    ssize_t n = getline(line, cap, f);

    if (n < 0) {
        if (ferror(f)) {
            pdp_im_fail(m, TG_EIO, "cannot read: %s", strerror(errno));
        }
        return false;
    }
    m->line++;
    if ((size_t)n > PDP_IM_LINE_MAX) {
        pdp_im_fail(m, TG_ETOOBIG, "the line is longer than %zu bytes",
                    PDP_IM_LINE_MAX);
        return false;
    }
    if (n == 0 || (*line)[n - 1] != '\n') {
        pdp_im_fail(m, TG_EINVAL,
                    "the last line has no newline: the file "
                    "was cut short");
        return false;
    }
    (*line)[--n] = '\0';
    *len         = (size_t)n;
    return true;
}

static tg_err
pdp_im_jsonl(pdp_im *m, const char *name, pdp_im_row_fn fn)
{
    FILE  *f    = pdp_im_open(m, name);
    char  *line = NULL;
    size_t cap  = 0;
    size_t len;
    char   why[512];

    while (f != NULL && m->rv == TG_OK &&
           pdp_im_getline(m, f, &line, &cap, &len)) {
        if (tg_json_doc_parse(&m->doc, "the line", line, len, why,
                              sizeof(why)) != TG_OK) {
            pdp_im_fail(m, TG_EINVAL, "not a JSON object: %s", why);
            break;
        }
        fn(m, tg_json_doc_root(m->doc));
        tg_json_doc_destroy(m->doc);
        m->doc = NULL;
    }
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    return pdp_im_flush(m);
}

/* ---- usage.csv
 * ----------------------------------------------------------------------------
 */

#define PDP_IM_CSV_COLS 20

/* pdp_im_csv_split splits one CSV record (RFC 4180: a quoted field may
 * hold commas, doubled quotes and line breaks) in place into its fields.
 * false when it does not have PDP_IM_CSV_COLS of them or a quote is
 * misplaced. */
static bool
pdp_im_csv_split(char *rec, char *fields[PDP_IM_CSV_COLS])
{
    char  *w = rec;
    char  *r = rec;
    size_t n = 0;

    for (;;) {
        if (n == PDP_IM_CSV_COLS) {
            return false;
        }
        fields[n++] = w;
        if (*r == '"') {
            for (r++;; r++) {
                if (*r == '\0') {
                    return false;
                }
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r++;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r;
                }
            }
        } else {
            while (*r != ',' && *r != '\0' && *r != '"') {
                *w++ = *r++;
            }
        }
        if (*r == '"') {
            return false;
        }
        if (*r == '\0') {
            *w = '\0';
            return n == PDP_IM_CSV_COLS;
        }
        *w++ = '\0';
        r++;
    }
}

/* pdp_im_dec reads a decimal integer in [min, max]. */
static bool
pdp_im_dec(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char     *end;
    long long v;

    if (s[0] == '\0' || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) {
        return false;
    }
    errno = 0;
    v     = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool
pdp_im_copy(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n >= cap) {
        return false;
    }
    memcpy(dst, s, n + 1);
    return true;
}

/* pdp_im_usage_fill fills r from the fields of one row; false with the
 * column that is wrong in *bad. */
static bool
pdp_im_usage_fill(char *const c[PDP_IM_CSV_COLS], pdp_usage_rec *r,
                  const char **bad)
{
    static const char *const cols[] = {"request_id",
                                       "time",
                                       "started_ms",
                                       "settled_ms",
                                       "duration_ms",
                                       "key_id",
                                       "tenant_id",
                                       "user",
                                       "model",
                                       "deployment_id",
                                       "endpoint",
                                       "status",
                                       "stream",
                                       "estimated",
                                       "abandoned",
                                       "prompt_tokens",
                                       "completion_tokens",
                                       "cached_tokens",
                                       "cost_micro_usd",
                                       "reservation_id"};
    tg_usage                *u      = &r->usage;
    int64_t                  v[PDP_IM_CSV_COLS];
    char                     t[40];
    int                      ep;

    for (int i = 2; i < PDP_IM_CSV_COLS; i++) {
        bool num = i <= 4 || (i >= 11 && i <= 18);
        bool bit = i >= 12 && i <= 14;
        if (num &&
            !pdp_im_dec(c[i], bit ? 0 : INT64_MIN,
                        bit ? 1 : (i == 11 ? UINT32_MAX : INT64_MAX), &v[i])) {
            *bad = cols[i];
            return false;
        }
    }
    *bad = cols[0];
    if (c[0][0] == '\0' ||
        !pdp_im_copy(u->request_id, sizeof(u->request_id), c[0])) {
        return false;
    }
    u->started_ms  = v[2];
    r->settled_ms  = v[3];
    u->duration_ms = v[4];
    pdp_export_time(u->started_ms, t, sizeof(t));
    *bad = cols[1];
    if (strcmp(t, c[1]) != 0) {
        return false; /* time and started_ms must say the same */
    }
    *bad = "key_id, tenant_id, user, model, deployment_id or reservation_id";
    if (!pdp_im_copy(u->key_id, sizeof(u->key_id), c[5]) ||
        !pdp_im_copy(u->tenant_id, sizeof(u->tenant_id), c[6]) ||
        !pdp_im_copy(u->user, sizeof(u->user), c[7]) ||
        !pdp_im_copy(u->model, sizeof(u->model), c[8]) ||
        !pdp_im_copy(u->deployment_id, sizeof(u->deployment_id), c[9]) ||
        !pdp_im_copy(u->reservation_id, sizeof(u->reservation_id), c[19])) {
        return false;
    }
    *bad = cols[10];
    if ((ep = pdp_export_endpoint_code(c[10])) < 0) {
        return false;
    }
    u->endpoint          = (tg_endpoint)ep;
    u->status            = (uint32_t)v[11];
    u->stream            = v[12] != 0;
    u->estimated         = v[13] != 0;
    u->abandoned         = v[14] != 0;
    u->prompt_tokens     = v[15];
    u->completion_tokens = v[16];
    u->cached_tokens     = v[17];
    r->cost_micro_usd    = v[18];
    return true;
}

/* pdp_im_csv_record reads one CSV record into rec (lines joined while a
 * quoted field is open). */
static bool
pdp_im_csv_record(pdp_im *m, FILE *f, char **line, size_t *cap, tg_buf *rec)
{
    size_t len;
    bool   open = false;

    tg_buf_reset(rec);
    do {
        if (!pdp_im_getline(m, f, line, cap, &len)) {
            if (open && m->rv == TG_OK) {
                pdp_im_fail(m, TG_EINVAL, "a quoted field is not closed");
            }
            return false;
        }
        if (open) {
            tg_buf_add(rec, "\n", 1);
        }
        tg_buf_add(rec, *line, len);
        for (size_t i = 0; i < len; i++) {
            open = (*line)[i] == '"' ? !open : open;
        }
    } while (open);
    if (tg_buf_error(rec) != TG_OK) {
        pdp_im_fail(m, TG_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

static tg_err
pdp_im_usage(pdp_im *m)
{
    FILE  *f    = pdp_im_open(m, "usage.csv");
    char  *line = NULL;
    size_t cap  = 0;
    size_t len;
    tg_buf rec;

    tg_buf_init(&rec, PDP_IM_LINE_MAX);
    if (f != NULL && pdp_im_getline(m, f, &line, &cap, &len) &&
        strcmp(line, pdp_export_usage_header) != 0) {
        pdp_im_fail(m, TG_EINVAL, "the header is not \"%s\"",
                    pdp_export_usage_header);
    }
    while (f != NULL && m->rv == TG_OK &&
           pdp_im_csv_record(m, f, &line, &cap, &rec)) {
        char          *c[PDP_IM_CSV_COLS];
        const char    *bad = NULL;
        pdp_usage_rec *r   = calloc(1, sizeof(*r));
        pdp_import_rec ir  = {.kind = PDP_IMPORT_USAGE};
        if (r == NULL) {
            pdp_im_fail(m, TG_ENOMEM, "out of memory");
        } else if (!pdp_im_csv_split(rec.data, c)) {
            pdp_im_fail(m, TG_EINVAL, "not a row of %d fields",
                        PDP_IM_CSV_COLS);
        } else if (!pdp_im_usage_fill(c, r, &bad)) {
            pdp_im_fail(m, TG_EINVAL,
                        "%s is not valid (whole numbers, 0/1 flags, an "
                        "endpoint name, time as started_ms in RFC 3339, ids "
                        "within the store's limits)",
                        bad);
        }
        if (m->rv != TG_OK) {
            free(r);
            break;
        }
        ir.u.usage = r;
        pdp_im_push(m, &ir, r);
    }
    free(line);
    tg_buf_fini(&rec);
    if (f != NULL) {
        fclose(f);
    }
    return pdp_im_flush(m);
}

/* ---- decisions.jsonl: the lines as they were stored
 * -------------------------------------- */

/* A record or checkpoint line and the request id of a record, in one
 * block. */
typedef struct pdp_im_decrow {
    char  request_id[TG_REQUEST_ID_MAX];
    char *text;
} pdp_im_decrow;

static tg_err
pdp_im_decision(pdp_im *m, const char *line, size_t len, uint64_t *last)
{
    cJSON         *o  = cJSON_ParseWithLength(line, len);
    const cJSON   *cp = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");
    const cJSON   *id = cJSON_GetObjectItemCaseSensitive(o, "request_id");
    pdp_import_rec r  = {.kind = cp != NULL ? PDP_IMPORT_CHECKPOINT
                                            : PDP_IMPORT_DECISION};
    pdp_im_decrow *d  = calloc(1, sizeof(*d) + len + 1);
    int64_t        seq;

    if (d == NULL) {
        cJSON_Delete(o);
        return pdp_im_fail(m, TG_ENOMEM, "out of memory");
    }
    if (!tg_json_whole(
            cJSON_GetObjectItemCaseSensitive(cp != NULL ? cp : o, "seq"), 1,
            INT64_MAX, &seq)) {
        pdp_im_fail(m, TG_EINVAL,
                    "not a decision record or checkpoint (no "
                    "\"seq\")");
    } else if (cp == NULL && (!cJSON_IsString(id) ||
                              !pdp_im_copy(d->request_id, sizeof(d->request_id),
                                           id->valuestring) ||
                              (uint64_t)seq <= *last)) {
        pdp_im_fail(m, TG_EINVAL,
                    "a record must have a \"request_id\" and "
                    "a \"seq\" above the one before it");
    }
    cJSON_Delete(o);
    if (m->rv != TG_OK) {
        free(d);
        return m->rv;
    }
    *last   = cp == NULL ? (uint64_t)seq : *last;
    d->text = (char *)(d + 1);
    memcpy(d->text, line, len);
    r.u.line.seq        = (uint64_t)seq;
    r.u.line.text       = d->text;
    r.u.line.len        = len;
    r.u.line.request_id = cp == NULL ? d->request_id : NULL;
    return pdp_im_push(m, &r, d);
}

static tg_err
pdp_im_decisions(pdp_im *m)
{
    FILE    *f    = pdp_im_open(m, "decisions.jsonl");
    char    *line = NULL;
    size_t   cap  = 0;
    size_t   len;
    uint64_t last = 0;

    while (f != NULL && m->rv == TG_OK &&
           pdp_im_getline(m, f, &line, &cap, &len)) {
        pdp_im_decision(m, line, len, &last);
    }
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    return pdp_im_flush(m);
}

/* ---- the import
 * ------------------------------------------------------------------------------
 */

/* pdp_im_empty refuses a state that holds anything an import writes. */
static tg_err
pdp_im_empty(pdp_im *m, const char *state_dir)
{
    const char *db = NULL;
    uint64_t    n  = 0;
    tg_err      rv = pdp_store_import_empty(m->st, &db, &n);

    if (rv == TG_EEXIST) {
        return pdp_im_fail(m, TG_EEXIST,
                           "the state directory %s is not empty (its %s "
                           "database holds %" PRIu64 " records): an import "
                           "restores a whole state and goes only into an "
                           "empty one; set pdp.state_dir to a new directory "
                           "(and do not start serve on it before the import)",
                           state_dir, db, n);
    }
    if (rv != TG_OK) {
        return pdp_im_fail(m, rv, "cannot read the state directory %s: %s",
                           state_dir, tg_strerror(rv));
    }
    return TG_OK;
}

/* pdp_im_pass reads every data file in import order: with m->st NULL
 * (the checking pass) only parsing and checking each row, nothing
 * written; else writing them and adding each file's rows to rep. */
static tg_err
pdp_im_pass(pdp_im *m, const pdp_export_report *listed, pdp_export_report *rep)
{
    for (size_t i = 0; i < PDP_IM_NFILES && m->rv == TG_OK; i++) {
        const pdp_export_file *want =
            pdp_im_listed(listed, pdp_im_files[i].name);
        pdp_export_file got;
        if (pdp_im_files[i].fn != NULL) {
            pdp_im_jsonl(m, pdp_im_files[i].name, pdp_im_files[i].fn);
        } else if (strcmp(pdp_im_files[i].name, "usage.csv") == 0) {
            pdp_im_usage(m);
        } else {
            pdp_im_decisions(m);
        }
        m->line = 0;
        if (m->rv == TG_OK && want != NULL && m->rows != want->rows) {
            pdp_im_fail(m, TG_ECORRUPT,
                        "%" PRIu64 " rows read, the manifest says %" PRIu64,
                        m->rows, want->rows);
        }
        memset(&got, 0, sizeof(got));
        if (want != NULL) {
            got = *want;
        }
        got.rows = m->rows;
        if (m->rv == TG_OK && m->st != NULL && !pdp_export_add(rep, &got)) {
            pdp_im_fail(m, TG_ENOMEM, "out of memory");
        }
    }
    tg_json_doc_destroy(m->doc);
    m->doc = NULL;
    pdp_im_batch_free(m);
    return m->rv;
}

tg_err
pdp_import_run(pdp_store *st, const char *state_dir, const char *dir,
               pdp_export_report *rep, char *err, size_t errlen)
{
    pdp_export_report listed;
    pdp_im           *m;
    tg_err            rv;

    memset(rep, 0, sizeof(*rep));
    if ((rv = pdp_import_check(dir, &listed, err, errlen)) != TG_OK) {
        pdp_export_report_fini(&listed);
        return rv;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        pdp_export_report_fini(&listed);
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    m->st     = st;
    m->dir    = dir;
    m->err    = err;
    m->errlen = errlen;
    if (pdp_im_empty(m, state_dir) == TG_OK) {
        /* Every row of every file parsed and checked first (no store: the
         * checking pass), so that once writing starts only the disk (or
         * a record given twice) can fail it. */
        m->st = NULL;
        if (pdp_im_pass(m, &listed, rep) == TG_OK) {
            m->st = st;
            pdp_im_pass(m, &listed, rep);
        }
    }
    pdp_export_report_fini(&listed);
    rv = m->rv;
    free(m);
    return rv;
}
