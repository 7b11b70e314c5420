/* pdp_import_litellm_settings.c - LiteLLM's router_settings,
 * litellm_settings, general_settings and environment_variables, mapped
 * onto data-plane settings, model groups and policy rules (contracts in
 * pdp_import_litellm.h). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_import_litellm.h"

/* ---- small pieces ------------------------------------------------------ */

void
pdp_lt_slug(const char *s, char *out, size_t max)
{
    size_t n = 0;

    /* Never starting with '-' (a command line would take it for a flag)
     * or '.': what is left from the first letter or digit. */
    while (*s != '\0' && !isalnum((unsigned char)*s)) {
        s++;
    }
    for (; *s != '\0' && n + 1 < max; s++) {
        out[n++] =
            isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-'
                ? *s
                : '-';
    }
    out[n] = '\0';
    if (n == 0) {
        snprintf(out, max, "model");
    }
}

pdp_mig_kind
pdp_lt_window(const char *dur, char *out, size_t cap, char *how, size_t howcap)
{
    char     *end;
    long long n     = dur != NULL && isdigit((unsigned char)dur[0])
                          ? strtoll(dur, &end, 10)
                          : -1;
    long long hours = -1;

    if (n <= 0 || n > 100000) {
        snprintf(how, howcap, "not a duration (30s, 30m, 24h, 30d, 1mo)");
        return PDP_MIG_UNSUPPORTED;
    }
    if (strcmp(end, "mo") == 0) {
        if (n != 1) {
            snprintf(how, howcap,
                     "longer than Tollgate's budget windows (at most "
                     "rolling:744h, or monthly): use 1mo or at most 31d");
            return PDP_MIG_UNSUPPORTED;
        }
        snprintf(out, cap, "monthly");
        snprintf(how, howcap,
                 "window monthly: a calendar month from the 1st, 00:00 in "
                 "the bundle's time zone (UTC), where LiteLLM resets a month "
                 "after the budget was set");
        return PDP_MIG_APPROXIMATED;
    }
    hours = strcmp(end, "h") == 0                    ? n
            : strcmp(end, "d") == 0                  ? n * 24
            : strcmp(end, "w") == 0                  ? n * 168
            : strcmp(end, "m") == 0 && n % 60 == 0   ? n / 60
            : strcmp(end, "s") == 0 && n % 3600 == 0 ? n / 3600
                                                     : -1;
    if (hours < 0 && (strcmp(end, "m") == 0 || strcmp(end, "s") == 0)) {
        snprintf(how, howcap,
                 "shorter than an hour, or not whole hours: Tollgate's "
                 "shortest budget window is rolling:1h; use a rate_limit "
                 "(tpm) for minute-scale caps");
        return PDP_MIG_UNSUPPORTED;
    }
    if (hours < 0) {
        snprintf(how, howcap, "not a duration (30s, 30m, 24h, 30d, 1mo)");
        return PDP_MIG_UNSUPPORTED;
    }
    if (hours > 744) {
        snprintf(how, howcap,
                 "longer than Tollgate's budget windows (at most "
                 "rolling:744h, or monthly)");
        return PDP_MIG_UNSUPPORTED;
    }
    snprintf(out, cap, "rolling:%lldh", hours);
    snprintf(how, howcap,
             "window rolling:%lldh: the spend of the last %lld hours, where "
             "LiteLLM sums from a reset every %s and starts again at 0; a "
             "rolling window lets spend age out hour by hour instead",
             hours, hours, dur);
    return PDP_MIG_APPROXIMATED;
}

/* pdp_lt_set sets obj[key] = number (replacing). */
static void
pdp_lt_set(cJSON *obj, const char *key, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddNumberToObject(obj, key, v);
}

/* pdp_lt_seconds reads a positive number of seconds into milliseconds. */
static bool
pdp_lt_seconds(const cJSON *v, double max_s, long long *ms)
{
    char   buf[64];
    double x;
    char  *end;

    if (!pdp_mig_number_text(v, buf, sizeof(buf))) {
        return false;
    }
    x = strtod(buf, &end);
    if (*end != '\0' || !(x > 0) || x > max_s) {
        return false;
    }
    *ms = llround(x * 1000.0);
    return *ms > 0;
}

