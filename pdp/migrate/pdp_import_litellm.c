/* pdp_import_litellm.c - `tollgate-pdp import litellm CONFIG.yaml`: reads
 * LiteLLM's proxy config (model_list, router_settings, litellm_settings,
 * general_settings, environment_variables) and maps it onto Tollgate's
 * deployments, model groups, data-plane settings and policy rules, with a
 * finding for every field read. The deployments come from model_list
 * here; the settings sections are in pdp_import_litellm_settings.c; the
 * keys export in pdp_import_litellm_keys.c. */
#include "pdp_import_litellm.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tg_config.h"
#include "tg_yaml.h"

#define PDP_LT_MAX_BYTES (16u << 20)

int
pdp_lt_line(const pdp_lt *c, const cJSON *n)
{
    int line = 0;
    int col  = 0;

    if (n != NULL) {
        tg_yaml_pos(c->doc, n, &line, &col);
    }
    return line;
}

void
pdp_lt_note(pdp_lt *c, const char *path, const cJSON *n, pdp_mig_kind kind,
            const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pdp_mig_add(c->f, path, pdp_lt_line(c, n), kind, "%s", msg);
}

bool
pdp_lt_fatal(pdp_lt *c, const cJSON *n, const char *fmt, ...)
{
    char    msg[768];
    va_list ap;
    int     line = 0;
    int     col  = 0;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n == NULL || !tg_yaml_pos(c->doc, n, &line, &col)) {
        line = 1;
        col  = 1;
    }
    if (c->fatal[0] == '\0') {
        snprintf(c->fatal, sizeof(c->fatal), "%s:%d:%d: %s", c->file, line, col,
                 msg);
    }
    return false;
}

bool
pdp_lt_envref(const char *v, char *out, size_t cap)
{
    const char *name;
    size_t      n;

    if (v == NULL || strncmp(v, "os.environ/", 11) != 0) {
        return false;
    }
    name = v + 11;
    n    = strlen(name);
    if (n == 0 || n > 100 ||
        !(isalpha((unsigned char)name[0]) || name[0] == '_') ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_") != n) {
        return false;
    }
    snprintf(out, cap, "${%s}", name);
    return true;
}

pdp_lt_model *
pdp_lt_model_find(pdp_lt *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++) {
        if (strcmp(c->models[i].name, name) == 0) {
            return &c->models[i];
        }
    }
    return NULL;
}

