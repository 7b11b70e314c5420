/* fuzz_policy.c - the policy compiler: a bundle directory (bundle.json and
 * up to four *.policy.json files) loaded by pdp_bundle_load against the
 * catalog of policies/examples.config.json, then, when it compiles, one
 * evaluation with a trace. Input: the files, bundle.json first, separated
 * by lines "=====". Files go to a scratch directory, rewritten per input. */
#include "fuzz_util.h"
#include "pdp_policy.h"

#define FUZZ_POLICY_FILES 4

static tg_config *g_cfg;
static FILE      *g_null;
static char       g_dir[300];

static void
fuzz_policy_init(void)
{
    char err[4096];

    if (tg_config_load(&g_cfg, TG_FUZZ_SRC "/policies/examples.config.json",
                       err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "fuzz_policy: %s\n", err);
        abort();
    }
    snprintf(g_dir, sizeof(g_dir), "%s/bundle", fuzz_scratch_dir());
    if (mkdir(g_dir, 0700) != 0 || (g_null = fopen("/dev/null", "w")) ==
                                       NULL) {
        perror(g_dir);
        abort();
    }
}

static void
fuzz_policy_eval(const pdp_bundle *b)
{
    static pdp_attrs         a;
    static pdp_policy_result res;
    pdp_trace               *t = pdp_trace_create();

    memset(&a, 0, sizeof(a));
    snprintf(a.key_id, sizeof(a.key_id), "key-1");
    snprintf(a.user, sizeof(a.user), "alice");
    snprintf(a.key_labels[0].key, sizeof(a.key_labels[0].key), "team");
    snprintf(a.key_labels[0].value, sizeof(a.key_labels[0].value), "search");
    a.n_key_labels = 1;
    snprintf(a.tenant_id, sizeof(a.tenant_id), "acme");
    snprintf(a.tenant_tier, sizeof(a.tenant_tier), "free");
    a.endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(a.model, sizeof(a.model), "gpt-4o-mini");
    a.stream        = true;
    a.max_tokens    = 4096;
    a.prompt_tokens = 1200;
    snprintf(a.client_ip, sizeof(a.client_ip), "10.1.2.3");
    a.now_ms = 1767259800000; /* a Thursday, 09:30 UTC */
    pdp_bundle_eval(b, &a, &res, t);
    if (t != NULL) {
        pdp_trace_print(t, g_null);
    }
    pdp_trace_destroy(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char    err[16384];
    const uint8_t *p = data, *end = data + size, *part;
    char           path[400];
    size_t         len, n = 0;
    pdp_bundle    *b = NULL;

    if (g_cfg == NULL) {
        fuzz_policy_init();
    }
    while (n <= FUZZ_POLICY_FILES &&
           (part = fuzz_split(&p, end, "\n=====\n", &len)) != NULL) {
        if (n == 0) {
            snprintf(path, sizeof(path), "%s/bundle.json", g_dir);
        } else {
            snprintf(path, sizeof(path), "%s/r%zu.policy.json", g_dir, n);
        }
        fuzz_write_file(path, part, len);
        n++;
    }
    for (size_t i = n == 0 ? 0 : n; i <= FUZZ_POLICY_FILES; i++) {
        if (i == 0) {
            snprintf(path, sizeof(path), "%s/bundle.json", g_dir);
        } else {
            snprintf(path, sizeof(path), "%s/r%zu.policy.json", g_dir, i);
        }
        (void)unlink(path);
    }
    if (pdp_bundle_load(&b, g_dir, g_cfg, err, sizeof(err)) == TG_OK) {
        (void)pdp_bundle_name(b);
        (void)pdp_bundle_rule_count(b);
        fuzz_policy_eval(b);
        pdp_bundle_unref(b);
    }
    return 0;
}
