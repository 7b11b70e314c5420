/* common.config - the config file both processes read: defaults, every
 * error with file:line:col, and secrets never literal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_config.h"
#include "tg_unit.h"

#define GOOD                                                                   \
    "{\n"                                                                      \
    "  \"pdp\": {\"listen\": [\"ipc:///tmp/x.sock\"], \"state_dir\": "         \
    "\"state\"},\n"                                                            \
    "  \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "          \
    "\"ipc:///tmp/x.sock\", \"spool_dir\": \"/var/spool\"},\n"                 \
    "  \"deployments\": [\n"                                                   \
    "    {\"id\": \"a\", \"model\": \"m\", \"provider\": \"openai\", "         \
    "\"api_base\": \"http://127.0.0.1:9/v1\", \"api_key\": \"${TG_T_KEY}\"}"   \
    "\n  ]\n}\n"

static tg_err
load(const char *text, tg_config **cfg, char *err, size_t errlen)
{
    const char *dir  = tg_unit_tmpdir("config");
    const char *path = tg_unit_write(dir, "tollgate.json", text);

    return tg_config_load(cfg, path, err, errlen);
}

/* dataplane.responses_pdp names one of pdp_url's entries (1-based). */
static void
test_responses_pdp(void)
{
    static const char *const url = "\"pdp_url\": \"ipc:///tmp/x.sock\"";
    tg_config               *cfg = NULL;
    char                     err[512];
    char                     text[2048];
    const char              *p = strstr(GOOD, url);
    int                      n = (int)(p - GOOD);

    CU_ASSERT_EQUAL_FATAL(load(GOOD, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->dataplane.responses_pdp, 1);
    tg_config_destroy(cfg);
    snprintf(text, sizeof(text),
             "%.*s\"pdp_url\": [\"ipc:///tmp/x.sock\", "
             "\"ipc:///tmp/y.sock\"], \"responses_pdp\": 2%s",
             n, GOOD, p + strlen(url));
    cfg = NULL;
    CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->dataplane.responses_pdp, 2);
    tg_config_destroy(cfg);
    snprintf(text, sizeof(text), "%.*s%s, \"responses_pdp\": 2%s", n, GOOD,
             url, p + strlen(url));
    cfg = NULL;
    CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate.json:3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "dataplane.responses_pdp 2: pdp_url "
                                       "lists 1"));
}

static void
test_good_config_and_defaults(void)
{
    tg_config *cfg = NULL;
    char       err[512];

    CU_ASSERT_EQUAL_FATAL(load(GOOD, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->pdp.n_listen, 1);
    CU_ASSERT_PTR_NULL(cfg->pdp.alert_webhook);
    CU_ASSERT_EQUAL(cfg->dataplane.pdp_timeout_ms, 50);
    CU_ASSERT_FALSE(cfg->dataplane.on_pdp_error_allow);
    CU_ASSERT_EQUAL(cfg->n_deployments, 1);
    CU_ASSERT_STRING_EQUAL(cfg->deployments[0].upstream_model, "m");
    /* relative paths resolve against the config file's directory */
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg->pdp.state_dir, "/tg-unit-config-"));
    CU_ASSERT_STRING_EQUAL(cfg->dataplane.spool_dir, "/var/spool");
    CU_ASSERT_PTR_NOT_NULL(tg_config_deployment(cfg, "a"));
    CU_ASSERT_PTR_NULL(tg_config_deployment(cfg, "b"));
    tg_config_destroy(cfg);
}

/* Plain tcp:// has no authentication: both ends refuse it (unless
 * pdp.allow_plain_tcp, to loopback only). */
