#include "tg_config.h"

#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_config_int.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_pricing.h"

#define TG_CONFIG_MAX_BYTES (4u << 20)

tg_err
tg_config_path(const tg_config_priv *p, const char *in, char **out)
{
    size_t n;

    if (in[0] == '/') {
        *out = strdup(in);
    } else {
        n    = strlen(p->dir) + strlen(in) + 2;
        *out = malloc(n);
        if (*out != NULL) {
            snprintf(*out, n, "%s/%s", p->dir, in);
        }
    }
    return *out == NULL ? TG_ENOMEM : TG_OK;
}

bool
tg_config_is_secret_ref(const char *s)
{
    size_t n = strlen(s);

    if (n < 4 || s[0] != '$' || s[1] != '{' || s[n - 1] != '}') {
        return false;
    }
    for (size_t i = 2; i < n - 1; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

bool
tg_id_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= TG_ID_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-')) {
            return false;
        }
    }
    return true;
}

bool
tg_config_hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    char       *end;
    long        port;

    if (colon == NULL || colon == s) {
        return false;
    }
    port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port > 0 && port < 65536;
}

/* tg_config_decisions reads pdp.decisions: how the decision log signs
 * checkpoints and how long it keeps records. */
static tg_err
tg_config_decisions(const tg_json_doc *d, const cJSON *pdp, tg_pdp_config *c,
                    char *err, size_t errlen)
{
    static const char *const keys[] = {"checkpoint_every", "checkpoint_seconds",
                                       "retention_days", "retention_mb", NULL};
    const cJSON             *sec = cJSON_GetObjectItemCaseSensitive(pdp, "decisions");
    tg_err                   rv;

    c->decision_checkpoint_every = 1000;
    c->decision_checkpoint_s     = 10;
    if (sec == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(sec)) {
        return tg_json_errf(d, sec, err, errlen,
                            "pdp.decisions: expected an object such as "
                            "{\"retention_days\": 400}");
    }
    if ((rv = tg_json_only_keys(d, sec, "pdp.decisions", keys, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp.decisions", "checkpoint_every",
                              false, 1, 1000000, &c->decision_checkpoint_every,
                              err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp.decisions", "checkpoint_seconds",
                              false, 1, 86400, &c->decision_checkpoint_s, err,
                              errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp.decisions", "retention_days", false,
                              0, 36500, &c->decision_retention_days, err,
                              errlen)) != TG_OK) {
        return rv;
    }
    return tg_json_get_int(d, sec, "pdp.decisions", "retention_mb", false, 0,
                           1 << 30, &c->decision_retention_mb, err, errlen);
}

static tg_err
tg_config_pdp(tg_config *cfg, tg_config_priv *p, const cJSON *sec, char *err,
              size_t errlen)
{
    static const char *const keys[] = {"listen",        "state_dir",
                                       "admin_listen",  "pricing_file",
                                       "bundle",        "bundle_watch",
                                       "workers",       "max_message_bytes",
                                       "map_size_mb",   "reservation_ttl_s",
                                       "alert_webhook", "allow_uids",
                                       "socket_group",  "decisions",
                                       "tls",           "allow_plain_tcp",
                                       "probe_listen",  "drain_timeout_s",
                                       "admin_tls",     "upstream",
                                       "ha",            "responses",
                                       NULL};
    const tg_json_doc       *d      = p->doc;
    tg_pdp_config           *c      = &cfg->pdp;
    const char              *sd     = NULL;
    const char              *pf     = NULL;
    const char              *bd     = NULL;
    const cJSON             *l;
    tg_err                   rv;

    c->workers           = 16;
    c->bundle_watch      = true;
    c->max_message_bytes = 128 * 1024;
    c->map_size_mb       = 1024;
    c->reservation_ttl_s = 900;
    c->drain_timeout_s   = 10;
    if ((rv = tg_json_only_keys(d, sec, "pdp", keys, err, errlen)) != TG_OK ||
        (rv = tg_config_decisions(d, sec, c, err, errlen)) != TG_OK ||
        (rv = tg_config_responses(d, sec, c, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "pdp", "state_dir", true, &sd, err,
                                 errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "pdp", "admin_listen", false,
                                 &c->admin_listen, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "pdp", "socket_group", false,
                                 &c->socket_group, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "pdp", "pricing_file", false, &pf, err,
                                 errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "pdp", "bundle", false, &bd, err,
                                 errlen)) != TG_OK ||
        (rv = tg_json_get_bool(d, sec, "pdp", "bundle_watch", false,
                               &c->bundle_watch, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp", "workers", false, 1, 1024,
                              &c->workers, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp", "max_message_bytes", false, 1024,
                              16 << 20, &c->max_message_bytes, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp", "map_size_mb", false, 1, 1 << 20,
                              &c->map_size_mb, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp", "reservation_ttl_s", false, 1,
                              7 * 24 * 3600, &c->reservation_ttl_s, err,
                              errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, "pdp", "drain_timeout_s", false, 0, 3600,
                              &c->drain_timeout_s, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "pdp", "alert_webhook", false,
                                 &c->alert_webhook, err, errlen)) != TG_OK) {
        return rv;
    }
    if (c->alert_webhook != NULL) {
        const char *u    = c->alert_webhook;
        size_t      skip = strncmp(u, "http://", 7) == 0    ? 7
                           : strncmp(u, "https://", 8) == 0 ? 8
                                                            : 0;
        if (skip == 0 || u[skip] == '\0' || strlen(u) >= 512 ||
            strpbrk(u, " \t\r\n") != NULL) {
            return tg_json_errf(
                d, cJSON_GetObjectItem(sec, "alert_webhook"), err, errlen,
                "pdp.alert_webhook: expected an http:// or https:// URL (at "
                "most 511 bytes, no spaces), e.g. "
                "\"http://127.0.0.1:9000/alerts\"");
        }
    }
    if ((rv = tg_config_pdp_net(p, sec, c, err, errlen)) != TG_OK) {
        return rv;
    }
    if (c->max_message_bytes < TG_CONFIG_PDP_MSG_MIN) {
        /* A config made for an older release (whose default was 65536)
         * still loads; a full usage batch must fit, or the PDP would drop
         * it unread and the spool retry it for ever. */
        tg_warn("%s: pdp.max_message_bytes %lld is below a full usage batch "
                "(%d bytes); using %d",
                tg_json_doc_name(d), (long long)c->max_message_bytes,
                TG_CONFIG_PDP_MSG_MIN, TG_CONFIG_PDP_MSG_MIN);
        c->max_message_bytes = TG_CONFIG_PDP_MSG_MIN;
    }
    if ((l = cJSON_GetObjectItemCaseSensitive(sec, "allow_uids")) != NULL) {
        if (!cJSON_IsArray(l) || cJSON_GetArraySize(l) == 0 ||
            cJSON_GetArraySize(l) > TG_CONFIG_MAX_UIDS) {
            return tg_json_errf(d, l, err, errlen,
                                "pdp.allow_uids: expected a list of 1 to %d "
                                "user ids, e.g. [998, 999]",
                                TG_CONFIG_MAX_UIDS);
        }
        for (const cJSON *u = l->child; u != NULL; u = u->next) {
            if (!cJSON_IsNumber(u) || u->valuedouble < 0 ||
                u->valuedouble > 4294967294.0 ||
                u->valuedouble != (double)(int64_t)u->valuedouble) {
                return tg_json_errf(d, u, err, errlen,
                                    "pdp.allow_uids: expected a user id (a "
                                    "whole number from 0 to 4294967294; "
                                    "id -u NAME prints it)");
            }
            c->allow_uids[c->n_allow_uids++] = (int64_t)u->valuedouble;
        }
    }
    if (c->admin_listen != NULL && !tg_config_hostport_ok(c->admin_listen)) {
        return tg_json_errf(d, cJSON_GetObjectItem(sec, "admin_listen"), err,
                            errlen,
                            "pdp.admin_listen: expected \"host:port\", e.g. "
                            "\"127.0.0.1:7071\"");
    }
    if ((rv = tg_config_path(p, sd, &c->state_dir)) != TG_OK) {
        return rv;
    }
    if (pf != NULL && (rv = tg_config_path(p, pf, &c->pricing_file)) != TG_OK) {
        return rv;
    }
    if (bd != NULL && (rv = tg_config_path(p, bd, &c->bundle_dir)) != TG_OK) {
        return rv;
    }
    if ((rv = tg_config_upstream(p, sec, c, err, errlen)) != TG_OK) {
        return rv;
    }
    return tg_config_ha(p, sec, c, err, errlen);
}