/* pdp_lt_model_add finds or adds the client-facing model name. */
static pdp_lt_model *
pdp_lt_model_add(pdp_lt *c, const char *name, int line)
{
    pdp_lt_model *m = pdp_lt_model_find(c, name);

    if (m != NULL) {
        return m;
    }
    if (c->n_models == PDP_LT_MODELS_MAX) {
        return NULL;
    }
    m = &c->models[c->n_models++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->line = line;
    return m;
}

/* ---- providers --------------------------------------------------------- */

typedef struct pdp_lt_prov {
    const char *litellm;  /* the prefix of litellm_params.model */
    const char *tollgate; /* NULL: not supported */
    const char *note;     /* why not, or what differs */
} pdp_lt_prov;

static const pdp_lt_prov pdp_lt_provs[] = {
    {"openai", "openai", NULL},
    {"azure", "azure", NULL},
    {"anthropic", "anthropic", NULL},
    {"gemini", "gemini", NULL},
    {"groq", "groq", NULL},
    {"mistral", "mistral", NULL},
    {"deepseek", "deepseek", NULL},
    {"together_ai", "together", NULL},
    {"openrouter", "openrouter", NULL},
    {"ollama", "ollama", NULL},
    {"ollama_chat", "ollama", NULL},
    {"hosted_vllm", "vllm", NULL},
    {"vllm", "vllm",
     "LiteLLM's vllm/ runs vLLM inside the proxy; Tollgate calls a vLLM "
     "OpenAI-compatible server at api_base"},
    {"vertex_ai", NULL,
     "Vertex AI (service-account OAuth, project and location) is not a "
     "Tollgate provider; call Gemini models through gemini/ with a Gemini "
     "API key"},
    {"vertex_ai_beta", NULL, "as vertex_ai: use gemini/ with an API key"},
    {"bedrock", NULL,
     "AWS Bedrock (SigV4 signing) is not a Tollgate provider; use the "
     "model's own API (anthropic/, ...) or an OpenAI-compatible endpoint "
     "in front of Bedrock"},
    {"text-completion-openai", NULL,
     "the legacy completions API is not proxied; use a chat model"},
};

/* pdp_lt_infer: a model string without a provider, as LiteLLM infers it
 * from the name (its model map); NULL when Tollgate cannot tell. */
static const char *
pdp_lt_infer(const char *model)
{
    static const char *const openai[] = {
        "gpt-",   "o1", "o3", "o4", "chatgpt-", "text-embedding-",
        "dall-e", NULL};

    for (size_t i = 0; openai[i] != NULL; i++) {
        if (strncmp(model, openai[i], strlen(openai[i])) == 0) {
            return "openai";
        }
    }
    if (strncmp(model, "claude-", 7) == 0) {
        return "anthropic";
    }
    return NULL;
}

/* pdp_lt_provider picks d's Tollgate provider and upstream model from
 * litellm_params.model (v) and custom_llm_provider (custom, or NULL);
 * false, with a finding, when it is not supported. */
static bool
pdp_lt_provider(pdp_lt *c, pdp_lt_dep *d, const cJSON *v, const char *custom,
                const char *path)
{
    const char *s     = v->valuestring;
    const char *slash = strchr(s, '/');
    char        prefix[64];
    size_t      n = sizeof(pdp_lt_provs) / sizeof(pdp_lt_provs[0]);

    if (custom != NULL) {
        snprintf(prefix, sizeof(prefix), "%s", custom);
        if (slash != NULL && strncmp(s, custom, (size_t)(slash - s)) == 0 &&
            strlen(custom) == (size_t)(slash - s)) {
            s = slash + 1;
        }
    } else if (slash != NULL && (size_t)(slash - s) < sizeof(prefix)) {
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(slash - s), s);
        s = slash + 1;
    } else {
        const char *guess = pdp_lt_infer(s);
        if (guess == NULL) {
            pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "\"%s\" names no provider and Tollgate cannot infer "
                        "one; write provider/model (e.g. openai/%s); this "
                        "deployment is not imported",
                        s, s);
            return false;
        }
        snprintf(prefix, sizeof(prefix), "%s", guess);
        pdp_lt_note(c, path, v, PDP_MIG_MAPPED,
                    "provider %s inferred from the name, as LiteLLM does; "
                    "upstream_model \"%s\"",
                    guess, s);
        d->provider = guess;
        snprintf(d->upstream, sizeof(d->upstream), "%s", s);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        const pdp_lt_prov *p = &pdp_lt_provs[i];
        if (strcmp(p->litellm, prefix) != 0) {
            continue;
        }
        if (p->tollgate == NULL) {
            pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "provider %s: %s; this deployment is not imported",
                        prefix, p->note);
            return false;
        }
        d->provider = p->tollgate;
        snprintf(d->upstream, sizeof(d->upstream), "%s", s);
        pdp_lt_note(
            c, path, v, p->note != NULL ? PDP_MIG_APPROXIMATED : PDP_MIG_MAPPED,
            "provider %s, upstream_model \"%s\"%s%s", d->provider, s,
            p->note != NULL ? ": " : "", p->note != NULL ? p->note : "");
        return true;
    }
    pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                "provider \"%s\" is not supported by Tollgate (it speaks "
                "openai, azure, anthropic, gemini, and OpenAI-compatible "
                "APIs: openai/ with api_base, groq, mistral, deepseek, "
                "together_ai, openrouter, ollama, hosted_vllm); this "
                "deployment is not imported",
                prefix);
    return false;
}

/* ---- litellm_params ---------------------------------------------------- */

/* pdp_lt_int reads a whole non-negative number (YAML number or digits). */
bool
pdp_lt_int(const cJSON *v, long long max, long long *out)
{
    char   buf[64];
    double x;
    char  *end;

    if (!pdp_mig_number_text(v, buf, sizeof(buf))) {
        return false;
    }
    x = strtod(buf, &end);
    if (*end != '\0' || !(x >= 0) || x > (double)max || x != floor(x)) {
        return false;
    }
    *out = (long long)x;
    return true;
}

/* pdp_lt_price reads a per-token price into dst (USD per 1M tokens). */
static void
pdp_lt_price(pdp_lt *c, const char *path, const cJSON *v, char *dst, size_t cap,
             const char *field)
{
    char text[64];
    bool lost = false;

    if (!pdp_mig_number_text(v, text, sizeof(text)) ||
        !pdp_mig_per_mtok(text, dst, cap, &lost)) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "not a price per token (a decimal such as 0.0000025); "
                    "no %s price is set",
                    field);
        dst[0] = '\0';
        return;
    }
    pdp_lt_note(c, path, v, lost ? PDP_MIG_APPROXIMATED : PDP_MIG_MAPPED,
                "pricing.%s = %s USD per 1M tokens (%s per token x "
                "1,000,000%s)",
                field, dst, text,
                lost ? "; rounded to 6 decimals, Tollgate's micro-USD" : "");
}

