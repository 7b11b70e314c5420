/* fuzz_admin_api.c - the administration API (pdp_api_handle) as the admin
 * server and the CLI call it, against one state store per process in a
 * scratch directory (so state builds up across inputs, as in a running
 * PDP) and the catalog of policies/examples.config.json. Input: a first
 * line "METHOD PATH[?QUERY]" (PATH without the /admin/v1/ prefix), then
 * the body. */
#include "fuzz_util.h"
#include "pdp_api.h"

static pdp_store *g_st;
static tg_config *g_cfg;

static void
fuzz_api_init(void)
{
    char err[4096];
    char dir[300];

    if (tg_config_load(&g_cfg, TG_FUZZ_SRC "/policies/examples.config.json",
                       err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "fuzz_admin_api: %s\n", err);
        abort();
    }
    snprintf(dir, sizeof(dir), "%s/state", fuzz_scratch_dir());
    if (pdp_store_open(&g_st, dir, 64, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "fuzz_admin_api: %s\n", err);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pdp_api_ctx    x = {0};
    const uint8_t *p = data, *end = data + size, *line;
    size_t         llen = 0;
    char          *head, *path, *query, *body;
    tg_buf         out;

    if (g_st == NULL) {
        fuzz_api_init();
    }
    line = fuzz_split(&p, end, "\n", &llen);
    head = fuzz_strndup(line != NULL ? line : data, line != NULL ? llen : 0);
    body = fuzz_strndup(p, (size_t)(end - p));
    path  = strchr(head, ' ');
    if (path != NULL) {
        *path++ = '\0';
    } else {
        path = head + strlen(head);
    }
    query = strchr(path, '?');
    if (query != NULL) {
        *query++ = '\0';
    }
    {
        size_t plen = strlen(PDP_API_PREFIX) + strlen(path) + 1;
        char  *full = malloc(plen);
        if (full == NULL) {
            abort();
        }
        snprintf(full, plen, "%s%s", PDP_API_PREFIX, path);
        x.st     = g_st;
        x.cfg    = g_cfg;
        x.actor  = "fuzz";
        x.now_ms = 1767259800000;
        tg_buf_init(&out, 1 << 22);
        (void)pdp_api_handle(&x, head, full, query, body, (size_t)(end - p),
                             &out);
        tg_buf_fini(&out);
        free(full);
    }
    free(head);
    free(body);
    return 0;
}
