/* pdp_cli.c - flag parsing is hand-rolled (no getopt) so the parser has no
 * global state and tests can run many command lines in one process. Every
 * error message names what was wrong and what to do; usage errors and bad
 * config exit 2, failed operations exit 1. */
#include "pdp_cli.h"

#include "pdp_api.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pdp_admin.h"
#include "pdp_cli_api.h"
#include "pdp_policy_cli.h"
#include "tg_pricing.h"
#include "pdp_rollout.h"
#include "pdp_server.h"
#include "pdp_state_cli.h"
#include "pdp_store.h"
#include "tg_config.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

#define PDP_CLI_POS_MAX 4
#define PDP_CLI_LABELS_MAX 32 /* --label flags on one command line */
#define PDP_KEY_ID_BYTES 8                /* key_ + 16 hex digits */
#define PDP_CLI_SERVE_ERR_MAX (64 * 1024) /* every bundle error at start */
#define PDP_CLI_RELOAD_TIMEOUT_S 120      /* compile + tests of a bundle */

typedef struct pdp_cli_opts {
    const char *config;
    const char *tenant;
    const char *name;
    const char *user;
    const char *models;
    const char *format;
    const char *tier;
    const char *expires_in;
    const char *expires;
    const char *grace;
    const char *labels[PDP_CLI_LABELS_MAX]; /* every --label, in order */
    int         nlabels;
    bool        allow_rollback;
    bool        help;
    const char *pos[PDP_CLI_POS_MAX];
    int         npos;
} pdp_cli_opts;

typedef struct pdp_cli {
    FILE       *out;
    FILE       *err;
    const char *cmd; /* "keys create", for messages */
} pdp_cli;

static const char pdp_cli_usage_top[] =
    "usage: tollgate-pdp COMMAND [options]\n"
    "\n"
    "The Tollgate policy decision point, and the tool to manage its state.\n"
    "\n"
    "commands:\n"
    "  serve          answer decisions for the data plane until "
    "SIGINT/SIGTERM\n"
    "  keys create    create a virtual API key (shown once)\n"
    "  keys list      list keys (never the key itself)\n"
    "  keys show      one key's details and status (never the key itself)\n"
    "  keys rotate    give a key a new secret; the old one works for a grace\n"
    "                 period\n"
    "  keys revoke    revoke a key by id; takes effect on the next request\n"
    "  tenants create create a tenant (name, tier, labels)\n"
    "  tenants show   one tenant and its spend\n"
    "  tenants update change a tenant\n"
    "  tenants set    create or change a tenant (tier, labels)\n"
    "  tenants list   list tenants\n"
    "  budgets set|list|show|delete\n"
    "                 USD budgets per tenant or key (tenant:ID, key:ID),\n"
    "                 with spent, reserved and remaining\n"
    "  ratelimits set|list|show|delete\n"
    "                 requests/tokens per minute and concurrency per\n"
    "                 tenant or key\n"
    "  audit list     administrative changes and who made them\n"
    "  usage list     settled usage records, one per request (estimated,\n"
    "                 abandoned, tokens, cost)\n"
    "  reservations list|release\n"
    "                 requests admitted whose usage is not in yet, and\n"
    "                 freeing one by hand\n"
    "  admin-tokens create|list|revoke\n"
    "                 tokens for the admin API (state directory only)\n"
    "  spend          requests, tokens and cost per tenant and per key, or\n"
    "                 --by tenant|key|user|model|day over a date range\n"
    "  state check    read every record of the state (or --spool DIR) and\n"
    "                 report what is damaged\n"
    "\n"
    "policy bundles:\n"
    "  check          compile a bundle and report every error\n"
    "  test           run a bundle's *.test.json\n"
    "  eval           evaluate one request against a bundle (--explain)\n"
    "  reload         make the running serve load pdp.bundle again\n"
    "  policy history bundle activations, newest first\n"
    "\n"
    "Every command takes --config FILE (or the TOLLGATE_CONFIG environment\n"
    "variable) and --help. All of them work while serve runs. The tenant,\n"
    "key, budget, rate-limit, spend and audit commands also work against a\n"
    "running PDP's admin API: --url http://HOST:PORT (TOLLGATE_ADMIN_URL)\n"
    "and --token-file FILE or TOLLGATE_ADMIN_TOKEN (not --token TOKEN:\n"
    "other local users can read command-line arguments in /proc).\n";

static const char pdp_cli_usage_serve[] =
    "usage: tollgate-pdp serve --config FILE\n"
    "\n"
    "Listens on pdp.listen (nng) and pdp.admin_listen (HTTP /healthz,\n"
    "/readyz, /metrics, POST /admin/reload) and answers until SIGINT or\n"
    "SIGTERM, then stops cleanly.\n"
    "\n"
    "With pdp.bundle set, the bundle must compile and pass its own tests or\n"
    "serve exits 2 listing every error. It is reloaded on SIGHUP, on\n"
    "`tollgate-pdp reload` and when a file in its directory changes; a\n"
    "reload that fails to compile, fails a test or does not raise the\n"
    "revision is refused and the running bundle stays.\n";

static const char pdp_cli_usage_reload[] =
    "usage: tollgate-pdp reload --config FILE [--allow-rollback]\n"
    "                           [--format text|json]\n"
    "\n"
    "Asks the running tollgate-pdp (through pdp.admin_listen) to load\n"
    "pdp.bundle again: compile it, check that its revision is above the one\n"
    "in effect, run its tests, then swap it in. Exits 0 when the bundle is\n"
    "in effect (or already was), 1 when the reload was refused (the reason\n"
    "and every error are printed; the running bundle stays).\n"
    "\n"
    "  --allow-rollback  accept a revision lower than (or equal to, with\n"
    "                    other content) the one in effect\n";

static const char pdp_cli_usage_history[] =
    "usage: tollgate-pdp policy history --config FILE [--format text|json]\n"
    "\n"
    "Every activation of a policy bundle (at start, on SIGHUP, by\n"
    "`tollgate-pdp reload`, on a change in the directory), newest first.\n";

static const char pdp_cli_usage_spend[] =
    "usage: tollgate-pdp spend --config FILE [--format text|json]\n"
    "       tollgate-pdp spend --config FILE --by tenant|key|user|model|day\n"
    "                          [--from DATE] [--to DATE] [--tenant TENANT]\n"
    "                          [--format table|json|csv]\n"
    "\n"
    "Without --by: settled requests, tokens and cost (USD) per tenant and\n"
    "per key, all time.\n"
    "\n"
    "With --by: one row per tenant, key, user (within its tenant), model or\n"
    "UTC day, from the usage records of requests that started in the\n"
    "range: requests, prompt and completion tokens, cost (exact, from\n"
    "micro-USD) and how many requests had estimated tokens (the provider\n"
    "reported none). Rows by cost, highest first (days: oldest first), then\n"
    "a TOTAL row. A user-less request shows as \"-\" (null in json).\n"
    "\n"
    "  --from     first day (YYYY-MM-DD, UTC, from 00:00:00) or instant\n"
    "             (RFC 3339, e.g. 2024-05-01T09:30:00+02:00), included\n"
    "  --to       last day (included whole) or instant (included)\n"
    "  --tenant   only this tenant's requests\n"
    "  --format   table (default; text is the same), json or csv (RFC 4180)\n";

/* ---- flags ------------------------------------------------------------- */