/* pdp_lt_secret maps api_key: os.environ/X to ${X}; a literal key is
 * never copied nor shown: the deployment reads a variable to set. */
static void
pdp_lt_secret(pdp_lt *c, pdp_lt_dep *d, const char *path, const cJSON *v)
{
    char name[TG_ID_MAX + 32];

    if (cJSON_IsString(v) &&
        pdp_lt_envref(v->valuestring, d->api_key, sizeof(d->api_key))) {
        pdp_lt_note(c, path, v, PDP_MIG_MAPPED, "api_key \"%s\"", d->api_key);
        return;
    }
    snprintf(name, sizeof(name), "TOLLGATE_KEY_%s", d->id);
    for (char *p = name; *p != '\0'; p++) {
        *p =
            isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    }
    snprintf(d->api_key, sizeof(d->api_key), "${%s}", name);
    pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                "literal secret: not copied and not shown. Set it in the "
                "environment variable %s and the deployment reads \"${%s}\" "
                "(in LiteLLM write os.environ/NAME)",
                name, name);
}

/* pdp_lt_api_base takes api_base (or base_url) unless it is read from
 * the environment, which Tollgate's config does not do for URLs. */
static void
pdp_lt_api_base(pdp_lt *c, pdp_lt_dep *d, const char *path, const cJSON *v)
{
    if (!cJSON_IsString(v) || strncmp(v->valuestring, "os.environ/", 11) == 0 ||
        (strncmp(v->valuestring, "http://", 7) != 0 &&
         strncmp(v->valuestring, "https://", 8) != 0)) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "not an http(s) URL written in the config (Tollgate reads "
                    "only secrets from the environment): write the URL; this "
                    "deployment is not imported");
        d->api_base_bad = true;
        return;
    }
    d->api_base = v->valuestring;
    pdp_lt_note(c, path, v, PDP_MIG_MAPPED, "api_base \"%s\"", d->api_base);
}

/* pdp_lt_limit reads rpm, tpm or max_parallel_requests of a deployment. */
static void
pdp_lt_limit(pdp_lt *c, const char *path, const cJSON *v, long long *dst,
             bool *has, const char *what, const char *as)
{
    if (!pdp_lt_int(v, 1000000000LL, dst) || *dst == 0) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "expected a whole number of %s above 0", what);
        return;
    }
    *has = true;
    pdp_lt_note(c, path, v, PDP_MIG_APPROXIMATED,
                "%s %lld for this deployment: Tollgate limits per model, not "
                "per deployment, so a rate_limit rule (scope model, %s) on "
                "\"%s\" gets the sum over its deployments, and requests over "
                "it are refused (429) where LiteLLM would route to another "
                "deployment",
                what, *dst, as, c->cur->model_name);
}