/* ---- fallbacks --------------------------------------------------------- */

/* pdp_lt_fb_target adds one fallback target to m's list kind. */
static void
pdp_lt_fb_target(pdp_lt *c, pdp_lt_model *m, int kind, const cJSON *t,
                 const char *path)
{
    if (!cJSON_IsString(t) || pdp_lt_model_find(c, t->valuestring) == NULL) {
        pdp_lt_note(c, path, t, PDP_MIG_UNSUPPORTED,
                    "%s%s%s is not a model_name of model_list: a fallback "
                    "must name a model that has deployments; dropped",
                    cJSON_IsString(t) ? "\"" : "",
                    cJSON_IsString(t) ? t->valuestring : "this item",
                    cJSON_IsString(t) ? "\"" : "");
        return;
    }
    if (strcmp(t->valuestring, m->name) == 0) {
        pdp_lt_note(c, path, t, PDP_MIG_UNSUPPORTED,
                    "a model cannot fall back to itself; dropped");
        return;
    }
    if (m->n_fb[kind] == TG_CONFIG_MAX_FALLBACKS) {
        pdp_lt_note(c, path, t, PDP_MIG_APPROXIMATED,
                    "more than %d fallbacks: Tollgate keeps the first %d; "
                    "\"%s\" dropped",
                    TG_CONFIG_MAX_FALLBACKS, TG_CONFIG_MAX_FALLBACKS,
                    t->valuestring);
        return;
    }
    m->fb[kind][m->n_fb[kind]++] = t->valuestring;
    pdp_lt_note(c, path, t, PDP_MIG_MAPPED,
                "model_groups[\"%s\"].%s gets \"%s\"", m->name,
                kind == PDP_LT_FB           ? "fallbacks"
                : kind == PDP_LT_FB_CONTEXT ? "context_window_fallbacks"
                                            : "content_policy_fallbacks",
                t->valuestring);
}

/* pdp_lt_fallbacks reads [{"model": ["fallback", ...]}, ...]. */
static void
pdp_lt_fallbacks(pdp_lt *c, const cJSON *v, int kind, const char *path)
{
    char   p[256];
    size_t i = 0;

    if (!cJSON_IsArray(v)) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "expected a list of {model: [fallbacks]}; nothing taken");
        return;
    }
    for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
        if (!cJSON_IsObject(e)) {
            snprintf(p, sizeof(p), "%s[%zu]", path, i);
            pdp_lt_note(c, p, e, PDP_MIG_UNSUPPORTED,
                        "expected {model: [fallbacks]}; dropped");
            continue;
        }
        for (const cJSON *m = e->child; m != NULL; m = m->next) {
            pdp_lt_model *mod = pdp_lt_model_find(c, m->string);
            size_t        j   = 0;
            snprintf(p, sizeof(p), "%s[%zu].%s", path, i, m->string);
            if (mod == NULL) {
                pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                            "\"%s\" is not a model_name of model_list; its "
                            "fallbacks are dropped",
                            m->string);
                continue;
            }
            if (cJSON_IsString(m)) {
                pdp_lt_fb_target(c, mod, kind, m, p);
                continue;
            }
            for (const cJSON *t = cJSON_IsArray(m) ? m->child : NULL; t != NULL;
                 t              = t->next, j++) {
                char q[300];
                snprintf(q, sizeof(q), "%s[%zu]", p, j);
                pdp_lt_fb_target(c, mod, kind, t, q);
            }
            if (!cJSON_IsArray(m)) {
                pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                            "expected a list of model names; dropped");
            }
        }
    }
}

