/* pdp_import_tollgate_cli.c - the command line of `tollgate-pdp import
 * tollgate DIR --config FILE`: its flags (parsed here: pdp/migrate never
 * calls pdp/cli), the config and the state it opens, and what it prints.
 * The import itself is pdp_import_tollgate.c's. Not thread-safe (it may
 * read TOLLGATE_CONFIG). */
#include "pdp_export.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tg_config.h"

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
    "file is checked against DIR/manifest.json (size and SHA-256) and the\n"
    "decision log against DIR/decisions.pub. Exporting the new state gives\n"
    "the same data files.\n"
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
    pdp_store        *st  = NULL;
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
    if (pdp_store_open(&st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       sizeof(msg)) != TG_OK) {
        fprintf(err, "tollgate-pdp import tollgate: %s\n", msg);
        tg_config_destroy(cfg);
        return 1;
    }
    pdp_store_gen_attach(st, cfg->pdp.listen, cfg->pdp.n_listen, false);
    msg[0] = '\0';
    if (pdp_import_run(st, cfg->pdp.state_dir, a.dir, &rep, msg, sizeof(msg)) !=
        TG_OK) {
        fprintf(err, "tollgate-pdp import tollgate: %s\n", msg);
        ec = 1;
    } else {
        pdp_im_print(&a, cfg->pdp.state_dir, &rep, out);
    }
    pdp_export_report_fini(&rep);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}
