/* pdp_export_litellm.c - `tollgate-pdp export --to litellm --config FILE
 * --out DIR`: the way off Tollgate. Writes DIR/config.yaml, a LiteLLM
 * proxy config for the deployments, model groups, strategy, retries,
 * timeouts, cooldown and fallbacks (secrets as os.environ/NAME, never
 * values), with libyaml's emitter; and DIR/findings.txt, what LiteLLM
 * cannot express (policy rules, exact budgets, guardrails, the decision
 * log, ...). Called by pdp/cli/pdp_export_cli.c (pdp_migrate.h). */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "pdp_migrate.h"
#include "tg_config.h"

/* One emitter and what went wrong first. */
typedef struct pdp_lx {
    yaml_emitter_t em;
    bool           failed;
} pdp_lx;

static void
pdp_lx_emit(pdp_lx *x, yaml_event_t *ev, int ok)
{
    if (!ok || x->failed) {
        x->failed = true;
        if (ok) {
            yaml_event_delete(ev);
        }
        return;
    }
    if (!yaml_emitter_emit(&x->em, ev)) { /* the emitter frees ev */
        x->failed = true;
    }
}

/* pdp_lx_plain_is_string: a plain scalar s would be read back as a
 * string (not null, a bool or a number), so it needs no quotes. */
static bool
pdp_lx_plain_is_string(const char *s)
{
    static const char *const words[] = {
        "",     "~",     "null",  "Null",  "NULL", "true", "True",
        "TRUE", "false", "False", "FALSE", "yes",  "Yes",  "YES",
        "no",   "No",    "NO",    "on",    "On",   "ON",   "off",
        "Off",  "OFF",   ".inf",  ".nan",  NULL};
    char *end;

    for (size_t i = 0; words[i] != NULL; i++) {
        if (strcmp(s, words[i]) == 0) {
            return false;
        }
    }
    (void)strtod(s, &end);
    return !(end != s && *end == '\0') && strchr("0123456789+-.", s[0]) == NULL;
}

/* pdp_lx_str emits a string, quoted when plain text would read as
 * something else. */
static void
pdp_lx_str(pdp_lx *x, const char *s)
{
    yaml_event_t ev;
    bool         plain = pdp_lx_plain_is_string(s);

    pdp_lx_emit(
        x, &ev,
        yaml_scalar_event_initialize(
            &ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, !plain,
            plain ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE));
}

/* pdp_lx_num emits number text as a plain scalar (read as a number). */
static void
pdp_lx_num(pdp_lx *x, const char *s)
{
    yaml_event_t ev;

    pdp_lx_emit(x, &ev,
                yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
                                             (int)strlen(s), 1, 0,
                                             YAML_PLAIN_SCALAR_STYLE));
}

static void
pdp_lx_int(pdp_lx *x, int64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    pdp_lx_num(x, buf);
}

/* pdp_lx_secs emits milliseconds as seconds ("2.5"). */
static void
pdp_lx_secs(pdp_lx *x, int64_t ms)
{
    char buf[48];

    if (ms % 1000 == 0) {
        snprintf(buf, sizeof(buf), "%" PRId64, ms / 1000);
    } else {
        snprintf(buf, sizeof(buf), "%" PRId64 ".%03" PRId64, ms / 1000,
                 ms % 1000);
        while (buf[strlen(buf) - 1] == '0') {
            buf[strlen(buf) - 1] = '\0';
        }
    }
    pdp_lx_num(x, buf);
}

