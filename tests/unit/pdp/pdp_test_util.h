/* pdp_test_util.h - shared fixtures for the PDP unit tests: a config with a
 * small deployments catalog in a fresh temp dir, and a price table. */
#ifndef PDP_TEST_UTIL_H
#define PDP_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_config.h"
#include "tg_unit.h"

/* Catalog order matters: decide must return targets in this order. */
#define PDP_TEST_DEPLOYMENTS                                                   \
    "  \"deployments\": [\n"                                                   \
    "    {\"id\": \"oai-mini\", \"model\": \"gpt-4o-mini\", \"provider\": "    \
    "\"openai\", \"api_base\": \"https://api.openai.com/v1\", \"api_key\": "   \
    "\"${OPENAI_API_KEY}\"},\n"                                                \
    "    {\"id\": \"oai-4o\", \"model\": \"gpt-4o\", \"provider\": "           \
    "\"openai\", \"api_base\": \"https://api.openai.com/v1\"},\n"              \
    "    {\"id\": \"mock-mini\", \"model\": \"gpt-4o-mini\", \"provider\": "   \
    "\"openai\", \"api_base\": \"http://127.0.0.1:9/v1\"},\n"                  \
    "    {\"id\": \"emb\", \"model\": \"text-embedding-3-small\", "            \
    "\"provider\": \"openai\", \"api_base\": \"http://127.0.0.1:9/v1\"}\n"     \
    "  ]\n"

#define PDP_TEST_PRICING                                                       \
    "{\n"                                                                      \
    "  \"currency\": \"USD\",\n"                                               \
    "  \"models\": {\n"                                                        \
    "    \"gpt-4o-mini\": {\"input_per_mtok\": 0.15, \"output_per_mtok\": "    \
    "0.60, \"cached_input_per_mtok\": 0.075}\n"                                \
    "  }\n"                                                                    \
    "}\n"

/* pdp_test_config writes dir/tollgate.json (state in dir/state, nng on
 * ipc://dir/run/pdp.sock, prices in dir/pricing.json) and returns its path
 * in a static buffer. */
static inline const char *
pdp_test_config(const char *dir, int64_t map_size_mb)
{
    static char path[768];
    char        text[4096];

    tg_unit_write(dir, "pricing.json", PDP_TEST_PRICING);
    snprintf(text, sizeof(text),
             "{\n"
             "  \"pdp\": {\"listen\": [\"ipc://%s/run/pdp.sock\"], "
             "\"state_dir\": \"state\", \"pricing_file\": \"pricing.json\", "
             "\"workers\": 4, \"map_size_mb\": %lld},\n"
             "  \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "
             "\"ipc://%s/run/pdp.sock\", \"spool_dir\": \"spool\"},\n"
             "%s}\n",
             dir, (long long)map_size_mb, dir, PDP_TEST_DEPLOYMENTS);
    snprintf(path, sizeof(path), "%s",
             tg_unit_write(dir, "tollgate.json", text));
    return path;
}

static inline tg_config *
pdp_test_load(const char *path)
{
    tg_config *cfg = NULL;
    char       err[512];

    if (tg_config_load(&cfg, path, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "test config: %s\n", err);
        exit(2);
    }
    return cfg;
}

#endif