static void
test_pdp_link_is_local(void)
{
    static const char *const swaps[][2] = {
        {"\"listen\": [\"ipc:///tmp/x.sock\"]",
         "\"listen\": [\"tcp://127.0.0.1:7070\"]"},
        {"\"pdp_url\": \"ipc:///tmp/x.sock\"",
         "\"pdp_url\": \"tcp://127.0.0.1:7070\""},
        {"\"pdp_url\": \"ipc:///tmp/x.sock\"", "\"pdp_url\": \"ipc://x.sock\""},
    };

    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        tg_config *cfg = NULL;
        char       err[512];
        char       text[2048];
        char      *p;

        snprintf(text, sizeof(text), "%s", GOOD);
        p = strstr(text, swaps[i][0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        snprintf(text + (p - text), sizeof(text) - (size_t)(p - text), "%s%s",
                 swaps[i][1], strstr(GOOD, swaps[i][0]) + strlen(swaps[i][0]));
        CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), TG_ECONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, i < 2 ? "is plain tcp://"
                                                 : "expected ipc:///absolute"));
        CU_ASSERT_PTR_NOT_NULL(
            strstr(err, i == 0 ? "tollgate.json:2:" : "tollgate.json:3:"));
    }
}

/* With pdp.allow_plain_tcp, tcp:// is taken to loopback literals and
 * localhost only: a name such as 127.evil.example goes where DNS says. */
static void
test_plain_tcp_loopback_only(void)
{
    static const struct {
        const char *url;
        bool        ok;
    } cases[] = {
        {"tcp://127.0.0.1:7070", true},         {"tcp://127.9.8.7:7070", true},
        {"tcp://localhost:7070", true},         {"tcp://[::1]:7070", true},
        {"tcp://127.evil.example:7070", false}, {"tcp://10.0.0.1:7070", false},
        {"tcp://1127.0.0.1:7070", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_config *cfg      = NULL;
        char       err[512] = "";
        char       text[2048];

        snprintf(text, sizeof(text),
                 "{\n  \"pdp\": {\"listen\": [\"ipc:///tmp/x.sock\"], "
                 "\"state_dir\": \"s\", \"allow_plain_tcp\": true},\n"
                 "  \"dataplane\": {\"listen\": \"127.0.0.1:8080\", "
                 "\"pdp_url\": \"%s\", \"spool_dir\": \"/sp\"},\n"
                 "  \"deployments\": []\n}\n",
                 cases[i].url);
        CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)) == TG_OK,
                        cases[i].ok);
        if (!cases[i].ok) {
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "only to a loopback address"));
        }
        tg_config_destroy(cfg);
    }
}

/* dataplane.pdp_url may list fallbacks; tls+tcp:// needs the TLS files,
 * resolved against the config's directory; private_volumes are kept. */
static void
test_pdp_link_lists_and_tls(void)
{
    static const char text[] =
        "{\n"
        "  \"private_volumes\": [\"/run/tollgate\"],\n"
        "  \"pdp\": {\"listen\": [\"tls+tcp://0.0.0.0:7070\"], "
        "\"state_dir\": \"state\", \"tls\": {\"cert_file\": \"p.crt\", "
        "\"key_file\": \"p.key\", \"client_ca_file\": \"/ca.crt\"}},\n"
        "  \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "
        "[\"ipc:///tmp/x.sock\", \"tls+tcp://pdp.ns.svc:7070\"], "
        "\"pdp_tls\": {\"cert_file\": \"d.crt\", \"key_file\": \"d.key\", "
        "\"ca_file\": \"ca.crt\", \"server_name\": \"pdp.ns.svc\"}, "
        "\"spool_dir\": \"/var/spool\"},\n"
        "  \"deployments\": []\n}\n";
    tg_config *cfg = NULL;
    char       err[512];

    CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->dataplane.n_pdp_urls, 2);
    CU_ASSERT_STRING_EQUAL(cfg->dataplane.pdp_url, "ipc:///tmp/x.sock");
    CU_ASSERT_STRING_EQUAL(cfg->dataplane.pdp_urls[1],
                           "tls+tcp://pdp.ns.svc:7070");
    CU_ASSERT_STRING_EQUAL(cfg->dataplane.pdp_tls.server_name, "pdp.ns.svc");
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg->dataplane.pdp_tls.cert_file, "/d.crt"));
    CU_ASSERT_EQUAL(cfg->dataplane.pdp_tls.cert_file[0], '/');
    CU_ASSERT_STRING_EQUAL(cfg->pdp.tls.ca_file, "/ca.crt");
    CU_ASSERT_EQUAL(cfg->n_private_volumes, 1);
    CU_ASSERT_EQUAL(cfg->dataplane.drain_timeout_s, 25);
    CU_ASSERT_EQUAL(cfg->pdp.drain_timeout_s, 10);
    CU_ASSERT_EQUAL(tg_config_url_kind_of(cfg->pdp.listen[0]), TG_URL_TLS);
    tg_config_destroy(cfg);
}