static int pdp_cli_usage_error(pdp_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
pdp_cli_usage_error(pdp_cli *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(c->err, "tollgate-pdp %s: ", c->cmd);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fprintf(c->err, "\nRun 'tollgate-pdp %s --help' for usage.\n", c->cmd);
    return PDP_EXIT_USAGE;
}

/* pdp_cli_parse accepts --flag VALUE, --flag=VALUE, --help/-h and
 * positionals; allowed lists the value flags this command takes. */
static int
pdp_cli_parse(pdp_cli *c, int argc, char **argv, const char *const allowed[],
              int max_pos, pdp_cli_opts *o)
{
    bool only_pos = false;

    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        const char  *a = argv[i];
        const char  *val;
        const char **slot = NULL;
        size_t       nlen;
        bool         known = false;

        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (o->npos >= max_pos) {
                return pdp_cli_usage_error(c, "unexpected argument \"%s\"", a);
            }
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            return pdp_cli_usage_error(c, "unknown option %s", a);
        }
        val  = strchr(a, '=');
        nlen = val != NULL ? (size_t)(val - a - 2) : strlen(a + 2);
        for (size_t j = 0; allowed[j] != NULL && !known; j++) {
            known = strlen(allowed[j]) == nlen &&
                    strncmp(allowed[j], a + 2, nlen) == 0;
        }
        if (!known) {
            return pdp_cli_usage_error(c, "unknown option %s", a);
        }
#define PDP_CLI_IS(flag)                                                       \
    (nlen == sizeof(flag) - 1 && strncmp(a + 2, flag, nlen) == 0)
        if (PDP_CLI_IS("allow-rollback")) {
            if (val != NULL) {
                return pdp_cli_usage_error(c, "%.*s takes no value",
                                           (int)nlen + 2, a);
            }
            o->allow_rollback = true;
            continue;
        }
        if (PDP_CLI_IS("config")) {
            slot = &o->config;
        } else if (PDP_CLI_IS("tenant")) {
            slot = &o->tenant;
        } else if (PDP_CLI_IS("name")) {
            slot = &o->name;
        } else if (PDP_CLI_IS("user")) {
            slot = &o->user;
        } else if (PDP_CLI_IS("models")) {
            slot = &o->models;
        } else if (PDP_CLI_IS("tier")) {
            slot = &o->tier;
        } else if (PDP_CLI_IS("expires-in")) {
            slot = &o->expires_in;
        } else if (PDP_CLI_IS("expires")) {
            slot = &o->expires;
        } else if (PDP_CLI_IS("grace")) {
            slot = &o->grace;
        } else if (PDP_CLI_IS("label")) {
            if (o->nlabels == PDP_CLI_LABELS_MAX) {
                return pdp_cli_usage_error(c,
                                           "too many --label options "
                                           "(at most %d)",
                                           PDP_CLI_LABELS_MAX);
            }
            slot = &o->labels[o->nlabels++];
        } else {
            slot = &o->format;
        }
#undef PDP_CLI_IS
        if (val != NULL) {
            val++;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return pdp_cli_usage_error(c, "option %s needs a value", a);
        }
        *slot = val;
    }
    if (o->format != NULL && strcmp(o->format, "text") != 0 &&
        strcmp(o->format, "json") != 0) {
        return pdp_cli_usage_error(c,
                                   "--format must be text or json, not "
                                   "\"%s\"",
                                   o->format);
    }
    return PDP_EXIT_OK;
}

static bool
pdp_cli_json(const pdp_cli_opts *o)
{
    return o->format != NULL && strcmp(o->format, "json") == 0;
}

/* pdp_cli_config loads the config named by --config or TOLLGATE_CONFIG and
 * prints tg_config_load's message verbatim on failure. */
static int
pdp_cli_config(pdp_cli *c, const pdp_cli_opts *o, tg_config **cfg)
{
    const char *path =
        o->config != NULL ? o->config : getenv("TOLLGATE_CONFIG");
    char msg[1024];

    if (path == NULL || path[0] == '\0') {
        return pdp_cli_usage_error(c,
                                   "no config file given: pass --config FILE "
                                   "or set TOLLGATE_CONFIG");
    }
    if (tg_config_load(cfg, path, msg, sizeof(msg)) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        return PDP_EXIT_USAGE;
    }
    return PDP_EXIT_OK;
}

static int
pdp_cli_store(pdp_cli *c, const tg_config *cfg, pdp_store **st)
{
    char msg[1024];

    if (pdp_store_open(st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       sizeof(msg)) != TG_OK) {
        fprintf(c->err, "tollgate-pdp %s: %s\n", c->cmd, msg);
        return PDP_EXIT_FAIL;
    }
    return PDP_EXIT_OK;
}

static void
pdp_cli_print_json(pdp_cli *c, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);

    if (s != NULL) {
        fprintf(c->out, "%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(doc);
}

/* ---- serve ------------------------------------------------------------- */

/* What the admin listener's hooks reach; the server pointer is published
 * once it is listening and withdrawn before it stops. */
typedef struct pdp_cli_serving {
    _Atomic(pdp_server *) srv;
    pdp_rollout          *ro;
    pdp_store            *st;
    const tg_config      *cfg;
} pdp_cli_serving;

/* pdp_cli_auth_fn checks an admin API token against the stored hashes. */
static bool
pdp_cli_auth_fn(void *arg, const char *token, char *actor, size_t cap)
{
    pdp_cli_serving *sv = arg;
    pdp_admin_token  t;
    uint8_t          hash[TG_SHA256_LEN];

    tg_sha256(token, strlen(token), hash);
    if (pdp_store_token_check(sv->st, hash, &t) != TG_OK) {
        return false;
    }
    snprintf(actor, cap, "token:%s", t.name);
    return true;
}

/* pdp_cli_api_fn answers the admin API with the live limits (reserved
 * spend) and the bundle in effect (budget windows' time zone). */
static unsigned
pdp_cli_api_fn(void *arg, const char *actor, const char *method,
               const char *url, const char *query, const char *body,
               size_t len, tg_buf *out, const char **ctype)
{
    pdp_cli_serving *sv = arg;
    pdp_bundle      *b  = pdp_rollout_acquire(sv->ro);
    pdp_api_ctx      x;
    pdp_api_reply    r;

    memset(&x, 0, sizeof(x));
    x.st     = sv->st;
    x.cfg    = sv->cfg;
    x.lim    = pdp_server_limits(atomic_load(&sv->srv));
    x.bundle = b;
    x.actor  = actor;
    r        = pdp_api_handle(&x, method, url, query, body, len, out);
    *ctype   = r.ctype;
    pdp_bundle_unref(b);
    return r.status;
}

static bool
pdp_cli_ready_fn(void *arg)
{
    pdp_cli_serving *sv = arg;

    return pdp_server_ready(atomic_load(&sv->srv));
}

static void
pdp_cli_metrics_fn(void *arg, tg_buf *out)
{
    pdp_cli_serving *sv = arg;

    pdp_rollout_metrics(sv->ro, out);
    pdp_server_metrics(atomic_load(&sv->srv), out);
}

static const char *
pdp_cli_outcome_name(pdp_reload_outcome oc)
{
    switch (oc) {
    case PDP_RELOAD_OK:
        return "ok";
    case PDP_RELOAD_UNCHANGED:
        return "unchanged";
    case PDP_RELOAD_REFUSED:
        return "refused";
    }
    return "refused";
}

/* pdp_cli_reload_fn answers POST /admin/reload. The JSON is what
 * `tollgate-pdp reload` reads. */
static unsigned
pdp_cli_reload_fn(void *arg, bool allow_rollback, tg_buf *out)
{
    pdp_cli_serving   *sv  = arg;
    pdp_reload_result *res = malloc(sizeof(*res));
    cJSON             *j;
    char              *txt;
    unsigned           status;

    if (res == NULL) {
        tg_buf_addf(out, "{\"result\":\"refused\",\"reason\":\"out of "
                         "memory\"}\n");
        return 503;
    }
    pdp_rollout_reload(sv->ro, PDP_ACTIVATION_COMMAND, allow_rollback, res);
    status = res->outcome == PDP_RELOAD_REFUSED ? 409 : 200;
    j      = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "result", pdp_cli_outcome_name(res->outcome));
    cJSON_AddStringToObject(j, "bundle", res->name);
    cJSON_AddNumberToObject(j, "revision", (double)res->revision);
    cJSON_AddStringToObject(j, "hash", res->hash);
    cJSON_AddNumberToObject(j, "previous_revision",
                            (double)res->previous_revision);
    cJSON_AddNumberToObject(j, "candidate_revision",
                            (double)res->candidate_revision);
    cJSON_AddStringToObject(j, "candidate_hash", res->candidate_hash);
    cJSON_AddBoolToObject(j, "rollback", res->rollback);
    cJSON_AddNumberToObject(j, "duration_ms",
                            (double)res->duration_us / 1000.0);
    cJSON_AddStringToObject(j, "reason", res->why);
    cJSON_AddStringToObject(j, "details", res->details);
    txt = cJSON_PrintUnformatted(j);
    if (txt == NULL || tg_buf_printf(out, "%s\n", txt) != TG_OK) {
        tg_buf_reset(out);
        tg_buf_addf(out, "{\"result\":\"%s\"}\n",
                    pdp_cli_outcome_name(res->outcome));
    }
    cJSON_free(txt);
    cJSON_Delete(j);
    free(res);
    return status;
}