/* pdp_lt_param maps one key of litellm_params. */
static void
pdp_lt_param(pdp_lt *c, pdp_lt_dep *d, const char *key, const cJSON *v,
             const char *path)
{
    static const char *const reqp[] = {
        "temperature",           "max_tokens",       "top_p", "stop",
        "frequency_penalty",     "presence_penalty", "seed",  "response_format",
        "max_completion_tokens", "reasoning_effort", NULL};

    if (strcmp(key, "model") == 0 || strcmp(key, "custom_llm_provider") == 0) {
        return; /* pdp_lt_provider reported them */
    }
    if (strcmp(key, "api_key") == 0) {
        pdp_lt_secret(c, d, path, v);
    } else if (strcmp(key, "api_base") == 0 || strcmp(key, "base_url") == 0) {
        pdp_lt_api_base(c, d, path, v);
    } else if (strcmp(key, "api_version") == 0) {
        if (strcmp(d->provider, "azure") != 0 || !cJSON_IsString(v)) {
            pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "api_version is taken by azure deployments only");
        } else if (strncmp(v->valuestring, "os.environ/", 11) == 0) {
            pdp_lt_note(c, path, v, PDP_MIG_APPROXIMATED,
                        "read from the environment in LiteLLM; Tollgate's "
                        "api_version is written in the config: set to %s, "
                        "change it to the version you use",
                        PDP_LT_AZURE_VERSION);
        } else {
            d->api_version = v->valuestring;
            pdp_lt_note(c, path, v, PDP_MIG_MAPPED, "api_version \"%s\"",
                        v->valuestring);
        }
    } else if (strcmp(key, "rpm") == 0) {
        pdp_lt_limit(c, path, v, &d->rpm, &d->has_rpm, "requests per minute",
                     "rpm");
    } else if (strcmp(key, "tpm") == 0) {
        pdp_lt_limit(c, path, v, &d->tpm, &d->has_tpm, "tokens per minute",
                     "tpm");
    } else if (strcmp(key, "max_parallel_requests") == 0) {
        pdp_lt_limit(c, path, v, &d->conc, &d->has_conc, "requests in flight",
                     "concurrent");
    } else if (strcmp(key, "order") == 0) {
        if (!pdp_lt_int(v, 1000000, &d->order) || d->order == 0) {
            d->order = 0;
            pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "expected a whole number from 1 (tried first)");
        } else {
            pdp_lt_note(c, path, v, PDP_MIG_MAPPED,
                        "the model's deployments are listed by order and its "
                        "model group gets strategy ordered (tried in that "
                        "order; a deployment without one comes last)");
        }
    } else if (strcmp(key, "weight") == 0) {
        char   buf[64];
        double w = -1;
        if (pdp_mig_number_text(v, buf, sizeof(buf))) {
            w = strtod(buf, NULL);
        }
        if (!(w >= 0) || w > 1000000) {
            pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                        "expected a weight from 0 to 1000000");
        } else {
            d->weight     = w;
            d->has_weight = true;
            pdp_lt_note(c, path, v, PDP_MIG_MAPPED,
                        "deployment weight (a fraction is scaled with every "
                        "weight of its model by 1000, keeping the ratios)");
        }
    } else if (strcmp(key, "input_cost_per_token") == 0) {
        pdp_lt_price(c, path, v, d->in_price, sizeof(d->in_price),
                     "input_per_mtok");
    } else if (strcmp(key, "output_cost_per_token") == 0) {
        pdp_lt_price(c, path, v, d->out_price, sizeof(d->out_price),
                     "output_per_mtok");
    } else if (strcmp(key, "cache_read_input_token_cost") == 0) {
        pdp_lt_price(c, path, v, d->cached_price, sizeof(d->cached_price),
                     "cached_input_per_mtok");
    } else if (strcmp(key, "timeout") == 0 ||
               strcmp(key, "stream_timeout") == 0) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "Tollgate's timeouts are per data plane, not per "
                    "deployment: set dataplane.%s in tollgate.json",
                    strcmp(key, "timeout") == 0 ? "total_timeout_ms"
                                                : "first_byte_timeout_ms");
    } else {
        bool req = false;
        for (size_t i = 0; reqp[i] != NULL; i++) {
            req = req || strcmp(reqp[i], key) == 0;
        }
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED, "%s",
                    req ? "a default request parameter: Tollgate never changes "
                          "what a client asks for; clients send it themselves"
                        : "no Tollgate equivalent for this deployment setting");
    }
}

/* ---- model_info -------------------------------------------------------- */

/* pdp_lt_info maps one key of model_info. */
static void
pdp_lt_info(pdp_lt *c, pdp_lt_dep *d, const char *key, const cJSON *v,
            const char *path)
{
    if (strcmp(key, "id") == 0) {
        return; /* pdp_lt_dep_id reported it */
    }
    if (strcmp(key, "input_cost_per_token") == 0) {
        pdp_lt_price(c, path, v, d->in_price, sizeof(d->in_price),
                     "input_per_mtok");
    } else if (strcmp(key, "output_cost_per_token") == 0) {
        pdp_lt_price(c, path, v, d->out_price, sizeof(d->out_price),
                     "output_per_mtok");
    } else if (strcmp(key, "cache_read_input_token_cost") == 0) {
        pdp_lt_price(c, path, v, d->cached_price, sizeof(d->cached_price),
                     "cached_input_per_mtok");
    } else if (strcmp(key, "mode") == 0) {
        bool known;
        d->embedding =
            cJSON_IsString(v) && strcmp(v->valuestring, "embedding") == 0;
        known =
            cJSON_IsString(v) && (strcmp(v->valuestring, "chat") == 0 ||
                                  strcmp(v->valuestring, "embedding") == 0 ||
                                  strcmp(v->valuestring, "completion") == 0);
        pdp_lt_note(c, path, v, known ? PDP_MIG_MAPPED : PDP_MIG_UNSUPPORTED,
                    "%s",
                    known ? "the deployment serves the endpoints its provider "
                            "has (chat, embeddings); no mode is needed"
                          : "Tollgate proxies chat and embeddings only");
    } else if (strcmp(key, "base_model") == 0) {
        pdp_lt_note(c, path, v, PDP_MIG_APPROXIMATED,
                    "LiteLLM prices by base_model; Tollgate prices a "
                    "deployment by its own pricing, else its model, else its "
                    "upstream_model (\"%s\") in the price table: give the "
                    "deployment pricing if the table does not know it",
                    d->upstream);
    } else if (strncmp(key, "max_", 4) == 0) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "Tollgate does not check context windows before "
                    "sending; the provider's refusal triggers the model's "
                    "context_window_fallbacks");
    } else if (strncmp(key, "supports_", 9) == 0 ||
               strcmp(key, "description") == 0 ||
               strcmp(key, "metadata") == 0) {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "descriptive only in LiteLLM; Tollgate has no field for "
                    "it (it changes nothing in routing)");
    } else {
        pdp_lt_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "no Tollgate equivalent for this model_info field");
    }
}

