/* pdp_import_tollgate_cli.c - the command line of `tollgate-pdp import
 * tollgate DIR --config FILE`: its flags (parsed here: pdp/migrate never
 * calls pdp/cli) and what it prints; and pdp_import_into, the state it
 * opens and, when the import fails, the undoing of everything the import
 * made there. The import itself is pdp_import_tollgate.c's. Not
 * thread-safe (it may read TOLLGATE_CONFIG). */
#include "pdp_export.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_config.h"

/* ---- the state directory as it was -------------------------------------- */

#define PDP_IM_UNDO_COPY "data.mdb.import-undo"

/* What the state directory held before the import, to put it back. */
typedef struct pdp_im_undo {
    const char *state_dir;
    char       *made; /* the first directory the open made; NULL: none */
    char      **had;  /* the names state_dir held */
    size_t      n_had;
    bool        copied; /* data.mdb was there: PDP_IM_UNDO_COPY holds it */
} pdp_im_undo;

/* pdp_im_errf says in err (errlen bytes) what could not be undone; a
 * message longer than err (two long paths) is cut, which is fine for a
 * message. */
static void __attribute__((format(printf, 3, 4)))
pdp_im_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void
pdp_im_undo_fini(pdp_im_undo *u)
{
    for (size_t i = 0; i < u->n_had; i++) {
        free(u->had[i]);
    }
    free(u->had);
    free(u->made);
}