static void
pdp_lx_map(pdp_lx *x, bool start)
{
    yaml_event_t ev;

    pdp_lx_emit(x, &ev,
                start ? yaml_mapping_start_event_initialize(
                            &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
                      : yaml_mapping_end_event_initialize(&ev));
}

static void
pdp_lx_seq(pdp_lx *x, bool start, bool flow)
{
    yaml_event_t ev;

    pdp_lx_emit(
        x, &ev,
        start ? yaml_sequence_start_event_initialize(
                    &ev, NULL, NULL, 1,
                    flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE)
              : yaml_sequence_end_event_initialize(&ev));
}

/* pdp_lx_price emits micro-USD per 1M tokens as USD per token: the
 * decimal point moves 12 places, exactly ("2500000" -> "0.0000025"). */
static void
pdp_lx_price(pdp_lx *x, int64_t micro_per_m)
{
    char digits[32];
    char buf[64];
    int  n;

    if (micro_per_m <= 0) {
        pdp_lx_num(x, "0");
        return;
    }
    n = snprintf(digits, sizeof(digits), "%" PRId64, micro_per_m);
    if (n > 12) {
        snprintf(buf, sizeof(buf), "%.*s.%s", n - 12, digits, digits + n - 12);
    } else {
        snprintf(buf, sizeof(buf), "0.%0*d%s", 12 - n, 0, digits);
        if (12 - n == 0) {
            snprintf(buf, sizeof(buf), "0.%s", digits);
        }
    }
    while (strchr(buf, '.') != NULL && buf[strlen(buf) - 1] == '0') {
        buf[strlen(buf) - 1] = '\0';
    }
    if (buf[strlen(buf) - 1] == '.') {
        buf[strlen(buf) - 1] = '\0';
    }
    pdp_lx_num(x, buf);
}

/* ---- what maps --------------------------------------------------------- */

/* pdp_lx_prefix is LiteLLM's provider prefix for a Tollgate provider;
 * dflt is that provider's api_base in Tollgate (omitted when the same). */
static const char *
pdp_lx_prefix(const char *provider, const char **dflt)
{
    static const char *const map[][3] = {
        {"openai", "openai", "https://api.openai.com/v1"},
        {"openai_compatible", "openai", NULL},
        {"vllm", "hosted_vllm", NULL},
        {"ollama", "ollama_chat", "http://127.0.0.1:11434/v1"},
        {"groq", "groq", "https://api.groq.com/openai/v1"},
        {"mistral", "mistral", "https://api.mistral.ai/v1"},
        {"deepseek", "deepseek", "https://api.deepseek.com/v1"},
        {"together", "together_ai", "https://api.together.xyz/v1"},
        {"openrouter", "openrouter", "https://openrouter.ai/api/v1"},
        {"azure", "azure", NULL},
        {"anthropic", "anthropic", "https://api.anthropic.com"},
        {"gemini", "gemini", "https://generativelanguage.googleapis.com"},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i][0], provider) == 0) {
            *dflt = map[i][2];
            return map[i][1];
        }
    }
    *dflt = NULL;
    return "openai";
}

/* pdp_lx_envname: "${NAME}" -> "os.environ/NAME" in buf. */
static bool
pdp_lx_envname(const char *ref, char *buf, size_t cap)
{
    size_t n = ref != NULL ? strlen(ref) : 0;

    if (n < 4 || strncmp(ref, "${", 2) != 0 || ref[n - 1] != '}') {
        return false;
    }
    snprintf(buf, cap, "os.environ/%.*s", (int)(n - 3), ref + 2);
    return true;
}

static const tg_model_group *
pdp_lx_group_of(const tg_config *cfg, const char *model)
{
    return tg_config_group(cfg, model);
}