/* pdp_lt_dep_id picks the deployment id: model_info.id when it is a
 * valid, unused Tollgate id, else <model_name>-<n>. */
static void
pdp_lt_dep_id(pdp_lt *c, pdp_lt_dep *d, const cJSON *info, const char *path)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(info, "id");
    char         base[TG_ID_MAX - 12];
    char         p[128];

    snprintf(p, sizeof(p), "%s.model_info.id", path);
    if (cJSON_IsString(id) && tg_id_ok(id->valuestring) &&
        pdp_lt_dep_by_id(c, id->valuestring) == NULL) {
        snprintf(d->id, sizeof(d->id), "%s", id->valuestring);
        pdp_lt_note(c, p, id, PDP_MIG_MAPPED, "deployment id \"%s\"", d->id);
        return;
    }
    pdp_lt_slug(d->model_name, base, sizeof(base));
    for (int n = 1;; n++) {
        snprintf(d->id, sizeof(d->id), "%s-%d", base, n);
        if (pdp_lt_dep_by_id(c, d->id) == NULL) {
            break;
        }
    }
    if (id != NULL) {
        pdp_lt_note(c, p, id, PDP_MIG_APPROXIMATED,
                    "not usable as a Tollgate id (1-63 of A-Z a-z 0-9 . _ -, "
                    "unique): the deployment is \"%s\"",
                    d->id);
    }
}

pdp_lt_dep *
pdp_lt_dep_by_id(pdp_lt *c, const char *id)
{
    for (size_t i = 0; i < c->n_deps; i++) {
        if (strcmp(c->deps[i].id, id) == 0) {
            return &c->deps[i];
        }
    }
    return NULL;
}

/* pdp_lt_skip reports every field of an entry that is not imported. */
static void
pdp_lt_skip(pdp_lt *c, const cJSON *obj, const char *path, const char *skip)
{
    char p[256];

    for (const cJSON *m = obj != NULL ? obj->child : NULL; m != NULL;
         m              = m->next) {
        if (skip != NULL && strcmp(m->string, skip) == 0) {
            continue;
        }
        snprintf(p, sizeof(p), "%s.%s", path, m->string);
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "not imported with its deployment (see its "
                    "litellm_params.model)");
    }
}

/* pdp_lt_entry_keys reports the entry's own keys other than the three. */
static void
pdp_lt_entry_keys(pdp_lt *c, const cJSON *e, const char *path)
{
    char p[160];

    for (const cJSON *m = e->child; m != NULL; m = m->next) {
        if (strcmp(m->string, "model_name") == 0 ||
            strcmp(m->string, "litellm_params") == 0 ||
            strcmp(m->string, "model_info") == 0) {
            continue;
        }
        snprintf(p, sizeof(p), "%s.%s", path, m->string);
        pdp_lt_note(c, p, m, PDP_MIG_UNSUPPORTED,
                    "unknown field of a model_list entry; not carried over");
    }
}

/* pdp_lt_entry reads model_list[i]. false only for input LiteLLM would
 * refuse too (c->fatal says where); an unsupported provider is a
 * finding. */