/* A config from an older release (max_message_bytes 65536, its default)
 * still loads, raised to hold a full usage batch. */
static void
test_small_message_limit_is_raised(void)
{
    tg_config *cfg = NULL;
    char       err[512];
    char       text[2048];
    char      *p;

    snprintf(text, sizeof(text), "%s", GOOD);
    p = strstr(text, "\"state_dir\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    snprintf(p, sizeof(text) - (size_t)(p - text),
             "\"max_message_bytes\": 65536, %s", strstr(GOOD, "\"state_dir\""));
    CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->pdp.max_message_bytes, TG_CONFIG_PDP_MSG_MIN);
    tg_config_destroy(cfg);
}

/* pdp.responses: defaults, values, and errors with their location. */
static void
test_pdp_responses(void)
{
    tg_config  *cfg = NULL;
    char        err[512];
    char        text[2048];
    char       *p;
    const char *bad[][2] = {
        {"{\"retention_days\": 0}", "retention_days"},
        {"{\"max_bytes_per_tenant\": -1}", "max_bytes_per_tenant"},
        {"{\"max_response_bytes\": 1000}", "max_response_bytes"},
        {"{\"max_response_bytes\": 7000000}", "max_response_bytes"},
        {"{\"retension_days\": 3}", "unknown key \"retension_days\""},
        {"30", "pdp.responses: expected an object"},
    };

    CU_ASSERT_EQUAL_FATAL(load(GOOD, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->pdp.resp_retention_days, 30);
    CU_ASSERT_EQUAL(cfg->pdp.resp_retention_s, 0);
    CU_ASSERT_EQUAL(cfg->pdp.resp_max_bytes_per_tenant, 104857600);
    CU_ASSERT_EQUAL(cfg->pdp.resp_max_response_bytes, 4 << 20);
    tg_config_destroy(cfg);
    snprintf(text, sizeof(text), "%s", GOOD);
    p = strstr(text, "\"state_dir\"");
    snprintf(text + (p - text), sizeof(text) - (size_t)(p - text),
             "\"responses\": {\"retention_days\": 7, \"retention_seconds\": "
             "90, \"max_bytes_per_tenant\": 0, \"max_response_bytes\": "
             "65536}, %s",
             strstr(GOOD, "\"state_dir\""));
    CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(cfg->pdp.resp_retention_days, 7);
    CU_ASSERT_EQUAL(cfg->pdp.resp_retention_s, 90);
    CU_ASSERT_EQUAL(cfg->pdp.resp_max_bytes_per_tenant, 0);
    CU_ASSERT_EQUAL(cfg->pdp.resp_max_response_bytes, 65536);
    tg_config_destroy(cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s", GOOD);
        p = strstr(text, "\"state_dir\"");
        snprintf(text + (p - text), sizeof(text) - (size_t)(p - text),
                 "\"responses\": %s, %s", bad[i][0],
                 strstr(GOOD, "\"state_dir\""));
        cfg = NULL;
        CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), TG_ECONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate.json:2:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i][1]));
        if (strstr(err, bad[i][1]) == NULL) {
            fprintf(stderr, "case %zu: %s\n", i, err);
        }
    }
}