static int
pdp_cli_serve(pdp_cli *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", NULL};
    pdp_cli_opts             o;
    tg_config               *cfg = NULL;
    tg_pricing             *pr  = NULL;
    pdp_store               *st  = NULL;
    pdp_rollout             *ro  = NULL;
    pdp_server              *srv = NULL;
    pdp_admin               *adm = NULL;
    pdp_cli_serving          sv;
    pdp_admin_hooks          hooks;
    sigset_t                 set;
    char                    *msg = NULL;
    int                      sig = 0;
    int                      ec;

    atomic_init(&sv.srv, NULL);
    sv.ro  = NULL;
    sv.st  = NULL;
    sv.cfg = NULL;
    if ((ec = pdp_cli_parse(c, argc, argv, flags, 0, &o)) != PDP_EXIT_OK) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_cli_usage_serve, c->out);
        return PDP_EXIT_OK;
    }
    if ((msg = malloc(PDP_CLI_SERVE_ERR_MAX)) == NULL) {
        fprintf(c->err, "tollgate-pdp serve: out of memory\n");
        return PDP_EXIT_FAIL;
    }
    /* Blocked before any thread exists (the store's writer, nng's pool,
     * MHD's, the bundle watcher), so every thread inherits the mask and
     * only sigwait below sees the signal: no work in a signal handler. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    tg_log_init("tollgate-pdp", TG_LOG_INFO);
    if ((ec = pdp_cli_config(c, &o, &cfg)) != PDP_EXIT_OK) {
        goto out;
    }
    if (tg_pricing_load(&pr, cfg->pdp.pricing_file, msg,
                         PDP_CLI_SERVE_ERR_MAX) != TG_OK) {
        fprintf(c->err, "%s\n", msg);
        ec = PDP_EXIT_USAGE;
        goto out;
    }
    if (cfg->pdp.pricing_file == NULL) {
        tg_warn("pricing: pdp.pricing_file is not set; all usage costs 0");
    } else {
        tg_info("pricing: %zu models from %s", tg_pricing_count(pr),
                cfg->pdp.pricing_file);
    }
    if ((ec = pdp_cli_store(c, cfg, &st)) != PDP_EXIT_OK) {
        goto out;
    }
    tg_info("store: %s (map %zu MB)", cfg->pdp.state_dir,
            pdp_store_map_size(st) >> 20);
    if (pdp_rollout_create(&ro, cfg, st, msg, PDP_CLI_SERVE_ERR_MAX) != TG_OK) {
        /* Never serve a bundle that is not entirely right. */
        fprintf(c->err, "tollgate-pdp serve: pdp.bundle: %s%s", msg,
                msg[0] != '\0' && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
        ec = PDP_EXIT_USAGE;
        goto out;
    }
    sv.ro = ro;
    if (cfg->pdp.bundle_dir == NULL) {
        tg_warn("policy: pdp.bundle is not set: no policy applies, every key "
                "may use every catalog model it is allowed (revision 0)");
    }
    ec = PDP_EXIT_FAIL;
    memset(&hooks, 0, sizeof(hooks));
    hooks.ready   = pdp_cli_ready_fn;
    hooks.metrics = pdp_cli_metrics_fn;
    hooks.reload  = pdp_cli_reload_fn;
    hooks.auth    = pdp_cli_auth_fn;
    hooks.api     = pdp_cli_api_fn;
    hooks.arg     = &sv;
    sv.st         = st;
    sv.cfg        = cfg;
    if (cfg->pdp.admin_listen != NULL &&
        pdp_cli_token_local(st, cfg->pdp.state_dir, msg,
                            PDP_CLI_SERVE_ERR_MAX) != TG_OK) {
        fprintf(c->err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    if (cfg->pdp.admin_listen != NULL &&
        pdp_admin_start(&adm, cfg->pdp.admin_listen, &hooks, msg,
                        PDP_CLI_SERVE_ERR_MAX) != TG_OK) {
        fprintf(c->err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    if (pdp_server_start(&srv, cfg, st, pr, ro, msg, PDP_CLI_SERVE_ERR_MAX) !=
        TG_OK) {
        fprintf(c->err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    atomic_store(&sv.srv, srv);
    if (cfg->pdp.bundle_watch &&
        pdp_rollout_watch_start(ro, msg, PDP_CLI_SERVE_ERR_MAX) != TG_OK) {
        tg_warn("%s; bundle changes are picked up on SIGHUP and tollgate-pdp "
                "reload only",
                msg);
    }
    tg_info("ready: tollgate-pdp %s serving %zu deployment(s), policy "
            "revision %llu",
            PDP_VERSION, cfg->n_deployments,
            (unsigned long long)pdp_rollout_revision(ro));
    for (;;) {
        pdp_reload_result *res;

        while (sigwait(&set, &sig) != 0) {
            /* only EINVAL is possible, and the set is valid */
        }
        if (sig != SIGHUP) {
            break;
        }
        tg_info("received SIGHUP; reloading the policy bundle");
        if ((res = malloc(sizeof(*res))) != NULL) {
            pdp_rollout_reload(ro, PDP_ACTIVATION_SIGHUP, false, res);
            free(res);
        }
    }
    tg_info("received %s; stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ec = PDP_EXIT_OK;
out:
    atomic_store(&sv.srv, NULL);
    pdp_admin_stop(adm);     /* no reload command from here on */
    pdp_server_stop(srv);    /* no decision holds a bundle from here on */
    pdp_rollout_destroy(ro); /* joins the watcher, which may write history */
    pdp_store_close(st);
    tg_pricing_destroy(pr);
    tg_config_destroy(cfg);
    free(msg);
    if (ec == PDP_EXIT_OK) {
        tg_info("stopped");
    }
    return ec;
}

/* ---- reload -------------------------------------------------------------- */

/* pdp_cli_admin_post sends POST path to the admin listener of the PDP that
 * serves cfg, with the admin token serve left in the state directory (or
 * TOLLGATE_ADMIN_TOKEN), and reads the answer into body. Returns the HTTP
 * status or -1 with a message printed. */
static int
pdp_cli_admin_post(pdp_cli *c, const tg_config *cfg, const char *path,
                   tg_buf *body)
{
    char        base[300];
    char        url[600];
    char        why[512];
    char        token[256];
    const char *env = getenv("TOLLGATE_ADMIN_TOKEN");
    int         status;

    if (!pdp_cli_admin_base(cfg->pdp.admin_listen, base, sizeof(base), why,
                            sizeof(why))) {
        fprintf(c->err, "tollgate-pdp %s: %s\n", c->cmd, why);
        return -1;
    }
    if (env != NULL && env[0] != '\0') {
        snprintf(token, sizeof(token), "%s", env);
    } else if (!pdp_cli_token_read(cfg->pdp.state_dir, token, sizeof(token))) {
        fprintf(c->err,
                "tollgate-pdp %s: no admin token: %s/%s is missing (serve "
                "writes it at start; is `tollgate-pdp serve --config %s` "
                "running?) and TOLLGATE_ADMIN_TOKEN is not set\n",
                c->cmd, cfg->pdp.state_dir, PDP_CLI_TOKEN_FILE, cfg->path);
        return -1;
    }
    snprintf(url, sizeof(url), "%s%s", base, path);
    status = pdp_cli_http("POST", url, token, NULL, body, why, sizeof(why));
    explicit_bzero(token, sizeof(token));
    if (status < 0) {
        fprintf(c->err,
                "tollgate-pdp %s: cannot reach the running tollgate-pdp at "
                "%s (%s). Is `tollgate-pdp serve --config %s` running?\n",
                c->cmd, base, why, cfg->path);
    } else if (status == 401) {
        fprintf(c->err,
                "tollgate-pdp %s: the running tollgate-pdp refused the admin "
                "token (restarted with another state directory?)\n",
                c->cmd);
        status = -1;
    }
    return status;
}

static const char *
pdp_cli_jstr(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

    return cJSON_IsString(v) ? v->valuestring : "";
}

static unsigned long long
pdp_cli_jnum(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

    return cJSON_IsNumber(v) && v->valuedouble >= 0
               ? (unsigned long long)v->valuedouble
               : 0;
}

static int
pdp_cli_reload(pdp_cli *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", "allow-rollback", "format",
                                        NULL};
    pdp_cli_opts             o;
    tg_config               *cfg = NULL;
    cJSON                   *j   = NULL;
    tg_buf                   body;
    const char              *result;
    const char              *details;
    int                      status;
    int                      ec;

    tg_buf_init(&body, 4u << 20);
    if ((ec = pdp_cli_parse(c, argc, argv, flags, 0, &o)) != PDP_EXIT_OK) {
        goto out;
    }
    if (o.help) {
        fputs(pdp_cli_usage_reload, c->out);
        goto out;
    }
    if ((ec = pdp_cli_config(c, &o, &cfg)) != PDP_EXIT_OK) {
        goto out;
    }
    if (cfg->pdp.admin_listen == NULL) {
        fprintf(c->err,
                "tollgate-pdp %s: pdp.admin_listen is not set in %s. reload "
                "talks to the running tollgate-pdp through its admin "
                "listener: set pdp.admin_listen (e.g. \"127.0.0.1:7071\") "
                "and restart it, or send it SIGHUP (kill -HUP <pid>)\n",
                c->cmd, cfg->path);
        ec = PDP_EXIT_USAGE;
        goto out;
    }
    ec     = PDP_EXIT_FAIL;
    status = pdp_cli_admin_post(
        c, cfg,
        o.allow_rollback ? "/admin/reload?allow_rollback=1" : "/admin/reload",
        &body);
    if (status < 0) {
        goto out;
    }
    j      = body.data != NULL ? cJSON_Parse(body.data) : NULL;
    result = pdp_cli_jstr(j, "result");
    if (j == NULL || result[0] == '\0') {
        fprintf(c->err,
                "tollgate-pdp %s: unexpected answer from http://%s "
                "(HTTP %d): %.300s\n",
                c->cmd, cfg->pdp.admin_listen, status,
                body.data != NULL ? body.data : "");
        goto out;
    }
    ec = strcmp(result, "refused") == 0 ? PDP_EXIT_FAIL : PDP_EXIT_OK;
    if (pdp_cli_json(&o)) {
        fputs(body.data, c->out);
        goto out;
    }
    if (strcmp(result, "ok") == 0) {
        fprintf(c->out,
                "reloaded: bundle %s revision %llu (hash %.12s), was "
                "revision %llu%s\n",
                pdp_cli_jstr(j, "bundle"), pdp_cli_jnum(j, "revision"),
                pdp_cli_jstr(j, "hash"), pdp_cli_jnum(j, "previous_revision"),
                cJSON_IsTrue(cJSON_GetObjectItem(j, "rollback")) ? " (rollback)"
                                                                 : "");
    } else if (strcmp(result, "unchanged") == 0) {
        fprintf(c->out,
                "already active: bundle %s revision %llu (hash %.12s); "
                "nothing changed\n",
                pdp_cli_jstr(j, "bundle"), pdp_cli_jnum(j, "revision"),
                pdp_cli_jstr(j, "hash"));
    } else {
        details = pdp_cli_jstr(j, "details");
        fprintf(c->err, "reload refused: %s\n", pdp_cli_jstr(j, "reason"));
        if (details[0] != '\0') {
            fprintf(c->err, "%s%s", details,
                    details[strlen(details) - 1] == '\n' ? "" : "\n");
        }
        if (pdp_cli_jnum(j, "revision") > 0) {
            fprintf(c->err,
                    "bundle %s revision %llu (hash %.12s) stays in effect\n",
                    pdp_cli_jstr(j, "bundle"), pdp_cli_jnum(j, "revision"),
                    pdp_cli_jstr(j, "hash"));
        }
    }
out:
    cJSON_Delete(j);
    tg_buf_fini(&body);
    tg_config_destroy(cfg);
    return ec;
}

/* pdp_cli_reserve makes room for one more element in the growable array
 * *vecp (any element type; vecp is the address of its pointer) holding n
 * of cap elements of elem bytes. false: out of memory, nothing changed. */
static bool
pdp_cli_reserve(void *vecp, size_t n, size_t *cap, size_t elem)
{
    void *v;
    void *nv;

    if (n < *cap) {
        return true;
    }
    memcpy(&v, vecp, sizeof(v));
    if ((nv = realloc(v, (*cap ? *cap * 2 : 16) * elem)) == NULL) {
        return false;
    }
    memcpy(vecp, &nv, sizeof(nv));
    *cap = *cap ? *cap * 2 : 16;
    return true;
}

/* ---- policy history ------------------------------------------------------ */

typedef struct pdp_cli_history {
    pdp_activation *v;
    size_t          n;
    size_t          cap;
    bool            oom;
} pdp_cli_history;

static void
pdp_cli_collect_activation(void *arg, const pdp_activation *a)
{
    pdp_cli_history *h = arg;

    if (h->oom ||
        (h->oom = !pdp_cli_reserve(&h->v, h->n, &h->cap, sizeof(*h->v)))) {
        return;
    }
    h->v[h->n++] = *a;
}

static int
pdp_cli_policy_history(pdp_cli *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", "format", NULL};
    pdp_cli_opts             o;
    tg_config               *cfg = NULL;
    pdp_store               *st  = NULL;
    pdp_cli_history          h   = {NULL, 0, 0, false};
    char                     when[32];
    tg_err                   rv;
    int                      ec;

    if ((ec = pdp_cli_parse(c, argc, argv, flags, 0, &o)) != PDP_EXIT_OK) {
        goto out;
    }
    if (o.help) {
        fputs(pdp_cli_usage_history, c->out);
        goto out;
    }
    if ((ec = pdp_cli_config(c, &o, &cfg)) != PDP_EXIT_OK ||
        (ec = pdp_cli_store(c, cfg, &st)) != PDP_EXIT_OK) {
        goto out;
    }
    rv = pdp_store_history_list(st, pdp_cli_collect_activation, &h);
    if (rv != TG_OK || h.oom) {
        fprintf(c->err,
                "tollgate-pdp %s: cannot read the policy history: "
                "%s\n",
                c->cmd, tg_strerror(h.oom ? TG_ENOMEM : rv));
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    if (pdp_cli_json(&o)) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "history");
        for (size_t i = 0; i < h.n; i++) {
            const pdp_activation *a = &h.v[i];
            cJSON                *j = cJSON_CreateObject();
            pdp_api_time(a->activated_ms, when, sizeof(when));
            cJSON_AddNumberToObject(j, "seq", (double)a->seq);
            cJSON_AddStringToObject(j, "activated", when);
            cJSON_AddNumberToObject(j, "activated_ms", (double)a->activated_ms);
            cJSON_AddStringToObject(j, "bundle", a->name);
            cJSON_AddNumberToObject(j, "revision", (double)a->revision);
            cJSON_AddNumberToObject(j, "previous_revision",
                                    (double)a->previous_revision);
            cJSON_AddStringToObject(j, "hash", a->hash);
            cJSON_AddStringToObject(j, "how", pdp_activation_how_name(a->how));
            cJSON_AddBoolToObject(j, "rollback", a->rollback);
            cJSON_AddItemToArray(arr, j);
        }
        pdp_cli_print_json(c, doc);
        goto out;
    }
    if (h.n == 0) {
        fprintf(c->out, "No policy bundle has been activated yet (set "
                        "pdp.bundle and start tollgate-pdp serve).\n");
        goto out;
    }
    {
        int wb = 6;
        for (size_t i = 0; i < h.n; i++) {
            int l = (int)strlen(h.v[i].name);
            wb    = l > wb ? l : wb;
        }
        fprintf(c->out, "%-20s  %8s  %-*s  %-7s  %-12s  %s\n", "ACTIVATED",
                "REVISION", wb, "BUNDLE", "HOW", "HASH", "NOTE");
        for (size_t i = 0; i < h.n; i++) {
            const pdp_activation *a        = &h.v[i];
            char                  note[64] = "";
            pdp_api_time(a->activated_ms, when, sizeof(when));
            if (a->rollback) {
                snprintf(note, sizeof(note), "rollback from %llu",
                         (unsigned long long)a->previous_revision);
            }
            fprintf(c->out, "%-20s  %8llu  %-*s  %-7s  %-12.12s  %s\n", when,
                    (unsigned long long)a->revision, wb, a->name,
                    pdp_activation_how_name(a->how), a->hash, note);
        }
    }
out:
    free(h.v);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}

/* ---- spend --------------------------------------------------------------- */

typedef struct pdp_cli_spend_row {
    char       id[TG_ID_MAX];
    char       tenant[TG_ID_MAX]; /* for key rows */
    pdp_totals t;
} pdp_cli_spend_row;

typedef struct pdp_cli_spend {
    pdp_cli_spend_row *v[2]; /* [0] tenants, [1] keys */
    size_t             n[2];
    size_t             cap[2];
    bool               oom;
} pdp_cli_spend;

static void
pdp_cli_collect_totals(void *arg, pdp_totals_kind kind, const char *id,
                       const pdp_totals *t)
{
    pdp_cli_spend     *s = arg;
    int                w = kind == PDP_TOTALS_KEY ? 1 : 0;
    pdp_cli_spend_row *r;

    if (s->oom) {
        return;
    }
    if (s->n[w] == s->cap[w]) {
        size_t             ncap = s->cap[w] ? s->cap[w] * 2 : 16;
        pdp_cli_spend_row *nv   = realloc(s->v[w], ncap * sizeof(*nv));
        if (nv == NULL) {
            s->oom = true;
            return;
        }
        s->v[w]   = nv;
        s->cap[w] = ncap;
    }
    r = &s->v[w][s->n[w]++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->t = *t;
}

/* pdp_cli_totals_json appends the totals to j (after its id fields, so
 * they read first) and returns j. */
static cJSON *
pdp_cli_totals_json(cJSON *j, const pdp_totals *t)
{
    char usd[32];

    pdp_api_usd(t->cost_micro_usd, usd, sizeof(usd));
    cJSON_AddNumberToObject(j, "requests", (double)t->requests);
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)t->prompt_tokens);
    cJSON_AddNumberToObject(j, "completion_tokens",
                            (double)t->completion_tokens);
    cJSON_AddNumberToObject(j, "cost_micro_usd", (double)t->cost_micro_usd);
    cJSON_AddStringToObject(j, "cost_usd", usd);
    return j;
}

static void
pdp_cli_totals_line(pdp_cli *c, int w1, const char *a, int w2, const char *b,
                    const pdp_totals *t)
{
    char usd[32];

    pdp_api_usd(t->cost_micro_usd, usd, sizeof(usd));
    fprintf(c->out, "%-*s  %-*s  %10lld  %14lld  %17lld  %14s\n", w1, a, w2, b,
            (long long)t->requests, (long long)t->prompt_tokens,
            (long long)t->completion_tokens, usd);
}

/* ---- spend --by ---------------------------------------------------------- */

/* `spend --by` reads the usage records (one per request) rather than the
 * all-time totals, so it can cut by time and by any dimension. It streams
 * them in one read snapshot and keeps only the group table; money stays in
 * integer micro-USD from the record to the printed digits. */

typedef enum pdp_cli_by {
    PDP_CLI_BY_NONE = 0,
    PDP_CLI_BY_TENANT,
    PDP_CLI_BY_KEY,
    PDP_CLI_BY_USER,
    PDP_CLI_BY_MODEL,
    PDP_CLI_BY_DAY,
} pdp_cli_by;

static const char *const pdp_cli_by_names[] = {"",     "tenant", "key",
                                               "user", "model",  "day"};

typedef enum pdp_cli_spend_fmt {
    PDP_CLI_SPEND_TABLE = 0, /* "text" is the same */
    PDP_CLI_SPEND_JSON,
    PDP_CLI_SPEND_CSV,
} pdp_cli_spend_fmt;

typedef struct pdp_cli_spend_opts {
    const char       *config;
    const char       *by_arg;
    const char       *from;
    const char       *to;
    const char       *tenant;
    const char       *format;
    pdp_cli_by        by;
    pdp_cli_spend_fmt fmt;
    int64_t           from_ms; /* inclusive; INT64_MIN: open */
    int64_t           to_ms;   /* exclusive; INT64_MAX: open */
    bool              help;
} pdp_cli_spend_opts;

typedef struct pdp_cli_sums {
    int64_t requests;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micro_usd;
    int64_t estimated; /* requests whose tokens the gateway counted */
} pdp_cli_sums;

/* One group: its sums and its name, stored after it as "tenant\0name\0"
 * (tenant is "" unless the rows show one: --by key and --by user). */
typedef struct pdp_cli_group {
    uint64_t     hash;
    pdp_cli_sums t;
    char        *name; /* points into s */
    char         s[];
} pdp_cli_group;

typedef struct pdp_cli_groups {
    const pdp_cli_spend_opts *o;
    pdp_cli_group           **slot; /* open addressing, power-of-two size */
    size_t                    cap;
    size_t                    n;
    pdp_cli_sums              total;
} pdp_cli_groups;

/* pdp_cli_day_name writes the UTC date of unix ms as YYYY-MM-DD. */
static void
pdp_cli_day_name(int64_t ms, char *buf, size_t cap)
{
    int64_t z = ms / 86400000 - (ms % 86400000 < 0 ? 1 : 0);
    int64_t era;
    int64_t doe;
    int64_t yoe;
    int64_t doy;
    int64_t mp;
    int64_t d;
    int64_t m;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp  = (5 * doy + 2) / 153;
    d   = doy - (153 * mp + 2) / 5 + 1;
    m   = mp < 10 ? mp + 3 : mp - 9;
    /* m is 1..12 and d 1..31 by construction; the casts tell the
     * compiler so, which keeps -Wformat-truncation quiet at -O2. */
    snprintf(buf, cap, "%04lld-%02u-%02u",
             (long long)(yoe + era * 400 + (m <= 2)),
             (unsigned)(unsigned char)m, (unsigned)(unsigned char)d);
}

/* pdp_cli_spend_parse is pdp_cli_parse for spend, whose --format takes
 * more values and whose flags no other command has. A flag given twice is
 * an error: two --by or two --from are a mistake, not a choice. */
static int
pdp_cli_spend_parse(pdp_cli *c, int argc, char **argv, pdp_cli_spend_opts *o)
{
    static const char *const names[] = {"config", "by",     "from",
                                        "to",     "tenant", "format"};

    memset(o, 0, sizeof(*o));
    o->from_ms = INT64_MIN;
    o->to_ms   = INT64_MAX;
    for (int i = 0; i < argc; i++) {
        const char  *a   = argv[i];
        const char  *val = NULL;
        const char **slot[6];
        size_t       nlen;
        int          w = -1;

        slot[0] = &o->config;
        slot[1] = &o->by_arg;
        slot[2] = &o->from;
        slot[3] = &o->to;
        slot[4] = &o->tenant;
        slot[5] = &o->format;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            return a[0] == '-' && a[1] != '\0'
                       ? pdp_cli_usage_error(c, "unknown option %s", a)
                       : pdp_cli_usage_error(c, "unexpected argument \"%s\"",
                                             a);
        }
        val  = strchr(a, '=');
        nlen = val != NULL ? (size_t)(val - a - 2) : strlen(a + 2);
        for (int j = 0; j < 6 && w < 0; j++) {
            if (strlen(names[j]) == nlen &&
                strncmp(names[j], a + 2, nlen) == 0) {
                w = j;
            }
        }
        if (w < 0) {
            return pdp_cli_usage_error(c, "unknown option %s", a);
        }
        if (val != NULL) {
            val++;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return pdp_cli_usage_error(c, "option %s needs a value", a);
        }
        if (*slot[w] != NULL) {
            return pdp_cli_usage_error(c, "--%s given twice", names[w]);
        }
        *slot[w] = val;
    }
    if (o->help) {
        return PDP_EXIT_OK;
    }
    if (o->format == NULL || strcmp(o->format, "text") == 0 ||
        strcmp(o->format, "table") == 0) {
        o->fmt = PDP_CLI_SPEND_TABLE;
    } else if (strcmp(o->format, "json") == 0) {
        o->fmt = PDP_CLI_SPEND_JSON;
    } else if (strcmp(o->format, "csv") == 0) {
        o->fmt = PDP_CLI_SPEND_CSV;
    } else {
        return pdp_cli_usage_error(c,
                                   "--format must be table, json or csv, "
                                   "not \"%s\"",
                                   o->format);
    }
    if (o->by_arg != NULL) {
        for (int j = PDP_CLI_BY_TENANT; j <= PDP_CLI_BY_DAY; j++) {
            if (strcmp(o->by_arg, pdp_cli_by_names[j]) == 0) {
                o->by = (pdp_cli_by)j;
            }
        }
        if (o->by == PDP_CLI_BY_NONE) {
            return pdp_cli_usage_error(c,
                                       "--by must be tenant, key, user, model "
                                       "or day, not \"%s\"",
                                       o->by_arg);
        }
    } else if (o->from != NULL || o->to != NULL || o->tenant != NULL ||
               o->fmt == PDP_CLI_SPEND_CSV) {
        /* The report without --by is the all-time totals; silently
         * ignoring a range would print numbers that look filtered. */
        return pdp_cli_usage_error(c, "%s needs --by tenant|key|user|model|day",
                                   o->from     ? "--from"
                                   : o->to     ? "--to"
                                   : o->tenant ? "--tenant"
                                               : "--format csv");
    }
    if (o->from != NULL && !tg_parse_date(o->from, false, &o->from_ms)) {
        return pdp_cli_usage_error(c,
                                   "--from \"%s\" is not a date: use "
                                   "YYYY-MM-DD (UTC) or RFC 3339, e.g. "
                                   "2024-05-01T00:00:00Z",
                                   o->from);
    }
    if (o->to != NULL && !tg_parse_date(o->to, true, &o->to_ms)) {
        return pdp_cli_usage_error(c,
                                   "--to \"%s\" is not a date: use "
                                   "YYYY-MM-DD (UTC) or RFC 3339, e.g. "
                                   "2024-05-31T23:59:59Z",
                                   o->to);
    }
    if (o->from_ms >= o->to_ms) {
        return pdp_cli_usage_error(c, "--from %s is after --to %s", o->from,
                                   o->to);
    }
    if (o->tenant != NULL && !tg_id_ok(o->tenant)) {
        return pdp_cli_usage_error(c,
                                   "--tenant \"%s\" is not a tenant id: "
                                   "1-63 of A-Z a-z 0-9 . _ -",
                                   o->tenant);
    }
    return PDP_EXIT_OK;
}

static uint64_t
pdp_cli_fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    }
    return h;
}