/* pdp_lt_fallback_key: the kind a fallbacks key names, or -1. */
static int
pdp_lt_fallback_key(const char *k)
{
    return strcmp(k, "fallbacks") == 0                  ? PDP_LT_FB
           : strcmp(k, "context_window_fallbacks") == 0 ? PDP_LT_FB_CONTEXT
           : strcmp(k, "content_policy_fallbacks") == 0 ? PDP_LT_FB_CONTENT
                                                        : -1;
}

/* ---- router_settings --------------------------------------------------- */

/* pdp_lt_strategy maps routing_strategy. */
static void
pdp_lt_strategy(pdp_lt *c, const cJSON *v, const char *path)
{
    static const char *const map[][2] = {
        {"simple-shuffle", "weighted"},
        {"least-busy", "least_inflight"},
        {"latency-based-routing", "lowest_latency"},
        {"cost-based-routing", "lowest_cost"},
    };
    const char *s = cJSON_IsString(v) ? v->valuestring : "";

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(s, map[i][0]) == 0) {
            c->strategy = map[i][1];
            pdp_lt_note(c, path, v, PDP_MIG_MAPPED,
                        "strategy %s in the model_groups of every model with "
                        "more than one deployment",
                        c->strategy);
            return;
        }
    }
    if (strncmp(s, "usage-based-routing", 19) == 0) {
        c->strategy = "least_inflight";
        pdp_lt_note(c, path, v, PDP_MIG_APPROXIMATED,
                    "strategy least_inflight: LiteLLM picks the deployment "
                    "with the fewest tokens used this minute; Tollgate the "
                    "one with the fewest requests in flight");
        return;
    }
    pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                "unknown routing strategy; the models keep LiteLLM's default "
                "(simple-shuffle: weighted)");
}

/* pdp_lt_alias maps one model_group_alias entry: the alias gets
 * deployments of its own calling the same upstreams. */
static void
pdp_lt_alias(pdp_lt *c, const cJSON *m, const char *path)
{
    const cJSON  *t = cJSON_IsObject(m) ? cJSON_GetObjectItem(m, "model") : m;
    pdp_lt_model *target;
    pdp_lt_model *a;

    if (!cJSON_IsString(t) ||
        (target = pdp_lt_model_find(c, t->valuestring)) == NULL ||
        target->n_deps == 0 || target->alias_of != NULL) {
        pdp_lt_note(c, path, m, PDP_MIG_UNSUPPORTED,
                    "the alias must name a model_name of model_list with a "
                    "deployment that was imported; dropped");
        return;
    }
    if (pdp_lt_model_find(c, m->string) != NULL ||
        strlen(m->string) >= TG_MODEL_MAX || c->n_models == PDP_LT_MODELS_MAX) {
        pdp_lt_note(c, path, m, PDP_MIG_UNSUPPORTED,
                    "\"%s\" is already a model_name (or too long); dropped",
                    m->string);
        return;
    }
    a = &c->models[c->n_models++];
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", m->string);
    a->alias_of = target->name;
    a->n_deps   = target->n_deps;
    a->line     = pdp_lt_line(c, m);
    pdp_lt_note(c, path, m, PDP_MIG_APPROXIMATED,
                "model \"%s\" gets deployments of its own (ids %.40s-N) "
                "calling the same upstreams as \"%s\", with its model group; "
                "they keep their own health, cooldown and rate-limit counts, "
                "and spend shows under \"%s\"%s",
                a->name, a->name, target->name, a->name,
                cJSON_IsObject(m) && cJSON_GetObjectItem(m, "hidden") != NULL
                    ? " (hidden: Tollgate lists every model it serves)"
                    : "");
}

/* pdp_lt_policy_note reports retry_policy / allowed_fails_policy. */
static void
pdp_lt_policy_note(pdp_lt *c, const cJSON *v, const char *path, bool retry)
{
    char p[256];

    if (!cJSON_IsObject(v)) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED, "expected a mapping");
        return;
    }
    for (const cJSON *m = v->child; m != NULL; m = m->next) {
        snprintf(p, sizeof(p), "%s.%s", path, m->string);
        pdp_lt_note(c, p, m, PDP_MIG_APPROXIMATED, "%s",
                    retry ? "Tollgate's retries are the same for every "
                            "retryable error (429, 5xx, timeouts, connection "
                            "errors: dataplane.retries); 400 and content "
                            "refusals are not retried, 401/403/404 move to "
                            "the next deployment"
                          : "Tollgate counts every failure the same toward "
                            "dataplane.cooldown_failures");
    }
}

