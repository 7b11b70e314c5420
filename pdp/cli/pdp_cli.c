/* pdp_cli.c - flag parsing is hand-rolled (no getopt) so the parser has no
 * global state and tests can run many command lines in one process. Every
 * error message names what was wrong and what to do; usage errors and bad
 * config exit 2, failed operations exit 1. */
#include "pdp_cli.h"

#include "pdp_fmt.h"

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
#include "pdp_serve.h"
#include "pdp_server.h"
#include "pdp_state_cli.h"
#include "pdp_store.h"
#include "tg_config.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

#define PDP_CLI_POS_MAX 4
#define PDP_CLI_LABELS_MAX 32        /* --label flags on one command line */
#define PDP_KEY_ID_BYTES 8           /* key_ + 16 hex digits */
#define PDP_CLI_RELOAD_TIMEOUT_S 120 /* compile + tests of a bundle */

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
            if (o->npos < 0 || o->npos >= max_pos ||
                o->npos >= PDP_CLI_POS_MAX) {
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

static int
pdp_cli_serve(pdp_cli *c, int argc, char **argv)
{
    static const char *const flags[] = {"config", NULL};
    pdp_cli_opts             o;
    tg_config               *cfg = NULL;
    int                      ec;

    if ((ec = pdp_cli_parse(c, argc, argv, flags, 0, &o)) != PDP_EXIT_OK) {
        return ec;
    }
    if (o.help) {
        fputs(pdp_cli_usage_serve, c->out);
        return PDP_EXIT_OK;
    }
    if ((ec = pdp_cli_config(c, &o, &cfg)) != PDP_EXIT_OK) {
        return ec;
    }
    ec = pdp_serve(cfg, c->err);
    tg_config_destroy(cfg);
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
                c->cmd, cfg->pdp.state_dir, PDP_ADMIN_TOKEN_FILE, cfg->path);
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
        (h->oom = !tg_vec_reserve(&h->v, &h->cap, h->n + 1, sizeof(*h->v)))) {
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
            pdp_fmt_time(a->activated_ms, when, sizeof(when));
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
            pdp_fmt_time(a->activated_ms, when, sizeof(when));
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
    const char *cmd       = argv[1];
    const char *sub       = argc > 2 ? argv[2] : NULL;
    bool        group     = false;
    char        subs[256] = "";
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
    /* An admin group (keys, tenants, ...) whose subcommand did not match
     * any row of pdp_cli_api. */
    if (!group && pdp_cli_api_subcommands(cmd, subs, sizeof(subs)) > 0) {
        group = true;
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