/* pdp_cli_sum adds one record to g; TG_ETOOBIG if a sum would overflow
 * (then g is unchanged). */
static tg_err
pdp_cli_sum(pdp_cli_sums *g, const pdp_usage_rec *r)
{
    pdp_cli_sums t = *g;

    if (__builtin_add_overflow(t.requests, 1, &t.requests) ||
        __builtin_add_overflow(t.prompt_tokens, r->usage.prompt_tokens,
                               &t.prompt_tokens) ||
        __builtin_add_overflow(t.completion_tokens, r->usage.completion_tokens,
                               &t.completion_tokens) ||
        __builtin_add_overflow(t.cost_micro_usd, r->cost_micro_usd,
                               &t.cost_micro_usd) ||
        __builtin_add_overflow(t.estimated, r->usage.estimated ? 1 : 0,
                               &t.estimated)) {
        return TG_ETOOBIG;
    }
    *g = t;
    return TG_OK;
}

static bool
pdp_cli_groups_grow(pdp_cli_groups *gs)
{
    size_t          ncap = gs->cap ? gs->cap * 2 : 64;
    pdp_cli_group **ns   = calloc(ncap, sizeof(*ns));

    if (ns == NULL) {
        return false;
    }
    for (size_t i = 0; i < gs->cap; i++) {
        if (gs->slot[i] != NULL) {
            size_t j = gs->slot[i]->hash & (ncap - 1);
            while (ns[j] != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = gs->slot[i];
        }
    }
    free(gs->slot);
    gs->slot = ns;
    gs->cap  = ncap;
    return true;
}

/* pdp_cli_spend_add is the pdp_store_usage_fn of `spend --by`. */
static tg_err
pdp_cli_spend_add(void *arg, const pdp_usage_rec *r)
{
    pdp_cli_groups *gs     = arg;
    const tg_usage *u      = &r->usage;
    const char     *tenant = "";
    const char     *name;
    char            day[32]; /* "YYYY-MM-DD"; room for any int64 year */
    size_t          tl;
    size_t          nl;
    uint64_t        h;
    size_t          j;
    pdp_cli_group  *g;
    tg_err          rv;

    if (u->started_ms < gs->o->from_ms || u->started_ms >= gs->o->to_ms ||
        (gs->o->tenant != NULL && strcmp(u->tenant_id, gs->o->tenant) != 0)) {
        return TG_OK;
    }
    switch (gs->o->by) {
    case PDP_CLI_BY_KEY:
        tenant = u->tenant_id;
        name   = u->key_id;
        break;
    case PDP_CLI_BY_USER:
        /* The same user string in two tenants is two people. */
        tenant = u->tenant_id;
        name   = u->user;
        break;
    case PDP_CLI_BY_MODEL:
        name = u->model;
        break;
    case PDP_CLI_BY_DAY:
        pdp_cli_day_name(u->started_ms, day, sizeof(day));
        name = day;
        break;
    default:
        name = u->tenant_id;
        break;
    }
    if ((rv = pdp_cli_sum(&gs->total, r)) != TG_OK) {
        return rv;
    }
    tl = strlen(tenant);
    nl = strlen(name);
    h  = pdp_cli_fnv(pdp_cli_fnv(14695981039346656037ULL, tenant, tl + 1), name,
                     nl);
    if ((gs->n + 1) * 10 > gs->cap * 7 && !pdp_cli_groups_grow(gs)) {
        return TG_ENOMEM;
    }
    for (j = h & (gs->cap - 1); (g = gs->slot[j]) != NULL;
         j = (j + 1) & (gs->cap - 1)) {
        if (g->hash == h && strcmp(g->s, tenant) == 0 &&
            strcmp(g->name, name) == 0) {
            return pdp_cli_sum(&g->t, r);
        }
    }
    if ((g = calloc(1, sizeof(*g) + tl + nl + 2)) == NULL) {
        return TG_ENOMEM;
    }
    g->hash = h;
    memcpy(g->s, tenant, tl + 1);
    g->name = g->s + tl + 1;
    memcpy(g->name, name, nl + 1);
    gs->slot[j] = g;
    gs->n++;
    return pdp_cli_sum(&g->t, r);
}

static int
pdp_cli_group_cmp(const void *a, const void *b)
{
    const pdp_cli_group *x = *(pdp_cli_group *const *)a;
    const pdp_cli_group *y = *(pdp_cli_group *const *)b;
    int                  d;

    if (x->t.cost_micro_usd != y->t.cost_micro_usd) {
        return x->t.cost_micro_usd > y->t.cost_micro_usd ? -1 : 1;
    }
    if ((d = strcmp(x->name, y->name)) != 0) {
        return d;
    }
    return strcmp(x->s, y->s);
}

/* Days read as a time series: oldest first. */
static int
pdp_cli_group_day_cmp(const void *a, const void *b)
{
    const pdp_cli_group *x = *(pdp_cli_group *const *)a;
    const pdp_cli_group *y = *(pdp_cli_group *const *)b;

    return strcmp(x->name, y->name);
}

/* pdp_cli_shown is how a group's name prints: "-" for no user. */
static const char *
pdp_cli_shown(const char *name)
{
    return name[0] == '\0' ? "-" : name;
}

/* pdp_cli_csv_field writes s as one RFC 4180 field. A text field (a name a
 * client chose) that starts with = + - @, tab or CR would run as a formula
 * in a spreadsheet: it is quoted with a ' in front (OWASP's advice for CSV
 * injection). Numbers and the "-" and TOTAL markers are not text. */
static void
pdp_cli_csv_field(FILE *f, const char *s, bool text)
{
    bool lead = text && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;

    if (!lead && strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputs(lead ? "\"'" : "\"", f);
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            fputc('"', f);
        }
        fputc(*s, f);
    }
    fputc('"', f);
}