/* pdp_lt_router maps one router_settings key. */
static void
pdp_lt_router(pdp_lt *c, const cJSON *m, const char *p)
{
    const char *k = m->string;
    long long   n;
    int         fb = pdp_lt_fallback_key(k);

    if (strcmp(k, "routing_strategy") == 0) {
        pdp_lt_strategy(c, m, p);
    } else if (strcmp(k, "model_group_alias") == 0) {
        return; /* read first, by pdp_lt_section */
    } else if (fb >= 0) {
        pdp_lt_fallbacks(c, m, fb, p);
    } else if (strcmp(k, "num_retries") == 0 && pdp_lt_int(m, 10, &n)) {
        pdp_lt_set(c->j_dp, "retries", (double)n);
        c->retries_set = true;
        pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                    "dataplane.retries %lld (per deployment; then the next "
                    "deployment and the fallbacks)",
                    n);
    } else if (strcmp(k, "timeout") == 0 && pdp_lt_seconds(m, 86400, &n)) {
        pdp_lt_set(c->j_dp, "total_timeout_ms", (double)n);
        c->timeout_set = true;
        pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                    "dataplane.total_timeout_ms %lld (per attempt)", n);
    } else if (strcmp(k, "stream_timeout") == 0 &&
               pdp_lt_seconds(m, 86400, &n)) {
        pdp_lt_set(c->j_dp, "first_byte_timeout_ms", (double)n);
        pdp_lt_note(c, p, m, PDP_MIG_APPROXIMATED,
                    "dataplane.first_byte_timeout_ms %lld: the wait for the "
                    "first byte of any answer, streamed or not",
                    n);
    } else if (strcmp(k, "allowed_fails") == 0 && pdp_lt_int(m, 1000, &n) &&
               n > 0) {
        pdp_lt_set(c->j_dp, "cooldown_failures", (double)n);
        pdp_lt_set(c->j_dp, "cooldown_window_ms", 60000);
        pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                    "dataplane.cooldown_failures %lld within "
                    "cooldown_window_ms 60000 (LiteLLM counts per minute)",
                    n);
    } else if (strcmp(k, "cooldown_time") == 0 &&
               pdp_lt_seconds(m, 86400, &n)) {
        pdp_lt_set(c->j_dp, "cooldown_ms", (double)n);
        pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                    "dataplane.cooldown_ms %lld, then one probe request", n);
    } else if (strcmp(k, "retry_policy") == 0 ||
               strcmp(k, "allowed_fails_policy") == 0) {
        pdp_lt_policy_note(c, m, p, k[0] == 'r');
    } else if (strcmp(k, "default_fallbacks") == 0) {
        c->default_fb      = m;
        c->default_fb_path = "router_settings.default_fallbacks";
    } else if (strncmp(k, "redis_", 6) == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "no Redis: limits and budgets live in the PDP's state "
                    "(LMDB); several data planes share one central PDP%s",
                    strcmp(k, "redis_password") == 0 ? " (value not shown)"
                                                     : "");
    } else if (strcmp(k, "num_retries") == 0 || strcmp(k, "timeout") == 0 ||
               strcmp(k, "stream_timeout") == 0 ||
               strcmp(k, "allowed_fails") == 0 ||
               strcmp(k, "cooldown_time") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "expected a number (retries 0 to 10, seconds, a count); "
                    "the default is kept");
    } else {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "no Tollgate equivalent for this router setting");
    }
}

/* ---- litellm_settings -------------------------------------------------- */