/* pdp_lx_deployment emits one model_list entry. */
static void
pdp_lx_deployment(pdp_lx *x, const tg_config *cfg, const tg_deployment *d,
                  int order, pdp_mig_findings *f)
{
    const char *dflt;
    const char *prefix = pdp_lx_prefix(d->provider, &dflt);
    char        model[TG_MODEL_MAX + 32];
    char        env[160];
    char        path[96];

    snprintf(path, sizeof(path), "deployments[%s]", d->id);
    pdp_lx_map(x, true);
    pdp_lx_str(x, "model_name");
    pdp_lx_str(x, d->model);
    pdp_lx_str(x, "litellm_params");
    pdp_lx_map(x, true);
    pdp_lx_str(x, "model");
    snprintf(model, sizeof(model), "%s/%s", prefix, d->upstream_model);
    pdp_lx_str(x, model);
    if (d->api_base != NULL &&
        (dflt == NULL || strcmp(dflt, d->api_base) != 0)) {
        size_t n = strlen(d->api_base);
        char   base[1024];
        /* LiteLLM calls Ollama's own API at the server's root; Tollgate
         * its OpenAI-compatible one under /v1. */
        if (strcmp(d->provider, "ollama") == 0 && n > 3 &&
            strcmp(d->api_base + n - 3, "/v1") == 0) {
            n -= 3;
        }
        snprintf(base, sizeof(base), "%.*s", (int)n, d->api_base);
        pdp_lx_str(x, "api_base");
        pdp_lx_str(x, base);
    }
    if (pdp_lx_envname(d->api_key, env, sizeof(env))) {
        pdp_lx_str(x, "api_key");
        pdp_lx_str(x, env);
    }
    if (d->api_version != NULL) {
        pdp_lx_str(x, "api_version");
        pdp_lx_str(x, d->api_version);
    }
    if (d->weight != 1) {
        pdp_lx_str(x, "weight");
        pdp_lx_int(x, d->weight);
    }
    if (order > 0) {
        pdp_lx_str(x, "order");
        pdp_lx_int(x, order);
    }
    pdp_lx_map(x, false);
    pdp_lx_str(x, "model_info");
    pdp_lx_map(x, true);
    pdp_lx_str(x, "id");
    pdp_lx_str(x, d->id);
    if (d->has_price) {
        pdp_lx_str(x, "input_cost_per_token");
        pdp_lx_price(x, d->price_input);
        pdp_lx_str(x, "output_cost_per_token");
        pdp_lx_price(x, d->price_output);
        if (d->price_cached_input != d->price_input) {
            pdp_lx_str(x, "cache_read_input_token_cost");
            pdp_lx_price(x, d->price_cached_input);
        }
    }
    pdp_lx_map(x, false);
    pdp_lx_map(x, false);
    pdp_mig_add(f, path, 0, PDP_MIG_MAPPED,
                "model_list entry %s: model %s%s%s%s", d->model, model,
                d->has_price ? ", pricing as cost per token" : "",
                d->api_key != NULL ? ", api_key from the environment" : "",
                order > 0 ? ", order (the ordered strategy)" : "");
    if (d->n_labels > 0) {
        pdp_mig_add(f, path, 0, PDP_MIG_UNSUPPORTED,
                    "labels: LiteLLM deployments have no labels, so route "
                    "rules that pick deployments by label have no "
                    "equivalent");
    }
    if (d->anthropic_version != NULL && d->kind == TG_PROVIDER_ANTHROPIC &&
        strcmp(d->anthropic_version, "2023-06-01") != 0) {
        pdp_mig_add(f, path, 0, PDP_MIG_UNSUPPORTED,
                    "anthropic_version %s: LiteLLM sends its own",
                    d->anthropic_version);
    }
    (void)cfg;
}

/* pdp_lx_strategy is the one router-wide strategy: LiteLLM has one, so
 * the first group's that has one is taken and the others are reported.
 * *ordered: Tollgate's ordered, which becomes each deployment's order. */
static const char *
pdp_lx_strategy(const tg_config *cfg, bool *ordered, pdp_mig_findings *f)
{
    static const char *const map[][2] = {
        {"weighted", "simple-shuffle"},
        {"least_inflight", "least-busy"},
        {"lowest_latency", "latency-based-routing"},
        {"lowest_cost", "cost-based-routing"},
    };
    const char *tg = NULL;

    *ordered = false;
    for (size_t i = 0; i < cfg->n_groups; i++) {
        const char *s = cfg->groups[i].strategy;
        if (s == NULL || strcmp(s, "ordered") == 0 ||
            strcmp(s, "priority") == 0) {
            continue;
        }
        if (tg == NULL) {
            tg = s;
        } else if (strcmp(tg, s) != 0) {
            pdp_mig_add(f, "model_groups", 0, PDP_MIG_APPROXIMATED,
                        "model %s: strategy %s, but LiteLLM has one strategy "
                        "for the whole router: %s is used for every model",
                        cfg->groups[i].model, s, tg);
        }
    }
    for (size_t i = 0; tg != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i][0], tg) == 0) {
            pdp_mig_add(f, "model_groups", 0, PDP_MIG_MAPPED,
                        "strategy %s: routing_strategy %s", tg, map[i][1]);
            return map[i][1];
        }
    }
    /* Tollgate's default is ordered: each deployment gets its place in
     * the catalog as LiteLLM's order (lower first). */
    *ordered = true;
    pdp_mig_add(f, "model_groups", 0, PDP_MIG_MAPPED,
                "strategy ordered (Tollgate's default): routing_strategy "
                "simple-shuffle with each deployment's order, its place "
                "among its model's deployments");
    return "simple-shuffle";
}