/* pdp_cli_table_field pads s to w columns with control characters escaped
 * (\n, \x1b): a user name comes from the client and must neither add rows
 * nor drive the terminal. Returns the columns s took; f NULL only measures. */
static int
pdp_cli_table_field(FILE *f, const char *s, int w)
{
    char buf[2048];
    int  n = (int)tg_log_escape(buf, sizeof(buf), s);

    if (f == NULL) {
        return n;
    }
    fputs(buf, f);
    for (int i = n; i < w; i++) {
        fputc(' ', f);
    }
    return n;
}

static cJSON *
pdp_cli_group_json(cJSON *j, const pdp_cli_sums *g)
{
    char usd[32];

    pdp_api_usd(g->cost_micro_usd, usd, sizeof(usd));
    cJSON_AddNumberToObject(j, "requests", (double)g->requests);
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)g->prompt_tokens);
    cJSON_AddNumberToObject(j, "completion_tokens",
                            (double)g->completion_tokens);
    cJSON_AddNumberToObject(j, "cost_micro_usd", (double)g->cost_micro_usd);
    cJSON_AddStringToObject(j, "cost_usd", usd);
    cJSON_AddNumberToObject(j, "estimated_requests", (double)g->estimated);
    return j;
}

static void
pdp_cli_spend_print_json(pdp_cli *c, const pdp_cli_spend_opts *o,
                         pdp_cli_group **v, size_t n, const pdp_cli_sums *total)
{
    static const char *const field[] = {"",     "tenant", "key_id",
                                        "user", "model",  "day"};
    cJSON                   *doc     = cJSON_CreateObject();
    cJSON                   *rows;
    bool two = o->by == PDP_CLI_BY_KEY || o->by == PDP_CLI_BY_USER;

    cJSON_AddStringToObject(doc, "by", pdp_cli_by_names[o->by]);
    cJSON_AddItemToObject(doc, "from",
                          o->from ? cJSON_CreateString(o->from)
                                  : cJSON_CreateNull());
    cJSON_AddItemToObject(
        doc, "to", o->to ? cJSON_CreateString(o->to) : cJSON_CreateNull());
    cJSON_AddItemToObject(doc, "tenant",
                          o->tenant ? cJSON_CreateString(o->tenant)
                                    : cJSON_CreateNull());
    cJSON_AddStringToObject(doc, "currency", "USD");
    rows = cJSON_AddArrayToObject(doc, "rows");
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        if (o->by == PDP_CLI_BY_USER && v[i]->name[0] == '\0') {
            cJSON_AddNullToObject(j, field[o->by]); /* no user given */
        } else {
            cJSON_AddStringToObject(j, field[o->by], v[i]->name);
        }
        if (two) {
            cJSON_AddStringToObject(j, "tenant", v[i]->s);
        }
        cJSON_AddItemToArray(rows, pdp_cli_group_json(j, &v[i]->t));
    }
    cJSON_AddItemToObject(doc, "total",
                          pdp_cli_group_json(cJSON_CreateObject(), total));
    pdp_cli_print_json(c, doc);
}

