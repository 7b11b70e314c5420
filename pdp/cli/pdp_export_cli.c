/* pdp_export_cli.c - `tollgate-pdp export --config FILE --out DIR`: parses
 * the flags, opens the state and runs pdp_export_run (pdp/migrate), then
 * says what it wrote. */
#include "pdp_export_cli.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_cli_flags.h"
#include "pdp_export.h"
#include "pdp_migrate.h"
#include "pdp_server.h"
#include "tg_time.h"

static const char pdp_export_usage[] =
    "usage: tollgate-pdp export --config FILE --out DIR [--since WHEN]\n"
    "                           [--now WHEN] [--format text|json]\n"
    "       tollgate-pdp export --to litellm --config FILE --out DIR\n"
    "\n"
    "With --to litellm: a LiteLLM config.yaml for this gateway's\n"
    "deployments (tollgate-pdp export --to litellm --help). Without it:\n"
    "\n"
    "Writes the PDP's state (pdp.state_dir of FILE) into DIR, which is\n"
    "created or must be empty, as files a team can read without Tollgate:\n"
    "tenants.jsonl, keys.jsonl (key hashes, never a secret), quotas.jsonl,\n"
    "lists.jsonl, list_history.jsonl, policy_history.jsonl with\n"
    "bundles/SEQ/ (the files each activation ran), admin_audit.jsonl,\n"
    "usage.csv, totals.jsonl, budgets.jsonl, alerts.jsonl, decisions.jsonl\n"
    "(the decision log as `decisions export` writes it: `decisions verify\n"
    "--file DIR/decisions.jsonl --public-key DIR/decisions.pub` checks it)\n"
    "and manifest.json (format version, each file's rows and SHA-256).\n"
    "`tollgate-pdp import tollgate DIR` restores it into an empty state.\n"
    "The same state exported twice gives the same data files; only\n"
    "manifest.json says when it was made. Safe while serve runs (each file\n"
    "is one snapshot).\n"
    "\n"
    "  --since WHEN  only the usage rows started, decision records settled\n"
    "                and audit lines made from then on (YYYY-MM-DD,\n"
    "                RFC 3339, today, yesterday, Nd, Nh); the rest is\n"
    "                exported whole\n"
    "  --now WHEN    the export time the manifest gives (default: now)\n";

typedef struct pdp_export_args {
    const char *out;
    int64_t     since_ms;
    int64_t     now_ms;
    bool        json;
} pdp_export_args;

static int
pdp_export_when(const pdp_cli_io *io, const char *flag, const char *s,
                int64_t now_ms, int64_t *out)
{
    if (s != NULL && !tg_parse_when(s, false, now_ms, out)) {
        return pdp_cli_usage_error(io,
                                   "--%s \"%s\" is not a time: give "
                                   "YYYY-MM-DD, an RFC 3339 time, today, "
                                   "yesterday, Nd or Nh",
                                   flag, s);
    }
    return PDP_EXIT_OK;
}

static void
pdp_export_print(const pdp_cli_io *io, const pdp_export_args *a,
                 const pdp_export_report *rep)
{
    uint64_t bytes = 0;

    for (size_t i = 0; i < rep->n; i++) {
        bytes += rep->files[i].bytes;
    }
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *f = cJSON_AddArrayToObject(o, "files");
        char  *s;
        cJSON_AddStringToObject(o, "out", a->out);
        for (size_t i = 0; f != NULL && i < rep->n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", rep->files[i].name);
            cJSON_AddNumberToObject(e, "rows", (double)rep->files[i].rows);
            cJSON_AddNumberToObject(e, "bytes", (double)rep->files[i].bytes);
            cJSON_AddStringToObject(e, "sha256", rep->files[i].sha256);
            cJSON_AddItemToArray(f, e);
        }
        if ((s = cJSON_PrintUnformatted(o)) != NULL) {
            fprintf(io->out, "%s\n", s);
        }
        free(s);
        cJSON_Delete(o);
        return;
    }
    fprintf(io->out, "exported into %s (%zu files, %" PRIu64 " bytes):\n",
            a->out, rep->n, bytes);
    for (size_t i = 0; i < rep->n; i++) {
        if (strncmp(rep->files[i].name, "bundles/", 8) != 0) {
            fprintf(io->out, "  %-22s %10" PRIu64 " rows\n", rep->files[i].name,
                    rep->files[i].rows);
        }
    }
    fprintf(io->out, "  manifest.json lists every file with its SHA-256; "
                     "bundles/ holds each activation's files\n");
}