/* pdp_lx_fallbacks emits key: [{model: [fallbacks]}] for one kind. */
static void
pdp_lx_fallbacks(pdp_lx *x, const tg_config *cfg, int kind, const char *key)
{
    bool any = false;

    for (size_t i = 0; i < cfg->n_groups; i++) {
        const tg_model_group *g = &cfg->groups[i];
        size_t                n = kind == 0   ? g->n_fallbacks
                                  : kind == 1 ? g->n_context_fallbacks
                                              : g->n_content_fallbacks;
        const char *const    *l = kind == 0   ? g->fallbacks
                                  : kind == 1 ? g->context_fallbacks
                                              : g->content_fallbacks;
        if (n == 0) {
            continue;
        }
        if (!any) {
            pdp_lx_str(x, key);
            pdp_lx_seq(x, true, false);
            any = true;
        }
        pdp_lx_map(x, true);
        pdp_lx_str(x, g->model);
        pdp_lx_seq(x, true, true);
        for (size_t j = 0; j < n; j++) {
            pdp_lx_str(x, l[j]);
        }
        pdp_lx_seq(x, false, true);
        pdp_lx_map(x, false);
    }
    if (any) {
        pdp_lx_seq(x, false, false);
    }
}

/* pdp_lx_router emits router_settings. */
static void
pdp_lx_router(pdp_lx *x, const tg_config *cfg, const char *strategy,
              pdp_mig_findings *f)
{
    const tg_dp_config *dp = &cfg->dataplane;

    pdp_lx_str(x, "router_settings");
    pdp_lx_map(x, true);
    pdp_lx_str(x, "routing_strategy");
    pdp_lx_str(x, strategy);
    pdp_lx_str(x, "num_retries");
    pdp_lx_int(x, dp->retries);
    pdp_lx_str(x, "timeout");
    pdp_lx_secs(x, dp->total_timeout_ms);
    pdp_lx_str(x, "stream_timeout");
    pdp_lx_secs(x, dp->first_byte_timeout_ms);
    pdp_lx_str(x, "allowed_fails");
    pdp_lx_int(x, dp->cooldown_failures);
    pdp_lx_str(x, "cooldown_time");
    pdp_lx_secs(x, dp->cooldown_ms);
    pdp_lx_fallbacks(x, cfg, 0, "fallbacks");
    pdp_lx_fallbacks(x, cfg, 1, "context_window_fallbacks");
    pdp_lx_fallbacks(x, cfg, 2, "content_policy_fallbacks");
    pdp_lx_map(x, false);
    pdp_mig_add(f, "dataplane", 0, PDP_MIG_MAPPED,
                "retries %" PRId64 ": num_retries; total_timeout_ms: timeout; "
                "cooldown_failures: allowed_fails; cooldown_ms: cooldown_time",
                dp->retries);
    pdp_mig_add(f, "dataplane.first_byte_timeout_ms", 0, PDP_MIG_APPROXIMATED,
                "stream_timeout: LiteLLM applies it to streamed requests "
                "only");
    pdp_mig_add(f, "dataplane.cooldown_window_ms", 0, PDP_MIG_APPROXIMATED,
                "LiteLLM counts allowed_fails per minute, not over %" PRId64
                " ms",
                dp->cooldown_window_ms);
    pdp_mig_add(f, "dataplane", 0, PDP_MIG_UNSUPPORTED,
                "connect_timeout_ms, idle_timeout_ms, retry_backoff_ms, "
                "max_body_bytes, the client connection limits, the spool and "
                "on_pdp_error have no LiteLLM setting");
    if (cfg->dataplane.otel.endpoint != NULL) {
        pdp_mig_add(f, "dataplane.otel", 0, PDP_MIG_UNSUPPORTED,
                    "traces: configure a LiteLLM OpenTelemetry callback "
                    "(litellm_settings.callbacks: [\"otel\"]) yourself");
    }
}

