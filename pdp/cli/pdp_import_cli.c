/* pdp_import_cli.c - `tollgate-pdp import KIND ...`: one row per source
 * gateway, each an entry point of pdp/migrate that parses its own flags
 * (pdp_migrate.h, pdp_export.h). */
#include "pdp_import_cli.h"

#include <string.h>

#include "pdp_cli_flags.h"
#include "pdp_export.h"
#include "pdp_migrate.h"

typedef struct pdp_import_source {
    const char *name;
    const char *about;
    int (*fn)(int argc, char **argv, FILE *out, FILE *err);
} pdp_import_source;

static const pdp_import_source pdp_import_sources[] = {
    {"litellm", "a LiteLLM proxy config.yaml (and --keys: its /key/list)",
     pdp_import_litellm_cli},
    {"portkey", "a Portkey gateway config", pdp_import_portkey_cli},
    {"tollgate", "a `tollgate-pdp export` directory, into an empty state",
     pdp_import_tollgate_cli},
};

#define PDP_IMPORT_SOURCES                                                     \
    (sizeof(pdp_import_sources) / sizeof(pdp_import_sources[0]))

static void
pdp_import_usage(FILE *to)
{
    fprintf(to, "usage: tollgate-pdp import KIND INPUT [options]\n\n"
                "KIND (tollgate-pdp import KIND --help for its options):\n");
    for (size_t i = 0; i < PDP_IMPORT_SOURCES; i++) {
        fprintf(to, "  %-10s %s\n", pdp_import_sources[i].name,
                pdp_import_sources[i].about);
    }
}

int
pdp_import_cli(int argc, char **argv, FILE *out, FILE *err)
{
    const char *kind = argc > 0 ? argv[0] : NULL;

    if (kind != NULL &&
        (strcmp(kind, "--help") == 0 || strcmp(kind, "-h") == 0)) {
        pdp_import_usage(out);
        return PDP_EXIT_OK;
    }
    for (size_t i = 0; kind != NULL && i < PDP_IMPORT_SOURCES; i++) {
        if (strcmp(pdp_import_sources[i].name, kind) != 0) {
            continue;
        }
        return pdp_import_sources[i].fn(argc - 1, argv + 1, out, err);
    }
    if (kind != NULL) {
        fprintf(err, "tollgate-pdp import: unknown kind \"%s\"\n", kind);
    } else {
        fprintf(err, "tollgate-pdp import: say what to import\n");
    }
    pdp_import_usage(err);
    return PDP_EXIT_USAGE;
}