/* tg_config_otel reads dataplane.otel (absent: no traces). */
static tg_err
tg_config_otel(const tg_json_doc *d, const cJSON *dp, tg_otel_config *c,
               char *err, size_t errlen)
{
    static const char *const keys[] = {"endpoint",  "service_name",
                                       "timeout_ms", "flush_ms",
                                       "queue_max",  "batch_max", NULL};
    const cJSON             *sec = cJSON_GetObjectItemCaseSensitive(dp, "otel");
    const char              *ctx = "dataplane.otel";
    tg_err                   rv;

    c->service_name = "tollgate";
    c->timeout_ms   = 5000;
    c->flush_ms     = 1000;
    c->queue_max    = 4096;
    c->batch_max    = 512;
    if (sec == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(sec)) {
        return tg_json_errf(d, sec, err, errlen,
                            "dataplane.otel: expected an object such as "
                            "{\"endpoint\": "
                            "\"http://127.0.0.1:4318/v1/traces\"}");
    }
    if ((rv = tg_json_only_keys(d, sec, ctx, keys, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, ctx, "endpoint", true, &c->endpoint,
                                 err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, ctx, "service_name", false,
                                 &c->service_name, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, ctx, "timeout_ms", false, 100, 60000,
                              &c->timeout_ms, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, ctx, "flush_ms", false, 10, 60000,
                              &c->flush_ms, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, ctx, "queue_max", false, 16, 1000000,
                              &c->queue_max, err, errlen)) != TG_OK ||
        (rv = tg_json_get_int(d, sec, ctx, "batch_max", false, 1, 8192,
                              &c->batch_max, err, errlen)) != TG_OK) {
        return rv;
    }
    if (strncmp(c->endpoint, "http://", 7) != 0 &&
        strncmp(c->endpoint, "https://", 8) != 0) {
        return tg_json_errf(d, cJSON_GetObjectItemCaseSensitive(sec, "endpoint"),
                            err, errlen,
                            "dataplane.otel.endpoint: expected an http:// or "
                            "https:// URL of an OTLP/HTTP collector, e.g. "
                            "\"http://127.0.0.1:4318/v1/traces\"");
    }
    return TG_OK;
}

/* The data plane's integer settings: name, field, default, range. A
 * default of 0 for response_timeout_s means "derived" (below). */
typedef struct tg_config_int {
    const char *name;
    size_t      off; /* in tg_dp_config */
    int64_t     def;
    int64_t     min;
    int64_t     max;
} tg_config_int;

#define TG_DP_INT(f, def, min, max)                                            \
    {                                                                          \
#f, offsetof(tg_dp_config, f), def, min, max                           \
    }