static bool
pdp_im_had(const pdp_im_undo *u, const char *name)
{
    for (size_t i = 0; i < u->n_had; i++) {
        if (strcmp(u->had[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_im_undo_begin notes what state_dir holds (its names), or, when it
 * is not there, the first of its directories that the store's open will
 * make. */
static tg_err
pdp_im_undo_begin(pdp_im_undo *u, const char *state_dir)
{
    struct stat    sb;
    DIR           *d;
    struct dirent *e;
    size_t         cap = 0;

    memset(u, 0, sizeof(*u));
    u->state_dir = state_dir;
    if (stat(state_dir, &sb) != 0) {
        char *p;
        char *slash;
        if (errno != ENOENT) {
            return TG_OK; /* the open says what is wrong with it */
        }
        if ((p = strdup(state_dir)) == NULL) {
            return TG_ENOMEM;
        }
        /* up while the parent is missing too */
        while ((slash = strrchr(p, '/')) != NULL && slash != p) {
            *slash = '\0';
            if (stat(p, &sb) == 0) {
                *slash = '/';
                break;
            }
        }
        u->made = p;
        return TG_OK;
    }
    if ((d = opendir(state_dir)) == NULL) {
        return TG_OK; /* the open says what is wrong with it */
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (!tg_vec_reserve(&u->had, &cap, u->n_had + 1, sizeof(*u->had)) ||
            (u->had[u->n_had] = strdup(e->d_name)) == NULL) {
            closedir(d);
            return TG_ENOMEM;
        }
        u->n_had++;
    }
    closedir(d);
    return TG_OK;
}

/* pdp_im_copy_file copies from to to (a new file). */
static bool
pdp_im_copy_file(const char *from, const char *to)
{
    char    buf[1 << 16];
    int     in  = open(from, O_RDONLY | O_CLOEXEC);
    int     out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ssize_t n   = 0;
    bool    ok  = in >= 0 && out >= 0;

    while (ok && (n = read(in, buf, sizeof(buf))) > 0) {
        ok = write(out, buf, (size_t)n) == n;
    }
    ok = ok && n == 0 && fsync(out) == 0;
    if (in >= 0) {
        close(in);
    }
    if (out >= 0 && close(out) != 0) {
        ok = false;
    }
    return ok;
}

/* pdp_im_undo_keep copies a data.mdb that was there before (an empty
 * store: st holds nothing an import writes) aside, before the first
 * write. */
static tg_err
pdp_im_undo_keep(pdp_im_undo *u, pdp_store *st, char *err, size_t errlen)
{
    char        from[PATH_MAX];
    char        to[PATH_MAX];
    const char *db = NULL;
    uint64_t    n  = 0;

    if (u->made != NULL || !pdp_im_had(u, "data.mdb") ||
        pdp_store_import_empty(st, &db, &n) != TG_OK) {
        return TG_OK; /* nothing to keep, or the import refuses it */
    }
    snprintf(from, sizeof(from), "%s/data.mdb", u->state_dir);
    snprintf(to, sizeof(to), "%s/" PDP_IM_UNDO_COPY, u->state_dir);
    if (!pdp_im_copy_file(from, to)) {
        pdp_im_errf(err, errlen,
                    "cannot copy %s to %s (kept to put it back if the import "
                    "fails): %s",
                    from, to, strerror(errno));
        unlink(to);
        return TG_ESYS;
    }
    u->copied = true;
    return TG_OK;
}

/* pdp_im_undo_apply puts the state directory back as it was (the store
 * closed): data.mdb from its copy, every name it did not hold removed,
 * the directories the open made removed. False (err says which) when
 * something could not be. */
static bool
pdp_im_undo_apply(pdp_im_undo *u, char *err, size_t errlen)
{
    char           path[PATH_MAX];
    char           to[PATH_MAX];
    DIR           *d;
    struct dirent *e;
    bool           ok = true;

    if (u->copied) {
        snprintf(path, sizeof(path), "%s/" PDP_IM_UNDO_COPY, u->state_dir);
        snprintf(to, sizeof(to), "%s/data.mdb", u->state_dir);
        if (rename(path, to) != 0) {
            pdp_im_errf(err, errlen, "cannot put %s back as %s: %s", path, to,
                        strerror(errno));
            return false;
        }
    }
    if ((d = opendir(u->state_dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                pdp_im_had(u, e->d_name)) {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", u->state_dir, e->d_name);
            if (unlink(path) != 0 && ok) {
                pdp_im_errf(err, errlen, "cannot remove %s: %s", path,
                            strerror(errno));
                ok = false;
            }
        }
        closedir(d);
    }
    if (u->made != NULL && ok) {
        /* state_dir and its parents up to the first one made: each now
         * empty (rmdir removes nothing else) */
        snprintf(path, sizeof(path), "%s", u->state_dir);
        for (;;) {
            char *slash = strrchr(path, '/');
            if (rmdir(path) != 0) {
                pdp_im_errf(err, errlen, "cannot remove the directory %s: %s",
                            path, strerror(errno));
                return false;
            }
            if (strcmp(path, u->made) == 0 || slash == NULL || slash == path) {
                break;
            }
            *slash = '\0';
        }
    }
    return ok;
}

tg_err
pdp_import_into(const char *state_dir, int64_t map_size_mb,
                const char *const *urls, size_t n_urls, const char *dir,
                pdp_export_report *rep, char *err, size_t errlen)
{
    pdp_im_undo u;
    pdp_store  *st = NULL;
    char        why[1024];
    tg_err      rv;

    memset(rep, 0, sizeof(*rep));
    err[0] = '\0';
    if ((rv = pdp_im_undo_begin(&u, state_dir)) != TG_OK) {
        pdp_im_errf(err, errlen, "cannot read the state directory %s: %s",
                    state_dir, tg_strerror(rv));
        pdp_im_undo_fini(&u);
        return rv;
    }
    if ((rv = pdp_store_open(&st, state_dir, map_size_mb, err, errlen)) ==
        TG_OK) {
        pdp_store_gen_attach(st, urls, n_urls, false);
        if ((rv = pdp_im_undo_keep(&u, st, err, errlen)) == TG_OK) {
            rv = pdp_import_run(st, state_dir, dir, rep, err, errlen);
        }
        pdp_store_close(st);
    }
    if (rv != TG_OK) {
        size_t n = strlen(err);
        why[0]   = '\0';
        if (pdp_im_undo_apply(&u, why, sizeof(why))) {
            snprintf(err + n, errlen - n,
                     "; nothing was kept: the state directory %s is as it "
                     "was before the import",
                     state_dir);
        } else {
            snprintf(err + n, errlen - n,
                     "; and the state directory %s could not be put back as "
                     "it was (%s): remove what the import made there before "
                     "importing again",
                     state_dir, why);
        }
    } else if (u.copied) {
        snprintf(why, sizeof(why), "%s/" PDP_IM_UNDO_COPY, state_dir);
        unlink(why);
    }
    pdp_im_undo_fini(&u);
    return rv;
}

/* ---- the command
 * ------------------------------------------------------------------------------
 */

static const char pdp_im_usage_text[] =
    "usage: tollgate-pdp import tollgate DIR --config FILE\n"
    "                                [--format text|json]\n"
    "\n"
    "Restores an export (`tollgate-pdp export --out DIR`) into the state\n"
    "directory of FILE (pdp.state_dir), which must be empty: tenants, keys\n"
    "(their hashes: the same keys authenticate), budgets and rate limits,\n"
    "term lists and their history, every policy activation and its files,\n"
    "the admin audit trail, usage, totals, budget spend, alerts fired and\n"
    "the decision log, as they were. Before anything is written, every\n"
    "file is checked against DIR/manifest.json (size and SHA-256), the\n"
    "decision log against DIR/decisions.pub, and every row of every file\n"
    "is parsed. An import that fails leaves the state directory as it\n"
    "found it (nothing is kept). Exporting the new state gives the same\n"
    "data files.\n"
    "\n"
    "exit status: 0 imported; 1 refused (state not empty, a file that does\n"
    "not match the manifest, a format this build does not read) or failed;\n"
    "2 bad flags or a bad config file.\n";

typedef struct pdp_im_args {
    const char *dir;
    const char *config;
    bool        json;
} pdp_im_args;

/* pdp_im_args_parse reads DIR, --config FILE, --format text|json. */
static int
pdp_im_args_parse(pdp_im_args *a, int argc, char **argv, FILE *out, FILE *err)
{
    static const char *cmd = "tollgate-pdp import tollgate";

    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *w   = argv[i];
        const char *val = NULL;
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            fputs(pdp_im_usage_text, out);
            return -1;
        }
        if (strncmp(w, "--config", 8) == 0 || strncmp(w, "--format", 8) == 0) {
            val = w[8] == '='
                      ? w + 9
                      : (w[8] == '\0' && i + 1 < argc ? argv[++i] : NULL);
            if (val == NULL || (w[8] != '=' && w[8] != '\0')) {
                fprintf(err, "%s: %s needs a value (see --help)\n", cmd, w);
                return 2;
            }
            if (w[2] == 'c') {
                a->config = val;
            } else if (strcmp(val, "json") == 0 || strcmp(val, "text") == 0) {
                a->json = strcmp(val, "json") == 0;
            } else {
                fprintf(err, "%s: --format must be text or json, not \"%s\"\n",
                        cmd, val);
                return 2;
            }
        } else if (w[0] == '-' && w[1] != '\0') {
            fprintf(err, "%s: unknown flag %s (see --help)\n", cmd, w);
            return 2;
        } else if (a->dir != NULL) {
            fprintf(err, "%s: one DIR only (got %s and %s)\n", cmd, a->dir, w);
            return 2;
        } else {
            a->dir = w;
        }
    }
    if (a->dir == NULL) {
        fprintf(err, "%s: give the export's DIR (see --help)\n", cmd);
        return 2;
    }
    a->config = a->config != NULL ? a->config : getenv("TOLLGATE_CONFIG");
    if (a->config == NULL || a->config[0] == '\0') {
        fprintf(err,
                "%s: no config file given: pass --config FILE or set "
                "TOLLGATE_CONFIG (its pdp.state_dir receives the "
                "import)\n",
                cmd);
        return 2;
    }
    return 0;
}

static void
pdp_im_print(const pdp_im_args *a, const char *state_dir,
             const pdp_export_report *rep, FILE *out)
{
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *f = cJSON_AddArrayToObject(o, "files");
        char  *s;
        cJSON_AddStringToObject(o, "imported", a->dir);
        cJSON_AddStringToObject(o, "state_dir", state_dir);
        for (size_t i = 0; f != NULL && i < rep->n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", rep->files[i].name);
            cJSON_AddNumberToObject(e, "rows", (double)rep->files[i].rows);
            cJSON_AddItemToArray(f, e);
        }
        if ((s = cJSON_PrintUnformatted(o)) != NULL) {
            fprintf(out, "%s\n", s);
        }
        free(s);
        cJSON_Delete(o);
        return;
    }
    fprintf(out, "imported %s into %s\n", a->dir, state_dir);
    for (size_t i = 0; i < rep->n; i++) {
        fprintf(out, "  %-22s %10" PRIu64 " rows\n", rep->files[i].name,
                rep->files[i].rows);
    }
    fprintf(out,
            "next: tollgate-pdp serve --config %s (new decision "
            "records chain on from the imported ones; new checkpoints "
            "are signed with this state's own key)\n",
            a->config);
}

int
pdp_import_tollgate_cli(int argc, char **argv, FILE *out, FILE *err)
{
    pdp_im_args       a;
    tg_config        *cfg = NULL;
    pdp_export_report rep;
    char              msg[2048] = "";
    int               ec        = pdp_im_args_parse(&a, argc, argv, out, err);

    if (ec != 0) {
        return ec < 0 ? 0 : ec;
    }
    if (tg_config_load(&cfg, a.config, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "%s\n", msg);
        return 2;
    }
    msg[0] = '\0';
    if (pdp_import_into(cfg->pdp.state_dir, cfg->pdp.map_size_mb,
                        (const char *const *)cfg->pdp.listen, cfg->pdp.n_listen,
                        a.dir, &rep, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "tollgate-pdp import tollgate: %s\n", msg);
        ec = 1;
    } else {
        pdp_im_print(&a, cfg->pdp.state_dir, &rep, out);
    }
    pdp_export_report_fini(&rep);
    tg_config_destroy(cfg);
    return ec;
}