/* pdp_export_to is the value of --to in argv (NULL: not given): export
 * into another gateway's format, which pdp/migrate writes. */
static const char *
pdp_export_to(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (strncmp(argv[i], "--to=", 5) == 0) {
            return argv[i] + 5;
        }
        if (strcmp(argv[i], "--to") == 0) {
            return i + 1 < argc ? argv[i + 1] : "";
        }
    }
    return NULL;
}

int
pdp_export_cli(int argc, char **argv, FILE *out, FILE *err)
{
    static const pdp_cli_flag flags[] = {
        {"config", PDP_CLI_VALUE}, {"out", PDP_CLI_VALUE},
        {"since", PDP_CLI_VALUE},  {"now", PDP_CLI_VALUE},
        {"format", PDP_CLI_VALUE}, {NULL, 0}};
    static const char *const formats[] = {"text", "json", NULL};
    pdp_cli_io               io        = {out, err, "export"};
    pdp_cli_args             a;
    pdp_export_args          ea;
    tg_config               *cfg = NULL;
    pdp_store               *st  = NULL;
    pdp_export_report        rep;
    pdp_export_opts          o;
    char                     msg[2048] = "";
    int                      ec;

    memset(&a, 0, sizeof(a));
    memset(&ea, 0, sizeof(ea));
    if (pdp_export_to(argc, argv) != NULL) {
        if (strcmp(pdp_export_to(argc, argv), "litellm") == 0) {
            return pdp_export_litellm_cli(argc, argv, out, err);
        }
        return pdp_cli_usage_error(&io,
                                   "--to \"%s\": the only other gateway "
                                   "export writes for is litellm; without "
                                   "--to it writes Tollgate's own files",
                                   pdp_export_to(argc, argv));
    }
    if ((ec = pdp_cli_parse(&io, argc, argv, flags, 0, &a)) != PDP_EXIT_OK) {
        return ec;
    }
    if (a.help) {
        fputs(pdp_export_usage, out);
        return PDP_EXIT_OK;
    }
    ea.out    = pdp_cli_val(&a, "out");
    ea.now_ms = tg_now_ms();
    ea.json   = pdp_cli_val(&a, "format") != NULL &&
              strcmp(pdp_cli_val(&a, "format"), "json") == 0;
    if ((ec = pdp_cli_format(&io, pdp_cli_val(&a, "format"), formats)) !=
            PDP_EXIT_OK ||
        (ec = pdp_export_when(&io, "now", pdp_cli_val(&a, "now"), ea.now_ms,
                              &ea.now_ms)) != PDP_EXIT_OK ||
        (ec = pdp_export_when(&io, "since", pdp_cli_val(&a, "since"), ea.now_ms,
                              &ea.since_ms)) != PDP_EXIT_OK) {
        return ec;
    }
    if (ea.out == NULL || ea.out[0] == '\0') {
        return pdp_cli_usage_error(&io, "give --out DIR: the directory the "
                                        "export is written into");
    }
    if ((ec = pdp_cli_config(&io, pdp_cli_val(&a, "config"), NULL, &cfg)) !=
            PDP_EXIT_OK ||
        (ec = pdp_cli_store(&io, cfg, &st)) != PDP_EXIT_OK) {
        tg_config_destroy(cfg);
        return ec;
    }
    o = (pdp_export_opts){ea.out, cfg->pdp.state_dir, ea.since_ms, ea.now_ms,
                          PDP_VERSION};
    if (pdp_export_run(st, &o, &rep, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "tollgate-pdp export: %s\n", msg);
        ec = PDP_EXIT_FAIL;
    } else {
        pdp_export_print(&io, &ea, &rep);
    }
    pdp_export_report_fini(&rep);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}