static const tg_config_int tg_config_dp_ints[] = {
    TG_DP_INT(workers, 0, 0, 256),
    TG_DP_INT(pdp_uid, -1, 0, 4294967294LL),
    TG_DP_INT(pdp_timeout_ms, 50, 1, 60000),
    TG_DP_INT(responses_pdp, 1, 1, TG_CONFIG_MAX_PDP_URLS),
    TG_DP_INT(fail_open_key_ttl_s, 600, 1, 86400),
    TG_DP_INT(decision_reuse_ms, 2000, 0, 60000),
    TG_DP_INT(max_body_bytes, 1 << 20, 1024, 256 << 20),
    TG_DP_INT(max_header_bytes, 16 * 1024, 1024, 1 << 20),
    TG_DP_INT(client_timeout_s, 30, 1, 3600),
    TG_DP_INT(max_connections, 4096, 16, 1000000),
    TG_DP_INT(max_connections_per_ip, 256, 1, 1000000),
    TG_DP_INT(request_timeout_s, 60, 1, 3600),
    TG_DP_INT(response_timeout_s, 0, 1, 172800),
    TG_DP_INT(connect_timeout_ms, 5000, 1, 600000),
    TG_DP_INT(first_byte_timeout_ms, 60000, 1, 3600000),
    TG_DP_INT(total_timeout_ms, 600000, 1, 86400000),
    TG_DP_INT(idle_timeout_ms, 120000, 1, 86400000),
    TG_DP_INT(retries, 2, 0, 10),
    TG_DP_INT(retry_backoff_ms, 200, 0, 60000),
    TG_DP_INT(retry_backoff_max_ms, 8000, 0, 600000),
    TG_DP_INT(cooldown_failures, 3, 1, 1000),
    TG_DP_INT(cooldown_window_ms, 30000, 1, 86400000),
    TG_DP_INT(cooldown_ms, 30000, 1, 86400000),
    TG_DP_INT(spool_memory_max_bytes, 64 << 20, 4096, 16LL << 30),
    TG_DP_INT(decision_backlog_max, 100000, 0, 1000000000),
    TG_DP_INT(capture_max_bytes, 32768, 0, 4 << 20),
    TG_DP_INT(drain_timeout_s, 25, 0, 3600),
    TG_DP_INT(drain_accept_s, 0, 0, 3600),
};
#define TG_DP_NINTS (sizeof(tg_config_dp_ints) / sizeof(tg_config_dp_ints[0]))

/* The data plane's string settings, in the order they are read. */
static const char *const tg_config_dp_strs[] = {"listen", "pdp_url",
                                                "on_pdp_error", "spool_dir"};
#define TG_DP_NSTRS (sizeof(tg_config_dp_strs) / sizeof(tg_config_dp_strs[0]))

/* tg_config_dp_ints_read sets every integer setting of c: its default,
 * then the value in sec when there is one and it is in range. */
static tg_err
tg_config_dp_ints_read(const tg_json_doc *d, const cJSON *sec, tg_dp_config *c,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < TG_DP_NINTS; i++) {
        const tg_config_int *f = &tg_config_dp_ints[i];
        int64_t             *v = (int64_t *)((char *)c + f->off);
        tg_err               rv;

        *v = f->def;
        if ((rv = tg_json_get_int(d, sec, "dataplane", f->name, false, f->min,
                                  f->max, v, err, errlen)) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* tg_config_dp_check checks what one setting alone cannot say: the
 * listen address, the derived response timeout and on_pdp_error. */
static tg_err
tg_config_dp_check(const tg_json_doc *d, const cJSON *sec, tg_dp_config *c,
                   const char *ope, char *err, size_t errlen)
{
    if (!tg_config_hostport_ok(c->listen)) {
        return tg_json_errf(d, cJSON_GetObjectItem(sec, "listen"), err, errlen,
                            "dataplane.listen: expected \"host:port\", e.g. "
                            "\"127.0.0.1:8080\"");
    }
    /* The client's time to take an answer starts when its request is in:
     * longer than any one upstream attempt may run. */
    if (c->response_timeout_s == 0) {
        c->response_timeout_s = c->total_timeout_ms / 1000 + 300;
    } else if (c->response_timeout_s * 1000 <= c->total_timeout_ms) {
        return tg_json_errf(
            d, cJSON_GetObjectItem(sec, "response_timeout_s"), err, errlen,
            "dataplane.response_timeout_s (%lld s) must be longer than "
            "total_timeout_ms (%lld ms), or a slow provider's answers would "
            "be cut by it",
            (long long)c->response_timeout_s, (long long)c->total_timeout_ms);
    }
    if (ope != NULL) {
        if (strcmp(ope, "allow") == 0) {
            c->on_pdp_error_allow = true;
        } else if (strcmp(ope, "deny") != 0) {
            return tg_json_errf(d, cJSON_GetObjectItem(sec, "on_pdp_error"),
                                err, errlen,
                                "dataplane.on_pdp_error: expected \"deny\" "
                                "(default) or \"allow\"");
        }
    }
    return TG_OK;
}

static tg_err
tg_config_dataplane(tg_config *cfg, tg_config_priv *p, const cJSON *sec,
                    char *err, size_t errlen)
{
    const char        *keys[TG_DP_NINTS + TG_DP_NSTRS + 3];
    const tg_json_doc *d   = p->doc;
    tg_dp_config      *c   = &cfg->dataplane;
    const char        *ope = NULL;
    const char        *sd  = NULL;
    size_t             n   = 0;
    tg_err             rv;

    for (size_t i = 0; i < TG_DP_NSTRS; i++) {
        keys[n++] = tg_config_dp_strs[i];
    }
    for (size_t i = 0; i < TG_DP_NINTS; i++) {
        keys[n++] = tg_config_dp_ints[i].name;
    }
    keys[n++] = "otel";
    keys[n++] = "pdp_tls";
    keys[n]   = NULL;
    if ((rv = tg_json_only_keys(d, sec, "dataplane", keys, err, errlen)) !=
            TG_OK ||
        (rv = tg_json_get_string(d, sec, "dataplane", "listen", true,
                                 &c->listen, err, errlen)) != TG_OK ||
        (rv = tg_config_dp_net(p, sec, c, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "dataplane", "on_pdp_error", false,
                                 &ope, err, errlen)) != TG_OK ||
        (rv = tg_json_get_string(d, sec, "dataplane", "spool_dir", true, &sd,
                                 err, errlen)) != TG_OK ||
        (rv = tg_config_dp_ints_read(d, sec, c, err, errlen)) != TG_OK ||
        (rv = tg_config_dp_check(d, sec, c, ope, err, errlen)) != TG_OK ||
        (rv = tg_config_otel(d, sec, &c->otel, err, errlen)) != TG_OK) {
        return rv;
    }
    return tg_config_path(p, sd, &c->spool_dir);
}

/* tg_config_labels reads a deployment's "labels": {"region": "eu", …},
 * which route rules select deployments by. */
static tg_err
tg_config_labels(const tg_json_doc *d, const cJSON *o, const char *ctx,
                 tg_deployment *dep, char *err, size_t errlen)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "labels");

    if (l == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(l) || cJSON_GetArraySize(l) > TG_CONFIG_MAX_LABELS) {
        return tg_json_errf(d, l, err, errlen,
                            "%s.labels: expected an object of at most %d "
                            "string labels, e.g. {\"region\": \"eu\"}",
                            ctx, TG_CONFIG_MAX_LABELS);
    }
    for (const cJSON *m = l->child; m != NULL; m = m->next) {
        if (!cJSON_IsString(m) || m->string[0] == '\0' ||
            strlen(m->string) >= 64 || strlen(m->valuestring) >= 256) {
            return tg_json_errf(d, m, err, errlen,
                                "%s.labels.%s: expected a string (names under "
                                "64, values under 256 characters)",
                                ctx, m->string);
        }
        dep->label_keys[dep->n_labels]   = m->string;
        dep->label_values[dep->n_labels] = m->valuestring;
        dep->n_labels++;
    }
    return TG_OK;
}