static bool
pdp_lt_entry(pdp_lt *c, size_t i, const cJSON *e)
{
    const cJSON *mn   = cJSON_GetObjectItemCaseSensitive(e, "model_name");
    const cJSON *lp   = cJSON_GetObjectItemCaseSensitive(e, "litellm_params");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(e, "model_info");
    const cJSON *lm   = cJSON_GetObjectItemCaseSensitive(lp, "model");
    const cJSON *cp =
        cJSON_GetObjectItemCaseSensitive(lp, "custom_llm_provider");
    pdp_lt_dep *d;
    char        path[64];
    char        p[160];

    snprintf(path, sizeof(path), "model_list[%zu]", i);
    if (!cJSON_IsObject(e) || !cJSON_IsString(mn) ||
        mn->valuestring[0] == '\0' || strlen(mn->valuestring) >= TG_MODEL_MAX) {
        return pdp_lt_fatal(c, e,
                            "%s: expected a mapping with model_name (1 to %d "
                            "characters) and litellm_params",
                            path, TG_MODEL_MAX - 1);
    }
    if (!cJSON_IsObject(lp) || !cJSON_IsString(lm) ||
        lm->valuestring[0] == '\0') {
        return pdp_lt_fatal(c, lp != NULL ? lp : e,
                            "%s.litellm_params: expected a mapping with model "
                            "(provider/model)",
                            path);
    }
    if (info != NULL && !cJSON_IsObject(info) && !cJSON_IsNull(info)) {
        return pdp_lt_fatal(c, info, "%s.model_info: expected a mapping", path);
    }
    if (c->n_deps == PDP_LT_DEPS_MAX) {
        return pdp_lt_fatal(c, e, "more than %d deployments", PDP_LT_DEPS_MAX);
    }
    d = &c->deps[c->n_deps];
    memset(d, 0, sizeof(*d));
    d->model_name = mn->valuestring;
    d->line       = pdp_lt_line(c, e);
    c->cur        = d;
    snprintf(p, sizeof(p), "%s.model_name", path);
    pdp_lt_note(c, p, mn, PDP_MIG_MAPPED,
                "deployment model \"%s\" (the name clients ask for)",
                mn->valuestring);
    snprintf(p, sizeof(p), "%s.litellm_params.%s", path,
             cp != NULL ? "custom_llm_provider" : "model");
    if (cp != NULL) {
        pdp_lt_note(c, p, cp, PDP_MIG_MAPPED, "selects the provider");
        snprintf(p, sizeof(p), "%s.litellm_params.model", path);
    }
    if (!pdp_lt_provider(c, d, lm, cJSON_IsString(cp) ? cp->valuestring : NULL,
                         p)) {
        snprintf(p, sizeof(p), "%s.litellm_params", path);
        pdp_lt_skip(c, lp, p, "model");
        snprintf(p, sizeof(p), "%s.model_info", path);
        pdp_lt_skip(c, info, p, NULL);
        pdp_lt_entry_keys(c, e, path);
        return true;
    }
    pdp_lt_dep_id(c, d, info, path);
    if (cJSON_IsNull(info)) {
        snprintf(p, sizeof(p), "%s.model_info", path);
        pdp_lt_note(c, p, info, PDP_MIG_MAPPED, "empty");
    }
    for (const cJSON *m = lp->child; m != NULL; m = m->next) {
        snprintf(p, sizeof(p), "%s.litellm_params.%s", path, m->string);
        pdp_lt_param(c, d, m->string, m, p);
    }
    for (const cJSON *m = info != NULL ? info->child : NULL; m != NULL;
         m              = m->next) {
        snprintf(p, sizeof(p), "%s.model_info.%s", path, m->string);
        pdp_lt_info(c, d, m->string, m, p);
    }
    pdp_lt_entry_keys(c, e, path);
    return pdp_lt_dep_done(c, d, path);
}