/* pdp_lt_litellm maps one litellm_settings key. */
static void
pdp_lt_litellm(pdp_lt *c, const cJSON *m, const char *p)
{
    static const char *const cbs[] = {"success_callback",  "failure_callback",
                                      "callbacks",         "service_callback",
                                      "service_callbacks", NULL};
    const char              *k     = m->string;
    int                      fb    = pdp_lt_fallback_key(k);
    long long                n;
    bool                     cb = false;

    for (size_t i = 0; cbs[i] != NULL; i++) {
        cb = cb || strcmp(cbs[i], k) == 0;
    }
    if (fb >= 0) {
        pdp_lt_fallbacks(c, m, fb, p);
    } else if (strcmp(k, "default_fallbacks") == 0) {
        c->default_fb      = m;
        c->default_fb_path = "litellm_settings.default_fallbacks";
    } else if (strcmp(k, "max_budget") == 0) {
        c->budget = m;
    } else if (strcmp(k, "budget_duration") == 0) {
        c->budget_dur = m;
    } else if (strcmp(k, "num_retries") == 0) {
        if (c->retries_set) {
            pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                        "router_settings.num_retries is used instead");
        } else if (pdp_lt_int(m, 10, &n)) {
            pdp_lt_set(c->j_dp, "retries", (double)n);
            pdp_lt_note(c, p, m, PDP_MIG_MAPPED, "dataplane.retries %lld", n);
        } else {
            pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "expected 0 to 10 (Tollgate's most); default kept");
        }
    } else if (strcmp(k, "request_timeout") == 0) {
        if (c->timeout_set) {
            pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                        "router_settings.timeout is used instead");
        } else if (pdp_lt_seconds(m, 86400, &n)) {
            pdp_lt_set(c->j_dp, "total_timeout_ms", (double)n);
            pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                        "dataplane.total_timeout_ms %lld (per attempt)", n);
        } else {
            pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "expected a number of seconds; default kept");
        }
    } else if (strcmp(k, "drop_params") == 0 ||
               strcmp(k, "additional_drop_params") == 0 ||
               strcmp(k, "modify_params") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "Tollgate refuses a field a provider cannot honour (400 "
                    "naming it) instead of dropping or changing it; clients "
                    "remove it");
    } else if (cb) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "no logging callbacks: every request is in the signed "
                    "decision log (tollgate-pdp decisions list|export), and "
                    "traces go to an OTLP collector (dataplane.otel) that "
                    "forwards to Langfuse, Datadog, ...");
    } else if (strcmp(k, "cache") == 0 || strcmp(k, "cache_params") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "Tollgate does not cache answers; every request goes to "
                    "a provider");
    } else if (strcmp(k, "json_logs") == 0) {
        bool on = cJSON_IsTrue(m);
        if (on) {
            cJSON_AddStringToObject(c->out_top, "log_format", "json");
        }
        pdp_lt_note(c, p, m, PDP_MIG_MAPPED, "log_format \"%s\"",
                    on ? "json" : "text");
    } else if (strcmp(k, "turn_off_message_logging") == 0 ||
               strcmp(k, "redact_user_api_key_info") == 0 ||
               strcmp(k, "redact_messages_in_exceptions") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_MAPPED,
                    "Tollgate never logs prompt text or keys; bodies are "
                    "kept only where an audit rule asks for capture full");
    } else if (strcmp(k, "guardrails") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "write guardrail rules in the bundle "
                    "(policies/README.md, guardrail: PII, secrets, "
                    "injection, term lists)");
    } else {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "no Tollgate equivalent for this litellm setting");
    }
}

/* ---- general_settings -------------------------------------------------- */