/* The providers a deployment may name. Named OpenAI-compatible services
 * have their usual API base as the default. */
static const struct {
    const char *name;
    tg_provider kind;
    const char *api_base;          /* default; NULL: api_base is required */
    bool        no_stream_options; /* rejects stream_options (422) */
} tg_config_providers[] = {
    {"openai", TG_PROVIDER_OPENAI, "https://api.openai.com/v1", false},
    {"openai_compatible", TG_PROVIDER_OPENAI, NULL, false},
    {"vllm", TG_PROVIDER_OPENAI, NULL, false},
    {"ollama", TG_PROVIDER_OPENAI, "http://127.0.0.1:11434/v1", false},
    {"groq", TG_PROVIDER_OPENAI, "https://api.groq.com/openai/v1", false},
    {"mistral", TG_PROVIDER_OPENAI, "https://api.mistral.ai/v1", true},
    {"deepseek", TG_PROVIDER_OPENAI, "https://api.deepseek.com/v1", false},
    {"together", TG_PROVIDER_OPENAI, "https://api.together.xyz/v1", false},
    {"openrouter", TG_PROVIDER_OPENAI, "https://openrouter.ai/api/v1", false},
    {"azure", TG_PROVIDER_AZURE, NULL, false},
    {"anthropic", TG_PROVIDER_ANTHROPIC, "https://api.anthropic.com", false},
    {"gemini", TG_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com",
     false},
    {"bedrock", TG_PROVIDER_BEDROCK, NULL, false}, /* from "region" */
};

const char *
tg_provider_name(tg_provider k)
{
    static const char *const names[] = {"openai", "azure", "anthropic",
                                        "gemini", "bedrock"};

    return (unsigned)k < 5 ? names[k] : "openai";
}

/* tg_config_provider checks a deployment's provider, api_base and the
 * fields its provider needs. */
static tg_err
tg_config_provider(const tg_json_doc *d, const cJSON *o, const char *ctx,
                   tg_deployment *dep, char *err, size_t errlen)
{
    size_t n = sizeof(tg_config_providers) / sizeof(tg_config_providers[0]);
    size_t i;
    tg_err rv;

    for (i = 0; i < n && strcmp(tg_config_providers[i].name, dep->provider);
         i++) {
    }
    if (i == n) {
        return tg_json_errf(d, cJSON_GetObjectItem(o, "provider"), err, errlen,
                            "%s.provider: \"%s\" is not supported; expected "
                            "openai, azure, anthropic, gemini, bedrock, or an "
                            "OpenAI-compatible API: openai_compatible, vllm, "
                            "ollama, groq, mistral, deepseek, together, "
                            "openrouter",
                            ctx, dep->provider);
    }
    dep->kind              = tg_config_providers[i].kind;
    dep->no_stream_options = tg_config_providers[i].no_stream_options;
    if ((rv = tg_config_bedrock(d, o, ctx, dep, err, errlen)) != TG_OK) {
        return rv;
    }
    if (dep->api_base == NULL) {
        dep->api_base = tg_config_providers[i].api_base;
    }
    if (dep->api_base == NULL) {
        return tg_json_errf(d, o, err, errlen,
                            "%s: provider \"%s\" needs \"api_base\" (the "
                            "URL its API is served at)",
                            ctx, dep->provider);
    }
    if (strncmp(dep->api_base, "http://", 7) != 0 &&
        strncmp(dep->api_base, "https://", 8) != 0) {
        return tg_json_errf(d, cJSON_GetObjectItem(o, "api_base"), err, errlen,
                            "%s.api_base: expected an http:// or https:// URL",
                            ctx);
    }
    if (dep->kind == TG_PROVIDER_AZURE && dep->api_version == NULL) {
        return tg_json_errf(d, o, err, errlen,
                            "%s: an azure deployment needs \"api_version\" "
                            "(e.g. \"2024-10-21\"); its upstream_model is "
                            "the Azure deployment name",
                            ctx);
    }
    if (dep->api_version != NULL && dep->kind != TG_PROVIDER_AZURE) {
        return tg_json_errf(
            d, cJSON_GetObjectItem(o, "api_version"), err, errlen,
            "%s.api_version: only azure deployments take it", ctx);
    }
    if (dep->anthropic_version != NULL && dep->kind != TG_PROVIDER_ANTHROPIC) {
        return tg_json_errf(d, cJSON_GetObjectItem(o, "anthropic_version"), err,
                            errlen,
                            "%s.anthropic_version: only anthropic "
                            "deployments take it",
                            ctx);
    }
    if (dep->kind == TG_PROVIDER_ANTHROPIC && dep->anthropic_version == NULL) {
        dep->anthropic_version = "2023-06-01";
    }
    return TG_OK;
}

