/* tg_config.h - the one JSON config file both processes read: the "pdp"
 * and "dataplane" sections plus the shared "deployments" catalog.
 * Every key is checked; unknown keys are errors with file:line:col.
 * Secrets are never literal: "api_key": "${ENV_NAME}", resolved only by the
 * data plane (tg_config_secret). Immutable after load: thread-safe to read. */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

#define TG_CONFIG_MAX_LISTEN 8
#define TG_CONFIG_MAX_UIDS 16 /* pdp.allow_uids */
/* The least pdp.max_message_bytes: a full usage batch (tg_msg.h). */
#define TG_CONFIG_PDP_MSG_MIN 66560
/* What a usage report takes besides its captured bodies, at most, with its
 * content's JSON framing (escapes are counted in the bodies' bytes). */
#define TG_CONFIG_REPORT_ROOM (16 * 1024)
#define TG_ID_MAX 64       /* deployment ids, key ids, tenant ids */
#define TG_MODEL_MAX 128   /* model names */
#define TG_CONFIG_MAX_LABELS 16

/* tg_id_ok: s is an id as Tollgate names things (tenants, keys, rules,
 * bundles, tiers, label names, admin tokens): 1 to TG_ID_MAX - 1 of
 * A-Z a-z 0-9 . _ - */
bool tg_id_ok(const char *s);

#define TG_CONFIG_MAX_FALLBACKS 8
#define TG_CONFIG_MAX_PDP_URLS 4
/* pdp.responses.max_response_bytes: its default, and its most (a stored
 * response travels whole in one HA log pull, whose reply a standby takes
 * up to 8 MiB). */
#define TG_CONFIG_RESP_MAX_DEFAULT (4LL << 20)
#define TG_CONFIG_RESP_MAX_LIMIT (6LL << 20)
/* What a stored-response message carries besides the response: ids, key
 * hash, framing. */
#define TG_CONFIG_RESP_OVERHEAD 16384

/* TG_CONFIG_RESP_MESSAGE_MAX is the largest stored-response message of a
 * tg_pdp_config (pdp.responses.max_response_bytes and the rest of it). */
#define TG_CONFIG_RESP_MESSAGE_MAX(pc)                                         \
    ((pc)->resp_max_response_bytes + TG_CONFIG_RESP_OVERHEAD)
#define TG_CONFIG_MAX_VOLUMES 8 /* dataplane.pdp_url: first, then fallbacks */

/* The files of one side of a mutual-TLS link (paths resolved). The PDP
 * presents cert_file and accepts only clients whose certificate chains to
 * ca_file; a data plane presents its own and checks the PDP's against
 * ca_file and server_name. */
typedef struct tg_tls_files {
    char       *cert_file;
    char       *key_file;
    char       *ca_file;
    const char *server_name; /* data plane only; NULL: the URL's host */
} tg_tls_files;

/* tg_config_url_kind: how an nng URL in the config is reached. */
typedef enum tg_url_kind {
    TG_URL_IPC,      /* ipc:///absolute/path */
    TG_URL_TLS,      /* tls+tcp://host:port, mutual TLS */
    TG_URL_TCP_LOOP, /* tcp:// to a loopback address, when allowed */
} tg_url_kind;

/* tg_config_url_kind_of: the kind of an nng URL the config accepted. */
tg_url_kind tg_config_url_kind_of(const char *url);

/* How a deployment is spoken to. */
typedef enum tg_provider {
    TG_PROVIDER_OPENAI = 0, /* OpenAI, and every OpenAI-compatible API */
    TG_PROVIDER_AZURE,      /* Azure OpenAI: deployment URLs, api-key */
    TG_PROVIDER_ANTHROPIC,  /* Anthropic Messages */
    TG_PROVIDER_GEMINI,     /* Google Gemini generateContent */
    TG_PROVIDER_BEDROCK,    /* Amazon Bedrock Converse, SigV4-signed */
} tg_provider;