/* pdp_lt_dep_done checks what the provider needs and counts d in. */
bool
pdp_lt_dep_done(pdp_lt *c, pdp_lt_dep *d, const char *path)
{
    pdp_lt_model *m;
    char          p[96];

    snprintf(p, sizeof(p), "%s.litellm_params", path);
    if (d->api_base_bad) {
        return true; /* said at api_base: not imported */
    }
    if (strcmp(d->provider, "ollama") == 0 && d->api_base != NULL &&
        strstr(d->api_base, "/v1") == NULL) {
        size_t n = strlen(d->api_base);
        snprintf(d->base_buf, sizeof(d->base_buf), "%.*s/v1",
                 (int)(n > 0 && d->api_base[n - 1] == '/' ? n - 1 : n),
                 d->api_base);
        d->api_base = d->base_buf;
        pdp_mig_add(c->f, p, d->line, PDP_MIG_APPROXIMATED,
                    "ollama: LiteLLM calls Ollama's own API at api_base; "
                    "Tollgate calls its OpenAI-compatible API, at %s",
                    d->api_base);
    }
    if (strcmp(d->provider, "openai") == 0 && d->api_base != NULL &&
        strncmp(d->api_base, "https://api.openai.com", 22) != 0) {
        d->provider = "openai_compatible";
        pdp_mig_add(c->f, p, d->line, PDP_MIG_MAPPED,
                    "openai/ with an api_base of another server: provider "
                    "openai_compatible");
    }
    if ((strcmp(d->provider, "openai_compatible") == 0 ||
         strcmp(d->provider, "vllm") == 0 ||
         strcmp(d->provider, "azure") == 0) &&
        d->api_base == NULL) {
        pdp_mig_add(c->f, p, d->line, PDP_MIG_UNSUPPORTED,
                    "provider %s needs an api_base URL and none is written; "
                    "this deployment is not imported",
                    d->provider);
        return true;
    }
    if (strcmp(d->provider, "azure") == 0 && d->api_version == NULL) {
        d->api_version = PDP_LT_AZURE_VERSION;
        pdp_mig_add(c->f, p, d->line, PDP_MIG_APPROXIMATED,
                    "azure without a written api_version: set to %s (LiteLLM "
                    "picks its own default)",
                    PDP_LT_AZURE_VERSION);
    }
    if ((d->in_price[0] != '\0') != (d->out_price[0] != '\0')) {
        snprintf(d->in_price[0] ? d->out_price : d->in_price,
                 sizeof(d->in_price), "0");
        pdp_mig_add(c->f, p, d->line, PDP_MIG_APPROXIMATED,
                    "only one of the input and output prices is given; the "
                    "other is set to 0 (Tollgate's pricing needs both)");
    }
    if ((m = pdp_lt_model_add(c, d->model_name, d->line)) == NULL) {
        return pdp_lt_fatal(c, NULL, "more than %d model names",
                            PDP_LT_MODELS_MAX);
    }
    d->imported = true;
    m->n_deps++;
    c->n_deps++;
    return true;
}

/* ---- the command ------------------------------------------------------- */

static const char pdp_lt_usage[] =
    "usage: tollgate-pdp import litellm CONFIG.yaml --out DIR [--dry-run]\n"
    "                                   [--keys KEYS.json] [--pricing FILE]\n"
    "                                   [--format text|json]\n"
    "\n"
    "Reads a LiteLLM proxy config and writes a Tollgate config into DIR (a\n"
    "new or empty directory): tollgate.json, bundle/ (rules and tests the\n"
    "config implies), findings.txt, and keys.sh with --keys (a /key/list\n"
    "export, return_full_object=true). Every field read is reported: mapped,\n"
    "approximated (how), or not supported (why, and what to do instead).\n"
    "--pricing FILE: a Tollgate price table (USD per 1M tokens; Tollgate's\n"
    "own is policies/pricing.json in its repository), checked now and set\n"
    "as pdp.pricing_file (absolute path): it prices the models the config\n"
    "does not (LiteLLM's built-in cost map is not carried over), and the\n"
    "budget rule counts them. Without it, models without a price are\n"
    "costed at $0 (the report names them).\n"
    "--dry-run prints the report and writes nothing. Exit status: 0\n"
    "imported (even with approximations), 1 could not write, 2 bad flags\n"
    "or input (with file:line:col).\n";

/* pdp_lt_sections reads the top level. */
static bool
pdp_lt_sections(pdp_lt *c, const cJSON *root)
{
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(root, "model_list");
    size_t       i  = 0;

    if (!cJSON_IsObject(root)) {
        return pdp_lt_fatal(c, root,
                            "expected a mapping with model_list "
                            "(a LiteLLM proxy config)");
    }
    if (!cJSON_IsArray(ml) || cJSON_GetArraySize(ml) == 0) {
        return pdp_lt_fatal(c, ml != NULL ? ml : root,
                            "model_list: expected a list of deployments "
                            "(model_name, litellm_params)");
    }
    for (const cJSON *e = ml->child; e != NULL; e = e->next, i++) {
        if (!pdp_lt_entry(c, i, e)) {
            return false;
        }
    }
    /* router_settings first: its model_group_alias makes models that
     * fallbacks elsewhere may name, and its retries and timeout win. */
    for (int pass = 0; pass < 2; pass++) {
        for (const cJSON *s = root->child; s != NULL; s = s->next) {
            bool router = strcmp(s->string, "router_settings") == 0;
            if (strcmp(s->string, "model_list") == 0 || router != (pass == 0)) {
                continue;
            }
            if (!pdp_lt_section(c, s)) {
                return false;
            }
        }
    }
    return true;
}