/* tg_config_price reads one price (USD per 1M tokens) into micro-USD. */
static tg_err
tg_config_price(const tg_json_doc *d, const cJSON *pr, const char *ctx,
                const char *key, bool required, int64_t *out, char *err,
                size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pr, key);
    double       x = cJSON_GetNumberValue(v);

    if (v == NULL) {
        return required ? tg_json_errf(d, pr, err, errlen,
                                       "%s.pricing: missing \"%s\" (USD per "
                                       "1M tokens, e.g. 0.15)",
                                       ctx, key)
                        : TG_OK;
    }
    if (!cJSON_IsNumber(v) || !(x >= 0.0) || x > TG_PRICE_MAX_USD) {
        return tg_json_errf(d, v, err, errlen,
                            "%s.pricing.%s: expected a number of USD per 1M "
                            "tokens from 0 to %.0f",
                            ctx, key, TG_PRICE_MAX_USD);
    }
    *out = llround(x * 1e6);
    return TG_OK;
}

/* tg_config_pricing reads a deployment's optional "pricing": {
 * "input_per_mtok", "output_per_mtok", "cached_input_per_mtok"?}. */
static tg_err
tg_config_pricing(const tg_json_doc *d, const cJSON *o, const char *ctx,
                  tg_deployment *dep, char *err, size_t errlen)
{
    static const char *const keys[] = {"input_per_mtok", "output_per_mtok",
                                       "cached_input_per_mtok", NULL};
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "pricing");
    char         pctx[64];
    tg_err       rv;

    if (pr == NULL) {
        return TG_OK;
    }
    snprintf(pctx, sizeof(pctx), "%s.pricing", ctx);
    if (!cJSON_IsObject(pr)) {
        return tg_json_errf(d, pr, err, errlen,
                            "%s: expected {\"input_per_mtok\": …, "
                            "\"output_per_mtok\": …}",
                            pctx);
    }
    if ((rv = tg_json_only_keys(d, pr, pctx, keys, err, errlen)) != TG_OK ||
        (rv = tg_config_price(d, pr, ctx, "input_per_mtok", true,
                              &dep->price_input, err, errlen)) != TG_OK ||
        (rv = tg_config_price(d, pr, ctx, "output_per_mtok", true,
                              &dep->price_output, err, errlen)) != TG_OK) {
        return rv;
    }
    dep->price_cached_input = dep->price_input;
    if ((rv = tg_config_price(d, pr, ctx, "cached_input_per_mtok", false,
                              &dep->price_cached_input, err, errlen)) !=
        TG_OK) {
        return rv;
    }
    dep->has_price = true;
    return TG_OK;
}

/* tg_config_stream_options reads "stream_options": whether an
 * OpenAI-format deployment accepts stream_options.include_usage (the
 * provider's default unless written). */
static tg_err
tg_config_stream_options(const tg_json_doc *d, const cJSON *o, const char *ctx,
                         tg_deployment *dep, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "stream_options");
    bool         accepts = !dep->no_stream_options;
    tg_err       rv;

    if (v == NULL) {
        return TG_OK;
    }
    if (dep->kind == TG_PROVIDER_ANTHROPIC || dep->kind == TG_PROVIDER_GEMINI ||
        dep->kind == TG_PROVIDER_BEDROCK) {
        return tg_json_errf(d, v, err, errlen,
                            "%s.stream_options: only OpenAI-format "
                            "deployments take it; remove it for provider "
                            "\"%s\"",
                            ctx, dep->provider);
    }
    if ((rv = tg_json_get_bool(d, o, ctx, "stream_options", false, &accepts,
                               err, errlen)) != TG_OK) {
        return rv;
    }
    dep->no_stream_options = !accepts;
    return TG_OK;
}