typedef struct tg_deployment {
    const char *id;             /* unique in the catalog */
    const char *model;          /* model name clients ask for */
    const char *provider;       /* as written: "openai", "groq", ... */
    tg_provider kind;
    const char *api_base;       /* e.g. "https://api.openai.com/v1" */
    const char *api_key;        /* "${ENV}" or NULL: no key */
    const char *upstream_model; /* name sent upstream; defaults to model */
    const char *label_keys[TG_CONFIG_MAX_LABELS]; /* e.g. "region" */
    const char *label_values[TG_CONFIG_MAX_LABELS]; /* e.g. "eu" */
    size_t      n_labels;
    /* "pricing": this deployment's own prices, micro-USD per 1M tokens,
     * overriding the price table for its model (e.g. a negotiated rate or
     * a self-hosted model). */
    bool    has_price;
    int64_t price_input;
    int64_t price_output;
    int64_t price_cached_input; /* defaults to price_input */
    int64_t weight;             /* for the weighted strategy (default 1) */
    const char *api_version;    /* azure: the api-version query parameter */
    const char *anthropic_version; /* anthropic: default "2023-06-01" */
    /* "stream_options": false for an OpenAI-compatible API that rejects
     * the field (Mistral: 422) and reports usage in its last chunk anyway.
     * Then the gateway never adds it, and drops a client's. */
    bool no_stream_options;
    /* bedrock (tg_config_bedrock.c): the AWS region, the "${ENV}" refs
     * of the SigV4 credentials (session token optional), and the default
     * api_base built from the region. */
    const char *region;
    const char *aws_access_key_id;
    const char *aws_secret_access_key;
    const char *aws_session_token;
    char        region_base[96];
} tg_deployment;

/* "model_groups": how the deployments of one model are chosen, and where
 * a request goes when they all fail. */
typedef struct tg_model_group {
    const char *model;
    const char *strategy; /* "ordered" (default), "weighted", ... */
    const char *fallbacks[TG_CONFIG_MAX_FALLBACKS]; /* other models */
    size_t      n_fallbacks;
    const char *context_fallbacks[TG_CONFIG_MAX_FALLBACKS]; /* larger window */
    size_t      n_context_fallbacks;
    const char *content_fallbacks[TG_CONFIG_MAX_FALLBACKS]; /* other policy */
    size_t      n_content_fallbacks;
} tg_model_group;

/* pdp.upstream: this PDP is a sidecar of a central PDP. It replicates
 * keys, tenants, quotas, lists, the bundle and pricing from it and admits
 * budgets and rate limits against leases the central PDP grants. */
#define TG_CONFIG_MAX_UPSTREAMS 4
typedef struct tg_upstream_config {
    const char  *url; /* tls+tcp://host:port (tcp:// loopback when allowed);
                       * NULL: no upstream. The first of urls. */
    /* "url" may be a list: a central PDP and its standby (pdp.ha). The
     * sidecar dials all of them; only the active one listens. */
    const char  *urls[TG_CONFIG_MAX_UPSTREAMS];
    size_t       n_urls;
    tg_tls_files tls; /* cert_file, key_file, ca_file, server_name */
    const char  *node_id; /* lease ids start with it (default: hostname) */
    /* When a lease is needed and the central PDP does not answer: deny
     * (default), or admit up to emergency_micro of budget spend per
     * process lifetime (and rate limits counted locally). */
    bool    on_error_allow;
    int64_t emergency_micro;
    int64_t lease_ttl_s;  /* the central PDP frees a lease after (60) */
    int64_t lease_use_s;  /* a lease admits this long, then goes back (10) */
    int64_t timeout_ms;   /* one call to the central PDP (500) */
    int64_t sync_interval_ms; /* how often changes are pulled (100) */
} tg_upstream_config;

/* pdp.ha: a central PDP with a standby. The active logs every write of
 * its store and, while a standby follows it, answers a request that wrote
 * only once the standby holds the write; the standby follows the active's
 * log and serves nothing until `tollgate-pdp promote`. */
typedef struct tg_ha_config {
    bool         on;      /* pdp.ha is present */
    bool         standby; /* role "standby" (else "active") */
    const char  *peer;    /* the other PDP's listener (nng URL): the
                           * standby follows it; the active asks it at
                           * start whether it was promoted over (NULL:
                           * none, an active only) */
    tg_tls_files tls;     /* the client side, to dial the peer */
    int64_t      ack_timeout_ms; /* a reply waits this long for the standby
                                    (500) */
    bool         lost_refuse;    /* on_standby_lost "refuse": after that,
                                    writes are refused until the standby is
                                    back; "alone" (default): acknowledged
                                    without it, the standby told it is
                                    behind */
    int64_t      timeout_ms;     /* one call to the peer (1000) */
} tg_ha_config;