static void
test_unknown_key_has_location(void)
{
    tg_config *cfg = NULL;
    char       err[512];
    char       text[2048];

    snprintf(text, sizeof(text), "%s", GOOD);
    /* a typo on line 3 */
    char *p = strstr(text, "\"pdp_url\"");
    memcpy(p, "\"pdp_ur1\"", 9);
    CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate.json:3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key \"pdp_ur1\""));
}

static void
test_literal_secret_refused_without_echo(void)
{
    tg_config *cfg = NULL;
    char       err[512];
    char       text[2048];

    snprintf(text, sizeof(text), "%s", GOOD);
    char *p = strstr(text, "${TG_T_KEY}");
    memcpy(p, "sk-realkey!", 11);
    CU_ASSERT_EQUAL(load(text, &cfg, err, sizeof(err)), TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "deployments[0].api_key"));
    CU_ASSERT_PTR_NULL(strstr(err, "sk-realkey"));
}

/* with_deployment is GOOD with deployment a's provider and api_key
 * replaced by fields (a JSON fragment). */
static tg_err
with_deployment(const char *fields, tg_config **cfg, char *err, size_t errlen)
{
    char  text[2048];
    char *p;

    snprintf(text, sizeof(text), "%s", GOOD);
    p = strstr(text, "\"provider\"");
    snprintf(p, sizeof(text) - (size_t)(p - text),
             "%s, \"api_base\": \"http://127.0.0.1:9\"}\n  ]\n}\n", fields);
    return load(text, cfg, err, errlen);
}

/* with_pricing is GOOD with deployment a's "pricing" set to json. */
static tg_err
with_pricing(const char *json, tg_config **cfg, char *err, size_t errlen)
{
    char fields[512];

    snprintf(fields, sizeof(fields),
             "\"provider\": \"openai\", \"pricing\": %s", json);
    return with_deployment(fields, cfg, err, errlen);
}