static tg_err
tg_config_deployments(tg_config *cfg, tg_config_priv *p, const cJSON *arr,
                      char *err, size_t errlen)
{
    static const char *const keys[] = {"id",
                                       "model",
                                       "provider",
                                       "api_base",
                                       "api_key",
                                       "upstream_model",
                                       "labels",
                                       "pricing",
                                       "weight",
                                       "api_version",
                                       "anthropic_version",
                                       "stream_options",
                                       "region",
                                       "aws_access_key_id",
                                       "aws_secret_access_key",
                                       "aws_session_token",
                                       NULL};
    const tg_json_doc       *d      = p->doc;
    size_t                   i      = 0;
    tg_err                   rv;

    if (!cJSON_IsArray(arr)) {
        return tg_json_errf(d, arr, err, errlen,
                            "deployments: expected a list of deployments");
    }
    cfg->deployments =
        calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->deployments));
    if (cfg->deployments == NULL) {
        return TG_ENOMEM;
    }
    for (const cJSON *o = arr->child; o != NULL; o = o->next, i++) {
        tg_deployment *dep = &cfg->deployments[i];
        char           ctx[48];

        dep->weight = 1;
        snprintf(ctx, sizeof(ctx), "deployments[%zu]", i);
        if ((rv = tg_json_only_keys(d, o, ctx, keys, err, errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "id", true, &dep->id, err,
                                     errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "model", true, &dep->model, err,
                                     errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "provider", true,
                                     &dep->provider, err, errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "api_base", false,
                                     &dep->api_base, err, errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "api_version", false,
                                     &dep->api_version, err, errlen)) !=
                TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "anthropic_version", false,
                                     &dep->anthropic_version, err, errlen)) !=
                TG_OK ||
            (rv = tg_json_get_int(d, o, ctx, "weight", false, 0, 1000000,
                                  &dep->weight, err, errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "api_key", false, &dep->api_key,
                                     err, errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "upstream_model", false,
                                     &dep->upstream_model, err, errlen)) !=
                TG_OK) {
            return rv;
        }
        if (dep->id[0] == '\0' || strlen(dep->id) >= TG_ID_MAX) {
            return tg_json_errf(d, cJSON_GetObjectItem(o, "id"), err, errlen,
                                "%s.id: expected 1 to %d characters", ctx,
                                TG_ID_MAX - 1);
        }
        if (dep->model[0] == '\0' || strlen(dep->model) >= TG_MODEL_MAX) {
            return tg_json_errf(d, cJSON_GetObjectItem(o, "model"), err, errlen,
                                "%s.model: expected 1 to %d characters", ctx,
                                TG_MODEL_MAX - 1);
        }
        if ((rv = tg_config_provider(d, o, ctx, dep, err, errlen)) != TG_OK ||
            (rv = tg_config_stream_options(d, o, ctx, dep, err, errlen)) !=
                TG_OK) {
            return rv;
        }
        if (dep->api_key != NULL && !tg_config_is_secret_ref(dep->api_key)) {
            /* Never echo the value: it may be a real key pasted by mistake. */
            return tg_json_errf(d, cJSON_GetObjectItem(o, "api_key"), err,
                                errlen,
                                "%s.api_key: secrets are never literal in "
                                "config; write \"${ENV_NAME}\" and set that "
                                "environment variable",
                                ctx);
        }
        if (dep->upstream_model == NULL) {
            dep->upstream_model = dep->model;
        }
        if ((rv = tg_config_labels(d, o, ctx, dep, err, errlen)) != TG_OK ||
            (rv = tg_config_pricing(d, o, ctx, dep, err, errlen)) != TG_OK) {
            return rv;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->deployments[j].id, dep->id) == 0) {
                return tg_json_errf(d, cJSON_GetObjectItem(o, "id"), err,
                                    errlen, "%s.id: \"%s\" is used twice", ctx,
                                    dep->id);
            }
        }
    }
    cfg->n_deployments = i;
    return TG_OK;
}

static bool
tg_config_has_model(const tg_config *cfg, const char *model)
{
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        if (strcmp(cfg->deployments[i].model, model) == 0) {
            return true;
        }
    }
    return false;
}

/* tg_config_models reads a list of catalog models (a group's fallbacks). */
static tg_err
tg_config_models(const tg_config *cfg, const tg_json_doc *d, const cJSON *g,
                 const char *ctx, const char *key, const char **out, size_t *n,
                 char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(g, key);

    *n = 0;
    if (a == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsArray(a)) {
        return tg_json_errf(d, a, err, errlen,
                            "%s.%s: expected a list of model names", ctx, key);
    }
    for (const cJSON *m = a->child; m != NULL; m = m->next) {
        if (!cJSON_IsString(m) || !tg_config_has_model(cfg, m->valuestring)) {
            return tg_json_errf(d, m, err, errlen,
                                "%s.%s: %s%s%s is not a model of any "
                                "deployment",
                                ctx, key, cJSON_IsString(m) ? "\"" : "",
                                cJSON_IsString(m) ? m->valuestring : "an item",
                                cJSON_IsString(m) ? "\"" : "");
        }
        if (*n == TG_CONFIG_MAX_FALLBACKS) {
            return tg_json_errf(d, m, err, errlen, "%s.%s: at most %d models",
                                ctx, key, TG_CONFIG_MAX_FALLBACKS);
        }
        out[(*n)++] = m->valuestring;
    }
    return TG_OK;
}

/* tg_config_groups reads "model_groups": [{"model", "strategy"?,
 * "fallbacks"?, "context_window_fallbacks"?, "content_policy_fallbacks"?}]. */