/* pdp_lx_bundle lists, as findings, the rules of the policy bundle:
 * LiteLLM has no policy rules. */
static void
pdp_lx_bundle(const tg_config *cfg, pdp_mig_findings *f)
{
    DIR           *d;
    struct dirent *e;

    if (cfg->pdp.bundle_dir == NULL) {
        return;
    }
    if ((d = opendir(cfg->pdp.bundle_dir)) == NULL) {
        pdp_mig_add(f, "pdp.bundle", 0, PDP_MIG_UNSUPPORTED,
                    "the policy bundle (%s, unreadable here) has no LiteLLM "
                    "equivalent",
                    cfg->pdp.bundle_dir);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t       n = strlen(e->d_name);
        char         path[PATH_MAX];
        char         msg[256];
        char        *text = NULL;
        size_t       len;
        cJSON       *doc;
        const cJSON *rules;
        if (n < 12 || strcmp(e->d_name + n - 12, ".policy.json") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", cfg->pdp.bundle_dir, e->d_name);
        if (pdp_mig_read_file(path, 16u << 20, &text, &len, msg, sizeof(msg)) !=
            TG_OK) {
            continue;
        }
        doc = cJSON_ParseWithLength(text, len);
        free(text);
        rules = cJSON_GetObjectItem(doc, "rules");
        for (const cJSON *r = cJSON_IsArray(rules) ? rules->child : NULL;
             r != NULL; r   = r->next) {
            const cJSON *id   = cJSON_GetObjectItem(r, "id");
            const cJSON *kind = cJSON_GetObjectItem(r, "kind");
            const char  *k    = cJSON_IsString(kind) ? kind->valuestring : "?";
            pdp_mig_add(
                f, e->d_name, 0, PDP_MIG_UNSUPPORTED,
                "rule %s (%s): LiteLLM has no policy rules%s",
                cJSON_IsString(id) ? id->valuestring : "?", k,
                strcmp(k, "budget") == 0
                    ? "; a budget becomes a key's or team's max_budget "
                      "there, counted after the fact (no reservation, so "
                      "concurrent requests can overshoot)"
                : strcmp(k, "rate_limit") == 0
                    ? "; set rpm_limit/tpm_limit on keys or teams"
                : strcmp(k, "guardrail") == 0
                    ? "; LiteLLM's guardrails are separate integrations"
                : strcmp(k, "access") == 0
                    ? "; restrict keys' and teams' models instead"
                    : "");
        }
        cJSON_Delete(doc);
    }
    closedir(d);
}

/* pdp_lx_document emits the whole config.yaml. */
static void
pdp_lx_document(pdp_lx *x, const tg_config *cfg, pdp_mig_findings *f)
{
    yaml_event_t ev;
    bool         ordered;
    const char  *strategy = pdp_lx_strategy(cfg, &ordered, f);

    pdp_lx_emit(x, &ev,
                yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    pdp_lx_emit(x, &ev,
                yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    pdp_lx_map(x, true);
    pdp_lx_str(x, "model_list");
    pdp_lx_seq(x, true, false);
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const tg_deployment *d     = &cfg->deployments[i];
        int                  order = 0;
        size_t               same  = 0;
        for (size_t j = 0; j < cfg->n_deployments; j++) {
            same += strcmp(cfg->deployments[j].model, d->model) == 0;
        }
        if (ordered && same > 1) {
            const tg_model_group *g = pdp_lx_group_of(cfg, d->model);
            if (g == NULL || g->strategy == NULL ||
                strcmp(g->strategy, "ordered") == 0 ||
                strcmp(g->strategy, "priority") == 0) {
                for (size_t j = 0; j <= i; j++) {
                    order += strcmp(cfg->deployments[j].model, d->model) == 0;
                }
            }
        }
        pdp_lx_deployment(x, cfg, d, order, f);
    }
    pdp_lx_seq(x, false, false);
    pdp_lx_router(x, cfg, strategy, f);
    if (cfg->log_json) {
        pdp_lx_str(x, "litellm_settings");
        pdp_lx_map(x, true);
        pdp_lx_str(x, "json_logs");
        pdp_lx_num(x, "true");
        pdp_lx_map(x, false);
        pdp_mig_add(f, "log_format", 0, PDP_MIG_MAPPED,
                    "json: litellm_settings.json_logs");
    }
    pdp_lx_str(x, "general_settings");
    pdp_lx_map(x, true);
    pdp_lx_str(x, "master_key");
    pdp_lx_str(x, "os.environ/LITELLM_MASTER_KEY");
    pdp_lx_map(x, false);
    pdp_lx_map(x, false);
    pdp_lx_emit(x, &ev, yaml_document_end_event_initialize(&ev, 1));
    pdp_lx_emit(x, &ev, yaml_stream_end_event_initialize(&ev));
}

/* pdp_lx_state_findings says what stays behind: state and evidence. */
static void
pdp_lx_state_findings(const tg_config *cfg, pdp_mig_findings *f)
{
    pdp_mig_add(f, "general_settings.master_key", 0, PDP_MIG_APPROXIMATED,
                "LiteLLM needs a master key for its key management: set "
                "LITELLM_MASTER_KEY (Tollgate's admin tokens do not carry "
                "over)");
    pdp_mig_add(f, "pdp.state_dir", 0, PDP_MIG_UNSUPPORTED,
                "keys, tenants, budgets, rate limits and spend are not "
                "exported: secrets are stored as hashes, so clients need new "
                "LiteLLM keys (/key/generate, one per Tollgate key: "
                "tollgate-pdp keys list and budgets list say what each had; "
                "tollgate-pdp export keeps the records)");
    pdp_mig_add(f, "pdp.decisions", 0, PDP_MIG_UNSUPPORTED,
                "the signed decision log has no LiteLLM equivalent: export "
                "it first (tollgate-pdp decisions export) and keep it for "
                "audits");
    pdp_mig_add(f, "budgets", 0, PDP_MIG_UNSUPPORTED,
                "exact budgets (reserved before a request, in micro-USD, "
                "calendar windows in a time zone, threshold alerts) become "
                "LiteLLM's max_budget, counted after each request");
    if (cfg->pdp.pricing_file != NULL) {
        pdp_mig_add(f, "pdp.pricing_file", 0, PDP_MIG_UNSUPPORTED,
                    "LiteLLM uses its own model cost map; a deployment's "
                    "own pricing is exported as model_info costs");
    }
    if (cfg->pdp.alert_webhook != NULL) {
        pdp_mig_add(f, "pdp.alert_webhook", 0, PDP_MIG_UNSUPPORTED,
                    "configure LiteLLM's alerting (general_settings.alerting) "
                    "yourself");
    }
    pdp_lx_bundle(cfg, f);
}

static const char pdp_lx_usage[] =
    "usage: tollgate-pdp export --to litellm --config FILE --out DIR\n"
    "\n"
    "Writes DIR/config.yaml, a LiteLLM proxy config for this gateway's\n"
    "deployments, model groups, strategy, retries, timeouts, cooldown and\n"
    "fallbacks (provider keys as os.environ/NAME), and DIR/findings.txt,\n"
    "what LiteLLM cannot express. DIR must be new or empty.\n";

/* pdp_lx_write emits the config into dir/config.yaml. */
static tg_err
pdp_lx_write(const tg_config *cfg, const char *dir, pdp_mig_findings *f,
             char *err, size_t errlen)
{
    pdp_lx x    = {.failed = false};
    char  *yaml = NULL;
    size_t len  = 0;
    FILE  *mem  = open_memstream(&yaml, &len);
    tg_err rv;

    if (mem == NULL || !yaml_emitter_initialize(&x.em)) {
        if (mem != NULL) {
            fclose(mem);
        }
        free(yaml);
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    yaml_emitter_set_output_file(&x.em, mem);
    yaml_emitter_set_unicode(&x.em, 1);
    yaml_emitter_set_width(&x.em, 100);
    fputs("# LiteLLM proxy config written by tollgate-pdp export --to "
          "litellm; see findings.txt\n",
          mem);
    pdp_lx_document(&x, cfg, f);
    yaml_emitter_flush(&x.em);
    yaml_emitter_delete(&x.em);
    fclose(mem);
    if (x.failed) {
        free(yaml);
        snprintf(err, errlen, "the YAML emitter failed (out of memory?)");
        return TG_ENOMEM;
    }
    rv = pdp_mig_put(dir, "config.yaml", yaml, 0640, err, errlen);
    free(yaml);
    return rv;
}

int
pdp_export_litellm_cli(int argc, char **argv, FILE *out, FILE *err)
{
    static const char cmd[] = "tollgate-pdp export --to litellm";
    pdp_mig_args      a;
    pdp_mig_findings  f;
    tg_config        *cfg = NULL;
    char              msg[PATH_MAX + 512];
    char             *rep = NULL;
    size_t            len = 0;
    FILE             *mem;
    int               ec;

    if ((ec = pdp_mig_args_parse(&a, argc, argv, "to config out", cmd, err)) !=
        PDP_MIG_EXIT_OK) {
        return ec;
    }
    if (a.help) {
        fputs(pdp_lx_usage, out);
        return PDP_MIG_EXIT_OK;
    }
    if (a.to == NULL || strcmp(a.to, "litellm") != 0 || a.out == NULL ||
        a.input != NULL ||
        (a.config == NULL && (a.config = getenv("TOLLGATE_CONFIG")) == NULL)) {
        fprintf(err, "%s: %s\n%s", cmd,
                a.input != NULL    ? "takes no operand"
                : a.out == NULL    ? "give --out DIR"
                : a.config == NULL ? "give --config FILE (or TOLLGATE_CONFIG)"
                                   : "--to: only litellm is written here",
                pdp_lx_usage);
        return PDP_MIG_EXIT_USAGE;
    }
    if (tg_config_load(&cfg, a.config, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "%s: %s\n", cmd, msg);
        return PDP_MIG_EXIT_USAGE;
    }
    pdp_mig_findings_init(&f, a.config);
    ec = PDP_MIG_EXIT_OK;
    if (pdp_mig_outdir(a.out, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "%s: %s\n", cmd, msg);
        ec = PDP_MIG_EXIT_USAGE;
    } else if (pdp_lx_write(cfg, a.out, &f, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "%s: %s\n", cmd, msg);
        ec = PDP_MIG_EXIT_FAIL;
    }
    if (ec == PDP_MIG_EXIT_OK) {
        pdp_lx_state_findings(cfg, &f);
        if ((mem = open_memstream(&rep, &len)) != NULL) {
            pdp_mig_findings_text(&f, mem);
            fclose(mem);
        }
        if (rep == NULL || pdp_mig_put(a.out, "findings.txt", rep, 0640, msg,
                                       sizeof(msg)) != TG_OK) {
            fprintf(err, "%s: %s\n", cmd, rep == NULL ? "out of memory" : msg);
            ec = PDP_MIG_EXIT_FAIL;
        } else {
            fputs(rep, out);
            fprintf(out, "\nWrote %s/config.yaml and %s/findings.txt.\n", a.out,
                    a.out);
        }
    }
    free(rep);
    pdp_mig_findings_fini(&f);
    tg_config_destroy(cfg);
    return ec;
}