/* pdp_lt_run reads the config and builds c's output. */
static int
pdp_lt_run(pdp_lt *c, const pdp_mig_args *a, FILE *err)
{
    tg_yaml_opts opts = {.aliases = true};
    char        *text = NULL;
    size_t       len  = 0;
    char         msg[1024];
    tg_err       rv;

    if ((rv = pdp_mig_read_file(a->input, PDP_LT_MAX_BYTES, &text, &len, msg,
                                sizeof(msg))) != TG_OK) {
        fprintf(err, "tollgate-pdp import litellm: %s\n", msg);
        return PDP_MIG_EXIT_USAGE;
    }
    c->j_dp    = cJSON_CreateObject();
    c->j_pdp   = cJSON_CreateObject();
    c->out_top = cJSON_CreateObject();
    if (c->j_dp == NULL || c->j_pdp == NULL || c->out_top == NULL) {
        free(text);
        fprintf(err, "tollgate-pdp import litellm: out of memory\n");
        return PDP_MIG_EXIT_FAIL;
    }
    rv = tg_yaml_load(text, len, &opts, &c->doc, msg, sizeof(msg));
    free(text);
    if (rv != TG_OK) {
        fprintf(err, "tollgate-pdp import litellm: %s:%s\n", a->input, msg);
        return PDP_MIG_EXIT_USAGE;
    }
    if (!pdp_lt_sections(c, tg_yaml_root(c->doc))) {
        fprintf(err, "tollgate-pdp import litellm: %s\n",
                c->fatal[0] ? c->fatal : "out of memory");
        return PDP_MIG_EXIT_USAGE;
    }
    if (!pdp_lt_build(c)) {
        /* Nothing could be imported: say why for each deployment. */
        pdp_mig_findings_text(c->f, err);
        fprintf(err, "tollgate-pdp import litellm: %s\n",
                c->fatal[0] ? c->fatal : "out of memory");
        return PDP_MIG_EXIT_USAGE;
    }
    return PDP_MIG_EXIT_OK;
}

int
pdp_import_litellm_cli(int argc, char **argv, FILE *out, FILE *err)
{
    static const char cmd[] = "tollgate-pdp import litellm";
    pdp_mig_args      a;
    pdp_lt           *c     = calloc(1, sizeof(*c));
    tg_pricing       *table = NULL;
    char              msg[1024];
    char              table_abs[PATH_MAX];
    int               ec;

    if (c == NULL) {
        fprintf(err, "%s: out of memory\n", cmd);
        return PDP_MIG_EXIT_FAIL;
    }
    ec = pdp_mig_args_parse(&a, argc, argv, "out dry-run keys pricing format",
                            cmd, err);
    if (ec == PDP_MIG_EXIT_OK && a.help) {
        fputs(pdp_lt_usage, out);
        free(c);
        return PDP_MIG_EXIT_OK;
    }
    if (ec == PDP_MIG_EXIT_OK &&
        (a.input == NULL || (a.out == NULL && !a.dry_run))) {
        fprintf(err, "%s: %s\n%s", cmd,
                a.input == NULL ? "give the LiteLLM config.yaml to read"
                                : "give --out DIR (or --dry-run)",
                pdp_lt_usage);
        ec = PDP_MIG_EXIT_USAGE;
    }
    if (ec == PDP_MIG_EXIT_OK) {
        ec = pdp_mig_pricing_open(&a, cmd, &table, table_abs, sizeof(table_abs),
                                  err);
    }
    if (ec != PDP_MIG_EXIT_OK) {
        free(c);
        return ec;
    }
    c->table = table;
    c->file  = a.input;
    pdp_mig_findings_init(&c->findings, a.input);
    c->f = &c->findings;
    ec   = pdp_lt_run(c, &a, err);
    if (ec == PDP_MIG_EXIT_OK && a.keys != NULL &&
        pdp_lt_keys(a.keys, c->model_names, c->f, &c->keys_sh, msg,
                    sizeof(msg)) != TG_OK) {
        fprintf(err, "%s: %s\n", cmd, msg);
        ec = PDP_MIG_EXIT_USAGE;
    }
    if (ec == PDP_MIG_EXIT_OK) {
        pdp_mig_unpriced(c->f, c->j_deps, table,
                         table != NULL ? table_abs : NULL);
        c->out.pricing_file = table != NULL ? table_abs : NULL;
        if (c->keys_sh != NULL) {
            c->out.files[c->out.n_files++] =
                (pdp_mig_file){"keys.sh", c->keys_sh, 0700};
        }
        ec = pdp_mig_finish(&a, cmd, &c->out, c->f, out, err);
    }
    pdp_lt_free(c);
    tg_pricing_destroy(table);
    return ec;
}