static void
pdp_cli_spend_print_csv(pdp_cli *c, const pdp_cli_spend_opts *o,
                        pdp_cli_group **v, size_t n, const pdp_cli_sums *total)
{
    static const char *const field[] = {"",     "tenant", "key_id",
                                        "user", "model",  "day"};
    bool two = o->by == PDP_CLI_BY_KEY || o->by == PDP_CLI_BY_USER;

    fprintf(c->out,
            "%s%s,requests,prompt_tokens,completion_tokens,cost_micro_usd,"
            "cost_usd,estimated_requests\r\n",
            field[o->by], two ? ",tenant" : "");
    for (size_t i = 0; i <= n; i++) {
        const pdp_cli_sums *g = i < n ? &v[i]->t : total;
        char                usd[32];

        pdp_cli_csv_field(c->out, i < n ? pdp_cli_shown(v[i]->name) : "TOTAL",
                          i < n && v[i]->name[0] != '\0');
        if (two) {
            fputc(',', c->out);
            pdp_cli_csv_field(c->out, i < n ? v[i]->s : "", true);
        }
        pdp_api_usd(g->cost_micro_usd, usd, sizeof(usd));
        fprintf(c->out, ",%lld,%lld,%lld,%lld,%s,%lld\r\n",
                (long long)g->requests, (long long)g->prompt_tokens,
                (long long)g->completion_tokens, (long long)g->cost_micro_usd,
                usd, (long long)g->estimated);
    }
}