static void
pdp_lt_general(pdp_lt *c, const cJSON *m, const char *p)
{
    const char *k = m->string;
    long long   n;

    if (strcmp(k, "master_key") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "Tollgate has no master key (value not shown): "
                    "administrators use admin tokens (tollgate-pdp "
                    "admin-tokens create NAME), clients use virtual keys "
                    "(tollgate-pdp keys create)");
    } else if (strcmp(k, "database_url") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "no database server (value not shown): keys, budgets "
                    "and spend live in the PDP's LMDB state (pdp.state_dir); "
                    "bring keys over with --keys");
    } else if (strncmp(k, "alert", 5) == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "Tollgate POSTs budget threshold alerts as JSON to "
                    "pdp.alert_webhook (or a budget rule's webhook): point "
                    "it at a receiver that forwards to Slack or email; slow "
                    "and failing deployments show in /metrics "
                    "(tollgate_deployment_*)");
    } else if ((strcmp(k, "max_parallel_requests") == 0 ||
                strcmp(k, "global_max_parallel_requests") == 0) &&
               pdp_lt_int(m, 1000000, &n) && n > 0) {
        c->global_conc      = n;
        c->global_conc_node = m;
        pdp_lt_note(c, p, m, PDP_MIG_APPROXIMATED,
                    "rate_limit rule litellm-parallel (scope tenant, "
                    "concurrent %lld): per tenant, where LiteLLM counts the "
                    "whole proxy",
                    n);
    } else if (strcmp(k, "background_health_checks") == 0 ||
               strcmp(k, "health_check_interval") == 0) {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "Tollgate sends no health-check requests: a deployment "
                    "that fails is cooled down and probed with a real "
                    "request (dataplane.cooldown_*)");
    } else {
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "no Tollgate equivalent for this general setting");
    }
}

/* ---- sections ---------------------------------------------------------- */

bool
pdp_lt_section(pdp_lt *c, const cJSON *s)
{
    const char *k   = s->string;
    const bool  env = strcmp(k, "environment_variables") == 0;
    void (*fn)(pdp_lt *, const cJSON *, const char *) =
        strcmp(k, "router_settings") == 0    ? pdp_lt_router
        : strcmp(k, "litellm_settings") == 0 ? pdp_lt_litellm
        : strcmp(k, "general_settings") == 0 ? pdp_lt_general
                                             : NULL;
    char p[256];

    if (fn == NULL && !env && strncmp(k, "x-", 2) == 0) {
        /* LiteLLM ignores it; YAML users keep their anchors in one. */
        pdp_lt_note(c, k, s, PDP_MIG_MAPPED,
                    "holds YAML anchors: read where they are used (*alias, "
                    "<<), no setting of its own");
        return true;
    }
    if (fn == NULL && !env) {
        pdp_lt_note(c, k, s, PDP_MIG_UNSUPPORTED,
                    strcmp(k, "include") == 0
                        ? "included files are not read: merge them into this "
                          "file and import again"
                        : "unknown top-level section; not carried over");
        return true;
    }
    if (s->type == cJSON_NULL) {
        pdp_lt_note(c, k, s, PDP_MIG_MAPPED, "empty");
        return true;
    }
    if (!cJSON_IsObject(s)) {
        return pdp_lt_fatal(c, s, "%s: expected a mapping", k);
    }
    if (strcmp(k, "router_settings") == 0) {
        const cJSON *al =
            cJSON_GetObjectItemCaseSensitive(s, "model_group_alias");
        for (const cJSON *m = cJSON_IsObject(al) ? al->child : NULL; m != NULL;
             m              = m->next) {
            snprintf(p, sizeof(p), "router_settings.model_group_alias.%s",
                     m->string);
            pdp_lt_alias(c, m, p);
        }
        if (al != NULL && !cJSON_IsObject(al)) {
            pdp_lt_note(c, "router_settings.model_group_alias", al,
                        PDP_MIG_UNSUPPORTED, "expected a mapping alias: model");
        }
    }
    for (const cJSON *m = s->child; m != NULL; m = m->next) {
        snprintf(p, sizeof(p), "%s.%s", k, m->string);
        if (env) {
            pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "Tollgate does not set environment variables from "
                        "its config: export %s in the data plane's "
                        "environment (value not shown)",
                        m->string);
        } else {
            fn(c, m, p);
        }
    }
    return true;
}