typedef struct tg_pdp_config {
    const char *listen[TG_CONFIG_MAX_LISTEN]; /* nng URLs */
    size_t      n_listen;
    char       *state_dir;    /* resolved against the config's directory */
    const char *admin_listen; /* "host:port" or NULL: no admin listener */
    char       *pricing_file; /* resolved; NULL: every model costs 0 */
    char       *bundle_dir;   /* resolved policy bundle; NULL: none */
    bool        bundle_watch; /* reload when its files change (default) */
    int64_t     workers;      /* nng contexts served concurrently */
    int64_t     max_message_bytes;
    int64_t     map_size_mb; /* initial LMDB map size */
    /* pdp.decisions: a signed checkpoint every this many records or
     * seconds; records kept this many days / MB (0: no limit). */
    int64_t     decision_checkpoint_every;
    int64_t     decision_checkpoint_s;
    int64_t     decision_retention_days;
    int64_t     decision_retention_mb;
    /* pdp.responses: stored Responses API responses are kept this long
     * (retention_days, default 30; retention_seconds, when set, instead:
     * for tests) and up to this many bytes per tenant (default 100 MiB;
     * 0: no cap). */
    int64_t resp_retention_days;
    int64_t resp_retention_s;
    int64_t resp_max_bytes_per_tenant;
    /* The largest stored response (Response and input items): its put
     * and get messages may pass pdp.max_message_bytes up to this. */
    int64_t resp_max_response_bytes;
    /* A rate-limit (or budget) reservation whose usage report never comes
     * is released after this many seconds (default 900). */
    int64_t reservation_ttl_s;
    /* Where budget threshold alerts are POSTed when the rule names no
     * webhook of its own (http:// or https://); NULL: none. */
    const char *alert_webhook;
    /* Local users (uids) whose processes may talk to an ipc:// listener;
     * n_allow_uids 0 (the default): only the PDP's own uid. */
    /* socket_group (a group name or number; NULL: none): ipc sockets are
     * 0660 in a 0710 directory, both of that group, so a data plane running
     * as another user in the group can connect (its uid must still be in
     * allow_uids). */
    const char *socket_group;
    int64_t allow_uids[TG_CONFIG_MAX_UIDS];
    size_t  n_allow_uids;
    /* pdp.tls: required when a listener is tls+tcp:// (ca_file is the
     * config's client_ca_file). */
    tg_tls_files tls;
    /* pdp.admin_tls: the admin listener speaks HTTPS with this pair
     * (ca_file, optional, is what the command line trusts for it). */
    tg_tls_files admin_tls;
    /* pdp.allow_plain_tcp: tcp:// to a loopback address is accepted (no
     * authentication: for tests and benchmarks on one host). */
    bool allow_plain_tcp;
    /* pdp.probe_listen "host:port": /healthz, /readyz and /metrics only,
     * for probes and scrapers that must not reach the admin API. */
    const char *probe_listen;
    /* After SIGTERM: readiness fails, decisions go on until no data plane
     * is connected or this many seconds passed (default 10). */
    int64_t drain_timeout_s;
    tg_upstream_config upstream;
    tg_ha_config       ha;
} tg_pdp_config;

/* dataplane.otel: where traces go (OTLP over HTTP, protobuf). */
typedef struct tg_otel_config {
    const char *endpoint; /* "http://host:4318/v1/traces"; NULL: off */
    const char *service_name; /* service.name (default "tollgate") */
    int64_t     timeout_ms;   /* one POST (default 5000) */
    int64_t     flush_ms;     /* at least this often (default 1000) */
    int64_t     queue_max;    /* spans waiting; more are dropped (4096) */
    int64_t     batch_max;    /* spans in one POST (512) */
} tg_otel_config;

