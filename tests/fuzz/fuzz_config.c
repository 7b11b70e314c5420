/* fuzz_config.c - the config loader (tg_config_load) on any file: every
 * key checked, errors with file:line:col. Input: the file, written to a
 * scratch directory per input (the loader takes a path, and resolves
 * relative paths against its directory). */
#include "fuzz_util.h"
#include "tg_config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[300];
    char        err[4096];
    tg_config  *cfg = NULL;

    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "%s/tollgate.json", fuzz_scratch_dir());
    }
    fuzz_write_file(path, data, size);
    if (tg_config_load(&cfg, path, err, sizeof(err)) == TG_OK) {
        tg_config_destroy(cfg);
    }
    return 0;
}