static void
pdp_cli_spend_print_table(pdp_cli *c, const pdp_cli_spend_opts *o,
                          pdp_cli_group **v, size_t n,
                          const pdp_cli_sums *total)
{
    static const char *const head[] = {"",     "TENANT", "KEY",
                                       "USER", "MODEL",  "DAY"};
    bool two = o->by == PDP_CLI_BY_KEY || o->by == PDP_CLI_BY_USER;
    int  w1  = 6;
    int  w2  = 6;

    for (size_t i = 0; i < n; i++) {
        int l1 = pdp_cli_table_field(NULL, pdp_cli_shown(v[i]->name), 0);
        int l2 = pdp_cli_table_field(NULL, v[i]->s, 0);
        w1     = l1 > w1 ? l1 : w1;
        w2     = l2 > w2 ? l2 : w2;
    }
    pdp_cli_table_field(c->out, head[o->by], w1);
    if (two) {
        fputs("  ", c->out);
        pdp_cli_table_field(c->out, "TENANT", w2);
    }
    fprintf(c->out, "  %10s  %14s  %17s  %14s  %9s\n", "REQUESTS",
            "PROMPT_TOKENS", "COMPLETION_TOKENS", "COST_USD", "ESTIMATED");
    for (size_t i = 0; i <= n; i++) {
        const pdp_cli_sums *g = i < n ? &v[i]->t : total;
        char                usd[32];

        if (i == n) {
            fputc('\n', c->out);
        }
        pdp_cli_table_field(c->out, i < n ? pdp_cli_shown(v[i]->name) : "TOTAL",
                            w1);
        if (two) {
            fputs("  ", c->out);
            pdp_cli_table_field(c->out, i < n ? v[i]->s : "", w2);
        }
        pdp_api_usd(g->cost_micro_usd, usd, sizeof(usd));
        fprintf(c->out, "  %10lld  %14lld  %17lld  %14s  %9lld\n",
                (long long)g->requests, (long long)g->prompt_tokens,
                (long long)g->completion_tokens, usd, (long long)g->estimated);
    }
}

/* pdp_cli_spend_by runs `spend --by`: one streaming pass over the usage
 * records, then sort and print. */
static int
pdp_cli_spend_by(pdp_cli *c, const pdp_cli_spend_opts *o, pdp_store *st)
{
    pdp_cli_groups  gs;
    pdp_cli_group **v = NULL;
    size_t          n = 0;
    tg_err          rv;
    int             ec = PDP_EXIT_OK;

    memset(&gs, 0, sizeof(gs));
    gs.o = o;
    if (!pdp_cli_groups_grow(&gs)) {
        rv = TG_ENOMEM;
    } else {
        rv = pdp_store_usage_list(st, pdp_cli_spend_add, &gs);
    }
    if (rv == TG_OK && gs.n > 0 && (v = malloc(gs.n * sizeof(*v))) == NULL) {
        rv = TG_ENOMEM;
    }
    if (rv != TG_OK) {
        fprintf(c->err, "tollgate-pdp %s: cannot read usage records: %s\n",
                c->cmd,
                rv == TG_ETOOBIG ? "a sum overflows 64 bits" : tg_strerror(rv));
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < gs.cap; i++) {
        if (gs.slot[i] != NULL) {
            v[n++] = gs.slot[i];
        }
    }
    if (n > 0) {
        qsort(v, n, sizeof(*v),
              o->by == PDP_CLI_BY_DAY ? pdp_cli_group_day_cmp
                                      : pdp_cli_group_cmp);
    }
    switch (o->fmt) {
    case PDP_CLI_SPEND_JSON:
        pdp_cli_spend_print_json(c, o, v, n, &gs.total);
        break;
    case PDP_CLI_SPEND_CSV:
        pdp_cli_spend_print_csv(c, o, v, n, &gs.total);
        break;
    default:
        pdp_cli_spend_print_table(c, o, v, n, &gs.total);
        break;
    }
out:
    for (size_t i = 0; i < gs.cap; i++) {
        free(gs.slot[i]);
    }
    free(gs.slot);
    free(v);
    return ec;
}