static tg_err
tg_config_groups(tg_config *cfg, tg_config_priv *p, const cJSON *arr, char *err,
                 size_t errlen)
{
    static const char *const keys[]       = {"model",
                                             "strategy",
                                             "fallbacks",
                                             "context_window_fallbacks",
                                             "content_policy_fallbacks",
                                             NULL};
    static const char *const strategies[] = {
        "ordered",        "priority",    "weighted", "least_inflight",
        "lowest_latency", "lowest_cost", NULL};
    const tg_json_doc *d = p->doc;
    size_t             i = 0;
    tg_err             rv;

    if (!cJSON_IsArray(arr)) {
        return tg_json_errf(d, arr, err, errlen,
                            "model_groups: expected a list of groups");
    }
    cfg->groups =
        calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->groups));
    if (cfg->groups == NULL) {
        return TG_ENOMEM;
    }
    for (const cJSON *o = arr->child; o != NULL; o = o->next, i++) {
        tg_model_group *g = &cfg->groups[i];
        char            ctx[48];
        bool            known = false;

        snprintf(ctx, sizeof(ctx), "model_groups[%zu]", i);
        if ((rv = tg_json_only_keys(d, o, ctx, keys, err, errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "model", true, &g->model, err,
                                     errlen)) != TG_OK ||
            (rv = tg_json_get_string(d, o, ctx, "strategy", false, &g->strategy,
                                     err, errlen)) != TG_OK) {
            return rv;
        }
        if (!tg_config_has_model(cfg, g->model)) {
            return tg_json_errf(d, cJSON_GetObjectItem(o, "model"), err, errlen,
                                "%s.model: \"%s\" is not a model of any "
                                "deployment",
                                ctx, g->model);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->groups[j].model, g->model) == 0) {
                return tg_json_errf(d, cJSON_GetObjectItem(o, "model"), err,
                                    errlen,
                                    "%s.model: \"%s\" has a group "
                                    "already",
                                    ctx, g->model);
            }
        }
        for (size_t j = 0; g->strategy != NULL && strategies[j] != NULL; j++) {
            known = known || strcmp(strategies[j], g->strategy) == 0;
        }
        if (g->strategy != NULL && !known) {
            return tg_json_errf(d, cJSON_GetObjectItem(o, "strategy"), err,
                                errlen,
                                "%s.strategy: \"%s\" is not a strategy; "
                                "expected ordered, weighted, least_inflight, "
                                "lowest_latency or lowest_cost",
                                ctx, g->strategy);
        }
        if ((rv = tg_config_models(cfg, d, o, ctx, "fallbacks", g->fallbacks,
                                   &g->n_fallbacks, err, errlen)) != TG_OK ||
            (rv = tg_config_models(cfg, d, o, ctx, "context_window_fallbacks",
                                   g->context_fallbacks,
                                   &g->n_context_fallbacks, err, errlen)) !=
                TG_OK ||
            (rv = tg_config_models(cfg, d, o, ctx, "content_policy_fallbacks",
                                   g->content_fallbacks,
                                   &g->n_content_fallbacks, err, errlen)) !=
                TG_OK) {
            return rv;
        }
        cfg->n_groups++;
    }
    return TG_OK;
}

const tg_model_group *
tg_config_group(const tg_config *cfg, const char *model)
{
    for (size_t i = 0; i < cfg->n_groups; i++) {
        if (strcmp(cfg->groups[i].model, model) == 0) {
            return &cfg->groups[i];
        }
    }
    return NULL;
}

/* tg_config_open reads path and checks its top-level keys against keys;
 * *cfgp then owns the document (tg_config_destroy frees both). */