typedef struct tg_dp_config {
    const char *listen;  /* "host:port" */
    int64_t     workers; /* 0: number of cores */
    const char *pdp_url; /* pdp_urls[0] */
    /* dataplane.pdp_url as a list: the first is used while it is connected,
     * the next ones when it is not (local PDP first, then a central one). */
    const char *pdp_urls[TG_CONFIG_MAX_PDP_URLS];
    size_t      n_pdp_urls;
    tg_tls_files pdp_tls; /* for tls+tcp:// URLs */
    /* After SIGTERM: readiness fails at once; new requests are still taken
     * for drain_accept_s (a Service's endpoints take a while to follow);
     * then the listener closes and requests and streams in flight get up
     * to drain_timeout_s in all (default 25) before they are cut. */
    int64_t drain_timeout_s;
    int64_t drain_accept_s;
    /* The uid an ipc:// PDP must run as (and own its socket's directory,
     * or root does); -1 (the default): the data plane's own uid. */
    int64_t     pdp_uid;
    int64_t     pdp_timeout_ms;
    /* Which pdp_url (1-based) keeps stored Responses API responses. */
    int64_t     responses_pdp;
    bool        on_pdp_error_allow; /* default false: deny with 503 */
    /* Failing open serves only keys the PDP allowed this recently. */
    int64_t     fail_open_key_ttl_s;
    /* How long a decision the PDP marks reusable serves later requests
     * with the same inputs (dp_reuse); 0: every request asks the PDP. */
    int64_t     decision_reuse_ms;
    int64_t     max_body_bytes;
    int64_t     max_header_bytes;
    int64_t     client_timeout_s; /* idle client connection timeout */
    int64_t     max_connections;
    int64_t     max_connections_per_ip; /* from one client address */
    /* A whole request (headers and body) must arrive within this, however
     * steadily it trickles in; client_timeout_s only bounds silence. */
    int64_t     request_timeout_s;
    /* From when an answer starts to when it was taken whole, however
     * slowly the client reads (default total_timeout_ms + 300 s). */
    int64_t     response_timeout_s;
    int64_t     connect_timeout_ms;
    int64_t     first_byte_timeout_ms;
    int64_t     total_timeout_ms;
    int64_t     idle_timeout_ms; /* longest gap between stream chunks */
    char       *spool_dir; /* resolved */
    /* Resilience: attempts after the first, their backoff, and when a
     * deployment is taken out (cooldown_failures within
     * cooldown_window_ms -> out for cooldown_ms, then one probe). */
    int64_t retries;
    int64_t retry_backoff_ms;
    int64_t retry_backoff_max_ms;
    int64_t cooldown_failures;
    int64_t cooldown_window_ms;
    int64_t cooldown_ms;
    /* Usage records that wait in memory while the spool's disk refuses
     * writes; past this new requests get 503 usage_spool_full. */
    int64_t spool_memory_max_bytes;
    /* Decision records the PDP has not acknowledged past which requests
     * whose capture level is metadata or full meet on_log_full. */
    int64_t decision_backlog_max;
    /* Capture full: each of a request's bodies is kept up to this many
     * bytes (the rest is cut, and the record says so). */
    int64_t capture_max_bytes;
    tg_otel_config otel;
} tg_dp_config;

typedef struct tg_config {
    const char    *path;
    tg_pdp_config  pdp;
    tg_dp_config   dataplane;
    tg_deployment *deployments;
    size_t         n_deployments;
    tg_model_group *groups;
    size_t          n_groups;
    bool            log_json; /* "log_format": "json" */
    /* "private_volumes": directories only this pod's Tollgate containers
     * can write (Kubernetes emptyDirs are root-owned 0777): loading the
     * config hands them to tg_trust_private_volumes. Resolved. */
    char  *private_volumes[TG_CONFIG_MAX_VOLUMES];
    size_t n_private_volumes;
    void          *priv; /* the parsed document the strings borrow from */
} tg_config;

/* tg_config_catalog_load reads a file holding only "deployments" and
 * "model_groups" (a bundle's catalog.json: the catalog its tests run
 * against), checked like a config's; the rest of *out is zero. Owns: *out,
 * free with tg_config_destroy. */
tg_err tg_config_catalog_load(tg_config **out, const char *path, char *err,
                              size_t errlen);

/* tg_config_load parses and validates path. On error writes
 * "file:line:col: what is wrong" into err.
 * Owns: *out, free with tg_config_destroy. */
tg_err tg_config_load(tg_config **out, const char *path, char *err,
                      size_t errlen);

void tg_config_destroy(tg_config *cfg);

/* Borrowed from cfg; NULL if no deployment has that id. */
const tg_deployment *tg_config_deployment(const tg_config *cfg,
                                          const char *id);

/* Borrowed from cfg; NULL if the model has no "model_groups" entry. */
const tg_model_group *tg_config_group(const tg_config *cfg, const char *model);

/* tg_provider_name names a provider kind ("openai", "azure", ...). */
const char *tg_provider_name(tg_provider k);

/* tg_config_secret resolves a "${NAME}" reference from the environment.
 * Returns TG_ENOTFOUND when the variable is unset or empty (writes NAME
 * into missing). Owns: *out, free() it. */
tg_err tg_config_secret(const char *ref, char **out, char *missing,
                        size_t missinglen);

#endif