static int
pdp_cli_spend_run(pdp_cli *c, const pdp_cli_spend_opts *so, pdp_store *st)
{
    pdp_store_reader *rd = NULL;
    pdp_cli_spend     s;
    pdp_totals        total = {0, 0, 0, 0, 0};
    pdp_key          *k     = NULL;
    bool              json  = so->fmt == PDP_CLI_SPEND_JSON;
    tg_err            rv;
    int               ec = PDP_EXIT_OK;

    memset(&s, 0, sizeof(s));
    if (so->by != PDP_CLI_BY_NONE) {
        return pdp_cli_spend_by(c, so, st);
    }
    rv = pdp_store_totals_list(st, pdp_cli_collect_totals, &s);
    if (rv == TG_OK && s.oom) {
        rv = TG_ENOMEM;
    }
    /* Key rows show their tenant; a deleted key shows "-". */
    if (rv == TG_OK && s.n[1] > 0 &&
        ((k = malloc(sizeof(*k))) == NULL ||
         (rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
         (rv = pdp_store_read_begin(rd)) != TG_OK)) {
        rv = rv != TG_OK ? rv : TG_ENOMEM;
    }
    for (size_t i = 0; rv == TG_OK && i < s.n[1]; i++) {
        if (pdp_store_key_get_by_id(rd, s.v[1][i].id, k) == TG_OK) {
            snprintf(s.v[1][i].tenant, sizeof(s.v[1][i].tenant), "%s",
                     k->tenant);
        } else {
            snprintf(s.v[1][i].tenant, sizeof(s.v[1][i].tenant), "-");
        }
    }
    if (rd != NULL) {
        pdp_store_read_end(rd);
    }
    if (rv != TG_OK) {
        fprintf(c->err, "tollgate-pdp %s: cannot read spend: %s\n", c->cmd,
                tg_strerror(rv));
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < s.n[0]; i++) {
        total.requests += s.v[0][i].t.requests;
        total.prompt_tokens += s.v[0][i].t.prompt_tokens;
        total.completion_tokens += s.v[0][i].t.completion_tokens;
        total.cost_micro_usd += s.v[0][i].t.cost_micro_usd;
    }
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *ts;
        cJSON *ks;
        cJSON_AddStringToObject(doc, "currency", "USD");
        ts = cJSON_AddArrayToObject(doc, "tenants");
        ks = cJSON_AddArrayToObject(doc, "keys");
        for (size_t i = 0; i < s.n[0]; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "tenant", s.v[0][i].id);
            cJSON_AddItemToArray(ts, pdp_cli_totals_json(j, &s.v[0][i].t));
        }
        for (size_t i = 0; i < s.n[1]; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "key_id", s.v[1][i].id);
            cJSON_AddStringToObject(j, "tenant", s.v[1][i].tenant);
            cJSON_AddItemToArray(ks, pdp_cli_totals_json(j, &s.v[1][i].t));
        }
        cJSON_AddItemToObject(
            doc, "total", pdp_cli_totals_json(cJSON_CreateObject(), &total));
        pdp_cli_print_json(c, doc);
        goto out;
    }
    if (s.n[0] == 0 && s.n[1] == 0) {
        fprintf(c->out, "No usage recorded yet.\n");
        goto out;
    }
    {
        int w1 = 6, w2 = 6;
        for (size_t i = 0; i < s.n[0]; i++) {
            int l = (int)strlen(s.v[0][i].id);
            w1    = l > w1 ? l : w1;
        }
        for (size_t i = 0; i < s.n[1]; i++) {
            int l1 = (int)strlen(s.v[1][i].id);
            int l2 = (int)strlen(s.v[1][i].tenant);
            w1     = l1 > w1 ? l1 : w1;
            w2     = l2 > w2 ? l2 : w2;
        }
        fprintf(c->out, "%-*s  %-*s  %10s  %14s  %17s  %14s\n", w1, "TENANT",
                w2, "", "REQUESTS", "PROMPT_TOKENS", "COMPLETION_TOKENS",
                "COST_USD");
        for (size_t i = 0; i < s.n[0]; i++) {
            pdp_cli_totals_line(c, w1, s.v[0][i].id, w2, "", &s.v[0][i].t);
        }
        fprintf(c->out, "\n%-*s  %-*s  %10s  %14s  %17s  %14s\n", w1, "KEY", w2,
                "TENANT", "REQUESTS", "PROMPT_TOKENS", "COMPLETION_TOKENS",
                "COST_USD");
        for (size_t i = 0; i < s.n[1]; i++) {
            pdp_cli_totals_line(c, w1, s.v[1][i].id, w2, s.v[1][i].tenant,
                                &s.v[1][i].t);
        }
        fprintf(c->out, "\n");
        pdp_cli_totals_line(c, w1, "TOTAL", w2, "", &total);
    }
out:
    free(k);
    pdp_store_reader_destroy(rd);
    free(s.v[0]);
    free(s.v[1]);
    return ec;
}

static int
pdp_cli_spend_cmd(pdp_cli *c, int argc, char **argv)
{
    pdp_cli_spend_opts so;
    pdp_cli_opts       o;
    tg_config         *cfg = NULL;
    pdp_store         *st  = NULL;
    int                ec;

    if ((ec = pdp_cli_spend_parse(c, argc, argv, &so)) != PDP_EXIT_OK) {
        return ec;
    }
    if (so.help) {
        fputs(pdp_cli_usage_spend, c->out);
        return PDP_EXIT_OK;
    }
    memset(&o, 0, sizeof(o));
    o.config = so.config;
    if ((ec = pdp_cli_config(c, &o, &cfg)) == PDP_EXIT_OK &&
        (ec = pdp_cli_store(c, cfg, &st)) == PDP_EXIT_OK) {
        ec = pdp_cli_spend_run(c, &so, st);
    }
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}

int
pdp_cli_spend_store(pdp_store *st, int argc, char **argv, FILE *out,
                    FILE *err)
{
    pdp_cli            c = {out, err, "spend"};
    pdp_cli_spend_opts so;
    int                ec;

    if ((ec = pdp_cli_spend_parse(&c, argc, argv, &so)) != PDP_EXIT_OK) {
        return ec;
    }
    return pdp_cli_spend_run(&c, &so, st);
}

/* ---- dispatch ------------------------------------------------------------ */

typedef struct pdp_cli_cmd {
    const char *cmd;
    const char *sub; /* NULL: the command takes no subcommand */
    const char *name;
    int (*fn)(pdp_cli *c, int argc, char **argv);
} pdp_cli_cmd;

/* Every command but the policy tools (check, test, eval), which
 * pdp_policy_cli parses itself. */
static const pdp_cli_cmd pdp_cli_cmds[] = {
    {"serve", NULL, "serve", pdp_cli_serve},
    {"spend", NULL, "spend", pdp_cli_spend_cmd},
    {"reload", NULL, "reload", pdp_cli_reload},
    {"policy", "history", "policy history", pdp_cli_policy_history},
    {NULL, NULL, NULL, NULL},
};

static int pdp_cli_dispatch(pdp_cli *c, int argc, char **argv);

int
pdp_cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    pdp_cli     c   = {out, err, ""};
    const char *cmd = argc > 1 ? argv[1] : NULL;

    /* Admin commands stay quiet unless something is wrong. */
    tg_log_init("tollgate-pdp", TG_LOG_WARN);
    if (cmd == NULL) {
        fputs(pdp_cli_usage_top, err);
        return PDP_EXIT_USAGE;
    }
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(pdp_cli_usage_top, out);
        return PDP_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        fprintf(out, "tollgate-pdp %s\n", PDP_VERSION);
        return PDP_EXIT_OK;
    }
    if (strcmp(cmd, "check") == 0 || strcmp(cmd, "test") == 0 ||
        strcmp(cmd, "eval") == 0) {
        return pdp_policy_cli(cmd, argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "state") == 0) {
        return pdp_state_cli(argc - 2, argv + 2, out, err);
    }
    {
        bool handled = false;
        int  ec      = pdp_cli_api_run(argc, argv, out, err, &handled);
        if (handled) {
            return ec;
        }
    }
    return pdp_cli_dispatch(&c, argc, argv);
}

static int
pdp_cli_dispatch(pdp_cli *c, int argc, char **argv)
{
    const char *cmd   = argv[1];
    const char *sub   = argc > 2 ? argv[2] : NULL;
    bool        group = false;
    char        subs[128] = "";
    size_t      used      = 0;

    for (size_t i = 0; pdp_cli_cmds[i].cmd != NULL; i++) {
        const pdp_cli_cmd *d = &pdp_cli_cmds[i];
        if (strcmp(d->cmd, cmd) != 0) {
            continue;
        }
        if (d->sub == NULL) {
            c->cmd = d->name;
            return d->fn(c, argc - 2, argv + 2);
        }
        group = true;
        if (sub != NULL && strcmp(d->sub, sub) == 0) {
            c->cmd = d->name;
            return d->fn(c, argc - 3, argv + 3);
        }
        used += (size_t)snprintf(subs + used, sizeof(subs) - used, "%s%s",
                                 used ? ", " : "", d->sub);
    }
    if (group && sub != NULL &&
        (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        fputs(strcmp(cmd, "policy") == 0 ? pdp_cli_usage_history
                                         : pdp_cli_usage_top,
              c->out);
        return PDP_EXIT_OK;
    }
    if (group) {
        fprintf(c->err,
                "tollgate-pdp %s: expected %s%s%s\n"
                "Run 'tollgate-pdp --help' for usage.\n",
                cmd, subs, sub ? ", not " : "", sub ? sub : "");
        return PDP_EXIT_USAGE;
    }
    fprintf(c->err,
            "tollgate-pdp: unknown command \"%s\"\n"
            "Run 'tollgate-pdp --help' for usage.\n",
            cmd);
    return PDP_EXIT_USAGE;
}
