/* pdp_import_cli.h - `tollgate-pdp import litellm|portkey|tollgate ...`:
 * which importer of pdp/migrate reads the input. pdp_cli dispatches to it;
 * tests call it directly. Not thread-safe. */
#ifndef PDP_IMPORT_CLI_H
#define PDP_IMPORT_CLI_H

#include <stdio.h>

/* pdp_import_cli runs `import KIND ...`: argv holds the words after
 * "import". Returns the exit status of the importer (0 imported, 1 could
 * not write, 2 bad flags or input), or 2 for an unknown or missing KIND. */
int pdp_import_cli(int argc, char **argv, FILE *out, FILE *err);

#endif
