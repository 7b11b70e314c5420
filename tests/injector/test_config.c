/* injector.config - the injector's config file: defaults, every key,
 * unknown keys and bad values refused with file:line:col; quantities. */
#include <stdio.h>
#include <string.h>

#include "inj_config.h"
#include "tg_unit.h"

static tg_err
load(const char *text, inj_config *cfg, char *err, size_t errlen)
{
    const char *dir  = tg_unit_tmpdir("injcfg");
    const char *path = tg_unit_write(dir, "injector.json", text);
    static char keep[768];

    snprintf(keep, sizeof(keep), "%s", path);
    return inj_config_load(cfg, keep, err, errlen);
}

static void
test_full(void)
{
    inj_config cfg;
    char       err[512];

    CU_ASSERT_EQUAL_FATAL(
        load("{\"listen\": \"127.0.0.1:9443\", \"cert_file\": \"tls/tls.crt\","
             " \"key_file\": \"/k/tls.key\", \"inject_by_default\": true,\n"
             " \"images\": {\"pdp\": \"p:1\"}, \"log_format\": \"json\",\n"
             " \"resources\": {\"dataplane\": {\"memory\": \"1Gi\"}},\n"
             " \"default_bundle\": \"b\", \"central_pdp_url\": "
             "\"tls+tcp://x:7070\"}",
             &cfg, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_STRING_EQUAL(cfg.listen, "127.0.0.1:9443");
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.cert_file, "/tls/tls.crt"));
    CU_ASSERT_EQUAL(cfg.cert_file[0], '/');
    CU_ASSERT_STRING_EQUAL(cfg.key_file, "/k/tls.key");
    CU_ASSERT(cfg.inject_by_default);
    CU_ASSERT(cfg.log_json);
    CU_ASSERT_STRING_EQUAL(cfg.image_pdp, "p:1");
    CU_ASSERT_STRING_EQUAL(cfg.image_dataplane,
                           "localhost/tollgate-dataplane:dev");
    CU_ASSERT_STRING_EQUAL(cfg.res_dataplane.memory, "1Gi");
    CU_ASSERT_STRING_EQUAL(cfg.res_dataplane.cpu, "100m");
    CU_ASSERT_STRING_EQUAL(cfg.default_bundle, "b");
    inj_config_fini(&cfg);
}

typedef struct bad {
    const char *text;
    const char *says;
} bad;

static void
test_refused(void)
{
    static const bad bads[] = {
        {"{\n  \"listen\": \"0.0.0.0:8443\",\n  \"inject_by_defualt\": true\n}",
         ":3:"},
        {"{\"images\": {\"pdp\": \"a\", \"sidecar\": \"b\"}}", "sidecar"},
        {"{\"resources\": {\"pdp\": {\"memory\": \"lots\"}}}", "quantity"},
        {"{\"default_bundle\": \"Has_Caps\"}", "object name"},
        {"{\"cert_file\": \"a.crt\"}", "go together"},
        {"{\"cert_poll_s\": 0}", "cert_poll_s"},
        {"{\"image_pull_policy\": \"Sometimes\"}", "IfNotPresent"},
        {"{\"log_format\": \"xml\"}", "log_format"},
        {"[]", "object"},
        {"{\"listen\": ", ":1:"},
    };
    inj_config cfg;
    char       err[512];

    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_NOT_EQUAL(load(bads[i].text, &cfg, err, sizeof(err)), TG_OK);
        if (strstr(err, bads[i].says) == NULL) {
            fprintf(stderr, "\ncase %zu: \"%s\"\n", i, err);
        }
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bads[i].says));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "injector.json:"));
        inj_config_fini(&cfg);
    }
}

static void
test_quantity(void)
{
    static const char *const good[] = {"1",   "100m",  "0.5", ".5",
                                       "1.",  "128Mi", "1Gi", "2k",
                                       "1e3", "1E-2",  "5n",  NULL};
    static const char *const badq[] = {
        "",  "lots",  "-1", "1GB",  "1 Gi", "m",
        ".", "1.2.3", "1e", "1Mi ", "+1",   "123456789012345678901234567890123",
        NULL};

    for (size_t i = 0; good[i] != NULL; i++) {
        CU_ASSERT(inj_quantity_ok(good[i]));
    }
    for (size_t i = 0; badq[i] != NULL; i++) {
        if (inj_quantity_ok(badq[i])) {
            fprintf(stderr, "\naccepted \"%s\"\n", badq[i]);
        }
        CU_ASSERT(!inj_quantity_ok(badq[i]));
    }
    CU_ASSERT(inj_dns_name_ok("tollgate-bundle.v2"));
    CU_ASSERT(!inj_dns_name_ok("-x"));
    CU_ASSERT(!inj_dns_name_ok("A"));
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"every key", test_full},
        {"refused configs say file:line", test_refused},
        {"quantities and names", test_quantity},
        {NULL, NULL},
    };

    return tg_unit_run("injector.config", cases);
}