static void
test_deployment_pricing(void)
{
    tg_config *cfg = NULL;
    char       err[512];

    CU_ASSERT_EQUAL_FATAL(with_pricing("{\"input_per_mtok\": 0.5, "
                                       "\"output_per_mtok\": 1.25}",
                                       &cfg, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_TRUE(cfg->deployments[0].has_price);
    CU_ASSERT_EQUAL(cfg->deployments[0].price_input, 500000);
    CU_ASSERT_EQUAL(cfg->deployments[0].price_output, 1250000);
    CU_ASSERT_EQUAL(cfg->deployments[0].price_cached_input, 500000);
    tg_config_destroy(cfg);
    cfg = NULL;
    CU_ASSERT_EQUAL(with_pricing("{\"input_per_mtok\": -1, "
                                 "\"output_per_mtok\": 1}",
                                 &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "deployments[0].pricing.input_per_mtok"));
    CU_ASSERT_EQUAL(
        with_pricing("{\"input_per_mtok\": 1}", &cfg, err, sizeof(err)),
        TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing \"output_per_mtok\""));
    CU_ASSERT_EQUAL(with_pricing("{\"input_per_mtok\": 1, \"output_per_mtok\""
                                 ": 1, \"currency\": \"EUR\"}",
                                 &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key \"currency\""));
}

/* "stream_options": the provider's default (Mistral rejects the field),
 * overridable, and only on OpenAI-format deployments. */
static void
test_stream_options(void)
{
    tg_config *cfg = NULL;
    char       err[512];

    CU_ASSERT_EQUAL_FATAL(load(GOOD, &cfg, err, sizeof(err)), TG_OK);
    CU_ASSERT_FALSE(cfg->deployments[0].no_stream_options);
    tg_config_destroy(cfg);
    CU_ASSERT_EQUAL_FATAL(
        with_deployment("\"provider\": \"mistral\"", &cfg, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_TRUE(cfg->deployments[0].no_stream_options);
    tg_config_destroy(cfg);
    CU_ASSERT_EQUAL_FATAL(with_deployment("\"provider\": \"mistral\", "
                                          "\"stream_options\": true",
                                          &cfg, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_FALSE(cfg->deployments[0].no_stream_options);
    tg_config_destroy(cfg);
    CU_ASSERT_EQUAL_FATAL(with_deployment("\"provider\": \"vllm\", "
                                          "\"stream_options\": false",
                                          &cfg, err, sizeof(err)),
                          TG_OK);
    CU_ASSERT_TRUE(cfg->deployments[0].no_stream_options);
    tg_config_destroy(cfg);
    cfg = NULL;
    CU_ASSERT_EQUAL(with_deployment("\"provider\": \"vllm\", "
                                    "\"stream_options\": \"no\"",
                                    &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "deployments[0].stream_options: expected true or false"));
    CU_ASSERT_EQUAL(with_deployment("\"provider\": \"anthropic\", "
                                    "\"stream_options\": false",
                                    &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "only OpenAI-format deployments"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate.json:5:"));
}

static void
test_bad_values(void)
{
    tg_config *cfg = NULL;
    char       err[512];

    CU_ASSERT_EQUAL(load("{\"pdp\": {\"listen\": [\"http://x\"], "
                         "\"state_dir\": \"s\"}}",
                         &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pdp.listen: expected ipc://"));
    CU_ASSERT_EQUAL(load("{\"pdp\": {\"listen\": [\"ipc:///a\"], "
                         "\"state_dir\": \"s\", \"workers\": 0}}",
                         &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pdp.workers: expected an integer "
                                       "from 1"));
    CU_ASSERT_EQUAL(load("{\"pdp\": {\"listen\": [\"ipc:///a\"], "
                         "\"state_dir\": \"s\", \"alert_webhook\": "
                         "\"ftp://h/x\"}}",
                         &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate.json:1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pdp.alert_webhook: expected an "
                                       "http:// or https:// URL"));
    CU_ASSERT_EQUAL(load("{\"pdp\": {\"listen\": [\"ipc:///a\"], "
                         "\"state_dir\": \"s\"}}",
                         &cfg, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing section \"dataplane\""));
}

static void
test_secret_resolution(void)
{
    char *v = NULL;
    char  missing[64];

    unsetenv("TG_T_KEY");
    CU_ASSERT_EQUAL(
        tg_config_secret("${TG_T_KEY}", &v, missing, sizeof(missing)),
        TG_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(missing, "TG_T_KEY");
    setenv("TG_T_KEY", "k123", 1);
    CU_ASSERT_EQUAL(
        tg_config_secret("${TG_T_KEY}", &v, missing, sizeof(missing)), TG_OK);
    CU_ASSERT_STRING_EQUAL(v, "k123");
    free(v);
    CU_ASSERT_EQUAL(tg_config_secret("k123", &v, missing, sizeof(missing)),
                    TG_EINVAL);
}

/* pdp.ha and a sidecar's list of central PDPs: what each accepts, and each
 * mistake named with its place. */
static void
test_ha_and_upstream_lists(void)
{
    static const struct {
        const char *pdp_extra; /* after "state_dir": "state" */
        const char *want;      /* NULL: loads; else in the error */
    } cases[] = {
        {", \"allow_plain_tcp\": true, \"ha\": {\"role\": \"standby\", "
         "\"peer\": \"tcp://127.0.0.1:7001\"}",
         NULL},
        {", \"ha\": {}", NULL},
        {", \"ha\": {\"role\": \"standby\"}", "a standby needs \"peer\""},
        {", \"ha\": {\"role\": \"leader\"}", "pdp.ha.role"},
        {", \"ha\": {\"on_standby_lost\": \"panic\"}",
         "pdp.ha.on_standby_lost"},
        {", \"ha\": {\"peer\": \"tcp://10.0.0.2:7001\"}", "plain tcp://"},
        {", \"ha\": {\"peer\": \"tls+tcp://b:7001\"}", "needs \"tls\""},
        {", \"ha\": {\"rol\": \"active\"}", "rol"},
        {", \"allow_plain_tcp\": true, \"upstream\": {\"url\": "
         "[\"tcp://127.0.0.1:7001\", \"tcp://127.0.0.1:7002\"]}",
         NULL},
        {", \"allow_plain_tcp\": true, \"upstream\": {\"url\": []}",
         "expected 1 to 4 URLs"},
        {", \"allow_plain_tcp\": true, \"upstream\": {\"url\": "
         "[\"tcp://127.0.0.1:7001\", \"ipc:///tmp/c.sock\"]}",
         "expected tls+tcp://"},
        {", \"allow_plain_tcp\": true, \"upstream\": {\"url\": "
         "\"tcp://127.0.0.1:7001\"}, \"ha\": {}",
         "a sidecar (\"upstream\") lists"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_config  *cfg = NULL;
        char        err[1024], text[2048];
        const char *at = strstr(GOOD, "\"state_dir\": \"state\"");
        size_t n = (size_t)(at - GOOD) + strlen("\"state_dir\": \"state\"");
        tg_err rv;

        snprintf(text, sizeof(text), "%.*s%s%s", (int)n, GOOD,
                 cases[i].pdp_extra, GOOD + n);
        rv = load(text, &cfg, err, sizeof(err));
        if (cases[i].want == NULL) {
            CU_ASSERT_EQUAL(rv, TG_OK);
            if (rv != TG_OK) {
                fprintf(stderr, "case %zu: %s\n", i, err);
            }
        } else {
            CU_ASSERT_NOT_EQUAL(rv, TG_OK);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
            if (rv == TG_OK || strstr(err, cases[i].want) == NULL) {
                fprintf(stderr, "case %zu: want \"%s\", got \"%s\"\n", i,
                        cases[i].want, rv == TG_OK ? "loaded" : err);
            }
            /* file:line: the place of the mistake */
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgate.json:"));
        }
        if (i == 0 && rv == TG_OK) {
            CU_ASSERT_TRUE(cfg->pdp.ha.on && cfg->pdp.ha.standby);
            CU_ASSERT_FALSE(cfg->pdp.ha.lost_refuse);
            CU_ASSERT_EQUAL(cfg->pdp.ha.ack_timeout_ms, 500);
        }
        if (i == 1 && rv == TG_OK) {
            CU_ASSERT_TRUE(cfg->pdp.ha.on && !cfg->pdp.ha.standby);
        }
        if (i == 8 && rv == TG_OK) {
            CU_ASSERT_EQUAL(cfg->pdp.upstream.n_urls, 2);
            CU_ASSERT_STRING_EQUAL(cfg->pdp.upstream.url,
                                   "tcp://127.0.0.1:7001");
        }
        tg_config_destroy(cfg);
    }
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"pdp_responses", test_pdp_responses},
        {"responses_pdp", test_responses_pdp},
        {"good_config_and_defaults", test_good_config_and_defaults},
        {"deployment_pricing", test_deployment_pricing},
        {"stream_options", test_stream_options},
        {"unknown_key_has_location", test_unknown_key_has_location},
        {"pdp_link_is_local", test_pdp_link_is_local},
        {"pdp_link_lists_and_tls", test_pdp_link_lists_and_tls},
        {"plain_tcp_loopback_only", test_plain_tcp_loopback_only},
        {"small_message_limit_is_raised", test_small_message_limit_is_raised},
        {"literal_secret_refused_without_echo",
         test_literal_secret_refused_without_echo},
        {"bad_values", test_bad_values},
        {"secret_resolution", test_secret_resolution},
        {"ha_and_upstream_lists", test_ha_and_upstream_lists},
        {NULL, NULL},
    };
    return tg_unit_run("common.config", cases);
}