static tg_err
tg_config_open(tg_config **cfgp, const char *path, const char *const keys[],
               char *err, size_t errlen)
{
    tg_config      *cfg = calloc(1, sizeof(*cfg));
    tg_config_priv *p   = calloc(1, sizeof(*p));
    char           *tmp = NULL;
    tg_err          rv;

    *cfgp = NULL;
    if (cfg == NULL || p == NULL) {
        free(cfg);
        free(p);
        return TG_ENOMEM;
    }
    cfg->priv = p;
    if ((rv = tg_json_doc_load(&p->doc, path, TG_CONFIG_MAX_BYTES, err,
                               errlen)) != TG_OK) {
        goto out;
    }
    cfg->path = tg_json_doc_name(p->doc);
    if ((tmp = strdup(path)) == NULL ||
        (p->dir = strdup(dirname(tmp))) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    rv = tg_json_only_keys(p->doc, tg_json_doc_root(p->doc), "config", keys,
                           err, errlen);
out:
    free(tmp);
    if (rv != TG_OK) {
        tg_config_destroy(cfg);
        return rv;
    }
    *cfgp = cfg;
    return TG_OK;
}

/* tg_config_catalog_sections reads "deployments" (required) and
 * "model_groups" of the document root. */
static tg_err
tg_config_catalog_sections(tg_config *cfg, const cJSON *root, char *err,
                           size_t errlen)
{
    tg_config_priv *p   = cfg->priv;
    const cJSON    *sec = cJSON_GetObjectItemCaseSensitive(root, "deployments");
    tg_err          rv;

    if (sec == NULL) {
        return tg_json_errf(p->doc, root, err, errlen,
                            "config: missing section \"deployments\" (the "
                            "catalog of upstream models)");
    }
    if ((rv = tg_config_deployments(cfg, p, sec, err, errlen)) != TG_OK) {
        return rv;
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "model_groups");
    return sec != NULL ? tg_config_groups(cfg, p, sec, err, errlen) : TG_OK;
}

/* tg_config_capture_fits checks that a report with both bodies at the
 * capture limit, which travels alone, fits a PDP message; the default
 * follows a small pdp.max_message_bytes down. */
static tg_err
tg_config_capture_fits(tg_config *cfg, const cJSON *dp, char *err,
                       size_t errlen)
{
    tg_config_priv *p = cfg->priv;
    const cJSON    *v = cJSON_GetObjectItemCaseSensitive(dp, "capture_max_bytes");
    int64_t         room = cfg->pdp.max_message_bytes - TG_CONFIG_REPORT_ROOM;

    if (2 * cfg->dataplane.capture_max_bytes <= room) {
        return TG_OK;
    }
    if (v == NULL) {
        cfg->dataplane.capture_max_bytes = room / 2;
        return TG_OK;
    }
    return tg_json_errf(p->doc, v, err, errlen,
                        "dataplane.capture_max_bytes %lld: a report with two "
                        "bodies that long does not fit pdp.max_message_bytes "
                        "%lld; lower it to %lld or raise pdp.max_message_bytes",
                        (long long)cfg->dataplane.capture_max_bytes,
                        (long long)cfg->pdp.max_message_bytes,
                        (long long)(room / 2));
}

/* tg_config_responses_pdp: dataplane.responses_pdp names a pdp_url. */
static tg_err
tg_config_responses_pdp(tg_config *cfg, const cJSON *dp, char *err,
                        size_t errlen)
{
    tg_config_priv *p = cfg->priv;
    const cJSON    *v = cJSON_GetObjectItemCaseSensitive(dp, "responses_pdp");

    if (v == NULL ||
        cfg->dataplane.responses_pdp <= (int64_t)cfg->dataplane.n_pdp_urls) {
        return TG_OK;
    }
    return tg_json_errf(p->doc, v, err, errlen,
                        "dataplane.responses_pdp %lld: pdp_url lists %zu; "
                        "name one of them (1 is the first)",
                        (long long)cfg->dataplane.responses_pdp,
                        cfg->dataplane.n_pdp_urls);
}

static tg_err
tg_config_log_format(tg_config *cfg, const cJSON *root, char *err,
                     size_t errlen)
{
    tg_config_priv *p   = cfg->priv;
    const cJSON    *sec = cJSON_GetObjectItemCaseSensitive(root, "log_format");

    if (sec == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsString(sec) || (strcmp(sec->valuestring, "json") != 0 &&
                                 strcmp(sec->valuestring, "text") != 0)) {
        return tg_json_errf(p->doc, sec, err, errlen,
                            "log_format: expected \"text\" (the default) or "
                            "\"json\" (one JSON object a line)");
    }
    cfg->log_json = strcmp(sec->valuestring, "json") == 0;
    return TG_OK;
}

/* tg_config_section: a required section is there. */
static tg_err
tg_config_section(tg_config *cfg, const cJSON *root, const cJSON *sec,
                  const char *name, char *err, size_t errlen)
{
    if (sec != NULL) {
        return TG_OK;
    }
    return tg_json_errf(((tg_config_priv *)cfg->priv)->doc, root, err, errlen,
                        "config: missing section \"%s\"", name);
}

tg_err
tg_config_load(tg_config **out, const char *path, char *err, size_t errlen)
{
    static const char *const keys[] = {"$schema",     "pdp",
                                       "dataplane",   "deployments",
                                       "model_groups", "log_format",
                                       "private_volumes", NULL};
    tg_config   *cfg = NULL;
    const cJSON *root;
    const cJSON *pdp;
    const cJSON *dp;
    tg_err       rv;

    if ((rv = tg_config_open(&cfg, path, keys, err, errlen)) != TG_OK) {
        return rv;
    }
    root = tg_json_doc_root(((tg_config_priv *)cfg->priv)->doc);
    pdp  = cJSON_GetObjectItemCaseSensitive(root, "pdp");
    dp   = cJSON_GetObjectItemCaseSensitive(root, "dataplane");
    /* Each section's own errors before the next one is missed. */
    if ((rv = tg_config_log_format(cfg, root, err, errlen)) == TG_OK &&
        (rv = tg_config_volumes(cfg, cfg->priv, root, err, errlen)) ==
            TG_OK &&
        (rv = tg_config_section(cfg, root, pdp, "pdp", err, errlen)) ==
            TG_OK &&
        (rv = tg_config_pdp(cfg, cfg->priv, pdp, err, errlen)) == TG_OK &&
        (rv = tg_config_section(cfg, root, dp, "dataplane", err, errlen)) ==
            TG_OK &&
        (rv = tg_config_dataplane(cfg, cfg->priv, dp, err, errlen)) == TG_OK &&
        (rv = tg_config_capture_fits(cfg, dp, err, errlen)) == TG_OK &&
        (rv = tg_config_responses_pdp(cfg, dp, err, errlen)) == TG_OK) {
        rv = tg_config_catalog_sections(cfg, root, err, errlen);
    }
    if (rv != TG_OK) {
        tg_config_destroy(cfg);
        return rv;
    }
    *out = cfg;
    return TG_OK;
}

tg_err
tg_config_catalog_load(tg_config **out, const char *path, char *err,
                       size_t errlen)
{
    static const char *const keys[] = {"$schema", "deployments",
                                       "model_groups", NULL};
    tg_config *cfg = NULL;
    tg_err     rv;

    if ((rv = tg_config_open(&cfg, path, keys, err, errlen)) != TG_OK) {
        return rv;
    }
    rv = tg_config_catalog_sections(
        cfg, tg_json_doc_root(((tg_config_priv *)cfg->priv)->doc), err, errlen);
    if (rv != TG_OK) {
        tg_config_destroy(cfg);
        return rv;
    }
    *out = cfg;
    return TG_OK;
}

void
tg_config_destroy(tg_config *cfg)
{
    tg_config_priv *p;

    if (cfg == NULL) {
        return;
    }
    p = cfg->priv;
    free(cfg->pdp.state_dir);
    free(cfg->pdp.pricing_file);
    free(cfg->pdp.bundle_dir);
    free(cfg->dataplane.spool_dir);
    for (size_t i = 0; i < cfg->n_private_volumes; i++) {
        free(cfg->private_volumes[i]);
    }
    tg_config_tls_free(&cfg->pdp.tls);
    tg_config_tls_free(&cfg->pdp.admin_tls);
    tg_config_tls_free(&cfg->pdp.upstream.tls);
    tg_config_tls_free(&cfg->pdp.ha.tls);
    tg_config_tls_free(&cfg->dataplane.pdp_tls);
    free(cfg->deployments);
    free(cfg->groups);
    if (p != NULL) {
        tg_json_doc_destroy(p->doc);
        free(p->dir);
        free(p);
    }
    free(cfg);
}

const tg_deployment *
tg_config_deployment(const tg_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        if (strcmp(cfg->deployments[i].id, id) == 0) {
            return &cfg->deployments[i];
        }
    }
    return NULL;
}

tg_err
tg_config_secret(const char *ref, char **out, char *missing, size_t missinglen)
{
    char        name[128];
    size_t      n = strlen(ref);
    const char *v;

    if (!tg_config_is_secret_ref(ref) || n - 3 >= sizeof(name)) {
        return TG_EINVAL;
    }
    memcpy(name, ref + 2, n - 3);
    name[n - 3] = '\0';
    v           = getenv(name);
    if (v == NULL || v[0] == '\0') {
        snprintf(missing, missinglen, "%s", name);
        return TG_ENOTFOUND;
    }
    *out = strdup(v);
    return *out == NULL ? TG_ENOMEM : TG_OK;
}
